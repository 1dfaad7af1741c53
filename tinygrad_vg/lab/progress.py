"""The lab's progress bar: tqdm, with the time left, where one can be seen: on a terminal's
stderr, in a Jupyter notebook (tqdm's widget with ipywidgets, its text bar without), or
anywhere with TINYGRAD_VG_PROGRESS=1. Silent otherwise (a pipe, a log file, a test); it
only draws once a task has run for a second.

Design:
- tqdm is optional (the `notebook` extra). Without it a terminal gets the small bar this
  module always had (label, bar, count, note, and the time left), and a notebook gets one
  line saying what to install, since that bar cannot be drawn there.
- `end_line()` is what the CLI calls before an error message: it ends every open bar's
  line, so the message starts on a line of its own.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any

from ..display import in_notebook, note_missing

DELAY = 1.0   # seconds a task runs before its bar is drawn
_open: list[Progress] = []   # bars drawn and not closed: their line has no newline yet


def end_line() -> None:
    """End a bar's unfinished line (before an error message, so it gets a line of its own)."""
    for bar in list(_open):
        if bar._tqdm is not None:
            bar._tqdm.close()   # tqdm ends its own line
            bar._tqdm = None
        else:
            sys.stderr.write("\n")
            sys.stderr.flush()
    _open.clear()


def _tqdm_class(notebook: bool) -> Any:
    """tqdm's widget bar in a notebook with ipywidgets, its text bar otherwise; None without tqdm."""
    try:
        import tqdm.std
    except ImportError:
        return None
    if notebook:
        try:
            import ipywidgets  # noqa: F401  (tqdm.notebook needs it to draw)
            import tqdm.notebook
            return tqdm.notebook.tqdm
        except ImportError:
            note_missing("a progress widget in a notebook (a text bar is shown)", "ipywidgets")
    return tqdm.std.tqdm


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes:d}:{seconds:02d}" if minutes < 60 else f"{minutes // 60:d}:{minutes % 60:02d}:{seconds:02d}"


class Progress:
    """Progress(total, label, enabled): update(n, note) after each piece of work, close() at the end."""

    def __init__(self, total: int, label: str, enabled: bool = True, width: int = 30, use_tqdm: bool = True) -> None:
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.done = 0
        self.start = time.monotonic()
        notebook = in_notebook()
        self.enabled = enabled and (sys.stderr.isatty() or notebook or os.environ.get("TINYGRAD_VG_PROGRESS") == "1")
        self.drawn = False
        self._tqdm = None
        bar_class = _tqdm_class(notebook) if self.enabled and use_tqdm else None
        if bar_class is not None:
            self._tqdm = bar_class(total=self.total, desc=label, delay=DELAY, file=sys.stderr, leave=True,
                                   unit="step", dynamic_ncols=True)
            _open.append(self)
        elif self.enabled and notebook:   # the plain bar cannot redraw in a notebook's output
            note_missing("progress in a notebook", "tqdm")
            self.enabled = False

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.done + n, self.total)
        if self._tqdm is not None:
            if note:
                self._tqdm.set_postfix_str(note[:30], refresh=False)
            self._tqdm.update(n)
            return
        if not self.enabled or time.monotonic() - self.start < DELAY:
            return
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self.start
        left = _clock(elapsed * (self.total - self.done) / self.done) if self.done else "?"
        sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total} <{left} {note[:30]:<30}")
        sys.stderr.flush()
        if not self.drawn:
            _open.append(self)
        self.drawn = True

    def close(self) -> None:
        if self in _open:
            _open.remove(self)
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
            return
        if self.drawn:
            elapsed = time.monotonic() - self.start
            sys.stderr.write(f"\r{self.label} done in {elapsed:.1f} s{' ' * (self.width + 36)}\n")
            sys.stderr.flush()
