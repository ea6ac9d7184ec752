#pragma once
/* Deep copies of msgpack values (internal to libdurable). Every string in a copy is followed by a
 * NUL byte (not counted in its size), which is how libdurable keeps its promise that strings it
 * hands to user code are C strings. Payload bins are not decoded here. */

#include <msgpack.h>

int object_copy(const msgpack_object *src, msgpack_zone *zone, msgpack_object *ret);
/* Decodes a payload (bytes of one msgpack value) into a NUL-terminated-strings copy in @zone.
 * An empty payload is nil. -EBADMSG on garbage. */
int object_from_payload(const void *p, size_t n, msgpack_zone *zone, msgpack_object *ret);
