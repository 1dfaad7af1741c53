"""io.py: tg.save / tg.load round trips, the documented format, atomic writes under a
full disk or an interrupt, and clear errors for files that are not whole. The one-line
messages a user sees for each fault are checked with the rest in test_reliability.py."""
import json
import math
import os
import resource
import signal
import zipfile

import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import nn
from tinygrad_vg.io import MANIFEST, atomic_write


def _nested():
    rng = np.random.default_rng(5)
    return {
        "weights": {"w": rng.normal(size=(3, 4)), "b32": rng.normal(size=4).astype(np.float32)},
        "t": tg.Tensor(rng.normal(size=(2, 2)), requires_grad=True),
        "frozen": tg.Tensor(np.arange(3.0)),
        0: [1, -2**100, 0.1, -0.0, math.inf, math.nan, "text", None, True, (False, "x")],
        "scalars": (np.float32(1.5), np.int64(-7), np.bool_(True)),
        "empty": np.zeros((0, 3)),
        "strided": rng.normal(size=(6, 6))[::2, 1::3],
        "ints": np.arange(6, dtype=np.int16).reshape(2, 3),
    }


def _same(a, b):
    """Equal in value, type and dtype, bit for bit for floats (nan and -0.0 included)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, tg.Tensor):
        assert a.requires_grad == b.requires_grad
        _same(a.data, b.data)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    elif isinstance(a, float):
        assert a.hex() == b.hex() or (math.isnan(a) and math.isnan(b))
    else:
        assert a == b


def test_round_trip_of_nested_containers_is_exact(tmp_path):
    obj = _nested()
    tg.save(obj, tmp_path / "ckpt.npz")
    _same(obj, tg.load(tmp_path / "ckpt.npz"))
    _same(obj["weights"]["w"], tg.load(str(tmp_path / "ckpt.npz"))["weights"]["w"])   # str paths too


def test_a_single_tensor_and_a_module_state_dict(tmp_path):
    model = nn.deep_mlp("highway", 5, 3, "tanh", norm="batch", dtype=np.float64, rng=0)
    tg.save(model.state_dict(), tmp_path / "model")     # used as given: no ".npz" appended
    assert sorted(os.listdir(tmp_path)) == ["model"]
    fresh = nn.deep_mlp("highway", 5, 3, "tanh", norm="batch", dtype=np.float64, rng=1)
    fresh.load_state_dict(tg.load(tmp_path / "model"))
    _same(model.state_dict(), fresh.state_dict())
    t = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    tg.save(t, tmp_path / "t.npz")
    _same(t, tg.load(tmp_path / "t.npz"))


def test_the_format_is_a_plain_npz_with_a_json_manifest(tmp_path):
    tg.save({"a": np.arange(3.0), "n": 2, "pair": (0.5, [np.ones(2)])}, tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz", allow_pickle=False) as archive:
        manifest = json.loads(archive[MANIFEST].tobytes())
        assert manifest["format"] == "tinygrad_vg.save" and manifest["version"] == 1
        root = manifest["root"]["dict"]
        assert root[0][0] == "a" and root[1] == ["n", 2]
        assert root[2][1] == {"tuple": [{"float": (0.5).hex()}, {"list": [{"array": "a1"}]}]}
        np.testing.assert_array_equal(archive[root[0][1]["array"]], np.arange(3.0))


def test_a_plain_npz_loads_as_a_dict_of_arrays(tmp_path):
    np.savez(tmp_path / "old.npz", w=np.eye(2), b=np.zeros(2))
    loaded = tg.load(tmp_path / "old.npz")
    assert sorted(loaded) == ["b", "w"] and np.array_equal(loaded["w"], np.eye(2))


@pytest.mark.parametrize("bad, where", [
    ({"m": nn.Linear(2, 2)}, "obj['m'] is a Linear"),
    ({"x": [np.array([{}], dtype=object)]}, "obj['x'][0] is an array of dtype object"),
    ({"f": len}, "obj['f'] is a builtin_function_or_method"),
    ({"s": {1, 2}}, "obj['s'] is a set"),
    ({(1, 2): 3}, "obj has a key (1, 2) of type tuple"),
])
def test_what_cannot_be_saved_is_named_and_nothing_is_written(tmp_path, bad, where):
    path = tmp_path / "ckpt.npz"
    tg.save({"old": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError) as info:
        tg.save(bad, path)
    assert where in str(info.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


def test_a_module_gets_a_hint_to_save_its_state_dict(tmp_path):
    with pytest.raises(TypeError, match=r"save its state_dict\(\)"):
        tg.save(nn.Linear(2, 2), tmp_path / "m.npz")
    with pytest.raises(ValueError, match="contains itself"):
        loop = []
        loop.append(loop)
        tg.save(loop, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


# ----- atomic writes -----------------------------------------------------------------
@pytest.fixture
def file_size_limit():
    """Set a file-size limit (the soft one; the hard one stays) as a full disk would: a
    write past it fails with EFBIG instead of killing the process by SIGXFSZ."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def limit(nbytes):
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    yield limit
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, old_handler)


