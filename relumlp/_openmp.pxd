# OpenMP with a serial fallback, the orphaned barrier, per-thread CPU time
# (_openmp.h) and the row-split epoch's ticket sequencer (_sequencer.h).
cdef extern from "_openmp.h":
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    int RELUMLP_OPENMP_ENABLED
    void _barrier "relumlp_barrier"() noexcept nogil
    double _thread_cpu "relumlp_thread_cpu"() noexcept nogil


cdef extern from "_sequencer.h":
    ctypedef struct relumlp_seq:
        int claim
    void _seq_init "relumlp_seq_init"(relumlp_seq* s, int spin) noexcept nogil
    int _seq_claim "relumlp_seq_claim"(relumlp_seq* s) noexcept nogil
    void _seq_wait "relumlp_seq_wait"(relumlp_seq* s, int target) noexcept nogil
    void _seq_done "relumlp_seq_done"(relumlp_seq* s) noexcept nogil
