/* Workflow updates (SEMANTICS.md b.7) through the real daemon, test-worker's UpdateWorkflow and
 * the public C API: results, validator rejections that write nothing, blocking handlers, handler
 * failures, dedup by update id, wait stages, limits, update-with-start, crashes of the daemon and
 * of the worker, and bad requests. */

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/worker-util.h"

static json_t *result_json(const dur_buf *b) {
        _cleanup_free_ char *text = ASSERT_NOT_NULL(dur_buf_to_json(b));
        json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);

        return ASSERT_NOT_NULL(j);
}

/* The "total" of an update's result {"total": N}. */
static int64_t outcome_total(const dur_update_outcome *o) {
        json_t *j;
        int64_t t;

        ASSERT_NOT_NULL(o->result);
        j = result_json(o->result);
        t = json_integer_value(json_object_get(j, "total"));
        json_decref(j);
        return t;
}

/* Update @name with the JSON @args; returns dur_client_update()'s value. */
static int update(dur_client *c,
                  const char *id,
                  const char *name,
                  const char *args,
                  const dur_update_opts *opts,
                  dur_update_outcome *ret) {
        dur_buf *b = args ? ASSERT_NOT_NULL(dur_buf_from_json(args)) : NULL;
        int r;

        r = dur_client_update(c, id, name, b, opts, ret);
        dur_buf_free(b);
        return r;
}

/* Update "add" {"n": @n}: the total it returns. */
static int64_t add(dur_client *c, const char *id, int n) {
        dur_update_outcome o = {};
        char args[64];
        int64_t t;

        (void) snprintf(args, sizeof(args), "{\"n\": %d}", n);
        ASSERT_DUR_OK(c, update(c, id, "add", args, NULL, &o));
        ASSERT_STREQ(o.stage, "Completed");
        t = outcome_total(&o);
        dur_update_outcome_done(&o);
        return t;
}

/* Ends the run with signal "done", checks its result and lints every history of the daemon
 * (VerifyHistory: the update rules of proto/history-lint.h). */
static void finish(dur_client *c, const char *id, int64_t total) {
        json_t *out, *req, *v;
        dur_outcome o = {};
        int r;

        ASSERT_DUR_OK(c, dur_client_signal(c, id, NULL, "done", NULL));
        ASSERT_EQ(wait_outcome(c, id, &o), 0);
        out = outcome_result(&o);
        ASSERT_EQ(json_integer_value(json_object_get(out, "total")), total);
        json_decref(out);
        dur_outcome_done(&o);

        req = ASSERT_NOT_NULL(json_pack("{s:s}", "op", "VerifyHistory"));
        v = call_json(c, req, &r);
        json_decref(req);
        ASSERT_NOT_NULL(v);
        ASSERT_GT(json_integer_value(json_object_get(v, "runs")), 0);
        if (json_integer_value(json_object_get(v, "problem_count")) != 0) {
                _cleanup_free_ char *text = json_dumps(v, JSON_COMPACT);
                test_fail(__FILE__, __LINE__, "history problems: %s", text);
        }
        json_decref(v);
}

static size_t history_len(dur_client *c, const char *id) {
        json_t *events = history_get(c, id);
        size_t n = json_array_size(events);

        json_decref(events);
        return n;
}

/* Waits (with GetHistory's long poll, no sleeps) until the run has an event of @type. */
static void wait_for_event(dur_client *c, const char *id, const char *type) {
        for (;;) {
                json_t *events = history_get(c, id), *req, *a;
                size_t n = json_array_size(events), found = history_count(events, type);
                int r;

                json_decref(events);
                if (found > 0)
                        return;
                req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:b, s:I}", "op", "GetHistory",
                                                "workflow_id", id, "wait", 1, "from_event_id",
                                                (json_int_t) n + 1));
                a = call_json(c, req, &r);
                json_decref(req);
                ASSERT_NOT_NULL(a);
                json_decref(a);
        }
}

/* A raw request; returns the error (0 on success) and frees the answer. */
static int raw(dur_client *c, json_t *req) {
        json_t *a;
        int r;

        a = call_json(c, ASSERT_NOT_NULL(req), &r);
        json_decref(req);
        json_decref(a);
        return r;
}

