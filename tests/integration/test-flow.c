/* Flow control of task queues through the real daemon (daemon/flow.h, taskset.h; SEMANTICS.md
 * b.15a, b.23): priority keys measured on a backlog (the exact dispatch order, before and after a
 * SIGKILL), a concurrency limit of 3 never exceeded by 8 polling threads under 200 queued
 * activities, a rate limit held on the daemon's own recorded start times, the limits kept across
 * a restart, and garbage refused on the wire and on durablectl's command line.
 *
 * The workflows here have no worker: the test completes their first workflow task by hand with
 * the ScheduleActivityTask commands it wants, so the whole backlog is queued before the first
 * activity poll. Nothing waits for time to pass; the rate test reads the started_time each task
 * carries. */

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/worker-util.h"

#define WF_QUEUE "flow-wf"

/* Calls @op (a JSON object, taken) and fails the test on an error answer. */
static json_t *call_ok(dur_client *c, json_t *req) {
        json_t *answer;
        int r;

        ASSERT_NOT_NULL(req);
        answer = call_json(c, req, &r);
        if (!answer)
                test_fail(__FILE__, __LINE__, "%s failed: %s: %s",
                          json_string_value(json_object_get(req, "op")),
                          test_str_or_null(dur_client_error_code(c)),
                          test_str_or_null(dur_client_error_message(c)));
        json_decref(req);
        return answer;
}

/* The error of @req (taken): its negative errno; the code is in dur_client_error_code(). */
static int call_error(dur_client *c, json_t *req) {
        json_t *answer;
        int r;

        ASSERT_NOT_NULL(req);
        answer = call_json(c, req, &r);
        json_decref(req);
        if (answer)
                test_fail(__FILE__, __LINE__, "the request was not refused");
        return r;
}

static void start_with_priority(dur_client *c, const char *id, unsigned priority) {
        json_decref(call_ok(c, json_pack("{s:s, s:s, s:s, s:s, s:i}", "op", "StartWorkflow",
                                         "workflow_id", id, "workflow_type", "Flow", "task_queue",
                                         WF_QUEUE, "priority", priority)));
}

/* How schedule_backlog() sets activity i: priority key prio[i], fairness key keys[i] with weight
 * weights[i] (NULL arrays, 0 and NULL elements: unset). */
typedef struct Backlog {
        const unsigned *prio;
        const char *const *keys;
        const double *weights;
        const char *const *types; /* the activity types; NULL, or a NULL element: "noop" */
} Backlog;

/* Starts workflow @id and schedules @n activities "a0".."a<n-1>" on @queue as @b says (NULL: all
 * unset) in one workflow task. */
static void schedule_backlog(dur_client *c,
                             const char *id,
                             unsigned run_priority,
                             const char *queue,
                             size_t n,
                             const Backlog *b) {
        _cleanup_free_ char *token = NULL, *text = NULL;
        json_t *commands = ASSERT_NOT_NULL(json_array());
        size_t size;

        start_with_priority(c, id, run_priority);
        for (size_t i = 0; i < n; i++) {
                char aid[32];
                json_t *attrs;

                snprintf(aid, sizeof(aid), "a%zu", i);
                attrs = ASSERT_NOT_NULL(json_pack(
                        "{s:s, s:s, s:s, s:I}", "activity_id", aid, "activity_type",
                        b && b->types && b->types[i] ? b->types[i] : "noop", "task_queue", queue,
                        "start_to_close_usec", (json_int_t) 600 * TEST_USEC_PER_SEC));
                if (b && b->prio && b->prio[i])
                        ASSERT_OK(json_object_set_new(attrs, "priority", json_integer(b->prio[i])));
                if (b && b->keys && b->keys[i])
                        ASSERT_OK(json_object_set_new(attrs, "fairness_key",
                                                      json_string(b->keys[i])));
                if (b && b->weights && b->weights[i])
                        ASSERT_OK(json_object_set_new(attrs, "fairness_weight",
                                                      json_real(b->weights[i])));
                ASSERT_OK(json_array_append_new(commands, json_pack("{s:s, s:o}", "command_type",
                                                                    "ScheduleActivityTask",
                                                                    "attributes", attrs)));
        }
        text = ASSERT_NOT_NULL(json_dumps(commands, JSON_COMPACT));
        json_decref(commands);
        raw_poll_workflow_task(c, WF_QUEUE, &token, &size);
        ASSERT_OK(raw_complete_workflow_task(c, token, size, text));
}

/* One activity task of @queue (waiting for it), as JSON: activity_id, started_time, ... */
static json_t *poll_activity(dur_client *c, const char *queue, uint64_t timeout_usec) {
        json_t *answer, *task;

        answer = call_ok(c, json_pack("{s:s, s:s, s:s, s:I}", "op", "PollActivityTask",
                                      "task_queue", queue, "identity", "test-flow", "timeout_usec",
                                      (json_int_t) timeout_usec));
        task = json_incref(json_object_get(answer, "task"));
        json_decref(answer);
        if (json_is_null(task)) {
                json_decref(task);
                return NULL;
        }
        return task;
}

static void complete_activity(dur_client *c, const char *workflow_id, const char *activity_id) {
        json_decref(call_ok(c, json_pack("{s:s, s:s, s:s}", "op", "CompleteActivityTask",
                                         "workflow_id", workflow_id, "activity_id", activity_id)));
}

static json_t *describe_queue(dur_client *c, const char *queue) {
        return call_ok(c, json_pack("{s:s, s:s}", "op", "DescribeTaskQueue", "task_queue", queue));
}

