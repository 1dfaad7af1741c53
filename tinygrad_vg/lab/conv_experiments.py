"""The convolutional half of the lab (issue #18): plain against residual CIFAR-style conv nets
(nn.conv_net), 20 against 56 layers, on synthetic image-shaped data this module generates.

    conv_depth(kinds, depths, ...)   per-block ||dL/dh_l|| at initialisation and after a short
                                     training, and the training loss curve, for every
                                     (kind, depth, seed); runs as JSON-able dicts
    summarize(runs)                  per (kind, depth): mean and spread over seeds of the final
                                     loss and of log10(||dL/dh_0|| / ||dL/dh_L||)
    run_conv_depth(**options)        both, with provenance: {"experiment", "options", "runs", "summary", "provenance"}
    plot_conv_depth(data, out_dir)   conv_depth.png: the gradient profiles and the loss curves

The data (synthetic_images): K classes of C x S x S images; class k is a sinusoidal grating of
orientation k pi / K with a random phase and frequency, times a class colour, plus a Gaussian
blob at a random place and N(0, noise^2) noise. Telling the classes apart needs the
orientation, i.e. spatial filters, not the mean colour alone (every class's colour has the
same mean).

Design: per (kind, depth, seed) one configuration, computed through `store` (the lab's
ResultStore: kept runs are reused) when one is given; h_0 is the stem's output (the first
block's input), h_l block l's output (lab.probes.Probe on model.blocks). The nets run in
float32 (BatchNorm keeps the activations O(1): no norm is near float32's range) in training
mode (batch statistics), as when they train.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import functional as F
from .. import kernels, nn, optim
from ..tensor import Tensor
from .probes import Probe, log10_ratio
from .progress import Progress

__all__ = ["synthetic_images", "measure_conv_net", "train_conv_net", "conv_depth", "summarize", "run_conv_depth",
           "plot_conv_depth", "CONV_DEPTH_DEFAULTS"]

MOMENTUM = 0.9
CONV_DEPTH_DEFAULTS = dict(kinds=("plain", "residual"), depths=(20, 56), width=1, image_size=16, classes=4,
                           train_size=512, batch=32, steps=100, lr=0.05, seeds=(0, 1), probe_batch=64)


def synthetic_images(n: int, classes: int = 4, size: int = 16, channels: int = 3, noise: float = 0.5,
                     seed: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): n float32 images (n, channels, size, size) and their int64 classes (balanced).
    Class k: a grating sin(f (u cos a_k + v sin a_k) + phase), a_k = k pi / classes, f in
    [0.6, 1.2] rad/pixel, times the class colour (zero-mean across classes), plus a blob of a
    random colour at a random place, plus N(0, noise^2)."""
    for name, value in (("n", n), ("classes", classes), ("size", size), ("channels", channels)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"synthetic_images: {name} must be a positive int; got {value!r}")
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    colours = rng.normal(size=(classes, channels))
    colours -= colours.mean(axis=0)
    colours /= np.linalg.norm(colours, axis=1, keepdims=True) / np.sqrt(channels) + 1e-12
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    angle = y * np.pi / classes
    freq = rng.uniform(0.6, 1.2, size=n)
    phase = rng.uniform(0, 2 * np.pi, size=n)
    grating = np.sin(freq[:, None, None] * (u * np.cos(angle)[:, None, None] + v * np.sin(angle)[:, None, None])
                     + phase[:, None, None])
    x = grating[:, None] * (0.5 + 0.5 * np.abs(colours[y]))[:, :, None, None]
    centre = rng.uniform(0, size, size=(n, 2))
    blob = np.exp(-((v - centre[:, 0, None, None]) ** 2 + (u - centre[:, 1, None, None]) ** 2) / (2 * (size / 8) ** 2))
    x += blob[:, None] * rng.normal(size=(n, channels))[:, :, None, None]
    x += noise * rng.normal(size=x.shape)
    return x.astype(np.float32), y.astype(np.int64)


