/* The workloads (see workloads.h) and the client loops that drive them.
 *
 * A client loop is a thread with its own dur_client (a dur_client is not thread-safe). The loops
 * of a phase share one counter: each takes the next iteration, runs it to the end (e.g. start a
 * workflow and wait for its result) and takes the next, so @clients iterations are in flight at
 * any time. Latencies go into a Samples slot per iteration. The first error stops the phase: a
 * benchmark that lost workflows has no figures worth printing, only the error. */

#include <durable/durable.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/daemon.h"
#include "bench/scale.h"
#include "bench/stats.h"
#include "bench/workloads.h"
#include "common/cleanup.h"

#define RESULT_TIMEOUT (120 * DUR_SEC) /* per workflow; the global --timeout bounds the rest */
#define BLOCKED_TIMEOUT_USEC (30 * 1000 * 1000)
#define SLEEP_USEC (2 * 1000 * 1000)
#define ID_MAX 160

DEFINE_CLEANUP(dur_buf, dur_buf_free);

/* ---- client loops ---------------------------------------------------------------------------- */

typedef struct Loops Loops;
/* One iteration; on failure it calls loops_fail() and returns its value. */
typedef int (*loop_fn)(Loops *l, dur_client *c, size_t i);

struct Loops {
        const Bench *bench;
        const char *workload; /* part of the workflow ids */
        size_t n;
        unsigned clients;
        loop_fn fn;
        const void *userdata;
        Samples *samples; /* where fn puts latencies; may be NULL */

        atomic_size_t next;
        atomic_size_t done;
        atomic_bool stop;
        pthread_mutex_t lock; /* protects error and errors */
        char error[BENCH_ERROR_MAX];
        size_t errors;
};

uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

size_t bench_count(const Bench *b, size_t base) {
        double n = (double) base * b->scale + 0.5;

        return n < 1 ? 1 : (size_t) n;
}

static void wf_id(const Loops *l, size_t i, char buf[static ID_MAX]) {
        snprintf(buf, ID_MAX, "%s-%s-%zu", l->bench->prefix, l->workload, i);
}

/* Records the first error (with the daemon's code and message when @c has one) and stops the
 * phase. Returns @r as a negative value. */
_printf_(4, 5) static int loops_fail(Loops *l, dur_client *c, int r, const char *fmt, ...) {
        const char *code = c ? dur_client_error_code(c) : NULL;
        const char *msg = c ? dur_client_error_message(c) : NULL;
        char what[BENCH_ERROR_MAX / 2];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        pthread_mutex_lock(&l->lock);
        if (l->errors++ == 0 && code && *code)
                snprintf(l->error, sizeof(l->error), "%s: %s (%s: %s)", what,
                         r == DUR_FAILED ? "failed" : strerror(-r), code, msg ? msg : "");
        else if (l->errors == 1)
                snprintf(l->error, sizeof(l->error), "%s: %s", what,
                         r == DUR_FAILED ? "failed" : strerror(-r));
        pthread_mutex_unlock(&l->lock);
        atomic_store(&l->stop, true);
        return r < 0 ? r : -EIO;
}

static bool loops_should_stop(Loops *l) {
        return atomic_load(&l->stop) || now_usec() >= l->bench->deadline_usec;
}

static void *loop_main(void *userdata) {
        Loops *l = userdata;
        dur_client *c = NULL;
        int r;

        r = dur_client_connect(&c, l->bench->socket_path);
        if (r < 0) {
                (void) loops_fail(l, NULL, r, "connecting to %s", l->bench->socket_path);
                return NULL;
        }
        while (!loops_should_stop(l)) {
                size_t i = atomic_fetch_add(&l->next, 1);

                if (i >= l->n)
                        break;
                if (l->fn(l, c, i) >= 0)
                        atomic_fetch_add(&l->done, 1);
        }
        dur_client_free(c);
        return NULL;
}

