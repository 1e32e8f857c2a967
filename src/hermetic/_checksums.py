"""CRC-32 and SHA-256 of records being written, computed beside the writes.

zlib, hashlib and file writes all release the GIL on large buffers, so a record's
checksums can run on helper threads while the writer thread writes it. The CRC-32 is
needed as soon as the record's bytes are out (its data descriptor follows them); the
SHA-256 only when the manifest is written. Inside :class:`DigestBatch` a record's
SHA-256 may therefore trail its write until the batch ends, so that hashing one
storage overlaps writing the next: hashing, not writing, bounds a large save.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, MutableMapping

__all__ = ["BACKGROUND_SIZE", "Checksums", "DigestBatch", "pieces_of"]

#: Records at least this large are checksummed on helper threads.
BACKGROUND_SIZE = 8 << 20
#: Records are written and hashed in pieces of this size. Larger writes let the kernel
#: fill the page cache with 2 MiB folios (a later mapped load of the file then faults
#: less), but allocating those stalled 1 GiB saves here for one to two seconds in
#: most fresh processes; with 1 MiB writes no save stalled (``make bench``, row b).
_PIECE_SIZE = 1 << 20


def pieces_of(views: Iterable[memoryview]) -> Iterator[memoryview]:
    """Yield *views* as flat bytes in pieces of at most 1 MiB, so hashing overlaps."""
    for view in views:
        flat = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        for start in range(0, flat.nbytes, _PIECE_SIZE):
            yield flat[start : start + _PIECE_SIZE]
        if flat.nbytes == 0:
            yield flat


class _Worker:
    """A daemon thread that runs queued calls in order; :meth:`join` re-raises."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], object] | None] = (
            queue.SimpleQueue()
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (call := self._queue.get()) is not None:
            if self._error is None:
                try:
                    call()
                except BaseException as exc:  # handed to the joining thread
                    self._error = exc

    def put(self, call: Callable[[], object]) -> None:
        self._queue.put(call)

    def wait(self) -> BaseException | None:
        """Wait for every queued call; return the first error one of them raised."""
        self._queue.put(None)
        self._thread.join()
        return self._error

    def join(self) -> None:
        """Wait for every queued call; raise the first error one of them raised."""
        if (error := self.wait()) is not None:
            raise error


class DigestBatch:
    """Helper threads that finish SHA-256 digests after their records are written.

    Each record is hashed by one thread, in order; consecutive records go to
    different threads, so two large records can hash at once. Records hashed through
    the batch must keep their bytes unchanged until :meth:`finish` returns; digests
    land in *digests* (record name → hex) by then.
    """

    def __init__(self, digests: MutableMapping[str, str], *, threads: int = 2) -> None:
        self._digests = digests
        self._workers = [_Worker() for _ in range(max(1, threads))]
        self._turn = 0

    def next_worker(self) -> _Worker:
        """Return the thread that hashes the next record."""
        worker = self._workers[self._turn % len(self._workers)]
        self._turn += 1
        return worker

    def store(self, worker: _Worker, name: str, sha: hashlib._Hash) -> None:
        """Have *worker* store *sha*'s digest as *name* after the pieces it was fed."""
        worker.put(lambda: self._digests.__setitem__(name, sha.hexdigest()))

    def finish(self) -> None:
        """Wait until every digest queued so far is stored."""
        errors = [error for error in map(_Worker.wait, self._workers) if error]
        if errors:
            raise errors[0]


class Checksums:
    """CRC-32 and, with a manifest, SHA-256 of one record, fed its pieces in order.

    With *background*, the CRC-32 runs on a helper thread, and the SHA-256 on the
    *batch*'s thread when there is one (else on a helper of its own). :meth:`finish`
    waits for the CRC-32 and any own helper; a batch's digest is stored later.
    """

    def __init__(
        self, *, sha256: bool, background: bool, batch: DigestBatch | None = None
    ) -> None:
        self.crc = 0
        self._sha = hashlib.sha256() if sha256 else None
        self._batch = batch if background and sha256 else None
        self._crc_worker = _Worker() if background else None
        self._sha_worker: _Worker | None = None
        if background and sha256:
            self._sha_worker = _Worker() if batch is None else batch.next_worker()

    def _update_crc(self, piece: memoryview) -> None:
        self.crc = zlib.crc32(piece, self.crc)

    def update(self, piece: memoryview) -> None:
        """Add the record's next *piece* to both checksums."""
        if self._crc_worker is None:
            self._update_crc(piece)
        else:
            self._crc_worker.put(lambda: self._update_crc(piece))
        if self._sha is None:
            return
        sha = self._sha
        if self._sha_worker is not None:
            self._sha_worker.put(lambda: sha.update(piece))
        else:
            sha.update(piece)

    def finish(self, name: str, digests: MutableMapping[str, str]) -> int:
        """Return the CRC-32; store the record's SHA-256 as *name* in *digests*.

        With a batch, the digest is stored when the batch's thread gets to it.
        """
        crc_worker, sha_worker = self._crc_worker, self._sha_worker
        self._crc_worker = self._sha_worker = None
        if crc_worker is not None:
            crc_worker.join()
        if self._sha is None:
            return self.crc
        if self._batch is not None and sha_worker is not None:
            self._batch.store(sha_worker, name, self._sha)
        else:
            if sha_worker is not None:
                sha_worker.join()
            digests[name] = self._sha.hexdigest()
        return self.crc
