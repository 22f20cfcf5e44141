/* The row-split epoch's sequencer. Work is a sequence of phase instances (three per
 * minibatch: rows, gradient blocks, optimizer chunks), each of n_parts tickets. A
 * thread claims the next ticket and runs it once every earlier instance is complete:
 * only claimed parts are waited for, never a thread that has not come back yet. A
 * thread that another process has preempted therefore delays the others only when it
 * is preempted holding a part; with a barrier, every barrier waits for it.
 *
 * Waiting spins for `spin` pause instructions, then sleeps on a futex (Linux; spinning
 * only elsewhere). A spinning waiter burns the core its preempted sibling needs, while
 * short waits on an idle machine still end in the spin (the spin count is a thread
 * policy: relumlp/_threads.py). */
#ifndef RELUMLP_SEQUENCER_H
#define RELUMLP_SEQUENCER_H

#if defined(_OPENMP) && defined(__linux__)
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#define RELUMLP_FUTEX_WAIT 1
#endif

#if defined(__x86_64__) || defined(__i386__)
#define RELUMLP_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define RELUMLP_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define RELUMLP_CPU_RELAX() ((void) 0)
#endif

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
    int spin;                /* pause instructions before sleeping */
} relumlp_seq;

static inline void relumlp_seq_init(relumlp_seq* s, int spin) {
    s->claim = 0;
    s->done = 0;
    s->waiters = 0;
    s->spin = spin;
}

static inline int relumlp_seq_claim(relumlp_seq* s) {
    return (int) RELUMLP_FETCH_ADD(&s->claim, 1);
}

/* Wait until at least `target` tickets are done: spin briefly, then sleep. */
static inline void relumlp_seq_wait(relumlp_seq* s, int target) {
    int i, v;
    for (i = 0; i < s->spin; i++) {
        if ((int) RELUMLP_LOAD(&s->done) >= target) return;
        RELUMLP_CPU_RELAX();
    }
    for (;;) {
        v = (int) RELUMLP_LOAD(&s->done);
        if (v >= target) return;
#ifdef RELUMLP_FUTEX_WAIT
        RELUMLP_FETCH_ADD(&s->waiters, 1);
        syscall(SYS_futex, &s->done, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
        RELUMLP_FETCH_ADD(&s->waiters, -1);
#else
        RELUMLP_CPU_RELAX();
#endif
    }
}

static inline void relumlp_seq_done(relumlp_seq* s) {
    RELUMLP_FETCH_ADD(&s->done, 1);
#ifdef RELUMLP_FUTEX_WAIT
    if (RELUMLP_LOAD(&s->waiters) > 0)
        syscall(SYS_futex, &s->done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
}

#endif /* RELUMLP_SEQUENCER_H */
