"""Memory locking in numpy: the flag flips and lock counts of tinygrad_vg/locking.py.

The twin of csrc/memory.pyx: same names, signatures and results.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

_LOCKING_MUTEX = threading.RLock()   # lock_arrays/release_arrays: backward may run in threads


def lock_arrays(arrays: Any, who: tuple, held: dict) -> list:
    """Memory locking (locking.py), in one call per recorded node: lock each array and
    each array it is a view of, counting the locks in `held` (id -> entry [array,
    count, who, views waiting for it]); arrays read-only already and not in `held` are
    left alone. Returns the entries it counted, bases before their views (numpy makes a
    view writeable only after its base). The compiled kernel is atomic under the GIL;
    this twin takes a re-entrant lock (a node dropped by the garbage collector during a
    call releases its arrays from within it)."""
    with _LOCKING_MUTEX:
        chain = []
        for a in arrays:
            while isinstance(a, np.ndarray):   # the array, then what it is a view of
                chain.append(a)
                a = a.base
        locked = []
        for a in reversed(chain):
            entry = held.get(id(a))
            if entry is not None:
                entry[1] += 1
            elif a.flags.writeable:
                a.flags.writeable = False
                entry = held[id(a)] = [a, 1, who, None]
            else:
                continue
            locked.append(entry)
        return locked


def release_arrays(entries: list, held: dict) -> None:
    """Undo lock_arrays (given what it returned): count each lock down; at zero the array
    is writeable again, or, if an array it is a view of is still locked, once that one is
    released."""
    with _LOCKING_MUTEX:
        for entry in entries:
            entry[1] -= 1
            if not entry[1]:
                del held[id(entry[0])]
                _reopen(entry[0], entry[3], held)


def _reopen(a: np.ndarray, waiting: list | None, held: dict) -> None:
    """a writeable again, then the views that waited for it; or a waits for a locked base."""
    base = a.base
    while isinstance(base, np.ndarray):
        entry = held.get(id(base))
        if entry is not None:
            entry[3] = (entry[3] or []) + [a]
            return
        if not base.flags.writeable:
            return   # read-only, and not by us: a stays read-only too
        base = base.base
    a.flags.writeable = True
    for view in waiting or ():
        _reopen(view, None, held)
