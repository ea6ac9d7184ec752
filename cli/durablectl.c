/* durablectl: start, inspect and control durabled workflows from the shell.
 *
 * The command line is "durablectl [OPTIONS] VERB [ARGS] [OPTIONS]". Both the verbs and the
 * options are tables: every option is described once in `options` and each verb names the ones
 * it accepts, so that parsing, the checks for missing arguments and the --help text all come
 * from the same rows. The global options (--socket, --user, --json, --no-pager, --help) are
 * accepted before and after the verb.
 *
 * Everything that can be wrong with the command line is found before connecting, and ends with
 * exit status 2; failed operations end with 1 (see verbs.h). */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/output.h"
#include "cli/pager.h"
#include "cli/parse.h"
#include "cli/verbs.h"
#include "durable/durable.h"
#include "proto/event.h"

#define EXIT_USAGE 2
#define SYSTEM_SOCKET "/run/durabled/io.sock"

typedef enum Opt {
        OPT_HELP,
        OPT_VERSION,
        OPT_SOCKET,
        OPT_USER,
        OPT_JSON,
        OPT_NO_PAGER,
        OPT_ID,
        OPT_TASK_QUEUE,
        OPT_INPUT,
        OPT_INPUT_FILE,
        OPT_TASK_TIMEOUT,
        OPT_REQUEST_ID,
        OPT_RUN_ID,
        OPT_WAIT,
        OPT_FOLLOW,
        OPT_TIMEOUT,
        OPT_STATUS,
        OPT_TYPE,
        OPT_LIMIT,
        OPT_REASON,
        _OPT_MAX,
} Opt;

#define BIT(o) (UINT32_C(1) << (o))
#define GLOBAL_OPTS \
        (BIT(OPT_HELP) | BIT(OPT_SOCKET) | BIT(OPT_USER) | BIT(OPT_JSON) | BIT(OPT_NO_PAGER))
#define INPUT_OPTS (BIT(OPT_INPUT) | BIT(OPT_INPUT_FILE))
#define START_OPTS                                                                \
        (BIT(OPT_ID) | BIT(OPT_TASK_QUEUE) | INPUT_OPTS | BIT(OPT_TASK_TIMEOUT) | \
         BIT(OPT_REQUEST_ID))
/* getopt_long() values: above every character, so no long option collides with a short one. */
#define OPT_VAL_BASE 0x100

typedef struct OptionDef {
        const char *name;
        const char *metavar; /* NULL: takes no argument */
        const char *help;
        size_t str_field; /* offset of the "const char *" in Args that takes the value, or 0 */
} OptionDef;

#define STR_FIELD(f) offsetof(Args, f)

static const OptionDef options[_OPT_MAX] = {
        [OPT_HELP] = { "help", NULL, "Show this help" },
        [OPT_VERSION] = { "version", NULL, "Show the version" },
        [OPT_SOCKET] = { "socket", "PATH", "Connect to durabled at PATH" },
        [OPT_USER] = { "user", NULL, "Connect to the user's durabled ($XDG_RUNTIME_DIR/durabled)" },
        [OPT_JSON] = { "json", NULL, "Print JSON instead of text" },
        [OPT_NO_PAGER] = { "no-pager", NULL, "Do not pipe output into a pager" },
        [OPT_ID] = { "id", "ID", "Workflow id (required)", STR_FIELD(workflow_id) },
        [OPT_TASK_QUEUE] = { "task-queue", "QUEUE",
                             "Task queue (required to start; a filter for list)",
                             STR_FIELD(task_queue) },
        [OPT_INPUT] = { "input", "JSON", "The input (workflow, signal or query argument) as JSON" },
        [OPT_INPUT_FILE] = { "input-file", "FILE", "Read the input JSON from FILE (- for stdin)" },
        [OPT_TASK_TIMEOUT] = { "task-timeout", "DURATION", "Workflow task timeout (default 10s)" },
        [OPT_REQUEST_ID] = { "request-id", "ID",
                             "Starting again with the same ID returns the same run",
                             STR_FIELD(request_id) },
        [OPT_RUN_ID] = { "run-id", "RUN", "Act on this run instead of the latest one",
                         STR_FIELD(run_id) },
        [OPT_WAIT] = { "wait", NULL, "Wait until the run closes" },
        [OPT_FOLLOW] = { "follow", NULL, "Keep printing new events until the run closes" },
        [OPT_TIMEOUT] = { "timeout", "DURATION", "Give up waiting after DURATION" },
        [OPT_STATUS] = { "status", "STATUS", "Only workflows in STATUS (Running, Completed, ...)" },
        [OPT_TYPE] = { "type", "TYPE", "Only workflows of TYPE", STR_FIELD(type) },
        [OPT_LIMIT] = { "limit", "N", "Show at most N workflows (default 1000)" },
        [OPT_REASON] = { "reason", "TEXT",
                         "Reason recorded in the history (default: your user name)",
                         STR_FIELD(reason) },
};

