/* Crash tests (DESIGN.md §3): the daemon dies by SIGKILL at every commit of the order workflow,
 * once right before and once right after the commit, and restarts on the same state; the run
 * still completes exactly once with a clean history. Also: a durable timer that came due while
 * the daemon was down fires on restart, and a daemon stopped with SIGTERM exits 0 and loses
 * nothing, and a second daemon on the same state directory is refused.
 *
 * The kill points (daemon/killpoint.h) exist only in builds with -Dfault-injection=true; without
 * them the kill loop is skipped. */

#include <time.h>
#include <unistd.h>

#include "tests/integration/orders-util.h"

/* More commits than the order workflow makes: a loop that reaches it never saw a clean run. */
#define KILL_N_MAX 60

/* Workflow task and activity timeouts short enough that a task lost in a crash (handed out in a
 * committed pass whose answer never left the daemon) is retried within seconds, not minutes. */
#define TASK_TIMEOUT (2 * DUR_SEC)
#define ORDER_INPUT_FMT "{\"order_id\": \"%u\", \"start_to_close_ms\": 2000}"

static bool died_by_sigkill(int status) {
        return status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

static void assert_killed(int status) {
        char buf[64];

        if (!died_by_sigkill(status))
                test_fail(__FILE__, __LINE__, "durabled should have killed itself, but it %s",
                          status == -ETIMEDOUT ? "is still running"
                                               : test_exit_status_str(status, buf));
}

/* Starts the order @n; returns the run id or NULL (with the error in *ret_error) when the
 * connection dropped. */
static char *start_order(dur_client *c, const char *workflow_id, unsigned n, int *ret_error) {
        char input_json[128], request_id[128];
        dur_start_opts opts = { .workflow_id = workflow_id,
                                .task_queue = ORDERS_QUEUE,
                                .task_timeout = TASK_TIMEOUT,
                                .request_id = request_id };
        dur_buf *input;
        char *run_id = NULL;

        snprintf(input_json, sizeof(input_json), ORDER_INPUT_FMT, n);
        snprintf(request_id, sizeof(request_id), "request-%s", workflow_id);
        input = ASSERT_NOT_NULL(dur_buf_from_json(input_json));
        *ret_error = dur_client_start(c, "OrderWorkflow", &opts, input, &run_id);
        dur_buf_free(input);
        return *ret_error < 0 ? NULL : run_id;
}

/* The retry of a start whose answer was lost, as a raw StartWorkflow with the same request id, so
 * that the answer's "started" shows whether the daemon had committed the first one. Returns the
 * run id; *ret_started is the answer's "started". */
static char *restart_order(dur_client *c, const char *workflow_id, unsigned n, bool *ret_started) {
        char input_json[128], request_id[128];
        _cleanup_free_ char *answer_json = NULL;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        dur_buf *input, req, *answer = NULL;
        json_t *j;
        char *run_id;

        snprintf(input_json, sizeof(input_json), ORDER_INPUT_FMT, n);
        snprintf(request_id, sizeof(request_id), "request-%s", workflow_id);
        input = ASSERT_NOT_NULL(dur_buf_from_json(input_json));
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ASSERT_OK(dur_pack(&pk, "{s:s, s:s, s:s, s:s, s:U, s:s}", "op", "StartWorkflow",
                           "workflow_id", workflow_id, "workflow_type", "OrderWorkflow",
                           "task_queue", ORDERS_QUEUE, "task_timeout_usec", TASK_TIMEOUT,
                           "request_id", request_id));
        /* Append the payload (a bin) to the map: one more pair. */
        ASSERT_EQ((unsigned char) sb.data[0], 0x86); /* fixmap of 6 */
        sb.data[0] = (char) 0x87;
        ASSERT_OK(msgpack_pack_str_with_body(&pk, "input", 5));
        ASSERT_OK(msgpack_pack_bin_with_body(&pk, input->data, input->size));
        dur_buf_free(input);

        req = (dur_buf){ .data = sb.data, .size = sb.size };
        ASSERT_DUR_OK(c, dur_client_call(c, &req, &answer));
        msgpack_sbuffer_destroy(&sb);
        answer_json = ASSERT_NOT_NULL(dur_buf_to_json(answer));
        dur_buf_free(answer);
        j = ASSERT_NOT_NULL(json_loads(answer_json, 0, NULL));
        ASSERT_TRUE(json_is_boolean(json_object_get(j, "started")));
        *ret_started = json_is_true(json_object_get(j, "started"));
        ASSERT_NOT_NULL(json_str(j, "run_id"));
        run_id = ASSERT_NOT_NULL(strdup(json_str(j, "run_id")));
        json_decref(j);
        return run_id;
}

/* Everything a finished order run must satisfy, however often the daemon died on the way. */
static void
check_order_run(dur_client *c, const char *workflow_id, unsigned n, const char *run_id) {
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        char want[64];
        json_t *result, *events, *req, *answer, *list;
        int r;

        r = dur_client_result(c, workflow_id, NULL, test_timeout_usec(), &out);
        ASSERT_NE(r, -ETIMEDOUT);
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(out.status, "Completed");
        if (run_id)
                ASSERT_STREQ(out.run_id, run_id);
        result = outcome_result(&out);
        snprintf(want, sizeof(want), "%u", n);
        ASSERT_STREQ(json_str(result, "order_id"), want);
        snprintf(want, sizeof(want), "pay-%u", n);
        ASSERT_STREQ(json_str(result, "payment_id"), want);
        snprintf(want, sizeof(want), "res-%u", n);
        ASSERT_STREQ(json_str(result, "reservation_id"), want);
        json_decref(result);

        /* One run: a start retried after a crash found the committed one. */
        req = ASSERT_NOT_NULL(
                json_pack("{s:s, s:s}", "op", "ListWorkflows", "workflow_id", workflow_id));
        answer = call_json(c, req, &r);
        ASSERT_DUR_OK(c, r);
        list = json_object_get(answer, "workflows");
        ASSERT_EQ(json_array_size(list), 1u);
        ASSERT_STREQ(json_str(json_array_get(list, 0), "run_id"), out.run_id);
        json_decref(answer);
        json_decref(req);

        /* The result was produced once, each step ran once in effect. */
        events = history_get(c, workflow_id);
        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "WorkflowExecutionStarted"), 1u);
        ASSERT_EQ(history_count(events, "WorkflowExecutionCompleted"), 1u);
        ASSERT_STREQ(ev_type(json_array_get(events, json_array_size(events) - 1)),
                     "WorkflowExecutionCompleted");
        ASSERT_EQ(history_count(events, "ActivityTaskScheduled"), 3u);
        ASSERT_EQ(history_count(events, "ActivityTaskCompleted"), 3u);
        for (const char *const *a = STRV("create_order", "process_payment", "reserve_inventory");
             *a; a++) {
                json_t *sched, *done;

                ASSERT_EQ(history_count_scheduled(events, *a), 1u);
                sched = history_scheduled(events, *a);
                done = history_activity_close(events, ev_id(sched));
                ASSERT_NOT_NULL(done);
                ASSERT_STREQ(ev_type(done), "ActivityTaskCompleted");
        }
        json_decref(events);
}

