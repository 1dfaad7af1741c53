"""The tape: how operations are recorded and how backward walks them.

Design:
- Every differentiable operation is a `Function` instance: a node. Calling
  `SomeOp.apply(*inputs)` runs `forward` on plain numpy arrays and, when grad mode
  is on and an input requires grad, stamps the node with a sequence number and
  links the output tensor to it. Sequence numbers give the execution order: a
  node's inputs always come from nodes with smaller numbers.
- `backward` collects the nodes reachable from the loss with an explicit stack
  (no recursion: a 100,000-step chain is fine), visits them in decreasing
  sequence order, and keeps the gradient of each intermediate in a local dict
  only until its node has used it.
- Broadcasting is undone here, once, for every op (`reduce_to_shape`).
- A leaf's summed gradient becomes its `.grad` without a copy when nothing else holds
  that array (a reference count says so, `_PRIVATE_REFS`); otherwise it is copied, so two
  leaves' gradients never share memory.
- A leaf with post-accumulate-grad hooks gets its gradient, and its hooks run, as soon as
  its last use is processed (an optimizer step in backward then updates the parameter
  while its gradient is in cache); the others get theirs at the end.
- References point one way only: tensor -> node -> what the node keeps of its
  inputs: a leaf input (a parameter, a constant) as the Tensor itself, where its
  gradient accumulates; an input made by another node as an `Edge` to that node,
  with the input's shape and dtype but not its data. So an intermediate array
  lives only while someone holds its tensor or an op saved it for backward (Tanh
  saves its output, Add nothing). A node never refers to its output tensor, so
  there are no cycles and memory is returned by reference counting alone. After
  backward (unless retain_graph=True) each node drops its inputs and saved
  arrays; backward through it again raises.
"""
from __future__ import annotations

import itertools
import sys
import threading
from contextlib import contextmanager
from functools import wraps
from operator import attrgetter
from typing import Any, Callable, Iterator

import numpy as np

__all__ = [
    "Function", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
    "backward", "tape", "reduce_to_shape", "RemovableHandle", "Edge",
]


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False


_state = _ThreadState()
_sequence = itertools.count()


def is_grad_enabled() -> bool:
    """True when operations are being recorded on the tape (per thread)."""
    return _state.grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode for the current thread."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(_state.grad_enabled)
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc: Any) -> None:
        _state.grad_enabled = self._previous.pop()

    def __call__(self, fn: Callable) -> Callable:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        return wrapper


def no_grad() -> _GradMode:
    """Stop recording: `with tg.no_grad(): ...` or `@tg.no_grad()`. Thread-local."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Record again inside a `no_grad` region."""
    return _GradMode(True)


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise FloatingPointError naming the first op whose forward or backward makes NaN/Inf."""
    previous = _state.anomaly
    _state.anomaly = True
    try:
        yield
    finally:
        _state.anomaly = previous


class RemovableHandle:
    """Returned by register_hook; `handle.remove()` unregisters the hook."""

    def __init__(self, hooks: list, hook: Callable) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _check_finite(array: np.ndarray, what: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise FloatingPointError(f"anomaly: {what} produced NaN or Inf")


class Edge:
    """What a node keeps of an input made by another node: the node, and the input's
    shape, dtype and name (as they were when recorded), not its data. Backward needs no
    more to route the gradient: into that node's slot, reduced to this shape and dtype."""

    __slots__ = ("node", "shape", "dtype", "name")
    requires_grad = True   # only a tensor that requires grad is made by a recorded node
    is_leaf = False

    def __init__(self, t: Any) -> None:
        self.node = t.node
        self.shape = t.data.shape
        self.dtype = t.data.dtype
        self.name = t.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __repr__(self) -> str:
        return f"<Edge from {self.node!r}: shape {self.shape}, {self.dtype}>"


