/* The history engine's activities (see history.h for the state machine): scheduling from a
 * ScheduleActivityTask command with Temporal's timeout rules and retry defaults, dispatch to a
 * polling worker, results, failures and retries with backoff, heartbeats, cancellation, and the
 * four timeouts. An activity's retries leave no events; ActivityTaskStarted is appended with the
 * event that closes the activity, as Temporal does. */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daemon/activity-unit.h"
#include "daemon/activity.h"
#include "daemon/clock.h"
#include "daemon/history-internal.h"
#include "daemon/history.h"
#include "daemon/taskq.h"

typedef struct ActivityCommand {
        const char *activity_id;
        const char *activity_type;
        const char *task_queue;
        MsgBin input;
        uint64_t schedule_to_close_usec;
        uint64_t schedule_to_start_usec;
        uint64_t start_to_close_usec;
        uint64_t heartbeat_usec;
        const msgpack_object *retry_policy;
} ActivityCommand;

static const MsgField activity_fields[] = {
        { "activity_id", MSG_STR, offsetof(ActivityCommand, activity_id), true, NAME_MAX_LEN },
        { "activity_type", MSG_STR, offsetof(ActivityCommand, activity_type), true, NAME_MAX_LEN },
        { "task_queue", MSG_STR, offsetof(ActivityCommand, task_queue), false, NAME_MAX_LEN },
        { "input", MSG_BIN, offsetof(ActivityCommand, input), false, PAYLOAD_SIZE_MAX },
        { "schedule_to_close_usec", MSG_UINT, offsetof(ActivityCommand, schedule_to_close_usec) },
        { "schedule_to_start_usec", MSG_UINT, offsetof(ActivityCommand, schedule_to_start_usec) },
        { "start_to_close_usec", MSG_UINT, offsetof(ActivityCommand, start_to_close_usec) },
        { "heartbeat_usec", MSG_UINT, offsetof(ActivityCommand, heartbeat_usec) },
        { "retry_policy", MSG_MAP, offsetof(ActivityCommand, retry_policy) },
        {},
};

static const MsgField retry_fields[] = {
        { "initial_interval_usec", MSG_UINT, offsetof(RetryPolicy, initial_interval_usec) },
        { "backoff_coefficient", MSG_DOUBLE, offsetof(RetryPolicy, backoff_coefficient) },
        { "maximum_interval_usec", MSG_UINT, offsetof(RetryPolicy, maximum_interval_usec) },
        { "maximum_attempts", MSG_UINT, offsetof(RetryPolicy, maximum_attempts) },
        { "non_retryable_error_types", MSG_ARRAY,
          offsetof(RetryPolicy, non_retryable_error_types) },
        {},
};

/* An activity unit's timeouts and retry settings (durabled.activity(5)) fill what the command
 * leaves unset; the command's own values win, as a Temporal SDK's options win over a worker's. */
static void unit_defaults(const ActivityUnit *u, ActivityCommand *c) {
        if (!c->start_to_close_usec)
                c->start_to_close_usec = u->start_to_close_usec;
        if (!c->schedule_to_close_usec)
                c->schedule_to_close_usec = u->schedule_to_close_usec;
        if (!c->heartbeat_usec)
                c->heartbeat_usec = u->heartbeat_usec;
}

static void unit_retry_defaults(const ActivityUnit *u, RetryPolicy *p) {
        if (!p->initial_interval_usec)
                p->initial_interval_usec = u->retry_initial_usec;
        if (p->backoff_coefficient == 0)
                p->backoff_coefficient = u->retry_backoff;
        if (!p->maximum_interval_usec)
                p->maximum_interval_usec = u->retry_max_usec;
        if (!p->maximum_attempts && u->retry_max_attempts != UNIT_LIMIT_UNSET)
                p->maximum_attempts = u->retry_max_attempts;
}

/* Temporal's validation and defaults (SEMANTICS.md b.1, b.2), after those of the activity's unit
 * (@u, may be NULL). */
