"""The tutorials as notebooks (docs/notebooks/, built from docs/*.md by docs/notebooks/build.py):
they are up to date with their Markdown, and each runs in a real Jupyter kernel (nbclient)
with the checks tests/test_docs.py makes on the Markdown: every assert holds (a failing
cell fails the run) and every cell that has a ```text output block prints exactly that.

Also here, because it needs a kernel: the lab's progress bar shows in a notebook.

Notebook execution is slow (a kernel per notebook), so it runs once per `make test`: under
the compiled kernels only. The numpy-kernel run skips it (the Markdown pages themselves run
under both backends, in test_docs.py).
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

import tinygrad_vg.kernels as kernels

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("notebook_build", ROOT / "docs" / "notebooks" / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)

PAGES = build.tutorials()
once = pytest.mark.skipif(kernels.BACKEND != "compiled",
                          reason="notebooks run in a kernel once per suite run: under the compiled kernels")


def _run(notebook: dict, cwd: Path, timeout: int = 600) -> dict:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.from_dict(notebook)
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _stdout(cell: dict) -> str:
    return "".join(o.get("text", "") for o in cell["outputs"] if o["output_type"] == "stream" and o["name"] == "stdout")


def test_every_tutorial_has_its_notebook_and_it_is_up_to_date():
    pytest.importorskip("jupytext")
    assert {p.name for p in PAGES} >= {"backprop-by-hand.md", "residual-gradients.md", "internals.md"}
    stale = [p.name for p in PAGES if not build.target(p).exists() or build.target(p).read_text() != build.notebook_text(p)]
    assert not stale, f"notebooks out of date with their Markdown (run `make notebooks`): {stale}"
    extra = {p.stem for p in (ROOT / "docs" / "notebooks").glob("*.ipynb")} - {p.stem for p in PAGES}
    assert not extra, f"notebooks without a Markdown page: {extra}"


def test_the_conversion_keeps_output_blocks_as_checks_and_shows_no_run_blocks():
    pytest.importorskip("jupytext")
    page = ROOT / "docs" / "backprop-by-hand.md"
    notebook = build.convert(page)
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    text = "\n".join(c["source"] for c in notebook["cells"] if c["cell_type"] == "markdown")
    assert "```text output" not in text and "](../img/graph_example.png)" not in text
    assert "](../img/backward_frame.png)" in text   # links point one folder up
    assert "[residual-gradients.md](residual-gradients.ipynb)" in text   # or to the other notebooks
    checked = [c for c in code if "expected_output" in c["metadata"]]
    assert any("tape: 7 nodes in execution order" in c["metadata"]["expected_output"] for c in checked)
    readme = build.convert(ROOT / "docs" / "README.md")   # only a python no-run block: shown, not run
    assert not [c for c in readme["cells"] if c["cell_type"] == "code"]
    assert "tg.print_tape(loss)" in "".join(c["source"] for c in readme["cells"])


@once
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_notebook_runs_in_a_kernel(page, tmp_path):
    pytest.importorskip("hypothesis")
    notebook = json.loads(build.target(page).read_text())
    nb = _run(notebook, tmp_path)   # a cell that raises (a failed assert) fails here, naming the cell
    wrong = []
    for cell in nb.cells:
        want = cell.metadata.get("expected_output")
        if want is None:
            continue
        got = [line.rstrip() for line in _stdout(cell).rstrip("\n").splitlines()]
        if got != [line.rstrip() for line in want.rstrip("\n").splitlines()]:
            wrong.append(f"cell {cell.id}:\n{cell.source}\nprinted\n" + "\n".join(got) + "\nbut the page shows\n" + want)
    assert not wrong, "\n\n".join(wrong)
    if page.name == "backprop-by-hand.md":   # the rich displays: the graph as SVG, the slider as a widget
        kinds = {kind for cell in nb.cells for o in cell.get("outputs", []) for kind in o.get("data", {})}
        assert "image/svg+xml" in kinds
        assert "application/vnd.jupyter.widget-view+json" in kinds or importlib.util.find_spec("ipywidgets") is None


def test_a_failing_assert_fails_the_notebook_run(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    notebook = {"cells": [{"cell_type": "code", "id": "a", "metadata": {}, "execution_count": None, "outputs": [],
                           "source": "assert 0.99 ** 100 > 0.5, 'the 0.99^n table'"}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="the 0.99"):
        _run(notebook, tmp_path)


@once
def test_the_lab_progress_bar_shows_in_a_notebook(tmp_path):
    """A lab run in a kernel draws tqdm's bar (a widget with ipywidgets, else text on stderr)
    with the time left; in a plain subprocess without a terminal it would be silent."""
    pytest.importorskip("tqdm")
    # drawn at once (DELAY 0: a run that takes a second on a slow machine may take less on a fast one)
    source = ("import tinygrad_vg as tg, tinygrad_vg.lab.progress as progress\n"
              "progress.DELAY = 0\n"
              "data = tg.lab.run_experiment('learning-speed', progress=True, steps=200, kinds=['plain'])\n"
              "print(len(data['runs']))")
    notebook = {"cells": [{"cell_type": "code", "id": "run", "metadata": {}, "execution_count": None, "outputs": [],
                           "source": source}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    nb = _run(notebook, tmp_path)
    outputs = nb.cells[0].outputs
    assert _stdout(nb.cells[0]).strip() == "1"
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    time_left = re.compile(r"\[\d\d:\d\d(<|&lt;)\d\d:\d\d")   # [elapsed<left
    if widgets:   # tqdm.notebook: the bar's final text is in the saved widget state
        assert widgets[0]["data"]["text/plain"].startswith("learning-speed:")
        state = json.dumps(nb.metadata.get("widgets", {}))
        assert "learning-speed" in state and "200/200" in state and time_left.search(state), state[:2000]
    else:
        text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
        assert "learning-speed" in text and "200/200" in text and time_left.search(text), text
