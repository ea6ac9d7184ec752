/* Tests of proto/history-lint.c: sound histories pass; each broken rule is found at the event
 * that breaks it and named. Attributes are written as "key=uint,key:str" for brevity. */

#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "proto/history-lint.h"
#include "proto/msg.h"
#include "tests/lib/test.h"

/* Packs "a=1,b:x" as the map {"a": 1, "b": "x"}. */
static void pack_attrs(MsgBuf *b, const char *spec) {
        char copy[512], *save = NULL;
        size_t n = 0;

        snprintf(copy, sizeof(copy), "%s", spec);
        for (const char *p = spec; *p; p++)
                n += *p == ',';
        ASSERT_OK(msgpack_pack_map(&b->pk, *spec ? n + 1 : 0));
        for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '='), *colon = strchr(kv, ':');

                if (eq) {
                        *eq = 0;
                        ASSERT_OK(msg_pack_kv_uint(&b->pk, kv, strtoull(eq + 1, NULL, 10)));
                } else {
                        ASSERT_NOT_NULL(colon);
                        *colon = 0;
                        ASSERT_OK(msg_pack_kv_str(&b->pk, kv, colon + 1));
                }
        }
}

/* Feeds one event; returns what the linter returned. */
static int ev(HistoryLint *l, uint64_t id, EventType type, uint64_t time, const char *spec) {
        MsgBuf b;
        int r;

        msgbuf_init(&b);
        pack_attrs(&b, spec);
        ASSERT_OK(msgbuf_error(&b));
        r = history_lint_event_raw(l, id, type, time, b.sb.data, b.sb.size);
        msgbuf_done(&b);
        return r;
}

/* Events 1-4 of every history below: started, first workflow task completed at 4. */
static HistoryLint *begin(void) {
        HistoryLint *l = NULL;

        ASSERT_OK(history_lint_new(&l));
        ASSERT_OK(ev(l, 1, EVENT_WORKFLOW_EXECUTION_STARTED, 100, "workflow_id:w"));
        ASSERT_OK(ev(l, 2, EVENT_WORKFLOW_TASK_SCHEDULED, 100, "attempt=1"));
        ASSERT_OK(ev(l, 3, EVENT_WORKFLOW_TASK_STARTED, 100, "scheduled_event_id=2"));
        ASSERT_OK(ev(l, 4, EVENT_WORKFLOW_TASK_COMPLETED, 100,
                     "scheduled_event_id=2,started_event_id=3"));
        return l;
}

static void assert_problem(HistoryLint *l, uint64_t event_id, const char *needle) {
        ASSERT_NOT_NULL(history_lint_problem(l));
        ASSERT_STR_CONTAINS(history_lint_problem(l), needle);
        ASSERT_EQ(history_lint_problem_event(l), event_id);
}

TEST(sound_history_passes) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        /* A timer and two activities, one retried into a timeout, the other completed. */
        ASSERT_OK(ev(l, 5, EVENT_TIMER_STARTED, 200,
                     "timer_id:t,start_to_fire_usec=50,workflow_task_completed_event_id=4"));
        ASSERT_OK(ev(l, 6, EVENT_ACTIVITY_TASK_SCHEDULED, 200,
                     "activity_id:a,workflow_task_completed_event_id=4"));
        ASSERT_OK(ev(l, 7, EVENT_ACTIVITY_TASK_SCHEDULED, 200,
                     "activity_id:b,workflow_task_completed_event_id=4"));
        ASSERT_OK(ev(l, 8, EVENT_TIMER_FIRED, 250, "timer_id:t,started_event_id=5"));
        ASSERT_OK(ev(l, 9, EVENT_ACTIVITY_TASK_STARTED, 260, "scheduled_event_id=7,attempt=3"));
        ASSERT_OK(ev(l, 10, EVENT_ACTIVITY_TASK_COMPLETED, 260,
                     "scheduled_event_id=7,started_event_id=9"));
        ASSERT_OK(ev(l, 11, EVENT_ACTIVITY_TASK_TIMED_OUT, 270,
                     "scheduled_event_id=6,started_event_id=0"));
        ASSERT_OK(ev(l, 12, EVENT_WORKFLOW_EXECUTION_SIGNALED, 270, "signal_name:s"));
        ASSERT_OK(ev(l, 13, EVENT_WORKFLOW_TASK_SCHEDULED, 270, "attempt=1"));
        ASSERT_OK(ev(l, 14, EVENT_WORKFLOW_TASK_STARTED, 270, "scheduled_event_id=13"));
        ASSERT_OK(ev(l, 15, EVENT_WORKFLOW_TASK_TIMED_OUT, 280,
                     "scheduled_event_id=13,started_event_id=14"));
        ASSERT_OK(ev(l, 16, EVENT_WORKFLOW_TASK_SCHEDULED, 280, "attempt=2"));
        ASSERT_OK(ev(l, 17, EVENT_WORKFLOW_TASK_STARTED, 280, "scheduled_event_id=16"));
        ASSERT_OK(ev(l, 18, EVENT_WORKFLOW_TASK_COMPLETED, 290,
                     "scheduled_event_id=16,started_event_id=17"));
        /* The timer id is free again once it fired. */
        ASSERT_OK(ev(l, 19, EVENT_TIMER_STARTED, 290,
                     "timer_id:t,start_to_fire_usec=5,workflow_task_completed_event_id=18"));
        ASSERT_OK(ev(l, 20, EVENT_WORKFLOW_EXECUTION_COMPLETED, 290,
                     "workflow_task_completed_event_id=18"));
        ASSERT_OK(history_lint_end(l, WORKFLOW_STATUS_COMPLETED, 21));
        ASSERT_NULL(history_lint_problem(l));
        ASSERT_EQ(history_lint_count(l), 20u);
}

