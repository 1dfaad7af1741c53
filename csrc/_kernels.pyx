# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled kernels of tinygrad_vg: fused activations and BLAS matmul.

Design:
- Each kernel is a `def` wrapper (checks, layout, allocation; holds the GIL) around
  a fused float/double loop that runs with the GIL released. The wrappers are what
  tinygrad_vg.kernels exports and what the tests compare with the numpy twins.
- Elementwise kernels see every array as one flat contiguous run: a C- or
  F-contiguous array is used as it is (the output is allocated in the same order),
  anything else (strided or broadcast views) is copied to C order first. Two-input
  kernels bring the second input to the order of the first.
- Each loop is one pass with no temporaries. The arithmetic mirrors the numpy
  twins operation for operation and in the same order, so the backward kernels and
  relu equal numpy bit for bit; tanh and sigmoid differ from numpy only where libm's
  tanh/exp differ from numpy's. Two things keep it so: the build turns off FMA
  contraction, and constants are typed locals (`one`), because Cython writes a
  literal 1 as the C double 1.0, which would do float32 math in double.
- matmul calls sgemm/dgemm from scipy.linalg.cython_blas (no link-time BLAS). BLAS
  is column-major: a C-ordered (r, c) buffer is the column-major (c, r) matrix,
  i.e. the transpose, so the transposes asked for and the memory orders of the
  operands become BLAS trans flags and nothing is copied.
