"""Rich display (display.py, Tensor._repr_html_, render with no path) and the animated
backward (animate.py): what a notebook shows, and that a terminal sees the old plain text."""
from __future__ import annotations

import importlib.util
import io
import shutil
import stat
import sys

import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import animate, display


def chain():
    x = tg.Tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    w = tg.Tensor([2.0, 0.25, -0.5], requires_grad=True, name="w")
    return x, w, (x * w).tanh().sum()


# ----- Tensor ----------------------------------------------------------------------------------
def test_tensor_html_shows_name_shape_dtype_origin_values_and_grad():
    x, w, loss = chain()
    page = x._repr_html_()
    assert "Tensor <b>x</b>" in page and "(3,)" in page and "float64" in page and "leaf, requires grad" in page
    assert "0.5, -1. ,  2." in page and ">grad</th>" not in page
    assert "op <b>Sum</b>" in loss._repr_html_()
    loss.backward()
    page = x._repr_html_()
    assert "<th style='text-align:left;padding-right:1em'>grad</th>" in page
    assert np.array2string(x.grad, separator=", ", precision=4) in page
    assert repr(x).startswith("Tensor([ 0.5, -1. ,  2. ]")   # the terminal's text is unchanged


def test_tensor_html_summarises_a_big_array_and_escapes_names():
    t = tg.Tensor(np.arange(10000, dtype=np.float32).reshape(100, 100), name="<b>&")
    page = t._repr_html_()
    assert "Tensor <b>&lt;b&gt;&amp;</b>" in page
    assert "..." in page and "norm 5.773e+05" in page and "max 9999" in page and len(page) < 3000
    assert "leaf (constant)" in page


# ----- tape listing and explain_backward ---------------------------------------------------------
def test_tape_listing_is_the_same_text_with_an_html_table():
    _, _, loss = chain()
    listing = tg.tape_listing(loss)
    assert isinstance(listing, str) and listing.splitlines()[0] == "tape: 3 nodes in execution order"
    out = io.StringIO()
    tg.print_tape(loss, file=out)
    assert out.getvalue() == str(listing) + "\n"
    page = listing._repr_html_()
    assert page.count("<tr") == 4 and "<th style='text-align:left;padding:2px 10px'>saved for backward</th>" in page
    assert "<td style='text-align:left;padding:2px 10px'>x (3,), w (3,)</td>" in page
    leaf = tg.tape_listing(tg.Tensor([1.0], name="a"))
    assert leaf.startswith("tape: empty") and leaf._repr_html_().startswith("<pre>tape: empty")


def test_explain_backward_returns_its_lines_with_html_and_echo_false_prints_nothing(capsys):
    _, _, loss = chain()
    lines = tg.explain_backward(loss)
    printed = capsys.readouterr().out
    assert printed == "\n".join(lines) + "\n" and isinstance(lines, list)
    quiet = tg.explain_backward(loss, echo=False)
    assert capsys.readouterr().out == "" and quiet == lines
    page = quiet._repr_html_()
    assert "<b style='color:#1f4e8c'>#1 Tanh:  y = tanh(x)</b>" in page
    assert "<span style='color:#6b3fa0'>    rule      : grad_x = grad_out * (1 - y^2)</span>" in page
    assert repr(quiet) == repr(list(lines))


def test_in_notebook_is_false_outside_a_kernel():
    assert display.in_notebook() is False


def test_note_missing_says_what_to_install_once(capsys, monkeypatch):
    monkeypatch.setattr(display, "_noted", set())
    display.note_missing("a slider", "ipywidgets")
    display.note_missing("a slider", "ipywidgets")
    assert capsys.readouterr().err == "tinygrad_vg: a slider needs ipywidgets (pip install 'tinygrad_vg[notebook]')\n"


# ----- render with no path -------------------------------------------------------------------------
def test_render_with_no_path_returns_an_svg_picture_of_the_graph(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)   # the matplotlib drawing
    _, _, loss = chain()
    picture = tg.render(loss, grad_labels=True)
    assert isinstance(picture, display.Picture) and picture._repr_png_() is None
    svg = picture._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for text in ("#0 Mul", "#1 Tanh", "#2 Sum", "|g| 1.73"):   # real text (svg.fonttype none), not paths
        assert text in svg, text
    assert picture.save(tmp_path / "g.svg").read_bytes() == picture.data
    with pytest.raises(ValueError, match=r"this is a SVG picture; give a path ending in \.svg, got 'g.png'"):
        picture.save(tmp_path / "g.png")


def test_render_with_no_path_through_dot_when_dot_exists(tmp_path, monkeypatch):
    # a stand-in `dot` that answers with an SVG naming its arguments: the call is what is checked
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\ncat > /dev/null\necho \"<svg><text>dot $*</text></svg>\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:" + __import__("os").environ["PATH"])
    _, _, loss = chain()
    picture = tg.render(loss)
    assert picture.fmt == "svg" and picture._repr_svg_().strip() == "<svg><text>dot -Tsvg</text></svg>"
    assert "Graphviz" in repr(picture)


def test_render_rejects_a_bad_file_type_naming_the_no_path_form(tmp_path):
    _, _, loss = chain()
    with pytest.raises(ValueError, match=r"accepted: .png, .svg, .pdf \(or no path, for a picture to display\)"):
        tg.render(loss, tmp_path / "g.jpg")


def test_picture_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="format must be 'svg', 'png' or 'gif', got 'bmp'"):
        display.Picture(b"", "bmp")


