/* The worker (durable.h "Worker"): polls a task queue and runs registered workflows and
 * activities.
 *
 * Threads, each with its own Conn (a Conn has one reader):
 *  - opts.workflow_threads threads each process workflow tasks one after the other:
 *    PollWorkflowTask → replay (replay.c) → CompleteWorkflowTask / FailWorkflowTask /
 *    RespondQueryTask. While one waits for its answer (a commit), the others work: that is what
 *    lets the daemon's group commit batch many workflows in one fsync;
 *  - opts.activity_threads threads run PollActivityTask → function → report (activity.c);
 *  - each polling thread sends its next poll in the same write as the answer to its task (the
 *    Conn's rider, conn.h), so that the daemon can hand it the next task in the pass that commits
 *    the answer; a thread that stops still collects that poll's answer;
 *  - a stopper thread sleeps on an eventfd. dur_worker_stop() only sets a flag and writes to the
 *    eventfd (both async-signal-safe); the stopper then sends ShutdownWorker on every Conn, which
 *    makes the daemon answer the parked polls with "task: nil". Threads finish the task in hand,
 *    see the flag and leave. The stopper repeats ShutdownWorker every second until all are gone,
 *    because a poll sent just after a ShutdownWorker is parked again.
 *
 * Reconnection: once the worker has been connected, a polling thread that loses its connection
 * (the daemon stopped or restarts) drops its Conn and reconnects with backoff (100 ms doubling to
 * 2 s) until it succeeds or dur_worker_stop() is called, which also cuts the wait short. A task in
 * hand whose answer could not be sent is dropped: the daemon times it out and retries it
 * (activities are at-least-once; a workflow task is simply replayed).
 *
 * Sticky cache: up to max_cached_workflows Runs stay in memory (split between the workflow
 * threads; each thread caches the runs it ran, and the daemon hands a run's next task to the
 * connection that ran the last one when it polls), most recently used first, so that a task only
 * replays the events it brings. A run that failed a task, whose answer was refused, or
 * that closed is dropped: its next task (if any) replays from the first event. */

#define _GNU_SOURCE 1 /* asprintf() */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/list.h"
#include "libclient/activity.h"
#include "libclient/conn.h"
#include "libclient/logging.h"
#include "libclient/object.h"
#include "libclient/replay.h"
#include "proto/msg.h"

#define ACTIVITY_THREADS_DEFAULT 32
#define MAX_CACHED_DEFAULT 1000
#define WORKFLOW_THREADS_DEFAULT 16
#define SHUTDOWN_RESEND_USEC (1000 * 1000)
#define POLL_RETRY_USEC (1000 * 1000)
#define RECONNECT_MIN_USEC (100 * 1000)
#define RECONNECT_MAX_USEC (2000 * 1000)

typedef struct CachedRun CachedRun;
struct CachedRun {
        Run *run;
        char *run_id;
        LIST_FIELDS(CachedRun, lru);
};

/* One workflow thread's cache. Runs never move between threads: a coroutine suspended on one
 * thread is resumed on the same one (thread-local state, ASan's fiber bookkeeping). */
typedef struct Cache {
        CachedRun *lru;
        size_t n;
        size_t max;
} Cache;

struct dur_worker {
        char *socket_path;
        char *task_queue;
        char *identity;
        unsigned activity_threads;
        unsigned workflow_threads;
        unsigned max_cached;
        const dur_workflow_def **workflows;
        size_t n_workflows;
        const dur_activity_def **activities;
        size_t n_activities;

        int stop_fd; /* eventfd written by dur_worker_stop() */
        atomic_int stop_requested;
        atomic_bool connected; /* a polling thread got connected once: losses are retried */

        pthread_mutex_t lock;   /* protects what follows */
        pthread_cond_t changed; /* a polling thread left, or the stopper saw a stop request
                                  * (CLOCK_MONOTONIC) */
        Conn **conns;           /* the polling threads' Conns, for ShutdownWorker */
        size_t n_conns;
        unsigned alive; /* polling threads still running */
        int error;      /* first fatal error (lost connection) */
};

/* ---- setup ----------------------------------------------------------------------------------- */

DEFINE_CLEANUP(dur_worker, dur_worker_free);

