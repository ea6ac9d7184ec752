/* Batch operations (daemon/batch.c, SEMANTICS.md b.21) through the real daemon: a batch
 * terminate of 1,000 runs interrupted by a daemon SIGKILL finishes after the restart, each run
 * terminated exactly once; a batch signal reports which items failed and why; pause and unpause
 * by filter; bad requests change nothing.
 *
 * Synchronisation is by events: GetHistory and GetResult long polls on the batch's first and last
 * runs (items are done oldest first). */

#include <stdio.h>
#include <string.h>

#include "tests/integration/worker-util.h"

#define N_RUNS 1000

static json_t *call_ok(dur_client *c, const char *request_json) {
        json_t *req = ASSERT_NOT_NULL(json_loads(request_json, 0, NULL)), *answer;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (!answer)
                test_fail(__FILE__, __LINE__, "%s failed: %s", request_json,
                          test_str_or_null(dur_client_error_message(c)));
        return answer;
}

static const char *call_error(dur_client *c, const char *request_json) {
        json_t *req = ASSERT_NOT_NULL(json_loads(request_json, 0, NULL)), *answer;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (answer)
                test_fail(__FILE__, __LINE__, "%s succeeded", request_json);
        return ASSERT_NOT_NULL(dur_client_error_code(c));
}

static uint64_t count_runs(dur_client *c, const char *query) {
        uint64_t n = UINT64_MAX;

        ASSERT_DUR_OK(c, dur_client_count(c, query, &n));
        return n;
}

/* DescribeBatchOperation of @id (new reference). */
static json_t *batch_describe(dur_client *c, const char *id) {
        char req[512];

        snprintf(req, sizeof(req), "{\"op\": \"DescribeBatchOperation\", \"batch_id\": \"%s\"}",
                 id);
        return call_ok(c, req);
}

static uint64_t batch_uint(const json_t *answer, const char *key) {
        return (uint64_t) json_integer_value(
                json_object_get(json_object_get(answer, "batch"), key));
}

static void start_idle(dur_client *c, const char *id) {
        start_json(c, "TimerSignalWorkflow", id, "nobody-polls", "{\"ms\": 1}", 0);
}

