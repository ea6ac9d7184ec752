/* The dur_wf calls of workflow code (durable.h "Workflows"): activities, timers, futures,
 * conditions, spawns and the deterministic helpers. They run on a routine of a Run during an
 * execution point (replay.c); the blocking ones park the routine with run_block() until the
 * history resolves what they wait for.
 *
 * Ids are per-run decimal sequence numbers, one counter for activities and one for timers, so the
 * same code issues the same ids on every replay. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "libclient/failure.h"
#include "libclient/object.h"
#include "libclient/replay-internal.h"
#include "libclient/retry.h"
#include "libclient/visibility.h"
#include "proto/msg.h"

/* ---- run properties -------------------------------------------------------------------------- */

DUR_PUBLIC void *dur_wf_state(dur_wf *wf, size_t size) {
        assert_return(wf && size > 0, NULL);
        if (!wf->state) {
                wf->state = calloc(1, size);
                if (!wf->state)
                        return NULL;
                wf->state_size = size;
        }
        /* The pointer must never move; a larger size than the first call's is a caller bug. */
        return size <= wf->state_size ? wf->state : NULL;
}

DUR_PUBLIC const char *dur_wf_id(dur_wf *wf) {
        assert_return(wf, NULL);
        return wf->workflow_id;
}

DUR_PUBLIC const char *dur_wf_run_id(dur_wf *wf) {
        assert_return(wf, NULL);
        return wf->run_id;
}

DUR_PUBLIC const char *dur_wf_type(dur_wf *wf) {
        assert_return(wf, NULL);
        return wf->def->name;
}

DUR_PUBLIC const dur_failure *dur_wf_failure(dur_wf *wf) {
        assert_return(wf, NULL);
        return wf->failure;
}

DUR_PUBLIC int dur_fail(dur_wf *wf, const char *type, bool non_retryable, const char *fmt, ...) {
        char message[1024];
        dur_failure *f;
        va_list ap;

        assert_return(wf && fmt, -EINVAL);
        va_start(ap, fmt);
        (void) vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        f = failure_new(type ? type : "", non_retryable, message);
        if (!f)
                return -ENOMEM;
        failure_free(wf->own_failure);
        wf->own_failure = f;
        wf->failure = f;
        return DUR_FAILED;
}

DUR_PUBLIC bool dur_wf_cancel_requested(dur_wf *wf) {
        assert_return(wf, false);
        return wf->cancel_requested;
}

DUR_PUBLIC unsigned dur_wf_attempt(dur_wf *wf) {
        assert_return(wf, 0);
        return wf->attempt ? wf->attempt : 1;
}

DUR_PUBLIC uint64_t dur_now(dur_wf *wf) {
        assert_return(wf, 0);
        return wf->now;
}

DUR_PUBLIC bool dur_is_replaying(dur_wf *wf) {
        assert_return(wf, false);
        return wf->replaying;
}

