"""Tests for hermetic._stdlib: stdlib modules and implicit externs."""

from __future__ import annotations

import sys

import pytest

from hermetic import _stdlib
from hermetic._stdlib import DISALLOWED_IMPLICIT, is_implicit_extern, is_stdlib_module

# (name, is_stdlib_module, is_implicit_extern)
CASES = [
    ("os", True, True),
    ("os.path", True, True),
    ("json.decoder", True, True),
    ("collections.abc", True, True),
    ("builtins", True, True),
    ("__future__", True, True),
    ("sys", True, False),
    ("io", True, False),
    ("sys.monitoring", True, False),
    ("torch", False, True),
    ("torch.nn.functional", False, True),
    ("torchvision", False, False),
    ("numpy", False, True),  # not stdlib, but implicit like torch
    ("mypkg.os", False, False),
    ("", False, False),
    (".os", False, False),
    ("OS", False, False),
]


@pytest.mark.parametrize(("name", "stdlib", "implicit"), CASES)
def test_classification_follows_case_table(name, stdlib, implicit):
    """Each name is classified as the table says."""
    assert is_stdlib_module(name) is stdlib
    assert is_implicit_extern(name) is implicit


def test_disallowed_modules_are_sys_and_io():
    """Only ``sys`` and ``io`` need an explicit extern."""
    assert frozenset({"sys", "io"}) == DISALLOWED_IMPLICIT


def test_every_stdlib_top_level_except_disallowed_is_implicit():
    """The running interpreter's whole stdlib list, minus sys and io, is extern."""
    for name in sys.stdlib_module_names:
        assert is_stdlib_module(name)
        assert is_implicit_extern(name) is (name not in DISALLOWED_IMPLICIT)


def test_classification_follows_running_interpreter(monkeypatch):
    """A name dropped from ``sys.stdlib_module_names`` stops being stdlib."""
    monkeypatch.setattr(sys, "stdlib_module_names", frozenset({"json", "sys"}))
    assert is_implicit_extern("json.tool")
    assert not is_implicit_extern("os")
    assert not is_stdlib_module("os.path")
    assert is_implicit_extern("torch.nn")


def test_module_has_sorted_all():
    """``__all__`` is sorted and names only what the module defines."""
    assert list(_stdlib.__all__) == sorted(_stdlib.__all__)
    assert all(hasattr(_stdlib, name) for name in _stdlib.__all__)
