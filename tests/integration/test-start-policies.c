/* Start policies and signal-with-start through the real daemon, libdurable and durablectl:
 * the id reuse policy for a closed previous run, the id conflict policy for a running one,
 * request_id dedup, and SignalWithStart (SEMANTICS.md b.4, b.5; doc/protocol.md). */

#include <stdio.h>
#include <string.h>

#include "tests/integration/core-util.h"
#include "tests/integration/raw-util.h"

static void finish_collect(dur_client *c, const char *id) {
        dur_outcome o = {};

        ASSERT_DUR_OK(c, dur_client_signal(c, id, NULL, "done", NULL));
        ASSERT_EQ(dur_client_result(c, id, NULL, 0, &o), 0);
        dur_outcome_done(&o);
}

static void assert_run_status(dur_client *c, const char *id, const char *run_id, const char *st) {
        json_t *d = core_describe(c, id, run_id);

        ASSERT_STREQ(core_status(d), st);
        json_decref(d);
}

/* The reuse policy applies when the latest run of the id is closed. */
TEST(id_reuse_policy) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        dur_start_opts o;
        dur_client *c;
        json_t *res;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();

        /* AllowDuplicate is the default: a completed id starts again. */
        ASSERT_EQ(core_start(c, "Quick", "q", "1", NULL, &r1), 0);
        json_decref(core_result(c, "q", NULL, NULL));
        ASSERT_EQ(core_start(c, "Quick", "q", "2", NULL, &r2), 0);
        ASSERT_STRNE(r1, r2);
        res = core_result(c, "q", NULL, NULL);
        ASSERT_EQ(json_integer_value(res), 2);
        json_decref(res);
        o = (dur_start_opts){ .id_reuse_policy = DUR_ID_REUSE_ALLOW_DUPLICATE };
        ASSERT_EQ(core_start(c, "Quick", "q", "3", &o, NULL), 0);
        json_decref(core_result(c, "q", NULL, NULL));

        /* RejectDuplicate: never again; nothing is started. */
        o = (dur_start_opts){ .id_reuse_policy = DUR_ID_REUSE_REJECT_DUPLICATE };
        ASSERT_ERROR(core_start(c, "Quick", "q", "4", &o, NULL), -EEXIST);
        ASSERT_STREQ(dur_client_error_code(c), "already_started");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "RejectDuplicate");
        res = core_result(c, "q", NULL, NULL);
        ASSERT_EQ(json_integer_value(res), 3);
        json_decref(res);

        /* AllowDuplicateFailedOnly: not after Completed, but after Failed and Terminated. */
        o = (dur_start_opts){ .id_reuse_policy = DUR_ID_REUSE_ALLOW_DUPLICATE_FAILED_ONLY };
        ASSERT_ERROR(core_start(c, "Quick", "q", "5", &o, NULL), -EEXIST);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "AllowDuplicateFailedOnly");
        ASSERT_EQ(core_start(c, "Fail", "f", NULL, NULL, &r3), 0);
        {
                dur_outcome out = {};
                ASSERT_EQ(dur_client_result(c, "f", NULL, 0, &out), DUR_FAILED);
                ASSERT_STREQ(out.status, "Failed");
                dur_outcome_done(&out);
        }
        ASSERT_EQ(core_start(c, "Quick", "f", "6", &o, &r4), 0);
        ASSERT_STRNE(r3, r4);
        res = core_result(c, "f", NULL, NULL);
        ASSERT_EQ(json_integer_value(res), 6);
        json_decref(res);
        ASSERT_EQ(core_start(c, "Collect", "t", NULL, NULL, NULL), 0);
        ASSERT_DUR_OK(c, dur_client_terminate(c, "t", NULL, "stop"));
        ASSERT_EQ(core_start(c, "Quick", "t", "7", &o, NULL), 0);
        json_decref(core_result(c, "t", NULL, NULL));

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* The conflict policy applies when a run of the id is running. */
TEST(id_conflict_policy) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        dur_start_opts o;
        dur_client *c;
        json_t *events, *last;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Collect", "c", NULL, NULL, &r1), 0);

        /* Fail is the default, and refuses without touching the running run. */
        ASSERT_ERROR(core_start(c, "Collect", "c", NULL, NULL, NULL), -EEXIST);
        ASSERT_STREQ(dur_client_error_code(c), "already_started");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), r1);
        o = (dur_start_opts){ .id_conflict_policy = DUR_ID_CONFLICT_FAIL };
        ASSERT_ERROR(core_start(c, "Collect", "c", NULL, &o, NULL), -EEXIST);
        assert_run_status(c, "c", r1, "Running");

        /* UseExisting: the running run answers, no new run. */
        o = (dur_start_opts){ .id_conflict_policy = DUR_ID_CONFLICT_USE_EXISTING };
        ASSERT_EQ(core_start(c, "Collect", "c", NULL, &o, &r2), 1);
        ASSERT_STREQ(r1, r2);

        /* TerminateExisting: the running run is terminated, a new one starts. */
        o = (dur_start_opts){ .id_conflict_policy = DUR_ID_CONFLICT_TERMINATE_EXISTING };
        ASSERT_EQ(core_start(c, "Collect", "c", NULL, &o, &r3), 0);
        ASSERT_STRNE(r1, r3);
        assert_run_status(c, "c", r1, "Terminated");
        assert_run_status(c, "c", r3, "Running");
        events = core_history(c, "c", r1);
        last = json_array_get(events, json_array_size(events) - 1);
        ASSERT_STREQ(ev_type(last), "WorkflowExecutionTerminated");
        ASSERT_STR_CONTAINS(ev_str(last, "reason"), "TerminateExisting");
        json_decref(events);

        /* TerminateIfRunning (reuse policy) acts as TerminateExisting on a running run. */
        o = (dur_start_opts){ .id_reuse_policy = DUR_ID_REUSE_TERMINATE_IF_RUNNING };
        ASSERT_EQ(core_start(c, "Collect", "c", NULL, &o, &r4), 0);
        assert_run_status(c, "c", r3, "Terminated");
        assert_run_status(c, "c", r4, "Running");
        finish_collect(c, "c");

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A repeated start with the same request_id returns the run it started, running or closed. */
TEST(request_id) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        dur_start_opts o = { .request_id = "req-1" };
        dur_client *c;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Collect", "r", NULL, &o, &r1), 0);
        o = (dur_start_opts){ .request_id = "req-1" };
        ASSERT_EQ(core_start(c, "Collect", "r", NULL, &o, &r2), 1);
        ASSERT_STREQ(r1, r2);
        finish_collect(c, "r");
        /* Closed: still the same answer, even under RejectDuplicate. */
        o = (dur_start_opts){ .request_id = "req-1",
                              .id_reuse_policy = DUR_ID_REUSE_REJECT_DUPLICATE };
        ASSERT_EQ(core_start(c, "Collect", "r", NULL, &o, &r3), 1);
        ASSERT_STREQ(r1, r3);
        /* Another request id is another start. */
        o = (dur_start_opts){ .request_id = "req-2" };
        ASSERT_EQ(core_start(c, "Collect", "r", NULL, &o, &r4), 0);
        ASSERT_STRNE(r1, r4);
        finish_collect(c, "r");

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

