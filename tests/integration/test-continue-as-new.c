/* Continue-as-new and the history limits through the real daemon and libdurable: a run closes
 * ContinuedAsNew and a new run of the same id starts with the new input and a fresh history;
 * GetResult and DescribeWorkflow follow the chain; describe warns past --history-warn-events and
 * a run past --history-max-events or --history-max-bytes fails (SEMANTICS.md b.9). */

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tests/integration/core-util.h"

/* Counter continues as new three times: four runs, each with its own history. */
TEST(chain) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *first = NULL, *last = NULL;
        char run_id[37], next[37];
        json_t *res, *events, *ev, *desc, *req, *answer;
        dur_outcome o = {};
        dur_client *c;
        int r;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Counter", "cnt", "{\"n\": 0, \"max\": 3}", NULL, &first), 0);

        /* GetResult of the first run follows the chain to the last one. */
        res = core_result(c, "cnt", first, &last);
        ASSERT_EQ(json_integer_value(json_object_get(res, "n")), 3);
        ASSERT_STREQ(json_str(res, "run_id"), last);
        ASSERT_STRNE(first, last);
        json_decref(res);

        /* Walk the chain from the first run: ContinuedAsNew, each run naming the next. */
        snprintf(run_id, sizeof(run_id), "%s", first);
        for (int i = 0; i < 3; i++) {
                desc = core_describe(c, "cnt", run_id);
                ASSERT_STREQ(core_status(desc), "ContinuedAsNew");
                snprintf(next, sizeof(next), "%s",
                         ASSERT_NOT_NULL(json_str(desc, "new_execution_run_id")));
                json_decref(desc);
                events = core_history(c, "cnt", run_id);
                ASSERT_STREQ(ev_type(json_array_get(events, 0)), "WorkflowExecutionStarted");
                ev = json_array_get(events, json_array_size(events) - 1);
                ASSERT_STREQ(ev_type(ev), "WorkflowExecutionContinuedAsNew");
                ASSERT_STREQ(ev_str(ev, "new_execution_run_id"), next);
                ASSERT_STREQ(ev_str(ev, "workflow_type"), "Counter");
                ASSERT_EQ(json_integer_value(json_object_get(ev_attr(ev, "input"), "n")), i + 1);
                json_decref(events);
                /* The next run starts fresh and names where it came from. */
                events = core_history(c, "cnt", next);
                ev = json_array_get(events, 0);
                ASSERT_STREQ(ev_type(ev), "WorkflowExecutionStarted");
                ASSERT_STREQ(ev_str(ev, "continued_execution_run_id"), run_id);
                ASSERT_EQ(json_integer_value(json_object_get(ev_attr(ev, "input"), "n")), i + 1);
                json_decref(events);
                memcpy(run_id, next, sizeof(run_id));
        }
        ASSERT_STREQ(run_id, last);

        /* durablectl result follows the chain too. */
        {
                TestRun run = {};
                json_t *j;

                ASSERT_EQ(test_run(&run,
                                   STRV(test_bin("DURABLECTL_BIN"), "--json", "result", "cnt",
                                        "--run-id", first),
                                   NULL),
                          0);
                j = ASSERT_NOT_NULL(json_loads(run.out, 0, NULL));
                ASSERT_STREQ(json_str(j, "run_id"), last);
                ASSERT_STREQ(json_str(j, "status"), "Completed");
                json_decref(j);
                test_run_free(&run);
                /* describe names the run a continued run continues as. */
                ASSERT_EQ(test_run(&run,
                                   STRV(test_bin("DURABLECTL_BIN"), "--json", "describe", "cnt",
                                        "--run-id", first),
                                   NULL),
                          0);
                j = ASSERT_NOT_NULL(json_loads(run.out, 0, NULL));
                ASSERT_STREQ(json_str(j, "status"), "ContinuedAsNew");
                ASSERT_NOT_NULL(json_str(j, "new_execution_run_id"));
                ASSERT_GT(json_integer_value(json_object_get(j, "history_size_bytes")), 0);
                json_decref(j);
                test_run_free(&run);
                ASSERT_EQ(test_run(&run,
                                   STRV(test_bin("DURABLECTL_BIN"), "--no-pager", "describe", "cnt",
                                        "--run-id", first),
                                   NULL),
                          0);
                ASSERT_STR_CONTAINS(run.out, "Continued as");
                test_run_free(&run);
        }

        /* Without a run id, describe and history show the latest run. */
        desc = core_describe(c, "cnt", NULL);
        ASSERT_STREQ(core_status(desc), "Completed");
        ASSERT_STREQ(json_str(json_object_get(desc, "workflow"), "run_id"), last);
        json_decref(desc);

        /* follow_runs false: the first run's own outcome. */
        req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:s, s:b, s:b}", "op", "GetResult",
                                        "workflow_id", "cnt", "run_id", first, "wait", 1,
                                        "follow_runs", 0));
        answer = ASSERT_NOT_NULL(call_json(c, req, &r));
        ASSERT_STREQ(json_str(json_object_get(answer, "workflow"), "status"), "ContinuedAsNew");
        ASSERT_STREQ(json_str(json_object_get(answer, "workflow"), "run_id"), first);
        json_decref(answer);
        json_decref(req);

        /* A listing shows every run of the chain. */
        req = ASSERT_NOT_NULL(json_pack("{s:s, s:s}", "op", "ListWorkflows", "workflow_id", "cnt"));
        answer = ASSERT_NOT_NULL(call_json(c, req, &r));
        ASSERT_EQ(json_array_size(json_object_get(answer, "workflows")), 4);
        json_decref(answer);
        json_decref(req);

        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

