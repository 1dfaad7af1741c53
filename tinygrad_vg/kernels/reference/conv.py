"""The convolution and pooling kernels in numpy: conv1d/conv2d (stride, padding, dilation,
groups) as im2col + matmul, max_pool2d and avg_pool2d, forward and backward.

The twin of csrc/conv.pyx: same names, signatures, results and errors (the checks are
kernels/_checks.py's). Shapes: x (N, C, H, W), weight (OC, C/G, KH, KW), y (N, OC, OH, OW);
G groups, K = C/G * KH * KW, L = OH * OW. With x_p the zero-padded input:

    cols[n, c, i, j, oh, ow] = x_p[n, c, oh*s_h + i*d_h, ow*s_w + j*d_w]       (im2col)
    y[n, g] = W[g] (OC/G, K) @ cols[n, g] (K, L) + b                            (one gemm per image, group)
    grad_W[g] = sum_n grad_y[n, g] @ cols[n, g]^T,   grad_b = grad_y summed over n, oh, ow
    grad_cols[n, g] = W[g]^T @ grad_y[n, g];  grad_x = col2im(grad_cols): each column entry
    added back to the input position it was read from (in the order i, j, then oh, ow)

conv1d is conv2d over (N, C, 1, L). Pools over windows of kernel_size with stride and
padding (padding at most half the window): max keeps the flat index h * W + w of each
window's first maximum (NaN counts as the maximum, as in torch); avg divides the window
sum by KH * KW, the padding counted (torch's count_include_pad=True).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import _checks


def _padded(x: np.ndarray, padding: tuple, value: float = 0.0) -> np.ndarray:
    if not any(padding):
        return x
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(xp: np.ndarray, size: tuple, stride: tuple, dilation: tuple, out: tuple) -> np.ndarray:
    """A view (N, C, OH, OW, KH, KW) of the padded input: windows[n, c, oh, ow, i, j] =
    xp[n, c, oh*s_h + i*d_h, ow*s_w + j*d_w]."""
    span = ((size[0] - 1) * dilation[0] + 1, (size[1] - 1) * dilation[1] + 1)
    view = sliding_window_view(xp, span, axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]][:, :, :out[0], :out[1]]


def _im2col(x: np.ndarray, weight_shape: tuple, params: tuple, out: tuple) -> np.ndarray:
    """cols (N, G, K, L), C-ordered."""
    stride, padding, dilation, groups = params
    n, c = x.shape[:2]
    win = _windows(_padded(x, padding), weight_shape[2:], stride, dilation, out)
    cols = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3))   # (N, C, KH, KW, OH, OW)
    return cols.reshape(n, groups, (c // groups) * weight_shape[2] * weight_shape[3], out[0] * out[1])


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: Any = 1,
                   padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """y[n, o] = sum_{c, i, j} W[o, c, i, j] x_p[n, g(o) C/G + c, oh s_h + i d_h, ow s_w + j d_w] + b[o];
    x (N, C, H, W), weight (OC, C/G, KH, KW), bias (OC,) or None. A new C-ordered (N, OC, OH, OW) array."""
    x, weight, bias, params, out = _checks.conv_args("conv2d", x, weight, bias, stride, padding, dilation, groups)
    return _conv2d(x, weight, bias, params, out)


def _conv2d(x, weight, bias, params, out):
    groups = params[3]
    n, oc = x.shape[0], weight.shape[0]
    cols = _im2col(x, weight.shape, params, out)
    w = weight.reshape(groups, oc // groups, -1)
    y = np.matmul(w, cols)                                   # (N, G, OC/G, L)
    y = y.reshape(n, oc, out[0], out[1])
    if bias is not None:
        y += bias[:, None, None]
    return y


def conv2d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: Any = 1, padding: Any = 0,
                    dilation: Any = 1, groups: int = 1, need_x: bool = True, need_w: bool = True,
                    need_b: bool = True) -> tuple:
    """(grad_x, grad_weight, grad_bias) of conv2d_forward for the upstream grad_out
    (N, OC, OH, OW); each None unless asked for (need_*)."""
    grad_out, x, weight, params, out = _checks.conv_backward_args("conv2d", grad_out, x, weight, stride, padding,
                                                                  dilation, groups)
    return _conv2d_backward(grad_out, x, weight, params, out, need_x, need_w, need_b)


def _conv2d_backward(grad_out, x, weight, params, out, need_x, need_w, need_b):
    stride, padding, dilation, groups = params
    (n, c, h, w_), (oc, _, kh, kw) = x.shape, weight.shape
    g_out = grad_out.reshape(n, groups, oc // groups, out[0] * out[1])
    w = weight.reshape(groups, oc // groups, -1)
    grad_x = grad_w = grad_b = None
    if need_b:
        grad_b = grad_out.sum(axis=(0, 2, 3))
    if need_w:
        cols = _im2col(x, weight.shape, params, out)
        grad_w = np.zeros_like(w)
        for i in range(n):   # images in order, as the compiled twin accumulates them
            grad_w += g_out[i] @ cols[i].transpose(0, 2, 1)
        grad_w = grad_w.reshape(weight.shape)
    if need_x:
        grad_cols = (w.transpose(0, 2, 1) @ g_out).reshape(n, c, kh, kw, out[0], out[1])
        (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
        grad_xp = np.zeros((n, c, h + 2 * ph, w_ + 2 * pw), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                grad_xp[:, :, i * dh:i * dh + sh * (out[0] - 1) + 1:sh,
                        j * dw:j * dw + sw * (out[1] - 1) + 1:sw] += grad_cols[:, :, i, j]
        grad_x = np.ascontiguousarray(grad_xp[:, :, ph:ph + h, pw:pw + w_])
    return grad_x, grad_w, grad_b


def _as_2d(x, weight, stride, padding, dilation, params_1d):
    """The (N, C, 1, L) views and pairs that make a conv1d a conv2d."""
    stride, padding, dilation, groups = params_1d
    return (x[:, :, None, :], weight[:, :, None, :], ((1,) + stride, (0,) + padding, (1,) + dilation, groups))


def conv1d_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: Any = 1,
                   padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """y[n, o, t] = sum_{c, k} W[o, c, k] x_p[n, g(o) C/G + c, t s + k d] + b[o]; x (N, C, L),
    weight (OC, C/G, K), bias (OC,) or None: conv2d over (N, C, 1, L). A new (N, OC, OL) array."""
    x, weight, bias, params, out = _checks.conv_args("conv1d", x, weight, bias, stride, padding, dilation, groups,
                                                     ndim=1)
    x4, w4, params2 = _as_2d(x, weight, stride, padding, dilation, params)
    return _conv2d(x4, w4, bias, params2, (1,) + out)[:, :, 0, :]


def conv1d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: Any = 1, padding: Any = 0,
                    dilation: Any = 1, groups: int = 1, need_x: bool = True, need_w: bool = True,
                    need_b: bool = True) -> tuple:
    """(grad_x, grad_weight, grad_bias) of conv1d_forward; each None unless asked for."""
    grad_out, x, weight, params, out = _checks.conv_backward_args("conv1d", grad_out, x, weight, stride, padding,
                                                                  dilation, groups, ndim=1)
    x4, w4, params2 = _as_2d(x, weight, stride, padding, dilation, params)
    gx, gw, gb = _conv2d_backward(grad_out[:, :, None, :], x4, w4, params2, (1,) + out, need_x, need_w, need_b)
    return (None if gx is None else gx[:, :, 0, :], None if gw is None else gw[:, :, 0, :], gb)


def max_pool2d_forward(x: np.ndarray, kernel_size: Any, stride: Any, padding: Any = 0) -> tuple:
    """(y, indices): y[n, c, oh, ow] = max over the window of x_p (padding -inf), indices the
    flat position h * W + w in x[n, c] of the window's first maximum (int64). New C-ordered arrays."""
    x, (size, stride, padding), out = _checks.pool_args("max_pool2d", x, kernel_size, stride, padding)
    n, c, h, w = x.shape
    win = _windows(_padded(x, padding, -np.inf), size, stride, (1, 1), out)
    flat = win.reshape(n, c, out[0], out[1], size[0] * size[1])
    # the first maximum of the window's real entries: padding never wins, even over -inf
    pad_h = np.arange(out[0])[:, None] * stride[0] - padding[0] + np.arange(size[0])[None, :]   # (OH, KH)
    pad_w = np.arange(out[1])[:, None] * stride[1] - padding[1] + np.arange(size[1])[None, :]   # (OW, KW)
    real = (((pad_h >= 0) & (pad_h < h))[:, None, :, None] & ((pad_w >= 0) & (pad_w < w))[None, :, None, :])
    real = real.reshape(out[0], out[1], -1)
    nan = np.isnan(flat)
    # the first NaN if there is one, else the first real slot holding the maximum (padding is
    # -inf and never wins, even when every real entry is -inf)
    hit = np.where(nan.any(axis=-1, keepdims=True), nan, (flat == flat.max(axis=-1, keepdims=True)) & real)
    best = np.argmax(hit, axis=-1)
    y = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]
    i, j = np.divmod(best, size[1])
    rows = np.arange(out[0])[:, None] * stride[0] - padding[0] + i
    cols = np.arange(out[1])[None, :] * stride[1] - padding[1] + j
    indices = (rows * w + cols).astype(np.int64)
    return np.ascontiguousarray(y), np.ascontiguousarray(indices)