static uint64_t jget(const json_t *o, const char *a, const char *b) {
        const json_t *v = json_object_get(json_object_get(o, a), b);

        if (!json_is_integer(v))
                test_fail(__FILE__, __LINE__, "no integer %s.%s in the answer", a, b);
        return (uint64_t) json_integer_value(v);
}

/* ---- priority -------------------------------------------------------------------------------- */

/* 40 activities with mixed priority keys (and some unset, inheriting the run's 2): dispatched
 * strictly by key, FIFO within a key; the same order after a SIGKILL rebuilds the queues. */
static void check_priority_order(bool crash) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        enum {
                N = 40
        };
        unsigned prio[N], want_prio[N];
        size_t got_index[N];
        dur_client *c;
        json_t *q, *events;
        size_t k = 0;

        for (size_t i = 0; i < N; i++)
                prio[i] = (i * 7) % 6; /* 0 (unset: the run's 2), 1, 2, 3, 4, 5 */
        test_daemon_start(&d, NULL);
        c = client_connect();
        schedule_backlog(c, "prio", 2, "prio-acts", N, &(Backlog){ .prio = prio });

        q = describe_queue(c, "prio-acts");
        ASSERT_EQ(jget(q, "activity_tasks", "backlog"), N);
        json_decref(q);
        if (crash) {
                c = dur_client_free(c);
                test_daemon_kill(&d, SIGKILL);
                test_daemon_restart(&d);
                c = client_connect();
        }
        /* The expected order: by effective key, then by scheduling order. */
        for (unsigned p = 1; p <= 5; p++)
                for (size_t i = 0; i < N; i++)
                        if ((prio[i] ? prio[i] : 2) == p) {
                                got_index[k] = i;
                                want_prio[k++] = p;
                        }
        ASSERT_EQ(k, N);
        q = describe_queue(c, "prio-acts");
        ASSERT_EQ(jget(q, "activity_tasks", "backlog"), N);
        ASSERT_EQ(json_integer_value(
                          json_array_get(json_object_get(json_object_get(q, "activity_tasks"),
                                                         "backlog_by_priority"),
                                         1)),
                  7 + 7); /* key 2 set, and unset (inheriting 2) */
        json_decref(q);
        for (size_t i = 0; i < N; i++) {
                json_t *task = ASSERT_NOT_NULL(poll_activity(c, "prio-acts", 0));
                char want[32];

                snprintf(want, sizeof(want), "a%zu", got_index[i]);
                if (!streq(json_string_value(json_object_get(task, "activity_id")), want))
                        test_fail(__FILE__, __LINE__,
                                  "dispatch %zu was %s, expected %s (priority key %u)", i,
                                  json_string_value(json_object_get(task, "activity_id")), want,
                                  want_prio[i]);
                json_decref(task);
        }
        /* The effective key is in the history when it is not the default. */
        events = history_get(c, "prio");
        ASSERT_EQ(ev_uint(history_must(events, "WorkflowExecutionStarted"), "priority"), 2);
        ASSERT_EQ(ev_uint(history_scheduled(events, "noop"), "priority"), 2); /* a0: inherited */
        json_decref(events);
        dur_client_free(c);
}

TEST(priority_keys_strict_between_levels_fifo_within) {
        check_priority_order(false);
}

TEST(priority_order_is_rebuilt_after_sigkill) {
        check_priority_order(true);
}

/* Fairness keys within one priority key: on a backlog of 40 + 40 activities, keys of weights 3
 * and 1 get 30 and 10 of the first 40 dispatches (stride scheduling is exact up to one), keys of
 * equal weight alternate; a task of a smaller priority key still goes first (strict levels). */
TEST(fairness_weights_share_dispatches_on_a_backlog) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        enum {
                N = 81
        };
        const char *keys[N];
        double weights[N];
        unsigned prio[N] = {};
        unsigned heavy = 0, light = 0;
        dur_client *c;
        json_t *q, *by, *task, *events;
        size_t i;

        for (i = 0; i < N - 1; i++) {
                keys[i] = i % 2 ? "light" : "heavy";
                weights[i] = i % 2 ? 1.0 : 3.0;
        }
        keys[N - 1] = "late";
        weights[N - 1] = 0;
        prio[N - 1] = 1; /* queued last, dispatched first */
        test_daemon_start(&d, NULL);
        c = client_connect();
        schedule_backlog(c, "fair", 0, "fair-acts", N,
                         &(Backlog){ .prio = prio, .keys = keys, .weights = weights });

        q = describe_queue(c, "fair-acts");
        by = json_object_get(json_object_get(q, "activity_tasks"), "backlog_by_fairness_key");
        ASSERT_EQ(json_array_size(by), 3);
        json_array_foreach(by, i, task) {
                const char *k = json_string_value(json_object_get(task, "fairness_key"));
                json_int_t n = json_integer_value(json_object_get(task, "backlog"));

                ASSERT_EQ(n, streq(k, "late") ? 1 : 40);
                ASSERT_EQ(json_integer_value(json_object_get(task, "priority")),
                          streq(k, "late") ? 1 : 3);
        }
        json_decref(q);

        task = ASSERT_NOT_NULL(poll_activity(c, "fair-acts", 0));
        ASSERT_STREQ(json_string_value(json_object_get(task, "activity_id")), "a80");
        json_decref(task);
        for (i = 0; i < 40; i++) {
                unsigned k;

                task = ASSERT_NOT_NULL(poll_activity(c, "fair-acts", 0));
                k = (unsigned) strtoul(json_string_value(json_object_get(task, "activity_id")) + 1,
                                       NULL, 10);
                if (k % 2)
                        light++;
                else
                        heavy++;
                json_decref(task);
        }
        if (heavy < 29 || heavy > 31 || light < 9 || light > 11)
                test_fail(__FILE__, __LINE__, "weights 3:1 gave %u:%u of 40, expected 30:10 (+-1)",
                          heavy, light);
        events = history_get(c, "fair");
        ASSERT_STREQ(ev_str(history_scheduled(events, "noop"), "fairness_key"), "heavy");
        json_decref(events);
        dur_client_free(c);
}

