"""Deep nets of blocks: plain, residual and highway (seeds 000, 002, 004), width in and
width out, and DenseNet-style dense nets (issue 18).

    plain:    h = f(norm(linear(h)))                        keys blocks.i.linear.*
    residual: h = h + f(norm(linear(h)))                    keys blocks.i.linear.*
    highway:  T = sigmoid(gate(h)); C = f(norm(transform(h)))
              h = T * C + (1 - T) * h                       keys blocks.i.transform.*, blocks.i.gate.*
    dense:    h_i = f(norm(linear([x | h_1 | ... | h_{i-1}])))   (i = 1 .. depth)
              y = transition([x | h_1 | ... | h_depth])     keys blocks.i.linear.*, transition.*

A dense block sees the concatenation of the net's input and every earlier block's output
(Huang et al. 2017) and adds `growth` features to it: block i (from 0) maps width + i*growth
features to growth, so the concatenation ends width + depth*growth wide, and one linear map
without activation, `transition`, brings it back to width (the net stays width in, width
out like the other kinds). Every block's output reaches the output through one matrix.

Options of every kind: activation="maxout" (Goodfellow et al. 2013) makes each block's
linear map k = pieces times wider and f the max over groups of k (nn.MaxoutPool);
weight_norm=True reparametrises every Linear's weight as g v / ||v|| (nn.utils.weight_norm,
dim 0: keys ...linear.weight_g and ...linear.weight_v instead of ...linear.weight).

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
from .activation import ACTIVATIONS, MaxoutPool, make_activation
from .linear import BatchNorm1d, LayerNorm, Linear, check_features
from .module import Module, ModuleList
from .module import edits as module_edits
from .utils import has_weight_norm, weight_of, weight_norm as apply_weight_norm

__all__ = ["PlainBlock", "ResidualBlock", "HighwayBlock", "DenseBlock", "DeepMLP", "deep_mlp", "KINDS", "NORMS"]

KINDS = ("plain", "residual", "highway", "dense")
MAXOUT = "maxout"   # deep_mlp's activation name for Maxout units (with `pieces`)
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


def _make_act(activation: str, pieces: int) -> Module:
    return MaxoutPool(pieces) if activation == MAXOUT else make_activation(activation)


def _pre_width(activation: str, width: int, pieces: int) -> int:
    """The width of a block's linear map: k = pieces values per unit for maxout."""
    return width * pieces if activation == MAXOUT else width


def _init_activation(activation: str) -> str:
    """The activation whose gain the weight init uses (maxout pieces are linear maps)."""
    return "linear" if activation == MAXOUT else activation


class PlainBlock(Module):
    """h = f(norm(linear(h))); in_features (default width) -> width"""

    def __init__(self, width: int, activation: str = "tanh", init_name: str = "xavier_normal",
                 norm: str | None = None, dtype: Any = np.float32, rng: Any = None, init_scale: float = 1.0,
                 pieces: int = 2, in_features: int | None = None) -> None:
        super().__init__()
        pre = _pre_width(activation, width, pieces)
        self.linear = Linear(width if in_features is None else in_features, pre, dtype=dtype, rng=rng,
                             init_name=init_name, activation=_init_activation(activation), init_scale=init_scale)
        self.norm = _make_norm(norm, pre, dtype)
        self.act = _make_act(activation, pieces)
        self.activation = activation

    def branch(self, h: Tensor, residual: bool = False) -> Tensor:
        """f(norm(linear(h))), plus h when residual."""
        linear = self.linear
        if self.norm is None and self.activation in FUSED and not (linear._forward_hooks or linear._backward_hooks):
            # one tape node for the whole layer, skip connection included (same values and
            # gradients as the separate ops); with hooks on the Linear, the separate ops run them.
            # weight_of: g v / ||v|| under weight norm (the fused op does not call linear)
            weight, bias = weight_of(linear), linear.bias
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
                 init_scale: float = 1.0, gate_bias: float = -2.0, pieces: int = 2) -> None:
        super().__init__()
        pre = _pre_width(activation, width, pieces)
        self.transform = Linear(width, pre, dtype=dtype, rng=rng, init_name=init_name,
                                activation=_init_activation(activation), init_scale=init_scale)
        self.gate = Linear(width, width, dtype=dtype, rng=rng, init_name=init_name,
                           activation="sigmoid", init_scale=init_scale)
        constant_(self.gate.bias, gate_bias)
        self.norm = _make_norm(norm, pre, dtype)
        self.act = _make_act(activation, pieces)
        self.activation = activation

    def forward(self, h: Tensor) -> Tensor:
        gate_weight = weight_of(self.gate)   # g v / ||v|| under weight norm: the fused ops do not call the Linears
        h = check_features("HighwayBlock", h, self.transform.in_features, dtype=gate_weight.data.dtype)
        t = F.linear_act(h, gate_weight, self.gate.bias, "sigmoid")
        if self.norm is None and self.activation in FUSED:
            c = F.linear_act(h, weight_of(self.transform), self.transform.bias, FUSED[self.activation])
        else:
            c = self.transform(h)
            if self.norm is not None:
                c = self.norm(c)
            c = self.act(c)
        return t * c + (1 - t) * h


