"""The Python cost of the tape: recording one op and running its backward, on arrays
so small (2 x 2) that the arithmetic is negligible and what is timed is dispatch.

    .venv/bin/python benchmarks/dispatch.py

Prints a table (microseconds per op) and writes benchmarks/dispatch.json. Rows:
- numpy call: np.tanh on the same array, the floor any engine pays;
- kernel call: kernels.tanh_forward (the active backend), the floor of our op;
- kernel calls at the sizes of W1: tanh_backward on (32, 20), matmul 20 x 20 next to
  numpy's @, and one SGD step per parameter (kernels.sgd_step over 40 parameters);
- forward, not recorded: x.tanh() under no_grad (as_tensors, Function(), forward);
- forward, recorded: x.tanh() with requires_grad (adds seq, inputs, needs_grad);
- backward per node: a chain of 1000 tanh nodes, backward time / 1000;
- layer, two nodes / one node: F.tanh(F.linear(...)) vs F.linear_act(..., "tanh"),
  forward + backward per layer in a 100-layer chain at width 20, batch 32.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

import tinygrad_vg as tg
from tinygrad_vg import functional as F
from tinygrad_vg import kernels


def per_call_us(fn, number: int, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t) / number)
    return statistics.median(times) * 1e6


def main() -> None:
    a = np.random.default_rng(0).standard_normal((2, 2)).astype(np.float32)
    x = tg.Tensor(a, requires_grad=True)
    rows = {}
    rows["numpy call (np.tanh)"] = per_call_us(lambda: np.tanh(a), 20000)
    rows["kernel call (kernels.tanh_forward)"] = per_call_us(lambda: kernels.tanh_forward(a), 20000)
    rng = np.random.default_rng(2)
    g, y = rng.standard_normal((2, 32, 20)).astype(np.float32)
    rows["kernel call (kernels.tanh_backward, 32 x 20)"] = per_call_us(lambda: kernels.tanh_backward(g, y), 20000)
    m20, n20 = rng.standard_normal((2, 20, 20)).astype(np.float32)
    rows["numpy @ (20 x 20)"] = per_call_us(lambda: m20 @ n20, 20000)
    rows["kernel call (kernels.matmul, 20 x 20)"] = per_call_us(lambda: kernels.matmul(m20, n20), 20000)
    params = [rng.standard_normal(s).astype(np.float32) for s in [(20, 20), (20,)] * 20]
    grads = [np.zeros_like(p) for p in params]
    rows["SGD step per parameter (kernels.sgd_step, 40)"] = per_call_us(
        lambda: kernels.sgd_step(params, grads, None, 1e-3), 2000) / len(params)

    def unrecorded():
        with tg.no_grad():
            for _ in range(100):
                x.tanh()
    rows["forward, not recorded (x.tanh under no_grad)"] = per_call_us(unrecorded, 200) / 100
    rows["forward, recorded (x.tanh)"] = per_call_us(lambda: x.tanh(), 20000)

    def chain_backward():
        h = x
        for _ in range(1000):
            h = h.tanh()
        t = time.perf_counter()
        h.backward(np.ones_like(a))
        return time.perf_counter() - t
    chain_backward()
    rows["backward per node (1000-node chain)"] = statistics.median(chain_backward() for _ in range(7)) * 1e3

    rng = np.random.default_rng(1)
    ws = [tg.nn.Parameter(rng.standard_normal((20, 20)).astype(np.float32) * 0.2) for _ in range(100)]
    bs = [tg.nn.Parameter(np.zeros(20, np.float32)) for _ in range(100)]
    inp = tg.Tensor(rng.standard_normal((32, 20)).astype(np.float32))

    def layers(fused: bool):
        h = inp
        for w, b in zip(ws, bs):
            h = F.linear_act(h, w, b, "tanh") if fused else F.tanh(F.linear(h, w, b))
        h.sum().backward()
    rows["layer fwd+bwd, F.tanh(F.linear) (2 nodes)"] = per_call_us(lambda: layers(False), 20) / 100
    rows["layer fwd+bwd, F.linear_act (1 node)"] = per_call_us(lambda: layers(True), 20) / 100

    print(f"kernels: {kernels.report()}")
    width = max(map(len, rows))
    for name, us in rows.items():
        print(f"  {name:{width}s} {us:8.2f} us")
    out = Path(__file__).resolve().parent / "dispatch.json"
    out.write_text(json.dumps({"backend": kernels.BACKEND, "us": rows}, indent=1))


if __name__ == "__main__":
    main()
