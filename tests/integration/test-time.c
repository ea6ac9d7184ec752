/* Time that survives restarts (DESIGN.md §8), through the real daemon: durable timers whose
 * deadlines pass while the daemon is down fire at once after a restart, in deadline order, and
 * say how late they are; schedules fire, catch up and overlap as durabled.schedule(5) says. */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/worker-util.h"
#include "tests/lib/daemon.h"
#include "tests/lib/test.h"

#define RAW_QUEUE "raw"

static uint64_t realtime_usec(void) {
        struct timespec ts;

        ASSERT_OK_ERRNO(clock_gettime(CLOCK_REALTIME, &ts));
        return (uint64_t) ts.tv_sec * TEST_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Sleeps until CLOCK_REALTIME reaches @usec: the tests below wait for wall time on purpose, to
 * let a deadline pass while no daemon runs. */
static void sleep_until_realtime(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / TEST_USEC_PER_SEC),
                               .tv_nsec = (long) (usec % TEST_USEC_PER_SEC) * 1000 };
        int r;

        while ((r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL)) == EINTR)
                ;
        ASSERT_EQ(r, 0);
}

static void assert_sigkilled(int status) {
        ASSERT_TRUE(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static uint64_t ev_time(const json_t *ev) {
        return (uint64_t) json_integer_value(json_object_get(ev, "time"));
}

/* The deadline of the TimerStarted event of @timer_id in @events. */
static uint64_t timer_deadline(const json_t *events, const char *timer_id) {
        size_t idx = 0;
        json_t *ev;

        while ((ev = history_next(events, "TimerStarted", idx, &idx))) {
                idx++;
                if (streq(ev_str(ev, "timer_id"), timer_id))
                        return ev_time(ev) + ev_uint(ev, "start_to_fire_usec");
        }
        test_fail(__FILE__, __LINE__, "no TimerStarted for timer '%s'", timer_id);
        return 0;
}

TEST(timers_due_while_down_fire_in_deadline_order) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL, *token2 = NULL;
        uint64_t early_deadline, late_deadline, restarted;
        json_t *events, *first, *second;
        size_t size, idx;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_json(c, "Timers", "timers-down", RAW_QUEUE, "{}", 0);
        raw_poll_workflow_task(c, RAW_QUEUE, &token, &size);
        /* The timer with the later deadline is started first. */
        ASSERT_OK(raw_complete_workflow_task(
                c, token, size,
                "[{\"command_type\": \"StartTimer\", \"attributes\": {\"timer_id\": \"late\", "
                "\"start_to_fire_usec\": 1500000}},"
                " {\"command_type\": \"StartTimer\", \"attributes\": {\"timer_id\": \"early\", "
                "\"start_to_fire_usec\": 1000000}}]"));
        events = history_get(c, "timers-down");
        early_deadline = timer_deadline(events, "early");
        late_deadline = timer_deadline(events, "late");
        ASSERT_LT(early_deadline, late_deadline);
        json_decref(events);
        dur_client_free(c);

        assert_sigkilled(test_daemon_kill(&d, SIGKILL));
        sleep_until_realtime(late_deadline + 1);

        restarted = realtime_usec();
        test_daemon_restart(&d);
        c = client_connect();
        /* The workflow task that the firings scheduled: both are in its history. */
        raw_poll_workflow_task(c, RAW_QUEUE, &token2, &size);
        events = history_get(c, "timers-down");
        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "TimerFired"), 2u);
        first = history_next(events, "TimerFired", 0, &idx);
        second = history_next(events, "TimerFired", idx + 1, NULL);
        ASSERT_STREQ(ev_str(first, "timer_id"), "early");
        ASSERT_STREQ(ev_str(second, "timer_id"), "late");
        /* late_by_usec: from the deadline to the firing, so at least the time the daemon was
         * still down after the deadline, and at most until the event was written. */
        ASSERT_GE(ev_uint(first, "late_by_usec"), restarted - early_deadline);
        ASSERT_LE(ev_uint(first, "late_by_usec"), ev_time(first) - early_deadline);
        ASSERT_GE(ev_uint(second, "late_by_usec"), restarted - late_deadline);
        ASSERT_LE(ev_uint(second, "late_by_usec"), ev_time(second) - late_deadline);
        ASSERT_GT(ev_uint(first, "late_by_usec"), ev_uint(second, "late_by_usec"));
        json_decref(events);
        dur_client_free(c);
}

TEST(late_by_is_measured_from_the_deadline) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL, *token2 = NULL;
        json_t *events, *fired;
        uint64_t deadline;
        size_t size;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_json(c, "Timers", "timer-on-time", RAW_QUEUE, "{}", 0);
        raw_poll_workflow_task(c, RAW_QUEUE, &token, &size);
        ASSERT_OK(raw_complete_workflow_task(
                c, token, size,
                "[{\"command_type\": \"StartTimer\", \"attributes\": {\"timer_id\": \"t\", "
                "\"start_to_fire_usec\": 100000}}]"));
        raw_poll_workflow_task(c, RAW_QUEUE, &token2, &size);
        events = history_get(c, "timer-on-time");
        deadline = timer_deadline(events, "t");
        fired = history_must(events, "TimerFired");
        ASSERT_GE(ev_time(fired), deadline);
        ASSERT_LE(ev_uint(fired, "late_by_usec"), ev_time(fired) - deadline);
        json_decref(events);
        dur_client_free(c);
}

/* ---- schedules ---- */

#define USEC UINT64_C(1000000)
#define DAY_USEC (UINT64_C(86400) * USEC)
#define T2020 UINT64_C(1577836800) /* 2020-01-01 00:00:00 UTC */

/* Calls @op with the JSON request @req (taken); returns the answer, or NULL with the error code
 * and message in @code/@message when @code is not NULL (else an error fails the test). */
