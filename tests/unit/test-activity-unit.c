/* daemon/activity-unit.c: the activity unit parser (every key, every kind of malformed file with
 * its file:line message), directory precedence and name collisions; daemon/cgroup.c: limits
 * written where their controller is available, a warning naming each one that is not (against a
 * temporary directory standing in for a cgroup, since this host may lack the controllers). */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/activity-unit.h"
#include "daemon/cgroup.h"
#include "tests/lib/daemon.h"
#include "tests/lib/test.h"

static char *write_tmp(const char *dir, const char *name, const char *content) {
        char *path;
        FILE *f;

        ASSERT_GE(asprintf(&path, "%s/%s", dir, name), 0);
        f = ASSERT_NOT_NULL(fopen(path, "we"));
        ASSERT_GE(fputs(content, f), 0);
        ASSERT_EQ(fclose(f), 0);
        return path;
}

/* Loads @content as @name in a fresh directory; the error message or NULL in *ret_error. */
static int load(const char *name, const char *content, ActivityUnit **ret, char **ret_error) {
        _cleanup_free_ char *dir = ASSERT_NOT_NULL(test_mkdtemp());
        _cleanup_free_ char *path = write_tmp(dir, name, content);
        int r;

        *ret = NULL;
        *ret_error = NULL;
        r = activity_unit_load(path, ret, ret_error);
        (void) test_rm_rf(dir);
        return r;
}

TEST(every_key) {
        ActivityUnit *u;
        char *err;

        ASSERT_OK(load("backup.activity",
                       "# a comment\n"
                       "; another\n"
                       "[Unit]\n"
                       "Description=Nightly backup\n"
                       "\n"
                       "[Activity]\n"
                       "Name=backup-db\n"
                       "ExecStart=/usr/bin/backup --id \"%w/%a\" 'attempt %A' --unit=%n 100%%\n"
                       "TaskQueue=ops\n"
                       "StartToCloseSec=1h 30min\n"
                       "ScheduleToCloseSec=1d\n"
                       "HeartbeatSec=500ms\n"
                       "RetryInitialSec=2\n"
                       "RetryBackoff=1.5\n"
                       "RetryMaxSec=5min\n"
                       "RetryMaxAttempts=7\n"
                       "NonRetryableExitStatus=3 64\n"
                       "MaxConcurrent=2\n"
                       "Priority=1\n"
                       "RateLimit=100/1min\n"
                       "RateLimitBurst=5\n"
                       "User=root\n"
                       "Group=0\n"
                       "WorkingDirectory=/tmp\n"
                       "Environment=A=1 \"B=two words\"\n"
                       "Environment=C=3\n"
                       "EnvironmentFile=-/etc/default/backup\n"
                       "MemoryMax=512M\n"
                       "TasksMax=64\n"
                       "CPUQuota=150%\n"
                       "KillSignal=SIGINT\n"
                       "TimeoutStopSec=5 \\\n"
                       "  s\n",
                       &u, &err));
        ASSERT_NULL(err);
        ASSERT_STREQ(u->name, "backup-db");
        ASSERT_STREQ(u->description, "Nightly backup");
        ASSERT_STREQ(u->exec_argv[0], "/usr/bin/backup");
        ASSERT_STREQ(u->exec_argv[2], "%w/%a");
        ASSERT_STREQ(u->exec_argv[3], "attempt %A");
        ASSERT_STREQ(u->exec_argv[5], "100%%");
        ASSERT_NULL(u->exec_argv[6]);
        ASSERT_STREQ(u->task_queue, "ops");
        ASSERT_EQ(u->start_to_close_usec, UINT64_C(5400000000));
        ASSERT_EQ(u->schedule_to_close_usec, UINT64_C(86400000000));
        ASSERT_EQ(u->heartbeat_usec, 500000);
        ASSERT_EQ(u->retry_initial_usec, 2000000);
        ASSERT_TRUE(u->retry_backoff == 1.5);
        ASSERT_EQ(u->retry_max_usec, 300000000);
        ASSERT_EQ(u->retry_max_attempts, 7);
        ASSERT_TRUE(u->non_retryable_exit[0] & (1 << 3));
        ASSERT_TRUE(u->non_retryable_exit[8] & 1);
        ASSERT_FALSE(u->non_retryable_exit[0] & (1 << 4));
        ASSERT_EQ(u->max_concurrent, 2);
        ASSERT_EQ(u->priority, 1);
        ASSERT_EQ(u->rate_limit, 100);
        ASSERT_EQ(u->rate_period_usec, UINT64_C(60000000));
        ASSERT_EQ(u->rate_burst, 5);
        ASSERT_STREQ(u->user, "root");
        ASSERT_STREQ(u->group, "0");
        ASSERT_STREQ(u->working_directory, "/tmp");
        ASSERT_STREQ(u->environment[0], "A=1");
        ASSERT_STREQ(u->environment[1], "B=two words");
        ASSERT_STREQ(u->environment[2], "C=3");
        ASSERT_STREQ(u->environment_files[0], "-/etc/default/backup");
        ASSERT_EQ(u->memory_max, UINT64_C(512) << 20);
        ASSERT_EQ(u->tasks_max, 64);
        ASSERT_EQ(u->cpu_quota_pct, 150);
        ASSERT_EQ(u->kill_signal, SIGINT);
        ASSERT_EQ(u->timeout_stop_usec, 5000000);
        activity_unit_free(u);
}

