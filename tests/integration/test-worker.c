/* test-worker: the worker the integration tests drive (tests/integration/test-*.c find it as
 * $TEST_WORKER_BIN). It polls --task-queue (default "test") on --socket (default
 * $DURABLED_SOCKET) and exits 0 on SIGTERM/SIGINT after a graceful stop.
 *
 * Workflows
 *   ActivityWorkflow  {"activity": TYPE, "input"?: ANY, "task_queue"?: Q, "start_to_close_ms"?,
 *                     "schedule_to_close_ms"?, "schedule_to_start_ms"?, "heartbeat_ms"?,
 *                     "max_attempts"?, "initial_interval_ms"?, "backoff"?, "non_retryable"?: [TYPE]}
 *                     runs that one activity and returns {"result": R}; a failed activity fails
 *                     the run with the activity's failure.
 *   SignalWorkflow    collects the arguments of signals "add" until signal "done", returns
 *                     {"signals": [...]} in arrival order; query "count".
 *   SleepWorkflow     {"ms": N}: dur_sleep(), returns {"slept_ms", "now_before", "now_after"}.
 *   CancelWorkflow    {"ms"?, "started_fifo"?}: runs a heartbeating "sleep" activity (which says
 *                     "started 1" on the FIFO); when cancelled, runs "echo" {"cleanup": true}
 *                     and ends Canceled.
 *   StallWorkflow     stops in the middle of its first workflow task (after a line to the FIFO
 *                     "stall_fifo"), to be SIGKILLed there; with $TEST_NO_STALL it completes
 *   UpdateWorkflow    keeps a total that updates change, until signal "done"; returns
 *                     {"total": T, "updates": N}; query "total". Updates:
 *                       add {"n": N}       adds N, returns {"total": T}; its validator rejects a
 *                                          negative or missing N (type Negative), nothing else
 *                       slow_add {"n", "ms"} sleeps ms (a durable timer) first, then adds
 *                       activity {"n"}     adds what activity "echo" {"n": N} returns
 *                       fail               fails the update (type UpdateBroke); the run goes on
 *                       forever            waits for signal "done" and returns {"total": T}
 *                       sleepy             its validator tries to sleep: always rejected
 *   NonDetWorkflow    variant $TEST_NONDET_VARIANT ("a" by default): a = activity "echo", then a
 *                     line to the FIFO "ready_fifo" of the input (when not replaying), then wait
 *                     for signal "go"; b = a timer first. Query "state".
 *
 * Activities
 *   async         {"started_fifo"}: says "token <its task token>" on the FIFO and returns
 *                 DUR_ASYNC: the test completes it from outside.
 *   echo          returns its input map plus "attempt".
 *   flaky         {"fail_times": N, "record_times"?: bool}: fails (type Flaky, retryable) while
 *                 attempt <= N, then returns {"attempt": n}; with record_times each attempt
 *                 heartbeats the CLOCK_REALTIME start times of all attempts so far (usec) and
 *                 the result carries them as "times".
 *   fail          {"type", "message", "non_retryable"}: fails with exactly that.
 *   sleep         {"ms", "heartbeat_every_ms"?, "stop_heartbeat_after"?, "resume"?,
 *                 "started_fifo"?}: says "started <attempt>" on the FIFO, then sleeps;
 *                 heartbeats {"progress": i} every heartbeat_every_ms (at most
 *                 stop_heartbeat_after times) and returns DUR_CANCELED when asked to cancel;
 *                 returns {"slept_ms", "attempt"} plus "previous": the earlier attempt's
 *                 heartbeat details in resume mode.
 *   block         {"started_fifo"?, "ms", "block_attempts"?}: writes "started <attempt>\n" to
 *                 the FIFO (if a reader has it open), then sleeps ms while attempt <=
 *                 block_attempts (default: every attempt); returns {"attempt": n}.
 *   hb_then_fail  heartbeats {"progress": attempt}; attempt 1 then fails (type HbThenFail,
 *                 retryable); later attempts return {"attempt": n, "details": <details seen>}.
 */

#include <durable/durable.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIGNALS 256
#define MAX_NON_RETRYABLE 8
#define MAX_TIMES 32

