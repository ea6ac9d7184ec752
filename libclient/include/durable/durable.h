#pragma once
/* libdurable: the C client, worker and workflow API of durabled.
 *
 * Three roles share this header:
 *  - clients start, signal, query, update, cancel, terminate and inspect workflows
 *    (dur_client_*);
 *  - workers poll a task queue and run registered workflow and activity code (dur_worker_*);
 *  - workflow code runs on coroutines inside a worker and must be deterministic: it talks to the
 *    outside world only through the dur_* calls that take a dur_wf (activities, timers, signals).
 *
 * Payloads are msgpack. Inputs reach user code as const msgpack_object *; results are written
 * with a msgpack_packer. Every msgpack string libdurable hands to user code is NUL-terminated, so
 * dur_unpack()'s "s" gives a usable C string. Objects stay valid as long as the call (activity),
 * or the run (workflow) they were handed to.
 *
 * Errors: functions return 0 (or a count) on success and a negative errno-style value on failure;
 * the workflow calls additionally return DUR_FAILED when the awaited operation failed (the
 * failure is then in dur_wf_failure()) and DUR_CANCELED when the workflow was cancelled.
 * libdurable never writes to stderr; see dur_set_log_func(). */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DUR_PUBLIC __attribute__((visibility("default")))

/* Durations and times are microseconds. */
#define DUR_USEC ((uint64_t) 1)
#define DUR_MSEC ((uint64_t) 1000)
#define DUR_SEC ((uint64_t) 1000000)
#define DUR_MIN (60 * DUR_SEC)
#define DUR_HOUR (60 * DUR_MIN)

/* Results of workflow calls besides 0 and -errno. */
#define DUR_FAILED (-10000)           /* the operation failed; see dur_wf_failure() */
#define DUR_CANCELED (-10001)         /* the workflow (or this operation) was cancelled */
#define DUR_CONTINUED_AS_NEW (-10002) /* returned by dur_continue_as_new() */
/* An activity function's "I complete later": the attempt stays running until someone with its
 * task token (dur_actx_task_token()) or its workflow and activity ids completes, fails or
 * heartbeats it with dur_client_complete_activity() and friends or `durablectl activity
 * complete`, or its start-to-close or heartbeat timeout ends it (Temporal's asynchronous
 * activity completion). */
#define DUR_ASYNC (-10003)
/* dur_client_update(): the workflow's validator rejected the update; nothing was recorded. */
#define DUR_REJECTED (-10004)

/* Propagates a failure out of a workflow or activity function. */
#define DUR_TRY(expr)                  \
        do {                           \
                int _dur_r = (expr);   \
                if (_dur_r < 0)        \
                        return _dur_r; \
        } while (0)

typedef struct dur_client dur_client;
typedef struct dur_worker dur_worker;
typedef struct dur_wf dur_wf;
typedef struct dur_future dur_future;
typedef struct dur_actx dur_actx;
typedef struct dur_failure dur_failure;

/* An owned buffer of msgpack bytes (a payload, or a whole answer map). */
typedef struct dur_buf {
        char *data;
        size_t size;
} dur_buf;

DUR_PUBLIC dur_buf *dur_buf_free(dur_buf *b);
/* A payload of one msgpack value, built with a format (see dur_pack). NULL on a bad format or OOM. */
DUR_PUBLIC dur_buf *dur_args(const char *fmt, ...);
DUR_PUBLIC dur_buf *dur_buf_from_object(const msgpack_object *o);
/* Parses JSON text into a msgpack payload; NULL on invalid JSON (errno = EINVAL). */
DUR_PUBLIC dur_buf *dur_buf_from_json(const char *json);
/* Renders the msgpack value in b (or o) as JSON text; the caller frees the string. */
DUR_PUBLIC char *dur_buf_to_json(const dur_buf *b);
DUR_PUBLIC char *dur_object_to_json(const msgpack_object *o);

/* jansson-like formats over msgpack:
 *   { } map, [ ] array, s string (const char *), s# string with length (const char *, int),
 *   i int, I int64_t, u unsigned, U uint64_t, b bool (int), f double, n nil, o msgpack_object *.
 * In dur_unpack, map keys are given as s, "?" after a key makes it optional (the target is left
 * untouched when the key is absent or nil), and targets are pointers: s const char **, i int *,
 * I int64_t *, u unsigned *, U uint64_t *, b bool *, f double *, o const msgpack_object **.
 * Spaces, ':' and ',' between items are ignored ("{s:s, s:i}"). When packing, "?" after s, s# or o
 * packs nil for a NULL pointer (plain s and o refuse NULL). When unpacking, s refuses a string
 * holding a NUL byte, s# takes (const char **, size_t *), f also accepts integers, extra map keys
 * and array items are ignored, and targets are written only when the whole call succeeds.
 * Return 0 on success, -EINVAL on a format error, a missing required key or a value of the wrong
 * type, -ERANGE for an integer that does not fit its target, -ENOMEM. */
DUR_PUBLIC int dur_pack(msgpack_packer *pk, const char *fmt, ...);
DUR_PUBLIC int dur_vpack(msgpack_packer *pk, const char *fmt, va_list ap);
DUR_PUBLIC int dur_unpack(const msgpack_object *o, const char *fmt, ...);

/* A failure: message, type, non_retryable, details and an optional cause. */
DUR_PUBLIC const char *dur_failure_message(const dur_failure *f);
DUR_PUBLIC const char *dur_failure_type(const dur_failure *f);
DUR_PUBLIC bool dur_failure_non_retryable(const dur_failure *f);
DUR_PUBLIC const msgpack_object *dur_failure_details(const dur_failure *f);
DUR_PUBLIC const dur_failure *dur_failure_cause(const dur_failure *f);

