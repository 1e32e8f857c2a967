"""TorchScript modules in a package, through torch's own C++ serializer and loader.

torch saves a ScriptModule (``torch.jit.script``/``trace``) from its
``__reduce_package__``, which calls ``exporter.script_module_serializer.serialize``: a
C++ ``ScriptModuleSerializer`` bound to a C++ ``PyTorchFileWriter``. Loading calls
``torch.jit._script.unpackage_script_module``, which passes the importer's C++
``PyTorchFileReader`` to ``torch._C._import_ir_module_from_package``. Neither accepts a
Python archive, so:

* saving: :class:`ScriptModuleWriter` is the exporter's ``script_module_serializer``.
  The C++ serializer writes into a private side archive (a temporary file) whose
  TorchScript records and storages are copied into the package when it closes. The
  serializer numbers storages itself, so its numbering is first advanced past the
  keys the exporter has handed out, and the keys it then uses are reserved.
* loading: :func:`load_script_module` replaces torch's loader (see
  :func:`._torch.load_override`). It gives the C++ loader a small in-memory archive
  of the ``.data/ts_code/`` records only, and every storage through the storage
  context, taken from the importer's shared storages. So it works for archives in
  buffers and unzipped folders too, and a ScriptModule shares storages with the
  tensors of every other ``load_pickle`` call.

It does not share one storage between a ScriptModule and a pickled tensor when
hermetic *saves* them (the bytes are written twice, and load as two storages), and
it does not honour torch's ``_gate_torchscript_serialization`` flag (the format is
the same with or without it).
"""

from __future__ import annotations

import io
import os
import pickletools
import re
import shutil
import tempfile
import threading
import weakref
from typing import TYPE_CHECKING, Any

from .._archive_reader import ArchiveReader
from .._archive_writer import ArchiveWriter
from .._format import DATA_DIR
from ..errors import PickleLoadError
from ._torch import cached_storage, import_torch

if TYPE_CHECKING:
    from .._exporter import PackageExporter
    from .._importer import PackageImporter

__all__ = ["ScriptModuleWriter", "load_script_module"]

_TS_CODE = f"{DATA_DIR}/ts_code/"
_STORAGE_RECORD = re.compile(rf"{re.escape(DATA_DIR)}/(\d+)\.storage")


class ScriptModuleWriter:
    """The exporter's ``script_module_serializer``: torch's C++ serializer, on the side.

    Args:
        exporter: the exporter whose storage keys the serializer must not reuse.
    """

    def __init__(self, exporter: PackageExporter) -> None:
        torch = import_torch()
        self._exporter = exporter
        self._folder = tempfile.mkdtemp(prefix="hermetic-torchscript-")
        self._cleanup = weakref.finalize(
            self, shutil.rmtree, self._folder, ignore_errors=True
        )
        self._path = os.path.join(self._folder, "torchscript.pt")
        self._writer: Any = torch._C.PyTorchFileWriter(self._path)
        self._serializer: Any = torch._C.ScriptModuleSerializer(self._writer)
        self._context: Any = self._serializer.storage_context()
        self._next_id = 0  # the id the serializer's context gives the next storage
        self._fillers: list[Any] = []  # kept alive: their ids must stay taken

    def serialize(self, module: Any, script_module_id: int) -> None:
        """Write the C++ module *module* as TorchScript code record set *id*."""
        torch = import_torch()
        first_free = self._exporter._next_free_storage_key()
        while self._next_id < first_free:
            filler = torch.UntypedStorage(0)
            self._fillers.append(filler)
            self._next_id = self._context.get_or_add_storage(filler) + 1
        self._serializer.serialize(module, script_module_id)
        for name in self._writer.get_all_written_records():
            match = _STORAGE_RECORD.fullmatch(name)
            if match is not None and int(match[1]) >= first_free:
                key = int(match[1])
                self._exporter._reserve_storage_key(("torchscript", key), key)
                self._next_id = max(self._next_id, key + 1)

    def write_into(self, archive: ArchiveWriter) -> None:
        """Finish the TorchScript records and copy them into *archive*."""
        self._serializer.write_files()
        self._writer.write_end_of_file()
        self._serializer = self._writer = self._context = None
        with ArchiveReader(self._path) as side:
            for name in side.record_names():
                if name.startswith(_TS_CODE) or _STORAGE_RECORD.fullmatch(name):
                    archive.write_record(name, side.read(name))
        self.discard()

    def discard(self) -> None:
        """Remove the side archive."""
        self._serializer = self._writer = self._context = None
        self._fillers.clear()
        self._cleanup()


