"""Pictures of the lab's data: one function per experiment, each drawing the dict that
`run_experiment` returned (or its JSON) into PNG files, and nothing else.

    from tinygrad_vg.lab.plots import plot
    paths = plot(data, "out")            # list of the PNGs written

Design: plots only draw (STYLE habit 10). Every number shown is read from the data;
the only arithmetic here is placing reference lines that the experiment already
computed (theory slopes, predicted gains) at the last layer. matplotlib is imported
inside the functions, so `import tinygrad_vg.lab` never loads it, and figures are
made with `matplotlib.figure.Figure` rendered by the Agg canvas rather than through
pyplot: that is the Agg backend without touching matplotlib's global state (a user's
notebook backend is left alone) and without pyplot's figure registry to leak.

Values that cannot go on a log axis (0 from underflow, None, inf, NaN) are masked,
never silently replaced by a small number; where a run loses points that way the
figure says so.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .conv_experiments import plot_conv_depth
from .plots_arch import ARCH_CAPTIONS, ARCH_PLOTTERS

__all__ = ["plot", "figure_files", "PLOTTERS", "CAPTIONS", "plot_sweep"]

DPI = 100
# What each file shows, for the report's captions.
CAPTIONS = {
    "seed_figure_init.png": "At initialisation. Top row: the activations h_l of one input (sample 0) for each "
                            "layer l (x) and unit (y); each panel has its own colour scale (see its colour "
                            "bar), so compare the patterns within a panel, not the colours across panels. "
                            "Bottom row: log10 |dL/dh_l| per unit on one colour scale shared by every panel, "
                            "so these colours do compare across columns.",
    "seed_figure_trained.png": "The same after training. The activation panels again each have their own colour "
                               "scale; the gradient colour scale is the one of the initialisation figure, so "
                               "the gradient panels of the two figures compare too.",
    "seed_figure_grad_norms.png": "||dL/dh_l|| (whole batch) against layer for each kind: solid at "
                                  "initialisation, dashed after training. A line falling to the left is a "
                                  "gradient vanishing toward the input.",
    "activations.png": "||dL/dh_l|| against layer in plain nets, one line per activation function. The "
                       "dotted black line falls by log10(4) decades per layer going back from the last "
                       "layer: the factor 1/4 that the sigmoid's derivative bound alone imposes.",
    "init.png": "(a) Initialisations compared in a tanh net. (b) A deep linear net with weights "
                "N(0, s^2/n): measured ||dL/dh_l|| (markers) against the prediction s^(L-l) anchored at "
                "the last layer (lines).",
    "depth.png": "The headline ratio log10(||dL/dh_1|| / ||dL/dh_L||) against depth: solid without "
                 "normalisation, dashed with batch norm. Below 0 the gradient vanishes toward the input, "
                 "above 0 it explodes.",
    "recurrent.png": "||dL/dh_t|| against time step t with the loss on the last step, for each cell "
                     "(colour) and forget/update gate bias (line style).",
    "learning_speed.png": "The size of each layer's weight update relative to the weight, ||dW_l|| / ||W_l||, "
                          "at every training step (heatmaps on one log colour scale shared by every panel, so "
                          "colours compare across panels) and averaged over steps (right).",
}

# One colour per kind / cell / activation, the same in every figure.
KIND_COLOURS = {"plain": "tab:red", "residual": "tab:blue", "highway": "tab:green"}
CELL_COLOURS = {"rnn": "tab:red", "gru": "tab:blue", "lstm": "tab:green"}
NORM_STYLES = {"none": "-", "batch": "--", "layer": ":"}
BIAS_STYLES = ["-", "--", ":", "-."]


# ----- helpers ---------------------------------------------------------------------
def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    """A Figure rendered by Agg. The heatmap figures pass layout=None and place their own
    GridSpec (colour bars in cells of their own): the constrained engine doubles the
    drawing time of six heatmaps and four colour bars."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # matplotlib is the optional `plot` extra
        raise ImportError("plotting needs matplotlib: pip install 'tinygrad_vg[plot]'") from e
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)   # the Agg backend for this figure only; pyplot's global backend is untouched
    return fig


def _save(fig: Any, out_dir: Path, name: str) -> Path:
    """Write the PNG atomically: a full disk or an interrupt leaves the old figure whole."""
    from ..io import atomic_write
    path = out_dir / name
    with atomic_write(path, "wb") as f:
        fig.savefig(f, dpi=DPI, format="png")
    return path


