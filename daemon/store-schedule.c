/* The store's schedule tables; see store-schedule.h and the schema in store.c. Statements come
 * from the store's cache (store_prepare_cached()), prepared once per store. */

#include "daemon/store-schedule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "daemon/store-internal.h"

#define SCHEDULE_COLUMNS                                                           \
        "schedule_id, uid, def, paused, note, create_time, cursor, action_count, " \
        "overlap_skipped, buffer_dropped, missed_catchup, source, wake_system"

typedef sqlite3_stmt Stmt;

/* Every statement here is a string literal, prepared once per store: some run in every loop
 * pass that changes a deadline (store_schedule_wake_next()) or closes a run
 * (store_schedule_of_run()), and preparing them each time cost far more than running them
 * (bench/README.md, change 8). */
static int prepare(Store *s, const char *sql, Stmt **ret) {
        return store_prepare_cached(s, sql, ret);
}

/* Steps a statement that returns no rows. */
static int run(Store *s, Stmt *st) {
        int rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : store_sql_error(s, rc);
}

/* Prepares @sql, binds the schedule id as ?1 and runs it. */
static int run_for_id(Store *s, const char *sql, const char *schedule_id) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r = prepare(s, sql, &st);

        if (r < 0)
                return r;
        store_bind_text(st, 1, schedule_id);
        return run(s, st);
}

void schedule_row_done(ScheduleRow *r) {
        free(r->source);
        free(r->schedule_id);
        free(r->def.ptr);
        free(r->note);
        *r = (ScheduleRow){};
}

int store_schedule_insert(Store *s, const ScheduleRow *r) {
        _cleanup_stmt_ Stmt *st = NULL;
        int k;

        *store_wake_schedules(s) = -1;
        k = prepare(s,
                    "INSERT INTO schedules (" SCHEDULE_COLUMNS
                    ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    &st);
        if (k < 0)
                return k;
        store_bind_text(st, 1, r->schedule_id);
        store_bind_u64(st, 2, r->uid);
        (void) sqlite3_bind_blob64(st, 3, r->def.ptr, r->def.size, SQLITE_STATIC);
        store_bind_u64(st, 4, r->paused);
        store_bind_text(st, 5, r->note);
        store_bind_u64(st, 6, r->create_time);
        store_bind_u64(st, 7, r->cursor);
        store_bind_u64(st, 8, r->action_count);
        store_bind_u64(st, 9, r->overlap_skipped);
        store_bind_u64(st, 10, r->buffer_dropped);
        store_bind_u64(st, 11, r->missed_catchup);
        store_bind_text(st, 12, r->source);
        store_bind_u64(st, 13, r->wake_system);
        return run(s, st);
}

static int read_schedule(Stmt *st, ScheduleRow *ret) {
        ScheduleRow r = {};
        const void *p;
        int k;

        k = store_col_strdup(st, 0, &r.schedule_id);
        if (k >= 0)
                k = store_col_strdup(st, 4, &r.note);
        if (k >= 0)
                k = store_col_strdup(st, 11, &r.source);
        p = sqlite3_column_blob(st, 2);
        r.def.size = (size_t) sqlite3_column_bytes(st, 2);
        r.def.ptr = malloc(r.def.size ? r.def.size : 1);
        if (k < 0 || !r.def.ptr) {
                schedule_row_done(&r);
                return -ENOMEM;
        }
        if (p)
                memcpy(r.def.ptr, p, r.def.size);
        r.uid = (uint32_t) store_col_u64(st, 1);
        r.paused = store_col_u64(st, 3) != 0;
        r.create_time = store_col_u64(st, 5);
        r.cursor = store_col_u64(st, 6);
        r.action_count = store_col_u64(st, 7);
        r.overlap_skipped = store_col_u64(st, 8);
        r.buffer_dropped = store_col_u64(st, 9);
        r.missed_catchup = store_col_u64(st, 10);
        r.wake_system = store_col_u64(st, 12) != 0;
        *ret = r;
        return 0;
}

int store_schedule_get(Store *s, const char *schedule_id, ScheduleRow *ret) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s, "SELECT " SCHEDULE_COLUMNS " FROM schedules WHERE schedule_id = ?", &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, schedule_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc);
        return read_schedule(st, ret);
}

