"""Check the module and resource names a caller gives the exporter.

These are plain string checks that raise ``TypeError`` or ``ValueError``: nothing is
imported and no module is looked up. They do not check what an archive holds;
:class:`~hermetic.PackageImporter` checks the names it is asked for by itself.
"""

from __future__ import annotations

from ._format import resource_record
from ._mangling import is_mangled

__all__ = ["check_module_name", "checked_resource_record", "is_nonempty_str"]


def check_module_name(name: str) -> None:
    """Refuse a module name that is not a string or has an empty segment.

    >>> check_module_name("a.b")
    >>> check_module_name("a..b")
    Traceback (most recent call last):
    ...
    ValueError: invalid module name 'a..b': empty segment
    """
    if not isinstance(name, str):
        raise TypeError(f"module name must be str, not {type(name).__name__}")
    if not name or any(not part for part in name.split(".")):
        raise ValueError(f"invalid module name {name!r}: empty segment")


def checked_resource_record(package: str, resource: str) -> str:
    """Return the record of *resource* in *package*, refusing names it cannot save.

    >>> checked_resource_record("my_data", "model.pkl")
    'my_data/model.pkl'
    >>> checked_resource_record("my_data", "../model.pkl")
    Traceback (most recent call last):
    ...
    ValueError: '../model.pkl' must be only a file name
    """
    if not is_nonempty_str(package):
        raise ValueError(
            "package must be a non-empty module name such as 'my_data', "
            f"got {package!r}"
        )
    check_module_name(package)
    if not is_nonempty_str(resource) or resource in (".", ".."):
        raise ValueError(f"invalid resource name {resource!r}")
    if "/" in resource or "\\" in resource:
        raise ValueError(f"{resource!r} must be only a file name")
    if is_mangled(package):
        raise ValueError(
            f"refusing to save into {package!r}: it is a mangled package name"
        )
    return resource_record(package, resource)


def is_nonempty_str(value: object) -> bool:
    """Tell whether *value* is a str with at least one character."""
    return isinstance(value, str) and bool(value)
