#pragma once
/* The store's batch operation tables (schema in store.c; the logic is daemon/batch.c): a batch
 * row with its counters and cursor, and the items its list filter matched when it started. */

#include <stdbool.h>
#include <stdint.h>

#include "daemon/filter.h"
#include "daemon/store.h"

typedef enum BatchState {
        BATCH_RUNNING = 0,   /* items left to do */
        BATCH_COMPLETED = 1, /* every item done: succeeded or failed */
        _BATCH_STATE_MAX,
} BatchState;

typedef struct BatchRow {
        char *batch_id;
        uint32_t uid; /* who started it: its items act as that user */
        char *op;     /* "Signal", "Cancel", "Terminate", "Delete", "Reset", "Pause", "Unpause" */
        char *query;
        Blob args;  /* msgpack map of the operation's arguments (batch.c) */
        double rps; /* items per second; 0 = as fast as the loop allows */
        BatchState state;
        uint64_t create_time, close_time;
        uint64_t total;
        uint64_t next_seq; /* the first item not done; total + 1 when completed */
        uint64_t failed;
} BatchRow;

void batch_row_done(BatchRow *b);
int store_batch_insert(Store *s, const BatchRow *b);
/* -ENOENT when there is no such batch. */
int store_batch_get(Store *s, const char *batch_id, BatchRow *ret);
/* Writes state, close_time, next_seq and failed. */
int store_batch_update(Store *s, const BatchRow *b);
typedef int (*batch_cb)(const BatchRow *b, void *userdata);
/* Newest first; only @uid's with @only_uid. */
int store_batches_list(Store *s, bool only_uid, uint32_t uid, batch_cb cb, void *userdata);

/* Inserts the items of @batch_id: the runs filter @f matches (only @uid's with @only_uid), oldest
 * first, at most @max; their number in *@ret_total. (In store.c, with the list filter.) */
int store_batch_snapshot(Store *s,
                         const char *batch_id,
                         const FilterSql *f,
                         bool only_uid,
                         uint32_t uid,
                         uint64_t max,
                         uint64_t *ret_total);

typedef enum BatchItemState {
        BATCH_ITEM_PENDING = 0,
        BATCH_ITEM_SUCCEEDED = 1,
        BATCH_ITEM_FAILED = 2,
} BatchItemState;

typedef struct BatchItem {
        uint64_t seq;
        char *workflow_id;
        char run_id[37];
        BatchItemState state;
        char *code;    /* a failed item's error code (doc/protocol.md) */
        char *message; /* ... and its sentence */
} BatchItem;

void batch_item_done(BatchItem *it);
/* Up to @max items from @from_seq in order (only the failed ones with @only_failed) into
 * @ret (caller-allocated, @max entries); their number in *@ret_n. */
int store_batch_items(Store *s,
                      const char *batch_id,
                      uint64_t from_seq,
                      bool only_failed,
                      size_t max,
                      BatchItem *ret,
                      size_t *ret_n);
int store_batch_item_set(Store *s,
                         const char *batch_id,
                         uint64_t seq,
                         BatchItemState state,
                         const char *code,
                         const char *message);
