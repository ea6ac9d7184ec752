/* The bench's workflows, its activity and the worker threads; see worker.h. */

#include <durable/durable.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bench/worker.h"
#include "common/cleanup.h"

#define SIGNAL_WAIT_MAX (5 * DUR_MIN)

typedef struct WorkerSlot {
        BenchWorker *owner;
        dur_worker *worker; /* owned */
        pthread_t thread;
        bool started;
} WorkerSlot;

struct BenchWorker {
        WorkerSlot *slots;
        unsigned n;
        atomic_int error; /* the first error of dur_worker_run() */
};

/* One attempt: a failure shows up as a failed workflow (an error of the workload), never as a
 * retry that would hide in the latency. */
static const dur_activity_opts noop_opts = {
        .start_to_close = 30 * DUR_SEC,
        .retry = { .maximum_attempts = 1 },
};

static int noop_activity(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        return dur_pack(out, "{s:s, s:i, s:s}", "status", "ok", "value", 42, "detail",
                        "no-op activity");
}

static int count_input(dur_wf *wf, const msgpack_object *in, unsigned max, unsigned *ret) {
        unsigned n = 0;

        if (!in || dur_unpack(in, "{s:u}", "n", &n) < 0 || n > max)
                return dur_fail(wf, "InvalidInput", true, "input must be {\"n\": 0..%u}", max);
        *ret = n;
        return 0;
}

static int seq_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        unsigned n;

        DUR_TRY(count_input(wf, in, 1000, &n));
        for (unsigned i = 0; i < n; i++)
                DUR_TRY(dur_execute_activity(wf, "noop", NULL, &noop_opts, NULL));
        return dur_pack(out, "{s:u}", "activities", n);
}

static int fanout_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        dur_future *fs[BENCH_FANOUT_MAX];
        unsigned n;

        DUR_TRY(count_input(wf, in, BENCH_FANOUT_MAX, &n));
        for (unsigned i = 0; i < n; i++) {
                fs[i] = dur_start_activity(wf, "noop", NULL, &noop_opts);
                if (!fs[i])
                        return -ENOMEM;
        }
        DUR_TRY(dur_await_all(wf, fs, n));
        return dur_pack(out, "{s:u}", "activities", n);
}

static int sleep_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        uint64_t usec = 0;

        if (!in || dur_unpack(in, "{s:U}", "usec", &usec) < 0 || usec == 0)
                return dur_fail(wf, "InvalidInput", true, "input must be {\"usec\": >0}");
        DUR_TRY(dur_sleep(wf, usec));
        return dur_pack(out, "{s:U}", "woke", dur_now(wf));
}

typedef struct SignalState {
        bool signaled;
} SignalState;

static bool signal_arrived(dur_wf *wf, void *arg) {
        return ((SignalState *) arg)->signaled;
}

static int signal_on_go(dur_wf *wf, const msgpack_object *args) {
        SignalState *st = dur_wf_state(wf, sizeof(*st));

        st->signaled = true;
        return 0;
}

/* Update "go" (W7): what signal "go" does, answered with a result. */
static int update_on_go(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        SignalState *st = dur_wf_state(wf, sizeof(*st));

        st->signaled = true;
        return dur_pack(out, "{s:b}", "went", true);
}

static int signal_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        SignalState *st = dur_wf_state(wf, sizeof(*st));
        int r = dur_wait_condition(wf, signal_arrived, st, SIGNAL_WAIT_MAX);

        if (r < 0)
                return r;
        if (r == 0)
                return dur_fail(wf, "NoSignal", true, "no signal \"go\" came in time");
        return dur_pack(out, "{s:b}", "signaled", true);
}

static const dur_workflow_def workflows[] = {
        { .name = "BenchSeq", .run = seq_run },
        { .name = "BenchFanout", .run = fanout_run },
        { .name = "BenchSleep", .run = sleep_run },
        { .name = "BenchSignal",
          .run = signal_run,
          .signals = DUR_SIGNALS({ "go", signal_on_go }),
          .updates = DUR_UPDATES({ "go", update_on_go, NULL }) },
};

static const dur_activity_def noop_def = { "noop", noop_activity };

static int worker_new(dur_worker **ret, const dur_worker_opts *opts) {
        dur_worker *w;
        int r;

        r = dur_worker_new(&w, opts);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(workflows) && r >= 0; i++)
                r = dur_worker_register_workflow(w, &workflows[i]);
        if (r >= 0)
                r = dur_worker_register_activity(w, &noop_def);
        if (r < 0) {
                dur_worker_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

static void *worker_thread_main(void *userdata) {
        WorkerSlot *slot = userdata;
        int expected = 0, r = dur_worker_run(slot->worker);

        if (r < 0)
                atomic_compare_exchange_strong(&slot->owner->error, &expected, r);
        return NULL;
}

int bench_worker_start(BenchWorker **ret, const char *socket_path, const char *task_queue,
                       unsigned n_workers, unsigned workflow_threads, unsigned activity_threads,
                       unsigned max_cached) {
        const dur_worker_opts opts = { .socket_path = socket_path,
                                       .task_queue = task_queue,
                                       .identity = "durable-bench",
                                       .workflow_threads = workflow_threads,
                                       .activity_threads = activity_threads,
                                       .max_cached_workflows = max_cached };
        BenchWorker *bw;
        int r = 0;

        bw = calloc(1, sizeof(*bw));
        if (!bw || !(bw->slots = calloc(n_workers, sizeof(WorkerSlot)))) {
                free(bw);
                return -ENOMEM;
        }
        bw->n = n_workers;
        for (unsigned i = 0; i < n_workers && r >= 0; i++) {
                WorkerSlot *slot = &bw->slots[i];

                slot->owner = bw;
                r = worker_new(&slot->worker, &opts);
                if (r >= 0)
                        r = -pthread_create(&slot->thread, NULL, worker_thread_main, slot);
                slot->started = r >= 0;
        }
        if (r < 0) {
                (void) bench_worker_stop(bw);
                return r;
        }
        *ret = bw;
        return 0;
}

int bench_worker_stop(BenchWorker *bw) {
        int r;

        if (!bw)
                return 0;
        for (unsigned i = 0; i < bw->n; i++)
                if (bw->slots[i].started)
                        dur_worker_stop(bw->slots[i].worker);
        for (unsigned i = 0; i < bw->n; i++) {
                if (bw->slots[i].started)
                        (void) pthread_join(bw->slots[i].thread, NULL);
                dur_worker_free(bw->slots[i].worker);
        }
        r = atomic_load(&bw->error);
        free(bw->slots);
        free(bw);
        return r;
}
