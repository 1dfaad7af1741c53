# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled kernels of tinygrad_vg: fused activations, BLAS matmul, the fused linear
layer and the optimizer steps.

Design:
- Each kernel is a `def` wrapper (checks, layout, allocation; holds the GIL) around a
  plain C loop in csrc/_kernel_loops.h that runs on raw pointers, with the GIL
  released for large arrays. The wrappers are what tinygrad_vg.kernels exports and
  what the tests compare with the numpy twins.
- Two paths per wrapper. The fast path is the common case, tested with a few C-level
  flag reads (numpy's C API): exact ndarrays of native float32/float64, aligned,
  contiguous, of matching shapes; then one PyArray_EMPTY and the loop, no typed
  memoryviews and no Python-level attribute lookups. Everything else takes the slow
  path: tinygrad_vg/_kernel_args.py checks it (the same function the numpy twins
  call, so both raise the same errors with the same messages), strided, broadcast or
  unaligned arrays are copied, and the same loop runs.
- Elementwise kernels see every array as one flat contiguous run: a C- or
  F-contiguous array is used as it is (the output is allocated in the same order),
  anything else is copied to C order first. Two-input kernels bring the second input
  to the order of the first.
- Each loop is one pass with no temporaries. The arithmetic mirrors the numpy twins
  operation for operation and in the same order, so the backward kernels, relu and
  the optimizer steps equal numpy bit for bit; tanh and sigmoid differ from numpy
  only where libm's (or libmvec's) tanh/exp differ from numpy's. The build turns off
  FMA contraction; the loops convert every constant to the array's dtype first.
- matmul calls sgemm/dgemm from scipy.linalg.cython_blas (no link-time BLAS). BLAS
  is column-major: a C-ordered (r, c) buffer is the column-major (c, r) matrix,
  i.e. the transpose, so the transposes asked for and the memory orders of the
  operands become BLAS trans flags and nothing is copied.