"""
import numpy as np

from libc.math cimport exp, expf, fabs, fabsf, tanh, tanhf
from scipy.linalg.cython_blas cimport dgemm, sgemm

cdef extern from "_simd_math.h":
    # 1 when tanhf/tanh are declared `simd` so that gcc calls glibc's libmvec from
    # vectorized loops (see the header); 0: scalar libm
    int TG_VECTOR_MATH

VECTOR_MATH = bool(TG_VECTOR_MATH)

ctypedef fused floating:
    float
    double

_ACCEPTED = "float32 or float64 numpy arrays"


# ---------------------------------------------------------------- checks, layout

cdef object _as_float_array(object x, str kernel, str arg):
    """x as an ndarray of float32/float64, or TypeError naming what was given."""
    if isinstance(x, np.generic):  # a numpy scalar such as np.float64(1.0)
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{kernel}: {arg} must be a numpy array ({_ACCEPTED}); "
                        f"got {type(x).__name__}")
    if x.dtype != np.float32 and x.dtype != np.float64:
        raise TypeError(f"{kernel}: {arg} has dtype {x.dtype}; accepted: {_ACCEPTED}")
    return x


cdef tuple _unary(object x, str kernel):
    """(flat x, out, flat out): x made contiguous, out empty in the same order."""
    x = _as_float_array(x, kernel, "x")
    if x.flags.f_contiguous and not x.flags.c_contiguous:
        order = "F"
    else:
        order = "C"
        if not x.flags.c_contiguous:
            x = x.copy(order="C")
    out = np.empty_like(x)
    return x.reshape(-1, order=order), out, out.reshape(-1, order=order)


cdef tuple _binary(object a, object b, str kernel, str name_a, str name_b):
    """(flat a, flat b, out, flat out) with a and b in one memory order."""
    a = _as_float_array(a, kernel, name_a)
    b = _as_float_array(b, kernel, name_b)
    if a.dtype != b.dtype:
        raise TypeError(f"{kernel}: {name_a} is {a.dtype} but {name_b} is {b.dtype}; "
                        f"both must have the same dtype (float32 or float64)")
    if a.shape != b.shape:
        raise ValueError(f"{kernel}: {name_a} has shape {a.shape} but {name_b} has shape "
                         f"{b.shape}; both must have the same shape (no broadcasting)")
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        order = "F"
        if not b.flags.f_contiguous:
            b = b.copy(order="F")
    else:
        order = "C"
        if not a.flags.c_contiguous:
            a = a.copy(order="C")
        if not b.flags.c_contiguous:
            b = b.copy(order="C")
    out = np.empty_like(a)
    return a.reshape(-1, order=order), b.reshape(-1, order=order), out, out.reshape(-1, order=order)


# ---------------------------------------------------------------- scalar math

cdef inline floating _tanh(floating v) noexcept nogil:
    if floating is float:
        return tanhf(v)
    else:
        return tanh(v)


cdef inline floating _sigmoid(floating v) noexcept nogil:
    """z = exp(-|v|); 1/(1+z) if v >= 0 else z/(1+z)  (never overflows)"""
    cdef floating z, zero = 0, one = 1
    if floating is float:
        z = expf(-fabsf(v))
    else:
        z = exp(-fabs(v))
    if v >= zero:
        return one / (one + z)
    return z / (one + z)  # also v = NaN: z is NaN, so is the result


# ---------------------------------------------------------------- loops (GIL released)
# Private, but reachable from Python: with bounds checks off, lengths are checked here.

cdef inline int _same_length(Py_ssize_t n, Py_ssize_t m, Py_ssize_t k=-1) except -1:
    if m != n or (k != -1 and k != n):
        raise ValueError(f"kernel loop: flat inputs and output differ in length ({n}, {m}, {k})")
    return 0


def _tanh_forward(const floating[::1] x, floating[::1] y):
    """y = tanh(x)"""
    cdef Py_ssize_t i
    _same_length(x.shape[0], y.shape[0])
    with nogil:
        for i in range(x.shape[0]):
            y[i] = _tanh(x[i])


def _tanh_backward(const floating[::1] grad_out, const floating[::1] y, floating[::1] grad_x):
    """grad_x = grad_out * (1 - y*y)"""
    cdef Py_ssize_t i
    cdef floating one = 1
    _same_length(y.shape[0], grad_out.shape[0], grad_x.shape[0])
    with nogil:
        for i in range(y.shape[0]):
            grad_x[i] = grad_out[i] * (one - y[i] * y[i])


def _sigmoid_forward(const floating[::1] x, floating[::1] y):
    """y = 1 / (1 + exp(-x))"""
    cdef Py_ssize_t i
    _same_length(x.shape[0], y.shape[0])
    with nogil:
        for i in range(x.shape[0]):
            y[i] = _sigmoid(x[i])


def _sigmoid_backward(const floating[::1] grad_out, const floating[::1] y, floating[::1] grad_x):
    """grad_x = grad_out * (y * (1 - y))"""
    cdef Py_ssize_t i
    cdef floating one = 1
    _same_length(y.shape[0], grad_out.shape[0], grad_x.shape[0])
    with nogil:
        for i in range(y.shape[0]):
            grad_x[i] = grad_out[i] * (y[i] * (one - y[i]))


def _relu_forward(const floating[::1] x, floating[::1] y):
    """y = max(x, 0); NaN stays NaN"""
    cdef Py_ssize_t i
    cdef floating zero = 0
    _same_length(x.shape[0], y.shape[0])
    with nogil:
        for i in range(x.shape[0]):
            y[i] = zero if x[i] <= zero else x[i]


def _relu_backward(const floating[::1] grad_out, const floating[::1] x, floating[::1] grad_x):
    """grad_x = grad_out * (x > 0)"""
    cdef Py_ssize_t i
    cdef floating zero = 0, one = 1
    _same_length(x.shape[0], grad_out.shape[0], grad_x.shape[0])
    with nogil:
        for i in range(x.shape[0]):
            grad_x[i] = grad_out[i] * (one if x[i] > zero else zero)


# ---------------------------------------------------------------- public wrappers

def tanh_forward(x):
    """y = tanh(x)"""
    x_flat, out, out_flat = _unary(x, "tanh_forward")
    if out.size:
        _tanh_forward(x_flat, out_flat)
    return out


def tanh_backward(grad_out, y):
    """grad_x = grad_out * (1 - y^2)"""
    g_flat, y_flat, out, out_flat = _binary(grad_out, y, "tanh_backward", "grad_out", "y")
    if out.size:
        _tanh_backward(g_flat, y_flat, out_flat)
    return out


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|"""
    x_flat, out, out_flat = _unary(x, "sigmoid_forward")
    if out.size:
        _sigmoid_forward(x_flat, out_flat)
    return out


def sigmoid_backward(grad_out, y):
    """grad_x = grad_out * y * (1 - y)"""
    g_flat, y_flat, out, out_flat = _binary(grad_out, y, "sigmoid_backward", "grad_out", "y")
    if out.size:
        _sigmoid_backward(g_flat, y_flat, out_flat)
    return out


def relu_forward(x):
    """y = max(x, 0)"""
    x_flat, out, out_flat = _unary(x, "relu_forward")
    if out.size:
        _relu_forward(x_flat, out_flat)
    return out


def relu_backward(grad_out, x):
    """grad_x = grad_out * (x > 0)"""
    g_flat, x_flat, out, out_flat = _binary(grad_out, x, "relu_backward", "grad_out", "x")
    if out.size:
        _relu_backward(g_flat, x_flat, out_flat)
    return out


# ---------------------------------------------------------------- matmul

