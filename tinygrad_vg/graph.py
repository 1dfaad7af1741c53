"""Pictures of the tape: Graphviz DOT text, and PNG/SVG/PDF files.

    dot_text = tg.to_dot(loss, grad_labels=True)      # always available: a string
    tg.render(loss, "graph.png", grad_labels=True)     # `dot` if installed, else matplotlib

Leaves that require grad, parameters (nn.Parameter), constants, the op nodes and the
root (usually the loss) are drawn with different shapes and colours. Data flows from
the leaves at the top down to the root. With grad_labels=True each edge carries the
norm of the gradient that backward sends back along it, ||dL/d(input)|| for that
use of the input, so a learner sees where the gradient shrinks.

Design:
- One description of the picture (`graph_model`: nodes with a kind and a label, edges
  with an optional gradient norm) feeds both the DOT writer and the matplotlib
  drawing, so the two pictures always show the same graph.
- Edge gradients come from explain.backward_steps, the read-only replay of backward:
  drawing never changes a .grad and needs no earlier backward call, only a graph
  that is not freed.
- The matplotlib fallback lays the graph out in layers: an op node sits one layer
  below its deepest input (longest path from the leaves), moved down to just above
  its first consumer when it can be, a leaf just above its first consumer; long
  edges pass through waypoints, and barycentre sweeps order each layer.
  matplotlib is imported only when this fallback runs (the plot extra), with no
  pyplot state: a bare Figure is saved directly.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .autograd import tape
from .display import Picture, figure_bytes
from .explain import _is_parameter, _Names, _shape, backward_steps
from .tensor import Tensor

__all__ = ["to_dot", "render", "graph_model", "GraphNode", "GraphEdge", "STYLES", "Frame"]

# DOT attributes per node kind; the matplotlib drawing uses the same colours
STYLES: dict[str, dict[str, str]] = {
    "leaf": {"shape": "ellipse", "style": "filled", "fillcolor": "#cfe6ff", "color": "#2f6fb0"},
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#cdeecd", "color": "#2e7d32"},
    "constant": {"shape": "plaintext", "fontcolor": "#6b6b6b"},
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#f1f1f1", "color": "#555555"},
    "root": {"shape": "doubleoctagon", "style": "filled", "fillcolor": "#ffd08a", "color": "#b36b00"},
}
GRAD_NOTE = "edge labels: |g| = norm of dL/d(input) sent back along that edge"


@dataclass
class GraphNode:
    id: str          # DOT identifier: n<k> for tape node k, l<k> for leaves, c<k> for constants
    kind: str        # leaf, parameter, constant, op, root
    label: str       # lines separated by "\n"


@dataclass
class GraphEdge:
    source: str
    target: str
    norm: float | None = None   # ||gradient sent back along the edge||, with grad_labels

    @property
    def label(self) -> str:
        return "" if self.norm is None else f"|g| {self.norm:.3g}"


def _leaf_kind(t: Tensor) -> str:
    if _is_parameter(t):
        return "parameter"
    return "leaf" if t.requires_grad else "constant"


def graph_model(t: Tensor, grad_labels: bool = False, grad: Any = None) -> tuple[list[GraphNode], list[GraphEdge]]:
    """The nodes and edges of the picture of t's graph (what to_dot and render draw).
    grad is the upstream gradient for a tensor of more than one element (default: ones)."""
    nodes = tape(t)
    names = _Names(nodes, t)
    if t.node is None:
        kind = "root" if t.requires_grad else "constant"
        return [GraphNode("l0", kind, f"{names.tensor(t)}\n{_shape(t.shape)}")], []
    gnodes: list[GraphNode] = []
    leaf_ids: dict[int, str] = {}
    for x in (x for node in nodes for x in node.inputs if x.node is None):
        if id(x) not in leaf_ids:
            kind = _leaf_kind(x)
            leaf_ids[id(x)] = f"{'c' if kind == 'constant' else 'l'}{len(leaf_ids)}"
            label = names.tensor(x) if kind == "constant" and x.size == 1 else \
                f"{names.tensor(x)}\n{_shape(x.shape)}"
            gnodes.append(GraphNode(leaf_ids[id(x)], kind, label))
    for k, node in enumerate(nodes):
        out = names.output(node)
        second = f"{out.name} {_shape(out.shape)}" if out.name else _shape(out.shape)
        kind = "root" if node is t.node else "op"
        gnodes.append(GraphNode(f"n{k}", kind, f"#{k} {node.name}\n{second}"))

    norms: dict[tuple[int, int], float] = {}   # (tape index, input position) -> norm
    if grad_labels:
        seed = grad if grad is not None or t.size == 1 else np.ones(t.shape)
        for step in backward_steps(t, seed)[0]:
            for i, g in enumerate(step.grads):
                if g is not None:
                    norms[step.index, i] = float(np.linalg.norm(np.asarray(g, dtype=np.float64)))
    index = {id(node): k for k, node in enumerate(nodes)}
    edges = []
    for k, node in enumerate(nodes):
        for i, x in enumerate(node.inputs):
            source = f"n{index[id(x.node)]}" if x.node is not None else leaf_ids[id(x)]
            edges.append(GraphEdge(source, f"n{k}", norms.get((k, i))))
    return gnodes, edges


# ----- DOT -----------------------------------------------------------------------------------
def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attributes(values: dict[str, str]) -> str:
    return "[" + ", ".join(f"{k}={_quote(v)}" for k, v in values.items()) + "]"


def to_dot(t: Tensor, grad_labels: bool = False, grad: Any = None) -> str:
    """The graph that computed t as Graphviz DOT text (render it with `dot -Tpng`).

    grad_labels=True labels each edge with the norm of the gradient backward sends along
    it (replayed read-only: no .grad changes, no earlier backward needed; the graph must
    not be freed, so after a backward use backward(retain_graph=True)). For a t of more
    than one element the replay is seeded with `grad` (default: ones)."""
    gnodes, edges = graph_model(t, grad_labels, grad)
    lines = [
        "digraph tape {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.35, ranksep=0.45'
        + (f", labelloc=b, label={_quote(GRAD_NOTE)}" if grad_labels else "") + "];",
        '  node [fontname="Helvetica", fontsize=11, margin="0.12,0.04"];',
        '  edge [fontname="Helvetica", fontsize=10, fontcolor="#a0262e", color="#444444", arrowsize=0.7];',
    ]
    for node in gnodes:
        lines.append(f"  {node.id} " + _attributes({"label": node.label, **STYLES[node.kind],
                                                     "class": node.kind}) + ";")
    for edge in edges:
        extra = " " + _attributes({"label": " " + edge.label}) if edge.label else ""
        lines.append(f"  {edge.source} -> {edge.target}{extra};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----- files ---------------------------------------------------------------------------------
FORMATS = ("png", "svg", "pdf")


def render(t: Tensor, path: str | Path | None = None, grad_labels: bool = False, grad: Any = None,
           engine: str | None = None) -> Path | Picture:
    """Draw t's graph into path (.png, .svg or .pdf) and return the path; with no path,
    return the picture (a display.Picture: SVG, shown inline in a notebook; .save(path)).

    engine: "dot" (Graphviz, needs the `dot` program), "matplotlib", or None for dot when
    shutil.which("dot") finds it and matplotlib otherwise, so a picture is made everywhere."""
    if path is None:
        fmt = "svg"
    else:
        path = Path(path)
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ValueError(f"render: unsupported file type {path.suffix!r}; accepted: "
                             + ", ".join("." + f for f in FORMATS) + " (or no path, for a picture to display)")
    if engine is None:
        engine = "dot" if shutil.which("dot") else "matplotlib"
    if engine == "dot":
        program = shutil.which("dot")
        if program is None:
            raise RuntimeError("render(engine='dot'): the Graphviz `dot` program is not on PATH; "
                               "install graphviz or use engine='matplotlib'")
        command = [program, f"-T{fmt}"] + (["-o", str(path)] if path is not None else [])
        done = subprocess.run(command, input=to_dot(t, grad_labels, grad).encode(), capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"dot failed (exit {done.returncode}): {done.stderr.decode(errors='replace').strip()}")
        if path is None:
            return Picture(done.stdout, "svg", "graph drawn by Graphviz dot")
    elif engine == "matplotlib":
        fig = _figure(*graph_model(t, grad_labels, grad), grad_labels)
        if path is None:
            return Picture(figure_bytes(fig, "svg"), "svg", "graph drawn by matplotlib")
        fig.savefig(path, dpi=150 if fmt == "png" else 72)
    else:
        raise ValueError(f"render: unknown engine {engine!r}; accepted: 'dot', 'matplotlib', None")
    return path


# ----- the matplotlib fallback -----------------------------------------------------------------
_CHAR_W, _LINE_H, _PAD_W, _PAD_H = 0.082, 0.19, 0.3, 0.16   # inches, at font size 10
_LABEL_CHAR_W = 0.068                                        # at the edge labels' font size 8.5
_GAP, _LAYER_H = 0.35, 1.05


def _box(label: str) -> tuple[float, float]:
    lines = label.split("\n")
    return max(len(s) for s in lines) * _CHAR_W + _PAD_W, len(lines) * _LINE_H + _PAD_H


def _layout(gnodes: list[GraphNode], edges: list[GraphEdge]) -> tuple[dict[str, tuple[float, int]], list[list[str]]]:
    """Layered layout: (x in inches, layer) of every node and of the waypoints of long
    edges, and per edge the ids of its waypoints (one per layer it crosses).

    Ops sit one layer below their deepest input (longest path from the leaves), then move
    down as far as their consumers allow; leaves sit one layer above their first consumer.
    An edge that skips layers gets a waypoint in each, so it is routed between the boxes
    instead of through them (as dot does).
    Three down-and-up barycentre sweeps order each layer to keep edges short."""
    layer: dict[str, int] = {}
    inputs: dict[str, list[str]] = {n.id: [] for n in gnodes}
    consumers: dict[str, list[str]] = {n.id: [] for n in gnodes}
    for e in edges:
        inputs[e.target].append(e.source)
        consumers[e.source].append(e.target)
    for n in gnodes:   # tape nodes come in execution order, so their inputs are placed first
        if n.id.startswith("n"):
            layer[n.id] = 1 + max((layer.get(p, 0) for p in inputs[n.id]), default=0)
    for n in reversed(gnodes):   # then as late as their consumers allow: x_t's projection sits by step t
        if n.id.startswith("n") and consumers[n.id]:
            layer[n.id] = min(layer[c] for c in consumers[n.id]) - 1
    for n in gnodes:
        if not n.id.startswith("n"):
            layer[n.id] = min((layer[c] for c in consumers[n.id]), default=1) - 1
    width = {n.id: _box(n.label)[0] for n in gnodes}
    preds: dict[str, list[str]] = {n.id: [] for n in gnodes}
    succs: dict[str, list[str]] = {n.id: [] for n in gnodes}
    waypoints = []
    for k, e in enumerate(edges):
        ids = []
        for row in range(layer[e.source] + 1, layer[e.target]):
            point = f"_w{k}_{row}"
            layer[point] = row
            # the first waypoint carries the edge's label on its right: keep room for it
            width[point] = 0.2 + (2 * (len(e.label) * _LABEL_CHAR_W + 0.1) if e.label and not ids else 0)
            preds[point], succs[point] = [], []
            ids.append(point)
        chain = [e.source, *ids, e.target]
        for a, b in zip(chain, chain[1:]):
            preds[b].append(a)
            succs[a].append(b)
        waypoints.append(ids)
    rows: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for i in layer:
        rows[layer[i]].append(i)
    x: dict[str, float] = {}
    for row in rows:
        _pack(row, {i: 0.0 for i in row}, width, x)

    def sweep(order: range, neighbours: dict[str, list[str]]) -> None:
        for r in order:
            row = rows[r]
            want = {i: float(np.mean([x[j] for j in neighbours[i]])) if neighbours[i] else x[i] for i in row}
            row.sort(key=lambda i: want[i])
            _pack(row, want, width, x)

    for _ in range(3):
        sweep(range(1, len(rows)), preds)
        sweep(range(len(rows) - 2, -1, -1), succs)
    return {i: (x[i], layer[i]) for i in x}, waypoints


def _pack(row: list[str], want: dict[str, float], width: dict[str, float], x: dict[str, float]) -> None:
    """Place the row's boxes in order without overlap, as close to `want` as a common shift allows."""
    pos, right = [], -np.inf
    for i in row:
        p = max(want[i], right + width[i] / 2 + _GAP)
        pos.append(p)
        right = p + width[i] / 2
    shift = float(np.mean([want[i] - p for i, p in zip(row, pos)])) if row else 0.0
    for i, p in zip(row, pos):
        x[i] = p + shift