/* ---- Client ---------------------------------------------------------------------------------- */

/* Connects to durabled: @socket_path, else $DURABLED_SOCKET, else the default socket of the
 * caller's mode ($XDG_RUNTIME_DIR/durabled/io.sock for non-root, /run/durabled/io.sock for root).
 * A dur_client is not thread-safe: use one per thread. */
DUR_PUBLIC int dur_client_connect(dur_client **ret, const char *socket_path);
DUR_PUBLIC dur_client *dur_client_free(dur_client *c);
/* The daemon's last error for this client: code (e.g. "not_found") and message. */
DUR_PUBLIC const char *dur_client_error_code(const dur_client *c);
DUR_PUBLIC const char *dur_client_error_message(const dur_client *c);

/* A typed search attribute (Temporal's IndexedValueType): set at start, upserted by the
 * workflow, matched by ListWorkflows/CountWorkflows queries. A name's type is fixed by its first
 * use on a daemon. DUR_SA_UNSET (upsert only) removes the attribute. */
typedef enum dur_sa_type {
        DUR_SA_KEYWORD = 1,
        DUR_SA_TEXT = 2,
        DUR_SA_INT = 3,
        DUR_SA_DOUBLE = 4,
        DUR_SA_BOOL = 5,
        DUR_SA_DATETIME = 6,
        DUR_SA_KEYWORD_LIST = 7,
        DUR_SA_UNSET = 8,
} dur_sa_type;

typedef struct dur_search_attr {
        const char *name; /* letters, digits, '_' */
        dur_sa_type type;
        const char *str;         /* Keyword, Text */
        int64_t num;             /* Int; Bool (0 or 1); Datetime (usec since the epoch) */
        double dbl;              /* Double */
        const char *const *list; /* KeywordList */
        size_t list_len;
} dur_search_attr;

/* Temporal's RetryPolicy, for activities and workflows. */
typedef struct dur_retry_policy {
        uint64_t initial_interval;                    /* 0 = 1 s */
        double backoff_coefficient;                   /* 0 = 2.0 */
        uint64_t maximum_interval;                    /* 0 = 100 x initial_interval */
        uint32_t maximum_attempts;                    /* 0 = unlimited, 1 = no retries */
        const char *const *non_retryable_error_types; /* NULL-terminated, or NULL */
} dur_retry_policy;

/* What a start does when the latest run of its workflow id is closed (Temporal's
 * WorkflowIdReusePolicy, same numbers). */
typedef enum dur_id_reuse_policy {
        DUR_ID_REUSE_DEFAULT = 0,                     /* = ALLOW_DUPLICATE */
        DUR_ID_REUSE_ALLOW_DUPLICATE = 1,             /* a new run may start */
        DUR_ID_REUSE_ALLOW_DUPLICATE_FAILED_ONLY = 2, /* only if it failed, was canceled,
                                                       * terminated or timed out */
        DUR_ID_REUSE_REJECT_DUPLICATE = 3,            /* never: -EEXIST (already_started) */
        DUR_ID_REUSE_TERMINATE_IF_RUNNING = 4,        /* ALLOW_DUPLICATE, and a running run is
                                                    * terminated (as TERMINATE_EXISTING) */
} dur_id_reuse_policy;

/* What a start does when a run of its workflow id is running (Temporal's
 * WorkflowIdConflictPolicy, same numbers). */
typedef enum dur_id_conflict_policy {
        DUR_ID_CONFLICT_DEFAULT = 0,            /* FAIL (USE_EXISTING for signal-with-start) */
        DUR_ID_CONFLICT_FAIL = 1,               /* -EEXIST (already_started) */
        DUR_ID_CONFLICT_USE_EXISTING = 2,       /* return the running run; no new run */
        DUR_ID_CONFLICT_TERMINATE_EXISTING = 3, /* terminate it, start a new run */
        DUR_ID_CONFLICT_QUEUE = 4, /* durabled's own: the start is recorded and the run starts
                                    * when the running one closes (serial per workflow id) */
} dur_id_conflict_policy;

typedef struct dur_start_opts {
        const char *workflow_id; /* required */
        const char *task_queue;  /* required */
        uint64_t task_timeout;   /* workflow task start-to-close; 0 = 10 s */
        const char *request_id;  /* optional: a repeated start with it returns the same run */
        dur_id_reuse_policy id_reuse_policy;
        dur_id_conflict_policy id_conflict_policy;
        uint64_t execution_timeout; /* the whole continue-as-new chain; 0 = unlimited */
        uint64_t run_timeout;       /* one run; 0 = unlimited (capped at execution_timeout) */
        uint64_t start_delay;       /* first workflow task only after this delay */
        dur_retry_policy retry;     /* none set (the default) = a failed run is not retried */
        const dur_buf *memo;     /* optional: a msgpack map with string keys, shown by describe */
        const dur_search_attr *search_attributes; /* optional, n_search_attributes of them */
        size_t n_search_attributes;
        /* Priority key, as Temporal's: 1 is dispatched first, 5 last; 0 = the default, 3. The
         * run's workflow tasks, and its activities and children unless they set their own. */
        unsigned priority;
        /* Fairness, as Temporal's: tasks of one priority key are shared between fairness keys
         * (at most 64 bytes; NULL = "") in proportion to their weights (0 = 1.0; clamped to
         * 0.001 .. 1000). Inherited like the priority key. */
        const char *fairness_key;
        double fairness_weight;
} dur_start_opts;

