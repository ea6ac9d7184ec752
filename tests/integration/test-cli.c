/* durablectl end to end through the real daemon and examples/orders-worker: start, execute,
 * result, describe, history, list, signal, query, update, cancel and terminate, their exit statuses
 * (durablectl(1), EXIT STATUS) and their --json output. */

#include <jansson.h>

#include "tests/integration/orders-util.h"

#define Q "order-processing"

/* Runs durablectl with the arguments; returns its exit status (output in *r, freed first). */
#define CTL(r, ...)                                                                      \
        ({                                                                               \
                test_run_free(r);                                                        \
                test_run((r), STRV(test_bin("DURABLECTL_BIN"), __VA_ARGS__), &ctl_opts); \
        })

/* No pager, no colour, whatever the environment of the test says. */
static const TestRunOpts ctl_opts = { .env = STRV("DURABLECTL_PAGER=cat", "NO_COLOR=1") };

/* stdout as JSON (a new reference); fails the test if it is not. */
static json_t *out_json(const TestRun *r) {
        json_error_t e;
        json_t *j = json_loads(r->out, JSON_DECODE_ANY, &e);

        if (!j)
                test_fail(__FILE__, __LINE__, "durablectl printed no JSON (%s): %s", e.text,
                          r->out);
        return j;
}

static void start_daemon_and_worker(TestDaemon *d, TestProcess *worker) {
        test_daemon_start(d, NULL);
        orders_worker_spawn(worker);
}

TEST(start_signal_query) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(test_run_free) TestRun r = {};
        _cleanup_free_ char *start_out = NULL;
        json_t *j;
        char run_id[64];

        start_daemon_and_worker(&d, &worker);

        ASSERT_EQ(CTL(&r, "start", "ApprovalWorkflow", "--id", "cli-approval", "--task-queue", Q),
                  0);
        ASSERT_STR_CONTAINS(r.out, "cli-approval");
        start_out = ASSERT_NOT_NULL(strdup(r.out));
        ASSERT_EQ(CTL(&r, "--json", "describe", "cli-approval"), 0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "status"), "Running");
        ASSERT_NOT_NULL(json_str(j, "run_id"));
        snprintf(run_id, sizeof(run_id), "%s", json_str(j, "run_id"));
        json_decref(j);
        ASSERT_EQ(strlen(run_id), 36u);
        /* start printed the id of the run it started. */
        ASSERT_STR_CONTAINS(start_out, run_id);
        /* result without --wait: the status at once. */
        ASSERT_EQ(CTL(&r, "result", "cli-approval"), 0);
        ASSERT_STR_CONTAINS(r.out, "Running");

        /* The same workflow id again, while it runs: refused, nothing started. */
        ASSERT_EQ(CTL(&r, "start", "ApprovalWorkflow", "--id", "cli-approval", "--task-queue", Q),
                  1);
        ASSERT_STR_CONTAINS(r.err, "already_started");
        ASSERT_EQ(CTL(&r, "--json", "list", "--type", "ApprovalWorkflow"), 0);
        j = out_json(&r);
        ASSERT_EQ(json_array_size(j), 1u);
        json_decref(j);

        /* The query is answered by the worker from the workflow's state. */
        ASSERT_EQ(CTL(&r, "query", "cli-approval", "get_status"), 0);
        j = out_json(&r);
        ASSERT_STREQ(json_string_value(j), "pending");
        json_decref(j);

        ASSERT_EQ(CTL(&r, "signal", "cli-approval", "approve", "true"), 0);
        ASSERT_EQ(CTL(&r, "--json", "result", "cli-approval", "--wait"), 0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "status"), "Completed");
        ASSERT_STREQ(json_str(j, "run_id"), run_id);
        ASSERT_STREQ(json_str(json_object_get(j, "result"), "status"), "approved");
        json_decref(j);

        ASSERT_EQ(CTL(&r, "--json", "history", "cli-approval"), 0);
        j = out_json(&r);
        ASSERT_EQ(history_count(j, "WorkflowExecutionSignaled"), 1u);
        json_decref(j);
}

