"""The one BLAS layer of the compiled kernels: gemm over float32/float64, inline.

BLAS comes from scipy.linalg.cython_blas (function pointers into the BLAS scipy links,
OpenBLAS in its wheels): nothing is linked at build time. As in scikit-learn's
sklearn/utils/_cython_blas.pxd, one fused type covers both precisions and each routine
has one wrapper; the kernels call these, never sgemm/dgemm themselves.

BLAS is column-major. A C-ordered (r, c) buffer is the column-major (c, r) matrix, its
transpose: row_major_gemm uses that to compute a row-major product without copying.
"""
from scipy.linalg.cython_blas cimport dgemm, sgemm

ctypedef fused floating:
    float
    double


cdef inline void gemm(char trans_a, char trans_b, int m, int n, int k, floating alpha,
                      const floating *a, int lda, const floating *b, int ldb, floating beta,
                      floating *c, int ldc) noexcept nogil:
    """c = alpha op(a) op(b) + beta c in BLAS's own (column-major) terms: c is m x n, op(a)
    m x k, op(b) k x n, op(x) = x^T for trans_x = 'T', x for 'N'."""
    if floating is float:
        sgemm(&trans_a, &trans_b, &m, &n, &k, &alpha, <float *> a, &lda, <float *> b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&trans_a, &trans_b, &m, &n, &k, &alpha, <double *> a, &lda, <double *> b, &ldb, &beta, c, &ldc)


cdef inline void row_major_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                const floating *a, Py_ssize_t lda, const floating *b, Py_ssize_t ldb,
                                floating beta, floating *c, Py_ssize_t ldc) noexcept nogil:
    """c (m x n) = beta c + op(a) op(b), row-major with row strides ld*: BLAS computes
    c^T = op(b)^T op(a)^T, with the same trans flags."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef floating one = 1
    gemm(tb, ta, <int> n, <int> m, <int> k, one, b, <int> ldb, a, <int> lda, beta, c, <int> ldc)
