/* The loops of the fused linear layer (csrc/linear.pyx): bias + activation in place,
 * the activation's gradient, sums over rows. The activations are elementwise_loops.h's.
 *
 * Each loop does the same IEEE operations, in the same order, as its numpy twin in
 * tinygrad_vg/kernels/reference/, so that everything but tanh/sigmoid forward is bit for
 * bit equal to it (setup.py turns FMA contraction off; constants are converted to T
 * first, as numpy converts a Python float to the array's dtype). One plain C loop per
 * kernel and dtype (suffix _f: float, _d: double), written so that gcc vectorizes it:
 * no branch per element (a select instead), no calls but the libmvec-vectorizable
 * tanhf/tanh. Runtime dispatch and the portable spellings: _dispatch.h.
 * In-place loops take one pointer per array and read each element before writing it.
 */
#ifndef TG_LINEAR_LOOPS_H
#define TG_LINEAR_LOOPS_H

#include "elementwise_loops.h"

#define TG_DEFINE_LINEAR_LOOPS(T, S)                                                          \
/* y[i, j] = f(y[i, j] + b[j]) in place, y C-ordered (rows x cols), b NULL for no bias.       \
   Two passes, not one with the activation per row: the activation then runs over the        \
   whole flat array, so a narrow layer (20 columns) still fills 16-wide vectors. */           \
TG_CLONES static void tg_bias_act_##S(T *y, const T *b, ptrdiff_t rows, ptrdiff_t cols,      \
                                      int code) {                                             \
    if (b != NULL) {                                                                          \
        for (ptrdiff_t i = 0; i < rows; i++) {                                                \
            T *row = y + i * cols;                                                            \
            for (ptrdiff_t j = 0; j < cols; j++) row[j] = row[j] + b[j];                      \
        }                                                                                     \
    }                                                                                         \
    if (code == 1) tg_tanh_inplace_##S(y, rows * cols);                                       \
    else if (code == 2) tg_sigmoid_inplace_##S(y, rows * cols);                               \
    else if (code == 3) tg_relu_inplace_##S(y, rows * cols);                                  \
}                                                                                             \
                                                                                              \
/* grad_z = grad_out * f'(z), from the output y (code 1 tanh, 2 sigmoid, 3 relu) */          \
static void tg_act_grad_##S(const T *g, const T *y, T *gz, ptrdiff_t n, int code) {           \
    if (code == 1) tg_tanh_backward_##S(g, y, gz, n);                                         \
    else if (code == 2) tg_sigmoid_backward_##S(g, y, gz, n);                                 \
    else if (code == 3) tg_relu_backward_##S(g, y, gz, n);                                    \
}                                                                                             \
                                                                                              \
/* out = a + b elementwise; out may be a (then a += b in place) but not b */                  \
TG_CLONES static void tg_add_##S(const T *a, const T *TG_RESTRICT b, T *out, ptrdiff_t n) {   \
    for (ptrdiff_t i = 0; i < n; i++) out[i] = a[i] + b[i];                                   \
}                                                                                             \
                                                                                              \
/* out[j] = sum over rows i of g[i, j], rows added in order (as numpy's sum(axis=0)) */       \
TG_CLONES static void tg_column_sums_##S(const T *TG_RESTRICT g, ptrdiff_t rows,              \
                                         ptrdiff_t cols, T *TG_RESTRICT out) {                \
    for (ptrdiff_t j = 0; j < cols; j++) out[j] = 0;                                          \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                    \
        const T *row = g + i * cols;                                                          \
        for (ptrdiff_t j = 0; j < cols; j++) out[j] = out[j] + row[j];                        \
    }                                                                                         \
}

TG_DEFINE_LINEAR_LOOPS(float, f)
TG_DEFINE_LINEAR_LOOPS(double, d)

#endif /* TG_LINEAR_LOOPS_H */
