/* Protocol robustness (DESIGN.md §4, doc/protocol.md): a real durabled driven through a raw
 * AF_UNIX socket with frames built by hand. Every hostile or malformed request must get a clear
 * error answer that names the problem, must change nothing, and must not disturb other clients.
 *
 * Each test starts its own daemon and keeps, in a Ctx, the workflow ids it started legitimately.
 * check_serving() runs after every bad input: a fresh connection starts and describes a workflow,
 * then ListWorkflows must show exactly the recorded ids, so that a request that should have been
 * refused but did something shows up as an extra workflow.
 *
 * Waits are bounded by SO_RCVTIMEO/SO_SNDTIMEO set to the harness timeout; nothing sleeps. */

#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <msgpack.h>

#include "tests/lib/daemon.h"

#define MAX_STARTED 256
#define PAYLOAD_MAX (2u << 20)
#define NAME_MAX_LEN 1000

/* ---- packing ---- */

static void pk_str(msgpack_packer *pk, const char *s) {
        size_t n = strlen(s);
        (void) msgpack_pack_str(pk, n);
        (void) msgpack_pack_str_body(pk, s, n);
}

static void pk_kv_str(msgpack_packer *pk, const char *k, const char *v) {
        pk_str(pk, k);
        pk_str(pk, v);
}

static void pk_kv_uint(msgpack_packer *pk, const char *k, uint64_t v) {
        pk_str(pk, k);
        (void) msgpack_pack_uint64(pk, v);
}

static void pk_kv_bin(msgpack_packer *pk, const char *k, const void *p, size_t n) {
        pk_str(pk, k);
        (void) msgpack_pack_bin(pk, n);
        (void) msgpack_pack_bin_body(pk, p, n);
}

/* A request body under construction. */
typedef struct Body {
        msgpack_sbuffer sb;
        msgpack_packer pk;
} Body;

static msgpack_packer *body_init(Body *b) {
        msgpack_sbuffer_init(&b->sb);
        msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
        return &b->pk;
}

static void body_done(Body *b) {
        msgpack_sbuffer_destroy(&b->sb);
}

/* ---- socket I/O ---- */

static void send_all(int fd, const void *p, size_t n) {
        const char *q = p;

        while (n > 0) {
                ssize_t k = send(fd, q, n, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                ASSERT_OK_ERRNO(k);
                q += k;
                n -= (size_t) k;
        }
}

static void send_frame(int fd, const void *body, size_t n) {
        unsigned char h[4] = { n >> 24, n >> 16, n >> 8, n };

        send_all(fd, h, sizeof(h));
        send_all(fd, body, n);
}

static void send_body(int fd, Body *b) {
        send_frame(fd, b->sb.data, b->sb.size);
        body_done(b);
}

/* Reads exactly @n bytes. Returns 0, or -ECONNRESET when the peer closed before the first byte;
 * a timeout or a close in the middle fails the test. */
static int read_exact(int fd, void *p, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = recv(fd, (char *) p + done, n - done, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        test_fail(__FILE__, __LINE__,
                                  "no answer from the daemon within %" PRIu64 " s",
                                  test_timeout_usec() / TEST_USEC_PER_SEC);
                ASSERT_OK_ERRNO(k);
                if (k == 0) {
                        if (done == 0)
                                return -ECONNRESET;
                        test_fail(__FILE__, __LINE__, "connection closed inside a frame");
                }
                done += (size_t) k;
        }
        return 0;
}

/* A connection to the daemon whose reads and writes give up after the harness timeout. */
static int client_connect(TestDaemon *d) {
        uint64_t t = test_timeout_usec();
        struct timeval tv = { .tv_sec = (time_t) (t / TEST_USEC_PER_SEC),
                              .tv_usec = (suseconds_t) (t % TEST_USEC_PER_SEC) };
        int fd = ASSERT_OK(test_daemon_connect(d));

        ASSERT_OK_ERRNO(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
        ASSERT_OK_ERRNO(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)));
        return fd;
}

/* ---- answers ---- */

typedef struct Answer {
        char *body; /* msgpack-c's objects point into it */
        msgpack_unpacked u;
        const msgpack_object *map;
        uint64_t id;
} Answer;

static void answer_done(Answer *a) {
        msgpack_unpacked_destroy(&a->u);
        free(a->body);
        a->body = NULL;
        a->map = NULL;
}

/* The value of @key (nil included), or NULL when absent. */
static const msgpack_object *get(const msgpack_object *map, const char *key) {
        size_t n = strlen(key);

        if (!map || map->type != MSGPACK_OBJECT_MAP)
                return NULL;
        for (uint32_t i = 0; i < map->via.map.size; i++) {
                const msgpack_object *k = &map->via.map.ptr[i].key;
                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
                    memcmp(k->via.str.ptr, key, n) == 0)
                        return &map->via.map.ptr[i].val;
        }
        return NULL;
}

/* Copies the string @o into @buf ("" when @o is not a string). */
static const char *str_of(const msgpack_object *o, char *buf, size_t size) {
        if (!o || o->type != MSGPACK_OBJECT_STR) {
                buf[0] = 0;
                return buf;
        }
        snprintf(buf, size, "%.*s", (int) o->via.str.size, o->via.str.ptr);
        return buf;
}