/* Update events of @events: each Completed names its Accepted, with the same update id. */
static void assert_update_events(const json_t *events, size_t accepted, size_t completed) {
        size_t i;
        json_t *ev;

        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "WorkflowExecutionUpdateAccepted"), accepted);
        ASSERT_EQ(history_count(events, "WorkflowExecutionUpdateCompleted"), completed);
        ASSERT_EQ(history_count(events, "WorkflowExecutionUpdateRejected"), 0u);
        json_array_foreach(events, i, ev) {
                json_t *acc;

                if (!streq(ev_type(ev), "WorkflowExecutionUpdateCompleted"))
                        continue;
                acc = json_array_get(events, ev_uint(ev, "accepted_event_id") - 1);
                ASSERT_STREQ(ev_type(acc), "WorkflowExecutionUpdateAccepted");
                ASSERT_STREQ(ev_str(acc, "update_id"), ev_str(ev, "update_id"));
                ASSERT_LT(ev_id(acc), ev_id(ev));
        }
}

TEST(update_returns_handler_result) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_outcome o = {};
        json_t *events, *acc;
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "upd", NULL, NULL, 0);

        ASSERT_DUR_OK(c, update(c, "upd", "add", "{\"n\": 5}", NULL, &o));
        ASSERT_STREQ(o.stage, "Completed");
        ASSERT_EQ(outcome_total(&o), 5);
        ASSERT_NULL(o.failure);
        ASSERT_EQ(strlen(o.update_id), 36u); /* the default update id: a fresh UUID */
        ASSERT_EQ(add(c, "upd", 2), 7);
        finish(c, "upd", 7);

        events = history_get(c, "upd");
        assert_update_events(events, 2, 2);
        acc = history_must(events, "WorkflowExecutionUpdateAccepted");
        ASSERT_STREQ(ev_str(acc, "update_id"), o.update_id);
        ASSERT_STREQ(ev_str(acc, "update_name"), "add");
        /* Accepted when the worker answered, but caused by the caller. */
        ASSERT_EQ((uint64_t) json_integer_value(json_object_get(acc, "uid")), (uint64_t) getuid());
        ASSERT_EQ(json_integer_value(json_object_get(ev_attr(acc, "input"), "n")), 5);
        ASSERT_EQ(
                json_integer_value(json_object_get(
                        ev_attr(history_must(events, "WorkflowExecutionUpdateCompleted"), "result"),
                        "total")),
                5);
        json_decref(events);
        dur_update_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A validator's rejection is the caller's error and leaves no trace in the history; so is an
 * update the workflow has no handler for. */