/* @input may be NULL. On success *ret_run_id (if not NULL) is a malloc'd run id. Returns 0 when a
 * new run started, 1 when the answer is an existing run (the request_id matched the latest run,
 * or id_conflict_policy USE_EXISTING found one running), 2 when the start was queued (QUEUE; the
 * run id is the one its run will have), -EEXIST when a policy refused the start, -EINVAL for a
 * policy value outside the enums. */
DUR_PUBLIC int dur_client_start(dur_client *c,
                                const char *workflow_type,
                                const dur_start_opts *opts,
                                const dur_buf *input,
                                char **ret_run_id);
/* Signal-with-start: delivers @signal_name (with @signal_input, may be NULL) to the running run of
 * opts->workflow_id, or starts a run (as dur_client_start(), under the reuse policy) whose
 * history holds the signal before its first workflow task. The conflict policy defaults to
 * USE_EXISTING; FAIL is refused (-EINVAL). Returns 0 when a run started, 1 when an existing run
 * was signalled (or the request_id matched: nothing is delivered twice). */
DUR_PUBLIC int dur_client_signal_with_start(dur_client *c,
                                            const char *workflow_type,
                                            const dur_start_opts *opts,
                                            const dur_buf *input,
                                            const char *signal_name,
                                            const dur_buf *signal_input,
                                            char **ret_run_id);
DUR_PUBLIC int dur_client_signal(dur_client *c,
                                 const char *workflow_id,
                                 const char *run_id,
                                 const char *signal_name,
                                 const dur_buf *input);
/* The query's result payload in *ret_result (may hold nil). */
DUR_PUBLIC int dur_client_query(dur_client *c,
                                const char *workflow_id,
                                const char *run_id,
                                const char *query_type,
                                const dur_buf *input,
                                dur_buf **ret_result);
DUR_PUBLIC int
dur_client_cancel(dur_client *c, const char *workflow_id, const char *run_id, const char *reason);
DUR_PUBLIC int dur_client_terminate(dur_client *c,
                                    const char *workflow_id,
                                    const char *run_id,
                                    const char *reason);
/* Deletes the run and its history (the latest run with a NULL @run_id), terminating it first
 * when it is open; whoever waits for its result gets -ENOENT. */
DUR_PUBLIC int
dur_client_delete(dur_client *c, const char *workflow_id, const char *run_id, const char *reason);
/* An operator's pause: no workflow task or activity of the run is dispatched (its process
 * activities are frozen) until dur_client_unpause(); signals, timers and results are still
 * recorded. Status "Paused" meanwhile. -ESTALE (failed_precondition) when the run is paused
 * already, resp. not paused. */
DUR_PUBLIC int
dur_client_pause(dur_client *c, const char *workflow_id, const char *run_id, const char *reason);
DUR_PUBLIC int
dur_client_unpause(dur_client *c, const char *workflow_id, const char *run_id, const char *reason);

/* Updates (Temporal's workflow updates): a request to a running workflow that its update
 * handler (DUR_UPDATES) handles and answers. The validator runs first, on the worker, and may
 * reject it: then nothing is recorded. Once accepted, the update is in the history
 * (WorkflowExecutionUpdateAccepted) and completes even across a daemon or worker crash. The
 * update id (default: a fresh UUID) deduplicates: sending the same update id to the same run
 * again attaches to the first update and gets its outcome. */
typedef enum dur_update_stage {
        DUR_UPDATE_STAGE_DEFAULT = 0,   /* = COMPLETED */
        DUR_UPDATE_STAGE_ACCEPTED = 2,  /* answer once the validator accepted it */
        DUR_UPDATE_STAGE_COMPLETED = 3, /* answer once the handler returned */
} dur_update_stage;

typedef struct dur_update_opts {
        const char *update_id; /* NULL = a fresh UUID (in the outcome's update_id) */
        const char *run_id;    /* NULL = the latest run of the workflow id */
        dur_update_stage wait_for_stage;
        uint64_t timeout; /* 0 = 10 s for the validation, no limit for the completion */
} dur_update_opts;

typedef struct dur_update_outcome {
        char *update_id;
        char *run_id;
        char *stage;          /* "Accepted" or "Completed" */
        dur_buf *result;      /* Completed: the handler's result (nil when it packed none) */
        dur_failure *failure; /* Completed with the handler's failure */
} dur_update_outcome;
DUR_PUBLIC void dur_update_outcome_done(dur_update_outcome *o);

/* Sends update @update_name with @args (may be NULL) to the workflow and waits for the stage of
 * @opts (may be NULL). Returns 0 when the update was accepted (stage ACCEPTED) or its handler
 * returned (COMPLETED), with *@ret filled; DUR_FAILED when the handler failed (ret->failure;
 * the run goes on); DUR_REJECTED when the validator rejected it (the reason in
 * dur_client_error_message()); -ENOENT for an unknown or closed run, or a run that closed before
 * the update completed; -ENOSPC (resource_exhausted) past the limits (by default 10 updates in
 * flight, 2000 per run); -ETIMEDOUT when the wait ran out (an accepted update still completes:
 * ask again with dur_client_update_result()). */
DUR_PUBLIC int dur_client_update(dur_client *c,
                                 const char *workflow_id,
                                 const char *update_name,
                                 const dur_buf *args,
                                 const dur_update_opts *opts,
                                 dur_update_outcome *ret);
