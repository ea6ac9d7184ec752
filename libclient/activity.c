/* Activity tasks and their context (dur_actx); see activity.h and doc/protocol.md "Worker
 * operations".
 *
 * An activity function runs on the activity thread that polled it, with that thread's Conn; its
 * heartbeats are calls on the same Conn, so no locking is needed beyond the Conn's own. The
 * outcome maps to one report: 0 → CompleteActivityTask with what the function packed,
 * DUR_CANCELED → CancelActivityTask (the function acknowledged a cancel request), anything else
 * negative → FailActivityTask with the failure set by dur_actx_fail() or a generic one.
 *
 * Heartbeats are throttled as Temporal's SDKs do it (SEMANTICS.md b.2): at most one per 0.8 x the
 * heartbeat timeout (30 s without one, 60 s at most) reaches the daemon, since each is a
 * committed write; the calls in between keep only their details, and return the cancel state the
 * last answer gave. Details still held when the attempt fails are sent first, so that they reach
 * the next attempt.
 *
 * The same function runs as a process activity (durabled.activity(5)) through
 * dur_activity_main(): its context then has no Conn; heartbeats become sd_notify datagrams
 * ("HEARTBEAT=<details as JSON>") on $NOTIFY_SOCKET, and the unit's KillSignal (SIGTERM by
 * default) is the cancel request that dur_actx_heartbeat() reports. */

#define _GNU_SOURCE 1 /* asprintf() */

#include "libclient/activity.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "libclient/buf.h"
#include "libclient/failure.h"
#include "libclient/logging.h"
#include "libclient/object.h"
#include "proto/json.h"
#include "proto/msg.h"

/* The fields of an activity task that libdurable uses. Strings live in the task's zone. */
typedef struct ActivityTask {
        MsgBin task_token;
        const char *workflow_id;
        const char *activity_id;
        const char *activity_type;
        MsgBin input;
        MsgBin heartbeat_details;
        uint64_t attempt;
        uint64_t heartbeat_usec;
} ActivityTask;

#define HEARTBEAT_THROTTLE_DEFAULT_USEC (30ULL * 1000000)
#define HEARTBEAT_THROTTLE_MAX_USEC (60ULL * 1000000)

struct dur_actx {
        Conn *conn;
        const ActivityTask *task;
        msgpack_zone *zone; /* decoded input and heartbeat details */
        msgpack_object heartbeat_details;
        bool has_heartbeat_details;
        char *idempotency_key;
        dur_failure *failure;    /* set by dur_actx_fail() */
        uint64_t heartbeat_sent; /* CLOCK_MONOTONIC usec of the last heartbeat sent, 0 = none */
        dur_buf *heartbeat_held; /* details of a throttled heartbeat, not sent yet */
        bool cancel_requested;   /* what the last heartbeat answer said */
        bool process;            /* run by dur_activity_main(): no Conn, $NOTIFY_SOCKET */
};

static int process_heartbeat(dur_actx *ctx, const dur_buf *details);

