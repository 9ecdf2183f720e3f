"""``fg.save`` / ``fg.load``: checkpoints as plain ``.npz`` files, never pickles.

Layout of a checkpoint (a zip archive readable by ``np.load(path,
allow_pickle=False)``):

* one ``.npy`` entry per array, named by its key path: the keys from the root
  to the array, each escaped (``~`` -> ``~0``, ``/`` -> ``~1``, control characters
  -> ``~x<hex>``) and joined by ``/``, e.g. ``model/fc.weight`` or
  ``optimizer/state/0/exp_avg`` (a name ending in ``.npy`` gets a ``~``: np.load
  strips that suffix from member names);
* an entry ``__fgrad_manifest__``: UTF-8 JSON (as a uint8 array) describing the
  whole object tree — dict/OrderedDict/list/tuple nodes with their keys (and
  key types: str, int, float, bool, None), scalars (int, float, bool, str,
  None), and for each array its entry name, kind (``tensor``, ``parameter``,
  ``ndarray``, ``scalar``), dtype, shape, ``requires_grad`` and SHA-256.

``save`` writes to a temporary file in the target directory, fsyncs it and
``os.replace``-s it over the target (with the old file's permissions, or the
umask's), so an interrupted save never leaves a half-written checkpoint in place of
the previous one. ``load`` checks the
manifest against every entry (names, dtypes, shapes, hashes) and raises
``ValueError`` naming the path for a truncated, corrupted or tampered file.

>>> import os, tempfile
>>> import fgrad as fg
>>> from fgrad import nn
>>> model = nn.Linear(3, 2)
>>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
>>> fg.save(model.state_dict(), path)
>>> sd = fg.load(path)
>>> list(sd), sd["weight"].requires_grad
(['weight', 'bias'], False)
>>> model.load_state_dict(sd)
<All keys matched successfully>
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import secrets
import tempfile
import tokenize
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from fgrad._src.tensor.tensor import Tensor

MANIFEST = "__fgrad_manifest__"
FORMAT = "fgrad-checkpoint"
VERSION = 1
_KEY_TYPES = {str: "str", int: "int", float: "float", bool: "bool", type(None): "none"}


def _escape(key):
    text = str(key).replace("~", "~0").replace("/", "~1")
    # NB: control characters (NUL ends a name in some zip readers) become ~x<hex>.
    return "".join(f"~x{ord(c):02x}" if ord(c) < 32 else c for c in text)


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).view(np.uint8).data).hexdigest() if (
        array.size) else hashlib.sha256(b"").hexdigest()


class _Writer:
    def __init__(self):
        self.arrays = {}
        self.names = {MANIFEST}

    def entry_name(self, path):
        base = "/".join(_escape(k) for k in path) or "root"
        if base.endswith(".npy"):
            # NB: np.load strips ".npy" from member names: "x.npy" would also name the
            # member of an entry "x".
            base += "~"
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}~{n}"
        self.names.add(name)
        return name

    def node(self, obj, path):
        if isinstance(obj, Tensor):
            from fgrad._src.nn.module import Parameter

            kind = "parameter" if isinstance(obj, Parameter) else "tensor"
            return self.array(obj._value, path, kind, requires_grad=obj.requires_grad)
        if isinstance(obj, np.ndarray):
            return self.array(obj, path, "ndarray")
        if isinstance(obj, np.generic):
            return self.array(np.asarray(obj), path, "scalar")
        if obj is None or isinstance(obj, (bool, str)):
            return {"type": "value", "value": obj}
        if isinstance(obj, int):
            return {"type": "int", "value": str(obj)}
        if isinstance(obj, float):
            return {"type": "float", "value": float.hex(obj) if math.isfinite(obj) else repr(obj)}
        if isinstance(obj, dict):
            items = []
            for key, value in obj.items():
                key_type = _KEY_TYPES.get(type(key))
                if key_type is None:
                    raise TypeError(
                        f"fg.save: dict keys must be str, int, float, bool or None; got a "
                        f"{type(key).__name__} key at {_where(path)}")
                stored = key if key_type in ("str", "bool", "none") else (
                    str(key) if key_type == "int" else float.hex(key))
                items.append([stored, key_type, self.node(value, path + (key,))])
            kind = "OrderedDict" if isinstance(obj, OrderedDict) else "dict"
            if type(obj) not in (dict, OrderedDict):
                kind = "dict"
            return {"type": kind, "items": items}
        if isinstance(obj, (list, tuple)):
            return {"type": "tuple" if isinstance(obj, tuple) else "list",
                    "items": [self.node(v, path + (i,)) for i, v in enumerate(obj)]}
        hint = (" (save module.state_dict() / optimizer.state_dict() instead)"
                if hasattr(obj, "state_dict") else "")
        raise TypeError(
            f"fg.save stores state dicts: Tensors, NumPy arrays, numbers, strings, None and "
            f"dicts/lists/tuples of them; got {type(obj).__name__} at {_where(path)}{hint}")

    def array(self, value, path, kind, requires_grad=False):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf" or array.dtype.hasobject:
            raise TypeError(f"fg.save: cannot store an array of dtype {array.dtype} at "
                            f"{_where(path)} (numeric and bool dtypes only)")
        name = self.entry_name(path)
        self.arrays[name] = array
        return {"type": "array", "kind": kind, "entry": name, "dtype": array.dtype.str,
                "shape": list(array.shape), "requires_grad": bool(requires_grad),
                "sha256": _digest(array)}


def _where(path):
    return "the root" if not path else "key path " + "/".join(repr(k) for k in path)


def save(obj, f):
    """Write ``obj`` (a state dict, or nested dicts/lists of Tensors, arrays and
    Python scalars) to ``f``, a path or a binary file object.

    A path is written atomically: to a temporary file in the same directory, then
    ``os.replace``-d over ``f`` (over its target, when ``f`` is a symlink). The file name
    is used as given (no suffix is added).
    """
    writer = _Writer()
    try:
        root = writer.node(obj, ())
    except RecursionError:
        raise TypeError("fg.save: the object is nested too deeply or contains itself") from None
    manifest = {"format": FORMAT, "version": VERSION, "root": root}
    payload = dict(writer.arrays)
    payload[MANIFEST] = np.frombuffer(json.dumps(manifest).encode("utf-8"), np.uint8)
    if hasattr(f, "write"):
        _write_npz(f, payload)
        return
    # NB: a symlink is written through (its target replaced atomically), as torch.save
    # writes through it; replacing the link itself would leave the target stale.
    given = os.fspath(f)
    path = os.path.realpath(given)
    if os.path.islink(path):  # realpath stops at a loop of links
        raise OSError(errno.ELOOP, f"fg.save: {given!r} is a loop of symbolic links")
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"fg.save: cannot write {given!r}: the directory {directory!r} "
                                "does not exist (create it first)")
    if os.path.isdir(path):
        raise IsADirectoryError(f"fg.save: {given!r} is a directory; give a file path inside "
                                "it, e.g. os.path.join(path, 'model.pt')")
    old_mode = _existing_mode(path)
    # NB: owner-only while written when replacing a file (its mode comes at the end); a
    # new file gets the umask's permissions from the kernel.
    fd, tmp = _new_temp_file(directory, os.path.basename(path),
                             0o666 if old_mode is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            _write_npz(out, payload)
            out.flush()
            os.fsync(out.fileno())
        if old_mode is not None:
            os.chmod(tmp, old_mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class _Reader:
    def __init__(self, archive, where):
        self.archive = archive
        self.where = where
        self.used = set()

    def fail(self, why):
        raise ValueError(f"fg.load: {self.where} is not a valid fgrad checkpoint: {why}")

    def node(self, node):
        if not isinstance(node, dict):
            self.fail("malformed manifest")
        kind = node.get("type")
        if kind == "value":
            value = node.get("value")
            if value is not None and not isinstance(value, (bool, str)):
                self.fail("malformed scalar in manifest")
            return value
        if kind == "int":
            return int(node["value"])
        if kind == "float":
            text = node["value"]
            return float(text) if text in ("nan", "inf", "-inf") else float.fromhex(text)
        if kind in ("dict", "OrderedDict"):
            out = OrderedDict() if kind == "OrderedDict" else {}
            for key, key_type, child in node["items"]:
                out[self.key(key, key_type)] = self.node(child)
            return out
        if kind in ("list", "tuple"):
            items = [self.node(child) for child in node["items"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "array":
            return self.array(node)
        self.fail(f"unknown node type {kind!r} in manifest")

    def key(self, key, key_type):
        if key_type == "str" and isinstance(key, str):
            return key
        if key_type == "int":
            return int(key)
        if key_type == "float":
            return float.fromhex(key)
        if key_type == "bool" and isinstance(key, bool):
            return key
        if key_type == "none" and key is None:
            return None
        self.fail(f"malformed key {key!r} in manifest")

    def array(self, node):
        name = node["entry"]
        if name not in self.archive.files or name == MANIFEST:
            self.fail(f"entry {name!r} listed in the manifest is missing")
        array = self.archive[name]
        self.used.add(name)
        if array.dtype.str != node["dtype"] or list(array.shape) != list(node["shape"]):
            self.fail(f"entry {name!r} has dtype {array.dtype.str} shape {list(array.shape)}, "
                      f"the manifest says {node['dtype']} {node['shape']}")
        if array.dtype.kind not in "biuf":
            self.fail(f"entry {name!r} has dtype {array.dtype.str}, which fg.save never "
                      "writes")
        if node.get("requires_grad") and array.dtype.kind != "f":
            self.fail(f"entry {name!r} is marked requires_grad but has dtype "
                      f"{array.dtype.str}")
        if _digest(array) != node["sha256"]:
            self.fail(f"entry {name!r} does not match its SHA-256 in the manifest (the file "
                      "was modified or corrupted)")
        kind = node["kind"]
        if kind == "ndarray":
            return array
        if kind == "scalar":
            return array[()]
        if kind == "parameter":
            from fgrad._src.nn.module import Parameter

            return Parameter(array, requires_grad=bool(node.get("requires_grad", True)))
        if kind == "tensor":
            t = Tensor._wrap(array)
            if node.get("requires_grad"):
                t.requires_grad_(True)
            return t
        self.fail(f"unknown array kind {kind!r}")


def _write_npz(out, payload):
    """What ``np.savez(out, **payload)`` writes, without passing the entry names as
    keyword arguments (a key named ``file`` or ``allow_pickle`` would be taken for one)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in payload.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _existing_mode(path):
    """The permissions of the file a checkpoint replaces (it keeps them), or None."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return None


def _new_temp_file(directory, name, mode):
    """``(fd, path)`` of a new, exclusively created ``.NAME.*.tmp`` in ``directory``,
    with ``mode`` less the umask.

    NB: not ``tempfile.mkstemp``: its files are owner-only, and reading the umask to widen
    them means setting it for the whole process, which races with other threads' files.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(tempfile.TMP_MAX):
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"fg.save: no free temporary file name in {directory!r}")


