# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Whole-sequence kernels of the recurrent layers: one layer of an Elman RNN (tanh or
relu), a GRU or an LSTM over all T time steps per call, forward and backward, with the
time loop in C and the GIL released.

Shapes: T steps, N batch, D input features, H hidden units, G gates (RNN 1, GRU 3,
LSTM 4), GH = G*H; x (T, N, D), h (T, N, H), w_ih (GH, D), w_hh (GH, H). Every array
here is C-contiguous; a "row" of a (T, N, K) array is one step's (N, K) matrix.

Design:
- tinygrad_vg/kernels/recurrent.py holds the entry points: it checks the arguments,
  allocates outputs and workspaces, and calls the loops here (or their numpy twins in
  tinygrad_vg/kernels/reference/recurrent.py, the same equations step by step). The loops take
  typed C-contiguous memoryviews, so a wrong dtype or layout is a Cython error, never
  a crash, and check that the shapes agree before touching memory.
- Time is cut into blocks of P steps aligned to step 0 (P N ~ kernels.recurrent.
  BLOCK_ROWS rows). Forward: one GEMM projects a block's inputs, x W_ih^T + b; then
  per step one GEMM h_{t-1} W_hh^T and one fused pass over the gates. Backward, per
  step: one fused pass makes the pre-activation gradients of the step into a block
  buffer, and one GEMM carries dL/dh back to h_{t-1}; when a block is complete, three
  GEMMs over its P N rows give grad_x and add to grad_W_ih and grad_W_hh.
- Checkpointing (the *_checkpointed kernels) keeps only the states entering each
  segment; backward recomputes a segment's gates from them. The blocks do not move
  with the segments: a recomputed step gets its projection from the same block GEMM
  as in the plain forward (two block slots, see _projection), and the gradient
  blocks fill across segment boundaries. So every BLAS call and every pass has the
  same operands as in the plain run, and the gradients are bit for bit the same
  whatever the segments: what gradient checkpointing promises.
- Only the last step wanted (return_sequence=False in kernels/recurrent.py): a checkpointed
  forward writes the steps' outputs into two rows in turn instead of h (T, N, H), and a
  backward takes grad_out as one row (1, N, H) read at every step, zeros there: the
  gradient then enters through grad_hT (and grad_cT) alone. The arithmetic is that of a
  full-length run whose grad_out is zero but at the last step, so the bits are too.
- The per-step passes over the gates are plain C (csrc/recurrent_loops.h): restrict
  pointers, vectorized through libmvec, compiled for SSE2/AVX2/AVX-512 and picked at
  load time. sigmoid(v) = 0.5 tanh(v / 2) + 0.5: one transcendental, never overflows.
- As in elementwise.pyx: no FMA contraction (setup.py), and constants are typed locals,
  so float32 math stays float32.
