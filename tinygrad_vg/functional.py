"""Functions on tensors, numpy/PyTorch style: `tg.functional.gelu(x)`,
`tg.functional.cross_entropy(logits, target)`. Each is a thin call to one op."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import ops
from .ops.elementwise import clip as clip_op
from .ops.index import gather as gather_op
from .ops.index import topk as topk_op
from .ops.reduce import axis_args
from .ops.shape import flatten as flatten_op
from .tensor import Tensor

__all__ = [
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "softplus", "gelu",
    "softmax", "log_softmax", "logsumexp", "mse_loss", "cross_entropy", "matmul", "linear",
    "linear_act", "linear_act_stack", "concatenate", "stack", "where", "clip", "sum", "mean", "max",
    "min", "var", "reshape", "transpose",
    # math, activations
    "sin", "cos", "tan", "erf", "log1p", "expm1", "log2", "log10", "sign", "maximum", "minimum",
    "silu", "mish", "selu", "hardtanh", "dropout",
    # reductions
    "prod", "std", "cumsum", "argmax", "argmin",
    # shape and index
    "squeeze", "expand_dims", "unsqueeze", "broadcast_to", "expand", "flatten", "flip", "roll",
    "tile", "repeat", "repeat_interleave", "pad", "tril", "triu", "take_along_axis", "gather",
    "sort", "argsort", "topk", "one_hot", "einsum",
    # losses
    "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
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


def softmax(x: Any, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Softmax along axis (default the last; torch's dim= accepted)."""
    axis = _axis("softmax", axis, dim, -1)
    return ops.Softmax.apply(x, axis=axis)


