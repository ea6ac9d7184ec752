/* See backup.h. */

#include "daemon/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens the directory of @path (absolute) and checks that @cred may write a backup there. */
static int open_parent(const char *path, const struct ucred *cred, int *ret_fd, ApiError *e) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *slash = strrchr(path, '/');
        struct stat st;

        dir = strndup(path, slash == path ? 1 : (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return api_error_set(e, errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno,
                                     "cannot open directory '%s': %s", dir, strerror(errno));
        if (fstat(fd, &st) < 0)
                return api_error_set(e, -errno, "cannot stat '%s': %s", dir, strerror(errno));
        /* The daemon may run as root: it writes only where the caller could have. */
        if (cred->uid != 0 && st.st_uid != cred->uid)
                return api_error_set(e, -EACCES,
                                     "directory '%s' belongs to uid %u, not to you (uid %u)", dir,
                                     (unsigned) st.st_uid, (unsigned) cred->uid);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int backup_into(Store *s,
                       const char *tmp,
                       const char *path,
                       const struct ucred *cred,
                       BackupResult *ret,
                       ApiError *e) {
        struct stat st;
        int r;

        r = store_backup(s, tmp, &ret->pages);
        if (r < 0)
                return api_error_set(e, r, "cannot write the backup: %s", strerror(-r));
        if (geteuid() == 0 && cred->uid != 0 && chown(tmp, cred->uid, cred->gid) < 0)
                return api_error_set(e, -errno, "cannot give the backup to uid %u: %s",
                                     (unsigned) cred->uid, strerror(errno));
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
                return api_error_set(e, errno == EEXIST ? -EINVAL : -errno,
                                     "cannot rename the backup to '%s': %s", path, strerror(errno));
        if (stat(path, &st) < 0)
                return api_error_set(e, -errno, "cannot stat '%s': %s", path, strerror(errno));
        ret->size = (uint64_t) st.st_size;
        return 0;
}

int backup_database(
        Store *s, const char *path, const struct ucred *cred, BackupResult *ret, ApiError *e) {
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *tmp = NULL;
        BackupResult res = {};
        int r;

        if (path[0] != '/')
                return api_error_set(e, -EINVAL, "field \"path\" must be an absolute path");
        r = open_parent(path, cred, &dir_fd, e);
        if (r < 0)
                return r;
        if (access(path, F_OK) == 0)
                return api_error_set(e, -EINVAL,
                                     "'%s' already exists; a backup never "
                                     "overwrites a file",
                                     path);
        if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
        if (fd < 0)
                return api_error_set(e, -errno, "cannot create '%s': %s", tmp, strerror(errno));
        fd = safe_close(fd);
        r = backup_into(s, tmp, path, cred, &res, e);
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        /* The new name is durable too. */
        if (fsync(dir_fd) < 0)
                return api_error_set(e, -errno, "cannot sync the directory of '%s': %s", path,
                                     strerror(errno));
        *ret = res;
        return 0;
}