static int normalize_activity(ActivityCommand *c,
                              RetryPolicy *p,
                              const ActivityUnit *u,
                              msgpack_zone *z,
                              char *err,
                              size_t errlen) {
        RetryPolicy defaults = {};

        if (u) {
                unit_defaults(u, c);
                unit_retry_defaults(u, &defaults);
        }
        if (!c->schedule_to_close_usec && !c->start_to_close_usec) {
                snprintf(err, errlen,
                         "activity %s (%s): a start_to_close or schedule_to_close "
                         "timeout is required",
                         c->activity_id, c->activity_type);
                return -EINVAL;
        }
        if (c->schedule_to_close_usec) {
                c->schedule_to_start_usec =
                        c->schedule_to_start_usec
                                ? MIN(c->schedule_to_start_usec, c->schedule_to_close_usec)
                                : c->schedule_to_close_usec;
                c->start_to_close_usec = c->start_to_close_usec ? MIN(c->start_to_close_usec,
                                                                      c->schedule_to_close_usec)
                                                                : c->schedule_to_close_usec;
        }
        if (c->heartbeat_usec)
                c->heartbeat_usec = MIN(c->heartbeat_usec, c->start_to_close_usec);
        return retry_policy_parse_with(c->retry_policy, u ? &defaults : NULL, z, p, err, errlen);
}

int retry_policy_parse(
        const msgpack_object *policy, msgpack_zone *z, RetryPolicy *p, char *err, size_t errlen) {
        return retry_policy_parse_with(policy, NULL, z, p, err, errlen);
}

int retry_policy_parse_with(const msgpack_object *policy,
                            const RetryPolicy *defaults,
                            msgpack_zone *z,
                            RetryPolicy *p,
                            char *err,
                            size_t errlen) {
        int r;

        *p = (RetryPolicy){};
        if (policy) {
                r = msg_parse(policy, z, retry_fields, p, err, errlen);
                if (r < 0)
                        return r;
        }
        /* Defaults (an activity unit's) fill what the policy leaves unset, before the checks. */
        if (defaults) {
                if (!p->initial_interval_usec)
                        p->initial_interval_usec = defaults->initial_interval_usec;
                if (p->backoff_coefficient == 0)
                        p->backoff_coefficient = defaults->backoff_coefficient;
                if (!p->maximum_interval_usec)
                        p->maximum_interval_usec = defaults->maximum_interval_usec;
                if (!p->maximum_attempts)
                        p->maximum_attempts = defaults->maximum_attempts;
        }
        if (p->maximum_attempts == 1)
                return 0; /* no retries: the other fields do not matter (Temporal) */
        if (p->backoff_coefficient != 0 && !(p->backoff_coefficient >= 1.0)) {
                snprintf(err, errlen, "retry_policy.backoff_coefficient must be at least 1.0");
                return -EINVAL;
        }
        if (p->maximum_interval_usec && p->initial_interval_usec &&
            p->maximum_interval_usec < p->initial_interval_usec) {
                snprintf(err, errlen,
                         "retry_policy.maximum_interval_usec is smaller than "
                         "initial_interval_usec");
                return -EINVAL;
        }
        if (p->non_retryable_error_types)
                for (uint32_t i = 0; i < p->non_retryable_error_types->via.array.size; i++)
                        if (p->non_retryable_error_types->via.array.ptr[i].type !=
                            MSGPACK_OBJECT_STR) {
                                snprintf(err, errlen,
                                         "retry_policy.non_retryable_error_types "
                                         "must hold strings");
                                return -EINVAL;
                        }
        if (!p->initial_interval_usec)
                p->initial_interval_usec = 1000000;
        if (p->backoff_coefficient == 0)
                p->backoff_coefficient = 2.0;
        if (!p->maximum_interval_usec)
                p->maximum_interval_usec = 100 * p->initial_interval_usec;
        return 0;
}

static void pack_retry_policy(msgpack_packer *pk, const ActivityRow *a) {
        (void) msg_pack_str(pk, "retry_policy");
        (void) msgpack_pack_map(pk, 5);
        (void) msg_pack_kv_uint(pk, "initial_interval_usec", a->retry_initial_usec);
        (void) msg_pack_str(pk, "backoff_coefficient");
        (void) msgpack_pack_double(pk, a->retry_backoff);
        (void) msg_pack_kv_uint(pk, "maximum_interval_usec", a->retry_max_interval_usec);
        (void) msg_pack_kv_uint(pk, "maximum_attempts", a->retry_max_attempts);
        (void) pack_kv_raw(pk, "non_retryable_error_types", &a->retry_non_retryable);
}

/* Queues the task of an activity attempt: for the daemon itself when an activity unit declares its
 * type (DESIGN.md §7: the queue of a TASK_PROCESS task is the unit's name), else for the polling
 * workers of its task queue. */
