/* *.schedule unit files; see schedule-unit.h and durabled.schedule(5).
 *
 * The syntax is systemd's (systemd.syntax(7)): "[Section]" headers, "Key=Value" lines with blanks
 * around both trimmed, comments from "#" or ";" at the start of a line, a trailing "\" continuing
 * a line. A list key (OnCalendar=, Interval=) adds one element per line, and an empty value
 * empties the list. Unlike systemd, an unknown key is an error, not a warning: a schedule that
 * silently lacks part of what its file says would start workflows nobody asked for. */

#include "daemon/schedule-unit.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/calendar.h"
#include "common/log.h"
#include "daemon/clock.h"
#include "daemon/schedule.h"
#include "proto/json.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define UNIT_SIZE_MAX (64 * 1024)
#define UNITS_MAX 1000
#define SUFFIX ".schedule"

typedef struct Unit {
        const char *calendars[SCHEDULE_SPECS_MAX];
        size_t n_calendars;
        ScheduleInterval intervals[SCHEDULE_SPECS_MAX];
        size_t n_intervals;
        uint64_t start_time, end_time, jitter, task_timeout, catchup_window;
        const char *workflow_type, *task_queue, *prefix, *overlap, *catchup;
        json_t *input;
        int pause_on_failure; /* -1: not given */
        int wake_system;      /* -1: not given */
} Unit;

/* ---- values ---- */

static int parse_bool(const char *v, int *ret) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(v, yes[i]) == 0)
                        return *ret = 1, 0;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(v, no[i]) == 0)
                        return *ret = 0, 0;
        return -EINVAL;
}

/* A systemd time span: "90", "1h 30min", "2d", "500ms" (systemd.time(7)). */
static int parse_timespan(const char *v, uint64_t *ret) {
        static const struct {
                const char *unit;
                uint64_t usec;
        } units[] = {
                { "usec", 1 },
                { "us", 1 },
                { "msec", 1000 },
                { "ms", 1000 },
                { "seconds", USEC_PER_SEC },
                { "second", USEC_PER_SEC },
                { "sec", USEC_PER_SEC },
                { "s", USEC_PER_SEC },
                { "minutes", 60 * USEC_PER_SEC },
                { "minute", 60 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },
                { "hours", 3600 * USEC_PER_SEC },
                { "hour", 3600 * USEC_PER_SEC },
                { "hr", 3600 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC },
                { "days", 86400 * USEC_PER_SEC },
                { "day", 86400 * USEC_PER_SEC },
                { "d", 86400 * USEC_PER_SEC },
                { "weeks", 7 * 86400 * USEC_PER_SEC },
                { "week", 7 * 86400 * USEC_PER_SEC },
                { "w", 7 * 86400 * USEC_PER_SEC },
        };
        uint64_t total = 0;
        bool any = false;

        for (const char *p = v;;) {
                unsigned long long n;
                uint64_t mult = USEC_PER_SEC;
                size_t len = 0;
                char *end;

                p += strspn(p, " \t");
                if (!*p)
                        break;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                errno = 0;
                n = strtoull(p, &end, 10);
                if (errno || n > UINT32_MAX)
                        return -ERANGE;
                p = end + strspn(end, " \t");
                for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                        len = strlen(units[i].unit);
                        if (strncmp(p, units[i].unit, len) == 0 &&
                            !isalpha((unsigned char) p[len])) {
                                mult = units[i].usec;
                                break;
                        }
                        len = 0;
                }
                if (len == 0 && isalpha((unsigned char) *p))
                        return -EINVAL;
                p += len;
                total += (uint64_t) n * mult;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

/* "@SECONDS" or a calendar spec with exactly one elapse. */
static int parse_point(const char *v, uint64_t *ret) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;
        uint64_t t, again;
        char *end;

        if (v[0] == '@' && isdigit((unsigned char) v[1])) {
                unsigned long long sec;

                errno = 0;
                sec = strtoull(v + 1, &end, 10);
                if (errno || *end || sec > UINT64_C(7258118400))
                        return -EINVAL;
                *ret = sec * USEC_PER_SEC;
                return 0;
        }
        if (calendar_spec_from_string(v, &spec, NULL, 0) < 0 ||
            calendar_spec_next(spec, 0, &t) < 0 || calendar_spec_next(spec, t, &again) >= 0)
                return -EINVAL;
        *ret = t;
        return 0;
}

