/* Tests of daemon/taskset.c: the in-memory task queues and their undo journal, which must follow
 * the store's transaction exactly (a rolled-back savepoint or a failed commit takes its task
 * changes back, in their FIFO order). */

#include <stdio.h>
#include <stdlib.h>

#include "daemon/taskset.h"
#include "tests/lib/test.h"

static TaskSet *ts;

static void setup(void) {
        taskset_free(ts);
        ts = ASSERT_NOT_NULL(taskset_new());
}

/* Pops the next task of (kind, queue) and checks it is (run, ref). */
static void expect_pop(TaskKind kind, const char *queue, const char *run, uint64_t ref) {
        char got[37];
        TaskCursor seq = {};
        uint64_t got_ref = 0;

        ASSERT_OK(taskset_pop(ts, kind, queue, &seq, got, &got_ref));
        ASSERT_STREQ(got, run);
        ASSERT_EQ(got_ref, ref);
}

static void expect_empty(TaskKind kind, const char *queue) {
        char got[37];
        TaskCursor seq = {};
        uint64_t ref;

        ASSERT_EQ(taskset_any(ts, kind, queue), 0);
        ASSERT_ERROR(taskset_pop(ts, kind, queue, &seq, got, &ref), -ENOENT);
}

TEST(fifo_per_kind_and_queue) {
        setup();
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "r1", 2, 0));
        ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q", "r1", 5, 0));
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "other", "r2", 2, 0));
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "r3", 2, 0));
        ASSERT_EQ(taskset_count(ts), 4);
        ASSERT_EQ(taskset_any(ts, TASK_WORKFLOW, "q"), 1);
        ASSERT_EQ(taskset_any(ts, TASK_ACTIVITY, "other"), 0);
        expect_pop(TASK_WORKFLOW, "q", "r1", 2);
        expect_pop(TASK_WORKFLOW, "q", "r3", 2);
        expect_empty(TASK_WORKFLOW, "q");
        expect_pop(TASK_ACTIVITY, "q", "r1", 5);
        expect_pop(TASK_WORKFLOW, "other", "r2", 2);
        ASSERT_EQ(taskset_count(ts), 0);
        taskset_commit(ts);
}

TEST(pop_after_a_sequence_number_skips_older_tasks) {
        char run[37];
        TaskCursor seq = {};
        uint64_t ref;

        setup();
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "a", 1, 0));
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "b", 1, 0));
        ASSERT_OK(taskset_mark(ts));
        ASSERT_OK(taskset_pop(ts, TASK_WORKFLOW, "q", &seq, run, &ref));
        ASSERT_STREQ(run, "a");
        taskset_rollback_to_mark(ts); /* "a" is back, and stays first */
        ASSERT_OK(taskset_pop(ts, TASK_WORKFLOW, "q", &seq, run, &ref));
        ASSERT_STREQ(run, "b"); /* the cursor moved past "a" */
        ASSERT_ERROR(taskset_pop(ts, TASK_WORKFLOW, "q", &seq, run, &ref), -ENOENT);
        seq = (TaskCursor){};
        ASSERT_OK(taskset_pop(ts, TASK_WORKFLOW, "q", &seq, run, &ref));
        ASSERT_STREQ(run, "a");
        taskset_commit(ts);
}

TEST(rollback_to_mark_restores_order_and_drops_inserts) {
        setup();
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "a", 1, 0));
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "b", 1, 0));
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "c", 1, 0));
        taskset_commit(ts);

        ASSERT_OK(taskset_mark(ts));
        expect_pop(TASK_WORKFLOW, "q", "a", 1);
        taskset_delete(ts, TASK_WORKFLOW, "c", 1);
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "d", 1, 0));
        ASSERT_EQ(taskset_count(ts), 2);
        taskset_rollback_to_mark(ts);

        ASSERT_EQ(taskset_count(ts), 3);
        expect_pop(TASK_WORKFLOW, "q", "a", 1);
        expect_pop(TASK_WORKFLOW, "q", "b", 1);
        expect_pop(TASK_WORKFLOW, "q", "c", 1);
        expect_empty(TASK_WORKFLOW, "q");
        taskset_commit(ts);
}

TEST(released_savepoint_is_undone_by_the_transaction_rollback) {
        setup();
        ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q", "a", 7, 0));
        taskset_commit(ts);

        ASSERT_OK(taskset_mark(ts));
        expect_pop(TASK_ACTIVITY, "q", "a", 7);
        taskset_release(ts);
        ASSERT_OK(taskset_mark(ts));
        ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q", "b", 8, 0));
        taskset_release(ts);
        taskset_rollback(ts); /* the commit failed: both operations are undone */

        expect_pop(TASK_ACTIVITY, "q", "a", 7);
        expect_empty(TASK_ACTIVITY, "q");
        taskset_commit(ts);
}

