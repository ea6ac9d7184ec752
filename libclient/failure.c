/* Failures: the application errors that activities and workflows end with, as user code sees them
 * (the public dur_failure_* getters) and as the protocol carries them (a map with message, type,
 * non_retryable, details as a payload, cause, timeout_type).
 *
 * A failure owns everything it points to: strings are malloc'd, details live in a zone of their
 * own, and the cause is another owned failure. The cause chain of a received failure is as deep
 * as the frame's nesting, which msg_decode() bounds. */

#include "libclient/failure.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libclient/logging.h"
#include "libclient/object.h"
#include "proto/msg.h"

struct dur_failure {
        char *message;      /* never NULL */
        char *type;         /* never NULL, may be "" */
        char *timeout_type; /* NULL unless a timeout */
        bool non_retryable;
        msgpack_zone *details_zone; /* owns details; NULL when there are none */
        msgpack_object details;
        dur_failure *cause;
};

dur_failure *failure_free(dur_failure *f) {
        if (!f)
                return NULL;
        free(f->message);
        free(f->type);
        free(f->timeout_type);
        msgpack_zone_free(f->details_zone);
        failure_free(f->cause);
        free(f);
        return NULL;
}

dur_failure *failure_new(const char *type, bool non_retryable, const char *message) {
        _cleanup_(failure_freep) dur_failure *f = NULL;

        f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        f->type = strdup(type ?: "");
        f->message = strdup(message ?: "");
        if (!f->type || !f->message)
                return NULL;
        f->non_retryable = non_retryable;
        return TAKE_PTR(f);
}

void failure_set_cause(dur_failure *f, dur_failure *cause) {
        failure_free(f->cause);
        f->cause = cause;
}

int failure_set_details(dur_failure *f, const msgpack_object *details) {
        msgpack_zone *zone = NULL;
        msgpack_object copy;

        if (details) {
                zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
                if (!zone)
                        return -ENOMEM;
                if (object_copy(details, zone, &copy) < 0) {
                        msgpack_zone_free(zone);
                        return -ENOMEM;
                }
                f->details = copy;
        }
        msgpack_zone_free(f->details_zone);
        f->details_zone = zone;
        return 0;
}

int failure_set_timeout_type(dur_failure *f, const char *timeout_type) {
        char *t = NULL;

        if (timeout_type) {
                t = strdup(timeout_type);
                if (!t)
                        return -ENOMEM;
        }
        free(f->timeout_type);
        f->timeout_type = t;
        return 0;
}

const char *failure_timeout_type(const dur_failure *f) {
        return f ? f->timeout_type : NULL;
}

/* Duplicates the string at @key (cut at an embedded NUL) into *ret; *ret stays NULL when the key
 * is absent or not a string. 0, or -ENOMEM. */
static int map_strdup(const msgpack_object *map, const char *key, char **ret) {
        const msgpack_object *v = msg_get(map, key);

        if (!v || v->type != MSGPACK_OBJECT_STR)
                return 0;
        *ret = strndup(v->via.str.ptr, v->via.str.size);
        return *ret ? 0 : -ENOMEM;
}

/* Decodes the details payload; garbage is dropped (see failure.h), only OOM is an error. */
static int details_from_payload(dur_failure *f, const msgpack_object *bin) {
        msgpack_zone *zone;
        msgpack_object o;
        int r;

        if (!bin || bin->type != MSGPACK_OBJECT_BIN)
                return 0;
        zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        if (!zone)
                return -ENOMEM;
        r = object_from_payload(bin->via.bin.ptr, bin->via.bin.size, zone, &o);
        if (r < 0) {
                msgpack_zone_free(zone);
                return r == -ENOMEM ? r : 0;
        }
        f->details_zone = zone;
        f->details = o;
        return 0;
}

dur_failure *failure_from_object(const msgpack_object *map) {
        _cleanup_(failure_freep) dur_failure *f = NULL;
        _cleanup_free_ char *message = NULL, *type = NULL, *timeout_type = NULL;
        const msgpack_object *v;

        if (!map || map->type != MSGPACK_OBJECT_MAP)
                return NULL;
        if (map_strdup(map, "message", &message) < 0 || map_strdup(map, "type", &type) < 0 ||
            map_strdup(map, "timeout_type", &timeout_type) < 0)
                return NULL;
        v = msg_get(map, "non_retryable");
        f = failure_new(type, v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean, message);
        if (!f)
                return NULL;
        f->timeout_type = TAKE_PTR(timeout_type);
        if (details_from_payload(f, msg_get(map, "details")) < 0)
                return NULL;
        v = msg_get(map, "cause");
        if (v && v->type == MSGPACK_OBJECT_MAP) {
                f->cause = failure_from_object(v);
                if (!f->cause)
                        return NULL;
        }
        return TAKE_PTR(f);
}

dur_failure *failure_copy(const dur_failure *f) {
        _cleanup_(failure_freep) dur_failure *copy = NULL;

        copy = failure_new(f->type, f->non_retryable, f->message);
        if (!copy)
                return NULL;
        if (failure_set_timeout_type(copy, f->timeout_type) < 0 ||
            failure_set_details(copy, f->details_zone ? &f->details : NULL) < 0)
                return NULL;
        if (f->cause) {
                copy->cause = failure_copy(f->cause);
                if (!copy->cause)
                        return NULL;
        }
        return TAKE_PTR(copy);
}

/* Packs @o as a payload: a bin holding its msgpack encoding (doc/protocol.md "Types"). */
static int pack_payload(msgpack_packer *pk, const msgpack_object *o) {
        msgpack_sbuffer sb;
        msgpack_packer inner;
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&inner, &sb, msgpack_sbuffer_write);
        r = msgpack_pack_object(&inner, *o);
        if (r >= 0)
                r = msg_pack_bin(pk, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        return r < 0 ? -ENOMEM : 0;
}

int failure_pack(const dur_failure *f, msgpack_packer *pk) {
        size_t n = 3 + !!f->details_zone + !!f->cause + !!f->timeout_type;
        int r;

        r = msgpack_pack_map(pk, n);
        if (r >= 0)
                r = msg_pack_kv_str(pk, "message", f->message);
        if (r >= 0)
                r = msg_pack_kv_str(pk, "type", f->type);
        if (r >= 0)
                r = msg_pack_kv_bool(pk, "non_retryable", f->non_retryable);
        if (r >= 0 && f->timeout_type)
                r = msg_pack_kv_str(pk, "timeout_type", f->timeout_type);
        if (r >= 0 && f->details_zone) {
                r = msg_pack_str(pk, "details");
                if (r >= 0)
                        r = pack_payload(pk, &f->details);
        }
        if (r >= 0 && f->cause) {
                r = msg_pack_str(pk, "cause");
                if (r >= 0)
                        r = failure_pack(f->cause, pk);
        }
        return r < 0 ? -ENOMEM : 0;
}

DUR_PUBLIC const char *dur_failure_message(const dur_failure *f) {
        assert_return(f, NULL);
        return f->message;
}

DUR_PUBLIC const char *dur_failure_type(const dur_failure *f) {
        assert_return(f, NULL);
        return f->type;
}

DUR_PUBLIC bool dur_failure_non_retryable(const dur_failure *f) {
        assert_return(f, false);
        return f->non_retryable;
}

DUR_PUBLIC const msgpack_object *dur_failure_details(const dur_failure *f) {
        assert_return(f, NULL);
        return f->details_zone ? &f->details : NULL;
}

DUR_PUBLIC const dur_failure *dur_failure_cause(const dur_failure *f) {
        assert_return(f, NULL);
        return f->cause;
}
