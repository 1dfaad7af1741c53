"""Pictures of the architecture experiments (lab/architectures.py): one function per
experiment, each drawing the dict that run_arch_experiment returned (or its JSON) into PNG
files, and nothing else.

    from tinygrad_vg.lab.plots_arch import plot_arch
    paths = plot_arch(data, "out")

Design: as plots.py: only drawing (every number shown is read from the data), matplotlib
imported inside the functions and used through matplotlib.figure.Figure on the Agg canvas
(pyplot's global state untouched). Values that cannot go on a log axis (0 from underflow,
None) are masked, never replaced, and a legend entry says how many a line lost.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["plot_arch", "ARCH_PLOTTERS", "ARCH_CAPTIONS", "arch_figure_files"]

DPI = 100
ARCH_CAPTIONS = {
    "arch_seed_figure.png": "(a) ||dL/dh_l|| against block l (0 = the input) for each variant of the 20-layer, "
                            "20-unit net: solid at initialisation, dashed after training. A dense block's h_l is "
                            "the features it adds. (b) The training loss (MSE, SGD with momentum 0.9).",
    "arch_depth.png": "log10(||dL/dh_1|| / ||dL/dh_L||) at initialisation against depth L for each variant. "
                      "Below 0 the gradient vanishes toward the input.",
    "narx.png": "(a) ||dL/dh_t|| against step t, loss on the last step, for NARX nets with delays D (solid: "
                "torch init of every U_d, dotted: fan-in init) and LSTMs. (b) The fitted decades per step "
                "against D, with the path-length prediction (the D = 1 slope divided by D).",
}
VARIANT_COLOURS = ["tab:red", "tab:blue", "tab:purple", "tab:orange", "tab:brown", "tab:green", "tab:pink",
                   "tab:olive", "tab:cyan", "tab:gray"]
DELAY_COLOURS = ["tab:red", "tab:orange", "tab:olive", "tab:green", "tab:cyan", "tab:blue", "tab:purple"]


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # matplotlib is the optional `plot` extra
        raise ImportError("plotting needs matplotlib: pip install 'tinygrad_vg[plot]'") from e
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path)
    return path


def _positive(values: Sequence[Any] | None) -> np.ndarray:
    """The values as floats, with what a log axis cannot show (None, 0, inf, NaN) as NaN."""
    a = np.array([np.nan if v is None else float(v) for v in (values or [])], dtype=np.float64)
    a[~(np.isfinite(a) & (a > 0))] = np.nan
    return a


def _lost(values: Sequence[Any] | None) -> str:
    lost = int(np.isnan(_positive(values)).sum())
    return f" [{lost} point(s) not shown: 0 or None]" if lost else ""


def _unique(runs: Sequence[dict], key: str) -> list[Any]:
    seen: list[Any] = []
    for run in runs:
        if run.get(key) not in seen:
            seen.append(run.get(key))
    return seen


def _marker(variant: str) -> dict:
    """Weight-normalised variants get hollow square markers: at initialisation they lie exactly on
    their variant without weight norm (w = g v / ||v|| is the same weight), so both must show."""
    return dict(marker="s", markersize=5, markerfacecolor="none") if variant.endswith("+wn") else {}


def _decade_ticks(ax: Any, series: Sequence[np.ndarray]) -> None:
    """Major ticks at round powers of ten (every 1, 2, 5, 10, 20, 50 or 100 decades, at most ~9)."""
    from matplotlib.ticker import FixedLocator, NullLocator
    values = np.concatenate([s[np.isfinite(s)] for s in series]) if series else np.array([])
    if not values.size:
        return
    low, high = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200) if (high - low) / s <= 9)
    ax.yaxis.set_major_locator(FixedLocator([10.0 ** k for k in np.arange(np.floor(low / step) * step, high + 1, step)]))
    ax.yaxis.set_minor_locator(NullLocator())


def _first_seed(runs: Sequence[dict]) -> list[dict]:
    """The runs of the first seed index (the line plots show one seed; the data holds all)."""
    first = runs[0].get("seed_index") if runs else None
    return [r for r in runs if r.get("seed_index") == first]


def _seed_note(data: dict) -> str:
    """', seed index i of n' when the data holds several seed indices (the figure draws the first)."""
    indices = _unique(data["runs"], "seed_index")
    return f", seed index {indices[0]} of {len(indices)}" if len(indices) > 1 else ""


def plot_arch_seed_figure(data: dict, out_dir: Path) -> list[Path]:
    runs = _first_seed(data["runs"])
    fig = _figure(13.0, 5.2)
    ax, ax_loss = fig.subplots(1, 2, width_ratios=[1.5, 1])
    for i, variant in enumerate(_unique(runs, "variant")):
        colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
        for run in (r for r in runs if r["variant"] == variant):
            norms = _positive(run["grad_h_norm"])
            ratio = run.get("log10_ratio_h")
            trained = run["phase"] == "trained"
            label = f"{variant}, {'trained' if trained else 'init'}" \
                + (f" ({ratio:+.2f} dec)" if ratio is not None else "") + _lost(run["grad_h_norm"])
            ax.plot(range(len(norms)), norms, "--" if trained else "-", color=colour, lw=1.6, label=label,
                    **_marker(variant))
            if trained and run.get("loss_curve"):
                ax_loss.plot(range(1, len(run["loss_curve"]) + 1), _positive(run["loss_curve"]), color=colour,
                             lw=1.6, label=f"{variant} (final {run['loss_curve'][-1]:.3g})")
    ax.set_yscale("log")
    ax.set_xlabel("block l (0 = input)")
    ax.set_ylabel("||dL/dh_l||")
    o = data.get("options", {})
    ax.set_title(f"(a) ||dL/dh_l|| per block: width {o.get('width')}, depth {o.get('depth')}, "
                 f"{o.get('activation')} (maxout: {o.get('pieces')} pieces), dense growth {o.get('growth')}"
                 + _seed_note(data),
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("SGD step")
    ax_loss.set_ylabel("training loss (MSE)")
    ax_loss.set_title(f"(b) training loss, lr {o.get('lr')}, momentum 0.9", fontsize=10)
    ax_loss.grid(True, alpha=0.3)
    ax_loss.legend(fontsize=8)
    return [_save(fig, out_dir, "arch_seed_figure.png")]


def plot_arch_depth(data: dict, out_dir: Path) -> list[Path]:
    runs = _first_seed(data["runs"])
    fig = _figure(8.5, 5.4)
    ax = fig.subplots()
    for i, variant in enumerate(_unique(runs, "variant")):
        mine = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["depth"])
        depths = [r["depth"] for r in mine]
        ratios = np.array([np.nan if r.get("log10_ratio_h") is None else r["log10_ratio_h"] for r in mine])
        lost = int(np.isnan(ratios).sum())
        ax.plot(depths, ratios, "-", color=VARIANT_COLOURS[i % len(VARIANT_COLOURS)], lw=1.6,
                label=variant + (f" [{lost} depth(s) underflowed]" if lost else ""),
                **(_marker(variant) or dict(marker="o")))
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("depth L (blocks)")
    ax.set_ylabel("log10(||dL/dh_1|| / ||dL/dh_L||)")
    o = data.get("options", {})
    ax.set_title(f"Gradient gain from the last block to the first, at initialisation\n(width {o.get('width')}, "
                 f"{o.get('activation')}, dense growth {o.get('growth')}, maxout pieces {o.get('pieces')}{_seed_note(data)})",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return [_save(fig, out_dir, "arch_depth.png")]


def plot_narx(data: dict, out_dir: Path) -> list[Path]:
    runs = _first_seed(data["runs"])
    fig = _figure(14.0, 5.6)
    ax, ax_slope = fig.subplots(1, 2, width_ratios=[1.6, 1])
    delays = sorted(d for d in _unique(runs, "delay") if d is not None)
    styles = {"torch": "-", "fan_in": ":"}
    plotted = []
    for run in runs:
        norms = _positive(run["grad_h_norm"])
        plotted.append(norms)
        ratio = run.get("log10_ratio_h")
        note = (f" ({ratio:+.1f} dec)" if ratio is not None else "") + _lost(run["grad_h_norm"])
        if run["cell"] == "narx":
            colour = DELAY_COLOURS[delays.index(run["delay"]) % len(DELAY_COLOURS)]
            name = f"NARX D={run['delay']}" + (" (= RNN)" if run["delay"] == 1 else "") + f", {run['narx_init']}"
            ax.plot(range(len(norms)), norms, styles.get(run["narx_init"], "-"), color=colour, lw=1.4,
                    label=name + note)
        else:
            bias = run.get("gate_bias")
            name = run["cell"].upper() + (f", gate bias {bias:+g}" if bias is not None else "")
            ax.plot(range(len(norms)), norms, "-." if bias else "--", color="black", lw=1.4, label=name + note)
    ax.set_yscale("log")
    _decade_ticks(ax, plotted)
    ax.set_xlabel("time step t (0 = initial state; loss on the last step)")
    ax.set_ylabel("||dL/dh_t||")
    o = data.get("options", {})
    ax.set_title(f"(a) ||dL/dh_t|| over T = {o.get('T')} steps (hidden {o.get('hidden')}, batch {o.get('batch')}"
                 f"{_seed_note(data)})", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    drawn: list[list[float]] = []   # predictions already drawn (both inits share the D = 1 net)
    for how in _unique([r for r in runs if r["cell"] == "narx"], "narx_init"):
        mine = sorted((r for r in runs if r["cell"] == "narx" and r["narx_init"] == how), key=lambda r: r["delay"])
        xs = [r["delay"] for r in mine]
        ax_slope.plot(xs, [np.nan if r["log10_slope"] is None else r["log10_slope"] for r in mine], "o" +
                      styles.get(how, "-"), color="tab:blue" if how == "torch" else "tab:green", lw=1.6,
                      label=f"measured, {how} init")
        predicted = [np.nan if r["prediction"]["log10_slope"] is None else r["prediction"]["log10_slope"] for r in mine]
        if predicted not in drawn:
            drawn.append(predicted)
            ax_slope.plot(xs, predicted, "x--", color="gray", lw=1.0, label="prediction: D=1 slope / D")
    for run in (r for r in runs if r["cell"] != "narx"):
        bias = run.get("gate_bias")
        ax_slope.axhline(run["log10_slope"] or 0.0, color="black", lw=0.8, ls="-." if bias else "--",
                         label=run["cell"].upper() + (f", gate bias {bias:+g}" if bias is not None else ""))
    ax_slope.axhline(0.0, color="black", lw=0.5)
    ax_slope.set_xscale("log", base=2)
    ax_slope.set_xticks(delays, [str(d) for d in delays])
    ax_slope.set_xlabel("delay D")
    ax_slope.set_ylabel("decades of ||dL/dh_t|| lost per step (fit over t)")
    ax_slope.set_title("(b) decay rate against D", fontsize=10)
    ax_slope.grid(True, alpha=0.3)
    ax_slope.legend(fontsize=7)
    return [_save(fig, out_dir, "narx.png")]


ARCH_PLOTTERS = {"arch-seed-figure": plot_arch_seed_figure, "arch-depth": plot_arch_depth, "narx": plot_narx}
_FILES = {"arch-seed-figure": ["arch_seed_figure.png"], "arch-depth": ["arch_depth.png"], "narx": ["narx.png"]}


def arch_figure_files(data: dict) -> list[str]:
    """The file names plot_arch writes for this experiment's data."""
    return list(_FILES[data["experiment"]])


def plot_arch(data: dict, out_dir: str | Path) -> list[Path]:
    """Draw an architecture experiment's data into PNGs in out_dir; the paths written."""
    name = data.get("experiment")
    if name not in ARCH_PLOTTERS:
        raise ValueError(f"plot_arch: no figure for experiment {name!r}; accepted: {', '.join(ARCH_PLOTTERS)}")
    if not data.get("runs"):
        raise ValueError(f"plot_arch: the {name} data has no runs to draw")
    return ARCH_PLOTTERS[name](data, Path(out_dir))
