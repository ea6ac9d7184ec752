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
 * (mmap_size 0), so io methods of version 2 are enough; what passes through unchanged is
 * store-shim.c's. */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "daemon/store-internal.h"
#include "daemon/store-shim.h"

/* A commit larger than this (a bulk load's) is written in pieces of this size. */
#define WALBUF_MAX (4 * 1024 * 1024)
#define WALBUF_PIECE (64 * 1024)

typedef struct BufFile {
        ShimFile shim;
        bool wal;
        char *buf; /* bytes for [off, off + len) of the file, not yet written */
        size_t len, alloc;
        sqlite3_int64 off;
} BufFile;

/* Writes the buffer out, in pieces of at most WALBUF_PIECE bytes: SQLite's unix VFS writes
 * only the low 17 bits of a larger count (seekAndWriteFd(): "nBuf &= 0x1ffff"), and a write of
 * 128 KiB would become one of nothing, reported as a full disk. On an error the buffer is dropped:
 * SQLite rolls the transaction back and writes those frames again, at the same offsets, in its
 * next one. */
static int buf_flush(BufFile *f) {
        int rc = SQLITE_OK;

        for (size_t done = 0; done < f->len && rc == SQLITE_OK; done += WALBUF_PIECE) {
                size_t n = MIN(f->len - done, (size_t) WALBUF_PIECE);
                rc = SHIM_REAL(f)->pMethods->xWrite(SHIM_REAL(f), f->buf + done, (int) n,
                                                    f->off + (sqlite3_int64) done);
        }
        f->len = 0;
        return rc;
}

static bool buf_reserve(BufFile *f, size_t n) {
        size_t want = MAX(f->len + n, MIN(2 * f->alloc + 64 * 1024, (size_t) WALBUF_MAX));
        char *p;

        if (f->len + n <= f->alloc)
                return true;
        p = realloc(f->buf, want);
        if (!p)
                return false;
        f->buf = p;
        f->alloc = want;
        return true;
}

static int b_write(sqlite3_file *file, const void *data, int n, sqlite3_int64 off) {
        BufFile *f = (BufFile *) file;
        int rc;

        if (!f->wal || n <= 0)
                return SHIM_REAL(f)->pMethods->xWrite(SHIM_REAL(f), data, n, off);
        /* Only a write that continues the buffer joins it. */
        if (f->len > 0 &&
            (off != f->off + (sqlite3_int64) f->len || f->len + (size_t) n > WALBUF_MAX)) {
                rc = buf_flush(f);
                if (rc != SQLITE_OK)
                        return rc;
        }
        if ((size_t) n > WALBUF_PIECE || !buf_reserve(f, (size_t) n))
                return SHIM_REAL(f)->pMethods->xWrite(SHIM_REAL(f), data, n, off);
        if (f->len == 0)
                f->off = off;
        memcpy(f->buf + f->len, data, (size_t) n);
        f->len += (size_t) n;
        return SQLITE_OK;
}

static int b_read(sqlite3_file *file, void *data, int n, sqlite3_int64 off) {
        int rc = buf_flush((BufFile *) file);

        return rc != SQLITE_OK ? rc
                               : SHIM_REAL(file)->pMethods->xRead(SHIM_REAL(file), data, n, off);
}

static int b_truncate(sqlite3_file *file, sqlite3_int64 size) {
        int rc = buf_flush((BufFile *) file);

        return rc != SQLITE_OK ? rc : SHIM_REAL(file)->pMethods->xTruncate(SHIM_REAL(file), size);
}

static int b_sync(sqlite3_file *file, int flags) {
        int rc = buf_flush((BufFile *) file);

        return rc != SQLITE_OK ? rc : SHIM_REAL(file)->pMethods->xSync(SHIM_REAL(file), flags);
}

static int b_file_size(sqlite3_file *file, sqlite3_int64 *size) {
        int rc = buf_flush((BufFile *) file);

        return rc != SQLITE_OK ? rc : SHIM_REAL(file)->pMethods->xFileSize(SHIM_REAL(file), size);
}

static int b_close(sqlite3_file *file) {
        BufFile *f = (BufFile *) file;

        /* Unsynced frames of a transaction that did not commit: writing them is harmless. */
        (void) buf_flush(f);
        free(f->buf);
        return SHIM_REAL(f)->pMethods->xClose(SHIM_REAL(f));
}

static sqlite3_io_methods buf_io = {
        .xClose = b_close,
        .xRead = b_read,
        .xWrite = b_write,
        .xTruncate = b_truncate,
        .xSync = b_sync,
        .xFileSize = b_file_size,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out) {
        BufFile *f = (BufFile *) file;

        *f = (BufFile){ .wal = flags & SQLITE_OPEN_WAL };
        return shim_open(vfs, name, &f->shim, flags, out, &buf_io);
}

static sqlite3_vfs walbuf_vfs = {
        .zName = "durabled-walbuf",
        .xOpen = v_open,
};

const char *store_walbuf_vfs(const char *base, int *ret_error) {
        sqlite3_vfs *b = sqlite3_vfs_find(base);

        *ret_error = 0;
        if (!b) {
                *ret_error = -EIO;
                return NULL;
        }
        /* Registered once, over the base of the first store: the daemon opens one store. */
        if (walbuf_vfs.pAppData && walbuf_vfs.pAppData != b) {
                *ret_error = -EBUSY;
                return NULL;
        }
        if (!walbuf_vfs.pAppData) {
                shim_io_methods_fill(&buf_io);
                *ret_error = shim_vfs_register(&walbuf_vfs, b, sizeof(BufFile));
                if (*ret_error < 0) {
                        walbuf_vfs.pAppData = NULL;
                        return NULL;
                }
        }
        return walbuf_vfs.zName;
}
