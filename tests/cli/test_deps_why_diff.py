"""`deps`, `why` and `diff`: graphs and comparisons derived without running code."""

from __future__ import annotations

import warnings

import pytest

from cli_helpers import assert_one_line_error, has_dot, run_cli


def test_deps_text_lists_pickles_and_imports(tiny_archive):
    """Each node with its targets: the pickle's classes, the modules' imports."""
    result = run_cli("deps", tiny_archive)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "model/model.pkl  [pickle]"
    assert "  -> tinypkg.model  [module]" in lines
    block = lines[lines.index("tinypkg.model  [module]") :]
    assert "  -> tinypkg.layers  [module]" in block
    assert "  -> json  [extern]" in block


def test_deps_json_structure(tiny_archive):
    """--json gives typed nodes, edges as pairs, and the roots."""
    document = run_cli("deps", tiny_archive, "--json").json()
    assert set(document) == {"archive", "nodes", "edges", "roots", "problems"}
    kinds = {node["name"]: node["kind"] for node in document["nodes"]}
    assert kinds["model/model.pkl"] == "pickle"
    assert kinds["tinypkg"] == "package"
    assert kinds["json"] == "extern"
    assert ["model/model.pkl", "tinypkg.model"] in document["edges"]
    assert ["tinypkg.model", "tinypkg.layers"] in document["edges"]
    assert ["tinypkg.layers", "tinypkg"] in document["edges"]
    assert document["roots"] == ["model/model.pkl"]
    assert document["problems"] == {}


def test_deps_dot_is_graphviz_text(tiny_archive, tmp_path):
    """--format dot writes a digraph with one line per edge."""
    out = tmp_path / "deps.dot"
    assert run_cli("deps", tiny_archive, "--format", "dot", "-o", out).returncode == 0
    text = out.read_text()
    assert text.startswith("digraph hermetic {")
    assert '"model/model.pkl" -> "tinypkg.model";' in text


@pytest.mark.skipif(not has_dot(), reason="Graphviz 'dot' is not installed")
def test_deps_svg_through_graphviz(tiny_archive, tmp_path):
    """--format svg runs dot and writes the picture."""
    out = tmp_path / "deps.svg"
    assert run_cli("deps", tiny_archive, "--format", "svg", "-o", out).returncode == 0
    assert "<svg" in out.read_text()


def test_deps_picture_without_graphviz_says_what_to_do(tiny_archive, tmp_path):
    """With no dot on PATH, --format png fails in one line naming Graphviz."""
    result = run_cli(
        "deps", tiny_archive, "--format", "png", "-o", tmp_path / "x.png",
        env={"PATH": str(tmp_path)},
    )  # fmt: skip
    assert_one_line_error(result, 1, "Graphviz", "--format dot")


def test_why_lists_every_import_path(tiny_archive):
    """Both ways tinypkg.layers got in: named by the pickle, imported by the model."""
    result = run_cli("why", tiny_archive, "tinypkg.layers")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "tinypkg.layers [module]: 2 import paths",
        "  model/model.pkl -> tinypkg.layers",
        "  model/model.pkl -> tinypkg.model -> tinypkg.layers",
    ]
    document = run_cli("why", tiny_archive, "tinypkg.layers", "--json").json()
    assert document == {
        "archive": str(tiny_archive),
        "module": "tinypkg.layers",
        "kind": "module",
        "paths": [
            ["model/model.pkl", "tinypkg.layers"],
            ["model/model.pkl", "tinypkg.model", "tinypkg.layers"],
        ],
        "truncated": False,
    }


def test_why_of_a_module_not_in_the_graph_is_one_line_exit_1(tiny_archive):
    """An unknown module is named, with where to look."""
    result = run_cli("why", tiny_archive, "numpy")
    assert_one_line_error(result, 1, "no module 'numpy'", "hermetic deps")


@pytest.mark.torch
def test_why_in_a_torch_archive(tensor_archives):
    """Pickle globals of a torch.package archive lead to its externs."""
    document = run_cli("why", tensor_archives["torch"], "torch._utils", "--json").json()
    assert document["kind"] == "extern"
    assert document["paths"] == [["weights/state.pkl", "torch._utils"]]


def test_diff_of_an_archive_with_itself(tiny_archive):
    """No differences: exit 0."""
    result = run_cli("diff", tiny_archive, tiny_archive)
    assert (result.returncode, result.stdout) == (0, "no differences\n")


@pytest.mark.torch
def test_diff_torch_and_hermetic_archives_of_the_same_tensors(tensor_archives):
    """torch.package and hermetic wrote the same records and tensors."""
    result = run_cli("diff", tensor_archives["torch"], tensor_archives["hermetic"])
    assert (result.returncode, result.stdout) == (0, "no differences\n")


@pytest.mark.torch
def test_diff_reports_tensor_shapes_and_values(tensor_archives, tmp_path):
    """A reshaped tensor, a changed one and a new one, by digest and shape."""
    import torch

    import hermetic

    changed = tmp_path / "changed.pt"
    with hermetic.PackageExporter(changed) as exporter:
        exporter.save_pickle(
            "weights",
            "state.pkl",
            {
                "fc.weight": torch.zeros(3, 5),
                "fc.bias": torch.ones(3),
                "steps": torch.arange(5, dtype=torch.int64),
                "extra": torch.ones(2, dtype=torch.float16),
            },
        )
        exporter.save_text("weights", "README.txt", "tensors for the CLI tests")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_cli("diff", tensor_archives["torch"], changed)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "tensors: 1 added, 0 removed, 2 changed" in lines
    assert "  + weights/state.pkl:['extra']  float16[2]" in lines
    assert (
        "  ~ weights/state.pkl:['fc.weight']  float32[3, 4] -> float32[3, 5]" in lines
    )
    assert "  ~ weights/state.pkl:['fc.bias']  float32[3], values changed" in lines
    assert "records: 0 added, 0 removed, 1 changed" in lines
    assert lines[-1] == "storages: A 3 (100 B), B 4 (116 B)"
    document = run_cli("diff", tensor_archives["torch"], changed, "--json").json()
    assert document["identical"] is False
    assert [t["id"] for t in document["tensors"]["added"]] == [
        "weights/state.pkl:['extra']"
    ]
    change = next(
        c for c in document["tensors"]["changed"] if c["a"]["path"] == "['fc.weight']"
    )
    assert (change["a"]["shape"], change["b"]["shape"]) == ([3, 4], [3, 5])
    assert change["a"]["dtype"] == "float32"
    assert document["storages"]["b"] == {"count": 4, "bytes": 116}
