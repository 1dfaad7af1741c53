/* The loops of the optimizer steps (csrc/optim.pyx), in place on raw pointers.
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
#ifndef TG_OPTIM_LOOPS_H
#define TG_OPTIM_LOOPS_H

#include "_dispatch.h"

#define TG_DEFINE_OPTIM_LOOPS(T, S, SQRT)                                                     \
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

TG_DEFINE_OPTIM_LOOPS(float, f, sqrtf)
TG_DEFINE_OPTIM_LOOPS(double, d, sqrt)

#endif /* TG_OPTIM_LOOPS_H */
