"""Saving and loading: tensors, state dicts (of modules and optimizers) and plain nested
containers of them, in files that are written atomically and that loading cannot run.

    tg.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "rng": rng.bit_generator.state, "step": 50}, "ckpt.npz")
    ckpt = tg.load("ckpt.npz")
    model.load_state_dict(ckpt["model"]); opt.load_state_dict(ckpt["optimizer"])

The format is an uncompressed numpy .npz (a zip of .npy files), readable without this
package by `np.load(path, allow_pickle=False)`:
- every array is one member, `a0`, `a1`, ... (numeric or bool dtypes only: no object
  arrays, so no pickle);
- the member `__tinygrad_vg__` is a uint8 array holding UTF-8 JSON,
  `{"format": "tinygrad_vg.save", "version": 1, "root": NODE}`, where NODE is
  null, true/false, an integer (any size) or a string as itself;
  `{"float": "0x1.99999999999ap-4"}` (float.hex, so every bit comes back);
  `{"array": "a0"}`, `{"scalar": "a0"}` (a numpy scalar, stored as a 0-d array),
  `{"tensor": "a0", "requires_grad": true}`;
  `{"list": [NODE, ...]}`, `{"tuple": [NODE, ...]}`, `{"dict": [[KEY, NODE], ...]}` with
  KEY a string or an integer (torch's optimizer state is keyed by parameter index).
A plain .npz without that member (from `np.savez`) loads as a dict of its arrays.

Design: a write goes to a temporary file in the target's directory, is flushed and
fsync'ed, and only then renamed over the target (os.replace, atomic on POSIX and
Windows); so a full disk, a Ctrl-C or a crash at any point leaves the old file or the
new one, never a truncated one. `atomic_write` is the one place that does this; the
CLI and the lab's report write every file through it. Loading reads every array before
returning, so a truncated or corrupt file fails inside `load`, with its name, and
nothing the caller holds has been touched.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import IO, Any, Iterator

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "atomic_write", "FORMAT", "VERSION"]

FORMAT = "tinygrad_vg.save"
VERSION = 1
MANIFEST = "__tinygrad_vg__"


# ----- atomic writes ---------------------------------------------------------------
def _file_mode(path: str) -> int:
    """The new file's permissions: the old file's if there is one, else 0o666 minus umask
    (mkstemp's 0o600 would make results unreadable to a group that could read the old)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on leaving the block without an
    exception it is flushed, fsync'ed and renamed over `path`. On any exception (a full
    disk, KeyboardInterrupt, an error of the caller's) the temporary file is removed and
    `path` is untouched. An OSError of the final steps names `path`, not the temporary."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise OSError(e.errno, e.strerror, target) from None
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            if hasattr(os, "fchmod"):   # not on Windows, where mkstemp's mode is not restrictive
                os.fchmod(f.fileno(), _file_mode(target))
        try:
            os.replace(tmp, target)
        except OSError as e:
            raise OSError(e.errno, e.strerror, target) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----- save --------------------------------------------------------------------------
def _where(trail: list) -> str:
    return "obj" + "".join(f"[{k!r}]" for k in trail)


class _Writer:
    """Walks an object into (manifest node, arrays)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._active: set[int] = set()

    def _array(self, array: np.ndarray, trail: list) -> str:
        if array.dtype.kind not in "biufc" or array.dtype.hasobject:
            raise TypeError(f"save: {_where(trail)} is an array of dtype {array.dtype}; only numeric and "
                            "bool arrays can be saved (no pickled objects)")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = array
        return key

    def node(self, obj: Any, trail: list) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int) and not isinstance(obj, bool):
            return int(obj)
        if isinstance(obj, float):
            return {"float": obj.hex()}
        if isinstance(obj, np.generic):
            return {"scalar": self._array(np.asarray(obj), trail)}
        if isinstance(obj, np.ndarray):
            return {"array": self._array(obj, trail)}
        if isinstance(obj, Tensor):
            return {"tensor": self._array(obj.data, trail), "requires_grad": bool(obj.requires_grad)}
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self._active:
                raise ValueError(f"save: {_where(trail)} contains itself")
            self._active.add(id(obj))
            try:
                if isinstance(obj, dict):
                    items = []
                    for k, v in obj.items():
                        if not isinstance(k, (str, int)) or isinstance(k, bool):
                            raise TypeError(f"save: {_where(trail)} has a key {k!r} of type {type(k).__name__}; "
                                            "keys must be strings or integers")
                        items.append([k, self.node(v, trail + [k])])
                    return {"dict": items}
                kind = "list" if isinstance(obj, list) else "tuple"
                return {kind: [self.node(v, trail + [i]) for i, v in enumerate(obj)]}
            finally:
                self._active.discard(id(obj))
        hint = ""
        if hasattr(obj, "state_dict"):
            hint = "; save its state_dict() and load it back with load_state_dict()"
        raise TypeError(f"save: {_where(trail)} is a {type(obj).__name__}, which cannot be saved without "
                        f"pickling code{hint}. Saved are tensors, numpy arrays and scalars, None, bool, int, "
                        "float, str, and dicts, lists and tuples of them")


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` (a Tensor, array, state dict, or nested dicts/lists/tuples of them and of
    plain scalars) to `path` atomically: the old file stays whole until the new one is
    complete on disk. The path is used as given (no ".npz" is appended). Raises TypeError
    naming the part of `obj` that cannot be saved before anything is written."""
    writer = _Writer()
    root = writer.node(obj, [])
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "root": root}, separators=(",", ":"))
    members = {MANIFEST: np.frombuffer(manifest.encode("utf-8"), dtype=np.uint8), **writer.arrays}
    with atomic_write(path, "wb") as f:
        np.savez(f, **members)


