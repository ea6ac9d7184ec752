/* Process activities: attempts run as processes in cgroups of their own; see activity.h.
 *
 * The contract with the program (durabled.activity(5)): stdin holds the input as JSON; stdout,
 * read to the end, is the result as JSON (empty means null); exit status 0 completes the
 * activity; any other exit or a signal fails the attempt (retryable unless the status is listed in
 * NonRetryableExitStatus= or stdout holds {"error": {..., "non_retryable": true}}); stderr goes to
 * the log line by line and its last 64 KiB into the failure's details. $NOTIFY_SOCKET takes
 * sd_notify datagrams: HEARTBEAT=details and STATUS=text both count as heartbeats. */

#include "daemon/activity.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "common/list.h"
#include "common/log.h"
#include "daemon/activity-unit.h"
#include "daemon/cgroup.h"
#include "daemon/clock.h"
#include "daemon/history.h"
#include "daemon/killpoint.h"
#include "proto/json.h"

#define STDERR_TAIL_MAX (64 * 1024)
#define STDERR_LINE_MAX 2048
#define NOTIFY_DATAGRAM_MAX 4096
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef enum AttemptState {
        ATTEMPT_PENDING,   /* started in the store, forked after the commit */
        ATTEMPT_RUNNING,   /* the process runs */
        ATTEMPT_STOPPING,  /* cancellation: KillSignal sent, SIGKILL after TimeoutStopSec */
        ATTEMPT_ABANDONED, /* no longer running in the store: killed, its result is ignored */
        ATTEMPT_EXITED,    /* recorded; waits for its cgroup to empty, then removes it */
        _ATTEMPT_STATE_MAX,
        _ATTEMPT_STATE_INVALID = -EINVAL,
} AttemptState;

typedef struct Attempt Attempt;

struct Supervisor {
        Manager *m;
        char **dirs;
        UnitSet *units;
        CgroupTree *cgroups;
        char *cgroup_error; /* why process activities cannot run on this host */
        Attempt *attempts;
        unsigned n_attempts;
        bool dirty;
        uint64_t serial;
        sd_event_source *rate_timer; /* the next token of a unit its RateLimit= holds back */
};

struct Attempt {
        Supervisor *sup;
        AttemptState state;
        char run_id[37];
        uint64_t scheduled_id;
        uint32_t attempt;
        uint64_t started_time; /* as recorded (DURABLED_STARTED_TIME=) */
        char *workflow_id;
        char *workflow_type; /* of its run, for the journal */
        char *activity_id;
        char *activity_type;
        char *input_json;
        char *heartbeat_json; /* details of the last heartbeat of an earlier attempt, or NULL */
        ActivityUnit *unit;   /* a copy of the unit's settings, owned (reloads may free the unit) */
        char *cgroup;
        pid_t pid;
        uid_t uid;
        int out_fd, err_fd, notify_fd;
        sd_event_source *child_source, *out_source, *err_source, *notify_source;
        sd_event_source *stop_timer, *cgroup_watch;
        char *out;
        size_t out_size;
        bool out_overflow;
        char err_tail[STDERR_TAIL_MAX];
        size_t err_len;
        bool err_truncated;
        char err_line[STDERR_LINE_MAX];
        size_t err_line_len;
        bool frozen;   /* its run is paused: cgroup.freeze (history-pause.c) */
        char *status;  /* last STATUS= */
        uid_t run_uid; /* who started the run (DESIGN.md §10) */
        LIST_FIELDS(Attempt, attempts);
};

/* A record about attempt @a, with the journal fields WORKFLOW_ID=, RUN_ID=, WORKFLOW_TYPE= and
 * ACTIVITY_ID=, so that `journalctl ACTIVITY_ID=...` finds what the daemon did with the
 * activity's processes. */
#define log_attempt(level, a, ...)                                    \
        log_fields(level,                                             \
                   &(LogFields){ .workflow_id = (a)->workflow_id,     \
                                 .run_id = (a)->run_id,               \
                                 .workflow_type = (a)->workflow_type, \
                                 .activity_id = (a)->activity_id },   \
                   __VA_ARGS__)

static const char *const attempt_state_table[_ATTEMPT_STATE_MAX] = {
        [ATTEMPT_PENDING] = "pending",   [ATTEMPT_RUNNING] = "running",
        [ATTEMPT_STOPPING] = "stopping", [ATTEMPT_ABANDONED] = "abandoned",
        [ATTEMPT_EXITED] = "exited",
};

/* The one place an attempt changes state; asserts the transitions of activity.h's diagram. */
static void attempt_set_state(Attempt *a, AttemptState s) {
        switch (s) {
        case ATTEMPT_RUNNING:
                assert(a->state == ATTEMPT_PENDING);
                break;
        case ATTEMPT_STOPPING:
                assert(a->state == ATTEMPT_RUNNING);
                break;
        case ATTEMPT_ABANDONED:
                assert(a->state == ATTEMPT_RUNNING || a->state == ATTEMPT_STOPPING);
                break;
        case ATTEMPT_EXITED:
                assert(a->state != ATTEMPT_EXITED);
                break;
        default:
                assert(false);
        }
        log_debug("Attempt %s/%" PRIu64 "#%" PRIu32 ": %s -> %s", a->run_id, a->scheduled_id,
                  a->attempt, attempt_state_table[a->state], attempt_state_table[s]);
        a->state = s;
}

static Supervisor *sup_of(Manager *m) {
        return m->supervisor;
}

/* ---- units ---- */

static ActivityUnit *unit_copy(const ActivityUnit *u) {
        ActivityUnit *c = calloc(1, sizeof(*c));
        char **v[] = { NULL, NULL, NULL };
        const char *const *src[] = { (const char *const *) u->exec_argv,
                                     (const char *const *) u->environment,
                                     (const char *const *) u->environment_files };

        if (!c)
                return NULL;
        *c = *u;
        c->units_next = c->units_prev = NULL;
        c->name = strdup(u->name);
        c->path = strdup(u->path);
        c->description = NULL;
        c->task_queue = NULL;
        c->user = u->user ? strdup(u->user) : NULL;
        c->group = u->group ? strdup(u->group) : NULL;
        c->working_directory = u->working_directory ? strdup(u->working_directory) : NULL;
        c->exec_argv = c->environment = c->environment_files = NULL;
        for (size_t k = 0; k < 3; k++) {
                size_t n = 0;
                while (src[k] && src[k][n])
                        n++;
                v[k] = calloc(n + 1, sizeof(char *));
                for (size_t i = 0; v[k] && i < n; i++)
                        if (!(v[k][i] = strdup(src[k][i])))
                                c->name = (free(c->name), NULL); /* reported below */
        }
        c->exec_argv = v[0];
        c->environment = v[1];
        c->environment_files = v[2];
        if (!c->name || !c->path || !v[0] || !v[1] || !v[2] || (u->user && !c->user) ||
            (u->group && !c->group) || (u->working_directory && !c->working_directory))
                return activity_unit_free(c);
        return c;
}

static void log_unit_set(UnitSet *set) {
        UnitError *e;

        LIST_FOREACH(errors, e, set->errors)
                log_error("Refusing activity unit: %s", e->message);
        log_info("Loaded %u activity unit%s (%u refused)", set->n_units,
                 set->n_units == 1 ? "" : "s", set->n_errors);
}

