/* Operators' pause and unpause of a workflow (daemon/history-pause.c, SEMANTICS.md b.0) through
 * the real daemon, test-worker and real cgroups: a paused run records the signal it receives and
 * the timer that fires, runs nothing, stays paused across a daemon SIGKILL and resumes where it
 * was; a process activity's processes are frozen (no CPU used) while its run is paused and
 * thawed after; the list filter and describe show Paused; bad requests change nothing.
 *
 * Synchronisation is by events: GetHistory long polls, a FIFO the activity script writes to and
 * cgroup.events (inotify). */

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/worker-util.h"

/* Waits (GetHistory long polls) until the latest run of @id has an event of @type; returns its
 * history (new reference). */
static json_t *wait_event(dur_client *c, const char *id, const char *type) {
        for (;;) {
                json_t *events = history_get(c, id), *req, *answer;
                int r;

                if (history_next(events, type, 0, NULL))
                        return events;
                req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:I, s:b, s:I}", "op", "GetHistory",
                                                "workflow_id", id, "from_event_id",
                                                (json_int_t) json_array_size(events) + 1, "wait", 1,
                                                "timeout_usec", (json_int_t) test_timeout_usec()));
                json_decref(events);
                answer = call_json(c, req, &r);
                json_decref(req);
                ASSERT_NOT_NULL(answer);
                json_decref(answer);
        }
}

static size_t index_of(const json_t *events, const char *type) {
        size_t i;

        ASSERT_NOT_NULL(history_next(events, type, 0, &i));
        return i;
}

/* The code of the error @request_json is answered with (and that it is an error). */
static const char *call_error(dur_client *c, const char *request_json) {
        json_t *req = ASSERT_NOT_NULL(json_loads(request_json, 0, NULL)), *answer;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (answer)
                test_fail(__FILE__, __LINE__, "%s succeeded", request_json);
        return ASSERT_NOT_NULL(dur_client_error_code(c));
}

static uint64_t count(dur_client *c, const char *query) {
        uint64_t n = UINT64_MAX;

        ASSERT_DUR_OK(c, dur_client_count(c, query, &n));
        return n;
}

static void assert_status(dur_client *c, const char *id, const char *status) {
        _cleanup_free_ char *s = describe_status(c, id);

        ASSERT_STREQ(s, status);
}

/* The timer fires and the signal arrives while the run is paused: both are recorded, no workflow
 * task runs; the run is still paused after a daemon SIGKILL; unpaused, it completes with the
 * signal's argument. */
TEST(paused_run_records_signal_and_timer_and_resumes) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_buf *arg = ASSERT_NOT_NULL(dur_args("{s:i}", "v", 7));
        dur_outcome o = {};
        json_t *events, *out;
        size_t paused, unpaused, i;
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "TimerSignalWorkflow", "tsw", NULL, "{\"ms\": 1500}", 0);
        json_decref(wait_event(c, "tsw", "TimerStarted"));

        ASSERT_DUR_OK(c, dur_client_pause(c, "tsw", NULL, "maintenance"));
        assert_status(c, "tsw", "Paused");
        /* Still open: a result asked without waiting is "not yet". */
        ASSERT_EQ(dur_client_result(c, "tsw", NULL, 1, &o), -ETIMEDOUT);
        ASSERT_EQ(dur_client_pause(c, "tsw", NULL, "again"), -ESTALE);
        ASSERT_STREQ(dur_client_error_code(c), "failed_precondition");
        ASSERT_EQ(count(c, "ExecutionStatus = 'Paused'"), 1);
        ASSERT_EQ(count(c, "ExecutionStatus = 'Running'"), 0);

        ASSERT_DUR_OK(c, dur_client_signal(c, "tsw", NULL, "go", arg));
        events = wait_event(c, "tsw", "TimerFired");
        paused = index_of(events, "WorkflowExecutionPaused");
        ASSERT_STREQ(ev_str(json_array_get(events, paused), "reason"), "maintenance");
        ASSERT_GT(index_of(events, "WorkflowExecutionSignaled"), paused);
        ASSERT_GT(index_of(events, "TimerFired"), paused);
        /* The workflow task the timer and the signal scheduled waits: none started since. */
        ASSERT_NULL(history_next(events, "WorkflowTaskStarted", paused, NULL));
        ASSERT_NOT_NULL(history_next(events, "WorkflowTaskScheduled", paused, NULL));
        json_decref(events);

        /* DESIGN.md §3: the pause is in the store, not only in memory. */
        c = dur_client_free(c);
        ASSERT_EQ(test_daemon_kill(&d, SIGKILL) & 0x7f, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        assert_status(c, "tsw", "Paused");
        ASSERT_EQ(count(c, "ExecutionStatus = 'Paused'"), 1);

        ASSERT_DUR_OK(c, dur_client_unpause(c, "tsw", NULL, "done"));
        ASSERT_EQ(dur_client_unpause(c, "tsw", NULL, "twice"), -ESTALE);
        ASSERT_STREQ(dur_client_error_code(c), "failed_precondition");
        ASSERT_EQ(wait_outcome(c, "tsw", &o), 0);
        out = outcome_result(&o);
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(out, "go"), "v")), 7);

        events = history_get(c, "tsw");
        history_assert_invariants(events);
        paused = index_of(events, "WorkflowExecutionPaused");
        unpaused = index_of(events, "WorkflowExecutionUnpaused");
        ASSERT_GT(unpaused, paused);
        /* The first workflow task that started after the pause started after the unpause. */
        ASSERT_NOT_NULL(history_next(events, "WorkflowTaskStarted", paused, &i));
        ASSERT_GT(i, unpaused);
        assert_status(c, "tsw", "Completed");
        ASSERT_EQ(count(c, "ExecutionStatus = 'Paused'"), 0);

        json_decref(events);
        json_decref(out);
        dur_outcome_done(&o);
        dur_buf_free(arg);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* ---- a frozen process activity ---- */

