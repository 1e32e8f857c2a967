"""Decide which modules an exporter externs without being asked.

The answer depends on the *running* interpreter's ``sys.stdlib_module_names``, so the
same code exported on 3.11 and on 3.13 can extern different names (3.13 dropped
``cgi``, ``telnetlib`` and others). Nothing is imported to decide; a third-party module
that shadows a stdlib name counts as stdlib.
"""

from __future__ import annotations

import sys

__all__ = [
    "DISALLOWED_IMPLICIT",
    "IMPLICIT_FRAMEWORKS",
    "is_implicit_extern",
    "is_stdlib_module",
]

#: Stdlib modules that need an explicit ``extern``, exactly as in torch.package.
DISALLOWED_IMPLICIT = frozenset({"sys", "io"})
#: Frameworks whose C extensions cannot be interned, so they are always the host's.
#: torch.package externs ``torch`` like this; hermetic also externs ``numpy``, whose
#: arrays it stores as storage records (torch.package makes users extern it by hand).
IMPLICIT_FRAMEWORKS = frozenset({"torch", "numpy"})


def _top_level(name: str) -> str:
    return name.partition(".")[0]


def is_stdlib_module(name: str) -> bool:
    """Tell whether *name*'s top-level package belongs to this interpreter's stdlib.

    >>> is_stdlib_module("os.path"), is_stdlib_module("sys"), is_stdlib_module("numpy")
    (True, True, False)
    >>> is_stdlib_module(""), is_stdlib_module(".os")
    (False, False)
    """
    return _top_level(name) in sys.stdlib_module_names


def is_implicit_extern(name: str) -> bool:
    """Tell whether an exporter externs *name* before consulting any user pattern.

    >>> is_implicit_extern("torch.nn"), is_implicit_extern("json.decoder")
    (True, True)
    >>> is_implicit_extern("sys"), is_implicit_extern("io")
    (False, False)
    >>> is_implicit_extern("torchvision"), is_implicit_extern("")
    (False, False)
    >>> is_implicit_extern("numpy.linalg")
    True
    """
    top = _top_level(name)
    if top in IMPLICIT_FRAMEWORKS:
        return True
    return top in sys.stdlib_module_names and top not in DISALLOWED_IMPLICIT
