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
#include "proto/policy.h"

#define EXIT_USAGE 2
#define SYSTEM_SOCKET "/run/durabled/io.sock"

typedef enum Opt {
        OPT_HELP,
        OPT_VERSION,
        OPT_SOCKET,
        OPT_USER,
        OPT_JSON,
        OPT_NO_PAGER,
        OPT_NO_LEGEND,
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
        OPT_TOKEN,
        OPT_ITERATIONS,
        OPT_BASE_TIME,
        OPT_CALENDAR,
        OPT_INTERVAL,
        OPT_START_TIME,
        OPT_END_TIME,
        OPT_JITTER,
        OPT_ID_PREFIX,
        OPT_OVERLAP,
        OPT_CATCHUP,
        OPT_CATCHUP_WINDOW,
        OPT_PAUSE_ON_FAILURE,
        OPT_PAUSED,
        OPT_NOTE,
        OPT_WAKE_SYSTEM,
        OPT_QUERY,
        OPT_PAGE_TOKEN,
        OPT_MEMO,
        OPT_SEARCH_ATTRIBUTE,
        OPT_ID_REUSE_POLICY,
        OPT_ID_CONFLICT_POLICY,
        OPT_SIGNAL_INPUT,
        OPT_EXECUTION_TIMEOUT,
        OPT_RUN_TIMEOUT,
        OPT_START_DELAY,
        OPT_NAME,
        OPT_UPDATE_ID,
        OPT_WAIT_FOR_STAGE,
        OPT_UPDATE_INPUT,
        OPT_PRIORITY_KEY,
        OPT_FAIRNESS_KEY,
        OPT_FAIRNESS_WEIGHT,
        OPT_CONCURRENCY,
        OPT_RATE,
        OPT_BURST,
        OPT_EVENT_ID,
        OPT_TO,
        OPT_REAPPLY_EXCLUDE,
        OPT_NEW_ID,
        OPT_STEP,
        OPT_YES,
        OPT_RPS,
        OPT_KEY,
        OPT_ACTIVITY_TYPE,
        _OPT_MAX,
} Opt;

typedef unsigned __int128 OptMask; /* one bit per Opt */
#define BIT(o) ((OptMask) 1 << (o))
_Static_assert(_OPT_MAX <= 128, "verbs name their options in an OptMask");
#define GLOBAL_OPTS \
        (BIT(OPT_HELP) | BIT(OPT_SOCKET) | BIT(OPT_USER) | BIT(OPT_JSON) | BIT(OPT_NO_PAGER) | \
         BIT(OPT_NO_LEGEND))
#define INPUT_OPTS (BIT(OPT_INPUT) | BIT(OPT_INPUT_FILE))
#define START_OPTS                                                                      \
        (BIT(OPT_ID) | BIT(OPT_TASK_QUEUE) | INPUT_OPTS | BIT(OPT_TASK_TIMEOUT) |       \
         BIT(OPT_REQUEST_ID) | BIT(OPT_ID_REUSE_POLICY) | BIT(OPT_ID_CONFLICT_POLICY) | \
         BIT(OPT_EXECUTION_TIMEOUT) | BIT(OPT_RUN_TIMEOUT) | BIT(OPT_START_DELAY) |      \
         BIT(OPT_MEMO) | BIT(OPT_SEARCH_ATTRIBUTE) | BIT(OPT_PRIORITY_KEY) |             \
         BIT(OPT_FAIRNESS_KEY) | BIT(OPT_FAIRNESS_WEIGHT))
