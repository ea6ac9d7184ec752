/* dur_client: the client role of libdurable (start, signal, query, cancel, terminate, wait for
 * results, and any raw operation for durablectl), on top of one blocking Conn.
 *
 * Each operation is a table of fields; absent optional fields (NULL strings and payloads, zero
 * durations, which the protocol reads as "not set") are left out of the request, so the map
 * header is counted from the table rather than by hand. Answers are read with msg_parse() tables
 * too, and an answer that does not match the protocol is -EBADMSG. */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "libclient/buf.h"
#include "libclient/conn.h"
#include "libclient/failure.h"
#include "libclient/logging.h"
#include "libclient/retry.h"
#include "libclient/visibility.h"
#include "proto/msg.h"
#include "proto/policy.h"

struct dur_client {
        Conn *conn; /* owned */
};

DEFINE_CLEANUP(dur_client, dur_client_free);

typedef enum FieldType {
        FIELD_STR,
        FIELD_PAYLOAD,
        FIELD_UINT,
        FIELD_BOOL,
        FIELD_RAW, /* @payload packed as the value itself (a map), not as a bin */
        FIELD_BIN, /* @payload packed as a bin, whatever it holds (task tokens) */
        FIELD_RETRY,
        FIELD_DOUBLE, /* @dbl; 0: absent */
} FieldType;

/* One request field; which member is read depends on @type. */
typedef struct Field {
        const char *key;
        FieldType type;
        const char *str;               /* NULL: absent */
        const dur_buf *payload;        /* NULL or empty: absent (nil) */
        uint64_t uint;                 /* 0: absent */
        bool boolean;                  /* always sent */
        const dur_retry_policy *retry; /* absent when no field is set */
        double dbl;
} Field;

DUR_PUBLIC int dur_client_connect(dur_client **ret, const char *socket_path) {
        _cleanup_(dur_client_freep) dur_client *c = NULL;
        int r;

        assert_return(ret, -EINVAL);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = conn_connect(&c->conn, socket_path);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

DUR_PUBLIC dur_client *dur_client_free(dur_client *c) {
        if (c) {
                conn_free(c->conn);
                free(c);
        }
        return NULL;
}

DUR_PUBLIC const char *dur_client_error_code(const dur_client *c) {
        assert_return(c, NULL);
        return conn_error_code(c->conn);
}

DUR_PUBLIC const char *dur_client_error_message(const dur_client *c) {
        assert_return(c, NULL);
        return conn_error_message(c->conn);
}

static bool field_present(const Field *f) {
        switch (f->type) {
        case FIELD_STR:
                return f->str;
        case FIELD_PAYLOAD:
        case FIELD_RAW:
        case FIELD_BIN:
                return f->payload && f->payload->size > 0;
        case FIELD_UINT:
                return f->uint > 0;
        case FIELD_DOUBLE:
                return f->dbl != 0;
        case FIELD_BOOL:
                return true;
        case FIELD_RETRY:
                return f->retry && retry_policy_fields(f->retry) > 0;
        }
        return false;
}

static void field_pack(msgpack_packer *pk, const Field *f) {
        /* Write errors are collected by the Request (conn.h), so results are not checked here. */
        switch (f->type) {
        case FIELD_STR:
                (void) msg_pack_kv_str(pk, f->key, f->str);
                break;
        case FIELD_PAYLOAD:
        case FIELD_BIN:
                (void) msg_pack_kv_bin(pk, f->key, f->payload->data, f->payload->size);
                break;
        case FIELD_UINT:
                (void) msg_pack_kv_uint(pk, f->key, f->uint);
                break;
        case FIELD_DOUBLE:
                (void) msg_pack_str(pk, f->key);
                (void) msgpack_pack_double(pk, f->dbl);
                break;
        case FIELD_BOOL:
                (void) msg_pack_kv_bool(pk, f->key, f->boolean);
                break;
        case FIELD_RAW:
                (void) msg_pack_str(pk, f->key);
                (void) msg_pack_raw(pk, f->payload->data, f->payload->size);
                break;
        case FIELD_RETRY:
                (void) msg_pack_str(pk, f->key);
                (void) retry_policy_pack(pk, f->retry);
                break;
        }
}

/* A payload must be exactly one msgpack value; catching a bad one here names the caller's bug
 * instead of failing later in a worker. */
static int fields_check(const Field *fields, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const Field *f = &fields[i];

                if ((f->type != FIELD_PAYLOAD && f->type != FIELD_RAW) || !field_present(f))
                        continue;
                if (msg_validate(f->payload->data, f->payload->size) < 0) {
                        dur_log(LOG_DEBUG, "Payload \"%s\" is not one msgpack value", f->key);
                        return -EINVAL;
                }
        }
        return 0;
}