/* splitmix64 over the run's seed (replay.c seeds it from the run id). */
DUR_PUBLIC uint64_t dur_random(dur_wf *wf) {
        uint64_t z;

        assert_return(wf, 0);
        z = (wf->rng += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

DUR_PUBLIC void dur_uuid(dur_wf *wf, char out[37]) {
        uint8_t b[16];

        if (!wf || !out)
                return;
        for (size_t i = 0; i < sizeof(b); i += 8) {
                uint64_t v = dur_random(wf);
                memcpy(b + i, &v, 8);
        }
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        (void) snprintf(out, 37,
                        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                        b[12], b[13], b[14], b[15]);
}

DUR_PUBLIC int dur_go(dur_wf *wf, int (*fn)(dur_wf *wf, void *arg), void *arg) {
        assert_return(wf && fn, -EINVAL);
        return run_spawn(wf, fn, arg);
}

/* ---- activities ------------------------------------------------------------------------------ */

static int pack_kv_usec(msgpack_packer *pk, const char *key, uint64_t usec) {
        return usec > 0 ? msg_pack_kv_uint(pk, key, usec) : 0;
}

/* ScheduleActivityTask attributes: only what the caller set; the daemon applies the defaults. */
static int pack_activity_attrs(msgpack_packer *pk,
                               const char *id,
                               const char *type,
                               const dur_buf *args,
                               const dur_activity_opts *o) {
        static const dur_activity_opts none = { .task_queue = NULL };
        size_t n;
        int k;

        if (!o)
                o = &none;
        n = 2 + !!o->task_queue + !!args + (o->schedule_to_close > 0) + (o->schedule_to_start > 0) +
            (o->start_to_close > 0) + (o->heartbeat > 0) + (retry_policy_fields(&o->retry) > 0);
        k = msgpack_pack_map(pk, n);
        if (k >= 0)
                k = msg_pack_kv_str(pk, "activity_id", id);
        if (k >= 0)
                k = msg_pack_kv_str(pk, "activity_type", type);
        if (k >= 0 && o->task_queue)
                k = msg_pack_kv_str(pk, "task_queue", o->task_queue);
        if (k >= 0 && args)
                k = msg_pack_kv_bin(pk, "input", args->data, args->size);
        if (k >= 0)
                k = pack_kv_usec(pk, "schedule_to_close_usec", o->schedule_to_close);
        if (k >= 0)
                k = pack_kv_usec(pk, "schedule_to_start_usec", o->schedule_to_start);
        if (k >= 0)
                k = pack_kv_usec(pk, "start_to_close_usec", o->start_to_close);
        if (k >= 0)
                k = pack_kv_usec(pk, "heartbeat_usec", o->heartbeat);
        if (k >= 0 && retry_policy_fields(&o->retry) > 0) {
                k = msg_pack_str(pk, "retry_policy");
                if (k >= 0)
                        k = retry_policy_pack(pk, &o->retry);
        }
        return k < 0 ? -ENOMEM : 0;
}

/* Creates the future and queues its start command; NULL with errno set on failure. */
static dur_future *
issue_start(Run *r, Command *tmpl, FutureKind kind, const msgpack_sbuffer *attrs) {
        dur_future *f;
        int k;

        f = run_new_future(r, kind);
        if (!f) {
                errno = ENOMEM;
                return NULL;
        }
        memcpy(f->id, tmpl->id, sizeof(f->id));
        tmpl->future = f;
        k = run_add_command(r, tmpl, attrs->data, attrs->size);
        if (k < 0) {
                run_forget_future(r, f);
                errno = -k;
                return NULL;
        }
        return f;
}

DUR_PUBLIC dur_future *
dur_start_activity(dur_wf *wf, const char *type, dur_buf *args, const dur_activity_opts *opts) {
        Command tmpl = { .type = COMMAND_SCHEDULE_ACTIVITY_TASK, .activity_type = (char *) type };
        dur_future *f = NULL;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        int k;

        if (!wf || !type) {
                errno = EINVAL;
                goto finish;
        }
        if (opts && (unsigned) opts->cancellation_type > DUR_ACTIVITY_CANCEL_ABANDON) {
                errno = EINVAL;
                goto finish;
        }
        if (!run_can_issue(wf)) {
                errno = EDEADLK; /* from a query handler or a predicate */
                goto finish;
        }
        (void) snprintf(tmpl.id, sizeof(tmpl.id), "%u", ++wf->activity_seq);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        k = pack_activity_attrs(&pk, tmpl.id, type, args, opts);
        if (k < 0)
                errno = -k;
        else
                f = issue_start(wf, &tmpl, FUTURE_ACTIVITY, &sb);
        msgpack_sbuffer_destroy(&sb);
        if (f) {
                f->cancel_type = opts ? opts->cancellation_type : DUR_ACTIVITY_CANCEL_DEFAULT;
                f->name = strdup(type); /* for __stack_trace only: NULL on OOM is fine */
        }
finish:
        dur_buf_free(args);
        return f;
}

DUR_PUBLIC int dur_execute_activity(dur_wf *wf,
                                    const char *type,
                                    dur_buf *args,
                                    const dur_activity_opts *opts,
                                    const msgpack_object **ret_result) {
        dur_future *f;
        int k;

        f = dur_start_activity(wf, type, args, opts);
        if (!f)
                return -errno;
        k = dur_await(wf, f);
        if (k < 0)
                return k;
        if (ret_result)
                *ret_result = &f->value;
        return 0;
}

/* ---- timers ---------------------------------------------------------------------------------- */

DUR_PUBLIC dur_future *dur_start_timer(dur_wf *wf, uint64_t duration) {
        Command tmpl = { .type = COMMAND_START_TIMER };
        dur_future *f = NULL;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        int k;

        if (!wf) {
                errno = EINVAL;
                return NULL;
        }
        if (!run_can_issue(wf)) {
                errno = EDEADLK;
                return NULL;
        }
        if (duration == 0) {
                /* Nothing to wait for, and nothing for history to record. */
                f = run_new_future(wf, FUTURE_TIMER);
                if (f)
                        run_resolve_future(wf, f, 0, NULL);
                else
                        errno = ENOMEM;
                return f;
        }
        (void) snprintf(tmpl.id, sizeof(tmpl.id), "%u", ++wf->timer_seq);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        k = msgpack_pack_map(&pk, 2);
        if (k >= 0)
                k = msg_pack_kv_str(&pk, "timer_id", tmpl.id);
        if (k >= 0)
                k = msg_pack_kv_uint(&pk, "start_to_fire_usec", duration);
        if (k < 0)
                errno = ENOMEM;
        else
                f = issue_start(wf, &tmpl, FUTURE_TIMER, &sb);
        msgpack_sbuffer_destroy(&sb);
        if (f)
                f->duration = duration;
        return f;
}

DUR_PUBLIC int dur_sleep(dur_wf *wf, uint64_t duration) {
        dur_future *f = dur_start_timer(wf, duration);

        if (!f)
                return -errno;
        return dur_await(wf, f);
}

/* ---- continue-as-new ------------------------------------------------------------------------- */

DUR_PUBLIC int
dur_continue_as_new(dur_wf *wf, dur_buf *input, const dur_continue_as_new_opts *opts) {
        static const dur_continue_as_new_opts none = { .workflow_type = NULL };
        msgpack_packer pk;
        int k;

        if (!wf) {
                dur_buf_free(input);
                return -EINVAL;
        }
        if (!run_can_issue(wf)) {
                dur_buf_free(input);
                return -EDEADLK;
        }
        if (!opts)
                opts = &none;
        /* The last call wins: only the value the function returns matters. */
        msgpack_sbuffer_clear(&wf->continue_attrs);
        msgpack_packer_init(&pk, &wf->continue_attrs, msgpack_sbuffer_write);
        k = msgpack_pack_map(&pk, !!input + !!opts->workflow_type + !!opts->task_queue +
                                          (opts->task_timeout > 0));
        if (k >= 0 && input)
                k = msg_pack_kv_bin(&pk, "input", input->data, input->size);
        if (k >= 0 && opts->workflow_type)
                k = msg_pack_kv_str(&pk, "workflow_type", opts->workflow_type);
        if (k >= 0 && opts->task_queue)
                k = msg_pack_kv_str(&pk, "task_queue", opts->task_queue);
        if (k >= 0)
                k = pack_kv_usec(&pk, "task_timeout_usec", opts->task_timeout);
        dur_buf_free(input);
        if (k < 0)
                return -ENOMEM;
        wf->continue_requested = true;
        return DUR_CONTINUED_AS_NEW;
}

/* ---- futures --------------------------------------------------------------------------------- */

typedef struct AwaitSet {
        dur_future *const *fs;
        size_t n;
} AwaitSet;

static bool all_done(Run *r, void *userdata) {
        const AwaitSet *s = userdata;

        for (size_t i = 0; i < s->n; i++)
                if (!s->fs[i]->done)
                        return false;
        return true;
}

static bool any_done(Run *r, void *userdata) {
        const AwaitSet *s = userdata;

        for (size_t i = 0; i < s->n; i++)
                if (s->fs[i]->done)
                        return true;
        return false;
}

static bool futures_valid(dur_wf *wf, dur_future *const *fs, size_t n) {
        if (n > 0 && !fs)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!fs[i] || fs[i]->run != wf)
                        return false;
        return true;
}

/* What awaiting a resolved future returns; a failure becomes dur_wf_failure(). */
static int future_outcome(dur_wf *wf, const dur_future *f) {
        if (f->result == DUR_FAILED)
                wf->failure = f->failure;
        return f->result;
}

static bool cancellations_completed(Run *r, void *userdata) {
        const AwaitSet *s = userdata;

        for (size_t i = 0; i < s->n; i++)
                if (s->fs[i]->kind == FUTURE_ACTIVITY && s->fs[i]->cancel_sent && !s->fs[i]->done)
                        return false;
        return true;
}

/* The cancel request interrupted a wait: what was awaited is cancelled too, as each activity's
 * cancellation type says, except what a dur_detached() scope started. The call returns once the
 * WAIT_CANCELLATION_COMPLETED activities among them reported back. */
static int cancel_awaited(dur_wf *wf, dur_future *const *fs, size_t n) {
        AwaitSet s = { fs, n };
        int k;

        for (size_t i = 0; i < n; i++) {
                if (fs[i]->detached)
                        continue;
                k = run_cancel_future(wf, fs[i]);
                if (k < 0)
                        return k;
        }
        k = run_block(wf, cancellations_completed, &s);
        return k < 0 ? k : DUR_CANCELED;
}

DUR_PUBLIC int dur_await(dur_wf *wf, dur_future *f) {
        return dur_await_all(wf, &f, 1);
}

/* Waits until all are done (even after one failed: no activity is left running unawaited), then
 * returns the outcome of the first one, in array order, that did not succeed. */
DUR_PUBLIC int dur_await_all(dur_wf *wf, dur_future *const *fs, size_t n) {
        AwaitSet s = { fs, n };
        int k;

        assert_return(wf && futures_valid(wf, fs, n), -EINVAL);
        k = run_block(wf, all_done, &s);
        if (k == DUR_CANCELED)
                return cancel_awaited(wf, fs, n);
        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++)
                if (fs[i]->result != 0)
                        return future_outcome(wf, fs[i]);
        return 0;
}