"""
import numpy as np

cimport numpy as cnp
from libc.limits cimport INT_MAX
from libc.math cimport pow, sqrt
from scipy.linalg.cython_blas cimport dgemm, sgemm

from tinygrad_vg import _kernel_args as _args

cnp.import_array()

cdef extern from "_simd_math.h":
    # 1 when tanhf/tanh are declared `simd` so that gcc calls glibc's libmvec from
    # vectorized loops (see the header); 0: scalar libm
    int TG_VECTOR_MATH

cdef extern from "_kernel_loops.h" nogil:
    const char *tg_vector_isa()
    void tg_tanh_f(const float *x, float *y, Py_ssize_t n)
    void tg_tanh_d(const double *x, double *y, Py_ssize_t n)
    void tg_sigmoid_f(const float *x, float *y, Py_ssize_t n)
    void tg_sigmoid_d(const double *x, double *y, Py_ssize_t n)
    void tg_relu_f(const float *x, float *y, Py_ssize_t n)
    void tg_relu_d(const double *x, double *y, Py_ssize_t n)
    void tg_tanh_backward_f(const float *g, const float *y, float *gx, Py_ssize_t n)
    void tg_tanh_backward_d(const double *g, const double *y, double *gx, Py_ssize_t n)
    void tg_sigmoid_backward_f(const float *g, const float *y, float *gx, Py_ssize_t n)
    void tg_sigmoid_backward_d(const double *g, const double *y, double *gx, Py_ssize_t n)
    void tg_relu_backward_f(const float *g, const float *x, float *gx, Py_ssize_t n)
    void tg_relu_backward_d(const double *g, const double *x, double *gx, Py_ssize_t n)
    void tg_bias_act_f(float *y, const float *b, Py_ssize_t rows, Py_ssize_t cols, int code)
    void tg_bias_act_d(double *y, const double *b, Py_ssize_t rows, Py_ssize_t cols, int code)
    void tg_act_grad_f(const float *g, const float *y, float *gz, Py_ssize_t n, int code)
    void tg_act_grad_d(const double *g, const double *y, double *gz, Py_ssize_t n, int code)
    void tg_column_sums_f(const float *g, Py_ssize_t rows, Py_ssize_t cols, float *out)
    void tg_column_sums_d(const double *g, Py_ssize_t rows, Py_ssize_t cols, double *out)
    void tg_add_f(const float *a, const float *b, float *out, Py_ssize_t n)
    void tg_add_d(const double *a, const double *b, double *out, Py_ssize_t n)
    void tg_sgd_f(float *p, const float *grad, float *buf, Py_ssize_t n, float lr, float momentum,
                  float damp, float weight_decay, int use_decay, int use_momentum, int nesterov,
                  int first)
    void tg_sgd_d(double *p, const double *grad, double *buf, Py_ssize_t n, double lr, double momentum,
                  double damp, double weight_decay, int use_decay, int use_momentum, int nesterov,
                  int first)
    void tg_adam_f(float *p, const float *grad, float *m, float *v, Py_ssize_t n, float step_size,
                   float beta1, float c1, float beta2, float c2, float bias2, float eps,
                   float weight_decay, int use_decay)
    void tg_adam_d(double *p, const double *grad, double *m, double *v, Py_ssize_t n, double step_size,
                   double beta1, double c1, double beta2, double c2, double bias2, double eps,
                   double weight_decay, int use_decay)

VECTOR_MATH = bool(TG_VECTOR_MATH)
# the instruction set the loops were dispatched to on this CPU (avx512f, avx2, sse2)
VECTOR_ISA = tg_vector_isa().decode()

ctypedef void (*unary_f)(const float *, float *, Py_ssize_t) noexcept nogil
ctypedef void (*unary_d)(const double *, double *, Py_ssize_t) noexcept nogil
ctypedef void (*binary_f)(const float *, const float *, float *, Py_ssize_t) noexcept nogil
ctypedef void (*binary_d)(const double *, const double *, double *, Py_ssize_t) noexcept nogil

cdef enum:
    # Below this many elements a loop runs with the GIL held: releasing and taking it
    # back would cost more than the loop it frees.
    NOGIL_MIN = 16384

cdef int NPY_FLOAT = cnp.NPY_FLOAT
cdef int NPY_DOUBLE = cnp.NPY_DOUBLE


# ---------------------------------------------------------------- fast-path tests

cdef inline int _plain_type(object x) noexcept:
    """NPY_FLOAT or NPY_DOUBLE if x is an exact ndarray of that native dtype, aligned; else -1."""
    cdef cnp.ndarray a
    cdef int t
    if not cnp.PyArray_CheckExact(x):
        return -1
    a = <cnp.ndarray> x
    t = cnp.PyArray_TYPE(a)
    if t != NPY_FLOAT and t != NPY_DOUBLE:
        return -1
    if not cnp.PyArray_ISALIGNED(a) or not cnp.PyArray_ISNOTSWAPPED(a):
        return -1
    return t


cdef inline int _flat_order(cnp.ndarray a) noexcept:
    """0 if a is C-contiguous, 1 if F- (and not C-) contiguous, else -1."""
    if cnp.PyArray_IS_C_CONTIGUOUS(a):
        return 0
    if cnp.PyArray_IS_F_CONTIGUOUS(a):
        return 1
    return -1


cdef inline bint _in_order(cnp.ndarray a, int order) noexcept:
    return cnp.PyArray_IS_C_CONTIGUOUS(a) if order == 0 else cnp.PyArray_IS_F_CONTIGUOUS(a)


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef int i, nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_NDIM(b) != nd:
        return False
    for i in range(nd):
        if cnp.PyArray_DIM(a, i) != cnp.PyArray_DIM(b, i):
            return False
    return True


cdef inline cnp.ndarray _empty_like(cnp.ndarray a, int order):
    """A new array of a's shape and dtype, C- (order 0) or F-ordered (1)."""
    return <cnp.ndarray> cnp.PyArray_EMPTY(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a),
                                           cnp.PyArray_TYPE(a), order)


# ---------------------------------------------------------------- slow path: checks and copies

cdef object _contiguous(object m, str order):
    """m if it is contiguous in `order` ("C"/"F") and aligned, else an aligned copy in that order."""
    flags = m.flags
    if (flags.c_contiguous if order == "C" else flags.f_contiguous) and flags.aligned:
        return m
    return np.array(m, order=order)


