"""Tests for hermetic._mangling: prefixes, demangling and process-wide numbering."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hermetic
from hermetic import _mangling
from hermetic._mangling import PackageMangler, demangle, get_mangle_prefix, is_mangled

# (name, is_mangled, demangle, get_mangle_prefix)
CASES = [
    ("<torch_package_0>.pkg.mod", True, "pkg.mod", "<torch_package_0>"),
    ("<torch_package_12>.a", True, "a", "<torch_package_12>"),
    ("<torch_package_3>", True, "", "<torch_package_3>"),
    ("<torch_package_3>.", True, "", "<torch_package_3>"),
    (
        "<torch_package_0>.<torch_package_1>.x",
        True,
        "<torch_package_1>.x",
        "<torch_package_0>",
    ),
    ("<torch_package_0>.pk/a.py", True, "pk/a.py", "<torch_package_0>"),
    # torch strips up to the first dot here ("mod"); we strip only the prefix itself.
    ("<torch_package_0>pkg.mod", True, "pkg.mod", "<torch_package_0>"),
    ("pkg.mod", False, "pkg.mod", "pkg.mod"),
    ("", False, "", ""),
    ("x.<torch_package_0>.y", False, "x.<torch_package_0>.y", "x.<torch_package_0>.y"),
    ("<torch_package_>.a", False, "<torch_package_>.a", "<torch_package_>.a"),
    ("<torch_package_x1>.a", False, "<torch_package_x1>.a", "<torch_package_x1>.a"),
    ("<package_0>.a", False, "<package_0>.a", "<package_0>.a"),
]

_module_names = st.lists(
    st.text("abcxyz_019", min_size=1, max_size=6), min_size=1, max_size=4
).map(".".join)


@pytest.mark.parametrize(("name", "mangled", "demangled", "prefix"), CASES)
def test_module_helpers_follow_the_case_table(name, mangled, demangled, prefix):
    """is_mangled, demangle and get_mangle_prefix agree with the table."""
    assert is_mangled(name) is mangled
    assert demangle(name) == demangled
    assert get_mangle_prefix(name) == prefix


def test_mangler_prefix_has_torch_shape():
    """A mangler's parent name is ``<torch_package_N>`` and is itself mangled."""
    mangler = PackageMangler()
    assert mangler.parent_name.startswith("<torch_package_")
    assert mangler.parent_name.endswith(">")
    assert is_mangled(mangler.parent_name)
    assert mangler.mangle("a.b") == f"{mangler.parent_name}.a.b"


def test_mangle_refuses_empty_name():
    """An empty module name cannot be mangled."""
    with pytest.raises(ValueError, match="empty module name"):
        PackageMangler().mangle("")


def test_mangler_demangles_only_its_own_prefix():
    """Another importer's names, and plain names, come back unchanged."""
    mine, other = PackageMangler(), PackageMangler()
    assert mine.demangle(mine.mangle("pkg")) == "pkg"
    assert mine.demangle(mine.parent_name) == ""
    assert mine.demangle(other.mangle("pkg")) == other.mangle("pkg")
    assert mine.demangle("pkg.mod") == "pkg.mod"


def test_mangler_does_not_confuse_prefixes_sharing_digits():
    """``<torch_package_1>`` does not strip ``<torch_package_10>``."""
    mangler = PackageMangler()
    number = mangler.parent_name[len("<torch_package_") : -1]
    longer = f"<torch_package_{number}0>.pkg"
    assert mangler.demangle(longer) == longer


def test_doubly_mangled_name_keeps_inner_prefix():
    """Demangling an outer mangler's name leaves the inner prefix in place."""
    outer, inner = PackageMangler(), PackageMangler()
    twice = outer.mangle(inner.mangle("m"))
    assert outer.demangle(twice) == inner.mangle("m")
    assert demangle(twice) == inner.mangle("m")
    assert demangle(demangle(twice)) == "m"


_SHARED_MANGLER = PackageMangler()


@given(_module_names)
def test_demangle_inverts_mangle(name):
    """``demangle(mangle(n)) == n`` for both the method and the function."""
    mangler = _SHARED_MANGLER
    assert mangler.demangle(mangler.mangle(name)) == name
    assert demangle(mangler.mangle(name)) == name
    assert get_mangle_prefix(mangler.mangle(name)) == mangler.parent_name


def test_manglers_get_increasing_numbers():
    """Each new mangler takes a higher number than the one before."""
    first, second = PackageMangler(), PackageMangler()
    assert _number(second) > _number(first)


def test_manglers_made_in_threads_never_share_a_prefix():
    """Concurrent construction hands out distinct prefixes."""
    names: list[str] = []
    lock = threading.Lock()

    def make_some():
        made = [PackageMangler().parent_name for _ in range(200)]
        with lock:
            names.extend(made)

    threads = [threading.Thread(target=make_some) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == len(names) == 1600


def test_numbering_advances_torch_counter_when_torch_is_loaded(monkeypatch):
    """With torch.package._mangling loaded, both counters move past the number taken."""
    fake = _fake_torch_mangling(_number(PackageMangler()) + 100)
    monkeypatch.setitem(sys.modules, "torch.package._mangling", fake)
    taken = _number(PackageMangler())
    assert taken == fake._mangle_index - 1
    assert _number(PackageMangler()) == taken + 1
    assert fake._mangle_index == taken + 2


def test_numbering_never_goes_below_numbers_already_given(monkeypatch):
    """A torch counter behind ours is pulled forward, not followed backwards."""
    ours = _number(PackageMangler())
    fake = _fake_torch_mangling(0)
    monkeypatch.setitem(sys.modules, "torch.package._mangling", fake)
    taken = _number(PackageMangler())
    assert taken == ours + 1
    assert fake._mangle_index == taken + 1


def test_numbering_ignores_torch_module_without_counter(monkeypatch):
    """A torch module lacking an integer counter leaves our own numbering in charge."""
    fake = _fake_torch_mangling("nonsense")
    monkeypatch.setitem(sys.modules, "torch.package._mangling", fake)
    ours = _number(PackageMangler())
    assert _number(PackageMangler()) == ours + 1
    assert fake._mangle_index == "nonsense"


_INTEROP_SCRIPT = """
import warnings
warnings.simplefilter("ignore")
from hermetic._mangling import PackageMangler
early = PackageMangler().parent_name
from torch.package._mangling import PackageMangler as TorchMangler
names = [early]
for _ in range(3):
    names.append(PackageMangler().parent_name)
    names.append(TorchMangler().parent_name())
assert len(set(names[1:])) == len(names) - 1, names
print(" ".join(names))
"""


@pytest.mark.torch
def test_hermetic_and_torch_manglers_never_share_a_prefix():
    """Alternating hermetic and torch importers in one process get distinct prefixes."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch")
    src = str(Path(hermetic.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", _INTEROP_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert len(names) == 7
    assert len(set(names[1:])) == 6


def _fake_torch_mangling(index: object) -> types.ModuleType:
    """A stand-in for torch.package._mangling holding *index* as its counter."""
    fake = types.ModuleType("torch.package._mangling")
    fake.__dict__["_mangle_index"] = index
    return fake


def _number(mangler: PackageMangler) -> int:
    return int(mangler.parent_name[len("<torch_package_") : -1])


def test_module_has_sorted_all():
    """``__all__`` is sorted and names only what the module defines."""
    assert list(_mangling.__all__) == sorted(_mangling.__all__)
    assert all(hasattr(_mangling, name) for name in _mangling.__all__)
