/* The replay engine; see replay.h for the contract and doc/protocol.md "History shape".
 *
 * How a history drives a run:
 *
 *   WorkflowExecutionStarted            -> the main routine is created (not run yet)
 *   WorkflowTaskScheduled               -> every command of the previous execution point must
 *                                          have been matched by now
 *   WorkflowTaskStarted + ...Completed  -> execution point (replaying): routines run until all
 *                                          are blocked; new commands queue up
 *   WorkflowTaskStarted + ...Failed     -> skipped: that attempt left nothing in history
 *   WorkflowTaskStarted, last, real task-> execution point (current): its commands are the answer
 *   command events                      -> must equal the head of the command queue
 *   results, timers, signals, cancel    -> resolve futures, create signal routines, flag cancel
 *
 * Nothing runs outside an execution point, so the order in which routines observe results is
 * decided by the history alone: this is what makes replay deterministic. Because the events of
 * a task's commands directly follow its WorkflowTaskCompleted, every command still in the queue
 * when an execution point starts was issued by that same execution point, i.e. is unsent: this
 * is why cancelling a future whose start command is queued simply drops the command.
 *
 * Side effects and patches need a value before their command is matched: when an execution
 * point replays, the MarkerRecorded events of its task (between its WorkflowTaskCompleted and
 * the next WorkflowTaskStarted, all in the same batch since a task's events are written in one
 * transaction) are read ahead (collect_markers()) and taken by workflow.c; the RecordMarker
 * commands the code issues are then matched with them like any other. A patch marker, and the
 * TemporalChangeVersion upsert of a new patch, that no command asks for are skipped, as
 * Temporal's SDKs do, so that removing a deprecated patch stays compatible. */

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "common/cleanup.h"
#include "libclient/failure.h"
#include "libclient/object.h"
#include "libclient/replay-internal.h"
#include "proto/msg.h"

#define CAUSE_NON_DETERMINISTIC "NonDeterministicError"
#define CAUSE_WORKFLOW_ERROR "WorkflowError"

/* One history event, decoded just enough to dispatch it. Pointers borrow from the caller's
 * events array. */
typedef struct Event {
        uint64_t id;
        EventType type;
        uint64_t time;
        const msgpack_object *attrs; /* a map, or NULL */
} Event;

/* ---- errors ---------------------------------------------------------------------------------- */

static int run_error(Run *r, int error, const char *cause, const char *fmt, ...) _printf_(4, 5);
static int run_error(Run *r, int error, const char *cause, const char *fmt, ...) {
        va_list ap;

        r->error_cause = cause;
        va_start(ap, fmt);
        (void) vsnprintf(r->error_message, sizeof(r->error_message), fmt, ap);
        va_end(ap);
        return error;
}

const char *run_error_cause(const Run *r) {
        return r->error_cause;
}

const char *run_error_message(const Run *r) {
        return r->error_message;
}

/* ---- commands -------------------------------------------------------------------------------- */

static Command *command_free(Run *r, Command *c) {
        if (!c)
                return NULL;
        LIST_REMOVE(commands, r->commands, c);
        free(c->activity_type);
        free(c->workflow_id);
        free(c->update_id);
        free(c->packed);
        free(c);
        return NULL;
}

/* Packs {command_type: <type>, attributes: <attrs>} into a malloc'd buffer. */
static int
command_pack(CommandType type, const char *attrs, size_t attrs_size, char **ret, size_t *ret_size) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        r = msgpack_pack_map(&pk, 2);
        if (r >= 0)
                r = msg_pack_kv_str(&pk, "command_type", command_type_to_string(type));
        if (r >= 0)
                r = msg_pack_str(&pk, "attributes");
        if (r >= 0)
                r = msg_pack_raw(&pk, attrs, attrs_size);
        if (r < 0) {
                msgpack_sbuffer_destroy(&sb);
                return -ENOMEM;
        }
        *ret_size = sb.size;
        *ret = msgpack_sbuffer_release(&sb);
        return 0;
}

int run_add_command(Run *r, const Command *tmpl, const char *attrs, size_t attrs_size) {
        Command *c;
        int k;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->type = tmpl->type;
        memcpy(c->id, tmpl->id, sizeof(c->id));
        c->scheduled_event_id = tmpl->scheduled_event_id;
        c->future = tmpl->future;
        c->change_version = tmpl->change_version;
        c->activity_type = tmpl->activity_type ? strdup(tmpl->activity_type) : NULL;
        c->workflow_id = tmpl->workflow_id ? strdup(tmpl->workflow_id) : NULL;
        c->update_id = tmpl->update_id ? strdup(tmpl->update_id) : NULL;
        if ((tmpl->activity_type && !c->activity_type) || (tmpl->workflow_id && !c->workflow_id) ||
            (tmpl->update_id && !c->update_id))
                k = -ENOMEM;
        else
                k = command_pack(c->type, attrs, attrs_size, &c->packed, &c->packed_size);
        if (k < 0) {
                free(c->activity_type);
                free(c->workflow_id);
                free(c->update_id);
                free(c);
                return k;
        }
        if (c->future)
                c->future->command = c;
        LIST_APPEND(commands, r->commands, c);
        return 0;
}

/* A command whose attributes are one "key: uint" or "key: str" pair, or empty. */
static int run_add_simple_command(
        Run *r, const Command *tmpl, const char *key, const char *str, uint64_t num) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        int k;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        k = msgpack_pack_map(&pk, key ? 1 : 0);
        if (k >= 0 && key)
                k = str ? msg_pack_kv_str(&pk, key, str) : msg_pack_kv_uint(&pk, key, num);
        if (k >= 0)
                k = run_add_command(r, tmpl, sb.data, sb.size);
        else
                k = -ENOMEM;
        msgpack_sbuffer_destroy(&sb);
        return k;
}

static void describe_command(const Command *c, char *buf, size_t n) {
        const char *name = command_type_to_string(c->type);

        switch (c->type) {
        case COMMAND_SCHEDULE_ACTIVITY_TASK:
                (void) snprintf(buf, n, "%s(activity_id=%s, type=%s)", name, c->id,
                                c->activity_type);
                break;
        case COMMAND_REQUEST_CANCEL_ACTIVITY_TASK:
                (void) snprintf(buf, n, "%s(scheduled_event_id=%llu)", name,
                                (unsigned long long) c->scheduled_event_id);
                break;
        case COMMAND_START_TIMER:
        case COMMAND_CANCEL_TIMER:
                (void) snprintf(buf, n, "%s(timer_id=%s)", name, c->id);
                break;
        case COMMAND_START_CHILD_WORKFLOW_EXECUTION:
                (void) snprintf(buf, n, "%s(workflow_id=%.100s, type=%.100s)", name, c->workflow_id,
                                c->activity_type);
                break;
        case COMMAND_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION:
                (void) snprintf(buf, n, "%s(workflow_id=%.100s)", name, c->workflow_id);
                break;
        case COMMAND_RECORD_MARKER:
                (void) snprintf(buf, n, "%s(marker_name=%.60s, marker_id=%.100s)", name,
                                c->activity_type, c->workflow_id);
                break;
        case COMMAND_COMPLETE_WORKFLOW_UPDATE:
                (void) snprintf(buf, n, "%s(update_id=%.100s)", name, c->update_id);
                break;
        default:
                (void) snprintf(buf, n, "%s", name);
        }
}

