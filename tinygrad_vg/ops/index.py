"""Ops that pick elements by index: take_along_axis (torch's gather), sort, and the
index-valued argmax, argmin, argsort and one_hot, whose results carry no gradient
(Constant, ops/math.py: never recorded, they do not require grad).

Sort order is stable (equal elements keep their order, also when descending), NaN sorts
as the largest value (last ascending, first descending), as numpy and torch's stable sort.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .math import Constant
from .reduce import normalize_axis
from .shape import GetItem, _plain_index

__all__ = ["TakeAlongAxis", "Sort", "ArgSort", "ArgMax", "ArgMin", "OneHot", "sort_indices", "gather", "topk"]


def _index_array(op: str, indices) -> np.ndarray:
    indices = np.asarray(_plain_index(indices))
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers; got dtype {indices.dtype}")
    return indices


def _full_index(indices: np.ndarray, axis: int, shape: tuple) -> tuple:
    """The integer-array index that picks the elements of an x of that shape as
    take_along_axis(x, indices, axis) (an axis of size 1 in x is broadcast: index 0)."""
    grid = np.ogrid[tuple(slice(n) for n in indices.shape)]
    return tuple(indices if i == axis else g * (shape[i] != 1) for i, g in enumerate(grid))


class TakeAlongAxis(Function):
    """y = take_along_axis(x, indices, axis): y[..., i, ...] = x[..., indices[..., i, ...], ...]
    (numpy's name, torch.gather(x, dim, index) is the same with index no larger than x);
    grad_x = zeros with grad_out added where each element was taken (repeats add up)"""
    saves = ("indices",)   # the node's own copy of the index
    float_only = False

    def forward(self, x, indices, axis=-1):
        indices = _index_array("take_along_axis", indices).copy()
        self.in_shape = x.shape
        if axis is None:
            x, axis = x.reshape(-1), 0
        if indices.ndim != x.ndim:
            raise ValueError(f"take_along_axis: indices need as many dimensions as the tensor ({x.ndim}, "
                             f"shape {x.shape}); got shape {indices.shape}")
        (self.axis,) = normalize_axis("take_along_axis", axis, x.ndim)
        n = x.shape[self.axis]
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"take_along_axis: indices must lie in [{-n}, {n - 1}] for axis {self.axis} of "
                             f"shape {x.shape}; got values from {indices.min()} to {indices.max()}")
        try:
            shape = np.broadcast_shapes(tuple(1 if i == self.axis else s for i, s in enumerate(x.shape)),
                                        tuple(1 if i == self.axis else s for i, s in enumerate(indices.shape)))
        except ValueError:
            raise ValueError(f"take_along_axis: indices of shape {indices.shape} do not broadcast with the "
                             f"tensor's shape {x.shape} outside axis {self.axis}") from None
        self.indices = np.broadcast_to(indices, shape[:self.axis] + indices.shape[self.axis:self.axis + 1]
                                       + shape[self.axis + 1:])
        self.shape = x.shape   # flattened for axis=None
        return x[_full_index(self.indices, self.axis, self.shape)]

    def backward(self, grad_out):
        grad = np.zeros(self.shape, dtype=grad_out.dtype)
        np.add.at(grad, _full_index(self.indices, self.axis, self.shape), grad_out)
        return (grad.reshape(self.in_shape),)


def sort_indices(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort along axis; descending is stable too: the ascending stable order of the
    reversed x, reversed back (ties keep their first-come order, NaN comes first)."""
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    n = x.shape[axis]
    flipped = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return n - 1 - np.flip(flipped, axis)


class Sort(Function):
    """y = x sorted along axis (stable, the flattened x for axis=None, as numpy), y_i = x[perm_i];
    grad_x = grad_out put back through the permutation, grad_x[perm_i] = grad_out_i (ties: each element
    keeps its own gradient)"""
    saves = ("order",)   # the permutation, computed here
    float_only = False

    def forward(self, x, axis=-1, descending=False):
        self.in_shape = x.shape
        if axis is None:
            x, axis = x.reshape(-1), 0
        (self.axis,) = normalize_axis("sort", axis, x.ndim)
        self.order = sort_indices(x, self.axis, descending)
        return np.take_along_axis(x, self.order, self.axis)

    def backward(self, grad_out):
        grad = np.empty_like(grad_out)
        np.put_along_axis(grad, self.order, grad_out, self.axis)   # a permutation: no repeats
        return (grad.reshape(self.in_shape),)


class ArgSort(Constant):
    """y = argsort(x, axis): the indices that sort x along axis (stable, the flattened x for axis=None);
    grad_x = 0: indices do not require grad"""

    def forward(self, x, axis=-1, descending=False):
        if axis is None:
            x, axis = x.reshape(-1), 0
        (axis,) = normalize_axis("argsort", axis, x.ndim)
        return sort_indices(x, axis, descending)


class ArgMax(Constant):
    """y = argmax(x, axis): the index of the largest element (the first of ties, a NaN if there is
    one, as numpy and torch, the flat index for axis=None);  grad_x = 0: indices do not require grad"""
    find = staticmethod(np.argmax)

    def forward(self, x, axis=None, keepdims=False):
        name = type(self).__name__.lower()
        if axis is not None:
            (axis,) = normalize_axis(name, axis, x.ndim)
        if (x.shape[axis] if axis is not None else x.size) == 0:
            raise ValueError(f"{name}: an empty axis of shape {x.shape} has no {name[3:]}imum")
        out = self.find(x, axis=axis)
        if keepdims:
            out = np.expand_dims(out, tuple(range(x.ndim)) if axis is None else axis)
        return np.asarray(out, dtype=np.int64)


class ArgMin(ArgMax):
    """y = argmin(x, axis): the index of the smallest element (the first of ties, a NaN if there is
    one);  grad_x = 0: indices do not require grad"""
    find = staticmethod(np.argmin)


class OneHot(Constant):
    """y[..., c] = 1 if indices[...] == c else 0, int64 of shape indices.shape + (num_classes,)
    (num_classes=-1: max(indices) + 1, as torch);  grad_indices = 0: integers, the result does not require grad"""

    def forward(self, indices, num_classes=-1):
        indices = _index_array("one_hot", indices)
        if indices.size and indices.min() < 0:
            raise ValueError(f"one_hot: class indices must be >= 0; got {indices.min()}")
        if num_classes == -1:
            if not indices.size:
                raise ValueError("one_hot: cannot infer num_classes from empty indices; pass num_classes")
            num_classes = int(indices.max()) + 1
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"one_hot: num_classes must be a positive int or -1; got {num_classes!r}")
        if indices.size and indices.max() >= num_classes:
            raise ValueError(f"one_hot: class index {indices.max()} is out of range for num_classes={num_classes} "
                             f"(indices must lie in [0, {num_classes - 1}])")
        return (indices[..., None] == np.arange(num_classes)).astype(np.int64)


