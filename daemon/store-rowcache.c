/* The row caches (store-rowcache.h): a hash table by run id, and a circular list in the order of
 * use whose tail is evicted. */
#include "daemon/store-rowcache.h"

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

typedef struct Entry Entry;

struct Entry {
        char run_id[37];
        uint64_t id;
        size_t bytes;
        Entry *hash_next;
        Entry *used_prev, *used_next;
        alignas(max_align_t) unsigned char row[]; /* ops->size bytes */
};

struct RowCache {
        const RowCacheOps *ops;
        Entry **buckets;
        size_t n_buckets; /* a power of two, at least twice the capacity */
        Entry used;       /* sentinel: used.used_next is the most recently used entry */
        size_t size, capacity;
        size_t bytes, max_bytes;
};

RowCache *rowcache_new(const RowCacheOps *ops, size_t capacity, size_t max_bytes) {
        RowCache *c = calloc(1, sizeof(*c));
        size_t n = 16;

        if (!c)
                return NULL;
        c->capacity = capacity ? capacity : 1;
        while (n < 2 * c->capacity)
                n *= 2;
        c->buckets = calloc(n, sizeof(*c->buckets));
        if (!c->buckets) {
                free(c);
                return NULL;
        }
        c->ops = ops;
        c->max_bytes = max_bytes;
        c->n_buckets = n;
        c->used.used_next = c->used.used_prev = &c->used;
        return c;
}

RowCache *rowcache_free(RowCache *c) {
        if (!c)
                return NULL;
        rowcache_clear(c);
        free(c->buckets);
        free(c);
        return NULL;
}

static Entry **bucket(RowCache *c, const char *run_id) {
        return &c->buckets[string_hash(run_id) & (c->n_buckets - 1)];
}

static bool is(const Entry *e, const char *run_id, uint64_t id) {
        return e->id == id && strcmp(e->run_id, run_id) == 0;
}

static Entry **find(RowCache *c, const char *run_id, uint64_t id) {
        Entry **p = bucket(c, run_id);

        while (*p && !is(*p, run_id, id))
                p = &(*p)->hash_next;
        return p;
}

static void unlink_used(Entry *e) {
        e->used_prev->used_next = e->used_next;
        e->used_next->used_prev = e->used_prev;
}

static void link_first(RowCache *c, Entry *e) {
        e->used_prev = &c->used;
        e->used_next = c->used.used_next;
        e->used_next->used_prev = e;
        c->used.used_next = e;
}

/* Takes the entry at *@p out of the table and frees it. */
static void drop(RowCache *c, Entry **p) {
        Entry *e = *p;

        *p = e->hash_next;
        unlink_used(e);
        c->ops->done(e->row);
        c->bytes -= e->bytes;
        free(e);
        c->size--;
}

void *rowcache_get(RowCache *c, const char *run_id, uint64_t id) {
        Entry *e = *find(c, run_id, id);

        if (!e)
                return NULL;
        unlink_used(e);
        link_first(c, e);
        return e->row;
}

int rowcache_put(RowCache *c, const char *run_id, uint64_t id, const void *row) {
        size_t bytes = c->ops->bytes(row);
        Entry **p, *e;
        int k;

        if (bytes > c->max_bytes / 4) {
                rowcache_forget(c, run_id, id);
                return 0;
        }
        /* The copy comes first: @row may borrow from the copy it replaces. */
        e = calloc(1, sizeof(*e) + c->ops->size);
        k = e ? c->ops->copy(row, e->row) : -ENOMEM;
        if (k < 0) {
                free(e);
                rowcache_forget(c, run_id, id);
                return k;
        }
        snprintf(e->run_id, sizeof(e->run_id), "%s", run_id);
        e->id = id;
        e->bytes = bytes;
        p = find(c, run_id, id);
        if (*p)
                drop(c, p);
        while (c->size > 0 && (c->size >= c->capacity || c->bytes + bytes > c->max_bytes)) {
                Entry *oldest = c->used.used_prev;
                drop(c, find(c, oldest->run_id, oldest->id));
        }
        c->bytes += bytes;
        p = bucket(c, run_id);
        e->hash_next = *p;
        *p = e;
        link_first(c, e);
        c->size++;
        return 0;
}

void rowcache_forget(RowCache *c, const char *run_id, uint64_t id) {
        Entry **p = find(c, run_id, id);

        if (*p)
                drop(c, p);
}

void rowcache_forget_run(RowCache *c, const char *run_id) {
        Entry **p = bucket(c, run_id);

        while (*p)
                if (strcmp((*p)->run_id, run_id) == 0)
                        drop(c, p);
                else
                        p = &(*p)->hash_next;
}

void rowcache_clear(RowCache *c) {
        while (c->used.used_next != &c->used) {
                Entry *e = c->used.used_next;
                drop(c, find(c, e->run_id, e->id));
        }
}

size_t rowcache_size(const RowCache *c) {
        return c->size;
}

size_t rowcache_bytes(const RowCache *c) {
        return c->bytes;
}