/* Runs the phase to its end: 0, or -errno when it stopped early (l->error says why). */
static int loops_run(Loops *l) {
        _cleanup_free_ pthread_t *threads = NULL;
        unsigned started = 0;
        int r = 0;

        threads = calloc(l->clients, sizeof(pthread_t));
        if (!threads)
                return -ENOMEM;
        for (; started < l->clients; started++) {
                r = -pthread_create(&threads[started], NULL, loop_main, l);
                if (r < 0) {
                        (void) loops_fail(l, NULL, r, "starting client loop %u", started);
                        break;
                }
        }
        for (unsigned i = 0; i < started; i++)
                (void) pthread_join(threads[i], NULL);
        if (l->errors > 0)
                return -EIO;
        if (atomic_load(&l->done) < l->n) {
                snprintf(l->error, sizeof(l->error), "%s: --timeout reached after %zu of %zu",
                         l->workload, atomic_load(&l->done), l->n);
                return -ETIMEDOUT;
        }
        return r;
}

static void loops_init(Loops *l, const Bench *b, const char *workload, size_t n,
                       unsigned clients) {
        *l = (Loops){ .bench = b, .workload = workload, .n = n, .clients = clients ? clients : 1 };
        pthread_mutex_init(&l->lock, NULL);
}

/* Runs @fn over the phase; copies the first error into @r. */
static int loops_phase(Loops *l, loop_fn fn, const void *userdata, Samples *samples,
                       Result *res) {
        int r;

        l->fn = fn;
        l->userdata = userdata;
        l->samples = samples;
        atomic_store(&l->next, 0);
        atomic_store(&l->done, 0);
        r = loops_run(l);
        res->errors = l->errors;
        if (r < 0 && !res->error[0])
                snprintf(res->error, sizeof(res->error), "%s", l->error);
        return r;
}

/* ---- measuring ------------------------------------------------------------------------------- */

typedef struct DaemonStats {
        bool ok;
        uint64_t requests, commits, wal_frames;
} DaemonStats;

typedef struct Meter {
        uint64_t start_usec;
        double daemon_cpu, self_cpu;
        DaemonStats stats;
} Meter;

/* The daemon's counters (GetStats); ok = false from a daemon without them. */
static DaemonStats daemon_stats(const Bench *b) {
        DaemonStats st = {};
        dur_client *c = NULL;
        dur_buf *req = dur_buf_from_json("{\"op\": \"GetStats\"}"), *answer = NULL;
        msgpack_unpacked u;

        msgpack_unpacked_init(&u);
        if (req && dur_client_connect(&c, b->socket_path) >= 0 &&
            dur_client_call(c, req, &answer) >= 0 &&
            msgpack_unpack_next(&u, answer->data, answer->size, NULL) == MSGPACK_UNPACK_SUCCESS &&
            dur_unpack(&u.data, "{s:U, s:U, s:U}", "requests", &st.requests, "commits",
                       &st.commits, "wal_frames", &st.wal_frames) >= 0)
                st.ok = true;
        msgpack_unpacked_destroy(&u);
        dur_buf_free(answer);
        dur_buf_free(req);
        dur_client_free(c);
        return st;
}

