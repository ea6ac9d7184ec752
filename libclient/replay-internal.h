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
        bool cancel_sent; /* child: RequestCancelExternalWorkflowExecution issued */
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
        char *activity_type; /* ScheduleActivityTask: activity type; StartChild: workflow type */
        char *workflow_id;   /* StartChild, RequestCancelExternal: the child's id */
        char *update_id;     /* CompleteWorkflowUpdate: the update's id */
        uint64_t scheduled_event_id; /* RequestCancelActivityTask only */
        dur_future *future;          /* the activity or timer it starts, if any */
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
        int ret;
        LIST_FIELDS(Routine, routines);
};

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
 * RequestCancelActivityTask/CancelTimer; the future resolves as DUR_CANCELED at once. */
int run_cancel_future(Run *r, dur_future *f);
int run_spawn(Run *r, int (*fn)(dur_wf *wf, void *arg), void *arg);
/* May workflow code issue commands now? Not from a query nor outside an execution point. */
bool run_can_issue(const Run *r);