/* Workflow tasks too: of two runs waiting, the one with the smaller key goes first. */
TEST(workflow_tasks_follow_the_run_priority) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL;
        json_t *answer, *task;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_with_priority(c, "late", 5);
        start_with_priority(c, "default", 0);
        start_with_priority(c, "early", 1);
        for (size_t i = 0; i < 3; i++) {
                static const char *const want[] = { "early", "default", "late" };

                answer = call_ok(c, json_pack("{s:s, s:s, s:s}", "op", "PollWorkflowTask",
                                              "task_queue", WF_QUEUE, "identity", "test-flow"));
                task = json_object_get(answer, "task");
                ASSERT_STREQ(json_string_value(json_object_get(task, "workflow_id")), want[i]);
                json_decref(answer);
        }
        dur_client_free(c);
}

/* ---- concurrency ----------------------------------------------------------------------------- */

enum {
        CONC_N = 200,
        CONC_LIMIT = 3,
        CONC_THREADS = 8
};

/* The polling threads hold each task until they hold CONC_LIMIT of them (or the backlog's last
 * ones), then complete them: so the limit is reached again and again, and a fourth task handed
 * out while three run would have to overlap them. */
typedef struct ConcState {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned outstanding, max_outstanding, received, completed, errors;
        unsigned generation; /* bumped when the held tasks are to be completed */
        uint64_t started[CONC_N];
} ConcState;

static void conc_hold(ConcState *s, const json_t *task) {
        const char *aid = json_string_value(json_object_get(task, "activity_id"));
        unsigned gen, i = aid ? (unsigned) strtoul(aid + 1, NULL, 10) : CONC_N;

        pthread_mutex_lock(&s->lock);
        if (i < CONC_N)
                s->started[i] =
                        (uint64_t) json_integer_value(json_object_get(task, "started_time"));
        else
                s->errors++;
        s->received++;
        s->outstanding++;
        s->max_outstanding = MAX(s->max_outstanding, s->outstanding);
        gen = s->generation;
        if (s->outstanding >= CONC_LIMIT || s->received == CONC_N) {
                s->generation++;
                pthread_cond_broadcast(&s->cond);
        }
        while (gen == s->generation)
                pthread_cond_wait(&s->cond, &s->lock);
        s->outstanding--;
        pthread_mutex_unlock(&s->lock);
}

static bool conc_done(ConcState *s) {
        bool done;

        pthread_mutex_lock(&s->lock);
        done = s->received >= CONC_N || s->errors > 0;
        pthread_mutex_unlock(&s->lock);
        return done;
}

static void *conc_thread(void *userdata) {
        ConcState *s = userdata;
        dur_client *c = NULL;

        if (dur_client_connect(&c, getenv("DURABLED_SOCKET")) < 0) {
                pthread_mutex_lock(&s->lock);
                s->errors++;
                pthread_mutex_unlock(&s->lock);
                return NULL;
        }
        while (!conc_done(s)) {
                json_t *req = json_pack("{s:s, s:s, s:s, s:I}", "op", "PollActivityTask",
                                        "task_queue", "conc-acts", "identity", "test-flow",
                                        "timeout_usec", (json_int_t) 200000);
                json_t *answer, *task, *done = NULL;
                int r;

                answer = call_json(c, req, &r);
                json_decref(req);
                task = answer ? json_object_get(answer, "task") : NULL;
                if (json_is_object(task)) {
                        conc_hold(s, task);
                        done = json_pack("{s:s, s:s, s:O}", "op", "CompleteActivityTask",
                                         "workflow_id", "conc", "activity_id",
                                         json_object_get(task, "activity_id"));
                        json_decref(answer);
                        answer = call_json(c, done, &r);
                        json_decref(done);
                }
                pthread_mutex_lock(&s->lock);
                s->errors += !answer;
                s->completed += answer && done;
                pthread_mutex_unlock(&s->lock);
                json_decref(answer);
        }
        dur_client_free(c);
        return NULL;
}

typedef struct Span {
        uint64_t time;
        int delta; /* +1 start, -1 end */
} Span;

static int span_compare(const void *a, const void *b) {
        const Span *x = a, *y = b;

        if (x->time != y->time)
                return x->time < y->time ? -1 : 1;
        return x->delta - y->delta; /* at the same time an end comes before a start */
}

/* The most activities that ran at once by the daemon's own times: from each started_time to the
 * time of its ActivityTaskCompleted (a completion is recorded before the dispatch it frees). */
static unsigned daemon_max_overlap(const json_t *events, const uint64_t started[CONC_N]) {
        _cleanup_free_ Span *spans = ASSERT_NOT_NULL(calloc(2 * CONC_N, sizeof(Span)));
        size_t n = 0, i;
        json_t *ev;
        int now = 0, max = 0;

        json_array_foreach(events, i, ev) {
                const json_t *sched;
                const char *aid;
                size_t k;

                if (!streq(ev_type(ev), "ActivityTaskCompleted"))
                        continue;
                sched = json_array_get(events, ev_uint(ev, "scheduled_event_id") - 1);
                aid = ASSERT_NOT_NULL(ev_str(sched, "activity_id"));
                k = strtoul(aid + 1, NULL, 10);
                ASSERT_LT(k, CONC_N);
                ASSERT_GT(started[k], 0);
                spans[n++] = (Span){ started[k], +1 };
                spans[n++] =
                        (Span){ (uint64_t) json_integer_value(json_object_get(ev, "time")), -1 };
        }
        ASSERT_EQ(n, 2 * CONC_N);
        qsort(spans, n, sizeof(Span), span_compare);
        for (i = 0; i < n; i++) {
                now += spans[i].delta;
                max = MAX(max, now);
        }
        return (unsigned) max;
}

