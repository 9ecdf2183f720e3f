"""Kernels cached as machine code (``backend/native.py``): linked in a new process without
importing numba, and refused, never crashed on, when damaged or not linkable."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fgrad as fg
from fgrad._src.backend import interp, native

pytestmark = pytest.mark.skipif(not native.supported(), reason="objects are cached on Linux")


def _stored_object(name):
    """The bytes of a stored kernel object, storing it first by running a program."""
    fg.jit(lambda x: x * 2.0 + 1.0)(np.ones(3))
    path = native._path(name)
    assert path is not None and os.path.exists(path), "the package cache is not writable"
    with open(path, "rb") as f:
        return f.read()


def test_a_new_process_runs_programs_from_stored_objects_without_numba():
    _stored_object("dispatcher")
    code = (
        "import sys, numpy as np, fgrad as fg\n"
        "print(fg.jit(lambda x: x * 2.0 + 1.0)(np.arange(3.0)).tolist())\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[1.0, 3.0, 5.0]"
    assert out[1] == "False"  # nothing imported numba: every kernel came from its object


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "header"])
def test_a_damaged_object_is_refused(tmp_path, monkeypatch, damage):
    data = _stored_object("dispatcher")
    header_end = data.index(b"\n", len(native._MAGIC)) + 1
    if damage == "truncate":
        data = data[:-100]
    elif damage == "flip":
        data = data[:-100] + bytes([data[-100] ^ 1]) + data[-99:]
    elif damage == "magic":
        data = b"x" + data[1:]
    else:
        data = data[:header_end - 2] + data[header_end - 1:]  # the header is not JSON
    monkeypatch.setitem(native._state, "dir", str(tmp_path))
    (tmp_path / os.path.basename(native._path("dispatcher"))).write_bytes(data)
    assert native.load("dispatcher") is None


def test_an_object_needing_a_missing_symbol_is_not_linked(monkeypatch):
    _stored_object("dispatcher")
    assert native.load("dispatcher") is not None
    monkeypatch.setattr(native, "undefined_symbols", lambda obj: ["fgrad_no_such_symbol"])
    assert native.load("dispatcher") is None  # MCJIT would have aborted the process


def test_undefined_symbols_lists_what_an_object_needs():
    data = _stored_object("dispatcher")
    _, obj = native._parse(data)
    names = native.undefined_symbols(obj)
    assert "numba_gil_ensure" in names  # the cfunc's exception path
    assert not any(name.startswith("cfunc.") for name in names)  # its own entry point


class _CompiledLike:
    """What ``store`` reads of a numba ``CFunc``: its entry point's name and its object."""

    def __init__(self, symbol, obj):
        self.native_name = symbol
        self._library = self
        self._obj = obj

    def serialize_using_object_code(self):
        return ("library", "object", (self._obj, b""))


def test_store_then_load_round_trips_and_an_unusable_directory_is_silent(tmp_path,
                                                                          monkeypatch):
    header, obj = native._parse(_stored_object("dispatcher"))
    compiled = _CompiledLike(header["symbol"], obj)
    monkeypatch.setitem(native._state, "dir", str(tmp_path))
    native.store("copy", "a copy", compiled)
    address, label = native.load("copy")
    assert address and label == "a copy"
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(native._path("copy"))]
    monkeypatch.setitem(native._state, "dir", str(tmp_path / "missing" / "dir"))
    native.store("copy", "a copy", compiled)  # no error, nothing written
    assert not (tmp_path / "missing").exists()
    assert native.load("copy") is None
    native.store("other", "not compiled", object())  # not a cfunc: no error either


def test_switching_the_cache_off_or_a_foreign_platform_gives_no_directory(monkeypatch):
    monkeypatch.delitem(native._state, "dir", raising=False)
    monkeypatch.setattr(native, "ENABLED", False)
    assert native.cache_dir() is None
    monkeypatch.delitem(native._state, "dir", raising=False)
    monkeypatch.setattr(native, "ENABLED", True)
    monkeypatch.setattr(native.sys, "platform", "darwin")
    assert native.cache_dir() is None
    monkeypatch.delitem(native._state, "dir", raising=False)


def test_the_stamp_depends_on_the_cpu_and_numba_settings(monkeypatch):
    import llvmlite.binding as ll

    base = native._compute_stamp()
    assert native._compute_stamp() == base
    monkeypatch.setenv("NUMBA_OPT", "0")
    assert native._compute_stamp() != base
    monkeypatch.delenv("NUMBA_OPT")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/elsewhere")  # where, not what: same objects
    assert native._compute_stamp() == base
    monkeypatch.setattr(ll, "get_host_cpu_name", lambda: "another-cpu")
    assert native._compute_stamp() != base


