/* Process activities (DESIGN.md §7, durabled.activity(5)) through the real daemon: shell-script
 * activities declared in activity units run as real processes in real cgroups (the harness gives
 * each daemon a cgroup of its own), scheduled by test-worker's ActivityWorkflow and
 * CancelWorkflow. Covered: success with input and result as JSON; failures retried until success;
 * a non-retryable exit status and a non-retryable error object; a grandchild that outlives a
 * start-to-close timeout (both killed with the cgroup); a heartbeat timeout after notify
 * heartbeats (and STATUS= in DescribeWorkflow); cancellation of a process that ignores SIGTERM;
 * a daemon SIGKILLed while an attempt runs (the orphan is killed at restart, the attempt retried);
 * malformed units refused while the daemon runs, reload and SIGHUP; User=, WorkingDirectory=,
 * Environment=, EnvironmentFile= and a clean environment; MaxConcurrent=; noise and strangers on
 * the notify socket; standalone activities (durablectl activity); a C function built with
 * dur_activity_main() (examples/word-count.c).
 *
 * Synchronisation is by events: workflow outcomes (long polls), FIFOs the scripts write to,
 * pidfds and cgroup.events. The exceptions ask again every 10 ms, bounded by the harness timeout,
 * where nothing announces the effect: a datagram read (STATUS=, heartbeats) and SIGHUP handled. */

#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tests/integration/worker-util.h"

typedef struct Fixture {
        char *units; /* the --activity-dir, with the scripts */
        TestFailHook units_hook;
        char arg[4200];
        const char *args[3];   /* the daemon's extra arguments: --activity-dir=units, extra_arg */
        const char *extra_arg; /* another option for the daemon, or NULL */
        TestDaemon daemon;
        TestProcess worker;
        dur_client *client;
        json_t *result; /* the last activity_result()'s workflow result */
} Fixture;

/* ActivityWorkflow's {"result": R}: R, borrowed (valid until the next call). */
static json_t *activity_result(Fixture *f, const dur_outcome *o) {
        json_decref(f->result);
        f->result = outcome_result(o);
        return json_object_get(f->result, "result");
}

static void write_file(const char *dir, const char *name, mode_t mode, const char *content) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = ASSERT_NOT_NULL(fopen(path, "we"));
        ASSERT_GE(fputs(content, f), 0);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_OK_ERRNO(chmod(path, mode));
}

/* A unit @name running script @name.sh (@script after "#!/bin/sh\n"), with @keys added. */
static void unit_add(Fixture *f, const char *name, const char *keys, const char *script) {
        char buf[8192], file[300];

        snprintf(file, sizeof(file), "%s.sh", name);
        snprintf(buf, sizeof(buf), "#!/bin/sh\nD=%s\n%s", f->units, script);
        write_file(f->units, file, 0755, buf);
        snprintf(buf, sizeof(buf),
                 "[Unit]\nDescription=test unit %s\n\n[Activity]\nExecStart=%s/%s.sh %%w %%A\n%s",
                 name, f->units, name, keys);
        snprintf(file, sizeof(file), "%s.activity", name);
        write_file(f->units, file, 0644, buf);
}

static void units_on_fail(void *userdata) {
        (void) test_rm_rf(userdata);
}

static void fixture_init(Fixture *f) {
        f->units = ASSERT_NOT_NULL(test_mkdtemp());
        test_fail_hook_add(&f->units_hook, units_on_fail, f->units);
}

static void fixture_start(Fixture *f) {
        snprintf(f->arg, sizeof(f->arg), "--activity-dir=%s", f->units);
        f->args[0] = f->arg;
        f->args[1] = f->extra_arg;
        test_daemon_start(&f->daemon, &(TestDaemonOpts){ .args = f->args });
        test_worker_spawn(&f->worker, NULL, NULL);
        f->client = client_connect();
}

static void fixture_done(Fixture *f) {
        f->client = dur_client_free(f->client);
        json_decref(f->result);
        test_process_free(&f->worker);
        test_daemon_free(&f->daemon);
        if (f->units) {
                test_fail_hook_remove(&f->units_hook);
                (void) test_rm_rf(f->units);
                free(f->units);
        }
}

static int
run_activity(Fixture *f, const char *id, const char *input, dur_outcome *o, json_t **ret_events) {
        int r;

        start_json(f->client, "ActivityWorkflow", id, NULL, input, 0);
        r = wait_outcome(f->client, id, o);
        *ret_events = history_get(f->client, id);
        history_assert_invariants(*ret_events);
        return r;
}

static json_t *failure_of(const json_t *events, const char *type) {
        return ev_attr(history_must(events, type), "failure");
}

/* The details payload of a process failure: {exit_status | signal, stderr, error_details?}. */
static json_t *failure_details(const json_t *failure) {
        return ASSERT_NOT_NULL(json_object_get(failure, "details"));
}

static pid_t read_pid(const char *dir, const char *name) {
        char path[4096];
        FILE *f;
        int pid = 0;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = ASSERT_NOT_NULL(fopen(path, "re"));
        ASSERT_EQ(fscanf(f, "%d", &pid), 1);
        fclose(f);
        ASSERT_GT(pid, 0);
        return pid;
}

/* Waits for a process that is not our child to be gone (its pidfd turns readable). */
static void wait_gone(pid_t pid) {
        int fd = pidfd_open(pid, 0);
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (fd < 0) {
                ASSERT_EQ(errno, ESRCH);
                return;
        }
        ASSERT_EQ(poll(&p, 1, (int) (test_timeout_usec() / 1000)), 1);
        close(fd);
}

static json_t *pending_activity(Fixture *f, const char *id);

/* A FIFO @name in @dir, opened O_RDWR|O_NONBLOCK (never blocks, never sees EOF). */
static int fifo_make_in(const char *dir, const char *name) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        ASSERT_OK_ERRNO(mkfifo(path, 0600));
        return ASSERT_OK_ERRNO(open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC));
}

static char *activities_cgroup(Fixture *f) {
        char *p;

        ASSERT_NOT_NULL(f->daemon.cgroup);
        ASSERT_GE(asprintf(&p, "%s/activities", f->daemon.cgroup), 0);
        return p;
}

