/* Store: SQLite persistence for durabled.
 *
 * Schema (version 4; migrations[] below moves an older file forward). Every time is usec since
 * the epoch (CLOCK_REALTIME of daemon/clock.c).
 *
 *   runs        one row per run. The partial unique index runs_running makes "one running run
 *               per workflow id" a constraint of the database, not just of the code. runs_wid
 *               serves "latest run of a workflow id". ListWorkflows answers newest first:
 *               runs_list orders an unfiltered list; runs_xstatus (version 3; runs_status in
 *               version 1), runs_type, runs_queue and
 *               runs_uid (a caller who is not an administrator sees only their own runs) give
 *               each filter its rows already in that order, so that a list of a store holding a
 *               million runs reads about as many rows as it answers, not the whole table
 *               (bench W6). runs_wft_started holds only the runs whose workflow task is in
 *               flight: what expiring a closed connection's tasks and the idle check look for,
 *               without walking every open run (they name it with INDEXED BY: with no statistics
 *               SQLite would take the status index, i.e. every open run). store_runs_list() says
 *               which filter's index a list uses, for the same reason.
 *   events      the history: (run_id, event_id) is the key, so a duplicate or reused id is a
 *               constraint error, never a silent overwrite. attrs is the msgpack map sent on the
 *               wire as is (never re-encoded).
 *   buffered    external events that arrived while a workflow task was in flight, in arrival
 *               order (seq); moved into events when the task closes.
 *   activities  pending activities (deleted when they close).
 *   timers      pending durable timers (deleted when they fire or are cancelled).
 *   (tasks)     not a table: the dispatchable tasks are in memory (taskset.h), journaled with
 *               the transaction and rebuilt at open from the runs whose workflow task is
 *               scheduled and the activities that are scheduled (load_tasks()).
 *   deadlines   every absolute time the daemon must act at, keyed (due, seq): the next one is the
 *               table's first row;
 *               deadlines_ref finds those of an activity or a run to delete them early.
 *               Except the timeouts of workflow tasks in flight: they are in memory with the
 *               tasks (TASKSET_WFT_TIMEOUTS), since a restart expires every task in flight at
 *               once anyway (store_expire_workflow_tasks()); store_deadline_next() and
 *               store_deadline_pop_due() merge the two in due order.
 *   visibility  memo and search attributes of the runs that have any, as the msgpack maps
 *               DescribeWorkflow answers (store-visibility section below).
 *   sattr_types the type of each custom search attribute, fixed by its first use (Temporal
 *               registers them before use; here the first start or upsert does).
 *   sattrs      the values of custom search attributes, one row per value (a KeywordList has one
 *               per element, a Text one per token): the list filter (daemon/filter.c) turns a
 *               condition on one attribute into one range of sattrs_ival, sattrs_dval or
 *               sattrs_sval, which end in run_id so that the range alone answers it; sattrs_run
 *               replaces a run's values on upsert and deletes them with the run.
 *   runs_closed orders the closed runs by close time: the retention sweep (daemon/retention.h)
 *               reads the oldest ones from it, a small batch per loop pass.
 *
 * The rows of open runs and of activities that were used lately are also in memory
 * (store-rowcache.h): write-through copies that store_run_get() and store_activity_get() answer
 * from; every write of such a row here keeps its copy exact, and every rollback forgets them all
 * (store_forget()).
 *
 * Statements are prepared once (SQLITE_PREPARE_PERSISTENT) and reset after each use.
 */

#include "daemon/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"
#include "daemon/killpoint.h"
#include "daemon/store-batch.h"
#include "daemon/store-internal.h"
#include "daemon/store-rowcache.h"

enum {
        Q_RUN_INSERT,
        Q_RUN_GET,
        Q_RUN_LATEST,
        Q_RUN_RUNNING,
        Q_RUN_UPDATE,
        Q_RUN_UPDATE_OPEN,
        Q_RUN_STICKY,
        Q_RUN_SET_PAUSED,
        Q_RUN_PAUSED,
        Q_EVENT_INSERT,
        Q_EVENT_FOREACH,
        Q_BUF_INSERT,
        Q_BUF_LIST,
        Q_BUF_DELETE,
        Q_BUF_COUNT,
        Q_ACT_INSERT,
        Q_ACT_GET,
        Q_ACT_UPDATE,
        Q_ACT_DELETE,
        Q_ACT_FOREACH,
        Q_ACT_STARTED_BY,
        Q_ACT_QUEUED,
        Q_TIMER_INSERT,
        Q_TIMER_GET,
        Q_TIMER_DELETE,
        Q_DL_INSERT,
        Q_DL_DELETE,
        Q_DL_DELETE_REF,
        Q_DL_NEXT,
        Q_DL_FIRST_DUE,
        Q_DL_DELETE_SEQ,
        Q_PURGE_ACT,
        Q_PURGE_TIMER,
        Q_PURGE_DL,
        Q_PURGE_BUF,
        Q_BEGIN,
        Q_COMMIT,
        Q_ROLLBACK,
        Q_SAVEPOINT,
        Q_IDLE,
        Q_WFT_STARTED_ALL,
        Q_WFT_STARTED_CONN,
        Q_RELEASE,
        Q_ROLLBACK_TO,
        Q_HISTORY_BYTES,
        Q_CHILD_INSERT,
        Q_CHILD_BY_RUN,
        Q_CHILD_RELINK,
        Q_CHILD_DELETE,
        Q_CHILD_FOREACH,
        Q_CHILD_COUNT,
        Q_ACT_COUNT,
        Q_SIGNAL_COUNT,
        _Q_MAX,
};

#define RUN_COLUMNS                                                                            \
        "run_id, workflow_id, workflow_type, task_queue, request_id, status, start_time, "     \
        "close_time, uid, next_event_id, task_timeout, wft_state, wft_scheduled_id, "          \
        "wft_started_id, wft_attempt, cancel_requested, sticky_conn, sticky_next_id, result, " \
        "failure, priority, fairness_key, fairness_weight, paused"

#define ACT_COLUMNS                                                                              \
        "run_id, scheduled_id, activity_id, activity_type, task_queue, input, state, attempt, "  \
        "scheduled_time, attempt_time, started_time, s2c, s2s, st2c, heartbeat, retry_initial, " \
        "retry_backoff, retry_max_interval, retry_max_attempts, retry_non_retryable, "           \
        "heartbeat_details, last_failure, cancel_requested, identity, priority, fairness_key, "  \
        "fairness_weight, paused"

static const char *const sql[_Q_MAX] = {
        [Q_RUN_INSERT] = "INSERT INTO runs (" RUN_COLUMNS ") VALUES "
                         "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [Q_RUN_GET] = "SELECT " RUN_COLUMNS " FROM runs WHERE run_id = ?",
        /* The newest run of an id; runs_wid yields it in order, without a sort (the running
         * run, which wins over it, is looked up first: store_run_find_latest()). */
        [Q_RUN_LATEST] = "SELECT " RUN_COLUMNS " FROM runs WHERE workflow_id = ? "
                         "ORDER BY start_time DESC, rowid DESC LIMIT 1",
        [Q_RUN_RUNNING] = "SELECT " RUN_COLUMNS " FROM runs WHERE workflow_id = ? AND status = 1",
        [Q_RUN_UPDATE] = "UPDATE runs SET status = ?2, close_time = ?3, next_event_id = ?4, "
                         "wft_state = ?5, wft_scheduled_id = ?6, wft_started_id = ?7, "
                         "wft_attempt = ?8, cancel_requested = ?9, sticky_conn = ?10, "
                         "sticky_next_id = ?11, result = ?12, failure = ?13 WHERE run_id = ?1",
        /* The same for a run that stays open: SQLite rewrites the entries of every index whose
         * column an UPDATE sets, changed or not, so leaving out status (and the columns only a
         * close sets) spares runs_running and runs_xstatus a page each per step. */
        [Q_RUN_UPDATE_OPEN] = "UPDATE runs SET next_event_id = ?4, "
                              "wft_state = ?5, wft_scheduled_id = ?6, wft_started_id = ?7, "
                              "wft_attempt = ?8, cancel_requested = ?9, sticky_conn = ?10, "
                              "sticky_next_id = ?11 WHERE run_id = ?1",
        [Q_RUN_STICKY] = "SELECT sticky_conn, uid FROM runs WHERE run_id = ?",
        [Q_RUN_SET_PAUSED] = "UPDATE runs SET paused = ?2 WHERE run_id = ?1",
        [Q_RUN_PAUSED] = "SELECT paused FROM runs WHERE run_id = ?",
        [Q_EVENT_INSERT] = "INSERT INTO events (run_id, event_id, type, time, uid, attrs) "
                           "VALUES (?,?,?,?,?,?)",
        [Q_EVENT_FOREACH] = "SELECT event_id, type, time, uid, attrs FROM events "
                            "WHERE run_id = ? AND event_id >= ? ORDER BY event_id",
        [Q_BUF_INSERT] = "INSERT INTO buffered (run_id, type, time, uid, attrs, link_started) "
                         "VALUES (?,?,?,?,?,?)",
        [Q_BUF_LIST] = "SELECT type, time, uid, attrs, link_started FROM buffered "
                       "WHERE run_id = ? ORDER BY seq",
        [Q_BUF_DELETE] = "DELETE FROM buffered WHERE run_id = ?",
        [Q_BUF_COUNT] = "SELECT count(*) FROM buffered WHERE run_id = ?",
        [Q_ACT_INSERT] = "INSERT INTO activities (" ACT_COLUMNS ") VALUES "
                         "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [Q_ACT_GET] = "SELECT " ACT_COLUMNS " FROM activities "
                      "WHERE run_id = ? AND scheduled_id = ?",
        [Q_ACT_UPDATE] = "UPDATE activities SET state = ?3, attempt = ?4, attempt_time = ?5, "
                         "started_time = ?6, heartbeat_details = ?7, last_failure = ?8, "
                         "cancel_requested = ?9, identity = ?10, paused = ?11 "
                         "WHERE run_id = ?1 AND scheduled_id = ?2",
        [Q_ACT_DELETE] = "DELETE FROM activities WHERE run_id = ? AND scheduled_id = ?",
        [Q_ACT_FOREACH] = "SELECT " ACT_COLUMNS " FROM activities WHERE run_id = ? "
                          "ORDER BY scheduled_id",
        /* Without those of paused runs: they hold no task (history-pause.c). */
        [Q_ACT_QUEUED] = "SELECT " ACT_COLUMNS " FROM activities WHERE state = 0 AND "
                         "paused = 0 AND run_id NOT IN (SELECT run_id FROM runs WHERE paused = 1) "
                         "ORDER BY attempt_time",
        [Q_ACT_STARTED_BY] = "SELECT " ACT_COLUMNS " FROM activities WHERE state = 1 AND "
                              "substr(identity, 1, length(?1)) = ?1",
        [Q_TIMER_INSERT] = "INSERT INTO timers (run_id, timer_id, started_id, fire_time) "
                           "VALUES (?,?,?,?)",
        [Q_TIMER_GET] = "SELECT started_id FROM timers WHERE run_id = ? AND timer_id = ?",
        [Q_TIMER_DELETE] = "DELETE FROM timers WHERE run_id = ? AND timer_id = ?",
        [Q_DL_INSERT] = "INSERT INTO deadlines (due, kind, run_id, ref, gen, key, seq) "
                        "VALUES (?,?,?,?,?,?,?)",
        [Q_DL_DELETE] = "DELETE FROM deadlines WHERE run_id = ?2 AND ref = ?3 AND kind = ?1",
        [Q_DL_DELETE_REF] = "DELETE FROM deadlines WHERE run_id = ? AND ref = ?",
        [Q_DL_NEXT] = "SELECT min(due) FROM deadlines",
        [Q_DL_FIRST_DUE] = "SELECT seq, due, kind, run_id, ref, gen, key FROM deadlines "
                           "WHERE due <= ? ORDER BY due, seq LIMIT 1",
        [Q_DL_DELETE_SEQ] = "DELETE FROM deadlines WHERE due = ? AND seq = ?",
        [Q_PURGE_ACT] = "DELETE FROM activities WHERE run_id = ?",
        [Q_PURGE_TIMER] = "DELETE FROM timers WHERE run_id = ?",
        [Q_PURGE_DL] = "DELETE FROM deadlines WHERE run_id = ?",
        [Q_PURGE_BUF] = "DELETE FROM buffered WHERE run_id = ?",
        [Q_BEGIN] = "BEGIN IMMEDIATE",
        [Q_COMMIT] = "COMMIT",
        [Q_ROLLBACK] = "ROLLBACK",
        [Q_SAVEPOINT] = "SAVEPOINT op",
        /* The runs whose workflow task is in flight (all, or a connection's). */
        [Q_WFT_STARTED_ALL] = "SELECT run_id, wft_started_id FROM runs "
                              "INDEXED BY runs_wft_started WHERE status = 1 AND wft_state = 2",
        [Q_WFT_STARTED_CONN] = "SELECT run_id, wft_started_id FROM runs "
                               "INDEXED BY runs_wft_started "
                               "WHERE status = 1 AND wft_state = 2 AND sticky_conn = ?1",
        [Q_IDLE] = "SELECT EXISTS (SELECT 1 FROM activities WHERE state = 1) OR "
                   "EXISTS (SELECT 1 FROM runs INDEXED BY runs_wft_started "
                   "WHERE status = 1 AND wft_state = 2)",
        [Q_RELEASE] = "RELEASE op",
        [Q_ROLLBACK_TO] = "ROLLBACK TO op",
        [Q_HISTORY_BYTES] = "SELECT total(length(attrs)) FROM events WHERE run_id = ?",
        [Q_CHILD_INSERT] = "INSERT INTO children (parent_run_id, initiated_id, parent_workflow_id, "
                           "workflow_id, run_id, policy) VALUES (?,?,?,?,?,?)",
        [Q_CHILD_BY_RUN] = "SELECT parent_run_id, initiated_id, parent_workflow_id, workflow_id, "
                           "run_id, policy FROM children WHERE run_id = ?",
        [Q_CHILD_COUNT] = "SELECT count(*) FROM children WHERE parent_run_id = ?",
        [Q_ACT_COUNT] = "SELECT count(*) FROM activities WHERE run_id = ?",
        /* Signals delivered and those buffered while a workflow task runs. */
        [Q_SIGNAL_COUNT] = "SELECT (SELECT count(*) FROM events WHERE run_id = ?1 AND type = ?2) + "
                           "(SELECT count(*) FROM buffered WHERE run_id = ?1 AND type = ?2)",
        [Q_CHILD_RELINK] = "UPDATE children SET run_id = ?2 WHERE run_id = ?1",
        [Q_CHILD_DELETE] = "DELETE FROM children WHERE parent_run_id = ? AND initiated_id = ?",
        [Q_CHILD_FOREACH] = "SELECT parent_run_id, initiated_id, parent_workflow_id, workflow_id, "
                            "run_id, policy FROM children WHERE parent_run_id = ? "
                            "ORDER BY initiated_id",
};

