"""Identical inputs give byte-identical archives, in any process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

BUILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from hermetic import PackageExporter
    import detpkg.model as model
    with PackageExporter(sys.argv[1]) as exporter:
        exporter.intern("detpkg.**")
        exporter.mock("detpkg_missing_optional")
        exporter.save_pickle("obj", "model.pkl", model.Model({"b": 2, "a": [1.5, "x"]}))
        exporter.save_text("obj", "note.txt", "same every time")
    """
)


def _build(target: Path, source_root: Path, seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run(
        [sys.executable, "-c", BUILD, str(target), str(source_root)],
        check=True,
        env=env,
        capture_output=True,
    )
    return hashlib.sha256(target.read_bytes()).hexdigest()


def test_archives_are_byte_identical_across_processes_and_hash_seeds(tmp_path):
    """Two builds in separate processes with different hash seeds give equal bytes."""
    source_root = tmp_path / "src"
    (source_root / "detpkg").mkdir(parents=True)
    (source_root / "detpkg" / "__init__.py").write_text("")
    (source_root / "detpkg" / "model.py").write_text(
        "import json\n\nclass Model:\n    def __init__(self, config):\n"
        "        self.config = config\n"
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _build(tmp_path / "a" / "model.pt", source_root, "1")
    second = _build(tmp_path / "b" / "model.pt", source_root, "4242")
    assert first == second
