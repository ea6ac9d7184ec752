/* Child workflows through the real daemon and libdurable: a child's result and its failure
 * (with the cause chain) reach the parent, each parent close policy, cancelling a child, a child
 * whose id is running, a bad command, and a parent replayed by a new worker (SEMANTICS.md b.8;
 * doc/protocol.md). */

#include <stdio.h>
#include <string.h>

#include "tests/integration/core-util.h"

static void start_parent(dur_client *c, const char *id, const char *input) {
        ASSERT_EQ(core_start(c, "Parent", id, input, NULL, NULL), 0);
}

static void assert_status(dur_client *c, const char *id, const char *status) {
        json_t *d = core_describe(c, id, NULL);

        ASSERT_STREQ(core_status(d), status);
        json_decref(d);
}

/* The parent awaits the child's result; both histories name each other. */
TEST(child_completes) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *parent_run = NULL;
        json_t *res, *events, *ev;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Parent", "p",
                             "{\"child_id\": \"p-child\", \"child_type\": \"Quick\", "
                             "\"child_input\": 42, \"await\": true}",
                             NULL, &parent_run),
                  0);
        res = core_result(c, "p", NULL, NULL);
        ASSERT_EQ(json_integer_value(json_object_get(res, "child")), 42);
        json_decref(res);

        events = core_history(c, "p", NULL);
        ev = history_must(events, "StartChildWorkflowExecutionInitiated");
        ASSERT_STREQ(ev_str(ev, "workflow_id"), "p-child");
        ASSERT_STREQ(ev_str(ev, "workflow_type"), "Quick");
        ASSERT_STREQ(ev_str(ev, "parent_close_policy"), "Terminate");
        ASSERT_EQ(ev_uint(history_must(events, "ChildWorkflowExecutionStarted"),
                          "initiated_event_id"),
                  ev_id(ev));
        ASSERT_EQ(ev_uint(history_must(events, "ChildWorkflowExecutionCompleted"),
                          "initiated_event_id"),
                  ev_id(ev));
        json_decref(events);

        events = core_history(c, "p-child", NULL);
        ev = json_array_get(events, 0);
        ASSERT_STREQ(ev_str(ev, "parent_workflow_id"), "p");
        ASSERT_STREQ(ev_str(ev, "parent_run_id"), parent_run);
        json_decref(events);
        assert_status(c, "p-child", "Completed");

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A child that continues as new stays the parent's child: the parent gets the last run's result. */
TEST(child_continues_as_new) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *last = NULL;
        json_t *res, *events;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        start_parent(c, "pn",
                     "{\"child_id\": \"pn-child\", \"child_type\": \"Counter\", "
                     "\"child_input\": {\"n\": 0, \"max\": 2}, \"await\": true}");
        res = core_result(c, "pn", NULL, NULL);
        json_decref(core_result(c, "pn-child", NULL, &last));
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(res, "child"), "n")), 2);
        ASSERT_STREQ(json_str(json_object_get(res, "child"), "run_id"), last);
        json_decref(res);
        /* The last run still names its parent. */
        events = core_history(c, "pn-child", NULL);
        ASSERT_STREQ(ev_str(json_array_get(events, 0), "parent_workflow_id"), "pn");
        ASSERT_NOT_NULL(ev_str(json_array_get(events, 0), "continued_execution_run_id"));
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A failed child fails the awaiting parent: ChildWorkflowFailure caused by the child's failure. */
TEST(child_fails) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        const dur_failure *cause;
        dur_outcome o = {};
        json_t *events;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        start_parent(c, "pf",
                     "{\"child_id\": \"pf-child\", \"child_type\": \"Fail\", \"await\": true}");
        ASSERT_EQ(dur_client_result(c, "pf", NULL, 0, &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        ASSERT_STREQ(dur_failure_type(o.failure), "ChildWorkflowFailure");
        ASSERT_STR_CONTAINS(dur_failure_message(o.failure), "pf-child");
        cause = ASSERT_NOT_NULL(dur_failure_cause(o.failure));
        ASSERT_STREQ(dur_failure_type(cause), "Boom");
        ASSERT_STREQ(dur_failure_message(cause), "failed on purpose");
        dur_outcome_done(&o);
        events = core_history(c, "pf", NULL);
        ASSERT_NOT_NULL(history_must(events, "ChildWorkflowExecutionFailed"));
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* The parent completes without awaiting; its child follows the parent close policy. */
TEST(parent_close_policies) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_outcome o = {};
        json_t *events, *last;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();

        /* Terminate, the default. */
        start_parent(c, "pt", "{\"child_id\": \"pt-child\", \"child_type\": \"Collect\"}");
        json_decref(core_result(c, "pt", NULL, NULL));
        ASSERT_EQ(dur_client_result(c, "pt-child", NULL, 0, &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Terminated");
        ASSERT_STR_CONTAINS(dur_failure_message(o.failure), "parent close policy Terminate");
        dur_outcome_done(&o);
        events = core_history(c, "pt-child", NULL);
        last = json_array_get(events, json_array_size(events) - 1);
        ASSERT_STREQ(ev_type(last), "WorkflowExecutionTerminated");
        json_decref(events);

        /* RequestCancel: the child sees the cancel request and ends Canceled. */
        start_parent(c, "pc",
                     "{\"child_id\": \"pc-child\", \"child_type\": \"Collect\", "
                     "\"policy\": \"RequestCancel\"}");
        json_decref(core_result(c, "pc", NULL, NULL));
        ASSERT_EQ(dur_client_result(c, "pc-child", NULL, 0, &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Canceled");
        dur_outcome_done(&o);
        events = core_history(c, "pc-child", NULL);
        ASSERT_STR_CONTAINS(
                ev_str(history_must(events, "WorkflowExecutionCancelRequested"), "reason"),
                "RequestCancel");
        json_decref(events);

        /* Abandon: the child runs on, and completes by itself. */
        start_parent(c, "pa",
                     "{\"child_id\": \"pa-child\", \"child_type\": \"Collect\", "
                     "\"policy\": \"Abandon\"}");
        json_decref(core_result(c, "pa", NULL, NULL));
        assert_status(c, "pa-child", "Running");
        ASSERT_DUR_OK(c, dur_client_signal(c, "pa-child", NULL, "done", NULL));
        json_decref(core_result(c, "pa-child", NULL, NULL));

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* The parent cancels its child; the child's future resolves once the child ended Canceled. */
TEST(cancel_child) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        json_t *res, *events;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        start_parent(c, "pk",
                     "{\"child_id\": \"pk-child\", \"child_type\": \"Collect\", "
                     "\"cancel_child\": true}");
        res = core_result(c, "pk", NULL, NULL);
        ASSERT_STREQ(json_str(res, "child"), "canceled");
        json_decref(res);
        assert_status(c, "pk-child", "Canceled");
        events = core_history(c, "pk", NULL);
        ASSERT_NOT_NULL(history_must(events, "RequestCancelExternalWorkflowExecutionInitiated"));
        ASSERT_NOT_NULL(history_must(events, "ExternalWorkflowExecutionCancelRequested"));
        ASSERT_NOT_NULL(history_must(events, "ChildWorkflowExecutionCanceled"));
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A child whose workflow id is running fails to start (Temporal's WorkflowAlreadyExists). */
TEST(child_id_running) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_outcome o = {};
        json_t *events;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Collect", "taken", NULL, NULL, NULL), 0);
        start_parent(c, "pd",
                     "{\"child_id\": \"taken\", \"child_type\": \"Quick\", "
                     "\"await\": true}");
        ASSERT_EQ(dur_client_result(c, "pd", NULL, 0, &o), DUR_FAILED);
        ASSERT_STREQ(dur_failure_type(o.failure), "WorkflowAlreadyExists");
        dur_outcome_done(&o);
        events = core_history(c, "pd", NULL);
        ASSERT_STREQ(ev_str(history_must(events, "StartChildWorkflowExecutionFailed"), "cause"),
                     "WorkflowAlreadyExists");
        json_decref(events);
        assert_status(c, "taken", "Running"); /* untouched */
        ASSERT_DUR_OK(c, dur_client_signal(c, "taken", NULL, "done", NULL));
        json_decref(core_result(c, "taken", NULL, NULL));
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* At most 2000 pending children per run (Temporal's limit): the next one fails to start. */
TEST(pending_children_limit) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_outcome o = {};
        json_t *res;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        /* The children's queue has no worker: they all stay pending. */
        ASSERT_EQ(
                core_start(c, "Fanout", "fan", "{\"n\": 2001, \"queue\": \"nowhere\"}", NULL, NULL),
                0);
        res = core_result(c, "fan", NULL, NULL);
        ASSERT_EQ(json_integer_value(json_object_get(res, "started")), 2000);
        ASSERT_EQ(json_integer_value(json_object_get(res, "failed")), 1);
        ASSERT_STREQ(json_str(res, "failed_type"), "PendingChildWorkflowsLimitExceeded");
        json_decref(res);
        /* The parent closed: its children were terminated (parent close policy Terminate). */
        ASSERT_EQ(dur_client_result(c, "fan-1999", NULL, 0, &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Terminated");
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A bad StartChildWorkflowExecution fails the workflow task (BadCommand) with a clear answer. */
TEST(bad_child_command) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL;
        size_t size;
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, NULL);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Quick", "bad", NULL, NULL, NULL), 0);
        raw_poll_workflow_task(c, CORE_QUEUE, &token, &size);
        ASSERT_ERROR(raw_complete_workflow_task(
                             c, token, size,
                             "[{\"command_type\": \"StartChildWorkflowExecution\", "
                             "\"attributes\": {\"workflow_id\": \"x\", \"workflow_type\": "
                             "\"Quick\", \"parent_close_policy\": \"Sometimes\"}}]"),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "Terminate, Abandon, RequestCancel");
        events = core_history(c, "bad", NULL);
        ASSERT_EQ(history_count(events, "StartChildWorkflowExecutionInitiated"), 0);
        ASSERT_NOT_NULL(history_must(events, "WorkflowTaskFailed"));
        json_decref(events);
        dur_client_free(c);
}

/* A new worker replays a parent whose history holds child events, and finishes it. */
TEST(replay_after_worker_crash) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        json_t *res, *events;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        start_parent(c, "pr",
                     "{\"child_id\": \"pr-child\", \"child_type\": \"Collect\", "
                     "\"child_input\": \"in\", \"await\": true}");
        /* Wait until the parent's history shows the child started and a task saw it. */
        for (;;) {
                bool started;
                size_t n;
                json_t *req;
                int r;

                events = core_history(c, "pr", NULL);
                n = json_array_size(events);
                started = history_count(events, "ChildWorkflowExecutionStarted") == 1 &&
                          streq(ev_type(json_array_get(events, n - 1)), "WorkflowTaskCompleted");
                json_decref(events);
                if (started)
                        break;
                /* Wait for the parent's next event: a long poll, no sleep. */
                req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:I, s:b}", "op", "GetHistory",
                                                "workflow_id", "pr", "from_event_id",
                                                (json_int_t) n + 1, "wait", 1));
                json_decref(ASSERT_NOT_NULL(call_json(c, req, &r)));
                json_decref(req);
        }
        ASSERT_EQ(query_count(c, "pr-child"), 0); /* the child runs */
        ASSERT_EQ(test_process_kill(&worker, SIGKILL), SIGKILL);
        core_worker_spawn(&worker);
        ASSERT_DUR_OK(c, dur_client_signal(c, "pr-child", NULL, "add", NULL));
        ASSERT_DUR_OK(c, dur_client_signal(c, "pr-child", NULL, "done", NULL));
        res = core_result(c, "pr", NULL, NULL);
        ASSERT_STREQ(json_str(json_object_get(res, "child"), "input"), "in");
        ASSERT_EQ(json_array_size(json_object_get(json_object_get(res, "child"), "signals")), 1);
        json_decref(res);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* The daemon is SIGKILLed while a parent awaits its child, a delayed start waits and a timeout is
 * armed: after the restart the child's result still reaches the parent, and the rest goes on. */
TEST(daemon_killed) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_start_opts o = { .start_delay = DUR_SEC };
        json_t *res, *events;
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        start_parent(c, "pk9",
                     "{\"child_id\": \"pk9-child\", \"child_type\": \"Collect\", "
                     "\"await\": true}");
        ASSERT_EQ(core_start(c, "Collect", "late", NULL, &o, NULL), 0);
        /* Wait until the parent started its child: the child run is created in the transaction
         * that appends StartChildWorkflowExecutionInitiated, and until then the parent's task
         * is still to complete, so a next event always comes (a long poll, no sleep). */
        for (;;) {
                json_t *req;
                size_t n;
                int k;

                events = core_history(c, "pk9", NULL);
                n = json_array_size(events);
                k = (int) history_count(events, "StartChildWorkflowExecutionInitiated");
                json_decref(events);
                if (k > 0)
                        break;
                req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:I, s:b}", "op", "GetHistory",
                                                "workflow_id", "pk9", "from_event_id",
                                                (json_int_t) n + 1, "wait", 1));
                json_decref(ASSERT_NOT_NULL(call_json(c, req, &k)));
                json_decref(req);
        }
        ASSERT_EQ(query_count(c, "pk9-child"), 0); /* it runs: its first task completed */
        dur_client_free(c);
        ASSERT_EQ(test_daemon_kill(&d, SIGKILL), SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        ASSERT_DUR_OK(c, dur_client_signal(c, "pk9-child", NULL, "add", NULL));
        ASSERT_DUR_OK(c, dur_client_signal(c, "pk9-child", NULL, "done", NULL));
        res = core_result(c, "pk9", NULL, NULL);
        ASSERT_EQ(json_array_size(json_object_get(json_object_get(res, "child"), "signals")), 1);
        json_decref(res);
        events = core_history(c, "pk9", NULL);
        ASSERT_NOT_NULL(history_must(events, "ChildWorkflowExecutionCompleted"));
        json_decref(events);
        /* The delayed run got its first task after the restart. */
        ASSERT_DUR_OK(c, dur_client_signal(c, "late", NULL, "done", NULL));
        json_decref(core_result(c, "late", NULL, NULL));
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

DEFINE_TEST_MAIN();