/* Reads one answer. Returns 0, or -ECONNRESET at EOF (nothing of a frame came). */
static int answer_read(int fd, Answer *a) {
        unsigned char h[4];
        size_t n, off = 0;
        const msgpack_object *id;

        answer_done(a);
        if (read_exact(fd, h, sizeof(h)) < 0)
                return -ECONNRESET;
        n = (size_t) h[0] << 24 | (size_t) h[1] << 16 | (size_t) h[2] << 8 | h[3];
        a->body = ASSERT_NOT_NULL(malloc(MAX(n, 1u)));
        if (read_exact(fd, a->body, n) < 0)
                test_fail(__FILE__, __LINE__, "connection closed inside a frame");
        msgpack_unpacked_init(&a->u);
        ASSERT_EQ(msgpack_unpack_next(&a->u, a->body, n, &off), MSGPACK_UNPACK_SUCCESS);
        ASSERT_EQ(off, n);
        ASSERT_EQ(a->u.data.type, MSGPACK_OBJECT_MAP);
        a->map = &a->u.data;
        id = get(a->map, "id");
        ASSERT_NOT_NULL(id);
        ASSERT_EQ(id->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        a->id = id->via.u64;
        return 0;
}

#define answer_expect(fd, a) ASSERT_OK(answer_read(fd, a))

#define expect_ok(a, id) expect_ok_at(a, id, __FILE__, __LINE__)
static void expect_ok_at(const Answer *a, uint64_t id, const char *file, int line) {
        const msgpack_object *e = get(a->map, "error");
        char m[512];

        if (e)
                test_fail(file, line, "request %" PRIu64 " failed: %s", a->id,
                          str_of(get(e, "message"), m, sizeof(m)));
        if (a->id != id)
                test_fail(file, line, "answer has id %" PRIu64 ", expected %" PRIu64, a->id, id);
}

/* The answer to request @id is the error @code, and its message contains @needle. */
#define expect_error(a, id, code, needle) expect_error_at(a, id, code, needle, __FILE__, __LINE__)
static void expect_error_at(const Answer *a,
                            uint64_t id,
                            const char *code,
                            const char *needle,
                            const char *file,
                            int line) {
        const msgpack_object *e = get(a->map, "error");
        char c[64], m[512];

        if (!e || e->type != MSGPACK_OBJECT_MAP)
                test_fail(file, line, "expected error %s for request %" PRIu64 ", got success",
                          code, id);
        str_of(get(e, "code"), c, sizeof(c));
        str_of(get(e, "message"), m, sizeof(m));
        printf("  answer %" PRIu64 ": %s: %s\n", a->id, c, m);
        if (a->id != id)
                test_fail(file, line, "answer has id %" PRIu64 ", expected %" PRIu64 " (%s: %s)",
                          a->id, id, c, m);
        if (!streq(c, code))
                test_fail(file, line, "expected error code %s, got %s: %s", code, c, m);
        if (needle && !strstr(m, needle))
                test_fail(file, line, "error message \"%s\" does not mention \"%s\"", m, needle);
}

/* ---- requests ---- */

static void send_start(int fd, uint64_t id, const char *wf, const char *queue, const char *rid) {
        Body b;
        msgpack_packer *pk = body_init(&b);

        (void) msgpack_pack_map(pk, rid ? 6 : 5);
        pk_kv_uint(pk, "id", id);
        pk_kv_str(pk, "op", "StartWorkflow");
        pk_kv_str(pk, "workflow_id", wf);
        pk_kv_str(pk, "workflow_type", "ProtoTest");
        pk_kv_str(pk, "task_queue", queue);
        if (rid)
                pk_kv_str(pk, "request_id", rid);
        send_body(fd, &b);
}

static void send_describe(int fd, uint64_t id, const char *wf) {
        Body b;
        msgpack_packer *pk = body_init(&b);

        (void) msgpack_pack_map(pk, 3);
        pk_kv_uint(pk, "id", id);
        pk_kv_str(pk, "op", "DescribeWorkflow");
        pk_kv_str(pk, "workflow_id", wf);
        send_body(fd, &b);
}

static void send_list(int fd, uint64_t id) {
        Body b;
        msgpack_packer *pk = body_init(&b);

        (void) msgpack_pack_map(pk, 3);
        pk_kv_uint(pk, "id", id);
        pk_kv_str(pk, "op", "ListWorkflows");
        pk_kv_uint(pk, "limit", 100000);
        send_body(fd, &b);
}

/* PollWorkflowTask / PollActivityTask; @timeout_usec 0 leaves the default. */
static void
send_poll(int fd, uint64_t id, const char *op, const char *queue, uint64_t timeout_usec) {
        Body b;
        msgpack_packer *pk = body_init(&b);

        (void) msgpack_pack_map(pk, timeout_usec ? 5 : 4);
        pk_kv_uint(pk, "id", id);
        pk_kv_str(pk, "op", op);
        pk_kv_str(pk, "task_queue", queue);
        pk_kv_str(pk, "identity", "test-protocol");
        if (timeout_usec)
                pk_kv_uint(pk, "timeout_usec", timeout_usec);
        send_body(fd, &b);
}

/* A request with only id and op. */
static void send_op(int fd, uint64_t id, const char *op) {
        Body b;
        msgpack_packer *pk = body_init(&b);

        (void) msgpack_pack_map(pk, 2);
        pk_kv_uint(pk, "id", id);
        pk_kv_str(pk, "op", op);
        send_body(fd, &b);
}

/* A request with a task token: CompleteActivityTask, HeartbeatActivity, ... */
static void send_token_op(int fd, uint64_t id, const char *op, const void *token, size_t n) {
        Body b;
        msgpack_packer *pk = body_init(&b);

        (void) msgpack_pack_map(pk, 3);
        pk_kv_uint(pk, "id", id);
        pk_kv_str(pk, "op", op);
        pk_kv_bin(pk, "task_token", token, n);
        send_body(fd, &b);
}

/* ---- the test context ---- */

typedef struct Ctx {
        TestDaemon d;
        char *ids[MAX_STARTED]; /* workflow ids started legitimately */
        size_t n_ids;
        unsigned n_checks;
} Ctx;

static void ctx_done(Ctx *x) {
        test_daemon_free(&x->d);
        for (size_t i = 0; i < x->n_ids; i++)
                free(x->ids[i]);
        x->n_ids = 0;
}

static void ctx_start(Ctx *x, const char *const *args) {
        test_daemon_start(&x->d, &(TestDaemonOpts){ .args = args });
}

static void ctx_add(Ctx *x, const char *wf) {
        ASSERT_LT(x->n_ids, (size_t) MAX_STARTED);
        x->ids[x->n_ids++] = ASSERT_NOT_NULL(strdup(wf));
}

/* Starts @wf on @fd and waits for the answer; records it. Writes the run id to @ret_run_id. */
static void
start_ok(Ctx *x, int fd, const char *wf, const char *queue, char ret_run_id[static 37]) {
        _cleanup_(answer_done) Answer a = {};
        const msgpack_object *started;

        send_start(fd, 1, wf, queue, NULL);
        answer_expect(fd, &a);
        expect_ok(&a, 1);
        started = ASSERT_NOT_NULL(get(a.map, "started"));
        ASSERT_EQ(started->type, MSGPACK_OBJECT_BOOLEAN);
        ASSERT_TRUE(started->via.boolean);
        str_of(get(a.map, "run_id"), ret_run_id, 37);
        ASSERT_EQ(strlen(ret_run_id), 36u);
        ctx_add(x, wf);
}

/* ListWorkflows on @fd shows exactly the recorded workflow ids. */
static void check_list(Ctx *x, int fd, uint64_t id) {
        _cleanup_(answer_done) Answer a = {};
        const msgpack_object *w;
        char buf[NAME_MAX_LEN + 1];

        send_list(fd, id);
        answer_expect(fd, &a);
        expect_ok(&a, id);
        w = ASSERT_NOT_NULL(get(a.map, "workflows"));
        ASSERT_EQ(w->type, MSGPACK_OBJECT_ARRAY);
        ASSERT_EQ(w->via.array.size, x->n_ids);
        for (size_t i = 0; i < x->n_ids; i++) {
                bool found = false;
                for (uint32_t j = 0; j < w->via.array.size && !found; j++)
                        found = streq(
                                str_of(get(&w->via.array.ptr[j], "workflow_id"), buf, sizeof(buf)),
                                x->ids[i]);
                if (!found)
                        test_fail(__FILE__, __LINE__, "ListWorkflows lacks '%s'", x->ids[i]);
        }
}

/* The daemon still serves a new client, and nothing but the recorded workflows exists. */
static void check_serving(Ctx *x) {
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = client_connect(&x->d);
        const msgpack_object *w;
        char wf[32], run_id[37], buf[64];

        snprintf(wf, sizeof(wf), "ok-%u", x->n_checks++);
        start_ok(x, fd, wf, "q-ok", run_id);
        send_describe(fd, 2, wf);
        answer_expect(fd, &a);
        expect_ok(&a, 2);
        w = ASSERT_NOT_NULL(get(a.map, "workflow"));
        ASSERT_STREQ(str_of(get(w, "workflow_id"), buf, sizeof(buf)), wf);
        ASSERT_STREQ(str_of(get(w, "run_id"), buf, sizeof(buf)), run_id);
        ASSERT_STREQ(str_of(get(w, "status"), buf, sizeof(buf)), "Running");
        check_list(x, fd, 3);
}

/* Sends one frame with body @body on a new connection; the answer must be error @code naming
 * @needle, for request @id. The connection must then still work, and so must the daemon. */
static void
bad_frame(Ctx *x, const void *body, size_t n, uint64_t id, const char *code, const char *needle) {
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = client_connect(&x->d);

        send_frame(fd, body, n);
        answer_expect(fd, &a);
        expect_error(&a, id, code, needle);
        check_list(x, fd, 99);
        check_serving(x);
}

static void bad_body(Ctx *x, Body *b, uint64_t id, const char *code, const char *needle) {
        bad_frame(x, b->sb.data, b->sb.size, id, code, needle);
        body_done(b);
}

#define BYTES(...) ((const unsigned char[]){ __VA_ARGS__ })
#define BAD_BYTES(x, id, code, needle, ...) \
        bad_frame(x, BYTES(__VA_ARGS__), sizeof(BYTES(__VA_ARGS__)), id, code, needle)

#define MALFORMED "malformed frame"

/* The start of a StartWorkflow map of @n entries (id 7): id, op and workflow_id "bad". */
static msgpack_packer *start_head(Body *b, size_t n) {
        msgpack_packer *pk = body_init(b);

        (void) msgpack_pack_map(pk, n);
        pk_kv_uint(pk, "id", 7);
        pk_kv_str(pk, "op", "StartWorkflow");
        pk_kv_str(pk, "workflow_id", "bad");
        return pk;
}

/* ---- malformed frames ---- */

TEST(malformed_msgpack) {
        _cleanup_(ctx_done) Ctx x = {};
        Body b;
        msgpack_packer *pk;

        ctx_start(&x, NULL);
        check_serving(&x);

        /* Not msgpack at all. */
        bad_frame(&x, "GET / HTTP/1.1\r\n\r\n", 18, 0, "invalid_argument", MALFORMED);
        /* An empty body. */
        bad_frame(&x, "", 0, 0, "invalid_argument", MALFORMED);
        /* A map of 2 whose second value is a str8 of 50 bytes with 3 present. */
        BAD_BYTES(&x, 0, "invalid_argument", MALFORMED, 0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'p',
                  0xd9, 50, 'S', 't', 'a');
        /* A map header promising 2 entries, only one there. */
        BAD_BYTES(&x, 0, "invalid_argument", MALFORMED, 0x82, 0xa2, 'i', 'd', 0x01);
        /* A map header claiming 2^32-1 entries. */
        BAD_BYTES(&x, 0, "invalid_argument", MALFORMED, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa2, 'i',
                  'd', 0x01);
        BAD_BYTES(&x, 0, "invalid_argument", MALFORMED, 0xdd, 0xff, 0xff, 0xff, 0xff);
        /* An array instead of a map. */
        BAD_BYTES(&x, 0, "invalid_argument", MALFORMED, 0x92, 0xa2, 'i', 'd', 0x01);
        /* 0xc1 (never used) as a value and as the whole body. */
        BAD_BYTES(&x, 0, "invalid_argument", MALFORMED, 0x81, 0xa2, 'i', 'd', 0xc1);
        BAD_BYTES(&x, 0, "invalid_argument", MALFORMED, 0xc1);

        /* A complete, valid StartWorkflow followed by one more byte: refused, nothing started. */
        pk = start_head(&b, 5);
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        (void) msgpack_pack_nil(pk);
        bad_body(&x, &b, 0, "invalid_argument", MALFORMED);

        /* Two maps in one frame. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 0);
        (void) msgpack_pack_map(pk, 0);
        bad_body(&x, &b, 0, "invalid_argument", MALFORMED);
}

/* Builds a StartWorkflow whose extra field "deep" nests @depth arrays. */
static void deep_start(Body *b, unsigned depth) {
        msgpack_packer *pk = start_head(b, 6);

        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        pk_str(pk, "deep");
        for (unsigned i = 0; i < depth; i++)
                (void) msgpack_pack_array(pk, i + 1 < depth ? 1 : 0);
}

TEST(nesting_limit) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = -EBADF;
        Body b;

        ctx_start(&x, NULL);
        /* 33 and far more levels below the root map: refused before anything is done. */
        deep_start(&b, 33);
        bad_body(&x, &b, 0, "invalid_argument", MALFORMED);
        deep_start(&b, 100000);
        bad_body(&x, &b, 0, "invalid_argument", MALFORMED);

        /* Moderate nesting in an unknown field is fine: the workflow starts. */
        fd = client_connect(&x.d);
        deep_start(&b, 8);
        send_body(fd, &b);
        answer_expect(fd, &a);
        expect_ok(&a, 7);
        ctx_add(&x, "bad");
        check_serving(&x);
}

TEST(frame_over_limit) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = -EBADF, other = -EBADF;
        _cleanup_free_ char *input = NULL;
        const unsigned char header[4] = { 0x00, 0x10, 0x00, 0x00 }; /* 1 MiB */
        Body b;
        msgpack_packer *pk;

        ctx_start(&x, STRV("--max-frame-size=65536"));

        /* A connection that stays open while another one misbehaves. */
        other = client_connect(&x.d);
        send_list(other, 1);
        answer_expect(other, &a);
        expect_ok(&a, 1);

        /* Just under the limit is accepted. */
        fd = client_connect(&x.d);
        input = ASSERT_NOT_NULL(calloc(1, 60000));
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 6);
        pk_kv_uint(pk, "id", 2);
        pk_kv_str(pk, "op", "StartWorkflow");
        pk_kv_str(pk, "workflow_id", "near-limit");
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        pk_kv_bin(pk, "input", input, 60000);
        ASSERT_LE(b.sb.size, 65536u);
        send_body(fd, &b);
        answer_expect(fd, &a);
        expect_ok(&a, 2);
        ctx_add(&x, "near-limit");

        /* Only the header of a 1 MiB frame: answered with id 0, then the connection closes.
         * (Sending nothing more keeps the close an orderly EOF rather than a reset.) */
        send_all(fd, header, sizeof(header));
        answer_expect(fd, &a);
        expect_error(&a, 0, "invalid_argument", "frame larger than the limit of 65536 bytes");
        ASSERT_ERROR(answer_read(fd, &a), -ECONNRESET);

        /* The other connection and new ones keep working. */
        check_list(&x, other, 3);
        check_serving(&x);
}

