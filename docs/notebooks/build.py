"""Build docs/notebooks/*.ipynb from the tutorials in docs/*.md: one source, the tested
Markdown; the notebooks are generated (`make notebooks`, or `python docs/notebooks/build.py`)
and shipped, and tests/test_notebooks.py checks that they are up to date and runs them in
a Jupyter kernel.

What the conversion does (jupytext reads the Markdown):
- each ```python block becomes a code cell; the prose between them, markdown cells;
- a ```text output block (the exact output of the python block before it, checked by
  tests/test_docs.py) is dropped from the page, since the notebook shows the real output
  under the cell, and kept in that cell's metadata as `expected_output`, which the
  notebook test compares with what the kernel printed;
- ```python no-run blocks and every other fenced block (sh, text) stay Markdown, shown
  and never run (jupytext would otherwise make a %%sh cell of a sh block);
- relative links get one more ../, since the notebooks live one folder down, except links
  to another tutorial, which go to its notebook.
The cells get fixed ids, so a rebuild of an unchanged page writes the same bytes.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
OUT = DOCS / "notebooks"
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def tutorials() -> list[Path]:
    """The pages tests/test_docs.py runs: every docs/*.md with a python block."""
    return sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())


def _relink(text: str) -> str:
    """Links as seen from docs/notebooks/: a tutorial page links to its notebook, anything
    else one folder up."""
    pages = {p.name for p in tutorials()}

    def fix(m: re.Match) -> str:
        target = m[2]
        if re.match(r"[a-z]+:", target) or target.startswith(("#", "/")):
            return m[0]
        file, _, anchor = target.partition("#")
        if file in pages:
            return f"{m[1]}{file[:-3]}.ipynb{'#' + anchor if anchor else ''}{m[3]}"
        return f"{m[1]}../{target}{m[3]}"
    return LINK.sub(fix, text)


def convert(path: Path) -> dict:
    """The notebook (as a JSON-ready dict) of one Markdown page."""
    import jupytext

    text = path.read_text()
    pieces, expected, last = [], [], 0
    for m in FENCE.finditer(text):
        lang, options = m[1], set(m[2].split())
        prose = _relink(text[last:m.start()])
        last = m.end()
        if lang == "python" and "no-run" not in options:
            pieces.append(prose + m[0])
            expected.append(None)
        elif lang == "text" and "output" in options:
            expected[-1] = m[3]
            pieces.append(prose.rstrip("\n") + "\n")
        else:   # shown, not run: a markdown region keeps jupytext from making a cell of it
            fence = m[0].replace("```python no-run", "```python", 1)
            pieces.append(prose + "<!-- #region -->\n" + fence + "\n<!-- #endregion -->")
    pieces.append(_relink(text[last:]))
    name = path.relative_to(DOCS.parent).as_posix()
    header = (f"*Generated from [{path.name}](../{path.name}) by `make notebooks`: edit the Markdown page, "
              "not this notebook. Run the cells in order.*\n\n")
    notebook = jupytext.reads(header + "".join(pieces), fmt="md")
    code = [c for c in notebook.cells if c.cell_type == "code"]
    if len(code) != len(expected):
        raise RuntimeError(f"{name}: {len(code)} code cells but {len(expected)} python blocks to run")
    cells = []
    for k, cell in enumerate(notebook.cells):
        source = cell.source.strip("\n")
        if not source:
            continue
        item = {"cell_type": cell.cell_type, "id": f"cell-{k}", "metadata": {}, "source": source}
        if cell.cell_type == "code":
            want = expected[code.index(cell)]
            if want is not None:
                item["metadata"]["expected_output"] = want
            item.update(execution_count=None, outputs=[])
        cells.append(item)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "tinygrad_vg": {"source": name, "built_by": "make notebooks (docs/notebooks/build.py)"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def notebook_text(path: Path) -> str:
    return json.dumps(convert(path), indent=1, ensure_ascii=False) + "\n"


def target(path: Path) -> Path:
    return OUT / (path.stem + ".ipynb")


def main(argv: list[str]) -> int:
    pages = [Path(a).resolve() for a in argv] or tutorials()
    for page in pages:
        out = target(page)
        text = notebook_text(page)
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
            print("wrote", out.relative_to(DOCS.parent))
        else:
            print("up to date", out.relative_to(DOCS.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
