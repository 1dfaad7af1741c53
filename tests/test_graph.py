"""tinygrad_vg/graph.py: DOT text and rendered pictures (with and without Graphviz)."""
import re
import shutil
import subprocess

import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import graph

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_graph():
    """loss = sum(tanh(x * w) * scale): a leaf, a parameter, a constant, ops and the root."""
    x = tg.Tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    w = tg.nn.Parameter(np.array([2.0, 0.25, -0.5]), name="w")
    loss = ((x * w).tanh() * 3.0).sum()
    loss.name = "loss"
    return x, w, loss


def parse_dot(text):
    """A small structural parser: returns ({node id: attribute text}, [(source, target, attribute text)]).
    Checks that braces balance outside quoted strings and that every statement ends with ';'."""
    unquoted = re.sub(r'"(\\.|[^"\\])*"', '""', text)   # quoted strings may hold anything
    depth = 0
    for ch in unquoted:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a '}' closes nothing"
    assert depth == 0, "unbalanced braces"
    body = unquoted.strip()
    assert body.startswith("digraph tape {") and body.endswith("}")
    nodes, edges = {}, []
    for line in body.splitlines()[1:-1]:
        line = line.strip()
        assert line.endswith(";"), line
        if m := re.fullmatch(r"(\w+) -> (\w+)( \[.*\])?;", line):
            edges.append((m[1], m[2], m[3] or ""))
        elif m := re.fullmatch(r"(\w+) (\[.*\]);", line):
            if m[1] not in ("graph", "node", "edge"):
                nodes[m[1]] = m[2]
        else:
            raise AssertionError(f"not a DOT statement: {line}")
    for source, target, _ in edges:
        assert source in nodes and target in nodes, f"edge {source} -> {target} to an undeclared node"
    return nodes, edges


def attributes(text: str, node_or_edge: str) -> dict:
    """The attributes of one declared node or edge line in the DOT text."""
    line = next(l for l in text.splitlines() if l.strip().startswith(node_or_edge + " ")
                or l.strip().startswith(node_or_edge + ";"))
    return dict(re.findall(r'(\w+)="((?:\\.|[^"\\])*)"', line))


# ----- DOT -----------------------------------------------------------------------------------
def test_dot_declares_every_node_and_edge_and_styles_each_kind_differently():
    _, _, loss = small_graph()
    text = tg.to_dot(loss)
    nodes, edges = parse_dot(text)
    kinds = {i: attributes(text, i)["class"] for i in nodes}
    assert sorted(kinds.values()) == ["constant", "leaf", "op", "op", "op", "parameter", "root"]
    labels = {attributes(text, i)["label"] for i in nodes}
    assert {"x\\n(3,)", "w\\n(3,)", "const 3", "#0 Mul\\n(3,)", "#1 Tanh\\n(3,)", "#3 Sum\\nloss ()"} <= labels
    looks = {kinds[i]: (attributes(text, i).get("shape"), attributes(text, i).get("fillcolor")) for i in nodes}
    assert len({looks[k] for k in ("leaf", "parameter", "constant", "op", "root")}) == 5
    assert len(edges) == 6 and all(attrs == "" for _, _, attrs in edges)   # no labels without grad_labels
    kind_of = {i: kinds[i] for i in nodes}
    assert sorted((kind_of[s], kind_of[t]) for s, t, _ in edges) == sorted([
        ("leaf", "op"), ("parameter", "op"), ("op", "op"), ("op", "op"), ("constant", "op"), ("op", "root")])


def test_dot_grad_labels_are_the_gradient_norms_backward_sends_along_each_edge():
    x, w, loss = small_graph()
    loss.backward(retain_graph=True)
    grads = {"x": x.grad.copy(), "w": w.grad.copy()}
    text = tg.to_dot(loss, grad_labels=True)
    nodes, edges = parse_dot(text)
    np.testing.assert_array_equal(x.grad, grads["x"])   # drawing changed no .grad
    label_of = {attributes(text, i)["label"].split("\\n")[0]: i for i in nodes}
    edge_label = {(s, t): attributes(text, f"{s} -> {t}").get("label", "") for s, t, _ in edges}
    for name in ("x", "w"):
        assert edge_label[label_of[name], label_of["#0 Mul"]] == f" |g| {np.linalg.norm(grads[name]):.3g}"
    assert edge_label[label_of["const 3"], label_of["#2 Mul"]] == ""   # constants get no gradient
    assert edge_label[label_of["#2 Mul"], label_of["#3 Sum"]] == f" |g| {np.sqrt(3):.3g}"
    assert graph.GRAD_NOTE in text


