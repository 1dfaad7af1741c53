"""Activation modules, one per activation the engine has, and the name table that
deep_mlp and the lab use (`make_activation("tanh")`)."""
from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .module import Module

__all__ = ["Identity", "Tanh", "Sigmoid", "ReLU", "LeakyReLU", "ELU", "Softplus", "GELU",
           "ACTIVATIONS", "make_activation"]


class Identity(Module):
    """y = x (the "linear" activation of a deep linear net)."""
    def forward(self, x: Any) -> Any:
        return x


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)


class GELU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)


ACTIVATIONS = {"linear": Identity, "identity": Identity, "tanh": Tanh, "sigmoid": Sigmoid,
               "relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "softplus": Softplus, "gelu": GELU}


def make_activation(name: str) -> Module:
    """The activation module for a name in ACTIVATIONS."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; accepted: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


# ----- Maxout (Goodfellow et al. 2013) ---------------------------------------------------------------
# A block of its own (imports included) so that other activations can be added above it.
import numpy as np  # noqa: E402

from . import init as _init  # noqa: E402
from .linear import check_features  # noqa: E402
from .module import Parameter  # noqa: E402

__all__ += ["maxout", "MaxoutPool", "Maxout"]


def maxout(z: Any, pieces: int) -> Tensor:
    """y[..., i] = max_{j < k} z[..., i*k + j], k = pieces: the max over each group of k
    consecutive features, (..., out*k) -> (..., out).

    grad_z = grad_out at the winning piece of each group, 0 at the others. Ties go to the
    FIRST maximal piece (the lowest j), as torch.max(dim) picks its index; the whole gradient
    goes there (ops.Max would split it between ties). Built from engine ops: a Reshape to
    (..., out, k), a Where that keeps the winner (np.argmax, the first maximum) and a Sum
    over the k pieces."""
    if isinstance(pieces, bool) or not isinstance(pieces, (int, np.integer)) or pieces < 1:
        raise ValueError(f"maxout: pieces must be a positive int, got {pieces!r}")
    if not isinstance(z, Tensor):
        z = Tensor(z)
    if z.ndim < 1 or z.shape[-1] % pieces:
        raise ValueError(f"maxout: the last axis must hold out_features * pieces values (pieces={pieces}); "
                         f"got shape {z.shape}")
    grouped = z.reshape(*z.shape[:-1], z.shape[-1] // pieces, pieces)
    winner = np.argmax(grouped.data, axis=-1)[..., None] == np.arange(pieces)
    return F.where(winner, grouped, np.zeros((), z.dtype)).sum(axis=-1)


class MaxoutPool(Module):
    """The activation half of Maxout: y[..., i] = max_j z[..., i*k + j] over groups of
    k = pieces consecutive features (the function maxout); no parameters. deep_mlp's
    activation="maxout" puts it after a Linear of k times the width."""

    def __init__(self, pieces: int = 2) -> None:
        super().__init__()
        if isinstance(pieces, bool) or not isinstance(pieces, (int, np.integer)) or pieces < 1:
            raise ValueError(f"MaxoutPool: pieces must be a positive int, got {pieces!r}")
        self.pieces = int(pieces)

    def forward(self, z: Any) -> Tensor:
        return maxout(z, self.pieces)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


class Maxout(Module):
    """A maxout layer (Goodfellow et al. 2013): k = pieces linear pieces per output unit and
    the max over them,

        z = x W^T + b,  W (out_features * k, in_features), b (out_features * k,)
        y[..., i] = max_{j < k} z[..., i*k + j]                 x (..., in) -> y (..., out)

    Rows i*k .. i*k + k-1 of W are unit i's pieces. The gradient reaches only the winning
    piece of each unit (ties: the first maximal piece, as torch.max(dim)). torch has no Maxout;
    the parameters are named and initialised as torch.nn.Linear(in_features, out_features * k)'s
    (`weight`, `bias`, U(-1/sqrt(in), 1/sqrt(in)) with init_name="standard")."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, bias: bool = True,
                 dtype: Any = np.float32, rng: Any = None, init_name: str = "standard") -> None:
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features), ("pieces", pieces)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Maxout: {name} must be a positive int, got {n!r}")
        self.in_features, self.out_features, self.pieces = int(in_features), int(out_features), int(pieces)
        rows = self.out_features * self.pieces
        rng = _init._rng(rng)
        self.weight = Parameter(np.empty((rows, self.in_features), dtype=dtype))
        _init.initialize(self.weight, init_name, rng=rng, activation="linear")
        if bias:
            self.bias = Parameter(np.zeros(rows, dtype=dtype))
            if init_name == "standard":
                _init.standard_(self.bias, fan_in=self.in_features, rng=rng)
        else:
            self.bias = None

    def forward(self, x: Any) -> Tensor:
        x = check_features("Maxout", x, self.in_features, dtype=self.weight.data.dtype)
        return maxout(F.linear(x, self.weight, self.bias), self.pieces)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}, "
                f"bias={self.bias is not None}")