int supervisor_new(Manager *m, char *const *dirs) {
        Supervisor *s;
        size_t n = 0;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        m->supervisor = s;
        s->m = m;
        while (dirs && dirs[n])
                n++;
        s->dirs = calloc(n + 1, sizeof(char *));
        if (!s->dirs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(s->dirs[i] = strdup(dirs[i])))
                        return -ENOMEM;
        r = unit_set_load(&s->units, s->dirs);
        if (r < 0)
                return log_error_errno(r, "Failed to load activity units: %m");
        log_unit_set(s->units);
        r = cgroup_tree_setup(&s->cgroups, &s->cgroup_error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_warning("Process activities cannot run: %s", s->cgroup_error);
        else
                log_debug("Activity cgroups under %s", s->cgroups->activities);
        return 0;
}

int supervisor_reload(Manager *m) {
        Supervisor *s = sup_of(m);
        UnitSet *set = NULL;
        int r;

        if (!s)
                return 0; /* ManagerConfig.no_process_activities */
        r = unit_set_load(&set, s->dirs);
        if (r < 0)
                return log_error_errno(r, "Failed to reload activity units: %m");
        unit_set_free(s->units);
        s->units = set;
        log_unit_set(set);
        /* Tasks of types declared only now wait in the workers' queues; new ones route here.
         * Units that are back may have tasks waiting. */
        supervisor_mark_dirty(m);
        manager_kick(m);
        return (int) set->n_units;
}

const char *supervisor_route(Manager *m, const char *type, const char *queue) {
        ActivityUnit *u;

        if (!m->supervisor)
                return NULL;
        u = unit_set_find(m->supervisor->units, type, queue);
        return u ? u->name : NULL;
}

const ActivityUnit *supervisor_unit(Manager *m, const char *type, const char *queue) {
        return m->supervisor ? unit_set_find(m->supervisor->units, type, queue) : NULL;
}

void supervisor_mark_dirty(Manager *m) {
        if (m->supervisor)
                m->supervisor->dirty = true;
}

/* ---- attempts: life cycle ---- */

static Attempt *attempt_free(Attempt *a) {
        if (!a)
                return NULL;
        if (a->sup) {
                LIST_REMOVE(attempts, a->sup->attempts, a);
                a->sup->n_attempts--;
        }
        sd_event_source_disable_unref(a->child_source);
        sd_event_source_disable_unref(a->out_source);
        sd_event_source_disable_unref(a->err_source);
        sd_event_source_disable_unref(a->notify_source);
        sd_event_source_disable_unref(a->stop_timer);
        sd_event_source_disable_unref(a->cgroup_watch);
        safe_close(a->out_fd);
        safe_close(a->err_fd);
        safe_close(a->notify_fd);
        free(a->workflow_id);
        free(a->workflow_type);
        free(a->activity_id);
        free(a->activity_type);
        free(a->input_json);
        free(a->heartbeat_json);
        activity_unit_free(a->unit);
        free(a->cgroup);
        free(a->out);
        free(a->status);
        free(a);
        return NULL;
}

static Attempt *attempt_new(Supervisor *s) {
        Attempt *a = calloc(1, sizeof(*a));

        if (!a)
                return NULL;
        a->out_fd = a->err_fd = a->notify_fd = -EBADF;
        a->sup = s;
        LIST_PREPEND(attempts, s->attempts, a);
        s->n_attempts++;
        return a;
}

static unsigned unit_running(Supervisor *s, const char *unit) {
        unsigned n = 0;
        Attempt *a;

        LIST_FOREACH(attempts, a, s->attempts)
                if (a->unit && streq(a->unit->name, unit) && a->state != ATTEMPT_EXITED)
                        n++;
        return n;
}

static int cgroup_on_event(sd_event_source *src, const struct inotify_event *ev, void *userdata) {
        Attempt *a = userdata;

        if (cgroup_populated(a->cgroup) == 0) {
                (void) cgroup_remove(a->cgroup);
                attempt_free(a);
        }
        return 0;
}

/* The process exited (or never ran): kill what is left of the cgroup and remove it once empty. */
static void attempt_reap_cgroup(Attempt *a) {
        char *events;
        int r;

        if (a->state != ATTEMPT_EXITED)
                attempt_set_state(a, ATTEMPT_EXITED);
        a->child_source = sd_event_source_disable_unref(a->child_source);
        a->out_source = sd_event_source_disable_unref(a->out_source);
        a->err_source = sd_event_source_disable_unref(a->err_source);
        a->notify_source = sd_event_source_disable_unref(a->notify_source);
        a->stop_timer = sd_event_source_disable_unref(a->stop_timer);
        if (!a->cgroup) {
                attempt_free(a);
                return;
        }
        /* systemd's KillMode=control-group: nothing outlives the main process. The kernel
         * modifies cgroup.events when the last process leaves. */
        (void) cgroup_kill(a->cgroup);
        if (asprintf(&events, "%s/cgroup.events", a->cgroup) < 0)
                r = -ENOMEM;
        else
                r = sd_event_add_inotify(a->sup->m->event, &a->cgroup_watch, events, IN_MODIFY,
                                         cgroup_on_event, a);
        free(events);
        if (r < 0)
                log_warning_errno(r, "Failed to watch %s: %m; it stays until the next start",
                                  a->cgroup);
        if (r < 0 || cgroup_populated(a->cgroup) <= 0) {
                (void) cgroup_remove(a->cgroup);
                attempt_free(a);
        }
}

/* ---- recording outcomes ---- */

typedef enum Outcome {
        OUTCOME_COMPLETE,
        OUTCOME_FAIL,
        OUTCOME_CANCEL,
} Outcome;

/* Records through the history paths a worker's answer takes, in a savepoint of the pass. */
static void attempt_record(Attempt *a, Outcome o, const MsgBin *payload, const msgpack_object *f) {
        Manager *m = a->sup->m;
        char token[128];
        MsgBin t, none = {};
        ApiError e = {};
        int r;

        snprintf(token, sizeof(token), "A/%s/%" PRIu64 "/%" PRIu32, a->run_id, a->scheduled_id,
                 a->attempt);
        t = (MsgBin){ token, strlen(token) };
        r = manager_begin(m);
        if (r >= 0)
                r = store_savepoint(m->store);
        if (r < 0) {
                log_error_errno(r, "Failed to record the end of activity %s: %m", a->activity_id);
                return;
        }
        m->actor_uid = m->daemon_uid;
        if (o == OUTCOME_COMPLETE)
                r = history_complete_activity(m, &t, payload, &e);
        else if (o == OUTCOME_FAIL)
                r = history_fail_activity(m, &t, f, 0, &e);
        else
                r = history_cancel_activity(m, &t, payload ? payload : &none, &e);
        if (r < 0) {
                store_rollback_to(m->store);
                if (r == -ENOENT || r == -ESTALE)
                        log_debug("Activity %s attempt %" PRIu32 " ended after it stopped "
                                  "running: %s",
                                  a->activity_id, a->attempt, e.message);
                else
                        log_error_errno(r, "Failed to record the end of activity %s: %s",
                                        a->activity_id, e.message[0] ? e.message : strerror(-r));
                return;
        }
        (void) store_release(m->store);
        manager_kick(m);
}

/* A failure map: {message, type, non_retryable, details: payload {exit_status|signal, stderr,
 * error_details?}} and records it. @user_details is the "details" of the program's error object. */
static void attempt_fail(Attempt *a,
                         const char *type,
                         bool non_retryable,
                         const char *message,
                         const char *exit_key,
                         int64_t exit_value,
                         json_t *user_details) {
        MsgBuf b, d;
        msgpack_unpacked u;
        size_t off = 0;

        msgbuf_init(&d);
        (void) msgpack_pack_map(&d.pk, 2 + (user_details ? 1 : 0));
        (void) msg_pack_str(&d.pk, exit_key);
        (void) msgpack_pack_int64(&d.pk, exit_value);
        (void) msg_pack_str(&d.pk, "stderr");
        (void) msgpack_pack_str(&d.pk, a->err_len);
        (void) msgpack_pack_str_body(&d.pk, a->err_tail, a->err_len);
        if (user_details) {
                (void) msg_pack_str(&d.pk, "error_details");
                (void) json_to_msgpack(user_details, &d.pk);
        }
        msgbuf_init(&b);
        (void) msgpack_pack_map(&b.pk, 4);
        (void) msg_pack_kv_str(&b.pk, "message", message);
        (void) msg_pack_kv_str(&b.pk, "type", type);
        (void) msg_pack_kv_bool(&b.pk, "non_retryable", non_retryable);
        (void) msg_pack_kv_bin(&b.pk, "details", d.sb.data, d.sb.size);
        msgpack_unpacked_init(&u);
        if (msgbuf_error(&b) < 0 || msgbuf_error(&d) < 0 ||
            msgpack_unpack_next(&u, b.sb.data, b.sb.size, &off) != MSGPACK_UNPACK_SUCCESS)
                log_error("Failed to record the failure of activity %s: out of memory",
                          a->activity_id);
        else {
                log_attempt(LOG_INFO, a, "Activity %s (%s) attempt %" PRIu32 " failed: %s",
                            a->activity_id, a->unit->name, a->attempt, message);
                attempt_record(a, OUTCOME_FAIL, NULL, &u.data);
        }
        msgpack_unpacked_destroy(&u);
        msgbuf_done(&b);
        msgbuf_done(&d);
}

static bool exit_listed(const ActivityUnit *u, int status) {
        return status > 0 && status < 256 &&
               (u->non_retryable_exit[status / 8] & (1u << (status % 8)));
}

/* {"error": {"message", "type", "non_retryable", "details"}} on stdout of a failed process. */
static bool user_error(json_t *out,
                       const char **ret_msg,
                       const char **ret_type,
                       bool *ret_nr,
                       json_t **ret_details) {
        json_t *e = json_is_object(out) ? json_object_get(out, "error") : NULL;
        json_t *v;

        if (!json_is_object(e))
                return false;
        v = json_object_get(e, "message");
        *ret_msg = json_is_string(v) ? json_string_value(v) : NULL;
        v = json_object_get(e, "type");
        *ret_type = json_is_string(v) ? json_string_value(v) : "";
        *ret_nr = json_is_true(json_object_get(e, "non_retryable"));
        *ret_details = json_object_get(e, "details");
        return true;
}

static void attempt_complete(Attempt *a, json_t *out) {
        MsgBuf b;
        MsgBin p = {};

        msgbuf_init(&b);
        if (out) {
                (void) json_to_msgpack(out, &b.pk);
                p = (MsgBin){ b.sb.data, b.sb.size };
        }
        if (msgbuf_error(&b) < 0)
                log_error("Failed to record the result of activity %s: out of memory",
                          a->activity_id);
        else if (p.size > msg_payload_limit())
                attempt_fail(a, "OutputTooLarge", false,
                             "the result is larger than the payload limit (durabled "
                             "--max-payload-size)",
                             "exit_status", 0, NULL);
        else {
                log_attempt(LOG_INFO, a, "Activity %s (%s) attempt %" PRIu32 " completed",
                            a->activity_id, a->unit->name, a->attempt);
                attempt_record(a, OUTCOME_COMPLETE, &p, NULL);
        }
        msgbuf_done(&b);
}

/* Decides what the exit means (durabled.activity(5), OUTCOMES) and records it. */
static void attempt_judge(Attempt *a, const siginfo_t *si) {
        json_t *out = NULL, *details = NULL;
        json_error_t jerr;
        const char *umsg = NULL, *utype = "";
        bool exited = si->si_code == CLD_EXITED, nr = false, is_error;
        int status = si->si_status;
        char msg[1024];

        if (a->out_overflow) {
                attempt_fail(a, "OutputTooLarge", false,
                             "stdout is larger than the payload limit (durabled "
                             "--max-payload-size)",
                             exited ? "exit_status" : "signal", status, NULL);
                return;
        }
        if (a->out_size > 0) {
                out = json_loadb(a->out, a->out_size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
                if (!out) {
                        snprintf(msg, sizeof(msg),
                                 "stdout is not valid JSON: %s (line %d, column %d)", jerr.text,
                                 jerr.line, jerr.column);
                        attempt_fail(a, "InvalidOutput", false, msg,
                                     exited ? "exit_status" : "signal", status, NULL);
                        return;
                }
        }
        if (a->state == ATTEMPT_STOPPING && !(exited && status == 0)) {
                attempt_record(a, OUTCOME_CANCEL, NULL, NULL);
                json_decref(out);
                return;
        }
        if (exited && status == 0) {
                attempt_complete(a, out);
                json_decref(out);
                return;
        }
        is_error = user_error(out, &umsg, &utype, &nr, &details);
        if (exited)
                snprintf(msg, sizeof(msg), "%s%s%s exited with status %d", umsg ? umsg : "",
                         umsg ? ": " : "", a->unit->exec_argv[0], status);
        else
                snprintf(msg, sizeof(msg), "%s%s%s killed by signal %s", umsg ? umsg : "",
                         umsg ? ": " : "", a->unit->exec_argv[0], sigabbrev_np(status) ?: "?");
        nr = nr || (exited && exit_listed(a->unit, status));
        attempt_fail(a,
                     is_error && *utype ? utype
                     : exited           ? "ProcessExited"
                                        : "ProcessKilled",
                     nr, msg, exited ? "exit_status" : "signal", status, details);
        json_decref(out);
}

/* ---- attempts: io ---- */

static void err_flush_line(Attempt *a) {
        if (a->err_line_len == 0)
                return;
        a->err_line[a->err_line_len] = 0;
        log_activity_line(LOG_INFO, a->workflow_id, a->run_id, a->activity_id, a->attempt,
                          a->err_line);
        a->err_line_len = 0;
}

static void err_append(Attempt *a, const char *p, size_t n) {
        /* The tail: the last 64 KiB (@n is at most one read, smaller than that). */
        assert(n < STDERR_TAIL_MAX);
        if (a->err_len + n > STDERR_TAIL_MAX) {
                size_t drop = a->err_len + n - STDERR_TAIL_MAX;
                memmove(a->err_tail, a->err_tail + drop, a->err_len - drop);
                a->err_len -= drop;
        }
        memcpy(a->err_tail + a->err_len, p, n);
        a->err_len += n;
        for (size_t i = 0; i < n; i++) {
                if (p[i] == '\n' || a->err_line_len == STDERR_LINE_MAX - 1) {
                        err_flush_line(a);
                        if (p[i] == '\n')
                                continue;
                }
                a->err_line[a->err_line_len++] = p[i];
        }
}

/* Reads what @fd holds now, at most 1 MiB per call so that a process (or a grandchild after its
 * parent exited) writing without end cannot hold the loop; 0 at end of file, 1 when more may
 * come. */
static int drain(Attempt *a, int fd, bool is_out) {
        char buf[16384];

        for (unsigned i = 0; i < 64; i++) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR ? 1 : 0;
                if (n == 0)
                        return 0;
                if (!is_out) {
                        err_append(a, buf, (size_t) n);
                        continue;
                }
                if (a->out_overflow || a->out_size + (size_t) n > msg_payload_limit()) {
                        a->out_overflow = true;
                        continue;
                }
                char *nb = realloc(a->out, a->out_size + (size_t) n);
                if (!nb) {
                        a->out_overflow = true;
                        continue;
                }
                a->out = nb;
                memcpy(a->out + a->out_size, buf, (size_t) n);
                a->out_size += (size_t) n;
        }
        return 1;
}

static int attempt_on_output(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Attempt *a = userdata;
        bool is_out = src == a->out_source;

        if (drain(a, fd, is_out) == 0) {
                (void) sd_event_source_set_enabled(src, SD_EVENT_OFF);
                if (!is_out)
                        err_flush_line(a);
        }
        return 0;
}

static int attempt_on_notify(sd_event_source *src, int fd, uint32_t revents, void *userdata);

static int attempt_on_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Attempt *a = userdata;
        Manager *m = a->sup->m;

        /* Everything the process wrote is in the pipes now, and its last heartbeats are in the
         * notify socket; a grandchild's later writes are not its output. */
        (void) attempt_on_notify(a->notify_source, a->notify_fd, EPOLLIN, a);
        (void) drain(a, a->out_fd, true);
        (void) drain(a, a->err_fd, false);
        err_flush_line(a);
        if (a->state == ATTEMPT_RUNNING || a->state == ATTEMPT_STOPPING)
                attempt_judge(a, si);
        else
                log_attempt(LOG_INFO, a,
                            "Activity %s attempt %" PRIu32 " was stopped (it no longer runs)",
                            a->activity_id, a->attempt);
        attempt_reap_cgroup(a);   /* may free @a */
        supervisor_mark_dirty(m); /* a slot is free */
        manager_kick(m);
        return 0;
}

