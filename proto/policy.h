#pragma once
/* Start policies (Temporal's WorkflowIdReusePolicy and WorkflowIdConflictPolicy, same numbers and
 * names): what a start does when its workflow id was used before. The reuse policy applies when
 * the latest run of the id is closed, the conflict policy when it is running. The wire carries
 * the names ("RejectDuplicate", "UseExisting"); the daemon and durablectl parse them here. */

typedef enum IdReusePolicy {
        ID_REUSE_UNSPECIFIED = 0, /* the default: AllowDuplicate */
        ID_REUSE_ALLOW_DUPLICATE = 1,
        ID_REUSE_ALLOW_DUPLICATE_FAILED_ONLY =
                2, /* only after Failed/Canceled/Terminated/TimedOut */
        ID_REUSE_REJECT_DUPLICATE = 3,
        ID_REUSE_TERMINATE_IF_RUNNING = 4, /* AllowDuplicate + conflict policy TerminateExisting */
        _ID_REUSE_MAX,
        _ID_REUSE_INVALID = -22,
} IdReusePolicy;

typedef enum IdConflictPolicy {
        ID_CONFLICT_UNSPECIFIED = 0, /* the default: Fail (UseExisting for signal-with-start) */
        ID_CONFLICT_FAIL = 1,
        ID_CONFLICT_USE_EXISTING = 2,
        ID_CONFLICT_TERMINATE_EXISTING = 3,
        ID_CONFLICT_QUEUE = 4, /* durabled's own: start when the running run closes (serial) */
        _ID_CONFLICT_MAX,
        _ID_CONFLICT_INVALID = -22,
} IdConflictPolicy;

/* What happens to a child workflow when its parent closes (Temporal's ParentClosePolicy). */
typedef enum ParentClosePolicy {
        PARENT_CLOSE_UNSPECIFIED = 0, /* the default: Terminate */
        PARENT_CLOSE_TERMINATE = 1,
        PARENT_CLOSE_ABANDON = 2,
        PARENT_CLOSE_REQUEST_CANCEL = 3,
        _PARENT_CLOSE_MAX,
        _PARENT_CLOSE_INVALID = -22,
} ParentClosePolicy;

const char *id_reuse_policy_to_string(IdReusePolicy p);   /* NULL for unspecified/unknown */
IdReusePolicy id_reuse_policy_from_string(const char *s); /* case-insensitive */
const char *id_conflict_policy_to_string(IdConflictPolicy p);
IdConflictPolicy id_conflict_policy_from_string(const char *s);

/* The accepted names, for error messages: "AllowDuplicate, AllowDuplicateFailedOnly, ...". */
#define ID_REUSE_POLICY_NAMES \
        "AllowDuplicate, AllowDuplicateFailedOnly, RejectDuplicate, TerminateIfRunning"
#define ID_CONFLICT_POLICY_NAMES "Fail, UseExisting, TerminateExisting, Queue"

const char *parent_close_policy_to_string(ParentClosePolicy p);
ParentClosePolicy parent_close_policy_from_string(const char *s);
#define PARENT_CLOSE_POLICY_NAMES "Terminate, Abandon, RequestCancel"