int store_schedule_update(Store *s, const ScheduleRow *r) {
        _cleanup_stmt_ Stmt *st = NULL;
        int k;

        k = prepare(s,
                    "UPDATE schedules SET paused = ?2, note = ?3, cursor = ?4, action_count = ?5, "
                    "overlap_skipped = ?6, buffer_dropped = ?7, missed_catchup = ?8 "
                    "WHERE schedule_id = ?1",
                    &st);
        if (k < 0)
                return k;
        store_bind_text(st, 1, r->schedule_id);
        store_bind_u64(st, 2, r->paused);
        store_bind_text(st, 3, r->note);
        store_bind_u64(st, 4, r->cursor);
        store_bind_u64(st, 5, r->action_count);
        store_bind_u64(st, 6, r->overlap_skipped);
        store_bind_u64(st, 7, r->buffer_dropped);
        store_bind_u64(st, 8, r->missed_catchup);
        return run(s, st);
}

int store_schedule_set_def(Store *s, const ScheduleRow *row) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r;

        *store_wake_schedules(s) = -1;
        r = prepare(s,
                    "UPDATE schedules SET def = ?2, source = ?3, wake_system = ?4 "
                    "WHERE schedule_id = ?1",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, row->schedule_id);
        (void) sqlite3_bind_blob64(st, 2, row->def.ptr, row->def.size, SQLITE_STATIC);
        store_bind_text(st, 3, row->source);
        store_bind_u64(st, 4, row->wake_system);
        return run(s, st);
}

/* How many schedules wake the system: counted when unknown, so that a daemon without any
 * (the usual case) asks no more (bench/README.md, change 14). */
static int wake_schedules(Store *s) {
        _cleanup_stmt_ Stmt *st = NULL;
        int *n = store_wake_schedules(s), r, rc;

        if (*n >= 0)
                return *n;
        r = prepare(s, "SELECT count(*) FROM schedules WHERE wake_system = 1", &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc);
        *n = sqlite3_column_int(st, 0);
        return *n;
}

int store_schedule_wake_next(Store *s, uint64_t *ret_due) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = wake_schedules(s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        r = prepare(s,
                    "SELECT min(d.due) FROM deadlines d JOIN schedules s ON s.schedule_id = d.key "
                    "WHERE d.kind = 8 AND d.run_id = '' AND s.wake_system = 1 AND s.paused = 0",
                    &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc);
        if (sqlite3_column_type(st, 0) == SQLITE_NULL)
                return -ENOENT;
        *ret_due = store_col_u64(st, 0);
        return 0;
}

int store_schedule_delete(Store *s, const char *schedule_id) {
        static const char *const sql[] = {
                "DELETE FROM schedule_actions WHERE schedule_id = ?1",
                "DELETE FROM schedule_buffer WHERE schedule_id = ?1",
                "DELETE FROM schedules WHERE schedule_id = ?1",
        };
        int r = store_schedule_deadline_clear(s, schedule_id);

        *store_wake_schedules(s) = -1;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(sql); i++)
                r = run_for_id(s, sql[i], schedule_id);
        return r;
}

int store_schedules_foreach(Store *s,
                            bool only_uid,
                            uint32_t uid,
                            int (*cb)(const ScheduleRow *r, void *userdata),
                            void *userdata) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s,
                    "SELECT " SCHEDULE_COLUMNS " FROM schedules WHERE ?1 = 0 OR uid = ?2 "
                    "ORDER BY schedule_id",
                    &st);
        if (r < 0)
                return r;
        store_bind_u64(st, 1, only_uid);
        store_bind_u64(st, 2, uid);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                ScheduleRow row;

                r = read_schedule(st, &row);
                if (r >= 0)
                        r = cb(&row, userdata);
                schedule_row_done(&row);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_sql_error(s, rc);
}

int store_schedule_deadline_clear(Store *s, const char *schedule_id) {
        return run_for_id(s, "DELETE FROM deadlines WHERE kind = 8 AND run_id = '' AND key = ?1",
                          schedule_id);
}

int store_schedule_deadline_set(Store *s, const char *schedule_id, uint64_t due, uint64_t nominal) {
        int r = store_schedule_deadline_clear(s, schedule_id);

        if (r < 0)
                return r;
        return store_deadline_insert(s, due, DEADLINE_SCHEDULE, "", nominal, 0, schedule_id);
}

int store_schedule_deadline_get(Store *s,
                                const char *schedule_id,
                                uint64_t *ret_due,
                                uint64_t *ret_nominal) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s, "SELECT due, ref FROM deadlines WHERE kind = 8 AND run_id = '' AND key = ?1",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, schedule_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc);
        *ret_due = store_col_u64(st, 0);
        *ret_nominal = store_col_u64(st, 1);
        return 0;
}

