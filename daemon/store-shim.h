#pragma once
/* SQLite VFS shims of the store (store-walbuf.c, store-fault.c): a VFS over another one whose
 * files wrap the files of the one below. A shim's file struct starts with a ShimFile; the VFS
 * below is the shim VFS's pAppData, and its file lives at the end of the shim's
 * (szOsFile = the shim's own size + the base's). Only the store's files include this. */

#include <errno.h>
#include <stddef.h>

/* <sqlite3.h> comes first, from the store's .c file that includes this: only daemon/store*.c
 * include it (STYLE.md §2, tests/unit/test-layering.sh). */

typedef struct ShimFile {
        sqlite3_file base;
        sqlite3_file *real; /* the file of the VFS below */
} ShimFile;

/* The file below a shim's file @f (any struct that starts with a ShimFile). */
#define SHIM_REAL(f) (((ShimFile *) (f))->real)

/* Sets the io methods a shim passes through unchanged (locks, file control, sector size, shared
 * memory) and the version; the shim sets xClose, xRead, xWrite, xTruncate, xSync, xFileSize. */
void shim_io_methods_fill(sqlite3_io_methods *m);

/* Fills every method of @vfs but xOpen (and its name) to pass through to @base, sizes its files as
 * @file_size bytes of the shim's own plus @base's, and registers it (not as the default). */
int shim_vfs_register(sqlite3_vfs *vfs, sqlite3_vfs *base, size_t file_size);

/* The start of a shim's xOpen: opens the file below into the end of @f and gives @f @methods
 * (none when the file below has none, as SQLite then calls no xClose). */
int shim_open(sqlite3_vfs *vfs,
              const char *name,
              ShimFile *f,
              int flags,
              int *out,
              const sqlite3_io_methods *methods);
