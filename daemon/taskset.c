/* In-memory task queues with an undo journal (taskset.h). */
#include "daemon/taskset.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "common/cleanup.h"
#include "common/hash.h"

typedef struct Queue Queue;
typedef struct Level Level;
typedef struct FairKey FairKey;

typedef struct Task {
        uint64_t order; /* the queue's sort key, then seq */
        uint64_t seq;
        uint64_t ref;
        uint64_t gen;
        TaskKind kind;
        uint8_t priority; /* its level in the queue: 0 for ordered entries, else 1..5 */
        double weight;    /* its fairness weight */
        char run_id[37];
        Queue *queue;
        FairKey *key;
        bool linked;                  /* in its queue and in the run index */
        LIST_FIELDS(struct Task, fifo); /* its level of the queue, in (order, seq) order */
        LIST_FIELDS(struct Task, kfifo); /* its fairness key's tasks, in the same order */
        struct Task *run_next;        /* the run index's bucket chain */
} Task;

/* Fairness within a level (Temporal's fairness keys, SEMANTICS.md b.15a) is stride scheduling:
 * each key has a pass, the dispatches it had divided by their weights; the key with the smallest
 * pass among those holding tasks goes next (a tie: the one whose oldest task is older), so that
 * keys get shares proportional to their weights, exactly over any long run. A key that had no
 * task starts at the level's virtual time (the pass of the last dispatch) instead of its old
 * pass: an idle key saves no credit. Key "" is the level's own; other keys are made when a task
 * names them and freed at the commit after which they hold none. A level whose tasks all have key
 * "" takes its oldest task, as a FIFO. */
struct FairKey {
        Level *level;
        const char *name;
        Task *head, *tail;
        size_t count;
        double pass;
        bool swept; /* on the set's sweep list: emptied since the last commit */
        FairKey *sweep_next;
        LIST_FIELDS(FairKey, keys);
};

/* A queue is one list per priority level (Temporal's priority keys, SEMANTICS.md b.15a): strict
 * between levels, FIFO within one but for fairness keys; level 0 holds the entries inserted with
 * an explicit order. A queue of default-priority tasks uses one level, so it costs what a single
 * FIFO did. */
struct Level {
        Task *head, *tail;
        size_t count;
        FairKey dflt;  /* key "" */
        FairKey *keys; /* the others */
        double vtime;
};

struct Queue {
        TaskKind kind;
        size_t count;
        Level lv[TASK_PRIORITY_LEVELS];
        Queue *next;
        char name[]; /* flexible: queue names are short and never change */
};

typedef struct Undo {
        Task *task;
        bool inserted; /* else removed */
        bool charged;  /* removed by a dispatch, which moved its key's pass and the level's time */
        double pass, vtime; /* their values before */
} Undo;

struct TaskSet {
        uint64_t seq;
        size_t count;
        Queue *queues;
        Task **buckets; /* run id -> tasks of that run (a run has few) */
        size_t n_buckets;
        Undo *journal;
        size_t n_journal, journal_alloc;
        size_t *marks;
        size_t n_marks, marks_alloc;
        FairKey *sweep;
};

