"""The experiments of the vanishing-gradient lab. Each is a seeded function that
returns JSON-serialisable data of one shape:

    {"experiment": name, "options": {...}, "runs": [run, ...]}

and every run holds its configuration (kind, activation, init, depth or T, width,
seed, ...) and its measurements: grad_h_norm (||dL/dh_l||, l = 0 (input) .. L, or
per time step), grad_W_norm (per layer), log10_ratio_h = log10(||dL/dh_1|| / ||dL/dh_L||)
(None if a norm underflowed to 0), plus what the experiment shows besides.

Seeds are a dimension: every experiment takes `seed` (the root) and `seeds` (a count or a
list of seed indices); seed index i draws its data and its initial weights from two streams
spawned from child i of numpy.random.SeedSequence(seed) (seed_streams), so each run can be
computed alone, on any machine, and the kinds compared within one index share their data and,
where the shapes allow, their initial weights. run_experiment adds per-configuration
summaries over the seeds (stats.py) and the provenance (provenance.py).

Experiments compute; plots.py draws. All run in float64 so that gradients which
fall by hundreds of decades are measured rather than flushed to zero early.

Design: every option is described once, in OPTIONS (its check and its help sentence);
`validate_options` checks a whole set before any work and `estimate_cost` says what the
sizes would take, so the CLI can refuse with numbers instead of failing an hour in. Each
experiment runs a list of configurations, each from its own seed, through a store: the
default computes; `ResultStore(directory)` keeps each configuration's runs in a file named
by a hash of the configuration, so an interrupted run started again computes only the rest,
with results identical to an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .. import functional as F
from .. import kernels, nn, optim
from . import architectures as _architectures
from . import conv_experiments as _conv
from ..io import atomic_write
from ..tensor import Tensor
from .probes import Probe, fit_log10_slope
from .progress import Progress
from .stats import summarise

__all__ = ["EXPERIMENTS", "OPTIONS", "run_experiment", "experiment_options", "validate_options", "estimate_cost",
           "ResultStore", "measure_deep_net", "seed_indices", "seed_streams"]

EXPERIMENTS: dict[str, Callable[..., dict]] = {}
MOMENTUM = 0.9     # SGD momentum of every training run
GATE_BIAS = -2.0   # deep_mlp's default highway gate bias


def experiment(name: str) -> Callable:
    def register(fn: Callable) -> Callable:
        EXPERIMENTS[name] = fn
        return fn
    return register


def experiment_options(name: str) -> dict[str, Any]:
    """The options an experiment takes, with their defaults."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; accepted: {', '.join(EXPERIMENTS)}")
    return {k: p.default for k, p in inspect.signature(EXPERIMENTS[name]).parameters.items()
            if k not in ("progress", "store")}


def run_experiment(name: str, progress: bool = False, store: ResultStore | None = None,
                   provenance: bool = True, **options: Any) -> dict:
    """Run a named experiment. Every option is checked first (validate_options): unknown
    names or options, and values out of range, raise ValueError saying what is accepted.
    With a ResultStore, configurations already in it are read instead of computed.

    The result holds every run (one per configuration and seed index), "summaries" (per
    configuration: mean, sd, min, median, max and 95% interval of each statistic over the
    seeds; stats.summarise) and "provenance" (provenance.provenance; provenance=False leaves
    it out, as a sweep's points do: the sweep records it once)."""
    full = validate_options(name, options)
    start = time.monotonic()
    runs = _jsonable(EXPERIMENTS[name](progress=progress, store=store or _COMPUTE, **options))
    out = {"experiment": name, "options": _jsonable(full), "runs": runs, "summaries": _jsonable(summarise(runs))}
    if provenance:
        from .provenance import provenance as describe_run
        out["provenance"] = _jsonable(describe_run(out["options"], seed_indices(full["seeds"]),
                                                   time.monotonic() - start))
    return out


