#pragma once
/* Samples: a fixed array of latencies, one slot per iteration, written by whichever client loop
 * ran that iteration (slots are disjoint, so no lock is needed). Slots never written stay
 * SAMPLE_NONE. Percentiles are nearest-rank over the sorted samples, no interpolation. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SAMPLE_NONE UINT64_MAX

typedef struct Samples {
        uint64_t *usec;
        size_t n;     /* slots (before samples_finish), then valid samples */
        bool sorted;
} Samples;

int samples_init(Samples *s, size_t n);
void samples_done(Samples *s);
/* Drops unwritten slots and sorts; call once, after every writer has finished. */
void samples_finish(Samples *s);
/* The nearest-rank percentile @q (0 < q <= 1) of finished samples; 0 when there are none. */
uint64_t samples_percentile(const Samples *s, double q);