def log_softmax(x: Any, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    axis = _axis("log_softmax", axis, dim, -1)
    return ops.LogSoftmax.apply(x, axis=axis)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Tensor:
    axis, keepdims = axis_args("logsumexp", axis, keepdims, dim, keepdim)
    return ops.LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def _axis(op: str, axis: Any, dim: Any, default: Any = None) -> Any:
    """axis= or torch's dim= (one of them), else the default."""
    axis = axis_args(op, axis, False, dim)[0]
    return default if axis is None else axis


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


def sum(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Tensor:  # noqa: A001
    axis, keepdims = axis_args("sum", axis, keepdims, dim, keepdim)
    return ops.Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Tensor:
    axis, keepdims = axis_args("mean", axis, keepdims, dim, keepdim)
    return ops.Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Tensor:  # noqa: A001
    """The largest values (numpy's max, torch's amax: ties share the gradient evenly; unlike
    torch.max(x, dim) it returns the values only: use argmax for the indices)."""
    axis, keepdims = axis_args("max", axis, keepdims, dim, keepdim)
    return ops.Max.apply(x, axis=axis, keepdims=keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Tensor:  # noqa: A001
    """The smallest values (numpy's min, torch's amin; see max)."""
    axis, keepdims = axis_args("min", axis, keepdims, dim, keepdim)
    return ops.Min.apply(x, axis=axis, keepdims=keepdims)


def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0, *, dim: Any = None,
        keepdim: bool | None = None) -> Tensor:
    """Variance with numpy's ddof (default 0; torch's default is ddof=1)."""
    axis, keepdims = axis_args("var", axis, keepdims, dim, keepdim)
    return ops.Var.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0, *, dim: Any = None,
        keepdim: bool | None = None) -> Tensor:
    """Standard deviation with numpy's ddof (default 0; torch's default is ddof=1)."""
    axis, keepdims = axis_args("std", axis, keepdims, dim, keepdim)
    return ops.Std.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


def prod(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Tensor:
    axis, keepdims = axis_args("prod", axis, keepdims, dim, keepdim)
    return ops.Prod.apply(x, axis=axis, keepdims=keepdims)


def cumsum(x: Any, axis: Any = None, *, dim: Any = None) -> Tensor:
    """Running sums along axis (numpy: axis=None runs over the flattened x)."""
    return ops.Cumsum.apply(x, axis=_axis("cumsum", axis, dim))


def argmax(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Tensor:
    """Indices (int64) of the largest values: the first of ties; no gradient."""
    axis, keepdims = axis_args("argmax", axis, keepdims, dim, keepdim)
    return ops.ArgMax.apply(x, axis=axis, keepdims=keepdims)


def argmin(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None) -> Tensor:
    """Indices (int64) of the smallest values: the first of ties; no gradient."""
    axis, keepdims = axis_args("argmin", axis, keepdims, dim, keepdim)
    return ops.ArgMin.apply(x, axis=axis, keepdims=keepdims)


def reshape(x: Any, shape: Sequence[int]) -> Tensor:
    return ops.Reshape.apply(x, shape=tuple(shape))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    return ops.Transpose.apply(x, axes=None if axes is None else tuple(axes))


# ----- math and activations (ops.math, ops.activation) ----------------------------------------
def sin(x: Any) -> Tensor: return ops.Sin.apply(x)
def cos(x: Any) -> Tensor: return ops.Cos.apply(x)
def tan(x: Any) -> Tensor: return ops.Tan.apply(x)
def erf(x: Any) -> Tensor: return ops.Erf.apply(x)
def log1p(x: Any) -> Tensor: return ops.Log1p.apply(x)
def expm1(x: Any) -> Tensor: return ops.Expm1.apply(x)
def log2(x: Any) -> Tensor: return ops.Log2.apply(x)
def log10(x: Any) -> Tensor: return ops.Log10.apply(x)


def sign(x: Any) -> Tensor:
    """-1, 0 or 1 (0 at 0); the result does not require grad (the derivative is 0)."""
    return ops.Sign.apply(x)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise larger of a and b (broadcasting); ties split the gradient evenly (torch)."""
    return ops.Maximum.apply(a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise smaller of a and b (broadcasting); ties split the gradient evenly (torch)."""
    return ops.Minimum.apply(a, b)


def silu(x: Any) -> Tensor: return ops.Silu.apply(x)
def mish(x: Any) -> Tensor: return ops.Mish.apply(x)
def selu(x: Any) -> Tensor: return ops.Selu.apply(x)


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return ops.Hardtanh.apply(x, min_val=min_val, max_val=max_val)


def dropout(x: Any, p: float = 0.5, training: bool = True, rng: Any = None) -> Tensor:
    """Inverted dropout (torch's): in training, each element is zeroed with probability p and the
    rest scaled by 1 / (1 - p); otherwise x itself. rng: a numpy Generator, an int seed or None."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability in [0, 1]; got {p!r}")
    if not training or p == 0:
        return x
    if rng is None or isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(rng)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"dropout: rng must be a numpy Generator, an int seed or None; got {type(rng).__name__}")
    return ops.Dropout.apply(x, mask=rng.random(np.shape(x)) >= p, p=float(p))


# ----- shape and index (ops.shape, ops.index, ops.einsum) ---------------------------------------
def squeeze(x: Any, axis: Any = None, *, dim: Any = None) -> Tensor:
    """x without its size-1 axes (only those named, if any; naming another axis is an error)."""
    return ops.Squeeze.apply(x, axis=_axis("squeeze", axis, dim))


def expand_dims(x: Any, axis: Any = None, *, dim: Any = None) -> Tensor:
    """x with a new size-1 axis at position `axis` of the result (numpy; torch's unsqueeze)."""
    axis = _axis("expand_dims", axis, dim)
    if axis is None:
        raise TypeError("expand_dims: give the position of the new axis (axis= or dim=)")
    return ops.ExpandDims.apply(x, axis=axis)


unsqueeze = expand_dims


def broadcast_to(x: Any, shape: Sequence[int]) -> Tensor:
    """x broadcast to shape (numpy; torch's expand, where -1 keeps a size)."""
    return ops.BroadcastTo.apply(x, shape=tuple(shape))


expand = broadcast_to


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """x with the axes start_dim..end_dim merged into one (torch.flatten)."""
    return flatten_op(x, start_dim, end_dim)


def flip(x: Any, axis: Any = None, *, dims: Any = None) -> Tensor:
    """x reversed along the axes (all of them for axis=None; torch's dims= accepted)."""
    return ops.Flip.apply(x, axis=_axis("flip", axis, dims))


def roll(x: Any, shift: Any, axis: Any = None, *, dims: Any = None) -> Tensor:
    """x shifted cyclically (numpy: over the flattened x for axis=None; torch's dims= accepted)."""
    return ops.Roll.apply(x, shift=shift, axis=_axis("roll", axis, dims))


def tile(x: Any, reps: Any) -> Tensor:
    """x repeated as tiles, reps per axis (numpy's tile; what torch's Tensor.repeat does)."""
    return ops.Tile.apply(x, reps=reps)


def repeat(x: Any, repeats: Any, axis: Any = None, *, dim: Any = None) -> Tensor:
    """Each element repeated in place (numpy's repeat, torch's repeat_interleave; the flattened x
    for axis=None). torch's Tensor.repeat, which tiles, is `tile` here."""
    return ops.Repeat.apply(x, repeats=repeats, axis=_axis("repeat", axis, dim))


repeat_interleave = repeat


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0) -> Tensor:
    """numpy's pad: pad_width is ((before, after), ...) per axis from the first (torch's F.pad
    lists pairs from the LAST axis, flattened); modes constant, edge, reflect, symmetric, wrap
    (and torch's replicate, circular)."""
    return ops.Pad.apply(x, pad_width=pad_width, mode=mode, constant_values=constant_values)


def tril(x: Any, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """x with what lies above the k-th diagonal (torch: diagonal=) of the last two axes zeroed."""
    return ops.Tril.apply(x, k=k if diagonal is None else diagonal)


def triu(x: Any, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """x with what lies below the k-th diagonal (torch: diagonal=) of the last two axes zeroed."""
    return ops.Triu.apply(x, k=k if diagonal is None else diagonal)


def take_along_axis(x: Any, indices: Any, axis: Any = -1, *, dim: Any = None) -> Tensor:
    """x's elements at `indices` along axis (numpy's take_along_axis); differentiable in x."""
    if dim is not None:
        axis = axis_args("take_along_axis", None, False, dim)[0]
    return ops.TakeAlongAxis.apply(x, indices=indices, axis=axis)


def gather(x: Any, dim: int, index: Any) -> Tensor:
    """torch.gather: out[i][j] = x[index[i][j]][j] for dim=0 (and so on); index may be
    smaller than x along the other axes. Differentiable in x."""
    return gather_op(x, dim, index)


def sort(x: Any, axis: Any = -1, descending: bool = False, *, dim: Any = None) -> Tensor:
    """x sorted along axis (numpy: the flattened x for axis=None), stable, NaN last (first when
    descending). Returns the values, as numpy; argsort gives the indices."""
    if dim is not None:
        axis = axis_args("sort", None, False, dim)[0]
    return ops.Sort.apply(x, axis=axis, descending=descending)


def argsort(x: Any, axis: Any = -1, descending: bool = False, *, dim: Any = None) -> Tensor:
    """Indices (int64) that sort x along axis, stable; no gradient."""
    if dim is not None:
        axis = axis_args("argsort", None, False, dim)[0]
    return ops.ArgSort.apply(x, axis=axis, descending=descending)


def topk(x: Any, k: int, axis: int = -1, largest: bool = True, sorted: bool = True, *,  # noqa: A002 (torch's name)
         dim: int | None = None) -> tuple:
    """(values, indices) of the k largest (largest=False: smallest) elements along axis, as
    torch.topk; ties keep their order (stable), and the values are always sorted."""
    if dim is not None:
        axis = axis_args("topk", None, False, dim)[0]
    return topk_op(x, k, axis, largest)


def one_hot(indices: Any, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape indices.shape + (num_classes,) with a 1 at each index (torch's
    one_hot; num_classes=-1: max index + 1); no gradient."""
    return ops.OneHot.apply(indices, num_classes=num_classes)


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """numpy's einsum: einsum("ij,jk->ik", a, b); "..." and implicit outputs as numpy."""
    return ops.Einsum.apply(*operands, subscripts=subscripts)


# ----- losses (ops.loss) ----------------------------------------------------------------------
def nll_loss(logp: Any, target: Any, reduction: str = "mean", ignore_index: int = -100,
             weight: Any = None) -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C) at class indices (N,), as torch;
    weight: one number per class (a constant), None for 1."""
    return ops.NllLoss.apply(logp, target, reduction=reduction, ignore_index=ignore_index, weight=weight)


def binary_cross_entropy(p: Any, target: Any, reduction: str = "mean") -> Tensor:
    """BCE of probabilities p in [0, 1] and targets of the same shape (logs clamped at -100, as torch)."""
    return ops.BinaryCrossEntropy.apply(p, target, reduction=reduction)


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """BCE of sigmoid(logits) and targets in the stable form; pos_weight weighs the positive
    term (broadcast along the last axis: one weight per class), as torch."""
    if pos_weight is None:
        return ops.BinaryCrossEntropyWithLogits.apply(logits, target, reduction=reduction)
    return ops.BinaryCrossEntropyWithLogits.apply(logits, target, pos_weight, reduction=reduction)


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
