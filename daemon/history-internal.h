#pragma once
/* Shared by the files of the history engine: history.c (runs, workflow tasks, commands,
 * timers), history-activity.c (activities: scheduling, dispatch, results, retries and
 * timeouts), history-chain.c (closing runs, continue-as-new, workflow retries and timeouts,
 * history limits) and history-child.c (child workflows). Nobody else includes this header. */

#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "daemon/api-error.h"
#include "daemon/history.h"
#include "daemon/manager.h"
#include "daemon/store.h"
#include "proto/msg.h"

#define NAME_MAX_LEN 1000 /* ids, names and types: Temporal's limit.maxIDLength */

/* Event attributes under construction: a msgpack map packed into a MsgBuf. */
typedef struct Attrs {
        MsgBuf buf;
} Attrs;

msgpack_packer *attrs_begin(Attrs *a, size_t nfields);
void attrs_done(Attrs *a);

/* A payload (bin) or nil when @p is NULL. */
int pack_kv_payload(msgpack_packer *pk, const char *key, const void *p, size_t n);
/* Stored msgpack bytes (a failure map, a list) packed as they are; nil when absent. */
int pack_kv_raw(msgpack_packer *pk, const char *key, const Blob *b);
int blob_from_object(const msgpack_object *o, Blob *ret);
int blob_from_bin(const MsgBin *bin, Blob *ret);
/* A failure map built by the daemon itself (timeouts, bad commands). */
int failure_blob(Blob *ret,
                 const char *type,
                 const char *timeout_type,
                 bool non_retryable,
                 const char *fmt,
                 ...) _printf_(5, 6);

/* Appends an event to the run's history now (events of commands, and the run's own). */
int append_event(Manager *m, RunRow *run, EventType type, Attrs *a, uint64_t *ret_id);
/* Appends an external event, or buffers it while a workflow task is in flight; then schedules a
 * workflow task for it. @link_started: the attributes lack started_event_id, which is the id of
 * the event appended just before. @more_follows: another event of the same change comes next,
 * the workflow task is scheduled after that one. */
int append_external_raw(Manager *m,
                        RunRow *run,
                        EventType type,
                        const void *attrs,
                        size_t size,
                        bool link_started,
                        bool more_follows);
int append_external(Manager *m, RunRow *run, EventType type, Attrs *a, bool link_started);

/* A retry policy (Temporal's RetryPolicy, SEMANTICS.md b.1) as the protocol carries it. */
typedef struct RetryPolicy {
        uint64_t initial_interval_usec;
        double backoff_coefficient;
        uint64_t maximum_interval_usec;
        uint64_t maximum_attempts;
        const msgpack_object *non_retryable_error_types;
} RetryPolicy;

/* history-activity.c: parses and validates @policy (may be NULL) into @p with Temporal's
 * defaults (1 s, 2.0, 100 x initial, unlimited attempts); -EINVAL with a sentence in @err. */
int retry_policy_parse(
        const msgpack_object *policy, msgpack_zone *z, RetryPolicy *p, char *err, size_t errlen);
/* The same, with @defaults (may be NULL) filling what @policy leaves unset before the checks. */
int retry_policy_parse_with(const msgpack_object *policy,
                            const RetryPolicy *defaults,
                            msgpack_zone *z,
                            RetryPolicy *p,
                            char *err,
                            size_t errlen);

/* history.c: a new run id (UUIDv7), and a new run (see history_start_workflow()). */
void run_id_new(char out[static 37]);
int create_run(Manager *m,
               const StartRequest *req,
               uint32_t uid,
               const char *continued_from,
               const char run_id[static 37]);

/* history.c: closes @run (@continued: another run of its chain follows: continue-as-new, a
 * retry); takes @result and @failure. */
int close_run_chain(Manager *m,
                    RunRow *run,
                    WorkflowStatus status,
                    Blob *result,
                    Blob *failure,
                    bool continued);
/* Closes the workflow task in flight (WorkflowTaskFailed, @cause) before a forced close. */
int fail_started_task(Manager *m, RunRow *run, const char *cause);
/* A closing run: buffered events go into the history (nothing acknowledged disappears) without
 * a new workflow task. */
int drain_buffered_closing(Manager *m, RunRow *run);

/* history-chain.c. Close commands and ContinueAsNewWorkflowExecution (@dry: validate only). */
int history_apply_close(Manager *m,
                        RunRow *run,
                        CommandType type,
                        const msgpack_object *attrs,
                        uint64_t completed_id,
                        bool dry,
                        char *err,
                        size_t errlen);