static int activity_queue_task(Manager *m, const ActivityRow *act) {
        const char *unit = supervisor_route(m, act->activity_type, act->task_queue);
        int r;

        if (unit) {
                r = store_task_insert(m->store, TASK_PROCESS, unit, act->run_id,
                                      act->scheduled_id);
                if (r >= 0)
                        supervisor_mark_dirty(m);
                return r;
        }
        r = store_task_insert(m->store, TASK_ACTIVITY, act->task_queue, act->run_id,
                              act->scheduled_id);
        if (r >= 0)
                taskq_mark_dirty(m, act->task_queue);
        return r;
}

int history_apply_schedule_activity(Manager *m,
                                    RunRow *run,
                                    const msgpack_object *attrs,
                                    uint64_t completed_id,
                                    msgpack_zone *z,
                                    bool dry,
                                    char *err,
                                    size_t errlen) {
        _cleanup_(activity_row_done) ActivityRow row = {};
        ActivityCommand c = {};
        RetryPolicy p;
        msgpack_packer *pk;
        uint64_t now = clock_now(), id;
        Attrs a;
        int r;

        r = msg_parse(attrs, z, activity_fields, &c, err, errlen);
        if (r < 0)
                return r;
        r = normalize_activity(
                &c, &p,
                supervisor_unit(m, c.activity_type, c.task_queue ? c.task_queue : run->task_queue),
                z, err, errlen);
        if (r < 0 || dry)
                return r;

        memcpy(row.run_id, run->run_id, 37);
        row.activity_id = strdup(c.activity_id);
        row.activity_type = strdup(c.activity_type);
        row.task_queue = strdup(c.task_queue ? c.task_queue : run->task_queue);
        if (!row.activity_id || !row.activity_type || !row.task_queue)
                return -ENOMEM;
        r = blob_from_bin(&c.input, &row.input);
        if (r >= 0)
                r = blob_from_object(p.non_retryable_error_types, &row.retry_non_retryable);
        if (r < 0)
                return r;
        row.state = ACTIVITY_SCHEDULED;
        row.attempt = 1;
        row.scheduled_time = row.attempt_time = now;
        row.schedule_to_close_usec = c.schedule_to_close_usec;
        row.schedule_to_start_usec = c.schedule_to_start_usec;
        row.start_to_close_usec = c.start_to_close_usec;
        row.heartbeat_usec = c.heartbeat_usec;
        row.retry_initial_usec = p.initial_interval_usec;
        row.retry_backoff = p.backoff_coefficient;
        row.retry_max_interval_usec = p.maximum_interval_usec;
        row.retry_max_attempts = (uint32_t) MIN(p.maximum_attempts, UINT32_MAX);

        pk = attrs_begin(&a, 10);
        (void) msg_pack_kv_str(pk, "activity_id", row.activity_id);
        (void) msg_pack_kv_str(pk, "activity_type", row.activity_type);
        (void) msg_pack_kv_str(pk, "task_queue", row.task_queue);
        (void) pack_kv_payload(pk, "input", c.input.ptr, c.input.size);
        (void) msg_pack_kv_uint(pk, "schedule_to_close_usec", row.schedule_to_close_usec);
        (void) msg_pack_kv_uint(pk, "schedule_to_start_usec", row.schedule_to_start_usec);
        (void) msg_pack_kv_uint(pk, "start_to_close_usec", row.start_to_close_usec);
        (void) msg_pack_kv_uint(pk, "heartbeat_usec", row.heartbeat_usec);
        pack_retry_policy(pk, &row);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_ACTIVITY_TASK_SCHEDULED, &a, &id);
        attrs_done(&a);
        if (r < 0)
                return r;

        row.scheduled_id = id;
        r = store_activity_insert(m->store, &row);
        if (r < 0)
                return r;
        r = activity_queue_task(m, &row);
        if (r < 0)
                return r;
        if (row.schedule_to_close_usec) {
                r = store_deadline_insert(m->store, now + row.schedule_to_close_usec,
                                          DEADLINE_ACT_SCHEDULE_TO_CLOSE, run->run_id, id, 0, NULL);
                if (r < 0)
                        return r;
        }
        if (row.schedule_to_start_usec) {
                r = store_deadline_insert(m->store, now + row.schedule_to_start_usec,
                                          DEADLINE_ACT_SCHEDULE_TO_START, run->run_id, id, 1, NULL);
                if (r < 0)
                        return r;
        }
        manager_deadlines_changed(m);
        return 0;
}

