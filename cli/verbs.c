/* The verbs of durablectl; see verbs.h. Each verb is one request (execute: two) and a printer for
 * its answer, readable or --json. */

#include "cli/verbs.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

        r = CTL_CALL(ctx->client, signal_name ? "SignalWithStart" : "StartWorkflow", answer,
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
                     FIELD_PAYLOAD("signal_input", signal_name ? a->signal_input : NULL));
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

/* ---- describe, list, history ----------------------------------------------------------------- */

/* The answer's fields besides the workflow map: the history's size, its warning, the run a
 * continued-as-new run continues as. */
static const char *const describe_extras[] = { "history_size_bytes", "history_warning",
                                               "new_execution_run_id" };

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

int verb_describe(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        const msgpack_object *workflow, *pending;
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
        if (ctx->json)
                return print_json(described_to_json(answer.map, workflow, pending));
        r = workflow_info_parse(&answer, workflow, &w);
        if (r < 0)
                return r;
        workflow_print(&w, true);
        describe_extras_print(answer.map);
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
        const msgpack_object *workflows;
        int r;

        r = CTL_CALL(ctx->client, "ListWorkflows", &answer, FIELD_STR("status", a->status),
                     FIELD_STR("workflow_type", a->type), FIELD_STR("task_queue", a->task_queue),
                     FIELD_UINT("limit", a->limit));
        if (r < 0)
                return r;
        workflows = msg_get(answer.map, "workflows");
        if (workflows && workflows->type != MSGPACK_OBJECT_ARRAY)
                return ctl_error_errno(EPROTO, "durabled's answer to ListWorkflows is malformed");
        if (ctx->json)
                return print_json(maps_to_json(workflows));
        return list_print(&answer, workflows);
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

/* history --follow: the events so far, then each new one as the run appends it, until it
 * closes. Each GetHistory is a long poll (wait=true) for the event after the last one shown. */
static int history_follow(const Ctx *ctx, const Args *a) {
        _cleanup_free_ char *run_id = NULL;
        uint64_t last_id = 0;
        bool closed = false;
        int r = 0;

        if (!ctx->json)
                printf("%-4s  %-27s  %-32s  %s\n", "ID", "TIME", "TYPE", "DETAILS");
        while (!closed) {
                _cleanup_(answer_done) Answer answer = {};
                const msgpack_object *events, *rid;

                r = CTL_CALL(
                        ctx->client, "GetHistory", &answer, FIELD_STR("workflow_id", a->pos[0]),
                        FIELD_STR("run_id", run_id ? run_id : a->run_id),
                        FIELD_UINT("from_event_id", last_id + 1), FIELD_BOOL("wait", last_id > 0));
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
                r = follow_print(ctx, &answer, events, &last_id, &closed);
                if (r < 0)
                        return r;
        }
        return 0;
}

int verb_history(const Ctx *ctx, const Args *a) {
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_(table_freep) Table *t = NULL;
        const msgpack_object *events;
        int r;

        if (a->follow)
                return history_follow(ctx, a);
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
