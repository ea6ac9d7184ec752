#pragma once
/* Schedules: recurring workflow starts (DESIGN.md §8), Temporal's schedules with systemd's
 * calendar syntax. A schedule is a definition (calendar specs and intervals, bounds, jitter, the
 * workflow to start, the overlap and catch-up policies) and a cursor in the store: every nominal
 * time up to the cursor has been acted on. The next one is armed as a DEADLINE_SCHEDULE deadline,
 * so schedules need nothing in memory and come back after a crash like timers do.
 *
 * Acting on a nominal time T starts workflow "<prefix>-<T as RFC 3339 UTC>" with request id
 * "schedule/<id>/<T>", unless the overlap policy says otherwise while a run the schedule started
 * still runs:
 *
 *    skip             T is dropped (counted in overlap_skipped)
 *    buffer_one       T waits for the running one to close; at most one waits (else dropped)
 *    buffer_all       every T waits, in order (at most SCHEDULE_BUFFER_MAX)
 *    cancel_other     the running ones are asked to cancel; T waits for them to close
 *    terminate_other  the running ones are terminated; T starts at once
 *    allow_all        T starts at once
 *
 * Catch-up, when a deadline fires late (the daemon or the host was down): the due times within
 * the catch-up window collapse into one action for the latest of them (default, systemd's
 * Persistent=), or all of them act in order ("all", Temporal's rule), or only a time less than a
 * minute late acts ("none"). Times older than the window are counted in missed_catchup. */

#include <stdbool.h>
#include <stdint.h>

#include "common/calendar.h"
#include "daemon/api-error.h"
#include "daemon/manager.h"
#include "daemon/store-schedule.h"
#include "proto/msg.h"

#define SCHEDULE_SPECS_MAX 16
#define SCHEDULE_BUFFER_MAX 1000
#define SCHEDULE_ID_MAX_LEN 200
#define SCHEDULE_PREFIX_MAX_LEN 900
#define SCHEDULE_NEXT_MAX 100

typedef enum ScheduleOverlap {
        SCHEDULE_OVERLAP_SKIP,
        SCHEDULE_OVERLAP_BUFFER_ONE,
        SCHEDULE_OVERLAP_BUFFER_ALL,
        SCHEDULE_OVERLAP_CANCEL_OTHER,
        SCHEDULE_OVERLAP_TERMINATE_OTHER,
        SCHEDULE_OVERLAP_ALLOW_ALL,
        _SCHEDULE_OVERLAP_MAX,
        _SCHEDULE_OVERLAP_INVALID = -22,
} ScheduleOverlap;

typedef enum ScheduleCatchup {
        SCHEDULE_CATCHUP_COLLAPSE,
        SCHEDULE_CATCHUP_ALL,
        SCHEDULE_CATCHUP_NONE,
        _SCHEDULE_CATCHUP_MAX,
        _SCHEDULE_CATCHUP_INVALID = -22,
} ScheduleCatchup;

const char *schedule_overlap_to_string(ScheduleOverlap o);
ScheduleOverlap schedule_overlap_from_string(const char *s);
const char *schedule_catchup_to_string(ScheduleCatchup c);

typedef struct ScheduleInterval {
        uint64_t every_usec;
        uint64_t offset_usec;
} ScheduleInterval;

/* A parsed definition. Strings and the input point into the msgpack zone it was parsed from. */
typedef struct ScheduleDef {
        const char *calendar_text[SCHEDULE_SPECS_MAX];
        CalendarSpec *calendars[SCHEDULE_SPECS_MAX];
        size_t n_calendars;
        ScheduleInterval intervals[SCHEDULE_SPECS_MAX];
        size_t n_intervals;
        uint64_t start_time_usec; /* 0: none */
        uint64_t end_time_usec;   /* 0: none */
        uint64_t jitter_usec;
        const char *workflow_type;
        const char *task_queue;
        const char *workflow_id_prefix;
        MsgBin input;
        uint64_t task_timeout_usec;
        ScheduleOverlap overlap;
        ScheduleCatchup catchup;
        uint64_t catchup_window_usec;
        bool pause_on_failure;
        bool wake_system; /* systemd's WakeSystem=: its times wake the host from suspend */
} ScheduleDef;

void schedule_def_done(ScheduleDef *d);
/* Reads and checks a definition from the fields of @map (CreateSchedule's request, or a stored
 * definition); @schedule_id is the default workflow id prefix. */
int schedule_def_parse(const msgpack_object *map,
                       msgpack_zone *zone,
                       const char *schedule_id,
                       ScheduleDef *ret,
                       ApiError *e);
/* Packs the definition as a map that schedule_def_parse() reads back. */
int schedule_def_pack(const ScheduleDef *d, msgpack_packer *pk);
/* The first nominal time after @after; -ENOENT when there is none (end time, or no more). */
int schedule_def_next(const ScheduleDef *d, uint64_t after, uint64_t *ret);
/* The delay added to nominal time @t: deterministic in (schedule id, @t), below jitter_usec. */
uint64_t schedule_jitter(const ScheduleDef *d, const char *schedule_id, uint64_t t);

/* A schedule loaded from the store: its row and its parsed definition. */
typedef struct Schedule {
        ScheduleRow row;
        msgpack_unpacked def_msg;
        ScheduleDef def;
} Schedule;

int schedule_load(Manager *m, const char *schedule_id, Schedule *ret);
void schedule_done(Schedule *s);

/* Arms the next deadline after the cursor (or clears it: paused, no more times). */
int schedule_arm(Manager *m, Schedule *s);
/* One action for nominal time @t under @overlap (the schedule's own policy for scheduled
 * times; trigger and backfill may override it). */
int schedule_act(
        Manager *m, Schedule *s, uint64_t t, ScheduleActionKind kind, ScheduleOverlap overlap);

/* The schedule's deadline came due. */
int schedule_on_deadline(Manager *m, const Deadline *d);
/* A run closed in this pass; schedule_flush() (post source, before dispatch) then lets its
 * schedule start what waits in its buffer, or pauses it after a failure. */
void schedule_note_closed(Manager *m, const char *run_id);
void schedule_flush(Manager *m);
/* The pass failed and was rolled back: forget the noted runs. */
void schedule_forget(Manager *m);
