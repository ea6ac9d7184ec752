/* Standalone activities (Temporal's "standalone activities", a durable systemd-run): one activity
 * of any type run outside a workflow, with its retry policy, timeouts and limits.
 *
 * A standalone activity is a run of the reserved workflow type HISTORY_STANDALONE_TYPE whose
 * workflow id is the activity id, so that everything a run has comes for free: durability, the
 * id policy, GetResult (--wait), DescribeWorkflow, GetHistory, TerminateWorkflow and access
 * control. It never has a workflow task. Its history is
 *
 *   WorkflowExecutionStarted, ActivityTaskScheduled, [ActivityTaskCancelRequested],
 *   ActivityTaskStarted, ActivityTask{Completed|Failed|TimedOut|Canceled},
 *   WorkflowExecution{Completed|Failed|TimedOut|Canceled}
 *
 * where the last event mirrors the activity's: what a workflow of one activity would record.
 * CancelWorkflow asks the activity to cancel (KillSignal for a process activity). */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/activity-unit.h"
#include "daemon/activity.h"
#include "daemon/history-internal.h"
#include "daemon/history.h"

#define STANDALONE_QUEUE_DEFAULT "durabled.standalone"

bool history_is_standalone(const RunRow *run) {
        return streq(run->workflow_type, HISTORY_STANDALONE_TYPE);
}

static int first_activity(const ActivityRow *a, void *userdata) {
        *(uint64_t *) userdata = a->scheduled_id;
        return 0; /* a standalone run has only one */
}

/* The workflow's close event that mirrors the activity's, then the run closes. */
static int close_like_activity(Manager *m, RunRow *run, EventType type, const msgpack_object *at) {
        const msgpack_object *o;
        Blob result = {}, failure = {};
        WorkflowStatus status;
        EventType ev;
        msgpack_packer *pk;
        Attrs a;
        int r = 0;

        pk = attrs_begin(&a, 2);
        switch (type) {
        case EVENT_ACTIVITY_TASK_COMPLETED:
                o = msg_get(at, "result");
                if (o && o->type == MSGPACK_OBJECT_BIN)
                        r = blob_from_bin(&(MsgBin){ o->via.bin.ptr, o->via.bin.size }, &result);
                ev = EVENT_WORKFLOW_EXECUTION_COMPLETED;
                status = WORKFLOW_STATUS_COMPLETED;
                (void) pack_kv_payload(pk, "result", result.ptr, result.size);
                break;
        case EVENT_ACTIVITY_TASK_CANCELED:
                r = failure_blob(&failure, "Canceled", NULL, true, "activity canceled");
                ev = EVENT_WORKFLOW_EXECUTION_CANCELED;
                status = WORKFLOW_STATUS_CANCELED;
                (void) msg_pack_str(pk, "details");
                o = msg_get(at, "details");
                (void) (o ? msgpack_pack_object(pk, *o) : msgpack_pack_nil(pk));
                break;
        default: /* failed, timed out: the activity's failure */
                r = blob_from_object(msg_get(at, "failure"), &failure);
                ev = type == EVENT_ACTIVITY_TASK_TIMED_OUT ? EVENT_WORKFLOW_EXECUTION_TIMED_OUT
                                                           : EVENT_WORKFLOW_EXECUTION_FAILED;
                status = type == EVENT_ACTIVITY_TASK_TIMED_OUT ? WORKFLOW_STATUS_TIMED_OUT
                                                               : WORKFLOW_STATUS_FAILED;
                (void) pack_kv_raw(pk, "failure", &failure);
                break;
        }
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", 0);
        if (r >= 0)
                r = append_event(m, run, ev, &a, NULL);
        attrs_done(&a);
        if (r >= 0)
                r = history_close_run(m, run, status, &result, &failure);
        free(result.ptr);
        free(failure.ptr);
        return r;
}

int history_standalone_event(
        Manager *m, RunRow *run, EventType type, const void *attrs, size_t size) {
        msgpack_unpacked u;
        size_t off = 0;
        uint64_t sched = 0;
        char err[256];
        MsgBuf b;
        int r = 0;

        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, attrs, size, &off) != MSGPACK_UNPACK_SUCCESS) {
                msgpack_unpacked_destroy(&u);
                return -EBADMSG;
        }
        switch (type) {
        case EVENT_ACTIVITY_TASK_COMPLETED:
        case EVENT_ACTIVITY_TASK_FAILED:
        case EVENT_ACTIVITY_TASK_TIMED_OUT:
        case EVENT_ACTIVITY_TASK_CANCELED:
                r = close_like_activity(m, run, type, &u.data);
                break;
        case EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
                /* Cancelling the run cancels its activity (RequestCancelActivityTask). */
                r = store_activities_foreach(m->store, run->run_id, first_activity, &sched);
                if (r < 0 || !sched)
                        break;
                msgbuf_init(&b);
                (void) msgpack_pack_map(&b.pk, 1);
                (void) msg_pack_kv_uint(&b.pk, "scheduled_event_id", sched);
                r = msgbuf_error(&b);
                if (r >= 0) {
                        msgpack_unpacked c;
                        size_t coff = 0;

                        msgpack_unpacked_init(&c);
                        (void) msgpack_unpack_next(&c, b.sb.data, b.sb.size, &coff);
                        r = history_apply_request_cancel_activity(m, run, &c.data, 0, false, err,
                                                                  sizeof(err));
                        msgpack_unpacked_destroy(&c);
                }
                msgbuf_done(&b);
                break;
        default: /* signals and the like: recorded, nothing runs them */
                break;
        }
        msgpack_unpacked_destroy(&u);
        return r < 0 ? r : 0;
}

