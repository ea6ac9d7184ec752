#pragma once
/* Activity tasks in a worker: one task polled by an activity thread is run with its dur_actx
 * (the context the activity function gets) and its outcome is reported over the thread's Conn.
 * The worker owns the threads and the polling; this module owns one task from start to report. */

#include <stddef.h>

#include <msgpack.h>

#include "durable/durable.h"
#include "libclient/conn.h"

/* Runs the activity task @task (the "task" map of a PollActivityTask answer) with the function
 * registered for its type in @defs (@n_defs entries) and reports Complete/Fail/CancelActivityTask
 * over @conn. A task the daemon no longer wants (stale token) or a malformed task is logged and
 * dropped: the daemon's timeouts retry it. Returns <0 only when @conn is unusable
 * (-ECONNRESET...) or on OOM, which end the activity thread. */
int activity_task_run(Conn *conn,
                      const dur_activity_def *const *defs,
                      size_t n_defs,
                      const msgpack_object *task);
