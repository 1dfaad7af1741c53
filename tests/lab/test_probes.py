"""The probe's numbers are the engine's own gradients, not approximations."""
import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import nn
from tinygrad_vg.lab import Probe, fit_log10_slope, layer_summary, log10_ratio
from tinygrad_vg.lab.probes import norm


@pytest.mark.parametrize("kind", [k for k in nn.KINDS if k != "dense"])   # dense: tests/lab/test_architectures.py
def test_probe_equals_direct_gradients(kind):
    rng = np.random.default_rng(3)
    model = nn.deep_mlp(kind, 6, 5, "tanh", init="standard", dtype=np.float64, rng=rng)
    x = rng.normal(size=(4, 6))
    y = rng.normal(size=(4, 6))

    # direct: run the blocks by hand and retain every intermediate's gradient
    h0 = tg.Tensor(x, requires_grad=True)
    hs = [h0]
    for block in model.blocks:
        hs.append(block(hs[-1]))
        hs[-1].retain_grad()
    tg.functional.mse_loss(hs[-1], y).backward()
    direct = [h.grad.copy() for h in hs]
    direct_w = [np.sqrt(sum(np.sum(p.grad ** 2) for n, p in b.named_parameters() if n.endswith("weight")))
                for b in model.blocks]

    model.zero_grad()
    with Probe(model.blocks) as probe:
        tg.functional.mse_loss(model(tg.Tensor(x, requires_grad=True)), y).backward()
        for got, want, h in zip(probe.grad_h, direct, hs):
            np.testing.assert_array_equal(got, want)
        for got, h in zip(probe.h, hs):
            np.testing.assert_array_equal(got, h.data)
        np.testing.assert_allclose(probe.grad_h_norm(), [np.linalg.norm(g) for g in direct], rtol=1e-14)
        np.testing.assert_allclose(probe.grad_W_norm(), direct_w, rtol=1e-12)
        assert probe.log10_ratio_h() == pytest.approx(
            np.log10(np.linalg.norm(direct[1]) / np.linalg.norm(direct[-1])))


def test_probe_removes_its_hooks():
    model = nn.deep_mlp("plain", 3, 2, dtype=np.float64, rng=0)
    probe = Probe(model.blocks)
    probe.remove()
    model(tg.Tensor(np.ones((2, 3)), requires_grad=True)).sum().backward()
    assert probe.grad_h == [None, None, None]


def test_input_gradient_needs_requires_grad():
    model = nn.deep_mlp("plain", 3, 2, dtype=np.float64, rng=0)
    with Probe(model.blocks) as probe:
        model(tg.Tensor(np.ones((2, 3)))).sum().backward()
        norms = probe.grad_h_norm()
    assert norms[0] is None and all(n is not None for n in norms[1:])


def test_summaries_and_helpers():
    s = layer_summary(np.array([[0.0, 0.995], [-0.5, 0.0]]))
    assert s["saturated"] == 0.25 and s["zero"] == 0.5
    assert s["norm"] == pytest.approx(np.sqrt(0.995 ** 2 + 0.25))
    assert log10_ratio(1e-3, 1.0) == pytest.approx(-3)
    assert log10_ratio(0.0, 1.0) is None
    assert fit_log10_slope([1, 10, 100, 1000]) == pytest.approx(1.0)
    assert fit_log10_slope([0.0, 0.0, 1.0]) is None


def test_norm_does_not_underflow_before_the_entries_do():
    g = np.full(4, 1e-200)
    assert np.linalg.norm(g) == 0.0            # what a plain norm would report
    assert norm(g) == pytest.approx(2e-200)    # entries are representable, so is their norm
    assert norm(np.zeros(3)) == 0.0 and norm(np.array([])) == 0.0
