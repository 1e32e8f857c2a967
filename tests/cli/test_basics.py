"""The command line as a whole: help, exit codes, one-line errors, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli_helpers import assert_one_line_error, run_cli

VERBS = [
    "inspect", "tree", "ls", "deps", "why", "diff", "scan", "verify", "sign",
    "extract", "pack", "demo",
]  # fmt: skip


def test_help_lists_every_verb():
    """`hermetic --help` names every verb and exits 0."""
    result = run_cli("--help")
    assert result.returncode == 0
    for verb in VERBS:
        assert f"\n    {verb} " in result.stdout


def test_python_dash_m_is_the_same_program():
    """`python -m hermetic` runs the same command line."""
    completed = subprocess.run(
        [sys.executable, "-m", "hermetic", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0
    assert completed.stdout.startswith("hermetic ")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "required: VERB"),
        (["frob"], "invalid choice: 'frob'"),
        (["inspect"], "required: ARCHIVE"),
        (["deps", "x.pt", "--format", "gif"], "invalid choice: 'gif'"),
        (["why", "x.pt"], "required: MODULE"),
        (["sign", "x.pt"], "required: --key"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, fragment):
    """A wrong command line is one line on stderr and exit status 2."""
    result = run_cli(*args)
    assert_one_line_error(result, 2, fragment, "--help")


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "{missing}"],
        ["tree", "{missing}"],
        ["ls", "{missing}", "pkg"],
        ["deps", "{missing}"],
        ["why", "{missing}", "pkg"],
        ["diff", "{missing}", "{missing}"],
        ["scan", "{missing}"],
        ["verify", "{missing}"],
        ["extract", "{missing}", "{out}"],
    ],
    ids=lambda args: args[0],
)
def test_a_missing_archive_is_one_line_exit_1(tmp_path, args):
    """Every reading verb names the missing file in one line and exits 1."""
    missing = tmp_path / "missing.pt"
    argv = [a.format(missing=missing, out=tmp_path / "out") for a in args]
    result = run_cli(*argv)
    assert_one_line_error(result, 1, f"{missing}: no such file or directory")
    assert result.stdout == ""


def test_a_file_that_is_not_an_archive_is_one_line_exit_1(tmp_path):
    """A non-ZIP file is reported as such, without a traceback."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip at all")
    result = run_cli("inspect", bad)
    assert_one_line_error(result, 1, "bad.pt", "not a readable ZIP archive")


def test_debug_shows_the_traceback(tmp_path):
    """--debug trades the one-line message for the full traceback."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip at all")
    result = run_cli("--debug", "inspect", bad)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ArchiveError" in result.stderr


def test_global_options_go_before_or_after_the_verb(tiny_archive):
    """`--json inspect X` and `inspect X --json` print the same document."""
    before = run_cli("--json", "inspect", tiny_archive)
    after = run_cli("inspect", tiny_archive, "--json")
    assert before.returncode == after.returncode == 0
    assert before.json() == after.json()


def test_import_hermetic_imports_neither_rich_nor_the_cli():
    """`import hermetic` (and hermetic.progress) leave rich unimported."""
    code = (
        "import sys, hermetic, hermetic.progress\n"
        "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith"
        "(('rich.', 'hermetic.cli'))))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"
