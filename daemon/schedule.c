/* Schedules: definitions, nominal times, actions and catch-up; see schedule.h. */

#include "daemon/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "daemon/clock.h"
#include "daemon/history.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define CATCHUP_WINDOW_DEFAULT_USEC (UINT64_C(365) * 24 * 3600 * USEC_PER_SEC)
#define CATCHUP_WINDOW_MIN_USEC (10 * USEC_PER_SEC)
#define INTERVAL_MIN_USEC USEC_PER_SEC
/* A time acted on less than this after its (jittered) time is on time, not caught up. */
#define LATE_GRACE_USEC (60 * USEC_PER_SEC)
/* Bounds on the work of one deadline: the rest continues in the next pass. */
#define CATCHUP_STEPS_MAX 100000
#define CATCHUP_ACTIONS_MAX 1000
/* Times before 2000 or after 2199 are refused as bounds: they are mistakes (ms for us, ...). */
#define TIME_MIN_USEC (UINT64_C(946684800) * USEC_PER_SEC)
#define TIME_MAX_USEC (UINT64_C(7258118400) * USEC_PER_SEC)

static const char *const overlap_names[_SCHEDULE_OVERLAP_MAX] = {
        [SCHEDULE_OVERLAP_SKIP] = "skip",
        [SCHEDULE_OVERLAP_BUFFER_ONE] = "buffer_one",
        [SCHEDULE_OVERLAP_BUFFER_ALL] = "buffer_all",
        [SCHEDULE_OVERLAP_CANCEL_OTHER] = "cancel_other",
        [SCHEDULE_OVERLAP_TERMINATE_OTHER] = "terminate_other",
        [SCHEDULE_OVERLAP_ALLOW_ALL] = "allow_all",
};

static const char *const catchup_names[_SCHEDULE_CATCHUP_MAX] = {
        [SCHEDULE_CATCHUP_COLLAPSE] = "collapse",
        [SCHEDULE_CATCHUP_ALL] = "all",
        [SCHEDULE_CATCHUP_NONE] = "none",
};

const char *schedule_overlap_to_string(ScheduleOverlap o) {
        return o >= 0 && o < _SCHEDULE_OVERLAP_MAX ? overlap_names[o] : NULL;
}

ScheduleOverlap schedule_overlap_from_string(const char *s) {
        for (int i = 0; i < _SCHEDULE_OVERLAP_MAX; i++)
                if (streq(overlap_names[i], s))
                        return (ScheduleOverlap) i;
        return _SCHEDULE_OVERLAP_INVALID;
}

const char *schedule_catchup_to_string(ScheduleCatchup c) {
        return c >= 0 && c < _SCHEDULE_CATCHUP_MAX ? catchup_names[c] : NULL;
}

static ScheduleCatchup catchup_from_string(const char *s) {
        for (int i = 0; i < _SCHEDULE_CATCHUP_MAX; i++)
                if (streq(catchup_names[i], s))
                        return (ScheduleCatchup) i;
        return _SCHEDULE_CATCHUP_INVALID;
}

/* ---- definitions ---- */

typedef struct DefFields {
        const msgpack_object *calendars;
        const msgpack_object *intervals;
        uint64_t start_time_usec;
        uint64_t end_time_usec;
        uint64_t jitter_usec;
        const char *workflow_type;
        const char *task_queue;
        const char *workflow_id_prefix;
        MsgBin input;
        uint64_t task_timeout_usec;
        const char *overlap;
        const char *catchup;
        uint64_t catchup_window_usec;
        bool pause_on_failure;
        bool wake_system;
} DefFields;

