"""The lab's report: one self-contained HTML page of a directory of experiment results,
and the summary table the CLI prints in the terminal.

    write_report("out")                  # -> out/report.html
    headers, rows = summary_rows(data)   # one row per run, cells as display strings
    print(format_table(headers, rows))

Design: the page has no external resources at all (figures are PNGs embedded as
base64 data URIs, CSS is inline), so it can be mailed or opened offline. Figures are
taken from the directory when the CLI wrote them next to the JSON (NAME.json with its
PNGs, not older than the JSON); otherwise they are drawn into a temporary directory,
so writing a report never changes anything in the directory but report.html. The
same `summary_rows` feeds the HTML table and the terminal table, so the two agree.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Sequence

__all__ = ["write_report", "summary_rows", "format_table", "CONFIG_FIELDS"]

# Configuration columns, in this order, when any run has them.
CONFIG_FIELDS = ("kind", "cell", "phase", "activation", "init", "scale", "norm", "gate_bias", "depth", "T",
                 "width", "seed")
# Measurement columns: (field, header).
MEASURE_FIELDS = (("log10_ratio_h", "log10_ratio_h"), ("log10_gain_per_layer", "gain_per_layer"),
                  ("predicted_log10_gain_per_layer", "predicted_gain"), ("loss", "loss"))

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


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _numeric_column(cells: Sequence[str]) -> bool:
    """Right-align a column whose cells are numbers (or the placeholders for a missing one)."""
    return bool(cells) and all(_looks_numeric(c) or c in ("-", "", "underflow", "n/a") for c in cells)


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


# ----- page ----------------------------------------------------------------------
def _load(path: Path) -> tuple[dict | None, str | None]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return None, f"{path.name}: not readable as JSON ({e})"
    if not isinstance(data, dict) or "experiment" not in data or not isinstance(data.get("runs"), list):
        return None, f"{path.name}: not an experiment result (no 'experiment' and 'runs'); skipped"
    return data, None


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


def _section(path: Path, data: dict, figures: list[tuple[str, bytes]], note: str | None) -> str:
    from .plots import CAPTIONS  # no matplotlib: plots.py imports it inside its functions

    name = data["experiment"]
    anchor = html.escape(path.stem)
    parts = [f'<section id="{anchor}">', f"<h2>{html.escape(name)}</h2>",
             f'<p class="meta">from {html.escape(path.name)}, {len(data["runs"])} runs</p>']
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
    parts.append("</section>")
    return "\n".join(parts)


def write_report(directory: str | Path) -> Path:
    """Read every *.json experiment result in `directory` and write directory/report.html:
    one self-contained page with each experiment's options, figures and summary table."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory")
    order = _experiment_order()
    loaded, notes = [], []
    for path in sorted(directory.glob("*.json")):
        data, note = _load(path)
        if data is None:
            notes.append(note)
        else:
            loaded.append((path, data))
    if not loaded:
        raise ValueError(f"{directory} holds no experiment JSON files; run `tinygrad-vg run ...` first")
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
    out.write_text(page, encoding="utf-8")
    return out
