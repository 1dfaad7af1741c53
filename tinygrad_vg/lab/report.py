"""The lab's report: one self-contained HTML page of a directory of experiment results,
and the summary table the CLI prints in the terminal.

    write_report("out")                  # -> out/report.html
    headers, rows = summary_rows(data)   # one row per run, cells as display strings
    print(format_table(headers, rows))

Design: the page has no external resources at all (figures are PNGs embedded as
base64 data URIs, CSS is inline), so it can be mailed or opened offline. Figures are
taken from the directory when the CLI wrote them next to the JSON (NAME.json with its
PNGs, not older than the JSON); otherwise they are drawn into a temporary directory,
so writing a report never changes anything in the directory but report.html, which is
written atomically. The same `summary_rows` feeds the HTML table and the terminal table,
so the two agree. Each section ends with its conclusion in one sentence, computed from
the numbers (`conclusion`), never written ahead of the measurement.

A file in the directory is an experiment result (read), something else (valid JSON
that is not a result: skipped, and named), or damaged (unreadable, not JSON, or a result
whose fields have the wrong types: the report stops with DamagedResults naming it,
unless skip_bad, which skips and names it).
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from ..io import atomic_write

__all__ = ["write_report", "summary_rows", "format_table", "conclusion", "read_results", "DamagedResults",
           "NoResults", "CONFIG_FIELDS"]

# Configuration columns, in this order, when any run has them.
CONFIG_FIELDS = ("kind", "variant", "delay", "narx_init",
                 "cell", "phase", "activation", "init", "scale", "norm", "gate_bias", "depth", "T",
                 "width", "seed")
# Measurement columns: (field, header).
MEASURE_FIELDS = (("log10_ratio_h", "log10_ratio_h"), ("log10_gain_per_layer", "gain_per_layer"),
                  ("predicted_log10_gain_per_layer", "predicted_gain"), ("loss", "loss"),
                  ("log10_slope", "log10_slope"))

INTRO = (
    "Each experiment below runs seeded networks, records for every layer (or time step) l the gradient "
    "of the loss with respect to that layer's output h_l, and reports the headline statistic "
    "<b>log10_ratio_h = log10(||dL/dh_1|| / ||dL/dh_L||)</b>: how many decades the gradient gains or loses "
    "on its way back from the last block (L) to the first (1). Negative means the gradient vanishes toward "
    "the input (-3 is a factor 1000 smaller at the first layer than at the last); positive means it grows "
    "(explodes) toward the input; 0 means it arrives intact. <i>underflow</i> marks a run where a gradient "
    "norm came out as exactly 0, so the ratio cannot be taken."
)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1480px;
       margin: 1.5em auto; padding: 0 1.5em; color: #1b1b1b; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2.2em; }
.meta { color: #666; font-size: 0.9em; }
.intro { background: #f5f7fa; border-left: 4px solid #4a78b5; padding: 0.7em 1em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { color: #444; font-size: 0.92em; max-width: 1000px; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
table.options td:first-child { font-family: ui-monospace, Menlo, Consolas, monospace; }
.note { color: #8a4b00; }
.conclusion { background: #f5f7fa; border-left: 4px solid #2e7d32; padding: 0.5em 1em; }
nav ul { columns: 2; }
"""


# ----- table ---------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _format_value(field: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not _is_number(value):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if field.startswith("log10") or field.startswith("predicted_log10"):
        return f"{value:+.3f}" if "gain" in field else f"{value:+.2f}"
    if field == "loss":
        return f"{value:.4g}"
    return f"{value:g}"


def _missing_ratio(run: dict) -> str:
    """Why a run has no log10_ratio_h: a gradient norm of exactly 0 (underflow) or not finite."""
    norms = run.get("grad_h_norm") or []
    ends = [norms[1] if len(norms) > 1 else None, norms[-1] if norms else None]
    if any(v == 0 for v in ends):
        return "underflow"
    return "n/a"