TEST(inserted_then_popped_in_one_transaction) {
        setup();
        ASSERT_OK(taskset_mark(ts));
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "a", 1, 0));
        expect_pop(TASK_WORKFLOW, "q", "a", 1);
        taskset_rollback_to_mark(ts);
        expect_empty(TASK_WORKFLOW, "q");

        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "b", 1, 0));
        expect_pop(TASK_WORKFLOW, "q", "b", 1);
        taskset_commit(ts); /* frees "b" once (LeakSanitizer and ASan check) */
        expect_empty(TASK_WORKFLOW, "q");
}

TEST(delete_run_removes_every_task_of_the_run) {
        setup();
        ASSERT_OK(taskset_insert(ts, TASK_WORKFLOW, "q", "a", 1, 0));
        ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q", "a", 5, 0));
        ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q2", "a", 6, 0));
        ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q", "b", 5, 0));
        taskset_delete_run(ts, "a");
        ASSERT_EQ(taskset_count(ts), 1);
        expect_empty(TASK_WORKFLOW, "q");
        expect_pop(TASK_ACTIVITY, "q", "b", 5);
        taskset_delete(ts, TASK_ACTIVITY, "nobody", 1); /* absent: nothing happens */
        taskset_commit(ts);
        ASSERT_EQ(taskset_count(ts), 0);
}

TEST(ordered_entries_sort_by_order_then_arrival) {
        TaskEntry e;

        setup();
        ASSERT_OK(taskset_insert_ordered(ts, TASKSET_WFT_TIMEOUTS, "", "late", 3, 300, 0));
        ASSERT_OK(taskset_insert_ordered(ts, TASKSET_WFT_TIMEOUTS, "", "early", 4, 100, 7));
        ASSERT_OK(taskset_insert_ordered(ts, TASKSET_WFT_TIMEOUTS, "", "tie", 5, 100, 0));
        ASSERT_OK(taskset_peek(ts, TASKSET_WFT_TIMEOUTS, "", &e));
        ASSERT_STREQ(e.run_id, "early");
        ASSERT_EQ(e.order, 100);
        ASSERT_EQ(e.gen, 7);
        ASSERT_EQ(taskset_count(ts), 3); /* peek leaves it */
        taskset_commit(ts);

        ASSERT_OK(taskset_mark(ts));
        ASSERT_OK(taskset_take(ts, TASKSET_WFT_TIMEOUTS, "", &e));
        ASSERT_STREQ(e.run_id, "early");
        ASSERT_OK(taskset_take(ts, TASKSET_WFT_TIMEOUTS, "", &e));
        ASSERT_STREQ(e.run_id, "tie"); /* same order: arrival decides */
        taskset_rollback_to_mark(ts);
        ASSERT_OK(taskset_peek(ts, TASKSET_WFT_TIMEOUTS, "", &e));
        ASSERT_STREQ(e.run_id, "early");

        ASSERT_OK(taskset_get(ts, TASKSET_WFT_TIMEOUTS, "late", 3, &e));
        ASSERT_EQ(e.order, 300);
        ASSERT_ERROR(taskset_get(ts, TASKSET_WFT_TIMEOUTS, "late", 4, &e), -ENOENT);
        ASSERT_ERROR(taskset_get(ts, TASK_WORKFLOW, "late", 3, &e), -ENOENT);
        /* Moved forward: delete and insert again, as store_expire_workflow_tasks() does. */
        taskset_delete(ts, TASKSET_WFT_TIMEOUTS, "late", 3);
        ASSERT_OK(taskset_insert_ordered(ts, TASKSET_WFT_TIMEOUTS, "", "late", 3, 50, 0));
        ASSERT_OK(taskset_peek(ts, TASKSET_WFT_TIMEOUTS, "", &e));
        ASSERT_STREQ(e.run_id, "late");
        /* Not tasks: no queue of a task kind sees them. */
        expect_empty(TASK_WORKFLOW, "");
        taskset_commit(ts);
        taskset_delete_run(ts, "late");
        taskset_delete_run(ts, "early");
        taskset_delete_run(ts, "tie");
        ASSERT_ERROR(taskset_take(ts, TASKSET_WFT_TIMEOUTS, "", &e), -ENOENT);
        taskset_commit(ts);
}

static int count_queue(const char *queue, void *userdata) {
        (*(int *) userdata)++;
        return 0;
}

/* Priority keys: strict between levels, FIFO within one; a rolled-back pop goes back to its
 * level's head; the cursor walks the dispatch order across levels. */