def measure_conv_net(model: nn.Module, x: np.ndarray, y: np.ndarray) -> dict:
    """One forward and backward of the cross-entropy on (x, y): the loss, ||dL/dh_l|| for
    l = 0 (the stem's output) .. L (the last block's), and log10(||dL/dh_0|| / ||dL/dh_L||)."""
    model.zero_grad()
    with Probe(model.blocks) as probe:
        loss = F.cross_entropy(model(Tensor(x)), y)
        loss.backward()
        norms = probe.grad_h_norm()
    model.zero_grad()
    ratio = log10_ratio(norms[0], norms[-1]) if norms[0] and norms[-1] else None
    # log10_ratio_h: the name the lab's tables and summaries read (the same number)
    return {"loss": float(loss.item()), "grad_h_norm": norms, "log10_first_over_last": ratio, "log10_ratio_h": ratio}


def train_conv_net(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, batch: int, lr: float,
                   rng: np.random.Generator, on_step: Callable[[int], None] | None = None) -> list[float]:
    """SGD (momentum 0.9) on the cross-entropy of random minibatches; the minibatch losses."""
    opt = optim.SGD(list(model.parameters()), lr=lr, momentum=MOMENTUM)
    losses = []
    for step in range(steps):
        pick = rng.choice(len(x), size=batch, replace=False)
        opt.zero_grad()
        loss = F.cross_entropy(model(Tensor(x[pick])), y[pick])
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        if on_step:
            on_step(step)
    return losses


def _check(options: dict) -> None:
    kinds, depths = options["kinds"], options["depths"]
    if not kinds or any(k not in nn.CONV_KINDS for k in kinds):
        raise ValueError(f"conv-depth: kinds must be some of {', '.join(nn.CONV_KINDS)}; got {kinds!r}")
    if not depths or any(not isinstance(d, int) or d < 8 or (d - 2) % 6 for d in depths):
        raise ValueError(f"conv-depth: depths must be 6n + 2 (8, 14, 20, 26, ..., 56, 110); got {depths!r}")
    for name in ("width", "image_size", "classes", "train_size", "batch", "probe_batch"):
        if not isinstance(options[name], int) or options[name] < 1:
            raise ValueError(f"conv-depth: {name} must be a positive int; got {options[name]!r}")
    if options["image_size"] < 4:
        raise ValueError(f"conv-depth: image_size must be at least 4 (the nets halve it twice); "
                         f"got {options['image_size']}")
    if options["batch"] > options["train_size"] or options["probe_batch"] > options["train_size"]:
        raise ValueError("conv-depth: batch and probe_batch must be at most train_size")
    if not isinstance(options["steps"], int) or options["steps"] < 0:
        raise ValueError(f"conv-depth: steps must be an int >= 0; got {options['steps']!r}")
    if not options["lr"] > 0:
        raise ValueError(f"conv-depth: lr must be > 0; got {options['lr']!r}")
    if not options["seeds"] or not all(isinstance(s, int) for s in options["seeds"]):
        raise ValueError(f"conv-depth: seeds must be a non-empty list of ints; got {options['seeds']!r}")


