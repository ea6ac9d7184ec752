/* Task queues: parked polls, pending queries, and matching them to tasks; see taskq.h. */

#include "daemon/taskq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/clock.h"
#include "daemon/conn.h"
#include "daemon/flow.h"
#include "daemon/history.h"

TaskQueue *taskq_get(Manager *m, const char *name, bool create) {
        TaskQueue *q;

        LIST_FOREACH(queues, q, m->queues)
                if (streq(q->name, name))
                        return q;
        if (!create)
                return NULL;
        q = calloc(1, sizeof(*q));
        if (!q)
                return NULL;
        q->name = strdup(name);
        if (!q->name) {
                free(q);
                return NULL;
        }
        LIST_PREPEND(queues, m->queues, q);
        return q;
}

void taskq_mark_dirty(Manager *m, const char *name) {
        TaskQueue *q = taskq_get(m, name, false);

        /* A queue nobody polls needs no dispatch: the first poll finds its tasks. */
        if (!q)
                return;
        q->dirty = true;
        m->dispatch_pending = true;
}

void taskq_mark_all_dirty(Manager *m) {
        TaskQueue *q;

        LIST_FOREACH(queues, q, m->queues)
                q->dirty = true;
        m->dispatch_pending = true;
        manager_kick(m);
}

static Poll *poll_free(Poll *p) {
        if (!p)
                return NULL;
        if (p->queue)
                LIST_REMOVE(polls, p->queue->polls[p->kind], p);
        if (p->conn)
                p->conn->n_polls--;
        sd_event_source_disable_unref(p->timer);
        free(p->identity);
        free(p);
        return NULL;
}

static void poll_answer_nil(Poll *p) {
        msgpack_packer *pk;
        size_t start;

        pk = conn_reply_begin(p->conn, p->req_id, 1, &start);
        (void) msg_pack_str(pk, "task");
        (void) msgpack_pack_nil(pk);
        conn_reply_end(p->conn, p->req_id, start);
}

static int poll_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Poll *p = userdata;

        poll_answer_nil(p);
        poll_free(p);
        return 0;
}

int taskq_add_poll(Manager *m,
                   Conn *c,
                   uint64_t req_id,
                   TaskKind kind,
                   const char *queue,
                   const char *identity,
                   uint64_t timeout_usec) {
        TaskQueue *q;
        Poll *p;
        int r;

        if (c->n_polls >= m->cfg.max_polls_per_connection)
                return -EUSERS;
        q = taskq_get(m, queue, true);
        if (!q)
                return -ENOMEM;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->identity = strdup(identity);
        if (!p->identity) {
                free(p);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(m->event, &p->timer, CLOCK_MONOTONIC, timeout_usec,
                                       10 * 1000, poll_on_timeout, p);
        if (r < 0) {
                free(p->identity);
                free(p);
                return r;
        }
        p->conn = c;
        p->req_id = req_id;
        p->kind = kind;
        p->queue = q;
        c->n_polls++;
        LIST_APPEND(polls, q->polls[kind], p);
        q->dirty = true;
        m->dispatch_pending = true;
        return 0;
}

void taskq_shutdown_polls(Manager *m, Conn *c) {
        TaskQueue *q;
        Poll *p, *n;

        LIST_FOREACH(queues, q, m->queues)
                for (int k = 0; k < _TASK_KIND_MAX; k++)
                        LIST_FOREACH_SAFE(polls, p, n, q->polls[k])
                                if (p->conn == c) {
                                        poll_answer_nil(p);
                                        poll_free(p);
                                }
}

/* ---- queries ---- */

Query *query_free(Query *q) {
        if (!q)
                return NULL;
        if (q->worker)
                LIST_REMOVE(queries, q->manager->queries, q);
        else if (q->queue)
                LIST_REMOVE(queries, q->queue->pending, q);
        sd_event_source_disable_unref(q->timer);
        free(q->query_type);
        free(q->input.ptr);
        free(q->update_id);
        free(q->identity);
        free(q);
        return NULL;
}

static int query_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Query *q = userdata;

        const char *what = q->update_id ? "validate the update" : "answer the query";
        char msg[160];

        if (q->worker)
                (void) snprintf(msg, sizeof(msg), "the worker did not %s in time", what);
        else
                (void) snprintf(msg, sizeof(msg),
                                "no worker polled the workflow's task queue in time to %s%s", what,
                                q->update_id ? " (nothing was recorded)" : "");
        conn_reply_error(q->caller, q->caller_req, -ETIMEDOUT, msg);
        query_free(q);
        return 0;
}