static int default_identity(char **ret) {
        char host[256] = "localhost";

        (void) gethostname(host, sizeof(host) - 1);
        if (asprintf(ret, "%s:%d", host, (int) getpid()) < 0)
                return -ENOMEM;
        return 0;
}

DUR_PUBLIC int dur_worker_new(dur_worker **ret, const dur_worker_opts *opts) {
        _cleanup_(dur_worker_freep) dur_worker *w = NULL;
        pthread_condattr_t attr;

        assert_return(ret && opts && opts->task_queue && *opts->task_queue, -EINVAL);
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->stop_fd = -EBADF;
        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_init(&attr);
        (void) pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->changed, &attr);
        pthread_condattr_destroy(&attr);
        w->activity_threads = opts->activity_threads ?: ACTIVITY_THREADS_DEFAULT;
        w->workflow_threads = opts->workflow_threads ?: WORKFLOW_THREADS_DEFAULT;
        w->max_cached = opts->max_cached_workflows ?: MAX_CACHED_DEFAULT;
        w->task_queue = strdup(opts->task_queue);
        w->socket_path = opts->socket_path ? strdup(opts->socket_path) : NULL;
        if (!w->task_queue || (opts->socket_path && !w->socket_path))
                return -ENOMEM;
        if (opts->identity)
                w->identity = strdup(opts->identity);
        else if (default_identity(&w->identity) < 0)
                w->identity = NULL;
        if (!w->identity)
                return -ENOMEM;
        w->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (w->stop_fd < 0)
                return -errno;
        *ret = TAKE_PTR(w);
        return 0;
}

DUR_PUBLIC dur_worker *dur_worker_free(dur_worker *w) {
        if (!w)
                return NULL;
        safe_close(w->stop_fd);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->changed);
        free(w->conns);
        free(w->workflows);
        free(w->activities);
        free(w->identity);
        free(w->task_queue);
        free(w->socket_path);
        free(w);
        return NULL;
}

