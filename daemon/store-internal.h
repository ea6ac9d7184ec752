#pragma once
/* Shared by the store's files (store.c, store-schedule.c, store-batch.c, store-fault.c) and
 * nobody else (STYLE.md §2). */

#include "daemon/store.h"

/* Declared here without <sqlite3.h>: only store*.c include it (STYLE.md §2). */
typedef struct sqlite3 sqlite3;

sqlite3 *store_db(Store *s);
/* SQLite result code -> negative errno, as every store function answers (store.h). */
int store_sql_error(Store *s, int rc);

/* The name of the fault-injecting VFS to open the database with when $DURABLED_FAULT asks for
 * one (fault-injection builds), else NULL (SQLite's default). A malformed $DURABLED_FAULT sets
 * *@ret_error to -EINVAL. */
const char *store_fault_vfs(int *ret_error);