/* Each entry moves the schema from version i to i + 1, inside one transaction. */
static const char *const migrations[] = {
        "CREATE TABLE runs ("
        "  run_id TEXT PRIMARY KEY NOT NULL,"
        "  workflow_id TEXT NOT NULL,"
        "  workflow_type TEXT NOT NULL,"
        "  task_queue TEXT NOT NULL,"
        "  request_id TEXT,"
        "  status INTEGER NOT NULL,"
        "  start_time INTEGER NOT NULL,"
        "  close_time INTEGER NOT NULL DEFAULT 0,"
        "  uid INTEGER NOT NULL,"
        "  next_event_id INTEGER NOT NULL,"
        "  task_timeout INTEGER NOT NULL,"
        "  wft_state INTEGER NOT NULL DEFAULT 0,"
        "  wft_scheduled_id INTEGER NOT NULL DEFAULT 0,"
        "  wft_started_id INTEGER NOT NULL DEFAULT 0,"
        "  wft_attempt INTEGER NOT NULL DEFAULT 0,"
        "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
        "  sticky_conn INTEGER NOT NULL DEFAULT 0,"
        "  sticky_next_id INTEGER NOT NULL DEFAULT 0,"
        "  result BLOB,"
        "  failure BLOB);"
        "CREATE UNIQUE INDEX runs_running ON runs (workflow_id) WHERE status = 1;"
        "CREATE INDEX runs_wid ON runs (workflow_id, start_time);"
        "CREATE INDEX runs_list ON runs (start_time);"
        "CREATE INDEX runs_status ON runs (status, start_time);"
        "CREATE INDEX runs_type ON runs (workflow_type, start_time);"
        "CREATE INDEX runs_queue ON runs (task_queue, start_time);"
        "CREATE INDEX runs_uid ON runs (uid, start_time);"
        "CREATE INDEX runs_wft_started ON runs (sticky_conn) WHERE status = 1 AND wft_state = 2;"
        "CREATE TABLE events ("
        "  run_id TEXT NOT NULL,"
        "  event_id INTEGER NOT NULL,"
        "  type INTEGER NOT NULL,"
        "  time INTEGER NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  attrs BLOB NOT NULL,"
        "  PRIMARY KEY (run_id, event_id)) WITHOUT ROWID;"
        "CREATE TABLE buffered ("
        "  seq INTEGER PRIMARY KEY,"
        "  run_id TEXT NOT NULL,"
        "  type INTEGER NOT NULL,"
        "  time INTEGER NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  attrs BLOB NOT NULL,"
        "  link_started INTEGER NOT NULL);"
        "CREATE INDEX buffered_run ON buffered (run_id, seq);"
        "CREATE TABLE activities ("
        "  run_id TEXT NOT NULL,"
        "  scheduled_id INTEGER NOT NULL,"
        "  activity_id TEXT NOT NULL,"
        "  activity_type TEXT NOT NULL,"
        "  task_queue TEXT NOT NULL,"
        "  input BLOB,"
        "  state INTEGER NOT NULL,"
        "  attempt INTEGER NOT NULL,"
        "  scheduled_time INTEGER NOT NULL,"
        "  attempt_time INTEGER NOT NULL,"
        "  started_time INTEGER NOT NULL,"
        "  s2c INTEGER NOT NULL, s2s INTEGER NOT NULL, st2c INTEGER NOT NULL,"
        "  heartbeat INTEGER NOT NULL,"
        "  retry_initial INTEGER NOT NULL, retry_backoff REAL NOT NULL,"
        "  retry_max_interval INTEGER NOT NULL, retry_max_attempts INTEGER NOT NULL,"
        "  retry_non_retryable BLOB,"
        "  heartbeat_details BLOB,"
        "  last_failure BLOB,"
        "  cancel_requested INTEGER NOT NULL,"
        "  identity TEXT,"
        "  PRIMARY KEY (run_id, scheduled_id)) WITHOUT ROWID;"
        "CREATE TABLE timers ("
        "  run_id TEXT NOT NULL,"
        "  timer_id TEXT NOT NULL,"
        "  started_id INTEGER NOT NULL,"
        "  fire_time INTEGER NOT NULL,"
        "  PRIMARY KEY (run_id, timer_id)) WITHOUT ROWID;"
        "CREATE TABLE deadlines ("
        "  due INTEGER NOT NULL,"
        "  seq INTEGER NOT NULL,"
        "  kind INTEGER NOT NULL,"
        "  run_id TEXT NOT NULL,"
        "  ref INTEGER NOT NULL,"
        "  gen INTEGER NOT NULL,"
        "  key TEXT,"
        "  PRIMARY KEY (due, seq)) WITHOUT ROWID;"
        "CREATE INDEX deadlines_ref ON deadlines (run_id, ref);"
        /* Schedules (store-schedule.c): the definition as created (msgpack), its source (the
         * *.schedule unit file it came from; NULL: created through the API), the cursor (every
         * nominal time up to it was acted on), counters; the recent actions (the last ten, and
         * every one whose run still runs: what the overlap policy looks at), found by run when
         * a run closes; the buffered starts of the buffer policies, in order. */
        "CREATE TABLE schedules ("
        "  schedule_id TEXT PRIMARY KEY NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  def BLOB NOT NULL,"
        "  paused INTEGER NOT NULL,"
        "  note TEXT,"
        "  create_time INTEGER NOT NULL,"
        "  cursor INTEGER NOT NULL,"
        "  action_count INTEGER NOT NULL DEFAULT 0,"
        "  overlap_skipped INTEGER NOT NULL DEFAULT 0,"
        "  buffer_dropped INTEGER NOT NULL DEFAULT 0,"
        "  missed_catchup INTEGER NOT NULL DEFAULT 0,"
        "  source TEXT,"
        "  wake_system INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
        "CREATE TABLE schedule_actions ("
        "  schedule_id TEXT NOT NULL,"
        "  seq INTEGER NOT NULL,"
        "  kind INTEGER NOT NULL,"
        "  scheduled_time INTEGER NOT NULL,"
        "  actual_time INTEGER NOT NULL,"
        "  workflow_id TEXT NOT NULL,"
        "  run_id TEXT NOT NULL,"
        "  PRIMARY KEY (schedule_id, seq)) WITHOUT ROWID;"
        "CREATE INDEX schedule_actions_run ON schedule_actions (run_id);"
        "CREATE TABLE schedule_buffer ("
        "  schedule_id TEXT NOT NULL,"
        "  seq INTEGER NOT NULL,"
        "  scheduled_time INTEGER NOT NULL,"
        "  kind INTEGER NOT NULL,"
        "  PRIMARY KEY (schedule_id, seq)) WITHOUT ROWID;"
        /* Visibility (daemon/visibility.h). */
        "CREATE TABLE visibility ("
        "  run_id TEXT PRIMARY KEY NOT NULL,"
        "  memo BLOB,"
        "  search_attrs BLOB) WITHOUT ROWID;"
        "CREATE TABLE sattr_types ("
        "  name TEXT PRIMARY KEY NOT NULL,"
        "  type INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE sattrs ("
        "  run_id TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  ival INTEGER,"
        "  dval REAL,"
        "  sval TEXT);"
        "CREATE INDEX sattrs_ival ON sattrs (name, ival, run_id);"
        "CREATE INDEX sattrs_dval ON sattrs (name, dval, run_id);"
        "CREATE INDEX sattrs_sval ON sattrs (name, sval, run_id);"
        "CREATE INDEX sattrs_run ON sattrs (run_id, name);"
        "CREATE INDEX runs_closed ON runs (close_time) WHERE status != 1;"
        "CREATE TABLE children ("
        "  parent_run_id TEXT NOT NULL,"
        "  initiated_id INTEGER NOT NULL,"
        "  parent_workflow_id TEXT NOT NULL,"
        "  workflow_id TEXT NOT NULL,"
        "  run_id TEXT NOT NULL,"
        "  policy INTEGER NOT NULL,"
        "  PRIMARY KEY (parent_run_id, initiated_id)) WITHOUT ROWID;"
        "CREATE INDEX children_run ON children (run_id);",
        /* Version 2: flow control (daemon/flow.h). The priority and fairness keys and weight of
         * a run (its workflow tasks, and the defaults of its activities and children) and of an
         * activity, so that the tasks rebuilt at open go where they were; the limits set on task
         * queues. */
        "ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 3;"
        "ALTER TABLE runs ADD COLUMN fairness_key TEXT;"
        "ALTER TABLE runs ADD COLUMN fairness_weight REAL NOT NULL DEFAULT 1.0;"
        "ALTER TABLE activities ADD COLUMN priority INTEGER NOT NULL DEFAULT 3;"
        "ALTER TABLE activities ADD COLUMN fairness_key TEXT;"
        "ALTER TABLE activities ADD COLUMN fairness_weight REAL NOT NULL DEFAULT 1.0;"
        /* Starts queued behind the running run of their workflow id (id conflict policy Queue),
         * the request as it came (msgpack), in arrival order per id. */
        "CREATE TABLE queued_starts ("
        "  seq INTEGER PRIMARY KEY,"
        "  workflow_id TEXT NOT NULL,"
        "  run_id TEXT NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  admin INTEGER NOT NULL,"
        "  request BLOB NOT NULL);"
        "CREATE INDEX queued_starts_wid ON queued_starts (workflow_id, seq);"
        "CREATE TABLE task_queue_limits ("
        "  task_queue TEXT PRIMARY KEY NOT NULL,"
        "  concurrency INTEGER NOT NULL,"
        "  rate INTEGER NOT NULL,"
        "  rate_period INTEGER NOT NULL,"
        "  burst INTEGER NOT NULL) WITHOUT ROWID;",
        /* Version 3: operators pause runs (history-pause.c). A paused run keeps status 1 (it is
         * open: runs_running and every "status = 1" above stay true of it); ExecutionStatus shows
         * it as Paused (FILTER_STATUS_SQL), served by runs_xstatus, which takes the place of
         * runs_status (one index per run write more would cost every workflow: bench W1); open
         * runs alone are found through the partial index runs_running. */
        "ALTER TABLE runs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX runs_xstatus ON runs (status + 7 * paused, start_time);"
        "DROP INDEX runs_status;"
        /* ... and single activities (PauseActivity): no task while paused. */
        "ALTER TABLE activities ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;"
        /* Batch operations (daemon/batch.h, store-batch.c): one row per batch, and its items, the
         * runs its list filter matched when it started, in order (seq from 1); next_seq is the
         * first item not done yet, so that a batch resumes exactly there after a restart. */
        "CREATE TABLE batches ("
        "  batch_id TEXT PRIMARY KEY NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  op TEXT NOT NULL,"
        "  query TEXT NOT NULL,"
        "  args BLOB,"
        "  rps REAL NOT NULL,"
        "  state INTEGER NOT NULL,"
        "  create_time INTEGER NOT NULL,"
        "  close_time INTEGER NOT NULL DEFAULT 0,"
        "  total INTEGER NOT NULL,"
        "  next_seq INTEGER NOT NULL,"
        "  failed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
        "CREATE TABLE batch_items ("
        "  batch_id TEXT NOT NULL,"
        "  seq INTEGER NOT NULL,"
        "  workflow_id TEXT NOT NULL,"
        "  run_id TEXT NOT NULL,"
        "  state INTEGER NOT NULL DEFAULT 0,"
        "  code TEXT,"
        "  message TEXT,"
        "  PRIMARY KEY (batch_id, seq)) WITHOUT ROWID;",
        /* Version 4: limits per scope of a task queue (flow.h): the whole queue (scope 0, name
         * ""), one fairness key (1) or one activity type (2). */
        "CREATE TABLE scoped_limits ("
        "  task_queue TEXT NOT NULL,"
        "  scope INTEGER NOT NULL,"
        "  name TEXT NOT NULL,"
        "  concurrency INTEGER NOT NULL,"
        "  rate INTEGER NOT NULL,"
        "  rate_period INTEGER NOT NULL,"
        "  burst INTEGER NOT NULL,"
        "  PRIMARY KEY (task_queue, scope, name)) WITHOUT ROWID;"
        "INSERT INTO scoped_limits SELECT task_queue, 0, '', concurrency, rate, rate_period, "
        "burst FROM task_queue_limits;"
        "DROP TABLE task_queue_limits;"
        "ALTER TABLE scoped_limits RENAME TO task_queue_limits;",
};

typedef struct CachedStmt {
        const char *sql; /* the caller's string literal: looked up by its address */
        sqlite3_stmt *st;
} CachedStmt;

