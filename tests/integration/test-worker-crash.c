/* Workers that die, and a daemon that goes away under a running worker (DESIGN.md §3: a task in
 * flight is timed out and retried; libdurable's workers reconnect). Every wait is on an event: a
 * FIFO line from the activity, the daemon's answer to GetResult or to a query. */

#include <stdio.h>
#include <string.h>

#include "tests/integration/worker-util.h"

/* A worker SIGKILLed in the middle of an activity: the attempt times out (start-to-close) and a
 * second worker runs attempt 2. */
TEST(worker_killed_during_activity) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess w1 = {}, w2 = {};
        _cleanup_free_ char *fifo = NULL;
        _cleanup_close_ int fd = -EBADF;
        dur_outcome o = {};
        dur_client *c;
        json_t *events, *out, *started;
        char input[512], line[64];

        test_daemon_start(&d, NULL);
        fd = fifo_make(&d, "started.fifo", &fifo);
        test_worker_spawn(&w1, NULL, NULL);
        c = client_connect();
        (void) snprintf(input, sizeof(input),
                        "{\"activity\": \"block\", \"input\": {\"started_fifo\": \"%s\", "
                        "\"ms\": 60000, \"block_attempts\": 1}, \"start_to_close_ms\": 500, "
                        "\"initial_interval_ms\": 10}",
                        fifo);
        start_json(c, "ActivityWorkflow", "kill-activity", NULL, input, 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started 1");
        ASSERT_EQ(test_process_kill(&w1, SIGKILL) & 0x7f, SIGKILL);

        test_worker_spawn(&w2, NULL, NULL);
        ASSERT_EQ(wait_outcome(c, "kill-activity", &o), 0);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "started 2");
        out = outcome_result(&o);
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(out, "result"), "attempt")),
                  2);

        events = history_get(c, "kill-activity");
        history_assert_invariants(events);
        started = history_must(events, "ActivityTaskStarted");
        ASSERT_EQ(ev_uint(started, "attempt"), 2);
        ASSERT_STREQ(json_str(ev_attr(started, "last_failure"), "timeout_type"), "StartToClose");
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCompleted");

        json_decref(out);
        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&w2, SIGTERM), 0);
}

/* A worker that took a workflow task and never answers: the test itself polls the task, and
 * either goes away (a dead worker: the daemon times the task out as its connection closes) or
 * keeps the connection open (a hung worker: the 1 s task timeout expires). Either way the task
 * times out and a real worker completes the run. */
static void workflow_task_abandoned(bool close_connection) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess w = {};
        _cleanup_free_ char *token = NULL;
        dur_outcome o = {};
        dur_client *c, *dead;
        json_t *events, *timed_out, *next;
        size_t size, index;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_json(c, "ActivityWorkflow", "kill-wft", NULL,
                   "{\"activity\": \"echo\", \"input\": {\"x\": 1}, \"start_to_close_ms\": 5000}",
                   1 * TEST_USEC_PER_SEC);
        dead = client_connect();
        raw_poll_workflow_task(dead, TEST_QUEUE, &token, &size);
        if (close_connection)
                dead = dur_client_free(dead);

        test_worker_spawn(&w, NULL, NULL);
        ASSERT_EQ(wait_outcome(c, "kill-wft", &o), 0);

        events = history_get(c, "kill-wft");
        history_assert_invariants(events);
        timed_out = history_must(events, "WorkflowTaskTimedOut");
        ASSERT_STREQ(ev_str(timed_out, "timeout_type"), "StartToClose");
        ASSERT_EQ(ev_id(timed_out), 4); /* Started, Scheduled, Started(raw-worker), TimedOut */
        ASSERT_STREQ(ev_str(json_array_get(events, 2), "identity"), "raw-worker");
        /* The retry: attempt 2, taken by the real worker, which completes it. */
        ASSERT_NOT_NULL(history_next(events, "WorkflowTaskScheduled", 4, &index));
        next = json_array_get(events, index);
        ASSERT_EQ(ev_uint(next, "attempt"), 2);
        ASSERT_STREQ(ev_type(json_array_get(events, index + 1)), "WorkflowTaskStarted");
        ASSERT_STRNE(ev_str(json_array_get(events, index + 1), "identity"), "raw-worker");
        ASSERT_STREQ(ev_type(json_array_get(events, index + 2)), "WorkflowTaskCompleted");
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCompleted");

        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(dead);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&w, SIGTERM), 0);
}

