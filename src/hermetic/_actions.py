"""What the exporter does with a module, and the registrations that decide it.

An :class:`Action` is a module's fate (intern, extern, mock, deny, ...); a
:class:`Pattern` is one ``intern``/``extern``/``mock``/``deny`` call; and
:func:`first_match` picks the registration that decides a module. Glob matching itself
is :mod:`hermetic._patterns`; nothing here imports or reads a module.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from ._patterns import GlobGroup
from ._stdlib import is_implicit_extern

__all__ = ["Action", "GlobPattern", "Pattern", "first_match"]

GlobPattern = str | Iterable[str]


class Action(enum.Enum):
    """What the exporter does with a module."""

    INTERN = 1
    EXTERN = 2
    MOCK = 3
    DENY = 4
    REPACKAGED_MOCK_MODULE = 5
    SKIP = 6


class Pattern:
    """One intern/extern/mock/deny registration."""

    def __init__(
        self,
        include: GlobPattern,
        exclude: GlobPattern,
        action: Action,
        allow_empty: bool,
    ) -> None:
        self.group = GlobGroup(include, exclude=exclude)
        self.action = action
        self.allow_empty = allow_empty
        self.was_matched = False
        self.names_top_level = _literal_top(include)


def first_match(patterns: Iterable[Pattern], module_name: str) -> Pattern | None:
    """Return the first of *patterns* deciding *module_name*.

    Standard-library modules and ``torch`` are extern unless a pattern names their
    top-level module literally (``deny("subprocess")``, ``mock("torch.**")``); a
    wildcard such as ``mock("**")`` does not reach them.
    """
    implicit = is_implicit_extern(module_name)
    top = module_name.partition(".")[0]
    for pattern in patterns:
        if implicit and top not in pattern.names_top_level:
            continue
        if pattern.group.matches(module_name):
            return pattern
    return None


def _literal_top(include: GlobPattern) -> frozenset[str]:
    """Return the top-level names a pattern spells literally (no wildcard)."""
    includes = [include] if isinstance(include, str) else list(include)
    tops = (str(p).partition(".")[0] for p in includes)
    return frozenset(top for top in tops if "*" not in top)
