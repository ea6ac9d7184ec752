/* durable-bench: the standard workloads of durabled (issue 3), one JSON line per workload and a
 * table for people. See bench/README.md for what each workload measures and the figures.
 *
 * It starts durabled itself on a fresh state directory (or uses a running one, --socket), runs
 * an in-process libdurable worker and the client loops in this process, and measures wall time,
 * latency percentiles and the CPU time of the daemon (/proc/<pid>/stat) and of this process
 * (getrusage: worker and clients together). A watchdog (--timeout) kills the daemon it started
 * and exits, so a run never hangs. */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/daemon.h"
#include "bench/worker.h"
#include "bench/workloads.h"
#include "common/cleanup.h"

#ifndef DURABLED_BUILD_PATH
#define DURABLED_BUILD_PATH "durabled"
#endif

#define READY_TIMEOUT_USEC (30 * 1000 * 1000)
#define MAX_CACHED_RUNS 4096 /* > W4's 1,000 sleeping runs: no eviction, no full replays */

static const char *arg_workloads = "W1,W2,W3,W4,W5,W6";
static double arg_scale = 1.0;
static unsigned arg_clients;
static const char *arg_durability = "full";
static bool arg_json;
static const char *arg_socket;
static const char *arg_durabled = DURABLED_BUILD_PATH;
static unsigned arg_workers = 1;
static unsigned arg_workflow_threads; /* 0: libdurable's default */
static unsigned arg_activity_threads;
static unsigned arg_timeout_sec = 900;

static volatile sig_atomic_t watchdog_pid;
static char watchdog_msg[256];

static void help(void) {
        printf("Usage: durable-bench [OPTIONS]\n\n"
               "Runs durabled's standard workloads and prints one JSON line per workload.\n\n"
               "  -w --workloads=LIST     Comma-separated W1..W7 or names (default: all)\n"
               "  -n --n=FACTOR           Scale every workload's count (default 1; 0.1 = quick)\n"
               "  -c --clients=C          Client loops of W1, W3, W4 (default 32, 16, 32;\n"
               "                          W2 and W5 run one at a time by definition)\n"
               "     --durability=MODE    full (default) or normal, passed to the daemon\n"
               "     --durabled=PATH      Daemon binary (default %s)\n"
               "  -s --socket=PATH        Use a running daemon instead of starting one\n"
               "     --workers=N          In-process libdurable workers (default 1)\n"
               "     --workflow-threads=N Workflow threads of each worker (default: libdurable's, 16)\n"
               "     --activity-threads=N Activity threads of each worker (default: libdurable's, 32)\n"
               "     --timeout=SECS       Give up (and kill the daemon) after SECS (default %u)\n"
               "     --json               Print only the JSON lines\n"
               "  -h --help               Show this help\n\n"
               "Workloads:\n",
               DURABLED_BUILD_PATH, arg_timeout_sec);
        for (size_t i = 0; i < n_workloads; i++)
                printf("  %s %-9s %s\n", workloads[i].key, workloads[i].name, workloads[i].summary);
}

static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int parse_scale(const char *s) {
        char *end;

        errno = 0;
        arg_scale = strtod(s, &end);
        if (errno || end == s || *end || !(arg_scale > 0) || arg_scale > 1000)
                return -EINVAL;
        return 0;
}

static int check_workloads(const char *list) {
        _cleanup_free_ char *copy = strdup(list);
        char *save, *w;

        if (!copy)
                return -ENOMEM;
        for (w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save))
                if (!workload_find(w)) {
                        fprintf(stderr, "durable-bench: unknown workload '%s' (see --help)\n", w);
                        return -EINVAL;
                }
        return 0;
}

static int bad_option(const char *name, const char *value) {
        fprintf(stderr, "durable-bench: invalid %s=%s (see --help)\n", name, value);
        return -EINVAL;
}