struct Store {
        sqlite3 *db;
        char *path; /* of the database, for store_backup()'s reading connection */
        sqlite3_stmt *stmt[_Q_MAX];
        CachedStmt *cached; /* store_prepare_cached()'s statements, by SQL text */
        size_t n_cached, cached_alloc;
        bool in_txn;
        bool txn_lost; /* SQLite rolled the pass's transaction back by itself (see savepoint) */
        bool fsync_failed;
        TaskSet *tasks;
        /* Copies of the rows of open runs and of activities (store-rowcache.h). */
        RowCache *runs, *activities;
        bool started_released; /* an entry of TASKSET_STARTED was removed (started_forget()) */
        unsigned wal_pages; /* frames in the WAL after the last commit (sqlite3_wal_hook) */
        StoreStats stats;
        /* Sequence number of deadlines: the part of their key that orders rows of the same due
         * time. Increasing, never reused while the daemon runs (a rollback leaves a gap, which
         * is harmless), restored from the table at open. */
        uint64_t deadline_seq;
        /* Schedules with WakeSystem= (store_schedule_wake_next(), which every pass that changes a
         * deadline asks, needs no query while there are none); -1: count them again. Every
         * change of the schedules table and every rollback forgets the count. */
        int wake_schedules;
};

static int on_wal_commit(void *userdata, sqlite3 *db, const char *name, int pages) {
        Store *s = userdata;

        unsigned now = pages > 0 ? (unsigned) pages : 0;

        /* The WAL starts over after a checkpoint: then all its frames are this commit's. */
        s->stats.commits++;
        s->stats.wal_frames += now >= s->wal_pages ? now - s->wal_pages : now;
        s->wal_pages = now;
        return SQLITE_OK;
}

static int sql_error(Store *s, int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_IOERR:
                if (rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC)
                        s->fsync_failed = true;
                return -EIO;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        default:
                return -EIO;
        }
}

sqlite3 *store_db(Store *s) {
        return s->db;
}

int store_sql_error(Store *s, int rc) {
        return sql_error(s, rc);
}

int store_prepare_cached(Store *s, const char *text, sqlite3_stmt **ret) {
        sqlite3_stmt *st = NULL;
        int rc;

        /* A statement still stepping (a callback of a loop over its rows ran the same query)
         * is skipped: the second use gets a statement of its own, kept as well. */
        for (size_t i = 0; i < s->n_cached; i++)
                if (s->cached[i].sql == text && !sqlite3_stmt_busy(s->cached[i].st)) {
                        *ret = s->cached[i].st;
                        return 0;
                }
        if (s->n_cached == s->cached_alloc) {
                size_t n = s->cached_alloc ? s->cached_alloc * 2 : 32;
                CachedStmt *c = reallocarray(s->cached, n, sizeof(*c));

                if (!c)
                        return -ENOMEM;
                s->cached = c;
                s->cached_alloc = n;
        }
        rc = sqlite3_prepare_v3(s->db, text, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(s, rc);
        s->cached[s->n_cached++] = (CachedStmt){ .sql = text, .st = st };
        *ret = st;
        return 0;
}

void store_stmt_put(sqlite3_stmt *st) {
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
}

static sqlite3_stmt *stmt(Store *s, int q) {
        if (!s->stmt[q] && sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT,
                                              &s->stmt[q], NULL) != SQLITE_OK)
                return NULL;
        return s->stmt[q];
}

/* Runs a statement that returns no rows and resets it. */
static int step_done(Store *s, sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
        return rc == SQLITE_DONE ? 0 : sql_error(s, rc);
}

/* step_done() for the writes crash tests kill the daemon after (killpoint.h): the row is written
 * in the pass's transaction, which is not committed. */
static int step_killpoint(Store *s, sqlite3_stmt *st, const char *name) {
        int r = step_done(s, st);

        if (r >= 0)
                killpoint(name);
        return r;
}

static void finish(sqlite3_stmt *st) {
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
}

void store_bind_text(sqlite3_stmt *st, int i, const char *t) {
        if (t)
                (void) sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
        else
                (void) sqlite3_bind_null(st, i);
}

static void bind_blob(sqlite3_stmt *st, int i, const Blob *b) {
        if (b->ptr)
                (void) sqlite3_bind_blob64(st, i, b->ptr, b->size, SQLITE_STATIC);
        else
                (void) sqlite3_bind_null(st, i);
}

void store_bind_u64(sqlite3_stmt *st, int i, uint64_t v) {
        (void) sqlite3_bind_int64(st, i, (sqlite3_int64) v);
}

uint64_t store_col_u64(sqlite3_stmt *st, int i) {
        return (uint64_t) sqlite3_column_int64(st, i);
}

int store_col_strdup(sqlite3_stmt *st, int i, char **ret) {
        const unsigned char *t = sqlite3_column_text(st, i);
        *ret = NULL;
        if (!t)
                return 0;
        *ret = strdup((const char *) t);
        return *ret ? 0 : -ENOMEM;
}

static int col_blob(sqlite3_stmt *st, int i, Blob *ret) {
        const void *p = sqlite3_column_blob(st, i);

        return blob_copy(p, (size_t) sqlite3_column_bytes(st, i), ret);
}

static void col_fixed(sqlite3_stmt *st, int i, char *dst, size_t size) {
        const unsigned char *t = sqlite3_column_text(st, i);
        snprintf(dst, size, "%s", t ? (const char *) t : "");
}

/* Steps @st through its rows, calling @row for each; stops at the first negative return. */
static int
each_row(Store *s, sqlite3_stmt *st, int (*row)(sqlite3_stmt *st, void *userdata), void *userdata) {
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = row(st, userdata);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : sql_error(s, rc);
}

static int exec(Store *s, const char *text) {
        return sql_error(s, sqlite3_exec(s->db, text, NULL, NULL, NULL));
}

static int migrate(Store *s) {
        sqlite3_stmt *st;
        int version, r;

        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        sqlite3_finalize(st);
        if (version < 0)
                return -EIO;
        if ((size_t) version > ELEMENTSOF(migrations))
                return -EPROTONOSUPPORT; /* written by a newer durabled */

        for (size_t v = (size_t) version; v < ELEMENTSOF(migrations); v++) {
                char bump[64];

                r = exec(s, "BEGIN IMMEDIATE");
                if (r < 0)
                        return r;
                snprintf(bump, sizeof(bump), "PRAGMA user_version = %zu", v + 1);
                r = exec(s, migrations[v]);
                if (r >= 0)
                        r = exec(s, bump);
                if (r >= 0)
                        r = exec(s, "COMMIT");
                if (r < 0) {
                        (void) exec(s, "ROLLBACK");
                        return r;
                }
        }
        return 0;
}