TEST(validator_rejection_writes_nothing) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_outcome o = {};
        dur_client *c;
        json_t *events;
        size_t before;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "rej", NULL, NULL, 0);
        ASSERT_EQ(add(c, "rej", 1), 1);
        before = history_len(c, "rej");

        ASSERT_EQ(update(c, "rej", "add", "{\"n\": -3}", NULL, &o), DUR_REJECTED);
        ASSERT_STREQ(dur_client_error_code(c), "update_rejected");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "n must be a number >= 0");
        ASSERT_NULL(o.update_id);
        ASSERT_EQ(update(c, "rej", "add", NULL, NULL, &o), DUR_REJECTED);
        ASSERT_EQ(update(c, "rej", "nope", NULL, NULL, &o), DUR_REJECTED);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "unknown update 'nope'");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "slow_add"); /* the known ones */
        ASSERT_EQ(update(c, "rej", "sleepy", NULL, NULL, &o), DUR_REJECTED);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "a validator must not block");
        ASSERT_EQ(history_len(c, "rej"), before);

        /* A rejected update id was never accepted: it can be asked for, and used again. */
        ASSERT_ERROR(
                update(c, "rej", "add", "{\"n\": -1}", &(dur_update_opts){ .update_id = "x" }, &o),
                DUR_REJECTED);
        ASSERT_ERROR(dur_client_update_result(c, "rej", "x", NULL, &o), -ENOENT);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");
        ASSERT_DUR_OK(c, update(c, "rej", "add", "{\"n\": 2}",
                                &(dur_update_opts){ .update_id = "x" }, &o));
        ASSERT_EQ(outcome_total(&o), 3);
        dur_update_outcome_done(&o);
        finish(c, "rej", 3);

        events = history_get(c, "rej");
        assert_update_events(events, 2, 2);
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* Handlers block on activities and timers before they answer. */
TEST(handler_blocks_on_activity_and_timer) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_outcome o = {};
        json_t *events, *acc, *done;
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "blk", NULL, NULL, 0);

        ASSERT_DUR_OK(c, update(c, "blk", "activity", "{\"n\": 3}", NULL, &o));
        ASSERT_EQ(outcome_total(&o), 3);
        dur_update_outcome_done(&o);
        ASSERT_DUR_OK(c, update(c, "blk", "slow_add", "{\"n\": 4, \"ms\": 50}", NULL, &o));
        ASSERT_EQ(outcome_total(&o), 7);
        dur_update_outcome_done(&o);
        finish(c, "blk", 7);

        events = history_get(c, "blk");
        assert_update_events(events, 2, 2);
        /* The activity ran between the acceptance and the completion of the first update. */
        acc = history_must(events, "WorkflowExecutionUpdateAccepted");
        done = history_must(events, "WorkflowExecutionUpdateCompleted");
        ASSERT_GT(ev_id(history_scheduled(events, "echo")), ev_id(acc));
        ASSERT_LT(ev_id(history_scheduled(events, "echo")), ev_id(done));
        ASSERT_GT(ev_id(history_must(events, "TimerFired")), ev_id(done));
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* A failing handler fails its update, which the caller gets back; the run goes on. */
TEST(handler_failure_returns_to_caller) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_outcome o = {};
        dur_client *c;
        json_t *events, *f;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "fl", NULL, NULL, 0);

        ASSERT_EQ(update(c, "fl", "fail", NULL, NULL, &o), DUR_FAILED);
        ASSERT_STREQ(o.stage, "Completed");
        ASSERT_NOT_NULL(o.failure);
        ASSERT_STREQ(dur_failure_type(o.failure), "UpdateBroke");
        ASSERT_STREQ(dur_failure_message(o.failure), "this update always fails");
        ASSERT_NULL(o.result);
        /* Asked again by its id, the outcome is the same. */
        {
                dur_update_outcome again = {};

                ASSERT_EQ(dur_client_update_result(c, "fl", o.update_id, NULL, &again), DUR_FAILED);
                ASSERT_STREQ(dur_failure_type(again.failure), "UpdateBroke");
                dur_update_outcome_done(&again);
        }
        dur_update_outcome_done(&o);
        ASSERT_EQ(add(c, "fl", 6), 6);
        finish(c, "fl", 6);

        events = history_get(c, "fl");
        assert_update_events(events, 2, 2);
        f = ev_attr(history_must(events, "WorkflowExecutionUpdateCompleted"), "failure");
        ASSERT_STREQ(json_str(f, "type"), "UpdateBroke");
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* The same update id twice: one Accepted event, the same outcome. */
TEST(dedup_by_update_id) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_opts opts = { .update_id = "once" };
        dur_update_outcome o = {};
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "dd", NULL, NULL, 0);

        ASSERT_DUR_OK(c, update(c, "dd", "add", "{\"n\": 4}", &opts, &o));
        ASSERT_EQ(outcome_total(&o), 4);
        ASSERT_STREQ(o.update_id, "once");
        dur_update_outcome_done(&o);
        /* Re-sent (even with other arguments): attached to the first, not applied again. */
        ASSERT_DUR_OK(c, update(c, "dd", "add", "{\"n\": 100}", &opts, &o));
        ASSERT_EQ(outcome_total(&o), 4);
        dur_update_outcome_done(&o);
        ASSERT_EQ(add(c, "dd", 1), 5);
        finish(c, "dd", 5);

        /* After the run closed, the update id still answers with its outcome. */
        ASSERT_DUR_OK(c, update(c, "dd", "add", "{\"n\": 4}", &opts, &o));
        ASSERT_EQ(outcome_total(&o), 4);
        dur_update_outcome_done(&o);

        events = history_get(c, "dd");
        assert_update_events(events, 2, 2);
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* Wait stage Accepted answers before the handler finished; its result comes by update id. */
TEST(wait_stage_accepted_then_result) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_opts accepted = { .update_id = "later",
                                     .wait_for_stage = DUR_UPDATE_STAGE_ACCEPTED };
        dur_update_outcome o = {};
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "ws", NULL, NULL, 0);

        /* "forever" waits for signal "done": it cannot have completed when the answer comes. */
        ASSERT_DUR_OK(c, update(c, "ws", "forever", NULL, &accepted, &o));
        ASSERT_STREQ(o.stage, "Accepted");
        ASSERT_NULL(o.result);
        ASSERT_NULL(o.failure);
        dur_update_outcome_done(&o);
        ASSERT_DUR_OK(c, dur_client_update_result(c, "ws", "later", &accepted, &o));
        ASSERT_STREQ(o.stage, "Accepted");
        dur_update_outcome_done(&o);
        ASSERT_EQ(add(c, "ws", 8), 8);

        ASSERT_DUR_OK(c, dur_client_signal(c, "ws", NULL, "done", NULL));
        ASSERT_DUR_OK(c, dur_client_update_result(c, "ws", "later", NULL, &o));
        ASSERT_STREQ(o.stage, "Completed");
        ASSERT_EQ(outcome_total(&o), 8);
        dur_update_outcome_done(&o);

        ASSERT_ERROR(dur_client_update_result(c, "ws", "never-sent", NULL, &o), -ENOENT);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "never-sent");
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* Updates need a running run the caller may see. */
TEST(closed_and_unknown_runs) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_outcome o = {};
        dur_client *c;
        size_t before;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();

        ASSERT_ERROR(update(c, "no-such-workflow", "add", "{\"n\": 1}", NULL, &o), -ENOENT);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");
        ASSERT_ERROR(dur_client_update_result(c, "no-such-workflow", "u", NULL, &o), -ENOENT);

        start_json(c, "UpdateWorkflow", "cl", NULL, NULL, 0);
        finish(c, "cl", 0);
        before = history_len(c, "cl");
        ASSERT_ERROR(update(c, "cl", "add", "{\"n\": 1}", NULL, &o), -ENOENT);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "closed (Completed)");
        ASSERT_EQ(history_len(c, "cl"), before);
        ASSERT_NULL(o.update_id);

        /* No worker polls the run's queue: the validation times out and nothing is recorded. */
        start_json(c, "UpdateWorkflow", "idle", "nobody-polls", NULL, 0);
        before = history_len(c, "idle");
        ASSERT_ERROR(update(c, "idle", "add", "{\"n\": 1}",
                            &(dur_update_opts){ .timeout = 100 * DUR_MSEC }, &o),
                     -ETIMEDOUT);
        ASSERT_STREQ(dur_client_error_code(c), "deadline_exceeded");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "nothing was recorded");
        ASSERT_EQ(history_len(c, "idle"), before);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* An accepted update still running when its run closes: its caller learns it never completes. */
