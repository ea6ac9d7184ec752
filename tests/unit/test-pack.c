/* Tests of libclient/pack.c (dur_pack, dur_unpack, dur_args) and of the JSON conversions of
 * libclient/buf.c that they are checked with. */

#include <limits.h>
#include <stdarg.h>

#include <msgpack.h>

#include "durable/durable.h"
#include "libclient/buf.h"
#include "tests/lib/test.h"

/* A packer over its own buffer, freed at scope exit. */
typedef struct Packed {
        msgpack_sbuffer sb;
        msgpack_packer pk;
} Packed;

static void packed_init(Packed *p) {
        msgpack_sbuffer_init(&p->sb);
        msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static void packed_done(Packed *p) {
        msgpack_sbuffer_destroy(&p->sb);
}

static dur_buf *json_buf(const char *json) {
        return ASSERT_NOT_NULL(dur_buf_from_json(json));
}

static char *json_of_args(dur_buf *b) {
        char *s = ASSERT_NOT_NULL(dur_buf_to_json(b));
        dur_buf_free(b);
        return s;
}

TEST(pack_scalars_and_containers) {
        _cleanup_free_ char *json = NULL;
        msgpack_object inner = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 7 };

        json = json_of_args(dur_args("{s:s, s:i, s:I, s:u, s:U, s:b, s:f, s:n, s:[s#, o], s:{}}",
                                     "str", "x", "int", -3, "i64", (int64_t) INT64_MIN, "uns",
                                     UINT_MAX, "u64", (uint64_t) UINT64_MAX, "bool", 1, "dbl", 1.5,
                                     "nil", "arr", "abcdef", 3, &inner, "empty"));
        ASSERT_STREQ(json, "{\"str\":\"x\",\"int\":-3,\"i64\":-9223372036854775808,"
                           "\"uns\":4294967295,\"u64\":1.8446744073709552e19,\"bool\":true,"
                           "\"dbl\":1.5,\"nil\":null,\"arr\":[\"abc\",7],\"empty\":{}}");
}

TEST(pack_separators_are_optional) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        a = json_of_args(dur_args("{s:s,s:[i,i]}", "k", "v", "l", 1, 2));
        b = json_of_args(dur_args(" { s s s [ i i ] } ", "k", "v", "l", 1, 2));
        ASSERT_STREQ(a, b);
        ASSERT_STREQ(a, "{\"k\":\"v\",\"l\":[1,2]}");
}

TEST(pack_nullable) {
        _cleanup_free_ char *json = NULL;

        json = json_of_args(dur_args("[s?, o?, s#?]", NULL, NULL, NULL, 0));
        ASSERT_STREQ(json, "[null,null,null]");
}

/* A format error is found before anything is written. */
static void assert_pack_fails(int error, const char *fmt, ...) {
        Packed p;
        va_list ap;
        int r;

        packed_init(&p);
        va_start(ap, fmt);
        r = dur_vpack(&p.pk, fmt, ap);
        va_end(ap);
        ASSERT_ERROR(r, error);
        ASSERT_EQ(p.sb.size, 0);
        packed_done(&p);
}

TEST(pack_format_errors) {
        assert_pack_fails(-EINVAL, "{s}", "key");     /* key without value */
        assert_pack_fails(-EINVAL, "{i:i}", 1, 2);    /* keys are strings */
        assert_pack_fails(-EINVAL, "{s?:i}", "k", 1); /* no optional keys when packing */
        assert_pack_fails(-EINVAL, "{s:i", "k", 1);   /* unbalanced */
        assert_pack_fails(-EINVAL, "[i]]", 1);        /* trailing bracket */
        assert_pack_fails(-EINVAL, "s s", "a", "b");  /* two values */
        assert_pack_fails(-EINVAL, "x");              /* unknown */
        assert_pack_fails(-EINVAL, "");               /* nothing */
        assert_pack_fails(-EINVAL, "s", NULL);        /* NULL without "?" */
        assert_pack_fails(-EINVAL, "o", NULL);
        ASSERT_ERROR(dur_pack(NULL, "n"), -EINVAL);
        errno = 0;
        ASSERT_NULL(dur_args("{s:s}", "only-key"));
        ASSERT_EQ(errno, EINVAL);
}

/* A payload decoded the way libdurable hands payloads to user code (buf_to_object(): strings
 * are NUL-terminated copies), so that dur_unpack()'s "s" yields C strings. */
typedef struct Decoded {
        dur_buf *buf;
        msgpack_zone *zone;
} Decoded;

static void decoded_free(Decoded *d) {
        dur_buf_free(d->buf);
        msgpack_zone_free(d->zone);
}

