/* The verbs of durablectl; see verbs.h. Each verb is one request (execute: two) and a printer for
 * its answer, readable or --json. */

#include "cli/verbs.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli/call.h"
#include "cli/output.h"
#include "cli/render.h"
#include "proto/json.h"
#include "proto/msg.h"

/* Prints a JSON document that the verb built; takes @j. NULL means building it ran out of
 * memory. */
static int print_json(json_t *j) {
        _cleanup_(json_decrefp) json_t *doc = j;
        int r;

        if (!doc)
                return ctl_error_errno(ENOMEM, "Out of memory");
        r = json_print(doc);
        if (r < 0)
                return ctl_error_errno(r, "Failed to print the answer as JSON: not valid UTF-8");
        return 0;
}

/* ---- start, execute, result ------------------------------------------------------------------ */

typedef struct Started {
        const char *run_id;
        bool started;
} Started;

/* StartWorkflow; SignalWithStart when @signal_name is set; UpdateWithStart when @update is. */
static int start_request(
        const Ctx *ctx, const Args *a, const char *signal_name, bool update, Answer *answer) {
        const char *op = signal_name ? "SignalWithStart" : update ? "UpdateWithStart"
                                                                  : "StartWorkflow";
        bool accepted = a->wait_for_stage && strcasecmp(a->wait_for_stage, "accepted") == 0;

        return CTL_CALL(ctx->client, op, answer,
                     FIELD_STR("workflow_id", a->workflow_id),
                     FIELD_STR("workflow_type", a->pos[0]), FIELD_STR("task_queue", a->task_queue),
                     FIELD_PAYLOAD("input", a->input),
                     FIELD_UINT("task_timeout_usec", a->task_timeout_usec),
                     FIELD_UINT("execution_timeout_usec", a->execution_timeout_usec),
                     FIELD_UINT("run_timeout_usec", a->run_timeout_usec),
                     FIELD_UINT("start_delay_usec", a->start_delay_usec),
                     FIELD_STR("request_id", a->request_id),
                     FIELD_STR("id_reuse_policy", a->id_reuse_policy),
                     FIELD_STR("id_conflict_policy", a->id_conflict_policy),
                     FIELD_STR("signal_name", signal_name),
                     FIELD_PAYLOAD("signal_input", signal_name ? a->signal_input : NULL),
                     FIELD_STR("update_name", update ? a->update_name : NULL),
                     FIELD_PAYLOAD("update_input", update ? a->update_input : NULL),
                     FIELD_STR("update_id", update ? a->update_id : NULL),
                     FIELD_STR("wait_for_stage",
                               !update ? NULL : accepted ? "Accepted" : "Completed"),
                     FIELD_JSON("memo", a->memo),
                     FIELD_JSON("search_attributes", a->search_attributes));
}

/* StartWorkflow, or SignalWithStart when @signal_name is set. */
static int start_workflow(
        const Ctx *ctx, const Args *a, const char *signal_name, Answer *answer, Started *ret) {
        static const MsgField fields[] = {
                { "run_id", MSG_STR, offsetof(Started, run_id), true },
                { "started", MSG_BOOL, offsetof(Started, started) },
                {},
        };
        Started s = { .started = true };
        int r;

        r = start_request(ctx, a, signal_name, false, answer);
        if (r < 0)
                return r;
        r = answer_parse(answer, answer->map, fields, &s);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

static void started_print(const Args *a, const Started *s) {
        kv_print("Workflow ID", NULL, "%s", a->workflow_id);
        kv_print("Run ID", NULL, "%s", s->run_id);
        kv_print("Type", NULL, "%s", a->pos[0]);
        kv_print("Task queue", NULL, "%s", a->task_queue);
        if (!s->started)
                printf("(an existing run answered: no new run started)\n");
}

static json_t *started_to_json(const Args *a, const Started *s) {
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "workflow_id", a->workflow_id, "run_id",
                         s->run_id, "type", a->pos[0], "task_queue", a->task_queue, "status",
                         "Running", "started", s->started);
}

int verb_start(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        Started s;
        int r;

        r = start_workflow(ctx, a, NULL, &answer, &s);
        if (r < 0)
                return r;
        if (ctx->json)
                return print_json(started_to_json(a, &s));
        started_print(a, &s);
        return 0;
}

int verb_signal_with_start(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        Started s;
        int r;

        r = start_workflow(ctx, a, a->pos[1], &answer, &s);
        if (r < 0)
                return r;
        if (ctx->json)
                return print_json(started_to_json(a, &s));
        started_print(a, &s);
        printf("Signal '%s' sent.\n", a->pos[1]);
        return 0;
}

static int get_result(const Ctx *ctx,
                      const char *workflow_id,
                      const char *run_id,
                      bool wait,
                      uint64_t timeout_usec,
                      Answer *answer,
                      WorkflowInfo *ret) {
        const msgpack_object *w;
        int r;

        answer_done(answer);
        r = CTL_CALL(ctx->client, "GetResult", answer, FIELD_STR("workflow_id", workflow_id),
                     FIELD_STR("run_id", run_id), FIELD_BOOL("wait", wait),
                     FIELD_UINT("timeout_usec", timeout_usec));
        if (r < 0)
                return r;
        w = answer_workflow(answer, "GetResult");
        if (!w)
                return -EPROTO;
        return workflow_info_parse(answer, w, ret);
}

