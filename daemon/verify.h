#pragma once
/* Verify: runs the history linter (proto/history-lint.h) over runs of the store, for the
 * VerifyHistory operation (durablectl verify) and, in test builds, over every run at a clean stop
 * (DURABLED_EXPENSIVE_CHECKS). It only reads. */

#include <stdint.h>

#include "daemon/store.h"

/* Called for each run whose history breaks a rule: @event_id is the event the problem was found
 * at (0: the end of the history), @problem the linter's sentence. A negative return stops. */
typedef int (*verify_problem_cb)(const RunRow *run,
                                 uint64_t event_id,
                                 const char *problem,
                                 void *userdata);

/* Lints the history of @run. Returns 0 when it is sound, 1 after reporting a problem through @cb,
 * or a negative errno (the store failed, out of memory). */
int verify_run(Store *s, const RunRow *run, verify_problem_cb cb, void *userdata);

typedef struct VerifyStats {
        uint64_t runs;
        uint64_t events;
        uint64_t problems;
} VerifyStats;

/* Lints every run that @f selects (f->limit 0: all of them), adding to @stats. */
int verify_runs(
        Store *s, const RunFilter *f, verify_problem_cb cb, void *userdata, VerifyStats *stats);
