/* DeleteWorkflow (Temporal's DeleteWorkflowExecution, SEMANTICS.md b.10): a run and its history
 * go away for good. An open run is terminated first, in the same transaction
 * (WorkflowExecutionTerminated, its children follow their parent close policy, its parent learns
 * the outcome), so that what the run started is wound down exactly as a terminate does; then its
 * rows (history, pending state, visibility) are deleted like those of a run past its retention
 * (store_run_delete()). Whoever waited for the run (GetResult, GetHistory with wait) is answered
 * not_found after the commit (waiter.c). Other runs of the workflow id are left alone. */

#include <errno.h>

#include "daemon/history-internal.h"
#include "daemon/history.h"

int history_delete(Manager *m, const char *run_id, const char *reason, ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        int r;

        r = store_run_get(m->store, run_id, &run);
        if (r == -ENOENT)
                return api_error_set(e, -ENOENT, "run %s not found", run_id);
        if (r < 0)
                return r;
        if (run.status == WORKFLOW_STATUS_RUNNING) {
                r = history_terminate(m, run_id, reason && *reason ? reason : "deleted", NULL, e);
                if (r < 0)
                        return r;
        }
        r = store_run_delete(m->store, run_id);
        if (r < 0)
                return r;
        manager_run_changed(m, run_id, true); /* its waiters learn it is gone */
        log_run(LOG_INFO, &run, "Workflow '%s' run %s deleted%s%s", run.workflow_id, run.run_id,
                reason && *reason ? ": " : "", reason ? reason : "");
        return 0;
}
