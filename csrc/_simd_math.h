/* Vector math for the compiled kernels.
 *
 * glibc (>= 2.35 on x86-64) ships libmvec: SIMD versions of tanhf/tanh that gcc calls
 * from a vectorized loop when the scalar function is declared with the `simd`
 * attribute. glibc's own <math.h> declares them so only under -ffast-math, which we
 * do not want (it would change the rounding of the backward kernels); declaring
 * them here gives the vector calls and nothing else. setup.py defines TG_LIBMVEC
 * (and links libmvec) only where libmvec exists; elsewhere the loops call scalar libm.
 *
 * Which vector variant gcc calls depends on the instruction set a loop is compiled
 * for: a baseline x86-64 build gets only the 4-wide SSE ones (_ZGVbN4v_tanhf), which
 * made tanh 3.5x slower than numpy's runtime-dispatched AVX-512 loop. The loops in
 * elementwise_loops.h and recurrent_loops.h are therefore compiled per instruction set and picked at load time
 * (target_clones), so that an AVX-512 CPU runs _ZGVeN16v_tanhf.
 *
 * Accuracy, measured against numpy's float32 tanh over every 16th float32 bit pattern
 * and 3M float64 values: libmvec tanhf within 1 ulp (the AVX-512 variant: equal to
 * numpy on every pattern tried), tanh within 2 ulp (the tests allow 4). exp is left
 * scalar: libmvec's expf put sigmoid 5 ulp from its twin.
 */
#ifndef TG_SIMD_MATH_H
#define TG_SIMD_MATH_H

#include <math.h>

/* The `simd` attribute is GCC's; setup.py defines TG_LIBMVEC only for GCC, and the
   guard keeps any other compiler on the scalar path even if it is defined by hand. */
#if defined(TG_LIBMVEC) && defined(__GNUC__) && !defined(__clang__)
#define TG_VECTOR_MATH 1
__attribute__((__simd__("notinbranch"))) extern float tanhf(float);
__attribute__((__simd__("notinbranch"))) extern double tanh(double);
#else
#define TG_VECTOR_MATH 0
#endif

#endif /* TG_SIMD_MATH_H */