/* sd_notify datagrams. Anything garbled, empty or oversized is noise, never a reason to stop
 * listening (systemd's CVE-2016-7796). The sender must be in the attempt's cgroup; one that
 * exited before we could look (systemd-notify does) must have the attempt's uid. */
static bool sender_allowed(Attempt *a, const struct ucred *c) {
        char path[64], buf[4096];
        int fd;
        ssize_t n;
        const char *rel;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) c->pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return c->uid == a->uid;
        n = read(fd, buf, sizeof(buf) - 1);
        safe_close(fd);
        if (n <= 0)
                return c->uid == a->uid;
        buf[n] = 0;
        rel = strstr(a->cgroup, "/activities/");
        return rel && strstr(buf, rel) != NULL;
}

static void notify_handle(Attempt *a, char *msg) {
        Manager *m = a->sup->m;
        char token[128];
        const char *hb = NULL;
        MsgBuf b;
        MsgBin t, details = {};
        ApiError e = {};
        bool cancel, any = false;
        int r;

        for (char *line = strtok(msg, "\n"); line; line = strtok(NULL, "\n")) {
                if (strncmp(line, "STATUS=", 7) == 0) {
                        char *s = strdup(line + 7);
                        if (s) {
                                free(a->status);
                                a->status = s;
                        }
                        any = true;
                } else if (strncmp(line, "HEARTBEAT=", 10) == 0) {
                        hb = line + 10;
                        any = true;
                }
        }
        if (!any)
                return;
        msgbuf_init(&b);
        if (hb) {
                /* Details that parse as JSON are that value, others a string. */
                json_t *j = json_loads(hb, JSON_DECODE_ANY, NULL);
                if (j)
                        (void) json_to_msgpack(j, &b.pk);
                else
                        (void) msg_pack_str(&b.pk, hb);
                json_decref(j);
                details = (MsgBin){ b.sb.data, b.sb.size };
        }
        snprintf(token, sizeof(token), "A/%s/%" PRIu64 "/%" PRIu32, a->run_id, a->scheduled_id,
                 a->attempt);
        t = (MsgBin){ token, strlen(token) };
        r = msgbuf_error(&b);
        if (r >= 0)
                r = manager_begin(m);
        if (r >= 0)
                r = store_savepoint(m->store);
        if (r >= 0) {
                m->actor_uid = m->daemon_uid;
                r = history_heartbeat_activity(m, &t, &details, &cancel, &e);
                if (r < 0)
                        store_rollback_to(m->store);
                else
                        (void) store_release(m->store);
        }
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Failed to record a heartbeat of activity %s: %m",
                                  a->activity_id);
        msgbuf_done(&b);
        manager_kick(m);
}