# ----- options: one description each, the check and the help sentence ------------------------
class Option(NamedTuple):
    kind: str                 # "int>0", "int>=0", "float>0", "float", "choice", or "seeds"
    help: str                 # one or more whole sentences, for --help and `list`
    choices: Sequence[str] = ()


def _names(values: Any) -> str:
    return ", ".join(values)


OPTIONS: dict[str, Option] = {
    "kinds": Option("choice", f"The kinds of net to compare ({_names(nn.KINDS)}).", nn.KINDS),
    "kind": Option("choice", f"The kind of net ({_names(nn.KINDS)}).", nn.KINDS),
    "width": Option("int>0", "The number of units in every layer."),
    "depth": Option("int>0", "The number of blocks (layers) of the net."),
    "depths": Option("int>0", "The numbers of blocks to measure, one net per number."),
    "activation": Option("choice", f"The activation function of every layer ({_names(nn.ACTIVATIONS)}).",
                         tuple(nn.ACTIVATIONS)),
    "activations": Option("choice", f"The activation functions to compare ({_names(nn.ACTIVATIONS)}).",
                          tuple(nn.ACTIVATIONS)),
    "init": Option("choice", f"The weight initialisation ({_names(nn.init.INITIALIZERS)}).", nn.init.INITIALIZERS),
    "inits": Option("choice", f"The weight initialisations to compare ({_names(nn.init.INITIALIZERS)}).",
                    nn.init.INITIALIZERS),
    "scales": Option("float>0", "The scales s of the deep linear net's weights, drawn from N(0, s^2/n)."),
    "norms": Option("choice", "The normalisations after each linear map to compare (none, batch, layer).",
                    ("none", "batch", "layer")),
    "batch": Option("int>0", "The number of random input samples in the batch."),
    "steps": Option("int>0", f"The number of SGD steps (momentum {MOMENTUM}) to train for."),
    "lr": Option("float>0", "The SGD learning rate."),
    "seed": Option("int>=0", "The root seed: seed index i draws its data and initial weights from child i of "
                             "numpy.random.SeedSequence(seed)."),
    "seeds": Option("seeds", "How many seeds to run each configuration with (a count n: seed indices 0 .. n-1), "
                             "or which seed indices (a list). Within one seed index, the kinds compared share "
                             "the same data and, where the shapes allow, the same initial weights."),
    "cells": Option("choice", "The recurrent cells to compare (rnn, gru, lstm).", ("rnn", "gru", "lstm")),
    "T": Option("int>0", "The number of time steps the cells are unrolled for."),
    "gate_biases": Option("float", "The values added to the LSTM forget gate's and the GRU update gate's "
                                   "bias, one run per value."),
    "input_size": Option("int>0", "The number of input features per time step."),
    "hidden": Option("int>0", "The number of hidden units of each cell."),
}

_KIND_WORDS = {"int>0": "a whole number >= 1", "int>=0": "a whole number >= 0", "float>0": "a finite number > 0",
               "float": "a finite number"}


def _check_value(name: str, spec: Option, value: Any) -> None:
    flag = "--" + name.replace("_", "-")
    if spec.kind == "choice":
        if not isinstance(value, str) or value not in spec.choices:
            raise ValueError(f"{flag}: unknown value {value!r}; accepted: {_names(spec.choices)}")
        return
    if spec.kind == "seeds":
        seed_indices(value)
        return
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    is_real = is_int or (isinstance(value, (float, np.floating)) and math.isfinite(value))
    ok = {"int>0": is_int and value >= 1, "int>=0": is_int and value >= 0,
          "float>0": is_real and value > 0, "float": is_real}[spec.kind]
    if not ok:
        raise ValueError(f"{flag} must be {_KIND_WORDS[spec.kind]}; got {value!r}")