TEST(shell_activity_succeeds) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *result;

        fixture_init(&f);
        unit_add(&f, "greet", "StartToCloseSec=30s\n",
                 "read -r input\n"
                 "echo \"greeting $1 attempt $2\" >&2\n"
                 "printf '{\"input\": %s, \"argv\": \"%s/%s\", \"key\": \"%s\", \"attempt\": %s}' "
                 "\"$input\" \"$1\" \"$2\" \"$DURABLED_IDEMPOTENCY_KEY\" \"$DURABLED_ATTEMPT\"\n");
        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "greet-1",
                               "{\"activity\": \"greet\", \"input\": {\"name\": \"world\"}}", &o,
                               &events),
                  0);
        ASSERT_STREQ(o.status, "Completed");
        result = activity_result(&f, &o);
        ASSERT_STREQ(json_str(json_object_get(result, "input"), "name"), "world");
        ASSERT_STREQ(json_str(result, "argv"), "greet-1/1");
        ASSERT_STREQ(json_str(result, "key"), "greet-1/1");
        ASSERT_EQ(json_integer_value(json_object_get(result, "attempt")), 1);
        /* The unit's StartToCloseSec= filled what the workflow left unset. */
        ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskScheduled"), "start_to_close_usec"),
                  30 * TEST_USEC_PER_SEC);
        ASSERT_STR_CONTAINS(ev_str(history_must(events, "ActivityTaskStarted"), "identity"),
                            "durabled:greet");
        json_decref(events);
        dur_outcome_done(&o);
}

TEST(user_environment_and_working_directory) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *result;
        char keys[1024];

        fixture_init(&f);
        ASSERT_OK_ERRNO(chmod(f.units, 0755)); /* nobody runs the script */
        write_file(f.units, "env.conf", 0644, "# defaults\nFROM_FILE=\"file value\"\n");
        snprintf(keys, sizeof(keys),
                 "StartToCloseSec=30s\nUser=nobody\nWorkingDirectory=/tmp\n"
                 "Environment=GREETING=\"hello world\" OTHER=1\n"
                 "EnvironmentFile=%s/env.conf\nEnvironmentFile=-/nonexistent/durabled.env\n",
                 f.units);
        unit_add(&f, "whoami", keys,
                 "printf '{\"uid\": %s, \"pwd\": \"%s\", \"greeting\": \"%s\", "
                 "\"from_file\": \"%s\", \"home\": \"%s\", \"leaked\": \"%s\"}' "
                 "\"$(id -u)\" \"$(pwd)\" \"$GREETING\" \"$FROM_FILE\" \"$HOME\" "
                 "\"${DURABLED_SOCKET:-}\"\n");
        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "whoami-1", "{\"activity\": \"whoami\"}", &o, &events), 0);
        ASSERT_STREQ(o.status, "Completed");
        result = activity_result(&f, &o);
        ASSERT_EQ(json_integer_value(json_object_get(result, "uid")), getpwnam("nobody")->pw_uid);
        ASSERT_STREQ(json_str(result, "pwd"), "/tmp");
        ASSERT_STREQ(json_str(result, "greeting"), "hello world");
        ASSERT_STREQ(json_str(result, "from_file"), "file value");
        ASSERT_STREQ(json_str(result, "home"), getpwnam("nobody")->pw_dir);
        /* A clean environment: nothing of the daemon's own. */
        ASSERT_STREQ(json_str(result, "leaked"), "");
        json_decref(events);
        dur_outcome_done(&o);
}

/* GetHistory as a long poll until event @id exists. */
static void wait_event(Fixture *f, const char *wid, uint64_t id) {
        json_t *req =
                ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:I, s:b}", "op", "GetHistory", "workflow_id",
                                          wid, "from_event_id", (json_int_t) id, "wait", 1));
        json_t *answer;
        int r;

        answer = ASSERT_NOT_NULL(call_json(f->client, req, &r));
        ASSERT_GE(json_array_size(json_object_get(answer, "events")), 1);
        json_decref(answer);
        json_decref(req);
}

/* The script of the units that wait: it says it started, then waits for its go. */
#define WAITING_SCRIPT                            \
        "echo \"started $1\" > $D/started.fifo\n" \
        "read -r x < $D/go-$1.fifo\n"             \
        "echo '\"done\"'\n"

/* Two attempts, of unit @unit_a in workflow @a and of @unit_b in @b, when only one may run: B's
 * stays scheduled while A's runs (the pass that scheduled it also decided not to start it), and
 * starts when A's ends. The fixture's daemon is started here. */
static void second_attempt_waits(
        Fixture *f, const char *unit_a, const char *a, const char *unit_b, const char *b) {
        _cleanup_close_ int started = -EBADF, go_a = -EBADF, go_b = -EBADF;
        char line[64], name[64], input[64];
        dur_outcome o = {};
        json_t *p;

        fixture_start(f);
        started = fifo_make_in(f->units, "started.fifo");
        snprintf(name, sizeof(name), "go-%s.fifo", a);
        go_a = fifo_make_in(f->units, name);
        snprintf(name, sizeof(name), "go-%s.fifo", b);
        go_b = fifo_make_in(f->units, name);

        snprintf(input, sizeof(input), "{\"activity\": \"%s\"}", unit_a);
        start_json(f->client, "ActivityWorkflow", a, NULL, input, 0);
        fifo_read_line(started, line, sizeof(line));
        snprintf(name, sizeof(name), "started %s", a);
        ASSERT_STREQ(line, name);
        snprintf(input, sizeof(input), "{\"activity\": \"%s\"}", unit_b);
        start_json(f->client, "ActivityWorkflow", b, NULL, input, 0);
        wait_event(f, b, 5);
        p = ASSERT_NOT_NULL(pending_activity(f, b));
        ASSERT_STREQ(json_str(p, "state"), "Scheduled");
        json_decref(p);

        ASSERT_EQ(write(go_a, "go\n", 3), 3);
        ASSERT_EQ(wait_outcome(f->client, a, &o), 0);
        dur_outcome_done(&o);
        fifo_read_line(started, line, sizeof(line));
        snprintf(name, sizeof(name), "started %s", b);
        ASSERT_STREQ(line, name);
        ASSERT_EQ(write(go_b, "go\n", 3), 3);
        ASSERT_EQ(wait_outcome(f->client, b, &o), 0);
        ASSERT_STREQ(json_string_value(activity_result(f, &o)), "done");
        dur_outcome_done(&o);
}

TEST(max_concurrent) {
        _cleanup_(fixture_done) Fixture f = {};

        fixture_init(&f);
        unit_add(&f, "one", "StartToCloseSec=60s\nMaxConcurrent=1\n", WAITING_SCRIPT);
        second_attempt_waits(&f, "one", "one-a", "one", "one-b");
}

/* durabled --max-activity-processes: attempts past it wait, scheduled, for a process to end
 * (durabled(8), LIMITS), whatever their units, while the daemon serves on. */
