/* Reset, redrive and fork (daemon/history-reset.c, SEMANTICS.md b.10 and b.23) through the real
 * daemon and test-worker: a reset re-applies the signals recorded after its point (or not, with
 * reapply_exclude), terminates the old run naming the new one and survives a daemon SIGKILL; a
 * run failed by a broken step is redriven with a fixed worker, its completed step kept; a fork
 * from step 2 keeps step 1; bad requests change nothing. */

#include <stdio.h>
#include <string.h>

#include "tests/integration/worker-util.h"

static const char *call_error(dur_client *c, const char *request_json) {
        json_t *req = ASSERT_NOT_NULL(json_loads(request_json, 0, NULL)), *answer;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (answer)
                test_fail(__FILE__, __LINE__, "%s succeeded", request_json);
        return ASSERT_NOT_NULL(dur_client_error_code(c));
}

/* Calls @request_json, which must succeed; returns the answer (new reference). */
static json_t *call_ok_json(dur_client *c, const char *request_json) {
        json_t *req = ASSERT_NOT_NULL(json_loads(request_json, 0, NULL)), *answer;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (!answer)
                test_fail(__FILE__, __LINE__, "%s failed: %s", request_json,
                          test_str_or_null(dur_client_error_message(c)));
        return answer;
}

/* Calls @request_json, which must succeed; returns its "run_id" (malloc'd). */
static char *call_run_id(dur_client *c, const char *request_json) {
        json_t *answer = call_ok_json(c, request_json);
        char *run_id = ASSERT_NOT_NULL(strdup(json_str(answer, "run_id")));

        json_decref(answer);
        return run_id;
}

static json_t *run_history(dur_client *c, const char *id, const char *run_id) {
        json_t *req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:s}", "op", "GetHistory",
                                                "workflow_id", id, "run_id", run_id)),
               *answer, *events;
        int r;

        answer = ASSERT_NOT_NULL(call_json(c, req, &r));
        json_decref(req);
        events = json_incref(json_object_get(answer, "events"));
        json_decref(answer);
        history_assert_invariants(events);
        return events;
}

static uint64_t count_runs(dur_client *c, const char *query) {
        uint64_t n = UINT64_MAX;

        ASSERT_DUR_OK(c, dur_client_count(c, query, &n));
        return n;
}

static void signal_add(dur_client *c, const char *id, int i) {
        dur_buf *arg = ASSERT_NOT_NULL(dur_args("i", i));

        ASSERT_DUR_OK(c, dur_client_signal(c, id, NULL, "add", arg));
        dur_buf_free(arg);
}

static json_t *signals_of(dur_client *c, const char *id, dur_outcome *o) {
        json_t *out;

        ASSERT_EQ(wait_outcome(c, id, o), 0);
        out = outcome_result(o);
        return out;
}