static int quick_check(Store *s) {
        sqlite3_stmt *st;
        int ok;

        if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
                return -EUCLEAN;
        ok = sqlite3_step(st) == SQLITE_ROW &&
             streq((const char *) sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        return ok ? 0 : -EUCLEAN;
}

void store_check_file(const char *path, char *buf, size_t size) {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;
        int rc;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                snprintf(buf, size, "%s", (const char *) sqlite3_column_text(st, 0) ?: "?");
        else
                snprintf(buf, size, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_finalize(st);
        sqlite3_close(db);
        for (char *p = buf; (p = strchr(p, '\n'));)
                *p = ' '; /* one log line */
}

static int max_seq(Store *s, const char *query, uint64_t *ret) {
        sqlite3_stmt *st;
        int rc;

        if (sqlite3_prepare_v2(s->db, query, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = store_col_u64(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : sql_error(s, rc);
}

static int load_seqs(Store *s) {
        return max_seq(s, "SELECT coalesce(max(seq), 0) FROM deadlines", &s->deadline_seq);
}

/* The tasks a store implies (taskset.h): a task for each open run whose workflow task is
 * scheduled and for each activity waiting in its queue, oldest first, as they were queued (the
 * time of WorkflowTaskScheduled, the time the activity's attempt became ready). */
static int load_tasks(Store *s) {
        static const char q[] =
                "SELECT 0, r.task_queue, r.run_id, r.wft_scheduled_id, e.time, r.priority, "
                "r.fairness_key, r.fairness_weight FROM runs r "
                "JOIN events e ON e.run_id = r.run_id AND e.event_id = r.wft_scheduled_id "
                "WHERE r.status = 1 AND r.wft_state = 1 AND r.paused = 0 "
                "UNION ALL "
                "SELECT 1, task_queue, run_id, scheduled_id, attempt_time, priority, fairness_key, "
                "fairness_weight FROM activities WHERE state = 0 AND paused = 0 AND "
                "run_id NOT IN (SELECT run_id FROM runs WHERE paused = 1) "
                "UNION ALL "
                "SELECT 4, task_queue, run_id, scheduled_id, started_time, priority, fairness_key, "
                "1.0 FROM activities WHERE state = 1 "
                "UNION ALL "
                "SELECT 5, task_queue || char(31) || activity_type, run_id, scheduled_id, "
                "started_time, 0, NULL, 1.0 FROM activities WHERE state = 1 "
                "ORDER BY 5";
        sqlite3_stmt *st;
        int rc, r = 0;

        static_assert(TASKSET_STARTED == 4, "the kind load_tasks() selects");
        static_assert(TASKSET_STARTED_TYPE == 5, "the kind load_tasks() selects");
        s->tasks = taskset_new();
        if (!s->tasks)
                return -ENOMEM;
        if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
                r = taskset_insert(
                        s->tasks, (TaskKind) sqlite3_column_int(st, 0),
                        (const char *) sqlite3_column_text(st, 1),
                        (const char *) sqlite3_column_text(st, 2), store_col_u64(st, 3),
                        &(TaskPriority){
                                .priority = (unsigned) sqlite3_column_int(st, 5),
                                .fairness_key = (const char *) sqlite3_column_text(st, 6),
                                .fairness_weight = sqlite3_column_double(st, 7),
                        });
        if (r >= 0 && rc != SQLITE_DONE)
                r = sql_error(s, rc);
        sqlite3_finalize(st);
        taskset_commit(s->tasks);
        return r;
}

/* One thread (the loop's) uses SQLite (DESIGN.md §3: one writing connection; a backup opens a
 * second, read-only one on the same thread), so SQLite's mutexes only cost:
 * with them and the allocator's statistics off, a W2 workflow takes ~8 % fewer instructions
 * (bench/README.md, change 6). Only possible before SQLite initialises; a process that used
 * SQLite before (none does) keeps its settings. */
static void sqlite_configure(void) {
        static bool done;

        if (done)
                return;
        done = true;
        (void) sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
        (void) sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        /* Statement journals (the savepoint of every request, store_savepoint()) stay in memory
         * up to 4 MiB, in one allocation: with temp_store=MEMORY SQLite keeps them in chunks of
         * 1 KiB, five malloc()s and free()s for every page a request changes that an earlier
         * request of the pass had changed (bench/README.md, change 11). Larger ones spill to a
         * temporary file; a pass rarely journals more than a few dozen pages. */
        (void) sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 4 * 1024 * 1024);
}

/* DESIGN.md §10: the database is the daemon's alone. SQLite would create it 0644 less the umask
 * (and gives its -wal and -shm files the mode of the database); made here first, it is 0600. Best
 * effort: where this fails, sqlite3_open_v2() reports the problem in its own words. */
static void create_private(const char *path) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0)
                return;
        (void) fchmod(fd, 0600); /* a database of an older durabled may be 0644 */
        (void) close(fd);
}

static int run_copy(const void *src, void *ret) {
        return run_row_copy(src, ret);
}

static void run_done(void *row) {
        run_row_done(row);
}

static int activity_copy(const void *src, void *ret) {
        return activity_row_copy(src, ret);
}

static void activity_done(void *row) {
        activity_row_done(row);
}

static size_t run_bytes(const void *row) {
        return run_row_bytes(row);
}

static size_t activity_bytes(const void *row) {
        return activity_row_bytes(row);
}

static const RowCacheOps run_rows = { sizeof(RunRow), run_copy, run_done, run_bytes };
static const RowCacheOps activity_rows = { sizeof(ActivityRow), activity_copy, activity_done,
                                           activity_bytes };

int store_open(Store **ret, const char *path, StoreDurability durability) {
        _cleanup_(store_freep) Store *s = NULL;
        const char *vfs;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->wake_schedules = -1;
        s->runs = rowcache_new(&run_rows, ROWCACHE_CAPACITY, ROWCACHE_BYTES);
        s->activities = rowcache_new(&activity_rows, ROWCACHE_CAPACITY, ROWCACHE_BYTES);
        if (!s->runs || !s->activities)
                return -ENOMEM;
        sqlite_configure();
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        vfs = store_fault_vfs(&r);
        if (r >= 0 && durability == STORE_DURABILITY_FULL)
                vfs = store_walbuf_vfs(vfs, &r);
        if (r < 0)
                return r;
        create_private(path);
        r = sqlite3_open_v2(path, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                    SQLITE_OPEN_EXRESCODE,
                            vfs);
        if (r != SQLITE_OK)
                return sql_error(s, r);
        r = exec(s, "PRAGMA journal_mode = WAL");
        if (r < 0)
                return r;
        r = exec(s, durability == STORE_DURABILITY_FULL ? "PRAGMA synchronous = FULL"
                                                        : "PRAGMA synchronous = NORMAL");
        if (r < 0)
                return r;
        /* Checkpoints are the daemon's (manager.c: at quiet moments, and after the answers of the
         * pass past a bound), not SQLite's automatic ones inside a commit a client waits for.
         * (locking_mode=EXCLUSIVE was measured and cost 20-40% more daemon CPU; bench/README.md.) */
        r = exec(s, "PRAGMA wal_autocheckpoint = 0");
        if (r < 0)
                return r;
        r = exec(s, "PRAGMA journal_size_limit = 67108864");
        if (r < 0)
                return r;
        /* Up to 64 MiB of pages in the process instead of SQLite's 2 MiB: every B-tree's inner
         * pages of a store of a million runs stay here, so a lookup reads at most its leaf from
         * the kernel (or from the disk, where the page cache is reclaimed early, as on the
         * benchmark's VM; bench/README.md W6). Pages are allocated as they are used. */
        r = exec(s, "PRAGMA cache_size = -65536");
        if (r < 0)
                return r;
        sqlite3_wal_hook(s->db, on_wal_commit, s);
        r = quick_check(s);
        if (r < 0)
                return r;
        r = migrate(s);
        if (r < 0)
                return r;
        r = load_seqs(s);
        if (r < 0)
                return r;
        r = load_tasks(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        for (int i = 0; i < _Q_MAX; i++)
                sqlite3_finalize(s->stmt[i]);
        for (size_t i = 0; i < s->n_cached; i++)
                sqlite3_finalize(s->cached[i].st);
        free(s->cached);
        if (s->in_txn)
                (void) exec(s, "ROLLBACK");
        sqlite3_close(s->db);
        taskset_free(s->tasks);
        rowcache_free(s->runs);
        rowcache_free(s->activities);
        free(s->path);
        free(s);
        return NULL;
}

int store_begin(Store *s) {
        int r;

        if (s->in_txn)
                return 0;
        r = step_done(s, stmt(s, Q_BEGIN));
        if (r < 0)
                return r;
        s->in_txn = true;
        return 0;
}

/* A rollback takes back rows that what the store keeps in memory may have copied: forget it all
 * (rollbacks are rare: a failed request, a failed commit). */
static void store_forget(Store *s) {
        s->wake_schedules = -1;
        rowcache_clear(s->runs);
        rowcache_clear(s->activities);
}

int store_commit(Store *s) {
        int r;

        if (!s->in_txn)
                return 0;
        if (s->txn_lost) {
                store_rollback(s);
                return -EIO;
        }
        r = step_done(s, stmt(s, Q_COMMIT));
        if (r < 0)
                return r; /* the caller rolls back */
        s->in_txn = false;
        taskset_commit(s->tasks);
        return 0;
}

void store_rollback(Store *s) {
        if (!s->in_txn)
                return;
        if (!sqlite3_get_autocommit(s->db))
                (void) step_done(s, stmt(s, Q_ROLLBACK));
        s->in_txn = false;
        s->txn_lost = false;
        store_forget(s);
        taskset_rollback(s->tasks);
}

/* Some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, ...) make SQLite roll the whole
 * transaction back on its own. What the pass did before is gone with it, so nothing more may be
 * written in this pass (it would be committed statement by statement) and its commit must fail,
 * failing every held answer. */
static bool txn_check_lost(Store *s) {
        if (s->in_txn && !s->txn_lost && sqlite3_get_autocommit(s->db)) {
                log_error("SQLite rolled back the pass's transaction; its requests fail");
                s->txn_lost = true;
                store_forget(s);
                taskset_rollback(s->tasks);
        }
        return s->txn_lost;
}

int store_savepoint(Store *s) {
        int r = store_begin(s);

        if (r < 0)
                return r;
        if (txn_check_lost(s))
                return -EIO;
        r = taskset_mark(s->tasks);
        if (r < 0)
                return r;
        r = step_done(s, stmt(s, Q_SAVEPOINT));
        if (r < 0)
                taskset_release(s->tasks);
        return r;
}

int store_release(Store *s) {
        if (txn_check_lost(s))
                return -EIO;
        taskset_release(s->tasks);
        return step_done(s, stmt(s, Q_RELEASE));
}

void store_rollback_to(Store *s) {
        if (txn_check_lost(s))
                return;
        taskset_rollback_to_mark(s->tasks);
        store_forget(s);
        (void) step_done(s, stmt(s, Q_ROLLBACK_TO));
        (void) step_done(s, stmt(s, Q_RELEASE));
}

int *store_wake_schedules(Store *s) {
        return &s->wake_schedules;
}

bool store_in_transaction(Store *s) {
        return s->in_txn;
}

bool store_fsync_failed(Store *s) {
        return s->fsync_failed;
}

int store_checkpoint(Store *s) {
        int r;

        if (s->in_txn)
                return -EBUSY;
        /* PASSIVE suffices: nobody else reads the database, so every frame is copied and the
         * next commit starts the WAL over from its beginning (the file is reused, not regrown). */
        r = sql_error(
                s, sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL));
        if (r >= 0) {
                s->wal_pages = 0;
                s->stats.checkpoints++;
        }
        return r;
}

void store_get_stats(Store *s, StoreStats *ret) {
        *ret = s->stats;
}

unsigned store_wal_pages(Store *s) {
        return s->wal_pages;
}

/* A second connection, read-only, is the backup's source: in WAL mode it reads the last
 * committed state as one snapshot while the daemon's connection goes on writing, never what the
 * loop pass wrote and has not committed. It neither writes nor checkpoints (DESIGN.md §3: one
 * writer). */
int store_backup(Store *s, const char *dest_path, uint64_t *ret_pages) {
        sqlite3 *src = NULL, *dst = NULL;
        sqlite3_backup *b;
        int rc, pages = 0;

        rc = sqlite3_open_v2(s->path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_open_v2(dest_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                     NULL);
        if (rc == SQLITE_OK) {
                b = sqlite3_backup_init(dst, "main", src, "main");
                if (!b)
                        rc = sqlite3_errcode(dst);
                else {
                        rc = sqlite3_backup_step(b, -1);
                        pages = sqlite3_backup_pagecount(b);
                        rc = rc == SQLITE_DONE ? sqlite3_backup_finish(b)
                                               : (sqlite3_backup_finish(b), rc);
                }
        }
        /* A copy in rollback-journal mode: one file, readable by any sqlite3 without its -wal. */
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
        sqlite3_close(dst);
        sqlite3_close(src);
        if (rc != SQLITE_OK) {
                /* A failed fsync of the copy says nothing about the database's own pages. */
                bool fsync_failed = s->fsync_failed;
                int r = sql_error(s, rc);

                s->fsync_failed = fsync_failed;
                return r < 0 ? r : -EIO;
        }
        *ret_pages = (uint64_t) pages;
        return 0;
}

/* ---- runs ---- */

void run_row_done(RunRow *r) {
        free(r->fairness_key);
        free(r->workflow_id);
        free(r->workflow_type);
        free(r->task_queue);
        free(r->request_id);
        free(r->result.ptr);
        free(r->failure.ptr);
        *r = (RunRow){};
}

static int read_run(sqlite3_stmt *st, RunRow *ret) {
        RunRow r = {};
        int k;

        col_fixed(st, 0, r.run_id, sizeof(r.run_id));
        k = store_col_strdup(st, 1, &r.workflow_id);
        if (k >= 0)
                k = store_col_strdup(st, 2, &r.workflow_type);
        if (k >= 0)
                k = store_col_strdup(st, 3, &r.task_queue);
        if (k >= 0)
                k = store_col_strdup(st, 4, &r.request_id);
        r.status = (WorkflowStatus) sqlite3_column_int(st, 5);
        r.start_time = store_col_u64(st, 6);
        r.close_time = store_col_u64(st, 7);
        r.uid = (uint32_t) sqlite3_column_int64(st, 8);
        r.next_event_id = store_col_u64(st, 9);
        r.task_timeout_usec = store_col_u64(st, 10);
        r.wft_state = (WftState) sqlite3_column_int(st, 11);
        r.wft_scheduled_id = store_col_u64(st, 12);
        r.wft_started_id = store_col_u64(st, 13);
        r.wft_attempt = (uint32_t) sqlite3_column_int64(st, 14);
        r.cancel_requested = sqlite3_column_int(st, 15);
        r.sticky_conn = store_col_u64(st, 16);
        r.sticky_next_id = store_col_u64(st, 17);
        if (k >= 0)
                k = col_blob(st, 18, &r.result);
        if (k >= 0)
                k = col_blob(st, 19, &r.failure);
        r.priority = (unsigned) sqlite3_column_int(st, 20);
        if (k >= 0)
                k = store_col_strdup(st, 21, &r.fairness_key);
        r.fairness_weight = sqlite3_column_double(st, 22);
        r.paused = sqlite3_column_int(st, 23);
        if (k < 0) {
                run_row_done(&r);
                return k;
        }
        *ret = r;
        return 0;
}

static int run_query_one(Store *s, int q, const char *key, RunRow *ret) {
        sqlite3_stmt *st = stmt(s, q);
        int rc, r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, key);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = read_run(st, ret);
        else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
        finish(st);
        return r;
}

/* Test builds compare every row the cache answers with the table's: a write that bypassed it
 * would show as a daemon that stops at once, in whichever test made it. */
static void check_cached_run(Store *s, const RunRow *cached) {
#if DURABLED_EXPENSIVE_CHECKS
        _cleanup_(run_row_done) RunRow row = {};

        if (run_query_one(s, Q_RUN_GET, cached->run_id, &row) >= 0 && run_row_equal(cached, &row))
                return;
        log_error("The cached row of run %s differs from the table's", cached->run_id);
        abort();
#endif
}

/* Keeps a copy of @r if it is open; a failure to copy only costs the next read its query. */
static void cache_run(Store *s, const RunRow *r) {
        if (r->status == WORKFLOW_STATUS_RUNNING)
                (void) rowcache_put(s->runs, r->run_id, 0, r);
}

static RunRow *cached_run(Store *s, const char *run_id) {
        return rowcache_get(s->runs, run_id, 0);
}

/* A blob as the table gives it back: SQLite reads an empty one as NULL. */
static Blob blob_as_stored(const Blob *b) {
        return b->size ? *b : (Blob){ NULL, 0 };
}

/* The row of a new run as store_run_get() would read it back (store_run_insert()'s defaults). */
static void cache_new_run(Store *s, const RunRow *r) {
        RunRow row = *r;

        row.priority = r->priority ?: TASK_PRIORITY_DEFAULT;
        row.fairness_key = r->fairness_key && *r->fairness_key ? r->fairness_key : NULL;
        row.fairness_weight = task_fairness_weight(r->fairness_weight);
        row.result = blob_as_stored(&r->result);
        row.failure = blob_as_stored(&r->failure);
        cache_run(s, &row);
}

int store_run_get(Store *s, const char *run_id, RunRow *ret) {
        const RunRow *cached = cached_run(s, run_id);
        int r;

        if (cached) {
                check_cached_run(s, cached);
                return run_row_copy(cached, ret);
        }
        r = run_query_one(s, Q_RUN_GET, run_id, ret);
        if (r >= 0)
                cache_run(s, ret);
        return r;
}

int store_run_find_latest(Store *s, const char *workflow_id, RunRow *ret) {
        int r = run_query_one(s, Q_RUN_RUNNING, workflow_id, ret);

        if (r >= 0)
                cache_run(s, ret);
        /* Two index probes cost less than one query that sorts the id's runs by "running
         * first" in a temporary B-tree (bench/README.md, change 8). */
        return r == -ENOENT ? run_query_one(s, Q_RUN_LATEST, workflow_id, ret) : r;
}

int store_run_find_running(Store *s, const char *workflow_id, RunRow *ret) {
        int r = run_query_one(s, Q_RUN_RUNNING, workflow_id, ret);

        if (r >= 0)
                cache_run(s, ret);
        return r;
}

int store_run_insert(Store *s, const RunRow *r) {
        sqlite3_stmt *st = stmt(s, Q_RUN_INSERT);
        int k;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, r->run_id);
        store_bind_text(st, 2, r->workflow_id);
        store_bind_text(st, 3, r->workflow_type);
        store_bind_text(st, 4, r->task_queue);
        store_bind_text(st, 5, r->request_id);
        store_bind_u64(st, 6, r->status);
        store_bind_u64(st, 7, r->start_time);
        store_bind_u64(st, 8, r->close_time);
        store_bind_u64(st, 9, r->uid);
        store_bind_u64(st, 10, r->next_event_id);
        store_bind_u64(st, 11, r->task_timeout_usec);
        store_bind_u64(st, 12, r->wft_state);
        store_bind_u64(st, 13, r->wft_scheduled_id);
        store_bind_u64(st, 14, r->wft_started_id);
        store_bind_u64(st, 15, r->wft_attempt);
        store_bind_u64(st, 16, r->cancel_requested);
        store_bind_u64(st, 17, r->sticky_conn);
        store_bind_u64(st, 18, r->sticky_next_id);
        bind_blob(st, 19, &r->result);
        bind_blob(st, 20, &r->failure);
        store_bind_u64(st, 21, r->priority ?: TASK_PRIORITY_DEFAULT);
        store_bind_text(st, 22, r->fairness_key && *r->fairness_key ? r->fairness_key : NULL);
        (void) sqlite3_bind_double(st, 23, task_fairness_weight(r->fairness_weight));
        store_bind_u64(st, 24, r->paused);
        k = step_done(s, st);
        if (k >= 0)
                cache_new_run(s, r);
        return k;
}

int store_run_update(Store *s, const RunRow *r) {
        bool open = r->status == WORKFLOW_STATUS_RUNNING; /* a run never reopens */
        sqlite3_stmt *st = stmt(s, open ? Q_RUN_UPDATE_OPEN : Q_RUN_UPDATE);
        RunRow *cached;
        int k;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, r->run_id);
        if (!open) {
                store_bind_u64(st, 2, r->status);
                store_bind_u64(st, 3, r->close_time);
                bind_blob(st, 12, &r->result);
                bind_blob(st, 13, &r->failure);
        }
        store_bind_u64(st, 4, r->next_event_id);
        store_bind_u64(st, 5, r->wft_state);
        store_bind_u64(st, 6, r->wft_scheduled_id);
        store_bind_u64(st, 7, r->wft_started_id);
        store_bind_u64(st, 8, r->wft_attempt);
        store_bind_u64(st, 9, r->cancel_requested);
        store_bind_u64(st, 10, r->sticky_conn);
        store_bind_u64(st, 11, r->sticky_next_id);
        k = step_killpoint(s, st, "run-update");
        cached = cached_run(s, r->run_id);
        if (!cached)
                return k;
        if (k < 0 || !open) {
                rowcache_forget(s->runs, r->run_id, 0);
                return k;
        }
        /* What Q_RUN_UPDATE_OPEN wrote. */
        cached->next_event_id = r->next_event_id;
        cached->wft_state = r->wft_state;
        cached->wft_scheduled_id = r->wft_scheduled_id;
        cached->wft_started_id = r->wft_started_id;
        cached->wft_attempt = r->wft_attempt;
        cached->cancel_requested = r->cancel_requested;
        cached->sticky_conn = r->sticky_conn;
        cached->sticky_next_id = r->sticky_next_id;
        return 0;
}

