/* DeleteWorkflow (daemon/history-delete.c, SEMANTICS.md b.10) through the real daemon and
 * test-worker: a closed run and its history go away, other runs of the workflow id stay; an open
 * run is terminated first and whoever waits for it is answered not_found; the deletion survives
 * a daemon SIGKILL; bad requests change nothing. */

#include <stdio.h>
#include <string.h>

#include "tests/integration/worker-util.h"

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

TEST(delete_closed_and_open_runs) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {}, waiter = {};
        _cleanup_free_ char *first = NULL;
        dur_outcome o = {};
        json_t *events;
        dur_client *c;
        char *second;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();

        /* Two closed runs of one workflow id: the older one is deleted by run id. */
        start_json(c, "SleepWorkflow", "del", NULL, "{\"ms\": 1}", 0);
        ASSERT_EQ(wait_outcome(c, "del", &o), 0);
        first = ASSERT_NOT_NULL(strdup(o.run_id));
        dur_outcome_done(&o);
        start_json(c, "SleepWorkflow", "del", NULL, "{\"ms\": 1}", 0);
        ASSERT_EQ(wait_outcome(c, "del", &o), 0);
        second = o.run_id;
        ASSERT_EQ(count(c, "WorkflowId = 'del'"), 2);
        ASSERT_DUR_OK(c, dur_client_delete(c, "del", first, "cleanup"));
        ASSERT_EQ(count(c, "WorkflowId = 'del'"), 1);
        events = history_get(c, "del"); /* the latest, still there */
        ASSERT_EQ(history_count(events, "WorkflowExecutionCompleted"), 1);
        json_decref(events);
        ASSERT_EQ(dur_client_delete(c, "del", first, NULL), -ENOENT);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");
        ASSERT_DUR_OK(c, dur_client_delete(c, "del", second, NULL));
        ASSERT_EQ(count(c, "WorkflowId = 'del'"), 0);
        dur_outcome_done(&o);

        /* An open run: terminated, then deleted; a waiter for its result hears not_found. */
        start_json(c, "TimerSignalWorkflow", "open", NULL, "{\"ms\": 600000}", 0);
        test_process_spawn(&waiter,
                           STRV(test_bin("DURABLECTL_BIN"), "--socket", d.socket_path, "result",
                                "open", "--wait"),
                           NULL);
        ASSERT_DUR_OK(c, dur_client_delete(c, "open", NULL, "not needed"));
        ASSERT_EQ(test_process_wait(&waiter, 0), 1 << 8); /* exit status 1: not found */
        ASSERT_EQ(count(c, "WorkflowId = 'open'"), 0);
        ASSERT_EQ(dur_client_signal(c, "open", NULL, "go", NULL), -ENOENT);

        /* DESIGN.md §3: answered after the commit, so a crash keeps the deletion. */
        c = dur_client_free(c);
        ASSERT_EQ(test_daemon_kill(&d, SIGKILL) & 0x7f, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        ASSERT_EQ(count(c, "WorkflowId = 'open' OR WorkflowId = 'del'"), 0);
        ASSERT_STREQ(call_error(c, "{\"op\": \"GetHistory\", \"workflow_id\": \"open\"}"),
                     "not_found");

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

TEST(delete_bad_requests) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_json(c, "TimerSignalWorkflow", "keep", NULL, "{\"ms\": 1}", 0);

        ASSERT_STREQ(call_error(c, "{\"op\": \"DeleteWorkflow\"}"), "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"DeleteWorkflow\", \"workflow_id\": 1}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"DeleteWorkflow\", \"workflow_id\": \"keep\", "
                                   "\"reason\": 3}"),
                     "invalid_argument");
        ASSERT_STREQ(call_error(c, "{\"op\": \"DeleteWorkflow\", \"workflow_id\": \"keep\", "
                                   "\"run_id\": \"0000\"}"),
                     "not_found");
        ASSERT_STREQ(call_error(c, "{\"op\": \"DeleteWorkflow\", \"workflow_id\": \"nobody\"}"),
                     "not_found");
        ASSERT_EQ(count(c, "WorkflowId = 'keep' AND ExecutionStatus = 'Running'"), 1);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
