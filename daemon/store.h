#pragma once
/* Store: durabled's state in SQLite (WAL). It is the only module that speaks SQL (DESIGN.md §13),
 * owns the one connection, and is the single source of truth: everything the daemon keeps in
 * memory (parked polls, queries, waiters, the armed deadline) is derived from it or transient.
 *
 * Tables (schema in store.c): runs (one row per run, its mutable state machine), events (the
 * append-only history), buffered (external events held while a workflow task is in flight),
 * activities (pending activity state), timers (pending durable timers), tasks (dispatchable
 * workflow and activity tasks, per queue, FIFO), deadlines (every absolute time the daemon must
 * act at: timers, timeouts, retry backoffs).
 *
 * Writes happen inside the loop pass's transaction (store_begin() .. store_commit()); reads may
 * happen at any time. Errors are negative errno: SQLITE_FULL -> -ENOSPC, SQLITE_IOERR* -> -EIO,
 * SQLITE_BUSY -> -EBUSY, SQLITE_NOMEM -> -ENOMEM, SQLITE_CORRUPT -> -EUCLEAN, a constraint
 * -> -EEXIST. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/cleanup.h"
#include "daemon/filter.h"
#include "daemon/taskset.h"
#include "proto/event.h"

typedef struct Store Store;

typedef enum StoreDurability {
        STORE_DURABILITY_FULL,   /* synchronous=FULL: nothing acknowledged is lost on power loss */
        STORE_DURABILITY_NORMAL, /* synchronous=NORMAL: may lose the last commits on power loss */
} StoreDurability;

int store_open(Store **ret, const char *path, StoreDurability durability);
/* After store_open() failed with -EUCLEAN: what SQLite's quick_check (or opening) says is wrong
 * with the database at @path, as one line in @buf. */
void store_check_file(const char *path, char *buf, size_t size);
/* Test builds: starts counting the I/O that $DURABLED_FAULT fails (store-fault.c); once the
 * daemon is ready, so that start-up's own writes are not counted. A no-op otherwise. */
void store_arm_faults(void);
Store *store_free(Store *s);
DEFINE_CLEANUP(Store, store_free);

int store_begin(Store *s); /* no-op when a transaction is open */
int store_commit(Store *s);
void store_rollback(Store *s);
bool store_in_transaction(Store *s);
/* One operation inside the pass's transaction: its writes are kept by store_release() or undone
 * by store_rollback_to(), so a request that fails half-way leaves nothing behind. */
int store_savepoint(Store *s);
int store_release(Store *s);
void store_rollback_to(Store *s);
/* True when the last failure was a failed fsync: the daemon must not retry (DESIGN.md §3). */
bool store_fsync_failed(Store *s);
/* Copies the WAL into the database and empties it. Not inside a transaction. */
int store_checkpoint(Store *s);
/* Pages in the WAL after the last commit. */
unsigned store_wal_pages(Store *s);
/* Copies the last committed state of the database into the existing file @dest_path (empty or
 * an SQLite database, overwritten) with SQLite's online backup; the copy is a database in
 * rollback-journal mode, synced. Any time, also inside a transaction (its writes are not
 * copied). The number of pages in *@ret_pages. */
int store_backup(Store *s, const char *dest_path, uint64_t *ret_pages);

/* Counters since the store was opened (GetStats, bench/): commits that wrote to the WAL, the
 * frames (pages) they wrote, and checkpoints. */
typedef struct StoreStats {
        uint64_t commits;
        uint64_t wal_frames;
        uint64_t checkpoints;
} StoreStats;
void store_get_stats(Store *s, StoreStats *ret);

/* A blob owned by a row (payloads, failures, attributes). */
typedef struct Blob {
        char *ptr;
        size_t size;
} Blob;

/* A copy of the @size bytes at @ptr (NULL: an empty Blob, as SQLite's NULL) into @ret;
 * -ENOMEM leaves it empty. */
int blob_copy(const void *ptr, size_t size, Blob *ret);

typedef enum WftState {
        WFT_NONE = 0,      /* no workflow task pending */
        WFT_SCHEDULED = 1, /* WorkflowTaskScheduled appended, waiting in the queue */
        WFT_STARTED = 2,   /* handed to a worker; external events are buffered */
        WFT_DELAYED = 3,   /* start_delay: no task before DEADLINE_START_DELAY (events wait) */
} WftState;