def _integer_ticks(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator
    axis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 5, 10], integer=True, min_n_ticks=1))


def _log_axis(ax: Any, series: Sequence[np.ndarray], most: int = 9) -> None:
    """Log y axis with ticks on round decades (every 1, 2, 5, 10, 20, 50 ... decades), so
    that a curve spanning 300 decades does not get ticks at 10^-11, 10^-22, ..."""
    from matplotlib.ticker import FixedLocator, NullLocator
    ax.set_yscale("log")
    values = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in series] + [np.array([])])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return
    low, high = math.floor(math.log10(values.min())), math.ceil(math.log10(values.max()))
    span = max(high - low, 1)
    step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500) if span / s <= most), 1000)
    if step == 1:
        return   # matplotlib's own decades and minor ticks are right here
    first = math.floor(low / step) * step
    ax.yaxis.set_major_locator(FixedLocator([10.0 ** k for k in range(first, high + step, step)]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylim(10.0 ** (math.log10(values.min()) - 0.03 * span), 10.0 ** (math.log10(values.max()) + 0.03 * span))


def _same_as(runs: Sequence[dict], index: int, name_key: str) -> str:
    """' (= NAME)' if run `index` measured what an earlier run did to 1e-9 (its line is hidden
    under the other: LeCun and Xavier normal are the same init when fan_in == fan_out)."""
    mine = _positive(runs[index].get("grad_h_norm"))
    for other in runs[:index]:
        theirs = _positive(other.get("grad_h_norm"))
        if mine.shape == theirs.shape and np.allclose(mine, theirs, rtol=1e-9, atol=0.0, equal_nan=True):
            return f" (= {other.get(name_key)})"
    return ""


MARKERS = ["o", "s", "^", "v", "D", "P", "X", "*", "<", ">"]


def _positive(values: Sequence[Any] | None) -> np.ndarray:
    """float array with None, 0, negatives, inf and NaN masked as NaN (not drawable on a log axis)."""
    arr = np.array([np.nan if v is None else v for v in ([] if values is None else values)], dtype=np.float64)
    arr[~(np.isfinite(arr) & (arr > 0))] = np.nan
    return arr


def _lost_points(values: Sequence[Any] | None) -> str:
    """'' or a note like ' (3 underflowed to 0)' for a legend label."""
    raw = np.array([np.nan if v is None else v for v in ([] if values is None else values)], dtype=np.float64)
    notes = []
    zeros = int(np.sum(raw == 0))
    if zeros:
        notes.append(f"{zeros} underflowed to 0")
    bad = int(np.sum(~np.isfinite(raw)))
    if bad:
        notes.append(f"{bad} not finite")
    return f" ({', '.join(notes)})" if notes else ""


def _runs(data: dict, **match: Any) -> list[dict]:
    return [r for r in data["runs"] if all(r.get(k) == v for k, v in match.items())]


def _unique(runs: Sequence[dict], key: str) -> list[Any]:
    seen: list[Any] = []
    for r in runs:
        if r.get(key) not in seen:
            seen.append(r.get(key))
    return seen


def _options_note(data: dict, keys: Sequence[str]) -> str:
    opts = data.get("options", {})
    return ", ".join(f"{k}={opts[k]}" for k in keys if k in opts)


def _band(ax: Any, x: Sequence[Any], run: dict, name: str, colour: str, log: bool = True) -> list[np.ndarray]:
    """The seeds' min..max of run[name] as a shaded band (a run that collapse_seeds merged from
    several seeds has NAME_min and NAME_max; a single-seed run has none, and gets none)."""
    if run.get("n_seeds", 1) < 2 or name + "_min" not in run:
        return []
    low, high = run[name + "_min"], run[name + "_max"]
    if log:
        low, high = _positive(low), _positive(high)
    else:
        low = np.array([np.nan if v is None else v for v in low], dtype=np.float64)
        high = np.array([np.nan if v is None else v for v in high], dtype=np.float64)
    ax.fill_between(list(x), low, high, color=colour, alpha=0.18, lw=0)
    return [low, high]   # for the axis limits


def _seeds_note(data: dict) -> str:
    """A title's last line when the runs were merged over several seeds."""
    n = max((r.get("n_seeds", 1) for r in data["runs"]), default=1)
    return f"\nlines: median of {n} seeds; bands: their min..max" if n > 1 else ""


def _cycle_colour(i: int) -> str:
    return f"C{i % 10}"


# ----- seed-figure -----------------------------------------------------------------
def _log10_abs(grid: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.abs(grid))
    out[~np.isfinite(out)] = np.nan
    return out


def _seed_grids(run: dict) -> tuple[np.ndarray, np.ndarray]:
    """(unit, layer) arrays of sample 0's activations and log10 |dL/dh|."""
    acts = np.array([[np.nan] * run["width"] if h is None else h for h in run["activations"]], dtype=np.float64).T
    grads = np.array([[np.nan] * run["width"] if g is None else g for g in run["grad_h"]], dtype=np.float64).T
    return acts, _log10_abs(grads)


def _gradient_range(runs: Sequence[dict], span: float = 16.0) -> tuple[float, float, bool]:
    """Shared log10 colour range over every run; at most `span` decades so that one
    exact zero-ish entry cannot wash out the picture (clipped entries show as 'extend')."""
    logs = np.concatenate([_seed_grids(r)[1].ravel() for r in runs])
    logs = logs[np.isfinite(logs)]
    if logs.size == 0:
        return -1.0, 0.0, False
    hi, lo = float(np.max(logs)), float(np.min(logs))
    clipped = lo < hi - span
    lo = max(lo, hi - span)
    if hi - lo < 1e-9:
        lo -= 0.5
        hi += 0.5
    return lo, hi, clipped


def _seed_heatmaps(data: dict, phase: str, vrange: tuple[float, float, bool], out_dir: Path) -> Path:
    runs = _runs(data, phase=phase)
    kinds = _unique(runs, "kind")
    width = max(4.6 * len(kinds), 7.5)
    fig = _figure(width, 7.6, layout=None)
    # per kind: a heatmap and a narrow colour-bar cell beside it; the gradient row shares
    # one colour bar, drawn in the last kind's bar cell. Margins are set by hand (see
    # _figure), in inches: tick labels and "unit" on the left, a colour bar's labels between.
    left, right, gap = 0.65, 0.95, 1.4
    cell = (width - left - right - (len(kinds) - 1) * gap) / len(kinds)
    outer = fig.add_gridspec(2, len(kinds), left=left / width, right=1 - right / width, top=0.89, bottom=0.075,
                             hspace=0.33, wspace=gap / cell)
    cells = [[outer[row, col].subgridspec(1, 2, width_ratios=[1, 0.05], wspace=0.06)
              for col in range(len(kinds))] for row in range(2)]
    lo, hi, clipped = vrange
    grad_image = None
    for col, kind in enumerate(kinds):
        run = _runs(data, phase=phase, kind=kind)[0]
        acts, log_grads = _seed_grids(run)
        depth = acts.shape[1] - 1
        extent = (-0.5, depth + 0.5, acts.shape[0] - 0.5, -0.5)
        # the activation scale leaves out the input layer 0 (N(0,1) data), which would
        # otherwise wash out the small h_l of a plain net; the bar then extends.
        inner = acts[:, 1:] if acts.shape[1] > 1 else acts
        amax = float(np.nanmax(np.abs(inner))) if np.isfinite(inner).any() else 1.0
        amax = amax or 1.0
        over = bool(np.nanmax(np.abs(acts)) > amax) if np.isfinite(acts).any() else False
        ax = fig.add_subplot(cells[0][col][0])
        image = ax.imshow(acts, cmap="RdBu_r", vmin=-amax, vmax=amax, aspect="auto", extent=extent,
                          interpolation="nearest")
        ax.set_title(f"{kind}: activations h_l (sample 0)")
        ax.set_ylabel("unit")
        ax.set_xlabel("layer l (0 = input)")
        _integer_ticks(ax.xaxis)
        _integer_ticks(ax.yaxis)
        fig.colorbar(image, cax=fig.add_subplot(cells[0][col][1]), label="h_l",
                     extend="both" if over else "neither")
        ax = fig.add_subplot(cells[1][col][0])
        grad_image = ax.imshow(log_grads, cmap="viridis", vmin=lo, vmax=hi, aspect="auto", extent=extent,
                               interpolation="nearest")
        ax.set_title(f"{kind}: log10 |dL/dh_l| (sample 0)")
        ax.set_ylabel("unit")
        ax.set_xlabel("layer l (0 = input)")
        _integer_ticks(ax.xaxis)
        _integer_ticks(ax.yaxis)
    fig.colorbar(grad_image, cax=fig.add_subplot(cells[1][-1][1]), label="log10 |dL/dh|",
                 extend="min" if clipped else "neither")
    first = runs[0]
    what = "at initialisation" if phase == "init" else f"after {first.get('steps', '?')} SGD steps"
    losses = ", ".join(f"{r['kind']} {r['loss']:.3g}" for r in runs if r.get("loss") is not None)
    seeds = first.get("n_seeds", 1)
    note = (f"\nthe maps: sample 0 of seed index {first['seed_index'][0]}; the losses: median of {seeds} seeds"
            if seeds > 1 else "")
    fig.suptitle(f"{first.get('depth')}-layer, {first.get('width')}-unit {first.get('activation')} nets "
                 f"({first.get('init')} init), {what}.  MSE loss: {losses}{note}")
    return _save(fig, out_dir, f"seed_figure_{phase}.png")


def plot_seed_figure(data: dict, out_dir: Path) -> list[Path]:
    runs = data["runs"]
    vrange = _gradient_range(runs)   # one gradient scale for both phases and all kinds
    paths = [_seed_heatmaps(data, phase, vrange, out_dir) for phase in _unique(runs, "phase")]

    fig = _figure(7.5, 4.8)
    ax = fig.subplots()
    plotted = []
    for i, kind in enumerate(_unique(runs, "kind")):
        colour = KIND_COLOURS.get(kind, _cycle_colour(i))
        for run in _runs(data, kind=kind):
            norms = _positive(run["grad_h_norm"])
            style = "-" if run.get("phase") == "init" else "--"
            label = f"{kind}, {run.get('phase')} (ratio {run['log10_ratio_h']:+.1f} dec)" \
                if run.get("log10_ratio_h") is not None else f"{kind}, {run.get('phase')}"
            ax.plot(range(len(norms)), norms, style, color=colour, marker=".",
                    label=label + _lost_points(run["grad_h_norm"]))
            plotted += _band(ax, range(len(norms)), run, "grad_h_norm", colour)
            plotted.append(norms)
    _log_axis(ax, plotted)
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("layer l (0 = input)")
    ax.set_ylabel("||dL/dh_l||  (whole batch)")
    first = runs[0]
    steps = next((r.get("steps") for r in runs if r.get("phase") == "trained"), None)
    ax.set_title((f"||dL/dh_l|| per layer, {first.get('depth')}-layer {first.get('width')}-unit "
                  f"{first.get('activation')} nets\nat init (solid) and after {steps} SGD steps (dashed)"
                  if steps else f"||dL/dh_l|| per layer, {first.get('depth')}-layer {first.get('width')}-unit "
                  f"{first.get('activation')} nets") + _seeds_note(data))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir, "seed_figure_grad_norms.png"))
    return paths


