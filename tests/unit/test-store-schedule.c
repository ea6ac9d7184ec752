/* Tests of daemon/store-schedule.c: the next wake-up of the schedules that wake the system, which
 * the daemon asks after every pass that changed a deadline. The store keeps how many such
 * schedules exist, so that the usual daemon without any asks SQLite nothing; the count must follow
 * every change of the schedules table and every rollback, or a suspended host would not wake
 * (the integration tests of the alarm itself need an RTC; these run anywhere). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-schedule.h"
#include "daemon/store.h"
#include "tests/lib/test.h"

static void insert(Store *s, const char *id, bool wake, uint64_t due) {
        ScheduleRow r = { .schedule_id = (char *) id, .uid = 1000, .wake_system = wake };
        static const char def[] = { (char) 0x80 }; /* {} */

        r.def = (Blob){ .ptr = (char *) def, .size = sizeof(def) };
        ASSERT_OK(store_schedule_insert(s, &r));
        ASSERT_OK(store_schedule_deadline_set(s, id, due, due));
}

static int wake_next(Store *s, uint64_t *due) {
        return store_schedule_wake_next(s, due);
}

TEST(wake_next_follows_changes_and_rollbacks) {
        char dir[] = "/tmp/test-store-schedule-XXXXXX", path[128];
        Store *s = NULL;
        uint64_t due = 0;

        ASSERT_NOT_NULL(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/db", dir);
        ASSERT_OK(store_open(&s, path, STORE_DURABILITY_NORMAL));

        /* Only a schedule that does not wake: none to wake for (the count is now 0). */
        ASSERT_OK(store_begin(s));
        insert(s, "sleepy", false, 5000);
        ASSERT_ERROR(wake_next(s, &due), -ENOENT);
        ASSERT_OK(store_commit(s));
        ASSERT_ERROR(wake_next(s, &due), -ENOENT);

        /* A new one that wakes is seen at once, though the count said none. */
        ASSERT_OK(store_begin(s));
        insert(s, "waker", true, 7000);
        ASSERT_OK(wake_next(s, &due));
        ASSERT_EQ(due, 7000u);
        ASSERT_OK(store_commit(s));

        /* Deleted in a pass that rolls back: gone inside the pass, back after the rollback. */
        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_schedule_delete(s, "waker"));
        ASSERT_ERROR(wake_next(s, &due), -ENOENT);
        store_rollback(s);
        ASSERT_OK(wake_next(s, &due));
        ASSERT_EQ(due, 7000u);

        /* The same with a savepoint that rolls back inside a pass that commits. */
        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_savepoint(s));
        ASSERT_OK(store_schedule_delete(s, "waker"));
        ASSERT_ERROR(wake_next(s, &due), -ENOENT);
        store_rollback_to(s);
        ASSERT_OK(wake_next(s, &due));
        ASSERT_OK(store_commit(s));
        ASSERT_EQ(due, 7000u);

        /* Its definition no longer wakes (a unit file edited): none again. */
        ASSERT_OK(store_begin(s));
        {
                ScheduleRow r = {};
                ASSERT_OK(store_schedule_get(s, "waker", &r));
                r.wake_system = false;
                ASSERT_OK(store_schedule_set_def(s, &r));
                schedule_row_done(&r);
        }
        ASSERT_ERROR(wake_next(s, &due), -ENOENT);
        ASSERT_OK(store_commit(s));

        store_free(s);
        snprintf(path, sizeof(path), "rm -rf %s", dir);
        ASSERT_EQ(system(path), 0);
}

DEFINE_TEST_MAIN();
