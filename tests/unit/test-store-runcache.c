/* Tests of daemon/store-runcache.c, and of the store keeping it exact: store_run_get() answers
 * from the cache, so a write or a rollback the cache missed would hand the daemon a run as it no
 * longer is. (Test builds also compare every cached answer with the table: store.c,
 * check_cached_run().) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-runcache.h"
#include "daemon/store.h"
#include "tests/lib/test.h"

static RunRow row(const char *run_id, uint64_t next_event_id) {
        RunRow r = {
                .workflow_id = (char *) "wf",
                .workflow_type = (char *) "Type",
                .task_queue = (char *) "q",
                .status = WORKFLOW_STATUS_RUNNING,
                .next_event_id = next_event_id,
                .uid = 1000,
        };

        snprintf(r.run_id, sizeof(r.run_id), "%s", run_id);
        return r;
}

TEST(least_recently_used_goes_first) {
        RunCache *c = ASSERT_NOT_NULL(runcache_new(3));
        RunRow a = row("a", 1), b = row("b", 2), d = row("d", 4), x = row("c", 3);

        ASSERT_OK(runcache_put(c, &a));
        ASSERT_OK(runcache_put(c, &b));
        ASSERT_OK(runcache_put(c, &x));
        ASSERT_NOT_NULL(runcache_get(c, "a")); /* b is now the least recently used */
        ASSERT_OK(runcache_put(c, &d));
        ASSERT_EQ(runcache_size(c), 3u);
        ASSERT_NULL(runcache_get(c, "b"));
        ASSERT_EQ(runcache_get(c, "a")->next_event_id, 1u);
        ASSERT_EQ(runcache_get(c, "c")->next_event_id, 3u);
        ASSERT_EQ(runcache_get(c, "d")->next_event_id, 4u);
        runcache_free(c);
}

TEST(put_replaces_and_copies) {
        RunCache *c = ASSERT_NOT_NULL(runcache_new(8));
        char wid[] = "order-1";
        RunRow a = row("a", 1);
        RunRow *got;

        a.workflow_id = wid;
        a.result = (Blob){ .ptr = (char *) "\x81", .size = 1 };
        ASSERT_OK(runcache_put(c, &a));
        wid[0] = 'X'; /* the cache holds its own copy */
        got = ASSERT_NOT_NULL(runcache_get(c, "a"));
        ASSERT_STREQ(got->workflow_id, "order-1");
        ASSERT_EQ(got->result.size, 1u);
        ASSERT_TRUE(got->result.ptr != a.result.ptr);

        a.next_event_id = 7;
        ASSERT_OK(runcache_put(c, &a));
        ASSERT_EQ(runcache_size(c), 1u);
        ASSERT_EQ(runcache_get(c, "a")->next_event_id, 7u);

        runcache_forget(c, "a");
        ASSERT_NULL(runcache_get(c, "a"));
        runcache_forget(c, "a"); /* not there: nothing happens */
        ASSERT_OK(runcache_put(c, &a));
        runcache_clear(c);
        ASSERT_EQ(runcache_size(c), 0u);
        runcache_free(c);
}

TEST(row_copy_and_equal) {
        RunRow a = row("a", 1), copy = {};

        a.fairness_key = (char *) "tenant";
        a.failure = (Blob){ .ptr = (char *) "\x80", .size = 1 };
        ASSERT_OK(run_row_copy(&a, &copy));
        ASSERT_TRUE(run_row_equal(&a, &copy));
        copy.sticky_conn = 5;
        ASSERT_FALSE(run_row_equal(&a, &copy));
        copy.sticky_conn = 0;
        free(copy.fairness_key);
        copy.fairness_key = NULL;
        ASSERT_FALSE(run_row_equal(&a, &copy));
        run_row_done(&copy);
}

/* Reads run @id through the store and checks what the daemon would see. */
static void expect_run(Store *s, const char *id, WftState state, uint64_t next_event_id) {
        RunRow r = {};

        ASSERT_OK(store_run_get(s, id, &r));
        ASSERT_EQ(r.wft_state, state);
        ASSERT_EQ(r.next_event_id, next_event_id);
        run_row_done(&r);
}

TEST(the_store_keeps_it_exact) {
        char dir[] = "/tmp/test-store-runcache-XXXXXX", path[128];
        RunRow r = row("0190e8a0-0000-7000-8000-000000000001", 2), got = {};
        Store *s = NULL;

        ASSERT_NOT_NULL(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/db", dir);
        ASSERT_OK(store_open(&s, path, STORE_DURABILITY_NORMAL));
        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_run_insert(s, &r));
        ASSERT_OK(store_commit(s));
        expect_run(s, r.run_id, WFT_NONE, 2); /* read once: now cached */

        /* An update reaches the copy. */
        ASSERT_OK(store_begin(s));
        r.wft_state = WFT_SCHEDULED;
        r.next_event_id = 3;
        ASSERT_OK(store_run_update(s, &r));
        expect_run(s, r.run_id, WFT_SCHEDULED, 3);

        /* A savepoint rolled back takes its update back from the copy too. */
        ASSERT_OK(store_savepoint(s));
        r.wft_state = WFT_STARTED;
        r.next_event_id = 4;
        ASSERT_OK(store_run_update(s, &r));
        expect_run(s, r.run_id, WFT_STARTED, 4);
        store_rollback_to(s);
        expect_run(s, r.run_id, WFT_SCHEDULED, 3);
        ASSERT_OK(store_commit(s));

        /* So does a pass rolled back. */
        ASSERT_OK(store_begin(s));
        r.wft_state = WFT_STARTED;
        r.next_event_id = 4;
        ASSERT_OK(store_run_update(s, &r));
        ASSERT_OK(store_run_set_paused(s, r.run_id, true));
        ASSERT_EQ(store_run_paused(s, r.run_id), 1);
        store_rollback(s);
        expect_run(s, r.run_id, WFT_SCHEDULED, 3);
        ASSERT_EQ(store_run_paused(s, r.run_id), 0);

        /* A closed run's row comes from the table, with its result. */
        ASSERT_OK(store_begin(s));
        r.status = WORKFLOW_STATUS_COMPLETED;
        r.wft_state = WFT_NONE;
        r.result = (Blob){ .ptr = (char *) "\x81\xa2ok\xc3", .size = 5 };
        ASSERT_OK(store_run_update(s, &r));
        ASSERT_OK(store_commit(s));
        ASSERT_OK(store_run_get(s, r.run_id, &got));
        ASSERT_EQ(got.status, WORKFLOW_STATUS_COMPLETED);
        ASSERT_EQ(got.result.size, 5u);
        run_row_done(&got);

        /* A deleted run is gone. */
        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_run_delete(s, r.run_id));
        ASSERT_OK(store_commit(s));
        ASSERT_ERROR(store_run_get(s, r.run_id, &got), -ENOENT);

        store_free(s);
        snprintf(path, sizeof(path), "rm -rf %s", dir);
        ASSERT_EQ(system(path), 0);
}

DEFINE_TEST_MAIN();
