/* Name tables for event types, statuses and commands; see event.h. */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/hash.h"
#include "proto/event.h"

static const char *const event_names[_EVENT_TYPE_MAX] = {
        [EVENT_WORKFLOW_EXECUTION_STARTED] = "WorkflowExecutionStarted",
        [EVENT_WORKFLOW_EXECUTION_COMPLETED] = "WorkflowExecutionCompleted",
        [EVENT_WORKFLOW_EXECUTION_FAILED] = "WorkflowExecutionFailed",
        [EVENT_WORKFLOW_EXECUTION_TIMED_OUT] = "WorkflowExecutionTimedOut",
        [EVENT_WORKFLOW_TASK_SCHEDULED] = "WorkflowTaskScheduled",
        [EVENT_WORKFLOW_TASK_STARTED] = "WorkflowTaskStarted",
        [EVENT_WORKFLOW_TASK_COMPLETED] = "WorkflowTaskCompleted",
        [EVENT_WORKFLOW_TASK_TIMED_OUT] = "WorkflowTaskTimedOut",
        [EVENT_WORKFLOW_TASK_FAILED] = "WorkflowTaskFailed",
        [EVENT_ACTIVITY_TASK_SCHEDULED] = "ActivityTaskScheduled",
        [EVENT_ACTIVITY_TASK_STARTED] = "ActivityTaskStarted",
        [EVENT_ACTIVITY_TASK_COMPLETED] = "ActivityTaskCompleted",
        [EVENT_ACTIVITY_TASK_FAILED] = "ActivityTaskFailed",
        [EVENT_ACTIVITY_TASK_TIMED_OUT] = "ActivityTaskTimedOut",
        [EVENT_ACTIVITY_TASK_CANCEL_REQUESTED] = "ActivityTaskCancelRequested",
        [EVENT_ACTIVITY_TASK_CANCELED] = "ActivityTaskCanceled",
        [EVENT_TIMER_STARTED] = "TimerStarted",
        [EVENT_TIMER_FIRED] = "TimerFired",
        [EVENT_TIMER_CANCELED] = "TimerCanceled",
        [EVENT_WORKFLOW_EXECUTION_CANCEL_REQUESTED] = "WorkflowExecutionCancelRequested",
        [EVENT_WORKFLOW_EXECUTION_CANCELED] = "WorkflowExecutionCanceled",
        [EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED] =
                "RequestCancelExternalWorkflowExecutionInitiated",
        [EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED] =
                "RequestCancelExternalWorkflowExecutionFailed",
        [EVENT_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED] =
                "ExternalWorkflowExecutionCancelRequested",
        [EVENT_MARKER_RECORDED] = "MarkerRecorded",
        [EVENT_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES] = "UpsertWorkflowSearchAttributes",
        [EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED] = "WorkflowExecutionUpdateAccepted",
        [EVENT_WORKFLOW_EXECUTION_UPDATE_REJECTED] = "WorkflowExecutionUpdateRejected",
        [EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED] = "WorkflowExecutionUpdateCompleted",
        [EVENT_WORKFLOW_EXECUTION_SIGNALED] = "WorkflowExecutionSignaled",
        [EVENT_WORKFLOW_EXECUTION_TERMINATED] = "WorkflowExecutionTerminated",
        [EVENT_WORKFLOW_EXECUTION_CONTINUED_AS_NEW] = "WorkflowExecutionContinuedAsNew",
        [EVENT_START_CHILD_WORKFLOW_EXECUTION_INITIATED] = "StartChildWorkflowExecutionInitiated",
        [EVENT_START_CHILD_WORKFLOW_EXECUTION_FAILED] = "StartChildWorkflowExecutionFailed",
        [EVENT_CHILD_WORKFLOW_EXECUTION_STARTED] = "ChildWorkflowExecutionStarted",
        [EVENT_CHILD_WORKFLOW_EXECUTION_COMPLETED] = "ChildWorkflowExecutionCompleted",
        [EVENT_CHILD_WORKFLOW_EXECUTION_FAILED] = "ChildWorkflowExecutionFailed",
        [EVENT_CHILD_WORKFLOW_EXECUTION_CANCELED] = "ChildWorkflowExecutionCanceled",
        [EVENT_CHILD_WORKFLOW_EXECUTION_TIMED_OUT] = "ChildWorkflowExecutionTimedOut",
        [EVENT_CHILD_WORKFLOW_EXECUTION_TERMINATED] = "ChildWorkflowExecutionTerminated",
        [EVENT_WORKFLOW_EXECUTION_PAUSED] = "WorkflowExecutionPaused",
        [EVENT_WORKFLOW_EXECUTION_UNPAUSED] = "WorkflowExecutionUnpaused",
};