cdef str _order_of(object m):
    """The flat order a kernel works in for m: "F" for an F- (not C-) contiguous m, else "C"."""
    flags = m.flags
    return "F" if flags.f_contiguous and not flags.c_contiguous else "C"


# ---------------------------------------------------------------- elementwise kernels

cdef object _unary(object x, str kernel, unary_f loop_f, unary_d loop_d):
    """out = f(x) elementwise: the loop over x's flat buffer, out in x's order."""
    cdef cnp.ndarray a, out
    cdef int order
    cdef Py_ssize_t n
    cdef void *src
    cdef void *dst
    if _plain_type(x) >= 0 and _flat_order(<cnp.ndarray> x) >= 0:
        a = <cnp.ndarray> x
        order = _flat_order(a)
        out = _empty_like(a, order)
    else:
        x = _args.as_float_array(x, kernel, "x")
        a = _contiguous(x, _order_of(x))
        out = np.empty_like(a)   # same order; keeps an ndarray subclass, as the twin does
    n = cnp.PyArray_SIZE(a)
    src, dst = cnp.PyArray_DATA(a), cnp.PyArray_DATA(out)
    if cnp.PyArray_TYPE(a) == NPY_FLOAT:
        if n >= NOGIL_MIN:
            with nogil:
                loop_f(<float *> src, <float *> dst, n)
        else:
            loop_f(<float *> src, <float *> dst, n)
    else:
        if n >= NOGIL_MIN:
            with nogil:
                loop_d(<double *> src, <double *> dst, n)
        else:
            loop_d(<double *> src, <double *> dst, n)
    return out


cdef object _binary(object a, object b, str kernel, str name_a, str name_b,
                    binary_f loop_f, binary_d loop_d):
    """out = f(a, b) elementwise (same shape and dtype): b in a's memory order, out too."""
    cdef cnp.ndarray pa, pb, out
    cdef int t = _plain_type(a), order = -1
    cdef Py_ssize_t n
    cdef void *src_a
    cdef void *src_b
    cdef void *dst
    if t >= 0 and _plain_type(b) == t:
        pa, pb = <cnp.ndarray> a, <cnp.ndarray> b
        order = _flat_order(pa)
        if order < 0 or not _in_order(pb, order) or not _same_shape(pa, pb):
            order = -1
    if order >= 0:
        out = _empty_like(pa, order)
    else:
        a, b = _args.pair(a, b, kernel, name_a, name_b)
        order_a = _order_of(a)
        pa = _contiguous(a, order_a)
        pb = _contiguous(b, order_a)
        out = np.empty_like(pa)
    n = cnp.PyArray_SIZE(pa)
    src_a, src_b, dst = cnp.PyArray_DATA(pa), cnp.PyArray_DATA(pb), cnp.PyArray_DATA(out)
    if cnp.PyArray_TYPE(pa) == NPY_FLOAT:
        if n >= NOGIL_MIN:
            with nogil:
                loop_f(<float *> src_a, <float *> src_b, <float *> dst, n)
        else:
            loop_f(<float *> src_a, <float *> src_b, <float *> dst, n)
    else:
        if n >= NOGIL_MIN:
            with nogil:
                loop_d(<double *> src_a, <double *> src_b, <double *> dst, n)
        else:
            loop_d(<double *> src_a, <double *> src_b, <double *> dst, n)
    return out


def tanh_forward(x):
    """y = tanh(x)"""
    return _unary(x, "tanh_forward", tg_tanh_f, tg_tanh_d)


