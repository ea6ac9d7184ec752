/* Operators' pause and unpause of a run (Temporal's PauseWorkflowExecution, SEMANTICS.md b.0):
 * a paused run stays open and keeps recording what happens to it (signals, cancel requests,
 * timers that fire, activity results), but nothing of it runs until it is unpaused.
 *
 * The one mechanism: a paused run holds no task in the task set (taskset.h). Pausing takes its
 * queued workflow task and activity tasks out; while it is paused, the workflow tasks and activity
 * attempts it schedules are recorded (rows, WorkflowTaskScheduled) but not queued
 * (history_queue_workflow_task(), history_queue_activity_task()); the store leaves them out when
 * it rebuilds the task set at start-up; unpausing queues what is scheduled. A workflow task or an
 * activity attempt already started when the run is paused finishes: a worker's is recorded when
 * it answers; a process activity's processes are frozen with the cgroup freezer right after the
 * commit and thawed after the unpause's (activity.c, reconcile()). Their timeouts keep counting:
 * a frozen attempt that overruns its start-to-close timeout is killed and retried after the
 * unpause, as any attempt that timed out.
 *
 * The events WorkflowExecutionPaused and WorkflowExecutionUnpaused {reason, identity} go into the
 * history like external events (buffered while a workflow task is in flight) but schedule no
 * workflow task of their own: the workflow code has nothing to react to. The paused flag is a
 * column of runs (store_run_set_paused()), so a daemon killed while a run is paused restarts with
 * it paused. */

#include <errno.h>
#include <string.h>

#include "daemon/history-internal.h"
#include "daemon/history.h"

static int append_pause_event(Manager *m, RunRow *run, EventType type, const PauseRequest *req) {
        msgpack_packer *pk;
        Attrs a;
        int r;

        pk = attrs_begin(&a, 2);
        (void) msg_pack_kv_str(pk, "reason", req->reason ? req->reason : "");
        (void) msg_pack_kv_str(pk, "identity", req->identity ? req->identity : "");
        r = msgbuf_error(&a.buf);
        if (r >= 0) /* more_follows: no workflow task for it */
                r = append_external_raw(m, run, type, a.buf.sb.data, a.buf.sb.size, false, true);
        attrs_done(&a);
        if (r < 0)
                return r;
        r = store_run_set_paused(m->store, run->run_id, type == EVENT_WORKFLOW_EXECUTION_PAUSED);
        if (r < 0)
                return r;
        run->paused = type == EVENT_WORKFLOW_EXECUTION_PAUSED;
        manager_run_changed(m, run->run_id, false); /* D-Bus Status, also when buffered */
        return store_run_update(m->store, run);
}

static int dequeue_activity(const ActivityRow *act, void *userdata) {
        Manager *m = userdata;

        if (act->state != ACTIVITY_SCHEDULED)
                return 0;
        /* The task is in one of the two sets, by the activity's route (history-activity.c). */
        (void) store_task_delete(m->store, TASK_ACTIVITY, act->run_id, act->scheduled_id);
        return store_task_delete(m->store, TASK_PROCESS, act->run_id, act->scheduled_id);
}

typedef struct RequeueCtx {
        Manager *m;
        const RunRow *run;
} RequeueCtx;

static int requeue_activity(const ActivityRow *act, void *userdata) {
        RequeueCtx *c = userdata;

        if (act->state != ACTIVITY_SCHEDULED)
                return 0;
        return history_queue_activity_task(c->m, c->run, act);
}

int history_pause(Manager *m, const char *run_id, const PauseRequest *req, ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        int r;

        r = load_open_run(m, run_id, &run, e);
        if (r < 0)
                return r;
        if (run.paused)
                return api_error_set(e, -ESTALE, "workflow '%s' is paused already",
                                     run.workflow_id);
        r = append_pause_event(m, &run, EVENT_WORKFLOW_EXECUTION_PAUSED, req);
        if (r < 0)
                return r;
        if (run.wft_state == WFT_SCHEDULED)
                (void) store_task_delete(m->store, TASK_WORKFLOW, run.run_id, run.wft_scheduled_id);
        r = store_activities_foreach(m->store, run.run_id, dequeue_activity, m);
        if (r < 0)
                return r;
        log_run(LOG_INFO, &run, "Workflow '%s' paused: %s", run.workflow_id,
                req->reason && *req->reason ? req->reason : "no reason given");
        return 0;
}

