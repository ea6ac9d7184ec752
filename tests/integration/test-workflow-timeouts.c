/* Workflow timeouts, retries and start delay through the real daemon and libdurable, on the
 * daemon's --time-skipping clock (hours pass in milliseconds while the test waits for a result):
 * the run timeout, the execution timeout across continue-as-new, a child's timeout reported to its
 * parent, the workflow retry policy (backoff, maximum attempts, non-retryable failures, a retried
 * run timeout), and start_delay, which a plain signal does not end and signal-with-start does
 * (SEMANTICS.md b.1, b.3; doc/protocol.md). */

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
        ASSERT_STREQ(ev_str(last_event(events), "retry_state"), "RetryPolicyNotSet");
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

static json_t *run_history(dur_client *c, const char *id, const char *run_id) {
        return core_history(c, id, run_id);
}

/* Flaky fails twice, succeeds on attempt 3: three runs, backoffs 1 h then 2 h. */
TEST(retry_policy) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *first = NULL, *last = NULL;
        dur_start_opts o = { .retry = { .initial_interval = DUR_HOUR, .maximum_attempts = 5 } };
        char run_id[37];
        json_t *res, *events, *ev;

        dur_client *c;

        start_daemon(&d);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Flaky", "fl", "{\"succeed_at\": 3}", &o, &first), 0);
        res = core_result(c, "fl", first, &last);
        ASSERT_EQ(json_integer_value(json_object_get(res, "attempt")), 3);
        json_decref(res);

        snprintf(run_id, sizeof(run_id), "%s", first);
        for (int attempt = 1; attempt <= 3; attempt++) {
                events = run_history(c, "fl", run_id);
                ev = json_array_get(events, 0);
                ASSERT_EQ(ev_uint(ev, "attempt"), (uint64_t) attempt);
                if (attempt > 1) {
                        ASSERT_STREQ(ev_str(ev, "initiator"), "Retry");
                        ASSERT_EQ(ev_uint(ev, "first_workflow_task_backoff_usec"),
                                  (uint64_t) (attempt == 2 ? 1 : 2) * DUR_HOUR);
                }
                ev = last_event(events);
                if (attempt < 3) {
                        ASSERT_STREQ(ev_type(ev), "WorkflowExecutionFailed");
                        ASSERT_STREQ(ev_str(ev, "retry_state"), "InProgress");
                        snprintf(run_id, sizeof(run_id), "%s",
                                 ASSERT_NOT_NULL(ev_str(ev, "new_execution_run_id")));
                } else
                        ASSERT_STREQ(ev_type(ev), "WorkflowExecutionCompleted");
                json_decref(events);
        }
        ASSERT_STREQ(run_id, last);
        {
                json_t *desc = core_describe(c, "fl", first);

                ASSERT_STREQ(core_status(desc), "Failed");
                json_decref(desc);
        }
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* The retries stop: at maximum_attempts, at a non-retryable type, without a policy. */
TEST(retry_stops) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        static const char *const flaky[] = { "Flaky", NULL };
        dur_start_opts o = { .retry = { .initial_interval = DUR_MIN, .maximum_attempts = 2 } };
        dur_outcome out = {};
        json_t *events;
        dur_client *c;

        start_daemon(&d);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Flaky", "max", "{\"succeed_at\": 9}", &o, NULL), 0);
        ASSERT_EQ(dur_client_result(c, "max", NULL, 0, &out), DUR_FAILED);
        ASSERT_STREQ(dur_failure_message(out.failure), "attempt 2 failed");
        dur_outcome_done(&out);
        events = core_history(c, "max", NULL);
        ASSERT_STREQ(ev_str(last_event(events), "retry_state"), "MaximumAttemptsReached");
        json_decref(events);

        o = (dur_start_opts){ .retry = { .non_retryable_error_types = flaky } };
        ASSERT_EQ(core_start(c, "Flaky", "nr", "{\"succeed_at\": 9}", &o, NULL), 0);
        ASSERT_EQ(dur_client_result(c, "nr", NULL, 0, &out), DUR_FAILED);
        ASSERT_STREQ(dur_failure_message(out.failure), "attempt 1 failed");
        dur_outcome_done(&out);
        events = core_history(c, "nr", NULL);
        ASSERT_STREQ(ev_str(last_event(events), "retry_state"), "NonRetryableFailure");
        json_decref(events);

        ASSERT_EQ(core_start(c, "Flaky", "none", "{\"succeed_at\": 9}", NULL, NULL), 0);
        ASSERT_EQ(dur_client_result(c, "none", NULL, 0, &out), DUR_FAILED);
        dur_outcome_done(&out);
        events = core_history(c, "none", NULL);
        ASSERT_STREQ(ev_str(last_event(events), "retry_state"), "RetryPolicyNotSet");
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A run timeout is retried; the attempts end at maximum_attempts. */
TEST(retry_run_timeout) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_start_opts o = { .run_timeout = DUR_HOUR,
                             .retry = { .initial_interval = DUR_MIN, .maximum_attempts = 2 } };
        _cleanup_free_ char *first = NULL;
        dur_outcome out = {};
        json_t *events;
        dur_client *c;

        start_daemon(&d);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Collect", "rto", NULL, &o, &first), 0);
        ASSERT_EQ(dur_client_result(c, "rto", NULL, 0, &out), DUR_FAILED);
        ASSERT_STREQ(out.status, "TimedOut");
        ASSERT_STRNE(out.run_id, first);
        events = core_history(c, "rto", first);
        ASSERT_STREQ(ev_type(last_event(events)), "WorkflowExecutionTimedOut");
        ASSERT_STREQ(ev_str(last_event(events), "retry_state"), "InProgress");
        json_decref(events);
        events = core_history(c, "rto", out.run_id);
        ASSERT_EQ(ev_uint(json_array_get(events, 0), "attempt"), 2);
        ASSERT_STREQ(ev_str(last_event(events), "retry_state"), "MaximumAttemptsReached");
        json_decref(events);
        dur_outcome_done(&out);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A bad retry policy is refused with a message naming it; nothing starts. */
TEST(bad_retry_policy) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_start_opts o = { .retry = { .backoff_coefficient = 0.5 } };
        dur_client *c;
        json_t *req;
        int r;

        test_daemon_start(&d, NULL);
        c = client_connect();
        ASSERT_ERROR(core_start(c, "Flaky", "bad", NULL, &o, NULL), -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "retry_policy");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "backoff_coefficient");
        o = (dur_start_opts){ .retry = { .initial_interval = DUR_MIN,
                                         .maximum_interval = DUR_SEC } };
        ASSERT_ERROR(core_start(c, "Flaky", "bad", NULL, &o, NULL), -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "maximum_interval_usec");
        req = ASSERT_NOT_NULL(
                json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "bad"));
        ASSERT_NULL(call_json(c, req, &r));
        ASSERT_EQ(r, -ENOENT);
        json_decref(req);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
