/* durablectl schedule COMMAND [ID]: create, list, describe, pause, unpause, trigger, backfill and
 * delete schedules (doc/protocol.md, "Schedule operations"). The command line is checked whole
 * before connecting (schedule_check_args()), so that a wrong one exits 2 without a daemon. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/call.h"
#include "cli/output.h"
#include "cli/parse.h"
#include "cli/render.h"
#include "cli/verbs.h"
#include "common/calendar.h"

typedef enum Command {
        CMD_CREATE,
        CMD_LIST,
        CMD_DESCRIBE,
        CMD_PAUSE,
        CMD_UNPAUSE,
        CMD_TRIGGER,
        CMD_BACKFILL,
        CMD_DELETE,
        _CMD_MAX,
} Command;

static const char *const commands[_CMD_MAX] = {
        [CMD_CREATE] = "create",     [CMD_LIST] = "list",       [CMD_DESCRIBE] = "describe",
        [CMD_PAUSE] = "pause",       [CMD_UNPAUSE] = "unpause", [CMD_TRIGGER] = "trigger",
        [CMD_BACKFILL] = "backfill", [CMD_DELETE] = "delete",
};

static const char *const overlaps[] = {
        "skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all",
};
static const char *const catchups[] = { "collapse", "all", "none" };

static int command_find(const char *name) {
        for (int i = 0; i < _CMD_MAX; i++)
                if (streq(commands[i], name))
                        return i;
        return -1;
}

static bool one_of(const char *value, const char *const *names, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], value))
                        return true;
        return false;
}

int parse_time(const char *what, const char *text, uint64_t *ret) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        uint64_t t, again;
        char *end;

        if (text[0] == '@' && text[1] >= '0' && text[1] <= '9') {
                unsigned long long sec;

                errno = 0;
                sec = strtoull(text + 1, &end, 10);
                if (errno == 0 && *end == 0 && sec > 0 && sec <= UINT64_C(7258118400)) {
                        *ret = sec * USEC_PER_SEC;
                        return 0;
                }
        } else if (calendar_spec_from_string(text, &spec, NULL, 0) >= 0 &&
                   calendar_spec_next(spec, 0, &t) >= 0 &&
                   calendar_spec_next(spec, t, &again) < 0) {
                /* A calendar spec with exactly one elapse is a point in time. */
                *ret = t;
                return 0;
        }
        return ctl_error("invalid value '%s' for %s: expected @SECONDS since the epoch or one "
                         "point in time such as '2026-01-01 09:00 UTC'",
                         text, what);
}

int parse_interval(const char *text, IntervalArg *ret) {
        _cleanup_free_ char *every = strdup(text);
        char *slash;
        int r;

        if (!every)
                return ctl_error_errno(ENOMEM, "Out of memory");
        slash = strchr(every, '/');
        if (slash)
                *slash = 0;
        r = parse_duration("--interval", every, &ret->every_usec);
        if (r >= 0 && slash)
                r = parse_duration("--interval offset", slash + 1, &ret->offset_usec);
        if (r < 0)
                return r;
        if (ret->every_usec < USEC_PER_SEC)
                return ctl_error("invalid value '%s' for --interval: at least 1s", text);
        if (ret->offset_usec >= ret->every_usec)
                return ctl_error("invalid value '%s' for --interval: the offset must be shorter "
                                 "than the interval",
                                 text);
        return 0;
}

/* Options that only `schedule create` takes. */
static const char *create_only_option(const Args *a) {
        if (a->n_calendars)
                return "--calendar";
        if (a->n_intervals)
                return "--interval";
        if (a->type)
                return "--type";
        if (a->task_queue)
                return "--task-queue";
        if (a->input)
                return "--input";
        if (a->id_prefix)
                return "--id-prefix";
        if (a->jitter_usec)
                return "--jitter";
        if (a->catchup)
                return "--catchup";
        if (a->catchup_window_usec)
                return "--catchup-window";
        if (a->pause_on_failure)
                return "--pause-on-failure";
        if (a->paused)
                return "--paused";
        if (a->wake_system)
                return "--wake-system";
        if (a->task_timeout_usec)
                return "--task-timeout";
        return NULL;
}

