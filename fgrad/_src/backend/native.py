"""The interpreter's compiled kernels cached as machine code, loaded without importing numba.

Loading a kernel from numba's own cache needs numba imported and its CPU target set up
(which imports SciPy's BLAS layer): ~1.2 s of a warm process's first call here. Every
kernel and the dispatcher are numba ``cfunc`` s, whose compiled code is one relocatable
ELF object each. ``store`` writes that object to disk; ``load`` links it with llvmlite's
MCJIT and returns the entry point's address, which is all the interpreter needs.

An object refers only to libc and libm, the Python C API and numba's C helpers (its
exception path and memory runtime). The helpers live in numba's compiled extension
modules, which load on their own, without the numba package. Before linking, every
symbol the object needs must resolve; otherwise, and on any other surprise (another
platform, a damaged or foreign file), ``load`` returns None and the caller compiles with
numba as usual. Files are keyed by ``stamp()``: the interpreter's sources, the numba,
llvmlite and Python versions, the CPU and every ``NUMBA_*`` setting.

>>> len(stamp())
64
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import platform
import stat as stat_module
import struct
import sys
import tempfile
import threading

logger = logging.getLogger("fgrad")

_HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("kernels_codes.py", "kernels_common.py", "kernels_entry.py", "kernels_elementwise.py",
           "kernels_data.py", "kernels_reduce.py", "kernels_math.py")
ENABLED = os.environ.get("FGRAD_NUMBA_CACHE", "1") != "0"  # the same switch as numba's cache
_MAGIC = b"fgrad kernel object 1\n"
_MAX_BYTES = 1 << 26  # the largest kernel object is ~50 KB
_ELF_MACHINES = {"x86_64": 62, "AMD64": 62, "aarch64": 183, "arm64": 183}
_lock = threading.Lock()
_state: dict = {}  # the stamp, the directory, the target machine, engines, objects


def _package_file(package, *parts):
    spec = importlib.util.find_spec(package)  # NB: finds without importing the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(spec.submodule_search_locations[0], *parts)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, TypeError):
        return (path or "").encode()


def source_stamp() -> str:
    """A hash of the interpreter's sources and numba's version: a kernel compiled from
    other sources, or by another numba, never counts as cached."""
    h = hashlib.sha256()
    h.update(_read(_package_file("numba", "_version.py")))
    for name in SOURCES:
        h.update(_read(os.path.join(_HERE, name)))
    return h.hexdigest()


def stamp() -> str:
    """The key of this process's kernel objects (computed once: it imports llvmlite)."""
    if "stamp" not in _state:
        _state["stamp"] = _compute_stamp()
    return _state["stamp"]


def _compute_stamp() -> str:
    h = hashlib.sha256(source_stamp().encode())
    h.update(_read(_package_file("llvmlite", "_version.py")))
    h.update(f"{sys.version}|{platform.machine()}|{sys.platform}".encode())
    settings = sorted((k, v) for k, v in os.environ.items()
                      if k.startswith("NUMBA_") and k != "NUMBA_CACHE_DIR")
    h.update(repr(settings).encode())
    if os.path.isfile(".numba_config.yaml"):  # NB: numba reads it from the working directory
        h.update(_read(".numba_config.yaml"))
    try:
        import llvmlite.binding as ll

        h.update(ll.get_host_cpu_name().encode())
        h.update(ll.get_host_cpu_features().flatten().encode())
    except Exception:  # no llvmlite: nothing will load anyway
        h.update(b"no llvmlite")
    return h.hexdigest()


# --------------------------------------------------------------------------- where


def _candidate_dirs():
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        yield os.path.join(numba_dir, "fgrad-kernels")
    yield os.path.join(_HERE, "__pycache__", "fgrad-kernels")
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(home, "fgrad", "kernels")


