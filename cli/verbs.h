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

typedef struct Args {
        char **pos; /* the positional arguments after the verb */
        size_t n_pos;
        const char *workflow_id; /* --id */
        const char *task_queue;
        const char *run_id;
        const char *request_id;
        const char *reason;
        const char *status; /* canonical status name ("Running", ...) */
        const char *type;   /* --type of list */
        json_t *input;      /* --input, --input-file or a JSON argument; owned */
        uint64_t task_timeout_usec;
        uint64_t timeout_usec;
        uint64_t limit;
        bool wait;
        bool follow; /* history --follow */
} Args;

typedef struct Ctx {
        dur_client *client;
        bool json; /* --json */
} Ctx;

int verb_start(const Ctx *ctx, const Args *a);
int verb_execute(const Ctx *ctx, const Args *a);
int verb_result(const Ctx *ctx, const Args *a);
int verb_describe(const Ctx *ctx, const Args *a);
int verb_list(const Ctx *ctx, const Args *a);
int verb_history(const Ctx *ctx, const Args *a);
int verb_signal(const Ctx *ctx, const Args *a);
int verb_query(const Ctx *ctx, const Args *a);
int verb_cancel(const Ctx *ctx, const Args *a);
int verb_terminate(const Ctx *ctx, const Args *a);
int verb_verify(const Ctx *ctx, const Args *a);
int verb_backup(const Ctx *ctx, const Args *a);