/* Prints the outcome of a run; EXIT_FAILURE when it closed without completing. */
static int outcome_print(const Ctx *ctx, const Answer *answer, const WorkflowInfo *w, bool ids) {
        int r;

        if (ctx->json) {
                r = print_json(map_to_json(answer_workflow(answer, "GetResult")));
                if (r < 0)
                        return r;
        } else if (ids)
                workflow_print(w, false);
        else
                workflow_print_outcome(w);
        if (streq(w->status, "Completed") || streq(w->status, "Running"))
                return 0;
        (void) ctl_error_errno(0, "workflow '%s' did not complete: %s", w->workflow_id, w->status);
        return EXIT_FAILURE;
}

int verb_execute(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer started = {}, result = {};
        const char *run_id;
        WorkflowInfo w;
        Started s;
        int r;

        r = start_workflow(ctx, a, NULL, &started, &s);
        if (r < 0)
                return r;
        if (!ctx->json) {
                started_print(a, &s);
                fflush(stdout);
        }
        /* A run that continued as new is followed to the run it started, as Temporal's
         * "workflow execute" does: without a run id, GetResult looks at the latest run. */
        for (run_id = s.run_id;; run_id = NULL) {
                r = get_result(ctx, a->workflow_id, run_id, true, 0, &result, &w);
                if (r < 0)
                        return r;
                if (!streq(w.status, "ContinuedAsNew"))
                        break;
        }
        return outcome_print(ctx, &result, &w, false);
}

int verb_result(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        WorkflowInfo w;
        int r;

        r = get_result(ctx, a->pos[0], a->run_id, a->wait, a->timeout_usec, &answer, &w);
        if (r < 0)
                return r;
        return outcome_print(ctx, &answer, &w, true);
}

/* ---- standalone activities ------------------------------------------------------------------- */

static bool is_completion(const char *subcommand) {
        return streq(subcommand, "complete") || streq(subcommand, "fail") ||
               streq(subcommand, "heartbeat");
}

/* The arguments of each subcommand, before connecting (exit status 2 otherwise). */
int activity_check_args(const Args *a) {
        const char *sub = a->pos[0];
        size_t ids = a->token ? 0 : 2; /* ID ACTIVITY-ID, unless --token names the attempt */

        if (streq(sub, "execute") || streq(sub, "start") || streq(sub, "result")) {
                if (a->n_pos != 2)
                        return ctl_error("'activity %s' takes one argument, %s", sub,
                                         streq(sub, "result") ? "ID" : "TYPE");
                if (a->token)
                        return ctl_error("--token is for activity complete, fail and heartbeat");
                return 0;
        }
        if (!is_completion(sub))
                return ctl_error("unknown subcommand '%s' for 'activity': expected execute, start, "
                                 "result, complete, fail or heartbeat",
                                 sub);
        if (a->n_pos < 1 + ids)
                return ctl_error("'activity %s' needs %s", sub,
                                 "ID ACTIVITY-ID (the workflow id and the activity id), or --token");
        if (a->n_pos > 2 + ids || (streq(sub, "fail") && a->n_pos > 1 + ids))
                return ctl_error("unexpected argument '%s' for 'activity %s'", a->pos[a->n_pos - 1],
                                 sub);
        if (a->n_pos == 2 + ids && a->input)
                return ctl_error("give the JSON either as an argument or with --input, not both");
        return 0;
}

/* activity complete|fail|heartbeat: asynchronous completion of a running attempt, by task token
 * or by workflow id and activity id (Temporal's "...ById"). */
static int activity_complete(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_(json_decrefp) json_t *failure = NULL;
        const char *sub = a->pos[0], *op;
        size_t ids = a->token ? 0 : 2;
        json_t *value = a->input;
        _cleanup_(json_decrefp) json_t *parsed = NULL;
        const msgpack_object *cancel;
        json_error_t e;
        int r;

        if (a->n_pos == 2 + ids) {
                parsed = json_loads(a->pos[1 + ids], JSON_DECODE_ANY, &e);
                if (!parsed)
                        return ctl_error("invalid JSON '%s': %s", a->pos[1 + ids], e.text);
                value = parsed;
        }
        if (streq(sub, "fail")) {
                failure = json_pack("{s:s, s:s, s:b}", "type", "ActivityError", "message",
                                    a->reason ? a->reason : "failed by durablectl",
                                    "non_retryable", false);
                if (!failure)
                        return ctl_error_errno(ENOMEM, "Out of memory");
        }
        op = streq(sub, "complete") ? "CompleteActivityTask"
             : streq(sub, "fail")   ? "FailActivityTask"
                                    : "HeartbeatActivity";
        r = CTL_CALL(ctx->client, op, &answer, FIELD_BIN_STR("task_token", a->token),
                     FIELD_STR("workflow_id", a->token ? NULL : a->pos[1]),
                     FIELD_STR("run_id", a->token ? NULL : a->run_id),
                     FIELD_STR("activity_id", a->token ? NULL : a->pos[2]),
                     FIELD_PAYLOAD(streq(sub, "heartbeat") ? "details" : "result",
                                   streq(sub, "fail") ? NULL : value),
                     FIELD_JSON("failure", failure));
        if (r < 0)
                return r;
        if (streq(sub, "heartbeat")) {
                cancel = msg_get(answer.map, "cancel_requested");
                if (ctx->json)
                        printf("{\"cancel_requested\": %s}\n",
                               cancel && cancel->type == MSGPACK_OBJECT_BOOLEAN &&
                                               cancel->via.boolean
                                       ? "true"
                                       : "false");
                else if (cancel && cancel->type == MSGPACK_OBJECT_BOOLEAN && cancel->via.boolean)
                        printf("The workflow asked to cancel this activity.\n");
        }
        return 0;
}