static int check_create(const Args *a) {
        char err[512];

        if (!a->type)
                return ctl_error("missing --type TYPE for 'schedule create'");
        if (!a->task_queue)
                return ctl_error("missing --task-queue QUEUE for 'schedule create'");
        if (a->n_calendars + a->n_intervals == 0)
                return ctl_error("'schedule create' needs --calendar SPEC or --interval DURATION");
        for (size_t i = 0; i < a->n_calendars; i++) {
                _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;

                if (calendar_spec_from_string(a->calendars[i], &spec, err, sizeof(err)) < 0)
                        return ctl_error("invalid value '%s' for --calendar: %s", a->calendars[i],
                                         err);
        }
        if (a->catchup && !one_of(a->catchup, catchups, ELEMENTSOF(catchups)))
                return ctl_error("invalid value '%s' for --catchup: expected collapse, all or none",
                                 a->catchup);
        if (a->start_time_usec && a->end_time_usec && a->end_time_usec < a->start_time_usec)
                return ctl_error("--end-time is before --start-time");
        return 0;
}

int schedule_check_args(const Args *a) {
        int cmd = command_find(a->pos[0]);
        const char *opt;

        if (cmd < 0)
                return ctl_error("unknown schedule command '%s': expected create, list, describe, "
                                 "pause, unpause, trigger, backfill or delete",
                                 a->pos[0]);
        if (cmd == CMD_LIST && a->n_pos > 1)
                return ctl_error("unexpected argument '%s' for 'schedule list'", a->pos[1]);
        if (cmd != CMD_LIST && a->n_pos < 2)
                return ctl_error("missing argument ID for 'schedule %s'", commands[cmd]);
        if (a->overlap && !one_of(a->overlap, overlaps, ELEMENTSOF(overlaps)))
                return ctl_error("invalid value '%s' for --overlap: expected skip, buffer_one, "
                                 "buffer_all, cancel_other, terminate_other or allow_all",
                                 a->overlap);
        if (cmd == CMD_CREATE)
                return check_create(a);
        opt = create_only_option(a);
        if (opt)
                return ctl_error("option %s is only for 'schedule create'", opt);
        if (a->overlap && cmd != CMD_TRIGGER && cmd != CMD_BACKFILL)
                return ctl_error("option --overlap is only for 'schedule create', 'trigger' and "
                                 "'backfill'");
        if (a->note && cmd != CMD_PAUSE && cmd != CMD_UNPAUSE)
                return ctl_error("option --note is only for 'schedule create', 'pause' and "
                                 "'unpause'");
        if ((a->start_time_usec || a->end_time_usec) && cmd != CMD_BACKFILL)
                return ctl_error("options --start-time and --end-time are only for 'schedule "
                                 "create' and 'backfill'");
        if (cmd == CMD_BACKFILL && (!a->start_time_usec || !a->end_time_usec))
                return ctl_error("'schedule backfill' needs --start-time TIME and --end-time TIME");
        if (cmd == CMD_BACKFILL && a->end_time_usec <= a->start_time_usec)
                return ctl_error("--end-time must be after --start-time");
        return 0;
}

/* ---- the commands ---- */

static int print_doc(json_t *j) {
        _cleanup_(json_decrefp) json_t *doc = j;

        if (!doc || json_print(doc) < 0)
                return ctl_error_errno(ENOMEM, "Out of memory");
        return 0;
}

