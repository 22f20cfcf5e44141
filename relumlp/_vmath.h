/* Rows of the exp/erf/tanh/log1p-based activations, their derivatives and the output
 * layer's exponentials, vectorised through glibc's libmvec.
 *
 * With RELUMLP_LIBMVEC defined (setup.py defines it when a probe program that calls
 * libmvec's vector exp compiles and links), the libm functions are declared
 * `omp declare simd`, and every row loop below is an `omp simd` loop: GCC then calls
 * libmvec's vector variants (_ZGVbN2v_exp for SSE2, _ZGVdN4v_exp for AVX2,
 * _ZGVeN8v_exp for AVX-512, and the float ones) instead of libm per element. Each row
 * is compiled once per ISA on x86-64 (baseline, AVX2 + FMA, AVX-512), and the widest
 * one the CPU has is chosen at run time (__builtin_cpu_supports); a fourth copy,
 * compiled without vectorisation, calls scalar libm and can be chosen to compare
 * (relumlp_vmath_set). Without RELUMLP_LIBMVEC (another libc, another compiler,
 * RELUMLP_NO_VECTOR_MATH=1) only that scalar copy exists.
 *
 * The formulas are branch-free (both sides of a select are computed, then one is
 * kept), written so that NaN propagates and nothing overflows where it is kept:
 * logistic(z) = (z >= 0 ? 1 : e) / (1 + e) with e = exp(-|z|); softplus(z) =
 * max(z, 0) + log1p(exp(-|z|)); gelu(z) = z erfc(-z / sqrt 2) / 2; elu's expm1 sees
 * min(z, 0) (written so that a NaN z reaches it). Each is the formula of the former
 * scalar kernels: with libm the results are those kernels' bits. */
#ifndef RELUMLP_VMATH_H
#define RELUMLP_VMATH_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#ifdef RELUMLP_LIBMVEC
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double expm1(double);
#pragma omp declare simd notinbranch
float expm1f(float);
#pragma omp declare simd notinbranch
double erfc(double);
#pragma omp declare simd notinbranch
float erfcf(float);
#pragma omp declare simd notinbranch
double tanh(double);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double log1p(double);
#pragma omp declare simd notinbranch
float log1pf(float);
#define RELUMLP_SIMD _Pragma("omp simd")
#else
#define RELUMLP_SIMD
#endif

#define RELUMLP_SELU_ALPHA 1.6732632423543772848170429916717
#define RELUMLP_SELU_SCALE 1.0507009873554804934193349852946
#define RELUMLP_INV_SQRT2 0.70710678118654752440
#define RELUMLP_INV_SQRT_2PI 0.39894228040143267794

/* Every row is computed in blocks of RELUMLP_VBLOCK elements copied into an aligned
 * local array, the last block padded with zeros, and the vector loop always runs over
 * the whole block: a compiler splits a loop of unknown length into a vector body and
 * a scalar remainder, so an element's bits would depend on where it sits in the row,
 * and a row split differently (the few-rows forward pass splits columns by thread)
 * would round differently. RELUMLP_VBLOCK is long enough to amortise the block's
 * copies; the last, partial block is padded to a multiple of RELUMLP_VTAIL, the widest
 * vector here (16 floats = 512 bits), so a 10-class softmax computes 16 exponentials,
 * not 64. */
#define RELUMLP_VBLOCK 64
#define RELUMLP_VTAIL 16
#if defined(__GNUC__) || defined(__clang__)
#define RELUMLP_ALIGNED __attribute__((aligned(64)))
#else
#define RELUMLP_ALIGNED
#endif

/* out[j] := STORE(yb[k]) with yb[k] = EXPR(x), x = in[j] + shift, j = j0 + k < m: one
 * row (shift -0 leaves every x as it is, -0 included). EXPR sees e = exp(-|x|), the
 * exponential of the logistic family (a pure call: compiled away where unused). */
