"""Backward as a film: one frame per node, in the order backward visits them, with the
gradient arriving on each edge.

    tg.animate_backward(loss, "backward.gif")   # or .mp4 (needs ffmpeg); no path: a GIF Picture
    steps = tg.step_backward(loss)             # in a notebook: a slider over the same frames
    next(steps)                                # without ipywidgets: the frames one by one

Frame 0 is the forward graph with nothing sent back yet. Frame k (k = 1..n) is backward
step k: the node that runs its backward is outlined in red, the nodes that have sent
their gradient on are lit, and the edges that carry a gradient already are red with
||gradient|| beside them; the caption gives the node's local rule and the norms. The
last frame lights the leaves and lists what backward adds to their .grad.

Design:
- The frames are graph.py's matplotlib drawing of the same graph_model, with a
  graph.Frame saying what is lit; the layout and the figure size are those of the whole
  graph, so nothing moves between frames. Graphviz is not used: its layout may differ
  from one frame to the next.
- The numbers are explain.backward_steps, the read-only replay: animating changes no
  .grad and needs no earlier backward (after one, backward(retain_graph=True)).
- GIF through Pillow (matplotlib's own dependency); MP4 through an ffmpeg program: the
  one on PATH, else the one the imageio-ffmpeg package ships.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .autograd import tape
from .display import Picture, note_missing
from .explain import _Names, backward_steps, derivative_rule
from .graph import Frame, _figure, graph_model
from .tensor import Tensor

__all__ = ["backward_frames", "animate_backward", "step_backward", "BackwardSteps"]


def _norm(g: Any) -> str:
    return f"{float(np.linalg.norm(np.asarray(g, dtype=np.float64))):.3g}"


def backward_frames(loss: Tensor, grad: Any = None) -> tuple[list, list, list[Frame]]:
    """The graph (nodes, edges with gradient norms) and one graph.Frame per picture:
    the forward graph, each backward step, and the leaves' gradients at the end."""
    gnodes, edges = graph_model(loss, grad_labels=True, grad=grad)
    seed = grad if grad is not None or loss.size == 1 else None
    steps, leaves = backward_steps(loss, seed)   # raises the clear errors (no grad, freed graph, seed)
    n = len(steps)
    frames = [Frame(set(), None, set(), "forward: the graph that computed the loss; nothing sent back yet\n"
                    f"backward will visit its {n} node{'s' if n != 1 else ''} from the loss up")]
    lit: set[str] = set()
    arrived: set[int] = set()
    sources = {e.source for e in edges}
    for k, step in enumerate(steps, 1):
        node_id = f"n{step.index}"
        lit.add(node_id)
        new = {i for i, e in enumerate(edges) if e.target == node_id and e.norm is not None}
        arrived |= new
        lit |= {edges[i].source for i in new if not edges[i].source.startswith("n")
                and edges[i].norm is not None}
        sent = ", ".join(f"{edges[i].label}" for i in sorted(new)) or "nothing"
        came = " + ".join(f"#{s}" for s in step.sources) or "the seed dL/dL"
        rule = " ".join(derivative_rule(step.node).split())
        if len(rule) > 70:
            rule = rule[:67] + "..."
        frames.append(Frame(set(lit), node_id, set(arrived),
                            f"backward step {k} of {n}: #{step.index} {step.node.name}   {rule}\n"
                            f"grad_out |g| {_norm(step.grad_out)} (from {came}); sends {sent}"))
    names = _Names(tape(loss), loss)
    done = ", ".join(f"{names.tensor(x)} |g| {_norm(g)}" for x, g in leaves)
    frames.append(Frame(lit | {g.id for g in gnodes if g.id.startswith("l") and g.id in sources}, None, set(arrived),
                        "backward done: every leaf that requires grad has its gradient\n"
                        + (f"added to .grad: {done}" if done else "")))
    return gnodes, edges, frames


def _caption_chars(frames: list[Frame]) -> int:
    """The longest caption line: every frame is drawn that wide, so none moves or is cut."""
    return max(len(line) for frame in frames for line in frame.caption.split("\n"))


def _rgb(fig: Any) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _ffmpeg() -> str | None:
    program = shutil.which("ffmpeg")
    if program is None:
        try:
            import imageio_ffmpeg
            program = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception:   # not installed, or it ships no binary for this platform
            program = None
    return program


FORMATS = ("gif", "mp4")


