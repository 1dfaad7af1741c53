"""Convolution benchmarks against PyTorch in the same run (issue #18's targets), 1 thread.

    W-conv    conv2d forward + backward: x (32, 64, 32, 32), weight (64, 64, 3, 3) + bias,
              padding 1, float32; target: at most 1.5x PyTorch's time
    W-resnet  one ResNet-20 training step (CIFAR layout, option-A shortcuts, BatchNorm in
              training mode): batch 32 of 3 x 32 x 32, cross-entropy, backward, SGD with
              momentum; float32; target: at most 2x PyTorch's time

Threads: threadpoolctl limits every BLAS pool in the process to 1 (numpy's and scipy's
OpenBLAS), torch.set_num_threads(1) torch's. Rounds are interleaved (ours, torch, ours,
torch, ...) so that a slow spell of a shared machine hits both; the table gives the best
and the median round of each. Writes benchmarks/conv.json.

    python benchmarks/conv.py             # 15 rounds of each
    python benchmarks/conv.py --rounds 5
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BATCH = 32


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------- the steps

def conv_steps(torch):
    import tinygrad_vg as tg
    from tinygrad_vg import functional as F

    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 64, 32, 32)).astype(np.float32)
    w = (rng.normal(size=(64, 64, 3, 3)) / 24).astype(np.float32)
    b = rng.normal(size=64).astype(np.float32)
    g = rng.normal(size=(BATCH, 64, 32, 32)).astype(np.float32)

    xo, wo, bo = (tg.Tensor(a, requires_grad=True) for a in (x, w, b))

    def ours():
        for t in (xo, wo, bo):
            t.grad = None
        F.conv2d(xo, wo, bo, padding=1).backward(g)

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    gt = torch.tensor(g)

    def theirs():
        for t in (xt, wt, bt):
            t.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(gt)

    return ours, theirs


def torch_resnet20(torch):
    """ResNet-20 as conv_net("residual", 20): the same layout, keys and option-A shortcuts."""
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.extra, self.stride = cout - cin, stride

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            skip = x
            if self.extra:
                skip = x[:, :, ::self.stride, ::self.stride]
                skip = tnn.functional.pad(skip, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            return torch.relu(out + skip)

    class Stem(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = tnn.BatchNorm2d(16)

        def forward(self, x):
            return torch.relu(self.bn(self.conv(x)))

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = Stem()
            blocks, cin = [], 16
            for stage, cout in enumerate((16, 32, 64)):
                for i in range(3):
                    blocks.append(Block(cin, cout, 2 if stage and i == 0 else 1))
                    cin = cout
            self.blocks = tnn.ModuleList(blocks)
            self.fc = tnn.Linear(64, 10)

        def forward(self, x):
            h = self.stem(x)
            for block in self.blocks:
                h = block(h)
            return self.fc(h.mean(dim=(2, 3)))

    return Net()


def resnet_steps(torch):
    from tinygrad_vg import functional as F
    from tinygrad_vg import nn, optim

    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, size=BATCH)

    model = nn.conv_net("residual", 20, rng=0)
    opt = optim.SGD(list(model.parameters()), lr=0.01, momentum=0.9)

    def ours():
        opt.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        opt.step()

    net = torch_resnet20(torch)
    net.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})   # same keys
    topt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    xt, lt = torch.tensor(x), torch.tensor(labels)

    def theirs():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), lt).backward()
        topt.step()

    return ours, theirs


# ---------------------------------------------------------------- timing

def interleaved(steps: dict, rounds: int, warmup: int = 2) -> dict:
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
    return {name: {"best_ms": min(ts) * 1e3, "median_ms": statistics.median(ts) * 1e3, "rounds": len(ts)}
            for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default=str(HERE / "conv.json"))
    args = parser.parse_args()
    try:
        import torch
        from threadpoolctl import threadpool_limits
    except ImportError as error:
        sys.exit(f"benchmarks/conv.py needs torch and threadpoolctl (pip install torch threadpoolctl): {error}")
    from tinygrad_vg import kernels

    torch.set_num_threads(1)
    # the compiled kernels load scipy's BLAS on first use: load it now, so that the limit below
    # applies to it (threadpoolctl limits the pools loaded when it is entered)
    kernels.conv2d_forward, kernels.matmul
    workloads = {"W-conv": (conv_steps, 1.5), "W-resnet": (resnet_steps, 2.0)}
    results = []
    with threadpool_limits(limits=1):
        for name, (build, target) in workloads.items():
            ours, theirs = build(torch)
            measured = interleaved({"tinygrad_vg": ours, "torch": theirs}, args.rounds)
            ratio_best = measured["tinygrad_vg"]["best_ms"] / measured["torch"]["best_ms"]
            ratio_median = measured["tinygrad_vg"]["median_ms"] / measured["torch"]["median_ms"]
            row = {"workload": name, "target_ratio": target, "ratio_best": ratio_best,
                   "ratio_median": ratio_median, "met": ratio_best <= target, **{
                       f"{impl}_{k}": v for impl, m in measured.items() for k, v in m.items()}}
            results.append(row)
            print(f"{name:9s} tinygrad_vg best {measured['tinygrad_vg']['best_ms']:8.1f} ms "
                  f"(median {measured['tinygrad_vg']['median_ms']:8.1f})  torch best {measured['torch']['best_ms']:8.1f} ms "
                  f"(median {measured['torch']['median_ms']:8.1f})  ratio {ratio_best:.2f}x best, "
                  f"{ratio_median:.2f}x median; target <= {target}x: {'met' if ratio_best <= target else 'MISSED'}",
                  flush=True)
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": 1, "load_average": os.getloadavg(),
            "backend": kernels.report(), "torch": torch.__version__, "numpy": np.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(args.out).write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    print(f"{info['cpu']}, load average {info['load_average'][0]:.1f}; wrote {args.out}")


if __name__ == "__main__":
    main()
