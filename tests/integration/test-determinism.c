/* Cancellation scopes and types, side effects, mutable side effects, patches and the
 * __stack_trace query through the real daemon, the public C API and
 * tests/integration/determinism-worker.c ($DETERMINISM_WORKER_BIN); libdurable(3),
 * SEMANTICS.md b.2, b.6, b.10-b.12. Also: RecordMarker commands made by hand (garbage is
 * invalid_argument), and a process activity (a shell script in an activity unit, in a real
 * cgroup) cancelled with WAIT_CANCELLATION_COMPLETED. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/worker-util.h"

#define QUEUE "determinism"

static void worker_spawn(TestProcess *p, const char *patch) {
        char env[64];

        (void) snprintf(env, sizeof(env), "TEST_PATCH=%s", patch ? patch : "old");
        test_process_spawn(p, STRV(test_bin("DETERMINISM_WORKER_BIN")), STRV(env));
}

static bool history_closed(const json_t *events) {
        const char *last = ev_type(json_array_get(events, json_array_size(events) - 1));

        return strstr(last, "WorkflowExecution") && !streq(last, "WorkflowExecutionStarted") &&
               !streq(last, "WorkflowExecutionSignaled") &&
               !streq(last, "WorkflowExecutionCancelRequested");
}

/* Waits (GetHistory with wait: events, no polling) until the history of @id has an event of
 * @type after the last event of @after; returns the events. */
static json_t *
history_wait_for(dur_client *c, const char *id, const char *type, const char *after) {
        for (;;) {
                json_t *events = history_get(c, id), *req, *answer;
                size_t from = 0, i, last = SIZE_MAX;
                int r;

                while (history_next(events, after, from, &i)) {
                        last = i;
                        from = i + 1;
                }
                if (last != SIZE_MAX && history_next(events, type, last + 1, &i))
                        return events;
                if (history_closed(events))
                        test_fail(__FILE__, __LINE__, "'%s' closed without %s after %s: %s", id,
                                  type, after, history_types(events));
                req = ASSERT_NOT_NULL(
                        json_pack("{s:s, s:s, s:I, s:b, s:I}", "op", "GetHistory", "workflow_id",
                                  id, "from_event_id", (json_int_t) json_array_size(events) + 1,
                                  "wait", true, "timeout_usec", (json_int_t) test_timeout_usec()));
                json_decref(events);
                answer = call_json(c, req, &r);
                json_decref(req);
                if (!answer)
                        test_fail(__FILE__, __LINE__, "GetHistory with wait failed: %d", r);
                json_decref(answer);
        }
}

