/* Tests of the replay engine (libclient/replay.h) on synthetic histories.
 *
 * A small simulated daemon (Sim) plays the other side: it appends the events the daemon would
 * append for the commands a task produced (WorkflowTaskCompleted, then one event per command),
 * the external events a test asks for (results, timer firings, signals, cancel requests), and
 * WorkflowTaskScheduled/Started for the next task. The run under test is sticky (it gets only the
 * new events, as from the worker's cache); every task is also replayed from scratch by a fresh
 * run, which must produce exactly the same command bytes. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libclient/buf.h"
#include "libclient/object.h"
#include "libclient/replay.h"
#include "proto/event.h"
#include "proto/msg.h"
#include "tests/lib/test.h"

#define EVENTS_MAX 128
#define T0 ((uint64_t) 1700000000 * DUR_SEC)

/* ---- the simulated daemon -------------------------------------------------------------------- */

typedef struct Sim {
        const dur_workflow_def *def;
        const char *run_id;
        char *ev[EVENTS_MAX]; /* packed events; event id = index + 1 */
        size_t ev_size[EVENTS_MAX];
        size_t n;
        uint64_t time;
        Run *run;
        size_t seen;            /* events already given to the sticky run */
        msgpack_unpacked batch; /* the events array last handed over */
        msgpack_sbuffer out;    /* the last task's commands */
        msgpack_unpacked cmds;
        msgpack_zone zone; /* decoded payloads for assertions */
        bool activities_started; /* RequestCancelActivityTask finds them running: no
                                  * ActivityTaskCanceled until the test appends one */
} Sim;

/* Appends an event. @fmt has one letter per attribute, each taking a key and a value:
 * s (const char *), u (uint64_t), p (dur_buf *, packed as a payload and freed),
 * f (const char *: a failure with that message), o (const msgpack_object *, packed as it is;
 * NULL packs nil). */
static uint64_t sim_event(Sim *s, EventType type, const char *fmt, ...) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        va_list ap;

        ASSERT_LT(s->n, (size_t) EVENTS_MAX);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 4);
        msg_pack_kv_uint(&pk, "event_id", s->n + 1);
        msg_pack_kv_str(&pk, "event_type", event_type_to_string(type));
        msg_pack_kv_uint(&pk, "time", s->time);
        msg_pack_str(&pk, "attributes");
        msgpack_pack_map(&pk, strlen(fmt));
        va_start(ap, fmt);
        for (const char *f = fmt; *f; f++) {
                const char *key = va_arg(ap, const char *);
                dur_buf *b;

                switch (*f) {
                case 's':
                        msg_pack_kv_str(&pk, key, va_arg(ap, const char *));
                        break;
                case 'u':
                        msg_pack_kv_uint(&pk, key, va_arg(ap, uint64_t));
                        break;
                case 'p':
                        b = va_arg(ap, dur_buf *);
                        ASSERT_NOT_NULL(b);
                        msg_pack_kv_bin(&pk, key, b->data, b->size);
                        dur_buf_free(b);
                        break;
                case 'o': {
                        const msgpack_object *o = va_arg(ap, const msgpack_object *);

                        msg_pack_str(&pk, key);
                        if (o)
                                msgpack_pack_object(&pk, *o);
                        else
                                msgpack_pack_nil(&pk);
                        break;
                }
                case 'f':
                        msg_pack_str(&pk, key);
                        msgpack_pack_map(&pk, 3);
                        msg_pack_kv_str(&pk, "message", va_arg(ap, const char *));
                        msg_pack_kv_str(&pk, "type", "ApplicationError");
                        msg_pack_kv_bool(&pk, "non_retryable", false);
                        break;
                default:
                        test_fail(__FILE__, __LINE__, "bad sim_event format '%c'", *f);
                }
        }
        va_end(ap);
        s->ev_size[s->n] = sb.size;
        s->ev[s->n++] = msgpack_sbuffer_release(&sb);
        return s->n;
}

static void sim_new_task(Sim *s) {
        uint64_t sched;

        s->time += DUR_SEC;
        sched = sim_event(s, EVENT_WORKFLOW_TASK_SCHEDULED, "su", "task_queue", "q", "attempt",
                          (uint64_t) 1);
        sim_event(s, EVENT_WORKFLOW_TASK_STARTED, "u", "scheduled_event_id", sched);
}

static void sim_init(Sim *s, const dur_workflow_def *def, const char *run_id, dur_buf *input) {
        *s = (Sim){ .def = def, .run_id = run_id, .time = T0 };
        msgpack_unpacked_init(&s->batch);
        msgpack_unpacked_init(&s->cmds);
        msgpack_sbuffer_init(&s->out);
        ASSERT_TRUE(msgpack_zone_init(&s->zone, 1024));
        if (input)
                sim_event(s, EVENT_WORKFLOW_EXECUTION_STARTED, "sssp", "workflow_id", "wf-1",
                          "workflow_type", def->name, "task_queue", "q", "input", input);
        else
                sim_event(s, EVENT_WORKFLOW_EXECUTION_STARTED, "sss", "workflow_id", "wf-1",
                          "workflow_type", def->name, "task_queue", "q");
        sim_new_task(s);
        ASSERT_OK(run_new(&s->run, def, "wf-1", run_id));
}

static void sim_done(Sim *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->ev[i]);
        run_free(s->run);
        msgpack_unpacked_destroy(&s->batch);
        msgpack_unpacked_destroy(&s->cmds);
        msgpack_sbuffer_destroy(&s->out);
        msgpack_zone_destroy(&s->zone);
}

