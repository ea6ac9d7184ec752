#pragma once
/* Waiters: long polls parked until their run changes. GetResult with wait=true waits for the run
 * to close; GetHistory with wait=true waits for events past the ones the client has; an update's
 * caller waits for its WorkflowExecutionUpdateCompleted. A run that
 * changes during a pass is noted (runs with history waiters on every new event, others only when
 * they close); waiters are answered only after that pass committed, from the committed rows
 * (DESIGN.md §3), and the notes are dropped if the pass rolls back. */

#include <stdint.h>

#include "daemon/manager.h"

/* Waits for the run to close (GetResult). With @follow_runs, a run that closes ContinuedAsNew
 * hands the wait on to the run it continued as. */
int waiter_add_result(Manager *m,
                      Conn *c,
                      uint64_t req_id,
                      const char *run_id,
                      uint64_t timeout_usec,
                      bool follow_runs);
/* Waits for event @from_event_id of the run to exist, or for the run to close (GetHistory). */
int waiter_add_history(Manager *m,
                       Conn *c,
                       uint64_t req_id,
                       const char *run_id,
                       uint64_t from_event_id,
                       uint64_t timeout_usec);

/* Waits for update @update_id of the run to complete (UpdateWorkflow, PollWorkflowUpdate), or
 * for the run to close first (answered with an error: the update will never complete). */
int waiter_add_update(Manager *m,
                      Conn *c,
                      uint64_t req_id,
                      const char *run_id,
                      const char *update_id,
                      uint64_t timeout_usec);

/* The history engine appended an event to the run; @closed: it closed it. Cheap when nobody
 * waits. */
void waiter_note_changed(Manager *m, const char *run_id, bool closed);
void waiter_forget_changed(Manager *m);
/* Run @run_id will never exist (a queued start was dropped): its waiters get @error. */
void waiter_fail_run(Manager *m, const char *run_id, int error, const char *message);
/* The commit of the pass failed: every waiter that came in this pass is answered with the pass's
 * error (call it before conn_fail_held(), which writes that error). */
void waiter_fail_pass(Manager *m);
void waiter_answer_changed(Manager *m);
void waiter_forget_conn(Manager *m, Conn *c);
void waiter_free_all(Manager *m);
