"""What lab.GradFlowMonitor costs a training step: the seed net (W1: 20 layers x 20 units,
tanh, batch 32, float32, SGD, nn.deep_mlp as a user writes it), without a monitor, with one
that is not sampling (every=10**9: only its forward hook runs), and with one sampling every
10 steps (the sampled steps' copies, norms and hooks amortised over 10).

    .venv/bin/python benchmarks/monitor.py            # writes benchmarks/monitor.json

Target (issue 19): under 3% when not sampling. The medians of whole steps resolve that only
to a few percent on a shared machine, so the forward hook's own call is also timed alone. The three variants run in turn, a block of
20 steps each per round (round robin), so that a slow phase of the shared machine falls
on all of them alike; each figure is the median per-step time over the rounds, at 1 thread.
"""
from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BLOCK, ROUNDS, WARMUP = 20, 300, 20


def make_step(every: int | None):
    import tinygrad_vg as tg
    from tinygrad_vg import functional as F

    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((32, 20)).astype(np.float32))
    target = tg.Tensor(rng.standard_normal((32, 20)).astype(np.float32))
    model = tg.nn.deep_mlp("plain", 20, 20, activation="tanh", rng=0)
    opt = tg.optim.SGD(list(model.parameters()), lr=1e-3)
    monitor = tg.lab.GradFlowMonitor(model, every=every) if every is not None else None

    def step() -> None:
        loss = F.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, monitor


def main() -> None:
    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(1)
    except ImportError:
        limit = None
    import tinygrad_vg as tg
    variants = {"no monitor": None, "monitor, not sampling": 10 ** 9, "monitor, every=10": 10}
    steps = {name: make_step(every) for name, every in variants.items()}
    for step, _ in steps.values():
        for _ in range(WARMUP):
            step()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, (step, _) in steps.items():
            start = time.perf_counter()
            for _ in range(BLOCK):
                step()
            times[name].append((time.perf_counter() - start) / BLOCK)
    base = statistics.median(times["no monitor"])
    rows = []
    for name in variants:
        median = statistics.median(times[name])
        rows.append({"variant": name, "ms_per_step": median * 1e3, "overhead": median / base - 1})
    # the not-sampling cost on its own: the forward hook's call (a counter and a modulo), which the
    # step-time medians above resolve only to a few percent on a shared machine
    import timeit
    idle = steps["monitor, not sampling"][1]
    calls = 100_000
    hook = timeit.timeit(lambda: idle._on_forward(idle.model, (), None), number=calls) / calls
    idle.step = 1   # as if those calls had not happened
    sampled = steps["monitor, every=10"][1]
    assert sampled is not None and len(sampled.records) > 0
    print(f"GradFlowMonitor overhead on W1 (seed net), median of {ROUNDS} rounds of {BLOCK} steps, 1 thread, "
          f"kernels: {tg.kernels.BACKEND}")
    print(f"{'variant':<24} {'ms/step':>8} {'overhead':>9}")
    for row in rows:
        print(f"{row['variant']:<24} {row['ms_per_step']:8.3f} {row['overhead']:+9.1%}")
    print(f"the forward hook alone, not sampling: {hook * 1e6:.2f} us per step = {hook / base:.2%} of the step")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    result = {"workload": "W1 plain tanh 20x20, batch 32, float32, SGD", "rounds": ROUNDS, "block": BLOCK,
              "threads": 1 if limit is not None else "default", "backend": tg.kernels.BACKEND, "cpu": cpu,
              "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d"), "rows": rows,
              "hook_us_per_step": hook * 1e6, "hook_share_of_step": hook / base,
              "target": "not sampling: overhead under 3%"}
    (HERE / "monitor.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
