"""The `tinygrad-vg` command: runs experiments, writes exactly run_experiment's dict,
and answers bad input with a message and a non-zero exit instead of a traceback."""
import json

import pytest

from tinygrad_vg.cli import main
from tinygrad_vg.lab import run_experiment


def test_list_names_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("seed-figure", "activations", "init", "depth", "recurrent", "learning-speed"):
        assert name in out


def test_run_writes_the_experiment_dict_and_figures(tmp_path, capsys):
    code = main(["run", "depth", "--depths", "3,6", "--kinds", "plain,residual", "--norms", "none",
                 "--seed", "4", "--out", str(tmp_path)])
    assert code == 0
    written = json.loads((tmp_path / "depth.json").read_text())
    expected = run_experiment("depth", depths=[3, 6], kinds=["plain", "residual"], norms=["none"], seed=4)
    assert written == json.loads(json.dumps(expected))
    assert (tmp_path / "depth.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "log10_ratio_h" in out and "plain" in out
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").exists()


@pytest.mark.parametrize("argv, message", [
    (["run", "depth", "--depths", "five"], "--depths: 'five' is not a int"),
    (["run", "depth", "--kinds", "dense", "--no-plot"], "unknown kind 'dense'; accepted: plain, residual, highway"),
    (["run", "nope"], "invalid choice: 'nope'"),
    (["run", "depth", "--widht", "3"], "unrecognized arguments: --widht"),
])
def test_bad_options_exit_nonzero_with_a_message(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        code = main(argv + ["--out", str(tmp_path)])
        raise SystemExit(code)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_report_of_an_empty_directory_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no experiment JSON files" in capsys.readouterr().err
