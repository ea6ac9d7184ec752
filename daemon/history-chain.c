/* How runs close and how a chain of runs goes on: the close commands (complete, fail, cancel),
 * continue-as-new, workflow retries (Temporal's workflow retry policy), the run and execution
 * timeouts, and the history size limits. history.c owns runs and workflow tasks and calls in
 * here; see history.h for the state machines and doc/protocol.md for the events.
 *
 * A chain is the runs of one workflow id that follow each other by continue-as-new or by a
 * retry: the closing event of a run names the next one (new_execution_run_id), which is created
 * in the same transaction and inherits the execution's end, the run timeout and the retry policy
 * from the first event of the run before it; a child's chain stays its parent's child. */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/clock.h"
#include "daemon/history-internal.h"
#include "proto/event.h"

static int check_close(CommandType type, const msgpack_object *attrs, char *err, size_t errlen) {
        const msgpack_object *o;

        if (type == COMMAND_COMPLETE_WORKFLOW_EXECUTION) {
                o = msg_get(attrs, "result");
                if (o && o->type != MSGPACK_OBJECT_BIN) {
                        snprintf(err, errlen, "field \"result\" must be a bin payload");
                        return -EINVAL;
                }
                if (o && o->via.bin.size > msg_payload_limit()) {
                        snprintf(err, errlen,
                                 "field \"result\" is larger than the limit of %zu "
                                 "bytes",
                                 msg_payload_limit());
                        return -ENOBUFS;
                }
        } else if (type == COMMAND_FAIL_WORKFLOW_EXECUTION) {
                o = msg_get(attrs, "failure");
                if (!o || o->type != MSGPACK_OBJECT_MAP) {
                        snprintf(err, errlen, "field \"failure\" must be a map");
                        return -EINVAL;
                }
        }
        return 0;
}

/* A run's WorkflowExecutionStarted attributes, copied and decoded: what the next run of its
 * chain inherits (timeouts, retry policy, input for a retry). */
typedef struct Started {
        Blob attrs;
        msgpack_unpacked u;
        bool decoded;
} Started;

static int started_copy(uint64_t event_id,
                        EventType type,
                        uint64_t time,
                        uint32_t uid,
                        const void *attrs,
                        size_t size,
                        void *userdata) {
        Started *st = userdata;
        int r;

        if (type != EVENT_WORKFLOW_EXECUTION_STARTED)
                return -EUCLEAN;
        r = blob_from_bin(&(MsgBin){ attrs, size }, &st->attrs);
        return r < 0 ? r : -ECANCELED; /* only the first event */
}

static void started_done(Started *st) {
        if (st->decoded)
                msgpack_unpacked_destroy(&st->u);
        free(st->attrs.ptr);
        *st = (Started){};
}

static int started_read(Manager *m, const RunRow *run, Started *ret) {
        int r;

        *ret = (Started){};
        r = store_events_foreach(m->store, run->run_id, 1, started_copy, ret);
        if (r != -ECANCELED)
                return r < 0 ? r : -EUCLEAN; /* no first event: the history is damaged */
        msgpack_unpacked_init(&ret->u);
        ret->decoded = true;
        r = msg_decode(ret->attrs.ptr, ret->attrs.size, &ret->u);
        if (r < 0)
                started_done(ret);
        return r < 0 ? -EUCLEAN : 0;
}

static const msgpack_object *started_get(const Started *st, const char *key) {
        return msg_get(&st->u.data, key);
}

