"""The tape: what a recorded operation keeps, and how backward walks the graph.

Design:
- Every differentiable operation is a `Function` instance: a node, numbered in execution
  order when it is recorded (Tensor._op), so its inputs come from smaller numbers.
- References point one way: tensor -> node -> its inputs, a leaf as the Tensor itself
  (where its gradient accumulates), an input made by another node as an `Edge` (shape
  and dtype, not data). No cycles: memory returns by reference counting.
- `backward` is one walk (`walk`): collect the graph without recursion, visit it in
  reverse order, call each node's backward, undo broadcasting (once, for every op), add
  into the inputs' slots, free. The rest attaches at named points, each in its own module:
  a checkpoint `expand`s into its recomputed interior (checkpoint.py), a hooked leaf's last
  use delivers its gradient (hooks.LastUse), saved arrays stay locked until release
  (locking.py), a gradient nobody else holds becomes .grad uncopied (ownership.py).
  explain.py and graph.py read the same walk with hooks off and nothing freed.
"""
from __future__ import annotations

import itertools
import threading
from operator import attrgetter
from typing import Any, Iterator

import numpy as np

from . import ownership
from .grad_mode import check_finite, state
from .hooks import LastUse, run_hooks, run_post_hooks

__all__ = ["Function", "Edge", "backward", "walk", "collect", "tape", "reduce_to_shape"]

sequence = itertools.count()
_grad_mutex = threading.RLock()   # .grad of a leaf shared by backward passes in several threads


class Edge:
    """What a node keeps of an input made by another node: that node, and the input's shape,
    dtype and name as they were when recorded. Enough to route the gradient back."""

    __slots__ = ("node", "shape", "dtype", "name")
    requires_grad = True   # only a tensor that requires grad is made by a recorded node

    def __init__(self, t: Any) -> None:
        self.node, self.shape, self.dtype, self.name = t.node, t._data.shape, t._data.dtype, t.name

    def __repr__(self) -> str: return f"<Edge from {self.node!r}: shape {self.shape}, {self.dtype}>"


class Function:
    """One recorded operation (a node of the tape).

    Subclasses define `forward(self, *arrays, **params) -> array`, storing on `self` what
    backward needs (and naming it in `saves`), and `backward(self, grad_out) -> tuple`: one
    gradient per input, None for an input that needs none. Both work on numpy arrays; a
    gradient may have the broadcast shape: the engine reduces it to the input's shape.
    """

    tensor_type: Any = None    # Tensor, registered by tensor.py: ops need not import it
    float_only = True          # ops that make no sense on integers refuse them (TypeError)
    saves: tuple | None = None   # attributes backward reads (None: every array attribute)
    recorded = False           # set by apply before forward: will this node be on the tape?
    hooks: Any = ()            # hooks of the output tensor (Tensor.register_hook)
    retained = None            # weakref to the output tensor after Tensor.retain_grad()
    last_backward = False      # set by the walk: backward may free saved arrays as it goes
    expand = None              # a checkpoint's method: walk its recomputed interior instead
    lock = None                # the locking.Lock on the arrays this node saved

    seq: int                   # set when the node is recorded, as are the two below
    inputs: tuple | None       # per input: the Tensor if it is a leaf, else an Edge
    needs_grad: tuple

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray: raise NotImplementedError
    def backward(self, grad_out: np.ndarray) -> tuple: raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        """Run the op on tensors (numbers and arrays become constants); record it if needed."""
        return Function.tensor_type._op(cls, inputs, params)

    @property
    def name(self) -> str:
        return type(self).__name__

    def saved_arrays(self) -> dict[str, np.ndarray]:
        """What this node keeps for backward (the arrays named in `saves`, or all of them)."""
        items = vars(self).items() if self.saves is None else ((k, getattr(self, k)) for k in self.saves)
        return {k: v for k, v in items if isinstance(v, np.ndarray)}

    def arrays_to_lock(self) -> Any:
        """The arrays an in-place change must not touch before backward (locking.py)."""
        return self.saved_arrays().values() if self.saves is None else [getattr(self, k) for k in self.saves]

    def release(self) -> None:
        """Drop inputs and saved arrays (and the lock on them); a later backward through it raises."""
        seq = self.seq
        self.__dict__.clear()
        self.seq, self.inputs = seq, None

    def __repr__(self) -> str:
        return f"<{self.name} node #{getattr(self, 'seq', '?')}>"


def reduce_to_shape(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Undo broadcasting: sum grad over the axes that forward broadcast to reach its shape."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1) if extra >= 0 else ()
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"a gradient of shape {grad.shape} does not broadcast to shape {shape}")
    return grad


def collect(root: Function, stop: int = -1) -> list[Function]:
    """The nodes reachable from root, in execution (sequence) order, without recursion;
    nodes numbered below `stop` are left out (a checkpoint's interior stops at its inputs)."""
    seen, stack, nodes = {root}, [root], []
    while stack:
        node = stack.pop()
        if node.inputs is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time: node {node.name} #{node.seq} "
                "has already freed its saved values. Pass retain_graph=True to the first "
                "backward() if you need to backward twice.")
        nodes.append(node)
        for t in node.inputs:
            if t.node is not None and t.node not in seen and t.node.seq >= stop:
                seen.add(t.node)
                stack.append(t.node)
    nodes.sort(key=attrgetter("seq"))
    return nodes


def tape(tensor: Any) -> list[Function]:
    """The recorded nodes that produced `tensor`, in the order they were executed."""
    return [] if tensor.node is None else collect(tensor.node)