# ----- the animated backward -------------------------------------------------------------------------
def test_frames_light_one_node_per_backward_step_in_backward_order():
    x, w, loss = chain()
    gnodes, edges, frames = animate.backward_frames(loss)
    steps, _ = tg.explain.backward_steps(loss)
    assert len(frames) == len(steps) + 2 == 5
    assert frames[0].lit == set() and frames[0].arrived == set() and frames[0].current is None
    assert [f.current for f in frames[1:-1]] == [f"n{s.index}" for s in steps] == ["n2", "n1", "n0"]
    for before, after in zip(frames[1:], frames[2:]):   # lit and arrived only grow, one node per frame
        assert before.lit <= after.lit and before.arrived <= after.arrived
    # each step's frame adds exactly the edges into that node, carrying the norms backward sends
    for frame, step, previous in zip(frames[1:-1], steps, frames[:-2]):
        new = frame.arrived - previous.arrived
        assert {edges[i].target for i in new} == {f"n{step.index}"}
        norms = sorted(edges[i].norm for i in new)
        assert np.allclose(norms, sorted(np.linalg.norm(g) for g in step.grads if g is not None))
    assert frames[-1].lit >= {g.id for g in gnodes}   # at the end every node and both leaves are lit
    assert "backward step 2 of 3: #1 Tanh   grad_x = grad_out * (1 - y^2)" in frames[2].caption
    assert f"x |g| {np.linalg.norm(w.data * (1 - np.tanh(x.data * w.data) ** 2)):.3g}" in frames[-1].caption
    assert x.grad is None and w.grad is None   # animating only looked


def test_animate_backward_writes_a_gif_with_one_frame_per_picture_all_the_same_size(tmp_path):
    from PIL import Image
    _, _, loss = chain()
    path = tg.animate_backward(loss, tmp_path / "b.gif", seconds_per_frame=0.5)
    with Image.open(path) as gif:
        assert gif.n_frames == 5
        sizes, durations = set(), []
        for k in range(gif.n_frames):
            gif.seek(k)
            sizes.add(gif.size)
            durations.append(gif.info["duration"])
    assert len(sizes) == 1 and durations == [1000, 500, 500, 500, 1000]
    picture = tg.animate_backward(loss)   # no path: the GIF to display
    assert picture.fmt == "gif" and picture.data[:6] == b"GIF89a"
    assert picture._repr_html_().startswith("<img src='data:image/gif;base64,R0lGOD")
    loss.backward()   # and the graph is still whole


def test_animate_backward_errors_name_what_was_wrong(tmp_path, monkeypatch):
    _, _, loss = chain()
    with pytest.raises(ValueError, match=r"unsupported file type '.avi'; accepted: .gif, .mp4"):
        tg.animate_backward(loss, tmp_path / "b.avi")
    monkeypatch.setattr(animate, "_ffmpeg", lambda: None)
    with pytest.raises(RuntimeError, match="an .mp4 needs the ffmpeg program .* write a .gif instead"):
        tg.animate_backward(loss, tmp_path / "b.mp4")
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.animate_backward(tg.Tensor([1.0]).sum(), tmp_path / "b.gif")
    y = (tg.Tensor([1.0, 2.0], requires_grad=True) * 3.0)
    with pytest.raises(RuntimeError, match=r"a gradient seed is needed for a tensor of shape \(2,\)"):
        tg.animate_backward(y)
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        tg.animate_backward(loss, tmp_path / "b.gif")
    assert not (tmp_path / "b.gif").exists()


def test_animate_backward_writes_an_mp4_when_an_ffmpeg_is_found(tmp_path):
    if animate._ffmpeg() is None:
        pytest.skip("no ffmpeg program (install ffmpeg or imageio-ffmpeg)")
    _, _, loss = chain()
    path = tg.animate_backward(loss, tmp_path / "b.mp4", seconds_per_frame=0.2)
    assert path.stat().st_size > 1000 and b"ftyp" in path.read_bytes()[:16]


def test_step_backward_iterates_and_indexes_the_same_frames():
    _, _, loss = chain()
    steps = tg.step_backward(loss)
    assert len(steps) == 5 and "5 frames" in repr(steps)
    pictures = list(steps)
    assert len(pictures) == 5 and all(p.fmt == "png" and p.data[:4] == b"\x89PNG" for p in pictures)
    assert [p.caption for p in pictures] == [f.caption for f in steps.frames]
    assert steps[-1] is pictures[-1]
    with pytest.raises(StopIteration):
        next(steps)
    with pytest.raises(IndexError, match="frame 5 does not exist; there are 5"):
        steps[5]


def test_step_backward_in_a_notebook_shows_a_slider_or_says_what_to_install(monkeypatch, capsys):
    shown = []
    ipython_display = pytest.importorskip("IPython.display")
    monkeypatch.setattr(ipython_display, "display", lambda obj: shown.append(obj))
    _, _, loss = chain()
    steps = tg.step_backward(loss)
    if importlib.util.find_spec("ipywidgets") is not None:
        steps._ipython_display_()
        box = shown[-1]
        (play, slider), image = box.children[0].children, box.children[1]
        assert play.max == 4
        assert slider.max == 4 and image.value == steps[0].data
        slider.value = 3   # moving the slider shows that frame
        assert image.value == steps[3].data
    monkeypatch.setitem(sys.modules, "ipywidgets", None)   # as if it were not installed
    monkeypatch.setattr(display, "_noted", set())
    steps._ipython_display_()
    assert shown[-1] is steps[0]
    assert capsys.readouterr().err == "tinygrad_vg: step_backward's slider needs ipywidgets (pip install 'tinygrad_vg[notebook]')\n"