/* Appends the events of an activity that closed for good and forgets its rows. @close_attrs
 * lacks started_event_id when @started (it is linked to the ActivityTaskStarted appended here). */
static int activity_close(Manager *m,
                          RunRow *run,
                          ActivityRow *act,
                          EventType type,
                          Attrs *close_attrs,
                          bool started) {
        msgpack_packer *pk;
        Attrs a;
        int r;

        if (started) {
                pk = attrs_begin(&a, act->last_failure.ptr ? 4 : 3);
                (void) msg_pack_kv_uint(pk, "scheduled_event_id", act->scheduled_id);
                (void) msg_pack_kv_uint(pk, "attempt", act->attempt);
                (void) msg_pack_kv_str(pk, "identity", act->identity ? act->identity : "");
                if (act->last_failure.ptr)
                        (void) pack_kv_raw(pk, "last_failure", &act->last_failure);
                r = msgbuf_error(&a.buf);
                if (r >= 0)
                        r = append_external_raw(m, run, EVENT_ACTIVITY_TASK_STARTED, a.buf.sb.data,
                                                a.buf.sb.size, false, true);
                attrs_done(&a);
                if (r < 0)
                        return r;
        }
        r = append_external(m, run, type, close_attrs, started);
        if (r < 0)
                return r;
        log_activity(type == EVENT_ACTIVITY_TASK_COMPLETED ? LOG_DEBUG : LOG_NOTICE, run, act,
                     "Activity '%s' (%s) of workflow '%s': %s after %u attempt(s)",
                     act->activity_id, act->activity_type, run->workflow_id,
                     event_type_to_string(type) ? event_type_to_string(type) : "closed",
                     act->attempt);
        r = store_activity_delete(m->store, run->run_id, act->scheduled_id);
        if (r >= 0)
                r = store_task_delete(m->store, TASK_ACTIVITY, run->run_id, act->scheduled_id);
        if (r >= 0)
                r = store_task_delete(m->store, TASK_PROCESS, run->run_id, act->scheduled_id);
        if (r >= 0)
                r = store_deadlines_delete_ref(m->store, run->run_id, act->scheduled_id);
        manager_deadlines_changed(m);
        return r;
}

int history_apply_request_cancel_activity(Manager *m,
                                          RunRow *run,
                                          const msgpack_object *attrs,
                                          uint64_t completed_id,
                                          bool dry,
                                          char *err,
                                          size_t errlen) {
        _cleanup_(activity_row_done) ActivityRow act = {};
        const msgpack_object *o = msg_get(attrs, "scheduled_event_id");
        msgpack_packer *pk;
        uint64_t sched;
        Attrs a;
        int r;

        if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                snprintf(err, errlen, "field \"scheduled_event_id\" must be an unsigned integer");
                return -EINVAL;
        }
        if (dry)
                return 0;
        sched = o->via.u64;
        pk = attrs_begin(&a, 2);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", sched);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_ACTIVITY_TASK_CANCEL_REQUESTED, &a, NULL);
        attrs_done(&a);
        if (r < 0)
                return r;

        r = store_activity_get(m->store, run->run_id, sched, &act);
        if (r == -ENOENT)
                return 0; /* it closed while the task ran; its result is buffered */
        if (r < 0)
                return r;
        if (act.state == ACTIVITY_STARTED) {
                /* Delivered through the next heartbeat answer (SEMANTICS.md b.2). */
                act.cancel_requested = true;
                return store_activity_update(m->store, &act);
        }
        pk = attrs_begin(&a, 2);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", sched);
        (void) msg_pack_kv_uint(pk, "started_event_id", 0);
        r = activity_close(m, run, &act, EVENT_ACTIVITY_TASK_CANCELED, &a, false);
        attrs_done(&a);
        return r;
}

/* ---- activity tasks ---- */