def max_pool2d_backward(grad_out: np.ndarray, indices: np.ndarray, input_shape: Any, kernel_size: Any,
                        stride: Any, padding: Any = 0) -> np.ndarray:
    """grad_x[n, c, indices[n, c, oh, ow]] += grad_out[n, c, oh, ow], outputs in row-major order."""
    grad_out, input_shape, _ = _checks.pool_backward_args("max_pool2d", grad_out, input_shape, kernel_size, stride,
                                                          padding, indices)
    n, c, h, w = input_shape
    grad_x = np.zeros((n * c, h * w), dtype=grad_out.dtype)
    rows = np.repeat(np.arange(n * c), indices[0, 0].size if indices.size else 0)
    np.add.at(grad_x, (rows, indices.reshape(-1)), grad_out.reshape(-1))
    return grad_x.reshape(input_shape)


def avg_pool2d_forward(x: np.ndarray, kernel_size: Any, stride: Any, padding: Any = 0) -> np.ndarray:
    """y[n, c, oh, ow] = (sum over the window of x_p, padding 0, summed in the order i, j) / (KH KW)."""
    x, (size, stride, padding), out = _checks.pool_args("avg_pool2d", x, kernel_size, stride, padding)
    xp = _padded(x, padding)
    y = np.zeros(x.shape[:2] + out, dtype=x.dtype)
    for i in range(size[0]):
        for j in range(size[1]):
            y += xp[:, :, i:i + stride[0] * (out[0] - 1) + 1:stride[0], j:j + stride[1] * (out[1] - 1) + 1:stride[1]]
    y /= x.dtype.type(size[0] * size[1])
    return y


def avg_pool2d_backward(grad_out: np.ndarray, input_shape: Any, kernel_size: Any, stride: Any,
                        padding: Any = 0) -> np.ndarray:
    """grad_x = each grad_out / (KH KW) added to every input position of its window (order i, j)."""
    grad_out, input_shape, (size, stride, padding) = _checks.pool_backward_args(
        "avg_pool2d", grad_out, input_shape, kernel_size, stride, padding)
    n, c, h, w = input_shape
    out = grad_out.shape[2:]
    share = grad_out / grad_out.dtype.type(size[0] * size[1])
    grad_xp = np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), dtype=grad_out.dtype)
    for i in range(size[0]):
        for j in range(size[1]):
            grad_xp[:, :, i:i + stride[0] * (out[0] - 1) + 1:stride[0],
                    j:j + stride[1] * (out[1] - 1) + 1:stride[1]] += share
    return np.ascontiguousarray(grad_xp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w])
