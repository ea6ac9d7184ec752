/* History linter; the rules are listed in history-lint.h.
 *
 * State: the workflow task in progress (Temporal allows one at a time), the open activities
 * (keyed by the id of their ActivityTaskScheduled event) and the open timers (keyed by timer id).
 * Closed activities and timers are forgotten, so a second close of the same one is reported as
 * a close of something that is not open. Lookups are linear over the open ones, which a
 * workflow keeps few of. Updates are all kept (their ids must stay unique for the run; the
 * daemon caps them at a few thousand per run). */

#include "proto/history-lint.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"

typedef enum WftPhase {
        WFT_PHASE_NONE,
        WFT_PHASE_SCHEDULED,
        WFT_PHASE_STARTED,
} WftPhase;

typedef struct OpenActivity {
        uint64_t scheduled_id;
        uint64_t started_id; /* 0 until ActivityTaskStarted */
        char *activity_id;
} OpenActivity;

typedef struct OpenTimer {
        uint64_t started_id;
        uint64_t due; /* TimerStarted's time + start_to_fire_usec */
        char *timer_id;
} OpenTimer;

typedef struct SeenUpdate {
        uint64_t accepted_id;
        bool completed;
        char *update_id;
} SeenUpdate;

struct HistoryLint {
        uint64_t count;
        uint64_t last_id;
        EventType last_type;
        WftPhase wft;
        uint64_t wft_scheduled_id, wft_started_id;
        uint64_t wft_completed_id; /* the last WorkflowTaskCompleted */
        uint64_t activity_started; /* the ActivityTaskStarted just appended, whose close is next */
        EventType close_type;      /* the workflow's close event, 0 while open */
        /* A standalone activity's run (durabled.activity(5)): no workflow code and no workflow
         * task, so its events are no workflow task's commands. */
        bool standalone;
        OpenActivity *acts;
        size_t n_acts, acts_alloc;
        OpenTimer *timers;
        size_t n_timers, timers_alloc;
        SeenUpdate *updates;
        size_t n_updates, updates_alloc;
        uint64_t problem_event;
        char *problem;
        bool oom;
};

int history_lint_new(HistoryLint **ret) {
        HistoryLint *l = calloc(1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        *ret = l;
        return 0;
}

HistoryLint *history_lint_free(HistoryLint *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_acts; i++)
                free(l->acts[i].activity_id);
        for (size_t i = 0; i < l->n_timers; i++)
                free(l->timers[i].timer_id);
        for (size_t i = 0; i < l->n_updates; i++)
                free(l->updates[i].update_id);
        free(l->acts);
        free(l->timers);
        free(l->updates);
        free(l->problem);
        free(l);
        return NULL;
}

static const char *type_name(EventType t) {
        const char *n = event_type_to_string(t);
        return n ? n : "unknown event type";
}

/* Records the first problem; always returns -EBADMSG (or -ENOMEM when even that fails). */
_printf_(4, 5) static int problem(
        HistoryLint *l, uint64_t event_id, EventType type, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (event_id)
                n = asprintf(&l->problem, "event %llu (%s): %s", (unsigned long long) event_id,
                             type_name(type), msg);
        else
                n = asprintf(&l->problem, "end of history: %s", msg);
        if (n < 0) {
                l->problem = NULL;
                l->oom = true;
                return -ENOMEM;
        }
        l->problem_event = event_id;
        return -EBADMSG;
}

/* A uint attribute; false when absent or of another type. */
static bool attr_u64(const msgpack_object *attrs, const char *key, uint64_t *ret) {
        const msgpack_object *o = msg_get(attrs, key);

        if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return false;
        *ret = o->via.u64;
        return true;
}

/* A str attribute as a NUL-terminated copy in @buf; false when absent, mistyped or too long. */
static bool attr_str(const msgpack_object *attrs, const char *key, char *buf, size_t size) {
        const msgpack_object *o = msg_get(attrs, key);

        if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
            memchr(o->via.str.ptr, 0, o->via.str.size))
                return false;
        memcpy(buf, o->via.str.ptr, o->via.str.size);
        buf[o->via.str.size] = 0;
        return true;
}

#define NEED_U64(l, id, t, attrs, key, var)                                                   \
        do {                                                                                  \
                if (!attr_u64(attrs, key, &(var)))                                            \
                        return problem(l, id, t, "attribute \"%s\" is missing or not a uint", \
                                       key);                                                  \
        } while (0)