static int call_status(dur_client *c, json_t *req) {
        json_t *answer;
        int r = 0;

        answer = call_json(c, req, &r);
        json_decref(req);
        json_decref(answer);
        return answer ? 0 : r;
}

/* Bad policies are refused with a message naming the valid values; nothing is started. */
TEST(bad_policies) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_start_opts o;
        json_t *req;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "StartWorkflow", "workflow_id", "b",
                        "workflow_type", "Quick", "task_queue", CORE_QUEUE, "id_reuse_policy",
                        "Sometimes");
        ASSERT_ERROR(call_status(c, req), -EINVAL);
        ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "'Sometimes'");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "AllowDuplicateFailedOnly");
        req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "StartWorkflow", "workflow_id", "b",
                        "workflow_type", "Quick", "task_queue", CORE_QUEUE, "id_conflict_policy",
                        "Maybe");
        ASSERT_ERROR(call_status(c, req), -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "UseExisting");
        req = json_pack("{s:s, s:s, s:s, s:s, s:i}", "op", "StartWorkflow", "workflow_id", "b",
                        "workflow_type", "Quick", "task_queue", CORE_QUEUE, "id_reuse_policy", 3);
        ASSERT_ERROR(call_status(c, req), -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "id_reuse_policy");
        o = (dur_start_opts){ .id_reuse_policy = DUR_ID_REUSE_TERMINATE_IF_RUNNING,
                              .id_conflict_policy = DUR_ID_CONFLICT_USE_EXISTING };
        ASSERT_ERROR(core_start(c, "Quick", "b", NULL, &o, NULL), -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "TerminateIfRunning");
        /* libdurable refuses values outside its enums before sending anything. */
        o = (dur_start_opts){ .id_reuse_policy = (dur_id_reuse_policy) 9 };
        ASSERT_ERROR(core_start(c, "Quick", "b", NULL, &o, NULL), -EINVAL);
        o = (dur_start_opts){ .workflow_id = "b",
                              .task_queue = CORE_QUEUE,
                              .id_conflict_policy = DUR_ID_CONFLICT_FAIL };
        ASSERT_ERROR(dur_client_signal_with_start(c, "Collect", &o, NULL, "add", NULL, NULL),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "Fail is not allowed");
        ASSERT_ERROR(dur_client_signal_with_start(c, "Collect", &o, NULL, "", NULL, NULL), -EINVAL);
        /* StartWorkflow's "wait" and "timeout_usec" of the wrong type name the field. */
        req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "StartWorkflow", "workflow_id", "b",
                        "workflow_type", "Quick", "task_queue", CORE_QUEUE, "wait", "yes");
        ASSERT_ERROR(call_status(c, req), -EINVAL);
        ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "wait");
        req = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i}", "op", "StartWorkflow", "workflow_id",
                        "b", "workflow_type", "Quick", "task_queue", CORE_QUEUE, "wait", 1,
                        "timeout_usec", -5);
        ASSERT_ERROR(call_status(c, req), -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "timeout_usec");
        /* Nothing of it was started. */
        req = json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "b");
        ASSERT_ERROR(call_status(c, req), -ENOENT);
        dur_client_free(c);
}

