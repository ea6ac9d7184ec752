/* determinism-worker: the worker of test-determinism.c (cancellation types, detached scopes,
 * side effects, patches, the stack trace), in $DETERMINISM_WORKER_BIN. It polls the task queue
 * "determinism" on $DURABLED_SOCKET and exits 0 on SIGTERM after a graceful stop.
 * $TEST_PATCH ("old", the default, "new" or "deprecated") chooses the version of Patched.
 *
 * Workflows
 *   CancelTypes  {"type": "default" | "try" | "wait" | "abandon" | "bogus", "started_fifo",
 *                "no_heartbeat"?}: awaits the activity "gate" with that cancellation type
 *                ("bogus": a value outside the enum, which fails the run with type BadOption;
 *                no_heartbeat: without a heartbeat timeout, for a process activity); when
 *                cancelled, runs "echo" {"cleanup": true} and ends Canceled.
 *   Detached     {"started_fifo", "release"}: in a dur_detached() scope runs "gate", then "echo"
 *                {"after_gate": true}; then sleeps an hour (ends Canceled when cancelled).
 *   SideEffect   {"log"}: a side effect that appends "called <pid>" to the file "log" and returns
 *                {"pid": <pid>}; then waits for signal "go"; returns {"value": <side effect>}.
 *   Mutable      {"file"}: for each signal "tick", reads the mutable side effect "cfg" (the
 *                first line of "file"); returns the values read once signal "done" came.
 *                Query "count": how many ticks it handled.
 *   Patched      runs "old_step" or "new_step" (as $TEST_PATCH and the patch "v2" say), waits
 *                for signal "go", asks again; returns {"first": "old"|"new", "second": ...}.
 *   Stack        starts a coroutine that sleeps 60 s and runs "gate" {"started_fifo"}; signal
 *                "wait" blocks in a condition that never holds. Ends Canceled when cancelled.
 *
 * Activities
 *   gate         {"started_fifo"?, "release"?}: says "started" on the FIFO, then heartbeats every
 *                20 ms (throttled by libdurable) until the file "release" exists (returns
 *                {"released": true}) or a heartbeat reports a cancel request (DUR_CANCELED).
 *   echo, old_step, new_step   return their input. */

#include <durable/durable.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define MAX_TICKS 16

static dur_worker *worker;

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* Writes @line to the FIFO @path if a reader has it open; never blocks. */
static void fifo_say(const char *path, const char *line) {
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

        if (fd < 0)
                return;
        (void) !write(fd, line, strlen(line));
        close(fd);
}

/* Heartbeats are throttled to 0.8 x this: a cancel request reaches "gate" within 8 s, and a
 * loaded machine has 2 s of slack before the heartbeat timeout. */
static const dur_activity_opts gate_opts = {
        .start_to_close = 120 * DUR_SEC,
        .heartbeat = 10 * DUR_SEC,
        .retry = { .maximum_attempts = 1 },
};
static const dur_activity_opts quick = { .start_to_close = 30 * DUR_SEC };

/* ---- activities ------------------------------------------------------------------------------ */

static int act_echo(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        return msgpack_pack_object(out, *in) < 0 ? -ENOMEM : 0;
}

static int act_gate(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *fifo = NULL, *release = NULL;
        struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };
        int r;

        (void) dur_unpack(in, "{s?s, s?s}", "started_fifo", &fifo, "release", &release);
        if (fifo)
                fifo_say(fifo, "started\n");
        for (;;) {
                if (release && access(release, F_OK) == 0)
                        return dur_pack(out, "{s:b}", "released", true);
                r = dur_actx_heartbeat(ctx, NULL);
                if (r < 0)
                        return r; /* DUR_CANCELED: acknowledged */
                (void) nanosleep(&ts, NULL);
        }
}

static const dur_activity_def activities[] = {
        { .name = "echo", .fn = act_echo },
        { .name = "old_step", .fn = act_echo },
        { .name = "new_step", .fn = act_echo },
        { .name = "gate", .fn = act_gate },
};

/* ---- CancelTypes ----------------------------------------------------------------------------- */