def tanh_backward(grad_out, y):
    """grad_x = grad_out * (1 - y^2)"""
    return _binary(grad_out, y, "tanh_backward", "grad_out", "y", tg_tanh_backward_f, tg_tanh_backward_d)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|"""
    return _unary(x, "sigmoid_forward", tg_sigmoid_f, tg_sigmoid_d)


def sigmoid_backward(grad_out, y):
    """grad_x = grad_out * y * (1 - y)"""
    return _binary(grad_out, y, "sigmoid_backward", "grad_out", "y", tg_sigmoid_backward_f,
                   tg_sigmoid_backward_d)


def relu_forward(x):
    """y = max(x, 0)"""
    return _unary(x, "relu_forward", tg_relu_f, tg_relu_d)


def relu_backward(grad_out, x):
    """grad_x = grad_out * (x > 0)"""
    return _binary(grad_out, x, "relu_backward", "grad_out", "x", tg_relu_backward_f, tg_relu_backward_d)


# ---------------------------------------------------------------- BLAS

cdef void _gemm(int typenum, char trans_a, char trans_b, int m, int n, int k, void *a, int lda,
                void *b, int ldb, void *c, int ldc) noexcept nogil:
    """c = op(a) @ op(b) in column-major terms (c is m x n, op(a) m x k, op(b) k x n), beta = 0"""
    cdef float alpha_f = 1, beta_f = 0
    cdef double alpha_d = 1, beta_d = 0
    if typenum == NPY_FLOAT:
        sgemm(&trans_a, &trans_b, &m, &n, &k, &alpha_f, <float *> a, &lda, <float *> b, &ldb,
              &beta_f, <float *> c, &ldc)
    else:
        dgemm(&trans_a, &trans_b, &m, &n, &k, &alpha_d, <double *> a, &lda, <double *> b, &ldb,
              &beta_d, <double *> c, &ldc)


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
    a, b, out, m, k, n = _args.matmul_args(a, b, trans_a, trans_b, out)
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
    return _args.activation_code(activation)


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
    x, weight, bias = _args.linear_args(x, weight, bias, activation)
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
        _args.check_residual(weight, residual)   # raises unless a numpy bool of a square weight
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
        grad_out, x, weight, y = _args.linear_backward_args(grad_out, x, weight, y, activation)
        x, weight, _ = _linear_slow(x, weight, None, activation)
        grad_out, y = _contiguous(grad_out, "C"), _contiguous(y, "C")
    if residual is not False and (residual is not True or not _square(weight)):
        _args.check_residual(weight, residual)
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


# ---------------------------------------------------------------- optimizer steps
# One call updates every parameter of a list in place, in one pass each (see the loops
# in _kernel_loops.h for the equations). All arrays are checked before the first is
# touched, so a bad argument leaves every parameter as it was. A parameter, gradient
# or state array that is not contiguous and aligned is worked on through a contiguous
# copy that is written back.

cdef inline bint _state_ok(object s, cnp.ndarray p, int typenum, int order, bint writeable) noexcept:
    """s is a plain array of p's type and shape, contiguous in p's order (and writeable)"""
    cdef cnp.ndarray a
    if _plain_type(s) != typenum:
        return False
    a = <cnp.ndarray> s
    return (_in_order(a, order) and _same_shape(a, p)
            and (not writeable or cnp.PyArray_ISWRITEABLE(a)))


cdef inline bint _apart(object a, object b) noexcept:
    """contiguous arrays a and b occupy disjoint memory (by their byte ranges)"""
    cdef char *pa = <char *> cnp.PyArray_DATA(<cnp.ndarray> a)
    cdef char *pb = <char *> cnp.PyArray_DATA(<cnp.ndarray> b)
    return (pa + cnp.PyArray_NBYTES(<cnp.ndarray> a) <= pb or pb + cnp.PyArray_NBYTES(<cnp.ndarray> b) <= pa)


cdef inline bint _apart_or_same(object g, object p) noexcept:
    """g is p's memory exactly (same start; both contiguous of one shape and order) or apart from it"""
    return cnp.PyArray_DATA(<cnp.ndarray> g) == cnp.PyArray_DATA(<cnp.ndarray> p) or _apart(g, p)


cdef inline int _param_grad_order(object p, object g) noexcept:
    """p's flat order if p and its gradient g can take the fast path (see _param_order; g a
    plain array of p's type, shape and order, p itself or apart from it), else -1"""
    cdef int order = _param_order(p)
    if order < 0:
        return -1
    cdef cnp.ndarray a = <cnp.ndarray> p
    if not (_state_ok(g, a, cnp.PyArray_TYPE(a), order, False) and _apart_or_same(g, p)):
        return -1
    return order