TEST(concurrency_limit_of_3_is_never_exceeded_under_200_queued) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        pthread_t threads[CONC_THREADS];
        static ConcState s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
        dur_client *c;
        json_t *q, *events;

        test_daemon_start(&d, NULL);
        c = client_connect();
        q = call_ok(c, json_pack("{s:s, s:s, s:i}", "op", "ConfigureTaskQueue", "task_queue",
                                 "conc-acts", "concurrency_limit", CONC_LIMIT));
        ASSERT_EQ(jget(q, "limits", "concurrency_limit"), CONC_LIMIT);
        json_decref(q);
        schedule_backlog(c, "conc", 0, "conc-acts", CONC_N, NULL);

        /* Three are handed out and kept; a fourth poll waits while the queue says why. */
        for (size_t i = 0; i < CONC_LIMIT; i++) {
                json_t *task = ASSERT_NOT_NULL(poll_activity(c, "conc-acts", 0));

                s.started[i] = (uint64_t) json_integer_value(json_object_get(task, "started_time"));
                json_decref(task);
        }
        ASSERT_NULL(poll_activity(c, "conc-acts", 1000));
        q = describe_queue(c, "conc-acts");
        ASSERT_EQ(jget(q, "activity_tasks", "running"), CONC_LIMIT);
        ASSERT_EQ(jget(q, "activity_tasks", "backlog"), CONC_N - CONC_LIMIT);
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(q, "throttled"), "by")),
                     "concurrency");
        ASSERT_GT(jget(q, "throttled", "held_by_concurrency"), 0);
        json_decref(q);
        for (size_t i = 0; i < CONC_LIMIT; i++) {
                char aid[32];

                snprintf(aid, sizeof(aid), "a%zu", i);
                complete_activity(c, "conc", aid);
        }
        s.received = s.completed = CONC_LIMIT;

        for (size_t i = 0; i < CONC_THREADS; i++)
                ASSERT_OK(-pthread_create(&threads[i], NULL, conc_thread, &s));
        for (size_t i = 0; i < CONC_THREADS; i++)
                ASSERT_OK(-pthread_join(threads[i], NULL));
        ASSERT_EQ(s.errors, 0);
        ASSERT_EQ(s.completed, CONC_N);

        q = describe_queue(c, "conc-acts");
        ASSERT_EQ(jget(q, "activity_tasks", "running"), 0);
        ASSERT_EQ(jget(q, "activity_tasks", "backlog"), 0);
        json_decref(q);
        events = history_get(c, "conc");
        history_assert_invariants(events);
        ASSERT_EQ(history_count(events, "ActivityTaskCompleted"), CONC_N);
        ASSERT_EQ(daemon_max_overlap(events, s.started), CONC_LIMIT);
        ASSERT_EQ(s.max_outstanding, CONC_LIMIT); /* the limit was reached, never passed */
        json_decref(events);
        dur_client_free(c);
}

/* ---- rate ------------------------------------------------------------------------------------ */

/* 30 activities at 20 per second with a burst of 3: for any two dispatches i < j, the starts in
 * between (both included) are at most burst + (t_j - t_i) x rate / period, on the started_time
 * the daemon recorded for each (GCRA's bound, exact: no tolerance). */
TEST(rate_limit_holds_within_its_bucket) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        enum {
                N = 30,
                RATE = 20,
                BURST = 3
        };
        const uint64_t period = TEST_USEC_PER_SEC;
        uint64_t t[N];
        dur_client *c;
        json_t *q;

        test_daemon_start(&d, NULL);
        c = client_connect();
        q = call_ok(c, json_pack("{s:s, s:s, s:i, s:I, s:i}", "op", "ConfigureTaskQueue",
                                 "task_queue", "rate-acts", "rate_limit", RATE, "rate_period_usec",
                                 (json_int_t) period, "rate_burst", BURST));
        ASSERT_EQ(jget(q, "limits", "rate_limit"), RATE);
        ASSERT_EQ(jget(q, "limits", "rate_burst"), BURST);
        json_decref(q);
        schedule_backlog(c, "rate", 0, "rate-acts", N, NULL);
        for (size_t i = 0; i < N; i++) {
                json_t *task = ASSERT_NOT_NULL(poll_activity(c, "rate-acts", 0));

                t[i] = (uint64_t) json_integer_value(json_object_get(task, "started_time"));
                ASSERT_GT(t[i], 0);
                json_decref(task);
        }
        for (size_t i = 0; i < N; i++)
                for (size_t j = i; j < N; j++) {
                        uint64_t n = j - i + 1;

                        ASSERT_LE(t[i], t[j]);
                        if (n > BURST && (n - BURST) * period > (t[j] - t[i]) * RATE)
                                test_fail(__FILE__, __LINE__,
                                          "%" PRIu64 " starts within %" PRIu64 " us (dispatch "
                                          "%zu..%zu): more than the bucket allows",
                                          n, t[j] - t[i], i, j);
                }
        q = describe_queue(c, "rate-acts");
        ASSERT_GT(jget(q, "throttled", "held_by_rate"), 0);
        ASSERT_EQ(jget(q, "activity_tasks", "running"), N);
        json_decref(q);
        dur_client_free(c);
}

/* ---- limits per fairness key and per activity type ------------------------------------------ */