def seed_indices(seeds: Any) -> list[int]:
    """The seed indices `seeds` names: a count n is 0 .. n-1; a list is taken as it is (each a
    whole number >= 0, no repeats). Anything else raises ValueError."""
    def whole(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
    if whole(seeds):
        if seeds < 1:
            raise ValueError(f"--seeds must be a count >= 1 or a list of seed indices >= 0; got {seeds!r}")
        return list(range(int(seeds)))
    if isinstance(seeds, (list, tuple)) and seeds and all(whole(v) and v >= 0 for v in seeds):
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"--seeds lists a seed index twice: {list(seeds)!r}")
        return [int(v) for v in seeds]
    raise ValueError(f"--seeds must be a count >= 1 or a list of seed indices >= 0; got {seeds!r}")


def seed_streams(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(data, init) generators of seed index `index` under the root `seed`: child `index` of
    SeedSequence(seed) (what SeedSequence(seed).spawn(n)[index] is, for any n > index), split
    in two so that the data do not depend on how many weights a kind of net draws."""
    child = np.random.SeedSequence(seed, spawn_key=(index,))
    data, init = child.spawn(2)
    return np.random.default_rng(data), np.random.default_rng(init)


def validate_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The experiment's full options (defaults filled in) after checking every value: unknown
    options, empty lists, numbers out of range and unknown choices raise ValueError naming
    the option (as its command-line flag) and what it accepts."""
    accepted = experiment_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"experiment {name!r} has no option(s) {unknown}; accepted: {sorted(accepted)}")
    full = {**accepted, **options}
    for key, value in full.items():
        spec = OPTIONS[key]
        if isinstance(accepted[key], (list, tuple)):
            # init's two lists are two families of runs: either may be empty, not both
            may_be_empty = name == "init" and key in ("inits", "scales") and (full["inits"] or full["scales"])
            if not isinstance(value, (list, tuple)) or not (value or may_be_empty):
                raise ValueError(f"--{key.replace('_', '-')} needs at least one value; got {value!r}")
            for item in value:
                _check_value(key, spec, item)
        else:
            _check_value(key, spec, value)
    return full


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


# ----- the store: computed, or kept per configuration for a resumable run ---------------------
class _Compute:
    """The default store: computes every configuration."""

    def runs(self, experiment: str, config: dict, compute: Callable[[], list[dict]]) -> list[dict]:
        return compute()


_COMPUTE = _Compute()


def _code_fingerprint() -> str:
    """A digest of every file of the installed package (sources and compiled extensions) and
    of the kernel backend: kept results are reused only by the code that computed them."""
    if not _FINGERPRINT:
        package = Path(__file__).resolve().parent.parent
        digest = hashlib.sha256(kernels.BACKEND.encode())
        for path in sorted(package.rglob("*")):
            if path.suffix in (".py", ".so", ".pyd") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
        _FINGERPRINT.append(digest.hexdigest())
    return _FINGERPRINT[0]


_FINGERPRINT: list[str] = []