DUR_PUBLIC int dur_await_any(dur_wf *wf, dur_future *const *fs, size_t n, size_t *ret_index) {
        AwaitSet s = { fs, n };
        int k;

        assert_return(wf && n > 0 && futures_valid(wf, fs, n), -EINVAL);
        k = run_block(wf, any_done, &s);
        if (k == DUR_CANCELED)
                return cancel_awaited(wf, fs, n);
        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++)
                if (fs[i]->done) {
                        if (ret_index)
                                *ret_index = i;
                        return future_outcome(wf, fs[i]);
                }
        return -EINVAL; /* unreachable: any_done() was true */
}

DUR_PUBLIC bool dur_future_done(const dur_future *f) {
        return f && f->done;
}

DUR_PUBLIC const msgpack_object *dur_future_result(const dur_future *f) {
        return f && f->done && f->result == 0 ? &f->value : NULL;
}

DUR_PUBLIC const dur_failure *dur_future_failure(const dur_future *f) {
        return f && f->done ? f->failure : NULL;
}

/* ---- child workflows ------------------------------------------------------------------------ */

static int pack_child_attrs(msgpack_packer *pk,
                            const char *type,
                            const dur_buf *input,
                            const dur_child_opts *o) {
        const char *policy = NULL;
        int k;

        switch (o->parent_close_policy) {
        case DUR_PARENT_CLOSE_TERMINATE:
                policy = "Terminate";
                break;
        case DUR_PARENT_CLOSE_ABANDON:
                policy = "Abandon";
                break;
        case DUR_PARENT_CLOSE_REQUEST_CANCEL:
                policy = "RequestCancel";
                break;
        default:
                break;
        }
        k = msgpack_pack_map(pk, 2 + !!o->task_queue + !!input + (o->task_timeout > 0) + !!policy +
                                         (o->execution_timeout > 0) + (o->run_timeout > 0) +
                                         (retry_policy_fields(&o->retry) > 0));
        if (k >= 0)
                k = msg_pack_kv_str(pk, "workflow_id", o->workflow_id);
        if (k >= 0)
                k = msg_pack_kv_str(pk, "workflow_type", type);
        if (k >= 0 && o->task_queue)
                k = msg_pack_kv_str(pk, "task_queue", o->task_queue);
        if (k >= 0 && input)
                k = msg_pack_kv_bin(pk, "input", input->data, input->size);
        if (k >= 0)
                k = pack_kv_usec(pk, "task_timeout_usec", o->task_timeout);
        if (k >= 0 && policy)
                k = msg_pack_kv_str(pk, "parent_close_policy", policy);
        if (k >= 0)
                k = pack_kv_usec(pk, "execution_timeout_usec", o->execution_timeout);
        if (k >= 0)
                k = pack_kv_usec(pk, "run_timeout_usec", o->run_timeout);
        if (k >= 0 && retry_policy_fields(&o->retry) > 0) {
                k = msg_pack_str(pk, "retry_policy");
                if (k >= 0)
                        k = retry_policy_pack(pk, &o->retry);
        }
        return k < 0 ? -ENOMEM : 0;
}

