/* The D-Bus API; see api-bus.h and org.durabled1(5).
 *
 * A method call is decoded here (its signature was checked by sd-bus against the vtable), its
 * JSON arguments are parsed, and it becomes one request of the socket API on a socketless Conn
 * that carries the sender's uid and admin flag: api_handle_frame() runs it exactly as a socket
 * request, in a savepoint of the pass's transaction. The answer frame comes back through
 * bus_call_deliver() after the commit and is translated into the method's reply.
 *
 * Reads that sd-bus answers at once (properties, introspection, GetManagedObjects) must never
 * see uncommitted rows: the bus's event source runs at a priority below the manager's post
 * source, so it is dispatched only after the pass before it committed, and each dispatch handles
 * one message.
 *
 * Credentials: the sender's uid (and groups where the bus reports them) from the bus driver,
 * never from /proc. They never change for a unique name, so the last sender's are cached. Any
 * error while getting them means deny (DESIGN.md §10). */

#include "daemon/api-bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <systemd/sd-bus.h>

#include "common/log.h"
#include "daemon/api-sock.h"
#include "daemon/conn.h"
#include "daemon/manager.h"
#include "daemon/taskq.h"
#include "proto/frame.h"
#include "proto/json.h"
#include "proto/msg.h"

#define BUS_NAME "org.durabled1"
#define MANAGER_PATH "/org/durabled1"
#define MANAGER_IFACE "org.durabled1.Manager"
#define WORKFLOW_PREFIX "/org/durabled1/workflow"
#define WORKFLOW_IFACE "org.durabled1.Workflow"
#define ERROR_PREFIX "org.durabled1.Error."
#define LIST_LIMIT_MAX 100000u

typedef struct Changed {
        char run_id[37];
        bool started;
        bool closed;
} Changed;

/* What the fallback vtable's find callback found: the run behind a workflow object. */
typedef struct WorkflowObject {
        ApiBus *bus;
        RunRow run;
        uint32_t pending_activities;
} WorkflowObject;

struct ApiBus {
        Manager *manager;
        sd_bus *bus;
        WorkflowObject found; /* scratch of the last find; valid until the next one */

        char *cached_sender; /* unique name whose credentials are below */
        struct ucred cached_cred;
        bool cached_admin;

        Changed *changed; /* runs changed in this pass */
        size_t n_changed, changed_alloc;
        const char *emit_run_id; /* while emitting: the run the workflow objects resolve to */
        bool disconnected;       /* the bus connection closed; logged once */
};

/* ---- credentials ---- */

static int
sender_identity(ApiBus *b, sd_bus_message *msg, struct ucred *ret_cred, bool *ret_admin) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const gid_t *groups = NULL;
        const char *sender = sd_bus_message_get_sender(msg);
        struct ucred cred = { .gid = (gid_t) -1 };
        int n_groups = 0, r;
        uid_t uid;

        if (!sender)
                return -EPERM;
        if (b->cached_sender && streq(b->cached_sender, sender)) {
                *ret_cred = b->cached_cred;
                *ret_admin = b->cached_admin;
                return 0;
        }
        r = sd_bus_query_sender_creds(msg,
                                      SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_GID |
                                              SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_PID,
                                      &creds);
        if (r < 0)
                return r;
        /* dbus-daemon reports the uid it took from SO_PEERCRED when the sender connected. */
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                r = sd_bus_creds_get_uid(creds, &uid);
        if (r < 0)
                return r;
        cred.uid = uid;
        (void) sd_bus_creds_get_gid(creds, &cred.gid);
        (void) sd_bus_creds_get_pid(creds, &cred.pid);
        n_groups = sd_bus_creds_get_supplementary_gids(creds, &groups);
        if (n_groups < 0)
                n_groups = 0; /* not reported: group membership cannot grant anything */
        free(b->cached_sender);
        b->cached_sender = strdup(sender);
        b->cached_cred = cred;
        b->cached_admin = manager_is_admin(b->manager, cred.uid, cred.gid, groups, n_groups);
        if (!b->cached_sender)
                return -ENOMEM;
        *ret_cred = cred;
        *ret_admin = b->cached_admin;
        return 0;
}

/* ---- errors ---- */

/* "not_found" -> "org.durabled1.Error.NotFound". */
static void error_name(const char *code, char *buf, size_t size) {
        size_t k = strlen(ERROR_PREFIX);
        bool up = true;

        snprintf(buf, size, "%s", ERROR_PREFIX);
        for (const char *p = code; *p && k + 1 < size; p++) {
                if (*p == '_') {
                        up = true;
                        continue;
                }
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
                        continue;
                buf[k++] = up && *p >= 'a' && *p <= 'z' ? (char) (*p - 'a' + 'A') : *p;
                up = false;
        }
        buf[k] = 0;
}

/* ---- requests ---- */

/* The fields of one socket request, built from a method's arguments. */
typedef struct BusRequest {
        MsgBuf fields;
        size_t n;
} BusRequest;

static void bus_request_init(BusRequest *rq) {
        msgbuf_init(&rq->fields);
        rq->n = 0;
}

static void bus_request_done(BusRequest *rq) {
        msgbuf_done(&rq->fields);
}

static void req_str(BusRequest *rq, const char *key, const char *value) {
        (void) msg_pack_kv_str(&rq->fields.pk, key, value);
        rq->n++;
}

/* An optional string: "" means absent (run_id "" = the latest run). */
static void req_str_opt(BusRequest *rq, const char *key, const char *value) {
        if (value && *value)
                req_str(rq, key, value);
}

static void req_uint(BusRequest *rq, const char *key, uint64_t value) {
        (void) msg_pack_kv_uint(&rq->fields.pk, key, value);
        rq->n++;
}

/* A payload given as JSON text in argument @arg; "" means none. */
static int
req_json(BusRequest *rq, const char *key, const char *json, const char *arg, sd_bus_error *error) {
        json_error_t jerr;
        json_t *j;
        int r;

        if (!*json)
                return 0;
        j = json_loads(json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                         "argument %s is not valid JSON: %s (line %d, column %d)",
                                         arg, jerr.text, jerr.line, jerr.column);
        (void) msg_pack_str(&rq->fields.pk, key);
        r = json_pack_payload(j, &rq->fields.pk);
        json_decref(j);
        if (r < 0)
                return sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                         "argument %s cannot be encoded as a payload", arg);
        rq->n++;
        return 0;
}

/* ---- calls ---- */

typedef struct BusCall BusCall;
/* Appends the method's out arguments, read from the socket answer @answer, to @reply. */
typedef int (*BusReplyFn)(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer);

struct BusCall {
        ApiBus *bus;
        sd_bus_message *call;
        BusReplyFn reply;
        char *workflow_id;
        bool replied;
};

static void bus_call_reply_error(BusCall *bc, const char *name, const char *message) {
        int r;

        r = sd_bus_reply_method_errorf(bc->call, name, "%s", message);
        if (r < 0)
                log_debug_errno(r, "Failed to send a D-Bus error reply: %m");
        bc->replied = true;
}

