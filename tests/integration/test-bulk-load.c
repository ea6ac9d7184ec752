/* durabled --bulk-load (daemon/bulkload.h): the runs it writes into a state directory are those
 * the daemon serves afterwards, closed and open, with well-formed histories; an open one takes a
 * signal, a closed one refuses it. */

#include <stdio.h>
#include <string.h>

#include "tests/integration/orders-util.h"

#define N_CLOSED 50
#define N_OPEN 10

/* Runs durabled --bulk-load=@counts on @d's state directory; its exit status. */
static int bulk_load(TestDaemon *d, const char *counts) {
        _cleanup_free_ char *arg = NULL;
        TestRun run = {};
        int r;

        ASSERT_GE(asprintf(&arg, "--bulk-load=%s", counts), 0);
        r = test_run(&run,
                     STRV(test_bin("DURABLED_BIN"), "--user", "--state-dir", d->state_dir, arg),
                     NULL);
        test_run_free(&run);
        return r;
}

/* ListWorkflows with @filter (a JSON object, stolen) plus a limit; the "workflows" array. */
static json_t *list(dur_client *c, json_t *filter) {
        json_t *answer, *workflows;
        int r = 0;

        json_object_set_new(filter, "op", json_string("ListWorkflows"));
        json_object_set_new(filter, "limit", json_integer(1000));
        answer = call_json(c, filter, &r);
        json_decref(filter);
        ASSERT_EQ(r, 0);
        workflows = json_incref(json_object_get(ASSERT_NOT_NULL(answer), "workflows"));
        json_decref(answer);
        return ASSERT_NOT_NULL(workflows);
}

/* Every bulk run is listed once, closed ones Completed and open ones Running. */
static void assert_listed(dur_client *c) {
        json_t *all = list(c, json_object()), *w;
        bool seen[N_CLOSED + N_OPEN] = {};
        size_t i;

        ASSERT_EQ(json_array_size(all), N_CLOSED + N_OPEN);
        json_array_foreach(all, i, w) {
                const char *id = json_str(w, "workflow_id"), *status = json_str(w, "status");
                unsigned n;

                if (sscanf(id, "bulk-closed-%u", &n) == 1) {
                        ASSERT_LT(n, N_CLOSED);
                        ASSERT_STREQ(status, "Completed");
                } else {
                        ASSERT_EQ(sscanf(id, "bulk-open-%u", &n), 1);
                        ASSERT_LT(n, N_OPEN);
                        ASSERT_STREQ(status, "Running");
                        n += N_CLOSED;
                }
                ASSERT_FALSE(seen[n]);
                seen[n] = true;
        }
        json_decref(all);
}

static size_t count(dur_client *c, json_t *filter) {
        json_t *l = list(c, filter);
        size_t n = json_array_size(l);

        json_decref(l);
        return n;
}

TEST(bulk_load) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        json_t *events;

        /* Into a store the daemon created and left, as the benchmark does. */
        test_daemon_start(&d, NULL);
        test_daemon_stop(&d);
        ASSERT_EQ(bulk_load(&d, "50,10"), 0);
        test_daemon_restart(&d);
        c = client_connect();

        assert_listed(c);
        ASSERT_EQ(count(c, json_pack("{s:s}", "status", "Running")), N_OPEN);
        ASSERT_EQ(count(c, json_pack("{s:s}", "status", "Completed")), N_CLOSED);
        /* Run N has type N mod 5 and queue N mod 3: open runs 0 and 5 are Orders. */
        ASSERT_EQ(count(c, json_pack("{s:s, s:s}", "status", "Running", "workflow_type", "Order")),
                  2);
        ASSERT_EQ(count(c, json_pack("{s:s, s:s}", "status", "Completed", "task_queue", "bulk-b")),
                  17);

        events = history_get(c, "bulk-closed-7");
        history_assert_invariants(events);
        ASSERT_EQ(json_array_size(events), 5);
        ASSERT_STREQ(ev_type(json_array_get(events, 4)), "WorkflowExecutionCompleted");
        json_decref(events);

        ASSERT_DUR_OK(c, dur_client_signal(c, "bulk-open-3", NULL, "poke", NULL));
        events = history_get(c, "bulk-open-3");
        history_assert_invariants(events);
        ASSERT_EQ(json_array_size(events), 3);
        ASSERT_STREQ(ev_type(json_array_get(events, 1)), "WorkflowTaskScheduled");
        ASSERT_STREQ(ev_type(json_array_get(events, 2)), "WorkflowExecutionSignaled");
        json_decref(events);
        ASSERT_LT(dur_client_signal(c, "bulk-closed-3", NULL, "poke", NULL), 0);
        ASSERT_STREQ(dur_client_error_code(c), "not_found");
        dur_client_free(c);

        /* A second load into the same store refuses ids that are taken, and exits non-zero. */
        test_daemon_stop(&d);
        ASSERT_NE(bulk_load(&d, "0,1"), 0);
}

DEFINE_TEST_MAIN();
