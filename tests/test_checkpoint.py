"""fg.save / fg.load: .npz checkpoints with a JSON manifest, no pickle, atomic writes,
clear errors for damaged files."""

import io
import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import fgrad as fg
from fgrad import nn, optim
from fgrad._src import checkpoint


def make_model():
    fg.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_model_state_dict_round_trip(tmp_path):
    model = make_model()
    path = tmp_path / "model.pt"
    fg.save(model.state_dict(), path)
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # exact name, no temp files left
    loaded = fg.load(path)
    assert type(loaded) is OrderedDict
    assert list(loaded) == list(model.state_dict())
    for key, value in model.state_dict().items():
        got = loaded[key]
        assert type(got) is fg.Tensor and not got.requires_grad
        assert got.dtype == value.dtype and got.shape == value.shape
        assert np.array_equal(got.numpy(), value.numpy())
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    assert repr(other.load_state_dict(loaded)) == "<All keys matched successfully>"
    x = fg.randn(2, 4)
    with fg.no_grad():
        assert np.array_equal(other(x).numpy(), model(x).numpy())


def test_training_resumes_identically_from_a_checkpoint(tmp_path):
    x = fg.randn(16, 4)
    y = fg.tensor(np.arange(16) % 3)

    def train_steps(model, opt, n):
        for _ in range(n):
            loss = nn.CrossEntropyLoss()(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    model = make_model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    train_steps(model, opt, 3)
    path = tmp_path / "ckpt.pt"
    fg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)
    train_steps(model, opt, 2)

    ckpt = fg.load(path)
    assert ckpt["epoch"] == 3 and sorted(ckpt["optimizer"]["state"]) == [0, 1, 2, 3]
    assert ckpt["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    resumed = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    resumed.load_state_dict(ckpt["model"])
    opt2 = optim.Adam(resumed.parameters(), lr=0.5)
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01
    train_steps(resumed, opt2, 2)
    for p, q in zip(model.parameters(), resumed.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())


def test_nested_values_keys_and_escaping(tmp_path):
    obj = {
        "a/b": fg.ones(2),
        "a~1b": fg.zeros(2),
        1: np.arange(3),
        "1": np.float32(2.5),
        None: [1, 2.5, True, None, "text", (3, 4)],
        2.5: {"inner": {"deep": fg.tensor([1, 2])}},
        "floats": [math.inf, -math.inf, 1e-320, 0.1],
        "big": 2 ** 80,
        "f64": fg.tensor([1.0, 2.0], dtype=fg.float64),
        "param": nn.Parameter(fg.ones(1)),
        "empty": np.zeros((0, 3), np.float32),
        "flag": np.array([True, False]),
    }
    path = tmp_path / "nested.ckpt"
    fg.save(obj, path)
    got = fg.load(path)
    assert list(got) == list(obj)
    assert np.array_equal(got["a/b"].numpy(), [1.0, 1.0])
    assert np.array_equal(got["a~1b"].numpy(), [0.0, 0.0])
    assert type(got[1]) is np.ndarray and got[1].tolist() == [0, 1, 2]
    assert type(got["1"]) is np.float32 and got["1"] == 2.5
    assert got[None] == [1, 2.5, True, None, "text", (3, 4)]
    assert type(got[None][2]) is bool and type(got[None][5]) is tuple
    assert got[2.5]["inner"]["deep"].dtype == fg.int64
    assert got["floats"] == [math.inf, -math.inf, 1e-320, 0.1]
    assert got["big"] == 2 ** 80 and got["f64"].dtype == fg.float64
    assert isinstance(got["param"], nn.Parameter) and got["param"].requires_grad
    assert got["empty"].shape == (0, 3) and got["flag"].dtype == np.bool_
    nan = fg.load(_saved(tmp_path, {"x": math.nan}))["x"]
    assert math.isnan(nan)


def _saved(tmp_path, obj, name="x.pt"):
    path = tmp_path / name
    fg.save(obj, path)
    return path


def test_file_is_plain_npz_without_pickles(tmp_path):
    path = _saved(tmp_path, {"model": make_model().state_dict(), "step": 7})
    with np.load(path, allow_pickle=False) as archive:
        names = sorted(archive.files)
        assert names == sorted(["__fgrad_manifest__", "model/0.weight", "model/0.bias",
                                "model/2.weight", "model/2.bias"])
        manifest = json.loads(archive["__fgrad_manifest__"].tobytes())
        assert manifest["format"] == "fgrad-checkpoint" and manifest["version"] == 1
        for name in names:
            assert archive[name].dtype != object
    with zipfile.ZipFile(path) as zf:
        assert all(n.endswith(".npy") for n in zf.namelist())


def test_file_objects(tmp_path):
    buffer = io.BytesIO()
    fg.save({"w": fg.ones(3)}, buffer)
    buffer.seek(0)
    assert fg.load(buffer)["w"].tolist() == [1.0, 1.0, 1.0]


def test_save_is_atomic(tmp_path, monkeypatch):
    path = _saved(tmp_path, {"w": fg.ones(3)}, "model.pt")
    before = path.read_bytes()

    def crash(file, payload):  # write part of a file, then die
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(checkpoint, "_write_npz", crash)
    with pytest.raises(KeyboardInterrupt):
        fg.save({"w": fg.zeros(3)}, path)
    assert path.read_bytes() == before  # the previous checkpoint is intact
    assert os.listdir(tmp_path) == ["model.pt"]  # and the temp file is gone
    monkeypatch.undo()
    assert fg.load(path)["w"].tolist() == [1.0, 1.0, 1.0]


def test_truncated_file_raises_value_error_naming_the_path(tmp_path):
    path = _saved(tmp_path, make_model().state_dict())
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 5, 0):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"fg.load: '.*cut{cut}.pt' is not a valid fgrad "
                                             "checkpoint"):
            fg.load(bad)


