"""Fixtures for the command-line tests: sample archives built once per session.

Every test runs ``hermetic`` in a subprocess, as a user would (see ``cli_helpers``).
Archives are built by hermetic and, for tests marked ``torch``, by torch.package.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from cli_helpers import TINY_SOURCES, run_cli, write_sources


@pytest.fixture(scope="session")
def tiny_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the ``tinypkg`` package."""
    return write_sources(tmp_path_factory.mktemp("tiny-src"), TINY_SOURCES)


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory: pytest.TempPathFactory, tiny_src: Path) -> Path:
    """An archive written by ``hermetic pack``: tinypkg, a pickle, a resource."""
    out = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    result = run_cli(
        "pack", "-o", out, "--path", tiny_src, "tinypkg.model:MODEL=model/model.pkl"
    )
    assert result.returncode == 0, result.stderr
    return out


def _tensor_objects(torch: object) -> dict[str, object]:
    t = torch
    gen = t.Generator().manual_seed(0)
    return {
        "fc.weight": t.randn(3, 4, generator=gen),
        "fc.bias": t.zeros(3),
        "steps": t.arange(5, dtype=t.int64),
    }


def _save_tensors(module: object, path: Path, objects: dict[str, object]) -> Path:
    with module.PackageExporter(str(path)) as exporter:
        exporter.save_pickle("weights", "state.pkl", objects)
        exporter.save_text("weights", "README.txt", "tensors for the CLI tests")
    return path


@pytest.fixture(scope="session")
def tensor_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same state dict written by hermetic and by torch.package."""
    torch = pytest.importorskip("torch", reason="needs torch==2.13.0")
    import hermetic

    folder = tmp_path_factory.mktemp("tensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.package's TypedStorage warnings
        return {
            "hermetic": _save_tensors(
                hermetic, folder / "by_hermetic.pt", _tensor_objects(torch)
            ),
            "torch": _save_tensors(
                torch.package, folder / "by_torch.pt", _tensor_objects(torch)
            ),
        }
