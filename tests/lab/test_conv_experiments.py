"""tinygrad_vg/lab/conv_experiments.py at tiny sizes: the synthetic images, the per-block
gradient measurements, the plain vs residual runs, their summary, the JSON and the figure."""
import json

import numpy as np
import pytest

from tinygrad_vg import nn
from tinygrad_vg.lab import conv_experiments as ce
from tinygrad_vg.lab.experiments import ResultStore

TINY = dict(kinds=("plain", "residual"), depths=(8, 14), width=1, image_size=4, classes=3, train_size=24, batch=8,
            steps=4, lr=0.05, seeds=(0, 1), probe_batch=8)


def test_synthetic_images_are_balanced_seeded_and_class_dependent():
    x, y = ce.synthetic_images(60, classes=3, size=12, seed=4)
    assert x.shape == (60, 3, 12, 12) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [20, 20, 20]
    again, _ = ce.synthetic_images(60, classes=3, size=12, seed=4)
    np.testing.assert_array_equal(x, again)
    assert not np.array_equal(x, ce.synthetic_images(60, classes=3, size=12, seed=5)[0])
    # the orientation carries the class: horizontal gratings (class 0) vary along u only
    clean, y0 = ce.synthetic_images(30, classes=3, size=12, noise=0.0, seed=6)
    along_rows = np.abs(np.diff(clean, axis=3)).mean(axis=(1, 2, 3))
    along_cols = np.abs(np.diff(clean, axis=2)).mean(axis=(1, 2, 3))
    assert np.mean(along_rows[y0 == 0] > along_cols[y0 == 0]) > 0.8
    with pytest.raises(ValueError, match=r"synthetic_images: size must be a positive int; got 0"):
        ce.synthetic_images(4, size=0)


def test_measure_conv_net_gives_one_norm_per_block_boundary():
    model = nn.conv_net("plain", 8, num_classes=3, rng=0)
    x, y = ce.synthetic_images(8, classes=3, size=8)
    out = ce.measure_conv_net(model, x, y)
    assert len(out["grad_h_norm"]) == len(model.blocks) + 1
    assert all(g > 0 for g in out["grad_h_norm"]) and out["loss"] > 0
    assert out["log10_first_over_last"] == pytest.approx(np.log10(out["grad_h_norm"][0] / out["grad_h_norm"][-1]))
    assert all(p.grad is None for p in model.parameters())   # measuring leaves no gradients behind


def test_conv_depth_runs_summary_json_and_figure(tmp_path):
    data = ce.run_conv_depth(**TINY)
    runs = data["runs"]
    assert len(runs) == 2 * 2 * 2 * 2   # kinds x depths x seeds x phases
    json.loads(json.dumps(data))        # JSON-able as it is
    trained = [r for r in runs if r["phase"] == "trained"]
    assert all(len(r["loss_curve"]) == 4 and np.isfinite(r["final_loss"]) for r in trained)
    assert {len(r["grad_h_norm"]) for r in runs if r["depth"] == 14} == {7}
    # the same seed gives the same numbers (everything is seeded)
    again = ce.conv_depth(**{**TINY, "kinds": ("residual",), "depths": (8,), "seeds": (1,)})
    same = [r for r in runs if r["kind"] == "residual" and r["depth"] == 8 and r["seed"] == 1]
    assert [r["grad_h_norm"] for r in again] == [r["grad_h_norm"] for r in same]
    summary = {(s["kind"], s["depth"]): s for s in data["summary"]}
    assert set(summary) == {("plain", 8), ("plain", 14), ("residual", 8), ("residual", 14)}
    s = summary[("plain", 14)]
    finals = [r["final_loss"] for r in trained if r["kind"] == "plain" and r["depth"] == 14]
    assert s["final_loss"]["n"] == 2 and s["final_loss"]["mean"] == pytest.approx(np.mean(finals))
    assert s["final_loss"]["min"] <= s["final_loss"]["mean"] <= s["final_loss"]["max"]
    assert "kernels" in data["provenance"] and data["options"]["depths"] == [8, 14]
    paths = ce.plot_conv_depth(data, tmp_path)
    assert [p.name for p in paths] == ["conv_depth.png"] and paths[0].stat().st_size > 10_000


def test_conv_depth_runs_go_through_a_result_store(tmp_path):
    store = ResultStore(tmp_path)
    options = {**TINY, "kinds": ("plain",), "depths": (8,), "seeds": (0,), "steps": 2}
    first = ce.conv_depth(store=store, **options)
    assert store.computed == 1
    assert ce.conv_depth(store=store, **options) == first and store.reused == 1


@pytest.mark.parametrize("bad, message", [
    (dict(depths=(10,)), r"depths must be 6n \+ 2"),
    (dict(kinds=("dense",)), r"kinds must be some of plain, residual"),
    (dict(image_size=2), r"image_size must be at least 4"),
    (dict(batch=100), r"batch and probe_batch must be at most train_size"),
    (dict(steps=-1), r"steps must be an int >= 0"),
    (dict(seeds=()), r"seeds must be a non-empty list of ints"),
])
def test_conv_depth_bad_options(bad, message):
    with pytest.raises(ValueError, match=message):
        ce.conv_depth(**{**TINY, **bad})


def test_run_conv_depth_rejects_unknown_options():
    with pytest.raises(ValueError, match=r"conv-depth: unknown option\(s\) depht; accepted: kinds, depths"):
        ce.run_conv_depth(depht=20)


def test_a_small_residual_conv_net_learns_the_synthetic_images():
    x, y = ce.synthetic_images(64, classes=2, size=8, noise=0.3, seed=3)
    model = nn.conv_net("residual", 8, num_classes=2, rng=3)
    before = ce.measure_conv_net(model, x, y)["loss"]
    ce.train_conv_net(model, x, y, steps=30, batch=32, lr=0.05, rng=np.random.default_rng(3))
    after = ce.measure_conv_net(model, x, y)["loss"]
    assert after < 0.5 * before, (before, after)