static int grow(void **p, size_t *alloc, size_t need, size_t size) {
        size_t n;
        void *q;

        if (need <= *alloc)
                return 0;
        n = MAX(need, MAX(*alloc * 2, (size_t) 64));
        q = reallocarray(*p, n, size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *alloc = n;
        return 0;
}

TaskSet *taskset_new(void) {
        TaskSet *ts = calloc(1, sizeof(*ts));

        if (!ts)
                return NULL;
        ts->n_buckets = 1024;
        ts->buckets = calloc(ts->n_buckets, sizeof(Task *));
        if (!ts->buckets) {
                free(ts);
                return NULL;
        }
        return ts;
}

TaskSet *taskset_free(TaskSet *ts) {
        if (!ts)
                return NULL;
        taskset_rollback(ts); /* frees what the open journal inserted */
        for (Queue *q = ts->queues, *n; q; q = n) {
                n = q->next;
                for (size_t l = 0; l < TASK_PRIORITY_LEVELS; l++) {
                        for (Task *t = q->lv[l].head, *tn; t; t = tn) {
                                tn = t->fifo_next;
                                free(t);
                        }
                        while (q->lv[l].keys) {
                                FairKey *k = q->lv[l].keys;

                                LIST_REMOVE(keys, q->lv[l].keys, k);
                                free(k);
                        }
                }
                free(q);
        }
        free(ts->buckets);
        free(ts->journal);
        free(ts->marks);
        free(ts);
        return NULL;
}

static Queue *queue_find(TaskSet *ts, TaskKind kind, const char *name) {
        for (Queue *q = ts->queues; q; q = q->next)
                if (q->kind == kind && strcmp(q->name, name) == 0)
                        return q;
        return NULL;
}

static Queue *queue_get(TaskSet *ts, TaskKind kind, const char *name) {
        Queue *q = queue_find(ts, kind, name);
        size_t len;

        if (q)
                return q;
        len = strlen(name);
        q = calloc(1, sizeof(*q) + len + 1);
        if (!q)
                return NULL;
        q->kind = kind;
        memcpy(q->name, name, len + 1);
        for (size_t l = 0; l < TASK_PRIORITY_LEVELS; l++)
                q->lv[l].dflt = (FairKey){ .level = &q->lv[l], .name = "" };
        q->next = ts->queues;
        ts->queues = q;
        return q;
}

/* Doubles the run index when it holds more tasks than buckets, keeping chains short. */
static void buckets_maybe_grow(TaskSet *ts) {
        size_t n = ts->n_buckets * 2;
        Task **b;

        if (ts->count < ts->n_buckets)
                return;
        b = calloc(n, sizeof(Task *));
        if (!b)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < ts->n_buckets; i++)
                for (Task *t = ts->buckets[i], *next; t; t = next) {
                        size_t h = string_hash(t->run_id) & (n - 1);

                        next = t->run_next;
                        t->run_next = b[h];
                        b[h] = t;
                }
        free(ts->buckets);
        ts->buckets = b;
        ts->n_buckets = n;
}

static bool task_after(const Task *a, const Task *b) {
        return a->order > b->order || (a->order == b->order && a->seq > b->seq);
}

/* The same for the list of its fairness key. */
static void key_link(Task *t) {
        FairKey *k = t->key;
        Task *after = k->tail;

        while (after && task_after(after, t))
                after = after->kfifo_prev;
        t->kfifo_prev = after;
        t->kfifo_next = after ? after->kfifo_next : k->head;
        if (t->kfifo_next)
                t->kfifo_next->kfifo_prev = t;
        else
                k->tail = t;
        if (after)
                after->kfifo_next = t;
        else
                k->head = t;
        if (k->count++ == 0 && k->pass < k->level->vtime)
                k->pass = k->level->vtime; /* an idle key saves no credit */
}

static void key_unlink(TaskSet *ts, Task *t) {
        FairKey *k = t->key;

        if (t->kfifo_prev)
                t->kfifo_prev->kfifo_next = t->kfifo_next;
        else
                k->head = t->kfifo_next;
        if (t->kfifo_next)
                t->kfifo_next->kfifo_prev = t->kfifo_prev;
        else
                k->tail = t->kfifo_prev;
        t->kfifo_next = t->kfifo_prev = NULL;
        if (--k->count == 0 && k != &k->level->dflt && !k->swept) {
                k->swept = true;
                k->sweep_next = ts->sweep;
                ts->sweep = k;
        }
}

/* Frees the keys emptied since the last commit that are still empty; only when no journal entry
 * can put a task back into one. */
static void keys_sweep(TaskSet *ts) {
        while (ts->sweep) {
                FairKey *k = ts->sweep;

                ts->sweep = k->sweep_next;
                k->swept = false;
                if (k->count == 0) {
                        LIST_REMOVE(keys, k->level->keys, k);
                        free(k);
                }
        }
}

static FairKey *key_get(Level *lv, const char *name) {
        FairKey *k;
        size_t len;

        if (!name || !*name)
                return &lv->dflt;
        LIST_FOREACH(keys, k, lv->keys)
                if (strcmp(k->name, name) == 0)
                        return k;
        len = strlen(name);
        k = calloc(1, sizeof(*k) + len + 1);
        if (!k)
                return NULL;
        k->level = lv;
        k->name = memcpy((char *) (k + 1), name, len + 1);
        k->pass = lv->vtime;
        LIST_PREPEND(keys, lv->keys, k);
        return k;
}

/* Puts @t back in its queue's level at the place its (order, seq) gives (the tail for new tasks,
 * the head for most undone pops) and in the run index. */
