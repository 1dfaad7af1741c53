"""Seeds as a dimension: SeedSequence streams, summaries over seeds, provenance."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tinygrad_vg.lab import run_experiment
from tinygrad_vg.lab.experiments import seed_indices, seed_streams
from tinygrad_vg.lab.stats import describe, mean_sd_text, summarise

SMALL = dict(depths=[3], kinds=["plain", "residual"], norms=["none"], width=6, batch=4)


def test_describe_matches_numpy_and_student_t():
    rng = np.random.default_rng(3)
    values = rng.normal(size=7).tolist()
    d = describe(values)
    a = np.asarray(values)
    half = scipy_stats.t.ppf(0.975, 6) * a.std(ddof=1) / math.sqrt(7)
    assert d["n"] == 7 and d["missing"] == 0
    assert d["mean"] == pytest.approx(a.mean()) and d["sd"] == pytest.approx(a.std(ddof=1))
    assert (d["min"], d["max"], d["median"]) == (a.min(), a.max(), pytest.approx(np.median(a)))
    assert d["ci95"] == pytest.approx([a.mean() - half, a.mean() + half])


def test_describe_counts_unmeasurable_values_as_missing_and_needs_two_for_a_spread():
    d = describe([1.5, None, float("inf")])
    assert (d["n"], d["missing"], d["mean"], d["sd"], d["ci95"]) == (1, 2, 1.5, None, None)
    assert describe([None])["mean"] is None
    assert mean_sd_text(describe([1.0, 2.0, 3.0])) == "+2.00 +- 1.00 (3)"
    assert mean_sd_text(describe([1.0, None])) == "+1.00 +- n/a (1, 1 missing)"


def test_seed_indices_accept_a_count_or_a_list_and_refuse_the_rest():
    assert seed_indices(3) == [0, 1, 2] and seed_indices([4, 1]) == [4, 1]
    for bad in (0, -1, [], [1, 1], [-2], 2.5, "3", True):
        with pytest.raises(ValueError, match="--seeds"):
            seed_indices(bad)
    with pytest.raises(ValueError, match="--seeds"):
        run_experiment("depth", seeds=0, **SMALL)


def test_seed_streams_are_the_spawned_children_of_the_root_seed():
    children = np.random.SeedSequence(5).spawn(4)
    for index in (0, 3):
        data, init = seed_streams(5, index)
        expected = [np.random.default_rng(s) for s in children[index].spawn(2)]
        assert np.array_equal(data.normal(size=3), expected[0].normal(size=3))
        assert np.array_equal(init.normal(size=3), expected[1].normal(size=3))
    assert not np.array_equal(seed_streams(5, 0)[0].normal(size=3), seed_streams(5, 1)[0].normal(size=3))


def test_each_seed_index_is_its_own_run_and_the_same_wherever_it_is_computed():
    three = run_experiment("depth", seeds=3, **SMALL)
    assert [(r["kind"], r["seed_index"]) for r in three["runs"]] == [
        (k, i) for k in ("plain", "residual") for i in range(3)]
    ratios = [r["log10_ratio_h"] for r in three["runs"] if r["kind"] == "plain"]
    assert len(set(ratios)) == 3   # independent streams
    alone = run_experiment("depth", seeds=[2], **SMALL)
    assert alone["runs"][0] == three["runs"][2] and alone["runs"][1] == three["runs"][5]


def test_kinds_within_a_seed_index_share_data_and_initial_weights():
    # depth 1, linear activation: plain computes W x + b, residual x + W x + b from the same draws,
    # so their losses differ by exactly the residual's added input when the draws are shared
    from tinygrad_vg import nn
    from tinygrad_vg.lab.experiments import _data
    data_rng, init_rng = seed_streams(0, 1)
    x, y = _data(data_rng, 4, 5)
    plain = nn.deep_mlp("plain", 5, 1, "linear", init="standard", dtype=np.float64, rng=seed_streams(0, 1)[1])
    residual = nn.deep_mlp("residual", 5, 1, "linear", init="standard", dtype=np.float64, rng=init_rng)
    assert np.array_equal(plain.blocks[0].linear.weight.data, residual.blocks[0].linear.weight.data)
    runs = run_experiment("depth", depths=[1], kinds=["plain", "residual"], norms=["none"], activation="linear",
                          width=5, batch=4, seeds=[1])["runs"]
    out = x @ plain.blocks[0].linear.weight.data.T + plain.blocks[0].linear.bias.data
    assert runs[0]["loss"] == pytest.approx(np.mean((out - y) ** 2))
    assert runs[1]["loss"] == pytest.approx(np.mean((out + x - y) ** 2))


def test_summaries_describe_each_configuration_over_its_seeds():
    data = run_experiment("depth", seeds=4, **SMALL)
    assert [s["kind"] for s in data["summaries"]] == ["plain", "residual"]
    for entry in data["summaries"]:
        values = [r["log10_ratio_h"] for r in data["runs"] if r["kind"] == entry["kind"]]
        assert entry["seeds"] == [0, 1, 2, 3]
        assert entry["stats"]["log10_ratio_h"]["mean"] == pytest.approx(np.mean(values))
        assert entry["stats"]["log10_ratio_h"]["sd"] == pytest.approx(np.std(values, ddof=1))
    assert summarise(data["runs"]) == data["summaries"]


def test_every_result_carries_its_provenance():
    from tinygrad_vg import __version__, kernels
    p = run_experiment("depth", seeds=2, **SMALL)["provenance"]
    assert p["version"] == __version__ and p["kernel_backend"] == kernels.BACKEND
    assert p["numpy"] == np.__version__ and p["seeds"] == [0, 1] and p["options"]["seeds"] == 2
    assert p["wall_time_s"] > 0 and p["machine"]["cores"] >= 1 and p["finished_utc"]
    assert p["git"] is None or len(p["git"]["commit"]) == 40


def test_the_terminal_table_prints_mean_sd_and_n_over_seeds():
    from tinygrad_vg.lab.report import summary_rows
    headers, rows = summary_rows(run_experiment("depth", seeds=3, **SMALL))
    assert "log10_ratio_h mean +- sd (n)" in headers and "seed" not in headers and len(rows) == 2
    assert all(row[headers.index("log10_ratio_h mean +- sd (n)")].endswith("(3)") for row in rows)


def test_collapse_seeds_gives_the_median_line_and_the_min_max_band_per_configuration():
    from tinygrad_vg.lab.stats import collapse_seeds
    data = run_experiment("depth", seeds=3, **SMALL)
    merged = collapse_seeds(data["runs"])
    assert [(m["kind"], m["n_seeds"], m["seed_index"]) for m in merged] == [("plain", 3, [0, 1, 2]),
                                                                            ("residual", 3, [0, 1, 2])]
    for m in merged:
        runs = [r for r in data["runs"] if r["kind"] == m["kind"]]
        norms = np.array([r["grad_h_norm"] for r in runs])
        assert m["grad_h_norm"] == pytest.approx(np.median(norms, axis=0).tolist())
        assert m["grad_h_norm_min"] == pytest.approx(norms.min(axis=0).tolist())
        assert m["grad_h_norm_max"] == pytest.approx(norms.max(axis=0).tolist())
        ratios = [r["log10_ratio_h"] for r in runs]
        assert (m["log10_ratio_h_min"], m["log10_ratio_h_max"]) == (min(ratios), max(ratios))
        assert m["log10_ratio_h"] == pytest.approx(np.median(ratios))
    one = run_experiment("depth", seeds=1, **SMALL)["runs"]
    assert collapse_seeds(one) == [{**r, "n_seeds": 1} for r in one]


def test_an_unmeasurable_seed_is_left_out_of_the_median_not_counted_as_zero():
    from tinygrad_vg.lab.stats import collapse_seeds
    runs = [{"kind": "plain", "seed_index": i, "log10_ratio_h": v, "grad_h_norm": [1.0, n]}
            for i, (v, n) in enumerate([(-2.0, 0.5), (None, None), (-4.0, 0.25)])]
    (merged,) = collapse_seeds(runs)
    assert merged["log10_ratio_h"] == -3.0 and merged["grad_h_norm"] == [1.0, 0.375]
    assert merged["log10_ratio_h_min"] == -4.0 and merged["log10_ratio_h_max"] == -2.0
