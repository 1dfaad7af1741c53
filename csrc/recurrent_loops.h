/* The per-step passes of the whole-sequence recurrent kernels (csrc/recurrent.pyx), on
 * raw pointers. H hidden units, N rows (the batch); a row of gates holds G*H values.
 *
 * Design:
 * - Plain C so that every pointer can be `restrict`: written in Cython, a pass that reads
 *   five arrays and writes three needs more runtime alias checks than gcc will emit, and
 *   stays scalar. The arrays passed here never overlap (csrc/recurrent.pyx allocates
 *   them; kernels/recurrent.py refuses an `out` that overlaps an input); a pass that
 *   updates an array in place takes it once and reads each element before writing it.
 * - No branch per element, and no calls but tanhf/tanh, which gcc vectorizes through
 *   libmvec (see _simd_math.h). sigmoid(v) = 0.5 tanh(v / 2) + 0.5 is one such call.
 * - Runtime dispatch as in _dispatch.h: each pass is compiled for baseline x86-64,
 *   AVX2 and AVX-512F (target_clones), and the loader picks the widest this CPU has. The
 *   arithmetic is the same in every clone (no FMA: -ffp-contract=off); only libmvec's
 *   tanh differs, by an ulp or so, between widths.
 * - Constants are converted to T first (float math stays float).
 */
#ifndef TG_RECURRENT_LOOPS_H
#define TG_RECURRENT_LOOPS_H

#include "_dispatch.h"
#include "_simd_math.h"


/* T: the C type; S: the suffix (f float, d double); TANH: libm's tanh for T. */
#define TG_DEFINE_RECURRENT_LOOPS(T, S, TANH)                                                  \
                                                                                               \
/* LSTM, one step. a (N, 4H): pre-activations in, gates i, f, g, o out (in place);            \
   c = f c_prev + i g;  tanh_c = tanh(c);  h = o tanh_c */                                     \
