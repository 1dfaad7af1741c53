"""Ops that move elements without changing them: reshape, transpose, indexing,
concatenate, stack, where, squeeze/expand_dims, broadcast_to, flip, roll, tile, repeat,
pad, tril/triu. Backward routes grad_out back to where each element came from (summing
where one element went to several places)."""
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


class Squeeze(Function):
    """y = x without the size-1 axes named (all of them for axis=None);  grad_x = grad_out.reshape(x.shape)
    (numpy's rule: naming an axis whose size is not 1 is an error; torch ignores it)"""
    saves = ()
    float_only = False

    def forward(self, x, axis=None):
        self.in_shape = x.shape
        axes = normalize_axis("squeeze", axis, x.ndim) if axis is not None else None
        for ax in axes or ():
            if x.shape[ax] != 1:
                raise ValueError(f"squeeze: axis {ax} of shape {x.shape} has size {x.shape[ax]}, not 1; "
                                 "only size-1 axes can be removed")
        return np.squeeze(x, axis=axes)

    def backward(self, grad_out):
        return (grad_out.reshape(self.in_shape),)


class ExpandDims(Function):
    """y = x with new size-1 axes at `axis` (positions in y, as numpy);  grad_x = grad_out.reshape(x.shape)"""
    saves = ()
    float_only = False

    def forward(self, x, axis):
        self.in_shape = x.shape
        n = len(axis) if isinstance(axis, (tuple, list)) else 1
        return np.expand_dims(x, normalize_axis("expand_dims", axis, x.ndim + n))

    def backward(self, grad_out):
        return (grad_out.reshape(self.in_shape),)


class BroadcastTo(Function):
    """y = x broadcast to shape (numpy rules, -1 keeps x's size there, as torch.expand);
    grad_x = grad_out summed over the broadcast axes (the engine's one helper does it)"""
    saves = ()
    float_only = False

    def forward(self, x, shape):
        shape = tuple(int(n) for n in shape)
        lead = len(shape) - x.ndim
        if lead < 0:
            raise ValueError(f"broadcast_to: shape {shape} has fewer dimensions than the tensor's {x.shape}")
        shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape))
        try:
            return np.broadcast_to(x, shape).copy()   # a writeable array of its own, not a 0-stride view
        except ValueError:
            raise ValueError(f"broadcast_to: a tensor of shape {x.shape} cannot be broadcast to {shape} "
                             "(numpy rules: each axis of size 1 may grow, others must match)") from None

    def backward(self, grad_out):
        return (grad_out,)


class Flip(Function):
    """y = x reversed along the axes (all for axis=None);  grad_x = grad_out reversed along them"""
    saves = ()
    float_only = False

    def forward(self, x, axis=None):
        self.axes = normalize_axis("flip", axis, x.ndim)
        return np.flip(x, self.axes)

    def backward(self, grad_out):
        return (np.flip(grad_out, self.axes),)


class Roll(Function):
    """y = x shifted cyclically by `shift` along axis (the flattened x for axis=None, as numpy);
    grad_x = grad_out rolled back by -shift"""
    saves = ()
    float_only = False

    def forward(self, x, shift, axis=None):
        if axis is not None:
            axes = axis if isinstance(axis, (tuple, list)) else (axis,)
            normalize_axis("roll", tuple(dict.fromkeys(axes)), x.ndim)   # validated; numpy allows repeats
        self.shift = tuple(-int(s) for s in shift) if isinstance(shift, (tuple, list)) else -int(shift)
        self.axis = axis
        try:
            return np.roll(x, shift, axis)
        except ValueError as e:
            raise ValueError(f"roll: shift {shift!r} and axis {axis!r} do not match ({e})") from None

    def backward(self, grad_out):
        return (np.roll(grad_out, self.shift, self.axis),)


class Tile(Function):
    """y = tile(x, reps) (numpy's tile, torch's Tensor.repeat);  grad_x = the sum of grad_out's tiles"""
    saves = ()
    float_only = False

    def forward(self, x, reps):
        reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
        if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0 for r in reps):
            raise ValueError(f"tile: reps must be non-negative ints; got {reps}")
        d = max(x.ndim, len(reps))
        self.in_shape = x.shape
        self.sides = (1,) * (d - x.ndim) + x.shape
        self.reps = (1,) * (d - len(reps)) + reps
        return np.tile(x, reps)

    def backward(self, grad_out):
        pairs = [n for pair in zip(self.reps, self.sides) for n in pair]   # (r0, n0, r1, n1, ...)
        grad = grad_out.reshape(pairs).sum(axis=tuple(range(0, len(pairs), 2)))
        return (grad.reshape(self.in_shape),)


