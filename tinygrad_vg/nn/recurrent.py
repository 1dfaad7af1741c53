"""Recurrent cells and sequence modules with torch.nn's parameter names, shapes, gate
order, equations and init, so a torch state dict converted to numpy loads directly.

Shapes: T time steps, N batch, D input features, H hidden units, L layers,
G gates stacked in the weights (RNN 1, GRU 3, LSTM 4).

    RNN:  h' = f(W_ih x + b_ih + W_hh h + b_hh)               f = tanh or relu
    GRU:  r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)            gate order r, z, n
          z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
          h' = (1 - z) * n + z * h
    LSTM: i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of the 4 slices of
          W_ih x + b_ih + W_hh h + b_hh                          gate order i, f, g, o
          c' = f * c + i * g;  h' = o * tanh(c')

weight_ih (G*H, D), weight_hh (G*H, H), bias_ih and bias_hh (G*H,), all initialized
U(-1/sqrt(H), 1/sqrt(H)) as torch does. The sequence modules name them weight_ih_l0,
weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l1, ... and take input (T, N, D).

Design:
- The step math is written once per cell kind, in rnn_step / gru_step / lstm_step (the
  cells), and in the whole-sequence ops that the sequence modules use
  (ops.RNNSequence, ops.GRUSequence, ops.LSTMSequence: one tape node per layer, the loop
  over time in tinygrad_vg.kernels.recurrent, compiled or numpy). Both follow torch's
  equations; the tests hold the modules to the cell-by-cell unroll.
- A sequence op projects the input of many steps with one GEMM (x W_ih^T for a block of
  steps) and, in backward, forms grad_W_ih, grad_W_hh and grad_x with GEMMs over blocks
  of steps. Per step, only h_{t-1} W_hh^T forward and grad_a_t W_hh backward remain, plus
  one fused pass over the gates. (Done per step on the tape, the projection had to be one
  F.linear per step: slicing a (T, N, G*H) projection tensor makes each slice's backward
  write a zero gradient of the whole projection, O(T^2).)
- checkpoint_segments is handled by the same ops: they keep only the state entering each
  segment and recompute a segment's gates during backward, in C. Segments and plain runs
  make the same BLAS calls on the same operands, so gradients are bit for bit those of
  the plain run. An RNN's activations are its output, which it keeps only when not
  checkpointed.
- Layer l's output (T, N, H) is layer l+1's input as it is. The LSTM op returns
  [h_0 .. h_{T-1}, c_{T-1}] as one (T+1, N, H) array: the output is a view of its first
  T rows, h_n and c_n copies of the last two (via F.stack over layers).
- dL/dh_t of every step of every layer, after backward: register_step_hook (the op's
  backward computes them anyway). The lab's per-step probes unroll the cells instead.
- forward(..., return_sequence=False) returns only the top layer's last step, (1, N, H),
  for a loss on output[-1] (classification of a whole sequence): its op then outputs
  h_{T-1} (and c_{T-1}) alone, and with checkpoint_segments the top layer keeps the states
  entering its segments and nothing else of length T (its forward steps pass through two
  rows of scratch). The lower layers still make their full (T, N, H) outputs: each is the
  next layer's input, kept by that layer's node. Gradients are bit for bit those of
  return_sequence=True with the same loss.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import functional as F
from .. import ops
from ..checkpoint import segment_count, split_evenly
from ..grad_mode import is_grad_enabled
from ..hooks import RemovableHandle
from ..kernels import check_return_sequence
from ..tensor import Tensor
from . import init
from .linear import check_dtype
from .module import Module, Parameter

__all__ = ["rnn_step", "gru_step", "lstm_step", "RNNCell", "GRUCell", "LSTMCell", "RNN", "GRU", "LSTM",
           "NONLINEARITIES"]

NONLINEARITIES = ("tanh", "relu")


# ----- the step math, shared by cells and sequence modules ------------------------------
def rnn_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
             nonlinearity: str = "tanh") -> Tensor:
    """h' = f(x_proj + W_hh h + b_hh), x_proj = W_ih x + b_ih of shape (N, H)."""
    pre = x_proj + F.linear(h, weight_hh, bias_hh)
    return F.tanh(pre) if nonlinearity == "tanh" else F.relu(pre)


