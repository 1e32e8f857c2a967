"""d. Package a real library (networkx) and import it back.

Export: intern ``networkx.**`` and pickle a graph, timed from creating the exporter to
closing it (the library is already imported, as it is when a user exports). Import:
``PackageImporter(path).import_module("networkx")`` in a fresh process, with
hermetic's bytecode cache empty (first import) or filled by an earlier process (second
import, ``HERMETIC_BYTECODE_CACHE`` pointing at it), against a plain
``import networkx`` from site-packages with its ``.pyc`` files. Every import worker
imports hermetic (and torch.package its own module) before the clock starts, so the
standard-library modules they pull in are loaded for all. Warm page cache only.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from _harness import Samples, Variant, has_module, run_once, stopwatch
from _report import Row, Target

from . import Config, Outcome

__all__ = ["export", "import_packaged", "import_plain", "prepare", "run"]

MODULE = "networkx_code"
CACHE_ENV = "HERMETIC_BYTECODE_CACHE"
TEST_MODULES = ["**.tests.**", "**.conftest", "pytest", "_pytest.**"]
#: Optional dependencies networkx may import; the host provides them.
EXTERNS = [
    "sys",
    "io",
    "numpy.**",
    "scipy.**",
    "pandas.**",
    "matplotlib.**",
    "pygraphviz.**",
    "pydot.**",
    "lxml.**",
    "IPython.**",
    "sympy.**",
    "mpmath.**",
    "typing_extensions",
]
FILES = {"hermetic": "networkx_hermetic.pt", "torch.package": "networkx_tp.pt"}
NEEDS = {"hermetic": ("hermetic", "networkx"), "torch.package": ("torch", "networkx")}
HALF = Target(0.5, "≤ 0.5")
NEAR = Target(1.5, "≤ 1.5")


# -- worker functions -----------------------------------------------------------------


def _exporter_module(writer: str) -> Any:
    if writer == "hermetic":
        import hermetic

        return hermetic
    import torch.package

    return torch.package


def _export(writer: str, path: str, graph: Any) -> int:
    module = _exporter_module(writer)
    with module.PackageExporter(path) as exporter:
        exporter.intern("networkx.**", exclude=TEST_MODULES)
        exporter.mock(TEST_MODULES)
        exporter.extern(EXTERNS)
        exporter.save_pickle("data", "graph.pkl", graph)
        interned = len(exporter.interned_modules())
    return interned


def _graph() -> Any:
    import networkx

    return networkx.gnm_random_graph(1000, 5000, seed=0)


def export(writer: str, path: str) -> dict[str, Any]:
    """Time packaging networkx and a pickled graph with *writer*."""
    warnings.simplefilter("ignore")
    graph = _graph()
    _exporter_module(writer)
    with stopwatch() as exporting:
        interned = _export(writer, path, graph)
    size = os.path.getsize(path)
    os.unlink(path)
    return {"export_s": exporting.seconds, "modules": interned, "bytes": size}


def prepare(folder: str, writers: list[str], cache: str) -> dict[str, Any]:
    """Write one archive per writer; fill hermetic's bytecode cache at *cache*."""
    warnings.simplefilter("ignore")
    graph = _graph()  # also writes networkx's .pyc files if they are missing
    interned = {}
    for writer in writers:
        interned[writer] = _export(writer, os.path.join(folder, FILES[writer]), graph)
    entries = 0
    if "hermetic" in writers:
        os.environ[CACHE_ENV] = cache
        import hermetic

        importer = hermetic.PackageImporter(os.path.join(folder, FILES["hermetic"]))
        importer.import_module("networkx")
        entries = sum(len(files) for _, _, files in os.walk(cache))
    return {"interned": interned, "cache_entries": entries}


def import_packaged(loader: str, path: str, fresh_cache_in: str = "") -> dict[str, Any]:
    """Time ``PackageImporter(path).import_module("networkx")`` with *loader*."""
    warnings.simplefilter("ignore")
    if fresh_cache_in:
        os.environ[CACHE_ENV] = tempfile.mkdtemp(dir=fresh_cache_in)
    import hermetic  # noqa: F401 - every import worker loads hermetic first

    # Resolved before the clock, as a caller's ``from hermetic import
    # PackageImporter`` would be (hermetic's public names load lazily).
    importer_class = _exporter_module(loader).PackageImporter
    with stopwatch() as importing:
        networkx = importer_class(path).import_module("networkx")
    if not hasattr(networkx, "Graph"):
        raise AssertionError("the packaged networkx has no Graph")
    return {"import_s": importing.seconds}