/* Events [from, to) (0-based) as one msgpack array, decoded into @ret. */
static void sim_array(Sim *s, size_t from, size_t to, msgpack_unpacked *ret) {
        msgpack_object copy;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        size_t off = 0;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, to - from);
        for (size_t i = from; i < to; i++)
                msg_pack_raw(&pk, s->ev[i], s->ev_size[i]);
        msgpack_unpacked_destroy(ret);
        msgpack_unpacked_init(ret);
        ASSERT_EQ(msgpack_unpack_next(ret, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
        /* The unpacked strings point into @sb: copy them into the unpacked's zone first. */
        ASSERT_OK(object_copy(&ret->data, ret->zone, &copy));
        ret->data = copy;
        msgpack_sbuffer_destroy(&sb);
}

/* Replays the whole history on a fresh run, as a worker without a cache would. */
static int replay_fresh(Sim *s, bool current, msgpack_sbuffer *out, Run **ret) {
        msgpack_unpacked all;
        Run *r;
        int k;

        msgpack_unpacked_init(&all);
        sim_array(s, 0, s->n, &all);
        ASSERT_OK(run_new(&r, s->def, "wf-1", s->run_id));
        k = run_apply_events(r, &all.data, current, out);
        msgpack_unpacked_destroy(&all);
        if (ret)
                *ret = r;
        else
                run_free(r);
        return k;
}

/* Hands the new events to the sticky run as a workflow task; checks that a from-scratch replay
 * answers the same bytes. Returns run_apply_events()'s result. */
static int sim_task(Sim *s) {
        msgpack_sbuffer fresh;
        size_t off = 0;
        int k, kf;

        sim_array(s, s->seen, s->n, &s->batch);
        s->seen = s->n;
        msgpack_sbuffer_clear(&s->out);
        k = run_apply_events(s->run, &s->batch.data, true, &s->out);
        msgpack_sbuffer_init(&fresh);
        kf = replay_fresh(s, true, &fresh, NULL);
        ASSERT_EQ(k, kf);
        if (k >= 0) {
                ASSERT_EQ(fresh.size, s->out.size);
                ASSERT_TRUE(memcmp(fresh.data, s->out.data, fresh.size) == 0);
                msgpack_unpacked_destroy(&s->cmds);
                msgpack_unpacked_init(&s->cmds);
                ASSERT_EQ(msgpack_unpack_next(&s->cmds, s->out.data, s->out.size, &off),
                          MSGPACK_UNPACK_SUCCESS);
                ASSERT_EQ(s->cmds.data.type, MSGPACK_OBJECT_ARRAY);
        }
        msgpack_sbuffer_destroy(&fresh);
        return k;
}

static size_t cmd_count(Sim *s) {
        return s->cmds.data.via.array.size;
}

static const msgpack_object *cmd(Sim *s, size_t i) {
        ASSERT_LT(i, cmd_count(s));
        return &s->cmds.data.via.array.ptr[i];
}

static bool cmd_is(Sim *s, size_t i, const char *type) {
        return msg_str_eq(msg_get(cmd(s, i), "command_type"), type);
}

static const msgpack_object *cmd_attr(Sim *s, size_t i, const char *key) {
        return msg_get(msg_get(cmd(s, i), "attributes"), key);
}

static bool cmd_attr_is(Sim *s, size_t i, const char *key, const char *value) {
        return msg_str_eq(cmd_attr(s, i, key), value);
}

static uint64_t cmd_attr_uint(Sim *s, size_t i, const char *key) {
        const msgpack_object *v = ASSERT_NOT_NULL(cmd_attr(s, i, key));

        ASSERT_EQ(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        return v->via.u64;
}

/* The payload attribute @key of command @i, decoded. */
static msgpack_object cmd_payload(Sim *s, size_t i, const char *key) {
        const msgpack_object *v = ASSERT_NOT_NULL(cmd_attr(s, i, key));
        msgpack_object o;

        ASSERT_EQ(v->type, MSGPACK_OBJECT_BIN);
        ASSERT_OK(object_from_payload(v->via.bin.ptr, v->via.bin.size, &s->zone, &o));
        return o;
}

static uint64_t find_event(Sim *s, EventType type, const char *key, const char *value) {
        msgpack_unpacked u;
        uint64_t id = 0;

        msgpack_unpacked_init(&u);
        for (size_t i = 0; i < s->n && id == 0; i++) {
                size_t off = 0;

                ASSERT_EQ(msgpack_unpack_next(&u, s->ev[i], s->ev_size[i], &off),
                          MSGPACK_UNPACK_SUCCESS);
                if (msg_str_eq(msg_get(&u.data, "event_type"), event_type_to_string(type)) &&
                    msg_str_eq(msg_get(msg_get(&u.data, "attributes"), key), value))
                        id = i + 1;
        }
        msgpack_unpacked_destroy(&u);
        ASSERT_NE(id, 0u);
        return id;
}

/* What the daemon appends when the last task completes with its commands. */
static void sim_complete(Sim *s) {
        uint64_t completed = sim_event(s, EVENT_WORKFLOW_TASK_COMPLETED, "u", "scheduled_event_id",
                                       (uint64_t) s->n - 1);

        for (size_t i = 0; i < cmd_count(s); i++) {
                const msgpack_object *a = msg_get(cmd(s, i), "attributes");
                char id[32] = "", type[64] = "";
                const msgpack_object *v;

                if ((v = msg_get(a, "activity_id")) || (v = msg_get(a, "timer_id")))
                        snprintf(id, sizeof(id), "%.*s", (int) v->via.str.size, v->via.str.ptr);
                if ((v = msg_get(a, "activity_type")))
                        snprintf(type, sizeof(type), "%.*s", (int) v->via.str.size, v->via.str.ptr);
                if (cmd_is(s, i, "ScheduleActivityTask"))
                        sim_event(s, EVENT_ACTIVITY_TASK_SCHEDULED, "ssu", "activity_id", id,
                                  "activity_type", type, "workflow_task_completed_event_id",
                                  completed);
                else if (cmd_is(s, i, "StartTimer"))
                        sim_event(s, EVENT_TIMER_STARTED, "suu", "timer_id", id,
                                  "start_to_fire_usec", cmd_attr_uint(s, i, "start_to_fire_usec"),
                                  "workflow_task_completed_event_id", completed);
                else if (cmd_is(s, i, "CancelTimer"))
                        sim_event(s, EVENT_TIMER_CANCELED, "su", "timer_id", id,
                                  "workflow_task_completed_event_id", completed);
                else if (cmd_is(s, i, "RequestCancelActivityTask")) {
                        uint64_t sched = cmd_attr_uint(s, i, "scheduled_event_id");
                        /* Not started yet: the daemon cancels it at once. */
                        sim_event(s, EVENT_ACTIVITY_TASK_CANCEL_REQUESTED, "uu",
                                  "scheduled_event_id", sched, "workflow_task_completed_event_id",
                                  completed);
                        if (!s->activities_started)
                                sim_event(s, EVENT_ACTIVITY_TASK_CANCELED, "u",
                                          "scheduled_event_id", sched);
                } else if (cmd_is(s, i, "RecordMarker"))
                        sim_event(s, EVENT_MARKER_RECORDED, "ooou", "marker_name",
                                  cmd_attr(s, i, "marker_name"), "marker_id",
                                  cmd_attr(s, i, "marker_id"), "details", cmd_attr(s, i, "details"),
                                  "workflow_task_completed_event_id", completed);
                else if (cmd_is(s, i, "UpsertWorkflowSearchAttributes"))
                        sim_event(s, EVENT_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, "ou",
                                  "search_attributes", cmd_attr(s, i, "search_attributes"),
                                  "workflow_task_completed_event_id", completed);
                else if (cmd_is(s, i, "CompleteWorkflowExecution"))
                        sim_event(s, EVENT_WORKFLOW_EXECUTION_COMPLETED, "u",
                                  "workflow_task_completed_event_id", completed);
                else if (cmd_is(s, i, "FailWorkflowExecution"))
                        sim_event(s, EVENT_WORKFLOW_EXECUTION_FAILED, "u",
                                  "workflow_task_completed_event_id", completed);
                else if (cmd_is(s, i, "CancelWorkflowExecution"))
                        sim_event(s, EVENT_WORKFLOW_EXECUTION_CANCELED, "u",
                                  "workflow_task_completed_event_id", completed);
                else if (cmd_is(s, i, "CompleteWorkflowUpdate")) {
                        v = cmd_attr(s, i, "update_id");
                        snprintf(id, sizeof(id), "%.*s", (int) v->via.str.size, v->via.str.ptr);
                        sim_event(s, EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED, "suu", "update_id",
                                  id, "accepted_event_id",
                                  find_event(s, EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                                             "update_id", id),
                                  "workflow_task_completed_event_id", completed);
                } else
                        test_fail(__FILE__, __LINE__, "unexpected command %zu", i);
        }
}

static void sim_activity_completed(Sim *s, const char *activity_id, dur_buf *result) {
        uint64_t sched = find_event(s, EVENT_ACTIVITY_TASK_SCHEDULED, "activity_id", activity_id);
        uint64_t started = sim_event(s, EVENT_ACTIVITY_TASK_STARTED, "uu", "scheduled_event_id",
                                     sched, "attempt", (uint64_t) 1);

        if (result)
                sim_event(s, EVENT_ACTIVITY_TASK_COMPLETED, "uup", "scheduled_event_id", sched,
                          "started_event_id", started, "result", result);
        else
                sim_event(s, EVENT_ACTIVITY_TASK_COMPLETED, "uu", "scheduled_event_id", sched,
                          "started_event_id", started);
}

static void sim_activity_failed(Sim *s, const char *activity_id, const char *message) {
        uint64_t sched = find_event(s, EVENT_ACTIVITY_TASK_SCHEDULED, "activity_id", activity_id);
        uint64_t started = sim_event(s, EVENT_ACTIVITY_TASK_STARTED, "uu", "scheduled_event_id",
                                     sched, "attempt", (uint64_t) 3);

        sim_event(s, EVENT_ACTIVITY_TASK_FAILED, "uufs", "scheduled_event_id", sched,
                  "started_event_id", started, "failure", message, "retry_state",
                  "MaximumAttemptsReached");
}

static void sim_timer_fired(Sim *s, const char *timer_id) {
        uint64_t started = find_event(s, EVENT_TIMER_STARTED, "timer_id", timer_id);

        sim_event(s, EVENT_TIMER_FIRED, "su", "timer_id", timer_id, "started_event_id", started);
}

/* Completes the last task, adds @what's events (a callback), and runs the next task. */
#define NEXT_TASK(s, ...)        \
        ({                       \
                sim_complete(s); \
                __VA_ARGS__;     \
                sim_new_task(s); \
                sim_task(s);     \
        })

/* ---- workflows under test -------------------------------------------------------------------- */

typedef struct OrderState {
        const char *status;
        const char *order_id;
        const char *by;
        bool approved;
        uint64_t t0, t1;
        int wait_result;
} OrderState;

static const dur_activity_opts quick = {
        .start_to_close = 30 * DUR_SEC,
        .retry = { .maximum_attempts = 3, .initial_interval = DUR_SEC },
};

static int seq_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        OrderState *o = dur_wf_state(wf, sizeof(*o));
        const msgpack_object *res;
        const char *item = NULL;

        DUR_TRY(dur_unpack(in, "{s:s}", "item", &item));
        o->status = "creating";
        DUR_TRY(dur_execute_activity(wf, "create_order", dur_args("{s:s}", "item", item), &quick,
                                     &res));
        DUR_TRY(dur_unpack(res, "{s:s}", "order_id", &o->order_id));
        o->status = "charging";
        DUR_TRY(dur_execute_activity(wf, "charge", dur_args("{s:s}", "order_id", o->order_id), NULL,
                                     NULL));
        o->status = "done";
        return dur_pack(out, "{s:s}", "order_id", o->order_id);
}

static int q_status(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        OrderState *o = dur_wf_state(wf, sizeof(*o));

        return dur_pack(out, "s", o->status ? o->status : "none");
}

static int q_blocks(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        return dur_sleep(wf, DUR_SEC);
}

static const dur_workflow_def seq_wf = {
        .name = "Seq",
        .run = seq_run,
        .queries = DUR_QUERIES({ "get_status", q_status }, { "blocker", q_blocks }),
};

TEST(sequential_activities) {
        Sim s;
        msgpack_object o;
        const char *id = NULL;

        sim_init(&s, &seq_wf, "run-seq", dur_args("{s:s}", "item", "book"));
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "ScheduleActivityTask"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_id", "1"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "create_order"));
        ASSERT_EQ(cmd_attr_uint(&s, 0, "start_to_close_usec"), 30 * DUR_SEC);
        ASSERT_NULL(cmd_attr(&s, 0, "schedule_to_close_usec"));
        ASSERT_EQ(msg_get(cmd_attr(&s, 0, "retry_policy"), "maximum_attempts")->via.u64, 3u);
        o = cmd_payload(&s, 0, "input");
        ASSERT_OK(dur_unpack(&o, "{s:s}", "item", &id));
        ASSERT_STREQ(id, "book");

        ASSERT_OK(NEXT_TASK(&s,
                            sim_activity_completed(&s, "1", dur_args("{s:s}", "order_id", "o-7"))));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_id", "2"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "charge"));
        ASSERT_NULL(cmd_attr(&s, 0, "start_to_close_usec"));

        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "2", NULL)));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "CompleteWorkflowExecution"));
        o = cmd_payload(&s, 0, "result");
        ASSERT_OK(dur_unpack(&o, "{s:s}", "order_id", &id));
        ASSERT_STREQ(id, "o-7");
        ASSERT_TRUE(run_closed(s.run));
        sim_done(&s);
}

