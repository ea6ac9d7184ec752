/* The harness's own test: the ASSERT_*() macros (their failures run in a child: this executable
 * with --fail-case NAME), skips, and tests/lib/daemon.h against fake-durabled ($DURABLED_BIN)
 * and, when systemd-notify is installed, fake-durabled.sh ($FAKE_DURABLED_SH). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/daemon.h"

static char *read_text(const char *dir, const char *name) {
        char path[4096], *buf;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "re");
        if (!f)
                return NULL;
        buf = calloc(1, 8192);
        n = buf ? fread(buf, 1, 8191, f) : 0;
        (void) n;
        fclose(f);
        return buf;
}

static bool dir_exists(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

TEST(assert_pass) {
        size_t three = 3;
        uint64_t big = UINT64_MAX;
        int minus_one = -1;
        _cleanup_free_ char *s = NULL;

        ASSERT_EQ(three, 3);
        ASSERT_EQ(-1, -1L);
        ASSERT_NE(big, minus_one); /* by value, not by bits */
        ASSERT_LT(minus_one, 0u);
        ASSERT_GT(big, minus_one);
        ASSERT_LE(three, three);
        ASSERT_GE(three, 2);
        ASSERT_EQ(true, 1);
        ASSERT_TRUE(three == 3);
        ASSERT_FALSE(three == 4);
        ASSERT_EQ(ASSERT_OK(7), 7);
        ASSERT_ERROR(-EINVAL, -EINVAL);
        ASSERT_OK_ERRNO(getpid());
        s = ASSERT_NOT_NULL(strdup("durable"));
        ASSERT_STREQ(s, "durable");
        ASSERT_STRNE(s, "durabled");
        ASSERT_STREQ(NULL, NULL);
        ASSERT_STRNE(s, NULL);
        ASSERT_STR_CONTAINS(s, "rab");
        ASSERT_NULL(NULL);
        ASSERT_PTR_EQ(s, s);
}

TEST(skipped) {
        SKIP("shows how a test is skipped");
}

/* ---- failures, each run in a child ---- */

static void fail_eq(void) {
        size_t n = 1;
        ASSERT_EQ(n, -2);
}
static void fail_ok(void) {
        ASSERT_OK(-ENOENT);
}
static void fail_ok_errno(void) {
        ASSERT_OK_ERRNO(open("/nonexistent/x", O_RDONLY | O_CLOEXEC));
}
static void fail_error(void) {
        ASSERT_ERROR(-EPERM, -EINVAL);
}
static void fail_streq(void) {
        ASSERT_STREQ("a", NULL);
}
static void fail_contains(void) {
        ASSERT_STR_CONTAINS("durable", "xyz");
}
static void fail_true(void) {
        ASSERT_TRUE(1 == 2);
}
/* A failure while a daemon and a worker run: both must be killed and the directory removed. */
static void fail_with_daemon(void) {
        static TestDaemon d;
        static TestProcess p;

        test_daemon_start(&d, NULL);
        test_process_spawn(&p, STRV("sleep", "infinity"), NULL);
        printf("PIDS %d %d %s\n", (int) d.proc.pid, (int) p.pid, d.dir);
        ASSERT_TRUE(false);
}
static void fail_stop_unclean(void) {
        _cleanup_(test_daemon_free) TestDaemon d = {};

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--fake-mode=unclean") });
        test_daemon_stop(&d);
}
static void fail_start_dies(void) {
        _cleanup_(test_daemon_free) TestDaemon d = {};

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--fake-mode=die") });
}
static void fail_spawn_missing(void) {
        _cleanup_(test_process_free) TestProcess p = {};

        test_process_spawn(&p, STRV("/nonexistent/worker"), NULL);
}
static void fail_run_timeout(void) {
        _cleanup_(test_run_free) TestRun r = {};

        test_run(&r, STRV("sleep", "infinity"), &(TestRunOpts){ .timeout_usec = 100000 });
}
static void fail_leftover(void); /* defined with the tests */

