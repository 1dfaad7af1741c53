"""Run the workloads W1-W5 (benchmarks/workloads.py) for every implementation that is
installed, at 1 and 2 threads, and write benchmarks/results.json, RESULTS.md and
results.png.

    .venv/bin/python benchmarks/run_all.py            # full run (a few minutes)
    .venv/bin/python benchmarks/run_all.py --quick    # fewer repetitions, 1 thread only

Design:
- One process times the compiled backend, hand-written numpy and the peers, so their
  ratios come from the same run. The numpy backend of tinygrad_vg is chosen at import
  (TINYGRAD_VG_BACKEND), so it runs in a child process (`--worker`) that prints JSON.
- Threads: threadpoolctl limits every BLAS/OpenMP pool loaded in the process
  (numpy's and scipy's OpenBLAS); torch.set_num_threads sets torch's.
- Each figure is the median of repeated steps after warm-up. The implementations of one
  workload are timed in turn, one step each per round (round robin), so that a slow
  phase of the shared machine falls on all of them alike rather than on whichever was
  being timed; rounds stop at a time budget (per implementation) or a repetition cap,
  whichever comes first (slow peers get few). Two cases time each implementation on
  its own instead: W5 (single kernel calls), so that its arrays stay in cache between
  calls, as in the issue's reference figures (interleaved, every call would start cold);
  and 2 threads, where interleaving would alternate two OpenBLAS thread pools (numpy's
  and scipy's), whose workers spin for a while after each call and so would take the
  second core from each other.
- RESULTS.md is generated: tables, machine, versions, targets. The analysis text
  (what the profile shows, what is left) is kept by hand in benchmarks/ANALYSIS.md
  and copied in, so a re-run never loses it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import workloads as W  # noqa: E402

IMPLS = ["tinygrad_vg", "tinygrad_vg_fused", "tinygrad_vg_unlocked", "tinygrad_vg[numpy]", "tinygrad_vg_fused[numpy]",
         "numpy", "gemm_floor", "torch", "torch_fused", "mygrad", "autograd", "micrograd"]
W5_IMPLS = ["tinygrad_vg", "tinygrad_vg[numpy]", "numpy", "numpy_out", "torch_fused"]
WORKER_IMPLS = ["tinygrad_vg", "tinygrad_vg_fused"]   # what the numpy-backend child runs


def measure(steps: dict, budget: float, caps: dict, min_reps: int = 3) -> dict:
    """{name: median (and quartiles) in ms} of each steps[name]() after warm-up, timed in
    rounds: one call of each per round, each until it has caps[name] repetitions or has
    used its budget (seconds of its own steps), with at least min_reps each."""
    for step in steps.values():
        t0 = time.perf_counter()
        step()
        if time.perf_counter() - t0 < budget / 4:
            step()   # a second warm-up when it is cheap
    times: dict = {name: [] for name in steps}
    while True:
        active = [name for name, ts in times.items()
                  if len(ts) < caps[name] and (len(ts) < min_reps or sum(ts) < budget)]
        if not active:
            break
        for name in active:
            t = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t)
    out = {}
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
        out[name] = {"median_ms": statistics.median(ts) * 1e3, "p25_ms": q[0] * 1e3,
                     "p75_ms": q[2] * 1e3, "reps": len(ts)}
    return out


def set_threads(n: int):
    """A context that limits BLAS/OpenMP pools to n threads (and torch, if loaded)."""
    from threadpoolctl import threadpool_limits
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return threadpool_limits(limits=n)


def run(workloads: list[str], impls: list[str], threads: list[int], budget: float,
        label_suffix: str = "") -> tuple[list[dict], dict]:
    results, notes = [], {}
    for n_threads in threads:
        for wl in workloads:
            steps, caps = {}, {}
            for impl in (W5_IMPLS if wl.startswith("W5") else impls):
                if impl.endswith("[numpy]") or (label_suffix and impl not in WORKER_IMPLS):
                    continue   # the child times tinygrad_vg only; W5's others run in the parent
                try:
                    steps[impl] = W.builder(wl, impl)
                except W.NotTimed:
                    continue
                except ImportError as error:
                    notes[f"{wl}/{impl}"] = str(error)
                    continue
                slow = impl in ("autograd", "micrograd", "mygrad") and wl in ("W2", "W4")
                caps[impl] = 8 if slow else 2000
            if not steps:
                continue
            with set_threads(n_threads):
                if wl.startswith("W5") or n_threads > 1:   # each timed on its own (see the docstring)
                    measured = {}
                    for impl, step in steps.items():
                        measured.update(measure({impl: step}, budget, caps))
                else:
                    measured = measure(steps, budget, caps)
            for impl, m in measured.items():
                m.update(workload=wl, impl=impl + label_suffix, threads=n_threads)
                results.append(m)
                print(f"  {wl:18s} {impl + label_suffix:26s} {n_threads} thr  "
                      f"{m['median_ms']:10.3f} ms  (n={m['reps']})", flush=True)
            del steps
    return results, notes


def numpy_backend(workloads: list[str], threads: list[int], budget: float) -> list[dict]:
    """tinygrad_vg with TINYGRAD_VG_BACKEND=numpy, in a child process."""
    cmd = [sys.executable, __file__, "--worker", "--budget", str(budget),
           "--workloads", ",".join(workloads), "--threads", ",".join(map(str, threads))]
    env = {**os.environ, "TINYGRAD_VG_BACKEND": "numpy"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    sys.stdout.write(out.stderr)
    return json.loads(out.stdout)


# ---------------------------------------------------------------- machine and versions

def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    info = {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = sorted({f"{p['internal_api']} {p['version']} ({p.get('architecture')}, "
                               f"{Path(p['filepath']).name})" for p in threadpool_info()})
    except ImportError:
        info["blas"] = ["threadpoolctl not installed"]
    return info


def versions() -> dict:
    from importlib import metadata
    out = {}
    for name in ("tinygrad_vg", "numpy", "scipy", "Cython", "torch", "mygrad", "autograd", "micrograd",
                 "threadpoolctl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    import tinygrad_vg.kernels as k
    out["tinygrad_vg kernels"] = k.report() if hasattr(k, "report") else k.BACKEND
    return out


# ---------------------------------------------------------------- report

def lookup(results: list[dict], wl: str, impl: str, threads: int) -> float | None:
    for r in results:
        if r["workload"] == wl and r["impl"] == impl and r["threads"] == threads:
            return r["median_ms"]
    return None


def targets(results: list[dict]) -> list[dict]:
    """Each target of issue 5 with its measured ratio, at 1 thread (W3: best of 1 and 2)."""
    rows = []

    def best_tg(wl, threads=1):
        cands = [(lookup(results, wl, i, threads), i) for i in ("tinygrad_vg", "tinygrad_vg_fused")]
        cands = [c for c in cands if c[0] is not None]
        return min(cands) if cands else (None, None)

    def add(target, ours, ours_impl, ref, ref_name, limit, higher_is_better=False):
        if ours is None or ref is None:
            rows.append({"target": target, "measured": "not measured", "met": None})
            return
        ratio = ours / ref
        met = ratio >= limit if higher_is_better else ratio <= limit
        rows.append({"target": target, "ours": f"{ours_impl} {ours:.3f} ms",
                     "reference": f"{ref_name} {ref:.3f} ms", "ratio": ratio, "limit": limit,
                     "met": met})

    t, i = best_tg("W1")
    add("W1: <= 1.0x hand-written numpy", t, i, lookup(results, "W1", "numpy", 1), "numpy", 1.0)
    torch_w1 = lookup(results, "W1", "torch", 1)
    if t is not None and torch_w1 is not None:
        add("W1: >= 3x faster than torch eager (torch / ours)", torch_w1, "torch", t, i, 3.0,
            higher_is_better=True)
    t, i = best_tg("W2")
    add("W2: <= 1.0x hand-written numpy", t, i, lookup(results, "W2", "numpy", 1), "numpy", 1.0)
    for impl in ("tinygrad_vg", "tinygrad_vg_fused"):
        t1000, t100 = lookup(results, "W2", impl, 1), lookup(results, "W2-100", impl, 1)
        if t1000 is not None and t100 is not None:
            add(f"W2: depth 1000 within 1.1x of 10 x depth 100 ({impl})", t1000, impl, 10 * t100,
                f"10 x {impl} at depth 100", 1.1)
    for n_threads in (1, 2):
        t, i = best_tg("W3", n_threads)
        add(f"W3: within 1.15x of the GEMMs-alone floor ({n_threads} thread{'s' if n_threads > 1 else ''})",
            t, i, lookup(results, "W3", "gemm_floor", n_threads), "gemm_floor", 1.15)
    t, i = best_tg("W4")
    add("W4: <= 1.0x torch fused nn.LSTM", t, i, lookup(results, "W4", "torch_fused", 1), "torch nn.LSTM", 1.0)
    k = lookup(results, "W5-tanh_backward", "tinygrad_vg", 2) or lookup(results, "W5-tanh_backward", "tinygrad_vg", 1)
    if k is not None:
        gbs = 12e6 / (k * 1e-3) / 1e9
        rows.append({"target": "W5: tanh backward >= 50 GB/s effective (12 MB moved)",
                     "ours": f"{k:.3f} ms = {gbs:.1f} GB/s", "reference": "50 GB/s",
                     "ratio": gbs / 50, "limit": 1.0, "met": gbs >= 50})
    add("W5: matmul n=20 faster than numpy @", lookup(results, "W5-matmul20", "tinygrad_vg", 1),
        "kernels.matmul", lookup(results, "W5-matmul20", "numpy", 1), "numpy @", 1.0)
    # issue 13 (engine core v2): the ratio to numpy within 5% of the round before, and what
    # memory locking costs when nothing is changed in place (same net, locks switched off)
    for wl in ("W1", "W2"):
        ours, ref = lookup(results, wl, "tinygrad_vg", 1), lookup(results, wl, "numpy", 1)
        if ours is not None and ref is not None:
            before, now = PREVIOUS_RATIO[wl], ours / ref
            rows.append({"target": f"{wl}: tinygrad_vg / numpy within 5% of the last run before engine v2",
                         "ours": f"{now:.3f} (tinygrad_vg {ours:.3f} ms / numpy {ref:.3f} ms)",
                         "reference": f"{before:.2f} (2026-11-23)", "ratio": now / before, "limit": 1.05,
                         "met": now / before <= 1.05})
        add(f"{wl}: cost of memory locking (tinygrad_vg / the same net with locks off)", ours,
            "tinygrad_vg", lookup(results, wl, "tinygrad_vg_unlocked", 1), "tinygrad_vg_unlocked", 1.05)
    return rows


# tinygrad_vg / numpy at 1 thread in the last run before engine core v2 (2026-11-23, RESULTS.md)
PREVIOUS_RATIO = {"W1": 0.84, "W2": 0.95}


def write_report(data: dict) -> None:
    results = data["results"]
    lines = ["# Benchmarks", "",
             "Generated by `benchmarks/run_all.py`" + (" --quick" if data["quick"] else "") +
             f" on {data['date']}. Medians of repeated training steps (forward + backward + SGD, "
             "float32) after warm-up, in milliseconds; all columns from the same run. "
             "`tinygrad_vg` is the net as a user writes it with `nn` (deep_mlp / nn.LSTM); "
             "`tinygrad_vg_fused` is the same net written with `F.linear_act` (one tape node per layer); "
             "`[numpy]` means the numpy kernel backend (TINYGRAD_VG_BACKEND=numpy, in a child process); "
             "`numpy` is forward and backward written by hand, no autodiff. W5 rows time one kernel call.",
             ""]
    impls = [i for i in IMPLS + ["numpy_out"] if any(r["impl"] == i for r in results)]
    for n_threads in data["threads"]:
        lines += [f"## {n_threads} thread{'s' if n_threads > 1 else ''}", "",
                  "| workload | " + " | ".join(impls) + " |",
                  "| --- |" + " ---: |" * len(impls)]
        for wl in W.WORKLOADS:
            row = [lookup(results, wl, i, n_threads) for i in impls]
            if all(v is None for v in row):
                continue
            cells = ["" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}") for v in row]
            lines.append(f"| {wl}: {W.DESCRIPTIONS[wl]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Targets (issue 5)", "", "| target | ours | reference | ratio | limit | met |",
              "| --- | --- | --- | ---: | ---: | --- |"]
    for row in data["targets"]:
        if row["met"] is None:
            lines.append(f"| {row['target']} | not measured | | | | |")
        else:
            lines.append(f"| {row['target']} | {row['ours']} | {row['reference']} | {row['ratio']:.2f} | "
                         f"{row['limit']} | {'met' if row['met'] else '**missed**'} |")
    lines += ["", "## Machine and versions", ""]
    for key, value in data["machine"].items():
        lines.append(f"- {key}: {', '.join(value) if isinstance(value, list) else value}")
    for key, value in data["versions"].items():
        lines.append(f"- {key}: {value if value is not None else 'not installed (skipped)'}")
    if data["notes"]:
        lines += ["", "## Skipped", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(data["notes"].items())]
    memory = HERE / "memory.json"   # written by benchmarks/memory.py (issue 6)
    if memory.exists():
        from memory import markdown as memory_markdown
        mem = json.loads(memory.read_text())
        lines += ["", "## Memory (benchmarks/memory.py)", "",
                  f"Each configuration in a fresh process; machine: {mem['machine']}; torch: {mem['torch']}.", "",
                  memory_markdown(mem)]
    analysis = HERE / "ANALYSIS.md"
    if analysis.exists():
        lines += ["", analysis.read_text().rstrip()]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


def write_chart(data: dict) -> None:
    try:
        import matplotlib
        import matplotlib.ticker
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    results = data["results"]
    wls = [w for w in W.WORKLOADS if not w.startswith("W5") and any(r["workload"] == w for r in results)]
    impls = [i for i in IMPLS if any(r["impl"] == i and r["workload"] in wls for r in results)]
    cols = 3
    rows = -(-len(wls) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(wls):]:
        ax.set_visible(False)
    for ax, wl in zip(axes, wls):
        vals = [(i, lookup(results, wl, i, 1)) for i in impls]
        vals = [(i, v) for i, v in vals if v is not None]
        ax.barh([i for i, _ in vals], [v for _, v in vals],
                color=["tab:red" if i.startswith("tinygrad") else "tab:gray" for i, _ in vals])
        ax.set_xscale("log")
        # labels at 1, 2, 5 x 10^k: readable whether a panel spans one decade or four
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", labelsize=7, labelrotation=45)
        ax.set_title(f"{wl}: {W.DESCRIPTIONS.get(wl, '')}", fontsize=9, wrap=True)
        ax.set_xlabel("ms per step (1 thread, log)")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short budgets, 1 thread only")
    parser.add_argument("--workloads", default=",".join(W.WORKLOADS))
    parser.add_argument("--threads", default=None, help="e.g. 1,2")
    parser.add_argument("--budget", type=float, default=None, help="seconds per measurement")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite RESULTS.md and results.png from results.json, no timing")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report_only:
        data = json.loads((HERE / "results.json").read_text())
        data["notes"] = {k: v for k, v in data["notes"].items() if "not timed" not in v
                         and "scalar-valued" not in v}
        data["targets"] = targets(data["results"])
        (HERE / "results.json").write_text(json.dumps(data, indent=1, default=str))
        write_report(data)
        write_chart(data)
        return
    workloads = args.workloads.split(",")
    threads = [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")]
    budget = args.budget or (0.3 if args.quick else 1.0)

    if args.worker:   # the numpy-backend child: only tinygrad_vg, JSON on stdout
        sys.stdout = sys.stderr   # progress lines go to stderr
        results, _ = run(workloads, WORKER_IMPLS, threads, budget, label_suffix="[numpy]")
        sys.stdout = sys.__stdout__
        print(json.dumps(results))
        return

    try:
        import torch  # noqa: F401  (loaded first so set_threads can reach it)
    except ImportError:
        pass
    import tinygrad_vg.kernels as kernels
    print(f"tinygrad_vg kernels: {kernels.BACKEND}; threads {threads}; budget {budget}s", flush=True)
    t0 = time.time()
    results, notes = run(workloads, [i for i in IMPLS if not i.endswith("[numpy]")], threads, budget)
    print("numpy kernel backend (child process):", flush=True)
    results += numpy_backend(workloads, threads, budget)
    data = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": args.quick, "threads": threads,
            "machine": machine_info(), "versions": versions(), "results": results, "notes": notes}
    data["targets"] = targets(results)
    (HERE / "results.json").write_text(json.dumps(data, indent=1, default=str))
    write_report(data)
    write_chart(data)
    print(f"wrote benchmarks/RESULTS.md, results.json, results.png in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
