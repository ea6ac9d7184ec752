#pragma once
/* Bulk loader: `durabled --bulk-load=CLOSED,OPEN` fills a store with CLOSED completed runs and
 * OPEN running ones, for scale measurements (bench W6, issue 3) and tests. It writes through the
 * daemon's own history engine on a Manager whose loop never runs, so the rows and events are
 * exactly those a real client and worker would have produced; it never listens on a socket.
 *
 * Runs are named bulk-closed-N and bulk-open-N (N from 0), rotate over BULKLOAD_TYPES workflow
 * types and BULKLOAD_QUEUES task queues (run N: type N mod 5, queue N mod 3), and are interleaved
 * evenly in start time, so that list filters on status, type and queue each select a spread-out
 * part of the store. Open runs wait with their first workflow task scheduled on a queue nobody
 * polls. The daemon must not run on the same state directory meanwhile (DESIGN.md §3: one
 * writer). */

#include <stdint.h>

#include "daemon/manager.h"

#define BULKLOAD_TYPES "Order", "Payment", "Shipping", "Refund", "Report"
#define BULKLOAD_QUEUES "bulk-a", "bulk-b", "bulk-c"

/* Loads into the store of @m (manager_new() done, manager_run() never called), in transactions of
 * BULKLOAD_BATCH runs, logging progress. 0, or -errno (logged) when a run could not be written;
 * runs of the batches committed before stay. */
int bulkload_run(Manager *m, uint64_t n_closed, uint64_t n_open);
