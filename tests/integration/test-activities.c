/* Activity retries and timeouts through the real daemon and libdurable's worker (test-worker's
 * ActivityWorkflow), checked on the outcome and event by event on the history (SEMANTICS.md b.1,
 * b.2; doc/protocol.md "Events"). Timeouts are 100-500 ms so that the file runs in seconds; no
 * assertion depends on how long anything took, except that a retry never comes before its
 * backoff (a lower bound the daemon guarantees). */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/integration/worker-util.h"

typedef struct Fixture {
        TestDaemon daemon;
        TestProcess worker;
        dur_client *client;
} Fixture;

static void fixture_start(Fixture *f) {
        test_daemon_start(&f->daemon, NULL);
        test_worker_spawn(&f->worker, NULL, NULL);
        f->client = client_connect();
}

static void fixture_done(Fixture *f) {
        f->client = dur_client_free(f->client);
        /* SIGKILL: a worker stopping gracefully would finish the long sleeps in hand first. */
        test_process_free(&f->worker);
        test_daemon_free(&f->daemon);
}

/* Runs ActivityWorkflow with @input; the outcome in *o, the checked history in *ret_events. */
static int
run_activity(Fixture *f, const char *id, const char *input, dur_outcome *o, json_t **ret_events) {
        int r;

        start_json(f->client, "ActivityWorkflow", id, NULL, input, 0);
        r = wait_outcome(f->client, id, o);
        *ret_events = history_get(f->client, id);
        history_assert_invariants(*ret_events);
        return r;
}

#define SUCCESS_HISTORY                                                                  \
        "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted",      \
                "WorkflowTaskCompleted", "ActivityTaskScheduled", "ActivityTaskStarted", \
                "ActivityTaskCompleted", "WorkflowTaskScheduled", "WorkflowTaskStarted", \
                "WorkflowTaskCompleted", "WorkflowExecutionCompleted"
#define FAILED_HISTORY(closing)                                                                   \
        "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted",               \
                "WorkflowTaskCompleted", "ActivityTaskScheduled", "ActivityTaskStarted", closing, \
                "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted",          \
                "WorkflowExecutionFailed"

static const char *failure_str(const json_t *ev, const char *key) {
        return json_str(ev_attr(ev, "failure"), key);
}

TEST(retry_until_success) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *out, *result, *times, *started;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "retry-ok",
                               "{\"activity\": \"flaky\", \"input\": {\"fail_times\": 2, "
                               "\"record_times\": true}, \"start_to_close_ms\": 5000, "
                               "\"initial_interval_ms\": 50, \"backoff\": 3.0}",
                               &o, &events),
                  0);
        ASSERT_STREQ(o.status, "Completed");
        out = outcome_result(&o);
        result = json_object_get(out, "result");
        ASSERT_EQ(json_integer_value(json_object_get(result, "attempt")), 3);

        ASSERT_HISTORY_TYPES(events, SUCCESS_HISTORY);
        started = history_must(events, "ActivityTaskStarted");
        ASSERT_EQ(ev_uint(started, "attempt"), 3);
        /* The failure of the attempt before the last one. */
        ASSERT_STREQ(json_str(ev_attr(started, "last_failure"), "type"), "Flaky");
        ASSERT_EQ(json_integer_value(json_object_get(
                          ev_attr(history_must(events, "ActivityTaskScheduled"), "retry_policy"),
                          "initial_interval_usec")),
                  50000);

        /* Attempt n+1 starts no earlier than initial x backoff^(n-1) after attempt n started
         * (it starts that long after attempt n failed, which is later still). */
        times = json_object_get(result, "times");
        ASSERT_EQ(json_array_size(times), 3);
        for (size_t n = 1; n < 3; n++) {
                uint64_t gap = (uint64_t) (json_integer_value(json_array_get(times, n)) -
                                           json_integer_value(json_array_get(times, n - 1)));
                uint64_t delay = (uint64_t) (50000 * pow(3.0, (double) (n - 1)));

                printf("attempt %zu -> %zu: %llu usec (backoff %llu)\n", n, n + 1,
                       (unsigned long long) gap, (unsigned long long) delay);
                ASSERT_GE(gap, delay);
        }
        json_decref(out);
        json_decref(events);
        dur_outcome_done(&o);
}

