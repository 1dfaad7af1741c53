/* Compiler-specific syntax of the kernel loops, behind guards.
 *
 * GCC and Clang (and compilers that claim __GNUC__, e.g. icx) get their GNU spellings,
 * MSVC its own, any other C99 compiler the standard keyword or nothing. Only hints
 * change between the spellings: no arithmetic depends on them.
 *   TG_RESTRICT       restrict (pointers that never alias)
 *   TG_ALWAYS_INLINE  a forced-inline static function (a helper of a vectorized loop)
 */
#ifndef TG_PORTABLE_H
#define TG_PORTABLE_H

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

#endif /* TG_PORTABLE_H */