static json_t *call(dur_client *c, json_t *req, const char **code, const char **message) {
        json_t *answer;
        int r;

        ASSERT_NOT_NULL(req);
        answer = call_json(c, req, &r);
        json_decref(req);
        if (code) {
                *code = r < 0 ? dur_client_error_code(c) : NULL;
                *message = r < 0 ? dur_client_error_message(c) : NULL;
                return answer;
        }
        ASSERT_DUR_OK(c, r);
        return answer;
}

static json_t *describe_schedule(dur_client *c, const char *id) {
        json_t *answer =
                call(c, json_pack("{s:s, s:s}", "op", "DescribeSchedule", "schedule_id", id), NULL,
                     NULL);
        json_t *s = json_incref(json_object_get(answer, "schedule"));

        json_decref(answer);
        return ASSERT_NOT_NULL(s);
}

static uint64_t juint(const json_t *obj, const char *key) {
        json_t *v = json_object_get(obj, key);
        return json_is_integer(v) ? (uint64_t) json_integer_value(v) : 0;
}

/* The schedule's counter @key. */
static uint64_t schedule_uint(dur_client *c, const char *id, const char *key) {
        json_t *s = describe_schedule(c, id);
        uint64_t v = juint(s, key);

        json_decref(s);
        return v;
}

/* The workflows of @queue, newest first. */
static json_t *workflows_of(dur_client *c, const char *queue) {
        json_t *answer = call(
                c, json_pack("{s:s, s:s}", "op", "ListWorkflows", "task_queue", queue), NULL, NULL);
        json_t *w = json_incref(json_object_get(answer, "workflows"));

        json_decref(answer);
        return ASSERT_NOT_NULL(w);
}

/* The status of workflow @wid, or NULL when there is none; malloc'd. */
static char *status_of(dur_client *c, const char *wid) {
        const char *code, *message;
        json_t *answer =
                call(c, json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", wid),
                     &code, &message);
        char *s = NULL;

        if (answer)
                s = ASSERT_NOT_NULL(
                        strdup(json_str(json_object_get(answer, "workflow"), "status")));
        else
                ASSERT_STREQ(code, "not_found");
        json_decref(answer);
        return s;
}

static void assert_status(dur_client *c, const char *wid, const char *status) {
        _cleanup_free_ char *s = status_of(c, wid);

        if (!status) {
                ASSERT_NULL(s);
                return;
        }
        ASSERT_NOT_NULL(s);
        ASSERT_STREQ(s, status);
}

/* "<prefix>-2020-01-01T03:00:00Z" */
static char *scheduled_id(const char *prefix, uint64_t t_usec) {
        time_t sec = (time_t) (t_usec / USEC);
        char when[32], *s;
        struct tm tm;

        ASSERT_NOT_NULL(gmtime_r(&sec, &tm));
        ASSERT_TRUE(strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
        ASSERT_OK_ERRNO(asprintf(&s, "%s-%s", prefix, when));
        return s;
}

/* Creates schedule @id on queue @id: the keys/values of @extra (taken) are added. */
static void create_schedule(dur_client *c, const char *id, json_t *extra) {
        json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "op", "CreateSchedule", "schedule_id", id,
                                "workflow_type", "Scheduled", "task_queue", id);

        ASSERT_NOT_NULL(extra);
        ASSERT_OK(json_object_update(req, extra));
        json_decref(extra);
        json_decref(call(c, req, NULL, NULL));
}

/* Acts on hour @k of 2020-01-01 (the times of "2020-01-01 *:00:00 UTC"), under @overlap. */
static uint64_t backfill_hour(dur_client *c, const char *id, unsigned k, const char *overlap) {
        uint64_t t = (T2020 + (uint64_t) k * 3600) * USEC;
        json_t *answer = call(c,
                              json_pack("{s:s, s:s, s:I, s:I, s:s}", "op", "BackfillSchedule",
                                        "schedule_id", id, "start_time_usec", (json_int_t) (t - 1),
                                        "end_time_usec", (json_int_t) t, "overlap", overlap),
                              NULL, NULL);

        ASSERT_EQ(juint(answer, "times"), 1u);
        json_decref(answer);
        return t;
}

static void terminate(dur_client *c, const char *wid) {
        json_decref(call(c, json_pack("{s:s, s:s}", "op", "TerminateWorkflow", "workflow_id", wid),
                         NULL, NULL));
}

/* A schedule whose times are all in 2020: it acts only when backfilled or triggered. */
static void start_with_past_schedule(TestDaemon *d, dur_client **c, const char *id) {
        test_daemon_start(d, NULL);
        *c = client_connect();
        create_schedule(*c, id, json_pack("{s:[s]}", "calendars", "2020-01-01 *:00:00 UTC"));
}

TEST(overlap_skip_is_the_default) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *w0 = NULL, *w1 = NULL;
        dur_client *c;
        json_t *runs;

        start_with_past_schedule(&d, &c, "skip");
        w0 = scheduled_id("skip", backfill_hour(c, "skip", 0, "skip"));
        assert_status(c, w0, "Running");
        /* The schedule's own policy, when none is given: skip. */
        json_decref(call(c,
                         json_pack("{s:s, s:s, s:I, s:I}", "op", "BackfillSchedule", "schedule_id",
                                   "skip", "start_time_usec", (json_int_t) (T2020 * USEC),
                                   "end_time_usec", (json_int_t) ((T2020 + 3600) * USEC)),
                         NULL, NULL));
        w1 = scheduled_id("skip", (T2020 + 3600) * USEC);
        assert_status(c, w1, NULL);
        ASSERT_EQ(schedule_uint(c, "skip", "overlap_skipped"), 1u);
        ASSERT_EQ(schedule_uint(c, "skip", "action_count"), 1u);
        /* Once the run closed, the next time starts. */
        terminate(c, w0);
        backfill_hour(c, "skip", 2, "skip");
        runs = workflows_of(c, "skip");
        ASSERT_EQ(json_array_size(runs), 2u);
        json_decref(runs);
        dur_client_free(c);
}