# ----- activations -----------------------------------------------------------------
def plot_activations(data: dict, out_dir: Path) -> list[Path]:
    fig = _figure(8, 5.6)
    ax = fig.subplots()
    runs = data["runs"]
    plotted = []
    for i, run in enumerate(runs):
        norms = _positive(run["grad_h_norm"])
        ratio = run.get("log10_ratio_h")
        label = run["activation"] + (f" ({ratio:+.1f} dec)" if ratio is not None else "") \
            + _same_as(runs, i, "activation") + _lost_points(run["grad_h_norm"])
        # markers and dashes as well as colours: relu and leaky_relu lie on top of each other
        ax.plot(range(len(norms)), norms, ["-", "--"][i % 2], color=_cycle_colour(i), marker=MARKERS[i % 10], ms=4,
                label=label)
        plotted += _band(ax, range(len(norms)), run, "grad_h_norm", _cycle_colour(i))
        plotted.append(norms)
        slope = run.get("theory_log10_slope")
        if slope is not None and np.isfinite(norms[-1]):
            last = len(norms) - 1
            layers = np.arange(last + 1)
            reference = norms[-1] * 10.0 ** (-slope * (last - layers))
            plotted.append(reference)
            ax.plot(layers, reference, ":", color="black", lw=1.8,
                    label=f"reference: x1/4 per layer (-{slope:.2f} dec/layer),\n{run['activation']}' <= 1/4, "
                          "anchored at layer L")
    _log_axis(ax, plotted)
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("layer l (0 = input)")
    ax.set_ylabel("||dL/dh_l||")
    ax.set_title("||dL/dh_l|| per layer for each activation (log10 ratio h_1/h_L in the legend)\n"
                 + f"{data.get('options', {}).get('kind', 'plain')} nets, "
                 + _options_note(data, ["init", "depth", "width", "seed"]) + _seeds_note(data))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return [_save(fig, out_dir, "activations.png")]