int history_start_activity_attempt(Manager *m,
                                   const char *run_id,
                                   uint64_t scheduled_id,
                                   const char *identity,
                                   RunRow *ret_run,
                                   ActivityRow *ret_act) {
        _cleanup_(activity_row_done) ActivityRow act = {};
        _cleanup_(run_row_done) RunRow run = {};
        uint64_t now = clock_now();
        int r;

        r = store_activity_get(m->store, run_id, scheduled_id, &act);
        if (r == -ENOENT)
                return -ESTALE;
        if (r < 0)
                return r;
        if (act.state != ACTIVITY_SCHEDULED)
                return -ESTALE;
        r = store_run_get(m->store, run_id, &run);
        if (r < 0)
                return r == -ENOENT ? -ESTALE : r;

        act.state = ACTIVITY_STARTED;
        act.started_time = now;
        free(act.identity);
        act.identity = strdup(identity);
        if (!act.identity)
                return -ENOMEM;
        r = store_activity_update(m->store, &act);
        if (r < 0)
                return r;
        r = store_deadline_insert(m->store, now + act.start_to_close_usec,
                                  DEADLINE_ACT_START_TO_CLOSE, run_id, scheduled_id, act.attempt,
                                  NULL);
        if (r >= 0 && act.heartbeat_usec)
                r = store_deadline_insert(m->store, now + act.heartbeat_usec,
                                          DEADLINE_ACT_HEARTBEAT, run_id, scheduled_id, act.attempt,
                                          NULL);
        if (r < 0)
                return r;
        manager_deadlines_changed(m);
        *ret_run = run;
        run = (RunRow){};
        *ret_act = act;
        act = (ActivityRow){};
        return 0;
}

int history_start_activity_task(Manager *m,
                                const char *run_id,
                                uint64_t scheduled_id,
                                const char *identity,
                                msgpack_packer *pk) {
        _cleanup_(activity_row_done) ActivityRow act = {};
        _cleanup_(run_row_done) RunRow run = {};
        uint64_t deadline;
        int r;

        r = history_start_activity_attempt(m, run_id, scheduled_id, identity, &run, &act);
        if (r < 0)
                return r;
        deadline = act.started_time + act.start_to_close_usec;
        if (act.schedule_to_close_usec)
                deadline = MIN(deadline, act.scheduled_time + act.schedule_to_close_usec);

        (void) msgpack_pack_map(pk, 14);
        (void) token_pack(pk, "A/%s/%" PRIu64 "/%" PRIu32, run_id, scheduled_id, act.attempt);
        (void) msg_pack_kv_str(pk, "workflow_id", run.workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", run.run_id);
        (void) msg_pack_kv_str(pk, "workflow_type", run.workflow_type);
        (void) msg_pack_kv_str(pk, "activity_id", act.activity_id);
        (void) msg_pack_kv_str(pk, "activity_type", act.activity_type);
        (void) pack_kv_payload(pk, "input", act.input.ptr, act.input.size);
        (void) msg_pack_kv_uint(pk, "attempt", act.attempt);
        (void) msg_pack_kv_uint(pk, "scheduled_time", act.scheduled_time);
        (void) msg_pack_kv_uint(pk, "started_time", act.started_time);
        (void) msg_pack_kv_uint(pk, "start_to_close_usec", act.start_to_close_usec);
        (void) msg_pack_kv_uint(pk, "heartbeat_usec", act.heartbeat_usec);
        (void) msg_pack_kv_uint(pk, "deadline", deadline);
        (void) pack_kv_payload(pk, "heartbeat_details", act.heartbeat_details.ptr,
                               act.heartbeat_details.size);
        return 0;
}

typedef struct FindActivity {
        const char *activity_id;
        uint64_t scheduled_id;
        uint32_t attempt;
        ActivityState state;
        bool found;
} FindActivity;

static int find_activity(const ActivityRow *a, void *userdata) {
        FindActivity *f = userdata;

        if (!f->found && streq(a->activity_id, f->activity_id)) {
                *f = (FindActivity){ .activity_id = f->activity_id,
                                     .scheduled_id = a->scheduled_id,
                                     .attempt = a->attempt,
                                     .state = a->state,
                                     .found = true };
        }
        return 0;
}

int history_activity_token(Manager *m,
                           const RunRow *run,
                           const char *activity_id,
                           char buf[static HISTORY_TOKEN_MAX],
                           ApiError *e) {
        FindActivity f = { .activity_id = activity_id };
        int r;

        r = store_activities_foreach(m->store, run->run_id, find_activity, &f);
        if (r < 0)
                return r;
        if (!f.found)
                return api_error_set(e, -ENOENT,
                                     "workflow '%s' has no pending activity '%s' (it closed, or "
                                     "the id is wrong)",
                                     run->workflow_id, activity_id);
        if (f.state != ACTIVITY_STARTED)
                return api_error_set(e, -ENOENT,
                                     "activity '%s' of workflow '%s' has no attempt running (it "
                                     "is %s)",
                                     activity_id, run->workflow_id,
                                     activity_state_to_string(f.state));
        (void) snprintf(buf, HISTORY_TOKEN_MAX, "A/%s/%" PRIu64 "/%" PRIu32, run->run_id,
                        f.scheduled_id, f.attempt);
        return 0;
}

/* Loads the activity and run of a task token; the attempt must be the one running. */
static int load_activity_task(
        Manager *m, const MsgBin *token, RunRow *ret_run, ActivityRow *ret, ApiError *e) {
        char run_id[37];
        uint64_t sched, attempt;
        int r;

        if (token_parse(token, 'A', run_id, &sched, &attempt) < 0)
                return api_error_set(e, -EINVAL,
                                     "field \"task_token\" is not an activity task token");
        /* The run first: whether its activity exists is the owner's business (history.h). */
        r = store_run_get(m->store, run_id, ret_run);
        if (r >= 0 && !history_actor_owns(m, ret_run)) {
                run_row_done(ret_run);
                r = -ENOENT;
        }
        if (r >= 0) {
                r = store_activity_get(m->store, run_id, sched, ret);
                if (r < 0)
                        run_row_done(ret_run);
        }
        if (r == -ENOENT)
                return api_error_set(e, -ENOENT,
                                     "activity task not found (it timed out, was "
                                     "cancelled, or the run closed)");
        if (r < 0)
                return r;
        if (ret->state != ACTIVITY_STARTED || ret->attempt != attempt) {
                activity_row_done(ret);
                run_row_done(ret_run);
                return api_error_set(e, -ENOENT,
                                     "activity task not found: attempt %" PRIu64
                                     " is no longer running",
                                     attempt);
        }
        return 0;
}

int history_complete_activity(Manager *m, const MsgBin *token, const MsgBin *result, ApiError *e) {
        _cleanup_(activity_row_done) ActivityRow act = {};
        _cleanup_(run_row_done) RunRow run = {};
        msgpack_packer *pk;
        Attrs a;
        int r;

        r = load_activity_task(m, token, &run, &act, e);
        if (r < 0)
                return r;
        pk = attrs_begin(&a, 2);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", act.scheduled_id);
        (void) pack_kv_payload(pk, "result", result->ptr, result->size);
        r = activity_close(m, &run, &act, EVENT_ACTIVITY_TASK_COMPLETED, &a, true);
        attrs_done(&a);
        if (r < 0)
                return r;
        return store_run_update(m->store, &run);
}

static bool type_listed(const Blob *list, const char *type) {
        msgpack_unpacked u;
        size_t off = 0;
        bool found = false;

        if (!list->ptr || !type || !*type)
                return false;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, list->ptr, list->size, &off) == MSGPACK_UNPACK_SUCCESS &&
            u.data.type == MSGPACK_OBJECT_ARRAY)
                for (uint32_t i = 0; i < u.data.via.array.size && !found; i++)
                        found = msg_str_eq(&u.data.via.array.ptr[i], type);
        msgpack_unpacked_destroy(&u);
        return found;
}

