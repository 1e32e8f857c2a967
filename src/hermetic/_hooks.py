"""Handles that unregister a hook, as returned by ``register_*_hook``."""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["RemovableHandle"]

_ids = itertools.count()


class RemovableHandle:
    """Remove the hook it was returned for; also a context manager."""

    def __init__(self, registry: dict[int, Any]) -> None:
        self._registry = registry
        self.id = next(_ids)

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        self._registry.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
