"""Find the modules a piece of Python source imports, by reading its syntax tree.

Every import statement anywhere in the tree counts (inside functions, ``try`` blocks and
``if TYPE_CHECKING:`` too), as do ``__import__(...)``, ``importlib.import_module(...)``
and bare ``import_module(...)`` calls whose arguments are literals. The result is a list
of ``(module, attribute)`` pairs in the order they appear, without duplicates; whether
``attribute`` names a submodule or an object is for the caller to find out.

What it does not see: imports spelled in strings run by ``exec``/``eval``, calls
whose arguments are computed at run time, ``import_module`` under another name
(``from importlib import import_module as load``), ``sys.modules`` tricks, module
``__getattr__`` lazy imports, and module names kept in configuration files. Nothing is
imported or executed. The tree is walked with an explicit stack, so deeply nested
expressions cannot exhaust Python's recursion limit here.

Differences from torch.package's scanner (each one a fix):

- A relative import in a top-level, non-package module raises :class:`ImportScanError`
  instead of resolving to the module itself.
- ``__import__`` with a ``level`` and no fromlist resolves the name relatively, not
  only its parent; a ``None`` fromlist counts as empty; calls nested inside other calls
  are seen.
- A relative ``__import__`` that climbs above the top-level package raises, as a
  relative ``from`` import does, instead of being dropped.
"""

from __future__ import annotations

import ast
import dis
from collections.abc import Iterator
from types import CodeType

__all__ = ["ImportScanError", "find_imports"]

_NO_PARENT = "attempted relative import with no known parent package"
_BEYOND_TOP = "attempted relative import beyond top-level package"
_DUNDER_IMPORT_PARAMS = ("name", "globals", "locals", "fromlist", "level")
_IMPORT_MODULE_PARAMS = ("name", "package")

_Pair = tuple[str, str | None]


class ImportScanError(ValueError):
    """The source of *module_name* cannot be scanned.

    Its syntax is invalid, or a relative import cannot be resolved. ``lineno`` is the
    offending line when known.
    """

    def __init__(
        self, message: str, *, module_name: str = "", lineno: int | None = None
    ) -> None:
        super().__init__(message)
        self.module_name = module_name
        self.lineno = lineno


def find_imports(
    source: str | bytes,
    module_name: str,
    *,
    is_package: bool,
    code: CodeType | None = None,
) -> list[tuple[str, str | None]]:
    """List the ``(module, attribute)`` pairs that the source of *module_name* imports.

    ``import a.b as c`` gives ``("a.b", None)``, ``from a import b`` gives
    ``("a", "b")`` and ``from a import *`` gives ``("a", None)``. Relative imports are
    resolved against *module_name*, which is a package when *is_package* is true.
    *code*, when given, is *source* already compiled (an installed module's ``.pyc``)
    and saves compiling it again.

    Raises:
        ImportScanError: the source does not parse, or a relative import has no package
            to resolve against or climbs above the top-level package.

    Example:
        >>> find_imports("from . import b\\nimport os.path", "pkg.a", is_package=False)
        [('pkg', 'b'), ('os.path', None)]
    """
    scanner = _Scanner(module_name, is_package=is_package)
    found: dict[_Pair, None] = {}
    text = source if isinstance(source, bytes) else source.encode("utf-8", "replace")
    if b"__import__" not in text and b"import_module" not in text:
        # No import calls to look for: the compiler's own view of the import
        # statements is several times faster to get than a syntax tree.
        if code is None:
            code = _compile(source, module_name)
        if code is not None:
            for pair in _bytecode_pairs(code, scanner):
                if pair[0]:
                    found.setdefault(pair)
            return list(found)
    tree = _parse(source, module_name)
    for node in _preorder(tree):
        for pair in scanner.pairs(node):
            if pair[0]:
                found.setdefault(pair)
    return list(found)


def _parse(source: str | bytes, module_name: str) -> ast.Module:
    """Parse *source*, turning every way it can fail into an :class:`ImportScanError`.

    >>> _parse("x = = 1", "pkg.bad")
    Traceback (most recent call last):
    ...
    hermetic._find_imports.ImportScanError: invalid syntax (pkg.bad, line 1)
    """
    try:
        return ast.parse(source, filename=module_name)
    except SyntaxError as exc:
        where = (
            module_name if exc.lineno is None else f"{module_name}, line {exc.lineno}"
        )
        raise ImportScanError(
            f"{exc.msg} ({where})", module_name=module_name, lineno=exc.lineno
        ) from exc
    except ValueError as exc:  # null bytes in the source, before Python 3.11
        raise ImportScanError(
            f"{exc} ({module_name})", module_name=module_name
        ) from exc
    except RecursionError as exc:  # the parser itself gave up on deep nesting
        message = f"source too deeply nested to parse ({module_name})"
        raise ImportScanError(message, module_name=module_name) from exc


