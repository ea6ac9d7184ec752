/* See orders-util.h. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf() */
#endif

#include "tests/integration/orders-util.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

dur_client *client_connect(void) {
        dur_client *c = NULL;

        ASSERT_OK(dur_client_connect(&c, NULL));
        return ASSERT_NOT_NULL(c);
}

void orders_worker_spawn(TestProcess *p) {
        test_process_spawn(p, STRV(test_bin("ORDERS_WORKER_BIN")), NULL);
}

int orders_worker_spawn_logged(TestProcess *p, TestDaemon *d) {
        _cleanup_free_ char *fifo = NULL;
        int fd;

        ASSERT_NOT_NULL(d->dir);
        ASSERT_OK_ERRNO(asprintf(&fifo, "%s/worker-log.fifo", d->dir));
        (void) unlink(fifo);
        ASSERT_OK_ERRNO(mkfifo(fifo, 0600));
        /* O_RDWR: the read end never sees EOF (and open() never blocks), whether or not the
         * worker has opened its end yet. */
        fd = ASSERT_OK_ERRNO(open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC));
        test_process_spawn(
                p,
                STRV("/bin/sh", "-c", "exec \"$0\" 2>\"$1\"", test_bin("ORDERS_WORKER_BIN"), fifo),
                NULL);
        return fd;
}

static uint64_t mono_usec(void) {
        struct timespec ts;

        assert(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
        return (uint64_t) ts.tv_sec * TEST_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

void log_wait_for(int fd, const char *needle) {
        uint64_t deadline = mono_usec() + test_timeout_usec();
        char line[4096];
        size_t n = 0;

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                uint64_t now = mono_usec();
                char ch;
                ssize_t k;

                if (now >= deadline)
                        test_fail(__FILE__, __LINE__, "the worker did not log \"%s\" in time",
                                  needle);
                if (poll(&pfd, 1, (int) ((deadline - now + 999) / 1000)) < 0 && errno != EINTR)
                        test_fail(__FILE__, __LINE__, "poll() failed: %m");
                /* One byte at a time: nothing after the awaited line is consumed. */
                while ((k = read(fd, &ch, 1)) == 1) {
                        if (ch != '\n') {
                                if (n < sizeof(line) - 1)
                                        line[n++] = ch;
                                continue;
                        }
                        line[n] = 0;
                        n = 0;
                        printf("worker: %s\n", line);
                        if (strstr(line, needle))
                                return;
                }
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        test_fail(__FILE__, __LINE__, "reading the worker's log failed: %m");
        }
}

json_t *call_json(dur_client *c, json_t *request, int *ret_error) {
        _cleanup_free_ char *text = NULL, *answer_text = NULL;
        dur_buf *req = NULL, *answer = NULL;
        json_t *j;
        int r;

        text = ASSERT_NOT_NULL(json_dumps(request, JSON_COMPACT));
        req = ASSERT_NOT_NULL(dur_buf_from_json(text));
        r = dur_client_call(c, req, &answer);
        dur_buf_free(req);
        if (r < 0) {
                *ret_error = r;
                return NULL;
        }
        answer_text = ASSERT_NOT_NULL(dur_buf_to_json(answer));
        dur_buf_free(answer);
        j = json_loads(answer_text, JSON_DECODE_ANY, NULL);
        if (!j)
                test_fail(__FILE__, __LINE__, "answer is not JSON: %s", answer_text);
        *ret_error = 0;
        return j;
}

int history_try_get(dur_client *c, const char *workflow_id, json_t **ret) {
        json_t *req = ASSERT_NOT_NULL(
                json_pack("{s:s, s:s}", "op", "GetHistory", "workflow_id", workflow_id));
        json_t *answer, *events;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (!answer)
                return r;
        events = json_object_get(answer, "events");
        if (!json_is_array(events))
                test_fail(__FILE__, __LINE__, "GetHistory answered without \"events\"");
        *ret = json_incref(events);
        json_decref(answer);
        return 0;
}

json_t *history_get(dur_client *c, const char *workflow_id) {
        json_t *events = NULL;

        ASSERT_DUR_OK(c, history_try_get(c, workflow_id, &events));
        return events;
}

uint64_t ev_id(const json_t *ev) {
        json_t *v = json_object_get(ev, "event_id");

        if (!json_is_integer(v) || json_integer_value(v) <= 0)
                test_fail(__FILE__, __LINE__, "event without a positive event_id");
        return (uint64_t) json_integer_value(v);
}

const char *ev_type(const json_t *ev) {
        const char *t = json_str(ev, "event_type");

        if (!t)
                test_fail(__FILE__, __LINE__, "event without event_type");
        return t;
}

const char *ev_str(const json_t *ev, const char *attr) {
        return json_str(json_object_get(ev, "attributes"), attr);
}

uint64_t ev_uint(const json_t *ev, const char *attr) {
        json_t *v = json_object_get(json_object_get(ev, "attributes"), attr);

        return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t) json_integer_value(v)
                                                               : 0;
}

const char *json_str(const json_t *obj, const char *key) {
        return json_string_value(json_object_get(obj, key));
}

size_t history_count(const json_t *events, const char *type) {
        size_t i, n = 0;
        json_t *ev;

        json_array_foreach(events, i, ev) if (streq(ev_type(ev), type)) n++;
        return n;
}

json_t *history_next(const json_t *events, const char *type, size_t from, size_t *ret_index) {
        for (size_t i = from; i < json_array_size(events); i++) {
                json_t *ev = json_array_get(events, i);

                if (streq(ev_type(ev), type)) {
                        if (ret_index)
                                *ret_index = i;
                        return ev;
                }
        }
        return NULL;
}