class _LoadState:
    """What loading ScriptModules keeps per importer."""

    def __init__(self, importer: PackageImporter) -> None:
        torch = import_torch()
        self.lock = threading.Lock()
        self.reader: Any = torch._C.PyTorchFileReader(_code_archive(importer))
        self.context: Any = torch._C.DeserializationStorageContext()


_state_lock = threading.Lock()


def load_script_module(importer: PackageImporter, script_module_id: str) -> Any:
    """Load ScriptModule *script_module_id* of *importer*'s package.

    Stands in for ``torch.jit._script.unpackage_script_module`` while unpickling.
    """
    torch = import_torch()
    map_location = _script_map_location(importer, str(script_module_id))
    state = _load_state(importer)
    with state.lock:
        _share_storages(importer, state, str(script_module_id))
        module = torch._C._import_ir_module_from_package(
            torch._C.CompilationUnit(),
            state.reader,
            state.context,
            map_location,
            str(script_module_id),
        )
    return torch.jit._recursive.wrap_cpp_module(module)


def _script_map_location(importer: PackageImporter, script_module_id: str) -> Any:
    """Return the running load's map_location as torch's C++ loader takes it."""
    torch = import_torch()
    map_location = importer.last_map_location
    problem = None
    if not (map_location is None or isinstance(map_location, (str, torch.device))):
        problem = (
            "needs map_location None, a string or a torch.device (torch's loader "
            f"takes no {type(map_location).__name__})"
        )
    elif map_location is not None:
        map_location = torch.device(map_location)
        if map_location.type == "cuda" and not torch.cuda.is_available():
            problem = (
                f"is mapped to {str(map_location)!r}, but torch.cuda.is_available() "
                "is False here; load with map_location='cpu'"
            )
    if problem is not None:
        raise PickleLoadError(
            f"ScriptModule {script_module_id!r} {problem}",
            archive=importer.filename,
            record=f"{_TS_CODE}{script_module_id}/data.pkl",
        )
    return map_location


def _load_state(importer: PackageImporter) -> _LoadState:
    with _state_lock:
        state: _LoadState | None = importer.__dict__.get("_torchscript_state")
        if state is None:
            state = importer.__dict__["_torchscript_state"] = _LoadState(importer)
        return state


def _code_archive(importer: PackageImporter) -> io.BytesIO:
    """Return an archive of the package's ``.data/ts_code/`` records only."""
    reader = importer.zip_reader
    buffer = io.BytesIO()
    with ArchiveWriter(buffer) as writer:
        for name in reader.record_names():
            if name.startswith(_TS_CODE):
                writer.write_record(name, reader.read(name))
    buffer.seek(0)
    return buffer


def _share_storages(
    importer: PackageImporter, state: _LoadState, script_module_id: str
) -> None:
    """Put the storages a ScriptModule names into the context, from the importer."""
    torch = import_torch()
    reader = importer.zip_reader
    for part in ("data.pkl", "constants.pkl"):
        record = f"{_TS_CODE}{script_module_id}/{part}"
        if not reader.has_record(record):
            continue
        for name in _storage_names(reader.read(record)):
            storage_record = f"{DATA_DIR}/{name}"
            if state.context.has_storage(name) or not reader.has_record(storage_record):
                continue
            storage = cached_storage(importer, storage_record)
            tensor = torch.empty(0, dtype=torch.uint8).set_(storage)
            state.context.add_storage(name, tensor)


def _storage_names(data: bytes) -> set[str]:
    """Return the strings of a TorchScript pickle that name storages (``"0.storage"``).

    A superset is harmless: only names of existing records are used.
    """
    names: set[str] = set()
    try:
        for _, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and arg.endswith(".storage"):
                names.add(arg)
    except (ValueError, EOFError):  # torch's loader reports a broken pickle itself
        pass
    return names