/* ---- event attributes ------------------------------------------------------------------------ */

static int attr_uint(Run *r, const Event *e, const char *key, uint64_t *ret) {
        const msgpack_object *v = msg_get(e->attrs, key);

        if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return run_error(r, -EBADMSG, NULL,
                                 "history event %llu: attribute \"%s\" must be an unsigned integer",
                                 (unsigned long long) e->id, key);
        *ret = v->via.u64;
        return 0;
}

/* The string attribute @key as pointer + length ("" when absent or not a string). */
static int attr_strn(const Event *e, const char *key, const char **ret) {
        const msgpack_object *v = msg_get(e->attrs, key);

        if (!v || v->type != MSGPACK_OBJECT_STR) {
                *ret = "";
                return 0;
        }
        *ret = v->via.str.ptr;
        return (int) MIN(v->via.str.size, 256u);
}

static bool attr_str_eq(const Event *e, const char *key, const char *s) {
        return msg_str_eq(msg_get(e->attrs, key), s);
}

/* Decodes payload attribute @key into the run's zone; absent means nil. */
static int attr_payload(Run *r, const Event *e, const char *key, msgpack_object *ret) {
        const msgpack_object *v = msg_get(e->attrs, key);
        int k;

        if (!v) {
                *ret = (msgpack_object){ .type = MSGPACK_OBJECT_NIL };
                return 0;
        }
        if (v->type != MSGPACK_OBJECT_BIN)
                return run_error(r, -EBADMSG, NULL,
                                 "history event %llu: attribute \"%s\" must be a payload",
                                 (unsigned long long) e->id, key);
        k = object_from_payload(v->via.bin.ptr, v->via.bin.size, r->zone, ret);
        if (k == -EBADMSG)
                return run_error(r, k, NULL, "history event %llu: attribute \"%s\" is not msgpack",
                                 (unsigned long long) e->id, key);
        return k;
}

static void describe_event(const Event *e, char *buf, size_t n) {
        const char *name = event_type_to_string(e->type), *a, *b;
        const msgpack_object *v;
        int na, nb;

        switch (e->type) {
        case EVENT_ACTIVITY_TASK_SCHEDULED:
                na = attr_strn(e, "activity_id", &a);
                nb = attr_strn(e, "activity_type", &b);
                (void) snprintf(buf, n, "%s(activity_id=%.*s, type=%.*s)", name, na, a, nb, b);
                break;
        case EVENT_TIMER_STARTED:
        case EVENT_TIMER_CANCELED:
                na = attr_strn(e, "timer_id", &a);
                (void) snprintf(buf, n, "%s(timer_id=%.*s)", name, na, a);
                break;
        case EVENT_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                na = attr_strn(e, "workflow_id", &a);
                nb = attr_strn(e, "workflow_type", &b);
                (void) snprintf(buf, n, "%s(workflow_id=%.*s, type=%.*s)", name, MIN(na, 100), a,
                                MIN(nb, 100), b);
                break;
        case EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
                na = attr_strn(e, "workflow_id", &a);
                (void) snprintf(buf, n, "%s(workflow_id=%.*s)", name, MIN(na, 100), a);
                break;
        case EVENT_MARKER_RECORDED:
                na = attr_strn(e, "marker_name", &a);
                nb = attr_strn(e, "marker_id", &b);
                (void) snprintf(buf, n, "%s(marker_name=%.*s, marker_id=%.*s)", name, MIN(na, 60),
                                a, MIN(nb, 100), b);
                break;
        case EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                na = attr_strn(e, "update_id", &a);
                (void) snprintf(buf, n, "%s(update_id=%.*s)", name, MIN(na, 100), a);
                break;
        case EVENT_ACTIVITY_TASK_CANCEL_REQUESTED:
                v = msg_get(e->attrs, "scheduled_event_id");
                (void) snprintf(buf, n, "%s(scheduled_event_id=%llu)", name,
                                v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                                        ? (unsigned long long) v->via.u64
                                        : 0ULL);
                break;
        default:
                (void) snprintf(buf, n, "%s", name);
        }
}

static int event_parse(Run *r, const msgpack_object *o, Event *ret) {
        const msgpack_object *id, *type, *time, *attrs;
        char name[64];

        id = msg_get(o, "event_id");
        type = msg_get(o, "event_type");
        time = msg_get(o, "time");
        attrs = msg_get(o, "attributes");
        if (!id || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !type ||
            type->type != MSGPACK_OBJECT_STR || type->via.str.size >= sizeof(name) ||
            (time && time->type != MSGPACK_OBJECT_POSITIVE_INTEGER) ||
            (attrs && attrs->type != MSGPACK_OBJECT_MAP))
                return run_error(r, -EBADMSG, NULL, "malformed history event");
        memcpy(name, type->via.str.ptr, type->via.str.size);
        name[type->via.str.size] = 0;
        *ret = (Event){
                .id = id->via.u64,
                .type = event_type_from_string(name),
                .time = time ? time->via.u64 : 0,
                .attrs = attrs,
        };
        if (ret->type < 0)
                return run_error(r, -EBADMSG, NULL, "history event %llu has unknown type '%s'",
                                 (unsigned long long) ret->id, name);
        return 0;
}

/* ---- futures --------------------------------------------------------------------------------- */

dur_future *run_new_future(Run *r, FutureKind kind) {
        dur_future *f = calloc(1, sizeof(*f));

        if (!f)
                return NULL;
        f->run = r;
        f->kind = kind;
        f->value.type = MSGPACK_OBJECT_NIL;
        f->detached = r->current && r->current->detached > 0;
        LIST_PREPEND(futures, r->pending, f);
        return f;
}

void run_resolve_future(Run *r, dur_future *f, int result, dur_failure *failure) {
        assert(!f->done);
        f->done = true;
        f->result = result;
        f->failure = failure;
        LIST_REMOVE(futures, r->pending, f);
        LIST_PREPEND(futures, r->resolved, f);
}

void run_forget_future(Run *r, dur_future *f) {
        assert(!f->command);
        if (f->done)
                LIST_REMOVE(futures, r->resolved, f);
        else
                LIST_REMOVE(futures, r->pending, f);
        failure_free(f->failure);
        free(f->child_workflow_id);
        free(f->name);
        free(f);
}

static void futures_free(dur_future **head) {
        dur_future *f, *n;

        LIST_FOREACH_SAFE(futures, f, n, *head) {
                LIST_REMOVE(futures, *head, f);
                failure_free(f->failure);
                free(f->child_workflow_id);
                free(f->name);
                free(f);
        }
}

/* A started child is asked to cancel and its future resolves when it closes (Temporal's default
 * child cancellation type, WAIT_CANCELLATION_COMPLETED). */
