/* Latency samples and percentiles; see stats.h. */

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "bench/stats.h"

int samples_init(Samples *s, size_t n) {
        uint64_t *v = malloc((n ? n : 1) * sizeof(uint64_t));

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                v[i] = SAMPLE_NONE;
        *s = (Samples){ .usec = v, .n = n };
        return 0;
}

void samples_done(Samples *s) {
        free(s->usec);
        *s = (Samples){};
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

void samples_finish(Samples *s) {
        size_t k = 0;

        for (size_t i = 0; i < s->n; i++)
                if (s->usec[i] != SAMPLE_NONE)
                        s->usec[k++] = s->usec[i];
        s->n = k;
        qsort(s->usec, s->n, sizeof(uint64_t), cmp_u64);
        s->sorted = true;
}

uint64_t samples_percentile(const Samples *s, double q) {
        size_t rank;

        if (!s->sorted || s->n == 0)
                return 0;
        rank = (size_t) ceil(q * (double) s->n);
        if (rank < 1)
                rank = 1;
        if (rank > s->n)
                rank = s->n;
        return s->usec[rank - 1];
}