TEST(activity_failure_fails_run) {
        Sim s;
        const msgpack_object *f;

        sim_init(&s, &seq_wf, "run-fail", dur_args("{s:s}", "item", "x"));
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(&s, sim_activity_failed(&s, "1", "out of stock")));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "FailWorkflowExecution"));
        f = ASSERT_NOT_NULL(cmd_attr(&s, 0, "failure"));
        ASSERT_TRUE(msg_str_eq(msg_get(f, "message"), "out of stock"));
        sim_done(&s);
}

TEST(query) {
        Sim s;
        msgpack_sbuffer res;
        msgpack_unpacked u;
        Run *fresh;
        size_t off = 0;

        sim_init(&s, &seq_wf, "run-q", dur_args("{s:s}", "item", "pen"));
        ASSERT_OK(sim_task(&s));
        msgpack_sbuffer_init(&res);
        ASSERT_OK(run_query(s.run, "get_status", NULL, 0, &res));
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, res.data, res.size, &off), MSGPACK_UNPACK_SUCCESS);
        ASSERT_TRUE(msg_str_eq(&u.data, "creating"));

        ASSERT_ERROR(run_query(s.run, "nope", NULL, 0, &res), -ENOENT);
        ASSERT_STREQ(run_error_message(s.run),
                     "unknown query type 'nope' (known: get_status, blocker, __stack_trace)");
        ASSERT_ERROR(run_query(s.run, "blocker", NULL, 0, &res), -EPROTO);
        ASSERT_STR_CONTAINS(run_error_message(s.run), "must not block");

        /* A query task on a worker without the run: the task in flight (trailing
         * WorkflowTaskStarted) is not executed, the completed ones are. */
        sim_complete(&s);
        sim_activity_completed(&s, "1", dur_args("{s:s}", "order_id", "o-1"));
        sim_new_task(&s);
        ASSERT_OK(replay_fresh(&s, false, NULL, &fresh));
        msgpack_sbuffer_clear(&res);
        ASSERT_OK(run_query(fresh, "get_status", NULL, 0, &res));
        off = 0;
        ASSERT_EQ(msgpack_unpack_next(&u, res.data, res.size, &off), MSGPACK_UNPACK_SUCCESS);
        ASSERT_TRUE(msg_str_eq(&u.data, "creating"));
        /* ... and the same run then executes that task when it arrives. */
        ASSERT_EQ(run_next_event_id(fresh), s.n);
        run_free(fresh);

        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&res);
        sim_done(&s);
}

static int par_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        dur_future *a = dur_start_activity(wf, "pay", NULL, &quick);
        dur_future *b = dur_start_activity(wf, "reserve", NULL, &quick);

        DUR_TRY(DUR_AWAIT_ALL(wf, a, b));
        return dur_pack(out, "[o o]", dur_future_result(a), dur_future_result(b));
}

static const dur_workflow_def par_wf = { .name = "Par", .run = par_run };