/* activity start|execute TYPE: StartActivity with --id, or "<TYPE>-<random>" (printed). */
static int activity_start(const Ctx *ctx, const Args *a, Answer *answer, char *id, size_t size) {
        static const MsgField fields[] = {
                { "run_id", MSG_STR, offsetof(Started, run_id), true },
                { "started", MSG_BOOL, offsetof(Started, started) },
                {},
        };
        const char *type = a->pos[1];
        uint32_t rnd;
        Started st = { .started = true };
        int r;

        if (a->workflow_id)
                snprintf(id, size, "%s", a->workflow_id);
        else {
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        return ctl_error_errno(errno, "Failed to make an activity id: %m");
                snprintf(id, size, "%s-%08x", type, rnd);
        }
        r = CTL_CALL(ctx->client, "StartActivity", answer, FIELD_STR("activity_id", id),
                     FIELD_STR("activity_type", type), FIELD_STR("task_queue", a->task_queue),
                     FIELD_PAYLOAD("input", a->input), FIELD_STR("request_id", a->request_id));
        if (r < 0)
                return r;
        r = answer_parse(answer, answer->map, fields, &st);
        if (r < 0)
                return r;
        if (ctx->json && streq(a->pos[0], "start"))
                return print_json(json_pack("{s:s, s:s, s:s, s:s, s:b}", "activity_id", id,
                                            "run_id", st.run_id, "type", type, "status",
                                            "Running", "started", st.started));
        if (!ctx->json) {
                kv_print("Activity ID", NULL, "%s", id);
                kv_print("Run ID", NULL, "%s", st.run_id);
                kv_print("Type", NULL, "%s", type);
                if (!st.started)
                        printf("(an activity with request id '%s' was already running; none "
                               "started)\n",
                               a->request_id);
                fflush(stdout);
        }
        return 0;
}

int verb_activity(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer started = {}, result = {};
        char id[1100];
        WorkflowInfo w;
        int r;

        if (is_completion(a->pos[0]))
                return activity_complete(ctx, a);
        if (streq(a->pos[0], "result")) {
                r = get_result(ctx, a->pos[1], NULL, a->wait, a->timeout_usec, &result, &w);
                return r < 0 ? r : outcome_print(ctx, &result, &w, true);
        }
        r = activity_start(ctx, a, &started, id, sizeof(id));
        if (r < 0 || streq(a->pos[0], "start"))
                return r;
        r = get_result(ctx, id, NULL, true, 0, &result, &w);
        return r < 0 ? r : outcome_print(ctx, &result, &w, false);
}

/* ---- describe, list, history ----------------------------------------------------------------- */

/* The answer's fields besides the workflow map: the history's size, its warning, the run a
 * continued-as-new run continues as; the memo and search attributes. */
static const char *const describe_extras[] = { "history_size_bytes", "history_warning",
                                               "new_execution_run_id", "memo",
                                               "search_attributes" };

static json_t *described_to_json(const msgpack_object *answer,
                                 const msgpack_object *workflow,
                                 const msgpack_object *pending) {
        _cleanup_(json_decrefp) json_t *j = map_to_json(workflow);

        if (!j || json_object_set_new(j, "pending_activities", maps_to_json(pending)) < 0)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(describe_extras); i++) {
                const msgpack_object *v = msg_get(answer, describe_extras[i]);

                if (v && json_object_set_new(j, describe_extras[i], json_from_msgpack(v)) < 0)
                        return NULL;
        }
        return TAKE_PTR(j);
}

