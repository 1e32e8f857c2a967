"""hermetic.torch_compat: ``import torch.package`` gives hermetic, torch still works.

Every check runs in a fresh interpreter, since install() changes ``sys.modules``.
"""

from __future__ import annotations

import textwrap

import pytest

from helpers import block_imports_prelude, run_python

pytest.importorskip(
    "torch", reason="needs torch==2.13.0 (pip install 'hermetic[torch]')"
)

pytestmark = pytest.mark.torch

UNEDITED_CODE = """
    # Code written for torch.package, run unchanged after install().
    import torch
    import torch.package
    from torch.package import PackageExporter, PackageImporter, sys_importer


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x).relu()


    def roundtrip(path):
        torch.manual_seed(0)
        net = Net()
        traced = torch.fx.symbolic_trace(net)
        with PackageExporter(path, importer=sys_importer) as exporter:
            exporter.extern("__main__")
            exporter.save_pickle("m", "fx.pkl", traced)
            exporter.save_pickle("m", "state.pkl", net.state_dict())
        importer = torch.package.PackageImporter(path)
        x = torch.ones(1, 3)
        loaded = importer.load_pickle("m", "fx.pkl")
        state = importer.load_pickle("m", "state.pkl")
        assert torch.equal(loaded(x), traced(x))
        assert torch.equal(state["lin.weight"], net.lin.weight)
        return type(importer)
"""


def _indented(code):
    """Indent *code* to sit inside the scripts below (8 spaces)."""
    return textwrap.indent(textwrap.dedent(code), " " * 8).lstrip()


def test_install_redirects_every_public_module_and_torch_keeps_working(tmp_path):
    """After install(), torch.package names are hermetic's; torch's own features and
    its private torch.package modules are untouched; uninstall() restores torch's."""
    output = run_python(
        f"""
        import io, sys, warnings
        warnings.filterwarnings("error", "TypedStorage is deprecated")
        import torch
        from torch.package import PackageExporter as early
        real_exporter = torch.package.PackageExporter
        import hermetic
        from hermetic import torch_compat

        torch_compat.install()
        torch_compat.install()  # a second call changes nothing
        assert torch_compat.is_installed()

        import torch.package
        import torch.package.package_exporter as pe
        import torch.package.package_importer as pi
        from torch.package import (
            Directory, EmptyMatchError, GlobGroup, Importer, ObjMismatchError,
            ObjNotFoundError, OrderedImporter, PackageExporter, PackageImporter,
            PackagingError, is_from_package, sys_importer,
        )
        from torch.package.analyze import find_first_use_of_broken_modules
        from torch.package.glob_group import GlobGroup as GlobGroup2
        from torch.package.importer import sys_importer as sys_importer2
        from torch.package.file_structure_representation import Directory as D2

        pairs = [
            (PackageExporter, hermetic.PackageExporter),
            (PackageImporter, hermetic.PackageImporter),
            (pe.PackageExporter, hermetic.PackageExporter),
            (pi.PackageImporter, hermetic.PackageImporter),
            (torch.package.PackageExporter, hermetic.PackageExporter),
            (sys.modules["torch.package"].PackageImporter, hermetic.PackageImporter),
            (sys_importer, hermetic.sys_importer),
            (sys_importer2, hermetic.sys_importer),
            (Importer, hermetic.Importer),
            (OrderedImporter, hermetic.OrderedImporter),
            (GlobGroup, hermetic.GlobGroup),
            (GlobGroup2, hermetic.GlobGroup),
            (Directory, hermetic.Directory),
            (D2, hermetic.Directory),
            (EmptyMatchError, hermetic.EmptyMatchError),
            (PackagingError, hermetic.PackagingError),
            (ObjNotFoundError, hermetic.ObjNotFoundError),
            (ObjMismatchError, hermetic.ObjMismatchError),
            (is_from_package, hermetic.is_from_package),
        ]
        assert all(a is b for a, b in pairs), [a for a, b in pairs if a is not b]
        assert find_first_use_of_broken_modules.__module__ == "hermetic.analyze"
        # Names hermetic does not have are torch's.
        assert pe._gate_torchscript_serialization is True
        assert pi._package_imported_modules is not None  # torch's registry
        import torch.package._mangling as mangling
        assert mangling.demangle("<torch_package_0>.a.b") == "a.b"
        assert "PackageExporter" in dir(torch.package)

        # torch itself keeps working, including its own uses of torch.package.
        {_indented(UNEDITED_CODE)}
        assert roundtrip({str(tmp_path / "a.pt")!r}) is hermetic.PackageImporter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            net = Net()
            traced = torch.jit.trace(net, torch.ones(1, 3))
        assert torch.equal(traced(torch.ones(1, 3)), net(torch.ones(1, 3)))
        buffer = io.BytesIO()
        torch.save({{"w": torch.arange(3)}}, buffer)
        buffer.seek(0)
        assert torch.equal(torch.load(buffer)["w"], torch.arange(3))
        # Names bound before install() keep torch's (so call it first).
        assert torch.fx.graph_module.PackageExporter is real_exporter
        assert early is real_exporter

        torch_compat.uninstall()
        assert not torch_compat.is_installed()
        import torch.package
        from torch.package import PackageExporter as after
        assert after is real_exporter is torch.package.PackageExporter
        assert sys.modules["torch.package.package_exporter"].PackageExporter is after
        print("ok")
        """
    )
    assert output == "ok\n"


def test_install_before_torch_is_imported_redirects_too(tmp_path):
    """install() imports torch itself; code imported afterwards uses hermetic."""
    output = run_python(
        f"""
        import sys
        from hermetic import torch_compat
        assert "torch" not in sys.modules
        torch_compat.install()
        {_indented(UNEDITED_CODE)}
        import hermetic
        assert roundtrip({str(tmp_path / "b.pt")!r}) is hermetic.PackageImporter
        print("ok")
        """
    )
    assert output == "ok\n"


def test_install_without_torch_raises_missing_dependency():
    """Without torch, install() says that it needs torch and how to get it."""
    output = run_python(
        block_imports_prelude("torch")
        + """
from hermetic import torch_compat
from hermetic.errors import MissingDependencyError
try:
    torch_compat.install()
except MissingDependencyError as exc:
    print(exc)
assert not torch_compat.is_installed()
"""
    )
    assert output == (
        "hermetic.torch_compat.install() needs torch, which is not installed: "
        "pip install 'hermetic[torch]'\n"
    )