/* SignalWithStart starts the run with the signal before its first task, or signals the running
 * one; either way the workflow sees every signal once, in order. */
TEST(signal_with_start) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        dur_start_opts o = { .workflow_id = "s", .task_queue = CORE_QUEUE, .request_id = "sws-1" };
        dur_buf *in = ASSERT_NOT_NULL(dur_args("{s:s}", "who", "first"));
        dur_buf *sig;
        dur_client *c;
        json_t *events, *res, *list;

        test_daemon_start(&d, NULL);
        c = client_connect();
        /* No worker yet: the history shows where the signal went. */
        sig = ASSERT_NOT_NULL(dur_args("i", 0));
        ASSERT_EQ(ASSERT_DUR_OK(
                          c, dur_client_signal_with_start(c, "Collect", &o, in, "add", sig, &r1)),
                  0);
        events = core_history(c, "s", NULL);
        ASSERT_HISTORY_TYPES(events, "WorkflowExecutionStarted", "WorkflowExecutionSignaled",
                             "WorkflowTaskScheduled");
        ASSERT_STREQ(ev_str(json_array_get(events, 1), "signal_name"), "add");
        json_decref(events);
        /* The same request again (a retry): same run, no second signal. */
        ASSERT_EQ(dur_client_signal_with_start(c, "Collect", &o, in, "add", sig, &r2), 1);
        ASSERT_STREQ(r1, r2);
        dur_buf_free(sig);
        /* A new request signals the running run. */
        o.request_id = NULL;
        sig = ASSERT_NOT_NULL(dur_args("i", 1));
        ASSERT_EQ(dur_client_signal_with_start(c, "Collect", &o, in, "add", sig, &r3), 1);
        ASSERT_STREQ(r1, r3);
        dur_buf_free(sig);
        /* The worker runs it: both signals, once each, in order. */
        core_worker_spawn(&worker);
        ASSERT_DUR_OK(c, dur_client_signal(c, "s", NULL, "done", NULL));
        res = core_result(c, "s", NULL, NULL);
        list = json_object_get(res, "signals");
        ASSERT_EQ(json_array_size(list), 2);
        ASSERT_EQ(json_integer_value(json_array_get(list, 0)), 0);
        ASSERT_EQ(json_integer_value(json_array_get(list, 1)), 1);
        ASSERT_STREQ(json_str(json_object_get(res, "input"), "who"), "first");
        json_decref(res);
        /* Closed: a new run starts (AllowDuplicate), signalled first. */
        sig = ASSERT_NOT_NULL(dur_args("i", 2));
        ASSERT_EQ(dur_client_signal_with_start(c, "Collect", &o, NULL, "add", sig, &r4), 0);
        ASSERT_STRNE(r1, r4);
        dur_buf_free(sig);
        ASSERT_DUR_OK(c, dur_client_signal(c, "s", NULL, "done", NULL));
        res = core_result(c, "s", NULL, NULL);
        ASSERT_EQ(json_array_size(json_object_get(res, "signals")), 1);
        ASSERT_EQ(json_integer_value(json_array_get(json_object_get(res, "signals"), 0)), 2);
        json_decref(res);
        /* RejectDuplicate: no run is started and nothing is signalled. */
        o.id_reuse_policy = DUR_ID_REUSE_REJECT_DUPLICATE;
        ASSERT_ERROR(dur_client_signal_with_start(c, "Collect", &o, NULL, "add", NULL, NULL),
                     -EEXIST);
        assert_run_status(c, "s", r4, "Completed");

        dur_buf_free(in);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* durablectl: the policy flags, their bad values, and signal-with-start. */
