/* crash-loop: the crash test of DESIGN.md §3. A mixed load of workflows (crash-worker.c's
 * LoadWorkflow: sequential and parallel activities, a child workflow, a process activity of an
 * activity unit run by the daemon under cgroups, a durable timer, a signal) runs while the
 * daemon is SIGKILLed and restarted K times (--kills, default 30), and now and then the worker
 * or the activity processes too. Then the checker proves, for every workflow whose start was
 * acknowledged:
 *
 *   - it reached exactly one close event, Completed, with the right result (the result depends
 *     on every activity's result and on the signal, so a lost or doubled one shows);
 *   - its history passes the linter (proto/history-lint.h: dense ids, no duplicate or impossible
 *     transition, no timer fired early), here and through VerifyHistory;
 *   - each of its six activities (five in the worker, one process) was scheduled once and
 *     completed once (its result used exactly once), and its effect is in the external log at
 *     least once; the same for its child's activity, and the child completed once, with its
 *     own history linted too;
 *   - the signal whose SignalWorkflow was acknowledged is in its history;
 *   - no workflow has two runs (a start retried after a lost answer found the first) and no run
 *     exists that the load (or its children) did not start;
 * and at the end the database passes PRAGMA integrity_check.
 *
 * Where each kill lands is counted: most cycles arm one of the daemon's kill points
 * (daemon/killpoint.h; DURABLED_KILL_AT=NAME:N, the daemon logs the name to DURABLED_KILL_LOG
 * before it dies), the others kill from outside at a random moment. At least a quarter of the
 * kills must land inside a write transaction, else the run does not count (it fails). Every
 * fifth cycle the worker is SIGKILLed, and every fifth (another one) the activity processes that
 * run from a random moment on (their attempts fail and are retried). Without cgroup v2 (no process
 * activities on this host) the load has no process activity.
 *
 * With --power-loss the daemon dies by a simulated power failure instead (DURABLED_FAULT=
 * powerloss|garble:N of daemon/store-fault.c): at a random write, every write not yet synced is
 * lost or garbled and the -shm file is removed before the restart; the same checker then proves
 * that everything acknowledged survived.
 *
 * With --soak-seconds N there are no kills: the load runs for N seconds and a line every minute
 * gives the daemon's RSS, open file descriptors and database size (make soak HOURS=1); the
 * descriptors must stay flat, and the checker runs at the end.
 *
 * Usage: crash-loop [--kills K] [--seed S] [--power-loss] [--soak-seconds N]
 * [--no-process-activities] (for a daemon under valgrind, which cannot start them); $CRASH_KILLS
 * overrides the default K. The figures are printed at the end. Needs a build with -Dfault-injection=true (else it skips, exit 77). */

#include <dirent.h>
#include <durable/durable.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "proto/history-lint.h"
#include "tests/lib/daemon.h"

#define IN_FLIGHT 8  /* workflows running at once */
#define TIMER_MS 150 /* each workflow's durable timer */
#define TASK_TIMEOUT_USEC (2 * TEST_USEC_PER_SEC)
#define KILLPOINT_WAIT_USEC (20 * TEST_USEC_PER_SEC) /* then the harness kills from outside */
#define DRAIN_USEC (180 * TEST_USEC_PER_SEC)         /* the load finishes within this */
#define N_ACTIVITIES 5 /* in the worker, besides the process activity and the child's */

typedef struct Wf {
        char id[32];
        uint64_t n;
        bool start_acked;
        bool signal_acked;
        unsigned signal_tag; /* the tag of the acknowledged signal */
        unsigned signal_sends;
        bool done;
} Wf;

/* The kill points of daemon/killpoint.h; the first ones lie inside the write transaction. */
static const struct {
        const char *name;
        bool in_txn;
        unsigned max_n; /* N is drawn from 1..max_n */
} points[] = {
        { "event-insert", true, 300 },   { "run-update", true, 150 },
        { "activity-write", true, 100 }, { "before-commit", true, 80 },
        { "after-commit", false, 80 },
};

typedef struct Figures {
        unsigned kills;
        unsigned by_point[ELEMENTSOF(points)];
        unsigned external;  /* chosen moments from outside */
        unsigned unreached; /* a kill point not reached in time: killed from outside */
        unsigned power[2];  /* --power-loss: unsynced writes dropped, garbled */
        unsigned worker_kills;
        unsigned process_kills; /* activity processes SIGKILLed */
        unsigned startup_kills; /* kill points reached before READY=1 */
        unsigned in_txn;
        uint64_t events, effects, duplicate_effects, signals_sent;
} Figures;

static unsigned arg_kills = 30;
static bool arg_power_loss;
static bool arg_no_process_activities;
static uint64_t arg_soak_usec;
static uint64_t arg_seed;
static uint64_t rng_state;