def conv_depth(kinds: Sequence[str] = CONV_DEPTH_DEFAULTS["kinds"], depths: Sequence[int] = CONV_DEPTH_DEFAULTS["depths"],
               width: int = 1, image_size: int = 16, classes: int = 4, train_size: int = 512, batch: int = 32,
               steps: int = 100, lr: float = 0.05, seeds: Sequence[int] = (0, 1), probe_batch: int = 64,
               progress: bool = False, store: Any = None) -> list[dict]:
    """Plain and residual conv nets of each depth on the same synthetic images: for each (kind,
    depth, seed) a run at initialisation ("phase": "init") and one after `steps` SGD steps
    ("trained", with the loss curve). The data depend on the seed only, so every net of one
    seed sees the same images and minibatches."""
    options = dict(kinds=tuple(kinds), depths=tuple(depths), width=width, image_size=image_size, classes=classes,
                   train_size=train_size, batch=batch, steps=steps, lr=lr, seeds=tuple(seeds),
                   probe_batch=probe_batch)
    _check(options)
    bar = Progress(len(kinds) * len(depths) * len(seeds) * (steps + 2), "conv-depth", enabled=progress)
    runs = []
    for seed in seeds:
        for depth in depths:
            for kind in kinds:
                config = dict(kind=kind, depth=depth, width=width, image_size=image_size, classes=classes,
                              train_size=train_size, batch=batch, lr=lr, momentum=MOMENTUM, seed=seed,
                              probe_batch=probe_batch, steps=steps, shortcut="A", dtype="float32")
                label = f"{kind}-{depth} seed {seed}"

                def compute(config=config, label=label, kind=kind, depth=depth, seed=seed) -> list[dict]:
                    x, y = synthetic_images(train_size, classes, image_size, seed=seed)
                    model = nn.conv_net(kind, depth, width, num_classes=classes, rng=seed)
                    probe_x, probe_y = x[:probe_batch], y[:probe_batch]
                    at_init = {**config, "phase": "init", **measure_conv_net(model, probe_x, probe_y)}
                    bar.update(1, label)
                    losses = train_conv_net(model, x, y, steps, batch, lr, np.random.default_rng(seed + 1000),
                                            on_step=lambda s: bar.update(1, label))
                    trained = {**config, "phase": "trained", "loss_curve": losses,
                               "final_loss": float(np.mean(losses[-10:])) if losses else None,
                               **measure_conv_net(model, probe_x, probe_y)}
                    bar.update(1, label)
                    return [at_init, trained]
                runs += compute() if store is None else store.runs("conv-depth", config, compute)
    bar.close()
    return runs


def _spread(values: list) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "min": None, "max": None, "n": 0}
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values)),
            "n": len(values)}


def summarize(runs: Sequence[dict]) -> list[dict]:
    """Per (kind, depth): over seeds, the final training loss (mean of the last 10 minibatch
    losses) and log10(||dL/dh_0|| / ||dL/dh_L||) at initialisation and after training."""
    out = []
    keys = sorted({(r["kind"], r["depth"]) for r in runs}, key=lambda k: (k[1], k[0]))
    for kind, depth in keys:
        mine = [r for r in runs if r["kind"] == kind and r["depth"] == depth]
        init = [r for r in mine if r["phase"] == "init"]
        trained = [r for r in mine if r["phase"] == "trained"]
        out.append({"kind": kind, "depth": depth, "seeds": sorted({r["seed"] for r in mine}),
                    "final_loss": _spread([r["final_loss"] for r in trained]),
                    "log10_first_over_last_init": _spread([r["log10_first_over_last"] for r in init]),
                    "log10_first_over_last_trained": _spread([r["log10_first_over_last"] for r in trained])})
    return out


def provenance() -> dict:
    from importlib import metadata
    try:
        version = metadata.version("tinygrad_vg")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"tinygrad_vg": version, "numpy": np.__version__, "python": platform.python_version(),
            "kernels": kernels.report(), "machine": platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def run_conv_depth(progress: bool = False, store: Any = None, **options: Any) -> dict:
    """conv_depth with its summary and provenance, as one JSON-able dict."""
    unknown = sorted(set(options) - set(CONV_DEPTH_DEFAULTS))
    if unknown:
        raise ValueError(f"conv-depth: unknown option(s) {', '.join(unknown)}; accepted: "
                         f"{', '.join(CONV_DEPTH_DEFAULTS)}")
    full = {**CONV_DEPTH_DEFAULTS, **options}
    runs = conv_depth(progress=progress, store=store, **full)
    return {"experiment": "conv-depth", "options": {k: list(v) if isinstance(v, tuple) else v for k, v in full.items()},
            "runs": runs, "summary": summarize(runs), "provenance": provenance()}


# ----- the picture ---------------------------------------------------------------------------
KIND_COLOURS = {"plain": "tab:red", "residual": "tab:blue"}
DEPTH_STYLES = ["-", "--", ":", "-."]


