"""The lab's experiments on the seeds' other architectures (issue 18): dense nets, weight norm
and Maxout in the deep-net experiments, NARX nets in the recurrent one.

    arch-seed-figure  the seed's 20-layer, 20-unit net built as each variant: ||dL/dh_l|| per
                      block at initialisation and after training, and the loss curves
    arch-depth        log10(||dL/dh_1|| / ||dL/dh_L||) against depth for each variant
    narx              ||dL/dh_t|| over T = 1000 steps for NARX nets with delays D = 1, 2, 4, 8
                      (D = 1 is the vanilla RNN) against an LSTM

A variant is a deep_mlp kind with optional modifiers, KIND[+maxout][+wn]: "dense",
"plain+wn" (weight norm on every Linear), "residual+maxout" (Maxout units of `pieces`
pieces), "dense+maxout+wn", ... (VARIANTS lists them all).

The contract is experiments.py's: each experiment is a function of its options (defaults in
the signature, every option described once in ARCH_OPTIONS as (kind, help, choices), the
fields of experiments.Option) plus `progress` and `store`, returning a list of JSON-able
runs; each run holds its configuration (variant, kind, depth or T, seed_index, ...) and its
measurements (grad_h_norm, grad_W_norm, log10_ratio_h, ...). `run_arch_experiment(name,
**options)` checks the options and returns {"experiment", "options", "runs"}; plots_arch.py
draws. Seeds: seed index i draws its data and initial weights from the streams of
numpy.random.SeedSequence(seed, spawn_key=(i,)), split in two (data, init), as the lab's
other experiments do. Everything runs in float64.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..tensor import Tensor
from .probes import Probe, fit_log10_slope, layer_summary, log10_ratio, norm
from .progress import Progress

__all__ = ["ARCH_EXPERIMENTS", "ARCH_OPTIONS", "VARIANTS", "parse_variant", "build_variant", "run_arch_experiment",
           "validate_arch_options", "estimate_arch_cost", "variant_cost", "measure_blocks", "measure_narx",
           "arch_seed_figure", "arch_depth", "narx"]

MOMENTUM = 0.9
MODIFIERS = ("maxout", "wn")
VARIANTS = tuple(kind + "".join("+" + m for m in mods) for kind in nn.KINDS
                 for mods in ((), ("maxout",), ("wn",), ("maxout", "wn")))
ARCH_EXPERIMENTS: dict[str, Callable[..., list]] = {}

# The options these experiments add to experiments.OPTIONS, as (kind, help, choices), the
# fields of experiments.Option; _OPTIONS adds those they share with the other experiments.
ARCH_OPTIONS: dict[str, tuple] = {
    "variants": ("choice", "The nets to compare: a kind (plain, residual, highway, dense) with optional "
                           "modifiers +maxout (Maxout units) and +wn (weight norm on every Linear), e.g. "
                           "dense, plain+wn, residual+maxout, dense+maxout+wn.", VARIANTS),
    "growth": ("int>0", "The features each dense block adds to the concatenation it passes on."),
    "pieces": ("int>0", "The linear pieces per Maxout unit (+maxout variants)."),
    "delays": ("int>0", "The NARX delays D to compare: h_t sees h_(t-1) .. h_(t-D); D = 1 is the vanilla RNN."),
    "narx_inits": ("choice", "The NARX recurrent weights' init: torch (every U_d ~ U(-1/sqrt(H), 1/sqrt(H)), "
                             "nn.NARX's) or fan_in (U(-1/sqrt(D H), 1/sqrt(D H)): weight_hh's fan-in is D H, so "
                             "the recurrent input keeps the variance it has with D = 1).", ("torch", "fan_in")),
}
_OPTIONS: dict[str, tuple] = {
    **ARCH_OPTIONS,
    "width": ("int>0", "The number of units in every layer."),
    "depth": ("int>0", "The number of blocks (layers) of the net."),
    "depths": ("int>0", "The numbers of blocks to measure, one net per number."),
    "activation": ("choice", "The activation function of every layer.", tuple(nn.ACTIVATIONS)),
    "init": ("choice", "The weight initialisation.", nn.init.INITIALIZERS),
    "batch": ("int>0", "The number of random input samples in the batch."),
    "steps": ("int>0", f"The number of SGD steps (momentum {MOMENTUM}) to train for."),
    "lr": ("float>0", "The SGD learning rate."),
    "seed": ("int>=0", "The root seed: seed index i draws its data and initial weights from the stream "
                       "numpy.random.SeedSequence(seed).spawn(i + 1)[i]."),
    "seeds": ("seeds", "How many seeds to run each configuration with (a count n: seed indices 0 .. n-1), "
                       "or which seed indices (a list)."),
    "cells": ("choice", "The recurrent cells to compare (rnn, gru, lstm).", ("rnn", "gru", "lstm")),
    "gate_biases": ("float", "The values added to the LSTM forget gate's and the GRU update gate's bias, one run "
                             "per value."),
    "T": ("int>0", "The number of time steps the cells are unrolled for."),
    "input_size": ("int>0", "The number of input features per time step."),
    "hidden": ("int>0", "The number of hidden units of each cell."),
}


class _Compute:
    """The default store: computes every configuration (experiments.ResultStore keeps them)."""

    def runs(self, experiment: str, config: dict, compute: Callable[[], list[dict]]) -> list[dict]:
        return compute()


_COMPUTE = _Compute()


def experiment(name: str) -> Callable:
    def register(fn: Callable) -> Callable:
        ARCH_EXPERIMENTS[name] = fn
        return fn
    return register


# ----- seeds (the lab's convention: experiments.seed_indices / seed_streams) --------------------
def seed_indices(seeds: Any) -> list[int]:
    """A count n names seed indices 0 .. n-1; a list is taken as it is (whole numbers >= 0, no repeats)."""
    def whole(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
    if whole(seeds) and seeds >= 1:
        return list(range(int(seeds)))
    if isinstance(seeds, (list, tuple)) and seeds and all(whole(v) and v >= 0 for v in seeds) \
            and len(set(seeds)) == len(seeds):
        return [int(v) for v in seeds]
    raise ValueError(f"--seeds must be a count >= 1 or a list of distinct seed indices >= 0; got {seeds!r}")


def seed_streams(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(data, init) generators of seed index `index` under the root `seed`."""
    data, init = np.random.SeedSequence(seed, spawn_key=(index,)).spawn(2)
    return np.random.default_rng(data), np.random.default_rng(init)