"""
import numpy as np

from libc.string cimport memcpy
from _blas cimport floating, row_major_gemm as _mm

cdef extern from "_simd_math.h":
    int TG_VECTOR_MATH

VECTOR_MATH = bool(TG_VECTOR_MATH)

cdef struct Dims:
    Py_ssize_t T, N, D, H, GH, P   # steps, batch, input, hidden, gate columns, steps per block


# ---------------------------------------------------------------- BLAS, projection, block gradients

cdef inline void _recurrent_mm(Dims dm, const floating* h_prev, const floating* w_hh_t, floating beta,
                               floating* out) noexcept nogil:
    """out (N, GH) = beta out + h_prev W_hh^T, from W_hh^T (H, GH) stored as such: BLAS then
    sees a plain product (no transpose), which OpenBLAS runs through its small-matrix
    kernels, instead of repacking W_hh at every step."""
    _mm(False, False, dm.N, dm.GH, dm.H, h_prev, dm.H, w_hh_t, dm.GH, beta, out, dm.GH)


cdef object _transposed(object w):
    """W^T as a new C-contiguous array"""
    return np.ascontiguousarray(np.asarray(w).T)


cdef void _project(Dims dm, Py_ssize_t b0, const floating* x, const floating* w_ih, const floating* bias,
                   bint has_bias, floating* out) noexcept nogil:
    """out (rows, GH) = x[b0:b1] W_ih^T + bias, the input projection of the block starting at b0"""
    cdef Py_ssize_t r, j, gh = dm.GH
    cdef Py_ssize_t rows = (min(b0 + dm.P, dm.T) - b0) * dm.N
    cdef floating zero = 0
    cdef floating* row
    _mm(False, True, rows, gh, dm.D, x + b0 * dm.N * dm.D, dm.D, w_ih, dm.D, zero, out, gh)
    if has_bias:
        for r in range(rows):
            row = out + r * gh
            for j in range(gh):
                row[j] = row[j] + bias[j]


cdef struct BlockSlots:
    Py_ssize_t block[2]   # which block each slot holds, -1: none
    int pinned            # the slot not to evict, -1: none


cdef floating* _projection(Dims dm, Py_ssize_t t, floating* slots, BlockSlots* held, bint pin,
                           const floating* x, const floating* w_ih, const floating* bias,
                           bint has_bias) noexcept nogil:
    """The projection row of step t, from its block's GEMM, kept in one of two slots.

    A checkpointed backward recomputes segments last to first, each from first step to
    last. Pinning the block of a segment's first step (pin=True there) keeps it for the
    next segment, whose last steps usually fall in it: each block is computed about once."""
    cdef Py_ssize_t b = t // dm.P
    cdef Py_ssize_t size = dm.P * dm.N * dm.GH
    cdef int slot
    if held.block[0] == b:
        slot = 0
    elif held.block[1] == b:
        slot = 1
    else:
        slot = 1 - held.pinned if held.pinned >= 0 else 0
        _project(dm, b * dm.P, x, w_ih, bias, has_bias, slots + slot * size)
        held.block[slot] = b
    if pin:
        held.pinned = slot
    return slots + slot * size + (t - b * dm.P) * dm.N * dm.GH


cdef void _add_column_sums(const floating* g, Py_ssize_t rows, Py_ssize_t cols, floating* out) noexcept nogil:
    """out[j] += g[i, j] for each row i in order"""
    cdef Py_ssize_t i, j
    cdef const floating* row
    for i in range(rows):
        row = g + i * cols
        for j in range(cols):
            out[j] = out[j] + row[j]


cdef void _block_grads(Dims dm, Py_ssize_t b0, const floating* d_x, const floating* d_h,
                       const floating* h_prev, const floating* x, const floating* w_ih,
                       floating* grad_x, floating* grad_w_ih, floating* grad_w_hh,
                       floating* grad_b_ih, floating* grad_b_hh) noexcept nogil:
    """The block starting at b0 is done: d_x (rows, GH) are the gradients of its input
    projections, d_h of its recurrent ones (the same array but in the GRU), h_prev
    (rows, H) the states h_{t-1} its steps read. NULL outputs are not wanted.
        grad_x = d_x W_ih;  grad_W_ih += d_x^T x;  grad_W_hh += d_h^T h_prev;
        grad_b_ih += column sums of d_x;  grad_b_hh += column sums of d_h"""
    cdef Py_ssize_t rows = (min(b0 + dm.P, dm.T) - b0) * dm.N
    cdef floating zero = 0, one = 1
    if grad_x != NULL:
        _mm(False, False, rows, dm.D, dm.GH, d_x, dm.GH, w_ih, dm.D, zero, grad_x + b0 * dm.N * dm.D, dm.D)
    if grad_w_ih != NULL:
        _mm(True, False, dm.GH, dm.D, rows, d_x, dm.GH, x + b0 * dm.N * dm.D, dm.D, one, grad_w_ih, dm.D)
    if grad_w_hh != NULL:
        _mm(True, False, dm.GH, dm.H, rows, d_h, dm.GH, h_prev, dm.H, one, grad_w_hh, dm.H)
    if grad_b_ih != NULL:
        _add_column_sums(d_x, rows, dm.GH, grad_b_ih)
    if grad_b_hh != NULL:
        _add_column_sums(d_h, rows, dm.GH, grad_b_hh)


cdef inline void _copy(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    memcpy(dst, src, n * sizeof(floating))


# ---------------------------------------------------------------- per-step passes (C, see the header)

cdef extern from "recurrent_loops.h" nogil:
    void tg_lstm_cell_f(Py_ssize_t n, Py_ssize_t hid, float* a, const float* c_prev, float* c,
                        float* tanh_c, float* h)
    void tg_lstm_cell_d(Py_ssize_t n, Py_ssize_t hid, double* a, const double* c_prev, double* c,
                        double* tanh_c, double* h)
    void tg_lstm_cell_backward_f(Py_ssize_t n, Py_ssize_t hid, const float* gates, const float* c_prev,
                                 const float* tanh_c, const float* grad_h, float* grad_c, float* d)
    void tg_lstm_cell_backward_d(Py_ssize_t n, Py_ssize_t hid, const double* gates, const double* c_prev,
                                 const double* tanh_c, const double* grad_h, double* grad_c, double* d)
    void tg_gru_cell_f(Py_ssize_t n, Py_ssize_t hid, float* a, const float* rec, const float* b_hn,
                       const float* h_prev, float* hn, float* h)
    void tg_gru_cell_d(Py_ssize_t n, Py_ssize_t hid, double* a, const double* rec, const double* b_hn,
                       const double* h_prev, double* hn, double* h)
    void tg_gru_cell_backward_f(Py_ssize_t n, Py_ssize_t hid, const float* gates, const float* hn,
                                const float* h_prev, const float* grad_h, float* d_x, float* d_h,
                                float* grad_h_prev)
    void tg_gru_cell_backward_d(Py_ssize_t n, Py_ssize_t hid, const double* gates, const double* hn,
                                const double* h_prev, const double* grad_h, double* d_x, double* d_h,
                                double* grad_h_prev)
    void tg_rnn_cell_f(Py_ssize_t size, float* a, int relu)
    void tg_rnn_cell_d(Py_ssize_t size, double* a, int relu)
    void tg_rnn_cell_backward_f(Py_ssize_t size, const float* h, const float* grad_h, float* d, int relu)
    void tg_rnn_cell_backward_d(Py_ssize_t size, const double* h, const double* grad_h, double* d, int relu)


cdef inline void _lstm_cell(Py_ssize_t n, Py_ssize_t hid, floating* a, const floating* c_prev, floating* c,
                            floating* tanh_c, floating* h) noexcept nogil:
    """a (N, 4H): pre-activations in, gates i, f, g, o out (in place);
        c = f c_prev + i g;  tanh_c = tanh(c);  h = o tanh_c"""
    if floating is float:
        tg_lstm_cell_f(n, hid, a, c_prev, c, tanh_c, h)
    else:
        tg_lstm_cell_d(n, hid, a, c_prev, c, tanh_c, h)


cdef inline void _lstm_cell_backward(Py_ssize_t n, Py_ssize_t hid, const floating* gates,
                                     const floating* c_prev, const floating* tanh_c, const floating* grad_h,
                                     floating* grad_c, floating* d) noexcept nogil:
    """grad_h = dL/dh_t; grad_c: dL/dc_t in, dL/dc_{t-1} out; d (N, 4H) out:
        gc = grad_c + grad_h o (1 - tanh_c^2)
        d = [gc g i(1-i), gc c_prev f(1-f), gc i (1-g^2), grad_h tanh_c o(1-o)];  grad_c = gc f"""
    if floating is float:
        tg_lstm_cell_backward_f(n, hid, gates, c_prev, tanh_c, grad_h, grad_c, d)
    else:
        tg_lstm_cell_backward_d(n, hid, gates, c_prev, tanh_c, grad_h, grad_c, d)


cdef inline void _gru_cell(Py_ssize_t n, Py_ssize_t hid, floating* a, const floating* rec,
                           const floating* b_hn, const floating* h_prev, floating* hn,
                           floating* h) noexcept nogil:
    """a (N, 3H): input projection in, gates r, z, n out (in place); rec (N, 3H) = h_prev W_hh^T;
        r, z = sigmoid(a_rz + rec_rz);  hn = rec_n + b_hn;  n = tanh(a_n + r hn);  h = n + z (h_prev - n)"""
    if floating is float:
        tg_gru_cell_f(n, hid, a, rec, b_hn, h_prev, hn, h)
    else:
        tg_gru_cell_d(n, hid, a, rec, b_hn, h_prev, hn, h)


cdef inline void _gru_cell_backward(Py_ssize_t n, Py_ssize_t hid, const floating* gates, const floating* hn,
                                    const floating* h_prev, const floating* grad_h, floating* d_x,
                                    floating* d_h, floating* grad_h_prev) noexcept nogil:
    """grad_h = dL/dh_t; out: d_x (N, 3H) for the input projection, d_h (N, 3H) for h W_hh^T + b_hh,
    grad_h_prev = the direct part grad_h z of dL/dh_{t-1}:
        a_n = grad_h (1 - z)(1 - n^2);  a_z = grad_h (h_prev - n) z(1-z);  a_r = a_n hn r(1-r)
        d_x = [a_r, a_z, a_n];  d_h = [a_r, a_z, a_n r]"""
    if floating is float:
        tg_gru_cell_backward_f(n, hid, gates, hn, h_prev, grad_h, d_x, d_h, grad_h_prev)
    else:
        tg_gru_cell_backward_d(n, hid, gates, hn, h_prev, grad_h, d_x, d_h, grad_h_prev)


cdef inline void _rnn_cell(Py_ssize_t size, floating* a, bint relu) noexcept nogil:
    """a = f(a) in place: tanh, or relu (max(a, 0), NaN stays NaN)"""
    if floating is float:
        tg_rnn_cell_f(size, a, relu)
    else:
        tg_rnn_cell_d(size, a, relu)


cdef inline void _rnn_cell_backward(Py_ssize_t size, const floating* h, const floating* grad_h, floating* d,
                                    bint relu) noexcept nogil:
    """d = grad_h f'(pre), from h = f(pre): tanh 1 - h^2; relu 1 where h > 0"""
    if floating is float:
        tg_rnn_cell_backward_f(size, h, grad_h, d, relu)
    else:
        tg_rnn_cell_backward_d(size, h, grad_h, d, relu)


