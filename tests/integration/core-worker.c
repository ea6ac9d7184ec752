/* core-worker: the worker of the workflow-model tests (test-start-policies.c,
 * test-continue-as-new.c), in $CORE_WORKER_BIN. It polls --task-queue (default "core") on
 * $DURABLED_SOCKET and exits 0 on SIGTERM after a graceful stop.
 *
 *   Collect  collects the arguments of signals "add" until signal "done"; returns
 *            {"signals": [...], "input": <input>}; query "count".
 *   Quick    returns its input.
 *   Fail     fails (type "Boom", non-retryable).
 *   Counter  {"n", "max", "gate"?: bool}: with gate, waits for signal "go"; then, while n < max,
 *            continues as new with n + 1; returns {"n": n, "run_id": <this run>}.
 *   Chatty   {"steps": k}: k one-millisecond durable timers in a row; returns {"steps": k}.
 *   Parent   {"child_id", "child_type", "child_input"?, "policy"?: "Terminate" | "Abandon" |
 *            "RequestCancel", "await"?: bool, "cancel_child"?: bool}: starts the child on this
 *            queue; with cancel_child, waits until it started, cancels it and returns
 *            {"child": "canceled"} once it ended Canceled; with await returns {"child": result}
 *            (a failed child fails the parent with the child's failure as cause); else returns
 *            {"child_run_id"} once the child started. "child_run_timeout_ms" sets the child's
 *            run timeout.
 *   Flaky    {"succeed_at": k}: fails (type "Flaky", retryable) while dur_wf_attempt() < k;
 *            returns {"attempt": n}.
 *   Fanout   {"n", "queue"}: starts n children "Quick" (ids "<id>-<i>") on "queue" and waits
 *            until each started or failed to; returns {"started", "failed", "failed_type"?: of the last}. */

#include <durable/durable.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define MAX_SIGNALS 256

static dur_worker *worker;

typedef struct Collect {
        const msgpack_object *values[MAX_SIGNALS];
        size_t n;
        bool done;
        bool go;
} Collect;

static int on_add(dur_wf *wf, const msgpack_object *args) {
        static const msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
        Collect *st = dur_wf_state(wf, sizeof(*st));

        if (st->n < MAX_SIGNALS)
                st->values[st->n++] = args ? args : &nil;
        return 0;
}

static int on_done(dur_wf *wf, const msgpack_object *args) {
        ((Collect *) dur_wf_state(wf, sizeof(Collect)))->done = true;
        return 0;
}

static int on_go(dur_wf *wf, const msgpack_object *args) {
        ((Collect *) dur_wf_state(wf, sizeof(Collect)))->go = true;
        return 0;
}

static bool is_done(dur_wf *wf, void *arg) {
        return ((Collect *) arg)->done;
}

static bool is_go(dur_wf *wf, void *arg) {
        return ((Collect *) arg)->go;
}

static int collect_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        Collect *st = dur_wf_state(wf, sizeof(*st));
        int r;

        r = dur_wait_condition(wf, is_done, st, 0);
        if (r < 0)
                return r;
        if (msgpack_pack_map(out, 2) < 0 || dur_pack(out, "s", "signals") < 0 ||
            msgpack_pack_array(out, (uint32_t) st->n) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < st->n; i++)
                if (msgpack_pack_object(out, *st->values[i]) < 0)
                        return -ENOMEM;
        return dur_pack(out, "s", "input") < 0 || msgpack_pack_object(out, *in) < 0 ? -ENOMEM : 0;
}

static int collect_count(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        return dur_pack(out, "U", (uint64_t) ((Collect *) dur_wf_state(wf, sizeof(Collect)))->n);
}

static int quick_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return msgpack_pack_object(out, *in) < 0 ? -ENOMEM : 0;
}

static int fail_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return dur_fail(wf, "Boom", true, "failed on purpose");
}

static int counter_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        Collect *st = dur_wf_state(wf, sizeof(*st));
        uint64_t n = 0, max = 0;
        bool gate = false;
        int r;

        r = dur_unpack(in, "{s:U, s:U, s?:b}", "n", &n, "max", &max, "gate", &gate);
        if (r < 0)
                return dur_fail(wf, "BadInput", true, "bad input");
        if (gate) {
                r = dur_wait_condition(wf, is_go, st, 0);
                if (r < 0)
                        return r;
        }
        if (n < max)
                return dur_continue_as_new(
                        wf, dur_args("{s:U, s:U, s:b}", "n", n + 1, "max", max, "gate", gate),
                        NULL);
        return dur_pack(out, "{s:U, s:s}", "n", n, "run_id", dur_wf_run_id(wf));
}

static int chatty_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        uint64_t steps = 0;
        int r;

        r = dur_unpack(in, "{s:U}", "steps", &steps);
        if (r < 0)
                return dur_fail(wf, "BadInput", true, "bad input");
        for (uint64_t i = 0; i < steps; i++) {
                r = dur_sleep(wf, DUR_MSEC);
                if (r < 0)
                        return r;
        }
        return dur_pack(out, "{s:U}", "steps", steps);
}

static dur_parent_close_policy policy_of(const char *s) {
        if (!s)
                return DUR_PARENT_CLOSE_DEFAULT;
        if (strcmp(s, "Abandon") == 0)
                return DUR_PARENT_CLOSE_ABANDON;
        if (strcmp(s, "RequestCancel") == 0)
                return DUR_PARENT_CLOSE_REQUEST_CANCEL;
        return DUR_PARENT_CLOSE_TERMINATE;
}

