/* The example workflows of examples/orders-worker.c through the real daemon and libdurable:
 * the order (result, query while it runs, history shape, parallel activities), the saga with a
 * declined payment and its compensation, the cancel_order signal, and the approval decided by a
 * signal or by its 24 h timer under the daemon's --time-skipping clock. */

#include <unistd.h>

#include "tests/integration/orders-util.h"

/* Starts @type as @workflow_id with the JSON input @input_json (NULL: no input); returns the run id
 * (free it). */
static char *
start_workflow(dur_client *c, const char *type, const char *workflow_id, const char *input_json) {
        dur_start_opts opts = { .workflow_id = workflow_id, .task_queue = ORDERS_QUEUE };
        dur_buf *input = input_json ? ASSERT_NOT_NULL(dur_buf_from_json(input_json)) : NULL;
        char *run_id = NULL;

        ASSERT_DUR_OK(c, dur_client_start(c, type, &opts, input, &run_id));
        dur_buf_free(input);
        return ASSERT_NOT_NULL(run_id);
}

/* Waits for the run to close; returns dur_client_result()'s value (0: completed). */
static int wait_result(dur_client *c, const char *workflow_id, dur_outcome *ret) {
        int r = dur_client_result(c, workflow_id, NULL, test_timeout_usec(), ret);

        ASSERT_NE(r, -ETIMEDOUT);
        if (r != DUR_FAILED)
                ASSERT_DUR_OK(c, r);
        return r;
}

static void assert_result_str(const dur_outcome *o, const char *key, const char *want) {
        json_t *result = outcome_result(o);

        ASSERT_STREQ(json_str(result, key), want);
        json_decref(result);
}

static void
signal_json(dur_client *c, const char *workflow_id, const char *name, const char *json) {
        dur_buf *input = ASSERT_NOT_NULL(dur_buf_from_json(json));

        ASSERT_DUR_OK(c, dur_client_signal(c, workflow_id, NULL, name, input));
        dur_buf_free(input);
}

/* The query's result as JSON (new reference). */
static json_t *query_json(dur_client *c, const char *workflow_id, const char *query) {
        _cleanup_free_ char *text = NULL;
        dur_buf *result = NULL;
        json_t *j;

        ASSERT_DUR_OK(c, dur_client_query(c, workflow_id, NULL, query, NULL, &result));
        ASSERT_NOT_NULL(result);
        text = ASSERT_NOT_NULL(dur_buf_to_json(result));
        dur_buf_free(result);
        j = json_loads(text, JSON_DECODE_ANY, NULL);
        ASSERT_NOT_NULL(j);
        return j;
}

static void assert_types(const json_t *events, size_t from, const char *const *types) {
        for (size_t i = 0; types[i]; i++) {
                ASSERT_LT(from + i, json_array_size(events));
                ASSERT_STREQ(ev_type(json_array_get(events, from + i)), types[i]);
        }
}