TEST(maximum_attempts_reached) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *closing;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "max-attempts",
                               "{\"activity\": \"flaky\", \"input\": {\"fail_times\": 100}, "
                               "\"start_to_close_ms\": 5000, \"max_attempts\": 3, "
                               "\"initial_interval_ms\": 10}",
                               &o, &events),
                  DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        ASSERT_STREQ(dur_failure_type(o.failure), "Flaky");
        ASSERT_HISTORY_TYPES(events, FAILED_HISTORY("ActivityTaskFailed"));
        ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskStarted"), "attempt"), 3);
        closing = history_must(events, "ActivityTaskFailed");
        ASSERT_STREQ(ev_str(closing, "retry_state"), "MaximumAttemptsReached");
        ASSERT_STREQ(failure_str(closing, "type"), "Flaky");
        json_decref(events);
        dur_outcome_done(&o);
}

/* A failure that says non_retryable, and one whose type the policy lists: one attempt each,
 * the type reaches the client. */
TEST(non_retryable_failures) {
        _cleanup_(fixture_done) Fixture f = {};
        static const struct {
                const char *id, *input, *type;
                bool non_retryable;
        } cases[] = {
                { "nr-flag",
                  "{\"activity\": \"fail\", \"input\": {\"type\": \"Fatal\", \"message\": \"no\", "
                  "\"non_retryable\": true}, \"start_to_close_ms\": 5000, "
                  "\"initial_interval_ms\": 10}",
                  "Fatal", true },
                { "nr-listed",
                  "{\"activity\": \"fail\", \"input\": {\"type\": \"Listed\", \"message\": \"no\", "
                  "\"non_retryable\": false}, \"start_to_close_ms\": 5000, "
                  "\"initial_interval_ms\": 10, \"non_retryable\": [\"Other\", \"Listed\"]}",
                  "Listed", false },
        };

        fixture_start(&f);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                dur_outcome o = {};
                json_t *events, *closing;

                ASSERT_EQ(run_activity(&f, cases[i].id, cases[i].input, &o, &events), DUR_FAILED);
                ASSERT_STREQ(o.status, "Failed");
                ASSERT_STREQ(dur_failure_type(o.failure), cases[i].type);
                ASSERT_STREQ(dur_failure_message(o.failure), "no");
                ASSERT_EQ(dur_failure_non_retryable(o.failure), cases[i].non_retryable);
                ASSERT_HISTORY_TYPES(events, FAILED_HISTORY("ActivityTaskFailed"));
                ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskStarted"), "attempt"), 1);
                ASSERT_NULL(ev_attr(history_must(events, "ActivityTaskStarted"), "last_failure"));
                closing = history_must(events, "ActivityTaskFailed");
                ASSERT_STREQ(ev_str(closing, "retry_state"), "NonRetryableFailure");
                ASSERT_STREQ(failure_str(closing, "type"), cases[i].type);
                json_decref(events);
                dur_outcome_done(&o);
        }
}

TEST(start_to_close_timeout) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *closing, *started;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "st2c",
                               "{\"activity\": \"sleep\", \"input\": {\"ms\": 1500}, "
                               "\"start_to_close_ms\": 200, \"max_attempts\": 2, "
                               "\"initial_interval_ms\": 10}",
                               &o, &events),
                  DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        ASSERT_HISTORY_TYPES(events, FAILED_HISTORY("ActivityTaskTimedOut"));
        started = history_must(events, "ActivityTaskStarted");
        ASSERT_EQ(ev_uint(started, "attempt"), 2);
        ASSERT_STREQ(json_str(ev_attr(started, "last_failure"), "timeout_type"), "StartToClose");
        closing = history_must(events, "ActivityTaskTimedOut");
        ASSERT_STREQ(failure_str(closing, "timeout_type"), "StartToClose");
        ASSERT_STREQ(ev_str(closing, "retry_state"), "MaximumAttemptsReached");
        ASSERT_EQ(ev_uint(closing, "started_event_id"), ev_id(started));
        json_decref(events);
        dur_outcome_done(&o);
}