/* Starts CancelTypes with @type, cancels it once its activity runs; returns the history. */
static json_t *cancel_with_type(dur_client *c, int fd, const char *fifo, const char *type) {
        dur_outcome o = {};
        char input[512], line[64];
        json_t *events;

        (void) snprintf(input, sizeof(input), "{\"type\": \"%s\", \"started_fifo\": \"%s\"}", type,
                        fifo);
        start_json(c, "CancelTypes", type, QUEUE, input, 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started");
        ASSERT_DUR_OK(c, dur_client_cancel(c, type, NULL, "test"));
        ASSERT_EQ(wait_outcome(c, type, &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Canceled");
        dur_outcome_done(&o);
        events = history_get(c, type);
        history_assert_invariants(events);
        return events;
}

/* The cleanup activity ran after the cancel request, and completed. */
static const json_t *assert_cleanup_ran(const json_t *events) {
        const json_t *cleanup = ASSERT_NOT_NULL(history_scheduled(events, "echo"));

        ASSERT_GT(ev_id(cleanup), ev_id(history_must(events, "WorkflowExecutionCancelRequested")));
        ASSERT_STREQ(ev_type(history_activity_close(events, ev_id(cleanup))),
                     "ActivityTaskCompleted");
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCanceled");
        return cleanup;
}

/* Each activity cancellation type, the default included, through a real cancel request. */
TEST(activity_cancellation_types) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *fifo = NULL;
        _cleanup_close_ int fd = -EBADF;
        const json_t *gate, *cleanup, *request, *close;
        dur_outcome o = {};
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, NULL);
        fd = fifo_make(&d, "started.fifo", &fifo);
        worker_spawn(&worker, NULL);
        c = client_connect();

        /* TRY_CANCEL, explicit and as the default: the request is recorded and the cleanup is
         * scheduled in the same workflow task, before the activity could answer. */
        for (int i = 0; i < 2; i++) {
                events = cancel_with_type(c, fd, fifo, i == 0 ? "try" : "default");
                gate = history_scheduled(events, "gate");
                request = history_must(events, "ActivityTaskCancelRequested");
                ASSERT_EQ(ev_uint(request, "scheduled_event_id"), ev_id(gate));
                cleanup = assert_cleanup_ran(events);
                ASSERT_EQ(ev_id(cleanup), ev_id(request) + 1);
                close = history_activity_close(events, ev_id(gate));
                if (close) /* if the activity answered before the run closed */
                        ASSERT_GT(ev_id(close), ev_id(cleanup));
                json_decref(events);
        }

        /* WAIT_CANCELLATION_COMPLETED: the await returns once the activity said canceled (at its
         * next heartbeat); only then is the cleanup scheduled. */
        events = cancel_with_type(c, fd, fifo, "wait");
        gate = history_scheduled(events, "gate");
        request = history_must(events, "ActivityTaskCancelRequested");
        close = ASSERT_NOT_NULL(history_activity_close(events, ev_id(gate)));
        ASSERT_STREQ(ev_type(close), "ActivityTaskCanceled");
        cleanup = assert_cleanup_ran(events);
        ASSERT_GT(ev_id(close), ev_id(request));
        ASSERT_GT(ev_id(cleanup), ev_id(close));
        json_decref(events);

        /* ABANDON: no request; the run closes while the activity still runs. */
        events = cancel_with_type(c, fd, fifo, "abandon");
        gate = history_scheduled(events, "gate");
        ASSERT_EQ(history_count(events, "ActivityTaskCancelRequested"), 0u);
        ASSERT_NULL(history_activity_close(events, ev_id(gate)));
        assert_cleanup_ran(events);
        json_decref(events);

        /* A value outside the enum: refused, nothing scheduled. */
        start_json(c, "CancelTypes", "bogus", QUEUE, "{\"type\": \"bogus\"}", 0);
        ASSERT_EQ(wait_outcome(c, "bogus", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        ASSERT_STREQ(dur_failure_type(o.failure), "BadOption");
        ASSERT_STR_CONTAINS(dur_failure_message(o.failure), "Invalid argument");
        events = history_get(c, "bogus");
        ASSERT_EQ(history_count(events, "ActivityTaskScheduled"), 0u);
        json_decref(events);

        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A compensation in a detached scope is not cancelled: its activity runs to completion after the
 * cancel request, the next activity of the scope runs too, and the request reaches the workflow
 * after the scope (its timer is never started). */
TEST(detached_scope_runs_compensation) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *fifo = NULL, *release = NULL;
        _cleanup_close_ int fd = -EBADF;
        const json_t *gate, *close, *after, *cancel;
        char input[1024], line[64];
        dur_outcome o = {};
        json_t *events, *result;
        dur_client *c;
        FILE *f;

        test_daemon_start(&d, NULL);
        fd = fifo_make(&d, "started.fifo", &fifo);
        ASSERT_TRUE(asprintf(&release, "%s/release", d.dir) > 0);
        worker_spawn(&worker, NULL);
        c = client_connect();
        (void) snprintf(input, sizeof(input), "{\"started_fifo\": \"%s\", \"release\": \"%s\"}",
                        fifo, release);
        start_json(c, "Detached", "detached", QUEUE, input, 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started");
        ASSERT_DUR_OK(c, dur_client_cancel(c, "detached", NULL, "test"));
        /* The worker saw the request (a task completed after it) and cancelled nothing. */
        events = history_wait_for(c, "detached", "WorkflowTaskCompleted",
                                  "WorkflowExecutionCancelRequested");
        ASSERT_EQ(history_count(events, "ActivityTaskCancelRequested"), 0u);
        json_decref(events);
        f = fopen(release, "we");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(fclose(f), 0);

        ASSERT_EQ(wait_outcome(c, "detached", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Canceled");
        events = history_get(c, "detached");
        history_assert_invariants(events);
        cancel = history_must(events, "WorkflowExecutionCancelRequested");
        gate = history_scheduled(events, "gate");
        close = history_activity_close(events, ev_id(gate));
        ASSERT_STREQ(ev_type(close), "ActivityTaskCompleted");
        ASSERT_GT(ev_id(close), ev_id(cancel));
        result = ev_attr(close, "result");
        ASSERT_TRUE(json_is_true(json_object_get(result, "released")));
        after = ASSERT_NOT_NULL(history_scheduled(events, "echo"));
        ASSERT_GT(ev_id(after), ev_id(close));
        ASSERT_STREQ(ev_type(history_activity_close(events, ev_id(after))),
                     "ActivityTaskCompleted");
        ASSERT_EQ(history_count(events, "ActivityTaskCancelRequested"), 0u);
        ASSERT_EQ(history_count(events, "TimerStarted"), 0u);
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCanceled");

        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

static size_t count_lines(const char *path) {
        char line[128];
        size_t n = 0;
        FILE *f = fopen(path, "re");

        ASSERT_NOT_NULL(f);
        while (fgets(line, sizeof(line), f))
                n++;
        fclose(f);
        return n;
}

/* The side effect runs once: the worker that ran it is SIGKILLed (its cache is lost), so is the
 * daemon; the next worker replays the history and takes the recorded value without calling the
 * function again. */
TEST(side_effect_not_rerun_on_replay) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *log = NULL;
        const json_t *marker;
        json_t *events, *out;
        char input[512];
        dur_outcome o = {};
        dur_client *c;
        pid_t first;

        test_daemon_start(&d, NULL);
        ASSERT_TRUE(asprintf(&log, "%s/effects.log", d.dir) > 0);
        worker_spawn(&worker, NULL);
        first = worker.pid;
        c = client_connect();
        (void) snprintf(input, sizeof(input), "{\"log\": \"%s\"}", log);
        start_json(c, "SideEffect", "side-effect", QUEUE, input, 0);
        events = history_wait_for(c, "side-effect", "MarkerRecorded", "WorkflowExecutionStarted");
        marker = history_must(events, "MarkerRecorded");
        ASSERT_STREQ(ev_str(marker, "marker_name"), "SideEffect");
        ASSERT_STREQ(ev_str(marker, "marker_id"), "1");
        ASSERT_EQ(json_integer_value(json_object_get(ev_attr(marker, "details"), "pid")), first);
        json_decref(events);

        /* The worker and then the daemon are SIGKILLed: the marker is in the store. */
        test_process_kill(&worker, SIGKILL);
        dur_client_free(c);
        test_daemon_kill(&d, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        worker_spawn(&worker, NULL);
        ASSERT_DUR_OK(c, dur_client_signal(c, "side-effect", NULL, "go", NULL));
        ASSERT_EQ(wait_outcome(c, "side-effect", &o), 0);
        out = outcome_result(&o);
        /* The value the first worker recorded, and one call of the function in all. */
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(out, "value"), "pid")), first);
        ASSERT_EQ(count_lines(log), 1u);
        events = history_get(c, "side-effect");
        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "MarkerRecorded"), 1u);

        json_decref(events);
        json_decref(out);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ASSERT_NOT_NULL(f);
        fputs(text, f);
        ASSERT_EQ(fclose(f), 0);
}

static void tick(dur_client *c, uint64_t expect_count) {
        ASSERT_DUR_OK(c, dur_client_signal(c, "mutable", NULL, "tick", NULL));
        /* The query is answered after the task that handled the signal (no sleeps: the daemon
         * buffers a query while a task runs). */
        json_decref(history_wait_for(c, "mutable", "WorkflowTaskCompleted",
                                     "WorkflowExecutionSignaled"));
        ASSERT_EQ(query_count(c, "mutable"), expect_count);
}

/* A marker only when the value changes; a replay (new worker) with the outside value changed
 * still sees the recorded ones. */
TEST(mutable_side_effect) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *file = NULL;
        char input[512];
        dur_outcome o = {};
        json_t *events, *out;
        dur_client *c;
        size_t i, n = 0;
        json_t *ev;

        test_daemon_start(&d, NULL);
        ASSERT_TRUE(asprintf(&file, "%s/cfg", d.dir) > 0);
        write_file(file, "a\n");
        worker_spawn(&worker, NULL);
        c = client_connect();
        (void) snprintf(input, sizeof(input), "{\"file\": \"%s\"}", file);
        start_json(c, "Mutable", "mutable", QUEUE, input, 0);
        tick(c, 1);
        tick(c, 2);

        /* A new worker replays with "b" outside: the first two values stay "a". */
        test_process_kill(&worker, SIGKILL);
        write_file(file, "b\n");
        worker_spawn(&worker, NULL);
        ASSERT_EQ(query_count(c, "mutable"), 2u);
        ASSERT_DUR_OK(c, dur_client_signal(c, "mutable", NULL, "tick", NULL));
        ASSERT_DUR_OK(c, dur_client_signal(c, "mutable", NULL, "done", NULL));
        ASSERT_EQ(wait_outcome(c, "mutable", &o), 0);
        out = outcome_result(&o);
        ASSERT_EQ(json_array_size(out), 3u);
        ASSERT_STREQ(json_string_value(json_array_get(out, 0)), "a");
        ASSERT_STREQ(json_string_value(json_array_get(out, 1)), "a");
        ASSERT_STREQ(json_string_value(json_array_get(out, 2)), "b");

        events = history_get(c, "mutable");
        history_assert_invariants(events);
        json_array_foreach(events, i, ev) {
                if (!streq(ev_type(ev), "MarkerRecorded"))
                        continue;
                ASSERT_STREQ(ev_str(ev, "marker_name"), "MutableSideEffect");
                ASSERT_STREQ(ev_str(ev, "marker_id"), "cfg");
                ASSERT_STREQ(json_string_value(ev_attr(ev, "details")), n == 0 ? "a" : "b");
                n++;
        }
        ASSERT_EQ(n, 2u);

        json_decref(events);
        json_decref(out);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* Starts Patched as @id and waits until it waits for "go". */
static void patched_start(dur_client *c, const char *id) {
        start_json(c, "Patched", id, QUEUE, NULL, 0);
        json_decref(history_wait_for(c, id, "WorkflowTaskCompleted", "ActivityTaskCompleted"));
}

static void patched_expect(dur_client *c, const char *id, const char *first, const char *second) {
        dur_outcome o = {};
        json_t *out;

        ASSERT_DUR_OK(c, dur_client_signal(c, id, NULL, "go", NULL));
        ASSERT_EQ(wait_outcome(c, id, &o), 0);
        out = outcome_result(&o);
        ASSERT_STREQ(json_str(out, "first"), first);
        ASSERT_STREQ(json_str(out, "second"), second);
        json_decref(out);
        dur_outcome_done(&o);
}

/* An old run replays on the patched code and keeps the old branch; a new run takes the new one,
 * records the patch and is found by TemporalChangeVersion; runs of the patched code replay on
 * the code that deprecates the patch. */
TEST(patched_old_and_new_runs) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        const json_t *marker;
        json_t *events;
        dur_client *c;
        uint64_t n;

        test_daemon_start(&d, NULL);
        c = client_connect();
        worker_spawn(&worker, "old");
        patched_start(c, "old-run");
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);

        worker_spawn(&worker, "new");
        patched_start(c, "new-run");
        patched_start(c, "new-run-2");
        patched_expect(c, "old-run", "old", "old");
        patched_expect(c, "new-run", "new", "new");
        events = history_get(c, "old-run");
        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "MarkerRecorded"), 0u);
        ASSERT_NOT_NULL(history_scheduled(events, "old_step"));
        json_decref(events);
        events = history_get(c, "new-run");
        history_assert_invariants(events);
        marker = history_must(events, "MarkerRecorded");
        ASSERT_STREQ(ev_str(marker, "marker_name"), "core_patch");
        ASSERT_STREQ(ev_str(marker, "marker_id"), "v2");
        ASSERT_EQ(history_count(events, "MarkerRecorded"), 1u);
        ASSERT_STREQ(ev_type(json_array_get(events, ev_id(marker))),
                     "UpsertWorkflowSearchAttributes");
        ASSERT_NOT_NULL(history_scheduled(events, "new_step"));
        json_decref(events);
        ASSERT_DUR_OK(c, dur_client_count(c, "TemporalChangeVersion = 'v2'", &n));
        ASSERT_EQ(n, 2u); /* new-run and new-run-2 */
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);

        /* The patch deprecated: the waiting run of the patched code replays, a new run records a
         * deprecated marker. */
        worker_spawn(&worker, "deprecated");
        patched_start(c, "deprecated-run");
        patched_expect(c, "new-run-2", "new", "new");
        patched_expect(c, "deprecated-run", "new", "new");
        events = history_get(c, "deprecated-run");
        history_assert_invariants(events);
        marker = history_must(events, "MarkerRecorded");
        ASSERT_STREQ(ev_str(marker, "marker_id"), "v2");
        ASSERT_TRUE(json_is_true(ev_attr(marker, "deprecated")));
        ASSERT_EQ(history_count(events, "UpsertWorkflowSearchAttributes"), 0u);
        json_decref(events);
        events = history_get(c, "new-run-2");
        ASSERT_EQ(history_count(events, "WorkflowTaskFailed"), 0u);
        json_decref(events);

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* __stack_trace of a run blocked in an activity, a timer and a condition (one coroutine each),
 * through dur_client_query() and `durablectl stack`; then a cancel request reaches all three:
 * the activity is asked to cancel, the timer is cancelled, the run ends Canceled. */