TEST(overlap_buffer_one) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *w0 = NULL, *w1 = NULL, *w2 = NULL;
        dur_client *c;

        start_with_past_schedule(&d, &c, "b1");
        w0 = scheduled_id("b1", backfill_hour(c, "b1", 0, "buffer_one"));
        w1 = scheduled_id("b1", backfill_hour(c, "b1", 1, "buffer_one"));
        w2 = scheduled_id("b1", backfill_hour(c, "b1", 2, "buffer_one"));
        assert_status(c, w1, NULL);
        ASSERT_EQ(schedule_uint(c, "b1", "buffered"), 1u);
        ASSERT_EQ(schedule_uint(c, "b1", "buffer_dropped"), 1u);
        /* The run closes: the buffered time starts in the same transaction. */
        terminate(c, w0);
        assert_status(c, w1, "Running");
        assert_status(c, w2, NULL);
        ASSERT_EQ(schedule_uint(c, "b1", "buffered"), 0u);
        dur_client_free(c);
}

TEST(overlap_buffer_all) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *w0 = NULL, *w1 = NULL, *w2 = NULL;
        dur_client *c;

        start_with_past_schedule(&d, &c, "ball");
        w0 = scheduled_id("ball", backfill_hour(c, "ball", 0, "buffer_all"));
        w1 = scheduled_id("ball", backfill_hour(c, "ball", 1, "buffer_all"));
        w2 = scheduled_id("ball", backfill_hour(c, "ball", 2, "buffer_all"));
        ASSERT_EQ(schedule_uint(c, "ball", "buffered"), 2u);
        terminate(c, w0);
        assert_status(c, w1, "Running");
        assert_status(c, w2, NULL);
        terminate(c, w1);
        assert_status(c, w2, "Running");
        ASSERT_EQ(schedule_uint(c, "ball", "buffered"), 0u);
        ASSERT_EQ(schedule_uint(c, "ball", "buffer_dropped"), 0u);
        dur_client_free(c);
}

TEST(overlap_cancel_other) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *w0 = NULL, *w1 = NULL, *token = NULL;
        json_t *events;
        size_t size;
        dur_client *c;

        start_with_past_schedule(&d, &c, "cancel");
        w0 = scheduled_id("cancel", backfill_hour(c, "cancel", 0, "skip"));
        w1 = scheduled_id("cancel", backfill_hour(c, "cancel", 1, "cancel_other"));
        /* The running one is asked to cancel; the new one waits until it closed. */
        events = history_get(c, w0);
        ASSERT_EQ(history_count(events, "WorkflowExecutionCancelRequested"), 1u);
        json_decref(events);
        assert_status(c, w0, "Running");
        assert_status(c, w1, NULL);
        /* Its workflow code honours the request. */
        raw_poll_workflow_task(c, "cancel", &token, &size);
        ASSERT_OK(raw_complete_workflow_task(
                c, token, size,
                "[{\"command_type\": \"CancelWorkflowExecution\", \"attributes\": {}}]"));
        assert_status(c, w0, "Canceled");
        assert_status(c, w1, "Running");
        dur_client_free(c);
}

TEST(overlap_terminate_other) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *w0 = NULL, *w1 = NULL;
        dur_client *c;

        start_with_past_schedule(&d, &c, "term");
        w0 = scheduled_id("term", backfill_hour(c, "term", 0, "skip"));
        w1 = scheduled_id("term", backfill_hour(c, "term", 1, "terminate_other"));
        assert_status(c, w0, "Terminated");
        assert_status(c, w1, "Running");
        dur_client_free(c);
}

TEST(overlap_allow_all) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *w0 = NULL, *w1 = NULL;
        json_t *s, *running;
        dur_client *c;

        start_with_past_schedule(&d, &c, "all");
        w0 = scheduled_id("all", backfill_hour(c, "all", 0, "skip"));
        w1 = scheduled_id("all", backfill_hour(c, "all", 1, "allow_all"));
        assert_status(c, w0, "Running");
        assert_status(c, w1, "Running");
        s = describe_schedule(c, "all");
        running = json_object_get(s, "running");
        ASSERT_EQ(json_array_size(running), 2u);
        ASSERT_STREQ(json_str(json_array_get(running, 0), "workflow_id"), w0);
        ASSERT_EQ(json_array_size(json_object_get(s, "recent_actions")), 2u);
        ASSERT_STREQ(json_str(json_array_get(json_object_get(s, "recent_actions"), 1), "kind"),
                     "backfill");
        json_decref(s);
        dur_client_free(c);
}

/* ---- catch-up after downtime, on the virtual clock ---- */

#define OFFSET_DAYS 3
static const char *const offset_args[] = { "--clock-offset=259200", NULL }; /* 3 days */

/* Creates schedule @id (daily at 03:00 UTC, @extra keys added), SIGKILLs the daemon and starts it
 * again 3 days later on its clock. Returns the virtual time of the restart (a lower bound). */
