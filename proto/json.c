/* msgpack <-> JSON conversion; see json.h. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/json.h"
#include "proto/msg.h"

static json_t *json_from_bin(const char *p, size_t n) {
        msgpack_unpacked u;
        size_t off = 0;
        json_t *j = NULL;

        if (n == 0)
                return json_null();
        msgpack_unpacked_init(&u);
        if (msg_validate(p, n) == 0 &&
            msgpack_unpack_next(&u, p, n, &off) == MSGPACK_UNPACK_SUCCESS && off == n)
                j = json_from_msgpack(&u.data);
        msgpack_unpacked_destroy(&u);
        if (!j) {
                char *hex = malloc(2 * n + 3);
                if (!hex)
                        return NULL;
                strcpy(hex, "0x");
                for (size_t i = 0; i < n; i++)
                        sprintf(hex + 2 + 2 * i, "%02x", (unsigned char) p[i]);
                j = json_string(hex);
                free(hex);
        }
        return j;
}

json_t *json_from_msgpack(const msgpack_object *o) {
        switch (o->type) {
        case MSGPACK_OBJECT_NIL:
                return json_null();
        case MSGPACK_OBJECT_BOOLEAN:
                return json_boolean(o->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                if (o->via.u64 > INT64_MAX)
                        return json_real((double) o->via.u64);
                return json_integer((json_int_t) o->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                return json_integer(o->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                return json_real(o->via.f64);
        case MSGPACK_OBJECT_STR:
                return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
        case MSGPACK_OBJECT_BIN:
                return json_from_bin(o->via.bin.ptr, o->via.bin.size);
        case MSGPACK_OBJECT_EXT:
                return json_from_bin(o->via.ext.ptr, o->via.ext.size);
        case MSGPACK_OBJECT_ARRAY: {
                json_t *a = json_array();
                for (uint32_t i = 0; a && i < o->via.array.size; i++)
                        if (json_array_append_new(a, json_from_msgpack(&o->via.array.ptr[i])) < 0) {
                                json_decref(a);
                                return NULL;
                        }
                return a;
        }
        case MSGPACK_OBJECT_MAP: {
                json_t *m = json_object();
                for (uint32_t i = 0; m && i < o->via.map.size; i++) {
                        const msgpack_object *k = &o->via.map.ptr[i].key;
                        char key[64];
                        const char *kp = key;
                        size_t kn;

                        if (k->type == MSGPACK_OBJECT_STR) {
                                kp = k->via.str.ptr;
                                kn = k->via.str.size;
                        } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                                kn = (size_t) snprintf(key, sizeof(key), "%llu",
                                                       (unsigned long long) k->via.u64);
                        else if (k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                                kn = (size_t) snprintf(key, sizeof(key), "%lld",
                                                       (long long) k->via.i64);
                        else
                                kn = (size_t) snprintf(key, sizeof(key), "?%u", i);
                        if (json_object_setn_new_nocheck(m, kp, kn,
                                                         json_from_msgpack(&o->via.map.ptr[i].val)) < 0) {
                                json_decref(m);
                                return NULL;
                        }
                }
                return m;
        }
        }
        return NULL;
}

int json_to_msgpack(const json_t *j, msgpack_packer *pk) {
        switch (json_typeof(j)) {
        case JSON_NULL:
                return msgpack_pack_nil(pk);
        case JSON_TRUE:
                return msgpack_pack_true(pk);
        case JSON_FALSE:
                return msgpack_pack_false(pk);
        case JSON_INTEGER:
                return msgpack_pack_int64(pk, json_integer_value(j));
        case JSON_REAL:
                return msgpack_pack_double(pk, json_real_value(j));
        case JSON_STRING:
                return msg_pack_strn(pk, json_string_value(j), json_string_length(j));
        case JSON_ARRAY: {
                size_t i;
                json_t *v;
                int r = msgpack_pack_array(pk, json_array_size(j));
                json_array_foreach(j, i, v) if (r >= 0) r = json_to_msgpack(v, pk);
                return r;
        }
        case JSON_OBJECT: {
                const char *k;
                json_t *v;
                int r = msgpack_pack_map(pk, json_object_size(j));
                json_object_foreach((json_t *) j, k, v) {
                        if (r >= 0)
                                r = msg_pack_str(pk, k);
                        if (r >= 0)
                                r = json_to_msgpack(v, pk);
                }
                return r;
        }
        }
        return -EINVAL;
}

int json_pack_payload(const json_t *j, msgpack_packer *pk) {
        msgpack_sbuffer sb;
        msgpack_packer inner;
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&inner, &sb, msgpack_sbuffer_write);
        r = json_to_msgpack(j, &inner);
        if (r >= 0)
                r = msg_pack_bin(pk, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        return r < 0 ? -ENOMEM : 0;
}