static void task_link(TaskSet *ts, Task *t) {
        Queue *q = t->queue;
        Level *lv = &q->lv[t->priority];
        Task *after = lv->tail;
        size_t h;

        while (after && task_after(after, t))
                after = after->fifo_prev;
        t->fifo_prev = after;
        t->fifo_next = after ? after->fifo_next : lv->head;
        if (t->fifo_next)
                t->fifo_next->fifo_prev = t;
        else
                lv->tail = t;
        if (after)
                after->fifo_next = t;
        else
                lv->head = t;
        lv->count++;
        q->count++;
        key_link(t);
        h = string_hash(t->run_id) & (ts->n_buckets - 1);
        t->run_next = ts->buckets[h];
        ts->buckets[h] = t;
        t->linked = true;
        ts->count++;
        buckets_maybe_grow(ts);
}

static void task_unlink(TaskSet *ts, Task *t) {
        Queue *q = t->queue;
        Level *lv = &q->lv[t->priority];
        Task **p = &ts->buckets[string_hash(t->run_id) & (ts->n_buckets - 1)];

        if (t->fifo_prev)
                t->fifo_prev->fifo_next = t->fifo_next;
        else
                lv->head = t->fifo_next;
        if (t->fifo_next)
                t->fifo_next->fifo_prev = t->fifo_prev;
        else
                lv->tail = t->fifo_prev;
        t->fifo_next = t->fifo_prev = NULL;
        lv->count--;
        q->count--;
        key_unlink(ts, t);
        while (*p != t)
                p = &(*p)->run_next;
        *p = t->run_next;
        t->run_next = NULL;
        t->linked = false;
        ts->count--;
}

static int journal_reserve(TaskSet *ts) {
        return grow((void **) &ts->journal, &ts->journal_alloc, ts->n_journal + 1,
                    sizeof(Undo));
}

/* Removes @t now; the journal keeps it for an undo until the commit frees it. */
static void task_remove(TaskSet *ts, Task *t) {
        task_unlink(ts, t);
        ts->journal[ts->n_journal++] = (Undo){ .task = t, .inserted = false };
}

/* Removes @t as dispatched: its key is charged for it (stride scheduling, see FairKey). */
static void task_dispatch(TaskSet *ts, Task *t) {
        Level *lv = t->key->level;
        Undo u = { .task = t, .charged = true, .pass = t->key->pass, .vtime = lv->vtime };

        if (lv->keys) { /* a level with key "" only is a FIFO: nothing to charge */
                lv->vtime = t->key->pass;
                t->key->pass += 1.0 / t->weight;
        }
        task_unlink(ts, t);
        ts->journal[ts->n_journal++] = u;
}

static int insert_at(TaskSet *ts,
                     TaskKind kind,
                     const char *queue,
                     const char *run_id,
                     uint64_t ref,
                     const TaskPriority *p,
                     uint64_t order,
                     uint64_t gen) {
        FairKey *key;
        Queue *q;
        Task *t;

        if (strlen(run_id) >= sizeof(t->run_id))
                return -EINVAL;
        if (journal_reserve(ts) < 0)
                return -ENOMEM;
        q = queue_get(ts, kind, queue);
        if (!q)
                return -ENOMEM;
        key = key_get(&q->lv[p->priority], p->fairness_key);
        if (!key)
                return -ENOMEM;
        t = calloc(1, sizeof(*t));
        if (!t) {
                if (key->count == 0 && key != &key->level->dflt) {
                        LIST_REMOVE(keys, key->level->keys, key);
                        free(key);
                }
                return -ENOMEM;
        }
        t->seq = ++ts->seq;
        t->order = order ?: t->seq;
        t->priority = (uint8_t) p->priority;
        t->key = key;
        t->weight = p->fairness_weight;
        t->gen = gen;
        t->ref = ref;
        t->kind = kind;
        t->queue = q;
        strcpy(t->run_id, run_id);
        task_link(ts, t);
        ts->journal[ts->n_journal++] = (Undo){ .task = t, .inserted = true };
        return 0;
}