TEST(parallel_activities) {
        Sim s;
        msgpack_object o;
        const char *x = NULL, *y = NULL;

        sim_init(&s, &par_wf, "run-par", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "pay"));
        ASSERT_TRUE(cmd_attr_is(&s, 1, "activity_type", "reserve"));
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "2", dur_args("s", "reserved"))));
        ASSERT_EQ(cmd_count(&s), 0u);
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "1", dur_args("s", "paid"))));
        ASSERT_EQ(cmd_count(&s), 1u);
        o = cmd_payload(&s, 0, "result");
        ASSERT_OK(dur_unpack(&o, "[s s]", &x, &y));
        ASSERT_STREQ(x, "paid");
        ASSERT_STREQ(y, "reserved");
        sim_done(&s);
}

static int timer_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        uint64_t t0 = dur_now(wf);

        DUR_TRY(dur_sleep(wf, 10 * DUR_SEC));
        return dur_pack(out, "U", dur_now(wf) - t0);
}

static const dur_workflow_def timer_wf = { .name = "Timer", .run = timer_run };

TEST(timer) {
        Sim s;
        msgpack_object o;

        sim_init(&s, &timer_wf, "run-timer", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "StartTimer"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "timer_id", "1"));
        ASSERT_EQ(cmd_attr_uint(&s, 0, "start_to_fire_usec"), 10 * DUR_SEC);
        ASSERT_OK(NEXT_TASK(&s, (s.time += 10 * DUR_SEC, sim_timer_fired(&s, "1"))));
        ASSERT_EQ(cmd_count(&s), 1u);
        o = cmd_payload(&s, 0, "result");
        ASSERT_EQ(o.via.u64, 11 * DUR_SEC); /* dur_now() is the task's start time */
        sim_done(&s);
}

/* ---- signals and conditions ------------------------------------------------------------------ */

static bool approved(dur_wf *wf, void *arg) {
        OrderState *o = dur_wf_state(wf, sizeof(*o));

        return o->approved;
}

static int approve_signal(dur_wf *wf, const msgpack_object *args) {
        OrderState *o = dur_wf_state(wf, sizeof(*o));

        DUR_TRY(dur_unpack(args, "{s:s}", "by", &o->by));
        DUR_TRY(dur_execute_activity(wf, "notify", NULL, &quick, NULL)); /* blocks */
        o->approved = true;
        return 0;
}

static int quick_signal(dur_wf *wf, const msgpack_object *args) {
        OrderState *o = dur_wf_state(wf, sizeof(*o));

        o->approved = true;
        return 0;
}

static int approval_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        OrderState *o = dur_wf_state(wf, sizeof(*o));
        int r;

        r = dur_wait_condition(wf, approved, NULL, DUR_HOUR);
        if (r < 0)
                return r;
        return dur_pack(out, "{s:b s:s}", "approved", r, "by", o->by ? o->by : "");
}

static const dur_workflow_def approval_wf = {
        .name = "Approval",
        .run = approval_run,
        .signals = DUR_SIGNALS({ "approve", approve_signal }, { "quick", quick_signal }),
};

TEST(signal_handler_blocks) {
        Sim s;
        msgpack_object o;
        const char *by = NULL;
        bool ok = false;

        sim_init(&s, &approval_wf, "run-sig", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "StartTimer"));
        ASSERT_OK(NEXT_TASK(
                &s,
                (sim_event(&s, EVENT_WORKFLOW_EXECUTION_SIGNALED, "sp", "signal_name", "approve",
                           "input", dur_args("{s:s}", "by", "bob")),
                 sim_event(&s, EVENT_WORKFLOW_EXECUTION_SIGNALED, "s", "signal_name", "unknown"))));
        /* The handler waits for its activity; the main function still waits. */
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "notify"));
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "1", NULL)));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_is(&s, 0, "CancelTimer"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "timer_id", "1"));
        ASSERT_TRUE(cmd_is(&s, 1, "CompleteWorkflowExecution"));
        o = cmd_payload(&s, 1, "result");
        ASSERT_OK(dur_unpack(&o, "{s:b s:s}", "approved", &ok, "by", &by));
        ASSERT_TRUE(ok);
        ASSERT_STREQ(by, "bob");
        sim_done(&s);
}

/* Update "approve": its validator wants a "by"; its handler blocks on an activity. */
static int approve_update_validate(dur_wf *wf, const msgpack_object *args) {
        const char *by = NULL;

        if (dur_unpack(args, "{s:s}", "by", &by) < 0)
                return dur_fail(wf, "NoApprover", true, "who approves?");
        return 0;
}

static int approve_update(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        OrderState *o = dur_wf_state(wf, sizeof(*o));

        DUR_TRY(dur_unpack(args, "{s:s}", "by", &o->by));
        DUR_TRY(dur_execute_activity(wf, "notify", NULL, &quick, NULL)); /* blocks */
        o->approved = true;
        return dur_pack(out, "{s:s}", "approved_by", o->by);
}

static const dur_workflow_def update_wf = {
        .name = "ApprovalByUpdate",
        .run = approval_run,
        .updates = DUR_UPDATES({ "approve", approve_update, approve_update_validate }),
};

TEST(update_handler_blocks_and_completes) {
        dur_buf *good = dur_args("{s:s}", "by", "ann"), *bad = dur_args("{s:i}", "n", 1);
        msgpack_object o;
        const char *by = NULL;
        Run *fresh;
        Sim s;

        sim_init(&s, &update_wf, "run-upd", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_TRUE(cmd_is(&s, 0, "StartTimer"));
        /* The validator, on the current state: nothing is issued. */
        ASSERT_OK(run_validate_update(s.run, "approve", good->data, good->size));
        ASSERT_ERROR(run_validate_update(s.run, "approve", bad->data, bad->size), -EPROTO);
        ASSERT_STREQ(run_error_message(s.run), "who approves?");
        ASSERT_NULL(dur_wf_failure(s.run)); /* the rejection's failure left no trace */
        ASSERT_ERROR(run_validate_update(s.run, "nope", NULL, 0), -ENOENT);
        ASSERT_STREQ(run_error_message(s.run), "unknown update 'nope' (known: approve)");

        ASSERT_OK(NEXT_TASK(&s, sim_event(&s, EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, "ssp",
                                          "update_id", "u-1", "update_name", "approve", "input",
                                          good)));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "notify"));
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "1", NULL)));
        /* The handler's completion first, then the main function that waited for it. */
        ASSERT_EQ(cmd_count(&s), 3u);
        ASSERT_TRUE(cmd_is(&s, 0, "CompleteWorkflowUpdate"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "update_id", "u-1"));
        o = cmd_payload(&s, 0, "result");
        ASSERT_OK(dur_unpack(&o, "{s:s}", "approved_by", &by));
        ASSERT_STREQ(by, "ann");
        ASSERT_TRUE(cmd_is(&s, 1, "CancelTimer"));
        ASSERT_TRUE(cmd_is(&s, 2, "CompleteWorkflowExecution"));
        /* The whole history, WorkflowExecutionUpdateCompleted included, replays cleanly. */
        sim_complete(&s);
        ASSERT_OK(replay_fresh(&s, false, NULL, &fresh));
        ASSERT_TRUE(run_closed(fresh));
        run_free(fresh);
        dur_buf_free(bad);
        sim_done(&s);
}