static uint64_t now_monotonic(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t heartbeat_interval(const ActivityTask *t) {
        if (!t->heartbeat_usec)
                return HEARTBEAT_THROTTLE_DEFAULT_USEC;
        return MIN(t->heartbeat_usec / 5 * 4, HEARTBEAT_THROTTLE_MAX_USEC);
}

/* Sends one HeartbeatActivity with @details (may be NULL) and records the answer. */
static int heartbeat_send(dur_actx *ctx, const dur_buf *details) {
        msgpack_unpacked answer;
        const msgpack_object *cancel;
        Request req;
        int k;

        request_init(&req, ctx->conn, "HeartbeatActivity", details ? 2 : 1);
        (void) msg_pack_kv_bin(&req.pk, "task_token", ctx->task->task_token.ptr,
                               ctx->task->task_token.size);
        if (details)
                (void) msg_pack_kv_bin(&req.pk, "details", details->data, details->size);
        k = conn_call(ctx->conn, &req, &answer);
        request_done(&req);
        if (k < 0)
                return k; /* -ENOENT: the attempt is over (timed out); the function should stop */
        ctx->heartbeat_sent = now_monotonic();
        cancel = msg_get(&answer.data, "cancel_requested");
        ctx->cancel_requested =
                cancel && cancel->type == MSGPACK_OBJECT_BOOLEAN && cancel->via.boolean;
        msgpack_unpacked_destroy(&answer);
        return ctx->cancel_requested ? DUR_CANCELED : 0;
}

/* ---- the context ----------------------------------------------------------------------------- */

DUR_PUBLIC int dur_actx_heartbeat(dur_actx *ctx, dur_buf *details) {
        _cleanup_(dur_buf_freep) dur_buf *d = details;
        int k;

        assert_return(ctx, -EINVAL);
        if (ctx->heartbeat_sent &&
            now_monotonic() - ctx->heartbeat_sent < heartbeat_interval(ctx->task)) {
                /* Throttled: keep the newest details for the next heartbeat that goes out. */
                if (d) {
                        dur_buf_free(ctx->heartbeat_held);
                        ctx->heartbeat_held = TAKE_PTR(d);
                }
                return ctx->cancel_requested ? DUR_CANCELED : 0;
        }
        k = ctx->process ? process_heartbeat(ctx, d ?: ctx->heartbeat_held)
                         : heartbeat_send(ctx, d ?: ctx->heartbeat_held);
        ctx->heartbeat_held = dur_buf_free(ctx->heartbeat_held);
        return k;
}

DUR_PUBLIC const msgpack_object *dur_actx_heartbeat_details(dur_actx *ctx) {
        assert_return(ctx, NULL);
        return ctx->has_heartbeat_details ? &ctx->heartbeat_details : NULL;
}

DUR_PUBLIC const void *dur_actx_task_token(dur_actx *ctx, size_t *ret_size) {
        if (!ctx || !ctx->task || !ctx->task->task_token.ptr) {
                if (ret_size)
                        *ret_size = 0;
                return NULL;
        }
        if (ret_size)
                *ret_size = ctx->task->task_token.size;
        return ctx->task->task_token.ptr;
}

DUR_PUBLIC unsigned dur_actx_attempt(dur_actx *ctx) {
        assert_return(ctx, 0);
        return (unsigned) ctx->task->attempt;
}

DUR_PUBLIC const char *dur_actx_workflow_id(dur_actx *ctx) {
        assert_return(ctx, NULL);
        return ctx->task->workflow_id;
}

DUR_PUBLIC const char *dur_actx_activity_id(dur_actx *ctx) {
        assert_return(ctx, NULL);
        return ctx->task->activity_id;
}

DUR_PUBLIC const char *dur_actx_idempotency_key(dur_actx *ctx) {
        assert_return(ctx, NULL);
        return ctx->idempotency_key;
}

DUR_PUBLIC int
dur_actx_fail(dur_actx *ctx, const char *type, bool non_retryable, const char *fmt, ...) {
        char message[1024];
        dur_failure *f;
        va_list ap;

        assert_return(ctx && fmt, -EINVAL);
        va_start(ap, fmt);
        (void) vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        f = failure_new(type, non_retryable, message);
        if (!f)
                return -ENOMEM;
        failure_free(ctx->failure);
        ctx->failure = f;
        return DUR_FAILED;
}

/* ---- reporting ------------------------------------------------------------------------------- */

/* Sends a report. An error answer (the token went stale: the attempt timed out or the run closed)
 * is logged and dropped; only a broken connection is returned. */
static int report(Conn *conn, Request *req, const ActivityTask *t) {
        msgpack_unpacked answer;
        int k;

        k = conn_call_riding(conn, req, &answer); /* the thread's next poll rides along */
        request_done(req);
        if (k >= 0) {
                msgpack_unpacked_destroy(&answer);
                return 0;
        }
        if (!conn_error_code(conn))
                return k;
        dur_log(LOG_WARNING, "Activity %s of workflow '%s': the daemon refused its outcome: %s",
                t->activity_id, t->workflow_id, conn_error_message(conn) ?: conn_error_code(conn));
        return 0;
}

static int report_completed(Conn *conn, const ActivityTask *t, const msgpack_sbuffer *result) {
        Request req;

        request_init(&req, conn, "CompleteActivityTask", result->size > 0 ? 2 : 1);
        (void) msg_pack_kv_bin(&req.pk, "task_token", t->task_token.ptr, t->task_token.size);
        if (result->size > 0)
                (void) msg_pack_kv_bin(&req.pk, "result", result->data, result->size);
        return report(conn, &req, t);
}

static int report_canceled(Conn *conn, const ActivityTask *t) {
        Request req;

        request_init(&req, conn, "CancelActivityTask", 1);
        (void) msg_pack_kv_bin(&req.pk, "task_token", t->task_token.ptr, t->task_token.size);
        return report(conn, &req, t);
}

static int report_failed(Conn *conn, const ActivityTask *t, const dur_failure *f) {
        Request req;

        request_init(&req, conn, "FailActivityTask", 2);
        (void) msg_pack_kv_bin(&req.pk, "task_token", t->task_token.ptr, t->task_token.size);
        (void) msg_pack_str(&req.pk, "failure");
        if (failure_pack(f, &req.pk) < 0)
                req.oom = true;
        return report(conn, &req, t);
}

static int
report_failed_message(Conn *conn, const ActivityTask *t, const char *type, const char *fmt, ...)
        _printf_(4, 5);
static int
report_failed_message(Conn *conn, const ActivityTask *t, const char *type, const char *fmt, ...) {
        _cleanup_(failure_freep) dur_failure *f = NULL;
        char message[512];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        f = failure_new(type, false, message);
        if (!f)
                return -ENOMEM;
        return report_failed(conn, t, f);
}

/* ---- running a task -------------------------------------------------------------------------- */

static const MsgField activity_task_fields[] = {
        { "task_token", MSG_BIN, offsetof(ActivityTask, task_token), true, 0 },
        { "workflow_id", MSG_STR, offsetof(ActivityTask, workflow_id), true, 0 },
        { "activity_id", MSG_STR, offsetof(ActivityTask, activity_id), true, 0 },
        { "activity_type", MSG_STR, offsetof(ActivityTask, activity_type), true, 0 },
        { "input", MSG_BIN, offsetof(ActivityTask, input), false, 0 },
        { "heartbeat_details", MSG_BIN, offsetof(ActivityTask, heartbeat_details), false, 0 },
        { "attempt", MSG_UINT, offsetof(ActivityTask, attempt), false, 0 },
        { "heartbeat_usec", MSG_UINT, offsetof(ActivityTask, heartbeat_usec), false, 0 },
        { NULL },
};

static const dur_activity_def *
find_activity_def(const dur_activity_def *const *defs, size_t n, const char *type) {
        for (size_t i = 0; i < n; i++)
                if (streq(defs[i]->name, type))
                        return defs[i];
        return NULL;
}

/* Runs the function and reports; the task's payloads are decoded first. */
static int activity_call(Conn *conn, const dur_activity_def *def, dur_actx *ctx) {
        const ActivityTask *t = ctx->task;
        msgpack_object input = { .type = MSGPACK_OBJECT_NIL };
        msgpack_sbuffer out;
        msgpack_packer pk;
        int k;

        k = object_from_payload(t->input.ptr, t->input.size, ctx->zone, &input);
        if (k < 0)
                return report_failed_message(conn, t, "BadInput", "activity input is not msgpack");
        if (t->heartbeat_details.size > 0 &&
            object_from_payload(t->heartbeat_details.ptr, t->heartbeat_details.size, ctx->zone,
                                &ctx->heartbeat_details) >= 0)
                ctx->has_heartbeat_details = true;

        msgpack_sbuffer_init(&out);
        msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
        k = def->fn(ctx, &input, &pk);
        if (k < 0 && k != DUR_CANCELED && ctx->heartbeat_held)
                /* Details of a throttled heartbeat go out before the failure, so that the next
                 * attempt starts from them; a lost connection shows in the report below. */
                (void) heartbeat_send(ctx, ctx->heartbeat_held);
        if (k >= 0 && out.size > 0 && msg_validate(out.data, out.size) < 0)
                k = report_failed_message(
                        conn, t, "BadResult",
                        "activity '%s' packed more or less than one msgpack value", def->name);
        else if (k >= 0)
                k = report_completed(conn, t, &out);
        else if (k == DUR_CANCELED)
                k = report_canceled(conn, t);
        else if (k == DUR_ASYNC)
                k = 0; /* someone else completes it (durable.h) */
        else if (ctx->failure)
                k = report_failed(conn, t, ctx->failure);
        else
                k = report_failed_message(conn, t, "ActivityError", "activity '%s' returned %d",
                                          def->name, k);
        msgpack_sbuffer_destroy(&out);
        return k;
}

int activity_task_run(Conn *conn,
                      const dur_activity_def *const *defs,
                      size_t n_defs,
                      const msgpack_object *task) {
        ActivityTask t = { .attempt = 1 };
        const dur_activity_def *def;
        dur_actx ctx = { .conn = conn, .task = &t };
        char err[256];
        int k;

        ctx.zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        if (!ctx.zone)
                return -ENOMEM;
        k = msg_parse(task, ctx.zone, activity_task_fields, &t, err, sizeof(err));
        if (k < 0) {
                /* Without a token there is no one to report to: the attempt times out. */
                if (k == -ENOMEM)
                        goto finish;
                dur_log(LOG_ERR, "Dropped a malformed activity task: %s", err);
                k = 0;
                goto finish;
        }
        def = find_activity_def(defs, n_defs, t.activity_type);
        if (!def) {
                /* Retryable: a worker that has it may poll the same queue. */
                k = report_failed_message(conn, &t, "NotFoundError",
                                          "activity type '%s' is not registered with this worker",
                                          t.activity_type);
                goto finish;
        }
        if (asprintf(&ctx.idempotency_key, "%s/%s", t.workflow_id, t.activity_id) < 0) {
                ctx.idempotency_key = NULL;
                k = -ENOMEM;
                goto finish;
        }
        k = activity_call(conn, def, &ctx);
finish:
        free(ctx.idempotency_key);
        dur_buf_free(ctx.heartbeat_held);
        failure_free(ctx.failure);
        msgpack_zone_free(ctx.zone);
        return k;
}

/* ---- as a process (dur_activity_main) -------------------------------------------------------- */

static volatile sig_atomic_t process_cancel_requested;

static void process_on_stop(int sig) {
        process_cancel_requested = 1;
}

/* One sd_notify datagram on $NOTIFY_SOCKET (a path, or "@name" for an abstract socket). Without
 * the variable (run by hand) heartbeats go nowhere. */
static int notify_send(const char *msg) {
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len;
        int fd, k = 0;

        if (!path || !*path)
                return 0;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path));
        if (path[0] == '@')
                sa.sun_path[0] = 0;
        len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path));
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0)
                k = -errno;
        close(fd);
        return k;
}

