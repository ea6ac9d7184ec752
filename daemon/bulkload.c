/* Bulk loader; see bulkload.h.
 *
 * Every run goes through the history engine, as a client and a worker would drive it:
 *   open run:   history_start_workflow()                  (WorkflowExecutionStarted,
 *                                                          WorkflowTaskScheduled, its task row)
 *   closed run: the same, then history_start_workflow_task() and
 *               history_complete_workflow_task() with one CompleteWorkflowExecution command
 *               (WorkflowTaskStarted, WorkflowTaskCompleted, WorkflowExecutionCompleted; the
 *               task, its timeout deadline and the run's state as close_run() leaves them).
 * The Manager's loop never runs: taskq_mark_dirty() finds no task queue in memory (nobody polled)
 * and does nothing, manager_deadlines_changed() only sets a flag that nobody reads, and
 * manager_run_changed() finds no waiter. A store-level fast path writing the same rows would be
 * quicker, but it would have to copy what the engine writes and drift from it; the real path
 * loads ~1,000,000 runs in a few minutes (bench/README.md, W6), which is fast enough.
 *
 * One transaction per BULKLOAD_BATCH runs, then a checkpoint: the daemon's store turns SQLite's
 * automatic checkpoints off, so without it the WAL would hold the whole load. */

#include "daemon/bulkload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "daemon/history.h"

#define BULKLOAD_BATCH 10000
#define BULKLOAD_IDENTITY "durabled-bulk-load"

static const char *const types[] = { BULKLOAD_TYPES };
static const char *const queues[] = { BULKLOAD_QUEUES };

typedef struct BulkLoad {
        Manager *m;
        msgpack_unpacked commands; /* [CompleteWorkflowExecution], shared by every closed run */
        MsgBuf commands_buf;
        MsgBuf task; /* the packed workflow task, as a poll would receive it */
        uint64_t conn_serial;
} BulkLoad;

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* The command list a worker sends to complete a workflow with a small result. */
static int commands_init(BulkLoad *b) {
        static const char result[] = "{\"status\":\"done\"}";
        msgpack_packer *pk = &b->commands_buf.pk;

        msgbuf_init(&b->commands_buf);
        (void) msgpack_pack_array(pk, 1);
        (void) msgpack_pack_map(pk, 2);
        (void) msg_pack_kv_str(pk, "command_type", "CompleteWorkflowExecution");
        (void) msg_pack_str(pk, "attributes");
        (void) msgpack_pack_map(pk, 1);
        (void) msg_pack_kv_bin(pk, "result", result, sizeof(result) - 1);
        if (msgbuf_error(&b->commands_buf) < 0)
                return -ENOMEM;
        msgpack_unpacked_init(&b->commands);
        if (msgpack_unpack_next(&b->commands, b->commands_buf.sb.data, b->commands_buf.sb.size,
                                NULL) != MSGPACK_UNPACK_SUCCESS)
                return -EBADMSG;
        return 0;
}

static void bulkload_done(BulkLoad *b) {
        msgpack_unpacked_destroy(&b->commands);
        msgbuf_done(&b->commands_buf);
        msgbuf_done(&b->task);
}

static int start_run(BulkLoad *b, const char *kind, uint64_t n, char ret_run_id[static 37]) {
        char id[64], input[64];
        ApiError e = {};
        bool started;
        int r;

        snprintf(id, sizeof(id), "bulk-%s-%" PRIu64, kind, n);
        snprintf(input, sizeof(input), "{\"n\":%" PRIu64 "}", n);
        r = history_start_workflow(b->m,
                                   &(StartRequest){
                                           .workflow_id = id,
                                           .workflow_type = types[n % ELEMENTSOF(types)],
                                           .task_queue = queues[n % ELEMENTSOF(queues)],
                                           .input = { input, strlen(input) },
                                           .caller_admin = true,
                                   },
                                   ret_run_id, &started, &e);
        if (r < 0)
                return log_error_errno(r, "Failed to start workflow '%s': %s", id,
                                       e.message[0] ? e.message : strerror(-r));
        if (!started) /* a second load into the same store: ids must stay unique */
                return log_error_errno(-EEXIST, "Workflow '%s' is already running", id);
        return 0;
}