static void bus_call_free(void *userdata) {
        BusCall *bc = userdata;

        if (!bc)
                return;
        /* Freed unanswered: the daemon stops, or an answer could not be built. */
        if (!bc->replied)
                bus_call_reply_error(bc, ERROR_PREFIX "Unavailable",
                                     "the daemon could not answer this call; try again");
        sd_bus_message_unref(bc->call);
        free(bc->workflow_id);
        free(bc);
}

static int bus_call_answer(BusCall *bc, const msgpack_object *answer) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const msgpack_object *err = msg_get(answer, "error");
        int r;

        if (err) {
                const msgpack_object *code =
                        err->type == MSGPACK_OBJECT_MAP ? msg_get(err, "code") : NULL;
                const msgpack_object *text =
                        err->type == MSGPACK_OBJECT_MAP ? msg_get(err, "message") : NULL;
                char name[128], codebuf[64] = "internal", message[1024] = "failed";

                if (code && code->type == MSGPACK_OBJECT_STR)
                        snprintf(codebuf, sizeof(codebuf), "%.*s",
                                 (int) MIN(code->via.str.size, 63u), code->via.str.ptr);
                if (text && text->type == MSGPACK_OBJECT_STR)
                        snprintf(message, sizeof(message), "%.*s",
                                 (int) MIN(text->via.str.size, 1000u), text->via.str.ptr);
                error_name(codebuf, name, sizeof(name));
                bus_call_reply_error(bc, name, message);
                return 0;
        }
        r = sd_bus_message_new_method_return(bc->call, &reply);
        if (r >= 0)
                r = bc->reply(bc, reply, answer);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        bc->replied = true;
        return 0;
}

/* The pass that answered committed (or its answers became errors): reply, then end the
 * connection, which served this one call. */
static void bus_call_deliver(Conn *c, const char *frames, size_t size, void *userdata) {
        BusCall *bc = userdata;
        const char *body;
        size_t body_len;
        msgpack_unpacked u;
        ssize_t n;
        int r = -EBADMSG;

        if (bc->replied)
                return;
        msgpack_unpacked_init(&u);
        n = frame_peek(frames, size, SIZE_MAX, &body, &body_len);
        if (n > 0)
                r = msg_decode(body, body_len, &u);
        if (r >= 0)
                r = bus_call_answer(bc, &u.data);
        if (r < 0) {
                log_warning_errno(r, "Failed to answer a D-Bus call: %m");
                bus_call_reply_error(bc, ERROR_PREFIX "Internal",
                                     "the daemon could not build the answer");
        }
        msgpack_unpacked_destroy(&u);
        conn_close(c);
}

/* Runs socket operation @op with the fields of @rq for the sender of @msg. Returns 1: the reply
 * is sent after the pass's commit. */
static int bus_call_submit(ApiBus *b,
                           sd_bus_message *msg,
                           const char *op,
                           BusRequest *rq,
                           BusReplyFn reply,
                           const char *workflow_id,
                           sd_bus_error *error) {
        Manager *m = b->manager;
        MsgBuf body;
        BusCall *bc;
        struct ucred cred;
        bool admin;
        Conn *c;
        int r;

        r = sender_identity(b, msg, &cred, &admin);
        if (r < 0) {
                log_warning_errno(r, "Failed to get the credentials of a D-Bus sender: %m");
                return sd_bus_error_setf(error, ERROR_PREFIX "PermissionDenied",
                                         "the credentials of the caller could not be checked");
        }
        if (msgbuf_error(&rq->fields) < 0)
                return -ENOMEM;
        if (m->n_conns >= m->cfg.max_connections)
                return sd_bus_error_setf(error, ERROR_PREFIX "ResourceExhausted",
                                         "too many connections and calls in flight (limit %u)",
                                         m->cfg.max_connections);
        bc = calloc(1, sizeof(*bc));
        if (!bc)
                return -ENOMEM;
        /* Until the connection owns it, a failure is answered by sd-bus from our -ENOMEM. */
        *bc = (BusCall){
                .bus = b, .call = sd_bus_message_ref(msg), .reply = reply, .replied = true
        };
        if (workflow_id && !(bc->workflow_id = strdup(workflow_id))) {
                bus_call_free(bc);
                return -ENOMEM;
        }
        r = conn_new_sink(&c, m, &cred, ++m->next_conn_serial,
                          &(ConnSink){ bus_call_deliver, bus_call_free, bc });
        if (r < 0)
                return r; /* bc was freed */
        bc->replied = false;
        c->admin = admin;
        /* The connection list: the post source releases its answer after the commit and frees
         * it once closed, like a socket connection's. */
        LIST_PREPEND(conns, m->conns, c);
        m->n_conns++;

        msgbuf_init(&body);
        (void) msgpack_pack_map(&body.pk, rq->n + 2);
        (void) msg_pack_kv_str(&body.pk, "op", op);
        (void) msg_pack_kv_uint(&body.pk, "id", 1);
        (void) msg_pack_raw(&body.pk, rq->fields.sb.data, rq->fields.sb.size);
        if (msgbuf_error(&body) < 0)
                conn_reply_error(c, 1, -ENOMEM, "out of memory");
        else
                api_handle_frame(m, c, body.sb.data, body.sb.size);
        msgbuf_done(&body);
        return 1;
}

/* ---- replies ---- */

static int reply_empty(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        return 0;
}

/* @o as compact JSON text appended as a string ("null" when absent). */
static int append_json(sd_bus_message *reply, const msgpack_object *o) {
        _cleanup_free_ char *text = NULL;
        json_t *j;

        j = o ? json_from_msgpack(o) : json_null();
        if (!j)
                return -ENOMEM;
        text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        if (!text)
                return -ENOMEM;
        return sd_bus_message_append(reply, "s", text);
}

static const char *
answer_str(const msgpack_object *answer, const char *key, char *buf, size_t size) {
        const msgpack_object *o = msg_get(answer, key);

        if (!o || o->type != MSGPACK_OBJECT_STR)
                return "";
        snprintf(buf, size, "%.*s", (int) MIN(o->via.str.size, size - 1), o->via.str.ptr);
        return buf;
}

static uint64_t answer_uint(const msgpack_object *answer, const char *key) {
        const msgpack_object *o = msg_get(answer, key);
        return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static int reply_start(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        _cleanup_free_ char *path = NULL;
        char run_id[37];
        int r;

        r = sd_bus_path_encode(WORKFLOW_PREFIX, bc->workflow_id, &path);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "so", answer_str(answer, "run_id", run_id, 37), path);
}

static int reply_query(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        return append_json(reply, msg_get(answer, "result"));
}

/* UpdateWorkflow: the "update" map (update_id, run_id, stage, result or failure) as JSON. */
static int reply_update(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        return append_json(reply, msg_get(answer, "update"));
}

