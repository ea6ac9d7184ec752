/* Tests of daemon/store-rowcache.c, and of the store keeping its copies exact: store_run_get()
 * and store_activity_get() answer from the caches, so a write or a rollback they missed would
 * hand the daemon a run or an activity as it no longer is. (Test builds also compare every cached
 * answer with the table: store.c, check_cached_run() and check_cached_activity().) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-internal.h"
#include "daemon/store-rowcache.h"
#include "daemon/store.h"
#include "tests/lib/test.h"

/* ---- the cache itself, over a row of one owned string ---- */

typedef struct Row {
        char *text;
} Row;

static int row_copy(const void *src, void *ret) {
        const Row *s = src;
        Row *r = ret;

        r->text = strdup(s->text);
        return r->text ? 0 : -ENOMEM;
}

static void row_done(void *row) {
        free(((Row *) row)->text);
}

static size_t row_bytes(const void *row) {
        return strlen(((const Row *) row)->text) + 1;
}

static const RowCacheOps ops = { sizeof(Row), row_copy, row_done, row_bytes };

static const char *text_of(RowCache *c, const char *run_id, uint64_t id) {
        Row *r = rowcache_get(c, run_id, id);
        return r ? r->text : NULL;
}

TEST(least_recently_used_goes_first) {
        RowCache *c = ASSERT_NOT_NULL(rowcache_new(&ops, 3, 1000));

        ASSERT_OK(rowcache_put(c, "a", 0, &(Row){ (char *) "a0" }));
        ASSERT_OK(rowcache_put(c, "b", 0, &(Row){ (char *) "b0" }));
        ASSERT_OK(rowcache_put(c, "a", 1, &(Row){ (char *) "a1" }));
        ASSERT_NOT_NULL(text_of(c, "a", 0)); /* b is now the least recently used */
        ASSERT_OK(rowcache_put(c, "c", 0, &(Row){ (char *) "c0" }));
        ASSERT_EQ(rowcache_size(c), 3u);
        ASSERT_NULL(text_of(c, "b", 0));
        ASSERT_STREQ(text_of(c, "a", 0), "a0");
        ASSERT_STREQ(text_of(c, "a", 1), "a1");
        ASSERT_STREQ(text_of(c, "c", 0), "c0");
        rowcache_free(c);
}

TEST(put_copies_and_replaces_forget_run_takes_a_runs_rows) {
        RowCache *c = ASSERT_NOT_NULL(rowcache_new(&ops, 8, 1000));
        char text[] = "first";
        Row *old;

        ASSERT_OK(rowcache_put(c, "a", 7, &(Row){ text }));
        text[0] = 'X'; /* the cache holds its own copy */
        ASSERT_STREQ(text_of(c, "a", 7), "first");

        /* A row that borrows from the copy it replaces (what store.c's updates do). */
        old = rowcache_get(c, "a", 7);
        ASSERT_OK(rowcache_put(c, "a", 7, old));
        ASSERT_EQ(rowcache_size(c), 1u);
        ASSERT_STREQ(text_of(c, "a", 7), "first");

        ASSERT_OK(rowcache_put(c, "a", 8, &(Row){ (char *) "a8" }));
        ASSERT_OK(rowcache_put(c, "b", 7, &(Row){ (char *) "b7" }));
        rowcache_forget_run(c, "a");
        ASSERT_NULL(text_of(c, "a", 7));
        ASSERT_NULL(text_of(c, "a", 8));
        ASSERT_STREQ(text_of(c, "b", 7), "b7");

        rowcache_forget(c, "b", 7);
        ASSERT_NULL(text_of(c, "b", 7));
        rowcache_forget(c, "b", 7); /* not there: nothing happens */
        ASSERT_OK(rowcache_put(c, "b", 7, &(Row){ (char *) "b7" }));
        rowcache_clear(c);
        ASSERT_EQ(rowcache_size(c), 0u);
        rowcache_free(c);
}

