/* The history engine: runs (starts and their policies), workflow tasks, commands and timers
 * (activities are in history-activity.c, child workflows in history-child.c, closing runs and
 * their chains in history-chain.c); see history.h for the state machines and doc/protocol.md for
 * the events.
 *
 * Every operation follows one shape: load the run (and activity) rows, check the request against
 * their state, append events, write the rows back. Event ids come from RunRow.next_event_id and
 * the run row is written in the same transaction as the events, so ids stay dense.
 *
 * "External" events (activity results, timer firings, signals, cancel requests) go through
 * append_external(): while a workflow task is STARTED they are buffered, so that no event ever
 * lands between a WorkflowTaskStarted and the event that closes that task; otherwise they are
 * appended and a workflow task is scheduled for them. */

#include "daemon/history.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"
#include "daemon/clock.h"
#include "daemon/history-internal.h"
#include "daemon/taskq.h"
#include "proto/event.h"

msgpack_packer *attrs_begin(Attrs *a, size_t nfields) {
        msgbuf_init(&a->buf);
        (void) msgpack_pack_map(&a->buf.pk, nfields);
        return &a->buf.pk;
}

void attrs_done(Attrs *a) {
        msgbuf_done(&a->buf);
}

int pack_kv_payload(msgpack_packer *pk, const char *key, const void *p, size_t n) {
        (void) msg_pack_str(pk, key);
        if (!p)
                return msgpack_pack_nil(pk);
        return msg_pack_bin(pk, p, n);
}

/* Payload or failure blobs stored as-is (msgpack bytes) are packed raw; absent ones as nil. */
int pack_kv_raw(msgpack_packer *pk, const char *key, const Blob *b) {
        (void) msg_pack_str(pk, key);
        if (!b->ptr)
                return msgpack_pack_nil(pk);
        return msg_pack_raw(pk, b->ptr, b->size);
}

int blob_from_object(const msgpack_object *o, Blob *ret) {
        MsgBuf b;

        *ret = (Blob){};
        if (!o)
                return 0;
        msgbuf_init(&b);
        (void) msgpack_pack_object(&b.pk, *o);
        if (msgbuf_error(&b) < 0) {
                msgbuf_done(&b);
                return -ENOMEM;
        }
        ret->ptr = b.sb.data; /* steal */
        ret->size = b.sb.size;
        return 0;
}

int blob_from_bin(const MsgBin *bin, Blob *ret) {
        return blob_copy(bin ? bin->ptr : NULL, bin ? bin->size : 0, ret);
}

/* A failure map built by the daemon itself (timeouts, bad commands). */
int failure_blob(Blob *ret,
                 const char *type,
                 const char *timeout_type,
                 bool non_retryable,
                 const char *fmt,
                 ...) {
        char msg[512];
        va_list ap;
        MsgBuf b;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        msgbuf_init(&b);
        (void) msgpack_pack_map(&b.pk, timeout_type ? 4 : 3);
        (void) msg_pack_kv_str(&b.pk, "message", msg);
        (void) msg_pack_kv_str(&b.pk, "type", type);
        (void) msg_pack_kv_bool(&b.pk, "non_retryable", non_retryable);
        if (timeout_type)
                (void) msg_pack_kv_str(&b.pk, "timeout_type", timeout_type);
        if (msgbuf_error(&b) < 0) {
                msgbuf_done(&b);
                return -ENOMEM;
        }
        *ret = (Blob){ b.sb.data, b.sb.size };
        return 0;
}

/* ---- appending ---- */

static int append_event_raw(
        Manager *m, RunRow *run, EventType type, const void *attrs, size_t size, uint64_t *ret_id) {
        uint64_t id = run->next_event_id;
        int r;

        r = store_event_insert(m->store, run->run_id, id, type, clock_now(), m->actor_uid, attrs,
                               size);
        if (r < 0)
                return r;
        run->next_event_id++;
        if (id == 1)
                manager_run_started(m, run->run_id); /* D-Bus WorkflowStarted */
        manager_run_changed(m, run->run_id, false);  /* GetHistory long polls */
        if (ret_id)
                *ret_id = id;
        return 0;
}

int append_event(Manager *m, RunRow *run, EventType type, Attrs *a, uint64_t *ret_id) {
        int r = msgbuf_error(&a->buf);
        if (r < 0)
                return r;
        return append_event_raw(m, run, type, a->buf.sb.data, a->buf.sb.size, ret_id);
}

/* Appends an event whose attributes lack started_event_id: it is the id of the event appended
 * just before (an activity's ActivityTaskStarted). */
static int append_linked(Manager *m, RunRow *run, EventType type, const void *attrs, size_t size) {
        MsgBuf b;
        int r;

        msgbuf_init(&b);
        r = msg_map_add_uint(&b, attrs, size, "started_event_id", run->next_event_id - 1);
        if (r >= 0)
                r = append_event_raw(m, run, type, b.sb.data, b.sb.size, NULL);
        msgbuf_done(&b);
        return r;
}

int schedule_workflow_task(Manager *m, RunRow *run) {
        Attrs a;
        msgpack_packer *pk;
        uint64_t id;
        int r;

        if (run->wft_state != WFT_NONE || run->status != WORKFLOW_STATUS_RUNNING)
                return 0;
        if (run->wft_attempt == 0)
                run->wft_attempt = 1;
        pk = attrs_begin(&a, 3);
        (void) msg_pack_kv_str(pk, "task_queue", run->task_queue);
        (void) msg_pack_kv_uint(pk, "start_to_close_usec", run->task_timeout_usec);
        (void) msg_pack_kv_uint(pk, "attempt", run->wft_attempt);
        r = append_event(m, run, EVENT_WORKFLOW_TASK_SCHEDULED, &a, &id);
        attrs_done(&a);
        if (r < 0)
                return r;
        run->wft_state = WFT_SCHEDULED;
        run->wft_scheduled_id = id;
        return history_queue_workflow_task(m, run);
}

int history_queue_workflow_task(Manager *m, const RunRow *run) {
        int r;

        assert(run->wft_state == WFT_SCHEDULED);
        if (run->paused) /* history-pause.c queues it on unpause */
                return 0;
        r = store_task_insert(
                m->store, TASK_WORKFLOW, run->task_queue, run->run_id, run->wft_scheduled_id,
                &(TaskPriority){ run->priority, run->fairness_key, run->fairness_weight });
        if (r < 0)
                return r;
        taskq_mark_dirty(m, run->task_queue);
        return 0;
}

/* @more_follows: another event of the same change comes next (an activity's Started before its
 * closing event), so the workflow task is scheduled after that one. */
int append_external_raw(Manager *m,
                        RunRow *run,
                        EventType type,
                        const void *attrs,
                        size_t size,
                        bool link_started,
                        bool more_follows) {
        int r;

        if (run->wft_state == WFT_STARTED)
                return store_buffered_insert(m->store, run->run_id, type, clock_now(), m->actor_uid,
                                             attrs, size, link_started);
        r = link_started ? append_linked(m, run, type, attrs, size)
                         : append_event_raw(m, run, type, attrs, size, NULL);
        if (r < 0 || more_follows)
                return r;
        if (history_is_standalone(run)) /* no workflow code: the daemon reacts itself */
                return history_standalone_event(m, run, type, attrs, size);
        return schedule_workflow_task(m, run);
}

