/* What the store's SQLite VFS shims (store-walbuf.c, store-fault.c) pass through unchanged to the
 * VFS below them; see store-shim.h. */

/* <sqlite3.h> must come before the header that uses its types (store-shim.h). */
/* clang-format off */
#include <sqlite3.h>

#include "daemon/store-shim.h"
/* clang-format on */

#define BASE(v) ((sqlite3_vfs *) (v)->pAppData)

static int f_lock(sqlite3_file *f, int level) {
        return SHIM_REAL(f)->pMethods->xLock(SHIM_REAL(f), level);
}

static int f_unlock(sqlite3_file *f, int level) {
        return SHIM_REAL(f)->pMethods->xUnlock(SHIM_REAL(f), level);
}

static int f_check_reserved(sqlite3_file *f, int *out) {
        return SHIM_REAL(f)->pMethods->xCheckReservedLock(SHIM_REAL(f), out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg) {
        return SHIM_REAL(f)->pMethods->xFileControl(SHIM_REAL(f), op, arg);
}

static int f_sector_size(sqlite3_file *f) {
        return SHIM_REAL(f)->pMethods->xSectorSize(SHIM_REAL(f));
}

static int f_device_characteristics(sqlite3_file *f) {
        return SHIM_REAL(f)->pMethods->xDeviceCharacteristics(SHIM_REAL(f));
}

static int f_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
        return SHIM_REAL(f)->pMethods->xShmMap(SHIM_REAL(f), page, size, extend, out);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
        return SHIM_REAL(f)->pMethods->xShmLock(SHIM_REAL(f), offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f) {
        SHIM_REAL(f)->pMethods->xShmBarrier(SHIM_REAL(f));
}

static int f_shm_unmap(sqlite3_file *f, int delete_flag) {
        return SHIM_REAL(f)->pMethods->xShmUnmap(SHIM_REAL(f), delete_flag);
}

void shim_io_methods_fill(sqlite3_io_methods *m) {
        /* Version 2: no memory-mapped reads (mmap_size is 0), which would bypass a shim. */
        m->iVersion = 2;
        m->xLock = f_lock;
        m->xUnlock = f_unlock;
        m->xCheckReservedLock = f_check_reserved;
        m->xFileControl = f_file_control;
        m->xSectorSize = f_sector_size;
        m->xDeviceCharacteristics = f_device_characteristics;
        m->xShmMap = f_shm_map;
        m->xShmLock = f_shm_lock;
        m->xShmBarrier = f_shm_barrier;
        m->xShmUnmap = f_shm_unmap;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
        return BASE(vfs)->xDelete(BASE(vfs), name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
        return BASE(vfs)->xAccess(BASE(vfs), name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
        return BASE(vfs)->xFullPathname(BASE(vfs), name, n, out);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out) {
        return BASE(vfs)->xRandomness(BASE(vfs), n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int usec) {
        return BASE(vfs)->xSleep(BASE(vfs), usec);
}

static int v_current_time(sqlite3_vfs *vfs, double *out) {
        return BASE(vfs)->xCurrentTime(BASE(vfs), out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out) {
        return BASE(vfs)->xGetLastError(BASE(vfs), n, out);
}

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
        return BASE(vfs)->xCurrentTimeInt64(BASE(vfs), out);
}

int shim_vfs_register(sqlite3_vfs *vfs, sqlite3_vfs *base, size_t file_size) {
        vfs->iVersion = 2;
        vfs->pAppData = base;
        vfs->szOsFile = (int) file_size + base->szOsFile;
        vfs->mxPathname = base->mxPathname;
        vfs->xDelete = v_delete;
        vfs->xAccess = v_access;
        vfs->xFullPathname = v_full_pathname;
        vfs->xRandomness = v_randomness;
        vfs->xSleep = v_sleep;
        vfs->xCurrentTime = v_current_time;
        vfs->xGetLastError = v_last_error;
        vfs->xCurrentTimeInt64 = v_current_time64;
        return sqlite3_vfs_register(vfs, 0) == SQLITE_OK ? 0 : -EIO;
}

int shim_open(sqlite3_vfs *vfs,
              const char *name,
              ShimFile *f,
              int flags,
              int *out,
              const sqlite3_io_methods *methods) {
        int rc;

        f->real = (sqlite3_file *) ((char *) f + vfs->szOsFile - BASE(vfs)->szOsFile);
        rc = BASE(vfs)->xOpen(BASE(vfs), name, f->real, flags, out);
        /* Without methods SQLite does not call xClose: the real file needs no closing either. */
        f->base.pMethods = f->real->pMethods ? methods : NULL;
        return rc;
}
