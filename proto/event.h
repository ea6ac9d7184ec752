#pragma once
/* History event types (Temporal's EventType numbers and names), workflow statuses and command
 * types: the vocabulary shared by the daemon's history engine and libdurable's replay engine. */

typedef enum EventType {
        EVENT_WORKFLOW_EXECUTION_STARTED = 1,
        EVENT_WORKFLOW_EXECUTION_COMPLETED = 2,
        EVENT_WORKFLOW_EXECUTION_FAILED = 3,
        EVENT_WORKFLOW_EXECUTION_TIMED_OUT = 4,
        EVENT_WORKFLOW_TASK_SCHEDULED = 5,
        EVENT_WORKFLOW_TASK_STARTED = 6,
        EVENT_WORKFLOW_TASK_COMPLETED = 7,
        EVENT_WORKFLOW_TASK_TIMED_OUT = 8,
        EVENT_WORKFLOW_TASK_FAILED = 9,
        EVENT_ACTIVITY_TASK_SCHEDULED = 10,
        EVENT_ACTIVITY_TASK_STARTED = 11,
        EVENT_ACTIVITY_TASK_COMPLETED = 12,
        EVENT_ACTIVITY_TASK_FAILED = 13,
        EVENT_ACTIVITY_TASK_TIMED_OUT = 14,
        EVENT_ACTIVITY_TASK_CANCEL_REQUESTED = 15,
        EVENT_ACTIVITY_TASK_CANCELED = 16,
        EVENT_TIMER_STARTED = 17,
        EVENT_TIMER_FIRED = 18,
        EVENT_TIMER_CANCELED = 19,
        EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED = 20,
        EVENT_WORKFLOW_EXECUTION_CANCELED = 21,
        EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED = 22,
        EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = 23,
        EVENT_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED = 24,
        EVENT_MARKER_RECORDED = 25,
        EVENT_WORKFLOW_EXECUTION_SIGNALED = 26,
        EVENT_WORKFLOW_EXECUTION_TERMINATED = 27,
        EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW = 28,
        EVENT_START_CHILD_WORKFLOW_EXECUTION_INITIATED = 29,
        EVENT_START_CHILD_WORKFLOW_EXECUTION_FAILED = 30,
        EVENT_CHILD_WORKFLOW_EXECUTION_STARTED = 31,
        EVENT_CHILD_WORKFLOW_EXECUTION_COMPLETED = 32,
        EVENT_CHILD_WORKFLOW_EXECUTION_FAILED = 33,
        EVENT_CHILD_WORKFLOW_EXECUTION_CANCELED = 34,
        EVENT_CHILD_WORKFLOW_EXECUTION_TIMED_OUT = 35,
        EVENT_CHILD_WORKFLOW_EXECUTION_TERMINATED = 36,
        EVENT_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES = 40,
        /* Workflow updates. A validator's rejection writes nothing, as Temporal's: 42 is never
         * appended, its name only keeps Temporal's numbering readable. */
        EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED = 41,
        EVENT_WORKFLOW_EXECUTION_UPDATE_REJECTED = 42,
        EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED = 43,
        _EVENT_TYPE_MAX,
        _EVENT_TYPE_INVALID = -22,
} EventType;

const char *event_type_to_string(EventType t); /* NULL for unknown */
EventType event_type_from_string(const char *s);

/* Workflow execution status (Temporal's numbering). */
typedef enum WorkflowStatus {
        WORKFLOW_STATUS_RUNNING = 1,
        WORKFLOW_STATUS_COMPLETED = 2,
        WORKFLOW_STATUS_FAILED = 3,
        WORKFLOW_STATUS_CANCELED = 4,
        WORKFLOW_STATUS_TERMINATED = 5,
        WORKFLOW_STATUS_CONTINUED_AS_NEW = 6,
        WORKFLOW_STATUS_TIMED_OUT = 7,
        _WORKFLOW_STATUS_MAX,
        _WORKFLOW_STATUS_INVALID = -22,
} WorkflowStatus;

const char *workflow_status_to_string(WorkflowStatus s); /* "Running", ... */
WorkflowStatus workflow_status_from_string(const char *s); /* case-insensitive */

typedef enum CommandType {
        COMMAND_SCHEDULE_ACTIVITY_TASK,
        COMMAND_REQUEST_CANCEL_ACTIVITY_TASK,
        COMMAND_START_TIMER,
        COMMAND_CANCEL_TIMER,
        COMMAND_COMPLETE_WORKFLOW_EXECUTION,
        COMMAND_FAIL_WORKFLOW_EXECUTION,
        COMMAND_CANCEL_WORKFLOW_EXECUTION,
        COMMAND_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        COMMAND_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
        COMMAND_START_CHILD_WORKFLOW_EXECUTION,
        COMMAND_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
        COMMAND_RECORD_MARKER, /* side effects, patches: MarkerRecorded */
        COMMAND_COMPLETE_WORKFLOW_UPDATE, /* Temporal's ProtocolMessage with an update outcome */
        _COMMAND_TYPE_MAX,
        _COMMAND_TYPE_INVALID = -22,
} CommandType;

const char *command_type_to_string(CommandType t);
CommandType command_type_from_string(const char *s);