int append_external(Manager *m, RunRow *run, EventType type, Attrs *a, bool link_started) {
        int r = msgbuf_error(&a->buf);
        if (r < 0)
                return r;
        return append_external_raw(m, run, type, a->buf.sb.data, a->buf.sb.size, link_started,
                                   false);
}

typedef struct FlushCtx {
        Manager *m;
        RunRow *run;
        unsigned n;
} FlushCtx;

static int flush_one(EventType type,
                     uint64_t time,
                     uint32_t uid,
                     const void *attrs,
                     size_t size,
                     bool link_started,
                     void *userdata) {
        FlushCtx *f = userdata;
        uint32_t saved = f->m->actor_uid;
        int r;

        f->m->actor_uid = uid; /* the buffered event keeps who caused it */
        r = link_started ? append_linked(f->m, f->run, type, attrs, size)
                         : append_event_raw(f->m, f->run, type, attrs, size, NULL);
        f->m->actor_uid = saved;
        f->n++;
        return r;
}

int drain_buffered_closing(Manager *m, RunRow *run) {
        return store_buffered_drain(m->store, run->run_id, flush_one, &(FlushCtx){ m, run, 0 });
}

/* Moves buffered events into the history (the task they waited for closed) and schedules a
 * workflow task for them. */
static int flush_buffered(Manager *m, RunRow *run) {
        FlushCtx f = { m, run, 0 };
        int r;

        assert(run->wft_state != WFT_STARTED);
        r = store_buffered_drain(m->store, run->run_id, flush_one, &f);
        if (r < 0)
                return r;
        return f.n > 0 ? schedule_workflow_task(m, run) : 0;
}

/* @continued: another run of the chain follows (continue-as-new, a retry). */
int close_run_chain(Manager *m,
                    RunRow *run,
                    WorkflowStatus status,
                    Blob *result,
                    Blob *failure,
                    bool continued) {
        int r;

        if (run->paused) { /* a closed run is not paused: it has nothing left to run */
                r = store_run_set_paused(m->store, run->run_id, false);
                if (r < 0)
                        return r;
                run->paused = false;
        }
        run->status = status;
        run->close_time = clock_now();
        run->wft_state = WFT_NONE;
        taskq_mark_dirty(m, run->task_queue); /* queries waited for the task (taskq.c) */
        free(run->result.ptr);
        free(run->failure.ptr);
        run->result = result ? *result : (Blob){};
        run->failure = failure ? *failure : (Blob){};
        if (result)
                *result = (Blob){};
        if (failure)
                *failure = (Blob){};
        r = store_run_purge_pending(m->store, run->run_id);
        if (r >= 0)
                r = history_children_on_close(m, run, continued);
        if (r < 0)
                return r;
        manager_deadlines_changed(m);
        manager_run_changed(m, run->run_id, true);
        log_run(LOG_DEBUG, run, "Workflow '%s' (%s) closed: %s", run->workflow_id,
                run->workflow_type, workflow_status_to_string(status));
        return 0;
}

static int close_run(Manager *m, RunRow *run, WorkflowStatus status, Blob *result, Blob *failure) {
        return close_run_chain(m, run, status, result, failure, false);
}

int history_close_run(Manager *m, RunRow *run, WorkflowStatus status, Blob *result, Blob *failure) {
        return close_run(m, run, status, result, failure);
}

/* ---- tokens ---- */

int token_pack(msgpack_packer *pk, const char *fmt, ...) {
        char t[128];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(t, sizeof(t), fmt, ap);
        va_end(ap);
        (void) msg_pack_str(pk, "task_token");
        return msg_pack_bin(pk, t, (size_t) n);
}

/* "W/<run id>/<started event id>" or "A/<run id>/<scheduled event id>/<attempt>". */
int token_parse(const MsgBin *token, char kind, char run_id[static 37], uint64_t *a, uint64_t *b) {
        char t[128], k, rid[37];
        unsigned long long x, y = 0;
        int n;

        if (!token->ptr || token->size == 0 || token->size >= sizeof(t))
                return -EINVAL;
        memcpy(t, token->ptr, token->size);
        t[token->size] = 0;
        n = sscanf(t, "%c/%36[0-9a-f-]/%llu/%llu", &k, rid, &x, &y);
        if (k != kind || n < (kind == 'W' ? 3 : 4) || strlen(rid) != 36)
                return -EINVAL;
        memcpy(run_id, rid, 37);
        *a = x;
        if (b)
                *b = y;
        return 0;
}

/* ---- starting and external requests ---- */

/* Run ids are UUIDv7 (RFC 9562): 48 bits of milliseconds, then random bits. Time-ordered keys
 * append to the right edge of the runs and events B-trees instead of landing on random cold
 * leaf pages, which keeps starts fast in a store of millions of runs (bench/README.md, W6). */
void history_new_id(char out[static 37]) {
        run_id_new(out);
}

void run_id_new(char out[static 37]) {
        uint64_t ms = clock_now() / 1000;
        uint8_t u[16];

        if (getrandom(u, sizeof(u), 0) != sizeof(u))
                for (size_t i = 0; i < sizeof(u); i++) /* getrandom() on Linux does not fail */
                        u[i] = (uint8_t) (clock_now() >> (i % 8));
        for (int i = 0; i < 6; i++)
                u[i] = (uint8_t) (ms >> (40 - 8 * i));
        u[6] = (u[6] & 0x0f) | 0x70;
        u[8] = (u[8] & 0x3f) | 0x80;
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                 u[13], u[14], u[15]);
}

/* Creates run @run_id of @req->workflow_id owned by @uid: WorkflowExecutionStarted (naming
 * @continued_from, the run it continues, if any), the signal of a SignalWithStart, and the first
 * workflow task. No other run of the workflow id may be running in the store. */
/* The run's timeout deadlines (Temporal's semantics, SEMANTICS.md b.3): the execution timeout
 * spans the continue-as-new chain (an absolute expiration, inherited), the run timeout this run;
 * only the earlier one needs a deadline. */
int arm_run_timeouts(Manager *m, const RunRow *run, uint64_t expiration, uint64_t run_due) {
        DeadlineKind kind = DEADLINE_RUN_TIMEOUT;
        uint64_t due = run_due;

        if (expiration && (!due || expiration <= due)) {
                due = expiration;
                kind = DEADLINE_EXECUTION_TIMEOUT;
        }
        if (!due)
                return 0;
        manager_deadlines_changed(m);
        return store_deadline_insert(m->store, due, kind, run->run_id, 0, 0, NULL);
}

/* The first workflow task: now, or after start_delay (Temporal's workflow_start_delay). */
static int schedule_first_task(Manager *m, RunRow *run, uint64_t start_delay_usec) {
        if (start_delay_usec == 0)
                return schedule_workflow_task(m, run);
        run->wft_state = WFT_DELAYED;
        manager_deadlines_changed(m);
        return store_deadline_insert(m->store, run->start_time + start_delay_usec,
                                     DEADLINE_START_DELAY, run->run_id, 0, 0, NULL);
}