static dur_worker *worker; /* for the signal handler */
static const char *arg_name = "test-worker";

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        fprintf(stderr, "%s[%d]: ", arg_name, (int) getpid());
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static uint64_t realtime_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * DUR_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void sleep_ms(uint64_t ms) {
        struct timespec ts = { .tv_sec = (time_t) (ms / 1000),
                               .tv_nsec = (long) (ms % 1000) * 1000000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Writes @line to the FIFO @path if a reader has it open; never blocks. */
static void fifo_say(const char *path, const char *line) {
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

        if (fd < 0) {
                say("cannot open FIFO %s: %s", path, strerror(errno));
                return;
        }
        if (write(fd, line, strlen(line)) < 0)
                say("cannot write to FIFO %s: %s", path, strerror(errno));
        close(fd);
}

static int pack_key(msgpack_packer *pk, const char *key) {
        size_t n = strlen(key);

        return msgpack_pack_str(pk, n) < 0 || msgpack_pack_str_body(pk, key, n) < 0 ? -ENOMEM : 0;
}

static int pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t v) {
        return pack_key(pk, key) < 0 || msgpack_pack_uint64(pk, v) < 0 ? -ENOMEM : 0;
}

/* Packs the map @in (nil or not a map: nothing) with one more key "attempt". */
static int pack_with_attempt(msgpack_packer *out, const msgpack_object *in, unsigned attempt) {
        uint32_t n = in && in->type == MSGPACK_OBJECT_MAP ? in->via.map.size : 0;

        if (msgpack_pack_map(out, n + 1) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++)
                if (msgpack_pack_object(out, in->via.map.ptr[i].key) < 0 ||
                    msgpack_pack_object(out, in->via.map.ptr[i].val) < 0)
                        return -ENOMEM;
        return pack_kv_uint(out, "attempt", attempt);
}

/* ---- activities ------------------------------------------------------------------------------ */

static int act_echo(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        return pack_with_attempt(out, in, dur_actx_attempt(ctx));
}

/* The start times of the earlier attempts, from the heartbeat details {"times": [...]}. */
static size_t previous_times(dur_actx *ctx, uint64_t times[static MAX_TIMES]) {
        const msgpack_object *d = dur_actx_heartbeat_details(ctx), *list = NULL;
        size_t n = 0;

        if (!d || dur_unpack(d, "{s:o}", "times", &list) < 0 || list->type != MSGPACK_OBJECT_ARRAY)
                return 0;
        for (uint32_t i = 0; i < list->via.array.size && n < MAX_TIMES - 1; i++)
                if (list->via.array.ptr[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                        times[n++] = list->via.array.ptr[i].via.u64;
        return n;
}

static int pack_times(msgpack_packer *pk, const uint64_t *times, size_t n) {
        if (msgpack_pack_array(pk, (uint32_t) n) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (msgpack_pack_uint64(pk, times[i]) < 0)
                        return -ENOMEM;
        return 0;
}

static int act_flaky(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        unsigned attempt = dur_actx_attempt(ctx), fail_times = 0;
        bool record = false;
        uint64_t times[MAX_TIMES];
        size_t n = 0;
        int r;

        r = dur_unpack(in, "{s?u, s?b}", "fail_times", &fail_times, "record_times", &record);
        if (r < 0)
                return dur_actx_fail(ctx, "BadInput", true, "flaky: bad input");
        if (record) {
                msgpack_sbuffer sb;
                msgpack_packer pk;
                dur_buf *details;

                n = previous_times(ctx, times);
                times[n++] = realtime_usec();
                msgpack_sbuffer_init(&sb);
                msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                details = malloc(sizeof(*details));
                if (!details || msgpack_pack_map(&pk, 1) < 0 || pack_key(&pk, "times") < 0 ||
                    pack_times(&pk, times, n) < 0) {
                        free(details);
                        msgpack_sbuffer_destroy(&sb);
                        return -ENOMEM;
                }
                details->size = sb.size;
                details->data = msgpack_sbuffer_release(&sb); /* dur_buf_free() free()s it */
                r = dur_actx_heartbeat(ctx, details);
                if (r < 0)
                        return r;
        }
        if (attempt <= fail_times)
                return dur_actx_fail(ctx, "Flaky", false, "flaky: attempt %u of %u failing ones",
                                     attempt, fail_times);
        if (!record)
                return dur_pack(out, "{s:u}", "attempt", attempt);
        if (msgpack_pack_map(out, 2) < 0 || pack_kv_uint(out, "attempt", attempt) < 0 ||
            pack_key(out, "times") < 0 || pack_times(out, times, n) < 0)
                return -ENOMEM;
        return 0;
}

static int act_fail(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *type = "Failure", *message = "failed on purpose";
        bool non_retryable = false;

        if (dur_unpack(in, "{s?s, s?s, s?b}", "type", &type, "message", &message, "non_retryable",
                       &non_retryable) < 0)
                return dur_actx_fail(ctx, "BadInput", true, "fail: bad input");
        return dur_actx_fail(ctx, type, non_retryable, "%s", message);
}

static int act_sleep(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        uint64_t ms = 0, every = 0, stop_after = UINT64_MAX, slept = 0, beats = 0;
        const msgpack_object *previous = dur_actx_heartbeat_details(ctx);
        const char *fifo = NULL;
        bool resume = false;
        char line[64];
        int r;

        r = dur_unpack(in, "{s:U, s?U, s?U, s?b, s?s}", "ms", &ms, "heartbeat_every_ms", &every,
                       "stop_heartbeat_after", &stop_after, "resume", &resume, "started_fifo",
                       &fifo);
        if (r < 0)
                return dur_actx_fail(ctx, "BadInput", true, "sleep: bad input");
        if (fifo) {
                (void) snprintf(line, sizeof(line), "started %u\n", dur_actx_attempt(ctx));
                fifo_say(fifo, line);
        }
        while (slept < ms) {
                uint64_t slice = every > 0 ? every : ms;

                if (slice > ms - slept)
                        slice = ms - slept;
                sleep_ms(slice);
                slept += slice;
                if (every > 0 && beats < stop_after) {
                        beats++;
                        r = dur_actx_heartbeat(ctx, dur_args("{s:U}", "progress", beats));
                        if (r == DUR_CANCELED)
                                return DUR_CANCELED;
                        if (r < 0)
                                return r; /* the attempt is over (timed out) */
                }
        }
        if (resume)
                return dur_pack(out, "{s:U, s:u, s:o?}", "slept_ms", ms, "attempt",
                                dur_actx_attempt(ctx), "previous", previous);
        return dur_pack(out, "{s:U, s:u}", "slept_ms", ms, "attempt", dur_actx_attempt(ctx));
}

static int act_block(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *fifo = NULL;
        uint64_t ms = 0;
        unsigned attempt = dur_actx_attempt(ctx), block_attempts = UINT32_MAX;
        char line[64];

        if (dur_unpack(in, "{s?s, s?U, s?u}", "started_fifo", &fifo, "ms", &ms, "block_attempts",
                       &block_attempts) < 0)
                return dur_actx_fail(ctx, "BadInput", true, "block: bad input");
        if (fifo) {
                (void) snprintf(line, sizeof(line), "started %u\n", attempt);
                fifo_say(fifo, line);
        }
        if (attempt <= block_attempts)
                sleep_ms(ms);
        return dur_pack(out, "{s:u}", "attempt", attempt);
}

/* Completes later (DUR_ASYNC): says "token <task token>" on the FIFO `started_fifo` and returns;
 * the test completes, fails or heartbeats the attempt from outside. */
static int act_async(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *fifo = NULL;
        const void *token;
        size_t size;
        char line[256];

        if (dur_unpack(in, "{s:s}", "started_fifo", &fifo) < 0)
                return dur_actx_fail(ctx, "BadInput", true, "async: bad input");
        token = dur_actx_task_token(ctx, &size);
        if (!token || size >= 200)
                return dur_actx_fail(ctx, "NoToken", true, "async: no task token");
        (void) snprintf(line, sizeof(line), "token %.*s\n", (int) size, (const char *) token);
        fifo_say(fifo, line);
        return DUR_ASYNC;
}

/* Attempt 1: `count` heartbeats {"i": 1..count} in a row, a line "burst" to `started_fifo`, a
 * sleep of `sleep_ms`, then a retryable failure; later attempts return the details they saw.
 * libdurable throttles heartbeats: the daemon sees the first at once, the last only when the
 * attempt fails. */
static int act_hb_burst(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const msgpack_object *seen = dur_actx_heartbeat_details(ctx);
        const char *fifo = NULL;
        int count = 100, sleep_ms = 0, r;

        if (dur_actx_attempt(ctx) > 1)
                return dur_pack(out, "{s:o?}", "details", seen);
        (void) dur_unpack(in, "{s?i, s?i, s?s}", "count", &count, "sleep_ms", &sleep_ms,
                          "started_fifo", &fifo);
        for (int i = 1; i <= count; i++) {
                r = dur_actx_heartbeat(ctx, dur_args("{s:i}", "i", i));
                if (r < 0)
                        return r;
        }
        if (fifo)
                fifo_say(fifo, "burst\n");
        if (sleep_ms > 0)
                (void) usleep((useconds_t) sleep_ms * 1000);
        return dur_actx_fail(ctx, "Burst", false, "failing after %d heartbeats", count);
}

static int act_hb_then_fail(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const msgpack_object *seen = dur_actx_heartbeat_details(ctx);
        unsigned attempt = dur_actx_attempt(ctx);
        int r;

        if (attempt > 1)
                return dur_pack(out, "{s:u, s:o?}", "attempt", attempt, "details", seen);
        r = dur_actx_heartbeat(ctx, dur_args("{s:u}", "progress", attempt));
        if (r < 0)
                return r;
        return dur_actx_fail(ctx, "HbThenFail", false, "failing after a heartbeat");
}

static const dur_activity_def activities[] = {
        { "echo", act_echo },         { "flaky", act_flaky }, { "fail", act_fail },
        { "sleep", act_sleep },       { "block", act_block }, { "hb_then_fail", act_hb_then_fail },
        { "async", act_async },
        { "hb_burst", act_hb_burst },
};

/* ---- ActivityWorkflow ------------------------------------------------------------------------ */

typedef struct activity_wf {
        const char *non_retryable[MAX_NON_RETRYABLE + 1];
} activity_wf;

static int activity_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        activity_wf *st = dur_wf_state(wf, sizeof(*st));
        const char *type = NULL, *queue = NULL;
        const msgpack_object *input = NULL, *nr = NULL, *result = NULL;
        uint64_t st2c = 0, s2c = 0, s2s = 0, hb = 0, initial = 0;
        unsigned max_attempts = 0;
        double backoff = 0;
        dur_activity_opts opts;
        int r;

        r = dur_unpack(in, "{s:s, s?o, s?s, s?U, s?U, s?U, s?U, s?u, s?U, s?f, s?o}", "activity",
                       &type, "input", &input, "task_queue", &queue, "start_to_close_ms", &st2c,
                       "schedule_to_close_ms", &s2c, "schedule_to_start_ms", &s2s, "heartbeat_ms",
                       &hb, "max_attempts", &max_attempts, "initial_interval_ms", &initial,
                       "backoff", &backoff, "non_retryable", &nr);
        if (r < 0)
                return dur_fail(wf, "BadInput", true, "ActivityWorkflow: bad input (%s)",
                                strerror(-r));
        if (nr && nr->type == MSGPACK_OBJECT_ARRAY)
                for (uint32_t i = 0; i < nr->via.array.size && i < MAX_NON_RETRYABLE; i++)
                        if (dur_unpack(&nr->via.array.ptr[i], "s", &st->non_retryable[i]) < 0)
                                return dur_fail(wf, "BadInput", true,
                                                "non_retryable: strings only");
        opts = (dur_activity_opts){
                .task_queue = queue,
                .start_to_close = st2c * DUR_MSEC,
                .schedule_to_close = s2c * DUR_MSEC,
                .schedule_to_start = s2s * DUR_MSEC,
                .heartbeat = hb * DUR_MSEC,
                .retry = { .maximum_attempts = max_attempts,
                           .initial_interval = initial * DUR_MSEC,
                           .backoff_coefficient = backoff,
                           .non_retryable_error_types = nr ? st->non_retryable : NULL },
        };
        r = dur_execute_activity(wf, type, input ? dur_buf_from_object(input) : NULL, &opts,
                                 &result);
        if (r < 0)
                return r; /* DUR_FAILED: the run fails with dur_wf_failure(), the activity's */
        return dur_pack(out, "{s:o?}", "result", result);
}

/* ---- SignalWorkflow -------------------------------------------------------------------------- */

typedef struct signal_wf {
        const msgpack_object *values[MAX_SIGNALS];
        size_t n;
        bool done;
} signal_wf;

static const msgpack_object nil_object = { .type = MSGPACK_OBJECT_NIL };

static int signal_add(dur_wf *wf, const msgpack_object *args) {
        signal_wf *st = dur_wf_state(wf, sizeof(*st));

        if (st->n < MAX_SIGNALS)
                st->values[st->n++] = args ? args : &nil_object;
        return 0;
}

static int signal_done(dur_wf *wf, const msgpack_object *args) {
        signal_wf *st = dur_wf_state(wf, sizeof(*st));

        st->done = true;
        return 0;
}

static bool signals_done(dur_wf *wf, void *arg) {
        return ((signal_wf *) arg)->done;
}

static int signal_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        signal_wf *st = dur_wf_state(wf, sizeof(*st));
        int r;

        r = dur_wait_condition(wf, signals_done, st, 0);
        if (r < 0)
                return r;
        if (msgpack_pack_map(out, 1) < 0 || pack_key(out, "signals") < 0 ||
            msgpack_pack_array(out, (uint32_t) st->n) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < st->n; i++)
                if (msgpack_pack_object(out, *st->values[i]) < 0)
                        return -ENOMEM;
        return 0;
}

static int signal_count(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        signal_wf *st = dur_wf_state(wf, sizeof(*st));

        return dur_pack(out, "U", (uint64_t) st->n);
}

/* ---- UpdateWorkflow -------------------------------------------------------------------------- */

typedef struct update_wf {
        int64_t total;
        uint64_t updates;
        bool done;
} update_wf;

static int update_done(dur_wf *wf, const msgpack_object *args) {
        update_wf *st = dur_wf_state(wf, sizeof(*st));

        st->done = true;
        return 0;
}

static bool updates_done(dur_wf *wf, void *arg) {
        return ((update_wf *) arg)->done;
}

static int update_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        update_wf *st = dur_wf_state(wf, sizeof(*st));
        int r;

        r = dur_wait_condition(wf, updates_done, st, 0);
        if (r < 0)
                return r;
        return dur_pack(out, "{s:I, s:U}", "total", st->total, "updates", st->updates);
}

static int update_total(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        update_wf *st = dur_wf_state(wf, sizeof(*st));

        return dur_pack(out, "I", st->total);
}

static int update_add_validate(dur_wf *wf, const msgpack_object *args) {
        int64_t n = -1;

        if (dur_unpack(args, "{s:I}", "n", &n) < 0 || n < 0)
                return dur_fail(wf, "Negative", true, "n must be a number >= 0");
        return 0;
}

static int update_add_n(dur_wf *wf, int64_t n, msgpack_packer *out) {
        update_wf *st = dur_wf_state(wf, sizeof(*st));

        st->total += n;
        st->updates++;
        return dur_pack(out, "{s:I}", "total", st->total);
}

static int update_add(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        int64_t n = 0;

        (void) dur_unpack(args, "{s:I}", "n", &n);
        return update_add_n(wf, n, out);
}

static int update_slow_add(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        uint64_t ms = 0;
        int64_t n = 0;
        int r;

        (void) dur_unpack(args, "{s:I, s?U}", "n", &n, "ms", &ms);
        r = dur_sleep(wf, ms * DUR_MSEC);
        if (r < 0)
                return r;
        return update_add_n(wf, n, out);
}

static int update_activity(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        static const dur_activity_opts opts = { .start_to_close = 30 * DUR_SEC };
        const msgpack_object *res = NULL;
        int64_t n = 0;
        int r;

        (void) dur_unpack(args, "{s:I}", "n", &n);
        r = dur_execute_activity(wf, "echo", dur_args("{s:I}", "n", n), &opts, &res);
        if (r < 0)
                return r;
        n = 0;
        if (dur_unpack(res, "{s:I}", "n", &n) < 0)
                return dur_fail(wf, "BadResult", true, "echo returned no n");
        return update_add_n(wf, n, out);
}

static int update_fail(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        return dur_fail(wf, "UpdateBroke", true, "this update always fails");
}

static int update_sleepy_validate(dur_wf *wf, const msgpack_object *args) {
        return dur_sleep(wf, DUR_SEC); /* a validator must not block: this fails */
}

static int update_forever(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        update_wf *st = dur_wf_state(wf, sizeof(*st));
        int r;

        r = dur_wait_condition(wf, updates_done, st, 0);
        if (r < 0)
                return r;
        return dur_pack(out, "{s:I}", "total", st->total);
}

/* ---- SleepWorkflow --------------------------------------------------------------------------- */

static int sleep_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        uint64_t ms = 0, before, after;
        int r;

        if (dur_unpack(in, "{s:U}", "ms", &ms) < 0)
                return dur_fail(wf, "BadInput", true, "SleepWorkflow: {\"ms\": N} expected");
        before = dur_now(wf);
        r = dur_sleep(wf, ms * DUR_MSEC);
        if (r < 0)
                return r;
        after = dur_now(wf);
        return dur_pack(out, "{s:U, s:U, s:U}", "slept_ms", ms, "now_before", before, "now_after",
                        after);
}

