/* Signals, queries, cancellation and termination through the real daemon and test-worker
 * (SEMANTICS.md b.5, b.6, b.10; doc/protocol.md). */

#include <stdio.h>
#include <string.h>

#include "tests/integration/worker-util.h"

static void signal_add(dur_client *c, const char *id, int i) {
        dur_buf *arg = ASSERT_NOT_NULL(dur_args("{s:i}", "i", i));

        ASSERT_DUR_OK(c, dur_client_signal(c, id, NULL, "add", arg));
        dur_buf_free(arg);
}

/* 20 signals arrive in order: 5 sent before any worker runs (they wait in the history), the
 * rest while the workflow waits. Queries see what the history holds. */
TEST(signals_in_order) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_client *c;
        dur_outcome o = {};
        json_t *out, *list, *events, *ev;
        size_t i, n_signaled = 0;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_json(c, "SignalWorkflow", "sig", NULL, NULL, 0);
        for (int k = 0; k < 5; k++)
                signal_add(c, "sig", k);

        test_worker_spawn(&worker, NULL, NULL);
        /* The five signals were recorded before the first workflow task started. */
        ASSERT_EQ(query_count(c, "sig"), 5);
        for (int k = 5; k < 20; k++)
                signal_add(c, "sig", k);
        ASSERT_DUR_OK(c, dur_client_signal(c, "sig", NULL, "done", NULL));

        ASSERT_EQ(wait_outcome(c, "sig", &o), 0);
        out = outcome_result(&o);
        list = json_object_get(out, "signals");
        ASSERT_EQ(json_array_size(list), 20);
        for (int k = 0; k < 20; k++)
                ASSERT_EQ(
                        json_integer_value(json_object_get(json_array_get(list, (size_t) k), "i")),
                        k);
        /* A closed workflow still answers queries (the worker replays it). */
        ASSERT_EQ(query_count(c, "sig"), 20);

        events = history_get(c, "sig");
        history_assert_invariants(events);
        json_array_foreach(events, i, ev) {
                if (!streq(ev_type(ev), "WorkflowExecutionSignaled"))
                        continue;
                if (n_signaled < 20) {
                        ASSERT_STREQ(ev_str(ev, "signal_name"), "add");
                        ASSERT_EQ(json_integer_value(json_object_get(ev_attr(ev, "input"), "i")),
                                  n_signaled);
                } else
                        ASSERT_STREQ(ev_str(ev, "signal_name"), "done");
                n_signaled++;
        }
        ASSERT_EQ(n_signaled, 21);
        /* The first five came right after the start, before the first workflow task. */
        for (i = 0; i < 5; i++)
                ASSERT_STREQ(ev_type(json_array_get(events, 2 + i)), "WorkflowExecutionSignaled");
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCompleted");

        json_decref(events);
        json_decref(out);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

TEST(query_errors) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_buf *result = NULL;
        dur_outcome o = {};
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "SignalWorkflow", "q", NULL, NULL, 0);

        ASSERT_ERROR(dur_client_query(c, "q", NULL, "nope", NULL, &result), -EREMOTEIO);
        ASSERT_STREQ(dur_client_error_code(c), "query_failed");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "nope");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "count"); /* the known ones */
        ASSERT_NULL(result);

        ASSERT_ERROR(dur_client_query(c, "no-such-workflow", NULL, "count", NULL, &result),
                     -ENOENT);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");

        /* Signals to a closed workflow are refused as not_found. */
        ASSERT_DUR_OK(c, dur_client_signal(c, "q", NULL, "done", NULL));
        ASSERT_EQ(wait_outcome(c, "q", &o), 0);
        ASSERT_ERROR(dur_client_signal(c, "q", NULL, "add", NULL), -ENOENT);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");
        ASSERT_ERROR(dur_client_signal(c, "no-such-workflow", NULL, "add", NULL), -ENOENT);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");

        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* CancelWorkflow runs a heartbeating activity; the cancel request reaches it through a
 * heartbeat, the workflow runs its cleanup activity and ends Canceled. */
TEST(cancel) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *fifo = NULL;
        _cleanup_close_ int fd = -EBADF;
        dur_outcome o = {};
        dur_client *c;
        json_t *events, *ev, *cleanup = NULL;
        size_t i, cancel_requested = 0, activity_cancel_requested = 0;
        char input[512], line[64];

        test_daemon_start(&d, NULL);
        fd = fifo_make(&d, "started.fifo", &fifo);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        (void) snprintf(input, sizeof(input), "{\"started_fifo\": \"%s\"}", fifo);
        start_json(c, "CancelWorkflow", "cancel", NULL, input, 0);
        /* The long activity runs: the cancel request can only reach it through a heartbeat. */
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started 1");
        ASSERT_DUR_OK(c, dur_client_cancel(c, "cancel", NULL, "test says stop"));

        ASSERT_EQ(wait_outcome(c, "cancel", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Canceled");

        events = history_get(c, "cancel");
        history_assert_invariants(events);
        json_array_foreach(events, i, ev) {
                const char *type = ev_type(ev);

                if (streq(type, "WorkflowExecutionCancelRequested")) {
                        ASSERT_EQ(activity_cancel_requested, 0); /* it comes first */
                        ASSERT_STREQ(ev_str(ev, "reason"), "test says stop");
                        cancel_requested++;
                } else if (streq(type, "ActivityTaskCancelRequested")) {
                        ASSERT_EQ(cancel_requested, 1);
                        activity_cancel_requested++;
                } else if (streq(type, "ActivityTaskScheduled") &&
                           streq(ev_str(ev, "activity_type"), "echo"))
                        cleanup = ev;
        }
        ASSERT_EQ(cancel_requested, 1);
        ASSERT_EQ(activity_cancel_requested, 1);
        /* The cleanup ran after the cancel request, and completed. */
        ASSERT_NOT_NULL(cleanup);
        ASSERT_NOT_NULL(history_activity_close(events, ev_id(cleanup)));
        ASSERT_STREQ(ev_type(history_activity_close(events, ev_id(cleanup))),
                     "ActivityTaskCompleted");
        ASSERT_GT(ev_id(cleanup), ev_id(history_must(events, "ActivityTaskCancelRequested")));
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCanceled");

        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

TEST(terminate) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *status = NULL;
        dur_outcome o = {};
        dur_client *c;
        json_t *events, *last;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "SignalWorkflow", "term", NULL, NULL, 0);
        ASSERT_EQ(query_count(c, "term"), 0); /* it runs */
        ASSERT_DUR_OK(c, dur_client_terminate(c, "term", NULL, "enough"));

        ASSERT_EQ(wait_outcome(c, "term", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Terminated");
        ASSERT_STREQ(dur_failure_message(o.failure), "enough");
        status = describe_status(c, "term");
        ASSERT_STREQ(status, "Terminated");

        events = history_get(c, "term");
        history_assert_invariants(events);
        last = json_array_get(events, json_array_size(events) - 1);
        ASSERT_STREQ(ev_type(last), "WorkflowExecutionTerminated");
        ASSERT_STREQ(ev_str(last, "reason"), "enough");
        ASSERT_ERROR(dur_client_terminate(c, "term", NULL, "again"), -ENOENT);

        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

DEFINE_TEST_MAIN();
