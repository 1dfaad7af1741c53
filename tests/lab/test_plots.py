"""plots.py draws every experiment's data into valid PNGs, and matplotlib stays out of the lab's import path."""
import copy
import struct
import subprocess
import sys

import pytest

from tinygrad_vg.lab import run_experiment

pytest.importorskip("matplotlib")

from tinygrad_vg.lab import plots  # noqa: E402

# Small real runs: the pictures' code paths are the same as at default sizes.
SMALL = {
    "seed-figure": dict(width=6, depth=5, batch=4, steps=3),
    "activations": dict(activations=["sigmoid", "tanh", "relu"], width=6, depth=5, batch=4),
    "init": dict(inits=["standard", "lecun_normal", "xavier_normal"], scales=[0.5, 2.0], width=6, depth=5, batch=4),
    "depth": dict(depths=[2, 6], kinds=["plain", "residual"], norms=["none", "batch"], width=6, batch=4),
    "recurrent": dict(T=12, hidden=5, input_size=3, batch=2, gate_biases=[0.0, 2.0]),
    "learning-speed": dict(kinds=["plain", "residual"], width=5, depth=4, batch=4, steps=4),
    "arch-seed-figure": dict(variants=["plain", "dense", "plain+wn"], width=5, depth=4, batch=4, steps=2),
    "arch-depth": dict(depths=[2, 5], variants=["plain", "residual+maxout"], width=5, batch=4),
    "narx": dict(delays=[1, 2], narx_inits=["fan_in"], cells=["lstm"], gate_biases=[0.0], T=12, hidden=4,
                 input_size=3, batch=2),
    "conv-depth": dict(kinds=["plain", "residual"], depths=[8], image_size=8, classes=2, train_size=16, batch=8,
                       probe_batch=8, steps=2),
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results():
    return {name: run_experiment(name, **options) for name, options in SMALL.items()}


def png_size(path):
    """(width, height) from the IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_every_experiment_has_a_plot():
    from tinygrad_vg.lab import EXPERIMENTS
    assert set(plots.PLOTTERS) == set(EXPERIMENTS)
    assert set(SMALL) == set(EXPERIMENTS)


def with_unplottable_values(name, data):
    """The data with what a log axis cannot show, as real runs produce it at large sizes:
    a depth run whose norm underflowed to 0 (log10_ratio_h None) and a time series with
    0, None and inf. Folded into the one drawing per experiment to keep the tests fast."""
    data = copy.deepcopy(data)
    if name == "depth":
        run = next(r for r in data["runs"] if r["kind"] == "plain" and r["norm"] == "none" and r["depth"] == 6)
        run["grad_h_norm"][:2] = [0.0, 0.0]
        run["log10_ratio_h"] = None
        assert plots._why_missing(run) == "underflow (0)"
    if name == "recurrent":
        norms = data["runs"][0]["grad_h_norm"]
        norms[0], norms[1], norms[2] = 0.0, None, float("inf")
    return data


@pytest.mark.parametrize("name", list(SMALL))
def test_plot_writes_valid_pngs(results, name, tmp_path):
    data = with_unplottable_values(name, results[name])
    paths = plots.plot(data, tmp_path)
    assert [p.name for p in paths] == plots.figure_files(data)
    if name == "seed-figure":
        assert plots.figure_files(data) == ["seed_figure_init.png", "seed_figure_trained.png",
                                            "seed_figure_grad_norms.png"]
    for path in paths:
        assert path.name in plots.CAPTIONS
        assert path.parent == tmp_path and path.is_file()
        assert path.stat().st_size > 15_000, f"{path.name} is suspiciously small"
        width, height = png_size(path)
        assert 500 <= width <= 2000 and 350 <= height <= 1200, (path.name, width, height)


def test_unplottable_values_are_masked_and_counted():
    masked = plots._positive([1.0, 0.0, None, float("inf"), float("nan"), -1.0])
    assert masked[0] == 1.0 and all(v != v for v in masked[1:])   # NaN everywhere else
    assert plots._lost_points([1.0, 0.0, None]) == " (1 underflowed to 0, 1 not finite)"
    assert plots._lost_points([1.0, 2.0]) == ""
    assert plots._why_missing({"grad_h_norm": [1.0, float("inf"), 1.0]}) == "not finite"


def test_identical_runs_are_named_in_the_legend(results):
    runs = results["init"]["runs"]   # lecun_normal and xavier_normal coincide for square layers
    names = [r["init"] for r in runs]
    assert plots._same_as(runs, names.index("xavier_normal"), "init") == " (= lecun_normal)"
    assert plots._same_as(runs, names.index("lecun_normal"), "init") == ""


def test_plot_rejects_unknown_experiment(tmp_path):
    with pytest.raises(ValueError, match="no plot for experiment"):
        plots.plot({"experiment": "nope", "runs": [{}]}, tmp_path)
    with pytest.raises(ValueError, match="no runs"):
        plots.plot({"experiment": "depth", "runs": []}, tmp_path)


def test_lab_import_does_not_load_matplotlib():
    code = ("import sys, tinygrad_vg.lab, tinygrad_vg.lab.plots, tinygrad_vg.lab.report; "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'); "
            "print(loaded); sys.exit(1 if loaded else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["depth", "recurrent", "seed-figure"])
def test_several_seeds_draw_one_line_per_configuration_with_a_band(name, tmp_path):
    options = {"depth": dict(depths=[3, 5], kinds=["plain"], norms=["none"], width=5, batch=4),
               "recurrent": dict(cells=["rnn"], T=6, hidden=4, batch=3),
               "seed-figure": dict(kinds=["plain"], width=5, depth=3, batch=4, steps=2)}[name]
    data = run_experiment(name, seeds=3, **options)
    paths = plots.plot(data, tmp_path)
    assert [p.name for p in paths] == plots.figure_files(data)
    assert all(p.stat().st_size > 5000 for p in paths)
