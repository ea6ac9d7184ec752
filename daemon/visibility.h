#pragma once
/* Visibility: a run's memo (an opaque map shown by DescribeWorkflow) and its typed search
 * attributes (set at start, upserted by the workflow), stored so that the list filter
 * (daemon/filter.h) finds runs through SQLite indexes (tables in store.c).
 *
 * On the wire, search attributes are a map name -> {type: "Keyword"|"Text"|"Int"|"Double"|
 * "Bool"|"Datetime"|"KeywordList", value: ...}; in an upsert, name -> nil removes one. The type
 * of a name is fixed by its first use on this daemon; a later use with another type is refused. */

#include <stdbool.h>

#include <msgpack.h>

#include "daemon/store.h"

#define SA_KEYS_MAX 100   /* attributes per run (Temporal's searchAttributesNumberOfKeysLimit) */
#define SA_VALUE_MAX 2048 /* bytes of one value (searchAttributesSizeOfValueLimit) */
#define SA_TOTAL_MAX \
        (40 * 1024) /* bytes of all of a run's attributes (searchAttributesTotalSizeLimit) */
#define MEMO_MAX (2u << 20) /* bytes of a memo (limit.memoSize.error) */

/* Checks @memo and @sa (either may be NULL) of a start. -EINVAL with a sentence in @err. */
int visibility_check(Store *s,
                     const msgpack_object *memo,
                     const msgpack_object *sa,
                     bool upsert,
                     char *err,
                     size_t errlen);
/* Stores the memo and search attributes of a new run (after visibility_check()). */
int visibility_set(Store *s,
                   const char *run_id,
                   const msgpack_object *memo,
                   const msgpack_object *sa,
                   char *err,
                   size_t errlen);
/* Merges @sa into the run's search attributes (nil values remove). */
int visibility_upsert(
        Store *s, const char *run_id, const msgpack_object *sa, char *err, size_t errlen);
/* Packs "memo" and "search_attributes" as key/value pairs of the map being packed, when the run
 * has them; *@ret_n is how many pairs that is (0..2). Call with @pk NULL to count only. */
int visibility_pack(Store *s, const char *run_id, msgpack_packer *pk, size_t *ret_n);
