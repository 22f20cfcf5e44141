/* cnt[j] += (z[j] <= 0): the per-unit counts behind dead-unit statistics, on the bias +
 * activation pass. In C because GCC does not vectorise the double-compare-to-int64
 * count for baseline x86-64 (the extension is compiled with -fno-strict-aliasing, as
 * Python is), leaving a scalar read-modify-write per element. With SSE2 (every x86-64)
 * the compare mask (all ones where z <= 0, i.e. -1) is subtracted from two counters at
 * a time. */
#ifndef RELUMLP_COUNT_H
#define RELUMLP_COUNT_H

#include <stddef.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static inline void relumlp_count_nonpos_d(const double* z, long long* cnt, ptrdiff_t m) {
    ptrdiff_t j = 0;
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

static inline void relumlp_count_nonpos_s(const float* __restrict z,
                                          long long* __restrict cnt, ptrdiff_t m) {
    ptrdiff_t j;
    for (j = 0; j < m; j++) cnt[j] += (z[j] <= 0);
}

#endif /* RELUMLP_COUNT_H */
