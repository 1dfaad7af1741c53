"""The `tinygrad-vg` command: runs experiments, writes exactly run_experiment's dict, keeps
finished configurations for a resumed run, and describes every option in whole sentences
with defaults as typed. Its answers to bad input and faults (one line, an exit code, no
traceback) are tried in test_reliability.py, through the real entry point."""
import json
import re

import pytest

from tinygrad_vg.cli import _typed, build_parser, main
from tinygrad_vg.lab import EXPERIMENTS, OPTIONS, experiment_options, run_experiment


def test_list_names_every_experiment_with_its_whole_description(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    flowing = " ".join(out.split())   # the listing wraps lines; the words must all be there
    for name, fn in EXPERIMENTS.items():
        assert f"\n{name}\n" in "\n" + out
        assert " ".join(fn.__doc__.split()) in flowing   # the whole description, not cut mid-sentence
        for option, default in experiment_options(name).items():
            assert f"--{option.replace('_', '-')} (default: {_typed(default)})" in out
    assert "('" not in out and "['" not in out and "(5, " not in out   # defaults as typed, not as Python shows them
    assert "Seed 0" not in out and "`" not in out


def _helps(parser):
    """(parser, action) of every argument of every sub-command."""
    for action in parser._actions:
        yield parser, action
        for sub in getattr(action, "choices", None) or {}:
            if hasattr(action.choices[sub], "_actions"):
                yield from _helps(action.choices[sub])


def test_every_argument_has_help_in_whole_sentences_with_defaults_as_typed():
    checked = 0
    for parser, action in _helps(build_parser()):
        if action.dest == "command" or action.dest == "experiment":
            continue
        text = action.help
        assert text and text[0].isupper(), (parser.prog, action.dest, text)
        assert text.rstrip(")").endswith(".") or re.search(r"\.( \(default: [^)]*\))$", text), text
        if action.dest in OPTIONS:
            default = experiment_options(parser.prog.split()[-1])[action.dest]
            assert text.endswith(f"(default: {_typed(default)})")
            assert "'" not in text.split("(default:")[1] and "[" not in text
        checked += 1
    assert checked > 60


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_run_help_shows_the_whole_description_without_internal_labels(name, capsys):
    assert main(["run", name, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    description = " ".join(EXPERIMENTS[name].__doc__.split())
    assert description in out and description.endswith(".")
    assert not re.search(r"Seed 0\d\d|seed 0\d\d|`", out)
    assert "('" not in out and "['" not in out and "(5, " not in out   # defaults as typed, not as Python shows them


@pytest.mark.parametrize("command", ["report", "demo"])
def test_report_and_demo_help_describe_their_arguments(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    if command == "report":
        assert "DIR" in out and "The directory that `tinygrad-vg run --out DIR` wrote" in out and "--skip-bad" in out
    else:
        assert "--out DIR" in out and "The directory for the JSON and PNG files" in out


def _same_results(written, expected):
    """Equal results: every field, the provenance too except when and how long it ran."""
    def strip(d):
        d = json.loads(json.dumps(d))
        assert d["provenance"]["wall_time_s"] > 0 and d["provenance"]["finished_utc"]
        d["provenance"] = {k: v for k, v in d["provenance"].items() if k not in ("wall_time_s", "finished_utc")}
        return d
    return strip(written) == strip(expected)


def test_run_writes_the_experiment_dict_and_figures(tmp_path, capsys):
    code = main(["run", "depth", "--depths", "3,6", "--kinds", "plain,residual", "--norms", "none",
                 "--seed", "4", "--out", str(tmp_path)])
    assert code == 0
    written = json.loads((tmp_path / "depth.json").read_text())
    expected = run_experiment("depth", depths=[3, 6], kinds=["plain", "residual"], norms=["none"], seed=4)
    assert _same_results(written, expected)
    assert (tmp_path / "depth.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert out.startswith("depth: about ") and "results go to" in out.splitlines()[0]
    assert "log10_ratio_h" in out and "plain" in out
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".tinygrad-vg-runs"]


def test_a_second_run_reuses_kept_configurations_and_computes_only_new_ones(tmp_path, capsys):
    argv = ["run", "depth", "--kinds", "plain", "--norms", "none", "--no-plot", "--out", str(tmp_path)]
    assert main(argv + ["--depths", "3,6"]) == 0
    kept = sorted((tmp_path / ".tinygrad-vg-runs").iterdir())
    assert len(kept) == 2
    capsys.readouterr()
    assert main(argv + ["--depths", "3,6,9"]) == 0
    assert "2 of 3 configurations kept from an earlier run" in capsys.readouterr().out
    assert _same_results(json.loads((tmp_path / "depth.json").read_text()),
                         run_experiment("depth", depths=[3, 6, 9], kinds=["plain"], norms=["none"]))
    # a damaged kept file is computed again, not trusted
    kept[0].write_text("{")
    assert main(argv + ["--depths", "3,6"]) == 0
    assert "1 of 2 configurations kept" in capsys.readouterr().out
    assert main(argv + ["--depths", "3,6", "--fresh"]) == 0
    assert "kept from an earlier run" not in capsys.readouterr().out


def test_options_change_the_key_of_a_kept_configuration(tmp_path):
    from tinygrad_vg.lab import ResultStore
    store = ResultStore(tmp_path)
    config = dict(kind="plain", depth=3, width=20, seed=0)
    assert store.path("depth", config) == store.path("depth", dict(config))
    assert store.path("depth", config) != store.path("depth", {**config, "seed": 1})
    assert store.path("depth", config) != store.path("init", config)


def test_another_kernel_backend_or_changed_code_does_not_reuse_kept_results(tmp_path, monkeypatch):
    from tinygrad_vg import kernels
    from tinygrad_vg.lab import ResultStore, experiments
    monkeypatch.setattr(experiments, "_FINGERPRINT", [])   # not one an earlier test cached
    path = ResultStore(tmp_path).path("depth", {"depth": 3})
    monkeypatch.undo()
    other = "numpy" if kernels.BACKEND == "compiled" else "compiled"
    monkeypatch.setattr(kernels, "BACKEND", other)
    monkeypatch.setattr(experiments, "_FINGERPRINT", [])
    assert ResultStore(tmp_path).path("depth", {"depth": 3}) != path
    monkeypatch.undo()
    monkeypatch.setattr(experiments, "_FINGERPRINT", ["code of another day"])
    assert ResultStore(tmp_path).path("depth", {"depth": 3}) != path


# ----- sweep -----------------------------------------------------------------------------
SWEEP_TOML = """experiment = "depth"
seeds = 2
[grid]
kinds = ["plain", "residual"]
depths = [2, 3]
[options]
norms = ["none"]
width = 4
batch = 3
"""


@pytest.fixture
def _loky_shut_down_after():
    """joblib keeps its loky workers for the next sweep; not for the rest of the suite."""
    yield
    from joblib.externals.loky import get_reusable_executor
    get_reusable_executor().shutdown(wait=True)


@pytest.mark.usefixtures("_loky_shut_down_after")
def test_sweep_writes_the_tables_and_plot_prints_mean_sd_n_and_resumes(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SWEEP_TOML)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--jobs", "2"]) == 0
    text = capsys.readouterr().out
    assert "8 points (4 configurations x 2 seeds) on 2 local processes" in text
    assert "log10_ratio_h mean +- sd (n)" in text and " +- " in text and "(2)" in text
    for name in ("runs.csv", "runs.jsonl", "sweep.json", "sweep_log10_ratio_h.png"):
        assert (out / name).is_file() and f"wrote {out / name}" in text
    rows = (out / "runs.jsonl").read_text()
    assert main(["sweep", str(spec), "--out", str(out), "--jobs", "1", "--no-plot"]) == 0
    assert "0 points computed" in capsys.readouterr().out and "8 kept from an earlier run"
    assert [json.loads(line)["point"] for line in (out / "runs.jsonl").read_text().splitlines()] == \
        [json.loads(line)["point"] for line in rows.splitlines()]


@pytest.mark.parametrize("args, message", [
    (["sweep", "{dir}/missing.toml"], "sweep: no such sweep file: {dir}/missing.toml"),
    (["sweep", "{dir}/s.toml", "--jobs", "0"], "argument --jobs: '0' is not a whole number >= 1"),
    (["sweep", "{dir}/s.toml", "--scheduler", "nonsense"], "--scheduler 'nonsense' is not a scheduler address"),
    (["sweep", "{dir}/s.toml", "--scheduler", "tcp://h:1", "--dask-local", "2"], "not allowed with argument"),
    (["sweep", "{dir}/s.toml", "--dask-local", "2", "--jobs", "2"], "--jobs is for this machine's processes"),
    (["run", "depth", "--seeds", "0"], "--seeds must be a count >= 1 or a list of seed indices >= 0; got 0"),
    (["run", "depth", "--seeds", "1,x"], "'1,x' is not a count or a list of seed indices"),
])
def test_sweep_and_seeds_usage_errors_are_one_line_with_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    assert main([a.format(dir=tmp_path) for a in args] + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(dir=tmp_path) in err and "Traceback" not in err


def test_sweep_on_dask_without_dask_says_what_to_install(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "dask.distributed", None)   # import fails as if not installed
    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    for option in (["--dask-local", "2"], ["--scheduler", "tcp://127.0.0.1:8786"]):
        assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")] + option) == 2
        err = capsys.readouterr().err
        assert err == ("tinygrad-vg: error: sweep: running on Dask needs dask and distributed: "
                       "pip install 'tinygrad_vg[cluster]'\n")


def test_sweep_with_an_unreachable_scheduler_fails_in_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("TINYGRAD_VG_DASK_TIMEOUT", "0.5")
    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-vg: error: sweep: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert err.count("\n") == 1


def test_sweep_with_a_failing_run_writes_the_others_and_exits_1(tmp_path, capsys, monkeypatch):
    import functools

    from tinygrad_vg.lab import experiments
    real = experiments.EXPERIMENTS["depth"]

    @functools.wraps(real)
    def flaky(**options):
        if options["depths"] == [3] and options["kinds"] == ["residual"]:
            raise ValueError("no residual today")
        return real(**options)
    monkeypatch.setitem(experiments.EXPERIMENTS, "depth", flaky)
    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    out = tmp_path / "o"
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(out), "--jobs", "1", "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert err == (f"tinygrad-vg: error: 2 of 8 runs failed (first: ValueError: no residual today); the other runs "
                   f"are written, the tracebacks are in {out / 'runs.jsonl'}, and the same command runs the failed "
                   "points again\n")
    import csv
    with open(out / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows].count("failed") == 2 and len(rows) == 8
    assert all("Traceback" in r["traceback"] for r in rows if r["status"] == "failed")


def test_run_with_seeds_writes_every_run_and_the_summaries(tmp_path, capsys):
    assert main(["run", "depth", "--depths", "3", "--kinds", "plain", "--norms", "none", "--seeds", "3",
                 "--out", str(tmp_path), "--no-plot"]) == 0
    data = json.loads((tmp_path / "depth.json").read_text())
    assert [r["seed_index"] for r in data["runs"]] == [0, 1, 2] and data["summaries"][0]["seeds"] == [0, 1, 2]
    assert data["provenance"]["seeds"] == [0, 1, 2]
    assert "log10_ratio_h mean +- sd (n)" in capsys.readouterr().out
