"""Number the storages an exporter saves, once each, in first-use order.

A storage (the memory behind a tensor or array) gets one key per exporter however
many pickles share it, and a pickle that fails gives its new keys back. This module
writes nothing: new storages are queued for the exporter to write as storage records.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["PickleStorageSink", "StorageKeys"]


class StorageKeys:
    """The storage keys one exporter has handed out, and the owners kept alive."""

    def __init__(self) -> None:
        self.by_identity: dict[Hashable, int] = {}
        self.end = 0  # every storage key in use is below this
        self.owners: list[object] = []

    def reserve(self, identity: Hashable, key: int) -> None:
        """Mark storage *key* as taken by a record written by someone else."""
        self.by_identity[identity] = key
        self.end = max(self.end, key + 1)


class PickleStorageSink:
    """Numbers storages per exporter (first use order) and queues new ones."""

    def __init__(self, keys: StorageKeys, pending: list[tuple[int, memoryview]]):
        self._keys = keys
        self._pending = pending
        self._added: list[Hashable] = []

    def add_storage(self, identity: Hashable, data: memoryview, owner: object) -> int:
        keys = self._keys.by_identity
        key = keys.get(identity)
        if key is None:
            key = keys[identity] = self._keys.end
            self._keys.end += 1
            self._keys.owners.append(owner)
            self._pending.append((key, data))
            self._added.append(identity)
        return key

    def forget(self) -> None:
        """Undo the keys handed out by a pickle that failed."""
        keys = self._keys.by_identity
        for identity in self._added:
            keys.pop(identity, None)
        self._keys.end = max(keys.values(), default=-1) + 1
