#pragma once
/* The integration-test harness: a real durabled on a private temporary directory, helper processes
 * (workers), and commands whose output the test inspects (durablectl).
 *
 * A TestDaemon owns one mkdtemp() directory ${TMPDIR:-/tmp}/durabled-test-XXXXXX holding
 *     state/         the --state-dir (kept across restarts)
 *     io.sock        the --socket path
 *     notify.sock    the NOTIFY_SOCKET the harness listens on while the daemon starts up
 * and runs "$DURABLED_BIN --user --state-dir DIR/state --socket DIR/io.sock [opts->args]". Start-up
 * is event driven: the harness poll()s the notify socket and a pidfd of the child until READY=1
 * arrives, the child exits, or the timeout (30 s) passes; the last two fail the test. The notify
 * socket is closed once READY=1 came, so a daemon that keeps sending STATUS= never blocks on a full
 * queue. After a start, $DURABLED_SOCKET names the daemon's socket, so that libdurable in the test
 * and every child the test spawns find it.
 *
 * Every process the harness starts dies with the test: PR_SET_PDEATHSIG(SIGKILL) in the child, and
 * a failed assertion kills and reaps all of them (tests/lib/test.h fail hooks). The directory is
 * removed by test_daemon_free(), also after a failure, unless $DURABLED_TEST_KEEP is set.
 *
 * Functions without a return value fail the test themselves, naming the caller's file:line; the
 * try/wait variants return a negative errno instead where a test may expect the failure. The
 * structs are the caller's (usually on the stack, zero-initialised); *_free() releases what they
 * hold and leaves them zeroed, so _cleanup_(test_daemon_free) works. */

#include <signal.h> /* for the callers: SIGKILL, SIGTERM */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h> /* for the callers: WIFEXITED() ... on exit statuses */

#include "tests/lib/test.h"

/* A NULL-terminated string array literal: STRV("durablectl", "list"). */
#define STRV(...) ((const char *const[]){ __VA_ARGS__, NULL })

#define TEST_USEC_PER_SEC UINT64_C(1000000)

/* The harness's timeout for any wait: 30 s, or $DURABLED_TEST_TIMEOUT_SEC (slow machines, valgrind). */
uint64_t test_timeout_usec(void);
/* The path in environment variable @env_name (DURABLED_BIN, DURABLECTL_BIN, ORDERS_WORKER_BIN,
 * set by meson); fails the test when it is unset. */
#define test_bin(env_name) test_bin_at(env_name, __FILE__, __LINE__)
const char *test_bin_at(const char *env_name, const char *file, int line);
/* rm -rf; no error when @path does not exist. */
int test_rm_rf(const char *path);
/* A new mkdtemp() directory ${TMPDIR:-/tmp}/durabled-test-XXXXXX, to free() and test_rm_rf(). */
char *test_mkdtemp(void);

/* A child process. pid is 0 when it is not running. */
typedef struct TestProcess {
        pid_t pid;
        int pidfd;       /* valid while pid > 0 */
        int exit_status; /* waitpid() status of the last exit; -1 before the first */
        char *name;      /* basename of argv[0], for messages */
        TestFailHook hook;
} TestProcess;

/* Forks and execs @argv (argv[0] is searched in $PATH unless it has a '/') with the test's
 * environment plus @env ("NAME=value", NULL-terminated, may be NULL); stdin is /dev/null, stdout
 * and stderr are the test's. Fails the test when the exec fails. @p must not be running. */
#define test_process_spawn(p, argv, ...) \
        test_process_spawn_at(p, argv, __VA_ARGS__, __FILE__, __LINE__)
void test_process_spawn_at(TestProcess *p,
                           const char *const *argv,
                           const char *const *env,
                           const char *file,
                           int line);
/* Waits for @p to exit and reaps it: returns its waitpid() status, or -ETIMEDOUT (it keeps
 * running). @timeout_usec 0 means test_timeout_usec(). */
int test_process_wait(TestProcess *p, uint64_t timeout_usec);
/* Sends @sig and reaps the process; returns its waitpid() status. A process that does not exit
 * within the timeout fails the test. */
#define test_process_kill(p, sig) test_process_kill_at(p, sig, __FILE__, __LINE__)
int test_process_kill_at(TestProcess *p, int sig, const char *file, int line);
/* SIGKILLs and reaps @p if it runs; frees what it holds. */
void test_process_free(TestProcess *p);
/* "exited with status 3", "killed by signal KILL", ... in @buf. */
const char *test_exit_status_str(int status, char buf[static 64]);

