"""The lab reproduces the seeds' findings, in log10 decades, on several seeds each."""
import math

import pytest

from tinygrad_vg.lab import run_experiment

SEEDS = [0, 1, 2, 3, 4]


def by(runs, **config):
    hits = [r for r in runs if all(r.get(k) == v for k, v in config.items())]
    assert len(hits) == 1, (config, len(hits))
    return hits[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_plain_tanh_vanishes_residual_does_not(seed):
    data = run_experiment("depth", depths=[20], kinds=["plain", "residual", "highway"], norms=["none"],
                          seed=seed)
    plain = by(data["runs"], kind="plain")["log10_ratio_h"]
    residual = by(data["runs"], kind="residual")["log10_ratio_h"]
    highway = by(data["runs"], kind="highway")["log10_ratio_h"]
    assert plain <= -3.0                  # at least 3 decades lost over 20 layers
    assert residual >= 0.0                # the residual net loses none
    # carry path: about (1 - sigmoid(-2)) = 0.88 per layer -> 20 * log10(0.88) = -1.1 decades
    assert -1.6 <= highway <= -0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_loses_far_more_than_tanh(seed):
    data = run_experiment("activations", activations=["sigmoid", "tanh"], seed=seed)
    sigmoid = by(data["runs"], activation="sigmoid")["log10_ratio_h"]
    tanh = by(data["runs"], activation="tanh")["log10_ratio_h"]
    assert sigmoid <= tanh - 5.0


def test_deep_linear_net_slope_matches_log10_s():
    errors = []
    for seed in range(8):
        data = run_experiment("init", inits=[], scales=[0.5, 0.8, 1.0, 1.25, 2.0], seed=seed)
        for run in data["runs"]:
            errors.append(run["log10_gain_per_layer"] - math.log10(run["scale"]))
    assert max(abs(e) for e in errors) <= 0.05, errors


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_vanilla_rnn_loses_twelve_decades_over_100_steps(seed):
    data = run_experiment("recurrent", cells=["rnn", "lstm"], T=100, gate_biases=[2.0], seed=seed)
    rnn = by(data["runs"], cell="rnn")
    lstm = by(data["runs"], cell="lstm")
    assert rnn["log10_ratio_h"] is None or rnn["log10_ratio_h"] <= -12.0
    assert lstm["log10_ratio_h"] > rnn["log10_ratio_h"] + 6.0   # the forget gate keeps it far better


def test_results_have_the_common_shape_and_are_reproducible():
    a = run_experiment("depth", depths=[3], kinds=["plain"], norms=["none"], seed=7)
    b = run_experiment("depth", depths=[3], kinds=["plain"], norms=["none"], seed=7)
    # everything but the provenance's wall time and finishing time
    assert a.pop("provenance")["kernel_backend"] == b.pop("provenance")["kernel_backend"]
    assert a == b
    run = a["runs"][0]
    for key in ("kind", "activation", "init", "depth", "width", "seed", "grad_h_norm", "grad_W_norm",
                "log10_ratio_h"):
        assert key in run
    assert len(run["grad_h_norm"]) == 4 and len(run["grad_W_norm"]) == 3


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="unknown experiment 'nope'; accepted: seed-figure"):
        run_experiment("nope")
    with pytest.raises(ValueError, match=r"no option\(s\) \['widht'\]"):
        run_experiment("depth", widht=3)
    with pytest.raises(ValueError, match="--kinds: unknown value 'capsule'; accepted: plain, residual, highway, dense"):
        run_experiment("depth", kinds=["capsule"])
    with pytest.raises(ValueError, match="--cells: unknown value 'rnm'"):
        run_experiment("recurrent", cells=["rnm"])


@pytest.mark.parametrize("name, options", [
    ("depth", dict(depths=[150], kinds=["highway"], norms=["batch"])),
    ("recurrent", dict(cells=["lstm"], T=300, gate_biases=[0.0])),
    ("seed-figure", dict(kinds=["residual"], depth=100, steps=5)),
])
def test_the_memory_estimate_errs_high_but_within_4x(name, options):
    """estimate_cost is what the CLI refuses sizes with: it must not say a run fits when it
    does not, nor refuse runs four times too small."""
    import tracemalloc

    from tinygrad_vg.lab import estimate_cost
    tracemalloc.start()
    try:
        run_experiment(name, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    need, seconds = estimate_cost(name, options)
    assert peak <= need <= 4 * peak and seconds > 0