def walk(nodes: list, grads: dict, leaves: dict, free: bool = False, hooks: bool = True) -> Iterator[tuple]:
    """Visit `nodes` (execution order; consumed) newest first, each once its gradient is
    complete; yield (node, grad_out, per-input gradients). `grads` holds the gradient
    waiting at each node (the root's seed to begin with), `leaves` each leaf's sum so far
    (id -> [leaf, gradient]). hooks=False: the read-only replay (explain.py)."""
    pending = [nodes]   # node lists, innermost last: a checkpoint pushes its interior
    while pending:
        if not pending[-1]:
            pending.pop()
            continue
        node = pending[-1].pop()
        grad_out = grads.pop(node, None)   # dropped as soon as it is used
        if grad_out is None:
            continue                       # no use of its output needed a gradient
        if hooks and node.hooks:
            grad_out = run_hooks(node.hooks, grad_out, f"the output of {node.name} #{node.seq}")
        if node.expand is not None:
            pending.append(node.expand(grad_out, grads))
            yield node, grad_out, ()
            continue
        node.last_backward = free
        input_grads = _checked(node, node.backward(grad_out))
        for t, g in zip(node.inputs, input_grads):
            if g is None:
                continue
            if t.node is not None:         # into the slot of the node that made t
                grads[t.node] = g if t.node not in grads else grads[t.node] + g
            elif id(t) in leaves:          # into a leaf's sum
                leaves[id(t)][1] = leaves[id(t)][1] + g
            else:
                leaves[id(t)] = [t, g]
        g = None   # the generator's frame holds no leaf's gradient while suspended (ownership.py)
        yield node, grad_out, input_grads


def _checked(node: Function, result: Any) -> list:
    """What node.backward returned, checked: one entry per input, each None or an array that
    broadcasts to that input, reduced to its shape and cast to its dtype."""
    n = len(node.inputs)
    if isinstance(result, np.ndarray) and n == 1:
        result = (result,)
    elif isinstance(result, (tuple, list)) and len(result) > n and all(g is None for g in result[n:]):
        result = result[:n]   # a trailing None for an optional input that was not given (a bias)
    if not isinstance(result, (tuple, list)) or len(result) != n:
        got = f"{len(result)} entries" if isinstance(result, (tuple, list)) else f"a {type(result).__name__}"
        raise RuntimeError(f"{node.name}.backward returned {got}; it must return a tuple with one "
                           f"gradient per input ({n}), None for an input that needs none")
    anomaly, grads = state.anomaly, []
    for t, needs, g in zip(node.inputs, node.needs_grad, result):
        if g is None or not needs:
            g = None
        elif type(g) is not np.ndarray or g.shape != t.shape or g.dtype != t.dtype:
            g = _fit(node, len(grads), t, g)
        if anomaly and g is not None:
            check_finite(g, f"backward of {node.name} (node #{node.seq})")
        grads.append(g)
    return grads


def _fit(node: Function, i: int, t: Any, g: Any) -> np.ndarray:
    """Input i's gradient brought to its shape (undoing broadcasting) and dtype, or an error."""
    g = np.asarray(g)   # a numpy scalar (0-d arithmetic), or a user's list
    if g.shape != t.shape:
        node.reduced_from = {**getattr(node, "reduced_from", {}), i: g.shape}   # for explain.py
        try:
            g = reduce_to_shape(g, t.shape)
        except ValueError:
            raise RuntimeError(f"{node.name}.backward returned a gradient of shape {g.shape} for input {i} "
                               f"of shape {t.shape}; it must have that shape or one that broadcasts to it") from None
    if g.dtype.kind not in "fiub":
        raise TypeError(f"{node.name}.backward returned a gradient of dtype {g.dtype} for input {i}")
    return g if g.dtype == t.dtype else g.astype(t.dtype)


def backward(root: Any, seed: np.ndarray, retain_graph: bool = False) -> None:
    """Add d(root)/d(leaf) * seed into the .grad of every leaf that requires grad."""
    leaves: dict[int, list] = {}     # id -> [leaf, its summed gradient]
    if root.node is None:            # a leaf: its gradient is the seed itself
        leaves[id(root)] = [root, seed]
        with _grad_mutex:
            return deliver(leaves, id(root))
    nodes = collect(root.node)
    order, early = list(nodes), LastUse.of(nodes)   # early: None unless a leaf has post hooks
    try:
        for node, grad_out, input_grads in walk(nodes, {root.node: seed}, leaves, free=not retain_graph):
            if node.retained is not None and node.retained() is not None:
                node.retained()._accumulate(grad_out)
            done = early.done(node) if early is not None else ()
            if not retain_graph:
                node.release()
            del input_grads              # this frame holds no leaf's gradient either
            for key in done:
                with _grad_mutex:
                    deliver(leaves, key)
    except BaseException:   # the graph is spent: unlock it, though the traceback may keep it
        for node in order if not retain_graph else ():
            node.release()
        raise
    seed = grad_out = None
    with _grad_mutex:                # .grad of leaves shared with backward in other threads
        for key in reversed(list(leaves)):
            deliver(leaves, key)


def deliver(leaves: dict, key: int) -> None:
    """A leaf's complete gradient: through its hooks, into .grad, then its post-accumulate hooks."""
    t, g = leaves.pop(key)   # popped: the dict no longer holds g (ownership.py)
    if t._hooks:
        g = run_hooks(t._hooks, g, t.name or f"a leaf of shape {t.shape}")
    owned = ownership.PRIVATE > 0 and ownership.refs(g) <= ownership.PRIVATE
    t._accumulate(g, owned)   # under _grad_mutex, held by the caller
    if t._post_hooks:
        run_post_hooks(t)