/* Update-with-start: starts a run as dur_client_start() and sends it the update, or sends the
 * update to the running run; a request the daemon refuses starts nothing. @start's
 * id_conflict_policy must be USE_EXISTING (send it to the running run) or FAIL (-EEXIST when one
 * runs); the validator runs after the new run's first workflow task, and a rejection leaves the
 * run started. opts->run_id must be NULL. Returns as dur_client_update(). */
DUR_PUBLIC int dur_client_update_with_start(dur_client *c,
                                            const char *workflow_type,
                                            const dur_start_opts *start,
                                            const dur_buf *input,
                                            const char *update_name,
                                            const dur_buf *args,
                                            const dur_update_opts *opts,
                                            dur_update_outcome *ret);
/* The outcome of the accepted update @update_id: waits for its completion unless
 * opts->wait_for_stage is ACCEPTED. -ENOENT when the run has no such accepted update. */
DUR_PUBLIC int dur_client_update_result(dur_client *c,
                                        const char *workflow_id,
                                        const char *update_id,
                                        const dur_update_opts *opts,
                                        dur_update_outcome *ret);

/* The outcome of a run, as answered by GetResult. */
typedef struct dur_outcome {
        char *run_id;
        char *status;         /* "Running", "Completed", "Failed", ... */
        dur_buf *result;      /* payload, when Completed */
        dur_failure *failure; /* when Failed, TimedOut, Canceled or Terminated */
} dur_outcome;
DUR_PUBLIC void dur_outcome_done(dur_outcome *o);

/* Waits for the run to close (timeout 0 = no limit) and fills *ret. Returns 0 when it completed,
 * DUR_FAILED when it closed otherwise, -ETIMEDOUT when the wait ran out. */
DUR_PUBLIC int dur_client_result(dur_client *c,
                                 const char *workflow_id,
                                 const char *run_id,
                                 uint64_t timeout,
                                 dur_outcome *ret);
/* Starts a run as dur_client_start() and waits for its outcome (timeout 0 = no limit), in one
 * round trip, as Temporal's execute_workflow(): *ret is the outcome of the run, or of the last
 * run of its continue-as-new chain; an existing run that answers the start (USE_EXISTING, a
 * request_id that matches) gives its own. Returns as dur_client_result() (0 completed,
 * DUR_FAILED, -ETIMEDOUT: the run goes on), or as dur_client_start() for a refused start. A
 * queued start (QUEUE) waits for the run it queued, which starts when the running one closes. */
DUR_PUBLIC int dur_client_execute(dur_client *c,
                                  const char *workflow_type,
                                  const dur_start_opts *opts,
                                  const dur_buf *input,
                                  uint64_t timeout,
                                  dur_outcome *ret);

/* One run of a ListWorkflows page. */
typedef struct dur_list_entry {
        char *workflow_id;
        char *run_id;
        char *workflow_type;
        char *task_queue;
        char *status; /* "Running", "Completed", ... */
        uint64_t start_time;
        uint64_t close_time; /* 0 while open */
} dur_list_entry;

typedef struct dur_list_page {
        dur_list_entry *items;
        size_t n;
        char *next_page_token; /* pass to the next call; NULL on the last page */
} dur_list_page;
DUR_PUBLIC void dur_list_page_done(dur_list_page *p);

/* One page (at most @page_size runs, 0 = 1000) of the runs @query matches (the list filter of
 * durablectl(1); NULL or "" = all, newest first), after @page_token (NULL = the first page). */
DUR_PUBLIC int dur_client_list(dur_client *c,
                               const char *query,
                               const char *page_token,
                               uint64_t page_size,
                               dur_list_page *ret);

/* The number of runs @query (the list filter of durablectl(1), NULL = all) matches. */
DUR_PUBLIC int dur_client_count(dur_client *c, const char *query, uint64_t *ret_count);

/* An activity attempt, for asynchronous completion: its task token (from dur_actx_task_token()),
 * or, when task_token is NULL, the workflow id (run_id NULL: the latest run) and activity id of
 * the attempt that runs now. Only the run's owner (or an administrator) may act on it. */
typedef struct dur_activity_ref {
        const void *task_token;
        size_t task_token_size;
        const char *workflow_id;
        const char *run_id;
        const char *activity_id;
} dur_activity_ref;

/* Completes the attempt with @result (may be NULL). -ENOENT when it no longer runs. */
DUR_PUBLIC int
dur_client_complete_activity(dur_client *c, const dur_activity_ref *ref, const dur_buf *result);
/* Fails the attempt; a retryable failure is retried under the activity's retry policy. */
DUR_PUBLIC int dur_client_fail_activity(dur_client *c,
                                        const dur_activity_ref *ref,
                                        const char *type,
                                        bool non_retryable,
                                        const char *message);
/* Records a heartbeat (details may be NULL); *@ret_cancel_requested (may be NULL) says whether
 * the workflow asked to cancel the activity. */
DUR_PUBLIC int dur_client_heartbeat_activity(dur_client *c,
                                             const dur_activity_ref *ref,
                                             const dur_buf *details,
                                             bool *ret_cancel_requested);

/* Any operation of the protocol: @request is a msgpack map without "id" (it is added); the
 * answer map is returned in *ret_answer. An error answer returns its negative errno and sets
 * dur_client_error_code()/_message(). Used by durablectl. */
DUR_PUBLIC int dur_client_call(dur_client *c, const dur_buf *request, dur_buf **ret_answer);

/* ---- Activities ------------------------------------------------------------------------------ */

typedef int (*dur_activity_fn)(dur_actx *ctx, const msgpack_object *input, msgpack_packer *out);

