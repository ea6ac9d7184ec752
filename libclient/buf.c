/* dur_buf: an owned run of msgpack bytes (one payload value, or a whole answer map), and its
 * conversions to and from JSON text, which durablectl and tests use at the edges (DESIGN.md §5).
 * The msgpack <-> JSON mapping itself lives in proto/json.c, shared with the daemon. */

#include "libclient/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "libclient/object.h"
#include "proto/json.h"

DUR_PUBLIC dur_buf *dur_buf_free(dur_buf *b) {
        if (b) {
                free(b->data);
                free(b);
        }
        return NULL;
}

dur_buf *buf_new(const void *p, size_t n) {
        _cleanup_(dur_buf_freep) dur_buf *b = NULL;

        b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        /* One spare byte so that an empty buffer still has a non-NULL data pointer. */
        b->data = malloc(n + 1);
        if (!b->data)
                return NULL;
        if (n > 0)
                memcpy(b->data, p, n);
        b->size = n;
        return TAKE_PTR(b);
}

dur_buf *buf_from_sbuffer(msgpack_sbuffer *sb) {
        size_t size = sb->size;
        dur_buf *b;

        if (!sb->data)
                return buf_new(NULL, 0);
        b = malloc(sizeof(*b));
        if (!b)
                return NULL;
        /* Read the size first: msgpack_sbuffer_release() resets it. */
        *b = (dur_buf){ .size = size, .data = msgpack_sbuffer_release(sb) };
        return b;
}

int buf_to_object(const dur_buf *b, msgpack_zone *zone, msgpack_object *ret) {
        return object_from_payload(b->data, b->size, zone, ret);
}

DUR_PUBLIC dur_buf *dur_buf_from_object(const msgpack_object *o) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        dur_buf *b = NULL;

        if (!o) {
                errno = EINVAL;
                return NULL;
        }
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, *o) >= 0)
                b = buf_from_sbuffer(&sb);
        msgpack_sbuffer_destroy(&sb);
        if (!b)
                errno = ENOMEM;
        return b;
}

static dur_buf *buf_from_json_value(const json_t *j) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        dur_buf *b = NULL;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (json_to_msgpack(j, &pk) >= 0)
                b = buf_from_sbuffer(&sb);
        msgpack_sbuffer_destroy(&sb);
        if (!b)
                errno = ENOMEM;
        return b;
}

/* Any JSON value is a payload, not only objects and arrays: "42" and "\"x\"" are valid inputs. */
DUR_PUBLIC dur_buf *dur_buf_from_json(const char *json) {
        json_t *j;
        dur_buf *b;

        if (!json) {
                errno = EINVAL;
                return NULL;
        }
        j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!j) {
                errno = EINVAL;
                return NULL;
        }
        b = buf_from_json_value(j);
        json_decref(j);
        return b;
}

/* Compact, one line, keys in map order; NULL with errno set on failure. */
static char *json_render(json_t *j) {
        char *s;

        if (!j) {
                errno = ENOMEM;
                return NULL;
        }
        s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        if (!s)
                errno = ENOMEM;
        return s;
}

DUR_PUBLIC char *dur_object_to_json(const msgpack_object *o) {
        if (!o) {
                errno = EINVAL;
                return NULL;
        }
        return json_render(json_from_msgpack(o));
}

DUR_PUBLIC char *dur_buf_to_json(const dur_buf *b) {
        msgpack_zone *zone;
        msgpack_object o;
        char *s = NULL;
        int r;

        if (!b) {
                errno = EINVAL;
                return NULL;
        }
        zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        if (!zone) {
                errno = ENOMEM;
                return NULL;
        }
        r = buf_to_object(b, zone, &o);
        if (r < 0)
                errno = -r;
        else
                s = dur_object_to_json(&o);
        msgpack_zone_free(zone);
        return s;
}