int create_run(Manager *m,
               const StartRequest *req,
               uint32_t uid,
               const char *continued_from,
               const char run_id[static 37]) {
        _cleanup_(run_row_done) RunRow run = {};
        uint64_t expiration = 0, run_due = 0;
        msgpack_packer *pk;
        Attrs a;
        int r;

        memcpy(run.run_id, run_id, 37);
        run.workflow_id = strdup(req->workflow_id);
        run.workflow_type = strdup(req->workflow_type);
        run.task_queue = strdup(req->task_queue);
        run.request_id = req->request_id ? strdup(req->request_id) : NULL;
        if (!run.workflow_id || !run.workflow_type || !run.task_queue ||
            (req->request_id && !run.request_id))
                return -ENOMEM;
        run.status = WORKFLOW_STATUS_RUNNING;
        run.start_time = clock_now();
        run.uid = uid;
        run.next_event_id = 1;
        run.task_timeout_usec = req->task_timeout_usec
                                        ? MIN(req->task_timeout_usec, TASK_TIMEOUT_MAX_USEC)
                                        : TASK_TIMEOUT_DEFAULT_USEC;
        run.wft_attempt = 1;
        run.priority = req->priority ?: TASK_PRIORITY_DEFAULT;
        run.fairness_weight = task_fairness_weight(req->fairness_weight);
        if (req->fairness_key && *req->fairness_key) {
                run.fairness_key = strdup(req->fairness_key);
                if (!run.fairness_key)
                        return -ENOMEM;
        }
        expiration = req->execution_expiration;
        if (!expiration && req->execution_timeout_usec)
                expiration = run.start_time + req->execution_timeout_usec;
        if (req->run_timeout_usec) {
                run_due = run.start_time + req->run_timeout_usec;
                /* A workflow task cannot outlast its run (Temporal caps it the same way). */
                run.task_timeout_usec = MIN(run.task_timeout_usec, req->run_timeout_usec);
        }
        r = store_run_insert(m->store, &run);
        if (r >= 0)
                r = arm_run_timeouts(m, &run, expiration, run_due);
        if (r < 0)
                return r;

        pk = attrs_begin(&a, 5 + !!req->memo + !!req->search_attributes + (continued_from ? 2 : 0) +
                                     (req->parent ? 3 : 0) + !!req->execution_timeout_usec +
                                     !!expiration + !!req->run_timeout_usec +
                                     !!req->start_delay_usec + (req->retry_policy ? 2 : 0) +
                                     !!req->priority + (run.fairness_key ? 2 : 0));
        (void) msg_pack_kv_str(pk, "workflow_id", run.workflow_id);
        (void) msg_pack_kv_str(pk, "workflow_type", run.workflow_type);
        (void) msg_pack_kv_str(pk, "task_queue", run.task_queue);
        (void) pack_kv_payload(pk, "input", req->input.ptr, req->input.size);
        (void) msg_pack_kv_uint(pk, "task_timeout_usec", run.task_timeout_usec);
        /* As Temporal's WorkflowExecutionStartedEventAttributes: visibility as started. */
        if (req->memo) {
                (void) msg_pack_str(pk, "memo");
                (void) msgpack_pack_object(pk, *req->memo);
        }
        if (req->search_attributes) {
                (void) msg_pack_str(pk, "search_attributes");
                (void) msgpack_pack_object(pk, *req->search_attributes);
        }
        if (continued_from) {
                (void) msg_pack_kv_str(pk, "continued_execution_run_id", continued_from);
                (void) msg_pack_kv_str(pk, "initiator",
                                       req->initiator ? req->initiator : "Workflow");
        }
        if (req->retry_policy) {
                (void) msg_pack_str(pk, "retry_policy");
                (void) msgpack_pack_object(pk, *req->retry_policy);
                (void) msg_pack_kv_uint(pk, "attempt", req->attempt ? req->attempt : 1);
        }
        if (req->parent) {
                (void) msg_pack_kv_str(pk, "parent_workflow_id", req->parent->parent_workflow_id);
                (void) msg_pack_kv_str(pk, "parent_run_id", req->parent->parent_run_id);
                (void) msg_pack_kv_uint(pk, "parent_initiated_event_id", req->parent->initiated_id);
        }
        if (req->execution_timeout_usec)
                (void) msg_pack_kv_uint(pk, "workflow_execution_timeout_usec",
                                        req->execution_timeout_usec);
        if (expiration)
                (void) msg_pack_kv_uint(pk, "workflow_execution_expiration_time", expiration);
        if (req->run_timeout_usec)
                (void) msg_pack_kv_uint(pk, "workflow_run_timeout_usec", req->run_timeout_usec);
        if (req->start_delay_usec)
                (void) msg_pack_kv_uint(pk, "first_workflow_task_backoff_usec",
                                        req->start_delay_usec);
        if (req->priority) /* as Temporal's priority.priority_key */
                (void) msg_pack_kv_uint(pk, "priority", run.priority);
        if (run.fairness_key) {
                (void) msg_pack_kv_str(pk, "fairness_key", run.fairness_key);
                (void) msg_pack_str(pk, "fairness_weight");
                (void) msgpack_pack_double(pk, run.fairness_weight);
        }
        r = append_event(m, &run, EVENT_WORKFLOW_EXECUTION_STARTED, &a, NULL);
        attrs_done(&a);
        if (r < 0)
                return r;
        if (req->signal_name) {
                /* SignalWithStart: the signal is in the history before the first task. */
                pk = attrs_begin(&a, 2);
                (void) msg_pack_kv_str(pk, "signal_name", req->signal_name);
                (void) pack_kv_payload(pk, "input", req->signal_input.ptr, req->signal_input.size);
                r = append_event(m, &run, EVENT_WORKFLOW_EXECUTION_SIGNALED, &a, NULL);
                attrs_done(&a);
                if (r < 0)
                        return r;
        }
        /* A standalone activity's run has no workflow code, hence no workflow task. */
        if (!req->standalone)
                r = schedule_first_task(m, &run, req->start_delay_usec);
        if (r < 0)
                return r;
        r = store_run_update(m->store, &run);
        if (r < 0)
                return r;
        log_run(LOG_DEBUG, &run, "Started workflow '%s' (%s) on queue '%s'", run.workflow_id,
                run.workflow_type, run.task_queue);
        return 0;
}

/* Signal-with-start ends a start delay (Temporal's documented behaviour; a plain signal does not):
 * the first workflow task is scheduled now. */
static int end_start_delay(Manager *m, const char *run_id) {
        _cleanup_(run_row_done) RunRow run = {};
        int r;

        r = store_run_get(m->store, run_id, &run);
        if (r < 0)
                return r;
        if (run.wft_state != WFT_DELAYED)
                return 0;
        run.wft_state = WFT_NONE;
        r = store_deadline_delete(m->store, DEADLINE_START_DELAY, run.run_id, 0);
        if (r >= 0)
                r = schedule_workflow_task(m, &run);
        if (r < 0)
                return r;
        manager_deadlines_changed(m);
        return store_run_update(m->store, &run);
}

/* Id conflict policy Queue: the request is kept (table queued_starts) and answered with the run
 * id its run will have; api-sock.c runs it again when the running run closes. */