const char *event_type_to_string(EventType t) {
        if (t <= 0 || t >= _EVENT_TYPE_MAX)
                return NULL;
        return event_names[t];
}

/* Event types by name: an open-addressing table built once. A replay looks up the type of every
 * event it reads, and a walk through the 40-odd names cost more than the rest of parsing an
 * event (bench/README.md, change 13). */
#define NAME_SLOTS 128 /* a power of two, well over twice the names */
_Static_assert(_EVENT_TYPE_MAX < NAME_SLOTS / 2, "the name table must stay sparse");

static uint8_t name_slots[NAME_SLOTS]; /* EventType + 1, 0 = empty */
static pthread_once_t name_slots_once = PTHREAD_ONCE_INIT;

static void name_slots_fill(void) {
        for (int i = 1; i < _EVENT_TYPE_MAX; i++) {
                uint32_t h;

                if (!event_names[i])
                        continue;
                for (h = string_hash(event_names[i]); name_slots[h % NAME_SLOTS]; h++)
                        ;
                name_slots[h % NAME_SLOTS] = (uint8_t) (i + 1);
        }
}

EventType event_type_from_string(const char *s) {
        (void) pthread_once(&name_slots_once, name_slots_fill);
        for (uint32_t h = string_hash(s);; h++) {
                unsigned slot = name_slots[h % NAME_SLOTS];

                if (slot == 0)
                        return _EVENT_TYPE_INVALID;
                if (streq(event_names[slot - 1], s))
                        return (EventType) (slot - 1);
        }
}

static const char *const status_names[_WORKFLOW_STATUS_MAX] = {
        [WORKFLOW_STATUS_RUNNING] = "Running",
        [WORKFLOW_STATUS_COMPLETED] = "Completed",
        [WORKFLOW_STATUS_FAILED] = "Failed",
        [WORKFLOW_STATUS_CANCELED] = "Canceled",
        [WORKFLOW_STATUS_TERMINATED] = "Terminated",
        [WORKFLOW_STATUS_CONTINUED_AS_NEW] = "ContinuedAsNew",
        [WORKFLOW_STATUS_TIMED_OUT] = "TimedOut",
        [WORKFLOW_STATUS_PAUSED] = "Paused",
};

const char *workflow_status_to_string(WorkflowStatus s) {
        if (s <= 0 || s >= _WORKFLOW_STATUS_MAX)
                return NULL;
        return status_names[s];
}

WorkflowStatus workflow_status_from_string(const char *s) {
        for (int i = 1; i < _WORKFLOW_STATUS_MAX; i++)
                if (strcasecmp(status_names[i], s) == 0)
                        return (WorkflowStatus) i;
        return _WORKFLOW_STATUS_INVALID;
}

static const char *const command_names[_COMMAND_TYPE_MAX] = {
        [COMMAND_SCHEDULE_ACTIVITY_TASK] = "ScheduleActivityTask",
        [COMMAND_REQUEST_CANCEL_ACTIVITY_TASK] = "RequestCancelActivityTask",
        [COMMAND_START_TIMER] = "StartTimer",
        [COMMAND_CANCEL_TIMER] = "CancelTimer",
        [COMMAND_COMPLETE_WORKFLOW_EXECUTION] = "CompleteWorkflowExecution",
        [COMMAND_FAIL_WORKFLOW_EXECUTION] = "FailWorkflowExecution",
        [COMMAND_CANCEL_WORKFLOW_EXECUTION] = "CancelWorkflowExecution",
        [COMMAND_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES] = "UpsertWorkflowSearchAttributes",
        [COMMAND_CONTINUE_AS_NEW_WORKFLOW_EXECUTION] = "ContinueAsNewWorkflowExecution",
        [COMMAND_START_CHILD_WORKFLOW_EXECUTION] = "StartChildWorkflowExecution",
        [COMMAND_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION] =
                "RequestCancelExternalWorkflowExecution",
        [COMMAND_RECORD_MARKER] = "RecordMarker",
        [COMMAND_COMPLETE_WORKFLOW_UPDATE] = "CompleteWorkflowUpdate",
};

const char *command_type_to_string(CommandType t) {
        if (t < 0 || t >= _COMMAND_TYPE_MAX)
                return NULL;
        return command_names[t];
}

CommandType command_type_from_string(const char *s) {
        for (int i = 0; i < _COMMAND_TYPE_MAX; i++)
                if (streq(command_names[i], s))
                        return (CommandType) i;
        return _COMMAND_TYPE_INVALID;
}