# ----- options ----------------------------------------------------------------------------------
_KIND_WORDS = {"int>0": "a whole number >= 1", "int>=0": "a whole number >= 0", "float>0": "a finite number > 0",
               "float": "a finite number"}


def _check_value(name: str, spec: tuple, value: Any) -> None:
    flag = "--" + name.replace("_", "-")
    kind = spec[0]
    if kind == "choice":
        if not isinstance(value, str) or value not in spec[2]:
            accepted = ", ".join(spec[2])
            raise ValueError(f"{flag}: unknown value {value!r}; accepted: {accepted}")
        return
    if kind == "seeds":
        seed_indices(value)
        return
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    is_real = is_int or (isinstance(value, (float, np.floating)) and math.isfinite(value))
    ok = {"int>0": is_int and value >= 1, "int>=0": is_int and value >= 0,
          "float>0": is_real and value > 0, "float": is_real}[kind]
    if not ok:
        raise ValueError(f"{flag} must be {_KIND_WORDS[kind]}; got {value!r}")


def arch_experiment_options(name: str) -> dict[str, Any]:
    """The options an experiment takes, with their defaults."""
    import inspect
    if name not in ARCH_EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; accepted: {', '.join(ARCH_EXPERIMENTS)}")
    return {k: p.default for k, p in inspect.signature(ARCH_EXPERIMENTS[name]).parameters.items()
            if k not in ("progress", "store")}