static void write_file(const char *path, mode_t mode, const char *content) {
        FILE *f = ASSERT_NOT_NULL(fopen(path, "we"));

        ASSERT_GE(fputs(content, f), 0);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_OK_ERRNO(chmod(path, mode));
}

static bool file_has(const char *path, const char *needle) {
        char buf[4096];
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        ASSERT_OK_ERRNO(fd);
        n = read(fd, buf, sizeof(buf) - 1);
        ASSERT_OK_ERRNO(n);
        close(fd);
        buf[n] = 0;
        return strstr(buf, needle) != NULL;
}

/* "@dir/@name", malloc'd. */
static char *path_join(const char *dir, const char *name) {
        char *p;

        ASSERT_GE(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

/* Waits (inotify on cgroup.events) until it says "frozen 1" resp. "frozen 0". */
static void wait_frozen(const char *cgroup, bool frozen) {
        _cleanup_free_ char *path = path_join(cgroup, "cgroup.events");
        int fd;

        fd = inotify_init1(IN_CLOEXEC);
        ASSERT_OK_ERRNO(fd);
        ASSERT_OK_ERRNO(inotify_add_watch(fd, path, IN_MODIFY));
        while (!file_has(path, frozen ? "frozen 1" : "frozen 0")) {
                char buf[4096];
                struct pollfd p = { .fd = fd, .events = POLLIN };

                ASSERT_EQ(poll(&p, 1, (int) (test_timeout_usec() / 1000)), 1);
                ASSERT_OK_ERRNO(read(fd, buf, sizeof(buf)));
        }
        close(fd);
}

static uint64_t cpu_usage_usec(const char *cgroup) {
        _cleanup_free_ char *path = path_join(cgroup, "cpu.stat");
        unsigned long long u = 0;
        FILE *f;

        f = ASSERT_NOT_NULL(fopen(path, "re"));
        ASSERT_EQ(fscanf(f, "usage_usec %llu", &u), 1);
        fclose(f);
        return u;
}

TEST(paused_run_freezes_process_activity) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *units = ASSERT_NOT_NULL(test_mkdtemp());
        _cleanup_free_ char *cgroup = NULL, *procs = NULL;
        char path[4096], arg[4200], line[256], script[8192];
        const char *args[2] = { arg, NULL };
        uint64_t before, after;
        dur_outcome o = {};
        struct dirent *de;
        json_t *events;
        dur_client *c;
        DIR *dir;
        int fifo;

        /* A busy loop that ends once the file "stop" exists: it uses all the CPU it gets. */
        snprintf(path, sizeof(path), "%s/started", units);
        ASSERT_OK_ERRNO(mkfifo(path, 0600));
        fifo = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        ASSERT_OK_ERRNO(fifo);
        snprintf(script, sizeof(script),
                 "#!/bin/sh\necho $$ > %s/started\nwhile [ ! -e %s/stop ]; do :; done\n"
                 "echo '\"spun\"'\n",
                 units, units);
        snprintf(path, sizeof(path), "%s/spin.sh", units);
        write_file(path, 0755, script);
        snprintf(script, sizeof(script), "[Activity]\nExecStart=%s/spin.sh\n", units);
        snprintf(path, sizeof(path), "%s/spin.activity", units);
        write_file(path, 0644, script);

        snprintf(arg, sizeof(arg), "--activity-dir=%s", units);
        test_daemon_start(&d, &(TestDaemonOpts){ .args = args });
        if (!d.cgroup) {
                (void) test_rm_rf(units);
                return; /* no cgroup v2 here: nothing to freeze */
        }
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "ActivityWorkflow", "spin", NULL,
                   "{\"activity\": \"spin\", \"start_to_close_ms\": 600000}", 0);
        fifo_read_line(fifo, line, sizeof(line));

        /* The attempt's cgroup: the one below the daemon's activities/ (DESIGN.md §7). */
        snprintf(path, sizeof(path), "%s/activities", d.cgroup);
        dir = ASSERT_NOT_NULL(opendir(path));
        while ((de = readdir(dir)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                        break;
        ASSERT_NOT_NULL(de);
        cgroup = path_join(path, de->d_name);
        closedir(dir);
        procs = path_join(cgroup, "cgroup.procs");
        ASSERT_TRUE(file_has(procs, line)); /* the script's pid */

        ASSERT_DUR_OK(c, dur_client_pause(c, "spin", NULL, "freeze it"));
        wait_frozen(cgroup, true);
        before = cpu_usage_usec(cgroup);
        snprintf(path, sizeof(path), "%s/stop", units);
        write_file(path, 0644, "");
        /* A round trip through the daemon and the history while the process could run. */
        ASSERT_DUR_OK(c, dur_client_signal(c, "spin", NULL, "poke", NULL));
        events = wait_event(c, "spin", "WorkflowExecutionSignaled");
        after = cpu_usage_usec(cgroup);
        ASSERT_EQ(after, before);
        ASSERT_NULL(history_next(events, "ActivityTaskCompleted", 0, NULL));
        json_decref(events);
        assert_status(c, "spin", "Paused");

        ASSERT_DUR_OK(c, dur_client_unpause(c, "spin", NULL, NULL));
        ASSERT_EQ(wait_outcome(c, "spin", &o), 0);
        ASSERT_STREQ(o.status, "Completed");
        events = history_get(c, "spin");
        history_assert_invariants(events);
        ASSERT_GT(index_of(events, "ActivityTaskCompleted"),
                  index_of(events, "WorkflowExecutionUnpaused"));
        json_decref(events);

        dur_outcome_done(&o);
        dur_client_free(c);
        close(fifo);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
        (void) test_rm_rf(units);
}

/* The first pending activity of @id as DescribeWorkflow shows it (new reference). */
static json_t *pending_activity(dur_client *c, const char *id) {
        json_t *req = ASSERT_NOT_NULL(
                json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", id));
        json_t *answer, *act;
        int r;

        answer = ASSERT_NOT_NULL(call_json(c, req, &r));
        json_decref(req);
        act = json_incref(json_array_get(json_object_get(answer, "pending_activities"), 0));
        json_decref(answer);
        return ASSERT_NOT_NULL(act);
}

static void activity_call(dur_client *c, const char *op, const char *id, const char *activity_id) {
        json_t *req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:s}", "op", op, "workflow_id", id,
                                                "activity_id", activity_id));
        json_t *answer;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (!answer)
                test_fail(__FILE__, __LINE__, "%s failed: %s", op,
                          test_str_or_null(dur_client_error_message(c)));
        json_decref(answer);
}