static bool is_workflow_close(EventType t) {
        return t == EVENT_WORKFLOW_EXECUTION_COMPLETED || t == EVENT_WORKFLOW_EXECUTION_FAILED ||
               t == EVENT_WORKFLOW_EXECUTION_TIMED_OUT || t == EVENT_WORKFLOW_EXECUTION_CANCELED ||
               t == EVENT_WORKFLOW_EXECUTION_TERMINATED ||
               t == EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW;
}

static bool is_activity_close(EventType t) {
        return t == EVENT_ACTIVITY_TASK_COMPLETED || t == EVENT_ACTIVITY_TASK_FAILED ||
               t == EVENT_ACTIVITY_TASK_TIMED_OUT || t == EVENT_ACTIVITY_TASK_CANCELED;
}

/* Events appended for a command of a workflow task carry the id of its WorkflowTaskCompleted. */
static bool is_command_event(EventType t) {
        return t == EVENT_ACTIVITY_TASK_SCHEDULED || t == EVENT_ACTIVITY_TASK_CANCEL_REQUESTED ||
               t == EVENT_TIMER_STARTED || t == EVENT_TIMER_CANCELED ||
               t == EVENT_WORKFLOW_EXECUTION_COMPLETED || t == EVENT_WORKFLOW_EXECUTION_FAILED ||
               t == EVENT_WORKFLOW_EXECUTION_CANCELED || t == EVENT_MARKER_RECORDED ||
               t == EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED;
}

static OpenActivity *find_activity(HistoryLint *l, uint64_t scheduled_id) {
        for (size_t i = 0; i < l->n_acts; i++)
                if (l->acts[i].scheduled_id == scheduled_id)
                        return &l->acts[i];
        return NULL;
}

static OpenTimer *find_timer(HistoryLint *l, const char *timer_id) {
        for (size_t i = 0; i < l->n_timers; i++)
                if (streq(l->timers[i].timer_id, timer_id))
                        return &l->timers[i];
        return NULL;
}

static int lint_workflow_task(HistoryLint *l, uint64_t id, EventType t, const msgpack_object *a) {
        uint64_t sched, started;

        if (t == EVENT_WORKFLOW_TASK_SCHEDULED) {
                if (l->wft != WFT_PHASE_NONE)
                        return problem(l, id, t, "workflow task %llu is still pending",
                                       (unsigned long long) l->wft_scheduled_id);
                l->wft = WFT_PHASE_SCHEDULED;
                l->wft_scheduled_id = id;
                return 0;
        }
        NEED_U64(l, id, t, a, "scheduled_event_id", sched);
        if (l->wft == WFT_PHASE_NONE || sched != l->wft_scheduled_id)
                return problem(l, id, t, "scheduled_event_id %llu is not the pending workflow task",
                               (unsigned long long) sched);
        if (t == EVENT_WORKFLOW_TASK_STARTED) {
                if (l->wft != WFT_PHASE_SCHEDULED)
                        return problem(l, id, t, "workflow task %llu was already started",
                                       (unsigned long long) sched);
                l->wft = WFT_PHASE_STARTED;
                l->wft_started_id = id;
                return 0;
        }
        NEED_U64(l, id, t, a, "started_event_id", started);
        if (l->wft != WFT_PHASE_STARTED || started != l->wft_started_id)
                return problem(l, id, t, "started_event_id %llu is not the started workflow task",
                               (unsigned long long) started);
        l->wft = WFT_PHASE_NONE;
        if (t == EVENT_WORKFLOW_TASK_COMPLETED)
                l->wft_completed_id = id;
        return 0;
}