static int create(const Ctx *ctx, const Args *a, const char *id) {
        _cleanup_(json_decrefp) json_t *calendars = json_array(), *intervals = json_array();
        _cleanup_(answer_done) Answer answer = {};
        int r;

        if (!calendars || !intervals)
                return ctl_error_errno(ENOMEM, "Out of memory");
        for (size_t i = 0; i < a->n_calendars; i++)
                if (json_array_append_new(calendars, json_string(a->calendars[i])) < 0)
                        return ctl_error_errno(ENOMEM, "Out of memory");
        for (size_t i = 0; i < a->n_intervals; i++)
                if (json_array_append_new(intervals,
                                          json_pack("{s:I, s:I}", "every_usec",
                                                    (json_int_t) a->intervals[i].every_usec,
                                                    "offset_usec",
                                                    (json_int_t) a->intervals[i].offset_usec)) < 0)
                        return ctl_error_errno(ENOMEM, "Out of memory");
        r = CTL_CALL(ctx->client, "CreateSchedule", &answer, FIELD_STR("schedule_id", id),
                     FIELD_JSON("calendars", calendars), FIELD_JSON("intervals", intervals),
                     FIELD_UINT("start_time_usec", a->start_time_usec),
                     FIELD_UINT("end_time_usec", a->end_time_usec),
                     FIELD_UINT("jitter_usec", a->jitter_usec), FIELD_STR("workflow_type", a->type),
                     FIELD_STR("task_queue", a->task_queue), FIELD_PAYLOAD("input", a->input),
                     FIELD_STR("workflow_id_prefix", a->id_prefix),
                     FIELD_UINT("task_timeout_usec", a->task_timeout_usec),
                     FIELD_STR("overlap", a->overlap), FIELD_STR("catchup", a->catchup),
                     FIELD_UINT("catchup_window_usec", a->catchup_window_usec),
                     FIELD_BOOL("pause_on_failure", a->pause_on_failure),
                     FIELD_BOOL("paused", a->paused), FIELD_BOOL("wake_system", a->wake_system),
                     FIELD_STR("note", a->note));
        if (r < 0)
                return r;
        if (ctx->json)
                return print_doc(json_pack("{s:s}", "schedule_id", id));
        printf("Created schedule %s\n", id);
        return 0;
}

