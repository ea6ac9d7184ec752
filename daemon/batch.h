#pragma once
/* Batch operations (Temporal's batch jobs, SEMANTICS.md b.21): one operation (signal, cancel,
 * terminate, delete, reset, pause, unpause) applied to every run a list filter matched when the
 * batch started. A batch is durable: its row and items are in the store (store-batch.h), and a
 * deadline (DEADLINE_BATCH) drives it a slice of items per loop pass, rate-limited by rps, so it
 * never holds the loop long and resumes where it was after a restart. Each item's effect and its
 * outcome are in the same transaction: no item is done twice or lost. */

#include <stdint.h>

#include <msgpack.h>

#include "daemon/api-error.h"
#include "daemon/manager.h"
#include "daemon/store-batch.h"
#include "proto/msg.h"

#define BATCH_ITEMS_MAX 100000  /* runs one batch may take */
#define BATCH_SLICE 64          /* items per loop pass */
#define BATCH_FAILURES_MAX 1000 /* failed items DescribeBatchOperation lists */

typedef struct BatchStartRequest {
        const char *batch_id; /* NULL: a new UUID */
        const char *op;
        const char *query;
        double rps;
        const char *reason;
        const char *signal_name; /* Signal */
        MsgBin input;            /* Signal */
        const char *to;          /* Reset: "first" or "last" */
        bool reapply_signals;    /* Reset */
        bool caller_admin;       /* the items are every matching run, else the caller's */
} BatchStartRequest;

/* Starts a batch owned by the actor (m->actor_uid) on the runs @filter (compiled from
 * @req->query) matches: -EINVAL for a bad op, -EEXIST when
 * @batch_id is taken, -ENOBUFS past BATCH_ITEMS_MAX runs; the sentence in @e. */
int batch_start(Manager *m,
                const BatchStartRequest *req,
                const FilterSql *filter,
                char ret_batch_id[static 37],
                uint64_t *ret_total,
                ApiError *e);
/* The batch's next slice of items (a DEADLINE_BATCH came due). */
int batch_on_deadline(Manager *m, const Deadline *d);
/* Packs the "batch" map of doc/protocol.md. */
void batch_pack(const BatchRow *b, msgpack_packer *pk);