class DenseBlock(PlainBlock):
    """h_i = f(norm(linear(features))): in_features = width + i*growth (the net's input and
    every earlier block's output, concatenated) -> growth new features."""

    def __init__(self, in_features: int, growth: int, **options: Any) -> None:
        super().__init__(growth, in_features=in_features, **options)

    def forward(self, features: Tensor) -> Tensor:
        return self.branch(features)


class DeepMLP(Module):
    """`depth` blocks of one kind, width in and width out: blocks.0 ... blocks.{depth-1}
    (and, for kind="dense", the `transition` back to width)."""

    def __init__(self, kind: str, width: int, depth: int, activation: str = "tanh",
                 init: str = "xavier_normal", norm: str | None = None, dtype: Any = np.float32,
                 rng: Any = None, init_scale: float = 1.0, gate_bias: float = -2.0,
                 checkpoint_segments: int | bool | None = None, fused_stack: bool = True,
                 growth: int | None = None, pieces: int | None = None, weight_norm: bool = False) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; accepted: {', '.join(KINDS)}")
        for name, n in (("width", width), ("depth", depth)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"deep_mlp: {name} must be a positive int, got {n!r}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; accepted: None, 'batch', 'layer'")
        if activation != MAXOUT:
            try:
                make_activation(activation)   # validates the name before building anything
            except ValueError:
                raise ValueError(f"unknown activation {activation!r}; accepted: "
                                 f"{', '.join([*ACTIVATIONS, MAXOUT])}") from None
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; accepted: {', '.join(INITIALIZERS)}")
        growth = _option_for("growth", growth, kind == "dense", "kind='dense'", width)
        pieces = _option_for("pieces", pieces, activation == MAXOUT, "activation='maxout'", 2)
        if not isinstance(weight_norm, (bool, np.bool_)):
            raise TypeError(f"deep_mlp: weight_norm must be True or False, got {weight_norm!r}")
        self.kind, self.width, self.depth, self.activation = kind, int(width), int(depth), activation
        self.growth, self.pieces = growth, pieces
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        common = dict(activation=activation, init_name=init, norm=norm, dtype=dtype, rng=rng,
                      init_scale=init_scale, pieces=pieces or 2)
        if kind == "highway":
            blocks = [HighwayBlock(width, gate_bias=gate_bias, **common) for _ in range(depth)]
        elif kind == "dense":
            blocks = [DenseBlock(width + i * growth, growth, **common) for i in range(depth)]
        else:
            cls = PlainBlock if kind == "plain" else ResidualBlock
            blocks = [cls(width, **common) for _ in range(depth)]
        self.blocks = ModuleList(blocks)
        if kind == "dense":
            self.transition = Linear(width + depth * growth, width, dtype=dtype, rng=rng, init_name=init,
                                     activation="linear", init_scale=init_scale)
        if weight_norm:
            for module in list(self.modules()):
                if isinstance(module, Linear):
                    apply_weight_norm(module)
        self.checkpoint_segments = segment_count(checkpoint_segments, self.depth)
        if not isinstance(fused_stack, (bool, np.bool_)):
            raise TypeError(f"deep_mlp: fused_stack must be True or False, got {fused_stack!r}")
        self.fused_stack = bool(fused_stack)

    def forward(self, x: Any) -> Tensor:
        first = self.blocks[0]
        linear = first.transform if isinstance(first, HighwayBlock) else first.linear
        weight = linear.weight_v if has_weight_norm(linear) else linear.weight
        h = check_features(f"deep_mlp({self.kind}, width={self.width})", x, self.width, dtype=weight.data.dtype)
        if self.kind == "dense":
            return self._dense(h)
        if self.checkpoint_segments and is_grad_enabled():
            for segment in split_evenly(list(self.blocks), self.checkpoint_segments):
                h = checkpoint(_run_blocks(segment), h, params=[p for b in segment for p in b.parameters()])
            return h
        # the whole stack as one node (ops.LinearActStack), when it is recorded: without a tape
        # (no_grad) the blocks one by one free each activation at once
        stack = None
        if self.fused_stack and is_grad_enabled():
            cache = self.__dict__.get("_stack_cache")   # (module edits when made, the arguments, weight norm?)
            if cache is None or cache[0] != module_edits[0]:
                normed = any(has_weight_norm(m) for m in self.modules())
                cache = (module_edits[0], None if normed else self._stack_params(), normed)
                object.__setattr__(self, "_stack_cache", cache)   # not an edit of the structure
            # under weight norm, each forward records its own weights g v / ||v||: not cached
            stack = self._stack_params() if cache[2] else cache[1]
        if stack is not None:
            weights, biases, activation, residual = stack
            return LinearActStack.apply(h, *weights, *biases, activation=activation, residual=residual,
                                        bias=bool(biases))
        for block in self.blocks:
            # Module.__call__ written out: without hooks it only calls forward
            h = block(h) if block._forward_hooks or block._backward_hooks else block.forward(h)
        return h

    def _dense(self, x: Tensor) -> Tensor:
        """transition([x | h_1 | ... | h_depth]), each block on the concatenation before it."""
        features = x
        if self.checkpoint_segments and is_grad_enabled():
            for segment in split_evenly(list(self.blocks), self.checkpoint_segments):
                features = checkpoint(_run_dense_blocks(segment), features,
                                      params=[p for b in segment for p in b.parameters()])
        else:
            features = _run_dense_blocks(self.blocks)(features)
        return self.transition(features)

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
            weights.append(weight_of(linear))
            if linear.bias is not None:
                biases.append(linear.bias)
        if biases and len(biases) != len(weights):
            return None
        if len({id(p) for p in weights + biases}) != len(weights) + len(biases):
            return None
        return weights, biases, FUSED[activation], cls is ResidualBlock

    def extra_repr(self) -> str:
        s = f"kind={self.kind!r}, width={self.width}, depth={self.depth}, activation={self.activation!r}"
        if self.growth is not None:
            s += f", growth={self.growth}"
        return s + (f", pieces={self.pieces}" if self.pieces is not None else "")


