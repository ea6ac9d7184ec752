#pragma once
/* How durablectl shows what durabled answers: workflow maps, failures, payloads, pending
 * activities and history events, both as readable text and as JSON documents.
 *
 * JSON documents are the answer maps converted with proto/json.h (payloads become the JSON value
 * they hold) plus two changes for people and scripts: "workflow_type" is named "type", and each
 * top-level time field ("time", "*_time", microseconds since the epoch) is followed by a
 * "...timestamp" field holding the same time as an ISO 8601 string in UTC. */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#include "cli/call.h"

/* The fields of a protocol "workflow" map. Strings live in the Answer's zone. */
typedef struct WorkflowInfo {
        const char *workflow_id;
        const char *run_id;
        const char *workflow_type;
        const char *task_queue;
        const char *status;
        uint64_t start_time;
        uint64_t close_time;
        uint64_t history_length;
        const msgpack_object *result;  /* payload, or NULL */
        const msgpack_object *failure; /* failure map, or NULL */
} WorkflowInfo;

int workflow_info_parse(Answer *a, const msgpack_object *map, WorkflowInfo *ret);
/* The "workflow" map of @a's answer; NULL (and an error printed) when missing. */
const msgpack_object *answer_workflow(const Answer *a, const char *op);

/* JSON document of a workflow, pending activity or event map; NULL on OOM. */
json_t *map_to_json(const msgpack_object *map);
/* A JSON array of map_to_json() of each element of @array (NULL: empty array). */
json_t *maps_to_json(const msgpack_object *array);

/* "Type: message (non-retryable); cause: ..." on one line; NULL on OOM. */
char *failure_summary(const msgpack_object *failure);
/* A payload as one line of JSON, cut at @max bytes (0 = whole); NULL on OOM. */
char *payload_text(const msgpack_object *payload, size_t max);
/* "activity_type=create_order attempt=2 ...": the attributes of an event on one line. */
char *event_details(const msgpack_object *attributes);

/* Key-value block of a workflow. With @details, also the task queue, times and history length. */
void workflow_print(const WorkflowInfo *w, bool details);
/* Only the status and the result or failure. */
void workflow_print_outcome(const WorkflowInfo *w);
/* Table of a DescribeWorkflow "pending_activities" array (nothing for an empty one). */
int pending_activities_print(const msgpack_object *array);
