/* Token buckets as GCRA; see ratelimit.h. */

#include "daemon/ratelimit.h"

/* GCRA in units of usec x rate, so that a period of 1 s and a rate of 3 stay exact: a start at
 * @now conforms when tat - (burst - 1) x period <= now x rate. */
uint64_t rate_bucket_next(
        const RateBucket *b, uint32_t rate, uint64_t period_usec, uint32_t burst, uint64_t now) {
        unsigned __int128 slack = (unsigned __int128) (burst ? burst - 1 : 0) * period_usec;
        unsigned __int128 at = b->tat > slack ? b->tat - slack : 0;

        if (!rate || at <= (unsigned __int128) now * rate)
                return 0;
        return (uint64_t) ((at + rate - 1) / rate);
}

void rate_bucket_take(RateBucket *b, uint32_t rate, uint64_t period_usec, uint64_t now) {
        unsigned __int128 t = (unsigned __int128) now * rate;

        if (rate)
                b->tat = (b->tat > t ? b->tat : t) + period_usec;
}