static int attempt_on_notify(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Attempt *a = userdata;

        for (int i = 0; i < 16; i++) {
                char buf[NOTIFY_DATAGRAM_MAX + 1];
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(struct ucred))];
                } control = {};
                struct iovec iov = { buf, sizeof(buf) - 1 };
                struct msghdr mh = { .msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = &control,
                                     .msg_controllen = sizeof(control) };
                struct cmsghdr *c;
                const struct ucred *cred = NULL;
                ssize_t n;

                n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                if (n < 0)
                        return 0; /* EAGAIN, or an error we cannot act on: keep listening */
                for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                            c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                                cred = (const struct ucred *) CMSG_DATA(c);
                        else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                                for (int *f = (int *) CMSG_DATA(c);
                                     (char *) f < (char *) c + c->cmsg_len; f++)
                                        safe_close(*f);
                if (n == 0 || (size_t) n >= sizeof(buf) || (mh.msg_flags & MSG_TRUNC) || !cred ||
                    memchr(buf, 0, (size_t) n) || !sender_allowed(a, cred))
                        continue;
                buf[n] = 0;
                notify_handle(a, buf);
        }
        return 0;
}

/* ---- attempts: spawning ---- */

static int stop_on_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Attempt *a = userdata;

        log_attempt(LOG_NOTICE, a,
                    "Activity %s attempt %" PRIu32
                    " did not stop within TimeoutStopSec=; killing it",
                    a->activity_id, a->attempt);
        (void) cgroup_kill(a->cgroup);
        return 0;
}

static int read_env_file(const char *spec, char ***env) {
        bool optional = spec[0] == '-';
        FILE *f = fopen(optional ? spec + 1 : spec, "re");
        char *line = NULL;
        size_t size = 0;
        int r = 0;

        if (!f)
                return optional && errno == ENOENT ? 0 : -errno;
        while (r >= 0 && getline(&line, &size, f) > 0) {
                char *s = line + strspn(line, " \t"), *eq;
                size_t n;

                s[strcspn(s, "\r\n")] = 0;
                if (!*s || *s == '#' || *s == ';' || !(eq = strchr(s, '=')))
                        continue;
                n = strlen(eq + 1);
                if (n >= 2 && (eq[1] == '"' || eq[1] == '\'') && eq[n] == eq[1]) {
                        memmove(eq + 1, eq + 2, n - 2);
                        eq[n - 1] = 0;
                }
                size_t k = 0;
                while ((*env)[k])
                        k++;
                char **nv = realloc(*env, (k + 2) * sizeof(char *));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                *env = nv;
                nv[k] = strdup(s);
                nv[k + 1] = NULL;
                if (!nv[k])
                        r = -ENOMEM;
        }
        free(line);
        fclose(f);
        return r;
}