/* The task token of the task packed in b->task. */
static int task_token(BulkLoad *b, msgpack_unpacked *u, MsgBin *ret) {
        const msgpack_object *t;

        if (msgbuf_error(&b->task) < 0)
                return -ENOMEM;
        if (msgpack_unpack_next(u, b->task.sb.data, b->task.sb.size, NULL) !=
            MSGPACK_UNPACK_SUCCESS)
                return -EBADMSG;
        t = msg_get(&u->data, "task_token");
        if (!t || t->type != MSGPACK_OBJECT_BIN)
                return -EBADMSG;
        *ret = (MsgBin){ t->via.bin.ptr, t->via.bin.size };
        return 0;
}

/* Started, dispatched to a worker (us) and completed by its first workflow task. */
static int closed_run(BulkLoad *b, uint64_t n) {
        char run_id[37];
        msgpack_unpacked u;
        ApiError e = {};
        MsgBin token;
        int r;

        r = start_run(b, "closed", n, run_id);
        if (r < 0)
                return r;
        msgbuf_reset(&b->task);
        /* Event 2 is the WorkflowTaskScheduled of history_start_workflow(); -ESTALE if not. */
        r = history_start_workflow_task(b->m, run_id, 2, BULKLOAD_IDENTITY, b->conn_serial,
                                        &b->task.pk);
        if (r < 0)
                return log_error_errno(r, "Failed to start the workflow task of run %s: %m",
                                       run_id);
        msgpack_unpacked_init(&u);
        r = task_token(b, &u, &token);
        if (r >= 0)
                r = history_complete_workflow_task(b->m, &token, &b->commands.data,
                                                   BULKLOAD_IDENTITY, b->conn_serial, &e);
        msgpack_unpacked_destroy(&u);
        if (r < 0)
                return log_error_errno(r, "Failed to complete run %s: %s", run_id,
                                       e.message[0] ? e.message : strerror(-r));
        return 0;
}

static int open_run(BulkLoad *b, uint64_t n) {
        char run_id[37];

        return start_run(b, "open", n, run_id);
}

/* Commits the batch and folds the WAL into the database. */
static int commit_batch(BulkLoad *b) {
        int r;

        r = store_commit(b->m->store);
        if (r < 0) {
                store_rollback(b->m->store);
                return log_error_errno(r, "Failed to commit: %m");
        }
        r = store_checkpoint(b->m->store);
        if (r < 0)
                return log_error_errno(r, "Failed to checkpoint the WAL: %m");
        return 0;
}

int bulkload_run(Manager *m, uint64_t n_closed, uint64_t n_open) {
        const uint64_t total = n_closed + n_open;
        uint64_t closed = 0, open = 0, t0 = monotonic_usec();
        BulkLoad b = { .m = m, .conn_serial = 1 };
        int r;

        msgbuf_init(&b.task);
        r = commands_init(&b);
        if (r < 0) {
                bulkload_done(&b);
                return log_error_errno(r, "Failed to build the commands: %m");
        }
        log_info("Loading %" PRIu64 " closed and %" PRIu64 " open runs into %s", n_closed, n_open,
                 m->cfg.state_dir);
        for (uint64_t k = 0; k < total; k++) {
                /* Open runs spread evenly among the closed ones (in start time too). */
                bool is_open = (k + 1) * n_open / total > k * n_open / total;

                if (k % BULKLOAD_BATCH == 0) {
                        r = store_begin(m->store);
                        if (r < 0) {
                                log_error_errno(r, "Failed to begin a transaction: %m");
                                break;
                        }
                }
                r = is_open ? open_run(&b, open++) : closed_run(&b, closed++);
                if (r < 0)
                        break;
                if ((k + 1) % BULKLOAD_BATCH == 0 || k + 1 == total) {
                        uint64_t usec = monotonic_usec() - t0;

                        r = commit_batch(&b);
                        if (r < 0)
                                break;
                        log_info("Loaded %" PRIu64 "/%" PRIu64 " runs (%" PRIu64 " closed, %" PRIu64
                                 " open) in %.1f s, %.0f runs/s",
                                 k + 1, total, closed, open, (double) usec / 1e6,
                                 usec ? (double) (k + 1) * 1e6 / (double) usec : 0.0);
                }
        }
        if (r < 0)
                store_rollback(m->store);
        bulkload_done(&b);
        return r;
}