static uint64_t started_uint(const Started *st, const char *key) {
        const msgpack_object *v = started_get(st, key);
        return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

/* The next run of a chain (continue-as-new, a retry) after @run closed: same owner, still the
 * child of @run's parent if it was one (history-child.c). */
static int continue_chain(Manager *m, RunRow *run, StartRequest *req, const char new_run_id[37]) {
        ChildRow link = {};
        int r;

        /* The row must say "closed" before the new run takes the id (runs_running). */
        r = store_run_update(m->store, run);
        if (r < 0)
                return r;
        r = store_child_get_by_run(m->store, run->run_id, &link);
        if (r < 0 && r != -ENOENT)
                return r;
        req->parent = r >= 0 ? &link : NULL;
        r = create_run(m, req, run->uid, run->run_id, new_run_id);
        if (r >= 0 && req->parent)
                r = store_child_relink(m->store, run->run_id, new_run_id);
        child_row_done(&link);
        return r;
}

/* ---- workflow retries ---- */

/* Whether a failing run is retried (Temporal's workflow retry policy, SEMANTICS.md b.1): only
 * with a retry_policy, not for a non-retryable failure or a listed type, not past
 * maximum_attempts, not when the backoff would end after the execution's end. */
typedef struct Retry {
        const char *state; /* Temporal's RetryState: "InProgress" = retried */
        uint64_t delay;
        Started started;
        char next_run_id[37];
} Retry;

static bool failure_listed(const RetryPolicy *p, const char *type, size_t len) {
        const msgpack_object *l = p->non_retryable_error_types;

        for (uint32_t i = 0; l && i < l->via.array.size; i++)
                if (l->via.array.ptr[i].type == MSGPACK_OBJECT_STR &&
                    l->via.array.ptr[i].via.str.size == len &&
                    memcmp(l->via.array.ptr[i].via.str.ptr, type, len) == 0)
                        return true;
        return false;
}

/* @failure: the run's failure map, or NULL for a run timeout (retryable, as Temporal). */
static int retry_decide(Manager *m, const RunRow *run, const Blob *failure, Retry *ret) {
        const msgpack_object *policy, *t, *nr;
        msgpack_unpacked f;
        uint64_t attempt, expiration;
        RetryPolicy p;
        char err[256];
        double d;
        int r;

        *ret = (Retry){ .state = "RetryPolicyNotSet" };
        r = started_read(m, run, &ret->started);
        if (r < 0)
                return r;
        policy = started_get(&ret->started, "retry_policy");
        if (!policy || retry_policy_parse(policy, ret->started.u.zone, &p, err, sizeof(err)) < 0)
                return 0;
        attempt = MAX(started_uint(&ret->started, "attempt"), 1u);
        if (failure && failure->ptr) {
                bool listed = false, non_retryable = false;

                msgpack_unpacked_init(&f);
                if (msg_decode(failure->ptr, failure->size, &f) >= 0) {
                        t = msg_get(&f.data, "type");
                        nr = msg_get(&f.data, "non_retryable");
                        non_retryable = nr && nr->type == MSGPACK_OBJECT_BOOLEAN && nr->via.boolean;
                        listed = t && t->type == MSGPACK_OBJECT_STR &&
                                 failure_listed(&p, t->via.str.ptr, t->via.str.size);
                }
                msgpack_unpacked_destroy(&f);
                if (non_retryable || listed) {
                        ret->state = "NonRetryableFailure";
                        return 0;
                }
        }
        if (p.maximum_attempts && attempt >= p.maximum_attempts) {
                ret->state = "MaximumAttemptsReached";
                return 0;
        }
        d = (double) p.initial_interval_usec * pow(p.backoff_coefficient, (double) attempt - 1);
        ret->delay = d >= (double) p.maximum_interval_usec ? p.maximum_interval_usec : (uint64_t) d;
        expiration = started_uint(&ret->started, "workflow_execution_expiration_time");
        if (expiration && clock_now() + ret->delay >= expiration) {
                ret->state = "Timeout";
                return 0;
        }
        ret->state = "InProgress";
        run_id_new(ret->next_run_id);
        return 0;
}

int history_check_retry_policy(const msgpack_object *policy, msgpack_zone *z, ApiError *e) {
        char err[256] = "";
        RetryPolicy p;
        int r;

        r = retry_policy_parse(policy, z, &p, err, sizeof(err));
        return r < 0 ? api_error_set(e, r, "field \"retry_policy\": %s", err) : 0;
}

static bool retry_in_progress(const Retry *rt) {
        return streq(rt->state, "InProgress");
}

/* The next attempt: a new run of the chain with the same input, after the backoff (as a start
 * delay: first_workflow_task_backoff_usec), initiator "Retry". @run is closed. */
static int retry_start(Manager *m, RunRow *run, Retry *rt) {
        const msgpack_object *in = started_get(&rt->started, "input");
        StartRequest req = {
                .workflow_id = run->workflow_id,
                .workflow_type = run->workflow_type,
                .task_queue = run->task_queue,
                .task_timeout_usec = run->task_timeout_usec,
                .run_timeout_usec = started_uint(&rt->started, "workflow_run_timeout_usec"),
                .execution_expiration =
                        started_uint(&rt->started, "workflow_execution_expiration_time"),
                .start_delay_usec = rt->delay,
                .retry_policy = started_get(&rt->started, "retry_policy"),
                .attempt = MAX(started_uint(&rt->started, "attempt"), 1u) + 1,
                .initiator = "Retry",
                .priority = run->priority,
                .fairness_key = run->fairness_key,
                .fairness_weight = run->fairness_weight,
        };

        if (in && in->type == MSGPACK_OBJECT_BIN)
                req.input = (MsgBin){ in->via.bin.ptr, in->via.bin.size };
        log_run(LOG_INFO, run, "Workflow '%s' failed; attempt %" PRIu64 " starts in %" PRIu64 " us",
                run->workflow_id, req.attempt, rt->delay);
        return continue_chain(m, run, &req, rt->next_run_id);
}

int history_apply_close(Manager *m,
                        RunRow *run,
                        CommandType type,
                        const msgpack_object *attrs,
                        uint64_t completed_id,
                        bool dry,
                        char *err,
                        size_t errlen) {
        Retry retry = { .state = "RetryPolicyNotSet" };
        const msgpack_object *o;
        msgpack_packer *pk;
        Blob result = {}, failure = {};
        WorkflowStatus status;
        EventType ev;
        Attrs a;
        int r;

        r = check_close(type, attrs, err, errlen);
        if (r < 0 || dry)
                return r;
        switch (type) {
        case COMMAND_COMPLETE_WORKFLOW_EXECUTION:
                o = msg_get(attrs, "result");
                r = o ? blob_from_bin(&(MsgBin){ o->via.bin.ptr, o->via.bin.size }, &result) : 0;
                ev = EVENT_WORKFLOW_EXECUTION_COMPLETED;
                status = WORKFLOW_STATUS_COMPLETED;
                pk = attrs_begin(&a, 2);
                (void) pack_kv_payload(pk, "result", result.ptr, result.size);
                break;
        case COMMAND_FAIL_WORKFLOW_EXECUTION:
                r = blob_from_object(msg_get(attrs, "failure"), &failure);
                if (r >= 0)
                        r = retry_decide(m, run, &failure, &retry);
                ev = EVENT_WORKFLOW_EXECUTION_FAILED;
                status = WORKFLOW_STATUS_FAILED;
                pk = attrs_begin(&a, retry_in_progress(&retry) ? 4 : 3);
                (void) pack_kv_raw(pk, "failure", &failure);
                (void) msg_pack_kv_str(pk, "retry_state", retry.state);
                if (retry_in_progress(&retry))
                        (void) msg_pack_kv_str(pk, "new_execution_run_id", retry.next_run_id);
                break;
        default:
                o = msg_get(attrs, "details");
                r = failure_blob(&failure, "Canceled", NULL, true, "workflow canceled");
                ev = EVENT_WORKFLOW_EXECUTION_CANCELED;
                status = WORKFLOW_STATUS_CANCELED;
                pk = attrs_begin(&a, 2);
                (void) msg_pack_str(pk, "details");
                (void) (o ? msgpack_pack_object(pk, *o) : msgpack_pack_nil(pk));
                break;
        }
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        if (r >= 0)
                r = append_event(m, run, ev, &a, NULL);
        attrs_done(&a);
        if (r >= 0)
                r = close_run_chain(m, run, status, &result, &failure, retry_in_progress(&retry));
        if (r >= 0 && retry_in_progress(&retry))
                r = retry_start(m, run, &retry);
        started_done(&retry.started);
        free(result.ptr);
        free(failure.ptr);
        return r;
}

/* ---- continue-as-new ---- */

typedef struct ContinueCommand {
        MsgBin input;
        const char *workflow_type;
        const char *task_queue;
        uint64_t task_timeout_usec;
} ContinueCommand;

static const MsgField continue_fields[] = {
        { "input", MSG_BIN, offsetof(ContinueCommand, input), false, PAYLOAD_SIZE_MAX },
        { "workflow_type", MSG_STR, offsetof(ContinueCommand, workflow_type), false, NAME_MAX_LEN },
        { "task_queue", MSG_STR, offsetof(ContinueCommand, task_queue), false, NAME_MAX_LEN },
        { "task_timeout_usec", MSG_UINT, offsetof(ContinueCommand, task_timeout_usec) },
        {},
};

/* ContinueAsNewWorkflowExecution: the run closes as ContinuedAsNew and a new run of the same
 * workflow id (same owner; type, queue and task timeout kept unless given) starts with the new
 * input and a fresh history, in the same transaction. */
int history_apply_continue_as_new(Manager *m,
                                  RunRow *run,
                                  const msgpack_object *attrs,
                                  uint64_t completed_id,
                                  msgpack_zone *z,
                                  bool dry,
                                  char *err,
                                  size_t errlen) {
        ContinueCommand c = {};
        StartRequest req = {};
        Started started = {};
        char new_run_id[37];
        msgpack_packer *pk;
        Attrs a;
        int r;

        r = msg_parse(attrs, z, continue_fields, &c, err, errlen);
        if (r < 0)
                return r;
        if ((c.workflow_type && !*c.workflow_type) || (c.task_queue && !*c.task_queue)) {
                snprintf(err, errlen,
                         "fields \"workflow_type\" and \"task_queue\" must not be "
                         "empty");
                return -EINVAL;
        }
        if (dry)
                return 0;
        req = (StartRequest){
                .workflow_id = run->workflow_id,
                .workflow_type = c.workflow_type ? c.workflow_type : run->workflow_type,
                .task_queue = c.task_queue ? c.task_queue : run->task_queue,
                .input = c.input,
                .task_timeout_usec =
                        c.task_timeout_usec ? c.task_timeout_usec : run->task_timeout_usec,
                .priority = run->priority, /* Temporal: the new run keeps the chain's */
                .fairness_key = run->fairness_key,
                .fairness_weight = run->fairness_weight,
        };
        /* Inherited: the run timeout, the execution's end, the retry policy (attempts start
         * again at 1, as Temporal). */
        r = started_read(m, run, &started);
        if (r < 0)
                return r;
        req.run_timeout_usec = started_uint(&started, "workflow_run_timeout_usec");
        req.execution_expiration = started_uint(&started, "workflow_execution_expiration_time");
        req.retry_policy = started_get(&started, "retry_policy");
        run_id_new(new_run_id);
        pk = attrs_begin(&a, 6);
        (void) msg_pack_kv_str(pk, "new_execution_run_id", new_run_id);
        (void) msg_pack_kv_str(pk, "workflow_type", req.workflow_type);
        (void) msg_pack_kv_str(pk, "task_queue", req.task_queue);
        (void) pack_kv_payload(pk, "input", c.input.ptr, c.input.size);
        (void) msg_pack_kv_uint(pk, "task_timeout_usec", req.task_timeout_usec);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, &a, NULL);
        attrs_done(&a);
        if (r >= 0)
                r = close_run_chain(m, run, WORKFLOW_STATUS_CONTINUED_AS_NEW, NULL, NULL, true);
        if (r >= 0)
                r = continue_chain(m, run, &req, new_run_id);
        started_done(&started);
        return r;
}