typedef struct RetryDecision {
        const char *retry_state; /* "InProgress" = retry */
        uint64_t delay;
} RetryDecision;

/* Temporal's retry rules (SEMANTICS.md b.1). */
static RetryDecision decide_retry(const ActivityRow *act,
                                  bool non_retryable,
                                  const char *type,
                                  uint64_t next_retry_delay) {
        uint64_t now = clock_now(), delay;
        double d;

        if (act->cancel_requested)
                return (RetryDecision){ "CancelRequested", 0 };
        if (non_retryable || type_listed(&act->retry_non_retryable, type))
                return (RetryDecision){ "NonRetryableFailure", 0 };
        if (act->retry_max_attempts && act->attempt >= act->retry_max_attempts)
                return (RetryDecision){ "MaximumAttemptsReached", 0 };
        d = (double) act->retry_initial_usec * pow(act->retry_backoff, act->attempt - 1);
        delay = d >= (double) act->retry_max_interval_usec ? act->retry_max_interval_usec
                                                           : (uint64_t) d;
        if (next_retry_delay)
                delay = next_retry_delay;
        if (act->schedule_to_close_usec &&
            now + delay >= act->scheduled_time + act->schedule_to_close_usec)
                return (RetryDecision){ "Timeout", 0 };
        return (RetryDecision){ "InProgress", delay };
}

/* An attempt failed (a failure answer, or a start-to-close or heartbeat timeout): retry after
 * the backoff, or close the activity with @final_type. Takes @failure. */