/* The one scoped limit DescribeTaskQueue shows for @queue (the test sets one). */
static const json_t *scoped_limit(const json_t *describe) {
        const json_t *a = json_object_get(describe, "scoped_limits");

        ASSERT_EQ(json_array_size(a), 1);
        return json_array_get(a, 0);
}

/* Key "hot" of a queue may run 2 at once: with 8 hot and 4 cold tasks queued and nothing
 * completed, the polls get 2 hot and all 4 cold; then each hot completed lets exactly one more
 * in. The limit and the running count of the key are there again after a SIGKILL. */
TEST(key_concurrency_limit_holds_one_key_while_the_others_go) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        enum {
                N = 12,
                HOT = 8
        };
        const char *keys[N];
        char hot[HOT][8];
        size_t n_hot = 0, done_hot = 0, cold = 0;
        dur_client *c;
        json_t *q;

        for (size_t i = 0; i < N; i++)
                keys[i] = i < HOT ? "hot" : "cold";
        test_daemon_start(&d, NULL);
        c = client_connect();
        q = call_ok(c, json_pack("{s:s, s:s, s:s, s:i}", "op", "ConfigureTaskQueue", "task_queue",
                                 "keyq", "fairness_key", "hot", "concurrency_limit", 2));
        ASSERT_STREQ(json_string_value(json_object_get(q, "fairness_key")), "hot");
        ASSERT_EQ(jget(q, "limits", "concurrency_limit"), 2);
        json_decref(q);
        schedule_backlog(c, "keys", 0, "keyq", N, &(Backlog){ .keys = keys });
        for (size_t i = 0; i < 6; i++) {
                json_t *task = ASSERT_NOT_NULL(poll_activity(c, "keyq", 0));
                const char *aid = json_string_value(json_object_get(task, "activity_id"));

                if (atoi(aid + 1) < HOT)
                        snprintf(hot[n_hot++], sizeof(hot[0]), "%s", aid);
                else
                        cold++;
                json_decref(task);
        }
        ASSERT_EQ(n_hot, 2);
        ASSERT_EQ(cold, N - HOT);
        q = describe_queue(c, "keyq");
        ASSERT_EQ(jget(q, "activity_tasks", "backlog"), HOT - 2);
        ASSERT_EQ(json_integer_value(json_object_get(scoped_limit(q), "running")), 2);
        ASSERT_GT(json_integer_value(json_object_get(scoped_limit(q), "held_by_concurrency")), 0);
        json_decref(q);

        c = dur_client_free(c);
        test_daemon_kill(&d, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        q = describe_queue(c, "keyq");
        ASSERT_STREQ(json_string_value(json_object_get(scoped_limit(q), "fairness_key")), "hot");
        ASSERT_EQ(jget(scoped_limit(q), "limits", "concurrency_limit"), 2);
        ASSERT_EQ(json_integer_value(json_object_get(scoped_limit(q), "running")), 2);
        json_decref(q);

        /* Each hot one completed lets one more in, never a third at once. */
        while (n_hot < HOT) {
                json_t *task;
                const char *aid;

                complete_activity(c, "keys", hot[done_hot++]);
                task = ASSERT_NOT_NULL(poll_activity(c, "keyq", 0));
                aid = json_string_value(json_object_get(task, "activity_id"));
                ASSERT_LT(atoi(aid + 1), HOT);
                snprintf(hot[n_hot++], sizeof(hot[0]), "%s", aid);
                json_decref(task);
                q = describe_queue(c, "keyq");
                ASSERT_EQ(json_integer_value(json_object_get(scoped_limit(q), "running")), 2);
                json_decref(q);
        }
        dur_client_free(c);
}

/* Type "slow" of a queue has a rate of 5 per second with a burst of 2; type "fast", queued
 * between them, has none: the slow ones' recorded start times keep within their bucket, the
 * fast ones are not held back behind them. */
TEST(type_rate_limit_holds_one_type_within_its_bucket) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        enum {
                N = 20,
                RATE = 5,
                BURST = 2
        };
        const uint64_t period = TEST_USEC_PER_SEC;
        const char *types[N];
        uint64_t t[N];
        size_t n_slow = 0, n_fast = 0, last_fast = 0, last_slow = 0;
        dur_client *c;
        json_t *q;

        for (size_t i = 0; i < N; i++)
                types[i] = i % 2 ? "fast" : "slow";
        test_daemon_start(&d, NULL);
        c = client_connect();
        json_decref(call_ok(
                c, json_pack("{s:s, s:s, s:s, s:i, s:I, s:i}", "op", "ConfigureTaskQueue",
                             "task_queue", "typeq", "activity_type", "slow", "rate_limit", RATE,
                             "rate_period_usec", (json_int_t) period, "rate_burst", BURST)));
        schedule_backlog(c, "types", 0, "typeq", N, &(Backlog){ .types = types });
        for (size_t i = 0; i < N; i++) {
                json_t *task = ASSERT_NOT_NULL(poll_activity(c, "typeq", 0));
                const char *aid = json_string_value(json_object_get(task, "activity_id"));
                uint64_t st = (uint64_t) json_integer_value(json_object_get(task, "started_time"));

                if (atoi(aid + 1) % 2) {
                        n_fast++;
                        last_fast = i;
                } else {
                        t[n_slow++] = st;
                        last_slow = i;
                }
                json_decref(task);
        }
        ASSERT_EQ(n_slow, N / 2);
        ASSERT_EQ(n_fast, N / 2);
        ASSERT_LT(last_fast, last_slow);
        for (size_t i = 0; i < n_slow; i++)
                for (size_t j = i; j < n_slow; j++) {
                        uint64_t n = j - i + 1;

                        ASSERT_LE(t[i], t[j]);
                        if (n > BURST && (n - BURST) * period > (t[j] - t[i]) * RATE)
                                test_fail(__FILE__, __LINE__,
                                          "%" PRIu64 " slow starts within %" PRIu64 " us: more "
                                          "than the bucket allows",
                                          n, t[j] - t[i]);
                }
        q = describe_queue(c, "typeq");
        ASSERT_STREQ(json_string_value(json_object_get(scoped_limit(q), "activity_type")), "slow");
        ASSERT_GT(json_integer_value(json_object_get(scoped_limit(q), "held_by_rate")), 0);
        ASSERT_EQ(json_integer_value(json_object_get(scoped_limit(q), "running")), N / 2);
        ASSERT_EQ(jget(q, "throttled", "held_by_rate"), 0); /* the queue's own: none */
        json_decref(q);
        dur_client_free(c);
}

