/* The schedule operations of the socket API; see api-schedule.h, schedule.h and
 * doc/protocol.md. A schedule belongs to the user who created it: others (but administrators)
 * get not_found for it, as for a workflow they may not see (DESIGN.md §10). */

#include "daemon/api-schedule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/clock.h"
#include "daemon/conn.h"
#include "daemon/schedule.h"

#define SCHEDULES_MAX 10000
#define NOTE_MAX_LEN 1000
#define NEXT_DEFAULT 10
#define BACKFILL_MAX 1000
#define PAUSE_NOTE_DEFAULT "(no reason provided)"

typedef struct ScheduleRequest {
        const char *schedule_id;
        const char *note;
        const char *overlap;
        uint64_t next;
        uint64_t start_time_usec;
        uint64_t end_time_usec;
        bool paused;
} ScheduleRequest;

#define ID_FIELD                                                                      \
        {                                                                             \
                "schedule_id", MSG_STR, offsetof(ScheduleRequest, schedule_id), true, \
                        SCHEDULE_ID_MAX_LEN                                           \
        }

static int parse(const ApiCall *c, const MsgField *fields, ScheduleRequest *ret) {
        int r = msg_parse(c->map, c->zone, fields, ret, c->err->message, sizeof(c->err->message));

        if (r >= 0 && !*ret->schedule_id)
                r = api_error_set(c->err, -EINVAL, "field \"schedule_id\" must not be empty");
        return r;
}

/* Loads a schedule the caller may see; "not found" otherwise. */
static int load_visible(const ApiCall *c, const char *schedule_id, Schedule *ret) {
        int r = schedule_load(c->m, schedule_id, ret);

        if (r >= 0 && !c->conn->admin && ret->row.uid != c->conn->cred.uid) {
                schedule_done(ret);
                r = -ENOENT;
        }
        if (r == -ENOENT)
                return api_error_set(c->err, -ENOENT, "schedule '%s' not found", schedule_id);
        if (r < 0)
                return api_error_set(c->err, r, "schedule '%s' cannot be read: %s", schedule_id,
                                     strerror(-r));
        return 0;
}

static int
overlap_override(const ApiCall *c, const char *text, const Schedule *s, ScheduleOverlap *ret) {
        if (!text) {
                *ret = s->def.overlap;
                return 0;
        }
        *ret = schedule_overlap_from_string(text);
        if (*ret < 0)
                return api_error_set(c->err, -EINVAL, "unknown overlap policy '%s'", text);
        return 0;
}

static int count_one(const ScheduleRow *r, void *userdata) {
        (*(unsigned *) userdata)++;
        return 0;
}

int api_create_schedule(const ApiCall *c) {
        static const MsgField fields[] = {
                ID_FIELD,
                { "paused", MSG_BOOL, offsetof(ScheduleRequest, paused) },
                { "note", MSG_STR, offsetof(ScheduleRequest, note), false, NOTE_MAX_LEN },
                {},
        };
        _cleanup_(schedule_done) Schedule s = {};
        ScheduleRequest q = {};
        ScheduleDef def = {};
        MsgBuf b;
        unsigned n = 0;
        int r;

        r = parse(c, fields, &q);
        if (r < 0)
                return r;
        r = store_schedules_foreach(c->m->store, false, 0, count_one, &n);
        if (r < 0)
                return r;
        if (n >= SCHEDULES_MAX)
                return api_error_set(c->err, -EUSERS, "too many schedules (limit %d)",
                                     SCHEDULES_MAX);
        r = schedule_def_parse(c->map, c->zone, q.schedule_id, &def, c->err);
        if (r < 0)
                return r;
        msgbuf_init(&b);
        r = schedule_def_pack(&def, &b.pk);
        if (r >= 0)
                r = msgbuf_error(&b);
        if (r >= 0) {
                ScheduleRow row = {
                        .schedule_id = (char *) q.schedule_id,
                        .uid = c->conn->cred.uid,
                        .def = { .ptr = b.sb.data, .size = b.sb.size },
                        .paused = q.paused,
                        .note = (char *) q.note,
                        .create_time = clock_now(),
                        .cursor = clock_now(),
                        .wake_system = def.wake_system,
                };
                r = store_schedule_insert(c->m->store, &row);
        }
        msgbuf_done(&b);
        schedule_def_done(&def);
        if (r == -EEXIST)
                return api_error_set(c->err, r, "schedule '%s' already exists", q.schedule_id);
        if (r >= 0)
                r = schedule_load(c->m, q.schedule_id, &s);
        if (r >= 0)
                r = schedule_arm(c->m, &s);
        if (r < 0)
                return r;
        conn_reply_empty(c->conn, c->id);
        return 0;
}