static int env_add(char ***env, const char *fmt, ...) _printf_(2, 3);
static int env_add(char ***env, const char *fmt, ...) {
        va_list ap;
        char *s, **nv;
        size_t k = 0;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        while ((*env)[k])
                k++;
        nv = realloc(*env, (k + 2) * sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[k] = s;
        nv[k + 1] = NULL;
        *env = nv;
        return 0;
}

typedef struct ExecContext {
        char **argv;
        char **envp;
        uid_t uid;
        gid_t gid;
        bool set_ids;
        gid_t groups[64];
        int n_groups;
        const char *wd;
        int fds[3];
} ExecContext;

static void exec_context_done(ExecContext *x) {
        strv_free(x->argv);
        strv_free(x->envp);
        for (int i = 0; i < 3; i++)
                safe_close(x->fds[i]);
}

static int exec_context_build(Attempt *a, const char *notify, ExecContext *x, char **ret_error) {
        const ActivityUnit *u = a->unit;
        struct passwd *pw = NULL;
        int r = 0;

        size_t n = 0;

        while (u->exec_argv[n])
                n++;
        x->argv = calloc(n + 1, sizeof(char *));
        x->envp = calloc(1, sizeof(char *));
        if (!x->argv || !x->envp)
                return -ENOMEM;
        for (size_t i = 0; u->exec_argv[i] && r >= 0; i++)
                r = unit_expand(u->exec_argv[i], a->workflow_id, a->run_id, a->activity_id,
                                a->attempt, u->name, &x->argv[i]);
        if (u->user) {
                pw = getpwnam(u->user);
                if (!pw && strspn(u->user, "0123456789") == strlen(u->user))
                        pw = getpwuid((uid_t) strtoul(u->user, NULL, 10));
                if (!pw)
                        return asprintf(ret_error, "User=%s does not exist", u->user) < 0 ? -ENOMEM
                                                                                          : -ESRCH;
                x->uid = pw->pw_uid;
                x->gid = pw->pw_gid;
                x->set_ids = true;
                x->n_groups = ELEMENTSOF(x->groups);
                if (getgrouplist(pw->pw_name, pw->pw_gid, x->groups, &x->n_groups) < 0)
                        x->n_groups = 0;
        }
        if (u->group) {
                struct group *g = getgrnam(u->group);
                if (!g && strspn(u->group, "0123456789") == strlen(u->group))
                        g = getgrgid((gid_t) strtoul(u->group, NULL, 10));
                if (!g)
                        return asprintf(ret_error, "Group=%s does not exist", u->group) < 0
                                       ? -ENOMEM
                                       : -ESRCH;
                x->gid = g->gr_gid;
                if (!x->set_ids)
                        x->uid = getuid();
                x->set_ids = true;
        }
        a->uid = x->set_ids ? x->uid : getuid();
        x->wd = u->working_directory ? u->working_directory : pw ? pw->pw_dir : "/";
        if (r >= 0)
                r = env_add(&x->envp, "PATH=%s", DEFAULT_PATH);
        if (r >= 0 && getenv("LANG"))
                r = env_add(&x->envp, "LANG=%s", getenv("LANG"));
        if (r >= 0 && pw)
                r = env_add(&x->envp, "HOME=%s", pw->pw_dir) ?:
                    env_add(&x->envp, "USER=%s", pw->pw_name) ?:
                    env_add(&x->envp, "LOGNAME=%s", pw->pw_name);
        for (size_t i = 0; u->environment_files[i] && r >= 0; i++) {
                r = read_env_file(u->environment_files[i], &x->envp);
                if (r < 0 && r != -ENOMEM)
                        return asprintf(ret_error, "EnvironmentFile=%s: %s",
                                        u->environment_files[i], strerror(-r)) < 0
                                       ? -ENOMEM
                                       : r;
        }
        for (size_t i = 0; u->environment[i] && r >= 0; i++)
                r = env_add(&x->envp, "%s", u->environment[i]);
        if (r >= 0)
                r = env_add(&x->envp, "NOTIFY_SOCKET=%s", notify) ?:
                    env_add(&x->envp, "DURABLED_WORKFLOW_ID=%s", a->workflow_id) ?:
                    env_add(&x->envp, "DURABLED_RUN_ID=%s", a->run_id) ?:
                    env_add(&x->envp, "DURABLED_ACTIVITY_ID=%s", a->activity_id) ?:
                    env_add(&x->envp, "DURABLED_ACTIVITY_TYPE=%s", a->activity_type) ?:
                    env_add(&x->envp, "DURABLED_ATTEMPT=%" PRIu32, a->attempt) ?:
                    env_add(&x->envp, "DURABLED_STARTED_TIME=%" PRIu64, a->started_time) ?:
                    env_add(&x->envp, "DURABLED_IDEMPOTENCY_KEY=%s/%s", a->workflow_id,
                            a->activity_id);
        if (r >= 0 && a->heartbeat_json)
                r = env_add(&x->envp, "DURABLED_HEARTBEAT_DETAILS=%s", a->heartbeat_json);
        return r;
}

struct clone_args_v2 {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
                set_tid_size, cgroup;
};
#define CLONE_PIDFD_FLAG 0x00001000ULL
#define EXIT_CGROUP_FAILED 219 /* systemd's EXIT_CGROUP */
#define CLONE_INTO_CGROUP_FLAG 0x200000000ULL

static _noreturn_ void child_exec(const ExecContext *x) {
        sigset_t none;
        char msg[512];
        int n;

        /* Only async-signal-safe calls from here on. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < _NSIG; s++)
                (void) signal(s, SIG_DFL);
        (void) setsid();
        if (dup2(x->fds[0], 0) < 0 || dup2(x->fds[1], 1) < 0 || dup2(x->fds[2], 2) < 0)
                _exit(127);
        (void) syscall(SYS_close_range, 3U, ~0U, 0U);
        if (x->set_ids && (setgroups((size_t) x->n_groups, x->groups) < 0 || setgid(x->gid) < 0 ||
                           setuid(x->uid) < 0)) {
                n = snprintf(msg, sizeof(msg), "durabled: cannot switch to uid %u: %s\n",
                             (unsigned) x->uid, strerror(errno));
                (void) !write(2, msg, (size_t) n);
                _exit(126);
        }
        if (chdir(x->wd) < 0) {
                n = snprintf(msg, sizeof(msg), "durabled: WorkingDirectory=%s: %s\n", x->wd,
                             strerror(errno));
                (void) !write(2, msg, (size_t) n);
                _exit(200);
        }
        execve(x->argv[0], x->argv, x->envp);
        n = snprintf(msg, sizeof(msg), "durabled: cannot execute %s: %s\n", x->argv[0],
                     strerror(errno));
        (void) !write(2, msg, (size_t) n);
        _exit(127);
}

static int notify_open(Attempt *a, char *ret_name, size_t size) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, one = 1;
        socklen_t len;

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* Abstract: nothing to clean up after a crash. */
        len = (socklen_t) snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "durabled/%d/%" PRIu64,
                                   (int) getpid(), ++a->sup->serial);
        snprintf(ret_name, size, "@%s", sa.sun_path + 1);
        if (bind(fd, (struct sockaddr *) &sa, offsetof(struct sockaddr_un, sun_path) + 1 + len) <
                    0 ||
            setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        return fd;
}

static void attempt_warn_limit(const char *msg, void *userdata) {
        Attempt *a = userdata;

        log_attempt(LOG_WARNING, a, "Activity unit %s: %s", a->unit->name, msg);
}

static int pipe_pair(int ret[2]) {
        if (pipe2(ret, O_CLOEXEC) < 0)
                return -errno;
        (void) fcntl(ret[0], F_SETFL, O_NONBLOCK);
        return 0;
}

/* Starts the process directly inside its cgroup (clone3 with CLONE_INTO_CGROUP: no moment where it
 * runs elsewhere, even if the daemon dies right then) and watches its exit, its pipes and its
 * notify socket. The attempt stays PENDING when this fails before the process exists. */
static int attempt_fork(Attempt *a, const ExecContext *x, int cgfd, char **ret_error) {
        Manager *m = a->sup->m;
        _cleanup_close_ int pidfd = -EBADF;
        struct clone_args_v2 ca = {
                .flags = CLONE_PIDFD_FLAG | CLONE_INTO_CGROUP_FLAG,
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t) cgfd,
        };
        long pid;
        int r;

#if DURABLED_FAULT_INJECTION
        /* Tests: the fallback below, as on a kernel without clone3. */
        if (getenv("DURABLED_NO_CLONE3")) {
                pid = -1;
                errno = ENOSYS;
        } else
#endif
                pid = syscall(SYS_clone3, &ca, sizeof(ca));
        if (pid < 0 && (errno == ENOSYS || errno == EPERM)) {
                /* No clone3 (old kernel, a seccomp filter): fork, and the child moves itself into
                 * the cgroup before anything else. */
                pid = fork();
                if (pid == 0) {
                        int fd = openat(cgfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
                        if (fd < 0 || write(fd, "0", 1) != 1)
                                _exit(EXIT_CGROUP_FAILED);
                        close(fd);
                        child_exec(x);
                }
                if (pid > 0 && (pidfd = (int) syscall(SYS_pidfd_open, (pid_t) pid, 0)) < 0) {
                        (void) kill((pid_t) pid, SIGKILL);
                        (void) waitpid((pid_t) pid, NULL, 0);
                        pid = -1;
                }
        }
        if (pid < 0)
                return asprintf(ret_error, "cannot start the process in its cgroup: %s",
                                strerror(errno)) < 0
                               ? -ENOMEM
                               : -errno;
        if (pid == 0)
                child_exec(x);
        a->pid = (pid_t) pid;
        r = sd_event_add_child_pidfd(m->event, &a->child_source, pidfd, WEXITED, attempt_on_exit,
                                     a);
        if (r < 0) {
                /* Nobody would reap it: kill it and reap it now (it dies at once). */
                (void) cgroup_kill(a->cgroup);
                (void) waitpid(a->pid, NULL, 0);
                return r;
        }
        (void) sd_event_source_set_child_pidfd_own(a->child_source, true);
        TAKE_FD(pidfd);
        attempt_set_state(a, ATTEMPT_RUNNING);
        r = sd_event_add_io(m->event, &a->out_source, a->out_fd, EPOLLIN, attempt_on_output, a);
        if (r >= 0)
                r = sd_event_add_io(m->event, &a->err_source, a->err_fd, EPOLLIN, attempt_on_output,
                                    a);
        if (r >= 0)
                r = sd_event_add_io(m->event, &a->notify_source, a->notify_fd, EPOLLIN,
                                    attempt_on_notify, a);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch activity %s: %m; stopping it",
                                  a->activity_id);
                (void) cgroup_kill(a->cgroup); /* its exit is still reaped and recorded */
                return 0;
        }
        log_attempt(LOG_INFO, a, "Activity %s (%s) attempt %" PRIu32 " runs as pid %d in %s",
                    a->activity_id, a->unit->name, a->attempt, a->pid, a->cgroup);
        return 0;
}

