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
 *     powerloss  the N-th write is where the power fails: every write since the last fsync of
 *                its file is lost, and the daemon dies (SIGKILL)
 *     garble     the same, but the unsynced regions hold garbage instead (a torn write)
 *   In these two modes writes are kept in memory, per file, until the file is synced (SQLite's
 *   test6.c crash VFS does the same): reads see them, the disk does not. A truncate or a close
 *   writes them out unsynced, which can only keep more than a real power failure would. After
 *   such a "power failure" the harness also removes the -shm file (shared memory does not
 *   survive a reboot).
 *
 * Counting starts when the daemon is ready (store_arm_faults(), after start-up's own commit), so
 * that N names the N-th write or fsync made for requests. Each injected fault is logged, so that
 * a test counts them; "DURABLED_FAULT_LOG=PATH" appends one line per fault to PATH.
 *
 * The wrapper forwards everything else to the real VFS, including shared memory (the WAL index)
 * and memory-mapped reads. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"
#include "daemon/store-internal.h"
#include "daemon/store-shim.h"
#include "daemon/store.h"

#if DURABLED_FAULT_INJECTION

typedef enum FaultKind {
        FAULT_NONE,
        FAULT_WRITE,
        FAULT_FULL,
        FAULT_SYNC,
        FAULT_POWERLOSS,
        FAULT_GARBLE,
} FaultKind;

static struct {
        FaultKind kind;
        unsigned long n;
        bool forever;
        bool armed;
        unsigned long count;
} fault;

/* A write not yet synced (power-loss modes). */
typedef struct Pending {
        sqlite3_int64 off;
        int len;
        char *data;
} Pending;

typedef struct FaultFile {
        ShimFile shim; /* the real file: shim.real */
        Pending *pending;
        size_t n_pending, pending_alloc;
        struct FaultFile *next; /* every open file, for the power failure */
} FaultFile;

static FaultFile *open_files;

static bool power_modes(void) {
        return fault.kind == FAULT_POWERLOSS || fault.kind == FAULT_GARBLE;
}

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

/* Writes the file's pending writes to the real file, in order, without syncing. */
static int pending_apply(FaultFile *f) {
        int rc = SQLITE_OK;

        for (size_t i = 0; i < f->n_pending; i++) {
                Pending *p = &f->pending[i];
                if (rc == SQLITE_OK)
                        rc = SHIM_REAL(f)->pMethods->xWrite(SHIM_REAL(f), p->data, p->len, p->off);
                free(p->data);
        }
        f->n_pending = 0;
        return rc;
}

static void pending_drop(FaultFile *f) {
        for (size_t i = 0; i < f->n_pending; i++)
                free(f->pending[i].data);
        f->n_pending = 0;
}

static int pending_add(FaultFile *f, const void *buf, int n, sqlite3_int64 off) {
        Pending *p;

        if (f->n_pending == f->pending_alloc) {
                size_t k = f->pending_alloc ? 2 * f->pending_alloc : 64;
                p = realloc(f->pending, k * sizeof(*p));
                if (!p)
                        return SQLITE_NOMEM;
                f->pending = p;
                f->pending_alloc = k;
        }
        p = &f->pending[f->n_pending];
        *p = (Pending){ .off = off, .len = n, .data = malloc(n > 0 ? (size_t) n : 1) };
        if (!p->data)
                return SQLITE_NOMEM;
        memcpy(p->data, buf, (size_t) n);
        f->n_pending++;
        return SQLITE_OK;
}

/* The power fails: what was not synced is lost (or garbled), and so is the daemon. */
_noreturn_ static void power_failure(void) {
        for (FaultFile *f = open_files; f; f = f->next) {
                for (size_t i = 0; fault.kind == FAULT_GARBLE && i < f->n_pending; i++) {
                        Pending *p = &f->pending[i];
                        for (int j = 0; j < p->len; j++)
                                p->data[j] = (char) random();
                        (void) SHIM_REAL(f)->pMethods->xWrite(SHIM_REAL(f), p->data, p->len,
                                                              p->off);
                }
                pending_drop(f);
        }
        fault_log(fault.kind == FAULT_GARBLE ? "garble" : "powerloss");
        (void) raise(SIGKILL);
        _exit(EXIT_FAILURE);
}

static int f_close(sqlite3_file *file) {
        FaultFile *f = (FaultFile *) file;

        for (FaultFile **p = &open_files; *p; p = &(*p)->next)
                if (*p == f) {
                        *p = f->next;
                        break;
                }
        (void) pending_apply(f);
        free(f->pending);
        return SHIM_REAL(f)->pMethods->xClose(SHIM_REAL(f));
}

static int f_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 off) {
        FaultFile *f = (FaultFile *) file;
        int rc = SHIM_REAL(f)->pMethods->xRead(SHIM_REAL(f), buf, n, off);

        if (f->n_pending == 0)
                return rc;
        if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
                return rc;
        /* Later writes win: apply each pending one that overlaps, in order. */
        for (size_t i = 0; i < f->n_pending; i++) {
                Pending *p = &f->pending[i];
                sqlite3_int64 lo = MAX(off, p->off), hi = MIN(off + n, p->off + p->len);

                if (lo >= hi)
                        continue;
                memcpy((char *) buf + (lo - off), p->data + (lo - p->off), (size_t) (hi - lo));
        }
        /* A read is short only where neither the file nor a pending write has the bytes. */
        if (rc == SQLITE_IOERR_SHORT_READ) {
                sqlite3_int64 size = 0;
                (void) SHIM_REAL(f)->pMethods->xFileSize(SHIM_REAL(f), &size);
                for (size_t i = 0; i < f->n_pending; i++)
                        size = MAX(size, f->pending[i].off + f->pending[i].len);
                if (size >= off + n)
                        rc = SQLITE_OK;
        }
        return rc;
}