/* Nobody polls the activity's queue: the attempt never starts, and the timeout is final. */
TEST(schedule_to_start_timeout) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *closing;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "s2s",
                               "{\"activity\": \"echo\", \"task_queue\": \"nobody-polls\", "
                               "\"start_to_close_ms\": 5000, \"schedule_to_start_ms\": 200, "
                               "\"initial_interval_ms\": 10}",
                               &o, &events),
                  DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        ASSERT_HISTORY_TYPES(events, "WorkflowExecutionStarted", "WorkflowTaskScheduled",
                             "WorkflowTaskStarted", "WorkflowTaskCompleted",
                             "ActivityTaskScheduled", "ActivityTaskTimedOut",
                             "WorkflowTaskScheduled", "WorkflowTaskStarted",
                             "WorkflowTaskCompleted", "WorkflowExecutionFailed");
        ASSERT_STREQ(ev_str(history_must(events, "ActivityTaskScheduled"), "task_queue"),
                     "nobody-polls");
        closing = history_must(events, "ActivityTaskTimedOut");
        ASSERT_STREQ(failure_str(closing, "timeout_type"), "ScheduleToStart");
        ASSERT_EQ(ev_uint(closing, "started_event_id"), 0);
        ASSERT_STREQ(ev_str(closing, "retry_state"), "NonRetryableFailure");
        json_decref(events);
        dur_outcome_done(&o);
}

/* Schedule-to-close spans all attempts: an attempt still running when it passes is the end. */
TEST(schedule_to_close_timeout) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *closing;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "s2c",
                               "{\"activity\": \"sleep\", \"input\": {\"ms\": 1500}, "
                               "\"schedule_to_close_ms\": 300, \"initial_interval_ms\": 10}",
                               &o, &events),
                  DUR_FAILED);
        ASSERT_STREQ(o.status, "Failed");
        closing = history_must(events, "ActivityTaskTimedOut");
        ASSERT_STREQ(failure_str(closing, "timeout_type"), "ScheduleToClose");
        ASSERT_STREQ(ev_str(closing, "retry_state"), "Timeout");
        /* Normalised as Temporal does: start-to-close and schedule-to-start default to it. */
        ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskScheduled"), "start_to_close_usec"),
                  300000);
        ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskScheduled"), "schedule_to_start_usec"),
                  300000);
        json_decref(events);
        dur_outcome_done(&o);
}

/* Retries stop when the next attempt would start after schedule-to-close. */
TEST(schedule_to_close_stops_retries) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *closing;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "s2c-retry",
                               "{\"activity\": \"flaky\", \"input\": {\"fail_times\": 100}, "
                               "\"schedule_to_close_ms\": 5000, \"start_to_close_ms\": 1000, "
                               "\"initial_interval_ms\": 60000}",
                               &o, &events),
                  DUR_FAILED);
        ASSERT_STREQ(dur_failure_type(o.failure), "Flaky");
        ASSERT_HISTORY_TYPES(events, FAILED_HISTORY("ActivityTaskFailed"));
        ASSERT_EQ(ev_uint(history_must(events, "ActivityTaskStarted"), "attempt"), 1);
        closing = history_must(events, "ActivityTaskFailed");
        ASSERT_STREQ(ev_str(closing, "retry_state"), "Timeout");
        ASSERT_STREQ(failure_str(closing, "type"), "Flaky");
        json_decref(events);
        dur_outcome_done(&o);
}

/* Two heartbeats, then silence: the heartbeat timeout ends the attempt, which is retried. */
TEST(heartbeat_timeout) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *closing, *started;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "heartbeat",
                               "{\"activity\": \"sleep\", \"input\": {\"ms\": 2000, "
                               "\"heartbeat_every_ms\": 20, \"stop_heartbeat_after\": 2}, "
                               "\"start_to_close_ms\": 10000, \"heartbeat_ms\": 300, "
                               "\"max_attempts\": 2, \"initial_interval_ms\": 10}",
                               &o, &events),
                  DUR_FAILED);
        ASSERT_HISTORY_TYPES(events, FAILED_HISTORY("ActivityTaskTimedOut"));
        started = history_must(events, "ActivityTaskStarted");
        ASSERT_EQ(ev_uint(started, "attempt"), 2);
        ASSERT_STREQ(json_str(ev_attr(started, "last_failure"), "timeout_type"), "Heartbeat");
        closing = history_must(events, "ActivityTaskTimedOut");
        ASSERT_STREQ(failure_str(closing, "timeout_type"), "Heartbeat");
        ASSERT_STREQ(ev_str(closing, "retry_state"), "MaximumAttemptsReached");
        json_decref(events);
        dur_outcome_done(&o);
}

