/* Fuzzes proto/json.h both ways (DESIGN.md §5: JSON at the edges, where durablectl and
 * libdurable print payloads they did not write):
 *   - msgpack to JSON: any value msg_validate() accepts converts (json_from_msgpack() returns NULL
 *     only when out of memory), prints with json_dumps(), parses back to an equal value, and
 *     converts back to msgpack that validates;
 *   - JSON to msgpack: any text jansson loads converts to valid msgpack (also as a payload), and
 *     back to an equal JSON value. */

#undef NDEBUG

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "proto/json.h"
#include "proto/msg.h"
#include "tests/lib/fuzz.h"

/* Packs @j; the result must be one valid msgpack value. Returns the buffer to destroy. */
static void to_msgpack(const json_t *j, msgpack_sbuffer *sb) {
        msgpack_packer pk;

        msgpack_sbuffer_init(sb);
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        assert(json_to_msgpack(j, &pk) >= 0);
        assert(msg_validate(sb->data, sb->size) == 0);
}

static void from_msgpack(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;
        msgpack_unpacked u;
        msgpack_sbuffer sb;
        json_t *j, *back;
        size_t off = 0;
        char *s;

        if (msg_validate(buf, size) < 0)
                return;
        msgpack_unpacked_init(&u);
        /* Validated, so no hostile count reaches msgpack-c; deep nesting may still fail here. */
        if (msgpack_unpack_next(&u, buf, size, &off) != MSGPACK_UNPACK_SUCCESS) {
                msgpack_unpacked_destroy(&u);
                return;
        }
        j = json_from_msgpack(&u.data);
        assert(j);
        s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        assert(s);
        /* jansson loads no key with a NUL in it, though it prints one. */
        back = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert(back || strstr(s, "\\u0000"));
        assert(!back || json_equal(j, back));
        to_msgpack(j, &sb);
        msgpack_sbuffer_destroy(&sb);
        json_decref(back);
        free(s);
        json_decref(j);
        msgpack_unpacked_destroy(&u);
}

/* Containers nested in @j, @j included. */
static unsigned depth(const json_t *j) {
        unsigned d = 0, e;
        const char *k;
        json_t *v;
        size_t i;

        if (!json_is_array(j) && !json_is_object(j))
                return 0;
        json_array_foreach(j, i, v) {
                e = depth(v);
                d = e > d ? e : d;
        }
        json_object_foreach((json_t *) j, k, v) {
                e = depth(v);
                d = e > d ? e : d;
        }
        return d + 1;
}

static void from_json(const uint8_t *data, size_t size) {
        msgpack_sbuffer sb, payload;
        msgpack_packer pk;
        msgpack_unpacked u;
        json_t *j, *back;
        size_t off = 0;

        j = json_loadb((const char *) data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!j)
                return;
        to_msgpack(j, &sb);
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS) {
                assert(off == sb.size);
                back = json_from_msgpack(&u.data);
                assert(back);
                assert(json_equal(j, back));
                json_decref(back);
        } else
                assert(depth(j) > MSG_DEPTH_MAX); /* msgpack-c's limit */

        /* As a payload: one bin holding the same encoding. */
        msgpack_sbuffer_init(&payload);
        msgpack_packer_init(&pk, &payload, msgpack_sbuffer_write);
        assert(json_pack_payload(j, &pk) == 0);
        assert(msg_validate(payload.data, payload.size) == 0);

        msgpack_sbuffer_destroy(&payload);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        from_msgpack(data, size);
        from_json(data, size);
        return 0;
}