TEST(scoped_garbage_is_refused_and_changes_nothing) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        char key[64 + 2]; /* one byte over TASK_FAIRNESS_KEY_MAX */
        dur_client *c;
        json_t *q;

        memset(key, 'k', sizeof(key) - 1);
        key[sizeof(key) - 1] = 0;
        test_daemon_start(&d, NULL);
        c = client_connect();
        ASSERT_ERROR(
                call_error(c, json_pack("{s:s, s:s, s:s, s:s, s:i}", "op", "ConfigureTaskQueue",
                                        "task_queue", "sg", "fairness_key", "k", "activity_type",
                                        "t", "concurrency_limit", 1)),
                -EINVAL);
        ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "at most one");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:i}", "op", "ConfigureTaskQueue",
                                             "task_queue", "sg", "fairness_key", key,
                                             "concurrency_limit", 1)),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "fairness_key");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:i}", "op", "ConfigureTaskQueue",
                                             "task_queue", "sg", "activity_type", "bad\ntype",
                                             "concurrency_limit", 1)),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "activity_type");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:i}", "op", "ConfigureTaskQueue",
                                             "task_queue", "sg", "activity_type", "",
                                             "concurrency_limit", 1)),
                     -EINVAL);
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:i, s:i}", "op", "ConfigureTaskQueue",
                                             "task_queue", "sg", "fairness_key", 3,
                                             "concurrency_limit", 1)),
                     -EINVAL);
        q = describe_queue(c, "sg");
        ASSERT_EQ(json_array_size(json_object_get(q, "scoped_limits")), 0);
        ASSERT_EQ(jget(q, "limits", "concurrency_limit"), 0);
        json_decref(q);
        dur_client_free(c);
}

/* ---- serial execution per workflow id: id conflict policy Queue ---------------------------- */

/* A queued start keeps its request as it came: @tag shows in the run's memo. */
static json_t *start_queue(dur_client *c, const char *id, const char *tag) {
        return call_ok(c, json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "op", "StartWorkflow",
                                    "workflow_id", id, "workflow_type", "Flow", "task_queue",
                                    WF_QUEUE, "id_conflict_policy", "Queue", "memo", "tag", tag));
}

static void terminate(dur_client *c, const char *id) {
        json_decref(call_ok(c, json_pack("{s:s, s:s, s:s}", "op", "TerminateWorkflow",
                                         "workflow_id", id, "reason", "test")));
}

static const char *latest_run(dur_client *c, const char *id, char buf[static 37]) {
        json_t *d =
                call_ok(c, json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", id));
        json_t *w = json_object_get(d, "workflow");

        snprintf(buf, 37, "%s", json_string_value(json_object_get(w, "run_id")));
        ASSERT_STREQ(json_string_value(json_object_get(w, "status")), "Running");
        json_decref(d);
        return buf;
}

/* Two starts queued behind a running run (Queue): answered at once with the run ids their runs
 * will have, recorded durably (a SIGKILL in between changes nothing), and started one at a time,
 * in order, each when the run before it closes. */
TEST(queued_starts_run_one_after_another) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        char run[37], r2[37], r3[37];
        json_t *a, *events;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        a = start_queue(c, "serial", "1"); /* nothing runs: it starts at once */
        ASSERT_TRUE(json_is_true(json_object_get(a, "started")));
        json_decref(a);
        a = start_queue(c, "serial", "2");
        ASSERT_TRUE(json_is_false(json_object_get(a, "started")));
        ASSERT_TRUE(json_is_true(json_object_get(a, "queued")));
        snprintf(r2, sizeof(r2), "%s", json_string_value(json_object_get(a, "run_id")));
        json_decref(a);
        a = start_queue(c, "serial", "3");
        ASSERT_TRUE(json_is_true(json_object_get(a, "queued")));
        snprintf(r3, sizeof(r3), "%s", json_string_value(json_object_get(a, "run_id")));
        json_decref(a);
        ASSERT_STRNE(r2, r3);
        latest_run(c, "serial", run);
        ASSERT_STRNE(run, r2);

        c = dur_client_free(c);
        test_daemon_kill(&d, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();

        terminate(c, "serial");
        ASSERT_STREQ(latest_run(c, "serial", run), r2);
        events = history_get(c, "serial");
        ASSERT_STREQ(
                json_string_value(json_object_get(
                        ev_attr(history_must(events, "WorkflowExecutionStarted"), "memo"), "tag")),
                "2");
        json_decref(events);
        terminate(c, "serial");
        ASSERT_STREQ(latest_run(c, "serial", run), r3);
        terminate(c, "serial");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "op",
                                             "SignalWithStart", "workflow_id", "serial",
                                             "workflow_type", "Flow", "task_queue", WF_QUEUE,
                                             "signal_name", "s", "id_conflict_policy", "Queue")),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "Queue");
        dur_client_free(c);
}