typedef struct Waiting {
        dur_client *c;
        char *run_id;
        int result;
        json_t *value;
} Waiting;

static void *wait_result(void *userdata) {
        Waiting *w = userdata;
        dur_outcome o = {};

        w->result = dur_client_result(w->c, "gate", NULL, 0, &o);
        if (w->result == 0) {
                w->value = outcome_result(&o);
                w->run_id = strdup(o.run_id);
        }
        dur_outcome_done(&o);
        return NULL;
}

/* A GetResult that waits while the runs continue as new is answered with the last run. */
TEST(result_waits_across_runs) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *first = NULL;
        Waiting w = {};
        pthread_t t;
        dur_client *c;
        json_t *desc;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        w.c = client_connect();
        ASSERT_EQ(core_start(c, "Counter", "gate", "{\"n\": 0, \"max\": 2, \"gate\": true}", NULL,
                             &first),
                  0);
        ASSERT_EQ(pthread_create(&t, NULL, wait_result, &w), 0);
        /* Each run waits for "go", then continues as new; the waiting thread must be
         * answered only by the last run. */
        for (int i = 0; i < 3; i++) {
                char run_id[37];
                json_t *req, *answer;
                int r;

                desc = core_describe(c, "gate", NULL);
                snprintf(run_id, sizeof(run_id), "%s",
                         json_str(json_object_get(desc, "workflow"), "run_id"));
                json_decref(desc);
                ASSERT_DUR_OK(c, dur_client_signal(c, "gate", run_id, "go", NULL));
                if (i == 2)
                        break;
                /* This run's own outcome, once it closed. */
                req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:s, s:b, s:b}", "op", "GetResult",
                                                "workflow_id", "gate", "run_id", run_id, "wait", 1,
                                                "follow_runs", 0));
                answer = ASSERT_NOT_NULL(call_json(c, req, &r));
                ASSERT_STREQ(json_str(json_object_get(answer, "workflow"), "status"),
                             "ContinuedAsNew");
                json_decref(answer);
                json_decref(req);
        }
        ASSERT_EQ(pthread_join(t, NULL), 0);
        ASSERT_EQ(w.result, 0);
        ASSERT_EQ(json_integer_value(json_object_get(w.value, "n")), 2);
        ASSERT_STRNE(w.run_id, first);
        json_decref(w.value);
        free(w.run_id);
        dur_client_free(w.c);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* Past --history-max-events the run fails with a clear reason; describe warns before. */
