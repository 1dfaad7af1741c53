/* The loops of the compiled kernels (csrc/_kernels.pyx), on raw pointers.
 *
 * Design:
 * - One plain C loop per kernel and dtype (suffix _f: float, _d: double), written so
 *   that gcc vectorizes it: no branch per element (a select instead), no calls but
 *   the libmvec-vectorizable tanhf/tanh. The Cython wrappers check and lay out the
 *   arrays, then call these with the GIL released.
 * - Each loop does the same IEEE operations, in the same order, as the numpy twin in
 *   tinygrad_vg/kernels.py, so that everything but tanh/sigmoid forward is bit for bit
 *   equal to it (setup.py turns FMA contraction off; constants are converted to T
 *   first, as numpy converts a Python float to the array's dtype).
 * - Runtime dispatch. A default build targets baseline x86-64 (SSE2), where gcc can
 *   only call libmvec's 4-wide SSE tanhf (_ZGVbN4v_tanhf): 3.5x slower than numpy,
 *   which picks an AVX-512 loop at run time. TG_CLONES compiles each loop three
 *   times (baseline, AVX2, AVX-512F) and the loader picks the widest one this CPU
 *   has (an ifunc), so the AVX-512 clone calls the 16-wide _ZGVeN16v_tanhf. The
 *   arithmetic is the same in every clone (no FMA: -ffp-contract=off applies to all).
 * - `restrict` on out-of-place loops: the outputs are always fresh arrays. In-place
 *   loops (linear_act's bias + activation, the optimizer steps) take one pointer
 *   per array and read each element before writing it.
 */
#ifndef TG_KERNEL_LOOPS_H
#define TG_KERNEL_LOOPS_H

#include <stddef.h>
#include <math.h>
#include "_portable.h"
#include "_simd_math.h"

/* target_clones needs gcc on x86-64 and the loader's ifuncs (glibc; <math.h> above
   defines __GLIBC__); elsewhere each loop is compiled once, for the build's target. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) \
    && __GNUC__ >= 8
#define TG_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#define TG_RUNTIME_DISPATCH 1
#else
#define TG_CLONES
#define TG_RUNTIME_DISPATCH 0
#endif

#define TG_BLOCK 256   /* elements per block of the two-pass sigmoid (a 1-2 KB stack buffer) */

/* The instruction set the clones run with on this CPU (for kernels.report()). */
static const char *tg_vector_isa(void) {
#if TG_RUNTIME_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2")) return "avx2";
    return "sse2";
#else
    return "baseline (no runtime dispatch)";
#endif
}

/* T: the C type; S: the suffix; TANH/EXP/FABS/SQRT: libm's functions for T. */
#define TG_DEFINE_LOOPS(T, S, TANH, EXP, FABS, SQRT)                                          \
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
}                                                                                             \
                                                                                              \
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
}                                                                                             \
                                                                                              \
/* SGD, in place (torch.optim.SGD):                                                           \
     d = grad + weight_decay * p            (only if weight_decay != 0)                       \
     buf = d (first step), else buf = momentum * buf + (1 - dampening) * d                    \
     d = d + momentum * buf (nesterov), or d = buf (momentum != 0)                            \
     p = p - lr * d                                                                           \
   `damp` is (1 - dampening) already rounded to T, as numpy does with the Python float.       \
   The flags are the same for every element: gcc unswitches the loop on them. */              \
TG_CLONES static void tg_sgd_##S(T *p, const T *grad, T *buf, ptrdiff_t n, T lr, T momentum,  \
                                 T damp, T weight_decay, int use_decay, int use_momentum,     \
                                 int nesterov, int first) {                                   \
    if (!use_momentum) {                                                                      \
        if (use_decay) {                                                                      \
            for (ptrdiff_t i = 0; i < n; i++) {                                               \
                T d = grad[i] + weight_decay * p[i];                                          \
                p[i] = p[i] - lr * d;                                                         \
            }                                                                                 \
        } else {                                                                              \
            for (ptrdiff_t i = 0; i < n; i++) p[i] = p[i] - lr * grad[i];                     \
        }                                                                                     \
        return;                                                                               \
    }                                                                                         \
    for (ptrdiff_t i = 0; i < n; i++) {                                                       \
        T d = use_decay ? grad[i] + weight_decay * p[i] : grad[i];                            \
        T b = first ? d : momentum * buf[i] + damp * d;                                       \
        buf[i] = b;                                                                           \
        d = nesterov ? d + momentum * b : b;                                                  \
        p[i] = p[i] - lr * d;                                                                 \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* Adam, in place (torch.optim.Adam, L2 weight decay):                                        \
     d = grad + weight_decay * p            (only if weight_decay != 0)                       \
     m = beta1 * m + (1 - beta1) * d;   v = beta2 * v + (1 - beta2) * (d * d)                 \
     p = p - step_size * (m / (sqrt(v) / bias2 + eps))                                        \
   step_size = lr / (1 - beta1^t) and bias2 = sqrt(1 - beta2^t) come computed in double       \
   and rounded to T (as numpy does with the Python floats), as do c1 = 1 - beta1 and          \
   c2 = 1 - beta2. */                                                                         \
TG_CLONES static void tg_adam_##S(T *p, const T *grad, T *m, T *v, ptrdiff_t n, T step_size,  \
                                  T beta1, T c1, T beta2, T c2, T bias2, T eps,               \
                                  T weight_decay, int use_decay) {                            \
    for (ptrdiff_t i = 0; i < n; i++) {                                                       \
        T d = use_decay ? grad[i] + weight_decay * p[i] : grad[i];                            \
        T mi = m[i] * beta1 + c1 * d;                                                         \
        T vi = v[i] * beta2 + c2 * (d * d);                                                   \
        m[i] = mi;                                                                            \
        v[i] = vi;                                                                            \
        T denom = SQRT(vi) / bias2 + eps;                                                     \
        p[i] = p[i] - step_size * (mi / denom);                                               \
    }                                                                                         \
}

TG_DEFINE_LOOPS(float, f, tanhf, expf, fabsf, sqrtf)
TG_DEFINE_LOOPS(double, d, tanh, exp, fabs, sqrt)

#endif /* TG_KERNEL_LOOPS_H */