class ResultStore(_Compute):
    """Keeps each configuration's runs in DIRECTORY/EXPERIMENT-HASH.json, HASH a digest of the
    experiment's name, the configuration (every value its runs depend on) and the code (every
    file of the package, and the kernel backend: a changed engine or the other backend computes
    afresh). A configuration whose file is there and whole is read, not computed; a damaged
    file is computed again and replaced; with reuse=False every configuration is computed (and
    kept). Files are written atomically, so a run killed at any point leaves only whole ones."""

    def __init__(self, directory: str | os.PathLike, reuse: bool = True) -> None:
        self.directory, self.reuse = Path(directory), reuse
        self.reused = self.computed = 0

    def path(self, experiment: str, config: dict) -> Path:
        key = json.dumps({"experiment": experiment, "config": _jsonable(config), "code": _code_fingerprint()},
                         sort_keys=True)
        return self.directory / f"{experiment}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"

    def runs(self, experiment: str, config: dict, compute: Callable[[], list[dict]]) -> list[dict]:
        path = self.path(experiment, config)
        try:
            kept = json.loads(path.read_text()) if self.reuse else None
            if kept["config"] == _jsonable(config) and isinstance(kept["runs"], list):
                self.reused += 1
                return kept["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        runs = _jsonable(compute())
        self.computed += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w", encoding="utf-8") as f:
            json.dump({"experiment": experiment, "config": _jsonable(config), "runs": runs}, f)
        return runs


# ----- what the sizes cost -------------------------------------------------------------------
# Calibrated on this package's runs (tracemalloc peaks, wall time on one core), rounded so
# that the estimate errs high on memory, by up to about 3 times.
FLOAT = 8                  # bytes: the lab runs in float64
NODE_BYTES = 4096          # Python objects per recorded op or block (Tensors, nodes, dicts)
SECONDS_PER_NODE = 2e-5    # the engine's Python per op in a training step
SECONDS_PER_PROBED = 1e-3  # a probed block: hooks, norms and layer statistics, per measurement
FLOPS = 5e9                # the matmul rate measured for width 1000, batch 256 on one core


def _deep_net_cost(depth: int, width: int, batch: int, kind: str = "plain", passes: int = 1,
                   kept_per_layer: int = 0) -> tuple[float, float]:
    """(bytes, seconds) of one deep net: its parameters with their gradients and momentum,
    the activations and gradients saved and probed per block, Python objects per block;
    `passes` forward/backward passes. A dense net's blocks grow with depth: architectures.py."""
    if kind == "dense":
        return _architectures.variant_cost("dense", depth, width, batch, growth=width, passes=passes)
    linears = 2 if kind == "highway" else 1
    params = linears * (width * width + width) + 4 * width
    per_block = FLOAT * (3 * params + 4 * linears * batch * width) + 3 * NODE_BYTES + kept_per_layer
    flops = passes * depth * linears * 6.0 * batch * width * width
    measures = 2 if passes > 1 else 1   # before and after training
    return (float(depth) * per_block,
            flops / FLOPS + depth * (passes * 3 * SECONDS_PER_NODE + measures * SECONDS_PER_PROBED))


def _recurrent_cost(cell: str, T: int, batch: int, input_size: int, hidden: int) -> tuple[float, float]:
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    per_step = FLOAT * batch * hidden * (2 * gates + 4) + 5 * NODE_BYTES
    flops = T * 6.0 * batch * gates * hidden * (input_size + hidden)
    return float(T) * per_step, flops / FLOPS + T * 15 * SECONDS_PER_NODE


def estimate_cost(name: str, options: dict[str, Any]) -> tuple[float, float]:
    """(bytes, seconds): roughly the peak memory and the time of running the experiment with
    these (validated) options. Memory is that of the largest configuration, as configurations
    run one after another; time is their sum, times the number of seeds. Rough on purpose (within a few times): it is
    there to refuse sizes that cannot fit, with numbers, before any work starts."""
    o = validate_options(name, options)
    if name in _architectures.ARCH_EXPERIMENTS:
        return _architectures.estimate_arch_cost(name, options)
    if name == "conv-depth":   # seconds per step of a 56-layer net, batch 32, 16 x 16 (measured: about 3 s)
        steps = (o["steps"] + 2) * len(o["kinds"]) * len(seed_indices(o["seeds"]))
        return 4e8, sum(steps * 3.0 * d / 56 * (o["image_size"] / 16) ** 2 * o["batch"] / 32 for d in o["depths"])
    costs: list[tuple[float, float]] = []
    if name in ("seed-figure", "learning-speed"):
        # seed-figure keeps sample 0's activations and gradients per layer (Python floats);
        # learning-speed keeps one update ratio per layer and step
        keep = 2 * o["width"] * 32 if name == "seed-figure" else o["steps"] * 32
        costs = [_deep_net_cost(o["depth"], o["width"], o["batch"], k, o["steps"] + 2, keep) for k in o["kinds"]]
    elif name == "activations":
        costs = [_deep_net_cost(o["depth"], o["width"], o["batch"], o["kind"]) for _ in o["activations"]]
    elif name == "init":
        costs = [_deep_net_cost(o["depth"], o["width"], o["batch"])] * (len(o["inits"]) + len(o["scales"]))
    elif name == "depth":
        costs = [_deep_net_cost(d, o["width"], o["batch"], k) for k in o["kinds"] for _ in o["norms"]
                 for d in o["depths"]]
    elif name == "recurrent":
        costs = [_recurrent_cost(c, o["T"], o["batch"], o["input_size"], o["hidden"]) for c in o["cells"]
                 for _ in (o["gate_biases"] if c != "rnn" else (0.0,))]
    return max(c[0] for c in costs), len(seed_indices(o["seeds"])) * sum(c[1] for c in costs)


def measure_deep_net(model: nn.Module, x: np.ndarray, y: np.ndarray, keep_arrays: bool = False) -> dict:
    """One forward/backward of mse_loss(model(x), y) under a Probe; the per-layer measurements."""
    with Probe(model.blocks) as probe:
        xt = Tensor(x, requires_grad=True)
        model.zero_grad()
        loss = F.mse_loss(model(xt), Tensor(y))
        loss.backward()
        grad_h = probe.grad_h_norm()
        out = {
            "loss": float(loss.item()),
            "grad_h_norm": grad_h,
            "grad_W_norm": probe.grad_W_norm(),
            "log10_ratio_h": probe.log10_ratio_h(),
            "act": [s["std"] for s in probe.summaries("h")],
            "act_saturated": [s["saturated"] for s in probe.summaries("h")],
            "act_zero": [s["zero"] for s in probe.summaries("h")],
        }
        if keep_arrays:   # sample 0 of the batch, as the seed's pictures show one input
            out["activations"] = [h[0].tolist() for h in probe.h]
            out["grad_h"] = [g[0].tolist() for g in probe.grad_h]
    return out


def _data(rng: np.random.Generator, batch: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed's task: random N(0, 1) inputs and targets."""
    return rng.normal(size=(batch, width)), rng.normal(size=(batch, width))


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, lr: float,
           on_step: Callable[[int], None] | None = None) -> list[float]:
    opt = optim.SGD(list(model.parameters()), lr=lr, momentum=MOMENTUM)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(Tensor(x)), Tensor(y))
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        if on_step:
            on_step(step)
    return losses