/* ---- describe, list ---- */

static int count_action(const ScheduleAction *a, void *userdata) {
        (*(size_t *) userdata)++;
        return 0;
}

static int pack_action(const ScheduleAction *a, void *userdata) {
        static const char *const kinds[] = { "scheduled", "trigger", "backfill" };
        msgpack_packer *pk = userdata;

        (void) msgpack_pack_map(pk, 6);
        (void) msg_pack_kv_str(pk, "kind", a->kind < ELEMENTSOF(kinds) ? kinds[a->kind] : "?");
        (void) msg_pack_kv_uint(pk, "scheduled_time_usec", a->scheduled_time);
        (void) msg_pack_kv_uint(pk, "actual_time_usec", a->actual_time);
        (void) msg_pack_kv_str(pk, "workflow_id", a->workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", a->run_id);
        (void) msg_pack_kv_str(pk, "status",
                               a->status > 0 ? workflow_status_to_string(a->status) : "Deleted");
        return 0;
}

static int pack_running(const ScheduleAction *a, void *userdata) {
        msgpack_packer *pk = userdata;

        (void) msgpack_pack_map(pk, 2);
        (void) msg_pack_kv_str(pk, "workflow_id", a->workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", a->run_id);
        return 0;
}

/* The next @n nominal times after the cursor (and after now). */
static size_t next_times(const Schedule *s, uint64_t n, uint64_t *out) {
        uint64_t t = MAX(s->row.cursor, clock_now());
        size_t k = 0;

        while (k < n && schedule_def_next(&s->def, t, &t) >= 0)
                out[k++] = t;
        return k;
}

static int pack_schedule(const ApiCall *c, Schedule *s, uint64_t n_next, msgpack_packer *pk) {
        uint64_t next[SCHEDULE_NEXT_MAX], due = 0, nominal;
        size_t n_actions = 0, n_running = 0, k;
        int buffered, r;

        r = store_schedule_actions_foreach(c->m->store, s->row.schedule_id, false, count_action,
                                           &n_actions);
        if (r >= 0)
                r = store_schedule_actions_foreach(c->m->store, s->row.schedule_id, true,
                                                   count_action, &n_running);
        if (r < 0)
                return r;
        buffered = store_schedule_buffer_count(c->m->store, s->row.schedule_id);
        if (buffered < 0)
                return buffered;
        (void) store_schedule_deadline_get(c->m->store, s->row.schedule_id, &due, &nominal);
        k = next_times(s, n_next, next);

        (void) msgpack_pack_map(pk, 17);
        (void) msg_pack_kv_str(pk, "schedule_id", s->row.schedule_id);
        (void) msg_pack_kv_str(pk, "source", s->row.source ? s->row.source : "");
        (void) msg_pack_kv_uint(pk, "uid", s->row.uid);
        (void) msg_pack_kv_bool(pk, "paused", s->row.paused);
        (void) msg_pack_kv_str(pk, "note", s->row.note ? s->row.note : "");
        (void) msg_pack_kv_uint(pk, "create_time_usec", s->row.create_time);
        (void) msg_pack_str(pk, "definition");
        (void) msg_pack_raw(pk, s->row.def.ptr, s->row.def.size);
        (void) msg_pack_str(pk, "calendars_normalized");
        (void) msgpack_pack_array(pk, s->def.n_calendars);
        for (size_t i = 0; i < s->def.n_calendars; i++) {
                _cleanup_free_ char *norm = NULL;

                r = calendar_spec_to_string(s->def.calendars[i], &norm);
                if (r < 0)
                        return r;
                (void) msg_pack_str(pk, norm);
        }
        (void) msg_pack_kv_uint(pk, "action_count", s->row.action_count);
        (void) msg_pack_kv_uint(pk, "overlap_skipped", s->row.overlap_skipped);
        (void) msg_pack_kv_uint(pk, "buffer_dropped", s->row.buffer_dropped);
        (void) msg_pack_kv_uint(pk, "missed_catchup", s->row.missed_catchup);
        (void) msg_pack_kv_uint(pk, "buffered", (uint64_t) buffered);
        (void) msg_pack_kv_uint(pk, "next_action_time_usec", due);
        (void) msg_pack_str(pk, "running");
        (void) msgpack_pack_array(pk, n_running);
        r = store_schedule_actions_foreach(c->m->store, s->row.schedule_id, true, pack_running, pk);
        if (r < 0)
                return r;
        (void) msg_pack_str(pk, "recent_actions");
        (void) msgpack_pack_array(pk, n_actions);
        r = store_schedule_actions_foreach(c->m->store, s->row.schedule_id, false, pack_action, pk);
        if (r < 0)
                return r;
        (void) msg_pack_str(pk, "next_times_usec");
        (void) msgpack_pack_array(pk, k);
        for (size_t i = 0; i < k; i++)
                (void) msgpack_pack_uint64(pk, next[i]);
        return 0;
}

int api_describe_schedule(const ApiCall *c) {
        static const MsgField fields[] = {
                ID_FIELD,
                { "next", MSG_UINT, offsetof(ScheduleRequest, next) },
                {},
        };
        _cleanup_(schedule_done) Schedule s = {};
        ScheduleRequest q = { .next = NEXT_DEFAULT };
        msgpack_packer *pk;
        size_t start;
        int r;

        r = parse(c, fields, &q);
        if (r < 0)
                return r;
        if (q.next > SCHEDULE_NEXT_MAX)
                return api_error_set(c->err, -EINVAL, "field \"next\" must be at most %d",
                                     SCHEDULE_NEXT_MAX);
        r = load_visible(c, q.schedule_id, &s);
        if (r < 0)
                return r;
        pk = conn_reply_begin(c->conn, c->id, 1, &start);
        (void) msg_pack_str(pk, "schedule");
        r = pack_schedule(c, &s, q.next, pk);
        if (r < 0)
                return r;
        conn_reply_end(c->conn, c->id, start);
        return 0;
}

typedef struct ListState {
        const ApiCall *c;
        msgpack_packer *pk;
        bool pack; /* false: count only */
        unsigned n;
} ListState;

static int list_one(const ScheduleRow *row, void *userdata) {
        _cleanup_(schedule_done) Schedule s = {};
        ListState *st = userdata;
        uint64_t due = 0, nominal;
        int r;

        st->n++;
        if (!st->pack)
                return 0;
        r = schedule_load(st->c->m, row->schedule_id, &s);
        if (r < 0)
                return r;
        (void) store_schedule_deadline_get(st->c->m->store, row->schedule_id, &due, &nominal);
        (void) msgpack_pack_map(st->pk, 7);
        (void) msg_pack_kv_str(st->pk, "schedule_id", row->schedule_id);
        (void) msg_pack_kv_str(st->pk, "workflow_type", s.def.workflow_type);
        (void) msg_pack_kv_str(st->pk, "task_queue", s.def.task_queue);
        (void) msg_pack_kv_bool(st->pk, "paused", row->paused);
        (void) msg_pack_kv_str(st->pk, "note", row->note ? row->note : "");
        (void) msg_pack_kv_uint(st->pk, "action_count", row->action_count);
        (void) msg_pack_kv_uint(st->pk, "next_action_time_usec", due);
        return 0;
}

int api_list_schedules(const ApiCall *c) {
        ListState st = { .c = c };
        bool only = !c->conn->admin;
        size_t start;
        int r;

        r = store_schedules_foreach(c->m->store, only, c->conn->cred.uid, list_one, &st);
        if (r < 0)
                return r;
        st.pk = conn_reply_begin(c->conn, c->id, 1, &start);
        (void) msg_pack_str(st.pk, "schedules");
        (void) msgpack_pack_array(st.pk, st.n);
        st.pack = true;
        st.n = 0;
        r = store_schedules_foreach(c->m->store, only, c->conn->cred.uid, list_one, &st);
        if (r < 0)
                return r;
        conn_reply_end(c->conn, c->id, start);
        return 0;
}

/* ---- pause, unpause, trigger, backfill, delete ---- */

static const MsgField note_fields[] = {
        ID_FIELD,
        { "note", MSG_STR, offsetof(ScheduleRequest, note), false, NOTE_MAX_LEN },
        {},
};

static int set_paused(const ApiCall *c, bool paused) {
        _cleanup_(schedule_done) Schedule s = {};
        ScheduleRequest q = {};
        char *note;
        int r;

        r = parse(c, note_fields, &q);
        if (r >= 0)
                r = load_visible(c, q.schedule_id, &s);
        if (r < 0)
                return r;
        note = strdup(q.note ? q.note : paused ? PAUSE_NOTE_DEFAULT : "");
        if (!note)
                return -ENOMEM;
        free(s.row.note);
        s.row.note = note;
        /* Unpausing does not catch up the times that passed while paused. */
        if (s.row.paused && !paused)
                s.row.cursor = MAX(s.row.cursor, clock_now());
        s.row.paused = paused;
        r = store_schedule_update(c->m->store, &s.row);
        if (r >= 0)
                r = schedule_arm(c->m, &s);
        if (r < 0)
                return r;
        conn_reply_empty(c->conn, c->id);
        return 0;
}

int api_pause_schedule(const ApiCall *c) {
        return set_paused(c, true);
}

int api_unpause_schedule(const ApiCall *c) {
        return set_paused(c, false);
}

static const MsgField overlap_fields[] = {
        ID_FIELD,
        { "overlap", MSG_STR, offsetof(ScheduleRequest, overlap), false, 64 },
        { "start_time_usec", MSG_UINT, offsetof(ScheduleRequest, start_time_usec) },
        { "end_time_usec", MSG_UINT, offsetof(ScheduleRequest, end_time_usec) },
        {},
};

int api_trigger_schedule(const ApiCall *c) {
        _cleanup_(schedule_done) Schedule s = {};
        ScheduleRequest q = {};
        ScheduleOverlap overlap;
        int r;

        r = parse(c, overlap_fields, &q);
        if (r >= 0)
                r = load_visible(c, q.schedule_id, &s);
        if (r >= 0)
                r = overlap_override(c, q.overlap, &s, &overlap);
        if (r >= 0)
                /* Whole seconds: the started id reads "<prefix>-2026-01-01T09:00:00Z". */
                r = schedule_act(c->m, &s, clock_now() / 1000000 * 1000000, SCHEDULE_ACTION_TRIGGER,
                                 overlap);
        if (r >= 0)
                r = store_schedule_update(c->m->store, &s.row);
        if (r < 0)
                return r;
        conn_reply_empty(c->conn, c->id);
        return 0;
}

/* Temporal's rule: the times in (start, end] act, in order, under the overlap policy. */
int api_backfill_schedule(const ApiCall *c) {
        _cleanup_(schedule_done) Schedule s = {};
        ScheduleRequest q = {};
        ScheduleOverlap overlap;
        uint64_t t, times[BACKFILL_MAX];
        msgpack_packer *pk;
        size_t n = 0, start;
        int r;

        r = parse(c, overlap_fields, &q);
        if (r >= 0 && (q.end_time_usec == 0 || q.end_time_usec <= q.start_time_usec))
                r = api_error_set(c->err, -EINVAL,
                                  "end_time_usec must be given and after start_time_usec");
        if (r >= 0)
                r = load_visible(c, q.schedule_id, &s);
        if (r >= 0)
                r = overlap_override(c, q.overlap, &s, &overlap);
        if (r < 0)
                return r;
        for (t = q.start_time_usec;
             schedule_def_next(&s.def, t, &t) >= 0 && t <= q.end_time_usec;) {
                if (n == BACKFILL_MAX)
                        return api_error_set(c->err, -EINVAL,
                                             "the backfill covers more than %d times: split it",
                                             BACKFILL_MAX);
                times[n++] = t;
        }
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = schedule_act(c->m, &s, times[i], SCHEDULE_ACTION_BACKFILL, overlap);
        if (r >= 0)
                r = store_schedule_update(c->m->store, &s.row);
        if (r < 0)
                return r;
        pk = conn_reply_begin(c->conn, c->id, 1, &start);
        (void) msg_pack_kv_uint(pk, "times", n);
        conn_reply_end(c->conn, c->id, start);
        return 0;
}

int api_delete_schedule(const ApiCall *c) {
        static const MsgField fields[] = { ID_FIELD, {} };
        _cleanup_(schedule_done) Schedule s = {};
        ScheduleRequest q = {};
        int r;

        r = parse(c, fields, &q);
        if (r >= 0)
                r = load_visible(c, q.schedule_id, &s);
        if (r >= 0)
                r = store_schedule_delete(c->m->store, q.schedule_id);
        if (r < 0)
                return r;
        manager_deadlines_changed(c->m);
        conn_reply_empty(c->conn, c->id);
        return 0;
}