TEST(max_activity_processes) {
        _cleanup_(fixture_done) Fixture f = { .extra_arg = "--max-activity-processes=1" };

        fixture_init(&f);
        unit_add(&f, "pa", "StartToCloseSec=60s\n", WAITING_SCRIPT);
        unit_add(&f, "pb", "StartToCloseSec=60s\n", WAITING_SCRIPT);
        second_attempt_waits(&f, "pa", "pa-a", "pb", "pb-b");
}

/* RateLimit=10/1s with RateLimitBurst=2 (ratelimit.h): the starts of 8 attempts, as the daemon
 * recorded them (DURABLED_STARTED_TIME=, which the script answers), never exceed the bucket: for
 * any two, the starts between them, both included, are at most 2 + elapsed x 10/s. */
TEST(rate_limit_of_a_unit) {
        _cleanup_(fixture_done) Fixture f = {};
        enum {
                N = 8,
                RATE = 10,
                BURST = 2
        };
        uint64_t t[N];
        dur_outcome o = {};
        char id[16];

        fixture_init(&f);
        unit_add(&f, "paced", "StartToCloseSec=60s\nRateLimit=10/1s\nRateLimitBurst=2\n",
                 "echo \"$DURABLED_STARTED_TIME\"\n");
        fixture_start(&f);
        for (size_t i = 0; i < N; i++) {
                snprintf(id, sizeof(id), "paced-%zu", i);
                start_json(f.client, "ActivityWorkflow", id, NULL, "{\"activity\": \"paced\"}", 0);
        }
        for (size_t i = 0; i < N; i++) {
                json_t *v;

                snprintf(id, sizeof(id), "paced-%zu", i);
                ASSERT_EQ(wait_outcome(f.client, id, &o), 0);
                v = activity_result(&f, &o);
                ASSERT_TRUE(json_is_integer(v));
                t[i] = (uint64_t) json_integer_value(v);
                ASSERT_GT(t[i], 0);
                dur_outcome_done(&o);
        }
        for (size_t i = 1; i < N; i++) /* sort: the order of the starts */
                for (size_t j = i; j > 0 && t[j - 1] > t[j]; j--) {
                        uint64_t x = t[j];

                        t[j] = t[j - 1];
                        t[j - 1] = x;
                }
        for (size_t i = 0; i < N; i++)
                for (size_t j = i + BURST; j < N; j++)
                        if ((j - i + 1 - BURST) * TEST_USEC_PER_SEC > (t[j] - t[i]) * RATE)
                                test_fail(__FILE__, __LINE__,
                                          "%zu starts within %llu us: more than RateLimit= allows",
                                          j - i + 1, (unsigned long long) (t[j] - t[i]));
}

TEST(programs_that_cannot_start) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *failure;

        fixture_init(&f);
        write_file(f.units, "missing.activity", 0644,
                   "[Activity]\nExecStart=/nonexistent/program\nStartToCloseSec=10s\n"
                   "RetryMaxAttempts=1\n");
        write_file(f.units, "noenv.activity", 0644,
                   "[Activity]\nExecStart=/bin/true\nStartToCloseSec=10s\nRetryMaxAttempts=2\n"
                   "RetryInitialSec=10ms\nEnvironmentFile=/nonexistent/durabled.env\n");
        fixture_start(&f);

        /* The exec fails in the child: exit status 127 and the reason on stderr. */
        ASSERT_EQ(run_activity(&f, "missing-1", "{\"activity\": \"missing\"}", &o, &events),
                  DUR_FAILED);
        failure = failure_of(events, "ActivityTaskFailed");
        ASSERT_STREQ(json_str(failure, "type"), "ProcessExited");
        ASSERT_EQ(json_integer_value(json_object_get(failure_details(failure), "exit_status")),
                  127);
        ASSERT_STR_CONTAINS(json_str(failure_details(failure), "stderr"),
                            "cannot execute /nonexistent/program");
        json_decref(events);
        dur_outcome_done(&o);

        /* A missing EnvironmentFile= (without '-') fails each attempt before the fork. */
        ASSERT_EQ(run_activity(&f, "noenv-1", "{\"activity\": \"noenv\"}", &o, &events),
                  DUR_FAILED);
        failure = failure_of(events, "ActivityTaskFailed");
        ASSERT_STREQ(json_str(failure, "type"), "ProcessStartFailed");
        ASSERT_STR_CONTAINS(json_str(failure, "message"),
                            "EnvironmentFile=/nonexistent/durabled.env");
        ASSERT_STREQ(ev_str(history_must(events, "ActivityTaskFailed"), "retry_state"),
                     "MaximumAttemptsReached");
        json_decref(events);
        dur_outcome_done(&o);
}

TEST(fails_twice_then_succeeds) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *started, *last;

        fixture_init(&f);
        unit_add(&f, "flaky", "StartToCloseSec=30s\nRetryInitialSec=50ms\nRetryBackoff=1.5\n",
                 "if [ \"$DURABLED_ATTEMPT\" -lt 3 ]; then\n"
                 "  systemd-notify \"HEARTBEAT={\\\"step\\\": $2}\"\n"
                 "  echo \"attempt $2 fails\" >&2; exit 4\n"
                 "fi\n"
                 "echo \"{\\\"ok\\\": true, \\\"previous\\\": $DURABLED_HEARTBEAT_DETAILS}\"\n");
        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "flaky-1", "{\"activity\": \"flaky\"}", &o, &events), 0);
        ASSERT_STREQ(o.status, "Completed");
        ASSERT_TRUE(json_is_true(json_object_get(activity_result(&f, &o), "ok")));
        /* The last heartbeat of attempt 2 reached attempt 3 (sent right before it exited). */
        ASSERT_EQ(json_integer_value(json_object_get(
                          json_object_get(activity_result(&f, &o), "previous"), "step")),
                  2);
        started = history_must(events, "ActivityTaskStarted");
        ASSERT_EQ(ev_uint(started, "attempt"), 3);
        last = ev_attr(started, "last_failure");
        ASSERT_STREQ(json_str(last, "type"), "ProcessExited");
        ASSERT_STR_CONTAINS(json_str(last, "message"), "exited with status 4");
        ASSERT_FALSE(json_is_true(json_object_get(last, "non_retryable")));
        ASSERT_EQ(json_integer_value(json_object_get(failure_details(last), "exit_status")), 4);
        ASSERT_STREQ(json_str(failure_details(last), "stderr"), "attempt 2 fails\n");
        /* The unit's retry settings were recorded as the policy. */
        ASSERT_EQ(json_integer_value(json_object_get(
                          ev_attr(history_must(events, "ActivityTaskScheduled"), "retry_policy"),
                          "initial_interval_usec")),
                  50000);
        json_decref(events);
        dur_outcome_done(&o);
}

