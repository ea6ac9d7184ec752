/* crash-worker: the worker side of the crash loop (tests/crash/crash-loop.c). It polls the task
 * queue "crash" on $DURABLED_SOCKET, reconnecting whenever the daemon dies, and serves
 *
 *   LoadWorkflow {"n": N, "timer_ms": T, "proc": P}
 *       a = add(N, 1); b = add(a, 2)                 two sequential activities
 *       p1, p2, p3 = add(N, 10), add(N, 20), add(N, 30)   three in parallel, with
 *       c = LoadChild(N) as child "<id>-child"       a child workflow and, when P,
 *       d = crash-proc(N)                            a process activity (an activity unit)
 *       sleep T ms                                   a durable timer
 *       wait for signal "go" {"v": V}                the first one counts
 *       returns {"n": N, "seq": b, "par": p1 + p2 + p3, "child": c, "proc": d, "v": V}
 *     so the checker knows the right result: seq = N + 3, par = 3N + 60, child = N + 100,
 *     proc = 2N (0 without P), V what it sent.
 *
 *   LoadChild {"n": N} returns add(N, 100).
 *
 *   activity "add" {"x", "y"} returns x + y after appending "<idempotency key> <attempt>\n" to
 *   the file $CRASH_EFFECT_LOG (O_APPEND): the external effect the checker looks for.
 *
 * Activities retry (start-to-close 2 s) and workflow tasks time out in 2 s (the harness starts
 * runs so), so that what a crash lost is retried within seconds. */

#include <durable/durable.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static dur_worker *worker;
static int effect_fd = -1;

static int act_add(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        uint64_t x = 0, y = 0;
        char line[1200];
        int n, r;

        r = dur_unpack(in, "{s:U, s:U}", "x", &x, "y", &y);
        if (r < 0)
                return dur_actx_fail(ctx, "BadInput", true, "add wants {x, y}");
        n = snprintf(line, sizeof(line), "%s %u\n", dur_actx_idempotency_key(ctx),
                     dur_actx_attempt(ctx));
        if (n < 0 || (size_t) n >= sizeof(line) || write(effect_fd, line, (size_t) n) != n)
                return dur_actx_fail(ctx, "EffectFailed", false, "cannot append the effect: %s",
                                     strerror(errno));
        return dur_pack(out, "U", x + y);
}

typedef struct LoadState {
        bool signaled;
        uint64_t v;
} LoadState;

static int on_go(dur_wf *wf, const msgpack_object *args) {
        LoadState *st = dur_wf_state(wf, sizeof(*st));
        uint64_t v = 0;

        if (st->signaled || !args || dur_unpack(args, "{s:U}", "v", &v) < 0)
                return 0;
        st->signaled = true;
        st->v = v;
        return 0;
}

static bool got_go(dur_wf *wf, void *arg) {
        return ((LoadState *) arg)->signaled;
}

static int add(dur_wf *wf, uint64_t x, uint64_t y, const dur_activity_opts *o, uint64_t *ret) {
        const msgpack_object *res = NULL;
        int r;

        r = dur_execute_activity(wf, "add", dur_args("{s:U, s:U}", "x", x, "y", y), o, &res);
        if (r < 0)
                return r;
        return dur_unpack(res, "U", ret);
}

static const dur_activity_opts activity_opts = {
        .start_to_close = 2 * DUR_SEC,
        .retry = { .initial_interval = 100 * DUR_MSEC, .maximum_interval = DUR_SEC },
};

static int child_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        uint64_t n = 0, c;
        int r;

        r = dur_unpack(in, "{s:U}", "n", &n);
        if (r < 0)
                return dur_fail(wf, "BadInput", true, "LoadChild wants {n}");
        r = add(wf, n, 100, &activity_opts, &c);
        if (r < 0)
                return r;
        return dur_pack(out, "U", c);
}

/* The child and the process activity, started with the parallel activities: 0 or -errno. */
static int start_more(dur_wf *wf, uint64_t n, bool proc, dur_future *f[2]) {
        dur_child_opts co = { .task_timeout = 2 * DUR_SEC };
        dur_activity_opts po = activity_opts;
        char id[128];

        snprintf(id, sizeof(id), "%s-child", dur_wf_id(wf));
        co.workflow_id = id;
        f[0] = dur_start_child(wf, "LoadChild", dur_args("{s:U}", "n", n), &co);
        /* A process (fork, exec, cgroup) takes longer than a call in the worker. */
        po.start_to_close = 10 * DUR_SEC;
        f[1] = proc ? dur_start_activity(wf, "crash-proc", dur_args("{s:U}", "n", n), &po) : NULL;
        return f[0] && (!proc || f[1]) ? 0 : -errno;
}