static int query_new(Manager *m,
                     Conn *caller,
                     uint64_t req_id,
                     const RunRow *run,
                     const char *query_type,
                     const MsgBin *input,
                     uint64_t timeout_usec,
                     Query **ret) {
        Query *q;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->manager = m;
        q->id = ++m->next_query_id;
        q->caller = caller;
        q->caller_req = req_id;
        memcpy(q->run_id, run->run_id, 37);
        q->query_type = strdup(query_type);
        q->queue = taskq_get(m, run->task_queue, true);
        if (!q->query_type || !q->queue) {
                q->queue = NULL;
                query_free(q);
                return -ENOMEM;
        }
        if (blob_copy(input->ptr, input->size, &q->input) < 0) {
                q->queue = NULL;
                query_free(q);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(m->event, &q->timer, CLOCK_MONOTONIC, timeout_usec,
                                       10 * 1000, query_on_timeout, q);
        if (r < 0) {
                q->queue = NULL;
                query_free(q);
                return r;
        }
        LIST_APPEND(queries, q->queue->pending, q);
        q->queue->dirty = true;
        m->dispatch_pending = true;
        *ret = q;
        return 0;
}

int taskq_add_query(Manager *m,
                    Conn *caller,
                    uint64_t req_id,
                    const RunRow *run,
                    const char *query_type,
                    const MsgBin *input,
                    uint64_t timeout_usec) {
        Query *q;

        return query_new(m, caller, req_id, run, query_type, input, timeout_usec, &q);
}

int taskq_add_update(Manager *m,
                     Conn *caller,
                     uint64_t req_id,
                     const RunRow *run,
                     const UpdateRequest *req,
                     uint64_t timeout_usec,
                     Query **ret) {
        Query *q;
        int r;

        r = query_new(m, caller, req_id, run, req->name, &req->input, timeout_usec, &q);
        if (r < 0)
                return r;
        q->update_id = strdup(req->update_id);
        q->identity = req->identity ? strdup(req->identity) : NULL;
        if (!q->update_id || (req->identity && !q->identity)) {
                query_free(q);
                return -ENOMEM;
        }
        q->caller_uid = caller->cred.uid;
        *ret = q;
        return 0;
}

static unsigned count_updates(Query *list, const char *run_id) {
        unsigned n = 0;
        Query *q;

        LIST_FOREACH(queries, q, list)
                n += q->update_id && streq(q->run_id, run_id);
        return n;
}

unsigned taskq_count_updates(Manager *m, const char *run_id) {
        unsigned n = count_updates(m->queries, run_id);
        TaskQueue *tq;

        LIST_FOREACH(queues, tq, m->queues)
                n += count_updates(tq->pending, run_id);
        return n;
}

Query *taskq_find_query(Manager *m, uint64_t query_id) {
        Query *q;

        LIST_FOREACH(queries, q, m->queries)
                if (q->id == query_id)
                        return q;
        return NULL;
}

/* DESIGN.md §10: a worker that does not administer durabled gets only tasks of workflows its own
 * user started. */
static bool poll_may_take(const Poll *p, uint32_t run_uid) {
        return p->conn->admin || p->conn->cred.uid == run_uid;
}

/* A query task carries the history like a workflow task, but changes nothing. A query waits
 * while its run has a workflow task scheduled or started, so that it sees every event recorded
 * before it was asked (a signal, an activity result), as Temporal's consistent queries do: the
 * queue is marked dirty again when that task closes (history.c). Returns 1 when dispatched, 0
 * when deferred or answered with an error. */
static int dispatch_query(Manager *m, Query *q) {
        _cleanup_(run_row_done) RunRow run = {};
        Poll *p = NULL, *i;
        msgpack_packer *pk;
        size_t start;
        uint64_t from;
        int r;

        r = store_run_get(m->store, q->run_id, &run);
        if (r < 0) {
                conn_reply_error(q->caller, q->caller_req, r, "the workflow's run disappeared");
                query_free(q);
                return 0;
        }
        if (run.status == WORKFLOW_STATUS_RUNNING && run.wft_state != WFT_NONE)
                return 0;
        /* The worker that caches the run if it waits, else the oldest one allowed to see it. */
        LIST_FOREACH(polls, i, q->queue->polls[TASK_WORKFLOW])
                if (poll_may_take(i, run.uid) && (!p || i->conn->serial == run.sticky_conn))
                        p = i;
        if (!p)
                return 0;
        from = run.sticky_conn == p->conn->serial && run.sticky_next_id ? run.sticky_next_id : 1;
        pk = conn_reply_begin(p->conn, p->req_id, 1, &start);
        (void) msg_pack_str(pk, "task");
        (void) msgpack_pack_map(pk, q->update_id ? 12 : 11);
        (void) msg_pack_kv_str(pk, "kind", q->update_id ? "update" : "query");
        if (q->update_id)
                (void) msg_pack_kv_str(pk, "update_id", q->update_id);
        (void) msg_pack_kv_str(pk, "workflow_id", run.workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", run.run_id);
        (void) msg_pack_kv_str(pk, "workflow_type", run.workflow_type);
        (void) msg_pack_kv_str(pk, "task_queue", run.task_queue);
        (void) msg_pack_kv_uint(pk, "attempt", 1);
        (void) msg_pack_kv_uint(pk, "next_event_id", run.next_event_id);
        (void) msg_pack_kv_uint(pk, "query_id", q->id);
        (void) msg_pack_kv_str(pk, "query_type", q->query_type);
        (void) msg_pack_str(pk, "query_input");
        if (q->input.ptr)
                (void) msg_pack_bin(pk, q->input.ptr, q->input.size);
        else
                (void) msgpack_pack_nil(pk);
        (void) msg_pack_str(pk, "events");
        r = history_pack_events(m, &run, from, pk);
        if (r < 0)
                return r; /* leaves a half-built frame: the caller fails the pass */
        conn_reply_end(p->conn, p->req_id, start);

        LIST_REMOVE(queries, q->queue->pending, q);
        q->worker = p->conn;
        LIST_PREPEND(queries, m->queries, q);
        poll_free(p);
        return 1;
}

/* The poll to hand a task of @run_id to, or NULL when no parked poll may take it: the connection
 * that ran the run's last workflow task has it cached (sticky execution), so it gets the task
 * when it is waiting; else the oldest poll allowed to. */
static Poll *choose_poll(Manager *m, TaskQueue *q, TaskKind kind, const char *run_id) {
        uint64_t sticky = 0;
        uint32_t uid = 0;
        Poll *p;

        if (store_run_dispatch_info(m->store, run_id, &sticky, &uid) < 0)
                return q->polls[kind]; /* the run is gone: the task is stale, any poll drops it */
        if (kind == TASK_WORKFLOW && sticky)
                LIST_FOREACH(polls, p, q->polls[kind])
                        if (p->conn->serial == sticky && poll_may_take(p, uid))
                                return p;
        LIST_FOREACH(polls, p, q->polls[kind])
                if (poll_may_take(p, uid))
                        return p;
        return NULL;
}

/* Whether the limits of the fairness key and type of the activity task (@run_id, @ref) admit it:
 * 1 yes, 0 no, -errno. Only a queue with scoped limits (flow.h) reads the activity, into
 * @scoped (its key and type then go to flow_dispatched()). */
static int scope_admit(Manager *m,
                       TaskQueue *q,
                       TaskKind kind,
                       const char *run_id,
                       uint64_t ref,
                       ActivityRow *scoped) {
        int r;

        activity_row_done(scoped);
        *scoped = (ActivityRow){};
        if (kind != TASK_ACTIVITY || !m->flows || !flow_queue_scoped(m, q->name))
                return 1;
        r = store_activity_get(m->store, run_id, ref, scoped);
        if (r == -ENOENT)
                return 1; /* a stale task: history_start_activity_task() drops it */
        if (r < 0)
                return r;
        if (!scoped->fairness_key) {
                scoped->fairness_key = strdup("");
                if (!scoped->fairness_key)
                        return -ENOMEM;
        }
        return flow_admit_task(m, q->name, scoped->fairness_key, scoped->activity_type) ==
               FLOW_ADMIT;
}

/* Hands one task of @kind to the first poll; 0 when there was nothing to hand, 1 when one was
 * handed, -errno on failure. */
static int dispatch_task(Manager *m, TaskQueue *q, TaskKind kind) {
        _cleanup_(activity_row_done) ActivityRow scoped = {};
        char run_id[37];
        Poll *p;
        TaskCursor seq = {};
        uint64_t ref;
        msgpack_packer *pk;
        size_t start, mark;
        int r;

        for (;;) {
                r = store_task_any(m->store, kind, q->name);
                if (r <= 0)
                        return r;
                /* Flow control (flow.h): the task waits in its place. */
                if (kind == TASK_ACTIVITY && flow_admit(m, q->name) != FLOW_ADMIT)
                        return 0;
                r = store_savepoint(m->store);
                if (r < 0)
                        return r;
                r = store_task_pop(m->store, kind, q->name, &seq, run_id, &ref);
                if (r == -ENOENT) {
                        (void) store_release(m->store);
                        return 0;
                }
                if (r < 0)
                        break;
                r = scope_admit(m, q, kind, run_id, ref, &scoped);
                if (r < 0)
                        break;
                if (r == 0) {
                        /* Its fairness key's or type's limits hold it back: it stays in its
                         * place and the cursor carries on after it (flow.h). */
                        store_rollback_to(m->store);
                        continue;
                }
                p = choose_poll(m, q, kind, run_id);
                if (!p) {
                        /* Only other users' workers wait: the task stays where it is, for a
                         * worker of its own user; the next one may be theirs. */
                        store_rollback_to(m->store);
                        continue;
                }
                mark = p->conn->held.sb.size;
                pk = conn_reply_begin(p->conn, p->req_id, 1, &start);
                (void) msg_pack_str(pk, "task");
                m->actor_uid = p->conn->cred.uid;
                if (kind == TASK_WORKFLOW)
                        r = history_start_workflow_task(m, run_id, ref, p->identity,
                                                        p->conn->serial, pk);
                else
                        r = history_start_activity_task(m, run_id, ref, p->identity, pk);
                if (r >= 0) {
                        conn_reply_end(p->conn, p->req_id, start);
                        (void) store_release(m->store);
                        poll_free(p);
                        if (kind == TASK_ACTIVITY)
                                flow_dispatched(m, q->name, scoped.fairness_key,
                                                scoped.activity_type);
                        activity_row_done(&scoped);
                        return 1;
                }
                p->conn->held.sb.size = mark; /* drop the half-built answer */
                if (r != -ESTALE)
                        break;
                (void) store_release(m->store); /* a stale task row is simply dropped */
        }
        store_rollback_to(m->store);
        return r;
}

static int dispatch_queue(Manager *m, TaskQueue *q) {
        Query *qu, *next;
        int r;

        LIST_FOREACH_SAFE(queries, qu, next, q->pending) {
                if (!q->polls[TASK_WORKFLOW])
                        break;
                r = dispatch_query(m, qu);
                if (r < 0)
                        return r;
        }
        for (int k = 0; k < _TASK_KIND_MAX; k++)
                while (q->polls[k]) {
                        r = dispatch_task(m, q, (TaskKind) k);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                }
        return 0;
}

int taskq_dispatch(Manager *m) {
        TaskQueue *q;
        int r;

        flow_note_released(m);
        if (!m->dispatch_pending)
                return 0;
        m->dispatch_pending = false;
        LIST_FOREACH(queues, q, m->queues) {
                if (!q->dirty)
                        continue;
                q->dirty = false;
                r = dispatch_queue(m, q);
                if (r < 0)
                        return log_error_errno(r, "Failed to dispatch tasks of queue '%s': %m",
                                               q->name);
        }
        return 0;
}

static size_t count_polls(const TaskQueue *q, TaskKind kind) {
        size_t n = 0;

        if (q)
                for (const Poll *p = q->polls[kind]; p; p = p->polls_next)
                        n++;
        return n;
}

#define DESCRIBE_KEYS_MAX 100

typedef struct KeyCounts {
        size_t n;
        struct {
                unsigned priority;
                const char *key;
                size_t count;
        } v[DESCRIBE_KEYS_MAX];
} KeyCounts;

static int collect_key(unsigned priority, const char *key, size_t count, void *userdata) {
        KeyCounts *k = userdata;

        if (k->n >= DESCRIBE_KEYS_MAX)
                return -ENOBUFS; /* enough to show */
        k->v[k->n].priority = priority;
        k->v[k->n].key = key;
        k->v[k->n++].count = count;
        return 0;
}

/* The backlog per (priority key, fairness key), the first DESCRIBE_KEYS_MAX of them. */
static void pack_keys(Manager *m, TaskKind kind, const char *queue, msgpack_packer *pk) {
        KeyCounts k = {};

        (void) store_task_keys(m->store, kind, queue, collect_key, &k);
        (void) msg_pack_str(pk, "backlog_by_fairness_key");
        (void) msgpack_pack_array(pk, k.n);
        for (size_t i = 0; i < k.n; i++) {
                (void) msgpack_pack_map(pk, 3);
                (void) msg_pack_kv_uint(pk, "priority", k.v[i].priority);
                (void) msg_pack_kv_str(pk, "fairness_key", k.v[i].key);
                (void) msg_pack_kv_uint(pk, "backlog", k.v[i].count);
        }
}

static size_t
pack_backlog(Manager *m, const TaskQueue *q, TaskKind kind, const char *queue, msgpack_packer *pk) {
        size_t levels[TASK_PRIORITY_LEVELS], n;

        n = store_task_count(m->store, kind, queue, levels);
        (void) msg_pack_kv_uint(pk, "backlog", n);
        /* Activities of a queue's types that units declare wait in their unit's queue. */
        (void) msg_pack_str(pk, "backlog_by_priority");
        (void) msgpack_pack_array(pk, TASK_PRIORITY_LOWEST);
        for (unsigned l = TASK_PRIORITY_HIGHEST; l <= TASK_PRIORITY_LOWEST; l++)
                (void) msgpack_pack_uint64(pk, levels[l]);
        pack_keys(m, kind, queue, pk);
        (void) msg_pack_kv_uint(pk, "pollers", count_polls(q, kind));
        return n;
}

void taskq_pack_describe(Manager *m, const char *queue, msgpack_packer *pk) {
        const TaskQueue *q = taskq_get(m, queue, false);
        Flow *f = flow_find(m, queue);
        size_t running = store_task_count(m->store, TASKSET_STARTED, queue, NULL), backlog;
        const char *state = "none";

        (void) msg_pack_str(pk, "workflow_tasks");
        (void) msgpack_pack_map(pk, 4);
        (void) pack_backlog(m, q, TASK_WORKFLOW, queue, pk);
        (void) msg_pack_str(pk, "activity_tasks");
        (void) msgpack_pack_map(pk, 5);
        backlog = pack_backlog(m, q, TASK_ACTIVITY, queue, pk);
        (void) msg_pack_kv_uint(pk, "running", running);
        if (f && backlog > 0 && f->limits.concurrency && running >= f->limits.concurrency)
                state = "concurrency";
        else if (f && backlog > 0 && f->limits.rate && f->timer &&
                 sd_event_source_get_enabled(f->timer, NULL) > 0)
                state = "rate";
        (void) msg_pack_str(pk, "throttled");
        (void) msgpack_pack_map(pk, 3);
        (void) msg_pack_kv_str(pk, "by", state);
        (void) msg_pack_kv_uint(pk, "held_by_concurrency", f ? f->held_concurrency : 0);
        (void) msg_pack_kv_uint(pk, "held_by_rate", f ? f->held_rate : 0);
}

void taskq_forget_conn(Manager *m, Conn *c) {
        TaskQueue *q;
        Query *qu, *n;
        Poll *p, *pn;

        LIST_FOREACH(queues, q, m->queues) {
                for (int k = 0; k < _TASK_KIND_MAX; k++)
                        LIST_FOREACH_SAFE(polls, p, pn, q->polls[k])
                                if (p->conn == c)
                                        poll_free(p);
                LIST_FOREACH_SAFE(queries, qu, n, q->pending)
                        if (qu->caller == c)
                                query_free(qu);
        }
        LIST_FOREACH_SAFE(queries, qu, n, m->queries) {
                if (qu->caller == c) {
                        query_free(qu);
                        continue;
                }
                if (qu->worker == c) {
                        /* Its worker is gone: another worker can answer it. */
                        LIST_REMOVE(queries, m->queries, qu);
                        qu->worker = NULL;
                        LIST_APPEND(queries, qu->queue->pending, qu);
                        qu->queue->dirty = true;
                        m->dispatch_pending = true;
                }
        }
}

void taskq_free_all(Manager *m) {
        TaskQueue *q;

        while (m->queries)
                query_free(m->queries);
        while ((q = m->queues)) {
                for (int k = 0; k < _TASK_KIND_MAX; k++)
                        while (q->polls[k])
                                poll_free(q->polls[k]);
                while (q->pending)
                        query_free(q->pending);
                LIST_REMOVE(queues, m->queues, q);
                free(q->name);
                free(q);
        }
}