typedef struct RunRow {
        char run_id[37];
        char *workflow_id;
        char *workflow_type;
        char *task_queue;
        char *request_id;
        WorkflowStatus status;
        uint64_t start_time;
        uint64_t close_time;
        uint32_t uid;
        uint64_t next_event_id;
        uint64_t task_timeout_usec;
        WftState wft_state;
        uint64_t wft_scheduled_id;
        uint64_t wft_started_id;
        uint32_t wft_attempt;
        bool cancel_requested;
        uint64_t sticky_conn;    /* connection that holds this run in its cache, 0 = none */
        uint64_t sticky_next_id; /* first event that connection has not seen */
        Blob result;
        Blob failure;
        unsigned priority; /* 1..5 (taskset.h); 0 in a new row means the default */
        char *fairness_key;     /* NULL: "" */
        double fairness_weight; /* 0 in a new row: 1.0 */
        bool paused; /* an operator paused the run (history-pause.c); store_run_set_paused() */
} RunRow;

void run_row_done(RunRow *r);
/* The status users see: Paused for a running run that is paused, else the stored one. */
WorkflowStatus run_row_status(const RunRow *r);

int store_run_insert(Store *s, const RunRow *r);
int store_run_get(Store *s, const char *run_id, RunRow *ret);
/* The running run of @workflow_id, else the one started last. -ENOENT if none. */
int store_run_find_latest(Store *s, const char *workflow_id, RunRow *ret);
int store_run_find_running(Store *s, const char *workflow_id, RunRow *ret);
/* Writes every mutable column (status .. failure). */
int store_run_update(Store *s, const RunRow *r);
/* Sets or clears the paused flag (store_run_update() leaves it as it is). */
int store_run_set_paused(Store *s, const char *run_id, bool paused);
/* 1 when the run is paused, 0 when not, -ENOENT when there is no such run. */
int store_run_paused(Store *s, const char *run_id);
/* What task dispatch needs of a run: the connection that caches it, and who started it. */
int store_run_dispatch_info(Store *s, const char *run_id, uint64_t *ret_sticky, uint32_t *ret_uid);

typedef struct RunFilter {
        int status; /* 0 = any; as users see it (Running excludes Paused: run_row_status()) */
        bool open;  /* instead of a status: Running or Paused */
        const char *workflow_type;
        const char *task_queue;
        const char *workflow_id;
        uint32_t uid; /* with only_uid */
        bool only_uid;
        uint64_t limit;
} RunFilter;
typedef int (*run_cb)(const RunRow *r, void *userdata);
int store_runs_list(Store *s, const RunFilter *f, run_cb cb, void *userdata);

/* Visibility: ListWorkflows/CountWorkflows with a compiled list filter (daemon/filter.h). A
 * cursor is the order key and rowid of the last row of a page; the next page starts after it. */
typedef struct RunCursor {
        bool set;
        bool text; /* the key is @s, else @i */
        int64_t i;
        char *s;
        int64_t rowid;
} RunCursor;
void run_cursor_done(RunCursor *c);

typedef struct RunQuery {
        const FilterSql *filter;
        bool only_uid;
        uint32_t uid;
        const RunCursor *after; /* NULL: first page */
        uint64_t limit;
} RunQuery;
/* Calls @cb for each run of the page; *@ret_last (if not NULL) is the cursor of its last row
 * (.set false when the page is empty). */
int store_runs_query(Store *s, const RunQuery *q, run_cb cb, void *userdata, RunCursor *ret_last);
int store_runs_count(Store *s, const FilterSql *f, bool only_uid, uint32_t uid, uint64_t *ret);
/* The same per status (GROUP BY ExecutionStatus): ret[status] for each WorkflowStatus. */
int store_runs_count_by_status(Store *s,
                               const FilterSql *f,
                               bool only_uid,
                               uint32_t uid,
                               uint64_t ret[static _WORKFLOW_STATUS_MAX]);
/* SQLite's plan for store_runs_query() (the detail column of EXPLAIN QUERY PLAN, a line per
 * step, malloc'd): for tests and debugging, to check that a filter is served by indexes. */
int store_runs_query_plan(Store *s, const RunQuery *q, char **ret);

/* Memo and search attributes of a run as msgpack maps (empty blobs when it has none). */
int store_visibility_get(Store *s, const char *run_id, Blob *ret_memo, Blob *ret_sa);
int store_visibility_put(Store *s, const char *run_id, const Blob *memo, const Blob *sa);
/* The registered type of custom search attribute @name; -ENOENT when never used. */
int store_sattr_type(Store *s, const char *name, SaType *ret);
/* Registers @name with @type unless it is registered already. */
int store_sattr_register(Store *s, const char *name, SaType type);
/* Deletes the indexed values of attribute @name of a run (all of them with @name NULL). */
int store_sattrs_delete(Store *s, const char *run_id, const char *name);
/* Adds one indexed value (an element of a KeywordList, a token of a Text). */
int store_sattr_insert(Store *s, const char *run_id, const char *name, const FilterParam *v);