cdef void _add_into(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst = src + dst"""
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = src[i] + dst[i]


# ---------------------------------------------------------------- shape checks of the private entries

cdef Dims _dims(tuple x_shape, Py_ssize_t gates, tuple w_hh_shape, Py_ssize_t block) except *:
    cdef Dims dm
    dm.T, dm.N, dm.D = x_shape[0], x_shape[1], x_shape[2]
    dm.H = w_hh_shape[1]
    dm.GH = gates * dm.H
    dm.P = block
    if min(dm.T, dm.N, dm.D, dm.H, dm.P) < 1 or w_hh_shape[0] != dm.GH:
        raise ValueError(f"recurrent kernel: x {x_shape}, w_hh {w_hh_shape}, block {block} do not fit")
    return dm


cdef int _expect(str name, object array, tuple shape) except -1:
    if tuple(array.shape)[:len(shape)] != shape:
        raise ValueError(f"recurrent kernel: {name} has shape {tuple(array.shape)}; expected {shape}")
    return 0


cdef Py_ssize_t _steps_or(str name, object array, Dims dm, Py_ssize_t rows) except -1:
    """The row count of array, which must have shape (T, N, H) or (rows, N, H)."""
    cdef tuple shape = tuple(array.shape)[:3]
    if shape != (dm.T, dm.N, dm.H) and shape != (rows, dm.N, dm.H):
        raise ValueError(f"recurrent kernel: {name} has shape {shape}; expected {(dm.T, dm.N, dm.H)} "
                         f"or {(rows, dm.N, dm.H)}")
    return shape[0]


cdef Py_ssize_t _grad_out_step(Dims dm, object grad_out) except -1:
    """The distance between grad_out's rows: grad_out (T, N, H), or (1, N, H) for the same
    row at every step (a zero row stands for grad_out=None: the gradient comes from h_T only)."""
    return dm.N * dm.H if _steps_or("grad_out", grad_out, dm, 1) == dm.T else 0


cdef int _check_common(Dims dm, w_ih, w_hh, bias, bint has_bias) except -1:
    _expect("w_ih", w_ih, (dm.GH, dm.D))
    _expect("w_hh", w_hh, (dm.GH, dm.H))
    if has_bias:
        _expect("bias", bias, (dm.GH,))
    return 0


cdef int _check_segments(Dims dm, const Py_ssize_t[::1] starts) except -1:
    cdef Py_ssize_t j
    if starts.shape[0] < 1 or starts[0] != 0:
        raise ValueError("recurrent kernel: segments must start at step 0")
    for j in range(1, starts.shape[0]):
        if not (starts[j - 1] < starts[j] < dm.T):
            raise ValueError("recurrent kernel: segment starts must increase and stay below T")
    return 0


# ---------------------------------------------------------------- LSTM

cdef void _lstm_backward_steps(
        Dims dm, Py_ssize_t s, Py_ssize_t e, const floating* gates, const floating* c,
        const floating* tanh_c, const floating* h, const floating* h_before, const floating* c_before,
        const floating* grad_out, Py_ssize_t grad_out_step, const floating* x, const floating* w_ih,
        const floating* w_hh, floating* grad_h, floating* grad_c, floating* d_blk, floating* h_blk,
        floating* step_grads, floating* grad_x, floating* grad_w_ih, floating* grad_w_hh,
        floating* grad_b) noexcept nogil:
    """Steps e-1 down to s. gates, c, tanh_c, h hold the rows of steps s..e-1; h_before, c_before
    the state entering step s. grad_h, grad_c: dL/dh_t, dL/dc_t in, those of step s-1 out.
    grad_out's row t is at grad_out + t grad_out_step (0: one row for every step)."""
    cdef Py_ssize_t t, k, b0, NH = dm.N * dm.H, NG = dm.N * dm.GH
    cdef const floating* h_prev
    cdef const floating* c_prev
    cdef floating* d
    cdef floating zero = 0, one = 1
    for t in range(e - 1, s - 1, -1):
        if step_grads != NULL:
            _copy(step_grads + t * NH, grad_h, NH)
        k = t - s
        b0 = (t // dm.P) * dm.P
        h_prev = h_before if t == s else h + (k - 1) * NH
        c_prev = c_before if t == s else c + (k - 1) * NH
        d = d_blk + (t - b0) * NG
        _copy(h_blk + (t - b0) * NH, h_prev, NH)
        _lstm_cell_backward(dm.N, dm.H, gates + k * NG, c_prev, tanh_c + k * NH, grad_h, grad_c, d)
        if t > 0:   # dL/dh_{t-1} = grad_out[t-1] + d W_hh
            _copy(grad_h, grad_out + (t - 1) * grad_out_step, NH)
            _mm(False, False, dm.N, dm.H, dm.GH, d, dm.GH, w_hh, dm.H, one, grad_h, dm.H)
        else:
            _mm(False, False, dm.N, dm.H, dm.GH, d, dm.GH, w_hh, dm.H, zero, grad_h, dm.H)
        if t == b0:
            _block_grads(dm, b0, d_blk, d_blk, h_blk, x, w_ih, grad_x, grad_w_ih, grad_w_hh, grad_b, NULL)


def lstm_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] h0 not None,
                 const floating[:, ::1] c0 not None, const floating[:, ::1] w_ih not None,
                 const floating[:, ::1] w_hh not None, const floating[::1] bias not None, bint has_bias,
                 Py_ssize_t block, floating[:, :, ::1] h not None, floating[:, :, ::1] gates not None,
                 floating[:, :, ::1] c not None, floating[:, :, ::1] tanh_c not None):
    """The plain forward: h, gates, c, tanh_c (T, N, .) filled for every step."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 4, tuple(w_hh.shape)[:2], block)
    cdef const floating[:, ::1] w_hh_t = _transposed(w_hh)
    _expect("h0", h0, (dm.N, dm.H))
    _check_common(dm, w_ih, w_hh, bias, has_bias)
    _expect("c0", c0, (dm.N, dm.H))
    for name, arr in (("h", h), ("c", c), ("tanh_c", tanh_c)):
        _expect(name, arr, (dm.T, dm.N, dm.H))
    _expect("gates", gates, (dm.T, dm.N, dm.GH))
    cdef Py_ssize_t t, b0 = 0
    cdef floating one = 1
    cdef floating* a
    cdef const floating* h_prev
    cdef const floating* c_prev
    with nogil:
        while b0 < dm.T:
            _project(dm, b0, &x[0, 0, 0], &w_ih[0, 0], &bias[0], has_bias, &gates[b0, 0, 0])
            for t in range(b0, min(b0 + dm.P, dm.T)):
                h_prev = &h0[0, 0] if t == 0 else &h[t - 1, 0, 0]
                c_prev = &c0[0, 0] if t == 0 else &c[t - 1, 0, 0]
                a = &gates[t, 0, 0]
                _recurrent_mm(dm, h_prev, &w_hh_t[0, 0], one, a)
                _lstm_cell(dm.N, dm.H, a, c_prev, &c[t, 0, 0], &tanh_c[t, 0, 0], &h[t, 0, 0])
            b0 += dm.P


def lstm_forward_checkpointed(const floating[:, :, ::1] x not None, const floating[:, ::1] h0 not None,
                              const floating[:, ::1] c0 not None, const floating[:, ::1] w_ih not None,
                              const floating[:, ::1] w_hh not None, const floating[::1] bias not None,
                              bint has_bias, Py_ssize_t block, const Py_ssize_t[::1] starts not None,
                              floating[:, :, ::1] h not None, floating[:, ::1] c_last not None,
                              floating[:, :, ::1] h_in not None, floating[:, :, ::1] c_in not None,
                              floating[::1] work not None):
    """The forward keeping only h, c_T and the state (h_in, c_in) entering each segment;
    work: P N 4H + 3 N H scratch. h: (T, N, H) for every step's output, or (2, N, H) for
    two rows in turn (step t in row t % 2) when only the last step is wanted."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 4, tuple(w_hh.shape)[:2], block)
    cdef const floating[:, ::1] w_hh_t = _transposed(w_hh)
    _expect("h0", h0, (dm.N, dm.H))
    _check_common(dm, w_ih, w_hh, bias, has_bias)
    _check_segments(dm, starts)
    cdef Py_ssize_t k = starts.shape[0], NH = dm.N * dm.H, NG = dm.N * dm.GH
    _expect("c0", c0, (dm.N, dm.H))
    _expect("c_last", c_last, (dm.N, dm.H))
    cdef Py_ssize_t rows = _steps_or("h", h, dm, 2)
    _expect("h_in", h_in, (k, dm.N, dm.H))
    _expect("c_in", c_in, (k, dm.N, dm.H))
    _expect("work", work, (dm.P * NG + 3 * NH,))
    cdef Py_ssize_t t, j = 0, b0 = 0
    cdef floating one = 1
    cdef floating* proj = &work[0]
    cdef floating* c_buf = proj + dm.P * NG        # two rows, used in turn
    cdef floating* tanh_c = c_buf + 2 * NH
    cdef floating* a
    cdef floating* c_new
    cdef const floating* h_prev = &h0[0, 0]
    cdef const floating* c_prev = &c0[0, 0]
    with nogil:
        while b0 < dm.T:
            _project(dm, b0, &x[0, 0, 0], &w_ih[0, 0], &bias[0], has_bias, proj)
            for t in range(b0, min(b0 + dm.P, dm.T)):
                if j < k and t == starts[j]:
                    _copy(&h_in[j, 0, 0], h_prev, NH)
                    _copy(&c_in[j, 0, 0], c_prev, NH)
                    j += 1
                a = proj + (t - b0) * NG
                _recurrent_mm(dm, h_prev, &w_hh_t[0, 0], one, a)
                c_new = c_buf + (t % 2) * NH
                _lstm_cell(dm.N, dm.H, a, c_prev, c_new, tanh_c, &h[t % rows, 0, 0])
                h_prev = &h[t % rows, 0, 0]
                c_prev = c_new
            b0 += dm.P
        _copy(&c_last[0, 0], c_prev, NH)


