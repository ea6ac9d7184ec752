/* Per-run limits: the table of their defaults, options and causes, and the one check every caller
 * makes (run-limit.h). */

#include "daemon/run-limit.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon/manager.h"
#include "daemon/store.h"

typedef struct RunLimitInfo {
        const char *option;
        const char *what; /* "pending activities", for messages */
        const char *cause;
        uint64_t default_value;
        int (*count)(Store *s, const char *run_id);
} RunLimitInfo;

static const RunLimitInfo run_limits[_RUN_LIMIT_MAX] = {
        /* Temporal's limit.numPendingActivities.error */
        [RUN_LIMIT_PENDING_ACTIVITIES] = { "max-pending-activities", "pending activities",
                                           "PendingActivitiesLimitExceeded", 2000,
                                           store_activities_count },
        /* limit.numPendingChildExecutions.error */
        [RUN_LIMIT_PENDING_CHILDREN] = { "max-pending-children", "pending child workflows",
                                         "PendingChildWorkflowsLimitExceeded", 2000,
                                         store_children_count },
        /* history.maximumSignalsPerExecution */
        [RUN_LIMIT_SIGNALS] = { "max-signals-per-run", "signals", "SignalsLimitExceeded", 10000,
                                store_signals_count },
};

uint64_t run_limit_default(RunLimit l) {
        assert(l >= 0 && l < _RUN_LIMIT_MAX);
        return run_limits[l].default_value;
}

const char *run_limit_option(RunLimit l) {
        assert(l >= 0 && l < _RUN_LIMIT_MAX);
        return run_limits[l].option;
}

const char *run_limit_cause(RunLimit l) {
        assert(l >= 0 && l < _RUN_LIMIT_MAX);
        return run_limits[l].cause;
}

RunLimit run_limit_from_option(const char *option) {
        for (RunLimit l = 0; l < _RUN_LIMIT_MAX; l++)
                if (strcmp(run_limits[l].option, option) == 0)
                        return l;
        return _RUN_LIMIT_INVALID;
}

int run_limit_check(
        Manager *m, const RunRow *run, RunLimit l, uint64_t adding, char *err, size_t errlen) {
        uint64_t limit;
        int n;

        assert(l >= 0 && l < _RUN_LIMIT_MAX);
        limit = m->cfg.run_limits[l]; /* manager_new() filled in the defaults */
        n = run_limits[l].count(m->store, run->run_id);
        if (n < 0)
                return n;
        if ((uint64_t) n + adding <= limit)
                return 0;
        snprintf(err, errlen,
                 "workflow '%s' would have %" PRIu64 " %s; the limit is %" PRIu64
                 " (durabled --%s)",
                 run->workflow_id, (uint64_t) n + adding, run_limits[l].what, limit,
                 run_limits[l].option);
        return -ENOBUFS;
}