def test_flipped_byte_in_array_data_is_detected(tmp_path):
    path = _saved(tmp_path, {"w": fg.arange(100.0)})
    data = bytearray(path.read_bytes())
    start = data.index(b"w.npy") + 200  # inside the array payload
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a valid fgrad checkpoint"):
        fg.load(path)


def _rewrite(path, replace):
    """Rewrite the zip with some entries replaced (valid zip, valid CRCs)."""
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_tampered_arrays_and_manifest_are_detected(tmp_path):
    path = _saved(tmp_path, {"w": fg.ones(3)})
    _rewrite(path, {"w.npy": _npy(np.array([1.0, 1.0, 9.0], np.float32))})
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        fg.load(path)

    path = _saved(tmp_path, {"w": fg.ones(3)})
    _rewrite(path, {"w.npy": _npy(np.ones(4, np.float32))})
    with pytest.raises(ValueError, match="the manifest says"):
        fg.load(path)

    path = _saved(tmp_path, {"w": fg.ones(3)})
    _rewrite(path, {"extra.npy": _npy(np.ones(1))})
    with pytest.raises(ValueError, match="not listed in the manifest"):
        fg.load(path)

    path = _saved(tmp_path, {"w": fg.ones(3)})
    _rewrite(path, {"w.npy": _npy(np.array([{"evil": 1}], dtype=object))})
    with pytest.raises(ValueError, match="not a valid fgrad checkpoint"):
        fg.load(path)  # object arrays are never unpickled

    path = _saved(tmp_path, {"w": fg.ones(3)})
    _rewrite(path, {"__fgrad_manifest__.npy": _npy(np.frombuffer(b"{not json", np.uint8))})
    with pytest.raises(ValueError, match="unreadable manifest"):
        fg.load(path)


def test_damaged_zip_flags_and_npy_headers_raise_value_error(tmp_path):
    # Flipped bits that zipfile reads as "encrypted" or "version 10.9", and a damaged npy
    # header that NumPy's header parser chokes on (tokenize), all name the file.
    path = _saved(tmp_path, {"w": fg.ones(3)})
    intact = path.read_bytes()
    directory = intact.find(b"PK\x01\x02")
    for offset, bit in [(8, 0x01), (6, 0x40)]:
        damaged = bytearray(intact)
        damaged[directory + offset] ^= bit
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="not a valid fgrad checkpoint"):
            fg.load(path)
    path = _saved(tmp_path, {f"k{i}": i for i in range(300)})  # a manifest of ~8 kB
    damaged = bytearray(path.read_bytes())
    header = damaged.find(b"\x93NUMPY\x01\x00")
    damaged[header + 8] ^= 1
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="not a valid fgrad checkpoint"):
        fg.load(path)


def test_not_a_checkpoint(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(2))
    with pytest.raises(ValueError, match="no manifest entry"):
        fg.load(plain)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(2))
    with pytest.raises(ValueError, match="not an .npz archive"):
        fg.load(single)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(256))
    with pytest.raises(ValueError, match="junk.pt"):
        fg.load(junk)
    with pytest.raises(FileNotFoundError):
        fg.load(tmp_path / "missing.pt")
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.txt") as info:
        fg.load(text)
    assert "allow_pickle" not in str(info.value)  # NumPy's advice; fg.load has no such option


def test_save_names_a_missing_directory_or_a_directory_path(tmp_path):
    state = {"w": fg.ones(2)}
    missing = tmp_path / "no" / "such" / "model.pt"
    with pytest.raises(FileNotFoundError, match="directory .*no/such.* does not exist"):
        fg.save(state, missing)  # named the temporary file before
    with pytest.raises(IsADirectoryError, match="is a directory"):
        fg.save(state, tmp_path)
    assert os.listdir(tmp_path) == []  # nothing left behind


