#pragma once
/* Manager: owns the event loop, the store, the listening socket, every connection and the
 * in-memory registries (task queues with their parked polls and queries, result waiters).
 *
 * One loop pass = one transaction (DESIGN.md §3, STYLE.md §6). Handlers and timer callbacks
 * write through the store inside the pass's transaction (opened lazily by manager_begin()) and
 * queue their answers on their connection's "held" buffer. Before the loop sleeps, the post
 * source (manager_on_post) runs, in this order:
 *   0. schedules whose runs closed in the pass start what waits in their buffers (schedule.c);
 *   1. dispatch: hand tasks of dirty queues to parked polls (this writes: WorkflowTaskStarted);
 *   2. commit the transaction (one fsync for everything the pass did: group commit);
 *   3. release held answers to the sockets, or on a failed commit replace each of them with an
 *      "unavailable" error, roll back and re-dispatch from the store;
 *   4. re-arm the one deadline timer from the earliest deadline in the store;
 *   5. free connections that closed during the pass. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <systemd/sd-event.h>

#include "common/list.h"
#include "daemon/run-limit.h"
#include "daemon/store.h"
#include "proto/msg.h"

typedef struct Manager Manager;
typedef struct Conn Conn;
typedef struct TaskQueue TaskQueue;
typedef struct Query Query;
typedef struct Waiter Waiter;
typedef struct ApiBus ApiBus;
typedef struct Supervisor Supervisor;
typedef struct Flow Flow;

typedef struct ManagerConfig {
        const char *state_dir;
        const char *socket_path;
        bool user_mode;
        StoreDurability durability;
        size_t max_frame_size;
        unsigned max_connections;
        unsigned max_polls_per_connection;
        unsigned max_waiters;
        bool time_skipping;         /* tests: jump to the next deadline while results are awaited */
        const char *bus_address;    /* D-Bus (api-bus.c): this bus, else the default one */
        bool no_bus;                /* no D-Bus at all */
        bool no_process_activities; /* no supervisor (tests/fuzz/fuzz-api.c): no cgroups */
        const char *admin_group;    /* members administer everything: a name or a gid (NULL:
                                     * "durabled"; a name that does not exist: nobody) */
        char *const *activity_dirs; /* where activity units live, in precedence order */
        /* *.schedule unit files (schedule-unit.h); NULL: none */
        const char *schedule_dir;
        /* every deadline wakes the system from suspend, not only those of schedules that ask */
        bool wake_system;
        /* Closed runs are deleted after this (retention.h); 0 = kept forever. */
        uint64_t retention_usec;
        uint64_t history_warn_events; /* describe warns past this many events (0 = default) */
        uint64_t history_max_events;  /* a run past this many events fails (0 = default) */
        uint64_t history_max_bytes;   /* ... or past this many bytes of events (0 = default) */
        uint64_t run_limits[_RUN_LIMIT_MAX]; /* per-run limits (run-limit.h); 0 = the default */
        unsigned max_activity_processes;     /* attempt processes at once (0 = default) */
        unsigned max_updates_in_flight; /* per run: being validated or handled at once */
        unsigned max_updates_per_run;   /* per run: accepted in all */
} ManagerConfig;

#define HISTORY_WARN_EVENTS_DEFAULT 10240       /* Temporal's limit.historyCount.warn */
#define HISTORY_MAX_EVENTS_DEFAULT 51200        /* Temporal's limit.historyCount.error */
#define HISTORY_MAX_BYTES_DEFAULT (50ULL << 20) /* Temporal's limit.historySize.error */
#define UPDATES_IN_FLIGHT_DEFAULT 10            /* Temporal's history.maxInFlightUpdates */
#define UPDATES_PER_RUN_DEFAULT 2000            /* Temporal's history.maxTotalUpdates */

struct Manager {
        ManagerConfig cfg;
        sd_event *event;
        sd_event_source *listen_source;
        sd_event_source *post_source;
        sd_event_source *deadline_source;
        sd_event_source *kick_source;
        sd_event_source *checkpoint_source; /* fires after a quiet moment without commits */
        sd_event_source *wake_source;       /* CLOCK_REALTIME_ALARM: wakes a suspended host */
        bool wake_unsupported;              /* no CAP_WAKE_ALARM or no kernel support: said once */
        sd_event_source *retention_source;  /* the retention sweep (retention.h) */
        Store *store;
        ApiBus *bus; /* NULL when the daemon runs without D-Bus */
        int listen_fd;
        int lock_fd; /* state-dir/lock, F_SETLK-locked: one daemon per state directory */

        Conn *conns;
        unsigned n_conns;
        uint64_t n_requests; /* frames handled since start-up (GetStats) */
        uint64_t next_conn_serial;

        TaskQueue *queues;
        bool dispatch_pending;
        Flow *flows; /* the task queues with limits (flow.h) */
        /* The store may hold queued starts (id conflict policy Queue): false only after a look
         * found none, so that a run closing costs nothing more in the common case. */
        bool queued_starts;

        Query *queries; /* dispatched to a worker, waiting for RespondQueryTask */
        uint64_t next_query_id;

        Supervisor *supervisor; /* process activities (activity.c); set up by manager_run() */

        Waiter *waiters;
        unsigned n_waiters;
        uint64_t pass; /* counts the loop's passes: waiters remember the one they came in */
        unsigned n_history_waiters;
        char (*changed_runs)[37]; /* runs changed in this pass, for their waiters */
        size_t n_changed, changed_alloc;

        char (*closed_runs)[37]; /* runs closed in this pass, for their schedules (schedule.c) */
        size_t n_closed_runs, closed_runs_alloc;
        uint64_t started_usec; /* when this daemon started: earlier times were missed while down */

        uint32_t actor_uid; /* uid recorded in the events the current operation appends */
        bool actor_admin;   /* the current request's caller administers everything (run_op) */
        uid_t daemon_uid;
        gid_t admin_gid; /* members of this group administer everything; (gid_t)-1 = none */
        bool deadlines_changed;
        bool accept_paused; /* out of file descriptors: resumes when a connection closes */
        int exit_error;
};

int manager_new(Manager **ret, const ManagerConfig *cfg);
Manager *manager_free(Manager *m);
DEFINE_CLEANUP(Manager, manager_free);

/* Takes the listening socket: @fd from socket activation, or -1 to bind cfg.socket_path. */
int manager_listen(Manager *m, int fd);
/* Rebuilds the in-memory state from the store and sets up process activities, deadlines and the
 * retention sweep: everything manager_run() does before its loop. */
int manager_start(Manager *m);
/* manager_start(), then runs the loop until SIGTERM/SIGINT. */
int manager_run(Manager *m);

/* Opens the pass's transaction if needed. Every writer calls this first. */
int manager_begin(Manager *m);
/* Asks for one more loop pass (e.g. more due deadlines than one pass handles). */
void manager_kick(Manager *m);
void manager_deadlines_changed(Manager *m);

/* A connection closed: its workflow tasks in flight time out at once. */
void manager_conn_closed(Manager *m, Conn *c);

/* Called by the history engine for each event it appends (@closed: the run closed). */
void manager_run_changed(Manager *m, const char *run_id, bool closed);
/* Called by the history engine when it appends the first event of a run. */
void manager_run_started(Manager *m, const char *run_id);

/* The gid of @group, a group name or a decimal gid; (gid_t)-1 when there is no such group. */
gid_t manager_group_gid(const char *group);
/* DESIGN.md §10: whether a caller with these credentials administers everything (root, the
 * daemon's own uid, members of the "durabled" group). */
bool manager_is_admin(Manager *m, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups);