/* ---- request fields ---- */

TEST(id_and_op) {
        _cleanup_(ctx_done) Ctx x = {};
        Body b;
        msgpack_packer *pk;

        ctx_start(&x, NULL);

        /* Missing id. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 2);
        pk_kv_str(pk, "op", "ListWorkflows");
        pk_kv_str(pk, "workflow_id", "x");
        bad_body(&x, &b, 0, "invalid_argument", "\"id\"");
        /* id of the wrong types: a string, a negative integer, a float. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 2);
        pk_kv_str(pk, "id", "5");
        pk_kv_str(pk, "op", "ListWorkflows");
        bad_body(&x, &b, 0, "invalid_argument", "\"id\"");
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 2);
        pk_str(pk, "id");
        (void) msgpack_pack_int64(pk, -5);
        pk_kv_str(pk, "op", "ListWorkflows");
        bad_body(&x, &b, 0, "invalid_argument", "\"id\"");
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 2);
        pk_str(pk, "id");
        (void) msgpack_pack_double(pk, 5.0);
        pk_kv_str(pk, "op", "ListWorkflows");
        bad_body(&x, &b, 0, "invalid_argument", "\"id\"");

        /* Missing op, and op of the wrong type: answered with the request's id. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 1);
        pk_kv_uint(pk, "id", 11);
        bad_body(&x, &b, 11, "invalid_argument", "\"op\"");
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 2);
        pk_kv_uint(pk, "id", 12);
        pk_kv_uint(pk, "op", 3);
        bad_body(&x, &b, 12, "invalid_argument", "\"op\"");

        /* An unknown op, named in the answer. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 2);
        pk_kv_uint(pk, "id", 13);
        pk_kv_str(pk, "op", "FrobnicateWorkflow");
        bad_body(&x, &b, 13, "unimplemented", "FrobnicateWorkflow");
        /* A known op, a NUL and a suffix is not that op. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 5);
        pk_kv_uint(pk, "id", 14);
        pk_str(pk, "op");
        (void) msgpack_pack_str(pk, 17);
        (void) msgpack_pack_str_body(pk, "StartWorkflow\0xyz", 17);
        pk_kv_str(pk, "workflow_id", "nul-op");
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        bad_body(&x, &b, 14, "invalid_argument", "\"op\" must be a string without NUL");
        /* An op name longer than any op. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 2);
        pk_kv_uint(pk, "id", 15);
        pk_kv_str(pk, "op",
                  "StartWorkflowStartWorkflowStartWorkflowStartWorkflowStartWorkflow"
                  "StartWorkflowStartWorkflowStartWorkflowStartWorkflowStartWorkflow");
        bad_body(&x, &b, 15, "unimplemented", "unknown op 'StartWorkflowStartWorkflow");
}

/* A StartWorkflow (id 7, workflow_id "bad") with every field but @skip. */
static void start_without(Body *b, const char *skip) {
        static const char *const keys[] = { "workflow_id", "workflow_type", "task_queue" };
        msgpack_packer *pk = body_init(b);

        (void) msgpack_pack_map(pk, 4);
        pk_kv_uint(pk, "id", 7);
        pk_kv_str(pk, "op", "StartWorkflow");
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (!streq(keys[i], skip))
                        pk_kv_str(pk, keys[i], "bad");
}

TEST(start_workflow_fields) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *long_id = NULL, *payload = NULL;
        char run_id[37];
        Body b;
        msgpack_packer *pk;

        ctx_start(&x, NULL);

        /* Each required field missing in turn. */
        start_without(&b, "workflow_id");
        bad_body(&x, &b, 7, "invalid_argument", "missing field \"workflow_id\"");
        start_without(&b, "workflow_type");
        bad_body(&x, &b, 7, "invalid_argument", "missing field \"workflow_type\"");
        start_without(&b, "task_queue");
        bad_body(&x, &b, 7, "invalid_argument", "missing field \"task_queue\"");

        /* Wrong types. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 5);
        pk_kv_uint(pk, "id", 7);
        pk_kv_str(pk, "op", "StartWorkflow");
        pk_kv_uint(pk, "workflow_id", 42);
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        bad_body(&x, &b, 7, "invalid_argument", "field \"workflow_id\" must be a string");
        pk = start_head(&b, 6);
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        pk_kv_str(pk, "input", "not a bin");
        bad_body(&x, &b, 7, "invalid_argument", "field \"input\" must be a bin");
        pk = start_head(&b, 6);
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        pk_kv_str(pk, "task_timeout_usec", "10s");
        bad_body(&x, &b, 7, "invalid_argument", "\"task_timeout_usec\"");

        /* Empty names. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 5);
        pk_kv_uint(pk, "id", 7);
        pk_kv_str(pk, "op", "StartWorkflow");
        pk_kv_str(pk, "workflow_id", "");
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        bad_body(&x, &b, 7, "invalid_argument", "\"workflow_id\" must not be empty");
        pk = start_head(&b, 5);
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "");
        bad_body(&x, &b, 7, "invalid_argument", "\"task_queue\" must not be empty");

        /* A workflow id of 1001 bytes is refused; 1000 bytes is the limit and is accepted. */
        long_id = ASSERT_NOT_NULL(malloc(NAME_MAX_LEN + 2));
        memset(long_id, 'w', NAME_MAX_LEN + 1);
        long_id[NAME_MAX_LEN + 1] = 0;
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 5);
        pk_kv_uint(pk, "id", 7);
        pk_kv_str(pk, "op", "StartWorkflow");
        pk_kv_str(pk, "workflow_id", long_id);
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        bad_body(&x, &b, 7, "invalid_argument", "\"workflow_id\" is longer than 1000 bytes");
        long_id[NAME_MAX_LEN] = 0;
        fd = client_connect(&x.d);
        start_ok(&x, fd, long_id, "q", run_id);

        /* A string with an embedded NUL byte. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 5);
        pk_kv_uint(pk, "id", 7);
        pk_kv_str(pk, "op", "StartWorkflow");
        pk_str(pk, "workflow_id");
        (void) msgpack_pack_str(pk, 3);
        (void) msgpack_pack_str_body(pk, "a\0b", 3);
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        bad_body(&x, &b, 7, "invalid_argument", "\"workflow_id\" must not contain NUL bytes");

        /* A payload one byte over 2 MiB (the frame limit is 4 MiB); exactly 2 MiB is accepted. */
        payload = ASSERT_NOT_NULL(calloc(1, PAYLOAD_MAX + 1));
        pk = start_head(&b, 6);
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        pk_kv_bin(pk, "input", payload, PAYLOAD_MAX + 1);
        bad_body(&x, &b, 7, "resource_exhausted",
                 "\"input\" is larger than the limit of 2097152 bytes");
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 6);
        pk_kv_uint(pk, "id", 8);
        pk_kv_str(pk, "op", "StartWorkflow");
        pk_kv_str(pk, "workflow_id", "big-input");
        pk_kv_str(pk, "workflow_type", "T");
        pk_kv_str(pk, "task_queue", "q");
        pk_kv_bin(pk, "input", payload, PAYLOAD_MAX);
        send_body(fd, &b);
        answer_expect(fd, &a);
        expect_ok(&a, 8);
        ctx_add(&x, "big-input");
        check_serving(&x);
}