/* DescribeWorkflow: the whole answer (workflow, pending_activities) as JSON. */
static int reply_describe(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        _cleanup_free_ char *text = NULL;
        json_t *j;

        j = json_from_msgpack(answer);
        if (!j)
                return -ENOMEM;
        (void) json_object_del(j, "id");
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!text)
                return -ENOMEM;
        return sd_bus_message_append(reply, "s", text);
}

static int reply_history(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        char run_id[37];
        int r;

        r = sd_bus_message_append(reply, "s", answer_str(answer, "run_id", run_id, 37));
        if (r < 0)
                return r;
        return append_json(reply, msg_get(answer, "events"));
}

static int reply_list(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        const msgpack_object *list = msg_get(answer, "workflows");
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ssssstt)");
        for (uint32_t i = 0;
             r >= 0 && list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size;
             i++) {
                const msgpack_object *w = &list->via.array.ptr[i];
                char id[1001], run_id[37], type[1001], queue[1001], status[32];

                r = sd_bus_message_append(
                        reply, "(ssssstt)", answer_str(w, "workflow_id", id, 1001),
                        answer_str(w, "run_id", run_id, 37),
                        answer_str(w, "workflow_type", type, 1001),
                        answer_str(w, "task_queue", queue, 1001),
                        answer_str(w, "status", status, 32), answer_uint(w, "start_time"),
                        answer_uint(w, "close_time"));
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* ---- org.durabled1.Manager ---- */

static int method_start_workflow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *type, *queue, *input;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "ssss", &id, &type, &queue, &input);
        if (r < 0)
                return r;
        req_str(&rq, "workflow_id", id);
        req_str(&rq, "workflow_type", type);
        req_str(&rq, "task_queue", queue);
        r = req_json(&rq, "input", input, "input_json", error);
        if (r < 0)
                return r;
        return bus_call_submit(userdata, msg, "StartWorkflow", &rq, reply_start, id, error);
}

/* Signal-with-start (Temporal's): the signal goes to the running run of the id, or a run is started
 * and the signal delivered before its first task. */
static int method_signal_with_start(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *type, *queue, *input, *signal, *signal_input;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "ssssss", &id, &type, &queue, &input, &signal, &signal_input);
        if (r < 0)
                return r;
        req_str(&rq, "workflow_id", id);
        req_str(&rq, "workflow_type", type);
        req_str(&rq, "task_queue", queue);
        req_str(&rq, "signal_name", signal);
        r = req_json(&rq, "input", input, "input_json", error);
        if (r >= 0)
                r = req_json(&rq, "signal_input", signal_input, "signal_input_json", error);
        if (r < 0)
                return r;
        return bus_call_submit(userdata, msg, "SignalWithStart", &rq, reply_start, id, error);
}

/* Methods that name a workflow (id, run_id) and a string and a JSON payload. */
static int method_targeted(sd_bus_message *msg,
                           ApiBus *b,
                           const char *op,
                           const char *name_key,
                           const char *payload_key,
                           BusReplyFn reply,
                           sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *run_id, *name, *payload;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "ssss", &id, &run_id, &name, &payload);
        if (r < 0)
                return r;
        req_str(&rq, "workflow_id", id);
        req_str_opt(&rq, "run_id", run_id);
        req_str(&rq, name_key, name);
        r = req_json(&rq, payload_key, payload, "input_json", error);
        if (r < 0)
                return r;
        return bus_call_submit(b, msg, op, &rq, reply, NULL, error);
}

static int method_signal_workflow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_targeted(msg, userdata, "SignalWorkflow", "signal_name", "input", reply_empty,
                               error);
}

static int method_query_workflow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_targeted(msg, userdata, "QueryWorkflow", "query_type", "input", reply_query,
                               error);
}

/* An update of workflow @id (run @run_id, "" = the latest), its arguments (update_name,
 * update_id, input_json) read from @msg; answered once the update completed. A handler's
 * failure is in the answer; a validator's rejection is the error UpdateRejected. */
static int update_call(
        sd_bus_message *msg, ApiBus *b, const char *id, const char *run_id, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *name, *update_id, *input;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "sss", &name, &update_id, &input);
        if (r < 0)
                return r;
        req_str(&rq, "workflow_id", id);
        req_str_opt(&rq, "run_id", run_id);
        req_str(&rq, "update_name", name);
        req_str_opt(&rq, "update_id", update_id);
        r = req_json(&rq, "input", input, "input_json", error);
        if (r < 0)
                return r;
        return bus_call_submit(b, msg, "UpdateWorkflow", &rq, reply_update, NULL, error);
}

static int method_update_workflow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *id, *run_id;
        int r;

        r = sd_bus_message_read(msg, "ss", &id, &run_id);
        if (r < 0)
                return r;
        return update_call(msg, userdata, id, run_id, error);
}

/* Cancel, Terminate, Describe, GetHistory: (id, run_id[, reason]). */
static int method_simple(sd_bus_message *msg,
                         ApiBus *b,
                         const char *op,
                         bool reason,
                         BusReplyFn reply,
                         sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *run_id, *why = "";
        int r;

        bus_request_init(&rq);
        r = reason ? sd_bus_message_read(msg, "sss", &id, &run_id, &why)
                   : sd_bus_message_read(msg, "ss", &id, &run_id);
        if (r < 0)
                return r;
        req_str(&rq, "workflow_id", id);
        req_str_opt(&rq, "run_id", run_id);
        req_str_opt(&rq, "reason", why);
        return bus_call_submit(b, msg, op, &rq, reply, NULL, error);
}

static int method_cancel_workflow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_simple(msg, userdata, "CancelWorkflow", true, reply_empty, error);
}

static int method_terminate_workflow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_simple(msg, userdata, "TerminateWorkflow", true, reply_empty, error);
}

static int method_describe_workflow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_simple(msg, userdata, "DescribeWorkflow", false, reply_describe, error);
}

static int method_get_history(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_simple(msg, userdata, "GetHistory", false, reply_history, error);
}

/* Asynchronous activity completion (libdurable(3), DUR_ASYNC): completes the running attempt of
 * an activity, named by workflow id, run id ("" = latest) and activity id, with a JSON result. */
static int method_complete_activity(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *run_id, *activity_id, *result;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "ssss", &id, &run_id, &activity_id, &result);
        if (r < 0)
                return r;
        req_str(&rq, "workflow_id", id);
        req_str_opt(&rq, "run_id", run_id);
        req_str(&rq, "activity_id", activity_id);
        r = req_json(&rq, "result", result, "result_json", error);
        if (r < 0)
                return r;
        return bus_call_submit(userdata, msg, "CompleteActivityTask", &rq, reply_empty, NULL,
                               error);
}

/* One entry of ListWorkflows' filter: a string (Status, WorkflowType, TaskQueue, WorkflowId) or
 * the uint32 Limit. */
