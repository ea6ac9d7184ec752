/* durablectl verify (VerifyHistory, daemon/verify.c): a sound store passes with exit status 0;
 * a history broken behind the daemon's back (an event deleted with SQLite while it was stopped)
 * is named with its workflow, run and event, with exit status 1; unknown workflow ids and bad
 * arguments are errors. And the start-up check: a database whose pages are garbage is refused
 * with its path and SQLite's words, and left as it was. */

#include <durable/durable.h>
#include <fcntl.h>
#include <stdio.h>

#include <jansson.h>
#include <sqlite3.h>

#include "tests/lib/daemon.h"

#define CTL(r, ...)                                                                      \
        ({                                                                               \
                test_run_free(r);                                                        \
                test_run((r), STRV(test_bin("DURABLECTL_BIN"), __VA_ARGS__), &ctl_opts); \
        })

static const TestRunOpts ctl_opts = { .env = STRV("DURABLECTL_PAGER=cat", "NO_COLOR=1") };

/* Runs @sql on the stopped daemon's database. */
static void db_exec(TestDaemon *d, const char *sql) {
        _cleanup_free_ char *path = NULL;
        sqlite3 *db = NULL;

        ASSERT_GE(asprintf(&path, "%s/durabled.db", d->state_dir), 0);
        ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_changes(db), 1);
        sqlite3_close(db);
}

TEST(verify_sound_then_broken) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_run_free) TestRun r = {};
        json_error_t e;
        json_t *j;
        int status;

        test_daemon_start(&d, NULL);
        /* Two runs without a worker: Started, WorkflowTaskScheduled, Signaled. */
        ASSERT_EQ(CTL(&r, "start", "T", "--id", "v-1", "--task-queue", "none"), 0);
        ASSERT_EQ(CTL(&r, "start", "T", "--id", "v-2", "--task-queue", "none"), 0);
        ASSERT_EQ(CTL(&r, "signal", "v-1", "go", "{\"n\": 1}"), 0);

        ASSERT_EQ(CTL(&r, "verify"), 0);
        ASSERT_STR_CONTAINS(r.out, "2 runs, 5 events checked: 0 broken");
        ASSERT_EQ(CTL(&r, "verify", "v-1"), 0);
        ASSERT_STR_CONTAINS(r.out, "1 run, 3 events checked: 0 broken");
        ASSERT_EQ(CTL(&r, "--json", "verify", "v-2"), 0);
        j = ASSERT_NOT_NULL(json_loads(r.out, 0, &e));
        ASSERT_EQ(json_integer_value(json_object_get(j, "runs")), 1);
        ASSERT_EQ(json_integer_value(json_object_get(j, "problem_count")), 0);
        ASSERT_EQ(json_array_size(json_object_get(j, "problems")), 0u);
        json_decref(j);
        ASSERT_EQ(CTL(&r, "verify", "v-1", "nosuch"), 1);
        ASSERT_STR_CONTAINS(r.err, "workflow 'nosuch' not found (not_found)");

        /* Break v-1's history: event 2 disappears. */
        test_daemon_stop(&d);
        db_exec(&d, "DELETE FROM events WHERE event_id = 2 AND run_id = "
                    "(SELECT run_id FROM runs WHERE workflow_id = 'v-1')");
        test_daemon_restart(&d);
        ASSERT_EQ(CTL(&r, "verify"), 1);
        ASSERT_STR_CONTAINS(r.out, "v-1 run ");
        ASSERT_STR_CONTAINS(r.out, "event 3 (WorkflowExecutionSignaled): expected event id 2");
        ASSERT_STR_CONTAINS(r.out, "2 runs, 3 events checked: 1 broken");
        ASSERT_EQ(CTL(&r, "verify", "v-2"), 0);
        ASSERT_EQ(CTL(&r, "--json", "verify", "v-1"), 1);
        j = ASSERT_NOT_NULL(json_loads(r.out, 0, &e));
        ASSERT_EQ(json_integer_value(json_object_get(j, "problem_count")), 1);
        ASSERT_EQ(json_integer_value(json_object_get(
                          json_array_get(json_object_get(j, "problems"), 0), "event_id")),
                  3);
        json_decref(j);

        /* Test builds lint every history at a clean stop and exit non-zero on a broken one. */
        status = test_daemon_kill(&d, SIGTERM);
#if DURABLED_EXPENSIVE_CHECKS
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
#else
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
}

TEST(verify_bad_arguments) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_run_free) TestRun r = {};

        test_daemon_start(&d, NULL);
        ASSERT_EQ(CTL(&r, "verify", ""), 1);
        ASSERT_STR_CONTAINS(r.err, "\"workflow_ids\" must be an array of non-empty strings");
        ASSERT_EQ(CTL(&r, "verify", "--bogus"), 2);
        /* An empty store is sound. */
        ASSERT_EQ(CTL(&r, "verify"), 0);
        ASSERT_STR_CONTAINS(r.out, "0 runs, 0 events checked: 0 broken");
}

static char *read_all(const char *path, size_t *ret_size) {
        FILE *f = ASSERT_NOT_NULL(fopen(path, "re"));
        char *buf;
        long n;

        ASSERT_OK_ERRNO(fseek(f, 0, SEEK_END));
        n = ftell(f);
        ASSERT_GT(n, 0);
        rewind(f);
        buf = ASSERT_NOT_NULL(malloc((size_t) n));
        ASSERT_EQ(fread(buf, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        *ret_size = (size_t) n;
        return buf;
}

TEST(corrupt_database_refused) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_run_free) TestRun r = {};
        _cleanup_free_ char *db = NULL, *before = NULL, *after = NULL;
        _cleanup_close_ int fd = -EBADF;
        char garbage[4096];
        size_t n_before, n_after;
        dur_client *c = NULL;

        test_daemon_start(&d, NULL);
        ASSERT_OK(dur_client_connect(&c, d.socket_path));
        for (unsigned i = 0; i < 100; i++) {
                char id[32];
                dur_start_opts o = { .workflow_id = id, .task_queue = "none" };
                snprintf(id, sizeof(id), "c-%u", i);
                ASSERT_OK(dur_client_start(c, "T", &o, NULL, NULL));
        }
        dur_client_free(c);
        test_daemon_stop(&d); /* folds the WAL into the database */

        /* Page 3 (of 4096 bytes) becomes garbage. */
        ASSERT_GE(asprintf(&db, "%s/durabled.db", d.state_dir), 0);
        memset(garbage, 0x5a, sizeof(garbage));
        fd = ASSERT_OK_ERRNO(open(db, O_WRONLY | O_CLOEXEC));
        ASSERT_EQ(pwrite(fd, garbage, sizeof(garbage), 2 * 4096), (ssize_t) sizeof(garbage));
        fd = safe_close(fd);
        before = read_all(db, &n_before);

        ASSERT_EQ(test_run(&r,
                           STRV(test_bin("DURABLED_BIN"), "--user", "--state-dir", d.state_dir,
                                "--socket", d.socket_path),
                           NULL),
                  1);
        ASSERT_STR_CONTAINS(r.err, db);
        ASSERT_STR_CONTAINS(r.err, "failed its integrity check (");
        ASSERT_STR_CONTAINS(r.err, "refusing to start");
        after = read_all(db, &n_after);
        ASSERT_EQ(n_after, n_before);
        ASSERT_TRUE(memcmp(before, after, n_before) == 0);
}

DEFINE_TEST_MAIN()
