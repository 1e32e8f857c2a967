"""The built-in example behind ``make demo`` and ``hermetic demo``.

It packages a tiny text-scoring pipeline (its own module, a config and a pickled object
that uses both), then loads it in a fresh interpreter where the pipeline's source is not
importable, and prints the result and the archive's file tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

__all__ = ["main", "run_demo"]

_LOADER = textwrap.dedent(
    """
    import sys
    class _NoPipeline:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "hermetic_demo_pipeline":
                raise ModuleNotFoundError(name, name=name)
    sys.meta_path.insert(0, _NoPipeline())
    from hermetic import PackageImporter
    importer = PackageImporter(sys.argv[1])
    pipeline = importer.load_pickle("pipeline", "pipeline.pkl")
    config = importer.load_text("pipeline", "config.json")
    print("loaded", type(pipeline).__module__ + "." + type(pipeline).__qualname__)
    print("config", config.strip())
    for text in ("a tidy little package", "ship the code with the model"):
        print(f"score({text!r}) = {pipeline(text):.3f}")
    """
)


def run_demo(workdir: Path) -> str:
    """Build the demo package in *workdir*, load it in a fresh process, report."""
    from .build import build_package

    archive = build_package(workdir)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _LOADER, str(archive)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"loading the demo package failed:\n{result.stderr}")
    from hermetic import PackageImporter

    with PackageImporter(archive) as importer:
        tree = (
            str(importer.file_structure())
            if hasattr(importer, "file_structure")
            else ""
        )
    return f"archive: {archive}\n{result.stdout}\n{tree}"


def main() -> int:
    """Run the demo in a temporary folder and print what it shows."""
    with tempfile.TemporaryDirectory(prefix="hermetic-demo-") as tmp:
        print(run_demo(Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