def validate_arch_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The full options (defaults filled in) after checking every value; a ValueError names
    the option (as its command-line flag) and what it accepts."""
    accepted = arch_experiment_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"experiment {name!r} has no option(s) {unknown}; accepted: {sorted(accepted)}")
    full = {**accepted, **options}
    for key, value in full.items():
        spec = _OPTIONS[key]
        if isinstance(accepted[key], (list, tuple)) and spec[0] != "seeds":
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"--{key.replace('_', '-')} needs at least one value; got {value!r}")
            for item in value:
                _check_value(key, spec, item)
        else:
            _check_value(key, spec, value)
    return full


def run_arch_experiment(name: str, progress: bool = False, store: Any = None, **options: Any) -> dict:
    """Run a named experiment of this module after checking every option (validate_arch_options)."""
    full = validate_arch_options(name, options)
    runs = ARCH_EXPERIMENTS[name](progress=progress, store=store or _COMPUTE, **options)
    return {"experiment": name, "options": _jsonable(full), "runs": _jsonable(runs)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----- variants ------------------------------------------------------------------------------------
def parse_variant(variant: str) -> tuple[str, bool, bool]:
    """'dense+maxout+wn' -> ("dense", maxout=True, weight_norm=True)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; accepted: a kind ({', '.join(nn.KINDS)}) followed by "
                         "+maxout and/or +wn in that order, e.g. dense, plain+wn, residual+maxout+wn")
    kind, *mods = variant.split("+")
    return kind, "maxout" in mods, "wn" in mods


def build_variant(variant: str, width: int, depth: int, activation: str = "tanh", init: str = "standard",
                  growth: int = 20, pieces: int = 2, rng: Any = None) -> nn.DeepMLP:
    """The float64 deep_mlp of a variant (see the module docstring)."""
    kind, maxout, wn = parse_variant(variant)
    return nn.deep_mlp(kind, width, depth, "maxout" if maxout else activation, init=init, dtype=np.float64,
                       rng=rng, growth=growth if kind == "dense" else None, pieces=pieces if maxout else None,
                       weight_norm=wn)


def measure_blocks(model: nn.DeepMLP, x: np.ndarray, y: np.ndarray, keep_arrays: bool = False) -> dict:
    """One forward/backward of mse_loss(model(x), y) under a Probe on model.blocks.

    grad_h_norm: ||dL/dh_l||, l = 0 (the input) .. L (a dense block's h_l is its `growth` new
    features); grad_W_norm: per block, the norm of the gradients of its weight parameters
    together (weight, or weight_g and weight_v under weight norm); log10_ratio_h:
    log10(||dL/dh_1|| / ||dL/dh_L||)."""
    with Probe(model.blocks) as probe:
        xt = Tensor(x, requires_grad=True)
        model.zero_grad()
        loss = F.mse_loss(model(xt), Tensor(y))
        loss.backward()
        grad_W = []
        for block in model.blocks:
            norms = [norm(p.grad) for name, p in block.named_parameters()
                     if name.rsplit(".", 1)[-1] in ("weight", "weight_g", "weight_v") and p.grad is not None
                     and "norm." not in name]
            grad_W.append(norm(np.array(norms)))
        out = {"loss": float(loss.item()), "grad_h_norm": probe.grad_h_norm(), "grad_W_norm": grad_W,
               "log10_ratio_h": probe.log10_ratio_h(),
               "act": [s["std"] for s in probe.summaries("h")]}
        if keep_arrays:
            out["grad_h"] = [g[0].tolist() for g in probe.grad_h]
    return out


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, lr: float,
           on_step: Callable[[], None]) -> list[float]:
    opt = optim.SGD(list(model.parameters()), lr=lr, momentum=MOMENTUM)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(Tensor(x)), Tensor(y))
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        on_step()
    return losses


def _variant_config(variant: str, activation: str, growth: int, pieces: int) -> dict:
    kind, maxout, wn = parse_variant(variant)
    return dict(variant=variant, kind=kind, activation="maxout" if maxout else activation,
                pieces=pieces if maxout else None, growth=growth if kind == "dense" else None, weight_norm=wn)


