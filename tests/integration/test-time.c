/* Time that survives restarts (DESIGN.md §8), through the real daemon: durable timers whose
 * deadlines pass while the daemon is down fire at once after a restart, in deadline order, and
 * say how late they are; schedules fire, catch up and overlap as durabled.schedule(5) says. */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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

DEFINE_TEST_MAIN();