TEST(open_run_passes) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(history_lint_end(l, WORKFLOW_STATUS_RUNNING, 5));
}

TEST(gap_in_event_ids) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_ERROR(ev(l, 6, EVENT_WORKFLOW_EXECUTION_SIGNALED, 200, "signal_name:s"), -EBADMSG);
        assert_problem(l, 6, "expected event id 5");
        /* The first problem stays; later events are refused. */
        ASSERT_ERROR(ev(l, 5, EVENT_WORKFLOW_EXECUTION_SIGNALED, 200, "signal_name:s"), -EBADMSG);
        ASSERT_ERROR(history_lint_end(l, WORKFLOW_STATUS_RUNNING, 0), -EBADMSG);
        assert_problem(l, 6, "expected event id 5");
}

TEST(first_event_must_be_started) {
        _cleanup_(history_lint_freep) HistoryLint *l = NULL;

        ASSERT_OK(history_lint_new(&l));
        ASSERT_ERROR(ev(l, 1, EVENT_WORKFLOW_TASK_SCHEDULED, 1, "attempt=1"), -EBADMSG);
        assert_problem(l, 1, "WorkflowExecutionStarted must be event 1");
}

TEST(second_started_event) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_ERROR(ev(l, 5, EVENT_WORKFLOW_EXECUTION_STARTED, 1, ""), -EBADMSG);
        assert_problem(l, 5, "only it");
}

TEST(workflow_task_out_of_order) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_ERROR(ev(l, 5, EVENT_WORKFLOW_TASK_STARTED, 200, "scheduled_event_id=2"), -EBADMSG);
        assert_problem(l, 5, "not the pending workflow task");
}

TEST(two_pending_workflow_tasks) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_WORKFLOW_TASK_SCHEDULED, 200, "attempt=1"));
        ASSERT_ERROR(ev(l, 6, EVENT_WORKFLOW_TASK_SCHEDULED, 200, "attempt=1"), -EBADMSG);
        assert_problem(l, 6, "still pending");
}

TEST(event_inside_started_workflow_task) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_WORKFLOW_TASK_SCHEDULED, 200, "attempt=1"));
        ASSERT_OK(ev(l, 6, EVENT_WORKFLOW_TASK_STARTED, 200, "scheduled_event_id=5"));
        ASSERT_ERROR(ev(l, 7, EVENT_WORKFLOW_EXECUTION_SIGNALED, 200, "signal_name:s"), -EBADMSG);
        assert_problem(l, 7, "is not closed first");
}

TEST(activity_closed_twice) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_ACTIVITY_TASK_SCHEDULED, 200,
                     "activity_id:a,workflow_task_completed_event_id=4"));
        ASSERT_OK(ev(l, 6, EVENT_ACTIVITY_TASK_STARTED, 200, "scheduled_event_id=5"));
        ASSERT_OK(ev(l, 7, EVENT_ACTIVITY_TASK_COMPLETED, 200,
                     "scheduled_event_id=5,started_event_id=6"));
        ASSERT_ERROR(ev(l, 8, EVENT_ACTIVITY_TASK_FAILED, 200,
                        "scheduled_event_id=5,started_event_id=6"),
                     -EBADMSG);
        assert_problem(l, 8, "scheduled_event_id 5 is not an open activity");
}