static int read_filter_entry(sd_bus_message *msg, BusRequest *rq, sd_bus_error *error) {
        static const char *const keys[][2] = {
                { "Status", "status" },
                { "WorkflowType", "workflow_type" },
                { "TaskQueue", "task_queue" },
                { "WorkflowId", "workflow_id" },
        };
        const char *key, *contents, *s;
        uint32_t limit;
        int r;

        r = sd_bus_message_read(msg, "s", &key);
        if (r < 0)
                return r;
        r = sd_bus_message_peek_type(msg, NULL, &contents);
        if (r < 0)
                return r;
        if (streq(key, "Limit")) {
                if (!streq(contents, "u"))
                        return sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                                 "filter Limit must be of type 'u', not '%s'",
                                                 contents);
                r = sd_bus_message_read(msg, "v", "u", &limit);
                if (r >= 0)
                        req_uint(rq, "limit", MIN(limit, LIST_LIMIT_MAX));
                return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!streq(key, keys[i][0]))
                        continue;
                if (!streq(contents, "s"))
                        return sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                                 "filter %s must be of type 's', not '%s'", key,
                                                 contents);
                r = sd_bus_message_read(msg, "v", "s", &s);
                if (r >= 0)
                        req_str(rq, keys[i][1], s);
                return r;
        }
        return sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                 "unknown filter '%s' (expected Status, WorkflowType, TaskQueue, "
                                 "WorkflowId, Limit)",
                                 key);
}

static int method_list_workflows(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                r = read_filter_entry(msg, &rq, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        return bus_call_submit(userdata, msg, "ListWorkflows", &rq, reply_list, NULL, error);
}

static int compare_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int property_get_version(sd_bus *bus,
                                const char *path,
                                const char *interface,
                                const char *property,
                                sd_bus_message *reply,
                                void *userdata,
                                sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", DURABLED_VERSION);
}

static int count_run(const RunRow *run, void *userdata) {
        (*(uint32_t *) userdata)++;
        return 0;
}

/* The running workflows the caller may see (all of them for administrators). */
static int property_get_running_workflows(sd_bus *bus,
                                          const char *path,
                                          const char *interface,
                                          const char *property,
                                          sd_bus_message *reply,
                                          void *userdata,
                                          sd_bus_error *error) {
        ApiBus *b = userdata;
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        RunFilter f = { .status = WORKFLOW_STATUS_RUNNING, .limit = UINT32_MAX };
        struct ucred cred;
        uint32_t n = 0;
        bool admin;
        int r;

        r = msg ? sender_identity(b, msg, &cred, &admin) : -EPERM;
        if (r < 0)
                return sd_bus_error_setf(error, ERROR_PREFIX "PermissionDenied",
                                         "the credentials of the caller could not be checked");
        f.only_uid = !admin;
        f.uid = cred.uid;
        r = store_runs_list(b->manager->store, &f, count_run, &n);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "u", n);
}

typedef struct QueueNames {
        char **names;
        size_t n;
} QueueNames;

static int add_queue_name(const char *name, void *userdata) {
        QueueNames *q = userdata;
        char **p;

        for (size_t i = 0; i < q->n; i++)
                if (streq(q->names[i], name))
                        return 0;
        p = reallocarray(q->names, q->n + 1, sizeof(char *));
        if (!p)
                return -ENOMEM;
        q->names = p;
        q->names[q->n] = strdup(name);
        if (!q->names[q->n])
                return -ENOMEM;
        q->n++;
        return 0;
}