static uint64_t map_uint(const msgpack_object *map, const char *key) {
        const msgpack_object *o = msg_get(map, key);
        return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static const char *map_str(const msgpack_object *map, const char *key, char *buf, size_t size) {
        const msgpack_object *o = msg_get(map, key);

        if (!o || o->type != MSGPACK_OBJECT_STR)
                return "";
        snprintf(buf, size, "%.*s", (int) o->via.str.size, o->via.str.ptr);
        return buf;
}

static bool map_bool(const msgpack_object *map, const char *key) {
        const msgpack_object *o = msg_get(map, key);
        return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

static const msgpack_object *
answer_array(const Answer *a, const msgpack_object *map, const char *key) {
        const msgpack_object *o = msg_get(map, key);
        return o && o->type == MSGPACK_OBJECT_ARRAY ? o : NULL;
}

static int list(const Ctx *ctx) {
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_(table_freep) Table *t = NULL;
        const msgpack_object *all;
        int r;

        r = CTL_CALL(ctx->client, "ListSchedules", &answer, FIELD_STR("filter", NULL));
        if (r < 0)
                return r;
        all = answer_array(&answer, answer.map, "schedules");
        if (!all)
                return ctl_error_errno(EPROTO, "durabled's answer to ListSchedules is malformed");
        if (ctx->json)
                return print_doc(maps_to_json(all));
        r = table_new(&t, "SCHEDULE", "WORKFLOW TYPE", "TASK QUEUE", "STATE", "ACTIONS",
                      "NEXT ACTION", NULL);
        if (r < 0)
                return ctl_error_errno(r, "Out of memory");
        for (uint32_t i = 0; i < all->via.array.size; i++) {
                const msgpack_object *s = &all->via.array.ptr[i];
                char id[256], type[256], queue[256], count[24], when[TIME_TEXT_MAX];
                bool paused = map_bool(s, "paused");

                snprintf(count, sizeof(count), "%llu",
                         (unsigned long long) map_uint(s, "action_count"));
                if ((r = table_add(t, map_str(s, "schedule_id", id, sizeof(id)), ANSI_BOLD)) < 0 ||
                    (r = table_add(t, map_str(s, "workflow_type", type, sizeof(type)), NULL)) < 0 ||
                    (r = table_add(t, map_str(s, "task_queue", queue, sizeof(queue)), NULL)) < 0 ||
                    (r = table_add(t, paused ? "paused" : "active",
                                   paused ? ANSI_YELLOW : ANSI_GREEN)) < 0 ||
                    (r = table_add(t, count, NULL)) < 0 ||
                    (r = table_add(
                             t,
                             format_time_local(map_uint(s, "next_action_time_usec"), false, when),
                             NULL)) < 0)
                        return ctl_error_errno(r, "Out of memory");
        }
        if (table_rows(t) == 0) {
                printf("No schedules.\n");
                return 0;
        }
        table_print(t);
        return 0;
}

static void describe_spec(const msgpack_object *s) {
        const msgpack_object *def = msg_get(s, "definition"), *norm, *iv;
        char buf[1024], when[TIME_TEXT_MAX], d1[DURATION_TEXT_MAX], d2[DURATION_TEXT_MAX];

        norm = msg_get(s, "calendars_normalized");
        for (uint32_t i = 0; norm && norm->type == MSGPACK_OBJECT_ARRAY && i < norm->via.array.size;
             i++)
                kv_print(i == 0 ? "Calendar" : "", NULL, "%.*s",
                         (int) norm->via.array.ptr[i].via.str.size,
                         norm->via.array.ptr[i].via.str.ptr);
        iv = def ? msg_get(def, "intervals") : NULL;
        for (uint32_t i = 0; iv && iv->type == MSGPACK_OBJECT_ARRAY && i < iv->via.array.size; i++)
                kv_print(i == 0 ? "Interval" : "", NULL, "every %s, offset %s",
                         format_duration(map_uint(&iv->via.array.ptr[i], "every_usec"), d1),
                         format_duration(map_uint(&iv->via.array.ptr[i], "offset_usec"), d2));
        if (!def)
                return;
        if (map_uint(def, "start_time_usec"))
                kv_print("Start", NULL, "%s",
                         format_time_local(map_uint(def, "start_time_usec"), false, when));
        if (map_uint(def, "end_time_usec"))
                kv_print("End", NULL, "%s",
                         format_time_local(map_uint(def, "end_time_usec"), false, when));
        if (map_uint(def, "jitter_usec"))
                kv_print("Jitter", NULL, "up to %s",
                         format_duration(map_uint(def, "jitter_usec"), d1));
        kv_print("Action", NULL, "start %s on %s as %s-<time>",
                 map_str(def, "workflow_type", buf, 300),
                 map_str(def, "task_queue", buf + 300, 300),
                 map_str(def, "workflow_id_prefix", buf + 600, 400));
        kv_print("Policies", NULL, "overlap %s, catch-up %s (window %s)%s%s",
                 map_str(def, "overlap", buf, 64), map_str(def, "catchup", buf + 64, 64),
                 format_duration(map_uint(def, "catchup_window_usec"), d1),
                 map_bool(def, "pause_on_failure") ? ", pause on failure" : "",
                 map_bool(def, "wake_system") ? ", wakes the system" : "");
}

static void describe_print(const msgpack_object *s) {
        const msgpack_object *running, *recent, *next;
        char buf[1100], when[TIME_TEXT_MAX];
        bool paused = map_bool(s, "paused");

        kv_print("Schedule", ANSI_BOLD, "%s", map_str(s, "schedule_id", buf, sizeof(buf)));
        if (*map_str(s, "source", buf, sizeof(buf)))
                kv_print("Unit", NULL, "%s", buf);
        describe_spec(s);
        map_str(s, "note", buf, sizeof(buf));
        kv_print("State", paused ? ANSI_YELLOW : ANSI_GREEN, "%s%s%s", paused ? "paused" : "active",
                 *buf ? ": " : "", buf);
        kv_print("Actions", NULL,
                 "%llu (overlap skipped %llu, buffer dropped %llu, missed %llu), "
                 "%llu buffered",
                 (unsigned long long) map_uint(s, "action_count"),
                 (unsigned long long) map_uint(s, "overlap_skipped"),
                 (unsigned long long) map_uint(s, "buffer_dropped"),
                 (unsigned long long) map_uint(s, "missed_catchup"),
                 (unsigned long long) map_uint(s, "buffered"));
        running = msg_get(s, "running");
        for (uint32_t i = 0;
             running && running->type == MSGPACK_OBJECT_ARRAY && i < running->via.array.size; i++) {
                char rid[64];

                kv_print(i == 0 ? "Running" : "", NULL, "%s (run %s)",
                         map_str(&running->via.array.ptr[i], "workflow_id", buf, sizeof(buf)),
                         map_str(&running->via.array.ptr[i], "run_id", rid, sizeof(rid)));
        }
        recent = msg_get(s, "recent_actions");
        for (uint32_t i = 0;
             recent && recent->type == MSGPACK_OBJECT_ARRAY && i < recent->via.array.size; i++) {
                const msgpack_object *r = &recent->via.array.ptr[i];
                char kind[32], status[32];

                kv_print(i == 0 ? "Recent" : "", NULL, "%s %s %s (%s)",
                         format_time_local(map_uint(r, "scheduled_time_usec"), false, when),
                         map_str(r, "kind", kind, sizeof(kind)),
                         map_str(r, "workflow_id", buf, sizeof(buf)),
                         map_str(r, "status", status, sizeof(status)));
        }
        next = msg_get(s, "next_times_usec");
        for (uint32_t i = 0; next && next->type == MSGPACK_OBJECT_ARRAY && i < next->via.array.size;
             i++)
                kv_print(i == 0 ? "Next" : "", NULL, "%s",
                         format_time_local(next->via.array.ptr[i].via.u64, false, when));
}

static int describe(const Ctx *ctx, const char *id) {
        _cleanup_(answer_done) Answer answer = {};
        const msgpack_object *s;
        int r;

        r = CTL_CALL(ctx->client, "DescribeSchedule", &answer, FIELD_STR("schedule_id", id));
        if (r < 0)
                return r;
        s = msg_get(answer.map, "schedule");
        if (!s || s->type != MSGPACK_OBJECT_MAP)
                return ctl_error_errno(EPROTO,
                                       "durabled's answer to DescribeSchedule is malformed");
        if (ctx->json)
                return print_doc(map_to_json(s));
        describe_print(s);
        return 0;
}

static int simple(const Ctx *ctx, const Args *a, Command cmd, const char *id) {
        static const char *const ops[_CMD_MAX] = {
                [CMD_PAUSE] = "PauseSchedule",     [CMD_UNPAUSE] = "UnpauseSchedule",
                [CMD_TRIGGER] = "TriggerSchedule", [CMD_BACKFILL] = "BackfillSchedule",
                [CMD_DELETE] = "DeleteSchedule",
        };
        static const char *const done[_CMD_MAX] = {
                [CMD_PAUSE] = "Paused",      [CMD_UNPAUSE] = "Unpaused",
                [CMD_TRIGGER] = "Triggered", [CMD_BACKFILL] = "Backfilled",
                [CMD_DELETE] = "Deleted",
        };
        _cleanup_(answer_done) Answer answer = {};
        uint64_t times;
        int r;

        r = CTL_CALL(ctx->client, ops[cmd], &answer, FIELD_STR("schedule_id", id),
                     FIELD_STR("note", a->note), FIELD_STR("overlap", a->overlap),
                     FIELD_UINT("start_time_usec", a->start_time_usec),
                     FIELD_UINT("end_time_usec", a->end_time_usec));
        if (r < 0)
                return r;
        times = map_uint(answer.map, "times");
        if (ctx->json)
                return print_doc(cmd == CMD_BACKFILL ? json_pack("{s:s, s:I}", "schedule_id", id,
                                                                 "times", (json_int_t) times)
                                                     : json_pack("{s:s}", "schedule_id", id));
        if (cmd == CMD_BACKFILL)
                printf("Backfilled %llu time%s of schedule %s\n", (unsigned long long) times,
                       times == 1 ? "" : "s", id);
        else
                printf("%s schedule %s%s\n", done[cmd], id,
                       cmd == CMD_DELETE ? " (the workflows it started are not touched)" : "");
        return 0;
}

int verb_schedule(const Ctx *ctx, const Args *a) {
        int cmd = command_find(a->pos[0]);
        const char *id = a->n_pos > 1 ? a->pos[1] : NULL;

        switch (cmd) {
        case CMD_CREATE:
                return create(ctx, a, id);
        case CMD_LIST:
                return list(ctx);
        case CMD_DESCRIBE:
                return describe(ctx, id);
        default:
                return simple(ctx, a, (Command) cmd, id);
        }
}