int store_schedule_action_add(Store *s, const char *schedule_id, const ScheduleAction *a) {
        _cleanup_stmt_ Stmt *st = NULL, *prune = NULL;
        int r;

        r = prepare(s,
                    "INSERT INTO schedule_actions (schedule_id, seq, kind, scheduled_time, "
                    "actual_time, workflow_id, run_id) VALUES (?1, (SELECT coalesce(max(seq), 0) "
                    "+ 1 FROM schedule_actions WHERE schedule_id = ?1), ?2, ?3, ?4, ?5, ?6)",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, schedule_id);
        store_bind_u64(st, 2, (uint64_t) a->kind);
        store_bind_u64(st, 3, a->scheduled_time);
        store_bind_u64(st, 4, a->actual_time);
        store_bind_text(st, 5, a->workflow_id);
        store_bind_text(st, 6, a->run_id);
        r = run(s, st);
        if (r < 0)
                return r;
        /* Keep the recent ones and those the overlap policy must still see. */
        r = prepare(s,
                    "DELETE FROM schedule_actions WHERE schedule_id = ?1 AND seq <= "
                    "(SELECT seq FROM schedule_actions WHERE schedule_id = ?1 ORDER BY seq DESC "
                    "LIMIT 1 OFFSET ?2) AND run_id NOT IN (SELECT run_id FROM runs WHERE "
                    "status = 1)",
                    &prune);
        if (r < 0)
                return r;
        store_bind_text(prune, 1, schedule_id);
        store_bind_u64(prune, 2, SCHEDULE_RECENT_ACTIONS);
        return run(s, prune);
}

int store_schedule_actions_foreach(Store *s,
                                   const char *schedule_id,
                                   bool only_running,
                                   int (*cb)(const ScheduleAction *a, void *userdata),
                                   void *userdata) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s,
                    "SELECT a.kind, a.scheduled_time, a.actual_time, a.workflow_id, a.run_id, "
                    "coalesce(r.status, 0) FROM schedule_actions a LEFT JOIN runs r "
                    "ON r.run_id = a.run_id WHERE a.schedule_id = ?1 "
                    "AND (?2 = 0 OR r.status = 1) ORDER BY a.seq",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, schedule_id);
        store_bind_u64(st, 2, only_running);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                ScheduleAction a = {
                        .kind = (ScheduleActionKind) store_col_u64(st, 0),
                        .scheduled_time = store_col_u64(st, 1),
                        .actual_time = store_col_u64(st, 2),
                        .workflow_id = (const char *) sqlite3_column_text(st, 3),
                        .run_id = (const char *) sqlite3_column_text(st, 4),
                        .status = (WorkflowStatus) store_col_u64(st, 5),
                };

                r = cb(&a, userdata);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_sql_error(s, rc);
}

int store_schedule_of_run(Store *s, const char *run_id, char **ret_schedule_id) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s, "SELECT schedule_id FROM schedule_actions WHERE run_id = ?1 LIMIT 1", &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, run_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc);
        return store_col_strdup(st, 0, ret_schedule_id);
}

int store_schedule_buffer_push(Store *s,
                               const char *schedule_id,
                               uint64_t scheduled_time,
                               ScheduleActionKind kind) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r;

        r = prepare(s,
                    "INSERT INTO schedule_buffer (schedule_id, seq, scheduled_time, kind) VALUES "
                    "(?1, (SELECT coalesce(max(seq), 0) + 1 FROM schedule_buffer WHERE "
                    "schedule_id = ?1), ?2, ?3)",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, schedule_id);
        store_bind_u64(st, 2, scheduled_time);
        store_bind_u64(st, 3, (uint64_t) kind);
        return run(s, st);
}

int store_schedule_buffer_count(Store *s, const char *schedule_id) {
        _cleanup_stmt_ Stmt *st = NULL;
        int r, rc;

        r = prepare(s, "SELECT count(*) FROM schedule_buffer WHERE schedule_id = ?1", &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, schedule_id);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc);
        return (int) store_col_u64(st, 0);
}

int store_schedule_buffer_pop(Store *s,
                              const char *schedule_id,
                              uint64_t *ret_time,
                              ScheduleActionKind *ret_kind) {
        _cleanup_stmt_ Stmt *st = NULL, *del = NULL;
        uint64_t seq;
        int r, rc;

        r = prepare(s,
                    "SELECT seq, scheduled_time, kind FROM schedule_buffer WHERE schedule_id = ?1 "
                    "ORDER BY seq LIMIT 1",
                    &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, schedule_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_sql_error(s, rc);
        seq = store_col_u64(st, 0);
        *ret_time = store_col_u64(st, 1);
        *ret_kind = (ScheduleActionKind) store_col_u64(st, 2);
        r = prepare(s, "DELETE FROM schedule_buffer WHERE schedule_id = ?1 AND seq = ?2", &del);
        if (r < 0)
                return r;
        store_bind_text(del, 1, schedule_id);
        store_bind_u64(del, 2, seq);
        return run(s, del);
}