static double self_cpu_seconds(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
               (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

static double daemon_cpu(const Bench *b) {
        return b->daemon_pid > 0 ? daemon_cpu_seconds(b->daemon_pid) : -1;
}

static void meter_start(Meter *m, const Bench *b) {
        m->stats = daemon_stats(b);
        m->daemon_cpu = daemon_cpu(b);
        m->self_cpu = self_cpu_seconds();
        m->start_usec = now_usec();
}

static void meter_stop(const Meter *m, const Bench *b, Result *res) {
        DaemonStats st;
        double d;

        res->wall_s = (double) (now_usec() - m->start_usec) / 1e6;
        res->worker_cpu_s = self_cpu_seconds() - m->self_cpu;
        d = daemon_cpu(b);
        res->daemon_cpu_s = d >= 0 && m->daemon_cpu >= 0 ? d - m->daemon_cpu : -1;
        st = daemon_stats(b);
        if (st.ok && m->stats.ok) {
                /* Less the GetStats call that opened the phase. */
                res->has_stats = true;
                res->requests = st.requests - m->stats.requests - 1;
                res->commits = st.commits - m->stats.commits;
                res->wal_frames = st.wal_frames - m->stats.wal_frames;
        }
}

static void result_latency(Result *res, Samples *s) {
        samples_finish(s);
        res->has_latency = true;
        res->p50_usec = samples_percentile(s, 0.50);
        res->p99_usec = samples_percentile(s, 0.99);
        res->max_usec = samples_percentile(s, 1.0);
}

/* ---- iterations ------------------------------------------------------------------------------ */

/* What a start-and-wait iteration starts. */
typedef struct StartSpec {
        const char *type;
        const dur_buf *input;
} StartSpec;

static int start_one(Loops *l, dur_client *c, size_t i) {
        const StartSpec *spec = l->userdata;
        char id[ID_MAX];
        dur_start_opts o = { .workflow_id = id, .task_queue = l->bench->task_queue };
        int r;

        wf_id(l, i, id);
        r = dur_client_start(c, spec->type, &o, spec->input, NULL);
        if (r < 0)
                return loops_fail(l, c, r, "starting %s", id);
        return 0;
}

/* The result @r of waiting for workflow @id, as a phase counts it: a run that did not complete is
 * an error too. Frees @out. */
static int outcome_check(Loops *l, dur_client *c, const char *id, int r, dur_outcome *out) {
        if (r == DUR_FAILED)
                r = loops_fail(l, c, r, "workflow %s ended %s: %s", id, out->status,
                               out->failure ? dur_failure_message(out->failure) : "");
        else if (r < 0)
                r = loops_fail(l, c, r, "waiting for %s", id);
        dur_outcome_done(out);
        return r;
}

static int await_one(Loops *l, dur_client *c, size_t i) {
        dur_outcome out = {};
        char id[ID_MAX];

        wf_id(l, i, id);
        return outcome_check(l, c, id, dur_client_result(c, id, NULL, RESULT_TIMEOUT, &out), &out);
}

/* Submit → result, the latency of one workflow as its client sees it: dur_client_execute(), the
 * start that waits for its outcome (StartWorkflow with "wait"), as a client of Temporal's
 * execute_workflow() or of a Restate handler call would run it. */
static int start_and_await_one(Loops *l, dur_client *c, size_t i) {
        const StartSpec *spec = l->userdata;
        uint64_t t0 = now_usec();
        char id[ID_MAX];
        dur_start_opts o = { .workflow_id = id, .task_queue = l->bench->task_queue };
        dur_outcome out = {};
        int r;

        wf_id(l, i, id);
        r = dur_client_execute(c, spec->type, &o, spec->input, RESULT_TIMEOUT, &out);
        r = outcome_check(l, c, id, r, &out);
        if (r >= 0)
                l->samples->usec[i] = now_usec() - t0;
        return r;
}

/* W1, W2, W3: @n workflows of @type, @clients at a time, each waited for. */
static int run_start_and_await(const Bench *b, Result *res, const char *type, const dur_buf *in,
                               size_t n, unsigned clients) {
        const StartSpec spec = { type, in };
        Samples s;
        Loops l;
        Meter m;
        int r;

        r = samples_init(&s, n);
        if (r < 0)
                return r;
        res->clients = clients;
        loops_init(&l, b, res->workload, n, clients);
        meter_start(&m, b);
        r = loops_phase(&l, start_and_await_one, &spec, &s, res);
        meter_stop(&m, b, res);
        res->n = atomic_load(&l.done);
        result_latency(res, &s);
        samples_done(&s);
        return r;
}

static int run_count_workflow(const Bench *b, Result *res, const char *type, unsigned per_wf,
                              size_t base, unsigned clients) {
        _cleanup_(dur_buf_freep) dur_buf *in = dur_args("{s:u}", "n", per_wf);

        if (!in)
                return -ENOMEM;
        return run_start_and_await(b, res, type, in, bench_count(b, base), clients);
}

/* ---- W1, W2, W3 ------------------------------------------------------------------------------ */

static unsigned clients_or(const Bench *b, unsigned standard) {
        return b->clients ? b->clients : standard;
}

static int run_seq3(const Bench *b, Result *res) {
        return run_count_workflow(b, res, "BenchSeq", 3, 2000, clients_or(b, 32));
}

/* One at a time by definition: --clients does not apply. */
static int run_latency1(const Bench *b, Result *res) {
        return run_count_workflow(b, res, "BenchSeq", 1, 300, 1);
}

static int run_fanout10(const Bench *b, Result *res) {
        return run_count_workflow(b, res, "BenchFanout", 10, 200, clients_or(b, 16));
}

/* ---- W4: timers ------------------------------------------------------------------------------ */

/* An answer of dur_client_call(), unpacked. Strings in @u point into @buf, so both live and die
 * together. */
typedef struct Answer {
        dur_buf *buf;
        msgpack_unpacked u;
} Answer;

static void answer_done(Answer *a) {
        if (a->buf)
                msgpack_unpacked_destroy(&a->u);
        a->buf = dur_buf_free(a->buf);
}

/* Sends @req (consumed; NULL is -ENOMEM) and unpacks the answer map into @ret. */
static int call(dur_client *c, dur_buf *req, Answer *ret) {
        _cleanup_(dur_buf_freep) dur_buf *request = req, *answer = NULL;
        int r;

        if (!request)
                return -ENOMEM;
        r = dur_client_call(c, request, &answer);
        if (r < 0)
                return r;
        msgpack_unpacked_init(&ret->u);
        if (msgpack_unpack_next(&ret->u, answer->data, answer->size, NULL) !=
            MSGPACK_UNPACK_SUCCESS) {
                msgpack_unpacked_destroy(&ret->u);
                return -EBADMSG;
        }
        ret->buf = TAKE_PTR(answer);
        return 0;
}

static bool str_is(const char *s, size_t n, const char *literal) {
        return n == strlen(literal) && memcmp(s, literal, n) == 0;
}

/* The times of a BenchSleep history: when its timer started, for how long, when it fired and when
 * the workflow task that delivered the firing started (dur_now() of the code after the sleep). */
typedef struct TimerTimes {
        uint64_t started, start_to_fire, fired, woke;
} TimerTimes;

static int timer_event(const msgpack_object *ev, TimerTimes *t) {
        const msgpack_object *attrs = NULL;
        const char *type;
        size_t len;
        uint64_t time;
        int r;

        r = dur_unpack(ev, "{s:s#, s:U, s?o}", "event_type", &type, &len, "time", &time,
                       "attributes", &attrs);
        if (r < 0)
                return r;
        if (str_is(type, len, "TimerStarted")) {
                t->started = time;
                return attrs ? dur_unpack(attrs, "{s:U}", "start_to_fire_usec", &t->start_to_fire)
                             : -EBADMSG;
        }
        if (str_is(type, len, "TimerFired"))
                t->fired = time;
        else if (str_is(type, len, "WorkflowTaskStarted") && t->fired && !t->woke)
                t->woke = time;
        return 0;
}

static int timer_times(const msgpack_object *answer, TimerTimes *ret) {
        const msgpack_object *events;
        TimerTimes t = {};
        int r;

        r = dur_unpack(answer, "{s:o}", "events", &events);
        if (r < 0 || events->type != MSGPACK_OBJECT_ARRAY)
                return -EBADMSG;
        for (uint32_t i = 0; i < events->via.array.size; i++) {
                r = timer_event(&events->via.array.ptr[i], &t);
                if (r < 0)
                        return r;
        }
        if (!t.started || !t.fired || !t.woke)
                return -ENODATA;
        *ret = t;
        return 0;
}

/* Lateness against the deadline; an event a few microseconds "early" (the deadline is computed
 * a moment after the TimerStarted time is taken) counts as on time. */
static uint64_t late_by(uint64_t t, uint64_t deadline) {
        return t > deadline ? t - deadline : 0;
}

static int timer_history_one(Loops *l, dur_client *c, size_t i) {
        Samples *fire = (Samples *) l->userdata;
        _cleanup_(answer_done) Answer a = {};
        char id[ID_MAX];
        TimerTimes t;
        int r;

        wf_id(l, i, id);
        r = call(c, dur_args("{s:s, s:s}", "op", "GetHistory", "workflow_id", id), &a);
        if (r < 0)
                return loops_fail(l, c, r, "GetHistory %s", id);
        r = timer_times(&a.u.data, &t);
        if (r < 0)
                return loops_fail(l, NULL, r, "reading the timer events of %s", id);
        l->samples->usec[i] = late_by(t.woke, t.started + t.start_to_fire);
        fire->usec[i] = late_by(t.fired, t.started + t.start_to_fire);
        return 0;
}

/* Reads every history after the measured phase; fills the lateness figures of @res. */
static int timer_lateness(const Bench *b, Result *res, size_t n, unsigned clients) {
        Samples wake, fire;
        Loops l;
        int r;

        r = samples_init(&wake, n);
        if (r < 0)
                return r;
        r = samples_init(&fire, n);
        if (r >= 0) {
                loops_init(&l, b, res->workload, n, clients);
                r = loops_phase(&l, timer_history_one, &fire, &wake, res);
                result_latency(res, &wake);
                samples_finish(&fire);
                res->has_fire = true;
                res->fire_p50_usec = samples_percentile(&fire, 0.50);
                res->fire_p99_usec = samples_percentile(&fire, 0.99);
                res->fire_max_usec = samples_percentile(&fire, 1.0);
                samples_done(&fire);
        }
        samples_done(&wake);
        return r;
}

/* W4: start them all as fast as @clients loops can, then wait for every result. The wall time
 * runs from the first start to the last result. */
static int run_timers(const Bench *b, Result *res) {
        _cleanup_(dur_buf_freep) dur_buf *in = dur_args("{s:U}", "usec", (uint64_t) SLEEP_USEC);
        const size_t n = bench_count(b, 1000);
        const unsigned clients = clients_or(b, 32);
        const StartSpec spec = { "BenchSleep", in };
        Loops l;
        Meter m;
        int r;

        if (!in)
                return -ENOMEM;
        res->clients = clients;
        loops_init(&l, b, res->workload, n, clients);
        meter_start(&m, b);
        r = loops_phase(&l, start_one, &spec, NULL, res);
        if (r >= 0)
                r = loops_phase(&l, await_one, NULL, NULL, res);
        meter_stop(&m, b, res);
        res->n = r >= 0 ? atomic_load(&l.done) : 0;
        if (r < 0)
                return r;
        return timer_lateness(b, res, n, clients);
}

/* ---- W5: signal round trips ------------------------------------------------------------------ */

/* Returns once the run of @id has completed its first workflow task (4 events: it now waits for
 * the signal), so that the round trip measures the signal alone. */
static int wait_blocked_one(Loops *l, dur_client *c, size_t i) {
        uint64_t deadline = now_usec() + BLOCKED_TIMEOUT_USEC;
        char id[ID_MAX];

        wf_id(l, i, id);
        for (;;) {
                _cleanup_(answer_done) Answer a = {};
                uint64_t length = 0;
                int r;

                r = call(c, dur_args("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", id),
                         &a);
                if (r >= 0)
                        r = dur_unpack(&a.u.data, "{s:{s:U}}", "workflow", "history_length",
                                       &length);
                if (r < 0)
                        return loops_fail(l, c, r, "DescribeWorkflow %s", id);
                if (length >= 4)
                        return 0;
                if (now_usec() >= deadline)
                        return loops_fail(l, NULL, -ETIMEDOUT, "%s never waited for its signal",
                                          id);
                (void) usleep(1000);
        }
}

static int signal_round_trip(Loops *l, dur_client *c, size_t i) {
        uint64_t t0 = now_usec();
        char id[ID_MAX];
        int r;

        wf_id(l, i, id);
        r = dur_client_signal(c, id, NULL, "go", NULL);
        if (r < 0)
                return loops_fail(l, c, r, "signalling %s", id);
        r = await_one(l, c, i);
        if (r >= 0)
                l->samples->usec[i] = now_usec() - t0;
        return r;
}

/* W5: the workflows are started and seen waiting first (not measured); then one round trip at a
 * time: SignalWorkflow → GetResult. */
static int run_signal(const Bench *b, Result *res) {
        const StartSpec spec = { "BenchSignal", NULL };
        const size_t n = bench_count(b, 200);
        Samples s;
        Loops l;
        Meter m;
        int r;

        r = samples_init(&s, n);
        if (r < 0)
                return r;
        res->clients = 1;
        loops_init(&l, b, res->workload, n, 8);
        r = loops_phase(&l, start_one, &spec, NULL, res);
        if (r >= 0)
                r = loops_phase(&l, wait_blocked_one, NULL, NULL, res);
        if (r >= 0) {
                l.clients = 1;
                meter_start(&m, b);
                r = loops_phase(&l, signal_round_trip, NULL, &s, res);
                meter_stop(&m, b, res);
                res->n = atomic_load(&l.done);
        }
        result_latency(res, &s);
        samples_done(&s);
        return r;
}

/* ---- W7: update round trips ------------------------------------------------------------------ */

/* UpdateWorkflow "go" until its answer at stage Completed: the validation (a query task to the
 * worker), the commit of WorkflowExecutionUpdateAccepted, the workflow task that runs the handler
 * and the commit of WorkflowExecutionUpdateCompleted. */
static int update_round_trip(Loops *l, dur_client *c, size_t i) {
        dur_update_outcome o = {};
        uint64_t t0 = now_usec();
        char id[ID_MAX];
        int r;

        wf_id(l, i, id);
        r = dur_client_update(c, id, "go", NULL, NULL, &o);
        dur_update_outcome_done(&o);
        if (r < 0)
                return loops_fail(l, c, r, "updating %s", id);
        l->samples->usec[i] = now_usec() - t0;
        return 0;
}

/* W7: as W5, with the update "go" instead of the signal; the run's result is not awaited. */
static int run_update(const Bench *b, Result *res) {
        const StartSpec spec = { "BenchSignal", NULL };
        const size_t n = bench_count(b, 200);
        Samples s;
        Loops l;
        Meter m;
        int r;

        r = samples_init(&s, n);
        if (r < 0)
                return r;
        res->clients = 1;
        loops_init(&l, b, res->workload, n, 8);
        r = loops_phase(&l, start_one, &spec, NULL, res);
        if (r >= 0)
                r = loops_phase(&l, wait_blocked_one, NULL, NULL, res);
        if (r >= 0) {
                l.clients = 1;
                meter_start(&m, b);
                r = loops_phase(&l, update_round_trip, NULL, &s, res);
                meter_stop(&m, b, res);
                res->n = atomic_load(&l.done);
        }
        result_latency(res, &s);
        samples_done(&s);
        return r;
}

int workloads_warm_up(const Bench *b, Result *res) {
        _cleanup_(dur_buf_freep) dur_buf *in = dur_args("{s:u}", "n", 1);

        if (!in)
                return -ENOMEM;
        return run_start_and_await(b, res, "BenchSeq", in, 20, 4);
}

/* ---- the table ------------------------------------------------------------------------------- */

const Workload workloads[] = {
        { "W1", "seq3", "2,000 workflows x 3 sequential activities, 32 client loops", run_seq3 },
        { "W2", "latency1", "300 workflows x 1 activity, one at a time", run_latency1 },
        { "W3", "fanout10", "200 workflows x 10 parallel activities, 16 client loops",
          run_fanout10 },
        { "W4", "timers", "1,000 workflows sleeping 2 s, started at once; wake-up lateness",
          run_timers },
        { "W5", "signal", "200 signal round trips, one at a time", run_signal },
        { "W6", "scale",
          "start/describe/list/signal latency, empty store vs 1,000,000 closed + 100,000 open "
          "runs",
          scale_run },
        { "W7", "update", "200 update round trips (stage Completed), one at a time", run_update },
};
const size_t n_workloads = ELEMENTSOF(workloads);

const Workload *workload_find(const char *s) {
        for (size_t i = 0; i < n_workloads; i++)
                if (strcasecmp(s, workloads[i].key) == 0 || strcasecmp(s, workloads[i].name) == 0)
                        return &workloads[i];
        return NULL;
}
