/* The loops of the convolution and pooling kernels (csrc/conv.pyx): im2col and col2im for
 * one image, the bias pass, and the 2-D max and average pools, forward and backward.
 *
 * Shapes, one image: x (C, H, W), C-ordered; cols (C * KH * KW, OH * OW), C-ordered, row
 * (c * KH + i) * KW + j holding x_p[c, oh * s_h + i * d_h - p_h, ow * s_w + j * d_w - p_w]
 * (0 in the padding). Pools work on NC = N * C planes of H x W.
 *
 * Each loop adds in the order its numpy twin (tinygrad_vg/kernels/reference/conv.py) does:
 * col2im and the pool backwards add the window offsets (i, j) in order, then the output
 * positions, so the pools are bit for bit equal to the twin (the convolutions differ only
 * by their BLAS). One plain C loop per kernel and dtype (suffix _f: float, _d: double);
 * runtime dispatch and the portable spellings: _dispatch.h.
 */
#ifndef TG_CONV_LOOPS_H
#define TG_CONV_LOOPS_H

#include <stdint.h>
#include <string.h>
#include "_dispatch.h"

/* The output columns ow in [lo, hi) whose input column ow * s + off lies in 0 .. W - 1. */
static inline void tg_valid_range(ptrdiff_t off, ptrdiff_t s, ptrdiff_t w, ptrdiff_t ow,
                                  ptrdiff_t *lo, ptrdiff_t *hi) {
    ptrdiff_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    ptrdiff_t b = (w - 1 - off) < 0 ? 0 : (w - 1 - off) / s + 1;
    if (a > ow) a = ow;
    if (b > ow) b = ow;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

#define TG_DEFINE_CONV_LOOPS(T, S)                                                             \
/* cols = im2col(x) for one image (layout above), rows ld apart (ld >= OH OW: several       \
   images' columns side by side) */                                                            \
TG_CLONES static void tg_im2col_##S(const T *TG_RESTRICT x, ptrdiff_t c, ptrdiff_t h,           \
        ptrdiff_t w, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph,       \
        ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t oh, ptrdiff_t ow,                   \
        T *TG_RESTRICT cols, ptrdiff_t ld) {                                                   \
    for (ptrdiff_t ch = 0; ch < c; ch++) {                                                     \
        const T *plane = x + ch * h * w;                                                       \
        for (ptrdiff_t i = 0; i < kh; i++) {                                                   \
            for (ptrdiff_t j = 0; j < kw; j++) {                                               \
                T *row = cols + ((ch * kh + i) * kw + j) * ld;                                 \
                ptrdiff_t off = j * dw - pw, lo, hi;                                           \
                tg_valid_range(off, sw, w, ow, &lo, &hi);                                      \
                for (ptrdiff_t r = 0; r < oh; r++) {                                           \
                    T *out = row + r * ow;                                                     \
                    ptrdiff_t ih = r * sh - ph + i * dh;                                       \
                    if (ih < 0 || ih >= h) {                                                   \
                        for (ptrdiff_t q = 0; q < ow; q++) out[q] = 0;                         \
                        continue;                                                              \
                    }                                                                          \
                    const T *src = plane + ih * w + off;                                       \
                    for (ptrdiff_t q = 0; q < lo; q++) out[q] = 0;                             \
                    if (sw == 1) {                                                             \
                        if (hi > lo) memcpy(out + lo, src + lo, (size_t)(hi - lo) * sizeof(T));\
                    } else {                                                                   \
                        for (ptrdiff_t q = lo; q < hi; q++) out[q] = src[q * sw];              \
                    }                                                                          \
                    for (ptrdiff_t q = hi; q < ow; q++) out[q] = 0;                            \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* x += col2im(cols) for one image: each column entry added back where im2col read it;        \
   rows ld apart */                                                                            \
TG_CLONES static void tg_col2im_##S(const T *TG_RESTRICT cols, ptrdiff_t c, ptrdiff_t h,        \
        ptrdiff_t w, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph,       \
        ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t oh, ptrdiff_t ow,                   \
        T *TG_RESTRICT x, ptrdiff_t ld) {                                                      \
    for (ptrdiff_t ch = 0; ch < c; ch++) {                                                     \
        T *plane = x + ch * h * w;                                                             \
        for (ptrdiff_t i = 0; i < kh; i++) {                                                   \
            for (ptrdiff_t j = 0; j < kw; j++) {                                               \
                const T *row = cols + ((ch * kh + i) * kw + j) * ld;                           \
                ptrdiff_t off = j * dw - pw, lo, hi;                                           \
                tg_valid_range(off, sw, w, ow, &lo, &hi);                                      \
                for (ptrdiff_t r = 0; r < oh; r++) {                                           \
                    ptrdiff_t ih = r * sh - ph + i * dh;                                       \
                    if (ih < 0 || ih >= h) continue;                                           \
                    const T *in = row + r * ow;                                                \
                    T *dst = plane + ih * w + off;                                             \
                    if (sw == 1) {                                                             \
                        for (ptrdiff_t q = lo; q < hi; q++) dst[q] = dst[q] + in[q];           \
                    } else {                                                                   \
                        for (ptrdiff_t q = lo; q < hi; q++) dst[q * sw] = dst[q * sw] + in[q]; \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* Between B images' (OC, L) blocks and one (OC, B L) matrix, images side by side:            \
   to_wide: wide[o, b L + q] = img[b][o, q]; else the reverse. img is B consecutive blocks. */ \
static void tg_interleave_##S(T *TG_RESTRICT img, T *TG_RESTRICT wide, ptrdiff_t b,           \
                              ptrdiff_t oc, ptrdiff_t l, int to_wide) {                        \
    for (ptrdiff_t k = 0; k < b; k++)                                                          \
        for (ptrdiff_t o = 0; o < oc; o++) {                                                   \
            T *a = img + (k * oc + o) * l, *w = wide + o * b * l + k * l;                      \
            if (to_wide) memcpy(w, a, (size_t)l * sizeof(T));                                  \
            else memcpy(a, w, (size_t)l * sizeof(T));                                          \
        }                                                                                      \
}                                                                                              \
                                                                                               \
/* y[o, l] += b[o] for one image's (OC, L) output */                                           \
TG_CLONES static void tg_bias_add_##S(T *TG_RESTRICT y, const T *TG_RESTRICT b, ptrdiff_t oc,   \
                                      ptrdiff_t l) {                                           \
    for (ptrdiff_t o = 0; o < oc; o++) {                                                       \
        T v = b[o];                                                                            \
        T *row = y + o * l;                                                                    \
        for (ptrdiff_t q = 0; q < l; q++) row[q] = row[q] + v;                                 \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* y = max over each window, idx = h * W + w of its first maximum (the first NaN if any) */    \
static void tg_max_pool_##S(const T *TG_RESTRICT x, ptrdiff_t nc, ptrdiff_t h, ptrdiff_t w,     \
        ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw,      \
        ptrdiff_t oh, ptrdiff_t ow, T *TG_RESTRICT y, int64_t *TG_RESTRICT idx) {               \
    for (ptrdiff_t p = 0; p < nc; p++) {                                                       \
        const T *plane = x + p * h * w;                                                        \
        for (ptrdiff_t r = 0; r < oh; r++) {                                                   \
            for (ptrdiff_t q = 0; q < ow; q++) {                                               \
                T best = 0;                                                                    \
                ptrdiff_t where = -1;                                                          \
                for (ptrdiff_t i = 0; i < kh; i++) {                                           \
                    ptrdiff_t ih = r * sh - ph + i;                                            \
                    if (ih < 0 || ih >= h) continue;                                           \
                    for (ptrdiff_t j = 0; j < kw; j++) {                                       \
                        ptrdiff_t iw = q * sw - pw + j;                                        \
                        if (iw < 0 || iw >= w) continue;                                       \
                        T v = plane[ih * w + iw];                                              \
                        if (where < 0 || v > best || (v != v && best == best)) {               \
                            best = v;                                                          \
                            where = ih * w + iw;                                               \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
                y[(p * oh + r) * ow + q] = best;                                               \
                idx[(p * oh + r) * ow + q] = where;                                            \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* grad_x (zeroed by the caller) [p, idx] += grad_out[p, l], outputs in order */               \
static void tg_max_pool_backward_##S(const T *TG_RESTRICT g, const int64_t *TG_RESTRICT idx,    \
        ptrdiff_t nc, ptrdiff_t hw, ptrdiff_t l, T *TG_RESTRICT gx) {                           \
    for (ptrdiff_t p = 0; p < nc; p++) {                                                       \
        T *plane = gx + p * hw;                                                                \
        for (ptrdiff_t q = 0; q < l; q++) plane[idx[p * l + q]] += g[p * l + q];               \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* y = (window sum, offsets i, j in order, padding 0) / (KH KW) */                             \
static void tg_avg_pool_##S(const T *TG_RESTRICT x, ptrdiff_t nc, ptrdiff_t h, ptrdiff_t w,     \
        ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw,      \
        ptrdiff_t oh, ptrdiff_t ow, T *TG_RESTRICT y) {                                         \
    const T area = (T)(kh * kw);                                                               \
    for (ptrdiff_t p = 0; p < nc; p++) {                                                       \
        const T *plane = x + p * h * w;                                                        \
        for (ptrdiff_t r = 0; r < oh; r++) {                                                   \
            for (ptrdiff_t q = 0; q < ow; q++) {                                               \
                T acc = 0;                                                                     \
                for (ptrdiff_t i = 0; i < kh; i++) {                                           \
                    ptrdiff_t ih = r * sh - ph + i;                                            \
                    if (ih < 0 || ih >= h) continue;                                           \
                    for (ptrdiff_t j = 0; j < kw; j++) {                                       \
                        ptrdiff_t iw = q * sw - pw + j;                                        \
                        if (iw >= 0 && iw < w) acc = acc + plane[ih * w + iw];                 \
                    }                                                                          \
                }                                                                              \
                y[(p * oh + r) * ow + q] = acc / area;                                         \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* grad_x (zeroed by the caller) += grad_out / (KH KW) over each window, offsets outermost */  \
static void tg_avg_pool_backward_##S(const T *TG_RESTRICT g, ptrdiff_t nc, ptrdiff_t h,         \
        ptrdiff_t w, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph,       \
        ptrdiff_t pw, ptrdiff_t oh, ptrdiff_t ow, T *TG_RESTRICT gx) {                          \
    const T area = (T)(kh * kw);                                                               \
    for (ptrdiff_t p = 0; p < nc; p++) {                                                       \
        T *plane = gx + p * h * w;                                                             \
        const T *gp = g + p * oh * ow;                                                         \
        for (ptrdiff_t i = 0; i < kh; i++) {                                                   \
            for (ptrdiff_t j = 0; j < kw; j++) {                                               \
                for (ptrdiff_t r = 0; r < oh; r++) {                                           \
                    ptrdiff_t ih = r * sh - ph + i;                                            \
                    if (ih < 0 || ih >= h) continue;                                           \
                    for (ptrdiff_t q = 0; q < ow; q++) {                                       \
                        ptrdiff_t iw = q * sw - pw + j;                                        \
                        if (iw >= 0 && iw < w)                                                 \
                            plane[ih * w + iw] = plane[ih * w + iw] + gp[r * ow + q] / area;   \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}

TG_DEFINE_CONV_LOOPS(float, f)
TG_DEFINE_CONV_LOOPS(double, d)

#endif /* TG_CONV_LOOPS_H */
