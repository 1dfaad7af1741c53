/* The loops of the elementwise kernels (csrc/elementwise.pyx): activations forward and
 * backward, on raw pointers.
 *
 * Each loop does the same IEEE operations, in the same order, as its numpy twin in
 * tinygrad_vg/kernels/reference/, so that everything but tanh/sigmoid forward is bit for
 * bit equal to it (setup.py turns FMA contraction off; constants are converted to T
 * first, as numpy converts a Python float to the array's dtype). One plain C loop per
 * kernel and dtype (suffix _f: float, _d: double), written so that gcc vectorizes it:
 * no branch per element (a select instead), no calls but the libmvec-vectorizable
 * tanhf/tanh. Runtime dispatch and the portable spellings: _dispatch.h.
 * `restrict` on out-of-place loops: the outputs are always fresh arrays.
 */
#ifndef TG_ELEMENTWISE_LOOPS_H
#define TG_ELEMENTWISE_LOOPS_H

#include "_dispatch.h"
#include "_simd_math.h"

#define TG_BLOCK 256   /* elements per block of the two-pass sigmoid (a 1-2 KB stack buffer) */

/* T: the C type; S: the suffix; TANH/EXP/FABS: libm's functions for T. */
#define TG_DEFINE_ELEMENTWISE_LOOPS(T, S, TANH, EXP, FABS)                                    \
                                                                                              \
/* y = tanh(x) */                                                                             \
TG_CLONES static void tg_tanh_##S(const T *TG_RESTRICT x, T *TG_RESTRICT y, ptrdiff_t n) {   \
    for (ptrdiff_t i = 0; i < n; i++) y[i] = TANH(x[i]);                                      \
}                                                                                             \
TG_CLONES static void tg_tanh_inplace_##S(T *y, ptrdiff_t n) {                               \
    for (ptrdiff_t i = 0; i < n; i++) y[i] = TANH(y[i]);                                      \
}                                                                                             \
                                                                                              \
/* z = exp(-|x|); y = 1/(1+z) if x >= 0 else z/(1+z): never overflows; NaN -> NaN.        \
   In blocks of TG_BLOCK: first the scalar exp calls (libmvec's expf is 5 ulp off numpy's),  \
   then a branch-free pass that picks the numerator and divides. Written as one loop, gcc   \
   turns the pick into a branch, which the random sign of x mispredicts half the time. */   \
TG_ALWAYS_INLINE void tg_sigmoid_block_##S(const T *x, T *y, ptrdiff_t n) {                   \
    const T zero = 0, one = 1;                                                                \
    T z[TG_BLOCK];                                                                            \
    for (ptrdiff_t i = 0; i < n; i++) z[i] = EXP(-FABS(x[i]));                                \
    for (ptrdiff_t i = 0; i < n; i++) {                                                       \
        T num = x[i] >= zero ? one : z[i];                                                    \
        y[i] = num / (one + z[i]);                                                            \
    }                                                                                         \
}                                                                                             \
TG_CLONES static void tg_sigmoid_##S(const T *TG_RESTRICT x, T *TG_RESTRICT y, ptrdiff_t n) { \
    for (ptrdiff_t i = 0; i < n; i += TG_BLOCK)                                               \
        tg_sigmoid_block_##S(x + i, y + i, n - i < TG_BLOCK ? n - i : TG_BLOCK);              \
}                                                                                             \
TG_CLONES static void tg_sigmoid_inplace_##S(T *y, ptrdiff_t n) {                            \
    for (ptrdiff_t i = 0; i < n; i += TG_BLOCK)                                               \
        tg_sigmoid_block_##S(y + i, y + i, n - i < TG_BLOCK ? n - i : TG_BLOCK);              \
}                                                                                             \
                                                                                              \
/* y = max(x, 0); NaN stays NaN */                                                            \
TG_CLONES static void tg_relu_##S(const T *TG_RESTRICT x, T *TG_RESTRICT y, ptrdiff_t n) {   \
    const T zero = 0;                                                                         \
    for (ptrdiff_t i = 0; i < n; i++) y[i] = x[i] <= zero ? zero : x[i];                      \
}                                                                                             \
TG_CLONES static void tg_relu_inplace_##S(T *y, ptrdiff_t n) {                               \
    const T zero = 0;                                                                         \
    for (ptrdiff_t i = 0; i < n; i++) y[i] = y[i] <= zero ? zero : y[i];                      \
}                                                                                             \
                                                                                              \
/* grad_x = grad_out * (1 - y*y) */                                                           \
TG_CLONES static void tg_tanh_backward_##S(const T *TG_RESTRICT g, const T *TG_RESTRICT y,    \
                                           T *TG_RESTRICT gx, ptrdiff_t n) {                  \
    const T one = 1;                                                                          \
    for (ptrdiff_t i = 0; i < n; i++) gx[i] = g[i] * (one - y[i] * y[i]);                     \
}                                                                                             \
                                                                                              \
/* grad_x = grad_out * (y * (1 - y)) */                                                       \
TG_CLONES static void tg_sigmoid_backward_##S(const T *TG_RESTRICT g, const T *TG_RESTRICT y, \
                                              T *TG_RESTRICT gx, ptrdiff_t n) {               \
    const T one = 1;                                                                          \
    for (ptrdiff_t i = 0; i < n; i++) gx[i] = g[i] * (y[i] * (one - y[i]));                   \
}                                                                                             \
                                                                                              \
/* grad_x = grad_out * (x > 0 ? 1 : 0)   (a product, as the twin: NaN and inf propagate;     \
   the 0/1 factor in its own variable: written inside the product, gcc vectorizes the        \
   loop only at AVX-512, where it has mask registers) */                                      \
TG_CLONES static void tg_relu_backward_##S(const T *TG_RESTRICT g, const T *TG_RESTRICT x,    \
                                           T *TG_RESTRICT gx, ptrdiff_t n) {                  \
    const T zero = 0, one = 1;                                                                \
    for (ptrdiff_t i = 0; i < n; i++) {                                                       \
        T step = x[i] > zero ? one : zero;                                                    \
        gx[i] = g[i] * step;                                                                  \
    }                                                                                         \
}

TG_DEFINE_ELEMENTWISE_LOOPS(float, f, tanhf, expf, fabsf)
TG_DEFINE_ELEMENTWISE_LOOPS(double, d, tanh, exp, fabs)

#endif /* TG_ELEMENTWISE_LOOPS_H */
