#pragma once
/* A token bucket as GCRA (the generic cell rate algorithm): at most `rate` starts per
 * `period_usec`, at most `burst` of them back to back after a quiet time. For any two starts the
 * starts between them, both included, are at most burst + elapsed x rate / period, exactly: times
 * are kept in usec x rate. A zeroed bucket is full. Used by task queue limits (flow.h) and by the
 * RateLimit= of activity units (activity.c); the owner keeps the limits. */

#include <stdint.h>

typedef struct RateBucket {
        unsigned __int128 tat; /* the theoretical arrival time, in usec x rate */
} RateBucket;

/* 0 when a start at @now conforms (always with @rate 0), else the earliest time one does. */
uint64_t rate_bucket_next(
        const RateBucket *b, uint32_t rate, uint64_t period_usec, uint32_t burst, uint64_t now);
/* A start at or before @now takes its token. No-op when @rate is 0. */
void rate_bucket_take(RateBucket *b, uint32_t rate, uint64_t period_usec, uint64_t now);
