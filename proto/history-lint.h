#pragma once
/* History linter: checks that one run's history is a sequence Temporal's event state machines
 * allow. Fed the events in order, it finds the first problem and names it:
 *
 *   - event ids are dense from 1; the first event is WorkflowExecutionStarted, and only it;
 *   - workflow tasks go Scheduled -> Started -> Completed | Failed | TimedOut, one at a time, each
 *     event naming the scheduled/started pair it belongs to; nothing comes between a task's
 *     Started and its close;
 *   - an activity's Started and close refer to an ActivityTaskScheduled that is still open; its
 *     Started comes right before its close (retries leave no events), the close names that
 *     Started (or 0 when it never started) and comes once; activity ids are unique among the
 *     open activities;
 *   - a timer is started once per id while it is open, fired or cancelled once, and never fires
 *     before its start time plus its duration;
 *   - command events name the WorkflowTaskCompleted they came from; a MarkerRecorded has a
 *     marker_name;
 *   - an update is accepted once per update id (WorkflowExecutionUpdateAccepted) and completed
 *     once, by an UpdateCompleted naming its Accepted event and update id; an UpdateRejected is
 *     never written (a rejection leaves no event);
 *   - exactly one close event (Completed, Failed, TimedOut, Canceled, Terminated,
 *     ContinuedAsNew), nothing after it, and it matches the run's status.
 *
 * Used by the daemon (VerifyHistory, durablectl verify; an invariant walk in test builds) and by
 * the crash tests' checker. Allocation failures are reported as -ENOMEM, never as a problem. */

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/cleanup.h"
#include "proto/event.h"

typedef struct HistoryLint HistoryLint;

int history_lint_new(HistoryLint **ret);
HistoryLint *history_lint_free(HistoryLint *l);
DEFINE_CLEANUP(HistoryLint, history_lint_free);

/* Checks one more event (@attrs: its attribute map, may be NULL when absent). Returns 0 while the
 * history is sound, -EBADMSG once a problem was found (this and every later call), -ENOMEM. */
int history_lint_event(HistoryLint *l,
                       uint64_t event_id,
                       EventType type,
                       uint64_t time,
                       const msgpack_object *attrs);
/* As history_lint_event() for attributes given as msgpack bytes (the store's form). */
int history_lint_event_raw(HistoryLint *l,
                           uint64_t event_id,
                           EventType type,
                           uint64_t time,
                           const void *attrs,
                           size_t attrs_size);
/* After the last event: checks the end against the run's @status (0 = not known) and, when
 * @next_event_id is not 0, that the history holds every event up to it. -EBADMSG or 0. */
int history_lint_end(HistoryLint *l, WorkflowStatus status, uint64_t next_event_id);

/* The first problem ("event 7 (ActivityTaskStarted): ..."), or NULL while there is none. */
const char *history_lint_problem(const HistoryLint *l);
/* The id of the event the problem was found at (0 when it concerns the end of the history). */
uint64_t history_lint_problem_event(const HistoryLint *l);
/* Events checked so far. */
uint64_t history_lint_count(const HistoryLint *l);