TEST(run_closes_before_update_completes) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_opts accepted = { .update_id = "orphan",
                                     .wait_for_stage = DUR_UPDATE_STAGE_ACCEPTED };
        dur_update_outcome o = {};
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "orph", NULL, NULL, 0);
        ASSERT_DUR_OK(c,
                      update(c, "orph", "slow_add", "{\"n\": 1, \"ms\": 3600000}", &accepted, &o));
        dur_update_outcome_done(&o);
        ASSERT_DUR_OK(c, dur_client_terminate(c, "orph", NULL, "stop"));
        ASSERT_ERROR(dur_client_update_result(c, "orph", "orphan", NULL, &o), -ENOENT);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "before update 'orphan' completed");
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* In flight and per run, as Temporal's maxInFlightUpdates and maxTotalUpdates, here lowered
 * with the daemon's options. */
TEST(limits) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_opts accepted = { .wait_for_stage = DUR_UPDATE_STAGE_ACCEPTED };
        dur_update_outcome o = {};
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--max-updates-in-flight=2",
                                                              "--max-updates-per-run=4") });
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "lim", NULL, NULL, 0);

        ASSERT_DUR_OK(c, update(c, "lim", "forever", NULL, &accepted, &o));
        dur_update_outcome_done(&o);
        ASSERT_DUR_OK(c, update(c, "lim", "forever", NULL, &accepted, &o));
        dur_update_outcome_done(&o);
        ASSERT_ERROR(update(c, "lim", "add", "{\"n\": 1}", NULL, &o), -ENOSPC);
        ASSERT_STREQ(dur_client_error_code(c), "resource_exhausted");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "--max-updates-in-flight");

        /* The two finish with the run's "done"; a fresh run gets the per-run limit. */
        finish(c, "lim", 0);
        start_json(c, "UpdateWorkflow", "lim2", NULL, NULL, 0);
        for (int i = 1; i <= 4; i++)
                ASSERT_EQ(add(c, "lim2", 1), i);
        ASSERT_ERROR(update(c, "lim2", "add", "{\"n\": 1}", NULL, &o), -ENOSPC);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "--max-updates-per-run");
        finish(c, "lim2", 4);

        events = history_get(c, "lim");
        assert_update_events(events, 2, 2);
        json_decref(events);
        events = history_get(c, "lim2");
        assert_update_events(events, 4, 4);
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