/* One order with the daemon started as DURABLED_KILL_AT=@point:@n. Returns true when the kill
 * point triggered (and the run was then finished and checked after a restart), false when the
 * run completed and the daemon stopped cleanly without reaching it. */
static bool crash_order_at(const char *point, unsigned n) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        _cleanup_free_ char *run_id = NULL, *again = NULL;
        char kill_at[64], workflow_id[64];
        const char *const env[] = { kill_at, NULL };
        dur_client *c = NULL;
        bool killed = true;
        int r, status;

        snprintf(kill_at, sizeof(kill_at), "DURABLED_KILL_AT=%s:%u", point, n);
        snprintf(workflow_id, sizeof(workflow_id), "order-%s-%u", point, n);
        printf("test: --- %s, order %s\n", kill_at, workflow_id);

        r = test_daemon_try_start(&d, &(TestDaemonOpts){ .env = env });
        if (r == -ECHILD)
                assert_killed(d.proc.exit_status); /* killed itself before READY=1 */
        else {
                ASSERT_OK(r);
                /* The worker comes after the start, so that the start is the first commit (a
                 * worker's polls make commits of their own). */
                r = dur_client_connect(&c, NULL);
                if (r >= 0)
                        run_id = start_order(c, workflow_id, n, &r);
                orders_worker_spawn(&worker);
                if (r >= 0)
                        r = dur_client_result(c, workflow_id, NULL, test_timeout_usec(), &out);
                ASSERT_NE(r, -ETIMEDOUT);
                if (r >= 0 || r == DUR_FAILED) {
                        /* The run closed before the kill point: it must have completed. Did a
                         * later commit (workers polling, connections closing) still reach it? */
                        ASSERT_EQ(r, 0);
                        ASSERT_STREQ(out.status, "Completed");
                        c = dur_client_free(c);
                        status = test_daemon_kill(&d, SIGTERM);
                        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                                killed = false; /* checked below after a restart */
                        else
                                assert_killed(status);
                } else {
                        /* The connection broke: the daemon must have killed itself. */
                        c = dur_client_free(c);
                        assert_killed(test_daemon_wait_exit(&d, 0));
                }
        }

        /* The worker does not survive its daemon (libdurable has no reconnection yet), and if
         * it did, killing it is one more crash the run must survive. */
        test_process_free(&worker);
        r = test_daemon_try_start(&d, &(TestDaemonOpts){});
        ASSERT_OK(r);
        orders_worker_spawn(&worker);
        c = client_connect();

        /* A start whose answer was lost is retried with its request id: the daemon returns the
         * run if it committed it, or starts it now. A start that was answered is on disk, and
         * check_order_run() finds that run and no other. */
        if (!run_id) {
                bool started;

                again = restart_order(c, workflow_id, n, &started);
                printf("test: start retried after the crash: %s\n",
                       started ? "a new run (the first was not committed)" : "the committed run");
                /* Killed before its commit, the first start left nothing. Killed after the
                 * daemon's first commit, which is the start's (nothing else commits before a
                 * workflow exists), the first start is on disk. */
                if (streq(point, "before-commit"))
                        ASSERT_TRUE(started);
                else if (n == 1)
                        ASSERT_FALSE(started);
        }
        check_order_run(c, workflow_id, n, again ?: run_id);
        dur_client_free(c);
        return killed;
}