TEST(reset_reapplies_signals) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *reset = NULL, *again = NULL;
        dur_outcome o = {};
        json_t *events, *ev, *out;
        dur_client *c;
        char req[512];
        size_t i;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "SignalWorkflow", "rs", NULL, NULL, 0);
        ASSERT_EQ(query_count(c, "rs"), 0); /* the first workflow task is done */
        signal_add(c, "rs", 1);
        signal_add(c, "rs", 2);
        ASSERT_EQ(query_count(c, "rs"), 2);

        reset = call_run_id(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"rs\", \"to\": "
                               "\"first\", \"reason\": \"replay the signals\"}");
        /* The latest run of the workflow id is the new one. */
        {
                _cleanup_free_ char *status = describe_status(c, "rs");

                ASSERT_STREQ(status, "Running");
        }
        ASSERT_EQ(count_runs(c, "WorkflowId = 'rs' AND ExecutionStatus = 'Terminated'"), 1);
        ASSERT_EQ(query_count(c, "rs"), 2); /* the new run has both signals again */
        events = run_history(c, "rs", reset);
        ev = history_must(events, "WorkflowTaskFailed");
        ASSERT_STREQ(ev_str(ev, "cause"), "ResetWorkflow");
        ASSERT_STREQ(ev_str(ev, "reason"), "replay the signals");
        /* Right after the first WorkflowTaskStarted. */
        ASSERT_NOT_NULL(history_next(events, "WorkflowTaskStarted", 0, &i));
        ASSERT_EQ(ev_id(ev), i + 2);
        ASSERT_EQ(history_count(events, "WorkflowExecutionSignaled"), 2);
        json_decref(events);

        /* DESIGN.md §3: the new run is in the store; it goes on after a crash. */
        c = dur_client_free(c);
        ASSERT_EQ(test_daemon_kill(&d, SIGKILL) & 0x7f, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        signal_add(c, "rs", 3);

        /* Another reset, to the reset's own WorkflowTaskFailed (event 4), without re-applying
         * signals: the new run has none. */
        snprintf(req, sizeof(req),
                 "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"rs\", \"run_id\": \"%s\", "
                 "\"event_id\": 4, \"reason\": \"again\", \"reapply_exclude\": [\"Signal\"]}",
                 reset);
        again = call_run_id(c, req);
        ASSERT_EQ(query_count(c, "rs"), 0);
        signal_add(c, "rs", 4);
        ASSERT_DUR_OK(c, dur_client_signal(c, "rs", NULL, "done", NULL));
        out = signals_of(c, "rs", &o);
        ASSERT_STREQ(o.run_id, again);
        ASSERT_EQ(json_array_size(json_object_get(out, "signals")), 1);
        ASSERT_EQ(json_integer_value(json_array_get(json_object_get(out, "signals"), 0)), 4);
        json_decref(out);
        dur_outcome_done(&o);

        /* The first reset's run was terminated by the second, and says by which. */
        events = run_history(c, "rs", reset);
        ev = history_must(events, "WorkflowExecutionTerminated");
        ASSERT_STREQ(ev_str(ev, "new_execution_run_id"), again);
        json_decref(events);

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

TEST(redrive_after_non_retryable_failure_and_fork_from_step_2) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess broken = {}, fixed = {};
        _cleanup_free_ char *redriven = NULL, *forked = NULL;
        dur_outcome o = {};
        json_t *events, *out;
        size_t cut, i;
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&broken, NULL, STRV("TEST_BROKEN_STEP=2"));
        c = client_connect();
        start_json(c, "StepsWorkflow", "steps", NULL, "{\"n\": 3}", 0);
        ASSERT_EQ(wait_outcome(c, "steps", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        dur_outcome_done(&o);
        ASSERT_EQ(test_process_kill(&broken, SIGTERM), 0);
        ASSERT_STREQ(call_error(c, "{\"op\": \"ForkWorkflow\", \"workflow_id\": \"steps\", "
                                   "\"new_workflow_id\": \"f\", \"step\": 4}"),
                     "invalid_argument");

        /* The fixed worker: the run goes on from step 2, step 1 kept. */
        test_worker_spawn(&fixed, NULL, NULL);
        redriven = call_run_id(c, "{\"op\": \"RedriveWorkflow\", \"workflow_id\": \"steps\"}");
        ASSERT_EQ(wait_outcome(c, "steps", &o), 0);
        ASSERT_STREQ(o.run_id, redriven);
        out = outcome_result(&o);
        ASSERT_EQ(json_array_size(json_object_get(out, "steps")), 3);
        json_decref(out);
        dur_outcome_done(&o);
        events = run_history(c, "steps", redriven);
        ASSERT_NOT_NULL(history_next(events, "WorkflowTaskFailed", 0, &cut));
        ASSERT_STREQ(ev_str(json_array_get(events, cut), "cause"), "RedriveWorkflow");
        ASSERT_EQ(history_count_scheduled(events, "step"), 3);
        /* Step 1 was scheduled and completed before the cut, and not again. */
        ASSERT_NOT_NULL(history_next(events, "ActivityTaskCompleted", 0, &i));
        ASSERT_LT(i, cut);
        ASSERT_NOT_NULL(history_next(events, "ActivityTaskScheduled", cut, &i));
        ASSERT_EQ(json_integer_value(
                          json_object_get(ev_attr(json_array_get(events, i), "input"), "i")),
                  2);
        json_decref(events);
        ASSERT_STREQ(call_error(c, "{\"op\": \"RedriveWorkflow\", \"workflow_id\": \"steps\"}"),
                     "failed_precondition"); /* it completed */

        /* Fork from step 2 of the completed run, under another workflow id. */
        forked = call_run_id(c, "{\"op\": \"ForkWorkflow\", \"workflow_id\": \"steps\", "
                                "\"new_workflow_id\": \"steps-fork\", \"step\": 2}");
        ASSERT_EQ(wait_outcome(c, "steps-fork", &o), 0);
        ASSERT_STREQ(o.run_id, forked);
        dur_outcome_done(&o);
        events = run_history(c, "steps-fork", forked);
        ASSERT_STREQ(ev_str(json_array_get(events, 0), "workflow_id"), "steps-fork");
        /* The forked run was redriven before: its prefix holds that cut too. */
        ASSERT_NOT_NULL(history_next(events, "WorkflowTaskFailed", 0, &cut));
        while (!streq(ev_str(json_array_get(events, cut), "cause"), "ForkWorkflow"))
                ASSERT_NOT_NULL(history_next(events, "WorkflowTaskFailed", cut + 1, &cut));
        ASSERT_NOT_NULL(history_next(events, "ActivityTaskCompleted", 0, &i));
        ASSERT_LT(i, cut);
        ASSERT_EQ(history_count_scheduled(events, "step"), 3);
        json_decref(events);
        /* The base is untouched by a fork. */
        ASSERT_EQ(count_runs(c, "WorkflowId = 'steps' AND ExecutionStatus = 'Completed'"), 1);

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&fixed, SIGTERM), 0);
}

