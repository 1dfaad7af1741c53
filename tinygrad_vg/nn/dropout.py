"""Dropout and Flatten, with torch.nn's names, arguments and reprs."""
from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .init import _rng
from .module import Module

__all__ = ["Dropout", "Flatten"]


class Dropout(Module):
    """Inverted dropout (torch.nn.Dropout): in training mode each element is zeroed with
    probability p and the others are scaled by 1 / (1 - p), so eval mode (`model.eval()`)
    is the identity. rng: a numpy Generator, an int seed or None (fresh entropy), as
    nn.init takes it; the module keeps drawing from it, so a seed makes the masks of a
    whole run reproducible."""

    def __init__(self, p: float = 0.5, inplace: bool = False, rng: Any = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1]; got {p!r}")
        if inplace:   # the engine refuses in-place changes to arrays a graph may need (locking.py)
            raise ValueError("Dropout: inplace=True is not supported; leave it False (the result is a new tensor)")
        self.p = float(p)
        self.rng = _rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"


class Flatten(Module):
    """Merge the axes start_dim..end_dim into one (torch.nn.Flatten: the batch axis 0 is kept
    by default)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