TEST(wait_condition_timeout) {
        Sim s;
        msgpack_object o;
        bool ok = true;
        const char *by = NULL;

        sim_init(&s, &approval_wf, "run-to", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(&s, sim_timer_fired(&s, "1")));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "CompleteWorkflowExecution"));
        o = cmd_payload(&s, 0, "result");
        ASSERT_OK(dur_unpack(&o, "{s:b s:s}", "approved", &ok, "by", &by));
        ASSERT_FALSE(ok);
        sim_done(&s);
}

TEST(wait_condition_met) {
        Sim s;
        msgpack_object o;
        bool ok = false;
        const char *by = NULL;

        sim_init(&s, &approval_wf, "run-met", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(
                &s, sim_event(&s, EVENT_WORKFLOW_EXECUTION_SIGNALED, "s", "signal_name", "quick")));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_is(&s, 0, "CancelTimer"));
        ASSERT_TRUE(cmd_is(&s, 1, "CompleteWorkflowExecution"));
        o = cmd_payload(&s, 1, "result");
        ASSERT_OK(dur_unpack(&o, "{s:b s:s}", "approved", &ok, "by", &by));
        ASSERT_TRUE(ok);
        sim_done(&s);
}

/* ---- cancellation ---------------------------------------------------------------------------- */

static int cancel_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        int r = dur_execute_activity(wf, "long", NULL, &quick, NULL);

        if (r != DUR_CANCELED)
                return r;
        /* Compensation after the cancel request: activities work again. */
        DUR_TRY(dur_execute_activity(wf, "cleanup", NULL, &quick, NULL));
        return DUR_CANCELED;
}

static const dur_workflow_def cancel_wf = { .name = "Cancel", .run = cancel_run };

TEST(cancel_request) {
        Sim s;
        uint64_t sched;

        sim_init(&s, &cancel_wf, "run-cancel", NULL);
        ASSERT_OK(sim_task(&s));
        sched = s.n + 2; /* WorkflowTaskCompleted, then ActivityTaskScheduled */
        ASSERT_OK(NEXT_TASK(&s, sim_event(&s, EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED, "s",
                                          "reason", "user")));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_is(&s, 0, "RequestCancelActivityTask"));
        ASSERT_EQ(cmd_attr_uint(&s, 0, "scheduled_event_id"), sched);
        ASSERT_TRUE(cmd_is(&s, 1, "ScheduleActivityTask"));
        ASSERT_TRUE(cmd_attr_is(&s, 1, "activity_type", "cleanup"));
        /* The daemon appended ActivityTaskCanceled for "long": a late outcome, ignored. */
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "2", NULL)));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "CancelWorkflowExecution"));
        sim_done(&s);
}

TEST(cancel_before_first_task) {
        Sim s;

        /* Cancelled before any code ran: the first blocking call sees it and its activity is
         * never scheduled. */
        sim_init(&s, &cancel_wf, "run-cancel0", NULL);
        s.n -= 1; /* drop WorkflowTaskStarted, then put it after the cancel request */
        free(s.ev[s.n]);
        sim_event(&s, EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED, "s", "reason", "user");
        sim_event(&s, EVENT_WORKFLOW_TASK_STARTED, "u", "scheduled_event_id", (uint64_t) 2);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "cleanup"));
        sim_done(&s);
}

/* ---- non-determinism and stale runs ---------------------------------------------------------- */

static int sleepy_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return dur_sleep(wf, DUR_SEC);
}

static int two_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        dur_future *a = dur_start_activity(wf, "create_order", NULL, NULL);
        dur_future *b = dur_start_activity(wf, "extra", NULL, NULL);

        return DUR_AWAIT_ALL(wf, a, b);
}

static int nothing_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return 0;
}

static void expect_nondeterminism(Sim *s, dur_workflow_fn fn, const char *message) {
        dur_workflow_def def = { .name = "Seq", .run = fn };
        msgpack_sbuffer out;
        msgpack_unpacked all;
        Run *r;

        msgpack_sbuffer_init(&out);
        msgpack_unpacked_init(&all);
        sim_array(s, 0, s->n, &all);
        ASSERT_OK(run_new(&r, &def, "wf-1", s->run_id));
        ASSERT_ERROR(run_apply_events(r, &all.data, true, &out), -EPROTO);
        ASSERT_STREQ(run_error_cause(r), "NonDeterministicError");
        ASSERT_STREQ(run_error_message(r), message);
        ASSERT_EQ(out.size, 0u);
        run_free(r);
        msgpack_unpacked_destroy(&all);
        msgpack_sbuffer_destroy(&out);
}

TEST(nondeterminism) {
        Sim s;

        sim_init(&s, &seq_wf, "run-nd", dur_args("{s:s}", "item", "x"));
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(
                NEXT_TASK(&s, sim_activity_completed(&s, "1", dur_args("{s:s}", "order_id", "o"))));
        /* History: 4 WorkflowTaskCompleted, 5 ActivityTaskScheduled, 6-7 started/completed,
         * 8 WorkflowTaskScheduled, 9 WorkflowTaskStarted. */
        expect_nondeterminism(
                &s, sleepy_run,
                "non-deterministic workflow: history event 5 is ActivityTaskScheduled(activity_id=1, type=create_order) but the code issued StartTimer(timer_id=1)");
        expect_nondeterminism(
                &s, nothing_run,
                "non-deterministic workflow: history event 5 is ActivityTaskScheduled(activity_id=1, type=create_order) but the code issued CompleteWorkflowExecution");
        expect_nondeterminism(
                &s, two_run,
                "non-deterministic workflow: history event 8 is WorkflowTaskScheduled but the code issued ScheduleActivityTask(activity_id=2, type=extra)");
        sim_done(&s);
}

TEST(stale_run_and_gap) {
        Sim s;
        msgpack_unpacked tail;

        sim_init(&s, &seq_wf, "run-stale", dur_args("{s:s}", "item", "x"));
        ASSERT_OK(sim_task(&s));
        /* The task we answered timed out instead of completing. */
        sim_event(&s, EVENT_WORKFLOW_TASK_TIMED_OUT, "us", "scheduled_event_id", (uint64_t) 2,
                  "timeout_type", "StartToClose");
        sim_new_task(&s);
        msgpack_unpacked_init(&tail);
        sim_array(&s, s.seen, s.n, &tail);
        msgpack_sbuffer_clear(&s.out);
        ASSERT_ERROR(run_apply_events(s.run, &tail.data, true, &s.out), -ESTALE);
        /* A fresh replay skips the timed-out attempt and executes the new one. */
        run_free(s.run);
        ASSERT_OK(run_new(&s.run, &seq_wf, "wf-1", "run-stale"));
        s.seen = 0;
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_id", "1"));

        /* Events that start after what the run has seen: the worker must fetch the gap. */
        run_free(s.run);
        ASSERT_OK(run_new(&s.run, &seq_wf, "wf-1", "run-stale"));
        sim_array(&s, 2, s.n, &tail);
        ASSERT_ERROR(run_apply_events(s.run, &tail.data, true, &s.out), -ENODATA);
        msgpack_unpacked_destroy(&tail);
        sim_done(&s);
}

/* ---- task failures, spawns, determinism helpers ---------------------------------------------- */

static int odd_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return 42;
}

static int failing_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return dur_fail(wf, "Invalid", true, "bad input %d", 7);
}

