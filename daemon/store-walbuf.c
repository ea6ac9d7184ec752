/* Coalesced WAL writes: an SQLite VFS that wraps another one (SQLite's default, or the fault VFS
 * of tests) and gathers the writes SQLite makes to a WAL file into one buffer, written with one
 * pwrite() when the file is synced.
 *
 * Why: SQLite writes each WAL frame as two writes, its 24-byte header and then its page, so a
 * commit of 15 pages is 30 pwrite() calls, and each frame straddles two page-cache pages, which
 * the kernel locks, copies into and dirties three times per frame. At thousands of commits a
 * second that was an eighth of the daemon's CPU (bench/README.md, change 10). One write per
 * commit touches each page-cache page once.
 *
 * Why it is safe: with synchronous=FULL, SQLite syncs the WAL at the end of every commit, before
 * it publishes the new frames in the WAL index (sqlite3WalFrames(), then walIndexAppend() and
 * walIndexWriteHdr()); the buffer is written out at that sync, and its error, if any, is the
 * sync's, so the commit fails as it would have at the write. Nothing else can see the frames
 * before the sync: every read of the WAL, a size query, a truncation and the close write the
 * buffer out first. A crash loses only frames that were never synced, which SQLite's recovery
 * ignores anyway (their commit frame is missing or its checksum chain is broken). With
 * synchronous=NORMAL, commits do not sync the WAL and SQLite would publish frames still in the
 * buffer, so store_open() uses this VFS only with durability full.
 *
 * Only files SQLite opens with SQLITE_OPEN_WAL are buffered; the database file, whose writes
 * come from checkpoints at quiet moments, is passed through. Memory-mapped I/O is off
 * (mmap_size 0), so io methods of version 2 are enough. */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "daemon/store-internal.h"

/* A commit larger than this (a bulk load's) is written in pieces of this size. */
#define WALBUF_MAX (4 * 1024 * 1024)
#define WALBUF_PIECE (64 * 1024)

typedef struct BufFile {
        sqlite3_file base;
        sqlite3_file *real; /* right after this struct, szOsFile of the base VFS */
        bool wal;
        char *buf; /* bytes for [off, off + len) of the file, not yet written */
        size_t len, alloc;
        sqlite3_int64 off;
} BufFile;

static sqlite3_vfs *base_vfs;

#define REAL(f) (((BufFile *) (f))->real)

/* Writes the buffer out, in pieces of at most WALBUF_PIECE bytes: SQLite's unix VFS writes
 * only the low 17 bits of a larger count (seekAndWriteFd(): "nBuf &= 0x1ffff"), and a write of
 * 128 KiB would become one of nothing, reported as a full disk. On an error the buffer is dropped:
 * SQLite rolls the transaction back and writes those frames again, at the same offsets, in its
 * next one. */
static int buf_flush(BufFile *f) {
        int rc = SQLITE_OK;

        for (size_t done = 0; done < f->len && rc == SQLITE_OK; done += WALBUF_PIECE) {
                size_t n = MIN(f->len - done, (size_t) WALBUF_PIECE);
                rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int) n,
                                               f->off + (sqlite3_int64) done);
        }
        f->len = 0;
        return rc;
}

static bool buf_reserve(BufFile *f, size_t n) {
        char *p;

        if (f->len + n <= f->alloc)
                return true;
        p = realloc(f->buf, MAX(f->len + n, MIN(2 * f->alloc + 64 * 1024, (size_t) WALBUF_MAX)));
        if (!p)
                return false;
        f->buf = p;
        f->alloc = MAX(f->len + n, MIN(2 * f->alloc + 64 * 1024, (size_t) WALBUF_MAX));
        return true;
}

static int b_write(sqlite3_file *file, const void *data, int n, sqlite3_int64 off) {
        BufFile *f = (BufFile *) file;
        int rc;

        if (!f->wal || n <= 0)
                return f->real->pMethods->xWrite(f->real, data, n, off);
        /* Only a write that continues the buffer joins it. */
        if (f->len > 0 && (off != f->off + (sqlite3_int64) f->len || f->len + (size_t) n > WALBUF_MAX)) {
                rc = buf_flush(f);
                if (rc != SQLITE_OK)
                        return rc;
        }
        if ((size_t) n > WALBUF_PIECE || !buf_reserve(f, (size_t) n))
                return f->real->pMethods->xWrite(f->real, data, n, off);
        if (f->len == 0)
                f->off = off;
        memcpy(f->buf + f->len, data, (size_t) n);
        f->len += (size_t) n;
        return SQLITE_OK;
}