/* Attempt 1 heartbeats {"progress": 1} and fails; attempt 2 sees those details. */
TEST(heartbeat_details_survive_retry) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *out, *result;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "hb-details",
                               "{\"activity\": \"hb_then_fail\", \"start_to_close_ms\": 5000, "
                               "\"initial_interval_ms\": 10}",
                               &o, &events),
                  0);
        out = outcome_result(&o);
        result = json_object_get(out, "result");
        ASSERT_EQ(json_integer_value(json_object_get(result, "attempt")), 2);
        ASSERT_EQ(
                json_integer_value(json_object_get(json_object_get(result, "details"), "progress")),
                1);
        ASSERT_HISTORY_TYPES(events, SUCCESS_HISTORY);
        ASSERT_STREQ(json_str(ev_attr(history_must(events, "ActivityTaskStarted"), "last_failure"),
                              "type"),
                     "HbThenFail");
        json_decref(out);
        json_decref(events);
        dur_outcome_done(&o);
}

/* An activity without start-to-close and schedule-to-close is a bad command: the workflow task
 * fails (BadCommand), the answer is invalid_argument, and the run keeps running. The worker is
 * made by hand so that the test sees the answer itself. */
/* libdurable throttles heartbeats (0.8 x the heartbeat timeout between two that reach the daemon,
 * as Temporal's SDKs): after 100 in a row the daemon has only the first. */
TEST(heartbeats_are_throttled) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_free_ char *fifo = NULL;
        char input[512], line[64];
        json_t *request, *describe, *pending;
        int fd, error = 0;

        fixture_start(&f);
        fd = fifo_make(&f.daemon, "burst.fifo", &fifo);
        (void) snprintf(input, sizeof(input),
                        "{\"activity\": \"hb_burst\", \"input\": {\"count\": 100, "
                        "\"sleep_ms\": 60000, \"started_fifo\": \"%s\"}, "
                        "\"start_to_close_ms\": 120000, \"heartbeat_ms\": 100000}",
                        fifo);
        start_json(f.client, "ActivityWorkflow", "hb-throttle", NULL, input, 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "burst");
        /* The activity now sleeps for a minute; what the daemon holds is what reached it. */
        request = json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "hb-throttle");
        describe = ASSERT_NOT_NULL(call_json(f.client, request, &error));
        json_decref(request);
        pending = json_array_get(json_object_get(describe, "pending_activities"), 0);
        ASSERT_NOT_NULL(pending);
        ASSERT_EQ(json_integer_value(
                          json_object_get(json_object_get(pending, "heartbeat_details"), "i")),
                  1);
        json_decref(describe);
        ASSERT_DUR_OK(f.client, dur_client_terminate(f.client, "hb-throttle", NULL, "done"));
        (void) close(fd);
}

/* The details of the last throttled heartbeat go out before the attempt fails: the next attempt
 * starts from them. */
TEST(throttled_heartbeat_details_reach_the_next_attempt) {
        _cleanup_(fixture_done) Fixture f = {};
        dur_outcome o = {};
        json_t *events, *out, *details;

        fixture_start(&f);
        ASSERT_EQ(run_activity(&f, "hb-held",
                               "{\"activity\": \"hb_burst\", \"input\": {\"count\": 100}, "
                               "\"start_to_close_ms\": 5000, \"heartbeat_ms\": 100000, "
                               "\"initial_interval_ms\": 10}",
                               &o, &events),
                  0);
        out = outcome_result(&o);
        details = json_object_get(json_object_get(json_object_get(out, "result"), "details"), "i");
        ASSERT_EQ(json_integer_value(details), 100);
        json_decref(out);
        json_decref(events);
        dur_outcome_done(&o);
}

/* Starts ActivityWorkflow @id running the "async" activity (DUR_ASYNC); returns its task token,
 * read from the FIFO the activity writes it to. */
