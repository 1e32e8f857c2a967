"""``hermetic pack``: build an archive from modules, files and objects.

Unlike the reading verbs, ``pack`` imports the modules it packages (as
:class:`hermetic.PackageExporter` does). Sources come from the command line, from a
``[tool.hermetic]`` table in ``pyproject.toml``, or both::

    [tool.hermetic]
    output = "dist/model.pt"           # -o overrides it
    path = ["src"]                     # put on sys.path first (relative to the file)
    modules = ["my_model"]             # saved with save_module
    files = ["scripts/extra.py"]       # a .py file or a package folder
    intern = ["my_model.**"]
    extern = ["numpy.**"]
    mock = ["matplotlib.**"]
    deny = ["requests.**"]

    [tool.hermetic.objects]            # "package/resource" = "module:attribute"
    "model/model.pkl" = "my_model.build:MODEL"

    [tool.hermetic.resources]          # "package/resource" = a file to store as is
    "model/config.json" = "configs/default.json"

Patterns given on the command line come before the table's, and both before the
implicit ``intern("<top>.**")`` of every module and object named.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import CLIError, UsageError, add_progress_option, make_progress
from ._output import Output, human_size

if TYPE_CHECKING:
    from ..progress import Progress

__all__ = [
    "DESCRIPTION",
    "HELP",
    "JSON_DOC",
    "NAME",
    "PackPlan",
    "add_arguments",
    "run",
]

NAME = "pack"
HELP = "build an archive from modules, source files and module:attr objects"
DESCRIPTION = (
    "Build an archive. Each SOURCE is a module name (saved with its dependencies), a "
    "path to a .py file or package folder, or MODULE:ATTR[=PACKAGE/RESOURCE] to pickle "
    "an object (default resource: ATTR/ATTR.pkl). With no SOURCE, the [tool.hermetic] "
    "table of ./pyproject.toml (or --config) says what to pack. This verb imports the "
    "code it packages."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{
  "output": str, "bytes": int,
  "interned": [str], "extern": [str], "mocked": [str],
  "pickles": [str], "resources": [str],
  "unresolved": {str: [str]}           # imports that could not be found
}
"""

_PATTERN_KINDS = ("intern", "extern", "mock", "deny")
_LIST_KEYS = ("path", "modules", "files", *_PATTERN_KINDS)
_TABLE_KEYS = ("objects", "resources")
_KNOWN_KEYS = ("output", *_LIST_KEYS, *_TABLE_KEYS)


@dataclass
class PackPlan:
    """Everything one pack run saves, with patterns in registration order."""

    output: str | None = None
    path: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    objects: dict[str, str] = field(default_factory=dict)  # "pkg/res" -> "mod:attr"
    resources: dict[str, str] = field(default_factory=dict)  # "pkg/res" -> file
    patterns: list[tuple[str, str]] = field(default_factory=list)  # (kind, glob)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """SOURCE..., -o, patterns, --path, --config, --progress."""
    parser.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="MODULE, FILE.py, PACKAGE_DIR or MODULE:ATTR[=PACKAGE/RESOURCE]",
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="the archive to write")
    for kind in _PATTERN_KINDS:
        parser.add_argument(
            f"--{kind}",
            action="append",
            default=[],
            metavar="GLOB",
            help=f"{kind} modules matching GLOB (repeatable)",
        )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="look for modules in DIR too (repeatable; the current folder always is)",
    )
    parser.add_argument(
        "--config",
        metavar="PYPROJECT",
        help="read [tool.hermetic] from this file (default: ./pyproject.toml when "
        "no SOURCE is given)",
    )
    add_progress_option(parser)


def run(args: argparse.Namespace, out: Output) -> int:
    """Build the archive."""
    plan = make_plan(args)
    if plan.output is None:
        raise UsageError("no output file: add -o OUT (or 'output' in [tool.hermetic])")
    if not (plan.modules or plan.files or plan.objects or plan.resources):
        raise UsageError(
            "nothing to pack: name a MODULE, FILE or MODULE:ATTR, or add a "
            "[tool.hermetic] table to pyproject.toml"
        )
    progress = None if out.json_mode else make_progress(args)
    result = _export(plan, plan.output, progress)
    if out.json_mode:
        out.emit_json(result)
        return 0
    modules = ", ".join(
        f"{len(result[k])} {k}" for k in ("interned", "extern", "mocked")
    )
    pickles = len(result["pickles"])
    size = human_size(int(result["bytes"]))
    out.line(
        f"wrote {plan.output} ({size}): modules {modules}; "
        f"{pickles} pickle{'' if pickles == 1 else 's'}"
    )
    unresolved = result["unresolved"]
    if unresolved:
        out.line(
            f"imports not found (skipped): {', '.join(sorted(unresolved))}", "yellow"
        )
    return 0


# -- the plan -------------------------------------------------------------------------


def make_plan(args: argparse.Namespace) -> PackPlan:
    """Merge the command line and the [tool.hermetic] table into one plan."""
    plan = PackPlan(output=args.output)
    plan.patterns = [
        (kind, glob) for kind in _PATTERN_KINDS for glob in getattr(args, kind)
    ]
    plan.path = [os.path.abspath(p) for p in args.path]
    for source in args.sources:
        _add_source(plan, source)
    config = args.config
    if config is None and not args.sources and os.path.isfile("pyproject.toml"):
        config = "pyproject.toml"
    if config is not None:
        _merge_table(plan, config)
    return plan