/* Returns 1 to go on, 0 to exit successfully (--help), -EINVAL on a bad option. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_DURABILITY = 0x100,
                ARG_DURABLED,
                ARG_WORKERS,
                ARG_WORKFLOW_THREADS,
                ARG_ACTIVITY_THREADS,
                ARG_TIMEOUT,
                ARG_JSON,
        };
        static const struct option options[] = {
                { "workloads", required_argument, NULL, 'w' },
                { "n", required_argument, NULL, 'n' },
                { "clients", required_argument, NULL, 'c' },
                { "durability", required_argument, NULL, ARG_DURABILITY },
                { "durabled", required_argument, NULL, ARG_DURABLED },
                { "socket", required_argument, NULL, 's' },
                { "workers", required_argument, NULL, ARG_WORKERS },
                { "workflow-threads", required_argument, NULL, ARG_WORKFLOW_THREADS },
                { "activity-threads", required_argument, NULL, ARG_ACTIVITY_THREADS },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "w:n:c:s:h", options, NULL)) >= 0)
                switch (c) {
                case 'w':
                        if (check_workloads(optarg) < 0)
                                return -EINVAL;
                        arg_workloads = optarg;
                        break;
                case 'n':
                        if (parse_scale(optarg) < 0)
                                return bad_option("--n", optarg);
                        break;
                case 'c':
                        if (parse_unsigned(optarg, 1, 1024, &arg_clients) < 0)
                                return bad_option("--clients", optarg);
                        break;
                case ARG_DURABILITY:
                        if (!streq(optarg, "full") && !streq(optarg, "normal"))
                                return bad_option("--durability", optarg);
                        arg_durability = optarg;
                        break;
                case ARG_DURABLED:
                        arg_durabled = optarg;
                        break;
                case 's':
                        arg_socket = optarg;
                        break;
                case ARG_WORKERS:
                        if (parse_unsigned(optarg, 1, 64, &arg_workers) < 0)
                                return bad_option("--workers", optarg);
                        break;
                case ARG_WORKFLOW_THREADS:
                        if (parse_unsigned(optarg, 1, 256, &arg_workflow_threads) < 0)
                                return bad_option("--workflow-threads", optarg);
                        break;
                case ARG_ACTIVITY_THREADS:
                        if (parse_unsigned(optarg, 1, 256, &arg_activity_threads) < 0)
                                return bad_option("--activity-threads", optarg);
                        break;
                case ARG_TIMEOUT:
                        if (parse_unsigned(optarg, 1, 86400, &arg_timeout_sec) < 0)
                                return bad_option("--timeout", optarg);
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "durable-bench: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* ---- watchdog -------------------------------------------------------------------------------- */

static void watchdog_on_alarm(int sig) {
        if (watchdog_pid > 0)
                (void) kill(watchdog_pid, SIGKILL);
        (void) !write(STDERR_FILENO, watchdog_msg, strlen(watchdog_msg));
        _exit(124);
}

static void watchdog_arm(pid_t daemon_started, const char *dir) {
        struct sigaction sa = { .sa_handler = watchdog_on_alarm };

        snprintf(watchdog_msg, sizeof(watchdog_msg),
                 "durable-bench: --timeout=%u reached; killed the daemon, left %s\n",
                 arg_timeout_sec, dir ? dir : "the daemon alone (--socket)");
        watchdog_pid = daemon_started;
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGALRM, &sa, NULL);
        alarm(arg_timeout_sec);
}

/* ---- output ---------------------------------------------------------------------------------- */

static double ms(uint64_t usec) {
        return (double) usec / 1000.0;
}

static void json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++)
                if (*s == '"' || *s == '\\')
                        fprintf(f, "\\%c", *s);
                else if ((unsigned char) *s < 0x20)
                        fprintf(f, "\\u%04x", (unsigned char) *s);
                else
                        fputc(*s, f);
        fputc('"', f);
}

static void json_cpu(const char *key, double v) {
        if (v < 0)
                printf(", \"%s\": null", key);
        else
                printf(", \"%s\": %.3f", key, v);
}

static double ratio(uint64_t full, uint64_t empty) {
        return empty > 0 ? (double) full / (double) empty : 0.0;
}

/* W6: one line per operation, empty against loaded store. */
static void print_op_json(const Result *r, const OpResult *o) {
        printf("{\"workload\": \"%s\", \"op\": \"%s\", \"n\": %zu", r->workload, o->op, o->n[1]);
        for (int k = 0; k < 2; k++)
                printf(", \"%s_p50_ms\": %.3f, \"%s_p99_ms\": %.3f, \"%s_max_ms\": %.3f",
                       k ? "full" : "empty", ms(o->p50_usec[k]), k ? "full" : "empty",
                       ms(o->p99_usec[k]), k ? "full" : "empty", ms(o->max_usec[k]));
        printf(", \"ratio_p50\": %.2f, \"ratio_p99\": %.2f", ratio(o->p50_usec[1], o->p50_usec[0]),
               ratio(o->p99_usec[1], o->p99_usec[0]));
        if (o->rows[0] > 0 || o->rows[1] > 0)
                printf(", \"empty_rows\": %.1f, \"full_rows\": %.1f", o->rows[0], o->rows[1]);
        printf("}\n");
}