class Function:
    """One recorded operation (a node of the tape).

    Subclasses define `forward(self, *arrays, **params) -> array`, storing on `self`
    what backward needs, and `backward(self, grad_out) -> tuple of arrays`, one
    gradient per input (None for an input that needs none). Both work on plain
    numpy arrays; the gradient returned for an input may have the broadcast
    shape: the engine reduces it to the input's shape.
    """

    float_only = True   # ops that make no sense on integers refuse them with a TypeError
    hooks: list | tuple = ()   # gradient hooks of the output tensor (Tensor.register_hook)
    retained = None            # weakref to the output tensor after Tensor.retain_grad()
    last_backward = False      # set by the engine when no retain_graph: backward may free saved arrays
    recompute = None           # set by checkpoint nodes: backward replays their interior

    # set by apply when the node is recorded
    seq: int
    inputs: tuple | None   # per input: the Tensor if it is a leaf, else an Edge to its node
    needs_grad: tuple

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> tuple:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        tensors = as_tensors(inputs, cls.__name__)
        arrays = [t.data for t in tensors]
        if cls.float_only:
            for a in arrays:
                if a.dtype.kind != "f":
                    raise TypeError(
                        f"{cls.__name__} needs float32 or float64 tensors, got dtype "
                        f"{a.dtype}; convert first, e.g. x.astype(np.float64)")
        fn = cls()
        out = fn.forward(*arrays, **params)
        state = _state
        if state.anomaly:
            _check_finite(out, f"forward of {cls.__name__}")
        result = Tensor._from_op(out)
        if state.grad_enabled and out.dtype.kind == "f":
            needs_grad = tuple([t._requires_grad for t in tensors])
            if True in needs_grad:
                fn.seq = next(_sequence)
                fn.inputs = tuple([t if t.node is None else Edge(t) for t in tensors])
                fn.needs_grad = needs_grad
                result.node = fn
                result._requires_grad = True
        return result

    def saved_arrays(self) -> dict[str, np.ndarray]:
        """What this node keeps for backward (its numpy-array attributes)."""
        return {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}

    def release(self) -> None:
        """Drop inputs and saved arrays; a later backward through this node raises."""
        seq = self.seq
        self.__dict__.clear()
        self.seq, self.inputs = seq, None

    def __repr__(self) -> str:
        return f"<{self.name} node #{getattr(self, 'seq', '?')}>"


def as_tensors(values: tuple, op_name: str) -> tuple:
    """Tensors pass through; numpy arrays and Python numbers become constant tensors.

    A Python number takes the float dtype of the tensors it meets, so
    `float32_tensor * 2.0` stays float32, as in PyTorch.
    """
    for v in values:
        if not isinstance(v, Tensor):
            break
    else:   # all tensors (Parameters too): nothing to convert
        return values
    float_dtype = None
    for v in values:
        if isinstance(v, Tensor) and v.data.dtype.kind == "f":
            float_dtype = v.data.dtype
            break
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, (bool, int, float, np.number, np.bool_)):
            # a Python or numpy scalar: no need for Tensor's checks, it is a plain number
            if float_dtype is not None and not isinstance(v, (bool, np.bool_)):
                out.append(Tensor._from_op(np.asarray(v, dtype=float_dtype)))
            else:
                out.append(Tensor(np.asarray(v)))
        elif isinstance(v, (np.ndarray, list, tuple)):
            out.append(Tensor(v))
        else:
            raise TypeError(f"{op_name} got an input of type {type(v).__name__}; accepted: "
                            "Tensor, numpy array, Python int/float")
    return tuple(out)


def reduce_to_shape(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Undo broadcasting: sum grad over the axes that forward broadcast to reach its shape."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        raise RuntimeError(f"internal error: gradient of shape {grad.shape} cannot be "
                           f"reduced to input shape {shape}")
    return grad