def cache_dir() -> str | None:
    """The directory kernel objects are stored in: the first writable one of
    ``$NUMBA_CACHE_DIR/fgrad-kernels``, the package's ``__pycache__`` and
    ``~/.cache/fgrad``; None when caching is off, unsupported here, or nowhere writable."""
    if "dir" not in _state:
        _state["dir"] = _find_dir() if ENABLED and supported() else None
    return _state["dir"]


def _find_dir():
    for path in _candidate_dirs():
        try:
            os.makedirs(path, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
            probe.close()
        except OSError:
            continue
        return path
    return None


def supported() -> bool:
    """Whether kernels can be cached as objects here: ELF platforms llvmlite can link."""
    return sys.platform.startswith("linux") and platform.machine() in _ELF_MACHINES


def _path(name):
    directory = cache_dir()
    return None if directory is None else os.path.join(directory, f"{name}-{stamp()[:24]}.o")


# --------------------------------------------------------------------------- store


def store(name, label, cfunc) -> None:
    """Write the object code of the freshly compiled numba ``cfunc`` as ``name``.

    ``label`` says which kernel it is (``interp.COMPILE_SECONDS``). Never raises: a
    kernel that cannot be stored is compiled again by the next process.
    """
    path = _path(name)
    if path is None:
        return
    try:
        _, kind, (obj, _) = cfunc._library.serialize_using_object_code()
        if kind != "object" or not _is_elf(obj):
            return
        header = {"name": name, "stamp": stamp(), "symbol": cfunc.native_name,
                  "label": label, "size": len(obj), "sha256": hashlib.sha256(obj).hexdigest()}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            os.fchmod(fd, 0o644)  # NB: mkstemp's 0600 would hide a shared cache from others
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + json.dumps(header).encode() + b"\n" + obj)
            os.replace(tmp, path)  # NB: atomic: a reader sees the old file or the new one
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception as e:
        logger.debug("fgrad: kernel %s not stored as an object: %s", label, e)


# --------------------------------------------------------------------------- load


def load(name):
    """``(address, label)`` of kernel ``name`` linked from its stored object, or None."""
    path = _path(name)
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:  # not stored (yet)
        return None
    try:
        # NB: never open a FIFO (it blocks) or a device (/dev/zero never ends)
        if not stat_module.S_ISREG(info.st_mode) or info.st_size > _MAX_BYTES:
            raise ValueError("not a regular file of a kernel's size")
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES)
        header, obj = _parse(data)
        if header["name"] != name or header["stamp"] != stamp():
            # NB: another kernel's file (copied or renamed) would run as this one
            raise ValueError(f"the file holds {header['name']!r} of another key")
        with _lock, _numba_compiler_lock():
            address = _link(obj, header["symbol"])
    except Exception as e:
        logger.debug("fgrad: kernel object %s not loaded: %s", path, e)
        return None
    return (address, header["label"]) if address else None


def _numba_compiler_lock():
    """numba's lock around its use of LLVM, when numba is loaded (its compiles in other
    threads and our linking share LLVM's global state); else nothing."""
    lock_module = sys.modules.get("numba.core.compiler_lock")
    return contextlib.nullcontext() if lock_module is None else lock_module.global_compiler_lock


def _parse(data):
    if not data.startswith(_MAGIC):
        raise ValueError("not a kernel object file")
    end = data.index(b"\n", len(_MAGIC))
    header = json.loads(data[len(_MAGIC):end])
    obj = data[end + 1:]
    if len(obj) != header["size"] or hashlib.sha256(obj).hexdigest() != header["sha256"]:
        raise ValueError("truncated or damaged")
    if not _is_elf(obj):
        raise ValueError("not an ELF object for this machine")
    return header, obj


def _is_elf(obj):
    # NB: 64-bit little-endian ELF for this machine's architecture only.
    return (len(obj) > 64 and obj[:4] == b"\x7fELF" and obj[4] == 2 and obj[5] == 1
            and struct.unpack_from("<H", obj, 18)[0] == _ELF_MACHINES.get(platform.machine()))