static const struct {
        const char *name;
        void (*func)(void);
        const char *expect; /* in stderr */
} fail_cases[] = {
        { "eq", fail_eq, "expected \"n == -2\", but n is 1 and -2 is -2" },
        { "ok", fail_ok, "returned -2 (ENOENT: No such file or directory)" },
        { "ok_errno", fail_ok_errno, "failed: -2 (ENOENT" },
        { "error", fail_error,
          "returned -1 (EPERM: Operation not permitted), expected -22 (EINVAL" },
        { "streq", fail_streq, "but \"a\" != \"(null)\"" },
        { "contains", fail_contains, "\"durable\" does not contain \"xyz\"" },
        { "true", fail_true, "expected \"1 == 2\" to be true" },
        { "with_daemon", fail_with_daemon, "Assertion failed" },
        { "stop_unclean", fail_stop_unclean,
          "did not exit cleanly on SIGTERM: exited with status 1" },
        { "start_dies", fail_start_dies,
          "exited with status 3 before READY=1 (last STATUS=failing)" },
        { "spawn_missing", fail_spawn_missing,
          "Failed to execute /nonexistent/worker: -2 (ENOENT" },
        { "run_timeout", fail_run_timeout, "sleep did not finish within" },
        { "leftover", fail_leftover, "harness objects still live" },
};

static void run_fail_case(size_t i, TestRun *r) {
        test_run(r, STRV("/proc/self/exe", "--fail-case", fail_cases[i].name), NULL);
        ASSERT_EQ(r->exit_code, 1);
        /* Failures name the test's file:line; the runner's own check names test.c. */
        ASSERT_STR_CONTAINS(r->err,
                            streq(fail_cases[i].name, "leftover") ? "test.c:" : "test-harness.c:");
        ASSERT_STR_CONTAINS(r->err, fail_cases[i].expect);
}

TEST(assert_failures) {
        for (size_t i = 0; i < ELEMENTSOF(fail_cases); i++) {
                _cleanup_(test_run_free) TestRun r = {};

                if (streq(fail_cases[i].name, "with_daemon"))
                        continue;
                run_fail_case(i, &r);
        }
}

TEST(failure_kills_children) {
        _cleanup_(test_run_free) TestRun r = {};
        int daemon_pid, worker_pid;
        char dir[4096];

        for (size_t i = 0; i < ELEMENTSOF(fail_cases); i++)
                if (streq(fail_cases[i].name, "with_daemon"))
                        run_fail_case(i, &r);
        ASSERT_EQ(sscanf(ASSERT_NOT_NULL(strstr(r.out, "PIDS ")), "PIDS %d %d %4095s", &daemon_pid,
                         &worker_pid, dir),
                  3);
        ASSERT_ERROR(kill(daemon_pid, 0) < 0 ? -errno : 0, -ESRCH);
        ASSERT_ERROR(kill(worker_pid, 0) < 0 ? -errno : 0, -ESRCH);
        ASSERT_FALSE(dir_exists(dir));
        ASSERT_STR_CONTAINS(r.err, "removed");
}

TEST(select_and_skip) {
        _cleanup_(test_run_free) TestRun a = {}, b = {}, c = {}, d = {};

        ASSERT_EQ(test_run(&a, STRV("/proc/self/exe", "skipped"), NULL), 77);
        ASSERT_STR_CONTAINS(a.out, "SKIP: skipped: shows how a test is skipped");
        ASSERT_EQ(test_run(&b, STRV("/proc/self/exe", "test_assert_pass", "skipped"), NULL), 0);
        ASSERT_STR_CONTAINS(b.out, "1 passed, 1 skipped");
        ASSERT_EQ(test_run(&c, STRV("/proc/self/exe", "no_such_test"), NULL), 1);
        ASSERT_EQ(test_run(&d, STRV("/proc/self/exe", "--list"), NULL), 0);
        ASSERT_STR_CONTAINS(d.out, "assert_pass\nskipped\n");
}

/* ---- the daemon harness ---- */