TEST(execute_describe_history_list) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(test_run_free) TestRun r = {};
        json_t *j, *res, *ev, *wf;
        size_t i;
        bool listed = false;

        start_daemon_and_worker(&d, &worker);

        ASSERT_EQ(CTL(&r, "execute", "OrderWorkflow", "--id", "cli-order", "--task-queue", Q,
                      "--input", "{\"order_id\": \"101\", \"amount\": 5}"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "Completed");
        ASSERT_STR_CONTAINS(r.out, "{\"order_id\":\"101\",\"payment_id\":\"pay-101\","
                                   "\"reservation_id\":\"res-101\"}");

        ASSERT_EQ(CTL(&r, "--json", "execute", "OrderWorkflow", "--id", "cli-order-2",
                      "--task-queue", Q, "--input", "{\"order_id\": \"102\"}"),
                  0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(json_object_get(j, "result"), "payment_id"), "pay-102");
        json_decref(j);

        ASSERT_EQ(CTL(&r, "--json", "describe", "cli-order"), 0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "workflow_id"), "cli-order");
        ASSERT_EQ(strlen(json_str(j, "run_id") ?: ""), 36u);
        ASSERT_STREQ(json_str(j, "type"), "OrderWorkflow");
        ASSERT_STREQ(json_str(j, "status"), "Completed");
        res = json_object_get(j, "result");
        ASSERT_STREQ(json_str(res, "order_id"), "101");
        ASSERT_STREQ(json_str(res, "reservation_id"), "res-101");
        ASSERT_TRUE(json_is_array(json_object_get(j, "pending_activities")));
        ASSERT_EQ(json_array_size(json_object_get(j, "pending_activities")), 0u);
        json_decref(j);

        ASSERT_EQ(CTL(&r, "--json", "history", "cli-order"), 0);
        j = out_json(&r);
        ASSERT_TRUE(json_is_array(j));
        ASSERT_GT(json_array_size(j), 10u);
        json_array_foreach(j, i, ev) {
                ASSERT_TRUE(json_is_object(ev));
                ASSERT_EQ(json_integer_value(json_object_get(ev, "event_id")), (json_int_t) i + 1);
                ASSERT_NOT_NULL(json_str(ev, "event_type"));
                ASSERT_NOT_NULL(json_str(ev, "timestamp"));
                ASSERT_EQ(strlen(json_str(ev, "timestamp")), strlen("2025-11-25T07:01:02.123456Z"));
        }
        ASSERT_STREQ(json_str(json_array_get(j, 0), "event_type"), "WorkflowExecutionStarted");
        ASSERT_STREQ(json_str(json_array_get(j, json_array_size(j) - 1), "event_type"),
                     "WorkflowExecutionCompleted");
        history_assert_invariants(j);
        json_decref(j);

        ASSERT_EQ(CTL(&r, "list", "--status", "Completed"), 0);
        ASSERT_STR_CONTAINS(r.out, "cli-order");
        ASSERT_EQ(CTL(&r, "--json", "list", "--status", "Completed"), 0);
        j = out_json(&r);
        json_array_foreach(j, i, wf) {
                ASSERT_STREQ(json_str(wf, "status"), "Completed");
                if (streq(json_str(wf, "workflow_id") ?: "", "cli-order"))
                        listed = true;
        }
        ASSERT_TRUE(listed);
        ASSERT_EQ(json_array_size(j), 2u);
        json_decref(j);
        ASSERT_EQ(CTL(&r, "--json", "list", "--status", "Running"), 0);
        j = out_json(&r);
        ASSERT_EQ(json_array_size(j), 0u);
        json_decref(j);
}

/* watch follows a run to its end: every event, then the outcome, with the exit status of
 * result; on a terminal (script(1) gives it one) it also keeps a line of the pending activities.
 * --no-legend drops the header lines of tables and event listings. */
