"""The small objects of scenario c, defined outside any package (so they are extern).

Archives name this module ``scenarios._records``; loading them needs ``bench/`` on
``sys.path``, which the benchmark workers have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Record", "make_objects"]


@dataclass
class Record:
    """A small dataclass instance, pickled by reference to this module."""

    id: int
    name: str
    score: float


def make_objects(count: int) -> list[Any]:
    """Return *count* objects: dicts, tuples and :class:`Record` in turn.

    >>> for obj in make_objects(3):
    ...     print(obj)
    {'id': 0, 'name': 'item0', 'score': 0.0}
    (1, 'item1', 0.5)
    Record(id=2, name='item2', score=1.0)
    """
    objects: list[Any] = []
    for i in range(count):
        name, score = f"item{i}", i * 0.5
        kind = i % 3
        if kind == 0:
            objects.append({"id": i, "name": name, "score": score})
        elif kind == 1:
            objects.append((i, name, score))
        else:
            objects.append(Record(i, name, score))
    return objects
