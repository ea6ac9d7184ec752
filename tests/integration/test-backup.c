/* durablectl backup FILE (BackupDatabase, daemon/backup.c): a copy taken while another process
 * keeps starting workflows is a sound database (PRAGMA integrity_check) holding a prefix of what
 * was acknowledged; a daemon started on it serves those workflows and its histories pass
 * durablectl verify. An existing FILE is never overwritten; a missing directory, a relative path
 * resolved by durablectl, and bad arguments are handled with clear errors. */

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "tests/lib/daemon.h"

#define CTL(r, ...)                                                                      \
        ({                                                                               \
                test_run_free(r);                                                        \
                test_run((r), STRV(test_bin("DURABLECTL_BIN"), __VA_ARGS__), &ctl_opts); \
        })

static const TestRunOpts ctl_opts = { .env = STRV("DURABLECTL_PAGER=cat", "NO_COLOR=1") };

/* Opens @path read-only, checks its integrity, returns the number of runs it holds. */
static int backup_runs(const char *path) {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;
        int n;

        ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        ASSERT_STREQ((const char *) sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM runs", -1, &st, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

static int count_lines(const char *s) {
        int n = 0;

        for (; (s = strchr(s, '\n')); s++)
                n++;
        return n;
}

TEST(backup_under_load_and_restore) {
        _cleanup_(test_daemon_free) TestDaemon d = {}, restored = {};
        _cleanup_(test_process_free) TestProcess load = {};
        _cleanup_(test_run_free) TestRun r = {};
        _cleanup_free_ char *dir = NULL, *script = NULL, *db = NULL;
        char *path[3] = {};
        int runs[3], before;
        struct stat st;

        test_daemon_start(&d, NULL);
        dir = ASSERT_NOT_NULL(test_mkdtemp());
        /* A writer that keeps the daemon busy while the backups are taken. */
        ASSERT_GE(asprintf(&script,
                           "i=0; while %s start T --id bg-$i --task-queue none >/dev/null; do "
                           "i=$((i+1)); done",
                           test_bin("DURABLECTL_BIN")),
                  0);
        ASSERT_EQ(CTL(&r, "start", "T", "--id", "first", "--task-queue", "none"), 0);
        test_process_spawn(&load, STRV("sh", "-c", script), NULL);
        for (int i = 0; i < 3; i++) {
                ASSERT_GE(asprintf(&path[i], "%s/backup-%d.db", dir, i), 0);
                ASSERT_EQ(CTL(&r, "list", "--limit", "100000"), 0);
                before = count_lines(r.out) - 1; /* the header line */
                ASSERT_EQ(CTL(&r, "backup", path[i]), 0);
                ASSERT_STR_CONTAINS(r.out, "Backed up the database to ");
                ASSERT_STR_CONTAINS(r.out, path[i]);
                /* Everything acknowledged before the backup is in it; the copy is sound. */
                runs[i] = backup_runs(path[i]);
                ASSERT_GE(runs[i], before);
                if (i > 0)
                        ASSERT_GE(runs[i], runs[i - 1]);
                ASSERT_OK_ERRNO(stat(path[i], &st));
                ASSERT_EQ(st.st_mode & 0777, 0600u);
        }
        (void) test_process_kill(&load, SIGKILL);

        /* Never over an existing file, which stays as it was. */
        ASSERT_EQ(CTL(&r, "backup", path[0]), 1);
        ASSERT_STR_CONTAINS(r.err, "already exists");
        ASSERT_EQ(backup_runs(path[0]), runs[0]);
        /* A directory that does not exist. */
        ASSERT_EQ(CTL(&r, "backup", "/nonexistent-durabled-dir/x.db"), 1);
        ASSERT_STR_CONTAINS(r.err, "cannot open directory '/nonexistent-durabled-dir'");
        ASSERT_STR_CONTAINS(r.err, "(not_found)");
        ASSERT_EQ(CTL(&r, "backup"), 2);
        ASSERT_EQ(CTL(&r, "backup", "a", "b"), 2);
        /* No temporary file is left behind. */
        ASSERT_EQ(CTL(&r, "--json", "backup", path[1]), 1);
        test_run_free(&r);
        ASSERT_EQ(test_run(&r, STRV("sh", "-c", "ls \"$0\" | grep -c tmp || true", dir), NULL), 0);
        ASSERT_STR_CONTAINS(r.out, "0");

        /* Restore: a daemon on the copy serves its workflows, with sound histories. */
        test_daemon_start(&restored, NULL);
        test_daemon_stop(&restored);
        ASSERT_GE(asprintf(&db, "%s/durabled.db", restored.state_dir), 0);
        test_run_free(&r);
        ASSERT_EQ(test_run(&r,
                           STRV("sh", "-c", "rm -f \"$1\"-wal \"$1\"-shm && cp \"$0\" \"$1\"",
                                path[2], db),
                           NULL),
                  0);
        test_daemon_restart(&restored);
        ASSERT_EQ(CTL(&r, "describe", "first"), 0);
        ASSERT_EQ(CTL(&r, "verify"), 0);
        ASSERT_STR_CONTAINS(r.out, " 0 broken");
        ASSERT_EQ(CTL(&r, "list", "--limit", "100000"), 0);
        ASSERT_EQ(count_lines(r.out) - 1, runs[2]);
        (void) test_rm_rf(dir);
        for (int i = 0; i < 3; i++)
                free(path[i]);
}

DEFINE_TEST_MAIN()