static int cancel_types_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        static const struct {
                const char *name;
                dur_activity_cancellation_type type;
        } types[] = {
                { "default", DUR_ACTIVITY_CANCEL_DEFAULT },
                { "try", DUR_ACTIVITY_CANCEL_TRY_CANCEL },
                { "wait", DUR_ACTIVITY_CANCEL_WAIT_CANCELLATION_COMPLETED },
                { "abandon", DUR_ACTIVITY_CANCEL_ABANDON },
                { "bogus", (dur_activity_cancellation_type) 7 },
        };
        dur_activity_opts opts = gate_opts;
        const char *type = "default", *fifo = NULL;
        bool no_heartbeat = false;
        dur_future *f;
        int r;

        (void) dur_unpack(in, "{s?s, s?s, s?b}", "type", &type, "started_fifo", &fifo,
                          "no_heartbeat", &no_heartbeat);
        if (no_heartbeat)
                opts.heartbeat = 0;
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                if (streq(types[i].name, type))
                        opts.cancellation_type = types[i].type;
        f = dur_start_activity(wf, "gate", dur_args("{s:s?}", "started_fifo", fifo), &opts);
        if (!f)
                return dur_fail(wf, "BadOption", true, "dur_start_activity: %s", strerror(errno));
        r = dur_await(wf, f);
        if (r != DUR_CANCELED)
                return r < 0 ? r : dur_pack(out, "{s:b}", "canceled", false);
        DUR_TRY(dur_execute_activity(wf, "echo", dur_args("{s:b}", "cleanup", true), &quick, NULL));
        return DUR_CANCELED;
}

/* ---- Detached -------------------------------------------------------------------------------- */

typedef struct Compensation {
        const char *fifo, *release;
        const msgpack_object *gate;
} Compensation;

static int compensate(dur_wf *wf, void *arg) {
        Compensation *c = arg;

        DUR_TRY(dur_execute_activity(
                wf, "gate", dur_args("{s:s, s:s}", "started_fifo", c->fifo, "release", c->release),
                &gate_opts, &c->gate));
        return dur_execute_activity(wf, "echo", dur_args("{s:b}", "after_gate", true), &quick,
                                    NULL);
}

static int detached_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        Compensation *c = dur_wf_state(wf, sizeof(*c));

        DUR_TRY(dur_unpack(in, "{s:s, s:s}", "started_fifo", &c->fifo, "release", &c->release));
        DUR_TRY(dur_detached(wf, compensate, c));
        DUR_TRY(dur_sleep(wf, DUR_HOUR));
        return dur_pack(out, "{s:b}", "canceled", false);
}

/* ---- SideEffect ------------------------------------------------------------------------------ */

static bool go_signalled(dur_wf *wf, void *arg) {
        return *(bool *) dur_wf_state(wf, sizeof(bool));
}

static int on_go(dur_wf *wf, const msgpack_object *args) {
        *(bool *) dur_wf_state(wf, sizeof(bool)) = true;
        return 0;
}

/* Not deterministic on purpose: a replay that called it again would be seen. */
static int log_pid(dur_wf *wf, void *arg, msgpack_packer *out) {
        FILE *f = fopen(arg, "ae");

        if (!f)
                return -errno;
        fprintf(f, "called %d\n", (int) getpid());
        if (fclose(f) != 0)
                return -EIO;
        return dur_pack(out, "{s:i}", "pid", (int) getpid());
}

static int side_effect_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        const msgpack_object *v;
        const char *log = NULL;
        int r;

        (void) dur_wf_state(wf, sizeof(bool));
        DUR_TRY(dur_unpack(in, "{s:s}", "log", &log));
        DUR_TRY(dur_side_effect(wf, log_pid, (void *) log, &v));
        r = dur_wait_condition(wf, go_signalled, NULL, 0);
        if (r < 0)
                return r;
        return dur_pack(out, "{s:o}", "value", v);
}

/* ---- Mutable --------------------------------------------------------------------------------- */

typedef struct Ticks {
        unsigned ticks, handled;
        bool done;
        const msgpack_object *values[MAX_TICKS];
} Ticks;

static int on_tick(dur_wf *wf, const msgpack_object *args) {
        ((Ticks *) dur_wf_state(wf, sizeof(Ticks)))->ticks++;
        return 0;
}

static int on_done(dur_wf *wf, const msgpack_object *args) {
        ((Ticks *) dur_wf_state(wf, sizeof(Ticks)))->done = true;
        return 0;
}

static bool tick_or_done(dur_wf *wf, void *arg) {
        Ticks *t = arg;

        return t->done || t->handled < t->ticks;
}

static int read_first_line(dur_wf *wf, void *arg, msgpack_packer *out) {
        char line[128] = "";
        FILE *f = fopen(arg, "re");

        if (!f)
                return -errno;
        if (!fgets(line, sizeof(line), f))
                line[0] = 0;
        fclose(f);
        line[strcspn(line, "\n")] = 0;
        return dur_pack(out, "s", line);
}

