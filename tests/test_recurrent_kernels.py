"""The recurrent kernels (tinygrad_vg/kernels/recurrent.py over kernels/reference/recurrent.py
and csrc/recurrent.pyx).

What is checked:
- the compiled kernels equal their numpy twins (forward outputs, every gradient, dL/dh_t),
  float32 and float64, C/F-ordered and strided inputs, edge sizes T, N, H = 1. "Equal" is
  to rounding: the two sides call different BLAS builds and different tanh (libmvec vs
  numpy's), so float64 agrees to ~1e-15 and float32 to ~1e-6 relative to the largest
  value (measured); the bounds below leave a margin for other machines;
- forward equals the cells' equations written out in numpy (float64, tight);
- plain and checkpointed kernels give the same results bit for bit, for any segments, in
  each implementation, also with blocks of a few steps that cross segment boundaries;
- bad input raises TypeError / ValueError naming the argument, identically in both.
Gradients against finite differences: tests/ops/test_recurrent.py (gradcheck of the ops).
"""
import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import kernels, nn
from tinygrad_vg.kernels import recurrent as entries

sk = kernels   # the recurrent kernels are among kernels' names

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
SIZES = [(1, 1, 1, 1), (5, 3, 4, 2), (12, 2, 3, 5)]   # (T, N, D, H)


@pytest.fixture(scope="module")
def compiled():
    if sk.compiled is None:
        pytest.skip("compiled extension not built (TINYGRAD_VG_BACKEND=numpy)")
    return sk.compiled


@pytest.fixture(params=[512, 4], ids=["blocks512", "blocks4"])
def block_rows(request, monkeypatch):
    """The default block size, and blocks of a few steps (so blocks cross segments)."""
    monkeypatch.setattr(entries, "BLOCK_ROWS", request.param)
    return request.param


# ---------------------------------------------------------------- running a kernel pair

def make_case(cell, sizes, dtype=np.float64, bias=True, seed=0):
    T, N, D, H = sizes
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    arrays = dict(x=rng.normal(size=(T, N, D)), h0=rng.normal(size=(N, H)) * 0.5,
                  w_ih=rng.normal(size=(G * H, D)) * 0.6, w_hh=rng.normal(size=(G * H, H)) * 0.6,
                  grad_out=rng.normal(size=(T, N, H)), grad_hT=rng.normal(size=(N, H)))
    if cell == "lstm":
        arrays.update(c0=rng.normal(size=(N, H)) * 0.5, grad_cT=rng.normal(size=(N, H)))
    if bias:
        arrays.update(b_ih=rng.normal(size=G * H) * 0.3, b_hh=rng.normal(size=G * H) * 0.3)
    return {k: v.astype(dtype) for k, v in arrays.items()}


