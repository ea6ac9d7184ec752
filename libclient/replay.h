#pragma once
/* The replay engine: one Run per workflow run, fed history events, answering with commands.
 *
 * A Run owns the workflow's coroutines, its futures, its per-run state (dur_wf_state), a msgpack
 * zone holding every object handed to user code, and the queue of commands issued but not yet
 * matched with their history events. It does no I/O: the worker hands it the events of a task
 * and sends what it produces, so it can be tested with synthetic histories.
 *
 * Events are processed in history order (doc/protocol.md "History shape"). Each
 * WorkflowTaskStarted that is followed by WorkflowTaskCompleted, or that ends the events of a
 * real workflow task, is an execution point: the coroutines run until all are blocked. Command
 * events must match the issued commands in order, else the run reports non-determinism.
 *
 * The public dur_wf handed to workflow code is the Run itself. */

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/cleanup.h"
#include "durable/durable.h"

typedef struct dur_wf Run;

int run_new(Run **ret, const dur_workflow_def *def, const char *workflow_id, const char *run_id);
/* Frees the run with its coroutines (abandoned where they are blocked) and everything it owns. */
Run *run_free(Run *r);

/* Applies @events (a msgpack array of event maps). Events below run_next_event_id() were seen
 * before and are skipped. With @current_task the batch is a workflow task: its trailing
 * WorkflowTaskStarted is executed and the new commands are packed into @ret_commands as one
 * msgpack array (nothing is written on failure). Without it the batch is a query's view of the
 * history: a trailing WorkflowTaskStarted (a task in flight) is left unprocessed and
 * @ret_commands may be NULL.
 *
 * Returns 0 on success, or:
 *  -EPROTO   the task must fail: run_error_cause() is "NonDeterministicError" or "WorkflowError"
 *            and run_error_message() says why; the run must be discarded;
 *  -ESTALE   history shows that the task this run executed last failed or timed out: the run's
 *            state is ahead of history; discard it and replay from the first event;
 *  -ENODATA  the first new event is after run_next_event_id(): fetch the missing events first;
 *  -EBADMSG  a malformed event (run_error_message() names it); -ENOMEM.
 * After any error the run is in an undefined state and must be freed. */
int run_apply_events(Run *r,
                     const msgpack_object *events,
                     bool current_task,
                     msgpack_sbuffer *ret_commands);

/* Runs the query handler @query_type synchronously on the current state, with the decoded payload
 * @input (may be NULL/0 for nil), and packs its result into @ret_result (nothing for nil).
 * -ENOENT for an unknown query type, -EPROTO when the handler failed; the message is in
 * run_error_message(). The run stays usable. */
int run_query(Run *r,
              const char *query_type,
              const void *input,
              size_t input_size,
              msgpack_sbuffer *ret_result);

/* Runs the validator of update @name on the current state (as a query: it must not block and
 * changes nothing) with the decoded payload @input. 0 when the update may be accepted; -ENOENT
 * for an update the workflow has no handler for, -EPROTO when the validator rejected it; the
 * reason is in run_error_message(). The run stays usable. */
int run_validate_update(Run *r, const char *name, const void *input, size_t input_size);

/* The id of the next event the run expects (1 for a new run). */
uint64_t run_next_event_id(const Run *r);
/* True once the run issued its close command (complete, fail or cancel). */
bool run_closed(const Run *r);
const char *run_error_cause(const Run *r);
const char *run_error_message(const Run *r);

DEFINE_CLEANUP(Run, run_free);