cdef inline int _param_order(object p) noexcept:
    """p's flat order (0 C, 1 F) if p is a plain writeable contiguous array, else -1"""
    cdef cnp.ndarray a
    if _plain_type(p) < 0:
        return -1
    a = <cnp.ndarray> p
    if not cnp.PyArray_ISWRITEABLE(a):
        return -1
    return _flat_order(a)


cdef tuple _work_copies(list arrays):
    """Contiguous aligned stand-ins for arrays (the first is the parameter, None entries
    stay None), all in the parameter's order; the originals for the write-back."""
    order = _order_of(arrays[0])
    return tuple([None if a is None else _contiguous(a, order) for a in arrays])


cdef void _sgd_loop(int typenum, void *p, void *g, void *buf, Py_ssize_t n, double lr, double momentum,
                    double damp, double weight_decay, bint use_momentum, bint nesterov,
                    bint first) noexcept nogil:
    cdef bint use_decay = weight_decay != 0
    if typenum == NPY_FLOAT:
        tg_sgd_f(<float *> p, <float *> g, <float *> buf, n, <float> lr, <float> momentum, <float> damp,
                 <float> weight_decay, use_decay, use_momentum, nesterov, first)
    else:
        tg_sgd_d(<double *> p, <double *> g, <double *> buf, n, lr, momentum, damp, weight_decay,
                 use_decay, use_momentum, nesterov, first)


cdef void _sgd_one(cnp.ndarray p, cnp.ndarray g, cnp.ndarray buf, bint first, double lr,
                   double momentum, double damp, double weight_decay, bint use_momentum,
                   bint nesterov) noexcept:
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef int typenum = cnp.PyArray_TYPE(p)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *pg = cnp.PyArray_DATA(g)
    cdef void *pbuf = NULL if buf is None else cnp.PyArray_DATA(buf)
    if n >= NOGIL_MIN:
        with nogil:
            _sgd_loop(typenum, pp, pg, pbuf, n, lr, momentum, damp, weight_decay, use_momentum,
                      nesterov, first)
    else:
        _sgd_loop(typenum, pp, pg, pbuf, n, lr, momentum, damp, weight_decay, use_momentum, nesterov,
                  first)


def sgd_step(params, grads, momentum_buffers, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False):
    """SGD (torch.optim.SGD) in place over lists of parameters and their gradients:
    d = grad + weight_decay * p; buf = d (first step) or momentum * buf + (1 - dampening) * d;
    d = d + momentum * buf (nesterov) or buf; p -= lr * d. A None momentum buffer is a
    parameter's first step: the new buffer is stored in the list."""
    cdef double c_lr = lr, c_momentum = momentum, c_decay = weight_decay
    cdef double damp = 1.0 - <double> dampening   # (1 - dampening) in double, as the Python formula
    cdef bint use_momentum = c_momentum != 0, c_nesterov = nesterov, fast = True, first
    cdef Py_ssize_t i, count
    cdef int order, typenum
    cdef cnp.ndarray p, buf
    cdef list bufs = momentum_buffers if use_momentum and type(momentum_buffers) is list else None
    if type(params) is list and type(grads) is list and len(grads) == len(params) and (
            not use_momentum or (bufs is not None and len(bufs) == len(params))):
        for i in range(len(params)):
            order = _param_grad_order(params[i], grads[i])
            if order < 0:
                fast = False
                break
            p = <cnp.ndarray> params[i]
            typenum = cnp.PyArray_TYPE(p)
            if (use_momentum and bufs[i] is not None and not (
                        _state_ok(bufs[i], p, typenum, order, True) and _apart(bufs[i], p)
                        and _apart(bufs[i], grads[i]))):
                fast = False   # the slow path checks again, exactly, and raises what is wrong
                break
    else:
        fast = False
    if not fast:
        params, grads, bufs = _args.sgd_args(params, grads, momentum_buffers, momentum)
    count = len(params)
    for i in range(count):
        buf = None if not use_momentum else bufs[i]
        first = use_momentum and buf is None
        if fast:
            p = <cnp.ndarray> params[i]
            if first:
                buf = _empty_like(p, _flat_order(p))
                bufs[i] = buf
            _sgd_one(p, <cnp.ndarray> grads[i], buf, first, c_lr, c_momentum, damp, c_decay,
                     use_momentum, c_nesterov)
            continue
        work_p, work_g, work_buf = _work_copies([params[i], grads[i], buf])
        if first:
            work_buf = np.empty_like(work_p)
            bufs[i] = work_buf
        _sgd_one(work_p, work_g, work_buf, first, c_lr, c_momentum, damp, c_decay, use_momentum,
                 c_nesterov)
        if work_p is not params[i]:
            params[i][...] = work_p
        if not first and buf is not None and work_buf is not buf:
            buf[...] = work_buf