static void print_json(const Result *r) {
        printf("{\"workload\": \"%s\", \"n\": %zu, \"wall_s\": %.3f, \"wf_per_s\": %.1f", r->workload,
               r->n, r->wall_s, r->wall_s > 0 ? (double) r->n / r->wall_s : 0.0);
        if (r->has_latency)
                printf(", \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f", ms(r->p50_usec),
                       ms(r->p99_usec), ms(r->max_usec));
        json_cpu("daemon_cpu_s", r->daemon_cpu_s);
        json_cpu("worker_cpu_s", r->worker_cpu_s);
        if (r->has_stats && r->n > 0)
                printf(", \"requests_per_wf\": %.1f, \"commits_per_wf\": %.2f, "
                       "\"wal_frames_per_wf\": %.1f",
                       (double) r->requests / (double) r->n, (double) r->commits / (double) r->n,
                       (double) r->wal_frames / (double) r->n);
        if (r->has_fire)
                printf(", \"fire_p50_ms\": %.3f, \"fire_p99_ms\": %.3f, \"fire_max_ms\": %.3f",
                       ms(r->fire_p50_usec), ms(r->fire_p99_usec), ms(r->fire_max_usec));
        printf(", \"clients\": %u, \"durability\": \"%s\", \"errors\": %zu", r->clients,
               arg_socket ? "unknown" : arg_durability, r->errors);
        if (r->error[0]) {
                printf(", \"error\": ");
                json_string(stdout, r->error);
        }
        if (r->n_ops > 0)
                printf(", \"closed\": %llu, \"open\": %llu, \"load_runs_per_s\": %.0f, "
                       "\"db_mib\": %.1f, \"startup_empty_s\": %.3f, \"startup_full_s\": %.3f",
                       (unsigned long long) r->closed, (unsigned long long) r->open,
                       r->wall_s > 0 ? (double) r->n / r->wall_s : 0.0, r->db_mib,
                       r->startup_s[0], r->startup_s[1]);
        printf("}\n");
        for (size_t i = 0; i < r->n_ops; i++)
                print_op_json(r, &r->ops[i]);
        fflush(stdout);
}

static void print_skipped(const Workload *w) {
        if (arg_json)
                printf("{\"workload\": \"%s\", \"skipped\": \"not implemented yet\"}\n", w->name);
        else
                printf("# %s %s: not implemented yet, skipped\n", w->key, w->name);
        fflush(stdout);
}

static void print_ops_table(const Result *r) {
        if (r->n_ops == 0)
                return;
        printf("\n%s: %llu closed + %llu open runs loaded in %.1f s (%.0f runs/s, %.0f MiB); "
               "start-up %.2f s empty, %.2f s loaded\n",
               r->workload, (unsigned long long) r->closed, (unsigned long long) r->open, r->wall_s,
               r->wall_s > 0 ? (double) r->n / r->wall_s : 0.0, r->db_mib, r->startup_s[0],
               r->startup_s[1]);
        printf("%-17s %9s %9s %9s %9s %7s %7s\n", "op", "empty_p50", "empty_p99", "full_p50",
               "full_p99", "x p50", "x p99");
        for (size_t i = 0; i < r->n_ops; i++) {
                const OpResult *o = &r->ops[i];

                printf("%-17s %9.3f %9.3f %9.3f %9.3f %7.2f %7.2f%s\n", o->op, ms(o->p50_usec[0]),
                       ms(o->p99_usec[0]), ms(o->p50_usec[1]), ms(o->p99_usec[1]),
                       ratio(o->p50_usec[1], o->p50_usec[0]), ratio(o->p99_usec[1], o->p99_usec[0]),
                       ratio(o->p50_usec[1], o->p50_usec[0]) > 2 ||
                                       ratio(o->p99_usec[1], o->p99_usec[0]) > 2
                               ? "  > 2x"
                               : "");
        }
}

static void print_table(const Result *results, size_t n) {
        printf("\n%-9s %6s %8s %8s %8s %8s %8s %10s %10s\n", "workload", "n", "wall_s", "wf/s",
               "p50_ms", "p99_ms", "max_ms", "daemon_cpu", "bench_cpu");
        for (size_t i = 0; i < n; i++) {
                const Result *r = &results[i];

                if (r->n_ops > 0)
                        continue; /* W6: its own table below */
                printf("%-9s %6zu %8.2f %8.1f %8.2f %8.2f %8.2f %10.2f %10.2f%s\n", r->workload,
                       r->n, r->wall_s, r->wall_s > 0 ? (double) r->n / r->wall_s : 0.0,
                       ms(r->p50_usec), ms(r->p99_usec), ms(r->max_usec), r->daemon_cpu_s,
                       r->worker_cpu_s, r->error[0] ? "  FAILED" : "");
        }
        printf("(W4: p50/p99/max are wake-up lateness; W5: signal round trip; cpu in seconds, "
               "bench_cpu = worker + clients)\n");
        for (size_t i = 0; i < n; i++)
                print_ops_table(&results[i]);
}

/* ---- running --------------------------------------------------------------------------------- */