static int run_cancel_child(Run *r, dur_future *f) {
        Command tmpl = { .type = COMMAND_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
                         .workflow_id = f->child_workflow_id };
        msgpack_sbuffer sb;
        msgpack_packer pk;
        int k;

        if (f->cancel_sent)
                return 0;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        k = msgpack_pack_map(&pk, 1);
        if (k >= 0)
                k = msg_pack_kv_str(&pk, "workflow_id", f->child_workflow_id);
        k = k < 0 ? -ENOMEM : run_add_command(r, &tmpl, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        if (k >= 0)
                f->cancel_sent = true;
        return k;
}

int run_cancel_future(Run *r, dur_future *f) {
        Command tmpl = { .future = NULL };
        int k = 0;

        if (f->done)
                return 0;
        if (f->kind == FUTURE_CHILD && !f->command)
                return run_cancel_child(r, f);
        if (f->command) {
                /* Issued by this execution point and not sent: it never happened. */
                command_free(r, f->command);
                f->command = NULL;
        } else if (f->kind == FUTURE_ACTIVITY && f->cancel_type == DUR_ACTIVITY_CANCEL_ABANDON) {
                /* No request: the activity runs on and its outcome is dropped. */
        } else if (f->kind == FUTURE_ACTIVITY) {
                if (f->cancel_sent)
                        return 0;
                tmpl.type = COMMAND_REQUEST_CANCEL_ACTIVITY_TASK;
                tmpl.scheduled_event_id = f->scheduled_event_id;
                k = run_add_simple_command(r, &tmpl, "scheduled_event_id", NULL,
                                           f->scheduled_event_id);
                if (k >= 0 && f->cancel_type == DUR_ACTIVITY_CANCEL_WAIT_CANCELLATION_COMPLETED) {
                        /* It resolves with what the activity reports (on_activity_closed()). */
                        f->cancel_sent = true;
                        return 0;
                }
        } else {
                tmpl.type = COMMAND_CANCEL_TIMER;
                memcpy(tmpl.id, f->id, sizeof(tmpl.id));
                k = run_add_simple_command(r, &tmpl, "timer_id", f->id, 0);
        }
        if (k < 0)
                return k;
        /* Temporal's TRY_CANCEL: the future resolves now; a late result is ignored. */
        run_resolve_future(r, f, DUR_CANCELED, NULL);
        return 0;
}

static dur_future *find_activity(Run *r, uint64_t scheduled_event_id) {
        dur_future *f;

        LIST_FOREACH(futures, f, r->pending)
                if (f->kind == FUTURE_ACTIVITY && f->scheduled_event_id == scheduled_event_id)
                        return f;
        return NULL;
}

static dur_future *find_child(Run *r, uint64_t initiated_event_id) {
        dur_future *f;

        LIST_FOREACH(futures, f, r->pending)
                if (f->kind == FUTURE_CHILD && f->scheduled_event_id == initiated_event_id)
                        return f;
        return NULL;
}

static dur_future *find_timer(Run *r, const Event *e) {
        dur_future *f;

        LIST_FOREACH(futures, f, r->pending)
                if (f->kind == FUTURE_TIMER && attr_str_eq(e, "timer_id", f->id))
                        return f;
        return NULL;
}

/* ---- routines -------------------------------------------------------------------------------- */

static Routine *routine_free(Run *r, Routine *rt) {
        if (!rt)
                return NULL;
        LIST_REMOVE(routines, r->routines, rt);
        coro_free(rt->coro);
        free(rt->name);
        free(rt->update_id);
        msgpack_sbuffer_destroy(&rt->update_result);
        free(rt);
        return NULL;
}

static void routine_entry(void *userdata) {
        Routine *rt = userdata;
        Run *r = rt->run;
        msgpack_packer pk;

        if (rt->signal_fn)
                rt->ret = rt->signal_fn(r, rt->input);
        else if (rt->is_update && rt->update) {
                msgpack_packer_init(&pk, &rt->update_result, msgpack_sbuffer_write);
                rt->ret = rt->update->fn(r, rt->input, &pk);
        } else if (rt->is_update)
                rt->ret = dur_fail(r, "UpdateNotFound", true,
                                   "the workflow code has no handler for this update");
        else if (rt->go_fn)
                rt->ret = rt->go_fn(r, rt->go_arg);
        else {
                msgpack_packer_init(&pk, &r->main_result, msgpack_sbuffer_write);
                rt->ret = r->def->run(r, rt->input, &pk);
        }
}

static int routine_new(Run *r, const char *name, Routine **ret) {
        Routine *rt;
        int k;

        rt = calloc(1, sizeof(*rt));
        if (!rt)
                return -ENOMEM;
        rt->run = r;
        msgpack_sbuffer_init(&rt->update_result);
        /* In the run's zone, not in the routine: user code may keep the pointer for the run. */
        rt->input = msgpack_zone_malloc(r->zone, sizeof(*rt->input));
        if (!rt->input) {
                free(rt);
                return -ENOMEM;
        }
        rt->input->type = MSGPACK_OBJECT_NIL;
        rt->name = strdup(name);
        if (!rt->name) {
                free(rt);
                return -ENOMEM;
        }
        k = coro_new(&rt->coro, 0, routine_entry, rt);
        if (k < 0) {
                free(rt->name);
                free(rt);
                return k;
        }
        LIST_APPEND(routines, r->routines, rt);
        *ret = rt;
        return 0;
}

int run_spawn(Run *r, int (*fn)(dur_wf *wf, void *arg), void *arg) {
        Routine *rt;
        char name[32];
        int k;

        assert_return(fn, -EINVAL);
        if (!run_can_issue(r))
                return -EDEADLK;
        (void) snprintf(name, sizeof(name), "coroutine %u", ++r->routine_seq);
        k = routine_new(r, name, &rt);
        if (k < 0)
                return k;
        rt->go_fn = fn;
        rt->go_arg = arg;
        rt->detached = r->current->detached > 0;
        return 0;
}

bool run_can_issue(const Run *r) {
        return r->executing && r->current && !r->in_query;
}

int run_block(Run *r, routine_ready_fn ready, void *userdata) {
        Routine *rt = r->current;

        /* A call that does not need to wait is allowed anywhere and sees no cancellation. */
        if (ready(r, userdata))
                return 0;
        if (!rt || r->in_query || coro_current() != rt->coro)
                return -EDEADLK;
        for (;;) {
                /* The cancel request reaches each routine once, at its next wait outside
                 * dur_detached(): after that, compensation code may block on new activities
                 * normally. */
                if (rt->canceled && !rt->detached) {
                        rt->canceled = false;
                        return DUR_CANCELED;
                }
                if (ready(r, userdata))
                        return 0;
                rt->ready = ready;
                rt->ready_arg = userdata;
                coro_yield();
                rt->ready = NULL;
        }
}

/* ---- closing the run ------------------------------------------------------------------------- */

static int pack_fail_attrs(Run *r, msgpack_packer *pk) {
        dur_failure *generic = NULL;
        int k;

        if (!r->failure) {
                generic = failure_new("WorkflowError", false,
                                      r->main_ret == DUR_CANCELED
                                              ? "workflow function returned DUR_CANCELED"
                                              : "workflow failed");
                if (!generic)
                        return -ENOMEM;
        }
        k = msgpack_pack_map(pk, 1);
        if (k >= 0)
                k = msg_pack_str(pk, "failure");
        if (k >= 0)
                k = failure_pack(r->failure ? r->failure : generic, pk);
        failure_free(generic);
        return k;
}

static int pack_close_attrs(Run *r, CommandType type, msgpack_sbuffer *sb) {
        msgpack_packer pk;
        int k;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        switch (type) {
        case COMMAND_COMPLETE_WORKFLOW_EXECUTION:
                if (r->main_result.size == 0)
                        return msgpack_pack_map(&pk, 0);
                k = msgpack_pack_map(&pk, 1);
                return k < 0 ? k
                             : msg_pack_kv_bin(&pk, "result", r->main_result.data,
                                               r->main_result.size);
        case COMMAND_FAIL_WORKFLOW_EXECUTION:
                return pack_fail_attrs(r, &pk);
        default:
                return msgpack_pack_map(&pk, 0);
        }
}

static int run_issue_close(Run *r) {
        Command tmpl = { .type = COMMAND_FAIL_WORKFLOW_EXECUTION };
        msgpack_sbuffer sb;
        int k;

        if (r->main_ret == 0)
                tmpl.type = COMMAND_COMPLETE_WORKFLOW_EXECUTION;
        else if (r->main_ret == DUR_CANCELED && r->cancel_requested)
                tmpl.type = COMMAND_CANCEL_WORKFLOW_EXECUTION;
        else if (r->main_ret == DUR_CONTINUED_AS_NEW)
                tmpl.type = COMMAND_CONTINUE_AS_NEW_WORKFLOW_EXECUTION;

        msgpack_sbuffer_init(&sb);
        if (tmpl.type == COMMAND_CONTINUE_AS_NEW_WORKFLOW_EXECUTION)
                /* Packed by dur_continue_as_new(). */
                k = run_add_command(r, &tmpl, r->continue_attrs.data, r->continue_attrs.size);
        else if (pack_close_attrs(r, tmpl.type, &sb) >= 0)
                k = run_add_command(r, &tmpl, sb.data, sb.size);
        else
                k = -ENOMEM;
        msgpack_sbuffer_destroy(&sb);
        if (k < 0)
                return k;
        r->closed = true;
        return 0;
}

/* The CompleteWorkflowUpdate command of a finished update handler: its result, or its failure
 * (as in Temporal, an update handler that fails fails its update, never the workflow). */
static int update_finished(Run *r, Routine *rt) {
        Command tmpl = { .type = COMMAND_COMPLETE_WORKFLOW_UPDATE, .update_id = rt->update_id };
        static const char nil = (char) 0xc0;
        dur_failure *generic = NULL;
        const dur_failure *f = NULL;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        char msg[400];
        int k;

        if (rt->ret == 0 && rt->update_result.size > 0 &&
            msg_validate(rt->update_result.data, rt->update_result.size) < 0) {
                rt->ret = -EBADMSG;
                (void) snprintf(msg, sizeof(msg), "%s packed more or less than one msgpack value",
                                rt->name);
        } else
                (void) snprintf(msg, sizeof(msg), "%s returned %d", rt->name, rt->ret);
        if (rt->ret != 0) {
                f = rt->ret == DUR_FAILED && r->failure ? r->failure : NULL;
                if (!f)
                        f = generic = failure_new("UpdateError", false, msg);
                if (!f)
                        return -ENOMEM;
        }
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        k = msgpack_pack_map(&pk, 2);
        if (k >= 0)
                k = msg_pack_kv_str(&pk, "update_id", rt->update_id);
        if (k >= 0 && f) {
                k = msg_pack_str(&pk, "failure");
                if (k >= 0)
                        k = failure_pack(f, &pk);
        } else if (k >= 0 && rt->update_result.size > 0)
                k = msg_pack_kv_bin(&pk, "result", rt->update_result.data, rt->update_result.size);
        else if (k >= 0)
                k = msg_pack_kv_bin(&pk, "result", &nil, 1);
        k = k < 0 ? -ENOMEM : run_add_command(r, &tmpl, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        failure_free(generic);
        return k;
}

/* What a finished routine's return value means. The main function's DUR_FAILED fails the run;
 * anything unexpected fails the workflow task instead, so that a fixed worker can retry it. */
static int routine_finished(Run *r, Routine *rt) {
        bool is_main = !rt->signal_fn && !rt->go_fn && !rt->is_update;
        int ret = rt->ret;

        if (rt->is_update)
                return update_finished(r, rt);
        if (ret == DUR_CANCELED && r->cancel_requested)
                ret = 0;
        if (is_main) {
                if (rt->ret == 0 && r->main_result.size > 0 &&
                    msg_validate(r->main_result.data, r->main_result.size) < 0)
                        return run_error(
                                r, -EPROTO, CAUSE_WORKFLOW_ERROR,
                                "workflow function packed more or less than one msgpack value as its result");
                if (rt->ret == DUR_FAILED || rt->ret == DUR_CANCELED ||
                    (rt->ret == DUR_CONTINUED_AS_NEW && r->continue_requested))
                        ret = 0;
        }
        if (ret != 0)
                return run_error(r, -EPROTO, CAUSE_WORKFLOW_ERROR,
                                 "%s of workflow '%s' returned %d", rt->name, r->def->name,
                                 rt->ret);
        if (is_main) {
                r->main_finished = true;
                r->main_ret = rt->ret;
        }
        return 0;
}

/* ---- execution points ------------------------------------------------------------------------ */

static bool routine_runnable(Run *r, Routine *rt) {
        return !rt->ready || (rt->canceled && !rt->detached) || rt->ready(r, rt->ready_arg);
}

static int routine_step(Run *r, Routine *rt) {
        int k;

        r->current = rt;
        k = coro_resume(rt->coro);
        r->current = NULL;
        if (k <= 0)
                return k;
        k = routine_finished(r, rt);
        routine_free(r, rt);
        return k;
}

/* Runs ready routines in creation order, again and again, until none can move. Readiness
 * (including wait_condition predicates) is re-evaluated before every step. */
static int run_scheduler(Run *r) {
        for (;;) {
                bool progress = false;
                Routine *rt, *n;
                int k;

                LIST_FOREACH_SAFE(routines, rt, n, r->routines) {
                        if (!routine_runnable(r, rt))
                                continue;
                        k = routine_step(r, rt);
                        if (k < 0)
                                return k;
                        progress = true;
                }
                if (!progress)
                        return 0;
        }
}

/* The workflow's cancel request reaches every routine that exists now and every pending
 * future, once, except the futures of dur_detached() scopes. Routines created later (a
 * compensation's activities) run normally. */
static int run_deliver_cancel(Run *r) {
        dur_future *f, *n;
        Routine *rt;
        int k;

        r->cancel_delivered = true;
        LIST_FOREACH(routines, rt, r->routines)
                rt->canceled = true;
        LIST_FOREACH_SAFE(futures, f, n, r->pending) {
                if (f->detached)
                        continue;
                k = run_cancel_future(r, f);
                if (k < 0)
                        return k;
        }
        return 0;
}

static int run_execute(Run *r, const Event *e, bool replaying) {
        int k = 0;

        r->now = e->time;
        r->replaying = replaying;
        r->executing = true;
        if (r->cancel_requested && !r->cancel_delivered && !r->closed)
                k = run_deliver_cancel(r);
        if (k >= 0)
                k = run_scheduler(r);
        if (k >= 0 && r->error_cause)
                k = -EPROTO; /* run_fail_task() from workflow code */
        if (k >= 0 && r->main_finished && !r->closed)
                k = run_issue_close(r);
        r->executing = false;
        r->n_markers = 0;
        return k;
}

/* ---- event handlers -------------------------------------------------------------------------- */

static int on_execution_started(Run *r, const Event *e) {
        const msgpack_object *v;
        Routine *rt;
        int k;

        if (r->started)
                return run_error(r, -EBADMSG, NULL,
                                 "history event %llu: a second WorkflowExecutionStarted",
                                 (unsigned long long) e->id);
        k = routine_new(r, "main function", &rt);
        if (k < 0)
                return k;
        r->started = true;
        v = msg_get(e->attrs, "attempt");
        if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= UINT32_MAX)
                r->attempt = (unsigned) v->via.u64;
        return attr_payload(r, e, "input", rt->input);
}

static int on_task_scheduled(Run *r, const Event *e) {
        char have[256];

        if (!r->commands)
                return 0;
        describe_command(r->commands, have, sizeof(have));
        return run_error(
                r, -EPROTO, CAUSE_NON_DETERMINISTIC,
                "non-deterministic workflow: history event %llu is WorkflowTaskScheduled but the code issued %s",
                (unsigned long long) e->id, have);
}

/* An UpsertWorkflowSearchAttributes of TemporalChangeVersion alone: dur_patched()'s bookkeeping. */
static bool is_change_version_event(const Event *e) {
        const msgpack_object *sa = msg_get(e->attrs, "search_attributes");

        return sa && sa->type == MSGPACK_OBJECT_MAP && sa->via.map.size == 1 &&
               msg_str_eq(&sa->via.map.ptr[0].key, CHANGE_VERSION_ATTR);
}

/* Events of dur_patched() and dur_deprecate_patch() that replay may meet without a command (as
 * Temporal's SDKs do): a patch marker whose call the code no longer makes (a deprecated patch
 * removed, or a patched() call removed after all runs took the new branch), and the
 * TemporalChangeVersion upsert, issued only when a patch marker is new. */
static bool skippable_without_command(const Event *e) {
        if (e->type == EVENT_MARKER_RECORDED)
                return attr_str_eq(e, "marker_name", MARKER_PATCH);
        return e->type == EVENT_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES && is_change_version_event(e);
}

static bool command_matches(const Command *c, const Event *e) {
        static const EventType event_of[_COMMAND_TYPE_MAX] = {
                [COMMAND_SCHEDULE_ACTIVITY_TASK] = EVENT_ACTIVITY_TASK_SCHEDULED,
                [COMMAND_REQUEST_CANCEL_ACTIVITY_TASK] = EVENT_ACTIVITY_TASK_CANCEL_REQUESTED,
                [COMMAND_START_TIMER] = EVENT_TIMER_STARTED,
                [COMMAND_CANCEL_TIMER] = EVENT_TIMER_CANCELED,
                [COMMAND_COMPLETE_WORKFLOW_EXECUTION] = EVENT_WORKFLOW_EXECUTION_COMPLETED,
                [COMMAND_FAIL_WORKFLOW_EXECUTION] = EVENT_WORKFLOW_EXECUTION_FAILED,
                [COMMAND_CANCEL_WORKFLOW_EXECUTION] = EVENT_WORKFLOW_EXECUTION_CANCELED,
                [COMMAND_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES] =
                        EVENT_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                [COMMAND_CONTINUE_AS_NEW_WORKFLOW_EXECUTION] =
                        EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
                [COMMAND_START_CHILD_WORKFLOW_EXECUTION] =
                        EVENT_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
                [COMMAND_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION] =
                        EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
                [COMMAND_RECORD_MARKER] = EVENT_MARKER_RECORDED,
                [COMMAND_COMPLETE_WORKFLOW_UPDATE] = EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        };
        const msgpack_object *v;

        if (event_of[c->type] != e->type)
                return false;
        switch (c->type) {
        case COMMAND_SCHEDULE_ACTIVITY_TASK:
                return attr_str_eq(e, "activity_id", c->id) &&
                       attr_str_eq(e, "activity_type", c->activity_type);
        case COMMAND_START_TIMER:
        case COMMAND_CANCEL_TIMER:
                return attr_str_eq(e, "timer_id", c->id);
        case COMMAND_START_CHILD_WORKFLOW_EXECUTION:
                return attr_str_eq(e, "workflow_id", c->workflow_id) &&
                       attr_str_eq(e, "workflow_type", c->activity_type);
        case COMMAND_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION:
                return attr_str_eq(e, "workflow_id", c->workflow_id);
        case COMMAND_COMPLETE_WORKFLOW_UPDATE:
                return attr_str_eq(e, "update_id", c->update_id);
        case COMMAND_REQUEST_CANCEL_ACTIVITY_TASK:
                v = msg_get(e->attrs, "scheduled_event_id");
                return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                       v->via.u64 == c->scheduled_event_id;
        case COMMAND_RECORD_MARKER:
                return attr_str_eq(e, "marker_name", c->activity_type) &&
                       attr_str_eq(e, "marker_id", c->workflow_id);
        case COMMAND_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                return c->change_version == is_change_version_event(e);
        default:
                return true;
        }
}

static int on_command_event(Run *r, const Event *e) {
        char have[256], want[256];
        Command *c = r->commands;

        if ((!c || !command_matches(c, e)) && skippable_without_command(e))
                return 0;
        if (!c || !command_matches(c, e)) {
                describe_event(e, want, sizeof(want));
                if (c)
                        describe_command(c, have, sizeof(have));
                return run_error(
                        r, -EPROTO, CAUSE_NON_DETERMINISTIC,
                        "non-deterministic workflow: history event %llu is %s but the code issued %s",
                        (unsigned long long) e->id, want, c ? have : "nothing");
        }
        if (c->future) {
                c->future->command = NULL;
                if (e->type == EVENT_ACTIVITY_TASK_SCHEDULED ||
                    e->type == EVENT_START_CHILD_WORKFLOW_EXECUTION_INITIATED)
                        c->future->scheduled_event_id = e->id;
        }
        command_free(r, c);
        return 0;
}

static int on_activity_closed(Run *r, const Event *e) {
        const msgpack_object *fo;
        dur_failure *failure;
        uint64_t sched = 0;
        dur_future *f;
        int k;

        k = attr_uint(r, e, "scheduled_event_id", &sched);
        if (k < 0)
                return k;
        f = find_activity(r, sched);
        if (!f)
                return 0; /* cancelled already (TRY_CANCEL): the late outcome is dropped */
        switch (e->type) {
        case EVENT_ACTIVITY_TASK_COMPLETED:
                k = attr_payload(r, e, "result", &f->value);
                if (k < 0)
                        return k;
                run_resolve_future(r, f, 0, NULL);
                return 0;
        case EVENT_ACTIVITY_TASK_CANCELED:
                run_resolve_future(r, f, DUR_CANCELED, NULL);
                return 0;
        default: /* Failed, TimedOut */
                fo = msg_get(e->attrs, "failure");
                failure = fo ? failure_from_object(fo)
                             : failure_new("ActivityError", false, "activity failed");
                if (!failure)
                        return -ENOMEM;
                run_resolve_future(r, f, DUR_FAILED, failure);
                return 0;
        }
}

/* A child's failure as the parent sees it: ChildWorkflowFailure, caused by what the child's
 * failure map says (with its own cause chain), as Temporal's SDKs wrap it. */
static dur_failure *child_failure(const Event *e, const dur_future *f, const char *what) {
        const msgpack_object *fo = msg_get(e->attrs, "failure");
        char message[256];
        dur_failure *outer, *cause = NULL;

        (void) snprintf(message, sizeof(message), "child workflow '%.100s' %s",
                        f->child_workflow_id, what);
        outer = failure_new("ChildWorkflowFailure", false, message);
        if (outer && fo && fo->type == MSGPACK_OBJECT_MAP) {
                cause = failure_from_object(fo);
                if (!cause)
                        return failure_free(outer);
                failure_set_cause(outer, cause);
        }
        return outer;
}

static int on_child_event(Run *r, const Event *e) {
        uint64_t initiated = 0;
        dur_failure *failure;
        char cause[80];
        const char *p;
        dur_future *f;
        int k, n;

        k = attr_uint(r, e, "initiated_event_id", &initiated);
        if (k < 0)
                return k;
        f = find_child(r, initiated);
        if (!f)
                return 0; /* resolved already */
        switch (e->type) {
        case EVENT_CHILD_WORKFLOW_EXECUTION_STARTED:
                n = attr_strn(e, "run_id", &p);
                (void) snprintf(f->child_run_id, sizeof(f->child_run_id), "%.*s", n, p);
                f->child_started = true;
                return 0;
        case EVENT_CHILD_WORKFLOW_EXECUTION_COMPLETED:
                k = attr_payload(r, e, "result", &f->value);
                if (k < 0)
                        return k;
                run_resolve_future(r, f, 0, NULL);
                return 0;
        case EVENT_CHILD_WORKFLOW_EXECUTION_CANCELED:
                run_resolve_future(r, f, DUR_CANCELED, NULL);
                return 0;
        case EVENT_START_CHILD_WORKFLOW_EXECUTION_FAILED:
                /* The cause is the failure's type: WorkflowAlreadyExists (the child's id is
                 * running) or PendingChildWorkflowsLimitExceeded. */
                n = attr_strn(e, "cause", &p);
                (void) snprintf(cause, sizeof(cause), "%.*s", n, p);
                failure = failure_new(cause, true, "the child workflow could not start");
                break;
        case EVENT_CHILD_WORKFLOW_EXECUTION_FAILED:
                failure = child_failure(e, f, "failed");
                break;
        case EVENT_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
                failure = child_failure(e, f, "timed out");
                break;
        default:
                failure = child_failure(e, f, "was terminated");
                break;
        }
        if (!failure)
                return -ENOMEM;
        run_resolve_future(r, f, DUR_FAILED, failure);
        return 0;
}

static int on_timer_fired(Run *r, const Event *e) {
        dur_future *f = find_timer(r, e);

        if (f)
                run_resolve_future(r, f, 0, NULL);
        return 0;
}

static const dur_signal_def *find_signal(const Run *r, const Event *e) {
        for (const dur_signal_def *s = r->def->signals; s && s->name; s++)
                if (attr_str_eq(e, "signal_name", s->name))
                        return s;
        return NULL;
}

static int on_signaled(Run *r, const Event *e) {
        const dur_signal_def *s = find_signal(r, e);
        char name[300];
        Routine *rt;
        const char *p;
        int k, n;

        if (!s) {
                /* As Temporal: a signal nobody handles is dropped, not an error. */
                n = attr_strn(e, "signal_name", &p);
                dur_log(LOG_WARNING, "Workflow '%s' run %s: dropped signal '%.*s' (no handler)",
                        r->workflow_id, r->run_id, n, p);
                return 0;
        }
        (void) snprintf(name, sizeof(name), "signal handler '%s'", s->name);
        k = routine_new(r, name, &rt);
        if (k < 0)
                return k;
        rt->signal_fn = s->fn;
        return attr_payload(r, e, "input", rt->input);
}

/* The MarkerRecorded events of the task completed right after the batch's current event: its
 * command events follow its WorkflowTaskCompleted, up to the next WorkflowTaskStarted. Side
 * effects and patches read them before the commands are matched. */
static int collect_markers(Run *r) {
        r->n_markers = 0;
        r->markers_task_id = r->next_event_id + 1; /* the WorkflowTaskCompleted */
        for (uint32_t i = r->batch_index + 2; i < r->batch->via.array.size; i++) {
                Event m;
                int k = event_parse(r, &r->batch->via.array.ptr[i], &m);

                if (k < 0)
                        return k;
                if (m.type == EVENT_WORKFLOW_TASK_STARTED)
                        break;
                if (m.type != EVENT_MARKER_RECORDED)
                        continue;
                if (r->n_markers == r->markers_alloc) {
                        size_t n = r->markers_alloc ? 2 * r->markers_alloc : 8;
                        RunMarker *p = reallocarray(r->markers, n, sizeof(*p));

                        if (!p)
                                return -ENOMEM;
                        r->markers = p;
                        r->markers_alloc = n;
                }
                r->markers[r->n_markers++] = (RunMarker){ .event_id = m.id, .attrs = m.attrs };
        }
        return 0;
}

const RunMarker *run_take_marker(Run *r, const char *name, const char *id) {
        for (size_t i = 0; i < r->n_markers; i++) {
                RunMarker *m = &r->markers[i];

                if (!m->taken && msg_str_eq(msg_get(m->attrs, "marker_name"), name) &&
                    msg_str_eq(msg_get(m->attrs, "marker_id"), id)) {
                        m->taken = true;
                        return m;
                }
        }
        return NULL;
}

int run_marker_details(Run *r, const RunMarker *m, msgpack_object *ret) {
        Event e = { .id = m->event_id, .type = EVENT_MARKER_RECORDED, .attrs = m->attrs };

        return attr_payload(r, &e, "details", ret);
}

int run_marker_missing(Run *r, const char *name, const char *id) {
        return run_fail_task(r, true,
                             "the workflow task completed at history event %llu recorded no "
                             "MarkerRecorded(marker_name=%s, marker_id=%.100s) but the code issued "
                             "RecordMarker(marker_name=%s, marker_id=%.100s)",
                             (unsigned long long) r->markers_task_id, name, id, name, id);
}

static bool never_ready(Run *r, void *userdata) {
        return false;
}

int run_fail_task(Run *r, bool nondeterministic, const char *fmt, ...) {
        Routine *rt = r->current;
        char msg[400];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (!r->error_cause && nondeterministic)
                (void) run_error(r, -EPROTO, CAUSE_NON_DETERMINISTIC,
                                 "non-deterministic workflow: %s", msg);
        else if (!r->error_cause)
                (void) run_error(r, -EPROTO, CAUSE_WORKFLOW_ERROR, "%s", msg);
        if (!rt || coro_current() != rt->coro)
                return -EPROTO;
        /* The execution point fails (run_execute()) and the run is discarded: park for good. */
        rt->ready = never_ready;
        rt->canceled = false;
        for (;;)
                coro_yield();
}

static const dur_update_def *find_update(const Run *r, const char *name, size_t len) {
        for (const dur_update_def *u = r->def->updates; u && u->name; u++)
                if (strlen(u->name) == len && memcmp(u->name, name, len) == 0)
                        return u;
        return NULL;
}

/* An accepted update gets its handler's coroutine, as a signal does; on replay it runs again
 * and issues the same CompleteWorkflowUpdate, matched with the recorded event. */
static int on_update_accepted(Run *r, const Event *e) {
        const msgpack_object *id = msg_get(e->attrs, "update_id");
        const char *name;
        char what[300];
        Routine *rt;
        int k, n;

        if (!id || id->type != MSGPACK_OBJECT_STR)
                return run_error(r, -EBADMSG, NULL,
                                 "history event %llu: attribute \"update_id\" must be a string",
                                 (unsigned long long) e->id);
        n = attr_strn(e, "update_name", &name);
        (void) snprintf(what, sizeof(what), "update handler '%.*s'", n, name);
        k = routine_new(r, what, &rt);
        if (k < 0)
                return k;
        rt->is_update = true;
        rt->update = find_update(r, name, (size_t) n);
        rt->update_id = strndup(id->via.str.ptr, id->via.str.size);
        if (!rt->update_id)
                return -ENOMEM;
        return attr_payload(r, e, "input", rt->input);
}

/* @next is the following event, NULL when @e ends the batch. */
static int on_task_started(Run *r, const Event *e, const Event *next) {
        int k;

        if (next) {
                if (next->type != EVENT_WORKFLOW_TASK_COMPLETED)
                        return 0;
                k = collect_markers(r);
                return k < 0 ? k : run_execute(r, e, true);
        }
        k = run_execute(r, e, false);
        if (k < 0)
                return k;
        r->executed_event_id = e->id;
        return 0;
}

static int on_task_failed(Run *r, const Event *e) {
        /* The attempt we executed last left no trace: our routines ran ahead of history. */
        if (r->executed_event_id != 0 && e->id == r->executed_event_id + 1)
                return run_error(r, -ESTALE, NULL, "workflow task %llu failed or timed out",
                                 (unsigned long long) r->executed_event_id);
        return 0;
}

static int apply_event(Run *r, const Event *e, const Event *next) {
        switch (e->type) {
        case EVENT_WORKFLOW_EXECUTION_STARTED:
                return on_execution_started(r, e);
        case EVENT_WORKFLOW_TASK_SCHEDULED:
                return on_task_scheduled(r, e);
        case EVENT_WORKFLOW_TASK_STARTED:
                return on_task_started(r, e, next);
        case EVENT_WORKFLOW_TASK_FAILED:
        case EVENT_WORKFLOW_TASK_TIMED_OUT:
                return on_task_failed(r, e);
        case EVENT_ACTIVITY_TASK_SCHEDULED:
        case EVENT_ACTIVITY_TASK_CANCEL_REQUESTED:
        case EVENT_TIMER_STARTED:
        case EVENT_TIMER_CANCELED:
        case EVENT_WORKFLOW_EXECUTION_COMPLETED:
        case EVENT_WORKFLOW_EXECUTION_FAILED:
        case EVENT_WORKFLOW_EXECUTION_CANCELED:
        case EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        case EVENT_MARKER_RECORDED:
        case EVENT_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        case EVENT_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        case EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        case EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                return on_command_event(r, e);
        case EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                return on_update_accepted(r, e);
        case EVENT_START_CHILD_WORKFLOW_EXECUTION_FAILED:
        case EVENT_CHILD_WORKFLOW_EXECUTION_STARTED:
        case EVENT_CHILD_WORKFLOW_EXECUTION_COMPLETED:
        case EVENT_CHILD_WORKFLOW_EXECUTION_FAILED:
        case EVENT_CHILD_WORKFLOW_EXECUTION_CANCELED:
        case EVENT_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
        case EVENT_CHILD_WORKFLOW_EXECUTION_TERMINATED:
                return on_child_event(r, e);
        case EVENT_ACTIVITY_TASK_COMPLETED:
        case EVENT_ACTIVITY_TASK_FAILED:
        case EVENT_ACTIVITY_TASK_TIMED_OUT:
        case EVENT_ACTIVITY_TASK_CANCELED:
                return on_activity_closed(r, e);
        case EVENT_TIMER_FIRED:
                return on_timer_fired(r, e);
        case EVENT_WORKFLOW_EXECUTION_SIGNALED:
                return on_signaled(r, e);
        case EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
                r->cancel_requested = true;
                return 0;
        default:
                /* WorkflowTaskCompleted, ActivityTaskStarted, and closes we did not command
                 * (terminated, timed out): nothing for the code to see. */
                return 0;
        }
}

/* ---- the batch ------------------------------------------------------------------------------- */

#if DURABLED_EXPENSIVE_CHECKS
static void run_check_invariants(const Run *r) {
        const dur_future *f;
        const Command *c;

        LIST_FOREACH(futures, f, r->pending) {
                assert(!f->done);
                assert(!f->command || f->command->future == f);
        }
        LIST_FOREACH(futures, f, r->resolved)
                assert(f->done && !f->command);
        LIST_FOREACH(commands, c, r->commands)
                assert(c->packed && (!c->future || c->future->command == c));
        assert(!r->current);
}
#else
static void run_check_invariants(const Run *r) {
}
#endif

static int pack_commands(Run *r, msgpack_sbuffer *ret) {
        msgpack_packer pk;
        size_t n = 0;
        Command *c;
        int k;

        LIST_FOREACH(commands, c, r->commands)
                n++;
        msgpack_packer_init(&pk, ret, msgpack_sbuffer_write);
        k = msgpack_pack_array(&pk, n);
        LIST_FOREACH(commands, c, r->commands)
                if (k >= 0)
                        k = msg_pack_raw(&pk, c->packed, c->packed_size);
        return k < 0 ? -ENOMEM : 0;
}

int run_apply_events(Run *r,
                     const msgpack_object *events,
                     bool current_task,
                     msgpack_sbuffer *ret_commands) {
        uint32_t n;
        int k;

        assert_return(events && events->type == MSGPACK_OBJECT_ARRAY, -EINVAL);
        assert_return(!current_task || ret_commands, -EINVAL);
        r->error_cause = NULL;
        r->error_message[0] = 0;
        n = events->via.array.size;

        for (uint32_t i = 0; i < n; i++) {
                Event e, next;
                bool has_next = i + 1 < n;

                k = event_parse(r, &events->via.array.ptr[i], &e);
                if (k < 0)
                        return k;
                if (e.id < r->next_event_id)
                        continue;
                if (e.id > r->next_event_id)
                        return run_error(r, -ENODATA, NULL, "history events %llu..%llu are missing",
                                         (unsigned long long) r->next_event_id,
                                         (unsigned long long) e.id - 1);
                if (has_next) {
                        k = event_parse(r, &events->via.array.ptr[i + 1], &next);
                        if (k < 0)
                                return k;
                }
                /* A query sees a task in flight as not started: it is executed by its own task. */
                if (e.type == EVENT_WORKFLOW_TASK_STARTED && !has_next && !current_task)
                        break;
                r->batch = events;
                r->batch_index = i;
                k = apply_event(r, &e, has_next ? &next : NULL);
                if (k < 0)
                        return k;
                r->next_event_id = e.id + 1;
                run_check_invariants(r);
        }
        return current_task ? pack_commands(r, ret_commands) : 0;
}

/* ---- queries --------------------------------------------------------------------------------- */

static int unknown_query(Run *r, const char *query_type) {
        char known[256] = "";
        size_t len = 0;

        for (const dur_query_def *q = r->def->queries; q && q->name; q++) {
                int n = snprintf(known + len, sizeof(known) - len, "%s%s", len > 0 ? ", " : "",
                                 q->name);
                if (n < 0 || (size_t) n >= sizeof(known) - len)
                        break;
                len += (size_t) n;
        }
        return run_error(r, -ENOENT, NULL, "unknown query type '%s' (known: %s%s%s)", query_type,
                         known, len > 0 ? ", " : "", DUR_QUERY_STACK_TRACE);
}

static int
query_call(Run *r, const dur_query_def *q, const msgpack_object *args, msgpack_sbuffer *ret) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        uint64_t rng;
        int k;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        /* A query must leave no trace: dur_random() in a handler must not shift the sequence
         * that the next workflow task (and any later replay) sees. */
        rng = r->rng;
        r->in_query = true;
        k = q->fn(r, args, &pk);
        r->in_query = false;
        r->rng = rng;
        if (k < 0) {
                const char *why =
                        k == DUR_FAILED && r->failure ? dur_failure_message(r->failure) : NULL;
                msgpack_sbuffer_destroy(&sb);
                if (why)
                        return run_error(r, -EPROTO, NULL, "query handler '%s' failed: %s", q->name,
                                         why);
                return run_error(r, -EPROTO, NULL, "query handler '%s' returned %d%s", q->name, k,
                                 k == -EDEADLK ? " (a query handler must not block)" : "");
        }
        if (sb.size > 0 && msg_validate(sb.data, sb.size) < 0) {
                msgpack_sbuffer_destroy(&sb);
                return run_error(r, -EPROTO, NULL,
                                 "query handler '%s' packed more or less than one msgpack value",
                                 q->name);
        }
        k = sb.size > 0 ? msgpack_sbuffer_write(ret, sb.data, sb.size) : 0;
        msgpack_sbuffer_destroy(&sb);
        return k < 0 ? -ENOMEM : 0;
}