static uint64_t
daily_schedule_across_downtime(TestDaemon *d, dur_client **c, const char *id, json_t *extra) {
        uint64_t restart;
        json_t *s;

        test_daemon_start(d, NULL);
        *c = client_connect();
        ASSERT_OK(json_object_set_new(extra, "calendars", json_pack("[s]", "*-*-* 03:00 UTC")));
        create_schedule(*c, id, extra);
        dur_client_free(*c);
        assert_sigkilled(test_daemon_kill(d, SIGKILL));

        restart = realtime_usec() + OFFSET_DAYS * DAY_USEC;
        test_daemon_start(d, &(TestDaemonOpts){ .args = offset_args });
        *c = client_connect();
        /* Caught up once the next action is armed after the restart. GetHistory-style bounded
         * poll: the daemon has no long poll for schedules. */
        for (uint64_t give_up = realtime_usec() + test_timeout_usec();;) {
                s = describe_schedule(*c, id);
                if (juint(s, "next_action_time_usec") > restart)
                        break;
                json_decref(s);
                ASSERT_LT(realtime_usec(), give_up);
                (void) usleep(10 * 1000);
        }
        json_decref(s);
        return restart;
}

/* The latest 03:00 UTC at or before @t. */
static uint64_t last_0300(uint64_t t) {
        return (t - 3 * 3600 * USEC) / DAY_USEC * DAY_USEC + 3 * 3600 * USEC;
}

TEST(catchup_collapses_missed_runs_into_one_by_default) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *expected = NULL;
        json_t *runs, *s;
        uint64_t restart;
        dur_client *c;

        restart = daily_schedule_across_downtime(&d, &c, "persist", json_object());
        runs = workflows_of(c, "persist");
        ASSERT_EQ(json_array_size(runs), 1u);
        expected = scheduled_id("persist", last_0300(restart));
        ASSERT_STREQ(json_str(json_array_get(runs, 0), "workflow_id"), expected);
        json_decref(runs);
        s = describe_schedule(c, "persist");
        ASSERT_EQ(juint(s, "action_count"), 1u);
        ASSERT_EQ(juint(s, "missed_catchup"), 0u);
        json_decref(s);
        dur_client_free(c);
}

TEST(catchup_all_starts_every_missed_run) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        json_t *runs;

        daily_schedule_across_downtime(
                &d, &c, "every", json_pack("{s:s, s:s}", "catchup", "all", "overlap", "allow_all"));
        runs = workflows_of(c, "every");
        ASSERT_EQ(json_array_size(runs), (size_t) OFFSET_DAYS);
        json_decref(runs);
        dur_client_free(c);
}

TEST(catchup_all_is_subject_to_the_overlap_policy) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        json_t *runs;

        /* skip: the first caught-up run still runs when the next ones come. */
        daily_schedule_across_downtime(&d, &c, "allskip", json_pack("{s:s}", "catchup", "all"));
        runs = workflows_of(c, "allskip");
        ASSERT_EQ(json_array_size(runs), 1u);
        json_decref(runs);
        ASSERT_EQ(schedule_uint(c, "allskip", "overlap_skipped"), OFFSET_DAYS - 1u);
        dur_client_free(c);
}

TEST(catchup_none_skips_missed_runs) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        json_t *runs;

        daily_schedule_across_downtime(&d, &c, "none", json_pack("{s:s}", "catchup", "none"));
        runs = workflows_of(c, "none");
        ASSERT_EQ(json_array_size(runs), 0u);
        json_decref(runs);
        ASSERT_EQ(schedule_uint(c, "none", "missed_catchup"), (uint64_t) OFFSET_DAYS);
        dur_client_free(c);
}

TEST(catchup_window_bounds_what_is_caught_up) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *expected = NULL;
        uint64_t restart;
        dur_client *c;
        json_t *runs;

        /* A window of one day: of three missed days, only the last one is started. */
        restart = daily_schedule_across_downtime(
                &d, &c, "window",
                json_pack("{s:s, s:s, s:I}", "catchup", "all", "overlap", "allow_all",
                          "catchup_window_usec", (json_int_t) DAY_USEC));
        runs = workflows_of(c, "window");
        ASSERT_EQ(json_array_size(runs), 1u);
        expected = scheduled_id("window", last_0300(restart));
        ASSERT_STREQ(json_str(json_array_get(runs, 0), "workflow_id"), expected);
        json_decref(runs);
        ASSERT_EQ(schedule_uint(c, "window", "missed_catchup"), OFFSET_DAYS - 1u);
        dur_client_free(c);
}

/* ---- the rest of the surface ---- */

TEST(schedule_fires_on_its_calendar) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL, *expected = NULL, *spec = NULL;
        uint64_t t;
        json_t *runs, *s;
        size_t size;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        /* One time, two seconds from now: a real wait, short. */
        t = (realtime_usec() / USEC + 2) * USEC;
        ASSERT_OK_ERRNO(asprintf(&spec, "@%llu", (unsigned long long) (t / USEC)));
        create_schedule(
                c, "once",
                json_pack("{s:[s], s:s}", "calendars", spec, "workflow_id_prefix", "backup"));
        s = describe_schedule(c, "once");
        ASSERT_EQ(juint(s, "next_action_time_usec"), t);
        ASSERT_EQ((uint64_t) json_integer_value(
                          json_array_get(json_object_get(s, "next_times_usec"), 0)),
                  t);
        json_decref(s);
        /* The started run's first workflow task is the event to wait for. */
        raw_poll_workflow_task(c, "once", &token, &size);
        runs = workflows_of(c, "once");
        ASSERT_EQ(json_array_size(runs), 1u);
        expected = scheduled_id("backup", t);
        ASSERT_STREQ(json_str(json_array_get(runs, 0), "workflow_id"), expected);
        ASSERT_STREQ(json_str(json_array_get(runs, 0), "workflow_type"), "Scheduled");
        json_decref(runs);
        s = describe_schedule(c, "once");
        ASSERT_EQ(juint(s, "action_count"), 1u);
        ASSERT_EQ(juint(s, "next_action_time_usec"), 0u); /* no more times */
        ASSERT_EQ(json_array_size(json_object_get(s, "next_times_usec")), 0u);
        ASSERT_EQ(juint(json_array_get(json_object_get(s, "recent_actions"), 0),
                        "scheduled_time_usec"),
                  t);
        json_decref(s);
        dur_client_free(c);
}