#define RELUMLP_BLOCKED(T, LOOP, EXP, in, shift, m, EXPR, STORE)                    \
    {                                                                                 \
        T xb[RELUMLP_VBLOCK] RELUMLP_ALIGNED, yb[RELUMLP_VBLOCK] RELUMLP_ALIGNED;      \
        ptrdiff_t j0, k, c;                                                           \
        for (j0 = 0; j0 + RELUMLP_VBLOCK <= (m); j0 += RELUMLP_VBLOCK) {              \
            memcpy(xb, (in) + j0, sizeof(xb));                                        \
            RELUMLP_VLOOP(T, LOOP, EXP, 0, RELUMLP_VBLOCK, shift, EXPR)               \
            for (k = 0; k < RELUMLP_VBLOCK; k++) { const ptrdiff_t j = j0 + k; STORE; } \
        }                                                                             \
        if (j0 < (m)) { /* the tail, padded to whole vectors of RELUMLP_VTAIL */     \
            const ptrdiff_t nb = (m) - j0;                                            \
            const ptrdiff_t padded = (nb + RELUMLP_VTAIL - 1) / RELUMLP_VTAIL * RELUMLP_VTAIL; \
            memcpy(xb, (in) + j0, (size_t) nb * sizeof(T));                           \
            memset(xb + nb, 0, (size_t) (padded - nb) * sizeof(T));                   \
            for (c = 0; c < padded; c += RELUMLP_VTAIL)                               \
                RELUMLP_VLOOP(T, LOOP, EXP, c, RELUMLP_VTAIL, shift, EXPR)            \
            for (k = 0; k < nb; k++) { const ptrdiff_t j = j0 + k; STORE; }           \
        }                                                                             \
    }
/* yb[base + k] := EXPR(xb[base + k] + shift) for k < COUNT, a compile-time constant
 * that every vector width divides: the loop has no scalar remainder. */
#define RELUMLP_VLOOP(T, LOOP, EXP, base, COUNT, shift, EXPR)                         \
    LOOP for (k = 0; k < (COUNT); k++) {                                              \
        const T x = xb[(base) + k] + (shift);                                         \
        const T e = EXP(x < 0 ? x : -x);                                              \
        (void) e;                                                                     \
        yb[(base) + k] = EXPR;                                                        \
    }

/* The functions of x are branch-free (both sides of a select computed) and
 * NaN-propagating. With e = exp(-|x|), logistic(x) = (x >= 0 ? 1 : e) / (1 + e). */
#define RELUMLP_LOGISTIC_OF(T, EXP, x) (((x) >= 0 ? (T) 1 : e) / (1 + e))

/* One set of rows for element type T (suffix S) with the libm functions of that
 * precision, under function attribute ATTR, with LOOP before every vector loop. */
