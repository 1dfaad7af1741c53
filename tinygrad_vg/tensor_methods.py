"""The numpy-like methods of Tensor: one-liners that call an op's `apply`, so `x.tanh()`
leads straight to `class Tanh` (ops/activation.py) and its forward/backward."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import ops
from .autograd import Function

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = ["TensorMethods"]


class TensorMethods:
    """Mixed into Tensor (tensor.py): numpy interop, operators, math, reductions, shape."""

    __slots__ = ()
    _data: np.ndarray
    data: np.ndarray

    # ----- numpy interop --------------------------------------------------------
    is_leaf = property(lambda self: self.node is None)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        self.requires_grad = flag
        return self

    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)

    def numpy(self) -> np.ndarray:
        return self.data   # read-only while a recorded node needs it (locking.py)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy:   # numpy 2 asks for a copy through this argument (np.array(t))
            return np.array(self._data, dtype=dtype, copy=True)
        return self.data if dtype is None else self._data.astype(dtype)

    def item(self) -> Any: return self._data.item()
    def tolist(self) -> Any: return self._data.tolist()
    def __len__(self) -> int: return len(self._data)
    def __bool__(self) -> bool: return bool(self._data)

    def __repr__(self) -> str:
        extra = f", node={self.node.name}" if self.node is not None else \
            ", requires_grad=True" if self.requires_grad else ""
        if self.name:
            extra += f", name={self.name!r}"
        body = np.array2string(self._data, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self._data.dtype}{extra})"

    __hash__ = object.__hash__

    # ----- arithmetic and math (ops.elementwise, ops.activation) ----------------------------
    def __add__(self, other: Any) -> Tensor: return ops.Add.apply(self, other)
    def __radd__(self, other: Any) -> Tensor: return ops.Add.apply(other, self)
    def __sub__(self, other: Any) -> Tensor: return ops.Sub.apply(self, other)
    def __rsub__(self, other: Any) -> Tensor: return ops.Sub.apply(other, self)
    def __mul__(self, other: Any) -> Tensor: return ops.Mul.apply(self, other)
    def __rmul__(self, other: Any) -> Tensor: return ops.Mul.apply(other, self)
    def __truediv__(self, other: Any) -> Tensor: return ops.Div.apply(self, other)
    def __rtruediv__(self, other: Any) -> Tensor: return ops.Div.apply(other, self)
    def __pow__(self, other: Any) -> Tensor: return ops.Pow.apply(self, other)
    def __rpow__(self, other: Any) -> Tensor: return ops.Pow.apply(other, self)
    def __neg__(self) -> Tensor: return ops.Neg.apply(self)
    def __pos__(self) -> Tensor: return self
    def __matmul__(self, other: Any) -> Tensor: return ops.MatMul.apply(self, other)
    def __rmatmul__(self, other: Any) -> Tensor: return ops.MatMul.apply(other, self)
    def exp(self) -> Tensor: return ops.Exp.apply(self)
    def log(self) -> Tensor: return ops.Log.apply(self)
    def sqrt(self) -> Tensor: return ops.Sqrt.apply(self)
    def abs(self) -> Tensor: return ops.Abs.apply(self)
    def __abs__(self) -> Tensor: return ops.Abs.apply(self)
    def tanh(self) -> Tensor: return ops.Tanh.apply(self)
    def sigmoid(self) -> Tensor: return ops.Sigmoid.apply(self)
    def relu(self) -> Tensor: return ops.Relu.apply(self)
    def clip(self, min: Any = None, max: Any = None) -> Tensor: return ops.elementwise.clip(self, min, max)
    clamp = clip
    def astype(self, dtype: Any) -> Tensor: return ops.Cast.apply(self, dtype=np.dtype(dtype))

    # comparisons are not differentiable: they return bool tensors
    def _compare(self, other: Any, fn: Callable) -> Tensor:
        other = other._data if isinstance(other, Function.tensor_type) else other
        return Function.tensor_type(fn(self._data, other))

    def __eq__(self, other: Any) -> Tensor: return self._compare(other, np.equal)  # type: ignore[override]
    def __ne__(self, other: Any) -> Tensor: return self._compare(other, np.not_equal)  # type: ignore[override]
    def __lt__(self, other: Any) -> Tensor: return self._compare(other, np.less)
    def __le__(self, other: Any) -> Tensor: return self._compare(other, np.less_equal)
    def __gt__(self, other: Any) -> Tensor: return self._compare(other, np.greater)
    def __ge__(self, other: Any) -> Tensor: return self._compare(other, np.greater_equal)

    def sin(self) -> Tensor: return ops.Sin.apply(self)
    def cos(self) -> Tensor: return ops.Cos.apply(self)
    def tan(self) -> Tensor: return ops.Tan.apply(self)
    def erf(self) -> Tensor: return ops.Erf.apply(self)
    def log1p(self) -> Tensor: return ops.Log1p.apply(self)
    def expm1(self) -> Tensor: return ops.Expm1.apply(self)
    def log2(self) -> Tensor: return ops.Log2.apply(self)
    def log10(self) -> Tensor: return ops.Log10.apply(self)
    def sign(self) -> Tensor: return ops.Sign.apply(self)
    def maximum(self, other: Any) -> Tensor: return ops.Maximum.apply(self, other)
    def minimum(self, other: Any) -> Tensor: return ops.Minimum.apply(self, other)

    # ----- reductions (ops.reduce): numpy's axis=/keepdims=, or torch's dim=/keepdim= ------------
    def sum(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        axis, keepdims = ops.reduce.axis_args("sum", axis, keepdims, dim, keepdim)
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        axis, keepdims = ops.reduce.axis_args("mean", axis, keepdims, dim, keepdim)
        return ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        """The largest values (torch's amax: ties share the gradient; values only, argmax for indices)."""
        axis, keepdims = ops.reduce.axis_args("max", axis, keepdims, dim, keepdim)
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        """The smallest values (torch's amin: ties share the gradient; values only, argmin for indices)."""
        axis, keepdims = ops.reduce.axis_args("min", axis, keepdims, dim, keepdim)
        return ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0, *, dim: Any = None,
            keepdim: Any = None) -> Tensor:
        axis, keepdims = ops.reduce.axis_args("var", axis, keepdims, dim, keepdim)
        return ops.Var.apply(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def std(self, axis: Any = None, keepdims: bool = False, ddof: int = 0, *, dim: Any = None,
            keepdim: Any = None) -> Tensor:
        axis, keepdims = ops.reduce.axis_args("std", axis, keepdims, dim, keepdim)
        return ops.Std.apply(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def prod(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        axis, keepdims = ops.reduce.axis_args("prod", axis, keepdims, dim, keepdim)
        return ops.Prod.apply(self, axis=axis, keepdims=keepdims)

    def logsumexp(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        axis, keepdims = ops.reduce.axis_args("logsumexp", axis, keepdims, dim, keepdim)
        return ops.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        axis, keepdims = ops.reduce.axis_args("argmax", axis, keepdims, dim, keepdim)
        return ops.ArgMax.apply(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        axis, keepdims = ops.reduce.axis_args("argmin", axis, keepdims, dim, keepdim)
        return ops.ArgMin.apply(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        return ops.Cumsum.apply(self, axis=ops.reduce.axis_args("cumsum", axis, False, dim)[0])

    # ----- shape and index (ops.shape, ops.index) ----------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.Reshape.apply(self, shape=shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """The axes start_dim..end_dim merged into one (all of them by default: 1-d)."""
        return ops.shape.flatten(self, start_dim, end_dim)

    def squeeze(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        """Without its size-1 axes (only those named, if any: naming another is an error, as numpy)."""
        return ops.Squeeze.apply(self, axis=ops.reduce.axis_args("squeeze", axis, False, dim)[0])

    def unsqueeze(self, dim: int) -> Tensor:
        """A new size-1 axis at position dim of the result (numpy's expand_dims)."""
        return ops.ExpandDims.apply(self, axis=dim)

    def expand(self, *shape: Any) -> Tensor:
        """Broadcast to shape (torch; -1 keeps a size); numpy's broadcast_to."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.BroadcastTo.apply(self, shape=shape)

    def flip(self, axis: Any = None, *, dims: Any = None) -> Tensor:
        return ops.Flip.apply(self, axis=ops.reduce.axis_args("flip", axis, False, dims)[0])

    def roll(self, shift: Any, axis: Any = None, *, dims: Any = None) -> Tensor:
        return ops.Roll.apply(self, shift=shift, axis=ops.reduce.axis_args("roll", axis, False, dims)[0])

    def repeat(self, repeats: Any, axis: Any = None, *, dim: Any = None) -> Tensor:
        """numpy's ndarray.repeat (each element in place; torch's repeat_interleave). torch's
        Tensor.repeat, which tiles the whole tensor, is `tile` here."""
        return ops.Repeat.apply(self, repeats=repeats, axis=ops.reduce.axis_args("repeat", axis, False, dim)[0])

    repeat_interleave = repeat

    def tile(self, *reps: Any) -> Tensor:
        reps = tuple(reps[0]) if len(reps) == 1 and isinstance(reps[0], (tuple, list)) else reps
        return ops.Tile.apply(self, reps=reps)

    def tril(self, k: int = 0, *, diagonal: Any = None) -> Tensor:
        return ops.Tril.apply(self, k=k if diagonal is None else diagonal)

    def triu(self, k: int = 0, *, diagonal: Any = None) -> Tensor:
        return ops.Triu.apply(self, k=k if diagonal is None else diagonal)

    def gather(self, dim: int, index: Any) -> Tensor:
        """torch's gather (numpy's take_along_axis, with an index that may be smaller than self)."""
        return ops.index.gather(self, dim, index)

    def argsort(self, axis: Any = -1, descending: bool = False, *, dim: Any = None) -> Tensor:
        """Indices that sort self along axis, stable; no gradient."""
        if dim is not None:
            axis = ops.reduce.axis_args("argsort", None, False, dim)[0]
        return ops.ArgSort.apply(self, axis=axis, descending=descending)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> tuple:  # noqa: A002
        """(values, indices) of the k largest (or smallest) along dim, sorted (also for sorted=False,
        which torch leaves unspecified), stable: torch's topk."""
        return ops.index.topk(self, k, dim, largest)

    def transpose(self, *axes: Any) -> Tensor:
        """numpy semantics: no axes reverses them; otherwise a full permutation."""
        axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return ops.Transpose.apply(self, axes=axes or None)

    permute = transpose

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        order = list(range(self.ndim))
        order[axis1], order[axis2] = order[axis2], order[axis1]
        return ops.Transpose.apply(self, axes=tuple(order))

    T = property(lambda self: ops.Transpose.apply(self, axes=None))

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=index)

    # ----- notebook display (Jupyter calls it; a terminal keeps __repr__) -------------------
    def _repr_html_(self) -> str:
        """A small table: name, shape, dtype, what made it (the op) or that it is a leaf,
        the values (numpy's summarised print for big arrays) and .grad when there is one."""
        import html

        def values(array: np.ndarray) -> str:
            text = np.array2string(array, separator=", ", threshold=60, edgeitems=3, precision=4)
            if array.size > 6 and array.dtype.kind == "f" and np.isfinite(array).all():
                text += (f"\n(norm {np.linalg.norm(array):.4g}, mean {array.mean():.4g}, "
                         f"min {array.min():.4g}, max {array.max():.4g})")
            return f"<pre style='margin:0;font-family:monospace;background:transparent'>{html.escape(text)}</pre>"

        made = (f"op <b>{html.escape(self.node.name)}</b>" if self.node is not None
                else "leaf, requires grad" if self.requires_grad else "leaf (constant)")
        rows = [("shape", html.escape(str(self._data.shape))), ("dtype", str(self._data.dtype)),
                ("made by", made), ("data", values(self._data))]
        if getattr(self, "_grad", None) is not None:
            rows.append(("grad", values(self._grad)))
        title = "Tensor" + (f" <b>{html.escape(self.name)}</b>" if self.name else "")
        cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th>"
                        f"<td style='text-align:left'>{v}</td></tr>" for k, v in rows)
        return (f"<div class='tinygrad-vg-tensor'><div>{title}</div>"
                f"<table style='border-collapse:collapse'>{cells}</table></div>")
