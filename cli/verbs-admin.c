/* The administration verbs of durablectl: verify (the history linter over the store, through
 * the daemon) and backup (a consistent copy of the database while the daemon runs). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/call.h"
#include "cli/output.h"
#include "cli/render.h"
#include "cli/verbs.h"

typedef struct Problem {
        const char *workflow_id;
        const char *run_id;
        uint64_t event_id;
        const char *message;
} Problem;

static int problem_print(Answer *answer, const msgpack_object *map) {
        static const MsgField fields[] = {
                { "workflow_id", MSG_STR, offsetof(Problem, workflow_id), true },
                { "run_id", MSG_STR, offsetof(Problem, run_id), true },
                { "event_id", MSG_UINT, offsetof(Problem, event_id) },
                { "message", MSG_STR, offsetof(Problem, message), true },
                {},
        };
        Problem p = {};
        int r;

        r = answer_parse(answer, map, fields, &p);
        if (r < 0)
                return r;
        printf("%s%s%s run %s: %s\n", ansi(ANSI_BOLD), p.workflow_id, ansi(ANSI_NORMAL), p.run_id,
               p.message);
        return 0;
}

typedef struct VerifyAnswer {
        uint64_t runs;
        uint64_t events;
        uint64_t problem_count;
        const msgpack_object *problems;
} VerifyAnswer;

int verb_verify(const Ctx *ctx, const Args *a) {
        static const MsgField fields[] = {
                { "runs", MSG_UINT, offsetof(VerifyAnswer, runs), true },
                { "events", MSG_UINT, offsetof(VerifyAnswer, events) },
                { "problem_count", MSG_UINT, offsetof(VerifyAnswer, problem_count), true },
                { "problems", MSG_ARRAY, offsetof(VerifyAnswer, problems), true },
                {},
        };
        _cleanup_(answer_done) Answer answer = {};
        VerifyAnswer v = {};
        int r;

        r = CTL_CALL(ctx->client, "VerifyHistory", &answer,
                     FIELD_STRV("workflow_ids", a->pos, a->n_pos));
        if (r < 0)
                return r;
        r = answer_parse(&answer, answer.map, fields, &v);
        if (r < 0)
                return r;
        if (ctx->json) {
                _cleanup_(json_decrefp) json_t *doc = map_to_json(answer.map);

                if (!doc)
                        return ctl_error_errno(ENOMEM, "Out of memory");
                r = json_print(doc);
                if (r < 0)
                        return ctl_error_errno(r, "Failed to print the answer as JSON");
                return v.problem_count > 0 ? EXIT_FAILURE : 0;
        }
        for (uint32_t i = 0; i < v.problems->via.array.size; i++) {
                r = problem_print(&answer, &v.problems->via.array.ptr[i]);
                if (r < 0)
                        return r;
        }
        if (v.problem_count > v.problems->via.array.size)
                printf("... and %llu more\n",
                       (unsigned long long) (v.problem_count - v.problems->via.array.size));
        printf("%llu run%s, %llu events checked: %s%llu broken%s\n", (unsigned long long) v.runs,
               v.runs == 1 ? "" : "s", (unsigned long long) v.events,
               ansi(v.problem_count ? ANSI_RED : ANSI_GREEN), (unsigned long long) v.problem_count,
               ansi(ANSI_NORMAL));
        return v.problem_count > 0 ? EXIT_FAILURE : 0;
}

typedef struct BackupAnswer {
        const char *path;
        uint64_t pages;
        uint64_t size;
} BackupAnswer;

/* The daemon writes the file, so a relative FILE is made absolute here, against our directory. */
static int absolute_path(const char *file, char **ret) {
        _cleanup_free_ char *cwd = NULL;

        if (file[0] == '/') {
                *ret = strdup(file);
                return *ret ? 0 : -ENOMEM;
        }
        cwd = getcwd(NULL, 0);
        if (!cwd)
                return -errno;
        return asprintf(ret, "%s/%s", cwd, file) < 0 ? -ENOMEM : 0;
}

int verb_backup(const Ctx *ctx, const Args *a) {
        static const MsgField fields[] = {
                { "path", MSG_STR, offsetof(BackupAnswer, path), true },
                { "pages", MSG_UINT, offsetof(BackupAnswer, pages) },
                { "size", MSG_UINT, offsetof(BackupAnswer, size) },
                {},
        };
        _cleanup_(answer_done) Answer answer = {};
        _cleanup_free_ char *path = NULL;
        BackupAnswer b = {};
        int r;

        r = absolute_path(a->pos[0], &path);
        if (r < 0)
                return ctl_error_errno(r, "Cannot make '%s' an absolute path: %m", a->pos[0]);
        r = CTL_CALL(ctx->client, "BackupDatabase", &answer, FIELD_STR("path", path));
        if (r < 0)
                return r;
        r = answer_parse(&answer, answer.map, fields, &b);
        if (r < 0)
                return r;
        if (ctx->json) {
                _cleanup_(json_decrefp) json_t *doc = map_to_json(answer.map);

                if (!doc)
                        return ctl_error_errno(ENOMEM, "Out of memory");
                return json_print(doc) < 0 ? ctl_error_errno(EINVAL, "Cannot print JSON") : 0;
        }
        printf("Backed up the database to %s (%llu bytes, %llu pages)\n", b.path,
               (unsigned long long) b.size, (unsigned long long) b.pages);
        return 0;
}
