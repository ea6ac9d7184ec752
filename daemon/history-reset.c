/* Branching a run (history.h, BranchRequest): reset (Temporal's ResetWorkflowExecution,
 * SEMANTICS.md b.10), redrive (Step Functions' RedriveExecution) and fork (DBOS's fork) all make
 * a new run whose history is a prefix of an existing run's, cut right after a
 * WorkflowTaskStarted, followed by WorkflowTaskFailed {cause: ResetWorkflow|Redrive|Fork} and a
 * new workflow task. The worker replays the prefix (recorded steps are not redone) and goes on
 * from there with its current code.
 *
 *   reset    the cut is before the WorkflowTaskCompleted (or ...Failed, ...TimedOut) named by
 *            event_id, or the first or last one; same workflow id. Signals recorded after the cut
 *            are appended again unless excluded. A run of the workflow id still open is
 *            terminated, naming the new run (new_execution_run_id: GetResult follows it).
 *   redrive  a Failed, TimedOut or Terminated run goes on under the same workflow id from its
 *            failed step: the cut is before the workflow task that scheduled the first activity
 *            that did not complete (failed, timed out, canceled or still pending), else before its
 *            last workflow task; signals after the cut are appended again.
 *   fork     a new workflow id from step N (the N-th activity scheduled, 1-based; 0 = from the
 *            start): the cut is before the workflow task that scheduled it; any status.
 *
 * The new run's pending state is rebuilt from the prefix: activities scheduled and not closed
 * in it get their rows again (a first attempt, now), timers started and not fired keep their
 * deadlines, a cancel request stays, memo and search attributes are as the prefix left them, the
 * run and execution timeouts are armed again as the start asked. A prefix that started a child
 * workflow or asked another workflow to cancel cannot be branched (failed_precondition): that
 * state lives in the other run. A child run is not reset or redriven (its parent follows the
 * child it started); a fork of one is no child. */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/clock.h"
#include "daemon/history-internal.h"
#include "daemon/history.h"
#include "daemon/visibility.h"

/* An activity or a timer of the base history: where it opened, where it closed (0: never). */
typedef struct Opened {
        EventType type; /* ActivityTaskScheduled or TimerStarted */
        uint64_t id;
        uint64_t wtc_id;    /* the WorkflowTaskCompleted whose command opened it */
        uint64_t close_id;  /* 0: still open at the end */
        EventType close;    /* the closing event's type */
        uint64_t cancel_id; /* an activity: ActivityTaskCancelRequested, 0 if none */
} Opened;

typedef struct Scan {
        EventType *types; /* types[id] for id in [1, n) */
        uint64_t n;
        Opened *opened;
        size_t n_opened, opened_alloc;
        uint64_t first_foreign; /* the first child-workflow or external-cancel event, 0 if none */
        uint64_t cancel_requested; /* the first WorkflowExecutionCancelRequested, 0 if none */
        bool child;                /* the run has a parent */
} Scan;

static void scan_done(Scan *s) {
        free(s->types);
        free(s->opened);
}

static Opened *find_opened(Scan *s, uint64_t id) {
        for (size_t i = 0; i < s->n_opened; i++)
                if (s->opened[i].id == id)
                        return &s->opened[i];
        return NULL;
}