/* ---- configuration --------------------------------------------------------------------------- */

TEST(limits_are_merged_kept_across_sigkill_and_cleared) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        json_t *q;

        test_daemon_start(&d, NULL);
        c = client_connect();
        json_decref(call_ok(c, json_pack("{s:s, s:s, s:i}", "op", "ConfigureTaskQueue",
                                         "task_queue", "kept", "concurrency_limit", 7)));
        /* A field left out keeps its value; a rate without a period is per second. */
        q = call_ok(c, json_pack("{s:s, s:s, s:i}", "op", "ConfigureTaskQueue", "task_queue",
                                 "kept", "rate_limit", 50));
        ASSERT_EQ(jget(q, "limits", "concurrency_limit"), 7);
        ASSERT_EQ(jget(q, "limits", "rate_period_usec"), TEST_USEC_PER_SEC);
        ASSERT_EQ(jget(q, "limits", "rate_burst"), 1);
        json_decref(q);
        c = dur_client_free(c);
        test_daemon_kill(&d, SIGKILL);
        test_daemon_restart(&d);
        c = client_connect();
        q = describe_queue(c, "kept");
        ASSERT_EQ(jget(q, "limits", "concurrency_limit"), 7);
        ASSERT_EQ(jget(q, "limits", "rate_limit"), 50);
        json_decref(q);
        /* 0 clears a limit. */
        json_decref(call_ok(c, json_pack("{s:s, s:s, s:i, s:i}", "op", "ConfigureTaskQueue",
                                         "task_queue", "kept", "concurrency_limit", 0, "rate_limit",
                                         0)));
        test_daemon_restart(&d);
        dur_client_free(c);
        c = client_connect();
        q = describe_queue(c, "kept");
        ASSERT_EQ(jget(q, "limits", "concurrency_limit"), 0);
        ASSERT_EQ(jget(q, "limits", "rate_limit"), 0);
        json_decref(q);
        dur_client_free(c);
}

TEST(garbage_is_refused_and_changes_nothing) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *token = NULL;
        dur_client *c;
        json_t *q;
        size_t size;

        test_daemon_start(&d, NULL);
        c = client_connect();
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s}", "op", "ConfigureTaskQueue",
                                             "task_queue", "g", "concurrency_limit", "3")),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "concurrency_limit");
        ASSERT_ERROR(
                call_error(c, json_pack("{s:s, s:s, s:i, s:i}", "op", "ConfigureTaskQueue",
                                        "task_queue", "g", "rate_limit", 5, "rate_period_usec", 5)),
                -EINVAL);
        ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "rate_period_usec");
        ASSERT_ERROR(
                call_error(c, json_pack("{s:s, s:s, s:I}", "op", "ConfigureTaskQueue", "task_queue",
                                        "g", "concurrency_limit", (json_int_t) 1 << 40)),
                -EINVAL);
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s}", "op", "ConfigureTaskQueue", "task_queue",
                                             "")),
                     -EINVAL);
        ASSERT_ERROR(
                call_error(c, json_pack("{s:s, s:i}", "op", "DescribeTaskQueue", "task_queue", 3)),
                -EINVAL);
        q = describe_queue(c, "g");
        ASSERT_EQ(jget(q, "limits", "concurrency_limit"), 0);
        ASSERT_EQ(jget(q, "limits", "rate_limit"), 0);
        json_decref(q);

        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:s, s:i}", "op", "StartWorkflow",
                                             "workflow_id", "p", "workflow_type", "Flow",
                                             "task_queue", WF_QUEUE, "priority", 6)),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "priority");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "StartWorkflow",
                                             "workflow_id", "p", "workflow_type", "Flow",
                                             "task_queue", WF_QUEUE, "priority", "high")),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "priority");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "StartWorkflow",
                                             "workflow_id", "p", "workflow_type", "Flow",
                                             "task_queue", WF_QUEUE, "fairness_key",
                                             "0123456789012345678901234567890123456789012345678901"
                                             "234567890123456789")),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "fairness_key");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:s, s:f}", "op", "StartWorkflow",
                                             "workflow_id", "p", "workflow_type", "Flow",
                                             "task_queue", WF_QUEUE, "fairness_weight", -2.0)),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "fairness_weight");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "StartWorkflow",
                                             "workflow_id", "p", "workflow_type", "Flow",
                                             "task_queue", WF_QUEUE, "fairness_weight", "heavy")),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "fairness_weight");
        ASSERT_ERROR(call_error(c, json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id",
                                             "p")),
                     -ENOENT); /* nothing started */

        /* A command with a bad key fails the workflow task (BadCommand) and schedules nothing. */
        start_with_priority(c, "bad-cmd", 0);
        raw_poll_workflow_task(c, WF_QUEUE, &token, &size);
        ASSERT_ERROR(raw_complete_workflow_task(
                             c, token, size,
                             "[{\"command_type\": \"ScheduleActivityTask\", \"attributes\": "
                             "{\"activity_id\": \"1\", \"activity_type\": \"noop\", "
                             "\"start_to_close_usec\": 1000000, \"priority\": 9}}]"),
                     -EINVAL);
        ASSERT_STR_CONTAINS(dur_client_error_message(c), "priority");
        q = describe_queue(c, WF_QUEUE);
        ASSERT_EQ(jget(q, "activity_tasks", "backlog"), 0);
        json_decref(q);
        dur_client_free(c);
}

static void ctl_fails(const char *const *argv, int want_exit, const char *needle) {
        TestRun r = {};

        ASSERT_EQ(test_run(&r, argv, NULL), want_exit);
        ASSERT_STR_CONTAINS(r.err, needle);
        test_run_free(&r);
}