static int
queue_start(Manager *m, const StartRequest *req, char ret_run_id[static 37], ApiError *e) {
        QueuedStart q = {
                .workflow_id = (char *) req->workflow_id,
                .uid = m->actor_uid,
                .admin = req->caller_admin,
        };
        int r;

        if (!req->queue_request)
                return api_error_set(e, -EINVAL,
                                     "id conflict policy Queue is only for StartWorkflow");
        run_id_new(q.run_id);
        q.request = (Blob){ (char *) req->queue_request->ptr, req->queue_request->size };
        r = store_queued_start_insert(m->store, &q);
        if (r < 0)
                return r;
        m->queued_starts = true;
        memcpy(ret_run_id, q.run_id, 37);
        if (req->ret_queued)
                *req->ret_queued = true;
        return 1;
}

/* The latest run of the id is running: the conflict policy decides. Returns 1 when the request
 * is answered with that run (or queued), 0 when a new run may start (the old one was
 * terminated). */
static int on_id_conflict(Manager *m,
                          const StartRequest *req,
                          const RunRow *prev,
                          bool visible,
                          char ret_run_id[static 37],
                          ApiError *e) {
        IdConflictPolicy p = req->id_conflict_policy;
        int r;

        if (req->id_reuse_policy == ID_REUSE_TERMINATE_IF_RUNNING)
                p = ID_CONFLICT_TERMINATE_EXISTING;
        if (p == ID_CONFLICT_UNSPECIFIED)
                p = req->signal_name ? ID_CONFLICT_USE_EXISTING : ID_CONFLICT_FAIL;
        if (!visible)
                /* The id is taken, which cannot be hidden; the run itself stays invisible and
                 * untouchable (DESIGN.md §10): no run id, no request_id match. */
                return api_error_set(e, -EEXIST, "workflow id '%s' is in use", req->workflow_id);
        switch (p) {
        case ID_CONFLICT_USE_EXISTING:
                memcpy(ret_run_id, prev->run_id, 37);
                if (req->signal_name) {
                        r = history_signal(m, prev->run_id, req->signal_name, &req->signal_input,
                                           e);
                        if (r >= 0)
                                r = end_start_delay(m, prev->run_id);
                        if (r < 0)
                                return r;
                }
                return 1;
        case ID_CONFLICT_QUEUE:
                return queue_start(m, req, ret_run_id, e);
        case ID_CONFLICT_TERMINATE_EXISTING:
                r = history_terminate(m, prev->run_id,
                                      "terminated by a new start of the same workflow id "
                                      "(TerminateExisting)",
                                      NULL, e);
                return r < 0 ? r : 0;
        default:
                return api_error_set(e, -EEXIST,
                                     "workflow '%s' is already running (run %s; id conflict "
                                     "policy Fail)",
                                     req->workflow_id, prev->run_id);
        }
}

/* The latest run of the id is closed: the reuse policy decides. 0 when a new run may start. */
static int on_id_reuse(const StartRequest *req, const RunRow *prev, bool visible, ApiError *e) {
        const char *status = workflow_status_to_string(prev->status);
        char which[80] = "";

        if (visible)
                (void) snprintf(which, sizeof(which), " (run %s, %s)", prev->run_id, status);
        switch (req->id_reuse_policy) {
        case ID_REUSE_REJECT_DUPLICATE:
                return api_error_set(e, -EEXIST,
                                     "workflow '%s' ran before%s and the id reuse policy "
                                     "RejectDuplicate allows no new run",
                                     req->workflow_id, which);
        case ID_REUSE_ALLOW_DUPLICATE_FAILED_ONLY:
                if (prev->status != WORKFLOW_STATUS_COMPLETED &&
                    prev->status != WORKFLOW_STATUS_CONTINUED_AS_NEW)
                        return 0;
                return api_error_set(e, -EEXIST,
                                     "workflow '%s' completed%s and the id reuse policy "
                                     "AllowDuplicateFailedOnly allows a new run only after a "
                                     "failed, canceled, terminated or timed out one",
                                     req->workflow_id, which);
        default:
                return 0;
        }
}

int history_start_workflow(Manager *m,
                           const StartRequest *req,
                           char ret_run_id[static 37],
                           bool *ret_started,
                           ApiError *e) {
        _cleanup_(run_row_done) RunRow prev = {};
        bool visible;
        int r;

        if (!req->standalone && streq(req->workflow_type, HISTORY_STANDALONE_TYPE))
                return api_error_set(e, -EINVAL,
                                     "workflow type '%s' is reserved for standalone activities "
                                     "(StartActivity)",
                                     HISTORY_STANDALONE_TYPE);
        r = store_run_find_latest(m->store, req->workflow_id, &prev);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                visible = req->caller_admin || prev.uid == m->actor_uid;
                /* A repeated request (Temporal's request_id dedup): the run it started. */
                if (visible && req->request_id && prev.request_id &&
                    streq(req->request_id, prev.request_id)) {
                        memcpy(ret_run_id, prev.run_id, 37);
                        *ret_started = false;
                        return 0;
                }
                if (prev.status == WORKFLOW_STATUS_RUNNING)
                        r = on_id_conflict(m, req, &prev, visible, ret_run_id, e);
                else
                        r = on_id_reuse(req, &prev, visible, e);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret_started = false;
                        return 0;
                }
        }
        if (req->reserved_run_id)
                memcpy(ret_run_id, req->reserved_run_id, 37);
        else
                run_id_new(ret_run_id);
        r = create_run(m, req, m->actor_uid, NULL, ret_run_id);
        if (r < 0)
                return r;
        *ret_started = true;
        return 0;
}

int load_open_run(Manager *m, const char *run_id, RunRow *ret, ApiError *e) {
        int r = store_run_get(m->store, run_id, ret);
        if (r == -ENOENT)
                return api_error_set(e, -ENOENT, "run %s not found", run_id);
        if (r < 0)
                return r;
        if (ret->status != WORKFLOW_STATUS_RUNNING) {
                r = api_error_set(e, -ENOENT, "workflow '%s' is already closed (%s)",
                                  ret->workflow_id, workflow_status_to_string(ret->status));
                run_row_done(ret);
                return r;
        }
        return 0;
}

int history_signal(
        Manager *m, const char *run_id, const char *signal_name, const MsgBin *input, ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        char err[256];
        msgpack_packer *pk;
        Attrs a;
        int r;

        r = load_open_run(m, run_id, &run, e);
        if (r < 0)
                return r;
        if (run.next_event_id - 1 >= m->cfg.history_max_events)
                return api_error_set(e, -ENOBUFS,
                                     "the history of workflow '%s' reached the limit of %" PRIu64
                                     " events (durabled --history-max-events)",
                                     run.workflow_id, m->cfg.history_max_events);
        r = run_limit_check(m, &run, RUN_LIMIT_SIGNALS, 1, err, sizeof(err));
        if (r == -ENOBUFS)
                return api_error_set(e, r, "%s", err);
        if (r < 0)
                return r;
        pk = attrs_begin(&a, 2);
        (void) msg_pack_kv_str(pk, "signal_name", signal_name);
        (void) pack_kv_payload(pk, "input", input->ptr, input->size);
        r = append_external(m, &run, EVENT_WORKFLOW_EXECUTION_SIGNALED, &a, false);
        attrs_done(&a);
        if (r < 0)
                return r;
        return store_run_update(m->store, &run);
}

