/* The Unix-socket API: decodes a request frame, authorises it, dispatches it through a table of
 * operations (doc/protocol.md) and answers. Handlers return 0 when they answered, 1 when the
 * answer comes later (long polls, queries, waits), or a negative errno with a sentence in the
 * request's ApiError, which the dispatcher turns into the error answer.
 *
 * Every operation that writes runs inside a savepoint of the pass's transaction: when it fails,
 * its writes are undone and the rest of the pass is unaffected. */

#include "daemon/api-sock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hash.h"
#include "common/log.h"
#include "daemon/activity.h"
#include "daemon/api-schedule.h"
#include "daemon/backup.h"
#include "daemon/batch.h"
#include "daemon/clock.h"
#include "daemon/conn.h"
#include "daemon/filter.h"
#include "daemon/flow.h"
#include "daemon/history.h"
#include "daemon/manager.h"
#include "daemon/taskq.h"
#include "daemon/visibility.h"
#include "daemon/verify.h"
#include "daemon/waiter.h"
#include "proto/error.h"
#include "proto/event.h"

#define NAME_MAX_LEN 1000      /* ids, names, types (Temporal's limit.maxIDLength) */
#define POLL_TIMEOUT_DEFAULT (60ULL * 1000000)
#define POLL_TIMEOUT_MAX (600ULL * 1000000)
#define QUERY_TIMEOUT_DEFAULT (10ULL * 1000000)

typedef struct Request {
        Manager *m;
        Conn *conn; /* NULL for a queued start run again (api_run_queued_starts()) */
        bool admin; /* the caller administers durabled */
        uint64_t id;
        const msgpack_object *map;
        msgpack_zone *zone;
        ApiError err;
} Request;

typedef struct Op {
        const char *name;
        int (*handler)(Request *q);
        bool writes;
} Op;

#define PARSE(q, fields, out)                                                          \
        ({                                                                             \
                int _r = msg_parse((q)->map, (q)->zone, fields, out, (q)->err.message, \
                                   sizeof((q)->err.message));                          \
                _r;                                                                    \
        })

static void reply_workflow(Request *q, const RunRow *run) {
        msgpack_packer *pk;
        size_t start;

        pk = conn_reply_begin(q->conn, q->id, 1, &start);
        (void) msg_pack_str(pk, "workflow");
        (void) history_pack_workflow(run, pk);
        conn_reply_end(q->conn, q->id, start);
}

/* The run a client request names: @run_id, else the latest run of @workflow_id. A run the caller
 * may not see is "not found", exactly as one that does not exist (DESIGN.md §10). */
static int resolve_run(Request *q, const char *workflow_id, const char *run_id, RunRow *ret) {
        int r;

        if (run_id) {
                r = store_run_get(q->m->store, run_id, ret);
                if (r >= 0 && !streq(ret->workflow_id, workflow_id)) {
                        run_row_done(ret);
                        r = -ENOENT;
                }
        } else
                r = store_run_find_latest(q->m->store, workflow_id, ret);
        if (r >= 0 && !q->conn->admin && ret->uid != q->conn->cred.uid) {
                run_row_done(ret);
                r = -ENOENT;
        }
        if (r == -ENOENT)
                return api_error_set(&q->err, -ENOENT, "workflow '%s'%s%s not found", workflow_id,
                                     run_id ? " run " : "", run_id ? run_id : "");
        return r;
}

/* ---- client operations ---- */

/* StartWorkflow and SignalWithStart: a StartRequest, with the policies as their names. */
typedef struct StartArgs {
        StartRequest s;
        const char *id_reuse_policy;
        const char *id_conflict_policy;
        uint64_t priority;
        /* StartWorkflow only: answer as GetResult with "wait" once the run closes. */
        bool wait;
        uint64_t timeout_usec;
} StartArgs;

static const MsgField start_fields[] = {
        { "workflow_id", MSG_STR, offsetof(StartArgs, s.workflow_id), true, NAME_MAX_LEN },
        { "workflow_type", MSG_STR, offsetof(StartArgs, s.workflow_type), true, NAME_MAX_LEN },
        { "task_queue", MSG_STR, offsetof(StartArgs, s.task_queue), true, NAME_MAX_LEN },
        { "input", MSG_BIN, offsetof(StartArgs, s.input), false, PAYLOAD_SIZE_MAX },
        { "task_timeout_usec", MSG_UINT, offsetof(StartArgs, s.task_timeout_usec) },
        { "execution_timeout_usec", MSG_UINT, offsetof(StartArgs, s.execution_timeout_usec) },
        { "run_timeout_usec", MSG_UINT, offsetof(StartArgs, s.run_timeout_usec) },
        { "start_delay_usec", MSG_UINT, offsetof(StartArgs, s.start_delay_usec) },
        { "retry_policy", MSG_MAP, offsetof(StartArgs, s.retry_policy) },
        { "request_id", MSG_STR, offsetof(StartArgs, s.request_id), false, NAME_MAX_LEN },
        { "id_reuse_policy", MSG_STR, offsetof(StartArgs, id_reuse_policy), false, 64 },
        { "id_conflict_policy", MSG_STR, offsetof(StartArgs, id_conflict_policy), false, 64 },
        { "priority", MSG_UINT, offsetof(StartArgs, priority) },
        { "fairness_key", MSG_STR, offsetof(StartArgs, s.fairness_key), false,
          TASK_FAIRNESS_KEY_MAX },
        { "fairness_weight", MSG_DOUBLE, offsetof(StartArgs, s.fairness_weight) },
        {},
};

/* StartWorkflow: these besides start_fields (not kept by a queued start, which answers at once). */
static const MsgField start_wait_fields[] = {
        { "wait", MSG_BOOL, offsetof(StartArgs, wait) },
        { "timeout_usec", MSG_UINT, offsetof(StartArgs, timeout_usec) },
        {},
};

/* SignalWithStart: these besides start_fields. */
static const MsgField signal_with_start_fields[] = {
        { "signal_name", MSG_STR, offsetof(StartArgs, s.signal_name), true, NAME_MAX_LEN },
        { "signal_input", MSG_BIN, offsetof(StartArgs, s.signal_input), false, PAYLOAD_SIZE_MAX },
        {},
};

static int check_name(Request *q, const char *field, const char *value) {
        if (value && !*value)
                return api_error_set(&q->err, -EINVAL, "field \"%s\" must not be empty", field);
        return 0;
}

/* The policies by name (proto/policy.h); an unknown one is invalid_argument, naming the valid. */
static int parse_policies(Request *q, StartArgs *a) {
        if (a->id_reuse_policy) {
                a->s.id_reuse_policy = id_reuse_policy_from_string(a->id_reuse_policy);
                if (a->s.id_reuse_policy < 0)
                        return api_error_set(&q->err, -EINVAL,
                                             "field \"id_reuse_policy\": unknown policy '%s' "
                                             "(" ID_REUSE_POLICY_NAMES ")",
                                             a->id_reuse_policy);
        }
        if (a->id_conflict_policy) {
                a->s.id_conflict_policy = id_conflict_policy_from_string(a->id_conflict_policy);
                if (a->s.id_conflict_policy < 0)
                        return api_error_set(&q->err, -EINVAL,
                                             "field \"id_conflict_policy\": unknown policy '%s' "
                                             "(" ID_CONFLICT_POLICY_NAMES ")",
                                             a->id_conflict_policy);
        }
        /* Temporal refuses the deprecated TerminateIfRunning next to a conflict policy. */
        if (a->s.id_reuse_policy == ID_REUSE_TERMINATE_IF_RUNNING &&
            a->s.id_conflict_policy != ID_CONFLICT_UNSPECIFIED)
                return api_error_set(&q->err, -EINVAL,
                                     "id_reuse_policy TerminateIfRunning cannot be combined with "
                                     "an id_conflict_policy (use AllowDuplicate with "
                                     "TerminateExisting)");
        return 0;
}

static int parse_start(Request *q, const MsgField *fields, StartArgs *a) {
        int r;

        r = PARSE(q, fields, a);
        if (r >= 0)
                r = check_name(q, "workflow_id", a->s.workflow_id);
        if (r >= 0)
                r = check_name(q, "workflow_type", a->s.workflow_type);
        if (r >= 0)
                r = check_name(q, "task_queue", a->s.task_queue);
        if (r >= 0)
                r = parse_policies(q, a);
        if (r >= 0 && a->s.retry_policy)
                r = history_check_retry_policy(a->s.retry_policy, q->zone, &q->err);
        if (r >= 0)
                r = history_check_priority(a->priority, a->s.fairness_weight, q->err.message,
                                           sizeof(q->err.message));
        a->s.priority = (unsigned) a->priority;
        a->s.caller_admin = q->admin;
        return r;
}

/* Starts (StartWorkflow, SignalWithStart, UpdateWithStart) with the request's memo and search
 * attributes, which are checked before anything is written and stored when a run was started. */
static int start_run(Request *q, const StartRequest *s, char run_id[static 37], bool *ret_started) {
        const msgpack_object *memo = msg_get(q->map, "memo");
        const msgpack_object *sa = msg_get(q->map, "search_attributes");
        StartRequest req = *s;
        int r;

        r = visibility_check(q->m->store, memo, sa, false, q->err.message, sizeof(q->err.message));
        if (r < 0)
                return r;
        req.memo = memo;
        req.search_attributes = sa;
        r = history_start_workflow(q->m, &req, run_id, ret_started, &q->err);
        if (r >= 0 && *ret_started)
                r = visibility_set(q->m->store, run_id, memo, sa, q->err.message,
                                   sizeof(q->err.message));
        return r;
}

static int
wait_for_result(Request *q, const char *run_id, bool follow_runs, uint64_t timeout_usec);
static int result_or_wait(Request *q, RunRow *run, bool follow_runs, uint64_t timeout_usec);

/* StartWorkflow and SignalWithStart. @queueable: StartWorkflow, whose id conflict policy Queue
 * keeps the request to run it again later (api_run_queued_starts()). With @wait (StartWorkflow's
 * "wait") a start that did not queue is answered as GetResult with "wait" answers: once the run,
 * or the last run of its continue-as-new chain, closes; one round trip for what a client that
 * runs a workflow and waits for its outcome needs. */