cdef tuple _blas_operand(object m, bint transposed):
    """(trans flag, leading dimension) that make BLAS read op(m) from m's buffer.

    An F-ordered m is the column-major matrix m; a C-ordered m is m.T."""
    if m.flags.c_contiguous:
        return (b"N" if transposed else b"T")[0], max(1, m.shape[1])
    return (b"T" if transposed else b"N")[0], max(1, m.shape[0])


cdef void _gemm(const floating[:, :] a_buf, const floating[:, :] b_buf, floating[:, :] c_buf,
                char trans_a, char trans_b, int m, int n, int k, int lda, int ldb, int ldc) noexcept:
    """C = op(A) @ op(B) in column-major terms (C is m x n, op(A) m x k, op(B) k x n)"""
    cdef floating alpha = 1
    cdef floating beta = 0
    cdef floating *pa = <floating *> &a_buf[0, 0]  # BLAS only reads a and b
    cdef floating *pb = <floating *> &b_buf[0, 0]
    cdef floating *pc = &c_buf[0, 0]
    with nogil:
        if floating is float:
            sgemm(&trans_a, &trans_b, &m, &n, &k, &alpha, pa, &lda, pb, &ldb, &beta, pc, &ldc)
        else:
            dgemm(&trans_a, &trans_b, &m, &n, &k, &alpha, pa, &lda, pb, &ldb, &beta, pc, &ldc)


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """out = op(a) @ op(b), op(m) = m.T if trans_m else m; 2-D float32/float64 via BLAS gemm"""
    a = _as_float_array(a, "matmul", "a")
    b = _as_float_array(b, "matmul", "b")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: a is {a.dtype} but b is {b.dtype}; "
                        f"both must have the same dtype (float32 or float64)")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul: a and b must be 2-D; got shapes {a.shape} and {b.shape}")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    k_b, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != k_b:
        raise ValueError(f"matmul: op(a) is {m}x{k} but op(b) is {k_b}x{n} "
                         f"(a {a.shape}, trans_a={bool(trans_a)}; b {b.shape}, "
                         f"trans_b={bool(trans_b)}); inner dimensions must agree")
    if out is None:
        out = np.empty((m, n), dtype=a.dtype)
    else:
        if not isinstance(out, np.ndarray) or out.dtype != a.dtype:
            raise TypeError(f"matmul: out must be a {a.dtype} numpy array; "
                            f"got {getattr(out, 'dtype', type(out).__name__)}")
        if out.shape != (m, n):
            raise ValueError(f"matmul: out has shape {out.shape}; expected {(m, n)}")
        if not (out.flags.c_contiguous or out.flags.f_contiguous) or not out.flags.writeable:
            raise ValueError("matmul: out must be a writeable C- or F-contiguous array")
    if max(m, n, k) > 2**31 - 1:
        raise ValueError(f"matmul: dimensions {(m, k, n)} exceed the 32-bit BLAS limit")
    if m == 0 or n == 0:
        return out
    if k == 0:
        out.fill(0)
        return out
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        a = a.copy(order="C")
    if not (b.flags.c_contiguous or b.flags.f_contiguous):
        b = b.copy(order="C")

    if out.flags.c_contiguous:
        # A C-ordered out is the column-major (n, m) matrix out.T = op(b).T @ op(a).T.
        a, b, trans_a, trans_b, m, n = b, a, not trans_b, not trans_a, n, m
    ta, lda = _blas_operand(a, trans_a)
    tb, ldb = _blas_operand(b, trans_b)
    if a.dtype == np.float32:
        _gemm[float](a, b, out, ta, tb, m, n, k, lda, ldb, max(1, m))
    else:
        _gemm[double](a, b, out, ta, tb, m, n, k, lda, ldb, max(1, m))
    return out


# ---------------------------------------------------------------- fused linear layer
# y = f(x W^T + b) for a 2-D batch x (N, D_in), W (D_out, D_in), b (D_out,) or None,
# f in ACTIVATIONS. One gemm into y, then one pass adds the bias and applies f in
# place. Backward: one pass makes grad_z = grad_out * f'(z) from the saved y, then two
# gemms and a column sum. Calling gemm here, not through matmul(), skips the Python
# work of matmul's checks, which at 32x20 costs more than the product itself.
#
# Memory: C-ordered x, W and grad_out are used as they are; anything else is copied
# to C order first. Outputs are new C-ordered arrays. In column-major (BLAS) terms a
# C-ordered (r, c) array is the (c, r) matrix, hence the trans flags below.

ACTIVATIONS = (None, "tanh", "sigmoid", "relu")


