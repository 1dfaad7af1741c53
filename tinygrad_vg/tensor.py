"""Tensor: one numpy array, its gradient, and the node that made it.

Design: a Tensor is deliberately thin. Its math methods (tensor_methods.py) are
one-liners that call an op's `apply` (tinygrad_vg/ops/), so an IDE or a learner can
follow `x.tanh()` straight to `class Tanh` and its forward/backward. `Tensor._op` is where a call is recorded on
the tape (autograd.py); ops reach Tensor through `Function.tensor_type`, registered at
the bottom of this module, so imports run one way: tensor -> ops -> autograd.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np

from . import autograd, locking
from .locking import held
from .autograd import Edge, Function
from .convert import as_tensors, check_array
from .grad_mode import check_finite, state
from .hooks import RemovableHandle, add_post_hook
from .tensor_methods import TensorMethods

__all__ = ["Tensor", "tensor"]


class Tensor(TensorMethods):
    """An n-dimensional array that can record the operations applied to it. It shares
    memory with the array it is given (`tg.tensor` copies, like torch.tensor).

    >>> x = Tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4.])
    """

    __slots__ = ("_data", "_grad", "node", "name", "_requires_grad", "_hooks", "_post_hooks", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None   # numpy defers to Tensor's reflected operators: array + tensor -> Tensor

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None) -> None:
        self._data = check_array(data._data if isinstance(data, Tensor) else data, dtype)
        self._grad = self.node = None
        self.name = name
        self._requires_grad = False
        self._hooks = self._post_hooks = ()
        self.requires_grad = requires_grad

    @classmethod
    def _from_op(cls, data: np.ndarray) -> Tensor:
        t = cls.__new__(cls)
        t._data = data
        t._grad = t.node = t.name = None
        t._requires_grad = False
        t._hooks = t._post_hooks = ()
        return t

    @classmethod
    def _op(cls, op: type, inputs: tuple, params: dict) -> Tensor:
        """Run op's forward on the inputs' arrays; record the node when grad mode is on and an
        input requires grad, and lock what it saved until its backward (locking.py)."""
        tensors = as_tensors(inputs, op.__name__)
        arrays = [t._data for t in tensors]
        if op.float_only:
            for a in arrays:
                if a.dtype.kind != "f":
                    raise TypeError(f"{op.__name__} needs float32 or float64 tensors, got dtype "
                                    f"{a.dtype}; convert first, e.g. x.astype(np.float64)")
        fn = op()
        needs_grad = tuple([t._requires_grad for t in tensors])
        fn.recorded = state.grad_enabled and True in needs_grad
        out = fn.forward(*arrays, **params)
        if state.anomaly:
            check_finite(out, f"forward of {op.__name__}")
        if state.reads is not None:   # a checkpoint's function is running: it notes what ops read
            state.reads.seen(arrays, out)
        result = cls._from_op(out)
        if fn.recorded and out.dtype.kind == "f":
            fn.seq = next(autograd.sequence)
            fn.inputs = tuple([t if t.node is None else Edge(t) for t in tensors])
            fn.needs_grad = needs_grad
            result.node, result._requires_grad = fn, True
            fn.lock = locking.lock(fn.arrays_to_lock(), (op.__name__, fn.seq))
        return result

    @property
    def data(self) -> np.ndarray:
        """The array; a read-only view while a recorded node needs it (locking.LockedArray)."""
        a = self._data
        who = locking.locked_by(a) if held else None
        return a if who is None else locking.locked_view(a, self, who)

    @data.setter
    def data(self, value: Any) -> None:
        self._data = check_array(value, None)   # a new array: what a node saved is not changed

    # ----- gradient bookkeeping -------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if flag and self._data.dtype.kind != "f":
            raise TypeError(f"only float tensors can require grad; this tensor has dtype "
                            f"{self._data.dtype}. Create it with dtype=np.float64 or np.float32")
        if not flag and self.node is not None:
            raise RuntimeError("cannot set requires_grad=False on a non-leaf tensor; use .detach()")
        self._requires_grad = bool(flag)

    @property
    def grad(self) -> np.ndarray | None:
        """dL/dself after backward: an array of this tensor's shape and dtype, or None."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None:
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            if value.shape != self._data.shape or value.dtype != self._data.dtype:
                raise ValueError(f"assigned grad of shape {value.shape} and dtype {value.dtype} to "
                                 f"{self.name or 'a tensor'} of shape {self._data.shape} and dtype "
                                 f"{self._data.dtype}; .grad must match both (or be None)")
        self._grad = value

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate this tensor's gradient into every leaf that requires grad. `grad` = dL/dself
        (omitted: 1, for one element). The graph is freed afterwards unless retain_graph=True."""
        if not self._requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad: no "
                               "input of the computation had requires_grad=True (or it ran under no_grad)")
        if grad is None:
            if self._data.size != 1:
                raise RuntimeError(f"backward() without a gradient works only for a one-element "
                                   f"tensor; this one has shape {self.shape}. Pass grad= of that shape "
                                   "or reduce first, e.g. loss.sum().backward()")
            grad = np.ones_like(self._data)
        else:   # a copy: the seed flows into the gradients and must not alias the caller's array
            grad = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=self._data.dtype, copy=True)
            if grad.shape != self._data.shape:
                raise ValueError(f"backward(grad=...) needs a gradient of shape {self.shape} "
                                 f"(the tensor's shape); got shape {grad.shape}")
        autograd.backward(self, grad, retain_graph=retain_graph)

    def _accumulate(self, grad: np.ndarray, owned: bool = False) -> None:
        # .grad never aliases another array: a copy, unless nobody else holds `grad`
        # (owned, see ownership.py) and it is a whole, writeable array of our dtype
        if self._grad is None:
            if (owned and type(grad) is np.ndarray and grad.base is None and grad.dtype == self._data.dtype
                    and grad.flags.writeable):
                self._grad = grad
            else:
                self._grad = np.array(grad, dtype=self._data.dtype, copy=True)
        else:
            self._grad = self._grad + grad.astype(self._data.dtype, copy=False)

    def register_hook(self, hook: Callable[[np.ndarray], Any]) -> RemovableHandle:
        """Call hook(grad) when this tensor's gradient is computed; a returned array of the
        same shape and dtype replaces it."""
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
        return RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> RemovableHandle:
        """Call hook(tensor) in backward once this leaf's .grad is complete (torch's hook of
        the same name); it may update .data and reset .grad (Optimizer.step_in_backward)."""
        return add_post_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep .grad on this non-leaf tensor after backward (leaves always keep it)."""
        if self.node is not None:
            self.node.retained = weakref.ref(self)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory, like torch.detach)."""
        return Tensor._from_op(self._data)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> Tensor:
    """A Tensor holding a copy of data (like torch.tensor; Tensor(array) shares the array)."""
    data = data.data if isinstance(data, Tensor) else data
    return Tensor(np.array(data, dtype=dtype, copy=True), requires_grad=requires_grad, name=name)


Function.tensor_type = Tensor