# ----- init ------------------------------------------------------------------------
def plot_init(data: dict, out_dir: Path) -> list[Path]:
    named = [r for r in data["runs"] if r.get("predicted_log10_gain_per_layer") is None]
    linear = [r for r in data["runs"] if r.get("predicted_log10_gain_per_layer") is not None]
    panels = int(bool(named)) + int(bool(linear))
    fig = _figure(6.2 * max(panels, 1), 5.2)
    axes = list(np.atleast_1d(fig.subplots(1, max(panels, 1))))
    if named:
        ax = axes.pop(0)
        plotted = []
        for i, run in enumerate(named):
            norms = _positive(run["grad_h_norm"])
            gain = run.get("log10_gain_per_layer")
            label = run["init"] + (f" ({gain:+.3f} dec/layer)" if gain is not None else "") \
                + _same_as(named, i, "init") + _lost_points(run["grad_h_norm"])
            # dashes and markers too: lecun and xavier coincide when fan_in == fan_out
            ax.plot(range(len(norms)), norms, ["-", "--"][i % 2], color=_cycle_colour(i), marker=MARKERS[i % 10],
                    ms=3.5, label=label)
            plotted += _band(ax, range(len(norms)), run, "grad_h_norm", _cycle_colour(i))
            plotted.append(norms)
        _log_axis(ax, plotted)
        _integer_ticks(ax.xaxis)
        ax.set_xlabel("layer l (0 = input)")
        ax.set_ylabel("||dL/dh_l||")
        acts = ", ".join(str(a) for a in _unique(named, "activation"))
        ax.set_title(f"(a) initialisations, plain {acts} net")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, title="init (measured log10 gain per layer)", title_fontsize=8)
    if linear:
        ax = axes.pop(0)
        plotted = []
        for i, run in enumerate(linear):
            colour = _cycle_colour(i)
            norms = _positive(run["grad_h_norm"])
            last = len(norms) - 1
            layers = np.arange(last + 1)
            gain = run.get("log10_gain_per_layer")
            predicted = run["predicted_log10_gain_per_layer"]
            measured = "n/a" if gain is None else f"{gain:+.3f}"
            ax.plot(layers, norms, "o", ms=3.5, color=colour,
                    label=f"s={run['scale']:g}: {measured} vs {predicted:+.3f}" + _lost_points(run["grad_h_norm"]))
            plotted += _band(ax, layers, run, "grad_h_norm", colour)
            plotted.append(norms)
            if np.isfinite(norms[-1]):
                line = norms[-1] * 10.0 ** (predicted * (last - layers))
                plotted.append(line)
                ax.plot(layers, line, "-", color=colour, lw=1.2)
        ax.plot([], [], "o", color="grey", ms=3.5, label="markers: measured")
        ax.plot([], [], "-", color="grey", label="lines: s^(L-l) from layer L")
        _log_axis(ax, plotted)
        _integer_ticks(ax.xaxis)
        ax.set_xlabel("layer l (0 = input)")
        ax.set_ylabel("||dL/dh_l||")
        ax.set_title("(b) deep linear net, W ~ N(0, s^2/n): measured vs s^(L-l)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right", title="log10 gain per layer: measured vs log10 s",
                  title_fontsize=8)
    fig.suptitle("Initialisation and gradient flow (" + _options_note(data, ["depth", "width", "seed"])
                 + ")" + _seeds_note(data))
    return [_save(fig, out_dir, "init.png")]