TEST(pause_on_failure) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL;
        json_t *s;
        size_t size;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        create_schedule(c, "fragile",
                        json_pack("{s:[s], s:b}", "calendars", "2020-01-01 *:00:00 UTC",
                                  "pause_on_failure", true));
        json_decref(call(c,
                         json_pack("{s:s, s:s}", "op", "TriggerSchedule", "schedule_id", "fragile"),
                         NULL, NULL));
        raw_poll_workflow_task(c, "fragile", &token, &size);
        ASSERT_OK(raw_complete_workflow_task(
                c, token, size,
                "[{\"command_type\": \"FailWorkflowExecution\", \"attributes\": {\"failure\": "
                "{\"message\": \"disk full\", \"type\": \"Boom\"}}}]"));
        s = describe_schedule(c, "fragile");
        ASSERT_TRUE(json_is_true(json_object_get(s, "paused")));
        ASSERT_STR_CONTAINS(json_str(s, "note"), "failed");
        ASSERT_STREQ(json_str(json_array_get(json_object_get(s, "recent_actions"), 0), "status"),
                     "Failed");
        json_decref(s);
        dur_client_free(c);
}

TEST(pause_unpause_trigger_delete) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        const char *code, *message;
        json_t *s, *runs;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        create_schedule(c, "hourly", json_pack("{s:[s]}", "calendars", "hourly"));
        ASSERT_GT(schedule_uint(c, "hourly", "next_action_time_usec"), 0u);

        json_decref(call(c,
                         json_pack("{s:s, s:s, s:s}", "op", "PauseSchedule", "schedule_id",
                                   "hourly", "note", "maintenance window"),
                         NULL, NULL));
        s = describe_schedule(c, "hourly");
        ASSERT_TRUE(json_is_true(json_object_get(s, "paused")));
        ASSERT_STREQ(json_str(s, "note"), "maintenance window");
        ASSERT_EQ(juint(s, "next_action_time_usec"), 0u); /* nothing armed while paused */
        json_decref(s);

        /* A trigger acts even while paused, as Temporal's does. */
        json_decref(call(c,
                         json_pack("{s:s, s:s}", "op", "TriggerSchedule", "schedule_id", "hourly"),
                         NULL, NULL));
        runs = workflows_of(c, "hourly");
        ASSERT_EQ(json_array_size(runs), 1u);

        json_decref(call(c,
                         json_pack("{s:s, s:s}", "op", "UnpauseSchedule", "schedule_id", "hourly"),
                         NULL, NULL));
        s = describe_schedule(c, "hourly");
        ASSERT_TRUE(json_is_false(json_object_get(s, "paused")));
        ASSERT_GT(juint(s, "next_action_time_usec"), 0u);
        json_decref(s);

        json_decref(call(c,
                         json_pack("{s:s, s:s}", "op", "DeleteSchedule", "schedule_id", "hourly"),
                         NULL, NULL));
        ASSERT_NULL(call(c,
                         json_pack("{s:s, s:s}", "op", "DescribeSchedule", "schedule_id", "hourly"),
                         &code, &message));
        ASSERT_STREQ(code, "not_found");
        ASSERT_STR_CONTAINS(message, "schedule 'hourly' not found");
        /* The runs it started are not touched. */
        assert_status(c, json_str(json_array_get(runs, 0), "workflow_id"), "Running");
        json_decref(runs);
        dur_client_free(c);
}

static void assert_create_fails(dur_client *c, json_t *req, const char *code, const char *needle) {
        const char *got_code, *message;

        ASSERT_NULL(call(c, req, &got_code, &message));
        ASSERT_STREQ(got_code, code);
        ASSERT_STR_CONTAINS(message, needle);
}

TEST(bad_schedules_are_refused_and_change_nothing) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        json_t *answer;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
#define CREATE(...) json_pack("{s:s, s:s, s:s, s:s" __VA_ARGS__)
        assert_create_fails(c,
                            CREATE(", s:[s]}", "op", "CreateSchedule", "schedule_id", "x",
                                   "workflow_type", "T", "task_queue", "q", "calendars",
                                   "*-*-* 25:00"),
                            "invalid_argument", "invalid calendar spec: hour 25 is out of range");
        assert_create_fails(c,
                            CREATE("}", "op", "CreateSchedule", "schedule_id", "x", "workflow_type",
                                   "T", "task_queue", "q"),
                            "invalid_argument", "at least one calendar spec or interval");
        assert_create_fails(c,
                            CREATE(", s:[s], s:s}", "op", "CreateSchedule", "schedule_id", "x",
                                   "workflow_type", "T", "task_queue", "q", "calendars", "daily",
                                   "overlap", "sometimes"),
                            "invalid_argument", "unknown overlap policy 'sometimes'");
        assert_create_fails(c,
                            CREATE(", s:[{s:I}]}", "op", "CreateSchedule", "schedule_id", "x",
                                   "workflow_type", "T", "task_queue", "q", "intervals",
                                   "every_usec", (json_int_t) 1000),
                            "invalid_argument", "every_usec must be at least 1 s");
        assert_create_fails(c,
                            CREATE(", s:[s], s:I}", "op", "CreateSchedule", "schedule_id", "x",
                                   "workflow_type", "T", "task_queue", "q", "calendars", "daily",
                                   "catchup_window_usec", (json_int_t) 1000),
                            "invalid_argument", "catchup_window_usec must be at least 10 s");
        /* Nothing was created. */
        answer = call(c, json_pack("{s:s}", "op", "ListSchedules"), NULL, NULL);
        ASSERT_EQ(json_array_size(json_object_get(answer, "schedules")), 0u);
        json_decref(answer);

        /* Limits: 16 specs of each kind, 1000 times per backfill. */
        {
                json_t *req = CREATE(", s:[]}", "op", "CreateSchedule", "schedule_id", "many",
                                     "workflow_type", "T", "task_queue", "q", "calendars");

                for (int i = 0; i < 17; i++)
                        ASSERT_OK(json_array_append_new(json_object_get(req, "calendars"),
                                                        json_string("daily")));
                assert_create_fails(c, req, "invalid_argument", "more than 16 calendar specs");
        }
        create_schedule(c, "minutely", json_pack("{s:[s]}", "calendars", "minutely"));
        assert_create_fails(c,
                            json_pack("{s:s, s:s, s:I, s:I}", "op", "BackfillSchedule",
                                      "schedule_id", "minutely", "start_time_usec",
                                      (json_int_t) (T2020 * USEC), "end_time_usec",
                                      (json_int_t) ((T2020 + 86400) * USEC)),
                            "invalid_argument", "more than 1000 times: split it");
        ASSERT_EQ(schedule_uint(c, "minutely", "action_count"), 0u);

        create_schedule(c, "dup", json_pack("{s:[s]}", "calendars", "daily"));
        assert_create_fails(c,
                            CREATE(", s:[s]}", "op", "CreateSchedule", "schedule_id", "dup",
                                   "workflow_type", "T", "task_queue", "q", "calendars", "weekly"),
                            "already_started", "schedule 'dup' already exists");