@experiment("seed-figure")
def seed_figure(kinds: Sequence[str] = ("plain", "residual", "highway"), width: int = 20, depth: int = 20,
                activation: str = "tanh", init: str = "standard", batch: int = 32, steps: int = 200,
                lr: float = 0.01, seed: int = 0, seeds: int | Sequence[int] = 1, progress: bool = False,
                store: _Compute = _COMPUTE) -> list[dict]:
    """The picture that started the project: a 20-layer, 20-unit tanh net on random 20-d data,
    plain against residual against highway, at initialisation and after training with SGD
    (momentum 0.9) on the mean squared error."""
    runs = []
    indices = seed_indices(seeds)
    bar = Progress(len(kinds) * len(indices) * (steps + 2), "seed-figure", enabled=progress)
    for kind, index in ((k, i) for k in kinds for i in indices):
        config = dict(kind=kind, activation=activation, init=init, depth=depth, width=width,
                      batch=batch, seed=seed, seed_index=index, lr=lr, momentum=MOMENTUM,
                      gate_bias=GATE_BIAS if kind == "highway" else None)

        def compute() -> list[dict]:
            data_rng, init_rng = seed_streams(seed, index)
            x, y = _data(data_rng, batch, width)
            model = nn.deep_mlp(kind, width, depth, activation, init=init, dtype=np.float64, rng=init_rng)
            at_init = {**config, "phase": "init", "steps": 0, **measure_deep_net(model, x, y, keep_arrays=True)}
            bar.update(1, kind)
            losses = _train(model, x, y, steps, lr, on_step=lambda s: bar.update(1, kind))
            return [at_init, {**config, "phase": "trained", "steps": steps, "loss_curve": losses,
                              **measure_deep_net(model, x, y, keep_arrays=True)}]
        done = bar.done
        runs += store.runs("seed-figure", {**config, "steps": steps}, compute)
        bar.update(done + steps + 2 - bar.done, kind)
    bar.close()
    return runs