DUR_PUBLIC dur_future *
dur_start_child(dur_wf *wf, const char *type, dur_buf *input, const dur_child_opts *opts) {
        Command tmpl = { .type = COMMAND_START_CHILD_WORKFLOW_EXECUTION };
        _cleanup_free_ char *id = NULL;
        dur_future *f = NULL;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        int k;

        if (!wf || !type || !*type || !opts || !opts->workflow_id || !*opts->workflow_id ||
            (unsigned) opts->parent_close_policy > DUR_PARENT_CLOSE_REQUEST_CANCEL) {
                errno = EINVAL;
                goto finish;
        }
        if (!run_can_issue(wf)) {
                errno = EDEADLK;
                goto finish;
        }
        id = strdup(opts->workflow_id);
        if (!id) {
                errno = ENOMEM;
                goto finish;
        }
        tmpl.activity_type = (char *) type;
        tmpl.workflow_id = (char *) opts->workflow_id;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        k = pack_child_attrs(&pk, type, input, opts);
        if (k < 0)
                errno = -k;
        else
                f = issue_start(wf, &tmpl, FUTURE_CHILD, &sb);
        msgpack_sbuffer_destroy(&sb);
        if (f)
                f->child_workflow_id = TAKE_PTR(id);
finish:
        dur_buf_free(input);
        return f;
}

