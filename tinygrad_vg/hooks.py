"""Gradient hooks, checked: what a hook hands back must fit the gradient it replaces.

- `Tensor.register_hook(fn)`: fn(grad) runs when the tensor's gradient is computed; a
  returned array replaces it. It must have the gradient's shape and dtype (PyTorch's
  "hook has changed the size of value"): anything else raises, naming the hook.
- `Tensor.register_post_accumulate_grad_hook(fn)`: fn(tensor) runs once a leaf's .grad
  holds its complete gradient. `LastUse` is how backward knows when that is: it counts
  the uses of each hooked leaf in the graph, and backward delivers the leaf's gradient
  as soon as the last node using it is done (an optimizer step in backward then updates
  a parameter while its gradient is in cache, and gradients need not all be held at once).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["RemovableHandle", "run_hooks", "add_post_hook", "run_post_hooks", "LastUse"]


class RemovableHandle:
    """Returned by register_hook; `handle.remove()` unregisters the hook."""

    def __init__(self, hooks: list, hook: Callable) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _name(hook: Callable) -> str:
    return getattr(hook, "__qualname__", None) or type(hook).__name__


def run_hooks(hooks: Any, grad: np.ndarray, where: str) -> np.ndarray:
    """Call each hook on a read-only view of grad; a result that is not None replaces grad
    and must have its shape and dtype. `where` names the tensor in errors."""
    for hook in tuple(hooks):   # a copy: a hook may remove itself
        view = grad.view()
        view.flags.writeable = False   # the array may be shared: a hook returns a new one instead
        new = hook(view)
        if new is None:
            continue
        new = np.asarray(getattr(new, "data", new))
        if new.shape != grad.shape or new.dtype != grad.dtype:
            raise RuntimeError(
                f"hook {_name(hook)!r} on {where} returned an array of shape {new.shape} and dtype "
                f"{new.dtype}; a hook must return None or an array of the gradient's shape "
                f"{grad.shape} and dtype {grad.dtype}")
        grad = new
    return grad


def add_post_hook(t: Any, hook: Callable) -> RemovableHandle:
    """Tensor.register_post_accumulate_grad_hook: on a leaf that requires grad, a callable."""
    if t.node is not None:
        raise RuntimeError("post-accumulate-grad hooks can only be registered on leaf tensors "
                           f"(parameters, inputs); this tensor was made by {t.node.name}")
    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that does not require grad")
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook needs a callable, got {type(hook).__name__}")
    global registered
    registered = True
    if not isinstance(t._post_hooks, list):
        t._post_hooks = []
    t._post_hooks.append(hook)
    return RemovableHandle(t._post_hooks, hook)


def run_post_hooks(t: Any) -> None:
    for hook in tuple(t._post_hooks):   # a copy: a hook may remove itself
        result = hook(t)
        if result is not None:
            raise RuntimeError(f"post-accumulate-grad hook {_name(hook)!r} must return None (it may "
                               "change the tensor's .data and .grad in place); it returned a "
                               f"{type(result).__name__}")


registered = False   # has any post-accumulate hook been registered? (LastUse.of skips its scan)


class LastUse:
    """Counts down the uses of the leaves that have post-accumulate hooks."""

    def __init__(self, nodes: list) -> None:
        self.left: dict[int, int] = {}
        for node in nodes:
            for t in node.inputs:
                if t.node is None and t._post_hooks:
                    self.left[id(t)] = self.left.get(id(t), 0) + 1

    @classmethod
    def of(cls, nodes: list) -> LastUse | None:
        """None when no leaf of the graph has post-accumulate hooks, or when the graph has
        a checkpoint (its interior is found only in backward: leaves are delivered at the end)."""
        if not registered:
            return None
        last = cls(nodes)
        if not last.left or any(node.expand is not None for node in nodes):
            return None
        return last

    def done(self, node: Any) -> list[int]:
        """The ids of the hooked leaves whose last use was `node`."""
        finished = []
        for t in node.inputs:
            key = id(t)
            if key in self.left:
                self.left[key] -= 1
                if not self.left[key]:
                    del self.left[key]
                    finished.append(key)
        return finished
