# Scalar libm calls in the precision of the fused type (expf for float, exp for double).
from cython cimport floating
from libc.math cimport (
    erf, erfc, erfcf, erff, exp, expf, expm1, expm1f, fabs, fabsf, log, log1p, log1pf, logf, sqrt,
    sqrtf, tanh, tanhf,
)


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating _erf(floating x) noexcept nogil:
    if floating is float:
        return erff(x)
    else:
        return erf(x)


cdef inline floating _fabs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating _erfc(floating x) noexcept nogil:
    if floating is float:
        return erfcf(x)
    else:
        return erfc(x)


# cnt[j] += (z[j] <= 0), in C: the extension is compiled with -fno-strict-aliasing
# (Python's flags), and GCC does not vectorise the double-compare-to-int64 count for
# baseline x86-64 at all, leaving a scalar read-modify-write per element (70 % of the
# bias + activation pass of a digits-sized fit). With SSE2 (every x86-64), the compare
# mask (all ones where z <= 0, i.e. -1) is subtracted from two counters at a time.
cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    static void relumlp_count_nonpos_d(const double* z, long long* cnt, Py_ssize_t m) {
        Py_ssize_t j = 0;
    #if defined(__SSE2__)
        const __m128d zero = _mm_setzero_pd();
        for (; j + 2 <= m; j += 2) {
            __m128i mask = _mm_castpd_si128(_mm_cmple_pd(_mm_loadu_pd(z + j), zero));
            __m128i c = _mm_loadu_si128((const __m128i*) (cnt + j));
            _mm_storeu_si128((__m128i*) (cnt + j), _mm_sub_epi64(c, mask));
        }
    #endif
        for (; j < m; j++) cnt[j] += (z[j] <= 0);
    }
    static void relumlp_count_nonpos_s(const float* __restrict z, long long* __restrict cnt,
                                       Py_ssize_t m) {
        Py_ssize_t j;
        for (j = 0; j < m; j++) cnt[j] += (z[j] <= 0);
    }
    """
    void _count_nonpos_d "relumlp_count_nonpos_d"(
        const double* z, long long* cnt, Py_ssize_t m) noexcept nogil
    void _count_nonpos_s "relumlp_count_nonpos_s"(
        const float* z, long long* cnt, Py_ssize_t m) noexcept nogil


cdef inline void _count_nonpos(const floating* z, long long* cnt, Py_ssize_t m) noexcept nogil:
    if floating is float:
        _count_nonpos_s(z, cnt, m)
    else:
        _count_nonpos_d(z, cnt, m)
