"""Array tests and layouts shared by the compiled kernels (csrc/*.pyx), inline.

The fast path of every compiled kernel is the common case, tested with a few C-level flag
reads (numpy's C API): exact ndarrays of native float32/float64, aligned, contiguous, of
matching shapes. Everything else takes the slow path: tinygrad_vg/kernels/_checks.py checks
it (the same functions the numpy twins call, so both raise the same errors with the same
messages), and strided, broadcast or unaligned arrays are copied.
"""
import numpy as np

cimport numpy as cnp

cdef enum:
    # Below this many elements a loop runs with the GIL held: releasing and taking it
    # back would cost more than the loop it frees.
    NOGIL_MIN = 16384


# ---------------------------------------------------------------- fast-path tests

cdef inline int _plain_type(object x) noexcept:
    """cnp.NPY_FLOAT or cnp.NPY_DOUBLE if x is an exact ndarray of that native dtype, aligned; else -1."""
    cdef cnp.ndarray a
    cdef int t
    if not cnp.PyArray_CheckExact(x):
        return -1
    a = <cnp.ndarray> x
    t = cnp.PyArray_TYPE(a)
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
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

cdef inline object _contiguous(object m, str order):
    """m if it is contiguous in `order` ("C"/"F") and aligned, else an aligned copy in that order."""
    flags = m.flags
    if (flags.c_contiguous if order == "C" else flags.f_contiguous) and flags.aligned:
        return m
    return np.array(m, order=order)


cdef inline str _order_of(object m):
    """The flat order a kernel works in for m: "F" for an F- (not C-) contiguous m, else "C"."""
    flags = m.flags
    return "F" if flags.f_contiguous and not flags.c_contiguous else "C"
