/* OpenMP entry points with a serial fallback, an orphaned barrier, and per-thread CPU
 * time. The same sources build with and without -fopenmp: without it, Cython's prange
 * is a plain loop and these functions report one thread. */
#ifndef RELUMLP_OPENMP_H
#define RELUMLP_OPENMP_H

#ifdef _OPENMP
#include <omp.h>
#define RELUMLP_OPENMP_ENABLED 1
#else
#define RELUMLP_OPENMP_ENABLED 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

/* A barrier for the threads of the enclosing parallel region (Cython has no barrier
 * statement); a no-op in the serial build. */
#ifdef _OPENMP
static inline void relumlp_barrier(void) { _Pragma("omp barrier") }
#else
static inline void relumlp_barrier(void) {}
#endif

/* CPU time of the calling thread in seconds, -1 where unknown. The row-split epoch
 * reports each thread's, so that the caller can tell a sibling thread that had its
 * core (CPU time close to the wall time) from one that waited for it. */
#if defined(__linux__) || defined(__APPLE__)
#include <time.h>
static inline double relumlp_thread_cpu(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return -1.0;
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}
#else
static inline double relumlp_thread_cpu(void) { return -1.0; }
#endif

#endif /* RELUMLP_OPENMP_H */