TEST(update_with_start) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_start_opts start = { .workflow_id = "uws",
                                 .task_queue = TEST_QUEUE,
                                 .id_conflict_policy = DUR_ID_CONFLICT_USE_EXISTING };
        dur_update_outcome o = {};
        _cleanup_free_ char *first_run = NULL;
        dur_buf *args;
        dur_client *c;
        json_t *events;
        size_t before;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();

        /* Starts the run, and the update reaches it. */
        args = ASSERT_NOT_NULL(dur_args("{s:i}", "n", 2));
        ASSERT_DUR_OK(c, dur_client_update_with_start(c, "UpdateWorkflow", &start, NULL, "add",
                                                      args, NULL, &o));
        ASSERT_EQ(outcome_total(&o), 2);
        first_run = strdup(o.run_id);
        dur_update_outcome_done(&o);
        /* UseExisting: the running run gets the update. */
        ASSERT_DUR_OK(c, dur_client_update_with_start(c, "UpdateWorkflow", &start, NULL, "add",
                                                      args, NULL, &o));
        ASSERT_EQ(outcome_total(&o), 4);
        ASSERT_STREQ(o.run_id, first_run);
        dur_update_outcome_done(&o);

        /* Fail: already_started while it runs, and nothing changes. */
        before = history_len(c, "uws");
        start.id_conflict_policy = DUR_ID_CONFLICT_FAIL;
        ASSERT_ERROR(dur_client_update_with_start(c, "UpdateWorkflow", &start, NULL, "add", args,
                                                  NULL, &o),
                     -EEXIST);
        ASSERT_STREQ(dur_client_error_code(c), "already_started");
        /* Without a conflict policy (or with TerminateExisting): invalid_argument. */
        start.id_conflict_policy = DUR_ID_CONFLICT_DEFAULT;
        ASSERT_ERROR(dur_client_update_with_start(c, "UpdateWorkflow", &start, NULL, "add", args,
                                                  NULL, &o),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "id_conflict_policy");
        start.id_conflict_policy = DUR_ID_CONFLICT_TERMINATE_EXISTING;
        ASSERT_ERROR(dur_client_update_with_start(c, "UpdateWorkflow", &start, NULL, "add", args,
                                                  NULL, &o),
                     -EINVAL);
        ASSERT_EQ(history_len(c, "uws"), before);
        finish(c, "uws", 4);

        /* Fail starts a new run when none runs. */
        start.id_conflict_policy = DUR_ID_CONFLICT_FAIL;
        ASSERT_DUR_OK(c, dur_client_update_with_start(c, "UpdateWorkflow", &start, NULL, "add",
                                                      args, NULL, &o));
        ASSERT_EQ(outcome_total(&o), 2);
        ASSERT_STRNE(o.run_id, first_run);
        dur_update_outcome_done(&o);
        finish(c, "uws", 2);

        events = history_get(c, "uws");
        assert_update_events(events, 1, 1);
        json_decref(events);

        /* A rejected update leaves the run it started running, as Temporal's. */
        {
                _cleanup_free_ char *status = NULL;
                dur_buf *neg = ASSERT_NOT_NULL(dur_args("{s:i}", "n", -1));

                start.workflow_id = "uws-rejected";
                ASSERT_EQ(dur_client_update_with_start(c, "UpdateWorkflow", &start, NULL, "add",
                                                       neg, NULL, &o),
                          DUR_REJECTED);
                dur_buf_free(neg);
                status = describe_status(c, "uws-rejected");
                ASSERT_STREQ(status, "Running");
                finish(c, "uws-rejected", 0);
        }
        dur_buf_free(args);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* An accepted update is in the history: a daemon SIGKILLed and restarted completes it, and the
 * caller gets its result by update id. */