/* ---- CancelWorkflow -------------------------------------------------------------------------- */

static int cancel_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        static const dur_activity_opts long_opts = {
                .start_to_close = 60 * DUR_SEC,
                .heartbeat = 10 * DUR_SEC,
                .retry = { .maximum_attempts = 1 },
        };
        static const dur_activity_opts cleanup_opts = { .start_to_close = 10 * DUR_SEC };
        const char *fifo = NULL;
        uint64_t ms = 60000;
        int r;

        (void) dur_unpack(in, "{s?U, s?s}", "ms", &ms, "started_fifo", &fifo);
        r = dur_execute_activity(wf, "sleep",
                                 dur_args("{s:U, s:i, s:s?}", "ms", ms, "heartbeat_every_ms", 20,
                                          "started_fifo", fifo),
                                 &long_opts, NULL);
        if (r != DUR_CANCELED)
                return r < 0 ? r : dur_pack(out, "{s:b}", "canceled", false);
        r = dur_execute_activity(wf, "echo", dur_args("{s:b}", "cleanup", true), &cleanup_opts,
                                 NULL);
        if (r < 0)
                return r;
        return DUR_CANCELED;
}

/* ---- NonDetWorkflow -------------------------------------------------------------------------- */

typedef struct nondet_wf {
        const char *state;
        bool go;
} nondet_wf;