static uint64_t attr_uint(const msgpack_object *map, const char *key) {
        const msgpack_object *v = msg_get(map, key);

        return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

static int scan_add(Scan *s, EventType type, uint64_t id, const msgpack_object *a) {
        if (s->n_opened == s->opened_alloc) {
                size_t n = s->opened_alloc ? 2 * s->opened_alloc : 16;
                Opened *p = reallocarray(s->opened, n, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                s->opened = p;
                s->opened_alloc = n;
        }
        s->opened[s->n_opened++] = (Opened){
                .type = type,
                .id = id,
                .wtc_id = attr_uint(a, "workflow_task_completed_event_id"),
        };
        return 0;
}

static int scan_one(uint64_t id,
                    EventType type,
                    uint64_t time,
                    uint32_t uid,
                    const void *attrs,
                    size_t size,
                    void *userdata) {
        Scan *s = userdata;
        msgpack_unpacked u;
        Opened *o = NULL;
        int r = 0;

        if (id >= s->n)
                return -EUCLEAN;
        s->types[id] = type;
        msgpack_unpacked_init(&u);
        r = msg_decode(attrs, size, &u);
        if (r < 0)
                goto out;
        switch (type) {
        case EVENT_WORKFLOW_EXECUTION_STARTED:
                s->child = msg_get(&u.data, "parent_run_id") != NULL;
                break;
        case EVENT_ACTIVITY_TASK_SCHEDULED:
        case EVENT_TIMER_STARTED:
                r = scan_add(s, type, id, &u.data);
                break;
        case EVENT_ACTIVITY_TASK_COMPLETED ... EVENT_ACTIVITY_TASK_TIMED_OUT:
        case EVENT_ACTIVITY_TASK_CANCELED:
                o = find_opened(s, attr_uint(&u.data, "scheduled_event_id"));
                break;
        case EVENT_ACTIVITY_TASK_CANCEL_REQUESTED:
                o = find_opened(s, attr_uint(&u.data, "scheduled_event_id"));
                if (o && !o->cancel_id)
                        o->cancel_id = id;
                o = NULL;
                break;
        case EVENT_TIMER_FIRED:
        case EVENT_TIMER_CANCELED:
                o = find_opened(s, attr_uint(&u.data, "started_event_id"));
                break;
        case EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
                if (!s->cancel_requested)
                        s->cancel_requested = id;
                break;
        case EVENT_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        case EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
                if (!s->first_foreign)
                        s->first_foreign = id;
                break;
        default:
                break;
        }
        if (o && !o->close_id) {
                o->close_id = id;
                o->close = type;
        }
out:
        msgpack_unpacked_destroy(&u);
        return r;
}

static int scan_run(Manager *m, const RunRow *base, Scan *s) {
        s->n = base->next_event_id;
        s->types = calloc(s->n, sizeof(EventType));
        if (!s->types)
                return -ENOMEM;
        return store_events_foreach(m->store, base->run_id, 1, scan_one, s);
}

static bool is_task_close(EventType t) {
        return t == EVENT_WORKFLOW_TASK_COMPLETED || t == EVENT_WORKFLOW_TASK_FAILED ||
               t == EVENT_WORKFLOW_TASK_TIMED_OUT;
}

/* The WorkflowTaskCompleted (first or last) of the history, 0 if none. */
static uint64_t task_completed(const Scan *s, bool last) {
        uint64_t found = 0;

        for (uint64_t id = 1; id < s->n; id++)
                if (s->types[id] == EVENT_WORKFLOW_TASK_COMPLETED) {
                        found = id;
                        if (!last)
                                break;
                }
        return found;
}

/* The cut of a redrive: before the workflow task that scheduled the first activity that did not
 * complete, else before the last workflow task. */
static uint64_t redrive_point(const Scan *s) {
        for (size_t i = 0; i < s->n_opened; i++) {
                const Opened *o = &s->opened[i];

                if (o->type == EVENT_ACTIVITY_TASK_SCHEDULED &&
                    o->close != EVENT_ACTIVITY_TASK_COMPLETED)
                        return o->wtc_id;
        }
        return task_completed(s, true);
}

/* The n-th activity (1-based) of the history: the workflow task completion that scheduled it. */
static uint64_t step_point(const Scan *s, uint64_t step) {
        uint64_t k = 0;

        if (step == 0)
                return task_completed(s, false);
        for (size_t i = 0; i < s->n_opened; i++)
                if (s->opened[i].type == EVENT_ACTIVITY_TASK_SCHEDULED && ++k == step)
                        return s->opened[i].wtc_id;
        return 0;
}

/* Where the new history ends (the WorkflowTaskStarted kept last), checked; -EINVAL or -ESTALE
 * with the reason in @e. */
static int branch_point(
        const BranchRequest *req, const RunRow *base, const Scan *s, uint64_t *ret, ApiError *e) {
        uint64_t close_id;

        switch (req->kind) {
        case BRANCH_RESET:
                close_id = req->event_id ? req->event_id
                                         : task_completed(s, !req->to || streq(req->to, "last"));
                if (req->event_id && (close_id >= s->n || !is_task_close(s->types[close_id])))
                        return api_error_set(e, -EINVAL,
                                             "event %" PRIu64 " of run %s is no "
                                             "WorkflowTaskCompleted, WorkflowTaskFailed or "
                                             "WorkflowTaskTimedOut",
                                             req->event_id, base->run_id);
                break;
        case BRANCH_REDRIVE:
                if (base->status != WORKFLOW_STATUS_FAILED &&
                    base->status != WORKFLOW_STATUS_TIMED_OUT &&
                    base->status != WORKFLOW_STATUS_TERMINATED)
                        return api_error_set(e, -ESTALE,
                                             "workflow '%s' is %s: only a Failed, TimedOut or "
                                             "Terminated run is redriven",
                                             base->workflow_id,
                                             workflow_status_to_string(run_row_status(base)));
                close_id = redrive_point(s);
                break;
        case BRANCH_FORK:
                close_id = step_point(s, req->step);
                if (req->step && !close_id)
                        return api_error_set(e, -EINVAL,
                                             "run %s has no step %" PRIu64
                                             " (steps are its activities, from 1)",
                                             base->run_id, req->step);
                break;
        default:
                assert(false);
                return -EINVAL;
        }
        if (close_id < 3 || close_id >= s->n ||
            s->types[close_id - 1] != EVENT_WORKFLOW_TASK_STARTED)
                return api_error_set(e, -ESTALE, "run %s has no workflow task to %s to",
                                     base->run_id, req->kind == BRANCH_FORK ? "fork" : "reset");
        if (s->first_foreign && s->first_foreign < close_id)
                return api_error_set(e, -ESTALE,
                                     "run %s started a child workflow or cancelled another one "
                                     "before event %" PRIu64 ": that cannot be branched",
                                     base->run_id, close_id);
        if (s->child && req->kind != BRANCH_FORK)
                return api_error_set(e, -ESTALE,
                                     "run %s is a child workflow's: its parent follows it, fork "
                                     "it instead",
                                     base->run_id);
        *ret = close_id - 1;
        return 0;
}

/* Event 1 of a fork: the base's WorkflowExecutionStarted under the new workflow id, without the
 * base's parent or predecessor. */
typedef struct ForkStart {
        Manager *m;
        RunRow *run;
} ForkStart;

static bool fork_drops(const msgpack_object *k) {
        static const char *const dropped[] = { "workflow_id",
                                               "parent_workflow_id",
                                               "parent_run_id",
                                               "parent_initiated_event_id",
                                               "continued_execution_run_id",
                                               "initiator" };

        for (size_t i = 0; i < ELEMENTSOF(dropped); i++)
                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(dropped[i]) &&
                    memcmp(k->via.str.ptr, dropped[i], k->via.str.size) == 0)
                        return true;
        return false;
}

static int fork_start_one(uint64_t id,
                          EventType type,
                          uint64_t time,
                          uint32_t uid,
                          const void *attrs,
                          size_t size,
                          void *userdata) {
        ForkStart *f = userdata;
        const msgpack_object *map;
        msgpack_unpacked u;
        MsgBuf b;
        size_t n = 1;
        int r;

        msgpack_unpacked_init(&u);
        msgbuf_init(&b);
        r = msg_decode(attrs, size, &u);
        map = &u.data;
        if (r >= 0 && map->type != MSGPACK_OBJECT_MAP)
                r = -EBADMSG;
        if (r >= 0) {
                for (uint32_t i = 0; i < map->via.map.size; i++)
                        n += !fork_drops(&map->via.map.ptr[i].key);
                (void) msgpack_pack_map(&b.pk, n);
                (void) msg_pack_kv_str(&b.pk, "workflow_id", f->run->workflow_id);
                for (uint32_t i = 0; i < map->via.map.size; i++)
                        if (!fork_drops(&map->via.map.ptr[i].key)) {
                                (void) msgpack_pack_object(&b.pk, map->via.map.ptr[i].key);
                                (void) msgpack_pack_object(&b.pk, map->via.map.ptr[i].val);
                        }
                r = msgbuf_error(&b);
        }
        if (r >= 0)
                r = store_event_insert(f->m->store, f->run->run_id, 1, type, time, f->m->actor_uid,
                                       b.sb.data, b.sb.size);
        msgbuf_done(&b);
        msgpack_unpacked_destroy(&u);
        return r < 0 ? r : -ECANCELED; /* only event 1 */
}

/* Rebuilds what the prefix left pending, and its visibility (see the top of the file). */
typedef struct Restore {
        Manager *m;
        RunRow *run;
        Scan *scan;
        uint64_t keep;          /* the last event kept */
        uint64_t wft_scheduled; /* of the WorkflowTaskStarted kept last */
        uint64_t run_due, expiration;
        char err[256];
} Restore;

static bool open_at(const Opened *o, uint64_t keep) {
        return o && o->id <= keep && (!o->close_id || o->close_id > keep);
}

static int restore_one(uint64_t id,
                       EventType type,
                       uint64_t time,
                       uint32_t uid,
                       const void *attrs,
                       size_t size,
                       void *userdata) {
        Restore *c = userdata;
        Opened *o = find_opened(c->scan, id);
        const msgpack_object *a, *v;
        msgpack_unpacked u;
        char timer_id[1024];
        int r;

        if (id > c->keep)
                return -ECANCELED;
        msgpack_unpacked_init(&u);
        r = msg_decode(attrs, size, &u);
        a = &u.data;
        if (r < 0)
                goto out;
        switch (type) {
        case EVENT_WORKFLOW_EXECUTION_STARTED:
                v = msg_get(a, "workflow_run_timeout_usec");
                if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                        c->run_due = c->run->start_time + v->via.u64;
                c->expiration = attr_uint(a, "workflow_execution_expiration_time");
                r = visibility_set(c->m->store, c->run->run_id, msg_get(a, "memo"),
                                   msg_get(a, "search_attributes"), c->err, sizeof(c->err));
                break;
        case EVENT_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                v = msg_get(a, "search_attributes");
                if (v)
                        r = visibility_upsert(c->m->store, c->run->run_id, v, c->err,
                                              sizeof(c->err));
                break;
        case EVENT_ACTIVITY_TASK_SCHEDULED:
                if (open_at(o, c->keep))
                        r = history_restore_activity(c->m, c->run, id, a,
                                                     o->cancel_id && o->cancel_id <= c->keep,
                                                     c->err, sizeof(c->err));
                break;
        case EVENT_TIMER_STARTED:
                if (!open_at(o, c->keep))
                        break;
                v = msg_get(a, "timer_id");
                if (!v || v->type != MSGPACK_OBJECT_STR || v->via.str.size >= sizeof(timer_id)) {
                        r = -EBADMSG;
                        break;
                }
                memcpy(timer_id, v->via.str.ptr, v->via.str.size);
                timer_id[v->via.str.size] = 0;
                /* The timer keeps its deadline: one that passed fires at once. */
                time += attr_uint(a, "start_to_fire_usec");
                r = store_timer_insert(c->m->store, c->run->run_id, timer_id, id, time);
                if (r >= 0)
                        r = store_deadline_insert(c->m->store, time, DEADLINE_TIMER, c->run->run_id,
                                                  id, 0, timer_id);
                manager_deadlines_changed(c->m);
                break;
        case EVENT_WORKFLOW_TASK_STARTED:
                c->wft_scheduled = attr_uint(a, "scheduled_event_id");
                break;
        default:
                break;
        }
out:
        msgpack_unpacked_destroy(&u);
        return r;
}

typedef struct Reapply {
        Manager *m;
        RunRow *run;
} Reapply;

static int reapply_one(uint64_t id,
                       EventType type,
                       uint64_t time,
                       uint32_t uid,
                       const void *attrs,
                       size_t size,
                       void *userdata) {
        Reapply *c = userdata;
        uint32_t saved = c->m->actor_uid;
        int r;

        if (type != EVENT_WORKFLOW_EXECUTION_SIGNALED)
                return 0;
        c->m->actor_uid = uid; /* who sent it */
        r = append_external_raw(c->m, c->run, type, attrs, size, false, false);
        c->m->actor_uid = saved;
        return r;
}

static const char *const branch_causes[_BRANCH_KIND_MAX] = {
        [BRANCH_RESET] = "ResetWorkflow",
        [BRANCH_REDRIVE] = "RedriveWorkflow",
        [BRANCH_FORK] = "ForkWorkflow",
};

/* The new run's row, its history up to @keep and its pending state. */
static int branch_create(Manager *m,
                         const BranchRequest *req,
                         const RunRow *base,
                         Scan *scan,
                         uint64_t keep,
                         RunRow *run,
                         ApiError *e) {
        Restore c = { .m = m, .run = run, .scan = scan, .keep = keep };
        msgpack_packer *pk;
        Attrs a;
        int r;

        run->workflow_id =
                strdup(req->kind == BRANCH_FORK ? req->new_workflow_id : base->workflow_id);
        run->workflow_type = strdup(base->workflow_type);
        run->task_queue = strdup(base->task_queue);
        if (!run->workflow_id || !run->workflow_type || !run->task_queue)
                return -ENOMEM;
        run->status = WORKFLOW_STATUS_RUNNING;
        run->start_time = clock_now();
        run->uid = req->kind == BRANCH_FORK ? m->actor_uid : base->uid;
        run->task_timeout_usec = base->task_timeout_usec;
        run->wft_attempt = 1;
        run->cancel_requested = scan->cancel_requested && scan->cancel_requested <= keep;
        run->next_event_id = keep + 1;
        r = store_run_insert(m->store, run);
        if (r == -EEXIST)
                return api_error_set(e, -EEXIST, "workflow '%s' is already running",
                                     run->workflow_id);
        if (r >= 0 && req->kind == BRANCH_FORK) {
                r = store_events_foreach(m->store, base->run_id, 1, fork_start_one,
                                         &(ForkStart){ m, run });
                if (r == -ECANCELED)
                        r = 0;
                if (r >= 0)
                        r = store_events_copy(m->store, base->run_id, run->run_id, 2, keep);
        } else if (r >= 0)
                r = store_events_copy(m->store, base->run_id, run->run_id, 1, keep);
        if (r >= 0)
                r = store_events_foreach(m->store, run->run_id, 1, restore_one, &c);
        if (r == -ECANCELED)
                r = 0;
        if (r == -EINVAL)
                return api_error_set(e, -ESTALE, "the history of run %s cannot be branched: %s",
                                     base->run_id, c.err);
        if (r >= 0)
                r = arm_run_timeouts(m, run, c.expiration, c.run_due);
        if (r < 0)
                return r;
        manager_run_started(m, run->run_id);

        pk = attrs_begin(&a, 6);
        (void) msg_pack_kv_uint(pk, "scheduled_event_id", c.wft_scheduled);
        (void) msg_pack_kv_uint(pk, "started_event_id", keep);
        (void) msg_pack_kv_str(pk, "cause", branch_causes[req->kind]);
        (void) msg_pack_kv_str(pk, "reason", req->reason ? req->reason : "");
        (void) msg_pack_kv_str(pk, "base_run_id", base->run_id);
        (void) msg_pack_kv_str(pk, "new_run_id", run->run_id);
        r = append_event(m, run, EVENT_WORKFLOW_TASK_FAILED, &a, NULL);
        attrs_done(&a);
        return r;
}

int history_branch(Manager *m, const BranchRequest *req, char ret_run_id[static 37], ApiError *e) {
        _cleanup_(run_row_done) RunRow base = {}, run = {}, running = {};
        _cleanup_(scan_done) Scan scan = {};
        uint64_t keep = 0;
        int r;

        r = store_run_get(m->store, req->base_run_id, &base);
        if (r == -ENOENT)
                return api_error_set(e, -ENOENT, "run %s not found", req->base_run_id);
        if (r >= 0)
                r = scan_run(m, &base, &scan);
        if (r >= 0)
                r = branch_point(req, &base, &scan, &keep, e);
        if (r < 0)
                return r;
        run_id_new(run.run_id);

        /* The same workflow id: the run that is open makes way (reset), or refuses (redrive). */
        r = store_run_find_running(
                m->store, req->kind == BRANCH_FORK ? req->new_workflow_id : base.workflow_id,
                &running);
        if (r >= 0 && req->kind == BRANCH_RESET)
                r = terminate_linked(m, running.run_id,
                                     req->reason && *req->reason ? req->reason : "reset", NULL,
                                     run.run_id, e);
        else if (r >= 0)
                return api_error_set(e, -EEXIST, "workflow '%s' is already running (run %s)",
                                     running.workflow_id, running.run_id);
        else if (r == -ENOENT)
                r = 0;
        if (r < 0)
                return r;

        r = branch_create(m, req, &base, &scan, keep, &run, e);
        if (r >= 0 && req->kind != BRANCH_FORK && req->reapply_signals)
                r = store_events_foreach(m->store, base.run_id, keep + 1, reapply_one,
                                         &(Reapply){ m, &run });
        if (r >= 0)
                r = schedule_workflow_task(m, &run);
        if (r >= 0)
                r = store_run_update(m->store, &run);
        if (r < 0)
                return r;
        log_run(LOG_INFO, &run, "Workflow '%s': run %s %s from event %" PRIu64 " of run %s",
                run.workflow_id, run.run_id,
                req->kind == BRANCH_RESET     ? "reset"
                : req->kind == BRANCH_REDRIVE ? "redriven"
                                              : "forked",
                keep, base.run_id);
        memcpy(ret_run_id, run.run_id, 37);
        return 0;
}