#define SCHEDULE_OPTS                                                                              \
        (BIT(OPT_CALENDAR) | BIT(OPT_INTERVAL) | BIT(OPT_START_TIME) | BIT(OPT_END_TIME) |         \
         BIT(OPT_JITTER) | BIT(OPT_TYPE) | BIT(OPT_TASK_QUEUE) | INPUT_OPTS | BIT(OPT_ID_PREFIX) | \
         BIT(OPT_TASK_TIMEOUT) | BIT(OPT_OVERLAP) | BIT(OPT_CATCHUP) | BIT(OPT_CATCHUP_WINDOW) |   \
         BIT(OPT_PAUSE_ON_FAILURE) | BIT(OPT_PAUSED) | BIT(OPT_NOTE) | BIT(OPT_WAKE_SYSTEM))
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
        [OPT_NO_LEGEND] = { "no-legend", NULL, "Print tables without their header line" },
        [OPT_ID] = { "id", "ID", "Workflow id (required)", STR_FIELD(workflow_id) },
        [OPT_TASK_QUEUE] = { "task-queue", "QUEUE",
                             "Task queue (required to start; a filter for list)",
                             STR_FIELD(task_queue) },
        [OPT_INPUT] = { "input", "JSON",
                        "The input (workflow, signal, query or update argument) as JSON" },
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
        [OPT_TYPE] = { "type", "TYPE",
                       "Only workflows of TYPE (list); the workflow type to start (schedule)",
                       STR_FIELD(type) },
        [OPT_LIMIT] = { "limit", "N", "Show at most N workflows (default 1000)" },
        [OPT_REASON] = { "reason", "TEXT",
                         "Reason recorded in the history (default: your user name)",
                         STR_FIELD(reason) },
        [OPT_TOKEN] = { "token", "TOKEN",
                        "The task token of the activity attempt (instead of ID ACTIVITY-ID)",
                        STR_FIELD(token) },
        [OPT_ITERATIONS] = { "iterations", "N", "Show the next N elapses (default 1)" },
        [OPT_BASE_TIME] = { "base-time", "@SECONDS",
                            "Compute the elapses after this time instead of now" },
        [OPT_CALENDAR] = { "calendar", "SPEC",
                           "Start at the times of this calendar spec (repeatable)" },
        [OPT_INTERVAL] = { "interval", "DURATION[/OFFSET]",
                           "Start every DURATION since the epoch, shifted by OFFSET (repeatable)" },
        [OPT_START_TIME] = { "start-time", "TIME", "No scheduled start before TIME" },
        [OPT_END_TIME] = { "end-time", "TIME", "No scheduled start after TIME" },
        [OPT_JITTER] = { "jitter", "DURATION", "Delay each start by up to DURATION" },
        [OPT_ID_PREFIX] = { "id-prefix", "PREFIX",
                            "Started workflow ids are PREFIX-<time> (default: the schedule id)",
                            STR_FIELD(id_prefix) },
        [OPT_OVERLAP] = { "overlap", "POLICY",
                          "skip, buffer_one, buffer_all, cancel_other, terminate_other or "
                          "allow_all",
                          STR_FIELD(overlap) },
        [OPT_CATCHUP] = { "catchup", "POLICY", "collapse (default), all or none",
                          STR_FIELD(catchup) },
        [OPT_CATCHUP_WINDOW] = { "catchup-window", "DURATION",
                                 "Catch up on times at most this old (default 365d)" },
        [OPT_PAUSE_ON_FAILURE] = { "pause-on-failure", NULL,
                                   "Pause when a started workflow fails or times out" },
        [OPT_PAUSED] = { "paused", NULL, "Create the schedule paused" },
        [OPT_NOTE] = { "note", "TEXT", "A note on the schedule's state", STR_FIELD(note) },
        [OPT_WAKE_SYSTEM] = { "wake-system", NULL,
                              "Wake the host from suspend for the schedule's times" },
        [OPT_QUERY] = { "query", "FILTER",
                        "Only workflows FILTER matches (list filter, see durablectl(1))",
                        STR_FIELD(query) },
        [OPT_PAGE_TOKEN] = { "page-token", "TOKEN", "Continue a list where the last page ended",
                             STR_FIELD(page_token) },
        [OPT_EVENT_ID] = { "event-id", "N",
                           "Reset to this WorkflowTaskCompleted (or ...Failed, ...TimedOut) event" },
        [OPT_TO] = { "to", "first|last", "Reset to the first or the last workflow task (default)" },
        [OPT_REAPPLY_EXCLUDE] = { "reapply-exclude", "KIND",
                                  "Do not re-apply Signal, Update or All events after the reset "
                                  "point (repeatable)" },
        [OPT_NEW_ID] = { "new-id", "ID", "The workflow id of the fork (required)",
                         STR_FIELD(new_id) },
        [OPT_STEP] = { "step", "N", "Fork from the N-th activity of the run (default: the start)" },
        [OPT_YES] = { "yes", NULL, "Do not ask for confirmation (required without a terminal)" },
        [OPT_RPS] = { "rps", "N", "At most N runs a second (default: as fast as it goes)" },
        [OPT_MEMO] = { "memo", "KEY=JSON", "Add KEY with the JSON value to the memo (repeatable)" },
        [OPT_SEARCH_ATTRIBUTE] = { "search-attribute", "NAME=TYPE:VALUE",
                                   "Set a search attribute (Keyword, Text, Int, Double, Bool, "
                                   "Datetime, KeywordList as a JSON array; repeatable)" },
        [OPT_ID_REUSE_POLICY] = { "id-reuse-policy", "POLICY",
                                  "If the id ran before: AllowDuplicate (default), "
                                  "AllowDuplicateFailedOnly, RejectDuplicate, TerminateIfRunning" },
        [OPT_ID_CONFLICT_POLICY] = { "id-conflict-policy", "POLICY",
                                     "If the id is running: Fail (default for start), "
                                     "UseExisting, TerminateExisting" },
        [OPT_SIGNAL_INPUT] = { "signal-input", "JSON", "The signal's argument as JSON" },
        [OPT_EXECUTION_TIMEOUT] = { "execution-timeout", "DURATION",
                                    "Time out the workflow, continue-as-new included" },
        [OPT_RUN_TIMEOUT] = { "run-timeout", "DURATION", "Time out each run" },
        [OPT_START_DELAY] = { "start-delay", "DURATION",
                              "Run the first workflow task only after DURATION" },
        [OPT_NAME] = { "name", "NAME", "The update's name (its handler in the workflow)",
                       STR_FIELD(update_name) },
        [OPT_UPDATE_ID] = { "update-id", "ID",
                            "The update's id (default: a new UUID; the same id is applied once)",
                            STR_FIELD(update_id) },
        [OPT_WAIT_FOR_STAGE] = { "wait-for-stage", "STAGE",
                                 "accepted (update start) or completed (update execute)",
                                 STR_FIELD(wait_for_stage) },
        [OPT_UPDATE_INPUT] = { "update-input", "JSON", "The update's argument as JSON" },
        [OPT_PRIORITY_KEY] = { "priority-key", "N",
                               "Priority key 1 (first) .. 5 (last); default 3" },
        [OPT_FAIRNESS_KEY] = { "fairness-key", "KEY",
                               "Share the priority key with other fairness keys (at most 64 bytes)",
                               STR_FIELD(fairness_key) },
        [OPT_FAIRNESS_WEIGHT] = { "fairness-weight", "W",
                                  "The fairness key's weight, 0.001 to 1000 (default 1.0)" },
        [OPT_CONCURRENCY] = { "concurrency", "N",
                              "At most N activities of the queue run at once (0: no limit)" },
        [OPT_RATE] = { "rate", "N[/PERIOD]",
                       "At most N activity starts per PERIOD (default 1s; 0: no limit)" },
        [OPT_BURST] = { "burst", "N", "Up to N starts back to back within the rate (default 1)" },
        [OPT_KEY] = { "key", "KEY", "Set the limits of fairness key KEY of the queue only",
                      STR_FIELD(limit_key) },
        [OPT_ACTIVITY_TYPE] = { "activity-type", "TYPE",
                                "Set the limits of activity type TYPE of the queue only",
                                STR_FIELD(limit_activity_type) },
};

