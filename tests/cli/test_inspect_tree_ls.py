"""`inspect`, `tree` and `ls` on archives written by hermetic and by torch.package."""

from __future__ import annotations

import pytest

from cli_helpers import assert_one_line_error, run_cli
from hermetic import PackageImporter


def test_inspect_summarises_a_hermetic_archive(tiny_archive):
    """The text names the format, the Python, the counts and the externs."""
    result = run_cli("inspect", tiny_archive)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "format version  6" in text
    assert "made with       Python 3." in text
    assert "integrity       verified: every record matches the manifest" in text
    assert any(line.split()[:2] == ["modules", "3"] for line in text.splitlines())
    assert any(line.split()[:2] == ["pickles", "1"] for line in text.splitlines())
    assert "externs  json" in text


def test_inspect_json_structure(tiny_archive):
    """--json has every documented key with the documented types."""
    document = run_cli("inspect", tiny_archive, "--json").json()
    assert set(document) == {
        "archive", "archive_name", "format_version", "python_version", "byteorder",
        "file_size", "records", "modules", "pickles", "storages", "resources",
        "metadata", "externs", "mocks", "integrity",
    }  # fmt: skip
    assert document["archive_name"] == "tiny"
    assert document["format_version"] == 6
    names = sorted(document["modules"]["names"])
    assert names == ["tinypkg", "tinypkg.layers", "tinypkg.model"]
    assert document["pickles"]["records"] == ["model/model.pkl"]
    assert document["externs"] == ["json"]
    assert document["mocks"] == []
    assert document["integrity"]["status"] == "verified"
    assert document["integrity"]["manifest"] is True
    assert document["file_size"] == tiny_archive.stat().st_size


@pytest.mark.torch
def test_inspect_a_torch_written_archive(tensor_archives):
    """torch.package's archive: storages counted, no manifest to check."""
    document = run_cli("inspect", tensor_archives["torch"], "--json").json()
    assert document["storages"] == {"count": 3, "bytes": 3 * 4 + 4 * 12 + 8 * 5}
    assert document["pickles"]["records"] == ["weights/state.pkl"]
    assert document["resources"]["records"] == ["weights/README.txt"]
    assert document["integrity"]["status"] == "absent"
    text = run_cli("inspect", tensor_archives["torch"]).stdout
    assert "integrity       absent: no manifest" in text


def test_tree_prints_what_file_structure_prints(tiny_archive):
    """Piped output is exactly PackageImporter.file_structure()'s text."""
    result = run_cli("tree", tiny_archive)
    assert result.returncode == 0
    with PackageImporter(str(tiny_archive)) as importer:
        assert result.stdout == str(importer.file_structure())
        filtered = str(importer.file_structure(include="tinypkg/**", exclude="**/l*"))
    result = run_cli(
        "tree", tiny_archive, "--include", "tinypkg/**", "--exclude", "**/l*"
    )
    assert result.stdout == filtered
    assert "layers.py" not in result.stdout
    assert "model.py" in result.stdout


@pytest.mark.torch
def test_tree_json_of_a_torch_archive(tensor_archives):
    """--json nests folders and files, with record sizes."""
    document = run_cli("tree", tensor_archives["torch"], "--json").json()
    top = document["tree"]
    assert top["type"] == "dir"
    names = [child["name"] for child in top["children"]]
    assert names == [".data", "weights", "byteorder"]
    weights = top["children"][1]
    assert weights["children"] == [
        {"name": "README.txt", "type": "file", "size": 25},
        {"name": "state.pkl", "type": "file", "size": weights["children"][1]["size"]},
    ]


def test_ls_lists_a_package(tiny_archive):
    """ls shows direct entries with their kind and size."""
    result = run_cli("ls", tiny_archive, "tinypkg")
    assert result.returncode == 0
    rows = [line.split()[:2] for line in result.stdout.splitlines()[1:]]
    assert rows == [
        ["__init__.py", "module"],
        ["layers.py", "module"],
        ["model.py", "module"],
    ]
    document = run_cli("ls", tiny_archive, "model", "--json").json()
    assert document["entries"] == [
        {"name": "model.pkl", "kind": "pickle", "size": document["entries"][0]["size"]}
    ]


def test_ls_of_an_unknown_package_is_one_line_exit_1(tiny_archive):
    """A package the archive lacks is named, with where to look."""
    result = run_cli("ls", tiny_archive, "nope.sub")
    assert_one_line_error(result, 1, "no package 'nope.sub'", "hermetic tree")


@pytest.mark.torch
def test_ls_deps_and_extract_on_a_torch_archive(tensor_archives, tmp_path):
    """The other reading verbs take torch.package's archives as they are."""
    archive = tensor_archives["torch"]
    entries = run_cli("ls", archive, "weights", "--json").json()["entries"]
    assert [(e["name"], e["kind"]) for e in entries] == [
        ("README.txt", "resource"),
        ("state.pkl", "pickle"),
    ]
    deps = run_cli("deps", archive, "--json").json()
    assert ["weights/state.pkl", "torch._utils"] in deps["edges"]
    assert deps["roots"] == ["weights/state.pkl"]
    extracted = run_cli("extract", archive, tmp_path, "--json").json()
    assert extracted["directory"] == str(tmp_path / "by_torch")
    assert (tmp_path / "by_torch" / "weights" / "README.txt").read_text() == (
        "tensors for the CLI tests"
    )
