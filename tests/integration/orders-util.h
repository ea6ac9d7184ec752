#pragma once
/* Helpers shared by the integration tests that drive examples/orders-worker through the real
 * daemon (test-order.c, test-crash.c): libdurable clients that fail the test with the daemon's
 * error code, histories as jansson arrays (GetHistory's answer through dur_buf_to_json(), so
 * payloads appear as JSON values), and checks of the invariants of DESIGN.md §3 on a history. */

#include <durable/durable.h>

#include <jansson.h>

#include "tests/lib/daemon.h"

#define ORDERS_QUEUE "order-processing"

/* Fails the test unless @expr (a libdurable call on client @c) returned >= 0; the message names
 * the daemon's error code and message. Yields the value. */
#define ASSERT_DUR_OK(c, expr)                                                                    \
        ({                                                                                        \
                int _adk = (expr);                                                                \
                if (_adk < 0)                                                                     \
                        test_fail(__FILE__, __LINE__, "\"%s\" returned %d (%s: %s)", #expr, _adk, \
                                  test_str_or_null(dur_client_error_code(c)),                     \
                                  test_str_or_null(dur_client_error_message(c)));                 \
                _adk;                                                                             \
        })

/* A client of the daemon in $DURABLED_SOCKET (set by the harness); fails the test on error. */
dur_client *client_connect(void);

/* Starts examples/orders-worker ($ORDERS_WORKER_BIN) on the daemon in $DURABLED_SOCKET. */
void orders_worker_spawn(TestProcess *p);
/* The same, with the worker's stderr going into a FIFO in @d's directory; returns the fd to read
 * it with log_wait_for() (keep it open while the worker runs, then close it). */
int orders_worker_spawn_logged(TestProcess *p, TestDaemon *d);
/* Reads the worker's log from @fd, echoing it, until a line contains @needle. Event driven
 * (poll()), bounded by test_timeout_usec(): the test fails when the line does not come. */
void log_wait_for(int fd, const char *needle);

/* Any operation: @request is a JSON object with "op"; the answer as JSON (new reference), or
 * NULL with the negative errno in *ret_error (the code is in dur_client_error_code()). */
json_t *call_json(dur_client *c, json_t *request, int *ret_error);

/* The events of the latest run of @workflow_id (a new reference to a JSON array); fails the test
 * on error. history_try_get() returns -errno instead. */
json_t *history_get(dur_client *c, const char *workflow_id);
int history_try_get(dur_client *c, const char *workflow_id, json_t **ret);

/* Accessors of one event (a JSON object as GetHistory answers it). */
uint64_t ev_id(const json_t *ev);
const char *ev_type(const json_t *ev);
/* A string or unsigned attribute; NULL resp. 0 when absent. */
const char *ev_str(const json_t *ev, const char *attr);
uint64_t ev_uint(const json_t *ev, const char *attr);

/* How many events of @type the history has. */
size_t history_count(const json_t *events, const char *type);
/* The first event of @type at or after index @from, or NULL; its index in *ret_index. */
json_t *history_next(const json_t *events, const char *type, size_t from, size_t *ret_index);
/* The ActivityTaskScheduled of @activity_type (NULL if none), and how many there are. */
json_t *history_scheduled(const json_t *events, const char *activity_type);
size_t history_count_scheduled(const json_t *events, const char *activity_type);
/* The event that closed the activity scheduled as @scheduled_id (ActivityTaskCompleted, ...Failed,
 * ...TimedOut, ...Canceled), or NULL. */
json_t *history_activity_close(const json_t *events, uint64_t scheduled_id);

/* DESIGN.md §3 on one history: event ids are exactly 1..n in order, the first event is
 * WorkflowExecutionStarted, at most one event closes the run and it is the last one; every
 * activity id is scheduled once, each scheduled activity is closed at most once and started at
 * most once, right before its closing event; every ActivityTaskCompleted names a scheduled
 * activity; every workflow task closing event names the task started right before it. */
void history_assert_invariants(const json_t *events);

/* The outcome's result payload as JSON (new reference; JSON null when there is none). */
json_t *outcome_result(const dur_outcome *o);
/* @obj's string member @key, or NULL. */
const char *json_str(const json_t *obj, const char *key);