typedef struct Verb {
        const char *name;
        const char *args;  /* positional arguments; a "JSON" one is parsed as the input */
        unsigned min_args; /* then [optional ones] */
        unsigned max_args;
        OptMask options;   /* accepted besides GLOBAL_OPTS */
        OptMask required;  /* options that must be given */
        bool pager;        /* long output: use the pager */
        int (*run)(const Ctx *ctx, const Args *a);
        const char *summary;
        bool local;                  /* needs no daemon */
        int (*check)(const Args *a); /* more usage checks, before connecting */
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
        { "list", "", 0, 0,
          BIT(OPT_STATUS) | BIT(OPT_TYPE) | BIT(OPT_TASK_QUEUE) | BIT(OPT_LIMIT) | BIT(OPT_QUERY) |
                  BIT(OPT_PAGE_TOKEN),
          0, true, verb_list, "List workflows" },
        { "count", "", 0, 0, BIT(OPT_QUERY), 0, false, verb_count,
          "Count the workflows a --query filter matches (all without one)" },
        { "history", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_FOLLOW), 0, true, verb_history,
          "Show the event history of a workflow run" },
        { "watch", "ID", 1, 1, BIT(OPT_RUN_ID), 0, false, verb_watch,
          "Follow a run live: its events, its pending activities, then its outcome" },
        { "signal", "ID NAME [JSON]", 2, 3, BIT(OPT_RUN_ID) | INPUT_OPTS, 0, false, verb_signal,
          "Send signal NAME, with an optional JSON argument" },
        { "signal-with-start", "TYPE NAME", 2, 2, START_OPTS | BIT(OPT_SIGNAL_INPUT),
          BIT(OPT_ID) | BIT(OPT_TASK_QUEUE), false, verb_signal_with_start,
          "Send signal NAME to the running workflow, or start one of TYPE with it" },
        { "query", "ID NAME [JSON]", 2, 3, BIT(OPT_RUN_ID) | BIT(OPT_TIMEOUT) | INPUT_OPTS, 0,
          false, verb_query, "Ask query NAME; print its result as JSON" },
        { "stack", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_TIMEOUT), 0, false, verb_stack,
          "Show what each coroutine of a run is blocked in (query __stack_trace)" },
        { "update", "execute|start|result [JSON]", 1, 2,
          BIT(OPT_ID) | BIT(OPT_RUN_ID) | BIT(OPT_NAME) | BIT(OPT_UPDATE_ID) |
                  BIT(OPT_WAIT_FOR_STAGE) | BIT(OPT_TIMEOUT) | INPUT_OPTS,
          BIT(OPT_ID), false, verb_update,
          "Send update --name to workflow --id and wait for its result (execute) or its "
          "acceptance (start); the result of update --update-id (result)",
          false, update_check_args },
        { "update-with-start", "TYPE", 1, 1,
          START_OPTS | BIT(OPT_NAME) | BIT(OPT_UPDATE_ID) | BIT(OPT_WAIT_FOR_STAGE) |
                  BIT(OPT_UPDATE_INPUT),
          BIT(OPT_ID) | BIT(OPT_TASK_QUEUE), false, verb_update_with_start,
          "Start a workflow of TYPE and send it update --name, or send it to the running one",
          false, update_with_start_check_args },
        { "cancel", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON), 0, false, verb_cancel,
          "Ask a workflow to cancel itself" },
        { "terminate", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON), 0, false, verb_terminate,
          "Stop a workflow at once, without running its code" },
        { "delete", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON), 0, false, verb_delete,
          "Delete a workflow run and its history (terminating it first when it runs)" },
        { "reset", "ID", 1, 1,
          BIT(OPT_RUN_ID) | BIT(OPT_REASON) | BIT(OPT_EVENT_ID) | BIT(OPT_TO) |
                  BIT(OPT_REAPPLY_EXCLUDE),
          BIT(OPT_REASON), false, verb_reset,
          "Start a new run from a workflow task of this one (signals after it re-applied)" },
        { "redrive", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON), 0, false, verb_redrive,
          "Let a failed, timed-out or terminated run go on from its failed step" },
        { "fork", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON) | BIT(OPT_NEW_ID) | BIT(OPT_STEP),
          BIT(OPT_NEW_ID), false, verb_fork,
          "Start a copy of a run under another workflow id, from step N" },
        { "pause", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON), 0, false, verb_pause,
          "Pause a workflow: nothing of it runs (its activity processes are frozen) until unpause" },
        { "unpause", "ID", 1, 1, BIT(OPT_RUN_ID) | BIT(OPT_REASON), 0, false, verb_unpause,
          "Let a paused workflow run again" },
        { "activity-types", "", 0, 0, 0, 0, true, verb_activity_types,
          "List the activity units, their state and why a unit was refused" },
        { "reload", "", 0, 0, 0, 0, false, verb_reload,
          "Re-read the activity units (as SIGHUP does); list them" },
        { "activity",
          "execute|start|result TYPE|ID, complete|fail|heartbeat|pause|unpause|reset ID ACTIVITY-ID "
          "[JSON]",
          1, 4,
          BIT(OPT_ID) | BIT(OPT_TASK_QUEUE) | INPUT_OPTS | BIT(OPT_REQUEST_ID) | BIT(OPT_WAIT) |
                  BIT(OPT_TIMEOUT) | BIT(OPT_RUN_ID) | BIT(OPT_TOKEN) | BIT(OPT_REASON),
          0, false, verb_activity,
          "Run one activity outside a workflow; complete, fail, heartbeat, pause, unpause or "
          "reset one",
          false, activity_check_args },
        { "calendar", "SPEC...", 1, 64, BIT(OPT_ITERATIONS) | BIT(OPT_BASE_TIME), 0, false,
          verb_calendar, "Normalize calendar specs and show their next elapses", true },
        { "schedule", "COMMAND [ID]", 1, 2, SCHEDULE_OPTS, 0, true, verb_schedule,
          "Schedules: create, list, describe, pause, unpause, trigger, backfill, delete", false,
          schedule_check_args },
        { "task-queue", "config|describe QUEUE", 2, 2,
          BIT(OPT_CONCURRENCY) | BIT(OPT_RATE) | BIT(OPT_BURST) | BIT(OPT_KEY) |
                  BIT(OPT_ACTIVITY_TYPE),
          0, false, verb_task_queue,
          "Set the limits of a task queue; show its backlog, pollers, running and limits", false,
          task_queue_check_args },
        { "batch", "COMMAND [NAME|ID]", 1, 2,
          BIT(OPT_QUERY) | BIT(OPT_REASON) | BIT(OPT_RPS) | BIT(OPT_YES) | INPUT_OPTS |
                  BIT(OPT_TO) | BIT(OPT_REAPPLY_EXCLUDE),
          0, false, verb_batch,
          "Batch operations on every run a --query matches: signal, cancel, terminate, delete, "
          "reset, pause, unpause; describe, list",
          false, batch_check_args },
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

