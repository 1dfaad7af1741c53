"""Memory locking: an array that a recorded node needs for backward is read-only until
backward has used it or the graph is dropped (MyGrad's memory locking).

Why at the write and not at backward (PyTorch's version counter): numpy has no version
counter, and most in-place changes a user makes bypass the Tensor (`w.data *= 10`,
`y.data[:] = 0`, a numpy array shared with `Tensor(array)`). Only a read-only flag
stops those. So `Tensor._op` locks what a node saves (`Function.arrays_to_lock`: every
saved array, or the ones an op names in `saves`, and the arrays they are views of) and
keeps the `Lock` on the node; the lock is released when it is dropped: by the node's
`release()` after its backward, or with the node when a graph is dropped without
backward. A write in between raises: numpy's "assignment destination is read-only" for
a direct write, and a `LockedError` naming the tensor, the op and what to do for the
engine's own in-place updates (the optimizers' steps, `check_writeable`).

An array can be saved by many nodes (a weight used at every step of an RNN): each
lock counts, and the array is writeable again only when the last one is released.
Arrays that were read-only already (np.broadcast_to views, user arrays) are left alone.
The flag flips and counts run in one kernel call per node (kernels.lock_arrays and
release_arrays, compiled, with a numpy twin): numpy's own flag setter costs about a
microsecond per array, which on small nets is a measurable share of a training step.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from . import kernels

__all__ = ["Lock", "lock", "held", "locked_by", "check_writeable", "locked_view", "LockedArray", "LockedError"]

held: dict[int, list] = {}       # id(array) -> [array, count, (op, seq) of the first locker]


class LockedError(RuntimeError):
    """An in-place change to an array that a recorded node still needs for backward."""


class Lock:
    """The arrays one node locked. Dropping it releases them: the node drops it when it is
    released after its backward, or when the node itself is dropped with its graph."""

    __slots__ = ("arrays",)

    def __init__(self, arrays: list) -> None:
        self.arrays = arrays

    def __del__(self) -> None:
        try:
            kernels.release_arrays(self.arrays, held)
        except (AttributeError, TypeError, NameError):   # Python is shutting down: nothing to undo
            pass


def lock(arrays: Iterable[Any], who: tuple) -> Lock | None:
    """Make each array (and every array it is a view of) read-only; `who` is the node's
    (op name, sequence number), for error messages. Returns the Lock to drop, or None
    when nothing needed locking."""
    locked = kernels.lock_arrays(arrays, who, held)
    return Lock(locked) if locked else None


def locked_by(array: Any) -> str | None:
    """Which node locked this array (or an array it is a view of), or None if none did."""
    while isinstance(array, np.ndarray):   # a LockedArray too
        entry = held.get(id(array))
        if entry is not None:
            return "the {} node #{}".format(*entry[2])
        array = array.base
    return None


def check_writeable(array: np.ndarray, what: str) -> None:
    """Raise LockedError if a recorded node still needs `array` (`what`: who wants to write it)."""
    who = locked_by(array)
    if who is not None:
        raise LockedError(_message(what, who))


def _message(what: str, who: str) -> str:
    return (f"{what} would change in place an array that {who} saved for backward, which has not "
            "run yet (or ran with retain_graph=True, keeping the graph): its gradient would be computed "
            "with the new values. Call backward() first, or drop the graph (del the loss and outputs "
            "that lead to it) or compute it under tg.no_grad()")


class LockedArray(np.ndarray):
    """What Tensor.data returns while a recorded node needs the array: a read-only view whose
    in-place changes (`a[...] = v`, `a *= 2`, ufuncs with out=) raise LockedError naming the
    tensor and the op, where numpy's own error would name neither. Everything else is
    numpy's: reading, slicing (still a LockedArray), and results of arithmetic (plain arrays)."""

    what, who = "a write", "a recorded node"

    def __array_finalize__(self, obj: Any) -> None:
        self.what, self.who = getattr(obj, "what", self.what), getattr(obj, "who", self.who)

    def _refuse(self) -> None:
        raise LockedError(_message(self.what, self.who))

    def __setitem__(self, index: Any, value: Any) -> None:
        if not self.flags.writeable:
            self._refuse()
        np.ndarray.__setitem__(self.view(np.ndarray), index, value)

    def copy(self, order: str = "C") -> np.ndarray:   # a copy is a plain array: nothing needs it
        return self.view(np.ndarray).copy(order)

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.view(np.ndarray).astype(dtype, *args, **kwargs)

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, out: Any = None, **kwargs: Any) -> Any:
        if out is not None:
            for o in out:
                if isinstance(o, LockedArray) and not o.flags.writeable:
                    o._refuse()
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, LockedArray) else o for o in out)
        plain = tuple(i.view(np.ndarray) if isinstance(i, LockedArray) else i for i in inputs)
        result = getattr(ufunc, method)(*plain, **kwargs)
        return out[0] if out is not None and len(out) == 1 else result


def locked_view(array: np.ndarray, tensor: Any, who: str) -> LockedArray:
    """A read-only LockedArray view of a tensor's array that `who` locked (Tensor.data)."""
    view = array.view(LockedArray)
    view.flags.writeable = False
    name = repr(tensor.name) if tensor.name else f"of shape {array.shape}"
    view.what, view.who = f"writing into the .data of tensor {name}", who
    return view
