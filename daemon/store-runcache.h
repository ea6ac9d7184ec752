#pragma once
/* The run rows the daemon works on, in memory: a write-through copy of rows of the runs table,
 * for store_run_get() (store.c). Every step of a workflow reads its run row, and a task goes
 * through three or four steps in a few milliseconds (scheduled, started, completed, the next
 * task), so the rows of the runs in flight are read again and again; each read cost SQLite two
 * B-tree descents (the run id's index, then the table) and two dozen columns (bench/README.md,
 * change 17).
 *
 * The table stays the truth, and store.c keeps the copies exact: every write of a run row
 * updates or forgets its copy in the same call, and every rollback (of a savepoint, of a pass,
 * or by SQLite itself) forgets them all. Closed runs are not kept. The cache holds at most
 * RUNCACHE_CAPACITY rows; the least recently used goes first. */

#include <stdbool.h>
#include <stddef.h>

#include "daemon/store.h"

#define RUNCACHE_CAPACITY 4096

typedef struct RunCache RunCache;

RunCache *runcache_new(size_t capacity);
RunCache *runcache_free(RunCache *c);

/* The cached row of @run_id, or NULL. A hit makes it the most recently used. */
RunRow *runcache_get(RunCache *c, const char *run_id);
/* Caches a copy of @r in place of any older one; -ENOMEM caches nothing (the next read misses). */
int runcache_put(RunCache *c, const RunRow *r);
void runcache_forget(RunCache *c, const char *run_id);
void runcache_clear(RunCache *c);
size_t runcache_size(const RunCache *c);

/* A deep copy of @src into @ret (run_row_done() frees it); -ENOMEM leaves @ret empty. */
int run_row_copy(const RunRow *src, RunRow *ret);
/* Whether every column of @a and @b is the same (the expensive check of store_run_get()). */
bool run_row_equal(const RunRow *a, const RunRow *b);
