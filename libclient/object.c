/* Deep copies of msgpack values into a zone; see object.h.
 *
 * msgpack-c's unpacker leaves strings and bins pointing into the input buffer, which is reused
 * for the next frame, and its strings are not NUL-terminated. Everything libdurable keeps or hands
 * to user code is therefore copied here, with a NUL after every string and bin (bins get one
 * too: it costs a byte and lets nobody read past the end by accident). */

#include "libclient/object.h"

#include <errno.h>
#include <string.h>

#include "proto/msg.h"

static const char *bytes_copy(msgpack_zone *zone, const char *p, size_t n) {
        char *d = msgpack_zone_malloc_no_align(zone, n + 1);

        if (!d)
                return NULL;
        if (n > 0)
                memcpy(d, p, n);
        d[n] = 0;
        return d;
}

static int
array_copy(const msgpack_object_array *src, msgpack_zone *zone, msgpack_object_array *ret) {
        msgpack_object *items = NULL;

        if (src->size > 0) {
                items = msgpack_zone_malloc(zone, sizeof(*items) * src->size);
                if (!items)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < src->size; i++) {
                int r = object_copy(&src->ptr[i], zone, &items[i]);
                if (r < 0)
                        return r;
        }
        *ret = (msgpack_object_array){ .size = src->size, .ptr = items };
        return 0;
}

static int map_copy(const msgpack_object_map *src, msgpack_zone *zone, msgpack_object_map *ret) {
        msgpack_object_kv *kvs = NULL;

        if (src->size > 0) {
                kvs = msgpack_zone_malloc(zone, sizeof(*kvs) * src->size);
                if (!kvs)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < src->size; i++) {
                int r = object_copy(&src->ptr[i].key, zone, &kvs[i].key);
                if (r >= 0)
                        r = object_copy(&src->ptr[i].val, zone, &kvs[i].val);
                if (r < 0)
                        return r;
        }
        *ret = (msgpack_object_map){ .size = src->size, .ptr = kvs };
        return 0;
}

/* Recursion depth is bounded by the source: everything decoded from the wire passed msg_decode()
 * or msgpack-c's own nesting limit (MSGPACK_EMBED_STACK_SIZE). */
int object_copy(const msgpack_object *src, msgpack_zone *zone, msgpack_object *ret) {
        msgpack_object o = *src;
        int r = 0;

        switch (src->type) {
        case MSGPACK_OBJECT_STR:
                o.via.str.ptr = bytes_copy(zone, src->via.str.ptr, src->via.str.size);
                if (!o.via.str.ptr)
                        return -ENOMEM;
                break;
        case MSGPACK_OBJECT_BIN:
                o.via.bin.ptr = bytes_copy(zone, src->via.bin.ptr, src->via.bin.size);
                if (!o.via.bin.ptr)
                        return -ENOMEM;
                break;
        case MSGPACK_OBJECT_EXT:
                o.via.ext.ptr = bytes_copy(zone, src->via.ext.ptr, src->via.ext.size);
                if (!o.via.ext.ptr)
                        return -ENOMEM;
                break;
        case MSGPACK_OBJECT_ARRAY:
                r = array_copy(&src->via.array, zone, &o.via.array);
                break;
        case MSGPACK_OBJECT_MAP:
                r = map_copy(&src->via.map, zone, &o.via.map);
                break;
        default:
                break; /* scalars carry no pointers */
        }
        if (r < 0)
                return r;
        *ret = o;
        return 0;
}

int object_from_payload(const void *p, size_t n, msgpack_zone *zone, msgpack_object *ret) {
        msgpack_unpacked u;
        size_t off = 0;
        int r;

        if (n == 0) {
                *ret = (msgpack_object){ .type = MSGPACK_OBJECT_NIL };
                return 0;
        }
        /* Validate first: a hostile element count must cost nothing (DESIGN.md §4). */
        r = msg_validate(p, n);
        if (r < 0)
                return r;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, p, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n)
                r = -EBADMSG;
        else
                r = object_copy(&u.data, zone, ret);
        msgpack_unpacked_destroy(&u);
        return r;
}