static bool nondet_go(dur_wf *wf, void *arg) {
        return ((nondet_wf *) arg)->go;
}

static int nondet_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        static const dur_activity_opts opts = { .start_to_close = 10 * DUR_SEC };
        nondet_wf *st = dur_wf_state(wf, sizeof(*st));
        const char *variant = getenv("TEST_NONDET_VARIANT"), *fifo = NULL;
        int r;

        if (!variant || !*variant)
                variant = "a";
        (void) dur_unpack(in, "{s?s}", "ready_fifo", &fifo);
        st->state = "started";
        if (streq(variant, "b"))
                r = dur_sleep(wf, 10 * DUR_MSEC);
        else
                r = dur_execute_activity(wf, "echo", dur_args("{s:s}", "variant", variant), &opts,
                                         NULL);
        if (r < 0)
                return r;
        st->state = "waiting";
        if (fifo && !dur_is_replaying(wf))
                fifo_say(fifo, "waiting\n");
        r = dur_wait_condition(wf, nondet_go, st, 0);
        if (r < 0)
                return r;
        st->state = "done";
        return dur_pack(out, "{s:s}", "variant", variant);
}

static int nondet_signal_go(dur_wf *wf, const msgpack_object *args) {
        nondet_wf *st = dur_wf_state(wf, sizeof(*st));

        st->go = true;
        return 0;
}

