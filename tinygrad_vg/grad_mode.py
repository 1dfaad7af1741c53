"""Grad mode and anomaly mode: per-thread switches the engine reads when it records.

`no_grad()` / `enable_grad()` are context managers and decorators; `detect_anomaly()`
makes the engine check every forward result and every gradient for NaN/Inf and name
the op that first produced one.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import wraps
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["is_grad_enabled", "no_grad", "enable_grad", "detect_anomaly", "check_finite"]


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False
        self.reads = None   # while a checkpoint runs its function: what the ops read (checkpoint.py)


state = _ThreadState()


def is_grad_enabled() -> bool:
    """True when operations are being recorded on the tape (per thread)."""
    return state.grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode for the current thread."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(state.grad_enabled)
        state.grad_enabled = self.enabled

    def __exit__(self, *exc: Any) -> None:
        state.grad_enabled = self._previous.pop()

    def __call__(self, fn: Callable) -> Callable:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        return wrapper


def no_grad() -> _GradMode:
    """Stop recording: `with tg.no_grad(): ...` or `@tg.no_grad()`. Thread-local."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Record again inside a `no_grad` region."""
    return _GradMode(True)


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise FloatingPointError naming the first op whose forward or backward makes NaN/Inf."""
    previous = state.anomaly
    state.anomaly = True
    try:
        yield
    finally:
        state.anomaly = previous


def check_finite(array: np.ndarray, what: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise FloatingPointError(f"anomaly: {what} produced NaN or Inf")
