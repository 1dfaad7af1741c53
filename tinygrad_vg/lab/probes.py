"""Probes: record what flows through a model's blocks without touching its code.

A `Probe` puts a forward hook on each block. The hook keeps the block's output
h_l (and, for the first block, its input h_0) and registers a gradient hook on
it, so after `loss.backward()` the probe holds dL/dh_l for every l. Weight
gradients dL/dW_l are read from the blocks' parameters after backward. Nothing is
approximated: the numbers are the engine's own gradients.

To get dL/dh_0 (the gradient at the input) give the model an input tensor with
requires_grad=True; otherwise the graph never asks for it.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..tensor import Tensor

__all__ = ["Probe", "norm", "layer_summary", "log10_ratio", "fit_log10_slope"]


def norm(a: np.ndarray) -> float:
    """||a||_2 without underflow: np.linalg.norm squares each entry, so entries below
    ~1e-154 would give 0 long before the gradient itself underflows (~1e-308)."""
    a = np.asarray(a, dtype=np.float64)
    biggest = float(np.max(np.abs(a))) if a.size else 0.0
    if biggest == 0.0 or not math.isfinite(biggest):
        return biggest
    return biggest * float(np.linalg.norm(a / biggest))


def layer_summary(h: np.ndarray) -> dict[str, float]:
    """Statistics of one layer's activations (or gradients): norm, mean |.|, std, and the
    fraction of saturated (|h| > 0.99) and of exactly-zero entries (dead ReLU units)."""
    h = np.asarray(h, dtype=np.float64)
    return {
        "norm": norm(h),
        "mean_abs": float(np.mean(np.abs(h))) if h.size else 0.0,
        "std": float(np.std(h)) if h.size else 0.0,
        "saturated": float(np.mean(np.abs(h) > 0.99)) if h.size else 0.0,
        "zero": float(np.mean(h == 0)) if h.size else 0.0,
    }


def log10_ratio(first: float, last: float) -> float | None:
    """log10(first / last); None when a norm underflowed to 0 (or is not finite)."""
    if not (first > 0 and last > 0 and math.isfinite(first) and math.isfinite(last)):
        return None
    return math.log10(first) - math.log10(last)


def fit_log10_slope(norms: Sequence[float]) -> float | None:
    """Least-squares slope of log10(norm_l) against l (decades per layer, + means growing with l)."""
    values = np.asarray(norms, dtype=np.float64)
    ok = values > 0
    if ok.sum() < 2:
        return None
    l = np.arange(len(values))[ok]
    return float(np.polyfit(l, np.log10(values[ok]), 1)[0])


class Probe:
    """Record h_l, dL/dh_l and dL/dW_l for each block of a model.

        probe = Probe(model.blocks)          # any iterable of Modules
        loss = mse_loss(model(x), y); loss.backward()
        probe.grad_h_norm()                  # [||dL/dh_0||, ..., ||dL/dh_L||]
        probe.remove()
    """

    def __init__(self, blocks: Iterable[Any], record_input: bool = True) -> None:
        self.blocks = list(blocks)
        self.record_input = record_input
        self._handles = [b.register_forward_hook(self._hook(i)) for i, b in enumerate(self.blocks)]
        self.clear()

    def clear(self) -> None:
        """Forget what was recorded (call between forward passes)."""
        n = len(self.blocks) + 1
        self.h: list[np.ndarray | None] = [None] * n
        self.grad_h: list[np.ndarray | None] = [None] * n

    def _hook(self, index: int):
        def record(module: Any, inputs: tuple, output: Any) -> None:
            if index == 0 and self.record_input and inputs and isinstance(inputs[0], Tensor):
                self._watch(0, inputs[0])
            self._watch(index + 1, output)
        return record

    def _watch(self, slot: int, t: Tensor) -> None:
        self.h[slot] = t.data
        if t.requires_grad:
            def keep(grad: np.ndarray) -> None:
                self.grad_h[slot] = grad if self.grad_h[slot] is None else self.grad_h[slot] + grad
            t.register_hook(keep)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    # ----- measurements -----------------------------------------------------------
    def grad_h_norm(self) -> list[float | None]:
        """||dL/dh_l|| for l = 0 (the input) .. L; None where nothing was recorded."""
        return [None if g is None else norm(g) for g in self.grad_h]

    def grad_W_norm(self) -> list[float]:
        """||dL/dW_l||: the norm of the gradient of each block's weight matrices together."""
        out = []
        for block in self.blocks:
            norms = [norm(p.grad) for name, p in block.named_parameters()
                     if name.endswith("weight") and p.grad is not None and p.data.ndim == 2]
            out.append(norm(np.array(norms)))
        return out

    def summaries(self, of: str = "h") -> list[dict[str, float] | None]:
        """layer_summary of each recorded activation (of="h") or gradient (of="grad_h")."""
        arrays = self.h if of == "h" else self.grad_h
        return [None if a is None else layer_summary(a) for a in arrays]

    def log10_ratio_h(self) -> float | None:
        """The headline statistic log10(||dL/dh_1|| / ||dL/dh_L||): how many decades the
        gradient gains (+) or loses (-) between the last block's output and the first's."""
        norms = self.grad_h_norm()
        if norms[1] is None or norms[-1] is None:
            return None
        return log10_ratio(norms[1], norms[-1])