def undefined_symbols(obj) -> list:
    """The names an ELF64 object refers to without defining them."""
    shoff = struct.unpack_from("<Q", obj, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize)
                for i in range(shnum)]
    names = []
    for _, kind, _, _, offset, size, link, _, _, entsize in sections:
        if kind != 2 or not entsize:  # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for k in range(size // entsize):
            name_at, _, _, section, _, _ = struct.unpack_from("<IBBHQQ", obj, offset + k * entsize)
            if section == 0 and name_at:  # SHN_UNDEF
                start = strings + name_at
                names.append(obj[start:obj.index(b"\0", start)].decode())
    return names


def _link(obj, symbol):
    import llvmlite.binding as ll

    target_machine = _linker()
    _check_resolvable(ll, undefined_symbols(obj))
    engine = _new_engine(ll, target_machine)
    _state.setdefault("objects", []).append(obj)  # NB: LLVM may keep pointing into it
    engine.add_object_file(ll.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    return engine.get_function_address(symbol)


def _check_resolvable(ll, names):
    """Raise LookupError unless every symbol in ``names`` resolves in this process.

    NB: MCJIT aborts the process on a symbol it cannot resolve: check them all first.
    """
    missing = [name for name in names if not ll.address_of_symbol(name)]
    if missing:
        raise LookupError(f"unresolved symbols {missing[:5]}")


def _module(ll, target_machine, ir=""):
    """An LLVM module of ``ir`` for ``target_machine`` (MCJIT requires its data layout)."""
    module = ll.parse_assembly(ir)
    module.triple = target_machine.triple
    module.data_layout = str(target_machine.target_data)
    return module


def _new_engine(ll, target_machine, module=None):
    """An MCJIT engine for one object (objects may define the same helper symbols), or
    for ``module``."""
    if module is None:
        module = _module(ll, target_machine)
    engine = ll.create_mcjit_compiler(module, target_machine)
    # NB: engines are never destroyed: the code they hold runs as long as the process,
    # and destroying one while others live upset LLVM (an assertion, a crash).
    _state.setdefault("engines", []).append(engine)
    return engine


def _linker():
    """Set up llvmlite once: the native target, numba's C helpers as symbols, and a
    first engine, whose making lets the process's own symbols (libm, the C API) be
    looked up."""
    if "linker" not in _state:
        import llvmlite.binding as ll

        ll.initialize_native_target()
        ll.initialize_native_asmprinter()
        _register_numba_helpers(ll)
        target = ll.Target.from_triple(ll.get_process_triple())
        target_machine = target.create_target_machine(
            cpu=ll.get_host_cpu_name(), features=ll.get_host_cpu_features().flatten(),
            opt=3, reloc="default", codemodel="jitdefault", jit=True)
        _new_engine(ll, target_machine)
        _state["linker"] = target_machine
    return _state["linker"]


# --------------------------------------------------------------------------- calling

# ``run(address: int) -> int``, a METH_O builtin: calls the C function at @target with the
# pointer ``address`` and the GIL released. Anything but an int, a negative one or one in
# the first page (0, True, ...) raises instead.
_ENTRY_IR = r"""
@target = global i64 0
@value_error = global i64 0
@refusal = private unnamed_addr constant [26 x i8] c"fgrad: not a data address\00"
declare i64 @PyLong_AsUnsignedLongLong(ptr)
declare ptr @PyErr_Occurred()
declare void @PyErr_SetString(ptr, ptr)
declare ptr @PyEval_SaveThread()
declare void @PyEval_RestoreThread(ptr)
declare ptr @PyLong_FromLongLong(i64)

define ptr @fgrad_entry(ptr %self, ptr %arg) {
start:
  %value = call i64 @PyLong_AsUnsignedLongLong(ptr %arg)
  %all_ones = icmp eq i64 %value, -1
  br i1 %all_ones, label %maybe_error, label %check
maybe_error:
  %error = call ptr @PyErr_Occurred()
  %raised = icmp ne ptr %error, null
  br i1 %raised, label %fail, label %check
fail:
  ret ptr null
check:
  %low = icmp ult i64 %value, 4096
  br i1 %low, label %refuse, label %call
refuse:
  %exception_address = load i64, ptr @value_error
  %exception = inttoptr i64 %exception_address to ptr
  call void @PyErr_SetString(ptr %exception, ptr @refusal)
  ret ptr null
call:
  %address = load i64, ptr @target
  %function = inttoptr i64 %address to ptr
  %pointer = inttoptr i64 %value to ptr
  %state = call ptr @PyEval_SaveThread()
  %status = call i64 %function(ptr %pointer)
  call void @PyEval_RestoreThread(ptr %state)
  %result = call ptr @PyLong_FromLongLong(i64 %status)
  ret ptr %result
}
"""
_METH_O = 0x0008


def python_entry(address):
    """A builtin function ``run(pointer) -> int`` calling the C function
    ``int64_t f(void *)`` at ``address``, with the GIL released; None if it cannot be made.

    Python calls a builtin in ~0.25 µs where a ``ctypes`` function pointer takes ~0.45 µs
    (and numba's own entry points, unboxing an array, ~0.3 µs): on a small program that
    is a tenth of the call.
    """
    try:
        with _lock, _numba_compiler_lock():
            return _make_entry(address)
    except Exception as e:
        logger.debug("fgrad: no builtin entry point (%s); calling through ctypes", e)
        return None


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


def _make_entry(address):
    import llvmlite.binding as ll

    target_machine = _linker()
    module = _module(ll, target_machine, _ENTRY_IR)
    module.verify()
    external = [*module.functions, *module.global_variables]
    _check_resolvable(ll, [v.name for v in external if v.is_declaration])
    engine = _new_engine(ll, target_machine, module)
    engine.finalize_object()
    ctypes.c_int64.from_address(engine.get_global_value_address("target")).value = address
    # NB: the exception type by address: a ``PyExc_*`` symbol means the variable to C but
    # the object itself to numba's code, and numba's meaning is registered here.
    value_error = engine.get_global_value_address("value_error")
    ctypes.c_int64.from_address(value_error).value = id(ValueError)
    method = _MethodDef(b"fgrad_run", engine.get_function_address("fgrad_entry"), _METH_O,
                        None)
    _state.setdefault("method_defs", []).append(method)  # NB: the builtin points at it
    new_function = ctypes.pythonapi.PyCFunction_NewEx
    new_function.restype = ctypes.py_object
    new_function.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]
    return new_function(ctypes.addressof(method), None, None)