@experiment("activations")
def activations(activations: Sequence[str] = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "linear"),
                kind: str = "plain", width: int = 20, depth: int = 20, init: str = "standard",
                batch: int = 32, seed: int = 0, seeds: int | Sequence[int] = 1, progress: bool = False,
                store: _Compute = _COMPUTE) -> list[dict]:
    """Plain nets with each activation function. The sigmoid's derivative is at most 1/4, so each
    sigmoid layer multiplies the gradient by at most 1/4 times what its weights give; the figure
    draws that bound, log10(4) decades per layer, as a reference line."""
    runs = []
    indices = seed_indices(seeds)
    bar = Progress(len(activations) * len(indices), "activations", enabled=progress)
    for act, index in ((a, i) for a in activations for i in indices):
        config = dict(kind=kind, activation=act, init=init, depth=depth, width=width, batch=batch, seed=seed,
                      seed_index=index)

        def compute() -> list[dict]:
            data_rng, init_rng = seed_streams(seed, index)
            x, y = _data(data_rng, batch, width)
            model = nn.deep_mlp(kind, width, depth, act, init=init, dtype=np.float64, rng=init_rng)
            m = measure_deep_net(model, x, y)
            return [dict(**config, log10_slope=fit_log10_slope(m["grad_h_norm"][1:]),
                         theory_log10_slope=math.log10(4.0) if act == "sigmoid" else None, **m)]
        runs += store.runs("activations", config, compute)
        bar.update(1, act)
    bar.close()
    return runs


@experiment("init")
def init(inits: Sequence[str] = ("standard", "lecun_normal", "xavier_normal", "he_normal", "orthogonal"),
         scales: Sequence[float] = (0.5, 0.9, 1.0, 1.1, 2.0), activation: str = "tanh", width: int = 32,
         depth: int = 30, batch: int = 32, seed: int = 0, seeds: int | Sequence[int] = 1, progress: bool = False,
         store: _Compute = _COMPUTE) -> list[dict]:
    """Initialisations compared in a tanh net, and a deep linear net with weights N(0, s^2/n) for
    each scale s, where theory predicts that the gradient norm shrinks by the factor s per layer
    going back: its log10 falls by log10(s) per layer."""
    runs = []
    indices = seed_indices(seeds)
    configs = [(name, activation, 1.0, i) for name in inits for i in indices] \
        + [("scaled_normal", "linear", s, i) for s in scales for i in indices]
    bar = Progress(len(configs), "init", enabled=progress)
    for name, act, scale, index in configs:
        config = dict(kind="plain", activation=act, init=name, scale=scale, depth=depth, width=width,
                      batch=batch, seed=seed, seed_index=index)

        def compute() -> list[dict]:
            data_rng, init_rng = seed_streams(seed, index)
            x, y = _data(data_rng, batch, width)
            model = nn.deep_mlp("plain", width, depth, act, init=name, init_scale=scale, dtype=np.float64,
                                rng=init_rng)
            m = measure_deep_net(model, x, y)
            slope = fit_log10_slope(m["grad_h_norm"][1:])
            return [dict(**config, log10_gain_per_layer=None if slope is None else -slope,
                         predicted_log10_gain_per_layer=math.log10(scale) if act == "linear" else None, **m)]
        runs += store.runs("init", config, compute)
        bar.update(1, f"{name} s={scale}")
    bar.close()
    return runs


