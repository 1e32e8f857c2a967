"""Read what a pickle refers to without unpickling it: globals, storages, tensors.

The opcodes are walked with :func:`pickletools.genops` on a symbolic stack: constants
become Python values, a global becomes :class:`Global`, a call becomes :class:`Call`
(nothing is imported or called), a persistent id becomes :class:`Persistent`. From that
tree, :func:`read_pickle` lists the globals and finds tensors and arrays (torch's
``_rebuild_tensor*`` calls and NumPy's ``ndarray(shape, dtype, storage, ...)``) with
their dtype, shape and storage key.

It does not evaluate ``__reduce__`` results, so a tensor built by an unusual reducer
is not seen as one; a malformed pickle gives the globals found before the damage and
an ``error`` message.
"""

from __future__ import annotations

import pickletools
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Call", "Global", "Persistent", "PickleInfo", "TensorInfo", "read_pickle"]

#: Opcodes past this many are not read (a pickle in a model archive has far fewer).
_MAX_OPCODES = 5_000_000

_TORCH_REBUILDERS = frozenset(
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
    }
)
_TORCH_WRAPPERS = frozenset(
    {"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
)
_TORCH_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "UntypedStorage": "uint8",
}
_NUMPY_CODES = {
    "f2": "float16", "f4": "float32", "f8": "float64", "i1": "int8", "i2": "int16",
    "i4": "int32", "i8": "int64", "u1": "uint8", "u2": "uint16", "u4": "uint32",
    "u8": "uint64", "b1": "bool", "c8": "complex64", "c16": "complex128",
}  # fmt: skip
#: Attributes of a torch.nn.Module whose entries read as plain attributes in paths.
_MODULE_SLOTS = frozenset({"_parameters", "_buffers", "_modules"})


@dataclass(frozen=True)
class Global:
    """A class or function the pickle names (``module.name``)."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Call:
    """The result of calling *func* with *args*, plus any state and items set on it."""

    func: object
    args: object
    state: object = None
    items: list[tuple[object, object]] = field(default_factory=list)
    appended: list[object] = field(default_factory=list)


@dataclass(eq=False)
class Persistent:
    """A persistent id: in a package, ``("storage", type, key, location, numel)``."""

    pid: object


@dataclass(eq=False)
class _Dict:
    """A dict; kept as pairs because symbolic keys need not be hashable."""

    items: list[tuple[object, object]] = field(default_factory=list)


class _Mark:
    """The MARK opcode's place on the stack."""


@dataclass
class TensorInfo:
    """A tensor or array in a pickle: where it is and what it views."""

    path: str
    kind: str  # "tensor" | "array"
    dtype: str
    shape: list[int]
    stride: list[int] | None
    offset: int
    storage: str | None  # the storage key, None for an array with no bytes


@dataclass
class PickleInfo:
    """What :func:`read_pickle` found in one pickle."""

    globals: list[str] = field(default_factory=list)
    storages: list[str] = field(default_factory=list)
    tensors: list[TensorInfo] = field(default_factory=list)
    error: str | None = None


def read_pickle(data: bytes) -> PickleInfo:
    """Return the globals, storage keys and tensors of the pickle *data*.

    >>> import pickle, collections
    >>> read_pickle(pickle.dumps(collections.OrderedDict(a=1), protocol=3)).globals
    ['collections.OrderedDict']
    """
    machine = _Machine()
    info = PickleInfo()
    try:
        root = machine.run(data)
    except Exception as exc:  # any damage is reported, not raised
        info.error = f"cannot read the pickle: {exc}"
        root = None
    info.globals = list(machine.globals)
    info.storages = list(machine.storages)
    if root is not None:
        info.tensors = _find_tensors(root)
    return info


