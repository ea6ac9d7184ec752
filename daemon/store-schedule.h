#pragma once
/* The store's schedule tables (schema in store.c): one row per schedule, its recent actions and
 * its buffered starts, and the one deadline (DEADLINE_SCHEDULE) that wakes it. Same rules as
 * store.h: writes inside the pass's transaction, negative errno on failure. */

#include <stdbool.h>
#include <stdint.h>

#include "daemon/store.h"

#define SCHEDULE_RECENT_ACTIONS 10

typedef enum ScheduleActionKind {
        SCHEDULE_ACTION_SCHEDULED = 0, /* a time of the spec */
        SCHEDULE_ACTION_TRIGGER = 1,   /* TriggerSchedule */
        SCHEDULE_ACTION_BACKFILL = 2,  /* BackfillSchedule */
        _SCHEDULE_ACTION_KIND_MAX,
} ScheduleActionKind;

typedef struct ScheduleRow {
        char *schedule_id;
        uint32_t uid;
        Blob def; /* the msgpack map of the definition (schedule.c) */
        bool paused;
        char *note;
        uint64_t create_time;
        uint64_t cursor; /* every nominal time <= cursor was acted on */
        uint64_t action_count;
        uint64_t overlap_skipped;
        uint64_t buffer_dropped;
        uint64_t missed_catchup;
        char *source;     /* the unit file it was declared in; NULL: created through the API */
        bool wake_system; /* its times wake the system from suspend (copied from the def) */
} ScheduleRow;

void schedule_row_done(ScheduleRow *r);
/* -EEXIST when the id is taken. */
int store_schedule_insert(Store *s, const ScheduleRow *r);
int store_schedule_get(Store *s, const char *schedule_id, ScheduleRow *ret);
/* Writes paused, note, cursor and the counters. */
int store_schedule_update(Store *s, const ScheduleRow *r);
/* Replaces the definition and source, keeping the cursor, counters and actions. */
int store_schedule_set_def(Store *s, const ScheduleRow *r);
/* The earliest deadline of a schedule that wakes the system and is not paused; -ENOENT. */
int store_schedule_wake_next(Store *s, uint64_t *ret_due);
/* Deletes the schedule, its actions, its buffer and its deadline (not the runs it started). */
int store_schedule_delete(Store *s, const char *schedule_id);
/* Every schedule (of @uid only, when @only_uid), by id. */
int store_schedules_foreach(Store *s,
                            bool only_uid,
                            uint32_t uid,
                            int (*cb)(const ScheduleRow *r, void *userdata),
                            void *userdata);

/* Replaces the schedule's deadline: due at @due for nominal time @nominal. */
int store_schedule_deadline_set(Store *s, const char *schedule_id, uint64_t due, uint64_t nominal);
int store_schedule_deadline_clear(Store *s, const char *schedule_id);
/* The armed deadline: -ENOENT when none. */
int store_schedule_deadline_get(Store *s,
                                const char *schedule_id,
                                uint64_t *ret_due,
                                uint64_t *ret_nominal);

typedef struct ScheduleAction {
        ScheduleActionKind kind;
        uint64_t scheduled_time;
        uint64_t actual_time;
        const char *workflow_id;
        const char *run_id;
        WorkflowStatus status; /* of the run; 0 when the run is gone */
} ScheduleAction;
/* Records an action; keeps the last SCHEDULE_RECENT_ACTIONS and every one whose run runs. */
int store_schedule_action_add(Store *s, const char *schedule_id, const ScheduleAction *a);
/* The recorded actions, oldest first (only those whose run runs, with @only_running). */
int store_schedule_actions_foreach(Store *s,
                                   const char *schedule_id,
                                   bool only_running,
                                   int (*cb)(const ScheduleAction *a, void *userdata),
                                   void *userdata);
/* The schedule that started @run_id (malloc'd id); -ENOENT when none. */
int store_schedule_of_run(Store *s, const char *run_id, char **ret_schedule_id);

int store_schedule_buffer_push(Store *s,
                               const char *schedule_id,
                               uint64_t scheduled_time,
                               ScheduleActionKind kind);
int store_schedule_buffer_count(Store *s, const char *schedule_id);
/* Removes and returns the oldest buffered start; -ENOENT when none. */
int store_schedule_buffer_pop(Store *s,
                              const char *schedule_id,
                              uint64_t *ret_time,
                              ScheduleActionKind *ret_kind);
