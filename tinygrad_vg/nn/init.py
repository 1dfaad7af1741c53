"""Weight initializers. Each fills a Parameter in place (torch.nn.init style, trailing
underscore) and takes a numpy Generator, so runs are reproducible.

fan_in / fan_out of a weight of shape (out, in) are in / out (torch's convention).

| name            | distribution                                  |
| standard        | U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch.nn.Linear's default; Glorot & Bengio's "standard") |
| lecun_normal    | N(0, 1/fan_in)                                |
| xavier_normal   | N(0, gain^2 * 2/(fan_in + fan_out))           |
| xavier_uniform  | U(-a, a), a = gain * sqrt(6/(fan_in + fan_out)) |
| he_normal       | N(0, gain^2/fan), gain = sqrt(2) for relu      |
| he_uniform      | U(-a, a), a = gain * sqrt(3/fan)               |
| orthogonal      | a (semi-)orthogonal matrix times gain          |
| scaled_normal   | N(0, s^2/fan_in) with s given by the caller    |
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "zeros_", "constant_", "standard_", "lecun_normal_",
    "xavier_normal_", "xavier_uniform_", "he_normal_", "he_uniform_", "kaiming_normal_",
    "kaiming_uniform_", "orthogonal_", "scaled_normal_", "INITIALIZERS", "initialize",
]

_GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0,
          "relu": math.sqrt(2.0), "selu": 0.75, "gelu": math.sqrt(2.0), "elu": math.sqrt(2.0),
          "softplus": 1.0}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain: the factor that keeps activation variance steady."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; accepted: "
                         f"{sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def _fans(shape: tuple) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"fan_in and fan_out need a weight with at least 2 dimensions; got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _rng(rng: Any) -> np.random.Generator:
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, an int seed or None; got {type(rng).__name__}")
    return rng


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    # reshaped first, then cast: the cast makes an array of its own, not a view of another
    # (a view would be locked with its base whenever a graph saves the parameter)
    t.data = values.reshape(t.data.shape).astype(t.data.dtype)
    return t


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, rng: Any = None) -> Tensor:
    return _fill(t, _rng(rng).uniform(a, b, size=t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, rng: Any = None) -> Tensor:
    return _fill(t, _rng(rng).normal(mean, std, size=t.shape))


def zeros_(t: Tensor) -> Tensor:
    return _fill(t, np.zeros(t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    return _fill(t, np.full(t.shape, value))


def standard_(t: Tensor, fan_in: int | None = None, rng: Any = None) -> Tensor:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)); for a bias give the layer's fan_in."""
    n = fan_in if fan_in is not None else _fans(t.shape)[0]
    bound = 1.0 / math.sqrt(n) if n > 0 else 0.0
    return uniform_(t, -bound, bound, rng)


def lecun_normal_(t: Tensor, rng: Any = None) -> Tensor:
    return normal_(t, 0.0, 1.0 / math.sqrt(_fans(t.shape)[0]), rng)


def xavier_normal_(t: Tensor, gain: float = 1.0, rng: Any = None) -> Tensor:
    fan_in, fan_out = _fans(t.shape)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def xavier_uniform_(t: Tensor, gain: float = 1.0, rng: Any = None) -> Tensor:
    fan_in, fan_out = _fans(t.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound, rng)


def _fan(t: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(t.shape)
    return fan_in if mode == "fan_in" else fan_out


def he_normal_(t: Tensor, mode: str = "fan_in", nonlinearity: str = "relu", rng: Any = None) -> Tensor:
    return normal_(t, 0.0, calculate_gain(nonlinearity) / math.sqrt(_fan(t, mode)), rng)


def he_uniform_(t: Tensor, mode: str = "fan_in", nonlinearity: str = "relu", rng: Any = None) -> Tensor:
    bound = calculate_gain(nonlinearity) * math.sqrt(3.0 / _fan(t, mode))
    return uniform_(t, -bound, bound, rng)


kaiming_normal_ = he_normal_
kaiming_uniform_ = he_uniform_


def orthogonal_(t: Tensor, gain: float = 1.0, rng: Any = None) -> Tensor:
    """QR of a Gaussian matrix, signs fixed so the result is uniformly distributed."""
    rows = t.shape[0]
    cols = int(np.prod(t.shape[1:]))
    a = _rng(rng).normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, gain * q[:rows, :cols])


def scaled_normal_(t: Tensor, scale: float = 1.0, rng: Any = None) -> Tensor:
    """N(0, scale^2 / fan_in): in a deep linear net the gradient scales as scale^(L-l)."""
    return normal_(t, 0.0, scale / math.sqrt(_fans(t.shape)[0]), rng)


INITIALIZERS = ("standard", "lecun_normal", "xavier_normal", "xavier_uniform", "he_normal",
                "he_uniform", "orthogonal", "scaled_normal")


def initialize(weight: Tensor, name: str, rng: Any = None, activation: str = "tanh",
               scale: float = 1.0) -> Tensor:
    """Initialize `weight` by name (one of INITIALIZERS). He inits use the activation's gain
    (relu's sqrt(2) for ReLU-like ones); xavier uses gain 1 (Glorot & Bengio's form)."""
    if name == "standard":
        return standard_(weight, rng=rng)
    if name == "lecun_normal":
        return lecun_normal_(weight, rng=rng)
    if name == "xavier_normal":
        return xavier_normal_(weight, rng=rng)
    if name == "xavier_uniform":
        return xavier_uniform_(weight, rng=rng)
    if name in ("he_normal", "he_uniform"):
        nonlin = activation if activation in _GAINS or activation == "leaky_relu" else "relu"
        fn = he_normal_ if name == "he_normal" else he_uniform_
        return fn(weight, nonlinearity=nonlin, rng=rng)
    if name == "orthogonal":
        return orthogonal_(weight, rng=rng)
    if name == "scaled_normal":
        return scaled_normal_(weight, scale=scale, rng=rng)
    raise ValueError(f"unknown init {name!r}; accepted: {', '.join(INITIALIZERS)}")
