"""The tape explorer: list the recorded nodes, and replay backward one node at a time.

    import tinygrad_vg as tg
    x = tg.Tensor([0.5, -1.0], requires_grad=True, name="x")
    w = tg.Tensor([2.0, 0.25], requires_grad=True, name="w")
    loss = (x * w).tanh().sum()
    tg.print_tape(loss)                 # index, op, inputs, output shape, saved arrays
    lines = tg.explain_backward(loss)   # per node: grad_out, local rule, gradient to each input

How a tensor is called in the listings: its `.name` if it has one; otherwise `#k`
for the output of tape node k, and for leaves `leafN` (requires grad), `paramN` (an
nn.Parameter) or `const` (needs no gradient; a one-element constant shows its value).
`name_parameters(module)` names a module's parameters by their dotted paths.

Design:
- `backward_steps` reads the engine's own walk (autograd.walk, which autograd.backward
  reads too) with hooks off and nothing freed: the same reverse sequence order, the
  same checks and reduction over broadcast axes, but it keeps every node's grad_out and
  per-input gradient, runs no hooks, and adds nothing to any `.grad`. So explaining (or
  drawing, see graph.py) never changes what a later `loss.backward()` computes, and it
  works before backward or after `backward(retain_graph=True)`; a freed graph raises
  the engine's own error.
- The local derivative rule is read from the op class's docstring, whose convention
  is `y = ...;  grad_x = ...`: the printed rule is the docstring's math, so a user's
  own `Function` subclass explains itself when it follows that convention.
- A checkpoint node (tinygrad_vg.checkpoint) has no backward of its own: the walk reruns
  its function to record the interior, and the replay shows the node as one step whose
  gradients are what the interior sends to its inputs. That rerun repeats the
  function's side effects (BatchNorm statistics).
- The engine keeps no reference from a node to its output tensor, nor to its data. The
  output's shape and name are taken from the edges its consumers keep (or the root itself).
"""
from __future__ import annotations

import inspect
import re
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .autograd import Function, tape, walk
from .display import Explanation, TapeListing
from .tensor import Tensor

__all__ = ["tape_listing", "print_tape", "explain_backward", "backward_steps", "Step",
           "derivative_rule", "forward_rule", "name_parameters", "show"]

SMALL = 6   # tensors with at most this many elements are printed in full, larger ones as a norm


# ----- docstring math ----------------------------------------------------------------------
_RULE = re.compile(r"grad_\w+\s*=")


def _first_paragraph(op: Any) -> str:
    """The docstring's first paragraph, spaces collapsed within each line, line breaks kept."""
    doc = inspect.cleandoc((op if isinstance(op, type) else type(op)).__doc__ or "")
    return "\n".join(" ".join(line.split()) for line in doc.split("\n\n")[0].splitlines())


def derivative_rule(op: Function | type) -> str:
    """The local derivative rule of an op from its docstring: the text from the first
    `grad_... =` to the end of the sentence, e.g. 'grad_x = grad_out * (1 - y^2)' for Tanh.
    A rule written over several lines keeps its line breaks."""
    text = _first_paragraph(op)
    match = _RULE.search(text)
    if match is None:
        first = text.split("\n")[0]
        if ";" in first:   # 'y = ...;  backward: ...' without a grad_ formula
            return first.split(";", 1)[1].strip()
        name = op.__name__ if isinstance(op, type) else type(op).__name__
        return f"(no 'grad_x = ...' rule in the docstring of {name})"
    rule = text[match.start():]
    end = re.search(r"\.(\s|$)", rule)
    return (rule[:end.start()] if end else rule).rstrip(" ;")


def forward_rule(op: Function | type) -> str:
    """The forward math of an op from its docstring (the part before ';'), or '' if the
    docstring does not start with 'y = ...'."""
    text = _first_paragraph(op)
    match = _RULE.search(text)
    head = " ".join((text[:match.start()] if match else text.split("\n")[0]).split())
    head = head.split(";")[0].strip() if ";" in head else head.strip()
    return head if head.startswith("y") and "=" in head else ""


# ----- naming ------------------------------------------------------------------------------
def name_parameters(module: Any, prefix: str = "", overwrite: bool = False) -> Any:
    """Give each parameter of a module (anything with named_parameters()) its dotted
    name, e.g. 'blocks.0.linear.weight', so listings and graphs show it. Returns module."""
    for name, p in module.named_parameters():
        if overwrite or not p.name:
            p.name = f"{prefix}.{name}" if prefix else name
    return module


def _is_parameter(t: Tensor) -> bool:
    # the engine knows nothing of nn: recognise nn.Parameter by its class name
    return any(cls.__name__ == "Parameter" for cls in type(t).__mro__)


def _shape(shape: tuple) -> str:
    return str(tuple(int(n) for n in shape))


def _number(v: Any) -> str:
    return f"{v:.4g}"