/* The queues that have pollers or tasks waiting, sorted. */
static int property_get_task_queues(sd_bus *bus,
                                    const char *path,
                                    const char *interface,
                                    const char *property,
                                    sd_bus_message *reply,
                                    void *userdata,
                                    sd_bus_error *error) {
        ApiBus *b = userdata;
        QueueNames q = {};
        TaskQueue *tq;
        int r = 0;

        LIST_FOREACH(queues, tq, b->manager->queues)
                if (r >= 0)
                        r = add_queue_name(tq->name, &q);
        for (int k = 0; r >= 0 && k < _TASK_KIND_MAX; k++)
                r = store_task_queues(b->manager->store, (TaskKind) k, add_queue_name, &q);
        if (r >= 0) {
                qsort(q.names, q.n, sizeof(char *), compare_strp);
                r = sd_bus_message_open_container(reply, 'a', "s");
        }
        for (size_t i = 0; r >= 0 && i < q.n; i++)
                r = sd_bus_message_append(reply, "s", q.names[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        for (size_t i = 0; i < q.n; i++)
                free(q.names[i]);
        free(q.names);
        return r;
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RunningWorkflows", "u", property_get_running_workflows, 0, 0),
        SD_BUS_PROPERTY("TaskQueues", "as", property_get_task_queues, 0, 0),
        SD_BUS_METHOD_WITH_ARGS(
                "StartWorkflow",
                SD_BUS_ARGS("s", workflow_id, "s", workflow_type, "s", task_queue, "s", input_json),
                SD_BUS_RESULT("s", run_id, "o", workflow),
                method_start_workflow,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SignalWithStart",
                                SD_BUS_ARGS("s", workflow_id, "s", workflow_type, "s", task_queue,
                                            "s", input_json, "s", signal_name, "s",
                                            signal_input_json),
                                SD_BUS_RESULT("s", run_id, "o", workflow),
                                method_signal_with_start,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "SignalWorkflow",
                SD_BUS_ARGS("s", workflow_id, "s", run_id, "s", signal_name, "s", input_json),
                SD_BUS_NO_RESULT,
                method_signal_workflow,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "QueryWorkflow",
                SD_BUS_ARGS("s", workflow_id, "s", run_id, "s", query_type, "s", input_json),
                SD_BUS_RESULT("s", result_json),
                method_query_workflow,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UpdateWorkflow",
                                SD_BUS_ARGS("s", workflow_id, "s", run_id, "s", update_name, "s",
                                            update_id, "s", input_json),
                                SD_BUS_RESULT("s", update_json),
                                method_update_workflow,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelWorkflow",
                                SD_BUS_ARGS("s", workflow_id, "s", run_id, "s", reason),
                                SD_BUS_NO_RESULT,
                                method_cancel_workflow,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("TerminateWorkflow",
                                SD_BUS_ARGS("s", workflow_id, "s", run_id, "s", reason),
                                SD_BUS_NO_RESULT,
                                method_terminate_workflow,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DescribeWorkflow",
                                SD_BUS_ARGS("s", workflow_id, "s", run_id),
                                SD_BUS_RESULT("s", description_json),
                                method_describe_workflow,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListWorkflows",
                                SD_BUS_ARGS("a{sv}", filter),
                                SD_BUS_RESULT("a(ssssstt)", workflows),
                                method_list_workflows,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetHistory",
                                SD_BUS_ARGS("s", workflow_id, "s", run_id),
                                SD_BUS_RESULT("s", resolved_run_id, "s", events_json),
                                method_get_history,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CompleteActivity",
                                SD_BUS_ARGS("s", workflow_id, "s", run_id, "s", activity_id, "s",
                                            result_json),
                                SD_BUS_NO_RESULT,
                                method_complete_activity,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("WorkflowStarted",
                                SD_BUS_ARGS("s", workflow_id, "s", run_id, "s", workflow_type),
                                0),
        SD_BUS_SIGNAL_WITH_ARGS(
                "WorkflowClosed",
                SD_BUS_ARGS("s", workflow_id, "s", run_id, "s", status, "s", result_json),
                0),
        SD_BUS_VTABLE_END
};

/* ---- org.durabled1.Workflow: one object per open workflow ---- */

static int count_activity(const ActivityRow *a, void *userdata) {
        (*(uint32_t *) userdata)++;
        return 0;
}

/* The run behind a workflow object: the running run of the id in the path, if the caller may
 * see it (DESIGN.md §10: else it does not exist). While signals are emitted, the run being
 * emitted, closed or not. */
static int workflow_find(sd_bus *bus,
                         const char *path,
                         const char *interface,
                         void *userdata,
                         void **found,
                         sd_bus_error *error) {
        ApiBus *b = userdata;
        WorkflowObject *o = &b->found;
        _cleanup_free_ char *id = NULL;
        sd_bus_message *msg;
        struct ucred cred;
        bool admin;
        int r;

        r = sd_bus_path_decode(path, WORKFLOW_PREFIX, &id);
        if (r <= 0)
                return r;
        run_row_done(&o->run);
        o->pending_activities = 0;
        if (b->emit_run_id) {
                r = store_run_get(b->manager->store, b->emit_run_id, &o->run);
                if (r >= 0 && !streq(o->run.workflow_id, id))
                        r = -ENOENT;
        } else
                r = store_run_find_running(b->manager->store, id, &o->run);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        msg = sd_bus_get_current_message(bus);
        if (msg && !b->emit_run_id) {
                r = sender_identity(b, msg, &cred, &admin);
                if (r < 0 || (!admin && cred.uid != o->run.uid))
                        return 0;
        }
        r = store_activities_foreach(b->manager->store, o->run.run_id, count_activity,
                                     &o->pending_activities);
        if (r < 0)
                return r;
        *found = o;
        return 1;
}

static int run_visible(const RunRow *run, void *userdata) {
        char ***nodes = userdata;
        size_t n = 0;
        char **p;

        while (*nodes && (*nodes)[n])
                n++;
        p = reallocarray(*nodes, n + 2, sizeof(char *));
        if (!p)
                return -ENOMEM;
        *nodes = p;
        p[n + 1] = NULL;
        p[n] = NULL;
        if (sd_bus_path_encode(WORKFLOW_PREFIX, run->workflow_id, &p[n]) < 0)
                return -ENOMEM;
        return 0;
}

static void strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

static int workflow_enumerate(
        sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes, sd_bus_error *error) {
        ApiBus *b = userdata;
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        RunFilter f = { .status = WORKFLOW_STATUS_RUNNING, .limit = LIST_LIMIT_MAX };
        struct ucred cred;
        char **nodes = NULL;
        bool admin = false;
        int r;

        r = msg ? sender_identity(b, msg, &cred, &admin) : -EPERM;
        if (r < 0) {
                *ret_nodes = NULL; /* deny: no objects */
                return 0;
        }
        f.only_uid = !admin;
        f.uid = cred.uid;
        r = store_runs_list(b->manager->store, &f, run_visible, &nodes);
        if (r < 0) {
                strv_free(nodes);
                return r;
        }
        *ret_nodes = nodes;
        return 0;
}

#define WORKFLOW_GETTER(fn, sig, expr)                                                            \
        static int fn(sd_bus *bus, const char *path, const char *interface, const char *property, \
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {               \
                const WorkflowObject *o = userdata;                                               \
                return sd_bus_message_append(reply, sig, expr);                                   \
        }

WORKFLOW_GETTER(property_get_id, "s", o->run.workflow_id)
WORKFLOW_GETTER(property_get_run_id, "s", o->run.run_id)
WORKFLOW_GETTER(property_get_type, "s", o->run.workflow_type)
WORKFLOW_GETTER(property_get_task_queue, "s", o->run.task_queue)
WORKFLOW_GETTER(property_get_status, "s", workflow_status_to_string(o->run.status))
WORKFLOW_GETTER(property_get_start_time, "t", o->run.start_time)
WORKFLOW_GETTER(property_get_close_time, "t", o->run.close_time)
WORKFLOW_GETTER(property_get_history_length, "t", o->run.next_event_id - 1)
WORKFLOW_GETTER(property_get_pending_activities, "u", o->pending_activities)

/* The methods of a workflow object act on the run it stands for (its RunId). */
static int workflow_call(sd_bus_message *msg,
                         WorkflowObject *o,
                         const char *op,
                         const char *name_key,
                         const char *payload_key,
                         BusReplyFn reply,
                         sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *name, *payload = "";
        int r;

        bus_request_init(&rq);
        r = payload_key ? sd_bus_message_read(msg, "ss", &name, &payload)
                        : sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        req_str(&rq, "workflow_id", o->run.workflow_id);
        req_str(&rq, "run_id", o->run.run_id);
        if (payload_key)
                req_str(&rq, name_key, name);
        else
                req_str_opt(&rq, name_key, name);
        if (payload_key) {
                r = req_json(&rq, payload_key, payload, "input_json", error);
                if (r < 0)
                        return r;
        }
        return bus_call_submit(o->bus, msg, op, &rq, reply, NULL, error);
}

static int method_signal(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return workflow_call(msg, userdata, "SignalWorkflow", "signal_name", "input", reply_empty,
                             error);
}

static int method_query(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return workflow_call(msg, userdata, "QueryWorkflow", "query_type", "input", reply_query,
                             error);
}

static int method_update(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        WorkflowObject *o = userdata;

        return update_call(msg, o->bus, o->run.workflow_id, o->run.run_id, error);
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return workflow_call(msg, userdata, "CancelWorkflow", "reason", NULL, reply_empty, error);
}

static int method_terminate(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return workflow_call(msg, userdata, "TerminateWorkflow", "reason", NULL, reply_empty,
                             error);
}

#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
#define CONST SD_BUS_VTABLE_PROPERTY_CONST

static const sd_bus_vtable workflow_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", property_get_id, 0, CONST),
        SD_BUS_PROPERTY("RunId", "s", property_get_run_id, 0, CONST),
        SD_BUS_PROPERTY("Type", "s", property_get_type, 0, CONST),
        SD_BUS_PROPERTY("TaskQueue", "s", property_get_task_queue, 0, CONST),
        SD_BUS_PROPERTY("Status", "s", property_get_status, 0, CHANGES),
        SD_BUS_PROPERTY("StartTime", "t", property_get_start_time, 0, CONST),
        SD_BUS_PROPERTY("CloseTime", "t", property_get_close_time, 0, CHANGES),
        SD_BUS_PROPERTY("HistoryLength", "t", property_get_history_length, 0, CHANGES),
        SD_BUS_PROPERTY("PendingActivities", "u", property_get_pending_activities, 0, CHANGES),
        SD_BUS_METHOD_WITH_ARGS("Signal",
                                SD_BUS_ARGS("s", signal_name, "s", input_json),
                                SD_BUS_NO_RESULT,
                                method_signal,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Query",
                                SD_BUS_ARGS("s", query_type, "s", input_json),
                                SD_BUS_RESULT("s", result_json),
                                method_query,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Update",
                                SD_BUS_ARGS("s", update_name, "s", update_id, "s", input_json),
                                SD_BUS_RESULT("s", update_json),
                                method_update,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cancel",
                                SD_BUS_ARGS("s", reason),
                                SD_BUS_NO_RESULT,
                                method_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Terminate",
                                SD_BUS_ARGS("s", reason),
                                SD_BUS_NO_RESULT,
                                method_terminate,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* ---- signals after the commit ---- */

void api_bus_note_changed(Manager *m, const char *run_id, bool started, bool closed) {
        ApiBus *b = m->bus;
        Changed *c;

        if (!b)
                return;
        if (b->n_changed > 0) {
                c = &b->changed[b->n_changed - 1];
                if (streq(c->run_id, run_id)) {
                        c->started |= started;
                        c->closed |= closed;
                        return;
                }
        }
        if (b->n_changed == b->changed_alloc) {
                size_t n = b->changed_alloc ? 2 * b->changed_alloc : 64;
                c = reallocarray(b->changed, n, sizeof(*c));
                if (!c) {
                        log_warning("Out of memory: D-Bus signals of run %s are not sent", run_id);
                        return;
                }
                b->changed = c;
                b->changed_alloc = n;
        }
        c = &b->changed[b->n_changed++];
        snprintf(c->run_id, sizeof(c->run_id), "%s", run_id);
        c->started = started;
        c->closed = closed;
}

void api_bus_forget_changed(Manager *m) {
        if (m->bus)
                m->bus->n_changed = 0;
}

/* The outcome of a closed run as JSON text: its result when it completed, else its failure. */
static char *outcome_json(const RunRow *run) {
        msgpack_unpacked u;
        json_t *j = NULL;
        char *text;

        msgpack_unpacked_init(&u);
        if (run->result.ptr) {
                msgpack_object o = { .type = MSGPACK_OBJECT_BIN };
                o.via.bin.ptr = run->result.ptr;
                o.via.bin.size = run->result.size;
                j = json_from_msgpack(&o);
        } else if (run->failure.ptr && msg_decode(run->failure.ptr, run->failure.size, &u) >= 0)
                j = json_from_msgpack(&u.data);
        msgpack_unpacked_destroy(&u);
        text = json_dumps(j ? j : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        return text;
}

static int emit_closed(ApiBus *b, const RunRow *run, const char *path, bool announced) {
        _cleanup_free_ char *outcome = outcome_json(run);
        int r;

        if (!outcome)
                return -ENOMEM;
        r = sd_bus_emit_signal(b->bus, MANAGER_PATH, MANAGER_IFACE, "WorkflowClosed", "ssss",
                               run->workflow_id, run->run_id,
                               workflow_status_to_string(run->status), outcome);
        if (r < 0 || !announced)
                return r;
        r = sd_bus_emit_properties_changed(b->bus, path, WORKFLOW_IFACE, "Status", "CloseTime",
                                           "HistoryLength", "PendingActivities", NULL);
        if (r < 0)
                return r;
        return sd_bus_emit_object_removed(b->bus, path);
}

static int emit_one(ApiBus *b, const Changed *c) {
        _cleanup_(run_row_done) RunRow run = {};
        _cleanup_free_ char *path = NULL;
        int r;

        r = store_run_get(b->manager->store, c->run_id, &run);
        if (r < 0)
                return r;
        r = sd_bus_path_encode(WORKFLOW_PREFIX, run.workflow_id, &path);
        if (r < 0)
                return r;
        if (c->started) {
                r = sd_bus_emit_signal(b->bus, MANAGER_PATH, MANAGER_IFACE, "WorkflowStarted",
                                       "sss", run.workflow_id, run.run_id, run.workflow_type);
                if (r >= 0 && run.status == WORKFLOW_STATUS_RUNNING)
                        r = sd_bus_emit_object_added(b->bus, path);
                if (r < 0)
                        return r;
        }
        if (run.status != WORKFLOW_STATUS_RUNNING)
                /* A run that started and closed in one pass never had an object. */
                return c->closed ? emit_closed(b, &run, path, !c->started) : 0;
        if (c->started)
                return 0;
        return sd_bus_emit_properties_changed(b->bus, path, WORKFLOW_IFACE, "HistoryLength",
                                              "PendingActivities", NULL);
}

static int changed_compare(const void *a, const void *b) {
        return strcmp(((const Changed *) a)->run_id, ((const Changed *) b)->run_id);
}

void api_bus_emit_changed(Manager *m) {
        ApiBus *b = m->bus;
        size_t n = 0;
        int r;

        if (!b || b->n_changed == 0)
                return;
        if (sd_bus_is_open(b->bus) <= 0) {
                /* The bus went away (dbus-daemon stopped): the socket API goes on. */
                if (!b->disconnected)
                        log_warning("Lost the connection to D-Bus; the D-Bus API is off");
                b->disconnected = true;
                b->n_changed = 0;
                return;
        }
        /* One entry per run, with the flags of all its changes in the pass. */
        qsort(b->changed, b->n_changed, sizeof(Changed), changed_compare);
        for (size_t i = 0; i < b->n_changed; i++) {
                if (n > 0 && streq(b->changed[n - 1].run_id, b->changed[i].run_id)) {
                        b->changed[n - 1].started |= b->changed[i].started;
                        b->changed[n - 1].closed |= b->changed[i].closed;
                } else
                        b->changed[n++] = b->changed[i];
        }
        for (size_t i = 0; i < n; i++) {
                b->emit_run_id = b->changed[i].run_id;
                r = emit_one(b, &b->changed[i]);
                b->emit_run_id = NULL;
                if (r < 0)
                        log_warning_errno(r, "Failed to emit D-Bus signals for run %s: %m",
                                          b->changed[i].run_id);
        }
        b->n_changed = 0;
}

/* ---- org.durabled1.Manager: standalone activities, schedules, visibility queries ----
 *
 * A second vtable of the same interface on the same object: sd-bus serves both as one
 * org.durabled1.Manager, this one's members after the first's (so they follow the signals in
 * the introspection XML). Each method runs the socket operation of its name, like those above. */

static const char *const start_activity_options[] = {
        "start_to_close_usec", "schedule_to_close_usec",
        "heartbeat_usec",      "retry_policy",
        "request_id",          NULL,
};

static const char *const schedule_definition_keys[] = {
        "calendars",
        "intervals",
        "start_time_usec",
        "end_time_usec",
        "jitter_usec",
        "workflow_type",
        "task_queue",
        "input",
        "workflow_id_prefix",
        "task_timeout_usec",
        "overlap",
        "catchup",
        "catchup_window_usec",
        "pause_on_failure",
        "wake_system",
        "paused",
        "note",
        NULL,
};

static bool strv_contains(const char *const *l, const char *s) {
        for (; *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

/* "a, b, c" for an error message. */
static void strv_join(const char *const *l, char *buf, size_t size) {
        size_t k = 0;

        buf[0] = 0;
        for (; *l && k < size; l++)
                k += (size_t) snprintf(buf + k, size - k, "%s%s", k ? ", " : "", *l);
}

/* The fields of a JSON object in argument @arg ("" = none) as request fields. Keys outside
 * @keys are refused, so that a typo is not silently ignored; "input" becomes a payload. */
static int req_json_fields(BusRequest *rq,
                           const char *json,
                           const char *arg,
                           const char *const *keys,
                           sd_bus_error *error) {
        json_error_t jerr;
        const char *key;
        char expected[512];
        json_t *j, *v;
        int r = 0;

        if (!*json)
                return 0;
        j = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                         "argument %s is not a valid JSON object: %s (line %d, "
                                         "column %d)",
                                         arg, jerr.text, jerr.line, jerr.column);
        if (!json_is_object(j)) {
                json_decref(j);
                return sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                         "argument %s is not a valid JSON object", arg);
        }
        json_object_foreach(j, key, v) {
                if (!strv_contains(keys, key)) {
                        strv_join(keys, expected, sizeof(expected));
                        r = sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                              "argument %s: unknown key '%s' (expected %s)", arg,
                                              key, expected);
                        break;
                }
                (void) msg_pack_str(&rq->fields.pk, key);
                r = streq(key, "input") ? json_pack_payload(v, &rq->fields.pk)
                                        : json_to_msgpack(v, &rq->fields.pk);
                if (r < 0) {
                        r = sd_bus_error_setf(error, ERROR_PREFIX "InvalidArgument",
                                              "argument %s: key '%s' cannot be encoded", arg, key);
                        break;
                }
                rq->n++;
        }
        json_decref(j);
        return r;
}

static int answer_bool(const msgpack_object *answer, const char *key) {
        const msgpack_object *o = msg_get(answer, key);
        return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

/* The value of @key in the answer as JSON text. */
#define REPLY_JSON_FIELD(fn, key)                                                         \
        static int fn(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) { \
                return append_json(reply, msg_get(answer, key));                          \
        }

REPLY_JSON_FIELD(reply_activity_types, "activity_types")
REPLY_JSON_FIELD(reply_schedule, "schedule")

static int reply_backfill(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        return sd_bus_message_append(reply, "u", (uint32_t) answer_uint(answer, "times"));
}

static int reply_list_schedules(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        const msgpack_object *list = msg_get(answer, "schedules");
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(sssbstt)");
        for (uint32_t i = 0;
             r >= 0 && list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size;
             i++) {
                const msgpack_object *s = &list->via.array.ptr[i];
                char id[1001], type[1001], queue[1001], note[1001];

                r = sd_bus_message_append(
                        reply, "(sssbstt)", answer_str(s, "schedule_id", id, 1001),
                        answer_str(s, "workflow_type", type, 1001),
                        answer_str(s, "task_queue", queue, 1001), answer_bool(s, "paused"),
                        answer_str(s, "note", note, 1001), answer_uint(s, "action_count"),
                        answer_uint(s, "next_action_time_usec"));
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int reply_query_workflows(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        char token[4097];
        int r;

        r = reply_list(bc, reply, answer);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s",
                                     answer_str(answer, "next_page_token", token, sizeof(token)));
}

static int reply_count(BusCall *bc, sd_bus_message *reply, const msgpack_object *answer) {
        const msgpack_object *groups = msg_get(answer, "groups");
        int r;

        r = sd_bus_message_append(reply, "t", answer_uint(answer, "count"));
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(st)");
        for (uint32_t i = 0;
             r >= 0 && groups && groups->type == MSGPACK_OBJECT_ARRAY && i < groups->via.array.size;
             i++) {
                const msgpack_object *g = &groups->via.array.ptr[i];
                char status[32];

                r = sd_bus_message_append(reply, "(st)", answer_str(g, "status", status, 32),
                                          answer_uint(g, "count"));
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int method_start_activity(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *type, *queue, *input, *options;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "sssss", &id, &type, &queue, &input, &options);
        if (r < 0)
                return r;
        req_str(&rq, "activity_id", id);
        req_str(&rq, "activity_type", type);
        req_str_opt(&rq, "task_queue", queue);
        r = req_json(&rq, "input", input, "input_json", error);
        if (r >= 0)
                r = req_json_fields(&rq, options, "options_json", start_activity_options, error);
        if (r < 0)
                return r;
        return bus_call_submit(userdata, msg, "StartActivity", &rq, reply_start, id, error);
}

/* Methods without arguments. */
static int method_no_args(
        sd_bus_message *msg, ApiBus *b, const char *op, BusReplyFn reply, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;

        bus_request_init(&rq);
        return bus_call_submit(b, msg, op, &rq, reply, NULL, error);
}

static int method_list_activity_types(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_no_args(msg, userdata, "ListActivityTypes", reply_activity_types, error);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_no_args(msg, userdata, "Reload", reply_activity_types, error);
}

static int method_list_schedules(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_no_args(msg, userdata, "ListSchedules", reply_list_schedules, error);
}

static int method_create_schedule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *definition;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "ss", &id, &definition);
        if (r < 0)
                return r;
        req_str(&rq, "schedule_id", id);
        r = req_json_fields(&rq, definition, "definition_json", schedule_definition_keys, error);
        if (r < 0)
                return r;
        return bus_call_submit(userdata, msg, "CreateSchedule", &rq, reply_empty, NULL, error);
}

static int method_describe_schedule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id;
        uint32_t next;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "su", &id, &next);
        if (r < 0)
                return r;
        req_str(&rq, "schedule_id", id);
        if (next > 0)
                req_uint(&rq, "next", next);
        return bus_call_submit(userdata, msg, "DescribeSchedule", &rq, reply_schedule, NULL, error);
}

/* Pause, Unpause (s note), Trigger (s overlap), Delete: a schedule id and an optional string. */
static int method_schedule_simple(
        sd_bus_message *msg, ApiBus *b, const char *op, const char *key, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *value = "";
        int r;

        bus_request_init(&rq);
        r = key ? sd_bus_message_read(msg, "ss", &id, &value) : sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        req_str(&rq, "schedule_id", id);
        if (key)
                req_str_opt(&rq, key, value);
        return bus_call_submit(b, msg, op, &rq, reply_empty, NULL, error);
}

static int method_pause_schedule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_schedule_simple(msg, userdata, "PauseSchedule", "note", error);
}

static int method_unpause_schedule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_schedule_simple(msg, userdata, "UnpauseSchedule", "note", error);
}

static int method_trigger_schedule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_schedule_simple(msg, userdata, "TriggerSchedule", "overlap", error);
}

static int method_delete_schedule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_schedule_simple(msg, userdata, "DeleteSchedule", NULL, error);
}

static int method_backfill_schedule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *id, *overlap;
        uint64_t start, end;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "stts", &id, &start, &end, &overlap);
        if (r < 0)
                return r;
        req_str(&rq, "schedule_id", id);
        req_uint(&rq, "start_time_usec", start);
        req_uint(&rq, "end_time_usec", end);
        req_str_opt(&rq, "overlap", overlap);
        return bus_call_submit(userdata, msg, "BackfillSchedule", &rq, reply_backfill, NULL, error);
}

