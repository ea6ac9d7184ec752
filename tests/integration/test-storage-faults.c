/* Storage faults (DESIGN.md §3), injected below SQLite by the fault VFS of -Dfault-injection=true
 * builds (daemon/store-fault.c, DURABLED_FAULT=KIND:N[:forever]). For every N of a sweep, a
 * daemon whose N-th write fails (EIO), whose N-th write finds the disk full (ENOSPC), whose
 * writes fail from the N-th on, or whose N-th fsync fails, serves a fixed load (workflows
 * started, then signalled). The test proves:
 *
 *   - a request hit by the fault is answered with an error: unavailable, or resource_exhausted
 *     for a full disk; a failed fsync makes the daemon exit non-zero (it is not retried);
 *   - nothing is acknowledged that was not written: after a restart without the fault every
 *     acknowledged start and signal is there, and (write faults) no failed start left a run;
 *   - a fault that happens once clears: the next request succeeds on the same daemon;
 *   - the histories pass VerifyHistory and the database PRAGMA integrity_check.
 * The figures (faults injected, requests failed and acknowledged) are printed at the end. */

#include <durable/durable.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "tests/lib/daemon.h"

/* Workflows per iteration, each started then signalled: 24 writing requests, one commit each,
 * so that the N-th write of every sweep lands in the load (a commit is one write of the WAL:
 * daemon/store-walbuf.c). */
#define LOAD 12

typedef struct Sweep {
        const char *kind;
        bool forever;
        unsigned max_n;
        const char *code; /* the error code a hit request gets */
} Sweep;

static const Sweep sweeps[] = {
        { "write", false, 24, "unavailable" }, { "full", false, 24, "resource_exhausted" },
        { "write", true, 6, "unavailable" },   { "full", true, 6, "resource_exhausted" },
        { "sync", false, 8, "unavailable" },
};

typedef struct Figures {
        unsigned iterations, faults, failed, acked, exits;
} Figures;

typedef struct Wf {
        char id[64];
        bool start_acked, start_failed, signal_acked;
} Wf;

static char fault_env[64];

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

/* A request's outcome: 1 acknowledged, 0 failed with the sweep's error code, -1 connection lost
 * (only a failed fsync may do that). */
static int outcome(dur_client *c, int r, const Sweep *s, Figures *f) {
        const char *code = dur_client_error_code(c);

        if (r >= 0) {
                f->acked++;
                return 1;
        }
        if (!code || !*code) {
                ASSERT_STREQ(s->kind, "sync");
                return -1;
        }
        ASSERT_STREQ(code, s->code);
        f->failed++;
        return 0;
}

/* Runs the load; returns false when the daemon went away. */
static bool run_load(dur_client *c, Wf *wfs, unsigned iter, const Sweep *s, Figures *f) {
        for (unsigned i = 0; i < LOAD; i++) {
                Wf *w = &wfs[i];
                dur_start_opts o = { .workflow_id = w->id, .task_queue = "none" };
                dur_buf *input;
                int k;

                snprintf(w->id, sizeof(w->id), "fault-%u-%u", iter, i);
                k = outcome(c, dur_client_start(c, "T", &o, NULL, NULL), s, f);
                if (k < 0)
                        return false;
                w->start_acked = k == 1;
                w->start_failed = k == 0;
                if (!w->start_acked)
                        continue;
                input = ASSERT_NOT_NULL(dur_args("{s:u}", "tag", i));
                k = outcome(c, dur_client_signal(c, w->id, NULL, "go", input), s, f);
                dur_buf_free(input);
                if (k < 0)
                        return false;
                w->signal_acked = k == 1;
        }
        return true;
}

/* After the restart: what was acknowledged is there; a failed start left nothing (write faults
 * roll back; after a failed fsync the outcome is unknown, as the answer said). */
static void check_wf(dur_client *c, const Wf *w, const Sweep *s) {
        const msgpack_object *events;
        dur_buf *req, *answer = NULL;
        msgpack_unpacked u;
        bool signaled = false;
        int r;

        req = ASSERT_NOT_NULL(dur_args("{s:s, s:s}", "op", "GetHistory", "workflow_id", w->id));
        r = dur_client_call(c, req, &answer);
        dur_buf_free(req);
        if (!w->start_acked) {
                if (w->start_failed && !streq(s->kind, "sync")) {
                        ASSERT_EQ(r, -ENOENT);
                        ASSERT_STREQ(dur_client_error_code(c), "not_found");
                }
                dur_buf_free(answer);
                return;
        }
        ASSERT_OK(r);
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, answer->data, answer->size, NULL),
                  MSGPACK_UNPACK_SUCCESS);
        events = ASSERT_NOT_NULL(get(&u.data, "events"));
        for (uint32_t i = 0; i < events->via.array.size; i++) {
                const msgpack_object *t = get(&events->via.array.ptr[i], "event_type");
                if (t && t->type == MSGPACK_OBJECT_STR && t->via.str.size == 25 &&
                    memcmp(t->via.str.ptr, "WorkflowExecutionSignaled", 25) == 0)
                        signaled = true;
        }
        if (w->signal_acked)
                ASSERT_TRUE(signaled);
        msgpack_unpacked_destroy(&u);
        dur_buf_free(answer);
}