def _graph(root: Function, boundary: Function | None = None,
           uses: dict | None = None) -> list[Function]:
    """The nodes reachable from root, in execution (sequence) order. No recursion.
    `boundary`: the checkpoint whose recomputed interior this is; nothing older may be reached.
    `uses`: if given, counts how many times each leaf with post-accumulate hooks is an input."""
    seen = {root}
    stack, nodes = [root], []
    while stack:
        node = stack.pop()
        if node.inputs is None:
            raise RuntimeError(
                f"Trying to backward through the graph a second time: node {node.name} "
                f"#{node.seq} has already freed its saved values. Pass retain_graph=True "
                "to the first backward() if you need to backward twice.")
        nodes.append(node)
        for t in node.inputs:
            parent = t.node
            if parent is None:
                if uses is not None and t._post_hooks:
                    uses[id(t)] = uses.get(id(t), 0) + 1
            elif parent not in seen:
                if boundary is not None and parent.seq < boundary.seq:
                    raise RuntimeError(
                        f"checkpoint: the checkpointed function uses a tensor made outside it (by "
                        f"{parent.name} node #{parent.seq}) without taking it as an input; pass it "
                        "to checkpoint(fn, *inputs) as an input")
                seen.add(parent)
                stack.append(parent)
    nodes.sort(key=attrgetter("seq"))
    return nodes


def tape(tensor: Any) -> list[Function]:
    """The recorded nodes that produced `tensor`, in the order they were executed."""
    return [] if tensor.node is None else _graph(tensor.node)


def _apply_hooks(hooks: list, grad: np.ndarray) -> np.ndarray:
    for hook in tuple(hooks):   # a copy: a hook may remove itself
        view = grad.view()
        view.flags.writeable = False   # the array may be shared: a hook returns a new one instead
        new = hook(view)
        if new is not None:
            grad = np.asarray(new)
    return grad