static void crash_loop(const char *point) {
        unsigned n, killed = 0;

        for (n = 1; n <= KILL_N_MAX; n++) {
                if (!crash_order_at(point, n))
                        break;
                killed++;
        }
        printf("test: %s: killed the daemon at %u commits, then a run completed untouched\n", point,
               killed);
        ASSERT_LE(n, KILL_N_MAX);
        /* The order workflow takes several commits: a loop that never killed anything tests
         * nothing (a build without fault injection, or a broken kill point). */
        ASSERT_GE(killed, 5u);
}

static bool have_kill_points(void) {
        /* The kill point reaches the daemon only when built with -Dfault-injection=true. */
#if DURABLED_FAULT_INJECTION
        return true;
#else
        return false;
#endif
}

TEST(kill_after_every_commit) {
        if (!have_kill_points())
                SKIP("built without -Dfault-injection=true");
        crash_loop("after-commit");
}

TEST(kill_before_every_commit) {
        if (!have_kill_points())
                SKIP("built without -Dfault-injection=true");
        crash_loop("before-commit");
}

static uint64_t realtime_usec(void) {
        struct timespec ts;

        ASSERT_OK_ERRNO(clock_gettime(CLOCK_REALTIME, &ts));
        return (uint64_t) ts.tv_sec * TEST_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Sleeps until CLOCK_REALTIME reaches @usec. */
static void sleep_until_realtime(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / TEST_USEC_PER_SEC),
                               .tv_nsec = (long) (usec % TEST_USEC_PER_SEC) * 1000 };
        int r;

        while ((r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL)) == EINTR)
                ;
        ASSERT_EQ(r, 0);
}

