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


# A barrier for the row-parallel epoch: spin briefly, then sleep on a futex (Linux).
# libgomp's barrier spins for ~0.1-1 ms (GOMP_SPINCOUNT) before sleeping; when another
# process holds a core, the waiting thread then burns the core its preempted sibling
# needs (measured on MNIST-shaped epochs: 2.6x slower with one core busy; sleeping
# soon, as with OMP_WAIT_POLICY=passive, 1.5x), while short waits on an idle machine
# still end in the spin. Elsewhere, and in the serial build, the OpenMP barrier.
cdef extern from *:
    """
    #if defined(_OPENMP) && defined(__linux__)
    #include <limits.h>
    #include <linux/futex.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    #define RELUMLP_FUTEX_BARRIER 1
    #endif
    #if defined(__x86_64__) || defined(__i386__)
    #define RELUMLP_CPU_RELAX() __builtin_ia32_pause()
    #elif defined(__aarch64__)
    #define RELUMLP_CPU_RELAX() __asm__ __volatile__("yield")
    #else
    #define RELUMLP_CPU_RELAX() ((void)0)
    #endif
    #define RELUMLP_BARRIER_SPIN 4000   /* ~50 us of pause instructions */

    typedef struct {
        int n;          /* threads in the team (set by thread 0, then an omp barrier) */
        int count;      /* threads arrived in this round */
        int round;      /* generation; the futex word */
    } relumlp_bar;

    static void relumlp_bar_init(relumlp_bar* b) { b->n = 0; b->count = 0; b->round = 0; }

    static void relumlp_bar_wait(relumlp_bar* b) {
    #ifdef RELUMLP_FUTEX_BARRIER
        int i, round = __atomic_load_n(&b->round, __ATOMIC_ACQUIRE);
        if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
            __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&b->round, round + 1, __ATOMIC_RELEASE);
            syscall(SYS_futex, &b->round, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
            return;
        }
        for (i = 0; i < RELUMLP_BARRIER_SPIN; i++) {
            if (__atomic_load_n(&b->round, __ATOMIC_ACQUIRE) != round) return;
            RELUMLP_CPU_RELAX();
        }
        while (__atomic_load_n(&b->round, __ATOMIC_ACQUIRE) == round)
            syscall(SYS_futex, &b->round, FUTEX_WAIT_PRIVATE, round, NULL, NULL, 0);
    #else
        (void)b;
        relumlp_barrier();
    #endif
    }
    """
    ctypedef struct relumlp_bar:
        int n
    void _bar_init "relumlp_bar_init"(relumlp_bar* b) noexcept nogil
    void _bar_wait "relumlp_bar_wait"(relumlp_bar* b) noexcept nogil