def animate_backward(loss: Tensor, path: str | Path | None = None, grad: Any = None,
                     seconds_per_frame: float = 1.5, dpi: int = 100) -> Path | Picture:
    """Write backward as an animation to path (.gif; .mp4 when an ffmpeg program is found)
    and return the path; with no path, return the GIF as a display.Picture (inline in a
    notebook). One frame per backward step; see the module docstring for what each shows."""
    if path is not None:
        path = Path(path)
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ValueError(f"animate_backward: unsupported file type {path.suffix!r}; accepted: .gif, .mp4 "
                             "(or no path, for a GIF to display)")
    else:
        fmt = "gif"
    program = _ffmpeg() if fmt == "mp4" else None
    if fmt == "mp4" and program is None:
        raise RuntimeError("animate_backward: an .mp4 needs the ffmpeg program (on PATH, or pip install "
                           "imageio-ffmpeg); write a .gif instead, which needs nothing more")
    gnodes, edges, frames = backward_frames(loss, grad)
    chars = _caption_chars(frames)
    images = [_rgb(_figure(gnodes, edges, True, frame, chars)) for frame in frames]
    if fmt == "gif":
        from PIL import Image
        pictures = [Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=128) for a in images]
        durations = [int(seconds_per_frame * 1000)] * len(pictures)
        durations[0] = durations[-1] = int(seconds_per_frame * 2000)   # time to look at the start and the end
        import io
        buffer = io.BytesIO()
        pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=durations,
                         loop=0, optimize=False)
        if path is None:
            return Picture(buffer.getvalue(), "gif", f"backward in {len(frames)} frames")
        path.write_bytes(buffer.getvalue())
        return path
    height, width = images[0].shape[:2]
    command = [program, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-framerate", f"1/{seconds_per_frame}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2,fps=10",
               "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)]
    done = subprocess.run(command, input=b"".join(a.tobytes() for a in images), capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed (exit {done.returncode}): {done.stderr.decode(errors='replace').strip()}")
    return path


class BackwardSteps:
    """The frames of animate_backward one at a time: `next(steps)` (or a for loop) gives
    each as a PNG display.Picture, `steps[k]` frame k, `len(steps)` how many. In a notebook
    the object shows as a slider with a play button over the frames (ipywidgets), or,
    without ipywidgets, as its first frame with one line saying what to install."""

    def __init__(self, loss: Tensor, grad: Any = None, dpi: int = 100) -> None:
        self._gnodes, self._edges, self.frames = backward_frames(loss, grad)
        self._dpi, self._cache, self._next = dpi, {}, 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, k: int) -> Picture:
        if not -len(self) <= k < len(self):
            raise IndexError(f"step_backward: frame {k} does not exist; there are {len(self)} (0 to {len(self) - 1})")
        k %= len(self)
        if k not in self._cache:
            from .display import figure_bytes
            fig = _figure(self._gnodes, self._edges, True, self.frames[k], _caption_chars(self.frames))
            self._cache[k] = Picture(figure_bytes(fig, "png", self._dpi), "png", self.frames[k].caption)
        return self._cache[k]

    def __iter__(self) -> Iterator[Picture]:
        return self

    def __next__(self) -> Picture:
        if self._next >= len(self):
            raise StopIteration
        self._next += 1
        return self[self._next - 1]

    def widget(self) -> Any:
        """The ipywidgets slider (with a play button) over the frames."""
        import ipywidgets as widgets
        image = widgets.Image(value=self[0].data, format="png")
        slider = widgets.IntSlider(value=0, min=0, max=len(self) - 1, description="step")
        play = widgets.Play(value=0, min=0, max=len(self) - 1, interval=1500)
        widgets.jslink((play, "value"), (slider, "value"))
        slider.observe(lambda change: setattr(image, "value", self[change["new"]].data), names="value")
        return widgets.VBox([widgets.HBox([play, slider]), image])

    def _ipython_display_(self) -> None:
        from IPython.display import display
        try:
            display(self.widget())
        except ImportError:
            note_missing("step_backward's slider", "ipywidgets")
            display(self[0])

    def __repr__(self) -> str:
        return f"<BackwardSteps: {len(self)} frames; next(steps) gives the next, steps[k] frame k>"


def step_backward(loss: Tensor, grad: Any = None) -> BackwardSteps:
    """The frames of animate_backward to step through: a slider in a notebook (with
    ipywidgets), an iterator of pictures anywhere (`next(steps)`)."""
    return BackwardSteps(loss, grad)
