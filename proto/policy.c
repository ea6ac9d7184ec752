/* Name tables of the start policies; see policy.h. */

#include "proto/policy.h"

#include <stddef.h>
#include <strings.h>

static const char *const reuse_names[_ID_REUSE_MAX] = {
        [ID_REUSE_ALLOW_DUPLICATE] = "AllowDuplicate",
        [ID_REUSE_ALLOW_DUPLICATE_FAILED_ONLY] = "AllowDuplicateFailedOnly",
        [ID_REUSE_REJECT_DUPLICATE] = "RejectDuplicate",
        [ID_REUSE_TERMINATE_IF_RUNNING] = "TerminateIfRunning",
};

static const char *const conflict_names[_ID_CONFLICT_MAX] = {
        [ID_CONFLICT_FAIL] = "Fail",
        [ID_CONFLICT_USE_EXISTING] = "UseExisting",
        [ID_CONFLICT_TERMINATE_EXISTING] = "TerminateExisting",
        [ID_CONFLICT_QUEUE] = "Queue",
};

static const char *const parent_close_names[_PARENT_CLOSE_MAX] = {
        [PARENT_CLOSE_TERMINATE] = "Terminate",
        [PARENT_CLOSE_ABANDON] = "Abandon",
        [PARENT_CLOSE_REQUEST_CANCEL] = "RequestCancel",
};

static int lookup(const char *const *names, int n, const char *s) {
        for (int i = 1; i < n; i++)
                if (strcasecmp(names[i], s) == 0)
                        return i;
        return -22;
}

const char *id_reuse_policy_to_string(IdReusePolicy p) {
        return p > 0 && p < _ID_REUSE_MAX ? reuse_names[p] : NULL;
}

IdReusePolicy id_reuse_policy_from_string(const char *s) {
        return (IdReusePolicy) lookup(reuse_names, _ID_REUSE_MAX, s);
}

const char *id_conflict_policy_to_string(IdConflictPolicy p) {
        return p > 0 && p < _ID_CONFLICT_MAX ? conflict_names[p] : NULL;
}

IdConflictPolicy id_conflict_policy_from_string(const char *s) {
        return (IdConflictPolicy) lookup(conflict_names, _ID_CONFLICT_MAX, s);
}

const char *parent_close_policy_to_string(ParentClosePolicy p) {
        return p > 0 && p < _PARENT_CLOSE_MAX ? parent_close_names[p] : NULL;
}

ParentClosePolicy parent_close_policy_from_string(const char *s) {
        return (ParentClosePolicy) lookup(parent_close_names, _PARENT_CLOSE_MAX, s);
}