@experiment("arch-seed-figure")
def arch_seed_figure(variants: Sequence[str] = ("plain", "residual", "dense", "plain+maxout", "plain+wn"),
                     width: int = 20, depth: int = 20, activation: str = "tanh", growth: int = 20, pieces: int = 2,
                     init: str = "standard", batch: int = 32, steps: int = 200, lr: float = 0.01, seed: int = 0,
                     seeds: int | Sequence[int] = 1, progress: bool = False, store: Any = _COMPUTE) -> list[dict]:
    """The seed's picture for the other architectures: the 20-layer, 20-unit net on random 20-d
    data as each variant, ||dL/dh_l|| per block at initialisation and after a number of steps of SGD
    (momentum 0.9) on the mean squared error, with the loss curve. Within a seed index every
    variant sees the same data."""
    runs = []
    indices = seed_indices(seeds)
    bar = Progress(len(variants) * len(indices) * (steps + 2), "arch-seed-figure", enabled=progress)
    for variant, index in ((v, i) for v in variants for i in indices):
        config = dict(**_variant_config(variant, activation, growth, pieces), init=init, depth=depth, width=width,
                      batch=batch, seed=seed, seed_index=index, lr=lr, momentum=MOMENTUM)

        def compute() -> list[dict]:
            data_rng, init_rng = seed_streams(seed, index)
            x, y = data_rng.normal(size=(batch, width)), data_rng.normal(size=(batch, width))
            model = build_variant(variant, width, depth, activation, init, growth, pieces, rng=init_rng)
            at_init = {**config, "phase": "init", "steps": 0, **measure_blocks(model, x, y, keep_arrays=True)}
            bar.update(1, variant)
            losses = _train(model, x, y, steps, lr, on_step=lambda: bar.update(1, variant))
            return [at_init, {**config, "phase": "trained", "steps": steps, "loss_curve": losses,
                              **measure_blocks(model, x, y, keep_arrays=True)}]
        done = bar.done
        runs += store.runs("arch-seed-figure", {**config, "steps": steps}, compute)
        bar.update(done + steps + 2 - bar.done, variant)
    bar.close()
    return runs


@experiment("arch-depth")
def arch_depth(depths: Sequence[int] = (5, 10, 20, 50, 100, 200),
               variants: Sequence[str] = ("plain", "residual", "dense", "plain+maxout", "plain+wn"),
               width: int = 20, activation: str = "tanh", growth: int = 20, pieces: int = 2, init: str = "standard",
               batch: int = 32, seed: int = 0, seeds: int | Sequence[int] = 1, progress: bool = False,
               store: Any = _COMPUTE) -> list[dict]:
    """The headline ratio log10(||dL/dh_1|| / ||dL/dh_L||) against depth for each variant, at
    initialisation. A dense net's cost grows as depth^2 (block i reads width + i*growth features)."""
    runs = []
    indices = seed_indices(seeds)
    configs = [(v, d, i) for v in variants for d in depths for i in indices]
    bar = Progress(sum(d for _, d, _ in configs), "arch-depth", enabled=progress)
    for variant, d, index in configs:
        config = dict(**_variant_config(variant, activation, growth, pieces), init=init, depth=d, width=width,
                      batch=batch, seed=seed, seed_index=index)

        def compute() -> list[dict]:
            data_rng, init_rng = seed_streams(seed, index)
            x, y = data_rng.normal(size=(batch, width)), data_rng.normal(size=(batch, width))
            model = build_variant(variant, width, d, activation, init, growth, pieces, rng=init_rng)
            m = measure_blocks(model, x, y)
            return [dict(**config, log10_slope=fit_log10_slope(m["grad_h_norm"][1:]), **m)]
        runs += store.runs("arch-depth", config, compute)
        bar.update(d, f"{variant} depth {d}")
    bar.close()
    return runs


