# Scalar libm calls in the precision of the fused type (logf for float, log for double).
from cython cimport floating
from libc.math cimport fabs, fabsf, log, logf, sqrt, sqrtf


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _fabs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


# The exp/erf/tanh/log1p-based rows, vectorised with libmvec where the build has it,
# at the widest ISA the CPU has (_vmath.h).
cdef extern from "_vmath.h":
    enum:
        VM_LOGISTIC "RELUMLP_VM_LOGISTIC"
        VM_TANH "RELUMLP_VM_TANH"
        VM_ELU "RELUMLP_VM_ELU"
        VM_SELU "RELUMLP_VM_SELU"
        VM_GELU "RELUMLP_VM_GELU"
        VM_SILU "RELUMLP_VM_SILU"
        VM_SOFTPLUS "RELUMLP_VM_SOFTPLUS"
        VM_GELU_GRAD "RELUMLP_VM_GELU_GRAD"
        VM_SILU_GRAD "RELUMLP_VM_SILU_GRAD"
        VM_SOFTPLUS_GRAD "RELUMLP_VM_SOFTPLUS_GRAD"
        VM_SCALAR "RELUMLP_VM_SCALAR"
        VM_AVX512 "RELUMLP_VM_AVX512"
    int _vmath_set "relumlp_vmath_set"(int level) noexcept nogil
    int _vmath_best "relumlp_vmath_best"() noexcept nogil
    int _vmath_level "relumlp_vmath_level"() noexcept nogil
    const char* _vmath_name "relumlp_vmath_name"(int level) noexcept nogil
    void _vact_d "relumlp_vact_d"(int f, const double* z, double* a, Py_ssize_t m,
                                  double p) noexcept nogil
    void _vact_s "relumlp_vact_s"(int f, const float* z, float* a, Py_ssize_t m,
                                  float p) noexcept nogil
    void _vgrad_d "relumlp_vgrad_d"(int f, double* d, const double* g, const double* z,
                                    Py_ssize_t m) noexcept nogil
    void _vgrad_s "relumlp_vgrad_s"(int f, float* d, const float* g, const float* z,
                                    Py_ssize_t m) noexcept nogil
    void _vraw_d "relumlp_vraw_d"(int f, const double* x, double* y,
                                  Py_ssize_t m) noexcept nogil
    void _vraw_s "relumlp_vraw_s"(int f, const float* x, float* y,
                                  Py_ssize_t m) noexcept nogil
    void _vexp_shift_d "relumlp_vexp_shift_d"(double* x, Py_ssize_t m,
                                              double shift) noexcept nogil
    void _vexp_shift_s "relumlp_vexp_shift_s"(float* x, Py_ssize_t m,
                                              float shift) noexcept nogil


cdef inline void _vact(int f, const floating* z, floating* a, Py_ssize_t m,
                       floating p) noexcept nogil:
    if floating is float:
        _vact_s(f, z, a, m, p)
    else:
        _vact_d(f, z, a, m, p)


cdef inline void _vgrad(int f, floating* d, const floating* g, const floating* z,
                        Py_ssize_t m) noexcept nogil:
    if floating is float:
        _vgrad_s(f, d, g, z, m)
    else:
        _vgrad_d(f, d, g, z, m)


cdef inline void _vexp_shift(floating* x, Py_ssize_t m, floating shift) noexcept nogil:
    """x := exp(x + shift) over a row."""
    if floating is float:
        _vexp_shift_s(x, m, shift)
    else:
        _vexp_shift_d(x, m, shift)


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
