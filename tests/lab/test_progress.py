"""progress.py: a bar draws only when enabled, and an error after a drawn bar starts on a line of its own."""
import io
import sys

from tinygrad_vg.lab import progress


def _drawn_bar(monkeypatch):
    monkeypatch.setenv("TINYGRAD_VG_PROGRESS", "1")
    bar = progress.Progress(10, "depth")
    bar.start -= 2.0   # as if it had run for two seconds: it draws
    bar.update(3, "plain")
    return bar


def test_end_line_ends_an_open_bar_once(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _drawn_bar(monkeypatch)
    progress.end_line()
    progress.end_line()
    text = sys.stderr.getvalue()
    assert text.startswith("\rdepth [#########") and "3/10" in text and text.endswith("\n")
    assert text.count("\n") == 1


def test_a_closed_bar_leaves_nothing_to_end(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _drawn_bar(monkeypatch).close()
    before = sys.stderr.getvalue()
    progress.end_line()
    assert sys.stderr.getvalue() == before and before.endswith("s" + " " * 60 + "\n")