def _edge_geometry(edges: list[GraphEdge], waypoints: list[list[str]], centre: dict, size: dict) -> list:
    """Per edge: ("path", vertices) for a long edge through its waypoints, or ("arc", start,
    end, rad) for a direct one; and the label placement (x, y, side) or None."""
    pairs: dict[tuple[str, str], int] = {}
    for e in edges:
        pairs[e.source, e.target] = pairs.get((e.source, e.target), 0) + 1
    seen: dict[tuple[str, str], int] = {}
    shapes = []
    for e, ids in zip(edges, waypoints):
        (x0, y0), (x1, y1) = centre[e.source], centre[e.target]
        start, end = (x0, y0 - size[e.source][1] / 2), (x1, y1 + size[e.target][1] / 2)
        if ids:   # a smooth curve through the waypoints, vertical at each; label right of the first
            points = [start, *(centre[i] for i in ids), end]
            vertices = [points[0]]
            for (ax_, ay), (bx, by) in zip(points, points[1:]):
                pull = (ay - by) * 0.45
                vertices += [(ax_, ay - pull), (bx, by + pull), (bx, by)]
            place = (*centre[ids[0]], +1) if e.label else None
            shapes.append((("path", vertices), place))
            continue
        key = (e.source, e.target)
        n_parallel, k = pairs[key], seen.get(key, 0)
        seen[key] = k + 1
        rad = 0.0 if n_parallel == 1 else 0.35 * (2 * k / (n_parallel - 1) - 1)
        place = None
        if e.label:
            # 45% of the way down arc3's quadratic Bezier, on the arrow's outer side: arrows
            # that meet at one box spread apart towards their sources
            dx, dy = end[0] - start[0], end[1] - start[1]
            u = 0.45
            qx, qy = (start[0] + end[0]) / 2 + rad * dy, (start[1] + end[1]) / 2 - rad * dx
            px = (1 - u) ** 2 * start[0] + 2 * u * (1 - u) * qx + u ** 2 * end[0]
            py = (1 - u) ** 2 * start[1] + 2 * u * (1 - u) * qy + u ** 2 * end[1]
            place = (px, py, -1 if dx > 0.05 or rad > 0 else 1)
        shapes.append((("arc", start, end, rad), place))
    return shapes


