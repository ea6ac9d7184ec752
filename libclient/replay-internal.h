#pragma once
/* The Run's insides, shared by replay.c (the engine: events, scheduler, command matching) and
 * workflow.c (the dur_wf calls of workflow code). Nobody else includes this. */

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/list.h"
#include "durable/durable.h"
#include "libclient/coro.h"
#include "libclient/logging.h"
#include "libclient/replay.h"
#include "proto/event.h"

/* MarkerRecorded names (Temporal's: Go's SideEffect and MutableSideEffect, core's patch marker)
 * and the search attribute that lists a run's patches. */
#define MARKER_SIDE_EFFECT "SideEffect"
#define MARKER_MUTABLE_SIDE_EFFECT "MutableSideEffect"
#define MARKER_PATCH "core_patch"
#define CHANGE_VERSION_ATTR "TemporalChangeVersion"

typedef struct Routine Routine;
typedef struct Command Command;

typedef enum FutureKind {
        FUTURE_ACTIVITY,
        FUTURE_TIMER,
        FUTURE_CHILD, /* a child workflow */
} FutureKind;

/* An activity or timer started by workflow code. Owned by its Run; lives as long as the run. */
struct dur_future {
        Run *run;
        FutureKind kind;
        char id[24];                 /* activity_id or timer_id: "1", "2", ... */
        Command *command;            /* its start command while not yet matched (so: unsent) */
        uint64_t scheduled_event_id; /* activity: id of its ActivityTaskScheduled, child: of its
                                      * StartChildWorkflowExecutionInitiated, once matched */
        char *child_workflow_id;     /* child: owned */
        char child_run_id[37];       /* child: once ChildWorkflowExecutionStarted came */
        bool child_started;
        bool cancel_sent; /* child: RequestCancelExternalWorkflowExecution issued; activity
                           * (WAIT_CANCELLATION_COMPLETED): RequestCancelActivityTask issued */
        bool detached;    /* started in a dur_detached() scope: the workflow's cancel request
                           * leaves it running */
        dur_activity_cancellation_type cancel_type; /* activity */
        char *name;        /* activity: its type, for __stack_trace; owned */
        uint64_t duration; /* timer: start_to_fire, for __stack_trace */
        bool done;
        int result;           /* once done: 0, DUR_FAILED or DUR_CANCELED */
        msgpack_object value; /* activity result (nil if none), in the run's zone */
        dur_failure *failure; /* owned; with DUR_FAILED */
        LIST_FIELDS(dur_future, futures);
};

/* A command issued by workflow code and not yet matched with its history event. */
struct Command {
        CommandType type;
        char id[24];         /* activity_id or timer_id; "" for the others */
        char *activity_type; /* ScheduleActivityTask: activity type; StartChild: workflow type;
                              * RecordMarker: marker name */
        char *workflow_id;   /* StartChild, RequestCancelExternal: the child's id; RecordMarker:
                              * marker id */
        char *update_id;     /* CompleteWorkflowUpdate: the update's id */
        uint64_t scheduled_event_id; /* RequestCancelActivityTask only */
        dur_future *future;          /* the activity or timer it starts, if any */
        bool change_version; /* UpsertWorkflowSearchAttributes of TemporalChangeVersion, which
                              * dur_patched() issues as bookkeeping (see on_command_event()) */
        char *packed;                /* the whole command map, ready to send */
        size_t packed_size;
        LIST_FIELDS(Command, commands);
};

typedef bool (*routine_ready_fn)(Run *r, void *userdata);

/* One coroutine of a run: the main function, a signal or update handler, or a dur_go() spawn. */
struct Routine {
        Run *run;
        Coro *coro;
        char *name; /* for messages: "main", "signal 'x'", "coroutine 2" */
        int (*go_fn)(dur_wf *wf, void *arg);
        void *go_arg;
        dur_signal_fn signal_fn;
        /* An update handler: its definition (NULL when this code has none for the accepted
         * update's name), its id and the result it packs. */
        bool is_update;
        const dur_update_def *update;
        char *update_id;
        msgpack_sbuffer update_result;
        msgpack_object *input;  /* signal or main input, in the run's zone */
        routine_ready_fn ready; /* set while blocked: may it continue? */
        void *ready_arg;
        bool canceled; /* the workflow's cancel request is waiting for this routine */
        unsigned detached; /* depth of dur_detached() scopes: the cancel request waits */
        int ret;
        LIST_FIELDS(Routine, routines);
};

/* A MarkerRecorded read ahead (see Run.markers). */
typedef struct RunMarker {
        uint64_t event_id;
        const msgpack_object *attrs;
        bool taken;
} RunMarker;

/* What dur_patched() answered for a patch id, or the last value of a mutable side effect. */
typedef struct RunMemo {
        bool patch; /* else a mutable side effect */
        char *id;
        bool patched;
        msgpack_object value; /* mutable side effect, in the run's zone */
        char *packed;         /* ... and its msgpack bytes, to compare */
        size_t packed_size;
        LIST_FIELDS(struct RunMemo, memos);
} RunMemo;

