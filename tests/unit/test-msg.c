/* Tests of proto/msg.c (safe msgpack decoding, request field tables) and proto/frame.c.
 * The decoder faces the network: most cases here are hostile inputs that must be refused before
 * anything is allocated (DESIGN.md §4). */

#include <stddef.h>

#include <msgpack.h>

#include "proto/event.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "tests/lib/test.h"

#define BYTES(...) ((const char[]){ __VA_ARGS__ })
#define VALIDATE(...) msg_validate(BYTES(__VA_ARGS__), sizeof(BYTES(__VA_ARGS__)))

TEST(validate_accepts_well_formed_values) {
        ASSERT_OK(VALIDATE((char) 0xc0));                           /* nil */
        ASSERT_OK(VALIDATE((char) 0x81, (char) 0xa1, 'k', 0x01));   /* {"k": 1} */
        ASSERT_OK(VALIDATE((char) 0x92, (char) 0xc3, (char) 0xff)); /* [true, -1] */
        ASSERT_OK(VALIDATE((char) 0xdc, 0x00, 0x01, (char) 0xc2));  /* array16 [false] */
        ASSERT_OK(VALIDATE((char) 0xd9, 0x02, 'a', 'b'));           /* str8 */
        ASSERT_OK(VALIDATE((char) 0xc4, 0x00));                     /* empty bin8 */
        ASSERT_OK(VALIDATE((char) 0xcb, 0, 0, 0, 0, 0, 0, 0, 0));   /* float64 */
        ASSERT_OK(VALIDATE((char) 0xd4, 0x01, 0x02));               /* fixext1 */
        ASSERT_OK(VALIDATE((char) 0xc7, 0x01, 0x05, 0x00));         /* ext8 */
        ASSERT_OK(VALIDATE((char) 0x90));                           /* [] */
        ASSERT_OK(VALIDATE((char) 0x80));                           /* {} */
}

TEST(validate_rejects_hostile_counts) {
        /* Headers that claim more elements than the bytes left could hold. */
        ASSERT_ERROR(VALIDATE((char) 0xdd, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff),
                     -EBADMSG); /* array32 of 2^32-1, nothing after it */
        ASSERT_ERROR(VALIDATE((char) 0xdf, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff),
                     -EBADMSG); /* map32 */
        ASSERT_ERROR(VALIDATE((char) 0xdc, (char) 0xff, (char) 0xff, (char) 0xc0),
                     -EBADMSG); /* array16 with one element present */
        ASSERT_ERROR(VALIDATE((char) 0x9f, (char) 0xc0, (char) 0xc0), -EBADMSG);
        ASSERT_ERROR(VALIDATE((char) 0x8f, (char) 0xc0), -EBADMSG);
        /* Lengths of strings and bins past the end. */
        ASSERT_ERROR(VALIDATE((char) 0xc6, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff),
                     -EBADMSG); /* bin32 */
        ASSERT_ERROR(VALIDATE((char) 0xdb, 0x7f, (char) 0xff, (char) 0xff, (char) 0xff, 'x'),
                     -EBADMSG); /* str32 */
        ASSERT_ERROR(
                VALIDATE((char) 0xc9, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff, 0x01),
                -EBADMSG); /* ext32 */
}

TEST(validate_rejects_truncated_values) {
        ASSERT_ERROR(msg_validate(NULL, 0), -EBADMSG);
        ASSERT_ERROR(VALIDATE((char) 0xd9, 0x05, 'a', 'b'), -EBADMSG);   /* str8 of 5, 2 here */
        ASSERT_ERROR(VALIDATE((char) 0xa3, 'a'), -EBADMSG);              /* fixstr */
        ASSERT_ERROR(VALIDATE((char) 0xcd, 0x01), -EBADMSG);             /* uint16, 1 byte */
        ASSERT_ERROR(VALIDATE((char) 0xcb, 0, 0, 0), -EBADMSG);          /* float64 */
        ASSERT_ERROR(VALIDATE((char) 0xde, 0x00), -EBADMSG);             /* map16 header */
        ASSERT_ERROR(VALIDATE((char) 0xd9), -EBADMSG);                   /* str8 header */
        ASSERT_ERROR(VALIDATE((char) 0x81, (char) 0xa1, 'k'), -EBADMSG); /* value missing */
        ASSERT_ERROR(VALIDATE((char) 0xd8, 0x01, 0x02), -EBADMSG);       /* fixext16 */
}