# ----- depth -----------------------------------------------------------------------
def _why_missing(run: dict) -> str:
    """Why log10_ratio_h is None: 'underflow (0)' if a norm is exactly 0, else 'not finite'."""
    norms = run.get("grad_h_norm") or []
    ends = [norms[1] if len(norms) > 1 else None, norms[-1] if norms else None]
    if any(v == 0 for v in ends):
        return "underflow (0)"
    return "not finite"


def plot_depth(data: dict, out_dir: Path) -> list[Path]:
    runs = data["runs"]
    finite = [r[k] for r in runs for k in ("log10_ratio_h", "log10_ratio_h_min", "log10_ratio_h_max")
              if r.get(k) is not None]
    lo = min(finite + [0.0])
    hi = max(finite + [0.0])
    pad = 0.08 * (hi - lo or 1.0)
    bottom, top = lo - 2 * pad, hi + 2 * pad
    fig = _figure(8, 5.4)
    ax = fig.subplots()
    ax.axhline(0.0, color="grey", lw=0.8)
    missing_labelled = False
    for i, kind in enumerate(_unique(runs, "kind")):
        colour = KIND_COLOURS.get(kind, _cycle_colour(i))
        for norm in _unique(_runs(data, kind=kind), "norm"):
            group = sorted(_runs(data, kind=kind, norm=norm), key=lambda r: r["depth"])
            depths = [r["depth"] for r in group]
            ratios = [np.nan if r.get("log10_ratio_h") is None else r["log10_ratio_h"] for r in group]
            style = NORM_STYLES.get(norm, "-.")
            ax.plot(depths, ratios, style, color=colour, marker="o", ms=4,
                    label=f"{kind}" + ("" if norm == "none" else f" + {norm} norm"))
            if any(r.get("n_seeds", 1) > 1 for r in group):
                _band(ax, depths, {"n_seeds": 2, "r_min": [r.get("log10_ratio_h_min") for r in group],
                                   "r_max": [r.get("log10_ratio_h_max") for r in group]}, "r", colour, log=False)
            for r in group:
                if r.get("log10_ratio_h") is None:
                    why = _why_missing(r)
                    y = bottom + pad if why.startswith("underflow") else top - pad
                    ax.plot([r["depth"]], [y], "v" if why.startswith("underflow") else "^", color=colour, ms=9,
                            mfc="white", mew=2,
                            label=None if missing_labelled else "ratio not measurable (a norm is 0)")
                    missing_labelled = True
                    ax.annotate(f"{kind}, depth {r['depth']}: {why}", (r["depth"], y), textcoords="offset points",
                                xytext=(-6, 8 if why.startswith("underflow") else -14), ha="right", fontsize=8,
                                color=colour)
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted({r["depth"] for r in runs})))   # the depths measured
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(bottom, top)
    ax.set_xlabel("depth L (number of blocks, log scale)")
    ax.set_ylabel("log10(||dL/dh_1|| / ||dL/dh_L||)  [decades]")
    ax.set_title("Gradient lost (<0) or gained (>0) from last to first block, by depth\n("
                 + _options_note(data, ["activation", "init", "width", "seed"]) + ")" + _seeds_note(data))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return [_save(fig, out_dir, "depth.png")]