TEST(watch_and_no_legend) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(test_run_free) TestRun r = {};
        _cleanup_free_ char *cmd = NULL;

        start_daemon_and_worker(&d, &worker);
        /* Each activity takes half a second: long enough to be seen pending by DescribeWorkflow,
         * which watch calls after each batch of events (no timing is asserted). */
        ASSERT_EQ(CTL(&r, "start", "OrderWorkflow", "--id", "watched", "--task-queue", Q,
                      "--input", "{\"order_id\": \"7\", \"delay_ms\": 500}"),
                  0);
        ASSERT_EQ(CTL(&r, "watch", "watched"), 0);
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionStarted");
        ASSERT_STR_CONTAINS(r.out, "ActivityTaskCompleted");
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionCompleted");
        ASSERT_STR_CONTAINS(r.out, "Completed");
        ASSERT_NULL(strstr(r.out, "pending:")); /* not a terminal: no progress line */
        ASSERT_EQ(strncmp(r.out, "ID", 2), 0);

        /* A run that fails: watch says so and exits 1, as result does. */
        ASSERT_EQ(CTL(&r, "start", "OrderSagaWorkflow", "--id", "watched-saga", "--task-queue", Q,
                      "--input", "{\"order_id\": \"8\", \"card\": \"declined\"}"),
                  0);
        ASSERT_EQ(CTL(&r, "--no-legend", "watch", "watched-saga"), 1);
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionFailed");
        ASSERT_NE(strncmp(r.out, "ID", 2), 0);

        /* On a terminal: the progress line names the pending activity. */
        ASSERT_EQ(CTL(&r, "start", "OrderWorkflow", "--id", "watched-tty", "--task-queue", Q,
                      "--input", "{\"order_id\": \"9\", \"delay_ms\": 500}"),
                  0);
        ASSERT_GE(asprintf(&cmd, "%s watch watched-tty", test_bin("DURABLECTL_BIN")), 0);
        test_run_free(&r);
        ASSERT_EQ(test_run(&r, STRV("script", "-qec", cmd, "/dev/null"), &ctl_opts), 0);
        ASSERT_STR_CONTAINS(r.out, "pending:");
        ASSERT_STR_CONTAINS(r.out, "reserve_inventory");
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionCompleted");

        ASSERT_EQ(CTL(&r, "--no-legend", "list"), 0);
        ASSERT_STR_CONTAINS(r.out, "watched");
        ASSERT_NULL(strstr(r.out, "WORKFLOW ID"));
        ASSERT_EQ(CTL(&r, "list"), 0);
        ASSERT_STR_CONTAINS(r.out, "WORKFLOW ID");
}

TEST(cancel_and_terminate) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(test_run_free) TestRun r = {};
        json_t *j, *ev;
        size_t idx;

        start_daemon_and_worker(&d, &worker);

        /* cancel: recorded, the workflow winds down itself and closes as Canceled. */
        ASSERT_EQ(CTL(&r, "start", "ApprovalWorkflow", "--id", "cli-cancel", "--task-queue", Q), 0);
        ASSERT_EQ(CTL(&r, "cancel", "cli-cancel", "--reason", "no longer needed"), 0);
        ASSERT_EQ(CTL(&r, "result", "cli-cancel", "--wait"), 1); /* closed without completing */
        ASSERT_STR_CONTAINS(r.err, "Canceled");
        ASSERT_EQ(CTL(&r, "--json", "describe", "cli-cancel"), 0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "status"), "Canceled");
        json_decref(j);
        ASSERT_EQ(CTL(&r, "--json", "history", "cli-cancel"), 0);
        j = out_json(&r);
        ev = ASSERT_NOT_NULL(history_next(j, "WorkflowExecutionCancelRequested", 0, &idx));
        ASSERT_STREQ(ev_str(ev, "reason"), "no longer needed");
        ASSERT_STREQ(json_str(json_array_get(j, json_array_size(j) - 1), "event_type"),
                     "WorkflowExecutionCanceled");
        json_decref(j);

        /* terminate: closed at once, the reason on record. */
        ASSERT_EQ(CTL(&r, "start", "ApprovalWorkflow", "--id", "cli-term", "--task-queue", Q), 0);
        ASSERT_EQ(CTL(&r, "terminate", "cli-term", "--reason", "stuck on a dead provider"), 0);
        ASSERT_EQ(CTL(&r, "--json", "describe", "cli-term"), 0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "status"), "Terminated");
        ASSERT_STREQ(json_str(json_object_get(j, "failure"), "message"),
                     "stuck on a dead provider");
        json_decref(j);
        ASSERT_EQ(CTL(&r, "--json", "history", "cli-term"), 0);
        j = out_json(&r);
        ev = json_array_get(j, json_array_size(j) - 1);
        ASSERT_STREQ(ev_type(ev), "WorkflowExecutionTerminated");
        ASSERT_STREQ(ev_str(ev, "reason"), "stuck on a dead provider");
        json_decref(j);
        ASSERT_EQ(CTL(&r, "result", "cli-term"), 1);
        ASSERT_STR_CONTAINS(r.err, "Terminated");

        /* Both are closed: another cancel or terminate has nothing to act on. */
        ASSERT_EQ(CTL(&r, "terminate", "cli-term"), 1);
        ASSERT_EQ(CTL(&r, "--json", "list", "--status", "Running"), 0);
        j = out_json(&r);
        ASSERT_EQ(json_array_size(j), 0u);
        json_decref(j);
}