/* A real worker process SIGKILLed while it is in the middle of a workflow task (its thread is
 * stopped inside the workflow code): the task times out as the connection closes, and another
 * worker finishes the run. */
TEST(worker_killed_during_workflow_task) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess w1 = {}, w2 = {};
        _cleanup_free_ char *fifo = NULL;
        char input[512], line[64];
        dur_outcome o = {};
        json_t *events;
        dur_client *c;
        int fd;

        test_daemon_start(&d, NULL);
        fd = fifo_make(&d, "stall.fifo", &fifo);
        c = client_connect();
        (void) snprintf(input, sizeof(input), "{\"stall_fifo\": \"%s\"}", fifo);
        start_json(c, "StallWorkflow", "stall", NULL, input, 0);
        test_worker_spawn(&w1, NULL, NULL);
        fifo_read_line(fd, line, sizeof(line));
        ASSERT_STREQ(line, "stalled");
        ASSERT_EQ(test_process_kill(&w1, SIGKILL) & 0x7f, SIGKILL);

        test_worker_spawn(&w2, NULL, STRV("TEST_NO_STALL=1"));
        ASSERT_EQ(wait_outcome(c, "stall", &o), 0);
        events = history_get(c, "stall");
        history_assert_invariants(events);
        ASSERT_STREQ(ev_str(history_must(events, "WorkflowTaskTimedOut"), "timeout_type"),
                     "StartToClose");
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCompleted");
        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(c);
        (void) close(fd);
        ASSERT_EQ(test_process_kill(&w2, SIGTERM), 0);
}

TEST(worker_died_during_workflow_task) {
        workflow_task_abandoned(true);
}

TEST(worker_hung_during_workflow_task) {
        workflow_task_abandoned(false);
}

static void signal_add(dur_client *c, const char *id, int i) {
        dur_buf *arg = ASSERT_NOT_NULL(dur_args("i", i));

        ASSERT_DUR_OK(c, dur_client_signal(c, id, NULL, "add", arg));
        dur_buf_free(arg);
}

/* The same worker process keeps serving the workflow across a graceful daemon restart and a
 * crash (SIGKILL) of the daemon: its polling threads reconnect. */
TEST(worker_survives_daemon_restart) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess w = {};
        dur_outcome o = {};
        dur_client *c;
        json_t *out, *list;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&w, NULL, NULL);
        c = client_connect();
        start_json(c, "SignalWorkflow", "restart", NULL, NULL, 0);
        signal_add(c, "restart", 1);
        ASSERT_EQ(query_count(c, "restart"), 1);
        c = dur_client_free(c);

        test_daemon_restart(&d); /* SIGTERM, then a new daemon on the same state */
        c = client_connect();
        signal_add(c, "restart", 2);
        ASSERT_EQ(query_count(c, "restart"), 2); /* answered by the reconnected worker */
        c = dur_client_free(c);

        ASSERT_EQ(test_daemon_kill(&d, SIGKILL) & 0x7f, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        signal_add(c, "restart", 3);
        ASSERT_DUR_OK(c, dur_client_signal(c, "restart", NULL, "done", NULL));
        ASSERT_EQ(wait_outcome(c, "restart", &o), 0);
        out = outcome_result(&o);
        list = json_object_get(out, "signals");
        ASSERT_EQ(json_array_size(list), 3);
        for (size_t i = 0; i < 3; i++)
                ASSERT_EQ(json_integer_value(json_array_get(list, i)), i + 1);

        /* Still the first worker process, which stops cleanly. */
        ASSERT_GT(w.pid, 0);
        json_decref(out);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&w, SIGTERM), 0);
}

/* Tasks waiting in their queues when the daemon dies (no worker took them) are in no table: the
 * daemon rebuilds its in-memory queues at start-up from the runs and activities that are
 * scheduled (daemon/taskset.h), and a worker that comes later gets them. One workflow task and
 * one activity task are queued across a SIGKILL. */
