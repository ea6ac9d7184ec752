#pragma once
/* durable-bench: what every part of the benchmark shares. A Bench describes the daemon under test
 * and the run (set up once by main()); a Result is one workload's measurement, printed as one
 * JSON line and one table row. Times are microseconds (uint64_t, *_usec) on CLOCK_MONOTONIC. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_TASK_QUEUE_MAX 64
#define BENCH_PREFIX_MAX 64
#define BENCH_ERROR_MAX 256

typedef struct Bench {
        const char *socket_path;
        pid_t daemon_pid;       /* whose CPU time is measured; 0 when unknown */
        char task_queue[BENCH_TASK_QUEUE_MAX];
        char prefix[BENCH_PREFIX_MAX]; /* of every workflow id of this run */
        double scale;           /* --n: factor on every workload's count */
        unsigned clients;       /* --clients: 0 = each workload's own */
        uint64_t deadline_usec; /* monotonic; workloads give up after it */
        const char *durabled;   /* the daemon binary; NULL with --socket (W6 needs its own) */
        const char *durability; /* "full" or "normal", for a daemon a workload starts */
} Bench;

/* W6: one operation measured on the empty store ([0]) and on the loaded one ([1]). */
typedef struct OpResult {
        const char *op; /* "StartWorkflow", ... */
        size_t n[2];
        uint64_t p50_usec[2], p99_usec[2], max_usec[2];
        double rows[2]; /* list operations: workflows per answer, on average */
} OpResult;

#define BENCH_OPS_MAX 8

typedef struct Result {
        const char *workload;
        size_t n;            /* workflows that completed */
        size_t errors;       /* workflows that did not (the workload stops at the first) */
        unsigned clients;
        double wall_s;
        double daemon_cpu_s; /* < 0: unknown */
        double worker_cpu_s; /* the whole bench process: worker and client loops */
        bool has_stats;      /* the daemon's GetStats counters over the measured phase */
        uint64_t requests, commits, wal_frames;
        bool has_latency;
        uint64_t p50_usec, p99_usec, max_usec;
        bool has_fire;       /* W4: lateness of TimerFired itself, besides the wake-up */
        uint64_t fire_p50_usec, fire_p99_usec, fire_max_usec;
        char error[BENCH_ERROR_MAX]; /* the first error, or "" */
        /* W6: n is the runs loaded, wall_s the bulk load's time. */
        OpResult ops[BENCH_OPS_MAX];
        size_t n_ops;
        uint64_t closed, open;
        double startup_s[2]; /* daemon start until READY=1: empty, loaded store */
        double db_mib;       /* database file after the load */
} Result;

uint64_t now_usec(void);
/* The count of a workload whose standard count is @base, scaled by --n (at least 1). */
size_t bench_count(const Bench *b, size_t base);
