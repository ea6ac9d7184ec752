/* Tests of libclient/conn.c and client.c (with failure.c behind dur_client_result()) against a
 * scripted fake daemon: a thread that serves one connection on a socket in a temporary
 * directory and answers each op as the table in fake_answer() says. */

#define _GNU_SOURCE 1 /* accept4() */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <msgpack.h>

#include "durable/durable.h"
#include "libclient/conn.h"
#include "libclient/failure.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "tests/lib/test.h"

typedef struct Fake {
        char dir[64];
        char path[128];
        int listen_fd;
        pthread_t thread;
} Fake;

static void pack_payload_str(msgpack_packer *pk, const char *key, const char *value) {
        msgpack_sbuffer inner;
        msgpack_packer ipk;

        msgpack_sbuffer_init(&inner);
        msgpack_packer_init(&ipk, &inner, msgpack_sbuffer_write);
        msg_pack_str(&ipk, value);
        msg_pack_kv_bin(pk, key, inner.data, inner.size);
        msgpack_sbuffer_destroy(&inner);
}

static void pack_failure(msgpack_packer *pk) {
        msgpack_pack_map(pk, 5);
        msg_pack_kv_str(pk, "message", "activity failed");
        msg_pack_kv_str(pk, "type", "");
        msg_pack_kv_bool(pk, "non_retryable", false);
        pack_payload_str(pk, "details", "more");
        msg_pack_str(pk, "cause");
        msgpack_pack_map(pk, 3);
        msg_pack_kv_str(pk, "message", "Payment declined");
        msg_pack_kv_str(pk, "type", "PaymentDeclined");
        msg_pack_kv_bool(pk, "non_retryable", true);
}

static void pack_error(msgpack_packer *pk, uint64_t id, const char *code, const char *message) {
        msgpack_pack_map(pk, 2);
        msg_pack_kv_uint(pk, "id", id);
        msg_pack_str(pk, "error");
        msgpack_pack_map(pk, 2);
        msg_pack_kv_str(pk, "code", code);
        msg_pack_kv_str(pk, "message", message);
}

/* Appends the answer frame(s) to @op with request id @id; false to close the connection. */
static bool
fake_answer(msgpack_sbuffer *sb, const msgpack_object *req, const char *op, uint64_t id) {
        msgpack_packer pk;
        size_t start;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        if (streq(op, "Close"))
                return false;
        if (streq(op, "StartWorkflow")) {
                /* First an answer to someone else's request: the client must drop it. */
                start = frame_begin(sb);
                msgpack_pack_map(&pk, 2);
                msg_pack_kv_uint(&pk, "id", id + 1000);
                msg_pack_kv_str(&pk, "run_id", "wrong");
                frame_end(sb, start);
        }
        start = frame_begin(sb);
        if (streq(op, "StartWorkflow")) {
                const msgpack_object *input = msg_get(req, "input");

                ASSERT_TRUE(msg_str_eq(msg_get(req, "workflow_id"), "order-42"));
                ASSERT_NULL(msg_get(req, "request_id")); /* absent fields are left out */
                ASSERT_EQ(input->type, MSGPACK_OBJECT_BIN);
                ASSERT_EQ(req->via.map.size, 6); /* op, id, workflow_id, type, queue, input */
                msgpack_pack_map(&pk, 3);
                msg_pack_kv_uint(&pk, "id", id);
                msg_pack_kv_str(&pk, "run_id", "run-1");
                msg_pack_kv_bool(&pk, "started", true);
        } else if (streq(op, "SignalWorkflow"))
                pack_error(&pk, id, "not_found", "no workflow 'nope'");
        else if (streq(op, "Oversized"))
                pack_error(&pk, 0, "invalid_argument", "frame too large");
        else if (streq(op, "QueryWorkflow")) {
                msgpack_pack_map(&pk, 2);
                msg_pack_kv_uint(&pk, "id", id);
                pack_payload_str(&pk, "result", "pending");
        } else if (streq(op, "GetResult") && msg_str_eq(msg_get(req, "workflow_id"), "bad")) {
                msgpack_pack_map(&pk, 2); /* "workflow" must be a map */
                msg_pack_kv_uint(&pk, "id", id);
                msg_pack_kv_uint(&pk, "workflow", 3);
        } else if (streq(op, "GetResult")) {
                msgpack_pack_map(&pk, 2);
                msg_pack_kv_uint(&pk, "id", id);
                msg_pack_str(&pk, "workflow");
                msgpack_pack_map(&pk, 3);
                msg_pack_kv_str(&pk, "run_id", "run-1");
                msg_pack_kv_str(&pk, "status", "Failed");
                msg_pack_str(&pk, "failure");
                pack_failure(&pk);
        } else { /* echo the request back, with its id */
                msgpack_pack_object(&pk, *req);
        }
        frame_end(sb, start);
        return true;
}