def test_unsupported_objects_are_rejected(tmp_path):
    with pytest.raises(TypeError, match=r"got Sequential at the root \(save "
                                        r"module.state_dict\(\)"):
        fg.save(make_model(), tmp_path / "m.pt")
    with pytest.raises(TypeError, match="got object at key path 'a'/0"):
        fg.save({"a": [object()]}, tmp_path / "m.pt")
    with pytest.raises(TypeError, match="dict keys must be"):
        fg.save({(1, 2): 3}, tmp_path / "m.pt")
    with pytest.raises(TypeError, match="dtype"):
        fg.save({"c": np.array([1 + 2j])}, tmp_path / "m.pt")
    assert os.listdir(tmp_path) == []  # nothing written


def test_map_location():
    buffer = io.BytesIO()
    fg.save({"w": fg.ones(1)}, buffer)
    buffer.seek(0)
    assert fg.load(buffer, map_location="cpu")["w"].item() == 1.0
    with pytest.raises(ValueError, match="CPU only"):
        fg.load(buffer, map_location="cuda:0")


def test_docstring_examples():
    import doctest

    result = doctest.testmod(checkpoint, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("keys", [
    ("allow_pickle",), ("file",), ("x", "x.npy"), ("\x00nul", "tab\there"), ("a/b", "a~1b"),
], ids=["np.savez keyword", "np.savez file", "npy suffix", "control characters",
        "escapes"])
def test_any_key_round_trips(tmp_path, keys):
    # entry names never reach np.savez as keywords, never end in ".npy" (np.load strips
    # it, so "x.npy" would also name x's member) and carry no control characters
    state = {key: fg.full((2,), float(i)) for i, key in enumerate(keys)}
    loaded = fg.load(_saved(tmp_path, state))
    assert list(loaded) == list(keys)
    for i, key in enumerate(keys):
        assert loaded[key].tolist() == [float(i), float(i)]


def test_checkpoint_permissions_follow_the_umask_or_the_old_file(tmp_path):
    umask = os.umask(0o022)
    try:
        path = _saved(tmp_path, {"w": fg.ones(1)}, "new.pt")
        assert os.stat(path).st_mode & 0o777 == 0o644  # not mkstemp's owner-only 0600
        os.chmod(path, 0o640)
        fg.save({"w": fg.zeros(1)}, path)
        assert os.stat(path).st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)


def test_unsaveable_and_hand_edited_structures_are_clear_errors(tmp_path):
    looped = []
    looped.append(looped)
    with pytest.raises(TypeError, match="nested too deeply or contains itself"):
        fg.save({"a": looped}, tmp_path / "loop.pt")
    assert not os.listdir(tmp_path)

    def edit_manifest(path, change):
        with zipfile.ZipFile(path) as zf:
            raw = np.load(io.BytesIO(zf.read("__fgrad_manifest__.npy")))
        manifest = json.loads(raw.tobytes())
        change(manifest)
        encoded = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
        _rewrite(path, {"__fgrad_manifest__.npy": _npy(encoded)})

    def mark_int_requires_grad(manifest):
        manifest["root"]["items"][0][2]["requires_grad"] = True

    path = _saved(tmp_path, {"i": fg.tensor([1, 2])}, "int.pt")
    edit_manifest(path, mark_int_requires_grad)
    with pytest.raises(ValueError, match="marked requires_grad"):
        fg.load(path)

    path = _saved(tmp_path, {"w": fg.ones(1)}, "deep.pt")
    deep = ('{"format": "fgrad-checkpoint", "version": 1, "root": '
            + '{"type": "list", "items": [' * 5000 + '{"type": "value", "value": null}'
            + "]}" * 5000 + "}")
    _rewrite(path, {"__fgrad_manifest__.npy": _npy(np.frombuffer(deep.encode(), np.uint8))})
    with pytest.raises(ValueError, match="not a valid fgrad checkpoint"):
        fg.load(path)


def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    real, link = tmp_path / "real.pt", tmp_path / "link.pt"
    fg.save({"a": 1}, real)
    os.symlink(real.name, link)
    fg.save({"a": 2}, link)  # replaced the link by a file; the target kept {"a": 1}
    assert os.path.islink(link) and fg.load(real) == {"a": 2}
    assert sorted(os.listdir(tmp_path)) == ["link.pt", "real.pt"]


def test_save_onto_a_loop_of_symlinks_is_an_error(tmp_path):
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(OSError, match="loop of symbolic links"):  # replaced the link
        fg.save({"a": 1}, tmp_path / "a")
    assert os.path.islink(tmp_path / "a")


def test_save_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    # Reading the umask means setting it for the whole process, so a thread creating a
    # file meanwhile would get the wrong permissions: a new checkpoint gets the umask's
    # from the kernel instead.
    old = os.umask(0o027)
    try:
        def umask(mask):
            raise AssertionError("fg.save set the process-wide umask")

        monkeypatch.setattr(os, "umask", umask)
        path = _saved(tmp_path, {"w": fg.ones(1)}, "new.pt")
        assert os.stat(path).st_mode & 0o777 == 0o640
        assert sorted(p.name for p in tmp_path.iterdir()) == ["new.pt"]  # no temp file left
    finally:
        monkeypatch.undo()
        os.umask(old)