/* Waits (GetHistory long polls) until the latest run of @id has @n events of @type. */
static void wait_count(dur_client *c, const char *id, const char *type, size_t n) {
        for (;;) {
                json_t *events = history_get(c, id), *req, *answer;
                size_t have = history_count(events, type), len = json_array_size(events);
                int r;

                json_decref(events);
                if (have >= n)
                        return;
                req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:I, s:b}", "op", "GetHistory",
                                                "workflow_id", id, "from_event_id",
                                                (json_int_t) len + 1, "wait", 1));
                answer = ASSERT_NOT_NULL(call_json(c, req, &r));
                json_decref(req);
                json_decref(answer);
        }
}

/* A timer pending at the reset point is pending in the new run, with its deadline: it fires
 * there and the run completes (without it, the run would wait forever). */
TEST(reset_keeps_pending_timer) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *reset = NULL;
        dur_buf *arg = ASSERT_NOT_NULL(dur_args("{s:i}", "v", 9));
        dur_outcome o = {};
        json_t *events, *out;
        size_t cut;
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "TimerSignalWorkflow", "tm", NULL, "{\"ms\": 1500}", 0);
        wait_count(c, "tm", "TimerStarted", 1);
        ASSERT_DUR_OK(c, dur_client_signal(c, "tm", NULL, "go", arg));
        wait_count(c, "tm", "WorkflowTaskCompleted", 2);
        reset = call_run_id(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"tm\", "
                               "\"reason\": \"keep the timer\"}");
        ASSERT_EQ(wait_outcome(c, "tm", &o), 0);
        ASSERT_STREQ(o.run_id, reset);
        out = outcome_result(&o);
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(out, "go"), "v")), 9);
        events = run_history(c, "tm", reset);
        ASSERT_NOT_NULL(history_next(events, "WorkflowTaskFailed", 0, &cut));
        ASSERT_EQ(history_count(events, "TimerStarted"), 1); /* the old one, not a new one */
        ASSERT_NOT_NULL(history_next(events, "TimerFired", cut, NULL));
        json_decref(events);
        json_decref(out);
        dur_outcome_done(&o);
        dur_buf_free(arg);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A batch reset (StartBatchOperation Reset) of two runs: each is terminated, naming its new run,
 * which has the signal the old one had after the cut. */