TEST(workflow_errors) {
        dur_workflow_def odd = { .name = "Odd", .run = odd_run };
        dur_workflow_def failing = { .name = "Failing", .run = failing_run };
        const msgpack_object *f;
        Sim s;

        sim_init(&s, &odd, "run-odd", NULL);
        ASSERT_ERROR(sim_task(&s), -EPROTO);
        ASSERT_STREQ(run_error_cause(s.run), "WorkflowError");
        ASSERT_STR_CONTAINS(run_error_message(s.run), "returned 42");
        sim_done(&s);

        sim_init(&s, &failing, "run-failing", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_TRUE(cmd_is(&s, 0, "FailWorkflowExecution"));
        f = cmd_attr(&s, 0, "failure");
        ASSERT_TRUE(msg_str_eq(msg_get(f, "message"), "bad input 7"));
        ASSERT_TRUE(msg_str_eq(msg_get(f, "type"), "Invalid"));
        sim_done(&s);
}

static int go_child(dur_wf *wf, void *arg) {
        return dur_execute_activity(wf, arg, NULL, &quick, NULL);
}

static bool never(dur_wf *wf, void *arg) {
        return false;
}

typedef struct Rand {
        uint64_t a;
        char uuid[37];
} Rand;

static int go_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        Rand *st = dur_wf_state(wf, sizeof(*st));

        st->a = dur_random(wf);
        dur_uuid(wf, st->uuid);
        DUR_TRY(dur_go(wf, go_child, "first"));
        DUR_TRY(dur_go(wf, go_child, "second"));
        return dur_wait_condition(wf, never, NULL, 0);
}

static const dur_workflow_def go_wf = { .name = "Go", .run = go_run };

TEST(spawn_order_and_random) {
        Sim s, t;
        Rand *a, *b;

        sim_init(&s, &go_wf, "run-go", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "first"));
        ASSERT_TRUE(cmd_attr_is(&s, 1, "activity_type", "second"));

        sim_init(&t, &go_wf, "run-go", NULL);
        ASSERT_OK(sim_task(&t));
        a = dur_wf_state(s.run, sizeof(Rand));
        b = dur_wf_state(t.run, sizeof(Rand));
        ASSERT_EQ(a->a, b->a);
        ASSERT_STREQ(a->uuid, b->uuid);
        ASSERT_EQ(strlen(a->uuid), 36u);
        ASSERT_EQ(a->uuid[14], '4');
        ASSERT_TRUE(strchr("89ab", a->uuid[19]) != NULL);
        sim_done(&s);
        sim_done(&t);
}

/* ---- side effects, mutable side effects, patches --------------------------------------------- */

static int g_value, g_calls;

static int value_fn(dur_wf *wf, void *arg, msgpack_packer *out) {
        g_calls++;
        return dur_pack(out, "i", g_value);
}

static int side_effect_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        const msgpack_object *a, *b;

        DUR_TRY(dur_side_effect(wf, value_fn, NULL, &a));
        DUR_TRY(dur_execute_activity(wf, "use", dur_args("{s:o}", "v", a), &quick, NULL));
        DUR_TRY(dur_side_effect(wf, value_fn, NULL, &b));
        return dur_pack(out, "{s:o, s:o}", "a", a, "b", b);
}

static const dur_workflow_def side_effect_wf = { .name = "SideEffect", .run = side_effect_run };

static int use_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        DUR_TRY(dur_execute_activity(wf, "use", NULL, &quick, NULL));
        return dur_sleep(wf, DUR_SEC);
}

TEST(side_effect_recorded_once) {
        msgpack_sbuffer out;
        msgpack_unpacked u;
        msgpack_object o;
        int a = 0, b = 0;
        size_t off = 0;
        Sim s;

        g_value = 7;
        g_calls = 0;
        sim_init(&s, &side_effect_wf, "run-se", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_is(&s, 0, "RecordMarker"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "marker_name", "SideEffect"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "marker_id", "1"));
        o = cmd_payload(&s, 0, "details");
        ASSERT_EQ(o.via.i64, 7);
        ASSERT_EQ(g_calls, 2); /* the sticky run and sim_task()'s fresh one: both new */

        if (NEXT_TASK(&s, sim_activity_completed(&s, "1", NULL)) < 0)
                test_fail(__FILE__, __LINE__, "%s", run_error_message(s.run));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "marker_id", "2"));
        /* The fresh replay took side effect 1 from its marker: one call each for side effect 2. */
        ASSERT_EQ(g_calls, 4);

        /* Replayed with another value outside: the first comes from history, the second (the
         * current task's) is new. */
        g_value = 99;
        msgpack_sbuffer_init(&out);
        ASSERT_OK(replay_fresh(&s, true, &out, NULL));
        ASSERT_EQ(g_calls, 5);
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, out.data, out.size, &off), MSGPACK_UNPACK_SUCCESS);
        o = u.data.via.array.ptr[1];
        ASSERT_TRUE(msg_str_eq(msg_get(&o, "command_type"), "CompleteWorkflowExecution"));
        {
                const msgpack_object *res = msg_get(msg_get(&o, "attributes"), "result");
                msgpack_object v;

                ASSERT_OK(object_from_payload(res->via.bin.ptr, res->via.bin.size, &s.zone, &v));
                ASSERT_OK(dur_unpack(&v, "{s:i, s:i}", "a", &a, "b", &b));
        }
        ASSERT_EQ(a, 7);
        ASSERT_EQ(b, 99);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&out);
        sim_done(&s);
}

TEST(side_effect_missing_marker) {
        Sim s;

        /* A history of code without the side effect: replay must not invent a value. */
        sim_init(&s, &seq_wf, "run-se-nd", dur_args("{s:s}", "item", "x"));
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(
                NEXT_TASK(&s, sim_activity_completed(&s, "1", dur_args("{s:s}", "order_id", "o"))));
        g_calls = 0;
        expect_nondeterminism(
                &s, side_effect_run,
                "non-deterministic workflow: the workflow task completed at history event 4 recorded no MarkerRecorded(marker_name=SideEffect, marker_id=1) but the code issued RecordMarker(marker_name=SideEffect, marker_id=1)");
        ASSERT_EQ(g_calls, 0);
        sim_done(&s);

        /* The other way round: a marker the code no longer asks for. */
        g_value = 1;
        sim_init(&s, &side_effect_wf, "run-se-nd2", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "1", NULL)));
        expect_nondeterminism(
                &s, use_run,
                "non-deterministic workflow: history event 5 is MarkerRecorded(marker_name=SideEffect, marker_id=1) but the code issued ScheduleActivityTask(activity_id=1, type=use)");
        sim_done(&s);
}

static int mutable_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        const msgpack_object *v[3];

        for (int i = 0; i < 3; i++) {
                DUR_TRY(dur_mutable_side_effect(wf, "cfg", value_fn, NULL, &v[i]));
                DUR_TRY(dur_sleep(wf, DUR_SEC));
        }
        return dur_pack(out, "[o, o, o]", v[0], v[1], v[2]);
}

static const dur_workflow_def mutable_wf = { .name = "Mutable", .run = mutable_run };

