"""The experiments of the vanishing-gradient lab. Each is a seeded function that
returns JSON-serialisable data of one shape:

    {"experiment": name, "options": {...}, "runs": [run, ...]}

and every run holds its configuration (kind, activation, init, depth or T, width,
seed, ...) and its measurements: grad_h_norm (||dL/dh_l||, l = 0 (input) .. L, or
per time step), grad_W_norm (per layer), log10_ratio_h = log10(||dL/dh_1|| / ||dL/dh_L||)
(None if a norm underflowed to 0), plus what the experiment shows besides.

Experiments compute; plots.py draws. All run in float64 so that gradients which
fall by hundreds of decades are measured rather than flushed to zero early.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Sequence

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..tensor import Tensor
from .probes import Probe, fit_log10_slope, layer_summary, log10_ratio, norm
from .progress import Progress

__all__ = ["EXPERIMENTS", "run_experiment", "experiment_options", "measure_deep_net"]

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
            if k != "progress"}


def run_experiment(name: str, progress: bool = False, **options: Any) -> dict:
    """Run a named experiment; unknown names or options raise ValueError listing what is accepted."""
    accepted = experiment_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"experiment {name!r} has no option(s) {unknown}; accepted: {sorted(accepted)}")
    full = {**accepted, **options}
    runs = EXPERIMENTS[name](progress=progress, **options)
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


def _check_choice(what: str, values: Sequence[str], accepted: Sequence[Any]) -> None:
    for v in values:
        if v not in accepted:
            raise ValueError(f"unknown {what} {v!r}; accepted: {', '.join(str(a) for a in accepted)}")


def _positive_ints(what: str, values: Sequence[int]) -> None:
    for v in values:
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{what} must be positive integers; got {v!r}")


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
                lr: float = 0.01, seed: int = 0, progress: bool = False) -> list[dict]:
    """Seed 000: a 20-layer, 20-unit tanh net on random 20-d data, plain vs residual vs highway,
    at initialisation and after `steps` steps of SGD (momentum 0.9) on the MSE."""
    _check_choice("kind", kinds, nn.KINDS)
    _positive_ints("width, depth and batch", [width, depth, batch])
    runs = []
    bar = Progress(len(kinds) * (steps + 2), "seed-figure", enabled=progress)
    for kind in kinds:
        rng = np.random.default_rng(seed)
        x, y = _data(rng, batch, width)
        model = nn.deep_mlp(kind, width, depth, activation, init=init, dtype=np.float64, rng=rng)
        config = dict(kind=kind, activation=activation, init=init, depth=depth, width=width,
                      batch=batch, seed=seed, lr=lr, momentum=MOMENTUM,
                      gate_bias=GATE_BIAS if kind == "highway" else None)
        runs.append({**config, "phase": "init", "steps": 0, **measure_deep_net(model, x, y, keep_arrays=True)})
        bar.update(1, kind)
        losses = _train(model, x, y, steps, lr, on_step=lambda s: bar.update(1, kind))
        runs.append({**config, "phase": "trained", "steps": steps, "loss_curve": losses,
                     **measure_deep_net(model, x, y, keep_arrays=True)})
        bar.update(1, kind)
    bar.close()
    return runs


@experiment("activations")
def activations(activations: Sequence[str] = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "linear"),
                kind: str = "plain", width: int = 20, depth: int = 20, init: str = "standard",
                batch: int = 32, seed: int = 0, progress: bool = False) -> list[dict]:
    """Plain nets with each activation. The sigmoid's derivative is at most 1/4, so each
    sigmoid layer multiplies the gradient by at most 1/4 times what its weights give;
    `theory_log10_slope` = log10(4): the decades per layer (going toward the output) that
    the derivative alone accounts for, drawn as a reference line."""
    _check_choice("activation", activations, nn.ACTIVATIONS)
    _check_choice("kind", [kind], nn.KINDS)
    runs = []
    bar = Progress(len(activations), "activations", enabled=progress)
    for act in activations:
        rng = np.random.default_rng(seed)
        x, y = _data(rng, batch, width)
        model = nn.deep_mlp(kind, width, depth, act, init=init, dtype=np.float64, rng=rng)
        m = measure_deep_net(model, x, y)
        runs.append(dict(kind=kind, activation=act, init=init, depth=depth, width=width, batch=batch,
                         seed=seed, log10_slope=fit_log10_slope(m["grad_h_norm"][1:]),
                         theory_log10_slope=math.log10(4.0) if act == "sigmoid" else None, **m))
        bar.update(1, act)
    bar.close()
    return runs


@experiment("init")
def init(inits: Sequence[str] = ("standard", "lecun_normal", "xavier_normal", "he_normal", "orthogonal"),
         scales: Sequence[float] = (0.5, 0.9, 1.0, 1.1, 2.0), activation: str = "tanh", width: int = 32,
         depth: int = 30, batch: int = 32, seed: int = 0, progress: bool = False) -> list[dict]:
    """Initialisations compared in a tanh net, and a deep LINEAR net with weights N(0, s^2/n)
    for each s in `scales`, where theory predicts ||dL/dh_{l-1}|| ~ s ||dL/dh_l||: the log10 of
    the gradient norm falls by log10(s) per layer going back (`predicted_log10_gain_per_layer`)."""
    _check_choice("init", inits, nn.init.INITIALIZERS)
    runs = []
    configs = [(name, activation, 1.0) for name in inits] + [("scaled_normal", "linear", s) for s in scales]
    bar = Progress(len(configs), "init", enabled=progress)
    for name, act, scale in configs:
        if not scale > 0:
            raise ValueError(f"scales must be positive; got {scale}")
        rng = np.random.default_rng(seed)
        x, y = _data(rng, batch, width)
        model = nn.deep_mlp("plain", width, depth, act, init=name, init_scale=scale, dtype=np.float64, rng=rng)
        m = measure_deep_net(model, x, y)
        slope = fit_log10_slope(m["grad_h_norm"][1:])
        runs.append(dict(kind="plain", activation=act, init=name, scale=scale, depth=depth, width=width,
                         batch=batch, seed=seed,
                         log10_gain_per_layer=None if slope is None else -slope,
                         predicted_log10_gain_per_layer=math.log10(scale) if act == "linear" else None, **m))
        bar.update(1, f"{name} s={scale}")
    bar.close()
    return runs


@experiment("depth")
def depth(depths: Sequence[int] = (5, 10, 20, 50, 100, 200, 500, 1000),
          kinds: Sequence[str] = ("plain", "residual", "highway"), norms: Sequence[str] = ("none", "batch"),
          activation: str = "tanh", init: str = "standard", width: int = 20, batch: int = 32,
          seed: int = 0, progress: bool = False) -> list[dict]:
    """The headline ratio log10(||dL/dh_1|| / ||dL/dh_L||) against depth for each kind, with and
    without batch norm after each linear map (He et al.'s claim: batch norm alone keeps a plain
    net's gradient alive)."""
    _check_choice("kind", kinds, nn.KINDS)
    _check_choice("norm", norms, ("none", "batch", "layer"))
    _positive_ints("depths", depths)
    runs = []
    configs = [(k, n, d) for k in kinds for n in norms for d in depths]
    bar = Progress(sum(d for _, _, d in configs), "depth", enabled=progress)
    for kind, norm_name, d in configs:
        rng = np.random.default_rng(seed)
        x, y = _data(rng, batch, width)
        model = nn.deep_mlp(kind, width, d, activation, init=init, norm=None if norm_name == "none" else norm_name,
                            dtype=np.float64, rng=rng)
        m = measure_deep_net(model, x, y)
        runs.append(dict(kind=kind, norm=norm_name, activation=activation, init=init, depth=d, width=width,
                         batch=batch, seed=seed, gate_bias=GATE_BIAS if kind == "highway" else None, **m))
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
    ||dL/dh_t|| for t = 0 .. T (h_0 is the initial state) and ||dL/dW|| of the shared weights."""
    steps, batch, _ = xs.shape
    hidden = cell.hidden_size
    h = Tensor(np.zeros((batch, hidden)), requires_grad=True)
    state: Any = (h, Tensor(np.zeros((batch, hidden)))) if isinstance(cell, nn.LSTMCell) else h
    hs = [h]
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


@experiment("recurrent")
def recurrent(cells: Sequence[str] = CELLS, T: int = 300, gate_biases: Sequence[float] = (0.0, 2.0),
              input_size: int = 8, hidden: int = 32, batch: int = 16, seed: int = 0,
              progress: bool = False) -> list[dict]:
    """Vanilla RNN vs GRU vs LSTM: ||dL/dh_t|| against t with the loss on the last step.
    gate_biases are added to the LSTM forget gate / GRU update gate bias: a positive bias
    makes the cell carry its state, which is what lets the gated cells keep the gradient."""
    _check_choice("cell", cells, CELLS)
    _positive_ints("T, input_size, hidden and batch", [T, input_size, hidden, batch])
    configs = [(c, b) for c in cells for b in (gate_biases if c != "rnn" else (0.0,))]
    runs = []
    bar = Progress(len(configs) * T, "recurrent", enabled=progress)
    for cell_name, bias in configs:
        rng = np.random.default_rng(seed)
        xs = rng.normal(size=(T, batch, input_size))
        target = rng.normal(size=(batch, hidden))
        cell = _make_cell(cell_name, input_size, hidden, bias, rng)
        m = measure_recurrent(cell, xs, target)
        runs.append(dict(kind=cell_name, cell=cell_name, gate_bias=bias, activation="tanh", init="standard",
                         T=T, width=hidden, input_size=input_size, batch=batch, seed=seed,
                         log10_slope=fit_log10_slope(m["grad_h_norm"][1:]), **m))
        bar.update(T, f"{cell_name} bias {bias}")
    bar.close()
    return runs


@experiment("learning-speed")
def learning_speed(kinds: Sequence[str] = ("plain", "residual"), width: int = 20, depth: int = 20,
                   activation: str = "tanh", init: str = "standard", batch: int = 32, steps: int = 100,
                   lr: float = 0.01, seed: int = 0, progress: bool = False) -> list[dict]:
    """During training, the size of each layer's weight update per step, ||dW_l|| / ||W_l||
    (seed 001: in a plain net the early layers learn slowest)."""
    _check_choice("kind", kinds, nn.KINDS)
    runs = []
    bar = Progress(len(kinds) * steps, "learning-speed", enabled=progress)
    for kind in kinds:
        rng = np.random.default_rng(seed)
        x, y = _data(rng, batch, width)
        model = nn.deep_mlp(kind, width, depth, activation, init=init, dtype=np.float64, rng=rng)
        weights = [[p for n, p in block.named_parameters() if n.endswith("weight") and p.ndim == 2]
                   for block in model.blocks]
        speed: list[list[float]] = []

        def record(step: int, before: list[list[np.ndarray]]) -> None:
            row = []
            for ws, olds in zip(weights, before):
                delta = math.sqrt(sum(float(np.sum((w.data - o) ** 2)) for w, o in zip(ws, olds)))
                size = math.sqrt(sum(float(np.sum(o ** 2)) for o in olds))
                row.append(delta / size if size else 0.0)
            speed.append(row)

        opt = optim.SGD(list(model.parameters()), lr=lr, momentum=MOMENTUM)
        losses = []
        for step in range(steps):
            before = [[w.data.copy() for w in ws] for ws in weights]
            opt.zero_grad()
            loss = F.mse_loss(model(Tensor(x)), Tensor(y))
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            record(step, before)
            bar.update(1, kind)
        m = measure_deep_net(model, x, y)
        mean_speed = np.mean(np.asarray(speed), axis=0).tolist()
        runs.append(dict(kind=kind, activation=activation, init=init, depth=depth, width=width, batch=batch,
                         seed=seed, steps=steps, lr=lr, momentum=MOMENTUM, loss_curve=losses, update_ratio=speed,
                         mean_update_ratio=mean_speed, **m))
    bar.close()
    return runs
