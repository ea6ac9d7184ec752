#pragma once
/* Backup: a consistent copy of the database while the daemon runs (durablectl backup FILE, the
 * BackupDatabase operation), through SQLite's online backup (store_backup()). The copy is
 * written next to FILE under a temporary name, synced, owned by the caller, and renamed to FILE
 * only when complete; an existing FILE is never overwritten. */

#include <stdint.h>
#include <sys/socket.h>

#include "daemon/api-error.h"
#include "daemon/store.h"

typedef struct BackupResult {
        uint64_t pages;
        uint64_t size; /* bytes */
} BackupResult;

/* Backs the store up into @path (absolute) for the peer @cred, who must own the directory of
 * @path unless it is root. Errors: -EINVAL (relative path, FILE exists), -ENOENT (no such
 * directory), -EACCES (a directory of another user), or what writing failed with; each with a
 * sentence in @e. */
int backup_database(
        Store *s, const char *path, const struct ucred *cred, BackupResult *ret, ApiError *e);
