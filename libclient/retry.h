#pragma once
/* A dur_retry_policy as the protocol carries it: a map of only the fields the caller set (the
 * daemon applies Temporal's defaults). Used for activities, workflows and child workflows. */

#include <stddef.h>

#include <msgpack.h>

#include "durable/durable.h"

/* How many fields of @p are set (0: no map to send). */
size_t retry_policy_fields(const dur_retry_policy *p);
/* Packs the map; 0 or a negative msgpack error. */
int retry_policy_pack(msgpack_packer *pk, const dur_retry_policy *p);