# ----- recurrent -------------------------------------------------------------------
def plot_recurrent(data: dict, out_dir: Path) -> list[Path]:
    runs = data["runs"]
    biases = _unique(runs, "gate_bias")
    fig = _figure(8.5, 5.4)
    ax = fig.subplots()
    plotted = []
    for i, cell in enumerate(_unique(runs, "cell")):
        colour = CELL_COLOURS.get(cell, _cycle_colour(i))
        for run in _runs(data, cell=cell):
            norms = _positive(run["grad_h_norm"])
            style = BIAS_STYLES[biases.index(run.get("gate_bias")) % len(BIAS_STYLES)]
            ratio = run.get("log10_ratio_h")
            label = f"{cell}" + ("" if cell == "rnn" else f", gate bias {run.get('gate_bias'):+g}") \
                + (f" ({ratio:+.1f} dec)" if ratio is not None else "") + _lost_points(run["grad_h_norm"])
            ax.plot(range(len(norms)), norms, style, color=colour, lw=1.6, label=label)
            plotted += _band(ax, range(len(norms)), run, "grad_h_norm", colour)
            plotted.append(norms)
    _log_axis(ax, plotted)
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("time step t (0 = initial state; loss on the last step)")
    ax.set_ylabel("||dL/dh_t||")
    ax.set_title("||dL/dh_t|| through time: vanilla RNN vs GRU vs LSTM ("
                 + _options_note(data, ["T", "hidden", "seed"])
                 + ")\ngate bias: added to the LSTM forget gate / GRU update gate bias" + _seeds_note(data))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return [_save(fig, out_dir, "recurrent.png")]