static void bench_init(Bench *b, const char *socket_path, pid_t daemon_pid) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        *b = (Bench){ .socket_path = socket_path,
                      .daemon_pid = daemon_pid,
                      .scale = arg_scale,
                      .clients = arg_clients,
                      .deadline_usec = now_usec() + (uint64_t) arg_timeout_sec * 1000000 };
        /* Unique per run, so that a shared daemon (--socket) never sees an id twice. */
        snprintf(b->prefix, sizeof(b->prefix), "bench-%d-%lld", (int) getpid(),
                 (long long) ts.tv_sec);
        snprintf(b->task_queue, sizeof(b->task_queue), "durable-bench-%d", (int) getpid());
        b->durabled = arg_socket ? NULL : arg_durabled;
        b->durability = arg_durability;
}

static int run_one(const Bench *b, const Workload *w, Result *res) {
        int r;

        *res = (Result){ .workload = w->name, .daemon_cpu_s = -1 };
        if (!arg_json)
                fprintf(stderr, "durable-bench: running %s %s (%s)...\n", w->key, w->name,
                        w->summary);
        r = w->run(b, res);
        if (r < 0 && !res->error[0])
                snprintf(res->error, sizeof(res->error), "%s", strerror(-r));
        print_json(res);
        return r;
}

/* Runs the selected workloads in the order given; returns the number that failed. */
static int run_workloads(const Bench *b, Result *results, size_t *n_results) {
        _cleanup_free_ char *copy = strdup(arg_workloads);
        int failed = 0;
        char *save, *s;

        if (!copy)
                return 1;
        for (s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
                const Workload *w = workload_find(s);

                if (!w->run) {
                        print_skipped(w);
                        continue;
                }
                if (run_one(b, w, &results[(*n_results)++]) < 0)
                        failed++;
        }
        return failed;
}

static void print_setup(const Bench *b, const BenchDaemon *d) {
        if (arg_json)
                return;
        printf("# durable-bench: daemon %s (pid %d, %s), state %s, %u worker(s), scale %g, "
               "nproc %ld\n",
               arg_socket ? "given by --socket" : arg_durabled, (int) b->daemon_pid,
               arg_socket ? "durability unknown" : arg_durability,
               d->dir ? d->dir : "(not ours)", arg_workers, arg_scale,
               sysconf(_SC_NPROCESSORS_ONLN));
        fflush(stdout);
}

/* With the daemon up: worker, warm-up, workloads. Returns the number of failures. */
static int run_with_daemon(const Bench *b, const BenchDaemon *d) {
        Result results[16], warm = { .workload = "warmup" };
        size_t n_results = 0;
        BenchWorker *w = NULL;
        int failed, r;

        print_setup(b, d);
        r = bench_worker_start(&w, b->socket_path, b->task_queue, arg_workers,
                               arg_workflow_threads, arg_activity_threads, MAX_CACHED_RUNS);
        if (r < 0) {
                fprintf(stderr, "durable-bench: failed to start the worker: %s\n", strerror(-r));
                return 1;
        }
        r = workloads_warm_up(b, &warm);
        if (r < 0) {
                fprintf(stderr, "durable-bench: warm-up failed: %s\n",
                        warm.error[0] ? warm.error : strerror(-r));
                failed = 1;
        } else
                failed = run_workloads(b, results, &n_results);
        r = bench_worker_stop(w);
        if (r < 0) {
                fprintf(stderr, "durable-bench: the worker failed: %s\n", strerror(-r));
                failed++;
        }
        if (!arg_json && n_results > 0)
                print_table(results, n_results);
        return failed;
}

static int run(void) {
        _cleanup_(bench_daemon_stop) BenchDaemon d = {};
        const char *socket_path = arg_socket;
        pid_t pid;
        Bench b;
        int r;

        if (!arg_socket) {
                r = bench_daemon_start(&d, arg_durabled, arg_durability, READY_TIMEOUT_USEC);
                if (r < 0) {
                        fprintf(stderr, "durable-bench: failed to start %s: %s (log: %s)\n",
                                arg_durabled, strerror(-r), d.log_path ? d.log_path : "none");
                        return 1;
                }
                socket_path = d.socket_path;
                pid = d.pid;
        } else {
                pid = socket_peer_pid(arg_socket);
                if (pid < 0)
                        fprintf(stderr, "durable-bench: no daemon pid for %s (%s): daemon CPU "
                                "not measured\n", arg_socket, strerror(-pid));
        }
        watchdog_arm(arg_socket ? 0 : pid, d.dir);
        bench_init(&b, socket_path, pid > 0 ? pid : 0);
        r = run_with_daemon(&b, &d);
        alarm(0);
        return r;
}

int main(int argc, char *argv[]) {
        int r = parse_argv(argc, argv);

        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        return run() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