class _Machine:
    """A pickle stack machine that builds symbols instead of objects."""

    def __init__(self) -> None:
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}
        self.globals: dict[str, None] = {}
        self.storages: dict[str, None] = {}

    def run(self, data: bytes) -> object:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(data)):
            if count > _MAX_OPCODES:
                raise ValueError(f"more than {_MAX_OPCODES} opcodes")
            if opcode.name == "STOP":
                return self.stack.pop()
            self.step(opcode.name, arg)
        raise ValueError("no STOP opcode")

    def pop_mark(self) -> list[object]:
        items: list[object] = []
        while True:
            value = self.stack.pop()
            if isinstance(value, _Mark):
                return items[::-1]
            items.append(value)

    def global_(self, module: object, name: object) -> Global:
        symbol = Global(str(module), str(name))
        self.globals[str(symbol)] = None
        return symbol

    def step(self, name: str, arg: object) -> None:
        stack = self.stack
        if name in _PUSH_ARG:
            stack.append(arg)
        elif name in _SIMPLE:
            stack.append(_SIMPLE[name]())
        elif name == "MARK":
            stack.append(_Mark())
        elif name in ("PROTO", "FRAME"):
            return
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            size = int(name[-1])
            items = stack[-size:]
            del stack[-size:]
            stack.append(tuple(items))
        elif name == "TUPLE":
            stack.append(tuple(self.pop_mark()))
        elif name == "LIST":
            stack.append(self.pop_mark())
        elif name == "DICT":
            flat = self.pop_mark()
            stack.append(_Dict(list(zip(flat[::2], flat[1::2], strict=False))))
        elif name in ("FROZENSET",):
            stack.append(tuple(self.pop_mark()))
        elif name == "APPEND":
            value = stack.pop()
            _append(stack[-1], [value])
        elif name in ("APPENDS", "ADDITEMS"):
            values = self.pop_mark()
            _append(stack[-1], values)
        elif name == "SETITEM":
            value = stack.pop()
            key = stack.pop()
            _set_items(stack[-1], [(key, value)])
        elif name == "SETITEMS":
            flat = self.pop_mark()
            _set_items(stack[-1], list(zip(flat[::2], flat[1::2], strict=False)))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(str(arg))] = stack[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(self.memo[int(str(arg))])
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            symbol = self.global_(module, attr)
            if name == "INST":
                stack.append(Call(symbol, tuple(self.pop_mark())))
            else:
                stack.append(symbol)
        elif name == "STACK_GLOBAL":
            top = stack.pop()
            below = stack.pop()
            if isinstance(below, str) and isinstance(top, str):
                stack.append(self.global_(below, top))
            else:
                stack.append(self.global_("?", "?"))
        elif name in ("EXT1", "EXT2", "EXT4"):
            stack.append(self.global_("copyreg-extension", str(arg)))
        elif name == "REDUCE" or name == "NEWOBJ":
            args = stack.pop()
            stack.append(Call(stack.pop(), args))
        elif name == "NEWOBJ_EX":
            stack.pop()  # keyword arguments
            args = stack.pop()
            stack.append(Call(stack.pop(), args))
        elif name == "OBJ":
            items = self.pop_mark()
            stack.append(Call(items[0], tuple(items[1:])))
        elif name == "BUILD":
            state = stack.pop()
            target = stack[-1]
            if isinstance(target, Call):
                target.state = state
        elif name in ("PERSID", "BINPERSID"):
            pid = arg if name == "PERSID" else stack.pop()
            stack.append(Persistent(pid))
            key = _storage_key(pid)
            if key is not None:
                self.storages[key] = None
        elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
            if name == "NEXT_BUFFER":
                stack.append(None)
        else:
            raise ValueError(f"unsupported opcode {name}")


_PUSH_ARG = frozenset(
    {
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING",
        "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
        "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
        "FLOAT", "BINFLOAT",
    }
)  # fmt: skip
_SIMPLE: dict[str, Callable[[], object]] = {
    "NONE": lambda: None,
    "NEWTRUE": lambda: True,
    "NEWFALSE": lambda: False,
    "EMPTY_LIST": list,
    "EMPTY_TUPLE": tuple,
    "EMPTY_DICT": _Dict,
    "EMPTY_SET": list,
}


def _append(target: object, values: list[object]) -> None:
    if isinstance(target, list):
        target.extend(values)
    elif isinstance(target, Call):
        target.appended.extend(values)


def _set_items(target: object, pairs: list[tuple[object, object]]) -> None:
    if isinstance(target, (_Dict, Call)):
        target.items.extend(pairs)


def _storage_key(pid: object) -> str | None:
    """Return the key of a ``("storage", type, key, location, numel)`` id, or None."""
    if isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage":
        return str(pid[2])
    return None


def _find_tensors(root: object) -> list[TensorInfo]:
    """Walk the symbol tree from *root*, returning each tensor at its first path."""
    found: list[TensorInfo] = []
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, (str, bytes, int, float, bool)) or node is None:
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        tensor = _as_tensor(node, path)
        if tensor is not None:
            found.append(tensor)
            continue
        children = list(_children(node, path))
        stack.extend(reversed(children))
    return found


