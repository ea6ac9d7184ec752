/* msgpack <-> JSON conversion; see json.h.
 *
 * msgpack is looser than JSON, and the value may come from anyone (a payload another worker
 * wrote), yet a converted value must always print: json_from_msgpack() returns NULL only when out
 * of memory. So a float that is NaN or infinite becomes null (as JavaScript's JSON.stringify does),
 * bytes of a str or key that are not UTF-8 become U+FFFD each (json_dumps() refuses them), and
 * bins are decoded as nested payloads only MSG_DEPTH_MAX levels deep (a chain of bins in bins
 * would otherwise recurse once per two bytes of input). */

#include "proto/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proto/msg.h"

static json_t *from_msgpack(const msgpack_object *o, unsigned depth);

/* The length of the UTF-8 character at @p (at most @n bytes), or 0 when it is not one. The rules
 * are jansson's: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_char_len(const unsigned char *p, size_t n) {
        unsigned char lo = 0x80, hi = 0xbf;
        size_t len;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                len = 2;
        else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                len = 3;
                if (p[0] == 0xe0)
                        lo = 0xa0;
                else if (p[0] == 0xed)
                        hi = 0x9f;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                len = 4;
                if (p[0] == 0xf0)
                        lo = 0x90;
                else if (p[0] == 0xf4)
                        hi = 0x8f;
        } else
                return 0;
        if (n < len || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
        return len;
}

/* @p as valid UTF-8: 0 when it already is (nothing allocated), else 1 with a malloc()ed copy in
 * which every stray byte became U+FFFD; -ENOMEM. */
static int utf8_repair(const char *p, size_t n, char **ret, size_t *ret_n) {
        const unsigned char *u = (const unsigned char *) p;
        size_t i = 0, k, o = 0;
        char *q;

        while (i < n && (k = utf8_char_len(u + i, n - i)) > 0)
                i += k;
        if (i == n)
                return 0;
        q = malloc(3 * n); /* U+FFFD takes 3 bytes; nothing else grows */
        if (!q)
                return -ENOMEM;
        memcpy(q, p, i);
        o = i;
        while (i < n) {
                k = utf8_char_len(u + i, n - i);
                if (k > 0) {
                        memcpy(q + o, p + i, k);
                        o += k;
                        i += k;
                } else {
                        memcpy(q + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                }
        }
        *ret = q;
        *ret_n = o;
        return 1;
}

static json_t *json_from_str(const char *p, size_t n) {
        char *fixed = NULL;
        json_t *j;
        int r;

        if (n == 0)
                return json_string(""); /* msgpack-c leaves ptr NULL, which jansson refuses */
        r = utf8_repair(p, n, &fixed, &n);
        if (r < 0)
                return NULL;
        j = json_stringn_nocheck(r > 0 ? fixed : p, n);
        free(fixed);
        return j;
}

static json_t *json_from_bin(const char *p, size_t n, unsigned depth) {
        msgpack_unpacked u;
        size_t off = 0;
        json_t *j = NULL;

        if (n == 0)
                return json_null();
        if (depth < MSG_DEPTH_MAX && msg_validate(p, n) == 0) {
                msgpack_unpacked_init(&u);
                if (msgpack_unpack_next(&u, p, n, &off) == MSGPACK_UNPACK_SUCCESS && off == n)
                        j = from_msgpack(&u.data, depth + 1);
                msgpack_unpacked_destroy(&u);
        }
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

/* Sets @m[@k] to @v (consumed); keys that are not strings are written as decimal numbers. */
static int json_set_key(json_t *m, const msgpack_object *k, uint32_t i, json_t *v) {
        char key[64], *fixed = NULL;
        const char *kp = key;
        size_t kn;
        int r;

        if (k->type == MSGPACK_OBJECT_STR) {
                kp = k->via.str.size > 0 ? k->via.str.ptr : "";
                kn = k->via.str.size;
                r = utf8_repair(kp, kn, &fixed, &kn);
                if (r < 0) {
                        json_decref(v);
                        return r;
                }
                if (r > 0)
                        kp = fixed;
        } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                kn = (size_t) snprintf(key, sizeof(key), "%llu", (unsigned long long) k->via.u64);
        else if (k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                kn = (size_t) snprintf(key, sizeof(key), "%lld", (long long) k->via.i64);
        else
                kn = (size_t) snprintf(key, sizeof(key), "?%u", i);
        r = json_object_setn_new_nocheck(m, kp, kn, v);
        free(fixed);
        return r < 0 ? -ENOMEM : 0;
}

static json_t *from_msgpack(const msgpack_object *o, unsigned depth) {
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
                return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
        case MSGPACK_OBJECT_STR:
                return json_from_str(o->via.str.ptr, o->via.str.size);
        case MSGPACK_OBJECT_BIN:
                return json_from_bin(o->via.bin.ptr, o->via.bin.size, depth);
        case MSGPACK_OBJECT_EXT:
                return json_from_bin(o->via.ext.ptr, o->via.ext.size, depth);
        case MSGPACK_OBJECT_ARRAY: {
                json_t *a = json_array();
                for (uint32_t i = 0; a && i < o->via.array.size; i++) {
                        json_t *v = from_msgpack(&o->via.array.ptr[i], depth + 1);
                        if (json_array_append_new(a, v) < 0) {
                                json_decref(a);
                                return NULL;
                        }
                }
                return a;
        }
        case MSGPACK_OBJECT_MAP: {
                json_t *m = json_object();
                for (uint32_t i = 0; m && i < o->via.map.size; i++)
                        if (json_set_key(m, &o->via.map.ptr[i].key, i,
                                         from_msgpack(&o->via.map.ptr[i].val, depth + 1)) < 0) {
                                json_decref(m);
                                return NULL;
                        }
                return m;
        }
        }
        return NULL;
}

json_t *json_from_msgpack(const msgpack_object *o) {
        return from_msgpack(o, 0);
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