cdef int _activation_code(object activation) except -1:
    if activation is None or activation == "identity":
        return 0
    if activation == "tanh":
        return 1
    if activation == "sigmoid":
        return 2
    if activation == "relu":
        return 3
    raise ValueError(f"linear_act: unknown activation {activation!r}; accepted: None, 'identity', "
                     "'tanh', 'sigmoid', 'relu'")


cdef void _bias_act(floating[:, ::1] y, const floating[::1] b, bint has_bias, int code) noexcept nogil:
    """y = f(y + b) in place (b broadcast over rows). Two flat passes, not one with a
    branch per element: the activation loop is then a plain loop that gcc vectorizes
    (tanh through libmvec), which is worth more than the second pass over y."""
    cdef Py_ssize_t i, j, size = y.shape[0] * y.shape[1]
    cdef floating zero = 0
    cdef floating *p = &y[0, 0]
    if has_bias:
        for i in range(y.shape[0]):
            for j in range(y.shape[1]):
                y[i, j] = y[i, j] + b[j]
    if code == 1:
        for i in range(size):
            p[i] = _tanh(p[i])
    elif code == 2:
        for i in range(size):
            p[i] = _sigmoid(p[i])
    elif code == 3:
        for i in range(size):
            p[i] = zero if p[i] <= zero else p[i]


cdef void _act_grad(const floating[:, ::1] g, const floating[:, ::1] y, floating[:, ::1] gz,
                    int code) noexcept nogil:
    """grad_z = grad_out * f'(z), f' from the output y (as the activation kernels do)"""
    cdef Py_ssize_t i, j
    cdef floating zero = 0, one = 1
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            if code == 1:
                gz[i, j] = g[i, j] * (one - y[i, j] * y[i, j])
            elif code == 2:
                gz[i, j] = g[i, j] * (y[i, j] * (one - y[i, j]))
            elif code == 3:
                gz[i, j] = g[i, j] * (one if y[i, j] > zero else zero)
            else:
                gz[i, j] = g[i, j]


cdef void _column_sums(const floating[:, ::1] g, floating[::1] out) noexcept nogil:
    """out[j] = sum over rows i of g[i, j], rows added in order (as numpy's sum(axis=0))"""
    cdef Py_ssize_t i, j
    for j in range(g.shape[1]):
        out[j] = 0
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            out[j] += g[i, j]


cdef void _gemm_c(char ta, char tb, int m, int n, int k, floating *a, int lda,
                  floating *b, int ldb, floating *c, int ldc) noexcept nogil:
    """c = op(a) op(b), column-major, beta = 0"""
    cdef floating alpha = 1, beta = 0
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)


cdef object _c_matrix(object m, str arg, object dtype):
    m = _as_float_array(m, "linear_act", arg)
    if m.ndim != 2:
        raise ValueError(f"linear_act: {arg} must be 2-D; got shape {m.shape}")
    if m.dtype != dtype:
        raise TypeError(f"linear_act: {arg} is {m.dtype} but x is {dtype}; all must have one dtype")
    return m if m.flags.c_contiguous else np.ascontiguousarray(m)


cdef tuple _linear_checks(object x, object weight, object bias):
    x = _as_float_array(x, "linear_act", "x")
    if x.ndim != 2:
        raise ValueError(f"linear_act: x must be 2-D (N, D_in); got shape {x.shape}")
    x = x if x.flags.c_contiguous else np.ascontiguousarray(x)
    weight = _c_matrix(weight, "weight", x.dtype)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"linear_act: x has shape {x.shape} but weight has shape {weight.shape}; "
                         f"need weight (D_out, {x.shape[1]})")
    if bias is not None:
        bias = _as_float_array(bias, "linear_act", "bias")
        if bias.dtype != x.dtype:
            raise TypeError(f"linear_act: bias is {bias.dtype} but x is {x.dtype}; all must have one dtype")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear_act: bias has shape {bias.shape}; expected ({weight.shape[0]},)")
        bias = np.ascontiguousarray(bias)
    if max(x.shape[0], x.shape[1], weight.shape[0]) > 2**31 - 1:
        raise ValueError("linear_act: dimensions exceed the 32-bit BLAS limit")
    return x, weight, bias


cdef void _linear_forward(const floating[:, ::1] x, const floating[:, ::1] w, const floating[::1] b,
                          bint has_bias, floating[:, ::1] y, int code) noexcept:
    cdef int n = x.shape[0], d_in = x.shape[1], d_out = w.shape[0]
    with nogil:
        if n > 0 and d_in > 0 and d_out > 0:   # else y is already zero (from the wrapper)
            # y (C, N x D_out) is the column-major D_out x N matrix W x^T
            _gemm_c(b"T"[0], b"N"[0], d_out, n, d_in, <floating *> &w[0, 0], d_in,
                    <floating *> &x[0, 0], d_in, &y[0, 0], d_out)
        _bias_act(y, b, has_bias, code)