# ----- NARX ----------------------------------------------------------------------------------------
def measure_narx(cell: nn.Module, xs: np.ndarray, target: np.ndarray) -> dict:
    """Unroll a NARXCell, RNNCell, GRUCell or LSTMCell over xs (T, N, D) from a zero state,
    loss = MSE(h_T, target); ||dL/dh_t|| for t = 0 .. T (h_0: the initial state; for NARX the
    most recent of its D initial states) and ||dL/dW|| of the shared weights."""
    steps, batch, _ = xs.shape
    hidden = cell.hidden_size
    h = Tensor(np.zeros((batch, hidden)), requires_grad=True)
    hs = [h]
    if isinstance(cell, nn.NARXCell):
        zero = Tensor(np.zeros((batch, hidden)))
        history = [h] + [zero] * (cell.delay - 1)
        for t in range(steps):
            h = cell(Tensor(xs[t]), history)
            h.retain_grad()
            hs.append(h)
            history = [h] + history[:-1]
    else:
        state: Any = (h, Tensor(np.zeros((batch, hidden)))) if isinstance(cell, nn.LSTMCell) else h
        for t in range(steps):
            state = cell(Tensor(xs[t]), state)
            h = state[0] if isinstance(state, tuple) else state
            h.retain_grad()
            hs.append(h)
    loss = F.mse_loss(h, Tensor(target))
    cell.zero_grad()
    loss.backward()
    norms = [norm(t.grad) if t.grad is not None else 0.0 for t in hs]
    weight_norm = norm(np.array([norm(p.grad) for n, p in cell.named_parameters() if "weight" in n]))
    return {"loss": float(loss.item()), "grad_h_norm": norms, "grad_W_norm": [weight_norm],
            "log10_ratio_h": log10_ratio(norms[1], norms[-1]),
            "act": [layer_summary(t.data)["std"] for t in hs]}


def _gated_cell(cell: str, input_size: int, hidden: int, gate_bias: float, rng: np.random.Generator) -> nn.Module:
    """An RNN, GRU or LSTM cell with torch's init; gate_bias is added to the LSTM forget gate's or
    the GRU update gate's bias (slice H:2H of bias_ih, torch's gate order), as experiments.py does."""
    if cell == "rnn":
        return nn.RNNCell(input_size, hidden, dtype=np.float64, rng=rng)
    module = (nn.GRUCell if cell == "gru" else nn.LSTMCell)(input_size, hidden, dtype=np.float64, rng=rng)
    module.bias_ih.data[hidden:2 * hidden] += gate_bias
    return module


@experiment("narx")
def narx(delays: Sequence[int] = (1, 2, 4, 8), narx_inits: Sequence[str] = ("torch", "fan_in"),
         cells: Sequence[str] = ("lstm",), gate_biases: Sequence[float] = (0.0, 2.0), T: int = 1000,
         input_size: int = 8, hidden: int = 32, batch: int = 16, seed: int = 0, seeds: int | Sequence[int] = 1,
         progress: bool = False, store: Any = _COMPUTE) -> list[dict]:
    """NARX nets (h_t = tanh(W_ih x_t + b_ih + sum over d = 1..D of U_d h_(t-d) + b_hh)) with each delay D
    and recurrent init, against the gated cells: ||dL/dh_t|| at every step with the loss on
    the last one. Lin et al. 1996: the delays shorten the gradient's path from step T back to
    step t to about (T - t)/D Jacobian factors. Each NARX run reports log10_slope (decades of
    ||dL/dh_t|| per step, fitted over t = 1 .. T) and, as its prediction, the D = 1 net's slope
    divided by D: the path-length prediction (when D = 1 is among the delays; kept as a
    mapping, so that the lab's summaries over seeds do not take it for part of the configuration). With the torch
    init the D matrices together also feed D times the variance into each step; the fan_in
    init keeps that fixed, which isolates the path length. NARX with D = 1 is the vanilla
    RNN: the same equations and, from the same seed, the same initial weights as an RNNCell
    (experiments.py's rnn), under either init."""
    indices = seed_indices(seeds)
    configs = [("narx", d, 0.0, how) for how in narx_inits for d in delays]
    configs += [(c, 1, b, None) for c in cells for b in (gate_biases if c != "rnn" else (0.0,))]
    runs: list[dict] = []
    bar = Progress(len(configs) * len(indices) * T, "narx", enabled=progress)
    for (cell_name, delay, bias, how), index in ((c, i) for c in configs for i in indices):
        config = dict(kind="narx" if cell_name == "narx" else cell_name, cell=cell_name,
                      delay=delay if cell_name == "narx" else None, narx_init=how,
                      gate_bias=bias if cell_name in ("gru", "lstm") else None, activation="tanh", init="standard",
                      T=T, width=hidden, input_size=input_size, batch=batch, seed=seed, seed_index=index)

        def compute() -> list[dict]:
            data_rng, init_rng = seed_streams(seed, index)
            xs = data_rng.normal(size=(T, batch, input_size))
            target = data_rng.normal(size=(batch, hidden))
            if cell_name == "narx":
                cell = nn.NARXCell(input_size, hidden, delay=delay, dtype=np.float64, rng=init_rng)
                if how == "fan_in":
                    cell.weight_hh.data = cell.weight_hh.data / math.sqrt(delay)
            else:
                cell = _gated_cell(cell_name, input_size, hidden, bias, init_rng)
            m = measure_narx(cell, xs, target)
            return [dict(**config, log10_slope=fit_log10_slope(m["grad_h_norm"][1:]), **m)]
        runs += store.runs("narx", config, compute)
        bar.update(T, f"{cell_name} D={delay}")
    bar.close()
    for run in runs:   # the path-length prediction, from the D = 1 net of the same seed index and init
        base = [r for r in runs if r["cell"] == "narx" and r["delay"] == 1 and r["seed_index"] == run["seed_index"]
                and r["narx_init"] == run["narx_init"]]
        slope = base[0]["log10_slope"] if base else None
        run["prediction"] = {"log10_slope": slope / run["delay"] if run["cell"] == "narx" and slope is not None
                             else None, "from": "the D = 1 net's log10_slope / D"}
    return runs