static int f_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 off) {
        FaultFile *f = (FaultFile *) file;

        if (fault_hit(FAULT_WRITE)) {
                fault_log("write");
                return SQLITE_IOERR_WRITE;
        }
        if (fault_hit(FAULT_FULL)) {
                fault_log("full");
                return SQLITE_FULL;
        }
        if (power_modes()) {
                if (fault_hit(fault.kind))
                        power_failure();
                return pending_add(f, buf, n, off);
        }
        return SHIM_REAL(f)->pMethods->xWrite(SHIM_REAL(f), buf, n, off);
}

static int f_truncate(sqlite3_file *file, sqlite3_int64 size) {
        FaultFile *f = (FaultFile *) file;
        int rc = pending_apply(f);

        return rc != SQLITE_OK ? rc : SHIM_REAL(f)->pMethods->xTruncate(SHIM_REAL(f), size);
}

static int f_sync(sqlite3_file *file, int flags) {
        FaultFile *f = (FaultFile *) file;
        int rc;

        if (fault_hit(FAULT_SYNC)) {
                fault_log("sync");
                return SQLITE_IOERR_FSYNC;
        }
        rc = pending_apply(f);
        return rc != SQLITE_OK ? rc : SHIM_REAL(f)->pMethods->xSync(SHIM_REAL(f), flags);
}

static int f_file_size(sqlite3_file *file, sqlite3_int64 *size) {
        FaultFile *f = (FaultFile *) file;
        int rc = SHIM_REAL(f)->pMethods->xFileSize(SHIM_REAL(f), size);

        for (size_t i = 0; rc == SQLITE_OK && i < f->n_pending; i++)
                *size = MAX(*size, f->pending[i].off + f->pending[i].len);
        return rc;
}

static sqlite3_io_methods fault_io = {
        .xClose = f_close,
        .xRead = f_read,
        .xWrite = f_write,
        .xTruncate = f_truncate,
        .xSync = f_sync,
        .xFileSize = f_file_size,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out) {
        FaultFile *f = (FaultFile *) file;
        int rc;

        *f = (FaultFile){};
        rc = shim_open(vfs, name, &f->shim, flags, out, &fault_io);
        if (f->shim.base.pMethods) {
                f->next = open_files;
                open_files = f;
        }
        return rc;
}

static sqlite3_vfs fault_vfs = {
        .zName = "durabled-fault",
        .xOpen = v_open,
};

static int parse_spec(const char *spec) {
        static const struct {
                const char *name;
                FaultKind kind;
        } kinds[] = {
                { "write", FAULT_WRITE },   { "full", FAULT_FULL },
                { "sync", FAULT_SYNC },     { "powerloss", FAULT_POWERLOSS },
                { "garble", FAULT_GARBLE },
        };
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
                shim_io_methods_fill(&fault_io);
                *ret_error = shim_vfs_register(&fault_vfs, real_vfs, sizeof(FaultFile));
                if (*ret_error < 0) {
                        real_vfs = NULL;
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