TEST(queued_tasks_survive_daemon_kill) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess w = {}, later = {};
        dur_outcome o = {};
        dur_client *c;
        json_t *req, *a, *out;
        int error = 0;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&w, NULL, NULL);
        c = client_connect();
        /* Its activity goes to a queue nobody polls yet: it stays queued. */
        start_json(c, "ActivityWorkflow", "queued-activity", NULL,
                   "{\"activity\": \"echo\", \"input\": {\"x\": 1}, \"task_queue\": \"later\", "
                   "\"start_to_close_ms\": 60000}",
                   0);
        /* Event 5 is ActivityTaskScheduled (started, task scheduled/started/completed). */
        req = json_pack("{s:s, s:s, s:I, s:b, s:I}", "op", "GetHistory", "workflow_id",
                        "queued-activity", "from_event_id", (json_int_t) 5, "wait", 1,
                        "timeout_usec", (json_int_t) test_timeout_usec());
        a = call_json(c, req, &error); /* does not take req */
        json_decref(req);
        ASSERT_NOT_NULL(a);
        ASSERT_STREQ(ev_type(json_array_get(json_object_get(a, "events"), 0)),
                     "ActivityTaskScheduled");
        json_decref(a);
        ASSERT_EQ(test_process_kill(&w, SIGTERM), 0);
        /* No worker: its first workflow task stays queued. */
        start_json(c, "ActivityWorkflow", "queued-workflow-task", NULL,
                   "{\"activity\": \"echo\", \"input\": {\"y\": 2}, \"start_to_close_ms\": 60000}",
                   0);
        dur_client_free(c);

        ASSERT_EQ(test_daemon_kill(&d, SIGKILL) & 0x7f, SIGKILL);
        test_daemon_restart(&d);
        test_worker_spawn(&w, NULL, NULL);
        test_worker_spawn(&later, "later", NULL);
        c = client_connect();

        ASSERT_EQ(wait_outcome(c, "queued-activity", &o), 0);
        out = outcome_result(&o);
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(out, "result"), "x")), 1);
        json_decref(out);
        dur_outcome_done(&o);

        ASSERT_EQ(wait_outcome(c, "queued-workflow-task", &o), 0);
        out = outcome_result(&o);
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(out, "result"), "y")), 2);
        json_decref(out);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&w, SIGTERM), 0);
        ASSERT_EQ(test_process_kill(&later, SIGTERM), 0);
}

/* A worker's threads send their next poll with each task's answer (libclient/conn.h, "rider").
 * A graceful stop collects those polls (the daemon answers them at ShutdownWorker) instead of
 * waiting out their 60 s, and leaves no task behind: a task handed to a poll that nobody collects
 * would be timed out when the connection closes. The workflow and the query below each leave a
 * rider parked when the worker is stopped. */
TEST(worker_stop_collects_riding_polls) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess w = {};
        dur_outcome o = {};
        json_t *events;
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&w, NULL, NULL);
        c = client_connect();
        start_json(c, "SignalWorkflow", "rider", NULL, NULL, 0);
        signal_add(c, "rider", 1);
        ASSERT_EQ(query_count(c, "rider"), 1);
        ASSERT_EQ(test_process_kill(&w, SIGTERM), 0); /* exit status 0, within the timeout */

        signal_add(c, "rider", 2); /* no worker: the task waits in its queue */
        test_worker_spawn(&w, NULL, NULL);
        ASSERT_EQ(query_count(c, "rider"), 2);
        ASSERT_DUR_OK(c, dur_client_signal(c, "rider", NULL, "done", NULL));
        ASSERT_EQ(wait_outcome(c, "rider", &o), 0);
        events = history_get(c, "rider");
        history_assert_invariants(events);
        for (size_t i = 0; i < json_array_size(events); i++)
                ASSERT_STRNE(ev_type(json_array_get(events, i)), "WorkflowTaskTimedOut");
        json_decref(events);
        dur_outcome_done(&o);
        dur_client_free(c);
        ASSERT_EQ(test_process_kill(&w, SIGTERM), 0);
}

/* dur_worker_stop() ends a worker whose threads wait to reconnect to a daemon that is gone. */
TEST(worker_stops_while_reconnecting) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess w = {};
        dur_client *c;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&w, NULL, NULL);
        c = client_connect();
        start_json(c, "SignalWorkflow", "gone", NULL, NULL, 0);
        ASSERT_EQ(query_count(c, "gone"), 0); /* the worker is connected and working */
        dur_client_free(c);

        ASSERT_EQ(test_daemon_kill(&d, SIGKILL) & 0x7f, SIGKILL);
        ASSERT_GT(w.pid, 0);
        ASSERT_EQ(test_process_kill(&w, SIGTERM), 0); /* exit status 0, within the timeout */
}

DEFINE_TEST_MAIN();
