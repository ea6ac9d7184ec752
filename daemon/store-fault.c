/* Storage faults for tests (built only with -Dfault-injection=true): an SQLite VFS that wraps the
 * default one and fails one kind of I/O on request, as SQLite's own I/O-error tests do (its
 * test6.c and the "ioerr" loops of its test suite). The store opens its database through it
 * when DURABLED_FAULT is set:
 *
 *   DURABLED_FAULT=KIND:N[:forever]
 *     write   the N-th write of any file fails with SQLITE_IOERR_WRITE (EIO)
 *     full    the N-th write fails with SQLITE_FULL (ENOSPC: a full disk)
 *     sync    the N-th fsync fails with SQLITE_IOERR_FSYNC
 *   and with ":forever" every later one of that kind fails too (the disk stays broken or full).
 *
 * Counting starts when the daemon is ready (store_arm_faults(), after start-up's own commit), so
 * that N names the N-th write or fsync made for requests. Each injected fault is logged, so that
 * a test counts them; "DURABLED_FAULT_LOG=PATH" appends one line per fault to PATH.
 *
 * The wrapper forwards everything else to the real VFS, including shared memory (the WAL index)
 * and memory-mapped reads. */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"
#include "daemon/store-internal.h"
#include "daemon/store.h"

#if DURABLED_FAULT_INJECTION

typedef enum FaultKind {
        FAULT_NONE,
        FAULT_WRITE,
        FAULT_FULL,
        FAULT_SYNC,
} FaultKind;

static struct {
        FaultKind kind;
        unsigned long n;
        bool forever;
        bool armed;
        unsigned long count;
} fault;

typedef struct FaultFile {
        sqlite3_file base;
        sqlite3_file *real; /* right after this struct, szOsFile of the real VFS */
} FaultFile;

static sqlite3_vfs *real_vfs;

static void fault_log(const char *what) {
        const char *path = getenv("DURABLED_FAULT_LOG");
        int fd;

        log_warning("Injecting a storage fault: %s (%s)", what, getenv("DURABLED_FAULT"));
        if (!path)
                return;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        (void) !write(fd, what, strlen(what));
        (void) !write(fd, "\n", 1);
        (void) close(fd);
}

/* True when this I/O of @kind must fail. */
static bool fault_hit(FaultKind kind) {
        if (!fault.armed || fault.kind != kind)
                return false;
        fault.count++;
        return fault.count == fault.n || (fault.forever && fault.count > fault.n);
}

#define REAL(f) (((FaultFile *) (f))->real)

static int f_close(sqlite3_file *f) {
        return REAL(f)->pMethods->xClose(REAL(f));
}

static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off) {
        return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off) {
        if (fault_hit(FAULT_WRITE)) {
                fault_log("write");
                return SQLITE_IOERR_WRITE;
        }
        if (fault_hit(FAULT_FULL)) {
                fault_log("full");
                return SQLITE_FULL;
        }
        return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size) {
        return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int f_sync(sqlite3_file *f, int flags) {
        if (fault_hit(FAULT_SYNC)) {
                fault_log("sync");
                return SQLITE_IOERR_FSYNC;
        }
        return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size) {
        return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int f_lock(sqlite3_file *f, int level) {
        return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int f_unlock(sqlite3_file *f, int level) {
        return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int f_check_reserved(sqlite3_file *f, int *out) {
        return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg) {
        return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int f_sector_size(sqlite3_file *f) {
        return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int f_device_characteristics(sqlite3_file *f) {
        return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int f_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
        return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
        return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f) {
        REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int f_shm_unmap(sqlite3_file *f, int delete_flag) {
        return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out) {
        return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
        return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods fault_io = {
        .iVersion = 3,
        .xClose = f_close,
        .xRead = f_read,
        .xWrite = f_write,
        .xTruncate = f_truncate,
        .xSync = f_sync,
        .xFileSize = f_file_size,
        .xLock = f_lock,
        .xUnlock = f_unlock,
        .xCheckReservedLock = f_check_reserved,
        .xFileControl = f_file_control,
        .xSectorSize = f_sector_size,
        .xDeviceCharacteristics = f_device_characteristics,
        .xShmMap = f_shm_map,
        .xShmLock = f_shm_lock,
        .xShmBarrier = f_shm_barrier,
        .xShmUnmap = f_shm_unmap,
        .xFetch = f_fetch,
        .xUnfetch = f_unfetch,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out) {
        FaultFile *f = (FaultFile *) file;
        int rc;

        f->real = (sqlite3_file *) (f + 1);
        rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out);
        /* Without methods SQLite does not call xClose: the real file needs no closing either. */
        f->base.pMethods = f->real->pMethods ? &fault_io : NULL;
        return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
        return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
        return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
        return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out) {
        return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int usec) {
        return real_vfs->xSleep(real_vfs, usec);
}

static int v_current_time(sqlite3_vfs *vfs, double *out) {
        return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out) {
        return real_vfs->xGetLastError(real_vfs, n, out);
}

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
        return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static sqlite3_vfs fault_vfs = {
        .iVersion = 2,
        .zName = "durabled-fault",
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_pathname,
        .xRandomness = v_randomness,
        .xSleep = v_sleep,
        .xCurrentTime = v_current_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_current_time64,
};

static int parse_spec(const char *spec) {
        static const struct {
                const char *name;
                FaultKind kind;
        } kinds[] = { { "write", FAULT_WRITE }, { "full", FAULT_FULL }, { "sync", FAULT_SYNC } };
        const char *colon = strchr(spec, ':');
        char *end = NULL;

        if (!colon)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (strlen(kinds[i].name) == (size_t) (colon - spec) &&
                    strncmp(spec, kinds[i].name, (size_t) (colon - spec)) == 0)
                        fault.kind = kinds[i].kind;
        fault.n = strtoul(colon + 1, &end, 10);
        if (fault.kind == FAULT_NONE || fault.n == 0 || end == colon + 1)
                return -EINVAL;
        if (streq(end, ":forever"))
                fault.forever = true;
        else if (*end)
                return -EINVAL;
        return 0;
}

const char *store_fault_vfs(int *ret_error) {
        const char *spec = getenv("DURABLED_FAULT");

        *ret_error = 0;
        if (!spec || !*spec)
                return NULL;
        if (!real_vfs) {
                if (parse_spec(spec) < 0) {
                        *ret_error = -EINVAL;
                        return NULL;
                }
                real_vfs = sqlite3_vfs_find(NULL);
                if (!real_vfs) {
                        *ret_error = -EIO;
                        return NULL;
                }
                fault_vfs.szOsFile = (int) sizeof(FaultFile) + real_vfs->szOsFile;
                fault_vfs.mxPathname = real_vfs->mxPathname;
                if (sqlite3_vfs_register(&fault_vfs, 0) != SQLITE_OK) {
                        *ret_error = -EIO;
                        return NULL;
                }
        }
        return fault_vfs.zName;
}

void store_arm_faults(void) {
        fault.armed = fault.kind != FAULT_NONE;
}

#else

const char *store_fault_vfs(int *ret_error) {
        *ret_error = 0;
        return NULL;
}

void store_arm_faults(void) {
}

#endif