static const MsgField standalone_fields[] = {
        { "activity_id", MSG_STR, offsetof(StandaloneRequest, activity_id), true, NAME_MAX_LEN },
        { "activity_type", MSG_STR, offsetof(StandaloneRequest, activity_type), true,
          NAME_MAX_LEN },
        { "task_queue", MSG_STR, offsetof(StandaloneRequest, task_queue), false, NAME_MAX_LEN },
        { "input", MSG_BIN, offsetof(StandaloneRequest, input), false, PAYLOAD_SIZE_MAX },
        { "schedule_to_close_usec", MSG_UINT, offsetof(StandaloneRequest, schedule_to_close_usec) },
        { "start_to_close_usec", MSG_UINT, offsetof(StandaloneRequest, start_to_close_usec) },
        { "heartbeat_usec", MSG_UINT, offsetof(StandaloneRequest, heartbeat_usec) },
        { "retry_policy", MSG_MAP, offsetof(StandaloneRequest, retry_policy) },
        { "request_id", MSG_STR, offsetof(StandaloneRequest, request_id), false, NAME_MAX_LEN },
        {},
};

const MsgField *history_standalone_fields(void) {
        return standalone_fields;
}

/* The ScheduleActivityTask command of the request, as a workflow would send it. */
static int pack_command(const StandaloneRequest *req, const char *queue, MsgBuf *b) {
        msgpack_packer *pk = &b->pk;

        (void) msgpack_pack_map(pk, 7 + (req->retry_policy ? 1 : 0));
        (void) msg_pack_kv_str(pk, "activity_id", req->activity_id);
        (void) msg_pack_kv_str(pk, "activity_type", req->activity_type);
        (void) msg_pack_kv_str(pk, "task_queue", queue);
        (void) msg_pack_str(pk, "input");
        (void) (req->input.ptr ? msg_pack_bin(pk, req->input.ptr, req->input.size)
                               : msgpack_pack_nil(pk));
        (void) msg_pack_kv_uint(pk, "schedule_to_close_usec", req->schedule_to_close_usec);
        (void) msg_pack_kv_uint(pk, "start_to_close_usec", req->start_to_close_usec);
        (void) msg_pack_kv_uint(pk, "heartbeat_usec", req->heartbeat_usec);
        if (req->retry_policy) {
                (void) msg_pack_str(pk, "retry_policy");
                (void) msgpack_pack_object(pk, *req->retry_policy);
        }
        return msgbuf_error(b);
}

int history_start_standalone(Manager *m,
                             const StandaloneRequest *req,
                             char ret_run_id[static 37],
                             bool *ret_started,
                             ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        const ActivityUnit *u = NULL;
        const char *queue = req->task_queue;
        msgpack_unpacked cmd;
        size_t off = 0;
        char err[512] = "";
        MsgBuf b;
        int r;

        if (!queue) {
                /* The unit's queue when it names one, so that the unit takes the activity. */
                u = supervisor_unit(m, req->activity_type, NULL);
                queue = u && u->task_queue ? u->task_queue : STANDALONE_QUEUE_DEFAULT;
        }
        msgbuf_init(&b);
        r = pack_command(req, queue, &b);
        msgpack_unpacked_init(&cmd);
        if (r >= 0 &&
            msgpack_unpack_next(&cmd, b.sb.data, b.sb.size, &off) != MSGPACK_UNPACK_SUCCESS)
                r = -ENOMEM;
        if (r < 0)
                goto finish;
        /* The same checks as a workflow's command, before anything is written. */
        run.workflow_id = (char *) req->activity_id;
        run.task_queue = (char *) queue;
        r = history_apply_schedule_activity(m, &run, &cmd.data, 0, cmd.zone, true, err,
                                            sizeof(err));
        run.workflow_id = run.task_queue = NULL;
        if (r < 0) {
                r = api_error_set(e, r, "%s", err);
                goto finish;
        }
        r = history_start_workflow(m,
                                   &(StartRequest){ .workflow_id = req->activity_id,
                                                    .workflow_type = HISTORY_STANDALONE_TYPE,
                                                    .task_queue = queue,
                                                    .input = req->input,
                                                    .request_id = req->request_id,
                                                    .caller_admin = req->caller_admin,
                                                    .standalone = true },
                                   ret_run_id, ret_started, e);
        if (r < 0 || !*ret_started)
                goto finish;
        r = store_run_get(m->store, ret_run_id, &run);
        if (r >= 0)
                r = history_apply_schedule_activity(m, &run, &cmd.data, 0, cmd.zone, false, err,
                                                    sizeof(err));
        if (r >= 0)
                r = store_run_update(m->store, &run);
        if (r < 0 && err[0])
                r = api_error_set(e, r, "%s", err);
finish:
        msgpack_unpacked_destroy(&cmd);
        msgbuf_done(&b);
        return r;
}
