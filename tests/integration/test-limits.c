/* Limits (DESIGN.md §10, durabled(8) LIMITS): each test lowers one limit with its durabled option,
 * crosses it and checks the documented action (resource_exhausted with a message naming the limit
 * and its option, or the workflow task failing with the limit's cause) while another client keeps
 * working. The per-run limits count what the store holds, so they also hold after a SIGKILL and
 * a restart. Frame size and history length are crossed in test-protocol.c and
 * test-continue-as-new.c, the default payload size in test-protocol.c too.
 *
 * Raw connections (raw-util.h) read the answers with a receive timeout of the harness's; nothing
 * sleeps. */

#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests/integration/core-util.h"
#include "tests/integration/raw-util.h"

/* Another client keeps working: a new connection starts a workflow (on a queue of its own, so
 * that the test's raw polls do not take its task) and describes it. */
static void assert_other_client_works(const char *workflow_id) {
        dur_client *other = client_connect();
        json_t *req, *ans, *desc;
        int r;

        req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:s, s:s}", "op", "StartWorkflow",
                                        "workflow_id", workflow_id, "workflow_type", "Quick",
                                        "task_queue", "other"));
        ans = call_json(other, req, &r);
        ASSERT_DUR_OK(other, r);
        json_decref(ans);
        json_decref(req);
        desc = core_describe(other, workflow_id, NULL);
        ASSERT_STREQ(core_status(desc), "Running");
        json_decref(desc);
        dur_client_free(other);
}

/* "[{ScheduleActivityTask a<first>}, ...]" with @n commands, in @buf. */
static const char *schedule_commands(char *buf, size_t size, unsigned first, unsigned n) {
        size_t len = 0;

        len += (size_t) snprintf(buf + len, size - len, "[");
        for (unsigned i = first; i < first + n; i++)
                len += (size_t) snprintf(
                        buf + len, size - len,
                        "%s{\"command_type\": \"ScheduleActivityTask\", \"attributes\": "
                        "{\"activity_id\": \"a%u\", \"activity_type\": \"A\", \"task_queue\": "
                        "\"acts\", \"start_to_close_usec\": 600000000}}",
                        i == first ? "" : ", ", i);
        ASSERT_LT(len + 2, size);
        snprintf(buf + len, size - len, "]");
        return buf;
}

/* ---- per-run limits ---- */

/* A workflow task whose commands would leave the run more pending activities than
 * --max-pending-activities fails with PendingActivitiesLimitExceeded and writes none of them;
 * the store's count holds across a SIGKILL. */
TEST(pending_activities) {
        const TestDaemonOpts o = { .args = STRV("--max-pending-activities=3") };
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL;
        char cmds[4096];
        dur_client *c;
        json_t *events, *failed;
        size_t size;

        test_daemon_start(&d, &o);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Quick", "acts", NULL, NULL, NULL), 0);

        /* Four in one task: refused whole. */
        raw_poll_workflow_task(c, CORE_QUEUE, &token, &size);
        ASSERT_ERROR(raw_complete_workflow_task(c, token, size,
                                                schedule_commands(cmds, sizeof(cmds), 1, 4)),
                     -ENOSPC); /* resource_exhausted */
        ASSERT_STREQ(dur_client_error_code(c), "resource_exhausted");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "command 3 (ScheduleActivityTask)");
        ASSERT_STR_CONTAINS(dur_client_error_message(c),
                            "would have 4 pending activities; the limit is 3 "
                            "(durabled --max-pending-activities)");
        events = core_history(c, "acts", NULL);
        ASSERT_EQ(history_count(events, "ActivityTaskScheduled"), 0);
        failed = history_must(events, "WorkflowTaskFailed");
        ASSERT_STREQ(ev_str(failed, "cause"), "PendingActivitiesLimitExceeded");
        json_decref(events);
        assert_other_client_works("acts-other");

        /* Two are fine; after a crash, two more would make four. */
        free(TAKE_PTR(token));
        raw_poll_workflow_task(c, CORE_QUEUE, &token, &size);
        ASSERT_OK(raw_complete_workflow_task(c, token, size,
                                             schedule_commands(cmds, sizeof(cmds), 1, 2)));
        dur_client_free(c);
        test_daemon_kill(&d, SIGKILL);
        test_daemon_start(&d, &o);
        c = client_connect();
        ASSERT_DUR_OK(c, dur_client_signal(c, "acts", NULL, "wake", NULL));
        free(TAKE_PTR(token));
        raw_poll_workflow_task(c, CORE_QUEUE, &token, &size);
        ASSERT_ERROR(raw_complete_workflow_task(c, token, size,
                                                schedule_commands(cmds, sizeof(cmds), 3, 2)),
                     -ENOSPC);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "would have 4 pending activities");
        free(TAKE_PTR(token));
        raw_poll_workflow_task(c, CORE_QUEUE, &token, &size);
        ASSERT_OK(raw_complete_workflow_task(c, token, size,
                                             schedule_commands(cmds, sizeof(cmds), 3, 1)));
        events = core_history(c, "acts", NULL);
        ASSERT_EQ(history_count(events, "ActivityTaskScheduled"), 3);
        ASSERT_EQ(history_count(events, "WorkflowTaskFailed"), 2);
        json_decref(events);
        dur_client_free(c);
        printf("limits: --max-pending-activities=3 crossed: workflow task failed "
               "(PendingActivitiesLimitExceeded), also after a SIGKILL\n");
}

