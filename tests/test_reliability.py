"""Every bad input and fault the project is tried with, what the user sees, and the page
that lists them: docs/reliability.md is rendered from CASES below, and a test checks it
is up to date, so the page says only what these tests check.

Each case does what a user would (the CLI ones run the real `tinygrad-vg` entry point in
a subprocess) and returns what they see: the exit code and the single line on stderr, or
for the Python API the exception. The expected text may hold placeholders: <DIR> for
the test's directory, <N> for a number, <...> for any text (an OS or parser detail).

    python tests/test_reliability.py     # rewrite docs/reliability.md after changing CASES
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
_SCRIPT = Path(sys.executable).with_name("tinygrad-vg")
ENTRY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tinygrad_vg"]


class Case(NamedTuple):
    area: str
    tried: str                    # what the user does (markdown)
    code: int | None              # the exit code, None for a Python exception
    seen: str                     # the line the user sees, with placeholders
    run: Callable[[Path], tuple]  # does it in a fresh directory: (exit code, line seen)


CASES: list[Case] = []


def case(area: str, tried: str, code: int | None, seen: str) -> Callable:
    def register(fn: Callable[[Path], tuple]) -> Callable:
        CASES.append(Case(area, tried, code, seen, fn))
        return fn
    return register


# ----- running the CLI as a user does --------------------------------------------------------
def cli(*args, cwd=None, env=None, preexec_fn=None, one_line=True, timeout=120):
    """Run `tinygrad-vg ARGS`; (exit code, its one stderr line). Checks that nothing shows a
    traceback and, for a failure, that stderr is one line."""
    full_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run(ENTRY + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                            env=full_env, preexec_fn=preexec_fn, timeout=timeout)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    if one_line:
        assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    return result.returncode, lines[0] if lines else "", result


def small_depth(out: Path, *more) -> list:
    return ["run", "depth", "--depths", "3", "--kinds", "plain", "--norms", "none", "--out", out, *more]


def a_result(directory: Path) -> Path:
    """A real, small result in `directory` (as `tinygrad-vg run` writes it), with a stand-in
    for its figure, which the report then takes instead of drawing it."""
    from tinygrad_vg.lab import run_experiment
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "depth.json"
    path.write_text(json.dumps(run_experiment("depth", depths=[3], kinds=["plain"], norms=["none"])))
    (directory / "depth.png").write_bytes(b"\x89PNG\r\n\x1a\n a stand-in")
    return path


def python_error(fn: Callable) -> tuple:
    try:
        fn()
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    raise AssertionError("no exception")


# ----- output paths and files that cannot be written ---------------------------------------
@case("output", "`run depth --out /proc/x/out` (a directory that cannot be created)", 1,
      "tinygrad-vg: error: cannot create the output directory /proc/x/out: No such file or directory")
def _(tmp):
    return cli(*small_depth("/proc/x/out"))[:2]


@case("output", "`run depth --out /sys/x` (a file system that refuses new directories)", 1,
      "tinygrad-vg: error: cannot create the output directory /sys/x: <...>")
def _(tmp):
    return cli(*small_depth("/sys/x"))[:2]


@case("output", "`run depth --out FILE` where FILE is an existing file", 1,
      "tinygrad-vg: error: cannot create the output directory <DIR>/f: File exists")
def _(tmp):
    (tmp / "f").write_text("x")
    return cli(*small_depth(tmp / "f"))[:2]


@case("output", "`demo --out /proc/x` (a directory that cannot be created)", 1,
      "tinygrad-vg: error: cannot create the output directory /proc/x: No such file or directory")
def _(tmp):
    return cli("demo", "--out", "/proc/x")[:2]


@case("output", "`run depth` where the figure depth.png cannot be written (a directory has its name)", 1,
      "tinygrad-vg: error: cannot write <DIR>/depth.png: Is a directory")
def _(tmp):
    (tmp / "depth.png").mkdir()
    return cli(*small_depth(tmp))[:2]


@case("output", "the disk fills while `run depth` writes depth.json over an earlier one (a file-size "
      "limit); the earlier depth.json is kept byte for byte", 1,
      "tinygrad-vg: error: cannot write <DIR>/depth.json: File too large (the previous file is unchanged)")
def _(tmp):
    old = a_result(tmp).read_bytes()   # about 1 kB; the new run's JSON is about 3 kB

    def full_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))
    code, line, _ = cli("run", "depth", "--depths", "3,6,9", "--kinds", "plain", "--norms", "none", "--no-plot",
                        "--out", tmp, preexec_fn=full_disk)
    assert (tmp / "depth.json").read_bytes() == old
    assert not [p for p in tmp.iterdir() if p.name.startswith(".depth.json")]   # no temporary left
    return code, line


@case("output", "`report DIR` where DIR/report.html cannot be written (a directory has its name)", 1,
      "tinygrad-vg: error: cannot write <DIR>/report.html: Is a directory")
def _(tmp):
    a_result(tmp)
    (tmp / "report.html").mkdir()
    return cli("report", tmp)[:2]


QUIET = "(nothing: no message and no traceback; exit 141 = 128 + SIGPIPE, as for any program whose reader stopped)"


@case("output", "`tinygrad-vg list | head -2`, the reader closing the pipe before the listing ends", 141, QUIET)
def _(tmp):
    read_end, write_end = os.pipe()
    os.close(read_end)   # every write to the pipe fails with EPIPE (BrokenPipeError)
    process = subprocess.Popen(ENTRY + ["list"], stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    _, err = process.communicate(timeout=60)
    assert err == "", err
    return process.returncode, QUIET


# ----- options checked before any work -----------------------------------------------------
USAGE = [
    ("`run depth --batch 0`", ["run", "depth", "--batch", "0"],
     "run depth: --batch must be a whole number >= 1; got 0"),
    ("`run seed-figure --steps -1`", ["run", "seed-figure", "--steps", "-1"],
     "run seed-figure: --steps must be a whole number >= 1; got -1"),
    ("`run learning-speed --steps 0`", ["run", "learning-speed", "--steps", "0"],
     "run learning-speed: --steps must be a whole number >= 1; got 0"),
    ("`run depth --width 0`", ["run", "depth", "--width", "0"],
     "run depth: --width must be a whole number >= 1; got 0"),
    ("`run recurrent --T 0`", ["run", "recurrent", "--T", "0"],
     "run recurrent: --T must be a whole number >= 1; got 0"),
    ("`run depth --seed -1`", ["run", "depth", "--seed", "-1"],
     "run depth: --seed must be a whole number >= 0; got -1"),
    ("`run seed-figure --lr -1`", ["run", "seed-figure", "--lr", "-1"],
     "run seed-figure: --lr must be a finite number > 0; got -1.0"),
    ("`run seed-figure --lr nan`", ["run", "seed-figure", "--lr", "nan"],
     "run seed-figure: --lr must be a finite number > 0; got nan"),
    ("`run init --scales 0.5,0`", ["run", "init", "--scales", "0.5,0"],
     "run init: --scales must be a finite number > 0; got 0.0"),
    ("`run recurrent --gate-biases inf`", ["run", "recurrent", "--gate-biases", "inf"],
     "run recurrent: --gate-biases must be a finite number; got inf"),
    ("`run depth --depths ''` (an empty list)", ["run", "depth", "--depths", ""],
     "run depth: --depths needs at least one value; got []"),
    ("`run depth --depths 5,abc`", ["run", "depth", "--depths", "5,abc"],
     "argument --depths: 'abc' is not a whole number in '5,abc'; the option takes whole numbers separated by "
     "commas, e.g. 5,10,20 (see `tinygrad-vg run depth --help`)"),
    ("`run depth --depths 5,,6`", ["run", "depth", "--depths", "5,,6"],
     "argument --depths: '5,,6' has an empty item; the option takes whole numbers separated by commas, "
     "e.g. 5,10,20 (see `tinygrad-vg run depth --help`)"),
    ("`run depth --width 2.5`", ["run", "depth", "--width", "2.5"],
     "argument --width: '2.5' is not a whole number (see `tinygrad-vg run depth --help`)"),
    ("`run depth --kinds capsule`", ["run", "depth", "--kinds", "capsule"],
     "run depth: --kinds: unknown value 'capsule'; accepted: plain, residual, highway, dense"),
    ("`run depth --norms bogus`", ["run", "depth", "--norms", "bogus"],
     "run depth: --norms: unknown value 'bogus'; accepted: none, batch, layer"),
    ("`run depth --activation foo`", ["run", "depth", "--activation", "foo"],
     "run depth: --activation: unknown value 'foo'; accepted: linear, identity, tanh, sigmoid, relu, "
     "leaky_relu, elu, softplus, gelu"),
    ("`run depth --widht 3` (a misspelt option)", ["run", "depth", "--widht", "3"],
     "unrecognized arguments: --widht 3 (see `tinygrad-vg run depth --help`)"),
    ("`run nope` (an unknown experiment)", ["run", "nope"],
     "argument EXPERIMENT: invalid choice: 'nope' (choose from <...>) (see `tinygrad-vg run --help`)"),
    ("`run` without an experiment", ["run"],
     "the following arguments are required: EXPERIMENT (see `tinygrad-vg run --help`)"),
    ("`tinygrad-vg` without a command", [],
     "the following arguments are required: COMMAND (see `tinygrad-vg --help`)"),
    ("`run depth --depths 1000000000` (no memory check: built layers until memory ran out)",
     ["run", "depth", "--depths", "1000000000"],
     "run depth needs about <N> TiB of memory (depth 1000000000, width 20, batch 32), more than the <N> GiB "
     "available; choose smaller sizes, or pass --force to try anyway"),
    ("`run recurrent --T 100000000`", ["run", "recurrent", "--T", "100000000"],
     "run recurrent needs about <N> TiB of memory (T 100000000, hidden 32, batch 16), more than the <N> GiB "
     "available; choose smaller sizes, or pass --force to try anyway"),
]


def _usage_case(argv):
    def run(tmp):
        return cli(*argv, "--out", tmp / "out", "--no-plot")[:2] if argv[:1] == ["run"] and len(argv) > 1 \
            else cli(*argv)[:2]
    return run


for _tried, _argv, _line in USAGE:
    case("options", _tried, 2, "tinygrad-vg: error: " + _line)(_usage_case(_argv))


@case("options", "`TINYGRAD_VG_MEMORY_LIMIT=1K run depth --depths 3` (sizes that do not fit the memory "
      "one allows)", 2, "tinygrad-vg: error: run depth needs about <N> KiB of memory (depth 3, width 20, "
      "batch 32), more than the 1.0 KiB available; choose smaller sizes, or pass --force to try anyway")
def _(tmp):
    code, line, _ = cli(*small_depth(tmp / "out", "--no-plot"), env={"TINYGRAD_VG_MEMORY_LIMIT": "1K"})
    assert not (tmp / "out").exists()   # refused before any work
    return code, line


@case("options", "the same with `--force`: the refusal is overridden and the run completes", 0,
      "(no error; depth.json is written)")
def _(tmp):
    code, _, result = cli(*small_depth(tmp, "--no-plot", "--force"), env={"TINYGRAD_VG_MEMORY_LIMIT": "1K"},
                          one_line=False)
    assert result.stderr == "" and json.loads((tmp / "depth.json").read_text())["experiment"] == "depth"
    return code, "(no error; depth.json is written)"


@case("options", "`TINYGRAD_VG_MEMORY_LIMIT=abc run depth`", 2,
      "tinygrad-vg: error: TINYGRAD_VG_MEMORY_LIMIT='abc' is not a size such as 4G or 512M")
def _(tmp):
    return cli(*small_depth(tmp), env={"TINYGRAD_VG_MEMORY_LIMIT": "abc"})[:2]


# ----- faults during the work --------------------------------------------------------------
@case("faults", "`run depth ... --force` with sizes past the memory the process may use (an address-space "
      "limit)", 1, "tinygrad-vg: error: out of memory; choose smaller sizes (the estimate printed at the start "
      "is rough)")
def _(tmp):
    def little_memory():
        resource.setrlimit(resource.RLIMIT_AS, (600 * 2**20, resource.RLIM_INFINITY))   # imports take ~200 MB
    return cli("run", "depth", "--depths", "100000", "--width", "500", "--kinds", "plain", "--norms", "none",
               "--force", "--no-plot", "--out", tmp, preexec_fn=little_memory)[:2]


def _start(argv, cwd=None):
    """Start `tinygrad-vg ARGV`, wait for its first line on stdout (the work has begun)."""
    process = subprocess.Popen(ENTRY + [str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=cwd, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    first = process.stdout.readline()
    assert "results go to" in first, first
    return process


SLOW_RUN = ["run", "learning-speed", "--kinds", "plain,residual,highway", "--steps", "80", "--width", "12",
            "--seed", "3", "--no-plot"]


@case("faults", "Ctrl-C (SIGINT) during `run learning-speed`", 130,
      "tinygrad-vg: interrupted; the configurations already finished are kept, and the same command resumes "
      "after them")
def _(tmp):
    process = _start(SLOW_RUN + ["--out", tmp])
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return process.returncode, err.strip()


@case("faults", "a run killed (SIGKILL) after its first configurations, then started again with the same "
      "options: only the rest is computed, and depth.json is the one an uninterrupted run writes", 0,
      "learning-speed: 3 runs in <N> s, <N> of 3 configurations kept from an earlier run")
def _(tmp):
    kept = tmp / ".tinygrad-vg-runs"
    process = _start(SLOW_RUN + ["--out", tmp])
    deadline = time.monotonic() + 60
    while not (kept.is_dir() and list(kept.glob("*.json"))) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.communicate()
    assert 1 <= len(list(kept.glob("*.json"))) < 3, "the kill did not land midway"
    code, _, result = cli(*SLOW_RUN, "--out", tmp, one_line=False)
    summary = next(line for line in result.stdout.splitlines() if line.startswith("learning-speed: 3 runs"))
    from tinygrad_vg.lab import run_experiment
    straight = run_experiment("learning-speed", kinds=["plain", "residual", "highway"], steps=80, width=12, seed=3)
    written = json.loads((tmp / "learning-speed.json").read_text())
    # the same file but for its provenance (when and how long it ran, the BLAS threads it had)
    assert written.pop("provenance")["options"] == straight.pop("provenance")["options"]
    assert json.dumps(written, indent=1) == json.dumps(straight, indent=1)
    return code, summary


# ----- report --------------------------------------------------------------------------------
@case("report", "`report DIR` where DIR does not exist", 2, "tinygrad-vg: error: report: no such directory: <DIR>/nope")
def _(tmp):
    return cli("report", tmp / "nope")[:2]


@case("report", "`report FILE` (a file, not a directory)", 2,
      "tinygrad-vg: error: report: <DIR>/depth.json is a file, not a directory of results")
def _(tmp):
    return cli("report", a_result(tmp))[:2]


@case("report", "`report DIR` where DIR holds no results", 2,
      "tinygrad-vg: error: <DIR> holds no experiment results; run `tinygrad-vg run EXPERIMENT --out <DIR>` first")
def _(tmp):
    return cli("report", tmp)[:2]


@case("report", "`report DIR` where DIR holds only JSON that is not a result", 2,
      "tinygrad-vg: error: <DIR> holds no experiment results (left out: <DIR>/notes.json: not an experiment "
      "result (valid JSON without an 'experiment' field)); run `tinygrad-vg run EXPERIMENT --out <DIR>` first")
def _(tmp):
    (tmp / "notes.json").write_text("[1, 2]")
    return cli("report", tmp)[:2]


@case("report", "`report DIR` where the disk filled while depth.json was written in place (truncated)", 1,
      "tinygrad-vg: error: <DIR>/depth.json is damaged: not valid JSON (<...>; the file has <N> bytes: "
      "truncated?); the report was not written: repair or remove the file, or pass --skip-bad to leave it out")
def _(tmp):
    path = a_result(tmp)
    path.write_bytes(path.read_bytes()[:300])
    return cli("report", tmp)[:2]


@case("report", "`report DIR` with a corrupt JSON among good results", 1,
      "tinygrad-vg: error: <DIR>/bad.json is damaged: not valid JSON (<...>); the report was not written: "
      "repair or remove the file, or pass --skip-bad to leave it out")
def _(tmp):
    a_result(tmp)
    (tmp / "bad.json").write_bytes(b'{"experiment": "depth", "runs": [\x00\x01')
    code, line, _ = cli("report", tmp)
    assert not (tmp / "report.html").exists()
    return code, line


@case("report", "the same with `report DIR --skip-bad`: the report is written without it", 0,
      "tinygrad-vg: skipped <DIR>/bad.json: not valid JSON (<...>)")
def _(tmp):
    a_result(tmp)
    (tmp / "bad.json").write_text('{"experiment": "depth", "runs": [')
    code, line, result = cli("report", tmp, "--skip-bad")
    page = (tmp / "report.html").read_text()
    assert "bad.json: not valid JSON" in page and '<section id="depth">' in page
    return code, line


@case("report", "`report DIR` with a JSON whose \"experiment\" is not a string", 1,
      "tinygrad-vg: error: <DIR>/odd.json is damaged: its 'experiment' field is 3, not an experiment name; "
      "the report was not written: repair or remove the file, or pass --skip-bad to leave it out")
def _(tmp):
    a_result(tmp)
    (tmp / "odd.json").write_text('{"experiment": 3, "runs": []}')
    return cli("report", tmp)[:2]


@case("report", "`report DIR` with a JSON whose \"runs\" is not a list of runs", 1,
      "tinygrad-vg: error: <DIR>/odd.json is damaged: its 'runs' field is not a list of runs; the report was "
      "not written: repair or remove the file, or pass --skip-bad to leave it out")
def _(tmp):
    (tmp / "odd.json").write_text('{"experiment": "depth", "runs": {"depth": 3}}')
    return cli("report", tmp)[:2]


@case("report", "`report DIR` with two damaged files", 1,
      "tinygrad-vg: error: 2 result files are damaged: <DIR>/a.json (not valid JSON (<...>)); <DIR>/b.json "
      "(its 'experiment' field is None, not an experiment name); the report was not written: repair or remove "
      "the file, or pass --skip-bad to leave it out")
def _(tmp):
    (tmp / "a.json").write_text("{")
    (tmp / "b.json").write_text('{"experiment": null}')
    return cli("report", tmp)[:2]


@case("debug", "`run depth --batch 0 --debug`", 2,
      "(the full traceback of the error, then the same one line)")
def _(tmp):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(ENTRY + ["run", "depth", "--batch", "0", "--debug"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.stderr.startswith("Traceback (most recent call last)"), result.stderr
    assert result.stderr.splitlines()[-1] == "tinygrad-vg: error: run depth: --batch must be a whole number >= 1; got 0"
    return result.returncode, "(the full traceback of the error, then the same one line)"


# ----- the Python API: save, load, state dicts -----------------------------------------------
def _checkpoint(tmp):
    import tinygrad_vg as tg
    path = tmp / "ckpt.npz"
    tg.save({"w": np.arange(1000.0), "step": 3}, path)
    return tg, path


@case("save/load", "`tg.load` of a checkpoint cut short (the disk filled while it was written in place)", None,
      "ValueError: <DIR>/ckpt.npz: truncated or corrupt .npz archive (File is not a zip file)")
def _(tmp):
    tg, path = _checkpoint(tmp)
    path.write_bytes(path.read_bytes()[:5000])
    return python_error(lambda: tg.load(path))


@case("save/load", "`tg.load` of a checkpoint with one byte changed inside an array", None,
      "ValueError: <DIR>/ckpt.npz: truncated or corrupt .npz archive (Bad CRC-32 for file 'a0.npy')")
def _(tmp):
    tg, path = _checkpoint(tmp)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return python_error(lambda: tg.load(path))


@case("save/load", "`tg.load` of a JSON file", None,
      "ValueError: <DIR>/depth.json: not a file written by tinygrad_vg.save (an .npz archive): it is a JSON file")
def _(tmp):
    import tinygrad_vg as tg
    return python_error(lambda: tg.load(a_result(tmp)))


@case("save/load", "`tg.load` of a single array saved with `np.save`", None,
      "ValueError: <DIR>/w.npy: not a file written by tinygrad_vg.save (an .npz archive): it is a single .npy array")
def _(tmp):
    import tinygrad_vg as tg
    np.save(tmp / "w.npy", np.ones(3))
    return python_error(lambda: tg.load(tmp / "w.npy"))


@case("save/load", "`tg.load` of an empty file", None,
      "ValueError: <DIR>/ckpt.npz: not a file written by tinygrad_vg.save (an .npz archive): it is empty")
def _(tmp):
    import tinygrad_vg as tg
    (tmp / "ckpt.npz").write_bytes(b"")
    return python_error(lambda: tg.load(tmp / "ckpt.npz"))


@case("save/load", "`tg.load` of a file that does not exist", None,
      "FileNotFoundError: [Errno 2] No such file: '<DIR>/nope.npz'")
def _(tmp):
    import tinygrad_vg as tg
    return python_error(lambda: tg.load(tmp / "nope.npz"))


@case("save/load", "`tg.load` of an .npz holding a pickled object (loading it could run code)", None,
      "ValueError: <DIR>/evil.npz: holds pickled objects, which are never loaded (loading could run code)")
def _(tmp):
    import tinygrad_vg as tg
    np.savez(tmp / "evil.npz", code=np.array([object()], dtype=object))
    return python_error(lambda: tg.load(tmp / "evil.npz"))


@case("save/load", "`tg.save(model, path)` (a module, not its state dict)", None,
      "TypeError: save: obj is a DeepMLP, which cannot be saved without pickling code; save its state_dict() "
      "and load it back with load_state_dict(). Saved are tensors, numpy arrays and scalars, None, bool, int, "
      "float, str, and dicts, lists and tuples of them")
def _(tmp):
    import tinygrad_vg as tg
    model = tg.nn.deep_mlp("plain", 3, 2, rng=0)
    return python_error(lambda: tg.save(model, tmp / "m.npz"))


@case("save/load", "`tg.save` of a dict holding an object array", None,
      "TypeError: save: obj['x'] is an array of dtype object; only numeric and bool arrays can be saved "
      "(no pickled objects)")
def _(tmp):
    import tinygrad_vg as tg
    return python_error(lambda: tg.save({"x": np.array([None])}, tmp / "x.npz"))


@case("save/load", "`tg.save` over an earlier checkpoint while the disk fills (a file-size limit); the earlier "
      "checkpoint still loads, unchanged", None, "OSError: [Errno 27] File too large")
def _(tmp):
    tg, path = _checkpoint(tmp)
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100, hard))
    try:
        seen = python_error(lambda: tg.save({"w": np.zeros(10_000)}, path))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert path.read_bytes() == before and os.listdir(tmp) == ["ckpt.npz"]
    return seen


def _adam(tmp):
    import tinygrad_vg as tg
    model = tg.nn.deep_mlp("plain", 4, 2, dtype=np.float64, rng=0)
    opt = tg.optim.Adam(list(model.parameters()))
    tg.functional.mse_loss(model(tg.Tensor(np.ones((2, 4)))), tg.Tensor(np.zeros((2, 4)))).backward()
    opt.step()
    return tg, model, opt


@case("state dicts", "`opt.load_state_dict` of a state dict saved for another model (fewer parameters); the "
      "optimizer is unchanged", None,
      "ValueError: Adam.load_state_dict: the state dict's parameter group has 2 parameters; this optimizer has 4")
def _(tmp):
    tg, model, opt = _adam(tmp)
    sd = opt.state_dict()
    sd["param_groups"][0]["params"] = [0, 1]
    before = opt.state_dict()
    seen = python_error(lambda: opt.load_state_dict(sd))
    assert all(np.array_equal(before["state"][i]["exp_avg"], opt.state_dict()["state"][i]["exp_avg"]) for i in range(4))
    return seen


@case("state dicts", "`opt.load_state_dict` whose moment has another shape than its parameter", None,
      "ValueError: Adam.load_state_dict: state[0]['exp_avg'] has shape (3,); parameter 0 has shape (4, 4)")
def _(tmp):
    tg, model, opt = _adam(tmp)
    sd = opt.state_dict()
    sd["state"][0]["exp_avg"] = np.zeros(3)
    return python_error(lambda: opt.load_state_dict(sd))


@case("state dicts", "`adam.load_state_dict(sgd.state_dict())`", None,
      "ValueError: Adam.load_state_dict: the parameter group has no betas, eps")
def _(tmp):
    tg, model, opt = _adam(tmp)
    sgd = tg.optim.SGD(list(model.parameters()), lr=0.1, momentum=0.9)
    return python_error(lambda: opt.load_state_dict(sgd.state_dict()))


@case("state dicts", "`model.load_state_dict` of a state dict with a missing key", None,
      "KeyError: \"load_state_dict: missing keys ['blocks.1.linear.bias'], unexpected keys []\"")
def _(tmp):
    tg, model, _ = _adam(tmp)
    sd = model.state_dict()
    del sd["blocks.1.linear.bias"]
    return python_error(lambda: model.load_state_dict(sd))


@case("state dicts", "`run_experiment(\"depth\", batch=0)` from Python", None,
      "ValueError: --batch must be a whole number >= 1; got 0")
def _(tmp):
    from tinygrad_vg.lab import run_experiment
    return python_error(lambda: run_experiment("depth", batch=0))


# ----- running the cases -----------------------------------------------------------------------
def _pattern(seen: str, directory: Path) -> re.Pattern:
    regex = {"<DIR>": re.escape(str(directory)), "<N>": r"[0-9][0-9.]*", "<...>": ".*"}
    return re.compile("".join(regex.get(piece, re.escape(piece)) for piece in re.split(r"(<DIR>|<N>|<\.\.\.>)", seen)))


def _run(index: int) -> tuple:
    with tempfile.TemporaryDirectory(prefix="tinygrad_vg_reliability_") as scratch:
        directory = Path(scratch).resolve()
        try:
            return directory, CASES[index].run(directory), None
        except BaseException as e:   # reported by the case's own test
            return directory, None, e


@pytest.fixture(scope="module")
def outcomes():
    """Every case: the command-line ones four at a time (they wait on a subprocess), then the
    Python ones in this thread, one by one (some set process-wide limits and signal handlers,
    which a subprocess started meanwhile would inherit)."""
    commands = [i for i, c in enumerate(CASES) if c.code is not None]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(commands, pool.map(_run, commands)))
    results.update((i, _run(i)) for i, c in enumerate(CASES) if c.code is None)
    return [results[i] for i in range(len(CASES))]


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c.area}: {c.tried[:60]}" for c in CASES])
def test_case(outcomes, index):
    directory, seen, error = outcomes[index]
    if error is not None:
        raise error
    expected = CASES[index]
    code, line = seen
    assert code == expected.code, f"exit code {code}, expected {expected.code}; saw {line!r}"
    assert _pattern(expected.seen, directory).fullmatch(line), f"saw\n{line}\nexpected\n{expected.seen}"


def test_the_placeholders_match_only_what_they_stand_for():
    pattern = _pattern("cannot write <DIR>/x: <...> (<N> bytes)", Path("/tmp/a"))
    assert pattern.fullmatch("cannot write /tmp/a/x: Is a directory (12 bytes)")
    assert not pattern.fullmatch("cannot write /tmp/b/x: Is a directory (12 bytes)")
    assert not pattern.fullmatch("cannot write /tmp/a/x: Is a directory (many bytes)")


# ----- the page ----------------------------------------------------------------------------
AREAS = {
    "output": "Output paths and files that cannot be written",
    "options": "Options, checked before any work starts",
    "faults": "Faults during a run",
    "report": "The report and damaged result files",
    "debug": "Asking for the traceback",
    "save/load": "Saving and loading (Python)",
    "state dicts": "State dicts and experiments from Python",
}


def render() -> str:
    lines = [
        "# What happens when things go wrong",
        "",
        "<!-- Generated by tests/test_reliability.py from its CASES; edit those, then run",
        "     `python tests/test_reliability.py`. A test fails when this page is out of date. -->",
        "",
        "Every bad input and fault below is tried by the test suite, each in a fresh directory, and what the",
        "user sees is checked against this page: for the command line, the real `tinygrad-vg` entry point runs",
        "in a subprocess and its exit code and its single line on stderr are compared; for the Python API, the",
        "exception. No case shows a traceback unless `--debug` asks for one. Exit codes: 0 done, 1 failure",
        "(a file that cannot be written or read, a damaged result, out of memory), 2 usage error (found before",
        "any work starts), 130 interrupted (Ctrl-C).",
        "",
        "In the messages, `<DIR>` stands for the directory of the case, `<N>` for a number and `<...>` for a",
        "detail of the operating system or of the parser.",
        "",
        "Files are written atomically (a temporary file in the same directory, flushed, fsync'ed and renamed",
        "over the target), so a full disk, a Ctrl-C or a crash leaves the old file or the new one, never a",
        "truncated one (a process killed during a write may leave its temporary `.NAME.*.tmp` file beside the",
        "target; it is never read and can be deleted). A run keeps each finished configuration in",
        "`DIR/.tinygrad-vg-runs/` (a file named by a hash of the configuration), so the same command started",
        "again after an interruption computes only the rest.",
        "",
        f"{len(CASES)} cases.",
    ]
    number = 0
    for area, title in AREAS.items():
        cases = [c for c in CASES if c.area == area]
        lines += ["", f"## {title}", "", "| # | what was tried | what the user sees | exit code |",
                  "| --- | --- | --- | --- |"]
        for c in cases:
            number += 1
            seen = c.seen.replace("|", "\\|")
            seen = seen if seen.startswith("(") else f"`{seen}`" if "`" not in seen else f"``{seen}``"
            code = "exception" if c.code is None else str(c.code)
            lines.append(f"| {number} | {c.tried.replace('|', chr(92) + '|')} | {seen} | {code} |")
    return "\n".join(lines) + "\n"


def test_every_case_is_in_an_area_and_there_are_at_least_40():
    assert {c.area for c in CASES} <= set(AREAS)
    assert len(CASES) >= 40


def test_the_page_is_up_to_date():
    assert DOC.read_text() == render(), "docs/reliability.md is out of date: run `python tests/test_reliability.py`"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC} ({len(CASES)} cases)")