/* Retention: up to @max closed runs that closed before @closed_before, oldest first. */
int store_runs_expired(
        Store *s, uint64_t closed_before, size_t max, char (*ret)[37], size_t *ret_n);
/* Close time of the run that closed first; -ENOENT when no run is closed. */
int store_run_oldest_close(Store *s, uint64_t *ret);
/* Deletes a closed run with its history, visibility rows and anything left of it. */
int store_run_delete(Store *s, const char *run_id);

/* History. */
int store_event_insert(Store *s,
                       const char *run_id,
                       uint64_t event_id,
                       EventType type,
                       uint64_t time,
                       uint32_t uid,
                       const void *attrs,
                       size_t attrs_size);
/* Copies events [@first, @last] of one run into another, as they are (a branched run,
 * history-reset.c). */
int store_events_copy(
        Store *s, const char *from_run_id, const char *to_run_id, uint64_t first, uint64_t last);
typedef int (*event_cb)(uint64_t event_id,
                        EventType type,
                        uint64_t time,
                        uint32_t uid,
                        const void *attrs,
                        size_t attrs_size,
                        void *userdata);
int store_events_foreach(
        Store *s, const char *run_id, uint64_t from_event_id, event_cb cb, void *userdata);

/* Buffered external events. @link_started: the attributes lack started_event_id, which is the id
 * of the event flushed just before (an activity's Started/close pair). */
int store_buffered_insert(Store *s,
                          const char *run_id,
                          EventType type,
                          uint64_t time,
                          uint32_t uid,
                          const void *attrs,
                          size_t attrs_size,
                          bool link_started);
typedef int (*buffered_cb)(EventType type,
                           uint64_t time,
                           uint32_t uid,
                           const void *attrs,
                           size_t attrs_size,
                           bool link_started,
                           void *userdata);
/* Calls @cb for each buffered event of the run in arrival order, then deletes them. */
int store_buffered_drain(Store *s, const char *run_id, buffered_cb cb, void *userdata);
/* The same without deleting them. */
int store_buffered_foreach(Store *s, const char *run_id, buffered_cb cb, void *userdata);
int store_buffered_count(Store *s, const char *run_id);

typedef enum ActivityState {
        ACTIVITY_SCHEDULED = 0, /* in its queue, waiting for a worker */
        ACTIVITY_STARTED = 1,   /* an attempt runs */
        ACTIVITY_BACKOFF = 2,   /* waiting for the retry delay */
        _ACTIVITY_STATE_MAX,
} ActivityState;
const char *activity_state_to_string(ActivityState s);

typedef struct ActivityRow {
        char run_id[37];
        uint64_t scheduled_id;
        char *activity_id;
        char *activity_type;
        char *task_queue;
        Blob input;
        ActivityState state;
        uint32_t attempt;
        uint64_t scheduled_time; /* first scheduling */
        uint64_t attempt_time;   /* when the current attempt became ready */
        uint64_t started_time;
        uint64_t schedule_to_close_usec;
        uint64_t schedule_to_start_usec;
        uint64_t start_to_close_usec;
        uint64_t heartbeat_usec;
        uint64_t retry_initial_usec;
        double retry_backoff;
        uint64_t retry_max_interval_usec;
        uint32_t retry_max_attempts;
        Blob retry_non_retryable; /* msgpack array of str */
        Blob heartbeat_details;
        Blob last_failure;
        bool cancel_requested;
        char *identity;
        unsigned priority; /* 1..5 (taskset.h); 0 in a new row means the default */
        char *fairness_key;     /* NULL: "" */
        double fairness_weight; /* 0 in a new row: 1.0 */
        bool paused; /* an operator paused it (PauseActivity): no task while paused */
} ActivityRow;

void activity_row_done(ActivityRow *a);
int store_activity_insert(Store *s, const ActivityRow *a);
int store_activity_get(Store *s, const char *run_id, uint64_t scheduled_id, ActivityRow *ret);
int store_activity_update(Store *s, const ActivityRow *a);
int store_activity_delete(Store *s, const char *run_id, uint64_t scheduled_id);
typedef int (*activity_cb)(const ActivityRow *a, void *userdata);
int store_activities_foreach(Store *s, const char *run_id, activity_cb cb, void *userdata);
/* How many activities of @run_id are pending (scheduled, started or waiting to retry). */
int store_activities_count(Store *s, const char *run_id);
/* How many WorkflowExecutionSignaled events @run_id has, buffered ones included. */
int store_signals_count(Store *s, const char *run_id);
/* Calls @cb for each activity whose attempt runs (STARTED) with an identity beginning with @prefix
 * (the process activities of an earlier life of the daemon, at start-up). */