DUR_PUBLIC int dur_execute_child(dur_wf *wf,
                                 const char *type,
                                 dur_buf *input,
                                 const dur_child_opts *opts,
                                 const msgpack_object **ret_result) {
        dur_future *f;
        int k;

        f = dur_start_child(wf, type, input, opts);
        if (!f)
                return -errno;
        k = dur_await(wf, f);
        if (k < 0)
                return k;
        if (ret_result)
                *ret_result = &f->value;
        return 0;
}

static bool child_started_or_done(Run *r, void *userdata) {
        const dur_future *f = userdata;

        return f->child_started || f->done;
}

DUR_PUBLIC int dur_child_started(dur_wf *wf, dur_future *child, const char **ret_run_id) {
        int k;

        assert_return(wf && child && child->run == wf && child->kind == FUTURE_CHILD, -EINVAL);
        k = run_block(wf, child_started_or_done, child);
        if (k < 0)
                return k;
        if (!child->child_started)
                return future_outcome(wf, child);
        if (ret_run_id)
                *ret_run_id = child->child_run_id;
        return 0;
}

DUR_PUBLIC int dur_future_cancel(dur_wf *wf, dur_future *f) {
        assert_return(wf && f && f->run == wf, -EINVAL);
        if (!run_can_issue(wf))
                return -EDEADLK;
        return run_cancel_future(wf, f);
}

/* ---- conditions ------------------------------------------------------------------------------ */

typedef struct Condition {
        bool (*pred)(dur_wf *wf, void *arg);
        void *arg;
        dur_future *timer;
} Condition;

static bool condition_ready(Run *r, void *userdata) {
        const Condition *c = userdata;

        return c->pred(r, c->arg) || (c->timer && c->timer->done);
}

DUR_PUBLIC int
dur_wait_condition(dur_wf *wf, bool (*pred)(dur_wf *wf, void *arg), void *arg, uint64_t timeout) {
        Condition c = { pred, arg, NULL };
        int k;

        assert_return(wf && pred, -EINVAL);
        if (pred(wf, arg))
                return 1;
        if (!run_can_issue(wf))
                return -EDEADLK;
        if (timeout > 0) {
                c.timer = dur_start_timer(wf, timeout);
                if (!c.timer)
                        return -errno;
        }
        k = run_block(wf, condition_ready, &c);
        if (k == DUR_CANCELED)
                return c.timer ? cancel_awaited(wf, &c.timer, 1) : DUR_CANCELED;
        if (k < 0)
                return k;
        if (!pred(wf, arg))
                return 0; /* the timer fired first */
        if (c.timer) {
                /* The condition won: the timer must not wake the workflow later. */
                k = run_cancel_future(wf, c.timer);
                if (k < 0)
                        return k;
        }
        return 1;
}

/* ---- cancellation scopes --------------------------------------------------------------------- */

DUR_PUBLIC int dur_detached(dur_wf *wf, int (*fn)(dur_wf *wf, void *arg), void *arg) {
        Routine *rt;
        int k;

        assert_return(wf && fn, -EINVAL);
        if (!run_can_issue(wf))
                return -EDEADLK;
        rt = wf->current;
        rt->detached++;
        k = fn(wf, arg);
        rt->detached--;
        return k;
}

/* ---- markers: side effects and patches ------------------------------------------------------- */