static bool is_scheduled(const json_t *ev, const char *activity_type) {
        return streq(ev_type(ev), "ActivityTaskScheduled") &&
               test_str_eq(ev_str(ev, "activity_type"), activity_type);
}

json_t *history_scheduled(const json_t *events, const char *activity_type) {
        size_t i;
        json_t *ev;

        json_array_foreach(events, i, ev) if (is_scheduled(ev, activity_type)) return ev;
        return NULL;
}

size_t history_count_scheduled(const json_t *events, const char *activity_type) {
        size_t i, n = 0;
        json_t *ev;

        json_array_foreach(events, i, ev) if (is_scheduled(ev, activity_type)) n++;
        return n;
}

static bool is_activity_close(const char *type) {
        return streq(type, "ActivityTaskCompleted") || streq(type, "ActivityTaskFailed") ||
               streq(type, "ActivityTaskTimedOut") || streq(type, "ActivityTaskCanceled");
}

json_t *history_activity_close(const json_t *events, uint64_t scheduled_id) {
        size_t i;
        json_t *ev;

        json_array_foreach(events, i,
                           ev) if (is_activity_close(ev_type(ev)) &&
                                   ev_uint(ev, "scheduled_event_id") == scheduled_id) return ev;
        return NULL;
}

static bool is_run_close(const char *type) {
        return streq(type, "WorkflowExecutionCompleted") ||
               streq(type, "WorkflowExecutionFailed") || streq(type, "WorkflowExecutionTimedOut") ||
               streq(type, "WorkflowExecutionCanceled") ||
               streq(type, "WorkflowExecutionTerminated") ||
               streq(type, "WorkflowExecutionContinuedAsNew");
}

static bool is_wft_close(const char *type) {
        return streq(type, "WorkflowTaskCompleted") || streq(type, "WorkflowTaskFailed") ||
               streq(type, "WorkflowTaskTimedOut");
}

/* The event with id @id (ids are dense, checked first), or NULL. */
static json_t *event_by_id(const json_t *events, uint64_t id) {
        return id >= 1 && id <= json_array_size(events) ? json_array_get(events, id - 1) : NULL;
}

void history_assert_invariants(const json_t *events) {
        size_t n = json_array_size(events), i;
        json_t *ev;

        ASSERT_GT(n, 0u);
        json_array_foreach(events, i, ev)
                ASSERT_EQ(ev_id(ev), i + 1); /* dense, in order, no duplicate */
        ASSERT_STREQ(ev_type(json_array_get(events, 0)), "WorkflowExecutionStarted");

        json_array_foreach(events, i, ev) {
                const char *type = ev_type(ev);

                if (is_run_close(type))
                        ASSERT_EQ(i, n - 1); /* one closing event, the last */

                if (streq(type, "ActivityTaskScheduled")) {
                        const char *activity_id = ev_str(ev, "activity_id");
                        size_t j, closes = 0, starts = 0;
                        json_t *other;

                        ASSERT_NOT_NULL(activity_id);
                        json_array_foreach(events, j, other) {
                                if (j != i && streq(ev_type(other), "ActivityTaskScheduled"))
                                        ASSERT_STRNE(ev_str(other, "activity_id"), activity_id);
                                if (ev_uint(other, "scheduled_event_id") != ev_id(ev))
                                        continue;
                                if (is_activity_close(ev_type(other)))
                                        closes++;
                                else if (streq(ev_type(other), "ActivityTaskStarted")) {
                                        starts++;
                                        /* Started is appended right before its closing event. */
                                        ASSERT_LT(j + 1, n);
                                        ASSERT_TRUE(is_activity_close(
                                                ev_type(json_array_get(events, j + 1))));
                                        ASSERT_EQ(ev_uint(json_array_get(events, j + 1),
                                                          "scheduled_event_id"),
                                                  ev_id(ev));
                                }
                        }
                        ASSERT_LE(closes, 1u);
                        ASSERT_LE(starts, 1u);
                }

                if (streq(type, "ActivityTaskCompleted") || streq(type, "ActivityTaskFailed")) {
                        json_t *sched = event_by_id(events, ev_uint(ev, "scheduled_event_id"));

                        ASSERT_NOT_NULL(sched);
                        ASSERT_STREQ(ev_type(sched), "ActivityTaskScheduled");
                }

                if (streq(type, "WorkflowTaskStarted")) {
                        json_t *sched = event_by_id(events, ev_uint(ev, "scheduled_event_id"));

                        ASSERT_NOT_NULL(sched);
                        ASSERT_STREQ(ev_type(sched), "WorkflowTaskScheduled");
                        /* Nothing comes between a started workflow task and its end. */
                        if (i + 1 < n) {
                                json_t *next = json_array_get(events, i + 1);

                                ASSERT_TRUE(is_wft_close(ev_type(next)));
                                ASSERT_EQ(ev_uint(next, "started_event_id"), ev_id(ev));
                        }
                }
        }
}

json_t *outcome_result(const dur_outcome *o) {
        _cleanup_free_ char *text = NULL;
        json_t *j;

        if (!o->result)
                return json_null();
        text = ASSERT_NOT_NULL(dur_buf_to_json(o->result));
        j = json_loads(text, JSON_DECODE_ANY, NULL);
        if (!j)
                test_fail(__FILE__, __LINE__, "result is not JSON: %s", text);
        return j;
}