def show(array: Any, small: int = SMALL) -> str:
    """The numbers of a small array (4 significant digits), or the norm of a large one."""
    a = np.asarray(array)
    if a.size > small:
        return f"norm {_number(float(np.linalg.norm(a.astype(np.float64))))} over {a.size} values"
    if a.ndim == 0:
        return _number(a.item())
    text = np.array2string(a, separator=", ", max_line_width=10_000,
                           formatter={"float_kind": _number, "int_kind": str})
    return " ".join(text.split())   # one line, also for 2-D arrays


class _Names:
    """How tensors and nodes are called in a listing (see the module docstring)."""

    def __init__(self, nodes: list[Function], root: Tensor) -> None:
        self.index = {id(node): k for k, node in enumerate(nodes)}
        self.outputs: dict[int, Tensor] = {}   # node id -> a tensor it produced
        self.leaves: dict[int, str] = {}
        counts = {"leaf": 0, "param": 0}
        for node in nodes:
            for t in node.inputs:
                if t.node is not None:
                    key = id(t.node)
                    if key not in self.outputs or (t.name and not self.outputs[key].name):
                        self.outputs[key] = t
                elif id(t) not in self.leaves and t.requires_grad:
                    kind = "param" if _is_parameter(t) else "leaf"
                    self.leaves[id(t)] = f"{kind}{counts[kind]}"
                    counts[kind] += 1
        if root.node is not None:
            self.outputs[id(root.node)] = root

    def tensor(self, t: Tensor) -> str:
        """The tensor's name, '#k', 'leafN' / 'paramN', or 'const' (with its value if it has one element)."""
        if t.name:
            return t.name
        if t.node is not None:
            return f"#{self.index[id(t.node)]}"
        if t.requires_grad:
            return self.leaves.get(id(t)) or ("param" if _is_parameter(t) else "leaf")
        return f"const {show(t.data)}" if t.data.size == 1 else "const"

    def with_shape(self, t: Tensor) -> str:
        label = self.tensor(t)
        if t.node is None and not t.requires_grad and not t.name and t.data.size == 1:
            return label   # 'const 2': the shape adds nothing
        return f"{label} {_shape(t.shape)}"

    def output(self, node: Function) -> Tensor:
        return self.outputs[id(node)]


# ----- the listing ---------------------------------------------------------------------------
def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def tape_listing(t: Tensor) -> TapeListing:
    """The nodes recorded to compute t, in execution order: index, op, inputs (name or
    #k with shape), output shape (and name), and the arrays saved for backward.
    A str (display.TapeListing), shown as an HTML table in a notebook."""
    nodes = tape(t)
    if not nodes:
        what = f"{t.name!r} " if t.name else ""
        return TapeListing(f"tape: empty (the tensor {what}of shape {_shape(t.shape)} is a leaf: nothing was recorded)")
    names = _Names(nodes, t)
    rows = [["#", "op", "inputs", "output", "saved for backward"]]
    for k, node in enumerate(nodes):
        out = names.output(node)
        output = _shape(out.shape) + (f" {out.name}" if out.name else "")
        saved = ", ".join(f"{key} {_shape(a.shape)}" for key, a in node.saved_arrays().items()) or "-"
        rows.append([str(k), node.name, ", ".join(names.with_shape(x) for x in node.inputs), output, saved])
    noun = "node" if len(nodes) == 1 else "nodes"
    title = f"tape: {len(nodes)} {noun} in execution order"
    return TapeListing("\n".join([title] + _table(rows)), title, rows)


def print_tape(t: Tensor, file: TextIO | None = None) -> None:
    """Print tape_listing(t)."""
    print(tape_listing(t), file=file if file is not None else sys.stdout)


# ----- replaying backward ----------------------------------------------------------------------
@dataclass
class Step:
    """One node of a replayed backward: what it received and what it passed on."""
    index: int                       # position on the tape (execution order)
    node: Function
    grad_out: np.ndarray             # dL/d(output of this node)
    sources: list[int]               # tape indices of the consumers grad_out came from ([] for the root)
    grads: list[np.ndarray | None] = field(default_factory=list)  # per input, reduced to its shape
    broadcast: list[tuple | None] = field(default_factory=list)   # per input: the shape summed from, if any


def _seed(t: Tensor, grad: Any) -> np.ndarray:
    if grad is None:
        if t.data.size != 1:
            raise RuntimeError(f"a gradient seed is needed for a tensor of shape {_shape(t.shape)}: "
                               "pass grad= of that shape, or reduce first, e.g. loss.sum()")
        return np.ones_like(t.data)
    grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=t.data.dtype)
    if grad.shape != t.data.shape:
        raise ValueError(f"grad must have the tensor's shape {_shape(t.shape)}; got {_shape(grad.shape)}")
    return grad


