#pragma once
/* dur_failure (internal view): an owned copy of a failure map (doc/protocol.md "Types").
 * A failure owns its strings, its details (decoded, in its own zone) and its cause chain. */

#include <stdbool.h>

#include <msgpack.h>

#include "common/cleanup.h"
#include "durable/durable.h"

/* Deep copy of a failure map received from the daemon; NULL on OOM or if @map is not a map
 * (a map without "message" gets an empty message; mistyped fields are ignored, and details that
 * do not decode as a payload are dropped, so a foreign SDK's failure still reaches user code). */
dur_failure *failure_from_object(const msgpack_object *map);
/* @type and @message may be NULL (empty). NULL on OOM. */
dur_failure *failure_new(const char *type, bool non_retryable, const char *message);
/* Deep copy; NULL on OOM. */
dur_failure *failure_copy(const dur_failure *f);
/* Sets the cause (takes @cause, frees the previous one). */
void failure_set_cause(dur_failure *f, dur_failure *cause);
/* Sets details: @details is the value itself, as dur_failure_details() will return it (copied);
 * failure_pack() sends it as a payload. NULL clears them. */
int failure_set_details(dur_failure *f, const msgpack_object *details);
/* Sets "timeout_type" (StartToClose, ScheduleToStart, ScheduleToClose, Heartbeat); NULL clears. */
int failure_set_timeout_type(dur_failure *f, const char *timeout_type);
/* "timeout_type" of a timeout failure, else NULL. */
const char *failure_timeout_type(const dur_failure *f);
/* Packs the failure as a protocol failure map. 0, or -ENOMEM. */
int failure_pack(const dur_failure *f, msgpack_packer *pk);
dur_failure *failure_free(dur_failure *f);

DEFINE_CLEANUP(dur_failure, failure_free);