TEST(history_event_limit) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_outcome o = {};
        dur_client *c;
        json_t *desc, *events;
        int r;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--history-warn-events=10",
                                                              "--history-max-events=40") });
        core_worker_spawn(&worker);
        c = client_connect();

        /* 2 steps: 15 events, past the warning (10) but under the limit. */
        ASSERT_EQ(core_start(c, "Chatty", "few", "{\"steps\": 2}", NULL, NULL), 0);
        json_decref(core_result(c, "few", NULL, NULL));
        desc = core_describe(c, "few", NULL);
        ASSERT_STR_CONTAINS(json_str(desc, "history_warning"), "continue-as-new");
        ASSERT_GT(json_integer_value(json_object_get(desc, "history_size_bytes")), 0);
        json_decref(desc);
        {
                TestRun run = {};

                ASSERT_EQ(
                        test_run(&run,
                                 STRV(test_bin("DURABLECTL_BIN"), "--no-pager", "describe", "few"),
                                 NULL),
                        0);
                ASSERT_STR_CONTAINS(run.out, "consider continue-as-new");
                test_run_free(&run);
        }
        ASSERT_EQ(core_start(c, "Quick", "tiny", "1", NULL, NULL), 0);
        json_decref(core_result(c, "tiny", NULL, NULL));
        desc = core_describe(c, "tiny", NULL);
        ASSERT_NULL(json_object_get(desc, "history_warning"));
        json_decref(desc);

        /* 100 steps would need 500 events. */
        ASSERT_EQ(core_start(c, "Chatty", "many", "{\"steps\": 100}", NULL, NULL), 0);
        r = dur_client_result(c, "many", NULL, 0, &o);
        ASSERT_EQ(r, DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        ASSERT_STREQ(dur_failure_type(o.failure), "HistoryLimitExceeded");
        ASSERT_STR_CONTAINS(dur_failure_message(o.failure), "--history-max-events");
        dur_outcome_done(&o);
        events = core_history(c, "many", NULL);
        ASSERT_LE(json_array_size(events), 41 + 5);
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionFailed");
        json_decref(events);

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* Signals are refused once the history is full, before anything runs. */
TEST(history_event_limit_signals) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        int r = 0, n = 0;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--history-max-events=20") });
        c = client_connect();
        ASSERT_EQ(core_start(c, "Collect", "full", NULL, NULL, NULL), 0);
        /* Started and WorkflowTaskScheduled, then one event per signal. */
        for (; n < 30; n++) {
                r = dur_client_signal(c, "full", NULL, "add", NULL);
                if (r < 0)
                        break;
        }
        ASSERT_EQ(n, 18);
        ASSERT_EQ(r, -ENOSPC); /* resource_exhausted */
        ASSERT_STREQ(dur_client_error_code(c), "resource_exhausted");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "--history-max-events");
        dur_client_free(c);
}

/* Past --history-max-bytes the run fails too. */
TEST(history_byte_limit) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_outcome o = {};
        char big[20001];
        dur_buf *arg;
        dur_client *c;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--history-max-bytes=64K") });
        core_worker_spawn(&worker);
        c = client_connect();
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        arg = ASSERT_NOT_NULL(dur_args("s", big));
        ASSERT_EQ(core_start(c, "Collect", "heavy", NULL, NULL, NULL), 0);
        /* 80 KB of signals: the workflow task that sees them fails the run (it does not wait
         * for "done"). */
        for (int i = 0; i < 4; i++)
                ASSERT_DUR_OK(c, dur_client_signal(c, "heavy", NULL, "add", arg));
        ASSERT_EQ(dur_client_result(c, "heavy", NULL, 0, &o), DUR_FAILED);
        ASSERT_STREQ(dur_failure_type(o.failure), "HistoryLimitExceeded");
        ASSERT_STR_CONTAINS(dur_failure_message(o.failure), "--history-max-bytes");
        dur_outcome_done(&o);
        dur_buf_free(arg);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

DEFINE_TEST_MAIN();
