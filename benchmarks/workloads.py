"""The benchmark workloads W1-W5 of issue 5, one builder per (workload, implementation).

A builder returns `step()`, a closure that runs ONE training step (forward, backward,
SGD update, float32) on data and parameters it made once; run_all.py times it. Every
implementation of a workload computes the same thing from the same seed:

    W1  plain net: 20 layers x 20 units, tanh, batch 32; loss = mean((h - target)^2)
    W1b W1 at batch 1 (the only size micrograd, a scalar engine, can do in useful time)
    W2  residual tanh net, width 64, batch 32, depth 1000: h = h + tanh(h W^T + b)
        (W2-100: the same at depth 100, for the linear-in-depth check)
    W3  plain ReLU net, width 1024, depth 8, batch 256; "gemm_floor" times only its
        23 GEMMs (8 forward, 8 grad_W, 7 grad_x: the input needs no gradient)
    W4  LSTM, input 32, hidden 64, batch 16, T = 1000, loss over every output, full BPTT
    W5  kernels alone: tanh backward g * (1 - y*y) on 1e6 float32 (effective GB/s over
        the 12 MB read and written), and a 20 x 20 float32 matmul

Implementations: tinygrad_vg (nn modules as a user writes them), tinygrad_vg_fused
(one F.linear_act node per layer, when the engine has it), numpy (forward and backward
by hand, no autodiff), torch, torch_fused (W4: nn.LSTM; W5: aten's tanh_backward),
mygrad, autograd (HIPS), micrograd (W1b only). A builder raises ImportError when its
package is missing (run_all.py turns that into a note) and NotTimed when the
implementation does not apply to the workload (skipped silently).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

DTYPE = np.float32


class NotTimed(LookupError):
    """This implementation is not timed on this workload (not applicable)."""
LR = 1e-3

WORKLOADS = {
    "W1": dict(kind="plain", width=20, depth=20, batch=32, act="tanh"),
    "W1b": dict(kind="plain", width=20, depth=20, batch=1, act="tanh"),
    "W2": dict(kind="residual", width=64, depth=1000, batch=32, act="tanh"),
    "W2-100": dict(kind="residual", width=64, depth=100, batch=32, act="tanh"),
    "W3": dict(kind="plain", width=1024, depth=8, batch=256, act="relu"),
    "W4": dict(input=32, hidden=64, batch=16, steps=1000),
    "W5-tanh_backward": dict(n=1_000_000),
    "W5-matmul20": dict(n=20),
}
DESCRIPTIONS = {
    "W1": "20 layers x 20 units, tanh, batch 32, plain",
    "W1b": "W1 at batch 1",
    "W2": "residual tanh, width 64, batch 32, depth 1000",
    "W2-100": "W2 at depth 100",
    "W3": "plain ReLU, width 1024, depth 8, batch 256",
    "W4": "LSTM in 32, hidden 64, batch 16, T=1000, full BPTT",
    "W5-tanh_backward": "tanh backward g*(1-y*y), 1e6 float32",
    "W5-matmul20": "matmul 20x20 @ 20x20 float32",
}


# ---------------------------------------------------------------- shared data

def mlp_data(cfg: dict) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """Weights (out, in) ~ N(0, 1/in) (Xavier-like for square layers; He-like scale
    for ReLU), zero biases, input and target. Same for every implementation."""
    rng = np.random.default_rng(0)
    w, n = cfg["width"], cfg["depth"]
    gain = 2.0 if cfg["act"] == "relu" else 1.0
    weights = [(rng.standard_normal((w, w)) * np.sqrt(gain / w)).astype(DTYPE) for _ in range(n)]
    biases = [np.zeros(w, DTYPE) for _ in range(n)]
    x = rng.standard_normal((cfg["batch"], w)).astype(DTYPE)
    target = rng.standard_normal((cfg["batch"], w)).astype(DTYPE)
    return weights, biases, x, target


def lstm_data(cfg: dict):
    """weight_ih (4H, D), weight_hh (4H, H), bias (4H,) ~ U(-1/sqrt H, 1/sqrt H); x (T, N, D)."""
    rng = np.random.default_rng(1)
    d, h, n, t = cfg["input"], cfg["hidden"], cfg["batch"], cfg["steps"]
    k = 1 / np.sqrt(h)
    w_ih = rng.uniform(-k, k, (4 * h, d)).astype(DTYPE)
    w_hh = rng.uniform(-k, k, (4 * h, h)).astype(DTYPE)
    b_ih = rng.uniform(-k, k, 4 * h).astype(DTYPE)
    b_hh = rng.uniform(-k, k, 4 * h).astype(DTYPE)
    x = rng.standard_normal((t, n, d)).astype(DTYPE)
    target = rng.standard_normal((t, n, h)).astype(DTYPE)
    return w_ih, w_hh, b_ih, b_hh, x, target


# ---------------------------------------------------------------- tinygrad_vg

def _tg_sgd_step(loss, params) -> None:
    for p in params:
        p.grad = None
    loss.backward()
    for p in params:
        p.data -= LR * p.grad


def tinygrad_vg_mlp(cfg: dict, fused: bool = False) -> Callable[[], None]:
    """tinygrad_vg as a user writes it: nn.deep_mlp, F.mse_loss, optim.SGD. With fused=True,
    the same net written with F.linear_act (one tape node per layer)."""
    import tinygrad_vg as tg
    from tinygrad_vg import functional as F

    weights, biases, x_np, target_np = mlp_data(cfg)
    x, target = tg.Tensor(x_np), tg.Tensor(target_np)
    if not fused:
        model = tg.nn.deep_mlp(cfg["kind"], cfg["width"], cfg["depth"], activation=cfg["act"], rng=0)
        for block, w, b in zip(model.blocks, weights, biases):
            block.linear.weight.data[...] = w
            block.linear.bias.data[...] = b
        params = list(model.parameters())
        opt = tg.optim.SGD(params, lr=LR)

        def step() -> None:
            loss = F.mse_loss(model(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    if not hasattr(F, "linear_act"):
        raise ImportError("this tinygrad_vg has no F.linear_act")
    ws = [tg.nn.Parameter(w) for w in weights]
    bs = [tg.nn.Parameter(b) for b in biases]
    params = ws + bs
    opt = tg.optim.SGD(params, lr=LR)
    act, residual = cfg["act"], cfg["kind"] == "residual"

    def step() -> None:
        h = x
        for w, b in zip(ws, bs):
            h = F.linear_act(h, w, b, act, residual=residual)
        loss = F.mse_loss(h, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def tinygrad_vg_unlocked(cfg: dict) -> Callable[[], None]:
    """tinygrad_vg's net (nn.deep_mlp) with memory locking switched off, for this benchmark
    only: the nodes lock nothing (their arrays_to_lock returns nothing) while the step runs.
    Its time against tinygrad_vg's is what the in-place safety costs when nothing is changed
    in place."""
    import tinygrad_vg as tg

    inner = tinygrad_vg_mlp(cfg)
    classes = [tg.autograd.Function, tg.ops.LinearActStack]
    originals = [cls.__dict__["arrays_to_lock"] for cls in classes]

    def nothing(self):
        return ()

    def step() -> None:
        for cls in classes:
            cls.arrays_to_lock = nothing
        try:
            inner()
        finally:
            for cls, original in zip(classes, originals):
                cls.arrays_to_lock = original
    return step


def tinygrad_vg_lstm(cfg: dict) -> Callable[[], None]:
    import tinygrad_vg as tg
    from tinygrad_vg import functional as F

    w_ih, w_hh, b_ih, b_hh, x_np, target_np = lstm_data(cfg)
    model = tg.nn.LSTM(cfg["input"], cfg["hidden"])
    for name, value in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih),
                        ("bias_hh_l0", b_hh)):
        getattr(model, name).data[...] = value
    x, target = tg.Tensor(x_np), tg.Tensor(target_np)
    opt = tg.optim.SGD(list(model.parameters()), lr=LR)

    def step() -> None:
        out, _ = model(x)
        loss = F.mse_loss(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


# ---------------------------------------------------------------- hand-written numpy

def numpy_mlp(cfg: dict) -> Callable[[], None]:
    """Forward, backward and SGD by hand: what an autodiff engine has to match."""
    weights, biases, x, target = mlp_data(cfg)
    relu, residual = cfg["act"] == "relu", cfg["kind"] == "residual"

    def step() -> None:
        hs, ys = [x], []
        h = x
        for w, b in zip(weights, biases):
            z = h @ w.T
            z += b
            y = np.maximum(z, 0, out=z) if relu else np.tanh(z, out=z)
            ys.append(y)
            h = h + y if residual else y
            hs.append(h)
        diff = h - target
        grad_h = diff * (2.0 / diff.size)
        for i in range(len(weights) - 1, -1, -1):
            y = ys[i]
            grad_z = grad_h * (y > 0) if relu else grad_h * (1 - y * y)
            grad_w = grad_z.T @ hs[i]
            grad_b = grad_z.sum(axis=0)
            if i > 0:
                grad_x = grad_z @ weights[i]
                grad_h = grad_h + grad_x if residual else grad_x
            weights[i] -= LR * grad_w
            biases[i] -= LR * grad_b
    return step


def numpy_gemm_floor(cfg: dict) -> Callable[[], None]:
    """Only the GEMMs of a training step of the plain net, into preallocated outputs."""
    weights, _, x, _ = mlp_data(cfg)
    n, w = x.shape
    acts = [np.empty((n, w), DTYPE) for _ in weights]
    grad = np.ones((n, w), DTYPE) * 1e-3
    grad_w = np.empty((w, w), DTYPE)
    grad_x = np.empty((n, w), DTYPE)

    def step() -> None:
        h = x
        for wt, a in zip(weights, acts):
            np.matmul(h, wt.T, out=a)
            h = a
        for i in range(len(weights) - 1, -1, -1):
            np.matmul(grad.T, acts[i - 1] if i else x, out=grad_w)
            if i > 0:
                np.matmul(grad, weights[i], out=grad_x)
    return step


def _sigmoid_np(z, out=None):
    # 1/(1+exp(-z)) written with tanh: never overflows, one transcendental
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def numpy_lstm(cfg: dict) -> Callable[[], None]:
    """LSTM forward and BPTT by hand: one input-projection GEMM for all steps, one
    recurrent GEMM per step each way, gate nonlinearities in place."""
    w_ih, w_hh, b_ih, b_hh, x, target = lstm_data(cfg)
    t_steps, n, _ = x.shape
    hid = cfg["hidden"]
    params = [w_ih, w_hh, b_ih, b_hh]

    def step() -> None:
        proj = (x.reshape(t_steps * n, -1) @ w_ih.T + (b_ih + b_hh)).reshape(t_steps, n, 4 * hid)
        gates = np.empty_like(proj)
        cs = np.empty((t_steps + 1, n, hid), DTYPE)
        hs = np.empty((t_steps + 1, n, hid), DTYPE)
        tcs = np.empty((t_steps, n, hid), DTYPE)
        cs[0] = 0
        hs[0] = 0
        for t in range(t_steps):
            g = gates[t]
            np.matmul(hs[t], w_hh.T, out=g)
            g += proj[t]
            _sigmoid_np(g[:, :2 * hid], out=g[:, :2 * hid])
            np.tanh(g[:, 2 * hid:3 * hid], out=g[:, 2 * hid:3 * hid])
            _sigmoid_np(g[:, 3 * hid:], out=g[:, 3 * hid:])
            i, f, gg, o = g[:, :hid], g[:, hid:2 * hid], g[:, 2 * hid:3 * hid], g[:, 3 * hid:]
            c = cs[t + 1]
            np.multiply(f, cs[t], out=c)
            c += i * gg
            np.tanh(c, out=tcs[t])
            np.multiply(o, tcs[t], out=hs[t + 1])
        out = hs[1:]
        grad_out = (out - target) * (2.0 / out.size)
        grad_gates = np.empty_like(gates)
        grad_h = np.zeros((n, hid), DTYPE)
        grad_c = np.zeros((n, hid), DTYPE)
        grad_w_hh = np.zeros_like(w_hh)
        for t in range(t_steps - 1, -1, -1):
            g = gates[t]
            i, f, gg, o = g[:, :hid], g[:, hid:2 * hid], g[:, 2 * hid:3 * hid], g[:, 3 * hid:]
            grad_h += grad_out[t]
            tc = tcs[t]
            grad_c += grad_h * o * (1 - tc * tc)
            dg = grad_gates[t]
            dg[:, :hid] = grad_c * gg * i * (1 - i)
            dg[:, hid:2 * hid] = grad_c * cs[t] * f * (1 - f)
            dg[:, 2 * hid:3 * hid] = grad_c * i * (1 - gg * gg)
            dg[:, 3 * hid:] = grad_h * tc * o * (1 - o)
            grad_c *= f
            grad_w_hh += dg.T @ hs[t]
            grad_h = dg @ w_hh
        flat = grad_gates.reshape(t_steps * n, -1)
        grad_w_ih = flat.T @ x.reshape(t_steps * n, -1)
        grad_b = flat.sum(axis=0)
        for p, g in zip(params, (grad_w_ih, grad_w_hh, grad_b, grad_b)):
            p -= LR * g
    return step


# ---------------------------------------------------------------- torch

def _torch():
    import torch
    return torch


def torch_mlp(cfg: dict) -> Callable[[], None]:
    torch = _torch()
    weights, biases, x_np, target_np = mlp_data(cfg)
    layers = []
    for w, b in zip(weights, biases):
        lin = torch.nn.Linear(cfg["width"], cfg["width"])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
    act = torch.relu if cfg["act"] == "relu" else torch.tanh
    residual = cfg["kind"] == "residual"
    params = [p for lin in layers for p in lin.parameters()]
    opt = torch.optim.SGD(params, lr=LR)
    x, target = torch.from_numpy(x_np), torch.from_numpy(target_np)

    def step() -> None:
        h = x
        for lin in layers:
            h = h + act(lin(h)) if residual else act(lin(h))
        loss = torch.nn.functional.mse_loss(h, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def torch_lstm(cfg: dict, fused: bool) -> Callable[[], None]:
    """fused: torch.nn.LSTM (one call for the sequence); else torch.nn.LSTMCell step by step."""
    torch = _torch()
    w_ih, w_hh, b_ih, b_hh, x_np, target_np = lstm_data(cfg)
    mod = (torch.nn.LSTM if fused else torch.nn.LSTMCell)(cfg["input"], cfg["hidden"])
    suffix = "_l0" if fused else ""
    with torch.no_grad():
        for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
            getattr(mod, name + suffix).copy_(torch.from_numpy(value))
    opt = torch.optim.SGD(mod.parameters(), lr=LR)
    x, target = torch.from_numpy(x_np), torch.from_numpy(target_np)
    n, hid = x.shape[1], cfg["hidden"]

    def step() -> None:
        if fused:
            out, _ = mod(x)
        else:
            h = c = torch.zeros(n, hid)
            outs = []
            for t in range(x.shape[0]):
                h, c = mod(x[t], (h, c))
                outs.append(h)
            out = torch.stack(outs)
        loss = torch.nn.functional.mse_loss(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


# ---------------------------------------------------------------- mygrad

def mygrad_mlp(cfg: dict) -> Callable[[], None]:
    import mygrad as mg
    from mygrad.nnet.activations import relu

    weights, biases, x_np, target_np = mlp_data(cfg)
    params = [[mg.Tensor(w) for w in weights], [mg.Tensor(b) for b in biases]]
    act = relu if cfg["act"] == "relu" else mg.tanh
    residual = cfg["kind"] == "residual"

    def step() -> None:
        ws, bs = params
        h = x_np
        for w, b in zip(ws, bs):
            y = act(mg.matmul(h, w.T) + b)
            h = h + y if residual else y
        loss = mg.mean((h - target_np) ** 2)
        loss.backward()
        # mygrad locks arrays while a graph is alive: new parameter tensors each step
        params[0] = [mg.Tensor(w.data - LR * w.grad) for w in ws]
        params[1] = [mg.Tensor(b.data - LR * b.grad) for b in bs]
    return step


def mygrad_lstm(cfg: dict) -> Callable[[], None]:
    import mygrad as mg
    from mygrad.nnet.activations import sigmoid

    w_ih, w_hh, b_ih, b_hh, x_np, target_np = lstm_data(cfg)
    params = [mg.Tensor(p) for p in (w_ih, w_hh, b_ih, b_hh)]
    hid = cfg["hidden"]

    def step() -> None:
        wi, wh, bi, bh = params
        n = x_np.shape[1]
        h = c = np.zeros((n, hid), DTYPE)
        outs = []
        for t in range(x_np.shape[0]):
            g = mg.matmul(x_np[t], wi.T) + bi + mg.matmul(h, wh.T) + bh
            i, f = sigmoid(g[:, :hid]), sigmoid(g[:, hid:2 * hid])
            gg, o = mg.tanh(g[:, 2 * hid:3 * hid]), sigmoid(g[:, 3 * hid:])
            c = f * c + i * gg
            h = o * mg.tanh(c)
            outs.append(h)
        loss = mg.mean((mg.stack(outs) - target_np) ** 2)
        loss.backward()
        params[:] = [mg.Tensor(p.data - LR * p.grad) for p in params]
    return step


# ---------------------------------------------------------------- HIPS autograd

def autograd_mlp(cfg: dict) -> Callable[[], None]:
    import autograd
    import autograd.numpy as anp

    weights, biases, x, target = mlp_data(cfg)
    relu, residual = cfg["act"] == "relu", cfg["kind"] == "residual"

    def loss_fn(params):
        ws, bs = params
        h = x
        for w, b in zip(ws, bs):
            z = anp.dot(h, w.T) + b
            y = anp.maximum(z, 0.0) if relu else anp.tanh(z)
            h = h + y if residual else y
        return anp.mean((h - target) ** 2)

    grad_fn = autograd.grad(loss_fn)

    def step() -> None:
        grad_ws, grad_bs = grad_fn((weights, biases))
        for p, g in zip(weights + biases, list(grad_ws) + list(grad_bs)):
            p -= LR * g
    return step


def autograd_lstm(cfg: dict) -> Callable[[], None]:
    import autograd
    import autograd.numpy as anp

    w_ih, w_hh, b_ih, b_hh, x, target = lstm_data(cfg)
    params = [w_ih, w_hh, b_ih, b_hh]
    hid = cfg["hidden"]

    def sigmoid(z):
        return 0.5 * anp.tanh(0.5 * z) + 0.5

    def loss_fn(ps):
        wi, wh, bi, bh = ps
        n = x.shape[1]
        h = c = np.zeros((n, hid), DTYPE)
        outs = []
        for t in range(x.shape[0]):
            g = anp.dot(x[t], wi.T) + bi + anp.dot(h, wh.T) + bh
            i, f = sigmoid(g[:, :hid]), sigmoid(g[:, hid:2 * hid])
            gg, o = anp.tanh(g[:, 2 * hid:3 * hid]), sigmoid(g[:, 3 * hid:])
            c = f * c + i * gg
            h = o * anp.tanh(c)
            outs.append(h)
        return anp.mean((anp.stack(outs) - target) ** 2)

    grad_fn = autograd.grad(loss_fn)

    def step() -> None:
        for p, g in zip(params, grad_fn(params)):
            p -= LR * g
    return step


# ---------------------------------------------------------------- micrograd (W1b only)

def micrograd_mlp(cfg: dict) -> Callable[[], None]:
    from micrograd.engine import Value

    if cfg["batch"] != 1:
        raise NotTimed("micrograd is scalar-valued: timed at batch 1 only (W1b)")
    def tanh(v: Value) -> Value:
        # micrograd 0.1.0 (PyPI) has relu only; tanh written the micrograd way
        t = float(np.tanh(v.data))
        out = Value(t, (v,), "tanh")

        def _backward() -> None:
            v.grad += (1 - t * t) * out.grad
        out._backward = _backward
        return out

    weights, biases, x_np, target_np = mlp_data(cfg)
    ws = [[[Value(float(v)) for v in row] for row in w] for w in weights]
    bs = [[Value(float(v)) for v in b] for b in biases]
    params = [v for w in ws for row in w for v in row] + [v for b in bs for v in b]
    x, target = [float(v) for v in x_np[0]], [float(v) for v in target_np[0]]

    def step() -> None:
        h = x
        for w, b in zip(ws, bs):
            h = [tanh(sum((wi * hi for wi, hi in zip(row, h)), bias)) for row, bias in zip(w, b)]
        loss = sum(((hi - ti) ** 2 for hi, ti in zip(h, target)), Value(0.0)) * (1.0 / len(h))
        for p in params:
            p.grad = 0.0
        loss.backward()
        for p in params:
            p.data -= LR * p.grad
    return step


# ---------------------------------------------------------------- W5: kernels alone

def kernel_case(name: str, impl: str) -> Callable[[], None]:
    """W5 steps. impl: tinygrad_vg (the active backend's kernel), numpy (the plain
    expression; `numpy_out`: with out= buffers), torch_fused (aten's fused kernel)."""
    rng = np.random.default_rng(5)
    if name == "W5-tanh_backward":
        n = WORKLOADS[name]["n"]
        g = rng.standard_normal(n).astype(DTYPE)
        y = np.tanh(rng.standard_normal(n)).astype(DTYPE)
        if impl == "tinygrad_vg":
            from tinygrad_vg import kernels
            return lambda: kernels.tanh_backward(g, y)
        if impl == "numpy":
            return lambda: g * (1 - y * y)
        if impl == "numpy_out":
            buf = np.empty_like(y)

            def step() -> None:
                np.multiply(y, y, out=buf)
                np.subtract(1, buf, out=buf)
                np.multiply(g, buf, out=buf)
            return step
        if impl == "torch_fused":
            torch = _torch()
            tg_, ty = torch.from_numpy(g), torch.from_numpy(y)
            return lambda: torch.ops.aten.tanh_backward(tg_, ty)
    if name == "W5-matmul20":
        n = WORKLOADS[name]["n"]
        a = rng.standard_normal((n, n)).astype(DTYPE)
        b = rng.standard_normal((n, n)).astype(DTYPE)
        if impl == "tinygrad_vg":
            from tinygrad_vg import kernels
            return lambda: kernels.matmul(a, b)
        if impl == "numpy":
            return lambda: a @ b
        if impl == "numpy_out":
            buf = np.empty((n, n), DTYPE)
            return lambda: np.matmul(a, b, out=buf)
        if impl == "torch_fused":
            torch = _torch()
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            return lambda: ta @ tb
    raise NotTimed(f"no {impl} for {name}")


# ---------------------------------------------------------------- the table of builders

def builder(workload: str, impl: str) -> Callable[[], None]:
    """step() for one (workload, implementation); ImportError when its package is
    missing, NotTimed when it does not apply."""
    if workload.startswith("W5"):
        return kernel_case(workload, impl)
    cfg = WORKLOADS[workload]
    if workload == "W4":
        table = {"tinygrad_vg": tinygrad_vg_lstm, "numpy": numpy_lstm,
                 "torch": lambda c: torch_lstm(c, fused=False),
                 "torch_fused": lambda c: torch_lstm(c, fused=True),
                 "mygrad": mygrad_lstm, "autograd": autograd_lstm}
    else:
        table = {"tinygrad_vg": tinygrad_vg_mlp,
                 "tinygrad_vg_fused": lambda c: tinygrad_vg_mlp(c, fused=True),
                 "tinygrad_vg_unlocked": tinygrad_vg_unlocked,
                 "numpy": numpy_mlp, "torch": torch_mlp, "mygrad": mygrad_mlp,
                 "autograd": autograd_mlp, "micrograd": micrograd_mlp}
        if workload == "W3":
            table["gemm_floor"] = numpy_gemm_floor
    if impl not in table:
        raise NotTimed(f"{impl} is not timed on {workload}")
    return table[impl](cfg)