static uint64_t rnd(void) {
        /* xorshift64*: reproducible from --seed */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static unsigned rnd_below(unsigned n) {
        return (unsigned) (rnd() % n);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * TEST_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* ---- the load -------------------------------------------------------------------------------- */

typedef struct Load {
        TestDaemon *d;
        bool proc; /* the load has process activities (cgroup v2) */
        dur_client *client;
        Wf *wfs;
        size_t n_wfs, alloc;
        unsigned next;
} Load;

/* A daemon error (an answer) is a failure of the test; a lost connection is the crash. */
static bool connection_lost(Load *l, int r) {
        const char *code = dur_client_error_code(l->client);

        if (r >= 0)
                return false;
        if (code && *code)
                test_fail(__FILE__, __LINE__, "durabled answered %s: %s", code,
                          dur_client_error_message(l->client));
        l->client = dur_client_free(l->client);
        return true;
}

static Wf *wf_add(Load *l) {
        Wf *w;

        if (l->n_wfs == l->alloc) {
                l->alloc = l->alloc ? 2 * l->alloc : 64;
                l->wfs = ASSERT_NOT_NULL(reallocarray(l->wfs, l->alloc, sizeof(Wf)));
        }
        w = &l->wfs[l->n_wfs++];
        *w = (Wf){ .n = l->next };
        snprintf(w->id, sizeof(w->id), "load-%u", l->next++);
        return w;
}

static int wf_start(Load *l, Wf *w) {
        char request_id[64];
        dur_start_opts o = { .workflow_id = w->id,
                             .task_queue = "crash",
                             .task_timeout = TASK_TIMEOUT_USEC,
                             .request_id = request_id };
        dur_buf *input;
        int r;

        snprintf(request_id, sizeof(request_id), "req-%s", w->id);
        input = ASSERT_NOT_NULL(dur_args("{s:U, s:U, s:b}", "n", w->n, "timer_ms",
                                         (uint64_t) TIMER_MS, "proc", l->proc));
        r = dur_client_start(l->client, "LoadWorkflow", &o, input, NULL);
        dur_buf_free(input);
        if (r >= 0)
                w->start_acked = true;
        return r;
}

static int wf_signal(Load *l, Wf *w, Figures *f) {
        unsigned tag = ++w->signal_sends;
        dur_buf *input;
        int r;

        input = ASSERT_NOT_NULL(dur_args("{s:U, s:u}", "v", 7 * w->n, "tag", tag));
        r = dur_client_signal(l->client, w->id, NULL, "go", input);
        dur_buf_free(input);
        f->signals_sent++;
        if (r >= 0) {
                w->signal_acked = true;
                w->signal_tag = tag;
        }
        return r;
}

/* Waits a little for the oldest running workflow; marks it done when it closed. */
static int wf_poll(Load *l, Wf *w) {
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        int r;

        r = dur_client_result(l->client, w->id, NULL, 100 * 1000, &out);
        if (r == -ETIMEDOUT)
                return 0;
        if (r == 0 || r == DUR_FAILED) {
                w->done = true;
                return 0;
        }
        return r;
}

/* One step of the load: connect, start what is missing, signal, wait a little for a result.
 * Returns false when the connection broke (the daemon died). */
static bool load_step(Load *l, Figures *f, bool keep_starting) {
        unsigned running = 0;
        int r;

        if (!l->client) {
                r = dur_client_connect(&l->client, l->d->socket_path);
                if (r < 0)
                        return false;
        }
        for (size_t i = 0; i < l->n_wfs; i++) {
                Wf *w = &l->wfs[i];

                if (w->done)
                        continue;
                running++;
                if (!w->start_acked && connection_lost(l, wf_start(l, w)))
                        return false;
                if (!w->signal_acked && connection_lost(l, wf_signal(l, w, f)))
                        return false;
        }
        if (keep_starting && running < IN_FLIGHT) {
                Wf *w = wf_add(l);
                if (connection_lost(l, wf_start(l, w)) || connection_lost(l, wf_signal(l, w, f)))
                        return false;
        }
        for (size_t i = 0; i < l->n_wfs; i++)
                if (!l->wfs[i].done)
                        return !connection_lost(l, wf_poll(l, &l->wfs[i]));
        return true;
}

static bool load_done(const Load *l) {
        for (size_t i = 0; i < l->n_wfs; i++)
                if (!l->wfs[i].done)
                        return false;
        return true;
}

/* ---- kills ----------------------------------------------------------------------------------- */

static bool daemon_exited(TestDaemon *d) {
        struct pollfd p = { .fd = d->proc.pidfd, .events = POLLIN };

        return poll(&p, 1, 0) > 0;
}

static size_t count_lines(const char *path) {
        _cleanup_free_ char *line = NULL;
        size_t n = 0, size = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                return 0;
        while (getline(&line, &size, f) > 0)
                n++;
        fclose(f);
        return n;
}

/* The last line of @path without its newline, in @buf. */
static void last_line(const char *path, char *buf, size_t size) {
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        FILE *f = ASSERT_NOT_NULL(fopen(path, "re"));

        buf[0] = 0;
        while (getline(&line, &n, f) > 0)
                snprintf(buf, size, "%s", line);
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
}

/* The worker must only die when the harness kills it. */
static void assert_worker_alive(TestProcess *worker) {
        struct pollfd p = { .fd = worker->pidfd, .events = POLLIN };
        char buf[64];
        int status;

        if (poll(&p, 1, 0) <= 0)
                return;
        status = test_process_wait(worker, 0);
        test_fail(__FILE__, __LINE__, "crash-worker %s", test_exit_status_str(status, buf));
}

static void assert_sigkill(int status) {
        char buf[64];

        if (!(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
                test_fail(__FILE__, __LINE__, "durabled should have died by SIGKILL, but it %s",
                          test_exit_status_str(status, buf));
}

typedef struct Cycle {
        int point;          /* index in points[], or -1: a kill from outside */
        int power;          /* --power-loss: 1 unsynced writes dropped, 2 garbled, 0 none */
        uint64_t kill_at;   /* monotonic time of an outside kill (or of giving up on the point) */
        uint64_t worker_at; /* monotonic time to SIGKILL the worker, 0 = not in this cycle */
        uint64_t procs_at;  /* ... the activity processes, 0 = not in this cycle */
} Cycle;

/* SIGKILLs every process in the attempt cgroups below the daemon's (<cgroup>/activities/ *);
 * returns how many. */
static unsigned kill_activity_processes(TestDaemon *d) {
        _cleanup_free_ char *dir = NULL;
        unsigned n = 0;
        struct dirent *de;
        DIR *dd;

        if (!d->cgroup)
                return 0;
        ASSERT_GE(asprintf(&dir, "%s/activities", d->cgroup), 0);
        dd = opendir(dir);
        if (!dd)
                return 0; /* no attempt ran yet */
        while ((de = readdir(dd))) {
                char path[4096];
                FILE *f;
                int pid;

                if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                        continue;
                snprintf(path, sizeof(path), "%s/%s/cgroup.procs", dir, de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue; /* the attempt ended meanwhile */
                while (fscanf(f, "%d", &pid) == 1)
                        n += kill(pid, SIGKILL) == 0;
                fclose(f);
        }
        closedir(dd);
        return n;
}

/* The daemon died by SIGKILL (@status): counts where, from the kill log (its length was @logged
 * before the cycle). */
static void
count_kill(Load *l, const Cycle *c, int status, const char *kill_log, size_t logged, Figures *f) {
        char where[64];

        assert_sigkill(status);
        f->kills++;
        if (c->power) {
                /* The "reboot": shared memory does not survive a power failure. */
                _cleanup_free_ char *shm = NULL;
                ASSERT_GE(asprintf(&shm, "%s/durabled.db-shm", l->d->state_dir), 0);
                (void) unlink(shm);
        }
        if (count_lines(kill_log) > logged) {
                last_line(kill_log, where, sizeof(where));
                for (size_t i = 0; i < ELEMENTSOF(points); i++)
                        if (streq(points[i].name, where)) {
                                f->by_point[i]++;
                                f->in_txn += points[i].in_txn;
                        }
                if (streq(where, "powerloss") || streq(where, "garble"))
                        f->power[streq(where, "garble")]++;
        } else if (c->point >= 0 || c->power)
                f->unreached++;
        else
                f->external++;
}

/* Runs the load until the daemon dies (by itself at the kill point, or killed from here), then
 * counts where the kill landed. */
static void run_cycle(Load *l,
                      const Cycle *c,
                      TestProcess *worker,
                      const char *kill_log,
                      const char *const *worker_env,
                      Figures *f) {
        size_t logged = count_lines(kill_log);
        uint64_t worker_at = c->worker_at, procs_at = c->procs_at;
        int status;

        for (;;) {
                uint64_t now = now_usec();

                if (worker_at && now >= worker_at) {
                        worker_at = 0;
                        (void) test_process_kill(worker, SIGKILL);
                        f->worker_kills++;
                        test_process_spawn(worker, STRV(test_bin("CRASH_WORKER_BIN")), worker_env);
                }
                /* From then on, the first activity processes that run. */
                if (procs_at && now >= procs_at) {
                        unsigned n = kill_activity_processes(l->d);
                        f->process_kills += n;
                        if (n > 0)
                                procs_at = 0;
                }
                if (now >= c->kill_at) {
                        status = test_daemon_kill(l->d, SIGKILL);
                        break;
                }
                assert_worker_alive(worker);
                if (!load_step(l, f, true) || daemon_exited(l->d)) {
                        status = test_daemon_wait_exit(l->d, 0);
                        ASSERT_NE(status, -ETIMEDOUT);
                        break;
                }
        }
        l->client = dur_client_free(l->client);
        count_kill(l, c, status, kill_log, logged, f);
}

/* ---- the checker ----------------------------------------------------------------------------- */

/* Calls @op with the msgpack map in @req (consumed); the answer, unpacked, in *ret. */
static void call(dur_client *c, dur_buf *req, msgpack_unpacked *ret, dur_buf **ret_buf) {
        dur_buf *answer = NULL;

        ASSERT_NOT_NULL(req);
        if (dur_client_call(c, req, &answer) < 0)
                test_fail(__FILE__, __LINE__, "request failed: %s (%s)",
                          dur_client_error_message(c), dur_client_error_code(c));
        dur_buf_free(req);
        msgpack_unpacked_init(ret);
        ASSERT_EQ(msgpack_unpack_next(ret, answer->data, answer->size, NULL),
                  MSGPACK_UNPACK_SUCCESS);
        *ret_buf = answer;
}

static const msgpack_object *get(const msgpack_object *map, const char *key) {
        if (map->type != MSGPACK_OBJECT_MAP)
                return NULL;
        for (uint32_t i = 0; i < map->via.map.size; i++) {
                const msgpack_object *k = &map->via.map.ptr[i].key;
                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
                    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
                        return &map->via.map.ptr[i].val;
        }
        return NULL;
}

static uint64_t get_u64(const msgpack_object *map, const char *key) {
        const msgpack_object *o = get(map, key);

        return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

/* The string @key of @map as a NUL-terminated copy in @buf ("" when absent). */
static const char *get_str(const msgpack_object *map, const char *key, char *buf, size_t size) {
        const msgpack_object *o = get(map, key);

        buf[0] = 0;
        if (o && o->type == MSGPACK_OBJECT_STR)
                snprintf(buf, size, "%.*s", (int) o->via.str.size, o->via.str.ptr);
        return buf;
}

/* The payload (a bin holding one msgpack value) at @key of @map, unpacked into @ret. */
static bool get_payload(const msgpack_object *map, const char *key, msgpack_unpacked *ret) {
        const msgpack_object *o = get(map, key);

        msgpack_unpacked_init(ret);
        return o && o->type == MSGPACK_OBJECT_BIN &&
               msgpack_unpack_next(ret, o->via.bin.ptr, o->via.bin.size, NULL) ==
                       MSGPACK_UNPACK_SUCCESS;
}

/* The effect log as its sorted keys (each line "<idempotency key> <attempt>"). */
typedef struct Effects {
        char **keys;
        size_t n;
} Effects;

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void effects_load(Effects *e, char *log) {
        size_t alloc = 0;

        for (char *save = NULL, *line = strtok_r(log, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *sp = strrchr(line, ' ');

                if (sp)
                        *sp = 0;
                if (e->n == alloc) {
                        alloc = alloc ? 2 * alloc : 1024;
                        e->keys = ASSERT_NOT_NULL(reallocarray(e->keys, alloc, sizeof(char *)));
                }
                e->keys[e->n++] = line;
        }
        qsort(e->keys, e->n, sizeof(char *), cmp_str);
}

/* How often the effect of @key was applied. */
static unsigned effects_of(const Effects *e, const char *key) {
        size_t lo = 0, hi = e->n;
        unsigned count = 0;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(e->keys[mid], key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        while (lo < e->n && streq(e->keys[lo++], key))
                count++;
        return count;
}

static void check_result(dur_client *c, const Wf *w, bool l_proc) {
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        msgpack_unpacked u;
        uint64_t n = 0, seq = 0, par = 0, child = 0, proc = 0, v = 0;

        ASSERT_EQ(dur_client_result(c, w->id, NULL, 0, &out), 0);
        ASSERT_STREQ(out.status, "Completed");
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, out.result->data, out.result->size, NULL),
                  MSGPACK_UNPACK_SUCCESS);
        ASSERT_OK(dur_unpack(&u.data, "{s:U, s:U, s:U, s:U, s:U, s:U}", "n", &n, "seq", &seq, "par",
                             &par, "child", &child, "proc", &proc, "v", &v));
        msgpack_unpacked_destroy(&u);
        ASSERT_EQ(n, w->n);
        ASSERT_EQ(seq, w->n + 3);
        ASSERT_EQ(par, 3 * w->n + 60);
        ASSERT_EQ(child, w->n + 100);
        ASSERT_EQ(proc, l_proc ? 2 * w->n : 0);
        ASSERT_EQ(v, 7 * w->n);
}

typedef struct HistoryCounts {
        unsigned scheduled, completed, timers_fired, closes, children_completed;
        bool signal_seen;
} HistoryCounts;

static void check_event(const Wf *w,
                        const msgpack_object *ev,
                        HistoryLint *lint,
                        const Effects *e,
                        HistoryCounts *hc,
                        Figures *f) {
        const msgpack_object *attrs = get(ev, "attributes");
        char type_name[64], key[128], activity_id[64];
        EventType type;
        msgpack_unpacked u;
        int r;

        type = event_type_from_string(get_str(ev, "event_type", type_name, sizeof(type_name)));
        r = history_lint_event(lint, get_u64(ev, "event_id"), type, get_u64(ev, "time"), attrs);
        if (r < 0)
                test_fail(__FILE__, __LINE__, "history of %s: %s", w->id,
                          history_lint_problem(lint) ?: strerror(-r));
        switch (type) {
        case EVENT_ACTIVITY_TASK_SCHEDULED:
                hc->scheduled++;
                snprintf(key, sizeof(key), "%s/%s", w->id,
                         get_str(attrs, "activity_id", activity_id, sizeof(activity_id)));
                /* Its effect was applied at least once (the activity completed below). */
                ASSERT_GE(effects_of(e, key), 1u);
                f->duplicate_effects += effects_of(e, key) - 1;
                break;
        case EVENT_ACTIVITY_TASK_COMPLETED:
                hc->completed++;
                break;
        case EVENT_TIMER_FIRED:
                hc->timers_fired++;
                break;
        case EVENT_CHILD_WORKFLOW_EXECUTION_COMPLETED:
                hc->children_completed++;
                break;
        case EVENT_WORKFLOW_EXECUTION_SIGNALED:
                if (get_payload(attrs, "input", &u) && u.data.type == MSGPACK_OBJECT_MAP &&
                    get_u64(&u.data, "tag") == w->signal_tag)
                        hc->signal_seen = true;
                msgpack_unpacked_destroy(&u);
                break;
        case EVENT_WORKFLOW_EXECUTION_COMPLETED ... EVENT_WORKFLOW_EXECUTION_TIMED_OUT:
        case EVENT_WORKFLOW_EXECUTION_CANCELED:
        case EVENT_WORKFLOW_EXECUTION_TERMINATED:
        case EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                hc->closes++;
                break;
        default:
                break;
        }
        f->events++;
}

/* Lints the history of @id (@w's, or its child's) and counts its events in @hc. */
static void lint_history(dur_client *c,
                         const Wf *w,
                         const char *id,
                         const Effects *e,
                         HistoryCounts *hc,
                         Figures *f) {
        _cleanup_(history_lint_freep) HistoryLint *lint = NULL;
        const msgpack_object *events;
        msgpack_unpacked u;
        dur_buf *answer;
        Wf named = *w;

        snprintf(named.id, sizeof(named.id), "%s", id);
        ASSERT_OK(history_lint_new(&lint));
        call(c, dur_args("{s:s, s:s}", "op", "GetHistory", "workflow_id", id), &u, &answer);
        events = get(&u.data, "events");
        ASSERT_NOT_NULL(events);
        ASSERT_EQ(events->type, MSGPACK_OBJECT_ARRAY);
        for (uint32_t i = 0; i < events->via.array.size; i++)
                check_event(&named, &events->via.array.ptr[i], lint, e, hc, f);
        if (history_lint_end(lint, WORKFLOW_STATUS_COMPLETED, 0) < 0)
                test_fail(__FILE__, __LINE__, "history of %s: %s", id, history_lint_problem(lint));
        msgpack_unpacked_destroy(&u);
        dur_buf_free(answer);
        ASSERT_EQ(hc->closes, 1u);
}

static void check_history(dur_client *c, const Wf *w, bool proc, const Effects *e, Figures *f) {
        HistoryCounts hc = {}, child = {};
        char id[64];

        lint_history(c, w, w->id, e, &hc, f);
        ASSERT_EQ(hc.scheduled, (unsigned) N_ACTIVITIES + proc);
        ASSERT_EQ(hc.completed, (unsigned) N_ACTIVITIES + proc);
        ASSERT_EQ(hc.children_completed, 1u);
        ASSERT_EQ(hc.timers_fired, 1u);
        ASSERT_TRUE(hc.signal_seen);
        snprintf(id, sizeof(id), "%s-child", w->id);
        lint_history(c, w, id, e, &child, f);
        ASSERT_EQ(child.scheduled, 1u);
        ASSERT_EQ(child.completed, 1u);
}

/* Every run in the store is one the load started, once. */
static void check_runs(dur_client *c, const Load *l) {
        const msgpack_object *list;
        msgpack_unpacked u;
        dur_buf *answer;
        bool *seen = ASSERT_NOT_NULL(calloc(2 * (l->n_wfs + 1), sizeof(bool)));

        call(c, dur_args("{s:s, s:U}", "op", "ListWorkflows", "limit", (uint64_t) 100000), &u,
             &answer);
        list = get(&u.data, "workflows");
        ASSERT_NOT_NULL(list);
        ASSERT_EQ(list->via.array.size, (uint32_t) (2 * l->n_wfs));
        for (uint32_t i = 0; i < list->via.array.size; i++) {
                char id[64], suffix[16] = "";
                unsigned k, child;

                get_str(&list->via.array.ptr[i], "workflow_id", id, sizeof(id));
                ASSERT_GE(sscanf(id, "load-%u%15s", &k, suffix), 1);
                child = streq(suffix, "-child");
                ASSERT_TRUE(child || !suffix[0]);
                ASSERT_LT(k, (unsigned) l->n_wfs);
                ASSERT_FALSE(seen[2 * k + child]);
                seen[2 * k + child] = true;
        }
        free(seen);
        msgpack_unpacked_destroy(&u);
        dur_buf_free(answer);

        call(c, dur_args("{s:s}", "op", "VerifyHistory"), &u, &answer);
        ASSERT_EQ(get_u64(&u.data, "runs"), (uint64_t) (2 * l->n_wfs));
        ASSERT_EQ(get_u64(&u.data, "problem_count"), 0u);
        msgpack_unpacked_destroy(&u);
        dur_buf_free(answer);
}

static void check_integrity(TestDaemon *d) {
        _cleanup_free_ char *path = NULL;
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;

        ASSERT_GE(asprintf(&path, "%s/durabled.db", d->state_dir), 0);
        ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        ASSERT_STREQ((const char *) sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static char *read_file(const char *path) {
        FILE *f = ASSERT_NOT_NULL(fopen(path, "re"));
        char *buf = NULL;
        size_t size = 0;

        ASSERT_GE(getdelim(&buf, &size, '\0', f), 0); /* the whole file: it holds no NUL */
        fclose(f);
        return buf;
}

static void print_figures(const Load *l, const Figures *f, uint64_t usec) {
        printf("crash-loop: seed %llu, %u kills in %.1f s: %u inside a write transaction (",
               (unsigned long long) arg_seed, f->kills, (double) usec / 1e6, f->in_txn);
        for (size_t i = 0; i < ELEMENTSOF(points); i++)
                printf("%s%s %u", i ? ", " : "", points[i].name, f->by_point[i]);
        printf("), %u at a random moment from outside, %u at a kill point not reached in time; "
               "%u kills during start-up; %u worker kills, %u activity processes killed\n",
               f->external, f->unreached, f->startup_kills, f->worker_kills, f->process_kills);
        if (arg_power_loss)
                printf("crash-loop: power failures: %u with unsynced writes dropped, %u with "
                       "them garbled\n",
                       f->power[0], f->power[1]);
        printf("crash-loop: %zu workflows and their %zu children completed with the right result, "
               "%llu events linted, %zu activities (%zu of them processes), %llu effects applied "
               "(%llu repeated: at-least-once), %llu signals sent\n",
               l->n_wfs, l->n_wfs, (unsigned long long) f->events,
               l->n_wfs * (N_ACTIVITIES + 1 + l->proc), l->proc ? l->n_wfs : 0,
               (unsigned long long) f->effects, (unsigned long long) f->duplicate_effects,
               (unsigned long long) f->signals_sent);
}

/* ---- soak ------------------------------------------------------------------------------------ */

typedef struct Sample {
        unsigned long rss_kb;
        unsigned fds;
        unsigned long long db_bytes, wal_bytes;
} Sample;

static Sample sample(TestDaemon *d) {
        char path[256], line[256];
        Sample x = {};
        struct stat st;
        FILE *f;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) d->proc.pid);
        f = ASSERT_NOT_NULL(fopen(path, "re"));
        while (fgets(line, sizeof(line), f))
                (void) sscanf(line, "VmRSS: %lu kB", &x.rss_kb);
        fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/fd", (int) d->proc.pid);
        dir = ASSERT_NOT_NULL(opendir(path));
        for (struct dirent *e; (e = readdir(dir));)
                x.fds += e->d_name[0] != '.';
        closedir(dir);
        snprintf(path, sizeof(path), "%s/durabled.db", d->state_dir);
        if (stat(path, &st) >= 0)
                x.db_bytes = (unsigned long long) st.st_size;
        snprintf(path, sizeof(path), "%s/durabled.db-wal", d->state_dir);
        if (stat(path, &st) >= 0)
                x.wal_bytes = (unsigned long long) st.st_size;
        return x;
}

/* --soak: the load without kills for arg_soak_usec, a line of figures every minute. Open file
 * descriptors must stay flat (memory is printed: SQLite's page cache grows to its bound). */
static void soak(Load *l, TestProcess *worker, Figures *f) {
        uint64_t t0 = now_usec(), next = t0;
        unsigned n = 0;
        Sample base = {}, x = {};

        for (;;) {
                uint64_t now = now_usec();

                if (now >= next) {
                        x = sample(l->d);
                        printf("soak: %3llu min: %zu workflows, daemon RSS %lu kB, %u fds, "
                               "database %llu bytes + WAL %llu bytes\n",
                               (unsigned long long) ((now - t0) / (60 * TEST_USEC_PER_SEC)),
                               l->n_wfs, x.rss_kb, x.fds, x.db_bytes, x.wal_bytes);
                        fflush(stdout);
                        /* The baseline: after a minute, with every worker connection open. */
                        if (n++ == 1)
                                base = x;
                        next += 60 * TEST_USEC_PER_SEC;
                }
                if (now - t0 >= arg_soak_usec)
                        break;
                assert_worker_alive(worker);
                ASSERT_TRUE(load_step(l, f, true));
        }
        if (n > 2)
                ASSERT_LE(x.fds, base.fds + 4);
}

/* ---- main ------------------------------------------------------------------------------------ */

/* The activity unit of "crash-proc" in @dir/units: a shell script that appends its idempotency
 * key and attempt to @effect_log, as the worker's activities do, and answers 2N. Returns the
 * daemon's --activity-dir option. */
static char *write_units(const char *dir, const char *effect_log) {
        char *units = NULL, *path = NULL, *arg = NULL;
        FILE *f;

        ASSERT_GE(asprintf(&units, "%s/units", dir), 0);
        ASSERT_OK_ERRNO(mkdir(units, 0755));
        ASSERT_GE(asprintf(&path, "%s/crash-proc.sh", units), 0);
        f = ASSERT_NOT_NULL(fopen(path, "we"));
        fprintf(f,
                "#!/bin/sh\n"
                "read -r input\n"
                "n=$(printf '%%s' \"$input\" | tr -cd 0-9)\n"
                "echo \"$1 $2\" >> '%s'\n"
                "sleep 0.2 # the work: long enough to be killed in the middle of it\n"
                "echo $((2 * n))\n",
                effect_log);
        ASSERT_OK_ERRNO(fclose(f));
        ASSERT_OK_ERRNO(chmod(path, 0755));
        free(path);
        ASSERT_GE(asprintf(&path, "%s/crash-proc.activity", units), 0);
        f = ASSERT_NOT_NULL(fopen(path, "we"));
        fprintf(f, "[Activity]\nExecStart=%s/crash-proc.sh %%w/%%a %%A\nStartToCloseSec=10s\n",
                units);
        ASSERT_OK_ERRNO(fclose(f));
        free(path);
        ASSERT_GE(asprintf(&arg, "--activity-dir=%s", units), 0);
        free(units);
        return arg;
}

TEST(crash_loop) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *dir = NULL, *kill_log = NULL, *effect_log = NULL, *log_env = NULL,
                            *effect_env = NULL, *log = NULL;
        static char kill_at[64], fault[64];
        _cleanup_free_ char *fault_log_env = NULL;
        const char *daemon_env[] = { NULL, kill_at, NULL, fault, NULL };
        const char *worker_env[] = { NULL, NULL };
        _cleanup_free_ char *units_arg = NULL;
        const char *daemon_args[] = { NULL, NULL };
        Load l = { .d = &d };
        Figures f = {};
        uint64_t t0 = now_usec(), deadline;
        Effects effects = {};

        if (!DURABLED_FAULT_INJECTION)
                SKIP("crash-loop needs the kill points of -Dfault-injection=true");
        dir = ASSERT_NOT_NULL(test_mkdtemp());
        ASSERT_GE(asprintf(&kill_log, "%s/kills", dir), 0);
        ASSERT_GE(asprintf(&effect_log, "%s/effects", dir), 0);
        ASSERT_GE(asprintf(&log_env, "DURABLED_KILL_LOG=%s", kill_log), 0);
        ASSERT_GE(asprintf(&effect_env, "CRASH_EFFECT_LOG=%s", effect_log), 0);
        ASSERT_GE(asprintf(&fault_log_env, "DURABLED_FAULT_LOG=%s", kill_log), 0);
        daemon_env[0] = log_env;
        daemon_env[2] = fault_log_env;
        snprintf(fault, sizeof(fault), "DURABLED_FAULT=");
        worker_env[0] = effect_env;
        units_arg = write_units(dir, effect_log);
        daemon_args[0] = units_arg;
        snprintf(kill_at, sizeof(kill_at), "DURABLED_KILL_AT=none:0");
        if (arg_soak_usec) {
                arg_kills = 0;
                test_daemon_start(&d, &(TestDaemonOpts){ .env = daemon_env, .args = daemon_args });
                l.proc = d.cgroup && !arg_no_process_activities;
                test_process_spawn(&worker, STRV(test_bin("CRASH_WORKER_BIN")), worker_env);
                soak(&l, &worker, &f);
        }
        for (unsigned k = 0; k < arg_kills; k++) {
                Cycle c = { .point = -1 };

                /* --power-loss: the power fails at a random write, dropping or garbling what
                 * was not synced. Else four cycles in five arm a kill point; the fifth kills
                 * from outside. */
                if (arg_power_loss) {
                        c.power = 1 + (int) (k % 2);
                        snprintf(fault, sizeof(fault), "DURABLED_FAULT=%s:%u",
                                 c.power == 1 ? "powerloss" : "garble", 1 + rnd_below(400));
                        snprintf(kill_at, sizeof(kill_at), "DURABLED_KILL_AT=none:0");
                } else if (rnd_below(5) < 4) {
                        c.point = (int) rnd_below(ELEMENTSOF(points));
                        snprintf(kill_at, sizeof(kill_at), "DURABLED_KILL_AT=%s:%u",
                                 points[c.point].name, 1 + rnd_below(points[c.point].max_n));
                } else
                        snprintf(kill_at, sizeof(kill_at), "DURABLED_KILL_AT=none:0");
                /* The kill point counts from the daemon's start; it may come before READY=1,
                 * in what the start-up writes (tasks and attempts of the earlier life that time
                 * out or fail): that cycle's kill happened there. */
                if (k == 0) {
                        test_daemon_start(
                                &d, &(TestDaemonOpts){ .env = daemon_env, .args = daemon_args });
                        l.proc = d.cgroup && !arg_no_process_activities;
                        test_process_spawn(&worker, STRV(test_bin("CRASH_WORKER_BIN")), worker_env);
                } else {
                        size_t logged = count_lines(kill_log);
                        int r = test_daemon_try_start(&d, NULL);

                        if (r == -ECHILD) {
                                count_kill(&l, &c, d.proc.exit_status, kill_log, logged, &f);
                                f.startup_kills++;
                                continue;
                        }
                        ASSERT_OK(r);
                }
                c.kill_at = now_usec() + (c.point >= 0 || c.power ? KILLPOINT_WAIT_USEC
                                                                  : 20000 + rnd_below(400000));
                /* Every fifth cycle the worker dies too, early in the cycle. */
                if (k % 5 == 2)
                        c.worker_at = now_usec() + rnd_below(50000);
                /* Another fifth, the activity processes that run at a random moment. */
                if (k % 5 == 4)
                        c.procs_at = now_usec() + rnd_below(400000);
                run_cycle(&l, &c, &worker, kill_log, worker_env, &f);
        }

        /* No more kills: the load finishes. */
        snprintf(kill_at, sizeof(kill_at), "DURABLED_KILL_AT=none:0");
        snprintf(fault, sizeof(fault), "DURABLED_FAULT=");
        if (!arg_soak_usec)
                test_daemon_restart(&d);
        deadline = now_usec() + DRAIN_USEC;
        while (!load_done(&l)) {
                ASSERT_LT(now_usec(), deadline);
                assert_worker_alive(&worker);
                ASSERT_TRUE(load_step(&l, &f, false));
        }
        ASSERT_NOT_NULL(l.client);

        log = read_file(effect_log);
        effects_load(&effects, log);
        f.effects = effects.n;
        for (size_t i = 0; i < l.n_wfs; i++) {
                ASSERT_TRUE(l.wfs[i].start_acked);
                check_result(l.client, &l.wfs[i], l.proc);
                check_history(l.client, &l.wfs[i], l.proc, &effects, &f);
        }
        free(effects.keys);
        check_runs(l.client, &l);
        l.client = dur_client_free(l.client);
        (void) test_process_kill(&worker, SIGTERM);
        test_daemon_stop(&d); /* test builds also lint every history at a clean stop */
        check_integrity(&d);

        print_figures(&l, &f, now_usec() - t0);
        /* The run counts only when enough kills landed inside a write transaction (or, with
         * --power-loss, when most power failures happened where they were asked for). */
        if (arg_power_loss)
                ASSERT_GE(2 * (f.power[0] + f.power[1]), f.kills);
        else if (!arg_soak_usec)
                ASSERT_GE(4 * f.in_txn, f.kills);
        free(l.wfs);
        (void) test_rm_rf(dir);
}

static void parse_args(int argc, char *argv[]) {
        static const struct option options[] = {
                { "kills", required_argument, NULL, 'k' },
                { "seed", required_argument, NULL, 's' },
                { "power-loss", no_argument, NULL, 'p' },
                { "soak-seconds", required_argument, NULL, 'S' },
                { "no-process-activities", no_argument, NULL, 'P' },
                {},
        };
        const char *env = getenv("CRASH_KILLS");
        int c;

        if (env)
                arg_kills = (unsigned) strtoul(env, NULL, 10);
        arg_seed = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
        while ((c = getopt_long(argc, argv, "k:s:", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        arg_kills = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        arg_seed = strtoull(optarg, NULL, 10);
                        break;
                case 'p':
                        arg_power_loss = true;
                        break;
                case 'S':
                        arg_soak_usec = strtoull(optarg, NULL, 10) * TEST_USEC_PER_SEC;
                        break;
                case 'P':
                        arg_no_process_activities = true;
                        break;
                default:
                        fprintf(stderr, "usage: crash-loop [--kills K] [--seed S] [--power-loss] "
                                        "[--soak-seconds N] [--no-process-activities]\n");
                        exit(EXIT_FAILURE);
                }
        rng_state = arg_seed ? arg_seed : 1;
}

int main(int argc, char *argv[]) {
        parse_args(argc, argv);
        optind = 1;
        return test_main(1, argv);
}