TEST(batch_reset) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        const char *ids[2] = { "br-1", "br-2" };
        json_t *answer, *events;
        char *old[2], req[512];
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        for (int i = 0; i < 2; i++) {
                start_json(c, "SignalWorkflow", ids[i], NULL, NULL, 0);
                ASSERT_EQ(query_count(c, ids[i]), 0);
                signal_add(c, ids[i], 10 + i);
                ASSERT_EQ(query_count(c, ids[i]), 1);
                snprintf(req, sizeof(req),
                         "{\"op\": \"DescribeWorkflow\", \"workflow_id\": \"%s\"}", ids[i]);
                answer = call_ok_json(c, req);
                old[i] = ASSERT_NOT_NULL(
                        strdup(json_str(json_object_get(answer, "workflow"), "run_id")));
                json_decref(answer);
        }
        answer = call_ok_json(c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Reset\", "
                                 "\"query\": \"WorkflowId STARTS_WITH 'br-'\", \"to\": \"first\", "
                                 "\"reason\": \"bad deploy\"}");
        ASSERT_EQ(json_integer_value(json_object_get(answer, "total")), 2);
        json_decref(answer);
        for (int i = 0; i < 2; i++) {
                snprintf(req, sizeof(req),
                         "{\"op\": \"GetResult\", \"workflow_id\": \"%s\", \"run_id\": \"%s\", "
                         "\"wait\": true, \"follow_runs\": false}",
                         ids[i], old[i]);
                answer = call_ok_json(c, req);
                ASSERT_STREQ(json_str(json_object_get(answer, "workflow"), "status"), "Terminated");
                json_decref(answer);
                ASSERT_EQ(query_count(c, ids[i]), 1); /* the new run, its signal re-applied */
                events = run_history(c, ids[i], old[i]);
                ASSERT_NOT_NULL(ev_str(history_must(events, "WorkflowExecutionTerminated"),
                                       "new_execution_run_id"));
                json_decref(events);
                free(old[i]);
        }
        ASSERT_EQ(count_runs(c, "WorkflowId STARTS_WITH 'br-' AND ExecutionStatus = 'Running'"), 2);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

TEST(branch_bad_requests) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_json(c, "SignalWorkflow", "b", NULL, NULL, 0);

        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"b\"}"),
                     "invalid_argument"); /* no reason */
        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"b\", "
                                   "\"reason\": \"r\", \"to\": \"middle\"}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"b\", "
                                   "\"reason\": \"r\", \"to\": \"last\", \"event_id\": 4}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"b\", "
                                   "\"reason\": \"r\", \"event_id\": 1}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"b\", "
                                   "\"reason\": \"r\", \"event_id\": \"4\"}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"b\", "
                                   "\"reason\": \"r\", \"reapply_exclude\": [\"Bogus\"]}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"b\", "
                                   "\"reason\": \"r\", \"reapply_exclude\": \"Signal\"}"),
                     "invalid_argument");
        /* No workflow task completed yet: nothing to reset to. */
        ASSERT_STREQ(call_error(c, "{\"op\": \"ResetWorkflow\", \"workflow_id\": \"b\", "
                                   "\"reason\": \"r\"}"),
                     "failed_precondition");
        ASSERT_STREQ(call_error(c, "{\"op\": \"ForkWorkflow\", \"workflow_id\": \"b\"}"),
                     "invalid_argument"); /* no new_workflow_id */
        ASSERT_STREQ(call_error(c, "{\"op\": \"ForkWorkflow\", \"workflow_id\": \"b\", "
                                   "\"new_workflow_id\": \"\"}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"RedriveWorkflow\", \"workflow_id\": \"b\"}"),
                     "failed_precondition"); /* running */
        ASSERT_STREQ(call_error(c, "{\"op\": \"RedriveWorkflow\", \"workflow_id\": \"nobody\"}"),
                     "not_found");
        events = history_get(c, "b");
        ASSERT_EQ(json_array_size(events), 2); /* Started, WorkflowTaskScheduled: untouched */
        json_decref(events);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
