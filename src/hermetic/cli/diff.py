"""``hermetic diff A B``: which modules, records and tensors differ between archives."""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import asdict
from typing import Any

from .._format import (
    ENVIRONMENT_RECORD,
    MANIFEST_RECORD,
    SERIALIZATION_ID_RECORD,
    SIGNATURE_RECORD,
)
from ._common import open_reader
from ._contents import Contents, load_contents, record_digest
from ._output import Output, human_size
from ._pickles import TensorInfo, read_pickle

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

#: Records computed from the others (they differ whenever anything does) or that
#: describe the build host rather than the content (the recorded environment).
_DERIVED = frozenset(
    {ENVIRONMENT_RECORD, MANIFEST_RECORD, SERIALIZATION_ID_RECORD, SIGNATURE_RECORD}
)

NAME = "diff"
HELP = "compare two archives: modules, records and tensors added, removed or changed"
DESCRIPTION = (
    "Compare two archives by content: modules and records by SHA-256, tensors and "
    "arrays (found in pickles without loading them) by dtype, shape and the digest of "
    "their bytes, and storages by count and size. Exit status 1 when they differ, "
    "as diff(1)."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{
  "a": str, "b": str, "identical": bool,
  "modules": {"added": [str], "removed": [str], "changed": [str]},
  "records": {"added": [str], "removed": [str], "changed": [str]},
  "tensors": {"added": [tensor], "removed": [tensor],
              "changed": [{"a": tensor, "b": tensor}]},
  "storages": {"a": {"count": int, "bytes": int}, "b": {"count": int, "bytes": int}}
}
# tensor: {"id": "record:path", "path": str, "kind": "tensor" | "array",
#          "dtype": str, "shape": [int], "stride": [int] | null, "offset": int,
#          "storage": str | null, "sha256": str}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """A B."""
    parser.add_argument("a", metavar="A", help="the first archive")
    parser.add_argument("b", metavar="B", help="the second archive")


def run(args: argparse.Namespace, out: Output) -> int:
    """Print the differences; 1 when there are any."""
    with open_reader(args.a) as reader_a, open_reader(args.b) as reader_b:
        side_a = _Side(load_contents(reader_a))
        side_b = _Side(load_contents(reader_b))
        document = compare(args.a, args.b, side_a, side_b)
    if out.json_mode:
        out.emit_json(document)
    else:
        _print(out, document)
    return 0 if document["identical"] else 1


class _Side:
    """One archive's digests: modules, other records, tensors, storages."""

    def __init__(self, contents: Contents) -> None:
        reader = contents.reader
        self.contents = contents
        self.modules = {
            name: record_digest(reader, m.record)
            for name, m in contents.modules.items()
        }
        module_records = {m.record for m in contents.modules.values()}
        storage_records = set(contents.storages.values())
        skipped = module_records | storage_records | _DERIVED
        self.records = {
            name: record_digest(reader, name)
            for name in contents.sizes
            if name not in skipped
        }
        self._storage_digests: dict[str, str] = {}
        self.tensors: dict[str, tuple[TensorInfo, str, str]] = {}
        for record in contents.pickles:
            for tensor in read_pickle(reader.read(record)).tensors:
                key = f"{record}:{tensor.path}"
                self.tensors[key] = (tensor, self._digest(tensor), key)

    def _digest(self, tensor: TensorInfo) -> str:
        """Digest of the tensor's view parameters and its storage's bytes."""
        storage = ""
        if tensor.storage is not None:
            record = self.contents.storages.get(tensor.storage)
            if record is not None:
                if tensor.storage not in self._storage_digests:
                    self._storage_digests[tensor.storage] = record_digest(
                        self.contents.reader, record
                    )
                storage = self._storage_digests[tensor.storage]
        view = (
            f"{tensor.dtype}|{tensor.shape}|{tensor.stride}|{tensor.offset}|{storage}"
        )
        return hashlib.sha256(view.encode()).hexdigest()

    def storage_summary(self) -> dict[str, int]:
        storages = self.contents.storages
        return {"count": len(storages), "bytes": self.contents.size_of(storages)}


def _changes(a: dict[str, str], b: dict[str, str]) -> dict[str, list[str]]:
    return {
        "added": sorted(set(b) - set(a)),
        "removed": sorted(set(a) - set(b)),
        "changed": sorted(name for name in set(a) & set(b) if a[name] != b[name]),
    }


def _tensor_json(tensor: TensorInfo, digest: str, key: str) -> dict[str, Any]:
    return {"id": key, **asdict(tensor), "sha256": digest}


def compare(path_a: str, path_b: str, a: _Side, b: _Side) -> dict[str, Any]:
    """Return the ``diff`` JSON document."""
    modules = _changes(a.modules, b.modules)
    records = _changes(a.records, b.records)
    tensor_names = _changes(
        {k: v[1] for k, v in a.tensors.items()}, {k: v[1] for k, v in b.tensors.items()}
    )
    tensors = {
        "added": [_tensor_json(*b.tensors[k]) for k in tensor_names["added"]],
        "removed": [_tensor_json(*a.tensors[k]) for k in tensor_names["removed"]],
        "changed": [
            {"a": _tensor_json(*a.tensors[k]), "b": _tensor_json(*b.tensors[k])}
            for k in tensor_names["changed"]
        ],
    }
    storages = {"a": a.storage_summary(), "b": b.storage_summary()}
    identical = (
        not any(modules.values())
        and not any(records.values())
        and not any(tensors.values())
        and storages["a"] == storages["b"]
    )
    return {
        "a": path_a,
        "b": path_b,
        "identical": identical,
        "modules": modules,
        "records": records,
        "tensors": tensors,
        "storages": storages,
    }


def _describe(tensor: dict[str, Any]) -> str:
    shape = ", ".join(str(n) for n in tensor["shape"])
    return f"{tensor['dtype']}[{shape}]"


def _print(out: Output, document: dict[str, Any]) -> None:
    if document["identical"]:
        out.line("no differences")
        return
    for section in ("modules", "records"):
        changes = document[section]
        counts = ", ".join(
            f"{len(changes[k])} {k}" for k in ("added", "removed", "changed")
        )
        out.line(f"{section}: {counts}")
        for key, mark, style in _MARKS:
            for name in changes[key]:
                out.line(f"  {mark} {name}", style)
    tensors = document["tensors"]
    counts = ", ".join(
        f"{len(tensors[k])} {k}" for k in ("added", "removed", "changed")
    )
    out.line(f"tensors: {counts}")
    for tensor in tensors["added"]:
        out.line(f"  + {_label(tensor)}  {_describe(tensor)}", "green")
    for tensor in tensors["removed"]:
        out.line(f"  - {_label(tensor)}  {_describe(tensor)}", "red")
    for change in tensors["changed"]:
        old, new = change["a"], change["b"]
        what = (
            f"{_describe(old)} -> {_describe(new)}"
            if _describe(old) != _describe(new)
            else f"{_describe(new)}, values changed"
        )
        out.line(f"  ~ {_label(new)}  {what}", "yellow")
    sa, sb = document["storages"]["a"], document["storages"]["b"]
    out.line(
        f"storages: A {sa['count']} ({human_size(sa['bytes'])}), "
        f"B {sb['count']} ({human_size(sb['bytes'])})"
    )


def _label(tensor: dict[str, Any]) -> str:
    return str(tensor["id"])


_MARKS = (("added", "+", "green"), ("removed", "-", "red"), ("changed", "~", "yellow"))
