"""Sweeps: the TOML specification, the grid, joblib and Dask runs giving the same rows as
run_experiment, resumption, failed runs recorded, the summaries and the summary plot."""
import functools
import json

import pytest

from tinygrad_vg.lab import experiments, run_experiment
from tinygrad_vg.lab.sweep import (ROW_FILE, SweepError, expand, load_spec, parse_spec, run_sweep, summarise_rows,
                                   summary_table)

SPEC = {"experiment": "depth", "seeds": 2,
        "grid": {"kinds": ["plain", "residual"], "activation": ["tanh", "relu"], "depths": [2, 4]},
        "options": {"norms": ["none"], "width": 5, "batch": 3}}
RUN_FIELDS = ("wall_time_s", "cpu_time_s", "worker")


@pytest.fixture(autouse=True, scope="module")
def _no_idle_workers_left():
    """joblib keeps its loky workers (and a manager thread here) for the next sweep; the rest
    of the suite should not share this process with them."""
    yield
    from joblib.externals.loky import get_reusable_executor
    get_reusable_executor().shutdown(wait=True)


def _what(rows):
    """The rows without how they ran (time, process): what must not depend on where."""
    return [{k: v for k, v in r.items() if k not in RUN_FIELDS} for r in rows]


def _expected_rows(spec):
    """The same runs through run_experiment, one call for the whole grid."""
    data = run_experiment("depth", kinds=spec.grid["kinds"], depths=spec.grid["depths"], seeds=spec.seeds,
                          **spec.options)
    by_config = {}
    for act in spec.grid["activation"]:
        for run in run_experiment("depth", kinds=spec.grid["kinds"], depths=spec.grid["depths"], seeds=spec.seeds,
                                  activation=act, **spec.options)["runs"]:
            by_config[(run["kind"], act, run["depth"], run["seed_index"])] = run
    assert data["runs"]
    return by_config


def test_expand_gives_every_combination_times_every_seed_index():
    spec = parse_spec(SPEC)
    points = expand(spec)
    assert len(points) == 2 * 2 * 2 * 2 and len({p["key"] for p in points}) == 16
    assert points[0]["options"]["kinds"] == ["plain"] and points[0]["options"]["activation"] == "tanh"
    assert [p["seed_index"] for p in points[:4]] == [0, 1, 0, 1]


def test_ranges_expand_to_values():
    spec = parse_spec({**SPEC, "options": {}, "grid": {"depths": {"start": 5, "stop": 200, "num": 4, "log": True},
                                                       "width": {"start": 4, "stop": 10, "step": 3}}})
    assert spec.grid["depths"] == [5, 17, 58, 200] and spec.grid["width"] == [4, 7, 10]


@pytest.mark.parametrize("change, message", [
    ({"experiment": "nope"}, "experiment = 'nope' is not an experiment; accepted: seed-figure"),
    ({"grid": {"colour": ["red"]}}, "has no option 'colour' to sweep or fix; accepted:"),
    ({"grid": {"kinds": ["plain", "square"]}}, "--kinds: unknown value 'square'; accepted: plain"),
    ({"grid": {"batch": [4, 0]}, "options": {}}, "--batch must be a whole number >= 1; got 0"),
    ({"grid": {"depths": []}}, "grid.depths must be a non-empty list"),
    ({"grid": {"depths": {"start": 5, "stop": 1, "step": 1}}}, "needs step > 0 and stop >= start"),
    ({"grid": {"depths": {"from": 5}}}, "a range is {start, stop, num}"),
    ({"seeds": 0}, "--seeds must be a count >= 1"),
    ({"grid": {"seeds": [1, 2]}}, "seeds are given at the top level"),
    ({"options": {"width": 5, "depths": [3]}}, "both swept in [grid] and fixed in [options]"),
    ({"plot": {"x": "width"}}, "plot.x = 'width' is not a swept option"),
    ({"colour": 1}, "unknown key(s) ['colour']"),
])
def test_a_bad_spec_is_refused_naming_what_is_wrong(change, message):
    with pytest.raises(SweepError) as e:
        parse_spec({**SPEC, **change})
    assert message in str(e.value)


def test_a_file_that_is_not_toml_is_refused_with_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('experiment = "depth"\n[grid\n')
    with pytest.raises(SweepError, match=r"bad.toml is not valid TOML: .*line 2"):
        load_spec(path)
    with pytest.raises(SweepError, match="no such sweep file"):
        load_spec(tmp_path / "missing.toml")


def test_the_shipped_sweep_is_valid_and_is_the_issue_grid():
    from pathlib import Path
    spec = load_spec(Path(__file__).resolve().parents[2] / "sweeps" / "depth-by-init.toml")
    assert spec.experiment == "depth" and len(spec.seeds) == 10
    assert spec.grid["kinds"] == ["plain", "residual", "highway"] and len(spec.grid["init"]) == 4
    assert spec.grid["activation"] == ["tanh", "relu", "sigmoid"] and spec.grid["depths"][-1] == 200


