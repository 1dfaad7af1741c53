"""Sweeps: how the shipped sweep (sweeps/depth-by-init.toml) scales from 1 to 2 local worker
processes (joblib, loky), and what running it on a Dask LocalCluster of 2 workers costs.

For each way of running, the same points computed afresh into a temporary directory:
  wall_s         the sweep's wall time (run_sweep: from the first point submitted to the last
                 row written; the Dask cluster's start-up is timed apart, as a user who points
                 --scheduler at a running cluster does not pay it; joblib's worker start-up is
                 inside wall_s)
  busy_s         the sum over runs of the time spent inside run_point (the computation)
  cpu_s          the sum over runs of the CPU time of the worker inside run_point: busy_s much above
                 cpu_s means the workers waited for a core (other processes on the machine)
  overhead_ms    per run: (wall_s x workers - busy_s) / runs, the time a worker is not computing
The targets (issue 17): 2 workers >= 1.8x 1 worker; Dask overhead per run < 50 ms and its
wall time within 15% of joblib's with the same number of workers. The rows of every way must be
equal (but for the time and process columns). The ways run interleaved, --repeat times, and the
best time of each counts: the machine is shared, and the load average is recorded beside.

    python benchmarks/sweep.py                 # the whole shipped sweep (2160 runs), once each
    python benchmarks/sweep.py --seeds 3 --repeat 2
Writes benchmarks/sweep.json.

    python benchmarks/sweep.py --backends      # the same seeds on both kernel backends
measures how far the compiled and the numpy kernels' results drift apart with depth (plain and
residual tanh nets, with and without batch norm, depths 20..1000, 5 seeds): each backend runs
`tinygrad-vg run depth` in a subprocess of its own; per configuration, the largest difference
of log10_ratio_h between the backends on the same seed, the largest relative difference of any
layer's ||dL/dh_l||, and the spread over seeds. Writes benchmarks/backends.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent / "sweeps" / "depth-by-init.toml"


def _what(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "cpu_time_s", "worker")} for r in rows]


def backends(seeds: int = 5) -> int:
    import subprocess

    import numpy as np

    from tinygrad_vg.lab.stats import describe, mean_sd_text
    options = ["--kinds", "plain,residual", "--norms", "batch,none", "--depths", "20,100,200,500,1000",
               "--seeds", str(seeds), "--no-plot", "--fresh"]
    data = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("compiled", "numpy"):
            out = Path(tmp) / backend
            subprocess.run([sys.executable, "-m", "tinygrad_vg", "run", "depth", *options, "--out", str(out)],
                           check=True, env={**os.environ, "TINYGRAD_VG_BACKEND": backend}, stdout=subprocess.DEVNULL)
            data[backend] = json.loads((out / "depth.json").read_text())
    assert [d["provenance"]["kernel_backend"] for d in data.values()] == ["compiled", "numpy"]
    key = lambda r: (r["kind"], r["norm"], r["depth"], r["seed_index"])   # noqa: E731
    other = {key(r): r for r in data["numpy"]["runs"]}
    groups: dict[tuple, list[tuple]] = {}
    for run in data["compiled"]["runs"]:
        twin = other[key(run)]
        a, b = np.array(run["grad_h_norm"]), np.array(twin["grad_h_norm"])
        groups.setdefault(key(run)[:3], []).append(
            (run["log10_ratio_h"], twin["log10_ratio_h"], float(np.max(np.abs(a - b) / np.abs(a)))))
    rows = []
    print(f"{'kind':8s} {'norm':5s} {'depth':>5s}  {'max |diff| (dec)':>16s}  {'max rel diff':>12s}  "
          f"{'compiled':>20s}  {'numpy':>20s}")
    for (kind, norm, depth), v in groups.items():
        diff = max(abs(c - n) for c, n, _ in v)
        rel = max(r for _, _, r in v)
        compiled, numpy_ = describe(c for c, _, _ in v), describe(n for _, n, _ in v)
        rows.append({"kind": kind, "norm": norm, "depth": depth, "max_abs_diff_decades": diff,
                     "max_rel_diff_grad_h_norm": rel, "compiled": compiled, "numpy": numpy_})
        print(f"{kind:8s} {norm:5s} {depth:5d}  {diff:16.2g}  {rel:12.2g}  {mean_sd_text(compiled):>20s}  "
              f"{mean_sd_text(numpy_):>20s}")
    from tinygrad_vg.lab.provenance import provenance
    (HERE / "backends.json").write_text(json.dumps({"rows": rows, "options": options,
                                                    "provenance": provenance({"seeds": seeds})}, indent=1))
    print(f"wrote {HERE / 'backends.json'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="use seed indices 0..N-1 (default: the spec's)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--backends", action="store_true", help="compare the kernel backends instead")
    args = parser.parse_args()
    if args.backends:
        return backends(args.seeds or 5)

    from tinygrad_vg import kernels
    from tinygrad_vg.lab.provenance import cpu_model
    from tinygrad_vg.lab.sweep import close_client, dask_client, expand, load_spec, run_sweep
    spec = load_spec(SPEC)
    if args.seeds:
        spec.seeds = list(range(args.seeds))
    points = len(expand(spec))
    ways = [("joblib, 1 worker", 1), ("joblib, 2 workers", 2)] + ([] if args.no_dask else [("dask LocalCluster, 2 workers", 2)])
    results: dict[str, list[dict]] = {name: [] for name, _ in ways}
    reference = None
    print(f"{points} runs of {SPEC.name} ({len(spec.seeds)} seeds), kernels: {kernels.BACKEND}, CPU: {cpu_model()}, "
          f"{os.cpu_count()} cores", flush=True)
    for repeat in range(args.repeat):
        for name, workers in ways:
            client, startup = None, 0.0
            if name.startswith("dask"):
                t0 = time.perf_counter()
                client = dask_client(local_workers=workers)
                startup = time.perf_counter() - t0
            load_before = os.getloadavg()[0]
            with tempfile.TemporaryDirectory() as out:
                try:
                    result = run_sweep(spec, out, jobs=None if client else workers, client=client, fresh=True,
                                       plot=False)
                finally:
                    if client is not None:
                        close_client(client)
            busy = sum(r["wall_time_s"] for r in result.rows)
            cpu = sum(r["cpu_time_s"] for r in result.rows)
            entry = {"wall_s": result.seconds, "busy_s": busy, "cpu_s": cpu, "startup_s": startup, "workers": workers,
                     "overhead_ms": 1000 * (result.seconds * workers - busy) / points,
                     "load_before": load_before, "load_after": os.getloadavg()[0], "failed": result.failed}
            results[name].append(entry)
            rows = _what(result.rows)
            if reference is None:
                reference = rows
            entry["rows_equal_first_way"] = rows == reference
            print(f"  [{repeat + 1}/{args.repeat}] {name:30s} {result.seconds:7.1f} s  busy {busy:7.1f} s  cpu {cpu:7.1f} s  "
                  f"overhead {entry['overhead_ms']:6.1f} ms/run  startup {startup:4.1f} s  load {load_before:.1f}"
                  f"  rows equal: {entry['rows_equal_first_way']}", flush=True)
    best = {name: min(v, key=lambda e: e["wall_s"]) for name, v in results.items()}
    one, two = best["joblib, 1 worker"]["wall_s"], best["joblib, 2 workers"]["wall_s"]
    summary = {"speedup_2_vs_1": one / two, "target_speedup": 1.8}
    if "dask LocalCluster, 2 workers" in best:
        dask = best["dask LocalCluster, 2 workers"]
        summary.update(dask_overhead_ms=dask["overhead_ms"], dask_vs_joblib=dask["wall_s"] / two,
                       target_overhead_ms=50, target_dask_vs_joblib=1.15)
    from tinygrad_vg.lab.provenance import provenance
    record = {"spec": str(SPEC.relative_to(HERE.parent)), "runs": points, "seeds": spec.seeds, "results": results,
              "best": best, "summary": summary, "provenance": provenance({"seeds": args.seeds, "repeat": args.repeat})}
    (HERE / "sweep.json").write_text(json.dumps(record, indent=1))
    print(f"\n2 workers vs 1: {summary['speedup_2_vs_1']:.2f}x (target >= 1.8x)")
    if "dask_overhead_ms" in summary:
        print(f"Dask LocalCluster: {summary['dask_overhead_ms']:.1f} ms overhead per run (target < 50), "
              f"{summary['dask_vs_joblib']:.2f}x joblib's wall time with 2 workers (target <= 1.15)")
    print(f"wrote {HERE / 'sweep.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
