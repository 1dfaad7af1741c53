"""tinygrad_vg/optim.py: SGD and Adam against torch's update equations written out
below in numpy over several steps, gradient clipping, and argument checking."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg import nn, optim
from tinygrad_vg.optim import clip_grad_norm_

SHAPES = [(3,), (2, 4), ()]


def make_params(rng, dtype=np.float64):
    return [nn.Parameter(rng.normal(size=shape).astype(dtype)) for shape in SHAPES]


def grads_for(rng, steps, dtype=np.float64):
    return [[rng.normal(size=shape).astype(dtype) for shape in SHAPES] for _ in range(steps)]


def run(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()
    return [p.data.copy() for p in params]


# ----- the equations by hand -------------------------------------------------------------------
def sgd_by_hand(p, grads, lr, momentum, weight_decay, dampening, nesterov):
    buf = None
    for g in grads:
        g = g + weight_decay * p
        if momentum != 0:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adam_by_hand(p, grads, lr, beta1, beta2, eps, weight_decay):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)   # bias correction
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@settings(deadline=None, max_examples=60)
@given(lr=st.floats(0.001, 1.0), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       weight_decay=st.sampled_from([0.0, 0.01, 0.3]), dampening=st.sampled_from([0.0, 0.1]),
       nesterov=st.booleans(), steps=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_sgd_matches_the_update_equations(lr, momentum, weight_decay, dampening, nesterov, steps, seed):
    if nesterov:
        momentum, dampening = max(momentum, 0.5), 0.0
    rng = np.random.default_rng(seed)
    params = make_params(rng)
    start = [p.data.copy() for p in params]
    grads = grads_for(rng, steps)
    got = run(optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, dampening=dampening,
                        nesterov=nesterov), params, grads)
    for k, p0 in enumerate(start):
        want = sgd_by_hand(p0, [g[k] for g in grads], lr, momentum, weight_decay, dampening, nesterov)
        np.testing.assert_allclose(got[k], want, rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=60)
@given(lr=st.floats(1e-4, 0.5), beta1=st.sampled_from([0.0, 0.5, 0.9]), beta2=st.sampled_from([0.0, 0.9, 0.999]),
       eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 0.1]), steps=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_adam_matches_the_update_equations(lr, beta1, beta2, eps, weight_decay, steps, seed):
    rng = np.random.default_rng(seed)
    params = make_params(rng)
    start = [p.data.copy() for p in params]
    grads = grads_for(rng, steps)
    got = run(optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay), params, grads)
    for k, p0 in enumerate(start):
        want = adam_by_hand(p0, [g[k] for g in grads], lr, beta1, beta2, eps, weight_decay)
        np.testing.assert_allclose(got[k], want, rtol=1e-10, atol=1e-12)


def test_adam_first_step_moves_each_element_by_lr():
    """With bias correction the first step is lr * g / (|g| + eps): about lr, whatever |g| is."""
    p = nn.Parameter(np.array([1.0, -2.0, 3.0]))
    p.grad = np.array([1e-3, -50.0, 7.0])
    optim.Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.9, -1.9, 2.9], rtol=1e-5)   # eps/|g| = 1e-5 at most


def test_sgd_plain_step_and_float32_stays_float32():
    p = nn.Parameter(np.array([1.0, 2.0], np.float32))
    p.grad = np.array([0.5, -1.0], np.float32)
    optim.SGD([p], lr=0.1).step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, [0.95, 2.1], rtol=1e-6)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps)])
def test_parameters_without_gradient_are_skipped_and_zero_grad_clears(make):
    rng = np.random.default_rng(0)
    a, b = nn.Parameter(rng.normal(size=3)), nn.Parameter(rng.normal(size=3))
    opt = make([a, b])
    a_before, b_before = a.data.copy(), b.data.copy()
    a.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(b.data, b_before)
    assert b not in opt.state
    assert np.all(a.data < a_before)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_updates_are_in_place_and_work_with_a_model():
    model = nn.Linear(3, 2, dtype=np.float64, rng=0)
    weight_array = model.weight.data
    opt = optim.SGD(model.parameters(), lr=0.5)   # any iterable of parameters
    loss = (model(np.ones((4, 3))) ** 2).mean()
    loss.backward()
    expected = weight_array - 0.5 * model.weight.grad
    opt.step()
    assert model.weight.data is weight_array
    np.testing.assert_allclose(model.weight.data, expected)


# ----- the fused kernels compute what the per-parameter numpy code did, bit for bit ---------------
def sgd_numpy(params, grads_per_step, lr, momentum, weight_decay, dampening, nesterov):
    """optim.SGD.step as it was written before the fused kernel (numpy, one parameter at a time)."""
    bufs = [None] * len(params)
    for grads in grads_per_step:
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g + weight_decay * p if weight_decay != 0 else g
            if momentum != 0:
                if bufs[i] is None:
                    bufs[i] = np.array(g, dtype=p.dtype, copy=True)
                else:
                    bufs[i] *= momentum
                    bufs[i] += (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            p -= lr * g
    return params


def adam_numpy(params, grads_per_step, lr, beta1, beta2, eps, weight_decay):
    """optim.Adam.step as it was written before the fused kernel."""
    ms, vs = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for p, g, m, v in zip(params, grads, ms, vs):
            g = g + weight_decay * p if weight_decay != 0 else g
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * (g * g)
            step_size = lr / (1 - beta1 ** t)
            denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
            p -= step_size * (m / denom)
    return params


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [dict(lr=0.1), dict(lr=0.05, weight_decay=0.2),
                                    dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
                                    dict(lr=0.3, momentum=0.7, nesterov=True)])
def test_sgd_equals_the_per_parameter_numpy_code_bit_for_bit(dtype, kwargs):
    rng = np.random.default_rng(5)
    params = make_params(rng, dtype)
    start = [p.data.copy() for p in params]
    grads = grads_for(rng, 4, dtype)
    got = run(optim.SGD(params, **kwargs), params, grads)
    hyper = dict(lr=0.0, momentum=0.0, weight_decay=0.0, dampening=0.0, nesterov=False) | kwargs
    want = sgd_numpy(start, grads, **hyper)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w, strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_equals_the_per_parameter_numpy_code_bit_for_bit(dtype, weight_decay):
    rng = np.random.default_rng(6)
    params = make_params(rng, dtype)
    start = [p.data.copy() for p in params]
    grads = grads_for(rng, 5, dtype)
    opt = optim.Adam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=weight_decay)
    got = run(opt, params, grads)
    want = adam_numpy(start, grads, 0.01, 0.8, 0.99, 1e-6, weight_decay)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w, strict=True)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), optim.Adam])
def test_odd_parameters_and_gradients(make):
    """Non-contiguous parameter data is updated in place; a gradient of another dtype or shape
    cannot be assigned (.grad matches its tensor, as in torch)."""
    base = np.arange(12.0).reshape(3, 4)
    strided = nn.Parameter(np.zeros((6, 8))[::2, ::2])
    strided.data[...] = base
    fortran = nn.Parameter(np.asfortranarray(base))
    small = nn.Parameter(np.ones(3, np.float32))
    params = [strided, fortran, small]
    arrays = [p.data for p in params]
    opt = make(params)
    strided.grad = np.ones((3, 4))
    fortran.grad = np.ones((3, 4)).T.copy().T   # F-ordered gradient
    with pytest.raises(ValueError, match=r"assigned grad of shape \(1,\) and dtype float64 to a tensor of "
                       r"shape \(3,\) and dtype float32"):
        small.grad = np.ones(1, np.float64)
    small.grad = np.ones(3, np.float32)
    opt.step()
    assert all(p.data is a for p, a in zip(params, arrays))
    np.testing.assert_allclose(strided.data, fortran.data)
    assert np.all(strided.data < base) and small.data.dtype == np.float32 and np.all(small.data < 1)


# ----- arguments --------------------------------------------------------------------------------
def test_bad_arguments_are_value_errors():
    p = [nn.Parameter(np.zeros(2))]
    for kwargs, pattern in [(dict(lr=-0.1), "lr must be >= 0"), (dict(lr=0.1, momentum=-0.5), "momentum"),
                            (dict(lr=0.1, weight_decay=-1), "weight_decay"),
                            (dict(lr=0.1, nesterov=True), "nesterov"),
                            (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
                            (dict(lr=float("nan")), "lr")]:
        with pytest.raises(ValueError, match=pattern):
            optim.SGD(p, **kwargs)
    for kwargs, pattern in [(dict(lr=-1e-3), "lr"), (dict(betas=(0.9, 1.0)), r"betas.*\[0, 1\)"),
                            (dict(betas=(-0.1, 0.9)), "betas"),
                            (dict(eps=-1.0), "eps"), (dict(weight_decay=-0.1), "weight_decay")]:
        with pytest.raises(ValueError, match=pattern):
            optim.Adam(p, **kwargs)
    for make, kwargs, name in [(optim.SGD, dict(lr=None), "lr"), (optim.SGD, dict(lr="0.1"), "lr"),
                               (optim.SGD, dict(lr=0.1, momentum=None), "momentum"),
                               (optim.Adam, dict(lr=None), "lr"), (optim.Adam, dict(eps=True), "eps")]:
        with pytest.raises(TypeError, match=rf"{make.__name__}: {name} must be a number >= 0, got"):
            make(p, **kwargs)
    for betas in [(None, 0.9), 0.9, (0.9, "0.99"), (0.9, 0.99, 0.1)]:
        with pytest.raises(TypeError, match=r"Adam: betas must be a pair of numbers in \[0, 1\); got"):
            optim.Adam(p, betas=betas)
    with pytest.raises(TypeError, match=r"SGD: dampening must be a number, got None"):
        optim.SGD(p, lr=0.1, momentum=0.9, dampening=None)
    with pytest.raises(TypeError, match=r"SGD: nesterov must be True or False, got 'yes'"):
        optim.SGD(p, lr=0.1, momentum=0.9, nesterov="yes")
    optim.SGD(p, lr=np.array(0.1)).step()   # a 0-d array is a number (torch takes a tensor lr)
    for opt in (lambda ps: optim.SGD(ps, lr=0.1), optim.Adam):
        with pytest.raises(ValueError, match="empty parameter list"):
            opt([])
        with pytest.raises(ValueError, match="more than once"):
            opt(p + p)
        with pytest.raises(TypeError, match="Tensor"):
            opt([np.zeros(2)])


# ----- clipping ------------------------------------------------------------------------------------
@settings(deadline=None, max_examples=50)
@given(scale=st.floats(1e-3, 1e3), max_norm=st.floats(0.1, 10.0), norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]),
       seed=st.integers(0, 2**16))
def test_clip_grad_norm_scales_to_max_norm_and_returns_the_norm_before(scale, max_norm, norm_type, seed):
    rng = np.random.default_rng(seed)
    params = make_params(rng) + [nn.Parameter(np.zeros(2))]   # the last one has no gradient
    for p in params[:-1]:
        p.grad = scale * rng.normal(size=p.shape)
    grads = [p.grad.copy() for p in params[:-1]]
    flat = np.concatenate([g.ravel() for g in grads])
    want_total = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    total = clip_grad_norm_(params, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(want_total, rel=1e-10)
    coef = max_norm / (want_total + 1e-6)
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad, g * min(coef, 1.0), rtol=1e-10)
    assert params[-1].grad is None
    after = clip_grad_norm_(params, max_norm, norm_type)
    assert after == pytest.approx(min(want_total, max_norm), rel=1e-5)


def test_clip_grad_norm_edge_cases():
    p = nn.Parameter(np.zeros(3))
    assert clip_grad_norm_([p], 1.0) == 0.0   # no gradients at all
    p.grad = np.array([3.0, 4.0, 0.0])
    assert clip_grad_norm_(p, 10.0, "inf") == 4.0   # a single tensor, and "inf" as torch allows
    np.testing.assert_array_equal(p.grad, [3.0, 4.0, 0.0])
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([p], -1.0)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_([p], 1.0, norm_type=0)
    p.grad = np.array([np.inf, 1.0, 0.0])
    with pytest.raises(RuntimeError, match="inf"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_training_a_tiny_regression_with_each_optimizer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1)):
        model = nn.Linear(3, 1, dtype=np.float64, rng=1)
        opt = make(list(model.parameters()))
        for _ in range(200):
            loss = tg.functional.mse_loss(model(x), tg.Tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 1e-4


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1)])
def test_state_follows_the_parameters_dtype_after_module_to(make):
    """After model.double() the momentum / moment buffers are cast, as torch's SGD does."""
    model = nn.Linear(3, 2, rng=0)
    opt = make(list(model.parameters()))
    model(tg.Tensor(np.ones((1, 3), np.float32))).sum().backward()
    opt.step()
    model.double()
    opt.zero_grad()
    model(tg.Tensor(np.ones((1, 3)))).sum().backward()
    before = model.weight.data.copy()
    opt.step()
    assert model.weight.dtype == np.float64 and not np.array_equal(model.weight.data, before)
    for state in opt.state.values():
        assert all(v.dtype == np.float64 for v in state.values() if isinstance(v, np.ndarray))


