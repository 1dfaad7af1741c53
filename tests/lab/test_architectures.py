"""tinygrad_vg/lab/architectures.py and plots_arch.py: the arch-seed-figure, arch-depth and narx
experiments on small sizes: option checking, the shape of the results, the statements the docs
make (weight norm changes nothing at initialisation; a dense net keeps its gradient where a plain
one loses it; NARX with D = 1 is the RNN; longer delays lose fewer decades per step), seeds,
cost estimates and the figures."""
import json
import math

import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import nn
from tinygrad_vg.lab import architectures as arch
from tinygrad_vg.lab.architectures import run_arch_experiment as run

SMALL = dict(width=5, depth=6, batch=8, steps=5)


def test_options_are_checked_before_any_work():
    with pytest.raises(ValueError, match="--variants: unknown value 'plain\\+bn'; accepted: plain, plain\\+maxout"):
        run("arch-seed-figure", variants=["plain+bn"])
    with pytest.raises(ValueError, match="has no option\\(s\\) \\['kinds'\\]"):
        run("arch-depth", kinds=["plain"])
    with pytest.raises(ValueError, match="--delays must be a whole number >= 1; got 0"):
        run("narx", delays=[1, 0])
    with pytest.raises(ValueError, match="--depths needs at least one value"):
        run("arch-depth", depths=[])
    with pytest.raises(ValueError, match="--narx-inits: unknown value 'xavier'; accepted: torch, fan_in"):
        run("narx", narx_inits=["xavier"])
    with pytest.raises(ValueError, match="--seeds must be a count >= 1 or a list"):
        run("narx", seeds=0)
    with pytest.raises(ValueError, match="unknown experiment 'narx2'; accepted: arch-seed-figure, arch-depth, narx"):
        run("narx2")


def test_variants_parse_and_build():
    assert arch.parse_variant("dense+maxout+wn") == ("dense", True, True)
    assert arch.parse_variant("residual") == ("residual", False, False)
    assert len(arch.VARIANTS) == 4 * len(nn.KINDS)
    with pytest.raises(ValueError, match="unknown variant 'plain\\+wn\\+maxout'.*\\+maxout and/or \\+wn in that order"):
        arch.parse_variant("plain+wn+maxout")
    model = arch.build_variant("dense+maxout+wn", 4, 3, growth=2, pieces=3, rng=0)
    state = model.state_dict()
    assert state["blocks.2.linear.weight_v"].shape == (2 * 3, 4 + 2 * 2) and "transition.weight_g" in state
    assert model.blocks[0].linear.weight.dtype == np.float64


def test_arch_seed_figure_results():
    data = run("arch-seed-figure", variants=["plain", "plain+wn", "dense", "residual+maxout"], **SMALL)
    json.dumps(data)   # JSON as it is
    runs = data["runs"]
    assert [(r["variant"], r["phase"]) for r in runs] == [(v, p) for v in ["plain", "plain+wn", "dense",
                                                                          "residual+maxout"]
                                                          for p in ("init", "trained")]
    by = {(r["variant"], r["phase"]): r for r in runs}
    for r in runs:
        assert len(r["grad_h_norm"]) == SMALL["depth"] + 1 and len(r["grad_W_norm"]) == SMALL["depth"]
        assert all(g > 0 for g in r["grad_W_norm"])   # under weight norm too: dL/dg and dL/dv
    # weight norm leaves w = g v / ||v|| equal to the plain weight at initialisation: same numbers
    assert by["plain+wn", "init"]["grad_h_norm"] == by["plain", "init"]["grad_h_norm"]
    assert by["plain", "trained"]["loss_curve"][0] == pytest.approx(by["plain", "init"]["loss"])
    assert len(by["dense", "trained"]["loss_curve"]) == SMALL["steps"]
    assert by["dense", "init"]["growth"] == 20 and by["plain", "init"]["growth"] is None
    assert by["residual+maxout", "init"]["activation"] == "maxout" and by["residual+maxout", "init"]["pieces"] == 2
    assert len(by["dense", "init"]["grad_h"][1]) == 20   # sample 0's dL/dh_1: the growth new features


def test_arch_depth_dense_keeps_the_gradient_where_plain_loses_it():
    data = run("arch-depth", depths=[4, 16], variants=["plain", "dense"], width=8, growth=4, batch=8)
    ratio = {(r["variant"], r["depth"]): r["log10_ratio_h"] for r in data["runs"]}
    assert ratio["plain", 16] < ratio["plain", 4] < 0
    assert ratio["plain", 16] < -2.0 and abs(ratio["dense", 16]) < 1.0
    assert all(r["log10_slope"] is not None for r in data["runs"])


def test_seeds_run_each_configuration_per_seed_index_with_its_own_data():
    data = run("arch-depth", depths=[3], variants=["plain"], width=4, batch=4, seeds=2)
    assert [r["seed_index"] for r in data["runs"]] == [0, 1]
    assert data["runs"][0]["loss"] != data["runs"][1]["loss"]
    again = run("arch-depth", depths=[3], variants=["plain"], width=4, batch=4, seeds=[1])
    assert again["runs"][0]["loss"] == data["runs"][1]["loss"]


