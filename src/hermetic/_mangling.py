"""Give each importer its own module-name prefix, ``<torch_package_N>``.

A package's modules live under ``<torch_package_N>.<name>`` so two importers never share
a module object or a linecache entry. The prefix has torch.package's shape on purpose:
torch's exporters recognise any such prefix and demangle it, so objects loaded by either
library can be re-exported by the other.

This module keeps no registry of importers or modules and never touches ``sys.modules``;
it only hands out numbers and rewrites strings.
"""

from __future__ import annotations

import re
import sys
import threading

__all__ = ["PackageMangler", "demangle", "get_mangle_prefix", "is_mangled"]

_PREFIX = re.compile(r"<torch_package_\d+>")
# torch.package keeps its own process-wide counter in this module under this name.
_TORCH_MANGLING = "torch.package._mangling"
_TORCH_COUNTER = "_mangle_index"

_lock = threading.Lock()
_next_index = 0


def _take_index() -> int:
    """Return a number no other hermetic or torch importer in this process has used.

    When torch.package is loaded, its counter is advanced too, so a torch importer
    created afterwards gets a fresh number. Numbers we handed out before torch was
    imported are invisible to torch; the ``max`` below at least keeps *us* from reusing
    torch's.
    """
    global _next_index
    with _lock:
        torch_mangling = sys.modules.get(_TORCH_MANGLING)
        torch_next = getattr(torch_mangling, _TORCH_COUNTER, None)
        index = _next_index
        if isinstance(torch_next, int):
            index = max(index, torch_next)
            setattr(torch_mangling, _TORCH_COUNTER, index + 1)
        _next_index = index + 1
        return index


class PackageMangler:
    """Mangle and demangle names under a freshly numbered ``<torch_package_N>`` prefix.

    >>> mangler = PackageMangler()
    >>> mangler.demangle(mangler.mangle("pkg.mod"))
    'pkg.mod'
    >>> mangler.mangle("")
    Traceback (most recent call last):
    ...
    ValueError: cannot mangle an empty module name
    """

    def __init__(self) -> None:
        self._parent = f"<torch_package_{_take_index()}>"

    @property
    def parent_name(self) -> str:
        """The prefix this mangler owns, such as ``<torch_package_3>``."""
        return self._parent

    def mangle(self, name: str) -> str:
        """Return *name* under this mangler's prefix."""
        if not name:
            raise ValueError("cannot mangle an empty module name")
        return f"{self._parent}.{name}"

    def demangle(self, name: str) -> str:
        """Strip this mangler's own prefix from *name*; leave other names unchanged."""
        if name == self._parent:
            return ""
        if name.startswith(self._parent + "."):
            return name[len(self._parent) + 1 :]
        return name


def is_mangled(name: str) -> bool:
    """Tell whether *name* starts with some importer's prefix.

    >>> is_mangled("<torch_package_0>.a"), is_mangled("<torch_package_12>")
    (True, True)
    >>> is_mangled(""), is_mangled("<torch_package_>.a")
    (False, False)
    >>> is_mangled("a.<torch_package_0>.b")
    False
    """
    return _PREFIX.match(name) is not None


def demangle(name: str) -> str:
    """Strip any importer's prefix (and the dot after it) from *name*.

    Only the outermost prefix goes, so a doubly mangled name keeps its inner one.

    >>> demangle("<torch_package_0>.pkg.mod")
    'pkg.mod'
    >>> demangle("<torch_package_0>.<torch_package_1>.pkg")
    '<torch_package_1>.pkg'
    >>> demangle("<torch_package_7>"), demangle(""), demangle("plain.name")
    ('', '', 'plain.name')
    """
    match = _PREFIX.match(name)
    if match is None:
        return name
    rest = name[match.end() :]
    return rest[1:] if rest.startswith(".") else rest


def get_mangle_prefix(name: str) -> str:
    """Return the prefix of a mangled *name*, or *name* itself when it is not mangled.

    >>> get_mangle_prefix("<torch_package_4>.pkg.mod")
    '<torch_package_4>'
    >>> get_mangle_prefix("<torch_package_0>.<torch_package_1>.pkg")
    '<torch_package_0>'
    >>> get_mangle_prefix("pkg.mod"), get_mangle_prefix("")
    ('pkg.mod', '')
    """
    match = _PREFIX.match(name)
    return name if match is None else match.group()