int taskset_insert(TaskSet *ts,
                   TaskKind kind,
                   const char *queue,
                   const char *run_id,
                   uint64_t ref,
                   const TaskPriority *p) {
        TaskPriority n = p ? *p : (TaskPriority){};

        if (n.priority < TASK_PRIORITY_HIGHEST || n.priority > TASK_PRIORITY_LOWEST)
                n.priority = TASK_PRIORITY_DEFAULT;
        n.fairness_weight = task_fairness_weight(n.fairness_weight);
        return insert_at(ts, kind, queue, run_id, ref, &n, 0, 0);
}

double task_fairness_weight(double w) {
        if (!(w > 0)) /* unset (or NaN) */
                return 1.0;
        return w < 0.001 ? 0.001 : w > 1000 ? 1000 : w; /* Temporal clamps the same way */
}

int taskset_insert_ordered(TaskSet *ts,
                           TaskKind kind,
                           const char *queue,
                           const char *run_id,
                           uint64_t ref,
                           uint64_t order,
                           uint64_t gen) {
        return insert_at(ts, kind, queue, run_id, ref, &(TaskPriority){ .fairness_weight = 1 },
                         order, gen);
}

/* The next task of a level by fairness: the oldest of the key with the smallest pass. */
static Task *level_first(Level *lv) {
        FairKey *best = lv->dflt.count ? &lv->dflt : NULL, *k;

        if (!lv->keys)
                return lv->head;
        LIST_FOREACH(keys, k, lv->keys)
                if (k->count && (!best || k->pass < best->pass ||
                                 (k->pass == best->pass && k->head->seq < best->head->seq)))
                        best = k;
        return best ? best->head : NULL;
}

/* The first task of @q in dispatch order: the highest level that holds one, by fairness. */
static Task *queue_first(Queue *q) {
        for (size_t l = 0; l < TASK_PRIORITY_LEVELS; l++)
                if (q->lv[l].head)
                        return level_first(&q->lv[l]);
        return NULL;
}

/* The first task of @q in dispatch order after the one @c was set to. Past the first (a task
 * the caller put back), tasks come in (level, seq) order: fairness picks only the first. */
static Task *queue_after(Queue *q, const TaskCursor *c) {
        if (c->priority == 0 && c->seq == 0)
                return queue_first(q);
        for (size_t l = c->priority; l < TASK_PRIORITY_LEVELS; l++)
                for (Task *t = q->lv[l].head; t; t = t->fifo_next)
                        if (l > c->priority || t->seq > c->seq)
                                return t;
        return NULL;
}

int taskset_pop(TaskSet *ts,
                TaskKind kind,
                const char *queue,
                TaskCursor *cursor,
                char ret_run_id[static 37],
                uint64_t *ret_ref) {
        Queue *q = queue_find(ts, kind, queue);
        Task *t;

        if (!q)
                return -ENOENT;
        t = queue_after(q, cursor);
        if (!t)
                return -ENOENT;
        if (journal_reserve(ts) < 0)
                return -ENOMEM;
        *cursor = (TaskCursor){ .priority = t->priority, .seq = t->seq };
        memcpy(ret_run_id, t->run_id, sizeof(t->run_id));
        *ret_ref = t->ref;
        task_dispatch(ts, t);
        return 0;
}

static void entry_fill(const Task *t, TaskEntry *ret) {
        *ret = (TaskEntry){ .order = t->order,
                            .seq = t->seq,
                            .ref = t->ref,
                            .gen = t->gen,
                            .priority = t->priority };
        memcpy(ret->run_id, t->run_id, sizeof(t->run_id));
}

int taskset_peek(TaskSet *ts, TaskKind kind, const char *queue, TaskEntry *ret) {
        Queue *q = queue_find(ts, kind, queue);
        Task *t = q ? queue_first(q) : NULL;

        if (!t)
                return -ENOENT;
        entry_fill(t, ret);
        return 0;
}

int taskset_take(TaskSet *ts, TaskKind kind, const char *queue, TaskEntry *ret) {
        Queue *q = queue_find(ts, kind, queue);
        Task *t = q ? queue_first(q) : NULL;

        if (!t)
                return -ENOENT;
        if (journal_reserve(ts) < 0)
                return -ENOMEM;
        entry_fill(t, ret);
        task_dispatch(ts, t);
        return 0;
}

int taskset_any(TaskSet *ts, TaskKind kind, const char *queue) {
        Queue *q = queue_find(ts, kind, queue);

        return q && q->count > 0;
}

