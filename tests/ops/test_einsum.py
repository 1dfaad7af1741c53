"""tinygrad_vg/ops/einsum.py: einsum against numpy for values and central differences for
the gradient of every operand, over subscripts that exercise each rule of the backward:
plain contractions, batch and "..." axes (broadcasting too), the implicit output, a
letter only one operand has (summed away), and a repeated letter (a diagonal)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg.gradcheck import gradcheck

FEW = settings(max_examples=max(10, settings.default.max_examples // 5))

# subscripts -> operand shapes in letters ("." is a broadcast axis of size 1 or its letter's size)
CASES = {
    "ij,jk->ik": ["ij", "jk"],
    "ij,jk": ["ij", "jk"],                  # implicit output: ik
    "bij,bjk->bik": ["bij", "bjk"],
    "...ij,...jk->...ik": ["bij", "jk"],    # the second operand broadcasts over b
    "...i,...i": ["abi", "bi"],             # implicit output with "...": ab
    "ii->i": ["ii"],                        # a diagonal
    "ii": ["ii"],                           # the trace
    "iij->j": ["iij"],
    "ij->": ["ij"],
    "ij->j": ["ij"],                        # i only in the operand: summed away
    "i,i->": ["i", "i"],
    "i,j->ij": ["i", "j"],
    "ijk->kji": ["ijk"],
    "ij,ij->ij": ["ij", "ij"],
    "ab,bc,cd->ad": ["ab", "bc", "cd"],
    "ab,c->a": ["ab", "c"],                 # b and c each only in one operand
}


@pytest.mark.parametrize("subscripts", list(CASES))
@FEW
@given(sizes=st.fixed_dictionaries({c: st.integers(1, 3) for c in "abcdijk"}), seed=st.integers(0, 2**32 - 1))
def test_einsum_matches_numpy_and_finite_differences_for_every_operand(subscripts, sizes, seed):
    rng = np.random.default_rng(seed)
    sizes["i"] = sizes["i"] if "ii" not in subscripts else max(sizes["i"], 2)
    operands = [rng.normal(size=tuple(sizes[c] for c in letters)) for letters in CASES[subscripts]]
    out = tg.einsum(subscripts, *operands)
    np.testing.assert_allclose(out.data, np.einsum(subscripts, *operands), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda *ts: tg.einsum(subscripts, *ts), operands)


def test_einsum_with_broadcasting_size_one_ellipsis_axes():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 1, 3)), rng.normal(size=(4, 3))
    np.testing.assert_allclose(tg.einsum("...i,...i->...", a, b).data, np.einsum("...i,...i->...", a, b))
    assert gradcheck(lambda x, y: tg.einsum("...i,...i->...", x, y), [a, b])


def test_einsum_errors_name_the_problem():
    x = tg.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="name 2 operand"):
        tg.einsum("ij,jk->ik", x)
    with pytest.raises(ValueError, match="do not fit an operand with 2"):
        tg.einsum("ijk->i", x)
    with pytest.raises(ValueError, match="distinct letters"):
        tg.einsum("ij->ii", x)
    with pytest.raises(ValueError, match="not a letter"):
        tg.einsum("i1->i", x)
    with pytest.raises(ValueError, match="shapes"):
        tg.einsum("ij,ij->", x, tg.Tensor(np.ones((3, 2))))
    with pytest.raises(TypeError, match="subscripts must be a string"):
        tg.einsum(["i"], x)


def test_einsum_keeps_float32():
    a = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    out = tg.einsum("ij,ij->i", a, a)
    assert out.dtype == np.float32
    out.sum().backward()
    assert a.grad.dtype == np.float32
    np.testing.assert_array_equal(a.grad, np.full((2, 3), 2.0, np.float32))