TEST(start_workflow_request_id) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = -EBADF;
        char run_id[37], buf[64];
        const msgpack_object *o;

        ctx_start(&x, NULL);
        fd = client_connect(&x.d);

        send_start(fd, 1, "idem", "q", "req-1");
        answer_expect(fd, &a);
        expect_ok(&a, 1);
        str_of(get(a.map, "run_id"), run_id, sizeof(run_id));
        ASSERT_EQ(strlen(run_id), 36u);
        o = ASSERT_NOT_NULL(get(a.map, "started"));
        ASSERT_TRUE(o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean);
        ctx_add(&x, "idem");

        /* The same request again (a client retrying): the same run, not started again. */
        send_start(fd, 2, "idem", "q", "req-1");
        answer_expect(fd, &a);
        expect_ok(&a, 2);
        ASSERT_STREQ(str_of(get(a.map, "run_id"), buf, sizeof(buf)), run_id);
        o = ASSERT_NOT_NULL(get(a.map, "started"));
        ASSERT_TRUE(o->type == MSGPACK_OBJECT_BOOLEAN && !o->via.boolean);

        /* Without a request id, or with another one: already started. */
        send_start(fd, 3, "idem", "q", NULL);
        answer_expect(fd, &a);
        expect_error(&a, 3, "already_started", "idem");
        send_start(fd, 4, "idem", "q", "req-2");
        answer_expect(fd, &a);
        expect_error(&a, 4, "already_started", "idem");
        check_serving(&x);
}