static int nondet_state(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        nondet_wf *st = dur_wf_state(wf, sizeof(*st));

        return dur_pack(out, "s", st->state ? st->state : "new");
}

/* ---- StallWorkflow --------------------------------------------------------------------------- */

/* Stalls inside its first workflow task (the worker thread stops right in the middle of the task,
 * after saying so on "stall_fifo"), unless $TEST_NO_STALL is set; then it completes. A test kills
 * the stalled worker with SIGKILL, mid-task, and lets a second worker finish the run. */
static int stall_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        const char *fifo = NULL;

        (void) dur_unpack(in, "{s?s}", "stall_fifo", &fifo);
        if (fifo && !getenv("TEST_NO_STALL")) {
                fifo_say(fifo, "stalled\n");
                for (;;)
                        pause();
        }
        return dur_pack(out, "{s:s}", "stall", "survived");
}

/* ---- UpsertWorkflow -------------------------------------------------------------------------- */

/* Upserts search attributes (SEMANTICS.md b.13): sets Stage and Tags, removes Temp, then
 * completes. */
static int upsert_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        static const char *const tags[] = { "blue", "green" };
        const dur_search_attr attrs[] = {
                { .name = "Stage", .type = DUR_SA_KEYWORD, .str = "shipped" },
                { .name = "Tags", .type = DUR_SA_KEYWORD_LIST, .list = tags, .list_len = 2 },
                { .name = "Temp", .type = DUR_SA_UNSET },
        };
        int r;

        r = dur_upsert_search_attributes(wf, attrs, sizeof(attrs) / sizeof(attrs[0]));
        if (r < 0)
                return r;
        r = dur_sleep(wf, DUR_MSEC);
        if (r < 0)
                return r;
        return dur_pack(out, "{s:b}", "upserted", true);
}

