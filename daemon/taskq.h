#pragma once
/* Task queues in memory: the parked long polls of each queue, the queries waiting for a worker,
 * and the matching of tasks to polls. The tasks themselves live in the store (table tasks), so
 * nothing here needs rebuilding after a crash: a queue is found again when a worker polls it.
 *
 * Poll states:  PARKED --task or query found--> answered, freed
 *                      --timeout / ShutdownWorker / connection closed--> answered nil or freed
 * Query states: PENDING (in its queue) --a workflow poll takes it--> DISPATCHED (in manager's
 *               list) --RespondQueryTask--> answered; --timeout--> deadline_exceeded;
 *               a worker that disconnects puts its DISPATCHED queries back to PENDING.
 * An update's validation (history-update.c) is a query of kind "update": the same states, and
 * RespondQueryTask accepts the update (or answers the caller that it was rejected). */

#include <stdint.h>

#include "daemon/history.h"
#include "daemon/manager.h"
#include "daemon/store.h"

typedef struct Poll Poll;

struct Poll {
        Conn *conn;
        uint64_t req_id;
        TaskKind kind;
        TaskQueue *queue;
        char *identity;
        sd_event_source *timer;
        LIST_FIELDS(Poll, polls);
};

struct Query {
        Manager *manager;
        uint64_t id;
        Conn *caller;
        uint64_t caller_req;
        Conn *worker; /* NULL while pending */
        TaskQueue *queue;
        char run_id[37];
        char *query_type; /* an update: its name */
        Blob input;
        /* An update's validation: its id, the caller's uid and identity (for its Accepted
         * event), and whether the caller waits for its completion after acceptance. */
        char *update_id; /* NULL for a query */
        char *identity;
        uint32_t caller_uid;
        bool wait_completed;
        uint64_t wait_timeout_usec;
        sd_event_source *timer;
        LIST_FIELDS(Query, queries);
};

struct TaskQueue {
        char *name;
        Poll *polls[_TASK_KIND_MAX];
        Query *pending;
        bool dirty;
        LIST_FIELDS(TaskQueue, queues);
};

TaskQueue *taskq_get(Manager *m, const char *name, bool create);
/* Marks a queue as having new work; dispatch happens before the pass commits. */
void taskq_mark_dirty(Manager *m, const char *name);
void taskq_mark_all_dirty(Manager *m);

/* Parks a poll (the request is answered later). */
int taskq_add_poll(Manager *m,
                   Conn *c,
                   uint64_t req_id,
                   TaskKind kind,
                   const char *queue,
                   const char *identity,
                   uint64_t timeout_usec);
/* Answers every poll of @c with task nil (ShutdownWorker) and frees them. */
void taskq_shutdown_polls(Manager *m, Conn *c);

int taskq_add_query(Manager *m,
                    Conn *caller,
                    uint64_t req_id,
                    const RunRow *run,
                    const char *query_type,
                    const MsgBin *input,
                    uint64_t timeout_usec);
/* Parks the validation of @req (see Query). */
int taskq_add_update(Manager *m,
                     Conn *caller,
                     uint64_t req_id,
                     const RunRow *run,
                     const UpdateRequest *req,
                     uint64_t timeout_usec,
                     Query **ret);
/* Validations of updates of @run_id in flight. */
unsigned taskq_count_updates(Manager *m, const char *run_id);
Query *taskq_find_query(Manager *m, uint64_t query_id);
Query *query_free(Query *q);

/* Forgets everything @c owns or waits on (called when it closes). */
void taskq_forget_conn(Manager *m, Conn *c);

/* Hands tasks and queries of dirty queues to parked polls. */
int taskq_dispatch(Manager *m);
void taskq_free_all(Manager *m);