typedef struct Verb {
        const char *name;
        const char *args;  /* positional arguments; a "JSON" one is parsed as the input */
        unsigned min_args; /* then [optional ones] */
        unsigned max_args;
        uint32_t options;  /* accepted besides GLOBAL_OPTS */
        uint32_t required; /* options that must be given */
        bool pager;        /* long output: use the pager */
        int (*run)(const Ctx *ctx, const Args *a);
        const char *summary;
} Verb;

static const Verb verbs[] = {
        { "start", "TYPE", 1, 1, START_OPTS, BIT(OPT_ID) | BIT(OPT_TASK_QUEUE), false, verb_start,
          "Start a workflow of TYPE; print its workflow id and run id" },
        { "execute", "TYPE", 1, 1, START_OPTS, BIT(OPT_ID) | BIT(OPT_TASK_QUEUE), false,
          verb_execute, "Start a workflow and wait for its result" },
        { "result", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_WAIT) | BIT(OPT_TIMEOUT), 0, false,
          verb_result, "Show the status and result of a workflow" },
        { "describe", "ID", 1, 1, BIT(OPT_RUN_ID), 0, true, verb_describe,
          "Show a workflow: status, times, result or failure, pending activities" },
        { "list", "", 0, 0, BIT(OPT_STATUS) | BIT(OPT_TYPE) | BIT(OPT_TASK_QUEUE) | BIT(OPT_LIMIT),
          0, true, verb_list, "List workflows" },
        { "history", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_FOLLOW), 0, true, verb_history,
          "Show the event history of a workflow run" },
        { "signal", "ID NAME [JSON]", 2, 3, BIT(OPT_RUN_ID) | INPUT_OPTS, 0, false, verb_signal,
          "Send signal NAME, with an optional JSON argument" },
        { "query", "ID NAME [JSON]", 2, 3, BIT(OPT_RUN_ID) | BIT(OPT_TIMEOUT) | INPUT_OPTS, 0,
          false, verb_query, "Ask query NAME; print its result as JSON" },
        { "cancel", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON), 0, false, verb_cancel,
          "Ask a workflow to cancel itself" },
        { "terminate", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON), 0, false, verb_terminate,
          "Stop a workflow at once, without running its code" },
        { "verify", "[ID...]", 0, 1000, 0, 0, true, verb_verify,
          "Check the histories of every run (or of these workflows) for broken rules" },
        { "backup", "FILE", 1, 1, 0, 0, false, verb_backup,
          "Copy the database to FILE, consistent while durabled runs" },
};

static const char *arg_socket;
static bool arg_user;
static bool arg_json;
static bool arg_pager = true;
static bool arg_help;

static const Verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

/* ---- help ------------------------------------------------------------------------------------ */

