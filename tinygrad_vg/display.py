"""Rich display in Jupyter: what the teaching tools return shows as HTML or a picture
in a notebook and as the same plain text as before in a terminal.

    tg.tape_listing(loss)                # a str; in a notebook an HTML table
    tg.explain_backward(loss, echo=False)   # a list of lines; in a notebook coloured HTML
    tg.render(loss, grad_labels=True)    # no path: a Picture, shown inline as SVG

Design:
- The results stay what they were (a str, a list of str), so code and tests that read
  them are unchanged; the subclasses here only add `_repr_html_` (IPython's display
  protocol), which a terminal never calls. Nothing here imports IPython: a notebook
  asks for the representation, the object does not look for the notebook.
- A Picture holds finished bytes (SVG text or PNG), made when it is created: the graph
  it shows may be freed by a later backward, the picture stays.
- This module imports nothing from the rest of the package at the top, so explain.py
  and graph.py can use it without a cycle.
"""
from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

__all__ = ["TapeListing", "Explanation", "Picture", "in_notebook", "note_missing"]

_STYLE = "font-family:monospace;font-size:12px;border-collapse:collapse"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), where rich output is shown."""
    if "IPython" not in sys.modules:
        return False
    try:
        shell = sys.modules["IPython"].get_ipython()
    except Exception:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


_noted: set[str] = set()


def note_missing(what: str, package: str) -> None:
    """One line on stderr, once per process: an optional package is missing, what is
    done instead and what to install."""
    if package in _noted:
        return
    _noted.add(package)
    print(f"tinygrad_vg: {what} needs {package} (pip install 'tinygrad_vg[notebook]')", file=sys.stderr)


class TapeListing(str):
    """tape_listing's text (a str, printed as before) with the table's rows kept for HTML."""

    rows: list[list[str]]
    title: str

    def __new__(cls, text: str, title: str = "", rows: list[list[str]] | None = None) -> TapeListing:
        self = super().__new__(cls, text)
        self.title, self.rows = title, rows or []
        return self

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<pre>{html.escape(str(self))}</pre>"
        head, *body = self.rows
        cells = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(c)}</th>" for c in head)
        lines = [f"<tr style='border-bottom:1px solid #999'>{cells}</tr>"]
        for row in body:
            lines.append("<tr>" + "".join(f"<td style='text-align:left;padding:2px 10px'>{html.escape(c)}</td>"
                                          for c in row) + "</tr>")
        return (f"<div class='tinygrad-vg-tape'><div><b>{html.escape(self.title)}</b></div>"
                f"<table style='{_STYLE}'>{''.join(lines)}</table></div>")


class Explanation(list):
    """explain_backward's printed lines (a list of str): in a notebook, the same lines with
    each node's header, rule and gradients coloured."""

    def _repr_html_(self) -> str:
        out = []
        for line in self:
            text = html.escape(line)
            stripped = line.lstrip()
            if line.startswith("#"):          # a node: '#2 Sum:  y = sum(x, axes)'
                text = f"<b style='color:#1f4e8c'>{text}</b>"
            elif stripped.startswith("rule"):
                text = f"<span style='color:#6b3fa0'>{text}</span>"
            elif stripped.startswith("->"):
                text = f"<span style='color:#a0262e'>{text}</span>"
            elif not line.startswith(" "):   # the first line and the leaf-gradient heading
                text = f"<b>{text}</b>"
            out.append(text)
        style = "font-family:monospace;font-size:12px;background:transparent"
        return f"<pre class='tinygrad-vg-explain' style='{style}'>" + "\n".join(out) + "</pre>"

    def __repr__(self) -> str:
        return list.__repr__(self)


class Picture:
    """A finished picture: SVG text, PNG or GIF bytes. Jupyter shows it inline; `save(path)`
    writes it to a file of its own format."""

    def __init__(self, data: bytes | str, fmt: str, caption: str = "") -> None:
        if fmt not in ("svg", "png", "gif"):
            raise ValueError(f"Picture: format must be 'svg', 'png' or 'gif', got {fmt!r}")
        self.fmt, self.caption = fmt, caption
        self.data = data.encode() if isinstance(data, str) else bytes(data)

    def _repr_svg_(self) -> str | None:
        return self.data.decode() if self.fmt == "svg" else None

    def _repr_png_(self) -> bytes | None:
        return self.data if self.fmt == "png" else None

    def _repr_html_(self) -> str | None:
        """A GIF as an <img> (notebook front ends have no GIF type of their own); None otherwise."""
        if self.fmt != "gif":
            return None
        import base64
        return f"<img src='data:image/gif;base64,{base64.b64encode(self.data).decode()}'/>"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix.lower().lstrip(".") != self.fmt:
            raise ValueError(f"Picture.save: this is a {self.fmt.upper()} picture; give a path ending in .{self.fmt}, "
                             f"got {path.name!r}")
        path.write_bytes(self.data)
        return path

    def __repr__(self) -> str:
        return f"<Picture {self.fmt}, {len(self.data)} bytes{': ' + self.caption if self.caption else ''}>"


def figure_bytes(fig: Any, fmt: str, dpi: int = 100) -> bytes:
    """A matplotlib Figure saved to bytes (SVG with real text, so it stays small and selectable)."""
    import io

    from matplotlib import rc_context
    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()
