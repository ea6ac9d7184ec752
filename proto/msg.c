/* Safe msgpack decoding and packing helpers; see msg.h. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "proto/msg.h"

static uint64_t be(const unsigned char *p, unsigned n) {
        uint64_t v = 0;
        for (unsigned i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

/* Walks one msgpack value without allocating. @need counts the values still to read; it never
 * exceeds the bytes left, since each value takes at least one byte. With @check_depth it also
 * refuses containers nested deeper than MSG_DEPTH_MAX, counting what is left of each open
 * container in @left (one walk instead of a second one over the decoded tree). */
static int walk(const char *buf, size_t len, bool check_depth) {
        const unsigned char *p, *end;
        uint64_t need = 1, left[MSG_DEPTH_MAX + 1];
        unsigned depth = 0;

        if (len == 0) /* no value (and @buf may be NULL, to which nothing may be added) */
                return -EBADMSG;
        p = (const unsigned char *) buf;
        end = p + len;

        while (need > 0) {
                uint64_t skip = 0, children = 0;
                unsigned hdr = 0;
                unsigned char c;

                if (p >= end)
                        return -EBADMSG;
                c = *p++;
                need--;
                if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
                        ;
                else if (c >= 0x80 && c <= 0x8f)
                        children = 2 * (uint64_t) (c & 0x0f);
                else if (c >= 0x90 && c <= 0x9f)
                        children = c & 0x0f;
                else if (c >= 0xa0 && c <= 0xbf)
                        skip = c & 0x1f;
                else
                        switch (c) {
                        case 0xc4: case 0xd9: hdr = 1; break;          /* bin8, str8 */
                        case 0xc5: case 0xda: hdr = 2; break;          /* bin16, str16 */
                        case 0xc6: case 0xdb: hdr = 4; break;          /* bin32, str32 */
                        case 0xc7: hdr = 1; skip = 1; break;           /* ext8 */
                        case 0xc8: hdr = 2; skip = 1; break;           /* ext16 */
                        case 0xc9: hdr = 4; skip = 1; break;           /* ext32 */
                        case 0xca: skip = 4; break;
                        case 0xcb: skip = 8; break;
                        case 0xcc: case 0xd0: skip = 1; break;
                        case 0xcd: case 0xd1: skip = 2; break;
                        case 0xce: case 0xd2: skip = 4; break;
                        case 0xcf: case 0xd3: skip = 8; break;
                        case 0xd4: skip = 2; break;
                        case 0xd5: skip = 3; break;
                        case 0xd6: skip = 5; break;
                        case 0xd7: skip = 9; break;
                        case 0xd8: skip = 17; break;
                        case 0xdc: case 0xdd:                          /* array16/32 */
                        case 0xde: case 0xdf: {                        /* map16/32 */
                                unsigned n = (c == 0xdc || c == 0xde) ? 2 : 4;
                                if ((size_t) (end - p) < n)
                                        return -EBADMSG;
                                children = be(p, n) * (c >= 0xde ? 2 : 1);
                                p += n;
                                break;
                        }
                        default:
                                return -EBADMSG; /* 0xc1 is never used */
                        }
                if (hdr > 0) {
                        if ((size_t) (end - p) < hdr)
                                return -EBADMSG;
                        skip += be(p, hdr);
                        p += hdr;
                }
                if (skip > (uint64_t) (end - p))
                        return -EBADMSG;
                p += skip;
                need += children;
                if (need > (uint64_t) (end - p))
                        return -EBADMSG;
                if (!check_depth)
                        continue;
                if (depth > 0)
                        left[depth]--;
                if (children > 0) {
                        if (depth == MSG_DEPTH_MAX)
                                return -EBADMSG;
                        left[++depth] = children;
                } else
                        while (depth > 0 && left[depth] == 0)
                                depth--;
        }
        return p == end ? 0 : -EBADMSG;
}

int msg_validate(const char *buf, size_t len) {
        return walk(buf, len, false);
}