def lstm_backward(const floating[:, :, ::1] grad_out not None, const floating[:, :, ::1] h not None,
                  const floating[:, :, ::1] gates not None, const floating[:, :, ::1] c not None,
                  const floating[:, :, ::1] tanh_c not None, const floating[:, :, ::1] x not None,
                  const floating[:, ::1] h0 not None, const floating[:, ::1] c0 not None,
                  const floating[:, ::1] w_ih not None, const floating[:, ::1] w_hh not None, Py_ssize_t block,
                  floating[:, ::1] grad_h not None, floating[:, ::1] grad_c not None, floating[::1] work not None,
                  floating[:, :, ::1] grad_x not None, floating[:, ::1] grad_w_ih not None,
                  floating[:, ::1] grad_w_hh not None, floating[::1] grad_b not None,
                  floating[:, :, ::1] step_grads not None, bint need_x, bint need_w_ih, bint need_w_hh,
                  bint need_b, bint need_steps):
    """The plain backward. grad_h, grad_c: dL/dh_{T-1}, dL/dc_{T-1} in, dL/dh0, dL/dc0 out;
    work: P N (4H + H). Parameter gradients are added to (zeroed by the caller)."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 4, tuple(w_hh.shape)[:2], block)
    _expect("h0", h0, (dm.N, dm.H))
    _check_common(dm, w_ih, w_hh, None, False)
    _expect("c0", c0, (dm.N, dm.H))
    cdef Py_ssize_t go_step = _grad_out_step(dm, grad_out)
    for name, arr in (("h", h), ("c", c), ("tanh_c", tanh_c)):
        _expect(name, arr, (dm.T, dm.N, dm.H))
    _expect("gates", gates, (dm.T, dm.N, dm.GH))
    _expect("grad_h", grad_h, (dm.N, dm.H))
    _expect("grad_c", grad_c, (dm.N, dm.H))
    _expect("work", work, (dm.P * dm.N * (dm.GH + dm.H),))
    _check_grads(dm, grad_x, grad_w_ih, grad_w_hh, grad_b, grad_b, step_grads, need_x, need_w_ih,
                 need_w_hh, need_b, False, need_steps)
    with nogil:
        _lstm_backward_steps(dm, 0, dm.T, &gates[0, 0, 0], &c[0, 0, 0], &tanh_c[0, 0, 0], &h[0, 0, 0],
                             &h0[0, 0], &c0[0, 0], &grad_out[0, 0, 0], go_step, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                             &grad_h[0, 0], &grad_c[0, 0], &work[0], &work[dm.P * dm.N * dm.GH],
                             &step_grads[0, 0, 0] if need_steps else NULL,
                             &grad_x[0, 0, 0] if need_x else NULL, &grad_w_ih[0, 0] if need_w_ih else NULL,
                             &grad_w_hh[0, 0] if need_w_hh else NULL, &grad_b[0] if need_b else NULL)


def lstm_backward_checkpointed(const floating[:, :, ::1] grad_out not None,
                               const floating[:, :, ::1] h_in not None, const floating[:, :, ::1] c_in not None,
                               const Py_ssize_t[::1] starts not None, const floating[:, :, ::1] x not None,
                               const floating[:, ::1] w_ih not None, const floating[:, ::1] w_hh not None,
                               const floating[::1] bias not None, bint has_bias, Py_ssize_t block,
                               floating[:, ::1] grad_h not None, floating[:, ::1] grad_c not None,
                               floating[::1] work not None, floating[:, :, ::1] grad_x not None,
                               floating[:, ::1] grad_w_ih not None, floating[:, ::1] grad_w_hh not None,
                               floating[::1] grad_b not None, floating[:, :, ::1] step_grads not None,
                               bint need_x, bint need_w_ih, bint need_w_hh, bint need_b, bint need_steps):
    """The checkpointed backward: each segment, last first, is recomputed from (h_in, c_in)
    and then backpropagated. work: P N (4H + H) + 2 P N 4H + S N (4H + 3H), S the longest segment."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 4, tuple(w_hh.shape)[:2], block)
    cdef const floating[:, ::1] w_hh_t = _transposed(w_hh)
    _check_common(dm, w_ih, w_hh, bias, has_bias)
    _check_segments(dm, starts)
    cdef Py_ssize_t k = starts.shape[0], NH = dm.N * dm.H, NG = dm.N * dm.GH
    cdef Py_ssize_t longest = _longest(dm, starts)
    cdef Py_ssize_t go_step = _grad_out_step(dm, grad_out)
    _expect("h_in", h_in, (k, dm.N, dm.H))
    _expect("c_in", c_in, (k, dm.N, dm.H))
    _expect("grad_h", grad_h, (dm.N, dm.H))
    _expect("grad_c", grad_c, (dm.N, dm.H))
    _expect("work", work, (dm.P * dm.N * (dm.GH + dm.H) + 2 * dm.P * NG + longest * (NG + 3 * NH),))
    _check_grads(dm, grad_x, grad_w_ih, grad_w_hh, grad_b, grad_b, step_grads, need_x, need_w_ih,
                 need_w_hh, need_b, False, need_steps)
    cdef floating* d_blk = &work[0]
    cdef floating* h_blk = d_blk + dm.P * NG
    cdef floating* slots = h_blk + dm.P * NH
    cdef floating* gates = slots + 2 * dm.P * NG
    cdef floating* c = gates + longest * NG
    cdef floating* tanh_c = c + longest * NH
    cdef floating* h = tanh_c + longest * NH
    cdef BlockSlots held
    held.block[0] = held.block[1] = -1
    held.pinned = -1
    cdef Py_ssize_t j, s, e, t
    cdef floating one = 1
    cdef floating* a
    cdef const floating* h_prev
    cdef const floating* c_prev
    with nogil:
        for j in range(k - 1, -1, -1):
            s = starts[j]
            e = starts[j + 1] if j + 1 < k else dm.T
            h_prev = &h_in[j, 0, 0]
            c_prev = &c_in[j, 0, 0]
            for t in range(s, e):
                a = gates + (t - s) * NG
                _copy(a, _projection(dm, t, slots, &held, t == s, &x[0, 0, 0], &w_ih[0, 0], &bias[0],
                                     has_bias), NG)
                _recurrent_mm(dm, h_prev, &w_hh_t[0, 0], one, a)
                _lstm_cell(dm.N, dm.H, a, c_prev, c + (t - s) * NH, tanh_c + (t - s) * NH, h + (t - s) * NH)
                h_prev = h + (t - s) * NH
                c_prev = c + (t - s) * NH
            _lstm_backward_steps(dm, s, e, gates, c, tanh_c, h, &h_in[j, 0, 0], &c_in[j, 0, 0],
                                 &grad_out[0, 0, 0], go_step, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                                 &grad_h[0, 0], &grad_c[0, 0], d_blk, h_blk,
                                 &step_grads[0, 0, 0] if need_steps else NULL,
                                 &grad_x[0, 0, 0] if need_x else NULL, &grad_w_ih[0, 0] if need_w_ih else NULL,
                                 &grad_w_hh[0, 0] if need_w_hh else NULL, &grad_b[0] if need_b else NULL)


