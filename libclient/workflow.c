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
#include "libclient/replay-internal.h"
#include "libclient/retry.h"
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
            (o->start_to_close > 0) + (o->heartbeat > 0) + (retry_policy_fields(&o->retry) > 0) +
            (o->priority > 0) + (o->fairness_key ? 2 : 0);
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
        if (k >= 0 && o->priority > 0)
                k = msg_pack_kv_uint(pk, "priority", o->priority);
        if (k >= 0 && o->fairness_key)
                k = msg_pack_kv_str(pk, "fairness_key", o->fairness_key);
        if (k >= 0 && o->fairness_key)
                k = msg_pack_str(pk, "fairness_weight");
        if (k >= 0 && o->fairness_key)
                k = msgpack_pack_double(pk, o->fairness_weight);
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

/* The cancel request interrupted a wait: what was awaited is cancelled too (TRY_CANCEL). */
static int cancel_awaited(dur_wf *wf, dur_future *const *fs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int k = run_cancel_future(wf, fs[i]);
                if (k < 0)
                        return k;
        }
        return DUR_CANCELED;
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
