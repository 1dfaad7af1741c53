"""Functions on tensors, numpy/PyTorch style: `tg.functional.gelu(x)`,
`tg.functional.cross_entropy(logits, target)`. Each is a thin call to one op."""
from __future__ import annotations

from typing import Any, Sequence

from . import ops
from .ops.elementwise import clip as clip_op
from .tensor import Tensor

__all__ = [
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "softplus", "gelu",
    "softmax", "log_softmax", "logsumexp", "mse_loss", "cross_entropy", "matmul", "linear",
    "linear_act", "linear_act_stack", "concatenate", "stack", "where", "clip", "sum", "mean", "max",
    "min", "var", "reshape", "transpose",
]


def exp(x: Any) -> Tensor: return ops.Exp.apply(x)
def log(x: Any) -> Tensor: return ops.Log.apply(x)
def sqrt(x: Any) -> Tensor: return ops.Sqrt.apply(x)
def abs(x: Any) -> Tensor: return ops.Abs.apply(x)  # noqa: A001 (numpy's name)
def tanh(x: Any) -> Tensor: return ops.Tanh.apply(x)
def sigmoid(x: Any) -> Tensor: return ops.Sigmoid.apply(x)
def relu(x: Any) -> Tensor: return ops.Relu.apply(x)
def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor: return ops.LeakyRelu.apply(x, negative_slope=negative_slope)
def elu(x: Any, alpha: float = 1.0) -> Tensor: return ops.Elu.apply(x, alpha=alpha)
def gelu(x: Any) -> Tensor: return ops.Gelu.apply(x)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return ops.Softplus.apply(x, beta=beta, threshold=threshold)