typedef struct ContinuedCtx {
        char *run_id; /* 37 bytes */
        bool found;
} ContinuedCtx;

static int find_continued(uint64_t event_id,
                          EventType type,
                          uint64_t time,
                          uint32_t uid,
                          const void *attrs,
                          size_t size,
                          void *userdata) {
        ContinuedCtx *c = userdata;
        msgpack_unpacked u;
        const msgpack_object *v;

        if (type != EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW &&
            type != EVENT_WORKFLOW_EXECUTION_FAILED && type != EVENT_WORKFLOW_EXECUTION_TIMED_OUT &&
            type != EVENT_WORKFLOW_EXECUTION_TERMINATED)
                return 0;
        msgpack_unpacked_init(&u);
        if (msg_decode(attrs, size, &u) >= 0) {
                v = msg_get(&u.data, "new_execution_run_id");
                if (v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == 36) {
                        memcpy(c->run_id, v->via.str.ptr, 36);
                        c->run_id[36] = 0;
                        c->found = true;
                }
        }
        msgpack_unpacked_destroy(&u);
        return 0;
}

int history_continued_run_id(Manager *m, const RunRow *run, char ret_run_id[static 37]) {
        ContinuedCtx c = { ret_run_id, false };
        int r;

        if ((run->status != WORKFLOW_STATUS_CONTINUED_AS_NEW &&
             run->status != WORKFLOW_STATUS_FAILED && run->status != WORKFLOW_STATUS_TIMED_OUT &&
             run->status != WORKFLOW_STATUS_TERMINATED) ||
            run->next_event_id < 2)
                return -ENOENT;
        /* The closing event is the last one. */
        r = store_events_foreach(m->store, run->run_id, run->next_event_id - 1, find_continued, &c);
        if (r < 0)
                return r;
        return c.found ? 0 : -ENOENT;
}

