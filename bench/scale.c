/* W6: latencies on an empty and on a loaded store; see scale.h and bench/README.md.
 *
 * Each phase sends, one at a time over one connection (SCALE_OPS of each, in this order):
 *   StartWorkflow       new ids; types and queues rotate over the bulk loader's, on queues that
 *                       no worker polls, so every run stays open with its first task scheduled
 *   DescribeWorkflow    a random existing id: on the empty store one started by this phase, on
 *                       the loaded one a random bulk-closed-N or bulk-open-N
 *   ListWorkflows       status Running and one workflow type, limit 100: 100 workflows per
 *                       answer in both phases (this phase's starts hold 100 of each type)
 *   ListSparse          the same plus one task queue: a combination that 1 run in 165 of the
 *                       loaded store matches, so the daemon must find 100 among many; on the
 *                       empty store, 1,000 more runs started after the measured starts (not
 *                       measured) make every combination hold 100 too, so that both phases
 *                       answer 100 workflows
 *   SignalWorkflow      an open run: this phase's own, or a random bulk-open-N
 * Random choices use a fixed seed, so runs are repeatable. */

#include "bench/scale.h"

#include <durable/durable.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/daemon.h"
#include "bench/stats.h"
#include "common/cleanup.h"

#define SCALE_OPS 500
#define SCALE_CLOSED 1000000
#define SCALE_OPEN 100000
#define SCALE_LIST_LIMIT 100
/* Start-up checks the database (PRAGMA quick_check), which takes a while on a big one. */
#define SCALE_READY_TIMEOUT_USEC (600ULL * 1000 * 1000)
#define ID_MAX 160

/* The bulk loader's workflow types and task queues (daemon/bulkload.h): run N has type N mod 5
 * and queue N mod 3. */
static const char *const types[] = { "Order", "Payment", "Shipping", "Refund", "Report" };
static const char *const queues[] = { "bulk-a", "bulk-b", "bulk-c" };

typedef enum ScaleOp {
        OP_START,
        OP_DESCRIBE,
        OP_LIST,
        OP_LIST_SPARSE,
        OP_SIGNAL,
        _OP_MAX,
} ScaleOp;

static const char *const op_names[_OP_MAX] = {
        [OP_START] = "StartWorkflow",   [OP_DESCRIBE] = "DescribeWorkflow",
        [OP_LIST] = "ListWorkflows",    [OP_LIST_SPARSE] = "ListSparse",
        [OP_SIGNAL] = "SignalWorkflow",
};

typedef struct Phase {
        const Bench *b;
        const char *name; /* "empty", "full": part of the workflow ids */
        dur_client *c;
        uint64_t closed, open; /* bulk runs in the store */
        uint64_t rng;
        size_t rows; /* workflows in the list answers of the current op */
        char *error; /* Result.error */
} Phase;

DEFINE_CLEANUP(dur_buf, dur_buf_free);

static uint64_t rand_below(Phase *p, uint64_t n) {
        /* xorshift64 */
        p->rng ^= p->rng << 13;
        p->rng ^= p->rng >> 7;
        p->rng ^= p->rng << 17;
        return n ? p->rng % n : 0;
}

_printf_(3, 4) static int phase_fail(Phase *p, int r, const char *fmt, ...) {
        const char *code = p->c ? dur_client_error_code(p->c) : NULL;
        char what[BENCH_ERROR_MAX / 2];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(p->error, BENCH_ERROR_MAX, "%s (%s store): %s%s%s", what, p->name, strerror(-r),
                 code && *code ? ": " : "", code && *code ? dur_client_error_message(p->c) : "");
        return r < 0 ? r : -EIO;
}

static void own_id(const Phase *p, size_t i, char buf[static ID_MAX]) {
        snprintf(buf, ID_MAX, "%s-scale-%s-%zu", p->b->prefix, p->name, i);
}

/* A random run of the store: bulk-closed-N or bulk-open-N when loaded, else one of ours. */
static void random_id(Phase *p, bool only_open, char buf[static ID_MAX]) {
        uint64_t k;

        if (p->closed + p->open == 0) {
                own_id(p, rand_below(p, SCALE_OPS), buf);
                return;
        }
        k = only_open ? p->closed + rand_below(p, p->open) : rand_below(p, p->closed + p->open);
        if (k < p->closed)
                snprintf(buf, ID_MAX, "bulk-closed-%llu", (unsigned long long) k);
        else
                snprintf(buf, ID_MAX, "bulk-open-%llu", (unsigned long long) (k - p->closed));
}

