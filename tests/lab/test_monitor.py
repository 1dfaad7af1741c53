"""lab.GradFlowMonitor: its numbers are the engine's gradients and the optimizer's updates,
taken every N steps through hooks, without changing the model (the fused stack stays)."""
from __future__ import annotations

import csv
import io
import json
import math
import sys

import numpy as np
import pytest

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg import display, nn, optim
from tinygrad_vg.lab import GradFlowMonitor, monitor


def setup(kind="plain", depth=4, every=3, **options):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    model = nn.deep_mlp(kind, 5, depth, "tanh", dtype=np.float64, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mon = GradFlowMonitor(model, every=every, **options)
    return model, opt, mon, x, y


def train_step(model, opt, x, y):
    loss = F.mse_loss(model(x), tg.Tensor(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def test_records_are_the_engines_gradients_and_the_optimizers_updates_every_n_steps():
    model, opt, mon, x, y = setup(every=3)
    weights = [b.linear.weight for b in model.blocks]
    expected = []
    for step in range(8):
        before = [w.data.copy() for w in weights]
        train_step(model, opt, x, y)
        if step % 3 == 0:
            expected.append((step, [np.linalg.norm(w.grad) for w in weights], [np.linalg.norm(b) for b in before],
                             [np.linalg.norm(w.data - b) / np.linalg.norm(b) for w, b in zip(weights, before)]))
    model(x)   # the next step's forward reads the last sample's update
    assert mon.layers == [f"blocks.{i}.linear.weight" for i in range(4)]
    assert mon.step == 9 and sorted({r["step"] for r in mon.records}) == [0, 3, 6]
    for step, grads, norms, ratios in expected:
        rows = [r for r in mon.records if r["step"] == step]
        assert [r["layer"] for r in rows] == mon.layers
        np.testing.assert_allclose([r["grad_norm"] for r in rows], grads, rtol=1e-12)
        np.testing.assert_allclose([r["weight_norm"] for r in rows], norms, rtol=1e-12)
        np.testing.assert_allclose([r["update_ratio"] for r in rows], ratios, rtol=1e-9)


def test_the_last_sample_waits_for_the_next_forward_for_its_update():
    model, opt, mon, x, y = setup(every=2)
    for _ in range(3):
        train_step(model, opt, x, y)
    last = [r for r in mon.records if r["step"] == 2]
    assert all(math.isnan(r["update_ratio"]) for r in last) and all(r["grad_norm"] > 0 for r in last)


def test_forwards_without_grad_are_not_steps():
    model, opt, mon, x, y = setup(every=2)
    train_step(model, opt, x, y)
    with tg.no_grad():
        for _ in range(5):
            model(x)
    assert mon.step == 1
    train_step(model, opt, x, y)
    train_step(model, opt, x, y)
    assert sorted({r["step"] for r in mon.records}) == [0, 2]


def test_the_monitor_keeps_the_fused_stack_and_the_results():
    model, opt, mon, x, y = setup(every=1)
    assert [n.name for n in tg.tape(model(x))] == ["LinearActStack"]   # no per-layer fallback
    plain_model, plain_opt, plain_mon, _, _ = setup(every=1)
    plain_mon.remove()
    for _ in range(4):
        a = train_step(model, opt, x, y)
        b = train_step(plain_model, plain_opt, x, y)
        assert a.item() == b.item()   # watching changes nothing, bit for bit


def test_params_all_watches_biases_too_and_a_list_picks_names():
    model, opt, mon, x, y = setup(params="all", depth=2)
    assert mon.layers == ["blocks.0.linear.weight", "blocks.0.linear.bias", "blocks.1.linear.weight", "blocks.1.linear.bias"]
    model2, _, mon2, _, _ = setup(params=["blocks.1.linear.bias"], depth=2)
    train_step(model2, optim.SGD(model2.parameters(), lr=0.1), x, y)
    assert [r["layer"] for r in mon2.records] == ["blocks.1.linear.bias"]
    np.testing.assert_allclose(mon2.records[0]["grad_norm"], np.linalg.norm(model2.blocks[1].linear.bias.grad))


def test_remove_stops_recording():
    model, opt, mon, x, y = setup(every=1)
    train_step(model, opt, x, y)
    with mon:
        pass
    count = len(mon.records)
    for _ in range(3):
        train_step(model, opt, x, y)
    assert len(mon.records) == count and mon.step == 1


def test_exports_csv_and_jsonl(tmp_path):
    model, opt, mon, x, y = setup(every=2, depth=2)
    for _ in range(3):
        train_step(model, opt, x, y)
    text = mon.to_csv(tmp_path / "flow.csv")
    assert (tmp_path / "flow.csv").read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["step", "layer", "grad_norm", "weight_norm", "update_ratio"]
    assert len(rows) == 4 and float(rows[0]["grad_norm"]) == mon.records[0]["grad_norm"]
    lines = mon.to_jsonl(tmp_path / "flow.jsonl").splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0] == mon.records[0] and records[-1]["update_ratio"] is None   # NaN (not yet known) as null
    values, steps, names = mon.table("update_ratio")
    assert values.shape == (2, 2) and steps == [0, 2] and np.isnan(values[:, 1]).all()


def test_plot_draws_three_heatmaps(tmp_path):
    model, opt, mon, x, y = setup(every=1, depth=6)
    for _ in range(12):
        train_step(model, opt, x, y)
    path = mon.plot(tmp_path / "flow.png")
    from PIL import Image
    with Image.open(path) as image:
        assert image.size[0] == 1400 and image.size[1] >= 300
    picture = mon.plot()
    assert picture.fmt == "png" and picture._repr_png_()[:4] == b"\x89PNG"


def test_bad_input_is_named():
    model, opt, mon, x, y = setup()
    with pytest.raises(ValueError, match="nothing recorded yet"):
        mon.plot()
    with pytest.raises(ValueError, match="every must be a positive int .* got 0"):
        GradFlowMonitor(model, every=0)
    with pytest.raises(ValueError, match="every must be a positive int .* got 2.5"):
        GradFlowMonitor(model, every=2.5)
    with pytest.raises(TypeError, match="needs a tinygrad_vg.nn.Module, got list"):
        GradFlowMonitor([1, 2])
    with pytest.raises(ValueError, match="no parameter named 'blocks.9.weight'; the model has blocks.0.linear.weight"):
        GradFlowMonitor(model, params=["blocks.9.weight"])
    with pytest.raises(ValueError, match="params must be 'weights', 'all' or a list of names, got 'biases'"):
        GradFlowMonitor(model, params="biases")
    with pytest.raises(ValueError, match="no parameters to watch of 2 or more dimensions"):
        GradFlowMonitor(nn.LayerNorm(4))
    with pytest.raises(ValueError, match="field must be one of grad_norm, weight_norm, update_ratio; got 'loss'"):
        mon.table("loss")
    train_step(model, opt, x, y)
    with pytest.raises(ValueError, match=r"unsupported file type '.jpg'; accepted: .png, .svg, .pdf"):
        mon.plot("flow.jpg")


class Writer:
    """A stand-in for a TensorBoard SummaryWriter: what the monitor sends it."""

    def __init__(self):
        self.scalars, self.histograms = [], []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_histogram(self, tag, values, step):
        self.histograms.append((tag, np.asarray(values).shape, step))


def test_a_writer_gets_scalars_and_histograms():
    writer = Writer()
    model, opt, mon, x, y = setup(every=2, depth=2, writer=writer)
    for _ in range(3):
        train_step(model, opt, x, y)
    tags = {tag for tag, _, _ in writer.scalars}
    assert tags == {f"{field}/blocks.{i}.linear.weight" for field in ("grad_norm", "weight_norm", "update_ratio")
                    for i in range(2)}
    assert ("grad_norm/blocks.0.linear.weight", mon.records[0]["grad_norm"], 0) in writer.scalars
    assert sorted(writer.histograms, key=lambda h: (h[2], h[0])) == [
        ("grad/blocks.0.linear.weight", (5, 5), 0), ("grad/blocks.1.linear.weight", (5, 5), 0),
        ("grad/blocks.0.linear.weight", (5, 5), 2), ("grad/blocks.1.linear.weight", (5, 5), 2)]


def test_log_dir_without_tensorboardx_says_so_in_one_line_and_keeps_records(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    monkeypatch.setattr(display, "_noted", set())
    model, opt, mon, x, y = setup(log_dir=tmp_path / "runs")
    train_step(model, opt, x, y)
    assert mon.writer is None and mon.records
    assert capsys.readouterr().err == ("tinygrad_vg: GradFlowMonitor(log_dir=...) for TensorBoard (it keeps its own "
                                       "records) needs tensorboardX (pip install 'tinygrad_vg[notebook]')\n")


def test_log_dir_with_tensorboardx_writes_an_event_file(tmp_path):
    pytest.importorskip("tensorboardX")
    model, opt, mon, x, y = setup(log_dir=tmp_path / "runs", depth=2)
    for _ in range(4):
        train_step(model, opt, x, y)
    mon.remove()
    mon.writer.close()
    assert [p.name for p in (tmp_path / "runs").iterdir()][0].startswith("events.out.tfevents")


def test_monitor_module_docstring_names_its_design():
    assert "Design:" in monitor.__doc__