static const dur_workflow_def workflows[] = {
        { .name = "UpsertWorkflow", .run = upsert_run },
        { .name = "ActivityWorkflow", .run = activity_run },
        {
                .name = "SignalWorkflow",
                .run = signal_run,
                .signals = DUR_SIGNALS({ "add", signal_add }, { "done", signal_done }),
                .queries = DUR_QUERIES({ "count", signal_count }),
        },
        {
                .name = "UpdateWorkflow",
                .run = update_run,
                .signals = DUR_SIGNALS({ "done", update_done }),
                .queries = DUR_QUERIES({ "total", update_total }),
                .updates = DUR_UPDATES({ "add", update_add, update_add_validate },
                                       { "slow_add", update_slow_add, NULL },
                                       { "activity", update_activity, NULL },
                                       { "fail", update_fail, NULL },
                                       { "forever", update_forever, NULL },
                                       { "sleepy", update_add, update_sleepy_validate }),
        },
        { .name = "SleepWorkflow", .run = sleep_run },
        { .name = "CancelWorkflow", .run = cancel_run },
        { .name = "StallWorkflow", .run = stall_run },
        {
                .name = "NonDetWorkflow",
                .run = nondet_run,
                .signals = DUR_SIGNALS({ "go", nondet_signal_go }),
                .queries = DUR_QUERIES({ "state", nondet_state }),
        },
};