/* update execute|start|result on the example's ApprovalWorkflow (update "comment"): the result
 * as JSON, the validator's refusal (exit 1, nothing recorded), dedup by --update-id, and usage
 * errors (exit 2, nothing sent). */
TEST(update) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(test_run_free) TestRun r = {};
        json_t *j;

        start_daemon_and_worker(&d, &worker);
        ASSERT_EQ(CTL(&r, "start", "ApprovalWorkflow", "--id", "cli-upd", "--task-queue", Q), 0);

        ASSERT_EQ(CTL(&r, "update", "execute", "--id", "cli-upd", "--name", "comment",
                      "{\"comment\": \"looks good\"}", "--update-id", "c1"),
                  0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "status"), "pending");
        ASSERT_STREQ(json_str(j, "comment"), "looks good");
        json_decref(j);
        /* Refused by the validator: exit 1, the reason, no event. */
        ASSERT_EQ(CTL(&r, "update", "execute", "--id", "cli-upd", "--name", "comment", "--input",
                      "{\"comment\": \"\"}"),
                  1);
        ASSERT_STR_CONTAINS(r.err, "update_rejected");
        ASSERT_STR_CONTAINS(r.err, "non-empty text");
        /* start waits for the acceptance; result, by update id, for the completion. */
        ASSERT_EQ(CTL(&r, "update", "start", "--id", "cli-upd", "--name", "comment",
                      "{\"comment\": \"second\"}", "--update-id", "c2"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "Update 'c2' accepted.");
        ASSERT_EQ(CTL(&r, "--json", "update", "result", "--id", "cli-upd", "--update-id", "c2"), 0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "stage"), "Completed");
        ASSERT_STREQ(json_str(json_object_get(j, "result"), "comment"), "second");
        json_decref(j);
        /* c1 again: its first outcome, not applied twice. */
        ASSERT_EQ(CTL(&r, "update", "execute", "--id", "cli-upd", "--name", "comment",
                      "{\"comment\": \"other\"}", "--update-id", "c1"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "looks good");
        ASSERT_EQ(CTL(&r, "update", "result", "--id", "cli-upd", "--update-id", "nope"), 1);
        ASSERT_STR_CONTAINS(r.err, "not_found");

        /* Usage errors: exit 2. */
        ASSERT_EQ(CTL(&r, "update", "execute", "--id", "cli-upd"), 2);
        ASSERT_STR_CONTAINS(r.err, "--name");
        ASSERT_EQ(CTL(&r, "update", "execute", "--name", "comment"), 2);
        ASSERT_EQ(CTL(&r, "update", "frob", "--id", "cli-upd", "--name", "comment"), 2);
        ASSERT_EQ(CTL(&r, "update", "result", "--id", "cli-upd"), 2);
        ASSERT_STR_CONTAINS(r.err, "--update-id");
        ASSERT_EQ(CTL(&r, "update", "start", "--id", "cli-upd", "--name", "comment",
                      "--wait-for-stage", "soon"),
                  2);
        ASSERT_STR_CONTAINS(r.err, "--wait-for-stage");
        ASSERT_EQ(CTL(&r, "update", "start", "--id", "cli-upd", "--name", "comment",
                      "--wait-for-stage", "completed"),
                  2);
        ASSERT_EQ(CTL(&r, "update", "execute", "--id", "cli-upd", "--name", "comment", "{bad"), 2);
        /* An empty update id is the daemon's invalid_argument: exit 1. */
        ASSERT_EQ(CTL(&r, "update", "execute", "--id", "cli-upd", "--name", "comment",
                      "--update-id", "", "{\"comment\": \"x\"}"),
                  1);
        ASSERT_STR_CONTAINS(r.err, "update_id");

        /* update-with-start: starts the run with the update, then reaches the running run. */
        ASSERT_EQ(CTL(&r, "update-with-start", "ApprovalWorkflow", "--id", "cli-uws",
                      "--task-queue", Q, "--id-conflict-policy", "UseExisting", "--name",
                      "comment", "--update-input", "{\"comment\": \"first\"}"),
                  0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "comment"), "first");
        json_decref(j);
        ASSERT_EQ(CTL(&r, "--json", "update-with-start", "ApprovalWorkflow", "--id", "cli-uws",
                      "--task-queue", Q, "--id-conflict-policy", "UseExisting", "--name",
                      "comment", "--update-input", "{\"comment\": \"second\"}",
                      "--wait-for-stage", "accepted"),
                  0);
        j = out_json(&r);
        ASSERT_STREQ(json_str(j, "stage"), "Accepted");
        json_decref(j);
        ASSERT_EQ(CTL(&r, "update-with-start", "ApprovalWorkflow", "--id", "cli-uws",
                      "--task-queue", Q, "--id-conflict-policy", "Fail", "--name", "comment",
                      "--update-input", "{\"comment\": \"third\"}"),
                  1);
        ASSERT_STR_CONTAINS(r.err, "already_started");
        ASSERT_EQ(CTL(&r, "update-with-start", "ApprovalWorkflow", "--id", "cli-uws",
                      "--task-queue", Q, "--name", "comment"),
                  2);
        ASSERT_STR_CONTAINS(r.err, "--id-conflict-policy");
        ASSERT_EQ(CTL(&r, "update-with-start", "ApprovalWorkflow", "--id", "cli-uws",
                      "--task-queue", Q, "--id-conflict-policy", "UseExisting"),
                  2);
        ASSERT_EQ(CTL(&r, "update-with-start", "ApprovalWorkflow", "--id", "cli-uws",
                      "--task-queue", Q, "--id-conflict-policy", "UseExisting", "--name",
                      "comment", "--update-input", "{bad"),
                  2);
        ASSERT_EQ(CTL(&r, "--json", "list", "--type", "ApprovalWorkflow"), 0);
        j = out_json(&r);
        ASSERT_EQ(json_array_size(j), 2u); /* cli-upd and one run of cli-uws */
        json_decref(j);

        ASSERT_EQ(CTL(&r, "--json", "history", "cli-upd"), 0);
        j = out_json(&r);
        ASSERT_EQ(history_count(j, "WorkflowExecutionUpdateAccepted"), 2u);
        ASSERT_EQ(history_count(j, "WorkflowExecutionUpdateCompleted"), 2u);
        json_decref(j);
        ASSERT_EQ(CTL(&r, "signal", "cli-upd", "approve", "true"), 0);
}