/* ---- keys ---- */

static int set_key(Unit *u, const char *key, char *value, char *err, size_t errlen) {
        char cal_err[512];
        int b, r = 0;

#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)
        if (streq(key, "OnCalendar")) {
                _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL;

                if (!*value)
                        return u->n_calendars = 0, 0;
                if (u->n_calendars >= SCHEDULE_SPECS_MAX)
                        return BAD("more than %d OnCalendar= lines", SCHEDULE_SPECS_MAX);
                if (calendar_spec_from_string(value, &spec, cal_err, sizeof(cal_err)) < 0)
                        return BAD("OnCalendar=: %s", cal_err);
                u->calendars[u->n_calendars++] = value;
        } else if (streq(key, "Interval")) {
                ScheduleInterval iv = {};
                char *slash = strchr(value, '/');

                if (!*value)
                        return u->n_intervals = 0, 0;
                if (u->n_intervals >= SCHEDULE_SPECS_MAX)
                        return BAD("more than %d Interval= lines", SCHEDULE_SPECS_MAX);
                if (slash)
                        *slash = 0;
                if (parse_timespan(value, &iv.every_usec) < 0 ||
                    (slash && parse_timespan(slash + 1, &iv.offset_usec) < 0))
                        return BAD("Interval=: expected a time span, optionally /OFFSET "
                                   "(\"1h/15min\")");
                u->intervals[u->n_intervals++] = iv;
        } else if (streq(key, "StartTime") || streq(key, "EndTime")) {
                if (parse_point(value, streq(key, "StartTime") ? &u->start_time : &u->end_time) < 0)
                        return BAD("%s=: expected @SECONDS or one point in time such as "
                                   "\"2026-01-01 09:00 UTC\"",
                                   key);
        } else if (streq(key, "RandomizedDelaySec") || streq(key, "TaskTimeoutSec") ||
                   streq(key, "CatchupWindowSec")) {
                uint64_t *dst = streq(key, "RandomizedDelaySec") ? &u->jitter
                                : streq(key, "TaskTimeoutSec")   ? &u->task_timeout
                                                                 : &u->catchup_window;
                if (parse_timespan(value, dst) < 0)
                        return BAD("%s=: expected a time span such as \"90s\" or \"1h 30min\"",
                                   key);
        } else if (streq(key, "WorkflowType"))
                u->workflow_type = value;
        else if (streq(key, "TaskQueue"))
                u->task_queue = value;
        else if (streq(key, "WorkflowIdPrefix"))
                u->prefix = value;
        else if (streq(key, "Overlap"))
                u->overlap = value;
        else if (streq(key, "Catchup"))
                u->catchup = value;
        else if (streq(key, "Persistent")) {
                if (parse_bool(value, &b) < 0)
                        return BAD("Persistent=: expected a boolean");
                u->catchup = b ? "collapse" : "none";
        } else if (streq(key, "WakeSystem")) {
                if (parse_bool(value, &u->wake_system) < 0)
                        return BAD("WakeSystem=: expected a boolean");
        } else if (streq(key, "PauseOnFailure")) {
                if (parse_bool(value, &u->pause_on_failure) < 0)
                        return BAD("PauseOnFailure=: expected a boolean");
        } else if (streq(key, "Input")) {
                json_error_t e;

                json_decref(u->input);
                u->input = json_loads(value, JSON_DECODE_ANY, &e);
                if (!u->input)
                        return BAD("Input=: invalid JSON: %s", e.text);
        } else
                return BAD("unknown key %s= in section [Schedule]", key);
#undef BAD
        return r;
}

/* ---- the file ---- */