int history_unpause(Manager *m, const char *run_id, const PauseRequest *req, ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        int r;

        r = load_open_run(m, run_id, &run, e);
        if (r < 0)
                return r;
        if (!run.paused)
                return api_error_set(e, -ESTALE, "workflow '%s' is not paused", run.workflow_id);
        r = append_pause_event(m, &run, EVENT_WORKFLOW_EXECUTION_UNPAUSED, req);
        if (r < 0)
                return r;
        if (run.wft_state == WFT_SCHEDULED) {
                r = history_queue_workflow_task(m, &run);
                if (r < 0)
                        return r;
        }
        r = store_activities_foreach(m->store, run.run_id, requeue_activity,
                                     &(RequeueCtx){ m, &run });
        if (r < 0)
                return r;
        log_run(LOG_INFO, &run, "Workflow '%s' unpaused", run.workflow_id);
        return 0;
}

/* ---- one activity ---- */

typedef struct FindActivity {
        const char *activity_id;
        uint64_t scheduled_id;
} FindActivity;

static int find_activity(const ActivityRow *act, void *userdata) {
        FindActivity *f = userdata;

        if (streq(act->activity_id, f->activity_id))
                f->scheduled_id = act->scheduled_id;
        return 0;
}

static const char *const control_names[] = {
        [ACTIVITY_PAUSE] = "paused",
        [ACTIVITY_UNPAUSE] = "unpaused",
        [ACTIVITY_RESET] = "reset",
};

int history_control_activity(Manager *m,
                             const char *run_id,
                             const char *activity_id,
                             ActivityControl what,
                             ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        _cleanup_(activity_row_done) ActivityRow act = {};
        FindActivity f = { activity_id, 0 };
        int r;

        r = load_open_run(m, run_id, &run, e);
        if (r >= 0)
                r = store_activities_foreach(m->store, run.run_id, find_activity, &f);
        if (r >= 0 && f.scheduled_id == 0)
                return api_error_set(e, -ENOENT, "workflow '%s' has no pending activity '%s'",
                                     run.workflow_id, activity_id);
        if (r >= 0)
                r = store_activity_get(m->store, run.run_id, f.scheduled_id, &act);
        if (r < 0)
                return r;
        switch (what) {
        case ACTIVITY_PAUSE:
        case ACTIVITY_UNPAUSE:
                if (act.paused == (what == ACTIVITY_PAUSE))
                        return api_error_set(e, -ESTALE, "activity '%s' is %s", activity_id,
                                             act.paused ? "paused already" : "not paused");
                act.paused = what == ACTIVITY_PAUSE;
                r = store_activity_update(m->store, &act);
                if (r < 0 || act.state != ACTIVITY_SCHEDULED)
                        break;
                if (act.paused)
                        r = dequeue_activity(&act, m);
                else
                        r = history_queue_activity_task(m, &run, &act);
                break;
        case ACTIVITY_RESET:
                if (act.state == ACTIVITY_STARTED)
                        return api_error_set(e, -ESTALE,
                                             "activity '%s' is running: reset it once the "
                                             "attempt has ended (pause it to hold its retry)",
                                             activity_id);
                act.attempt = 1;
                if (act.state == ACTIVITY_BACKOFF)
                        r = history_activity_retry_now(m, &run, &act);
                else
                        r = store_activity_update(m->store, &act);
                break;
        }
        if (r < 0)
                return r;
        manager_run_changed(m, run.run_id, false); /* D-Bus PendingActivities, describe */
        log_run(LOG_INFO, &run, "Activity '%s' of workflow '%s' %s", activity_id, run.workflow_id,
                control_names[what]);
        return 0;
}