/* Appends @item to the array *@array of *@n pointers. */
static int append_ptr(void *array, size_t *n, const void *item) {
        const void **a = *(const void ***) array;

        a = realloc(a, (*n + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        a[(*n)++] = item;
        *(const void ***) array = a;
        return 0;
}

DUR_PUBLIC int dur_worker_register_workflow(dur_worker *w, const dur_workflow_def *def) {
        assert_return(w && def && def->name && def->run, -EINVAL);
        for (size_t i = 0; i < w->n_workflows; i++)
                if (streq(w->workflows[i]->name, def->name))
                        return -EEXIST;
        return append_ptr(&w->workflows, &w->n_workflows, def);
}

DUR_PUBLIC int dur_worker_register_activity(dur_worker *w, const dur_activity_def *def) {
        assert_return(w && def && def->name && def->fn, -EINVAL);
        for (size_t i = 0; i < w->n_activities; i++)
                if (streq(w->activities[i]->name, def->name))
                        return -EEXIST;
        return append_ptr(&w->activities, &w->n_activities, def);
}

/* ---- stopping -------------------------------------------------------------------------------- */

DUR_PUBLIC void dur_worker_stop(dur_worker *w) {
        uint64_t one = 1;
        int saved = errno;

        if (!w)
                return;
        atomic_store(&w->stop_requested, 1);
        (void) !write(w->stop_fd, &one, sizeof(one));
        errno = saved;
}

static bool stopping(dur_worker *w) {
        return atomic_load(&w->stop_requested) != 0;
}

/* The CLOCK_MONOTONIC time @usec from now, for pthread_cond_timedwait() on w->changed. */
static struct timespec deadline_in(uint64_t usec) {
        struct timespec ts;
        uint64_t ns;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        ns = (uint64_t) ts.tv_nsec + usec % 1000000 * 1000;
        ts.tv_sec += (time_t) (usec / 1000000 + ns / 1000000000);
        ts.tv_nsec = (long) (ns % 1000000000);
        return ts;
}

/* Sleeps @usec, returning early when dur_worker_stop() is called: the stopper broadcasts
 * w->changed once it saw the request, and stopping() is checked under the lock. */
static void wait_unless_stopped(dur_worker *w, uint64_t usec) {
        struct timespec deadline = deadline_in(usec);

        pthread_mutex_lock(&w->lock);
        while (!stopping(w) && pthread_cond_timedwait(&w->changed, &w->lock, &deadline) == 0)
                ;
        pthread_mutex_unlock(&w->lock);
}

/* A polling thread hit a fatal error: remember the first one and stop the whole worker. */
static void worker_abort(dur_worker *w, int error) {
        pthread_mutex_lock(&w->lock);
        if (w->error == 0)
                w->error = error;
        pthread_mutex_unlock(&w->lock);
        dur_worker_stop(w);
}

static void send_shutdown(Conn *c) {
        Request req;

        request_init(&req, c, "ShutdownWorker", 0);
        (void) conn_send_only(c, &req);
        request_done(&req);
}

static void *stopper_main(void *userdata) {
        dur_worker *w = userdata;
        uint64_t v;

        while (!stopping(w))
                if (read(w->stop_fd, &v, sizeof(v)) < 0 && errno != EINTR)
                        break;
        pthread_mutex_lock(&w->lock);
        /* Wakes the threads waiting to reconnect (they check stopping() under the lock). */
        pthread_cond_broadcast(&w->changed);
        while (w->alive > 0) {
                struct timespec deadline = deadline_in(SHUTDOWN_RESEND_USEC);

                for (size_t i = 0; i < w->n_conns; i++)
                        send_shutdown(w->conns[i]);
                (void) pthread_cond_timedwait(&w->changed, &w->lock, &deadline);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* A polling thread's Conn, registered so that the stopper can wake its parked poll. */
static int poller_connect(dur_worker *w, Conn **ret) {
        Conn *c;
        int k;

        k = conn_connect(&c, w->socket_path);
        if (k < 0)
                return k;
        pthread_mutex_lock(&w->lock);
        k = append_ptr(&w->conns, &w->n_conns, c);
        pthread_mutex_unlock(&w->lock);
        if (k < 0) {
                conn_free(c);
                return k;
        }
        atomic_store(&w->connected, true);
        *ret = c;
        return 0;
}

/* Unregisters and frees *@c (may be NULL). */
static void poller_disconnect(dur_worker *w, Conn **c) {
        pthread_mutex_lock(&w->lock);
        for (size_t i = 0; *c && i < w->n_conns; i++)
                if (w->conns[i] == *c) {
                        w->conns[i] = w->conns[--w->n_conns];
                        break;
                }
        pthread_mutex_unlock(&w->lock);
        *c = conn_free(*c);
}

static void poller_exit(dur_worker *w, Conn *c) {
        poller_disconnect(w, &c);
        pthread_mutex_lock(&w->lock);
        w->alive--;
        pthread_cond_broadcast(&w->changed);
        pthread_mutex_unlock(&w->lock);
}

/* The daemon went away (stopped, restarting, crashed): connect() finds no socket or no listener,
 * or the connection broke. The Conn layer reports a broken connection as -ECONNRESET; no error
 * answer maps to these codes, except "not_found" (-ENOENT), which a poll never gets. */
static bool connection_lost(int k) {
        return k == -ECONNRESET || k == -EPIPE || k == -ECONNREFUSED || k == -ENOENT;
}

/* The daemon is short of something (polls, memory, disk): worth another try later. */
static bool poll_error_transient(const Conn *c) {
        const char *code = conn_error_code(c);

        return code && (streq(code, "resource_exhausted") || streq(code, "unavailable"));
}

static void poll_request(dur_worker *w, Conn *c, const char *op, Request *req) {
        request_init(req, c, op, 2);
        (void) msg_pack_kv_str(&req->pk, "task_queue", w->task_queue);
        (void) msg_pack_kv_str(&req->pk, "identity", w->identity);
}

/* Polls, or collects the answer to the poll @sent (its id) that rode on the last task's answer,
 * and returns its "task" map in *ret_task (NULL when nil); @answer holds it. */
static int poll_task(dur_worker *w,
                     Conn *c,
                     const char *op,
                     uint64_t sent,
                     msgpack_unpacked *answer,
                     const msgpack_object **ret_task) {
        Request req;
        int k;

        if (sent)
                k = conn_await(c, sent, answer);
        else {
                poll_request(w, c, op, &req);
                k = conn_call(c, &req, answer);
                request_done(&req);
        }
        if (k < 0 && poll_error_transient(c)) {
                dur_log(LOG_WARNING, "Polling task queue '%s' (%s) was refused, retrying: %s",
                        w->task_queue, op, conn_error_message(c) ?: conn_error_code(c));
                wait_unless_stopped(w, POLL_RETRY_USEC);
                msgpack_unpacked_init(answer);
                *ret_task = NULL;
                return 0;
        }
        if (k < 0 && !(connection_lost(k) && !conn_error_code(c)))
                return dur_log_errno(LOG_ERR, k, "Failed to poll task queue '%s' (%s): %m",
                                     w->task_queue, op);
        if (k < 0)
                return k;
        *ret_task = msg_get(&answer->data, "task");
        return 0;
}

/* ---- polling threads ------------------------------------------------------------------------ */

/* @state is the polling thread's own (a workflow thread's cache). */
typedef int (*task_handler)(dur_worker *w, Conn *c, const msgpack_object *task, void *state);

/* One poll, and the task it brought if any. *@sent is the id of a poll already sent (0: none),
 * and on return that of the next poll, which rode on the task's answer (conn_set_rider()); none
 * rides once the worker is stopping. */
static int
poll_once(dur_worker *w, Conn *c, const char *op, task_handler handle, void *state, uint64_t *sent) {
        const msgpack_object *task = NULL;
        msgpack_unpacked answer;
        Request next;
        int k;

        k = poll_task(w, c, op, *sent, &answer, &task);
        *sent = 0;
        if (k < 0)
                return k;
        if (task) {
                bool ride = !stopping(w);

                if (ride) {
                        poll_request(w, c, op, &next);
                        conn_set_rider(c, &next);
                }
                k = handle(w, c, task, state);
                if (ride) {
                        *sent = conn_clear_rider(c);
                        request_done(&next);
                }
        }
        msgpack_unpacked_destroy(&answer);
        return k;
}

/* A polling thread: polls with @op and hands each task to @handle until dur_worker_stop().
 * A lost connection (in the poll, or while the task in hand was answered) is dropped and
 * reconnected after a backoff; any other error stops the whole worker. So does a failure of the
 * very first connection: a wrong socket path is reported, not waited for. */
static void poller_main(dur_worker *w, const char *op, task_handler handle, void *state) {
        uint64_t backoff = RECONNECT_MIN_USEC, sent = 0;
        Conn *c = NULL;
        int k = 0;

        /* A poll that rode on the last answer is collected even when stopping: the stopper's
         * ShutdownWorker answers it at once, or it brought a task, which is worked on as one
         * polled just before the stop would be. */
        while (!stopping(w) || sent) {
                k = c ? 0 : poller_connect(w, &c);
                if (k >= 0)
                        k = poll_once(w, c, op, handle, state, &sent);
                if (k >= 0) {
                        backoff = RECONNECT_MIN_USEC;
                        continue;
                }
                sent = 0; /* the connection is dropped, and the poll with it */
                if (!connection_lost(k) || !atomic_load(&w->connected)) {
                        if (!c)
                                dur_log_errno(LOG_ERR, k, "Failed to connect to durabled: %m");
                        break;
                }
                if (c) {
                        dur_log(LOG_WARNING, "Lost the connection to durabled (%s); reconnecting",
                                strerror(-k));
                        poller_disconnect(w, &c);
                }
                wait_unless_stopped(w, backoff);
                backoff = MIN(2 * backoff, (uint64_t) RECONNECT_MAX_USEC);
                k = 0;
        }
        if (k < 0)
                worker_abort(w, k);
        poller_exit(w, c);
}

static int activity_task_handle(dur_worker *w, Conn *c, const msgpack_object *task, void *state) {
        return activity_task_run(c, w->activities, w->n_activities, task);
}

static void *activity_thread_main(void *userdata) {
        poller_main(userdata, "PollActivityTask", activity_task_handle, NULL);
        return NULL;
}

/* ---- the sticky cache ------------------------------------------------------------------------ */

static void cached_free(Cache *cache, CachedRun *e) {
        LIST_REMOVE(lru, cache->lru, e);
        cache->n--;
        run_free(e->run);
        free(e->run_id);
        free(e);
}

static void cache_clear(Cache *cache) {
        while (cache->lru)
                cached_free(cache, cache->lru);
}

/* Takes the run out of the cache (the caller owns it while it works on it); NULL on a miss. */
static Run *cache_take(Cache *cache, const char *run_id) {
        CachedRun *e;
        Run *r;

        LIST_FOREACH(lru, e, cache->lru)
                if (streq(e->run_id, run_id)) {
                        r = TAKE_PTR(e->run);
                        cached_free(cache, e);
                        return r;
                }
        return NULL;
}

/* Puts the run back as most recently used (takes @r); evicts the least recently used. */
static void cache_put(Cache *cache, const char *run_id, Run *r) {
        CachedRun *e, *last;

        e = calloc(1, sizeof(*e));
        if (e)
                e->run_id = strdup(run_id);
        if (!e || !e->run_id) {
                free(e);
                run_free(r); /* only a cache miss later */
                return;
        }
        e->run = r;
        LIST_PREPEND(lru, cache->lru, e);
        cache->n++;
        while (cache->n > cache->max) {
                for (last = cache->lru; last->lru_next; last = last->lru_next)
                        ;
                cached_free(cache, last);
        }
}

/* ---- workflow tasks -------------------------------------------------------------------------- */

typedef struct WorkflowTask {
        const char *kind;
        MsgBin task_token;
        const char *workflow_id;
        const char *run_id;
        const char *workflow_type;
        const msgpack_object *events;
        uint64_t query_id;
        const char *query_type; /* kind "update": the update's name */
        MsgBin query_input;
        const char *update_id;
} WorkflowTask;

static const MsgField workflow_task_fields[] = {
        { "kind", MSG_STR, offsetof(WorkflowTask, kind), true, 0 },
        { "task_token", MSG_BIN, offsetof(WorkflowTask, task_token), false, 0 },
        { "workflow_id", MSG_STR, offsetof(WorkflowTask, workflow_id), true, 0 },
        { "run_id", MSG_STR, offsetof(WorkflowTask, run_id), true, 0 },
        { "workflow_type", MSG_STR, offsetof(WorkflowTask, workflow_type), true, 0 },
        { "events", MSG_ARRAY, offsetof(WorkflowTask, events), true, 0 },
        { "query_id", MSG_UINT, offsetof(WorkflowTask, query_id), false, 0 },
        { "query_type", MSG_STR, offsetof(WorkflowTask, query_type), false, 0 },
        { "query_input", MSG_BIN, offsetof(WorkflowTask, query_input), false, 0 },
        { "update_id", MSG_STR, offsetof(WorkflowTask, update_id), false, 0 },
        { NULL },
};

static bool is_update(const WorkflowTask *t) {
        return streq(t->kind, "update");
}

/* A query, or an update's validation (a query whose answer accepts or rejects the update):
 * both read the run's state and are answered with RespondQueryTask. */
static bool is_query(const WorkflowTask *t) {
        return streq(t->kind, "query") || is_update(t);
}

/* The events one task needs: the task's own, preceded by those the run lacks, fetched with
 * GetHistory. Owns the GetHistory answer and the merged array. */
typedef struct TaskEvents {
        msgpack_object events;
        msgpack_unpacked fetched;
        bool have_fetched;
        msgpack_object *merged;
} TaskEvents;

static void task_events_done(TaskEvents *te) {
        if (te->have_fetched)
                msgpack_unpacked_destroy(&te->fetched);
        free(te->merged);
        *te = (TaskEvents){};
}

static uint64_t event_id_of(const msgpack_object *e) {
        const msgpack_object *id = msg_get(e, "event_id");

        return id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? id->via.u64 : 0;
}

static int fetch_history(Conn *c,
                         const WorkflowTask *t,
                         uint64_t from,
                         msgpack_unpacked *ret,
                         const msgpack_object **ret_events) {
        const msgpack_object *events;
        Request req;
        int k;

        request_init(&req, c, "GetHistory", 3);
        (void) msg_pack_kv_str(&req.pk, "workflow_id", t->workflow_id);
        (void) msg_pack_kv_str(&req.pk, "run_id", t->run_id);
        (void) msg_pack_kv_uint(&req.pk, "from_event_id", from);
        k = conn_call(c, &req, ret);
        request_done(&req);
        if (k < 0)
                return k;
        events = msg_get(&ret->data, "events");
        if (!events || events->type != MSGPACK_OBJECT_ARRAY) {
                msgpack_unpacked_destroy(ret);
                return -EBADMSG;
        }
        *ret_events = events;
        return 0;
}

/* Fills @te with the events from @from to the end of the task's events. */
static int task_events_get(Conn *c, const WorkflowTask *t, uint64_t from, TaskEvents *te) {
        const msgpack_object *task = t->events, *fetched;
        uint64_t first = task->via.array.size > 0 ? event_id_of(&task->via.array.ptr[0]) : 0;
        size_t n = 0;
        int k;

        if (first != 0 && first <= from) {
                te->events = *task;
                return 0;
        }
        k = fetch_history(c, t, from, &te->fetched, &fetched);
        if (k < 0)
                return k;
        te->have_fetched = true;
        te->merged = calloc((size_t) fetched->via.array.size + task->via.array.size + 1,
                            sizeof(msgpack_object));
        if (!te->merged)
                return -ENOMEM;
        /* Shallow copies: both answers stay alive until task_events_done(). */
        for (uint32_t i = 0; i < fetched->via.array.size; i++)
                if (first == 0 || event_id_of(&fetched->via.array.ptr[i]) < first)
                        te->merged[n++] = fetched->via.array.ptr[i];
        for (uint32_t i = 0; i < task->via.array.size; i++)
                te->merged[n++] = task->via.array.ptr[i];
        te->events = (msgpack_object){ .type = MSGPACK_OBJECT_ARRAY,
                                       .via.array = { .size = (uint32_t) n, .ptr = te->merged } };
        return 0;
}

static int replay_once(Conn *c, const WorkflowTask *t, Run *r, msgpack_sbuffer *commands) {
        TaskEvents te = {};
        int k;

        k = task_events_get(c, t, run_next_event_id(r), &te);
        if (k >= 0)
                k = run_apply_events(r, &te.events, !is_query(t), commands);
        task_events_done(&te);
        return k;
}

/* Brings the run (cached, or new when *@run is NULL) up to the task. A cached run whose last task
 * did not stick (-ESTALE) is replaced by a replay from the first event. */
static int replay(Conn *c,
                  const WorkflowTask *t,
                  const dur_workflow_def *def,
                  Run **run,
                  msgpack_sbuffer *commands) {
        int k;

        if (!*run) {
                k = run_new(run, def, t->workflow_id, t->run_id);
                if (k < 0)
                        return k;
        }
        k = replay_once(c, t, *run, commands);
        if (k != -ESTALE)
                return k;
        *run = run_free(*run);
        k = run_new(run, def, t->workflow_id, t->run_id);
        if (k < 0)
                return k;
        msgpack_sbuffer_clear(commands);
        return replay_once(c, t, *run, commands);
}

static int answer(Conn *c, Request *req) {
        msgpack_unpacked a;
        int k;

        k = conn_call_riding(c, req, &a); /* the thread's next poll rides along */
        request_done(req);
        if (k >= 0)
                msgpack_unpacked_destroy(&a);
        return k;
}

static int pack_failure(msgpack_packer *pk, const char *type, const char *message) {
        int k = msgpack_pack_map(pk, 3);

        if (k >= 0)
                k = msg_pack_kv_str(pk, "message", message);
        if (k >= 0)
                k = msg_pack_kv_str(pk, "type", type);
        if (k >= 0)
                k = msg_pack_kv_bool(pk, "non_retryable", false);
        return k;
}

static int complete_task(Conn *c, const WorkflowTask *t, const msgpack_sbuffer *commands) {
        Request req;

        request_init(&req, c, "CompleteWorkflowTask", 2);
        (void) msg_pack_kv_bin(&req.pk, "task_token", t->task_token.ptr, t->task_token.size);
        (void) msg_pack_str(&req.pk, "commands");
        (void) msg_pack_raw(&req.pk, commands->data, commands->size);
        return answer(c, &req);
}

static int fail_task(Conn *c, const WorkflowTask *t, const char *cause, const char *message) {
        Request req;

        request_init(&req, c, "FailWorkflowTask", 3);
        (void) msg_pack_kv_bin(&req.pk, "task_token", t->task_token.ptr, t->task_token.size);
        (void) msg_pack_kv_str(&req.pk, "cause", cause);
        (void) msg_pack_str(&req.pk, "failure");
        (void) pack_failure(&req.pk, cause, message);
        return answer(c, &req);
}

static int
respond_query(Conn *c, const WorkflowTask *t, const msgpack_sbuffer *result, const char *error) {
        Request req;

        request_init(&req, c, "RespondQueryTask", error || result->size > 0 ? 2 : 1);
        (void) msg_pack_kv_uint(&req.pk, "query_id", t->query_id);
        if (error) {
                (void) msg_pack_str(&req.pk, "failure");
                (void) pack_failure(&req.pk, is_update(t) ? "UpdateRejected" : "QueryFailed",
                                    error);
        } else if (result->size > 0)
                (void) msg_pack_kv_bin(&req.pk, "result", result->data, result->size);
        return answer(c, &req);
}

/* Why the task failed, for FailWorkflowTask / RespondQueryTask. */
static const char *task_error(const Run *r, int k, char *buf, size_t n) {
        if (r && run_error_message(r)[0])
                return run_error_message(r);
        (void) snprintf(buf, n, "libdurable failed to process the task: %s", strerror(-k));
        return buf;
}

static const dur_workflow_def *find_workflow_def(dur_worker *w, const char *type) {
        for (size_t i = 0; i < w->n_workflows; i++)
                if (streq(w->workflows[i]->name, type))
                        return w->workflows[i];
        return NULL;
}

/* Answers the task after replay (and query) result @k. Returns <0 only for a lost connection;
 * sets *ret_keep when the run may stay cached: its state matches what the daemon recorded. */
static int
respond(Conn *c, const WorkflowTask *t, Run *r, int k, const msgpack_sbuffer *out, bool *ret_keep) {
        char buf[256];
        const char *why = k < 0 ? task_error(r, k, buf, sizeof(buf)) : NULL;
        int a;

        if (is_query(t))
                a = respond_query(c, t, out, why);
        else if (k < 0) {
                dur_log(LOG_WARNING, "Workflow '%s' run %s: failing workflow task: %s",
                        t->workflow_id, t->run_id, why);
                a = fail_task(c, t, r && run_error_cause(r) ? run_error_cause(r) : "WorkflowError",
                              why);
        } else
                a = complete_task(c, t, out);
        /* A refused completion (stale token) means our state may be ahead of history. */
        if (a < 0)
                *ret_keep = false;
        if (a < 0 && conn_error_code(c)) {
                dur_log(LOG_WARNING,
                        "Workflow '%s' run %s: the daemon refused the task's answer: %s",
                        t->workflow_id, t->run_id, conn_error_message(c) ?: conn_error_code(c));
                return 0;
        }
        return a;
}

static int workflow_task_run(dur_worker *w, Cache *cache, Conn *c, const WorkflowTask *t) {
        const dur_workflow_def *def = find_workflow_def(w, t->workflow_type);
        msgpack_sbuffer out;
        bool keep;
        char msg[300];
        Run *r;
        int k, a;

        if (!def) {
                (void) snprintf(msg, sizeof(msg),
                                "workflow type '%s' is not registered with this worker",
                                t->workflow_type);
                msgpack_sbuffer_init(&out);
                a = is_query(t) ? respond_query(c, t, &out, msg)
                                : fail_task(c, t, "WorkflowError", msg);
                return a < 0 && !conn_error_code(c) ? a : 0;
        }
        msgpack_sbuffer_init(&out);
        r = cache_take(cache, t->run_id);
        k = replay(c, t, def, &r, &out);
        /* A failed replay leaves the run undefined; a failed query handler does not. */
        keep = k >= 0 && r && !run_closed(r);
        if (k >= 0 && is_update(t))
                k = run_validate_update(r, t->query_type, t->query_input.ptr, t->query_input.size);
        else if (k >= 0 && is_query(t))
                k = run_query(r, t->query_type, t->query_input.ptr, t->query_input.size, &out);
        if (k < 0 && !r)
                dur_log(LOG_ERR, "Workflow '%s' run %s: %s", t->workflow_id, t->run_id,
                        strerror(-k));
        a = respond(c, t, r, k, &out, &keep);
        msgpack_sbuffer_destroy(&out);
        if (keep)
                cache_put(cache, t->run_id, r);
        else
                run_free(r);
        return a;
}

static int workflow_task_handle(dur_worker *w, Conn *c, const msgpack_object *task, void *state) {
        WorkflowTask t = {};
        msgpack_zone zone;
        char err[256];
        int k;

        if (!msgpack_zone_init(&zone, 4096))
                return -ENOMEM;
        k = msg_parse(task, &zone, workflow_task_fields, &t, err, sizeof(err));
        if (k >= 0 && !is_query(&t) && !t.task_token.ptr)
                k = -EINVAL, snprintf(err, sizeof(err), "missing field \"task_token\"");
        if (k >= 0 && is_query(&t) && !t.query_type)
                k = -EINVAL, snprintf(err, sizeof(err), "missing field \"query_type\"");
        if (k >= 0)
                k = workflow_task_run(w, state, c, &t);
        else if (k != -ENOMEM) {
                /* The daemon times the task out and retries it. */
                dur_log(LOG_ERR, "Dropped a malformed workflow task: %s", err);
                k = 0;
        }
        msgpack_zone_destroy(&zone);
        return k;
}

/* ---- run ------------------------------------------------------------------------------------- */

static void *workflow_thread_main(void *userdata) {
        dur_worker *w = userdata;
        Cache cache = { .max = MAX(w->max_cached / w->workflow_threads, 1u) };

        poller_main(w, "PollWorkflowTask", workflow_task_handle, &cache);
        cache_clear(&cache);
        return NULL;
}

/* Starts @n threads running @fn; counts them as alive before they start, so that the stopper
 * never sees zero while one is still connecting. */
static int
start_threads(dur_worker *w, void *(*fn)(void *), pthread_t *ids, size_t n, size_t *started) {
        for (size_t i = 0; i < n; i++) {
                int k;

                pthread_mutex_lock(&w->lock);
                w->alive++;
                pthread_mutex_unlock(&w->lock);
                k = pthread_create(&ids[*started], NULL, fn, w);
                if (k != 0) {
                        pthread_mutex_lock(&w->lock);
                        w->alive--;
                        pthread_mutex_unlock(&w->lock);
                        return -k;
                }
                (*started)++;
        }
        return 0;
}

DUR_PUBLIC int dur_worker_run(dur_worker *w) {
        _cleanup_free_ pthread_t *ids = NULL;
        size_t n = 0, n_activity;
        pthread_t stopper;
        int k;

        assert_return(w && (w->n_workflows > 0 || w->n_activities > 0), -EINVAL);
        /* No activity polls without activities: the daemon would hand us tasks we cannot run. */
        n_activity = w->n_activities > 0 ? w->activity_threads : 0;
        ids = calloc(n_activity + w->workflow_threads, sizeof(pthread_t));
        if (!ids)
                return -ENOMEM;
        w->error = 0;
        atomic_store(&w->connected, false);
        k = -pthread_create(&stopper, NULL, stopper_main, w);
        if (k < 0)
                return k;
        if (w->n_workflows > 0)
                k = start_threads(w, workflow_thread_main, ids, w->workflow_threads, &n);
        if (k >= 0)
                k = start_threads(w, activity_thread_main, ids, n_activity, &n);
        if (k < 0)
                worker_abort(w, k);
        for (size_t i = 0; i < n; i++)
                (void) pthread_join(ids[i], NULL);
        /* Everyone is gone; wake the stopper if nobody asked for a stop (impossible unless
         * there was nothing to run). */
        dur_worker_stop(w);
        (void) pthread_join(stopper, NULL);
        atomic_store(&w->stop_requested, 0);
        return w->error;
}