/* Prepares and forks the attempt's process: its cgroup with the unit's limits, the notify
 * socket, the command line and environment, stdin, stdout and stderr. On failure @ret_error may
 * say why. */
static int attempt_spawn(Attempt *a, char **ret_error) {
        Supervisor *s = a->sup;
        _cleanup_(exec_context_done) ExecContext x = { .fds = { -EBADF, -EBADF, -EBADF } };
        _cleanup_close_ int cgfd = -EBADF;
        char notify[128], name[128];
        int out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF };
        CgroupLimits lim = { a->unit->memory_max, a->unit->tasks_max, a->unit->cpu_quota_pct };
        int r, memfd;

        if (!s->cgroups)
                return asprintf(ret_error, "process activities cannot run: %s",
                                s->cgroup_error ? s->cgroup_error : "no cgroup") < 0
                               ? -ENOMEM
                               : -EOPNOTSUPP;
        snprintf(name, sizeof(name), "%s_%" PRIu64 "_%" PRIu32, a->run_id, a->scheduled_id,
                 a->attempt);
        r = cgroup_attempt_create(s->cgroups, name, &a->cgroup, &cgfd);
        if (r < 0)
                return asprintf(ret_error, "cannot create the attempt's cgroup: %s", strerror(-r)) <
                                       0
                               ? -ENOMEM
                               : r;
        r = cgroup_write_limits(a->cgroup, &lim, attempt_warn_limit, a);
        if (r < 0)
                return asprintf(ret_error, "cannot write the unit's limits: %s", strerror(-r)) < 0
                               ? -ENOMEM
                               : r;
        a->notify_fd = notify_open(a, notify, sizeof(notify));
        if (a->notify_fd < 0)
                return a->notify_fd;
        r = exec_context_build(a, notify, &x, ret_error);
        if (r < 0)
                return r;
        memfd = memfd_create("durabled-input", MFD_CLOEXEC);
        if (memfd < 0)
                return -errno;
        x.fds[0] = memfd;
        if (write(memfd, a->input_json, strlen(a->input_json)) != (ssize_t) strlen(a->input_json) ||
            lseek(memfd, 0, SEEK_SET) < 0)
                return -errno;
        r = pipe_pair(out);
        if (r < 0)
                return r;
        a->out_fd = out[0];
        x.fds[1] = out[1];
        r = pipe_pair(err);
        if (r < 0)
                return r;
        a->err_fd = err[0];
        x.fds[2] = err[1];

        return attempt_fork(a, &x, cgfd, ret_error);
}

/* DESIGN.md §10: an activity unit runs its program as the daemon's user unless it names a User=,
 * so only the runs of administrators (root, the daemon's user, the group "durabled") may start
 * process activities; a run of another user fails them for good. */
static bool uid_may_run_units(Manager *m, uid_t uid) {
        gid_t groups[256];
        int n = ELEMENTSOF(groups);
        struct passwd *pw;

        if (uid == 0 || uid == m->daemon_uid)
                return true;
        if (m->admin_gid == (gid_t) -1 || !(pw = getpwuid(uid)))
                return false;
        if (pw->pw_gid == m->admin_gid)
                return true;
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
                return false; /* any error while checking means deny */
        for (int i = 0; i < n; i++)
                if (groups[i] == m->admin_gid)
                        return true;
        return false;
}

/* ---- dispatch ---- */

