"""How dangerous it is for a pickle to reference a global: the severity table of scan.

A pickle names the callables and classes it needs as ``module`` + ``name`` globals;
loading it imports each one and usually calls it. :func:`rate_global` says how bad
that is, from a table kept here as data:

========  ==============================================================================
critical  runs code or commands, or reaches anything: ``exec``/``eval``/``compile``/
          ``__import__``/``getattr``, ``os``/``posix``/``nt``/``subprocess``, ``sys``,
          ``importlib``/``runpy``/``pkgutil``/``code``/``codeop``/``cProfile``/
          ``timeit``, ``ctypes``/``marshal``/``types``, nested deserialisers
          (``pickle.loads``, ``torch.load``, ``numpy.load`` ...), ``operator``
          attribute and method callers, dunder attribute walks (``print.__class__``)
high      can do damage or compose other calls: files, network, threads, ``atexit``,
          ``functools.partial``, ``map``, ``copyreg`` registries, scanner modules
          (``hermetic``, ``fickling``, ``picklescan``), malformed names
medium    anything not known to be data: loading imports its module, which may run code
info      the plain data constructors safe loading allows by default: sets, complex,
          ``OrderedDict``, dates, decimals, tensors, storages, dtypes, arrays
========  ==============================================================================

Python 2 names (``__builtin__``, ``copy_reg``, ``commands``) are rated under the name
a loader maps them to as well. The table is a denylist on top of an allowlist: only
``info`` globals count as data, so a global missing from the dangerous rows is still
``medium``, never clean. What it does not know: what a packaged or third-party class
does when called; that is why anything outside the ``info`` rows is at least
``medium``.
"""

from __future__ import annotations

import _compat_pickle  # the stdlib's tables behind pickle's fix_imports
import enum
import functools

__all__ = [
    "NESTED_LOADERS",
    "SCANNER_MODULES",
    "Severity",
    "rate_global",
    "rate_module",
]


class Severity(enum.IntEnum):
    """How bad a finding is; ordered, so ``max()`` gives the worst."""

    INFO = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3

    def __str__(self) -> str:
        return self.name.lower()


_RUNS_CODE = "runs code or commands when loaded"
_RUNS_PROGRAMS = "runs programs or system calls"
_NESTED = "deserialises more data (a nested pickle or model file)"
_ATTRIBUTE = "reaches arbitrary objects through attributes or imports"
_FILES = "reads or writes files"
_NETWORK = "opens network connections"
_COMPOSE = "calls other callables later or indirectly"
_PROCESS = "changes the running process (threads, signals, exit hooks, registries)"
_SCANNER = "imports a scanner or this library, a sign of tampering"
_DATA = "plain data"
_UNKNOWN = "not known to be data: loading imports its module"

#: Whole modules (and their submodules), by the worst thing they offer.
_MODULES: dict[str, tuple[Severity, str]] = {
    **dict.fromkeys(
        ("os", "posix", "nt", "subprocess", "_posixsubprocess", "pty", "commands",
         "popen2", "multiprocessing", "_winapi", "webbrowser", "asyncio.subprocess"),
        (Severity.CRITICAL, _RUNS_PROGRAMS),
    ),
    **dict.fromkeys(
        ("runpy", "code", "codeop", "pdb", "bdb", "cProfile", "profile", "timeit",
         "trace", "doctest", "idlelib", "pydoc", "ensurepip", "pip", "setuptools",
         "distutils", "site", "sitecustomize", "usercustomize", "imp", "importlib",
         "pkgutil", "zipimport", "marshal", "types", "ctypes", "_ctypes", "cffi",
         "sys", "logging.config", "torch.utils.cpp_extension",
         "torch.utils.collect_env", "torch._inductor", "torch.hub"),
        (Severity.CRITICAL, _RUNS_CODE),
    ),
    **dict.fromkeys(
        ("pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve",
         "jsonpickle", "yaml", "torch.serialization", "torch.package",
         "numpy.lib.npyio", "numpy.lib.format"),
        (Severity.CRITICAL, _NESTED),
    ),
    **dict.fromkeys(
        ("shutil", "pathlib", "io", "_io", "fileinput", "tarfile", "zipfile",
         "sqlite3", "dbm", "mmap", "fcntl", "tempfile", "logging", "glob"),
        (Severity.HIGH, _FILES),
    ),
    **dict.fromkeys(
        ("socket", "_socket", "ssl", "http", "urllib", "urllib3", "requests", "httpx",
         "aiohttp", "ftplib", "smtplib", "poplib", "imaplib", "telnetlib", "xmlrpc",
         "socketserver", "asyncio", "torch.distributed", "huggingface_hub",
         "transformers", "mlflow"),
        (Severity.HIGH, _NETWORK),
    ),
    **dict.fromkeys(
        ("threading", "_thread", "concurrent", "signal", "atexit", "gc", "resource",
         "inspect", "copyreg", "weakref", "platform", "_signal"),
        (Severity.HIGH, _PROCESS),
    ),
    **dict.fromkeys(
        ("hermetic", "fickling", "picklescan", "modelscan", "modelaudit"),
        (Severity.HIGH, _SCANNER),
    ),
}  # fmt: skip