/* One line of the help, "  LEFT  TEXT" in two columns; a LEFT too wide for its column gets a
 * line of its own, the TEXT the next one (the completions read verbs as lines that start with
 * exactly two spaces). */
static void help_line(const char *left, const char *text) {
        if (strlen(left) <= 28)
                printf("  %-28s %s\n", left, text);
        else
                printf("  %s\n  %-28s %s\n", left, "", text);
}

static void options_help(OptMask mask) {
        for (size_t o = 0; o < _OPT_MAX; o++) {
                char left[128];

                if (!(mask & BIT(o)))
                        continue;
                snprintf(left, sizeof(left), "%s--%s%s%s", o == OPT_HELP ? "-h " : "   ",
                         options[o].name, options[o].metavar ? " " : "",
                         options[o].metavar ? options[o].metavar : "");
                help_line(left, options[o].help);
        }
}

static void help(void) {
        printf("%sdurablectl%s [OPTIONS...] VERB [ARGS...]\n\n"
               "Start, inspect and control the workflows of durabled.\n\n%sVerbs:%s\n",
               ansi(ANSI_BOLD), ansi(ANSI_NORMAL), ansi(ANSI_BOLD), ansi(ANSI_NORMAL));
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char left[128];

                snprintf(left, sizeof(left), "%s %s", verbs[i].name, verbs[i].args);
                help_line(left, verbs[i].summary);
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
static void getopt_table(OptMask mask, struct option table[static _OPT_MAX + 1]) {
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
                                 "Failed, Canceled, Terminated, TimedOut, ContinuedAsNew or Paused",
                                 text);
        *ret = workflow_status_to_string(s);
        return 0;
}