static int b_read(sqlite3_file *file, void *data, int n, sqlite3_int64 off) {
        int rc = buf_flush((BufFile *) file);

        return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xRead(REAL(file), data, n, off);
}

static int b_truncate(sqlite3_file *file, sqlite3_int64 size) {
        int rc = buf_flush((BufFile *) file);

        return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xTruncate(REAL(file), size);
}

static int b_sync(sqlite3_file *file, int flags) {
        int rc = buf_flush((BufFile *) file);

        return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int b_file_size(sqlite3_file *file, sqlite3_int64 *size) {
        int rc = buf_flush((BufFile *) file);

        return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int b_close(sqlite3_file *file) {
        BufFile *f = (BufFile *) file;

        /* Unsynced frames of a transaction that did not commit: writing them is harmless. */
        (void) buf_flush(f);
        free(f->buf);
        return f->real->pMethods->xClose(f->real);
}

static int b_lock(sqlite3_file *f, int level) {
        return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int b_unlock(sqlite3_file *f, int level) {
        return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int b_check_reserved(sqlite3_file *f, int *out) {
        return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int b_file_control(sqlite3_file *f, int op, void *arg) {
        return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int b_sector_size(sqlite3_file *f) {
        return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int b_device_characteristics(sqlite3_file *f) {
        return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int b_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
        return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}

static int b_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
        return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void b_shm_barrier(sqlite3_file *f) {
        REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int b_shm_unmap(sqlite3_file *f, int delete_flag) {
        return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

static const sqlite3_io_methods buf_io = {
        .iVersion = 2,
        .xClose = b_close,
        .xRead = b_read,
        .xWrite = b_write,
        .xTruncate = b_truncate,
        .xSync = b_sync,
        .xFileSize = b_file_size,
        .xLock = b_lock,
        .xUnlock = b_unlock,
        .xCheckReservedLock = b_check_reserved,
        .xFileControl = b_file_control,
        .xSectorSize = b_sector_size,
        .xDeviceCharacteristics = b_device_characteristics,
        .xShmMap = b_shm_map,
        .xShmLock = b_shm_lock,
        .xShmBarrier = b_shm_barrier,
        .xShmUnmap = b_shm_unmap,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out) {
        BufFile *f = (BufFile *) file;
        int rc;

        *f = (BufFile){ .real = (sqlite3_file *) (f + 1), .wal = flags & SQLITE_OPEN_WAL };
        rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out);
        /* Without methods SQLite does not call xClose: the real file needs no closing either. */
        f->base.pMethods = f->real->pMethods ? &buf_io : NULL;
        return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
        return base_vfs->xDelete(base_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
        return base_vfs->xAccess(base_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
        return base_vfs->xFullPathname(base_vfs, name, n, out);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out) {
        return base_vfs->xRandomness(base_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int usec) {
        return base_vfs->xSleep(base_vfs, usec);
}

static int v_current_time(sqlite3_vfs *vfs, double *out) {
        return base_vfs->xCurrentTime(base_vfs, out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out) {
        return base_vfs->xGetLastError(base_vfs, n, out);
}

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
        return base_vfs->xCurrentTimeInt64(base_vfs, out);
}

static sqlite3_vfs walbuf_vfs = {
        .iVersion = 2,
        .zName = "durabled-walbuf",
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

const char *store_walbuf_vfs(const char *base, int *ret_error) {
        sqlite3_vfs *b = sqlite3_vfs_find(base);

        *ret_error = 0;
        if (!b) {
                *ret_error = -EIO;
                return NULL;
        }
        if (base_vfs && base_vfs != b) {
                /* One base per process: the daemon opens one store. */
                *ret_error = -EBUSY;
                return NULL;
        }
        if (!base_vfs) {
                base_vfs = b;
                walbuf_vfs.szOsFile = (int) sizeof(BufFile) + b->szOsFile;
                walbuf_vfs.mxPathname = b->mxPathname;
                if (sqlite3_vfs_register(&walbuf_vfs, 0) != SQLITE_OK) {
                        base_vfs = NULL;
                        *ret_error = -EIO;
                        return NULL;
                }
        }
        return walbuf_vfs.zName;
}
