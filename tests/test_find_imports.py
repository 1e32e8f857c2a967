"""Tests for hermetic._find_imports: the AST scan of import statements and calls."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from hermetic import _find_imports
from hermetic._find_imports import ImportScanError, find_imports

NO_PARENT = "attempted relative import with no known parent package"
BEYOND_TOP = "attempted relative import beyond top-level package"

# (source, module_name, is_package, expected pairs). Unless the module name says
# otherwise, the scanned module is ``pkg.sub.mod``, a plain module inside ``pkg.sub``.
CASES = [
    # import statements: the full dotted name only, never its parents
    ("import a.b.c as x, d", "pkg.sub.mod", False, [("a.b.c", None), ("d", None)]),
    ("import a.b\nimport a", "pkg.sub.mod", False, [("a.b", None), ("a", None)]),
    # from-imports: one pair per name; star gives no attribute
    ("from e.f import g, h as hh", "pkg.sub.mod", False, [("e.f", "g"), ("e.f", "h")]),
    ("from k import *", "pkg.sub.mod", False, [("k", None)]),
    ("from __future__ import annotations", "m", False, [("__future__", "annotations")]),
    # relative imports from a plain module resolve against its parent package
    ("from . import sib", "pkg.sub.mod", False, [("pkg.sub", "sib")]),
    ("from .. import up", "pkg.sub.mod", False, [("pkg", "up")]),
    ("from .rel import t", "pkg.sub.mod", False, [("pkg.sub.rel", "t")]),
    ("from ..other.x import y", "pkg.sub.mod", False, [("pkg.other.x", "y")]),
    ("from .rel import *", "pkg.sub.mod", False, [("pkg.sub.rel", None)]),
    # ... and from a package against the package itself
    ("from . import x", "pkg.sub", True, [("pkg.sub", "x")]),
    ("from .. import y", "pkg.sub", True, [("pkg", "y")]),
    ("from . import x", "foo", True, [("foo", "x")]),
    ("from .y import z", "foo", True, [("foo.y", "z")]),
    # every place an import can hide, in source order
    (
        "import first\n"
        "def f():\n    import in_function\n"
        "class C:\n    import in_class\n"
        "    def m(self):\n        from in_method import x\n"
        "try:\n    import in_try\nexcept ImportError:\n    import in_except\n"
        "finally:\n    import in_finally\n"
        "if TYPE_CHECKING:\n    from typing_only import T\n"
        "while running:\n    import in_while\n"
        "with ctx:\n    import in_with\n"
        "match v:\n    case 1:\n        import in_match\n"
        "import last\n",
        "m",
        False,
        [
            ("first", None),
            ("in_function", None),
            ("in_class", None),
            ("in_method", "x"),
            ("in_try", None),
            ("in_except", None),
            ("in_finally", None),
            ("typing_only", "T"),
            ("in_while", None),
            ("in_with", None),
            ("in_match", None),
            ("last", None),
        ],
    ),
    # nested before later statements: depth-first, like a recursive visitor
    ("def f():\n    import b\nimport c", "m", False, [("b", None), ("c", None)]),
    # duplicates collapse to the first occurrence
    (
        "import a\nfrom b import c\nimport a\nfrom b import c, d\nimport b",
        "m",
        False,
        [("a", None), ("b", "c"), ("b", "d"), ("b", None)],
    ),
    (
        "from . import x\nfrom pkg.sub import x",
        "pkg.sub.mod",
        False,
        [("pkg.sub", "x")],
    ),
    # __import__ with literal arguments
    ("__import__('a.b.c')", "pkg.sub.mod", False, [("a.b.c", None), ("a.b", None)]),
    ("__import__('a')", "pkg.sub.mod", False, [("a", None)]),
    (
        "__import__('a.b', globals(), locals(), ['x', 'y'])",
        "m",
        False,
        [("a.b", "x"), ("a.b", "y")],
    ),
    ("__import__('a.b', fromlist=['x'])", "m", False, [("a.b", "x")]),
    ("__import__('a.b', fromlist=('x',))", "m", False, [("a.b", "x")]),
    ("__import__('a.b', fromlist={'x'})", "m", False, [("a.b", "x")]),
    ("__import__('a', fromlist=['*'])", "m", False, [("a", None)]),
    ("__import__('a.b', None, None, ['x'], 0)", "m", False, [("a.b", "x")]),
    ("__import__('a.b', fromlist=[])", "m", False, [("a.b", None), ("a", None)]),
    ("__import__(name='a', fromlist=['x'])", "m", False, [("a", "x")]),
    (
        "__import__('a.b', fromlist=['x'], level=1)",
        "pkg.sub.mod",
        False,
        [("pkg.sub.a.b", "x")],
    ),
    (
        "__import__('a.b', None, None, ['x'], 2)",
        "pkg.sub.mod",
        False,
        [("pkg.a.b", "x")],
    ),
    (
        "__import__('', fromlist=['x'], level=1)",
        "pkg.sub.mod",
        False,
        [("pkg.sub", "x")],
    ),
    # Fixed (torch leaves the name itself unresolved when the fromlist is empty).
    (
        "__import__('a.b', level=1)",
        "pkg.sub.mod",
        False,
        [("pkg.sub.a.b", None), ("pkg.sub.a", None)],
    ),
    ("__import__('a', level=1)", "pkg.sub.mod", False, [("pkg.sub.a", None)]),
    # Fixed (torch ignores a None fromlist, which __import__ treats as empty).
    ("__import__('a.b', None, None, None)", "m", False, [("a.b", None), ("a", None)]),
    # Fixed (torch does not look inside the arguments of other calls).
    ("getattr(__import__('os'), 'path')", "m", False, [("os", None)]),
    # importlib.import_module and bare import_module (torch sees neither)
    ("importlib.import_module('x.y')", "m", False, [("x.y", None)]),
    ("import_module('x')", "m", False, [("x", None)]),
    ("importlib.import_module(name='x', package=None)", "m", False, [("x", None)]),
    ("importlib.import_module('x', 'ignored.pkg')", "m", False, [("x", None)]),
    ("importlib.import_module('.y', 'pkg')", "m", False, [("pkg.y", None)]),
    ("importlib.import_module('..y', 'pkg.sub')", "m", False, [("pkg.y", None)]),
    ("import_module('.', package='pkg')", "m", False, [("pkg", None)]),
    (
        "importlib.import_module('.y', __package__)",
        "pkg.sub.mod",
        False,
        [("pkg.sub.y", None)],
    ),
    (
        "importlib.import_module('.y', __package__)",
        "pkg.sub",
        True,
        [("pkg.sub.y", None)],
    ),
    (
        "importlib.import_module('.y', __name__)",
        "pkg.sub.mod",
        False,
        [("pkg.sub.mod.y", None)],
    ),
    (
        "import importlib\nm = importlib.import_module('plugins.' + 'a')\n"
        "n = importlib.import_module('plugins.b')",
        "m",
        False,
        [("importlib", None), ("plugins.b", None)],
    ),
    # mixed forms keep source order
    (
        "import a\nx = __import__('b', fromlist=['c'])\nfrom d import e\n"
        "y = importlib.import_module('f')",
        "m",
        False,
        [("a", None), ("b", "c"), ("d", "e"), ("f", None)],
    ),
]

# Calls whose arguments are not all literal, or are not recognised, find nothing.
IGNORED_CALLS = [
    "__import__(name)",
    "__import__()",
    "__import__(b'a')",
    "__import__('a', fromlist=x)",
    "__import__('a', fromlist=['x', y])",
    "__import__('a', fromlist='xy')",
    "__import__('a', fromlist=[1])",
    "__import__('a', level=n)",
    "__import__('a', level=-1)",
    "__import__('a', level='1')",
    "__import__(*args)",
    "__import__('a', **kw)",
    "__import__('a', 1, 2, ['x'], 0, 9)",
    "__import__('a', fromlist=['x'], other=1)",
    "__import__('a', fromlist=['x'], name='b')",
    "builtins.__import__('a')",
    "self.__import__('a')",
    "importlib.import_module(name)",
    "importlib.import_module(f'x{y}')",
    "importlib.import_module('.y')",
    "importlib.import_module('.y', pkg)",
    "importlib.import_module('x', 'p', 'extra')",
    "importlib.import_module(*names)",
    "other.import_module('x')",
    "importlib.util.import_module('x')",
    "exec('import hidden')",
    "eval(\"__import__('hidden')\")",
    "sys.modules['hidden'] = object()",
    "x = 'import hidden'",
]

# (source, module_name, is_package, message, lineno)
ERRORS = [
    ("from . import x", "foo", False, NO_PARENT, 1),
    ("from .y import x", "foo", False, NO_PARENT, 1),
    ("def f():\n    from . import x", "foo", False, NO_PARENT, 2),
    ("from .. import x", "foo", True, BEYOND_TOP, 1),
    ("from ... import z", "pkg.sub.mod", False, BEYOND_TOP, 1),
    ("from ...x import z", "pkg.sub", True, BEYOND_TOP, 1),
    ("__import__('a', level=1)", "foo", False, NO_PARENT, 1),
    ("__import__('a', fromlist=['x'], level=3)", "pkg.sub.mod", False, BEYOND_TOP, 1),
    ("__import__('a.b', level=3)", "pkg.sub.mod", False, BEYOND_TOP, 1),
    ("importlib.import_module('...y', 'pkg.sub')", "m", False, BEYOND_TOP, 1),
    ("importlib.import_module('.y', '')", "m", False, NO_PARENT, 1),
    ("importlib.import_module('.y', __package__)", "foo", False, NO_PARENT, 1),
]


def test_imports_in_unreachable_code_are_not_dependencies():
    """Code the compiler drops (`if False:`) imports nothing at run time."""
    source = "import kept\nif False:\n    import never_run\n"
    assert find_imports(source, "m", is_package=False) == [("kept", None)]


def test_bytecode_and_syntax_tree_scans_agree_on_real_code():
    """The fast compiled-code scan gives what the syntax-tree scan gives."""
    import json
    import pathlib

    from hermetic import _find_imports

    for module in (json, pathlib, _find_imports):
        source = pathlib.Path(module.__file__).read_bytes()
        is_package = module.__file__.endswith("__init__.py")
        fast = find_imports(source, module.__name__, is_package=is_package)
        tree = find_imports(
            source + b"\n_unused = '__import__'\n",
            module.__name__,
            is_package=is_package,
        )
        assert fast == tree


@pytest.mark.parametrize(("source", "module_name", "is_package", "expected"), CASES)
def test_find_imports_follows_case_table(source, module_name, is_package, expected):
    """Each source yields exactly the listed pairs, in order."""
    assert find_imports(source, module_name, is_package=is_package) == expected


@pytest.mark.parametrize("source", IGNORED_CALLS)
def test_unrecognised_or_non_literal_calls_are_ignored(source):
    """Dynamic or unrecognised import calls produce no pairs and no error."""
    assert find_imports(source, "pkg.sub.mod", is_package=False) == []


@pytest.mark.parametrize(
    ("source", "module_name", "is_package", "message", "line"), ERRORS
)
def test_bad_relative_imports_raise(source, module_name, is_package, message, line):
    """Unresolvable relative imports raise ImportScanError with module and line."""
    with pytest.raises(ImportScanError) as info:
        find_imports(source, module_name, is_package=is_package)
    assert info.exconly() == f"hermetic._find_imports.ImportScanError: {message}"
    assert info.value.module_name == module_name
    assert info.value.lineno == line


def test_relative_import_in_top_level_module_is_not_resolved_to_itself():
    """Unlike torch, ``from . import x`` in top-level ``foo`` does not give ``foo``."""
    with pytest.raises(ImportScanError, match="no known parent package"):
        find_imports("from . import x", "foo", is_package=False)


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("x = = 1", "invalid syntax (pkg.bad, line 1)", 1),
        ("import os\n\ndef f(:\n    pass", "invalid syntax (pkg.bad, line 3)", 3),
        ("x = (", "'(' was never closed (pkg.bad, line 1)", 1),
    ],
)
def test_syntax_error_names_module_and_line(source, message, line):
    """A SyntaxError becomes an ImportScanError naming the module and line."""
    with pytest.raises(ImportScanError) as info:
        find_imports(source, "pkg.bad", is_package=False)
    assert str(info.value) == message
    assert info.value.lineno == line
    assert isinstance(info.value.__cause__, SyntaxError)


@pytest.mark.parametrize(
    "source", [b"import os\x00", "import os\x00", b"\xff", b"# coding: bogus\nimport a"]
)
def test_undecodable_source_raises_scan_error(source):
    """Null bytes and bad encodings raise ImportScanError naming the module."""
    with pytest.raises(ImportScanError, match=r"\(pkg\.bad"):
        find_imports(source, "pkg.bad", is_package=False)


def test_scan_error_is_value_error_and_pickles():
    """ImportScanError is a ValueError and keeps its fields through pickle."""
    with pytest.raises(ValueError, match="beyond") as info:
        find_imports("from ... import x", "a.b", is_package=False)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ImportScanError
    assert str(copy) == BEYOND_TOP
    assert (copy.module_name, copy.lineno) == ("a.b", 1)


def test_bytes_source_honours_coding_cookie():
    """Bytes are decoded as Python would, coding cookie and BOM included."""
    latin = b"# -*- coding: latin-1 -*-\nimport caf\xe9\n"
    assert find_imports(latin, "m", is_package=False) == [("caf\u00e9", None)]
    bom = b"\xef\xbb\xbfimport a\n"
    assert find_imports(bom, "m", is_package=False) == [("a", None)]


def test_empty_source_has_no_imports():
    """Empty source yields an empty list."""
    assert find_imports("", "m", is_package=False) == []
    assert find_imports(b"", "pkg", is_package=True) == []


def test_deeply_nested_expression_scans_without_recursion_error():
    """A 2,000-deep expression tree, too deep for a recursive visitor, scans fine."""
    deep = "x = __import__('deepest') + " + " + ".join(["a"] * 2000)
    source = f"import before\n{deep}\nimport after\n"
    tree = ast.parse(source)  # the parser accepts it at the default recursion limit...
    with pytest.raises(RecursionError):
        ast.NodeVisitor().visit(tree)  # ...but a recursive walk does not
    assert find_imports(source, "m", is_package=False) == [
        ("before", None),
        ("deepest", None),
        ("after", None),
    ]


def test_source_too_deep_for_the_parser_raises_scan_error_or_scans():
    """Whatever the parser does with extreme nesting, no RecursionError escapes."""
    source = "x = " + " + ".join(["a"] * 100_000) + "\nimport after\n"
    try:
        ast.parse(source)
    except RecursionError:  # Python 3.11+ parsers give up
        with pytest.raises(ImportScanError) as info:
            find_imports(source, "m", is_package=False)
        assert str(info.value) == "source too deeply nested to parse (m)"
    else:  # Python 3.10's parser builds the tree
        assert find_imports(source, "m", is_package=False) == [("after", None)]


def _sympy_sources() -> list[tuple[Path, str, bool]]:
    sympy = pytest.importorskip(
        "sympy", reason="scans sympy's sources (in the dev extra)"
    )
    root = Path(sympy.__file__).parent
    modules = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules.append((path, ".".join(parts), is_package))
    return modules


@pytest.mark.slow
def test_every_sympy_module_scans():
    """All of sympy's modules (some with huge expressions) scan without error."""
    modules = _sympy_sources()
    assert len(modules) > 1000
    total = 0
    for path, name, is_package in modules:
        total += len(find_imports(path.read_bytes(), name, is_package=is_package))
    assert total > 10_000


def test_module_docstring_names_what_is_not_seen():
    """The module docstring states the scanner's blind spots."""
    doc = _find_imports.__doc__ or ""
    for blind_spot in ("exec", "sys.modules", "__getattr__"):
        assert blind_spot in doc


def test_module_has_sorted_all():
    """``__all__`` is sorted and names only what the module defines."""
    assert list(_find_imports.__all__) == sorted(_find_imports.__all__)
    assert all(hasattr(_find_imports, name) for name in _find_imports.__all__)


def test_installed_pyc_code_gives_the_same_pairs_as_the_source():
    """Scanning a module's own compiled code equals scanning its source."""
    import importlib.machinery
    import json.decoder
    import pathlib

    spec = json.decoder.__spec__
    assert isinstance(spec.loader, importlib.machinery.SourceFileLoader)
    source = pathlib.Path(spec.origin).read_bytes()
    code = spec.loader.get_code(spec.name)
    from_code = find_imports(source, spec.name, is_package=False, code=code)
    assert from_code == find_imports(source, spec.name, is_package=False)
    assert ("re", None) in from_code
