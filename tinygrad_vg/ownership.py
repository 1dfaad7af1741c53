"""Whether a gradient array is held by nobody but the engine, so a leaf may keep it as
its .grad without a copy (a saving of one copy per parameter per backward, which is
measurable on small nets: 40 small copies are several percent of a W1 training step).

The engine is correct without this: `PRIVATE` is 0 where the reference count cannot be
trusted (no sys.getrefcount, or an unexpected count, e.g. under a tracer that pins frame
locals), and then every gradient is copied.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["refs", "PRIVATE"]


def refs(a: Any) -> int:
    return sys.getrefcount(a)


def _calibrate() -> int:
    """refs() of an array held by one local variable, called the way autograd.deliver calls it,
    if the count is trustworthy: one more holder must show as one more reference."""
    if not hasattr(sys, "getrefcount"):
        return 0
    a = np.empty(0)
    alone = refs(a)
    holder = [a]
    if refs(a) != alone + 1 or alone not in (2, 3, 4):   # 4 on CPython 3.9, 2 or 3 on 3.10-3.13
        return 0
    del holder
    return alone


# How many references an array has when only the caller's local variable holds it. A leaf's
# summed gradient with no more than that (not a view either, checked by Tensor._accumulate)
# is held by nobody else: not by another leaf (Add hands one array to both inputs), a node,
# a hook or a view, so the leaf may keep it.
PRIVATE = _calibrate()