def summary_rows(data: dict) -> tuple[list[str], list[list[str]]]:
    """The summary table of one experiment: (headers, rows), one row per run, every cell a
    display string. Columns: the configuration fields any run has (kind/cell/phase/activation/
    init/scale/norm/gate_bias/depth/T/width/seed), then log10_ratio_h, the deep linear net's
    measured and predicted log10 gain per layer where present, and the loss where present."""
    runs = data.get("runs") or []
    summaries = data.get("summaries") or []
    if any(len(e.get("seeds") or []) > 1 for e in summaries):
        return _seed_summary_rows(summaries)
    present = [f for f in CONFIG_FIELDS if any(f in r for r in runs)]
    if "cell" in present and "kind" in present and all(r.get("kind") == r.get("cell") for r in runs):
        present.remove("kind")   # the recurrent runs repeat the cell name as kind
    measures = [(f, h) for f, h in MEASURE_FIELDS if f == "log10_ratio_h" or any(r.get(f) is not None for r in runs)]
    headers = present + [h for _, h in measures]
    rows = []
    for run in runs:
        row = [_format_value(f, run.get(f)) for f in present]
        for field, _ in measures:
            value = run.get(field)
            if field == "log10_ratio_h" and value is None:
                row.append(_missing_ratio(run))
            else:
                row.append(_format_value(field, value))
        rows.append(row)
    return headers, rows


