/* One dispatch header for every compiled kernel (csrc/<family>.pyx and <family>_loops.h).
 *
 * Compiler-specific syntax, behind guards: GCC and Clang (and compilers that claim
 * __GNUC__, e.g. icx) get their GNU spellings, MSVC its own, any other C99 compiler the
 * standard keyword or nothing. Only hints change between the spellings: no arithmetic
 * depends on them.
 *   TG_RESTRICT          restrict (pointers that never alias)
 *   TG_ALWAYS_INLINE     a forced-inline static function (a helper of a vectorized loop)
 *   TG_CLONES            compile a loop once per instruction set and let the loader pick
 *                        the widest this CPU has (GCC's target_clones, through an ifunc)
 *   TG_RUNTIME_DISPATCH  1 where TG_CLONES does that, 0 where each loop is compiled once
 *   tg_vector_isa()      the instruction set the clones run with on this CPU (report())
 *
 * Runtime dispatch: a default build targets baseline x86-64 (SSE2), where gcc can only
 * call libmvec's 4-wide SSE tanhf (_ZGVbN4v_tanhf): 3.5x slower than numpy, which picks
 * an AVX-512 loop at run time. TG_CLONES compiles each loop three times (baseline, AVX2,
 * AVX-512F), so that the AVX-512 clone calls the 16-wide _ZGVeN16v_tanhf. The arithmetic
 * is the same in every clone (no FMA: setup.py's -ffp-contract=off applies to all); only
 * libmvec's tanh differs, by an ulp or so, between widths.
 */
#ifndef TG_DISPATCH_H
#define TG_DISPATCH_H

#include <stddef.h>
#include <math.h>

#if defined(__GNUC__) || defined(__clang__)
#define TG_RESTRICT __restrict__
#define TG_ALWAYS_INLINE __attribute__((always_inline)) static inline
#elif defined(_MSC_VER)
#define TG_RESTRICT __restrict
#define TG_ALWAYS_INLINE static __forceinline
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define TG_RESTRICT restrict
#define TG_ALWAYS_INLINE static inline
#else
#define TG_RESTRICT
#define TG_ALWAYS_INLINE static
#endif

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

#endif /* TG_DISPATCH_H */