static int activity_attempt_failed(Manager *m,
                                   RunRow *run,
                                   ActivityRow *act,
                                   Blob *failure,
                                   EventType final_type,
                                   uint64_t next_retry_delay) {
        RetryDecision d;
        msgpack_unpacked u;
        const msgpack_object *nr, *ty;
        char type[256] = "";
        size_t off = 0;
        msgpack_packer *pk;
        Attrs a;
        int r;

        msgpack_unpacked_init(&u);
        (void) msgpack_unpack_next(&u, failure->ptr, failure->size, &off);
        nr = msg_get(&u.data, "non_retryable");
        ty = msg_get(&u.data, "type");
        if (ty && ty->type == MSGPACK_OBJECT_STR && ty->via.str.size < sizeof(type))
                memcpy(type, ty->via.str.ptr, ty->via.str.size);
        d = decide_retry(act, nr && nr->type == MSGPACK_OBJECT_BOOLEAN && nr->via.boolean, type,
                         next_retry_delay);
        msgpack_unpacked_destroy(&u);

        if (streq(d.retry_state, "InProgress")) {
                free(act->last_failure.ptr);
                act->last_failure = *failure;
                *failure = (Blob){};
                act->state = ACTIVITY_BACKOFF;
                act->attempt++;
                act->attempt_time = clock_now() + d.delay;
                log_activity(LOG_INFO, run, act,
                             "Activity '%s' (%s) of workflow '%s' failed; attempt %u in %llu ms",
                             act->activity_id, act->activity_type, run->workflow_id, act->attempt,
                             (unsigned long long) (d.delay / 1000));
                r = store_activity_update(m->store, act);
                if (r < 0)
                        return r;
                manager_deadlines_changed(m);
                return store_deadline_insert(m->store, act->attempt_time, DEADLINE_ACT_RETRY,
                                             run->run_id, act->scheduled_id, act->attempt, NULL);
        }
        pk = attrs_begin(&a, 3);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", act->scheduled_id);
        (void) pack_kv_raw(pk, "failure", failure);
        (void) msg_pack_kv_str(pk, "retry_state", d.retry_state);
        r = activity_close(m, run, act, final_type, &a, true);
        attrs_done(&a);
        return r;
}

int history_fail_activity(Manager *m,
                          const MsgBin *token,
                          const msgpack_object *failure,
                          uint64_t next_retry_delay_usec,
                          ApiError *e) {
        _cleanup_(activity_row_done) ActivityRow act = {};
        _cleanup_(run_row_done) RunRow run = {};
        Blob f = {};
        int r;

        r = load_activity_task(m, token, &run, &act, e);
        if (r < 0)
                return r;
        r = blob_from_object(failure, &f);
        if (r < 0)
                return r;
        r = activity_attempt_failed(m, &run, &act, &f, EVENT_ACTIVITY_TASK_FAILED,
                                    next_retry_delay_usec);
        free(f.ptr);
        if (r < 0)
                return r;
        return store_run_update(m->store, &run);
}

int history_heartbeat_activity(Manager *m,
                               const MsgBin *token,
                               const MsgBin *details,
                               bool *ret_cancel_requested,
                               ApiError *e) {
        _cleanup_(activity_row_done) ActivityRow act = {};
        _cleanup_(run_row_done) RunRow run = {};
        int r;

        r = load_activity_task(m, token, &run, &act, e);
        if (r < 0)
                return r;
        if (details->ptr) {
                free(act.heartbeat_details.ptr);
                r = blob_from_bin(details, &act.heartbeat_details);
                if (r < 0)
                        return r;
        }
        r = store_activity_update(m->store, &act);
        if (r < 0)
                return r;
        if (act.heartbeat_usec) {
                r = store_deadline_delete(m->store, DEADLINE_ACT_HEARTBEAT, run.run_id,
                                          act.scheduled_id);
                if (r >= 0)
                        r = store_deadline_insert(m->store, clock_now() + act.heartbeat_usec,
                                                  DEADLINE_ACT_HEARTBEAT, run.run_id,
                                                  act.scheduled_id, act.attempt, NULL);
                if (r < 0)
                        return r;
                manager_deadlines_changed(m);
        }
        *ret_cancel_requested = act.cancel_requested;
        return 0;
}

