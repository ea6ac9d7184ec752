/* The store's batch tables; see store-batch.h and the schema in store.c. */

#include "daemon/store-batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "daemon/store-internal.h"

#define BATCH_COLUMNS                                                                            \
        "batch_id, uid, op, query, args, rps, state, create_time, close_time, total, next_seq, " \
        "failed"

typedef sqlite3_stmt Stmt;

/* Every statement here is a string literal, prepared once per store: a batch runs a slice of
 * its items in a loop pass (store_prepare_cached()). */
static int prepare(Store *s, const char *sql, Stmt **ret) {
        return store_prepare_cached(s, sql, ret);
}

void batch_row_done(BatchRow *b) {
        free(b->batch_id);
        free(b->op);
        free(b->query);
        free(b->args.ptr);
        *b = (BatchRow){};
}

int store_batch_insert(Store *s, const BatchRow *b) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s, "INSERT INTO batches (" BATCH_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, b->batch_id);
        store_bind_u64(st, 2, b->uid);
        store_bind_text(st, 3, b->op);
        store_bind_text(st, 4, b->query);
        (void) sqlite3_bind_blob64(st, 5, b->args.ptr, b->args.size, SQLITE_STATIC);
        (void) sqlite3_bind_double(st, 6, b->rps);
        store_bind_u64(st, 7, b->state);
        store_bind_u64(st, 8, b->create_time);
        store_bind_u64(st, 9, b->close_time);
        store_bind_u64(st, 10, b->total);
        store_bind_u64(st, 11, b->next_seq);
        store_bind_u64(st, 12, b->failed);
        rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : store_sql_error(s, rc);
}

static int read_batch(Stmt *st, BatchRow *ret) {
        BatchRow b = {};
        const void *p;
        int k;

        k = store_col_strdup(st, 0, &b.batch_id);
        if (k >= 0)
                k = store_col_strdup(st, 2, &b.op);
        if (k >= 0)
                k = store_col_strdup(st, 3, &b.query);
        p = sqlite3_column_blob(st, 4);
        b.args.size = (size_t) sqlite3_column_bytes(st, 4);
        b.args.ptr = malloc(b.args.size ? b.args.size : 1);
        if (k < 0 || !b.args.ptr || !b.batch_id || !b.op || !b.query) {
                batch_row_done(&b);
                return -ENOMEM;
        }
        if (p)
                memcpy(b.args.ptr, p, b.args.size);
        b.uid = (uint32_t) store_col_u64(st, 1);
        b.rps = sqlite3_column_double(st, 5);
        b.state = (BatchState) store_col_u64(st, 6);
        b.create_time = store_col_u64(st, 7);
        b.close_time = store_col_u64(st, 8);
        b.total = store_col_u64(st, 9);
        b.next_seq = store_col_u64(st, 10);
        b.failed = store_col_u64(st, 11);
        *ret = b;
        return 0;
}

int store_batch_get(Store *s, const char *batch_id, BatchRow *ret) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s, "SELECT " BATCH_COLUMNS " FROM batches WHERE batch_id = ?", &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, batch_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                return read_batch(st, ret);
        return rc == SQLITE_DONE ? -ENOENT : store_sql_error(s, rc);
}

int store_batch_update(Store *s, const BatchRow *b) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s,
                    "UPDATE batches SET state = ?2, close_time = ?3, next_seq = ?4, failed = ?5 "
                    "WHERE batch_id = ?1",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, b->batch_id);
        store_bind_u64(st, 2, b->state);
        store_bind_u64(st, 3, b->close_time);
        store_bind_u64(st, 4, b->next_seq);
        store_bind_u64(st, 5, b->failed);
        rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : store_sql_error(s, rc);
}

int store_batches_list(Store *s, bool only_uid, uint32_t uid, batch_cb cb, void *userdata) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s,
                    only_uid ? "SELECT " BATCH_COLUMNS " FROM batches WHERE uid = ? "
                               "ORDER BY create_time DESC LIMIT 1000"
                             : "SELECT " BATCH_COLUMNS " FROM batches "
                               "ORDER BY create_time DESC LIMIT 1000",
                    &st);
        if (r < 0)
                return r;
        if (only_uid)
                store_bind_u64(st, 1, uid);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                BatchRow b;

                r = read_batch(st, &b);
                if (r < 0)
                        return r;
                r = cb(&b, userdata);
                batch_row_done(&b);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_sql_error(s, rc);
}

void batch_item_done(BatchItem *it) {
        free(it->workflow_id);
        free(it->code);
        free(it->message);
        *it = (BatchItem){};
}

int store_batch_items(Store *s,
                      const char *batch_id,
                      uint64_t from_seq,
                      bool only_failed,
                      size_t max,
                      BatchItem *ret,
                      size_t *ret_n) {
        _cleanup_stmt_ Stmt *st = NULL;
        size_t n = 0;
        int r, rc = SQLITE_DONE;

        r = prepare(s,
                    only_failed ? "SELECT seq, workflow_id, run_id, state, code, message "
                                  "FROM batch_items WHERE batch_id = ?1 AND seq >= ?2 AND "
                                  "state = 2 ORDER BY seq LIMIT ?3"
                                : "SELECT seq, workflow_id, run_id, state, code, message "
                                  "FROM batch_items WHERE batch_id = ?1 AND seq >= ?2 "
                                  "ORDER BY seq LIMIT ?3",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, batch_id);
        store_bind_u64(st, 2, from_seq);
        store_bind_u64(st, 3, max);
        while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                BatchItem it = { .seq = store_col_u64(st, 0), .state = (BatchItemState) store_col_u64(st, 3) };
                const unsigned char *run_id = sqlite3_column_text(st, 2);

                snprintf(it.run_id, sizeof(it.run_id), "%s", run_id ? (const char *) run_id : "");
                r = store_col_strdup(st, 1, &it.workflow_id);
                if (r >= 0)
                        r = store_col_strdup(st, 4, &it.code);
                if (r >= 0)
                        r = store_col_strdup(st, 5, &it.message);
                if (r < 0 || !it.workflow_id) {
                        batch_item_done(&it);
                        for (size_t i = 0; i < n; i++)
                                batch_item_done(&ret[i]);
                        return -ENOMEM;
                }
                ret[n++] = it;
        }
        if (n < max && rc != SQLITE_DONE) {
                for (size_t i = 0; i < n; i++)
                        batch_item_done(&ret[i]);
                return store_sql_error(s, rc);
        }
        *ret_n = n;
        return 0;
}

int store_batch_item_set(Store *s,
                         const char *batch_id,
                         uint64_t seq,
                         BatchItemState state,
                         const char *code,
                         const char *message) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s,
                    "UPDATE batch_items SET state = ?3, code = ?4, message = ?5 "
                    "WHERE batch_id = ?1 AND seq = ?2",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, batch_id);
        store_bind_u64(st, 2, seq);
        store_bind_u64(st, 3, state);
        store_bind_text(st, 4, code);
        store_bind_text(st, 5, message);
        rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : store_sql_error(s, rc);
}