WorkflowStatus run_row_status(const RunRow *r) {
        if (r->paused && r->status == WORKFLOW_STATUS_RUNNING)
                return WORKFLOW_STATUS_PAUSED;
        return r->status;
}

int store_run_set_paused(Store *s, const char *run_id, bool paused) {
        sqlite3_stmt *st = stmt(s, Q_RUN_SET_PAUSED);
        RunRow *cached;
        int r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_u64(st, 2, paused);
        r = step_done(s, st);
        cached = cached_run(s, run_id);
        if (cached && r >= 0)
                cached->paused = paused;
        else if (cached)
                rowcache_forget(s->runs, run_id, 0);
        return r;
}

int store_run_paused(Store *s, const char *run_id) {
        const RunRow *cached = cached_run(s, run_id);
        sqlite3_stmt *st;
        int rc, r;

        if (cached) {
                check_cached_run(s, cached);
                return cached->paused;
        }
        st = stmt(s, Q_RUN_PAUSED);
        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = sqlite3_column_int(st, 0) != 0;
        else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
        finish(st);
        return r;
}

int store_run_dispatch_info(Store *s, const char *run_id, uint64_t *ret_sticky, uint32_t *ret_uid) {
        const RunRow *cached = cached_run(s, run_id);
        sqlite3_stmt *st;
        int rc;

        if (cached) {
                check_cached_run(s, cached);
                *ret_sticky = cached->sticky_conn;
                *ret_uid = cached->uid;
                return 0;
        }
        st = stmt(s, Q_RUN_STICKY);
        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret_sticky = store_col_u64(st, 0);
                *ret_uid = (uint32_t) sqlite3_column_int64(st, 1);
        }
        finish(st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
}

typedef struct RunVisit {
        run_cb cb;
        void *userdata;
} RunVisit;

static int visit_run(sqlite3_stmt *st, void *userdata) {
        RunVisit *v = userdata;
        RunRow row;
        int r;

        r = read_run(st, &row);
        if (r < 0)
                return r;
        r = v->cb(&row, v->userdata);
        run_row_done(&row);
        return r;
}

/* The filter whose index drives a list (ListWorkflows answers newest first; see the schema). SQLite
 * has no statistics here and would pick among equally good-looking indexes blindly (it chose
 * the status index over runs_wid for a workflow id), so the choice is ours, by how few rows a
 * filter usually selects in a store that keeps its closed runs: a workflow id names a handful of
 * runs; Running and the failure statuses are a minority, Completed most of the store; a queue or a type
 * splits the store by code; a caller's own runs may be all of them. The other filters are written
 * as +column, which SQLite does not use an index for. */
typedef enum RunListBy {
        BY_NONE,
        BY_UID,
        BY_STATUS,
        BY_TYPE,
        BY_QUEUE,
        BY_WID,
} RunListBy;

static RunListBy run_list_by(const RunFilter *f) {
        if (f->workflow_id)
                return BY_WID;
        if (f->open || (f->status && f->status != WORKFLOW_STATUS_COMPLETED))
                return BY_STATUS;
        if (f->task_queue)
                return BY_QUEUE;
        if (f->workflow_type)
                return BY_TYPE;
        if (f->status)
                return BY_STATUS;
        return f->only_uid ? BY_UID : BY_NONE;
}

int store_runs_list(Store *s, const RunFilter *f, run_cb cb, void *userdata) {
        RunListBy by = run_list_by(f);
        char q[1024];
        sqlite3_stmt *st;
        int r, i = 1;

#define TERM(set, key, col) (!(set) ? "" : by == (key) ? " AND " col " = ?" : " AND +" col " = ?")
        /* Built from fixed fragments only; values are bound. */
        snprintf(q, sizeof(q),
                 "SELECT " RUN_COLUMNS " FROM runs WHERE 1%s%s%s%s%s%s "
                 "ORDER BY start_time DESC, rowid DESC LIMIT ?",
                 TERM(f->status && !f->open, BY_STATUS, FILTER_STATUS_SQL),
                 /* Running or Paused: two ranges of runs_xstatus, only the open runs. */
                 f->open ? " AND " FILTER_STATUS_SQL " IN (1, 8)" : "",
                 TERM(f->workflow_type, BY_TYPE, "workflow_type"),
                 TERM(f->task_queue, BY_QUEUE, "task_queue"),
                 TERM(f->workflow_id, BY_WID, "workflow_id"), TERM(f->only_uid, BY_UID, "uid"));
#undef TERM
        if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        if (f->status && !f->open)
                store_bind_u64(st, i++, (uint64_t) f->status);
        if (f->workflow_type)
                store_bind_text(st, i++, f->workflow_type);
        if (f->task_queue)
                store_bind_text(st, i++, f->task_queue);
        if (f->workflow_id)
                store_bind_text(st, i++, f->workflow_id);
        if (f->only_uid)
                store_bind_u64(st, i++, f->uid);
        store_bind_u64(st, i, f->limit ? f->limit : 1000);
        r = each_row(s, st, visit_run, &(RunVisit){ cb, userdata });
        sqlite3_finalize(st);
        return r;
}

/* ---- visibility ---- */