int run_query(Run *r,
              const char *query_type,
              const void *input,
              size_t input_size,
              msgpack_sbuffer *ret_result) {
        msgpack_object args = { .type = MSGPACK_OBJECT_NIL };
        msgpack_zone zone;
        int k;

        assert_return(query_type && ret_result, -EINVAL);
        r->error_cause = NULL;
        r->error_message[0] = 0;
        if (streq(query_type, DUR_QUERY_STACK_TRACE))
                return run_stack_trace(r, ret_result);
        for (const dur_query_def *q = r->def->queries; q && q->name; q++) {
                if (!streq(q->name, query_type))
                        continue;
                if (!msgpack_zone_init(&zone, 1024))
                        return -ENOMEM;
                k = input_size > 0 ? object_from_payload(input, input_size, &zone, &args) : 0;
                if (k < 0)
                        k = run_error(r, k, NULL, "query input is not msgpack");
                else
                        k = query_call(r, q, &args, ret_result);
                msgpack_zone_destroy(&zone);
                return k;
        }
        return unknown_query(r, query_type);
}

/* ---- update validators ---------------------------------------------------------------------- */

static int unknown_update(Run *r, const char *name) {
        char known[256] = "";
        size_t len = 0;

        for (const dur_update_def *u = r->def->updates; u && u->name; u++) {
                int n = snprintf(known + len, sizeof(known) - len, "%s%s", len > 0 ? ", " : "",
                                 u->name);
                if (n < 0 || (size_t) n >= sizeof(known) - len)
                        break;
                len += (size_t) n;
        }
        return run_error(r, -ENOENT, NULL, "unknown update '%s' (known: %s)", name,
                         len > 0 ? known : "none");
}