static int load_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        LoadState *st = dur_wf_state(wf, sizeof(*st));
        const dur_activity_opts o = activity_opts;
        uint64_t n = 0, timer_ms = 0, a, b, p[3], c = 0, d = 0;
        dur_future *f[5] = {};
        bool proc = false;
        int r;

        r = dur_unpack(in, "{s:U, s?U, s?b}", "n", &n, "timer_ms", &timer_ms, "proc", &proc);
        if (r < 0)
                return dur_fail(wf, "BadInput", true, "LoadWorkflow wants {n, timer_ms?, proc?}");
        r = add(wf, n, 1, &o, &a);
        if (r >= 0)
                r = add(wf, a, 2, &o, &b);
        if (r < 0)
                return r;
        for (int i = 0; i < 3; i++)
                f[i] = dur_start_activity(
                        wf, "add", dur_args("{s:U, s:U}", "x", n, "y", (uint64_t) 10 * (i + 1)),
                        &o);
        r = start_more(wf, n, proc, &f[3]);
        if (r >= 0)
                r = dur_await_all(wf, f, proc ? 5 : 4);
        for (int i = 0; r >= 0 && i < 3; i++)
                r = dur_unpack(dur_future_result(f[i]), "U", &p[i]);
        if (r >= 0)
                r = dur_unpack(dur_future_result(f[3]), "U", &c);
        if (r >= 0 && proc)
                r = dur_unpack(dur_future_result(f[4]), "U", &d);
        if (r < 0)
                return r;
        if (timer_ms) {
                r = dur_sleep(wf, timer_ms * DUR_MSEC);
                if (r < 0)
                        return r;
        }
        r = dur_wait_condition(wf, got_go, st, 0);
        if (r < 0)
                return r;
        return dur_pack(out, "{s:U, s:U, s:U, s:U, s:U, s:U}", "n", n, "seq", b, "par",
                        p[0] + p[1] + p[2], "child", c, "proc", d, "v", st->v);
}

/* The worker keeps pointers to its definitions: they live as long as the program. */
static const dur_activity_def add_activity = { "add", act_add };

static const dur_workflow_def load_workflow = {
        .name = "LoadWorkflow",
        .run = load_run,
        .signals = DUR_SIGNALS({ "go", on_go }),
};

static const dur_workflow_def child_workflow = {
        .name = "LoadChild",
        .run = child_run,
};

static volatile sig_atomic_t stopping;

static void on_stop(int sig) {
        stopping = 1;
        if (worker)
                dur_worker_stop(worker); /* async-signal-safe */
}

static int run_worker(void) {
        dur_worker_opts opts = { .task_queue = "crash" };
        int r;

        r = dur_worker_new(&worker, &opts);
        if (r >= 0)
                r = dur_worker_register_workflow(worker, &load_workflow);
        if (r >= 0)
                r = dur_worker_register_workflow(worker, &child_workflow);
        if (r >= 0)
                r = dur_worker_register_activity(worker, &add_activity);
        if (r >= 0 && !stopping)
                r = dur_worker_run(worker);
        worker = dur_worker_free(worker);
        return r;
}

int main(int argc, char *argv[]) {
        struct sigaction sa = { .sa_handler = on_stop };
        const char *log = getenv("CRASH_EFFECT_LOG");
        int r;

        if (!log) {
                fprintf(stderr, "crash-worker: $CRASH_EFFECT_LOG is not set\n");
                return EXIT_FAILURE;
        }
        effect_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (effect_fd < 0) {
                fprintf(stderr, "crash-worker: cannot open %s: %s\n", log, strerror(errno));
                return EXIT_FAILURE;
        }
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return EXIT_FAILURE;
        /* Started while the daemon is down (the harness kills it at any moment), the first
         * connection fails: try again, as systemd's Restart= would restart a real worker. Once
         * connected, libdurable itself reconnects. */
        for (;;) {
                struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };

                r = run_worker();
                if ((r != -ECONNREFUSED && r != -ENOENT) || stopping)
                        break;
                (void) nanosleep(&ts, NULL);
        }
        if (r < 0)
                fprintf(stderr, "crash-worker: %s\n", strerror(-r));
        close(effect_fd);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