TEST(timer_due_while_down_fires_on_restart) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_(dur_outcome_done) dur_outcome out = {};
        _cleanup_free_ char *run_id = NULL;
        dur_start_opts opts = { .workflow_id = "approval-crash", .task_queue = ORDERS_QUEUE };
        uint64_t deadline, give_up;
        json_t *events = NULL, *started = NULL, *fired, *result;
        dur_buf *input;
        dur_client *c;
        size_t idx;

        test_daemon_start(&d, NULL);
        orders_worker_spawn(&worker);
        c = client_connect();
        input = ASSERT_NOT_NULL(dur_buf_from_json("{\"timeout_ms\": 1500}"));
        ASSERT_DUR_OK(c, dur_client_start(c, "ApprovalWorkflow", &opts, input, &run_id));
        dur_buf_free(input);

        /* Until the worker's first task recorded the timer. GetHistory has no long poll, so
         * this is a bounded poll. */
        give_up = realtime_usec() + test_timeout_usec();
        for (;;) {
                events = history_get(c, "approval-crash");
                started = history_next(events, "TimerStarted", 0, &idx);
                if (started)
                        break;
                json_decref(events);
                ASSERT_LT(realtime_usec(), give_up);
                (void) usleep(10 * 1000);
        }
        ASSERT_EQ(ev_uint(started, "start_to_fire_usec"), 1500 * DUR_MSEC);
        deadline = (uint64_t) json_integer_value(json_object_get(started, "time")) +
                   ev_uint(started, "start_to_fire_usec");
        json_decref(events);
        dur_client_free(c);

        assert_killed(test_daemon_kill(&d, SIGKILL));
        test_process_free(&worker);

        /* The one wait for wall time, and the point of this test: the timer's deadline passes
         * while no daemon runs. */
        sleep_until_realtime(deadline + 1);

        test_daemon_restart(&d);
        orders_worker_spawn(&worker);
        c = client_connect();
        ASSERT_DUR_OK(c, dur_client_result(c, "approval-crash", NULL, test_timeout_usec(), &out));
        ASSERT_STREQ(out.status, "Completed");
        ASSERT_STREQ(out.run_id, run_id);
        result = outcome_result(&out);
        ASSERT_STREQ(json_str(result, "status"), "auto_rejected");
        json_decref(result);

        events = history_get(c, "approval-crash");
        history_assert_invariants(events);
        started = ASSERT_NOT_NULL(history_next(events, "TimerStarted", 0, &idx));
        ASSERT_EQ(history_count(events, "TimerStarted"), 1u);
        ASSERT_EQ(history_count(events, "TimerFired"), 1u);
        fired = ASSERT_NOT_NULL(history_next(events, "TimerFired", idx, NULL));
        ASSERT_EQ(ev_uint(fired, "started_event_id"), ev_id(started));
        /* It fired after the restart, at or after its deadline, not before. */
        ASSERT_GE((uint64_t) json_integer_value(json_object_get(fired, "time")), deadline);
        json_decref(events);
        dur_client_free(c);
}

TEST(sigterm_exits_cleanly_and_keeps_runs) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *run_id = NULL;
        json_t *req, *answer, *wf;
        dur_client *c;
        int r;

        test_daemon_start(&d, NULL);
        c = client_connect();
        run_id = start_order(c, "order-sigterm", 7, &r);
        ASSERT_DUR_OK(c, r);
        dur_client_free(c);

        /* SIGTERM: exit status 0 (asserted by test_daemon_stop()). */
        test_daemon_stop(&d);
        test_daemon_start(&d, NULL);
        c = client_connect();

        req = ASSERT_NOT_NULL(
                json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "order-sigterm"));
        answer = call_json(c, req, &r);
        ASSERT_DUR_OK(c, r);
        wf = json_object_get(answer, "workflow");
        ASSERT_STREQ(json_str(wf, "run_id"), run_id);
        ASSERT_STREQ(json_str(wf, "status"), "Running");
        json_decref(answer);
        json_decref(req);

        orders_worker_spawn(&worker);
        check_order_run(c, "order-sigterm", 7, run_id);
        dur_client_free(c);
}


/* One daemon per state directory (a record lock on state/lock): a second one is refused before it
 * touches the database, and the first keeps serving. */
TEST(second_daemon_on_the_same_state_is_refused) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *socket = NULL;
        dur_client *c;
        TestRun r = {};

        test_daemon_start(&d, NULL);
        ASSERT_GE(asprintf(&socket, "%s/second.sock", d.dir), 0);
        ASSERT_EQ(test_run(&r,
                           STRV(test_bin("DURABLED_BIN"), "--user", "--no-bus", "--state-dir",
                                d.state_dir, "--socket", socket),
                           NULL),
                  1);
        ASSERT_STR_CONTAINS(r.err, "Another durabled uses the state directory");
        test_run_free(&r);
        ASSERT_EQ(access(socket, F_OK), -1);
        c = client_connect();
        ASSERT_DUR_OK(c, dur_client_start(c, "OrderWorkflow",
                                          &(dur_start_opts){ .workflow_id = "still-serving",
                                                             .task_queue = ORDERS_QUEUE },
                                          NULL, NULL));
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