static int execute(dur_client *c, const char *type, const char *id, const char *input,
                   dur_start_opts *opts, uint64_t timeout, dur_outcome *ret) {
        dur_start_opts none = {};
        dur_buf *in = input ? ASSERT_NOT_NULL(dur_buf_from_json(input)) : NULL;
        int r;

        if (!opts)
                opts = &none;
        opts->workflow_id = id;
        opts->task_queue = CORE_QUEUE;
        r = dur_client_execute(c, type, opts, in, timeout, ret);
        dur_buf_free(in);
        return r;
}

/* dur_client_execute(): StartWorkflow with "wait", one round trip from the start to the outcome,
 * and what a start that waits answers in each case a policy or the workflow makes. */
TEST(execute) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_start_opts o;
        dur_outcome out = {};
        dur_client *c;
        json_t *res, *a, *w;
        int fd;

        test_daemon_start(&d, NULL);
        core_worker_spawn(&worker);
        c = client_connect();

        /* The outcome of the run it started. */
        ASSERT_EQ(execute(c, "Quick", "x", "{\"v\": 7}", NULL, 0, &out), 0);
        ASSERT_STREQ(out.status, "Completed");
        res = outcome_result(&out);
        ASSERT_EQ(json_integer_value(json_object_get(res, "v")), 7);
        json_decref(res);
        dur_outcome_done(&out);

        /* A failure is the run's, DUR_FAILED as from dur_client_result(). */
        ASSERT_EQ(execute(c, "Fail", "x-fail", NULL, NULL, 0, &out), DUR_FAILED);
        ASSERT_STREQ(out.status, "Failed");
        ASSERT_NOT_NULL(out.failure);
        ASSERT_STREQ(dur_failure_type(out.failure), "Boom");
        dur_outcome_done(&out);

        /* Continue-as-new is followed to the last run of the chain. */
        ASSERT_EQ(execute(c, "Counter", "x-chain", "{\"n\": 0, \"max\": 2}", NULL, 0, &out), 0);
        res = outcome_result(&out);
        ASSERT_EQ(json_integer_value(json_object_get(res, "n")), 2);
        ASSERT_STREQ(json_string_value(json_object_get(res, "run_id")), out.run_id);
        json_decref(res);
        dur_outcome_done(&out);

        /* A request_id that matches answers with the closed run's outcome at once. */
        o = (dur_start_opts){ .request_id = "req-1" };
        ASSERT_EQ(execute(c, "Quick", "x-req", "1", &o, 0, &out), 0);
        dur_outcome_done(&out);
        o = (dur_start_opts){ .request_id = "req-1" };
        ASSERT_EQ(execute(c, "Quick", "x-req", "2", &o, 0, &out), 0);
        res = outcome_result(&out);
        ASSERT_EQ(json_integer_value(res), 1); /* the first run's, not a new one */
        json_decref(res);
        dur_outcome_done(&out);

        /* A refused start is the start's error, and nothing waits. */
        o = (dur_start_opts){ .id_reuse_policy = DUR_ID_REUSE_REJECT_DUPLICATE };
        ASSERT_ERROR(execute(c, "Quick", "x", "1", &o, 0, &out), -EEXIST);
        ASSERT_STREQ(dur_client_error_code(c), "already_started");

        /* A wait that runs out: -ETIMEDOUT, the run goes on and can be waited for again. */
        ASSERT_ERROR(execute(c, "Collect", "x-slow", NULL, NULL, 100 * 1000, &out),
                     -ETIMEDOUT);
        ASSERT_STREQ(dur_client_error_code(c), "deadline_exceeded");
        assert_run_status(c, "x-slow", NULL, "Running");

        /* A queued start (Queue) waits for the run it queued, which starts when the running one
         * closes: sent on one connection before the signal that lets the running one finish, so
         * that the daemon queues it first. The signal's answer comes first, then the start's,
         * with the outcome of the new run. */
        fd = raw_connect(&d);
        raw_send(fd, "{\"op\": \"StartWorkflow\", \"id\": 1, \"workflow_id\": \"x-slow\", "
                     "\"workflow_type\": \"Quick\", \"task_queue\": \"" CORE_QUEUE "\", "
                     "\"id_conflict_policy\": \"Queue\", \"wait\": true}");
        raw_send(fd, "{\"op\": \"SignalWorkflow\", \"id\": 2, \"workflow_id\": \"x-slow\", "
                     "\"signal_name\": \"done\"}");
        a = raw_answer(fd);
        ASSERT_EQ(json_integer_value(json_object_get(a, "id")), 2);
        ASSERT_STREQ(raw_code(a), "ok");
        json_decref(a);
        a = raw_answer(fd);
        ASSERT_EQ(json_integer_value(json_object_get(a, "id")), 1);
        ASSERT_STREQ(raw_code(a), "ok");
        w = json_object_get(a, "workflow");
        ASSERT_STREQ(json_string_value(json_object_get(w, "status")), "Completed");
        ASSERT_STREQ(json_string_value(json_object_get(w, "workflow_type")), "Quick");
        json_decref(a);
        (void) close(fd);

        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