int msg_decode(const char *buf, size_t len, msgpack_unpacked *ret) {
        size_t off = 0;
        int r;

        r = walk(buf, len, true);
        if (r < 0)
                return r;
        if (msgpack_unpack_next(ret, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
                return -EBADMSG;
        if (ret->data.type != MSGPACK_OBJECT_MAP)
                return -EBADMSG;
        return 0;
}

bool msg_str_eq(const msgpack_object *o, const char *s) {
        size_t n = strlen(s);
        return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
               memcmp(o->via.str.ptr, s, n) == 0;
}

char *msg_strdup(const msgpack_object *o) {
        char *s = malloc(o->via.str.size + 1);

        if (!s)
                return NULL;
        memcpy(s, o->via.str.ptr, o->via.str.size);
        s[o->via.str.size] = 0;
        return s;
}

const msgpack_object *msg_get(const msgpack_object *map, const char *key) {
        if (!map || map->type != MSGPACK_OBJECT_MAP)
                return NULL;
        for (uint32_t i = 0; i < map->via.map.size; i++)
                if (msg_str_eq(&map->via.map.ptr[i].key, key))
                        return map->via.map.ptr[i].val.type == MSGPACK_OBJECT_NIL
                                       ? NULL
                                       : &map->via.map.ptr[i].val;
        return NULL;
}

/* One value for the process: set once by the daemon's main() before the loop runs. */
static size_t payload_limit = MSG_PAYLOAD_LIMIT_DEFAULT;

size_t msg_payload_limit(void) {
        return payload_limit;
}

void msg_set_payload_limit(size_t limit) {
        payload_limit = limit;
}

static size_t field_max(const MsgField *f) {
        return f->max_len == MSG_PAYLOAD_LIMIT ? payload_limit : f->max_len;
}

static const char *type_name(MsgType t) {
        static const char *const names[] = {
                [MSG_STR] = "a string", [MSG_UINT] = "an unsigned integer",
                [MSG_BOOL] = "a boolean", [MSG_DOUBLE] = "a number",
                [MSG_BIN] = "a bin payload", [MSG_MAP] = "a map",
                [MSG_ARRAY] = "an array", [MSG_ANY] = "a value",
        };
        return names[t];
}

static int parse_one(const msgpack_object *v, msgpack_zone *zone, const MsgField *f, char *dst) {
        switch (f->type) {
        case MSG_STR: {
                char *s;
                if (v->type != MSGPACK_OBJECT_STR)
                        return -EINVAL;
                if (memchr(v->via.str.ptr, 0, v->via.str.size))
                        return -EILSEQ;
                if (f->max_len && v->via.str.size > f->max_len)
                        return -E2BIG;
                s = msgpack_zone_malloc(zone, v->via.str.size + 1);
                if (!s)
                        return -ENOMEM;
                memcpy(s, v->via.str.ptr, v->via.str.size);
                s[v->via.str.size] = 0;
                memcpy(dst, &s, sizeof(s));
                return 0;
        }
        case MSG_UINT:
                if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                        return -EINVAL;
                memcpy(dst, &v->via.u64, sizeof(uint64_t));
                return 0;
        case MSG_BOOL:
                if (v->type != MSGPACK_OBJECT_BOOLEAN)
                        return -EINVAL;
                memcpy(dst, &v->via.boolean, sizeof(bool));
                return 0;
        case MSG_DOUBLE: {
                double d;
                if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
                        d = v->via.f64;
                else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                        d = (double) v->via.u64;
                else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                        d = (double) v->via.i64;
                else
                        return -EINVAL;
                memcpy(dst, &d, sizeof(d));
                return 0;
        }
        case MSG_BIN: {
                MsgBin b = { v->via.bin.ptr, v->via.bin.size };
                if (v->type != MSGPACK_OBJECT_BIN)
                        return -EINVAL;
                if (f->max_len && b.size > field_max(f))
                        return -ENOBUFS;
                memcpy(dst, &b, sizeof(b));
                return 0;
        }
        case MSG_MAP:
        case MSG_ARRAY:
        case MSG_ANY:
                if ((f->type == MSG_MAP && v->type != MSGPACK_OBJECT_MAP) ||
                    (f->type == MSG_ARRAY && v->type != MSGPACK_OBJECT_ARRAY))
                        return -EINVAL;
                memcpy(dst, &v, sizeof(v));
                return 0;
        }
        return -EINVAL;
}

int msg_parse(const msgpack_object *map, msgpack_zone *zone, const MsgField *fields, void *out,
              char *err, size_t errlen) {
        for (const MsgField *f = fields; f->key; f++) {
                const msgpack_object *v = msg_get(map, f->key);
                int r;

                if (!v) {
                        if (!f->required)
                                continue;
                        snprintf(err, errlen, "missing field \"%s\"", f->key);
                        return -EINVAL;
                }
                r = parse_one(v, zone, f, (char *) out + f->offset);
                if (r == -ENOMEM)
                        return r;
                if (r == -E2BIG) {
                        snprintf(err, errlen, "field \"%s\" is longer than %zu bytes", f->key,
                                 f->max_len);
                        return -EINVAL;
                }
                if (r == -ENOBUFS) {
                        /* A payload past its limit is a limit, not a malformed request
                         * (DESIGN.md §10: resource_exhausted). */
                        snprintf(err, errlen, "field \"%s\" is larger than the limit of %zu bytes",
                                 f->key, field_max(f));
                        return -ENOBUFS;
                }
                if (r == -EILSEQ) {
                        snprintf(err, errlen, "field \"%s\" must not contain NUL bytes", f->key);
                        return -EINVAL;
                }
                if (r < 0) {
                        snprintf(err, errlen, "field \"%s\" must be %s", f->key,
                                 type_name(f->type));
                        return -EINVAL;
                }
        }
        return 0;
}

int msg_pack_strn(msgpack_packer *pk, const char *s, size_t n) {
        int r = msgpack_pack_str(pk, n);
        return r < 0 ? r : msgpack_pack_str_body(pk, s, n);
}

int msg_pack_str(msgpack_packer *pk, const char *s) {
        return msg_pack_strn(pk, s, strlen(s));
}

int msg_pack_bin(msgpack_packer *pk, const void *p, size_t n) {
        int r = msgpack_pack_bin(pk, n);
        return r < 0 ? r : msgpack_pack_bin_body(pk, p, n);
}

int msg_pack_kv_str(msgpack_packer *pk, const char *key, const char *value) {
        int r = msg_pack_str(pk, key);
        return r < 0 ? r : msg_pack_str(pk, value);
}

int msg_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t value) {
        int r = msg_pack_str(pk, key);
        return r < 0 ? r : msgpack_pack_uint64(pk, value);
}

int msg_pack_kv_bool(msgpack_packer *pk, const char *key, bool value) {
        int r = msg_pack_str(pk, key);
        if (r < 0)
                return r;
        return value ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

int msg_pack_kv_bin(msgpack_packer *pk, const char *key, const void *p, size_t n) {
        int r = msg_pack_str(pk, key);
        return r < 0 ? r : msg_pack_bin(pk, p, n);
}

int msg_pack_raw(msgpack_packer *pk, const void *p, size_t n) {
        return pk->callback(pk->data, p, n);
}

static int msgbuf_write(void *data, const char *buf, size_t len) {
        MsgBuf *b = data;

        if (b->failed)
                return -1;
        if (msgpack_sbuffer_write(&b->sb, buf, len) < 0) {
                b->failed = true;
                return -1;
        }
        return 0;
}

void msgbuf_init(MsgBuf *b) {
        msgpack_sbuffer_init(&b->sb);
        msgpack_packer_init(&b->pk, b, msgbuf_write);
        b->failed = false;
}

void msgbuf_done(MsgBuf *b) {
        msgpack_sbuffer_destroy(&b->sb);
        msgpack_sbuffer_init(&b->sb);
        b->failed = false;
}

void msgbuf_reset(MsgBuf *b) {
        b->sb.size = 0;
        b->failed = false;
}

int msgbuf_error(const MsgBuf *b) {
        return b->failed ? -ENOMEM : 0;
}

int msg_map_add_uint(MsgBuf *out, const void *map, size_t size, const char *key, uint64_t value) {
        const unsigned char *p = map;
        uint64_t n;
        size_t hdr;

        if (size >= 1 && p[0] >= 0x80 && p[0] <= 0x8f) {
                n = p[0] & 0x0f;
                hdr = 1;
        } else if (size >= 3 && p[0] == 0xde) {
                n = be(p + 1, 2);
                hdr = 3;
        } else if (size >= 5 && p[0] == 0xdf) {
                n = be(p + 1, 4);
                hdr = 5;
        } else
                return -EBADMSG;
        if (n >= UINT32_MAX)
                return -E2BIG;
        (void) msgpack_pack_map(&out->pk, (size_t) n + 1);
        (void) msg_pack_kv_uint(&out->pk, key, value);
        (void) msg_pack_raw(&out->pk, p + hdr, size - hdr);
        return msgbuf_error(out);
}