int history_apply_continue_as_new(Manager *m,
                                  RunRow *run,
                                  const msgpack_object *attrs,
                                  uint64_t completed_id,
                                  msgpack_zone *z,
                                  bool dry,
                                  char *err,
                                  size_t errlen);
/* After a workflow task: fails a running run past --history-max-events/-bytes. */
int history_check_limits(Manager *m, RunRow *run, uint64_t completed_id);
/* The run timeout (retried under a retry policy) or the execution timeout expired. */
int history_time_out_run(Manager *m, RunRow *run, DeadlineKind kind);

/* history-child.c. Commands StartChildWorkflowExecution and
 * RequestCancelExternalWorkflowExecution (@dry: validate only). */
int history_apply_start_child(Manager *m,
                              RunRow *run,
                              const msgpack_object *attrs,
                              uint64_t completed_id,
                              msgpack_zone *z,
                              bool dry,
                              char *err,
                              size_t errlen);
int history_apply_request_cancel_external(Manager *m,
                                          RunRow *run,
                                          const msgpack_object *attrs,
                                          uint64_t completed_id,
                                          msgpack_zone *z,
                                          bool dry,
                                          char *err,
                                          size_t errlen);
/* @run closed (its row not yet written): its children follow their parent close policy, and if
 * it is a child, its parent learns the outcome (not when @continued: continue-as-new or a retry,
 * the chain goes on). */
int history_children_on_close(Manager *m, RunRow *run, bool continued);

/* Task tokens: "W/<run id>/<started event id>", "A/<run id>/<scheduled event id>/<attempt>". */
int token_pack(msgpack_packer *pk, const char *fmt, ...) _printf_(2, 3);
int token_parse(const MsgBin *token, char kind, char run_id[static 37], uint64_t *a, uint64_t *b);
/* Whether the current operation's caller may use a task token of @run (history.h). */
bool history_actor_owns(Manager *m, const RunRow *run);

/* history-activity.c. With @dry, the command is only validated (history.c checks a whole list
 * of commands before writing anything). */
int history_apply_schedule_activity(Manager *m,
                                    RunRow *run,
                                    const msgpack_object *attrs,
                                    uint64_t completed_id,
                                    msgpack_zone *z,
                                    bool dry,
                                    char *err,
                                    size_t errlen);
int history_apply_request_cancel_activity(Manager *m,
                                          RunRow *run,
                                          const msgpack_object *attrs,
                                          uint64_t completed_id,
                                          bool dry,
                                          char *err,
                                          size_t errlen);
int history_on_activity_deadline(Manager *m, RunRow *run, const Deadline *d);

/* Log records about a run, and about one of its activities, with their journal fields. */
#define log_run(level, run, ...)                                          \
        log_fields(level,                                                 \
                   &(LogFields){ .workflow_id = (run)->workflow_id,       \
                                 .run_id = (run)->run_id,                 \
                                 .workflow_type = (run)->workflow_type }, \
                   __VA_ARGS__)
#define log_activity(level, run, act, ...)                              \
        log_fields(level,                                               \
                   &(LogFields){ .workflow_id = (run)->workflow_id,     \
                                 .run_id = (run)->run_id,               \
                                 .workflow_type = (run)->workflow_type, \
                                 .activity_id = (act)->activity_id },   \
                   __VA_ARGS__)
/* history.c: closes @run with @status (takes @result and @failure), forgetting what is pending. */
int history_close_run(Manager *m, RunRow *run, WorkflowStatus status, Blob *result, Blob *failure);

/* history-standalone.c: a standalone activity's run gets the external events of its activity
 * here, after they were appended, instead of a workflow task. */
bool history_is_standalone(const RunRow *run);
int history_standalone_event(Manager *m, RunRow *run, EventType type, const void *attrs, size_t size);
/* history-marker.c: the RecordMarker command (MarkerRecorded). */
int history_apply_record_marker(Manager *m,
                                RunRow *run,
                                const msgpack_object *attrs,
                                uint64_t completed_id,
                                msgpack_zone *z,
                                bool dry,
                                char *err,
                                size_t errlen);
/* history-visibility.c: the UpsertWorkflowSearchAttributes command. */
int history_apply_upsert_search_attributes(Manager *m,
                                           RunRow *run,
                                           const msgpack_object *attrs,
                                           uint64_t completed_id,
                                           bool dry,
                                           char *err,
                                           size_t errlen);
/* history-update.c: the CompleteWorkflowUpdate command (@dry: validate only). */
int history_apply_complete_update(Manager *m,
                                  RunRow *run,
                                  const msgpack_object *attrs,
                                  uint64_t completed_id,
                                  msgpack_zone *z,
                                  bool dry,
                                  char *err,
                                  size_t errlen);