static int method_query_workflows(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *query, *token;
        uint32_t page_size;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "sus", &query, &page_size, &token);
        if (r < 0)
                return r;
        req_str_opt(&rq, "query", query);
        if (page_size > 0)
                req_uint(&rq, "limit", MIN(page_size, LIST_LIMIT_MAX));
        req_str_opt(&rq, "page_token", token);
        return bus_call_submit(userdata, msg, "ListWorkflows", &rq, reply_query_workflows, NULL,
                               error);
}

static int method_count_workflows(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_request_done) BusRequest rq;
        const char *query;
        int r;

        bus_request_init(&rq);
        r = sd_bus_message_read(msg, "s", &query);
        if (r < 0)
                return r;
        req_str_opt(&rq, "query", query);
        return bus_call_submit(userdata, msg, "CountWorkflows", &rq, reply_count, NULL, error);
}

static const sd_bus_vtable manager_more_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("StartActivity",
                                SD_BUS_ARGS("s",
                                            activity_id,
                                            "s",
                                            activity_type,
                                            "s",
                                            task_queue,
                                            "s",
                                            input_json,
                                            "s",
                                            options_json),
                                SD_BUS_RESULT("s", run_id, "o", workflow),
                                method_start_activity,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListActivityTypes",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("s", activity_types_json),
                                method_list_activity_types,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("s", activity_types_json),
                                method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateSchedule",
                                SD_BUS_ARGS("s", schedule_id, "s", definition_json),
                                SD_BUS_NO_RESULT,
                                method_create_schedule,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListSchedules",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssbstt)", schedules),
                                method_list_schedules,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DescribeSchedule",
                                SD_BUS_ARGS("s", schedule_id, "u", next),
                                SD_BUS_RESULT("s", schedule_json),
                                method_describe_schedule,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PauseSchedule",
                                SD_BUS_ARGS("s", schedule_id, "s", note),
                                SD_BUS_NO_RESULT,
                                method_pause_schedule,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UnpauseSchedule",
                                SD_BUS_ARGS("s", schedule_id, "s", note),
                                SD_BUS_NO_RESULT,
                                method_unpause_schedule,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("TriggerSchedule",
                                SD_BUS_ARGS("s", schedule_id, "s", overlap),
                                SD_BUS_NO_RESULT,
                                method_trigger_schedule,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "BackfillSchedule",
                SD_BUS_ARGS(
                        "s", schedule_id, "t", start_time_usec, "t", end_time_usec, "s", overlap),
                SD_BUS_RESULT("u", times),
                method_backfill_schedule,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DeleteSchedule",
                                SD_BUS_ARGS("s", schedule_id),
                                SD_BUS_NO_RESULT,
                                method_delete_schedule,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("QueryWorkflows",
                                SD_BUS_ARGS("s", query, "u", page_size, "s", page_token),
                                SD_BUS_RESULT("a(ssssstt)", workflows, "s", next_page_token),
                                method_query_workflows,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CountWorkflows",
                                SD_BUS_ARGS("s", query),
                                SD_BUS_RESULT("t", count, "a(st)", groups),
                                method_count_workflows,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* ---- set-up ---- */

ApiBus *api_bus_free(ApiBus *b) {
        if (!b)
                return NULL;
        b->bus = sd_bus_flush_close_unref(b->bus);
        run_row_done(&b->found.run);
        free(b->cached_sender);
        free(b->changed);
        free(b);
        return NULL;
}

static int bus_connect(Manager *m, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        if (!m->cfg.bus_address)
                return m->cfg.user_mode ? sd_bus_open_user(ret) : sd_bus_open_system(ret);
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, m->cfg.bus_address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static int bus_register(ApiBus *b) {
        int r;

        r = sd_bus_add_object_vtable(b->bus, NULL, MANAGER_PATH, MANAGER_IFACE, manager_vtable, b);
        if (r >= 0)
                r = sd_bus_add_object_vtable(b->bus, NULL, MANAGER_PATH, MANAGER_IFACE,
                                             manager_more_vtable, b);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(b->bus, NULL, WORKFLOW_PREFIX, WORKFLOW_IFACE,
                                               workflow_vtable, workflow_find, b);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(b->bus, NULL, WORKFLOW_PREFIX, workflow_enumerate,
                                               b);
        if (r >= 0)
                r = sd_bus_add_object_manager(b->bus, NULL, MANAGER_PATH);
        return r;
}

int api_bus_open(Manager *m) {
        ApiBus *b;
        const char *which = m->cfg.bus_address ? m->cfg.bus_address
                            : m->cfg.user_mode ? "the session bus"
                                               : "the system bus";
        int r;

        if (m->cfg.no_bus)
                return 0;
        b = calloc(1, sizeof(*b));
        if (!b)
                return log_error_errno(-ENOMEM, "Failed to set up D-Bus: %m");
        b->manager = m;
        b->found.bus = b;
        m->bus = b;
        r = bus_connect(m, &b->bus);
        if (r < 0) {
                m->bus = api_bus_free(b);
                if (m->cfg.bus_address)
                        return log_error_errno(r, "Failed to connect to D-Bus at %s: %m", which);
                log_full_errno(LOG_NOTICE, r, "No D-Bus API: cannot connect to %s: %m", which);
                return 0;
        }
        r = bus_register(b);
        if (r < 0) {
                m->bus = api_bus_free(b);
                return log_error_errno(r, "Failed to register the D-Bus objects: %m");
        }
        r = sd_bus_request_name(b->bus, BUS_NAME, 0);
        if (r == -EEXIST)
                r = -EADDRINUSE; /* "Address already in use": another process owns the name */
        if (r < 0) {
                m->bus = api_bus_free(b);
                if (m->cfg.bus_address)
                        return log_error_errno(r, "Failed to acquire the bus name %s on %s: %m",
                                               BUS_NAME, which);
                log_warning_errno(r, "No D-Bus API: cannot acquire the bus name %s on %s: %m",
                                  BUS_NAME, which);
                return 0;
        }
        /* Below the post source (SD_EVENT_PRIORITY_IDLE): see the top of this file. */
        r = sd_bus_attach_event(b->bus, m->event, SD_EVENT_PRIORITY_IDLE + 1);
        if (r < 0) {
                m->bus = api_bus_free(b);
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        }
        log_info("D-Bus API: %s on %s", BUS_NAME, which);
        return 0;
}