/* Calls @cb for each activity waiting in a queue (SCHEDULED), oldest attempt first. */
int store_activities_queued(Store *s, activity_cb cb, void *userdata);
int store_activities_started_by(Store *s, const char *prefix, activity_cb cb, void *userdata);

int store_timer_insert(Store *s,
                       const char *run_id,
                       const char *timer_id,
                       uint64_t started_id,
                       uint64_t fire_time);
/* -ENOENT when no such live timer. */
int store_timer_get(Store *s, const char *run_id, const char *timer_id, uint64_t *ret_started_id);
int store_timer_delete(Store *s, const char *run_id, const char *timer_id);

/* Tasks live in memory (taskset.h) and follow the transaction like rows; rebuilt at open where
 * the run's or the activity's priority and fairness columns put them. */
int store_task_insert(Store *s,
                      TaskKind kind,
                      const char *queue,
                      const char *run_id,
                      uint64_t ref,
                      const TaskPriority *p);
/* Takes the first task of the queue in dispatch order after *@cursor (zero: from the start):
 * fills run_id and ref, moves *@cursor to it, deletes it. -ENOENT if none. */
int store_task_pop(Store *s,
                   TaskKind kind,
                   const char *queue,
                   TaskCursor *cursor,
                   char ret_run_id[static 37],
                   uint64_t *ret_ref);
/* 1 when the queue has a task of @kind; reads only, so a pass with nothing to hand out opens
 * no transaction. */
int store_task_any(Store *s, TaskKind kind, const char *queue);
int store_task_delete(Store *s, TaskKind kind, const char *run_id, uint64_t ref);
/* The entries of a queue, in all and per priority level (taskset_queue_count()). TASKSET_STARTED
 * counts the activities of a task queue that polling workers run. */
size_t store_task_count(Store *s, TaskKind kind, const char *queue, size_t ret_levels[]);
/* taskset_queue_keys() of the store's tasks. */
int store_task_keys(Store *s, TaskKind kind, const char *queue, taskset_key_cb cb, void *userdata);
/* True, once, after an activity of TASKSET_STARTED left STARTED since the last call. */
bool store_task_released(Store *s);
/* Calls @cb with each queue name that has tasks of @kind (start-up and after a rollback). */
int store_task_queues(Store *s,
                      TaskKind kind,
                      int (*cb)(const char *queue, void *userdata),
                      void *userdata);

/* The flow-control limits of a task queue (daemon/flow.h), one row per queue that has any. */
typedef struct TaskQueueLimits {
        uint32_t concurrency; /* at most this many of its activities run at once; 0: no limit */
        uint32_t rate;        /* at most this many dispatches per rate_period_usec; 0: none */
        uint64_t rate_period_usec;
        uint32_t burst; /* the token bucket's size: dispatches at once after a quiet time */
} TaskQueueLimits;

/* What a limit applies to: a whole task queue, the activities of one fairness key of it, or
 * those of one activity type (flow.h). The name of a queue's own scope is "". */
typedef enum LimitScope {
        LIMIT_SCOPE_QUEUE = 0,
        LIMIT_SCOPE_KEY = 1,
        LIMIT_SCOPE_TYPE = 2,
        _LIMIT_SCOPE_MAX,
        _LIMIT_SCOPE_INVALID = -EINVAL,
} LimitScope;

/* Writes the limits of a scope of @queue (all zero: deletes its row). */
int store_queue_limits_set(
        Store *s, const char *queue, LimitScope scope, const char *name, const TaskQueueLimits *l);
/* Calls @cb for each scope with limits, by queue, scope and name; stops at a negative return. */
int store_queue_limits_foreach(Store *s,
                               int (*cb)(const char *queue,
                                         LimitScope scope,
                                         const char *name,
                                         const TaskQueueLimits *l,
                                         void *userdata),
                               void *userdata);
/* The activities of a scope of @queue that run (STARTED) now, exactly. */
size_t store_started_count(Store *s, const char *queue, LimitScope scope, const char *name);

/* A start queued behind the running run of its workflow id (id conflict policy Queue): the
 * request (a msgpack map, as it came), who asked, and the run id it was answered with. */
typedef struct QueuedStart {
        uint64_t seq;
        char *workflow_id;
        char run_id[37];
        uint32_t uid;
        bool admin;
        Blob request;
} QueuedStart;