TEST(non_retryable_exit_status) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *failure;

        fixture_init(&f);
        unit_add(&f, "strict", "StartToCloseSec=30s\nNonRetryableExitStatus=3 9\n",
                 "echo 'bad input' >&2\nexit 3\n");
        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "strict-1", "{\"activity\": \"strict\"}", &o, &events),
                  DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        failure = failure_of(events, "ActivityTaskFailed");
        ASSERT_TRUE(json_is_true(json_object_get(failure, "non_retryable")));
        ASSERT_STREQ(ev_str(history_must(events, "ActivityTaskFailed"), "retry_state"),
                     "NonRetryableFailure");
        ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskStarted"), "attempt"), 1);
        ASSERT_STREQ(json_str(failure_details(failure), "stderr"), "bad input\n");
        json_decref(events);
        dur_outcome_done(&o);
}

TEST(error_object_and_invalid_output) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *failure;

        fixture_init(&f);
        unit_add(&f, "declined", "StartToCloseSec=30s\n",
                 "echo '{\"error\": {\"type\": \"CardDeclined\", \"message\": \"card declined\", "
                 "\"non_retryable\": true, \"details\": {\"code\": 51}}}'\nexit 1\n");
        unit_add(&f, "garbled", "StartToCloseSec=30s\nRetryMaxAttempts=2\nRetryInitialSec=10ms\n",
                 "echo 'this is not JSON'\n");
        fixture_start(&f);

        ASSERT_EQ(run_activity(&f, "declined-1", "{\"activity\": \"declined\"}", &o, &events),
                  DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        failure = failure_of(events, "ActivityTaskFailed");
        ASSERT_STREQ(json_str(failure, "type"), "CardDeclined");
        ASSERT_STR_CONTAINS(json_str(failure, "message"), "card declined");
        ASSERT_TRUE(json_is_true(json_object_get(failure, "non_retryable")));
        ASSERT_EQ(json_integer_value(json_object_get(
                          json_object_get(failure_details(failure), "error_details"), "code")),
                  51);
        json_decref(events);
        dur_outcome_done(&o);

        ASSERT_EQ(run_activity(&f, "garbled-1", "{\"activity\": \"garbled\"}", &o, &events),
                  DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        failure = failure_of(events, "ActivityTaskFailed");
        ASSERT_STREQ(json_str(failure, "type"), "InvalidOutput");
        ASSERT_STR_CONTAINS(json_str(failure, "message"), "stdout is not valid JSON");
        ASSERT_STREQ(ev_str(history_must(events, "ActivityTaskFailed"), "retry_state"),
                     "MaximumAttemptsReached");
        json_decref(events);
        dur_outcome_done(&o);
}

TEST(grandchild_killed_on_start_to_close_timeout) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_free_ char *acts = NULL;
        dur_outcome o = {};
        json_t *events, *failure;
        pid_t main_pid, gc_pid;

        fixture_init(&f);
        unit_add(&f, "hang", "StartToCloseSec=1s\nRetryMaxAttempts=1\n",
                 "sleep 600 &\necho $! > $D/gc.pid\necho $$ > $D/main.pid\nwait\n");
        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "hang-1", "{\"activity\": \"hang\"}", &o, &events), DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        failure = failure_of(events, "ActivityTaskTimedOut");
        ASSERT_STREQ(json_str(failure, "timeout_type"), "StartToClose");
        /* cgroup.kill took the whole cgroup: the shell and its grandchild. */
        main_pid = read_pid(f.units, "main.pid");
        gc_pid = read_pid(f.units, "gc.pid");
        wait_gone(main_pid);
        wait_gone(gc_pid);
        acts = activities_cgroup(&f);
        ASSERT_OK(test_cgroup_wait_empty(acts, 0));
        json_decref(events);
        dur_outcome_done(&o);
}

/* Without clone3 (DURABLED_NO_CLONE3 in -Dfault-injection builds) the child moves itself into its
 * cgroup before it execs: the cgroup still takes the grandchild along on a timeout. */
TEST(fork_fallback_without_clone3) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_free_ char *acts = NULL;
        dur_outcome o = {};
        json_t *events;
        const char *where;

        fixture_init(&f);
        unit_add(&f, "where", "StartToCloseSec=30s\n",
                 "printf '\"%s\"' \"$(sed -n 's/^0:://p' /proc/self/cgroup)\"\n");
        unit_add(&f, "hang", "StartToCloseSec=1s\nRetryMaxAttempts=1\n",
                 "sleep 600 &\necho $! > $D/gc.pid\necho $$ > $D/main.pid\nwait\n");
        snprintf(f.arg, sizeof(f.arg), "--activity-dir=%s", f.units);
        f.args[0] = f.arg;
        test_daemon_start(&f.daemon,
                          &(TestDaemonOpts){ .args = f.args, .env = STRV("DURABLED_NO_CLONE3=1") });
        test_worker_spawn(&f.worker, NULL, NULL);
        f.client = client_connect();

        ASSERT_EQ(run_activity(&f, "where-1", "{\"activity\": \"where\"}", &o, &events), 0);
        /* The process ran in its attempt's cgroup, not in the daemon's. */
        where = json_string_value(activity_result(&f, &o));
        ASSERT_STR_CONTAINS(where, "/activities/");
        ASSERT_STREQ(where + strlen(where) - 4, "_5_1");
        json_decref(events);
        dur_outcome_done(&o);

        ASSERT_EQ(run_activity(&f, "hang-1", "{\"activity\": \"hang\"}", &o, &events), DUR_FAILED);
        wait_gone(read_pid(f.units, "main.pid"));
        wait_gone(read_pid(f.units, "gc.pid"));
        acts = activities_cgroup(&f);
        ASSERT_OK(test_cgroup_wait_empty(acts, 0));
        json_decref(events);
        dur_outcome_done(&o);
}