def gather(x, dim: int, index):
    """torch.gather(x, dim, index): take_along_axis after cutting x down to index's size along
    the other axes (torch allows an index smaller than x there)."""
    index = _index_array("gather", index)
    shape = np.shape(x.data if isinstance(x, Function.tensor_type) else x)
    if index.ndim != len(shape):
        raise ValueError(f"gather: index must have as many dimensions as the input ({len(shape)}, shape "
                         f"{shape}); got shape {index.shape}")
    (axis,) = normalize_axis("gather", dim, len(shape))
    others = [(n, shape[i]) for i, n in enumerate(index.shape) if i != axis]
    if any(n > m for n, m in others):
        raise ValueError(f"gather: index of shape {index.shape} is larger than the input {shape} outside dim {dim}")
    if any(n < m for n, m in others):
        x = GetItem.apply(x, index=tuple(slice(None) if i == axis else slice(n) for i, n in enumerate(index.shape)))
    return TakeAlongAxis.apply(x, indices=index, axis=axis)


def topk(x, k: int, axis: int = -1, largest: bool = True) -> tuple:
    """(values, int64 indices) of the k largest (or smallest) elements along axis, sorted, stable."""
    data = x.data if isinstance(x, Function.tensor_type) else np.asarray(x)
    if data.ndim == 0:
        raise ValueError("topk: needs a tensor with at least 1 dimension; got a 0-d one")
    (ax,) = normalize_axis("topk", axis, data.ndim)
    n = data.shape[ax]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be an int in [0, {n}] (the size of axis {axis}); got {k!r}")
    order = np.take(sort_indices(data, ax, descending=largest), np.arange(k), axis=ax).astype(np.int64)
    return TakeAlongAxis.apply(x, indices=order, axis=ax), Function.tensor_type(order)
