#pragma once
/* The verbs of durablectl. durablectl.c parses and checks the command line into an Args (usage
 * errors end there, with exit status 2) and connects; a verb then makes its requests and prints
 * the outcome. A verb returns a negative errno after printing why it failed (exit status 1), or
 * the exit status itself: 0, or EXIT_FAILURE when the operation worked but the workflow it waited
 * for did not complete (execute, result). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "durable/durable.h"

typedef struct IntervalArg {
        uint64_t every_usec, offset_usec;
} IntervalArg;

typedef struct Args {
        char **pos; /* the positional arguments after the verb */
        size_t n_pos;
        const char *workflow_id; /* --id */
        const char *task_queue;
        const char *run_id;
        const char *request_id;
        const char *reason;
        const char *token; /* --token of activity complete|fail|heartbeat */
        const char *status; /* canonical status name ("Running", ...) */
        const char *type;   /* --type of list */
        const char *query;  /* --query of list and count */
        const char *page_token;
        const char *update_name; /* update --name */
        const char *update_id;
        const char *wait_for_stage;
        json_t *input;             /* --input, --input-file or a JSON argument; owned */
        json_t *memo;              /* --memo KEY=JSON, collected; owned */
        json_t *search_attributes; /* --search-attribute NAME=TYPE:VALUE, collected; owned */
        json_t *signal_input;        /* --signal-input; owned */
        json_t *update_input;        /* --update-input; owned */
        const char *id_reuse_policy; /* canonical names (proto/policy.h) */
        const char *id_conflict_policy;
        uint64_t task_timeout_usec;
        uint64_t execution_timeout_usec;
        uint64_t run_timeout_usec;
        uint64_t start_delay_usec;
        uint64_t timeout_usec;
        uint64_t limit;
        uint64_t iterations;     /* calendar --iterations */
        uint64_t base_time_usec; /* calendar --base-time, when has_base_time */
        bool wait;
        bool follow; /* history --follow */
        bool has_base_time;
        /* schedule */
        const char *calendars[16];
        size_t n_calendars;
        IntervalArg intervals[16];
        size_t n_intervals;
        uint64_t start_time_usec, end_time_usec, jitter_usec, catchup_window_usec;
        const char *id_prefix, *overlap, *catchup, *note;
        bool pause_on_failure, paused, wake_system;
        /* start --priority-key, --fairness-key, --fairness-weight; task-queue config */
        uint64_t priority_key;
        const char *fairness_key;
        double fairness_weight;
        uint64_t concurrency, rate, rate_period_usec, burst;
        bool has_concurrency, has_rate, has_burst;
        const char *limit_key, *limit_activity_type; /* task-queue config --key, --activity-type */
        /* reset, redrive, fork */
        uint64_t event_id, step;
        const char *to, *new_id;
        char *reapply_exclude[4]; /* argv strings */
        size_t n_reapply_exclude;
        /* batch */
        bool yes;
        uint64_t rps;
} Args;

typedef struct Ctx {
        dur_client *client;
        bool json; /* --json */
} Ctx;

int verb_start(const Ctx *ctx, const Args *a);
int verb_activity_types(const Ctx *ctx, const Args *a);
int verb_reload(const Ctx *ctx, const Args *a);
/* activity execute|start TYPE, activity result ID: standalone activities. */
int verb_activity(const Ctx *ctx, const Args *a);
int activity_check_args(const Args *a);
/* update execute|start|result: workflow updates. */
int verb_update(const Ctx *ctx, const Args *a);
int update_check_args(const Args *a);
/* update-with-start TYPE: start a workflow and send it an update, or send it to the running one. */
int verb_update_with_start(const Ctx *ctx, const Args *a);
int update_with_start_check_args(const Args *a);
int verb_execute(const Ctx *ctx, const Args *a);
int verb_result(const Ctx *ctx, const Args *a);
int verb_describe(const Ctx *ctx, const Args *a);
int verb_list(const Ctx *ctx, const Args *a);
int verb_count(const Ctx *ctx, const Args *a);
int verb_history(const Ctx *ctx, const Args *a);
int verb_watch(const Ctx *ctx, const Args *a);
int verb_signal(const Ctx *ctx, const Args *a);
int verb_signal_with_start(const Ctx *ctx, const Args *a);
int verb_query(const Ctx *ctx, const Args *a);
int verb_stack(const Ctx *ctx, const Args *a);
int verb_cancel(const Ctx *ctx, const Args *a);
int verb_terminate(const Ctx *ctx, const Args *a);
int verb_delete(const Ctx *ctx, const Args *a);
int verb_reset(const Ctx *ctx, const Args *a);
int verb_redrive(const Ctx *ctx, const Args *a);
int verb_fork(const Ctx *ctx, const Args *a);
int verb_pause(const Ctx *ctx, const Args *a);
int verb_unpause(const Ctx *ctx, const Args *a);
int verb_calendar(const Ctx *ctx, const Args *a); /* cli/calendar.c */
/* cli/batch.c */
int verb_batch(const Ctx *ctx, const Args *a);
int batch_check_args(const Args *a); /* usage errors, before connecting */

/* cli/schedule.c */
int verb_schedule(const Ctx *ctx, const Args *a);
int schedule_check_args(const Args *a); /* usage errors, before connecting */
/* "@SECONDS" or one point in time in calendar syntax ("2026-01-01 09:00 UTC"). */
int parse_time(const char *what, const char *text, uint64_t *ret_usec);
/* "DURATION[/OFFSET]". */
int parse_interval(const char *text, IntervalArg *ret);
/* cli/taskqueue.c */
int verb_task_queue(const Ctx *ctx, const Args *a);
int task_queue_check_args(const Args *a);
/* "N[/PERIOD]" of --rate (PERIOD: a duration; default per second); "0": no rate limit. */
int parse_rate(const char *text, uint64_t *ret_rate, uint64_t *ret_period_usec);
int verb_verify(const Ctx *ctx, const Args *a);
int verb_backup(const Ctx *ctx, const Args *a);
