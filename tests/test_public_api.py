"""The public surface: what `import hermetic` offers, and the torch.package modules."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

import hermetic

PUBLIC = [
    "ArchiveError",
    "ArchiveFormatError",
    "Directory",
    "EmptyMatchError",
    "EnvironmentMismatchError",
    "EnvironmentMismatchWarning",
    "GlobGroup",
    "HermeticError",
    "ImportFromPackageError",
    "Importer",
    "IntegrityError",
    "ObjMismatchError",
    "ObjNotFoundError",
    "OrderedImporter",
    "PackageExporter",
    "PackageImporter",
    "PackagingError",
    "PickleLoadError",
    "PickleSaveError",
    "Report",
    "SignatureError",
    "UnsafeContentError",
    "__version__",
    "is_from_package",
    "scan",
    "sign",
    "sys_importer",
    "verify",
    "verify_archive",
]

# torch.package's public submodules and the names code imports from them.
TORCH_SUBMODULE_NAMES = {
    "package_exporter": [
        "EmptyMatchError",
        "Importer",
        "OrderedImporter",
        "PackageExporter",
        "PackagingError",
        "PackagingErrorReason",
        "sys_importer",
    ],
    "package_importer": ["Directory", "Importer", "PackageImporter"],
    "importer": [
        "Importer",
        "ObjMismatchError",
        "ObjNotFoundError",
        "OrderedImporter",
        "sys_importer",
    ],
    "glob_group": ["GlobGroup", "GlobPattern"],
    "file_structure_representation": ["Directory"],
    "analyze": [
        "find_first_use_of_broken_modules",
        "is_from_package",
        "trace_dependencies",
    ],
}


def test_all_is_pinned():
    """hermetic.__all__ lists exactly the public names, sorted."""
    assert hermetic.__all__ == PUBLIC
    for name in PUBLIC:
        assert hasattr(hermetic, name)


@pytest.mark.parametrize("submodule", sorted(TORCH_SUBMODULE_NAMES))
def test_torch_package_submodules_port_by_renaming(submodule):
    """`from torch.package.X import Y` works as `from hermetic.X import Y`."""
    module = importlib.import_module(f"hermetic.{submodule}")
    for name in TORCH_SUBMODULE_NAMES[submodule]:
        assert hasattr(module, name), f"hermetic.{submodule} lacks {name}"


@pytest.mark.torch
@pytest.mark.parametrize("submodule", sorted(TORCH_SUBMODULE_NAMES))
def test_submodule_names_cover_torch_package(submodule):
    """Every name torch.package's submodule exports is in hermetic's namesake."""
    pytest.importorskip("torch", reason="compares with torch.package 2.13")
    theirs = importlib.import_module(f"torch.package.{submodule}")
    names = getattr(theirs, "__all__", None) or [
        n
        for n in vars(theirs)
        if not n.startswith("_")
        and getattr(vars(theirs)[n], "__module__", "").startswith("torch")
    ]
    ours = importlib.import_module(f"hermetic.{submodule}")
    missing = [n for n in names if not hasattr(ours, n)]
    assert missing == []


def test_importing_hermetic_loads_only_what_loading_needs():
    """`import hermetic` defers the exporter, scan, safe loading and signing."""
    from helpers import run_python

    out = run_python(
        """
        import sys
        import hermetic
        heavy = ["hermetic._exporter", "hermetic.scanner", "hermetic._pickle_scan",
                 "hermetic._safe", "hermetic._allowlist", "hermetic._signing"]
        print([m for m in heavy if m in sys.modules])
        hermetic.PackageImporter
        print([m for m in heavy if m in sys.modules])
        print(hermetic.scan.__module__, "scan" in dir(hermetic))
        """
    )
    assert out.split("\n")[:3] == ["[]", "[]", "hermetic.scanner True"]


def test_lazy_names_are_not_shadowed_by_submodules():
    """A lazily exported name must not also be a submodule of hermetic.

    Importing ``hermetic.<name>`` binds the submodule on the package, after which
    ``hermetic.<name>`` (and ``from hermetic import <name>``) would be the module.
    ``hermetic.scan`` was: the module is ``hermetic.scanner`` now.
    """
    from helpers import run_python

    clashes = [
        name
        for name in hermetic._LAZY
        if importlib.util.find_spec(f"hermetic.{name}") is not None
    ]
    assert clashes == []
    out = run_python(
        """
        import hermetic.scanner
        from hermetic import scan
        import hermetic
        print(callable(scan), hermetic.scan is scan, scan.__module__)
        """
    )
    assert out.strip() == "True True hermetic.scanner"
