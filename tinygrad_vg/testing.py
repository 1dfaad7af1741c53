"""Hypothesis strategies for property-testing ops and layers, and assert_gradcheck.

    from hypothesis import given
    from tinygrad_vg.testing import arrays, assert_gradcheck

    @given(x=arrays(away_from=(0.0,)))      # relu has a kink at 0
    def test_relu_gradient(x):
        assert_gradcheck(tg.relu, x)

Design: values stay finite and bounded, and at least `margin` away from the points
you name (kinks such as relu at 0, poles such as log at 0), because finite
differences across a kink or near a pole are wrong, not the op. Values are drawn
from the pieces of the range that are left, not filtered, so many points and wide
margins cost nothing. Upstream gradients are seeded normal draws, not hypothesis
floats, so shrinking never reduces them to all zeros or all ones, which hide bugs.
hypothesis is a test extra: this module imports without it and says so when a
strategy is asked for.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .gradcheck import gradcheck
from .tensor import Tensor

__all__ = ["arrays", "tensors", "broadcastable_shapes", "grad_like", "assert_gradcheck"]


def _hypothesis() -> tuple:
    try:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp
    except ImportError as error:
        raise ImportError("tinygrad_vg.testing needs hypothesis: pip install hypothesis "
                          "(it is in the test extra: pip install 'tinygrad_vg[test]')") from error
    return st, hnp


def arrays(shape: Any = None, dtype: Any = np.float64, min_value: float = -3, max_value: float = 3,
           away_from: Any = (), margin: float = 1e-2, min_dims: int = 0, max_dims: int = 3,
           min_side: int = 1, max_side: int = 5, positive: bool = False) -> Any:
    """Strategy for float arrays: finite, in [min_value, max_value], and at least `margin`
    from every point in `away_from`. positive=True draws from [margin, max_value].
    The shape is `shape` if given, else drawn from the dims and sides bounds."""
    st, hnp = _hypothesis()
    dtype = np.dtype(dtype)
    lo = margin if positive else min_value
    away = np.atleast_1d(np.asarray(away_from, dtype=np.float64))
    pieces = _allowed_intervals(lo, max_value, away, margin)
    if not pieces:
        raise ValueError(f"arrays: nothing is left of [{lo}, {max_value}] at distance >= {margin} "
                         f"from {away.tolist()}")

    def allowed(x: Any) -> bool:   # checked after rounding to dtype, so float32 obeys it too
        return lo <= x <= max_value and bool(np.all(np.abs(float(x) - away) >= margin))

    elements = st.one_of([st.floats(a, b, allow_nan=False, allow_infinity=False) for a, b in pieces])
    elements = elements.map(dtype.type).filter(allowed)
    shapes = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                              max_side=max_side) if shape is None else st.just(shape)
    return hnp.arrays(dtype, shapes, elements=elements)


def _allowed_intervals(lo: float, hi: float, away: np.ndarray, margin: float) -> list[tuple]:
    """[lo, hi] with the points closer than margin to any point in away cut out."""
    pieces = [(lo, hi)] if lo <= hi else []
    for p in away.tolist():
        cut = [((a, min(b, p - margin)), (max(a, p + margin), b)) for a, b in pieces]
        pieces = [(a, b) for pair in cut for a, b in pair if a <= b]
    return pieces


def tensors(shape: Any = None, requires_grad: bool = True, **array_options: Any) -> Any:
    """Strategy for Tensors wrapping `arrays(shape, **array_options)`."""
    return arrays(shape, **array_options).map(lambda a: Tensor(a, requires_grad=requires_grad))


def broadcastable_shapes(n: int = 2, min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
                         max_side: int = 4) -> Any:
    """Strategy for (input_shapes, result_shape): n shapes that broadcast together, and their
    broadcast shape. Unpack as `(shape_a, shape_b), result = draw(broadcastable_shapes())`."""
    _, hnp = _hypothesis()
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=min_dims, max_dims=max_dims,
                                             min_side=min_side, max_side=max_side)


def grad_like(tensor_or_shape: Any) -> Any:
    """Strategy for an upstream gradient of that shape (and dtype, for a tensor or array):
    a seeded standard-normal draw, never all ones or all zeros."""
    st, _ = _hypothesis()
    if isinstance(tensor_or_shape, (Tensor, np.ndarray)):
        shape, dtype = tensor_or_shape.shape, tensor_or_shape.dtype
    else:
        shape, dtype = tensor_or_shape, np.float64
    return st.integers(0, 2**32 - 1).map(
        lambda seed: np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def assert_gradcheck(fn: Callable[..., Tensor], *inputs: Any, **options: Any) -> None:
    """gradcheck(fn, inputs, **options), raising GradcheckError (an AssertionError) on mismatch."""
    gradcheck(fn, inputs, raise_exception=True, **options)