#: Exact ``module.name`` globals; these win over the module rows.
_NAMES: dict[str, tuple[Severity, str]] = {
    **dict.fromkeys(
        ("builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__",
         "builtins.breakpoint", "builtins.input", "builtins.help", "builtins.exit",
         "builtins.quit", "builtins.__build_class__", "builtins.__loader__",
         "builtins.__spec__", "builtins.__builtins__", "builtins.globals",
         "builtins.locals", "builtins.vars", "asyncio.create_subprocess_shell",
         "asyncio.create_subprocess_exec", "codecs.open"),
        (Severity.CRITICAL, _RUNS_CODE),
    ),
    **dict.fromkeys(
        ("builtins.getattr", "builtins.setattr", "builtins.delattr",
         "operator.attrgetter", "operator.methodcaller", "inspect.getattr_static",
         "copyreg.add_extension", "copyreg.pickle", "copyreg.constructor",
         "pydoc.locate"),
        (Severity.CRITICAL, _ATTRIBUTE),
    ),
    "builtins.open": (Severity.CRITICAL, _FILES),
    **dict.fromkeys(
        ("torch.load", "torch.jit.load", "torch.storage._load_from_bytes",
         "numpy.load", "numpy.loads", "pandas.read_pickle", "torch.jit._script.load"),
        (Severity.CRITICAL, _NESTED),
    ),
    **dict.fromkeys(
        ("builtins.map", "builtins.filter", "builtins.type", "builtins.super",
         "builtins.classmethod", "builtins.staticmethod", "builtins.property",
         "builtins.iter", "builtins.next", "functools.partial", "functools.reduce",
         "functools.partialmethod", "itertools.starmap", "copyreg.__newobj__",
         "copyreg.__newobj_ex__", "torch._tensor._rebuild_from_type_v2",
         "torch._utils._rebuild_wrapper_subclass", "pandas.read_csv",
         "pandas.read_json", "pandas.read_html", "pandas.read_table"),
        (Severity.HIGH, _COMPOSE),
    ),
}  # fmt: skip

#: What safe loading allows by default (see ``_allowlist``): plain data only.
_DATA_NAMES = {
    "builtins.set", "builtins.frozenset", "builtins.complex", "builtins.bytearray",
    "collections.OrderedDict", "datetime.date", "datetime.datetime", "datetime.time",
    "datetime.timedelta", "datetime.timezone", "decimal.Decimal",
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter", "torch.Size",
    "numpy.ndarray", "numpy.dtype", "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct", "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
}  # fmt: skip

#: torch storage classes and dtype names, and NumPy scalar types: data, and the
#: ``(dtype, itemsize)`` a storage of that type holds.
STORAGE_TYPES: dict[str, tuple[str, int]] = {
    "torch.storage.UntypedStorage": ("uint8", 1),
    "torch.UntypedStorage": ("uint8", 1),
}
_TORCH_DTYPES = (
    # (dtype names, legacy storage class or "", itemsize)
    (("float64", "double"), "DoubleStorage", 8),
    (("float32", "float"), "FloatStorage", 4),
    (("float16", "half"), "HalfStorage", 2),
    (("bfloat16",), "BFloat16Storage", 2),
    (("complex128", "cdouble"), "ComplexDoubleStorage", 16),
    (("complex64", "cfloat"), "ComplexFloatStorage", 8),
    (("complex32", "chalf"), "", 4),
    (("int64", "long"), "LongStorage", 8),
    (("int32", "int"), "IntStorage", 4),
    (("int16", "short"), "ShortStorage", 2),
    (("int8",), "CharStorage", 1),
    (("uint8",), "ByteStorage", 1),
    (("uint16",), "", 2),
    (("uint32",), "", 4),
    (("uint64",), "", 8),
    (("bool",), "BoolStorage", 1),
    (("qint8",), "QInt8Storage", 1),
    (("qint32",), "QInt32Storage", 4),
    (("quint8",), "QUInt8Storage", 1),
    (("quint4x2",), "QUInt4x2Storage", 1),
    (("quint2x4",), "QUInt2x4Storage", 1),
    *((
        (name,), "", 1) for name in (
        "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
        "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8", "bits1x8", "bits2x4",
        "bits4x2")
    ),
    (("bits16",), "", 2),
)  # fmt: skip
for _names, _storage, _itemsize in _TORCH_DTYPES:
    for _name in _names:
        _DATA_NAMES.add(f"torch.{_name}")
    if _storage:
        STORAGE_TYPES[f"torch.{_storage}"] = (_names[0], _itemsize)
for _name, _itemsize in (
    ("bool_", 1), ("int8", 1), ("uint8", 1), ("int16", 2), ("uint16", 2),
    ("float16", 2), ("int32", 4), ("uint32", 4), ("float32", 4), ("int64", 8),
    ("uint64", 8), ("float64", 8), ("complex64", 8), ("complex128", 16),
):  # fmt: skip
    STORAGE_TYPES[f"numpy.{_name}"] = (_name.rstrip("_"), _itemsize)