TEST(stack_trace_and_cancel_everything) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(test_run_free) TestRun run = {}, json_run = {}, missing = {};
        _cleanup_free_ char *fifo = NULL;
        _cleanup_close_ int fd = -EBADF;
        static const char expected[] = "main function: blocked in activity gate (id 1)\n"
                                       "coroutine 1: blocked in timer 60 s (id 1)\n"
                                       "signal handler 'wait': blocked in condition";
        char input[512], line[64];
        dur_buf *result = NULL;
        dur_outcome o = {};
        json_t *events, *j;
        dur_client *c;
        char *text;

        test_daemon_start(&d, NULL);
        fd = fifo_make(&d, "started.fifo", &fifo);
        worker_spawn(&worker, NULL);
        c = client_connect();
        (void) snprintf(input, sizeof(input), "{\"started_fifo\": \"%s\"}", fifo);
        start_json(c, "Stack", "stack", QUEUE, input, 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_DUR_OK(c, dur_client_signal(c, "stack", NULL, "wait", NULL));
        json_decref(
                history_wait_for(c, "stack", "WorkflowTaskCompleted", "WorkflowExecutionSignaled"));

        ASSERT_DUR_OK(c, dur_client_query(c, "stack", NULL, DUR_QUERY_STACK_TRACE, NULL, &result));
        text = ASSERT_NOT_NULL(dur_buf_to_json(result));
        j = ASSERT_NOT_NULL(json_loads(text, JSON_DECODE_ANY, NULL));
        ASSERT_STREQ(json_string_value(j), expected);
        json_decref(j);
        free(text);
        dur_buf_free(result);

        ASSERT_EQ(test_run(&run, STRV(test_bin("DURABLECTL_BIN"), "stack", "stack"), NULL), 0);
        ASSERT_STREQ(run.out, "main function: blocked in activity gate (id 1)\n"
                              "coroutine 1: blocked in timer 60 s (id 1)\n"
                              "signal handler 'wait': blocked in condition\n");
        ASSERT_EQ(test_run(&json_run, STRV(test_bin("DURABLECTL_BIN"), "--json", "stack", "stack"),
                           NULL),
                  0);
        j = ASSERT_NOT_NULL(json_loads(json_run.out, 0, NULL));
        ASSERT_STREQ(json_str(j, "stack_trace"), expected);
        json_decref(j);
        ASSERT_EQ(test_run(&missing, STRV(test_bin("DURABLECTL_BIN"), "stack", "nope"), NULL), 1);
        ASSERT_STR_CONTAINS(missing.err, "nope");

        ASSERT_DUR_OK(c, dur_client_cancel(c, "stack", NULL, "test"));
        ASSERT_EQ(wait_outcome(c, "stack", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Canceled");
        events = history_get(c, "stack");
        history_assert_invariants(events);
        ASSERT_EQ(
                ev_uint(history_must(events, "ActivityTaskCancelRequested"), "scheduled_event_id"),
                ev_id(history_scheduled(events, "gate")));
        ASSERT_STREQ(ev_str(history_must(events, "TimerCanceled"), "timer_id"), "1");
        ASSERT_GT(ev_id(history_must(events, "TimerCanceled")),
                  ev_id(history_must(events, "WorkflowExecutionCancelRequested")));
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCanceled");

        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* RecordMarker, fed by hand: a malformed command fails the task (BadCommand), is answered
 * invalid_argument naming the field, and records no marker; a sound one appends MarkerRecorded,
 * which the history linter accepts. */
TEST(record_marker_garbage) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        static const struct {
                const char *attrs, *message;
        } bad[] = {
                { "{}", "marker_name" },
                { "{\"marker_name\": 7}", "marker_name" },
                { "{\"marker_name\": \"\"}", "must not be empty" },
                { "{\"marker_name\": \"SideEffect\", \"marker_id\": 5}", "marker_id" },
                { "{\"marker_name\": \"SideEffect\", \"details\": \"text\"}", "details" },
                { "{\"marker_name\": \"core_patch\", \"deprecated\": \"yes\"}", "deprecated" },
        };
        const json_t *marker, *failed;
        char id[32], commands[512];
        json_t *events;
        dur_client *c;
        size_t size;
        char *token;

        test_daemon_start(&d, NULL);
        c = client_connect();
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                (void) snprintf(id, sizeof(id), "bad-marker-%zu", i);
                (void) snprintf(commands, sizeof(commands),
                                "[{\"command_type\": \"RecordMarker\", \"attributes\": %s}]",
                                bad[i].attrs);
                /* A queue each: the failed task is retried, and must not be polled below. */
                start_json(c, "Raw", id, id, NULL, 0);
                raw_poll_workflow_task(c, id, &token, &size);
                ASSERT_ERROR(raw_complete_workflow_task(c, token, size, commands), -EINVAL);
                ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
                ASSERT_STR_CONTAINS(dur_client_error_message(c), bad[i].message);
                free(token);
                events = history_get(c, id);
                history_assert_invariants(events);
                ASSERT_EQ(history_count(events, "MarkerRecorded"), 0u);
                failed = history_must(events, "WorkflowTaskFailed");
                ASSERT_STREQ(ev_str(failed, "cause"), "BadCommand");
                json_decref(events);
        }

        start_json(c, "Raw", "good-marker", "raw", NULL, 0);
        raw_poll_workflow_task(c, "raw", &token, &size);
        ASSERT_DUR_OK(c, raw_complete_workflow_task(
                                 c, token, size,
                                 "[{\"command_type\": \"RecordMarker\", \"attributes\": "
                                 "{\"marker_name\": \"core_patch\", \"marker_id\": \"p\", "
                                 "\"deprecated\": true}}]"));
        free(token);
        events = history_get(c, "good-marker");
        history_assert_invariants(events);
        marker = history_must(events, "MarkerRecorded");
        ASSERT_STREQ(ev_str(marker, "marker_name"), "core_patch");
        ASSERT_STREQ(ev_str(marker, "marker_id"), "p");
        ASSERT_TRUE(json_is_true(ev_attr(marker, "deprecated")));
        ASSERT_EQ(ev_uint(marker, "workflow_task_completed_event_id"), ev_id(marker) - 1);
        json_decref(events);
        dur_client_free(c);
}

/* A process activity (durabled.activity(5)) of cancellation type WAIT_CANCELLATION_COMPLETED:
 * the cancel request reaches the process as its unit's KillSignal, and the workflow goes on only
 * once the process is gone (ActivityTaskCanceled), not before. */
TEST(process_activity_wait_cancellation) {
        _cleanup_free_ char *arg = NULL;
        const char *args[2] = { NULL, NULL }; /* outlives d: its options point here */
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *units = NULL, *started = NULL, *term = NULL;
        _cleanup_free_ char *script = NULL, *unit = NULL;
        _cleanup_close_ int started_fd = -EBADF, term_fd = -EBADF;
        const json_t *gate, *request, *close, *cleanup;
        char line[64], text[1024];
        dur_outcome o = {};
        json_t *events;
        dur_client *c;

        units = ASSERT_NOT_NULL(test_mkdtemp());
        ASSERT_TRUE(asprintf(&started, "%s/started.fifo", units) > 0);
        ASSERT_TRUE(asprintf(&term, "%s/term.fifo", units) > 0);
        ASSERT_OK_ERRNO(mkfifo(started, 0600));
        ASSERT_OK_ERRNO(mkfifo(term, 0600));
        started_fd = ASSERT_OK_ERRNO(open(started, O_RDWR | O_NONBLOCK | O_CLOEXEC));
        term_fd = ASSERT_OK_ERRNO(open(term, O_RDWR | O_NONBLOCK | O_CLOEXEC));
        ASSERT_TRUE(asprintf(&script, "%s/gate.sh", units) > 0);
        (void) snprintf(text, sizeof(text),
                        "#!/bin/sh\n"
                        "trap 'echo term > %s; exit 3' TERM\n"
                        "echo started > %s\n"
                        "while :; do sleep 0.05; done\n",
                        term, started);
        write_file(script, text);
        ASSERT_OK_ERRNO(chmod(script, 0755));
        ASSERT_TRUE(asprintf(&unit, "%s/gate.activity", units) > 0);
        (void) snprintf(text, sizeof(text), "[Activity]\nExecStart=%s\nTimeoutStopSec=120s\n",
                        script);
        write_file(unit, text);

        ASSERT_TRUE(asprintf(&arg, "--activity-dir=%s", units) > 0);
        args[0] = arg;
        test_daemon_start(&d, &(TestDaemonOpts){ .args = args });
        worker_spawn(&worker, NULL);
        c = client_connect();
        start_json(c, "CancelTypes", "process-wait", QUEUE,
                   "{\"type\": \"wait\", \"no_heartbeat\": true}", 0);
        fifo_read_line(started_fd, line, sizeof(line));
        ASSERT_STREQ(line, "started");
        ASSERT_DUR_OK(c, dur_client_cancel(c, "process-wait", NULL, "test"));
        fifo_read_line(term_fd, line, sizeof(line));
        ASSERT_STREQ(line, "term"); /* KillSignal= (SIGTERM) reached the process */
        ASSERT_EQ(wait_outcome(c, "process-wait", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Canceled");

        events = history_get(c, "process-wait");
        history_assert_invariants(events);
        gate = history_scheduled(events, "gate");
        request = history_must(events, "ActivityTaskCancelRequested");
        close = ASSERT_NOT_NULL(history_activity_close(events, ev_id(gate)));
        ASSERT_STREQ(ev_type(close), "ActivityTaskCanceled");
        cleanup = assert_cleanup_ran(events);
        ASSERT_GT(ev_id(close), ev_id(request));
        ASSERT_GT(ev_id(cleanup), ev_id(close));

        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
        test_daemon_stop(&d);
        (void) test_rm_rf(units);
}

DEFINE_TEST_MAIN();