def test_local_sweep_rows_equal_run_experiment_and_resume_computes_only_what_is_missing(tmp_path):
    spec = parse_spec(SPEC)
    first = run_sweep(spec, tmp_path, jobs=2, plot=False)
    assert (first.computed, first.reused, first.failed) == (16, 0, 0)
    expected = _expected_rows(spec)
    assert len(first.rows) == len(expected) == 16
    for row in first.rows:
        run = expected[(row["kind"], row["activation"], row["depth"], row["seed_index"])]
        assert row["status"] == "ok"
        assert {k: row[k] for k in run if not isinstance(run[k], list)} == \
            {k: v for k, v in run.items() if not isinstance(v, list)}
    # an interruption: five points' rows lost, the last line cut short
    path = tmp_path / ROW_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:11]) + "\n" + lines[11][:25])
    again = run_sweep(spec, tmp_path, jobs=2, plot=False)
    assert (again.computed, again.reused) == (5, 11)
    assert _what(again.rows) == _what(first.rows)
    assert _what(json.loads(line) for line in path.read_text().splitlines()) == _what(first.rows)
    csv_lines = (tmp_path / "runs.csv").read_text().splitlines()
    assert len(csv_lines) == 17 and csv_lines[0].startswith("point,experiment,seed_index,kind")
    record = json.loads((tmp_path / "sweep.json").read_text())
    assert record["provenance"]["seeds"] == [0, 1] and record["reused"] == 11 and len(record["summaries"]) == 8


def test_a_run_that_raises_is_recorded_with_its_traceback_and_the_others_finish(tmp_path, monkeypatch):
    real = experiments.EXPERIMENTS["depth"]

    @functools.wraps(real)   # the same signature: the same options
    def flaky(**options):
        if options["depths"] == [4] and options["activation"] == "relu":
            raise RuntimeError("boom at depth 4")
        return real(**options)
    monkeypatch.setitem(experiments.EXPERIMENTS, "depth", flaky)
    spec = parse_spec(SPEC)
    result = run_sweep(spec, tmp_path, jobs=1, plot=False)   # in this process, where the patch is
    failed = [r for r in result.rows if r["status"] != "ok"]
    assert result.failed == len(failed) == 4 and len(result.rows) == 16
    assert {(r["kind"], r["activation"], r["depth"]) for r in failed} == {("plain", "relu", 4), ("residual", "relu", 4)}
    assert all(r["error"] == "RuntimeError: boom at depth 4" and "Traceback" in r["traceback"]
               and "boom at depth 4" in r["traceback"] for r in failed)
    summary = {(e["kind"], e["activation"], e["depth"]): e for e in summarise_rows(result.rows, spec)}
    assert summary[("plain", "relu", 4)]["failed"] == 2 and summary[("plain", "relu", 4)]["seeds"] == 0
    monkeypatch.setitem(experiments.EXPERIMENTS, "depth", real)
    again = run_sweep(spec, tmp_path, jobs=1, plot=False)   # the failed points are run again, only they
    assert (again.computed, again.reused, again.failed) == (4, 12, 0)


def test_summaries_and_the_table_give_mean_sd_n_over_seeds(tmp_path):
    spec = parse_spec(SPEC)
    result = run_sweep(spec, tmp_path, jobs=1, plot=True)
    entry = result.summaries[0]
    values = [r["log10_ratio_h"] for r in result.rows
              if (r["kind"], r["activation"], r["depth"]) == (entry["kind"], entry["activation"], entry["depth"])]
    assert entry["seeds"] == 2 and entry["stats"]["log10_ratio_h"]["mean"] == pytest.approx(sum(values) / 2)
    headers, rows = summary_table(result.summaries, spec)
    assert headers[:3] == ["kind", "activation", "depth"] and len(rows) == 8
    assert rows[0][3].endswith("(2)") and " +- " in rows[0][3]
    png = tmp_path / "sweep_log10_ratio_h.png"
    assert png in result.files and png.stat().st_size > 10_000


def test_dask_local_cluster_rows_equal_the_local_rows(tmp_path):
    pytest.importorskip("distributed")
    from tinygrad_vg.lab.sweep import close_client, dask_client
    spec = parse_spec(SPEC)
    local = run_sweep(spec, tmp_path / "local", jobs=1, plot=False)   # in this process
    client = dask_client(local_workers=2)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in client.scheduler_info()["workers"])
        on_dask = run_sweep(spec, tmp_path / "dask", client=client, plot=False)
    finally:
        close_client(client)
    assert on_dask.failed == 0 and _what(on_dask.rows) == _what(local.rows)
    assert (tmp_path / "dask" / "runs.csv").read_text().count("\n") == 17


def test_progress_says_how_long_is_left_from_the_points_run_so_far(monkeypatch):
    from tinygrad_vg.lab import sweep
    clock = iter([10.0])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))
    # 4 of 10 points done in 8 s, 1 of them kept from an earlier run: 2.67 s a point, 6 to go
    assert sweep._eta_note(4, 10, start=2.0, already=1) == "16 s left"
    clock = iter([2.0 + 600])
    assert sweep._eta_note(4, 10, start=2.0, already=1) == "20.0 min left"
    assert sweep._eta_note(1, 10, start=2.0, already=1) == ""   # nothing run yet: no estimate


def test_a_field_the_runs_of_one_point_differ_in_is_part_of_the_configuration(tmp_path):
    spec = parse_spec({**SPEC, "grid": {"depths": [2, 3]}, "options": {"norms": ["none", "batch"], "width": 4,
                                                                       "batch": 3, "kinds": ["plain"]}})
    result = run_sweep(spec, tmp_path, jobs=1, plot=False)
    assert [(e["depth"], e["norm"], e["seeds"]) for e in result.summaries] == [
        (2, "none", 2), (2, "batch", 2), (3, "none", 2), (3, "batch", 2)]
    assert list(result.summaries[0])[:2] == ["depth", "norm"] and "gate_bias" not in result.summaries[0]


def test_a_local_dask_cluster_leaves_this_process_environment_as_it_was():
    pytest.importorskip("distributed")
    import os

    from tinygrad_vg.lab.sweep import close_client, dask_client
    before = dict(os.environ)
    client = dask_client(local_workers=1)
    try:
        assert dict(os.environ) == before
    finally:
        close_client(client)
    assert dict(os.environ) == before
