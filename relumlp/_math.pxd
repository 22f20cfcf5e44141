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


# cnt[j] += (z[j] <= 0), vectorised in C (_count.h).
cdef extern from "_count.h":
    void _count_nonpos_d "relumlp_count_nonpos_d"(
        const double* z, long long* cnt, Py_ssize_t m) noexcept nogil
    void _count_nonpos_s "relumlp_count_nonpos_s"(
        const float* z, long long* cnt, Py_ssize_t m) noexcept nogil


cdef inline void _count_nonpos(const floating* z, long long* cnt, Py_ssize_t m) noexcept nogil:
    if floating is float:
        _count_nonpos_s(z, cnt, m)
    else:
        _count_nonpos_d(z, cnt, m)