/* ---- main ------------------------------------------------------------------------------------ */

static void log_to_stderr(int level, const char *message, void *userdata) {
        if (level <= LOG_INFO)
                say("libdurable: %s", message);
}

static void on_stop_signal(int sig) {
        dur_worker_stop(worker); /* async-signal-safe */
}

static int set_stop_handlers(void (*handler)(int)) {
        struct sigaction sa = { .sa_handler = handler };

        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return -errno;
        return 0;
}

static int parse_argv(int argc, char *argv[], dur_worker_opts *opts) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "task-queue", required_argument, NULL, 'q' },
                { "max-cached", required_argument, NULL, 'c' },
                { "activity-threads", required_argument, NULL, 't' },
                { "name", required_argument, NULL, 'n' },
                { NULL, 0, NULL, 0 },
        };
        int c;

        while ((c = getopt_long(argc, argv, "s:q:c:t:n:", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        opts->socket_path = optarg;
                        break;
                case 'q':
                        opts->task_queue = optarg;
                        break;
                case 'c':
                        opts->max_cached_workflows = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 't':
                        opts->activity_threads = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'n':
                        arg_name = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                say("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        dur_worker_opts opts = { .task_queue = "test" };
        int r;

        if (parse_argv(argc, argv, &opts) < 0)
                return EXIT_FAILURE;
        dur_set_log_func(log_to_stderr, NULL);
        r = dur_worker_new(&worker, &opts);
        for (size_t i = 0; r >= 0 && i < sizeof(workflows) / sizeof(workflows[0]); i++)
                r = dur_worker_register_workflow(worker, &workflows[i]);
        for (size_t i = 0; r >= 0 && i < sizeof(activities) / sizeof(activities[0]); i++)
                r = dur_worker_register_activity(worker, &activities[i]);
        if (r >= 0)
                r = set_stop_handlers(on_stop_signal);
        if (r >= 0) {
                say("polling task queue '%s'", opts.task_queue);
                r = dur_worker_run(worker);
        }
        if (r < 0)
                say("worker failed: %s", strerror(-r));
        else
                say("stopped");
        (void) set_stop_handlers(SIG_DFL);
        worker = dur_worker_free(worker);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
