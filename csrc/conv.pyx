# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The convolution and pooling kernels, compiled: conv1d/conv2d as im2col + BLAS gemm,
max_pool2d and avg_pool2d (twin: tinygrad_vg/kernels/reference/conv.py, same names,
signatures, results, errors).

Design: a convolution does milliseconds of work per call, so unlike the per-layer
families there is no C-level fast-path test: every call runs kernels/_checks.py's conv
section (the twin's own checks, so both raise the same errors; some 10 us), then copies
anything not C-contiguous and aligned. Per image, im2col (csrc/conv_loops.h) writes the
(C KH KW, OH OW) column matrix into one reused buffer, the columns of B images side by
side (B: CHUNK_ELEMENTS below), and one gemm per group (csrc/_blas.pxd's row_major_gemm)
makes their outputs; a 1x1 kernel with stride 1 and no padding needs no columns (the image
is its own column matrix). Backward
recomputes the columns instead of keeping them (they are KH KW times the input):
grad_W accumulates grad_y[n] cols[n]^T over the images (beta = 1 after the first),
grad_cols = W^T grad_y[n] goes back through col2im. The GIL is released around the loops.
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t
from _arrays cimport _contiguous
from _blas cimport floating, row_major_gemm

from tinygrad_vg.kernels import _checks

cnp.import_array()

cdef extern from "conv_loops.h" nogil:
    void tg_im2col_f(const float *x, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t oh, Py_ssize_t ow, float *cols, Py_ssize_t ld)
    void tg_im2col_d(const double *x, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t oh, Py_ssize_t ow, double *cols, Py_ssize_t ld)
    void tg_col2im_f(const float *cols, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t oh, Py_ssize_t ow, float *x, Py_ssize_t ld)
    void tg_col2im_d(const double *cols, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t oh, Py_ssize_t ow, double *x, Py_ssize_t ld)
    void tg_interleave_f(float *img, float *wide, Py_ssize_t b, Py_ssize_t oc, Py_ssize_t l, int to_wide)
    void tg_interleave_d(double *img, double *wide, Py_ssize_t b, Py_ssize_t oc, Py_ssize_t l, int to_wide)
    void tg_bias_add_f(float *y, const float *b, Py_ssize_t oc, Py_ssize_t l)
    void tg_bias_add_d(double *y, const double *b, Py_ssize_t oc, Py_ssize_t l)
    void tg_max_pool_f(const float *x, Py_ssize_t nc, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                       Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t oh, Py_ssize_t ow,
                       float *y, int64_t *idx)
    void tg_max_pool_d(const double *x, Py_ssize_t nc, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                       Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t oh, Py_ssize_t ow,
                       double *y, int64_t *idx)
    void tg_max_pool_backward_f(const float *g, const int64_t *idx, Py_ssize_t nc, Py_ssize_t hw, Py_ssize_t l,
                                float *gx)
    void tg_max_pool_backward_d(const double *g, const int64_t *idx, Py_ssize_t nc, Py_ssize_t hw, Py_ssize_t l,
                                double *gx)
    void tg_avg_pool_f(const float *x, Py_ssize_t nc, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                       Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t oh, Py_ssize_t ow,
                       float *y)
    void tg_avg_pool_d(const double *x, Py_ssize_t nc, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                       Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t oh, Py_ssize_t ow,
                       double *y)
    void tg_avg_pool_backward_f(const float *g, Py_ssize_t nc, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh,
                                Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                                Py_ssize_t oh, Py_ssize_t ow, float *gx)
    void tg_avg_pool_backward_d(const double *g, Py_ssize_t nc, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh,
                                Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                                Py_ssize_t oh, Py_ssize_t ow, double *gx)


# ---------------------------------------------------------------- sizes of one convolution

# Images per gemm: as many as keep the column matrix (C KH KW, B OH OW) under this many
# elements (2 MiB of float32), at least one. Small feature maps (a CIFAR net's 8 x 8 stage)
# then make one wide gemm instead of many thin ones; big ones stay one image at a time.
CHUNK_ELEMENTS = 1 << 19


cdef struct Geometry:
    Py_ssize_t n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, groups
    Py_ssize_t ohw, k, k_group, oc_group   # OH OW, K = C KH KW, K / G, OC / G
    Py_ssize_t chunk                       # images per gemm (B)
    bint direct                            # 1x1, stride 1, no padding: the image is its column matrix


cdef Geometry _geometry(tuple xs, tuple ws, tuple params, tuple out):
    cdef Geometry g
    stride, padding, dilation, groups = params
    g.n, g.c, g.h, g.w = xs
    g.oc, _, g.kh, g.kw = ws
    g.sh, g.sw = stride
    g.ph, g.pw = padding
    g.dh, g.dw = dilation
    g.oh, g.ow = out
    g.groups = groups
    g.ohw = g.oh * g.ow
    g.k = g.c * g.kh * g.kw
    g.k_group = g.k // g.groups
    g.oc_group = g.oc // g.groups
    g.direct = g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.ph == 0 and g.pw == 0
    g.chunk = 1 if g.direct else max(1, min(g.n, CHUNK_ELEMENTS // max(1, g.k * g.ohw)))
    return g


cdef inline void _im2col(const floating *x, Geometry *g, floating *cols, Py_ssize_t ld) noexcept nogil:
    if floating is float:
        tg_im2col_f(x, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow, cols, ld)
    else:
        tg_im2col_d(x, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow, cols, ld)


cdef inline void _col2im(const floating *cols, Geometry *g, floating *x, Py_ssize_t ld) noexcept nogil:
    if floating is float:
        tg_col2im_f(cols, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow, x, ld)
    else:
        tg_col2im_d(cols, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.oh, g.ow, x, ld)


cdef inline void _interleave(floating *img, floating *wide, Py_ssize_t b, Geometry *g, int to_wide) noexcept nogil:
    if floating is float:
        tg_interleave_f(img, wide, b, g.oc, g.ohw, to_wide)
    else:
        tg_interleave_d(img, wide, b, g.oc, g.ohw, to_wide)


cdef inline const floating *_columns(const floating *x, Geometry *g, floating *cols, Py_ssize_t n0,
                                     Py_ssize_t b) noexcept nogil:
    """The column matrix (K, b OH OW) of images n0 .. n0 + b - 1 (the image itself when direct)"""
    cdef Py_ssize_t i
    if g.direct:
        return x + n0 * g.c * g.h * g.w
    for i in range(b):
        _im2col(x + (n0 + i) * g.c * g.h * g.w, g, cols + i * g.ohw, b * g.ohw)
    return cols


cdef void _forward(const floating *x, const floating *w, const floating *b, floating *cols, floating *wide,
                   floating *y, Geometry *g) noexcept nogil:
    """y[images, group] (OC/G, B L) = W[group] (OC/G, K/G) @ cols[images, group] (K/G, B L) (+ b), B images
    at a time; with B > 1 the gemm writes `wide` and the images' blocks are copied out of it"""
    cdef Py_ssize_t n0, grp, i, chunk, ld
    cdef const floating *src
    cdef floating *out
    n0 = 0
    while n0 < g.n:
        chunk = min(g.chunk, g.n - n0)
        ld = chunk * g.ohw
        src = _columns(x, g, cols, n0, chunk)
        out = y + n0 * g.oc * g.ohw if chunk == 1 else wide
        for grp in range(g.groups):
            row_major_gemm(False, False, g.oc_group, ld, g.k_group, w + grp * g.oc_group * g.k_group, g.k_group,
                           src + grp * g.k_group * ld, ld, <floating> 0, out + grp * g.oc_group * ld, ld)
        if chunk > 1:
            _interleave(y + n0 * g.oc * g.ohw, wide, chunk, g, 0)
        if b != NULL:
            for i in range(n0, n0 + chunk):
                if floating is float:
                    tg_bias_add_f(y + i * g.oc * g.ohw, b, g.oc, g.ohw)
                else:
                    tg_bias_add_d(y + i * g.oc * g.ohw, b, g.oc, g.ohw)
        n0 += chunk


cdef void _backward(const floating *go, const floating *x, const floating *w, floating *cols, floating *gcols,
                    floating *wide, floating *gx, floating *gw, Geometry *g) noexcept nogil:
    """grad_W += grad_y[images] cols[images]^T; grad_x[images] = col2im(W^T grad_y[images]), B images at a
    time (grad_y's blocks copied side by side into `wide` when B > 1); gx, gw NULL when not asked for"""
    cdef Py_ssize_t n0, grp, i, chunk, ld
    cdef const floating *src
    cdef const floating *gsrc
    n0 = 0
    while n0 < g.n:
        chunk = min(g.chunk, g.n - n0)
        ld = chunk * g.ohw
        if chunk == 1:
            gsrc = go + n0 * g.oc * g.ohw
        else:
            _interleave(<floating *> go + n0 * g.oc * g.ohw, wide, chunk, g, 1)
            gsrc = wide
        if gw != NULL:
            src = _columns(x, g, cols, n0, chunk)
            for grp in range(g.groups):
                row_major_gemm(False, True, g.oc_group, g.k_group, ld, gsrc + grp * g.oc_group * ld, ld,
                               src + grp * g.k_group * ld, ld, <floating> (0 if n0 == 0 else 1),
                               gw + grp * g.oc_group * g.k_group, g.k_group)
        if gx != NULL:
            for grp in range(g.groups):
                # direct: the columns are grad_x[n] itself, written at once
                row_major_gemm(True, False, g.k_group, ld, g.oc_group, w + grp * g.oc_group * g.k_group,
                               g.k_group, gsrc + grp * g.oc_group * ld, ld, <floating> 0,
                               (gx + n0 * g.c * g.h * g.w if g.direct else gcols) + grp * g.k_group * ld, ld)
            if not g.direct:
                for i in range(chunk):
                    _col2im(gcols + i * g.ohw, g, gx + (n0 + i) * g.c * g.h * g.w, ld)
        n0 += chunk


cdef inline void *_data(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray> a)


cdef object _conv_forward(x, weight, bias, tuple params, tuple out):
    """the 4-D forward on checked arrays"""
    x, weight = _contiguous(x, "C"), _contiguous(weight, "C")
    if bias is not None:
        bias = _contiguous(bias, "C")
    cdef Geometry g = _geometry(x.shape, weight.shape, params, out)
    y = np.empty((g.n, g.oc, g.oh, g.ow), dtype=x.dtype)
    cols = None if g.direct else np.empty((g.k, g.chunk * g.ohw), dtype=x.dtype)
    wide = np.empty((g.oc, g.chunk * g.ohw), dtype=x.dtype) if g.chunk > 1 else None
    cdef void *px = _data(x)
    cdef void *pw = _data(weight)
    cdef void *pb = _data(bias)
    cdef void *pc = _data(cols)
    cdef void *pwide = _data(wide)
    cdef void *py = _data(y)
    if x.dtype == np.float32:
        with nogil:
            _forward(<float *> px, <float *> pw, <float *> pb, <float *> pc, <float *> pwide, <float *> py, &g)
    else:
        with nogil:
            _forward(<double *> px, <double *> pw, <double *> pb, <double *> pc, <double *> pwide, <double *> py, &g)
    return y


cdef tuple _conv_backward(grad_out, x, weight, tuple params, tuple out, bint need_x, bint need_w, bint need_b):
    grad_out, x, weight = _contiguous(grad_out, "C"), _contiguous(x, "C"), _contiguous(weight, "C")
    cdef Geometry g = _geometry(x.shape, weight.shape, params, out)
    grad_x = np.zeros(x.shape, dtype=x.dtype) if need_x else None
    grad_w = (np.empty if g.n else np.zeros)(weight.shape, dtype=x.dtype) if need_w else None
    grad_b = grad_out.sum(axis=(0, 2, 3)) if need_b else None   # as the twin: numpy's sum
    cols = np.empty((g.k, g.chunk * g.ohw), dtype=x.dtype) if need_w and not g.direct else None
    gcols = np.empty((g.k, g.chunk * g.ohw), dtype=x.dtype) if need_x and not g.direct else None
    wide = np.empty((g.oc, g.chunk * g.ohw), dtype=x.dtype) if g.chunk > 1 and (need_x or need_w) else None
    cdef void *pg = _data(grad_out)
    cdef void *px = _data(x)
    cdef void *pw = _data(weight)
    cdef void *pc = _data(cols)
    cdef void *pgc = _data(gcols)
    cdef void *pwide = _data(wide)
    cdef void *pgx = _data(grad_x)
    cdef void *pgw = _data(grad_w)
    if not need_x and not need_w:
        return grad_x, grad_w, grad_b
    if x.dtype == np.float32:
        with nogil:
            _backward(<float *> pg, <float *> px, <float *> pw, <float *> pc, <float *> pgc, <float *> pwide,
                      <float *> pgx, <float *> pgw, &g)
    else:
        with nogil:
            _backward(<double *> pg, <double *> px, <double *> pw, <double *> pc, <double *> pgc, <double *> pwide,
                      <double *> pgx, <double *> pgw, &g)
    return grad_x, grad_w, grad_b


# ---------------------------------------------------------------- the kernels

def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o] = sum_{c, i, j} W[o, c, i, j] x_p[n, g(o) C/G + c, oh s_h + i d_h, ow s_w + j d_w] + b[o];
    x (N, C, H, W), weight (OC, C/G, KH, KW), bias (OC,) or None. A new C-ordered (N, OC, OH, OW) array."""
    x, weight, bias, params, out = _checks.conv_args("conv2d", x, weight, bias, stride, padding, dilation, groups)
    return _conv_forward(x, weight, bias, params, out)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, need_x=True, need_w=True,
                    need_b=True):
    """(grad_x, grad_weight, grad_bias) of conv2d_forward for the upstream grad_out
    (N, OC, OH, OW); each None unless asked for (need_*)."""
    grad_out, x, weight, params, out = _checks.conv_backward_args("conv2d", grad_out, x, weight, stride, padding,
                                                                  dilation, groups)
    return _conv_backward(grad_out, x, weight, params, out, need_x, need_w, need_b)


cdef tuple _params_2d(tuple params):
    stride, padding, dilation, groups = params
    return ((1,) + stride, (0,) + padding, (1,) + dilation, groups)


def conv1d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o, t] = sum_{c, k} W[o, c, k] x_p[n, g(o) C/G + c, t s + k d] + b[o]; x (N, C, L),
    weight (OC, C/G, K), bias (OC,) or None: conv2d over (N, C, 1, L). A new (N, OC, OL) array."""
    x, weight, bias, params, out = _checks.conv_args("conv1d", x, weight, bias, stride, padding, dilation, groups,
                                                     ndim=1)
    y = _conv_forward(x[:, :, None, :], weight[:, :, None, :], bias, _params_2d(params), (1,) + out)
    return y[:, :, 0, :]


def conv1d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, need_x=True, need_w=True,
                    need_b=True):
    """(grad_x, grad_weight, grad_bias) of conv1d_forward; each None unless asked for."""
    grad_out, x, weight, params, out = _checks.conv_backward_args("conv1d", grad_out, x, weight, stride, padding,
                                                                  dilation, groups, ndim=1)
    gx, gw, gb = _conv_backward(grad_out[:, :, None, :], x[:, :, None, :], weight[:, :, None, :],
                                _params_2d(params), (1,) + out, need_x, need_w, need_b)
    return (None if gx is None else gx[:, :, 0, :], None if gw is None else gw[:, :, 0, :], gb)


def max_pool2d_forward(x, kernel_size, stride, padding=0):
    """(y, indices): y[n, c, oh, ow] = max over the window of x_p (padding -inf), indices the
    flat position h * W + w in x[n, c] of the window's first maximum (int64). New C-ordered arrays."""
    x, (size, stride, padding), out = _checks.pool_args("max_pool2d", x, kernel_size, stride, padding)
    x = _contiguous(x, "C")
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t kh = size[0], kw = size[1], sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t oh = out[0], ow = out[1]
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    indices = np.empty((n, c, oh, ow), dtype=np.int64)
    cdef void *px = _data(x)
    cdef void *py = _data(y)
    cdef int64_t *pi = <int64_t *> _data(indices)
    if x.dtype == np.float32:
        with nogil:
            tg_max_pool_f(<float *> px, n * c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, <float *> py, pi)
    else:
        with nogil:
            tg_max_pool_d(<double *> px, n * c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, <double *> py, pi)
    return y, indices


def max_pool2d_backward(grad_out, indices, input_shape, kernel_size, stride, padding=0):
    """grad_x[n, c, indices[n, c, oh, ow]] += grad_out[n, c, oh, ow], outputs in row-major order."""
    grad_out, input_shape, _ = _checks.pool_backward_args("max_pool2d", grad_out, input_shape, kernel_size, stride,
                                                          padding, indices)
    grad_out, indices = _contiguous(grad_out, "C"), _contiguous(indices, "C")
    grad_x = np.zeros(input_shape, dtype=grad_out.dtype)
    cdef Py_ssize_t nc = input_shape[0] * input_shape[1], hw = input_shape[2] * input_shape[3]
    cdef Py_ssize_t outputs = grad_out.shape[2] * grad_out.shape[3]
    cdef void *pg = _data(grad_out)
    cdef void *pgx = _data(grad_x)
    cdef int64_t *pi = <int64_t *> _data(indices)
    if grad_out.dtype == np.float32:
        with nogil:
            tg_max_pool_backward_f(<float *> pg, pi, nc, hw, outputs, <float *> pgx)
    else:
        with nogil:
            tg_max_pool_backward_d(<double *> pg, pi, nc, hw, outputs, <double *> pgx)
    return grad_x


def avg_pool2d_forward(x, kernel_size, stride, padding=0):
    """y[n, c, oh, ow] = (sum over the window of x_p, padding 0, summed in the order i, j) / (KH KW)."""
    x, (size, stride, padding), out = _checks.pool_args("avg_pool2d", x, kernel_size, stride, padding)
    x = _contiguous(x, "C")
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t kh = size[0], kw = size[1], sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t oh = out[0], ow = out[1]
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    cdef void *px = _data(x)
    cdef void *py = _data(y)
    if x.dtype == np.float32:
        with nogil:
            tg_avg_pool_f(<float *> px, n * c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, <float *> py)
    else:
        with nogil:
            tg_avg_pool_d(<double *> px, n * c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, <double *> py)
    return y


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride, padding=0):
    """grad_x = each grad_out / (KH KW) added to every input position of its window (order i, j)."""
    grad_out, input_shape, (size, stride, padding) = _checks.pool_backward_args(
        "avg_pool2d", grad_out, input_shape, kernel_size, stride, padding)
    grad_out = _contiguous(grad_out, "C")
    grad_x = np.zeros(input_shape, dtype=grad_out.dtype)
    cdef Py_ssize_t nc = input_shape[0] * input_shape[1], h = input_shape[2], w = input_shape[3]
    cdef Py_ssize_t kh = size[0], kw = size[1], sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t oh = grad_out.shape[2], ow = grad_out.shape[3]
    cdef void *pg = _data(grad_out)
    cdef void *pgx = _data(grad_x)
    if grad_out.dtype == np.float32:
        with nogil:
            tg_avg_pool_backward_f(<float *> pg, nc, h, w, kh, kw, sh, sw, ph, pw, oh, ow, <float *> pgx)
    else:
        with nogil:
            tg_avg_pool_backward_d(<double *> pg, nc, h, w, kh, kw, sh, sw, ph, pw, oh, ow, <double *> pgx)
    return grad_x
