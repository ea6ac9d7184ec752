#pragma once
/* Per-run limits (DESIGN.md §10): how much one run may hold at once, so that one workflow cannot
 * grow the daemon without bound. Each limit has Temporal's default (SEMANTICS.md b.16), a durabled
 * option that changes it (ManagerConfig.run_limits) and a counter read from the store, so a limit
 * holds across restarts without any state of its own.
 *
 * The caller decides what crossing a limit does (documented in durabled(8), LIMITS):
 *   pending activities  the workflow task that schedules one too many fails
 *                       (PendingActivitiesLimitExceeded), nothing of it is written;
 *   pending children    the child's start fails (StartChildWorkflowExecutionFailed,
 *                       PendingChildWorkflowsLimitExceeded);
 *   signals per run     SignalWorkflow (socket, D-Bus, signal-with-start) answers
 *                       resource_exhausted. */

#include <stddef.h>
#include <stdint.h>

typedef struct Manager Manager;
typedef struct RunRow RunRow;

typedef enum RunLimit {
        RUN_LIMIT_PENDING_ACTIVITIES,
        RUN_LIMIT_PENDING_CHILDREN,
        RUN_LIMIT_SIGNALS,
        _RUN_LIMIT_MAX,
        _RUN_LIMIT_INVALID = -22,
} RunLimit;

/* Temporal's default of @l (limit.numPendingActivities.error, ...). */
uint64_t run_limit_default(RunLimit l);
/* The durabled option that sets @l, without dashes: "max-pending-activities". */
const char *run_limit_option(RunLimit l);
/* The cause recorded when @l is crossed: "PendingActivitiesLimitExceeded". */
const char *run_limit_cause(RunLimit l);
/* The limit whose option is @option, or _RUN_LIMIT_INVALID. */
RunLimit run_limit_from_option(const char *option);

/* 0 when @run may take @adding more of what @l counts (what the store holds now plus @adding
 * stays within the configured limit); -ENOBUFS (resource_exhausted) with a sentence naming the
 * limit and its option in @err when not; another negative errno when the store fails. */
int run_limit_check(
        Manager *m, const RunRow *run, RunLimit l, uint64_t adding, char *err, size_t errlen);