def test_dot_draws_one_edge_per_use_and_quotes_labels():
    x = tg.Tensor([1.0, 2.0], requires_grad=True, name='x "in" \\ out')
    loss = (x * x).sum()
    text = tg.to_dot(loss, grad_labels=True)
    nodes, edges = parse_dot(text)
    assert [(s, t) for s, t, _ in edges].count(("l0", "n0")) == 2
    assert attributes(text, "l0")["label"] == 'x \\"in\\" \\\\ out\\n(2,)'
    assert text.count(f"|g| {np.linalg.norm([1.0, 2.0]):.3g}") == 2   # each use gets d(x*x)/dx = x


def test_dot_of_a_leaf_and_of_a_non_scalar_root():
    nodes, edges = parse_dot(tg.to_dot(tg.Tensor([1.0], requires_grad=True, name="x")))
    assert list(nodes) == ["l0"] and edges == []
    x = tg.Tensor([1.0, -1.0], requires_grad=True, name="x")
    h = x.tanh()
    default = tg.to_dot(h, grad_labels=True)   # seeded with ones
    assert f"|g| {np.linalg.norm(1 - np.tanh([1.0, -1.0]) ** 2):.3g}" in default
    seeded = tg.to_dot(h, grad_labels=True, grad=np.array([2.0, 0.0]))
    assert f"|g| {2 * (1 - np.tanh(1.0) ** 2):.3g}" in seeded


def test_dot_text_is_accepted_by_graphviz_when_installed():
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz `dot` is not installed (the DOT text is checked by parse_dot above)")
    _, _, loss = small_graph()
    done = subprocess.run([dot, "-Tcanon"], input=tg.to_dot(loss, grad_labels=True), text=True,
                          capture_output=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr


# ----- rendering -----------------------------------------------------------------------------
def test_render_without_dot_draws_with_matplotlib(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    x, _, loss = small_graph()
    path = tg.render(loss, tmp_path / "graph.png", grad_labels=True)
    assert path == tmp_path / "graph.png" and path.read_bytes()[:8] == PNG_MAGIC
    svg = tg.render(loss, str(tmp_path / "graph.svg"))
    assert "<svg" in svg.read_text()
    assert x.grad is None
    with pytest.raises(RuntimeError, match="not on PATH"):
        tg.render(loss, tmp_path / "forced.png", engine="dot")


def test_render_with_dot_when_installed(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed; the matplotlib path is tested above")
    _, _, loss = small_graph()
    path = tg.render(loss, tmp_path / "graph.png", grad_labels=True)
    assert path.read_bytes()[:8] == PNG_MAGIC
    svg = tg.render(loss, tmp_path / "graph.svg").read_text()
    assert 'class="node parameter"' in svg and 'class="node root"' in svg


def test_matplotlib_layout_routes_long_edges_between_layers_and_keeps_boxes_apart(tmp_path):
    pytest.importorskip("matplotlib")
    x = tg.Tensor([0.5, -1.0], requires_grad=True, name="x")
    h = x.tanh()
    loss = (h * h + h).sum()           # h -> Add skips the Mul's layer
    gnodes, edges = graph.graph_model(loss, grad_labels=True)
    place, waypoints = graph._layout(gnodes, edges)
    long = [ids for e, ids in zip(edges, waypoints) if e.target == "n2" and e.source == "n0"]
    assert len(long) == 1 and len(long[0]) == 1
    rows = {}
    for i, (xpos, layer) in place.items():
        rows.setdefault(layer, []).append(xpos)
    assert place["l0"][1] == 0 and place["n3"][1] == max(rows)   # leaf on top, root at the bottom
    for xs in rows.values():
        xs.sort()
        assert all(b - a > 0.2 for a, b in zip(xs, xs[1:]))
    assert tg.render(loss, tmp_path / "g.png", engine="matplotlib").read_bytes()[:8] == PNG_MAGIC


def test_render_rejects_unknown_file_types_and_engines(tmp_path):
    _, _, loss = small_graph()
    with pytest.raises(ValueError, match="unsupported file type '.jpg'"):
        tg.render(loss, tmp_path / "g.jpg")
    with pytest.raises(ValueError, match="unknown engine"):
        tg.render(loss, tmp_path / "g.png", engine="tikz")