/* "@SECONDS" since the epoch, as systemd-analyze takes it. */
static int parse_base_time(const char *text, uint64_t *ret) {
        unsigned long long sec;
        char *end;

        errno = 0;
        sec = text[0] == '@' && text[1] >= '0' && text[1] <= '9' ? strtoull(text + 1, &end, 10) : 0;
        if (text[0] != '@' || text[1] < '0' || text[1] > '9' || errno != 0 || *end != 0 ||
            sec > UINT64_C(253402214399))
                return ctl_error("invalid value '%s' for --base-time: expected @SECONDS since the "
                                 "epoch",
                                 text);
        *ret = sec * 1000000;
        return 0;
}

static int parse_reuse_policy(const char *text, const char **ret) {
        IdReusePolicy p = id_reuse_policy_from_string(text);

        if (p < 0)
                return ctl_error("invalid value '%s' for --id-reuse-policy: expected "
                                 "AllowDuplicate, AllowDuplicateFailedOnly, RejectDuplicate or "
                                 "TerminateIfRunning",
                                 text);
        *ret = id_reuse_policy_to_string(p);
        return 0;
}

static int parse_conflict_policy(const char *text, const char **ret) {
        IdConflictPolicy p = id_conflict_policy_from_string(text);

        if (p < 0)
                return ctl_error("invalid value '%s' for --id-conflict-policy: expected Fail, "
                                 "UseExisting, TerminateExisting or Queue",
                                 text);
        *ret = id_conflict_policy_to_string(p);
        return 0;
}

