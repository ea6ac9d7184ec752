#pragma once
/* Rows the daemon works on, in memory: write-through copies of rows of the runs and activities
 * tables, for store_run_get() and store_activity_get() (store.c). Every step of a workflow
 * reads its run row, and an activity's row is read when its attempt starts and again when it
 * completes, a few milliseconds apart; each read cost SQLite two B-tree descents and two dozen
 * columns (bench/README.md, change 17).
 *
 * The tables stay the truth, and store.c keeps the copies exact: every write of a row updates or
 * forgets its copy in the same call, and every rollback (of a savepoint, of a pass, or by SQLite
 * itself) forgets them all. A cache holds at most its capacity of rows and ROWCACHE_BYTES of
 * their strings and blobs (an activity's input may be megabytes); the least recently used goes
 * first, and a row of more than a quarter of that is not kept at all.
 *
 * A row is keyed by its run id and a number (0 for a run, the scheduled event id for an
 * activity); the rows of one run share a hash bucket, so that rowcache_forget_run() reads one
 * chain. */

#include <stddef.h>
#include <stdint.h>

#define ROWCACHE_CAPACITY 4096
#define ROWCACHE_BYTES (16u << 20)

/* How to copy and free the rows of a cache (RunRow, ActivityRow). */
typedef struct RowCacheOps {
        size_t size;
        int (*copy)(const void *src, void *ret); /* deep; -ENOMEM leaves *ret empty */
        void (*done)(void *row);
        size_t (*bytes)(const void *row); /* what its strings and blobs take */
} RowCacheOps;

typedef struct RowCache RowCache;

RowCache *rowcache_new(const RowCacheOps *ops, size_t capacity, size_t max_bytes);
RowCache *rowcache_free(RowCache *c);

/* The cached row of (@run_id, @id), or NULL. A hit makes it the most recently used. */
void *rowcache_get(RowCache *c, const char *run_id, uint64_t id);
/* Caches a copy of @row in place of any older one (@row may borrow from that one); -ENOMEM
 * forgets the older one and caches nothing (the next read misses), as does a row too large to
 * keep (0). */
int rowcache_put(RowCache *c, const char *run_id, uint64_t id, const void *row);
void rowcache_forget(RowCache *c, const char *run_id, uint64_t id);
/* Forgets every row of @run_id. */
void rowcache_forget_run(RowCache *c, const char *run_id);
void rowcache_clear(RowCache *c);
size_t rowcache_size(const RowCache *c);
size_t rowcache_bytes(const RowCache *c);
