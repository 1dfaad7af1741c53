# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The linear kernels, compiled: BLAS matmul and the fused linear layer y = f(x W^T + b)
(twin: tinygrad_vg/kernels/reference/linear.py, same names, signatures, results, errors).

matmul calls gemm from csrc/_blas.pxd (scipy's BLAS, no link-time BLAS). BLAS is
column-major: a C-ordered (r, c) buffer is the column-major (c, r) matrix, i.e. the
transpose, so the transposes asked for and the memory orders of the operands become
BLAS trans flags and nothing is copied. Fast and slow paths as in elementwise.pyx; the
bias + activation and activation-gradient passes are csrc/linear_loops.h's.
"""
import numpy as np

cimport numpy as cnp
from libc.limits cimport INT_MAX
from _arrays cimport _contiguous, _flat_order, _order_of, _plain_type, _same_shape
from _blas cimport gemm

from tinygrad_vg.kernels import _checks

cnp.import_array()

cdef extern from "linear_loops.h" nogil:
    void tg_bias_act_f(float *y, const float *b, Py_ssize_t rows, Py_ssize_t cols, int code)
    void tg_bias_act_d(double *y, const double *b, Py_ssize_t rows, Py_ssize_t cols, int code)
    void tg_act_grad_f(const float *g, const float *y, float *gz, Py_ssize_t n, int code)
    void tg_act_grad_d(const double *g, const double *y, double *gz, Py_ssize_t n, int code)
    void tg_column_sums_f(const float *g, Py_ssize_t rows, Py_ssize_t cols, float *out)
    void tg_column_sums_d(const double *g, Py_ssize_t rows, Py_ssize_t cols, double *out)
    void tg_add_f(const float *a, const float *b, float *out, Py_ssize_t n)
    void tg_add_d(const double *a, const double *b, double *out, Py_ssize_t n)

cdef int NPY_FLOAT = cnp.NPY_FLOAT


cdef inline void _gemm(int typenum, char trans_a, char trans_b, int m, int n, int k, void *a, int lda,
                       void *b, int ldb, void *c, int ldc) noexcept nogil:
    """c = op(a) @ op(b) in column-major terms (c is m x n, op(a) m x k, op(b) k x n), beta = 0"""
    if typenum == NPY_FLOAT:
        gemm(trans_a, trans_b, m, n, k, <float> 1, <float *> a, lda, <float *> b, ldb, <float> 0, <float *> c, ldc)
    else:
        gemm(trans_a, trans_b, m, n, k, <double> 1, <double *> a, lda, <double *> b, ldb, <double> 0,
             <double *> c, ldc)


cdef inline bint _matmul_operand_ok(object m, int typenum) noexcept:
    """m is a plain 2-D array of this type, C- or F-contiguous, with 32-bit dimensions"""
    cdef cnp.ndarray a
    if _plain_type(m) != typenum:
        return False
    a = <cnp.ndarray> m
    return (cnp.PyArray_NDIM(a) == 2 and _flat_order(a) >= 0
            and cnp.PyArray_DIM(a, 0) <= INT_MAX and cnp.PyArray_DIM(a, 1) <= INT_MAX)


cdef object _matmul_run(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, bint trans_a, bint trans_b,
                        int m, int n, int k):
    """out = op(a) @ op(b); a, b C- or F-contiguous, out C- or F-contiguous (m x n)."""
    cdef char ta, tb
    cdef int lda, ldb
    cdef cnp.ndarray swap
    cdef bint swap_t
    if m == 0 or n == 0:
        return out
    if k == 0:
        cnp.PyArray_FILLWBYTE(out, 0)
        return out
    if cnp.PyArray_IS_C_CONTIGUOUS(out):
        # A C-ordered out is the column-major (n, m) matrix out.T = op(b).T @ op(a).T.
        swap = a
        a = b
        b = swap
        swap_t = trans_a
        trans_a = not trans_b
        trans_b = not swap_t
        m, n = n, m
    # An F-ordered operand is the column-major matrix itself; a C-ordered one its transpose.
    if cnp.PyArray_IS_C_CONTIGUOUS(a):
        ta, lda = (b"N" if trans_a else b"T")[0], max(1, <int> cnp.PyArray_DIM(a, 1))
    else:
        ta, lda = (b"T" if trans_a else b"N")[0], max(1, <int> cnp.PyArray_DIM(a, 0))
    if cnp.PyArray_IS_C_CONTIGUOUS(b):
        tb, ldb = (b"N" if trans_b else b"T")[0], max(1, <int> cnp.PyArray_DIM(b, 1))
    else:
        tb, ldb = (b"T" if trans_b else b"N")[0], max(1, <int> cnp.PyArray_DIM(b, 0))
    _gemm(cnp.PyArray_TYPE(a), ta, tb, m, n, k, cnp.PyArray_DATA(a), lda, cnp.PyArray_DATA(b), ldb,
          cnp.PyArray_DATA(out), max(1, m))
    return out


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """out = op(a) @ op(b), op(m) = m.T if trans_m else m; 2-D float32/float64 via BLAS gemm"""
    cdef bint t_a = trans_a, t_b = trans_b
    cdef int typenum = _plain_type(a)
    cdef cnp.ndarray pa, pb, po
    cdef Py_ssize_t m, k, k_b, n
    cdef cnp.npy_intp dims[2]
    if typenum >= 0 and _matmul_operand_ok(a, typenum) and _matmul_operand_ok(b, typenum):
        pa, pb = <cnp.ndarray> a, <cnp.ndarray> b
        m, k = cnp.PyArray_DIM(pa, 1 if t_a else 0), cnp.PyArray_DIM(pa, 0 if t_a else 1)
        k_b, n = cnp.PyArray_DIM(pb, 1 if t_b else 0), cnp.PyArray_DIM(pb, 0 if t_b else 1)
        if k == k_b:
            if out is None:
                dims[0], dims[1] = m, n
                return _matmul_run(pa, pb, <cnp.ndarray> cnp.PyArray_EMPTY(2, dims, typenum, 0),
                                   t_a, t_b, <int> m, <int> n, <int> k)
            if (_matmul_operand_ok(out, typenum) and cnp.PyArray_ISWRITEABLE(<cnp.ndarray> out)
                    and not np.may_share_memory(out, a) and not np.may_share_memory(out, b)):
                po = <cnp.ndarray> out
                if cnp.PyArray_DIM(po, 0) == m and cnp.PyArray_DIM(po, 1) == n:
                    return _matmul_run(pa, pb, po, t_a, t_b, <int> m, <int> n, <int> k)
    # slow path: errors, subclasses, strided or unaligned operands
    a, b, out, m, k, n = _checks.matmul_args(a, b, trans_a, trans_b, out)
    if max(m, n, k) > INT_MAX:
        raise ValueError(f"matmul: dimensions {(m, k, n)} exceed the 32-bit BLAS limit")
    a, b = _contiguous(a, _order_of(a)), _contiguous(b, _order_of(b))
    if out is None:
        return _matmul_run(a, b, np.empty((m, n), dtype=a.dtype), t_a, t_b, <int> m, <int> n, <int> k)
    if out.flags.aligned and not np.may_share_memory(out, a) and not np.may_share_memory(out, b):
        return _matmul_run(a, b, out, t_a, t_b, <int> m, <int> n, <int> k)
    # BLAS gets an aligned buffer that no operand overlaps (gemm must not write what it
    # reads, e.g. out=a); the result is copied into the caller's out
    out[...] = _matmul_run(a, b, np.empty((m, n), dtype=a.dtype, order=_order_of(out)), t_a, t_b,
                           <int> m, <int> n, <int> k)
    return out


# ---------------------------------------------------------------- fused linear layer
# y = f(x W^T + b) for a 2-D batch x (N, D_in), W (D_out, D_in), b (D_out,) or None,
# f in ACTIVATIONS. One gemm into y, then one pass adds the bias and one applies f, in
# place. Backward: one pass makes grad_z = grad_out * f'(z) from the saved y (none for
# the identity), then two gemms and a column sum.
#
# Memory: C-ordered x, W and grad_out are used as they are; anything else is copied
# to C order first. Outputs are new C-ordered arrays. In column-major (BLAS) terms a
# C-ordered (r, c) array is the (c, r) matrix, hence the trans flags below.

ACTIVATIONS = (None, "tanh", "sigmoid", "relu")


cdef inline int _activation_code(object activation) except -1:
    # identity first: the names below are interned, as are the callers' literals
    if activation is None:
        return 0
    if activation is "tanh":
        return 1
    if activation is "relu":
        return 3
    if activation is "sigmoid":
        return 2
    return _checks.activation_code(activation)


cdef inline bint _c_matrix_ok(object m, int typenum) noexcept:
    """m is a plain C-contiguous 2-D array of this type with 32-bit dimensions"""
    cdef cnp.ndarray a
    if _plain_type(m) != typenum:
        return False
    a = <cnp.ndarray> m
    return (cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and cnp.PyArray_DIM(a, 0) <= INT_MAX and cnp.PyArray_DIM(a, 1) <= INT_MAX)


cdef inline bint _vector_ok(object v, int typenum, Py_ssize_t length) noexcept:
    cdef cnp.ndarray a
    if _plain_type(v) != typenum:
        return False
    a = <cnp.ndarray> v
    return cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_DIM(a, 0) == length and cnp.PyArray_IS_C_CONTIGUOUS(a)


cdef inline bint _linear_ok(object x, object weight, object bias) noexcept:
    cdef int typenum = _plain_type(x)
    if typenum < 0 or not _c_matrix_ok(x, typenum) or not _c_matrix_ok(weight, typenum):
        return False
    if cnp.PyArray_DIM(<cnp.ndarray> weight, 1) != cnp.PyArray_DIM(<cnp.ndarray> x, 1):
        return False
    return bias is None or _vector_ok(bias, typenum, cnp.PyArray_DIM(<cnp.ndarray> weight, 0))


cdef inline bint _square(object weight) noexcept:
    return cnp.PyArray_DIM(<cnp.ndarray> weight, 0) == cnp.PyArray_DIM(<cnp.ndarray> weight, 1)


cdef tuple _linear_slow(object x, object weight, object bias, object activation):
    x, weight, bias = _checks.linear_args(x, weight, bias, activation)
    if max(x.shape[0], x.shape[1], weight.shape[0]) > INT_MAX:
        raise ValueError("linear_act: dimensions exceed the 32-bit BLAS limit")
    return (_contiguous(x, "C"), _contiguous(weight, "C"),
            None if bias is None else _contiguous(bias, "C"))


cdef inline void _add(int typenum, void *a, void *b, void *out, Py_ssize_t n) noexcept nogil:
    if typenum == NPY_FLOAT:
        tg_add_f(<float *> a, <float *> b, <float *> out, n)
    else:
        tg_add_d(<double *> a, <double *> b, <double *> out, n)


def linear_act_forward(x, weight, bias=None, activation=None, residual=False):
    """y = f(x @ weight^T + bias); x (N, D_in), weight (D_out, D_in), bias (D_out,) or None.
    residual=True (square weight): the pair (y, x + y)"""
    cdef int code = _activation_code(activation)
    cdef cnp.ndarray px, pw, y, s
    cdef cnp.npy_intp dims[2]
    cdef int n, d_in, d_out, typenum
    cdef void *pb = NULL
    cdef void *py
    if not _linear_ok(x, weight, bias):
        x, weight, bias = _linear_slow(x, weight, bias, activation)
    if residual is not False and (residual is not True or not _square(weight)):
        _checks.check_residual(weight, residual)   # raises unless a numpy bool of a square weight
        residual = bool(residual)
    px, pw = <cnp.ndarray> x, <cnp.ndarray> weight
    n, d_in, d_out = cnp.PyArray_DIM(px, 0), cnp.PyArray_DIM(px, 1), cnp.PyArray_DIM(pw, 0)
    typenum = cnp.PyArray_TYPE(px)
    dims[0], dims[1] = n, d_out
    if d_in > 0:
        y = <cnp.ndarray> cnp.PyArray_EMPTY(2, dims, typenum, 0)
    else:
        y = <cnp.ndarray> cnp.PyArray_ZEROS(2, dims, typenum, 0)
    if n == 0 or d_out == 0:
        return (y, _new_matrix(y, typenum, False)) if residual else y
    if bias is not None:
        pb = cnp.PyArray_DATA(<cnp.ndarray> bias)
    py = cnp.PyArray_DATA(y)
    with nogil:
        if d_in > 0:
            # y (C, N x D_out) is the column-major D_out x N matrix W x^T
            _gemm(typenum, b"T"[0], b"N"[0], d_out, n, d_in, cnp.PyArray_DATA(pw), d_in,
                  cnp.PyArray_DATA(px), d_in, py, d_out)
        if typenum == NPY_FLOAT:
            tg_bias_act_f(<float *> py, <const float *> pb, n, d_out, code)
        else:
            tg_bias_act_d(<double *> py, <const double *> pb, n, d_out, code)
    if not residual:
        return y
    s = _new_matrix(y, typenum, True)
    with nogil:
        _add(typenum, cnp.PyArray_DATA(px), py, cnp.PyArray_DATA(s), <Py_ssize_t> n * d_out)
    return y, s


cdef inline cnp.ndarray _new_matrix(cnp.ndarray like, int typenum, bint empty):
    """a new C-ordered array of like's shape: uninitialized if empty, else zeros"""
    if empty:
        return <cnp.ndarray> cnp.PyArray_EMPTY(2, cnp.PyArray_DIMS(like), typenum, 0)
    return <cnp.ndarray> cnp.PyArray_ZEROS(2, cnp.PyArray_DIMS(like), typenum, 0)


def linear_act_backward(grad_out, x, weight, y, activation=None, need_x=True, need_w=True, need_b=True,
                        residual=False):
    """grad_z = grad_out * f'(z) (from y); grad_x = grad_z @ weight, grad_w = grad_z^T @ x,
    grad_b = grad_z summed over rows; each None unless asked for (need_*).
    residual=True (square weight): grad_out is added to grad_x (the skip path)"""
    cdef int code = _activation_code(activation)
    cdef bint want_x = need_x, want_w = need_w, want_b = need_b, full
    cdef cnp.ndarray px, pw, pg, py, gz
    cdef cnp.ndarray gx = None, gw = None, gb = None
    cdef cnp.npy_intp dims[2]
    cdef int n, d_in, d_out, typenum
    cdef void *z
    typenum = _plain_type(x)
    if not (_linear_ok(x, weight, None) and _c_matrix_ok(grad_out, typenum) and _c_matrix_ok(y, typenum)
            and cnp.PyArray_DIM(<cnp.ndarray> grad_out, 0) == cnp.PyArray_DIM(<cnp.ndarray> x, 0)
            and cnp.PyArray_DIM(<cnp.ndarray> grad_out, 1) == cnp.PyArray_DIM(<cnp.ndarray> weight, 0)
            and _same_shape(<cnp.ndarray> grad_out, <cnp.ndarray> y)):
        grad_out, x, weight, y = _checks.linear_backward_args(grad_out, x, weight, y, activation)
        x, weight, _ = _linear_slow(x, weight, None, activation)
        grad_out, y = _contiguous(grad_out, "C"), _contiguous(y, "C")
    if residual is not False and (residual is not True or not _square(weight)):
        _checks.check_residual(weight, residual)
    cdef bint skip = residual   # the skip path's gradient goes into grad_x
    px, pw, pg, py = <cnp.ndarray> x, <cnp.ndarray> weight, <cnp.ndarray> grad_out, <cnp.ndarray> y
    n, d_in, d_out = cnp.PyArray_DIM(px, 0), cnp.PyArray_DIM(px, 1), cnp.PyArray_DIM(pw, 0)
    typenum = cnp.PyArray_TYPE(px)
    full = n > 0 and d_in > 0 and d_out > 0
    # outputs with a zero-sized product stay zero
    if want_x:
        gx = _new_matrix(px, typenum, full)
    if want_w:
        gw = _new_matrix(pw, typenum, full)
    if want_b:
        dims[0] = d_out
        gb = <cnp.ndarray> cnp.PyArray_EMPTY(1, dims, typenum, 0)
    if code == 0:
        gz = pg   # the identity: grad_z is grad_out itself, only read
    else:
        gz = <cnp.ndarray> cnp.PyArray_EMPTY(2, cnp.PyArray_DIMS(pg), typenum, 0)
    z = cnp.PyArray_DATA(gz)
    with nogil:
        if code != 0:
            if typenum == NPY_FLOAT:
                tg_act_grad_f(<float *> cnp.PyArray_DATA(pg), <float *> cnp.PyArray_DATA(py),
                              <float *> z, <Py_ssize_t> n * d_out, code)
            else:
                tg_act_grad_d(<double *> cnp.PyArray_DATA(pg), <double *> cnp.PyArray_DATA(py),
                              <double *> z, <Py_ssize_t> n * d_out, code)
        if want_x and full:
            # grad_x (C, N x D_in) is the column-major D_in x N matrix W^T grad_z^T
            _gemm(typenum, b"N"[0], b"N"[0], d_in, n, d_out, cnp.PyArray_DATA(pw), d_in, z, d_out,
                  cnp.PyArray_DATA(gx), d_in)
        if want_x and skip:
            _add(typenum, cnp.PyArray_DATA(gx), cnp.PyArray_DATA(pg), cnp.PyArray_DATA(gx), <Py_ssize_t> n * d_in)
        if want_w and full:
            # grad_W (C, D_out x D_in) is the column-major D_in x D_out matrix x^T grad_z
            _gemm(typenum, b"N"[0], b"T"[0], d_in, d_out, n, cnp.PyArray_DATA(px), d_in, z, d_out,
                  cnp.PyArray_DATA(gw), d_in)
        if want_b:
            if typenum == NPY_FLOAT:
                tg_column_sums_f(<float *> z, n, d_out, <float *> cnp.PyArray_DATA(gb))
            else:
                tg_column_sums_d(<double *> z, n, d_out, <double *> cnp.PyArray_DATA(gb))
    return gx, gw, gb