static int call(Phase *p, dur_buf *req, const char *what, dur_buf **ret) {
        _cleanup_(dur_buf_freep) dur_buf *request = req;
        int r;

        if (!request)
                return -ENOMEM;
        r = dur_client_call(p->c, request, ret);
        return r < 0 ? phase_fail(p, r, "%s", what) : 0;
}

static int op_start(Phase *p, size_t i) {
        char id[ID_MAX];
        dur_start_opts o = { .workflow_id = id, .task_queue = queues[i % ELEMENTSOF(queues)] };
        int r;

        own_id(p, i, id);
        r = dur_client_start(p->c, types[i % ELEMENTSOF(types)], &o, NULL, NULL);
        return r < 0 ? phase_fail(p, r, "StartWorkflow %s", id) : 0;
}

static int op_describe(Phase *p, size_t i) {
        _cleanup_(dur_buf_freep) dur_buf *answer = NULL;
        char id[ID_MAX];

        random_id(p, false, id);
        return call(p, dur_args("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", id), id,
                    &answer);
}

/* Counts the workflows of a ListWorkflows answer into p->rows. */
static int count_rows(Phase *p, const dur_buf *answer) {
        const msgpack_object *list;
        msgpack_unpacked u;
        int r = -EBADMSG;

        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, answer->data, answer->size, NULL) == MSGPACK_UNPACK_SUCCESS &&
            dur_unpack(&u.data, "{s:o}", "workflows", &list) >= 0 &&
            list->type == MSGPACK_OBJECT_ARRAY) {
                p->rows += list->via.array.size;
                r = 0;
        }
        msgpack_unpacked_destroy(&u);
        return r < 0 ? phase_fail(p, r, "reading a ListWorkflows answer") : 0;
}

static int list(Phase *p, size_t i, const char *queue) {
        _cleanup_(dur_buf_freep) dur_buf *answer = NULL;
        const char *type = types[i % ELEMENTSOF(types)];
        dur_buf *req;
        int r;

        if (queue)
                req = dur_args("{s:s, s:s, s:s, s:s, s:u}", "op", "ListWorkflows", "status",
                               "Running", "workflow_type", type, "task_queue", queue, "limit",
                               SCALE_LIST_LIMIT);
        else
                req = dur_args("{s:s, s:s, s:s, s:u}", "op", "ListWorkflows", "status", "Running",
                               "workflow_type", type, "limit", SCALE_LIST_LIMIT);
        r = call(p, req, "ListWorkflows", &answer);
        return r < 0 ? r : count_rows(p, answer);
}

static int op_list(Phase *p, size_t i) {
        return list(p, i, NULL);
}

static int op_list_sparse(Phase *p, size_t i) {
        return list(p, i, queues[i % ELEMENTSOF(queues)]);
}

static int op_signal(Phase *p, size_t i) {
        char id[ID_MAX];
        int r;

        if (p->open > 0)
                random_id(p, true, id);
        else
                own_id(p, i, id); /* started by op_start, still open */
        r = dur_client_signal(p->c, id, NULL, "poke", NULL);
        return r < 0 ? phase_fail(p, r, "SignalWorkflow %s", id) : 0;
}

static int (*const op_fns[_OP_MAX])(Phase *p, size_t i) = {
        [OP_START] = op_start,   [OP_DESCRIBE] = op_describe,
        [OP_LIST] = op_list,     [OP_LIST_SPARSE] = op_list_sparse,
        [OP_SIGNAL] = op_signal,
};

/* SCALE_OPS of @op, one at a time; latencies into slot @k of the results. */
static int measure_op(Phase *p, ScaleOp op, OpResult *ret, int k) {
        Samples s;
        int r = 0;

        r = samples_init(&s, SCALE_OPS);
        if (r < 0)
                return r;
        p->rows = 0;
        for (size_t i = 0; i < SCALE_OPS && r >= 0; i++) {
                uint64_t t0 = now_usec();

                if (t0 >= p->b->deadline_usec) {
                        r = phase_fail(p, -ETIMEDOUT, "--timeout reached");
                        break;
                }
                r = op_fns[op](p, i);
                if (r >= 0)
                        s.usec[i] = now_usec() - t0;
        }
        samples_finish(&s);
        ret->op = op_names[op];
        ret->n[k] = s.n;
        ret->p50_usec[k] = samples_percentile(&s, 0.50);
        ret->p99_usec[k] = samples_percentile(&s, 0.99);
        ret->max_usec[k] = samples_percentile(&s, 1.0);
        ret->rows[k] = s.n ? (double) p->rows / (double) s.n : 0;
        samples_done(&s);
        return r;
}

