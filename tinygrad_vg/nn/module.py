"""Module: a container of parameters and sub-modules, as torch.nn.Module.

Design: parameters and sub-modules register themselves by attribute assignment
(`self.linear = Linear(3, 4)`), so dotted names (`blocks.0.linear.weight`) come
from the attribute path, and `state_dict()` is a plain dict of numpy arrays that
a converted torch state dict matches key for key.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator

import numpy as np

from ..hooks import RemovableHandle
from ..tensor import Tensor

__all__ = ["Parameter", "Module", "Sequential", "ModuleList"]


class Parameter(Tensor):
    """A leaf tensor that a Module owns and an optimizer updates (requires_grad=True)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None, name: str | None = None) -> None:
        # a copy: optimizers update parameters in place and must not write into the caller's array
        super().__init__(np.array(data.data if isinstance(data, Tensor) else data, dtype=dtype, copy=True),
                         requires_grad=requires_grad, name=name)
        if self.data.dtype.kind != "f":
            raise TypeError(f"Parameter needs a float array, got dtype {self.data.dtype}")

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


# How many times any module's structure has changed (an attribute set or deleted, a buffer
# registered, a hook added or removed): what a module caches about its own structure is
# valid while this number is unchanged (DeepMLP keeps its fused stack's arguments so).
edits = [0]


class _ModuleHandle(RemovableHandle):
    def remove(self) -> None:
        edits[0] += 1
        super().remove()


class Module:
    """Base class of every layer. Subclasses set parameters/sub-modules in __init__ and define forward."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", [])
        object.__setattr__(self, "_backward_hooks", [])
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before assigning attributes")
        # as torch: a name re-assigned with the same kind keeps its place (so state_dict
        # order is stable), and an array assigned to a buffer's name stays a buffer
        if isinstance(value, Parameter):
            kind = self._parameters
        elif isinstance(value, Module):
            kind = self._modules
        elif name in self._buffers and isinstance(value, (np.ndarray, np.generic)):
            kind = self._buffers
        else:
            kind = None
        for table in (self._parameters, self._modules, self._buffers):
            if table is not kind:
                table.pop(name, None)
        if kind is not None:
            kind[name] = value
        object.__setattr__(self, name, value)
        edits[0] += 1

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """A state array that is not trained (e.g. BatchNorm's running mean); it is in state_dict."""
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before registering buffers")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = array
        object.__setattr__(self, name, array)
        edits[0] += 1

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._modules, self._buffers):
            table.pop(name, None)
        object.__delattr__(self, name)
        edits[0] += 1

    # ----- running --------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        if not (self._forward_hooks or self._backward_hooks):   # the common case: no hooks
            return out
        for hook in self._forward_hooks:
            new = hook(self, args, out)
            if new is not None:
                out = new
        if self._backward_hooks and isinstance(out, Tensor) and out.requires_grad:
            for hook in self._backward_hooks:
                out.register_hook(lambda grad, hook=hook: hook(self, grad))
        return out

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> RemovableHandle:
        """hook(module, inputs, output) runs after forward; a returned value replaces the output."""
        self._forward_hooks.append(hook)
        edits[0] += 1
        return _ModuleHandle(self._forward_hooks, hook)

    def register_backward_hook(self, hook: Callable[[Module, np.ndarray], Any]) -> RemovableHandle:
        """hook(module, grad_output) runs when dL/d(output) of this module is known during
        backward; a returned array replaces that gradient. (The output must be one Tensor.)"""
        self._backward_hooks.append(hook)
        edits[0] += 1
        return _ModuleHandle(self._backward_hooks, hook)

    # ----- parameters and sub-modules ---------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for path, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{path}.{name}" if path else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for path, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{path}.{name}" if path else name), b

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, dtype: Any) -> Module:
        """Convert every parameter and float buffer to dtype (np.float32 or np.float64), in place."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"Module.to: dtype must be float32 or float64, got {dtype}")
        for module in self.modules():
            for name, p in module._parameters.items():
                p.data = p.data.astype(dtype)
                p.grad = None
            for name, b in list(module._buffers.items()):
                if b.dtype.kind == "f":
                    module.register_buffer(name, b.astype(dtype))
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ----- state --------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by dotted name, as copies of their numpy arrays, in torch's
        order: each module's parameters, then its buffers, then its children's."""
        state = {}
        for path, module in self.named_modules():
            prefix = f"{path}." if path else ""
            for name, p in module._parameters.items():
                state[prefix + name] = p.data.copy()
            for name, b in module._buffers.items():
                state[prefix + name] = np.array(b, copy=True)
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into parameters and buffers. Everything is checked before anything
        changes: with strict=True a missing or unexpected key raises KeyError; a shape
        mismatch always raises ValueError naming the key and both shapes."""
        targets: dict[str, tuple[Module, str, bool]] = {}
        for path, module in self.named_modules():
            for name in module._parameters:
                targets[f"{path}.{name}" if path else name] = (module, name, True)
            for name in module._buffers:
                targets[f"{path}.{name}" if path else name] = (module, name, False)
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        new_values = {}
        for key, value in state.items():
            if key not in targets:
                continue
            module, name, is_param = targets[key]
            current = module._parameters[name].data if is_param else module._buffers[name]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.shape != current.shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {array.shape} in the state "
                                 f"dict but {current.shape} in the model")
            if array.dtype.kind not in "fiub":
                raise TypeError(f"load_state_dict: {key!r} has dtype {array.dtype}; need a numeric array")
            new_values[key] = array.astype(current.dtype, copy=True)
        for key, array in new_values.items():
            module, name, is_param = targets[key]
            if is_param:
                module._parameters[name].data = array
            else:
                module.register_buffer(name, array)

    # ----- display --------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules named 0, 1, 2, ... (so state-dict keys read blocks.0.linear.weight)."""

    def __init__(self, modules: Any = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after another: Sequential(Linear(3, 4), Tanh(), Linear(4, 1))."""

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x
