/* Workflow timeouts and start delay through the real daemon and libdurable, on the daemon's
 * --time-skipping clock (hours pass in milliseconds while the test waits for a result): the run
 * timeout, the execution timeout across continue-as-new, a child's timeout reported to its parent,
 * and start_delay, which a plain signal does not end and signal-with-start does
 * (SEMANTICS.md b.3; doc/protocol.md). */

#include <stdio.h>
#include <string.h>

#include "tests/integration/core-util.h"

static void start_daemon(TestDaemon *d) {
        test_daemon_start(d, &(TestDaemonOpts){ .args = STRV("--time-skipping") });
}

static json_t *last_event(json_t *events) {
        return json_array_get(events, json_array_size(events) - 1);
}

TEST(run_timeout) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_start_opts o = { .run_timeout = 2 * DUR_HOUR };
        dur_outcome out = {};
        json_t *events;
        dur_client *c;

        start_daemon(&d);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Collect", "rt", NULL, &o, NULL), 0);
        ASSERT_EQ(dur_client_result(c, "rt", NULL, 0, &out), DUR_FAILED);
        ASSERT_STREQ(out.status, "TimedOut");
        ASSERT_STREQ(dur_failure_type(out.failure), "TimeoutError");
        ASSERT_STR_CONTAINS(dur_failure_message(out.failure), "run timeout");
        dur_outcome_done(&out);
        events = core_history(c, "rt", NULL);
        ASSERT_EQ(ev_uint(json_array_get(events, 0), "workflow_run_timeout_usec"), 2 * DUR_HOUR);
        /* The workflow task timeout is capped at the run timeout only when larger: 10 s. */
        ASSERT_EQ(ev_uint(json_array_get(events, 0), "task_timeout_usec"), 10 * DUR_SEC);
        ASSERT_STREQ(ev_type(last_event(events)), "WorkflowExecutionTimedOut");
        ASSERT_STREQ(ev_str(last_event(events), "retry_state"), "Timeout");
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* The execution timeout spans the chain: the second run inherits the first one's expiration. */
TEST(execution_timeout_across_continue_as_new) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *first = NULL;
        dur_start_opts o = { .execution_timeout = 3 * DUR_HOUR };
        dur_outcome out = {};
        json_t *events, *req, *answer;
        uint64_t expiration;
        dur_client *c;
        int r;

        start_daemon(&d);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Counter", "et", "{\"n\": 0, \"max\": 5, \"gate\": true}", &o,
                             &first),
                  0);
        ASSERT_DUR_OK(c, dur_client_signal(c, "et", first, "go", NULL));
        /* The first run's own outcome: it continued as new. */
        req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:s, s:b, s:b}", "op", "GetResult",
                                        "workflow_id", "et", "run_id", first, "wait", 1,
                                        "follow_runs", 0));
        answer = ASSERT_NOT_NULL(call_json(c, req, &r));
        ASSERT_STREQ(json_str(json_object_get(answer, "workflow"), "status"), "ContinuedAsNew");
        json_decref(answer);
        json_decref(req);
        events = core_history(c, "et", first);
        expiration = ev_uint(json_array_get(events, 0), "workflow_execution_expiration_time");
        ASSERT_GT(expiration, 0);
        json_decref(events);

        /* The second run waits for "go" that never comes: the chain times out. */
        ASSERT_EQ(dur_client_result(c, "et", NULL, 0, &out), DUR_FAILED);
        ASSERT_STREQ(out.status, "TimedOut");
        ASSERT_STR_CONTAINS(dur_failure_message(out.failure), "execution timeout");
        ASSERT_STRNE(out.run_id, first);
        events = core_history(c, "et", out.run_id);
        ASSERT_EQ(ev_uint(json_array_get(events, 0), "workflow_execution_expiration_time"),
                  expiration);
        ASSERT_STREQ(ev_type(last_event(events)), "WorkflowExecutionTimedOut");
        json_decref(events);
        dur_outcome_done(&out);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A child that times out fails its awaiting parent with ChildWorkflowExecutionTimedOut. */
TEST(child_timeout) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_outcome out = {};
        json_t *events;
        dur_client *c;

        start_daemon(&d);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Parent", "pt",
                             "{\"child_id\": \"pt-child\", \"child_type\": \"Collect\", "
                             "\"await\": true, \"child_run_timeout_ms\": 3600000}",
                             NULL, NULL),
                  0);
        ASSERT_EQ(dur_client_result(c, "pt", NULL, 0, &out), DUR_FAILED);
        ASSERT_STREQ(dur_failure_type(out.failure), "ChildWorkflowFailure");
        ASSERT_STR_CONTAINS(dur_failure_message(out.failure), "timed out");
        ASSERT_STREQ(dur_failure_type(dur_failure_cause(out.failure)), "TimeoutError");
        dur_outcome_done(&out);
        events = core_history(c, "pt", NULL);
        ASSERT_NOT_NULL(history_must(events, "ChildWorkflowExecutionTimedOut"));
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* start_delay: no workflow task before the delay; a signal waits in the history; the task comes
 * when the delay passed. */
TEST(start_delay) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_start_opts o = { .start_delay = DUR_HOUR };
        json_t *events, *res;
        dur_client *c;

        start_daemon(&d);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Collect", "sd", NULL, &o, NULL), 0);
        ASSERT_DUR_OK(c, dur_client_signal(c, "sd", NULL, "done", NULL));
        events = core_history(c, "sd", NULL);
        ASSERT_HISTORY_TYPES(events, "WorkflowExecutionStarted", "WorkflowExecutionSignaled");
        ASSERT_EQ(ev_uint(json_array_get(events, 0), "first_workflow_task_backoff_usec"), DUR_HOUR);
        json_decref(events);
        /* Waiting for the result lets the clock skip the hour. */
        res = core_result(c, "sd", NULL, NULL);
        ASSERT_EQ(json_array_size(json_object_get(res, "signals")), 0);
        json_decref(res);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* Signal-with-start on a delayed run ends the delay: its first task is scheduled at once. */
TEST(signal_with_start_ends_delay) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_start_opts o = { .start_delay = DUR_HOUR };
        json_t *events;
        dur_client *c;

        test_daemon_start(&d, NULL); /* no time skipping: the hour is real */
        c = client_connect();
        ASSERT_EQ(core_start(c, "Collect", "sw", NULL, &o, NULL), 0);
        o = (dur_start_opts){ .workflow_id = "sw", .task_queue = CORE_QUEUE };
        ASSERT_EQ(dur_client_signal_with_start(c, "Collect", &o, NULL, "add", NULL, NULL), 1);
        events = core_history(c, "sw", NULL);
        ASSERT_HISTORY_TYPES(events, "WorkflowExecutionStarted", "WorkflowExecutionSignaled",
                             "WorkflowTaskScheduled");
        json_decref(events);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
