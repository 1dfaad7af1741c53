"""progress.py: a bar draws only when enabled, shows the time left, and an error after a drawn
bar starts on a line of its own; tqdm draws it when installed, the plain bar otherwise."""
import importlib.util
import io
import sys

import pytest

from tinygrad_vg import display
from tinygrad_vg.lab import progress


def _drawn_bar(monkeypatch, use_tqdm=False):
    monkeypatch.setenv("TINYGRAD_VG_PROGRESS", "1")
    bar = progress.Progress(10, "depth", use_tqdm=use_tqdm)
    bar.start -= 2.0   # as if it had run for two seconds: it draws
    if bar._tqdm is not None:
        bar._tqdm.start_t -= 2.0
        bar._tqdm.last_print_t -= 2.0
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


def test_the_plain_bar_shows_the_time_left(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _drawn_bar(monkeypatch)
    # 3 of 10 done in 2 s: 7 left take about 4.7 s
    assert "3/10 <0:04 plain" in sys.stderr.getvalue()
    progress.end_line()


def test_a_closed_bar_leaves_nothing_to_end(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _drawn_bar(monkeypatch).close()
    before = sys.stderr.getvalue()
    progress.end_line()
    assert sys.stderr.getvalue() == before and before.endswith("s" + " " * 66 + "\n")


def test_tqdm_draws_the_bar_with_the_time_left(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = _drawn_bar(monkeypatch, use_tqdm=True)
    text = sys.stderr.getvalue()
    assert text.startswith("\rdepth:  30%|") and "3/10 [00:02<00:04" in text and "plain" in text
    progress.end_line()   # the CLI's error path: tqdm ends its line, once
    progress.end_line()
    assert sys.stderr.getvalue().endswith("\n") and sys.stderr.getvalue().count("\n") == 1
    bar.close()           # closing after end_line writes nothing more
    assert sys.stderr.getvalue().count("\n") == 1


def test_silent_when_nobody_can_see_it(monkeypatch):
    monkeypatch.delenv("TINYGRAD_VG_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())   # not a terminal, not a notebook
    bar = progress.Progress(10, "depth")
    bar.start -= 2.0
    bar.update(5)
    bar.close()
    assert not bar.enabled and bar._tqdm is None and sys.stderr.getvalue() == ""


def test_a_notebook_without_tqdm_gets_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.delenv("TINYGRAD_VG_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(progress, "_tqdm_class", lambda notebook: None)
    monkeypatch.setattr(display, "_noted", set())
    for _ in range(2):
        bar = progress.Progress(10, "depth")
        bar.start -= 2.0
        bar.update(5)
        bar.close()
    assert not bar.enabled
    assert sys.stderr.getvalue() == "tinygrad_vg: progress in a notebook needs tqdm (pip install 'tinygrad_vg[notebook]')\n"


def test_a_notebook_without_ipywidgets_gets_tqdm_text_bar_and_one_line(monkeypatch, capsys):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setitem(sys.modules, "ipywidgets", None)   # as if it were not installed
    monkeypatch.setattr(display, "_noted", set())
    assert progress._tqdm_class(True) is tqdm.std.tqdm
    assert capsys.readouterr().err == ("tinygrad_vg: a progress widget in a notebook (a text bar is shown) needs "
                                       "ipywidgets (pip install 'tinygrad_vg[notebook]')\n")
    if importlib.util.find_spec("ipywidgets") is not None:
        monkeypatch.delitem(sys.modules, "ipywidgets")
        import tqdm.notebook
        assert progress._tqdm_class(True) is tqdm.notebook.tqdm