TEST(a_byte_budget_bounds_it) {
        RowCache *c = ASSERT_NOT_NULL(rowcache_new(&ops, 100, 40));
        char big[16];

        /* 10 bytes each: four fit in 40; the fifth pushes the oldest out. */
        for (int i = 0; i < 5; i++)
                ASSERT_OK(rowcache_put(c, "r", (uint64_t) i, &(Row){ (char *) "123456789" }));
        ASSERT_EQ(rowcache_size(c), 4u);
        ASSERT_LE(rowcache_bytes(c), 40u);
        ASSERT_NULL(text_of(c, "r", 0));
        ASSERT_STREQ(text_of(c, "r", 4), "123456789");

        /* A row of more than a quarter of the budget is not kept, and takes its older copy. */
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        ASSERT_OK(rowcache_put(c, "r", 4, &(Row){ big }));
        ASSERT_NULL(text_of(c, "r", 4));
        ASSERT_EQ(rowcache_size(c), 3u);
        ASSERT_EQ(rowcache_bytes(c), 30u);
        rowcache_clear(c);
        ASSERT_EQ(rowcache_bytes(c), 0u);
        rowcache_free(c);
}

TEST(row_copy_and_equal) {
        RunRow a = { .run_id = "a", .workflow_id = (char *) "wf", .fairness_key = (char *) "t" };
        RunRow copy = {};

        a.failure = (Blob){ .ptr = (char *) "\x80", .size = 1 };
        ASSERT_OK(run_row_copy(&a, &copy));
        ASSERT_TRUE(run_row_equal(&a, &copy));
        ASSERT_TRUE(copy.workflow_id != a.workflow_id);
        copy.sticky_conn = 5;
        ASSERT_FALSE(run_row_equal(&a, &copy));
        copy.sticky_conn = 0;
        free(copy.fairness_key);
        copy.fairness_key = NULL;
        ASSERT_FALSE(run_row_equal(&a, &copy));
        run_row_done(&copy);
}

/* ---- through the store ---- */

#define RUN_ID "0190e8a0-0000-7000-8000-000000000001"

static Store *open_store(char *dir) {
        char path[128];
        Store *s = NULL;

        ASSERT_NOT_NULL(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/db", dir);
        ASSERT_OK(store_open(&s, path, STORE_DURABILITY_NORMAL));
        return s;
}

static void close_store(Store *s, const char *dir) {
        char cmd[128];

        store_free(s);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ASSERT_EQ(system(cmd), 0);
}

static RunRow new_run(void) {
        return (RunRow){
                .run_id = RUN_ID,
                .workflow_id = (char *) "wf",
                .workflow_type = (char *) "Type",
                .task_queue = (char *) "q",
                .status = WORKFLOW_STATUS_RUNNING,
                .next_event_id = 2,
                .uid = 1000,
                .fairness_key = (char *) "", /* stored as NULL */
        };
}

/* Reads the run through the store and checks what the daemon would see. */
static void expect_run(Store *s, WftState state, uint64_t next_event_id) {
        RunRow r = {};

        ASSERT_OK(store_run_get(s, RUN_ID, &r));
        ASSERT_EQ(r.wft_state, state);
        ASSERT_EQ(r.next_event_id, next_event_id);
        ASSERT_NULL(r.fairness_key);
        ASSERT_EQ(r.priority, 3u);
        run_row_done(&r);
}

TEST(the_store_keeps_run_rows_exact) {
        char dir[] = "/tmp/test-store-rowcache-XXXXXX";
        Store *s = open_store(dir);
        RunRow r = new_run(), got = {};

        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_run_insert(s, &r));
        ASSERT_OK(store_commit(s));
        expect_run(s, WFT_NONE, 2); /* as stored: the defaults filled in */

        /* An update reaches the copy. */
        ASSERT_OK(store_begin(s));
        r.wft_state = WFT_SCHEDULED;
        r.next_event_id = 3;
        ASSERT_OK(store_run_update(s, &r));
        expect_run(s, WFT_SCHEDULED, 3);

        /* A savepoint rolled back takes its update back from the copy too. */
        ASSERT_OK(store_savepoint(s));
        r.wft_state = WFT_STARTED;
        r.next_event_id = 4;
        ASSERT_OK(store_run_update(s, &r));
        expect_run(s, WFT_STARTED, 4);
        store_rollback_to(s);
        expect_run(s, WFT_SCHEDULED, 3);
        ASSERT_OK(store_commit(s));

        /* So does a pass rolled back. */
        ASSERT_OK(store_begin(s));
        r.wft_state = WFT_STARTED;
        r.next_event_id = 4;
        ASSERT_OK(store_run_update(s, &r));
        ASSERT_OK(store_run_set_paused(s, RUN_ID, true));
        ASSERT_EQ(store_run_paused(s, RUN_ID), 1);
        store_rollback(s);
        expect_run(s, WFT_SCHEDULED, 3);
        ASSERT_EQ(store_run_paused(s, RUN_ID), 0);

        /* A closed run's row comes from the table, with its result. */
        ASSERT_OK(store_begin(s));
        r.status = WORKFLOW_STATUS_COMPLETED;
        r.wft_state = WFT_NONE;
        r.result = (Blob){ .ptr = (char *) "\x81\xa2ok\xc3", .size = 5 };
        ASSERT_OK(store_run_update(s, &r));
        ASSERT_OK(store_commit(s));
        ASSERT_OK(store_run_get(s, RUN_ID, &got));
        ASSERT_EQ(got.status, WORKFLOW_STATUS_COMPLETED);
        ASSERT_EQ(got.result.size, 5u);
        run_row_done(&got);

        /* A deleted run is gone. */
        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_run_delete(s, RUN_ID));
        ASSERT_OK(store_commit(s));
        ASSERT_ERROR(store_run_get(s, RUN_ID, &got), -ENOENT);
        close_store(s, dir);
}