#define RELUMLP_VMATH_ROWS(S, ATTR, LOOP, T, EXP, EXPM1, ERFC, TANH, LOG1P)            \
ATTR static void relumlp_logistic_##S(const T* z, T* a, ptrdiff_t m, T p) {             \
    (void) p;                                                                         \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m, RELUMLP_LOGISTIC_OF(T, EXP, x), a[j] = yb[k])   \
}                                                                                     \
ATTR static void relumlp_tanh_##S(const T* z, T* a, ptrdiff_t m, T p) {                 \
    (void) p;                                                                         \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m, TANH(x), a[j] = yb[k])                          \
}                                                                                     \
ATTR static void relumlp_elu_##S(const T* z, T* a, ptrdiff_t m, T p) {                  \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m, x > 0 ? x : p * EXPM1(x > 0 ? (T) 0 : x),       \
                    a[j] = yb[k])                                                     \
}                                                                                     \
ATTR static void relumlp_selu_##S(const T* z, T* a, ptrdiff_t m, T p) {                 \
    (void) p;                                                                         \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m,                                                 \
                    (T) RELUMLP_SELU_SCALE * (x > 0 ? x : (T) RELUMLP_SELU_ALPHA        \
                                              * EXPM1(x > 0 ? (T) 0 : x)),            \
                    a[j] = yb[k])                                                     \
}                                                                                     \
ATTR static void relumlp_gelu_##S(const T* z, T* a, ptrdiff_t m, T p) {                 \
    (void) p;                                                                         \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m, (T) 0.5 * x * ERFC(-x * (T) RELUMLP_INV_SQRT2),  \
                    a[j] = yb[k])                                                     \
}                                                                                     \
ATTR static void relumlp_silu_##S(const T* z, T* a, ptrdiff_t m, T p) {                 \
    (void) p;                                                                         \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m, x * RELUMLP_LOGISTIC_OF(T, EXP, x), a[j] = yb[k]) \
}                                                                                     \
ATTR static void relumlp_softplus_##S(const T* z, T* a, ptrdiff_t m, T p) {             \
    (void) p;                                                                         \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m,                                                 \
                    (x > 0 ? x : (T) 0) + LOG1P(EXP(x < 0 ? x : -x)), a[j] = yb[k])    \
}                                                                                     \
/* d := g * f'(z) for the three whose derivative needs z, not only f(z). */          \
ATTR static void relumlp_gelu_grad_##S(T* d, const T* g, const T* z, ptrdiff_t m) {     \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m,                                                 \
                    (T) 0.5 * ERFC(-x * (T) RELUMLP_INV_SQRT2)                        \
                    + x * (T) RELUMLP_INV_SQRT_2PI * EXP((T) -0.5 * x * x),           \
                    d[j] = g[j] * yb[k])                                              \
}                                                                                     \
ATTR static void relumlp_silu_grad_##S(T* d, const T* g, const T* z, ptrdiff_t m) {     \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m,                                                 \
                    RELUMLP_LOGISTIC_OF(T, EXP, x)                                    \
                    * (1 + x * (1 - RELUMLP_LOGISTIC_OF(T, EXP, x))),                 \
                    d[j] = g[j] * yb[k])                                              \
}                                                                                     \
ATTR static void relumlp_softplus_grad_##S(T* d, const T* g, const T* z, ptrdiff_t m) { \
    RELUMLP_BLOCKED(T, LOOP, EXP, z, (T) -0.0, m, RELUMLP_LOGISTIC_OF(T, EXP, x),                 \
                    d[j] = g[j] * yb[k])                                              \
}                                                                                     \
/* y := f(x) for the library functions themselves (the accuracy tests call these). */  \
ATTR static void relumlp_raw_##S(int f, const T* x_, T* y, ptrdiff_t m) {             \
    switch (f) {                                                                      \
    case 0: RELUMLP_BLOCKED(T, LOOP, EXP, x_, (T) -0.0, m, EXP(x), y[j] = yb[k]) break;           \
    case 1: RELUMLP_BLOCKED(T, LOOP, EXP, x_, (T) -0.0, m, EXPM1(x), y[j] = yb[k]) break;         \
    case 2: RELUMLP_BLOCKED(T, LOOP, EXP, x_, (T) -0.0, m, ERFC(x), y[j] = yb[k]) break;          \
    case 3: RELUMLP_BLOCKED(T, LOOP, EXP, x_, (T) -0.0, m, TANH(x), y[j] = yb[k]) break;          \
    default: RELUMLP_BLOCKED(T, LOOP, EXP, x_, (T) -0.0, m, LOG1P(x), y[j] = yb[k]) break;        \
    }                                                                                 \
}                                                                                     \
/* x := exp(x + shift): softmax's numerators (shift = -max) and Poisson's output. */  \
ATTR static void relumlp_exp_shift_##S(T* x_, ptrdiff_t m, T shift) {                 \
    RELUMLP_BLOCKED(T, LOOP, EXP, x_, shift, m, EXP(x), x_[j] = yb[k])                     \
}

/* The table the kernels call through: one per element type, filled by relumlp_vmath_set. */
#define RELUMLP_VMATH_TABLE(T)                                                        \
    struct {                                                                          \
        void (*act[7])(const T*, T*, ptrdiff_t, T);                                   \
        void (*grad[3])(T*, const T*, const T*, ptrdiff_t);                           \
        void (*exp_shift)(T*, ptrdiff_t, T);                                          \
        void (*raw)(int, const T*, T*, ptrdiff_t);                                    \
    }
typedef RELUMLP_VMATH_TABLE(double) relumlp_vmath_table_d;
typedef RELUMLP_VMATH_TABLE(float) relumlp_vmath_table_s;