static msgpack_object decoded_of(Decoded *d, dur_buf *b) {
        msgpack_object o;

        d->buf = b;
        d->zone = ASSERT_NOT_NULL(msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE));
        ASSERT_OK(buf_to_object(b, d->zone, &o));
        return o;
}

TEST(unpack_round_trip) {
        _cleanup_(decoded_free) Decoded d = {};
        const msgpack_object *any = NULL;
        const char *s = NULL, *sn = NULL;
        size_t sn_len = 0;
        int i = 0;
        int64_t i64 = 0;
        unsigned u = 0;
        uint64_t u64 = 0;
        bool b = false;
        double f = 0, fi = 0;
        msgpack_object o;

        o = decoded_of(&d, json_buf("{\"s\": \"str\", \"sn\": \"a\\u0000b\", \"i\": -5, "
                                    "\"I\": -9000000000, \"u\": 4000000000, "
                                    "\"U\": 9000000000, \"b\": true, \"f\": 2.5, \"fi\": 3, "
                                    "\"nil\": null, \"o\": [1, 2]}"));
        ASSERT_OK(dur_unpack(&o, "{s:s, s:s#, s:i, s:I, s:u, s:U, s:b, s:f, s:f, s:n, s:o}", "s",
                             &s, "sn", &sn, &sn_len, "i", &i, "I", &i64, "u", &u, "U", &u64, "b",
                             &b, "f", &f, "fi", &fi, "nil", "o", &any));
        ASSERT_STREQ(s, "str");
        ASSERT_EQ(sn_len, 3);
        ASSERT_EQ(memcmp(sn, "a\0b", 3), 0);
        ASSERT_EQ(i, -5);
        ASSERT_EQ(i64, -9000000000LL);
        ASSERT_EQ(u, 4000000000u);
        ASSERT_EQ(u64, 9000000000ULL);
        ASSERT_TRUE(b);
        ASSERT_TRUE(f == 2.5);
        ASSERT_TRUE(fi == 3.0);
        ASSERT_EQ(any->type, MSGPACK_OBJECT_ARRAY);
        ASSERT_EQ(any->via.array.size, 2);
}

TEST(unpack_optional_keys) {
        _cleanup_(decoded_free) Decoded d = {};
        unsigned present = 0, absent = 42, nil = 43;
        const msgpack_object *inner = NULL;
        msgpack_object o;

        o = decoded_of(&d, json_buf("{\"present\": 1, \"nil\": null}"));
        ASSERT_OK(dur_unpack(&o, "{s?u, s?u, s?u, s?{s:o}}", "present", &present, "absent", &absent,
                             "nil", &nil, "nested", "x", &inner));
        ASSERT_EQ(present, 1);
        ASSERT_EQ(absent, 42); /* untouched */
        ASSERT_EQ(nil, 43);    /* nil counts as absent for optional keys */
        ASSERT_NULL(inner);
}

TEST(unpack_errors_write_nothing) {
        _cleanup_(decoded_free) Decoded d = {};
        const char *s = "untouched";
        unsigned u = 9;
        int i = 9;
        bool b = false;
        msgpack_object o;

        o = decoded_of(&d, json_buf("{\"s\": \"v\", \"neg\": -1, \"big\": 10000000000, "
                                    "\"nul\": \"a\\u0000b\", \"arr\": [true]}"));
        /* Wrong type, found after "s" would have been stored. */
        ASSERT_ERROR(dur_unpack(&o, "{s:s, s:b}", "s", &s, "neg", &b), -EINVAL);
        ASSERT_STREQ(s, "untouched");
        /* Missing required key. */
        ASSERT_ERROR(dur_unpack(&o, "{s:s, s:u}", "s", &s, "missing", &u), -EINVAL);
        ASSERT_STREQ(s, "untouched");
        /* Ranges. */
        ASSERT_ERROR(dur_unpack(&o, "{s:u}", "neg", &u), -ERANGE);
        ASSERT_ERROR(dur_unpack(&o, "{s:i}", "big", &i), -ERANGE);
        ASSERT_EQ(u, 9);
        ASSERT_EQ(i, 9);
        /* A NUL inside a string would truncate it: "s#" is the way. */
        ASSERT_ERROR(dur_unpack(&o, "{s:s}", "nul", &s), -EINVAL);
        /* Arrays shorter than the format; root of the wrong type. */
        ASSERT_ERROR(dur_unpack(&o, "{s:[b, b]}", "arr", &b, &b), -EINVAL);
        ASSERT_ERROR(dur_unpack(&o, "[b]", &b), -EINVAL);
        ASSERT_FALSE(b);
        /* NULL target or key. */
        ASSERT_ERROR(dur_unpack(&o, "{s:s}", "s", NULL), -EINVAL);
        ASSERT_ERROR(dur_unpack(&o, "{s:s}", NULL, &s), -EINVAL);
        ASSERT_ERROR(dur_unpack(NULL, "n"), -EINVAL);
}

