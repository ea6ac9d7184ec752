/* GetHistory with wait: a long poll answered when the awaited event exists or the run closes,
 * or with deadline_exceeded when nothing comes in time. No worker is needed: a workflow that
 * nobody works on still receives signals and can be terminated. */

#include <pthread.h>
#include <string.h>

#include "tests/integration/orders-util.h"

typedef struct Poll {
        const char *workflow_id;
        uint64_t from_event_id;
        json_t *answer;
        int error;
} Poll;

static json_t *history_wait_request(const char *workflow_id, uint64_t from, uint64_t timeout) {
        return json_pack("{s:s, s:s, s:I, s:b, s:I}", "op", "GetHistory", "workflow_id",
                         workflow_id, "from_event_id", (json_int_t) from, "wait", 1, "timeout_usec",
                         (json_int_t) timeout);
}

/* call_json() that also drops @request. */
static json_t *call(dur_client *c, json_t *request, int *ret_error) {
        json_t *a = call_json(c, request, ret_error);

        json_decref(request);
        return a;
}

static void *poll_main(void *userdata) {
        Poll *p = userdata;
        dur_client *c = client_connect();

        p->answer =
                call(c, history_wait_request(p->workflow_id, p->from_event_id, test_timeout_usec()),
                     &p->error);
        dur_client_free(c);
        return NULL;
}

static void start_unworked(dur_client *c, const char *id) {
        int error = 0;
        json_t *a = call(c,
                         json_pack("{s:s, s:s, s:s, s:s}", "op", "StartWorkflow", "workflow_id", id,
                                   "workflow_type", "Nobody", "task_queue", "nobody-polls"),
                         &error);
        ASSERT_NOT_NULL(a);
        json_decref(a);
}

TEST(history_wait_times_out_when_nothing_happens) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        json_t *a;
        int error = 0;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_unworked(c, "quiet");
        /* Events 1 and 2 exist (started, task scheduled); 3 never comes. */
        a = call(c, history_wait_request("quiet", 3, 100 * 1000), &error);
        ASSERT_NULL(a);
        ASSERT_STREQ(dur_client_error_code(c), "deadline_exceeded");
        /* Without wait the same request answers at once, with no events. */
        a = call(c,
                 json_pack("{s:s, s:s, s:I}", "op", "GetHistory", "workflow_id", "quiet",
                           "from_event_id", (json_int_t) 3),
                 &error);
        ASSERT_NOT_NULL(a);
        ASSERT_EQ(json_array_size(json_object_get(a, "events")), 0u);
        json_decref(a);
        dur_client_free(c);
}

TEST(history_wait_answers_with_the_new_event) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        Poll p = { .workflow_id = "follow", .from_event_id = 3 };
        pthread_t t;
        dur_client *c;
        json_t *ev;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_unworked(c, "follow");
        ASSERT_EQ(pthread_create(&t, NULL, poll_main, &p), 0);
        ASSERT_OK(dur_client_signal(c, "follow", NULL, "ping", NULL));
        ASSERT_EQ(pthread_join(t, NULL), 0);
        ASSERT_NOT_NULL(p.answer);
        ev = json_array_get(json_object_get(p.answer, "events"), 0);
        ASSERT_NOT_NULL(ev);
        ASSERT_EQ(ev_id(ev), 3u);
        ASSERT_STREQ(ev_type(ev), "WorkflowExecutionSignaled");
        json_decref(p.answer);
        dur_client_free(c);
}

TEST(history_wait_answers_when_the_run_closes) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        Poll p = { .workflow_id = "closing", .from_event_id = 100 };
        pthread_t t;
        dur_client *c;
        json_t *events;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_unworked(c, "closing");
        ASSERT_EQ(pthread_create(&t, NULL, poll_main, &p), 0);
        ASSERT_OK(dur_client_terminate(c, "closing", NULL, "test"));
        ASSERT_EQ(pthread_join(t, NULL), 0);
        /* Event 100 will never exist: the poll ends with the run, with no events past 100. */
        ASSERT_NOT_NULL(p.answer);
        events = json_object_get(p.answer, "events");
        ASSERT_EQ(json_array_size(events), 0u);
        json_decref(p.answer);
        dur_client_free(c);
}

/* durablectl history --follow ends by itself once the run closed, in both output forms. */
TEST(durablectl_follow_ends_when_the_run_closed) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        const TestRunOpts opts = { .env = STRV("NO_COLOR=1") };
        TestRun r = {};
        dur_client *c;
        size_t lines = 0;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_unworked(c, "done");
        ASSERT_OK(dur_client_terminate(c, "done", NULL, "finished"));
        ASSERT_EQ(test_run(&r, STRV(test_bin("DURABLECTL_BIN"), "history", "done", "--follow"),
                           &opts),
                  0);
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionTerminated");
        test_run_free(&r);

        /* --json --follow: one JSON object per line (JSON Lines), the close event last. */
        ASSERT_EQ(
                test_run(&r,
                         STRV(test_bin("DURABLECTL_BIN"), "--json", "history", "done", "--follow"),
                         &opts),
                0);
        for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
                json_error_t e;
                json_t *ev = json_loads(line, 0, &e);

                ASSERT_NOT_NULL(ev);
                ASSERT_EQ(ev_id(ev), ++lines);
                json_decref(ev);
        }
        ASSERT_EQ(lines, 3u); /* started, workflow task scheduled, terminated */
        test_run_free(&r);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