/* The value of the unsigned integer @key of GetStats' answer. */
static uint64_t stat_of(const Answer *a, const char *key) {
        const msgpack_object *o = ASSERT_NOT_NULL(get(a->map, key));

        ASSERT_EQ(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        return o->via.u64;
}

/* GetStats counts requests, and commits with the WAL frames they wrote; a read writes nothing. */
TEST(get_stats) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = -EBADF;
        uint64_t requests, commits, frames;

        ctx_start(&x, NULL);
        fd = client_connect(&x.d);
        send_op(fd, 1, "GetStats");
        answer_expect(fd, &a);
        expect_ok(&a, 1);
        requests = stat_of(&a, "requests");
        commits = stat_of(&a, "commits");
        frames = stat_of(&a, "wal_frames");
        ASSERT_GE(requests, 1);
        ASSERT_GE(stat_of(&a, "connections"), 1);
        (void) stat_of(&a, "checkpoints");

        send_describe(fd, 2, "nobody"); /* a read (not_found): no commit */
        answer_expect(fd, &a);
        send_op(fd, 3, "GetStats");
        answer_expect(fd, &a);
        expect_ok(&a, 3);
        ASSERT_EQ(stat_of(&a, "requests"), requests + 2);
        ASSERT_EQ(stat_of(&a, "commits"), commits);
        ASSERT_EQ(stat_of(&a, "wal_frames"), frames);

        send_start(fd, 4, "counted", "q", NULL);
        answer_expect(fd, &a);
        expect_ok(&a, 4);
        ctx_add(&x, "counted");
        send_op(fd, 5, "GetStats");
        answer_expect(fd, &a);
        expect_ok(&a, 5);
        ASSERT_EQ(stat_of(&a, "commits"), commits + 1);
        ASSERT_GT(stat_of(&a, "wal_frames"), frames);
        check_serving(&x);
}