int history_request_cancel(Manager *m, const char *run_id, const char *reason, ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        msgpack_packer *pk;
        Attrs a;
        int r;

        r = load_open_run(m, run_id, &run, e);
        if (r < 0)
                return r;
        if (run.cancel_requested)
                return 0; /* idempotent, as Temporal */
        run.cancel_requested = true;
        pk = attrs_begin(&a, 1);
        (void) msg_pack_kv_str(pk, "reason", reason ? reason : "");
        r = append_external(m, &run, EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED, &a, false);
        attrs_done(&a);
        if (r < 0)
                return r;
        return store_run_update(m->store, &run);
}

/* Closes the in-flight workflow task so that the history keeps its shape before a forced close. */
int fail_started_task(Manager *m, RunRow *run, const char *cause) {
        msgpack_packer *pk;
        Attrs a;
        int r;

        if (run->wft_state != WFT_STARTED)
                return 0;
        pk = attrs_begin(&a, 3);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", run->wft_scheduled_id);
        (void) msg_pack_kv_uint(pk, "started_event_id", run->wft_started_id);
        (void) msg_pack_kv_str(pk, "cause", cause);
        r = append_event(m, run, EVENT_WORKFLOW_TASK_FAILED, &a, NULL);
        attrs_done(&a);
        if (r < 0)
                return r;
        run->wft_state = WFT_NONE;
        return 0;
}

int history_terminate(
        Manager *m, const char *run_id, const char *reason, const MsgBin *details, ApiError *e) {
        return terminate_linked(m, run_id, reason, details, NULL, e);
}

int terminate_linked(Manager *m,
                     const char *run_id,
                     const char *reason,
                     const MsgBin *details,
                     const char *new_run_id,
                     ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        msgpack_packer *pk;
        Blob failure = {};
        Attrs a;
        int r;

        r = load_open_run(m, run_id, &run, e);
        if (r < 0)
                return r;
        r = fail_started_task(m, &run, "WorkflowTerminated");
        if (r < 0)
                return r;
        /* Buffered events are appended so that nothing acknowledged disappears, but no task is
         * scheduled for them: the run is closing. */
        r = store_buffered_drain(m->store, run.run_id, flush_one, &(FlushCtx){ m, &run, 0 });
        if (r < 0)
                return r;
        pk = attrs_begin(&a, 2 + !!new_run_id);
        (void) msg_pack_kv_str(pk, "reason", reason ? reason : "");
        (void) pack_kv_payload(pk, "details", details ? details->ptr : NULL,
                               details ? details->size : 0);
        if (new_run_id) /* reset: the run that replaces this one (history-reset.c) */
                (void) msg_pack_kv_str(pk, "new_execution_run_id", new_run_id);
        r = append_event(m, &run, EVENT_WORKFLOW_EXECUTION_TERMINATED, &a, NULL);
        attrs_done(&a);
        if (r < 0)
                return r;
        r = failure_blob(&failure, "Terminated", NULL, true, "%s",
                         reason && *reason ? reason : "terminated");
        if (r < 0)
                return r;
        r = close_run(m, &run, WORKFLOW_STATUS_TERMINATED, NULL, &failure);
        free(failure.ptr);
        if (r < 0)
                return r;
        return store_run_update(m->store, &run);
}

/* ---- packing for answers ---- */

typedef struct PackCtx {
        msgpack_packer *pk;
        uint64_t left;
} PackCtx;

static int pack_event(uint64_t event_id,
                      EventType type,
                      uint64_t time,
                      uint32_t uid,
                      const void *attrs,
                      size_t size,
                      void *userdata) {
        PackCtx *c = userdata;
        const char *name = event_type_to_string(type);

        if (c->left == 0)
                return -EUCLEAN; /* more events than next_event_id promised */
        c->left--;
        (void) msgpack_pack_map(c->pk, 5);
        (void) msg_pack_kv_uint(c->pk, "event_id", event_id);
        (void) msg_pack_kv_str(c->pk, "event_type", name ? name : "Unknown");
        (void) msg_pack_kv_uint(c->pk, "time", time);
        (void) msg_pack_kv_uint(c->pk, "uid", uid);
        (void) msg_pack_str(c->pk, "attributes");
        return msg_pack_raw(c->pk, attrs, size);
}

int history_pack_events(Manager *m, const RunRow *run, uint64_t from, msgpack_packer *pk) {
        PackCtx c = { pk, 0 };
        int r;

        if (from < 1)
                from = 1;
        if (from > run->next_event_id)
                from = run->next_event_id;
        c.left = run->next_event_id - from;
        (void) msgpack_pack_array(pk, (size_t) c.left);
        r = store_events_foreach(m->store, run->run_id, from, pack_event, &c);
        if (r < 0)
                return r;
        return c.left == 0 ? 0 : -EUCLEAN; /* a gap: the history is damaged */
}