void queued_start_done(QueuedStart *q);
int store_queued_start_insert(Store *s, const QueuedStart *q);
/* The oldest queued start of @workflow_id; -ENOENT when none. */
int store_queued_start_first(Store *s, const char *workflow_id, QueuedStart *ret);
int store_queued_start_delete(Store *s, uint64_t seq);
/* 1 when any start is queued, else 0. */
int store_queued_start_any(Store *s);
/* Calls @cb for each workflow id with queued starts (start-up). */
int store_queued_start_ids(Store *s,
                           int (*cb)(const char *workflow_id, void *userdata),
                           void *userdata);

typedef enum DeadlineKind {
        DEADLINE_TIMER = 0,       /* ref: TimerStarted event id, key: timer id */
        DEADLINE_WFT_TIMEOUT = 1, /* ref: WorkflowTaskStarted event id; in memory only */
        DEADLINE_WFT_BACKOFF = 2, /* ref: the failed task's started id; schedules the next task */
        DEADLINE_ACT_SCHEDULE_TO_START = 3, /* ref: scheduled id, gen: attempt */
        DEADLINE_ACT_START_TO_CLOSE = 4,
        DEADLINE_ACT_HEARTBEAT = 5,
        DEADLINE_ACT_SCHEDULE_TO_CLOSE = 6,
        DEADLINE_ACT_RETRY = 7,
        DEADLINE_SCHEDULE = 8, /* run_id "", key: schedule id, ref: the nominal time */
        DEADLINE_RUN_TIMEOUT = 9,       /* ref 0: the run's run timeout */
        DEADLINE_EXECUTION_TIMEOUT = 10, /* ref 0: the chain's execution timeout */
        DEADLINE_START_DELAY = 11,      /* ref 0: the first workflow task may be scheduled */
        DEADLINE_BATCH = 12, /* run_id "", key: batch id; its next slice of items (batch.c) */
        _DEADLINE_KIND_MAX,
} DeadlineKind;

typedef struct Deadline {
        uint64_t due;
        DeadlineKind kind;
        char run_id[37];
        uint64_t ref;
        uint64_t gen;
        char *key;
} Deadline;

void deadline_done(Deadline *d);
int store_deadline_insert(Store *s,
                          uint64_t due,
                          DeadlineKind kind,
                          const char *run_id,
                          uint64_t ref,
                          uint64_t gen,
                          const char *key);
int store_deadline_delete(Store *s, DeadlineKind kind, const char *run_id, uint64_t ref);
/* Deletes every deadline of the object whose event id is @ref (event ids are unique per run). */
int store_deadlines_delete_ref(Store *s, const char *run_id, uint64_t ref);
/* Earliest deadline; -ENOENT when none. */
int store_deadline_next(Store *s, uint64_t *ret_due);
/* Removes and returns the earliest deadline due at or before @now; -ENOENT when none. */
int store_deadline_pop_due(Store *s, uint64_t now, Deadline *ret);

/* Brings the timeout of every workflow task in flight (or only of those handed to connection
 * @conn_serial, when not 0) forward to @now: their worker is gone, nobody will answer them. */
int store_expire_workflow_tasks(Store *s, uint64_t now, uint64_t conn_serial);

/* 1 when no task waits in a queue and no workflow or activity task is in flight. */
int store_is_idle(Store *s);

/* Deletes everything pending of a run that closed: activities, timers, tasks, deadlines. */
int store_run_purge_pending(Store *s, const char *run_id);

/* The sum of the sizes of the run's event attributes (history size limits). */
int store_history_bytes(Store *s, const char *run_id, uint64_t *ret);

/* Pending child workflows (table children): one row per child started by a parent run and not
 * closed yet; run_id follows the child's continue-as-new chain. */
typedef struct ChildRow {
        char parent_run_id[37];
        uint64_t initiated_id; /* StartChildWorkflowExecutionInitiated in the parent */
        char *parent_workflow_id;
        char *workflow_id;
        char run_id[37];
        int policy; /* ParentClosePolicy (proto/policy.h) */
} ChildRow;

void child_row_done(ChildRow *c);
int store_child_insert(Store *s, const ChildRow *c);
/* The row of the child run @run_id; -ENOENT when it is no pending child. */
int store_child_get_by_run(Store *s, const char *run_id, ChildRow *ret);
int store_child_relink(Store *s, const char *old_run_id, const char *new_run_id);
int store_child_delete(Store *s, const char *parent_run_id, uint64_t initiated_id);
typedef int (*child_cb)(const ChildRow *c, void *userdata);
int store_children_foreach(Store *s, const char *parent_run_id, child_cb cb, void *userdata);
/* How many children of @parent_run_id are pending. */
int store_children_count(Store *s, const char *parent_run_id);