def _children(node: object, path: str) -> list[tuple[object, str]]:
    """The nodes below *node*, each with its path."""
    if isinstance(node, _Dict):
        return [(value, _item_path(path, key)) for key, value in node.items]
    if isinstance(node, (list, tuple)):
        return [(value, f"{path}[{index}]") for index, value in enumerate(node)]
    if isinstance(node, Call):
        children = [(value, _item_path(path, key)) for key, value in node.items]
        children += [(v, f"{path}[{i}]") for i, v in enumerate(node.appended)]
        children += _state_children(node.state, path)
        if isinstance(node.args, tuple):
            children += [(v, f"{path}({i})") for i, v in enumerate(node.args)]
        return children
    return []


def _state_children(state: object, path: str) -> list[tuple[object, str]]:
    """Children of a BUILD state: attributes (with nn.Module slots flattened)."""
    if isinstance(state, tuple) and len(state) == 2:
        return _state_children(state[0], path) + _state_children(state[1], path)
    if not isinstance(state, _Dict):
        return [] if state is None else [(state, f"{path}.__state__")]
    children: list[tuple[object, str]] = []
    for key, value in state.items:
        if key in _MODULE_SLOTS and isinstance(value, (_Dict, Call)):
            pairs = value.items
            children += [(v, _join_attr(path, str(k))) for k, v in pairs]
        else:
            children.append((value, _join_attr(path, str(key))))
    return children


def _join_attr(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _item_path(path: str, key: object) -> str:
    return f"{path}[{key!r}]"


def _as_tensor(node: object, path: str) -> TensorInfo | None:
    """Return *node* as a tensor or array, or None if it is neither."""
    if not isinstance(node, Call) or not isinstance(node.func, Global):
        return None
    name = str(node.func)
    args = node.args if isinstance(node.args, tuple) else ()
    if name in _TORCH_WRAPPERS and args:
        return _as_tensor(args[0], path)
    if name in _TORCH_REBUILDERS and len(args) >= 4:
        return _torch_tensor(name, args, path)
    if name == "numpy.ndarray" and len(args) >= 3:
        return _numpy_array(args, path)
    return None


def _torch_tensor(name: str, args: tuple[object, ...], path: str) -> TensorInfo | None:
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, Persistent) or not isinstance(storage.pid, tuple):
        return None
    pid = storage.pid
    storage_type = pid[1] if len(pid) > 1 else None
    dtype = "?"
    if isinstance(storage_type, Global):
        dtype = _TORCH_STORAGE_DTYPES.get(
            storage_type.name, storage_type.name.removesuffix("Storage").lower()
        )
    if name.endswith("_v3") and len(args) > 6 and isinstance(args[6], Global):
        dtype = args[6].name
    return TensorInfo(
        path=path,
        kind="tensor",
        dtype=dtype,
        shape=_ints(size),
        stride=_ints(stride),
        offset=offset if isinstance(offset, int) else 0,
        storage=_storage_key(pid),
    )


def _numpy_array(args: tuple[object, ...], path: str) -> TensorInfo | None:
    shape, dtype, storage = args[:3]
    if not isinstance(storage, Persistent):
        return None
    offset = args[3] if len(args) > 3 and isinstance(args[3], int) else 0
    strides = _ints(args[4]) if len(args) > 4 else None
    return TensorInfo(
        path=path,
        kind="array",
        dtype=_numpy_dtype(dtype),
        shape=_ints(shape),
        stride=strides,
        offset=offset,
        storage=_storage_key(storage.pid),
    )


def _numpy_dtype(dtype: object) -> str:
    """Name a ``numpy.dtype(code, ...)`` call's type (``'<f4'`` → ``float32``)."""
    if isinstance(dtype, Call) and isinstance(dtype.args, tuple) and dtype.args:
        code = str(dtype.args[0]).lstrip("<>=|")
        return _NUMPY_CODES.get(code, code)
    return "?"


def _ints(value: object) -> list[int]:
    if isinstance(value, Call) and isinstance(value.args, tuple) and value.args:
        value = value.args[0]  # torch.Size((2, 3))
    if isinstance(value, (tuple, list)):
        return [v for v in value if isinstance(v, int)]
    return []