#undef CREATE
        dur_client_free(c);
}

TEST(jitter_is_deterministic_across_restarts) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        uint64_t first, nominal;
        json_t *s;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        create_schedule(c, "jittery",
                        json_pack("{s:[s], s:I}", "calendars", "*-*-* 00/6:00:00", "jitter_usec",
                                  (json_int_t) (3600 * USEC)));
        s = describe_schedule(c, "jittery");
        first = juint(s, "next_action_time_usec");
        nominal = (uint64_t) json_integer_value(
                json_array_get(json_object_get(s, "next_times_usec"), 0));
        ASSERT_GE(first, nominal);
        ASSERT_LT(first, nominal + 3600 * USEC);
        json_decref(s);
        dur_client_free(c);

        assert_sigkilled(test_daemon_kill(&d, SIGKILL));
        test_daemon_restart(&d);
        c = client_connect();
        ASSERT_EQ(schedule_uint(c, "jittery", "next_action_time_usec"), first);
        dur_client_free(c);
}

/* ---- durablectl schedule ---- */

static const TestRunOpts ctl_opts = { .env = STRV("DURABLECTL_PAGER=cat", "NO_COLOR=1", "TZ=UTC") };

#define CTL(r, ...)                                                                      \
        ({                                                                               \
                test_run_free(r);                                                        \
                test_run((r), STRV(test_bin("DURABLECTL_BIN"), __VA_ARGS__), &ctl_opts); \
        })

TEST(durablectl_schedule_end_to_end) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_run_free) TestRun r = {};
        json_t *j;

        test_daemon_start(&d, NULL);
        ASSERT_EQ(CTL(&r, "schedule", "create", "nightly", "--calendar", "Mon..Fri 03:00 UTC",
                      "--interval", "12h/1h", "--type", "Backup", "--task-queue", "backups",
                      "--input", "{\"path\": \"/home\"}", "--overlap", "buffer_one", "--catchup",
                      "all", "--catchup-window", "2d", "--id-prefix", "backup", "--end-time",
                      "2199-01-01 00:00 UTC"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "Created schedule nightly");

        ASSERT_EQ(CTL(&r, "schedule", "list"), 0);
        ASSERT_STR_CONTAINS(r.out, "nightly");
        ASSERT_STR_CONTAINS(r.out, "Backup");
        ASSERT_STR_CONTAINS(r.out, "active");

        ASSERT_EQ(CTL(&r, "schedule", "describe", "nightly"), 0);
        ASSERT_STR_CONTAINS(r.out, "Calendar: Mon..Fri *-*-* 03:00:00 UTC");
        ASSERT_STR_CONTAINS(r.out, "Interval: every 12h, offset 1h");
        ASSERT_STR_CONTAINS(r.out, "start Backup on backups as backup-<time>");
        ASSERT_STR_CONTAINS(r.out, "overlap buffer_one, catch-up all (window 2d)");
        ASSERT_STR_CONTAINS(r.out, "Next: ");

        ASSERT_EQ(CTL(&r, "--json", "schedule", "describe", "nightly"), 0);
        j = ASSERT_NOT_NULL(json_loads(r.out, 0, NULL));
        ASSERT_STREQ(json_str(json_object_get(j, "definition"), "overlap"), "buffer_one");
        ASSERT_STREQ(json_str(json_object_get(json_object_get(j, "definition"), "input"), "path"),
                     "/home");
        ASSERT_EQ(json_array_size(json_object_get(j, "next_times_usec")), 10u);
        json_decref(j);

        ASSERT_EQ(CTL(&r, "schedule", "trigger", "nightly"), 0);
        ASSERT_EQ(CTL(&r, "schedule", "backfill", "nightly", "--start-time", "2026-01-05 00:00 UTC",
                      "--end-time", "2026-01-05 23:59 UTC"),
                  0);
        /* 01:00, 03:00 and 13:00: the first waits in the buffer, the others are dropped. */
        ASSERT_STR_CONTAINS(r.out, "Backfilled 3 times of schedule nightly");
        ASSERT_EQ(CTL(&r, "schedule", "describe", "nightly"), 0);
        ASSERT_STR_CONTAINS(r.out, "Actions: 1 (overlap skipped 0, buffer dropped 2, missed 0), "
                                   "1 buffered");
        ASSERT_STR_CONTAINS(r.out, "Running: backup-");

        ASSERT_EQ(CTL(&r, "schedule", "pause", "nightly", "--note", "disk swap"), 0);
        ASSERT_EQ(CTL(&r, "schedule", "describe", "nightly"), 0);
        ASSERT_STR_CONTAINS(r.out, "State: paused: disk swap");
        ASSERT_EQ(CTL(&r, "schedule", "unpause", "nightly"), 0);
        ASSERT_EQ(CTL(&r, "schedule", "delete", "nightly"), 0);
        ASSERT_EQ(CTL(&r, "schedule", "describe", "nightly"), 1);
        ASSERT_STR_CONTAINS(r.err, "schedule 'nightly' not found (not_found)");
}