def backward_steps(t: Tensor, grad: Any = None) -> tuple[list[Step], list[tuple[Tensor, np.ndarray]]]:
    """Replay backward from t without side effects: the steps in the order backward visits
    them (reverse execution order), and the (leaf, gradient) pairs backward would add to
    the leaves' .grad. It reads the engine's own walk (autograd.walk) with hooks off and
    nothing freed: no hook runs, no .grad changes. A checkpoint is one step, whose
    gradients are those its recomputed interior sends to the checkpoint's inputs."""
    if not t.requires_grad:
        raise RuntimeError("explain: this tensor does not require grad (no input had "
                           "requires_grad=True, or it was computed under no_grad)")
    seed = _seed(t, grad)
    if t.node is None:
        return [], [(t, seed)]
    nodes = tape(t)   # raises the engine's retain_graph error on a freed graph
    index = {id(node): k for k, node in enumerate(nodes)}
    sources: dict[int, list[int]] = {id(t.node): []}
    leaves: dict[int, list] = {}
    steps: list[Step] = []
    checkpoint = None   # the step of the checkpoint whose interior the walk is in
    for node, grad_out, input_grads in walk(list(nodes), {t.node: np.array(seed)}, leaves, hooks=False):
        if id(node) in index:
            step = Step(index[id(node)], node, grad_out, sources.pop(id(node), []))
            steps.append(step)
            if node.expand is not None:
                checkpoint = step
                step.grads, step.broadcast = [None] * len(node.inputs), [None] * len(node.inputs)
                continue
            reduced = getattr(node, "reduced_from", {})   # input -> the broadcast shape summed from
            step.grads = list(input_grads)
            step.broadcast = [None if g is None else reduced.get(i) for i, g in enumerate(input_grads)]
        else:   # a node of a checkpoint's recomputed interior
            step = checkpoint
        for x, g in zip(node.inputs, input_grads):
            if g is None:
                continue
            if x.node is not None and id(x.node) in index:
                sources.setdefault(id(x.node), []).append(step.index)
            if step is checkpoint and step is not None and id(node) not in index:
                for j, y in enumerate(step.node.inputs):
                    if y is x or (x.node is not None and y.node is x.node):
                        step.grads[j] = g if step.grads[j] is None else step.grads[j] + g
                        break
    return steps, [(x, g) for x, g in leaves.values()]


def explain_backward(loss: Tensor, file: TextIO | None = None, grad: Any = None,
                     small: int = SMALL, echo: bool = True) -> Explanation:
    """Replay backward from `loss` and print it node by node, last node first: the upstream
    gradient grad_out, the op's local derivative rule (from its docstring) and the gradient
    passed to each input; numbers for tensors of at most `small` elements, norms otherwise.

    Read-only: no leaf's .grad changes, no hook runs (so a hook that rewrites a gradient,
    e.g. clipping, is not reflected), and the graph stays usable: call it before backward,
    or after backward(retain_graph=True). Returns the printed lines (a list, display.Explanation,
    that a notebook shows as coloured HTML); echo=False returns them without printing, for a
    notebook cell that ends with the call.
    """
    steps, leaves = backward_steps(loss, grad)
    nodes = tape(loss)
    names = _Names(nodes, loss)
    if loss.node is None:
        root = names.with_shape(loss)
    else:
        root = f"#{len(nodes) - 1} {loss.node.name} {_shape(loss.shape)}" + (f" {loss.name}" if loss.name else "")
    lines = [f"backward from {root}, seeded with dL/dL = {show(_seed(loss, grad), small)}"]
    for step in steps:
        node = step.node
        math, out = forward_rule(node), names.output(node)
        lines.append(f"#{step.index} {node.name}" + (f" -> {out.name}" if out.name else "")
                     + (f":  {math}" if math else ""))
        came = " + ".join(f"#{k}" for k in step.sources)
        lines.append(f"    grad_out  = {show(step.grad_out, small)}" + (f"   (from {came})" if came else ""))
        rule = derivative_rule(node).split("\n")
        lines.append(f"    rule      : {rule[0]}")
        lines.extend(f"                {more}" for more in rule[1:])
        for x, g, full in zip(node.inputs, step.grads, step.broadcast):
            target = names.with_shape(x)
            if g is None:
                lines.append(f"    -> {target}: no gradient (it does not require grad)")
                continue
            note = f"   (summed over the broadcast axes of {_shape(full)})" if full is not None else ""
            lines.append(f"    -> {target}: {show(g, small)}{note}")
    if leaves:
        lines.append("leaf gradients (what backward adds to .grad; explain_backward changed nothing):")
        rows = [[names.with_shape(x), show(g, small)] for x, g in leaves]
        lines.extend("    " + line for line in _table(rows))
    if echo:
        print("\n".join(lines), file=file if file is not None else sys.stdout)
    return Explanation(lines)