TEST(daemon_start_stop) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *args = NULL, *env = NULL, *want = NULL;
        _cleanup_close_ int fd = -EBADF;

        ASSERT_OK_ERRNO(setenv("JOURNAL_STREAM", "8:42", 1));
        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--log-level=debug"),
                                                 .env = STRV("FAKE_VAR=x y") });
        ASSERT_OK_ERRNO(unsetenv("JOURNAL_STREAM"));
        ASSERT_EQ(d.n_starts, 1u);
        ASSERT_GT(d.proc.pid, 0);
        ASSERT_STREQ(d.status, "ready");
        ASSERT_STREQ(getenv("DURABLED_SOCKET"), d.socket_path);

        args = ASSERT_NOT_NULL(read_text(d.state_dir, "args"));
        ASSERT_OK(asprintf(&want, "--user\n--state-dir\n%s\n--socket\n%s\n--log-level=debug\n",
                           d.state_dir, d.socket_path));
        ASSERT_STREQ(args, want);
        free(want);
        env = ASSERT_NOT_NULL(read_text(d.state_dir, "env"));
        ASSERT_OK(asprintf(&want, "DURABLED_SOCKET=%s\nFAKE_VAR=x y\nJOURNAL_STREAM=\n",
                           d.socket_path));
        ASSERT_STREQ(env, want);

        fd = ASSERT_OK(test_daemon_connect(&d));
        test_daemon_stop(&d);
        ASSERT_EQ(d.proc.pid, 0);
        ASSERT_EQ(WIFEXITED(d.proc.exit_status), true);
        ASSERT_ERROR(test_daemon_wait_exit(&d, 0), -ESRCH);
}

TEST(daemon_kill_restart) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *dir = NULL, *starts = NULL;
        int status;

        test_daemon_start(&d, NULL);
        dir = ASSERT_NOT_NULL(strdup(d.dir));
        status = test_daemon_kill(&d, SIGKILL);
        ASSERT_TRUE(WIFSIGNALED(status));
        ASSERT_EQ(WTERMSIG(status), SIGKILL);

        test_daemon_restart(&d);
        ASSERT_STREQ(d.dir, dir);
        test_daemon_restart(&d); /* stops the running one first */
        ASSERT_EQ(d.n_starts, 3u);
        starts = ASSERT_NOT_NULL(read_text(d.state_dir, "starts"));
        ASSERT_STREQ(starts, "start\nstart\nstart\n");

        test_daemon_free(&d);
        ASSERT_FALSE(dir_exists(dir));
        ASSERT_NULL(getenv("DURABLED_SOCKET"));
}

TEST(daemon_dies_before_ready) {
        _cleanup_(test_daemon_free) TestDaemon d = {};

        ASSERT_ERROR(
                test_daemon_try_start(&d, &(TestDaemonOpts){ .args = STRV("--fake-mode=die") }),
                -ECHILD);
        ASSERT_TRUE(WIFEXITED(d.proc.exit_status));
        ASSERT_EQ(WEXITSTATUS(d.proc.exit_status), 3);
        ASSERT_STREQ(d.status, "failing");
        ASSERT_EQ(d.n_starts, 0u);
}

TEST(daemon_ready_timeout) {
        _cleanup_(test_daemon_free) TestDaemon d = {};

        /* The fake never sends READY=1, so this waits out the (short) timeout, whatever the speed. */
        ASSERT_ERROR(test_daemon_try_start(&d, &(TestDaemonOpts){ .args = STRV("--fake-mode=hang"),
                                                                  .timeout_usec = 200000 }),
                     -ETIMEDOUT);
        ASSERT_EQ(d.proc.pid, 0);
}