TEST(activity_close_names_wrong_start) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_ACTIVITY_TASK_SCHEDULED, 200,
                     "activity_id:a,workflow_task_completed_event_id=4"));
        ASSERT_ERROR(ev(l, 6, EVENT_ACTIVITY_TASK_COMPLETED, 200,
                        "scheduled_event_id=5,started_event_id=3"),
                     -EBADMSG);
        assert_problem(l, 6, "never started");
}

TEST(activity_started_not_followed_by_its_close) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_ACTIVITY_TASK_SCHEDULED, 200,
                     "activity_id:a,workflow_task_completed_event_id=4"));
        ASSERT_OK(ev(l, 6, EVENT_ACTIVITY_TASK_STARTED, 200, "scheduled_event_id=5"));
        ASSERT_ERROR(ev(l, 7, EVENT_WORKFLOW_EXECUTION_SIGNALED, 200, "signal_name:s"), -EBADMSG);
        assert_problem(l, 7, "must close next");
}

TEST(duplicate_open_activity_id) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_ACTIVITY_TASK_SCHEDULED, 200,
                     "activity_id:a,workflow_task_completed_event_id=4"));
        ASSERT_ERROR(ev(l, 6, EVENT_ACTIVITY_TASK_SCHEDULED, 200,
                        "activity_id:a,workflow_task_completed_event_id=4"),
                     -EBADMSG);
        assert_problem(l, 6, "activity id 'a' is already open");
}

TEST(command_event_without_its_task) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_ERROR(ev(l, 5, EVENT_ACTIVITY_TASK_SCHEDULED, 200,
                        "activity_id:a,workflow_task_completed_event_id=3"),
                     -EBADMSG);
        assert_problem(l, 5, "is not the last WorkflowTaskCompleted");
}

TEST(timer_fired_early) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_TIMER_STARTED, 1000,
                     "timer_id:t,start_to_fire_usec=500,workflow_task_completed_event_id=4"));
        ASSERT_ERROR(ev(l, 6, EVENT_TIMER_FIRED, 1499, "timer_id:t,started_event_id=5"), -EBADMSG);
        assert_problem(l, 6, "fired 1 us early");
}

TEST(timer_fired_twice) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_TIMER_STARTED, 1000,
                     "timer_id:t,start_to_fire_usec=5,workflow_task_completed_event_id=4"));
        ASSERT_OK(ev(l, 6, EVENT_TIMER_FIRED, 2000, "timer_id:t,started_event_id=5"));
        ASSERT_ERROR(ev(l, 7, EVENT_TIMER_FIRED, 2000, "timer_id:t,started_event_id=5"), -EBADMSG);
        assert_problem(l, 7, "timer 't' is not running");
}

TEST(event_after_close) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_OK(ev(l, 5, EVENT_WORKFLOW_EXECUTION_TERMINATED, 200, "reason:r"));
        ASSERT_ERROR(ev(l, 6, EVENT_WORKFLOW_EXECUTION_SIGNALED, 200, "signal_name:s"), -EBADMSG);
        assert_problem(l, 6, "already closed with WorkflowExecutionTerminated");
}

TEST(status_and_close_event_disagree) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();
        _cleanup_(history_lint_freep) HistoryLint *l2 = begin();

        ASSERT_ERROR(history_lint_end(l, WORKFLOW_STATUS_COMPLETED, 5), -EBADMSG);
        assert_problem(l, 0, "the run is Completed but has no close event");
        ASSERT_ERROR(history_lint_end(l2, WORKFLOW_STATUS_RUNNING, 7), -EBADMSG);
        assert_problem(l2, 0, "the last event is 4, the run says 6");
}

TEST(garbage_attributes) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();

        ASSERT_ERROR(history_lint_event_raw(l, 5, EVENT_TIMER_FIRED, 1, "\x92", 1), -EBADMSG);
        assert_problem(l, 5, "not one well-formed msgpack map");
}

/* A standalone activity's run (durablectl activity execute) has no workflow code: its events
 * name no WorkflowTaskCompleted. Any other run's activity must. */
