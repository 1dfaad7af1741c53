"""Gradient checkpointing: trade compute for memory.

`checkpoint(fn, *inputs)` runs fn without recording its interior: the tape gets one
node that keeps only fn's inputs. When backward reaches that node it runs fn again,
this time recording, and the walk visits the recomputed interior in place of the node
(`Checkpoint.expand`, called by autograd.walk). Gradients are therefore bit for bit those of the plain run,
and the arrays of the interior live only while its own backward runs.

Split a chain of T steps into k segments and checkpoint each: the tape keeps k
segment inputs plus one segment's interior at a time, O(T/k + k) instead of O(T)
(k = sqrt(T) gives O(sqrt(T))), for one extra forward pass.

Parameters used inside fn (a Module's weights) receive their gradients through the
recomputed interior as usual; pass them as `params` when no input requires grad
(the first segment of a net fed with plain data), so that the node is recorded.
fn runs twice: random draws repeat (numpy's global generator, and the Generators passed
as `rng=`, are replayed), but other side effects happen twice (BatchNorm in training
mode updates its running statistics on both runs). numpy's global random state is one
per process: a checkpoint's backward in one thread replays it while other threads may
draw from it (give each thread its own Generator, passed as rng=). Inputs, params and
whatever else fn reads that it did not make (captured tensors and arrays, which
Tensor._op reports while fn runs) are locked against in-place changes until backward.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .autograd import Function, collect
from .grad_mode import enable_grad, no_grad, state
from .tensor import Tensor

__all__ = ["checkpoint", "Checkpoint", "segment_count", "split_evenly"]


class Checkpoint(Function):
    """y = fn(*inputs), interior not recorded;  backward: rerun fn recording, backprop through it"""
    float_only = False

    def forward(self, *arrays, fn, n_inputs, made=(), rngs=()):
        self.fn, self.n_inputs, self.rngs = fn, n_inputs, rngs
        # the node keeps a leaf input as its tensor, but only an Edge to an input made by an op
        # (positions `made`): fn's rerun needs that input's value, so it is saved here
        self.saved_inputs = {i: _own(arrays[i]) for i in made}
        self.random = _random_state(rngs)
        ins = [self.saved_inputs.get(i, a) for i, a in enumerate(arrays[:n_inputs])]
        outer, state.reads = state.reads, _Reads(ins + list(arrays[n_inputs:]))   # locked as inputs
        try:
            with no_grad():
                out = fn(*[Tensor._from_op(a) for a in ins])
        finally:
            reads, state.reads = state.reads, outer
        if outer is not None:   # a checkpoint inside another's function: the outer one reads these too
            outer.seen(list(reads.arrays.values()), None)
        self.reads = list(reads.arrays.values())
        if not isinstance(out, Tensor):
            raise TypeError(f"checkpoint: fn must return one Tensor, got {type(out).__name__}")
        self.out_shape, self.out_dtype = out._data.shape, out._data.dtype
        return out._data

    def arrays_to_lock(self):
        """fn's rerun reads the saved inputs, the leaf inputs and params, and whatever else fn
        read that it did not make (tensors and arrays it captured) as they are then."""
        return [*self.saved_inputs.values(), *(t._data for t in self.inputs if t.node is None), *self.reads]

    def saved_arrays(self) -> dict:
        return {f"input{i}": a for i, a in getattr(self, "saved_inputs", {}).items()}

    def expand(self, grad_out: np.ndarray, grads: dict) -> list:
        """Rerun fn recording, with the random state forward had, on stand-ins of the inputs:
        a leaf input is used as it is, an input made by an op by a tensor of its saved value
        that hangs from the same node, so the interior's gradients flow straight into the
        outer graph. Returns the interior's nodes (the walk visits them next), with grad_out
        waiting at its root; gradients come out bit for bit those of the plain run."""
        stand_ins = []
        for i, t in enumerate(self.inputs[:self.n_inputs]):
            if t.node is not None:
                t, t.node, t._requires_grad = Tensor._from_op(self.saved_inputs[i]), t.node, True
            stand_ins.append(t)
        with _replayed(self.random, self.rngs), enable_grad():
            out = self.fn(*stand_ins)
        if not isinstance(out, Tensor) or out._data.shape != self.out_shape or out._data.dtype != self.out_dtype:
            raise RuntimeError(f"checkpoint: rerunning {_name(self.fn)} in backward gave "
                               f"{_describe(out)} where forward gave shape {self.out_shape}, "
                               f"{self.out_dtype}; fn must compute the same thing both times")
        if not out.requires_grad:
            return []
        if out.node is None or out.node.seq < self.seq:   # fn returned a leaf or an input as it is
            out = _Pass.apply(out)
        grads[out.node] = grad_out
        nodes = collect(out.node, stop=self.seq)
        inputs = {t.node for t in self.inputs if t.node is not None}
        for node in nodes:
            for t in node.inputs:
                if t.node is not None and t.node.seq < self.seq and t.node not in inputs:
                    raise RuntimeError(
                        f"checkpoint: the checkpointed function uses a tensor made outside it (by "
                        f"{t.node.name} node #{t.node.seq}) without taking it as an input; pass it "
                        "to checkpoint(fn, *inputs) as an input")
        return nodes

    def backward(self, grad_out):   # never called: the walk calls expand()
        raise RuntimeError("a checkpoint node is backpropagated through expand()")


class _Reads:
    """The arrays a checkpointed function's ops read that the function did not make itself:
    what its rerun in backward depends on besides its inputs (Tensor._op reports each op)."""

    def __init__(self, inputs: list) -> None:
        self.made = {id(a) for a in inputs}   # the inputs are locked as the node's inputs
        self.arrays: dict[int, np.ndarray] = {}

    def seen(self, arrays: list, out: Any) -> None:
        for a in arrays:
            if id(a) not in self.made:
                self.arrays[id(a)] = a
        if out is not None:
            self.made.add(id(out))


class _Pass(Function):
    """y = x;  grad_x = grad_out"""
    float_only = False
    saves = ()

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return (grad_out,)


def _random_state(rngs: tuple) -> tuple:
    return np.random.get_state(), [g.bit_generator.state for g in rngs]


@contextmanager
def _replayed(random: tuple, rngs: tuple) -> Iterator[None]:
    """numpy's global random state and each Generator's as they were at `random`, then back."""
    now = _random_state(rngs)
    np.random.set_state(random[0])
    for g, past in zip(rngs, random[1]):
        g.bit_generator.state = past
    try:
        yield
    finally:
        np.random.set_state(now[0])
        for g, later in zip(rngs, now[1]):
            g.bit_generator.state = later


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _describe(out: Any) -> str:
    if isinstance(out, Tensor):
        return f"shape {out._data.shape}, {out._data.dtype}"
    return f"a {type(out).__name__}"


def _own(a):
    """a, or a copy of it if it is a contiguous view into a larger array, which it would keep
    alive whole (an RNN's state is a view into its segment's output). Other views are kept as
    they are: a copy would change their memory layout, and so perhaps the last bits of what
    fn computes from them (the gradients must be bit for bit those of the plain run)."""
    if (a.base is not None and (a.flags.c_contiguous or a.flags.f_contiguous)
            and a.nbytes < getattr(a.base, "nbytes", 0)):
        return a.copy(order="K")
    return a


def checkpoint(fn: Callable[..., Tensor], *inputs: Any, params: Iterable[Tensor] = (),
               rng: Any = None) -> Tensor:
    """fn(*inputs) with its interior recomputed during backward instead of stored.

    Returns the same values as fn(*inputs); gradients are identical to the plain run.
    `params`: tensors fn uses besides its inputs (default: fn.parameters() when fn is a
    Module); they make sure the node is recorded even when no input requires grad.
    `rng`: a numpy Generator fn draws from (or a list of them). The rerun sees the random
    state forward saw, for these and for numpy's global generator (np.random.*), so a
    dropout-like fn draws the same numbers twice; the states are put back afterwards.
    """
    if not callable(fn):
        raise TypeError(f"checkpoint: fn must be callable, got {type(fn).__name__}")
    params = list(params) or list(getattr(fn, "parameters", lambda: [])())
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"checkpoint: params must be Tensors, got {type(p).__name__}")
    rngs = () if rng is None else (rng,) if not isinstance(rng, (list, tuple)) else tuple(rng)
    for g in rngs:
        if not isinstance(g, np.random.Generator):
            raise TypeError(f"checkpoint: rng must be a numpy Generator or a list of them, got {type(g).__name__}")
    made = tuple(i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.node is not None)
    return Checkpoint.apply(*inputs, *params, fn=fn, n_inputs=len(inputs), made=made, rngs=rngs)


def segment_count(segments: int | bool | None, length: int) -> int:
    """checkpoint_segments option -> number of segments (0: no checkpointing).
    True means round(sqrt(length)), which stores O(sqrt(length)) activations."""
    if segments is None or segments is False:
        return 0
    if segments is True:
        return max(1, round(length ** 0.5))
    if isinstance(segments, (int, np.integer)) and 1 <= segments:
        return min(int(segments), length)
    raise ValueError(f"checkpoint_segments must be None, True or a positive int; got {segments!r}")


def split_evenly(items: list, parts: int) -> list[list]:
    """items cut into `parts` consecutive runs whose lengths differ by at most one."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + size + (1 if i < extra else 0)
        out.append(items[start:stop])
        start = stop
    return [part for part in out if part]