def _add_source(plan: PackPlan, source: str) -> None:
    if ":" in source and not os.path.exists(source):
        spec, _, target = source.partition("=")
        attr = spec.partition(":")[2]
        name = attr.rpartition(".")[2]
        plan.objects[target or f"{name}/{name}.pkl"] = spec
    elif os.path.exists(source):
        plan.files.append(os.path.abspath(source))
    else:
        plan.modules.append(source)


def _load_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise CLIError(
                "reading pyproject.toml needs Python 3.11 or the tomli package "
                "(pip install tomli)"
            ) from None
    if not os.path.isfile(path):
        raise CLIError(f"{path}: no such file (check --config)")
    try:
        with open(path, "rb") as file:
            data: dict[str, Any] = tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise CLIError(f"{path}: not valid TOML: {exc}") from None
    return data


def _merge_table(plan: PackPlan, path: str) -> None:
    """Add the [tool.hermetic] table of the TOML file at *path* to *plan*."""
    table = _load_toml(path).get("tool", {}).get("hermetic")
    if not isinstance(table, dict):
        raise CLIError(f"{path}: no [tool.hermetic] table (see 'hermetic pack --help')")
    base = Path(path).resolve().parent
    unknown = sorted(set(table) - set(_KNOWN_KEYS))
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r} in [tool.hermetic] "
            f"(known: {', '.join(_KNOWN_KEYS)})"
        )
    lists = {key: _strings(table.get(key, []), key, path) for key in _LIST_KEYS}
    if plan.output is None and "output" in table:
        plan.output = str(base / _string(table["output"], "output", path))
    plan.path += [str(base / p) for p in lists["path"]]
    plan.modules += lists["modules"]
    plan.files += [str(base / f) for f in lists["files"]]
    plan.patterns += [(kind, glob) for kind in _PATTERN_KINDS for glob in lists[kind]]
    for target, spec in _table(table.get("objects", {}), "objects", path).items():
        plan.objects.setdefault(target, spec)
    for target, file in _table(table.get("resources", {}), "resources", path).items():
        plan.resources.setdefault(target, str(base / file))


def _string(value: object, key: str, path: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{path}: [tool.hermetic] {key} must be a string")
    return value


def _strings(value: object, key: str, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{path}: [tool.hermetic] {key} must be a list of strings")
    return list(value)


def _table(value: object, key: str, path: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(v, str) for v in value.values()
    ):
        raise UsageError(
            f'{path}: [tool.hermetic.{key}] must map "package/resource" to strings'
        )
    return dict(value)


# -- exporting -------------------------------------------------------------------


def _split_target(target: str) -> tuple[str, str]:
    package, slash, resource = target.rpartition("/")
    if not slash or not package or not resource:
        raise UsageError(f"{target!r} is not PACKAGE/RESOURCE (e.g. model/model.pkl)")
    return package.replace("/", "."), resource


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise CLIError(
            f"cannot import module {module!r}: {type(exc).__name__}: {exc} "
            "(is it on the path? add --path DIR)"
        ) from exc


def _resolve_object(spec: str) -> tuple[str, Any]:
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise UsageError(f"{spec!r} is not MODULE:ATTR")
    obj = _import(module_name)
    missing = object()
    for part in attr.split("."):
        obj = getattr(obj, part, missing)
        if obj is missing:
            raise CLIError(f"module {module_name!r} has no attribute {attr!r}")
    return module_name, obj


def _export(plan: PackPlan, output: str, progress: Progress | None) -> dict[str, Any]:
    """Write the archive *plan* describes; return the ``pack`` JSON document."""
    from .._exporter import PackageExporter

    for entry in reversed([os.getcwd(), *plan.path]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    importlib.invalidate_caches()
    objects = {target: _resolve_object(spec) for target, spec in plan.objects.items()}
    tops = {name.partition(".")[0] for name in plan.modules}
    tops |= {module.partition(".")[0] for module, _ in objects.values()}
    pickles: list[str] = []
    with PackageExporter(output, progress=progress) as exporter:
        for kind, glob in plan.patterns:
            getattr(exporter, kind)(glob)
        for top in sorted(tops):
            exporter.intern(f"{top}.**")
        for module in plan.modules:
            _import(module)
            exporter.save_module(module)
        for file in plan.files:
            stem = Path(file).name.removesuffix(".py")
            exporter.save_source_file(stem, file)
        for target, (_, obj) in objects.items():
            package, resource = _split_target(target)
            exporter.save_pickle(package, resource, obj)
            pickles.append(target)
        for target, file in plan.resources.items():
            package, resource = _split_target(target)
            exporter.save_binary(package, resource, Path(file).read_bytes())
    return {
        "output": output,
        "bytes": os.path.getsize(output),
        "interned": exporter.interned_modules(),
        "extern": exporter.externed_modules(),
        "mocked": exporter.mocked_modules(),
        "pickles": pickles,
        "resources": list(plan.resources),
        "unresolved": exporter.unresolved_imports(),
    }
