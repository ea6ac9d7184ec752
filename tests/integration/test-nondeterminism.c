/* Non-determinism (DESIGN.md §6): a worker whose code no longer matches the history fails the
 * workflow task with cause NonDeterministicError and a message naming the event and both sides;
 * the run stays Running, intact, and a worker with the right code finishes it. */

#include <stdio.h>
#include <string.h>

#include "tests/integration/worker-util.h"

TEST(changed_code_fails_the_task_and_the_run_waits) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess wa = {}, wb = {}, wa2 = {};
        _cleanup_free_ char *fifo = NULL, *status = NULL;
        _cleanup_close_ int fd = -EBADF;
        dur_buf *result = NULL;
        dur_outcome o = {};
        dur_client *c;
        json_t *events, *failed, *out;
        const char *message;
        char input[512], line[64];

        test_daemon_start(&d, NULL);
        fd = fifo_make(&d, "ready.fifo", &fifo);
        c = client_connect();

        /* Variant a: activity "echo", then it waits for signal "go" (and says so on the FIFO). */
        test_worker_spawn(&wa, NULL, STRV("TEST_NONDET_VARIANT=a"));
        (void) snprintf(input, sizeof(input), "{\"ready_fifo\": \"%s\"}", fifo);
        start_json(c, "NonDetWorkflow", "nondet", NULL, input, 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "waiting");
        ASSERT_EQ(test_process_kill(&wa, SIGTERM), 0); /* finishes the task in hand */

        /* Variant b, a new process (nothing cached: full replay), starts a timer instead. */
        test_worker_spawn(&wb, NULL, STRV("TEST_NONDET_VARIANT=b"));
        ASSERT_DUR_OK(c, dur_client_signal(c, "nondet", NULL, "go", NULL));
        /* Queries wait for the pending workflow task; once its retries back off, worker b
         * answers the query by replaying, which fails the same way. */
        ASSERT_ERROR(dur_client_query(c, "nondet", NULL, "state", NULL, &result), -EREMOTEIO);
        ASSERT_STREQ(dur_client_error_code(c), "query_failed");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "non-deterministic");

        events = history_get(c, "nondet");
        history_assert_invariants(events);
        failed = history_must(events, "WorkflowTaskFailed");
        ASSERT_STREQ(ev_str(failed, "cause"), "NonDeterministicError");
        message = json_str(ev_attr(failed, "failure"), "message");
        printf("WorkflowTaskFailed: %s\n", test_str_or_null(message));
        /* The event (5: the ActivityTaskScheduled of echo) and both sides. */
        ASSERT_EQ(ev_id(history_must(events, "ActivityTaskScheduled")), 5);
        ASSERT_STR_CONTAINS(message, "event 5");
        ASSERT_STR_CONTAINS(message, "ActivityTaskScheduled");
        ASSERT_STR_CONTAINS(message, "StartTimer");
        ASSERT_NULL(history_next(events, "TimerStarted", 0, NULL));
        status = describe_status(c, "nondet");
        ASSERT_STREQ(status, "Running");
        json_decref(events);
        ASSERT_EQ(test_process_kill(&wb, SIGTERM), 0);

        /* The fixed worker finishes the run: the signal is in the history. */
        test_worker_spawn(&wa2, NULL, STRV("TEST_NONDET_VARIANT=a"));
        ASSERT_EQ(wait_outcome(c, "nondet", &o), 0);
        out = outcome_result(&o);
        ASSERT_STREQ(json_str(out, "variant"), "a");
        events = history_get(c, "nondet");
        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "ActivityTaskScheduled"), 1); /* echo ran once */
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCompleted");

        json_decref(events);
        json_decref(out);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&wa2, SIGTERM), 0);
}

DEFINE_TEST_MAIN();