TEST(errors) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_run_free) TestRun r = {};

        test_daemon_start(&d, NULL);

        /* The daemon's error: exit 1, its code in the message. */
        ASSERT_EQ(CTL(&r, "result", "no-such-workflow"), 1);
        ASSERT_STR_CONTAINS(r.err, "not_found");
        ASSERT_STR_CONTAINS(r.err, "no-such-workflow");
        ASSERT_EQ(CTL(&r, "describe", "no-such-workflow"), 1);
        ASSERT_STR_CONTAINS(r.err, "not_found");
        ASSERT_EQ(CTL(&r, "signal", "no-such-workflow", "approve", "true"), 1);
        ASSERT_STR_CONTAINS(r.err, "not_found");

        /* Usage errors: exit 2, and nothing reaches the daemon. */
        ASSERT_EQ(CTL(&r, "frobnicate"), 2);
        ASSERT_EQ(CTL(&r, "start"), 2);
        ASSERT_EQ(CTL(&r, "start", "OrderWorkflow", "--id", "cli-bad", "--task-queue", Q, "--input",
                      "{not json"),
                  2);
        ASSERT_EQ(CTL(&r, "list", "--status", "Sleeping"), 2);
        ASSERT_EQ(CTL(&r, "result", "cli-bad"), 1);
        ASSERT_STR_CONTAINS(r.err, "not_found");
}

DEFINE_TEST_MAIN();
