/* Rendering of durabled's answers; see render.h. */

#include "cli/render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"
#include "proto/json.h"
#include "proto/msg.h"

DEFINE_CLEANUP(msgpack_zone, msgpack_zone_free);

/* Payloads and nested values in one-line details are cut here, to keep a history row short. */
#define DETAIL_VALUE_MAX 60

int workflow_info_parse(Answer *a, const msgpack_object *map, WorkflowInfo *ret) {
        static const MsgField fields[] = {
                { "workflow_id", MSG_STR, offsetof(WorkflowInfo, workflow_id), true },
                { "run_id", MSG_STR, offsetof(WorkflowInfo, run_id), true },
                { "workflow_type", MSG_STR, offsetof(WorkflowInfo, workflow_type) },
                { "task_queue", MSG_STR, offsetof(WorkflowInfo, task_queue) },
                { "status", MSG_STR, offsetof(WorkflowInfo, status), true },
                { "start_time", MSG_UINT, offsetof(WorkflowInfo, start_time) },
                { "close_time", MSG_UINT, offsetof(WorkflowInfo, close_time) },
                { "history_length", MSG_UINT, offsetof(WorkflowInfo, history_length) },
                { "result", MSG_ANY, offsetof(WorkflowInfo, result) },
                { "failure", MSG_MAP, offsetof(WorkflowInfo, failure) },
                {},
        };
        WorkflowInfo w = {};
        int r;

        r = answer_parse(a, map, fields, &w);
        if (r < 0)
                return r;
        *ret = w;
        return 0;
}

const msgpack_object *answer_workflow(const Answer *a, const char *op) {
        const msgpack_object *w = msg_get(a->map, "workflow");

        if (!w || w->type != MSGPACK_OBJECT_MAP) {
                (void) ctl_error_errno(EPROTO, "durabled's answer to %s has no workflow", op);
                return NULL;
        }
        return w;
}

static bool is_time_key(const char *key) {
        size_t n = strlen(key);

        return streq(key, "time") || (n > 5 && streq(key + n - 5, "_time"));
}

/* Sets @key of @obj to @value; takes @value. */
static int json_put(json_t *obj, const char *key, json_t *value) {
        return json_object_set_new(obj, key, value) < 0 ? -ENOMEM : 0;
}

/* Copies @key=@value into @out, renamed as render.h says, with a timestamp after a time. */
static int json_put_converted(json_t *out, const char *key, json_t *value) {
        char name[128], iso[TIME_TEXT_MAX];
        int r;

        r = json_put(out, streq(key, "workflow_type") ? "type" : key, json_incref(value));
        if (r < 0 || !is_time_key(key) || !json_is_integer(value))
                return r;
        if (snprintf(name, sizeof(name), "%sstamp", key) >= (int) sizeof(name))
                return 0;
        format_time_iso((uint64_t) json_integer_value(value), iso);
        return json_put(out, name, json_string(iso));
}

json_t *map_to_json(const msgpack_object *map) {
        _cleanup_(json_decrefp) json_t *in = json_from_msgpack(map), *out = json_object();
        const char *key;
        json_t *value;

        if (!in || !out || !json_is_object(in))
                return NULL;
        json_object_foreach(in, key,
                            value) if (json_put_converted(out, key, value) < 0) return NULL;
        return TAKE_PTR(out);
}

json_t *maps_to_json(const msgpack_object *array) {
        _cleanup_(json_decrefp) json_t *out = json_array();

        if (!out)
                return NULL;
        for (uint32_t i = 0;
             array && array->type == MSGPACK_OBJECT_ARRAY && i < array->via.array.size; i++)
                if (json_array_append_new(out, map_to_json(&array->via.array.ptr[i])) < 0)
                        return NULL;
        return TAKE_PTR(out);
}

/* Writes the string @o (if it is one) to @f; returns whether it wrote anything. */
static bool fput_str(FILE *f, const msgpack_object *o) {
        if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0)
                return false;
        fwrite(o->via.str.ptr, 1, o->via.str.size, f);
        return true;
}

static void fput_failure(FILE *f, const msgpack_object *failure) {
        const msgpack_object *nr = msg_get(failure, "non_retryable"), *timeout;

        if (fput_str(f, msg_get(failure, "type")))
                fputs(": ", f);
        if (!fput_str(f, msg_get(failure, "message")))
                fputs("(no message)", f);
        timeout = msg_get(failure, "timeout_type");
        if (timeout && timeout->type == MSGPACK_OBJECT_STR)
                fprintf(f, " (%.*s timeout)", (int) timeout->via.str.size, timeout->via.str.ptr);
        if (nr && nr->type == MSGPACK_OBJECT_BOOLEAN && nr->via.boolean)
                fputs(" (non-retryable)", f);
        if (msg_get(failure, "cause")) {
                fputs("; cause: ", f);
                fput_failure(f, msg_get(failure, "cause"));
        }
}