def test_an_adam_step_that_raises_is_not_counted():
    p = nn.Parameter(np.ones(3))
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(3)
    p.data.flags.writeable = False   # the update kernel refuses it, after the state was made
    with pytest.raises(ValueError, match="read-only|writeable"):
        opt.step()
    assert opt.state[p]["step"] == 0
    p.data.flags.writeable = True
    opt.step()
    assert opt.state[p]["step"] == 1


# ----- step_in_backward: the update inside backward, per parameter -----------------------------
OPTIMIZERS = [lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
              lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5, nesterov=True),
              lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1)]


@pytest.mark.parametrize("make", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_in_backward_equals_backward_then_step_bit_for_bit(make, dtype):
    """deep_mlp both ways (one stack node, and one node per layer: gradients completed at
    different times), against zero_grad / backward / step; .grad is dropped once used."""
    rng = np.random.default_rng(7)
    x = tg.Tensor(rng.normal(size=(4, 3)).astype(dtype))
    target = tg.Tensor(rng.normal(size=(4, 3)).astype(dtype))
    finals = []
    for mode in ("step", "in_backward", "in_backward_per_layer"):
        model = nn.deep_mlp("residual", 3, 4, "tanh", dtype=dtype, rng=1, fused_stack=mode != "in_backward_per_layer")
        opt = make(list(model.parameters()))
        if mode != "step":
            opt.step_in_backward()
        for _ in range(3):
            opt.zero_grad()
            tg.functional.mse_loss(model(x), target).backward()
            opt.step()
            if mode != "step":
                assert all(p.grad is None for p in model.parameters())
        finals.append([p.data.copy() for p in model.parameters()])
    for other in finals[1:]:
        for got, want in zip(other, finals[0]):
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_step_in_backward_updates_a_shared_parameter_once_and_remove_goes_back_to_step():
    w = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([w], lr=0.5)
    handle = opt.step_in_backward()
    (w * w + w).sum().backward()           # one update with the summed gradient 2w + 1
    np.testing.assert_array_equal(w.data, [1.0 - 0.5 * 3.0, 2.0 - 0.5 * 5.0])
    handle.remove()
    before = w.data.copy()
    w.sum().backward()
    np.testing.assert_array_equal(w.data, before)   # no update until step()
    opt.step()
    np.testing.assert_array_equal(w.data, before - 0.5)


def test_step_in_backward_leaves_frozen_parameters_alone():
    model = nn.deep_mlp("plain", 3, 2, "tanh", dtype=np.float64, rng=0)
    frozen = model.blocks[1].linear.bias
    frozen.requires_grad = False
    before = frozen.data.copy()
    opt = optim.SGD(list(model.parameters()), lr=0.1)
    opt.step_in_backward()
    weight_before = model.blocks[0].linear.weight.data.copy()
    model(np.ones((2, 3))).sum().backward()
    np.testing.assert_array_equal(frozen.data, before)
    assert not np.array_equal(model.blocks[0].linear.weight.data, weight_before)