int history_pack_workflow(const RunRow *run, msgpack_packer *pk) {
        size_t n = 7 + (run->close_time ? 1 : 0) + (run->result.ptr ? 1 : 0) +
                   (run->failure.ptr ? 1 : 0);

        (void) msgpack_pack_map(pk, n);
        (void) msg_pack_kv_str(pk, "workflow_id", run->workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", run->run_id);
        (void) msg_pack_kv_str(pk, "workflow_type", run->workflow_type);
        (void) msg_pack_kv_str(pk, "task_queue", run->task_queue);
        (void) msg_pack_kv_str(pk, "status", workflow_status_to_string(run_row_status(run)));
        (void) msg_pack_kv_uint(pk, "start_time", run->start_time);
        (void) msg_pack_kv_uint(pk, "history_length", run->next_event_id - 1);
        if (run->close_time)
                (void) msg_pack_kv_uint(pk, "close_time", run->close_time);
        if (run->result.ptr)
                (void) msg_pack_kv_bin(pk, "result", run->result.ptr, run->result.size);
        if (run->failure.ptr)
                (void) pack_kv_raw(pk, "failure", &run->failure);
        return 0;
}

/* ---- workflow tasks ---- */

int history_start_workflow_task(Manager *m,
                                const char *run_id,
                                uint64_t scheduled_id,
                                const char *identity,
                                uint64_t conn_serial,
                                msgpack_packer *pk) {
        _cleanup_(run_row_done) RunRow run = {};
        msgpack_packer *apk;
        uint64_t started_id, from;
        Attrs a;
        int r;

        r = store_run_get(m->store, run_id, &run);
        if (r == -ENOENT)
                return -ESTALE;
        if (r < 0)
                return r;
        if (run.status != WORKFLOW_STATUS_RUNNING || run.wft_state != WFT_SCHEDULED ||
            run.wft_scheduled_id != scheduled_id)
                return -ESTALE;

        apk = attrs_begin(&a, 2);
        (void) msg_pack_kv_uint(apk, "scheduled_event_id", scheduled_id);
        (void) msg_pack_kv_str(apk, "identity", identity);
        r = append_event(m, &run, EVENT_WORKFLOW_TASK_STARTED, &a, &started_id);
        attrs_done(&a);
        if (r < 0)
                return r;
        run.wft_state = WFT_STARTED;
        run.wft_started_id = started_id;
        r = store_deadline_insert(m->store, clock_now() + run.task_timeout_usec,
                                  DEADLINE_WFT_TIMEOUT, run.run_id, started_id, 0, NULL);
        if (r < 0)
                return r;
        manager_deadlines_changed(m);

        /* Sticky execution: the connection that completed the last task has the run cached up
         * to sticky_next_id; anyone else gets the whole history. */
        from = run.sticky_conn == conn_serial && run.sticky_next_id > 0 ? run.sticky_next_id : 1;
        run.sticky_conn = conn_serial;
        r = store_run_update(m->store, &run);
        if (r < 0)
                return r;

        (void) msgpack_pack_map(pk, 9);
        (void) msg_pack_kv_str(pk, "kind", "workflow");
        (void) token_pack(pk, "W/%s/%" PRIu64, run.run_id, started_id);
        (void) msg_pack_kv_str(pk, "workflow_id", run.workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", run.run_id);
        (void) msg_pack_kv_str(pk, "workflow_type", run.workflow_type);
        (void) msg_pack_kv_str(pk, "task_queue", run.task_queue);
        (void) msg_pack_kv_uint(pk, "attempt", run.wft_attempt);
        (void) msg_pack_kv_uint(pk, "next_event_id", run.next_event_id);
        (void) msg_pack_str(pk, "events");
        return history_pack_events(m, &run, from, pk);
}

bool history_actor_owns(Manager *m, const RunRow *run) {
        /* The daemon's own operations act as its uid, which manager_is_admin() admits. */
        return m->actor_admin || run->uid == m->actor_uid ||
               manager_is_admin(m, m->actor_uid, (gid_t) -1, NULL, 0);
}

/* Loads the run of a workflow task token and checks the task is the one in flight. */
static int load_task_run(Manager *m, const MsgBin *token, RunRow *ret, ApiError *e) {
        char run_id[37];
        uint64_t started_id;
        int r;

        if (token_parse(token, 'W', run_id, &started_id, NULL) < 0)
                return api_error_set(e, -EINVAL,
                                     "field \"task_token\" is not a workflow task token");
        r = store_run_get(m->store, run_id, ret);
        if (r >= 0 && !history_actor_owns(m, ret)) {
                run_row_done(ret);
                r = -ENOENT; /* another user's run: as if there were none (history.h) */
        }
        if (r == -ENOENT)
                return api_error_set(e, -ENOENT, "workflow task not found: no run %s", run_id);
        if (r < 0)
                return r;
        if (ret->status != WORKFLOW_STATUS_RUNNING || ret->wft_state != WFT_STARTED ||
            ret->wft_started_id != started_id) {
                run_row_done(ret);
                return api_error_set(e, -ESTALE,
                                     "workflow task %" PRIu64 " of run %s is no longer in flight "
                                     "(it timed out, failed, or the run closed)",
                                     started_id, run_id);
        }
        return 0;
}

/* The next workflow task after a failed one: at once for the first retry, then with exponential
 * backoff capped at 10 minutes, so that a broken worker does not spin (SEMANTICS.md b.1). */
static int retry_workflow_task(Manager *m, RunRow *run) {
        uint64_t delay;
        unsigned shift;

        if (run->wft_attempt <= 2)
                return schedule_workflow_task(m, run);
        shift = MIN(run->wft_attempt - 3, 20u);
        delay = MIN((uint64_t) 1000000 << shift, WFT_BACKOFF_MAX_USEC);
        manager_deadlines_changed(m);
        return store_deadline_insert(m->store, clock_now() + delay, DEADLINE_WFT_BACKOFF,
                                     run->run_id, run->wft_started_id, run->wft_attempt, NULL);
}

static int close_workflow_task(
        Manager *m, RunRow *run, EventType type, const char *cause, const Blob *failure) {
        msgpack_packer *pk;
        Attrs a;
        int r;

        pk = attrs_begin(&a, cause ? 4 : 3);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", run->wft_scheduled_id);
        (void) msg_pack_kv_uint(pk, "started_event_id", run->wft_started_id);
        if (cause) {
                (void) msg_pack_kv_str(pk, "cause", cause);
                (void) pack_kv_raw(pk, "failure", failure);
        } else
                (void) msg_pack_kv_str(pk, "timeout_type", "StartToClose");
        r = append_event(m, run, type, &a, NULL);
        attrs_done(&a);
        if (r < 0)
                return r;
        r = store_deadlines_delete_ref(m->store, run->run_id, run->wft_started_id);
        if (r < 0)
                return r;
        run->wft_state = WFT_NONE;
        run->wft_attempt++;
        run->sticky_conn = 0; /* the worker may hold a state this task never produced */
        taskq_mark_dirty(m, run->task_queue); /* queries waited for the task (taskq.c) */
        r = flush_buffered(m, run);
        if (r >= 0 && run->wft_state == WFT_NONE)
                r = retry_workflow_task(m, run);
        if (r < 0)
                return r;
        return store_run_update(m->store, run);
}

static int fail_task_bad_command(Manager *m, RunRow *run, const char *cause, const char *message) {
        Blob failure = {};
        int r;

        r = failure_blob(&failure, cause, NULL, false, "%s", message);
        if (r < 0)
                return r;
        r = close_workflow_task(m, run, EVENT_WORKFLOW_TASK_FAILED, cause, &failure);
        free(failure.ptr);
        return r;
}

int history_fail_workflow_task(Manager *m,
                               const MsgBin *token,
                               const char *cause,
                               const msgpack_object *failure,
                               ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        Blob f = {};
        int r;

        r = load_task_run(m, token, &run, e);
        if (r < 0)
                return r;
        r = blob_from_object(failure, &f);
        if (r < 0)
                return r;
        log_run(LOG_WARNING, &run, "Workflow task of '%s' failed: %s", run.workflow_id, cause);
        r = close_workflow_task(m, &run, EVENT_WORKFLOW_TASK_FAILED, cause, &f);
        free(f.ptr);
        return r;
}

/* ---- commands ---- */

typedef struct Command {
        CommandType type;
        const msgpack_object *attrs;
} Command;

typedef struct TimerCommand {
        const char *timer_id;
        uint64_t start_to_fire_usec;
} TimerCommand;

static const MsgField timer_fields[] = {
        { "timer_id", MSG_STR, offsetof(TimerCommand, timer_id), true, NAME_MAX_LEN },
        { "start_to_fire_usec", MSG_UINT, offsetof(TimerCommand, start_to_fire_usec) },
        {},
};

static int apply_start_timer(Manager *m,
                             RunRow *run,
                             const msgpack_object *attrs,
                             uint64_t completed_id,
                             msgpack_zone *z,
                             bool dry,
                             char *err,
                             size_t errlen) {
        TimerCommand c = {};
        msgpack_packer *pk;
        uint64_t id, existing;
        Attrs a;
        int r;

        r = msg_parse(attrs, z, timer_fields, &c, err, errlen);
        if (r < 0)
                return r;
        if (c.start_to_fire_usec == 0) {
                snprintf(err, errlen, "timer %s: start_to_fire_usec must be positive", c.timer_id);
                return -EINVAL;
        }
        if (store_timer_get(m->store, run->run_id, c.timer_id, &existing) >= 0) {
                snprintf(err, errlen, "timer id '%s' is already in use", c.timer_id);
                return -EINVAL;
        }
        if (dry)
                return 0;
        pk = attrs_begin(&a, 3);
        (void) msg_pack_kv_str(pk, "timer_id", c.timer_id);
        (void) msg_pack_kv_uint(pk, "start_to_fire_usec", c.start_to_fire_usec);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_TIMER_STARTED, &a, &id);
        attrs_done(&a);
        if (r < 0)
                return r;
        r = store_timer_insert(m->store, run->run_id, c.timer_id, id,
                               clock_now() + c.start_to_fire_usec);
        if (r < 0)
                return r;
        manager_deadlines_changed(m);
        return store_deadline_insert(m->store, clock_now() + c.start_to_fire_usec, DEADLINE_TIMER,
                                     run->run_id, id, 0, c.timer_id);
}

static int apply_cancel_timer(Manager *m,
                              RunRow *run,
                              const msgpack_object *attrs,
                              uint64_t completed_id,
                              bool dry,
                              char *err,
                              size_t errlen) {
        const msgpack_object *o = msg_get(attrs, "timer_id");
        char timer_id[NAME_MAX_LEN + 1];
        msgpack_packer *pk;
        uint64_t started_id = 0;
        Attrs a;
        int r;

        if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size > NAME_MAX_LEN) {
                snprintf(err, errlen, "field \"timer_id\" must be a string");
                return -EINVAL;
        }
        if (dry)
                return 0;
        memcpy(timer_id, o->via.str.ptr, o->via.str.size);
        timer_id[o->via.str.size] = 0;
        r = store_timer_get(m->store, run->run_id, timer_id, &started_id);
        if (r >= 0) {
                r = store_timer_delete(m->store, run->run_id, timer_id);
                if (r >= 0)
                        r = store_deadlines_delete_ref(m->store, run->run_id, started_id);
                manager_deadlines_changed(m);
        } else if (r == -ENOENT)
                r = 0; /* it fired while the task ran; TimerFired is buffered */
        if (r < 0)
                return r;
        pk = attrs_begin(&a, 3);
        (void) msg_pack_kv_str(pk, "timer_id", timer_id);
        (void) msg_pack_kv_uint(pk, "started_event_id", started_id);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_TIMER_CANCELED, &a, NULL);
        attrs_done(&a);
        return r;
}

