"""Gradient checkpointing: trade compute for memory.

`checkpoint(fn, *inputs)` runs fn without recording its interior: the tape gets one
node that keeps only fn's inputs. When backward reaches that node it runs fn again,
this time recording, and walks the recomputed interior in place of the node (see
autograd._backprop). Gradients are therefore bit for bit those of the plain run,
and the arrays of the interior live only while its own backward runs.

Split a chain of T steps into k segments and checkpoint each: the tape keeps k
segment inputs plus one segment's interior at a time, O(T/k + k) instead of O(T)
(k = sqrt(T) gives O(sqrt(T))), for one extra forward pass.

Parameters used inside fn (a Module's weights) receive their gradients through the
recomputed interior as usual; pass them as `params` when no input requires grad
(the first segment of a net fed with plain data), so that the node is recorded.
fn must be deterministic and free of side effects that matter twice: it runs twice
(BatchNorm in training mode updates its running statistics on both runs).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .autograd import Function, enable_grad, no_grad
from .tensor import Tensor

__all__ = ["checkpoint", "Checkpoint"]


class Checkpoint(Function):
    """y = fn(*inputs), interior not recorded;  backward: rerun fn recording, backprop through it"""
    float_only = False

    def forward(self, *arrays, fn, n_inputs, made=()):
        self.fn, self.n_inputs = fn, n_inputs
        # the node keeps a leaf input as its tensor, but only an Edge to an input made by an op
        # (positions `made`): fn's rerun needs that input's value, so it is saved here
        self.saved_inputs = {i: _own(arrays[i]) for i in made}
        with no_grad():
            out = fn(*[Tensor._from_op(a) for a in arrays[:n_inputs]])
        if not isinstance(out, Tensor):
            raise TypeError(f"checkpoint: fn must return one Tensor, got {type(out).__name__}")
        return out.data

    def recompute(self) -> tuple[Tensor, list[Tensor]]:
        """Rerun fn on stand-ins of the inputs, recording; the engine backprops through the result."""
        stand_ins = []
        for i, (t, needs) in enumerate(zip(self.inputs[:self.n_inputs], self.needs_grad)):
            s = Tensor._from_op(t.data if t.node is None else self.saved_inputs[i])
            s._requires_grad = needs
            stand_ins.append(s)
        with enable_grad():
            out = self.fn(*stand_ins)
        return out, stand_ins

    def saved_arrays(self) -> dict:
        return {f"input{i}": a for i, a in getattr(self, "saved_inputs", {}).items()}

    def backward(self, grad_out):   # never called: the engine uses recompute()
        raise RuntimeError("a checkpoint node is backpropagated through recompute()")


def _own(a):
    """a, or a copy of it if it is a contiguous view into a larger array, which it would keep
    alive whole (an RNN's state is a view into its segment's output). Other views are kept as
    they are: a copy would change their memory layout, and so perhaps the last bits of what
    fn computes from them (the gradients must be bit for bit those of the plain run)."""
    if (a.base is not None and (a.flags.c_contiguous or a.flags.f_contiguous)
            and a.nbytes < getattr(a.base, "nbytes", 0)):
        return a.copy(order="K")
    return a


def checkpoint(fn: Callable[..., Tensor], *inputs: Any, params: Iterable[Tensor] = ()) -> Tensor:
    """fn(*inputs) with its interior recomputed during backward instead of stored.

    Returns the same values as fn(*inputs); gradients are identical to the plain run.
    `params`: tensors fn uses besides its inputs (default: fn.parameters() when fn is a
    Module); they make sure the node is recorded even when no input requires grad.
    """
    if not callable(fn):
        raise TypeError(f"checkpoint: fn must be callable, got {type(fn).__name__}")
    params = list(params) or list(getattr(fn, "parameters", lambda: [])())
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"checkpoint: params must be Tensors, got {type(p).__name__}")
    made = tuple(i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.node is not None)
    return Checkpoint.apply(*inputs, *params, fn=fn, n_inputs=len(inputs), made=made)
