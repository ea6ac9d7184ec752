#pragma once
/* Helpers for the tests that drive tests/integration/test-worker.c ($TEST_WORKER_BIN) through the
 * real daemon (test-activities.c, test-signals.c, test-worker-crash.c, test-nondeterminism.c).
 * Histories, raw calls and the invariant check come from orders-util.h. */

#include <durable/durable.h>

#include <jansson.h>

#include "tests/integration/orders-util.h"
#include "tests/lib/daemon.h"

#define TEST_QUEUE "test"

/* Starts test-worker polling @queue (NULL: "test"); @extra_env as test_process_spawn(). */
void test_worker_spawn(TestProcess *p, const char *queue, const char *const *extra_env);

/* Starts @type with the JSON input @input (may be NULL) on @queue (NULL: "test");
 * @task_timeout 0 = the daemon's default. Fails the test on error. */
void start_json(dur_client *c,
                const char *type,
                const char *workflow_id,
                const char *queue,
                const char *input,
                uint64_t task_timeout);

/* Waits (no time limit of its own: the daemon answers when the run closes; the harness's
 * timeout bounds the test) for the run's outcome; returns dur_client_result()'s value. */
int wait_outcome(dur_client *c, const char *workflow_id, dur_outcome *ret);

/* The "status" of DescribeWorkflow, malloc'd. */
char *describe_status(dur_client *c, const char *workflow_id);

/* The event types of @events, space-separated, for messages and exact comparisons. */
char *history_types(const json_t *events);
/* Fails unless the event types are exactly @types (NULL-terminated), in order. */
#define ASSERT_HISTORY_TYPES(events, ...) \
        history_assert_types_at(events, STRV(__VA_ARGS__), __FILE__, __LINE__)
void history_assert_types_at(const json_t *events,
                             const char *const *types,
                             const char *file,
                             int line);
/* The attribute @key of @ev (borrowed; NULL when absent). */
json_t *ev_attr(const json_t *ev, const char *key);
/* The first event of @type, failing the test when there is none. */
json_t *history_must(const json_t *events, const char *type);

/* The answer of SignalWorkflow's query "count" (an unsigned integer); fails the test otherwise. */
uint64_t query_count(dur_client *c, const char *id);

/* A FIFO @name in @d's directory, opened O_RDWR|O_NONBLOCK (never blocks, never sees EOF).
 * Returns the fd; the path in *ret_path (malloc'd). */
int fifo_make(TestDaemon *d, const char *name, char **ret_path);
/* Reads one line from the FIFO into @buf (without the newline); event driven, bounded by the
 * harness timeout. */
void fifo_read_line(int fd, char *buf, size_t size);

/* A worker made by hand, for tasks that a real worker would not leave as they are: polls
 * @queue for a workflow task (waiting for one, bounded by the harness timeout) and returns its
 * task token (malloc'd bytes in *ret_token, *ret_size). */
void raw_poll_workflow_task(dur_client *c, const char *queue, char **ret_token, size_t *ret_size);
/* The same for an activity task: its attempt is started, the token is the attempt's. */
void raw_poll_activity_task(dur_client *c, const char *queue, char **ret_token, size_t *ret_size);
/* CompleteWorkflowTask with @token and the commands @commands_json (a JSON array); returns
 * dur_client_call()'s value. */
int raw_complete_workflow_task(dur_client *c,
                               const char *token,
                               size_t size,
                               const char *commands_json);
