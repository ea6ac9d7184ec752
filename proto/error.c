/* errno <-> wire error code. Several errnos may share a code; the first row for a code is the
 * errno a client gets back for it. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "proto/error.h"

#define EQUERYFAILED EREMOTEIO

static const struct {
        int error;
        const char *code;
} table[] = {
        { EINVAL, "invalid_argument" },
        { EBADMSG, "invalid_argument" },
        { E2BIG, "invalid_argument" },
        { ENOENT, "not_found" },
        { EEXIST, "already_started" },
        { EPERM, "permission_denied" },
        { EACCES, "permission_denied" },
        { ENOSPC, "resource_exhausted" },
        { ENOMEM, "resource_exhausted" },
        { ENOBUFS, "resource_exhausted" },
        { EMFILE, "resource_exhausted" },
        { EUSERS, "resource_exhausted" },
        { EAGAIN, "unavailable" },
        { EIO, "unavailable" },
        { EBUSY, "unavailable" },
        { EUCLEAN, "unavailable" },
        { ETIMEDOUT, "deadline_exceeded" },
        { ESTALE, "failed_precondition" },
        { EQUERYFAILED, "query_failed" },
        { EUPDATEREJECTED, "update_rejected" },
        { EOPNOTSUPP, "unimplemented" },
        { ECANCELED, "canceled" },
};

const char *errno_to_wire_code(int error) {
        error = abs(error);
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].error == error)
                        return table[i].code;
        return "internal";
}

int wire_code_to_errno(const char *code) {
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(table[i].code, code))
                        return -table[i].error;
        return -EPROTO;
}