def import_plain() -> dict[str, Any]:
    """Time a plain ``import networkx`` (from site-packages, with .pyc files)."""
    import hermetic  # noqa: F401 - the same preloaded modules as the packaged runs

    with stopwatch() as importing:
        import networkx
    cached = Path(networkx.__file__).parent / "__pycache__"
    return {"import_s": importing.seconds, "pyc_files": len(list(cached.glob("*.pyc")))}


# -- parent side ---------------------------------------------------------------------


def run(config: Config) -> Outcome:
    """Time exporting networkx with each packager, and importing it back."""
    folder = config.workdir / "networkx"
    folder.mkdir(parents=True, exist_ok=True)
    writers = [w for w, needs in NEEDS.items() if all(map(has_module, needs))]
    warm_cache = folder / "bytecode-warm"
    fresh_root = folder / "bytecode-fresh"
    fresh_root.mkdir(exist_ok=True)
    if not has_module("networkx"):
        config.log("d. networkx is not installed: skipped")
        return Outcome(notes=["d. networkx is not installed: scenario skipped."])
    config.log("d. writing networkx archives")
    prepared = run_once(
        MODULE,
        "prepare",
        {"folder": str(folder), "writers": writers, "cache": str(warm_cache)},
    )
    variants = [
        Variant(
            f"export {w}",
            "export",
            {"writer": w, "path": str(folder / f"x-{f}")},
            requires=NEEDS[w],
        )
        for w, f in FILES.items()
    ] + [
        Variant("import plain", "import_plain", requires=("hermetic", "networkx")),
        Variant(
            "import hermetic, cache warm",
            "import_packaged",
            {"loader": "hermetic", "path": str(folder / FILES["hermetic"])},
            requires=NEEDS["hermetic"],
            env={CACHE_ENV: str(warm_cache)},
        ),
        Variant(
            "import hermetic, cache empty",
            "import_packaged",
            {
                "loader": "hermetic",
                "path": str(folder / FILES["hermetic"]),
                "fresh_cache_in": str(fresh_root),
            },
            requires=NEEDS["hermetic"],
            context=True,
        ),
        Variant(
            "import torch.package",
            "import_packaged",
            {"loader": "torch.package", "path": str(folder / FILES["torch.package"])},
            requires=NEEDS["torch.package"],
            context=True,
        ),
    ]
    config.log("d. exporting and importing")
    samples = config.measure(MODULE, variants)
    return Outcome(
        rows=_rows(samples),
        samples=samples,
        notes=_notes(prepared, samples),
    )


def _rows(s: dict[str, Samples]) -> list[Row]:
    import networkx

    export = f"d. networkx {networkx.__version__}: intern networkx.**, pickle a graph"
    load = f"d. networkx {networkx.__version__}: import the packaged copy"
    warm, empty = s["import hermetic, cache warm"], s["import hermetic, cache empty"]
    return [
        Row(
            export,
            "export time",
            s["export hermetic"],
            "torch.package",
            s["export torch.package"],
            "export_s",
            "s",
            HALF,
        ),
        Row(
            load,
            "second import (bytecode cache warm)",
            warm,
            "plain import networkx (.pyc)",
            s["import plain"],
            "import_s",
            "s",
            NEAR,
        ),
        Row(
            load,
            "second import (bytecode cache warm)",
            warm,
            "torch.package import",
            s["import torch.package"],
            "import_s",
            "s",
        ),
        Row(
            load,
            "first import (bytecode cache empty)",
            empty,
            "plain import networkx (.pyc)",
            s["import plain"],
            "import_s",
            "s",
        ),
        Row(
            load,
            "first import (bytecode cache empty)",
            empty,
            "torch.package import",
            s["import torch.package"],
            "import_s",
            "s",
        ),
    ]


def _notes(prepared: dict[str, Any], s: dict[str, Samples]) -> list[str]:
    notes = [
        f"d. modules interned: {prepared['interned']}; bytecode cache entries after "
        f"the priming import: {prepared['cache_entries']}."
    ]
    plain = s["import plain"].median("import_s")
    theirs = s["import torch.package"].median("import_s")
    if plain and theirs:
        notes.append(
            f"d. torch.package's import of the packaged networkx takes "
            f"{theirs / plain:.2f}x a plain import (issue 6 measured 3.5x)."
        )
    return notes
