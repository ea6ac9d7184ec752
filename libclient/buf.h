#pragma once
/* dur_buf helpers internal to libdurable. A dur_buf owns malloc'd bytes; the struct itself is
 * malloc'd too, and dur_buf_free() releases both. */

#include <stddef.h>

#include <msgpack.h>

#include "common/cleanup.h"
#include "durable/durable.h"

/* A new buffer holding a copy of @n bytes at @p. NULL on OOM. */
dur_buf *buf_new(const void *p, size_t n);
/* Takes the bytes of @sb (left empty and reusable); NULL on OOM, @sb then unchanged. */
dur_buf *buf_from_sbuffer(msgpack_sbuffer *sb);
/* Decodes the single msgpack value in @b into @zone (NUL-terminated strings, see object.h);
 * an empty buffer is nil. -EBADMSG when it is not exactly one value. */
int buf_to_object(const dur_buf *b, msgpack_zone *zone, msgpack_object *ret);

DEFINE_CLEANUP(dur_buf, dur_buf_free);