# ----- learning-speed --------------------------------------------------------------
def plot_learning_speed(data: dict, out_dir: Path) -> list[Path]:
    from matplotlib.colors import LogNorm

    runs = data["runs"]
    grids = [_positive(np.asarray(r["update_ratio"], dtype=np.float64).ravel()).reshape(
        np.shape(r["update_ratio"])) for r in runs]
    values = np.concatenate([g[np.isfinite(g)] for g in grids] + [np.array([])])
    lo, hi = (float(values.min()), float(values.max())) if values.size else (1e-6, 1.0)
    if hi <= lo:
        lo, hi = lo / 10, hi * 10
    norm = LogNorm(vmin=lo, vmax=hi)
    fig = _figure(4.4 * len(runs) + 5.2, 4.8)
    axes = fig.subplots(1, len(runs) + 1, squeeze=False)[0]
    image = None
    for ax, run, grid in zip(axes, runs, grids):
        steps, layers = grid.shape
        image = ax.imshow(grid.T, norm=norm, cmap="magma", aspect="auto", origin="lower",
                          extent=(-0.5, steps - 0.5, 0.5, layers + 0.5), interpolation="nearest")
        ax.set_title(f"{run['kind']}: ||dW_l|| / ||W_l|| per step")
        ax.set_xlabel("training step")
        ax.set_ylabel("layer l (1 = first block)")
        _integer_ticks(ax.xaxis)
        _integer_ticks(ax.yaxis)
    fig.colorbar(image, ax=list(axes[:-1]), label="||dW_l|| / ||W_l|| (log scale)", shrink=0.9)
    ax = axes[-1]
    plotted = []
    for i, run in enumerate(runs):
        mean = _positive(run["mean_update_ratio"])
        ax.plot(range(1, len(mean) + 1), mean, color=KIND_COLOURS.get(run["kind"], _cycle_colour(i)), marker=".",
                label=run["kind"] + _lost_points(run["mean_update_ratio"]))
        plotted += _band(ax, range(1, len(mean) + 1), run, "mean_update_ratio", KIND_COLOURS.get(run["kind"], _cycle_colour(i)))
        plotted.append(mean)
    _log_axis(ax, plotted)
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("layer l (1 = first block)")
    ax.set_ylabel("mean over steps of ||dW_l|| / ||W_l||")
    ax.set_title("Mean update size per layer")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle("Learning speed per layer during training (SGD)\n("
                 + _options_note(data, ["lr", "steps", "depth", "width", "activation", "init"]) + ")" + _seeds_note(data))
    return [_save(fig, out_dir, "learning_speed.png")]


