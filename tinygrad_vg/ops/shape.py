"""Ops that move elements without changing them: reshape, transpose, indexing,
concatenate, stack, where. Backward routes grad_out back to where each element came from."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .reduce import normalize_axis


class Reshape(Function):
    """y = x.reshape(shape);  grad_x = grad_out.reshape(x.shape)"""
    saves = ()
    float_only = False

    def forward(self, x, shape):
        self.in_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                             f"({x.size} elements) into shape {tuple(shape)}") from None

    def backward(self, grad_out):
        return (grad_out.reshape(self.in_shape),)


class Transpose(Function):
    """y = x.transpose(axes) (axes=None reverses them);  grad_x = grad_out.transpose(inverse(axes))"""
    saves = ()
    float_only = False

    def forward(self, x, axes=None):
        if axes is not None and (len(axes) != x.ndim or
                                 normalize_axis("transpose", tuple(axes), x.ndim) != tuple(range(x.ndim))):
            raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation of the "
                             f"{x.ndim} axes of shape {x.shape}")
        self.axes = axes
        return x.transpose(axes)

    def backward(self, grad_out):
        if self.axes is None:
            return (grad_out.transpose(),)
        return (grad_out.transpose(np.argsort([int(a) % grad_out.ndim for a in self.axes])),)


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def _plain_index(index):
    """Tensors inside an index become their arrays."""
    Tensor = Function.tensor_type
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


class GetItem(Function):
    """y = x[index] (basic and integer-array indexing);
    grad_x = zeros like x with grad_out added at the indexed places (repeats add up)"""
    float_only = False
    saves = ()   # the index arrays backward reads are the node's own copies

    def forward(self, x, index):
        index = _plain_index(index)
        for i in (index if isinstance(index, tuple) else (index,)):
            if isinstance(i, np.ndarray) and i.dtype.kind not in "iub":
                raise TypeError(f"index arrays must be integer or bool, got dtype {i.dtype}")
        if isinstance(index, np.ndarray):   # copies: a change to the caller's index array later
            index = index.copy()            # must not change where backward puts the gradient
        elif isinstance(index, tuple) and any(isinstance(i, np.ndarray) for i in index):
            index = tuple(i.copy() if isinstance(i, np.ndarray) else i for i in index)
        self.index, self.shape, self.dtype = index, x.shape, x.dtype
        try:
            return np.asarray(x[index])
        except IndexError as e:
            raise IndexError(f"indexing a tensor of shape {x.shape}: {e}") from None

    def backward(self, grad_out):
        grad_x = np.zeros(self.shape, dtype=grad_out.dtype)
        if _is_basic(self.index):
            grad_x[self.index] = grad_out
        else:
            np.add.at(grad_x, self.index, grad_out)
        return (grad_x,)


class Concatenate(Function):
    """y = concatenate([x_1, ..., x_k], axis);  grad_x_i = the slice of grad_out that x_i became"""
    float_only = False

    def forward(self, *xs, axis=0):
        if not xs:
            raise ValueError("concatenate: need at least one tensor")
        (self.axis,) = normalize_axis("concatenate", axis, xs[0].ndim)
        try:
            y = np.concatenate(xs, axis=self.axis)
        except ValueError as e:
            raise ValueError(f"concatenate along axis {axis}: shapes {[x.shape for x in xs]} "
                             f"do not fit ({e})") from None
        self.splits = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        return y

    def backward(self, grad_out):
        return tuple(np.split(grad_out, self.splits, axis=self.axis))


class Stack(Function):
    """y = stack([x_1, ..., x_k], axis) (a new axis);  grad_x_i = grad_out taken at position i"""
    float_only = False

    def forward(self, *xs, axis=0):
        if not xs:
            raise ValueError("stack: need at least one tensor")
        if len({x.shape for x in xs}) != 1:
            raise ValueError(f"stack: all tensors need the same shape; got {[x.shape for x in xs]}")
        (self.axis,) = normalize_axis("stack", axis, xs[0].ndim + 1)
        y = np.stack(xs, axis=self.axis)
        return y

    def backward(self, grad_out):
        return tuple(np.moveaxis(grad_out, self.axis, 0))


class Where(Function):
    """y = where(cond, a, b);  grad_a = grad_out where cond else 0, grad_b = grad_out where not cond else 0"""
    float_only = False

    def forward(self, a, b, cond):
        cond = np.asarray(_plain_index(cond))
        if cond.dtype != bool:
            raise TypeError(f"where: condition must be a bool array or tensor, got dtype {cond.dtype}")
        try:
            shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
        except ValueError:
            raise ValueError(f"where: shapes cond {cond.shape}, a {a.shape}, b {b.shape} "
                             "cannot be broadcast together") from None
        self.cond = np.broadcast_to(cond, shape)
        return np.where(cond, a, b)

    def backward(self, grad_out):
        zero = np.zeros((), grad_out.dtype)
        return (np.where(self.cond, grad_out, zero) if self.needs_grad[0] else None,
                np.where(self.cond, zero, grad_out) if self.needs_grad[1] else None)