struct dur_wf {
        const dur_workflow_def *def;
        char *workflow_id;
        char *run_id;
        uint64_t next_event_id;
        msgpack_zone *zone; /* objects handed to user code; freed with the run */
        void *state;        /* dur_wf_state() */
        size_t state_size;
        uint64_t rng;          /* dur_random() state, seeded from the run id */
        unsigned activity_seq; /* last activity_id issued */
        unsigned timer_seq;    /* last timer_id issued */
        unsigned routine_seq;
        unsigned attempt; /* dur_wf_attempt(), from WorkflowExecutionStarted */

        Routine *routines;   /* in creation order: the scheduling order */
        Routine *current;    /* the routine running now, NULL in the scheduler or a query */
        Command *commands;   /* issued, not yet matched; FIFO */
        dur_future *pending; /* futures not resolved yet */
        dur_future *resolved;

        uint64_t now;   /* time of the execution point's WorkflowTaskStarted */
        bool executing; /* inside an execution point */
        bool replaying; /* ... of a task that history already completed */
        bool in_query;
        uint64_t executed_event_id; /* the WorkflowTaskStarted last executed as a current task */

        bool started;
        bool main_finished;
        int main_ret;
        msgpack_sbuffer main_result;
        bool closed; /* close command issued */
        bool cancel_requested;
        bool cancel_delivered;

        msgpack_sbuffer continue_attrs; /* dur_continue_as_new(): the command's attributes */
        bool continue_requested;

        const dur_failure *failure; /* dur_wf_failure(): borrowed from a future, or own_failure */
        dur_failure *own_failure;   /* set by dur_fail() */

        const char *error_cause;
        char error_message[512];

        /* Markers (side effects, patches): while an execution point replays a task, the
         * MarkerRecorded events of that task's commands, which workflow code reads ahead of
         * matching (run_take_marker()). Borrowed from the batch being applied. */
        const msgpack_object *batch; /* the events array of run_apply_events() */
        uint32_t batch_index;        /* the event being applied */
        RunMarker *markers;
        size_t n_markers, markers_alloc;
        uint64_t markers_task_id; /* the WorkflowTaskCompleted of the task they belong to */
        unsigned side_effect_seq;
        RunMemo *memos; /* dur_patched() answers and mutable side effect values */
};

/* replay.c */
/* Blocks the current routine until ready(r, userdata) is true. Returns 0 then, DUR_CANCELED when
 * the workflow's cancel request reached this routine instead, -EDEADLK when not called from a
 * routine (a query handler, a wait_condition predicate). */
int run_block(Run *r, routine_ready_fn ready, void *userdata);
/* Appends a command built from @tmpl (type, id, activity_type, scheduled_event_id, future are
 * copied) with the packed attributes map @attrs. */
int run_add_command(Run *r, const Command *tmpl, const char *attrs, size_t attrs_size);
dur_future *run_new_future(Run *r, FutureKind kind);
void run_resolve_future(Run *r, dur_future *f, int result, dur_failure *failure);
/* Frees a future that never got a command (an error path of its creator). */
void run_forget_future(Run *r, dur_future *f);
/* Cancels a pending future: drops its start command if still unsent, else issues
 * RequestCancelActivityTask/CancelTimer; the future resolves as DUR_CANCELED at once, except an
 * activity of cancellation type WAIT_CANCELLATION_COMPLETED, which resolves when the activity
 * reports back (ABANDON issues no request). */
int run_cancel_future(Run *r, dur_future *f);
int run_spawn(Run *r, int (*fn)(dur_wf *wf, void *arg), void *arg);
/* May workflow code issue commands now? Not from a query nor outside an execution point. */
bool run_can_issue(const Run *r);
/* The first MarkerRecorded not taken yet, of @name and @id, among those of the task being
 * replayed (none when the execution point is not replaying); marks it taken. */
const RunMarker *run_take_marker(Run *r, const char *name, const char *id);
/* Decodes a marker's "details" payload into the run's zone (nil when absent). */
int run_marker_details(Run *r, const RunMarker *m, msgpack_object *ret);
/* run_take_marker() found nothing while replaying: run_fail_task() with a NonDeterministicError
 * naming the replayed task's event and both sides. */
int run_marker_missing(Run *r, const char *name, const char *id);
/* Workflow code cannot go on: it asked for something history contradicts (@nondeterministic: a
 * side effect with no marker), or a side effect function failed. The execution point fails with
 * a NonDeterministicError resp. WorkflowError saying @fmt (the workflow task fails), and the
 * current routine stops here for good. Returns -EPROTO only when not called from a routine. */
int run_fail_task(Run *r, bool nondeterministic, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* __stack_trace (workflow.c): one line per routine naming what it is blocked in. */
int run_stack_trace(Run *r, msgpack_sbuffer *ret);