def plot_conv_depth(data: dict, out_dir: Any) -> list[Path]:
    """conv_depth.png: left and middle, ||dL/dh_l|| against the block l at initialisation and after
    training (log scale; one line per kind and depth, the mean over seeds, the band their range);
    right, the training loss against the step (a 10-step running mean, mean over seeds)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # matplotlib is the optional `plot` extra
        raise ImportError("plotting needs matplotlib: pip install 'tinygrad_vg[plot]'") from e
    from ..io import atomic_write

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = data["runs"]
    depths = sorted({r["depth"] for r in runs})
    kinds = [k for k in KIND_COLOURS if any(r["kind"] == k for r in runs)]
    fig = Figure(figsize=(15, 4.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    for ax, phase in zip(axes[:2], ("init", "trained")):
        for kind in kinds:
            for i, depth in enumerate(depths):
                mine = [r for r in runs if r["kind"] == kind and r["depth"] == depth and r["phase"] == phase]
                if not mine:
                    continue
                grid = np.array([[np.nan if g is None else g for g in r["grad_h_norm"]] for r in mine], dtype=float)
                blocks = np.arange(grid.shape[1])
                mean = np.exp(np.nanmean(np.log(grid), axis=0))   # geometric mean over seeds
                ax.plot(blocks, mean, DEPTH_STYLES[i % 4], color=KIND_COLOURS[kind], label=f"{kind}-{depth}")
                if len(mine) > 1:
                    ax.fill_between(blocks, np.nanmin(grid, axis=0), np.nanmax(grid, axis=0),
                                    color=KIND_COLOURS[kind], alpha=0.15, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel("block l (0 = stem output)")
        ax.set_ylabel("||dL/dh_l||")
        steps = next((r["steps"] for r in runs if r["phase"] == "trained"), 0)
        ax.set_title("at initialisation" if phase == "init" else f"after {steps} SGD steps")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[2]
    for kind in kinds:
        for i, depth in enumerate(depths):
            curves = [r["loss_curve"] for r in runs if r["kind"] == kind and r["depth"] == depth
                      and r["phase"] == "trained" and r.get("loss_curve")]
            if not curves:
                continue
            curve = np.mean(np.array(curves, dtype=float), axis=0)
            window = min(10, len(curve))
            smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
            ax.plot(np.arange(window - 1, len(curve)), smooth, DEPTH_STYLES[i % 4], color=KIND_COLOURS[kind],
                    label=f"{kind}-{depth}")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("training loss (10-step mean)")
    ax.set_title("training loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    options = data.get("options", {})
    seeds = sorted({r["seed"] for r in runs})
    fig.suptitle(f"CIFAR-style conv nets on synthetic {options.get('classes', '?')}-class "
                 f"{options.get('image_size', '?')}x{options.get('image_size', '?')} images, width x"
                 f"{options.get('width', 1)}, batch {options.get('batch', '?')}, lr {options.get('lr', '?')}, "
                 f"seeds {list(seeds)}")
    path = out_dir / "conv_depth.png"
    with atomic_write(path, "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    return [path]


# ---------------------------------------------------------------- as a lab experiment (tinygrad-vg run conv-depth)
# The lab's contract (experiments.py): a function of its options plus `progress` and `store`,
# seeds as seed indices (a count n: 0 .. n-1, or a list), returning the runs.
CONV_OPTIONS = {
    "image_size": ("int>0", "The side of the synthetic square images (the nets halve it twice)."),
    "classes": ("int>0", "The number of classes of synthetic images."),
    "train_size": ("int>0", "The number of training images."),
    "probe_batch": ("int>0", "The number of images the gradient profile is measured on."),
}


def conv_depth_experiment(kinds: Sequence[str] = ("plain", "residual"), depths: Sequence[int] = (20, 56), width: int = 1,
                          image_size: int = 16, classes: int = 4, train_size: int = 512, batch: int = 32,
                          steps: int = 100, lr: float = 0.05, seeds: Any = 2, probe_batch: int = 64,
                          progress: bool = False, store: Any = None) -> list[dict]:
    """Plain against residual CIFAR-style conv nets (He et al. 2016, 6n+2 layers, depths such as
    20 and 56) on synthetic images: per-block ||dL/dh|| at initialisation and after a number of
    SGD steps, and the training loss curve. The 56-layer plain net trains worse than the
    20-layer one; its residual twin does not."""
    indices = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    runs = conv_depth(kinds, depths, width, image_size, classes, train_size, batch, steps, lr, indices, probe_batch,
                      progress, None if store is None or type(store).__name__ == "_Compute" else store)
    for run in runs:
        run["seed_index"] = run["seed"]
    return runs