/* ---- worker operations ---- */

/* Copies the task_token of the answer's task into @buf; returns its size. */
static size_t task_token(const Answer *a, char *buf, size_t size) {
        const msgpack_object *t = ASSERT_NOT_NULL(get(a->map, "task"));
        const msgpack_object *tok;

        ASSERT_EQ(t->type, MSGPACK_OBJECT_MAP);
        tok = ASSERT_NOT_NULL(get(t, "task_token"));
        ASSERT_EQ(tok->type, MSGPACK_OBJECT_BIN);
        ASSERT_LE(tok->via.bin.size, size);
        memcpy(buf, tok->via.bin.ptr, tok->via.bin.size);
        return tok->via.bin.size;
}

/* CompleteWorkflowTask scheduling one activity on queue "q-act". */
static void send_complete_wft(int fd, uint64_t id, const void *token, size_t n) {
        Body b;
        msgpack_packer *pk = body_init(&b);

        (void) msgpack_pack_map(pk, 4);
        pk_kv_uint(pk, "id", id);
        pk_kv_str(pk, "op", "CompleteWorkflowTask");
        pk_kv_bin(pk, "task_token", token, n);
        pk_str(pk, "commands");
        (void) msgpack_pack_array(pk, 1);
        (void) msgpack_pack_map(pk, 2);
        pk_kv_str(pk, "command_type", "ScheduleActivityTask");
        pk_str(pk, "attributes");
        (void) msgpack_pack_map(pk, 4);
        pk_kv_str(pk, "activity_id", "a1");
        pk_kv_str(pk, "activity_type", "A");
        pk_kv_str(pk, "task_queue", "q-act");
        pk_kv_uint(pk, "start_to_close_usec", 600 * TEST_USEC_PER_SEC);
        send_body(fd, &b);
}