class Repeat(Function):
    """y = repeat(x, repeats, axis): each element `repeats` times in a row (numpy's repeat,
    torch's repeat_interleave, the flattened x for axis=None);  grad_x_i = sum of grad_out over x_i's copies"""
    saves = ("source",)   # which element each output came from, computed here
    float_only = False

    def forward(self, x, repeats, axis=None):
        self.in_shape = x.shape
        if axis is None:
            x, self.axis = x.reshape(-1), 0
        else:
            (self.axis,) = normalize_axis("repeat", axis, x.ndim)
        r = np.asarray(repeats)
        if r.dtype.kind not in "iu" or r.ndim > 1 or (r.size and r.min() < 0):
            raise ValueError("repeat: repeats must be a non-negative int or a 1-d array of them; "
                             f"got {repeats!r}")
        try:
            y = np.repeat(x, r, axis=self.axis)
        except ValueError:
            raise ValueError(f"repeat: {r.size} repeats for an axis of size {x.shape[self.axis]}; "
                             "give one int or one per element") from None
        self.source = np.repeat(np.arange(x.shape[self.axis]), r)   # the element each output came from
        self.moved_shape = (x.shape[self.axis],) + tuple(np.delete(x.shape, self.axis))
        return y

    def backward(self, grad_out):
        grad = np.zeros(self.moved_shape, dtype=grad_out.dtype)
        np.add.at(grad, self.source, np.moveaxis(grad_out, self.axis, 0))
        return (np.moveaxis(grad, 0, self.axis).reshape(self.in_shape),)


PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric",
             "wrap": "wrap", "replicate": "edge", "circular": "wrap"}   # the last two: torch's names


class Pad(Function):
    """y = pad(x, pad_width, mode) (numpy's pad_width: ((before, after), ...) per axis, or one pair,
    or one int, modes constant, edge, reflect, symmetric, wrap, and torch's replicate, circular);
    grad_x_i = sum of grad_out over the places x_i was copied to (the constant padding gets none)"""
    saves = ("source",)   # None for constant mode, else where each output was copied from
    float_only = False

    def forward(self, x, pad_width, mode="constant", constant_values=0):
        if mode not in PAD_MODES:
            raise ValueError(f"pad: mode {mode!r} is not supported; accepted: {', '.join(PAD_MODES)}")
        try:
            widths = np.broadcast_to(np.asarray(pad_width), (x.ndim, 2))
        except ValueError:
            raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of {x.ndim} dimension(s); "
                             "give one (before, after) pair per axis, one pair, or one int") from None
        if widths.dtype.kind not in "iu" or (widths.size and widths.min() < 0):
            raise ValueError(f"pad: pad_width must hold non-negative ints; got {pad_width!r}")
        if np.ndim(constant_values) != 0:
            raise ValueError("pad: constant_values must be one number")
        self.in_shape = x.shape
        mode = PAD_MODES[mode]
        if mode == "constant":
            self.source = None
            self.inner = tuple(slice(int(b), int(b) + n) for (b, _), n in zip(widths, x.shape))
            return np.pad(x, widths, mode="constant", constant_values=constant_values)
        # each output element's source: the padded array of positions says where it was copied from
        try:
            self.source = np.pad(np.arange(x.size).reshape(x.shape), widths, mode=mode)
        except ValueError as e:
            raise ValueError(f"pad: mode {mode!r} with pad_width {pad_width!r} on shape {x.shape}: {e}") from None
        return x.reshape(-1)[self.source]

    def backward(self, grad_out):
        if self.source is None:
            return (grad_out[self.inner],)
        grad = np.zeros(int(np.prod(self.in_shape)), dtype=grad_out.dtype)
        np.add.at(grad, self.source.reshape(-1), grad_out.reshape(-1))
        return (grad.reshape(self.in_shape),)


class Tril(Function):
    """y = x with the elements above the k-th diagonal of the last two axes set to 0 (k > 0: above
    the main one); grad_x = tril(grad_out, k)"""
    saves = ()
    float_only = False
    keep = staticmethod(np.tril)

    def forward(self, x, k=0):
        if x.ndim < 2:
            raise ValueError(f"{type(self).__name__.lower()}: needs at least 2 dimensions (it works on "
                             f"the last two); got shape {x.shape}")
        self.k = int(k)
        return self.keep(x, self.k)

    def backward(self, grad_out):
        return (self.keep(grad_out, self.k),)


class Triu(Tril):
    """y = x with the elements below the k-th diagonal of the last two axes set to 0;  grad_x = triu(grad_out, k)"""
    keep = staticmethod(np.triu)


def flatten(x, start_dim: int = 0, end_dim: int = -1):
    """x with the axes start_dim..end_dim merged into one (torch.flatten; a 0-d x becomes 1-d)."""
    shape = np.shape(x.data if isinstance(x, Function.tensor_type) else x)
    if not shape:
        return Reshape.apply(x, shape=(1,))
    (start,), (end,) = (normalize_axis("flatten", a, len(shape)) for a in (start_dim, end_dim))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {shape}")
    return Reshape.apply(x, shape=shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:])
