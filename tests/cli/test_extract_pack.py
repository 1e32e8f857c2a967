"""`extract` (safe unzipping) and `pack` (building archives from the shell)."""

from __future__ import annotations

import os
import textwrap
import zipfile

import pytest

from cli_helpers import assert_one_line_error, run_cli, write_sources
from hermetic._archive_reader import ArchiveReader


def _records(path):
    with ArchiveReader(str(path)) as reader:
        return {name: reader.read(name) for name in reader.record_names()}


def test_extract_writes_the_unzipped_package(tiny_archive, tmp_path):
    """Records land in DIR/<archive name>/, byte for byte; JSON says where."""
    result = run_cli("extract", tiny_archive, tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    top = tmp_path / "out" / "tiny"
    assert result.json() == {
        "archive": str(tiny_archive),
        "directory": str(top),
        "records": len(_records(tiny_archive)),
        "bytes": sum(len(b) for b in _records(tiny_archive).values()),
    }
    assert _records(top) == _records(tiny_archive)


def test_extract_keeps_existing_files_unless_forced(tiny_archive, tmp_path):
    """A second extract refuses to overwrite; --force overwrites."""
    assert run_cli("extract", tiny_archive, tmp_path).returncode == 0
    again = run_cli("extract", tiny_archive, tmp_path)
    assert_one_line_error(again, 1, "already exists", "--force")
    forced = run_cli("extract", tiny_archive, tmp_path, "--force")
    assert forced.returncode == 0
    assert forced.stdout.startswith("extracted ")


def test_extract_never_follows_a_symlink_out(tiny_archive, tmp_path):
    """A symbolic link where a folder would go is refused; its target stays empty."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "tiny")
    result = run_cli("extract", tiny_archive, dest)
    assert_one_line_error(result, 1, "symbolic link")
    assert list(outside.iterdir()) == []


def test_extract_refuses_records_that_climb_out(tmp_path):
    """A hand-made ZIP with a "../" record name is refused; nothing is written."""
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("evil/.data/version", "6\n")
        zf.writestr("evil/../../escaped.txt", "gotcha")
    result = run_cli("extract", evil, tmp_path / "out")
    assert_one_line_error(result, 1, "evil.pt")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "evil").exists()


def test_pack_from_pyproject(tmp_path, tiny_src):
    """A [tool.hermetic] table names the output, paths, objects and resources."""
    project = tmp_path / "project"
    write_sources(project, {"configs/default.json": '{"lr": 0.1}'})
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [tool.hermetic]
            output = "dist/model.pt"
            path = [{str(tiny_src)!r}]
            extern = ["json"]

            [tool.hermetic.objects]
            "model/model.pkl" = "tinypkg.model:MODEL"
            "model/config.pkl" = "tinypkg.model:CONFIG"

            [tool.hermetic.resources]
            "model/config.json" = "configs/default.json"
            """
        )
    )
    (project / "dist").mkdir()
    result = run_cli("pack", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    document = result.json()
    assert set(document) == {
        "output", "bytes", "interned", "extern", "mocked", "pickles", "resources",
        "unresolved",
    }  # fmt: skip
    assert document["interned"] == ["tinypkg", "tinypkg.layers", "tinypkg.model"]
    assert document["extern"] == ["json"]
    assert document["pickles"] == ["model/model.pkl", "model/config.pkl"]
    assert document["resources"] == ["model/config.json"]
    records = _records(project / "dist" / "model.pt")
    assert records["model/config.json"] == b'{"lr": 0.1}'


def test_pack_reports_unpackageable_modules_in_one_line(tmp_path, tiny_src):
    """A denied dependency is a PackagingError, shown as one line, exit 1."""
    result = run_cli(
        "pack", "-o", tmp_path / "x.pt", "--path", tiny_src, "--deny", "json",
        "tinypkg.model:MODEL",
    )  # fmt: skip
    assert_one_line_error(result, 1, "cannot package 1 module(s): json", "denied")
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize(
    ("args", "table", "fragment"),
    [
        (["-o", "x.pt"], None, "nothing to pack"),
        ([], '[tool.hermetic]\nmodules = ["a"]\n', "no output file"),
        (["-o", "x.pt"], '[tool.hermetic]\nmodles = ["a"]\n', "unknown key 'modles'"),
        (["-o", "x.pt"], '[tool.hermetic]\nintern = "a.**"\n', "must be a list"),
    ],
)
def test_pack_usage_errors_exit_2(tmp_path, args, table, fragment):
    """Missing sources, a missing output and a bad table are usage errors."""
    if table is not None:
        (tmp_path / "pyproject.toml").write_text(table)
    result = run_cli("pack", *args, cwd=tmp_path)
    assert_one_line_error(result, 2, fragment)


def test_pack_of_a_module_that_cannot_be_imported(tmp_path):
    """An unknown module says how to fix the path."""
    result = run_cli("pack", "-o", tmp_path / "x.pt", "no_such_module_xyz:OBJ")
    assert_one_line_error(
        result, 1, "cannot import module 'no_such_module_xyz'", "--path"
    )