def gru_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """r, z = sigmoid(x_proj[:, :2H] + (W_hh h + b_hh)[:, :2H]);
    n = tanh(x_proj[:, 2H:] + r * (W_hh h + b_hh)[:, 2H:]);  h' = (1 - z) * n + z * h,
    computed as n + z * (h - n) by one fused op (ops.GRUStep)."""
    if bias_hh is None:
        return ops.GRUStep.apply(x_proj, h, weight_hh)
    return ops.GRUStep.apply(x_proj, h, weight_hh, bias_hh)


def lstm_step(x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None, bias_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """gates = W_ih x + b_ih + W_hh h + b_hh, split into i, f, g, o (N, H) each;
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c').
    One fused node (ops.LSTMStep) that takes x itself, so the tape stores per step only
    what backpropagation through time needs; it returns [h', c'] stacked, split here."""
    biases = () if bias_ih is None else (bias_ih, bias_hh)
    both = ops.LSTMStep.apply(x, h, c, weight_ih, weight_hh, *biases)
    return both[0], both[1]


# ----- shared checks ------------------------------------------------------------------------
def _positive_int(owner: str, name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {n!r}")
    return int(n)


def _check_shape(owner: str, what: str, x: Any, expected: tuple, letters: str) -> Tensor:
    """x as a Tensor of exactly the expected shape, or a ValueError naming both shapes."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if x.shape != expected:
        raise ValueError(f"{owner}: {what} must have shape {expected} {letters}; got shape {x.shape}")
    return x


def _check_batch_input(owner: str, x: Any, features: int) -> Tensor:
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"{owner}: input must have shape (N, {features}) (batch, input_size); "
                         f"got shape {x.shape}")
    return x


def _init_uniform(params: list[Parameter], hidden_size: int, rng: np.random.Generator) -> None:
    bound = 1.0 / math.sqrt(hidden_size)
    for p in params:
        init.uniform_(p, -bound, bound, rng=rng)


# ----- cells ---------------------------------------------------------------------------------
class _CellBase(Module):
    """weight_ih (G*H, D), weight_hh (G*H, H), bias_ih, bias_hh (G*H,) ~ U(-1/sqrt(H), 1/sqrt(H))."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float32,
                 rng: Any = None) -> None:
        super().__init__()
        owner = type(self).__name__
        self.input_size = _positive_int(owner, "input_size", input_size)
        self.hidden_size = _positive_int(owner, "hidden_size", hidden_size)
        self.bias = bool(bias)   # a flag, as in torch; the arrays are bias_ih / bias_hh
        rows = self.gates * self.hidden_size
        self.weight_ih = Parameter(np.empty((rows, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((rows, self.hidden_size), dtype=dtype))
        if self.bias:
            self.bias_ih = Parameter(np.empty(rows, dtype=dtype))
            self.bias_hh = Parameter(np.empty(rows, dtype=dtype))
        else:
            self.bias_ih = self.bias_hh = None
        _init_uniform(list(self.parameters()), self.hidden_size, init._rng(rng))

    def _input(self, x: Any) -> Tensor:
        x = _check_batch_input(type(self).__name__, x, self.input_size)
        check_dtype(type(self).__name__, x, self.weight_hh.data.dtype)
        return x

    def _state(self, what: str, s: Any, batch: int) -> Tensor:
        if s is None:
            return Tensor(np.zeros((batch, self.hidden_size), dtype=self.weight_hh.dtype))
        s = _check_shape(type(self).__name__, what, s, (batch, self.hidden_size), "(batch, hidden_size)")
        check_dtype(type(self).__name__, s, self.weight_hh.data.dtype, what)
        return s

    def _project(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """h' = f(W_ih x + b_ih + W_hh h + b_hh), f = tanh or relu (torch.nn.RNNCell).
    forward(x (N, D), h (N, H) or None for zeros) -> h' (N, H)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = np.float32, rng: Any = None) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; accepted: "
                             f"{', '.join(NONLINEARITIES)}")
        super().__init__(input_size, hidden_size, bias, dtype, rng)
        self.nonlinearity = nonlinearity

    def forward(self, x: Any, h: Any = None) -> Tensor:
        x = self._input(x)
        h = self._state("hidden state h", h, x.shape[0])
        return rnn_step(self._project(x), h, self.weight_hh, self.bias_hh, self.nonlinearity)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else "")


class GRUCell(_CellBase):
    """torch.nn.GRUCell, gates r, z, n (see the module docstring).
    forward(x (N, D), h (N, H) or None for zeros) -> h' (N, H)."""

    gates = 3

    def forward(self, x: Any, h: Any = None) -> Tensor:
        x = self._input(x)
        h = self._state("hidden state h", h, x.shape[0])
        return gru_step(self._project(x), h, self.weight_hh, self.bias_hh)


class LSTMCell(_CellBase):
    """torch.nn.LSTMCell, gates i, f, g, o (see the module docstring).
    forward(x (N, D), state (h, c) each (N, H), or None for zeros) -> (h', c')."""

    gates = 4

    def forward(self, x: Any, state: tuple | None = None) -> tuple[Tensor, Tensor]:
        x = self._input(x)
        if state is None:
            state = (None, None)
        elif not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"LSTMCell: state must be a pair (h, c) of (N, {self.hidden_size}) arrays; "
                             f"got {type(state).__name__}")
        h = self._state("hidden state h", state[0], x.shape[0])
        c = self._state("cell state c", state[1], x.shape[0])
        return lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


# ----- sequence modules -------------------------------------------------------------------------
class _SequenceBase(Module):
    """Stacked layers over input (T, N, D); layer l's parameters are weight_ih_l{l} (G*H, D or H),
    weight_hh_l{l} (G*H, H), bias_ih_l{l}, bias_hh_l{l} (G*H,)."""

    gates = 1
    state_names: tuple = ("h0",)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dtype: Any = np.float32, rng: Any = None, checkpoint_segments: int | bool | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "_step_hooks", [])   # see register_step_hook
        owner = type(self).__name__
        segment_count(checkpoint_segments, 1)   # validates the option now rather than at forward
        # None: store every step; True: sqrt(T) segments; k: k segments recomputed during backward
        self.checkpoint_segments = checkpoint_segments
        self.input_size = _positive_int(owner, "input_size", input_size)
        self.hidden_size = _positive_int(owner, "hidden_size", hidden_size)
        self.num_layers = _positive_int(owner, "num_layers", num_layers)
        self.bias = bool(bias)
        rows = self.gates * self.hidden_size
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else self.hidden_size
            setattr(self, f"weight_ih_l{layer}", Parameter(np.empty((rows, width), dtype=dtype)))
            setattr(self, f"weight_hh_l{layer}", Parameter(np.empty((rows, self.hidden_size), dtype=dtype)))
            if self.bias:
                setattr(self, f"bias_ih_l{layer}", Parameter(np.empty(rows, dtype=dtype)))
                setattr(self, f"bias_hh_l{layer}", Parameter(np.empty(rows, dtype=dtype)))
        _init_uniform(list(self.parameters()), self.hidden_size, init._rng(rng))

    def layer_parameters(self, layer: int) -> tuple:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer; biases are None with bias=False."""
        get = lambda name: getattr(self, f"{name}_l{layer}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def register_step_hook(self, hook: Callable[[int, np.ndarray], Any]) -> RemovableHandle:
        """Call hook(layer, grad_h) during backward, once per layer, with grad_h (T, N, H) = dL/dh_t
        for every step t: the total gradient reaching that layer's h_t (from the output at t, from
        step t+1, from layer l+1 and from h_n). Read-only. Applies to forwards run after this call."""
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.register_step_hook: hook must be callable, "
                            f"got {type(hook).__name__}")
        self._step_hooks.append(hook)
        return RemovableHandle(self._step_hooks, hook)

    def _step_hook(self, layer: int) -> Callable[[np.ndarray], None] | None:
        """What layer's op calls with its dL/dh_t (None: no hooks, the op does not collect them)."""
        if not self._step_hooks:
            return None
        hooks = list(self._step_hooks)

        def call(grad_h: np.ndarray) -> None:
            for hook in hooks:
                hook(layer, grad_h)
        return call

    def _layer(self, x: Tensor, state: tuple, params: tuple, **options: Any) -> tuple[Tensor, tuple]:
        """One layer over all steps: (output (T, N, H), or (1, N, H) with return_sequence=False
        among the options, final state parts (N, H) each)."""
        raise NotImplementedError

    def _sequence(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[0] < 1:
            raise ValueError(f"{type(self).__name__}: input must have shape (T, N, {self.input_size}) "
                             f"(time, batch, input_size) with T >= 1; got shape {x.shape}")
        return x

    def _initial(self, what: str, s: Any, batch: int) -> Tensor:
        shape = (self.num_layers, batch, self.hidden_size)
        if s is None:
            return Tensor(np.zeros(shape, dtype=self.weight_hh_l0.dtype))
        return _check_shape(type(self).__name__, f"initial state {what}", s, shape,
                            "(num_layers, batch, hidden_size)")

    def _segments(self, steps: int) -> tuple | None:
        """The first step of each checkpoint segment; None to keep every step's activations.
        Without grad nothing is kept for a backward: one segment, which keeps only h0 (and c0)."""
        if not is_grad_enabled():
            return (0,)
        if not self.checkpoint_segments:
            return None
        parts = split_evenly(list(range(steps)), segment_count(self.checkpoint_segments, steps))
        return tuple(part[0] for part in parts)

    def _unroll(self, x: Tensor, initial: tuple, return_sequence: bool = True) -> tuple[Tensor, tuple]:
        """Run every layer over every step; returns the top layer's output (T, N, H) (only its last
        step, (1, N, H), with return_sequence=False) and each state part (L, N, H)."""
        if x.dtype != self.weight_hh_l0.dtype:
            raise TypeError(f"{type(self).__name__}: input is {x.dtype} but the parameters are "
                            f"{self.weight_hh_l0.dtype}; convert one of them (e.g. x.astype(np.float32))")
        if x.shape[1] == 0:   # an empty batch: the sequence kernels need N >= 1
            return self._unroll_empty_batch(x, initial, return_sequence)
        segments = self._segments(x.shape[0])
        finals = []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(layer)
            params = (weight_ih, weight_hh) + (() if bias_ih is None else (bias_ih, bias_hh))
            top = layer == self.num_layers - 1   # a lower layer's output is the next one's input
            x, final = self._layer(x, tuple(s[layer] for s in initial), params, segments=segments,
                                   step_hook=self._step_hook(layer), return_sequence=return_sequence or not top)
            finals.append(final)
        final = tuple(F.stack([f[k] for f in finals]) for k in range(len(initial)))
        return x, final

    def _unroll_empty_batch(self, x: Tensor, initial: tuple, return_sequence: bool) -> tuple[Tensor, tuple]:
        """N = 0, as torch: empty outputs; x and the states get empty gradients and the
        parameters zero ones. Built from the cell steps, which take any batch size."""
        finals = []
        for layer in range(self.num_layers):
            params = self.layer_parameters(layer)
            state, outputs = tuple(s[layer] for s in initial), []
            for t in range(x.shape[0]):
                state = self._cell_step(x[t], state, *params)
                outputs.append(state[0])
            x = F.stack(outputs)
            finals.append(state)
        if not return_sequence:
            x = x[-1:]
        return x, tuple(F.stack([f[k] for f in finals]) for k in range(len(initial)))

    def _cell_step(self, x_t: Tensor, state: tuple, weight_ih, weight_hh, bias_ih, bias_hh) -> tuple:
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        return s + ("" if self.bias else ", bias=False")


class RNN(_SequenceBase):
    """torch.nn.RNN: forward(x (T, N, D), h0 (L, N, H) or None) -> (output (T, N, H), h_n (L, N, H)).
    forward(..., return_sequence=False): output is the top layer's last step only, (1, N, H)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 nonlinearity: str = "tanh", dtype: Any = np.float32, rng: Any = None,
                 checkpoint_segments: int | bool | None = None) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; accepted: {', '.join(NONLINEARITIES)}")
        super().__init__(input_size, hidden_size, num_layers, bias, dtype, rng, checkpoint_segments)
        self.nonlinearity = nonlinearity

    def _layer(self, x, state, params, **options):
        out = ops.RNNSequence.apply(x, state[0], *params, nonlinearity=self.nonlinearity, **options)
        return out, (out[-1],)

    def _cell_step(self, x_t, state, weight_ih, weight_hh, bias_ih, bias_hh):
        return (rnn_step(F.linear(x_t, weight_ih, bias_ih), state[0], weight_hh, bias_hh, self.nonlinearity),)

    def forward(self, x: Any, h0: Any = None, *, return_sequence: bool = True) -> tuple[Tensor, Tensor]:
        return_sequence = check_return_sequence("RNN.forward", return_sequence)
        x = self._sequence(x)
        output, (h_n,) = self._unroll(x, (self._initial("h0", h0, x.shape[1]),), return_sequence)
        return output, h_n

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else "")


class GRU(_SequenceBase):
    """torch.nn.GRU: forward(x (T, N, D), h0 (L, N, H) or None) -> (output (T, N, H), h_n (L, N, H)).
    forward(..., return_sequence=False): output is the top layer's last step only, (1, N, H)."""

    gates = 3

    def _layer(self, x, state, params, **options):
        out = ops.GRUSequence.apply(x, state[0], *params, **options)
        return out, (out[-1],)

    def _cell_step(self, x_t, state, weight_ih, weight_hh, bias_ih, bias_hh):
        return (gru_step(F.linear(x_t, weight_ih, bias_ih), state[0], weight_hh, bias_hh),)

    def forward(self, x: Any, h0: Any = None, *, return_sequence: bool = True) -> tuple[Tensor, Tensor]:
        return_sequence = check_return_sequence("GRU.forward", return_sequence)
        x = self._sequence(x)
        output, (h_n,) = self._unroll(x, (self._initial("h0", h0, x.shape[1]),), return_sequence)
        return output, h_n


class LSTM(_SequenceBase):
    """torch.nn.LSTM: forward(x (T, N, D), state (h0, c0) each (L, N, H), or None)
    -> (output (T, N, H), (h_n, c_n) each (L, N, H)).
    forward(..., return_sequence=False): output is the top layer's last step only, (1, N, H)."""

    gates = 4

    def _layer(self, x, state, params, **options):
        out = ops.LSTMSequence.apply(x, state[0], state[1], *params, **options)   # [h_0 .. h_{T-1}, c_{T-1}]
        steps = out.shape[0] - 1   # T, or 1 with return_sequence=False: [h_{T-1}, c_{T-1}]
        return out[:steps], (out[steps - 1], out[steps])

    def _cell_step(self, x_t, state, weight_ih, weight_hh, bias_ih, bias_hh):
        return lstm_step(x_t, state[0], state[1], weight_ih, weight_hh, bias_ih, bias_hh)

    def forward(self, x: Any, state: tuple | None = None, *,
                return_sequence: bool = True) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        return_sequence = check_return_sequence("LSTM.forward", return_sequence)
        x = self._sequence(x)
        if state is None:
            state = (None, None)
        elif not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"LSTM: state must be a pair (h0, c0) of ({self.num_layers}, N, "
                             f"{self.hidden_size}) arrays; got {type(state).__name__}")
        batch = x.shape[1]
        initial = (self._initial("h0", state[0], batch), self._initial("c0", state[1], batch))
        output, (h_n, c_n) = self._unroll(x, initial, return_sequence)
        return output, (h_n, c_n)