/* With @dry, only validates: a command list is checked whole before anything is written. */
static int apply_command(Manager *m,
                         RunRow *run,
                         const Command *c,
                         uint64_t completed_id,
                         msgpack_zone *z,
                         bool dry,
                         char *err,
                         size_t errlen) {
        switch (c->type) {
        case COMMAND_SCHEDULE_ACTIVITY_TASK:
                return history_apply_schedule_activity(m, run, c->attrs, completed_id, z, dry, err,
                                                       errlen);
        case COMMAND_REQUEST_CANCEL_ACTIVITY_TASK:
                return history_apply_request_cancel_activity(m, run, c->attrs, completed_id, dry,
                                                             err, errlen);
        case COMMAND_START_TIMER:
                return apply_start_timer(m, run, c->attrs, completed_id, z, dry, err, errlen);
        case COMMAND_CANCEL_TIMER:
                return apply_cancel_timer(m, run, c->attrs, completed_id, dry, err, errlen);
        case COMMAND_COMPLETE_WORKFLOW_EXECUTION:
        case COMMAND_FAIL_WORKFLOW_EXECUTION:
        case COMMAND_CANCEL_WORKFLOW_EXECUTION:
                return history_apply_close(m, run, c->type, c->attrs, completed_id, dry, err,
                                           errlen);
        case COMMAND_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
                return history_apply_continue_as_new(m, run, c->attrs, completed_id, z, dry, err,
                                                     errlen);
        case COMMAND_START_CHILD_WORKFLOW_EXECUTION:
                return history_apply_start_child(m, run, c->attrs, completed_id, z, dry, err,
                                                 errlen);
        case COMMAND_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION:
                return history_apply_request_cancel_external(m, run, c->attrs, completed_id, z, dry,
                                                             err, errlen);
        case COMMAND_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                return history_apply_upsert_search_attributes(m, run, c->attrs, completed_id, dry,
                                                              err, errlen);
        case COMMAND_RECORD_MARKER:
                return history_apply_record_marker(m, run, c->attrs, completed_id, z, dry, err,
                                                   errlen);
        case COMMAND_COMPLETE_WORKFLOW_UPDATE:
                return history_apply_complete_update(m, run, c->attrs, completed_id, z, dry, err,
                                                     errlen);
        default:
                snprintf(err, errlen, "unknown command");
                return -EINVAL;
        }
}

static bool is_close_command(CommandType t) {
        return t == COMMAND_COMPLETE_WORKFLOW_EXECUTION || t == COMMAND_FAIL_WORKFLOW_EXECUTION ||
               t == COMMAND_CANCEL_WORKFLOW_EXECUTION ||
               t == COMMAND_CONTINUE_AS_NEW_WORKFLOW_EXECUTION;
}

#define COMMANDS_MAX 10000

/* Checks the shape of the command list before anything is written. */
static int
parse_commands(const msgpack_object *list, Command **ret, size_t *ret_n, char *err, size_t errlen) {
        _cleanup_free_ Command *cs = NULL;
        size_t n;

        if (!list || list->type != MSGPACK_OBJECT_ARRAY) {
                snprintf(err, errlen, "field \"commands\" must be an array");
                return -EINVAL;
        }
        n = list->via.array.size;
        if (n > COMMANDS_MAX) {
                snprintf(err, errlen, "more than %d commands in one workflow task", COMMANDS_MAX);
                return -EINVAL;
        }
        cs = calloc(n ? n : 1, sizeof(*cs));
        if (!cs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const msgpack_object *c = &list->via.array.ptr[i], *t;
                char name[64] = "";

                t = msg_get(c, "command_type");
                if (t && t->type == MSGPACK_OBJECT_STR && t->via.str.size < sizeof(name))
                        memcpy(name, t->via.str.ptr, t->via.str.size);
                cs[i].type = command_type_from_string(name);
                cs[i].attrs = msg_get(c, "attributes");
                if (cs[i].type < 0) {
                        snprintf(err, errlen, "command %zu: unknown command_type '%s'", i, name);
                        return -EINVAL;
                }
                if (!cs[i].attrs || cs[i].attrs->type != MSGPACK_OBJECT_MAP) {
                        snprintf(err, errlen,
                                 "command %zu (%s): field \"attributes\" must be a map", i, name);
                        return -EINVAL;
                }
                if (is_close_command(cs[i].type) && i != n - 1) {
                        snprintf(err, errlen,
                                 "command %zu (%s) closes the workflow but is not the "
                                 "last command",
                                 i, name);
                        return -EINVAL;
                }
        }
        *ret = TAKE_PTR(cs);
        *ret_n = n;
        return 0;
}

static int append_task_completed(Manager *m, RunRow *run, const char *identity, uint64_t *ret_id) {
        msgpack_packer *pk;
        Attrs a;
        int r;

        pk = attrs_begin(&a, 3);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", run->wft_scheduled_id);
        (void) msg_pack_kv_uint(pk, "started_event_id", run->wft_started_id);
        (void) msg_pack_kv_str(pk, "identity", identity);
        r = append_event(m, run, EVENT_WORKFLOW_TASK_COMPLETED, &a, ret_id);
        attrs_done(&a);
        if (r < 0)
                return r;
        return store_deadlines_delete_ref(m->store, run->run_id, run->wft_started_id);
}