TEST(daemon_keep_dir) {
        _cleanup_free_ char *dir = NULL;
        TestDaemon d = {};

        ASSERT_OK_ERRNO(setenv("DURABLED_TEST_KEEP", "1", 1));
        test_daemon_start(&d, NULL);
        dir = ASSERT_NOT_NULL(strdup(d.dir));
        test_daemon_free(&d);
        ASSERT_OK_ERRNO(unsetenv("DURABLED_TEST_KEEP"));
        ASSERT_TRUE(dir_exists(dir));
        ASSERT_OK(test_rm_rf(dir));
        ASSERT_FALSE(dir_exists(dir));
        ASSERT_OK(test_rm_rf(dir));
}

TEST(daemon_systemd_notify) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_run_free) TestRun r = {};
        const char *sh = getenv("FAKE_DURABLED_SH");

        if (!sh)
                SKIP("$FAKE_DURABLED_SH is not set");
        if (test_run(&r, STRV("sh", "-c", "command -v systemd-notify"), NULL) != 0)
                SKIP("systemd-notify is not installed");
        ASSERT_OK_ERRNO(setenv("DURABLED_BIN", sh, 1));
        test_daemon_start(&d, NULL);
        ASSERT_STREQ(d.status, "fake (sh) ready");
        test_daemon_stop(&d);
}

/* ---- processes and commands ---- */

TEST(process_spawn_wait_kill) {
        _cleanup_(test_process_free) TestProcess p = {};
        char buf[64];
        int status;

        test_process_spawn(&p, STRV("sh", "-c", "test \"$X\" = 1 && exit 4"), STRV("X=1"));
        status = ASSERT_OK(test_process_wait(&p, 0));
        ASSERT_STREQ(test_exit_status_str(status, buf), "exited with status 4");

        test_process_spawn(&p, STRV("sleep", "infinity"), NULL);
        ASSERT_ERROR(test_process_wait(&p, 1000), -ETIMEDOUT);
        status = test_process_kill(&p, SIGTERM);
        ASSERT_STREQ(test_exit_status_str(status, buf), "killed by signal TERM");
        ASSERT_EQ(p.pid, 0);
}

TEST(run_capture) {
        _cleanup_(test_run_free) TestRun a = {}, b = {}, c = {};
        _cleanup_free_ char *big = NULL;
        size_t n = 3 * 1000 * 1000;

        ASSERT_EQ(test_run(&a, STRV("sh", "-c", "echo out; echo err >&2; echo \"$Y\"; exit 3"),
                           &(TestRunOpts){ .env = STRV("Y=why") }),
                  3);
        ASSERT_STREQ(a.out, "out\nwhy\n");
        ASSERT_STREQ(a.err, "err\n");
        ASSERT_TRUE(WIFEXITED(a.status));

        /* More than a pipe holds in both directions at once. */
        big = ASSERT_NOT_NULL(malloc(n + 1));
        memset(big, 'a', n);
        big[n] = 0;
        ASSERT_EQ(test_run(&b, STRV("cat"), &(TestRunOpts){ .input = big }), 0);
        ASSERT_EQ(strlen(b.out), n);
        ASSERT_STREQ(b.out, big);

        ASSERT_EQ(test_run(&c, STRV("sh", "-c", "kill -9 $$"), NULL), -1);
        ASSERT_TRUE(WIFSIGNALED(c.status));
        ASSERT_STREQ(c.out, "");
}

static bool in_fail_case;

TEST(leftover) {
        static TestProcess p;

        if (!in_fail_case)
                SKIP("runs only as --fail-case leftover");
        /* Returns without freeing what it spawned: the runner must notice. */
        test_process_spawn(&p, STRV("sleep", "infinity"), NULL);
}

static void fail_leftover(void) {
        char *argv[] = { (char *) "test-harness", (char *) "leftover", NULL };

        (void) test_main(2, argv);
}

static int fail_case(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(fail_cases); i++)
                if (streq(fail_cases[i].name, name)) {
                        fail_cases[i].func();
                        return 2; /* should not get here */
                }
        return 3;
}

int main(int argc, char **argv) {
        if (argc == 3 && streq(argv[1], "--fail-case")) {
                in_fail_case = true;
                return fail_case(argv[2]);
        }
        return test_main(argc, argv);
}