static const MsgField def_fields[] = {
        { "calendars", MSG_ARRAY, offsetof(DefFields, calendars) },
        { "intervals", MSG_ARRAY, offsetof(DefFields, intervals) },
        { "start_time_usec", MSG_UINT, offsetof(DefFields, start_time_usec) },
        { "end_time_usec", MSG_UINT, offsetof(DefFields, end_time_usec) },
        { "jitter_usec", MSG_UINT, offsetof(DefFields, jitter_usec) },
        { "workflow_type", MSG_STR, offsetof(DefFields, workflow_type), true, 1000 },
        { "task_queue", MSG_STR, offsetof(DefFields, task_queue), true, 1000 },
        { "workflow_id_prefix", MSG_STR, offsetof(DefFields, workflow_id_prefix), false,
          SCHEDULE_PREFIX_MAX_LEN },
        { "input", MSG_BIN, offsetof(DefFields, input), false, PAYLOAD_SIZE_MAX },
        { "task_timeout_usec", MSG_UINT, offsetof(DefFields, task_timeout_usec) },
        { "overlap", MSG_STR, offsetof(DefFields, overlap), false, 64 },
        { "catchup", MSG_STR, offsetof(DefFields, catchup), false, 64 },
        { "catchup_window_usec", MSG_UINT, offsetof(DefFields, catchup_window_usec) },
        { "pause_on_failure", MSG_BOOL, offsetof(DefFields, pause_on_failure) },
        { "wake_system", MSG_BOOL, offsetof(DefFields, wake_system) },
        {},
};

void schedule_def_done(ScheduleDef *d) {
        for (size_t i = 0; i < d->n_calendars; i++)
                calendar_spec_free(d->calendars[i]);
        *d = (ScheduleDef){};
}

static int
parse_calendars(const msgpack_object *a, msgpack_zone *zone, ScheduleDef *d, ApiError *e) {
        if (a->via.array.size > SCHEDULE_SPECS_MAX)
                return api_error_set(e, -EINVAL, "more than %d calendar specs", SCHEDULE_SPECS_MAX);
        for (uint32_t i = 0; i < a->via.array.size; i++) {
                const msgpack_object *o = &a->via.array.ptr[i];
                char err[512], *text;
                int r;

                if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
                    o->via.str.size > 1000 || memchr(o->via.str.ptr, 0, o->via.str.size))
                        return api_error_set(e, -EINVAL,
                                             "field \"calendars\" must be a list of non-empty "
                                             "strings (element %u is not)",
                                             i);
                text = msgpack_zone_malloc(zone, o->via.str.size + 1);
                if (!text)
                        return -ENOMEM;
                memcpy(text, o->via.str.ptr, o->via.str.size);
                text[o->via.str.size] = 0;
                r = calendar_spec_from_string(text, &d->calendars[d->n_calendars], err,
                                              sizeof(err));
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return api_error_set(e, -EINVAL, "invalid calendar spec: %s", err);
                d->calendar_text[d->n_calendars++] = text;
        }
        return 0;
}