static int parent_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        const msgpack_object *child_input = NULL, *result;
        const char *id = NULL, *type = NULL, *policy = NULL, *run_id;
        bool wait = false, cancel = false;
        uint64_t run_timeout_ms = 0;
        dur_child_opts opts;
        dur_future *f;
        int r;

        r = dur_unpack(in, "{s:s, s:s, s?:o, s?:s, s?:b, s?:b, s?:U}", "child_id", &id,
                       "child_type", &type, "child_input", &child_input, "policy", &policy, "await",
                       &wait, "cancel_child", &cancel, "child_run_timeout_ms", &run_timeout_ms);
        if (r < 0)
                return dur_fail(wf, "BadInput", true, "bad input");
        opts = (dur_child_opts){ .workflow_id = id,
                                 .parent_close_policy = policy_of(policy),
                                 .run_timeout = run_timeout_ms * DUR_MSEC };
        f = dur_start_child(wf, type, child_input ? dur_buf_from_object(child_input) : NULL, &opts);
        if (!f)
                return -errno;
        if (cancel) {
                r = dur_child_started(wf, f, NULL);
                if (r < 0)
                        return r;
                r = dur_future_cancel(wf, f);
                if (r < 0)
                        return r;
                r = dur_await(wf, f);
                if (r != DUR_CANCELED)
                        return dur_fail(wf, "NotCanceled", true, "child ended with %d", r);
                return dur_pack(out, "{s:s}", "child", "canceled");
        }
        if (wait) {
                r = dur_await(wf, f);
                if (r < 0)
                        return r;
                result = dur_future_result(f);
                if (msgpack_pack_map(out, 1) < 0 || dur_pack(out, "s", "child") < 0)
                        return -ENOMEM;
                return msgpack_pack_object(out, *result) < 0 ? -ENOMEM : 0;
        }
        r = dur_child_started(wf, f, &run_id);
        if (r < 0)
                return r;
        return dur_pack(out, "{s:s}", "child_run_id", run_id);
}

static int fanout_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        const char *queue = NULL;
        dur_future **fs;
        uint64_t n = 0, started = 0, failed = 0;
        char id[128];
        int r;

        r = dur_unpack(in, "{s:U, s:s}", "n", &n, "queue", &queue);
        if (r < 0 || n == 0 || n > 100000)
                return dur_fail(wf, "BadInput", true, "bad input");
        /* In the run's state, not malloc()ed: a run evicted while it waits is freed with it. */
        fs = dur_wf_state(wf, n * sizeof(*fs));
        if (!fs)
                return -ENOMEM;
        for (uint64_t i = 0; i < n; i++) {
                dur_child_opts o = { .workflow_id = id, .task_queue = queue };

                snprintf(id, sizeof(id), "%s-%llu", dur_wf_id(wf), (unsigned long long) i);
                fs[i] = dur_start_child(wf, "Quick", NULL, &o);
                if (!fs[i])
                        return -errno;
        }
        for (uint64_t i = 0; i < n; i++) {
                r = dur_child_started(wf, fs[i], NULL);
                if (r == 0)
                        started++;
                else if (r == DUR_FAILED)
                        failed++;
                else
                        return r;
        }
        return dur_pack(out, "{s:U, s:U, s:s?}", "started", started, "failed", failed,
                        "failed_type",
                        failed ? dur_failure_type(dur_future_failure(fs[n - 1])) : NULL);
}

static int flaky_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        uint64_t succeed_at = 0;

        if (dur_unpack(in, "{s:U}", "succeed_at", &succeed_at) < 0)
                return dur_fail(wf, "BadInput", true, "bad input");
        if (dur_wf_attempt(wf) < succeed_at)
                return dur_fail(wf, "Flaky", false, "attempt %u failed", dur_wf_attempt(wf));
        return dur_pack(out, "{s:u}", "attempt", dur_wf_attempt(wf));
}

static const dur_workflow_def workflows[] = {
        { .name = "Flaky", .run = flaky_run },
        { .name = "Fanout", .run = fanout_run },
        { .name = "Parent", .run = parent_run },
        {
                .name = "Collect",
                .run = collect_run,
                .signals = DUR_SIGNALS({ "add", on_add }, { "done", on_done }),
                .queries = DUR_QUERIES({ "count", collect_count }),
        },
        { .name = "Quick", .run = quick_run },
        { .name = "Fail", .run = fail_run },
        { .name = "Counter", .run = counter_run, .signals = DUR_SIGNALS({ "go", on_go }) },
        { .name = "Chatty", .run = chatty_run },
};

static void log_to_stderr(int level, const char *message, void *userdata) {
        if (level <= LOG_INFO)
                fprintf(stderr, "core-worker: libdurable: %s\n", message);
}

static void on_stop_signal(int sig) {
        dur_worker_stop(worker); /* async-signal-safe */
}

int main(int argc, char *argv[]) {
        dur_worker_opts opts = { .task_queue = argc > 1 ? argv[1] : "core" };
        struct sigaction sa = { .sa_handler = on_stop_signal };
        int r;

        dur_set_log_func(log_to_stderr, NULL);
        r = dur_worker_new(&worker, &opts);
        for (size_t i = 0; r >= 0 && i < sizeof(workflows) / sizeof(workflows[0]); i++)
                r = dur_worker_register_workflow(worker, &workflows[i]);
        sigemptyset(&sa.sa_mask);
        if (r >= 0 && (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0))
                r = -errno;
        if (r >= 0)
                r = dur_worker_run(worker);
        if (r < 0)
                fprintf(stderr, "core-worker: %s\n", strerror(-r));
        worker = dur_worker_free(worker);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