/* The empty store: starts runs SCALE_OPS .. 3 * SCALE_OPS - 1 (types and queues rotating on as
 * in op_start()), so that each type and queue combination has 100 open runs, as many as
 * ListSparse asks for. */
static int fill_empty(Phase *p) {
        int r = 0;

        if (p->closed + p->open > 0)
                return 0;
        for (size_t i = SCALE_OPS; i < 3 * SCALE_OPS && r >= 0; i++)
                r = op_start(p, i);
        return r;
}

static int measure_phase(Phase *p, const char *socket_path, Result *res, int k) {
        int r;

        r = dur_client_connect(&p->c, socket_path);
        if (r < 0)
                return phase_fail(p, r, "connecting to %s", socket_path);
        for (int op = 0; op < _OP_MAX && r >= 0; op++) {
                r = measure_op(p, (ScaleOp) op, &res->ops[op], k);
                if (r >= 0 && op == OP_START)
                        r = fill_empty(p);
        }
        p->c = dur_client_free(p->c);
        res->n_ops = _OP_MAX;
        return r;
}

static double seconds_since(uint64_t t0) {
        return (double) (now_usec() - t0) / 1e6;
}

static double file_mib(const char *dir, const char *name) {
        char path[4096];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return stat(path, &st) < 0 ? 0 : (double) st.st_size / (1024.0 * 1024.0);
}

/* Stops the daemon, loads the store, starts the daemon again. */
static int load(const Bench *b, BenchDaemon *d, Result *res) {
        uint64_t t0;
        int r;

        r = bench_daemon_halt(d);
        if (r < 0)
                return r;
        t0 = now_usec();
        r = bench_daemon_bulk_load(d, b->durabled, b->durability, res->closed, res->open);
        res->wall_s = seconds_since(t0);
        if (r < 0) {
                snprintf(res->error, BENCH_ERROR_MAX, "durabled --bulk-load failed (log: %s)",
                         d->log_path);
                return r;
        }
        res->n = (size_t) (res->closed + res->open);
        res->db_mib = file_mib(d->dir, "state/durabled.db");
        t0 = now_usec();
        r = bench_daemon_restart(d, b->durabled, b->durability, SCALE_READY_TIMEOUT_USEC);
        res->startup_s[1] = seconds_since(t0);
        if (r < 0)
                snprintf(res->error, BENCH_ERROR_MAX,
                         "durabled did not start on the loaded "
                         "store: %s (log: %s)",
                         strerror(-r), d->log_path);
        return r;
}

int scale_run(const Bench *b, Result *res) {
        _cleanup_(bench_daemon_stop) BenchDaemon d = {};
        Phase empty = { .b = b, .name = "empty", .rng = 0x9e3779b97f4a7c15, .error = res->error };
        Phase full = empty;
        uint64_t t0;
        int r;

        res->clients = 1;
        if (!b->durabled) {
                snprintf(res->error, BENCH_ERROR_MAX,
                         "W6 runs a daemon of its own and cannot use --socket");
                return -EOPNOTSUPP;
        }
        res->closed = bench_count(b, SCALE_CLOSED);
        res->open = bench_count(b, SCALE_OPEN);
        t0 = now_usec();
        r = bench_daemon_start(&d, b->durabled, b->durability, SCALE_READY_TIMEOUT_USEC);
        res->startup_s[0] = seconds_since(t0);
        if (r < 0) {
                snprintf(res->error, BENCH_ERROR_MAX, "starting durabled: %s", strerror(-r));
                return r;
        }
        r = measure_phase(&empty, d.socket_path, res, 0);
        if (r >= 0)
                r = load(b, &d, res);
        if (r < 0)
                return r;
        full.name = "full";
        full.closed = res->closed;
        full.open = res->open;
        return measure_phase(&full, d.socket_path, res, 1);
}