static json_t *pending_activity(Fixture *f, const char *id) {
        json_t *req = ASSERT_NOT_NULL(
                json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", id));
        json_t *answer, *pending;
        int r;

        answer = call_json(f->client, req, &r);
        json_decref(req);
        ASSERT_NOT_NULL(answer);
        pending = json_array_get(json_object_get(answer, "pending_activities"), 0);
        json_incref(pending);
        json_decref(answer);
        return pending;
}

TEST(heartbeats_then_heartbeat_timeout) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_free_ char *fifo = NULL;
        _cleanup_close_ int fd = -EBADF;
        dur_outcome o = {};
        json_t *events, *p = NULL;
        char line[64];

        fixture_init(&f);
        unit_add(&f, "beat", "StartToCloseSec=60s\nHeartbeatSec=1s\nRetryMaxAttempts=1\n",
                 "systemd-notify 'HEARTBEAT={\"progress\": 1}'\n"
                 "systemd-notify --status='copying files'\n"
                 "echo sent > $D/beat.fifo\n"
                 "exec sleep 600\n");
        fixture_start(&f);
        ASSERT_GE(asprintf(&fifo, "%s/beat.fifo", f.units), 0);
        ASSERT_OK_ERRNO(mkfifo(fifo, 0600));
        fd = ASSERT_OK_ERRNO(open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC));
        start_json(f.client, "ActivityWorkflow", "beat-1", NULL, "{\"activity\": \"beat\"}", 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "sent");
        /* Nothing announces that the daemon read the datagrams: ask until it has (bounded by the
         * heartbeat timeout, after which the activity is gone). */
        for (;;) {
                json_decref(p);
                p = pending_activity(&f, "beat-1");
                if (!p || json_str(p, "status"))
                        break;
                (void) poll(NULL, 0, 10);
        }
        ASSERT_NOT_NULL(p);
        ASSERT_STREQ(json_str(p, "status"), "copying files");
        ASSERT_EQ(json_integer_value(
                          json_object_get(json_object_get(p, "heartbeat_details"), "progress")),
                  1);
        json_decref(p);

        ASSERT_EQ(wait_outcome(f.client, "beat-1", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        events = history_get(f.client, "beat-1");
        ASSERT_STREQ(json_str(failure_of(events, "ActivityTaskTimedOut"), "timeout_type"),
                     "Heartbeat");
        json_decref(events);
        dur_outcome_done(&o);
}

/* Sends @msg (@len bytes) to the abstract or path socket @name ("@..." or "/..."). */
static void notify_send_raw(const char *name, const void *msg, size_t len) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = ASSERT_OK_ERRNO(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        size_t n = strlen(name);

        ASSERT_LT(n, sizeof(sa.sun_path));
        memcpy(sa.sun_path, name, n);
        if (name[0] == '@')
                sa.sun_path[0] = 0;
        ASSERT_OK_ERRNO(sendto(fd, msg, len, 0, (struct sockaddr *) &sa,
                               (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n)));
}

/* Waits until DescribeWorkflow shows the pending activity with heartbeat details {"n": @n}. */
static json_t *wait_heartbeat(Fixture *f, const char *id, json_int_t n) {
        for (uint64_t round = 0;; round++) {
                json_t *p = ASSERT_NOT_NULL(pending_activity(f, id));
                json_t *d = json_object_get(p, "heartbeat_details");

                ASSERT_LT(round, test_timeout_usec() / 10000); /* 10 ms per round */
                if (json_integer_value(json_object_get(d, "n")) == n)
                        return p;
                json_decref(p);
                (void) poll(NULL, 0, 10);
        }
}

TEST(notify_socket_ignores_noise_and_strangers) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_close_ int fd = -EBADF, go = -EBADF;
        char line[256], big[6000], *name;
        dur_outcome o = {};
        json_t *p;

        fixture_init(&f);
        unit_add(&f, "chatty", "StartToCloseSec=60s\n",
                 "echo \"$NOTIFY_SOCKET\" > $D/chatty.fifo\n"
                 "systemd-notify --status=good 'HEARTBEAT={\"n\": 1}'\n"
                 "read -r x < $D/go.fifo\n"
                 "systemd-notify 'HEARTBEAT={\"n\": 2}'\n"
                 "read -r x < $D/go.fifo\n"
                 "echo '\"finished\"'\n");
        fixture_start(&f);
        fd = fifo_make_in(f.units, "chatty.fifo");
        go = fifo_make_in(f.units, "go.fifo");
        start_json(f.client, "ActivityWorkflow", "chatty-1", NULL, "{\"activity\": \"chatty\"}", 0);
        fifo_read_line(fd, line, sizeof(line));
        name = line;
        ASSERT_TRUE(name[0] == '@' || name[0] == '/');
        json_decref(wait_heartbeat(&f, "chatty-1", 1));

        /* Noise and a stranger (this test is not in the attempt's cgroup), all before the
         * attempt's second heartbeat: datagrams are read in order. */
        memset(big, 'x', sizeof(big));
        memcpy(big, "STATUS=", 7);
        notify_send_raw(name, "", 0);
        notify_send_raw(name, big, sizeof(big));
        notify_send_raw(name, "STATUS=nul\0byte", sizeof("STATUS=nul\0byte") - 1);
        notify_send_raw(name, "\xff\xfe garbage", sizeof("\xff\xfe garbage") - 1);
        notify_send_raw(name, "STATUS=evil\nHEARTBEAT={\"n\": 99}",
                        strlen("STATUS=evil\nHEARTBEAT={\"n\": 99}"));
        ASSERT_EQ(write(go, "go\n", 3), 3);
        p = wait_heartbeat(&f, "chatty-1", 2);
        ASSERT_STREQ(json_str(p, "status"), "good");
        json_decref(p);

        ASSERT_EQ(write(go, "go\n", 3), 3);
        ASSERT_EQ(wait_outcome(f.client, "chatty-1", &o), 0);
        ASSERT_STREQ(json_string_value(activity_result(&f, &o)), "finished");
        dur_outcome_done(&o);
}

TEST(cancel_kills_a_process_that_ignores_sigterm) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_free_ char *fifo = NULL, *term = NULL, *acts = NULL;
        _cleanup_close_ int fd = -EBADF;
        dur_outcome o = {};
        json_t *events;
        char line[64];
        struct stat st;

        fixture_init(&f);
        /* The units named "sleep" and "echo" take CancelWorkflow's activities away from the
         * worker. libdurable cancels as Temporal's TRY_CANCEL does, so the workflow goes on to its
         * clean-up "echo" at once; that one waits for the "sleep" process to be gone, which keeps
         * the run open until TimeoutStopSec= ran out. */
        unit_add(&f, "sleep", "TimeoutStopSec=300ms\n",
                 "trap 'echo TERM > $D/term' TERM\n"
                 "echo $$ > $D/sleep.pid\n"
                 "echo started > $D/sleep.fifo\n"
                 "while :; do sleep 0.05; done\n");
        unit_add(&f, "echo", "",
                 "while kill -0 $(cat $D/sleep.pid) 2>/dev/null; do sleep 0.05; done\n"
                 "echo '{\"cleanup\": true}'\n");
        fixture_start(&f);
        ASSERT_GE(asprintf(&fifo, "%s/sleep.fifo", f.units), 0);
        ASSERT_OK_ERRNO(mkfifo(fifo, 0600));
        fd = ASSERT_OK_ERRNO(open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC));
        start_json(f.client, "CancelWorkflow", "cancel-1", NULL, "{}", 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started");
        ASSERT_OK(dur_client_cancel(f.client, "cancel-1", NULL, "test"));
        ASSERT_EQ(wait_outcome(f.client, "cancel-1", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Canceled");
        events = history_get(f.client, "cancel-1");
        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "ActivityTaskCancelRequested"), 1);
        ASSERT_EQ(history_count(events, "ActivityTaskCanceled"), 1);
        /* SIGTERM came first and was ignored (the trap ran); SIGKILL ended it. */
        ASSERT_GE(asprintf(&term, "%s/term", f.units), 0);
        ASSERT_OK_ERRNO(stat(term, &st));
        acts = activities_cgroup(&f);
        ASSERT_OK(test_cgroup_wait_empty(acts, 0));
        json_decref(events);
        dur_outcome_done(&o);
}

