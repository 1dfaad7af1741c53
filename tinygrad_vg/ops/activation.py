"""Activation functions. tanh, sigmoid and relu run through the fused kernels of
tinygrad_vg.kernels (compiled or numpy twin); tanh and sigmoid differentiate from
their saved output, so backward needs no second transcendental call."""
from __future__ import annotations

import math

import numpy as np
# scipy.special (erf) is imported inside Gelu.forward, its one user: on its own it costs ~0.3 s of import

from .. import kernels
from ..autograd import Function


class Tanh(Function):
    """y = tanh(x);  grad_x = grad_out * (1 - y^2)"""
    saves = ("y",)

    def forward(self, x):
        self.y = kernels.tanh_forward(x)
        return self.y

    def backward(self, grad_out):
        return (kernels.tanh_backward(grad_out, self.y),)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x));  grad_x = grad_out * y * (1 - y)   (at most grad_out / 4)"""
    saves = ("y",)

    def forward(self, x):
        self.y = kernels.sigmoid_forward(x)
        return self.y

    def backward(self, grad_out):
        return (kernels.sigmoid_backward(grad_out, self.y),)


class Relu(Function):
    """y = max(x, 0);  grad_x = grad_out * [x > 0]"""
    saves = ("x",)

    def forward(self, x):
        self.x = x
        return kernels.relu_forward(x)

    def backward(self, grad_out):
        return (kernels.relu_backward(grad_out, self.x),)


class LeakyRelu(Function):
    """y = x if x > 0 else slope * x;  grad_x = grad_out * (1 if x > 0 else slope)"""
    saves = ("positive",)

    def forward(self, x, negative_slope=0.01):
        self.positive = x > 0
        self.slope = negative_slope
        return np.where(self.positive, x, x * x.dtype.type(negative_slope))

    def backward(self, grad_out):
        return (np.where(self.positive, grad_out, grad_out * self.slope),)


class Elu(Function):
    """y = x if x > 0 else alpha (exp(x) - 1);  grad_x = grad_out * (1 if x > 0 else y + alpha)"""
    saves = ("positive", "y")

    def forward(self, x, alpha=1.0):
        self.positive = x > 0
        self.alpha = alpha
        self.y = np.where(self.positive, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)
        return self.y

    def backward(self, grad_out):
        return (np.where(self.positive, grad_out, grad_out * (self.y + self.alpha)),)


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta (y = x where beta x > threshold);
    grad_x = grad_out * sigmoid(beta x) (grad_out where beta x > threshold)"""
    saves = ("linear", "bx")

    def forward(self, x, beta=1.0, threshold=20.0):
        if beta <= 0:
            raise ValueError(f"softplus: beta must be > 0, got {beta}")
        bx = x * beta
        self.linear = bx > threshold
        self.bx = bx
        return np.where(self.linear, x, np.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)

    def backward(self, grad_out):
        return (np.where(self.linear, grad_out, grad_out * kernels.sigmoid_forward(self.bx)),)


class Gelu(Function):
    """y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 (exact, as torch's default);
    grad_x = grad_out * (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)"""
    saves = ("x", "cdf")

    def forward(self, x):
        from scipy.special import erf
        self.x = x
        self.cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
        return (x * self.cdf).astype(x.dtype, copy=False)

    def backward(self, grad_out):
        pdf = np.exp(-0.5 * self.x * self.x) / math.sqrt(2.0 * math.pi)
        return (grad_out * (self.cdf + self.x * pdf),)


class Silu(Function):
    """y = x sigmoid(x) (swish);  grad_x = grad_out * s (1 + x (1 - s)), s = sigmoid(x)"""
    saves = ("x", "s")

    def forward(self, x):
        self.x, self.s = x, kernels.sigmoid_forward(x)
        return x * self.s

    def backward(self, grad_out):
        s = self.s
        return (grad_out * s * (1 + self.x * (1 - s)),)


class Mish(Function):
    """y = x tanh(softplus(x));  grad_x = grad_out * (t + x (1 - t^2) sigmoid(x)), t = tanh(softplus(x))"""
    saves = ("x", "t")

    def forward(self, x):
        self.x = x
        self.t = np.tanh(np.logaddexp(0, x)).astype(x.dtype, copy=False)
        return x * self.t

    def backward(self, grad_out):
        t = self.t
        return (grad_out * (t + self.x * (1 - t * t) * kernels.sigmoid_forward(self.x)),)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class Selu(Function):
    """y = scale * (x if x > 0 else alpha (exp(x) - 1)), alpha = 1.6733, scale = 1.0507;
    grad_x = grad_out * scale * (1 if x > 0 else alpha exp(x))   (at x = 0 the left branch, scale alpha, as torch)"""
    saves = ("positive", "y")

    def forward(self, x):
        self.positive = x > 0
        self.y = (SELU_SCALE * np.where(self.positive, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))).astype(x.dtype)
        return self.y

    def backward(self, grad_out):
        # left branch: scale alpha exp(x) = y + scale alpha, from the saved output
        return (np.where(self.positive, grad_out * SELU_SCALE, grad_out * (self.y + SELU_SCALE * SELU_ALPHA)),)


class Hardtanh(Function):
    """y = min(max(x, min_val), max_val);  grad_x = grad_out where min_val < x < max_val, else 0
    (0 at both kinks, as torch's hardtanh; clip instead passes the gradient at its bounds)"""
    saves = ("inside",)

    def forward(self, x, min_val=-1.0, max_val=1.0):
        if not min_val <= max_val:
            raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.inside = (x > min_val) & (x < max_val)
        return np.clip(x, min_val, max_val).astype(x.dtype, copy=False)

    def backward(self, grad_out):
        return (grad_out * self.inside,)


class Dropout(Function):
    """y = x * mask / (1 - p) (inverted dropout: the expected value of y is x), mask ~ Bernoulli(1 - p)
    drawn by the caller; grad_x = grad_out * mask / (1 - p). p = 1 zeroes everything (as torch)."""
    saves = ("scale",)

    def forward(self, x, mask, p):
        if mask.shape != x.shape or mask.dtype != bool:
            raise ValueError(f"dropout: the mask must be a bool array of the input's shape {x.shape}")
        keep = 1.0 - p
        self.scale = (mask / keep).astype(x.dtype) if keep > 0 else np.zeros_like(x)
        return x * self.scale

    def backward(self, grad_out):
        return (grad_out * self.scale,)