/* Queues RecordMarker {marker_name, marker_id, details?, deprecated?}. */
static int issue_marker(
        Run *r, const char *name, const char *id, const msgpack_sbuffer *details, int deprecated) {
        Command tmpl = { .type = COMMAND_RECORD_MARKER,
                         .activity_type = (char *) name,
                         .workflow_id = (char *) id };
        msgpack_sbuffer sb;
        msgpack_packer pk;
        int k;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        k = msgpack_pack_map(&pk, 2 + !!details + (deprecated >= 0));
        if (k >= 0)
                k = msg_pack_kv_str(&pk, "marker_name", name);
        if (k >= 0)
                k = msg_pack_kv_str(&pk, "marker_id", id);
        if (k >= 0 && details)
                k = msg_pack_kv_bin(&pk, "details", details->data, details->size);
        if (k >= 0 && deprecated >= 0)
                k = msg_pack_kv_bool(&pk, "deprecated", deprecated);
        k = k < 0 ? -ENOMEM : run_add_command(r, &tmpl, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        return k;
}

/* Calls fn, which must pack exactly one value into @sb (initialised by the caller). A failure
 * records nothing, so a replay could not tell it happened: it fails the workflow task instead
 * (as a panic in Temporal's SideEffect does), and the task's retry calls fn again. */
static int call_value_fn(Run *r, dur_value_fn fn, void *arg, msgpack_sbuffer *sb) {
        msgpack_packer pk;
        int k;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        k = fn(r, arg, &pk);
        if (k < 0)
                return run_fail_task(r, false, "a side effect function returned %d", k);
        if (sb->size == 0 || msg_validate(sb->data, sb->size) < 0)
                return run_fail_task(r, false,
                                     "a side effect function packed more or less than one "
                                     "msgpack value");
        return 0;
}

/* A copy of the packed value @sb in the run's zone, for user code. */
static int value_to_object(Run *r, const msgpack_sbuffer *sb, msgpack_object *ret) {
        return object_from_payload(sb->data, sb->size, r->zone, ret);
}

DUR_PUBLIC int
dur_side_effect(dur_wf *wf, dur_value_fn fn, void *arg, const msgpack_object **ret_result) {
        msgpack_object *value;
        const RunMarker *m;
        msgpack_sbuffer sb;
        char id[24];
        int k;

        assert_return(wf && fn, -EINVAL);
        if (!run_can_issue(wf))
                return -EDEADLK;
        value = msgpack_zone_malloc(wf->zone, sizeof(*value));
        if (!value)
                return -ENOMEM;
        (void) snprintf(id, sizeof(id), "%u", ++wf->side_effect_seq);
        msgpack_sbuffer_init(&sb);
        if (wf->replaying) {
                m = run_take_marker(wf, MARKER_SIDE_EFFECT, id);
                if (!m)
                        return run_marker_missing(wf, MARKER_SIDE_EFFECT, id);
                k = run_marker_details(wf, m, value);
                /* The command still goes out: it is matched with the recorded event. */
                if (k >= 0) {
                        msgpack_packer pk;

                        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                        k = msgpack_pack_object(&pk, *value) < 0 ? -ENOMEM : 0;
                }
        } else {
                k = call_value_fn(wf, fn, arg, &sb);
                if (k >= 0)
                        k = value_to_object(wf, &sb, value);
        }
        if (k >= 0)
                k = issue_marker(wf, MARKER_SIDE_EFFECT, id, &sb, -1);
        msgpack_sbuffer_destroy(&sb);
        if (k < 0)
                return k;
        if (ret_result)
                *ret_result = value;
        return 0;
}

static RunMemo *memo_find(Run *r, bool patch, const char *id) {
        RunMemo *m;

        LIST_FOREACH(memos, m, r->memos)
                if (m->patch == patch && streq(m->id, id))
                        return m;
        return NULL;
}

static RunMemo *memo_new(Run *r, bool patch, const char *id) {
        RunMemo *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        m->patch = patch;
        m->id = strdup(id);
        if (!m->id) {
                free(m);
                return NULL;
        }
        LIST_APPEND(memos, r->memos, m);
        return m;
}

/* Sets a mutable side effect's memo to the packed value @sb. */
static int memo_set_value(Run *r, RunMemo *m, const msgpack_sbuffer *sb) {
        char *packed = malloc(sb->size);
        int k;

        if (!packed)
                return -ENOMEM;
        k = value_to_object(r, sb, &m->value);
        if (k < 0) {
                free(packed);
                return k;
        }
        memcpy(packed, sb->data, sb->size);
        free(m->packed);
        m->packed = packed;
        m->packed_size = sb->size;
        return 0;
}

/* Replay: the value history holds at this point, the last one recorded before it, or a
 * non-determinism when there is neither. */
static int mutable_replayed(Run *r, const char *id, RunMemo *m, msgpack_sbuffer *sb) {
        const RunMarker *marker = run_take_marker(r, MARKER_MUTABLE_SIDE_EFFECT, id);
        msgpack_object value;
        msgpack_packer pk;
        int k;

        if (!marker && m && m->packed)
                return 0;
        if (!marker)
                return run_marker_missing(r, MARKER_MUTABLE_SIDE_EFFECT, id);
        k = run_marker_details(r, marker, &value);
        if (k < 0)
                return k;
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, value) < 0)
                return -ENOMEM;
        return 1; /* a marker: the command goes out again, to match it */
}

