# OpenMP entry points with a serial fallback: the same sources build with and without
# -fopenmp (Cython's prange degrades to a plain loop when _OPENMP is not defined).
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define RELUMLP_OPENMP_ENABLED 1
    #else
    #define RELUMLP_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_threads(void) { return 1; }
    #endif
    """
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    int RELUMLP_OPENMP_ENABLED


# An orphaned barrier for the threads of the enclosing parallel region (Cython has no
# barrier statement); a no-op in the serial build.
cdef extern from *:
    """
    #ifdef _OPENMP
    static void relumlp_barrier(void) { _Pragma("omp barrier") }
    #else
    static void relumlp_barrier(void) {}
    #endif
    """
    void _barrier "relumlp_barrier"() noexcept nogil
