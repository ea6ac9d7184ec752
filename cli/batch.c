/* durablectl batch: operations on every run a list filter matches (daemon/batch.h), as
 * `temporal workflow <op> --query` and `temporal batch`. Starting one asks for confirmation on a
 * terminal (--yes skips it; without a terminal --yes is required), then follows its progress on a
 * terminal with a bar and ends with its report; elsewhere it prints the batch id at once (the
 * batch goes on in the daemon, `batch describe ID` shows it). */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/call.h"
#include "cli/output.h"
#include "cli/render.h"
#include "cli/verbs.h"

static const struct {
        const char *command, *operation, *verb;
} kinds[] = {
        { "signal", "Signal", "Signal" },
        { "cancel", "Cancel", "Cancel" },
        { "terminate", "Terminate", "Terminate" },
        { "delete", "Delete", "Delete" },
        { "reset", "Reset", "Reset" },
        { "pause", "Pause", "Pause" },
        { "unpause", "Unpause", "Unpause" },
};

static int kind_find(const char *command) {
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (streq(kinds[i].command, command))
                        return (int) i;
        return -1;
}

int batch_check_args(const Args *a) {
        const char *c = a->pos[0];
        int k = kind_find(c);

        if (k < 0 && !streq(c, "describe") && !streq(c, "list"))
                return ctl_error("unknown batch command '%s': expected signal, cancel, terminate, "
                                 "delete, reset, pause, unpause, describe or list",
                                 c);
        if (streq(c, "describe") && a->n_pos < 2)
                return ctl_error("missing argument ID for 'batch describe'");
        if (k >= 0 && streq(c, "signal") && a->n_pos < 2)
                return ctl_error("missing argument NAME for 'batch signal'");
        if (a->n_pos > 2 || (a->n_pos > 1 && (streq(c, "list") || (k >= 0 && !streq(c, "signal")))))
                return ctl_error("unexpected argument '%s' for 'batch %s'", a->pos[a->n_pos - 1],
                                 c);
        if (k >= 0 && !a->query)
                return ctl_error("missing --query FILTER for 'batch %s' (\"\" for every run)", c);
        if (k < 0 && (a->query || a->yes || a->rps))
                return ctl_error("options --query, --yes and --rps are only for batch operations");
        if ((a->to || a->n_reapply_exclude) && !streq(c, "reset"))
                return ctl_error("options --to and --reapply-exclude are only for 'batch reset'");
        if (a->input && !streq(c, "signal"))
                return ctl_error("option --input is only for 'batch signal'");
        if (k >= 0 && !a->yes && !isatty(STDIN_FILENO))
                return ctl_error("--yes is required when standard input is not a terminal");
        return 0;
}

static void print_report(const json_t *batch, const json_t *failures) {
        size_t i;
        json_t *f;

        kv_print("Batch", NULL, "%s", json_string_value(json_object_get(batch, "batch_id")));
        kv_print("Operation", NULL, "%s", json_string_value(json_object_get(batch, "op")));
        kv_print("Query", NULL, "%s", json_string_value(json_object_get(batch, "query")));
        kv_print("State", NULL, "%s", json_string_value(json_object_get(batch, "state")));
        kv_print("Runs", NULL, "%lld", json_integer_value(json_object_get(batch, "total")));
        kv_print("Succeeded", NULL, "%lld",
                 json_integer_value(json_object_get(batch, "succeeded")));
        kv_print("Failed", NULL, "%lld", json_integer_value(json_object_get(batch, "failed")));
        json_array_foreach(failures, i, f)
                kv_print(i == 0 ? "Failures" : "", NULL, "%s %s: %s (%s)",
                         json_string_value(json_object_get(f, "workflow_id")),
                         json_string_value(json_object_get(f, "run_id")),
                         json_string_value(json_object_get(f, "message")),
                         json_string_value(json_object_get(f, "code")));
}

static int describe(const Ctx *ctx, const char *id, json_t **ret) {
        _cleanup_(answer_done) Answer answer = {};
        int r;

        r = CTL_CALL(ctx->client, "DescribeBatchOperation", &answer, FIELD_STR("batch_id", id));
        if (r < 0)
                return r;
        *ret = map_to_json(answer.map);
        return *ret ? 0 : ctl_error_errno(ENOMEM, "Out of memory");
}

static int print_doc(json_t *j) {
        _cleanup_(json_decrefp) json_t *doc = j;

        if (!doc || json_print(doc) < 0)
                return ctl_error_errno(ENOMEM, "Out of memory");
        return 0;
}

/* The bar, redrawn in place, until the batch completes (it goes on in the daemon if we stop). */
static int follow(const Ctx *ctx, const char *id, json_t **ret) {
        for (;;) {
                json_t *d = NULL, *b;
                long long total, done;
                int r, width = 40, fill;

                r = describe(ctx, id, &d);
                if (r < 0)
                        return r;
                b = json_object_get(d, "batch");
                total = json_integer_value(json_object_get(b, "total"));
                done = json_integer_value(json_object_get(b, "succeeded")) +
                       json_integer_value(json_object_get(b, "failed"));
                fill = total > 0 ? (int) (done * width / total) : width;
                fprintf(stderr, "\r[%.*s%*s] %lld/%lld", fill,
                        "########################################", width - fill, "", done, total);
                if (streq(json_string_value(json_object_get(b, "state")) ?: "", "Completed")) {
                        fputc('\n', stderr);
                        *ret = d;
                        return 0;
                }
                json_decref(d);
                (void) nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL);
        }
}