/* --fairness-weight: a decimal number from 0.001 to 1000, as Temporal's CLI takes it. */
static int parse_weight(const char *text, double *ret) {
        char *end;
        double w;

        errno = 0;
        w = strtod(text, &end);
        if (errno != 0 || end == text || *end != 0 || !(w >= 0.001 && w <= 1000))
                return ctl_error("invalid value '%s' for --fairness-weight: expected a number "
                                 "from 0.001 to 1000",
                                 text);
        *ret = w;
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

/* --memo KEY=JSON: adds KEY to a->memo. */
static int add_memo(Args *a, const char *value) {
        const char *eq = strchr(value, '=');
        _cleanup_free_ char *key = NULL;
        json_t *j = NULL;
        int r;

        if (!eq || eq == value)
                return ctl_error("invalid value '%s' for --memo: expected KEY=JSON", value);
        r = parse_json("--memo", eq + 1, &j);
        if (r < 0)
                return r;
        key = strndup(value, (size_t) (eq - value));
        if (!key || (!a->memo && !(a->memo = json_object())) ||
            json_object_set_new(a->memo, key, j) < 0)
                return ctl_error("Out of memory");
        return 0;
}

/* --search-attribute NAME=TYPE:VALUE: Keyword, Text and Datetime take VALUE as text, the other
 * types as JSON (100, 2.5, true, ["a","b"]). */
static int add_search_attribute(Args *a, const char *value) {
        static const char *const text_types[] = { "Keyword", "Text", "Datetime" };
        static const char *const json_types[] = { "Int", "Double", "Bool", "KeywordList" };
        const char *eq = strchr(value, '='), *colon = eq ? strchr(eq, ':') : NULL;
        _cleanup_free_ char *name = NULL, *type = NULL;
        json_t *v = NULL, *entry;
        bool text = false, known = false;
        int r;

        if (!eq || eq == value || !colon)
                return ctl_error("invalid value '%s' for --search-attribute: expected "
                                 "NAME=TYPE:VALUE",
                                 value);
        name = strndup(value, (size_t) (eq - value));
        type = strndup(eq + 1, (size_t) (colon - eq - 1));
        if (!name || !type)
                return ctl_error("Out of memory");
        for (size_t i = 0; i < ELEMENTSOF(text_types); i++)
                text = text || streq(type, text_types[i]);
        for (size_t i = 0; i < ELEMENTSOF(json_types); i++)
                known = known || streq(type, json_types[i]);
        if (!text && !known)
                return ctl_error("invalid type '%s' for --search-attribute %s: expected Keyword, "
                                 "Text, Int, Double, Bool, Datetime or KeywordList",
                                 type, name);
        if (text)
                v = json_string(colon + 1);
        else {
                r = parse_json("--search-attribute", colon + 1, &v);
                if (r < 0)
                        return r;
        }
        entry = json_pack("{s:s, s:o}", "type", type, "value", v);
        if (!entry || (!a->search_attributes && !(a->search_attributes = json_object())) ||
            json_object_set_new(a->search_attributes, name, entry) < 0)
                return ctl_error("Out of memory");
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
                break;
        case OPT_NO_LEGEND:
                output_set_legend(false);
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
        case OPT_EVENT_ID:
                return parse_count("--event-id", value, UINT32_MAX, &a->event_id);
        case OPT_STEP:
                return parse_count("--step", value, UINT32_MAX, &a->step);
        case OPT_RPS:
                return parse_count("--rps", value, 1000000, &a->rps);
        case OPT_YES:
                a->yes = true;
                return 0;
        case OPT_TO:
                if (!streq(value, "first") && !streq(value, "last"))
                        return ctl_error("invalid value '%s' for --to: expected first or last",
                                         value);
                a->to = value;
                return 0;
        case OPT_REAPPLY_EXCLUDE:
                if (!streq(value, "Signal") && !streq(value, "Update") && !streq(value, "All"))
                        return ctl_error("invalid value '%s' for --reapply-exclude: expected "
                                         "Signal, Update or All",
                                         value);
                if (a->n_reapply_exclude >= ELEMENTSOF(a->reapply_exclude))
                        return ctl_error("too many --reapply-exclude options (at most %zu)",
                                         ELEMENTSOF(a->reapply_exclude));
                a->reapply_exclude[a->n_reapply_exclude++] = (char *) value;
                return 0;
        case OPT_TASK_TIMEOUT:
                return parse_duration("--task-timeout", value, &a->task_timeout_usec);
        case OPT_TIMEOUT:
                return parse_duration("--timeout", value, &a->timeout_usec);
        case OPT_CALENDAR:
                if (a->n_calendars >= ELEMENTSOF(a->calendars))
                        return ctl_error("too many --calendar options (at most %zu)",
                                         ELEMENTSOF(a->calendars));
                a->calendars[a->n_calendars++] = value;
                return 0;
        case OPT_INTERVAL:
                if (a->n_intervals >= ELEMENTSOF(a->intervals))
                        return ctl_error("too many --interval options (at most %zu)",
                                         ELEMENTSOF(a->intervals));
                return parse_interval(value, &a->intervals[a->n_intervals++]);
        case OPT_START_TIME:
                return parse_time("--start-time", value, &a->start_time_usec);
        case OPT_END_TIME:
                return parse_time("--end-time", value, &a->end_time_usec);
        case OPT_JITTER:
                return parse_duration("--jitter", value, &a->jitter_usec);
        case OPT_CATCHUP_WINDOW:
                return parse_duration("--catchup-window", value, &a->catchup_window_usec);
        case OPT_PAUSE_ON_FAILURE:
                a->pause_on_failure = true;
                return 0;
        case OPT_PAUSED:
                a->paused = true;
                return 0;
        case OPT_WAKE_SYSTEM:
                a->wake_system = true;
                return 0;
        case OPT_ITERATIONS:
                return parse_count("--iterations", value, 1000, &a->iterations);
        case OPT_BASE_TIME:
                a->has_base_time = true;
                return parse_base_time(value, &a->base_time_usec);
        case OPT_EXECUTION_TIMEOUT:
                return parse_duration("--execution-timeout", value, &a->execution_timeout_usec);
        case OPT_RUN_TIMEOUT:
                return parse_duration("--run-timeout", value, &a->run_timeout_usec);
        case OPT_START_DELAY:
                return parse_duration("--start-delay", value, &a->start_delay_usec);
        case OPT_PRIORITY_KEY:
                return parse_count("--priority-key", value, 5, &a->priority_key);
        case OPT_FAIRNESS_WEIGHT:
                return parse_weight(value, &a->fairness_weight);
        case OPT_CONCURRENCY:
                a->has_concurrency = true;
                a->concurrency = 0;
                if (streq(value, "0")) /* clears the limit */
                        return 0;
                return parse_count("--concurrency", value, 1000000, &a->concurrency);
        case OPT_RATE:
                a->has_rate = true;
                return parse_rate(value, &a->rate, &a->rate_period_usec);
        case OPT_BURST:
                a->has_burst = true;
                return parse_count("--burst", value, 1000000, &a->burst);
        case OPT_INPUT:
                r = parse_json("--input", value, &j);
                return r < 0 ? r : set_input(a, j);
        case OPT_INPUT_FILE:
                r = parse_json_file("--input-file", value, &j);
                return r < 0 ? r : set_input(a, j);
        case OPT_MEMO:
                return add_memo(a, value);
        case OPT_SEARCH_ATTRIBUTE:
                return add_search_attribute(a, value);
        case OPT_SIGNAL_INPUT:
                json_decref(a->signal_input);
                return parse_json("--signal-input", value, &a->signal_input);
        case OPT_UPDATE_INPUT:
                json_decref(a->update_input);
                return parse_json("--update-input", value, &a->update_input);
        case OPT_ID_REUSE_POLICY:
                return parse_reuse_policy(value, &a->id_reuse_policy);
        case OPT_ID_CONFLICT_POLICY:
                return parse_conflict_policy(value, &a->id_conflict_policy);
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

        if (v->local)
                return v->run(&ctx, a);
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
        if (r == 0 && v->check)
                r = v->check(&a);
        if (r != 0) {
                json_decref(a.input);
                json_decref(a.memo);
                json_decref(a.search_attributes);
                json_decref(a.signal_input);
                json_decref(a.update_input);
                if (r > 0)
                        verb_help(v);
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        }
        output_init(arg_json); /* --json may follow the verb */
        r = run(v, &a);
        json_decref(a.input);
        json_decref(a.memo);
        json_decref(a.search_attributes);
        json_decref(a.signal_input);
        json_decref(a.update_input);
        return r < 0 ? EXIT_FAILURE : r;
}