char *failure_summary(const msgpack_object *failure) {
        char *s = NULL;
        size_t n;
        FILE *f = open_memstream(&s, &n);

        if (!f)
                return NULL;
        fput_failure(f, failure);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

char *payload_text(const msgpack_object *payload, size_t max) {
        _cleanup_(json_decrefp) json_t *j = NULL;

        if (!payload)
                return strdup("null");
        j = json_from_msgpack(payload);
        return j ? json_oneline(j, max) : NULL;
}

/* A string value of a detail: bare when it needs no quoting, else as a JSON string. */
static void fput_detail_str(FILE *f, const char *s, size_t n) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_free_ char *quoted = NULL;
        bool bare = n > 0;

        for (size_t i = 0; i < n && bare; i++)
                bare = (unsigned char) s[i] > ' ' && s[i] != '"' && s[i] != '\\' && s[i] != 0x7f;
        if (bare) {
                fwrite(s, 1, n, f);
                return;
        }
        j = json_stringn_nocheck(s, n);
        quoted = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        fputs(quoted ? quoted : "\"?\"", f);
}

/* "name_usec" with a value prints as "name=<duration>"; 0 means "not set" and is left out. */
static void fput_detail_uint(FILE *f, const char *key, uint64_t value) {
        size_t n = strlen(key);
        char d[DURATION_TEXT_MAX];

        if (n > 5 && streq(key + n - 5, "_usec")) {
                if (value > 0)
                        fprintf(f, " %.*s=%s", (int) (n - 5), key, format_duration(value, d));
                return;
        }
        fprintf(f, " %s=%llu", key, (unsigned long long) value);
}

static void fput_detail(FILE *f, const char *key, const msgpack_object *v) {
        _cleanup_free_ char *text = NULL;

        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                fput_detail_uint(f, key, v->via.u64);
                return;
        }
        fprintf(f, " %s=", key);
        if (v->type == MSGPACK_OBJECT_STR) {
                fput_detail_str(f, v->via.str.ptr, v->via.str.size);
        } else if (v->type == MSGPACK_OBJECT_MAP && msg_get(v, "message")) { /* a failure */
                text = failure_summary(v);
                fput_detail_str(f, text ? text : "?", text ? strlen(text) : 1);
        } else {
                text = payload_text(v, DETAIL_VALUE_MAX);
                fputs(text ? text : "?", f);
        }
}

/* Attributes that only matter to the replay engine, or are too long for one line. */
static bool detail_skipped(const char *key) {
        static const char *const skipped[] = {
                "workflow_task_completed_event_id",
                "retry_policy",
                "identity",
        };

        for (size_t i = 0; i < ELEMENTSOF(skipped); i++)
                if (streq(key, skipped[i]))
                        return true;
        return false;
}

char *event_details(const msgpack_object *attributes) {
        char *s = NULL;
        size_t n;
        FILE *f;

        if (!attributes || attributes->type != MSGPACK_OBJECT_MAP)
                return strdup("");
        f = open_memstream(&s, &n);
        if (!f)
                return NULL;
        for (uint32_t i = 0; i < attributes->via.map.size; i++) {
                const msgpack_object_kv *kv = &attributes->via.map.ptr[i];
                char key[64];

                if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof(key) ||
                    kv->val.type == MSGPACK_OBJECT_NIL)
                        continue;
                memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
                key[kv->key.via.str.size] = 0;
                if (!detail_skipped(key))
                        fput_detail(f, key, &kv->val);
        }
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        /* Every detail starts with a blank; drop the first one. */
        if (s[0] == ' ')
                memmove(s, s + 1, n);
        return s;
}

/* "2025-11-25 07:01:05 CET (after 3s)": a close time and how long the run took. */
static void print_close_time(const WorkflowInfo *w) {
        char t[TIME_TEXT_MAX], d[DURATION_TEXT_MAX];

        if (w->close_time == 0)
                return;
        if (w->close_time >= w->start_time && w->start_time > 0)
                kv_print("Close time", NULL, "%s (after %s)",
                         format_time_local(w->close_time, false, t),
                         format_duration(w->close_time - w->start_time, d));
        else
                kv_print("Close time", NULL, "%s", format_time_local(w->close_time, false, t));
}