static void start_async(Fixture *f, const char *id, int fd, const char *fifo, unsigned attempts,
                        char *token, size_t size) {
        char input[512], line[256];

        (void) snprintf(input, sizeof(input),
                        "{\"activity\": \"async\", \"input\": {\"started_fifo\": \"%s\"}, "
                        "\"start_to_close_ms\": 600000, \"max_attempts\": %u}",
                        fifo, attempts);
        start_json(f->client, "ActivityWorkflow", id, NULL, input, 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_EQ(strncmp(line, "token ", 6), 0);
        (void) snprintf(token, size, "%s", line + 6);
}

/* CompleteActivityTask naming the attempt twice, by task token (a bin, which JSON cannot carry)
 * and by ids; returns dur_client_call()'s value. */
static int complete_by_token_and_ids(dur_client *c, const char *token, const char *workflow_id,
                                     const char *activity_id) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        dur_buf req, *answer = NULL;
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ASSERT_OK(dur_pack(&pk, "{s:s, s:s, s:s}", "op", "CompleteActivityTask", "workflow_id",
                           workflow_id, "activity_id", activity_id));
        ASSERT_EQ((unsigned char) sb.data[0], 0x83); /* fixmap of 3: one pair more */
        sb.data[0] = (char) 0x84;
        ASSERT_OK(msgpack_pack_str_with_body(&pk, "task_token", 10));
        ASSERT_OK(msgpack_pack_bin_with_body(&pk, token, strlen(token)));
        req = (dur_buf){ .data = sb.data, .size = sb.size };
        r = dur_client_call(c, &req, &answer);
        dur_buf_free(answer);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

/* Asynchronous completion (Temporal's): an activity returns DUR_ASYNC and stays running until
 * someone completes it with its task token (libdurable) or by workflow and activity id
 * (durablectl), heartbeats it, or fails it. */
TEST(async_completion) {
        _cleanup_(fixture_done) Fixture f = {};
        _cleanup_free_ char *fifo = NULL;
        _cleanup_(test_run_free) TestRun r = {};
        dur_outcome o = {};
        json_t *out, *pending, *describe, *request;
        char token[256];
        bool cancel = true;
        int fd, error = 0;
        dur_buf *details = dur_args("{s:i}", "progress", 50);
        dur_buf *result = dur_args("{s:s}", "done", "by token");

        fixture_start(&f);
        fd = fifo_make(&f.daemon, "async.fifo", &fifo);

        /* By task token, through libdurable. */
        start_async(&f, "async-token", fd, fifo, 1, token, sizeof(token));
        ASSERT_EQ(strncmp(token, "A/", 2), 0);
        ASSERT_DUR_OK(f.client,
                      dur_client_heartbeat_activity(
                              f.client,
                              &(dur_activity_ref){ .task_token = token,
                                                   .task_token_size = strlen(token) },
                              details, &cancel));
        ASSERT_FALSE(cancel);
        request = json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "async-token");
        describe = ASSERT_NOT_NULL(call_json(f.client, request, &error));
        json_decref(request);
        pending = json_array_get(json_object_get(describe, "pending_activities"), 0);
        ASSERT_STREQ(json_str(pending, "state"), "Started");
        ASSERT_EQ(json_integer_value(
                          json_object_get(json_object_get(pending, "heartbeat_details"), "progress")),
                  50);
        json_decref(describe);
        ASSERT_DUR_OK(f.client,
                      dur_client_complete_activity(
                              f.client,
                              &(dur_activity_ref){ .task_token = token,
                                                   .task_token_size = strlen(token) },
                              result));
        details = dur_buf_free(details);
        result = dur_buf_free(result);
        ASSERT_EQ(wait_outcome(f.client, "async-token", &o), 0);
        out = outcome_result(&o);
        ASSERT_STREQ(json_str(json_object_get(out, "result"), "done"), "by token");
        json_decref(out);
        dur_outcome_done(&o);
        /* The attempt is over: the token is stale now. */
        ASSERT_EQ(dur_client_complete_activity(
                          f.client,
                          &(dur_activity_ref){ .task_token = token,
                                               .task_token_size = strlen(token) },
                          NULL),
                  -ENOENT);

        /* By workflow id and activity id, through durablectl. */
        start_async(&f, "async-id", fd, fifo, 1, token, sizeof(token));
        ASSERT_EQ(test_run(&r,
                           STRV(test_bin("DURABLECTL_BIN"), "activity", "heartbeat", "async-id",
                                "1", "{\"step\": 1}"),
                           NULL),
                  0);
        test_run_free(&r);
        ASSERT_EQ(test_run(&r,
                           STRV(test_bin("DURABLECTL_BIN"), "activity", "complete", "async-id",
                                "1", "{\"done\": \"by id\"}"),
                           NULL),
                  0);
        test_run_free(&r);
        ASSERT_EQ(wait_outcome(f.client, "async-id", &o), 0);
        out = outcome_result(&o);
        ASSERT_STREQ(json_str(json_object_get(out, "result"), "done"), "by id");
        json_decref(out);
        dur_outcome_done(&o);
        /* No attempt runs any more: a clear error, exit status 1. */
        ASSERT_EQ(test_run(&r,
                           STRV(test_bin("DURABLECTL_BIN"), "activity", "complete", "async-id",
                                "1"),
                           NULL),
                  1);
        ASSERT_STR_CONTAINS(r.err, "no pending activity");
        test_run_free(&r);

        /* Failed with --token, through durablectl: the workflow fails with that message. */
        start_async(&f, "async-fail", fd, fifo, 1, token, sizeof(token));
        ASSERT_EQ(test_run(&r,
                           STRV(test_bin("DURABLECTL_BIN"), "activity", "fail", "--token", token,
                                "--reason", "the operator said no"),
                           NULL),
                  0);
        test_run_free(&r);
        ASSERT_EQ(wait_outcome(f.client, "async-fail", &o), DUR_FAILED);
        ASSERT_STR_CONTAINS(dur_failure_message(o.failure), "the operator said no");
        dur_outcome_done(&o);

        /* Neither a token nor the ids, or both: invalid_argument, and nothing written. */
        start_async(&f, "async-bad", fd, fifo, 1, token, sizeof(token));
        ASSERT_EQ(dur_client_complete_activity(f.client,
                                               &(dur_activity_ref){ .workflow_id = "async-bad" },
                                               NULL),
                  -EINVAL); /* refused by libdurable before sending */
        request = json_pack("{s:s}", "op", "CompleteActivityTask");
        ASSERT_NULL(call_json(f.client, request, &error));
        json_decref(request);
        ASSERT_STREQ(dur_client_error_code(f.client), "invalid_argument");
        ASSERT_STR_CONTAINS(dur_client_error_message(f.client), "activity_id");
        ASSERT_EQ(complete_by_token_and_ids(f.client, token, "async-bad", "1"), -EINVAL);
        ASSERT_STREQ(dur_client_error_code(f.client), "invalid_argument");
        ASSERT_STR_CONTAINS(dur_client_error_message(f.client), "not both");
        request = json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "async-bad");
        describe = ASSERT_NOT_NULL(call_json(f.client, request, &error));
        json_decref(request);
        pending = json_array_get(json_object_get(describe, "pending_activities"), 0);
        ASSERT_STREQ(json_str(pending, "state"), "Started"); /* still running */
        json_decref(describe);
        ASSERT_DUR_OK(f.client, dur_client_terminate(f.client, "async-bad", NULL, "done"));

        /* Usage errors are found before connecting: exit status 2. */
        ASSERT_EQ(test_run(&r, STRV(test_bin("DURABLECTL_BIN"), "activity", "complete", "x"),
                           NULL),
                  2);
        ASSERT_STR_CONTAINS(r.err, "ACTIVITY-ID");
        test_run_free(&r);
        (void) close(fd);
}

