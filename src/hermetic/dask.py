"""Load a package once per worker process, for Dask (or any pool of processes).

:func:`cached_importer` keeps one :class:`~hermetic.PackageImporter` per process for
each archive, keyed by a digest of the archive's contents, and :func:`load` unpickles
a resource through it. A task that calls :func:`load` on a path on shared storage (or
an fsspec URL) therefore opens the archive only on its worker's first task; later
tasks reuse the importer, its imported modules and its mapped storages. Storages are
memory-mapped copy-on-write from the archive file, so worker processes on one machine
share the file's pages in the page cache instead of each holding a copy. The workers
need hermetic (and whatever the package marks extern) but not the packaged code.

Nothing but :func:`preload` imports dask or distributed: the functions run in any
process. Use them from tasks::

    from distributed import Client
    import hermetic.dask

    def predict(batch):
        model = hermetic.dask.load("/shared/model.pt", "model", "model.pkl")
        return model(batch)

    client = Client("tcp://scheduler:8786")
    futures = client.map(predict, batches)          # one load per worker process
    results = client.gather(futures)
    single = client.submit(hermetic.dask.load, "s3://bucket/model.pt", "model",
                           "config.pkl", storage_options={"anon": True}).result()
    hermetic.dask.preload(client, "/shared/model.pt")  # optional: open it now

Only :func:`preload` needs distributed (``pip install 'hermetic[dask]'``).

:func:`load` returns the object the worker's importer unpickled; a task that returns
it sends it back through Dask's own serialisation, so keep large results on workers.

The digest is the SHA-256 of the archive's manifest record
(``.data/hermetic/manifest.json``, which lists the SHA-256 of every record) when it
has one; otherwise of the ZIP central directory's names, CRC-32s and sizes; for an
unzipped package folder, of its path and every file's size and modification time.
An archive replaced by one with other contents therefore gets a new importer; the old
one stays cached until :func:`clear_cache`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from ._archive_reader import ArchiveReader
from ._format import MANIFEST_RECORD
from ._importer import PackageImporter
from ._remote import is_url, open_url_reader
from .errors import MissingDependencyError

__all__ = ["cached_importer", "clear_cache", "digest", "load", "preload"]

_cache: dict[tuple[str, str], PackageImporter] = {}
_lock = threading.Lock()


def cached_importer(
    path_or_url: str | os.PathLike[str], /, **options: Any
) -> PackageImporter:
    """Return this process's importer of the archive, opening it on the first call.

    Calls with the same archive contents (see :func:`digest`) and the same *options*
    return the same importer, from any thread.

    Args:
        path_or_url: a local path (an archive or unzipped package folder) or an
            fsspec URL (``s3://``, ``http(s)://``, ``file://``, ``memory://``).
        options: keyword arguments of :class:`~hermetic.PackageImporter`, e.g.
            ``verify``, ``safe``, ``environment``, ``storage_options``.

    Example:
        >>> importer = cached_importer("/shared/model.pt")  # doctest: +SKIP
        >>> importer is cached_importer("/shared/model.pt")  # doctest: +SKIP
        True
    """
    return _cached(path_or_url, options)[1]


def _cached(
    target: str | os.PathLike[str], options: dict[str, Any]
) -> tuple[str, PackageImporter]:
    reader = _open(target, options)
    owned = False
    try:
        archive_digest = _digest_of(reader)
        key = (archive_digest, _options_key(options))
        with _lock:
            importer = _cache.get(key)
            if importer is None:
                importer = PackageImporter(reader, **_importer_options(options))
                _cache[key] = importer
                owned = True  # the importer closes the reader
            return archive_digest, importer
    finally:
        if not owned:
            reader.close()


def load(
    path_or_url: str | os.PathLike[str],
    package: str,
    resource: str,
    /,
    **options: Any,
) -> Any:
    """Unpickle *resource* in *package* with this process's cached importer.

    Same as ``cached_importer(path_or_url, **options).load_pickle(package, resource)``.
    """
    return cached_importer(path_or_url, **options).load_pickle(package, resource)


def digest(path_or_url: str | os.PathLike[str], /, **options: Any) -> str:
    """Return the hex SHA-256 that identifies the archive's contents in the cache."""
    reader = _open(path_or_url, options)
    try:
        return _digest_of(reader)
    finally:
        reader.close()


def clear_cache() -> None:
    """Close and forget every importer this process cached."""
    with _lock:
        importers = list(_cache.values())
        _cache.clear()
    for importer in importers:
        importer.close()


def preload(
    client: Any, path_or_url: str | os.PathLike[str], /, **options: Any
) -> dict[str, str]:
    """Open the archive on every worker of *client* now, rather than in a first task.

    Args:
        client: a ``distributed.Client``.

    Returns:
        The digest each worker cached the archive under, by worker address.

    Raises:
        MissingDependencyError: distributed is not installed.
    """
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError(
            "distributed", "dask", "hermetic.dask.preload"
        ) from exc
    if not isinstance(client, distributed.Client):
        raise TypeError(f"expected a distributed.Client, got {type(client).__name__}")
    result: dict[str, str] = client.run(_preload_here, os.fspath(path_or_url), options)
    return result


def _preload_here(target: str, options: dict[str, Any]) -> str:
    return _cached(target, options)[0]


def _open(target: str | os.PathLike[str], options: dict[str, Any]) -> ArchiveReader:
    if is_url(target):
        return open_url_reader(str(target), options.get("storage_options"))
    return ArchiveReader(target)


def _importer_options(options: dict[str, Any]) -> dict[str, Any]:
    # The reader is already open, so the URL's storage options were used up.
    return {k: v for k, v in options.items() if k != "storage_options"}


def _options_key(options: dict[str, Any]) -> str:
    return repr(sorted(options.items()))


def _digest_of(reader: ArchiveReader) -> str:
    sha = hashlib.sha256()
    if reader.has_record(MANIFEST_RECORD):
        sha.update(b"manifest\0" + reader.read(MANIFEST_RECORD))
    elif reader.is_directory:
        sha.update(b"folder\0" + os.fsencode(os.path.realpath(reader.name)))
        for name in reader.record_names():
            stat = os.stat(os.path.join(reader.name, name))
            sha.update(f"\0{name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    else:
        sha.update(b"zip")
        for name in reader.record_names():
            info = reader.record_info(name)
            if info is not None:
                sha.update(f"\0{name}\0{info.CRC}\0{info.file_size}".encode())
    return sha.hexdigest()
