#pragma once
/* The in-process worker of the benchmark: libdurable workers (each run by dur_worker_run() on a
 * thread of its own) polling the bench's task queue, with the bench's workflows and one no-op
 * activity. Workflow types, all on Bench.task_queue:
 *
 *   BenchSeq     {"n": N}     N no-op activities one after the other
 *   BenchFanout  {"n": N}     N no-op activities in parallel, then await all
 *   BenchSleep   {"usec": U}  one durable timer of U microseconds
 *   BenchSignal  nil          waits (at most 5 min) for the signal "go"
 *
 * The activity "noop" returns the ~50-byte object {"status":"ok","value":42,"detail":"no-op
 * activity"} at once. */

#include <stddef.h>

#define BENCH_FANOUT_MAX 256

typedef struct BenchWorker BenchWorker;

/* Starts @n_workers workers, each with @workflow_threads workflow threads and @activity_threads
 * activity threads (0: libdurable's defaults) and a sticky cache of @max_cached runs. */
int bench_worker_start(BenchWorker **ret, const char *socket_path, const char *task_queue,
                       unsigned n_workers, unsigned workflow_threads, unsigned activity_threads,
                       unsigned max_cached);
/* Stops and joins every worker; returns the first error a worker returned, else 0. */
int bench_worker_stop(BenchWorker *w);