/* Sends @op with the present fields of @fields and waits for its answer (see conn_call()). */
static int client_request(
        dur_client *c, const char *op, const Field *fields, size_t n, msgpack_unpacked *ret) {
        Request req;
        size_t present = 0;
        int r;

        r = fields_check(fields, n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                present += field_present(&fields[i]);
        request_init(&req, c->conn, op, present);
        for (size_t i = 0; i < n; i++)
                if (field_present(&fields[i]))
                        field_pack(&req.pk, &fields[i]);
        r = conn_call(c->conn, &req, ret);
        request_done(&req);
        return r;
}

/* Like client_request() for operations whose answer carries nothing. */
static int client_request_void(dur_client *c, const char *op, const Field *fields, size_t n) {
        msgpack_unpacked answer;
        int r;

        r = client_request(c, op, fields, n, &answer);
        if (r >= 0)
                msgpack_unpacked_destroy(&answer);
        return r;
}

/* Reads @answer with @table into @out; -EBADMSG (logged) when the daemon broke the protocol. */
static int
answer_parse(const char *op, msgpack_unpacked *answer, const MsgField *table, void *out) {
        char err[256];
        int r;

        r = msg_parse(&answer->data, answer->zone, table, out, err, sizeof(err));
        if (r == -EINVAL)
                return dur_log_errno(LOG_DEBUG, -EBADMSG, "Bad answer to %s: %s", op, err);
        return r;
}

/* An empty run id means "the latest run", as NULL does. */
static const char *run_id_or_null(const char *run_id) {
        return run_id && *run_id ? run_id : NULL;
}

/* The fields of a start (StartWorkflow, SignalWithStart, UpdateWithStart) into @f. */
#define START_FIELDS 17
static size_t start_fields(Field f[static START_FIELDS],
                           const char *workflow_type,
                           const dur_start_opts *opts,
                           const dur_buf *input,
                           const dur_buf *search_attributes) {
        const Field fields[START_FIELDS] = {
                { "workflow_id", FIELD_STR, .str = opts->workflow_id },
                { "workflow_type", FIELD_STR, .str = workflow_type },
                { "task_queue", FIELD_STR, .str = opts->task_queue },
                { "input", FIELD_PAYLOAD, .payload = input },
                { "task_timeout_usec", FIELD_UINT, .uint = opts->task_timeout },
                { "execution_timeout_usec", FIELD_UINT, .uint = opts->execution_timeout },
                { "run_timeout_usec", FIELD_UINT, .uint = opts->run_timeout },
                { "start_delay_usec", FIELD_UINT, .uint = opts->start_delay },
                { "priority", FIELD_UINT, .uint = opts->priority },
                { "fairness_key", FIELD_STR, .str = opts->fairness_key },
                { "fairness_weight", FIELD_DOUBLE, .dbl = opts->fairness_weight },
                { "retry_policy", FIELD_RETRY, .retry = &opts->retry },
                { "request_id", FIELD_STR, .str = opts->request_id },
                { "memo", FIELD_RAW, .payload = opts->memo },
                { "search_attributes", FIELD_RAW, .payload = search_attributes },
                { "id_reuse_policy", FIELD_STR,
                  .str = id_reuse_policy_to_string((IdReusePolicy) opts->id_reuse_policy) },
                { "id_conflict_policy", FIELD_STR,
                  .str = id_conflict_policy_to_string(
                          (IdConflictPolicy) opts->id_conflict_policy) },
        };

        memcpy(f, fields, sizeof(fields));
        return START_FIELDS;
}

static bool start_opts_valid(const char *workflow_type, const dur_start_opts *opts) {
        return workflow_type && *workflow_type && opts && opts->workflow_id && opts->task_queue &&
               (unsigned) opts->id_reuse_policy <= DUR_ID_REUSE_TERMINATE_IF_RUNNING &&
               (unsigned) opts->id_conflict_policy <= DUR_ID_CONFLICT_QUEUE;
}

/* The start's search attributes packed into @sa (initialised here; the caller destroys it). */
static int start_search_attrs(const dur_start_opts *opts, msgpack_sbuffer *sa) {
        int r = 0;

        msgpack_sbuffer_init(sa);
        if (opts->n_search_attributes > 0)
                r = search_attrs_pack(sa, opts->search_attributes, opts->n_search_attributes,
                                      false);
        if (r < 0)
                msgpack_sbuffer_destroy(sa);
        return r;
}

/* Sends @op with the fields of a start (@workflow_type, @opts, @input) and the @n_extra fields of
 * @extra after them; the answer goes to *@answer. */
static int start_call(dur_client *c,
                      const char *op,
                      const char *workflow_type,
                      const dur_start_opts *opts,
                      const dur_buf *input,
                      const Field *extra,
                      size_t n_extra,
                      msgpack_unpacked *answer) {
        Field fields[START_FIELDS + 2];
        msgpack_sbuffer sa;
        size_t n;
        int r;

        assert_return(c, -EINVAL);
        assert_return(start_opts_valid(workflow_type, opts), -EINVAL);
        assert(n_extra <= 2);

        r = start_search_attrs(opts, &sa);
        if (r < 0)
                return r;
        const dur_buf sa_buf = { .data = sa.data, .size = sa.size };
        n = start_fields(fields, workflow_type, opts, input, &sa_buf);
        for (size_t i = 0; i < n_extra; i++)
                fields[n++] = extra[i];
        r = client_request(c, op, fields, n, answer);
        msgpack_sbuffer_destroy(&sa);
        return r;
}

/* StartWorkflow or SignalWithStart; @signal_name NULL for the former. */
static int client_start(dur_client *c,
                        const char *workflow_type,
                        const dur_start_opts *opts,
                        const dur_buf *input,
                        const char *signal_name,
                        const dur_buf *signal_input,
                        char **ret_run_id) {
        typedef struct Started {
                const char *run_id;
                bool started;
                bool queued;
        } Started;
        static const MsgField table[] = {
                { "run_id", MSG_STR, offsetof(Started, run_id), .required = true },
                { "started", MSG_BOOL, offsetof(Started, started), .required = true },
                { "queued", MSG_BOOL, offsetof(Started, queued) },
                {},
        };
        const char *op = signal_name ? "SignalWithStart" : "StartWorkflow";
        const Field signal[] = {
                { "signal_name", FIELD_STR, .str = signal_name },
                { "signal_input", FIELD_PAYLOAD, .payload = signal_input },
        };
        Started st = {};
        msgpack_unpacked answer;
        char *copy = NULL;
        int r;

        r = start_call(c, op, workflow_type, opts, input, signal, ELEMENTSOF(signal), &answer);
        if (r < 0)
                return r;
        r = answer_parse(op, &answer, table, &st);
        if (r >= 0 && ret_run_id) {
                copy = strdup(st.run_id);
                if (!copy)
                        r = -ENOMEM;
        }
        msgpack_unpacked_destroy(&answer);
        if (r < 0)
                return r;
        if (ret_run_id)
                *ret_run_id = copy;
        return st.started ? 0 : st.queued ? 2 : 1;
}

DUR_PUBLIC int dur_client_start(dur_client *c,
                                const char *workflow_type,
                                const dur_start_opts *opts,
                                const dur_buf *input,
                                char **ret_run_id) {
        return client_start(c, workflow_type, opts, input, NULL, NULL, ret_run_id);
}

DUR_PUBLIC int dur_client_signal_with_start(dur_client *c,
                                            const char *workflow_type,
                                            const dur_start_opts *opts,
                                            const dur_buf *input,
                                            const char *signal_name,
                                            const dur_buf *signal_input,
                                            char **ret_run_id) {
        assert_return(signal_name && *signal_name, -EINVAL);
        return client_start(c, workflow_type, opts, input, signal_name, signal_input, ret_run_id);
}

DUR_PUBLIC int dur_client_count(dur_client *c, const char *query, uint64_t *ret_count) {
        static const MsgField table[] = {
                { "count", MSG_UINT, 0, .required = true },
                {},
        };
        msgpack_unpacked answer;
        uint64_t n = 0;
        int r;

        assert_return(c && ret_count, -EINVAL);

        const Field fields[] = {
                { "query", FIELD_STR, .str = query },
        };
        r = client_request(c, "CountWorkflows", fields, ELEMENTSOF(fields), &answer);
        if (r < 0)
                return r;
        r = answer_parse("CountWorkflows", &answer, table, &n);
        msgpack_unpacked_destroy(&answer);
        if (r >= 0)
                *ret_count = n;
        return r < 0 ? r : 0;
}

DUR_PUBLIC int dur_client_signal(dur_client *c,
                                 const char *workflow_id,
                                 const char *run_id,
                                 const char *signal_name,
                                 const dur_buf *input) {
        assert_return(c, -EINVAL);
        assert_return(workflow_id && signal_name, -EINVAL);

        const Field fields[] = {
                { "workflow_id", FIELD_STR, .str = workflow_id },
                { "run_id", FIELD_STR, .str = run_id_or_null(run_id) },
                { "signal_name", FIELD_STR, .str = signal_name },
                { "input", FIELD_PAYLOAD, .payload = input },
        };
        return client_request_void(c, "SignalWorkflow", fields, ELEMENTSOF(fields));
}

/* A copy of the payload @bin as a dur_buf; an absent payload is nil. */
static dur_buf *payload_to_buf(const MsgBin *bin) {
        static const char nil = (char) 0xc0;

        if (!bin->ptr || bin->size == 0)
                return buf_new(&nil, 1);
        return buf_new(bin->ptr, bin->size);
}

DUR_PUBLIC int dur_client_query(dur_client *c,
                                const char *workflow_id,
                                const char *run_id,
                                const char *query_type,
                                const dur_buf *input,
                                dur_buf **ret_result) {
        static const MsgField table[] = {
                { "result", MSG_BIN, 0 },
                {},
        };
        MsgBin result = {};
        msgpack_unpacked answer;
        dur_buf *b = NULL;
        int r;

        assert_return(c, -EINVAL);
        assert_return(workflow_id && query_type && ret_result, -EINVAL);

        const Field fields[] = {
                { "workflow_id", FIELD_STR, .str = workflow_id },
                { "run_id", FIELD_STR, .str = run_id_or_null(run_id) },
                { "query_type", FIELD_STR, .str = query_type },
                { "input", FIELD_PAYLOAD, .payload = input },
        };
        r = client_request(c, "QueryWorkflow", fields, ELEMENTSOF(fields), &answer);
        if (r < 0)
                return r;
        r = answer_parse("QueryWorkflow", &answer, table, &result);
        if (r >= 0) {
                b = payload_to_buf(&result);
                if (!b)
                        r = -ENOMEM;
        }
        msgpack_unpacked_destroy(&answer);
        if (r < 0)
                return r;
        *ret_result = b;
        return 0;
}

/* ---- updates ---- */

DUR_PUBLIC void dur_update_outcome_done(dur_update_outcome *o) {
        if (!o)
                return;
        free(o->update_id);
        free(o->run_id);
        free(o->stage);
        dur_buf_free(o->result);
        failure_free(o->failure);
        *o = (dur_update_outcome){};
}

/* The "update" map of an UpdateWorkflow, UpdateWithStart or PollWorkflowUpdate answer. */
typedef struct UpdateInfo {
        const char *update_id;
        const char *run_id;
        const char *stage;
        MsgBin result;
        const msgpack_object *failure;
} UpdateInfo;

static int update_outcome_fill(const UpdateInfo *info, dur_update_outcome *ret) {
        _cleanup_(dur_update_outcome_done) dur_update_outcome o = {};
        bool completed = streq(info->stage, "Completed");

        o.update_id = strdup(info->update_id);
        o.run_id = strdup(info->run_id);
        o.stage = strdup(info->stage);
        if (!o.update_id || !o.run_id || !o.stage)
                return -ENOMEM;
        if (info->failure) {
                o.failure = failure_from_object(info->failure);
                if (!o.failure)
                        return -ENOMEM;
        } else if (completed) {
                o.result = payload_to_buf(&info->result);
                if (!o.result)
                        return -ENOMEM;
        }
        *ret = o;
        o = (dur_update_outcome){};
        return info->failure ? DUR_FAILED : 0;
}

/* Sends an update operation and reads its answer into @ret; the validator's rejection
 * (update_rejected) is DUR_REJECTED. */
static int update_request(
        dur_client *c, const char *op, const Field *fields, size_t n, dur_update_outcome *ret) {
        static const MsgField answer_table[] = {
                { "update", MSG_MAP, 0, .required = true },
                {},
        };
        static const MsgField update_table[] = {
                { "update_id", MSG_STR, offsetof(UpdateInfo, update_id), .required = true },
                { "run_id", MSG_STR, offsetof(UpdateInfo, run_id), .required = true },
                { "stage", MSG_STR, offsetof(UpdateInfo, stage), .required = true },
                { "result", MSG_BIN, offsetof(UpdateInfo, result) },
                { "failure", MSG_MAP, offsetof(UpdateInfo, failure) },
                {},
        };
        const msgpack_object *update = NULL;
        msgpack_unpacked answer;
        UpdateInfo info = {};
        char err[256];
        int r;

        r = client_request(c, op, fields, n, &answer);
        if (r == -EBADRQC)
                return DUR_REJECTED;
        if (r < 0)
                return r;
        r = answer_parse(op, &answer, answer_table, &update);
        if (r >= 0) {
                r = msg_parse(update, answer.zone, update_table, &info, err, sizeof(err));
                if (r == -EINVAL)
                        r = dur_log_errno(LOG_DEBUG, -EBADMSG, "Bad answer to %s: %s", op, err);
        }
        if (r >= 0)
                r = update_outcome_fill(&info, ret);
        msgpack_unpacked_destroy(&answer);
        return r;
}

static const char *update_stage_name(const dur_update_opts *opts) {
        return opts && opts->wait_for_stage == DUR_UPDATE_STAGE_ACCEPTED ? "Accepted"
                                                                           : "Completed";
}

static bool update_opts_valid(const dur_update_opts *opts) {
        return !opts || opts->wait_for_stage == DUR_UPDATE_STAGE_DEFAULT ||
               opts->wait_for_stage == DUR_UPDATE_STAGE_ACCEPTED ||
               opts->wait_for_stage == DUR_UPDATE_STAGE_COMPLETED;
}

/* The fields of an update after the target's; @f holds 5. The arguments go in @args_key:
 * "input", or "update_input" next to a start's input. */
static size_t update_fields(Field *f,
                            const char *args_key,
                            const char *update_name,
                            const dur_buf *args,
                            const dur_update_opts *opts) {
        f[0] = (Field){ "update_name", FIELD_STR, .str = update_name };
        f[1] = (Field){ args_key, FIELD_PAYLOAD, .payload = args };
        f[2] = (Field){ "update_id", FIELD_STR, .str = opts ? opts->update_id : NULL };
        f[3] = (Field){ "wait_for_stage", FIELD_STR, .str = update_stage_name(opts) };
        f[4] = (Field){ "timeout_usec", FIELD_UINT, .uint = opts ? opts->timeout : 0 };
        return 5;
}

DUR_PUBLIC int dur_client_update(dur_client *c,
                                 const char *workflow_id,
                                 const char *update_name,
                                 const dur_buf *args,
                                 const dur_update_opts *opts,
                                 dur_update_outcome *ret) {
        Field fields[7];
        size_t n = 0;

        assert_return(c && ret, -EINVAL);
        assert_return(workflow_id && update_name && *update_name, -EINVAL);
        assert_return(update_opts_valid(opts), -EINVAL);

        fields[n++] = (Field){ "workflow_id", FIELD_STR, .str = workflow_id };
        fields[n++] = (Field){ "run_id", FIELD_STR, .str = run_id_or_null(opts ? opts->run_id
                                                                                : NULL) };
        n += update_fields(fields + n, "input", update_name, args, opts);
        return update_request(c, "UpdateWorkflow", fields, n, ret);
}

DUR_PUBLIC int dur_client_update_with_start(dur_client *c,
                                            const char *workflow_type,
                                            const dur_start_opts *start,
                                            const dur_buf *input,
                                            const char *update_name,
                                            const dur_buf *args,
                                            const dur_update_opts *opts,
                                            dur_update_outcome *ret) {
        Field fields[START_FIELDS + 5];
        msgpack_sbuffer sa;
        size_t n;
        int r;

        assert_return(c && ret, -EINVAL);
        assert_return(start_opts_valid(workflow_type, start), -EINVAL);
        assert_return(update_name && *update_name, -EINVAL);
        assert_return(update_opts_valid(opts) && !(opts && opts->run_id), -EINVAL);

        r = start_search_attrs(start, &sa);
        if (r < 0)
                return r;
        const dur_buf sa_buf = { .data = sa.data, .size = sa.size };
        n = start_fields(fields, workflow_type, start, input, &sa_buf);
        n += update_fields(fields + n, "update_input", update_name, args, opts);
        r = update_request(c, "UpdateWithStart", fields, n, ret);
        msgpack_sbuffer_destroy(&sa);
        return r;
}

DUR_PUBLIC int dur_client_update_result(dur_client *c,
                                        const char *workflow_id,
                                        const char *update_id,
                                        const dur_update_opts *opts,
                                        dur_update_outcome *ret) {
        assert_return(c && ret, -EINVAL);
        assert_return(workflow_id && update_id && *update_id, -EINVAL);
        assert_return(update_opts_valid(opts), -EINVAL);

        const Field fields[] = {
                { "workflow_id", FIELD_STR, .str = workflow_id },
                { "run_id", FIELD_STR, .str = run_id_or_null(opts ? opts->run_id : NULL) },
                { "update_id", FIELD_STR, .str = update_id },
                { "wait", FIELD_BOOL,
                  .boolean = !opts || opts->wait_for_stage != DUR_UPDATE_STAGE_ACCEPTED },
                { "timeout_usec", FIELD_UINT, .uint = opts ? opts->timeout : 0 },
        };
        return update_request(c, "PollWorkflowUpdate", fields, ELEMENTSOF(fields), ret);
}

/* CancelWorkflow, TerminateWorkflow, DeleteWorkflow, PauseWorkflow and UnpauseWorkflow take the
 * same fields. */
static int client_close_request(dur_client *c,
                                const char *op,
                                const char *workflow_id,
                                const char *run_id,
                                const char *reason) {
        assert_return(c, -EINVAL);
        assert_return(workflow_id, -EINVAL);

        const Field fields[] = {
                { "workflow_id", FIELD_STR, .str = workflow_id },
                { "run_id", FIELD_STR, .str = run_id_or_null(run_id) },
                { "reason", FIELD_STR, .str = reason },
        };
        return client_request_void(c, op, fields, ELEMENTSOF(fields));
}

DUR_PUBLIC int
dur_client_cancel(dur_client *c, const char *workflow_id, const char *run_id, const char *reason) {
        return client_close_request(c, "CancelWorkflow", workflow_id, run_id, reason);
}

DUR_PUBLIC int dur_client_terminate(dur_client *c,
                                    const char *workflow_id,
                                    const char *run_id,
                                    const char *reason) {
        return client_close_request(c, "TerminateWorkflow", workflow_id, run_id, reason);
}

DUR_PUBLIC int
dur_client_delete(dur_client *c, const char *workflow_id, const char *run_id, const char *reason) {
        return client_close_request(c, "DeleteWorkflow", workflow_id, run_id, reason);
}

DUR_PUBLIC int
dur_client_pause(dur_client *c, const char *workflow_id, const char *run_id, const char *reason) {
        return client_close_request(c, "PauseWorkflow", workflow_id, run_id, reason);
}

DUR_PUBLIC int
dur_client_unpause(dur_client *c, const char *workflow_id, const char *run_id, const char *reason) {
        return client_close_request(c, "UnpauseWorkflow", workflow_id, run_id, reason);
}

DUR_PUBLIC void dur_outcome_done(dur_outcome *o) {
        if (!o)
                return;
        free(o->run_id);
        free(o->status);
        dur_buf_free(o->result);
        failure_free(o->failure);
        *o = (dur_outcome){};
}

/* The "workflow" map of a GetResult answer (doc/protocol.md "Client operations"). */
typedef struct WorkflowInfo {
        const char *run_id;
        const char *status;
        MsgBin result;
        const msgpack_object *failure;
} WorkflowInfo;

static int outcome_fill(const WorkflowInfo *info, dur_outcome *ret) {
        _cleanup_(dur_outcome_done) dur_outcome o = {};

        o.run_id = strdup(info->run_id);
        o.status = strdup(info->status);
        if (!o.run_id || !o.status)
                return -ENOMEM;
        if (streq(info->status, "Completed")) {
                o.result = payload_to_buf(&info->result);
                if (!o.result)
                        return -ENOMEM;
        }
        if (info->failure) {
                o.failure = failure_from_object(info->failure);
                if (!o.failure)
                        return -ENOMEM;
        }
        *ret = o;
        o = (dur_outcome){};
        return 0;
}

static int outcome_parse(msgpack_unpacked *answer, dur_outcome *ret) {
        static const MsgField answer_table[] = {
                { "workflow", MSG_MAP, 0, .required = true },
                {},
        };
        static const MsgField workflow_table[] = {
                { "run_id", MSG_STR, offsetof(WorkflowInfo, run_id), .required = true },
                { "status", MSG_STR, offsetof(WorkflowInfo, status), .required = true },
                { "result", MSG_BIN, offsetof(WorkflowInfo, result) },
                { "failure", MSG_MAP, offsetof(WorkflowInfo, failure) },
                {},
        };
        const msgpack_object *workflow = NULL;
        WorkflowInfo info = {};
        char err[256];
        int r;

        r = answer_parse("GetResult", answer, answer_table, &workflow);
        if (r < 0)
                return r;
        r = msg_parse(workflow, answer->zone, workflow_table, &info, err, sizeof(err));
        if (r == -EINVAL)
                return dur_log_errno(LOG_DEBUG, -EBADMSG, "Bad answer to GetResult: %s", err);
        if (r < 0)
                return r;
        /* With "wait" the daemon answers only once the run closed, else deadline_exceeded;
         * a still running (or paused) run is treated as that deadline. */
        if (streq(info.status, "Running") || streq(info.status, "Paused"))
                return -ETIMEDOUT;
        r = outcome_fill(&info, ret);
        if (r < 0)
                return r;
        return streq(info.status, "Completed") ? 0 : DUR_FAILED;
}

DUR_PUBLIC int dur_client_result(dur_client *c,
                                 const char *workflow_id,
                                 const char *run_id,
                                 uint64_t timeout,
                                 dur_outcome *ret) {
        msgpack_unpacked answer;
        int r;

        assert_return(c, -EINVAL);
        assert_return(workflow_id && ret, -EINVAL);

        const Field fields[] = {
                { "workflow_id", FIELD_STR, .str = workflow_id },
                { "run_id", FIELD_STR, .str = run_id_or_null(run_id) },
                { "wait", FIELD_BOOL, .boolean = true },
                { "timeout_usec", FIELD_UINT, .uint = timeout },
        };
        r = client_request(c, "GetResult", fields, ELEMENTSOF(fields), &answer);
        if (r < 0)
                return r;
        r = outcome_parse(&answer, ret);
        msgpack_unpacked_destroy(&answer);
        return r;
}

DUR_PUBLIC int dur_client_execute(dur_client *c,
                                  const char *workflow_type,
                                  const dur_start_opts *opts,
                                  const dur_buf *input,
                                  uint64_t timeout,
                                  dur_outcome *ret) {
        /* One round trip: the daemon answers as GetResult once the run closes. */
        const Field wait[] = {
                { "wait", FIELD_BOOL, .boolean = true },
                { "timeout_usec", FIELD_UINT, .uint = timeout },
        };
        msgpack_unpacked answer;
        int r;

        assert_return(ret, -EINVAL);
        r = start_call(c, "StartWorkflow", workflow_type, opts, input, wait, ELEMENTSOF(wait),
                       &answer);
        if (r < 0)
                return r;
        r = outcome_parse(&answer, ret);
        msgpack_unpacked_destroy(&answer);
        return r;
}

/* Copies the caller's request map into @req, leaving out "op" (already in the frame) and any "id"
 * (ours replaces it). */
static void request_copy_fields(Request *req, const msgpack_object *map) {
        for (uint32_t i = 0; i < map->via.map.size; i++) {
                const msgpack_object_kv *kv = &map->via.map.ptr[i];

                if (msg_str_eq(&kv->key, "op") || msg_str_eq(&kv->key, "id"))
                        continue;
                (void) msgpack_pack_object(&req->pk, kv->key);
                (void) msgpack_pack_object(&req->pk, kv->val);
        }
}

static int request_count_fields(const msgpack_object *map) {
        int n = 0;

        for (uint32_t i = 0; i < map->via.map.size; i++)
                if (!msg_str_eq(&map->via.map.ptr[i].key, "op") &&
                    !msg_str_eq(&map->via.map.ptr[i].key, "id"))
                        n++;
        return n;
}

/* The "op" of a raw request as a C string; -EINVAL when missing or not a clean string. */
static int request_op(const msgpack_object *map, char **ret) {
        const msgpack_object *op = msg_get(map, "op");

        if (!op || op->type != MSGPACK_OBJECT_STR || op->via.str.size == 0 ||
            memchr(op->via.str.ptr, 0, op->via.str.size)) {
                dur_log(LOG_DEBUG, "Request has no \"op\" string");
                return -EINVAL;
        }
        *ret = strndup(op->via.str.ptr, op->via.str.size);
        return *ret ? 0 : -ENOMEM;
}

DUR_PUBLIC int dur_client_call(dur_client *c, const dur_buf *request, dur_buf **ret_answer) {
        _cleanup_free_ char *op = NULL;
        msgpack_unpacked in, answer;
        dur_buf *b = NULL;
        Request req;
        int r;

        assert_return(c, -EINVAL);
        assert_return(request && ret_answer, -EINVAL);

        msgpack_unpacked_init(&in);
        r = msg_decode(request->data, request->size, &in);
        if (r < 0) {
                msgpack_unpacked_destroy(&in);
                return -EINVAL;
        }
        r = request_op(&in.data, &op);
        if (r >= 0) {
                request_init(&req, c->conn, op, (size_t) request_count_fields(&in.data));
                request_copy_fields(&req, &in.data);
                r = conn_call(c->conn, &req, &answer);
                request_done(&req);
        }
        msgpack_unpacked_destroy(&in);
        if (r < 0)
                return r;
        b = dur_buf_from_object(&answer.data);
        msgpack_unpacked_destroy(&answer);
        if (!b)
                return -ENOMEM;
        *ret_answer = b;
        return 0;
}

/* ---- asynchronous activity completion ---- */

/* The fields that name an activity attempt: its task token, or its workflow and activity ids. */
static int ref_fields(const dur_activity_ref *ref, dur_buf *token, Field ret[static 4]) {
        assert_return(ref, -EINVAL);
        if (ref->task_token && ref->task_token_size > 0) {
                *token = (dur_buf){ .data = (char *) ref->task_token,
                                    .size = ref->task_token_size };
                ret[0] = (Field){ "task_token", FIELD_BIN, .payload = token };
                ret[1] = ret[2] = ret[3] = (Field){ "", FIELD_STR };
                return 0;
        }
        assert_return(ref->workflow_id && ref->activity_id, -EINVAL);
        ret[0] = (Field){ "workflow_id", FIELD_STR, .str = ref->workflow_id };
        ret[1] = (Field){ "run_id", FIELD_STR, .str = run_id_or_null(ref->run_id) };
        ret[2] = (Field){ "activity_id", FIELD_STR, .str = ref->activity_id };
        ret[3] = (Field){ "", FIELD_STR };
        return 0;
}

DUR_PUBLIC int
dur_client_complete_activity(dur_client *c, const dur_activity_ref *ref, const dur_buf *result) {
        Field f[5];
        dur_buf token;
        int r;

        assert_return(c, -EINVAL);
        r = ref_fields(ref, &token, f);
        if (r < 0)
                return r;
        f[4] = (Field){ "result", FIELD_PAYLOAD, .payload = result };
        return client_request_void(c, "CompleteActivityTask", f, ELEMENTSOF(f));
}

DUR_PUBLIC int dur_client_fail_activity(dur_client *c,
                                        const dur_activity_ref *ref,
                                        const char *type,
                                        bool non_retryable,
                                        const char *message) {
        _cleanup_(failure_freep) dur_failure *failure = NULL;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        dur_buf token, packed;
        Field f[5];
        int r;

        assert_return(c, -EINVAL);
        r = ref_fields(ref, &token, f);
        if (r < 0)
                return r;
        failure = failure_new(type ? type : "ActivityError", non_retryable, message);
        if (!failure)
                return -ENOMEM;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        r = failure_pack(failure, &pk);
        if (r >= 0) {
                packed = (dur_buf){ .data = sb.data, .size = sb.size };
                f[4] = (Field){ "failure", FIELD_RAW, .payload = &packed };
                r = client_request_void(c, "FailActivityTask", f, ELEMENTSOF(f));
        }
        msgpack_sbuffer_destroy(&sb);
        return r;
}

DUR_PUBLIC int dur_client_heartbeat_activity(dur_client *c,
                                             const dur_activity_ref *ref,
                                             const dur_buf *details,
                                             bool *ret_cancel_requested) {
        static const MsgField answer_fields[] = {
                { "cancel_requested", MSG_BOOL, 0, false },
                {},
        };
        msgpack_unpacked answer;
        dur_buf token;
        bool cancel = false;
        Field f[5];
        int r;

        assert_return(c, -EINVAL);
        r = ref_fields(ref, &token, f);
        if (r < 0)
                return r;
        f[4] = (Field){ "details", FIELD_PAYLOAD, .payload = details };
        r = client_request(c, "HeartbeatActivity", f, ELEMENTSOF(f), &answer);
        if (r < 0)
                return r;
        r = answer_parse("HeartbeatActivity", &answer, answer_fields, &cancel);
        msgpack_unpacked_destroy(&answer);
        if (r >= 0 && ret_cancel_requested)
                *ret_cancel_requested = cancel;
        return r;
}
