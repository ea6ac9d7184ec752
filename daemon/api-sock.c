/* The Unix-socket API: decodes a request frame, authorises it, dispatches it through a table of
 * operations (doc/protocol.md) and answers. Handlers return 0 when they answered, 1 when the
 * answer comes later (long polls, queries, waits), or a negative errno with a sentence in the
 * request's ApiError, which the dispatcher turns into the error answer.
 *
 * Every operation that writes runs inside a savepoint of the pass's transaction: when it fails,
 * its writes are undone and the rest of the pass is unaffected. */

#include "daemon/api-sock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/backup.h"
#include "daemon/clock.h"
#include "daemon/conn.h"
#include "daemon/history.h"
#include "daemon/manager.h"
#include "daemon/taskq.h"
#include "daemon/verify.h"
#include "daemon/waiter.h"
#include "proto/event.h"

#define NAME_MAX_LEN 1000      /* ids, names, types (Temporal's limit.maxIDLength) */
#define POLL_TIMEOUT_DEFAULT (60ULL * 1000000)
#define POLL_TIMEOUT_MAX (600ULL * 1000000)
#define QUERY_TIMEOUT_DEFAULT (10ULL * 1000000)

typedef struct Request {
        Manager *m;
        Conn *conn;
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

static const MsgField start_fields[] = {
        { "workflow_id", MSG_STR, offsetof(StartRequest, workflow_id), true, NAME_MAX_LEN },
        { "workflow_type", MSG_STR, offsetof(StartRequest, workflow_type), true, NAME_MAX_LEN },
        { "task_queue", MSG_STR, offsetof(StartRequest, task_queue), true, NAME_MAX_LEN },
        { "input", MSG_BIN, offsetof(StartRequest, input), false, PAYLOAD_SIZE_MAX },
        { "task_timeout_usec", MSG_UINT, offsetof(StartRequest, task_timeout_usec) },
        { "request_id", MSG_STR, offsetof(StartRequest, request_id), false, NAME_MAX_LEN },
        {},
};

static int check_name(Request *q, const char *field, const char *value) {
        if (value && !*value)
                return api_error_set(&q->err, -EINVAL, "field \"%s\" must not be empty", field);
        return 0;
}

static int op_start_workflow(Request *q) {
        StartRequest s = {};
        char run_id[37];
        msgpack_packer *pk;
        bool started;
        size_t start;
        int r;

        r = PARSE(q, start_fields, &s);
        if (r >= 0)
                r = check_name(q, "workflow_id", s.workflow_id);
        if (r >= 0)
                r = check_name(q, "workflow_type", s.workflow_type);
        if (r >= 0)
                r = check_name(q, "task_queue", s.task_queue);
        if (r < 0)
                return r;
        s.caller_admin = q->conn->admin;
        r = history_start_workflow(q->m, &s, run_id, &started, &q->err);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 2, &start);
        (void) msg_pack_kv_str(pk, "run_id", run_id);
        (void) msg_pack_kv_bool(pk, "started", started);
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

typedef struct TargetRequest {
        const char *workflow_id;
        const char *run_id;
        const char *name; /* signal_name / query_type / reason */
        MsgBin input;     /* input / details */
        uint64_t timeout_usec;
        uint64_t from_event_id;
        bool wait;
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

static const MsgField target_fields[] = {
        TARGET_FIELDS,
        { "wait", MSG_BOOL, offsetof(TargetRequest, wait) },
        { "timeout_usec", MSG_UINT, offsetof(TargetRequest, timeout_usec) },
        { "from_event_id", MSG_UINT, offsetof(TargetRequest, from_event_id) },
        {},
};

static int pack_pending_activity(const ActivityRow *a, void *userdata) {
        msgpack_packer *pk = userdata;
        size_t n = 6 + (a->started_time ? 1 : 0) + (a->last_failure.ptr ? 1 : 0) +
                   (a->heartbeat_details.ptr ? 1 : 0) + (a->state == ACTIVITY_BACKOFF ? 1 : 0);
        const char *state =
                a->cancel_requested ? "CancelRequested" : activity_state_to_string(a->state);

        (void) msgpack_pack_map(pk, n);
        (void) msg_pack_kv_str(pk, "activity_id", a->activity_id);
        (void) msg_pack_kv_str(pk, "activity_type", a->activity_type);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", a->scheduled_id);
        (void) msg_pack_kv_str(pk, "state", state);
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
        size_t start, n = 0;
        int r;

        r = parse_target(q, target_fields, &t, &run);
        if (r < 0)
                return r;
        r = store_activities_foreach(q->m->store, run.run_id, count_activity, &n);
        if (r < 0)
                return r;
        pk = conn_reply_begin(q->conn, q->id, 2, &start);
        (void) msg_pack_str(pk, "workflow");
        (void) history_pack_workflow(&run, pk);
        (void) msg_pack_str(pk, "pending_activities");
        (void) msgpack_pack_array(pk, n);
        r = store_activities_foreach(q->m->store, run.run_id, pack_pending_activity, pk);
        if (r < 0)
                return r;
        conn_reply_end(q->conn, q->id, start);
        return 0;
}

static int op_get_result(Request *q) {
        _cleanup_(run_row_done) RunRow run = {};
        TargetRequest t = {};
        int r;

        r = parse_target(q, target_fields, &t, &run);
        if (r < 0)
                return r;
        if (run.status != WORKFLOW_STATUS_RUNNING || !t.wait) {
                reply_workflow(q, &run);
                return 0;
        }
        r = waiter_add_result(q->m, q->conn, q->id, run.run_id, t.timeout_usec);
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
} ListRequest;

static const MsgField list_fields[] = {
        { "status", MSG_STR, offsetof(ListRequest, status), false, 64 },
        { "workflow_type", MSG_STR, offsetof(ListRequest, workflow_type), false, NAME_MAX_LEN },
        { "task_queue", MSG_STR, offsetof(ListRequest, task_queue), false, NAME_MAX_LEN },
        { "workflow_id", MSG_STR, offsetof(ListRequest, workflow_id), false, NAME_MAX_LEN },
        { "limit", MSG_UINT, offsetof(ListRequest, limit) },
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
        if (l.status) {
                f.status = workflow_status_from_string(l.status);
                if (f.status < 0)
                        return api_error_set(&q->err, -EINVAL,
                                             "unknown status '%s' (Running, "
                                             "Completed, Failed, Canceled, Terminated, TimedOut, "
                                             "ContinuedAsNew)",
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
                _cleanup_free_ char *id = strndup(o->via.str.ptr, o->via.str.size);
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
        if (w.failure) {
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
        TOKEN_FIELD,
        { "result", MSG_BIN, offsetof(WorkerRequest, payload), false, PAYLOAD_SIZE_MAX },
        {},
};

static int op_complete_activity_task(Request *q) {
        WorkerRequest w = {};
        int r;

        r = PARSE(q, complete_act_fields, &w);
        if (r < 0)
                return r;
        r = history_complete_activity(q->m, &w.task_token, &w.payload, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static const MsgField fail_act_fields[] = {
        TOKEN_FIELD,
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
        r = history_fail_activity(q->m, &w.task_token, w.failure, w.next_retry_delay_usec, &q->err);
        if (r < 0)
                return r;
        conn_reply_empty(q->conn, q->id);
        return 0;
}

static const MsgField details_fields[] = {
        TOKEN_FIELD,
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

/* Sorted by name for bsearch(). */
static const Op ops[] = {
        { "BackupDatabase", op_backup_database, false },
        { "CancelActivityTask", op_cancel_activity_task, true },
        { "CancelWorkflow", op_cancel_workflow, true },
        { "CompleteActivityTask", op_complete_activity_task, true },
        { "CompleteWorkflowTask", op_complete_workflow_task, true },
        { "DescribeWorkflow", op_describe_workflow, false },
        { "FailActivityTask", op_fail_activity_task, true },
        { "FailWorkflowTask", op_fail_workflow_task, true },
        { "GetHistory", op_get_history, false },
        { "GetResult", op_get_result, false },
        { "HeartbeatActivity", op_heartbeat_activity, true },
        { "ListWorkflows", op_list_workflows, false },
        { "PollActivityTask", op_poll_activity_task, false },
        { "PollWorkflowTask", op_poll_workflow_task, false },
        { "QueryWorkflow", op_query_workflow, false },
        { "RespondQueryTask", op_respond_query_task, false },
        { "ShutdownWorker", op_shutdown_worker, false },
        { "SignalWorkflow", op_signal_workflow, true },
        { "StartWorkflow", op_start_workflow, true },
        { "TerminateWorkflow", op_terminate_workflow, true },
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
        r = op->handler(q);
        if (r < 0 && !q->err.keep_writes)
                store_rollback_to(q->m->store);
        else
                (void) store_release(q->m->store);
        return r;
}

void api_handle_frame(Manager *m, Conn *c, const char *body, size_t len) {
        Request q = { .m = m, .conn = c };
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