size_t taskset_queue_count(TaskSet *ts, TaskKind kind, const char *queue, size_t ret_levels[]) {
        Queue *q = queue_find(ts, kind, queue);

        for (size_t l = 0; ret_levels && l < TASK_PRIORITY_LEVELS; l++)
                ret_levels[l] = q ? q->lv[l].count : 0;
        return q ? q->count : 0;
}

static Task *run_first(TaskSet *ts, const char *run_id) {
        for (Task *t = ts->buckets[string_hash(run_id) & (ts->n_buckets - 1)]; t; t = t->run_next)
                if (strcmp(t->run_id, run_id) == 0)
                        return t;
        return NULL;
}

static Task *task_find(TaskSet *ts, TaskKind kind, const char *run_id, uint64_t ref) {
        for (Task *t = run_first(ts, run_id); t; t = t->run_next)
                if (t->kind == kind && t->ref == ref && strcmp(t->run_id, run_id) == 0)
                        return t;
        return NULL;
}

int taskset_get(TaskSet *ts, TaskKind kind, const char *run_id, uint64_t ref, TaskEntry *ret) {
        Task *t = task_find(ts, kind, run_id, ref);

        if (!t)
                return -ENOENT;
        entry_fill(t, ret);
        return 0;
}

static int key_visit(FairKey *k, unsigned priority, taskset_key_cb cb, void *userdata) {
        return k->count > 0 ? cb(priority, k->name, k->count, userdata) : 0;
}

int taskset_queue_keys(
        TaskSet *ts, TaskKind kind, const char *queue, taskset_key_cb cb, void *userdata) {
        Queue *q = queue_find(ts, kind, queue);
        FairKey *k;
        int r;

        for (unsigned l = 0; q && l < TASK_PRIORITY_LEVELS; l++) {
                r = key_visit(&q->lv[l].dflt, l, cb, userdata);
                LIST_FOREACH(keys, k, q->lv[l].keys)
                        if (r >= 0)
                                r = key_visit(k, l, cb, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool taskset_delete(TaskSet *ts, TaskKind kind, const char *run_id, uint64_t ref) {
        Task *t = task_find(ts, kind, run_id, ref);

        if (!t || journal_reserve(ts) < 0)
                return false;
        task_remove(ts, t);
        return true;
}

void taskset_delete_run(TaskSet *ts, const char *run_id) {
        Task *t;

        /* Each removal changes the chain: start over from the first task of the run left. */
        while ((t = run_first(ts, run_id)) && journal_reserve(ts) >= 0)
                task_remove(ts, t);
}

size_t taskset_count(TaskSet *ts) {
        return ts->count;
}

int taskset_queues(TaskSet *ts, TaskKind kind, int (*cb)(const char *queue, void *userdata),
                   void *userdata) {
        for (Queue *q = ts->queues; q; q = q->next)
                if (q->kind == kind && q->count > 0) {
                        int r = cb(q->name, userdata);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int taskset_mark(TaskSet *ts) {
        if (grow((void **) &ts->marks, &ts->marks_alloc, ts->n_marks + 1, sizeof(size_t)) < 0)
                return -ENOMEM;
        ts->marks[ts->n_marks++] = ts->n_journal;
        return 0;
}

void taskset_release(TaskSet *ts) {
        if (ts->n_marks > 0)
                ts->n_marks--;
}

static void undo_to(TaskSet *ts, size_t to) {
        while (ts->n_journal > to) {
                Undo *u = &ts->journal[--ts->n_journal];

                if (u->inserted) {
                        task_unlink(ts, u->task);
                        free(u->task);
                        continue;
                }
                task_link(ts, u->task);
                if (u->charged) {
                        u->task->key->pass = u->pass;
                        u->task->key->level->vtime = u->vtime;
                }
        }
}

void taskset_rollback_to_mark(TaskSet *ts) {
        if (ts->n_marks == 0)
                return;
        undo_to(ts, ts->marks[--ts->n_marks]);
}

void taskset_commit(TaskSet *ts) {
        for (size_t i = 0; i < ts->n_journal; i++)
                if (!ts->journal[i].inserted)
                        free(ts->journal[i].task);
        ts->n_journal = ts->n_marks = 0;
        keys_sweep(ts);
}

void taskset_rollback(TaskSet *ts) {
        undo_to(ts, 0);
        ts->n_marks = 0;
        keys_sweep(ts);
}
