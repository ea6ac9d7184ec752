#pragma once
/* The history engine: every state change of a run, as events appended to its history and rows
 * of the store, following Temporal's model (doc/protocol.md). It knows runs, not connections:
 * callers (api-sock.c, the deadline timer, task dispatch) give it decoded requests and get back
 * data to answer with. All functions run inside the pass's transaction; errors are negative
 * errno with a sentence for the user in @e.
 *
 * Workflow task states (RunRow.wft_state):
 *
 *    NONE --new event--> SCHEDULED --dispatched--> STARTED --completed--> NONE
 *      ^                                              |  (external events are buffered
 *      +---- failed / timed out (retry, backoff) -----+   while STARTED, flushed after)
 *
 *    DELAYED (start_delay: events are appended, no task) --delay passed, or
 *      signal-with-start--> NONE, and a task is scheduled at once
 *
 * Activity states (ActivityRow.state):
 *
 *    SCHEDULED --dispatched--> STARTED --completed / final failure / timeout--> (row deleted)
 *        ^                        |
 *        +--retry delay-- BACKOFF <-- retryable failure, start-to-close or heartbeat timeout
 */

#include <stdbool.h>
#include <stdint.h>

#include "daemon/api-error.h"
#include "daemon/manager.h"
#include "daemon/store.h"
#include "proto/msg.h"
#include "proto/policy.h"

/* The max_len of a payload field: durabled --max-payload-size, msg_payload_limit() (msg.h). */
#define PAYLOAD_SIZE_MAX MSG_PAYLOAD_LIMIT
#define TASK_TIMEOUT_DEFAULT_USEC (10ULL * 1000000)
#define TASK_TIMEOUT_MAX_USEC (120ULL * 1000000)
#define WFT_BACKOFF_MAX_USEC (10ULL * 60 * 1000000)
#define HISTORY_TOKEN_MAX 128 /* task tokens are "A/<run id>/<scheduled id>/<attempt>" and shorter */

typedef struct StartRequest {
        const char *workflow_id;
        const char *workflow_type;
        const char *task_queue;
        MsgBin input;
        uint64_t task_timeout_usec;
        uint64_t execution_timeout_usec;    /* the whole continue-as-new chain; 0 = none */
        uint64_t run_timeout_usec;          /* one run; 0 = none (capped at the execution's) */
        uint64_t start_delay_usec;          /* first workflow task after this delay */
        uint64_t execution_expiration;      /* continue-as-new: the chain's absolute deadline */
        const msgpack_object *retry_policy; /* the workflow's retry policy map, or NULL */
        uint64_t attempt;                   /* with a retry policy: 1, 2, ... */
        const char *initiator;              /* a continued run: "Workflow" or "Retry" */
        const char *request_id;
        IdReusePolicy id_reuse_policy;       /* for a closed previous run (proto/policy.h) */
        IdConflictPolicy id_conflict_policy; /* for a running one */
        const char *signal_name;             /* SignalWithStart: the signal to deliver */
        MsgBin signal_input;
        unsigned priority;      /* priority key 1..5 (taskset.h); 0: the default, 3 */
        const char *fairness_key; /* NULL: "" */
        double fairness_weight;   /* 0: 1.0 */
        /* Id conflict policy Queue: the request as it came (a msgpack map), kept to be run again
         * when the running run closes; NULL where the policy is refused (signal-with-start). */
        const MsgBin *queue_request;
        bool *ret_queued;            /* set when the start was queued */
        const char *reserved_run_id; /* a queued start: the run id it was answered with */
        const ChildRow *parent; /* a child workflow: its parent (history-child.c) */
        bool caller_admin;      /* may see every run; else only runs of the actor's uid */
        bool standalone;   /* a standalone activity's run: no workflow task (history-standalone.c) */
        /* Checked by visibility_check(); either may be NULL. */
        const msgpack_object *memo;
        const msgpack_object *search_attributes;
} StartRequest;

/* Standalone activities (history-standalone.c): a run of this reserved workflow type holds one
 * activity and closes as it closes. */
#define HISTORY_STANDALONE_TYPE "durabled.StandaloneActivity"

typedef struct StandaloneRequest {
        const char *activity_id; /* also the run's workflow id */
        const char *activity_type;
        const char *task_queue; /* default: the activity unit's TaskQueue=, else "durabled.standalone" */
        MsgBin input;
        uint64_t schedule_to_close_usec;
        uint64_t start_to_close_usec;
        uint64_t heartbeat_usec;
        const msgpack_object *retry_policy;
        const char *request_id;
        bool caller_admin;
} StandaloneRequest;