cdef Py_ssize_t _longest(Dims dm, const Py_ssize_t[::1] starts) except -1:
    cdef Py_ssize_t j, e, longest = 0
    for j in range(starts.shape[0]):
        e = starts[j + 1] if j + 1 < starts.shape[0] else dm.T
        longest = max(longest, e - starts[j])
    return longest


cdef int _check_grads(Dims dm, grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, step_grads,
                      bint need_x, bint need_w_ih, bint need_w_hh, bint need_b, bint need_b_hh,
                      bint need_steps) except -1:
    if need_x:
        _expect("grad_x", grad_x, (dm.T, dm.N, dm.D))
    if need_w_ih:
        _expect("grad_w_ih", grad_w_ih, (dm.GH, dm.D))
    if need_w_hh:
        _expect("grad_w_hh", grad_w_hh, (dm.GH, dm.H))
    if need_b:
        _expect("grad_b_ih", grad_b_ih, (dm.GH,))
    if need_b_hh:
        _expect("grad_b_hh", grad_b_hh, (dm.GH,))
    if need_steps:
        _expect("step_grads", step_grads, (dm.T, dm.N, dm.H))
    return 0


# ---------------------------------------------------------------- GRU

cdef void _gru_backward_steps(
        Dims dm, Py_ssize_t s, Py_ssize_t e, const floating* gates, const floating* hn,
        const floating* h, const floating* h_before, const floating* grad_out, Py_ssize_t grad_out_step,
        const floating* x, const floating* w_ih, const floating* w_hh, floating* grad_h,
        floating* grad_h_next, floating* dx_blk, floating* dh_blk, floating* h_blk, floating* step_grads,
        floating* grad_x, floating* grad_w_ih, floating* grad_w_hh, floating* grad_b_ih,
        floating* grad_b_hh) noexcept nogil:
    """Steps e-1 down to s (rows of gates, hn, h: steps s..e-1; h_before: h_{s-1}).
    grad_h: dL/dh_t in, that of step s-1 out; grad_h_next: scratch (N, H); grad_out's row t
    at grad_out + t grad_out_step (0: one row for every step)."""
    cdef Py_ssize_t t, k, b0, NH = dm.N * dm.H, NG = dm.N * dm.GH
    cdef const floating* h_prev
    cdef floating one = 1
    for t in range(e - 1, s - 1, -1):
        if step_grads != NULL:
            _copy(step_grads + t * NH, grad_h, NH)
        k = t - s
        b0 = (t // dm.P) * dm.P
        h_prev = h_before if t == s else h + (k - 1) * NH
        _copy(h_blk + (t - b0) * NH, h_prev, NH)
        _gru_cell_backward(dm.N, dm.H, gates + k * NG, hn + k * NH, h_prev, grad_h,
                           dx_blk + (t - b0) * NG, dh_blk + (t - b0) * NG, grad_h_next)
        if t > 0:   # dL/dh_{t-1} = grad_out[t-1] + grad_h z + d_h W_hh
            _add_into(grad_h_next, grad_out + (t - 1) * grad_out_step, NH)
        _mm(False, False, dm.N, dm.H, dm.GH, dh_blk + (t - b0) * NG, dm.GH, w_hh, dm.H, one, grad_h_next, dm.H)
        _copy(grad_h, grad_h_next, NH)
        if t == b0:
            _block_grads(dm, b0, dx_blk, dh_blk, h_blk, x, w_ih, grad_x, grad_w_ih, grad_w_hh,
                         grad_b_ih, grad_b_hh)


cdef void _gru_step(Dims dm, floating* a, const floating* h_prev, const floating* w_hh_t, const floating* b_hn,
                    floating* rec, floating* hn, floating* h) noexcept nogil:
    """one GRU step: rec = h_prev W_hh^T, then the gate pass (a: the step's input projection)"""
    cdef floating zero = 0
    _recurrent_mm(dm, h_prev, w_hh_t, zero, rec)
    _gru_cell(dm.N, dm.H, a, rec, b_hn, h_prev, hn, h)


def gru_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] h0 not None,
                const floating[:, ::1] w_ih not None, const floating[:, ::1] w_hh not None,
                const floating[::1] bias not None, bint has_bias, const floating[::1] b_hn not None,
                Py_ssize_t block, floating[:, :, ::1] h not None, floating[:, :, ::1] gates not None,
                floating[:, :, ::1] hn not None, floating[::1] work not None):
    """The plain forward; bias: b_ih + [b_hr, b_hz, 0] (added to the projection), b_hn: the
    rest of b_hh (zeros without bias); work: N 3H."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 3, tuple(w_hh.shape)[:2], block)
    cdef const floating[:, ::1] w_hh_t = _transposed(w_hh)
    _expect("h0", h0, (dm.N, dm.H))
    _check_common(dm, w_ih, w_hh, bias, has_bias)
    _expect("b_hn", b_hn, (dm.H,))
    _expect("h", h, (dm.T, dm.N, dm.H))
    _expect("hn", hn, (dm.T, dm.N, dm.H))
    _expect("gates", gates, (dm.T, dm.N, dm.GH))
    _expect("work", work, (dm.N * dm.GH,))
    cdef Py_ssize_t t, b0 = 0
    with nogil:
        while b0 < dm.T:
            _project(dm, b0, &x[0, 0, 0], &w_ih[0, 0], &bias[0], has_bias, &gates[b0, 0, 0])
            for t in range(b0, min(b0 + dm.P, dm.T)):
                _gru_step(dm, &gates[t, 0, 0], &h0[0, 0] if t == 0 else &h[t - 1, 0, 0], &w_hh_t[0, 0],
                          &b_hn[0], &work[0], &hn[t, 0, 0], &h[t, 0, 0])
            b0 += dm.P


def gru_forward_checkpointed(const floating[:, :, ::1] x not None, const floating[:, ::1] h0 not None,
                             const floating[:, ::1] w_ih not None, const floating[:, ::1] w_hh not None,
                             const floating[::1] bias not None, bint has_bias, const floating[::1] b_hn not None,
                             Py_ssize_t block, const Py_ssize_t[::1] starts not None,
                             floating[:, :, ::1] h not None, floating[:, :, ::1] h_in not None,
                             floating[::1] work not None):
    """The forward keeping only h and the state h_in entering each segment; work: P N 3H + N 3H + N H.
    h: (T, N, H), or (2, N, H) for two rows in turn (step t in row t % 2)."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 3, tuple(w_hh.shape)[:2], block)
    cdef const floating[:, ::1] w_hh_t = _transposed(w_hh)
    _expect("h0", h0, (dm.N, dm.H))
    _check_common(dm, w_ih, w_hh, bias, has_bias)
    _check_segments(dm, starts)
    cdef Py_ssize_t k = starts.shape[0], NH = dm.N * dm.H, NG = dm.N * dm.GH
    _expect("b_hn", b_hn, (dm.H,))
    cdef Py_ssize_t rows = _steps_or("h", h, dm, 2)
    _expect("h_in", h_in, (k, dm.N, dm.H))
    _expect("work", work, (dm.P * NG + NG + NH,))
    cdef Py_ssize_t t, j = 0, b0 = 0
    cdef floating* proj = &work[0]
    cdef floating* rec = proj + dm.P * NG
    cdef floating* hn = rec + NG
    cdef const floating* h_prev = &h0[0, 0]
    with nogil:
        while b0 < dm.T:
            _project(dm, b0, &x[0, 0, 0], &w_ih[0, 0], &bias[0], has_bias, proj)
            for t in range(b0, min(b0 + dm.P, dm.T)):
                if j < k and t == starts[j]:
                    _copy(&h_in[j, 0, 0], h_prev, NH)
                    j += 1
                _gru_step(dm, proj + (t - b0) * NG, h_prev, &w_hh_t[0, 0], &b_hn[0], rec, hn, &h[t % rows, 0, 0])
                h_prev = &h[t % rows, 0, 0]
            b0 += dm.P


