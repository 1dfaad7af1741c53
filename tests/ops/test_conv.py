"""tinygrad_vg/ops/conv.py: Conv2d, Conv1d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm
through the functional API. Gradchecked in float64 (gradcheck draws a random upstream
gradient), compared with torch.nn.functional (values and gradients) when torch is installed.
Shapes: x (N, C, H, W), weight (OC, C / groups, KH, KW)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg import functional as F
from tinygrad_vg.gradcheck import gradcheck

CONV_CASES = {   # x shape, weight shape, stride, padding, dilation, groups
    "plain 3x3": ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1, 1, 1),
    "stride, dilation, groups": ((1, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 2), (2, 1), 2),
    "1x1": ((2, 3, 3, 4), (2, 3, 1, 1), 1, 0, 1, 1),
    "depthwise": ((1, 3, 4, 4), (3, 1, 3, 3), 1, 1, 1, 3),
}


def torch_or_skip():
    return pytest.importorskip("torch", reason="torch not installed: the comparison with torch is skipped")


@pytest.mark.parametrize("name", list(CONV_CASES))
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_gradcheck(name, bias):
    xs, ws, stride, padding, dilation, groups = CONV_CASES[name]
    rng = np.random.default_rng(1)
    inputs = [rng.normal(size=xs), rng.normal(size=ws)] + ([rng.normal(size=ws[0])] if bias else [])
    assert gradcheck(lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, stride, padding, dilation, groups), inputs)


def test_conv1d_gradcheck():
    rng = np.random.default_rng(2)
    inputs = [rng.normal(size=(2, 4, 9)), rng.normal(size=(6, 2, 3)), rng.normal(size=6)]
    assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2), inputs)


@given(n=st.integers(1, 2), c=st.integers(1, 3), oc=st.integers(1, 3), h=st.integers(3, 6), w=st.integers(3, 6),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1), seed=st.integers(0, 2**16))
@settings(max_examples=10, deadline=None)
def test_conv2d_gradcheck_drawn_shapes(n, c, oc, h, w, k, stride, padding, seed):
    rng = np.random.default_rng(seed)
    inputs = [rng.normal(size=(n, c, h, w)), rng.normal(size=(oc, c, k, k)), rng.normal(size=oc)]
    assert gradcheck(lambda x, wt, b: F.conv2d(x, wt, b, stride, padding), inputs)


@pytest.mark.parametrize("kernel_size, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))])
def test_pools_gradcheck(kernel_size, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 6 * 7).reshape(1, 2, 6, 7) / 10.0   # distinct values: max away from ties
    assert gradcheck(lambda t: F.max_pool2d(t, kernel_size, stride, padding), [x])
    assert gradcheck(lambda t: F.avg_pool2d(t, kernel_size, stride, padding), [x])


@pytest.mark.parametrize("output_size", [1, (2, 3), (4, 5)])
def test_adaptive_avg_pool2d_gradcheck(output_size):
    x = np.random.default_rng(4).normal(size=(2, 2, 7, 5))
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, output_size), [x])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 2, 3), (5, 2)])
def test_batch_norm_gradcheck(training, shape):
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=shape), rng.normal(size=shape[1]), rng.normal(size=shape[1])
    mean, var = rng.normal(size=shape[1]), rng.uniform(0.5, 2, size=shape[1])
    assert gradcheck(lambda t, wt, bt: F.batch_norm(t, mean.copy(), var.copy(), wt, bt, training=training),
                     [x, w, b])
    assert gradcheck(lambda t: F.batch_norm(t, None, None, training=True) if training
                     else F.batch_norm(t, mean, var), [x])


# ---------------------------------------------------------------- against torch

def _torch_grads(torch, fn, arrays, grad_out):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def _ours(fn, arrays, grad_out):
    tensors = [tg.Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(grad_out)
    return out.data, [t.grad for t in tensors]


@pytest.mark.parametrize("name", list(CONV_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_matches_torch(name, dtype):
    torch = torch_or_skip()
    tf = torch.nn.functional
    xs, ws, stride, padding, dilation, groups = CONV_CASES[name]
    rng = np.random.default_rng(6)
    arrays = [rng.normal(size=xs).astype(dtype), rng.normal(size=ws).astype(dtype), rng.normal(size=ws[0]).astype(dtype)]
    y = F.conv2d(*arrays[:2], arrays[2], stride, padding, dilation, groups).data
    grad_out = rng.normal(size=y.shape).astype(dtype)
    y, grads = _ours(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups), arrays, grad_out)
    y_t, grads_t = _torch_grads(torch, lambda x, w, b: tf.conv2d(x, w, b, stride, padding, dilation, groups),
                                arrays, grad_out)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, y_t, rtol=tol, atol=tol)
    for g, g_t in zip(grads, grads_t):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, g_t, rtol=tol, atol=tol)


def test_conv1d_and_pools_match_torch():
    torch = torch_or_skip()
    tf = torch.nn.functional
    rng = np.random.default_rng(7)
    arrays = [rng.normal(size=(2, 4, 11)), rng.normal(size=(6, 2, 3)), rng.normal(size=6)]
    grad_out = rng.normal(size=(2, 6, 5))
    ours = _ours(lambda x, w, b: F.conv1d(x, w, b, 2, 1, 2, 2), arrays, grad_out)
    theirs = _torch_grads(torch, lambda x, w, b: tf.conv1d(x, w, b, 2, 1, 2, 2), arrays, grad_out)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-11, atol=1e-11)
    for g, g_t in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(g, g_t, rtol=1e-11, atol=1e-11)
    x = [rng.normal(size=(2, 3, 7, 9))]
    for ours_fn, torch_fn in [
        (lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: tf.max_pool2d(t, 3, 2, 1)),
        (lambda t: F.avg_pool2d(t, (3, 2), (1, 2), (1, 0)), lambda t: tf.avg_pool2d(t, (3, 2), (1, 2), (1, 0))),
        (lambda t: F.adaptive_avg_pool2d(t, (3, 4)), lambda t: tf.adaptive_avg_pool2d(t, (3, 4))),
        (lambda t: F.adaptive_avg_pool2d(t, 1), lambda t: tf.adaptive_avg_pool2d(t, 1)),
    ]:
        y = ours_fn(tg.Tensor(x[0])).data
        grad_out = rng.normal(size=y.shape)
        ours = _ours(ours_fn, x, grad_out)
        theirs = _torch_grads(torch, torch_fn, x, grad_out)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours[1][0], theirs[1][0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch_with_running_stats(training):
    torch = torch_or_skip()
    rng = np.random.default_rng(8)
    arrays = [rng.normal(size=(4, 3, 5, 2)), rng.normal(size=3), rng.normal(size=3)]
    mean, var = rng.normal(size=3), rng.uniform(0.5, 2, size=3)
    grad_out = rng.normal(size=arrays[0].shape)
    ours_stats, torch_stats = (mean.copy(), var.copy()), (torch.tensor(mean), torch.tensor(var))
    ours = _ours(lambda x, w, b: F.batch_norm(x, *ours_stats, w, b, training, 0.2, 1e-3), arrays, grad_out)
    theirs = _torch_grads(torch, lambda x, w, b: torch.nn.functional.batch_norm(x, *torch_stats, w, b, training,
                                                                                 0.2, 1e-3), arrays, grad_out)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-10)
    for g, g_t in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(g, g_t, rtol=1e-10, atol=1e-10)
    for s, s_t in zip(ours_stats, torch_stats):
        np.testing.assert_allclose(s, s_t.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- errors

def test_conv_errors_name_the_problem():
    x = tg.Tensor(np.ones((1, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"conv2d: input must be 4-D \(N, C, H, W\); got shape \(4, 5, 5\)"):
        F.conv2d(tg.Tensor(np.ones((4, 5, 5))), np.ones((2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: groups=3 must be >= 1 and divide"):
        F.conv2d(x, np.ones((3, 1, 3, 3)), groups=3)
    with pytest.raises(TypeError, match=r"conv2d: weight is float32 but x is float64"):
        F.conv2d(x, np.ones((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"conv1d: input must be 3-D \(N, C, L\)"):
        F.conv1d(x, np.ones((2, 4, 3)))
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half the kernel size"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be an int or two ints >= 1"):
        F.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(ValueError, match=r"batch_norm: give both weight and bias or neither"):
        F.batch_norm(x, None, None, np.ones(4), training=True)
    with pytest.raises(ValueError, match=r"batch_norm: eval mode \(training=False\) needs running_mean"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match=r"batch_norm in training mode needs more than 1 value per channel"):
        F.batch_norm(tg.Tensor(np.ones((1, 3))), None, None, training=True)
