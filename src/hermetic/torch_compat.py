"""Make ``import torch.package`` give hermetic, for code that cannot be edited.

Example:
    >>> import hermetic.torch_compat  # doctest: +SKIP
    >>> hermetic.torch_compat.install()  # doctest: +SKIP
    >>> from torch.package import PackageImporter  # doctest: +SKIP
    >>> PackageImporter is hermetic.PackageImporter  # doctest: +SKIP
    True

How it works: ``import torch`` always imports the real ``torch.package`` (``torch.fx``
and ``torch.jit`` use it), so there is no first import to intercept. :func:`install`
imports torch, then puts a stand-in module in ``sys.modules`` under each public module
name of torch.package (``torch.package``, ``.package_exporter``, ``.package_importer``,
``.importer``, ``.glob_group``, ``.file_structure_representation``, ``.analyze``) and
as the attribute of its parent (``torch.package`` on the ``torch`` module). A stand-in
holds hermetic's version of every name in the matching hermetic module's
``__all__``; any other attribute (``torch.package._mangling``,
``torch.package.package_exporter._gate_torchscript_serialization``) is torch's, and
other submodules still import from torch's folder. :func:`uninstall` puts torch's
modules back.

What it does not change: names bound before :func:`install` ran. Code that already
did ``from torch.package import PackageExporter`` keeps torch's class, and so does
torch itself (``torch.fx``, ``torch.jit``), which is why torch keeps working; the
archives are the same format either way. So call :func:`install` first, before
importing the code to redirect. It needs torch: ``torch.package`` is a submodule of
``torch``, and hermetic does not fake ``torch`` (other libraries test for it). Without
torch, use ``import hermetic`` directly.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from typing import Any

from .errors import MissingDependencyError

__all__ = ["install", "is_installed", "uninstall"]

#: torch.package module -> the hermetic module whose ``__all__`` replaces its names.
REDIRECTS = {
    "torch.package": "hermetic",
    "torch.package.package_exporter": "hermetic.package_exporter",
    "torch.package.package_importer": "hermetic.package_importer",
    "torch.package.importer": "hermetic.importer",
    "torch.package.glob_group": "hermetic.glob_group",
    "torch.package.file_structure_representation": (
        "hermetic.file_structure_representation"
    ),
    "torch.package.analyze": "hermetic.analyze",
}

_lock = threading.Lock()
_originals: dict[str, types.ModuleType] = {}


def install() -> None:
    """Make ``torch.package`` and its public submodules resolve to hermetic.

    Calling it again does nothing until :func:`uninstall`.

    Raises:
        MissingDependencyError: torch is not importable.
    """
    with _lock:
        if _originals:
            return
        try:
            importlib.import_module("torch")
        except ImportError as exc:
            raise MissingDependencyError(
                "torch", "torch", "hermetic.torch_compat.install()"
            ) from exc
        stand_ins = {
            name: _stand_in(
                importlib.import_module(name), importlib.import_module(source)
            )
            for name, source in REDIRECTS.items()
        }
        for name, stand_in in stand_ins.items():  # parents first
            _originals[name] = sys.modules[name]
            _bind(name, stand_in)


def uninstall() -> None:
    """Give ``torch.package`` and its submodules back to torch."""
    with _lock:
        for name in reversed(list(_originals)):  # children first
            _bind(name, _originals[name])
        _originals.clear()


def is_installed() -> bool:
    """Tell whether :func:`install` is in effect."""
    return bool(_originals)


def _bind(name: str, module: types.ModuleType) -> None:
    """Make *module* what ``import name`` and ``parent.child`` give."""
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)


def _stand_in(real: types.ModuleType, ours: types.ModuleType) -> types.ModuleType:
    """Return a module named like *real* with *ours*'s public names, else *real*'s."""
    stand_in = types.ModuleType(real.__name__, real.__doc__)
    for attribute in ("__file__", "__spec__", "__path__", "__package__"):
        if hasattr(real, attribute):
            setattr(stand_in, attribute, getattr(real, attribute))
    names: list[str] = list(ours.__all__)
    for name in names:
        setattr(stand_in, name, getattr(ours, name))

    def __getattr__(name: str) -> Any:
        try:
            return getattr(real, name)
        except AttributeError:
            raise AttributeError(
                f"module {real.__name__!r} has no attribute {name!r}"
            ) from None

    def __dir__() -> list[str]:
        return sorted(set(dir(real)) | set(names))

    # Module-level __getattr__ and __dir__ (PEP 562) live in the module's namespace.
    stand_in.__dict__.update(
        __getattr__=__getattr__, __dir__=__dir__, __hermetic_stand_in__=True
    )
    return stand_in