#define CHAIN_MAX 100000 /* a bound on following a (never cyclic) chain */

int history_follow_chain(Manager *m, RunRow *run) {
        char next[37];
        int r;

        for (unsigned i = 0; i < CHAIN_MAX; i++) {
                RunRow n = {};

                r = history_continued_run_id(m, run, next);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                r = store_run_get(m->store, next, &n);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                run_row_done(run);
                *run = n;
        }
        return 0;
}

/* ---- history size limits ---- */

int history_size_bytes(Manager *m, const RunRow *run, uint64_t *ret) {
        return store_history_bytes(m->store, run->run_id, ret);
}

/* Fails the run when its history passed --history-max-events or --history-max-bytes, as
 * Temporal's limit.historyCount/historySize.error do. The byte count is read only when the events
 * could add up to the limit: each event holds at most one payload. */
int history_check_limits(Manager *m, RunRow *run, uint64_t completed_id) {
        uint64_t events = run->next_event_id - 1, bytes = 0;
        char message[256];
        msgpack_packer *pk;
        Blob failure = {};
        Attrs a;
        int r;

        if (events > m->cfg.history_max_events)
                (void) snprintf(message, sizeof(message),
                                "history has %" PRIu64 " events, more than the limit of %" PRIu64
                                " (durabled --history-max-events)",
                                events, m->cfg.history_max_events);
        else if (events * (msg_payload_limit() + 65536ULL) <= m->cfg.history_max_bytes)
                return 0;
        else {
                r = store_history_bytes(m->store, run->run_id, &bytes);
                if (r < 0)
                        return r;
                if (bytes <= m->cfg.history_max_bytes)
                        return 0;
                (void) snprintf(message, sizeof(message),
                                "history has %" PRIu64 " bytes, more than the limit of %" PRIu64
                                " (durabled --history-max-bytes)",
                                bytes, m->cfg.history_max_bytes);
        }
        log_run(LOG_WARNING, run, "Workflow '%s' failed: %s", run->workflow_id, message);
        /* Nothing acknowledged disappears: buffered events go in first, without a new task. */
        r = drain_buffered_closing(m, run);
        if (r < 0)
                return r;
        r = failure_blob(&failure, "HistoryLimitExceeded", NULL, true, "%s", message);
        if (r < 0)
                return r;
        pk = attrs_begin(&a, 2);
        (void) pack_kv_raw(pk, "failure", &failure);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_WORKFLOW_EXECUTION_FAILED, &a, NULL);
        attrs_done(&a);
        if (r >= 0)
                r = close_run_chain(m, run, WORKFLOW_STATUS_FAILED, NULL, &failure, false);
        free(failure.ptr);
        return r;
}

