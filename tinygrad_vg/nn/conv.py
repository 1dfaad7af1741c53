"""Convolution, pooling and 2-D batch normalization layers with torch.nn's names, shapes,
init and state-dict keys, so that a torch state dict converted to numpy loads directly.

Shapes: Conv2d x (N, C, H, W) -> (N, OC, OH, OW), weight (OC, C/groups, KH, KW);
Conv1d x (N, C, L) -> (N, OC, OL), weight (OC, C/groups, K); bias (OC,).
Init as torch's: weight kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))
with fan_in = C/groups * KH * KW, and bias from the same range.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .linear import check_dtype
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


def _positive(layer: str, name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def _tuple(layer: str, name: str, value: Any, ndim: int, minimum: int) -> tuple:
    """An int or `ndim` ints, each >= minimum, as a tuple (torch's _pair/_single)."""
    values = (value,) * ndim if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if (not isinstance(values, (tuple, list)) or len(values) != ndim
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in values)):
        raise ValueError(f"{layer}: {name} must be an int >= {minimum} or {ndim} such ints; got {value!r}")
    return tuple(int(v) for v in values)


def _as_input(layer: str, x: Any, ndim: int, channels: int, dtype: Any) -> Tensor:
    """x as a Tensor of shape (N, channels, *spatial) with `ndim` spatial axes and the layer's dtype."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    letters = {1: "(N, C, L)", 2: "(N, C, H, W)"}[ndim]
    if x.ndim != ndim + 2 or x.shape[1] != channels:
        raise ValueError(f"{layer} expects input of shape {letters} with C = {channels}; got shape {x.shape}")
    if dtype is not None and x.data.dtype != dtype:
        check_dtype(layer, x, dtype)
    return x


class _ConvNd(Module):
    ndim = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        name, n = type(self).__name__, self.ndim
        self.in_channels = _positive(name, "in_channels", in_channels)
        self.out_channels = _positive(name, "out_channels", out_channels)
        self.groups = _positive(name, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode {padding_mode!r} is not supported; accepted: 'zeros'")
        self.padding_mode = padding_mode
        self.kernel_size = _tuple(name, "kernel_size", kernel_size, n, 1)
        self.stride = _tuple(name, "stride", stride, n, 1)
        self.padding = _tuple(name, "padding", padding, n, 0)
        self.dilation = _tuple(name, "dilation", dilation, n, 1)
        rng = init._rng(rng)
        fan_in = (in_channels // groups) * int(np.prod(self.kernel_size))
        self.weight = Parameter(np.empty((out_channels, in_channels // groups, *self.kernel_size), dtype=dtype))
        init.standard_(self.weight, fan_in=fan_in, rng=rng)   # = kaiming_uniform_(a=sqrt(5)), torch's default
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
            init.standard_(self.bias, fan_in=fan_in, rng=rng)
        else:
            self.bias = None

    def forward(self, x: Any) -> Tensor:
        x = _as_input(type(self).__name__, x, self.ndim, self.in_channels, self.weight.data.dtype)
        conv = F.conv2d if self.ndim == 2 else F.conv1d
        return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        text += f", stride={self.stride}"
        if any(self.padding):
            text += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """y = conv2d(x, weight, bias) as torch.nn.Conv2d (cross-correlation; keys weight, bias)."""
    ndim = 2


class Conv1d(_ConvNd):
    """y = conv1d(x, weight, bias) as torch.nn.Conv1d (keys weight, bias)."""
    ndim = 1


class BatchNorm2d(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias per channel of (N, C, H, W) input, as
    torch.nn.BatchNorm2d: training uses the batch's mean and biased variance over N, H, W and
    updates running_mean/running_var with momentum (the unbiased variance; momentum=None: a
    cumulative average), eval uses the running statistics. Keys: weight, bias, running_mean,
    running_var, num_batches_tracked."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_features = _positive("BatchNorm2d", "num_features", num_features)
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm2d: momentum must be in [0, 1] or None; got {momentum!r}")
        self.eps, self.momentum, self.affine, self.track_running_stats = eps, momentum, affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def _dtype(self) -> Any:
        if self.affine:
            return self.weight.data.dtype
        return self.running_mean.dtype if self.track_running_stats else None

    def forward(self, x: Any) -> Tensor:
        x = _as_input("BatchNorm2d", x, 2, self.num_features, self._dtype())
        training = self.training or not self.track_running_stats
        momentum = self.momentum
        running = (None, None)
        if self.track_running_stats:
            running = (self.running_mean, self.running_var)
            if self.training:
                self.register_buffer("num_batches_tracked", self.num_batches_tracked + 1)
                if momentum is None:
                    momentum = 1.0 / float(self.num_batches_tracked)
            if not self.running_mean.flags.writeable:   # e.g. an array loaded read-only: updated in place below
                self.register_buffer("running_mean", self.running_mean.copy())
                self.register_buffer("running_var", self.running_var.copy())
                running = (self.running_mean, self.running_var)
        if training and not self.training:   # eval without running statistics: batch statistics, no update
            running = (None, None)
        return F.batch_norm(x, *running, self.weight if self.affine else None, self.bias if self.affine else None,
                            training=training, momentum=momentum if momentum is not None else 0.0, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class _Pool2d(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _tuple(name, "kernel_size", kernel_size, 2, 1)
        self.stride = self.kernel_size if stride is None else _tuple(name, "stride", stride, 2, 1)
        self.padding = _tuple(name, "padding", padding, 2, 0)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name}: padding {self.padding} must be at most half the kernel size {self.kernel_size}")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over kernel_size windows of (N, C, H, W) input, as torch.nn.MaxPool2d (stride defaults to
    kernel_size; dilation 1, ceil_mode False)."""

    def forward(self, x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over kernel_size windows, as torch.nn.AvgPool2d (count_include_pad=True, ceil_mode=False)."""

    def forward(self, x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Mean over torch's adaptive windows to an (N, C, *output_size) output, as torch.nn.AdaptiveAvgPool2d
    (output_size 1: global average pooling)."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = _tuple("AdaptiveAvgPool2d", "output_size", output_size, 2, 1)

    def forward(self, x: Any) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