static void options_help(uint32_t mask) {
        for (size_t o = 0; o < _OPT_MAX; o++) {
                char left[48];

                if (!(mask & BIT(o)))
                        continue;
                snprintf(left, sizeof(left), "%s--%s%s%s", o == OPT_HELP ? "-h " : "   ",
                         options[o].name, options[o].metavar ? " " : "",
                         options[o].metavar ? options[o].metavar : "");
                printf("  %-28s %s\n", left, options[o].help);
        }
}

static void help(void) {
        printf("%sdurablectl%s [OPTIONS...] VERB [ARGS...]\n\n"
               "Start, inspect and control the workflows of durabled.\n\n%sVerbs:%s\n",
               ansi(ANSI_BOLD), ansi(ANSI_NORMAL), ansi(ANSI_BOLD), ansi(ANSI_NORMAL));
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char left[48];

                snprintf(left, sizeof(left), "%s %s", verbs[i].name, verbs[i].args);
                printf("  %-28s %s\n", left, verbs[i].summary);
        }
        printf("\n%sOptions:%s\n", ansi(ANSI_BOLD), ansi(ANSI_NORMAL));
        options_help(GLOBAL_OPTS | BIT(OPT_VERSION));
        printf("\nSee 'durablectl VERB --help' and durablectl(1) for details.\n");
}

static void verb_help(const Verb *v) {
        printf("%sdurablectl %s%s", ansi(ANSI_BOLD), v->name, ansi(ANSI_NORMAL));
        if (*v->args)
                printf(" %s", v->args);
        for (size_t o = 0; o < _OPT_MAX; o++)
                if (v->required & BIT(o))
                        printf(" --%s %s", options[o].name, options[o].metavar);
        printf(" [OPTIONS...]\n\n%s.\n", v->summary);
        if (v->options) {
                printf("\n%sOptions:%s\n", ansi(ANSI_BOLD), ansi(ANSI_NORMAL));
                options_help(v->options);
        }
        printf("\n%sGlobal options:%s\n", ansi(ANSI_BOLD), ansi(ANSI_NORMAL));
        options_help(GLOBAL_OPTS);
}

/* ---- parsing --------------------------------------------------------------------------------- */

/* struct option rows for the options in @mask, ended by a zero row. */
static void getopt_table(uint32_t mask, struct option table[static _OPT_MAX + 1]) {
        size_t n = 0;

        for (size_t o = 0; o < _OPT_MAX; o++)
                if (mask & BIT(o))
                        table[n++] = (struct option){
                                .name = options[o].name,
                                .has_arg = options[o].metavar ? required_argument : no_argument,
                                .val = OPT_VAL_BASE + (int) o,
                        };
        table[n] = (struct option){};
}

static int parse_status(const char *text, const char **ret) {
        WorkflowStatus s = workflow_status_from_string(text);

        if (s < 0)
                return ctl_error("invalid value '%s' for --status: expected Running, Completed, "
                                 "Failed, Canceled, Terminated, TimedOut or ContinuedAsNew",
                                 text);
        *ret = workflow_status_to_string(s);
        return 0;
}

static int set_input(Args *a, json_t *j) {
        if (a->input) {
                json_decref(j);
                return ctl_error("the input is given twice (--input, --input-file or a JSON "
                                 "argument: use one)");
        }
        a->input = j;
        return 0;
}