def gru_backward(const floating[:, :, ::1] grad_out not None, const floating[:, :, ::1] h not None,
                 const floating[:, :, ::1] gates not None, const floating[:, :, ::1] hn not None,
                 const floating[:, :, ::1] x not None, const floating[:, ::1] h0 not None,
                 const floating[:, ::1] w_ih not None, const floating[:, ::1] w_hh not None, Py_ssize_t block,
                 floating[:, ::1] grad_h not None, floating[::1] work not None,
                 floating[:, :, ::1] grad_x not None, floating[:, ::1] grad_w_ih not None,
                 floating[:, ::1] grad_w_hh not None, floating[::1] grad_b_ih not None,
                 floating[::1] grad_b_hh not None, floating[:, :, ::1] step_grads not None, bint need_x,
                 bint need_w_ih, bint need_w_hh, bint need_b, bint need_steps):
    """The plain backward; grad_h: dL/dh_{T-1} in, dL/dh0 out; work: P N (3H + 3H + H) + N H."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 3, tuple(w_hh.shape)[:2], block)
    _expect("h0", h0, (dm.N, dm.H))
    _check_common(dm, w_ih, w_hh, None, False)
    cdef Py_ssize_t go_step = _grad_out_step(dm, grad_out)
    for name, arr in (("h", h), ("hn", hn)):
        _expect(name, arr, (dm.T, dm.N, dm.H))
    _expect("gates", gates, (dm.T, dm.N, dm.GH))
    _expect("grad_h", grad_h, (dm.N, dm.H))
    cdef Py_ssize_t NH = dm.N * dm.H, PNG = dm.P * dm.N * dm.GH
    _expect("work", work, (2 * PNG + dm.P * NH + NH,))
    _check_grads(dm, grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, step_grads, need_x, need_w_ih,
                 need_w_hh, need_b, need_b, need_steps)
    with nogil:
        _gru_backward_steps(dm, 0, dm.T, &gates[0, 0, 0], &hn[0, 0, 0], &h[0, 0, 0], &h0[0, 0],
                            &grad_out[0, 0, 0], go_step, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &grad_h[0, 0],
                            &work[2 * PNG + dm.P * NH], &work[0], &work[PNG], &work[2 * PNG],
                            &step_grads[0, 0, 0] if need_steps else NULL,
                            &grad_x[0, 0, 0] if need_x else NULL, &grad_w_ih[0, 0] if need_w_ih else NULL,
                            &grad_w_hh[0, 0] if need_w_hh else NULL, &grad_b_ih[0] if need_b else NULL,
                            &grad_b_hh[0] if need_b else NULL)


def gru_backward_checkpointed(const floating[:, :, ::1] grad_out not None,
                              const floating[:, :, ::1] h_in not None, const Py_ssize_t[::1] starts not None,
                              const floating[:, :, ::1] x not None, const floating[:, ::1] w_ih not None,
                              const floating[:, ::1] w_hh not None, const floating[::1] bias not None,
                              bint has_bias, const floating[::1] b_hn not None, Py_ssize_t block,
                              floating[:, ::1] grad_h not None, floating[::1] work not None,
                              floating[:, :, ::1] grad_x not None, floating[:, ::1] grad_w_ih not None,
                              floating[:, ::1] grad_w_hh not None, floating[::1] grad_b_ih not None,
                              floating[::1] grad_b_hh not None, floating[:, :, ::1] step_grads not None,
                              bint need_x, bint need_w_ih, bint need_w_hh, bint need_b, bint need_steps):
    """The checkpointed backward; work: P N (3H + 3H + H) + N H + 2 P N 3H + N 3H + S N (3H + 2H)."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 3, tuple(w_hh.shape)[:2], block)
    cdef const floating[:, ::1] w_hh_t = _transposed(w_hh)
    _check_common(dm, w_ih, w_hh, bias, has_bias)
    _check_segments(dm, starts)
    cdef Py_ssize_t k = starts.shape[0], NH = dm.N * dm.H, NG = dm.N * dm.GH, PNG = dm.P * dm.N * dm.GH
    cdef Py_ssize_t longest = _longest(dm, starts)
    _expect("b_hn", b_hn, (dm.H,))
    cdef Py_ssize_t go_step = _grad_out_step(dm, grad_out)
    _expect("h_in", h_in, (k, dm.N, dm.H))
    _expect("grad_h", grad_h, (dm.N, dm.H))
    _expect("work", work, (2 * PNG + dm.P * NH + NH + 2 * PNG + NG + longest * (NG + 2 * NH),))
    _check_grads(dm, grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, step_grads, need_x, need_w_ih,
                 need_w_hh, need_b, need_b, need_steps)
    cdef floating* dx_blk = &work[0]
    cdef floating* dh_blk = dx_blk + PNG
    cdef floating* h_blk = dh_blk + PNG
    cdef floating* grad_h_next = h_blk + dm.P * NH
    cdef floating* slots = grad_h_next + NH
    cdef floating* rec = slots + 2 * PNG
    cdef floating* gates = rec + NG
    cdef floating* hn = gates + longest * NG
    cdef floating* h = hn + longest * NH
    cdef BlockSlots held
    held.block[0] = held.block[1] = -1
    held.pinned = -1
    cdef Py_ssize_t j, s, e, t
    cdef floating* a
    cdef const floating* h_prev
    with nogil:
        for j in range(k - 1, -1, -1):
            s = starts[j]
            e = starts[j + 1] if j + 1 < k else dm.T
            h_prev = &h_in[j, 0, 0]
            for t in range(s, e):
                a = gates + (t - s) * NG
                _copy(a, _projection(dm, t, slots, &held, t == s, &x[0, 0, 0], &w_ih[0, 0], &bias[0],
                                     has_bias), NG)
                _gru_step(dm, a, h_prev, &w_hh_t[0, 0], &b_hn[0], rec, hn + (t - s) * NH, h + (t - s) * NH)
                h_prev = h + (t - s) * NH
            _gru_backward_steps(dm, s, e, gates, hn, h, &h_in[j, 0, 0], &grad_out[0, 0, 0], go_step, &x[0, 0, 0],
                                &w_ih[0, 0], &w_hh[0, 0], &grad_h[0, 0], grad_h_next, dx_blk, dh_blk, h_blk,
                                &step_grads[0, 0, 0] if need_steps else NULL,
                                &grad_x[0, 0, 0] if need_x else NULL, &grad_w_ih[0, 0] if need_w_ih else NULL,
                                &grad_w_hh[0, 0] if need_w_hh else NULL, &grad_b_ih[0] if need_b else NULL,
                                &grad_b_hh[0] if need_b else NULL)