/* An attempt that waits for its turn (MaxConcurrent=1) when the daemon dies: the daemon's task
 * queues are rebuilt from the store at start-up, and the waiting activity goes back to the
 * supervisor, ahead of the attempt that was running and is retried. */
TEST(queued_attempt_survives_daemon_kill) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_close_ int started = -EBADF, go_a = -EBADF, go_b = -EBADF;
        dur_outcome o = {};
        json_t *p;
        char line[64];

        fixture_init(&f);
        unit_add(&f, "one", "StartToCloseSec=60s\nMaxConcurrent=1\nRetryInitialSec=10ms\n",
                 "echo \"started $1\" > $D/started.fifo\n"
                 "read -r x < $D/go-$1.fifo\n"
                 "echo '\"done\"'\n");
        fixture_start(&f);
        started = fifo_make_in(f.units, "started.fifo");
        go_a = fifo_make_in(f.units, "go-one-a.fifo");
        go_b = fifo_make_in(f.units, "go-one-b.fifo");
        start_json(f.client, "ActivityWorkflow", "one-a", NULL, "{\"activity\": \"one\"}", 0);
        fifo_read_line(started, line, sizeof(line));
        ASSERT_STREQ(line, "started one-a");
        start_json(f.client, "ActivityWorkflow", "one-b", NULL, "{\"activity\": \"one\"}", 0);
        wait_event(&f, "one-b", 5);
        p = ASSERT_NOT_NULL(pending_activity(&f, "one-b"));
        ASSERT_STREQ(json_str(p, "state"), "Scheduled");
        json_decref(p);

        f.client = dur_client_free(f.client);
        test_daemon_kill(&f.daemon, SIGKILL);
        test_daemon_restart(&f.daemon);
        f.client = client_connect();

        fifo_read_line(started, line, sizeof(line));
        ASSERT_STREQ(line, "started one-b");
        ASSERT_EQ(write(go_b, "go\n", 3), 3);
        ASSERT_EQ(wait_outcome(f.client, "one-b", &o), 0);
        ASSERT_STREQ(json_string_value(activity_result(&f, &o)), "done");
        dur_outcome_done(&o);
        fifo_read_line(started, line, sizeof(line));
        ASSERT_STREQ(line, "started one-a");
        ASSERT_EQ(write(go_a, "go\n", 3), 3);
        ASSERT_EQ(wait_outcome(f.client, "one-a", &o), 0);
        dur_outcome_done(&o);
}

TEST(daemon_killed_while_an_attempt_runs) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_free_ char *fifo = NULL;
        _cleanup_close_ int fd = -EBADF, pidfd = -EBADF;
        dur_outcome o = {};
        json_t *events, *started;
        struct pollfd p;
        char line[64];

        fixture_init(&f);
        unit_add(&f, "long", "StartToCloseSec=600s\nRetryInitialSec=10ms\n",
                 "echo $$ > $D/long.pid\n"
                 "echo \"started $DURABLED_ATTEMPT\" > $D/long.fifo\n"
                 "if [ \"$DURABLED_ATTEMPT\" = 1 ]; then exec sleep 600; fi\n"
                 "echo '{\"done\": true}'\n");
        fixture_start(&f);
        ASSERT_GE(asprintf(&fifo, "%s/long.fifo", f.units), 0);
        ASSERT_OK_ERRNO(mkfifo(fifo, 0600));
        fd = ASSERT_OK_ERRNO(open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC));
        start_json(f.client, "ActivityWorkflow", "long-1", NULL, "{\"activity\": \"long\"}", 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started 1");
        pidfd = ASSERT_OK_ERRNO(pidfd_open(read_pid(f.units, "long.pid"), 0));

        f.client = dur_client_free(f.client);
        test_daemon_kill(&f.daemon, SIGKILL);
        /* The orphan survives the daemon... */
        p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
        ASSERT_EQ(poll(&p, 1, 0), 0);
        /* ...until the next start kills it and retries the attempt. */
        test_daemon_restart(&f.daemon);
        f.client = client_connect();
        ASSERT_EQ(poll(&p, 1, (int) (test_timeout_usec() / 1000)), 1);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started 2");
        ASSERT_EQ(wait_outcome(f.client, "long-1", &o), 0);
        ASSERT_STREQ(o.status, "Completed");
        events = history_get(f.client, "long-1");
        history_assert_invariants(events);
        started = history_must(events, "ActivityTaskStarted");
        ASSERT_EQ(ev_uint(started, "attempt"), 2);
        ASSERT_STREQ(json_str(ev_attr(started, "last_failure"), "type"), "DaemonRestarted");
        json_decref(events);
        dur_outcome_done(&o);
}

/* Killed after the commit that records the attempt as started, before its process exists: at the
 * next start the attempt fails (retryable) and the next one runs. Needs -Dfault-injection=true. */