/* ---- *.schedule unit files ---- */

static void write_file(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        ASSERT_OK_ERRNO(asprintf(&path, "%s/%s", dir, name));
        f = ASSERT_NOT_NULL(fopen(path, "we"));
        ASSERT_TRUE(fputs(text, f) >= 0);
        ASSERT_EQ(fclose(f), 0);
}

static void remove_file(const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;

        ASSERT_OK_ERRNO(asprintf(&path, "%s/%s", dir, name));
        ASSERT_OK_ERRNO(unlink(path));
}

static char *definition_str(dur_client *c, const char *id, const char *key) {
        json_t *s = describe_schedule(c, id);
        char *v = ASSERT_NOT_NULL(strdup(json_str(json_object_get(s, "definition"), key)));

        json_decref(s);
        return v;
}

static bool schedule_exists(dur_client *c, const char *id) {
        const char *code, *message;
        json_t *a = call(c, json_pack("{s:s, s:s}", "op", "DescribeSchedule", "schedule_id", id),
                         &code, &message);

        if (!a)
                ASSERT_STREQ(code, "not_found");
        json_decref(a);
        return a != NULL;
}

#define NIGHTLY_UNIT(queue)                                 \
        "# every hour of 2020: acts only when backfilled\n" \
        "[Schedule]\n"                                      \
        "OnCalendar=2020-01-01 \\\n    *:00:00 UTC\n"       \
        "WorkflowType=Backup\n"                             \
        "TaskQueue=" queue "\n"                             \
        "Input={\"path\": \"/home\"}\n"                     \
        "Overlap=allow_all\n"                               \
        "Persistent=no\n"                                   \
        "RandomizedDelaySec=1min 30s\n"

TEST(schedule_unit_files) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *dir = NULL, *arg = NULL, *v = NULL, *path = NULL;
        const char *args[2];
        json_t *s;
        dur_client *c;

        dir = ASSERT_NOT_NULL(strdup("/tmp/durabled-units-XXXXXX"));
        ASSERT_NOT_NULL(mkdtemp(dir));
        ASSERT_OK_ERRNO(asprintf(&arg, "--schedule-dir=%s", dir));
        args[0] = arg;
        args[1] = NULL;
        write_file(dir, "nightly.schedule", NIGHTLY_UNIT("backups"));
        write_file(dir, "bad.schedule",
                   "[Schedule]\nOnCalendar=daily\nWorkflowType=X\nTaskQueue=q\nFrobnicate=1\n");
        write_file(dir, "ignored.txt", "not a unit");

        test_daemon_start(&d, &(TestDaemonOpts){ .args = args });
        c = client_connect();
        s = describe_schedule(c, "nightly");
        ASSERT_OK_ERRNO(asprintf(&path, "%s/nightly.schedule", dir));
        ASSERT_STREQ(json_str(s, "source"), path);
        ASSERT_STREQ(
                json_string_value(json_array_get(json_object_get(s, "calendars_normalized"), 0)),
                "2020-01-01 *:00:00 UTC");
        ASSERT_STREQ(json_str(json_object_get(s, "definition"), "catchup"), "none");
        ASSERT_EQ(juint(json_object_get(s, "definition"), "jitter_usec"), 90 * USEC);
        ASSERT_NOT_NULL(json_object_get(json_object_get(s, "definition"), "input"));
        {
                _cleanup_(test_run_free) TestRun r = {};
                json_t *j;

                /* The input survives the normalization byte for byte. */
                ASSERT_EQ(CTL(&r, "--json", "schedule", "describe", "nightly"), 0);
                j = ASSERT_NOT_NULL(json_loads(r.out, 0, NULL));
                ASSERT_STREQ(json_str(json_object_get(json_object_get(j, "definition"), "input"),
                                      "path"),
                             "/home");
                json_decref(j);
        }
        json_decref(s);
        /* A file with an error is refused whole; the daemon runs. */
        ASSERT_FALSE(schedule_exists(c, "bad"));
        ASSERT_FALSE(schedule_exists(c, "ignored"));
        /* A schedule created through the API is not a file's, even if a file of its name
         * comes. */
        create_schedule(c, "api", json_pack("{s:[s]}", "calendars", "daily"));
        backfill_hour(c, "nightly", 0, "allow_all");
        dur_client_free(c);
        write_file(dir, "api.schedule",
                   "[Schedule]\nOnCalendar=daily\nWorkflowType=FromFile\n"
                   "TaskQueue=q\n");

        /* A changed file replaces the definition; the schedule keeps its history. */
        write_file(dir, "nightly.schedule", NIGHTLY_UNIT("tapes"));
        test_daemon_restart(&d);
        c = client_connect();
        v = definition_str(c, "nightly", "task_queue");
        ASSERT_STREQ(v, "tapes");
        ASSERT_EQ(schedule_uint(c, "nightly", "action_count"), 1u);
        free(v);
        v = definition_str(c, "api", "workflow_type");
        ASSERT_STREQ(v, "Scheduled");
        dur_client_free(c);

        /* A file broken later changes nothing; a removed file removes its schedule, and a
         * schedule created through the API is not the file's to remove. */
        write_file(dir, "nightly.schedule", "[Schedule]\nOnCalendar=someday\n");
        remove_file(dir, "api.schedule");
        test_daemon_restart(&d);
        c = client_connect();
        free(v);
        v = definition_str(c, "nightly", "task_queue");
        ASSERT_STREQ(v, "tapes");
        ASSERT_TRUE(schedule_exists(c, "api"));
        dur_client_free(c);

        remove_file(dir, "nightly.schedule");
        remove_file(dir, "bad.schedule");
        remove_file(dir, "ignored.txt");
        test_daemon_restart(&d);
        c = client_connect();
        ASSERT_FALSE(schedule_exists(c, "nightly"));

        /* SIGHUP reads the files again without a restart. The signal is handled in a pass of
         * its own: a bounded poll, as the daemon has no event to wait for. */
        write_file(dir, "late.schedule", NIGHTLY_UNIT("late"));
        ASSERT_OK_ERRNO(kill(d.proc.pid, SIGHUP));
        for (uint64_t give_up = realtime_usec() + test_timeout_usec();
             !schedule_exists(c, "late");) {
                ASSERT_LT(realtime_usec(), give_up);
                (void) usleep(10 * 1000);
        }
        remove_file(dir, "late.schedule");
        ASSERT_OK_ERRNO(kill(d.proc.pid, SIGHUP));
        for (uint64_t give_up = realtime_usec() + test_timeout_usec();
             schedule_exists(c, "late");) {
                ASSERT_LT(realtime_usec(), give_up);
                (void) usleep(10 * 1000);
        }
        dur_client_free(c);
        ASSERT_OK_ERRNO(rmdir(dir));
}