/* The fields of StartActivity (doc/protocol.md), for msg_parse() into a StandaloneRequest. */
const MsgField *history_standalone_fields(void);
int history_start_standalone(Manager *m,
                             const StandaloneRequest *req,
                             char ret_run_id[static 37],
                             bool *ret_started,
                             ApiError *e);


/* Starts a run, or answers with an existing one (*ret_started false) when the request_id matches
 * the latest run or the conflict policy is UseExisting. With @req->signal_name (SignalWithStart)
 * the signal goes to the running run, or to the new one right after WorkflowExecutionStarted.
 * -EEXIST (already_started) when a policy refuses the start. */
int history_start_workflow(Manager *m,
                           const StartRequest *req,
                           char ret_run_id[static 37],
                           bool *ret_started,
                           ApiError *e);
/* invalid_argument, naming the problem, unless @policy is a valid retry policy map. */
/* The priority fields of a request or command: a priority key 0 (unset) or 1..5, a fairness
 * weight 0 (unset) or positive; else -EINVAL with a sentence naming the field. */
int history_check_priority(uint64_t priority, double fairness_weight, char *err, size_t errlen);
int history_check_retry_policy(const msgpack_object *policy, msgpack_zone *z, ApiError *e);
/* The run that continues @run: it continued as new, failed or timed out and was retried, or was
 * terminated by a reset (history-reset.c);
 * -ENOENT when none does. */
int history_continued_run_id(Manager *m, const RunRow *run, char ret_run_id[static 37]);
/* Replaces @run by the last run of its continue-as-new chain (itself when it did not continue). */
int history_follow_chain(Manager *m, RunRow *run);
/* The sum of the sizes of the run's event attributes, in bytes. */
int history_size_bytes(Manager *m, const RunRow *run, uint64_t *ret);
int history_signal(
        Manager *m, const char *run_id, const char *signal_name, const MsgBin *input, ApiError *e);
int history_request_cancel(Manager *m, const char *run_id, const char *reason, ApiError *e);
int history_terminate(
        Manager *m, const char *run_id, const char *reason, const MsgBin *details, ApiError *e);

/* Operators' pause (history-pause.c): no task of a paused run is dispatched, its process
 * activities are frozen; events are still recorded. -ESTALE (failed_precondition) when the run
 * is paused already (history_pause()) or not paused (history_unpause()). */
typedef struct PauseRequest {
        const char *reason;
        const char *identity;
} PauseRequest;
int history_pause(Manager *m, const char *run_id, const PauseRequest *req, ApiError *e);
int history_unpause(Manager *m, const char *run_id, const PauseRequest *req, ApiError *e);

/* A new run branched from a prefix of run @base_run_id's history (history-reset.c): reset to a
 * workflow task, redrive a failed run from its failed step, fork from step N under another
 * workflow id. */
typedef enum BranchKind {
        BRANCH_RESET,
        BRANCH_REDRIVE,
        BRANCH_FORK,
        _BRANCH_KIND_MAX,
} BranchKind;

typedef struct BranchRequest {
        BranchKind kind;
        const char *base_run_id;
        uint64_t event_id;           /* reset: a WorkflowTaskCompleted|Failed|TimedOut; 0: @to */
        const char *to;              /* reset: "first" or "last" (the default) workflow task */
        bool reapply_signals;        /* reset, redrive: signals after the cut are appended again */
        uint64_t step;               /* fork: from the step-th activity (1-based); 0: the start */
        const char *new_workflow_id; /* fork */
        const char *reason;
} BranchRequest;
int history_branch(Manager *m, const BranchRequest *req, char ret_run_id[static 37], ApiError *e);

/* A new UUIDv7, as run ids are (for other ids too: batch ids). */
void history_new_id(char out[static 37]);

/* Deletes a run with its history (history-delete.c), terminating it first when it is open. */
int history_delete(Manager *m, const char *run_id, const char *reason, ApiError *e);

/* Operators on one pending activity of a run, named by its activity id (history-pause.c):
 * pause (no attempt is dispatched, a running process attempt is frozen; an attempt of a worker
 * runs on and its failure waits for the unpause), unpause, or reset its attempt count to 1 (one
 * waiting for a retry becomes ready at once; a running attempt cannot be reset). -ENOENT when no
 * such activity is pending, -ESTALE when it is paused already, not paused, or running. */
typedef enum ActivityControl {
        ACTIVITY_PAUSE,
        ACTIVITY_UNPAUSE,
        ACTIVITY_RESET,
} ActivityControl;
int history_control_activity(
        Manager *m, const char *run_id, const char *activity_id, ActivityControl what, ApiError *e);