/* Runs the validator as a query handler runs: it must not block, and leaves no trace (not even
 * the failure it sets with dur_fail(), which only carries the reason of the rejection). */
static int validator_call(Run *r, const dur_update_def *u, const msgpack_object *args) {
        const dur_failure *saved_failure = r->failure;
        dur_failure *saved_own = r->own_failure;
        char why[400] = "";
        uint64_t rng = r->rng;
        int k;

        r->own_failure = NULL;
        r->in_query = true;
        k = u->validator(r, args);
        r->in_query = false;
        r->rng = rng;
        if (k != 0 && r->failure != saved_failure && r->failure)
                (void) snprintf(why, sizeof(why), "%s", dur_failure_message(r->failure));
        failure_free(r->own_failure);
        r->own_failure = saved_own;
        r->failure = saved_failure;
        if (k == 0)
                return 0;
        if (why[0])
                return run_error(r, -EPROTO, NULL, "%s", why);
        return run_error(r, -EPROTO, NULL, "validator of update '%s' returned %d%s", u->name, k,
                         k == -EDEADLK ? " (a validator must not block)" : "");
}

int run_validate_update(Run *r, const char *name, const void *input, size_t input_size) {
        msgpack_object args = { .type = MSGPACK_OBJECT_NIL };
        const dur_update_def *u;
        msgpack_zone zone;
        int k;

        assert_return(name, -EINVAL);
        r->error_cause = NULL;
        r->error_message[0] = 0;
        u = find_update(r, name, strlen(name));
        if (!u)
                return unknown_update(r, name);
        if (!u->validator)
                return 0;
        if (!msgpack_zone_init(&zone, 1024))
                return -ENOMEM;
        k = input_size > 0 ? object_from_payload(input, input_size, &zone, &args) : 0;
        if (k < 0)
                k = run_error(r, k, NULL, "update input is not msgpack");
        else
                k = validator_call(r, u, &args);
        msgpack_zone_destroy(&zone);
        return k;
}