static int start_and_reply(Request *q, const StartRequest *s, bool queueable, bool wait,
                           uint64_t timeout_usec) {
        _cleanup_(msgpack_sbuffer_destroy) msgpack_sbuffer sb = {};
        StartRequest req = *s;
        char run_id[37];
        msgpack_packer *pk, raw;
        bool started, queued = false;
        size_t start;
        MsgBin request;
        int r;

        if (queueable && req.id_conflict_policy == ID_CONFLICT_QUEUE) {
                msgpack_packer_init(&raw, &sb, msgpack_sbuffer_write);
                if (msgpack_pack_object(&raw, *q->map) < 0)
                        return -ENOMEM;
                request = (MsgBin){ sb.data, sb.size };
                req.queue_request = &request;
                req.ret_queued = &queued;
        }
        r = start_run(q, &req, run_id, &started);
        if (r < 0)
                return r;
        if (wait && queued)
                /* The run does not exist yet: wait for the id it will have (start_queued_one()
                 * answers the wait with an error if the start is dropped). */
                return wait_for_result(q, run_id, true, timeout_usec);
        if (wait) {
                _cleanup_(run_row_done) RunRow run = {};

                r = store_run_get(q->m->store, run_id, &run);
                return r < 0 ? r : result_or_wait(q, &run, true, timeout_usec);
        }
        pk = conn_reply_begin(q->conn, q->id, 2 + queued, &start);
        (void) msg_pack_kv_str(pk, "run_id", run_id);
        (void) msg_pack_kv_bool(pk, "started", started);
        if (queued)
                (void) msg_pack_kv_bool(pk, "queued", true);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

/* Runs the oldest queued start of @workflow_id again when no run of the id runs: as its caller
 * asked it, with the run id it was answered with. A start that fails now (a reuse policy, a
 * search attribute of another type by now) is dropped with a warning, as a start refused at
 * once would have been answered with an error. */
static int start_queued_one(Manager *m, const char *workflow_id) {
        _cleanup_(run_row_done) RunRow running = {};
        _cleanup_(queued_start_done) QueuedStart qs = {};
        msgpack_unpacked u;
        Request q = { .m = m };
        StartArgs a = {};
        char run_id[37];
        bool started;
        int r;

        r = store_run_find_running(m->store, workflow_id, &running);
        if (r >= 0)
                return 0; /* still busy: it continued as new, or another start came first */
        if (r != -ENOENT)
                return r;
        r = store_queued_start_first(m->store, workflow_id, &qs);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        r = store_queued_start_delete(m->store, qs.seq);
        if (r < 0)
                return r;
        msgpack_unpacked_init(&u);
        r = msg_decode(qs.request.ptr, qs.request.size, &u);
        if (r >= 0) {
                q.map = &u.data;
                q.zone = u.zone;
                q.admin = qs.admin;
                m->actor_uid = qs.uid;
                r = parse_start(&q, start_fields, &a);
        }
        if (r >= 0) {
                a.s.reserved_run_id = qs.run_id;
                a.s.id_conflict_policy = ID_CONFLICT_FAIL;
                r = store_savepoint(m->store);
                if (r >= 0) {
                        r = start_run(&q, &a.s, run_id, &started);
                        if (r < 0)
                                store_rollback_to(m->store);
                        else
                                (void) store_release(m->store);
                }
        }
        if (r < 0) {
                log_wf(LOG_WARNING, workflow_id, qs.run_id,
                       "Queued start of workflow '%s' dropped: %s", workflow_id,
                       q.err.message[0] ? q.err.message : strerror(-r));
                /* A StartWorkflow with "wait" that was queued waits for this run id. */
                waiter_fail_run(m, qs.run_id, r != -ENOMEM ? r : -EIO,
                                q.err.message[0] ? q.err.message : strerror(-r));
        }
        msgpack_unpacked_destroy(&u);
        return 0;
}

static int collect_id(const char *workflow_id, void *userdata) {
        char ***ids = userdata;
        size_t n = 0;
        char **v;

        while (*ids && (*ids)[n])
                n++;
        v = reallocarray(*ids, n + 2, sizeof(char *));
        if (!v)
                return -ENOMEM;
        *ids = v;
        v[n] = strdup(workflow_id);
        v[n + 1] = NULL;
        return v[n] ? 0 : -ENOMEM;
}

int api_run_queued_starts(Manager *m, bool all) {
        char **ids = NULL;
        size_t n = 0;
        int r = 0;

        if (!all && !m->queued_starts)
                return 0;
        if (all)
                r = store_queued_start_ids(m->store, collect_id, &ids);
        for (size_t i = 0; r >= 0 && !all && i < m->n_closed_runs; i++) {
                _cleanup_(run_row_done) RunRow run = {};

                if (store_run_get(m->store, m->closed_runs[i], &run) >= 0)
                        r = collect_id(run.workflow_id, &ids);
        }
        while (r >= 0 && ids && ids[n]) {
                r = manager_begin(m);
                if (r >= 0)
                        r = store_savepoint(m->store);
                if (r < 0)
                        break;
                r = start_queued_one(m, ids[n]);
                if (r < 0)
                        store_rollback_to(m->store);
                else
                        (void) store_release(m->store);
                n++;
        }
        for (size_t i = 0; ids && ids[i]; i++)
                free(ids[i]);
        free(ids);
        if (r >= 0)
                m->queued_starts = store_queued_start_any(m->store) != 0; /* errors: maybe */
        return r;
}

static int op_start_workflow(Request *q) {
        StartArgs a = {};
        int r;

        r = parse_start(q, start_fields, &a);
        if (r >= 0)
                r = PARSE(q, start_wait_fields, &a);
        if (r < 0)
                return r;
        return start_and_reply(q, &a.s, true, a.wait, a.timeout_usec);
}

static int op_signal_with_start(Request *q) {
        StartArgs a = {};
        int r;

        r = parse_start(q, start_fields, &a);
        if (r >= 0)
                r = PARSE(q, signal_with_start_fields, &a);
        if (r >= 0)
                r = check_name(q, "signal_name", a.s.signal_name);
        if (r < 0)
                return r;
        if (a.s.id_conflict_policy == ID_CONFLICT_FAIL)
                return api_error_set(&q->err, -EINVAL,
                                     "SignalWithStart signals a running run: id_conflict_policy "
                                     "Fail is not allowed (UseExisting or TerminateExisting)");
        if (a.s.id_conflict_policy == ID_CONFLICT_QUEUE)
                return api_error_set(&q->err, -EINVAL,
                                     "SignalWithStart signals a running run: id_conflict_policy "
                                     "Queue is not allowed (UseExisting or TerminateExisting)");
        return start_and_reply(q, &a.s, false, false, 0);
}

typedef struct TargetRequest {
        const char *workflow_id;
        const char *run_id;
        const char *name; /* signal_name / query_type / reason */
        MsgBin input;     /* input / details */
        uint64_t timeout_usec;
        uint64_t from_event_id;
        bool wait;
        bool follow_runs; /* GetResult: follow the continue-as-new chain (default true) */
} TargetRequest;

/* Parses a request that names a workflow (workflow_id, optional run_id) and loads its run. */
static int parse_target(Request *q, const MsgField *fields, TargetRequest *out, RunRow *ret_run) {
        const TargetRequest *t = out;
        int r;

        r = PARSE(q, fields, out);
        if (r < 0)
                return r;
        return resolve_run(q, t->workflow_id, t->run_id, ret_run);
}

#define TARGET_FIELDS                                                                           \
        { "workflow_id", MSG_STR, offsetof(TargetRequest, workflow_id), true, NAME_MAX_LEN }, { \
                "run_id", MSG_STR, offsetof(TargetRequest, run_id), false, 36                   \
        }

static const MsgField signal_fields[] = {
        TARGET_FIELDS,
        { "signal_name", MSG_STR, offsetof(TargetRequest, name), true, NAME_MAX_LEN },
        { "input", MSG_BIN, offsetof(TargetRequest, input), false, PAYLOAD_SIZE_MAX },
        {},
};

static int op_signal_workflow(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = {};
        int r;

        r = parse_target(q, signal_fields, &t, &run);
        if (r < 0)
                return r;
        r = history_signal(q->m, run.run_id, t.name, &t.input, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static const MsgField query_fields[] = {
        TARGET_FIELDS,
        { "query_type", MSG_STR, offsetof(TargetRequest, name), true, NAME_MAX_LEN },
        { "input", MSG_BIN, offsetof(TargetRequest, input), false, PAYLOAD_SIZE_MAX },
        { "timeout_usec", MSG_UINT, offsetof(TargetRequest, timeout_usec) },
        {},
};

static int op_query_workflow(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = { .timeout_usec = QUERY_TIMEOUT_DEFAULT };
        int r;

        r = parse_target(q, query_fields, &t, &run);
        if (r < 0)
                return r;
        r = taskq_add_query(
                q->m, q->conn, q->id, &run, t.name, &t.input,
                MIN(t.timeout_usec ? t.timeout_usec : QUERY_TIMEOUT_DEFAULT, POLL_TIMEOUT_MAX));
        return r < 0 ? r : 1;
}

/* ---- updates (history-update.c) ---- */

typedef struct UpdateArgs {
        const char *workflow_id;
        const char *run_id;
        UpdateRequest u;
        const char *wait_for_stage;
        uint64_t timeout_usec;
        bool wait; /* PollWorkflowUpdate */
        bool wait_completed;
        char uuid[37];
} UpdateArgs;

#define UPDATE_TARGET_FIELDS                                                                     \
        { "workflow_id", MSG_STR, offsetof(UpdateArgs, workflow_id), true, NAME_MAX_LEN },       \
                { "run_id", MSG_STR, offsetof(UpdateArgs, run_id), false, 36 },                  \
                { "timeout_usec", MSG_UINT, offsetof(UpdateArgs, timeout_usec) },                \
        {                                                                                        \
                "update_id", MSG_STR, offsetof(UpdateArgs, u.update_id), false, NAME_MAX_LEN     \
        }

#define UPDATE_FIELDS(input_key)                                                                 \
        UPDATE_TARGET_FIELDS,                                                                    \
                { "update_name", MSG_STR, offsetof(UpdateArgs, u.name), true, NAME_MAX_LEN },    \
                { input_key, MSG_BIN, offsetof(UpdateArgs, u.input), false, PAYLOAD_SIZE_MAX },  \
                { "identity", MSG_STR, offsetof(UpdateArgs, u.identity), false, 256 },           \
        {                                                                                        \
                "wait_for_stage", MSG_STR, offsetof(UpdateArgs, wait_for_stage), false, 64       \
        }

static const MsgField update_fields[] = {
        UPDATE_FIELDS("input"),
        {},
};

/* UpdateWithStart: "input" is the start's, the update's arguments are "update_input". */
static const MsgField update_with_start_fields[] = {
        UPDATE_FIELDS("update_input"),
        {},
};

static const MsgField poll_update_fields[] = {
        UPDATE_TARGET_FIELDS,
        { "wait", MSG_BOOL, offsetof(UpdateArgs, wait) },
        {},
};

/* The fields of an update request; the update id defaults to a fresh UUID. Temporal's wait
 * stages: Completed (the default, `update execute`) or Accepted (`update start`); Admitted is
 * refused, as the daemon answers only once the workflow's validator accepted or rejected. */
static int parse_update(Request *q, const MsgField *fields, UpdateArgs *a) {
        int r;

        r = PARSE(q, fields, a);
        if (r >= 0)
                r = check_name(q, "update_name", a->u.name);
        if (r >= 0)
                r = check_name(q, "update_id", a->u.update_id);
        if (r < 0)
                return r;
        if (!a->wait_for_stage || strcasecmp(a->wait_for_stage, "Completed") == 0)
                a->wait_completed = true;
        else if (strcasecmp(a->wait_for_stage, "Accepted") != 0)
                return api_error_set(&q->err, -EINVAL,
                                     "field \"wait_for_stage\": unknown stage '%s' (Accepted, "
                                     "Completed)",
                                     a->wait_for_stage);
        if (!a->u.update_id) {
                history_uuid(a->uuid);
                a->u.update_id = a->uuid;
        }
        return 0;
}

/* Answers with the update as history has it (Accepted or Completed), or parks the caller until
 * it completes when it asks to wait for that. */
static int update_attach(Request *q, const RunRow *run, const UpdateArgs *a, const UpdateState *u) {
        msgpack_packer *pk;
        size_t start;
        int r;

        if (u->completed_id || !a->wait_completed) {
                pk = conn_reply_begin(q->conn, q->id, 1, &start);
                (void) msg_pack_str(pk, "update");
                (void) history_pack_update(pk, run->run_id, a->u.update_id, u);
                conn_reply_end(q->conn, q->id, start);
                return 0;
        }
        if (run->status != WORKFLOW_STATUS_RUNNING)
                return api_error_set(&q->err, -ENOENT,
                                     "workflow '%s' closed (%s) before update '%s' completed",
                                     run->workflow_id, workflow_status_to_string(run->status),
                                     a->u.update_id);
        r = waiter_add_update(q->m, q->conn, q->id, run->run_id, a->u.update_id, a->timeout_usec);
        if (r == -EUSERS)
                return api_error_set(&q->err, r, "too many clients wait (limit %u)",
                                     q->m->cfg.max_waiters);
        return r < 0 ? r : 1;
}

/* An update of @run: attaches to the update of the same id if the run accepted one (Temporal's
 * dedup by update id), else checks the limits and asks a worker to validate it. */
static int update_submit(Request *q, const RunRow *run, UpdateArgs *a) {
        _cleanup_(update_state_done) UpdateState u = {};
        unsigned pending;
        Query *qu;
        int r;

        r = history_update_state(q->m, run, a->u.update_id, &u);
        if (r < 0)
                return r;
        if (u.accepted)
                return update_attach(q, run, a, &u);
        if (run->status != WORKFLOW_STATUS_RUNNING)
                return api_error_set(&q->err, -ENOENT,
                                     "workflow '%s' is closed (%s): updates need a running run",
                                     run->workflow_id, workflow_status_to_string(run->status));
        pending = taskq_count_updates(q->m, run->run_id);
        if (u.in_flight + pending >= q->m->cfg.max_updates_in_flight)
                return api_error_set(&q->err, -ENOBUFS,
                                     "workflow '%s' has %u updates in flight, the limit "
                                     "(durabled --max-updates-in-flight)",
                                     run->workflow_id, u.in_flight + pending);
        if (u.total + pending >= q->m->cfg.max_updates_per_run)
                return api_error_set(&q->err, -ENOBUFS,
                                     "workflow '%s' run %s accepted %u updates, the limit "
                                     "(durabled --max-updates-per-run): continue as new",
                                     run->workflow_id, run->run_id, u.total);
        r = taskq_add_update(
                q->m, q->conn, q->id, run, &a->u,
                MIN(a->timeout_usec ? a->timeout_usec : QUERY_TIMEOUT_DEFAULT, POLL_TIMEOUT_MAX),
                &qu);
        if (r < 0)
                return r;
        qu->wait_completed = a->wait_completed;
        qu->wait_timeout_usec = a->timeout_usec;
        return 1;
}

static int op_update_workflow(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        UpdateArgs a = {};
        int r;

        r = parse_update(q, update_fields, &a);
        if (r < 0)
                return r;
        r = resolve_run(q, a.workflow_id, a.run_id, &run);
        if (r < 0)
                return r;
        return update_submit(q, &run, &a);
}

/* Update-with-start: starts the run (under the id policies, as StartWorkflow) and sends it the
 * update, both or neither: a request the daemon refuses writes nothing. The validator runs on the
 * new run after its first workflow task; a rejection leaves the run started, as in Temporal. */
static int op_update_with_start(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        UpdateArgs a = {};
        StartArgs sa = {};
        char run_id[37];
        bool started;
        int r;

        r = parse_start(q, start_fields, &sa);
        if (r >= 0)
                r = parse_update(q, update_with_start_fields, &a);
        if (r < 0)
                return r;
        if (a.run_id)
                return api_error_set(&q->err, -EINVAL,
                                     "UpdateWithStart names no run: field \"run_id\" is not "
                                     "allowed");
        if (sa.s.id_conflict_policy != ID_CONFLICT_USE_EXISTING &&
            sa.s.id_conflict_policy != ID_CONFLICT_FAIL)
                return api_error_set(&q->err, -EINVAL,
                                     "UpdateWithStart needs field \"id_conflict_policy\": "
                                     "UseExisting or Fail");
        r = start_run(q, &sa.s, run_id, &started);
        if (r >= 0)
                r = store_run_get(q->m->store, run_id, &run);
        if (r < 0)
                return r;
        return update_submit(q, &run, &a);
}

/* The outcome of an update by its id: for a caller that did not wait, or lost its connection. */
static int op_poll_workflow_update(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        _cleanup_(update_state_done) UpdateState u = {};
        UpdateArgs a = {};
        int r;

        r = PARSE(q, poll_update_fields, &a);
        if (r < 0)
                return r;
        if (!a.u.update_id)
                return api_error_set(&q->err, -EINVAL, "field \"update_id\" is required");
        r = resolve_run(q, a.workflow_id, a.run_id, &run);
        if (r < 0)
                return r;
        r = history_update_state(q->m, &run, a.u.update_id, &u);
        if (r < 0)
                return r;
        if (!u.accepted)
                return api_error_set(&q->err, -ENOENT,
                                     "workflow '%s' has no update '%s' (it was never accepted: "
                                     "rejected, or not validated yet)",
                                     a.workflow_id, a.u.update_id);
        a.wait_completed = a.wait;
        return update_attach(q, &run, &a, &u);
}

/* RespondQueryTask for an update's validation: a failure is the validator's rejection, which
 * writes nothing; else the update is accepted, in a savepoint of its own so that a failure to
 * accept (the run closed meanwhile) reaches the caller and not the worker. */
static void update_validated(Request *q, Query *qu, const msgpack_object *failure) {
        _cleanup_(run_row_done) RunRow run = {};
        _cleanup_(update_state_done) UpdateState u = {};
        UpdateRequest req = { .update_id = qu->update_id,
                              .name = qu->query_type,
                              .input = { qu->input.ptr, qu->input.size },
                              .identity = qu->identity };
        ApiError e = {};
        msgpack_packer *pk;
        size_t start;
        int r;

        if (failure) {
                const msgpack_object *msg = msg_get(failure, "message");
                char text[600];

                (void) snprintf(text, sizeof(text),
                                "update '%.100s' rejected by the workflow: %.*s", qu->update_id,
                                msg && msg->type == MSGPACK_OBJECT_STR
                                        ? (int) MIN(msg->via.str.size, 400u)
                                        : 8,
                                msg && msg->type == MSGPACK_OBJECT_STR ? msg->via.str.ptr
                                                                       : "rejected");
                conn_reply_error(qu->caller, qu->caller_req, -EUPDATEREJECTED, text);
                return;
        }
        r = store_savepoint(q->m->store);
        if (r >= 0) {
                q->m->actor_uid = qu->caller_uid; /* the Accepted event records who asked */
                r = history_accept_update(q->m, qu->run_id, &req, &e);
                if (r >= 0)
                        r = store_run_get(q->m->store, qu->run_id, &run);
                if (r >= 0)
                        r = history_update_state(q->m, &run, qu->update_id, &u);
                if (r < 0)
                        store_rollback_to(q->m->store);
                else
                        (void) store_release(q->m->store);
        }
        if (r >= 0 && qu->wait_completed && !u.completed_id) {
                r = waiter_add_update(q->m, qu->caller, qu->caller_req, qu->run_id, qu->update_id,
                                      qu->wait_timeout_usec);
                if (r == -EUSERS)
                        r = api_error_set(&e, r, "too many clients wait (limit %u)",
                                          q->m->cfg.max_waiters);
                if (r >= 0)
                        return;
        }
        if (r < 0) {
                if (!e.message[0])
                        (void) snprintf(e.message, sizeof(e.message),
                                        "accepting update '%.100s' failed: %s", qu->update_id,
                                        strerror(-r));
                conn_reply_error(qu->caller, qu->caller_req, r, e.message);
                return;
        }
        pk = conn_reply_begin(qu->caller, qu->caller_req, 1, &start);
        (void) msg_pack_str(pk, "update");
        (void) history_pack_update(pk, qu->run_id, qu->update_id, &u);
        conn_reply_end(qu->caller, qu->caller_req, start);
}

static const MsgField reason_fields[] = {
        TARGET_FIELDS,
        { "reason", MSG_STR, offsetof(TargetRequest, name), false, 4096 },
        { "details", MSG_BIN, offsetof(TargetRequest, input), false, PAYLOAD_SIZE_MAX },
        {},
};

static int op_cancel_workflow(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = {};
        int r;

        r = parse_target(q, reason_fields, &t, &run);
        if (r < 0)
                return r;
        r = history_request_cancel(q->m, run.run_id, t.name, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static int op_delete_workflow(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = {};
        int r;

        r = parse_target(q, reason_fields, &t, &run);
        if (r < 0)
                return r;
        r = history_delete(q->m, run.run_id, t.name, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static int op_terminate_workflow(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = {};
        int r;

        r = parse_target(q, reason_fields, &t, &run);
        if (r < 0)
                return r;
        r = history_terminate(q->m, run.run_id, t.name, &t.input, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

typedef struct PauseTarget {
        TargetRequest t; /* first: parse_target() reads the target through it */
        PauseRequest p;
} PauseTarget;

static const MsgField pause_fields[] = {
        TARGET_FIELDS,
        { "reason", MSG_STR, offsetof(PauseTarget, p.reason), false, 4096 },
        { "identity", MSG_STR, offsetof(PauseTarget, p.identity), false, NAME_MAX_LEN },
        {},
};

/* PauseWorkflow and UnpauseWorkflow (history-pause.c). */
static int pause_op(Request *q, bool pause) {
        _cleanup_(run_row_done) RunRow run = {};
        PauseTarget t = {};
        int r;

        r = parse_target(q, pause_fields, &t.t, &run);
        if (r < 0)
                return r;
        r = (pause ? history_pause : history_unpause)(q->m, run.run_id, &t.p, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static int op_pause_workflow(Request *q) {
        return pause_op(q, true);
}

static int op_unpause_workflow(Request *q) {
        return pause_op(q, false);
}

/* ResetWorkflow, RedriveWorkflow and ForkWorkflow (history-reset.c). */
typedef struct BranchArgs {
        TargetRequest t; /* first: parse_target() reads the target through it */
        BranchRequest b;
        const msgpack_object *reapply_exclude;
} BranchArgs;

#define BRANCH_FIELDS                                                                \
        TARGET_FIELDS, { "reason", MSG_STR, offsetof(BranchArgs, b.reason), false, 4096 }

static const MsgField reset_fields[] = {
        BRANCH_FIELDS,
        { "event_id", MSG_UINT, offsetof(BranchArgs, b.event_id) },
        { "to", MSG_STR, offsetof(BranchArgs, b.to), false, 16 },
        { "reapply_exclude", MSG_ARRAY, offsetof(BranchArgs, reapply_exclude) },
        {},
};

static const MsgField redrive_fields[] = {
        BRANCH_FIELDS,
        {},
};

static const MsgField fork_fields[] = {
        BRANCH_FIELDS,
        { "new_workflow_id", MSG_STR, offsetof(BranchArgs, b.new_workflow_id), true, NAME_MAX_LEN },
        { "step", MSG_UINT, offsetof(BranchArgs, b.step) },
        {},
};

/* Temporal's --reapply-exclude: Signal, Update (durabled has none to re-apply yet) or All. */
static int parse_reapply_exclude(Request *q, const msgpack_object *list, bool *ret_signals) {
        *ret_signals = true;
        for (uint32_t i = 0; list && i < list->via.array.size; i++) {
                const msgpack_object *o = &list->via.array.ptr[i];
                char v[16] = "";

                if (o->type == MSGPACK_OBJECT_STR && o->via.str.size < sizeof(v))
                        memcpy(v, o->via.str.ptr, o->via.str.size);
                if (streq(v, "Signal") || streq(v, "All"))
                        *ret_signals = false;
                else if (!streq(v, "Update"))
                        return api_error_set(&q->err, -EINVAL,
                                             "field \"reapply_exclude\" takes \"Signal\", "
                                             "\"Update\" or \"All\"");
        }
        return 0;
}

static int branch_op(Request *q, BranchKind kind, const MsgField *fields) {
        _cleanup_(run_row_done) RunRow run = {};
        BranchArgs a = { .b = { .kind = kind, .reapply_signals = true } };
        char run_id[37];
        msgpack_packer *pk;
        size_t start;
        int r;

        r = parse_target(q, fields, &a.t, &run);
        if (r < 0)
                return r;
        if (kind == BRANCH_RESET) {
                if (a.b.event_id && a.b.to)
                        return api_error_set(&q->err, -EINVAL,
                                             "fields \"event_id\" and \"to\" exclude each other");
                if (a.b.to && !streq(a.b.to, "first") && !streq(a.b.to, "last"))
                        return api_error_set(&q->err, -EINVAL,
                                             "field \"to\" takes \"first\" or \"last\"");
                if (!a.b.reason || !*a.b.reason)
                        return api_error_set(&q->err, -EINVAL,
                                             "field \"reason\" is required (why reset?)");
                r = parse_reapply_exclude(q, a.reapply_exclude, &a.b.reapply_signals);
                if (r < 0)
                        return r;
        }
        if (kind == BRANCH_FORK && !*a.b.new_workflow_id)
                return api_error_set(&q->err, -EINVAL, "field \"new_workflow_id\" is empty");
        a.b.base_run_id = run.run_id;
        r = history_branch(q->m, &a.b, run_id, &q->err);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 1, &start);
        (void) msg_pack_kv_str(pk, "run_id", run_id);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

static int op_reset_workflow(Request *q) {
        return branch_op(q, BRANCH_RESET, reset_fields);
}

static int op_redrive_workflow(Request *q) {
        return branch_op(q, BRANCH_REDRIVE, redrive_fields);
}

static int op_fork_workflow(Request *q) {
        return branch_op(q, BRANCH_FORK, fork_fields);
}

typedef struct ActivityTarget {
        TargetRequest t; /* first: parse_target() reads the target through it */
        const char *activity_id;
        const char *reason;
} ActivityTarget;

static const MsgField activity_control_fields[] = {
        TARGET_FIELDS,
        { "activity_id", MSG_STR, offsetof(ActivityTarget, activity_id), true, NAME_MAX_LEN },
        { "reason", MSG_STR, offsetof(ActivityTarget, reason), false, 4096 },
        {},
};

/* PauseActivity, UnpauseActivity, ResetActivity (history-pause.c). */
static int activity_control_op(Request *q, ActivityControl what) {
        _cleanup_(run_row_done) RunRow run = {};
        ActivityTarget t = {};
        int r;

        r = parse_target(q, activity_control_fields, &t.t, &run);
        if (r < 0)
                return r;
        r = history_control_activity(q->m, run.run_id, t.activity_id, what, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static int op_pause_activity(Request *q) {
        return activity_control_op(q, ACTIVITY_PAUSE);
}

static int op_unpause_activity(Request *q) {
        return activity_control_op(q, ACTIVITY_UNPAUSE);
}

static int op_reset_activity(Request *q) {
        return activity_control_op(q, ACTIVITY_RESET);
}

static const MsgField target_fields[] = {
        TARGET_FIELDS,
        { "wait", MSG_BOOL, offsetof(TargetRequest, wait) },
        { "timeout_usec", MSG_UINT, offsetof(TargetRequest, timeout_usec) },
        { "from_event_id", MSG_UINT, offsetof(TargetRequest, from_event_id) },
        { "follow_runs", MSG_BOOL, offsetof(TargetRequest, follow_runs) },
        {},
};

typedef struct PendingPack {
        Manager *m;
        msgpack_packer *pk;
} PendingPack;

static int pack_pending_activity(const ActivityRow *a, void *userdata) {
        PendingPack *pp = userdata;
        msgpack_packer *pk = pp->pk;
        /* The last STATUS= of a process activity's running attempt (activity.c). */
        const char *status = a->state == ACTIVITY_STARTED
                                     ? supervisor_status(pp->m, a->run_id, a->scheduled_id)
                                     : NULL;
        size_t n = 7 + (a->started_time ? 1 : 0) + (a->last_failure.ptr ? 1 : 0) +
                   (a->heartbeat_details.ptr ? 1 : 0) + (a->state == ACTIVITY_BACKOFF ? 1 : 0) +
                   (status ? 1 : 0);
        /* Temporal's PendingActivityState: a paused attempt that runs is PauseRequested. */
        const char *state = a->cancel_requested                             ? "CancelRequested"
                            : a->paused && a->state == ACTIVITY_STARTED ? "PauseRequested"
                            : a->paused                                 ? "Paused"
                                        : activity_state_to_string(a->state);

        (void) msgpack_pack_map(pk, n);
        (void) msg_pack_kv_str(pk, "activity_id", a->activity_id);
        (void) msg_pack_kv_str(pk, "activity_type", a->activity_type);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", a->scheduled_id);
        (void) msg_pack_kv_str(pk, "state", state);
        (void) msg_pack_str(pk, "paused");
        (void) (a->paused ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
        (void) msg_pack_kv_uint(pk, "attempt", a->attempt);
        (void) msg_pack_kv_uint(pk, "scheduled_time", a->scheduled_time);
        if (a->started_time)
                (void) msg_pack_kv_uint(pk, "last_started_time", a->started_time);
        if (a->last_failure.ptr) {
                (void) msg_pack_str(pk, "last_failure");
                (void) msg_pack_raw(pk, a->last_failure.ptr, a->last_failure.size);
        }
        if (a->heartbeat_details.ptr)
                (void) msg_pack_kv_bin(pk, "heartbeat_details", a->heartbeat_details.ptr,
                                       a->heartbeat_details.size);
        if (a->state == ACTIVITY_BACKOFF)
                (void) msg_pack_kv_uint(pk, "next_attempt_time", a->attempt_time);
        if (status)
                (void) msg_pack_kv_str(pk, "status", status);
        return 0;
}

static int count_activity(const ActivityRow *a, void *userdata) {
        (*(size_t *) userdata)++;
        return 0;
}

static int op_describe_workflow(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = {};
        msgpack_packer *pk;
        size_t start, n = 0, nv;
        uint64_t bytes = 0, events;
        char next_run_id[37];
        bool warn, continued;
        int r;

        r = parse_target(q, target_fields, &t, &run);
        if (r < 0)
                return r;
        r = store_activities_foreach(q->m->store, run.run_id, count_activity, &n);
        if (r < 0)
                return r;
        r = visibility_pack(q->m->store, run.run_id, NULL, &nv);
        if (r < 0)
                return r;
        r = history_size_bytes(q->m, &run, &bytes);
        if (r < 0)
                return r;
        events = run.next_event_id - 1;
        warn = events > q->m->cfg.history_warn_events;
        continued = history_continued_run_id(q->m, &run, next_run_id) >= 0;
        pk = conn_reply_begin(q->conn, q->id, 3 + nv + warn + continued, &start);
        (void) msg_pack_kv_uint(pk, "history_size_bytes", bytes);
        if (warn) {
                /* Temporal's limit.historyCount.warn: time to continue as new. */
                char text[256];

                (void) snprintf(text, sizeof(text),
                                "history has %llu events, more than %llu: the run fails past "
                                "%llu events or %llu bytes; consider continue-as-new",
                                (unsigned long long) events,
                                (unsigned long long) q->m->cfg.history_warn_events,
                                (unsigned long long) q->m->cfg.history_max_events,
                                (unsigned long long) q->m->cfg.history_max_bytes);
                (void) msg_pack_kv_str(pk, "history_warning", text);
        }
        if (continued)
                (void) msg_pack_kv_str(pk, "new_execution_run_id", next_run_id);
        (void) msg_pack_str(pk, "workflow");
        (void) history_pack_workflow(&run, pk);
        r = visibility_pack(q->m->store, run.run_id, pk, &nv);
        if (r < 0)
                return r;
        (void) msg_pack_str(pk, "pending_activities");
        (void) msgpack_pack_array(pk, n);
        r = store_activities_foreach(q->m->store, run.run_id, pack_pending_activity,
                                     &(PendingPack){ q->m, pk });
        if (r < 0)
                return r;
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

static int op_get_result(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = { .follow_runs = true };
        int r;

        r = parse_target(q, target_fields, &t, &run);
        if (r < 0)
                return r;
        if (!t.wait) {
                r = t.follow_runs ? history_follow_chain(q->m, &run) : 0;
                if (r >= 0)
                        reply_workflow(q, &run);
                return r;
        }
        return result_or_wait(q, &run, t.follow_runs, t.timeout_usec);
}

/* GetResult with "wait" (and StartWorkflow with "wait"): the outcome of @run now if it is closed,
 * else once it closes. With @follow_runs, as Temporal's SDKs: the result of a workflow is the one
 * of its last run. Returns 1 when the answer waits. */
static int result_or_wait(Request *q, RunRow *run, bool follow_runs, uint64_t timeout_usec) {
        int r;

        if (follow_runs) {
                r = history_follow_chain(q->m, run);
                if (r < 0)
                        return r;
        }
        if (run->status != WORKFLOW_STATUS_RUNNING) {
                reply_workflow(q, run);
                return 0;
        }
        return wait_for_result(q, run->run_id, follow_runs, timeout_usec);
}

/* Parks the request until run @run_id closes; returns 1 (the answer waits). */
static int
wait_for_result(Request *q, const char *run_id, bool follow_runs, uint64_t timeout_usec) {
        int r = waiter_add_result(q->m, q->conn, q->id, run_id, timeout_usec, follow_runs);

        if (r == -EUSERS)
                return api_error_set(&q->err, r, "too many clients wait for results (limit %u)",
                                     q->m->cfg.max_waiters);
        return r < 0 ? r : 1;
}

static int op_get_history(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = {};
        msgpack_packer *pk;
        size_t start;
        int r;

        r = parse_target(q, target_fields, &t, &run);
        if (r < 0)
                return r;
        if (t.wait && run.status == WORKFLOW_STATUS_RUNNING && t.from_event_id >= run.next_event_id) {
                /* A long poll (durablectl history --follow): answered when event from_event_id
                 * exists or the run closes. */
                r = waiter_add_history(q->m, q->conn, q->id, run.run_id, t.from_event_id,
                                       t.timeout_usec);
                if (r == -EUSERS)
                        return api_error_set(&q->err, r, "too many clients wait (limit %u)",
                                             q->m->cfg.max_waiters);
                return r < 0 ? r : 1;
        }
        pk = conn_reply_begin(q->conn, q->id, 2, &start);
        (void) msg_pack_kv_str(pk, "run_id", run.run_id);
        (void) msg_pack_str(pk, "events");
        r = history_pack_events(q->m, &run, t.from_event_id, pk);
        if (r < 0)
                return r;
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

typedef struct ListRequest {
        const char *status;
        const char *workflow_type;
        const char *task_queue;
        const char *workflow_id;
        uint64_t limit;
        const char *query;
        const char *page_token;
} ListRequest;

static const MsgField list_fields[] = {
        { "status", MSG_STR, offsetof(ListRequest, status), false, 64 },
        { "workflow_type", MSG_STR, offsetof(ListRequest, workflow_type), false, NAME_MAX_LEN },
        { "task_queue", MSG_STR, offsetof(ListRequest, task_queue), false, NAME_MAX_LEN },
        { "workflow_id", MSG_STR, offsetof(ListRequest, workflow_id), false, NAME_MAX_LEN },
        { "limit", MSG_UINT, offsetof(ListRequest, limit) },
        { "query", MSG_STR, offsetof(ListRequest, query), false, FILTER_QUERY_MAX },
        { "page_token", MSG_STR, offsetof(ListRequest, page_token), false, 4096 },
        {},
};

typedef struct ListCtx {
        MsgBuf items;
        size_t n;
} ListCtx;

static int list_one(const RunRow *run, void *userdata) {
        ListCtx *c = userdata;
        c->n++;
        return history_pack_workflow(run, &c->items.pk);
}

static int lookup_sattr(const char *name, SaType *ret, void *userdata) {
        return store_sattr_type(userdata, name, ret);
}

static int compile_query(Request *q, const char *query, FilterSql *ret) {
        return filter_compile(query, lookup_sattr, q->m->store, ret, q->err.message,
                              sizeof(q->err.message));
}

/* Page tokens: "1.<hash of the query>.<rowid>.i<key>" or "...s<key in hex>". Opaque to clients;
 * a token only continues the query it came from. */
static int token_format(const char *query, const RunCursor *c, char **ret) {
        _cleanup_free_ char *hex = NULL;
        size_t n;

        if (!c->text)
                return asprintf(ret, "1.%08x.%lld.i%lld", string_hash(query), (long long) c->rowid,
                                (long long) c->i) < 0
                               ? -ENOMEM
                               : 0;
        n = strlen(c->s);
        hex = malloc(2 * n + 1);
        if (!hex)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                snprintf(hex + 2 * i, 3, "%02x", (uint8_t) c->s[i]);
        hex[2 * n] = 0;
        return asprintf(ret, "1.%08x.%lld.s%s", string_hash(query), (long long) c->rowid, hex) < 0
                       ? -ENOMEM
                       : 0;
}

static int token_parse_page(Request *q, const char *query, const char *t, RunCursor *ret) {
        unsigned hash;
        long long rowid;
        int n = 0;
        RunCursor c = { .set = true };
        const char *key;

        if (sscanf(t, "1.%8x.%lld.%n", &hash, &rowid, &n) != 2 || n == 0 ||
            hash != string_hash(query))
                goto bad;
        key = t + n;
        c.rowid = rowid;
        if (key[0] == 'i') {
                char *end;
                errno = 0;
                c.i = strtoll(key + 1, &end, 10);
                if (errno || end == key + 1 || *end)
                        goto bad;
        } else if (key[0] == 's') {
                size_t len = strlen(key + 1);
                if (len % 2)
                        goto bad;
                c.text = true;
                c.s = malloc(len / 2 + 1);
                if (!c.s)
                        return -ENOMEM;
                for (size_t i = 0; i < len / 2; i++) {
                        unsigned x;
                        if (sscanf(key + 1 + 2 * i, "%2x", &x) != 1 || x == 0) {
                                free(c.s);
                                goto bad;
                        }
                        c.s[i] = (char) x;
                }
                c.s[len / 2] = 0;
        } else
                goto bad;
        *ret = c;
        return 0;
bad:
        return api_error_set(&q->err, -EINVAL,
                             "field \"page_token\" is not a page token of this query");
}

/* ListWorkflows with a query or a page token: the list filter (daemon/filter.h). */
static int list_query(Request *q, const ListRequest *l) {
        _cleanup_(filter_sql_done) FilterSql f = {};
        _cleanup_(run_cursor_done) RunCursor after = {}, last = {};
        _cleanup_free_ char *token = NULL;
        RunQuery rq = { .only_uid = !q->conn->admin, .uid = q->conn->cred.uid };
        ListCtx c = {};
        msgpack_packer *pk;
        size_t start;
        int r;

        if (l->status || l->workflow_type || l->task_queue || l->workflow_id)
                return api_error_set(&q->err, -EINVAL,
                                     "field \"query\" does not combine with status, "
                                     "workflow_type, task_queue or workflow_id: say them in the "
                                     "query");
        r = compile_query(q, l->query, &f);
        if (r < 0)
                return r;
        if (f.group_by_status)
                return api_error_set(&q->err, -EINVAL,
                                     "GROUP BY is for CountWorkflows, not ListWorkflows");
        if (l->page_token) {
                r = token_parse_page(q, l->query, l->page_token, &after);
                if (r < 0)
                        return r;
                rq.after = &after;
        }
        rq.filter = &f;
        rq.limit = l->limit ? MIN(l->limit, 100000u) : 1000;
        msgbuf_init(&c.items);
        r = store_runs_query(q->m->store, &rq, list_one, &c, &last);
        if (r >= 0)
                r = msgbuf_error(&c.items);
        /* A full page may have a next one; an empty next page ends the list. */
        if (r >= 0 && c.n == rq.limit && last.set)
                r = token_format(l->query, &last, &token);
        if (r >= 0) {
                pk = conn_reply_begin(q->conn, q->id, token ? 2 : 1, &start);
                (void) msg_pack_str(pk, "workflows");
                (void) msgpack_pack_array(pk, c.n);
                (void) msg_pack_raw(pk, c.items.sb.data, c.items.sb.size);
                if (token)
                        (void) msg_pack_kv_str(pk, "next_page_token", token);
                conn_reply_end(q->conn, q->id, start);
        }
        msgbuf_done(&c.items);
        return r;
}

typedef struct CountRequest {
        const char *query;
} CountRequest;

static const MsgField count_fields[] = {
        { "query", MSG_STR, offsetof(CountRequest, query), false, FILTER_QUERY_MAX },
        {},
};

/* CountWorkflows with GROUP BY ExecutionStatus: count, and groups [{status, count}] of the
 * statuses that have runs. */
static int count_by_status(Request *q, const FilterSql *f) {
        uint64_t n[_WORKFLOW_STATUS_MAX], total = 0;
        msgpack_packer *pk;
        size_t start, groups = 0;
        int r;

        r = store_runs_count_by_status(q->m->store, f, !q->conn->admin, q->conn->cred.uid, n);
        if (r < 0)
                return r;
        for (int s = 1; s < _WORKFLOW_STATUS_MAX; s++) {
                total += n[s];
                groups += n[s] > 0;
        }
        pk = conn_reply_begin(q->conn, q->id, 2, &start);
        (void) msg_pack_kv_uint(pk, "count", total);
        (void) msg_pack_str(pk, "groups");
        (void) msgpack_pack_array(pk, groups);
        for (int s = 1; s < _WORKFLOW_STATUS_MAX; s++)
                if (n[s] > 0) {
                        (void) msgpack_pack_map(pk, 2);
                        (void) msg_pack_kv_str(pk, "status",
                                               workflow_status_to_string((WorkflowStatus) s));
                        (void) msg_pack_kv_uint(pk, "count", n[s]);
                }
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

static int op_count_workflows(Request *q) {
        _cleanup_(filter_sql_done) FilterSql f = {};
        CountRequest c = {};
        msgpack_packer *pk;
        uint64_t n = 0;
        size_t start;
        int r;

        r = PARSE(q, count_fields, &c);
        if (r >= 0)
                r = compile_query(q, c.query, &f);
        if (r >= 0 && f.group_by_status)
                return count_by_status(q, &f);
        if (r >= 0)
                r = store_runs_count(q->m->store, &f, !q->conn->admin, q->conn->cred.uid, &n);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 1, &start);
        (void) msg_pack_kv_uint(pk, "count", n);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

static int op_list_workflows(Request *q) {
        ListRequest l = {};
        RunFilter f = {};
        ListCtx c = {};
        msgpack_packer *pk;
        size_t start;
        int r;

        r = PARSE(q, list_fields, &l);
        if (r < 0)
                return r;
        if (l.query || l.page_token)
                return list_query(q, &l);
        if (l.status) {
                f.status = workflow_status_from_string(l.status);
                if (f.status < 0)
                        return api_error_set(&q->err, -EINVAL,
                                             "unknown status '%s' (Running, "
                                             "Completed, Failed, Canceled, Terminated, TimedOut, "
                                             "ContinuedAsNew, Paused)",
                                             l.status);
        }
        f.workflow_type = l.workflow_type;
        f.task_queue = l.task_queue;
        f.workflow_id = l.workflow_id;
        f.limit = l.limit ? MIN(l.limit, 100000u) : 1000;
        f.only_uid = !q->conn->admin;
        f.uid = q->conn->cred.uid;
        msgbuf_init(&c.items);
        r = store_runs_list(q->m->store, &f, list_one, &c);
        if (r >= 0)
                r = msgbuf_error(&c.items);
        if (r >= 0) {
                pk = conn_reply_begin(q->conn, q->id, 1, &start);
                (void) msg_pack_str(pk, "workflows");
                (void) msgpack_pack_array(pk, c.n);
                (void) msg_pack_raw(pk, c.items.sb.data, c.items.sb.size);
                conn_reply_end(q->conn, q->id, start);
        }
        msgbuf_done(&c.items);
        return r;
}

/* ---- batch operations (batch.h) ---- */

typedef struct BatchArgsReq {
        BatchStartRequest b;
        uint64_t rps;
        const msgpack_object *reapply_exclude;
} BatchArgsReq;

static const MsgField batch_start_fields[] = {
        { "operation", MSG_STR, offsetof(BatchArgsReq, b.op), true, 16 },
        { "query", MSG_STR, offsetof(BatchArgsReq, b.query), false, FILTER_QUERY_MAX },
        { "batch_id", MSG_STR, offsetof(BatchArgsReq, b.batch_id), false, 36 },
        { "rps", MSG_UINT, offsetof(BatchArgsReq, rps) },
        { "reason", MSG_STR, offsetof(BatchArgsReq, b.reason), false, 4096 },
        { "signal_name", MSG_STR, offsetof(BatchArgsReq, b.signal_name), false, NAME_MAX_LEN },
        { "input", MSG_BIN, offsetof(BatchArgsReq, b.input), false, PAYLOAD_SIZE_MAX },
        { "to", MSG_STR, offsetof(BatchArgsReq, b.to), false, 16 },
        { "reapply_exclude", MSG_ARRAY, offsetof(BatchArgsReq, reapply_exclude) },
        {},
};

static int op_start_batch_operation(Request *q) {
        _cleanup_(filter_sql_done) FilterSql f = {};
        BatchArgsReq a = { .b = { .reapply_signals = true } };
        char batch_id[37];
        msgpack_packer *pk;
        uint64_t total = 0;
        size_t start;
        int r;

        r = PARSE(q, batch_start_fields, &a);
        if (r < 0)
                return r;
        if (a.b.batch_id && !*a.b.batch_id)
                return api_error_set(&q->err, -EINVAL, "field \"batch_id\" is empty");
        if (a.b.to && !streq(a.b.to, "first") && !streq(a.b.to, "last"))
                return api_error_set(&q->err, -EINVAL, "field \"to\" takes \"first\" or \"last\"");
        r = parse_reapply_exclude(q, a.reapply_exclude, &a.b.reapply_signals);
        if (r < 0)
                return r;
        r = compile_query(q, a.b.query, &f);
        if (r < 0)
                return r;
        if (f.group_by_status)
                return api_error_set(&q->err, -EINVAL, "a batch's query is a filter: no GROUP BY");
        a.b.rps = (double) a.rps;
        a.b.caller_admin = q->conn->admin;
        r = batch_start(q->m, &a.b, &f, batch_id, &total, &q->err);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 2, &start);
        (void) msg_pack_kv_str(pk, "batch_id", batch_id);
        (void) msg_pack_kv_uint(pk, "total", total);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

typedef struct BatchIdReq {
        const char *batch_id;
} BatchIdReq;

static const MsgField batch_id_fields[] = {
        { "batch_id", MSG_STR, offsetof(BatchIdReq, batch_id), true, 36 },
        {},
};

static int op_describe_batch_operation(Request *q) {
        _cleanup_(batch_row_done) BatchRow b = {};
        BatchItem items[64];
        BatchIdReq t = {};
        msgpack_packer *pk;
        size_t start, n = 0, listed = 0;
        uint64_t from = 1;
        int r;

        r = PARSE(q, batch_id_fields, &t);
        if (r < 0)
                return r;
        r = store_batch_get(q->m->store, t.batch_id, &b);
        if (r >= 0 && !q->conn->admin && b.uid != q->conn->cred.uid)
                r = -ENOENT; /* DESIGN.md §10: another user's batch does not exist */
        if (r == -ENOENT)
                return api_error_set(&q->err, -ENOENT, "batch '%s' not found", t.batch_id);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 2, &start);
        (void) msg_pack_str(pk, "batch");
        batch_pack(&b, pk);
        (void) msg_pack_str(pk, "failures");
        (void) msgpack_pack_array(pk, (uint32_t) MIN(b.failed, BATCH_FAILURES_MAX));
        /* The failed items, in order, as the report of what failed and why. */
        while (r >= 0 && listed < MIN(b.failed, BATCH_FAILURES_MAX)) {
                r = store_batch_items(q->m->store, b.batch_id, from, true,
                                      MIN(ELEMENTSOF(items), BATCH_FAILURES_MAX - listed), items,
                                      &n);
                for (size_t i = 0; r >= 0 && i < n; i++, listed++) {
                        (void) msgpack_pack_map(pk, 5);
                        (void) msg_pack_kv_uint(pk, "seq", items[i].seq);
                        (void) msg_pack_kv_str(pk, "workflow_id", items[i].workflow_id);
                        (void) msg_pack_kv_str(pk, "run_id", items[i].run_id);
                        (void) msg_pack_kv_str(pk, "code", items[i].code ? items[i].code : "");
                        (void) msg_pack_kv_str(pk, "message",
                                               items[i].message ? items[i].message : "");
                        from = items[i].seq + 1;
                }
                for (size_t i = 0; i < n; i++)
                        batch_item_done(&items[i]);
                if (r >= 0 && n == 0)
                        r = -EUCLEAN; /* fewer failed items than the batch counted */
        }
        if (r < 0)
                return r; /* api_handle_frame() drops the half-built answer */
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

typedef struct BatchListCtx {
        MsgBuf items;
        size_t n;
} BatchListCtx;

static int list_batch_one(const BatchRow *b, void *userdata) {
        BatchListCtx *c = userdata;

        batch_pack(b, &c->items.pk);
        c->n++;
        return 0;
}

static int op_list_batch_operations(Request *q) {
        BatchListCtx c = {};
        msgpack_packer *pk;
        size_t start;
        int r;

        msgbuf_init(&c.items);
        r = store_batches_list(q->m->store, !q->conn->admin, q->conn->cred.uid, list_batch_one,
                               &c);
        if (r >= 0)
                r = msgbuf_error(&c.items);
        if (r >= 0) {
                pk = conn_reply_begin(q->conn, q->id, 1, &start);
                (void) msg_pack_str(pk, "batches");
                (void) msgpack_pack_array(pk, c.n);
                (void) msg_pack_raw(pk, c.items.sb.data, c.items.sb.size);
                conn_reply_end(q->conn, q->id, start);
        }
        msgbuf_done(&c.items);
        return r;
}

/* ---- administration ---- */

#define VERIFY_PROBLEMS_MAX 1000 /* listed in one answer; "problem_count" has them all */

typedef struct VerifyRequest {
        const msgpack_object *workflow_ids;
} VerifyRequest;

static const MsgField verify_fields[] = {
        { "workflow_ids", MSG_ARRAY, offsetof(VerifyRequest, workflow_ids) },
        {},
};

typedef struct VerifyAnswer {
        MsgBuf problems;
        size_t n;
} VerifyAnswer;

static int
verify_collect(const RunRow *run, uint64_t event_id, const char *problem, void *userdata) {
        VerifyAnswer *v = userdata;
        msgpack_packer *pk = &v->problems.pk;

        if (v->n >= VERIFY_PROBLEMS_MAX)
                return 0;
        v->n++;
        (void) msgpack_pack_map(pk, 4);
        (void) msg_pack_kv_str(pk, "workflow_id", run->workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", run->run_id);
        (void) msg_pack_kv_uint(pk, "event_id", event_id);
        (void) msg_pack_kv_str(pk, "message", problem);
        return msgbuf_error(&v->problems);
}

/* Checks the named workflow ids (every run of each) or, without any, every run the caller may
 * see, with the history linter. Reads only; it holds the loop while it reads, as ListWorkflows
 * does, so it is an administrator's tool, not a monitoring probe. */
static int op_verify_history(Request *q) {
        VerifyRequest v = {};
        VerifyStats stats = {};
        VerifyAnswer a = {};
        RunFilter f = { .only_uid = !q->conn->admin, .uid = q->conn->cred.uid };
        msgpack_packer *pk;
        size_t start;
        int r;

        r = PARSE(q, verify_fields, &v);
        if (r < 0)
                return r;
        for (uint32_t i = 0; v.workflow_ids && i < v.workflow_ids->via.array.size; i++) {
                const msgpack_object *o = &v.workflow_ids->via.array.ptr[i];
                if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
                    o->via.str.size > NAME_MAX_LEN || memchr(o->via.str.ptr, 0, o->via.str.size))
                        return api_error_set(&q->err, -EINVAL,
                                             "field \"workflow_ids\" must be an array of "
                                             "non-empty strings (element %u is not)",
                                             (unsigned) i);
        }
        msgbuf_init(&a.problems);
        if (!v.workflow_ids || v.workflow_ids->via.array.size == 0)
                r = verify_runs(q->m->store, &f, verify_collect, &a, &stats);
        for (uint32_t i = 0; r >= 0 && v.workflow_ids && i < v.workflow_ids->via.array.size; i++) {
                const msgpack_object *o = &v.workflow_ids->via.array.ptr[i];
                _cleanup_free_ char *id = msg_strdup(o);
                uint64_t before = stats.runs;

                if (!id) {
                        r = -ENOMEM;
                        break;
                }
                f.workflow_id = id;
                r = verify_runs(q->m->store, &f, verify_collect, &a, &stats);
                if (r >= 0 && stats.runs == before)
                        r = api_error_set(&q->err, -ENOENT, "workflow '%s' not found", id);
        }
        if (r >= 0) {
                pk = conn_reply_begin(q->conn, q->id, 4, &start);
                (void) msg_pack_kv_uint(pk, "runs", stats.runs);
                (void) msg_pack_kv_uint(pk, "events", stats.events);
                (void) msg_pack_kv_uint(pk, "problem_count", stats.problems);
                (void) msg_pack_str(pk, "problems");
                (void) msgpack_pack_array(pk, a.n);
                (void) msg_pack_raw(pk, a.problems.sb.data, a.problems.sb.size);
                conn_reply_end(q->conn, q->id, start);
        }
        msgbuf_done(&a.problems);
        return r;
}

typedef struct BackupRequest {
        const char *path;
} BackupRequest;

static const MsgField backup_fields[] = {
        { "path", MSG_STR, offsetof(BackupRequest, path), true, 4096 },
        {},
};

/* A copy of the whole database: administrators only (it holds every user's workflows). */
static int op_backup_database(Request *q) {
        BackupRequest b = {};
        BackupResult res = {};
        msgpack_packer *pk;
        size_t start;
        int r;

        r = PARSE(q, backup_fields, &b);
        if (r < 0)
                return r;
        if (!q->conn->admin)
                return api_error_set(&q->err, -EACCES,
                                     "only root and members of the durabled group may back up "
                                     "the database");
        r = backup_database(q->m->store, b.path, &q->conn->cred, &res, &q->err);
        if (r < 0)
                return r;
        log_info("Backed up the database to %s for uid %u (%llu pages)", b.path,
                 (unsigned) q->conn->cred.uid, (unsigned long long) res.pages);
        pk = conn_reply_begin(q->conn, q->id, 3, &start);
        (void) msg_pack_kv_str(pk, "path", b.path);
        (void) msg_pack_kv_uint(pk, "pages", res.pages);
        (void) msg_pack_kv_uint(pk, "size", res.size);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

/* ---- worker operations ---- */

typedef struct WorkerRequest {
        const char *task_queue;
        const char *identity;
        uint64_t timeout_usec;
        MsgBin task_token;
        const msgpack_object *commands;
        const char *cause;
        const msgpack_object *failure;
        MsgBin payload; /* result / details */
        uint64_t next_retry_delay_usec;
        uint64_t query_id;
        /* An activity named by id instead of task_token (asynchronous completion) */
        const char *workflow_id;
        const char *run_id;
        const char *activity_id;
        char token_buf[HISTORY_TOKEN_MAX];
} WorkerRequest;

static const MsgField poll_fields[] = {
        { "task_queue", MSG_STR, offsetof(WorkerRequest, task_queue), true, NAME_MAX_LEN },
        { "identity", MSG_STR, offsetof(WorkerRequest, identity), false, 256 },
        { "timeout_usec", MSG_UINT, offsetof(WorkerRequest, timeout_usec) },
        {},
};

static int op_poll(Request *q, TaskKind kind) {
        WorkerRequest w = {};
        char identity[64];
        int r;

        r = PARSE(q, poll_fields, &w);
        if (r >= 0)
                r = check_name(q, "task_queue", w.task_queue);
        if (r < 0)
                return r;
        if (q->conn->shut_down) {
                /* The worker is stopping: a poll sent after ShutdownWorker gets no task. */
                msgpack_packer *pk;
                size_t start;

                pk = conn_reply_begin(q->conn, q->id, 1, &start);
                (void) msg_pack_str(pk, "task");
                (void) msgpack_pack_nil(pk);
                conn_reply_end(q->conn, q->id, start);
                return 0;
        }
        if (!w.identity) {
                snprintf(identity, sizeof(identity), "pid %u", (unsigned) q->conn->cred.pid);
                w.identity = identity;
        }
        r = taskq_add_poll(
                q->m, q->conn, q->id, kind, w.task_queue, w.identity,
                MIN(w.timeout_usec ? w.timeout_usec : POLL_TIMEOUT_DEFAULT, POLL_TIMEOUT_MAX));
        if (r == -EUSERS)
                return api_error_set(&q->err, r, "too many polls on this connection (limit %u)",
                                     q->m->cfg.max_polls_per_connection);
        return r < 0 ? r : 1;
}

static int op_poll_workflow_task(Request *q) {
        q->conn->polled_workflow_tasks = true;
        return op_poll(q, TASK_WORKFLOW);
}

static int op_poll_activity_task(Request *q) {
        return op_poll(q, TASK_ACTIVITY);
}

#define TOKEN_FIELD \
        { "task_token", MSG_BIN, offsetof(WorkerRequest, task_token), true, 256 }
/* Activity operations name the attempt by its task token or, as Temporal's "...ById" calls do,
 * by workflow id (and run id) and activity id: see activity_ref(). */
#define ACTIVITY_REF_FIELDS                                                                      \
        { "task_token", MSG_BIN, offsetof(WorkerRequest, task_token), false, 256 },             \
                { "workflow_id", MSG_STR, offsetof(WorkerRequest, workflow_id), false,          \
                  NAME_MAX_LEN },                                                                \
                { "run_id", MSG_STR, offsetof(WorkerRequest, run_id), false, 64 },              \
        {                                                                                        \
                "activity_id", MSG_STR, offsetof(WorkerRequest, activity_id), false, NAME_MAX_LEN \
        }

/* The task token of an activity operation: the one given, or the running attempt's of
 * workflow_id/activity_id. */
static int activity_ref(Request *q, WorkerRequest *w) {
        _cleanup_(run_row_done) RunRow run = {};
        int r;

        if (w->task_token.ptr) {
                if (w->workflow_id || w->activity_id || w->run_id)
                        return api_error_set(&q->err, -EINVAL,
                                             "give either task_token or workflow_id and "
                                             "activity_id, not both");
                return 0; /* whose token it is, the history engine checks (history.h) */
        }
        if (!w->workflow_id || !w->activity_id)
                return api_error_set(&q->err, -EINVAL,
                                     "field \"task_token\", or \"workflow_id\" and "
                                     "\"activity_id\", required");
        r = resolve_run(q, w->workflow_id, w->run_id, &run);
        if (r < 0)
                return r;
        r = history_activity_token(q->m, &run, w->activity_id, w->token_buf, &q->err);
        if (r < 0)
                return r;
        w->task_token = (MsgBin){ .ptr = w->token_buf, .size = strlen(w->token_buf) };
        return 0;
}

static const MsgField complete_wft_fields[] = {
        TOKEN_FIELD,
        { "commands", MSG_ARRAY, offsetof(WorkerRequest, commands), true },
        { "identity", MSG_STR, offsetof(WorkerRequest, identity), false, 256 },
        {},
};

static int op_complete_workflow_task(Request *q) {
        WorkerRequest w = { .identity = "" };
        int r;

        r = PARSE(q, complete_wft_fields, &w);
        if (r < 0)
                return r;
        r = history_complete_workflow_task(q->m, &w.task_token, w.commands, w.identity,
                                           q->conn->serial, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static const MsgField fail_wft_fields[] = {
        TOKEN_FIELD,
        { "cause", MSG_STR, offsetof(WorkerRequest, cause), true, 256 },
        { "failure", MSG_MAP, offsetof(WorkerRequest, failure), true },
        {},
};

static int op_fail_workflow_task(Request *q) {
        WorkerRequest w = {};
        int r;

        r = PARSE(q, fail_wft_fields, &w);
        if (r < 0)
                return r;
        r = history_fail_workflow_task(q->m, &w.task_token, w.cause, w.failure, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static const MsgField query_answer_fields[] = {
        { "query_id", MSG_UINT, offsetof(WorkerRequest, query_id), true },
        { "result", MSG_BIN, offsetof(WorkerRequest, payload), false, PAYLOAD_SIZE_MAX },
        { "failure", MSG_MAP, offsetof(WorkerRequest, failure) },
        {},
};

static int op_respond_query_task(Request *q) {
        WorkerRequest w = {};
        msgpack_packer *pk;
        Query *query;
        size_t start;
        int r;

        r = PARSE(q, query_answer_fields, &w);
        if (r < 0)
                return r;
        query = taskq_find_query(q->m, w.query_id);
        if (!query || query->worker != q->conn)
                return api_error_set(&q->err, -ENOENT, "query %llu not found (it timed out)",
                                     (unsigned long long) w.query_id);
        if (query->update_id)
                update_validated(q, query, w.failure);
        else if (w.failure) {
                const msgpack_object *msg = msg_get(w.failure, "message");
                char text[512] = "query failed";
                if (msg && msg->type == MSGPACK_OBJECT_STR)
                        snprintf(text, sizeof(text), "%.*s", (int) MIN(msg->via.str.size, 500u),
                                 msg->via.str.ptr);
                conn_reply_error(query->caller, query->caller_req, -EREMOTEIO, text);
        } else {
                pk = conn_reply_begin(query->caller, query->caller_req, 1, &start);
                (void) msg_pack_str(pk, "result");
                if (w.payload.ptr)
                        (void) msg_pack_bin(pk, w.payload.ptr, w.payload.size);
                else
                        (void) msgpack_pack_nil(pk);
                conn_reply_end(query->caller, query->caller_req, start);
        }
        query_free(query);
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static const MsgField complete_act_fields[] = {
        ACTIVITY_REF_FIELDS,
        { "result", MSG_BIN, offsetof(WorkerRequest, payload), false, PAYLOAD_SIZE_MAX },
        {},
};

static int op_complete_activity_task(Request *q) {
        WorkerRequest w = {};
        int r;

        r = PARSE(q, complete_act_fields, &w);
        if (r < 0)
                return r;
        r = activity_ref(q, &w);
        if (r < 0)
                return r;
        r = history_complete_activity(q->m, &w.task_token, &w.payload, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static const MsgField fail_act_fields[] = {
        ACTIVITY_REF_FIELDS,
        { "failure", MSG_MAP, offsetof(WorkerRequest, failure), true },
        { "next_retry_delay_usec", MSG_UINT, offsetof(WorkerRequest, next_retry_delay_usec) },
        {},
};

static int op_fail_activity_task(Request *q) {
        WorkerRequest w = {};
        int r;

        r = PARSE(q, fail_act_fields, &w);
        if (r < 0)
                return r;
        r = activity_ref(q, &w);
        if (r < 0)
                return r;
        r = history_fail_activity(q->m, &w.task_token, w.failure, w.next_retry_delay_usec, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static const MsgField details_fields[] = {
        ACTIVITY_REF_FIELDS,
        { "details", MSG_BIN, offsetof(WorkerRequest, payload), false, PAYLOAD_SIZE_MAX },
        {},
};

static int op_heartbeat_activity(Request *q) {
        WorkerRequest w = {};
        msgpack_packer *pk;
        bool cancel = false;
        size_t start;
        int r;

        r = PARSE(q, details_fields, &w);
        if (r < 0)
                return r;
        r = activity_ref(q, &w);
        if (r < 0)
                return r;
        r = history_heartbeat_activity(q->m, &w.task_token, &w.payload, &cancel, &q->err);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 1, &start);
        (void) msg_pack_kv_bool(pk, "cancel_requested", cancel);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

static int op_cancel_activity_task(Request *q) {
        WorkerRequest w = {};
        int r;

        r = PARSE(q, details_fields, &w);
        if (r < 0)
                return r;
        r = activity_ref(q, &w);
        if (r < 0)
                return r;
        r = history_cancel_activity(q->m, &w.task_token, &w.payload, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static int op_shutdown_worker(Request *q) {
        q->conn->shut_down = true;
        taskq_shutdown_polls(q->m, q->conn);
        conn_reply_empty(q->conn, q->id);
        return 0;
}

/* Counters of the daemon's work since it started, for benchmarks and monitoring (the same for
 * every caller: they say nothing about anyone's workflows). */
static int op_get_stats(Request *q) {
        StoreStats st;
        msgpack_packer *pk;
        size_t start;

        store_get_stats(q->m->store, &st);
        pk = conn_reply_begin(q->conn, q->id, 5, &start);
        (void) msg_pack_kv_uint(pk, "requests", q->m->n_requests);
        (void) msg_pack_kv_uint(pk, "commits", st.commits);
        (void) msg_pack_kv_uint(pk, "wal_frames", st.wal_frames);
        (void) msg_pack_kv_uint(pk, "checkpoints", st.checkpoints);
        (void) msg_pack_kv_uint(pk, "connections", q->m->n_conns);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

/* A standalone activity (history-standalone.c): answered like StartWorkflow. */
static int op_start_activity(Request *q) {
        StandaloneRequest s = {};
        char run_id[37];
        msgpack_packer *pk;
        bool started;
        size_t start;
        int r;

        r = PARSE(q, history_standalone_fields(), &s);
        if (r >= 0)
                r = check_name(q, "activity_id", s.activity_id);
        if (r >= 0)
                r = check_name(q, "activity_type", s.activity_type);
        if (r >= 0 && s.task_queue)
                r = check_name(q, "task_queue", s.task_queue);
        if (r < 0)
                return r;
        s.caller_admin = q->conn->admin;
        r = history_start_standalone(q->m, &s, run_id, &started, &q->err);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 2, &start);
        (void) msg_pack_kv_str(pk, "run_id", run_id);
        (void) msg_pack_kv_bool(pk, "started", started);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

/* Activity units (durabled.activity(5)): what is loaded, and why a unit was refused. */
static int op_list_activity_types(Request *q) {
        msgpack_packer *pk;
        size_t start;

        pk = conn_reply_begin(q->conn, q->id, 1, &start);
        (void) msg_pack_str(pk, "activity_types");
        (void) supervisor_pack_types(q->m, pk);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

/* Re-reads the activity units, as SIGHUP does; administrators only (DESIGN.md §10). */
static int op_reload(Request *q) {
        msgpack_packer *pk;
        size_t start;
        int r;

        if (!q->conn->admin)
                return api_error_set(&q->err, -EPERM,
                                     "only administrators may reload durabled's activity units");
        r = supervisor_reload(q->m);
        if (r < 0)
                return api_error_set(&q->err, r, "reloading the activity units failed: %s",
                                     strerror(-r));
        pk = conn_reply_begin(q->conn, q->id, 1, &start);
        (void) msg_pack_str(pk, "activity_types");
        (void) supervisor_pack_types(q->m, pk);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}
/* ---- task queues: flow control (flow.h) ---- */

#define QUEUE_LIMIT_MAX 1000000
#define RATE_PERIOD_MIN (1000ULL)                /* 1 ms */
#define RATE_PERIOD_MAX (24ULL * 3600 * 1000000) /* a day (Inngest's longest period) */

typedef struct QueueConfigRequest {
        const char *task_queue;
        const char *fairness_key;
        const char *activity_type;
        uint64_t concurrency_limit;
        uint64_t rate_limit;
        uint64_t rate_period_usec;
        uint64_t rate_burst;
} QueueConfigRequest;

static const MsgField queue_config_fields[] = {
        { "task_queue", MSG_STR, offsetof(QueueConfigRequest, task_queue), true, NAME_MAX_LEN },
        { "fairness_key", MSG_STR, offsetof(QueueConfigRequest, fairness_key), false,
          TASK_FAIRNESS_KEY_MAX },
        { "activity_type", MSG_STR, offsetof(QueueConfigRequest, activity_type), false,
          NAME_MAX_LEN },
        { "concurrency_limit", MSG_UINT, offsetof(QueueConfigRequest, concurrency_limit) },
        { "rate_limit", MSG_UINT, offsetof(QueueConfigRequest, rate_limit) },
        { "rate_period_usec", MSG_UINT, offsetof(QueueConfigRequest, rate_period_usec) },
        { "rate_burst", MSG_UINT, offsetof(QueueConfigRequest, rate_burst) },
        {},
};

static void pack_limits(msgpack_packer *pk, const TaskQueueLimits *l) {
        (void) msg_pack_str(pk, "limits");
        (void) msgpack_pack_map(pk, 4);
        (void) msg_pack_kv_uint(pk, "concurrency_limit", l->concurrency);
        (void) msg_pack_kv_uint(pk, "rate_limit", l->rate);
        (void) msg_pack_kv_uint(pk, "rate_period_usec", l->rate_period_usec);
        (void) msg_pack_kv_uint(pk, "rate_burst", l->burst);
}

/* A limit of the request: its value when the field is given (0 clears it), else @current. */
static int config_value(Request *q,
                        const char *field,
                        uint64_t given,
                        uint64_t min,
                        uint64_t max,
                        uint64_t current,
                        uint64_t *ret) {
        if (!msg_get(q->map, field)) {
                *ret = current;
                return 0;
        }
        if (given != 0 && (given < min || given > max))
                return api_error_set(&q->err, -EINVAL,
                                     "field \"%s\" must be 0 (none) or from %" PRIu64
                                     " to %" PRIu64,
                                     field, min, max);
        *ret = given;
        return 0;
}

/* The limits of @c merged into those @queue has: a field left out keeps its value. */
static int config_merge(Request *q,
                        const QueueConfigRequest *c,
                        LimitScope scope,
                        const char *name,
                        TaskQueueLimits *ret) {
        Flow *f = flow_find_scope(q->m, c->task_queue, scope, name);
        TaskQueueLimits cur = f ? f->limits : (TaskQueueLimits){};
        uint64_t v[4] = {};
        int r;

        r = config_value(q, "concurrency_limit", c->concurrency_limit, 1, QUEUE_LIMIT_MAX,
                         cur.concurrency, &v[0]);
        if (r >= 0)
                r = config_value(q, "rate_limit", c->rate_limit, 1, QUEUE_LIMIT_MAX, cur.rate,
                                 &v[1]);
        if (r >= 0)
                r = config_value(q, "rate_period_usec", c->rate_period_usec, RATE_PERIOD_MIN,
                                 RATE_PERIOD_MAX, cur.rate_period_usec, &v[2]);
        if (r >= 0)
                r = config_value(q, "rate_burst", c->rate_burst, 1, QUEUE_LIMIT_MAX, cur.burst,
                                 &v[3]);
        if (r < 0)
                return r;
        *ret = (TaskQueueLimits){
                .concurrency = (uint32_t) v[0],
                .rate = (uint32_t) v[1],
                .rate_period_usec = v[1] ? (v[2] ?: 1000000) : 0, /* default: per second */
                .burst = v[1] ? (uint32_t) (v[3] ?: 1) : 0,       /* default: one at a time */
        };
        return 0;
}

/* The scope a ConfigureTaskQueue names: the queue, or one fairness key or activity type of it
 * (at most one of the two fields). */
static int config_scope(Request *q,
                        const QueueConfigRequest *c,
                        LimitScope *ret_scope,
                        const char **ret_name) {
        const char *v;
        int r;

        if (c->fairness_key && c->activity_type)
                return api_error_set(&q->err, -EINVAL,
                                     "fields \"fairness_key\" and \"activity_type\" name two "
                                     "scopes: give at most one");
        v = c->fairness_key ?: c->activity_type;
        r = check_name(q, c->fairness_key ? "fairness_key" : "activity_type", v);
        if (r < 0)
                return r;
        for (const char *p = v; p && *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return api_error_set(&q->err, -EINVAL,
                                             "field \"%s\" must not hold control characters",
                                             c->fairness_key ? "fairness_key" : "activity_type");
        *ret_scope = c->fairness_key    ? LIMIT_SCOPE_KEY
                     : c->activity_type ? LIMIT_SCOPE_TYPE
                                        : LIMIT_SCOPE_QUEUE;
        *ret_name = v ?: "";
        return 0;
}

/* Sets limits of a task queue; administrators only (DESIGN.md §10). Answers the limits now in
 * force. */
static int op_configure_task_queue(Request *q) {
        QueueConfigRequest c = {};
        LimitScope scope = LIMIT_SCOPE_QUEUE;
        const char *name = "";
        TaskQueueLimits l;
        msgpack_packer *pk;
        size_t start;
        int r;

        r = PARSE(q, queue_config_fields, &c);
        if (r >= 0)
                r = check_name(q, "task_queue", c.task_queue);
        if (r >= 0)
                r = config_scope(q, &c, &scope, &name);
        if (r < 0)
                return r;
        if (!q->conn->admin)
                return api_error_set(&q->err, -EPERM,
                                     "only administrators may set the limits of a task queue");
        r = config_merge(q, &c, scope, name, &l);
        if (r < 0)
                return r;
        r = flow_configure(q->m, c.task_queue, scope, name, &l);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 2 + (scope != LIMIT_SCOPE_QUEUE), &start);
        (void) msg_pack_kv_str(pk, "task_queue", c.task_queue);
        if (scope != LIMIT_SCOPE_QUEUE)
                (void) msg_pack_kv_str(
                        pk, scope == LIMIT_SCOPE_KEY ? "fairness_key" : "activity_type", name);
        pack_limits(pk, &l);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

static const MsgField queue_describe_fields[] = {
        { "task_queue", MSG_STR, offsetof(QueueConfigRequest, task_queue), true, NAME_MAX_LEN },
        {},
};

typedef struct ScopedPack {
        Manager *m;
        msgpack_packer *pk;
        size_t n;
} ScopedPack;

static void count_scoped(Flow *f, void *userdata) {
        ((ScopedPack *) userdata)->n++;
}

/* One scoped limit as DescribeTaskQueue shows it: its scope, limits, running count and what it
 * held back so far. */
static void pack_scoped(Flow *f, void *userdata) {
        ScopedPack *x = userdata;

        (void) msgpack_pack_map(x->pk, 5);
        (void) msg_pack_kv_str(
                x->pk, f->scope == LIMIT_SCOPE_KEY ? "fairness_key" : "activity_type", f->name);
        pack_limits(x->pk, &f->limits);
        (void) msg_pack_kv_uint(x->pk, "running",
                                store_started_count(x->m->store, f->queue, f->scope, f->name));
        (void) msg_pack_kv_uint(x->pk, "held_by_concurrency", f->held_concurrency);
        (void) msg_pack_kv_uint(x->pk, "held_by_rate", f->held_rate);
}

static int op_describe_task_queue(Request *q) {
        QueueConfigRequest c = {};
        ScopedPack x = { q->m };
        Flow *f;
        msgpack_packer *pk;
        size_t start;
        int r;

        r = PARSE(q, queue_describe_fields, &c);
        if (r >= 0)
                r = check_name(q, "task_queue", c.task_queue);
        if (r < 0)
                return r;
        /* A queue's backlog, pollers and running counts are those of every user's tasks in it:
         * not another user's business (DESIGN.md §10), as its limits are not. */
        if (!q->conn->admin)
                return api_error_set(&q->err, -EPERM,
                                     "only administrators may describe a task queue");
        f = flow_find(q->m, c.task_queue);
        pk = conn_reply_begin(q->conn, q->id, 6, &start);
        (void) msg_pack_kv_str(pk, "task_queue", c.task_queue);
        taskq_pack_describe(q->m, c.task_queue, pk);
        pack_limits(pk, f ? &f->limits : &(TaskQueueLimits){});
        x.pk = pk;
        flow_foreach_scoped(q->m, c.task_queue, count_scoped, &x);
        (void) msg_pack_str(pk, "scoped_limits");
        (void) msgpack_pack_array(pk, x.n);
        flow_foreach_scoped(q->m, c.task_queue, pack_scoped, &x);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

/* Schedule operations live in api-schedule.c. */
#define SCHEDULE_OP(name)                                                                        \
        static int op_##name(Request *q) {                                                       \
                return api_##name(&(ApiCall){ q->m, q->conn, q->id, q->map, q->zone, &q->err }); \
        }
SCHEDULE_OP(backfill_schedule)
SCHEDULE_OP(create_schedule)
SCHEDULE_OP(delete_schedule)
SCHEDULE_OP(describe_schedule)
SCHEDULE_OP(list_schedules)
SCHEDULE_OP(pause_schedule)
SCHEDULE_OP(trigger_schedule)
SCHEDULE_OP(unpause_schedule)

/* Sorted by name for bsearch(). */
static const Op ops[] = {
        { "BackfillSchedule", op_backfill_schedule, true },
        { "BackupDatabase", op_backup_database, false },
        { "CancelActivityTask", op_cancel_activity_task, true },
        { "CancelWorkflow", op_cancel_workflow, true },
        { "CompleteActivityTask", op_complete_activity_task, true },
        { "CompleteWorkflowTask", op_complete_workflow_task, true },
        { "ConfigureTaskQueue", op_configure_task_queue, true },
        { "CountWorkflows", op_count_workflows, false },
        { "CreateSchedule", op_create_schedule, true },
        { "DeleteSchedule", op_delete_schedule, true },
        { "DeleteWorkflow", op_delete_workflow, true },
        { "DescribeBatchOperation", op_describe_batch_operation, false },
        { "DescribeSchedule", op_describe_schedule, false },
        { "DescribeTaskQueue", op_describe_task_queue, false },
        { "DescribeWorkflow", op_describe_workflow, false },
        { "FailActivityTask", op_fail_activity_task, true },
        { "FailWorkflowTask", op_fail_workflow_task, true },
        { "ForkWorkflow", op_fork_workflow, true },
        { "GetHistory", op_get_history, false },
        { "GetResult", op_get_result, false },
        { "GetStats", op_get_stats, false },
        { "HeartbeatActivity", op_heartbeat_activity, true },
        { "ListActivityTypes", op_list_activity_types, false },
        { "ListBatchOperations", op_list_batch_operations, false },
        { "ListSchedules", op_list_schedules, false },
        { "ListWorkflows", op_list_workflows, false },
        { "PauseActivity", op_pause_activity, true },
        { "PauseSchedule", op_pause_schedule, true },
        { "PauseWorkflow", op_pause_workflow, true },
        { "PollActivityTask", op_poll_activity_task, false },
        { "PollWorkflowTask", op_poll_workflow_task, false },
        { "PollWorkflowUpdate", op_poll_workflow_update, false },
        { "QueryWorkflow", op_query_workflow, false },
        { "RedriveWorkflow", op_redrive_workflow, true },
        { "Reload", op_reload, false },
        { "ResetActivity", op_reset_activity, true },
        { "ResetWorkflow", op_reset_workflow, true },
        { "RespondQueryTask", op_respond_query_task, true }, /* accepts updates */
        { "ShutdownWorker", op_shutdown_worker, false },
        { "SignalWithStart", op_signal_with_start, true },
        { "SignalWorkflow", op_signal_workflow, true },
        { "StartActivity", op_start_activity, true },
        { "StartBatchOperation", op_start_batch_operation, true },
        { "StartWorkflow", op_start_workflow, true },
        { "TerminateWorkflow", op_terminate_workflow, true },
        { "TriggerSchedule", op_trigger_schedule, true },
        { "UnpauseActivity", op_unpause_activity, true },
        { "UnpauseSchedule", op_unpause_schedule, true },
        { "UnpauseWorkflow", op_unpause_workflow, true },
        { "UpdateWithStart", op_update_with_start, true },
        { "UpdateWorkflow", op_update_workflow, false }, /* writes when the worker answers */
        { "VerifyHistory", op_verify_history, false },
};

static int op_compare(const void *key, const void *elem) {
        return strcmp(key, ((const Op *) elem)->name);
}

static int run_op(Request *q, const Op *op) {
        int r;

        if (!op->writes)
                return op->handler(q);
        r = store_savepoint(q->m->store);
        if (r < 0)
                return api_error_set(&q->err, r, "the daemon cannot write to its database: %s",
                                     strerror(-r));
        q->m->actor_uid = q->conn->cred.uid;
        q->m->actor_admin = q->admin;
        r = op->handler(q);
        q->m->actor_admin = false;
        if (r < 0 && !q->err.keep_writes)
                store_rollback_to(q->m->store);
        else
                (void) store_release(q->m->store);
        return r;
}

void api_handle_frame(Manager *m, Conn *c, const char *body, size_t len) {
        Request q = { .m = m, .conn = c, .admin = c->admin };
        const msgpack_object *o;
        msgpack_unpacked u;
        char op_name[64] = "";
        const Op *op;
        size_t mark;
        int r;

        msgpack_unpacked_init(&u);
        r = msg_decode(body, len, &u);
        if (r < 0) {
                conn_reply_error(c, 0, -EINVAL, "malformed frame: not one well-formed msgpack map");
                goto finish;
        }
        q.map = &u.data;
        q.zone = u.zone;
        o = msg_get(q.map, "id");
        if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                conn_reply_error(c, 0, -EINVAL, "field \"id\" must be an unsigned integer");
                goto finish;
        }
        q.id = o->via.u64;
        o = msg_get(q.map, "op");
        if (!o || o->type != MSGPACK_OBJECT_STR) {
                conn_reply_error(c, q.id, -EINVAL, "field \"op\" must be a string");
                goto finish;
        }
        /* "StartWorkflow\0x" must not run StartWorkflow. */
        if (memchr(o->via.str.ptr, 0, o->via.str.size)) {
                conn_reply_error(c, q.id, -EINVAL,
                                 "field \"op\" must be a string without NUL bytes");
                goto finish;
        }
        /* A name longer than any op is unknown all the same; the answer shows its start. */
        memcpy(op_name, o->via.str.ptr, MIN(o->via.str.size, sizeof(op_name) - 1));
        op = bsearch(op_name, ops, ELEMENTSOF(ops), sizeof(ops[0]), op_compare);
        if (!op) {
                char msg[128];
                snprintf(msg, sizeof(msg), "unknown op '%s'", op_name);
                conn_reply_error(c, q.id, -EOPNOTSUPP, msg);
                goto finish;
        }
        mark = c->held.sb.size;
        m->n_requests++;
        r = run_op(&q, op);
        if (r < 0) {
                c->held.sb.size = mark; /* drop a half-built answer */
                if (!q.err.message[0])
                        snprintf(q.err.message, sizeof(q.err.message), "%s failed: %s", op_name,
                                 strerror(-r));
                if (r != -EINVAL && r != -ENOENT && r != -EEXIST && r != -ESTALE)
                        log_warning("%s from uid %u failed: %s", op_name, (unsigned) c->cred.uid,
                                    q.err.message);
                conn_reply_error(c, q.id, r, q.err.message);
        }
finish:
        msgpack_unpacked_destroy(&u);
}