/* Applies one option; @value is its argument or NULL. */
static int option_apply(Args *a, Opt o, const char *value) {
        json_t *j = NULL;
        int r;

        if (options[o].str_field > 0) {
                memcpy((char *) a + options[o].str_field, &value, sizeof(value));
                return 0;
        }
        switch (o) {
        case OPT_HELP:
                arg_help = true;
                return 0;
        case OPT_SOCKET:
                arg_socket = value;
                return 0;
        case OPT_USER:
                arg_user = true;
                return 0;
        case OPT_JSON:
                arg_json = true;
                return 0;
        case OPT_NO_PAGER:
                arg_pager = false;
                return 0;
        case OPT_WAIT:
                a->wait = true;
                return 0;
        case OPT_FOLLOW:
                a->follow = true;
                return 0;
        case OPT_STATUS:
                return parse_status(value, &a->status);
        case OPT_LIMIT:
                return parse_count("--limit", value, UINT32_MAX, &a->limit);
        case OPT_TASK_TIMEOUT:
                return parse_duration("--task-timeout", value, &a->task_timeout_usec);
        case OPT_TIMEOUT:
                return parse_duration("--timeout", value, &a->timeout_usec);
        case OPT_INPUT:
                r = parse_json("--input", value, &j);
                return r < 0 ? r : set_input(a, j);
        case OPT_INPUT_FILE:
                r = parse_json_file("--input-file", value, &j);
                return r < 0 ? r : set_input(a, j);
        default: /* --version ends parse_global(); string options are handled above */
                break;
        }
        return 0;
}

/* The message for getopt_long()'s '?' and ':' answers, for the option at argv[optind - 1]. */
static int option_error(int c, const char *context, char *argv[]) {
        const char *arg = argv[optind - 1];

        if (c == ':')
                return ctl_error("option '%s' needs an argument%s", arg, context);
        if (strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
                return ctl_error("option '%.*s' takes no argument%s",
                                 (int) (strchr(arg, '=') - arg), arg, context);
        return ctl_error("unknown option '%s'%s", arg, context);
}

/* Reads the options before the verb; leaves optind at the verb. 1 after --version. */
static int parse_global(int argc, char *argv[], Args *a) {
        struct option table[_OPT_MAX + 1];
        int c;

        getopt_table(GLOBAL_OPTS | BIT(OPT_VERSION), table);
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", table, NULL)) >= 0) {
                if (c == 'h')
                        c = OPT_VAL_BASE + OPT_HELP;
                if (c == '?' || c == ':')
                        return option_error(c, " (see 'durablectl --help')", argv);
                if (c == OPT_VAL_BASE + OPT_VERSION) {
                        printf("durablectl %s\n", DURABLED_VERSION);
                        return 1;
                }
                (void) option_apply(a, (Opt) (c - OPT_VAL_BASE), optarg);
        }
        return 0;
}

/* The name of positional argument @i of @v ("TYPE", "NAME", "JSON"), into @buf. */
static const char *positional_name(const Verb *v, size_t i, char buf[static 32]) {
        const char *p = v->args;

        for (; i > 0 && p; i--)
                p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
        if (!p)
                return "";
        p += strspn(p, "[");
        snprintf(buf, 32, "%.*s", (int) strcspn(p, " ]"), p);
        return buf;
}