# ---------------------------------------------------------------- Elman RNN

cdef void _rnn_backward_steps(
        Dims dm, Py_ssize_t s, Py_ssize_t e, const floating* h, const floating* h_before,
        const floating* grad_out, Py_ssize_t grad_out_step, const floating* x, const floating* w_ih,
        const floating* w_hh, bint relu, floating* grad_h, floating* d_blk, floating* h_blk,
        floating* step_grads, floating* grad_x, floating* grad_w_ih, floating* grad_w_hh,
        floating* grad_b) noexcept nogil:
    """Steps e-1 down to s (rows of h: steps s..e-1; h_before: h_{s-1});
    grad_h: dL/dh_t in, that of step s-1 out; grad_out's row t at grad_out + t grad_out_step."""
    cdef Py_ssize_t t, k, b0, NH = dm.N * dm.H
    cdef const floating* h_prev
    cdef floating* d
    cdef floating zero = 0, one = 1
    for t in range(e - 1, s - 1, -1):
        if step_grads != NULL:
            _copy(step_grads + t * NH, grad_h, NH)
        k = t - s
        b0 = (t // dm.P) * dm.P
        h_prev = h_before if t == s else h + (k - 1) * NH
        _copy(h_blk + (t - b0) * NH, h_prev, NH)
        d = d_blk + (t - b0) * NH
        _rnn_cell_backward(NH, h + k * NH, grad_h, d, relu)
        if t > 0:   # dL/dh_{t-1} = grad_out[t-1] + d W_hh
            _copy(grad_h, grad_out + (t - 1) * grad_out_step, NH)
            _mm(False, False, dm.N, dm.H, dm.GH, d, dm.GH, w_hh, dm.H, one, grad_h, dm.H)
        else:
            _mm(False, False, dm.N, dm.H, dm.GH, d, dm.GH, w_hh, dm.H, zero, grad_h, dm.H)
        if t == b0:
            _block_grads(dm, b0, d_blk, d_blk, h_blk, x, w_ih, grad_x, grad_w_ih, grad_w_hh, grad_b, NULL)


def rnn_forward(const floating[:, :, ::1] x not None, const floating[:, ::1] h0 not None,
                const floating[:, ::1] w_ih not None, const floating[:, ::1] w_hh not None,
                const floating[::1] bias not None, bint has_bias, bint relu, Py_ssize_t block,
                floating[:, :, ::1] h not None, const Py_ssize_t[::1] starts not None,
                floating[:, :, ::1] h_in not None, floating[::1] work not None):
    """The forward (both kinds: the plain one keeps h, which is all its backward needs);
    with segments (starts), h_in gets the state entering each segment. h (T, N, H): a block's
    projection is computed in h itself; or h (2, N, H), two rows in turn (step t in row t % 2)
    when only the last step is wanted: the projection goes to work (P N H; else unused)."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 1, tuple(w_hh.shape)[:2], block)
    cdef const floating[:, ::1] w_hh_t = _transposed(w_hh)
    _expect("h0", h0, (dm.N, dm.H))
    _check_common(dm, w_ih, w_hh, bias, has_bias)
    cdef Py_ssize_t k = starts.shape[0], NH = dm.N * dm.H
    if k:
        _check_segments(dm, starts)
    cdef Py_ssize_t rows = _steps_or("h", h, dm, 2)
    cdef bint in_place = rows == dm.T
    _expect("h_in", h_in, (k, dm.N, dm.H))
    if not in_place:
        _expect("work", work, (dm.P * NH,))
    cdef Py_ssize_t t, j = 0, b0 = 0
    cdef floating one = 1
    cdef floating* proj
    cdef floating* a
    cdef const floating* h_prev = &h0[0, 0]
    with nogil:
        while b0 < dm.T:
            proj = &h[b0, 0, 0] if in_place else &work[0]
            _project(dm, b0, &x[0, 0, 0], &w_ih[0, 0], &bias[0], has_bias, proj)
            for t in range(b0, min(b0 + dm.P, dm.T)):
                if j < k and t == starts[j]:
                    _copy(&h_in[j, 0, 0], h_prev, NH)
                    j += 1
                a = proj + (t - b0) * NH
                _recurrent_mm(dm, h_prev, &w_hh_t[0, 0], one, a)
                _rnn_cell(NH, a, relu)
                if not in_place:   # a's block is overwritten by the next projection
                    _copy(&h[t % rows, 0, 0], a, NH)
                h_prev = &h[t % rows, 0, 0]
            b0 += dm.P


def rnn_backward(const floating[:, :, ::1] grad_out not None, const floating[:, :, ::1] h not None,
                 const floating[:, :, ::1] x not None, const floating[:, ::1] h0 not None,
                 const floating[:, ::1] w_ih not None, const floating[:, ::1] w_hh not None, bint relu,
                 Py_ssize_t block, floating[:, ::1] grad_h not None, floating[::1] work not None,
                 floating[:, :, ::1] grad_x not None, floating[:, ::1] grad_w_ih not None,
                 floating[:, ::1] grad_w_hh not None, floating[::1] grad_b not None,
                 floating[:, :, ::1] step_grads not None, bint need_x, bint need_w_ih, bint need_w_hh,
                 bint need_b, bint need_steps):
    """The plain backward; grad_h: dL/dh_{T-1} in, dL/dh0 out; work: 2 P N H."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 1, tuple(w_hh.shape)[:2], block)
    _expect("h0", h0, (dm.N, dm.H))
    _check_common(dm, w_ih, w_hh, None, False)
    cdef Py_ssize_t go_step = _grad_out_step(dm, grad_out)
    _expect("h", h, (dm.T, dm.N, dm.H))
    _expect("grad_h", grad_h, (dm.N, dm.H))
    cdef Py_ssize_t PNH = dm.P * dm.N * dm.H
    _expect("work", work, (2 * PNH,))
    _check_grads(dm, grad_x, grad_w_ih, grad_w_hh, grad_b, grad_b, step_grads, need_x, need_w_ih,
                 need_w_hh, need_b, False, need_steps)
    with nogil:
        _rnn_backward_steps(dm, 0, dm.T, &h[0, 0, 0], &h0[0, 0], &grad_out[0, 0, 0], go_step, &x[0, 0, 0], &w_ih[0, 0],
                            &w_hh[0, 0], relu, &grad_h[0, 0], &work[0], &work[PNH],
                            &step_grads[0, 0, 0] if need_steps else NULL,
                            &grad_x[0, 0, 0] if need_x else NULL, &grad_w_ih[0, 0] if need_w_ih else NULL,
                            &grad_w_hh[0, 0] if need_w_hh else NULL, &grad_b[0] if need_b else NULL)


def rnn_backward_checkpointed(const floating[:, :, ::1] grad_out not None,
                              const floating[:, :, ::1] h_in not None, const Py_ssize_t[::1] starts not None,
                              const floating[:, :, ::1] x not None, const floating[:, ::1] w_ih not None,
                              const floating[:, ::1] w_hh not None, const floating[::1] bias not None,
                              bint has_bias, bint relu, Py_ssize_t block, floating[:, ::1] grad_h not None,
                              floating[::1] work not None, floating[:, :, ::1] grad_x not None,
                              floating[:, ::1] grad_w_ih not None, floating[:, ::1] grad_w_hh not None,
                              floating[::1] grad_b not None, floating[:, :, ::1] step_grads not None, bint need_x,
                              bint need_w_ih, bint need_w_hh, bint need_b, bint need_steps):
    """The checkpointed backward; work: 2 P N H + 2 P N H + S N H."""
    cdef Dims dm = _dims(tuple(x.shape)[:3], 1, tuple(w_hh.shape)[:2], block)
    cdef const floating[:, ::1] w_hh_t = _transposed(w_hh)
    _check_common(dm, w_ih, w_hh, bias, has_bias)
    _check_segments(dm, starts)
    cdef Py_ssize_t k = starts.shape[0], NH = dm.N * dm.H, PNH = dm.P * dm.N * dm.H
    cdef Py_ssize_t longest = _longest(dm, starts)
    cdef Py_ssize_t go_step = _grad_out_step(dm, grad_out)
    _expect("h_in", h_in, (k, dm.N, dm.H))
    _expect("grad_h", grad_h, (dm.N, dm.H))
    _expect("work", work, (4 * PNH + longest * NH,))
    _check_grads(dm, grad_x, grad_w_ih, grad_w_hh, grad_b, grad_b, step_grads, need_x, need_w_ih,
                 need_w_hh, need_b, False, need_steps)
    cdef floating* d_blk = &work[0]
    cdef floating* h_blk = d_blk + PNH
    cdef floating* slots = h_blk + PNH
    cdef floating* h = slots + 2 * PNH
    cdef BlockSlots held
    held.block[0] = held.block[1] = -1
    held.pinned = -1
    cdef Py_ssize_t j, s, e, t
    cdef floating one = 1
    cdef floating* a
    cdef const floating* h_prev
    with nogil:
        for j in range(k - 1, -1, -1):
            s = starts[j]
            e = starts[j + 1] if j + 1 < k else dm.T
            h_prev = &h_in[j, 0, 0]
            for t in range(s, e):
                a = h + (t - s) * NH
                _copy(a, _projection(dm, t, slots, &held, t == s, &x[0, 0, 0], &w_ih[0, 0], &bias[0],
                                     has_bias), NH)
                _recurrent_mm(dm, h_prev, &w_hh_t[0, 0], one, a)
                _rnn_cell(NH, a, relu)
                h_prev = a
            _rnn_backward_steps(dm, s, e, h, &h_in[j, 0, 0], &grad_out[0, 0, 0], go_step, &x[0, 0, 0], &w_ih[0, 0],
                                &w_hh[0, 0], relu, &grad_h[0, 0], d_blk, h_blk,
                                &step_grads[0, 0, 0] if need_steps else NULL,
                                &grad_x[0, 0, 0] if need_x else NULL, &grad_w_ih[0, 0] if need_w_ih else NULL,
                                &grad_w_hh[0, 0] if need_w_hh else NULL, &grad_b[0] if need_b else NULL)