static char *trim(char *s) {
        char *e;

        s += strspn(s, " \t");
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

/* Joins continuation lines in place: a "\" at the end of a line continues it. */
static void join_continuations(char *text) {
        char *w = text;

        for (char *p = text; *p; p++) {
                if (p[0] == '\\' && p[1] == '\n') {
                        /* Both sides of the break are trimmed, one blank joins them. */
                        while (w > text && (w[-1] == ' ' || w[-1] == '\t'))
                                w--;
                        *w++ = ' ';
                        p++;
                        while (p[1] == ' ' || p[1] == '\t')
                                p++;
                        continue;
                }
                *w++ = *p;
        }
        *w = 0;
}

static int pack_unit(const Unit *u, MsgBuf *out) {
        msgpack_packer *pk = &out->pk;
        size_t n = 2 + (u->start_time > 0) + (u->end_time > 0) + (u->jitter > 0) +
                   (u->task_timeout > 0) + (u->catchup_window > 0) + (u->prefix != NULL) +
                   (u->overlap != NULL) + (u->catchup != NULL) + (u->pause_on_failure >= 0) +
                   (u->wake_system >= 0) + (u->input != NULL) + (u->workflow_type != NULL) +
                   (u->task_queue != NULL);

        (void) msgpack_pack_map(pk, n);
        (void) msg_pack_str(pk, "calendars");
        (void) msgpack_pack_array(pk, u->n_calendars);
        for (size_t i = 0; i < u->n_calendars; i++)
                (void) msg_pack_str(pk, u->calendars[i]);
        (void) msg_pack_str(pk, "intervals");
        (void) msgpack_pack_array(pk, u->n_intervals);
        for (size_t i = 0; i < u->n_intervals; i++) {
                (void) msgpack_pack_map(pk, 2);
                (void) msg_pack_kv_uint(pk, "every_usec", u->intervals[i].every_usec);
                (void) msg_pack_kv_uint(pk, "offset_usec", u->intervals[i].offset_usec);
        }
        if (u->start_time)
                (void) msg_pack_kv_uint(pk, "start_time_usec", u->start_time);
        if (u->end_time)
                (void) msg_pack_kv_uint(pk, "end_time_usec", u->end_time);
        if (u->jitter)
                (void) msg_pack_kv_uint(pk, "jitter_usec", u->jitter);
        if (u->task_timeout)
                (void) msg_pack_kv_uint(pk, "task_timeout_usec", u->task_timeout);
        if (u->catchup_window)
                (void) msg_pack_kv_uint(pk, "catchup_window_usec", u->catchup_window);
        if (u->prefix)
                (void) msg_pack_kv_str(pk, "workflow_id_prefix", u->prefix);
        if (u->overlap)
                (void) msg_pack_kv_str(pk, "overlap", u->overlap);
        if (u->catchup)
                (void) msg_pack_kv_str(pk, "catchup", u->catchup);
        if (u->pause_on_failure >= 0)
                (void) msg_pack_kv_bool(pk, "pause_on_failure", u->pause_on_failure);
        if (u->wake_system >= 0)
                (void) msg_pack_kv_bool(pk, "wake_system", u->wake_system);
        if (u->input) {
                (void) msg_pack_str(pk, "input");
                if (json_pack_payload(u->input, pk) < 0)
                        return -ENOMEM;
        }
        if (u->workflow_type)
                (void) msg_pack_kv_str(pk, "workflow_type", u->workflow_type);
        if (u->task_queue)
                (void) msg_pack_kv_str(pk, "task_queue", u->task_queue);
        return msgbuf_error(out);
}

int schedule_unit_parse(
        const char *text, MsgBuf *out, unsigned *ret_line, char *err, size_t errlen) {
        _cleanup_free_ char *buf = strdup(text);
        Unit u = { .pause_on_failure = -1, .wake_system = -1 };
        bool in_section = false, seen_section = false;
        unsigned line = 0;
        char *save = NULL, *l, msg[600];
        int r = 0;

        if (!buf)
                return -ENOMEM;
        join_continuations(buf);
        for (char *p = buf; p; p = save) {
                char *eq, *key;

                save = strchr(p, '\n');
                if (save)
                        *save++ = 0;
                line++;
                l = trim(p);
                if (!*l || *l == '#' || *l == ';')
                        continue;
                if (*l == '[') {
                        in_section = streq(l, "[Schedule]");
                        if (!in_section) {
                                snprintf(msg, sizeof(msg),
                                         "unknown section %s (expected [Schedule])", l);
                                r = -EINVAL;
                                break;
                        }
                        seen_section = true;
                        continue;
                }
                eq = strchr(l, '=');
                if (!in_section || !eq) {
                        snprintf(msg, sizeof(msg), "%s",
                                 !eq ? "expected Key=Value" : "Key=Value outside [Schedule]");
                        r = -EINVAL;
                        break;
                }
                *eq = 0;
                key = trim(l);
                r = set_key(&u, key, trim(eq + 1), msg, sizeof(msg));
                if (r < 0)
                        break;
        }
        if (r >= 0 && !seen_section) {
                snprintf(msg, sizeof(msg), "no [Schedule] section");
                r = -EINVAL;
                line = 0;
        }
        if (r >= 0)
                r = pack_unit(&u, out);
        json_decref(u.input);
        if (r == -EINVAL) {
                *ret_line = line;
                snprintf(err, errlen, "%s", msg);
        }
        return r;
}

/* ---- sync ---- */

static int read_file(const char *path, char **ret) {
        _cleanup_free_ char *buf = NULL;
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return -errno;
        buf = malloc(UNIT_SIZE_MAX + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(buf, 1, UNIT_SIZE_MAX + 1, f);
        fclose(f);
        if (n > UNIT_SIZE_MAX)
                return -EFBIG;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Builds and checks the definition of unit @path; logs what is wrong with it. */
static int load_unit(const char *path, const char *id, MsgBuf *def, bool *ret_wake) {
        _cleanup_free_ char *text = NULL;
        msgpack_unpacked u;
        MsgBuf norm;
        ScheduleDef d = {};
        ApiError e = {};
        unsigned line = 0;
        char err[700];
        int r;

        r = read_file(path, &text);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        r = schedule_unit_parse(text, def, &line, err, sizeof(err));
        if (r == -EINVAL && line > 0)
                return log_error_errno(r, "%s:%u: %s; ignoring the file", path, line, err);
        if (r == -EINVAL)
                return log_error_errno(r, "%s: %s; ignoring the file", path, err);
        if (r < 0)
                return r;
        /* The same checks as CreateSchedule, then the same normalized form. The parsed
         * definition points into @def (the input), so it is packed into another buffer first. */
        msgbuf_init(&norm);
        msgpack_unpacked_init(&u);
        r = msg_decode(def->sb.data, def->sb.size, &u);
        if (r >= 0)
                r = schedule_def_parse(&u.data, u.zone, id, &d, &e);
        if (r >= 0) {
                *ret_wake = d.wake_system;
                r = schedule_def_pack(&d, &norm.pk);
        }
        if (r >= 0)
                r = msgbuf_error(&norm);
        schedule_def_done(&d);
        msgpack_unpacked_destroy(&u);
        if (r >= 0) {
                msgbuf_reset(def);
                r = msg_pack_raw(&def->pk, norm.sb.data, norm.sb.size) < 0 ? -ENOMEM : 0;
        }
        msgbuf_done(&norm);
        if (r == -EINVAL)
                return log_error_errno(r, "%s: %s; ignoring the file", path, e.message);
        return r;
}

static int sync_one(Manager *m, const char *path, const char *id) {
        _cleanup_(schedule_row_done) ScheduleRow row = {};
        _cleanup_(schedule_done) Schedule s = {};
        bool wake = false;
        MsgBuf def;
        Blob blob;
        int r;

        msgbuf_init(&def);
        r = load_unit(path, id, &def, &wake);
        if (r < 0)
                goto finish;
        blob = (Blob){ .ptr = def.sb.data, .size = def.sb.size };
        r = store_schedule_get(m->store, id, &row);
        if (r == -ENOENT) {
                ScheduleRow fresh = {
                        .schedule_id = (char *) id,
                        .uid = m->daemon_uid,
                        .def = blob,
                        .create_time = clock_now(),
                        .cursor = clock_now(),
                        .source = (char *) path,
                        .wake_system = wake,
                };
                r = store_schedule_insert(m->store, &fresh);
                if (r >= 0)
                        log_info("Schedule '%s' created from %s", id, path);
        } else if (r >= 0 && !row.source) {
                log_warning("Ignoring %s: schedule '%s' was created through the API", path, id);
                goto finish;
        } else if (r >= 0 &&
                   (row.def.size != blob.size || memcmp(row.def.ptr, blob.ptr, blob.size) != 0 ||
                    !streq(row.source, path))) {
                ScheduleRow update = {
                        .schedule_id = (char *) id,
                        .def = blob,
                        .source = (char *) path,
                        .wake_system = wake,
                };

                r = store_schedule_set_def(m->store, &update);
                if (r >= 0)
                        log_info("Schedule '%s' updated from %s", id, path);
        }
        if (r >= 0)
                r = schedule_load(m, id, &s);
        if (r >= 0)
                r = schedule_arm(m, &s);
finish:
        msgbuf_done(&def);
        return r;
}

typedef struct Seen {
        char **ids;
        size_t n;
        char **gone; /* schedules of unit files that are no longer there */
        size_t n_gone;
} Seen;

static bool seen_has(const Seen *seen, const char *id) {
        for (size_t i = 0; i < seen->n; i++)
                if (streq(seen->ids[i], id))
                        return true;
        return false;
}

static int note_gone(const ScheduleRow *row, void *userdata) {
        Seen *seen = userdata;
        char **p, *id;

        if (!row->source || seen_has(seen, row->schedule_id))
                return 0;
        id = strdup(row->schedule_id);
        p = reallocarray(seen->gone, seen->n_gone + 1, sizeof(char *));
        if (!id || !p) {
                free(id);
                if (p)
                        seen->gone = p;
                return -ENOMEM;
        }
        seen->gone = p;
        seen->gone[seen->n_gone++] = id;
        return 0;
}

/* Deletes the schedules whose unit file is gone (collected first: no writes while reading). */
static int delete_gone(Manager *m, Seen *seen) {
        int r = store_schedules_foreach(m->store, false, 0, note_gone, seen);

        for (size_t i = 0; r >= 0 && i < seen->n_gone; i++) {
                r = store_schedule_delete(m->store, seen->gone[i]);
                if (r >= 0)
                        log_info("Schedule '%s' deleted: its unit file is gone", seen->gone[i]);
        }
        return r;
}

static int filter_units(const struct dirent *de) {
        size_t n = strlen(de->d_name), k = strlen(SUFFIX);

        return de->d_name[0] != '.' && n > k && n - k <= SCHEDULE_ID_MAX_LEN &&
               streq(de->d_name + n - k, SUFFIX);
}

int schedule_units_sync(Manager *m, const char *dir) {
        struct dirent **list = NULL;
        Seen seen = {};
        int n, r = 0;

        n = scandir(dir, &list, filter_units, alphasort);
        if (n < 0 && errno != ENOENT)
                return log_error_errno(errno, "Failed to read the schedule directory %s: %m", dir);
        if (n > UNITS_MAX) {
                log_error("%s holds %d schedule units; reading the first %d", dir, n, UNITS_MAX);
        }
        seen.ids = calloc(n > 0 ? (size_t) n : 1, sizeof(char *));
        for (int i = 0; seen.ids && i < n && i < UNITS_MAX; i++) {
                char path[4096], *id;
                int k;

                id = strndup(list[i]->d_name, strlen(list[i]->d_name) - strlen(SUFFIX));
                if (!id)
                        break;
                seen.ids[seen.n++] = id; /* a broken file keeps its schedule as it was */
                snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
                k = store_savepoint(m->store);
                if (k >= 0)
                        k = sync_one(m, path, id);
                if (k < 0) {
                        store_rollback_to(m->store);
                        if (k != -EINVAL)
                                log_error_errno(k, "Failed to load %s: %m", path);
                } else
                        (void) store_release(m->store);
        }
        if (!seen.ids)
                r = -ENOMEM;
        if (r >= 0)
                r = delete_gone(m, &seen);
        if (r >= 0)
                manager_deadlines_changed(m);
        for (size_t i = 0; i < seen.n; i++)
                free(seen.ids[i]);
        free(seen.ids);
        for (size_t i = 0; i < seen.n_gone; i++)
                free(seen.gone[i]);
        free(seen.gone);
        for (int i = 0; i < n; i++)
                free(list[i]);
        free(list);
        return r;
}
