#pragma once
/* JSON at the edges (DESIGN.md §5): msgpack values to jansson and back.
 * A msgpack bin is a payload holding one msgpack value: it becomes that value in JSON; a bin that
 * does not decode becomes the string "0x<hex>". Integers beyond int64 become reals. */

#include <msgpack.h>
#include <jansson.h>

json_t *json_from_msgpack(const msgpack_object *o); /* NULL on OOM */
int json_to_msgpack(const json_t *j, msgpack_packer *pk);
/* Packs @j as a payload: a bin that holds its msgpack encoding. */
int json_pack_payload(const json_t *j, msgpack_packer *pk);