def backward(root: Any, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) * grad into every leaf that requires grad."""
    if root.node is None:   # a leaf: its gradient is the seed itself
        root._accumulate(_apply_hooks(root._hooks, grad))
        _post_accumulate(root)
        return
    leaves: dict[int, list] = {}     # id -> [tensor, summed gradient]
    _backprop(root.node, grad, leaves, retain_graph)
    del grad   # the seed may have reached a leaf unchanged: this frame no longer holds it
    for key in reversed(list(leaves)):
        _deliver(leaves, key)


def _deliver(leaves: dict, key: int) -> None:
    """Give a leaf its summed gradient (.grad), then call its post-accumulate hooks."""
    t, g = leaves.pop(key)   # popped: the dict no longer counts as a holder of g
    if t._hooks:
        g = _apply_hooks(t._hooks, g)
    # not inside the call below: its arguments would count too
    owned = _PRIVATE_REFS > 0 and _refs(g) <= _PRIVATE_REFS
    t._accumulate(g, owned)
    _post_accumulate(t)


def _post_accumulate(t: Any) -> None:
    for hook in tuple(t._post_hooks):   # a copy: a hook may remove itself
        result = hook(t)
        if result is not None:
            raise RuntimeError("a post-accumulate-grad hook must return None (it may change the "
                               f"tensor's .data and .grad in place); one returned a {type(result).__name__}")


def _refs(a: Any) -> int:
    return sys.getrefcount(a)


def _calibrate() -> int:
    """_refs of an array held by one local variable (the shape of the call in backward), if
    the count is trustworthy: one more holder must show as one more reference."""
    if not hasattr(sys, "getrefcount"):
        return 0
    a = np.empty(0)
    alone = _refs(a)
    holder = [a]
    if _refs(a) != alone + 1 or alone not in (2, 3):   # 2 or 3 on CPython 3.9-3.13
        return 0
    del holder
    return alone


# How many references an array has when only the caller's local variable holds it, counted
# by _refs as backward calls it. A leaf's summed gradient with no more than that (not a view
# either, checked by _accumulate) is held by nobody else: not by another leaf (Add hands one
# array to both inputs), a node, a hook or a view, so the leaf may keep it as .grad without a
# copy. Where the count cannot be trusted (no sys.getrefcount, or an unexpected value, e.g.
# under a tracer that pins frame locals) it is 0 and every gradient is copied.
_PRIVATE_REFS = _calibrate()


def _backprop(root: Function, grad: np.ndarray, leaves: dict, retain_graph: bool,
              redirect: dict | None = None, boundary: Function | None = None) -> None:
    """Walk the graph under root in reverse execution order, sending gradients to inputs.

    A checkpoint node (one with `recompute`) is replaced by its recomputed interior,
    walked by a nested call in the same order the original graph would have been, so
    gradients add up in the same order and come out bit for bit the same. `redirect`
    maps the interior's stand-in leaves back to the checkpoint's real inputs.
    """
    anomaly = _state.anomaly
    grads: dict[Function, np.ndarray] = {root: grad}   # gradient waiting at each node
    # uses left of each leaf with post-accumulate hooks: at 0 its gradient is complete, and it
    # is delivered at once (an optimizer step in backward updates it while it is in cache)
    pending: dict[int, int] | None = {} if boundary is None else None
    nodes = _graph(root, boundary, pending)
    if pending and any(node.recompute is not None for node in nodes):
        pending = None   # checkpoints' interiors are found only in backward: deliver at the end
    for node in reversed(nodes):
        grad_out = grads.pop(node, None)   # released as soon as it is used
        if grad_out is None:
            continue
        if node.hooks:
            grad_out = _apply_hooks(node.hooks, grad_out)
        if node.retained is not None:
            kept = node.retained()
            if kept is not None:
                kept._accumulate(grad_out)
        if node.recompute is not None:
            inner_root, stand_ins = node.recompute()
            # a stand-in's gradient goes where its real input's would (through our own redirect
            # too, when this checkpoint's input is itself a stand-in of an enclosing one)
            inner_redirect = {}
            for s, t in zip(stand_ins, node.inputs):
                inner_redirect[id(s)] = redirect[id(t)] if redirect and id(t) in redirect else (t, grads)
            if inner_root.node is not None:
                _backprop(inner_root.node, grad_out, leaves, False, inner_redirect, boundary=node)
            elif id(inner_root) in inner_redirect:    # fn returned one of its inputs unchanged
                real, target = inner_redirect[id(inner_root)]
                _send(real, grad_out, target, leaves)
            elif inner_root.requires_grad:            # fn returned a leaf (a parameter) itself
                _send(inner_root, grad_out, grads, leaves)
        else:
            if not retain_graph:   # the node is released after this: its backward may free as it goes
                node.last_backward = True
            for t, needs, g in zip(node.inputs, node.needs_grad, node.backward(grad_out)):
                if not needs or g is None:
                    continue
                if g.shape != t.shape:
                    g = reduce_to_shape(g, t.shape)
                if g.dtype != t.dtype:
                    g = g.astype(t.dtype)
                if anomaly:
                    _check_finite(g, f"backward of {node.name} (node #{node.seq})")
                target = grads
                if redirect is not None and id(t) in redirect:
                    t, target = redirect[id(t)]   # a stand-in leaf: the real input is outside
                _send(t, g, target, leaves)
            if pending:
                g = None   # so that this frame does not count as a holder of a leaf's gradient
                for t in node.inputs:
                    key = id(t)
                    if key in pending:
                        pending[key] -= 1
                        if not pending[key] and key in leaves:
                            del pending[key]
                            _deliver(leaves, key)
        if not retain_graph:
            node.release()


def _send(t: Any, g: np.ndarray, grads: dict, leaves: dict) -> None:
    """Add gradient g for input t (an Edge or a leaf): into its node's slot, or into the leaf sums."""
    if t.node is not None:
        node = t.node
        grads[node] = g if node not in grads else grads[node] + g
    else:
        entry = leaves.get(id(t))
        if entry is None:
            leaves[id(t)] = [t, g]
        else:
            entry[1] = entry[1] + g


from .tensor import Tensor  # noqa: E402  (tensor.py imports this module first)