static int check_positionals(const Verb *v, Args *a) {
        char name[32], what[64];
        json_t *j;
        int r;

        if (a->n_pos < v->min_args)
                return ctl_error("missing argument %s for '%s' (see 'durablectl %s --help')",
                                 positional_name(v, a->n_pos, name), v->name, v->name);
        if (a->n_pos > v->max_args)
                return ctl_error("unexpected argument '%s' for '%s' (see 'durablectl %s --help')",
                                 a->pos[v->max_args], v->name, v->name);
        for (size_t i = 0; i < a->n_pos; i++) {
                if (!streq(positional_name(v, i, name), "JSON"))
                        continue;
                snprintf(what, sizeof(what), "the JSON argument of '%s'", v->name);
                r = parse_json(what, a->pos[i], &j);
                if (r < 0)
                        return r;
                r = set_input(a, j);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_required(const Verb *v, const Args *a) {
        const char *given[_OPT_MAX] = {
                [OPT_ID] = a->workflow_id,
                [OPT_TASK_QUEUE] = a->task_queue,
        };

        for (size_t o = 0; o < _OPT_MAX; o++)
                if ((v->required & BIT(o)) && !given[o])
                        return ctl_error("missing --%s %s for '%s' (see 'durablectl %s --help')",
                                         options[o].name, options[o].metavar, v->name, v->name);
        return 0;
}

/* Reads the verb's arguments and options from argv[0] (the verb) on; 1 when --help was given. */
static int parse_verb(const Verb *v, int argc, char *argv[], Args *a) {
        struct option table[_OPT_MAX + 1];
        char context[64];
        int c, r;

        snprintf(context, sizeof(context), " for '%s' (see 'durablectl %s --help')", v->name,
                 v->name);
        getopt_table(GLOBAL_OPTS | v->options, table);
        optind = 0; /* glibc: start again, and skip argv[0] */
        while ((c = getopt_long(argc, argv, ":h", table, NULL)) >= 0) {
                if (c == 'h')
                        c = OPT_VAL_BASE + OPT_HELP;
                if (c == '?' || c == ':')
                        return option_error(c, context, argv);
                r = option_apply(a, (Opt) (c - OPT_VAL_BASE), optarg);
                if (r < 0)
                        return r;
        }
        if (arg_help)
                return 1;
        a->pos = argv + optind;
        a->n_pos = (size_t) (argc - optind);
        r = check_positionals(v, a);
        if (r < 0)
                return r;
        return check_required(v, a);
}

/* ---- connecting ------------------------------------------------------------------------------ */

/* --socket, $DURABLED_SOCKET, then the user socket (--user, or not root) or the system one. */
static int socket_path(char **ret) {
        const char *env = getenv("DURABLED_SOCKET"), *runtime;
        char *p;

        if (arg_socket || (env && *env)) {
                p = strdup(arg_socket ? arg_socket : env);
        } else if (!arg_user && geteuid() == 0) {
                p = strdup(SYSTEM_SOCKET);
        } else {
                runtime = getenv("XDG_RUNTIME_DIR");
                if (!runtime || !*runtime)
                        return ctl_error_errno(ENXIO, "$XDG_RUNTIME_DIR is not set: cannot find "
                                                      "the user's durabled (use --socket PATH)");
                if (asprintf(&p, "%s/durabled/io.sock", runtime) < 0)
                        p = NULL;
        }
        if (!p)
                return ctl_error_errno(ENOMEM, "Out of memory");
        *ret = p;
        return 0;
}

static int connect_daemon(dur_client **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = socket_path(&path);
        if (r < 0)
                return r;
        r = dur_client_connect(ret, path);
        if (r < 0)
                return ctl_error_errno(r, "cannot connect to durabled at %s: %m", path);
        return 0;
}

static int run(const Verb *v, const Args *a) {
        Ctx ctx = { .json = arg_json };
        int r;

        r = connect_daemon(&ctx.client);
        if (r < 0)
                return r;
        /* A pager would hold back what --follow streams. */
        if (v->pager && arg_pager && !arg_json && !a->follow)
                pager_open();
        r = v->run(&ctx, a);
        pager_close();
        dur_client_free(ctx.client);
        return r;
}

int main(int argc, char *argv[]) {
        Args a = {};
        const Verb *v;
        int r;

        r = parse_global(argc, argv, &a);
        if (r != 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        output_init(arg_json);
        if (optind >= argc) {
                if (arg_help) {
                        help();
                        return EXIT_SUCCESS;
                }
                (void) ctl_error("missing verb (see 'durablectl --help')");
                return EXIT_USAGE;
        }
        v = verb_find(argv[optind]);
        if (!v) {
                (void) ctl_error("unknown verb '%s' (see 'durablectl --help')", argv[optind]);
                return EXIT_USAGE;
        }
        r = parse_verb(v, argc - optind, argv + optind, &a);
        if (r != 0) {
                json_decref(a.input);
                if (r > 0)
                        verb_help(v);
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        }
        output_init(arg_json); /* --json may follow the verb */
        r = run(v, &a);
        json_decref(a.input);
        return r < 0 ? EXIT_FAILURE : r;
}