/* ---- the run --------------------------------------------------------------------------------- */

/* FNV-1a of the run id, then splitmix64 in dur_random(): the same run id gives the same numbers
 * on every replay, on every machine. */
static uint64_t seed_from(const char *s) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 0x100000001b3ULL;
        return h;
}

int run_new(Run **ret, const dur_workflow_def *def, const char *workflow_id, const char *run_id) {
        _cleanup_(run_freep) Run *r = NULL;

        assert_return(ret && def && def->run && workflow_id && run_id, -EINVAL);
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        msgpack_sbuffer_init(&r->main_result);
        msgpack_sbuffer_init(&r->continue_attrs);
        r->def = def;
        r->next_event_id = 1;
        r->workflow_id = strdup(workflow_id);
        r->run_id = strdup(run_id);
        r->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        if (!r->workflow_id || !r->run_id || !r->zone)
                return -ENOMEM;
        r->rng = seed_from(run_id);
        *ret = TAKE_PTR(r);
        return 0;
}

Run *run_free(Run *r) {
        if (!r)
                return NULL;
        while (r->routines)
                routine_free(r, r->routines);
        while (r->commands)
                command_free(r, r->commands);
        while (r->memos) {
                RunMemo *m = r->memos;

                LIST_REMOVE(memos, r->memos, m);
                free(m->id);
                free(m->packed);
                free(m);
        }
        free(r->markers);
        futures_free(&r->pending);
        futures_free(&r->resolved);
        failure_free(r->own_failure);
        msgpack_sbuffer_destroy(&r->main_result);
        msgpack_sbuffer_destroy(&r->continue_attrs);
        if (r->zone)
                msgpack_zone_free(r->zone);
        free(r->state);
        free(r->workflow_id);
        free(r->run_id);
        free(r);
        return NULL;
}

uint64_t run_next_event_id(const Run *r) {
        return r->next_event_id;
}

bool run_closed(const Run *r) {
        return r->closed;
}