def _seed_summary_rows(summaries: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """One row per configuration run with several seeds: its fields, then `mean +- sd (n)` of
    each statistic over the seeds (stats.summarise computed them)."""
    from .stats import mean_sd_text
    present = [f for f in CONFIG_FIELDS if f != "seed" and any(f in e for e in summaries)]
    if "cell" in present and "kind" in present and all(e.get("kind") == e.get("cell") for e in summaries):
        present.remove("kind")
    statistics = [f for f, _ in MEASURE_FIELDS if any(f in e.get("stats", {}) for e in summaries)]
    headers = present + [f"{dict(MEASURE_FIELDS)[f]} mean +- sd (n)" for f in statistics]
    rows = [[_format_value(f, e.get(f)) for f in present] + [mean_sd_text(e["stats"].get(f, {}), signed=f.startswith("log10"))
                                                               for f in statistics]
            for e in summaries]
    return headers, rows


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _numeric_column(cells: Sequence[str]) -> bool:
    """Right-align a column whose cells are numbers (or the placeholders for a missing one)."""
    return bool(cells) and all(_looks_numeric(c) or c in ("-", "", "underflow", "n/a") or " +- " in c
                               for c in cells)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: a header line, a rule, one line per row; numeric columns right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    ncols = max([len(headers)] + [len(r) for r in cells])
    header = list(headers) + [""] * (ncols - len(headers))
    cells = [r + [""] * (ncols - len(r)) for r in cells]
    widths = [max([len(header[i])] + [len(r[i]) for r in cells]) for i in range(ncols)]
    numeric = [_numeric_column([r[i] for r in cells]) for i in range(ncols)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


# ----- conclusions: one sentence per experiment, from its numbers ------------------------
def _change(decades: float | None) -> str:
    """'loses 4.9 decades', 'gains 0.5 decades', 'keeps its size', or 'underflows to 0'."""
    if decades is None:
        return "underflows to 0"
    if abs(decades) < 0.05:
        return "keeps its size"
    word = "gains" if decades > 0 else "loses"
    return f"{word} {abs(decades):.1f} decade{'' if f'{abs(decades):.1f}' == '1.0' else 's'}"


def _listing(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _ratio(run: dict) -> float | None:
    value = run.get("log10_ratio_h")
    return value if _is_number(value) else None


def _conclude_seed_figure(runs: list[dict], key: str = "kind") -> str:
    """key: what tells the nets apart (the kind; arch-seed-figure's variant)."""
    parts = []
    for kind in dict.fromkeys(r.get(key) for r in runs):
        phases = [f"{_change(_ratio(r))} " + ("at initialisation" if r.get("phase") == "init"
                                              else f"after {r.get('steps')} SGD steps")
                  for r in runs if r.get(key) == kind]
        parts.append(f"the {kind} net's gradient {_listing(phases)}")
    return f"Between the last and the first of {runs[0].get('depth')} blocks, {_listing(parts)}."


def _conclude_activations(runs: list[dict]) -> str:
    measured = [r for r in runs if _ratio(r) is not None]
    if not measured:
        return "Every activation's gradient underflowed to 0, so no ratio could be measured."
    most = max(measured, key=lambda r: abs(_ratio(r)))
    least = min(measured, key=lambda r: abs(_ratio(r)))
    lost = [r["activation"] for r in runs if _ratio(r) is None]
    tail = f", and the {_listing(lost)} net's gradient underflows to 0" if lost else ""
    return (f"Over {runs[0].get('depth')} layers the gradient of the {most['activation']} net "
            f"{_change(_ratio(most))}, the largest change of the {len(runs)} activations, and that of the "
            f"{least['activation']} net {_change(_ratio(least))}, the smallest{tail}.")


def _conclude_init(runs: list[dict]) -> str:
    parts = []
    tanh = [r for r in runs if r.get("predicted_log10_gain_per_layer") is None and _ratio(r) is not None]
    if tanh:
        best = min(tanh, key=lambda r: abs(_ratio(r)))
        worst = max(tanh, key=lambda r: abs(_ratio(r)))
        parts.append(f"in the {tanh[0].get('activation')} net the gradient {_change(_ratio(best))} with "
                     f"{best['init']} init, the smallest change, and {_change(_ratio(worst))} with {worst['init']} "
                     "init, the largest")
    linear = [r for r in runs if _is_number(r.get("predicted_log10_gain_per_layer"))
              and _is_number(r.get("log10_gain_per_layer"))]
    if linear:
        gap = max(abs(r["log10_gain_per_layer"] - r["predicted_log10_gain_per_layer"]) for r in linear)
        parts.append(f"in the deep linear net the measured gain per layer is within {gap:.3f} decades of "
                     f"log10(s) for all {len(linear)} scales")
    text = "; ".join(parts) or "no ratio could be measured (every gradient underflowed to 0)"
    return text[0].upper() + text[1:] + "."


def _conclude_depth(runs: list[dict]) -> str:
    def at(kind: str, norm: str, depth: int) -> float | None:
        return next((_ratio(r) for r in runs if (r.get("kind"), r.get("norm"), r.get("depth")) == (kind, norm, depth)),
                    None)
    depths = sorted({r["depth"] for r in runs if _is_number(r.get("depth"))})
    kinds = list(dict.fromkeys(r.get("kind") for r in runs))
    plain_both = [d for d in depths if at("plain", "none", d) is not None and at("plain", "batch", d) is not None]
    if plain_both:
        d = plain_both[-1]
        without, with_bn = at("plain", "none", d), at("plain", "batch", d)
        if without < -1 and with_bn > 1:
            return (f"Batch norm turns the plain net's vanishing into explosion: at depth {d} its gradient "
                    f"{_change(without)} without batch norm and {_change(with_bn)} with it, so batch norm alone "
                    f"does not keep this net's gradient healthy at initialisation.")
        verdict = "keeps the gradient closer to its size" if abs(with_bn) < abs(without) else \
            "does not keep the gradient closer to its size"
        return (f"At depth {d} the plain net's gradient {_change(without)} without batch norm and {_change(with_bn)} "
                f"with it: batch norm {verdict}.")
    deepest = depths[-1] if depths else None
    parts = [f"the {k} net's {_change(at(k, 'none', deepest))}" for k in kinds
             if any(r.get("kind") == k and r.get("norm") == "none" for r in runs)]
    if not parts:
        parts = [f"the {k} net's {_change(next(_ratio(r) for r in runs if r.get('kind') == k))}" for k in kinds]
    return f"At depth {deepest}, between the last and the first block, {_listing(parts)}.".replace(
        "net's ", "net's gradient ", 1)


def _conclude_recurrent(runs: list[dict]) -> str:
    T = runs[0].get("T")
    rnn = [r for r in runs if r.get("cell") == "rnn"]
    gated = [r for r in runs if r.get("cell") != "rnn"]
    parts = []
    if rnn:
        parts.append(f"the vanilla RNN's gradient {_change(_ratio(rnn[0]))}")
    if gated:
        best = max(gated, key=lambda r: -math.inf if _ratio(r) is None else _ratio(r))
        worst = min(gated, key=lambda r: math.inf if _ratio(r) is None else _ratio(r))
        parts.append(f"the best gated cell, the {best['cell']} with gate bias {best.get('gate_bias'):+g}, "
                     f"{_change(_ratio(best))}")
        if worst is not best:
            parts.append(f"the worst, the {worst['cell']} with gate bias {worst.get('gate_bias'):+g}, "
                         f"{_change(_ratio(worst))}")
    return f"Over {T} time steps {_listing(parts)}."


def _conclude_learning_speed(runs: list[dict]) -> str:
    parts = []
    for run in runs:
        speed = [v for v in run.get("mean_update_ratio") or [] if _is_number(v)]
        if len(speed) < 2 or speed[0] <= 0 or speed[-1] <= 0:
            continue
        factor = speed[-1] / speed[0]
        how = f"{factor:.1f} times less" if factor >= 1 else f"{1 / factor:.1f} times more"
        parts.append(f"in the {run['kind']} net the first layer's weights move {how} per step than the last "
                     "layer's")
    if not parts:
        return "No layer's update could be measured."
    text = _listing(parts) + f", on average over {runs[0].get('steps')} SGD steps."
    return text[0].upper() + text[1:]


def _conclude_arch_depth(runs: list[dict]) -> str:
    deepest = max(r["depth"] for r in runs if _is_number(r.get("depth")))
    parts = [f"the {r.get('variant')} net's gradient {_change(_ratio(r))}" for r in runs if r.get("depth") == deepest]
    return f"At depth {deepest}, between the last and the first block, {_listing(parts)}."


def _conclude_narx(runs: list[dict]) -> str:
    def name(r: dict) -> str:
        if r.get("cell") == "narx":
            return f"the NARX net with D = {r.get('delay')} ({r.get('narx_init')} init)"
        return f"the {str(r.get('cell')).upper()} (forget bias {r.get('gate_bias')})"
    parts = [f"{name(r)} {_change(_ratio(r))}" for r in runs]
    return f"Over {runs[0].get('T')} steps, from the last step back to the first, {_listing(parts)}."


def _conclude_conv_depth(runs: list[dict]) -> str:
    trained = [r for r in runs if r.get("phase") == "trained" and _is_number(r.get("final_loss"))]
    parts = [f"the {r.get('kind')}-{r.get('depth')} net reaches loss {r['final_loss']:.3f}" for r in trained]
    steps = trained[0].get("steps") if trained else 0
    return f"After {steps} SGD steps on the synthetic images, {_listing(parts)}." if parts else \
        "No conv net was trained (steps = 0)."


CONCLUSIONS: dict[str, Callable[[list[dict]], str]] = {
    "seed-figure": _conclude_seed_figure, "activations": _conclude_activations, "init": _conclude_init,
    "depth": _conclude_depth, "recurrent": _conclude_recurrent, "learning-speed": _conclude_learning_speed,
    "arch-seed-figure": lambda runs: _conclude_seed_figure(runs, "variant"), "arch-depth": _conclude_arch_depth,
    "narx": _conclude_narx, "conv-depth": _conclude_conv_depth,
}


def conclusion(data: dict) -> str | None:
    """What an experiment's numbers say, in one sentence (None for an unknown experiment or no
    runs). Computed here, from the runs, so it changes when the numbers do; with several seeds
    per configuration, from each configuration's median over them."""
    runs = data.get("runs") or []
    conclude = CONCLUSIONS.get(data.get("experiment"))
    if not conclude or not runs:
        return None
    try:
        from .stats import collapse_seeds
        merged = collapse_seeds(runs)
        seeds = max(r["n_seeds"] for r in merged)
        if seeds == 1:
            return conclude(runs)
        # several seeds: the sentence reads each configuration's median over them
        return conclude(merged) + f" (Medians over {seeds} seeds; the table gives mean +- sd.)"
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:   # runs without the fields
        return f"No conclusion: the runs lack what it is computed from ({type(e).__name__}: {e})."


# ----- reading the directory -------------------------------------------------------
class DamagedResults(ValueError):
    """Result files that cannot be read as results; the message names each and why."""

    def __init__(self, damaged: list[tuple[str, str]]) -> None:
        self.damaged = damaged
        if len(damaged) == 1:
            message = f"{damaged[0][0]} is damaged: {damaged[0][1]}"
        else:
            message = f"{len(damaged)} result files are damaged: " + "; ".join(f"{n} ({w})" for n, w in damaged)
        super().__init__(message)


class NoResults(ValueError):
    """A directory without a single experiment result."""


def _load(path: Path) -> tuple[dict | None, str | None, bool]:
    """(data, None, False) for a result; (None, why, damaged) otherwise: damaged when the
    file cannot be read or parsed or claims to be a result with fields of the wrong type,
    not damaged when it is valid JSON of something else (it is skipped, and named)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        return None, f"cannot be read ({e.strerror or e})", True
    except UnicodeDecodeError:
        return None, "not a text file", True
    except ValueError as e:
        size = path.stat().st_size
        return None, f"not valid JSON ({e}; the file has {size} bytes: truncated?)", True
    if not isinstance(data, dict) or "experiment" not in data:
        return None, "not an experiment result (valid JSON without an 'experiment' field)", False
    if not isinstance(data["experiment"], str) or not data["experiment"]:
        return None, f"its 'experiment' field is {data['experiment']!r}, not an experiment name", True
    runs = data.get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        return None, "its 'runs' field is not a list of runs", True
    if not isinstance(data.get("options", {}), dict):
        return None, "its 'options' field is not a dict of options", True
    return data, None, False


def read_results(directory: str | Path) -> tuple[list[tuple[Path, dict]], list[tuple[str, str]],
                                                   list[tuple[str, str]]]:
    """(results as (path, data), skipped as (file name, why), damaged as (file name, why))
    of every *.json in directory, in file name order."""
    loaded, skipped, damaged = [], [], []
    for path in sorted(Path(directory).glob("*.json")):
        data, why, is_damaged = _load(path)
        if data is not None:
            loaded.append((path, data))
        else:
            (damaged if is_damaged else skipped).append((str(path), why))
    return loaded, skipped, damaged


def _experiment_order() -> list[str]:
    try:
        from .experiments import EXPERIMENTS
        return list(EXPERIMENTS)
    except Exception:   # the page can still be written from the JSON alone
        return []


def _description(name: str) -> str:
    try:
        from .experiments import EXPERIMENTS
    except Exception:
        return ""
    fn = EXPERIMENTS.get(name)
    doc = (fn.__doc__ or "") if fn else ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _figures(path: Path, data: dict, scratch: Path) -> tuple[list[tuple[str, bytes]], str | None]:
    """(name, PNG bytes) of the experiment's figures, and a note if they could not be drawn."""
    try:
        from .plots import figure_files, plot
    except ImportError as e:
        return [], f"figures not drawn: {e}"
    names = figure_files(data)
    existing = [path.parent / n for n in names]
    fresh = (path.stem == data["experiment"] and names
             and all(p.is_file() and p.stat().st_mtime >= path.stat().st_mtime for p in existing))
    if fresh:
        return [(p.name, p.read_bytes()) for p in existing], None
    out = scratch / path.stem
    try:
        drawn = plot(data, out)
    except ImportError as e:
        return [], f"figures not drawn: {e}"
    except (ValueError, KeyError, TypeError, IndexError) as e:
        return [], f"figures not drawn: {type(e).__name__}: {e}"
    return [(p.name, p.read_bytes()) for p in drawn], None


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    numeric = [_numeric_column([r[i] for r in rows]) for i in range(len(headers))]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(
        f'<td class="num">{html.escape(c)}</td>' if numeric[i] else f"<td>{html.escape(c)}</td>"
        for i, c in enumerate(r)) + "</tr>" for r in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _option_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _provenance_text(data: dict) -> str:
    """', tinygrad_vg 0.1.0 (commit abc1234), compiled kernels, numpy 2.1, 3.2 s on CPU' from the
    result's provenance, '' for a result written before results carried one."""
    p = data.get("provenance")
    if not isinstance(p, dict):
        return ""
    git = p.get("git") if isinstance(p.get("git"), dict) else None
    commit = f" (commit {str(git.get('commit'))[:10]}{', modified' if git.get('dirty') else ''})" if git else ""
    machine = p.get("machine") if isinstance(p.get("machine"), dict) else {}
    wall = p.get("wall_time_s")
    took = f", {wall:.1f} s" if isinstance(wall, (int, float)) else ""
    return html.escape(f"; tinygrad_vg {p.get('version')}{commit}, {p.get('kernel_backend')} kernels, numpy "
                       f"{p.get('numpy')}{took} on {machine.get('cpu', '?')}, {p.get('finished_utc', '')}")


def _section(path: Path, data: dict, figures: list[tuple[str, bytes]], note: str | None) -> str:
    from .plots import CAPTIONS  # no matplotlib: plots.py imports it inside its functions

    name = data["experiment"]
    anchor = html.escape(path.stem)
    parts = [f'<section id="{anchor}">', f"<h2>{html.escape(name)}</h2>",
             f'<p class="meta">from {html.escape(path.name)}, {len(data["runs"])} runs{_provenance_text(data)}</p>']
    description = _description(name)
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    options = data.get("options") or {}
    if options:
        parts.append("<h3>Options</h3>")
        parts.append(_html_table(["option", "value"], [[k, _option_text(v)] for k, v in options.items()],
                                 cls="options"))
    if figures or note:
        parts.append("<h3>Figures</h3>")
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    for fig_name, png in figures:
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        caption = CAPTIONS.get(fig_name, "")
        parts.append(f'<figure><img src="{uri}" alt="{html.escape(fig_name)}">'
                     f"<figcaption><b>{html.escape(fig_name)}</b>. {html.escape(caption)}</figcaption></figure>")
    headers, rows = summary_rows(data)
    parts.append("<h3>Summary</h3>")
    parts.append(_html_table(headers, rows))
    sentence = conclusion(data)
    if sentence:
        parts.append(f'<p class="conclusion"><b>Conclusion.</b> {html.escape(sentence)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def write_report(directory: str | Path, skip_bad: bool = False,
                 on_skip: Callable[[str, str], None] | None = None) -> Path:
    """Read every *.json experiment result in `directory` and write directory/report.html
    (atomically): one self-contained page with each experiment's options, figures, summary
    table and conclusion. A damaged file raises DamagedResults (nothing is written) unless
    skip_bad; every file left out is named on the page and passed to on_skip(name, why)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory")
    order = _experiment_order()
    loaded, skipped, damaged = read_results(directory)
    if damaged and not skip_bad:
        raise DamagedResults(damaged)
    left_out = damaged + skipped
    if not loaded:
        found = f" (left out: {'; '.join(f'{n}: {w}' for n, w in left_out)})" if left_out else ""
        raise NoResults(f"{directory} holds no experiment results{found}; run `tinygrad-vg run EXPERIMENT "
                        f"--out {directory}` first")
    for name, why in left_out:
        if on_skip:
            on_skip(name, why)
    notes = [f"{name}: {why}; left out of this report" for name, why in left_out]
    loaded.sort(key=lambda pd: (order.index(pd[1]["experiment"]) if pd[1]["experiment"] in order else len(order),
                                pd[0].name))
    sections = []
    with tempfile.TemporaryDirectory(prefix="tinygrad_vg_report_") as scratch:
        for path, data in loaded:
            figures, note = _figures(path, data, Path(scratch))
            sections.append(_section(path, data, figures, note))
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    toc = "".join(f'<li><a href="#{html.escape(p.stem)}">{html.escape(d["experiment"])}</a> '
                  f"({html.escape(p.name)})</li>" for p, d in loaded)
    skipped = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tinygrad_vg lab report</title>
<style>{CSS}</style>
</head>
<body>
<h1>tinygrad_vg: vanishing-gradient lab report</h1>
<p class="meta">{len(loaded)} experiment result(s) from {html.escape(str(directory))}, written {when}</p>
<p class="intro">{INTRO}</p>
<nav><ul>{toc}</ul></nav>
{skipped}
{chr(10).join(sections)}
</body>
</html>
"""
    out = directory / "report.html"
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write(page)
    return out