static void describe_extras_print(const msgpack_object *answer) {
        const msgpack_object *size = msg_get(answer, "history_size_bytes"),
                             *warning = msg_get(answer, "history_warning"),
                             *next = msg_get(answer, "new_execution_run_id");

        if (size && size->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                kv_print("History size", NULL, "%llu bytes", (unsigned long long) size->via.u64);
        if (next && next->type == MSGPACK_OBJECT_STR)
                kv_print("Continued as", NULL, "%.*s", (int) next->via.str.size, next->via.str.ptr);
        if (warning && warning->type == MSGPACK_OBJECT_STR)
                kv_print("Warning", NULL, "%.*s", (int) warning->via.str.size,
                         warning->via.str.ptr);
}

/* "Memo" and "Search attributes" lines: each key with its value as compact JSON. */
static void visibility_print(const msgpack_object *memo, const msgpack_object *sa) {
        const msgpack_object *maps[] = { memo, sa };
        const char *titles[] = { "Memo", "Search attributes" };

        for (size_t k = 0; k < ELEMENTSOF(maps); k++) {
                _cleanup_(json_decrefp) json_t *j = maps[k] ? json_from_msgpack(maps[k]) : NULL;
                const char *key;
                json_t *v;

                json_object_foreach(j, key, v) {
                        json_t *shown = k == 1 ? json_object_get(v, "value") : v;
                        _cleanup_free_ char *text =
                                json_dumps(shown ? shown : v, JSON_COMPACT | JSON_ENCODE_ANY);
                        kv_print(titles[k], NULL, "%s = %s", key, text ? text : "?");
                }
        }
}

int verb_describe(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        const msgpack_object *workflow, *pending, *memo, *sa;
        WorkflowInfo w;
        int r;

        r = CTL_CALL(ctx->client, "DescribeWorkflow", &answer, FIELD_STR("workflow_id", a->pos[0]),
                     FIELD_STR("run_id", a->run_id));
        if (r < 0)
                return r;
        workflow = answer_workflow(&answer, "DescribeWorkflow");
        if (!workflow)
                return -EPROTO;
        pending = msg_get(answer.map, "pending_activities");
        memo = msg_get(answer.map, "memo");
        sa = msg_get(answer.map, "search_attributes");
        if (ctx->json)
                return print_json(described_to_json(answer.map, workflow, pending));
        r = workflow_info_parse(&answer, workflow, &w);
        if (r < 0)
                return r;
        workflow_print(&w, true);
        describe_extras_print(answer.map);
        visibility_print(memo, sa);
        return pending_activities_print(pending);
}

static int list_row_add(Table *t, Answer *answer, const msgpack_object *map) {
        char start[TIME_TEXT_MAX], close[TIME_TEXT_MAX];
        WorkflowInfo w;
        int r;

        r = workflow_info_parse(answer, map, &w);
        if (r < 0)
                return r;
        if ((r = table_add(t, w.workflow_id, NULL)) < 0 || (r = table_add(t, w.run_id, NULL)) < 0 ||
            (r = table_add(t, w.workflow_type, NULL)) < 0 ||
            (r = table_add(t, w.status, status_color(w.status))) < 0 ||
            (r = table_add(t, format_time_local(w.start_time, false, start), NULL)) < 0 ||
            (r = table_add(t, format_time_local(w.close_time, false, close), NULL)) < 0)
                return ctl_error_errno(r, "Out of memory");
        return 0;
}

static int list_print(Answer *answer, const msgpack_object *workflows) {
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = table_new(&t, "WORKFLOW ID", "RUN ID", "TYPE", "STATUS", "START", "CLOSE", NULL);
        if (r < 0)
                return ctl_error_errno(r, "Out of memory");
        for (uint32_t i = 0; workflows && i < workflows->via.array.size; i++) {
                r = list_row_add(t, answer, &workflows->via.array.ptr[i]);
                if (r < 0)
                        return r;
        }
        if (table_rows(t) == 0) {
                printf("No workflows found.\n");
                return 0;
        }
        table_print(t);
        return 0;
}

int verb_list(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        const msgpack_object *workflows, *next;
        int r;

        r = CTL_CALL(ctx->client, "ListWorkflows", &answer, FIELD_STR("status", a->status),
                     FIELD_STR("workflow_type", a->type), FIELD_STR("task_queue", a->task_queue),
                     FIELD_UINT("limit", a->limit), FIELD_STR("query", a->query),
                     FIELD_STR("page_token", a->page_token));
        if (r < 0)
                return r;
        workflows = msg_get(answer.map, "workflows");
        if (workflows && workflows->type != MSGPACK_OBJECT_ARRAY)
                return ctl_error_errno(EPROTO, "durabled's answer to ListWorkflows is malformed");
        next = msg_get(answer.map, "next_page_token");
        if (next && next->type == MSGPACK_OBJECT_STR)
                /* On stderr, so that the list itself (text or --json) stays what it was. */
                fprintf(stderr, "More workflows: add --page-token %.*s\n", (int) next->via.str.size,
                        next->via.str.ptr);
        if (ctx->json)
                return print_json(maps_to_json(workflows));
        return list_print(&answer, workflows);
}

int verb_count(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        const msgpack_object *n, *groups;
        int r;

        r = CTL_CALL(ctx->client, "CountWorkflows", &answer, FIELD_STR("query", a->query));
        if (r < 0)
                return r;
        n = msg_get(answer.map, "count");
        if (!n || n->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return ctl_error_errno(EPROTO, "durabled's answer to CountWorkflows is malformed");
        groups = msg_get(answer.map, "groups");
        if (ctx->json)
                return print_json(map_to_json(answer.map));
        if (!groups || groups->type != MSGPACK_OBJECT_ARRAY) {
                printf("%" PRIu64 "\n", n->via.u64);
                return 0;
        }
        /* GROUP BY ExecutionStatus: one line per status, then the total. */
        for (uint32_t i = 0; i < groups->via.array.size; i++) {
                const msgpack_object *g = &groups->via.array.ptr[i], *st = msg_get(g, "status"),
                                     *k = msg_get(g, "count");
                if (!st || st->type != MSGPACK_OBJECT_STR || !k ||
                    k->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                        return ctl_error_errno(EPROTO,
                                               "durabled's answer to CountWorkflows is malformed");
                printf("%-16.*s %" PRIu64 "\n", (int) st->via.str.size, st->via.str.ptr,
                       k->via.u64);
        }
        printf("%-16s %" PRIu64 "\n", "Total", n->via.u64);
        return 0;
}

typedef struct Event {
        uint64_t event_id;
        const char *event_type;
        uint64_t time;
        const msgpack_object *attributes;
} Event;

static int event_parse(Answer *answer, const msgpack_object *map, Event *ret) {
        static const MsgField fields[] = {
                { "event_id", MSG_UINT, offsetof(Event, event_id), true },
                { "event_type", MSG_STR, offsetof(Event, event_type), true },
                { "time", MSG_UINT, offsetof(Event, time) },
                { "attributes", MSG_MAP, offsetof(Event, attributes) },
                {},
        };

        return answer_parse(answer, map, fields, ret);
}

static int history_row_add(Table *t, Answer *answer, const msgpack_object *map) {
        char id[24], time[TIME_TEXT_MAX];
        Event e = {};
        int r;

        r = event_parse(answer, map, &e);
        if (r < 0)
                return r;
        snprintf(id, sizeof(id), "%llu", (unsigned long long) e.event_id);
        if ((r = table_add(t, id, NULL)) < 0 ||
            (r = table_add(t, format_time_local(e.time, true, time), NULL)) < 0 ||
            (r = table_add(t, e.event_type, ANSI_BOLD)) < 0)
                return ctl_error_errno(r, "Out of memory");
        r = table_add_take(t, event_details(e.attributes), NULL);
        return r < 0 ? ctl_error_errno(r, "Out of memory") : 0;
}

/* One event on one line with fixed columns, for output that streams (--follow). */
static int history_line_print(Answer *answer, const msgpack_object *map) {
        _cleanup_free_ char *details = NULL;
        char time[TIME_TEXT_MAX];
        Event e = {};
        int r;

        r = event_parse(answer, map, &e);
        if (r < 0)
                return r;
        details = event_details(e.attributes);
        if (!details)
                return ctl_error_errno(ENOMEM, "Out of memory");
        printf("%-4llu  %-27s  %s%-32s%s  %s\n", (unsigned long long) e.event_id,
               format_time_local(e.time, true, time), ansi(ANSI_BOLD), e.event_type,
               ansi(ANSI_NORMAL), details);
        return 0;
}

static bool is_close_event(const msgpack_object *event) {
        static const char *const closing[] = {
                "WorkflowExecutionCompleted", "WorkflowExecutionFailed",
                "WorkflowExecutionCanceled",  "WorkflowExecutionTerminated",
                "WorkflowExecutionTimedOut",  "WorkflowExecutionContinuedAsNew",
        };
        const msgpack_object *t = msg_get(event, "event_type");

        for (size_t i = 0; i < ELEMENTSOF(closing); i++)
                if (msg_str_eq(t, closing[i]))
                        return true;
        return false;
}

/* --follow prints as events come: JSON lines with --json, else one unaligned line each. */
static int follow_print(const Ctx *ctx,
                        Answer *answer,
                        const msgpack_object *events,
                        uint64_t *last_id,
                        bool *closed) {
        for (uint32_t i = 0; i < events->via.array.size; i++) {
                const msgpack_object *ev = &events->via.array.ptr[i], *id;
                int r;

                id = msg_get(ev, "event_id");
                if (id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                        *last_id = id->via.u64;
                *closed = *closed || is_close_event(ev);
                if (ctx->json) {
                        json_t *j = map_to_json(ev);
                        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;

                        json_decref(j);
                        if (!line)
                                return ctl_error_errno(ENOMEM, "Out of memory");
                        puts(line);
                        free(line);
                } else {
                        r = history_line_print(answer, ev);
                        if (r < 0)
                                return r;
                }
        }
        (void) fflush(stdout);
        return 0;
}


/* ---- watch ------------------------------------------------------------------------------------ */

/* How long watch waits for new events before it refreshes the progress line: the STATUS= and
 * heartbeats of running activities change without an event. */
#define WATCH_REFRESH_USEC (1 * USEC_PER_SEC)

static size_t terminal_columns(void) {
        struct winsize ws;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
                return ws.ws_col;
        return 80;
}

/* "2 pending: charge_payment (Started, attempt 1: 40% done) | ship (Scheduled)" from the
 * run's DescribeWorkflow; "" when nothing is pending. */
static int progress_text(const Ctx *ctx, const char *workflow_id, const char *run_id, char *buf,
                         size_t size) {
        _cleanup_(answer_done) Answer answer = {};
        const msgpack_object *pending;
        FILE *f;
        int r;

        buf[0] = 0;
        r = CTL_CALL(ctx->client, "DescribeWorkflow", &answer, FIELD_STR("workflow_id", workflow_id),
                     FIELD_STR("run_id", run_id));
        if (r < 0)
                return r;
        pending = msg_get(answer.map, "pending_activities");
        if (!pending || pending->type != MSGPACK_OBJECT_ARRAY || pending->via.array.size == 0)
                return 0;
        f = fmemopen(buf, size, "w");
        if (!f)
                return 0;
        fprintf(f, "%" PRIu32 " pending:", pending->via.array.size);
        for (uint32_t i = 0; i < pending->via.array.size; i++) {
                const msgpack_object *p = &pending->via.array.ptr[i];
                const msgpack_object *type = msg_get(p, "activity_type"), *state = msg_get(p, "state");
                const msgpack_object *attempt = msg_get(p, "attempt"), *status = msg_get(p, "status");

                fprintf(f, "%s %.*s (%.*s", i ? " |" : "",
                        type && type->type == MSGPACK_OBJECT_STR ? (int) type->via.str.size : 1,
                        type && type->type == MSGPACK_OBJECT_STR ? type->via.str.ptr : "?",
                        state && state->type == MSGPACK_OBJECT_STR ? (int) state->via.str.size : 1,
                        state && state->type == MSGPACK_OBJECT_STR ? state->via.str.ptr : "?");
                if (attempt && attempt->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                        fprintf(f, ", attempt %" PRIu64, attempt->via.u64);
                if (status && status->type == MSGPACK_OBJECT_STR && status->via.str.size > 0)
                        fprintf(f, ": %.*s", (int) status->via.str.size, status->via.str.ptr);
                fputc(')', f);
        }
        fclose(f);
        return 0;
}

/* The progress line lives at the bottom of a terminal: erased before events are printed above
 * it, drawn again after. */
static void progress_erase(bool *shown) {
        if (*shown)
                fputs("\r\x1b[K", stdout);
        *shown = false;
}

static void progress_draw(const char *text, bool *shown) {
        size_t cols = terminal_columns();

        if (!text[0])
                return;
        printf("%s%.*s%s", ansi(ANSI_GREY), (int) MIN(strlen(text), cols - 1), text,
               ansi(ANSI_NORMAL));
        *shown = true;
        (void) fflush(stdout);
}

/* The run's events so far, then each new one as the run appends it, until it closes (a long poll
 * on GetHistory, no polling interval): history --follow, and watch, which with @live also keeps
 * a progress line of the pending activities at the bottom of the terminal. The run id followed
 * is returned in *@ret_run_id (malloc'd; NULL if not wanted). */
static int follow_run(const Ctx *ctx, const Args *a, bool live, char **ret_run_id) {
        _cleanup_free_ char *run_id = NULL;
        bool shown = false, closed = false;
        uint64_t last_id = 0;
        char progress[512];
        int r = 0;

        if (!ctx->json && output_legend())
                printf("%-4s  %-27s  %-32s  %s\n", "ID", "TIME", "TYPE", "DETAILS");
        while (!closed) {
                _cleanup_(answer_done) Answer answer = {};
                const msgpack_object *events, *rid;

                r = CTL_CALL_OR_TIMEOUT(
                        ctx->client, "GetHistory", &answer, FIELD_STR("workflow_id", a->pos[0]),
                        FIELD_STR("run_id", run_id ? run_id : a->run_id),
                        FIELD_UINT("from_event_id", last_id + 1), FIELD_BOOL("wait", last_id > 0),
                        FIELD_UINT("timeout_usec", live ? WATCH_REFRESH_USEC : 0));
                if (r == -ETIMEDOUT) {
                        if (progress_text(ctx, a->pos[0], run_id, progress, sizeof(progress)) < 0)
                                return -EIO;
                        progress_erase(&shown);
                        progress_draw(progress, &shown);
                        continue;
                }
                if (r < 0)
                        return r;
                rid = msg_get(answer.map, "run_id");
                if (!run_id && rid && rid->type == MSGPACK_OBJECT_STR) {
                        /* Stay on this run even if another one of the id starts meanwhile. */
                        run_id = strndup(rid->via.str.ptr, rid->via.str.size);
                        if (!run_id)
                                return ctl_error_errno(ENOMEM, "Out of memory");
                }
                events = msg_get(answer.map, "events");
                if (!events || events->type != MSGPACK_OBJECT_ARRAY)
                        return ctl_error_errno(EPROTO,
                                               "durabled's answer to GetHistory has no events");
                if (events->via.array.size == 0 && last_id > 0)
                        break; /* the wait ended with the run closed and nothing new */
                progress_erase(&shown);
                r = follow_print(ctx, &answer, events, &last_id, &closed);
                if (r < 0)
                        return r;
                if (live && !closed) {
                        if (progress_text(ctx, a->pos[0], run_id, progress, sizeof(progress)) < 0)
                                return -EIO;
                        progress_draw(progress, &shown);
                }
        }
        progress_erase(&shown);
        if (ret_run_id)
                *ret_run_id = TAKE_PTR(run_id);
        return 0;
}

/* watch: follow_run() with a progress line on a terminal, then the run's outcome, with the exit
 * status of `result`. */
int verb_watch(const Ctx *ctx, const Args *a) {
        _cleanup_free_ char *run_id = NULL;
        _cleanup_(answer_done) Answer result = {};
        WorkflowInfo w;
        int r;

        r = follow_run(ctx, a, !ctx->json && isatty(STDOUT_FILENO), &run_id);
        if (r < 0)
                return r;
        r = get_result(ctx, a->pos[0], run_id, false, 0, &result, &w);
        if (r < 0)
                return r;
        if (ctx->json)
                return streq(w.status, "Completed") ? 0 : EXIT_FAILURE;
        putchar('\n');
        return outcome_print(ctx, &result, &w, false);
}

int verb_history(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_(table_freep) Table *t = NULL;
        const msgpack_object *events;
        int r;

        if (a->follow)
                return follow_run(ctx, a, false, NULL);
        r = CTL_CALL(ctx->client, "GetHistory", &answer, FIELD_STR("workflow_id", a->pos[0]),
                     FIELD_STR("run_id", a->run_id));
        if (r < 0)
                return r;
        events = msg_get(answer.map, "events");
        if (!events || events->type != MSGPACK_OBJECT_ARRAY)
                return ctl_error_errno(EPROTO, "durabled's answer to GetHistory has no events");
        if (ctx->json)
                return print_json(maps_to_json(events));
        r = table_new(&t, "ID", "TIME", "TYPE", "DETAILS", NULL);
        if (r < 0)
                return ctl_error_errno(r, "Out of memory");
        for (uint32_t i = 0; i < events->via.array.size; i++) {
                r = history_row_add(t, &answer, &events->via.array.ptr[i]);
                if (r < 0)
                        return r;
        }
        table_print(t);
        return 0;
}

/* ---- signal, query, cancel, terminate -------------------------------------------------------- */

/* What a verb that changes a workflow prints: "Workflow 'x': <what>.", or with --json the
 * fields it sent. Takes @j. */
static int done_print(const Ctx *ctx, json_t *j, const char *workflow_id, const char *what) {
        if (ctx->json)
                return print_json(j);
        json_decref(j);
        printf("Workflow '%s': %s.\n", workflow_id, what);
        return 0;
}

int verb_signal(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        int r;

        r = CTL_CALL(ctx->client, "SignalWorkflow", &answer, FIELD_STR("workflow_id", a->pos[0]),
                     FIELD_STR("run_id", a->run_id), FIELD_STR("signal_name", a->pos[1]),
                     FIELD_PAYLOAD("input", a->input));
        if (r < 0)
                return r;
        return done_print(ctx,
                          json_pack("{s:s, s:s*, s:s}", "workflow_id", a->pos[0], "run_id",
                                    a->run_id, "signal_name", a->pos[1]),
                          a->pos[0], "signal sent");
}

int verb_query(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        const msgpack_object *result;
        int r;

        r = CTL_CALL(ctx->client, "QueryWorkflow", &answer, FIELD_STR("workflow_id", a->pos[0]),
                     FIELD_STR("run_id", a->run_id), FIELD_STR("query_type", a->pos[1]),
                     FIELD_PAYLOAD("input", a->input), FIELD_UINT("timeout_usec", a->timeout_usec));
        if (r < 0)
                return r;
        /* The result is JSON in both modes: it is what a script wants from a query. */
        result = msg_get(answer.map, "result");
        return print_json(result ? json_from_msgpack(result) : json_null());
}

/* `temporal workflow stack`: the built-in query __stack_trace, printed as the text it is. */
int verb_stack(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_(json_decrefp) json_t *text = NULL;
        const msgpack_object *result;
        int r;

        r = CTL_CALL(ctx->client, "QueryWorkflow", &answer, FIELD_STR("workflow_id", a->pos[0]),
                     FIELD_STR("run_id", a->run_id), FIELD_STR("query_type", "__stack_trace"),
                     FIELD_UINT("timeout_usec", a->timeout_usec));
        if (r < 0)
                return r;
        result = msg_get(answer.map, "result"); /* a payload */
        text = result ? json_from_msgpack(result) : NULL;
        if (!json_is_string(text))
                return ctl_error_errno(EBADMSG, "the worker's answer to __stack_trace is not a "
                                                "string");
        if (ctx->json)
                return print_json(json_pack("{s:O}", "stack_trace", text));
        printf("%s\n", json_string_value(text));
        return 0;
}

/* update execute|start --name NAME [JSON], update result --update-id ID; all need --id. As the
 * temporal CLI, start waits for the stage accepted and execute for completed. */
int update_check_args(const Args *a) {
        const char *sub = a->pos[0];
        bool result = streq(sub, "result");
        const char *want = streq(sub, "start") ? "accepted" : "completed";

        if (!result && !streq(sub, "execute") && !streq(sub, "start"))
                return ctl_error("unknown subcommand '%s' for 'update': expected execute, start "
                                 "or result",
                                 sub);
        if (result && !a->update_id)
                return ctl_error("'update result' needs --update-id ID");
        if (result && (a->update_name || a->input))
                return ctl_error("'update result' takes no --name and no JSON argument");
        if (!result && !a->update_name)
                return ctl_error("'update %s' needs --name NAME (the update's name)", sub);
        if (a->wait_for_stage && strcasecmp(a->wait_for_stage, "accepted") != 0 &&
            strcasecmp(a->wait_for_stage, "completed") != 0)
                return ctl_error("invalid value '%s' for --wait-for-stage: expected accepted or "
                                 "completed",
                                 a->wait_for_stage);
        if (a->wait_for_stage && !result && strcasecmp(a->wait_for_stage, want) != 0)
                return ctl_error("'update %s' waits for the stage %s (--wait-for-stage %s)", sub,
                                 want, want);
        return 0;
}

/* Prints an update map (doc/protocol.md): its result as JSON, as query does; EXIT_FAILURE when
 * its handler failed. */
static int update_print(const Ctx *ctx, const msgpack_object *u) {
        const msgpack_object *failure = msg_get(u, "failure"), *result = msg_get(u, "result");
        const msgpack_object *stage = msg_get(u, "stage"), *id = msg_get(u, "update_id");
        _cleanup_free_ char *summary = NULL;
        bool accepted = msg_str_eq(stage, "Accepted");
        int r;

        if (!u || !id || id->type != MSGPACK_OBJECT_STR)
                return ctl_error_errno(EPROTO, "the daemon's answer holds no update");
        if (ctx->json)
                r = print_json(map_to_json(u));
        else if (accepted)
                r = printf("Update '%.*s' accepted.\n", (int) id->via.str.size,
                           id->via.str.ptr) < 0
                            ? -EIO
                            : 0;
        else if (!failure)
                r = print_json(result ? json_from_msgpack(result) : json_null());
        else
                r = 0;
        if (r < 0 || !failure)
                return r;
        summary = failure_summary(failure);
        (void) ctl_error_errno(0, "update '%.*s' failed: %s", (int) id->via.str.size,
                               id->via.str.ptr, summary ? summary : "(no message)");
        return EXIT_FAILURE;
}

/* update-with-start TYPE --name NAME: needs an id conflict policy (Temporal's rule), and waits
 * for completion unless --wait-for-stage accepted. */
int update_with_start_check_args(const Args *a) {
        if (!a->update_name)
                return ctl_error("'update-with-start' needs --name NAME (the update's name)");
        if (!a->id_conflict_policy || (strcmp(a->id_conflict_policy, "UseExisting") != 0 &&
                                       strcmp(a->id_conflict_policy, "Fail") != 0))
                return ctl_error("'update-with-start' needs --id-conflict-policy UseExisting or "
                                 "Fail");
        if (a->wait_for_stage && strcasecmp(a->wait_for_stage, "accepted") != 0 &&
            strcasecmp(a->wait_for_stage, "completed") != 0)
                return ctl_error("invalid value '%s' for --wait-for-stage: expected accepted or "
                                 "completed",
                                 a->wait_for_stage);
        return 0;
}

int verb_update_with_start(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        int r;

        r = start_request(ctx, a, NULL, true, &answer);
        if (r < 0)
                return r;
        return update_print(ctx, msg_get(answer.map, "update"));
}

int verb_update(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        bool start = streq(a->pos[0], "start");
        int r;

        if (streq(a->pos[0], "result"))
                r = CTL_CALL(ctx->client, "PollWorkflowUpdate", &answer,
                             FIELD_STR("workflow_id", a->workflow_id),
                             FIELD_STR("run_id", a->run_id), FIELD_STR("update_id", a->update_id),
                             FIELD_BOOL("wait", !a->wait_for_stage ||
                                                        strcasecmp(a->wait_for_stage,
                                                                   "accepted") != 0),
                             FIELD_UINT("timeout_usec", a->timeout_usec));
        else
                r = CTL_CALL(ctx->client, "UpdateWorkflow", &answer,
                             FIELD_STR("workflow_id", a->workflow_id),
                             FIELD_STR("run_id", a->run_id),
                             FIELD_STR("update_name", a->update_name),
                             FIELD_PAYLOAD("input", a->input),
                             FIELD_STR("update_id", a->update_id),
                             FIELD_STR("wait_for_stage", start ? "Accepted" : "Completed"),
                             FIELD_UINT("timeout_usec", a->timeout_usec));
        if (r < 0)
                return r;
        return update_print(ctx, msg_get(answer.map, "update"));
}

/* The temporal CLI's default reason for cancel and terminate: who asked. */
static const char *user_name(void) {
        const struct passwd *pw = getpwuid(getuid());
        const char *e = getenv("USER");

        if (pw && pw->pw_name)
                return pw->pw_name;
        return e && *e ? e : "unknown user";
}

static int close_request(const Ctx *ctx, const Args *a, const char *op, const char *what) {
        _cleanup_(answer_done) Answer answer = {};
        const char *reason = a->reason ? a->reason : user_name();
        int r;

        r = CTL_CALL(ctx->client, op, &answer, FIELD_STR("workflow_id", a->pos[0]),
                     FIELD_STR("run_id", a->run_id), FIELD_STR("reason", reason));
        if (r < 0)
                return r;
        return done_print(ctx,
                          json_pack("{s:s, s:s*, s:s}", "workflow_id", a->pos[0], "run_id",
                                    a->run_id, "reason", reason),
                          a->pos[0], what);
}

int verb_cancel(const Ctx *ctx, const Args *a) {
        return close_request(ctx, a, "CancelWorkflow", "cancellation requested");
}

int verb_terminate(const Ctx *ctx, const Args *a) {
        return close_request(ctx, a, "TerminateWorkflow", "terminated");
}

static bool copy_str(const msgpack_object *o, char *buf, size_t size) {
        size_t n;

        if (!o || o->type != MSGPACK_OBJECT_STR)
                return false;
        n = MIN(o->via.str.size, size - 1);
        memcpy(buf, o->via.str.ptr, n);
        buf[n] = 0;
        return true;
}

/* activity-types and reload print the same table: the units and the refused files. */
static int activity_types_print(const Ctx *ctx, const msgpack_object *types) {
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        if (!types || types->type != MSGPACK_OBJECT_ARRAY)
                return ctl_error_errno(EPROTO, "durabled's answer about activity types is "
                                               "malformed");
        if (ctx->json)
                return print_json(maps_to_json(types));
        r = table_new(&t, "NAME", "STATE", "RUNNING", "DESCRIPTION / ERROR", NULL);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < types->via.array.size; i++) {
                const msgpack_object *m = &types->via.array.ptr[i], *o;
                char name[256] = "", state[32] = "", text[1024] = "", running[24] = "";

                (void) copy_str(msg_get(m, "name"), name, sizeof(name));
                (void) copy_str(msg_get(m, "state"), state, sizeof(state));
                if (!copy_str(msg_get(m, "error"), text, sizeof(text)))
                        (void) copy_str(msg_get(m, "description"), text, sizeof(text));
                o = msg_get(m, "running");
                if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                        snprintf(running, sizeof(running), "%llu",
                                 (unsigned long long) o->via.u64);
                if ((r = table_add(t, name, NULL)) < 0 ||
                    (r = table_add(t, state, streq(state, "error") ? ANSI_RED : NULL)) < 0 ||
                    (r = table_add(t, running, NULL)) < 0 || (r = table_add(t, text, NULL)) < 0)
                        return r;
        }
        table_print(t);
        return 0;
}

int verb_activity_types(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        int r;

        r = CTL_CALL(ctx->client, "ListActivityTypes", &answer);
        if (r < 0)
                return r;
        return activity_types_print(ctx, msg_get(answer.map, "activity_types"));
}

int verb_reload(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        int r;

        r = CTL_CALL(ctx->client, "Reload", &answer);
        if (r < 0)
                return r;
        return activity_types_print(ctx, msg_get(answer.map, "activity_types"));
}
