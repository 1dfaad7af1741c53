"""Imports run one way: engine (tensor, autograd, ops, kernels, ...) <- nn <- lab, teaching
tools, CLI; no cycle between modules; the engine's modules import each other at the top.

Read from the source with ast, so the test sees the imports as written (inside functions
and under `if TYPE_CHECKING:` too), not what happens to be imported at run time.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinygrad_vg"
ENGINE, NN, TOP = 0, 1, 2
TOP_MODULES = {"cli", "__main__", "explain", "graph", "gradcheck", "testing", "display", "animate"}   # besides lab/
# made by the build, imported where the backend is chosen: the extensions, and the install-time
# switch setup.py writes for an install without a compiler
COMPILED = {"tinygrad_vg._build_config"} | {f"tinygrad_vg.kernels.compiled.{family}" for family in
                                            ("elementwise", "linear", "optim", "memory", "recurrent")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")[1:]
    if not parts:
        return TOP   # the package itself re-exports every layer
    if parts[0] == "lab" or parts[0] in TOP_MODULES:
        return TOP
    if parts[0] in ("nn", "optim", "io"):
        return NN
    return ENGINE


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The tinygrad_vg modules an import statement names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("tinygrad_vg")]
    if node.level:
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[:len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("tinygrad_vg"):
        return []
    named = [f"{target}.{a.name}" for a in node.names]
    found = [n for n in named if n in MODULES or n in COMPILED]
    return found if found else [target]


def imports(module: str) -> list[tuple[str, bool, int]]:
    """(imported module, at module level?, line) for each import of a tinygrad_vg module,
    leaving out those under `if TYPE_CHECKING:` (annotations only)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    out = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.extend((m, top, child.lineno) for m in resolve(module, path.name == "__init__.py", child))
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            visit(child, inner)

    visit(tree, True)
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    if module == "tinygrad_vg":
        return
    upward = [(m, line) for m, _, line in imports(module) if m in MODULES and layer(m) > layer(module)]
    assert not upward, f"{module} (layer {layer(module)}) imports a higher layer: {upward}"


def test_the_modules_import_each_other_without_a_cycle():
    graph = {m: sorted({t for t, top, _ in imports(m) if top and t in MODULES and t != m})
             for m in MODULES if m != "tinygrad_vg"}
    state: dict[str, int] = {}
    for start in graph:
        stack = [(start, iter(graph[start]))]
        path = [start]
        state[start] = 1 if start not in state else state[start]
        if state[start] == 2:
            continue
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            if child not in graph or state.get(child) == 2:
                continue
            assert state.get(child) != 1, f"import cycle: {' -> '.join(path[path.index(child):] + [child])}"
            state[child] = 1
            path.append(child)
            stack.append((child, iter(graph[child])))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) == ENGINE))
def test_the_engine_imports_its_own_modules_at_the_top(module):
    tree = ast.parse(MODULES[module].read_text())
    first_code = next((n.lineno for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom, ast.Expr))
                       and not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))), 10**9)
    late = [(m, line) for m, top, line in imports(module)
            if m not in COMPILED and (not top or line > first_code)]
    assert not late, f"{module} imports engine modules inside a function or below its code: {late}"


def test_the_checker_resolves_imports_to_modules_and_layers():
    # the helpers above on made-up modules: an engine module importing nn is flagged
    source = "from .nn import Module\n"
    node = ast.parse(source).body[0]
    assert resolve("tinygrad_vg.autograd", False, node) == ["tinygrad_vg.nn"]
    assert layer("tinygrad_vg.nn") > layer("tinygrad_vg.autograd")
    assert layer("tinygrad_vg.lab.plots") > layer("tinygrad_vg.optim") > layer("tinygrad_vg.ops.shape")