int store_visibility_get(Store *s, const char *run_id, Blob *ret_memo, Blob *ret_sa) {
        sqlite3_stmt *st;
        Blob memo = {}, sa = {};
        int rc, r = 0;

        if (sqlite3_prepare_v2(s->db, "SELECT memo, search_attrs FROM visibility WHERE run_id = ?",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        store_bind_text(st, 1, run_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                r = col_blob(st, 0, &memo);
                if (r >= 0)
                        r = col_blob(st, 1, &sa);
        } else if (rc != SQLITE_DONE)
                r = sql_error(s, rc);
        sqlite3_finalize(st);
        if (r < 0) {
                free(memo.ptr);
                free(sa.ptr);
                return r;
        }
        *ret_memo = memo;
        *ret_sa = sa;
        return 0;
}

static int
exec_bound(Store *s, const char *text, const char *a, const char *b, const Blob *x, const Blob *y) {
        sqlite3_stmt *st;
        int r;

        if (sqlite3_prepare_v2(s->db, text, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        store_bind_text(st, 1, a);
        if (b)
                store_bind_text(st, 2, b);
        if (x)
                bind_blob(st, 2, x);
        if (y)
                bind_blob(st, 3, y);
        r = step_done(s, st);
        sqlite3_finalize(st);
        return r;
}

int store_visibility_put(Store *s, const char *run_id, const Blob *memo, const Blob *sa) {
        return exec_bound(s,
                          "INSERT OR REPLACE INTO visibility (run_id, memo, search_attrs) "
                          "VALUES (?, ?, ?)",
                          run_id, NULL, memo, sa);
}

int store_sattr_type(Store *s, const char *name, SaType *ret) {
        sqlite3_stmt *st;
        int rc;

        if (sqlite3_prepare_v2(s->db, "SELECT type FROM sattr_types WHERE name = ?", -1, &st,
                               NULL) != SQLITE_OK)
                return -EIO;
        store_bind_text(st, 1, name);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (SaType) sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
}

int store_sattr_register(Store *s, const char *name, SaType type) {
        sqlite3_stmt *st;
        int r;

        if (sqlite3_prepare_v2(s->db,
                               "INSERT OR IGNORE INTO sattr_types (name, type) VALUES (?, ?)", -1,
                               &st, NULL) != SQLITE_OK)
                return -EIO;
        store_bind_text(st, 1, name);
        store_bind_u64(st, 2, (uint64_t) type);
        r = step_done(s, st);
        sqlite3_finalize(st);
        return r;
}

int store_sattrs_delete(Store *s, const char *run_id, const char *name) {
        if (!name)
                return exec_bound(s, "DELETE FROM sattrs WHERE run_id = ?", run_id, NULL, NULL,
                                  NULL);
        return exec_bound(s, "DELETE FROM sattrs WHERE run_id = ? AND name = ?", run_id, name, NULL,
                          NULL);
}

int store_sattr_insert(Store *s, const char *run_id, const char *name, const FilterParam *v) {
        sqlite3_stmt *st;
        int r;

        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO sattrs (run_id, name, ival, dval, sval) "
                               "VALUES (?, ?, ?, ?, ?)",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_text(st, 2, name);
        if (v->kind == FILTER_PARAM_INT)
                (void) sqlite3_bind_int64(st, 3, v->i);
        else if (v->kind == FILTER_PARAM_DOUBLE)
                (void) sqlite3_bind_double(st, 4, v->d);
        else
                store_bind_text(st, 5, v->s);
        r = step_done(s, st);
        sqlite3_finalize(st);
        return r;
}

static void bind_params(sqlite3_stmt *st, const FilterSql *f, int *i) {
        for (size_t k = 0; k < f->n_params; k++, (*i)++) {
                const FilterParam *p = &f->params[k];
                if (p->kind == FILTER_PARAM_INT)
                        (void) sqlite3_bind_int64(st, *i, p->i);
                else if (p->kind == FILTER_PARAM_DOUBLE)
                        (void) sqlite3_bind_double(st, *i, p->d);
                else
                        store_bind_text(st, *i, p->s);
        }
}

void run_cursor_done(RunCursor *c) {
        free(c->s);
        *c = (RunCursor){};
}

typedef struct QueryVisit {
        run_cb cb;
        void *userdata;
        RunCursor last;
} QueryVisit;

/* Rows are RUN_COLUMNS, then the order key, then rowid. */
static int visit_query_row(sqlite3_stmt *st, void *userdata) {
        QueryVisit *v = userdata;
        int ncol = sqlite3_column_count(st);
        int r;

        run_cursor_done(&v->last);
        v->last.set = true;
        v->last.rowid = sqlite3_column_int64(st, ncol - 1);
        if (sqlite3_column_type(st, ncol - 2) == SQLITE_TEXT) {
                v->last.text = true;
                r = store_col_strdup(st, ncol - 2, &v->last.s);
                if (r < 0)
                        return r;
        } else
                v->last.i = sqlite3_column_int64(st, ncol - 2);
        return visit_run(st, &(RunVisit){ v->cb, v->userdata });
}

int store_runs_query(Store *s, const RunQuery *q, run_cb cb, void *userdata, RunCursor *ret_last) {
        const FilterSql *f = q->filter;
        QueryVisit v = { cb, userdata, {} };
        _cleanup_free_ char *text = NULL;
        const char *cmp = f->order_desc ? "<" : ">", *dir = f->order_desc ? "DESC" : "ASC";
        sqlite3_stmt *st;
        int r, i = 1;

        /* The filter's text is built by filter.c from fixed fragments; values are bound. The
         * cursor condition (key, rowid) < (?, ?) is a range of the order column's index, whose
         * entries end in rowid: a page starts where the last one ended, whatever was inserted
         * since. */
        if (asprintf(&text,
                     "SELECT " RUN_COLUMNS ", %s, rowid FROM runs WHERE (%s)%s%s%s%s%s%s "
                     "ORDER BY %s %s, rowid %s LIMIT ?",
                     f->order_column, f->where, q->only_uid ? " AND uid = ?" : "",
                     q->after ? " AND (" : "", q->after ? f->order_column : "",
                     q->after ? ", rowid) " : "", q->after ? cmp : "", q->after ? " (?, ?)" : "",
                     f->order_column, dir, dir) < 0)
                return -ENOMEM;
        if (sqlite3_prepare_v2(s->db, text, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        bind_params(st, f, &i);
        if (q->only_uid)
                store_bind_u64(st, i++, q->uid);
        if (q->after) {
                if (q->after->text)
                        store_bind_text(st, i++, q->after->s);
                else
                        (void) sqlite3_bind_int64(st, i++, q->after->i);
                (void) sqlite3_bind_int64(st, i++, q->after->rowid);
        }
        store_bind_u64(st, i, q->limit ? q->limit : 1000);
        r = each_row(s, st, visit_query_row, &v);
        sqlite3_finalize(st);
        if (r < 0 || !ret_last) {
                run_cursor_done(&v.last);
                return r;
        }
        *ret_last = v.last;
        return 0;
}

int store_runs_query_plan(Store *s, const RunQuery *q, char **ret) {
        const FilterSql *f = q->filter;
        _cleanup_free_ char *text = NULL, *out = NULL;
        size_t len = 0;
        sqlite3_stmt *st;
        int rc, i = 1;

        /* The same statement as store_runs_query() (without a cursor), explained. */
        if (asprintf(&text,
                     "EXPLAIN QUERY PLAN SELECT " RUN_COLUMNS ", %s, rowid FROM runs WHERE (%s)%s "
                     "ORDER BY %s %s, rowid %s LIMIT ?",
                     f->order_column, f->where, q->only_uid ? " AND uid = ?" : "", f->order_column,
                     f->order_desc ? "DESC" : "ASC", f->order_desc ? "DESC" : "ASC") < 0)
                return -ENOMEM;
        if (sqlite3_prepare_v2(s->db, text, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        bind_params(st, f, &i);
        if (q->only_uid)
                store_bind_u64(st, i++, q->uid);
        store_bind_u64(st, i, 1000);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *d = (const char *) sqlite3_column_text(st, 3);
                size_t n = d ? strlen(d) : 0;
                char *b = realloc(out, len + n + 2);

                if (!b) {
                        sqlite3_finalize(st);
                        return -ENOMEM;
                }
                out = b;
                memcpy(out + len, d ? d : "", n);
                len += n;
                out[len++] = '\n';
                out[len] = 0;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sql_error(s, rc);
        *ret = out ? TAKE_PTR(out) : strdup("");
        return *ret ? 0 : -ENOMEM;
}

int store_runs_count_by_status(Store *s,
                               const FilterSql *f,
                               bool only_uid,
                               uint32_t uid,
                               uint64_t ret[static _WORKFLOW_STATUS_MAX]) {
        _cleanup_free_ char *text = NULL;
        sqlite3_stmt *st;
        int rc, i = 1;

        if (asprintf(&text,
                     "SELECT " FILTER_STATUS_SQL ", count(*) FROM runs WHERE (%s)%s GROUP BY 1",
                     f->where, only_uid ? " AND uid = ?" : "") < 0)
                return -ENOMEM;
        if (sqlite3_prepare_v2(s->db, text, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        bind_params(st, f, &i);
        if (only_uid)
                store_bind_u64(st, i, uid);
        memset(ret, 0, sizeof(uint64_t) * _WORKFLOW_STATUS_MAX);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int status = sqlite3_column_int(st, 0);
                if (status > 0 && status < _WORKFLOW_STATUS_MAX)
                        ret[status] = store_col_u64(st, 1);
        }
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : sql_error(s, rc);
}

int store_runs_count(Store *s, const FilterSql *f, bool only_uid, uint32_t uid, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        sqlite3_stmt *st;
        int rc, i = 1;

        if (asprintf(&text, "SELECT count(*) FROM runs WHERE (%s)%s", f->where,
                     only_uid ? " AND uid = ?" : "") < 0)
                return -ENOMEM;
        if (sqlite3_prepare_v2(s->db, text, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        bind_params(st, f, &i);
        if (only_uid)
                store_bind_u64(st, i, uid);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = store_col_u64(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : sql_error(s, rc);
}

int store_batch_snapshot(Store *s,
                         const char *batch_id,
                         const FilterSql *f,
                         bool only_uid,
                         uint32_t uid,
                         uint64_t max,
                         uint64_t *ret_total) {
        _cleanup_free_ char *text = NULL;
        sqlite3_stmt *st;
        int rc, i = 2;

        /* Oldest first, so that the order is the runs' and stays so across restarts. */
        if (asprintf(&text,
                     "INSERT INTO batch_items (batch_id, seq, workflow_id, run_id) "
                     "SELECT ?1, row_number() OVER (ORDER BY start_time, rowid), workflow_id, "
                     "run_id FROM runs WHERE (%s)%s ORDER BY start_time, rowid LIMIT ?",
                     f->where, only_uid ? " AND uid = ?" : "") < 0)
                return -ENOMEM;
        if (sqlite3_prepare_v2(s->db, text, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        store_bind_text(st, 1, batch_id);
        bind_params(st, f, &i);
        if (only_uid)
                store_bind_u64(st, i++, uid);
        store_bind_u64(st, i, max);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                *ret_total = (uint64_t) sqlite3_changes(s->db);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : sql_error(s, rc);
}

/* ---- retention ---- */

int store_runs_expired(
        Store *s, uint64_t closed_before, size_t max, char (*ret)[37], size_t *ret_n) {
        sqlite3_stmt *st;
        size_t n = 0;
        int rc;

        if (sqlite3_prepare_v2(s->db,
                               "SELECT run_id FROM runs INDEXED BY runs_closed WHERE status != 1 "
                               "AND close_time < ? ORDER BY close_time LIMIT ?",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        store_bind_u64(st, 1, closed_before);
        store_bind_u64(st, 2, max);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max)
                col_fixed(st, 0, ret[n++], 37);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                return sql_error(s, rc);
        *ret_n = n;
        return 0;
}

int store_run_oldest_close(Store *s, uint64_t *ret) {
        sqlite3_stmt *st;
        int rc;

        if (sqlite3_prepare_v2(s->db,
                               "SELECT min(close_time) FROM runs INDEXED BY runs_closed "
                               "WHERE status != 1",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                *ret = store_col_u64(st, 0);
        else if (rc == SQLITE_ROW)
                rc = SQLITE_DONE;
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
}

int store_run_delete(Store *s, const char *run_id) {
        static const char *const q[] = {
                "DELETE FROM events WHERE run_id = ?",     "DELETE FROM buffered WHERE run_id = ?",
                "DELETE FROM activities WHERE run_id = ?", "DELETE FROM timers WHERE run_id = ?",
                "DELETE FROM deadlines WHERE run_id = ?",  "DELETE FROM sattrs WHERE run_id = ?",
                "DELETE FROM visibility WHERE run_id = ?", "DELETE FROM runs WHERE run_id = ?",
        };
        int r = 0;

        rowcache_forget(s->runs, run_id, 0);
        rowcache_forget_run(s->activities, run_id);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(q); i++)
                r = exec_bound(s, q[i], run_id, NULL, NULL, NULL);
        return r;
}

/* ---- events ---- */

int store_event_insert(Store *s,
                       const char *run_id,
                       uint64_t event_id,
                       EventType type,
                       uint64_t time,
                       uint32_t uid,
                       const void *attrs,
                       size_t attrs_size) {
        sqlite3_stmt *st = stmt(s, Q_EVENT_INSERT);

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_u64(st, 2, event_id);
        store_bind_u64(st, 3, (uint64_t) type);
        store_bind_u64(st, 4, time);
        store_bind_u64(st, 5, uid);
        (void) sqlite3_bind_blob64(st, 6, attrs, attrs_size, SQLITE_STATIC);
        return step_killpoint(s, st, "event-insert");
}

int store_events_copy(Store *s, const char *from_run_id, const char *to_run_id, uint64_t first,
                      uint64_t last) {
        sqlite3_stmt *st;
        int rc;

        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO events (run_id, event_id, type, time, uid, attrs) "
                               "SELECT ?2, event_id, type, time, uid, attrs FROM events "
                               "WHERE run_id = ?1 AND event_id BETWEEN ?3 AND ?4",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        store_bind_text(st, 1, from_run_id);
        store_bind_text(st, 2, to_run_id);
        store_bind_u64(st, 3, first);
        store_bind_u64(st, 4, last);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : sql_error(s, rc);
}

typedef struct EventVisit {
        event_cb cb;
        void *userdata;
} EventVisit;

static int visit_event(sqlite3_stmt *st, void *userdata) {
        EventVisit *v = userdata;

        return v->cb(store_col_u64(st, 0), (EventType) sqlite3_column_int(st, 1), store_col_u64(st, 2),
                     (uint32_t) sqlite3_column_int64(st, 3), sqlite3_column_blob(st, 4),
                     (size_t) sqlite3_column_bytes(st, 4), v->userdata);
}

int store_events_foreach(
        Store *s, const char *run_id, uint64_t from_event_id, event_cb cb, void *userdata) {
        sqlite3_stmt *st = stmt(s, Q_EVENT_FOREACH);
        int r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_u64(st, 2, from_event_id);
        r = each_row(s, st, visit_event, &(EventVisit){ cb, userdata });
        finish(st);
        return r;
}

/* ---- buffered events ---- */

int store_buffered_insert(Store *s,
                          const char *run_id,
                          EventType type,
                          uint64_t time,
                          uint32_t uid,
                          const void *attrs,
                          size_t attrs_size,
                          bool link_started) {
        sqlite3_stmt *st = stmt(s, Q_BUF_INSERT);

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_u64(st, 2, (uint64_t) type);
        store_bind_u64(st, 3, time);
        store_bind_u64(st, 4, uid);
        (void) sqlite3_bind_blob64(st, 5, attrs, attrs_size, SQLITE_STATIC);
        store_bind_u64(st, 6, link_started);
        return step_done(s, st);
}

typedef struct BufferedVisit {
        buffered_cb cb;
        void *userdata;
} BufferedVisit;

static int visit_buffered(sqlite3_stmt *st, void *userdata) {
        BufferedVisit *v = userdata;

        return v->cb((EventType) sqlite3_column_int(st, 0), store_col_u64(st, 1),
                     (uint32_t) sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
                     (size_t) sqlite3_column_bytes(st, 3), sqlite3_column_int(st, 4), v->userdata);
}

int store_buffered_foreach(Store *s, const char *run_id, buffered_cb cb, void *userdata) {
        sqlite3_stmt *st = stmt(s, Q_BUF_LIST);
        int r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        r = each_row(s, st, visit_buffered, &(BufferedVisit){ cb, userdata });
        finish(st);
        return r;
}

int store_buffered_drain(Store *s, const char *run_id, buffered_cb cb, void *userdata) {
        sqlite3_stmt *st;
        int r;

        r = store_buffered_foreach(s, run_id, cb, userdata);
        if (r < 0)
                return r;
        st = stmt(s, Q_BUF_DELETE);
        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        return step_done(s, st);
}

int store_buffered_count(Store *s, const char *run_id) {
        sqlite3_stmt *st = stmt(s, Q_BUF_COUNT);
        int rc, r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : sql_error(s, rc);
        finish(st);
        return r;
}

/* ---- activities ---- */

/* An activity that leaves STARTED frees its place under its queue's concurrency limit
 * (TASKSET_STARTED): the dispatcher looks at the queues it held back (store_task_released()). */
static void started_forget(Store *s, const char *run_id, uint64_t scheduled_id) {
        (void) taskset_delete(s->tasks, TASKSET_STARTED_TYPE, run_id, scheduled_id);
        if (taskset_delete(s->tasks, TASKSET_STARTED, run_id, scheduled_id))
                s->started_released = true;
}

/* The queue under which TASKSET_STARTED_TYPE counts the activities of @type: "queue\x1ftype"
 * (names hold no control characters). NULL on -ENOMEM. */
static char *started_type_queue(const char *queue, const char *type) {
        char *q;

        return asprintf(&q, "%s\x1f%s", queue, type ?: "") < 0 ? NULL : q;
}

/* Every activity that runs (STARTED) has an entry under its task queue, and only those. */
static int started_track(Store *s, const ActivityRow *a) {
        TaskEntry e;

        if (a->state != ACTIVITY_STARTED) {
                started_forget(s, a->run_id, a->scheduled_id);
                return 0;
        }
        _cleanup_free_ char *tq = NULL;
        int r;

        if (taskset_get(s->tasks, TASKSET_STARTED, a->run_id, a->scheduled_id, &e) >= 0)
                return 0;
        /* The fairness key goes with the entry: the running count of a key (flow.h). */
        tq = started_type_queue(a->task_queue, a->activity_type);
        if (!tq)
                return -ENOMEM;
        r = taskset_insert(s->tasks, TASKSET_STARTED_TYPE, tq, a->run_id, a->scheduled_id, NULL);
        if (r < 0)
                return r;
        r = taskset_insert(s->tasks, TASKSET_STARTED, a->task_queue, a->run_id, a->scheduled_id,
                           &(TaskPriority){ .fairness_key = a->fairness_key });
        if (r < 0)
                (void) taskset_delete(s->tasks, TASKSET_STARTED_TYPE, a->run_id, a->scheduled_id);
        return r;
}

const char *activity_state_to_string(ActivityState s) {
        static const char *const names[_ACTIVITY_STATE_MAX] = {
                [ACTIVITY_SCHEDULED] = "Scheduled",
                [ACTIVITY_STARTED] = "Started",
                [ACTIVITY_BACKOFF] = "Backoff",
        };
        return s >= 0 && s < _ACTIVITY_STATE_MAX ? names[s] : NULL;
}

void activity_row_done(ActivityRow *a) {
        free(a->fairness_key);
        free(a->activity_id);
        free(a->activity_type);
        free(a->task_queue);
        free(a->input.ptr);
        free(a->retry_non_retryable.ptr);
        free(a->heartbeat_details.ptr);
        free(a->last_failure.ptr);
        free(a->identity);
        *a = (ActivityRow){};
}

static int read_activity(sqlite3_stmt *st, ActivityRow *ret) {
        ActivityRow a = {};
        int k;

        col_fixed(st, 0, a.run_id, sizeof(a.run_id));
        a.scheduled_id = store_col_u64(st, 1);
        k = store_col_strdup(st, 2, &a.activity_id);
        if (k >= 0)
                k = store_col_strdup(st, 3, &a.activity_type);
        if (k >= 0)
                k = store_col_strdup(st, 4, &a.task_queue);
        if (k >= 0)
                k = col_blob(st, 5, &a.input);
        a.state = (ActivityState) sqlite3_column_int(st, 6);
        a.attempt = (uint32_t) sqlite3_column_int64(st, 7);
        a.scheduled_time = store_col_u64(st, 8);
        a.attempt_time = store_col_u64(st, 9);
        a.started_time = store_col_u64(st, 10);
        a.schedule_to_close_usec = store_col_u64(st, 11);
        a.schedule_to_start_usec = store_col_u64(st, 12);
        a.start_to_close_usec = store_col_u64(st, 13);
        a.heartbeat_usec = store_col_u64(st, 14);
        a.retry_initial_usec = store_col_u64(st, 15);
        a.retry_backoff = sqlite3_column_double(st, 16);
        a.retry_max_interval_usec = store_col_u64(st, 17);
        a.retry_max_attempts = (uint32_t) sqlite3_column_int64(st, 18);
        if (k >= 0)
                k = col_blob(st, 19, &a.retry_non_retryable);
        if (k >= 0)
                k = col_blob(st, 20, &a.heartbeat_details);
        if (k >= 0)
                k = col_blob(st, 21, &a.last_failure);
        a.cancel_requested = sqlite3_column_int(st, 22);
        if (k >= 0)
                k = store_col_strdup(st, 23, &a.identity);
        a.priority = (unsigned) sqlite3_column_int(st, 24);
        if (k >= 0)
                k = store_col_strdup(st, 25, &a.fairness_key);
        a.fairness_weight = sqlite3_column_double(st, 26);
        a.paused = sqlite3_column_int(st, 27);
        if (k < 0) {
                activity_row_done(&a);
                return k;
        }
        *ret = a;
        return 0;
}

static int activity_query(Store *s, const char *run_id, uint64_t scheduled_id, ActivityRow *ret);

/* Test builds compare every activity row the cache answers with the table's (as runs). */
static void check_cached_activity(Store *s, const ActivityRow *cached) {
#if DURABLED_EXPENSIVE_CHECKS
        _cleanup_(activity_row_done) ActivityRow row = {};

        if (activity_query(s, cached->run_id, cached->scheduled_id, &row) >= 0 &&
            activity_row_equal(cached, &row))
                return;
        log_error("The cached row of activity %" PRIu64 " of run %s differs from the table's",
                  cached->scheduled_id, cached->run_id);
        abort();
#endif
}

static ActivityRow *cached_activity(Store *s, const char *run_id, uint64_t scheduled_id) {
        return rowcache_get(s->activities, run_id, scheduled_id);
}

static void cache_activity(Store *s, const ActivityRow *a) {
        (void) rowcache_put(s->activities, a->run_id, a->scheduled_id, a);
}

/* The row of a new activity as store_activity_get() would read it back (the insert's
 * defaults). */
static void cache_new_activity(Store *s, const ActivityRow *a) {
        ActivityRow row = *a;

        row.input = blob_as_stored(&a->input);
        row.retry_non_retryable = blob_as_stored(&a->retry_non_retryable);
        row.heartbeat_details = blob_as_stored(&a->heartbeat_details);
        row.last_failure = blob_as_stored(&a->last_failure);
        row.priority = a->priority ?: TASK_PRIORITY_DEFAULT;
        row.fairness_key = a->fairness_key && *a->fairness_key ? a->fairness_key : NULL;
        row.fairness_weight = task_fairness_weight(a->fairness_weight);
        cache_activity(s, &row);
}

int store_activity_insert(Store *s, const ActivityRow *a) {
        sqlite3_stmt *st = stmt(s, Q_ACT_INSERT);
        int r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, a->run_id);
        store_bind_u64(st, 2, a->scheduled_id);
        store_bind_text(st, 3, a->activity_id);
        store_bind_text(st, 4, a->activity_type);
        store_bind_text(st, 5, a->task_queue);
        bind_blob(st, 6, &a->input);
        store_bind_u64(st, 7, a->state);
        store_bind_u64(st, 8, a->attempt);
        store_bind_u64(st, 9, a->scheduled_time);
        store_bind_u64(st, 10, a->attempt_time);
        store_bind_u64(st, 11, a->started_time);
        store_bind_u64(st, 12, a->schedule_to_close_usec);
        store_bind_u64(st, 13, a->schedule_to_start_usec);
        store_bind_u64(st, 14, a->start_to_close_usec);
        store_bind_u64(st, 15, a->heartbeat_usec);
        store_bind_u64(st, 16, a->retry_initial_usec);
        (void) sqlite3_bind_double(st, 17, a->retry_backoff);
        store_bind_u64(st, 18, a->retry_max_interval_usec);
        store_bind_u64(st, 19, a->retry_max_attempts);
        bind_blob(st, 20, &a->retry_non_retryable);
        bind_blob(st, 21, &a->heartbeat_details);
        bind_blob(st, 22, &a->last_failure);
        store_bind_u64(st, 23, a->cancel_requested);
        store_bind_text(st, 24, a->identity);
        store_bind_u64(st, 25, a->priority ?: TASK_PRIORITY_DEFAULT);
        store_bind_text(st, 26, a->fairness_key && *a->fairness_key ? a->fairness_key : NULL);
        (void) sqlite3_bind_double(st, 27, task_fairness_weight(a->fairness_weight));
        store_bind_u64(st, 28, a->paused);
        r = step_killpoint(s, st, "activity-write");
        if (r >= 0)
                cache_new_activity(s, a);
        return r;
}

static int activity_query(Store *s, const char *run_id, uint64_t scheduled_id, ActivityRow *ret) {
        sqlite3_stmt *st = stmt(s, Q_ACT_GET);
        int rc, r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_u64(st, 2, scheduled_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = read_activity(st, ret);
        else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
        finish(st);
        return r;
}

int store_activity_get(Store *s, const char *run_id, uint64_t scheduled_id, ActivityRow *ret) {
        const ActivityRow *cached = cached_activity(s, run_id, scheduled_id);
        int r;

        if (cached) {
                check_cached_activity(s, cached);
                return activity_row_copy(cached, ret);
        }
        r = activity_query(s, run_id, scheduled_id, ret);
        if (r >= 0)
                cache_activity(s, ret);
        return r;
}

/* After Q_ACT_UPDATE of @a (@result: its step's): the cached row takes what it wrote. */
static void cache_activity_update(Store *s, const ActivityRow *a, int result) {
        const ActivityRow *cached = cached_activity(s, a->run_id, a->scheduled_id);
        ActivityRow row;

        if (!cached)
                return;
        if (result < 0) {
                rowcache_forget(s->activities, a->run_id, a->scheduled_id);
                return;
        }
        row = *cached; /* borrowed: rowcache_put() copies before it lets the old row go */
        row.state = a->state;
        row.attempt = a->attempt;
        row.attempt_time = a->attempt_time;
        row.started_time = a->started_time;
        row.heartbeat_details = blob_as_stored(&a->heartbeat_details);
        row.last_failure = blob_as_stored(&a->last_failure);
        row.cancel_requested = a->cancel_requested;
        row.identity = a->identity;
        row.paused = a->paused;
        cache_activity(s, &row);
}

int store_activity_update(Store *s, const ActivityRow *a) {
        sqlite3_stmt *st = stmt(s, Q_ACT_UPDATE);
        int r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, a->run_id);
        store_bind_u64(st, 2, a->scheduled_id);
        store_bind_u64(st, 3, a->state);
        store_bind_u64(st, 4, a->attempt);
        store_bind_u64(st, 5, a->attempt_time);
        store_bind_u64(st, 6, a->started_time);
        bind_blob(st, 7, &a->heartbeat_details);
        bind_blob(st, 8, &a->last_failure);
        store_bind_u64(st, 9, a->cancel_requested);
        store_bind_text(st, 10, a->identity);
        store_bind_u64(st, 11, a->paused);
        r = started_track(s, a);
        if (r < 0) {
                finish(st);
                return r;
        }
        r = step_killpoint(s, st, "activity-write");
        cache_activity_update(s, a, r);
        return r;
}

int store_activity_delete(Store *s, const char *run_id, uint64_t scheduled_id) {
        sqlite3_stmt *st = stmt(s, Q_ACT_DELETE);

        if (!st)
                return -EIO;
        started_forget(s, run_id, scheduled_id);
        rowcache_forget(s->activities, run_id, scheduled_id);
        store_bind_text(st, 1, run_id);
        store_bind_u64(st, 2, scheduled_id);
        return step_done(s, st);
}

typedef struct ActivityVisit {
        activity_cb cb;
        void *userdata;
} ActivityVisit;

static int visit_activity(sqlite3_stmt *st, void *userdata) {
        ActivityVisit *v = userdata;
        ActivityRow a;
        int r;

        r = read_activity(st, &a);
        if (r < 0)
                return r;
        r = v->cb(&a, v->userdata);
        activity_row_done(&a);
        return r;
}

int store_activities_foreach(Store *s, const char *run_id, activity_cb cb, void *userdata) {
        sqlite3_stmt *st = stmt(s, Q_ACT_FOREACH);
        int r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        r = each_row(s, st, visit_activity, &(ActivityVisit){ cb, userdata });
        finish(st);
        return r;
}

int store_activities_queued(Store *s, activity_cb cb, void *userdata) {
        sqlite3_stmt *st = stmt(s, Q_ACT_QUEUED);
        int r;

        if (!st)
                return -EIO;
        r = each_row(s, st, visit_activity, &(ActivityVisit){ cb, userdata });
        finish(st);
        return r;
}

int store_activities_started_by(Store *s, const char *prefix, activity_cb cb, void *userdata) {
        sqlite3_stmt *st = stmt(s, Q_ACT_STARTED_BY);
        int r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, prefix);
        r = each_row(s, st, visit_activity, &(ActivityVisit){ cb, userdata });
        finish(st);
        return r;
}

/* ---- timers ---- */

int store_timer_insert(Store *s,
                       const char *run_id,
                       const char *timer_id,
                       uint64_t started_id,
                       uint64_t fire_time) {
        sqlite3_stmt *st = stmt(s, Q_TIMER_INSERT);

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_text(st, 2, timer_id);
        store_bind_u64(st, 3, started_id);
        store_bind_u64(st, 4, fire_time);
        return step_done(s, st);
}

int store_timer_get(Store *s, const char *run_id, const char *timer_id, uint64_t *ret_started_id) {
        sqlite3_stmt *st = stmt(s, Q_TIMER_GET);
        int rc, r = 0;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_text(st, 2, timer_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret_started_id = store_col_u64(st, 0);
        else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
        finish(st);
        return r;
}

int store_timer_delete(Store *s, const char *run_id, const char *timer_id) {
        sqlite3_stmt *st = stmt(s, Q_TIMER_DELETE);

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_text(st, 2, timer_id);
        return step_done(s, st);
}

/* ---- tasks (in memory: taskset.h) ---- */

int store_task_insert(Store *s,
                      TaskKind kind,
                      const char *queue,
                      const char *run_id,
                      uint64_t ref,
                      const TaskPriority *p) {
        return taskset_insert(s->tasks, kind, queue, run_id, ref, p);
}

int store_task_pop(Store *s,
                   TaskKind kind,
                   const char *queue,
                   TaskCursor *cursor,
                   char ret_run_id[static 37],
                   uint64_t *ret_ref) {
        return taskset_pop(s->tasks, kind, queue, cursor, ret_run_id, ret_ref);
}

size_t store_task_count(Store *s, TaskKind kind, const char *queue, size_t ret_levels[]) {
        return taskset_queue_count(s->tasks, kind, queue, ret_levels);
}

int store_task_keys(Store *s, TaskKind kind, const char *queue, taskset_key_cb cb, void *userdata) {
        return taskset_queue_keys(s->tasks, kind, queue, cb, userdata);
}

bool store_task_released(Store *s) {
        bool r = s->started_released;

        s->started_released = false;
        return r;
}

int store_task_any(Store *s, TaskKind kind, const char *queue) {
        return taskset_any(s->tasks, kind, queue);
}

int store_task_delete(Store *s, TaskKind kind, const char *run_id, uint64_t ref) {
        taskset_delete(s->tasks, kind, run_id, ref);
        return 0;
}

int store_task_queues(Store *s,
                      TaskKind kind,
                      int (*cb)(const char *queue, void *userdata),
                      void *userdata) {
        return taskset_queues(s->tasks, kind, cb, userdata);
}

/* ---- task queue limits (rare writes: statements prepared per call) ---- */

int store_queue_limits_set(
        Store *s, const char *queue, LimitScope scope, const char *name, const TaskQueueLimits *l) {
        bool none = !l->concurrency && !l->rate;
        sqlite3_stmt *st;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                none ? "DELETE FROM task_queue_limits WHERE task_queue = ?1 AND "
                                       "scope = ?2 AND name = ?3"
                                     : "INSERT OR REPLACE INTO task_queue_limits (task_queue, "
                                       "scope, name, concurrency, rate, rate_period, burst) "
                                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(s, rc);
        store_bind_text(st, 1, queue);
        store_bind_u64(st, 2, (uint64_t) scope);
        store_bind_text(st, 3, name ?: "");
        if (!none) {
                store_bind_u64(st, 4, l->concurrency);
                store_bind_u64(st, 5, l->rate);
                store_bind_u64(st, 6, l->rate_period_usec);
                store_bind_u64(st, 7, l->burst);
        }
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : sql_error(s, rc);
}

int store_queue_limits_foreach(Store *s,
                               int (*cb)(const char *queue,
                                         LimitScope scope,
                                         const char *name,
                                         const TaskQueueLimits *l,
                                         void *userdata),
                               void *userdata) {
        sqlite3_stmt *st;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT task_queue, scope, name, concurrency, rate, rate_period, "
                                "burst FROM task_queue_limits ORDER BY task_queue, scope, name",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(s, rc);
        while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                TaskQueueLimits l = {
                        .concurrency = (uint32_t) sqlite3_column_int64(st, 3),
                        .rate = (uint32_t) sqlite3_column_int64(st, 4),
                        .rate_period_usec = store_col_u64(st, 5),
                        .burst = (uint32_t) sqlite3_column_int64(st, 6),
                };
                int scope = sqlite3_column_int(st, 1);

                if (scope < 0 || scope >= _LIMIT_SCOPE_MAX)
                        continue; /* a scope of a later version: not ours to apply */
                r = cb((const char *) sqlite3_column_text(st, 0), (LimitScope) scope,
                       (const char *) sqlite3_column_text(st, 2), &l, userdata);
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = sql_error(s, rc);
        sqlite3_finalize(st);
        return r;
}

typedef struct KeyCount {
        const char *key;
        size_t n;
} KeyCount;

static int count_key(unsigned priority, const char *key, size_t count, void *userdata) {
        KeyCount *k = userdata;

        if (streq(key ?: "", k->key))
                k->n += count;
        return 0;
}

size_t store_started_count(Store *s, const char *queue, LimitScope scope, const char *name) {
        _cleanup_free_ char *tq = NULL;
        KeyCount k = { name ?: "", 0 };

        switch (scope) {
        case LIMIT_SCOPE_KEY:
                (void) taskset_queue_keys(s->tasks, TASKSET_STARTED, queue, count_key, &k);
                return k.n;
        case LIMIT_SCOPE_TYPE:
                tq = started_type_queue(queue, name);
                return tq ? taskset_queue_count(s->tasks, TASKSET_STARTED_TYPE, tq, NULL)
                          : SIZE_MAX;
        default:
                return taskset_queue_count(s->tasks, TASKSET_STARTED, queue, NULL);
        }
}

/* ---- queued starts (rare: statements prepared per call) ---- */

void queued_start_done(QueuedStart *q) {
        free(q->workflow_id);
        free(q->request.ptr);
        *q = (QueuedStart){};
}

int store_queued_start_insert(Store *s, const QueuedStart *q) {
        sqlite3_stmt *st;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO queued_starts (workflow_id, run_id, uid, admin, "
                                "request) VALUES (?, ?, ?, ?, ?)",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(s, rc);
        store_bind_text(st, 1, q->workflow_id);
        store_bind_text(st, 2, q->run_id);
        store_bind_u64(st, 3, q->uid);
        store_bind_u64(st, 4, q->admin);
        bind_blob(st, 5, &q->request);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : sql_error(s, rc);
}

int store_queued_start_first(Store *s, const char *workflow_id, QueuedStart *ret) {
        QueuedStart q = {};
        sqlite3_stmt *st;
        int rc, r;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT seq, workflow_id, run_id, uid, admin, request FROM "
                                "queued_starts WHERE workflow_id = ? ORDER BY seq LIMIT 1",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(s, rc);
        store_bind_text(st, 1, workflow_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                q.seq = store_col_u64(st, 0);
                col_fixed(st, 2, q.run_id, sizeof(q.run_id));
                q.uid = (uint32_t) store_col_u64(st, 3);
                q.admin = sqlite3_column_int(st, 4);
                r = store_col_strdup(st, 1, &q.workflow_id);
                if (r >= 0)
                        r = col_blob(st, 5, &q.request);
        } else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
        sqlite3_finalize(st);
        if (r < 0) {
                queued_start_done(&q);
                return r;
        }
        *ret = q;
        return 0;
}

int store_queued_start_delete(Store *s, uint64_t seq) {
        sqlite3_stmt *st;
        int rc;

        rc = sqlite3_prepare_v2(s->db, "DELETE FROM queued_starts WHERE seq = ?", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_error(s, rc);
        store_bind_u64(st, 1, seq);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : sql_error(s, rc);
}

int store_queued_start_any(Store *s) {
        sqlite3_stmt *st;
        int rc, r;

        rc = sqlite3_prepare_v2(s->db, "SELECT EXISTS (SELECT 1 FROM queued_starts)", -1, &st,
                                NULL);
        if (rc != SQLITE_OK)
                return sql_error(s, rc);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : sql_error(s, rc);
        sqlite3_finalize(st);
        return r;
}

int store_queued_start_ids(Store *s,
                           int (*cb)(const char *workflow_id, void *userdata),
                           void *userdata) {
        sqlite3_stmt *st;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, "SELECT DISTINCT workflow_id FROM queued_starts", -1, &st,
                                NULL);
        if (rc != SQLITE_OK)
                return sql_error(s, rc);
        while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
                r = cb((const char *) sqlite3_column_text(st, 0), userdata);
        if (r >= 0 && rc != SQLITE_DONE)
                r = sql_error(s, rc);
        sqlite3_finalize(st);
        return r;
}

/* ---- deadlines ---- */

void deadline_done(Deadline *d) {
        free(d->key);
        *d = (Deadline){};
}

int store_deadline_insert(Store *s,
                          uint64_t due,
                          DeadlineKind kind,
                          const char *run_id,
                          uint64_t ref,
                          uint64_t gen,
                          const char *key) {
        sqlite3_stmt *st;

        if (kind == DEADLINE_WFT_TIMEOUT)
                return taskset_insert_ordered(s->tasks, TASKSET_WFT_TIMEOUTS, "", run_id, ref, due,
                                              gen);
        st = stmt(s, Q_DL_INSERT);
        if (!st)
                return -EIO;
        store_bind_u64(st, 1, due);
        store_bind_u64(st, 2, kind);
        store_bind_text(st, 3, run_id);
        store_bind_u64(st, 4, ref);
        store_bind_u64(st, 5, gen);
        store_bind_text(st, 6, key);
        store_bind_u64(st, 7, ++s->deadline_seq);
        return step_done(s, st);
}

int store_deadline_delete(Store *s, DeadlineKind kind, const char *run_id, uint64_t ref) {
        sqlite3_stmt *st;

        if (kind == DEADLINE_WFT_TIMEOUT) {
                taskset_delete(s->tasks, TASKSET_WFT_TIMEOUTS, run_id, ref);
                return 0;
        }
        st = stmt(s, Q_DL_DELETE);
        if (!st)
                return -EIO;
        store_bind_u64(st, 1, kind);
        store_bind_text(st, 2, run_id);
        store_bind_u64(st, 3, ref);
        return step_done(s, st);
}

int store_deadlines_delete_ref(Store *s, const char *run_id, uint64_t ref) {
        sqlite3_stmt *st = stmt(s, Q_DL_DELETE_REF);

        /* A statement that deletes nothing writes no page: the table's half costs no I/O when
         * the deadline was a workflow task's, in memory. */
        taskset_delete(s->tasks, TASKSET_WFT_TIMEOUTS, run_id, ref);
        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        store_bind_u64(st, 2, ref);
        return step_done(s, st);
}

static int table_deadline_next(Store *s, uint64_t *ret_due) {
        sqlite3_stmt *st = stmt(s, Q_DL_NEXT);
        int rc, r = 0;

        if (!st)
                return -EIO;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                *ret_due = store_col_u64(st, 0);
        else
                r = rc == SQLITE_ROW || rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
        finish(st);
        return r;
}

int store_deadline_next(Store *s, uint64_t *ret_due) {
        TaskEntry e;
        int r = table_deadline_next(s, ret_due);

        if (r < 0 && r != -ENOENT)
                return r;
        if (taskset_peek(s->tasks, TASKSET_WFT_TIMEOUTS, "", &e) < 0)
                return r;
        if (r == -ENOENT || e.order < *ret_due)
                *ret_due = e.order;
        return 0;
}

int store_deadline_pop_due(Store *s, uint64_t now, Deadline *ret) {
        sqlite3_stmt *st;
        Deadline d = {};
        TaskEntry e;
        uint64_t seq = 0, table_due;
        int rc, r = 0;

        /* The earlier of the two sources; on a tie the table's first (timers before timeouts). */
        if (taskset_peek(s->tasks, TASKSET_WFT_TIMEOUTS, "", &e) >= 0 && e.order <= now) {
                r = table_deadline_next(s, &table_due);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r == -ENOENT || e.order < table_due) {
                        r = taskset_take(s->tasks, TASKSET_WFT_TIMEOUTS, "", &e);
                        if (r < 0)
                                return r;
                        *ret = (Deadline){ .due = e.order,
                                           .kind = DEADLINE_WFT_TIMEOUT,
                                           .ref = e.ref,
                                           .gen = e.gen };
                        memcpy(ret->run_id, e.run_id, sizeof(ret->run_id));
                        return 0;
                }
        }
        st = stmt(s, Q_DL_FIRST_DUE);
        if (!st)
                return -EIO;
        store_bind_u64(st, 1, now);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                seq = store_col_u64(st, 0);
                d.due = store_col_u64(st, 1);
                d.kind = (DeadlineKind) sqlite3_column_int(st, 2);
                col_fixed(st, 3, d.run_id, sizeof(d.run_id));
                d.ref = store_col_u64(st, 4);
                d.gen = store_col_u64(st, 5);
                r = store_col_strdup(st, 6, &d.key);
        } else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
        finish(st);
        if (r < 0) {
                deadline_done(&d);
                return r;
        }
        st = stmt(s, Q_DL_DELETE_SEQ);
        if (!st) {
                deadline_done(&d);
                return -EIO;
        }
        store_bind_u64(st, 1, d.due);
        store_bind_u64(st, 2, seq);
        r = step_done(s, st);
        if (r < 0) {
                deadline_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

/* Brings the timeout of the workflow task of each run in *@userdata forward to now. */
typedef struct Expire {
        Store *s;
        uint64_t now;
} Expire;

static int expire_one(sqlite3_stmt *st, void *userdata) {
        Expire *x = userdata;
        const char *run_id = (const char *) sqlite3_column_text(st, 0);
        uint64_t started_id = store_col_u64(st, 1);
        TaskEntry e;

        /* None at start-up: timeouts of workflow tasks live in memory only, and a task that
         * was in flight when the daemon died is due at once (DESIGN.md §3). */
        if (taskset_get(x->s->tasks, TASKSET_WFT_TIMEOUTS, run_id, started_id, &e) >= 0) {
                if (e.order <= x->now)
                        return 0;
                taskset_delete(x->s->tasks, TASKSET_WFT_TIMEOUTS, run_id, started_id);
        }
        return taskset_insert_ordered(x->s->tasks, TASKSET_WFT_TIMEOUTS, "", run_id, started_id,
                                      x->now, 0);
}

int store_expire_workflow_tasks(Store *s, uint64_t now, uint64_t conn_serial) {
        sqlite3_stmt *st = stmt(s, conn_serial ? Q_WFT_STARTED_CONN : Q_WFT_STARTED_ALL);
        int r;

        if (!st)
                return -EIO;
        if (conn_serial)
                store_bind_u64(st, 1, conn_serial);
        r = each_row(s, st, expire_one, &(Expire){ s, now });
        finish(st);
        return r;
}

int store_is_idle(Store *s) {
        sqlite3_stmt *st = stmt(s, Q_IDLE);
        int rc, r;

        if (taskset_count(s->tasks) > 0)
                return 0;
        if (!st)
                return -EIO;
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? !sqlite3_column_int(st, 0) : sql_error(s, rc);
        finish(st);
        return r;
}

int store_run_purge_pending(Store *s, const char *run_id) {
        taskset_delete_run(s->tasks, run_id);
        rowcache_forget_run(s->activities, run_id);
        s->started_released = true; /* its running activities, if it had any */
        static const int qs[] = { Q_PURGE_ACT, Q_PURGE_TIMER, Q_PURGE_DL, Q_PURGE_BUF };

        for (size_t i = 0; i < ELEMENTSOF(qs); i++) {
                sqlite3_stmt *st = stmt(s, qs[i]);
                int r;

                if (!st)
                        return -EIO;
                store_bind_text(st, 1, run_id);
                r = step_done(s, st);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- history size ---- */

int store_history_bytes(Store *s, const char *run_id, uint64_t *ret) {
        sqlite3_stmt *st = stmt(s, Q_HISTORY_BYTES);
        int rc;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_double(st, 0);
        finish(st);
        return rc == SQLITE_ROW ? 0 : sql_error(s, rc);
}

/* ---- child workflows ---- */

int store_child_insert(Store *s, const ChildRow *c) {
        sqlite3_stmt *st = stmt(s, Q_CHILD_INSERT);

        if (!st)
                return -EIO;
        store_bind_text(st, 1, c->parent_run_id);
        store_bind_u64(st, 2, c->initiated_id);
        store_bind_text(st, 3, c->parent_workflow_id);
        store_bind_text(st, 4, c->workflow_id);
        store_bind_text(st, 5, c->run_id);
        store_bind_u64(st, 6, (uint64_t) c->policy);
        return step_done(s, st);
}

static int read_child(sqlite3_stmt *st, ChildRow *ret) {
        ChildRow c = {};
        int r;

        col_fixed(st, 0, c.parent_run_id, sizeof(c.parent_run_id));
        c.initiated_id = store_col_u64(st, 1);
        r = store_col_strdup(st, 2, &c.parent_workflow_id);
        if (r >= 0)
                r = store_col_strdup(st, 3, &c.workflow_id);
        col_fixed(st, 4, c.run_id, sizeof(c.run_id));
        c.policy = (int) sqlite3_column_int64(st, 5);
        if (r < 0) {
                child_row_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

void child_row_done(ChildRow *c) {
        free(c->parent_workflow_id);
        free(c->workflow_id);
        *c = (ChildRow){};
}

int store_child_get_by_run(Store *s, const char *run_id, ChildRow *ret) {
        sqlite3_stmt *st = stmt(s, Q_CHILD_BY_RUN);
        int rc, r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = read_child(st, ret);
        else
                r = rc == SQLITE_DONE ? -ENOENT : sql_error(s, rc);
        finish(st);
        return r;
}

int store_child_relink(Store *s, const char *old_run_id, const char *new_run_id) {
        sqlite3_stmt *st = stmt(s, Q_CHILD_RELINK);

        if (!st)
                return -EIO;
        store_bind_text(st, 1, old_run_id);
        store_bind_text(st, 2, new_run_id);
        return step_done(s, st);
}

int store_child_delete(Store *s, const char *parent_run_id, uint64_t initiated_id) {
        sqlite3_stmt *st = stmt(s, Q_CHILD_DELETE);

        if (!st)
                return -EIO;
        store_bind_text(st, 1, parent_run_id);
        store_bind_u64(st, 2, initiated_id);
        return step_done(s, st);
}

typedef struct ChildVisit {
        child_cb cb;
        void *userdata;
} ChildVisit;

static int visit_child(sqlite3_stmt *st, void *userdata) {
        ChildVisit *v = userdata;
        ChildRow c;
        int r;

        r = read_child(st, &c);
        if (r < 0)
                return r;
        r = v->cb(&c, v->userdata);
        child_row_done(&c);
        return r;
}

int store_children_foreach(Store *s, const char *parent_run_id, child_cb cb, void *userdata) {
        sqlite3_stmt *st = stmt(s, Q_CHILD_FOREACH);
        ChildVisit v = { cb, userdata };
        int r;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, parent_run_id);
        r = each_row(s, st, visit_child, &v);
        finish(st);
        return r;
}

/* The count(*) of query @q over the rows of @run_id (and of event type @type, where it asks). */
static int count_of_run(Store *s, int q, const char *run_id, int type) {
        sqlite3_stmt *st = stmt(s, q);
        int rc, n = 0;

        if (!st)
                return -EIO;
        store_bind_text(st, 1, run_id);
        if (type >= 0)
                sqlite3_bind_int(st, 2, type);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
        finish(st);
        return rc == SQLITE_ROW ? n : sql_error(s, rc);
}

int store_children_count(Store *s, const char *parent_run_id) {
        return count_of_run(s, Q_CHILD_COUNT, parent_run_id, -1);
}

int store_activities_count(Store *s, const char *run_id) {
        return count_of_run(s, Q_ACT_COUNT, run_id, -1);
}

int store_signals_count(Store *s, const char *run_id) {
        return count_of_run(s, Q_SIGNAL_COUNT, run_id, EVENT_WORKFLOW_EXECUTION_SIGNALED);
}
