"""Convolution, pooling and batch normalization over channels, as torch.nn.functional.

Shapes: x (N, C, H, W) (conv1d: (N, C, L)), weight (OC, C/G, KH, KW) ((OC, C/G, K)),
y (N, OC, OH, OW); G groups; x_p the input zero-padded by `padding` on each side;
OH = (H + 2 p_h - d_h (KH - 1) - 1) // s_h + 1 (stride s, dilation d), OW likewise.
The kernels (kernels.conv2d_forward, ..., kernels/reference/conv.py for the equations)
do the work: im2col + one BLAS gemm per image and group.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function


class Conv2d(Function):
    """y = W cols + b, cols = im2col(x) ((C/G) KH KW, OH OW) per image and group, i.e. the cross-correlation
    y[n, o] = sum_{c, i, j} W[o, c, i, j] x_p[n, g(o) C/G + c, oh s_h + i d_h, ow s_w + j d_w] + b[o] (as torch);
    grad_x = col2im(W^T grad_y),  grad_W = sum_n grad_y cols^T,  grad_b = grad_y summed over n, oh, ow."""
    saves = ("x", "weight")
    kernel_names = ("conv2d_forward", "conv2d_backward")

    def forward(self, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        self.x, self.weight, self.params = x, weight, (stride, padding, dilation, groups)
        return getattr(kernels, self.kernel_names[0])(x, weight, bias, stride, padding, dilation, groups)

    def backward(self, grad_out):
        needs = self.needs_grad
        grad_x, grad_w, grad_b = getattr(kernels, self.kernel_names[1])(
            grad_out, self.x, self.weight, *self.params, need_x=needs[0], need_w=needs[1],
            need_b=len(needs) > 2 and needs[2])
        return (grad_x, grad_w, grad_b)[:len(needs)]   # no bias input: two gradients


class Conv1d(Conv2d):
    """y[n, o, t] = sum_{c, k} W[o, c, k] x_p[n, g(o) C/G + c, t s + k d] + b[o] (Conv2d over (N, C, 1, L));
    grad_x = col2im(W^T grad_y),  grad_W = sum_n grad_y cols^T,  grad_b = grad_y summed over n, t (as Conv2d).
    x (N, C, L), weight (OC, C/G, K), y (N, OC, OL)."""
    kernel_names = ("conv1d_forward", "conv1d_backward")


class MaxPool2d(Function):
    """y[n, c, oh, ow] = max of x over the window {oh s_h - p_h + i, ow s_w - p_w + j : i < KH, j < KW};
    grad_x = the sum, over the windows whose first maximum (the saved indices) is that element, of their grad_y.
    Padding never wins; overlapping windows add."""
    saves = ("indices",)

    def forward(self, x, kernel_size=2, stride=2, padding=0):
        y, self.indices = kernels.max_pool2d_forward(x, kernel_size, stride, padding)
        self.input_shape, self.params = x.shape, (kernel_size, stride, padding)
        return y

    def backward(self, grad_out):
        return (kernels.max_pool2d_backward(grad_out, self.indices, self.input_shape, *self.params),)


class AvgPool2d(Function):
    """y[n, c, oh, ow] = (1 / (KH KW)) sum of x_p over the window;  grad_x = the sum, over the windows
    holding that element, of grad_y / (KH KW). Zero padding is counted (torch's count_include_pad=True)."""
    saves = ()

    def forward(self, x, kernel_size=2, stride=2, padding=0):
        self.input_shape, self.params = x.shape, (kernel_size, stride, padding)
        return kernels.avg_pool2d_forward(x, kernel_size, stride, padding)

    def backward(self, grad_out):
        return (kernels.avg_pool2d_backward(grad_out, self.input_shape, *self.params),)


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows: output cell i averages rows floor(i size / out) to
    ceil((i + 1) size / out) - 1 (the windows overlap when out does not divide size)."""
    return [(i * size // out, -((-(i + 1) * size) // out)) for i in range(out)]


class AdaptiveAvgPool2d(Function):
    """y[n, c, a, b] = mean of x[n, c, rows(a), cols(b)] (torch's adaptive windows: adaptive_windows);
    grad_x = the sum, over the windows holding that element, of grad_y[a, b] / (window size)."""
    saves = ()

    def forward(self, x, output_size=(1, 1)):
        if x.ndim != 4:
            raise ValueError(f"adaptive_avg_pool2d: x must be 4-D (N, C, H, W); got shape {x.shape}")
        self.input_shape = x.shape
        self.rows = adaptive_windows(x.shape[2], output_size[0])
        self.cols = adaptive_windows(x.shape[3], output_size[1])
        if output_size == (1, 1):   # global average pooling: one reduction
            return x.mean(axis=(2, 3), keepdims=True)
        y = np.empty(x.shape[:2] + tuple(output_size), dtype=x.dtype)
        for a, (r0, r1) in enumerate(self.rows):
            for b, (c0, c1) in enumerate(self.cols):
                y[:, :, a, b] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        return y

    def backward(self, grad_out):
        grad_x = np.zeros(self.input_shape, dtype=grad_out.dtype)
        for a, (r0, r1) in enumerate(self.rows):
            for b, (c0, c1) in enumerate(self.cols):
                share = grad_out[:, :, a, b] / grad_out.dtype.type((r1 - r0) * (c1 - c0))
                grad_x[:, :, r0:r1, c0:c1] += share[:, :, None, None]
        return (grad_x,)


def _channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum of a * b over every axis but axis 1, without the product array"""
    shape = (a.shape[0], a.shape[1], -1)
    return np.einsum("ncm,ncm->c", a.reshape(shape), b.reshape(shape))


class BatchNorm(Function):
    """y = weight xhat + bias, xhat = (x - mean) / sqrt(var + eps) over every axis but the channel axis 1
    (x (N, C, ...); mean and biased var over the batch when training, else the given running statistics);
    grad_weight = sum grad_y xhat,  grad_bias = sum grad_y,  with g = grad_y weight:
    training: grad_x = (g - mean(g) - xhat mean(g xhat)) / sqrt(var + eps);  eval: grad_x = g / sqrt(var + eps).
    Training with running statistics updates them in place, as torch.nn.functional.batch_norm:
    r = (1 - momentum) r + momentum stat (the unbiased variance for running_var)."""
    saves = ("xhat", "inv_std", "weight")

    def forward(self, x, weight=None, bias=None, running_mean=None, running_var=None, training=True,
                momentum=0.1, eps=1e-5):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        if training:
            count = x.size // x.shape[1]
            if count < 2:
                raise ValueError(f"batch_norm in training mode needs more than 1 value per channel; got input "
                                 f"of shape {x.shape}")
            mean = x.mean(axis=axes)
            centered = x - mean.reshape(shape)
            var = np.mean(np.square(centered), axis=axes)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * var * (count / (count - 1))
        else:
            centered = x - running_mean.astype(x.dtype).reshape(shape)
            var = running_var.astype(x.dtype)
        self.training = training
        inv_std = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype)
        self.inv_std = inv_std.reshape(shape)
        xhat = centered
        xhat *= self.inv_std
        self.xhat, self.axes, self.affine = xhat, axes, weight is not None
        self.weight = weight
        if weight is None:
            return xhat.copy()
        return xhat * weight.reshape(shape) + bias.reshape(shape)

    def backward(self, grad_out):
        xhat, axes = self.xhat, self.axes
        shape = self.inv_std.shape
        needs = self.needs_grad
        g = grad_out if self.weight is None else grad_out * self.weight.reshape(shape)
        grad_x = grad_w = grad_b = None
        if needs[0]:
            if self.training:
                count = xhat.size // xhat.shape[1]
                mean_g = g.sum(axis=axes).reshape(shape) / count
                mean_gx = _channel_dot(g, xhat).reshape(shape) / count
                grad_x = (g - mean_g - xhat * mean_gx) * self.inv_std
            else:
                grad_x = g * self.inv_std
        if self.affine:
            if needs[1]:
                grad_w = _channel_dot(grad_out, xhat)
            if needs[2]:
                grad_b = grad_out.sum(axis=axes)
            return grad_x, grad_w, grad_b
        return (grad_x,)


__all__ = ["Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm", "adaptive_windows"]