TEST(accepted_update_survives_daemon_sigkill) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_update_opts accepted = { .update_id = "durable",
                                     .wait_for_stage = DUR_UPDATE_STAGE_ACCEPTED };
        dur_update_outcome o = {};
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "crash", NULL, NULL, 0);
        ASSERT_DUR_OK(c, update(c, "crash", "slow_add", "{\"n\": 7, \"ms\": 500}", &accepted, &o));
        ASSERT_STREQ(o.stage, "Accepted");
        dur_update_outcome_done(&o);
        dur_client_free(c);

        ASSERT_EQ(test_daemon_kill(&d, SIGKILL), SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        ASSERT_DUR_OK(c, dur_client_update_result(c, "crash", "durable", NULL, &o));
        ASSERT_STREQ(o.stage, "Completed");
        ASSERT_EQ(outcome_total(&o), 7);
        dur_update_outcome_done(&o);
        finish(c, "crash", 7);

        events = history_get(c, "crash");
        assert_update_events(events, 1, 1);
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

/* The daemon dies inside the transaction that accepts an update (kill point event-insert at the
 * Accepted event: events 1-4 are the start and the first workflow task): the caller was never
 * told, the update is not in the history (durabled-protocol(7): a crash before acceptance may
 * drop an update never acknowledged), and sending it again with the same update id applies it,
 * once. */
TEST(unacknowledged_update_lost_in_crash_is_sent_again) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {}, worker2 = {};
        dur_update_opts opts = { .update_id = "again" };
        const char *const env[] = { "DURABLED_KILL_AT=event-insert:5", NULL };
        dur_update_outcome o = {};
        dur_client *c;
        json_t *events;
        int status;

        test_daemon_start(&d, &(TestDaemonOpts){ .env = env });
        c = client_connect();
        start_json(c, "UpdateWorkflow", "lost", NULL, NULL, 0);
        test_worker_spawn(&worker, NULL, NULL);
        ASSERT_LT(update(c, "lost", "add", "{\"n\": 1}", &opts, &o), 0);
        ASSERT_NULL(o.update_id);
        dur_client_free(c);
        status = test_daemon_wait_exit(&d, 0);
        ASSERT_TRUE(WIFSIGNALED(status));
        ASSERT_EQ(WTERMSIG(status), SIGKILL);
        test_process_free(&worker);

        d.opts.env = NULL;
        test_daemon_restart(&d);
        c = client_connect();
        events = history_get(c, "lost");
        ASSERT_EQ(json_array_size(events), 4u);
        ASSERT_EQ(history_count(events, "WorkflowExecutionUpdateAccepted"), 0u);
        json_decref(events);
        test_worker_spawn(&worker2, NULL, NULL);
        ASSERT_DUR_OK(c, update(c, "lost", "add", "{\"n\": 1}", &opts, &o));
        ASSERT_EQ(outcome_total(&o), 1);
        dur_update_outcome_done(&o);
        ASSERT_DUR_OK(c, update(c, "lost", "add", "{\"n\": 1}", &opts, &o));
        ASSERT_EQ(outcome_total(&o), 1);
        dur_update_outcome_done(&o);
        finish(c, "lost", 1);
        events = history_get(c, "lost");
        assert_update_events(events, 1, 1);
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker2, SIGTERM), 0);
}

/* The worker dies while the handler waits on its timer: a new worker replays the update from its
 * Accepted event and completes it once. */
TEST(accepted_update_survives_worker_sigkill) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {}, worker2 = {};
        dur_update_opts accepted = { .update_id = "replayed",
                                     .wait_for_stage = DUR_UPDATE_STAGE_ACCEPTED };
        dur_update_outcome o = {};
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "wcrash", NULL, NULL, 0);
        ASSERT_DUR_OK(c, update(c, "wcrash", "slow_add", "{\"n\": 9, \"ms\": 300}", &accepted, &o));
        dur_update_outcome_done(&o);
        wait_for_event(c, "wcrash", "TimerStarted");
        ASSERT_EQ(test_process_kill(&worker, SIGKILL), SIGKILL);

        test_worker_spawn(&worker2, NULL, NULL);
        ASSERT_DUR_OK(c, dur_client_update_result(c, "wcrash", "replayed", NULL, &o));
        ASSERT_EQ(outcome_total(&o), 9);
        dur_update_outcome_done(&o);
        finish(c, "wcrash", 9);

        events = history_get(c, "wcrash");
        assert_update_events(events, 1, 1);
        ASSERT_EQ(history_count(events, "TimerStarted"), 1u);
        json_decref(events);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker2, SIGTERM), 0);
}