static int process_heartbeat(dur_actx *ctx, const dur_buf *details) {
        _cleanup_free_ char *text = NULL, *msg = NULL;
        msgpack_unpacked u;
        json_t *j = NULL;
        size_t off = 0;

        msgpack_unpacked_init(&u);
        if (details &&
            msgpack_unpack_next(&u, details->data, details->size, &off) == MSGPACK_UNPACK_SUCCESS)
                j = json_from_msgpack(&u.data);
        msgpack_unpacked_destroy(&u);
        text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        if (asprintf(&msg, "HEARTBEAT=%s", text ? text : "") < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        (void) notify_send(msg); /* a lost heartbeat is what the heartbeat timeout is for */
        ctx->heartbeat_sent = now_monotonic();
        return process_cancel_requested ? DUR_CANCELED : 0;
}

/* Reads all of stdin. */
static int read_stdin(char **ret, size_t *ret_size) {
        char *buf = NULL, *nb;
        size_t size = 0, alloc = 0;
        ssize_t n;

        for (;;) {
                if (size + 4096 > alloc) {
                        alloc = alloc ? alloc * 2 : 65536;
                        nb = realloc(buf, alloc);
                        if (!nb) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = nb;
                }
                n = read(STDIN_FILENO, buf + size, alloc - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        free(buf);
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        *ret = buf;
        *ret_size = size;
        return 0;
}

/* Prints one JSON value and a newline on stdout. */
static int print_value(json_t *j) {
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        int k = s && printf("%s\n", s) >= 0 && fflush(stdout) == 0 ? 0 : -EIO;

        free(s);
        return k;
}

/* The failure as {"error": {...}} on stdout (durabled.activity(5), OUTCOMES). */
static void print_failure(const dur_failure *f, const char *fallback) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        json_t *e = NULL, *doc;
        size_t off = 0;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_unpacked_init(&u);
        if (f && failure_pack(f, &pk) >= 0 &&
            msgpack_unpack_next(&u, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS)
                e = json_from_msgpack(&u.data);
        if (!e)
                e = json_pack("{s:s, s:s, s:b}", "type", "ActivityError", "message", fallback,
                              "non_retryable", 0);
        doc = json_pack("{s:o}", "error", e);
        (void) print_value(doc);
        json_decref(doc);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
}

static int run_process(const dur_activity_def *def, dur_actx *ctx, const msgpack_object *input) {
        msgpack_sbuffer out;
        msgpack_packer pk;
        msgpack_unpacked u;
        size_t off = 0;
        json_t *j = NULL;
        int k, status;

        msgpack_sbuffer_init(&out);
        msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
        msgpack_unpacked_init(&u);
        k = def->fn(ctx, input, &pk);
        if (k >= 0) {
                if (out.size > 0 &&
                    (msgpack_unpack_next(&u, out.data, out.size, &off) != MSGPACK_UNPACK_SUCCESS ||
                     off != out.size)) {
                        print_failure(NULL, "the activity packed more or less than one value");
                        status = 1;
                } else {
                        j = out.size > 0 ? json_from_msgpack(&u.data) : json_null();
                        status = print_value(j) < 0 ? 1 : 0;
                }
        } else if (k == DUR_CANCELED) {
                fprintf(stderr, "%s: canceled\n", def->name);
                status = 1;
        } else {
                char fallback[128];
                snprintf(fallback, sizeof(fallback), "activity '%s' returned %d", def->name, k);
                print_failure(ctx->failure, fallback);
                status = 1;
        }
        json_decref(j);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&out);
        return status;
}

DUR_PUBLIC int dur_activity_main(const dur_activity_def *def, int argc, char *argv[]) {
        struct sigaction sa = { .sa_handler = process_on_stop };
        ActivityTask t = { .attempt = 1 };
        dur_actx ctx = { .task = &t, .process = true };
        msgpack_object input = { .type = MSGPACK_OBJECT_NIL };
        msgpack_sbuffer in;
        msgpack_packer pk;
        json_error_t jerr;
        json_t *j = NULL, *hbj = NULL;
        msgpack_sbuffer hbsb;
        msgpack_packer hbpk;
        char *text = NULL;
        size_t size = 0;
        const char *e;
        int status = 2;

        assert_return(def && def->fn, 2);
        msgpack_sbuffer_init(&hbsb);
        msgpack_packer_init(&hbpk, &hbsb, msgpack_sbuffer_write);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGINT, &sa, NULL);
        t.workflow_id = (e = getenv("DURABLED_WORKFLOW_ID")) ? e : "";
        t.activity_id = (e = getenv("DURABLED_ACTIVITY_ID")) ? e : "";
        t.activity_type = def->name;
        if ((e = getenv("DURABLED_ATTEMPT")))
                t.attempt = strtoull(e, NULL, 10) ?: 1;
        e = getenv("DURABLED_IDEMPOTENCY_KEY");
        ctx.idempotency_key = strdup(e ? e : "");
        msgpack_sbuffer_init(&in);
        msgpack_packer_init(&pk, &in, msgpack_sbuffer_write);
        /* Strings handed to user code are NUL-terminated copies in the zone (object.c). */
        ctx.zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        /* The last heartbeat of an earlier attempt, so that this one resumes from it. */
        if (ctx.zone && (e = getenv("DURABLED_HEARTBEAT_DETAILS")) &&
            (hbj = json_loads(e, JSON_DECODE_ANY, NULL)) && json_to_msgpack(hbj, &hbpk) >= 0 &&
            object_from_payload(hbsb.data, hbsb.size, ctx.zone, &ctx.heartbeat_details) >= 0)
                ctx.has_heartbeat_details = true;
        if (!ctx.idempotency_key || !ctx.zone || read_stdin(&text, &size) < 0) {
                fprintf(stderr, "%s: cannot read the input: %s\n", argv && argc > 0 ? argv[0] : "",
                        strerror(errno ?: ENOMEM));
                goto finish;
        }
        if (size > 0) {
                j = json_loadb(text, size, JSON_DECODE_ANY, &jerr);
                if (!j) {
                        fprintf(stderr, "%s: the input is not JSON: %s\n", def->name, jerr.text);
                        goto finish;
                }
                if (json_to_msgpack(j, &pk) < 0 ||
                    object_from_payload(in.data, in.size, ctx.zone, &input) < 0)
                        goto finish;
        }
        status = run_process(def, &ctx, &input);
finish:
        json_decref(j);
        json_decref(hbj);
        free(text);
        msgpack_sbuffer_destroy(&in);
        msgpack_sbuffer_destroy(&hbsb);
        msgpack_zone_free(ctx.zone);
        free(ctx.idempotency_key);
        dur_buf_free(ctx.heartbeat_held);
        failure_free(ctx.failure);
        return status;
}