static int input_to_json(const Blob *in, char **ret) {
        msgpack_unpacked u;
        size_t off = 0;
        json_t *j = NULL;
        char *s;

        msgpack_unpacked_init(&u);
        if (in->ptr && in->size &&
            msgpack_unpack_next(&u, in->ptr, in->size, &off) == MSGPACK_UNPACK_SUCCESS)
                j = json_from_msgpack(&u.data);
        else
                j = json_null();
        msgpack_unpacked_destroy(&u);
        if (!j)
                return -ENOMEM;
        s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Starts one task of @u in the store; 1 when one started, 0 when none waits. */
static int dispatch_one(Supervisor *s, ActivityUnit *u) {
        Manager *m = s->m;
        _cleanup_(activity_row_done) ActivityRow act = {};
        _cleanup_(run_row_done) RunRow run = {};
        char run_id[37], identity[300];
        TaskCursor seq = {};
        uint64_t ref;
        Attempt *a;
        int r;

        for (;;) {
                r = store_task_any(m->store, TASK_PROCESS, u->name);
                if (r <= 0)
                        return r;
                r = manager_begin(m);
                if (r >= 0)
                        r = store_savepoint(m->store);
                if (r < 0)
                        return r;
                r = store_task_pop(m->store, TASK_PROCESS, u->name, &seq, run_id, &ref);
                if (r >= 0) {
                        snprintf(identity, sizeof(identity), SUPERVISOR_IDENTITY_PREFIX "%s",
                                 u->name);
                        m->actor_uid = m->daemon_uid;
                        r = history_start_activity_attempt(m, run_id, ref, identity, &run, &act);
                }
                if (r == -ESTALE) { /* a stale task row is simply dropped */
                        (void) store_release(m->store);
                        continue;
                }
                if (r < 0) {
                        store_rollback_to(m->store);
                        return r == -ENOENT ? 0 : r;
                }
                (void) store_release(m->store);
                break;
        }
        a = attempt_new(s);
        if (!a)
                return -ENOMEM;
        memcpy(a->run_id, run_id, sizeof(run_id));
        a->scheduled_id = ref;
        a->attempt = act.attempt;
        a->started_time = act.started_time;
        a->run_uid = run.uid;
        a->workflow_id = strdup(run.workflow_id);
        a->workflow_type = strdup(run.workflow_type);
        a->activity_id = strdup(act.activity_id);
        a->activity_type = strdup(act.activity_type);
        a->unit = unit_copy(u);
        if (!a->workflow_id || !a->workflow_type || !a->activity_id || !a->activity_type ||
            !a->unit || input_to_json(&act.input, &a->input_json) < 0 ||
            (act.heartbeat_details.ptr &&
             input_to_json(&act.heartbeat_details, &a->heartbeat_json) < 0)) {
                attempt_free(a);
                return -ENOMEM;
        }
        return 1;
}

static int rate_on_token(sd_event_source *es, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        s->dirty = true;
        manager_kick(s->m);
        return 0;
}

/* RateLimit= (ratelimit.h): 1 when @u may start one more attempt now, else 0 with the
 * supervisor's timer armed for the unit's next token (the earliest of all units). */
static int unit_rate_admits(Supervisor *s, ActivityUnit *u) {
        uint64_t next, offset = clock_offset(), armed = UINT64_MAX;
        int r;

        next = rate_bucket_next(&u->bucket, u->rate_limit, u->rate_period_usec,
                                u->rate_burst ? u->rate_burst : 1, clock_now());
        if (!next)
                return 1;
        next = next > offset ? next - offset : 1; /* clock.h: the clock may run ahead */
        if (s->rate_timer && sd_event_source_get_enabled(s->rate_timer, NULL) > 0)
                (void) sd_event_source_get_time(s->rate_timer, &armed);
        if (!s->rate_timer) {
                r = sd_event_add_time(s->m->event, &s->rate_timer, CLOCK_REALTIME, next, 0,
                                      rate_on_token, s);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm the RateLimit= timer of %s: %m",
                                          u->name);
        } else if (next < armed || sd_event_source_get_enabled(s->rate_timer, NULL) <= 0) {
                (void) sd_event_source_set_time(s->rate_timer, next);
                (void) sd_event_source_set_enabled(s->rate_timer, SD_EVENT_ONESHOT);
        }
        return 0;
}

int supervisor_dispatch(Manager *m) {
        Supervisor *s = sup_of(m);
        ActivityUnit *u;
        int r;

        if (!s || !s->dirty)
                return 0;
        s->dirty = false;
        LIST_FOREACH(units, u, s->units->units) {
                unsigned running = unit_running(s, u->name);
                while ((!u->max_concurrent || running < u->max_concurrent) &&
                       s->n_attempts < m->cfg.max_activity_processes) {
                        if (u->rate_limit && store_task_any(m->store, TASK_PROCESS, u->name) > 0 &&
                            !unit_rate_admits(s, u))
                                break;
                        r = dispatch_one(s, u);
                        if (r < 0)
                                return log_error_errno(r,
                                                       "Failed to start activities of unit "
                                                       "%s: %m",
                                                       u->name);
                        if (r == 0)
                                break;
                        /* After the start's own clock reading: exact for the recorded times. */
                        rate_bucket_take(&u->bucket, u->rate_limit, u->rate_period_usec,
                                         clock_now());
                        running++;
                }
        }
        return 0;
}

/* The processes of an attempt of a paused run, or of a paused activity, are frozen, and thawed
 * when it is unpaused (history-pause.c); after the commit, like every other effect on the
 * processes. @act_paused: the activity's own flag. */
static void attempt_follow_pause(Attempt *a, bool act_paused) {
        int paused, r;

        paused = act_paused ? 1 : store_run_paused(a->sup->m->store, a->run_id);
        if (paused < 0 || (paused > 0) == a->frozen)
                return;
        r = cgroup_freeze(a->cgroup, paused > 0);
        if (r < 0) {
                log_wf(LOG_WARNING, a->workflow_id, a->run_id,
                       "Failed to %s the processes of activity %s: %s",
                       paused ? "freeze" : "thaw", a->activity_id, strerror(-r));
                return;
        }
        log_wf(LOG_INFO, a->workflow_id, a->run_id, "Activity %s attempt %" PRIu32 " %s",
               a->activity_id, a->attempt, paused ? "frozen: paused" : "thawed");
        a->frozen = paused > 0;
}

/* A running attempt the store no longer runs (timed out, the run closed) is killed; one asked to
 * cancel gets KillSignal, then SIGKILL after TimeoutStopSec. */
static void reconcile(Attempt *a) {
        Manager *m = a->sup->m;
        _cleanup_(activity_row_done) ActivityRow act = {};
        int r;

        r = store_activity_get(m->store, a->run_id, a->scheduled_id, &act);
        if (r < 0 && r != -ENOENT)
                return;
        if (r == -ENOENT || act.state != ACTIVITY_STARTED || act.attempt != a->attempt) {
                log_attempt(LOG_NOTICE, a,
                            "Activity %s attempt %" PRIu32 " no longer runs (timed out or its "
                            "workflow closed); killing its cgroup",
                            a->activity_id, a->attempt);
                attempt_set_state(a, ATTEMPT_ABANDONED);
                (void) cgroup_kill(a->cgroup);
                return;
        }
        if (a->state == ATTEMPT_RUNNING)
                attempt_follow_pause(a, act.paused);
        if (act.cancel_requested && a->state == ATTEMPT_RUNNING) {
                log_attempt(LOG_INFO, a, "Activity %s attempt %" PRIu32 " cancelled: sending %s",
                            a->activity_id, a->attempt, sigabbrev_np(a->unit->kill_signal) ?: "?");
                attempt_set_state(a, ATTEMPT_STOPPING);
                (void) cgroup_signal(a->cgroup, a->unit->kill_signal);
                (void) cgroup_signal(a->cgroup, SIGCONT);
                (void) sd_event_add_time_relative(m->event, &a->stop_timer, CLOCK_MONOTONIC,
                                                  a->unit->timeout_stop_usec, 1000, stop_on_timeout,
                                                  a);
        }
}