DUR_PUBLIC int dur_mutable_side_effect(
        dur_wf *wf, const char *id, dur_value_fn fn, void *arg, const msgpack_object **ret_result) {
        msgpack_object *value;
        RunMemo *m;
        msgpack_sbuffer sb;
        int k, changed;

        assert_return(wf && id && *id && fn, -EINVAL);
        if (!run_can_issue(wf))
                return -EDEADLK;
        m = memo_find(wf, false, id);
        msgpack_sbuffer_init(&sb);
        if (wf->replaying)
                k = changed = mutable_replayed(wf, id, m, &sb);
        else {
                k = call_value_fn(wf, fn, arg, &sb);
                changed = k >= 0 && (!m || !m->packed || m->packed_size != sb.size ||
                                     memcmp(m->packed, sb.data, sb.size) != 0);
        }
        if (k >= 0 && !m && changed) {
                m = memo_new(wf, false, id);
                if (!m)
                        k = -ENOMEM;
        }
        if (k >= 0 && changed)
                k = memo_set_value(wf, m, &sb);
        if (k >= 0 && changed)
                k = issue_marker(wf, MARKER_MUTABLE_SIDE_EFFECT, id, &sb, -1);
        msgpack_sbuffer_destroy(&sb);
        if (k < 0)
                return k;
        /* The memo moves on with the next change; what this call returns must not. */
        value = msgpack_zone_malloc(wf->zone, sizeof(*value));
        if (!value)
                return -ENOMEM;
        *value = m->value;
        if (ret_result)
                *ret_result = value;
        return 0;
}

/* UpsertWorkflowSearchAttributes {TemporalChangeVersion: [the run's patches]}, marked as
 * bookkeeping for matching (replay.c, on_command_event()). */
static int issue_change_version(Run *r) {
        Command tmpl = { .type = COMMAND_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                         .change_version = true };
        _cleanup_free_ const char **ids = NULL;
        dur_search_attr attr = { .name = CHANGE_VERSION_ATTR, .type = DUR_SA_KEYWORD_LIST };
        msgpack_sbuffer sb, cmd;
        msgpack_packer pk;
        size_t n = 0;
        RunMemo *m;
        int k;

        LIST_FOREACH(memos, m, r->memos)
                n += m->patch && m->patched;
        ids = calloc(n ? n : 1, sizeof(*ids));
        if (!ids)
                return -ENOMEM;
        n = 0;
        LIST_FOREACH(memos, m, r->memos)
                if (m->patch && m->patched)
                        ids[n++] = m->id;
        attr.list = ids;
        attr.list_len = n;
        msgpack_sbuffer_init(&sb);
        msgpack_sbuffer_init(&cmd);
        k = search_attrs_pack(&sb, &attr, 1, true);
        if (k >= 0) {
                msgpack_packer_init(&pk, &cmd, msgpack_sbuffer_write);
                k = msgpack_pack_map(&pk, 1);
                if (k >= 0)
                        k = msg_pack_str(&pk, "search_attributes");
                if (k >= 0)
                        k = msg_pack_raw(&pk, sb.data, sb.size);
                k = k < 0 ? -ENOMEM : run_add_command(r, &tmpl, cmd.data, cmd.size);
        }
        msgpack_sbuffer_destroy(&sb);
        msgpack_sbuffer_destroy(&cmd);
        return k;
}

/* Temporal core's patch rules: new code running a point for the first time takes the patch and
 * records it; replay takes it only when the replayed task recorded its marker. */