cdef void _adam_loop(int typenum, void *p, void *g, void *m, void *v, Py_ssize_t n, double step_size,
                     double beta1, double c1, double beta2, double c2, double bias2, double eps,
                     double weight_decay) noexcept nogil:
    cdef bint use_decay = weight_decay != 0
    if typenum == NPY_FLOAT:
        tg_adam_f(<float *> p, <float *> g, <float *> m, <float *> v, n, <float> step_size, <float> beta1,
                  <float> c1, <float> beta2, <float> c2, <float> bias2, <float> eps, <float> weight_decay,
                  use_decay)
    else:
        tg_adam_d(<double *> p, <double *> g, <double *> m, <double *> v, n, step_size, beta1, c1, beta2,
                  c2, bias2, eps, weight_decay, use_decay)


cdef void _adam_one(cnp.ndarray p, cnp.ndarray g, cnp.ndarray m, cnp.ndarray v, long long t, double lr,
                    double beta1, double beta2, double eps, double weight_decay) noexcept:
    # the scalars as the Python formulas compute them, in double (pow is what Python's ** calls)
    cdef double step_size = lr / (1.0 - pow(beta1, <double> t))
    cdef double bias2 = sqrt(1.0 - pow(beta2, <double> t))
    cdef double c1 = 1.0 - beta1, c2 = 1.0 - beta2
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef int typenum = cnp.PyArray_TYPE(p)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *pg = cnp.PyArray_DATA(g)
    cdef void *pm = cnp.PyArray_DATA(m)
    cdef void *pv = cnp.PyArray_DATA(v)
    if n >= NOGIL_MIN:
        with nogil:
            _adam_loop(typenum, pp, pg, pm, pv, n, step_size, beta1, c1, beta2, c2, bias2, eps,
                       weight_decay)
    else:
        _adam_loop(typenum, pp, pg, pm, pv, n, step_size, beta1, c1, beta2, c2, bias2, eps, weight_decay)


cdef object MAX_STEP = _args.MAX_STEP


