"""Linear layer and the normalization layers, with torch.nn's names, shapes and equations.
Shapes: x (N, D) or (..., D)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "BatchNorm1d", "LayerNorm"]


def check_features(layer: str, x: Any, expected: int, accepted_ndim: tuple = (1, 2, 3, 4),
                   dtype: Any = None) -> Tensor:
    """x as a Tensor whose last axis has `expected` features (and of the layer's parameter
    dtype, when given), or a ValueError / TypeError saying what was wrong."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if x.ndim not in accepted_ndim or x.shape[-1] != expected:
        raise ValueError(f"{layer} expects input of shape (..., {expected}) with {accepted_ndim} "
                         f"dimension(s); got shape {x.shape}")
    if dtype is not None and x.data.dtype != dtype:
        check_dtype(layer, x, dtype)
    return x


def check_dtype(layer: str, x: Tensor, dtype: Any, what: str = "input") -> None:
    """A TypeError unless x has the layer's parameter dtype (as torch: no silent promotion of
    a float32 layer to float64, nor rounding of float64 input to float32)."""
    if x.data.dtype != dtype:
        raise TypeError(f"{layer}: {what} is {x.data.dtype} but the parameters are {np.dtype(dtype)}; "
                        f"convert one of them (e.g. x.astype(np.{np.dtype(dtype)}) or layer.to(np.{x.data.dtype}))")


class Linear(Module):
    """y = x W^T + b, W of shape (out_features, in_features), as torch.nn.Linear.
    Default init is torch's: W and b ~ U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = np.float32,
                 rng: Any = None, init_name: str = "standard", activation: str = "tanh",
                 init_scale: float = 1.0) -> None:
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Linear: {name} must be a positive int, got {n!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = init._rng(rng)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        init.initialize(self.weight, init_name, rng=rng, activation=activation, scale=init_scale)
        if bias:
            self.bias = Parameter(np.zeros(out_features, dtype=dtype))
            if init_name == "standard":
                init.standard_(self.bias, fan_in=in_features, rng=rng)
        else:
            self.bias = None

    def forward(self, x: Any) -> Tensor:
        x = check_features("Linear", x, self.in_features, dtype=self.weight.data.dtype)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class BatchNorm1d(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the batch axis of (N, D) input.
    Training: batch statistics (biased var for normalizing), running stats updated with
    momentum using the unbiased var, as torch. Eval: running statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x: Any) -> Tensor:
        x = check_features("BatchNorm1d", x, self.num_features, accepted_ndim=(2,), dtype=self._dtype())
        if self.training or not self.track_running_stats:
            if x.shape[0] < 2 and self.training:
                raise ValueError(f"BatchNorm1d in training mode needs more than 1 sample per batch; "
                                 f"got input of shape {x.shape}")
            mean = x.mean(axis=0, keepdims=True)
            var = x.var(axis=0, keepdims=True)
            if self.training and self.track_running_stats:
                n = x.shape[0]
                m = self.momentum
                self.register_buffer("running_mean", ((1 - m) * self.running_mean + m * mean.data[0]).astype(self.running_mean.dtype))
                unbiased = var.data[0] * n / (n - 1)
                self.register_buffer("running_var", ((1 - m) * self.running_var + m * unbiased).astype(self.running_var.dtype))
                self.register_buffer("num_batches_tracked", self.num_batches_tracked + 1)
            y = (x - mean) / (var + self.eps).sqrt()
        else:
            y = (x - self.running_mean) / np.sqrt(self.running_var + self.eps).astype(x.dtype)
        if self.affine:
            y = y * self.weight + self.bias
        return y

    def _dtype(self) -> Any:
        """the dtype of the layer's parameters or running statistics (None if it has neither)"""
        if self.affine:
            return self.weight.data.dtype
        return self.running_mean.dtype if self.track_running_stats else None

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (normalized_shape = D)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, elementwise_affine: bool = True,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self.normalized_shape, self.eps = int(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(normalized_shape, dtype=dtype))
            self.bias = Parameter(np.zeros(normalized_shape, dtype=dtype))

    def forward(self, x: Any) -> Tensor:
        x = check_features("LayerNorm", x, self.normalized_shape,
                           dtype=self.weight.data.dtype if self.elementwise_affine else None)
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        y = (x - mean) / (var + self.eps).sqrt()
        if self.elementwise_affine:
            y = y * self.weight + self.bias
        return y

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"