static void print_result_or_failure(const WorkflowInfo *w) {
        _cleanup_free_ char *result = NULL, *failure = NULL;

        if (w->result || streq(w->status, "Completed")) {
                result = payload_text(w->result, 0);
                kv_print("Result", NULL, "%s", result ? result : "?");
        }
        if (w->failure) {
                failure = failure_summary(w->failure);
                kv_print("Failure", ANSI_RED, "%s", failure ? failure : "?");
        }
}

void workflow_print(const WorkflowInfo *w, bool details) {
        char t[TIME_TEXT_MAX];

        kv_print("Workflow ID", NULL, "%s", w->workflow_id);
        kv_print("Run ID", NULL, "%s", w->run_id);
        if (w->workflow_type)
                kv_print("Type", NULL, "%s", w->workflow_type);
        if (details && w->task_queue)
                kv_print("Task queue", NULL, "%s", w->task_queue);
        kv_print("Status", status_color(w->status), "%s", w->status);
        if (details) {
                kv_print("Start time", NULL, "%s", format_time_local(w->start_time, false, t));
                print_close_time(w);
                kv_print("History length", NULL, "%llu", (unsigned long long) w->history_length);
        }
        print_result_or_failure(w);
}

void workflow_print_outcome(const WorkflowInfo *w) {
        kv_print("Status", status_color(w->status), "%s", w->status);
        print_result_or_failure(w);
}

typedef struct PendingActivity {
        const char *activity_id;
        const char *activity_type;
        const char *state;
        uint64_t attempt;
        uint64_t next_attempt_time;
        const msgpack_object *last_failure;
        const char *status; /* the last STATUS= of a process activity */
} PendingActivity;

static int pending_activity_add(Table *t, const msgpack_object *map) {
        static const MsgField fields[] = {
                { "activity_id", MSG_STR, offsetof(PendingActivity, activity_id) },
                { "activity_type", MSG_STR, offsetof(PendingActivity, activity_type) },
                { "state", MSG_STR, offsetof(PendingActivity, state) },
                { "attempt", MSG_UINT, offsetof(PendingActivity, attempt) },
                { "next_attempt_time", MSG_UINT, offsetof(PendingActivity, next_attempt_time) },
                { "last_failure", MSG_MAP, offsetof(PendingActivity, last_failure) },
                { "status", MSG_STR, offsetof(PendingActivity, status) },
                {},
        };
        _cleanup_(msgpack_zone_freep) msgpack_zone *zone = msgpack_zone_new(1024);
        char err[256], attempt[24], next[TIME_TEXT_MAX];
        const msgpack_object *hb;
        PendingActivity p = {};
        int r;

        if (!zone)
                return -ENOMEM;
        r = msg_parse(map, zone, fields, &p, err, sizeof(err));
        if (r < 0)
                return ctl_error_errno(EPROTO, "durabled sent an unexpected activity: %s", err);
        snprintf(attempt, sizeof(attempt), "%llu", (unsigned long long) p.attempt);
        if ((r = table_add(t, p.activity_id, NULL)) < 0 ||
            (r = table_add(t, p.activity_type, NULL)) < 0 ||
            (r = table_add(t, p.state, NULL)) < 0 || (r = table_add(t, attempt, NULL)) < 0 ||
            (r = table_add(t, format_time_local(p.next_attempt_time, false, next), NULL)) < 0)
                return r;
        r = table_add_take(t, p.last_failure ? failure_summary(p.last_failure) : NULL,
                           p.last_failure ? ANSI_RED : NULL);
        if (r >= 0)
                r = table_add(t, p.status, NULL);
        hb = msg_get(map, "heartbeat_details");
        if (r >= 0)
                r = table_add_take(t, hb ? payload_text(hb, 60) : NULL, NULL);
        return r;
}

int pending_activities_print(const msgpack_object *array) {
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        if (!array || array->type != MSGPACK_OBJECT_ARRAY || array->via.array.size == 0)
                return 0;
        r = table_new(&t, "ACTIVITY ID", "TYPE", "STATE", "ATTEMPT", "NEXT ATTEMPT", "LAST FAILURE",
                      "STATUS", "HEARTBEAT", NULL);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < array->via.array.size; i++) {
                r = pending_activity_add(t, &array->via.array.ptr[i]);
                if (r < 0)
                        return r;
        }
        printf("\n%sPending activities:%s\n", ansi(ANSI_BOLD), ansi(ANSI_NORMAL));
        table_print(t);
        return 0;
}
