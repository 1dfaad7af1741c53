"""tinygrad_vg/nn/dropout.py: Dropout (inverted, train/eval through the Module's flag, a seeded
numpy Generator as nn.init takes it) and Flatten, with torch.nn's names and reprs."""
import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import nn
from tinygrad_vg.gradcheck import gradcheck


def test_dropout_in_training_zeroes_with_probability_p_and_scales_the_rest():
    drop = nn.Dropout(0.25, rng=0)
    x = tg.Tensor(np.ones((200, 500)), requires_grad=True)
    y = drop(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.75)


def test_dropout_in_eval_mode_is_the_identity_and_train_turns_it_back_on():
    model = nn.Sequential(nn.Linear(4, 4, rng=0), nn.Dropout(0.5, rng=1))
    x = tg.Tensor(np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32))
    model.eval()
    np.testing.assert_array_equal(model(x).data, model[0](x).data)
    model.train()
    assert np.any(model(x).data != model[0](x).data)


def test_dropout_masks_are_reproducible_from_a_seed_and_differ_between_calls():
    x = tg.Tensor(np.ones(64))
    a, b = nn.Dropout(0.5, rng=7), nn.Dropout(0.5, rng=7)
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert np.any(a(x).data != first)   # the module keeps drawing from its generator
    shared = np.random.default_rng(3)
    np.testing.assert_array_equal(nn.Dropout(0.5, rng=shared)(x).data != 0,
                                  np.random.default_rng(3).random(64) >= 0.5)


def test_dropout_gradient_against_finite_differences():
    x = np.random.default_rng(4).normal(size=(3, 5))
    drop = nn.Dropout(0.4)

    def fn(t):
        drop.rng = np.random.default_rng(5)   # the same mask at every evaluation
        return drop(t)

    assert gradcheck(fn, [x])


def test_dropout_reprs_and_errors_follow_torch():
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1, inplace=False)"
    for p in (-0.5, 1.01, "a", None):
        with pytest.raises(ValueError, match="probability"):
            nn.Dropout(p)
    with pytest.raises(ValueError, match="inplace=True is not supported"):
        nn.Dropout(0.5, inplace=True)
    with pytest.raises(TypeError, match="Generator"):
        nn.Dropout(0.5, rng="seed")
    assert list(nn.Dropout().parameters()) == [] and nn.Dropout().state_dict() == {}


def test_flatten_keeps_the_batch_axis_by_default_as_torch():
    x = np.random.default_rng(6).normal(size=(2, 3, 4, 5))
    assert nn.Flatten()(tg.Tensor(x)).shape == (2, 60)
    assert nn.Flatten(0, 2)(tg.Tensor(x)).shape == (24, 5)
    assert nn.Flatten(-2)(tg.Tensor(x)).shape == (2, 3, 20)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert gradcheck(nn.Flatten(1, 2), [x])
    with pytest.raises(ValueError, match="comes after"):
        nn.Flatten(2, 1)(tg.Tensor(x))


def test_a_classifier_with_flatten_and_dropout_trains():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(64, 2, 3)).astype(np.float32)
    y = (x.reshape(64, -1).sum(axis=1) > 0).astype(np.int64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 16, rng=0), nn.ReLU(), nn.Dropout(0.2, rng=1), nn.Linear(16, 2, rng=2))
    opt = tg.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        loss = tg.functional.cross_entropy(model(tg.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    accuracy = np.mean(tg.argmax(model(tg.Tensor(x)), dim=1).data == y)
    assert accuracy > 0.9


def test_dropout_inside_a_checkpoint_backpropagates_the_mask_it_used():
    drop, rng = nn.Dropout(0.5), np.random.default_rng(9)
    drop.rng = rng
    x = tg.Tensor(np.random.default_rng(10).normal(size=(4, 6)), requires_grad=True)
    y = tg.checkpoint(lambda t: drop(t).tanh(), x, rng=rng)
    mask = y.data != 0
    y.backward(np.ones((4, 6)))
    np.testing.assert_allclose(x.grad, np.where(mask, 2.0 * (1 - y.data ** 2), 0.0), rtol=1e-12)