TEST(priority_levels_are_strict_and_fifo_within) {
        static const unsigned prio[] = { 3, 5, 1, 3, 0, 1, 5, 2, 9 };
        static const char *const want[] = { "r2", "r5", "r7", "r0", "r3", "r4", "r8", "r1", "r6" };
        size_t levels[TASK_PRIORITY_LEVELS];
        TaskCursor c = {};
        char run[37];
        uint64_t ref;

        setup();
        for (size_t i = 0; i < ELEMENTSOF(prio); i++) {
                snprintf(run, sizeof(run), "r%zu", i);
                ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q", run, i,
                                         &(TaskPriority){ .priority = prio[i] }));
        }
        taskset_commit(ts);
        /* 0 and 9 are not priority keys: the default level. */
        ASSERT_EQ(taskset_queue_count(ts, TASK_ACTIVITY, "q", levels), ELEMENTSOF(prio));
        ASSERT_EQ(levels[1], 2);
        ASSERT_EQ(levels[2], 1);
        ASSERT_EQ(levels[3], 4);
        ASSERT_EQ(levels[5], 2);
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                ASSERT_OK(taskset_pop(ts, TASK_ACTIVITY, "q", &c, run, &ref));
                ASSERT_STREQ(run, want[i]);
        }
        ASSERT_ERROR(taskset_pop(ts, TASK_ACTIVITY, "q", &c, run, &ref), -ENOENT);
        taskset_rollback(ts);
        c = (TaskCursor){};
        ASSERT_OK(taskset_mark(ts));
        ASSERT_OK(taskset_pop(ts, TASK_ACTIVITY, "q", &c, run, &ref));
        ASSERT_STREQ(run, "r2");
        taskset_rollback_to_mark(ts);
        c = (TaskCursor){};
        ASSERT_OK(taskset_pop(ts, TASK_ACTIVITY, "q", &c, run, &ref));
        ASSERT_STREQ(run, "r2");
        ASSERT_OK(taskset_pop(ts, TASK_ACTIVITY, "q", &c, run, &ref));
        ASSERT_STREQ(run, "r5");
        ts = taskset_free(ts);
}

/* Fairness keys share a level by weight (stride scheduling): a 3:1 pair over a backlog gets 30
 * and 10 of 40 dispatches, give or take one; equal weights alternate exactly; a pop rolled back
 * leaves the shares as they were; key "" is a key like the others. */
TEST(fairness_keys_share_a_level_by_weight) {
        TaskCursor c;
        char run[37];
        uint64_t ref;
        int a = 0, b = 0;

        setup();
        for (int i = 0; i < 80; i++) {
                snprintf(run, sizeof(run), "%c%d", i % 2 ? 'b' : 'a', i);
                ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q", run, (uint64_t) i,
                                         &(TaskPriority){ .fairness_key = i % 2 ? "b" : "a",
                                                          .fairness_weight = i % 2 ? 1 : 3 }));
        }
        taskset_commit(ts);
        for (int i = 0; i < 40; i++) {
                ASSERT_OK(taskset_mark(ts));
                c = (TaskCursor){};
                ASSERT_OK(taskset_pop(ts, TASK_ACTIVITY, "q", &c, run, &ref));
                taskset_rollback_to_mark(ts); /* undone: the same one comes again */
                c = (TaskCursor){};
                ASSERT_OK(taskset_pop(ts, TASK_ACTIVITY, "q", &c, run, &ref));
                if (run[0] == 'a')
                        a++;
                else
                        b++;
        }
        ASSERT_LE(abs(a - 30), 1);
        ASSERT_LE(abs(b - 10), 1);
        ts = taskset_free(ts);

        setup();
        for (int i = 0; i < 20; i++) {
                snprintf(run, sizeof(run), "%c%d", i < 10 ? 'x' : 'y', i);
                ASSERT_OK(taskset_insert(ts, TASK_ACTIVITY, "q", run, (uint64_t) i,
                                         &(TaskPriority){ .fairness_key = i < 10 ? "" : "y" }));
        }
        taskset_commit(ts);
        for (int i = 0; i < 20; i++) {
                c = (TaskCursor){};
                ASSERT_OK(taskset_pop(ts, TASK_ACTIVITY, "q", &c, run, &ref));
                ASSERT_EQ(run[0],
                          i % 2 ? 'y' : 'x'); /* all of x queued first, yet they alternate */
        }
        taskset_commit(ts); /* frees key "y", now empty */
        ASSERT_EQ(taskset_count(ts), 0);
        ts = taskset_free(ts);
}

TEST(many_tasks_grow_the_run_index) {
        char run[37];
        int queues = 0;

        setup();
        for (int i = 0; i < 5000; i++) {
                snprintf(run, sizeof(run), "run-%d", i);
                ASSERT_OK(taskset_insert(ts, i % 2 ? TASK_ACTIVITY : TASK_WORKFLOW,
                                         i % 3 ? "x" : "y", run, (uint64_t) i, 0));
        }
        taskset_commit(ts);
        ASSERT_EQ(taskset_count(ts), 5000);
        ASSERT_OK(taskset_queues(ts, TASK_WORKFLOW, count_queue, &queues));
        ASSERT_EQ(queues, 2);
        for (int i = 0; i < 5000; i += 7) {
                snprintf(run, sizeof(run), "run-%d", i);
                taskset_delete(ts, i % 2 ? TASK_ACTIVITY : TASK_WORKFLOW, run, (uint64_t) i);
        }
        ASSERT_EQ(taskset_count(ts), 5000 - 715);
        taskset_rollback(ts);
        ASSERT_EQ(taskset_count(ts), 5000);
        ts = taskset_free(ts);
}

DEFINE_TEST_MAIN();
