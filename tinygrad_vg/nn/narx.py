"""NARX recurrent nets (Lin, Horne, Tino & Giles 1996, "Learning long-term dependencies in
NARX recurrent neural networks"): an Elman RNN whose state update also sees the hidden
states of the last D steps, not only the last one.

Shapes: T time steps, N batch, D_in input features, H hidden units, D delays, L layers.

    h_t = f(W_ih x_t + b_ih + sum_{d=1..D} U_d h_{t-d} + b_hh),    f = tanh or relu

The D recurrent matrices are stored side by side as one weight_hh = [U_1 | U_2 | ... | U_D]
of shape (H, D*H), applied to the delay line [h_{t-1}, h_{t-2}, ..., h_{t-D}] (N, D*H),
concatenated along the features. With D = 1 this is exactly torch.nn.RNN: the parameters
carry torch.nn.RNN's names (weight_ih_l0 (H, D_in), weight_hh_l0 (H, D*H), bias_ih_l0,
bias_hh_l0 (H,); layer l > 0 takes layer l-1's h_t as its x_t) and its init
U(-1/sqrt(H), 1/sqrt(H)), so a torch RNN's state dict loads into NARX(delay=1).

Why it helps (Lin et al.): h_{t-D} reaches h_t through one Jacobian, U_D^T diag(f'), so the
gradient of a loss at step T reaches step t through about (T - t) / D Jacobian factors
instead of T - t: about D times fewer decades lost over the same distance, if each factor
shrinks the gradient as an RNN's does. The lab's `narx` experiment (lab/architectures.py)
measures it over T = 1000: with U_d scaled to weight_hh's fan-in D*H the decay per step is
1.1 to 1.4 times the RNN's divided by D (D = 2, 4, 8); with this module's torch init every
U_d keeps the RNN's scale, the D of them feed D times the variance into each step, and the
gradient falls much less still (D = 8: not at all).

Design: built from the engine's ops (Linear, Concatenate, Add, Tanh/Relu, Stack: about five
tape nodes per step); no compiled kernel. The input projection W_ih x_t is one F.linear per
step on x[t], not one GEMM over (T, N, D_in) sliced per step: a slice's backward writes a
zero gradient of the whole sliced array, O(T^2) over a sequence.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .linear import check_dtype
from .module import Module, Parameter

__all__ = ["narx_step", "NARXCell", "NARX"]

NONLINEARITIES = ("tanh", "relu")


def narx_step(x_proj: Tensor, history: Sequence[Tensor], weight_hh: Tensor, bias_hh: Tensor | None,
              nonlinearity: str = "tanh") -> Tensor:
    """h_t = f(x_proj + [h_{t-1} | ... | h_{t-D}] W_hh^T + b_hh), x_proj = W_ih x_t + b_ih (N, H),
    history = [h_{t-1}, ..., h_{t-D}], each (N, H)."""
    past = history[0] if len(history) == 1 else F.concatenate(list(history), axis=-1)
    pre = x_proj + F.linear(past, weight_hh, bias_hh)
    return F.tanh(pre) if nonlinearity == "tanh" else F.relu(pre)


def _positive_int(owner: str, name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {n!r}")
    return int(n)


def _check_nonlinearity(owner: str, nonlinearity: Any) -> str:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{owner}: unknown nonlinearity {nonlinearity!r}; accepted: {', '.join(NONLINEARITIES)}")
    return nonlinearity


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


class NARXCell(Module):
    """One NARX step: h_t = f(W_ih x_t + b_ih + W_hh [h_{t-1} | ... | h_{t-D}] + b_hh).

    weight_ih (H, D_in), weight_hh (H, D*H), bias_ih, bias_hh (H,), ~ U(-1/sqrt(H), 1/sqrt(H)).
    forward(x (N, D_in), history) -> h_t (N, H); history is a list or tuple of the last D
    states [h_{t-1}, h_{t-2}, ..., h_{t-D}], each (N, H), or None for zeros. The next step's
    history is [h_t] + history[:-1]."""

    def __init__(self, input_size: int, hidden_size: int, delay: int = 2, bias: bool = True,
                 nonlinearity: str = "tanh", dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        owner = type(self).__name__
        self.input_size = _positive_int(owner, "input_size", input_size)
        self.hidden_size = _positive_int(owner, "hidden_size", hidden_size)
        self.delay = _positive_int(owner, "delay", delay)
        self.nonlinearity = _check_nonlinearity(owner, nonlinearity)
        self.bias = bool(bias)
        H = self.hidden_size
        self.weight_ih = Parameter(np.empty((H, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((H, self.delay * H), dtype=dtype))
        if self.bias:
            self.bias_ih = Parameter(np.empty(H, dtype=dtype))
            self.bias_hh = Parameter(np.empty(H, dtype=dtype))
        else:
            self.bias_ih = self.bias_hh = None
        _init_uniform(list(self.parameters()), H, init._rng(rng))

    def forward(self, x: Any, history: Sequence[Any] | None = None) -> Tensor:
        owner = type(self).__name__
        x = _as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{owner}: input must have shape (N, {self.input_size}) (batch, input_size); "
                             f"got shape {x.shape}")
        dtype = self.weight_hh.data.dtype
        check_dtype(owner, x, dtype)
        history = _history(owner, history, self.delay, x.shape[0], self.hidden_size, dtype)
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)
        return narx_step(x_proj, history, self.weight_hh, self.bias_hh, self.nonlinearity)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, delay={self.delay}"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s + ("" if self.bias else ", bias=False")


def _init_uniform(params: list[Parameter], hidden_size: int, rng: np.random.Generator) -> None:
    bound = 1.0 / math.sqrt(hidden_size)
    for p in params:
        init.uniform_(p, -bound, bound, rng=rng)


def _history(owner: str, history: Any, delay: int, batch: int, hidden: int, dtype: Any) -> list[Tensor]:
    """The delay line [h_{t-1}, ..., h_{t-D}] as D tensors (N, H); zeros for None."""
    if history is None:
        zero = Tensor(np.zeros((batch, hidden), dtype=dtype))
        return [zero] * delay
    if not isinstance(history, (list, tuple)) or len(history) != delay:
        got = f"a {type(history).__name__} of length {len(history)}" if isinstance(history, (list, tuple)) \
            else f"a {type(history).__name__}"
        raise ValueError(f"{owner}: history must be a list of the last {delay} states [h_(t-1), ..., h_(t-{delay})], "
                         f"each of shape ({batch}, {hidden}), or None; got {got}")
    out = []
    for d, h in enumerate(history, start=1):
        h = _as_tensor(h)
        if h.shape != (batch, hidden):
            raise ValueError(f"{owner}: history[{d - 1}] (h_(t-{d})) must have shape ({batch}, {hidden}) "
                             f"(batch, hidden_size); got shape {h.shape}")
        check_dtype(owner, h, dtype, f"history[{d - 1}]")
        out.append(h)
    return out


class NARX(Module):
    """A NARX recurrent net over a whole sequence (see the module docstring for the equations).

        NARX(input_size, hidden_size, delay=D, num_layers=1, bias=True, nonlinearity="tanh",
             batch_first=False, dtype=np.float32, rng=None)
        forward(x, h0=None) -> (output, h_n)

    x: (T, N, D_in), or (N, T, D_in) with batch_first=True (as torch.nn.RNN).
    h0: None (zeros); (L, N, H): the state before step 0 of each layer, h_{-1}, with the
        older ones h_{-2} .. h_{-D} zero; or (L, D, N, H): the whole delay line,
        h0[l, d-1] = h_{-d}.
    output: the top layer's h_t for every step, (T, N, H) ((N, T, H) with batch_first).
    h_n: the delay line after the last step, (L, D, N, H): h_n[l, d-1] = h_{T-d} of layer
        l (from h0 where T < d); passing it as h0 to the next call continues the sequence
        exactly. With D = 1, h_n[:, 0] is torch.nn.RNN's h_n.
    """

    def __init__(self, input_size: int, hidden_size: int, delay: int = 2, num_layers: int = 1,
                 bias: bool = True, nonlinearity: str = "tanh", batch_first: bool = False,
                 dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        owner = type(self).__name__
        self.input_size = _positive_int(owner, "input_size", input_size)
        self.hidden_size = _positive_int(owner, "hidden_size", hidden_size)
        self.delay = _positive_int(owner, "delay", delay)
        self.num_layers = _positive_int(owner, "num_layers", num_layers)
        self.nonlinearity = _check_nonlinearity(owner, nonlinearity)
        if not isinstance(batch_first, (bool, np.bool_)):
            raise TypeError(f"{owner}: batch_first must be True or False, got {batch_first!r}")
        self.batch_first = bool(batch_first)
        self.bias = bool(bias)
        H = self.hidden_size
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else H
            setattr(self, f"weight_ih_l{layer}", Parameter(np.empty((H, width), dtype=dtype)))
            setattr(self, f"weight_hh_l{layer}", Parameter(np.empty((H, self.delay * H), dtype=dtype)))
            if self.bias:
                setattr(self, f"bias_ih_l{layer}", Parameter(np.empty(H, dtype=dtype)))
                setattr(self, f"bias_hh_l{layer}", Parameter(np.empty(H, dtype=dtype)))
        _init_uniform(list(self.parameters()), H, init._rng(rng))

    def layer_parameters(self, layer: int) -> tuple:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer; biases are None with bias=False."""
        return tuple(getattr(self, f"{name}_l{layer}", None) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def forward(self, x: Any, h0: Any = None) -> tuple[Tensor, Tensor]:
        owner = type(self).__name__
        x = _as_tensor(x)
        letters = "(batch, time, input_size)" if self.batch_first else "(time, batch, input_size)"
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1 if self.batch_first else 0] < 1:
            raise ValueError(f"{owner}: input must have shape {letters} with input_size={self.input_size} "
                             f"and at least one time step; got shape {x.shape}")
        dtype = self.weight_hh_l0.data.dtype
        check_dtype(owner, x, dtype)
        if self.batch_first:
            x = x.transpose(1, 0, 2)
        steps, batch = x.shape[0], x.shape[1]
        lines = self._initial(h0, batch, dtype)
        inputs: list[Tensor] = [x[t] for t in range(steps)]
        finals = []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(layer)
            history, outputs = lines[layer], []
            for x_t in inputs:
                h = narx_step(F.linear(x_t, weight_ih, bias_ih), history, weight_hh, bias_hh, self.nonlinearity)
                outputs.append(h)
                history = [h] + history[:-1]
            finals.append(F.stack(history))
            inputs = outputs
        output = F.stack(inputs)
        if self.batch_first:
            output = output.transpose(1, 0, 2)
        return output, F.stack(finals)

    def _initial(self, h0: Any, batch: int, dtype: Any) -> list[list[Tensor]]:
        """Each layer's delay line [h_{-1}, ..., h_{-D}] as tensors (N, H)."""
        owner, L, D, H = type(self).__name__, self.num_layers, self.delay, self.hidden_size
        zero = Tensor(np.zeros((batch, H), dtype=dtype))
        if h0 is None:
            return [[zero] * D for _ in range(L)]
        h0 = _as_tensor(h0)
        if h0.shape not in ((L, batch, H), (L, D, batch, H)):
            raise ValueError(f"{owner}: h0 must have shape ({L}, {batch}, {H}) (num_layers, batch, hidden_size: "
                             f"h_(-1), older states zero) or ({L}, {D}, {batch}, {H}) (num_layers, delay, batch, "
                             f"hidden_size: the whole delay line); got shape {h0.shape}")
        check_dtype(owner, h0, dtype, "h0")
        if h0.ndim == 3:
            return [[h0[layer]] + [zero] * (D - 1) for layer in range(L)]
        return [[h0[layer, d] for d in range(D)] for layer in range(L)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, delay={self.delay}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.batch_first:
            s += ", batch_first=True"
        return s + ("" if self.bias else ", bias=False")