/* One activity paused (PauseActivity): it is not dispatched, also after a daemon SIGKILL, while
 * one queued after it on the same queue is; unpaused, it runs and the run completes. */
TEST(paused_activity_waits) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {}, acts = {};
        _cleanup_free_ char *activity_id = NULL;
        dur_outcome o = {};
        json_t *events, *act;
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        /* Its activity goes to queue "acts", which nobody polls yet. */
        start_json(c, "ActivityWorkflow", "pa", NULL,
                   "{\"activity\": \"echo\", \"task_queue\": \"acts\", \"input\": {\"x\": 1}, "
                   "\"start_to_close_ms\": 60000}",
                   0);
        events = wait_event(c, "pa", "ActivityTaskScheduled");
        activity_id = ASSERT_NOT_NULL(
                strdup(ev_str(history_must(events, "ActivityTaskScheduled"), "activity_id")));
        json_decref(events);

        activity_call(c, "PauseActivity", "pa", activity_id);
        ASSERT_STREQ(call_error(c, "{\"op\": \"PauseActivity\", \"workflow_id\": \"pa\", "
                                   "\"activity_id\": \"1\"}") /* paused already, or no such */,
                     streq(activity_id, "1") ? "failed_precondition" : "not_found");
        activity_call(c, "ResetActivity", "pa", activity_id);
        act = pending_activity(c, "pa");
        ASSERT_STREQ(json_str(act, "state"), "Paused");
        ASSERT_TRUE(json_is_true(json_object_get(act, "paused")));
        ASSERT_EQ(json_integer_value(json_object_get(act, "attempt")), 1);
        json_decref(act);

        c = dur_client_free(c);
        ASSERT_EQ(test_daemon_kill(&d, SIGKILL) & 0x7f, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        test_worker_spawn(&acts, "acts", NULL);
        /* A run on "acts" whose activity is queued after the paused one completes first. */
        start_json(c, "ActivityWorkflow", "pb", "acts",
                   "{\"activity\": \"echo\", \"start_to_close_ms\": 60000}", 0);
        ASSERT_EQ(wait_outcome(c, "pb", &o), 0);
        dur_outcome_done(&o);
        act = pending_activity(c, "pa");
        ASSERT_STREQ(json_str(act, "state"), "Paused");
        json_decref(act);

        activity_call(c, "UnpauseActivity", "pa", activity_id);
        ASSERT_STREQ(call_error(c, "{\"op\": \"UnpauseActivity\", \"workflow_id\": \"pa\", "
                                   "\"activity_id\": \"nope\"}"),
                     "not_found");
        ASSERT_EQ(wait_outcome(c, "pa", &o), 0);
        dur_outcome_done(&o);
        events = history_get(c, "pa");
        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "ActivityTaskCompleted"), 1);
        json_decref(events);
        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetActivity\", \"workflow_id\": \"pa\"}"),
                     "invalid_argument"); /* no activity_id */
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&acts, SIGTERM), 0);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* Bad requests are invalid_argument, unknown or closed workflows not_found; nothing changes. */
TEST(pause_bad_requests) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_json(c, "TimerSignalWorkflow", "bad", NULL, "{\"ms\": 1}", 0);

        ASSERT_STREQ(call_error(c, "{\"op\": \"PauseWorkflow\"}"), "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"PauseWorkflow\", \"workflow_id\": 5}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"PauseWorkflow\", \"workflow_id\": \"bad\", "
                                   "\"reason\": [1]}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"UnpauseWorkflow\", \"workflow_id\": \"bad\", "
                                   "\"identity\": true}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"PauseWorkflow\", \"workflow_id\": \"bad\", "
                                   "\"run_id\": \"not-a-run\"}"),
                     "not_found");
        ASSERT_STREQ(call_error(c, "{\"op\": \"PauseWorkflow\", \"workflow_id\": \"nobody\"}"),
                     "not_found");
        ASSERT_STREQ(call_error(c, "{\"op\": \"UnpauseWorkflow\", \"workflow_id\": \"bad\"}"),
                     "failed_precondition");
        assert_status(c, "bad", "Running");

        ASSERT_DUR_OK(c, dur_client_terminate(c, "bad", NULL, "closed"));
        ASSERT_STREQ(call_error(c, "{\"op\": \"PauseWorkflow\", \"workflow_id\": \"bad\"}"),
                     "not_found");
        events = history_get(c, "bad");
        ASSERT_EQ(history_count(events, "WorkflowExecutionPaused"), 0);
        ASSERT_EQ(history_count(events, "WorkflowExecutionUnpaused"), 0);
        json_decref(events);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
