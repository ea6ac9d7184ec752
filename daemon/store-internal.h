#pragma once
/* Shared by the store's files (store.c, store-schedule.c, store-batch.c, store-fault.c,
 * store-walbuf.c) and nobody else (STYLE.md §2). */

#include "daemon/store.h"

/* Declared here without <sqlite3.h>: only store*.c include it (STYLE.md §2). */
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

sqlite3 *store_db(Store *s);
/* SQLite result code -> negative errno, as every store function answers (store.h). */
int store_sql_error(Store *s, int rc);

/* The name of the fault-injecting VFS to open the database with when $DURABLED_FAULT asks for
 * one (fault-injection builds), else NULL (SQLite's default). A malformed $DURABLED_FAULT sets
 * *@ret_error to -EINVAL. */
const char *store_fault_vfs(int *ret_error);

/* The name of a VFS over @base (a VFS name, NULL for SQLite's default) that writes each WAL
 * commit with one write at its sync (store-walbuf.c); only for synchronous=FULL. Errors set
 * *@ret_error. */
const char *store_walbuf_vfs(const char *base, int *ret_error);

/* The count of schedules with WakeSystem= that store-schedule.c keeps (-1: unknown; see
 * store.c's Store). */
int *store_wake_schedules(Store *s);

/* The statement of @text, a string literal (it is looked up by its address), prepared once and
 * kept until store_free(): the store's cache for statements outside store.c's own table. Hand
 * it back with store_stmt_put(), which resets it and clears its bindings; never finalize it. */
int store_prepare_cached(Store *s, const char *text, sqlite3_stmt **ret);
void store_stmt_put(sqlite3_stmt *st);
#define _cleanup_stmt_ _cleanup_(store_stmt_putp)
static inline void store_stmt_putp(sqlite3_stmt **st) {
        if (*st)
                store_stmt_put(*st);
}

/* Binding and reading columns, the same way in each of the store's files: a NULL string binds
 * NULL; a NULL column reads as a NULL string (store_col_strdup(): a copy, -ENOMEM). */
void store_bind_text(sqlite3_stmt *st, int i, const char *t);
void store_bind_u64(sqlite3_stmt *st, int i, uint64_t v);
uint64_t store_col_u64(sqlite3_stmt *st, int i);
int store_col_strdup(sqlite3_stmt *st, int i, char **ret);

/* Deep copies of rows (run_row_done() and activity_row_done() free them; -ENOMEM leaves @ret
 * empty), and whether every column of two rows is the same: the row caches' (store-rowcopy.c). */
int run_row_copy(const RunRow *src, RunRow *ret);
/* What the strings and blobs of a row take (the caches' budget). */
size_t run_row_bytes(const RunRow *r);
size_t activity_row_bytes(const ActivityRow *a);
bool run_row_equal(const RunRow *a, const RunRow *b);
int activity_row_copy(const ActivityRow *src, ActivityRow *ret);
bool activity_row_equal(const ActivityRow *a, const ActivityRow *b);