/* A child past --max-pending-children fails to start (the parent's task completes). */
TEST(pending_children) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL;
        dur_client *c;
        json_t *events, *failed;
        size_t size;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--max-pending-children=1") });
        c = client_connect();
        ASSERT_EQ(core_start(c, "Quick", "kids", NULL, NULL, NULL), 0);
        raw_poll_workflow_task(c, CORE_QUEUE, &token, &size);
        ASSERT_OK(raw_complete_workflow_task(
                c, token, size,
                "[{\"command_type\": \"StartChildWorkflowExecution\", \"attributes\": "
                "{\"workflow_id\": \"kid-1\", \"workflow_type\": \"Quick\"}}, "
                "{\"command_type\": \"StartChildWorkflowExecution\", \"attributes\": "
                "{\"workflow_id\": \"kid-2\", \"workflow_type\": \"Quick\"}}]"));
        events = core_history(c, "kids", NULL);
        ASSERT_EQ(history_count(events, "StartChildWorkflowExecutionInitiated"), 2);
        ASSERT_EQ(history_count(events, "StartChildWorkflowExecutionFailed"), 1);
        failed = history_must(events, "StartChildWorkflowExecutionFailed");
        ASSERT_STREQ(ev_str(failed, "workflow_id"), "kid-2");
        ASSERT_STREQ(ev_str(failed, "cause"), "PendingChildWorkflowsLimitExceeded");
        json_decref(events);
        json_decref(core_describe(c, "kid-1", NULL));
        assert_other_client_works("kids-other");
        dur_client_free(c);
        printf("limits: --max-pending-children=1 crossed: StartChildWorkflowExecutionFailed "
               "(PendingChildWorkflowsLimitExceeded)\n");
}

/* Signals past --max-signals-per-run are resource_exhausted, counted from the store (buffered
 * ones and after a restart too); other runs take signals. */
TEST(signals_per_run) {
        const TestDaemonOpts o = { .args = STRV("--max-signals-per-run=3") };
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL;
        dur_client *c;
        json_t *events;
        size_t size;

        test_daemon_start(&d, &o);
        c = client_connect();
        ASSERT_EQ(core_start(c, "Quick", "sig", NULL, NULL, NULL), 0);
        ASSERT_DUR_OK(c, dur_client_signal(c, "sig", NULL, "s", NULL));
        /* While a task runs, signals are buffered: they count too. */
        raw_poll_workflow_task(c, CORE_QUEUE, &token, &size);
        ASSERT_DUR_OK(c, dur_client_signal(c, "sig", NULL, "s", NULL));
        ASSERT_DUR_OK(c, dur_client_signal(c, "sig", NULL, "s", NULL));
        ASSERT_ERROR(dur_client_signal(c, "sig", NULL, "s", NULL), -ENOSPC);
        ASSERT_STREQ(dur_client_error_code(c), "resource_exhausted");
        ASSERT_STR_CONTAINS(dur_client_error_message(c),
                            "workflow 'sig' would have 4 signals; the limit is 3 "
                            "(durabled --max-signals-per-run)");
        ASSERT_OK(raw_complete_workflow_task(c, token, size, "[]"));
        dur_client_free(c);

        test_daemon_kill(&d, SIGKILL);
        test_daemon_start(&d, &o);
        c = client_connect();
        ASSERT_ERROR(dur_client_signal(c, "sig", NULL, "s", NULL), -ENOSPC);
        ASSERT_ERROR(dur_client_signal_with_start(
                             c, "Quick",
                             &(dur_start_opts){ .workflow_id = "sig", .task_queue = CORE_QUEUE },
                             NULL, "s", NULL, NULL),
                     -ENOSPC);
        events = core_history(c, "sig", NULL);
        ASSERT_EQ(history_count(events, "WorkflowExecutionSignaled"), 3);
        json_decref(events);
        ASSERT_EQ(core_start(c, "Quick", "sig-other", NULL, NULL, NULL), 0);
        ASSERT_DUR_OK(c, dur_client_signal(c, "sig-other", NULL, "s", NULL));
        dur_client_free(c);
        printf("limits: --max-signals-per-run=3 crossed: resource_exhausted, buffered signals "
               "counted, also after a SIGKILL\n");
}