TEST(daemon_killed_between_start_and_fork) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_free_ char *log = NULL, *content = NULL;
        dur_outcome o = {};
        json_t *events, *started;
        size_t len = 0;
        FILE *fp;

        fixture_init(&f);
        unit_add(&f, "count", "StartToCloseSec=600s\nRetryInitialSec=10ms\n",
                 "echo \"$DURABLED_ATTEMPT\" >> $D/attempts.log\necho '\"ran\"'\n");
        snprintf(f.arg, sizeof(f.arg), "--activity-dir=%s", f.units);
        f.args[0] = f.arg;
        test_daemon_start(&f.daemon, &(TestDaemonOpts){ .args = f.args,
                                                        .env = STRV("DURABLED_KILL_AT="
                                                                    "before-spawn:1") });
        test_worker_spawn(&f.worker, NULL, NULL);
        f.client = client_connect();
        start_json(f.client, "ActivityWorkflow", "count-1", NULL, "{\"activity\": \"count\"}", 0);
        ASSERT_GE(test_daemon_wait_exit(&f.daemon, 0), 0);
        if (!WIFSIGNALED(f.daemon.proc.exit_status))
                SKIP("the daemon has no kill points (-Dfault-injection=false)");
        ASSERT_EQ(WTERMSIG(f.daemon.proc.exit_status), SIGKILL);

        f.client = dur_client_free(f.client);
        test_daemon_start(&f.daemon, &(TestDaemonOpts){ .args = f.args });
        f.client = client_connect();
        ASSERT_EQ(wait_outcome(f.client, "count-1", &o), 0);
        ASSERT_STREQ(json_string_value(activity_result(&f, &o)), "ran");
        dur_outcome_done(&o);
        events = history_get(f.client, "count-1");
        history_assert_invariants(events);
        started = history_must(events, "ActivityTaskStarted");
        ASSERT_EQ(ev_uint(started, "attempt"), 2);
        ASSERT_STREQ(json_str(ev_attr(started, "last_failure"), "type"), "DaemonRestarted");
        json_decref(events);
        /* Attempt 1 never ran. */
        ASSERT_GE(asprintf(&log, "%s/attempts.log", f.units), 0);
        fp = ASSERT_NOT_NULL(fopen(log, "re"));
        ASSERT_GT(getdelim(&content, &len, 0, fp), 0);
        fclose(fp);
        ASSERT_STREQ(content, "2\n");
}

/* durablectl --json activity-types (or reload): the array of units and refused files. */
static json_t *activity_types(const char *verb) {
        TestRun r = {};
        json_t *j;

        ASSERT_EQ(test_run(&r, STRV(test_bin("DURABLECTL_BIN"), "--json", verb), NULL), 0);
        j = ASSERT_NOT_NULL(json_loads(r.out, 0, NULL));
        test_run_free(&r);
        return j;
}

static json_t *type_named(json_t *types, const char *name) {
        size_t i;
        json_t *t;

        json_array_foreach(types, i, t) if (streq(json_str(t, "name"), name)) return t;
        test_fail(__FILE__, __LINE__, "no activity type '%s'", name);
}

TEST(bad_units_are_refused_and_reload_fixes_them) {
        static const struct {
                const char *file, *content, *error;
        } bad[] = {
                { "nosection.activity", "ExecStart=/bin/true\n",
                  "nosection.activity:1: assignment outside of a section" },
                { "unknownkey.activity",
                  "[Activity]\nExecStart=/bin/true\nStartToCloseSec=1\nFoo=1\n",
                  "unknownkey.activity:4: unknown key 'Foo'" },
                { "badtime.activity", "[Activity]\nExecStart=/bin/true\nStartToCloseSec=soon\n",
                  "badtime.activity:3: StartToCloseSec=soon" },
                { "noexec.activity", "[Activity]\nStartToCloseSec=1\n", "ExecStart= is missing" },
                { "relative.activity", "[Activity]\nExecStart=true\nStartToCloseSec=1\n",
                  "relative.activity:2: ExecStart=: the program must be an absolute path" },
                { "badquote.activity", "[Activity]\nExecStart=/bin/echo \"open\n",
                  "badquote.activity:2: ExecStart=: unterminated quote" },
                { "section.activity", "[Service]\nExecStart=/bin/true\n",
                  "section.activity:1: unknown section [Service]" },
                { "nouser.activity",
                  "[Activity]\nExecStart=/bin/true\nStartToCloseSec=1\nUser=no-such-user-x\n",
                  "nouser.activity:4: User=no-such-user-x: no such user" },
        };
        _cleanup_(fixture_done) Fixture f = {};
        json_t *types, *t;
        dur_outcome o = {};
        json_t *events;

        fixture_init(&f);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                write_file(f.units, bad[i].file, 0644, bad[i].content);
        unit_add(&f, "good", "StartToCloseSec=30s\n", "echo 42\n");
        fixture_start(&f);

        types = activity_types("activity-types");
        ASSERT_EQ(json_array_size(types), ELEMENTSOF(bad) + 1);
        ASSERT_STREQ(json_str(type_named(types, "good"), "state"), "loaded");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t = type_named(types, bad[i].file);
                ASSERT_STREQ(json_str(t, "state"), "error");
                ASSERT_STR_CONTAINS(json_str(t, "error"), bad[i].error);
        }
        json_decref(types);
        /* The daemon runs on: the good unit works. */
        ASSERT_EQ(run_activity(&f, "good-1", "{\"activity\": \"good\"}", &o, &events), 0);
        ASSERT_STREQ(o.status, "Completed");
        ASSERT_EQ(json_integer_value(activity_result(&f, &o)), 42);
        json_decref(events);
        dur_outcome_done(&o);

        /* Fixed on disk, taken by reload. */
        write_file(f.units, "unknownkey.activity", 0644,
                   "[Activity]\nExecStart=/bin/echo 7\nStartToCloseSec=1min\n");
        types = activity_types("reload");
        ASSERT_STREQ(json_str(type_named(types, "unknownkey"), "state"), "loaded");
        ASSERT_EQ(json_array_size(types), ELEMENTSOF(bad) + 1);
        json_decref(types);
        ASSERT_EQ(run_activity(&f, "fixed-1", "{\"activity\": \"unknownkey\"}", &o, &events), 0);
        ASSERT_STREQ(o.status, "Completed");
        ASSERT_EQ(json_integer_value(activity_result(&f, &o)), 7);
        json_decref(events);
        dur_outcome_done(&o);

        /* SIGHUP reloads too. Nothing announces when the daemon handled the signal: ask until
         * the new unit shows (bounded by the harness's timeout). */
        write_file(f.units, "late.activity", 0644, "[Activity]\nExecStart=/bin/true\n");
        ASSERT_OK_ERRNO(kill(f.daemon.proc.pid, SIGHUP));
        for (uint64_t n = 0;; n++) {
                size_t i;
                bool found = false;

                ASSERT_LT(n, test_timeout_usec() / 10000); /* 10 ms per round */
                types = activity_types("activity-types");
                json_array_foreach(types, i, t) found = found || streq(json_str(t, "name"), "late");
                json_decref(types);
                if (found)
                        break;
                (void) poll(NULL, 0, 10);
        }
}

/* durablectl with the test's environment ($DURABLED_SOCKET); returns the exit status. */
static int ctl(TestRun *r, const char *const *argv) {
        return test_run(r, argv, NULL);
}