void supervisor_after_commit(Manager *m, bool committed) {
        Supervisor *s = sup_of(m);
        Attempt *a, *n;

        if (!s)
                return;
        LIST_FOREACH_SAFE(attempts, a, n, s->attempts) {
                char *error = NULL;
                int r;

                if (a->state == ATTEMPT_RUNNING || a->state == ATTEMPT_STOPPING) {
                        if (committed)
                                reconcile(a);
                        continue;
                }
                if (a->state != ATTEMPT_PENDING)
                        continue;
                if (!committed) { /* the store forgot the start: so do we */
                        attempt_free(a);
                        continue;
                }
                if (!uid_may_run_units(m, a->run_uid)) {
                        log_attempt(
                                LOG_WARNING, a,
                                "Activity %s (%s): refused, the run's user %u does not administer "
                                "durabled",
                                a->activity_id, a->unit->name, (unsigned) a->run_uid);
                        attempt_set_state(a, ATTEMPT_RUNNING);
                        attempt_fail(a, "PermissionDenied", true,
                                     "activity units run only in workflows of durabled's "
                                     "administrators",
                                     "exit_status", -1, NULL);
                        attempt_reap_cgroup(a);
                        continue;
                }
                killpoint("before-spawn");
                r = attempt_spawn(a, &error);
                if (r >= 0) { /* started in a pass that then paused its run */
                        attempt_follow_pause(a, false);
                        continue;
                }
                if (!error && asprintf(&error, "cannot start the process: %s", strerror(-r)) < 0)
                        error = NULL;
                log_attempt(LOG_ERR, a, "Activity %s (%s): %s", a->activity_id, a->unit->name,
                            error ? error : "out of memory");
                attempt_set_state(a, ATTEMPT_RUNNING);
                attempt_fail(a, "ProcessStartFailed", false, error ? error : "out of memory",
                             "exit_status", -1, NULL);
                free(error);
                attempt_reap_cgroup(a);
        }
        if (!committed)
                s->dirty = true;
}

/* ---- start-up ---- */

static int kill_stale(const char *name, void *userdata) {
        Supervisor *s = userdata;
        Attempt *a;

        a = attempt_new(s);
        if (!a || asprintf(&a->cgroup, "%s/%s", s->cgroups->activities, name) < 0)
                return -ENOMEM;
        log_notice("Killing the processes left in %s by an earlier life of the daemon", a->cgroup);
        a->state = ATTEMPT_ABANDONED;
        attempt_reap_cgroup(a);
        return 0;
}

static int fail_stale(const ActivityRow *act, void *userdata) {
        Supervisor *s = userdata;
        Attempt *a = attempt_new(s);
        _cleanup_(run_row_done) RunRow run = {};
        int r;

        if (!a)
                return -ENOMEM;
        memcpy(a->run_id, act->run_id, sizeof(a->run_id));
        a->scheduled_id = act->scheduled_id;
        a->attempt = act->attempt;
        a->activity_id = strdup(act->activity_id);
        a->unit = calloc(1, sizeof(ActivityUnit));
        r = store_run_get(s->m->store, act->run_id, &run);
        a->workflow_id = strdup(r >= 0 ? run.workflow_id : "");
        a->workflow_type = r >= 0 ? strdup(run.workflow_type) : NULL; /* NULL: no journal field */
        if (a->unit)
                a->unit->name = strdup(act->identity + strlen(SUPERVISOR_IDENTITY_PREFIX));
        if (!a->activity_id || !a->workflow_id || !a->unit || !a->unit->name) {
                attempt_free(a);
                return -ENOMEM;
        }
        a->state = ATTEMPT_RUNNING;
        attempt_fail(a, "DaemonRestarted", false,
                     "durabled restarted while the attempt ran; its processes were killed",
                     "exit_status", -1, NULL);
        attempt_free(a);
        return 0;
}

/* The store rebuilds every queued activity's task for the polling workers (store.c,
 * load_tasks()): those whose type a unit declares go back to the supervisor, in their order. */
static int requeue_one(const ActivityRow *a, void *userdata) {
        Manager *m = userdata;
        const char *unit = supervisor_route(m, a->activity_type, a->task_queue);
        int r;

        if (!unit)
                return 0;
        r = store_task_delete(m->store, TASK_ACTIVITY, a->run_id, a->scheduled_id);
        if (r >= 0)
                r = store_task_insert(
                        m->store, TASK_PROCESS, unit, a->run_id, a->scheduled_id,
                        &(TaskPriority){ a->priority, a->fairness_key, a->fairness_weight });
        return r;
}

int supervisor_recover(Manager *m) {
        Supervisor *s = sup_of(m);
        int r;

        if (!s)
                return 0;
        if (s->cgroups) {
                r = cgroup_foreach_attempt(s->cgroups, kill_stale, s);
                if (r < 0)
                        log_warning_errno(r, "Failed to look for stale activity cgroups: %m");
        }
        /* DESIGN.md §3: attempts that ran when the daemon died fail now and retry under their
         * policy, rather than after their whole start-to-close timeout. */
        /* First the queued ones: a stale attempt failed below may be queued again at once, by
         * the supervisor itself. */
        r = store_activities_queued(m->store, requeue_one, m);
        if (r >= 0)
                r = store_activities_started_by(m->store, SUPERVISOR_IDENTITY_PREFIX, fail_stale,
                                                s);
        if (r < 0)
                return log_error_errno(r, "Failed to recover process activities: %m");
        s->dirty = true;
        return 0;
}

Supervisor *supervisor_free(Supervisor *s) {
        if (!s)
                return NULL;
        while (s->attempts) {
                /* A clean stop leaves no process behind; the attempts fail and retry at the next
                 * start (supervisor_recover()). */
                if (s->attempts->cgroup)
                        (void) cgroup_kill(s->attempts->cgroup);
                attempt_free(s->attempts);
        }
        strv_free(s->dirs);
        unit_set_free(s->units);
        cgroup_tree_free(s->cgroups);
        sd_event_source_disable_unref(s->rate_timer);
        free(s->cgroup_error);
        free(s);
        return NULL;
}

/* ---- queries ---- */

int supervisor_pack_types(Manager *m, msgpack_packer *pk) {
        Supervisor *s = sup_of(m);
        ActivityUnit *u;
        UnitError *e;

        if (!s)
                return msgpack_pack_array(pk, 0);
        (void) msgpack_pack_array(pk, s->units->n_units + s->units->n_errors);
        LIST_FOREACH(units, u, s->units->units) {
                (void) msgpack_pack_map(pk, 6);
                (void) msg_pack_kv_str(pk, "name", u->name);
                (void) msg_pack_kv_str(pk, "state", s->cgroups ? "loaded" : "loaded-no-cgroup");
                (void) msg_pack_kv_str(pk, "path", u->path);
                (void) msg_pack_kv_str(pk, "description", u->description ? u->description : "");
                (void) msg_pack_kv_str(pk, "task_queue", u->task_queue ? u->task_queue : "");
                (void) msg_pack_kv_uint(pk, "running", unit_running(s, u->name));
        }
        LIST_FOREACH(errors, e, s->units->errors) {
                (void) msgpack_pack_map(pk, 4);
                (void) msg_pack_kv_str(pk, "name", e->file);
                (void) msg_pack_kv_str(pk, "state", "error");
                (void) msg_pack_kv_str(pk, "path", e->path);
                (void) msg_pack_kv_str(pk, "error", e->message);
        }
        return 0;
}

const char *supervisor_status(Manager *m, const char *run_id, uint64_t scheduled_id) {
        Attempt *a;

        if (!m->supervisor)
                return NULL;
        LIST_FOREACH(attempts, a, m->supervisor->attempts)
                if (a->scheduled_id == scheduled_id && streq(a->run_id, run_id) &&
                    (a->state == ATTEMPT_RUNNING || a->state == ATTEMPT_STOPPING))
                        return a->status;
        return NULL;
}