def _option_for(name: str, value: Any, applies: bool, when: str, default: int) -> int | None:
    """A positive int option that only some nets take: its default where it applies, an error
    where it was given but does not apply (rather than being ignored)."""
    if not applies:
        if value is not None:
            raise ValueError(f"deep_mlp: {name}={value!r} applies only with {when}")
        return None
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"deep_mlp: {name} must be a positive int, got {value!r}")
    return int(value)



def _run_blocks(blocks: list) -> Any:
    def run(h: Tensor) -> Tensor:
        for block in blocks:
            h = block(h)
        return h
    return run


def _run_dense_blocks(blocks: Any) -> Any:
    def run(features: Tensor) -> Tensor:
        for block in blocks:
            features = F.concatenate([features, block(features)], axis=-1)
        return features
    return run


def deep_mlp(kind: str, width: int, depth: int, activation: str = "tanh", init: str = "xavier_normal",
             norm: str | None = None, dtype: Any = np.float32, rng: Any = None, init_scale: float = 1.0,
             gate_bias: float = -2.0, checkpoint_segments: int | bool | None = None,
             fused_stack: bool = True, growth: int | None = None, pieces: int | None = None,
             weight_norm: bool = False) -> DeepMLP:
    """A deep net of `depth` blocks of `kind` (plain, residual, highway, dense): width in, width out.

    activation: a name in nn.ACTIVATIONS, or "maxout": each block's linear map is `pieces`
    (default 2) times wider, keys blocks.i.linear.weight of shape (pieces*width, width), and
    the activation is the max over groups of `pieces` consecutive values (nn.MaxoutPool;
    gradient to the first maximal piece); init: a name in nn.init.INITIALIZERS
    ("scaled_normal" uses init_scale as s in N(0, s^2/n)); norm: None, "batch" or "layer"
    after each block's linear map; gate_bias: the highway gates' starting bias; rng: a
    numpy Generator or an int seed.
    kind="dense": block i sees [x | h_1 | ... | h_i] (width + i*growth features, growth
    default width) and outputs growth features; `transition` (a Linear without activation)
    maps the final width + depth*growth features back to width. Keys blocks.i.linear.*
    (weight (growth, width + i*growth)), transition.weight (width, width + depth*growth),
    transition.bias. Memory and time grow as depth^2 (every block keeps its input).
    weight_norm=True: every Linear's weight is g v / ||v|| (nn.utils.weight_norm, dim 0),
    keys ...weight_g (rows, 1) and ...weight_v instead of ...weight.
    checkpoint_segments: None (store every activation), True (sqrt(depth) segments) or k:
    recompute each of k segments during backward, storing O(k + depth/k) activations, with
    gradients identical to the plain run (a dense net still keeps its concatenations);
    fused_stack: with True (the default), a plain or residual net without norms whose
    activation has a fused kernel (tanh, sigmoid, relu, linear) records its whole stack of
    layers as ONE tape node (ops.LinearActStack), as long as no hook is registered on a
    block or its Linear; a hook, or fused_stack=False, gives one node per layer
    (ops.LinearAct). Values and gradients are the same bit for bit either way.
    """
    return DeepMLP(kind, width, depth, activation=activation, init=init, norm=norm, dtype=dtype,
                   rng=rng, init_scale=init_scale, gate_bias=gate_bias,
                   checkpoint_segments=checkpoint_segments, fused_stack=fused_stack, growth=growth,
                   pieces=pieces, weight_norm=weight_norm)
