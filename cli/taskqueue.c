/* durablectl task-queue config|describe QUEUE: the flow-control limits of a task queue
 * (ConfigureTaskQueue) and what it holds (DescribeTaskQueue): backlog per priority key, pollers,
 * running activities, limits and what they hold back (doc/protocol.md, "Task queues"). */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/call.h"
#include "cli/output.h"
#include "cli/parse.h"
#include "cli/render.h"
#include "cli/verbs.h"

#define LIMIT_MAX 1000000

int parse_rate(const char *text, uint64_t *ret_rate, uint64_t *ret_period_usec) {
        const char *slash = strchr(text, '/');
        _cleanup_free_ char *n = NULL;
        int r;

        *ret_period_usec = 0;
        if (streq(text, "0")) { /* clears the rate limit */
                *ret_rate = 0;
                return 0;
        }
        n = slash ? strndup(text, (size_t) (slash - text)) : strdup(text);
        if (!n)
                return ctl_error("Out of memory");
        r = parse_count("--rate", n, LIMIT_MAX, ret_rate);
        if (r < 0)
                return r;
        if (!slash)
                return 0; /* per second, the daemon's default */
        r = parse_duration("--rate", slash + 1, ret_period_usec);
        if (r < 0)
                return r;
        if (*ret_period_usec < 1000 || *ret_period_usec > UINT64_C(86400000000))
                return ctl_error("invalid period '%s' for --rate: expected 1ms to 1d", slash + 1);
        return 0;
}

int task_queue_check_args(const Args *a) {
        bool config = streq(a->pos[0], "config"), describe = streq(a->pos[0], "describe");

        if (!config && !describe)
                return ctl_error("unknown task-queue command '%s': expected config or describe",
                                 a->pos[0]);
        if (a->n_pos < 2)
                return ctl_error("task-queue %s needs the name of a task queue", a->pos[0]);
        if (describe && (a->has_concurrency || a->has_rate || a->has_burst || a->limit_key ||
                         a->limit_activity_type))
                return ctl_error("task-queue describe takes no limits (--concurrency, --rate, "
                                 "--burst, --key, --activity-type): use task-queue config");
        if (a->limit_key && a->limit_activity_type)
                return ctl_error("--key and --activity-type name two scopes: give at most one");
        if (a->limit_key && (!*a->limit_key || strlen(a->limit_key) > 64))
                return ctl_error("invalid fairness key '%s' for --key: expected 1 to 64 bytes",
                                 a->limit_key);
        if (a->limit_activity_type && !*a->limit_activity_type)
                return ctl_error("--activity-type must not be empty");
        return 0;
}

typedef struct QueueInfo {
        const char *task_queue;
        const msgpack_object *workflow_tasks, *activity_tasks, *limits, *throttled;
} QueueInfo;

typedef struct TasksInfo {
        uint64_t backlog, pollers, running;
        const msgpack_object *by_priority;
} TasksInfo;

typedef struct LimitsInfo {
        uint64_t concurrency, rate, period, burst;
} LimitsInfo;

typedef struct ThrottledInfo {
        const char *by;
        uint64_t by_concurrency, by_rate;
} ThrottledInfo;

static int print_tasks(Answer *answer, const char *what, const msgpack_object *map) {
        static const MsgField fields[] = {
                { "backlog", MSG_UINT, offsetof(TasksInfo, backlog) },
                { "pollers", MSG_UINT, offsetof(TasksInfo, pollers) },
                { "running", MSG_UINT, offsetof(TasksInfo, running) },
                { "backlog_by_priority", MSG_ARRAY, offsetof(TasksInfo, by_priority) },
                {},
        };
        TasksInfo t = {};
        char line[256] = "";
        size_t len = 0;
        int r;

        r = answer_parse(answer, map, fields, &t);
        if (r < 0)
                return r;
        for (uint32_t i = 0; t.by_priority && i < t.by_priority->via.array.size; i++)
                if (len < sizeof(line))
                        len += (size_t) snprintf(line + len, sizeof(line) - len,
                                                 "%s%" PRIu32 ":%" PRIu64, i ? " " : "", i + 1,
                                                 t.by_priority->via.array.ptr[i].via.u64);
        kv_print(what, NULL, "%" PRIu64 " waiting (per priority key %s), %" PRIu64 " pollers",
                 t.backlog, line, t.pollers);
        if (streq(what, "Activity tasks"))
                kv_print("Running", NULL, "%" PRIu64 " activities", t.running);
        return 0;
}

static int print_limits(Answer *answer, const msgpack_object *map) {
        static const MsgField fields[] = {
                { "concurrency_limit", MSG_UINT, offsetof(LimitsInfo, concurrency) },
                { "rate_limit", MSG_UINT, offsetof(LimitsInfo, rate) },
                { "rate_period_usec", MSG_UINT, offsetof(LimitsInfo, period) },
                { "rate_burst", MSG_UINT, offsetof(LimitsInfo, burst) },
                {},
        };
        char buf[DURATION_TEXT_MAX];
        LimitsInfo l = {};
        int r;

        r = answer_parse(answer, map, fields, &l);
        if (r < 0)
                return r;
        if (l.concurrency)
                kv_print("Concurrency", NULL, "at most %" PRIu64 " activities at once",
                         l.concurrency);
        else
                kv_print("Concurrency", NULL, "no limit");
        if (l.rate)
                kv_print("Rate", NULL, "%" PRIu64 " per %s, burst %" PRIu64, l.rate,
                         format_duration(l.period, buf), l.burst);
        else
                kv_print("Rate", NULL, "no limit");
        return 0;
}

