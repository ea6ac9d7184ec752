#pragma once
/* Helpers for the workflow-model tests (test-start-policies.c, test-continue-as-new.c), which
 * drive tests/integration/core-worker.c ($CORE_WORKER_BIN) through the real daemon. */

#include <durable/durable.h>

#include <jansson.h>

#include "tests/integration/orders-util.h"
#include "tests/integration/worker-util.h"
#include "tests/lib/daemon.h"

#define CORE_QUEUE "core"

void core_worker_spawn(TestProcess *p);

/* dur_client_start() of @type with the JSON @input (may be NULL) on "core" with @opts' policies
 * and request id (workflow_id and task_queue are filled in); returns its value (the run id in
 * *ret_run_id, malloc'd, when not NULL and it succeeded). */
int core_start(dur_client *c,
               const char *type,
               const char *workflow_id,
               const char *input,
               dur_start_opts *opts,
               char **ret_run_id);
/* DescribeWorkflow of @workflow_id (@run_id may be NULL) as JSON; fails the test on error. */
json_t *core_describe(dur_client *c, const char *workflow_id, const char *run_id);
/* The status of that run ("Running", ...), borrowed from @describe. */
const char *core_status(const json_t *describe);
/* The events of one run (@run_id NULL: the latest) as a JSON array; fails the test on error. */
json_t *core_history(dur_client *c, const char *workflow_id, const char *run_id);
/* The JSON result of the completed run found by GetResult (following continue-as-new); fails
 * the test unless it completed. The run id in *ret_run_id (malloc'd) when not NULL. */
json_t *core_result(dur_client *c, const char *workflow_id, const char *run_id, char **ret_run_id);
