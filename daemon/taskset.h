#pragma once
/* The dispatchable tasks (DESIGN.md §12: in-memory task queues rebuilt from the store): one queue
 * per (kind, task queue), in memory, ordered by priority level and FIFO within a level, with an undo journal that follows the store's transaction, so
 * that a savepoint rolled back or a commit that failed takes its task changes back with its rows.
 *
 * Nothing here is durable, and nothing needs to be: a task exists exactly while its run's workflow
 * task is WFT_SCHEDULED or its activity is ACTIVITY_SCHEDULED, and store_open() rebuilds the set
 * from those rows (store.c). Keeping tasks out of SQLite spares two B-trees per step (the table
 * and its by-run index: ~13 % of the pages each commit wrote, bench/README.md change 5). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum TaskKind {
        TASK_WORKFLOW = 0,
        TASK_ACTIVITY = 1,
        TASK_PROCESS = 2, /* an activity of a type declared by a unit; queue = the unit's name */
        _TASK_KIND_MAX,
        /* Not a task: the store keeps the timeouts of workflow tasks in flight here too, ordered
         * by due time (store.c, store_deadline_insert()). */
        TASKSET_WFT_TIMEOUTS = _TASK_KIND_MAX,
        /* Not a task either: the activities a polling worker runs (STARTED), queued under their
         * task queue, so that a queue's concurrency limit counts them (flow.h). The store removes
         * an entry when its activity leaves STARTED. */
        TASKSET_STARTED,
        /* The same activities once more, queued under "task queue \x1f activity type": the
         * running count of a type's limit (flow.h). Entries of TASKSET_STARTED keep their
         * activity's fairness key, which counts those of a key. */
        TASKSET_STARTED_TYPE,
} TaskKind;

/* Priority keys (Temporal's, SEMANTICS.md b.15a): 1 is dispatched first, 5 last, strictly; unset
 * (0) means 3. Level 0 of a queue holds the entries inserted with an explicit order. */
enum {
        TASK_PRIORITY_HIGHEST = 1,
        TASK_PRIORITY_DEFAULT = 3,
        TASK_PRIORITY_LOWEST = 5,
        TASK_PRIORITY_LEVELS = 6,
};

/* An entry as it is read back. Entries of a queue are kept in (priority, order, seq) order; plain
 * tasks have order = seq, i.e. FIFO within their level. */
typedef struct TaskEntry {
        uint64_t order;
        uint64_t seq;
        uint64_t ref;
        uint64_t gen;
        unsigned priority;
        char run_id[37];
} TaskEntry;

/* Where a task goes in its queue: its priority key (1..5; another value means the default) and,
 * within that level, its fairness key (NULL or "": the level's own) and weight (0: 1.0; clamped
 * to [0.001, 1000]). Keys share a level in proportion to their weights (taskset.c, FairKey). */
typedef struct TaskPriority {
        unsigned priority;
        const char *fairness_key;
        double fairness_weight;
} TaskPriority;

#define TASK_FAIRNESS_KEY_MAX 64 /* bytes, as Temporal */

/* A weight as a task keeps it: 0 or less (unset) is 1.0, else clamped to [0.001, 1000]. */
double task_fairness_weight(double w);

/* A place in a queue's dispatch order, for taskset_pop(); zero-initialised: before the first. */
typedef struct TaskCursor {
        unsigned priority;
        uint64_t seq;
} TaskCursor;

typedef struct TaskSet TaskSet;

TaskSet *taskset_new(void);
TaskSet *taskset_free(TaskSet *ts);

/* Appends a task to its queue where @p (NULL: the defaults) puts it, with the next sequence
 * number. -ENOMEM. */
int taskset_insert(TaskSet *ts,
                   TaskKind kind,
                   const char *queue,
                   const char *run_id,
                   uint64_t ref,
                   const TaskPriority *p);
/* The same with an explicit place in the queue, and a value kept with the entry. */
int taskset_insert_ordered(TaskSet *ts,
                           TaskKind kind,
                           const char *queue,
                           const char *run_id,
                           uint64_t ref,
                           uint64_t order,
                           uint64_t gen);
/* The first entry of the queue, left in place (peek) or removed (take). -ENOENT when empty. */
int taskset_peek(TaskSet *ts, TaskKind kind, const char *queue, TaskEntry *ret);
int taskset_take(TaskSet *ts, TaskKind kind, const char *queue, TaskEntry *ret);
/* The entry (kind, run, ref); -ENOENT when there is none. */
int taskset_get(TaskSet *ts, TaskKind kind, const char *run_id, uint64_t ref, TaskEntry *ret);
/* Removes and returns the first task of the queue in dispatch order after *@cursor (zero: the
 * first, by priority and fairness; after a task the caller put back, the next ones in priority
 * and arrival order), setting *@cursor to it. -ENOENT when there is none. */
int taskset_pop(TaskSet *ts,
                TaskKind kind,
                const char *queue,
                TaskCursor *cursor,
                char ret_run_id[static 37],
                uint64_t *ret_ref);
/* 1 when the queue holds a task of @kind, else 0. */
int taskset_any(TaskSet *ts, TaskKind kind, const char *queue);
/* The number of entries of the queue, and in @ret_levels (NULL, or TASK_PRIORITY_LEVELS
 * elements) those of each level. */
size_t taskset_queue_count(TaskSet *ts, TaskKind kind, const char *queue, size_t ret_levels[]);
/* Calls @cb for each fairness key of each level of the queue that holds tasks, with their number;
 * stops at a negative return. */
typedef int (*taskset_key_cb)(unsigned priority, const char *key, size_t count, void *userdata);
int taskset_queue_keys(
        TaskSet *ts, TaskKind kind, const char *queue, taskset_key_cb cb, void *userdata);
/* Removes the task (kind, run, ref) if there is one; true when there was. */
bool taskset_delete(TaskSet *ts, TaskKind kind, const char *run_id, uint64_t ref);
/* Removes every task of the run. */
void taskset_delete_run(TaskSet *ts, const char *run_id);
size_t taskset_count(TaskSet *ts);
/* Calls @cb with the name of each queue that holds tasks of @kind; stops at a negative return. */
int taskset_queues(TaskSet *ts, TaskKind kind, int (*cb)(const char *queue, void *userdata),
                   void *userdata);

/* The journal. A mark is pushed by every savepoint and popped by its release or rollback; commit
 * forgets the journal, rollback undoes all of it. -ENOMEM from mark leaves nothing pushed. */
int taskset_mark(TaskSet *ts);
void taskset_release(TaskSet *ts);
void taskset_rollback_to_mark(TaskSet *ts);
void taskset_commit(TaskSet *ts);
void taskset_rollback(TaskSet *ts);