# ----- what the sizes cost -------------------------------------------------------------------------
FLOAT, NODE_BYTES, SECONDS_PER_NODE, FLOPS = 8, 4096, 2e-5, 5e9   # experiments.py's calibration


def variant_cost(variant: str, depth: int, width: int, batch: int, growth: int = 20, pieces: int = 2,
                 passes: int = 1) -> tuple[float, float]:
    """(bytes, seconds) of `passes` forward/backward passes of one variant's net, rough as
    experiments.estimate_cost's (within a few times). A dense net's weights and kept inputs
    grow as depth^2: experiments.py's depth and seed-figure runs with kind "dense" (growth =
    width, deep_mlp's default) should be costed here."""
    kind, maxout, wn = parse_variant(variant)
    rows = width * (pieces if maxout else 1)
    if kind == "dense":   # block i: (width + i*growth) -> growth (times pieces)
        grow = growth * (pieces if maxout else 1)
        weights = depth * width * grow + grow * growth * depth * (depth - 1) / 2 + (width + depth * growth) * width
        kept = batch * (depth * width + growth * depth * (depth + 1) / 2)   # every block's input, concatenated
    else:
        weights = depth * rows * width * (2 if kind == "highway" else 1)
        kept = 4 * batch * depth * rows
    nodes = depth * (4 if maxout else 1) * (3 if wn else 1) + (2 * depth if kind == "dense" else 0)
    memory = FLOAT * (4 * weights + 2 * kept) + nodes * NODE_BYTES
    seconds = passes * (6.0 * batch * weights / FLOPS + 3 * nodes * SECONDS_PER_NODE + depth * 1e-3)
    return memory, seconds


def estimate_arch_cost(name: str, options: dict[str, Any]) -> tuple[float, float]:
    """(bytes, seconds): roughly the peak memory and the time of an experiment (as
    experiments.estimate_cost: memory of the largest configuration, time of all of them)."""
    o = validate_arch_options(name, options)
    n_seeds = len(seed_indices(o["seeds"]))
    if name == "arch-seed-figure":
        costs = [variant_cost(v, o["depth"], o["width"], o["batch"], o["growth"], o["pieces"], o["steps"] + 2)
                 for v in o["variants"]]
    elif name == "arch-depth":
        costs = [variant_cost(v, d, o["width"], o["batch"], o["growth"], o["pieces"], 1)
                 for v in o["variants"] for d in o["depths"]]
    else:
        T, N, H, D_in = o["T"], o["batch"], o["hidden"], o["input_size"]
        costs = [(T * (FLOAT * N * H * (d + 6) + 6 * NODE_BYTES), T * (6.0 * N * H * (D_in + d * H) / FLOPS
                                                                      + 12 * SECONDS_PER_NODE))
                 for d in list(o["delays"]) * len(o["narx_inits"]) + [4] * len(o["cells"]) * len(o["gate_biases"])]
    return max(c[0] for c in costs), n_seeds * sum(c[1] for c in costs)