TEST(order_completes) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        _cleanup_free_ char *run_id = NULL;
        dur_client *c;
        json_t *events, *result, *ev;
        size_t n, i;

        test_daemon_start(&d, NULL);
        orders_worker_spawn(&worker);
        c = client_connect();

        run_id = start_workflow(c, "OrderWorkflow", "order-42",
                                "{\"order_id\": \"42\", \"amount\": 100}");
        ASSERT_EQ(wait_result(c, "order-42", &out), 0);
        ASSERT_STREQ(out.status, "Completed");
        ASSERT_STREQ(out.run_id, run_id);
        result = outcome_result(&out);
        ASSERT_STREQ(json_str(result, "order_id"), "42");
        ASSERT_STREQ(json_str(result, "payment_id"), "pay-42");
        ASSERT_STREQ(json_str(result, "reservation_id"), "res-42");
        ASSERT_EQ(json_object_size(result), 3u);
        json_decref(result);

        events = history_get(c, "order-42");
        history_assert_invariants(events);
        n = json_array_size(events);

        /* The beginning is fixed: one workflow task schedules create_order, its completion
         * schedules a second task, which schedules payment and inventory together. */
        assert_types(events, 0,
                     STRV("WorkflowExecutionStarted", "WorkflowTaskScheduled",
                          "WorkflowTaskStarted", "WorkflowTaskCompleted", "ActivityTaskScheduled",
                          "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled",
                          "WorkflowTaskStarted", "WorkflowTaskCompleted", "ActivityTaskScheduled",
                          "ActivityTaskScheduled"));
        ASSERT_STREQ(ev_str(json_array_get(events, 0), "workflow_type"), "OrderWorkflow");
        ASSERT_STREQ(ev_str(json_array_get(events, 4), "activity_type"), "create_order");
        ASSERT_EQ(ev_uint(json_array_get(events, 6), "scheduled_event_id"), 5u);

        /* Parallel activities: two ActivityTaskScheduled from the one WorkflowTaskCompleted
         * (event 10), the payment and the inventory, in the order the code started them. */
        ASSERT_STREQ(ev_str(json_array_get(events, 10), "activity_type"), "process_payment");
        ASSERT_STREQ(ev_str(json_array_get(events, 11), "activity_type"), "reserve_inventory");
        ASSERT_EQ(ev_uint(json_array_get(events, 10), "workflow_task_completed_event_id"), 10u);
        ASSERT_EQ(ev_uint(json_array_get(events, 11), "workflow_task_completed_event_id"), 10u);

        /* Then only activity results and workflow tasks, each activity started and completed
         * once, and the run ends with the task that completed it. */
        for (i = 12; i + 2 < n; i++) {
                const char *t = ev_type(json_array_get(events, i));

                ASSERT_TRUE(streq(t, "ActivityTaskStarted") || streq(t, "ActivityTaskCompleted") ||
                            streq(t, "WorkflowTaskScheduled") || streq(t, "WorkflowTaskStarted") ||
                            streq(t, "WorkflowTaskCompleted"));
        }
        ASSERT_STREQ(ev_type(json_array_get(events, n - 2)), "WorkflowTaskCompleted");
        ASSERT_STREQ(ev_type(json_array_get(events, n - 1)), "WorkflowExecutionCompleted");
        ASSERT_EQ(history_count(events, "ActivityTaskScheduled"), 3u);
        ASSERT_EQ(history_count(events, "ActivityTaskCompleted"), 3u);
        ASSERT_EQ(history_count(events, "ActivityTaskStarted"), 3u);
        ASSERT_EQ(history_count(events, "WorkflowExecutionCompleted"), 1u);
        for (i = 10; i <= 11; i++) {
                ev = history_activity_close(events, i + 1);
                ASSERT_NOT_NULL(ev);
                ASSERT_STREQ(ev_type(ev), "ActivityTaskCompleted");
        }
        ev = json_array_get(events, n - 1);
        result = json_object_get(json_object_get(ev, "attributes"), "result");
        ASSERT_STREQ(json_str(result, "payment_id"), "pay-42");
        json_decref(events);
        dur_client_free(c);
}

