"""Shared by the tests/nn tests: gradcheck a module with respect to its input AND its
parameters.

gradcheck hands fn fresh copies of the inputs, so checking a Parameter means running
the module with those copies in place of its own parameters (torch.func.functional_call
does the same). `call_with` swaps them in for one call and always swaps them back.
"""
from __future__ import annotations

from typing import Any, Callable

from tinygrad_vg import Tensor
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.nn import Module


def parameter_slots(module: Module) -> list[tuple[Module, str]]:
    """(owner, attribute name) of each parameter, in named_parameters() order."""
    return [(owner, name) for _, owner in module.named_modules() for name in owner._parameters]


def call_with(module: Module, params: list[Tensor], run: Callable[..., Any], *args: Any) -> Any:
    """run(*args) with module's parameters replaced, for this call only, by `params`."""
    slots = parameter_slots(module)
    assert len(slots) == len(params), (len(slots), len(params))
    originals = [owner._parameters[name] for owner, name in slots]
    try:
        for (owner, name), p in zip(slots, params):
            object.__setattr__(owner, name, p)
        return run(*args)
    finally:
        for (owner, name), p in zip(slots, originals):
            object.__setattr__(owner, name, p)


def gradcheck_module(module: Module, inputs: list[Any],
                     call: Callable[..., Tensor] = lambda module, *inputs: module(*inputs),
                     **options: Any) -> bool:
    """gradcheck of call(module, *inputs) with respect to every input and every parameter.

    The module must be float64. `call` runs the module and combines what it returns into
    one tensor (an LSTM returns (output, (h_n, c_n))); by default it is module(*inputs).
    """
    params = list(module.parameters())
    n_inputs = len(inputs)

    def fn(*tensors: Tensor) -> Tensor:
        params_now = list(tensors[n_inputs:])
        return call_with(module, params_now, lambda *xs: call(module, *xs), *tensors[:n_inputs])

    return gradcheck(fn, [*inputs, *params], **options)