static ActivityRow new_activity(uint64_t scheduled_id) {
        return (ActivityRow){
                .run_id = RUN_ID,
                .scheduled_id = scheduled_id,
                .activity_id = (char *) "1",
                .activity_type = (char *) "Charge",
                .task_queue = (char *) "q",
                .input = (Blob){ .ptr = (char *) "\x90", .size = 1 },
                .state = ACTIVITY_SCHEDULED,
                .attempt = 1,
                .retry_backoff = 2.0,
                .heartbeat_details = (Blob){ .ptr = (char *) "", .size = 0 }, /* stored as NULL */
        };
}

static void expect_activity(Store *s, uint64_t id, ActivityState state, const char *identity) {
        ActivityRow a = {};

        ASSERT_OK(store_activity_get(s, RUN_ID, id, &a));
        ASSERT_EQ(a.state, state);
        if (identity)
                ASSERT_STREQ(a.identity, identity);
        else
                ASSERT_NULL(a.identity);
        ASSERT_NULL(a.heartbeat_details.ptr);
        ASSERT_EQ(a.priority, 3u);
        activity_row_done(&a);
}

TEST(the_store_keeps_activity_rows_exact) {
        char dir[] = "/tmp/test-store-rowcache-XXXXXX";
        Store *s = open_store(dir);
        RunRow r = new_run();
        ActivityRow a = new_activity(5), b = new_activity(6), got = {};

        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_run_insert(s, &r));
        ASSERT_OK(store_activity_insert(s, &a));
        ASSERT_OK(store_activity_insert(s, &b));
        ASSERT_OK(store_commit(s));
        expect_activity(s, 5, ACTIVITY_SCHEDULED, NULL);

        /* An attempt that starts, then a savepoint that takes it back. */
        ASSERT_OK(store_begin(s));
        a.state = ACTIVITY_STARTED;
        a.identity = (char *) "worker-1";
        ASSERT_OK(store_activity_update(s, &a));
        expect_activity(s, 5, ACTIVITY_STARTED, "worker-1");
        ASSERT_OK(store_savepoint(s));
        a.identity = (char *) "worker-2";
        ASSERT_OK(store_activity_update(s, &a));
        expect_activity(s, 5, ACTIVITY_STARTED, "worker-2");
        store_rollback_to(s);
        expect_activity(s, 5, ACTIVITY_STARTED, "worker-1");
        ASSERT_OK(store_commit(s));

        /* A deleted activity is gone; purging the run's pending work takes the others. */
        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_activity_delete(s, RUN_ID, 5));
        ASSERT_ERROR(store_activity_get(s, RUN_ID, 5, &got), -ENOENT);
        expect_activity(s, 6, ACTIVITY_SCHEDULED, NULL);
        ASSERT_OK(store_run_purge_pending(s, RUN_ID));
        ASSERT_ERROR(store_activity_get(s, RUN_ID, 6, &got), -ENOENT);
        ASSERT_OK(store_commit(s));
        close_store(s, dir);
}

DEFINE_TEST_MAIN();
