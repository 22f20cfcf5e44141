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


# Waiting in the row-split epoch (see the sequencer below): spin briefly, then sleep on
# a futex (Linux). libgomp's barrier spins for ~0.1-1 ms (GOMP_SPINCOUNT) before
# sleeping; when another process holds a core, the waiting thread then burns the core
# its preempted sibling needs (measured on MNIST-shaped epochs: 2.6x slower with one
# core busy; sleeping soon, as with OMP_WAIT_POLICY=passive, 1.5x), while short waits
# on an idle machine still end in the spin. Elsewhere, spinning only.
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
    """


# CPU time of the calling thread, in seconds (-1 where unknown): the row-split epoch
# reports each thread's, so that the caller can tell a sibling thread that had its core
# (CPU time close to the wall time) from one that waited for it (another process held
# the core).
cdef extern from *:
    """
    #if defined(__linux__) || defined(__APPLE__)
    #include <time.h>
    static double relumlp_thread_cpu(void) {
        struct timespec ts;
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return -1.0;
        return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
    }
    #else
    static double relumlp_thread_cpu(void) { return -1.0; }
    #endif
    """
    double _thread_cpu "relumlp_thread_cpu"() noexcept nogil


# The row-split epoch's sequencer. Work is a sequence of phase instances (three per
# minibatch: rows, gradient blocks, optimizer chunks), each of n_parts tickets. A thread
# claims the next ticket and runs it once every earlier instance is complete: only
# claimed parts are waited for, never a thread that has not come back yet. A thread
# that another process has preempted therefore delays the others only when it is
# preempted holding a part; with a barrier, every barrier waited for it.
cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <intrin.h>
    typedef long relumlp_atomic;
    #define RELUMLP_FETCH_ADD(p, v) _InterlockedExchangeAdd((volatile long*) (p), (v))
    #define RELUMLP_LOAD(p) _InterlockedOr((volatile long*) (p), 0)
    #else
    typedef int relumlp_atomic;
    #define RELUMLP_FETCH_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
    #define RELUMLP_LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
    #endif

    typedef struct {
        relumlp_atomic claim;    /* next ticket */
        relumlp_atomic done;     /* tickets completed (in instance order) */
        relumlp_atomic waiters;  /* threads asleep on done */
    } relumlp_seq;

    static void relumlp_seq_init(relumlp_seq* s) { s->claim = 0; s->done = 0; s->waiters = 0; }

    static int relumlp_seq_claim(relumlp_seq* s) { return (int) RELUMLP_FETCH_ADD(&s->claim, 1); }

    /* Wait until at least `target` tickets are done: spin briefly, then sleep. */
    static void relumlp_seq_wait(relumlp_seq* s, int target) {
        int i, v;
        for (i = 0; i < RELUMLP_BARRIER_SPIN; i++) {
            if ((int) RELUMLP_LOAD(&s->done) >= target) return;
            RELUMLP_CPU_RELAX();
        }
        for (;;) {
            v = (int) RELUMLP_LOAD(&s->done);
            if (v >= target) return;
    #ifdef RELUMLP_FUTEX_BARRIER
            RELUMLP_FETCH_ADD(&s->waiters, 1);
            syscall(SYS_futex, &s->done, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
            RELUMLP_FETCH_ADD(&s->waiters, -1);
    #else
            RELUMLP_CPU_RELAX();
    #endif
        }
    }

    static void relumlp_seq_done(relumlp_seq* s) {
        RELUMLP_FETCH_ADD(&s->done, 1);
    #ifdef RELUMLP_FUTEX_BARRIER
        if (RELUMLP_LOAD(&s->waiters) > 0)
            syscall(SYS_futex, &s->done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    #endif
    }
    """
    ctypedef struct relumlp_seq:
        int claim
    void _seq_init "relumlp_seq_init"(relumlp_seq* s) noexcept nogil
    int _seq_claim "relumlp_seq_claim"(relumlp_seq* s) noexcept nogil
    void _seq_wait "relumlp_seq_wait"(relumlp_seq* s, int target) noexcept nogil
    void _seq_done "relumlp_seq_done"(relumlp_seq* s) noexcept nogil
