#pragma once
/* Waiters: GetResult requests with wait=true, parked until their run closes. A run that closes
 * during a pass is noted; its waiters are answered only after that pass committed, from the
 * committed row (DESIGN.md §3), and the notes are dropped if the pass rolls back. */

#include <stdint.h>

#include "daemon/manager.h"

int waiter_add(Manager *m, Conn *c, uint64_t req_id, const char *run_id, uint64_t timeout_usec);
void waiter_note_closed(Manager *m, const char *run_id);
void waiter_forget_closed(Manager *m);
void waiter_answer_closed(Manager *m);
void waiter_forget_conn(Manager *m, Conn *c);
void waiter_free_all(Manager *m);
