"""Stand-ins for the objects of mocked modules.

This file is also the source of the ``_mock`` module written into every archive that
mocks something, so it must import nothing at all: a package's own modules may import
only what its extern list names, and that list need not name ``typing`` or even
``__future__``. A mocked module's stub returns a :class:`MockedObject` for any
attribute; any real use of one raises ``NotImplementedError`` naming the object and
the operation.
"""

__all__ = ["MockedObject"]

# Every operation a caller could attempt on a stand-in; each one fails loudly.
_OPERATIONS = [
    "__abs__",
    "__add__",
    "__aenter__",
    "__aexit__",
    "__aiter__",
    "__and__",
    "__anext__",
    "__await__",
    "__bool__",
    "__bytes__",
    "__call__",
    "__ceil__",
    "__complex__",
    "__contains__",
    "__copy__",
    "__deepcopy__",
    "__delattr__",
    "__delitem__",
    "__dir__",
    "__divmod__",
    "__enter__",
    "__eq__",
    "__exit__",
    "__float__",
    "__floor__",
    "__floordiv__",
    "__format__",
    "__ge__",
    "__get__",
    "__getitem__",
    "__getstate__",
    "__gt__",
    "__hash__",
    "__iadd__",
    "__iand__",
    "__ifloordiv__",
    "__ilshift__",
    "__imatmul__",
    "__imod__",
    "__imul__",
    "__index__",
    "__int__",
    "__invert__",
    "__ior__",
    "__ipow__",
    "__irshift__",
    "__isub__",
    "__iter__",
    "__itruediv__",
    "__ixor__",
    "__le__",
    "__len__",
    "__length_hint__",
    "__lshift__",
    "__lt__",
    "__matmul__",
    "__mod__",
    "__mul__",
    "__ne__",
    "__neg__",
    "__next__",
    "__or__",
    "__pos__",
    "__pow__",
    "__radd__",
    "__rand__",
    "__rdivmod__",
    "__reduce__",
    "__reduce_ex__",
    "__reversed__",
    "__rfloordiv__",
    "__rlshift__",
    "__rmatmul__",
    "__rmod__",
    "__rmul__",
    "__ror__",
    "__round__",
    "__rpow__",
    "__rrshift__",
    "__rshift__",
    "__rsub__",
    "__rtruediv__",
    "__rxor__",
    "__set__",
    "__setattr__",
    "__setitem__",
    "__setstate__",
    "__sizeof__",
    "__sub__",
    "__truediv__",
    "__trunc__",
    "__xor__",
]


def _refuse(operation: str) -> object:
    def refuse(self: "MockedObject", *args: object, **kwargs: object) -> None:
        raise NotImplementedError(
            f"Object '{object.__getattribute__(self, '_mocked_name')}' was mocked out "
            f"during packaging but it is being used in '{operation}'"
        )

    refuse.__name__ = operation
    return refuse


class MockedObject:
    """Stands for an object of a module that was mocked when the package was made."""

    _mocked_name: str

    def __new__(
        cls, *args: object, _suppress_err: bool = False, **kwargs: object
    ) -> "MockedObject":
        if not _suppress_err:
            if isinstance(cls, MockedObject):  # unpickling: cls is the mocked class
                name = object.__getattribute__(cls, "_mocked_name")
            else:
                name = args[0] if args and isinstance(args[0], str) else "<unknown>"
            raise NotImplementedError(
                f"Object '{name}' was mocked out during packaging but it is being used "
                "in '__new__'. If this happens in load_pickle, the pickled object "
                "holds an object of a mocked module: intern or extern that module."
            )
        return super().__new__(cls)

    def __init__(self, name: str, _suppress_err: bool = False) -> None:
        object.__setattr__(self, "_mocked_name", name)

    def __getattr__(self, attr: str) -> object:
        raise NotImplementedError(
            f"Object '{object.__getattribute__(self, '_mocked_name')}' was mocked out "
            f"during packaging but it is being used in '__getattr__' ({attr!r})"
        )

    def __repr__(self) -> str:
        return f"MockedObject({object.__getattribute__(self, '_mocked_name')})"

    __str__ = __repr__


for _operation in _OPERATIONS:
    setattr(MockedObject, _operation, _refuse(_operation))
del _operation

#: The source of a mocked module's stub, formatted with nothing: it reads its own name.
STUB_SOURCE = (
    "from _mock import MockedObject\n"
    "\n"
    "\n"
    "def __getattr__(attr: str):\n"
    "    return MockedObject(__name__ + '.' + attr, _suppress_err=True)\n"
)