static int mutable_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        Ticks *t = dur_wf_state(wf, sizeof(*t));
        const char *file = NULL;
        int r;

        DUR_TRY(dur_unpack(in, "{s:s}", "file", &file));
        for (;;) {
                r = dur_wait_condition(wf, tick_or_done, t, 0);
                if (r < 0)
                        return r;
                if (t->handled >= t->ticks || t->handled >= MAX_TICKS)
                        break;
                DUR_TRY(dur_mutable_side_effect(wf, "cfg", read_first_line, (void *) file,
                                                &t->values[t->handled]));
                t->handled++;
        }
        if (msgpack_pack_array(out, t->handled) < 0)
                return -ENOMEM;
        for (unsigned i = 0; i < t->handled; i++)
                if (msgpack_pack_object(out, *t->values[i]) < 0)
                        return -ENOMEM;
        return 0;
}

static int mutable_count(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        return dur_pack(out, "u", ((Ticks *) dur_wf_state(wf, sizeof(Ticks)))->handled);
}

/* ---- Patched --------------------------------------------------------------------------------- */

/* The three versions of the code, as a deployment would have them one after the other. */
static int patched_branch(dur_wf *wf) {
        const char *v = getenv("TEST_PATCH");

        if (!v || streq(v, "old"))
                return 0;
        if (streq(v, "new"))
                return dur_patched(wf, "v2");
        DUR_TRY(dur_deprecate_patch(wf, "v2"));
        return 1;
}

static int patched_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        int first, second, r;

        (void) dur_wf_state(wf, sizeof(bool));
        first = patched_branch(wf);
        DUR_TRY(first);
        DUR_TRY(dur_execute_activity(wf, first ? "new_step" : "old_step", NULL, &quick, NULL));
        r = dur_wait_condition(wf, go_signalled, NULL, 0);
        if (r < 0)
                return r;
        second = patched_branch(wf);
        DUR_TRY(second);
        return dur_pack(out, "{s:s, s:s}", "first", first ? "new" : "old", "second",
                        second ? "new" : "old");
}

/* ---- Stack ----------------------------------------------------------------------------------- */

static bool never(dur_wf *wf, void *arg) {
        return false;
}

static int stack_sleeper(dur_wf *wf, void *arg) {
        return dur_sleep(wf, 60 * DUR_SEC);
}

static int on_wait(dur_wf *wf, const msgpack_object *args) {
        return dur_wait_condition(wf, never, NULL, 0);
}

static int stack_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        const char *fifo = NULL;

        (void) dur_unpack(in, "{s?s}", "started_fifo", &fifo);
        DUR_TRY(dur_go(wf, stack_sleeper, NULL));
        DUR_TRY(dur_execute_activity(wf, "gate", dur_args("{s:s?}", "started_fifo", fifo),
                                     &gate_opts, NULL));
        return dur_pack(out, "{s:b}", "canceled", false);
}

static const dur_workflow_def workflows[] = {
        { .name = "CancelTypes", .run = cancel_types_run },
        { .name = "Detached", .run = detached_run },
        { .name = "SideEffect", .run = side_effect_run, .signals = DUR_SIGNALS({ "go", on_go }) },
        {
                .name = "Mutable",
                .run = mutable_run,
                .signals = DUR_SIGNALS({ "tick", on_tick }, { "done", on_done }),
                .queries = DUR_QUERIES({ "count", mutable_count }),
        },
        { .name = "Patched", .run = patched_run, .signals = DUR_SIGNALS({ "go", on_go }) },
        { .name = "Stack", .run = stack_run, .signals = DUR_SIGNALS({ "wait", on_wait }) },
};

/* ---- main ------------------------------------------------------------------------------------ */

static void log_to_stderr(int level, const char *message, void *userdata) {
        if (level <= LOG_INFO)
                fprintf(stderr, "determinism-worker[%d]: libdurable: %s\n", (int) getpid(),
                        message);
}

static void on_stop_signal(int sig) {
        dur_worker_stop(worker); /* async-signal-safe */
}

int main(int argc, char *argv[]) {
        dur_worker_opts opts = { .task_queue = "determinism" };
        struct sigaction sa = { .sa_handler = on_stop_signal };
        int r;

        dur_set_log_func(log_to_stderr, NULL);
        r = dur_worker_new(&worker, &opts);
        for (size_t i = 0; r >= 0 && i < sizeof(workflows) / sizeof(workflows[0]); i++)
                r = dur_worker_register_workflow(worker, &workflows[i]);
        for (size_t i = 0; r >= 0 && i < sizeof(activities) / sizeof(activities[0]); i++)
                r = dur_worker_register_activity(worker, &activities[i]);
        sigemptyset(&sa.sa_mask);
        if (r >= 0 && (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0))
                r = -errno;
        if (r >= 0)
                r = dur_worker_run(worker);
        if (r < 0)
                fprintf(stderr, "determinism-worker: %s\n", strerror(-r));
        worker = dur_worker_free(worker);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