# ----- load --------------------------------------------------------------------------
class _Reader:
    def __init__(self, arrays: dict[str, np.ndarray], name: str) -> None:
        self.arrays, self.name = arrays, name

    def _get(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise ValueError(f"the manifest names an array {key!r} that the file does not hold")
        return self.arrays[key]

    def node(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if isinstance(node, dict) and len(node) >= 1:
            tag = next(iter(node))
            value = node[tag]
            if tag == "float" and isinstance(value, str):
                return float.fromhex(value)
            if tag == "array":
                return self._get(value)
            if tag == "scalar":
                return self._get(value)[()]
            if tag == "tensor":
                return Tensor(self._get(value), requires_grad=bool(node.get("requires_grad", False)))
            if tag in ("list", "tuple") and isinstance(value, list):
                items = [self.node(v) for v in value]
                return items if tag == "list" else tuple(items)
            if tag == "dict" and isinstance(value, list):
                out = {}
                for pair in value:
                    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))):
                        raise ValueError(f"a dict entry of the manifest is {pair!r}, not [key, value]")
                    out[pair[0]] = self.node(pair[1])
                return out
        raise ValueError(f"the manifest holds an entry it cannot read: {str(node)[:80]}")


def load(path: str | os.PathLike) -> Any:
    """Read what `save` wrote. Every array is read (and its checksum checked) before this
    returns; a missing file raises FileNotFoundError, and a truncated, corrupt or
    wrong-kind file a ValueError that names the file and what is wrong. A plain .npz
    without a tinygrad_vg manifest loads as a dict of its arrays. Pickled data is refused
    (allow_pickle=False), so loading a file never runs code."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(2, "No such file", name)
    if os.path.isdir(name):
        raise IsADirectoryError(21, "Is a directory, not a saved file", name)
    with open(name, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK":
        what = {b"\x93NUM": "a single .npy array", b"\x89PNG": "a PNG image"}.get(head, None)
        if what is None and head[:1] in (b"{", b"["):
            what = "a JSON file"
        described = f"it is {what}" if what else f"it starts with {head!r}, not a zip archive"
        if not head:
            described = "it is empty"
        raise ValueError(f"{name}: not a file written by tinygrad_vg.save (an .npz archive): {described}")
    try:
        with np.load(name, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except zipfile.BadZipFile as e:
        raise ValueError(f"{name}: truncated or corrupt .npz archive ({e})") from None
    except ValueError as e:
        if "pickle" in str(e):
            raise ValueError(f"{name}: holds pickled objects, which are never loaded (loading could run "
                             "code)") from None
        raise ValueError(f"{name}: corrupt .npz archive ({e})") from None
    except (EOFError, OSError, zipfile.LargeZipFile, KeyError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise
        raise ValueError(f"{name}: truncated or corrupt .npz archive ({type(e).__name__}: {e})") from None
    if MANIFEST not in arrays:
        return arrays
    raw = arrays.pop(MANIFEST)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"the manifest is a {raw.dtype} array of shape {raw.shape}, not bytes")
        manifest = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("the manifest does not name the format " + repr(FORMAT))
        version = manifest.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise ValueError(f"format version {version!r}; this tinygrad_vg reads versions up to {VERSION}")
        return _Reader(arrays, name).node(manifest.get("root"))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{name}: damaged tinygrad_vg manifest: {e}") from None