def with_layout(a, layout):
    if layout == "C":
        return a.copy()
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    big = np.full(tuple(2 * s for s in a.shape), np.nan, dtype=a.dtype)   # every other element
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def run(impl, cell, case, segments=None, need=True, last=False):
    """Forward then backward (with step grads) of one cell kind: a dict of every result.
    last=True: only the last step's output is used, as with nn.LSTM(return_sequence=False): the
    checkpointed forward runs with return_sequence=False, every backward with grad_out=None (the
    gradient enters through grad_hT), and "h" is the last step (1, N, H)."""
    c = case
    b = (c.get("b_ih"), c.get("b_hh"))
    T, N, H = c["grad_out"].shape
    grad_out = None if last else c["grad_out"]
    only = {"return_sequence": False} if last else {}
    steps = np.empty((T, N, H), c["x"].dtype)
    flags = dict(need_x=need, need_h0=need, need_w_ih=True, need_w_hh=need, need_b=need, step_grads=steps)
    if cell == "lstm":
        flags["need_c0"] = need
        if segments is None:
            h, gates, c_all, tanh_c = impl.lstm_sequence_forward(c["x"], c["h0"], c["c0"], c["w_ih"], c["w_hh"], *b)
            c_T = c_all[-1]
            grads = impl.lstm_sequence_backward(grad_out, c["grad_hT"], c["grad_cT"], h, gates, c_all, tanh_c,
                                                c["x"], c["h0"], c["c0"], c["w_ih"], c["w_hh"], **flags)
        else:
            h, c_T, h_in, c_in = impl.lstm_sequence_forward_checkpointed(c["x"], c["h0"], c["c0"], c["w_ih"],
                                                                         c["w_hh"], *b, segments, **only)
            grads = impl.lstm_sequence_backward_checkpointed(grad_out, c["grad_hT"], c["grad_cT"], h_in, c_in,
                                                             segments, c["x"], c["w_ih"], c["w_hh"], *b, **flags)
        names = ["grad_x", "grad_h0", "grad_c0", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh"]
        return dict(h=h[-1:] if last else h, c_T=c_T, steps=steps, **dict(zip(names, grads)))
    names = ["grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh"]
    if cell == "gru":
        if segments is None:
            h, gates, hn = impl.gru_sequence_forward(c["x"], c["h0"], c["w_ih"], c["w_hh"], *b)
            grads = impl.gru_sequence_backward(grad_out, c["grad_hT"], h, gates, hn, c["x"], c["h0"], c["w_ih"],
                                               c["w_hh"], **flags)
        else:
            h, h_in = impl.gru_sequence_forward_checkpointed(c["x"], c["h0"], c["w_ih"], c["w_hh"], *b, segments,
                                                             **only)
            grads = impl.gru_sequence_backward_checkpointed(grad_out, c["grad_hT"], h_in, segments, c["x"],
                                                            c["w_ih"], c["w_hh"], *b, **flags)
        return dict(h=h[-1:] if last else h, steps=steps, **dict(zip(names, grads)))
    act = cell[4:]
    if segments is None:
        h = impl.rnn_sequence_forward(c["x"], c["h0"], c["w_ih"], c["w_hh"], *b, act)
        grads = impl.rnn_sequence_backward(grad_out, c["grad_hT"], h, c["x"], c["h0"], c["w_ih"], c["w_hh"],
                                           act, **flags)
    else:
        h, h_in = impl.rnn_sequence_forward_checkpointed(c["x"], c["h0"], c["w_ih"], c["w_hh"], *b, segments, act,
                                                         **only)
        grads = impl.rnn_sequence_backward_checkpointed(grad_out, c["grad_hT"], h_in, segments, c["x"],
                                                        c["w_ih"], c["w_hh"], *b, act, **flags)
    return dict(h=h[-1:] if last else h, steps=steps, **dict(zip(names, grads)))


def assert_close(got, want, dtype):
    """Equal to rounding, relative to the largest value (see the module docstring)."""
    assert set(got) == set(want)
    bound = 1e-11 if dtype == np.float64 else 2e-5
    for name in want:
        if want[name] is None:
            assert got[name] is None, name
            continue
        assert got[name].dtype == dtype and got[name].shape == want[name].shape, name
        scale = max(1.0, float(np.abs(want[name]).max()))
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=bound * scale, err_msg=name)


def assert_identical(got, want):
    assert set(got) == set(want)
    for name in want:
        if want[name] is None:
            assert got[name] is None, name
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)


# ---------------------------------------------------------------- the backend and the names

def test_backend_follows_the_kernels_backend_and_lists_its_kernels():
    assert len(entries.KERNELS) == 12 and len(set(entries.KERNELS)) == 12
    assert kernels.FAMILIES["recurrent"] == entries.KERNELS
    active = sk.compiled if sk.BACKEND == "compiled" else sk.reference
    for name in entries.KERNELS:
        assert getattr(sk, name) == getattr(active, name), name
        assert getattr(sk.reference, name).__doc__, name