typedef struct TestDaemonOpts {
        const char *const *args; /* appended to the command line; NULL-terminated, may be NULL */
        const char *const *env;  /* added to the daemon's environment ("NAME=value") */
        uint64_t timeout_usec;   /* how long to wait for READY=1; 0 means test_timeout_usec() */
} TestDaemonOpts;

typedef struct TestDaemon {
        char *dir;           /* the mkdtemp() directory */
        char *state_dir;     /* dir/state */
        char *socket_path;   /* dir/io.sock */
        char *notify_path;   /* dir/notify.sock */
        char *status;        /* the last STATUS= the daemon sent while starting, or NULL */
        unsigned n_starts;   /* successful starts, restarts included */
        TestDaemonOpts opts; /* a copy; the arrays it points to must outlive the TestDaemon */
        TestProcess proc;
        TestFailHook dir_hook;
        char *cgroup; /* the daemon's own cgroup (below the test's), or NULL without cgroup v2 */
} TestDaemon;

/* Starts durabled (creating the directory on the first start, reusing it afterwards) and waits for
 * READY=1. Returns 0; -ECHILD when the daemon exited first (status in d->proc.exit_status), or
 * -ETIMEDOUT when READY=1 did not come in time (the daemon is then killed). @o may be NULL and is
 * copied; a later restart reuses it. */
int test_daemon_try_start(TestDaemon *d, const TestDaemonOpts *o);
/* As test_daemon_try_start(), failing the test on any error. */
/* (Variadic only so that a compound literal's commas may appear in @o.) */
#define test_daemon_start(d, ...) test_daemon_start_at(d, __VA_ARGS__, __FILE__, __LINE__)
void test_daemon_start_at(TestDaemon *d, const TestDaemonOpts *o, const char *file, int line);
/* Starts the daemon again on the same state dir and socket with the same options; a running
 * daemon is stopped first (test_daemon_stop()). */
#define test_daemon_restart(d) test_daemon_restart_at(d, __FILE__, __LINE__)
void test_daemon_restart_at(TestDaemon *d, const char *file, int line);
/* Sends @sig (SIGKILL to simulate a crash) and reaps the daemon; returns its waitpid() status. */
#define test_daemon_kill(d, sig) test_process_kill_at(&(d)->proc, sig, __FILE__, __LINE__)
/* SIGTERM, wait, and fail the test unless the daemon exited with status 0 (under ASan this
 * includes LeakSanitizer's verdict). */
#define test_daemon_stop(d) test_daemon_stop_at(d, __FILE__, __LINE__)
void test_daemon_stop_at(TestDaemon *d, const char *file, int line);
/* Waits for the daemon to exit by itself: its waitpid() status or -ETIMEDOUT. */
int test_daemon_wait_exit(TestDaemon *d, uint64_t timeout_usec);
/* Waits until no process is left in @cgroup or below (cgroup.events "populated 0", awaited with
 * poll()); -ETIMEDOUT after @timeout_usec (0: test_timeout_usec()). */
int test_cgroup_wait_empty(const char *cgroup, uint64_t timeout_usec);
/* Connects a SOCK_STREAM socket to the daemon's socket (for raw protocol tests): an fd or -errno. */
int test_daemon_connect(TestDaemon *d);
/* Stops the daemon if it runs (asserting a clean exit), removes the directory unless
 * $DURABLED_TEST_KEEP is set, frees what @d holds. */
void test_daemon_free(TestDaemon *d);

typedef struct TestRunOpts {
        const char *const *env; /* added to the environment ("NAME=value") */
        const char *input;      /* written to stdin; NULL means /dev/null */
        uint64_t timeout_usec;  /* 0 means test_timeout_usec(); running longer fails the test */
} TestRunOpts;

typedef struct TestRun {
        char *out;     /* stdout, NUL-terminated */
        char *err;     /* stderr, NUL-terminated */
        int status;    /* waitpid() status */
        int exit_code; /* the exit status, or -1 when killed by a signal */
} TestRun;

/* Runs @argv to completion, capturing stdout and stderr; @o may be NULL. Returns r->exit_code.
 * The command line, exit status and stderr are echoed to the test log. */
#define test_run(r, argv, ...) test_run_at(r, argv, __VA_ARGS__, __FILE__, __LINE__)
int test_run_at(
        TestRun *r, const char *const *argv, const TestRunOpts *o, const char *file, int line);
void test_run_free(TestRun *r);
