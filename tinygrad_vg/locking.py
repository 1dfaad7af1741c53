"""Memory locking: an array that a recorded node needs for backward is read-only until
backward has used it or the graph is dropped (MyGrad's memory locking).

Why at the write and not at backward (PyTorch's version counter): numpy has no version
counter, and most in-place changes a user makes bypass the Tensor (`w.data *= 10`,
`y.data[:] = 0`, a numpy array shared with `Tensor(array)`). Only a read-only flag
stops those. So `Tensor._op` locks what a node saves (`Function.arrays_to_lock`: every
saved array, or the ones an op names, and the arrays they are views of), and the node's
`release()` (after its backward) or its garbage collection (a graph dropped without
backward) unlocks them. A write in between raises: numpy's "assignment destination is
read-only" for a direct write, and a `LockedError` naming the tensor, the op and what
to do for the engine's own in-place updates (the optimizers' steps, `check_writeable`).

An array can be saved by many nodes (a weight used at every step of an RNN): each
lock counts, and the array is writeable again only when the last one is released.
Arrays that were read-only already (np.broadcast_to views, user arrays) are left alone.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable

import numpy as np

__all__ = ["Lock", "lock", "held", "locked_by", "check_writeable", "LockedError"]

_held: dict[int, list] = {}      # id(array) -> [array, count, description of the first locker]
_mutex = threading.Lock()        # backward may run in several threads


class LockedError(RuntimeError):
    """An in-place change to an array that a recorded node still needs for backward."""


class Lock:
    """The arrays one node locked; released by release() or when the node is dropped."""

    __slots__ = ("arrays",)

    def __init__(self, arrays: list) -> None:
        self.arrays = arrays

    def release(self) -> None:
        arrays, self.arrays = self.arrays, ()
        if not arrays:
            return
        with _mutex:
            for a in arrays:   # bases before their views: numpy needs a writeable base first
                entry = _held[id(a)]
                entry[1] -= 1
                if not entry[1]:
                    del _held[id(a)]
                    try:
                        a.flags.writeable = True
                    except ValueError:   # its base is still locked by another node: stays read-only
                        pass

    __del__ = release


def lock(arrays: Iterable[np.ndarray], who: tuple) -> Lock:
    """Make each array (and every array it is a view of) read-only; `who` is the node's
    (op name, sequence number), for error messages. Returns the Lock to release."""
    chain = []
    for a in arrays:
        while type(a) is np.ndarray:   # the array, then what it is a view of
            chain.append(a)
            a = a.base
    locked = []
    with _mutex:
        for a in reversed(chain):   # bases first: a view's flag is set after its base's
            entry = _held.get(id(a))
            if entry is not None:
                entry[1] += 1
            elif a.flags.writeable:
                a.flags.writeable = False
                _held[id(a)] = [a, 1, who]
            else:
                continue   # read-only already, and not by us: nothing to undo later
            locked.append(a)
    return Lock(locked)


def held() -> bool:
    """Whether any array is locked now (cheap: callers check one by one only then)."""
    return bool(_held)


def locked_by(array: Any) -> str | None:
    """Which node locked this array (or an array it is a view of), or None if none did."""
    while type(array) is np.ndarray:
        entry = _held.get(id(array))
        if entry is not None:
            return "the {} node #{}".format(*entry[2])
        array = array.base
    return None


def check_writeable(array: np.ndarray, what: str) -> None:
    """Raise LockedError if a recorded node still needs `array` (`what`: who wants to write it)."""
    who = locked_by(array)
    if who is not None:
        raise LockedError(
            f"{what} would change in place an array that {who} saved for backward, which has not run "
            "yet: its gradient would be computed with the new values. Call backward() first, or drop "
            "the graph (del the loss and outputs) or compute it under tg.no_grad()")