TEST(validate_rejects_trailing_bytes_and_0xc1) {
        ASSERT_ERROR(VALIDATE((char) 0xc0, (char) 0xc0), -EBADMSG);
        ASSERT_ERROR(VALIDATE((char) 0x80, 0x00), -EBADMSG);
        ASSERT_ERROR(VALIDATE((char) 0xc1), -EBADMSG);
        ASSERT_ERROR(VALIDATE((char) 0x91, (char) 0xc1), -EBADMSG);
        ASSERT_ERROR(VALIDATE((char) 0x81, (char) 0xc1, (char) 0xc0), -EBADMSG);
}

/* A msgpack map built with msgpack-c, for the decoder and msg_parse(). */
typedef struct Built {
        msgpack_sbuffer sb;
        msgpack_packer pk;
} Built;

static void built_init(Built *b) {
        msgpack_sbuffer_init(&b->sb);
        msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void built_done(Built *b) {
        msgpack_sbuffer_destroy(&b->sb);
}

TEST(decode_wants_one_map) {
        msgpack_unpacked u;

        msgpack_unpacked_init(&u);
        ASSERT_ERROR(msg_decode(BYTES((char) 0x90), 1, &u), -EBADMSG); /* an array */
        ASSERT_ERROR(msg_decode(BYTES((char) 0xc0), 1, &u), -EBADMSG); /* nil */
        ASSERT_ERROR(msg_decode(BYTES((char) 0x80, (char) 0x80), 2, &u), -EBADMSG);
        ASSERT_OK(msg_decode(BYTES((char) 0x80), 1, &u));
        ASSERT_EQ(u.data.type, MSGPACK_OBJECT_MAP);
        msgpack_unpacked_destroy(&u);
}

TEST(decode_bounds_nesting) {
        char deep[MSG_DEPTH_MAX + 3];
        msgpack_unpacked u;

        /* {"k": [[[...nil...]]]} nested deeper than MSG_DEPTH_MAX. */
        deep[0] = (char) 0x81;
        deep[1] = (char) 0xa0; /* key "" */
        for (size_t i = 2; i < sizeof(deep) - 1; i++)
                deep[i] = (char) 0x91;
        deep[sizeof(deep) - 1] = (char) 0xc0;
        ASSERT_OK(msg_validate(deep, sizeof(deep))); /* well-formed ... */
        msgpack_unpacked_init(&u);
        ASSERT_ERROR(msg_decode(deep, sizeof(deep), &u), -EBADMSG); /* ... but too deep */
        msgpack_unpacked_destroy(&u);

        /* One array less: the nil sits at depth MSG_DEPTH_MAX exactly, and a sibling after the
         * nested arrays is read at the depth of the map's value again. */
        {
                char ok[2 + (MSG_DEPTH_MAX - 1) + 1 + 3];
                size_t n = 0;

                ok[n++] = (char) 0x82;
                ok[n++] = (char) 0xa0;
                for (unsigned i = 0; i < MSG_DEPTH_MAX - 1; i++)
                        ok[n++] = (char) 0x91;
                ok[n++] = (char) 0xc0;
                ok[n++] = (char) 0xa1; /* key "a" */
                ok[n++] = 'a';
                ASSERT_EQ(n, sizeof(ok) - 1);
                ok[n++] = (char) 0x90; /* value [] */
                msgpack_unpacked_init(&u);
                ASSERT_OK(msg_decode(ok, n, &u));
                ASSERT_EQ(u.data.via.map.size, 2u);
                msgpack_unpacked_destroy(&u);
        }
}

/* Every event type's name maps back to it (proto/event.c's table); other names map to none. */
TEST(event_names_round_trip) {
        for (int t = 1; t < _EVENT_TYPE_MAX; t++) {
                const char *name = event_type_to_string((EventType) t);

                if (name)
                        ASSERT_EQ(event_type_from_string(name), (EventType) t);
        }
        ASSERT_EQ(event_type_from_string("WorkflowExecutionStarte"), _EVENT_TYPE_INVALID);
        ASSERT_EQ(event_type_from_string("workflowExecutionStarted"), _EVENT_TYPE_INVALID);
        ASSERT_EQ(event_type_from_string(""), _EVENT_TYPE_INVALID);
}

typedef struct StartRequest {
        const char *workflow_id;
        uint64_t timeout;
        bool wait;
        double ratio;
        MsgBin input;
        const msgpack_object *opts;
        const msgpack_object *list;
} StartRequest;

static const MsgField start_fields[] = {
        { "workflow_id", MSG_STR, offsetof(StartRequest, workflow_id), true, 16 },
        { "timeout_usec", MSG_UINT, offsetof(StartRequest, timeout) },
        { "wait", MSG_BOOL, offsetof(StartRequest, wait) },
        { "ratio", MSG_DOUBLE, offsetof(StartRequest, ratio) },
        { "input", MSG_BIN, offsetof(StartRequest, input), false, 4 },
        { "opts", MSG_MAP, offsetof(StartRequest, opts) },
        { "list", MSG_ARRAY, offsetof(StartRequest, list) },
        {},
};

/* Decodes @b and parses it with start_fields into @out; returns msg_parse()'s result. */
static int parse_built(Built *b, StartRequest *out, char *err, size_t errlen) {
        msgpack_unpacked u;
        int r;

        msgpack_unpacked_init(&u);
        ASSERT_OK(msg_decode(b->sb.data, b->sb.size, &u));
        r = msg_parse(&u.data, u.zone, start_fields, out, err, errlen);
        /* The string copies live in the zone freed below, so the one string is checked here. */
        if (r >= 0 && out->workflow_id) {
                ASSERT_STREQ(out->workflow_id, "order-42");
                out->workflow_id = NULL;
        }
        msgpack_unpacked_destroy(&u);
        return r;
}

TEST(parse_reads_fields) {
        StartRequest req = { .timeout = 99 };
        char err[128] = "";
        Built b;

        built_init(&b);
        msgpack_pack_map(&b.pk, 6);
        msg_pack_kv_str(&b.pk, "workflow_id", "order-42");
        msg_pack_kv_bool(&b.pk, "wait", true);
        msg_pack_str(&b.pk, "ratio");
        msgpack_pack_uint8(&b.pk, 3); /* integers are accepted as doubles */
        msg_pack_kv_bin(&b.pk, "input", "ab", 2);
        msg_pack_str(&b.pk, "opts");
        msgpack_pack_nil(&b.pk); /* nil counts as absent */
        msg_pack_str(&b.pk, "list");
        msgpack_pack_array(&b.pk, 0);
        ASSERT_OK(parse_built(&b, &req, err, sizeof(err)));
        ASSERT_EQ(req.timeout, 99); /* absent: untouched */
        ASSERT_TRUE(req.wait);
        ASSERT_TRUE(req.ratio == 3.0);
        ASSERT_EQ(req.input.size, 2);
        ASSERT_NULL(req.opts);
        ASSERT_STREQ(err, "");
        built_done(&b);
}

/* Parses the map @pack builds and checks the error sentence. */
static void assert_parse_failure(void (*pack)(msgpack_packer *pk), int error, const char *want) {
        StartRequest req = {};
        char err[128] = "";
        Built b;

        built_init(&b);
        pack(&b.pk);
        ASSERT_ERROR(parse_built(&b, &req, err, sizeof(err)), error);
        ASSERT_STREQ(err, want);
        built_done(&b);
}

static void assert_parse_error(void (*pack)(msgpack_packer *pk), const char *want) {
        assert_parse_failure(pack, -EINVAL, want);
}

static void pack_missing(msgpack_packer *pk) {
        msgpack_pack_map(pk, 1);
        msg_pack_kv_bool(pk, "wait", true);
}

static void pack_id_wrong_type(msgpack_packer *pk) {
        msgpack_pack_map(pk, 1);
        msg_pack_kv_uint(pk, "workflow_id", 7);
}

static void pack_id_with_nul(msgpack_packer *pk) {
        msgpack_pack_map(pk, 1);
        msg_pack_str(pk, "workflow_id");
        msg_pack_strn(pk, "a\0b", 3);
}

static void pack_id_too_long(msgpack_packer *pk) {
        msgpack_pack_map(pk, 1);
        msg_pack_kv_str(pk, "workflow_id", "0123456789abcdefX");
}

static void pack_timeout_negative(msgpack_packer *pk) {
        msgpack_pack_map(pk, 2);
        msg_pack_kv_str(pk, "workflow_id", "order-42");
        msg_pack_str(pk, "timeout_usec");
        msgpack_pack_int64(pk, -1);
}

static void pack_input_too_long(msgpack_packer *pk) {
        msgpack_pack_map(pk, 2);
        msg_pack_kv_str(pk, "workflow_id", "order-42");
        msg_pack_kv_bin(pk, "input", "12345", 5);
}

static void pack_opts_not_map(msgpack_packer *pk) {
        msgpack_pack_map(pk, 2);
        msg_pack_kv_str(pk, "workflow_id", "order-42");
        msg_pack_kv_str(pk, "opts", "x");
}

TEST(parse_errors_name_the_field) {
        assert_parse_error(pack_missing, "missing field \"workflow_id\"");
        assert_parse_error(pack_id_wrong_type, "field \"workflow_id\" must be a string");
        assert_parse_error(pack_id_with_nul, "field \"workflow_id\" must not contain NUL bytes");
        assert_parse_error(pack_id_too_long, "field \"workflow_id\" is longer than 16 bytes");
        assert_parse_error(pack_timeout_negative,
                           "field \"timeout_usec\" must be an unsigned integer");
        /* A payload past its limit is resource_exhausted on the wire, not a bad request. */
        assert_parse_failure(pack_input_too_long, -ENOBUFS,
                             "field \"input\" is larger than the limit of 4 bytes");
        assert_parse_error(pack_opts_not_map, "field \"opts\" must be a map");
}

TEST(get_and_str_eq) {
        /* {"a": nil, "b": "x"}; the decoded strings point into it, so it outlives @u. */
        static const char map[] = { (char) 0x82, (char) 0xa1, 'a',         (char) 0xc0,
                                    (char) 0xa1, 'b',         (char) 0xa1, 'x' };
        msgpack_unpacked u;

        msgpack_unpacked_init(&u);
        ASSERT_OK(msg_decode(map, sizeof(map), &u));
        ASSERT_NULL(msg_get(&u.data, "a")); /* nil is absent */
        ASSERT_NULL(msg_get(&u.data, "c"));
        ASSERT_TRUE(msg_str_eq(msg_get(&u.data, "b"), "x"));
        ASSERT_FALSE(msg_str_eq(msg_get(&u.data, "b"), "xy"));
        ASSERT_FALSE(msg_str_eq(NULL, "x"));
        ASSERT_NULL(msg_get(NULL, "a"));
        msgpack_unpacked_destroy(&u);
}

TEST(frame_header_is_big_endian_length) {
        Built b;
        size_t start;

        built_init(&b);
        start = frame_begin(&b.sb);
        ASSERT_EQ(start, 0);
        for (int i = 0; i < 300; i++)
                msgpack_pack_nil(&b.pk);
        frame_end(&b.sb, start);
        ASSERT_EQ(b.sb.size, 304);
        ASSERT_EQ((unsigned char) b.sb.data[0], 0);
        ASSERT_EQ((unsigned char) b.sb.data[1], 0);
        ASSERT_EQ((unsigned char) b.sb.data[2], 1);
        ASSERT_EQ((unsigned char) b.sb.data[3], 44);
        built_done(&b);
}

TEST(frame_peek_cuts_frames) {
        Built b;
        const char *body = NULL;
        size_t len = 0, start;

        built_init(&b);
        start = frame_begin(&b.sb); /* frame 1: {} */
        msgpack_pack_map(&b.pk, 0);
        frame_end(&b.sb, start);
        start = frame_begin(&b.sb); /* frame 2: {"k": 1} */
        msgpack_pack_map(&b.pk, 1);
        msg_pack_kv_uint(&b.pk, "k", 1);
        frame_end(&b.sb, start);
        ASSERT_EQ(b.sb.size, 5 + 8);

        /* Incomplete header, incomplete body: wait for more. */
        for (size_t n = 0; n < 5; n++)
                ASSERT_EQ(frame_peek(b.sb.data, n, 100, &body, &len), 0);
        ASSERT_EQ(frame_peek(b.sb.data, b.sb.size, 100, &body, &len), 5);
        ASSERT_PTR_EQ(body, b.sb.data + 4);
        ASSERT_EQ(len, 1);
        ASSERT_EQ(frame_peek(b.sb.data + 5, 7, 100, &body, &len), 0);
        ASSERT_EQ(frame_peek(b.sb.data + 5, 8, 100, &body, &len), 8);
        ASSERT_EQ(len, 4);
        ASSERT_EQ((unsigned char) body[0], 0x81);
        built_done(&b);
}

TEST(frame_peek_refuses_oversized) {
        const char *body = NULL;
        size_t len = 0;

        /* The announced size alone decides, before any body byte arrived. */
        ASSERT_ERROR(frame_peek(BYTES(0, 0, 0, 101), 4, 100, &body, &len), -E2BIG);
        ASSERT_ERROR(frame_peek(BYTES((char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff), 4,
                                FRAME_SIZE_MAX_DEFAULT, &body, &len),
                     -E2BIG);
        ASSERT_EQ(frame_peek(BYTES(0, 0, 0, 100), 4, 100, &body, &len), 0);
        ASSERT_NULL(body);
}

DEFINE_TEST_MAIN();
