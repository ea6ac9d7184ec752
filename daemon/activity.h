#pragma once
/* The supervisor of process activities (DESIGN.md §7, durabled.activity(5)): it owns the loaded
 * activity units, the daemon's cgroup subtree and every attempt process. Activities whose type a
 * unit declares get TASK_PROCESS tasks (history-activity.c) that the supervisor, not a polling
 * worker, takes: before the pass commits it marks the attempt started (like a dispatch), after the
 * commit it forks the process into a cgroup of its own (DESIGN.md §3: nothing is sent before the
 * commit). Exit status, stdout, heartbeats and STATUS= come back through the same history paths
 * as a worker's answers (task tokens), so retries, timeouts and events are the same.
 *
 * Attempt states:
 *
 *   PENDING --commit--> RUNNING --exit--> EXITED --cgroup empty--> freed
 *     |  (rollback: freed)  |    \\                ^
 *     |                     |     cancel_requested: KillSignal, SIGKILL after TimeoutStopSec
 *     |                     |     (STOPPING) --exit--+
 *     |                     +-- attempt no longer running in the store (timed out, run closed):
 *     |                         cgroup.kill, result ignored (ABANDONED) --exit--+
 *
 * Stale cgroups of an earlier life are killed at start-up and their attempts fail (retryable). */

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "daemon/manager.h"

typedef struct Supervisor Supervisor;

/* Identities of process attempts begin with this (ActivityTaskStarted.identity). */
#define SUPERVISOR_IDENTITY_PREFIX "durabled:"
/* Attempt processes at once, all units together, unless durabled --max-activity-processes. */
#define SUPERVISOR_ATTEMPTS_DEFAULT 1024

/* Loads the units of @dirs (NULL-terminated) and sets up the cgroup subtree; a host without a
 * usable cgroup v2 subtree keeps running, and attempts fail with the reason. */
int supervisor_new(Manager *m, char *const *dirs);
Supervisor *supervisor_free(Supervisor *s);
/* At start-up, before the loop: kills stale attempt cgroups and fails their attempts. */
int supervisor_recover(Manager *m);
/* Re-reads the unit directories (SIGHUP, Reload). Running attempts keep the unit they started
 * with. Returns the number of units loaded. */
int supervisor_reload(Manager *m);

/* The unit that runs activities of @type on @queue, or NULL: a worker's activity. */
const char *supervisor_route(Manager *m, const char *type, const char *queue);
typedef struct ActivityUnit ActivityUnit;
const ActivityUnit *supervisor_unit(Manager *m, const char *type, const char *queue);
void supervisor_mark_dirty(Manager *m);
/* Before the commit: starts the attempts that may run now (writes in the pass's transaction). */
int supervisor_dispatch(Manager *m);
/* After the commit (@committed) or its failure: forks the attempts started in the pass, or
 * forgets them; acts on attempts that no longer run in the store (kill) or were asked to cancel. */
void supervisor_after_commit(Manager *m, bool committed);

/* Packs the array of ListActivityTypes (doc/protocol.md). */
int supervisor_pack_types(Manager *m, msgpack_packer *pk);
/* The last STATUS= of the running attempt of an activity, or NULL. */
const char *supervisor_status(Manager *m, const char *run_id, uint64_t scheduled_id);