# ----- sweeps ------------------------------------------------------------------------
def plot_sweep(summaries: Sequence[dict], layout: dict, out_dir: str | Path) -> list[Path]:
    """One PNG per statistic (sweep_STATISTIC.png): the statistic against layout["x"], a line per
    layout["hue"] value (line styles for layout["extra"] fields), panels by layout["rows"] and
    layout["cols"]; each line is the median over seeds, its band the seeds' min..max (both
    computed in stats.describe, read here)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x, hue, rows_key, cols_key = layout["x"], layout.get("hue"), layout.get("rows"), layout.get("cols")
    row_values = _unique(summaries, rows_key) if rows_key else [None]
    col_values = _unique(summaries, cols_key) if cols_key else [None]
    hues = _unique(summaries, hue) if hue else [None]
    extras = [tuple(e.get(k) for k in layout["extra"]) for e in summaries]
    extra_values = list(dict.fromkeys(extras))
    xs = _unique(summaries, x)
    numeric_x = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
    paths = []
    for statistic in layout["statistics"]:
        fig = _figure(max(3.2 * len(col_values) + 1.0, 6.4), 2.5 * len(row_values) + 1.5)
        axes = fig.subplots(len(row_values), len(col_values), squeeze=False, sharex=True, sharey="row")
        seeds = sorted({e["stats"].get(statistic, {}).get("n", 0) + e["stats"].get(statistic, {}).get("missing", 0)
                        for e in summaries})
        for r, row_value in enumerate(row_values):
            for c, col_value in enumerate(col_values):
                ax = axes[r][c]
                ax.axhline(0.0, color="grey", lw=0.6)
                for h, hue_value in enumerate(hues):
                    colour = KIND_COLOURS.get(hue_value, CELL_COLOURS.get(hue_value, _cycle_colour(h)))
                    for k, extra in enumerate(extra_values):
                        line = [e for e, ex in zip(summaries, extras)
                                if (not rows_key or e.get(rows_key) == row_value)
                                and (not cols_key or e.get(cols_key) == col_value)
                                and (not hue or e.get(hue) == hue_value) and ex == extra
                                and e["stats"].get(statistic, {}).get("median") is not None]
                        if not line:
                            continue
                        line.sort(key=lambda e: e[x] if numeric_x else xs.index(e[x]))
                        where = [e[x] if numeric_x else xs.index(e[x]) for e in line]
                        stats = [e["stats"][statistic] for e in line]
                        label = ", ".join(str(v) for v in ((hue_value,) if hue else ()) + extra if v is not None)
                        ax.plot(where, [s["median"] for s in stats], BIAS_STYLES[k % len(BIAS_STYLES)],
                                color=colour, marker="o", ms=3, lw=1.4,
                                label=(label or statistic) if (r, c) == (0, 0) else None)
                        ax.fill_between(where, [s["min"] for s in stats], [s["max"] for s in stats],
                                        color=colour, alpha=0.18, lw=0)
                title = ", ".join(f"{v}" for v in (row_value, col_value) if v is not None)
                if title:
                    ax.set_title(title, fontsize=9)
                if numeric_x and len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 20:
                    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter
                    ax.set_xscale("log")
                    ax.xaxis.set_major_locator(FixedLocator(sorted(xs)))   # the values swept
                    ax.xaxis.set_major_formatter(ScalarFormatter())
                    ax.xaxis.set_minor_locator(NullLocator())
                if not numeric_x:
                    ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=30, fontsize=8)
                ax.grid(True, which="major", alpha=0.3)
                if r == len(row_values) - 1:
                    ax.set_xlabel(x)
                if c == 0:
                    ax.set_ylabel(statistic + (" [decades]" if statistic.startswith("log10") else ""), fontsize=8)
        seed_text = "/".join(str(n) for n in seeds)
        fig.suptitle(f"{statistic} against {x}\nline: median over {seed_text} seeds; band: min..max over the seeds",
                     fontsize=10)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6) or 1, fontsize=8)
        paths.append(_save(fig, out, f"sweep_{statistic}.png"))
    return paths


PLOTTERS: dict[str, Callable[[dict, Path], list[Path]]] = {
    "seed-figure": plot_seed_figure,
    "activations": plot_activations,
    "init": plot_init,
    "depth": plot_depth,
    "recurrent": plot_recurrent,
    "learning-speed": plot_learning_speed,
    **ARCH_PLOTTERS,
    "conv-depth": plot_conv_depth,
}
CAPTIONS.update(ARCH_CAPTIONS)
CAPTIONS["conv_depth.png"] = (
    "Plain against residual CIFAR-style conv nets (6n+2 layers) on synthetic images. Left and middle: "
    "||dL/dh_l|| against the block l at initialisation and after training, log scale. Right: the training "
    "loss per SGD step. The deeper plain net trains worse than the shallower one; its residual twin does not.")


def figure_files(data: dict) -> list[str]:
    """The names of the PNGs that `plot(data, ...)` writes (without drawing them)."""
    name = data.get("experiment")
    if name == "seed-figure":
        return [f"seed_figure_{p}.png" for p in _unique(data["runs"], "phase")] + ["seed_figure_grad_norms.png"]
    if name in PLOTTERS:
        return [f"{name.replace('-', '_')}.png"]
    return []


def plot(data: dict, out_dir: str | Path) -> list[Path]:
    """Draw an experiment's data (run_experiment's dict) into PNGs in out_dir; returns their paths."""
    name = data.get("experiment")
    if name not in PLOTTERS:
        raise ValueError(f"no plot for experiment {name!r}; known: {', '.join(PLOTTERS)}")
    if not data.get("runs"):
        raise ValueError(f"experiment {name!r} has no runs to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from .stats import collapse_seeds
    # several seeds per configuration: each line is their median, its band their min..max
    # (heatmaps show the first seed's input)
    return PLOTTERS[name]({**data, "runs": collapse_seeds(data["runs"])}, out)
