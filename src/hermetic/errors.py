"""Every exception hermetic raises on purpose.

::

    HermeticError(Exception)
    ├── ArchiveError                      .archive .record: unreadable or malformed
    │   ├── ArchiveFormatError(ValueError)    unsupported .data/version, bad record name
    │   └── IntegrityError                a record differs from the archive's manifest
    │       └── SignatureError            a signature is missing, malformed or wrong
    ├── PackagingError                    .problems: broken modules grouped by reason
    ├── EmptyMatchError                   an allow_empty=False pattern matched nothing
    ├── EnvironmentMismatchError          .mismatches: externs or Python differ
    ├── ImportFromPackageError(ModuleNotFoundError)   not in the package nor extern
    ├── PickleLoadError(pickle.UnpicklingError)       .archive .record .global_name
    ├── PickleSaveError(pickle.PicklingError)         .record: an object cannot be saved
    ├── ObjNotFoundError                  an importer cannot find an object by name
    ├── ObjMismatchError                  an importer finds a different object by name
    ├── UnsafeContentError                a safe load refused a global, opcode or import
    └── MissingDependencyError(ImportError)           an optional extra is not installed

``EnvironmentMismatchWarning(UserWarning)`` is the warning form of
``EnvironmentMismatchError`` (the default policy of ``PackageImporter(environment=)``).

Each error subclasses the builtin a caller would already catch, keeps its context in
attributes and survives pickling (so errors cross process boundaries intact).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ArchiveError",
    "ArchiveFormatError",
    "EmptyMatchError",
    "EnvironmentMismatchError",
    "EnvironmentMismatchWarning",
    "HermeticError",
    "ImportFromPackageError",
    "IntegrityError",
    "MissingDependencyError",
    "ObjMismatchError",
    "ObjNotFoundError",
    "PackagingError",
    "PickleLoadError",
    "PickleSaveError",
    "SignatureError",
    "UnsafeContentError",
]


class HermeticError(Exception):
    """Root of every error hermetic raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        if isinstance(self, ImportError):
            # ImportError keeps name and path in slots, not in __dict__.
            state.update(name=self.name, path=self.path)
        return (_rebuild_error, (type(self), self.args, state))


def _rebuild_error(
    cls: type[HermeticError], args: tuple[Any, ...], state: dict[str, Any]
) -> HermeticError:
    error = cls.__new__(cls)
    if isinstance(error, ImportError):
        name, path = state.pop("name", None), state.pop("path", None)
        ImportError.__init__(error, *args, name=name, path=path)
    else:
        Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


def _located(message: str, archive: str, record: str | None) -> str:
    """Prefix *message* with the archive and record it is about, when known.

    >>> _located("bad", "m.pt", "a/b.pkl")
    "m.pt: record 'a/b.pkl': bad"
    >>> _located("bad", "", None)
    'bad'
    """
    where = archive
    if record is not None:
        where = f"{archive}: record {record!r}" if archive else f"record {record!r}"
    return f"{where}: {message}" if where else message


class ArchiveError(HermeticError):
    """The archive cannot be read or written; names *archive* and maybe *record*."""

    def __init__(self, message: str, *, archive: str = "", record: str | None = None):
        super().__init__(_located(message, archive, record))
        self.archive = archive
        self.record = record


class ArchiveFormatError(ArchiveError, ValueError):
    """The archive is readable but breaks the format (version, names, sizes)."""


class IntegrityError(ArchiveError):
    """A record's bytes, name or size differ from what the archive's manifest records.

    Also raised when the manifest itself is damaged, or when verification was asked
    for and the archive has no manifest. *record* names the first record that failed.
    """


class SignatureError(IntegrityError):
    """A signature is missing or malformed, or does not verify with the key given."""


class PackagingError(HermeticError):
    """Dependency problems found while exporting, all reported at once.

    ``problems`` maps each reason (a human sentence) to the modules that have it, each
    with optional context lines, in the order they were first seen.
    """

    def __init__(
        self,
        message: str,
        *,
        problems: Mapping[str, Iterable[str]] | None = None,
        dependency_graph: object = None,
    ):
        super().__init__(message)
        self.problems = {
            reason: list(mods) for reason, mods in (problems or {}).items()
        }
        self.dependency_graph = dependency_graph


class EmptyMatchError(HermeticError):
    """A pattern registered with ``allow_empty=False`` matched no module."""


class EnvironmentMismatchError(HermeticError):
    """An archive's recorded environment differs from this host's.

    ``mismatches`` lists ``(name, recorded, installed)``: a distribution or
    ``"Python"``, the version the archive records, and the version here (None when the
    distribution is not installed).
    """

    def __init__(
        self,
        message: str,
        *,
        mismatches: Iterable[tuple[str, str, str | None]] = (),
    ):
        super().__init__(message)
        self.mismatches = list(mismatches)


class EnvironmentMismatchWarning(UserWarning):
    """An archive's recorded environment differs from this host's (policy "warn")."""


class ImportFromPackageError(HermeticError, ModuleNotFoundError):
    """A module is neither inside the package nor one of its externs."""

    def __init__(self, message: str, *, name: str, archive: str = ""):
        super().__init__(message)
        self.name = name
        self.archive = archive


class PickleLoadError(HermeticError, pickle.UnpicklingError):
    """A pickle record cannot be loaded: names the archive, record and global."""

    def __init__(
        self,
        message: str,
        *,
        archive: str = "",
        record: str = "",
        global_name: str | None = None,
    ):
        super().__init__(f"{archive}: record {record!r}: {message}")
        self.archive = archive
        self.record = record
        self.global_name = global_name


class PickleSaveError(HermeticError, pickle.PicklingError):
    """An object cannot be pickled into the package: names the record."""

    def __init__(self, message: str, *, record: str = ""):
        super().__init__(f"record {record!r}: {message}" if record else message)
        self.record = record


class ObjNotFoundError(HermeticError):
    """An importer could not find an object under the name it claims."""


class ObjMismatchError(HermeticError):
    """An importer found a different object under the name an object claims."""


class UnsafeContentError(HermeticError):
    """Safe loading refused something that could run code or change host state.

    *global_name* is the refused ``module.qualname`` (if a global was refused) and
    *opcode* the refused pickle opcode (if an opcode was); *record* is the record
    being loaded, or the module whose import was refused.
    """

    def __init__(
        self,
        message: str,
        *,
        archive: str = "",
        record: str | None = None,
        global_name: str | None = None,
        opcode: str | None = None,
        offset: int | None = None,
    ):
        super().__init__(_located(message, archive, record))
        self.archive = archive
        self.record = record
        self.global_name = global_name
        self.opcode = opcode
        self.offset = offset


class MissingDependencyError(HermeticError, ImportError):
    """An optional dependency is needed: the message says which extra to install."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs {package}, which is not installed: "
            f"pip install 'hermetic[{extra}]'"
        )
        self.package = package
        self.extra = extra
