"""Compatibility names of ``torch.package.glob_group``."""

from __future__ import annotations

from ._patterns import GlobGroup

GlobPattern = str | list[str] | tuple[str, ...]

__all__ = ["GlobGroup", "GlobPattern"]