TEST(unpack_format_errors) {
        _cleanup_(decoded_free) Decoded d = {};
        const char *s = NULL;
        msgpack_object o;

        o = decoded_of(&d, json_buf("{\"s\": \"v\"}"));
        ASSERT_ERROR(dur_unpack(&o, "{s:s} s", "s", &s), -EINVAL); /* trailing */
        ASSERT_ERROR(dur_unpack(&o, "{s:s", "s", &s), -EINVAL);    /* unbalanced */
        ASSERT_ERROR(dur_unpack(&o, "{s#:s}", "s", &s), -EINVAL);  /* keys are plain "s" */
        ASSERT_ERROR(dur_unpack(&o, "{s:q}", "s", &s), -EINVAL);   /* unknown */
        ASSERT_ERROR(dur_unpack(&o, NULL), -EINVAL);
        ASSERT_NULL(s);
}

TEST(unpack_extra_items_are_ignored) {
        _cleanup_(decoded_free) Decoded d = {};
        int a = 0;
        msgpack_object o;

        o = decoded_of(&d, json_buf("[1, 2, 3]"));
        ASSERT_OK(dur_unpack(&o, "[i]", &a));
        ASSERT_EQ(a, 1);
}

TEST(json_round_trip) {
        static const char *const docs[] = {
                "{\"order_id\":\"42\",\"amount\":100,\"items\":[1,2.5,true,null,\"x\"]}",
                "42",
                "\"just a string\"",
                "null",
                "[]",
                "{}",
                "{\"nested\":{\"deeper\":{\"k\":-1}}}",
        };

        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                dur_buf *b = json_buf(docs[i]);
                _cleanup_free_ char *back = ASSERT_NOT_NULL(dur_buf_to_json(b));

                ASSERT_STREQ(back, docs[i]);
                dur_buf_free(b);
        }
}

TEST(json_errors) {
        static const char array32_bomb[] = { (char) 0xdd, (char) 0xff, (char) 0xff, (char) 0xff,
                                             (char) 0xff };
        static const char reserved[] = { (char) 0xc1 };
        dur_buf bomb = { .data = (char *) array32_bomb, .size = sizeof(array32_bomb) };
        dur_buf c1 = { .data = (char *) reserved, .size = sizeof(reserved) };

        errno = 0;
        ASSERT_NULL(dur_buf_from_json("{\"unterminated\": "));
        ASSERT_EQ(errno, EINVAL);
        ASSERT_NULL(dur_buf_from_json(NULL));
        errno = 0;
        ASSERT_NULL(dur_buf_to_json(&bomb));
        ASSERT_EQ(errno, EBADMSG);
        ASSERT_NULL(dur_buf_to_json(&c1));
        ASSERT_NULL(dur_object_to_json(NULL));
}

TEST(json_empty_buffer_is_null) {
        dur_buf empty = { .data = NULL, .size = 0 };
        _cleanup_free_ char *json = ASSERT_NOT_NULL(dur_buf_to_json(&empty));

        ASSERT_STREQ(json, "null");
}

TEST(json_of_nested_payload) {
        _cleanup_free_ char *json = NULL;
        dur_buf *inner = ASSERT_NOT_NULL(dur_args("{s:s}", "k", "v"));
        msgpack_object bin = { .type = MSGPACK_OBJECT_BIN,
                               .via.bin = { .size = (uint32_t) inner->size, .ptr = inner->data } };

        /* A payload (bin) inside a map renders as the value it holds (proto/json.h). */
        json = json_of_args(dur_args("{s:o}", "payload", &bin));
        ASSERT_STREQ(json, "{\"payload\":{\"k\":\"v\"}}");
        dur_buf_free(inner);
}

TEST(buf_from_object) {
        _cleanup_free_ char *json = NULL;
        msgpack_object o = { .type = MSGPACK_OBJECT_NEGATIVE_INTEGER, .via.i64 = -12 };
        dur_buf *b = ASSERT_NOT_NULL(dur_buf_from_object(&o));

        json = ASSERT_NOT_NULL(dur_object_to_json(&o));
        ASSERT_STREQ(json, "-12");
        ASSERT_EQ(b->size, 1);
        ASSERT_EQ((unsigned char) b->data[0], 0xf4); /* negative fixint */
        ASSERT_NULL(dur_buf_free(b));
        ASSERT_NULL(dur_buf_free(NULL));
}

DEFINE_TEST_MAIN();
