"""tinygrad_vg/nn/init.py: each initializer's empirical distribution on a big matrix
against its formula, orthogonality, reproducibility, and name checking.

A weight has shape (fan_out, fan_in). With 300 x 500 = 150,000 draws the sample std
is within ~0.2% of the true one (one standard error ~ 1/sqrt(2n)), so a 2% margin
never fails by chance yet catches any wrong formula (the closest wrong one, e.g.
fan_in swapped for fan_out here, is off by 29%).
"""
import math

import numpy as np
import pytest

from tinygrad_vg import nn
from tinygrad_vg.nn import init

FAN_OUT, FAN_IN = 300, 500


def weight():
    return nn.Parameter(np.empty((FAN_OUT, FAN_IN), dtype=np.float64))


# name -> (fill function, expected std, uniform bound or None)
NORMAL_AND_UNIFORM = {
    "lecun_normal": (lambda w: init.lecun_normal_(w, rng=0), math.sqrt(1 / FAN_IN), None),
    "xavier_normal": (lambda w: init.xavier_normal_(w, rng=0), math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    "xavier_normal_gain": (lambda w: init.xavier_normal_(w, gain=5 / 3, rng=0),
                           5 / 3 * math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    "xavier_uniform": (lambda w: init.xavier_uniform_(w, rng=0), None, math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "he_normal": (lambda w: init.he_normal_(w, rng=0), math.sqrt(2 / FAN_IN), None),
    "he_normal_fan_out": (lambda w: init.kaiming_normal_(w, mode="fan_out", rng=0), math.sqrt(2 / FAN_OUT), None),
    "he_normal_tanh": (lambda w: init.he_normal_(w, nonlinearity="tanh", rng=0), 5 / 3 / math.sqrt(FAN_IN), None),
    "he_uniform": (lambda w: init.he_uniform_(w, rng=0), None, math.sqrt(2) * math.sqrt(3 / FAN_IN)),
    "he_uniform_fan_out": (lambda w: init.kaiming_uniform_(w, mode="fan_out", rng=0), None,
                           math.sqrt(2) * math.sqrt(3 / FAN_OUT)),
    "standard": (lambda w: init.standard_(w, rng=0), None, 1 / math.sqrt(FAN_IN)),
    "scaled_normal": (lambda w: init.scaled_normal_(w, scale=2.5, rng=0), 2.5 / math.sqrt(FAN_IN), None),
    "normal": (lambda w: init.normal_(w, 0.0, 0.3, rng=0), 0.3, None),
    "uniform": (lambda w: init.uniform_(w, -0.7, 0.7, rng=0), None, 0.7),
}


@pytest.mark.parametrize("name", list(NORMAL_AND_UNIFORM))
def test_initializer_matches_its_formula(name):
    fill, std, bound = NORMAL_AND_UNIFORM[name]
    w = fill(weight()).data
    assert w.shape == (FAN_OUT, FAN_IN) and w.dtype == np.float64
    if bound is not None:   # U(-a, a): every value inside, the extremes reached, std a / sqrt(3)
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.999 * bound
        std = bound / math.sqrt(3)
    else:                   # normal: about 0.3% of draws beyond 3 std, none beyond 6
        assert 0.0015 < np.mean(np.abs(w) > 3 * std) < 0.0045
        assert np.abs(w).max() < 6 * std
    assert np.std(w) == pytest.approx(std, rel=0.02)
    assert abs(np.mean(w)) < 0.02 * std


@pytest.mark.parametrize("shape", [(4, 9), (9, 4), (6, 6), (40, 100)])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal_rows_or_columns_are_orthonormal(shape, gain):
    w = init.orthogonal_(nn.Parameter(np.empty(shape)), gain=gain, rng=3).data
    rows, cols = shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_keeps_float32():
    w = init.orthogonal_(nn.Parameter(np.empty((5, 8), np.float32)), rng=0).data
    assert w.dtype == np.float32
    np.testing.assert_allclose(w @ w.T, np.eye(5), atol=1e-5)


def test_standard_bias_uses_the_layers_fan_in():
    b = init.standard_(nn.Parameter(np.empty(20000)), fan_in=25, rng=0).data
    assert np.abs(b).max() <= 0.2 and np.abs(b).max() > 0.199


@pytest.mark.parametrize("name", init.INITIALIZERS)
def test_initialize_by_name_is_reproducible_from_a_seed(name):
    def small():   # small: LAPACK's QR (orthogonal) is slow under a busy multithreaded BLAS
        return nn.Parameter(np.empty((30, 50)))

    a = init.initialize(small(), name, rng=7).data
    b = init.initialize(small(), name, rng=np.random.default_rng(7)).data
    c = init.initialize(small(), name, rng=8).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.isfinite(a).all() and a.std() > 0


def test_initialize_uses_the_activation_gain_for_he_and_scale_for_scaled_normal():
    relu = init.initialize(weight(), "he_normal", rng=0, activation="relu").data
    assert relu.std() == pytest.approx(math.sqrt(2 / FAN_IN), rel=0.02)
    tanh = init.initialize(weight(), "he_uniform", rng=0, activation="tanh").data
    assert np.abs(tanh).max() <= 5 / 3 * math.sqrt(3 / FAN_IN)
    scaled = init.initialize(weight(), "scaled_normal", rng=0, scale=0.5).data
    assert scaled.std() == pytest.approx(0.5 / math.sqrt(FAN_IN), rel=0.02)


def test_linear_init_name_selects_the_initializer():
    layer = nn.Linear(FAN_IN, FAN_OUT, init_name="xavier_normal", rng=0, dtype=np.float64)
    assert layer.weight.data.std() == pytest.approx(math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.02)
    assert np.all(layer.bias.data == 0)   # torch's convention for non-default inits: zero bias


def test_calculate_gain_matches_torch():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75


def test_unknown_names_and_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="'zeros'.*accepted.*standard.*orthogonal"):
        init.initialize(weight(), "zeros")
    with pytest.raises(ValueError, match="'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="fan_in.*fan_out"):
        init.he_normal_(weight(), mode="fan_avg")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_normal_(nn.Parameter(np.empty(5)))
    with pytest.raises(TypeError, match="Generator"):
        init.normal_(weight(), rng="seed")
    with pytest.raises(ValueError, match="accepted"):
        nn.Linear(3, 2, init_name="glorot")
