"""Deep nets of width-preserving blocks: plain, residual and highway (seeds 000, 002, 004).

    plain:    h = f(norm(linear(h)))                        keys blocks.i.linear.*
    residual: h = h + f(norm(linear(h)))                    keys blocks.i.linear.*
    highway:  T = sigmoid(gate(h)); C = f(norm(transform(h)))
              h = T * C + (1 - T) * h                       keys blocks.i.transform.*, blocks.i.gate.*

Why they differ (seed 004): d h_l / d h_{l-1} is f'(.) W for a plain block, so the
gradient at layer 1 is a product of L such matrices and shrinks or grows
geometrically; a residual block adds the identity, f'(.) W + I, which keeps a path
of weight 1 through every layer; a highway block's carry term (1 - T) is that path
with a learned, data-dependent weight (a gate bias of -2 starts it at about 0.88).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import kernels
from ..grad_mode import is_grad_enabled
from ..checkpoint import checkpoint, segment_count, split_evenly
from ..ops import LinearAct, LinearActStack
from ..tensor import Tensor
from .init import INITIALIZERS, constant_
from .activation import make_activation
from .linear import BatchNorm1d, LayerNorm, Linear, check_features
from .module import Module, ModuleList
from .module import edits as module_edits

__all__ = ["PlainBlock", "ResidualBlock", "HighwayBlock", "DeepMLP", "deep_mlp", "KINDS", "NORMS"]

KINDS = ("plain", "residual", "highway")
NORMS = (None, "batch", "layer")
# activations with a fused linear+activation kernel (ops.LinearAct): one tape node per layer
FUSED = {**{name: name for name in kernels.FUSED_ACTIVATIONS if name != "identity"}, "linear": None, "identity": None}


def _make_norm(norm: str | None, width: int, dtype: Any) -> Module | None:
    if norm is None:
        return None
    if norm == "batch":
        return BatchNorm1d(width, dtype=dtype)
    if norm == "layer":
        return LayerNorm(width, dtype=dtype)
    raise ValueError(f"unknown norm {norm!r}; accepted: None, 'batch', 'layer'")


class PlainBlock(Module):
    """h = f(norm(linear(h)))"""

    def __init__(self, width: int, activation: str = "tanh", init_name: str = "xavier_normal",
                 norm: str | None = None, dtype: Any = np.float32, rng: Any = None, init_scale: float = 1.0) -> None:
        super().__init__()
        self.linear = Linear(width, width, dtype=dtype, rng=rng, init_name=init_name,
                             activation=activation, init_scale=init_scale)
        self.norm = _make_norm(norm, width, dtype)
        self.act = make_activation(activation)
        self.activation = activation

    def branch(self, h: Tensor, residual: bool = False) -> Tensor:
        """f(norm(linear(h))), plus h when residual."""
        linear = self.linear
        if self.norm is None and self.activation in FUSED and not (linear._forward_hooks or linear._backward_hooks):
            # one tape node for the whole layer, skip connection included (same values and
            # gradients as the separate ops); with hooks on the Linear, the separate ops run them
            weight, bias = linear.weight, linear.bias
            if not (type(h) is Tensor and h.data.ndim == 2 and h.data.shape[1] == linear.in_features
                    and h.data.dtype is weight.data.dtype):   # the common case, checked cheaply first
                h = check_features(type(self).__name__, h, linear.in_features, dtype=weight.data.dtype)
            # F.linear_act's op, called directly: the activation name is known good
            if bias is None:
                return LinearAct.apply(h, weight, activation=FUSED[self.activation], residual=residual)
            return LinearAct.apply(h, weight, bias, activation=FUSED[self.activation], residual=residual)
        z = self.linear(h)
        if self.norm is not None:
            z = self.norm(z)
        return h + self.act(z) if residual else self.act(z)

    def forward(self, h: Tensor) -> Tensor:
        return self.branch(h)


class ResidualBlock(PlainBlock):
    """h = h + f(norm(linear(h)))"""

    def forward(self, h: Tensor) -> Tensor:
        return self.branch(h, residual=True)


class HighwayBlock(Module):
    """T = sigmoid(gate(h)); h = T * f(norm(transform(h))) + (1 - T) * h"""

    def __init__(self, width: int, activation: str = "tanh", init_name: str = "xavier_normal",
                 norm: str | None = None, dtype: Any = np.float32, rng: Any = None,
                 init_scale: float = 1.0, gate_bias: float = -2.0) -> None:
        super().__init__()
        self.transform = Linear(width, width, dtype=dtype, rng=rng, init_name=init_name,
                                activation=activation, init_scale=init_scale)
        self.gate = Linear(width, width, dtype=dtype, rng=rng, init_name=init_name,
                           activation="sigmoid", init_scale=init_scale)
        constant_(self.gate.bias, gate_bias)
        self.norm = _make_norm(norm, width, dtype)
        self.act = make_activation(activation)
        self.activation = activation

    def forward(self, h: Tensor) -> Tensor:
        h = check_features("HighwayBlock", h, self.transform.in_features, dtype=self.transform.weight.data.dtype)
        t = F.linear_act(h, self.gate.weight, self.gate.bias, "sigmoid")
        if self.norm is None and self.activation in FUSED:
            c = F.linear_act(h, self.transform.weight, self.transform.bias, FUSED[self.activation])
        else:
            c = self.transform(h)
            if self.norm is not None:
                c = self.norm(c)
            c = self.act(c)
        return t * c + (1 - t) * h


class DeepMLP(Module):
    """`depth` blocks of one kind, width in and width out: blocks.0 ... blocks.{depth-1}."""

    def __init__(self, kind: str, width: int, depth: int, activation: str = "tanh",
                 init: str = "xavier_normal", norm: str | None = None, dtype: Any = np.float32,
                 rng: Any = None, init_scale: float = 1.0, gate_bias: float = -2.0,
                 checkpoint_segments: int | bool | None = None, fused_stack: bool = True) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; accepted: {', '.join(KINDS)}")
        for name, n in (("width", width), ("depth", depth)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"deep_mlp: {name} must be a positive int, got {n!r}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; accepted: None, 'batch', 'layer'")
        make_activation(activation)   # validates the name before building anything
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; accepted: {', '.join(INITIALIZERS)}")
        self.kind, self.width, self.depth, self.activation = kind, int(width), int(depth), activation
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        common = dict(activation=activation, init_name=init, norm=norm, dtype=dtype, rng=rng,
                      init_scale=init_scale)
        if kind == "highway":
            blocks = [HighwayBlock(width, gate_bias=gate_bias, **common) for _ in range(depth)]
        else:
            cls = PlainBlock if kind == "plain" else ResidualBlock
            blocks = [cls(width, **common) for _ in range(depth)]
        self.blocks = ModuleList(blocks)
        self.checkpoint_segments = segment_count(checkpoint_segments, self.depth)
        if not isinstance(fused_stack, (bool, np.bool_)):
            raise TypeError(f"deep_mlp: fused_stack must be True or False, got {fused_stack!r}")
        self.fused_stack = bool(fused_stack)

    def forward(self, x: Any) -> Tensor:
        first = self.blocks[0]
        weight = (first.transform if isinstance(first, HighwayBlock) else first.linear).weight
        h = check_features(f"deep_mlp({self.kind}, width={self.width})", x, self.width, dtype=weight.data.dtype)
        if self.checkpoint_segments and is_grad_enabled():
            for segment in split_evenly(list(self.blocks), self.checkpoint_segments):
                h = checkpoint(_run_blocks(segment), h, params=[p for b in segment for p in b.parameters()])
            return h
        # the whole stack as one node (ops.LinearActStack), when it is recorded: without a tape
        # (no_grad) the blocks one by one free each activation at once
        stack = None
        if self.fused_stack and is_grad_enabled():
            cache = self.__dict__.get("_stack_cache")   # (module edits when made, the arguments)
            if cache is None or cache[0] != module_edits[0]:
                cache = (module_edits[0], self._stack_params())
                object.__setattr__(self, "_stack_cache", cache)   # not an edit of the structure
            stack = cache[1]
        if stack is not None:
            weights, biases, activation, residual = stack
            return LinearActStack.apply(h, *weights, *biases, activation=activation, residual=residual,
                                        bias=bool(biases))
        for block in self.blocks:
            # Module.__call__ written out: without hooks it only calls forward
            h = block(h) if block._forward_hooks or block._backward_hooks else block.forward(h)
        return h

    def _stack_params(self) -> tuple | None:
        """(weights, biases, activation, residual) for ops.LinearActStack, or None when some block
        must run on its own: a highway block, a norm, an activation without a fused kernel, a
        hook on a block or its Linear (hooks see the layers one by one), a block that is not
        a PlainBlock/ResidualBlock, biases on some layers only, or a parameter shared by two
        layers (the stack would add its gradients in another order: not bit for bit)."""
        cls = PlainBlock if self.kind == "plain" else ResidualBlock if self.kind == "residual" else None
        weights, biases, activation = [], [], None
        for block in self.blocks:
            if type(block) is not cls or block.norm is not None or block.activation not in FUSED:
                return None
            linear = block.linear
            if block._forward_hooks or block._backward_hooks or linear._forward_hooks or linear._backward_hooks:
                return None
            if activation is None:
                activation = block.activation
            elif block.activation != activation:
                return None
            weights.append(linear.weight)
            if linear.bias is not None:
                biases.append(linear.bias)
        if biases and len(biases) != len(weights):
            return None
        if len({id(p) for p in weights + biases}) != len(weights) + len(biases):
            return None
        return weights, biases, FUSED[activation], cls is ResidualBlock

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, width={self.width}, depth={self.depth}, activation={self.activation!r}"



def _run_blocks(blocks: list) -> Any:
    def run(h: Tensor) -> Tensor:
        for block in blocks:
            h = block(h)
        return h
    return run


def deep_mlp(kind: str, width: int, depth: int, activation: str = "tanh", init: str = "xavier_normal",
             norm: str | None = None, dtype: Any = np.float32, rng: Any = None, init_scale: float = 1.0,
             gate_bias: float = -2.0, checkpoint_segments: int | bool | None = None,
             fused_stack: bool = True) -> DeepMLP:
    """A deep net of `depth` width-preserving blocks of `kind` (plain, residual, highway).

    activation: a name in nn.ACTIVATIONS; init: a name in nn.init.INITIALIZERS
    ("scaled_normal" uses init_scale as s in N(0, s^2/n)); norm: None, "batch" or "layer"
    after each block's linear map; gate_bias: the highway gates' starting bias; rng: a
    numpy Generator or an int seed; checkpoint_segments: None (store every activation),
    True (sqrt(depth) segments) or k: recompute each of k segments during backward,
    storing O(k + depth/k) activations, with gradients identical to the plain run;
    fused_stack: with True (the default), a plain or residual net without norms whose
    activation has a fused kernel (tanh, sigmoid, relu, linear) records its whole stack of
    layers as ONE tape node (ops.LinearActStack), as long as no hook is registered on a
    block or its Linear; a hook, or fused_stack=False, gives one node per layer
    (ops.LinearAct). Values and gradients are the same bit for bit either way.
    """
    return DeepMLP(kind, width, depth, activation=activation, init=init, norm=norm, dtype=dtype,
                   rng=rng, init_scale=init_scale, gate_bias=gate_bias,
                   checkpoint_segments=checkpoint_segments, fused_stack=fused_stack)