def linear_act_forward(x, weight, bias=None, activation=None):
    """y = f(x @ weight^T + bias); x (N, D_in), weight (D_out, D_in), bias (D_out,) or None"""
    cdef int code = _activation_code(activation)
    x, weight, bias = _linear_checks(x, weight, bias)
    y = (np.empty if x.shape[1] else np.zeros)((x.shape[0], weight.shape[0]), dtype=x.dtype)
    if y.size == 0:
        return y
    has_bias = bias is not None
    if x.dtype == np.float32:
        _linear_forward[float](x, weight, bias if has_bias else _EMPTY32, has_bias, y, code)
    else:
        _linear_forward[double](x, weight, bias if has_bias else _EMPTY64, has_bias, y, code)
    return y


_EMPTY32 = np.zeros(1, np.float32)
_EMPTY64 = np.zeros(1, np.float64)
_dummy2 = {"f": np.zeros((1, 1), np.float32), "d": np.zeros((1, 1), np.float64)}
_dummy1 = {"f": _EMPTY32, "d": _EMPTY64}


cdef void _linear_backward(const floating[:, ::1] g, const floating[:, ::1] x, const floating[:, ::1] w,
                           const floating[:, ::1] y, int code, floating[:, ::1] gz, floating[:, ::1] gx,
                           floating[:, ::1] gw, floating[::1] gb, bint need_x, bint need_w,
                           bint need_b) noexcept:
    """outputs with a zero-sized product were zero-filled by the wrapper"""
    cdef int n = x.shape[0], d_in = x.shape[1], d_out = w.shape[0]
    cdef bint full = n > 0 and d_in > 0 and d_out > 0
    with nogil:
        _act_grad(g, y, gz, code)
        if need_x and full:
            # grad_x (C, N x D_in) is the column-major D_in x N matrix W^T grad_z^T
            _gemm_c(b"N"[0], b"N"[0], d_in, n, d_out, <floating *> &w[0, 0], d_in, &gz[0, 0], d_out,
                    &gx[0, 0], d_in)
        if need_w and full:
            # grad_W (C, D_out x D_in) is the column-major D_in x D_out matrix x^T grad_z
            _gemm_c(b"N"[0], b"T"[0], d_in, d_out, n, <floating *> &x[0, 0], d_in, &gz[0, 0], d_out,
                    &gw[0, 0], d_in)
        if need_b:
            _column_sums(gz, gb)


def linear_act_backward(grad_out, x, weight, y, activation=None, need_x=True, need_w=True, need_b=True):
    """grad_z = grad_out * f'(z) (from y); grad_x = grad_z @ weight, grad_w = grad_z^T @ x,
    grad_b = grad_z summed over rows; each None unless asked for (need_*)"""
    cdef int code = _activation_code(activation)
    x, weight, _ = _linear_checks(x, weight, None)
    shape = (x.shape[0], weight.shape[0])
    g = _c_matrix(grad_out, "grad_out", x.dtype)
    y = _c_matrix(y, "y", x.dtype)
    if g.shape != shape or y.shape != shape:
        raise ValueError(f"linear_act_backward: grad_out {g.shape} and y {y.shape} must have shape {shape}")
    dt = x.dtype
    alloc = np.empty if min(x.shape[0], x.shape[1], weight.shape[0]) > 0 else np.zeros
    gz = np.empty(shape, dtype=dt)
    gx = alloc(x.shape, dtype=dt) if need_x else None
    gw = alloc(weight.shape, dtype=dt) if need_w else None
    gb = np.empty(shape[1], dtype=dt) if need_b else None
    # unused outputs get a 1x1 dummy so that the typed call has something to bind
    dummy2, dummy1 = _dummy2[dt.char], _dummy1[dt.char]
    if dt == np.float32:
        _linear_backward[float](g, x, weight, y, code, gz, dummy2 if gx is None else gx,
                                dummy2 if gw is None else gw, dummy1 if gb is None else gb,
                                need_x, need_w, need_b)
    else:
        _linear_backward[double](g, x, weight, y, code, gz, dummy2 if gx is None else gx,
                                 dummy2 if gw is None else gw, dummy1 if gb is None else gb,
                                 need_x, need_w, need_b)
    return gx, gw, gb