/* The run or execution timeout expired: WorkflowExecutionTimedOut, status TimedOut, with a
 * TimeoutError failure naming which timeout. */
int history_time_out_run(Manager *m, RunRow *run, DeadlineKind kind) {
        const char *which = kind == DEADLINE_RUN_TIMEOUT ? "run" : "execution";
        Retry retry = { .state = "Timeout" };
        msgpack_packer *pk;
        Blob failure = {};
        Attrs a;
        int r;

        log_run(LOG_INFO, run, "Workflow '%s' timed out (%s timeout)", run->workflow_id, which);
        r = fail_started_task(m, run, "WorkflowTimedOut");
        if (r < 0)
                return r;
        /* Nothing acknowledged disappears: buffered events go in first, without a new task. */
        r = drain_buffered_closing(m, run);
        if (r < 0)
                return r;
        /* A run timeout is retried under a retry policy; the execution's end is final. */
        if (kind == DEADLINE_RUN_TIMEOUT) {
                r = retry_decide(m, run, NULL, &retry);
                if (r < 0)
                        return r;
        }
        pk = attrs_begin(&a, retry_in_progress(&retry) ? 3 : 2);
        (void) msg_pack_kv_str(pk, "retry_state", retry.state);
        (void) msg_pack_kv_str(pk, "timeout", which);
        if (retry_in_progress(&retry))
                (void) msg_pack_kv_str(pk, "new_execution_run_id", retry.next_run_id);
        r = append_event(m, run, EVENT_WORKFLOW_EXECUTION_TIMED_OUT, &a, NULL);
        attrs_done(&a);
        if (r >= 0)
                r = failure_blob(&failure, "TimeoutError", "StartToClose", true,
                                 "workflow %s timeout expired", which);
        if (r >= 0)
                r = close_run_chain(m, run, WORKFLOW_STATUS_TIMED_OUT, NULL, &failure,
                                    retry_in_progress(&retry));
        if (r >= 0 && retry_in_progress(&retry))
                r = retry_start(m, run, &retry);
        started_done(&retry.started);
        free(failure.ptr);
        return r;
}