TEST(missing_timeouts_is_bad_command) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL, *status = NULL;
        dur_client *c;
        json_t *events, *failed;
        size_t size;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_json(c, "ActivityWorkflow", "bad-command", "raw", "{}", 0);
        raw_poll_workflow_task(c, "raw", &token, &size);
        ASSERT_ERROR(raw_complete_workflow_task(
                             c, token, size,
                             "[{\"command_type\": \"ScheduleActivityTask\", \"attributes\": "
                             "{\"activity_id\": \"1\", \"activity_type\": \"echo\"}}]"),
                     -EINVAL);
        ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "timeout is required");

        events = history_get(c, "bad-command");
        history_assert_invariants(events);
        failed = history_must(events, "WorkflowTaskFailed");
        ASSERT_STREQ(ev_str(failed, "cause"), "BadCommand");
        ASSERT_STR_CONTAINS(failure_str(failed, "message"), "start_to_close");
        ASSERT_NULL(history_next(events, "ActivityTaskScheduled", 0, NULL));
        /* The failed task is scheduled again at once (attempt 2). */
        ASSERT_EQ(ev_uint(json_array_get(events, json_array_size(events) - 1), "attempt"), 2);
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowTaskScheduled");
        status = describe_status(c, "bad-command");
        ASSERT_STREQ(status, "Running");
        json_decref(events);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
