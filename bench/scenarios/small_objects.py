"""c. Pickle and unpickle many small objects: hermetic against C pickle.

The objects (dicts, tuples and dataclass instances, see :mod:`._records`) are the
same for every variant. hermetic's times are whole calls as a user makes them:
``save_pickle`` inside an exporter that writes the archive (dependency scan
included), ``PackageImporter(...).load_pickle``. C pickle's are ``pickle.dumps`` and
``pickle.loads`` of bytes already in memory. torch.package's pure-Python pickler is
slow, so it pickles fewer objects and its times are scaled up linearly.
"""

from __future__ import annotations

import os
import pickle
import warnings
from typing import Any

from _harness import Samples, Variant, has_module, run_once, stopwatch
from _report import Row, Target

from . import Config, Outcome
from ._records import make_objects

__all__ = ["load", "prepare", "run", "save"]

MODULE = "small_objects"
EXTERN = ["scenarios", "scenarios.**"]
NEEDS = {"hermetic": ("hermetic",), "pickle": (), "torch.package": ("torch",)}
FILES = {"hermetic": "objects.pt", "pickle": "objects.pickle", "torch.package": "tp.pt"}
AS_FAST = Target(1.5, "≤ 1.5")


# -- worker functions -----------------------------------------------------------------


def _save(writer: str, objects: list[Any], path: str) -> None:
    if writer == "hermetic":
        import hermetic

        with hermetic.PackageExporter(path) as exporter:
            exporter.extern(EXTERN)
            exporter.save_pickle("data", "objects.pkl", objects)
    elif writer == "torch.package":
        import torch.package

        with torch.package.PackageExporter(path) as exporter:
            exporter.extern(EXTERN)
            exporter.save_pickle("data", "objects.pkl", objects)
    elif writer == "pickle":
        data = pickle.dumps(objects)
        with open(path, "wb") as file:
            file.write(data)
    else:
        raise ValueError(writer)


def _load(reader: str, path: str) -> list[Any]:
    if reader == "hermetic":
        import hermetic

        return hermetic.PackageImporter(path).load_pickle("data", "objects.pkl")
    if reader == "torch.package":
        import torch.package

        importer = torch.package.PackageImporter(path)
        return importer.load_pickle("data", "objects.pkl")
    raise ValueError(reader)


def prepare(
    folder: str, count: int, torch_package_count: int, writers: list[str], prefix: str
) -> dict[str, Any]:
    """Write the objects once per format into *folder*, for the load runs."""
    warnings.simplefilter("ignore")
    for writer in writers:
        number = torch_package_count if writer == "torch.package" else count
        path = os.path.join(folder, prefix + FILES[writer])
        _save(writer, make_objects(number), path)
    return {}


def save(writer: str, path: str, count: int) -> dict[str, Any]:
    """Build *count* objects, then time pickling them with *writer*."""
    warnings.simplefilter("ignore")
    objects = make_objects(count)
    _save(writer, make_objects(3), path)  # first-use imports, untimed
    os.unlink(path)
    with stopwatch() as saving:
        if writer == "pickle":
            data = pickle.dumps(objects)
        else:
            _save(writer, objects, path)
    size = len(data) if writer == "pickle" else os.path.getsize(path)
    if writer != "pickle":
        os.unlink(path)
    return {"save_s": saving.seconds, "bytes": size}


def load(reader: str, path: str, count: int) -> dict[str, Any]:
    """Time unpickling the objects at *path* with *reader*; check the count."""
    warnings.simplefilter("ignore")
    if reader == "pickle":
        with open(path, "rb") as file:
            data = file.read()
        pickle.loads(pickle.dumps(make_objects(3)))  # first-use imports, untimed
        with stopwatch() as loading:
            objects = pickle.loads(data)
    else:
        _load(reader, os.path.join(os.path.dirname(path), "warm-" + FILES[reader]))
        with stopwatch() as loading:
            objects = _load(reader, path)
    if len(objects) != count:
        raise AssertionError(f"{reader} loaded {len(objects)} objects, not {count}")
    return {"load_s": loading.seconds}


# -- parent side ---------------------------------------------------------------------


def run(config: Config) -> Outcome:
    """Time saving and loading the objects with hermetic, C pickle and torch.package."""
    scale = config.scale
    folder = config.workdir / "small-objects"
    folder.mkdir(parents=True, exist_ok=True)
    writers = [w for w, needs in NEEDS.items() if all(map(has_module, needs))]
    config.log(f"c. writing {scale.objects:,} small objects")
    common = {"folder": str(folder), "writers": writers}
    run_once(
        MODULE,
        "prepare",
        {
            **common,
            "count": scale.objects,
            "torch_package_count": scale.torch_package_objects,
            "prefix": "",
        },
    )
    # Tiny archives that each load run reads first, so first-use imports go untimed.
    run_once(
        MODULE,
        "prepare",
        {**common, "count": 3, "torch_package_count": 3, "prefix": "warm-"},
    )
    variants = []
    for key, needs in NEEDS.items():
        count = scale.torch_package_objects if key == "torch.package" else scale.objects
        path = str(folder / FILES[key])
        save_path = str(folder / f"save-{FILES[key]}")
        variants.append(
            Variant(
                f"save {key}",
                "save",
                {"writer": key, "path": save_path, "count": count},
                requires=needs,
                context=key == "torch.package",
            )
        )
        variants.append(
            Variant(
                f"load {key}",
                "load",
                {"reader": key, "path": path, "count": count},
                requires=needs,
                context=key == "torch.package",
            )
        )
    config.log("c. pickling and unpickling")
    samples = config.measure(MODULE, variants)
    return Outcome(
        rows=_rows(config, samples), samples=samples, notes=[_note(scale.objects)]
    )


def _note(count: int) -> str:
    return (
        f"c. C pickle uses protocol {pickle.DEFAULT_PROTOCOL} (its default); "
        "hermetic and torch.package use protocol 3 (torch.package's format). "
        f"{count:,} objects = equal numbers of dicts, tuples and dataclass instances."
    )


def _rows(config: Config, s: dict[str, Samples]) -> list[Row]:
    scale = config.scale
    scenario = f"c. {scale.objects:,} small objects (dicts, tuples, dataclasses)"
    factor = scale.objects / scale.torch_package_objects
    scaled = f"measured on {scale.torch_package_objects:,} objects, x {factor:g}"
    return [
        Row(
            scenario,
            "save_pickle time",
            s["save hermetic"],
            "pickle.dumps",
            s["save pickle"],
            "save_s",
            "s",
            AS_FAST,
        ),
        Row(
            scenario,
            "load_pickle time",
            s["load hermetic"],
            "pickle.loads",
            s["load pickle"],
            "load_s",
            "s",
            AS_FAST,
        ),
        Row(
            scenario,
            "save_pickle time",
            s["save hermetic"],
            "torch.package",
            s["save torch.package"],
            "save_s",
            "s",
            peer_scale=factor,
            note=scaled,
        ),
        Row(
            scenario,
            "load_pickle time",
            s["load hermetic"],
            "torch.package",
            s["load torch.package"],
            "load_s",
            "s",
            peer_scale=factor,
            note=scaled,
        ),
    ]