/* Dispatch: -ESTALE when the task no longer applies (the caller drops it). Packs the task map. */
int history_start_workflow_task(Manager *m,
                                const char *run_id,
                                uint64_t scheduled_id,
                                const char *identity,
                                uint64_t conn_serial,
                                msgpack_packer *pk);
/* Marks the attempt started (state, identity, start-to-close and heartbeat deadlines) and returns
 * its rows; -ESTALE when the task no longer applies. For process activities (activity.c). */
int history_start_activity_attempt(Manager *m,
                                   const char *run_id,
                                   uint64_t scheduled_id,
                                   const char *identity,
                                   RunRow *ret_run,
                                   ActivityRow *ret_act);
int history_start_activity_task(Manager *m,
                                const char *run_id,
                                uint64_t scheduled_id,
                                const char *identity,
                                msgpack_packer *pk);

/* The operations that take a task token: a token is a capability, but a guessable one (it names
 * the run and the attempt), so only the run's owner (m->actor_uid) or an administrator
 * (m->actor_admin, or the daemon itself) may use it; another user's token is "not found" with
 * the very message of a stale one (DESIGN.md §10). A malformed token is -EINVAL. */
int history_complete_workflow_task(Manager *m,
                                   const MsgBin *token,
                                   const msgpack_object *commands,
                                   const char *identity,
                                   uint64_t conn_serial,
                                   ApiError *e);
int history_fail_workflow_task(Manager *m,
                               const MsgBin *token,
                               const char *cause,
                               const msgpack_object *failure,
                               ApiError *e);

int history_complete_activity(Manager *m, const MsgBin *token, const MsgBin *result, ApiError *e);
/* The task token of the running attempt of activity @activity_id of @run, for completing it by
 * id (asynchronous completion): -ENOENT, with the reason in @e, when there is no such activity or
 * no attempt of it runs. */
int history_activity_token(Manager *m,
                           const RunRow *run,
                           const char *activity_id,
                           char buf[static HISTORY_TOKEN_MAX],
                           ApiError *e);
int history_fail_activity(Manager *m,
                          const MsgBin *token,
                          const msgpack_object *failure,
                          uint64_t next_retry_delay_usec,
                          ApiError *e);
int history_heartbeat_activity(Manager *m,
                               const MsgBin *token,
                               const MsgBin *details,
                               bool *ret_cancel_requested,
                               ApiError *e);
int history_cancel_activity(Manager *m, const MsgBin *token, const MsgBin *details, ApiError *e);

/* Updates (history-update.c). What the history says about a run's updates, and about the one
 * @update_id (may be NULL). */
typedef struct UpdateState {
        bool accepted;         /* @update_id was accepted (its event may still be buffered) */
        uint64_t accepted_id;  /* its WorkflowExecutionUpdateAccepted; 0 while buffered */
        uint64_t completed_id; /* its WorkflowExecutionUpdateCompleted; 0 while it runs */
        Blob result;           /* once completed: the result payload, raw msgpack (or empty) */
        Blob failure;          /* ... or the handler's failure map, raw msgpack */
        unsigned total;        /* updates accepted in the run */
        unsigned in_flight;    /* of those, not completed */
} UpdateState;
void update_state_done(UpdateState *u);
int history_update_state(Manager *m, const RunRow *run, const char *update_id, UpdateState *ret);

typedef struct UpdateRequest {
        const char *update_id;
        const char *name;
        MsgBin input;
        const char *identity; /* may be NULL */
} UpdateRequest;

/* A fresh random UUID (the default update id). */
void history_uuid(char out[static 37]);
/* A validated update: appends WorkflowExecutionUpdateAccepted (recording m->actor_uid) and
 * schedules a workflow task for it; nothing when that update id was accepted already. -ENOENT
 * when the run closed meanwhile, -ENOBUFS at the history limit. */
int history_accept_update(Manager *m, const char *run_id, const UpdateRequest *req, ApiError *e);
/* Packs the "update" map of doc/protocol.md: update_id, run_id, stage, and once Completed the
 * result or the failure. */
int history_pack_update(msgpack_packer *pk,
                        const char *run_id,
                        const char *update_id,
                        const UpdateState *u);

/* Acts on a deadline that came due (stale ones are ignored). */
int history_on_deadline(Manager *m, const Deadline *d);

/* Packs events [from, next_event_id) of a run as an array. */
int history_pack_events(Manager *m, const RunRow *run, uint64_t from, msgpack_packer *pk);
/* Packs the "workflow" map of doc/protocol.md. */
int history_pack_workflow(const RunRow *run, msgpack_packer *pk);