int history_cancel_activity(Manager *m, const MsgBin *token, const MsgBin *details, ApiError *e) {
        _cleanup_(activity_row_done) ActivityRow act = {};
        _cleanup_(run_row_done) RunRow run = {};
        msgpack_packer *pk;
        Attrs a;
        int r;

        r = load_activity_task(m, token, &run, &act, e);
        if (r < 0)
                return r;
        if (!act.cancel_requested)
                return api_error_set(e, -ESTALE, "activity %s was not asked to cancel",
                                     act.activity_id);
        pk = attrs_begin(&a, 2);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", act.scheduled_id);
        (void) pack_kv_payload(pk, "details", details->ptr, details->size);
        r = activity_close(m, &run, &act, EVENT_ACTIVITY_TASK_CANCELED, &a, true);
        attrs_done(&a);
        if (r < 0)
                return r;
        return store_run_update(m->store, &run);
}

static const char *timeout_name(DeadlineKind k) {
        switch (k) {
        case DEADLINE_ACT_SCHEDULE_TO_START:
                return "ScheduleToStart";
        case DEADLINE_ACT_START_TO_CLOSE:
                return "StartToClose";
        case DEADLINE_ACT_HEARTBEAT:
                return "Heartbeat";
        default:
                return "ScheduleToClose";
        }
}

/* A final timeout: no retry, whatever the policy (schedule-to-start, schedule-to-close). */
static int activity_timed_out_final(Manager *m, RunRow *run, ActivityRow *act, DeadlineKind k) {
        bool started = act->state == ACTIVITY_STARTED;
        msgpack_packer *pk;
        Blob f = {};
        Attrs a;
        int r;

        r = failure_blob(&f, "", timeout_name(k), true, "activity %s timeout", timeout_name(k));
        if (r < 0)
                return r;
        pk = attrs_begin(&a, started ? 3 : 4);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", act->scheduled_id);
        (void) pack_kv_raw(pk, "failure", &f);
        (void) msg_pack_kv_str(pk, "retry_state",
                               k == DEADLINE_ACT_SCHEDULE_TO_CLOSE ? "Timeout"
                                                                   : "NonRetryableFailure");
        if (!started)
                (void) msg_pack_kv_uint(pk, "started_event_id", 0);
        r = activity_close(m, run, act, EVENT_ACTIVITY_TASK_TIMED_OUT, &a, started);
        attrs_done(&a);
        free(f.ptr);
        return r;
}

static int activity_ready_again(Manager *m, RunRow *run, ActivityRow *act) {
        int r;

        act->state = ACTIVITY_SCHEDULED;
        act->attempt_time = clock_now();
        r = store_activity_update(m->store, act);
        if (r >= 0)
                r = activity_queue_task(m, act);
        if (r >= 0 && act->schedule_to_start_usec) {
                r = store_deadline_insert(m->store, clock_now() + act->schedule_to_start_usec,
                                          DEADLINE_ACT_SCHEDULE_TO_START, run->run_id,
                                          act->scheduled_id, act->attempt, NULL);
                manager_deadlines_changed(m);
        }
        return r;
}

int history_on_activity_deadline(Manager *m, RunRow *run, const Deadline *d) {
        _cleanup_(activity_row_done) ActivityRow act = {};
        Blob f = {};
        int r;

        r = store_activity_get(m->store, run->run_id, d->ref, &act);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        switch (d->kind) {
        case DEADLINE_ACT_SCHEDULE_TO_CLOSE:
                return activity_timed_out_final(m, run, &act, d->kind);
        case DEADLINE_ACT_SCHEDULE_TO_START:
                if (act.state != ACTIVITY_SCHEDULED || act.attempt != d->gen)
                        return 0;
                return activity_timed_out_final(m, run, &act, d->kind);
        case DEADLINE_ACT_START_TO_CLOSE:
        case DEADLINE_ACT_HEARTBEAT:
                if (act.state != ACTIVITY_STARTED || act.attempt != d->gen)
                        return 0;
                r = failure_blob(&f, "", timeout_name(d->kind), false, "activity %s timeout",
                                 timeout_name(d->kind));
                if (r < 0)
                        return r;
                r = activity_attempt_failed(m, run, &act, &f, EVENT_ACTIVITY_TASK_TIMED_OUT, 0);
                free(f.ptr);
                return r;
        case DEADLINE_ACT_RETRY:
                if (act.state != ACTIVITY_BACKOFF || act.attempt != d->gen)
                        return 0;
                return activity_ready_again(m, run, &act);
        default:
                return 0;
        }
}