static void *fake_serve(void *userdata) {
        Fake *f = userdata;
        _cleanup_close_ int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        char buf[65536];
        size_t len = 0;

        ASSERT_OK_ERRNO(fd);
        for (;;) {
                const char *body;
                size_t body_len;
                ssize_t n = frame_peek(buf, len, sizeof(buf), &body, &body_len);
                msgpack_unpacked u;
                msgpack_sbuffer out;
                char op[64];
                bool go_on;

                ASSERT_GE(n, 0);
                if (n == 0) {
                        ssize_t k = recv(fd, buf + len, sizeof(buf) - len, 0);
                        if (k <= 0)
                                return NULL;
                        len += (size_t) k;
                        continue;
                }
                msgpack_unpacked_init(&u);
                ASSERT_OK(msg_decode(body, body_len, &u));
                const msgpack_object *o = ASSERT_NOT_NULL(msg_get(&u.data, "op"));
                snprintf(op, sizeof(op), "%.*s", (int) o->via.str.size, o->via.str.ptr);
                msgpack_sbuffer_init(&out);
                go_on = fake_answer(&out, &u.data, op, msg_get(&u.data, "id")->via.u64);
                if (out.size > 0)
                        ASSERT_OK_ERRNO(send(fd, out.data, out.size, MSG_NOSIGNAL));
                msgpack_sbuffer_destroy(&out);
                msgpack_unpacked_destroy(&u);
                memmove(buf, buf + n, len - (size_t) n);
                len -= (size_t) n;
                if (!go_on)
                        return NULL;
        }
}