@experiment("depth")
def depth(depths: Sequence[int] = (5, 10, 20, 50, 100, 200, 500, 1000),
          kinds: Sequence[str] = ("plain", "residual", "highway"), norms: Sequence[str] = ("none", "batch"),
          activation: str = "tanh", init: str = "standard", width: int = 20, batch: int = 32,
          seed: int = 0, seeds: int | Sequence[int] = 1, progress: bool = False,
          store: _Compute = _COMPUTE) -> list[dict]:
    """The headline ratio log10(||dL/dh_1|| / ||dL/dh_L||) against depth for each kind of net, with
    and without batch norm after each linear map. He et al. argue that batch norm alone keeps a
    plain net's gradient alive; the measurement says whether it does here."""
    runs = []
    configs = [(k, n, d, i) for k in kinds for n in norms for d in depths for i in seed_indices(seeds)]
    bar = Progress(sum(d for _, _, d, _ in configs), "depth", enabled=progress)
    for kind, norm_name, d, index in configs:
        config = dict(kind=kind, norm=norm_name, activation=activation, init=init, depth=d, width=width,
                      batch=batch, seed=seed, seed_index=index, gate_bias=GATE_BIAS if kind == "highway" else None)

        def compute() -> list[dict]:
            data_rng, init_rng = seed_streams(seed, index)
            x, y = _data(data_rng, batch, width)
            model = nn.deep_mlp(kind, width, d, activation, init=init,
                                norm=None if norm_name == "none" else norm_name, dtype=np.float64, rng=init_rng)
            return [dict(**config, **measure_deep_net(model, x, y))]
        runs += store.runs("depth", config, compute)
        bar.update(d, f"{kind} {norm_name} depth {d}")
    bar.close()
    return runs


CELLS = ("rnn", "gru", "lstm")


def _make_cell(cell: str, input_size: int, hidden: int, gate_bias: float, rng: np.random.Generator) -> nn.Module:
    """A recurrent cell with torch's init; gate_bias is added to the LSTM forget gate's or
    the GRU update gate's bias (both biases' slice H:2H in torch's gate order)."""
    if cell == "rnn":
        return nn.RNNCell(input_size, hidden, dtype=np.float64, rng=rng)
    module = (nn.GRUCell if cell == "gru" else nn.LSTMCell)(input_size, hidden, dtype=np.float64, rng=rng)
    module.bias_ih.data[hidden:2 * hidden] += gate_bias
    return module


def measure_recurrent(cell: nn.Module, xs: np.ndarray, target: np.ndarray) -> dict:
    """Unroll `cell` over xs (T, N, D) from a zero state, loss = MSE(h_T, target); record
    ||dL/dh_t|| for t = 0 .. T (h_0 is the initial state) and ||dL/dW|| of the shared weights.
    One unroll serves the gated cells and NARX: architectures.measure_narx."""
    return _architectures.measure_narx(cell, xs, target)


@experiment("recurrent")
def recurrent(cells: Sequence[str] = CELLS, T: int = 300, gate_biases: Sequence[float] = (0.0, 2.0),
              input_size: int = 8, hidden: int = 32, batch: int = 16, seed: int = 0,
              seeds: int | Sequence[int] = 1, progress: bool = False, store: _Compute = _COMPUTE) -> list[dict]:
    """A vanilla RNN against a GRU and an LSTM: the gradient norm ||dL/dh_t|| at each time step t
    with the loss on the last step. The gate biases are added to the LSTM forget gate's and the
    GRU update gate's bias: a positive bias makes the cell carry its state, which is what lets the
    gated cells keep the gradient."""
    configs = [(c, b, i) for c in cells for b in (gate_biases if c != "rnn" else (0.0,)) for i in seed_indices(seeds)]
    runs = []
    bar = Progress(len(configs) * T, "recurrent", enabled=progress)
    for cell_name, bias, index in configs:
        config = dict(kind=cell_name, cell=cell_name, gate_bias=bias, activation="tanh", init="standard",
                      T=T, width=hidden, input_size=input_size, batch=batch, seed=seed, seed_index=index)

        def compute() -> list[dict]:
            data_rng, init_rng = seed_streams(seed, index)
            xs = data_rng.normal(size=(T, batch, input_size))
            target = data_rng.normal(size=(batch, hidden))
            cell = _make_cell(cell_name, input_size, hidden, bias, init_rng)
            m = measure_recurrent(cell, xs, target)
            return [dict(**config, log10_slope=fit_log10_slope(m["grad_h_norm"][1:]), **m)]
        runs += store.runs("recurrent", config, compute)
        bar.update(T, f"{cell_name} bias {bias}")
    bar.close()
    return runs


