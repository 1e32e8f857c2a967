"""A per-user cache of compiled packaged modules, keyed by the source's digest.

Loading a package compiles every module it imports; the second load of the same
source should cost what a plain import with ``.pyc`` files costs. Entries are keyed by
SHA-256 of the source record's bytes, in a folder per bytecode magic number, so a hit
can only be the code compiled from those exact bytes by this Python. When the importer
has already checked the record against the archive's manifest, it passes that digest
and the source is not hashed a second time.

Safety: the folder is created private (``0o700``) and not used at all if another user
owns it or others may write to it; each entry carries the SHA-256 of its payload, so a
truncated or altered entry is ignored (and recompiled). Writers write a temporary file
and rename it into place, so concurrent loaders never see half an entry.

Set ``HERMETIC_BYTECODE_CACHE=0`` to turn the cache off, or a path to move it (the
default is ``$XDG_CACHE_HOME/hermetic/bytecode``, else ``~/.cache/hermetic/bytecode``).
"""

from __future__ import annotations

import _imp
import contextlib
import hashlib
import importlib.util
import marshal
import os
import stat
import tempfile
from pathlib import Path
from types import CodeType

__all__ = ["compile_cached", "with_filename"]

_ENV = "HERMETIC_BYTECODE_CACHE"
_PLACEHOLDER = "<hermetic-cached>"
_DIGEST_SIZE = 32


def compile_cached(source: bytes, filename: str, *, sha256: str = "") -> CodeType:
    """Return *source* compiled as if from *filename*, reusing a cached compile.

    *sha256* is the hex digest of *source* when the caller knows it already.
    """
    folder = _cache_folder()
    if folder is None:
        return compile(_universal_newlines(source), filename, "exec", dont_inherit=True)
    key = sha256 or hashlib.sha256(source).hexdigest()
    entry = os.path.join(folder, key[:2], f"{key}.bin")
    code = _read_entry(entry)
    if code is None:
        normalized = _universal_newlines(source)
        code = compile(normalized, _PLACEHOLDER, "exec", dont_inherit=True)
        _write_entry(entry, code)
    return with_filename(code, filename)


def with_filename(code: CodeType, filename: str) -> CodeType:
    """Return *code* with ``co_filename`` of it and every code object in it replaced.

    *code* must be fresh from ``compile`` or ``marshal.loads`` (nobody else holds
    it): CPython's own helper for ``.pyc`` files relabels it in place, in C.
    """
    fix = getattr(_imp, "_fix_co_filename", None)
    if fix is not None:
        fix(code, filename)
        return code
    return _replaced_filename(code, filename)


def _replaced_filename(code: CodeType, filename: str) -> CodeType:
    constants = tuple(
        _replaced_filename(const, filename) if isinstance(const, CodeType) else const
        for const in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=constants)


def _universal_newlines(source: bytes) -> bytes:
    """Return *source* with CRLF and CR line ends made LF, as ``compile`` expects."""
    return source.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _cache_folder() -> str | None:
    """Return the private cache folder, or None when it is off or not safe to use."""
    setting = os.environ.get(_ENV, "")
    if setting not in _folders:
        _folders[setting] = _find_folder(setting)
    return _folders[setting]


_folders: dict[str, str | None] = {}


def _find_folder(setting: str) -> str | None:
    if setting.lower() in ("0", "off", "false", "no"):
        return None
    if setting:
        base = Path(setting)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "hermetic" / "bytecode"
    folder = base / importlib.util.MAGIC_NUMBER.hex()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(folder) if _is_private(base) and _is_private(folder) else None
    except OSError:
        return None


def _is_private(folder: Path) -> bool:
    """Tell whether only the current user can write into *folder*."""
    info = folder.stat()
    owner_ok = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return owner_ok and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read_entry(entry: str) -> CodeType | None:
    try:
        with open(entry, "rb") as file:
            data = file.read()
    except OSError:
        return None
    digest, payload = data[:_DIGEST_SIZE], data[_DIGEST_SIZE:]
    if hashlib.sha256(payload).digest() != digest:
        return None
    try:
        code = marshal.loads(payload)  # noqa: S302 - our own private, digested entry
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _write_entry(entry: str, code: CodeType) -> None:
    payload = marshal.dumps(code)
    folder = os.path.dirname(entry)
    with contextlib.suppress(OSError):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(hashlib.sha256(payload).digest() + payload)
            os.replace(temp, entry)
        except OSError:
            os.unlink(temp)
            raise