/* Indices into act[] and grad[]. */
enum { RELUMLP_VM_LOGISTIC, RELUMLP_VM_TANH, RELUMLP_VM_ELU, RELUMLP_VM_SELU,
       RELUMLP_VM_GELU, RELUMLP_VM_SILU, RELUMLP_VM_SOFTPLUS };
enum { RELUMLP_VM_GELU_GRAD, RELUMLP_VM_SILU_GRAD, RELUMLP_VM_SOFTPLUS_GRAD };
/* relumlp_raw's f: 0 exp, 1 expm1, 2 erfc, 3 tanh, 4 log1p (_kernels.VECTOR_FUNCTIONS). */

#define RELUMLP_VMATH_FILL(TABLE, S)                                                  \
    do {                                                                              \
        (TABLE).act[RELUMLP_VM_LOGISTIC] = relumlp_logistic_##S;                      \
        (TABLE).act[RELUMLP_VM_TANH] = relumlp_tanh_##S;                              \
        (TABLE).act[RELUMLP_VM_ELU] = relumlp_elu_##S;                                \
        (TABLE).act[RELUMLP_VM_SELU] = relumlp_selu_##S;                              \
        (TABLE).act[RELUMLP_VM_GELU] = relumlp_gelu_##S;                              \
        (TABLE).act[RELUMLP_VM_SILU] = relumlp_silu_##S;                              \
        (TABLE).act[RELUMLP_VM_SOFTPLUS] = relumlp_softplus_##S;                      \
        (TABLE).grad[RELUMLP_VM_GELU_GRAD] = relumlp_gelu_grad_##S;                   \
        (TABLE).grad[RELUMLP_VM_SILU_GRAD] = relumlp_silu_grad_##S;                   \
        (TABLE).grad[RELUMLP_VM_SOFTPLUS_GRAD] = relumlp_softplus_grad_##S;           \
        (TABLE).exp_shift = relumlp_exp_shift_##S;                                    \
        (TABLE).raw = relumlp_raw_##S;                                                \
    } while (0)

/* The scalar copy: libm per element (the compiler may not vectorise these loops). */
#if defined(__GNUC__) && !defined(__clang__)
#define RELUMLP_SCALAR_ATTR __attribute__((optimize("no-tree-vectorize")))
#else
#define RELUMLP_SCALAR_ATTR
#endif
RELUMLP_VMATH_ROWS(d_scalar, RELUMLP_SCALAR_ATTR, , double, exp, expm1, erfc, tanh, log1p)
RELUMLP_VMATH_ROWS(s_scalar, RELUMLP_SCALAR_ATTR, , float, expf, expm1f, erfcf, tanhf, log1pf)

/* Levels, widest last. */
enum { RELUMLP_VM_SCALAR, RELUMLP_VM_SSE2, RELUMLP_VM_AVX2, RELUMLP_VM_AVX512 };
static const char* const relumlp_vmath_names[] = {"scalar", "sse2", "avx2", "avx512"};

#ifdef RELUMLP_LIBMVEC
RELUMLP_VMATH_ROWS(d_base, , RELUMLP_SIMD, double, exp, expm1, erfc, tanh, log1p)
RELUMLP_VMATH_ROWS(s_base, , RELUMLP_SIMD, float, expf, expm1f, erfcf, tanhf, log1pf)
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define RELUMLP_VMATH_X86 1
#define RELUMLP_AVX2 __attribute__((target("avx2,fma")))
#define RELUMLP_AVX512 __attribute__((target( \
    "avx512f,avx512dq,avx512vl,avx512bw,fma,prefer-vector-width=512")))
RELUMLP_VMATH_ROWS(d_avx2, RELUMLP_AVX2, RELUMLP_SIMD, double, exp, expm1, erfc, tanh, log1p)
RELUMLP_VMATH_ROWS(s_avx2, RELUMLP_AVX2, RELUMLP_SIMD, float, expf, expm1f, erfcf, tanhf, log1pf)
RELUMLP_VMATH_ROWS(d_avx512, RELUMLP_AVX512, RELUMLP_SIMD, double, exp, expm1, erfc, tanh, log1p)
RELUMLP_VMATH_ROWS(s_avx512, RELUMLP_AVX512, RELUMLP_SIMD, float, expf, expm1f, erfcf, tanhf,
                   log1pf)
