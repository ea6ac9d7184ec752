#pragma once
/* The standard workloads of issue 3. Each runs against the daemon and worker that main() set up,
 * stops by itself (every wait has a timeout, and Bench.deadline_usec ends it early), and fills a
 * Result. A workload measures only its own phase: set-up and checks after it (W4's histories,
 * W5's pre-started workflows) are outside the wall and CPU figures. */

#include "bench/bench.h"

typedef struct Workload {
        const char *key;  /* "W1" */
        const char *name; /* "seq3", the JSON "workload" */
        const char *summary;
        /* NULL: not implemented yet. Returns 0, or -errno when the workload could not finish
         * (Result.error says why). */
        int (*run)(const Bench *b, Result *ret);
} Workload;

extern const Workload workloads[];
extern const size_t n_workloads;

/* By key (W1) or name (seq3), case-insensitive; NULL when unknown. */
const Workload *workload_find(const char *s);

/* 20 one-activity workflows, 4 at a time, before the first workload: connections, the worker's
 * threads and SQLite's page cache are warm when measuring starts. */
int workloads_warm_up(const Bench *b, Result *ret);