def test_narx_results_and_the_path_length_statement():
    data = run("narx", delays=[1, 2, 4], narx_inits=["torch", "fan_in"], cells=["rnn", "lstm"], gate_biases=[0.0],
               T=120, hidden=8, batch=4, input_size=3)
    json.dumps(data)
    runs = data["runs"]
    narx = {(r["narx_init"], r["delay"]): r for r in runs if r["cell"] == "narx"}
    rnn = next(r for r in runs if r["cell"] == "rnn")
    assert len(rnn["grad_h_norm"]) == 121
    # D = 1 is the vanilla RNN: same equations, same initial weights from the same seed, either init
    assert narx["torch", 1]["grad_h_norm"] == rnn["grad_h_norm"] == narx["fan_in", 1]["grad_h_norm"]
    for how in ("torch", "fan_in"):
        slopes = [narx[how, d]["log10_slope"] for d in (1, 2, 4)]
        assert slopes[0] > slopes[1] > slopes[2]   # fewer decades lost per step with longer delays
        for d in (1, 2, 4):
            assert narx[how, d]["prediction"]["log10_slope"] == pytest.approx(slopes[0] / d)
    assert all(r["prediction"]["log10_slope"] is None for r in runs if r["cell"] != "narx")
    # every scalar of a run but its measurements names its configuration (the lab's summaries group
    # seeds by them): the seeds of one configuration differ only in seed_index and the measurements
    measured = {"loss", "log10_ratio_h", "log10_slope", "seed_index"}
    two = run("narx", delays=[1], narx_inits=["torch"], cells=["rnn"], T=10, hidden=3, batch=2, input_size=2, seeds=2)
    for a, b in zip(two["runs"][0::2], two["runs"][1::2]):
        assert {k for k, v in a.items() if not isinstance(v, (list, dict)) and v != b[k]} <= measured


def test_measure_narx_is_the_engines_gradient():
    """The last step's gradient is d MSE / d h_T = 2 (h_T - target) / h_T.size; the one before it,
    for D = 2, is what backward through one NARX step gives (checked against the module)."""
    rng = np.random.default_rng(0)
    cell = nn.NARXCell(2, 3, delay=2, dtype=np.float64, rng=0)
    xs, target = rng.normal(size=(5, 4, 2)), rng.normal(size=(4, 3))
    m = arch.measure_narx(cell, xs, target)
    model = nn.NARX(2, 3, delay=2, dtype=np.float64)
    model.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    out, _ = model(xs)
    want = 2 * (out.data[-1] - target) / target.size
    assert m["grad_h_norm"][-1] == pytest.approx(np.linalg.norm(want), rel=1e-12)
    steps = [tg.Tensor(out.data[t], requires_grad=True) for t in range(5)]
    loss = tg.functional.mse_loss(cell(xs[4], [steps[3], steps[2]]), target)
    loss.backward()
    assert m["grad_h_norm"][4] == pytest.approx(np.linalg.norm(steps[3].grad), rel=1e-10)


def test_cost_estimates_grow_with_the_sizes():
    small = arch.estimate_arch_cost("arch-depth", dict(depths=[10], variants=["dense"]))
    big = arch.estimate_arch_cost("arch-depth", dict(depths=[100], variants=["dense"]))
    plain = arch.estimate_arch_cost("arch-depth", dict(depths=[100], variants=["plain"]))
    assert all(c > 0 and math.isfinite(c) for c in small + big)
    assert big[0] > 30 * small[0] and big[0] > 10 * plain[0]   # a dense net keeps O(depth^2) features
    bytes_, seconds = arch.estimate_arch_cost("narx", {})
    assert bytes_ > 0 and seconds > 0


def test_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from tinygrad_vg.lab.plots_arch import ARCH_CAPTIONS, arch_figure_files, plot_arch
    for name, options in (("arch-seed-figure", dict(variants=["plain", "dense+wn"], **SMALL)),
                          ("arch-depth", dict(depths=[3, 6], variants=["plain", "plain+wn"], width=4, batch=4)),
                          ("narx", dict(delays=[1, 2], T=30, hidden=4, batch=2, input_size=2))):
        data = json.loads(json.dumps(run(name, **options)))   # from its JSON, as the CLI's plot reads it
        paths = plot_arch(data, tmp_path)
        assert [p.name for p in paths] == arch_figure_files(data)
        for p in paths:
            assert p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG" and p.name in ARCH_CAPTIONS
    with pytest.raises(ValueError, match="no figure for experiment 'depth'; accepted: arch-seed-figure"):
        plot_arch({"experiment": "depth", "runs": [{}]}, tmp_path)
    with pytest.raises(ValueError, match="the narx data has no runs"):
        plot_arch({"experiment": "narx", "runs": []}, tmp_path)