@experiment("learning-speed")
def learning_speed(kinds: Sequence[str] = ("plain", "residual"), width: int = 20, depth: int = 20,
                   activation: str = "tanh", init: str = "standard", batch: int = 32, steps: int = 100,
                   lr: float = 0.01, seed: int = 0, seeds: int | Sequence[int] = 1, progress: bool = False,
                   store: _Compute = _COMPUTE) -> list[dict]:
    """During training, the size of each layer's weight update per step relative to the weight,
    ||dW_l|| / ||W_l||: in a plain net the early layers learn slowest."""
    runs = []
    indices = seed_indices(seeds)
    bar = Progress(len(kinds) * len(indices) * steps, "learning-speed", enabled=progress)
    for kind, index in ((k, i) for k in kinds for i in indices):
        config = dict(kind=kind, activation=activation, init=init, depth=depth, width=width, batch=batch,
                      seed=seed, seed_index=index, steps=steps, lr=lr, momentum=MOMENTUM)

        def compute() -> list[dict]:
            return [_learning_speed_run(config, lambda: bar.update(1, kind))]
        done = bar.done
        runs += store.runs("learning-speed", config, compute)
        bar.update(done + steps - bar.done, kind)
    bar.close()
    return runs


def _learning_speed_run(config: dict, on_step: Callable[[], None]) -> dict:
    kind, width, depth, batch, steps, lr = (config[k] for k in ("kind", "width", "depth", "batch", "steps", "lr"))
    data_rng, init_rng = seed_streams(config["seed"], config["seed_index"])
    x, y = _data(data_rng, batch, width)
    model = nn.deep_mlp(kind, width, depth, config["activation"], init=config["init"], dtype=np.float64, rng=init_rng)
    weights = [[p for n, p in block.named_parameters() if n.endswith("weight") and p.ndim == 2]
               for block in model.blocks]
    speed: list[list[float]] = []
    opt = optim.SGD(list(model.parameters()), lr=lr, momentum=MOMENTUM)
    losses = []
    for _ in range(steps):
        before = [[w.data.copy() for w in ws] for ws in weights]
        opt.zero_grad()
        loss = F.mse_loss(model(Tensor(x)), Tensor(y))
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        row = []
        for ws, olds in zip(weights, before):
            delta = math.sqrt(sum(float(np.sum((w.data - o) ** 2)) for w, o in zip(ws, olds)))
            size = math.sqrt(sum(float(np.sum(o ** 2)) for o in olds))
            row.append(delta / size if size else 0.0)
        speed.append(row)
        on_step()
    m = measure_deep_net(model, x, y)
    mean_speed = np.mean(np.asarray(speed), axis=0).tolist()
    return dict(**config, loss_curve=losses, update_ratio=speed, mean_update_ratio=mean_speed, **m)


# The seeds' other architectures (dense nets, weight norm, Maxout, NARX): lab/architectures.py.
EXPERIMENTS.update(_architectures.ARCH_EXPERIMENTS)
OPTIONS.update({name: Option(*spec) for name, spec in _architectures.ARCH_OPTIONS.items()})
# Plain against residual conv nets, 20 against 56 layers: lab/conv_experiments.py.
EXPERIMENTS["conv-depth"] = _conv.conv_depth_experiment
OPTIONS.update({name: Option(*spec) for name, spec in _conv.CONV_OPTIONS.items()})
