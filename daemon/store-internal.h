#pragma once
/* Shared by store.c and store-fault.c only. */

/* The name of the fault-injecting VFS to open the database with when $DURABLED_FAULT asks for
 * one (fault-injection builds), else NULL (SQLite's default). A malformed $DURABLED_FAULT sets
 * *@ret_error to -EINVAL. */
const char *store_fault_vfs(int *ret_error);