/* ---- daemon-wide limits ---- */

/* A msgpack string of @size bytes in all (str 16 header + 'x's), in @buf. */
static dur_buf payload_of(char *buf, size_t size) {
        buf[0] = (char) 0xda;
        buf[1] = (char) ((size - 3) >> 8);
        buf[2] = (char) ((size - 3) & 0xff);
        memset(buf + 3, 'x', size - 3);
        return (dur_buf){ .data = buf, .size = size };
}

/* --max-payload-size: a payload of exactly the limit is taken, one byte more is
 * resource_exhausted naming the field and the limit (a start, a signal), and nothing of the
 * refused request is written; the largest accepted value is the frame's, so a larger one is
 * refused at start-up. */
TEST(payload_size) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        static char big[4097];
        dur_buf at = payload_of(big, 4096), over;
        dur_client *c;
        json_t *events, *req;
        int r;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--max-payload-size=4K") });
        c = client_connect();
        ASSERT_EQ(dur_client_start(c, "Quick",
                                   &(dur_start_opts){ .workflow_id = "pay", .task_queue = CORE_QUEUE },
                                   &at, NULL),
                  0);
        ASSERT_DUR_OK(c, dur_client_signal(c, "pay", NULL, "s", &at));
        over = payload_of(big, 4097);
        ASSERT_ERROR(dur_client_start(c, "Quick",
                                      &(dur_start_opts){ .workflow_id = "pay-over",
                                                         .task_queue = CORE_QUEUE },
                                      &over, NULL),
                     -ENOSPC);
        ASSERT_STREQ(dur_client_error_code(c), "resource_exhausted");
        ASSERT_STR_CONTAINS(dur_client_error_message(c),
                            "field \"input\" is larger than the limit of 4096 bytes");
        ASSERT_ERROR(dur_client_signal(c, "pay", NULL, "s", &over), -ENOSPC);
        ASSERT_STR_CONTAINS(dur_client_error_message(c),
                            "field \"input\" is larger than the limit of 4096 bytes");
        events = core_history(c, "pay", NULL);
        ASSERT_EQ(history_count(events, "WorkflowExecutionSignaled"), 1);
        json_decref(events);
        req = ASSERT_NOT_NULL(json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id",
                                        "pay-over"));
        ASSERT_NULL(call_json(c, req, &r));
        ASSERT_EQ(r, -ENOENT);
        json_decref(req);
        assert_other_client_works("pay-other");
        dur_client_free(c);
        printf("limits: --max-payload-size=4K crossed: resource_exhausted, nothing written\n");
}

/* A connection past --max-connections is answered resource_exhausted (id 0) and closed; the
 * connections already open keep working. */
