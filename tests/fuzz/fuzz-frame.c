/* Fuzzes what a client's bytes meet first (DESIGN.md §4): frame_peek() over a stream of frames,
 * msg_decode() on each body, then msg_parse() with a field table shaped like StartWorkflow's
 * (every MsgType, with and without length limits). Besides "no crash, no leak", it checks:
 *   - frame_peek() never reports a frame larger than the limit or than the bytes given;
 *   - a decoded value is a map within MSG_DEPTH_MAX, and re-encoding it gives bytes that decode
 *     again to the same encoding (the validator accepts everything msgpack-c writes);
 *   - msg_parse() either fills the fields within their limits, pointing into the body, or
 *     fails with -EINVAL and a sentence naming a field;
 *   - msg_map_add_uint() on a decoded map gives a map that decodes, with one more entry.
 * Allocation stays proportional to the input: the validator refuses counts the bytes cannot hold
 * before msgpack-c allocates (run libFuzzer with -malloc_limit_mb to enforce it). */

#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "tests/lib/fuzz.h"

#define FRAME_MAX (64u * 1024)

typedef struct Fields {
        const char *workflow_id;
        const char *workflow_type;
        const char *request_id;
        MsgBin input;
        MsgBin token;
        uint64_t timeout_usec;
        bool wait;
        double coefficient;
        const msgpack_object *commands;
        const msgpack_object *failure;
        const msgpack_object *any;
} Fields;

static const MsgField fields[] = {
        { "workflow_id", MSG_STR, offsetof(Fields, workflow_id), true, 1000 },
        { "workflow_type", MSG_STR, offsetof(Fields, workflow_type), false, 16 },
        { "request_id", MSG_STR, offsetof(Fields, request_id), false, 0 },
        { "input", MSG_BIN, offsetof(Fields, input), false, 2u << 20 },
        { "task_token", MSG_BIN, offsetof(Fields, token), false, 8 },
        { "timeout_usec", MSG_UINT, offsetof(Fields, timeout_usec) },
        { "wait", MSG_BOOL, offsetof(Fields, wait) },
        { "backoff_coefficient", MSG_DOUBLE, offsetof(Fields, coefficient) },
        { "commands", MSG_ARRAY, offsetof(Fields, commands) },
        { "failure", MSG_MAP, offsetof(Fields, failure) },
        { "details", MSG_ANY, offsetof(Fields, any) },
        {},
};

static bool inside(const char *p, size_t n, const char *body, size_t len) {
        return n == 0 || (p >= body && n <= len && (size_t) (p - body) <= len - n);
}

static void check_str(const char *s, size_t max) {
        if (!s)
                return;
        assert(max == 0 || strlen(s) <= max);
}

static void check_parse(const msgpack_unpacked *u, const char *body, size_t len) {
        Fields f = {};
        char err[256] = "";
        int r;

        r = msg_parse(&u->data, u->zone, fields, &f, err, sizeof(err));
        if (r < 0) {
                /* -ENOBUFS: a bin past its max_len (a payload limit). */
                assert(r == -EINVAL || r == -ENOBUFS);
                assert(strstr(err, "field \""));
                return;
        }
        assert(f.workflow_id);
        check_str(f.workflow_id, 1000);
        check_str(f.workflow_type, 16);
        check_str(f.request_id, 0);
        assert(f.input.size <= (2u << 20) && inside(f.input.ptr, f.input.size, body, len));
        assert(f.token.size <= 8 && inside(f.token.ptr, f.token.size, body, len));
        assert(!f.commands || f.commands->type == MSGPACK_OBJECT_ARRAY);
        assert(!f.failure || f.failure->type == MSGPACK_OBJECT_MAP);
        assert(!f.any || f.any->type != MSGPACK_OBJECT_NIL);
}

/* Packs @o into a new @sb (to destroy). */
static void repack(const msgpack_object *o, msgpack_sbuffer *sb) {
        msgpack_packer pk;

        msgpack_sbuffer_init(sb);
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        (void) msgpack_pack_object(&pk, *o);
}

static void check_roundtrip(const msgpack_unpacked *u) {
        msgpack_sbuffer a, b;
        msgpack_unpacked v;

        repack(&u->data, &a);
        msgpack_unpacked_init(&v);
        assert(msg_decode(a.data, a.size, &v) == 0);
        repack(&v.data, &b);
        assert(a.size == b.size && memcmp(a.data, b.data, a.size) == 0);
        msgpack_unpacked_destroy(&v);
        msgpack_sbuffer_destroy(&a);
        msgpack_sbuffer_destroy(&b);
}

static void check_map_add(const msgpack_unpacked *u, const char *body, size_t len) {
        MsgBuf out;
        msgpack_unpacked v;

        msgbuf_init(&out);
        if (msg_map_add_uint(&out, body, len, "id", 7) == 0) {
                msgpack_unpacked_init(&v);
                /* One more nesting-free entry: decodes whenever the map did. */
                assert(msg_decode(out.sb.data, out.sb.size, &v) == 0);
                assert(v.data.type == MSGPACK_OBJECT_MAP);
                assert(v.data.via.map.size == u->data.via.map.size + 1);
                msgpack_unpacked_destroy(&v);
        }
        msgbuf_done(&out);
}

static void decode_body(const char *body, size_t len) {
        msgpack_unpacked u;
        const msgpack_object *id;

        msgpack_unpacked_init(&u);
        if (msg_decode(body, len, &u) < 0) {
                msgpack_unpacked_destroy(&u);
                return;
        }
        assert(msg_validate(body, len) == 0);
        assert(u.data.type == MSGPACK_OBJECT_MAP);
        id = msg_get(&u.data, "id");
        (void) msg_str_eq(msg_get(&u.data, "op"), "StartWorkflow");
        assert(!id || id->type != MSGPACK_OBJECT_NIL);
        check_parse(&u, body, len);
        check_roundtrip(&u);
        check_map_add(&u, body, len);
        msgpack_unpacked_destroy(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;
        size_t off = 0;

        /* The input as a stream of frames, the way conn.c reads a connection. */
        while (off < size) {
                const char *body = NULL;
                size_t len = 0;
                ssize_t n = frame_peek(buf + off, size - off, FRAME_MAX, &body, &len);

                if (n <= 0) {
                        assert(n == 0 || n == -E2BIG);
                        break;
                }
                assert((size_t) n == len + FRAME_HEADER_SIZE && len <= FRAME_MAX);
                assert(body == buf + off + FRAME_HEADER_SIZE && (size_t) n <= size - off);
                decode_body(body, len);
                off += (size_t) n;
        }
        /* And as one body, so that mutations need not keep a header consistent. */
        decode_body(buf, size);
        return 0;
}