TEST(durablectl_task_queue_and_priority_key) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        const char *ctl = test_bin("DURABLECTL_BIN");
        json_t *j;
        TestRun r = {};
        dur_client *c;

        test_daemon_start(&d, NULL);
        /* Usage errors: exit status 2, before connecting. */
        ctl_fails(STRV(ctl, "task-queue", "config", "q", "--concurrency", "x"), 2, "--concurrency");
        ctl_fails(STRV(ctl, "task-queue", "config", "q", "--rate", "5/fortnight"), 2, "--rate");
        ctl_fails(STRV(ctl, "task-queue", "config", "q", "--rate", "5/1us"), 2, "--rate");
        ctl_fails(STRV(ctl, "task-queue", "config", "q", "--burst", "0"), 2, "--burst");
        ctl_fails(STRV(ctl, "task-queue", "frobnicate", "q"), 2, "config or describe");
        ctl_fails(STRV(ctl, "task-queue", "describe", "q", "--concurrency", "2"), 2,
                  "task-queue config");
        ctl_fails(STRV(ctl, "start", "Flow", "--id", "x", "--task-queue", WF_QUEUE,
                       "--priority-key", "6"),
                  2, "--priority-key");
        ctl_fails(STRV(ctl, "start", "Flow", "--id", "x", "--task-queue", WF_QUEUE,
                       "--fairness-weight", "0"),
                  2, "--fairness-weight");
        ctl_fails(STRV(ctl, "start", "Flow", "--id", "x", "--task-queue", WF_QUEUE,
                       "--fairness-weight", "much"),
                  2, "--fairness-weight");

        ASSERT_EQ(test_run(&r,
                           STRV(ctl, "task-queue", "config", "ctl-q", "--concurrency", "4",
                                "--rate", "10/2s", "--burst", "2"),
                           NULL),
                  0);
        ASSERT_STR_CONTAINS(r.out, "at most 4 activities at once");
        ASSERT_STR_CONTAINS(r.out, "10 per 2s, burst 2");
        test_run_free(&r);
        ASSERT_EQ(test_run(&r, STRV(ctl, "--json", "task-queue", "describe", "ctl-q"), NULL), 0);
        j = ASSERT_NOT_NULL(json_loads(r.out, 0, NULL));
        ASSERT_EQ(jget(j, "limits", "concurrency_limit"), 4);
        ASSERT_EQ(jget(j, "limits", "rate_period_usec"), 2 * TEST_USEC_PER_SEC);
        ASSERT_EQ(jget(j, "activity_tasks", "backlog"), 0);
        json_decref(j);
        test_run_free(&r);
        ASSERT_EQ(test_run(&r,
                           STRV(ctl, "task-queue", "config", "ctl-q", "--key", "tenant-7",
                                "--concurrency", "2", "--rate", "3/1s", "--burst", "3"),
                           NULL),
                  0);
        ASSERT_STR_CONTAINS(r.out, "tenant-7: 0 running");
        ASSERT_STR_CONTAINS(r.out, "at most 2 activities at once");
        test_run_free(&r);
        ASSERT_EQ(test_run(&r,
                           STRV(ctl, "task-queue", "config", "ctl-q", "--activity-type", "resize",
                                "--concurrency", "5"),
                           NULL),
                  0);
        ASSERT_STR_CONTAINS(r.out, "Activity type");
        test_run_free(&r);
        ASSERT_EQ(test_run(&r, STRV(ctl, "--json", "task-queue", "describe", "ctl-q"), NULL), 0);
        j = ASSERT_NOT_NULL(json_loads(r.out, 0, NULL));
        ASSERT_EQ(json_array_size(json_object_get(j, "scoped_limits")), 2);
        ASSERT_EQ(jget(j, "limits", "concurrency_limit"), 4); /* the queue's own: unchanged */
        json_decref(j);
        test_run_free(&r);
        ctl_fails(STRV(ctl, "task-queue", "config", "ctl-q", "--key", "a", "--activity-type", "b"),
                  2, "at most one");

        ASSERT_EQ(test_run(&r,
                           STRV(ctl, "start", "Flow", "--id", "ctl-prio", "--task-queue", WF_QUEUE,
                                "--priority-key", "1", "--fairness-key", "tenant-7",
                                "--fairness-weight", "2.5"),
                           NULL),
                  0);
        test_run_free(&r);
        ASSERT_EQ(test_run(&r,
                           STRV(ctl, "start", "Flow", "--id", "ctl-prio", "--task-queue", WF_QUEUE,
                                "--id-conflict-policy", "queue"),
                           NULL),
                  0);
        ASSERT_STR_CONTAINS(r.out, "queued");
        test_run_free(&r);
        ctl_fails(STRV(ctl, "start", "Flow", "--id", "x", "--task-queue", WF_QUEUE,
                       "--id-conflict-policy", "Later"),
                  2, "Queue");
        c = client_connect();
        j = history_get(c, "ctl-prio");
        ASSERT_EQ(ev_uint(history_must(j, "WorkflowExecutionStarted"), "priority"), 1);
        ASSERT_STREQ(ev_str(history_must(j, "WorkflowExecutionStarted"), "fairness_key"),
                     "tenant-7");
        ASSERT_TRUE(
                json_real_value(json_object_get(
                        json_object_get(history_must(j, "WorkflowExecutionStarted"), "attributes"),
                        "fairness_weight")) == 2.5);
        json_decref(j);
        j = describe_queue(c, WF_QUEUE);
        ASSERT_EQ(json_integer_value(
                          json_array_get(json_object_get(json_object_get(j, "workflow_tasks"),
                                                         "backlog_by_priority"),
                                         0)),
                  1);
        json_decref(j);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