DUR_PUBLIC int dur_patched(dur_wf *wf, const char *patch_id) {
        RunMemo *m;
        int k;

        assert_return(wf && patch_id && *patch_id, -EINVAL);
        if (!run_can_issue(wf))
                return -EDEADLK;
        m = memo_find(wf, true, patch_id);
        if (m)
                return m->patched;
        m = memo_new(wf, true, patch_id);
        if (!m)
                return -ENOMEM;
        if (wf->replaying) {
                m->patched = run_take_marker(wf, MARKER_PATCH, patch_id) != NULL;
                /* The marker's command matches the recorded event; the upsert that followed
                 * it is skipped by matching. */
                k = m->patched ? issue_marker(wf, MARKER_PATCH, patch_id, NULL, false) : 0;
        } else {
                m->patched = true;
                k = issue_marker(wf, MARKER_PATCH, patch_id, NULL, false);
                if (k >= 0)
                        k = issue_change_version(wf);
        }
        return k < 0 ? k : m->patched;
}

DUR_PUBLIC int dur_deprecate_patch(dur_wf *wf, const char *patch_id) {
        RunMemo *m;

        assert_return(wf && patch_id && *patch_id, -EINVAL);
        if (!run_can_issue(wf))
                return -EDEADLK;
        m = memo_find(wf, true, patch_id);
        if (m)
                return 0;
        m = memo_new(wf, true, patch_id);
        if (!m)
                return -ENOMEM;
        /* Replaying, the marker is issued only where history has one (patched() or deprecated);
         * a history without it replays too. */
        if (wf->replaying && !run_take_marker(wf, MARKER_PATCH, patch_id))
                return 0;
        return issue_marker(wf, MARKER_PATCH, patch_id, NULL, true);
}

/* ---- __stack_trace --------------------------------------------------------------------------- */

static void describe_duration(uint64_t usec, char *buf, size_t n) {
        if (usec % DUR_SEC == 0)
                (void) snprintf(buf, n, "%llu s", (unsigned long long) (usec / DUR_SEC));
        else if (usec % DUR_MSEC == 0)
                (void) snprintf(buf, n, "%llu ms", (unsigned long long) (usec / DUR_MSEC));
        else
                (void) snprintf(buf, n, "%llu us", (unsigned long long) usec);
}

static void describe_future(const dur_future *f, char *buf, size_t n) {
        char d[32];

        switch (f->kind) {
        case FUTURE_ACTIVITY:
                (void) snprintf(buf, n, "activity %.100s (id %s)", f->name ? f->name : "?", f->id);
                break;
        case FUTURE_TIMER:
                describe_duration(f->duration, d, sizeof(d));
                (void) snprintf(buf, n, "timer %s (id %s)", d, f->id);
                break;
        default:
                (void) snprintf(buf, n, "child workflow %.100s", f->child_workflow_id);
        }
}

/* What @rt waits for, from the predicate it blocks on. */
static void describe_wait(const Routine *rt, char *buf, size_t n) {
        const AwaitSet *s = rt->ready_arg;
        const Condition *c = rt->ready_arg;
        size_t len = 0;
        char one[160];

        if (rt->ready == condition_ready && c->timer && !c->timer->done) {
                describe_future(c->timer, one, sizeof(one));
                (void) snprintf(buf, n, "condition (timeout: %s)", one);
        } else if (rt->ready == condition_ready)
                (void) snprintf(buf, n, "condition");
        else if (rt->ready == child_started_or_done) {
                describe_future(rt->ready_arg, one, sizeof(one));
                (void) snprintf(buf, n, "start of %s", one);
        } else if (rt->ready == all_done || rt->ready == any_done ||
                   rt->ready == cancellations_completed) {
                buf[0] = 0;
                for (size_t i = 0; i < s->n && len < n; i++) {
                        if (s->fs[i]->done)
                                continue;
                        describe_future(s->fs[i], one, sizeof(one));
                        len += (size_t) snprintf(
                                buf + len, n - len, "%s%s%s", len ? ", " : "",
                                rt->ready == cancellations_completed ? "cancellation of " : "",
                                one);
                }
        } else
                (void) snprintf(buf, n, "a wait");
}

int run_stack_trace(Run *r, msgpack_sbuffer *ret) {
        _cleanup_free_ char *text = NULL;
        msgpack_packer pk;
        size_t size = 0;
        Routine *rt;
        FILE *f;
        int k;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        LIST_FOREACH(routines, rt, r->routines) {
                char what[512];

                if (rt->ready)
                        describe_wait(rt, what, sizeof(what));
                fprintf(f, "%s: %s%s%s\n", rt->name, rt->ready ? "blocked in " : "",
                        rt->ready ? what : "not started yet", rt->detached ? " (detached)" : "");
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        msgpack_packer_init(&pk, ret, msgpack_sbuffer_write);
        k = msg_pack_strn(&pk, text, size > 0 ? size - 1 : 0); /* without the last newline */
        return k < 0 ? -ENOMEM : 0;
}