static int
parse_intervals(const msgpack_object *a, msgpack_zone *zone, ScheduleDef *d, ApiError *e) {
        static const MsgField fields[] = {
                { "every_usec", MSG_UINT, offsetof(ScheduleInterval, every_usec), true },
                { "offset_usec", MSG_UINT, offsetof(ScheduleInterval, offset_usec) },
                {},
        };

        if (a->via.array.size > SCHEDULE_SPECS_MAX)
                return api_error_set(e, -EINVAL, "more than %d intervals", SCHEDULE_SPECS_MAX);
        for (uint32_t i = 0; i < a->via.array.size; i++) {
                ScheduleInterval iv = {};
                char err[256];

                if (a->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
                        return api_error_set(e, -EINVAL, "interval %u must be a map", i);
                if (msg_parse(&a->via.array.ptr[i], zone, fields, &iv, err, sizeof(err)) < 0)
                        return api_error_set(e, -EINVAL, "interval %u: %s", i, err);
                if (iv.every_usec < INTERVAL_MIN_USEC)
                        return api_error_set(e, -EINVAL,
                                             "interval %u: every_usec must be at least 1 s", i);
                if (iv.offset_usec >= iv.every_usec)
                        return api_error_set(e, -EINVAL,
                                             "interval %u: the offset must be shorter than the "
                                             "interval",
                                             i);
                d->intervals[d->n_intervals++] = iv;
        }
        return 0;
}

static int check_bounds(const ScheduleDef *d, ApiError *e) {
        if (d->start_time_usec &&
            (d->start_time_usec < TIME_MIN_USEC || d->start_time_usec > TIME_MAX_USEC))
                return api_error_set(e, -EINVAL, "start_time_usec must be between 2000 and 2199");
        if (d->end_time_usec &&
            (d->end_time_usec < TIME_MIN_USEC || d->end_time_usec > TIME_MAX_USEC))
                return api_error_set(e, -EINVAL, "end_time_usec must be between 2000 and 2199");
        if (d->start_time_usec && d->end_time_usec && d->end_time_usec < d->start_time_usec)
                return api_error_set(e, -EINVAL, "end_time_usec is before start_time_usec");
        if (d->catchup_window_usec < CATCHUP_WINDOW_MIN_USEC)
                return api_error_set(e, -EINVAL, "catchup_window_usec must be at least 10 s");
        if (d->task_timeout_usec > TASK_TIMEOUT_MAX_USEC)
                return api_error_set(e, -EINVAL, "task_timeout_usec must be at most 120 s");
        return 0;
}

int schedule_def_parse(const msgpack_object *map,
                       msgpack_zone *zone,
                       const char *schedule_id,
                       ScheduleDef *ret,
                       ApiError *e) {
        DefFields f = {};
        ScheduleDef d = {};
        int r;

        r = msg_parse(map, zone, def_fields, &f, e->message, sizeof(e->message));
        if (r < 0)
                return r;
        if (!*f.workflow_type || !*f.task_queue)
                return api_error_set(e, -EINVAL, "workflow_type and task_queue must not be empty");
        d.overlap = f.overlap ? schedule_overlap_from_string(f.overlap) : SCHEDULE_OVERLAP_SKIP;
        if (d.overlap < 0)
                return api_error_set(e, -EINVAL,
                                     "unknown overlap policy '%s': expected skip, buffer_one, "
                                     "buffer_all, cancel_other, terminate_other or allow_all",
                                     f.overlap);
        d.catchup = f.catchup ? catchup_from_string(f.catchup) : SCHEDULE_CATCHUP_COLLAPSE;
        if (d.catchup < 0)
                return api_error_set(e, -EINVAL,
                                     "unknown catch-up policy '%s': expected collapse, all or "
                                     "none",
                                     f.catchup);
        d.start_time_usec = f.start_time_usec;
        d.end_time_usec = f.end_time_usec;
        d.jitter_usec = f.jitter_usec;
        d.workflow_type = f.workflow_type;
        d.task_queue = f.task_queue;
        d.workflow_id_prefix =
                f.workflow_id_prefix && *f.workflow_id_prefix ? f.workflow_id_prefix : schedule_id;
        d.input = f.input;
        d.task_timeout_usec = f.task_timeout_usec;
        d.catchup_window_usec =
                f.catchup_window_usec ? f.catchup_window_usec : CATCHUP_WINDOW_DEFAULT_USEC;
        d.pause_on_failure = f.pause_on_failure;
        d.wake_system = f.wake_system;
        if (f.calendars)
                r = parse_calendars(f.calendars, zone, &d, e);
        if (r >= 0 && f.intervals)
                r = parse_intervals(f.intervals, zone, &d, e);
        if (r >= 0 && d.n_calendars + d.n_intervals == 0)
                r = api_error_set(e, -EINVAL,
                                  "a schedule needs at least one calendar spec or "
                                  "interval");
        if (r >= 0)
                r = check_bounds(&d, e);
        if (r < 0) {
                schedule_def_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int schedule_def_pack(const ScheduleDef *d, msgpack_packer *pk) {
        int r = msgpack_pack_map(pk, 14 + (d->input.ptr ? 1 : 0));

        r |= msg_pack_str(pk, "calendars");
        r |= msgpack_pack_array(pk, d->n_calendars);
        for (size_t i = 0; i < d->n_calendars; i++)
                r |= msg_pack_str(pk, d->calendar_text[i]);
        r |= msg_pack_str(pk, "intervals");
        r |= msgpack_pack_array(pk, d->n_intervals);
        for (size_t i = 0; i < d->n_intervals; i++) {
                r |= msgpack_pack_map(pk, 2);
                r |= msg_pack_kv_uint(pk, "every_usec", d->intervals[i].every_usec);
                r |= msg_pack_kv_uint(pk, "offset_usec", d->intervals[i].offset_usec);
        }
        r |= msg_pack_kv_uint(pk, "start_time_usec", d->start_time_usec);
        r |= msg_pack_kv_uint(pk, "end_time_usec", d->end_time_usec);
        r |= msg_pack_kv_uint(pk, "jitter_usec", d->jitter_usec);
        r |= msg_pack_kv_str(pk, "workflow_type", d->workflow_type);
        r |= msg_pack_kv_str(pk, "task_queue", d->task_queue);
        r |= msg_pack_kv_str(pk, "workflow_id_prefix", d->workflow_id_prefix);
        if (d->input.ptr)
                r |= msg_pack_kv_bin(pk, "input", d->input.ptr, d->input.size);
        r |= msg_pack_kv_uint(pk, "task_timeout_usec", d->task_timeout_usec);
        r |= msg_pack_kv_str(pk, "overlap", schedule_overlap_to_string(d->overlap));
        r |= msg_pack_kv_str(pk, "catchup", schedule_catchup_to_string(d->catchup));
        r |= msg_pack_kv_uint(pk, "catchup_window_usec", d->catchup_window_usec);
        r |= msg_pack_kv_bool(pk, "pause_on_failure", d->pause_on_failure);
        r |= msg_pack_kv_bool(pk, "wake_system", d->wake_system);
        return r != 0 ? -ENOMEM : 0;
}

/* ---- nominal times ---- */

/* Intervals count from the epoch, shifted by their offset (Temporal's IntervalSpec). */
static uint64_t interval_next(const ScheduleInterval *iv, uint64_t after) {
        if (after < iv->offset_usec)
                return iv->offset_usec;
        return iv->offset_usec + ((after - iv->offset_usec) / iv->every_usec + 1) * iv->every_usec;
}

int schedule_def_next(const ScheduleDef *d, uint64_t after, uint64_t *ret) {
        uint64_t best = UINT64_MAX, t;

        /* Times before the start do not count: look from just before it. */
        if (d->start_time_usec && after < d->start_time_usec)
                after = d->start_time_usec - 1;
        for (size_t i = 0; i < d->n_calendars; i++)
                if (calendar_spec_next(d->calendars[i], after, &t) >= 0 && t < best)
                        best = t;
        for (size_t i = 0; i < d->n_intervals; i++) {
                t = interval_next(&d->intervals[i], after);
                if (t < best)
                        best = t;
        }
        if (best == UINT64_MAX || (d->end_time_usec && best > d->end_time_usec))
                return -ENOENT;
        *ret = best;
        return 0;
}

/* splitmix64 over FNV-1a of the id: the same delay for the same schedule and time, every time
 * (a restart does not move an armed action), spread evenly over [0, jitter). */
uint64_t schedule_jitter(const ScheduleDef *d, const char *schedule_id, uint64_t t) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        if (d->jitter_usec == 0)
                return 0;
        for (const char *p = schedule_id; *p; p++)
                h = (h ^ (unsigned char) *p) * UINT64_C(0x100000001b3);
        h ^= t;
        h += UINT64_C(0x9e3779b97f4a7c15);
        h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
        h ^= h >> 31;
        return h % d->jitter_usec;
}

/* ---- loading ---- */

int schedule_load(Manager *m, const char *schedule_id, Schedule *ret) {
        Schedule s = {};
        ApiError e = {};
        int r;

        r = store_schedule_get(m->store, schedule_id, &s.row);
        if (r < 0)
                return r;
        msgpack_unpacked_init(&s.def_msg);
        r = msg_decode(s.row.def.ptr, s.row.def.size, &s.def_msg);
        if (r >= 0)
                r = schedule_def_parse(&s.def_msg.data, s.def_msg.zone, s.row.schedule_id, &s.def,
                                       &e);
        if (r < 0) {
                log_error("Stored definition of schedule '%s' is unreadable: %s", schedule_id,
                          e.message);
                schedule_done(&s);
                return r == -ENOMEM ? r : -EUCLEAN;
        }
        *ret = s;
        return 0;
}

void schedule_done(Schedule *s) {
        schedule_def_done(&s->def);
        msgpack_unpacked_destroy(&s->def_msg);
        schedule_row_done(&s->row);
}

int schedule_arm(Manager *m, Schedule *s) {
        uint64_t t;
        int r;

        manager_deadlines_changed(m);
        if (s->row.paused || schedule_def_next(&s->def, s->row.cursor, &t) < 0)
                return store_schedule_deadline_clear(m->store, s->row.schedule_id);
        r = store_schedule_deadline_set(m->store, s->row.schedule_id,
                                        t + schedule_jitter(&s->def, s->row.schedule_id, t), t);
        return r;
}

/* ---- actions ---- */

typedef struct Running {
        char (*run_ids)[37];
        size_t n;
} Running;

static int collect_running(const ScheduleAction *a, void *userdata) {
        Running *run = userdata;
        char(*p)[37];

        p = reallocarray(run->run_ids, run->n + 1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        run->run_ids = p;
        snprintf(run->run_ids[run->n++], 37, "%s", a->run_id);
        return 0;
}

/* "2026-01-01T09:00:00Z", with microseconds when the time has them. */
static void format_time_id(char *buf, size_t size, uint64_t t) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        size_t n;

        (void) gmtime_r(&sec, &tm);
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        if (t % USEC_PER_SEC)
                snprintf(buf + n, size - n, ".%06uZ", (unsigned) (t % USEC_PER_SEC));
        else
                snprintf(buf + n, size - n, "Z");
}

static int start_run(Manager *m, Schedule *s, uint64_t t, ScheduleActionKind kind) {
        char wid[SCHEDULE_PREFIX_MAX_LEN + 64], request_id[SCHEDULE_ID_MAX_LEN + 64], when[48];
        char run_id[37];
        StartRequest req = {
                .workflow_id = wid,
                .workflow_type = s->def.workflow_type,
                .task_queue = s->def.task_queue,
                .input = s->def.input,
                .task_timeout_usec = s->def.task_timeout_usec,
                .request_id = request_id,
        };
        uint32_t saved_uid = m->actor_uid;
        ApiError e = {};
        bool started = false;
        int r;

        format_time_id(when, sizeof(when), t);
        snprintf(wid, sizeof(wid), "%s-%s", s->def.workflow_id_prefix, when);
        snprintf(request_id, sizeof(request_id), "schedule/%s/%llu", s->row.schedule_id,
                 (unsigned long long) t);
        /* The owner's view of workflow ids, as if the owner started it (DESIGN.md §10). */
        req.caller_admin = s->row.uid == 0 || s->row.uid == m->daemon_uid;
        /* The run belongs to the schedule's owner (DESIGN.md §10). */
        m->actor_uid = s->row.uid;
        r = history_start_workflow(m, &req, run_id, &started, &e);
        m->actor_uid = saved_uid;
        if (r == -EEXIST) {
                /* A run of that id runs already (started by hand, or by an earlier life of this
                 * schedule): the start is done, in effect. */
                log_notice("Schedule '%s': %s", s->row.schedule_id, e.message);
                s->row.overlap_skipped++;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Schedule '%s' failed to start %s: %s",
                                       s->row.schedule_id, wid, e.message);
        if (!started)
                return 0; /* the same request id: this time was acted on already */
        s->row.action_count++;
        log_info("Schedule '%s' started %s (run %s)", s->row.schedule_id, wid, run_id);
        return store_schedule_action_add(m->store, s->row.schedule_id,
                                         &(ScheduleAction){ .kind = kind,
                                                            .scheduled_time = t,
                                                            .actual_time = clock_now(),
                                                            .workflow_id = wid,
                                                            .run_id = run_id });
}

static int buffer(Manager *m, Schedule *s, uint64_t t, ScheduleActionKind kind, size_t max) {
        int n = store_schedule_buffer_count(m->store, s->row.schedule_id);

        if (n < 0)
                return n;
        if ((size_t) n >= max) {
                s->row.buffer_dropped++;
                return 0;
        }
        return store_schedule_buffer_push(m->store, s->row.schedule_id, t, kind);
}

/* Cancels or terminates the runs the schedule started that still run. */
static int stop_running(Manager *m, Schedule *s, const Running *running, bool terminate) {
        char reason[SCHEDULE_ID_MAX_LEN + 64];
        uint32_t saved_uid = m->actor_uid;
        int r = 0;

        snprintf(reason, sizeof(reason), "overlap policy of schedule '%s'", s->row.schedule_id);
        m->actor_uid = s->row.uid;
        for (size_t i = 0; r >= 0 && i < running->n; i++) {
                ApiError e = {};

                r = terminate ? history_terminate(m, running->run_ids[i], reason, &(MsgBin){}, &e)
                              : history_request_cancel(m, running->run_ids[i], reason, &e);
                if (r == -ENOENT || r == -ESTALE || r == -EEXIST)
                        r = 0; /* closed meanwhile, or asked already */
        }
        m->actor_uid = saved_uid;
        return r;
}

int schedule_act(
        Manager *m, Schedule *s, uint64_t t, ScheduleActionKind kind, ScheduleOverlap overlap) {
        Running running = {};
        int r;

        r = store_schedule_actions_foreach(m->store, s->row.schedule_id, true, collect_running,
                                           &running);
        if (r < 0 || running.n == 0 || overlap == SCHEDULE_OVERLAP_ALLOW_ALL) {
                free(running.run_ids);
                return r < 0 ? r : start_run(m, s, t, kind);
        }
        switch (overlap) {
        case SCHEDULE_OVERLAP_SKIP:
                s->row.overlap_skipped++;
                break;
        case SCHEDULE_OVERLAP_BUFFER_ONE:
                r = buffer(m, s, t, kind, 1);
                break;
        case SCHEDULE_OVERLAP_BUFFER_ALL:
                r = buffer(m, s, t, kind, SCHEDULE_BUFFER_MAX);
                break;
        case SCHEDULE_OVERLAP_CANCEL_OTHER:
                /* The new run waits for the cancelled ones to close (schedule_flush()). */
                r = stop_running(m, s, &running, false);
                if (r >= 0)
                        r = buffer(m, s, t, kind, 1);
                break;
        case SCHEDULE_OVERLAP_TERMINATE_OTHER:
                r = stop_running(m, s, &running, true);
                if (r >= 0)
                        r = start_run(m, s, t, kind);
                break;
        default:
                r = start_run(m, s, t, kind);
                break;
        }
        free(running.run_ids);
        return r;
}

/* ---- deadlines and catch-up ---- */

static int catch_up(Manager *m, Schedule *s, uint64_t now) {
        const ScheduleDef *d = &s->def;
        uint64_t window_start = now > d->catchup_window_usec ? now - d->catchup_window_usec : 0;
        uint64_t t, collapsed = 0;
        unsigned actions = 0;
        bool have_collapsed = false;
        int r = 0;

        for (unsigned step = 0; step < CATCHUP_STEPS_MAX; step++) {
                uint64_t fire;
                bool missed;

                if (schedule_def_next(d, s->row.cursor, &t) < 0)
                        break;
                fire = t + schedule_jitter(d, s->row.schedule_id, t);
                if (fire > now)
                        break;
                s->row.cursor = t;
                /* Missed: due before this daemon started (it or the host was down), or
                 * acted on much later than due (the host slept). */
                missed = fire < m->started_usec || now - fire > LATE_GRACE_USEC;
                if (t < window_start || (d->catchup == SCHEDULE_CATCHUP_NONE && missed)) {
                        s->row.missed_catchup++;
                        continue;
                }
                if (d->catchup == SCHEDULE_CATCHUP_COLLAPSE) {
                        collapsed = t;
                        have_collapsed = true;
                        continue;
                }
                if (actions++ >= CATCHUP_ACTIONS_MAX) {
                        s->row.missed_catchup++;
                        continue;
                }
                r = schedule_act(m, s, t, SCHEDULE_ACTION_SCHEDULED, d->overlap);
                if (r < 0)
                        return r;
        }
        if (have_collapsed)
                r = schedule_act(m, s, collapsed, SCHEDULE_ACTION_SCHEDULED, d->overlap);
        return r;
}

int schedule_on_deadline(Manager *m, const Deadline *d) {
        _cleanup_(schedule_done) Schedule s = {};
        int r;

        if (!d->key)
                return 0;
        r = schedule_load(m, d->key, &s);
        if (r == -ENOENT)
                return 0; /* deleted meanwhile */
        if (r == -EUCLEAN)
                return 0; /* logged by schedule_load(); retrying would not help */
        if (r < 0)
                return r;
        if (s.row.paused)
                return schedule_arm(m, &s);
        r = catch_up(m, &s, clock_now());
        if (r >= 0)
                r = store_schedule_update(m->store, &s.row);
        if (r >= 0)
                r = schedule_arm(m, &s);
        return r;
}

/* ---- runs that closed ---- */

void schedule_note_closed(Manager *m, const char *run_id) {
        char(*p)[37];

        if (m->n_closed_runs == m->closed_runs_alloc) {
                size_t n = m->closed_runs_alloc ? 2 * m->closed_runs_alloc : 16;

                p = reallocarray(m->closed_runs, n, sizeof(*p));
                if (!p) {
                        log_warning("Out of memory: a schedule may start its buffered run late");
                        return;
                }
                m->closed_runs = p;
                m->closed_runs_alloc = n;
        }
        snprintf(m->closed_runs[m->n_closed_runs++], 37, "%s", run_id);
}

void schedule_forget(Manager *m) {
        m->n_closed_runs = 0;
}

static int on_run_closed(Manager *m, const char *run_id) {
        _cleanup_(run_row_done) RunRow run = {};
        _cleanup_(schedule_done) Schedule s = {};
        _cleanup_free_ char *schedule_id = NULL;
        Running running = {};
        ScheduleActionKind kind;
        uint64_t t;
        int r;

        r = store_schedule_of_run(m->store, run_id, &schedule_id);
        if (r == -ENOENT)
                return 0;
        if (r >= 0)
                r = schedule_load(m, schedule_id, &s);
        if (r >= 0)
                r = store_run_get(m->store, run_id, &run);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (s.def.pause_on_failure && !s.row.paused &&
            (run.status == WORKFLOW_STATUS_FAILED || run.status == WORKFLOW_STATUS_TIMED_OUT)) {
                char note[1200];

                snprintf(note, sizeof(note), "paused: workflow %s %s", run.workflow_id,
                         run.status == WORKFLOW_STATUS_FAILED ? "failed" : "timed out");
                free(s.row.note);
                s.row.note = strdup(note);
                s.row.paused = true;
                log_notice("Schedule '%s' %s", s.row.schedule_id, note);
                r = schedule_arm(m, &s);
        }
        /* Buffered starts wait while the schedule is paused. */
        if (r >= 0 && !s.row.paused)
                r = store_schedule_actions_foreach(m->store, s.row.schedule_id, true,
                                                   collect_running, &running);
        if (r >= 0 && !s.row.paused && running.n == 0 &&
            store_schedule_buffer_pop(m->store, s.row.schedule_id, &t, &kind) >= 0)
                r = start_run(m, &s, t, kind);
        free(running.run_ids);
        if (r >= 0)
                r = store_schedule_update(m->store, &s.row);
        return r;
}

void schedule_flush(Manager *m) {
        /* A start below may close nothing, but a terminate may: loop until quiet. */
        for (size_t i = 0; i < m->n_closed_runs; i++) {
                char run_id[37];
                int r;

                memcpy(run_id, m->closed_runs[i], sizeof(run_id));
                r = manager_begin(m);
                if (r >= 0)
                        r = store_savepoint(m->store);
                if (r < 0) {
                        log_error_errno(r, "Failed to begin a transaction: %m");
                        break;
                }
                m->actor_uid = m->daemon_uid;
                r = on_run_closed(m, run_id);
                if (r < 0) {
                        store_rollback_to(m->store);
                        log_error_errno(r,
                                        "Failed to act on the end of run %s for its "
                                        "schedule: %m",
                                        run_id);
                } else
                        (void) store_release(m->store);
        }
        m->n_closed_runs = 0;
}
