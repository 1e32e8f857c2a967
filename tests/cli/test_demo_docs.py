"""`hermetic demo`, and the generated documentation staying in step with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_pipeline_in_a_fresh_process():
    """The demo packages, loads in a fresh interpreter and prints the tree."""
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert (
        "loaded <torch_package_0>.hermetic_demo_pipeline.model.Pipeline"
        in result.stdout
    )
    assert "pipeline.pkl" in result.stdout


def test_cli_reference_is_generated_from_the_parser():
    """docs/cli.md is what docs/gen_cli.py writes (run 'make docs' after a change)."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_cli.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_the_inspect_capture_is_in_the_docs():
    """docs/assets/inspect.txt is a real capture, shown on the quickstart page."""
    capture = (ROOT / "docs" / "assets" / "inspect.txt").read_text()
    assert capture.startswith("$ hermetic inspect demo.pt\n")
    assert "format version  6" in capture
    assert "assets/inspect.txt" in (ROOT / "docs" / "index.md").read_text()