/* The per-run limit (run-limit.h) that a command of type @t counts against when it would fail
 * the workflow task, or _RUN_LIMIT_INVALID. (A child past its limit fails the child's start
 * instead: history-child.c.) */
static RunLimit command_run_limit(CommandType t) {
        return t == COMMAND_SCHEDULE_ACTIVITY_TASK ? RUN_LIMIT_PENDING_ACTIVITIES
                                                   : _RUN_LIMIT_INVALID;
}

/* Validates every command and the per-run limits the whole list would cross; on the first bad
 * one, fails the task (BadCommand, or the limit's cause) and answers invalid_argument (resp.
 * resource_exhausted), keeping that WorkflowTaskFailed (e->keep_writes). */
static int
check_commands(Manager *m, RunRow *run, const Command *cs, size_t n, msgpack_zone *z, ApiError *e) {
        uint64_t adding[_RUN_LIMIT_MAX] = {};
        char err[512] = "";
        int r;

        for (size_t i = 0; i < n; i++) {
                const char *cause = "BadCommand";
                RunLimit l = command_run_limit(cs[i].type);

                r = apply_command(m, run, &cs[i], 0, z, true, err, sizeof(err));
                if (r >= 0 && l >= 0) {
                        r = run_limit_check(m, run, l, ++adding[l], err, sizeof(err));
                        if (r == -ENOBUFS)
                                cause = run_limit_cause(l);
                }
                if (r == -EINVAL || r == -ENOBUFS) { /* malformed, a payload too large, a limit */
                        char msg[600];
                        int k;

                        snprintf(msg, sizeof(msg), "command %zu (%s): %s", i,
                                 command_type_to_string(cs[i].type), err);
                        k = fail_task_bad_command(m, run, cause, msg);
                        if (k < 0)
                                return k;
                        e->keep_writes = true;
                        return api_error_set(e, r, "%s", msg);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int history_complete_workflow_task(Manager *m,
                                   const MsgBin *token,
                                   const msgpack_object *commands,
                                   const char *identity,
                                   uint64_t conn_serial,
                                   ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        _cleanup_free_ Command *cs = NULL;
        char err[512] = "";
        msgpack_zone *z = NULL;
        uint64_t completed_id;
        size_t n = 0;
        int r, buffered;

        r = load_task_run(m, token, &run, e);
        if (r < 0)
                return r;
        r = parse_commands(commands, &cs, &n, err, sizeof(err));
        if (r == -EINVAL) {
                r = fail_task_bad_command(m, &run, "BadCommand", err);
                if (r < 0)
                        return r;
                e->keep_writes = true;
                return api_error_set(e, -EINVAL, "%s", err);
        }
        if (r < 0)
                return r;

        buffered = store_buffered_count(m->store, run.run_id);
        if (buffered < 0)
                return buffered;
        if (n > 0 && is_close_command(cs[n - 1].type) && buffered > 0) {
                /* Temporal's UnhandledCommand: the code decided to close without having seen
                 * events that arrived meanwhile; a new task delivers them. */
                r = fail_task_bad_command(m, &run, "UnhandledCommand",
                                          "new events arrived while the workflow task ran");
                if (r < 0)
                        return r;
                e->keep_writes = true;
                return api_error_set(e, -ESTALE,
                                     "new events arrived while the workflow task "
                                     "ran; a new task delivers them");
        }

        z = msgpack_zone_new(4096);
        if (!z)
                return -ENOMEM;
        r = check_commands(m, &run, cs, n, z, e);
        if (r < 0)
                goto finish;
        r = append_task_completed(m, &run, identity, &completed_id);
        if (r < 0)
                goto finish;
        run.wft_attempt = 1;
        run.sticky_conn = conn_serial;
        run.sticky_next_id = run.wft_started_id + 1;
        for (size_t i = 0; i < n && r >= 0 && run.status == WORKFLOW_STATUS_RUNNING; i++)
                r = apply_command(m, &run, &cs[i], completed_id, z, false, err, sizeof(err));
        if (r >= 0 && run.status == WORKFLOW_STATUS_RUNNING)
                r = history_check_limits(m, &run, completed_id);
        if (r < 0)
                goto finish;
        if (run.status == WORKFLOW_STATUS_RUNNING) {
                run.wft_state = WFT_NONE;
                taskq_mark_dirty(m, run.task_queue); /* queries waited for the task (taskq.c) */
                r = flush_buffered(m, &run);
                if (r < 0)
                        goto finish;
        }
        r = store_run_update(m->store, &run);
finish:
        msgpack_zone_free(z);
        return r;
}

/* ---- deadlines ---- */

static int on_timer_due(Manager *m, RunRow *run, const Deadline *d) {
        msgpack_packer *pk;
        uint64_t started_id, now;
        Attrs a;
        int r;

        if (!d->key || store_timer_get(m->store, run->run_id, d->key, &started_id) < 0 ||
            started_id != d->ref)
                return 0; /* cancelled meanwhile */
        r = store_timer_delete(m->store, run->run_id, d->key);
        if (r < 0)
                return r;
        /* late_by_usec: how long after its deadline the timer fired; large when the deadline
         * passed while the daemon or the host was down (DESIGN.md §8). */
        now = clock_now();
        pk = attrs_begin(&a, 3);
        (void) msg_pack_kv_str(pk, "timer_id", d->key);
        (void) msg_pack_kv_uint(pk, "started_event_id", started_id);
        (void) msg_pack_kv_uint(pk, "late_by_usec", now > d->due ? now - d->due : 0);
        r = append_external(m, run, EVENT_TIMER_FIRED, &a, false);
        attrs_done(&a);
        return r;
}

int history_on_deadline(Manager *m, const Deadline *d) {
        _cleanup_(run_row_done) RunRow run = {};
        int r;

        r = store_run_get(m->store, d->run_id, &run);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (run.status != WORKFLOW_STATUS_RUNNING)
                return 0;
        switch (d->kind) {
        case DEADLINE_TIMER:
                r = on_timer_due(m, &run, d);
                break;
        case DEADLINE_WFT_TIMEOUT:
                if (run.wft_state != WFT_STARTED || run.wft_started_id != d->ref)
                        return 0;
                log_run(LOG_NOTICE, &run, "Workflow task of '%s' timed out; scheduling it again",
                        run.workflow_id);
                return close_workflow_task(m, &run, EVENT_WORKFLOW_TASK_TIMED_OUT, NULL, NULL);
        case DEADLINE_WFT_BACKOFF:
                if (run.wft_state != WFT_NONE || run.wft_attempt != d->gen)
                        return 0;
                r = schedule_workflow_task(m, &run);
                break;
        case DEADLINE_START_DELAY:
                if (run.wft_state != WFT_DELAYED)
                        return 0;
                run.wft_state = WFT_NONE;
                r = schedule_workflow_task(m, &run);
                break;
        case DEADLINE_RUN_TIMEOUT:
        case DEADLINE_EXECUTION_TIMEOUT:
                r = history_time_out_run(m, &run, d->kind);
                break;
        default:
                r = history_on_activity_deadline(m, &run, d);
                break;
        }
        if (r < 0)
                return r;
        return store_run_update(m->store, &run);
}