# --------------------------------------------------------------------------- numba's helpers


def _register_numba_helpers(ll):
    """The symbols numba gives its compiled code, from its extension modules alone.

    NB: the same names and addresses as numba's ``_load_global_helpers`` and
    ``rtsys.initialize``. Loading an extension module registers it in ``sys.modules``
    under its full name, so a later ``import numba`` uses these very modules.
    """
    for helpers in (_extension("numba._helperlib", "_helperlib"),
                    _extension("numba._dynfunc", "_dynfunc")):
        for name, address in helpers.c_helpers.items():
            ll.add_symbol("numba_" + name, address)
    ll.add_symbol("_Py_NoneStruct", id(None))
    for value in vars(builtins).values():
        if isinstance(value, type) and issubclass(value, BaseException):
            ll.add_symbol("PyExc_" + value.__name__, id(value))
    nrt = _extension("numba.core.runtime._nrt_python", "core", "runtime", "_nrt_python")
    for name, address in nrt.c_helpers.items():
        ll.add_symbol(name if name.startswith("_") else "NRT_" + name, address)


def _extension(full_name, *parts):
    module = sys.modules.get(full_name)
    if module is not None:
        return module
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = _package_file("numba", *parts[:-1], parts[-1] + suffix)
        if path and os.path.exists(path):
            spec = importlib.util.spec_from_file_location(full_name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules.setdefault(full_name, module)
            return module
    raise ImportError(f"numba's extension module {full_name} was not found")
