#pragma once
/* Retention: closed runs are deleted, with their history, once they have been closed for longer
 * than the retention (durabled --retention, default 30 days, as Temporal's namespace retention).
 * A sweep on its own timer deletes the oldest expired runs, RETENTION_BATCH per loop pass inside
 * the pass's transaction, and runs again at once while more are due, so the loop keeps serving
 * requests between batches. The timer is armed at the time the oldest closed run expires, or,
 * without closed runs, one retention from now (no run closing later can expire sooner). */

#include <stdint.h>

#include "daemon/manager.h"

#define RETENTION_DEFAULT_USEC (30ULL * 24 * 3600 * 1000000)
#define RETENTION_BATCH 32

/* Arms the sweep (the first one runs at once). No-op with retention 0 (keep forever). */
int retention_start(Manager *m);
/* When the oldest closed run expires (absolute, clock.h time); -ENOENT when retention is off
 * or no run is closed. Time skipping (--time-skipping) jumps to it as to a deadline. */
int retention_next_expiry(Manager *m, uint64_t *ret);
/* Re-arms the timer (after the clock moved: clock_skip()). */
void retention_rearm(Manager *m);
/* "30d", "72h", "90m", "10s", "250ms", or "infinity" (0: keep forever) to usec. */
int retention_parse(const char *s, uint64_t *ret_usec);