@dataclass
class Frame:
    """One picture of an animated backward (animate.py): which nodes have sent their
    gradient on (lit), which one is sending it now (current), which edges carry a gradient
    already (by index into the edge list; only these show their label) and a caption."""
    lit: set
    current: str | None
    arrived: set
    caption: str


_LIT, _CURRENT, _ARRIVED = "#ffe36e", "#d62728", "#c0392b"


def _figure(gnodes: list[GraphNode], edges: list[GraphEdge], grad_labels: bool, frame: Frame | None = None,
            caption_chars: int = 0) -> Any:
    """The matplotlib drawing of the graph as a bare Figure (no pyplot state). With a
    frame, unlit parts are drawn faded and only arrived edges carry their labels; the
    frames of one graph have the same size and layout when they pass the same
    caption_chars (the longest caption line of them all: the figure is made that wide)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch, Polygon
        from matplotlib.path import Path as CurvePath
    except ImportError as error:
        raise ImportError("render without the Graphviz `dot` program needs matplotlib: pip install "
                          "matplotlib (the plot extra: pip install 'tinygrad_vg[plot]')") from error
    place, waypoints = _layout(gnodes, edges)
    size = {n.id: _box(n.label) for n in gnodes}
    layers = max(layer for _, layer in place.values()) + 1
    bottom = 0.8 if frame is not None else 0.45 if grad_labels else 0.15
    height = layers * _LAYER_H + bottom
    centre = {i: (x, height - 0.55 - layer * _LAYER_H) for i, (x, layer) in place.items()}
    shapes = _edge_geometry(edges, waypoints, centre, size)

    # the drawing's extent: boxes (leaves are drawn 1.2 times wider), and labels beside edges
    half = {n.id: size[n.id][0] * (0.6 if n.kind == "leaf" else 0.5) for n in gnodes}
    left = min(centre[i][0] - half[i] for i in half) - 0.25
    right = max(centre[i][0] + half[i] for i in half) + 0.25
    for e, (_, label_at) in zip(edges, shapes):
        if label_at is not None:
            x, _, side = label_at
            reach = x + side * (0.06 + len(e.label) * _LABEL_CHAR_W + 0.15)
            left, right = min(left, reach), max(right, reach)
    if grad_labels:   # room for the note (or the frame's caption) under the graph
        longest = max([len(GRAD_NOTE), caption_chars] + [len(s) for s in (frame.caption.split("\n") if frame else [])])
        spare = longest * _CHAR_W * 0.95 - (right - left)
        if spare > 0:
            left, right = left - spare / 2, right + spare / 2

    fig = Figure(figsize=(right - left, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, right)
    ax.set_ylim(0, height)
    ax.axis("off")

    for n in gnodes:   # boxes
        (cx, cy), (w, h), style = centre[n.id], size[n.id], STYLES[n.kind]
        face, line, width, alpha = style.get("fillcolor"), style.get("color"), 1.0, 1.0
        if frame is not None:   # lit: has its gradient; current: sending it on now; else faded
            if n.id in frame.lit:
                face = _LIT
            else:
                alpha = 0.45
            if n.id == frame.current:
                line, width, alpha = _CURRENT, 3.0, 1.0
        if n.kind == "leaf":
            ax.add_patch(Ellipse((cx, cy), w * 1.2, h * 1.25, facecolor=face, edgecolor=line,
                                 linewidth=width, zorder=2, alpha=alpha))
        elif n.kind == "root":   # an octagon, as dot's doubleoctagon
            c, x0, x1, y0, y1 = min(h / 3, 0.14), cx - w / 2 - 0.05, cx + w / 2 + 0.05, cy - h / 2, cy + h / 2
            corners = [(x0 + c, y0), (x1 - c, y0), (x1, y0 + c), (x1, y1 - c), (x1 - c, y1), (x0 + c, y1),
                       (x0, y1 - c), (x0, y0 + c)]
            ax.add_patch(Polygon(corners, closed=True, facecolor=face, edgecolor=line,
                                 linewidth=max(width, 2.2), zorder=2, alpha=alpha))
        elif n.kind != "constant":
            box_style = "square,pad=0" if n.kind == "parameter" else "round,pad=0,rounding_size=0.08"
            ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, boxstyle=box_style,
                                        facecolor=face, edgecolor=line, linewidth=width, zorder=2, alpha=alpha))
        ax.text(cx, cy, n.label, ha="center", va="center", fontsize=10, linespacing=1.25,
                color=style.get("fontcolor", "black"), zorder=3, alpha=max(alpha, 0.6))

    arrow = {"arrowstyle": "-|>", "mutation_scale": 11, "color": "#444444", "linewidth": 1.0,
             "shrinkA": 1, "shrinkB": 1, "zorder": 1}
    for k, (e, (shape, label_at)) in enumerate(zip(edges, shapes)):   # arrows, and the gradient labels beside them
        style = arrow
        if frame is not None:
            arrived = k in frame.arrived
            style = {**arrow, "color": _ARRIVED if arrived else "#9a9a9a", "linewidth": 2.0 if arrived else 1.0}
            if not arrived:
                label_at = None
        if shape[0] == "path":
            codes = [CurvePath.MOVETO] + [CurvePath.CURVE4] * (len(shape[1]) - 1)
            ax.add_patch(FancyArrowPatch(path=CurvePath(shape[1], codes), **style))
        else:
            _, start, end, rad = shape
            ax.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={rad}", **style))
        if label_at is not None:
            x, y, side = label_at
            ax.text(x + side * 0.06, y, e.label, ha="right" if side < 0 else "left", va="center",
                    fontsize=8.5, color="#a0262e", zorder=4,
                    bbox={"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    if frame is not None:
        ax.text((left + right) / 2, 0.4, frame.caption, ha="center", va="center", fontsize=9.5, color="#222222",
                linespacing=1.3)
    elif grad_labels:
        ax.text((left + right) / 2, 0.2, GRAD_NOTE, ha="center", va="center", fontsize=9, color="#444444")
    return fig
