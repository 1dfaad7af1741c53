# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The elementwise kernels, compiled: activations forward and backward (twin:
tinygrad_vg/kernels/reference/elementwise.py, same names, signatures, results, errors).

Each kernel is a `def` wrapper around a plain C loop of csrc/elementwise_loops.h that runs
on raw pointers, with the GIL released for large arrays. Two paths per wrapper: the fast
path (csrc/_arrays.pxd's flag tests, one PyArray_EMPTY, the loop) and the slow path
(tinygrad_vg/kernels/_checks.py, copies, the same loop). Arrays are seen as one flat
contiguous run: a C- or F-contiguous array is used as it is (the output is allocated in
the same order), anything else is copied to C order first; two-input kernels bring the
second input to the order of the first. The loops mirror the numpy twins operation for
operation, so the backward kernels and relu equal numpy bit for bit; tanh and sigmoid
differ only where libm's (or libmvec's) tanh/exp differ from numpy's.
"""
import numpy as np

cimport numpy as cnp
from _arrays cimport (NOGIL_MIN, _contiguous, _empty_like, _flat_order, _in_order, _order_of,
                      _plain_type, _same_shape)

from tinygrad_vg.kernels import _checks

cnp.import_array()

cdef extern from "_simd_math.h":
    # 1 when tanhf/tanh are declared `simd` so that gcc calls glibc's libmvec from
    # vectorized loops (see the header); 0: scalar libm
    int TG_VECTOR_MATH

cdef extern from "elementwise_loops.h" nogil:
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

VECTOR_MATH = bool(TG_VECTOR_MATH)
# the instruction set the loops were dispatched to on this CPU (avx512f, avx2, sse2)
VECTOR_ISA = tg_vector_isa().decode()

ctypedef void (*unary_f)(const float *, float *, Py_ssize_t) noexcept nogil
ctypedef void (*unary_d)(const double *, double *, Py_ssize_t) noexcept nogil
ctypedef void (*binary_f)(const float *, const float *, float *, Py_ssize_t) noexcept nogil
ctypedef void (*binary_d)(const double *, const double *, double *, Py_ssize_t) noexcept nogil

cdef int NPY_FLOAT = cnp.NPY_FLOAT


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
        x = _checks.as_float_array(x, kernel, "x")
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
        a, b = _checks.pair(a, b, kernel, name_a, name_b)
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