TEST(order_query_while_running) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        _cleanup_free_ char *run_id = NULL;
        _cleanup_close_ int log_fd = -EBADF;
        dur_client *c;
        json_t *events, *sched, *status;

        test_daemon_start(&d, NULL);
        log_fd = orders_worker_spawn_logged(&worker, &d);
        c = client_connect();

        /* The payment takes ten minutes: the workflow is certainly waiting for it. */
        run_id = start_workflow(c, "OrderWorkflow", "order-43",
                                "{\"order_id\": \"43\", \"activities\": "
                                "{\"process_payment\": {\"delay_ms\": 600000}}}");

        /* Event driven: the worker logs "process_payment: attempt 1 ..." when it begins the
         * payment, which the workflow schedules only after create_order's completion was
         * recorded. */
        log_wait_for(log_fd, "process_payment: attempt 1");
        events = history_get(c, "order-43");
        history_assert_invariants(events);
        sched = history_scheduled(events, "create_order");
        ASSERT_NOT_NULL(sched);
        ASSERT_NOT_NULL(history_activity_close(events, ev_id(sched)));
        ASSERT_STREQ(ev_type(history_activity_close(events, ev_id(sched))),
                     "ActivityTaskCompleted");
        ASSERT_NOT_NULL(history_scheduled(events, "process_payment"));
        ASSERT_EQ(history_count(events, "WorkflowExecutionCompleted"), 0u);
        json_decref(events);

        status = query_json(c, "order-43", "get_status");
        ASSERT_STREQ(json_string_value(status), "processing");
        json_decref(status);

        /* Done: the payment would run for ten minutes. */
        ASSERT_DUR_OK(c, dur_client_terminate(c, "order-43", NULL, "test done"));
        ASSERT_EQ(wait_result(c, "order-43", &out), DUR_FAILED);
        ASSERT_STREQ(out.status, "Terminated");
        dur_client_free(c);
        test_process_free(&worker);
}

TEST(saga_payment_declined) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        _cleanup_free_ char *run_id = NULL;
        const dur_failure *f;
        dur_client *c;
        json_t *events, *ev;

        test_daemon_start(&d, NULL);
        orders_worker_spawn(&worker);
        c = client_connect();

        run_id = start_workflow(c, "OrderSagaWorkflow", "saga-44",
                                "{\"order_id\": \"44\", \"amount\": 100, \"card\": \"declined\"}");
        ASSERT_EQ(wait_result(c, "saga-44", &out), DUR_FAILED);
        ASSERT_STREQ(out.status, "Failed");
        f = ASSERT_NOT_NULL(out.failure);
        ASSERT_STREQ(dur_failure_type(f), "PaymentDeclined");
        ASSERT_TRUE(dur_failure_non_retryable(f));
        ASSERT_STR_CONTAINS(dur_failure_message(f), "44");

        events = history_get(c, "saga-44");
        history_assert_invariants(events);
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionFailed");
        /* The reservation succeeded, the payment failed for good (no retry: one scheduling, one
         * failure), the reservation was released; no shipment, nothing to refund. */
        ev = ASSERT_NOT_NULL(history_scheduled(events, "reserve_inventory"));
        ASSERT_STREQ(ev_type(ASSERT_NOT_NULL(history_activity_close(events, ev_id(ev)))),
                     "ActivityTaskCompleted");
        ev = ASSERT_NOT_NULL(history_scheduled(events, "charge_payment"));
        ASSERT_STREQ(ev_type(ASSERT_NOT_NULL(history_activity_close(events, ev_id(ev)))),
                     "ActivityTaskFailed");
        ASSERT_EQ(history_count_scheduled(events, "release_inventory"), 1u);
        ev = history_scheduled(events, "release_inventory");
        ASSERT_STREQ(ev_type(ASSERT_NOT_NULL(history_activity_close(events, ev_id(ev)))),
                     "ActivityTaskCompleted");
        ASSERT_GT(ev_id(ev), ev_id(history_scheduled(events, "charge_payment")));
        ASSERT_EQ(history_count_scheduled(events, "create_shipment"), 0u);
        ASSERT_EQ(history_count_scheduled(events, "refund_payment"), 0u);
        json_decref(events);
        dur_client_free(c);
}

