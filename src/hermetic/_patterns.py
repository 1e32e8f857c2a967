"""Glob patterns over dotted module names, as used by intern/extern/mock/deny.

A pattern is split on the separator. ``*`` matches any run of characters inside one
segment; a segment that is exactly ``**`` matches zero or more whole, non-empty
segments. Every other character is literal. Matching is plain string work: nothing is
imported and names are not checked for being valid Python identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["GlobGroup"]

_DOUBLE_STAR_ERROR = "** can only appear as an entire path segment"


class GlobGroup:
    """Match names against include patterns, minus exclude patterns.

    >>> group = GlobGroup("torch.**", exclude="torch.testing.**")
    >>> group.matches("torch"), group.matches("torch.nn"), group.matches("torchvision")
    (True, True, False)
    >>> group.matches("torch.testing._internal")
    False
    >>> GlobGroup(["a.*", "b"])
    GlobGroup(include=['a.*', 'b'], exclude=())
    """

    def __init__(
        self,
        include: str | Iterable[str],
        *,
        exclude: str | Iterable[str] = (),
        separator: str = ".",
    ) -> None:
        if len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        # Spelled from the arguments as given, before an iterator is consumed.
        self._description = f"GlobGroup(include={include}, exclude={exclude})"
        self._separator = separator
        self._include = _compile_all(include, separator)
        self._exclude = _compile_all(exclude, separator)

    def matches(self, candidate: str) -> bool:
        """Tell whether *candidate* matches some include and no exclude pattern."""
        candidate = self._separator + candidate
        return any(p.fullmatch(candidate) for p in self._include) and not any(
            p.fullmatch(candidate) for p in self._exclude
        )

    def __str__(self) -> str:
        return self._description

    def __repr__(self) -> str:
        return self._description


def _compile_all(
    patterns: str | Iterable[str], separator: str
) -> tuple[re.Pattern[str], ...]:
    if isinstance(patterns, str):
        patterns = (patterns,)
    return tuple(re.compile(_glob_to_regex(p, separator)) for p in patterns)


def _glob_to_regex(pattern: str, separator: str) -> str:
    r"""Translate one glob into a regex for the separator-prefixed candidate.

    >>> _glob_to_regex("a.**", ".")
    '\\.a(?:\\.[^\\.]+)*'
    >>> _glob_to_regex("", ".")
    '\\.'
    >>> _glob_to_regex("a+*", "/")
    '/a\\+[^/]*'
    >>> _glob_to_regex("a**", ".")
    Traceback (most recent call last):
    ...
    ValueError: ** can only appear as an entire path segment
    """
    sep = re.escape(separator)
    not_sep = f"[^{sep}]"
    parts = []
    for segment in pattern.split(separator):
        if segment == "**":
            parts.append(f"(?:{sep}{not_sep}+)*")
        elif "**" in segment:
            raise ValueError(_DOUBLE_STAR_ERROR)
        else:
            literal = (re.escape(piece) for piece in segment.split("*"))
            parts.append(sep + f"{not_sep}*".join(literal))
    return "".join(parts)
