#pragma once
/* Flow control of task queues (issue 9): the limits an administrator sets on a task queue with
 * ConfigureTaskQueue (durablectl task-queue config), kept in the store (TaskQueueLimits, table
 * task_queue_limits) and mirrored here, and the dispatcher's question "may this queue hand out
 * one more activity task now?" (taskq.c). A queue without limits has no Flow and costs one NULL
 * test per dispatch.
 *
 *  - concurrency: at most N activities of the queue run (STARTED) at once. The store counts the
 *    running ones (TASKSET_STARTED, rebuilt at open), so a restart counts them again.
 *  - rate: a token bucket as GCRA (the generic cell rate algorithm): N dispatches per period, at
 *    most `burst` back to back after a quiet time. A queue its bucket holds back arms a timer for
 *    the time of the next token. The bucket lives in memory only: it starts full after a restart.
 *
 * A limit applies to a scope of a queue (LimitScope, store.h): the whole queue, the activities of
 * one fairness key, or those of one activity type; each scope has its own Flow, limits, bucket
 * and timer. The queue's own limits are asked before a task is taken (flow_admit()); those of the
 * task's key and type after (flow_admit_task()): a task they hold back is put back in its place
 * and the dispatcher goes on with the next ones of the queue.
 *
 * Held-back tasks wait in their queue, in their order; nothing is dropped (DBOS's limiter,
 * Inngest's throttle: SEMANTICS.md b.23). Workflow tasks and queries are never held back. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "common/list.h"
#include "daemon/manager.h"
#include "daemon/ratelimit.h"
#include "daemon/store.h"

typedef enum FlowVerdict {
        FLOW_ADMIT,
        FLOW_HELD_CONCURRENCY,
        FLOW_HELD_RATE,
} FlowVerdict;

typedef struct Flow Flow;

struct Flow {
        Manager *manager;
        char *queue;
        LimitScope scope;
        char *name; /* the fairness key or activity type; "" for the queue's own */
        TaskQueueLimits limits;
        RateBucket bucket;
        sd_event_source *timer;    /* the next token, while the bucket holds the queue back */
        bool held;                 /* held back by its concurrency limit: retried when one ends */
        uint64_t held_concurrency; /* dispatches held back so far, per limit (DescribeTaskQueue) */
        uint64_t held_rate;
        LIST_FIELDS(Flow, flows);
};

/* Reads the limits from the store, keeping the buckets of the queues that still have a rate
 * (start-up, and after a failed commit rolled a ConfigureTaskQueue back). */
int flow_load(Manager *m);
void flow_free_all(Manager *m);
/* The Flow of the queue's own limits, or of one scope of it; NULL when it has no limits. */
Flow *flow_find(Manager *m, const char *queue);
Flow *flow_find_scope(Manager *m, const char *queue, LimitScope scope, const char *name);
/* Writes @l as the limits of a scope of @queue in the pass's transaction and applies them. */
int flow_configure(Manager *m,
                   const char *queue,
                   LimitScope scope,
                   const char *name,
                   const TaskQueueLimits *l);
/* Whether @queue may start one more activity now; a held-back queue is dispatched again when the
 * reason passes. Call it only when the queue has an activity task to hand out. */
FlowVerdict flow_admit(Manager *m, const char *queue);
/* Whether a scope of @queue has limits: then the dispatcher asks flow_admit_task() about each
 * task, with its fairness key and type. */
bool flow_queue_scoped(Manager *m, const char *queue);
/* Whether the limits of fairness key @key and activity type @type of @queue admit one more. */
FlowVerdict flow_admit_task(Manager *m, const char *queue, const char *key, const char *type);
/* An activity of @queue (of @key and @type; NULL when no scope has limits) was started (after
 * flow_admit()): takes its tokens. Reading the clock after the start's own reading keeps the
 * bucket exact for the recorded start times: a dispatch is admitted at a time <= its
 * started_time and counted at a time >= it. */
void flow_dispatched(Manager *m, const char *queue, const char *key, const char *type);
/* Called before each dispatch: queues held back by their concurrency get another look when an
 * activity stopped running since. */
void flow_note_released(Manager *m);
/* Calls @cb for each scoped Flow (key or type) of @queue. */
void flow_foreach_scoped(Manager *m,
                         const char *queue,
                         void (*cb)(Flow *f, void *userdata),
                         void *userdata);