# What reading a damaged archive can raise besides ValueError (zipfile's, for a flipped
# flag bit: "encrypted" or "version 10.9"; NumPy's header parser, for a damaged header).
_CORRUPTED = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
              RuntimeError, SyntaxError, tokenize.TokenError, IndexError, OverflowError)


def load(f, map_location=None, weights_only=True):
    """Read a checkpoint written by ``fg.save``. Tensors come back as Tensors (not
    requiring grad, as saved from a state dict), NumPy arrays as arrays, containers and
    scalars as saved. Nothing is ever unpickled.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the
    file) for anything that is not an intact fgrad checkpoint. ``map_location`` may
    only be None or ``"cpu"``; ``weights_only`` is accepted for PyTorch compatibility.
    """
    if map_location not in (None, "cpu"):
        raise ValueError(f"fg.load: fgrad runs on the CPU only (map_location={map_location!r})")
    where = repr(os.fspath(f)) if not hasattr(f, "read") else "the file object"
    if not hasattr(f, "read"):
        with open(os.fspath(f), "rb") as handle:
            data = handle.read()
    else:
        data = f.read()
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, *_CORRUPTED) as e:
        # NB: NumPy's message for a non-.npz file suggests allow_pickle, which fg.load
        # never sets: name the cause without that advice.
        reason = "pickled or not NumPy data" if "allow_pickle" in str(e) else str(e)
        raise ValueError(f"fg.load: {where} is not a valid fgrad checkpoint (not a readable "
                         f".npz archive: {reason})") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"fg.load: {where} is not a valid fgrad checkpoint (a single .npy "
                         "array, not an .npz archive)")
    reader = _Reader(archive, where)
    try:
        with archive:
            if MANIFEST not in archive.files:
                reader.fail("no manifest entry (was it written by fg.save?)")
            try:
                manifest = json.loads(archive[MANIFEST].tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                reader.fail(f"unreadable manifest ({e})")
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                reader.fail("the manifest does not describe an fgrad checkpoint")
            if manifest.get("version") != VERSION:
                reader.fail(f"unsupported checkpoint version {manifest.get('version')!r}")
            obj = reader.node(manifest.get("root"))
            extra = set(archive.files) - reader.used - {MANIFEST}
            if extra:
                reader.fail(f"entries not listed in the manifest: {sorted(extra)}")
            return obj
    except ValueError as e:
        if str(e).startswith("fg.load:"):
            raise
        raise ValueError(f"fg.load: {where} is not a valid fgrad checkpoint ({e})") from e
    except (KeyError, TypeError, *_CORRUPTED) as e:  # NB: RecursionError is a RuntimeError
        raise ValueError(f"fg.load: {where} is not a valid fgrad checkpoint "
                         f"({type(e).__name__}: {e})") from e