def test_kernels_linked_from_objects_match_the_reference():
    interp.warmup(dtypes=(np.float64,))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000)

    def f(x):
        return fg.numpy.sum(fg.numpy.tanh(x) * fg.numpy.sin(x) ** 2)

    code = (
        "import numpy as np, fgrad as fg, fgrad.numpy as fnp\n"
        "x = np.random.default_rng(0).standard_normal(1000)\n"
        "g = fg.jit(fg.grad(lambda x: fnp.sum(fnp.tanh(x) * fnp.sin(x) ** 2)))(x)\n"
        "np.save(__import__('sys').argv[1], g)\n"
    )
    out = os.path.join(os.path.dirname(native._path("dispatcher")), "fgrad-test-grad.npy")
    try:
        subprocess.run([sys.executable, "-c", code, out], check=True)
        got = np.load(out)
    finally:
        if os.path.exists(out):
            os.remove(out)
    fg.config.update("backend", "reference")
    try:
        want = fg.grad(f)(x)
    finally:
        fg.config.update("backend", "numba")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_python_entry_calls_a_c_function_with_a_pointer():
    import ctypes

    strlen = ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value
    text = ctypes.create_string_buffer(b"kernel")
    run = native.python_entry(strlen)
    assert run(ctypes.addressof(text)) == 6
    with pytest.raises(TypeError):
        run("not an address")  # an error, not a call with a garbage pointer


def test_programs_run_through_ctypes_when_no_builtin_entry_can_be_made(monkeypatch):
    monkeypatch.setattr(native, "python_entry", lambda address: None)
    monkeypatch.setitem(interp._state, "dispatch", None)  # (restored after the test)
    out = fg.jit(lambda x, y: x * y + 1.0)(np.arange(3.0), np.arange(3.0))
    assert isinstance(interp._state["dispatch"], interp._DISPATCH_TYPE)
    np.testing.assert_array_equal(out, [1.0, 2.0, 5.0])


def test_another_kernels_object_under_this_name_is_refused(tmp_path, monkeypatch):
    data = _stored_object("dispatcher")
    monkeypatch.setitem(native._state, "dir", str(tmp_path))
    (tmp_path / os.path.basename(native._path("slot0"))).write_bytes(data)  # a renamed file
    assert native.load("slot0") is None
    (tmp_path / os.path.basename(native._path("dispatcher"))).write_bytes(data)
    assert native.load("dispatcher") is not None
    monkeypatch.setitem(native._state, "stamp", "0" * 64)  # a file of another key
    (tmp_path / os.path.basename(native._path("dispatcher"))).write_bytes(data)
    assert native.load("dispatcher") is None


def test_python_entry_refuses_what_is_not_an_address():
    import ctypes

    strlen = ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value
    run = native.python_entry(strlen)
    for not_an_address in (0, True, 4095):  # the first page: never a pointer
        with pytest.raises(ValueError, match="not a data address"):
            run(not_an_address)
    with pytest.raises(OverflowError):
        run(-1)
    with pytest.raises(OverflowError):
        run(2 ** 64)


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_a_cache_entry_that_is_no_regular_file_is_not_read(tmp_path, monkeypatch, kind):
    monkeypatch.setitem(native._state, "dir", str(tmp_path))
    path = native._path("dispatcher")
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
    elif kind == "device":
        os.symlink("/dev/zero", path)  # reading it would never end
    else:
        with open(path, "wb") as f:
            f.truncate(native._MAX_BYTES + 1)
    assert native.load("dispatcher") is None


def test_stored_objects_are_readable_by_others(tmp_path, monkeypatch):
    header, obj = native._parse(_stored_object("dispatcher"))
    monkeypatch.setitem(native._state, "dir", str(tmp_path))
    native.store("copy", "a copy", _CompiledLike(header["symbol"], obj))
    assert os.stat(native._path("copy")).st_mode & 0o777 == 0o644


def test_numba_config_file_in_the_working_directory_changes_the_stamp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = native._compute_stamp()
    (tmp_path / ".numba_config.yaml").write_text("boundscheck: 1\n")
    assert native._compute_stamp() != base


def test_a_fork_during_a_compile_leaves_the_child_a_usable_lock():
    import threading
    import time

    held = threading.Event()

    def compiling():
        with interp._compile_lock:
            held.set()
            time.sleep(0.3)

    thread = threading.Thread(target=compiling)
    thread.start()
    held.wait()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the compiling thread does not exist here
        got = interp._compile_lock.acquire(timeout=5)
        os.write(write_end, b"1" if got else b"0")
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 1)
    os.close(read_end)
    os.waitpid(pid, 0)
    thread.join()
    assert answer == b"1"


def test_warmup_from_workers_links_what_is_cached_without_numba():
    interp.warmup()  # every kernel compiled or linked here, so every object is stored
    code = (
        "import sys, fgrad as fg\n"
        "from fgrad._src.backend import interp\n"
        "fg.warmup(processes=2)\n"
        "print(bool(interp._table.all()), 'numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "False"]  # no worker started, numba never imported


def test_with_numba_jit_disabled_programs_run_on_the_reference_quietly():
    code = (
        "import numpy as np, fgrad as fg\n"
        "print(fg.jit(fg.grad(lambda x: (x * x).sum()))(np.arange(3.0)).tolist())\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)
    assert done.stdout.strip() == "[0.0, 2.0, 4.0]"
    assert done.stderr == ""  # no traceback logged per kernel