/* ---- waking from suspend ---- */

/* The remaining time of the daemon's CLOCK_REALTIME_ALARM timerfd, from /proc/PID/fdinfo: what
 * the kernel will wake the host for. 0 when there is none or it is disarmed. */
static uint64_t alarm_remaining_usec(pid_t pid) {
        _cleanup_free_ char *dir = NULL;
        struct dirent *de;
        uint64_t remaining = 0;
        DIR *d;

        ASSERT_OK_ERRNO(asprintf(&dir, "/proc/%d/fdinfo", (int) pid));
        d = ASSERT_NOT_NULL(opendir(dir));
        while ((de = readdir(d))) {
                char path[512], line[256];
                bool alarm = false;
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f)) {
                        unsigned long long sec, nsec;

                        if (strncmp(line, "clockid:", 8) == 0)
                                alarm = atoi(line + 8) == CLOCK_REALTIME_ALARM;
                        else if (alarm && sscanf(line, "it_value: (%llu, %llu)", &sec, &nsec) == 2)
                                remaining = sec * USEC + nsec / 1000;
                }
                fclose(f);
        }
        closedir(d);
        return remaining;
}

/* What sd-event needs for CLOCK_REALTIME_ALARM: the clock readable (an RTC with an alarm) and a
 * timerfd on it (CAP_WAKE_ALARM). */
static bool wake_alarm_available(void) {
        struct timespec ts;
        int fd;

        if (clock_gettime(CLOCK_REALTIME_ALARM, &ts) < 0)
                return false;
        fd = timerfd_create(CLOCK_REALTIME_ALARM, TFD_CLOEXEC);
        if (fd < 0)
                return false;
        (void) close(fd);
        return true;
}

/* Any later request is handled in a pass after the one that re-armed the timers. */
static void sync_daemon(dur_client *c) {
        json_decref(call(c, json_pack("{s:s}", "op", "ListSchedules"), NULL, NULL));
}

TEST(wake_system_arms_an_alarm_for_schedules_that_ask) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        uint64_t next, remaining;
        dur_client *c;

        if (!wake_alarm_available())
                SKIP("no CLOCK_REALTIME_ALARM here (it needs CAP_WAKE_ALARM and an RTC)");
        test_daemon_start(&d, NULL);
        c = client_connect();
        create_schedule(c, "sleepy", json_pack("{s:[s]}", "calendars", "hourly"));
        sync_daemon(c);
        ASSERT_EQ(alarm_remaining_usec(d.proc.pid), 0u);

        create_schedule(
                c, "waker",
                json_pack("{s:[s], s:b}", "calendars", "*-*-* 00/2:30", "wake_system", true));
        sync_daemon(c);
        next = schedule_uint(c, "waker", "next_action_time_usec");
        remaining = alarm_remaining_usec(d.proc.pid);
        ASSERT_GT(remaining, 0u);
        ASSERT_LE(remaining, next - (realtime_usec() - USEC));

        /* Paused, it wakes nobody. */
        json_decref(call(c, json_pack("{s:s, s:s}", "op", "PauseSchedule", "schedule_id", "waker"),
                         NULL, NULL));
        sync_daemon(c);
        ASSERT_EQ(alarm_remaining_usec(d.proc.pid), 0u);
        dur_client_free(c);
}

TEST(wake_system_option_arms_an_alarm_for_every_deadline) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL;
        size_t size;
        dur_client *c;

        if (!wake_alarm_available())
                SKIP("no CLOCK_REALTIME_ALARM here (it needs CAP_WAKE_ALARM and an RTC)");
        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--wake-system") });
        c = client_connect();
        start_json(c, "Timers", "sleeper", RAW_QUEUE, "{}", 0);
        raw_poll_workflow_task(c, RAW_QUEUE, &token, &size);
        ASSERT_OK(raw_complete_workflow_task(
                c, token, size,
                "[{\"command_type\": \"StartTimer\", \"attributes\": {\"timer_id\": \"nap\", "
                "\"start_to_fire_usec\": 3600000000}}]"));
        sync_daemon(c);
        ASSERT_GT(alarm_remaining_usec(d.proc.pid), 0u);
        ASSERT_LE(alarm_remaining_usec(d.proc.pid), 3600 * USEC);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