TEST(worker_tokens) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = -EBADF;
        char run_id[37], wtok[256], atok[256];
        size_t wn, an;
        Body b;
        msgpack_packer *pk;

        ctx_start(&x, NULL);
        fd = client_connect(&x.d);

        /* Garbage tokens: invalid_argument naming the field. */
        send_complete_wft(fd, 1, "garbage", 7);
        answer_expect(fd, &a);
        expect_error(&a, 1, "invalid_argument", "task_token");
        send_token_op(fd, 2, "CompleteActivityTask", "\0\0\0", 3);
        answer_expect(fd, &a);
        expect_error(&a, 2, "invalid_argument", "task_token");
        send_token_op(fd, 3, "HeartbeatActivity", "", 0);
        answer_expect(fd, &a);
        expect_error(&a, 3, "invalid_argument", "task_token");

        /* A real workflow task, completed once; the same token again is stale. */
        start_ok(&x, fd, "tokens", "q-wf", run_id);
        send_poll(fd, 4, "PollWorkflowTask", "q-wf", 0);
        answer_expect(fd, &a);
        expect_ok(&a, 4);
        wn = task_token(&a, wtok, sizeof(wtok));
        send_complete_wft(fd, 5, wtok, wn);
        answer_expect(fd, &a);
        expect_ok(&a, 5);
        send_complete_wft(fd, 6, wtok, wn);
        answer_expect(fd, &a);
        expect_error(&a, 6, "failed_precondition", "no longer in flight");

        /* The activity it scheduled, completed once; its token is then not found, for
         * completion and heartbeat alike. */
        send_poll(fd, 7, "PollActivityTask", "q-act", 0);
        answer_expect(fd, &a);
        expect_ok(&a, 7);
        an = task_token(&a, atok, sizeof(atok));
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 4);
        pk_kv_uint(pk, "id", 8);
        pk_kv_str(pk, "op", "CompleteActivityTask");
        pk_kv_bin(pk, "task_token", atok, an);
        pk_kv_bin(pk, "result", "\xc0", 1);
        send_body(fd, &b);
        answer_expect(fd, &a);
        expect_ok(&a, 8);
        send_token_op(fd, 9, "CompleteActivityTask", atok, an);
        answer_expect(fd, &a);
        expect_error(&a, 9, "not_found", "activity task not found");
        send_token_op(fd, 10, "HeartbeatActivity", atok, an);
        answer_expect(fd, &a);
        expect_error(&a, 10, "not_found", "activity task not found");
        /* A workflow token where an activity token belongs, and the other way round. */
        send_token_op(fd, 11, "HeartbeatActivity", wtok, wn);
        answer_expect(fd, &a);
        expect_error(&a, 11, "invalid_argument", "task_token");
        send_complete_wft(fd, 12, atok, an);
        answer_expect(fd, &a);
        expect_error(&a, 12, "invalid_argument", "task_token");

        /* An answer to a query nobody asked. */
        pk = body_init(&b);
        (void) msgpack_pack_map(pk, 3);
        pk_kv_uint(pk, "id", 13);
        pk_kv_str(pk, "op", "RespondQueryTask");
        pk_kv_uint(pk, "query_id", 987654);
        send_body(fd, &b);
        answer_expect(fd, &a);
        expect_error(&a, 13, "not_found", "query 987654");
        check_serving(&x);
}

/* ---- concurrency on one connection and many ---- */

TEST(many_in_flight) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = -EBADF;
        bool seen[100] = {};
        char run_id[37], buf[64];

        ctx_start(&x, NULL);
        fd = client_connect(&x.d);
        start_ok(&x, fd, "inflight", "q", run_id);

        /* 100 requests back to back, then the 100 answers: each carries its own id and the
         * answer to its own request. */
        for (unsigned i = 0; i < 100; i++) {
                if (i % 3 == 0)
                        send_describe(fd, 1000 + i, "inflight");
                else if (i % 3 == 1)
                        send_list(fd, 1000 + i);
                else {
                        snprintf(buf, sizeof(buf), "nope-%u", i);
                        send_describe(fd, 1000 + i, buf);
                }
        }
        for (unsigned k = 0; k < 100; k++) {
                unsigned i;
                const msgpack_object *o;

                answer_expect(fd, &a);
                ASSERT_GE(a.id, 1000u);
                ASSERT_LT(a.id, 1100u);
                i = (unsigned) (a.id - 1000);
                ASSERT_FALSE(seen[i]);
                seen[i] = true;
                if (i % 3 == 0) {
                        expect_ok(&a, a.id);
                        o = ASSERT_NOT_NULL(get(a.map, "workflow"));
                        ASSERT_STREQ(str_of(get(o, "run_id"), buf, sizeof(buf)), run_id);
                } else if (i % 3 == 1) {
                        expect_ok(&a, a.id);
                        o = ASSERT_NOT_NULL(get(a.map, "workflows"));
                        ASSERT_EQ(o->via.array.size, 1u);
                } else {
                        char needle[32];
                        snprintf(needle, sizeof(needle), "'nope-%u'", i);
                        expect_error(&a, a.id, "not_found", needle);
                }
        }
        check_serving(&x);
}