typedef struct dur_activity_def {
        const char *name;
        dur_activity_fn fn;
} dur_activity_def;

/* Records a heartbeat (with optional details, consumed). Returns DUR_CANCELED when the workflow
 * asked to cancel this activity: the function should clean up and return DUR_CANCELED. */
DUR_PUBLIC int dur_actx_heartbeat(dur_actx *ctx, dur_buf *details);
/* Details of the last heartbeat of an earlier attempt, or NULL. */
DUR_PUBLIC const msgpack_object *dur_actx_heartbeat_details(dur_actx *ctx);
DUR_PUBLIC unsigned dur_actx_attempt(dur_actx *ctx);
/* The attempt's task token (printable bytes, not NUL-terminated), for an activity that returns
 * DUR_ASYNC and is completed later by whoever holds it; NULL in a process activity. */
DUR_PUBLIC const void *dur_actx_task_token(dur_actx *ctx, size_t *ret_size);
DUR_PUBLIC const char *dur_actx_workflow_id(dur_actx *ctx);
DUR_PUBLIC const char *dur_actx_activity_id(dur_actx *ctx);
/* "<workflow id>/<activity id>": stable across attempts, for the outside world's dedup. */
DUR_PUBLIC const char *dur_actx_idempotency_key(dur_actx *ctx);
/* Sets the activity's failure; returns DUR_FAILED for "return dur_actx_fail(...)". */
DUR_PUBLIC int
dur_actx_fail(dur_actx *ctx, const char *type, bool non_retryable, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Runs @def as a process activity of durabled.activity(5), for a main() that is
 * "return dur_activity_main(&def, argc, argv);": the input is JSON on stdin, the result is printed
 * as JSON on stdout, a failure as {"error": {...}} with exit status 1; dur_actx_heartbeat() sends
 * HEARTBEAT= datagrams to $NOTIFY_SOCKET and returns DUR_CANCELED once the daemon sent the unit's
 * KillSignal (SIGTERM or SIGINT); the context's ids and attempt come from the environment the
 * daemon sets. The same function also runs in a worker (dur_worker). Returns the exit status:
 * 0 completed, 1 failed or canceled, 2 the input could not be read. */
DUR_PUBLIC int dur_activity_main(const dur_activity_def *def, int argc, char *argv[]);

/* ---- Workflows ------------------------------------------------------------------------------- */

typedef int (*dur_workflow_fn)(dur_wf *wf, const msgpack_object *input, msgpack_packer *out);
typedef int (*dur_signal_fn)(dur_wf *wf, const msgpack_object *args); /* may block */
typedef int (*dur_query_fn)(dur_wf *wf,
                            const msgpack_object *args,
                            msgpack_packer *out); /* must not block */

typedef struct dur_signal_def {
        const char *name;
        dur_signal_fn fn;
} dur_signal_def;

typedef struct dur_query_def {
        const char *name;
        dur_query_fn fn;
} dur_query_def;

/* An update handler may block (activities, timers, conditions) like a signal handler, on a
 * coroutine of its own, and writes its result with @out; it returns 0, or DUR_FAILED (dur_fail())
 * to fail the update, which the caller gets back while the workflow goes on. The validator (may
 * be NULL: every update is accepted) must not block nor change state: it returns 0 to accept,
 * anything else to reject (with dur_fail() for the reason the caller reads). */
typedef int (*dur_update_fn)(dur_wf *wf, const msgpack_object *args, msgpack_packer *out);
typedef int (*dur_update_validator_fn)(dur_wf *wf, const msgpack_object *args);

typedef struct dur_update_def {
        const char *name;
        dur_update_fn fn;
        dur_update_validator_fn validator;
} dur_update_def;

typedef struct dur_workflow_def {
        const char *name;
        dur_workflow_fn run;
        const dur_signal_def *signals; /* array ended by { NULL }, or NULL */
        const dur_query_def *queries;  /* array ended by { NULL }, or NULL */
        const dur_update_def *updates; /* array ended by { NULL }, or NULL */
} dur_workflow_def;

#define DUR_SIGNALS(...) ((const dur_signal_def[]){ __VA_ARGS__, { NULL, NULL } })
#define DUR_QUERIES(...) ((const dur_query_def[]){ __VA_ARGS__, { NULL, NULL } })
#define DUR_UPDATES(...) ((const dur_update_def[]){ __VA_ARGS__, { NULL, NULL, NULL } })

/* What cancelling an activity does (dur_future_cancel(), or the workflow's cancel request
 * interrupting a wait): Temporal's ActivityCancellationType. A running activity learns of a
 * request through its next heartbeat (dur_actx_heartbeat() returns DUR_CANCELED; a process
 * activity gets its unit's KillSignal). */
typedef enum dur_activity_cancellation_type {
        DUR_ACTIVITY_CANCEL_DEFAULT = 0, /* = TRY_CANCEL */
        /* RequestCancelActivityTask; the future resolves DUR_CANCELED at once, a late outcome
         * is dropped. */
        DUR_ACTIVITY_CANCEL_TRY_CANCEL = 1,
        /* RequestCancelActivityTask; the future resolves when the activity reports back:
         * canceled, or its completion, failure or timeout. */
        DUR_ACTIVITY_CANCEL_WAIT_CANCELLATION_COMPLETED = 2,
        /* No request: the activity runs on; the future resolves DUR_CANCELED at once. */
        DUR_ACTIVITY_CANCEL_ABANDON = 3,
} dur_activity_cancellation_type;

typedef struct dur_activity_opts {
        const char *task_queue; /* NULL = the workflow's */
        uint64_t schedule_to_close;
        uint64_t schedule_to_start;
        uint64_t start_to_close;
        uint64_t heartbeat;
        dur_retry_policy retry;
        dur_activity_cancellation_type cancellation_type; /* a value outside the enum: EINVAL */
        unsigned priority; /* 1 (first) .. 5 (last); 0 = the workflow's */
        const char *fairness_key; /* NULL = the workflow's, with its weight */
        double fairness_weight;   /* with fairness_key; 0 = 1.0 */
} dur_activity_opts;

/* Per-run state of size @size, zeroed at the start of the run; the same pointer on every call. */
DUR_PUBLIC void *dur_wf_state(dur_wf *wf, size_t size);
DUR_PUBLIC const char *dur_wf_id(dur_wf *wf);
DUR_PUBLIC const char *dur_wf_run_id(dur_wf *wf);
DUR_PUBLIC const char *dur_wf_type(dur_wf *wf);
/* The failure of the last call that returned DUR_FAILED, or set by dur_fail(). */
DUR_PUBLIC const dur_failure *dur_wf_failure(dur_wf *wf);
/* Sets the workflow's failure; returns DUR_FAILED for "return dur_fail(...)". */
DUR_PUBLIC int dur_fail(dur_wf *wf, const char *type, bool non_retryable, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
DUR_PUBLIC bool dur_wf_cancel_requested(dur_wf *wf);
/* 1 for the first run, 2 for its first retry (a workflow retry policy), and so on. */
DUR_PUBLIC unsigned dur_wf_attempt(dur_wf *wf);

/* Activities. @args is consumed (may be NULL). */
DUR_PUBLIC dur_future *
dur_start_activity(dur_wf *wf, const char *type, dur_buf *args, const dur_activity_opts *opts);
/* start + await; *ret_result (if not NULL) points to the result, valid for the run. */
DUR_PUBLIC int dur_execute_activity(dur_wf *wf,
                                    const char *type,
                                    dur_buf *args,
                                    const dur_activity_opts *opts,
                                    const msgpack_object **ret_result);

/* Futures belong to the run. */
DUR_PUBLIC int dur_await(dur_wf *wf, dur_future *f);
DUR_PUBLIC int dur_await_all(dur_wf *wf, dur_future *const *fs, size_t n);
/* Returns once one is done; its index in *ret_index. */
DUR_PUBLIC int dur_await_any(dur_wf *wf, dur_future *const *fs, size_t n, size_t *ret_index);
#define DUR_AWAIT_ALL(wf, ...)                                    \
        dur_await_all((wf), (dur_future *const[]){ __VA_ARGS__ }, \
                      sizeof((dur_future *const[]){ __VA_ARGS__ }) / sizeof(dur_future *))
DUR_PUBLIC bool dur_future_done(const dur_future *f);
DUR_PUBLIC const msgpack_object *dur_future_result(const dur_future *f);
DUR_PUBLIC const dur_failure *dur_future_failure(const dur_future *f);

/* Durable timers. */
DUR_PUBLIC dur_future *dur_start_timer(dur_wf *wf, uint64_t duration);
DUR_PUBLIC int dur_sleep(dur_wf *wf, uint64_t duration);
/* Merges @n search attributes into the run's (UpsertWorkflowSearchAttributes command; the
 * change is visible to ListWorkflows once the workflow task completes). Does not block. */
DUR_PUBLIC int dur_upsert_search_attributes(dur_wf *wf, const dur_search_attr *attrs, size_t n);

/* Blocks until pred(wf, arg) is true (re-checked whenever anything happened): returns 1; or until
 * @timeout passed (0 = no timeout): returns 0; DUR_CANCELED when cancelled. */
DUR_PUBLIC int
dur_wait_condition(dur_wf *wf, bool (*pred)(dur_wf *wf, void *arg), void *arg, uint64_t timeout);

/* Runs fn(wf, arg) on a new coroutine of this run (deterministic order: creation order). A
 * coroutine spawned inside dur_detached() is detached for its whole life. */
DUR_PUBLIC int dur_go(dur_wf *wf, int (*fn)(dur_wf *wf, void *arg), void *arg);

/* Cancellation. A cancel request (dur_client_cancel(), `durablectl cancel`) reaches workflow
 * code as DUR_CANCELED from the blocking call each coroutine is in (or makes next): awaited
 * activities are cancelled as their cancellation_type says, timers are cancelled (TimerCanceled),
 * a condition stops waiting, awaited children are asked to cancel; every other pending activity
 * and timer is cancelled too. It reaches each coroutine once: code that goes on (cleanup) blocks
 * normally afterwards. The workflow ends Canceled when its function returns DUR_CANCELED.
 *
 * dur_detached() runs fn(wf, arg) on the calling coroutine in a non-cancellable scope (Temporal's
 * detached cancellation scope, Go's NewDisconnectedContext): a cancel request neither interrupts
 * its blocking calls nor cancels the activities and timers it starts, so compensations run to
 * their end; the request reaches the coroutine at its first blocking call after the scope.
 * Returns fn's value (-EINVAL without fn, -EDEADLK outside workflow code). */
DUR_PUBLIC int dur_detached(dur_wf *wf, int (*fn)(dur_wf *wf, void *arg), void *arg);

/* Side effects: a value that workflow code must not compute again on replay (a random id from
 * outside, the host name). fn packs one msgpack value into @out (returning 0, or a negative
 * value that dur_side_effect() returns, recording nothing). */
typedef int (*dur_value_fn)(dur_wf *wf, void *arg, msgpack_packer *out);
/* Runs fn once and records its value in history (MarkerRecorded "SideEffect", Temporal's
 * SideEffect); on replay the recorded value is returned and fn is not called. *ret_result (if not
 * NULL) is valid for the run. Does not block. A replay whose history has no marker there fails
 * the workflow task as non-deterministic. */
DUR_PUBLIC int
dur_side_effect(dur_wf *wf, dur_value_fn fn, void *arg, const msgpack_object **ret_result);
/* Temporal's MutableSideEffect: calls fn every time (when not replaying) and records a marker
 * ("MutableSideEffect", with @id) only when its value differs (msgpack bytes) from the last
 * recorded value of @id; on replay returns the value history holds at that point, without
 * calling fn. */
DUR_PUBLIC int dur_mutable_side_effect(
        dur_wf *wf, const char *id, dur_value_fn fn, void *arg, const msgpack_object **ret_result);

/* Versioning (Temporal's patched() / deprecate_patch(), Go's GetVersion): lets a changed
 * workflow replay the histories of runs that old code started.
 *         if (dur_patched(wf, "send-email") > 0) new code; else old code;
 * Returns 1 when new code runs this point for the first time (it then records a marker
 * "core_patch" with @patch_id and adds @patch_id to the run's search attribute
 * TemporalChangeVersion, a KeywordList) or when replaying a history that has that marker here;
 * 0 when replaying a history without it (a run of the old code: take the old branch). The answer
 * is remembered per patch id for the run. -EINVAL, -EDEADLK outside workflow code, -ENOMEM.
 * Once no run of the old code is left, replace the call (and the old branch) with
 * dur_deprecate_patch(), which records a deprecated marker and never blocks replay: histories
 * with or without the marker replay; once no run of the patched() code is left, remove it. */
DUR_PUBLIC int dur_patched(dur_wf *wf, const char *patch_id);
DUR_PUBLIC int dur_deprecate_patch(dur_wf *wf, const char *patch_id);

/* The built-in query that every workflow answers (Temporal's __stack_trace, `durablectl
 * stack`): a string with one line per coroutine of the run naming the call it is blocked in. */
#define DUR_QUERY_STACK_TRACE "__stack_trace"

/* Child workflows: a run of its own workflow id, type, task queue and input, started by this
 * workflow and owned by the same user; its future resolves when it closes: 0 with its result,
 * DUR_FAILED (dur_wf_failure() is a "ChildWorkflowFailure" whose cause is the child's own failure,
 * with its cause chain; "WorkflowAlreadyExists" when its id was running,
 * "PendingChildWorkflowsLimitExceeded" past 2000 pending children), DUR_CANCELED when it
 * ended Canceled. Not awaiting the future is allowed: the child runs on. What happens to it when
 * this workflow closes first is its parent close policy (Temporal's ParentClosePolicy). */
typedef enum dur_parent_close_policy {
        DUR_PARENT_CLOSE_DEFAULT = 0,        /* = TERMINATE */
        DUR_PARENT_CLOSE_TERMINATE = 1,      /* the child is terminated */
        DUR_PARENT_CLOSE_ABANDON = 2,        /* the child runs on */
        DUR_PARENT_CLOSE_REQUEST_CANCEL = 3, /* the child is asked to cancel */
} dur_parent_close_policy;

typedef struct dur_child_opts {
        const char *workflow_id; /* required */
        const char *task_queue;  /* NULL = this workflow's */
        uint64_t task_timeout;   /* 0 = 10 s */
        dur_parent_close_policy parent_close_policy;
        uint64_t execution_timeout; /* 0 = unlimited */
        uint64_t run_timeout;       /* 0 = unlimited */
        dur_retry_policy retry;     /* as dur_start_opts.retry */
} dur_child_opts;

/* @input is consumed (may be NULL). NULL with errno set on failure (EINVAL, EDEADLK outside
 * workflow code, ENOMEM). */
DUR_PUBLIC dur_future *
dur_start_child(dur_wf *wf, const char *workflow_type, dur_buf *input, const dur_child_opts *opts);
/* start + await; *ret_result (if not NULL) points to the child's result, valid for the run. */
DUR_PUBLIC int dur_execute_child(dur_wf *wf,
                                 const char *workflow_type,
                                 dur_buf *input,
                                 const dur_child_opts *opts,
                                 const msgpack_object **ret_result);
/* Waits until the child started (or failed to start: its future's outcome); its run id in
 * *ret_run_id (if not NULL), valid for the run. */
DUR_PUBLIC int dur_child_started(dur_wf *wf, dur_future *child, const char **ret_run_id);
/* Cancels what the future stands for: an activity or timer resolves DUR_CANCELED at once (TRY_CANCEL);
 * a child workflow is asked to cancel and its future resolves when the child closes
 * (WAIT_CANCELLATION_COMPLETED, Temporal's default for children). 0 or -errno. */
DUR_PUBLIC int dur_future_cancel(dur_wf *wf, dur_future *f);

/* Continue-as-new: what the workflow function returns to close this run as ContinuedAsNew and
 * start a new run of the same workflow id with @input (consumed, may be NULL) and a fresh history:
 *         return dur_continue_as_new(wf, dur_args("{s:U}", "n", n + 1), NULL);
 * The new run keeps the type, task queue and task timeout unless @opts (may be NULL) says
 * otherwise. Returns DUR_CONTINUED_AS_NEW, or -errno (-EDEADLK outside workflow code). Signals
 * that arrive while the task runs are not lost: the daemon refuses the close and a new task
 * delivers them first (Temporal's UnhandledCommand). */
typedef struct dur_continue_as_new_opts {
        const char *workflow_type; /* NULL = this run's */
        const char *task_queue;    /* NULL = this run's */
        uint64_t task_timeout;     /* 0 = this run's */
} dur_continue_as_new_opts;
DUR_PUBLIC int
dur_continue_as_new(dur_wf *wf, dur_buf *input, const dur_continue_as_new_opts *opts);

/* Deterministic replacements for the clock and randomness. */
DUR_PUBLIC uint64_t dur_now(dur_wf *wf); /* time of the current workflow task, usec since epoch */
DUR_PUBLIC uint64_t dur_random(dur_wf *wf);
DUR_PUBLIC void dur_uuid(dur_wf *wf, char out[37]);
DUR_PUBLIC bool dur_is_replaying(dur_wf *wf);

/* ---- Worker ---------------------------------------------------------------------------------- */

typedef struct dur_worker_opts {
        const char *socket_path;       /* as dur_client_connect() */
        const char *task_queue;        /* required */
        const char *identity;          /* default "<hostname>:<pid>" */
        unsigned activity_threads;     /* default 32: activities run at once */
        unsigned max_cached_workflows; /* default 1000, split between the workflow threads */
        unsigned workflow_threads;     /* default 16: workflow tasks processed at once */
} dur_worker_opts;

DUR_PUBLIC int dur_worker_new(dur_worker **ret, const dur_worker_opts *opts);
DUR_PUBLIC int dur_worker_register_workflow(dur_worker *w, const dur_workflow_def *def);
DUR_PUBLIC int dur_worker_register_activity(dur_worker *w, const dur_activity_def *def);
/* Connects and polls until dur_worker_stop(); returns 0 after a graceful stop. A connection lost
 * later (the daemon stopped or restarts) is re-established with backoff (100 ms doubling to 2 s);
 * a task whose answer could not be sent is dropped, and the daemon retries it after its timeout.
 * Returns -errno when the first connection fails (-ENOENT, -ECONNREFUSED: no daemon on the
 * socket) or on another fatal error (a refused poll, OOM). */
DUR_PUBLIC int dur_worker_run(dur_worker *w);
/* Async-signal-safe: asks dur_worker_run() to finish the tasks in hand and return. */
DUR_PUBLIC void dur_worker_stop(dur_worker *w);
DUR_PUBLIC dur_worker *dur_worker_free(dur_worker *w);

/* Log sink for libdurable's own diagnostics (worker errors, non-determinism). Default: none. */
typedef void (*dur_log_fn)(int level, const char *message, void *userdata);
DUR_PUBLIC void dur_set_log_func(dur_log_fn fn, void *userdata);

/* ---- Replay testing ------------------------------------------------------------------------- */

/* What dur_replay_file() found. */
typedef struct dur_replay_report {
        char *path;        /* the history file */
        uint64_t event_id; /* the event where replay stopped (0 when it did not) */
        char *cause;       /* "NonDeterministicError", "WorkflowError", or NULL */
        char *message;     /* what is wrong, naming the event and both sides, or NULL */
} dur_replay_report;
DUR_PUBLIC void dur_replay_report_done(dur_replay_report *rep);

/* Replays the history in @path (as `durablectl history ID --json` writes it) with the workflow
 * code @def, in this process, without a daemon. Returns 0 when the code produces the recorded
 * history; -EPROTO at the first non-determinism (or a workflow error), -EBADMSG for a file that
 * is not a history, other negative errnos for I/O; *@ret says why (free it with
 * dur_replay_report_done()). */
DUR_PUBLIC int
dur_replay_file(const dur_workflow_def *def, const char *path, dur_replay_report *ret);
/* The same for @n files; stops at the first that fails, whose report is in *@ret. */
DUR_PUBLIC int dur_replay_files(const dur_workflow_def *def,
                                const char *const *paths,
                                size_t n,
                                dur_replay_report *ret);

/* ---- Test environment ----------------------------------------------------------------------- */

/* A private durabled for one test: a fresh temporary state directory and socket, removed again
 * by dur_test_env_stop()/_free(). With time_skipping the daemon runs on a virtual clock that
 * jumps to the next deadline while a client waits for a result and nothing runs (a 24 h timer
 * fires at once). */
typedef struct dur_test_env dur_test_env;
typedef struct dur_test_env_opts {
        const char *durabled;          /* the binary; NULL: $DURABLED_BIN, else durabled in PATH */
        bool time_skipping;            /* durabled --time-skipping */
        const char *const *extra_args; /* more durabled options, NULL-terminated; may be NULL */
} dur_test_env_opts;

/* Starts the daemon and waits until it is ready (sd_notify READY=1, at most 30 s). @opts may be
 * NULL. -ECHILD when it exited first, -ETIMEDOUT, or the errno of a failed system call. */
DUR_PUBLIC int dur_test_env_start(dur_test_env **ret, const dur_test_env_opts *opts);
DUR_PUBLIC const char *dur_test_env_socket(const dur_test_env *e); /* for workers and clients */
DUR_PUBLIC int dur_test_env_connect(dur_test_env *e, dur_client **ret);
/* Stops the daemon with SIGTERM, removes the directory and frees @e; -EPROTO when the daemon
 * did not exit cleanly. */
DUR_PUBLIC int dur_test_env_stop(dur_test_env *e);
/* Kills the daemon (SIGKILL) if it runs, removes the directory, frees @e. */
DUR_PUBLIC dur_test_env *dur_test_env_free(dur_test_env *e);

#ifdef __cplusplus
}
#endif