TEST(connections) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_close_ int a = -EBADF, b = -EBADF, extra = -EBADF;
        json_t *ans;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--max-connections=2") });
        a = raw_connect(&d);
        b = raw_connect(&d);
        /* An answer on each proves the daemon accepted both. */
        raw_send(a, "{\"op\": \"ListWorkflows\", \"id\": 1}");
        json_decref(raw_answer(a));
        raw_send(b, "{\"op\": \"ListWorkflows\", \"id\": 1}");
        json_decref(raw_answer(b));

        extra = raw_connect(&d);
        ans = raw_answer(extra);
        ASSERT_ANSWER_ERROR(ans, 0, "resource_exhausted", "too many connections (limit 2)");
        json_decref(ans);
        raw_send(a, "{\"op\": \"StartWorkflow\", \"id\": 2, \"workflow_id\": \"conn\", "
                    "\"workflow_type\": \"T\", \"task_queue\": \"q\"}");
        ans = raw_answer(a);
        ASSERT_NULL(json_object_get(ans, "error"));
        json_decref(ans);
        raw_send(b, "{\"op\": \"DescribeWorkflow\", \"id\": 2, \"workflow_id\": \"conn\"}");
        ans = raw_answer(b);
        ASSERT_NULL(json_object_get(ans, "error"));
        json_decref(ans);
        printf("limits: --max-connections=2 crossed: resource_exhausted (id 0), connection "
               "closed\n");
}

/* A poll past --max-polls-per-connection is resource_exhausted; the parked ones stay parked and
 * another connection is served. */
TEST(polls_per_connection) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_close_ int fd = -EBADF;
        json_t *ans;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--max-polls-per-connection=2") });
        fd = raw_connect(&d);
        for (unsigned id = 1; id <= 3; id++) {
                char req[256];

                snprintf(req, sizeof(req),
                         "{\"op\": \"%s\", \"id\": %u, \"task_queue\": \"idle\", "
                         "\"timeout_usec\": 600000000}",
                         id == 2 ? "PollActivityTask" : "PollWorkflowTask", id);
                raw_send(fd, req);
        }
        ans = raw_answer(fd);
        ASSERT_ANSWER_ERROR(ans, 3, "resource_exhausted", "limit 2");
        json_decref(ans);
        assert_other_client_works("polls-other");
        /* The work goes to a parked poll of the full connection. */
        raw_send(fd, "{\"op\": \"StartWorkflow\", \"id\": 4, \"workflow_id\": \"polled\", "
                     "\"workflow_type\": \"T\", \"task_queue\": \"idle\"}");
        for (unsigned k = 0; k < 2; k++) {
                json_int_t id;

                ans = raw_answer(fd);
                ASSERT_NULL(json_object_get(ans, "error"));
                id = json_integer_value(json_object_get(ans, "id"));
                ASSERT_TRUE(id == 1 || id == 4);
                if (id == 1)
                        ASSERT_STREQ(json_str(json_object_get(ans, "task"), "workflow_id"),
                                     "polled");
                json_decref(ans);
        }
        printf("limits: --max-polls-per-connection=2 crossed: resource_exhausted\n");
}

/* A wait past --max-waits (GetResult or GetHistory with wait) is resource_exhausted. */
TEST(waits) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_close_ int fd = -EBADF;
        dur_client *c;
        json_t *ans;

        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--max-waits=1") });
        c = client_connect();
        ASSERT_EQ(core_start(c, "Quick", "waited", NULL, NULL, NULL), 0);
        fd = raw_connect(&d);
        raw_send(fd, "{\"op\": \"GetResult\", \"id\": 1, \"workflow_id\": \"waited\", "
                     "\"wait\": true}");
        raw_send(fd, "{\"op\": \"GetResult\", \"id\": 2, \"workflow_id\": \"waited\", "
                     "\"wait\": true}");
        raw_send(fd, "{\"op\": \"GetHistory\", \"id\": 3, \"workflow_id\": \"waited\", "
                     "\"wait\": true, \"from_event_id\": 100}");
        ans = raw_answer(fd);
        ASSERT_ANSWER_ERROR(ans, 2, "resource_exhausted", "(limit 1)");
        json_decref(ans);
        ans = raw_answer(fd);
        ASSERT_ANSWER_ERROR(ans, 3, "resource_exhausted", "(limit 1)");
        json_decref(ans);
        assert_other_client_works("waits-other");
        /* The parked wait is answered when the run closes. */
        ASSERT_DUR_OK(c, dur_client_terminate(c, "waited", NULL, "done"));
        ans = raw_answer(fd);
        ASSERT_EQ(json_integer_value(json_object_get(ans, "id")), 1);
        ASSERT_NULL(json_object_get(ans, "error"));
        json_decref(ans);
        dur_client_free(c);
        printf("limits: --max-waits=1 crossed: resource_exhausted for GetResult and "
               "GetHistory\n");
}

DEFINE_TEST_MAIN();