TEST(mutable_side_effect_records_changes) {
        msgpack_object o;
        int v[3];
        Sim s;

        g_value = 1;
        sim_init(&s, &mutable_wf, "run-mse", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "marker_name", "MutableSideEffect"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "marker_id", "cfg"));
        /* The same value: no marker. */
        ASSERT_OK(NEXT_TASK(&s, sim_timer_fired(&s, "1")));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "StartTimer"));
        /* A new value: a marker. sim_task()'s fresh replay sees 2 outside while it replays the
         * first two tasks, and must still answer 1 there (else the bytes would differ). */
        g_value = 2;
        ASSERT_OK(NEXT_TASK(&s, sim_timer_fired(&s, "2")));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_is(&s, 0, "RecordMarker"));
        o = cmd_payload(&s, 0, "details");
        ASSERT_EQ(o.via.i64, 2);
        g_value = 3;
        ASSERT_OK(NEXT_TASK(&s, sim_timer_fired(&s, "3")));
        ASSERT_TRUE(cmd_is(&s, 0, "CompleteWorkflowExecution"));
        o = cmd_payload(&s, 0, "result");
        ASSERT_OK(dur_unpack(&o, "[i, i, i]", &v[0], &v[1], &v[2]));
        ASSERT_EQ(v[0], 1);
        ASSERT_EQ(v[1], 1);
        ASSERT_EQ(v[2], 2);
        sim_done(&s);
}

/* Three versions of one workflow: old code, the patch, the patch deprecated, the patch gone. */
static int patch_old(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        DUR_TRY(dur_execute_activity(wf, "old_step", NULL, &quick, NULL));
        return dur_pack(out, "s", "old");
}

static int patch_new(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        int p = dur_patched(wf, "step-v2");

        DUR_TRY(p);
        DUR_TRY(dur_execute_activity(wf, p ? "new_step" : "old_step", NULL, &quick, NULL));
        /* Remembered for the run. */
        if (dur_patched(wf, "step-v2") != p)
                return -EBADE;
        return dur_pack(out, "s", p ? "new" : "old");
}

static int patch_deprecated(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        DUR_TRY(dur_deprecate_patch(wf, "step-v2"));
        DUR_TRY(dur_execute_activity(wf, "new_step", NULL, &quick, NULL));
        return dur_pack(out, "s", "new");
}

static int patch_gone(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        DUR_TRY(dur_execute_activity(wf, "new_step", NULL, &quick, NULL));
        return dur_pack(out, "s", "new");
}

static const dur_workflow_def patch_defs[] = {
        { .name = "Patch", .run = patch_old },
        { .name = "Patch", .run = patch_new },
        { .name = "Patch", .run = patch_deprecated },
        { .name = "Patch", .run = patch_gone },
};

/* A history of @def up to its completion, sent on to the replay of @other (a new task with the
 * last one current), whose last commands must say @result. */
static void expect_patch_replay(const dur_workflow_def *def,
                                const dur_workflow_def *other,
                                const char *result) {
        msgpack_sbuffer out;
        msgpack_unpacked u, all;
        msgpack_object o;
        const char *got = NULL;
        size_t off = 0;
        Run *r;
        Sim s;

        sim_init(&s, def, "run-patch", NULL);
        ASSERT_OK(sim_task(&s));
        /* The activity completes; the next task completes the workflow. */
        sim_complete(&s);
        sim_activity_completed(&s, "1", NULL);
        sim_new_task(&s);

        msgpack_sbuffer_init(&out);
        msgpack_unpacked_init(&all);
        sim_array(&s, 0, s.n, &all);
        ASSERT_OK(run_new(&r, other, "wf-1", s.run_id));
        if (run_apply_events(r, &all.data, true, &out) < 0)
                test_fail(__FILE__, __LINE__, "replay failed: %s", run_error_message(r));
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, out.data, out.size, &off), MSGPACK_UNPACK_SUCCESS);
        ASSERT_EQ(u.data.via.array.size, 1u);
        o = u.data.via.array.ptr[0];
        ASSERT_TRUE(msg_str_eq(msg_get(&o, "command_type"), "CompleteWorkflowExecution"));
        {
                const msgpack_object *res = msg_get(msg_get(&o, "attributes"), "result");
                msgpack_object v;

                ASSERT_OK(object_from_payload(res->via.bin.ptr, res->via.bin.size, &s.zone, &v));
                ASSERT_OK(dur_unpack(&v, "s", &got));
                ASSERT_STREQ(got, result);
        }
        run_free(r);
        msgpack_unpacked_destroy(&u);
        msgpack_unpacked_destroy(&all);
        msgpack_sbuffer_destroy(&out);
        sim_done(&s);
}

TEST(patched_new_run) {
        const msgpack_object *sa, *tcv;
        Sim s;

        sim_init(&s, &patch_defs[1], "run-patch-new", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 3u);
        ASSERT_TRUE(cmd_is(&s, 0, "RecordMarker"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "marker_name", "core_patch"));
        ASSERT_TRUE(cmd_attr_is(&s, 0, "marker_id", "step-v2"));
        ASSERT_TRUE(cmd_is(&s, 1, "UpsertWorkflowSearchAttributes"));
        sa = ASSERT_NOT_NULL(cmd_attr(&s, 1, "search_attributes"));
        ASSERT_EQ(sa->via.map.size, 1u);
        tcv = ASSERT_NOT_NULL(msg_get(sa, "TemporalChangeVersion"));
        {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);

                ASSERT_NOT_NULL(f);
                msgpack_object_print(f, *tcv);
                ASSERT_EQ(fclose(f), 0);
                ASSERT_STR_CONTAINS(text, "\"step-v2\"");
        }
        ASSERT_TRUE(cmd_attr_is(&s, 2, "activity_type", "new_step"));
        /* The sticky run matches marker and upsert; a fresh replay skips the upsert. */
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "1", NULL)));
        ASSERT_TRUE(cmd_is(&s, 0, "CompleteWorkflowExecution"));
        sim_done(&s);
}

TEST(patched_old_and_new_histories) {
        /* An old run replays on the patched code and takes the old branch. */
        expect_patch_replay(&patch_defs[0], &patch_defs[1], "old");
        /* A patched run replays on the patched code and on the deprecated patch. */
        expect_patch_replay(&patch_defs[1], &patch_defs[1], "new");
        expect_patch_replay(&patch_defs[1], &patch_defs[2], "new");
        /* Runs of the deprecated patch replay on code without it, and on the patched code. */
        expect_patch_replay(&patch_defs[2], &patch_defs[3], "new");
        expect_patch_replay(&patch_defs[2], &patch_defs[1], "new");
        /* A run of the patched code replays once the call is gone. */
        expect_patch_replay(&patch_defs[1], &patch_defs[3], "new");
}

TEST(patched_unguarded_change) {
        Sim s;

        /* The change without dur_patched(): an old history is reported. */
        sim_init(&s, &patch_defs[0], "run-patch-bad", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "1", NULL)));
        expect_nondeterminism(
                &s, patch_gone,
                "non-deterministic workflow: history event 5 is ActivityTaskScheduled(activity_id=1, type=old_step) but the code issued ScheduleActivityTask(activity_id=1, type=new_step)");
        /* The deprecated patch on an old history: the marker is new where history has the old
         * step. */
        expect_nondeterminism(
                &s, patch_deprecated,
                "non-deterministic workflow: history event 5 is ActivityTaskScheduled(activity_id=1, type=old_step) but the code issued ScheduleActivityTask(activity_id=1, type=new_step)");
        sim_done(&s);
}

/* ---- cancellation types, detached scopes, the stack trace ------------------------------------ */

static dur_activity_cancellation_type g_cancel_type;

static int cancel_type_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        dur_activity_opts opts = quick;
        dur_future *f;
        int r;

        opts.cancellation_type = g_cancel_type;
        f = dur_start_activity(wf, "long", NULL, &opts);
        if (!f)
                return -errno;
        r = dur_await(wf, f);
        if (r != DUR_CANCELED)
                return r;
        DUR_TRY(dur_execute_activity(wf, "cleanup", NULL, &quick, NULL));
        return DUR_CANCELED;
}