TEST(long_polls) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        _cleanup_close_ int fd = -EBADF, w1 = -EBADF, w2 = -EBADF;
        const msgpack_object *t;
        char run_id[37], buf[64];

        ctx_start(&x, NULL);
        fd = client_connect(&x.d);

        /* A poll on an empty queue times out with task nil. */
        send_poll(fd, 1, "PollWorkflowTask", "q-empty", 200000);
        answer_expect(fd, &a);
        expect_ok(&a, 1);
        t = ASSERT_NOT_NULL(get(a.map, "task"));
        ASSERT_EQ(t->type, MSGPACK_OBJECT_NIL);

        /* ShutdownWorker answers a parked poll (its own timeout is 10 minutes) with task nil,
         * then answers itself; later polls get task nil at once. */
        w1 = client_connect(&x.d);
        send_poll(w1, 1, "PollWorkflowTask", "q-empty", 600 * TEST_USEC_PER_SEC);
        send_poll(w1, 2, "PollActivityTask", "q-empty", 600 * TEST_USEC_PER_SEC);
        send_op(w1, 3, "ShutdownWorker");
        for (unsigned k = 0; k < 3; k++) {
                answer_expect(w1, &a);
                expect_ok(&a, a.id);
                ASSERT_TRUE(a.id >= 1 && a.id <= 3);
                if (a.id < 3) {
                        t = ASSERT_NOT_NULL(get(a.map, "task"));
                        ASSERT_EQ(t->type, MSGPACK_OBJECT_NIL);
                }
        }
        send_poll(w1, 4, "PollWorkflowTask", "q-empty", 600 * TEST_USEC_PER_SEC);
        answer_expect(w1, &a);
        expect_ok(&a, 4);
        t = ASSERT_NOT_NULL(get(a.map, "task"));
        ASSERT_EQ(t->type, MSGPACK_OBJECT_NIL);

        /* A connection that closes with a parked poll frees it: the next task of that queue goes
         * to a live poller. The ListWorkflows answers prove each poll was parked (requests on a
         * connection are handled in order). */
        w1 = safe_close(w1);
        w1 = client_connect(&x.d);
        send_poll(w1, 1, "PollWorkflowTask", "q-close", 600 * TEST_USEC_PER_SEC);
        check_list(&x, w1, 2);
        w1 = safe_close(w1);
        w2 = client_connect(&x.d);
        send_poll(w2, 1, "PollWorkflowTask", "q-close", 600 * TEST_USEC_PER_SEC);
        check_list(&x, w2, 2);
        start_ok(&x, fd, "after-close", "q-close", run_id);
        answer_expect(w2, &a);
        expect_ok(&a, 1);
        t = ASSERT_NOT_NULL(get(a.map, "task"));
        ASSERT_EQ(t->type, MSGPACK_OBJECT_MAP);
        ASSERT_STREQ(str_of(get(t, "workflow_id"), buf, sizeof(buf)), "after-close");
        ASSERT_STREQ(str_of(get(t, "run_id"), buf, sizeof(buf)), run_id);
        t = ASSERT_NOT_NULL(get(t, "attempt"));
        ASSERT_EQ(t->via.u64, 1u);
        check_serving(&x);
}

TEST(connection_churn) {
        _cleanup_(ctx_done) Ctx x = {};
        _cleanup_(answer_done) Answer a = {};
        int fds[50];

        ctx_start(&x, NULL);

        /* 200 connections that come and go, some in the middle of a frame. */
        for (unsigned i = 0; i < 200; i++) {
                _cleanup_close_ int fd = client_connect(&x.d);
                if (i % 4 == 1)
                        send_all(fd, BYTES(0x00, 0x00), 2);
                else if (i % 4 == 2)
                        send_all(fd, BYTES(0x00, 0x00, 0x00, 0x10, 0x82), 5);
                else if (i % 4 == 3)
                        send_describe(fd, 1, "nothing"); /* the answer is never read */
        }
        check_serving(&x);

        /* 50 connections at once, each starting a workflow before any answer is read. */
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++) {
                char wf[32];
                fds[i] = client_connect(&x.d);
                snprintf(wf, sizeof(wf), "conc-%u", i);
                send_start(fds[i], 100 + i, wf, "q", NULL);
        }
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++) {
                char wf[32];
                answer_expect(fds[i], &a);
                expect_ok(&a, 100 + i);
                snprintf(wf, sizeof(wf), "conc-%u", i);
                ctx_add(&x, wf);
        }
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++)
                check_list(&x, fds[i], 200 + i);
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++)
                safe_close(fds[i]);
        check_serving(&x);
}

DEFINE_TEST_MAIN();