def test_a_full_disk_leaves_the_previous_checkpoint_whole(tmp_path, file_size_limit):
    path = tmp_path / "ckpt.npz"
    old = {"w": np.arange(100.0)}
    tg.save(old, path)
    file_size_limit(64 * 1024)
    with pytest.raises(OSError) as info:
        tg.save({"w": np.zeros(100_000)}, path)    # 800 kB past a 64 kB limit
    assert info.value.errno == 27                  # EFBIG, what the kernel says
    _same(old, tg.load(path))
    assert os.listdir(tmp_path) == ["ckpt.npz"]    # no temporary file left behind


@pytest.mark.parametrize("step", ["fsync", "replace"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_an_interrupt_before_the_rename_leaves_the_old_file(tmp_path, monkeypatch, step, error):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(4.0)}, path)
    before = path.read_bytes()

    def boom(*args):
        raise error(5, "Input/output error") if error is OSError else error()
    monkeypatch.setattr(os, step, boom)
    with pytest.raises(error):
        tg.save({"w": np.arange(400.0)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


def test_atomic_write_keeps_the_old_files_permissions(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    with atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and (os.stat(path).st_mode & 0o777) == 0o640
    with atomic_write(tmp_path / "fresh.txt", "w") as f:   # a new file: not mkstemp's 0o600
        f.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "fresh.txt").st_mode & 0o777 == 0o666 & ~mask


# ----- damaged files -------------------------------------------------------------------
def _saved(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(1000.0), "b": np.ones(10)}, path)
    return path, path.read_bytes()


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_every_truncation_is_refused_with_the_file_name(tmp_path, keep):
    path, data = _saved(tmp_path)
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError) as info:
        tg.load(path)
    assert str(path) in str(info.value) and "truncated or corrupt" in str(info.value)


def test_a_flipped_byte_inside_an_array_fails_its_checksum(tmp_path):
    path, data = _saved(tmp_path)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("a0.npy")
    spot = info.header_offset + 30 + len(info.filename) + len(info.extra) + 400   # inside the data
    damaged = bytearray(data)
    damaged[spot] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=r"truncated or corrupt .npz archive \(Bad CRC-32"):
        tg.load(path)


def test_a_pickle_inside_an_npz_is_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, code=np.array([object()], dtype=object))   # numpy pickles object arrays
    with pytest.raises(ValueError, match="pickled objects, which are never loaded"):
        tg.load(path)


def test_a_manifest_of_another_format_or_a_newer_version_is_refused(tmp_path):
    for manifest, message in [({"format": "other", "version": 1, "root": None}, "does not name the format"),
                              ({"format": "tinygrad_vg.save", "version": 99, "root": None}, "version 99"),
                              ({"format": "tinygrad_vg.save", "version": 1, "root": {"array": "a7"}},
                               "names an array 'a7'")]:
        raw = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
        np.savez(tmp_path / "m.npz", **{MANIFEST: raw})
        with pytest.raises(ValueError, match=message):
            tg.load(tmp_path / "m.npz")