#endif
#endif

static relumlp_vmath_table_d relumlp_vm_d;
static relumlp_vmath_table_s relumlp_vm_s;
static int relumlp_vm_level = -1;

/* The widest level this build and this CPU support. */
static inline int relumlp_vmath_best(void) {
#ifndef RELUMLP_LIBMVEC
    return RELUMLP_VM_SCALAR;
#elif defined(RELUMLP_VMATH_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("fma"))
        return RELUMLP_VM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return RELUMLP_VM_AVX2;
    return RELUMLP_VM_SSE2;
#else
    return RELUMLP_VM_SSE2;   /* the baseline vector ISA of this architecture */
#endif
}

/* Use level (a RELUMLP_VM_* value; -1: the best); returns the level now in use, which
 * is the best available if level is above it. Not thread-safe: call at import, or
 * between kernel calls. */
static inline int relumlp_vmath_set(int level) {
    int best = relumlp_vmath_best();
    if (level < 0 || level > best)
        level = best;
    switch (level) {
#ifdef RELUMLP_LIBMVEC
#ifdef RELUMLP_VMATH_X86
    case RELUMLP_VM_AVX512:
        RELUMLP_VMATH_FILL(relumlp_vm_d, d_avx512);
        RELUMLP_VMATH_FILL(relumlp_vm_s, s_avx512);
        break;
    case RELUMLP_VM_AVX2:
        RELUMLP_VMATH_FILL(relumlp_vm_d, d_avx2);
        RELUMLP_VMATH_FILL(relumlp_vm_s, s_avx2);
        break;
#endif
    case RELUMLP_VM_SSE2:
        RELUMLP_VMATH_FILL(relumlp_vm_d, d_base);
        RELUMLP_VMATH_FILL(relumlp_vm_s, s_base);
        break;
#endif
    default:
        level = RELUMLP_VM_SCALAR;
        RELUMLP_VMATH_FILL(relumlp_vm_d, d_scalar);
        RELUMLP_VMATH_FILL(relumlp_vm_s, s_scalar);
    }
    relumlp_vm_level = level;
    return level;
}

static inline int relumlp_vmath_level(void) { return relumlp_vm_level; }
static inline const char* relumlp_vmath_name(int level) {
    return (level >= 0 && level <= RELUMLP_VM_AVX512) ? relumlp_vmath_names[level] : "?";
}

/* What the kernels call. */
static inline void relumlp_vact_d(int f, const double* z, double* a, ptrdiff_t m, double p) {
    relumlp_vm_d.act[f](z, a, m, p);
}
static inline void relumlp_vact_s(int f, const float* z, float* a, ptrdiff_t m, float p) {
    relumlp_vm_s.act[f](z, a, m, p);
}
static inline void relumlp_vgrad_d(int f, double* d, const double* g, const double* z,
                                   ptrdiff_t m) {
    relumlp_vm_d.grad[f](d, g, z, m);
}
static inline void relumlp_vgrad_s(int f, float* d, const float* g, const float* z,
                                   ptrdiff_t m) {
    relumlp_vm_s.grad[f](d, g, z, m);
}
static inline void relumlp_vraw_d(int f, const double* x, double* y, ptrdiff_t m) {
    relumlp_vm_d.raw(f, x, y, m);
}
static inline void relumlp_vraw_s(int f, const float* x, float* y, ptrdiff_t m) {
    relumlp_vm_s.raw(f, x, y, m);
}
static inline void relumlp_vexp_shift_d(double* x, ptrdiff_t m, double shift) {
    relumlp_vm_d.exp_shift(x, m, shift);
}
static inline void relumlp_vexp_shift_s(float* x, ptrdiff_t m, float shift) {
    relumlp_vm_s.exp_shift(x, m, shift);
}

#endif /* RELUMLP_VMATH_H */
