/* The cache of run rows (store-runcache.h): a hash table by run id, and a circular list in the
 * order of use whose tail is evicted. */
#include "daemon/store-runcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

typedef struct Entry Entry;

struct Entry {
        RunRow row;
        Entry *hash_next;
        Entry *used_prev, *used_next;
};

struct RunCache {
        Entry **buckets;
        size_t n_buckets; /* a power of two, at least twice the capacity */
        Entry used;       /* sentinel: used.used_next is the most recently used entry */
        size_t size, capacity;
};

RunCache *runcache_new(size_t capacity) {
        RunCache *c = calloc(1, sizeof(*c));
        size_t n = 16;

        if (!c)
                return NULL;
        while (n < 2 * capacity)
                n *= 2;
        c->buckets = calloc(n, sizeof(*c->buckets));
        if (!c->buckets) {
                free(c);
                return NULL;
        }
        c->n_buckets = n;
        c->capacity = capacity ? capacity : 1;
        c->used.used_next = c->used.used_prev = &c->used;
        return c;
}

RunCache *runcache_free(RunCache *c) {
        if (!c)
                return NULL;
        runcache_clear(c);
        free(c->buckets);
        free(c);
        return NULL;
}

static Entry **bucket(RunCache *c, const char *run_id) {
        return &c->buckets[string_hash(run_id) & (c->n_buckets - 1)];
}

static Entry **find(RunCache *c, const char *run_id) {
        Entry **p = bucket(c, run_id);

        while (*p && strcmp((*p)->row.run_id, run_id) != 0)
                p = &(*p)->hash_next;
        return p;
}

static void unlink_used(Entry *e) {
        e->used_prev->used_next = e->used_next;
        e->used_next->used_prev = e->used_prev;
}

static void link_first(RunCache *c, Entry *e) {
        e->used_prev = &c->used;
        e->used_next = c->used.used_next;
        e->used_next->used_prev = e;
        c->used.used_next = e;
}

/* Takes the entry at *@p out of the table and frees it. */
static void drop(RunCache *c, Entry **p) {
        Entry *e = *p;

        *p = e->hash_next;
        unlink_used(e);
        run_row_done(&e->row);
        free(e);
        c->size--;
}

RunRow *runcache_get(RunCache *c, const char *run_id) {
        Entry *e = *find(c, run_id);

        if (!e)
                return NULL;
        unlink_used(e);
        link_first(c, e);
        return &e->row;
}

int runcache_put(RunCache *c, const RunRow *r) {
        Entry **p = find(c, r->run_id), *e;
        int k;

        if (*p)
                drop(c, p);
        if (c->size >= c->capacity) {
                Entry *oldest = c->used.used_prev;
                drop(c, find(c, oldest->row.run_id));
        }
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        k = run_row_copy(r, &e->row);
        if (k < 0) {
                free(e);
                return k;
        }
        p = bucket(c, r->run_id);
        e->hash_next = *p;
        *p = e;
        link_first(c, e);
        c->size++;
        return 0;
}

void runcache_forget(RunCache *c, const char *run_id) {
        Entry **p = find(c, run_id);

        if (*p)
                drop(c, p);
}

void runcache_clear(RunCache *c) {
        while (c->used.used_next != &c->used)
                drop(c, find(c, c->used.used_next->row.run_id));
}

size_t runcache_size(const RunCache *c) {
        return c->size;
}

/* ---- rows ---- */

static int copy_str(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int copy_blob(const Blob *b, Blob *ret) {
        *ret = (Blob){ NULL, 0 };
        if (!b->ptr)
                return 0;
        ret->ptr = malloc(b->size ? b->size : 1);
        if (!ret->ptr)
                return -ENOMEM;
        memcpy(ret->ptr, b->ptr, b->size);
        ret->size = b->size;
        return 0;
}

int run_row_copy(const RunRow *src, RunRow *ret) {
        RunRow r = *src;
        int k;

        /* The pointers are the source's until each is replaced by its copy (or NULL). */
        r.workflow_id = r.workflow_type = r.task_queue = r.request_id = r.fairness_key = NULL;
        r.result = r.failure = (Blob){ NULL, 0 };
        k = copy_str(src->workflow_id, &r.workflow_id);
        if (k >= 0)
                k = copy_str(src->workflow_type, &r.workflow_type);
        if (k >= 0)
                k = copy_str(src->task_queue, &r.task_queue);
        if (k >= 0)
                k = copy_str(src->request_id, &r.request_id);
        if (k >= 0)
                k = copy_str(src->fairness_key, &r.fairness_key);
        if (k >= 0)
                k = copy_blob(&src->result, &r.result);
        if (k >= 0)
                k = copy_blob(&src->failure, &r.failure);
        if (k < 0) {
                run_row_done(&r);
                *ret = (RunRow){};
                return k;
        }
        *ret = r;
        return 0;
}

static bool str_equal(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool blob_equal(const Blob *a, const Blob *b) {
        return !a->ptr == !b->ptr && a->size == b->size &&
               (a->size == 0 || memcmp(a->ptr, b->ptr, a->size) == 0);
}

bool run_row_equal(const RunRow *a, const RunRow *b) {
        return strcmp(a->run_id, b->run_id) == 0 && str_equal(a->workflow_id, b->workflow_id) &&
               str_equal(a->workflow_type, b->workflow_type) &&
               str_equal(a->task_queue, b->task_queue) && str_equal(a->request_id, b->request_id) &&
               a->status == b->status && a->start_time == b->start_time &&
               a->close_time == b->close_time && a->uid == b->uid &&
               a->next_event_id == b->next_event_id &&
               a->task_timeout_usec == b->task_timeout_usec && a->wft_state == b->wft_state &&
               a->wft_scheduled_id == b->wft_scheduled_id &&
               a->wft_started_id == b->wft_started_id && a->wft_attempt == b->wft_attempt &&
               a->cancel_requested == b->cancel_requested && a->sticky_conn == b->sticky_conn &&
               a->sticky_next_id == b->sticky_next_id && blob_equal(&a->result, &b->result) &&
               blob_equal(&a->failure, &b->failure) && a->priority == b->priority &&
               str_equal(a->fairness_key, b->fairness_key) &&
               a->fairness_weight == b->fairness_weight && a->paused == b->paused;
}