def adam_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay=0.0):
    """Adam (torch.optim.Adam, L2 weight decay) in place over lists of parameters, gradients
    and moments; steps[i] is parameter i's step count t including this step:
    d = grad + weight_decay * p; m = beta1 m + (1 - beta1) d; v = beta2 v + (1 - beta2) d^2;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""
    cdef double c_lr = lr, c_beta1 = beta1, c_beta2 = beta2, c_eps = eps, c_decay = weight_decay
    cdef bint fast = True
    cdef Py_ssize_t i, count
    cdef int order, typenum
    cdef cnp.ndarray p
    if (type(params) is list and type(grads) is list and type(exp_avgs) is list
            and type(exp_avg_sqs) is list and type(steps) is list and len(grads) == len(params)
            and len(exp_avgs) == len(params) and len(exp_avg_sqs) == len(params)
            and len(steps) == len(params)):
        for i in range(len(params)):
            order = _param_grad_order(params[i], grads[i])
            if order < 0:
                fast = False
                break
            p = <cnp.ndarray> params[i]
            typenum = cnp.PyArray_TYPE(p)
            t = steps[i]
            if (not _state_ok(exp_avgs[i], p, typenum, order, True)
                    or not _state_ok(exp_avg_sqs[i], p, typenum, order, True)
                    or not (_apart(exp_avgs[i], p) and _apart(exp_avgs[i], grads[i])
                            and _apart(exp_avg_sqs[i], p) and _apart(exp_avg_sqs[i], grads[i])
                            and _apart(exp_avgs[i], exp_avg_sqs[i]))
                    or type(t) is not int or t < 1 or t > MAX_STEP):
                fast = False
                break
    else:
        fast = False
    if not fast:
        params, grads, exp_avgs, exp_avg_sqs, steps = _args.adam_args(
            params, grads, exp_avgs, exp_avg_sqs, steps)
    count = len(params)
    for i in range(count):
        if fast:
            _adam_one(<cnp.ndarray> params[i], <cnp.ndarray> grads[i], <cnp.ndarray> exp_avgs[i],
                      <cnp.ndarray> exp_avg_sqs[i], steps[i], c_lr, c_beta1, c_beta2, c_eps, c_decay)
            continue
        arrays = [params[i], grads[i], exp_avgs[i], exp_avg_sqs[i]]
        work = _work_copies(arrays)
        _adam_one(work[0], work[1], work[2], work[3], steps[i], c_lr, c_beta1, c_beta2, c_eps, c_decay)
        for k in (0, 2, 3):
            if work[k] is not arrays[k]:
                arrays[k][...] = work[k]


# ---------------------------------------------------------------- memory locking (locking.py)
# The flag flips and lock counts of tinygrad_vg/locking.py, whose Python code is the twin.
# They run once per recorded node and once per release, so their cost is per-op overhead:
# numpy's flags.writeable setter costs about a microsecond, the C flag flip nanoseconds.
# Atomic under the GIL: nothing here calls back into Python code that could switch threads.

def lock_arrays(arrays, who, dict held):
    """Make each array, and each array it is a view of, read-only, counting the locks in
    `held` (id -> entry [array, count, who, views waiting for it]); arrays read-only already
    and not in `held` are left alone. Returns the entries this call counted, bases first."""
    cdef list chain = [], locked = []
    cdef Py_ssize_t i
    cdef cnp.ndarray arr
    cdef cnp.PyObject *base
    cdef object entry, key
    for a in arrays:
        if not cnp.PyArray_Check(a):
            continue
        arr = <cnp.ndarray> a
        while True:   # the array, then what it is a view of (LockedArray views too)
            chain.append(arr)
            base = <cnp.PyObject *> cnp.PyArray_BASE(arr)
            if base == NULL or not cnp.PyArray_Check(<object> base):
                break
            arr = <cnp.ndarray> base
    for i in range(len(chain) - 1, -1, -1):
        arr = <cnp.ndarray> chain[i]
        key = <Py_ssize_t> <void *> arr
        entry = held.get(key)
        if entry is not None:
            (<list> entry)[1] += 1
        elif cnp.PyArray_ISWRITEABLE(arr):
            cnp.PyArray_CLEARFLAGS(arr, cnp.NPY_ARRAY_WRITEABLE)
            entry = [arr, 1, who, None]
            held[key] = entry
        else:
            continue
        locked.append(entry)
    return locked


def release_arrays(list entries, dict held):
    """Undo lock_arrays (given what it returned): count each lock down; at zero the array is
    writeable again, or, if an array it is a view of is still locked, once that one is
    released (numpy makes a view writeable only while what it views is)."""
    cdef list entry
    for e in entries:
        entry = <list> e
        entry[1] -= 1
        if not entry[1]:
            del held[<Py_ssize_t> <void *> entry[0]]
            _reopen(entry[0], entry[3], held)


cdef void _reopen(object a, object waiting, dict held) except *:
    """a writeable again, then the views that waited for it; or a waits for a locked base."""
    cdef object base = a.base
    cdef object entry
    while cnp.PyArray_Check(base):
        entry = held.get(<Py_ssize_t> <void *> base)
        if entry is not None:
            if entry[3] is None:
                entry[3] = []
            entry[3].append(a)
            return
        if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> base):
            return   # read-only, and not by us: a stays read-only too
        base = base.base
    cnp.PyArray_ENABLEFLAGS(<cnp.ndarray> a, cnp.NPY_ARRAY_WRITEABLE)
    if waiting is not None:
        for view in waiting:
            _reopen(view, None, held)