static int print_throttled(Answer *answer, const msgpack_object *map) {
        static const MsgField fields[] = {
                { "by", MSG_STR, offsetof(ThrottledInfo, by) },
                { "held_by_concurrency", MSG_UINT, offsetof(ThrottledInfo, by_concurrency) },
                { "held_by_rate", MSG_UINT, offsetof(ThrottledInfo, by_rate) },
                {},
        };
        ThrottledInfo t = { .by = "none" };
        int r;

        r = answer_parse(answer, map, fields, &t);
        if (r < 0)
                return r;
        kv_print("Throttled", NULL,
                 "%s now; dispatches held back %" PRIu64 "x by concurrency, %" PRIu64 "x by rate",
                 t.by, t.by_concurrency, t.by_rate);
        return 0;
}

typedef struct ScopedInfo {
        const char *key, *type;
        const msgpack_object *limits;
        uint64_t running, by_concurrency, by_rate;
} ScopedInfo;

/* The limits of the queue's fairness keys and activity types, one block each. */
static int print_scoped(Answer *answer, const msgpack_object *array) {
        static const MsgField fields[] = {
                { "fairness_key", MSG_STR, offsetof(ScopedInfo, key) },
                { "activity_type", MSG_STR, offsetof(ScopedInfo, type) },
                { "limits", MSG_MAP, offsetof(ScopedInfo, limits), true },
                { "running", MSG_UINT, offsetof(ScopedInfo, running) },
                { "held_by_concurrency", MSG_UINT, offsetof(ScopedInfo, by_concurrency) },
                { "held_by_rate", MSG_UINT, offsetof(ScopedInfo, by_rate) },
                {},
        };
        int r;

        for (uint32_t i = 0;
             array && array->type == MSGPACK_OBJECT_ARRAY && i < array->via.array.size; i++) {
                ScopedInfo s = {};

                r = answer_parse(answer, &array->via.array.ptr[i], fields, &s);
                if (r < 0)
                        return r;
                if (s.key)
                        kv_print("Fairness key", NULL, "%s: %" PRIu64 " running", s.key, s.running);
                else
                        kv_print("Activity type", NULL, "%s: %" PRIu64 " running",
                                 s.type ? s.type : "", s.running);
                r = print_limits(answer, s.limits);
                if (r < 0)
                        return r;
                kv_print("Held back", NULL, "%" PRIu64 "x by concurrency, %" PRIu64 "x by rate",
                         s.by_concurrency, s.by_rate);
        }
        return 0;
}

static int print_queue(const Ctx *ctx, Answer *answer) {
        static const MsgField fields[] = {
                { "task_queue", MSG_STR, offsetof(QueueInfo, task_queue), true },
                { "workflow_tasks", MSG_MAP, offsetof(QueueInfo, workflow_tasks), true },
                { "activity_tasks", MSG_MAP, offsetof(QueueInfo, activity_tasks), true },
                { "limits", MSG_MAP, offsetof(QueueInfo, limits), true },
                { "throttled", MSG_MAP, offsetof(QueueInfo, throttled), true },
                {},
        };
        QueueInfo q = {};
        int r;

        if (ctx->json) {
                _cleanup_(json_decrefp) json_t *doc = map_to_json(answer->map);

                if (!doc)
                        return ctl_error_errno(ENOMEM, "Out of memory");
                r = json_print(doc);
                return r < 0 ? ctl_error_errno(r, "Failed to print the answer as JSON") : 0;
        }
        r = answer_parse(answer, answer->map, fields, &q);
        if (r < 0)
                return r;
        kv_print("Task queue", NULL, "%s", q.task_queue);
        r = print_tasks(answer, "Workflow tasks", q.workflow_tasks);
        if (r >= 0)
                r = print_tasks(answer, "Activity tasks", q.activity_tasks);
        if (r >= 0)
                r = print_limits(answer, q.limits);
        if (r >= 0)
                r = print_throttled(answer, q.throttled);
        if (r >= 0)
                r = print_scoped(answer, msg_get(answer->map, "scoped_limits"));
        return r;
}

int verb_task_queue(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        int r;

        if (streq(a->pos[0], "describe")) {
                r = CTL_CALL(ctx->client, "DescribeTaskQueue", &answer,
                             FIELD_STR("task_queue", a->pos[1]));
                return r < 0 ? r : print_queue(ctx, &answer);
        }
        r = CTL_CALL(ctx->client, "ConfigureTaskQueue", &answer, FIELD_STR("task_queue", a->pos[1]),
                     FIELD_STR("fairness_key", a->limit_key),
                     FIELD_STR("activity_type", a->limit_activity_type),
                     FIELD_UINT_IF("concurrency_limit", a->concurrency, a->has_concurrency),
                     FIELD_UINT_IF("rate_limit", a->rate, a->has_rate),
                     FIELD_UINT("rate_period_usec", a->rate_period_usec),
                     FIELD_UINT_IF("rate_burst", a->burst, a->has_burst));
        if (r < 0)
                return r;
        /* What the queue holds now, limits included: one screen for both commands. */
        answer_done(&answer);
        r = CTL_CALL(ctx->client, "DescribeTaskQueue", &answer, FIELD_STR("task_queue", a->pos[1]));
        return r < 0 ? r : print_queue(ctx, &answer);
}
