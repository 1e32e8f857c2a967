"""Every ``>>>`` example in hermetic's docstrings runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hermetic

#: The demo prints a walkthrough when imported pieces run; it has its own tests.
SKIPPED = ("hermetic.demo", "hermetic.__main__")
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(hermetic.__path__, "hermetic.")
    if not info.name.startswith(SKIPPED)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional extra (torch, NumPy, dask) is missing
        pytest.skip(f"{name} needs an optional dependency: {exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    failed, _ = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} docstring example(s) in {name} failed (see above)"
