#pragma once
/* Search attributes as libdurable sends them (visibility.c). */

#include <stdbool.h>
#include <stddef.h>

#include <msgpack.h>

#include "durable/durable.h"

/* Packs @n attributes as the wire's map into @sb (initialised by the caller). DUR_SA_UNSET only
 * with @upsert. -EINVAL on a malformed attribute. */
int search_attrs_pack(msgpack_sbuffer *sb, const dur_search_attr *attrs, size_t n, bool upsert);