TEST(order_cancel_signal) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        _cleanup_free_ char *run_id = NULL;
        dur_client *c;
        json_t *events, *ev;
        size_t idx;

        test_daemon_start(&d, NULL);
        c = client_connect();

        /* No worker yet, so the signal is certainly in the history before the workflow's first
         * decision: the order is cancelled as soon as it exists, before payment. */
        run_id = start_workflow(c, "OrderWorkflow", "order-45", "{\"order_id\": \"45\"}");
        signal_json(c, "order-45", "cancel_order", "\"customer changed their mind\"");
        orders_worker_spawn(&worker);

        ASSERT_EQ(wait_result(c, "order-45", &out), 0);
        assert_result_str(&out, "order_id", "45");
        assert_result_str(&out, "status", "cancelled");

        events = history_get(c, "order-45");
        history_assert_invariants(events);
        ev = ASSERT_NOT_NULL(history_next(events, "WorkflowExecutionSignaled", 0, &idx));
        ASSERT_STREQ(ev_str(ev, "signal_name"), "cancel_order");
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(ev, "attributes"), "input")),
                     "customer changed their mind");
        ASSERT_EQ(history_count_scheduled(events, "cancel_order_activity"), 1u);
        ev = history_scheduled(events, "cancel_order_activity");
        ASSERT_STREQ(ev_type(ASSERT_NOT_NULL(history_activity_close(events, ev_id(ev)))),
                     "ActivityTaskCompleted");
        ASSERT_EQ(history_count_scheduled(events, "create_order"), 1u);
        ASSERT_EQ(history_count_scheduled(events, "process_payment"), 0u);
        ASSERT_EQ(history_count_scheduled(events, "reserve_inventory"), 0u);
        json_decref(events);
        dur_client_free(c);
}

TEST(approval_by_signal) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(dur_outcome_done) dur_outcome yes = {}, no = {};
        _cleanup_free_ char *run1 = NULL, *run2 = NULL;
        dur_client *c;
        json_t *status;

        test_daemon_start(&d, NULL);
        orders_worker_spawn(&worker);
        c = client_connect();

        run1 = start_workflow(c, "ApprovalWorkflow", "approval-1", NULL);
        status = query_json(c, "approval-1", "get_status");
        ASSERT_STREQ(json_string_value(status), "pending");
        json_decref(status);
        signal_json(c, "approval-1", "approve", "true");
        ASSERT_EQ(wait_result(c, "approval-1", &yes), 0);
        assert_result_str(&yes, "status", "approved");

        run2 = start_workflow(c, "ApprovalWorkflow", "approval-2", NULL);
        signal_json(c, "approval-2", "approve", "false");
        ASSERT_EQ(wait_result(c, "approval-2", &no), 0);
        assert_result_str(&no, "status", "rejected");
        dur_client_free(c);
}

TEST(approval_times_out_with_time_skipping) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        _cleanup_free_ char *run_id = NULL;
        dur_client *c;
        json_t *events, *started, *fired;
        size_t idx;

        /* No signal comes, so only the real 24 h timer can end the run. The daemon's clock skips
         * to the next deadline while a client waits for a result and nothing runs; the wait
         * below is bounded by test_timeout_usec() of real time, so a daemon that waited the
         * 24 hours fails the test with -ETIMEDOUT. */
        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--time-skipping") });
        orders_worker_spawn(&worker);
        c = client_connect();

        run_id = start_workflow(c, "ApprovalWorkflow", "approval-3", NULL);
        ASSERT_EQ(wait_result(c, "approval-3", &out), 0);
        assert_result_str(&out, "status", "auto_rejected");

        events = history_get(c, "approval-3");
        history_assert_invariants(events);
        started = ASSERT_NOT_NULL(history_next(events, "TimerStarted", 0, &idx));
        ASSERT_EQ(ev_uint(started, "start_to_fire_usec"), 24 * DUR_HOUR);
        fired = ASSERT_NOT_NULL(history_next(events, "TimerFired", idx, NULL));
        ASSERT_EQ(ev_uint(fired, "started_event_id"), ev_id(started));
        ASSERT_STREQ(ev_str(fired, "timer_id"), ev_str(started, "timer_id"));
        /* On the daemon's (skipped) clock the timer kept its deadline. */
        ASSERT_GE(json_integer_value(json_object_get(fired, "time")),
                  json_integer_value(json_object_get(started, "time")) +
                          (json_int_t) (24 * DUR_HOUR));
        ASSERT_EQ(history_count(events, "WorkflowExecutionSignaled"), 0u);
        json_decref(events);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