static void fake_start(Fake *f) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        strcpy(f->dir, "/tmp/test-client-XXXXXX");
        ASSERT_NOT_NULL(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/io.sock", f->dir);
        strcpy(sa.sun_path, f->path);
        f->listen_fd = ASSERT_OK_ERRNO(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        ASSERT_OK_ERRNO(bind(f->listen_fd, (struct sockaddr *) &sa, sizeof(sa)));
        ASSERT_OK_ERRNO(listen(f->listen_fd, 1));
        ASSERT_EQ(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_stop(Fake *f) {
        ASSERT_EQ(pthread_join(f->thread, NULL), 0);
        safe_close(f->listen_fd);
        ASSERT_OK_ERRNO(unlink(f->path));
        ASSERT_OK_ERRNO(rmdir(f->dir));
}

TEST(socket_path_resolution) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        ASSERT_OK(setenv("DURABLED_SOCKET", "/env/io.sock", 1));
        ASSERT_OK(conn_socket_path("/given/io.sock", &a));
        ASSERT_STREQ(a, "/given/io.sock");
        ASSERT_OK(conn_socket_path(NULL, &b));
        ASSERT_STREQ(b, "/env/io.sock");
        ASSERT_OK(unsetenv("DURABLED_SOCKET"));
        ASSERT_OK(setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1));
        ASSERT_OK(conn_socket_path(NULL, &c));
        ASSERT_STREQ(c,
                     geteuid() == 0 ? "/run/durabled/io.sock" : "/run/user/1000/durabled/io.sock");
}

TEST(connect_errors) {
        dur_client *c = NULL;
        char longpath[200];

        memset(longpath, 'x', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = 0;
        ASSERT_ERROR(dur_client_connect(&c, longpath), -ENAMETOOLONG);
        ASSERT_ERROR(dur_client_connect(&c, "/nonexistent/durabled/io.sock"), -ENOENT);
        ASSERT_ERROR(dur_client_connect(NULL, NULL), -EINVAL);
        ASSERT_NULL(c);
}

TEST(client_against_fake_daemon) {
        _cleanup_free_ char *run_id = NULL, *query_json = NULL, *echo_json = NULL;
        dur_buf *input = ASSERT_NOT_NULL(dur_args("{s:s}", "order_id", "42"));
        dur_buf *request = ASSERT_NOT_NULL(dur_args("{s:s, s:i}", "op", "Echo", "x", 1));
        dur_buf *result = NULL, *answer = NULL;
        dur_start_opts opts = { .workflow_id = "order-42", .task_queue = "order-processing" };
        dur_outcome out = {};
        dur_client *c = NULL;
        Fake f;

        fake_start(&f);
        ASSERT_OK(dur_client_connect(&c, f.path));

        ASSERT_OK(dur_client_start(c, "OrderWorkflow", &opts, input, &run_id));
        ASSERT_STREQ(run_id, "run-1");

        ASSERT_ERROR(dur_client_signal(c, "nope", NULL, "cancel_order", NULL), -ENOENT);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");
        ASSERT_STREQ(dur_client_error_message(c), "no workflow 'nope'");

        ASSERT_OK(dur_client_query(c, "order-42", "", "get_status", NULL, &result));
        query_json = ASSERT_NOT_NULL(dur_buf_to_json(result));
        ASSERT_STREQ(query_json, "\"pending\"");
        ASSERT_NULL(dur_client_error_code(c)); /* reset by the successful call */

        ASSERT_EQ(dur_client_result(c, "order-42", NULL, 0, &out), DUR_FAILED);
        ASSERT_STREQ(out.status, "Failed");
        ASSERT_STREQ(out.run_id, "run-1");
        ASSERT_NULL(out.result);
        ASSERT_STREQ(dur_failure_message(out.failure), "activity failed");
        ASSERT_STREQ(dur_failure_type(out.failure), "");
        ASSERT_EQ(dur_failure_details(out.failure)->type, MSGPACK_OBJECT_STR);
        ASSERT_STREQ(dur_failure_details(out.failure)->via.str.ptr, "more");
        ASSERT_STREQ(dur_failure_type(dur_failure_cause(out.failure)), "PaymentDeclined");
        ASSERT_TRUE(dur_failure_non_retryable(dur_failure_cause(out.failure)));
        ASSERT_NULL(dur_failure_cause(dur_failure_cause(out.failure)));
        dur_outcome_done(&out);

        /* Raw calls: the caller's map gets an "id"; the answer is the whole map. */
        ASSERT_OK(dur_client_call(c, request, &answer));
        echo_json = ASSERT_NOT_NULL(dur_buf_to_json(answer));
        ASSERT_STREQ(echo_json, "{\"op\":\"Echo\",\"id\":5,\"x\":1}");
        dur_buf_free(request);
        request = ASSERT_NOT_NULL(dur_args("{s:i}", "x", 1));
        ASSERT_ERROR(dur_client_call(c, request, &answer), -EINVAL); /* no "op" */
        dur_buf_free(request);

        /* An error answer with id 0 belongs to whoever waits. */
        request = ASSERT_NOT_NULL(dur_args("{s:s}", "op", "Oversized"));
        ASSERT_ERROR(dur_client_call(c, request, &answer), -EINVAL);
        ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        dur_buf_free(request);

        /* An answer that breaks the protocol. */
        ASSERT_ERROR(dur_client_result(c, "bad", NULL, 0, &out), -EBADMSG);
        ASSERT_NULL(out.status);

        /* The daemon goes away. */
        request = ASSERT_NOT_NULL(dur_args("{s:s}", "op", "Close"));
        ASSERT_ERROR(dur_client_call(c, request, &answer), -ECONNRESET);
        dur_buf_free(request);

        fake_stop(&f);
        dur_buf_free(answer);
        dur_buf_free(result);
        dur_buf_free(input);
        dur_client_free(c);
}

TEST(failure_round_trip) {
        _cleanup_(failure_freep) dur_failure *f = NULL, *back = NULL, *copy = NULL;
        msgpack_object details = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 7 };
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        size_t off = 0;

        f = ASSERT_NOT_NULL(failure_new("Outer", false, "outer message"));
        failure_set_cause(f, ASSERT_NOT_NULL(failure_new(NULL, true, NULL)));
        ASSERT_OK(failure_set_details(f, &details));
        ASSERT_OK(failure_set_timeout_type(f, "StartToClose"));

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ASSERT_OK(failure_pack(f, &pk));
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
        back = ASSERT_NOT_NULL(failure_from_object(&u.data));
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);

        copy = ASSERT_NOT_NULL(failure_copy(back));
        ASSERT_STREQ(dur_failure_type(copy), "Outer");
        ASSERT_STREQ(dur_failure_message(copy), "outer message");
        ASSERT_FALSE(dur_failure_non_retryable(copy));
        ASSERT_STREQ(failure_timeout_type(copy), "StartToClose");
        ASSERT_EQ(dur_failure_details(copy)->via.u64, 7);
        ASSERT_STREQ(dur_failure_type(dur_failure_cause(copy)), "");
        ASSERT_STREQ(dur_failure_message(dur_failure_cause(copy)), "");
        ASSERT_TRUE(dur_failure_non_retryable(dur_failure_cause(copy)));
        ASSERT_NULL(dur_failure_details(dur_failure_cause(copy)));
        ASSERT_NULL(failure_from_object(&details)); /* not a map */
        ASSERT_NULL(dur_failure_message(NULL));
}

DEFINE_TEST_MAIN();