TG_CLONES static void tg_lstm_cell_##S(                                                    \
        ptrdiff_t n, ptrdiff_t hid, T *TG_RESTRICT a, const T *TG_RESTRICT c_prev,     \
        T *TG_RESTRICT c, T *TG_RESTRICT tanh_c, T *TG_RESTRICT h) {               \
    const T half = 0.5;                                                                        \
    for (ptrdiff_t row = 0; row < n; row++) {                                                  \
        T *p = a + row * 4 * hid;                                                              \
        for (ptrdiff_t j = 0; j < 2 * hid; j++) p[j] = half * TANH(half * p[j]) + half;        \
        for (ptrdiff_t j = 2 * hid; j < 3 * hid; j++) p[j] = TANH(p[j]);                       \
        for (ptrdiff_t j = 3 * hid; j < 4 * hid; j++) p[j] = half * TANH(half * p[j]) + half;  \
        const T *i = p, *f = p + hid, *g = p + 2 * hid, *o = p + 3 * hid;                      \
        const T *cp = c_prev + row * hid;                                                      \
        T *cr = c + row * hid, *tr = tanh_c + row * hid, *hr = h + row * hid;                  \
        for (ptrdiff_t j = 0; j < hid; j++) {                                                  \
            T v = f[j] * cp[j] + i[j] * g[j];                                                  \
            T t = TANH(v);                                                                     \
            cr[j] = v;                                                                         \
            tr[j] = t;                                                                         \
            hr[j] = o[j] * t;                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* LSTM, one step back. grad_h = dL/dh_t; grad_c: dL/dc_t in, dL/dc_{t-1} out; d (N, 4H):      \
   gc = grad_c + grad_h o (1 - tanh_c^2);                                                      \
   d = [gc g i(1-i), gc c_prev f(1-f), gc i (1-g^2), grad_h tanh_c o(1-o)];  grad_c = gc f */  \
TG_CLONES static void tg_lstm_cell_backward_##S(                                           \
        ptrdiff_t n, ptrdiff_t hid, const T *TG_RESTRICT gates,                            \
        const T *TG_RESTRICT c_prev, const T *TG_RESTRICT tanh_c,                      \
        const T *TG_RESTRICT grad_h, T *TG_RESTRICT grad_c, T *TG_RESTRICT d) {    \
    const T one = 1;                                                                           \
    for (ptrdiff_t row = 0; row < n; row++) {                                                  \
        const T *i = gates + row * 4 * hid, *f = i + hid, *g = i + 2 * hid, *o = i + 3 * hid;  \
        const T *cp = c_prev + row * hid, *tc = tanh_c + row * hid, *gh = grad_h + row * hid;  \
        T *gcr = grad_c + row * hid;                                                           \
        T *di = d + row * 4 * hid, *df = di + hid, *dg = di + 2 * hid, *dout = di + 3 * hid;   \
        for (ptrdiff_t j = 0; j < hid; j++) {                                                  \
            T t = tc[j];                                                                       \
            T gc = gcr[j] + gh[j] * o[j] * (one - t * t);                                      \
            di[j] = gc * g[j] * (i[j] * (one - i[j]));                                         \
            df[j] = gc * cp[j] * (f[j] * (one - f[j]));                                        \
            dg[j] = gc * i[j] * (one - g[j] * g[j]);                                           \
            dout[j] = gh[j] * t * (o[j] * (one - o[j]));                                       \
            gcr[j] = gc * f[j];                                                                \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* GRU, one step. a (N, 3H): input projection in, gates r, z, n out (in place);               \
   rec (N, 3H) = h_prev W_hh^T;  r, z = sigmoid(a_rz + rec_rz);  hn = rec_n + b_hn;            \
   n = tanh(a_n + r hn);  h = n + z (h_prev - n) */                                            \
TG_CLONES static void tg_gru_cell_##S(                                                     \
        ptrdiff_t n, ptrdiff_t hid, T *TG_RESTRICT a, const T *TG_RESTRICT rec,        \
        const T *TG_RESTRICT b_hn, const T *TG_RESTRICT h_prev,                        \
        T *TG_RESTRICT hn, T *TG_RESTRICT h) {                                         \
    const T half = 0.5;                                                                        \
    for (ptrdiff_t row = 0; row < n; row++) {                                                  \
        T *p = a + row * 3 * hid;                                                              \
        const T *q = rec + row * 3 * hid;                                                      \
        for (ptrdiff_t j = 0; j < 2 * hid; j++) p[j] = half * TANH(half * (p[j] + q[j])) + half; \
        const T *r = p, *z = p + hid, *qn = q + 2 * hid, *hp = h_prev + row * hid;             \
        T *nr = p + 2 * hid, *hnr = hn + row * hid, *hr = h + row * hid;                       \
        for (ptrdiff_t j = 0; j < hid; j++) {                                                  \
            T v = qn[j] + b_hn[j];                                                             \
            T nn = TANH(nr[j] + r[j] * v);                                                     \
            hnr[j] = v;                                                                        \
            nr[j] = nn;                                                                        \
            hr[j] = nn + z[j] * (hp[j] - nn);                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* GRU, one step back. grad_h = dL/dh_t; out: d_x (N, 3H) for the input projection, d_h for    \
   h W_hh^T + b_hh, grad_h_prev = grad_h z (the direct part of dL/dh_{t-1}):                   \
   a_n = grad_h (1 - z)(1 - n^2);  a_z = grad_h (h_prev - n) z(1-z);  a_r = a_n hn r(1-r);      \
   d_x = [a_r, a_z, a_n];  d_h = [a_r, a_z, a_n r] */                                          \
TG_CLONES static void tg_gru_cell_backward_##S(                                            \
        ptrdiff_t n, ptrdiff_t hid, const T *TG_RESTRICT gates,                            \
        const T *TG_RESTRICT hn, const T *TG_RESTRICT h_prev,                          \
        const T *TG_RESTRICT grad_h, T *TG_RESTRICT d_x, T *TG_RESTRICT d_h,       \
        T *TG_RESTRICT grad_h_prev) {                                                      \
    const T one = 1;                                                                           \
    for (ptrdiff_t row = 0; row < n; row++) {                                                  \
        const T *r = gates + row * 3 * hid, *z = r + hid, *nv = r + 2 * hid;                   \
        const T *hnr = hn + row * hid, *hp = h_prev + row * hid, *g = grad_h + row * hid;      \
        T *xr = d_x + row * 3 * hid, *xz = xr + hid, *xn = xr + 2 * hid;                       \
        T *hr = d_h + row * 3 * hid, *hz = hr + hid, *hnn = hr + 2 * hid;                      \
        T *gp = grad_h_prev + row * hid;                                                       \
        for (ptrdiff_t j = 0; j < hid; j++) {                                                  \
            T a_n = g[j] * (one - z[j]) * (one - nv[j] * nv[j]);                               \
            T a_z = g[j] * (hp[j] - nv[j]) * (z[j] * (one - z[j]));                            \
            T a_r = a_n * hnr[j] * (r[j] * (one - r[j]));                                      \
            xr[j] = a_r;                                                                       \
            xz[j] = a_z;                                                                       \
            xn[j] = a_n;                                                                       \
            hr[j] = a_r;                                                                       \
            hz[j] = a_z;                                                                       \
            hnn[j] = a_n * r[j];                                                               \
            gp[j] = g[j] * z[j];                                                               \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* Elman RNN, one step: a = tanh(a) or relu(a) = (a <= 0 ? 0 : a) in place (NaN stays NaN) */ \
TG_CLONES static void tg_rnn_cell_##S(ptrdiff_t size, T *a, int relu) {                   \
    const T zero = 0;                                                                          \
    if (relu) {                                                                                \
        for (ptrdiff_t i = 0; i < size; i++) a[i] = a[i] <= zero ? zero : a[i];                \
    } else {                                                                                   \
        for (ptrdiff_t i = 0; i < size; i++) a[i] = TANH(a[i]);                                \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* Elman RNN, one step back: d = grad_h f'(pre) from h = f(pre): tanh 1 - h^2, relu h > 0 */   \
TG_CLONES static void tg_rnn_cell_backward_##S(                                            \
        ptrdiff_t size, const T *TG_RESTRICT h, const T *TG_RESTRICT grad_h,           \
        T *TG_RESTRICT d, int relu) {                                                      \
    const T zero = 0, one = 1;                                                                 \
    if (relu) {                                                                                \
        for (ptrdiff_t i = 0; i < size; i++) d[i] = grad_h[i] * (h[i] > zero ? one : zero);    \
    } else {                                                                                   \
        for (ptrdiff_t i = 0; i < size; i++) d[i] = grad_h[i] * (one - h[i] * h[i]);           \
    }                                                                                          \
}

TG_DEFINE_RECURRENT_LOOPS(float, f, tanhf)
TG_DEFINE_RECURRENT_LOOPS(double, d, tanh)

#endif /* TG_RECURRENT_LOOPS_H */