TEST(defaults) {
        ActivityUnit *u;
        char *err;

        ASSERT_OK(load("plain.activity", "[Activity]\nExecStart=/bin/true\n", &u, &err));
        ASSERT_STREQ(u->name, "plain");
        ASSERT_NULL(u->task_queue);
        ASSERT_EQ(u->kill_signal, SIGTERM);
        ASSERT_EQ(u->timeout_stop_usec, 90 * TEST_USEC_PER_SEC);
        ASSERT_EQ(u->memory_max, UNIT_LIMIT_UNSET);
        ASSERT_EQ(u->tasks_max, UNIT_LIMIT_UNSET);
        ASSERT_EQ(u->retry_max_attempts, UNIT_LIMIT_UNSET);
        ASSERT_EQ(u->max_concurrent, 0);
        activity_unit_free(u);
}

TEST(malformed_units) {
        static const struct {
                const char *content, *error;
        } cases[] = {
                { "ExecStart=/bin/true\n", "bad.activity:1: assignment outside of a section" },
                { "[Activity\n", "bad.activity:1: section header without ']'" },
                { "[Service]\n", "bad.activity:1: unknown section [Service]" },
                { "[Activity]\nExecStart /bin/true\n", "bad.activity:2: expected Key=value" },
                { "[Activity]\n=x\n", "bad.activity:2: assignment without a key" },
                { "[Activity]\nExecStart=/bin/true\nFoo=bar\n",
                  "bad.activity:3: unknown key 'Foo' in section [Activity]" },
                { "[Unit]\nExecStart=/bin/true\n", "bad.activity:2: unknown key 'ExecStart' in "
                                                   "section [Unit]" },
                { "[Activity]\n", "bad.activity: ExecStart= is missing" },
                { "[Activity]\nExecStart=true\n", "ExecStart=: the program must be an absolute" },
                { "[Activity]\nExecStart=\n", "ExecStart=: the program must be an absolute" },
                { "[Activity]\nExecStart=/bin/echo \"open\n", "ExecStart=: unterminated quote" },
                { "[Activity]\nExecStart=/bin/echo \\q\n", "ExecStart=: bad backslash escape" },
                { "[Activity]\nExecStart=/bin/echo %x\n", "unknown specifier in '%x'" },
                { "[Activity]\nExecStart=/bin/true\nStartToCloseSec=soon\n",
                  "bad.activity:3: StartToCloseSec=soon: expected a time span" },
                { "[Activity]\nExecStart=/bin/true\nHeartbeatSec=5 fortnights\n",
                  "HeartbeatSec=5 fortnights" },
                { "[Activity]\nExecStart=/bin/true\nScheduleToCloseSec=-1\n",
                  "ScheduleToCloseSec=-1" },
                { "[Activity]\nExecStart=/bin/true\nRetryBackoff=0.5\n",
                  "RetryBackoff=0.5: expected a number from 1.0" },
                { "[Activity]\nExecStart=/bin/true\nRetryMaxAttempts=many\n",
                  "RetryMaxAttempts=many" },
                { "[Activity]\nExecStart=/bin/true\nRetryInitialSec=10\nRetryMaxSec=5\n",
                  "RetryMaxSec= is smaller than RetryInitialSec=" },
                { "[Activity]\nExecStart=/bin/true\nNonRetryableExitStatus=3 256\n",
                  "'256' is not an exit status from 1 to 255" },
                { "[Activity]\nExecStart=/bin/true\nNonRetryableExitStatus=0\n",
                  "'0' is not an exit status" },
                { "[Activity]\nExecStart=/bin/true\nMaxConcurrent=0\n",
                  "MaxConcurrent=0: expected a number from 1 to 100000" },
                { "[Activity]\nExecStart=/bin/true\nPriority=6\n",
                  "Priority=6: expected a priority key from 1 (first) to 5" },
                { "[Activity]\nExecStart=/bin/true\nPriority=high\n", "Priority=high" },
                { "[Activity]\nExecStart=/bin/true\nRateLimit=10/fortnight\n",
                  "RateLimit=10/fortnight: expected N/PERIOD" },
                { "[Activity]\nExecStart=/bin/true\nRateLimit=0/1s\n", "RateLimit=0/1s" },
                { "[Activity]\nExecStart=/bin/true\nRateLimit=5/10us\n", "RateLimit=5/10us" },
                { "[Activity]\nExecStart=/bin/true\nRateLimit=many\n", "RateLimit=many" },
                { "[Activity]\nExecStart=/bin/true\nRateLimitBurst=0\n",
                  "RateLimitBurst=0: expected a number from 1 to 1000000" },
                { "[Activity]\nExecStart=/bin/true\nUser=no-such-user-here\n",
                  "User=no-such-user-here: no such user on this host" },
                { "[Activity]\nExecStart=/bin/true\nGroup=no-such-group-here\n",
                  "Group=no-such-group-here: no such group on this host" },
                { "[Activity]\nExecStart=/bin/true\nWorkingDirectory=tmp\n",
                  "WorkingDirectory=tmp: expected an absolute path" },
                { "[Activity]\nExecStart=/bin/true\nEnvironment=1A=x\n",
                  "'1A=x' is not NAME=value" },
                { "[Activity]\nExecStart=/bin/true\nEnvironment=NOVALUE\n",
                  "'NOVALUE' is not NAME=value" },
                { "[Activity]\nExecStart=/bin/true\nEnvironmentFile=relative\n",
                  "EnvironmentFile=relative: expected an absolute path" },
                { "[Activity]\nExecStart=/bin/true\nMemoryMax=lots\n", "MemoryMax=lots" },
                { "[Activity]\nExecStart=/bin/true\nMemoryMax=1X\n", "MemoryMax=1X" },
                { "[Activity]\nExecStart=/bin/true\nTasksMax=0\n", "TasksMax=0" },
                { "[Activity]\nExecStart=/bin/true\nCPUQuota=50\n",
                  "CPUQuota=50: expected a percentage" },
                { "[Activity]\nExecStart=/bin/true\nCPUQuota=0%\n", "CPUQuota=0%" },
                { "[Activity]\nExecStart=/bin/true\nKillSignal=SIGFOO\n",
                  "KillSignal=SIGFOO: expected a signal name" },
                { "[Activity]\nExecStart=/bin/true\nName=has space\n", "Name=has space" },
                { "[Activity]\nExecStart=/bin/true\nName=a/b\n", "Name=a/b" },
                { "[Activity]\nExecStart=/bin/true\nTaskQueue=\n", "TaskQueue= must be" },
                { "[Activity]\nExecStart=/bin/true\nTimeoutStopSec=\n", "TimeoutStopSec=" },
                { "[Activity]\nExecStart=/bin/true\nHeartbeatSec=1s\\\nFoo=1\n",
                  "HeartbeatSec=1s Foo=1" },
                { "[Activity]\nExecStart=/bin/true\n\n\nStartToCloseSec=x\n", "bad.activity:5:" },
                { "[Activity]\nExecStart=/bin/true \\\n  arg\nBogus=1\n", "bad.activity:4:" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ActivityUnit *u = NULL;
                char *err = NULL;

                printf("case %zu: %s\n", i, cases[i].error);
                ASSERT_ERROR(load("bad.activity", cases[i].content, &u, &err), -EINVAL);
                ASSERT_NULL(u);
                ASSERT_NOT_NULL(err);
                ASSERT_STR_CONTAINS(err, cases[i].error);
                ASSERT_STR_CONTAINS(err, "/bad.activity:"); /* always file:line */
                free(err);
        }
}

TEST(binary_and_huge_files) {
        _cleanup_free_ char *dir = ASSERT_NOT_NULL(test_mkdtemp());
        _cleanup_free_ char *path = NULL;
        ActivityUnit *u = NULL;
        char *err = NULL;
        FILE *f;

        ASSERT_GE(asprintf(&path, "%s/nul.activity", dir), 0);
        f = ASSERT_NOT_NULL(fopen(path, "we"));
        ASSERT_EQ(fwrite("[Activity]\0x", 1, 12, f), 12);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_ERROR(activity_unit_load(path, &u, &err), -EINVAL);
        ASSERT_STR_CONTAINS(err, "NUL byte");
        free(err);

        f = ASSERT_NOT_NULL(fopen(path, "we"));
        for (int i = 0; i < 70000; i++)
                fputc('#', f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_ERROR(activity_unit_load(path, &u, &err), -EINVAL);
        ASSERT_STR_CONTAINS(err, "larger than 64 KiB");
        free(err);
        (void) test_rm_rf(dir);
}

TEST(directories_precedence_and_collisions) {
        _cleanup_free_ char *a = ASSERT_NOT_NULL(test_mkdtemp());
        _cleanup_free_ char *b = ASSERT_NOT_NULL(test_mkdtemp());
        char *dirs[] = { a, b, "/nonexistent/durabled-test", NULL };
        UnitSet *set = NULL;
        ActivityUnit *u;
        UnitError *e;

        free(write_tmp(a, "x.activity", "[Activity]\nExecStart=/bin/a\n"));
        free(write_tmp(b, "x.activity", "[Activity]\nExecStart=/bin/b\n")); /* masked by a's */
        free(write_tmp(b, "y.activity", "[Activity]\nName=x\nExecStart=/bin/y\n"));
        free(write_tmp(b, "z.activity", "[Activity]\nExecStart=/bin/z\nTaskQueue=ops\n"));
        free(write_tmp(b, "broken.activity", "[Activity]\nExecStart=\n"));
        free(write_tmp(b, "ignored.service", "[Service]\n"));
        ASSERT_OK(unit_set_load(&set, dirs));
        ASSERT_EQ(set->n_units, 2);
        ASSERT_EQ(set->n_errors, 2);
        u = ASSERT_NOT_NULL(unit_set_get(set, "x"));
        ASSERT_STREQ(u->exec_argv[0], "/bin/a");
        /* TaskQueue= restricts the unit to that queue. */
        ASSERT_NOT_NULL(unit_set_find(set, "z", "ops"));
        ASSERT_NULL(unit_set_find(set, "z", "other"));
        ASSERT_NOT_NULL(unit_set_find(set, "x", "any"));
        ASSERT_NULL(unit_set_find(set, "nope", "any"));
        LIST_FOREACH(errors, e, set->errors) {
                if (streq(e->file, "y.activity"))
                        ASSERT_STR_CONTAINS(e->message, "Name=x is already declared by");
                else
                        ASSERT_STR_CONTAINS(e->message, "broken.activity:2:");
        }
        unit_set_free(set);
        (void) test_rm_rf(a);
        (void) test_rm_rf(b);
}

TEST(default_dirs) {
        char **dirs = NULL;
        const char *extra[] = { "/x", NULL };

        ASSERT_OK(setenv("XDG_CONFIG_HOME", "/home/u/.config", 1));
        ASSERT_OK(unit_dirs(extra, true, &dirs));
        ASSERT_STREQ(dirs[0], "/x");
        ASSERT_STREQ(dirs[1], "/home/u/.config/durabled/activities");
        ASSERT_STREQ(dirs[2], "/etc/durabled/activities");
        ASSERT_STREQ(dirs[3], "/usr/lib/durabled/activities");
        ASSERT_NULL(dirs[4]);
        strv_free(dirs);
        ASSERT_OK(unit_dirs(NULL, false, &dirs));
        ASSERT_STREQ(dirs[0], "/etc/durabled/activities");
        ASSERT_STREQ(dirs[1], "/usr/lib/durabled/activities");
        ASSERT_NULL(dirs[2]);
        strv_free(dirs);
}

TEST(expand_and_split) {
        char *s, **w;

        ASSERT_OK(unit_expand("%w:%r:%a:%A:%n:%%", "wf", "run", "act", 3, "unit", &s));
        ASSERT_STREQ(s, "wf:run:act:3:unit:%");
        free(s);
        ASSERT_OK(unit_split_words("  a 'b c' \"d\\\"e\" f\\ g\\n  ", &w));
        ASSERT_STREQ(w[0], "a");
        ASSERT_STREQ(w[1], "b c");
        ASSERT_STREQ(w[2], "d\"e");
        ASSERT_STREQ(w[3], "f g\n");
        ASSERT_NULL(w[4]);
        strv_free(w);
}

TEST(timespans) {
        uint64_t v;

        ASSERT_OK(unit_parse_timespan("30", &v));
        ASSERT_EQ(v, 30 * TEST_USEC_PER_SEC);
        ASSERT_OK(unit_parse_timespan("2min 5s 10ms", &v));
        ASSERT_EQ(v, UINT64_C(125010000));
        ASSERT_OK(unit_parse_timespan("1h", &v));
        ASSERT_EQ(v, UINT64_C(3600000000));
        ASSERT_ERROR(unit_parse_timespan("", &v), -EINVAL);
        ASSERT_ERROR(unit_parse_timespan("5 parsecs", &v), -EINVAL);
        ASSERT_ERROR(unit_parse_timespan("99999999999999999999", &v), -ERANGE);
}

static void collect_warning(const char *msg, void *userdata) {
        char *buf = userdata;

        strncat(buf, msg, 1023 - strlen(buf));
        strncat(buf, "\n", 1023 - strlen(buf));
}

static char *read_all(const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;
        char buf[256] = "";
        FILE *f;

        ASSERT_GE(asprintf(&path, "%s/%s", dir, name), 0);
        f = fopen(path, "re");
        if (!f)
                return NULL;
        if (!fgets(buf, sizeof(buf), f))
                buf[0] = 0;
        fclose(f);
        return strdup(buf);
}

/* A directory that stands in for an attempt cgroup: cgroup.controllers says what is available,
 * empty files stand in for the limits' files. */
TEST(limits_written_where_controllers_exist) {
        _cleanup_free_ char *dir = ASSERT_NOT_NULL(test_mkdtemp());
        CgroupLimits l = { .memory_max = 1 << 20, .tasks_max = 32, .cpu_quota_pct = 50 };
        char warnings[1024] = "";
        char *v;

        free(write_tmp(dir, "cgroup.controllers", "memory pids\n"));
        free(write_tmp(dir, "memory.max", ""));
        free(write_tmp(dir, "pids.max", ""));
        ASSERT_EQ(cgroup_write_limits(dir, &l, collect_warning, warnings), 1);
        v = read_all(dir, "memory.max");
        ASSERT_STREQ(v, "1048576");
        free(v);
        v = read_all(dir, "pids.max");
        ASSERT_STREQ(v, "32");
        free(v);
        ASSERT_NULL(read_all(dir, "cpu.max"));
        ASSERT_STR_CONTAINS(warnings, "CPUQuota= cannot be enforced: the cpu controller is not "
                                      "available");
        ASSERT_TRUE(strstr(warnings, "MemoryMax") == NULL);

        /* All three available. */
        warnings[0] = 0;
        free(write_tmp(dir, "cgroup.controllers", "cpu memory pids\n"));
        free(write_tmp(dir, "cpu.max", ""));
        ASSERT_EQ(cgroup_write_limits(dir, &l, collect_warning, warnings), 0);
        v = read_all(dir, "cpu.max");
        ASSERT_STREQ(v, "50000 100000");
        free(v);
        ASSERT_STREQ(warnings, "");

        /* None: every limit is named. */
        free(write_tmp(dir, "cgroup.controllers", "\n"));
        ASSERT_EQ(cgroup_write_limits(dir, &l, collect_warning, warnings), 3);
        ASSERT_STR_CONTAINS(warnings, "MemoryMax=");
        ASSERT_STR_CONTAINS(warnings, "TasksMax=");
        ASSERT_STR_CONTAINS(warnings, "CPUQuota=");
        (void) test_rm_rf(dir);
}

/* The example units of the source tree load (units/activities/, examples/). */
TEST(example_units_load) {
        const char *src = getenv("DURABLED_SOURCE_DIR");
        _cleanup_free_ char *dir = NULL;
        char *dirs[2] = {};
        UnitSet *set = NULL;
        UnitError *e;

        if (!src)
                SKIP("$DURABLED_SOURCE_DIR is not set");
        ASSERT_GE(asprintf(&dir, "%s/units/activities", src), 0);
        dirs[0] = dir;
        ASSERT_OK(unit_set_load(&set, dirs));
        LIST_FOREACH(errors, e, set->errors)
                printf("refused: %s\n", e->message);
        ASSERT_EQ(set->n_errors, 0);
        ASSERT_GE(set->n_units, 1);
        ASSERT_NOT_NULL(unit_set_get(set, "disk-usage"));
        unit_set_free(set);
}

DEFINE_TEST_MAIN();