static int activity_scheduled(HistoryLint *l, uint64_t id, const msgpack_object *a) {
        EventType t = EVENT_ACTIVITY_TASK_SCHEDULED;
        char activity_id[1024];
        OpenActivity *n;

        if (!attr_str(a, "activity_id", activity_id, sizeof(activity_id)))
                return problem(l, id, t, "attribute \"activity_id\" is missing or not a string");
        for (size_t i = 0; i < l->n_acts; i++)
                if (streq(l->acts[i].activity_id, activity_id))
                        return problem(l, id, t,
                                       "activity id '%s' is already open (scheduled at event "
                                       "%llu)",
                                       activity_id, (unsigned long long) l->acts[i].scheduled_id);
        if (l->n_acts == l->acts_alloc) {
                size_t k = l->acts_alloc ? 2 * l->acts_alloc : 8;
                n = realloc(l->acts, k * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                l->acts = n;
                l->acts_alloc = k;
        }
        n = &l->acts[l->n_acts];
        *n = (OpenActivity){ .scheduled_id = id, .activity_id = strdup(activity_id) };
        if (!n->activity_id)
                return -ENOMEM;
        l->n_acts++;
        return 0;
}

static int lint_activity(HistoryLint *l, uint64_t id, EventType t, const msgpack_object *a) {
        OpenActivity *act;
        uint64_t sched, started;

        if (t == EVENT_ACTIVITY_TASK_SCHEDULED)
                return activity_scheduled(l, id, a);
        NEED_U64(l, id, t, a, "scheduled_event_id", sched);
        act = find_activity(l, sched);
        if (!act)
                return problem(l, id, t, "scheduled_event_id %llu is not an open activity",
                               (unsigned long long) sched);
        if (t == EVENT_ACTIVITY_TASK_CANCEL_REQUESTED)
                return 0;
        if (t == EVENT_ACTIVITY_TASK_STARTED) {
                if (act->started_id)
                        return problem(l, id, t, "activity '%s' was already started at event %llu",
                                       act->activity_id, (unsigned long long) act->started_id);
                act->started_id = id;
                l->activity_started = id;
                return 0;
        }
        NEED_U64(l, id, t, a, "started_event_id", started);
        if (started != act->started_id)
                return problem(l, id, t, "started_event_id %llu, but activity '%s' %s %llu",
                               (unsigned long long) started, act->activity_id,
                               act->started_id ? "started at event" : "never started, expected",
                               (unsigned long long) act->started_id);
        free(act->activity_id);
        *act = l->acts[--l->n_acts];
        return 0;
}

static int timer_started(HistoryLint *l, uint64_t id, uint64_t time, const msgpack_object *a) {
        EventType t = EVENT_TIMER_STARTED;
        char timer_id[1024];
        uint64_t duration;
        OpenTimer *n;

        if (!attr_str(a, "timer_id", timer_id, sizeof(timer_id)))
                return problem(l, id, t, "attribute \"timer_id\" is missing or not a string");
        NEED_U64(l, id, t, a, "start_to_fire_usec", duration);
        if (find_timer(l, timer_id))
                return problem(l, id, t, "timer '%s' is already running", timer_id);
        if (l->n_timers == l->timers_alloc) {
                size_t k = l->timers_alloc ? 2 * l->timers_alloc : 8;
                n = realloc(l->timers, k * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                l->timers = n;
                l->timers_alloc = k;
        }
        n = &l->timers[l->n_timers];
        *n = (OpenTimer){ .started_id = id, .due = time + duration, .timer_id = strdup(timer_id) };
        if (!n->timer_id)
                return -ENOMEM;
        l->n_timers++;
        return 0;
}

static int
lint_timer(HistoryLint *l, uint64_t id, EventType t, uint64_t time, const msgpack_object *a) {
        char timer_id[1024];
        uint64_t started;
        OpenTimer *tm;

        if (t == EVENT_TIMER_STARTED)
                return timer_started(l, id, time, a);
        if (!attr_str(a, "timer_id", timer_id, sizeof(timer_id)))
                return problem(l, id, t, "attribute \"timer_id\" is missing or not a string");
        NEED_U64(l, id, t, a, "started_event_id", started);
        tm = find_timer(l, timer_id);
        if (!tm)
                return problem(l, id, t, "timer '%s' is not running", timer_id);
        if (started != tm->started_id)
                return problem(l, id, t, "started_event_id %llu, but timer '%s' started at %llu",
                               (unsigned long long) started, timer_id,
                               (unsigned long long) tm->started_id);
        if (t == EVENT_TIMER_FIRED && time < tm->due)
                return problem(l, id, t, "timer '%s' fired %llu us early", timer_id,
                               (unsigned long long) (tm->due - time));
        free(tm->timer_id);
        *tm = l->timers[--l->n_timers];
        return 0;
}

static SeenUpdate *find_update(HistoryLint *l, const char *update_id) {
        for (size_t i = 0; i < l->n_updates; i++)
                if (streq(l->updates[i].update_id, update_id))
                        return &l->updates[i];
        return NULL;
}

static int update_accepted(HistoryLint *l, uint64_t id, const char *update_id) {
        EventType t = EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED;
        SeenUpdate *u = find_update(l, update_id);

        if (u)
                return problem(l, id, t, "update '%s' was already accepted at event %llu",
                               update_id, (unsigned long long) u->accepted_id);
        if (l->n_updates == l->updates_alloc) {
                size_t k = l->updates_alloc ? 2 * l->updates_alloc : 8;
                u = realloc(l->updates, k * sizeof(*u));
                if (!u)
                        return -ENOMEM;
                l->updates = u;
                l->updates_alloc = k;
        }
        u = &l->updates[l->n_updates];
        *u = (SeenUpdate){ .accepted_id = id, .update_id = strdup(update_id) };
        if (!u->update_id)
                return -ENOMEM;
        l->n_updates++;
        return 0;
}

static int lint_update(HistoryLint *l, uint64_t id, EventType t, const msgpack_object *a) {
        char update_id[1024];
        uint64_t accepted;
        SeenUpdate *u;

        if (t == EVENT_WORKFLOW_EXECUTION_UPDATE_REJECTED)
                return problem(l, id, t, "a rejected update leaves no event");
        if (!attr_str(a, "update_id", update_id, sizeof(update_id)))
                return problem(l, id, t, "attribute \"update_id\" is missing or not a string");
        if (t == EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
                return update_accepted(l, id, update_id);
        NEED_U64(l, id, t, a, "accepted_event_id", accepted);
        u = find_update(l, update_id);
        if (!u || u->accepted_id != accepted)
                return problem(l, id, t,
                               "accepted_event_id %llu is not the acceptance of update '%s'",
                               (unsigned long long) accepted, update_id);
        if (u->completed)
                return problem(l, id, t, "update '%s' was already completed", update_id);
        u->completed = true;
        return 0;
}

/* Order rules that hold whatever the event: ids, the start, what may follow what. */
static int lint_order(HistoryLint *l, uint64_t id, EventType t, const msgpack_object *a) {
        uint64_t wtc;

        if (id != l->last_id + 1)
                return problem(l, id, t, "expected event id %llu (ids must be dense from 1)",
                               (unsigned long long) (l->last_id + 1));
        if (!event_type_to_string(t))
                return problem(l, id, t, "unknown event type %d", (int) t);
        if ((id == 1) != (t == EVENT_WORKFLOW_EXECUTION_STARTED))
                return problem(l, id, t, "WorkflowExecutionStarted must be event 1, and only it");
        if (id == 1) {
                char type[64];

                /* The daemon's reserved type (daemon/history.h, HISTORY_STANDALONE_TYPE). */
                l->standalone = attr_str(a, "workflow_type", type, sizeof(type)) &&
                                streq(type, "durabled.StandaloneActivity");
        }
        if (l->close_type)
                return problem(l, id, t, "the workflow already closed with %s",
                               type_name(l->close_type));
        if (l->wft == WFT_PHASE_STARTED &&
            !(t >= EVENT_WORKFLOW_TASK_COMPLETED && t <= EVENT_WORKFLOW_TASK_FAILED))
                return problem(l, id, t, "workflow task started at event %llu is not closed first",
                               (unsigned long long) l->wft_started_id);
        if (l->activity_started && !is_activity_close(t))
                return problem(l, id, t, "the activity started at event %llu must close next",
                               (unsigned long long) l->activity_started);
        if (is_command_event(t) && !l->standalone) {
                NEED_U64(l, id, t, a, "workflow_task_completed_event_id", wtc);
                if (wtc == 0 || wtc != l->wft_completed_id)
                        return problem(l, id, t,
                                       "workflow_task_completed_event_id %llu is not the last "
                                       "WorkflowTaskCompleted (%llu)",
                                       (unsigned long long) wtc,
                                       (unsigned long long) l->wft_completed_id);
        }
        return 0;
}

int history_lint_event(HistoryLint *l,
                       uint64_t event_id,
                       EventType type,
                       uint64_t time,
                       const msgpack_object *attrs) {
        uint64_t started = l->activity_started;
        int r;

        if (l->oom)
                return -ENOMEM;
        if (l->problem)
                return -EBADMSG;
        r = lint_order(l, event_id, type, attrs);
        if (r < 0)
                return r;
        l->activity_started = 0;
        switch (type) {
        case EVENT_WORKFLOW_TASK_SCHEDULED ... EVENT_WORKFLOW_TASK_FAILED:
                r = lint_workflow_task(l, event_id, type, attrs);
                break;
        case EVENT_ACTIVITY_TASK_SCHEDULED ... EVENT_ACTIVITY_TASK_CANCELED:
                r = lint_activity(l, event_id, type, attrs);
                if (r >= 0 && started && is_activity_close(type) &&
                    !(attr_u64(attrs, "started_event_id", &started) && started == event_id - 1))
                        r = problem(l, event_id, type,
                                    "is not the close of the activity started "
                                    "right before");
                break;
        case EVENT_TIMER_STARTED ... EVENT_TIMER_CANCELED:
                r = lint_timer(l, event_id, type, time, attrs);
                break;
        case EVENT_MARKER_RECORDED: {
                char name[1024];

                /* Replay finds side effects and patches by name (libdurable(3)). */
                if (!attr_str(attrs, "marker_name", name, sizeof(name)) || !*name)
                        r = problem(l, event_id, type,
                                    "attribute \"marker_name\" is missing or not a string");
                break;
        }
        case EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED ... EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                r = lint_update(l, event_id, type, attrs);
                break;
        default:
                r = 0;
        }
        if (r < 0)
                return r;
        if (is_workflow_close(type))
                l->close_type = type;
        l->last_id = event_id;
        l->last_type = type;
        l->count++;
        return 0;
}

int history_lint_event_raw(HistoryLint *l,
                           uint64_t event_id,
                           EventType type,
                           uint64_t time,
                           const void *attrs,
                           size_t attrs_size) {
        msgpack_unpacked u;
        int r;

        if (l->oom)
                return -ENOMEM;
        if (l->problem)
                return -EBADMSG;
        msgpack_unpacked_init(&u);
        r = msg_decode(attrs, attrs_size, &u);
        if (r < 0)
                r = problem(l, event_id, type, "attributes are not one well-formed msgpack map");
        else
                r = history_lint_event(l, event_id, type, time, &u.data);
        msgpack_unpacked_destroy(&u);
        return r;
}

static EventType close_event_of(WorkflowStatus s) {
        switch (s) {
        case WORKFLOW_STATUS_COMPLETED:
                return EVENT_WORKFLOW_EXECUTION_COMPLETED;
        case WORKFLOW_STATUS_FAILED:
                return EVENT_WORKFLOW_EXECUTION_FAILED;
        case WORKFLOW_STATUS_CANCELED:
                return EVENT_WORKFLOW_EXECUTION_CANCELED;
        case WORKFLOW_STATUS_TERMINATED:
                return EVENT_WORKFLOW_EXECUTION_TERMINATED;
        case WORKFLOW_STATUS_CONTINUED_AS_NEW:
                return EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW;
        case WORKFLOW_STATUS_TIMED_OUT:
                return EVENT_WORKFLOW_EXECUTION_TIMED_OUT;
        default:
                return 0;
        }
}

int history_lint_end(HistoryLint *l, WorkflowStatus status, uint64_t next_event_id) {
        if (l->oom)
                return -ENOMEM;
        if (l->problem)
                return -EBADMSG;
        if (l->count == 0)
                return problem(l, 0, 0, "the history is empty");
        if (next_event_id && l->last_id + 1 != next_event_id)
                return problem(l, 0, 0, "the last event is %llu, the run says %llu",
                               (unsigned long long) l->last_id,
                               (unsigned long long) (next_event_id - 1));
        if (status == WORKFLOW_STATUS_RUNNING && l->close_type)
                return problem(l, 0, 0, "the run is Running but closed with %s",
                               type_name(l->close_type));
        if (status > WORKFLOW_STATUS_RUNNING && l->close_type != close_event_of(status))
                return problem(l, 0, 0, "the run is %s but %s", workflow_status_to_string(status),
                               l->close_type ? type_name(l->close_type) : "has no close event");
        if (l->activity_started)
                return problem(l, 0, 0, "the activity started at event %llu has no close event",
                               (unsigned long long) l->activity_started);
        return 0;
}

const char *history_lint_problem(const HistoryLint *l) {
        return l->problem;
}

uint64_t history_lint_problem_event(const HistoryLint *l) {
        return l->problem_event;
}

uint64_t history_lint_count(const HistoryLint *l) {
        return l->count;
}