TEST(cli) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        const char *ctl;
        TestRun run = {};
        json_t *j;

        test_daemon_start(&d, NULL);
        ctl = test_bin("DURABLECTL_BIN");
        ASSERT_EQ(test_run(&run,
                           STRV(ctl, "start", "Collect", "--id", "k", "--task-queue", CORE_QUEUE,
                                "--id-reuse-policy", "Never"),
                           NULL),
                  2);
        ASSERT_STR_CONTAINS(run.err, "--id-reuse-policy");
        ASSERT_STR_CONTAINS(run.err, "RejectDuplicate");
        test_run_free(&run);
        ASSERT_EQ(test_run(&run,
                           STRV(ctl, "start", "Collect", "--id", "k", "--task-queue", CORE_QUEUE,
                                "--id-conflict-policy", "Never"),
                           NULL),
                  2);
        ASSERT_STR_CONTAINS(run.err, "UseExisting");
        test_run_free(&run);

        ASSERT_EQ(test_run(&run,
                           STRV(ctl, "--json", "signal-with-start", "Collect", "add", "--id", "k",
                                "--task-queue", CORE_QUEUE, "--signal-input", "{\"n\": 5}"),
                           NULL),
                  0);
        j = ASSERT_NOT_NULL(json_loads(run.out, 0, NULL));
        ASSERT_TRUE(json_is_true(json_object_get(j, "started")));
        json_decref(j);
        test_run_free(&run);
        ASSERT_EQ(test_run(&run,
                           STRV(ctl, "--json", "start", "Collect", "--id", "k", "--task-queue",
                                CORE_QUEUE, "--id-conflict-policy", "useexisting"),
                           NULL),
                  0);
        j = ASSERT_NOT_NULL(json_loads(run.out, 0, NULL));
        ASSERT_TRUE(json_is_false(json_object_get(j, "started")));
        json_decref(j);
        test_run_free(&run);
        ASSERT_EQ(test_run(&run,
                           STRV(ctl, "start", "Collect", "--id", "k", "--task-queue", CORE_QUEUE),
                           NULL),
                  1);
        ASSERT_STR_CONTAINS(run.err, "already running");
        test_run_free(&run);

        core_worker_spawn(&worker);
        ASSERT_EQ(test_run(&run, STRV(ctl, "signal", "k", "done"), NULL), 0);
        test_run_free(&run);
        ASSERT_EQ(test_run(&run, STRV(ctl, "--json", "result", "k", "--wait"), NULL), 0);
        ASSERT_STR_CONTAINS(run.out, "\"n\": 5");
        test_run_free(&run);
        ASSERT_EQ(test_run(&run,
                           STRV(ctl, "start", "Collect", "--id", "k", "--task-queue", CORE_QUEUE,
                                "--id-reuse-policy", "RejectDuplicate"),
                           NULL),
                  1);
        ASSERT_STR_CONTAINS(run.err, "RejectDuplicate");
        test_run_free(&run);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

DEFINE_TEST_MAIN();