static const dur_workflow_def cancel_type_wf = { .name = "CancelType", .run = cancel_type_run };

TEST(activity_cancellation_types) {
        Sim s;

        /* WAIT_CANCELLATION_COMPLETED: the await returns once the activity reported back. */
        g_cancel_type = DUR_ACTIVITY_CANCEL_WAIT_CANCELLATION_COMPLETED;
        sim_init(&s, &cancel_type_wf, "run-wait", NULL);
        s.activities_started = true;
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(&s, sim_event(&s, EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED, "s",
                                          "reason", "user")));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "RequestCancelActivityTask"));
        ASSERT_OK(NEXT_TASK(&s, sim_event(&s, EVENT_ACTIVITY_TASK_CANCELED, "u",
                                          "scheduled_event_id", (uint64_t) 5)));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "cleanup"));
        sim_done(&s);

        /* TRY_CANCEL (the default): at once. */
        g_cancel_type = DUR_ACTIVITY_CANCEL_DEFAULT;
        sim_init(&s, &cancel_type_wf, "run-try", NULL);
        s.activities_started = true;
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(&s, sim_event(&s, EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED, "s",
                                          "reason", "user")));
        ASSERT_EQ(cmd_count(&s), 2u);
        ASSERT_TRUE(cmd_is(&s, 0, "RequestCancelActivityTask"));
        ASSERT_TRUE(cmd_attr_is(&s, 1, "activity_type", "cleanup"));
        sim_done(&s);

        /* ABANDON: no request, at once. */
        g_cancel_type = DUR_ACTIVITY_CANCEL_ABANDON;
        sim_init(&s, &cancel_type_wf, "run-abandon", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(&s, sim_event(&s, EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED, "s",
                                          "reason", "user")));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_attr_is(&s, 0, "activity_type", "cleanup"));
        /* Its late result is dropped. */
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "1", NULL)));
        ASSERT_EQ(cmd_count(&s), 0u);
        sim_done(&s);

        /* A value outside the enum is refused. */
        g_cancel_type = (dur_activity_cancellation_type) 4;
        sim_init(&s, &cancel_type_wf, "run-bad", NULL);
        ASSERT_ERROR(sim_task(&s), -EPROTO);
        ASSERT_STR_CONTAINS(run_error_message(s.run), "returned -22");
        sim_done(&s);
}

static int compensate(dur_wf *wf, void *arg) {
        DUR_TRY(dur_execute_activity(wf, "undo_a", NULL, &quick, NULL));
        return dur_sleep(wf, DUR_SEC);
}

static int detached_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        DUR_TRY(dur_detached(wf, compensate, NULL));
        /* Outside the scope the request arrives. */
        return dur_sleep(wf, DUR_MIN);
}

static const dur_workflow_def detached_wf = { .name = "Detached", .run = detached_run };

TEST(detached_scope) {
        Sim s;

        sim_init(&s, &detached_wf, "run-detached", NULL);
        s.activities_started = true;
        ASSERT_OK(sim_task(&s));
        /* Cancelled while the detached activity runs: nothing is cancelled. */
        ASSERT_OK(NEXT_TASK(&s, sim_event(&s, EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED, "s",
                                          "reason", "user")));
        ASSERT_EQ(cmd_count(&s), 0u);
        ASSERT_OK(NEXT_TASK(&s, sim_activity_completed(&s, "1", NULL)));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "StartTimer"));
        ASSERT_OK(NEXT_TASK(&s, sim_timer_fired(&s, "1")));
        /* The sleep after the scope returns DUR_CANCELED at once: no timer, the run is Canceled. */
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "CancelWorkflowExecution"));
        sim_done(&s);
}

static bool never_true(dur_wf *wf, void *arg) {
        return false;
}

static int stack_child(dur_wf *wf, void *arg) {
        return dur_sleep(wf, 5 * DUR_SEC);
}

static int stack_signal(dur_wf *wf, const msgpack_object *args) {
        return dur_wait_condition(wf, never_true, NULL, 0);
}

static int stack_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        DUR_TRY(dur_go(wf, stack_child, NULL));
        return dur_execute_activity(wf, "reserve_inventory", NULL, &quick, NULL);
}

static const dur_workflow_def stack_wf = {
        .name = "Stack",
        .run = stack_run,
        .signals = DUR_SIGNALS({ "wait", stack_signal }),
};

TEST(stack_trace_query) {
        msgpack_sbuffer res;
        msgpack_unpacked u;
        size_t off = 0;
        Sim s;

        sim_init(&s, &stack_wf, "run-stack", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_OK(NEXT_TASK(
                &s, sim_event(&s, EVENT_WORKFLOW_EXECUTION_SIGNALED, "s", "signal_name", "wait")));
        msgpack_sbuffer_init(&res);
        ASSERT_OK(run_query(s.run, DUR_QUERY_STACK_TRACE, NULL, 0, &res));
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, res.data, res.size, &off), MSGPACK_UNPACK_SUCCESS);
        ASSERT_EQ(u.data.type, MSGPACK_OBJECT_STR);
        ASSERT_TRUE(msg_str_eq(&u.data,
                               "main function: blocked in activity reserve_inventory (id 1)\n"
                               "coroutine 1: blocked in timer 5 s (id 1)\n"
                               "signal handler 'wait': blocked in condition"));
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&res);
        sim_done(&s);
}

/* Misuse: bad arguments are -EINVAL, calls from a query handler -EDEADLK; nothing is issued. */
static int misuse_query(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        if (dur_side_effect(wf, value_fn, NULL, NULL) != -EDEADLK ||
            dur_mutable_side_effect(wf, "x", value_fn, NULL, NULL) != -EDEADLK ||
            dur_patched(wf, "p") != -EDEADLK || dur_deprecate_patch(wf, "p") != -EDEADLK ||
            dur_detached(wf, compensate, NULL) != -EDEADLK)
                return -EBADE;
        return dur_pack(out, "b", true);
}

static int misuse_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        if (dur_side_effect(wf, NULL, NULL, NULL) != -EINVAL ||
            dur_mutable_side_effect(wf, "", value_fn, NULL, NULL) != -EINVAL ||
            dur_mutable_side_effect(wf, NULL, value_fn, NULL, NULL) != -EINVAL ||
            dur_patched(wf, "") != -EINVAL || dur_patched(wf, NULL) != -EINVAL ||
            dur_deprecate_patch(wf, "") != -EINVAL || dur_detached(wf, NULL, NULL) != -EINVAL)
                return -EBADE;
        return dur_sleep(wf, DUR_SEC);
}

static const dur_workflow_def misuse_wf = {
        .name = "Misuse",
        .run = misuse_run,
        .queries = DUR_QUERIES({ "q", misuse_query }),
};

TEST(deterministic_calls_refuse_misuse) {
        msgpack_sbuffer res;
        Sim s;

        sim_init(&s, &misuse_wf, "run-misuse", NULL);
        ASSERT_OK(sim_task(&s));
        ASSERT_EQ(cmd_count(&s), 1u);
        ASSERT_TRUE(cmd_is(&s, 0, "StartTimer"));
        msgpack_sbuffer_init(&res);
        ASSERT_OK(run_query(s.run, "q", NULL, 0, &res));
        msgpack_sbuffer_destroy(&res);
        sim_done(&s);
}

DEFINE_TEST_MAIN();
