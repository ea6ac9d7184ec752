/* Flow control of task queues: limits per queue, the token bucket, and when a held-back queue is
 * looked at again; see flow.h. */

#include "daemon/flow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/clock.h"
#include "daemon/taskq.h"

Flow *flow_find_scope(Manager *m, const char *queue, LimitScope scope, const char *name) {
        Flow *f;

        LIST_FOREACH(flows, f, m->flows)
                if (f->scope == scope && streq(f->queue, queue) && streq(f->name, name ?: ""))
                        return f;
        return NULL;
}

Flow *flow_find(Manager *m, const char *queue) {
        return flow_find_scope(m, queue, LIMIT_SCOPE_QUEUE, "");
}

bool flow_queue_scoped(Manager *m, const char *queue) {
        Flow *f;

        LIST_FOREACH(flows, f, m->flows)
                if (f->scope != LIMIT_SCOPE_QUEUE && streq(f->queue, queue))
                        return true;
        return false;
}

void flow_foreach_scoped(Manager *m,
                         const char *queue,
                         void (*cb)(Flow *f, void *userdata),
                         void *userdata) {
        Flow *f;

        LIST_FOREACH(flows, f, m->flows)
                if (f->scope != LIMIT_SCOPE_QUEUE && streq(f->queue, queue))
                        cb(f, userdata);
}

static Flow *flow_free(Flow *f) {
        if (!f)
                return NULL;
        LIST_REMOVE(flows, f->manager->flows, f);
        sd_event_source_disable_unref(f->timer);
        free(f->queue);
        free(f->name);
        free(f);
        return NULL;
}

void flow_free_all(Manager *m) {
        while (m->flows)
                flow_free(m->flows);
}

/* Makes @queue's Flow say @l (a new one, or one whose bucket is kept when it still has a rate);
 * limits without any limit free it. */
static int flow_apply(Manager *m,
                      const char *queue,
                      LimitScope scope,
                      const char *name,
                      const TaskQueueLimits *l) {
        Flow *f = flow_find_scope(m, queue, scope, name);

        if (!l->concurrency && !l->rate) {
                flow_free(f);
                taskq_mark_dirty(m, queue); /* what it held back goes now */
                return 0;
        }
        if (!f) {
                f = calloc(1, sizeof(*f));
                if (!f)
                        return -ENOMEM;
                f->queue = strdup(queue);
                f->name = strdup(name ?: "");
                if (!f->queue || !f->name) {
                        free(f->queue);
                        free(f->name);
                        free(f);
                        return -ENOMEM;
                }
                f->scope = scope;
                f->manager = m;
                LIST_PREPEND(flows, m->flows, f);
        }
        if (l->rate != f->limits.rate || l->rate_period_usec != f->limits.rate_period_usec ||
            l->burst != f->limits.burst)
                f->bucket = (RateBucket){}; /* another bucket: it starts full */
        f->limits = *l;
        taskq_mark_dirty(m, queue);
        return 0;
}

typedef struct Loaded {
        Manager *m;
        Flow *seen; /* the flows read back, moved here from m->flows */
} Loaded;

static int load_one(const char *queue,
                    LimitScope scope,
                    const char *name,
                    const TaskQueueLimits *l,
                    void *userdata) {
        Loaded *x = userdata;
        Flow *f;
        int r;

        r = flow_apply(x->m, queue, scope, name, l);
        if (r < 0)
                return r;
        f = flow_find_scope(x->m, queue, scope, name);
        if (!f)
                return 0; /* a row without limits */
        LIST_REMOVE(flows, x->m->flows, f);
        LIST_PREPEND(flows, x->seen, f);
        return 0;
}

int flow_load(Manager *m) {
        Loaded x = { m, NULL };
        Flow *f;
        int r;

        r = store_queue_limits_foreach(m->store, load_one, &x);
        /* The flows the store does not name (any more) go; on failure, keep what was read. */
        while (r >= 0 && m->flows) {
                taskq_mark_dirty(m, m->flows->queue);
                flow_free(m->flows);
        }
        while ((f = x.seen)) {
                LIST_REMOVE(flows, x.seen, f);
                LIST_PREPEND(flows, m->flows, f);
        }
        return r;
}

int flow_configure(Manager *m,
                   const char *queue,
                   LimitScope scope,
                   const char *name,
                   const TaskQueueLimits *l) {
        int r;

        r = store_queue_limits_set(m->store, queue, scope, name, l);
        if (r < 0)
                return r;
        return flow_apply(m, queue, scope, name, l);
}

static int flow_on_token(sd_event_source *s, uint64_t usec, void *userdata) {
        Flow *f = userdata;

        taskq_mark_dirty(f->manager, f->queue);
        manager_kick(f->manager);
        return 0;
}

/* Arms the timer of a queue its bucket holds back for @due (daemon clock). */
static void arm_token(Flow *f, uint64_t due) {
        uint64_t offset = clock_offset();
        uint64_t when = due > offset ? due - offset : 1; /* clock.h: the clock may run ahead */
        int r;

        if (f->timer) {
                (void) sd_event_source_set_time(f->timer, when);
                (void) sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT);
                return;
        }
        r = sd_event_add_time(f->manager->event, &f->timer, CLOCK_REALTIME, when, 0, flow_on_token,
                              f);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the rate limit timer of task queue '%s': %m",
                                  f->queue);
}

/* Whether @f admits one more activity now; counts what it holds back and arms its timer. */
static FlowVerdict flow_check(Manager *m, Flow *f) {
        uint64_t next;

        if (f->limits.concurrency &&
            store_started_count(m->store, f->queue, f->scope, f->name) >= f->limits.concurrency) {
                f->held = true;
                f->held_concurrency++;
                return FLOW_HELD_CONCURRENCY;
        }
        next = rate_bucket_next(&f->bucket, f->limits.rate, f->limits.rate_period_usec,
                                f->limits.burst, clock_now());
        if (next) {
                f->held_rate++;
                arm_token(f, next);
                return FLOW_HELD_RATE;
        }
        return FLOW_ADMIT;
}

FlowVerdict flow_admit(Manager *m, const char *queue) {
        Flow *f;

        if (!m->flows)
                return FLOW_ADMIT;
        f = flow_find(m, queue);
        return f ? flow_check(m, f) : FLOW_ADMIT;
}

FlowVerdict flow_admit_task(Manager *m, const char *queue, const char *key, const char *type) {
        FlowVerdict v = FLOW_ADMIT;
        Flow *f;

        f = flow_find_scope(m, queue, LIMIT_SCOPE_KEY, key ?: "");
        if (f)
                v = flow_check(m, f);
        f = flow_find_scope(m, queue, LIMIT_SCOPE_TYPE, type ?: "");
        if (v == FLOW_ADMIT && f)
                v = flow_check(m, f);
        return v;
}

static void flow_take(Flow *f) {
        if (f)
                rate_bucket_take(&f->bucket, f->limits.rate, f->limits.rate_period_usec,
                                 clock_now());
}

void flow_dispatched(Manager *m, const char *queue, const char *key, const char *type) {
        if (!m->flows)
                return;
        flow_take(flow_find(m, queue));
        if (key)
                flow_take(flow_find_scope(m, queue, LIMIT_SCOPE_KEY, key));
        if (type)
                flow_take(flow_find_scope(m, queue, LIMIT_SCOPE_TYPE, type));
}

void flow_note_released(Manager *m) {
        Flow *f;

        if (!store_task_released(m->store) || !m->flows)
                return;
        LIST_FOREACH(flows, f, m->flows)
                if (f->held) {
                        f->held = false;
                        taskq_mark_dirty(m, f->queue);
                }
}