TEST(batch_terminate_1000_runs_across_sigkill) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_outcome o = {};
        json_t *answer, *events;
        uint64_t done_before;
        dur_client *c;
        char id[64];

        test_daemon_start(&d, NULL);
        c = client_connect();
        for (int i = 0; i < N_RUNS; i++) {
                snprintf(id, sizeof(id), "b-%04d", i);
                start_idle(c, id);
        }
        ASSERT_EQ(count_runs(c, "ExecutionStatus = 'Running'"), N_RUNS);

        /* 200 items a second: 5 s for the batch, which the SIGKILL interrupts early. */
        answer = call_ok(c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Terminate\", "
                            "\"batch_id\": \"kill-9\", \"query\": \"WorkflowId STARTS_WITH 'b-'\", "
                            "\"rps\": 200, \"reason\": \"cleanup\"}");
        ASSERT_EQ(json_integer_value(json_object_get(answer, "total")), N_RUNS);
        json_decref(answer);
        /* The first item is done: the batch is under way. */
        ASSERT_EQ(wait_outcome(c, "b-0000", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Terminated");
        dur_outcome_done(&o);

        c = dur_client_free(c);
        ASSERT_EQ(test_daemon_kill(&d, SIGKILL) & 0x7f, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        answer = batch_describe(c, "kill-9");
        done_before = batch_uint(answer, "succeeded");
        ASSERT_GE(done_before, 1);
        ASSERT_LT(done_before, N_RUNS); /* interrupted in the middle */
        ASSERT_STREQ(json_str(json_object_get(answer, "batch"), "state"), "Running");
        json_decref(answer);

        /* It goes on by itself after the restart, to the last run. */
        ASSERT_EQ(wait_outcome(c, "b-0999", &o), DUR_FAILED);
        ASSERT_STREQ(o.status, "Terminated");
        dur_outcome_done(&o);
        answer = batch_describe(c, "kill-9");
        ASSERT_STREQ(json_str(json_object_get(answer, "batch"), "state"), "Completed");
        ASSERT_EQ(batch_uint(answer, "succeeded"), N_RUNS);
        ASSERT_EQ(batch_uint(answer, "failed"), 0);
        ASSERT_EQ(json_array_size(json_object_get(answer, "failures")), 0);
        json_decref(answer);
        ASSERT_EQ(count_runs(c, "ExecutionStatus = 'Terminated'"), N_RUNS);
        ASSERT_EQ(count_runs(c, "ExecutionStatus = 'Running'"), 0);
        /* Exactly once each, with the batch's reason. */
        events = history_get(c, "b-0500");
        ASSERT_EQ(history_count(events, "WorkflowExecutionTerminated"), 1);
        ASSERT_STREQ(ev_str(history_must(events, "WorkflowExecutionTerminated"), "reason"),
                     "cleanup");
        json_decref(events);
        dur_client_free(c);
}

TEST(batch_signal_reports_failures_and_pauses) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        json_t *answer, *failures, *events;
        const char *batch_id;
        dur_client *c;
        char req[64];

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_idle(c, "s-1");
        start_idle(c, "s-2");
        start_idle(c, "s-3");
        start_idle(c, "other");
        ASSERT_DUR_OK(c, dur_client_terminate(c, "s-2", NULL, "closed before the batch"));

        answer = call_ok(c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Signal\", "
                            "\"query\": \"WorkflowId STARTS_WITH 's-'\", \"signal_name\": \"go\"}");
        ASSERT_EQ(json_integer_value(json_object_get(answer, "total")), 3);
        batch_id = json_str(answer, "batch_id");
        ASSERT_EQ(strlen(batch_id), 36); /* a UUID when none is given */
        snprintf(req, sizeof(req), "%s", batch_id);
        json_decref(answer);
        /* The last item is s-3: once it has the signal, the batch has done every item. */
        for (;;) {
                events = history_get(c, "s-3");
                if (history_count(events, "WorkflowExecutionSignaled") == 1)
                        break;
                json_decref(events);
                answer = call_ok(c, "{\"op\": \"GetHistory\", \"workflow_id\": \"s-3\", "
                                    "\"from_event_id\": 3, \"wait\": true}");
                json_decref(answer);
        }
        json_decref(events);
        answer = batch_describe(c, req);
        ASSERT_EQ(batch_uint(answer, "succeeded"), 2);
        ASSERT_EQ(batch_uint(answer, "failed"), 1);
        failures = json_object_get(answer, "failures");
        ASSERT_EQ(json_array_size(failures), 1);
        ASSERT_STREQ(json_str(json_array_get(failures, 0), "workflow_id"), "s-2");
        ASSERT_STREQ(json_str(json_array_get(failures, 0), "code"), "not_found");
        ASSERT_STR_CONTAINS(json_str(json_array_get(failures, 0), "message"), "closed");
        json_decref(answer);
        events = history_get(c, "other");
        ASSERT_EQ(history_count(events, "WorkflowExecutionSignaled"), 0);
        json_decref(events);

        /* Pause and unpause by filter. */
        answer = call_ok(c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Pause\", "
                            "\"batch_id\": \"p\", \"query\": \"ExecutionStatus = 'Running'\"}");
        json_decref(answer);
        for (;;) {
                answer = batch_describe(c, "p");
                if (streq(json_str(json_object_get(answer, "batch"), "state"), "Completed"))
                        break;
                json_decref(answer);
                json_decref(call_ok(c, "{\"op\": \"GetHistory\", \"workflow_id\": \"other\", "
                                       "\"from_event_id\": 3, \"wait\": true}"));
        }
        ASSERT_EQ(batch_uint(answer, "succeeded"), 3);
        json_decref(answer);
        ASSERT_EQ(count_runs(c, "ExecutionStatus = 'Paused'"), 3);

        /* durablectl: a batch without a terminal needs --yes and prints its id; describe. */
        {
                TestRun run = {};

                ASSERT_EQ(test_run(&run,
                                   STRV(test_bin("DURABLECTL_BIN"), "--socket", d.socket_path,
                                        "batch", "unpause", "--query", "WorkflowId = 'other'",
                                        "--yes", "--reason", "back to work"),
                                   NULL),
                          0);
                ASSERT_STR_CONTAINS(run.out, "started on 1 runs");
                test_run_free(&run);
                ASSERT_EQ(test_run(&run,
                                   STRV(test_bin("DURABLECTL_BIN"), "--socket", d.socket_path,
                                        "batch", "describe", "p"),
                                   NULL),
                          0);
                ASSERT_STR_CONTAINS(run.out, "Pause");
                ASSERT_STR_CONTAINS(run.out, "Completed");
                test_run_free(&run);
        }
        /* On a terminal (script(1) gives it one): the question, the bar, the report. */
        {
                _cleanup_free_ char *cmd = NULL;
                TestRun run = {};

                ASSERT_GE(asprintf(&cmd,
                                   "printf 'y\\n' | script -qec \"%s --socket %s batch terminate "
                                   "--query \\\"WorkflowId = 'other'\\\"\" /dev/null",
                                   test_bin("DURABLECTL_BIN"), d.socket_path),
                          0);
                ASSERT_EQ(test_run(&run, STRV("/bin/sh", "-c", cmd), NULL), 0);
                ASSERT_STR_CONTAINS(run.out, "Terminate 1 workflow run matching");
                ASSERT_STR_CONTAINS(run.out, "] 1/1");
                ASSERT_STR_CONTAINS(run.out, "Succeeded");
                test_run_free(&run);
        }
        ASSERT_EQ(count_runs(c, "WorkflowId = 'other' AND ExecutionStatus = 'Terminated'"), 1);
        answer = call_ok(c, "{\"op\": \"ListBatchOperations\"}");
        /* Signal, Pause, and durablectl's Unpause and Terminate. */
        ASSERT_EQ(json_array_size(json_object_get(answer, "batches")), 4);
        json_decref(answer);
        dur_client_free(c);
}

TEST(batch_bad_requests) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        json_t *answer;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_idle(c, "x");
        ASSERT_STREQ(call_error(c, "{\"op\": \"StartBatchOperation\"}"), "invalid_argument");
        ASSERT_STREQ(
                call_error(c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Frobnicate\"}"),
                "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Signal\"}"),
                     "invalid_argument"); /* no signal_name */
        ASSERT_STREQ(call_error(c,
                                "{\"op\": \"StartBatchOperation\", \"operation\": \"Terminate\", "
                                "\"query\": \"WorkflowId ==\"}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c,
                                "{\"op\": \"StartBatchOperation\", \"operation\": \"Terminate\", "
                                "\"query\": \"GROUP BY ExecutionStatus\"}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c,
                                "{\"op\": \"StartBatchOperation\", \"operation\": \"Terminate\", "
                                "\"rps\": \"fast\"}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Reset\", "
                                   "\"to\": \"middle\"}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"DescribeBatchOperation\", \"batch_id\": \"no\"}"),
                     "not_found");
        ASSERT_STREQ(call_error(c, "{\"op\": \"DescribeBatchOperation\", \"batch_id\": 7}"),
                     "invalid_argument");
        answer = call_ok(
                c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Cancel\", \"batch_id\": "
                   "\"once\", \"query\": \"WorkflowId = 'nothing'\"}");
        ASSERT_EQ(json_integer_value(json_object_get(answer, "total")), 0);
        json_decref(answer);
        answer = batch_describe(c, "once");
        ASSERT_STREQ(json_str(json_object_get(answer, "batch"), "state"), "Completed");
        json_decref(answer);
        ASSERT_STREQ(call_error(c, "{\"op\": \"StartBatchOperation\", \"operation\": \"Cancel\", "
                                   "\"batch_id\": \"once\"}"),
                     "already_started");
        answer = call_ok(c, "{\"op\": \"ListBatchOperations\"}");
        ASSERT_EQ(json_array_size(json_object_get(answer, "batches")), 1);
        json_decref(answer);
        ASSERT_EQ(count_runs(c, "ExecutionStatus = 'Running'"), 1); /* untouched */
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
