#pragma once
/* W6 "scale": the latency of StartWorkflow, DescribeWorkflow, ListWorkflows (with filters) and
 * SignalWorkflow, one request at a time, on an empty store and again after `durabled
 * --bulk-load` filled the same store with 1,000,000 closed and 100,000 open runs (x --n). It runs
 * a daemon of its own (so not with --socket): started on a fresh directory, measured, stopped,
 * bulk-loaded, started again, measured again. Issue 3 asks that every figure stay within 2x of
 * the empty store's. */

#include "bench/bench.h"

int scale_run(const Bench *b, Result *ret);
