"""Tensor: one numpy array, its gradient, and the node that made it.

Design: a Tensor is deliberately thin. Arithmetic and math methods are explicit
one-liners that call an op's `apply` (see tinygrad_vg/ops/), so an IDE or a learner
can follow `x.tanh()` straight to `class Tanh` and its forward/backward.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np

from . import autograd

__all__ = ["Tensor", "tensor"]


def _check_array(data: Any, dtype: Any) -> np.ndarray:
    array = np.asarray(data, dtype=dtype)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"Tensor holds float, integer or bool arrays; got dtype {array.dtype} "
                        f"(from {type(data).__name__}). Accepted float dtypes: float32, float64")
    if array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        raise TypeError(f"Tensor float dtype must be float32 or float64, got {array.dtype}")
    return array


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    >>> x = Tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4.])
    """

    __slots__ = ("data", "grad", "node", "name", "_requires_grad", "_hooks", "_post_hooks", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None   # numpy defers to Tensor's reflected operators: array + tensor -> Tensor

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        self.data = _check_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.node: autograd.Function | None = None
        self.name = name
        self._requires_grad = False
        self._hooks: list | tuple = ()
        self._post_hooks: list | tuple = ()
        self.requires_grad = requires_grad

    @classmethod
    def _from_op(cls, data: np.ndarray) -> Tensor:
        t = cls.__new__(cls)
        t.data = data
        t.grad = t.node = t.name = None
        t._requires_grad = False
        t._hooks = t._post_hooks = ()
        return t

    # ----- gradient bookkeeping -------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only float tensors can require grad; this tensor has dtype "
                            f"{self.data.dtype}. Create it with dtype=np.float64 or np.float32")
        if not flag and self.node is not None:
            raise RuntimeError("cannot set requires_grad=False on a non-leaf tensor; use .detach()")
        self._requires_grad = bool(flag)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        self.requires_grad = flag
        return self

    @property
    def is_leaf(self) -> bool:
        return self.node is None

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into every leaf that requires grad.

        `grad` is the upstream gradient dL/dself; it may be omitted only for a
        one-element tensor (then it is 1). The graph is freed afterwards unless
        retain_graph=True.
        """
        if not self._requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad: no "
                               "input of the computation had requires_grad=True (or it ran under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient works only for a one-element "
                                   f"tensor; this one has shape {self.shape}. Pass grad= of that shape "
                                   "or reduce first, e.g. loss.sum().backward()")
            grad = np.ones_like(self.data)
        else:
            # a copy: the seed flows into the gradients and must not alias the caller's array
            grad = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype, copy=True)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward(grad=...) needs a gradient of shape {self.shape} "
                                 f"(the tensor's shape); got shape {grad.shape}")
        autograd.backward(self, grad, retain_graph=retain_graph)

    def _accumulate(self, grad: np.ndarray, owned: bool = False) -> None:
        # The stored gradient is always an array of our dtype that aliases no other: a copy,
        # unless the engine found that nobody else holds `grad` (owned=True, see
        # autograd._PRIVATE_REFS) and it is a whole, writeable array: then it is kept as is.
        if self.grad is None:
            if (owned and type(grad) is np.ndarray and grad.base is None and grad.dtype == self.data.dtype
                    and grad.flags.writeable):
                self.grad = grad
            else:
                self.grad = np.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad = self.grad + grad.astype(self.data.dtype, copy=False)

    def register_hook(self, hook: Callable[[np.ndarray], Any]) -> autograd.RemovableHandle:
        """Call hook(grad) when this tensor's gradient is computed; a returned array replaces it."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self.node is None:
            if not isinstance(self._hooks, list):
                self._hooks = []
            hooks = self._hooks
        else:
            if not isinstance(self.node.hooks, list):
                self.node.hooks = []
            hooks = self.node.hooks
        hooks.append(hook)
        return autograd.RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> autograd.RemovableHandle:
        """Call hook(tensor) in backward, once this leaf's .grad has its complete gradient
        (torch's hook of the same name). The hook may update .data and reset .grad, which
        is how an optimizer steps inside backward (Optimizer.step_in_backward)."""
        if self.node is not None:
            raise RuntimeError("post-accumulate-grad hooks can only be registered on leaf tensors "
                               "(parameters, inputs); this tensor was made by "
                               f"{self.node.name}")
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook needs a callable, got "
                            f"{type(hook).__name__}")
        if not isinstance(self._post_hooks, list):
            self._post_hooks = []
        self._post_hooks.append(hook)
        return autograd.RemovableHandle(self._post_hooks, hook)

    def retain_grad(self) -> None:
        """Keep .grad on this non-leaf tensor after backward (leaves always keep it)."""
        if self.node is not None:
            self.node.retained = weakref.ref(self)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory, like torch.detach)."""
        return Tensor._from_op(self.data)

    # ----- numpy interop --------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def numpy(self) -> np.ndarray:
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy:   # numpy 2 asks for a copy through this argument (np.array(t))
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype)

    def item(self) -> Any:
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __repr__(self) -> str:
        extra = ""
        if self.node is not None:
            extra = f", node={self.node.name}"
        elif self._requires_grad:
            extra = ", requires_grad=True"
        if self.name:
            extra += f", name={self.name!r}"
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.data.dtype}{extra})"

    __hash__ = object.__hash__

    # ----- arithmetic (ops.elementwise) ------------------------------------------
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

    # comparisons are not differentiable: they return bool tensors
    def _compare(self, other: Any, fn: Callable) -> Tensor:
        return Tensor(fn(self.data, other.data if isinstance(other, Tensor) else other))

    def __eq__(self, other: Any) -> Tensor: return self._compare(other, np.equal)  # type: ignore[override]
    def __ne__(self, other: Any) -> Tensor: return self._compare(other, np.not_equal)  # type: ignore[override]
    def __lt__(self, other: Any) -> Tensor: return self._compare(other, np.less)
    def __le__(self, other: Any) -> Tensor: return self._compare(other, np.less_equal)
    def __gt__(self, other: Any) -> Tensor: return self._compare(other, np.greater)
    def __ge__(self, other: Any) -> Tensor: return self._compare(other, np.greater_equal)

    # ----- math ------------------------------------------------------------------
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

    # ----- reductions (ops.reduce) -------------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        return ops.Var.apply(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    # ----- shape (ops.shape) ---------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=shape)

    def flatten(self) -> Tensor:
        return self.reshape(-1)

    def transpose(self, *axes: Any) -> Tensor:
        """numpy semantics: no axes reverses them; otherwise a full permutation."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Transpose.apply(self, axes=axes or None)

    def permute(self, *axes: Any) -> Tensor:
        return self.transpose(*axes)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        order = list(range(self.ndim))
        order[axis1], order[axis2] = order[axis2], order[axis1]
        return ops.Transpose.apply(self, axes=tuple(order))

    @property
    def T(self) -> Tensor:
        return ops.Transpose.apply(self, axes=None)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=index)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> Tensor:
    """Create a Tensor (like torch.tensor)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


from . import ops  # noqa: E402  (ops import Tensor through autograd)