# ---------------------------------------------------------------- compiled == numpy twin

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_compiled_equals_numpy_twin(compiled, cell, sizes, dtype, bias, block_rows):
    case = make_case(cell, sizes, dtype, bias, seed=sizes[0])
    want = run(sk.reference, cell, case)
    assert_close(run(compiled, cell, case), want, dtype)
    segments = [0, sizes[0] // 2] if sizes[0] > 2 else [0]
    assert_close(run(compiled, cell, case, segments), run(sk.reference, cell, case, segments), dtype)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layout", ["F", "strided", "readonly"])
def test_any_memory_layout_gives_the_c_order_results(compiled, cell, layout):
    case = make_case(cell, (6, 3, 4, 3), np.float32, seed=1)
    want = run(sk.reference, cell, case)
    laid_out = {k: with_layout(v, layout) for k, v in case.items()}
    for impl in (compiled, sk.reference):
        assert_identical(run(impl, cell, laid_out), run(impl, cell, case))
        assert_close(run(impl, cell, laid_out), want, np.float32)


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_not_needed_are_none(cell):
    case = make_case(cell, (4, 2, 3, 2), seed=2)
    got = run(sk.reference if sk.compiled is None else sk.compiled, cell, case, need=False)
    assert got["grad_w_ih"] is not None
    assert [k for k, v in got.items() if v is None] == [
        k for k in got if k in ("grad_x", "grad_h0", "grad_c0", "grad_w_hh", "grad_b_ih", "grad_b_hh")]


# ---------------------------------------------------------------- forward against the equations

def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def equations(cell, c):
    """Each cell's h_t (and the LSTM's c_T) step by step, as torch writes them."""
    x, h = c["x"], c["h0"]
    cs = c.get("c0")
    H = h.shape[1]
    b_ih, b_hh = (c.get("b_ih", 0.0), c.get("b_hh", 0.0))
    out = []
    for x_t in x:
        gi, gh = x_t @ c["w_ih"].T + b_ih, h @ c["w_hh"].T + b_hh
        if cell == "lstm":
            i, f, g, o = sigmoid(gi + gh)[:, :H], sigmoid(gi + gh)[:, H:2 * H], np.tanh(gi + gh)[:, 2 * H:3 * H], \
                sigmoid(gi + gh)[:, 3 * H:]
            cs = f * cs + i * g
            h = o * np.tanh(cs)
        elif cell == "gru":
            r, z = sigmoid(gi[:, :H] + gh[:, :H]), sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h = (1 - z) * n + z * h
        else:
            h = np.tanh(gi + gh) if cell == "rnn_tanh" else np.maximum(gi + gh, 0)
        out.append(h)
    return np.stack(out), cs


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_the_equations(cell, bias):
    case = make_case(cell, (9, 3, 4, 5), bias=bias, seed=4)
    want_h, want_c = equations(cell, case)
    for impl in filter(None, (sk.compiled, sk.reference)):
        got = run(impl, cell, case)
        np.testing.assert_allclose(got["h"], want_h, rtol=1e-12, atol=1e-13)
        if cell == "lstm":
            np.testing.assert_allclose(got["c_T"], want_c, rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------- checkpointed == plain, bit for bit

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sizes", [(1, 2, 3, 2), (11, 2, 3, 3), (13, 1, 2, 4)])
def test_checkpointed_kernels_are_bit_for_bit_the_plain_ones(cell, sizes, block_rows):
    T = sizes[0]
    case = make_case(cell, sizes, seed=T)
    rng = np.random.default_rng(T)
    choices = [[0], list(range(T)), sorted({0, *rng.choice(T, size=min(T, 4)).tolist()}), [0, T - 1]]
    for impl in filter(None, (sk.compiled, sk.reference)):
        plain = run(impl, cell, case)
        for segments in choices:
            if len(set(segments)) != len(segments):
                continue
            assert_identical(run(impl, cell, case, segments), plain)


# ---------------------------------------------------------------- only the last step: the same bits

def zero_grad_out(case):
    """The case with grad_out zero at every step: a loss on the last step only, through grad_hT."""
    return {**case, "grad_out": np.zeros_like(case["grad_out"])}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sizes", [(1, 2, 3, 2), (2, 2, 3, 2), (3, 1, 2, 2), (11, 2, 3, 3), (13, 1, 2, 4)])
def test_last_step_only_is_bit_for_bit_the_full_run_with_zero_grad_out(cell, sizes, block_rows):
    """Forward with return_sequence=False and backward with grad_out=None against the full-length
    kernels with grad_out all zeros: the last step, c_T, every gradient and dL/dh_t identical, plain
    and checkpointed (T = 1, 2, 3: the edge cases of the two rows written in turn)."""
    T = sizes[0]
    case = make_case(cell, sizes, seed=T + 1)
    for impl in impls():
        for segments in (None, [0], sorted({0, T // 2}), list(range(T))):
            want = run(impl, cell, zero_grad_out(case), segments)
            want["h"] = want["h"][-1:]
            got = run(impl, cell, case, segments, last=True)
            assert got["h"].shape == (1, sizes[1], sizes[3])
            assert_identical(got, want)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sizes", SIZES + [(2, 3, 2, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_last_step_only_compiled_equals_numpy_twin(compiled, cell, sizes, dtype, block_rows):
    case = make_case(cell, sizes, dtype, seed=sizes[0])
    for segments in (None, [0], sorted({0, sizes[0] // 2})):
        assert_close(run(compiled, cell, case, segments, last=True),
                     run(sk.reference, cell, case, segments, last=True), dtype)


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
def test_checkpointed_modules_with_small_blocks_are_bit_identical(cls, monkeypatch):
    """Blocks of 2 steps: the projection and gradient blocks cross the segments' boundaries."""
    monkeypatch.setattr(entries, "BLOCK_ROWS", 4)
    x = np.random.default_rng(0).normal(size=(11, 2, 3))
    results = []
    for segments in (None, 1, 3, 4, True, 11):
        model = cls(3, 4, num_layers=2, dtype=np.float64, rng=0, checkpoint_segments=segments)
        xt = tg.Tensor(x, requires_grad=True)
        out, state = model(xt)
        h_n = state[0] if isinstance(state, tuple) else state
        ((out * out).sum() + (h_n * np.arange(4.0)).sum()).backward()
        results.append([out.data, xt.grad] + [p.grad for p in model.parameters()])
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- bad input

def lstm_args(dtype=np.float64):
    c = make_case("lstm", (3, 2, 3, 2), dtype)
    return [c["x"], c["h0"], c["c0"], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"]]


def impls():
    return [sk.reference] + ([sk.compiled] if sk.compiled is not None else [])


@pytest.mark.parametrize("position, value, error, message", [
    (0, np.ones((3, 2, 3), np.int64), TypeError, r"lstm_sequence_forward: x has dtype int64; accepted: float32 or float64"),
    (0, [[[1.0]]], TypeError, r"lstm_sequence_forward: x must be a numpy array \(float32 or float64\); got list"),
    (4, np.ones((8, 2), np.float32), TypeError, r"w_hh is float32 but x is float64; all arrays must have one dtype"),
    (0, np.ones((3, 2)), ValueError, r"x must have shape \(T, N, D\) with T, N, D >= 1; got \(3, 2\)"),
    (0, np.ones((0, 2, 3)), ValueError, r"x must have shape \(T, N, D\) with T, N, D >= 1; got \(0, 2, 3\)"),
    (4, np.ones((7, 2)), ValueError, r"w_hh must have shape \(4H, H\) with H >= 1; got \(7, 2\)"),
    (3, np.ones((8, 4)), ValueError, r"w_ih must have shape \(4H, D\) = \(8, 3\); got \(8, 4\)"),
    (1, np.ones((3, 2)), ValueError, r"h0 must have shape \(N, H\) = \(2, 2\); got \(3, 2\)"),
    (2, np.ones(2), ValueError, r"c0 must have shape \(N, H\) = \(2, 2\); got \(2,\)"),
    (6, None, ValueError, r"give both biases \(b_ih and b_hh\) or neither; got only b_ih"),
    (5, None, ValueError, r"give both biases \(b_ih and b_hh\) or neither; got only b_hh"),
    (6, np.ones(7), ValueError, r"b_hh must have shape \(G\*H,\) = \(8,\); got \(7,\)"),
])
def test_forward_rejects_bad_arguments_naming_them(position, value, error, message):
    for impl in impls():
        args = lstm_args()
        args[position] = value
        with pytest.raises(error, match=message):
            impl.lstm_sequence_forward(*args)


@pytest.mark.parametrize("segments, error, message", [
    ([1, 2], ValueError, r"segments must start at 0 and increase, each below T = 3; got \[1, 2\]"),
    ([0, 0], ValueError, r"segments must start at 0 and increase"),
    ([0, 3], ValueError, r"each below T = 3"),
    ([], TypeError, r"segments must be a non-empty 1-D sequence of ints"),
    ([0.0], TypeError, r"segments must be a non-empty 1-D sequence of ints"),
    ("0", TypeError, r"segments must be a sequence of ints \(the first step of each segment\); got str"),
    (2, TypeError, r"got int"),
])
def test_bad_segments_are_refused(segments, error, message):
    for impl in impls():
        with pytest.raises(error, match=message):
            impl.lstm_sequence_forward_checkpointed(*lstm_args(), segments)
        with pytest.raises(error, match=message):
            impl.rnn_sequence_forward_checkpointed(*make_rnn_args(), segments)


def make_rnn_args():
    c = make_case("rnn_tanh", (3, 2, 3, 2))
    return [c["x"], c["h0"], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"]]


def test_bad_out_nonlinearity_and_backward_arguments_are_refused():
    for impl in impls():
        args = lstm_args()
        with pytest.raises(TypeError, match=r"out must be a float64 numpy array; got float32"):
            impl.lstm_sequence_forward(*args, out=np.empty((3, 2, 2), np.float32))
        with pytest.raises(ValueError, match=r"out must have shape \(3, 2, 2\) \(T, N, H\); got \(3, 2, 3\)"):
            impl.lstm_sequence_forward(*args, out=np.empty((3, 2, 3)))
        with pytest.raises(ValueError, match=r"out must be a writeable, aligned C-contiguous array"):
            impl.lstm_sequence_forward(*args, out=np.empty((2, 3, 2)).transpose(1, 0, 2))
        rnn = make_rnn_args()
        rnn[0] = np.ones((3, 2, 2))   # D = H: x itself would fit as out
        rnn[2] = np.ones((2, 2))
        with pytest.raises(ValueError, match=r"rnn_sequence_forward: out shares memory with an input"):
            impl.rnn_sequence_forward(*rnn, out=rnn[0])
        with pytest.raises(ValueError, match=r"unknown nonlinearity 'sigmoid'; accepted: tanh, relu"):
            impl.rnn_sequence_forward(*make_rnn_args(), "sigmoid")
        h, gates, c, tanh_c = impl.lstm_sequence_forward(*args)
        x, h0, c0, w_ih, w_hh = args[:5]
        grad = np.ones_like(h)
        with pytest.raises(ValueError, match=r"lstm_sequence_backward: grad_out must have shape \(T, N, H\) = "
                                             r"\(3, 2, 2\); got \(2, 2, 2\)"):
            impl.lstm_sequence_backward(grad[:2], None, None, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh)
        with pytest.raises(ValueError, match=r"gates must have shape \(T, N, 4H\) = \(3, 2, 8\); got \(3, 2, 6\)"):
            impl.lstm_sequence_backward(grad, None, None, h, gates[..., :6], c, tanh_c, x, h0, c0, w_ih, w_hh)
        with pytest.raises(ValueError, match=r"grad_cT must have shape \(N, H\) = \(2, 2\); got \(2,\)"):
            impl.lstm_sequence_backward(grad, None, np.ones(2), h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh)
        with pytest.raises(ValueError, match=r"step_grads must have shape \(3, 2, 2\) \(T, N, H\); got \(3, 2\)"):
            impl.lstm_sequence_backward(grad, None, None, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh,
                                        step_grads=np.empty((3, 2)))
        with pytest.raises(TypeError, match=r"tanh_c is float32 but x is float64"):
            impl.lstm_sequence_backward(grad, None, None, h, gates, c, tanh_c.astype(np.float32), x, h0, c0,
                                        w_ih, w_hh)


def test_inputs_are_not_modified():
    case = make_case("gru", (5, 2, 3, 4), seed=9)
    before = {k: v.copy() for k, v in case.items()}
    for impl in impls():
        run(impl, "gru", case)
        run(impl, "gru", case, [0, 2])
        for k in case:
            np.testing.assert_array_equal(case[k], before[k], err_msg=k)


def test_compiled_loops_refuse_mismatched_buffers_instead_of_crashing(compiled):
    """The extension's loops take typed buffers; wrong ones raise, never crash."""
    from tinygrad_vg.kernels.compiled import recurrent as _recurrent
    x, h0, c0, w_ih, w_hh = lstm_args()[:5]
    bias = np.zeros(8)
    h, gates, c, tanh_c = (np.empty((3, 2, 2)), np.empty((3, 2, 8)), np.empty((3, 2, 2)), np.empty((3, 2, 2)))
    with pytest.raises(ValueError, match="gates has shape"):
        _recurrent.lstm_forward(x, h0, c0, w_ih, w_hh, bias, True, 4, h, gates[:2], c, tanh_c)
    with pytest.raises(ValueError, match="block"):
        _recurrent.lstm_forward(x, h0, c0, w_ih, w_hh, bias, True, 0, h, gates, c, tanh_c)
    with pytest.raises((TypeError, ValueError)):
        _recurrent.lstm_forward(x, h0, c0, w_ih, w_hh, None, False, 4, h, gates, c, tanh_c)
    with pytest.raises(ValueError):
        _recurrent.lstm_forward(np.asfortranarray(x), h0, c0, w_ih, w_hh, bias, True, 4, h, gates, c, tanh_c)
    with pytest.raises(ValueError, match="segment starts must increase"):
        _recurrent.rnn_forward(x, h0[:, :2], np.ones((2, 3)), np.ones((2, 2)), bias[:2], True, False, 4,
                                h, np.array([0, 5], np.intp), np.empty((2, 2, 2)), np.empty(0))


def test_last_step_only_options_are_checked_naming_them():
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = args = lstm_args()
    rnn = make_rnn_args()
    gru = make_case("gru", (3, 2, 3, 2))
    gru = [gru[k] for k in ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh")]
    for impl in impls():
        calls = {"lstm": lambda **o: impl.lstm_sequence_forward_checkpointed(*args, [0], **o),
                 "gru": lambda **o: impl.gru_sequence_forward_checkpointed(*gru, [0], **o),
                 "rnn": lambda **o: impl.rnn_sequence_forward_checkpointed(*rnn, [0], **o)}
        for cell, call in calls.items():
            for bad in (1, 0, "no", None, np.array([False])):
                with pytest.raises(TypeError, match=rf"{cell}_sequence_forward_checkpointed: return_sequence must "
                                                    r"be True \(every step's output\) or False \(the last step's "
                                                    r"only\); got .* of type"):
                    call(return_sequence=bad)
            assert call(return_sequence=np.bool_(False))[0].shape == (1, 2, 2)
            with pytest.raises(ValueError, match=r"out must have shape \(1, 2, 2\) \(1, N, H\): the last step; "
                                                 r"got \(3, 2, 2\)"):
                call(out=np.empty((3, 2, 2)), return_sequence=False)
            out = np.empty((1, 2, 2))
            assert call(out=out, return_sequence=False)[0] is out
        h, c_T, h_in, c_in = impl.lstm_sequence_forward_checkpointed(*args, [0, 1], return_sequence=False)
        with pytest.raises(ValueError, match=r"lstm_sequence_backward_checkpointed: grad_hT must have shape "
                                             r"\(N, H\) = \(2, 2\); got \(3, 2\)"):
            impl.lstm_sequence_backward_checkpointed(None, np.ones((3, 2)), None, h_in, c_in, [0, 1], x, w_ih, w_hh,
                                                     b_ih, b_hh)
        with pytest.raises(TypeError, match=r"backward_checkpointed: grad_cT is float32 but x is float64"):
            impl.lstm_sequence_backward_checkpointed(None, None, np.ones((2, 2), np.float32), h_in, c_in, [0, 1], x,
                                                     w_ih, w_hh, b_ih, b_hh)
        full = impl.rnn_sequence_forward(*rnn)
        with pytest.raises(TypeError, match=r"rnn_sequence_backward: grad_hT must be a numpy array"):
            impl.rnn_sequence_backward(None, [[1.0, 2.0]] * 2, full, rnn[0], rnn[1], rnn[2], rnn[3])


def test_compiled_loops_refuse_wrong_row_counts(compiled):
    """h of a checkpointed forward has T rows or 2 (used in turn); grad_out of a backward T or 1."""
    from tinygrad_vg.kernels.compiled import recurrent as _recurrent
    x, h0, c0, w_ih, w_hh = lstm_args()[:5]      # T, N, D, H = 3, 2, 3, 2
    bias, starts, state = np.zeros(8), np.array([0], np.intp), np.empty((1, 2, 2))
    with pytest.raises(ValueError, match=r"h has shape \(4, 2, 2\); expected \(3, 2, 2\) or \(2, 2, 2\)"):
        _recurrent.lstm_forward_checkpointed(x, h0, c0, w_ih, w_hh, bias, True, 4, starts, np.empty((4, 2, 2)),
                                              np.empty((2, 2)), state, state, np.empty(4 * 2 * 8 + 3 * 2 * 2))
    with pytest.raises(ValueError, match=r"h has shape \(1, 2, 2\); expected \(3, 2, 2\) or \(2, 2, 2\)"):
        _recurrent.gru_forward_checkpointed(x, h0, np.ones((6, 3)), np.ones((6, 2)), bias[:6], True, bias[:2], 4,
                                             starts, np.empty((1, 2, 2)), state, np.empty(4 * 2 * 6 + 2 * 6 + 4))
    rnn_x, rnn_h0, rnn_w_ih, rnn_w_hh = make_rnn_args()[:4]
    with pytest.raises(ValueError, match=r"work has shape \(3,\); expected \(16,\)"):   # P N H: the projection
        _recurrent.rnn_forward(rnn_x, rnn_h0, rnn_w_ih, rnn_w_hh, bias[:2], True, False, 4, np.empty((2, 2, 2)),
                                starts, state, np.empty(3))
    h = np.zeros((3, 2, 2))
    with pytest.raises(ValueError, match=r"grad_out has shape \(2, 2, 2\); expected \(3, 2, 2\) or \(1, 2, 2\)"):
        _recurrent.rnn_backward(np.zeros((2, 2, 2)), h, rnn_x, rnn_h0, rnn_w_ih, rnn_w_hh, False, 4,
                                 np.zeros((2, 2)), np.empty(2 * 4 * 2 * 2), np.empty((3, 2, 3)), np.empty((2, 3)),
                                 np.empty((2, 2)), np.empty(2), np.empty((3, 2, 2)), True, True, True, True, False)


def _unaligned(a: np.ndarray) -> np.ndarray:
    """a copy of a whose data starts one byte past an aligned address"""
    raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
    out = raw.view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def test_unaligned_inputs_are_copied_and_an_unaligned_out_is_refused():
    for impl in impls():
        args = lstm_args()
        want = impl.lstm_sequence_forward(*args)
        got = impl.lstm_sequence_forward(*[_unaligned(a) if a is not None else a for a in args])
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        with pytest.raises(ValueError, match=r"out must be a writeable, aligned C-contiguous array"):
            impl.lstm_sequence_forward(*args, out=_unaligned(np.empty_like(want[0])))