static void check_store(TestDaemon *d, dur_client *c) {
        _cleanup_free_ char *path = NULL;
        const msgpack_object *problems;
        dur_buf *req, *answer = NULL;
        msgpack_unpacked u;
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;

        req = ASSERT_NOT_NULL(dur_args("{s:s}", "op", "VerifyHistory"));
        ASSERT_OK(dur_client_call(c, req, &answer));
        dur_buf_free(req);
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, answer->data, answer->size, NULL),
                  MSGPACK_UNPACK_SUCCESS);
        problems = ASSERT_NOT_NULL(get(&u.data, "problem_count"));
        ASSERT_EQ(problems->via.u64, 0u);
        msgpack_unpacked_destroy(&u);
        dur_buf_free(answer);

        test_daemon_stop(d);
        ASSERT_GE(asprintf(&path, "%s/durabled.db", d->state_dir), 0);
        ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        ASSERT_STREQ((const char *) sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static void iteration(TestDaemon *d, const Sweep *s, unsigned n, unsigned iter, Figures *f) {
        Wf wfs[LOAD] = {};
        dur_client *c = NULL;
        bool alive;
        int status;

        snprintf(fault_env, sizeof(fault_env), "DURABLED_FAULT=%s:%u%s", s->kind, n,
                 s->forever ? ":forever" : "");
        test_daemon_restart(d);
        ASSERT_OK(dur_client_connect(&c, d->socket_path));
        alive = run_load(c, wfs, iter, s, f);
        if (alive && !s->forever) {
                /* A fault that happened once has cleared: the daemon works again. */
                dur_start_opts o = { .workflow_id = "after-the-fault", .task_queue = "none" };
                int r = dur_client_start(c, "T", &o, NULL, NULL);
                if (r < 0 && streq(s->kind, "sync"))
                        alive = false;
                else {
                        if (r < 0) {
                                /* The fault landed on this start (the load wrote less than N
                                 * times): it was refused and kept nothing; the next one works. */
                                ASSERT_STREQ(dur_client_error_code(c), s->code);
                                r = dur_client_start(c, "T", &o, NULL, NULL);
                        }
                        ASSERT_OK(r);
                        ASSERT_OK(dur_client_terminate(c, "after-the-fault", NULL, NULL));
                }
        }
        c = dur_client_free(c);
        if (!alive) {
                /* DESIGN.md §3: a failed fsync is not retried; the daemon exits non-zero. */
                status = test_daemon_wait_exit(d, 0);
                ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
                f->exits++;
        } else {
                status = test_daemon_kill(d, SIGTERM);
                ASSERT_TRUE(WIFEXITED(status));
        }

        /* The fault is gone after the restart. */
        snprintf(fault_env, sizeof(fault_env), "DURABLED_FAULT=");
        test_daemon_restart(d);
        ASSERT_OK(dur_client_connect(&c, d->socket_path));
        for (unsigned i = 0; i < LOAD; i++)
                check_wf(c, &wfs[i], s);
        check_store(d, c);
        dur_client_free(c);
        f->iterations++;
}

TEST(storage_fault_sweep) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *dir = NULL, *log = NULL, *log_env = NULL;
        const char *env[] = { NULL, fault_env, NULL };
        Figures f = {};
        unsigned iter = 0;
        FILE *fp;
        char line[64];

        if (!DURABLED_FAULT_INJECTION)
                SKIP("the fault VFS needs -Dfault-injection=true");
        dir = ASSERT_NOT_NULL(test_mkdtemp());
        ASSERT_GE(asprintf(&log, "%s/faults", dir), 0);
        ASSERT_GE(asprintf(&log_env, "DURABLED_FAULT_LOG=%s", log), 0);
        env[0] = log_env;
        snprintf(fault_env, sizeof(fault_env), "DURABLED_FAULT=");
        test_daemon_start(&d, &(TestDaemonOpts){ .env = env });
        for (size_t k = 0; k < ELEMENTSOF(sweeps); k++)
                for (unsigned n = 1; n <= sweeps[k].max_n; n++)
                        iteration(&d, &sweeps[k], n, iter++, &f);
        fp = fopen(log, "re");
        while (fp && fgets(line, sizeof(line), fp))
                f.faults++;
        if (fp)
                fclose(fp);
        printf("storage-faults: %u iterations, %u faults injected, %u requests failed with the "
               "right error, %u acknowledged and found after the restart, %u exits after a "
               "failed fsync\n",
               f.iterations, f.faults, f.failed, f.acked, f.exits);
        /* Every sweep hit something: the faults did land. */
        ASSERT_GE(f.faults, 40u);
        ASSERT_GE(f.exits, 8u);
        (void) test_rm_rf(dir);
}

/* A StartWorkflow that waits for its outcome (dur_client_execute()) is answered with the error of
 * its pass's failed commit, not left waiting for a run that was never kept. */
TEST(start_that_waits_fails_with_its_pass) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        const char *env[] = { "DURABLED_FAULT=write:1", NULL };
        dur_start_opts o = { .workflow_id = "waits", .task_queue = "none" };
        dur_outcome out = {};
        dur_client *c;

        if (!DURABLED_FAULT_INJECTION)
                SKIP("the fault VFS needs -Dfault-injection=true");
        test_daemon_start(&d, &(TestDaemonOpts){ .env = env });
        ASSERT_OK(dur_client_connect(&c, d.socket_path));
        ASSERT_ERROR(dur_client_execute(c, "T", &o, NULL, 0, &out), -EAGAIN);
        ASSERT_STREQ(dur_client_error_code(c), "unavailable");
        /* Nothing was kept: the id is free. */
        ASSERT_ERROR(dur_client_result(c, "waits", NULL, 1, &out), -ENOENT);
        dur_client_free(c);
}

DEFINE_TEST_MAIN()