/* Garbage in the request: invalid_argument naming the field, and nothing changes. */
TEST(bad_arguments) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *long_name = NULL;
        dur_update_outcome o = {};
        dur_client *c;
        size_t before;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        start_json(c, "UpdateWorkflow", "bad", NULL, NULL, 0);
        ASSERT_EQ(add(c, "bad", 1), 1);
        before = history_len(c, "bad");

        ASSERT_EQ(raw(c, json_pack("{s:s, s:s}", "op", "UpdateWorkflow", "workflow_id", "bad")),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "update_name");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:i}", "op", "UpdateWorkflow", "workflow_id", "bad",
                                   "update_name", 7)),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "update_name");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s}", "op", "UpdateWorkflow", "workflow_id", "bad",
                                   "update_name", "")),
                  -EINVAL);
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s}", "op", "UpdateWorkflow", "workflow_id",
                                   "bad", "update_name", "add", "update_id", "")),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "update_id");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s}", "op", "UpdateWorkflow", "workflow_id",
                                   "bad", "update_name", "add", "wait_for_stage", "Admitted")),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "wait_for_stage");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:b}", "op", "UpdateWorkflow", "workflow_id",
                                   "bad", "update_name", "add", "wait_for_stage", 1)),
                  -EINVAL);
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s}", "op", "UpdateWorkflow", "workflow_id",
                                   "bad", "update_name", "add", "input", "not a payload")),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "input");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:i}", "op", "UpdateWorkflow", "workflow_id",
                                   "bad", "update_name", "add", "identity", 5)),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "identity");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s}", "op", "UpdateWorkflow", "workflow_id",
                                   "bad", "update_name", "add", "timeout_usec", "soon")),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "timeout_usec");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s}", "op", "UpdateWorkflow", "workflow_id",
                                   "bad", "update_name", "add", "run_id", "not-a-run")),
                  -ENOENT);
        long_name = ASSERT_NOT_NULL(malloc(1002));
        memset(long_name, 'x', 1001);
        long_name[1001] = 0;
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s}", "op", "UpdateWorkflow", "workflow_id", "bad",
                                   "update_name", long_name)),
                  -EINVAL);
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s}", "op", "PollWorkflowUpdate", "workflow_id", "bad")),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "update_id");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s}", "op", "PollWorkflowUpdate",
                                   "workflow_id", "bad", "update_id", "u", "wait", "yes")),
                  -EINVAL);
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "op", "UpdateWithStart",
                                   "workflow_id", "bad", "workflow_type", "UpdateWorkflow",
                                   "task_queue", TEST_QUEUE, "update_name", "add", "run_id",
                                   "0190e5a0-0000-7000-8000-000000000000", "id_conflict_policy",
                                   "UseExisting")),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "run_id");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "op", "UpdateWithStart",
                                   "workflow_id", "bad", "workflow_type", "UpdateWorkflow",
                                   "task_queue", TEST_QUEUE, "update_name", "add",
                                   "id_conflict_policy", "Sometimes")),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "id_conflict_policy");
        ASSERT_EQ(raw(c, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "op", "UpdateWithStart",
                                   "workflow_id", "bad", "workflow_type", "UpdateWorkflow",
                                   "task_queue", TEST_QUEUE, "update_name", "add",
                                   "id_conflict_policy", "UseExisting", "update_input", 3)),
                  -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "update_input");
        /* The C API refuses what it can see is wrong before sending anything. */
        ASSERT_ERROR(update(c, "bad", "", NULL, NULL, &o), -EINVAL);
        ASSERT_ERROR(update(c, "bad", "add", NULL,
                            &(dur_update_opts){ .wait_for_stage = (dur_update_stage) 1 }, &o),
                     -EINVAL);
        ASSERT_EQ(history_len(c, "bad"), before);
        finish(c, "bad", 1);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
}

DEFINE_TEST_MAIN();