_IMPORT_NAME_BYTE = bytes([dis.opmap["IMPORT_NAME"]])
_LOAD_CONST = dis.opmap["LOAD_CONST"]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]


def _compile(source: str | bytes, module_name: str) -> CodeType | None:
    """Compile *source*, or return None so that the syntax-tree path reports why not."""
    try:
        return compile(source, module_name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _bytecode_pairs(code: CodeType, scanner: _Scanner) -> list[_Pair]:
    """Read import pairs from ``IMPORT_NAME`` instructions, in source order.

    Each ``import``/``from`` statement compiles to ``LOAD_CONST level``,
    ``LOAD_CONST fromlist``, ``IMPORT_NAME module`` (Python 3.10 to 3.13), so the
    compiled code holds exactly what the syntax tree would give. Statements the
    compiler drops as unreachable (under ``if False:``) are not seen.
    """
    found: list[tuple[int, int, list[_Pair]]] = []
    stack = [code]
    while stack:
        current = stack.pop()
        stack.extend(c for c in current.co_consts if isinstance(c, CodeType))
        for offset, name, level, fromlist in _import_instructions(current):
            line = _line_at(current, offset)
            pairs = _import_pairs(name, level, fromlist, line, scanner)
            found.append((line, len(found), pairs))
    found.sort(key=lambda item: (item[0], item[1]))
    return [pair for _, _, pairs in found for pair in pairs]


def _import_instructions(code: CodeType) -> Iterator[tuple[int, str, object, object]]:
    """Yield ``(offset, module, level, fromlist)`` for each import in *code*.

    Reads the raw instruction words: 2 bytes each, ``EXTENDED_ARG`` prefixes carrying
    the high bits of the next argument.
    """
    raw = code.co_code
    offset = raw.find(_IMPORT_NAME_BYTE)
    while offset != -1:
        if offset % 2 == 0:
            name_index, before = _argument(raw, offset)
            fromlist_index, before_fromlist = _argument(raw, before - 2)
            level_index, _ = _argument(raw, before_fromlist - 2)
            if (
                before_fromlist >= 2
                and raw[before - 2] == _LOAD_CONST
                and raw[before_fromlist - 2] == _LOAD_CONST
            ):
                yield (
                    offset,
                    code.co_names[name_index],
                    code.co_consts[level_index],
                    code.co_consts[fromlist_index],
                )
        offset = raw.find(_IMPORT_NAME_BYTE, offset + 1)


def _argument(raw: bytes, offset: int) -> tuple[int, int]:
    """Return the full argument of the instruction at *offset* and its first word."""
    if offset < 0:
        return 0, 0
    argument, shift, start = raw[offset + 1], 8, offset
    while start >= 2 and raw[start - 2] == _EXTENDED_ARG:
        start -= 2
        argument |= raw[start + 1] << shift
        shift += 8
    return argument, start


def _line_at(code: CodeType, offset: int) -> int:
    for start, end, line in code.co_lines():
        if start <= offset < end and line is not None:
            return line
    return code.co_firstlineno


def _import_pairs(
    name: str, level: object, fromlist: object, line: int, scanner: _Scanner
) -> list[_Pair]:
    if not isinstance(level, int):
        level = 0
    module = scanner.resolve(name, level, scanner.package, line) if level else name
    if not isinstance(fromlist, tuple) or not fromlist:
        return [(module, None)]
    return [(module, _attribute(item)) for item in fromlist if isinstance(item, str)]


def _preorder(tree: ast.AST) -> Iterator[ast.AST]:
    """Yield every node depth-first, parents before children, children in field order.

    This is the order a recursive ``ast.NodeVisitor`` would use (so results come out in
    source order, as torch's do), but without recursion.
    """
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


class _Scanner:
    """Turn one node into import pairs, resolving relative names for one module."""

    def __init__(self, module_name: str, *, is_package: bool) -> None:
        self.module_name = module_name
        self.package = module_name if is_package else module_name.rpartition(".")[0]

    def pairs(self, node: ast.AST) -> list[_Pair]:
        if isinstance(node, ast.Import):
            return [(alias.name, None) for alias in node.names]
        if isinstance(node, ast.ImportFrom):
            module = self.resolve(node.module or "", node.level, self.package, node)
            return [(module, _attribute(alias.name)) for alias in node.names]
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "__import__":
                return self.dunder_import(node)
            if _is_import_module(node.func):
                return self.import_module(node)
        return []

    def resolve(
        self, name: str, level: int, package: str, node: ast.stmt | ast.expr | int
    ) -> str:
        """Resolve *name*, imported *level* dots deep, against *package*.

        *node* is the import's syntax node, or its line number.
        """
        if level == 0:
            return name
        lineno = node if isinstance(node, int) else node.lineno
        if not package:
            raise ImportScanError(
                _NO_PARENT, module_name=self.module_name, lineno=lineno
            )
        bits = package.rsplit(".", level - 1)
        if len(bits) < level:
            raise ImportScanError(
                _BEYOND_TOP, module_name=self.module_name, lineno=lineno
            )
        return f"{bits[0]}.{name}" if name else bits[0]

    def dunder_import(self, call: ast.Call) -> list[_Pair]:
        """Pairs for ``__import__(name, globals, locals, fromlist, level)`` literals."""
        args = _bind(call, _DUNDER_IMPORT_PARAMS)
        if args is None:
            return []
        name = _literal_str(args.get("name"))
        fromlist = _literal_fromlist(args.get("fromlist"))
        level = _literal_level(args.get("level"))
        if name is None or fromlist is None or level is None:
            return []
        if fromlist:
            module = self.resolve(name, level, self.package, call)
            return [(module, _attribute(item)) for item in fromlist]
        # Without a fromlist every parent gets imported; like torch, name the nearest.
        pairs: list[_Pair] = [(self.resolve(name, level, self.package, call), None)]
        parent = name.rpartition(".")[0]
        if parent:
            pairs.append((self.resolve(parent, level, self.package, call), None))
        return pairs

    def import_module(self, call: ast.Call) -> list[_Pair]:
        """Pairs for ``import_module(name, package=None)`` with a literal name."""
        args = _bind(call, _IMPORT_MODULE_PARAMS)
        name = None if args is None else _literal_str(args.get("name"))
        if args is None or name is None:
            return []
        level = len(name) - len(name.lstrip("."))
        if level == 0:
            return [(name, None)]
        package = self.package_argument(args.get("package"))
        if package is None:
            return []
        return [(self.resolve(name[level:], level, package, call), None)]

    def package_argument(self, node: ast.expr | None) -> str | None:
        """The value of an ``import_module`` package argument, when it is known."""
        if isinstance(node, ast.Name) and node.id == "__package__":
            return self.package
        if isinstance(node, ast.Name) and node.id == "__name__":
            return self.module_name
        return _literal_str(node)


def _attribute(name: str) -> str | None:
    return None if name == "*" else name


def _is_import_module(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "import_module"
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "import_module"
        and isinstance(func.value, ast.Name)
        and func.value.id == "importlib"
    )


def _bind(call: ast.Call, params: tuple[str, ...]) -> dict[str, ast.expr] | None:
    """Map a call's arguments to parameter names; None if they are not static.

    >>> call = ast.parse("f(1, level=2)").body[0].value
    >>> sorted(_bind(call, ("name", "level")))
    ['level', 'name']
    >>> _bind(ast.parse("f(*xs)").body[0].value, ("name",)) is None
    True
    >>> _bind(ast.parse("f(1, 2)").body[0].value, ("name",)) is None
    True
    """
    if len(call.args) > len(params):
        return None
    if any(isinstance(arg, ast.Starred) for arg in call.args):
        return None
    bound = dict(zip(params, call.args, strict=False))
    for keyword in call.keywords:
        if keyword.arg not in params or keyword.arg in bound:
            return None  # **kwargs, an unknown keyword, or a duplicate
        bound[keyword.arg] = keyword.value
    return bound


def _literal_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _literal_fromlist(node: ast.expr | None) -> tuple[str, ...] | None:
    """The items of a literal fromlist; ``()`` when absent or None, None when unknown.

    >>> _literal_fromlist(None), _literal_fromlist(ast.Constant(None))
    ((), ())
    >>> _literal_fromlist(ast.parse("['a', b]").body[0].value) is None
    True
    """
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return ()
    if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return None
    items = []
    for element in node.elts:
        item = _literal_str(element)
        if item is None:
            return None
        items.append(item)
    return tuple(items)


def _literal_level(node: ast.expr | None) -> int | None:
    """The value of a literal, non-negative level; 0 when absent, None when unknown.

    >>> _literal_level(None), _literal_level(ast.Constant(2))
    (0, 2)
    >>> _literal_level(ast.Constant(-1)), _literal_level(ast.Constant("1"))
    (None, None)
    """
    if node is None:
        return 0
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and node.value >= 0
    ):
        return int(node.value)
    return None