TEST(standalone_activities) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_close_ int fd = -EBADF;
        const char *bin;
        TestRun r = {};
        dur_outcome o = {};
        json_t *events, *j;
        char line[64];

        fixture_init(&f);
        unit_add(&f, "greet", "StartToCloseSec=30s\n",
                 "read -r input\nprintf '{\"got\": %s, \"attempt\": %s}' \"$input\" "
                 "\"$DURABLED_ATTEMPT\"\n");
        unit_add(&f, "flaky", "StartToCloseSec=30s\nRetryInitialSec=10ms\n",
                 "[ \"$DURABLED_ATTEMPT\" -ge 2 ] || exit 1\necho '\"second time\"'\n");
        unit_add(&f, "broken", "StartToCloseSec=30s\nNonRetryableExitStatus=5\n", "exit 5\n");
        unit_add(&f, "wait", "StartToCloseSec=60s\n",
                 "echo started > $D/wait.fifo\nexec sleep 600\n");
        fixture_start(&f);
        bin = test_bin("DURABLECTL_BIN");

        /* execute: runs it, waits, prints the result. */
        ASSERT_EQ(ctl(&r, STRV(bin, "--json", "activity", "execute", "greet", "--id", "s-greet",
                               "--input", "{\"name\": \"x\"}")),
                  0);
        j = ASSERT_NOT_NULL(json_loads(r.out, 0, NULL));
        ASSERT_STREQ(json_str(j, "status"), "Completed");
        ASSERT_STREQ(json_str(json_object_get(json_object_get(j, "result"), "got"), "name"), "x");
        json_decref(j);
        test_run_free(&r);
        events = history_get(f.client, "s-greet");
        history_assert_invariants(events);
        ASSERT_HISTORY_TYPES(events, "WorkflowExecutionStarted", "ActivityTaskScheduled",
                             "ActivityTaskStarted", "ActivityTaskCompleted",
                             "WorkflowExecutionCompleted");
        ASSERT_STREQ(ev_str(history_must(events, "WorkflowExecutionStarted"), "workflow_type"),
                     "durabled.StandaloneActivity");
        json_decref(events);

        /* Retried under the unit's policy; result --wait sees the outcome. */
        ASSERT_EQ(ctl(&r, STRV(bin, "activity", "start", "flaky", "--id", "s-flaky")), 0);
        ASSERT_STR_CONTAINS(r.out, "s-flaky");
        test_run_free(&r);
        ASSERT_EQ(ctl(&r, STRV(bin, "--json", "activity", "result", "s-flaky", "--wait")), 0);
        j = ASSERT_NOT_NULL(json_loads(r.out, 0, NULL));
        ASSERT_STREQ(json_str(j, "result"), "second time");
        json_decref(j);
        test_run_free(&r);
        events = history_get(f.client, "s-flaky");
        ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskStarted"), "attempt"), 2);
        json_decref(events);

        /* A non-retryable exit: the run fails with the activity's failure; exit status 1. */
        ASSERT_EQ(ctl(&r, STRV(bin, "activity", "execute", "broken", "--id", "s-broken")), 1);
        ASSERT_STR_CONTAINS(r.out, "Failed");
        test_run_free(&r);
        events = history_get(f.client, "s-broken");
        ASSERT_STREQ(json_str(ev_attr(history_must(events, "WorkflowExecutionFailed"), "failure"),
                              "type"),
                     "ProcessExited");
        json_decref(events);

        /* Cancelling the run cancels the activity: KillSignal, then ActivityTaskCanceled. */
        fd = fifo_make_in(f.units, "wait.fifo");
        ASSERT_EQ(ctl(&r, STRV(bin, "activity", "start", "wait", "--id", "s-wait")), 0);
        test_run_free(&r);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started");
        ASSERT_OK(dur_client_cancel(f.client, "s-wait", NULL, "test"));
        ASSERT_EQ(wait_outcome(f.client, "s-wait", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Canceled");
        dur_outcome_done(&o);
        events = history_get(f.client, "s-wait");
        history_assert_invariants(events);
        ASSERT_HISTORY_TYPES(events, "WorkflowExecutionStarted", "ActivityTaskScheduled",
                             "WorkflowExecutionCancelRequested", "ActivityTaskCancelRequested",
                             "ActivityTaskStarted", "ActivityTaskCanceled",
                             "WorkflowExecutionCanceled");
        json_decref(events);

        /* Bad input changes nothing: an empty type, a reserved workflow type, no timeout. */
        ASSERT_EQ(ctl(&r, STRV(bin, "activity", "start", "", "--id", "s-empty")), 1);
        ASSERT_STR_CONTAINS(r.err, "activity_type");
        test_run_free(&r);
        ASSERT_EQ(ctl(&r, STRV(bin, "activity", "start", "not-a-unit", "--id", "s-none")), 1);
        ASSERT_STR_CONTAINS(r.err, "timeout is required");
        test_run_free(&r);
        ASSERT_EQ(ctl(&r, STRV(bin, "start", "durabled.StandaloneActivity", "--id", "s-fake",
                               "--task-queue", "q")),
                  1);
        ASSERT_STR_CONTAINS(r.err, "reserved for standalone activities");
        test_run_free(&r);
        ASSERT_EQ(ctl(&r, STRV(bin, "result", "s-none")), 1);
        ASSERT_STR_CONTAINS(r.err, "not found");
        test_run_free(&r);
}

/* One C function, two ways: examples/word-count.c built with dur_activity_main(). */
TEST(c_activity_with_dur_activity_main) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *result, *failure;
        char keys[4200];

        fixture_init(&f);
        snprintf(keys, sizeof(keys), "[Activity]\nExecStart=%s\nStartToCloseSec=30s\n",
                 test_bin("WORD_COUNT_BIN"));
        write_file(f.units, "word_count.activity", 0644, keys);
        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "wc-1",
                               "{\"activity\": \"word_count\", \"input\": {\"text\": "
                               "\"one two\\nthree\\n\"}}",
                               &o, &events),
                  0);
        result = activity_result(&f, &o);
        ASSERT_EQ(json_integer_value(json_object_get(result, "words")), 3);
        ASSERT_EQ(json_integer_value(json_object_get(result, "lines")), 2);
        json_decref(events);
        dur_outcome_done(&o);

        /* dur_actx_fail() becomes the error object: a final failure of its type. */
        ASSERT_EQ(run_activity(&f, "wc-2",
                               "{\"activity\": \"word_count\", \"input\": {\"text\": 5}}", &o,
                               &events),
                  DUR_FAILED);
        failure = failure_of(events, "ActivityTaskFailed");
        ASSERT_STREQ(json_str(failure, "type"), "BadInput");
        ASSERT_TRUE(json_is_true(json_object_get(failure, "non_retryable")));
        ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskStarted"), "attempt"), 1);
        json_decref(events);
        dur_outcome_done(&o);
}

DEFINE_TEST_MAIN();