static bool confirm(const Ctx *ctx, const Args *a, const char *verb) {
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_(json_decrefp) json_t *j = NULL;
        char line[16];
        uint64_t n;

        if (CTL_CALL(ctx->client, "CountWorkflows", &answer, FIELD_STR("query", a->query)) < 0)
                return false;
        j = map_to_json(answer.map);
        n = (uint64_t) json_integer_value(json_object_get(j, "count"));
        fprintf(stderr, "%s %llu workflow run%s matching \"%s\"? [y/N] ", verb,
                (unsigned long long) n, n == 1 ? "" : "s", a->query);
        return fgets(line, sizeof(line), stdin) && (line[0] == 'y' || line[0] == 'Y');
}

static int start(const Ctx *ctx, const Args *a, int k) {
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_(json_decrefp) json_t *report = NULL;
        const char *id;
        int r;

        if (!a->yes && !confirm(ctx, a, kinds[k].verb))
                return ctl_error("not confirmed: nothing done");
        r = CTL_CALL(ctx->client, "StartBatchOperation", &answer,
                     FIELD_STR("operation", kinds[k].operation), FIELD_STR("query", a->query),
                     FIELD_UINT("rps", a->rps), FIELD_STR("reason", a->reason),
                     FIELD_STR("signal_name", a->n_pos > 1 ? a->pos[1] : NULL),
                     FIELD_PAYLOAD("input", a->input), FIELD_STR("to", a->to),
                     FIELD_STRV("reapply_exclude", a->reapply_exclude, a->n_reapply_exclude));
        if (r < 0)
                return r;
        report = map_to_json(answer.map);
        id = json_string_value(json_object_get(report, "batch_id"));
        if (!id)
                return ctl_error_errno(EPROTO, "durabled's answer to StartBatchOperation is "
                                               "malformed");
        if (ctx->json || !isatty(STDOUT_FILENO)) {
                if (ctx->json)
                        return print_doc(json_incref(report));
                printf("Batch %s started on %lld runs.\n", id,
                       json_integer_value(json_object_get(report, "total")));
                return 0;
        }
        {
                _cleanup_(json_decrefp) json_t *d = NULL;

                r = follow(ctx, id, &d);
                if (r < 0)
                        return r;
                print_report(json_object_get(d, "batch"), json_object_get(d, "failures"));
        }
        return 0;
}

static int list(const Ctx *ctx) {
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_(json_decrefp) json_t *all = NULL, *doc = NULL;
        json_t *b;
        size_t i;
        int r;

        r = CTL_CALL(ctx->client, "ListBatchOperations", &answer, FIELD_UINT("limit", 0));
        if (r < 0)
                return r;
        doc = map_to_json(answer.map);
        all = json_incref(json_object_get(doc, "batches"));
        if (!all)
                return ctl_error_errno(EPROTO, "durabled's answer to ListBatchOperations is "
                                               "malformed");
        if (ctx->json)
                return print_doc(json_incref(all));
        r = table_new(&t, "BATCH", "OPERATION", "STATE", "RUNS", "SUCCEEDED", "FAILED", "QUERY",
                      NULL);
        if (r < 0)
                return ctl_error_errno(r, "Out of memory");
        json_array_foreach(all, i, b) {
                char n[3][24];
                const char *keys[3] = { "total", "succeeded", "failed" };

                for (int k = 0; k < 3; k++)
                        snprintf(n[k], sizeof(n[k]), "%lld",
                                 json_integer_value(json_object_get(b, keys[k])));
                if ((r = table_add(t, json_string_value(json_object_get(b, "batch_id")),
                                   ANSI_BOLD)) < 0 ||
                    (r = table_add(t, json_string_value(json_object_get(b, "op")), NULL)) < 0 ||
                    (r = table_add(t, json_string_value(json_object_get(b, "state")), NULL)) < 0 ||
                    (r = table_add(t, n[0], NULL)) < 0 || (r = table_add(t, n[1], NULL)) < 0 ||
                    (r = table_add(t, n[2], NULL)) < 0 ||
                    (r = table_add(t, json_string_value(json_object_get(b, "query")), NULL)) < 0)
                        return ctl_error_errno(r, "Out of memory");
        }
        table_print(t);
        return 0;
}

int verb_batch(const Ctx *ctx, const Args *a) {
        int k = kind_find(a->pos[0]);

        if (k >= 0)
                return start(ctx, a, k);
        if (streq(a->pos[0], "list"))
                return list(ctx);
        {
                _cleanup_(json_decrefp) json_t *d = NULL;
                int r = describe(ctx, a->pos[1], &d);

                if (r < 0)
                        return r;
                if (ctx->json)
                        return print_doc(json_incref(d));
                print_report(json_object_get(d, "batch"), json_object_get(d, "failures"));
        }
        return 0;
}