_DATA_NAMES.update(STORAGE_TYPES)
del _names, _storage, _itemsize, _name

#: Globals that deserialise their argument: a bytes argument is scanned as a pickle.
NESTED_LOADERS = frozenset(
    {
        "pickle.loads", "_pickle.loads", "pickle._loads", "cPickle.loads",
        "dill.loads", "cloudpickle.loads", "joblib.load", "torch.load",
        "torch.serialization.load", "torch.storage._load_from_bytes", "numpy.loads",
        "pandas.read_pickle", "jsonpickle.decode", "shelve.open",
    }
)  # fmt: skip
SCANNER_MODULES = frozenset(
    name for name, (_, reason) in _MODULES.items() if reason == _SCANNER
)


def _module_row(module: str) -> tuple[Severity, str] | None:
    """Return the row of *module* or of its closest listed parent package."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        row = _MODULES.get(".".join(parts[:end]))
        if row is not None:
            return row
    return None


def _is_plausible_name(text: str) -> bool:
    """Tell whether *text* could name a module or attribute path a loader can import.

    Non-identifier segments pass (packaged modules may be ``fx-generated._0``);
    empty segments, whitespace, control characters and path separators do not.

    >>> _is_plausible_name("a.b_c"), _is_plausible_name("fx-generated._0")
    (True, True)
    >>> _is_plausible_name(".a"), _is_plausible_name("os "), _is_plausible_name("a/b")
    (False, False, False)
    """
    if any(not part for part in text.split(".")):
        return False
    return text.isprintable() and not any(c.isspace() or c in "/\\" for c in text)


def _rate_plain(module: str, name: str) -> tuple[Severity, str]:
    """Rate ``module.name`` from the tables alone."""
    full = f"{module}.{name}"
    if full in _DATA_NAMES:
        return Severity.INFO, _DATA
    row = _NAMES.get(full) or _module_row(module) or _module_row(full)
    if row is not None:
        return row
    if name.startswith("__") and name.endswith("__"):
        return Severity.CRITICAL, f"takes the dunder attribute {name!r}, {_ATTRIBUTE}"
    return Severity.MEDIUM, _UNKNOWN


@functools.lru_cache(maxsize=4096)
def rate_global(module: str, name: str) -> tuple[Severity, str]:
    """Return the severity of a pickle global and why, from the table above.

    >>> rate_global("builtins", "eval")
    (<Severity.CRITICAL: 3>, 'runs code or commands when loaded')
    >>> rate_global("collections", "OrderedDict")[0]
    <Severity.INFO: 0>
    >>> rate_global("builtins", "print.__class__.__base__.__subclasses__")[0]
    <Severity.CRITICAL: 3>
    >>> rate_global("__builtin__", "eval")[0]
    <Severity.CRITICAL: 3>
    >>> rate_global("mypkg.models", "Net")
    (<Severity.MEDIUM: 1>, 'not known to be data: loading imports its module')
    """
    if not module or not name:
        return Severity.HIGH, "malformed global: empty module or name"
    rating = _rate_plain(module, name)
    if "." in name:
        dunder = [part for part in name.split(".") if part.startswith("__")]
        if dunder:
            walk = f"walks attributes {'.'.join(dunder)!r}, {_ATTRIBUTE}"
            return Severity.CRITICAL, walk
        head = _rate_plain(module, name.partition(".")[0])
        rating = max(rating, head, (Severity.MEDIUM, "an attribute path"))
    if not (_is_plausible_name(module) and _is_plausible_name(name)):
        rating = max(rating, (Severity.HIGH, "malformed module or attribute name"))
    mapped = _python2_name(module, name)
    if mapped is not None and mapped != (module, name):
        # A loader maps these names for protocols 0-2; under their own name the
        # module does not exist on Python 3, so the mapped name is what counts.
        translated = rate_global(*mapped)
        rating = translated if rating[1] == _UNKNOWN else max(rating, translated)
    return rating


def rate_module(module: str) -> tuple[Severity, str] | None:
    """Return the row of a whole module (for imports and externs), or None if unlisted.

    >>> rate_module("subprocess")[0], rate_module("json")
    (<Severity.CRITICAL: 3>, None)
    """
    row = _module_row(module)
    if row is None and module in ("builtins", "__builtin__"):
        return Severity.CRITICAL, _RUNS_CODE
    return row


def _python2_name(module: str, name: str) -> tuple[str, str] | None:
    """Return what a loader's Python 2 compatibility maps ``module.name`` to."""
    pair = _compat_pickle.NAME_MAPPING.get((module, name))
    if pair is not None:
        return (str(pair[0]), str(pair[1]))
    if module in _compat_pickle.IMPORT_MAPPING:
        return str(_compat_pickle.IMPORT_MAPPING[module]), name
    return None