def softmax(x: Any, axis: int = -1) -> Tensor: return ops.Softmax.apply(x, axis=axis)
def log_softmax(x: Any, axis: int = -1) -> Tensor: return ops.LogSoftmax.apply(x, axis=axis)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return ops.LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def mse_loss(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error; shapes must match exactly (no silent broadcasting)."""
    return ops.MSELoss.apply(pred, target, reduction=reduction)


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy from logits (N, C) and class indices (N,) or probabilities (N, C)."""
    return ops.CrossEntropy.apply(logits, target, reduction=reduction)


def matmul(a: Any, b: Any) -> Tensor: return ops.MatMul.apply(a, b)


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """x @ weight^T + bias, one node on the tape (torch.nn.functional.linear)."""
    return ops.Linear.apply(x, weight) if bias is None else ops.Linear.apply(x, weight, bias)


def linear_act(x: Any, weight: Any, bias: Any = None, activation: str | None = None,
               residual: bool = False) -> Tensor:
    """activation(x @ weight^T + bias) as ONE node on the tape (ops.LinearAct, fused kernels);
    activation: None, "tanh", "sigmoid" or "relu". Same values and gradients as
    `F.tanh(F.linear(x, weight, bias))`, in one op instead of two. residual=True (square
    weight) returns x + activation(...), a residual block in one node: the same values and
    gradients as `x + F.linear_act(x, ...)`."""
    _check_fused_activation("linear_act", activation)
    residual = bool(residual)
    if bias is None:
        return ops.LinearAct.apply(x, weight, activation=activation, residual=residual)
    return ops.LinearAct.apply(x, weight, bias, activation=activation, residual=residual)


def linear_act_stack(x: Any, weights: Sequence[Any], biases: Sequence[Any] | None = None,
                     activation: str | None = None, residual: bool = False) -> Tensor:
    """Layers h = activation(h @ W_l^T + b_l) (h + that, residual=True) for each W_l, b_l in turn, as
    ONE node (ops.LinearActStack): the same values and gradients as the loop of F.linear_act calls,
    without a tape node per layer. biases: one per weight, or None for layers without a bias.
    A tensor passed for several layers (tied weights) gets the same gradient up to rounding: its
    per-layer parts are added in another order than the per-layer nodes' engine adds them."""
    _check_fused_activation("linear_act_stack", activation)
    weights = list(weights)
    if not weights:
        raise ValueError("linear_act_stack: needs at least one weight")
    params = [x, *weights]
    if biases is not None:
        biases = list(biases)
        if len(biases) != len(weights):
            raise ValueError(f"linear_act_stack: got {len(weights)} weights and {len(biases)} biases; pass one "
                             "bias per weight, or biases=None for layers without a bias")
        missing = [i for i, b in enumerate(biases) if b is None]
        if missing:
            raise ValueError(f"linear_act_stack: biases[{missing[0]}] is None; every layer has a bias or "
                             "none does (biases=None)")
        params += biases
    return ops.LinearActStack.apply(*params, activation=activation, residual=bool(residual),
                                    bias=biases is not None)


def _check_fused_activation(name: str, activation: Any) -> None:
    if activation not in (None, "identity", "tanh", "sigmoid", "relu"):
        raise ValueError(f"{name}: unknown activation {activation!r}; accepted: None, 'tanh', "
                         "'sigmoid', 'relu' (use F.linear and the activation for others)")


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    return ops.Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    return ops.Stack.apply(*tensors, axis=axis)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elements of a where cond is True, else of b; cond is a bool array or tensor (not differentiated)."""
    return ops.Where.apply(a, b, cond=cond)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """torch.clamp: min/max are numbers, numpy arrays or Tensors (which get gradients), or None."""
    return clip_op(x, min, max)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return ops.Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return ops.Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return ops.Max.apply(x, axis=axis, keepdims=keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return ops.Min.apply(x, axis=axis, keepdims=keepdims)


def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    return ops.Var.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


def reshape(x: Any, shape: Sequence[int]) -> Tensor:
    return ops.Reshape.apply(x, shape=tuple(shape))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    return ops.Transpose.apply(x, axes=None if axes is None else tuple(axes))


# ---------------------------------------------------------------- convolution and pooling (ops/conv.py)
# Shapes: x (N, C, H, W) (conv1d: (N, C, L)), weight (OC, C / groups, KH, KW) ((OC, C / groups, K)).
# stride, padding, dilation, kernel_size: an int or one int per spatial axis, as torch.

__all__ += ["conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm"]


def _conv(op: Any, ndim: int, x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
          groups: int) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.ndim != ndim + 2:
        raise ValueError(f"conv{ndim}d: input must be {ndim + 2}-D "
                         f"{'(N, C, H, W)' if ndim == 2 else '(N, C, L)'}; got shape {x.shape}")
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return op.apply(x, weight, **params) if bias is None else op.apply(x, weight, bias, **params)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation, torch.nn.functional.conv2d: x (N, C, H, W), weight (OC, C/groups, KH, KW),
    bias (OC,) or None -> (N, OC, OH, OW). One node (ops.Conv2d, im2col + BLAS kernels)."""
    return _conv(ops.Conv2d, 2, x, weight, bias, stride, padding, dilation, groups)


def conv1d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation, torch.nn.functional.conv1d: x (N, C, L), weight (OC, C/groups, K) -> (N, OC, OL)."""
    return _conv(ops.Conv1d, 1, x, weight, bias, stride, padding, dilation, groups)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Max over kernel_size windows (stride defaults to kernel_size), torch.nn.functional.max_pool2d."""
    return ops.MaxPool2d.apply(x, kernel_size=kernel_size, stride=kernel_size if stride is None else stride,
                               padding=padding)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Mean over kernel_size windows, zero padding counted (torch's defaults: count_include_pad=True,
    ceil_mode=False), stride defaults to kernel_size."""
    return ops.AvgPool2d.apply(x, kernel_size=kernel_size, stride=kernel_size if stride is None else stride,
                               padding=padding)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    """Mean over torch's adaptive windows so that the output is (N, C, *output_size); output_size an int
    or two ints >= 1 (torch's None entries, "keep this size", are not accepted)."""
    sizes = (output_size, output_size) if isinstance(output_size, int) else output_size
    if (not isinstance(sizes, (tuple, list)) or len(sizes) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes)):
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or two ints >= 1; got {output_size!r}")
    return ops.AdaptiveAvgPool2d.apply(x, output_size=tuple(sizes))


def batch_norm(x: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """torch.nn.functional.batch_norm over the channel axis 1 of x (N, C, ...): batch statistics when
    training (running_mean/running_var, numpy arrays or None, updated in place), else the running ones.
    weight and bias: both or neither."""
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: give both weight and bias or neither")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var")
    params = dict(running_mean=running_mean, running_var=running_var, training=bool(training),
                  momentum=momentum, eps=eps)
    if weight is None:
        return ops.BatchNorm.apply(x, **params)
    return ops.BatchNorm.apply(x, weight, bias, **params)
