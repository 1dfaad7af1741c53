"""Sweeps: one experiment over a grid of option values and seeds, run in parallel on this
machine (joblib, process backend) or on a Dask cluster, with the same rows either way.

A sweep is described by a TOML file:

    experiment = "depth"        # any lab experiment
    seeds = 10                  # a count (seed indices 0..9) or a list of seed indices
    seed = 0                    # the root of the SeedSequence (optional, default 0)
    [grid]                      # one point per combination of these values
    kinds = ["plain", "residual"]
    activation = ["tanh", "relu"]
    depths = {start = 5, stop = 200, num = 6, log = true}   # or {start, stop, step}
    [options]                   # fixed options of every point
    width = 20
    norms = ["none"]
    [plot]                      # optional: how summary plots are laid out
    x = "depths"                # the swept option on the x axis (default: the first numeric one)
    hue = "kinds"               # one line per value (default: the first other swept option)
    rows = "activation"         # panels (optional)
    cols = "init"

A grid value of a list option (kinds, depths, ...) becomes a one-item list at each point; a
point with seed index i runs `run_experiment(experiment, seeds=[i], ...)`, so every point is
independent of every other (its streams come from SeedSequence(seed) and i alone) and the
kinds compared within one seed index share their data and initial draws, wherever they run.

Design: the unit of work is a point (a grid combination x a seed index); its rows are plain
dicts computed by a module-level function, so joblib's loky workers and Dask workers run the
same code and return the same rows. The parent process is the only writer: it appends each
finished point's rows to DIR/runs.jsonl as they arrive (so an interrupted sweep keeps them),
and on a new start reads that file back and computes only the points missing from it (a
point whose run raised is run again). A point's key is a digest of the experiment, its
options, its seed and seed index, and the code (the package's files and the kernel backend,
as the ResultStore's), so a changed engine never reuses old rows. At the end, runs.jsonl is
rewritten in grid order, runs.csv holds the same rows, sweep.json the spec, the provenance,
and the per-configuration summaries over seeds, and sweep_*.png the summary plots.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..io import atomic_write
from .experiments import (EXPERIMENTS, _code_fingerprint, _jsonable, experiment_options, run_experiment,
                          seed_indices, validate_options)
from .progress import Progress
from .stats import STATISTICS, configuration, describe, mean_sd_text

__all__ = ["SweepSpec", "SweepResult", "SweepError", "ClusterUnavailable", "load_spec", "parse_spec", "expand",
           "run_sweep", "run_point", "summarise_rows", "summary_table", "sweep_layout", "dask_client", "close_client",
           "ROW_FILE", "CSV_FILE", "SUMMARY_FILE", "CLUSTER_INSTALL"]

ROW_FILE, CSV_FILE, SUMMARY_FILE = "runs.jsonl", "runs.csv", "sweep.json"
CLUSTER_INSTALL = "pip install 'tinygrad_vg[cluster]'"
# A list option's name and the field its runs carry one value of.
SINGULAR = {"kinds": "kind", "depths": "depth", "activations": "activation", "inits": "init", "scales": "scale",
            "norms": "norm", "cells": "cell", "gate_biases": "gate_bias"}
# Row fields that describe how a point ran rather than what it computed.
RUN_FIELDS = ("wall_time_s", "cpu_time_s", "worker")


class SweepError(ValueError):
    """A sweep specification that cannot be run: what is wrong and what is accepted."""


class ClusterUnavailable(RuntimeError):
    """dask/distributed missing, or the scheduler cannot be reached."""


@dataclass
class SweepSpec:
    experiment: str
    grid: dict[str, list]
    options: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    seed: int = 0
    plot: dict[str, str] = field(default_factory=dict)
    source: str = "<spec>"

    def to_json(self) -> dict:
        return _jsonable({"experiment": self.experiment, "grid": self.grid, "options": self.options,
                          "seeds": self.seeds, "seed": self.seed, "plot": self.plot})


# ----- the specification -------------------------------------------------------------------
def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
        return tomllib
    import tomli   # declared for Python < 3.11 in pyproject.toml
    return tomli


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep's TOML file; SweepError names what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError(f"no such sweep file: {path}") from None
    except IsADirectoryError:
        raise SweepError(f"{path} is a directory, not a sweep's TOML file") from None
    except UnicodeDecodeError:
        raise SweepError(f"{path} is not a text (UTF-8 TOML) file") from None
    try:
        raw = _toml().loads(text)
    except ValueError as e:   # tomllib.TOMLDecodeError is a ValueError
        raise SweepError(f"{path} is not valid TOML: {e}") from None
    return parse_spec(raw, source=str(path))


def _range(name: str, spec: dict) -> list:
    """{start, stop, num[, log]} (num values from start to stop inclusive, geometric with
    log = true, rounded when start and stop are whole) or {start, stop, step} (stop inclusive)."""
    keys = set(spec)
    allowed = ({"start", "stop", "num"}, {"start", "stop", "num", "log"}, {"start", "stop", "step"})
    if keys not in allowed:
        raise SweepError(f"grid.{name}: a range is {{start, stop, num}} (with log = true for geometric "
                         f"spacing) or {{start, stop, step}}; got keys {sorted(keys)}")
    start, stop = spec["start"], spec["stop"]
    numbers = [v for v in (start, stop, spec.get("step", 1), spec.get("num", 1))
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) != 4:
        raise SweepError(f"grid.{name}: start, stop and num or step must be numbers; got {spec}")
    whole = all(isinstance(v, int) for v in (start, stop))
    if "step" in spec:
        step = spec["step"]
        if step <= 0 or stop < start:
            raise SweepError(f"grid.{name}: needs step > 0 and stop >= start; got {spec}")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        values = [start + i * step for i in range(count)]
    else:
        num = spec["num"]
        if not isinstance(num, int) or num < 1:
            raise SweepError(f"grid.{name}: num must be a whole number >= 1; got {num!r}")
        if spec.get("log"):
            if start <= 0 or stop <= 0:
                raise SweepError(f"grid.{name}: a log range needs start and stop > 0; got {spec}")
            values = np.geomspace(start, stop, num).tolist()
        else:
            values = np.linspace(start, stop, num).tolist()
    if whole and isinstance(spec.get("step", 1), int):
        values = list(dict.fromkeys(int(round(v)) for v in values))
    return values


def parse_spec(raw: dict, source: str = "<spec>") -> SweepSpec:
    """A SweepSpec from the TOML's table, checked: the experiment exists, every option is one
    of its options, every value is accepted (validate_options), seeds are a count or a list."""
    known = {"experiment", "grid", "options", "seeds", "seed", "plot"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SweepError(f"{source}: unknown key(s) {unknown}; a sweep has {sorted(known)}")
    name = raw.get("experiment")
    if name not in EXPERIMENTS:
        raise SweepError(f"{source}: experiment = {name!r} is not an experiment; accepted: {', '.join(EXPERIMENTS)}")
    accepted = experiment_options(name)
    grid_raw, fixed = raw.get("grid", {}), raw.get("options", {})
    for table, value in (("grid", grid_raw), ("options", fixed), ("plot", raw.get("plot", {}))):
        if not isinstance(value, dict):
            raise SweepError(f"{source}: [{table}] must be a table")
    grid: dict[str, list] = {}
    for key, values in grid_raw.items():
        if key in ("seed", "seeds"):
            raise SweepError(f"{source}: grid.{key}: seeds are given at the top level (seeds = 10 or a list)")
        if isinstance(values, dict):
            values = _range(key, values)
        if not isinstance(values, list) or not values:
            raise SweepError(f"{source}: grid.{key} must be a non-empty list of values or a range table")
        grid[key] = values
    for key in list(grid) + list(fixed):
        if key not in accepted or key == "seeds":
            raise SweepError(f"{source}: experiment {name!r} has no option {key!r} to sweep or fix; "
                             f"accepted: {', '.join(k for k in accepted if k != 'seeds')}")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise SweepError(f"{source}: {both} both swept in [grid] and fixed in [options]; choose one")
    if not grid:
        raise SweepError(f"{source}: [grid] names no option to sweep")
    if "seed" in fixed:
        raise SweepError(f"{source}: the root seed is given at the top level (seed = 0), not in [options]")
    try:
        seeds = seed_indices(raw.get("seeds", 1))
        seed = raw.get("seed", 0)
        # every value of every swept option is checked at once: a list option takes the whole list
        check = dict(fixed)
        for key, values in grid.items():
            if isinstance(accepted[key], (list, tuple)):
                check[key] = values
        validate_options(name, {**check, "seed": seed})
        for key, values in grid.items():
            if not isinstance(accepted[key], (list, tuple)):
                for v in values:
                    validate_options(name, {**check, key: v})
    except ValueError as e:
        raise SweepError(f"{source}: {e}") from None
    plot = dict(raw.get("plot", {}))
    for role, option in plot.items():
        if role not in ("x", "hue", "rows", "cols", "statistic"):
            raise SweepError(f"{source}: plot.{role}: accepted keys are x, hue, rows, cols, statistic")
        if role != "statistic" and option not in grid:
            raise SweepError(f"{source}: plot.{role} = {option!r} is not a swept option; swept: {', '.join(grid)}")
    return SweepSpec(name, grid, dict(fixed), seeds, seed, plot, source)


# ----- the points --------------------------------------------------------------------------
def expand(spec: SweepSpec) -> list[dict]:
    """Every point of the sweep in grid order (the grid's options varying last-fastest, the seed
    index fastest): {"key", "options" (as run_experiment takes them), "values" (the swept
    values, by option name), "seed_index"}."""
    accepted = experiment_options(spec.experiment)
    names = list(spec.grid)
    points = []
    fingerprint = _code_fingerprint()
    for combo in product(*(spec.grid[n] for n in names)):
        values = dict(zip(names, combo))
        options = {**spec.options, "seed": spec.seed}
        for n, v in values.items():
            options[n] = [v] if isinstance(accepted[n], (list, tuple)) else v
        for index in spec.seeds:
            ident = json.dumps({"experiment": spec.experiment, "options": _jsonable(options), "seed_index": index,
                                "code": fingerprint}, sort_keys=True)
            points.append({"key": hashlib.sha256(ident.encode()).hexdigest()[:20], "options": options,
                           "values": values, "seed_index": index})
    return points


def _scalar_fields(run: dict) -> dict:
    return {k: v for k, v in run.items() if v is None or isinstance(v, (str, int, float, bool))}


def run_point(experiment: str, options: dict, seed_index: int, key: str) -> list[dict]:
    """The rows of one point, computed where this function runs (a worker): one row per run of
    `run_experiment(experiment, seeds=[seed_index], **options)`, each with its scalar fields
    (every option and statistic), the point's key and status "ok"; or one row with status
    "failed", the error and its traceback if the run raised. BLAS runs on one thread here."""
    from .. import kernels
    start, cpu_start = time.perf_counter(), time.process_time()
    base = {"point": key, "experiment": experiment, "seed_index": seed_index}
    try:
        try:
            from threadpoolctl import threadpool_limits
            limit: Any = threadpool_limits(1)
        except ImportError:   # the loky and Dask workers are started with one BLAS thread anyway
            limit = None
        try:
            data = run_experiment(experiment, seeds=[seed_index], provenance=False, **options)
        finally:
            if limit is not None:
                limit.restore_original_limits()
        rows = [{**base, **_scalar_fields(run), "status": "ok", "backend": kernels.BACKEND} for run in data["runs"]]
    except Exception as e:
        flat = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in options.items()}
        named = {SINGULAR.get(k, k): v for k, v in flat.items() if not isinstance(v, list)}
        rows = [{**base, **named, "status": "failed", "backend": kernels.BACKEND,
                 "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    for row in rows:
        row["wall_time_s"], row["cpu_time_s"] = seconds / len(rows), cpu / len(rows)
        row["worker"] = f"{os.uname().nodename}:{os.getpid()}" if hasattr(os, "uname") else str(os.getpid())
    return rows


def _run_point_packed(point: dict, experiment: str) -> tuple[str, list[dict]]:
    return point["key"], run_point(experiment, point["options"], point["seed_index"], point["key"])


# ----- where the points run ----------------------------------------------------------------
def _local(points: list[dict], experiment: str, jobs: int) -> Iterator[tuple[str, list[dict]]]:
    """joblib, loky process backend: each worker is started with one BLAS thread (its
    OMP/OPENBLAS/MKL_NUM_THREADS set before it imports numpy); results arrive as they finish."""
    from joblib import Parallel, delayed, parallel_config
    if jobs == 1:
        for point in points:
            yield _run_point_packed(point, experiment)
        return
    with parallel_config(backend="loky", inner_max_num_threads=1):
        yield from Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1, pre_dispatch="2*n_jobs")(
            delayed(_run_point_packed)(p, experiment) for p in points)


def dask_client(scheduler: str | None = None, local_workers: int | None = None, timeout: float = 10.0) -> Any:
    """A dask.distributed Client: connected to `scheduler` (tcp://HOST:PORT; given up after
    `timeout` seconds), or to a new LocalCluster of `local_workers` single-threaded worker
    processes on loopback. Raises ClusterUnavailable with what to install, or why the
    scheduler cannot be reached."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ClusterUnavailable(f"running on Dask needs dask and distributed: {CLUSTER_INSTALL}") from None
    if scheduler:
        try:
            return Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ClusterUnavailable(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    import dask
    saved = dict(os.environ)
    try:
        # the workers' own threads share the GIL with the run: no statistical profiler (every
        # 10 ms), the event loop's bookkeeping once a second instead of every 20-500 ms
        # (benchmarks/sweep.py: 10% off the sweep's wall time on 2 workers)
        with dask.config.set({"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                              "distributed.worker.memory.monitor-interval": "1s",
                              "distributed.admin.system-monitor.interval": "1s"}):
            cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    finally:
        # Dask sets the workers' OMP/MKL/OPENBLAS_NUM_THREADS=1 (and more) in this process's
        # environment to spawn them; the processes this one starts later must not inherit them
        os.environ.clear()
        os.environ.update(saved)
    client._tinygrad_vg_cluster = cluster   # closed with the client
    return client


def close_client(client: Any) -> None:
    cluster = getattr(client, "_tinygrad_vg_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _dask(points: list[dict], experiment: str, client: Any) -> Iterator[tuple[str, list[dict]]]:
    """dask.distributed directly: one task per point (pure=False: no result is shared between
    tasks by key), results as they complete. Worker processes have OMP/MKL/OPENBLAS_NUM_THREADS=1
    by Dask's default (distributed.nanny.pre-spawn-environ), and run_point limits BLAS too."""
    from dask.distributed import as_completed
    futures = [client.submit(_run_point_packed, p, experiment, pure=False) for p in points]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        for f in futures:
            f.cancel()


# ----- rows on disk ------------------------------------------------------------------------
def _read_rows(path: Path) -> list[dict]:
    """The whole rows of a runs.jsonl (a line cut short by an interruption is dropped)."""
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "point" in row:
            rows.append(row)
    return rows


def _write_rows(path: Path, rows: Iterable[dict]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(_jsonable(row)) + "\n")


def _columns(rows: Sequence[dict], first: Sequence[str]) -> list[str]:
    seen = list(first)
    for row in rows:
        for k in row:
            if k not in seen:
                seen.append(k)
    last = [c for c in ("status", "backend", *RUN_FIELDS, "error", "traceback") if c in seen]
    return [c for c in seen if c not in last] + last


def _write_csv(path: Path, rows: Sequence[dict]) -> None:
    columns = _columns(rows, ["point", "experiment", "seed_index"])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(buffer.getvalue())


# ----- summaries ---------------------------------------------------------------------------
def _swept_fields(spec: SweepSpec) -> list[str]:
    return [SINGULAR.get(n, n) for n in spec.grid]


def summarise_rows(rows: Sequence[dict], spec: SweepSpec) -> list[dict]:
    """Per configuration of the swept fields (plus any field a point's runs vary in, such as
    norm or phase): how many seeds ran and failed, and describe() of each statistic."""
    ok = [r for r in rows if r.get("status") == "ok"]
    # a field that differs between the runs of one point (norm when norms lists several, the
    # seed figure's phase, ...) is part of the configuration too
    within: dict[str, dict[str, set]] = {}
    for r in ok:
        for k, v in configuration(r).items():
            within.setdefault(k, {}).setdefault(r["point"], set()).add(repr(v))
    swept = _swept_fields(spec)
    keys = swept + [k for k, by_point in within.items()
                    if k not in swept and k not in ("point", "status", "backend", *RUN_FIELDS)
                    and any(len(v) > 1 for v in by_point.values())]
    groups: dict[str, tuple[dict, list[dict]]] = {}
    for row in rows:
        config = {k: row.get(k) for k in keys}
        groups.setdefault(json.dumps(config, sort_keys=True, default=str), (config, []))[1].append(row)
    out = []
    for config, members in groups.values():
        good = [r for r in members if r.get("status") == "ok"]
        stats = {s: describe(r.get(s) for r in good) for s in STATISTICS if any(s in r for r in good)}
        out.append({**config, "seeds": len(good), "failed": len(members) - len(good), "stats": stats})
    return out


def summary_table(summaries: Sequence[dict], spec: SweepSpec) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the terminal table: the configuration, then `mean +- sd (n)` of each
    statistic, and the failed count when any failed."""
    if not summaries:
        return [], []
    config_keys = [k for k in summaries[0] if k not in ("seeds", "failed", "stats")]
    statistics = [s for s in STATISTICS if any(s in e["stats"] for e in summaries)]
    failed = any(e["failed"] for e in summaries)
    headers = config_keys + [f"{s} mean +- sd (n)" for s in statistics] + (["failed"] if failed else [])
    rows = []
    for e in summaries:
        row = ["-" if e[k] is None else f"{e[k]:g}" if isinstance(e[k], float) else str(e[k]) for k in config_keys]
        row += [mean_sd_text(e["stats"].get(s, {}), signed=s.startswith("log10")) for s in statistics]
        rows.append(row + ([str(e["failed"])] if failed else []))
    return headers, rows


def sweep_layout(spec: SweepSpec, summaries: Sequence[dict]) -> dict:
    """How the summary plots lay out the swept fields: {"statistics", "x", "hue", "rows", "cols",
    "extra"} (field names of the summaries). From [plot] where given; else x is the first
    numeric swept option with several values, hue the next swept option, rows and cols the
    ones after; "extra" holds fields that vary besides (norm from a fixed list), drawn as line
    styles."""
    fields = _swept_fields(spec)
    chosen = {role: SINGULAR.get(option, option) for role, option in spec.plot.items() if role != "statistic"}
    numeric = [SINGULAR.get(n, n) for n, v in spec.grid.items()
               if len(v) > 1 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)]
    x = chosen.get("x") or (numeric[0] if numeric else fields[0])
    rest = [f for f in fields if f != x and f not in chosen.values()]
    layout = {"x": x}
    for role in ("hue", "rows", "cols"):
        layout[role] = chosen.get(role) or (rest.pop(0) if rest else None)
    def follows_hue(key: str) -> bool:   # e.g. gate_bias, set by the kind of net: no line style of its own
        seen: dict[Any, set] = {}
        for e in summaries:
            seen.setdefault(e.get(layout["hue"]), set()).add(repr(e.get(key)))
        return layout["hue"] is not None and all(len(v) == 1 for v in seen.values())
    extra = [k for k in (summaries[0] if summaries else {}) if k not in ("seeds", "failed", "stats")
             and k not in layout.values() and not follows_hue(k)]
    present = [s for s in STATISTICS if any(s in e["stats"] for e in summaries)]
    statistics = [spec.plot["statistic"]] if "statistic" in spec.plot else present[:1]
    return {**layout, "extra": extra, "statistics": statistics}


# ----- the sweep ---------------------------------------------------------------------------
@dataclass
class SweepResult:
    rows: list[dict]
    summaries: list[dict]
    computed: int
    reused: int
    failed: int
    seconds: float
    files: list[Path]


def _eta_note(done: int, total: int, start: float, already: int) -> str:
    ran = done - already
    if ran <= 0:
        return ""
    left = (time.monotonic() - start) / ran * (total - done)
    return f"{left / 60:.1f} min left" if left >= 90 else f"{left:.0f} s left"


def run_sweep(spec: SweepSpec, out: str | os.PathLike, jobs: int | None = None, client: Any = None,
              fresh: bool = False, plot: bool = True, progress: bool = False,
              on_row: Callable[[dict], None] | None = None) -> SweepResult:
    """Run every point of `spec` not already in OUT/runs.jsonl (all of them with fresh=True),
    locally with `jobs` processes (default: all cores) or on the Dask cluster of `client`;
    write runs.jsonl, runs.csv, sweep.json (spec, provenance, summaries) and the summary plots."""
    from .provenance import provenance
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    points = expand(spec)
    wanted = {p["key"] for p in points}
    row_path = out / ROW_FILE
    kept = [] if fresh else [r for r in _read_rows(row_path) if r["point"] in wanted and r.get("status") == "ok"]
    done_keys = {r["point"] for r in kept}
    _write_rows(row_path, kept)   # drop failed, foreign and cut-short rows before appending
    todo = [p for p in points if p["key"] not in done_keys]
    jobs = jobs or os.cpu_count() or 1
    bar = Progress(len(points), f"sweep {spec.experiment}", enabled=progress)
    bar.update(len(points) - len(todo), "kept from an earlier run" if done_keys else "")
    start, computed, new_rows = time.monotonic(), 0, []
    results = _dask(todo, spec.experiment, client) if client is not None else _local(todo, spec.experiment, jobs)
    with open(row_path, "a", encoding="utf-8") as f:
        try:
            for key, rows in results:
                for row in rows:
                    f.write(json.dumps(_jsonable(row)) + "\n")
                    if on_row:
                        on_row(row)
                f.flush()
                new_rows += rows
                computed += 1
                bar.update(1, _eta_note(bar.done + 1, len(points), start, len(points) - len(todo)))
        finally:
            bar.close()
            if hasattr(results, "close"):
                results.close()
    order = {p["key"]: i for i, p in enumerate(points)}
    rows = sorted(kept + new_rows, key=lambda r: order[r["point"]])
    seconds = time.monotonic() - start
    summaries = _jsonable(summarise_rows(rows, spec))
    failed = sum(1 for r in rows if r.get("status") != "ok")
    _write_rows(row_path, rows)
    _write_csv(out / CSV_FILE, rows)
    where = ({"dask": getattr(client, "scheduler_info", lambda: {})().get("address")} if client is not None
             else {"joblib": "loky", "jobs": jobs})
    record = {"sweep": spec.to_json(), "source": spec.source, "points": len(points), "computed": computed,
              "reused": len(points) - len(todo), "failed_rows": failed, "ran_on": where,
              "provenance": provenance(spec.to_json(), spec.seeds, seconds), "summaries": summaries}
    with atomic_write(out / SUMMARY_FILE, "w", encoding="utf-8") as f:
        f.write(json.dumps(_jsonable(record), indent=1))
    files = [row_path, out / CSV_FILE, out / SUMMARY_FILE]
    if plot and any(r.get("status") == "ok" for r in rows):
        from .plots import plot_sweep
        files += plot_sweep(summaries, sweep_layout(spec, summaries), out)
    return SweepResult(rows, summaries, computed, len(points) - len(todo), failed, seconds, files)