TEST(standalone_activity_run_passes) {
        _cleanup_(history_lint_freep) HistoryLint *l = NULL;
        _cleanup_(history_lint_freep) HistoryLint *w = NULL;

        ASSERT_OK(history_lint_new(&l));
        ASSERT_OK(ev(l, 1, EVENT_WORKFLOW_EXECUTION_STARTED, 100,
                     "workflow_id:a,workflow_type:durabled.StandaloneActivity"));
        ASSERT_OK(ev(l, 2, EVENT_ACTIVITY_TASK_SCHEDULED, 100, "activity_id:a"));
        ASSERT_OK(ev(l, 3, EVENT_ACTIVITY_TASK_STARTED, 110, "scheduled_event_id=2,attempt=1"));
        ASSERT_OK(ev(l, 4, EVENT_ACTIVITY_TASK_COMPLETED, 110,
                     "scheduled_event_id=2,started_event_id=3"));
        ASSERT_OK(ev(l, 5, EVENT_WORKFLOW_EXECUTION_COMPLETED, 120, ""));
        ASSERT_OK(history_lint_end(l, WORKFLOW_STATUS_COMPLETED, 6));

        ASSERT_OK(history_lint_new(&w));
        ASSERT_OK(ev(w, 1, EVENT_WORKFLOW_EXECUTION_STARTED, 100,
                     "workflow_id:a,workflow_type:Other"));
        ASSERT_ERROR(ev(w, 2, EVENT_ACTIVITY_TASK_SCHEDULED, 100, "activity_id:a"), -EBADMSG);
}

/* MarkerRecorded (side effects, patches) is a command event with a name. */
TEST(marker_recorded) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();
        _cleanup_(history_lint_freep) HistoryLint *m = begin();
        _cleanup_(history_lint_freep) HistoryLint *n = begin();

        ASSERT_OK(ev(l, 5, EVENT_MARKER_RECORDED, 200,
                     "marker_name:SideEffect,marker_id:1,workflow_task_completed_event_id=4"));
        ASSERT_OK(ev(l, 6, EVENT_WORKFLOW_EXECUTION_COMPLETED, 200,
                     "workflow_task_completed_event_id=4"));
        ASSERT_OK(history_lint_end(l, WORKFLOW_STATUS_COMPLETED, 7));

        ASSERT_ERROR(ev(m, 5, EVENT_MARKER_RECORDED, 200, "marker_id:1"), -EBADMSG);
        assert_problem(m, 5, "workflow_task_completed_event_id");
        ASSERT_ERROR(ev(n, 5, EVENT_MARKER_RECORDED, 200,
                        "marker_name=3,workflow_task_completed_event_id=4"),
                     -EBADMSG);
        assert_problem(n, 5, "\"marker_name\" is missing or not a string");
}

/* Updates: accepted once per update id, completed once, naming their acceptance and the
 * workflow task that completed them; a rejection leaves no event. */
TEST(update_rules) {
        _cleanup_(history_lint_freep) HistoryLint *l = begin();
        _cleanup_(history_lint_freep) HistoryLint *twice = begin();
        _cleanup_(history_lint_freep) HistoryLint *wrong = begin();
        _cleanup_(history_lint_freep) HistoryLint *rejected = begin();
        _cleanup_(history_lint_freep) HistoryLint *again = begin();

        ASSERT_OK(ev(l, 5, EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, 200,
                     "update_id:u,update_name:n"));
        ASSERT_OK(ev(l, 6, EVENT_WORKFLOW_TASK_SCHEDULED, 200, "attempt=1"));
        ASSERT_OK(ev(l, 7, EVENT_WORKFLOW_TASK_STARTED, 200, "scheduled_event_id=6"));
        ASSERT_OK(ev(l, 8, EVENT_WORKFLOW_TASK_COMPLETED, 200,
                     "scheduled_event_id=6,started_event_id=7"));
        ASSERT_OK(ev(l, 9, EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED, 200,
                     "update_id:u,accepted_event_id=5,workflow_task_completed_event_id=8"));
        ASSERT_OK(history_lint_end(l, WORKFLOW_STATUS_RUNNING, 10));

        ASSERT_OK(ev(twice, 5, EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, 200, "update_id:u"));
        ASSERT_ERROR(ev(twice, 6, EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, 200, "update_id:u"),
                     -EBADMSG);
        assert_problem(twice, 6, "update 'u' was already accepted at event 5");

        ASSERT_ERROR(ev(wrong, 5, EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED, 200,
                        "update_id:u,accepted_event_id=3,workflow_task_completed_event_id=4"),
                     -EBADMSG);
        assert_problem(wrong, 5, "is not the acceptance of update 'u'");

        ASSERT_ERROR(ev(rejected, 5, EVENT_WORKFLOW_EXECUTION_UPDATE_REJECTED, 200, "update_id:u"),
                     -EBADMSG);
        assert_problem(rejected, 5, "a rejected update leaves no event");

        ASSERT_OK(ev(again, 5, EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, 200, "update_id:u"));
        ASSERT_ERROR(ev(again, 6, EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED, 200,
                        "update_id:u,accepted_event_id=5,workflow_task_completed_event_id=3"),
                     -EBADMSG);
        assert_problem(again, 6, "is not the last WorkflowTaskCompleted");
}

DEFINE_TEST_MAIN()
