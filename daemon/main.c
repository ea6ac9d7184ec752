/* durabled: option parsing and start-up. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "daemon/activity-unit.h"
#include "daemon/activity.h"
#include "daemon/api-bus.h"
#include "daemon/bulkload.h"
#include "daemon/clock.h"
#include "daemon/manager.h"
#include "daemon/retention.h"
#include "proto/frame.h"
#include "proto/msg.h"

static bool arg_user;
static const char *arg_state_dir;
static const char *arg_socket;
static StoreDurability arg_durability = STORE_DURABILITY_FULL;
static size_t arg_max_frame_size = FRAME_SIZE_MAX_DEFAULT;
static size_t arg_max_payload_size; /* 0: the default, capped by the frame size */
static bool arg_time_skipping;
static const char *arg_bus_address;
static bool arg_no_bus;
static uint64_t arg_clock_offset_sec;
static const char *arg_schedule_dir;
static bool arg_wake_system;
static char *schedule_dir_buf;
static uint64_t arg_retention_usec = RETENTION_DEFAULT_USEC;
static uint64_t arg_history_warn_events = HISTORY_WARN_EVENTS_DEFAULT;
static uint64_t arg_history_max_events = HISTORY_MAX_EVENTS_DEFAULT;
static uint64_t arg_history_max_bytes = HISTORY_MAX_BYTES_DEFAULT;
static uint64_t arg_run_limits[_RUN_LIMIT_MAX]; /* 0: the default (run-limit.h) */
static unsigned arg_max_connections = 4096;
static unsigned arg_max_polls_per_connection = 256;
static unsigned arg_max_waits = 65536;
static unsigned arg_max_activity_processes = SUPERVISOR_ATTEMPTS_DEFAULT;
static const char *arg_admin_group;
static uint64_t arg_max_updates_in_flight = UPDATES_IN_FLIGHT_DEFAULT;
static uint64_t arg_max_updates_per_run = UPDATES_PER_RUN_DEFAULT;
static bool arg_bulk_load;
static uint64_t arg_bulk_closed, arg_bulk_open;
static char *state_dir_buf, *socket_buf;
static const char **arg_activity_dirs;
static size_t arg_n_activity_dirs;

static void help(void) {
        printf("Usage: durabled [OPTIONS]\n\n"
               "Durable-execution engine: runs workflows whose every step is recorded.\n\n"
               "  -h --help                 Show this help\n"
               "     --version              Show the version\n"
               "     --user                 Run for the calling user (paths under\n"
               "                            $XDG_RUNTIME_DIR and $XDG_STATE_HOME)\n"
               "     --system               Run as the system service (default)\n"
               "     --state-dir=DIR        Keep the database in DIR\n"
               "     --socket=PATH          Listen on the Unix socket PATH\n"
               "     --activity-dir=DIR     Also read activity units from DIR, before the\n"
               "                            default directories (may be repeated)\n"
               "     --schedule-dir=DIR     Read *.schedule unit files from DIR\n"
               "     --wake-system          Wake the host from suspend for every deadline\n"
               "     --durability=MODE      full (default: fsync every commit) or normal\n"
               "                            (may lose the last commits on power loss)\n"
               "     --max-frame-size=BYTES Largest request accepted (default %u)\n"
               "     --max-payload-size=BYTES\n"
               "                            Largest payload: an input, result or heartbeat\n"
               "                            (default %u, or the frame size if smaller)\n"
               "     --admin-group=GROUP    Members of GROUP (a name or a gid) administer\n"
               "                            every workflow (default durabled)\n"
               "     --log-level=LEVEL      emerg..debug (default info)\n"
               "     --bus-address=ADDRESS  Serve the D-Bus API on this bus (default: the\n"
               "                            system bus, the session bus with --user)\n"
               "     --no-bus               Serve no D-Bus API\n"
               "     --retention=DURATION   Delete closed runs after DURATION (default 30d;\n"
               "                            s, m, h, d, w; infinity keeps them)\n"
               "     --history-warn-events=N\n"
               "                            describe warns when a run's history passes N\n"
               "                            events (default 10240)\n"
               "     --history-max-events=N A run whose history passes N events fails\n"
               "                            (default 51200)\n"
               "     --history-max-bytes=BYTES\n"
               "                            ... or passes BYTES of events (default 50M)\n"
               "     --max-pending-activities=N\n"
               "                            A workflow task that would leave a run more than\n"
               "                            N pending activities fails (default 2000)\n"
               "     --max-pending-children=N\n"
               "                            A child past N pending ones fails to start\n"
               "                            (default 2000)\n"
               "     --max-signals-per-run=N\n"
               "                            Signals past N to one run are refused\n"
               "                            (default 10000)\n"
               "     --max-connections=N    Connections and D-Bus calls at once (default 4096)\n"
               "     --max-polls-per-connection=N\n"
               "                            Parked task polls on one connection (default 256)\n"
               "     --max-waits=N          Waits for results and new events, in all\n"
               "                            (default 65536)\n"
               "     --max-activity-processes=N\n"
               "                            Activity processes at once; more wait their turn\n"
               "                            (default 1024)\n"
               "     --max-updates-in-flight=N\n"
               "                            Updates of one run being validated or handled\n"
               "                            at once (default 10)\n"
               "     --max-updates-per-run=N\n"
               "                            Updates one run accepts in all (default 2000)\n"
               "     --time-skipping        Tests only: while a client waits for a result and\n"
               "                            nothing runs, jump the clock to the next deadline\n"
               "     --clock-offset=SECONDS Tests only: run the clock SECONDS ahead, as if the\n"
               "                            daemon had been down that long\n"
               "     --bulk-load=CLOSED,OPEN\n"
               "                            Benchmarks and tests only: write CLOSED completed\n"
               "                            and OPEN running workflows into the state\n"
               "                            directory, then exit (the daemon must not run)\n\n"
               "See durabled(8).\n",
               FRAME_SIZE_MAX_DEFAULT, MSG_PAYLOAD_LIMIT_DEFAULT);
}

static int parse_size(const char *s, size_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || v > (1ULL << 30))
                return -EINVAL;
        if (*end == 'K' || *end == 'k')
                v <<= 10, end++;
        else if (*end == 'M')
                v <<= 20, end++;
        if (*end || v < 1024 || v > (1ULL << 30))
                return -EINVAL;
        *ret = (size_t) v;
        return 0;
}

/* A history limit: a count or a size ("50M", "512K") in [1, 2^40]. */
static int parse_limit(const char *s, bool size, uint64_t *ret) {
        unsigned long long v;
        char *end;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || s[0] == '-' || v > (1ULL << 40))
                return -EINVAL;
        if (size && (*end == 'K' || *end == 'k'))
                v <<= 10, end++;
        else if (size && *end == 'M')
                v <<= 20, end++;
        else if (size && *end == 'G')
                v <<= 30, end++;
        if (*end || v < 1 || v > (1ULL << 40))
                return -EINVAL;
        *ret = v;
        return 0;
}

/* A count in [1, @max] for the option --@name. */
static int parse_count(const char *name, const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (parse_limit(s, false, &v) < 0 || v > max)
                return log_error_errno(-EINVAL,
                                       "Invalid --%s=%s: expected a count from 1 to %" PRIu64, name,
                                       s, max);
        *ret = v;
        return 0;
}

static int parse_unsigned(const char *name, const char *s, unsigned *ret) {
        uint64_t v = 0;
        int r;

        r = parse_count(name, s, 1000000, &v);
        if (r < 0)
                return r;
        *ret = (unsigned) v;
        return 0;
}

/* "CLOSED,OPEN": two counts of at most 100,000,000 each. */
static int parse_bulk_load(const char *s) {
        unsigned long long closed, open;
        char *end;

        errno = 0;
        closed = strtoull(s, &end, 10);
        if (errno || end == s || *end != ',' || closed > 100000000 || s[0] == '-')
                return -EINVAL;
        s = end + 1;
        open = strtoull(s, &end, 10);
        if (errno || end == s || *end || open > 100000000 || s[0] == '-')
                return -EINVAL;
        arg_bulk_load = true;
        arg_bulk_closed = closed;
        arg_bulk_open = open;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_USER,
                ARG_SYSTEM,
                ARG_STATE_DIR,
                ARG_SOCKET,
                ARG_DURABILITY,
                ARG_MAX_FRAME,
                ARG_MAX_PAYLOAD,
                ARG_LOG_LEVEL,
                ARG_TIME_SKIPPING,
                ARG_BULK_LOAD,
                ARG_BUS_ADDRESS,
                ARG_NO_BUS,
                ARG_ACTIVITY_DIR,
                ARG_CLOCK_OFFSET,
                ARG_SCHEDULE_DIR,
                ARG_WAKE_SYSTEM,
                ARG_RETENTION,
                ARG_HISTORY_WARN_EVENTS,
                ARG_HISTORY_MAX_EVENTS,
                ARG_HISTORY_MAX_BYTES,
                ARG_MAX_UPDATES_IN_FLIGHT,
                ARG_MAX_UPDATES_PER_RUN,
                ARG_MAX_CONNECTIONS,
                ARG_MAX_POLLS,
                ARG_MAX_WAITS,
                ARG_MAX_ACTIVITY_PROCESSES,
                ARG_ADMIN_GROUP,
                ARG_RUN_LIMIT, /* + RunLimit: one value per per-run limit */
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "user", no_argument, NULL, ARG_USER },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "durability", required_argument, NULL, ARG_DURABILITY },
                { "max-frame-size", required_argument, NULL, ARG_MAX_FRAME },
                { "max-payload-size", required_argument, NULL, ARG_MAX_PAYLOAD },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "time-skipping", no_argument, NULL, ARG_TIME_SKIPPING },
                { "retention", required_argument, NULL, ARG_RETENTION },
                { "bulk-load", required_argument, NULL, ARG_BULK_LOAD },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "no-bus", no_argument, NULL, ARG_NO_BUS },
                { "activity-dir", required_argument, NULL, ARG_ACTIVITY_DIR },
                { "clock-offset", required_argument, NULL, ARG_CLOCK_OFFSET },
                { "schedule-dir", required_argument, NULL, ARG_SCHEDULE_DIR },
                { "wake-system", no_argument, NULL, ARG_WAKE_SYSTEM },
                { "history-warn-events", required_argument, NULL, ARG_HISTORY_WARN_EVENTS },
                { "history-max-events", required_argument, NULL, ARG_HISTORY_MAX_EVENTS },
                { "history-max-bytes", required_argument, NULL, ARG_HISTORY_MAX_BYTES },
                { "admin-group", required_argument, NULL, ARG_ADMIN_GROUP },
                { "max-connections", required_argument, NULL, ARG_MAX_CONNECTIONS },
                { "max-polls-per-connection", required_argument, NULL, ARG_MAX_POLLS },
                { "max-waits", required_argument, NULL, ARG_MAX_WAITS },
                { "max-activity-processes", required_argument, NULL, ARG_MAX_ACTIVITY_PROCESSES },
                { "max-pending-activities", required_argument, NULL,
                  ARG_RUN_LIMIT + RUN_LIMIT_PENDING_ACTIVITIES },
                { "max-pending-children", required_argument, NULL,
                  ARG_RUN_LIMIT + RUN_LIMIT_PENDING_CHILDREN },
                { "max-signals-per-run", required_argument, NULL,
                  ARG_RUN_LIMIT + RUN_LIMIT_SIGNALS },
                { "max-updates-in-flight", required_argument, NULL, ARG_MAX_UPDATES_IN_FLIGHT },
                { "max-updates-per-run", required_argument, NULL, ARG_MAX_UPDATES_PER_RUN },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("durabled %s\n", DURABLED_VERSION);
                        return 0;
                case ARG_USER:
                        arg_user = true;
                        break;
                case ARG_SYSTEM:
                        arg_user = false;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_DURABILITY:
                        if (streq(optarg, "full"))
                                arg_durability = STORE_DURABILITY_FULL;
                        else if (streq(optarg, "normal"))
                                arg_durability = STORE_DURABILITY_NORMAL;
                        else
                                return log_error_errno(-EINVAL,
                                                       "Invalid --durability=%s: "
                                                       "expected full or normal",
                                                       optarg);
                        break;
                case ARG_MAX_FRAME:
                        if (parse_size(optarg, &arg_max_frame_size) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --max-frame-size=%s: "
                                                       "expected 1024..1G bytes",
                                                       optarg);
                        break;
                case ARG_MAX_PAYLOAD:
                        if (parse_size(optarg, &arg_max_payload_size) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --max-payload-size=%s: "
                                                       "expected 1024..1G bytes",
                                                       optarg);
                        break;
                case ARG_ACTIVITY_DIR: {
                        const char **v;
                        if (optarg[0] != '/')
                                return log_error_errno(-EINVAL,
                                                       "Invalid --activity-dir=%s: expected an "
                                                       "absolute path",
                                                       optarg);
                        v = realloc(arg_activity_dirs, (arg_n_activity_dirs + 2) * sizeof(*v));
                        if (!v)
                                return log_error_errno(-ENOMEM, "Out of memory");
                        v[arg_n_activity_dirs++] = optarg;
                        v[arg_n_activity_dirs] = NULL;
                        arg_activity_dirs = v;
                        break;
                }
                case ARG_TIME_SKIPPING:
                        arg_time_skipping = true;
                        break;
                case ARG_BUS_ADDRESS:
                        if (!*optarg)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --bus-address=: expected a D-Bus "
                                                       "address such as unix:path=/run/bus");
                        arg_bus_address = optarg;
                        break;
                case ARG_NO_BUS:
                        arg_no_bus = true;
                        break;
                case ARG_WAKE_SYSTEM:
                        arg_wake_system = true;
                        break;
                case ARG_SCHEDULE_DIR:
                        arg_schedule_dir = optarg;
                        break;
                case ARG_CLOCK_OFFSET: {
                        char *end;

                        errno = 0;
                        arg_clock_offset_sec = strtoull(optarg, &end, 10);
                        if (errno || end == optarg || *end || optarg[0] == '-' ||
                            arg_clock_offset_sec > 100ULL * 366 * 24 * 3600)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --clock-offset=%s: expected "
                                                       "seconds (at most 100 years)",
                                                       optarg);
                        break;
                }
                case ARG_RETENTION:
                        if (retention_parse(optarg, &arg_retention_usec) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --retention=%s: expected a "
                                                       "duration such as 30d, 72h or 90m, or "
                                                       "infinity",
                                                       optarg);
                        break;
                case ARG_BULK_LOAD:
                        if (parse_bulk_load(optarg) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --bulk-load=%s: expected "
                                                       "CLOSED,OPEN (two counts)",
                                                       optarg);
                        break;
                case ARG_HISTORY_WARN_EVENTS:
                case ARG_HISTORY_MAX_EVENTS:
                        if (parse_limit(optarg, false,
                                        c == ARG_HISTORY_WARN_EVENTS ? &arg_history_warn_events
                                                                     : &arg_history_max_events) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --%s=%s: expected a count of "
                                                       "events, at least 1",
                                                       c == ARG_HISTORY_WARN_EVENTS
                                                               ? "history-warn-events"
                                                               : "history-max-events",
                                                       optarg);
                        break;
                case ARG_HISTORY_MAX_BYTES:
                        if (parse_limit(optarg, true, &arg_history_max_bytes) < 0)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --history-max-bytes=%s: expected "
                                                       "a size such as 50M",
                                                       optarg);
                        break;
                case ARG_ADMIN_GROUP:
                        if (manager_group_gid(optarg) == (gid_t) -1)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --admin-group=%s: no such group",
                                                       optarg);
                        arg_admin_group = optarg;
                        break;
                case ARG_MAX_CONNECTIONS:
                        if (parse_unsigned("max-connections", optarg, &arg_max_connections) < 0)
                                return -EINVAL;
                        break;
                case ARG_MAX_POLLS:
                        if (parse_unsigned("max-polls-per-connection", optarg,
                                           &arg_max_polls_per_connection) < 0)
                                return -EINVAL;
                        break;
                case ARG_MAX_WAITS:
                        if (parse_unsigned("max-waits", optarg, &arg_max_waits) < 0)
                                return -EINVAL;
                        break;
                case ARG_MAX_ACTIVITY_PROCESSES:
                        if (parse_unsigned("max-activity-processes", optarg,
                                           &arg_max_activity_processes) < 0)
                                return -EINVAL;
                        break;
                case ARG_RUN_LIMIT ... ARG_RUN_LIMIT + _RUN_LIMIT_MAX - 1:
                        if (parse_count(run_limit_option(c - ARG_RUN_LIMIT), optarg, UINT32_MAX,
                                        &arg_run_limits[c - ARG_RUN_LIMIT]) < 0)
                                return -EINVAL;
                        break;
                case ARG_MAX_UPDATES_IN_FLIGHT:
                case ARG_MAX_UPDATES_PER_RUN: {
                        bool in_flight = c == ARG_MAX_UPDATES_IN_FLIGHT;
                        uint64_t *v = in_flight ? &arg_max_updates_in_flight
                                                : &arg_max_updates_per_run;

                        if (parse_limit(optarg, false, v) < 0 || *v > UINT32_MAX)
                                return log_error_errno(-EINVAL,
                                                       "Invalid --%s=%s: expected a count of "
                                                       "updates, at least 1",
                                                       in_flight ? "max-updates-in-flight"
                                                                 : "max-updates-per-run",
                                                       optarg);
                        break;
                }
                case ARG_LOG_LEVEL: {
                        int l = log_level_from_string(optarg);
                        if (l < 0)
                                return log_error_errno(-EINVAL, "Invalid --log-level=%s", optarg);
                        log_set_max_level(l);
                        break;
                }
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'", argv[optind]);
        /* A payload travels in one frame, with the request's other fields around it. */
        if (arg_max_payload_size == 0)
                arg_max_payload_size = MIN((size_t) MSG_PAYLOAD_LIMIT_DEFAULT, arg_max_frame_size);
        else if (arg_max_payload_size > arg_max_frame_size)
                return log_error_errno(-EINVAL,
                                       "--max-payload-size=%zu is larger than --max-frame-size=%zu",
                                       arg_max_payload_size, arg_max_frame_size);
        msg_set_payload_limit(arg_max_payload_size);
        return 1;
}

/* DESIGN.md §4: user mode under $XDG_RUNTIME_DIR / $XDG_STATE_HOME, system mode under /run and
 * /var/lib; options override either. */
static int resolve_paths(void) {
        const char *e;

        if (!arg_socket && !arg_bulk_load) { /* the bulk loader does not listen */
                if (!arg_user)
                        arg_socket = "/run/durabled/io.sock";
                else if ((e = getenv("XDG_RUNTIME_DIR")) && *e) {
                        if (asprintf(&socket_buf, "%s/durabled/io.sock", e) < 0)
                                return -ENOMEM;
                        arg_socket = socket_buf;
                } else
                        return log_error_errno(-EINVAL, "$XDG_RUNTIME_DIR is not set; use "
                                                        "--socket=PATH");
        }
        if (!arg_state_dir) {
                if (!arg_user)
                        arg_state_dir = "/var/lib/durabled";
                else if ((e = getenv("XDG_STATE_HOME")) && *e) {
                        if (asprintf(&state_dir_buf, "%s/durabled", e) < 0)
                                return -ENOMEM;
                        arg_state_dir = state_dir_buf;
                } else if ((e = getenv("HOME")) && *e) {
                        if (asprintf(&state_dir_buf, "%s/.local/state/durabled", e) < 0)
                                return -ENOMEM;
                        arg_state_dir = state_dir_buf;
                } else
                        return log_error_errno(-EINVAL, "Neither $XDG_STATE_HOME nor $HOME is "
                                                        "set; use --state-dir=DIR");
        }
        if (!arg_schedule_dir) {
                if (!arg_user)
                        arg_schedule_dir = SYSCONFDIR "/durabled/schedules";
                else if ((e = getenv("XDG_CONFIG_HOME")) && *e) {
                        if (asprintf(&schedule_dir_buf, "%s/durabled/schedules", e) < 0)
                                return -ENOMEM;
                        arg_schedule_dir = schedule_dir_buf;
                } else if ((e = getenv("HOME")) && *e) {
                        if (asprintf(&schedule_dir_buf, "%s/.config/durabled/schedules", e) < 0)
                                return -ENOMEM;
                        arg_schedule_dir = schedule_dir_buf;
                }
        }
        return 0;
}

static int activation_fd(void) {
        int n = sd_listen_fds(true);

        if (n <= 0)
                return -1;
        if (n > 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
                return log_error_errno(-EINVAL,
                                       "Socket activation passed %d sockets; expected "
                                       "one listening Unix stream socket",
                                       n);
        return SD_LISTEN_FDS_START;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        ManagerConfig cfg;
        char **dirs = NULL;
        sigset_t mask;
        int r, fd;

        log_set_program("durabled");
        log_open();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        r = resolve_paths();
        if (r < 0)
                return r;
        clock_skip(arg_clock_offset_sec * 1000000);
        r = unit_dirs(arg_activity_dirs, arg_user, &dirs);
        if (r < 0)
                return log_error_errno(r, "Failed to list the activity directories: %m");
        cfg = (ManagerConfig){
                .state_dir = arg_state_dir,
                .socket_path = arg_socket,
                .user_mode = arg_user,
                .durability = arg_durability,
                .max_frame_size = arg_max_frame_size,
                .max_connections = arg_max_connections,
                .max_polls_per_connection = arg_max_polls_per_connection,
                .max_waiters = arg_max_waits,
                .max_activity_processes = arg_max_activity_processes,
                .admin_group = arg_admin_group,
                .time_skipping = arg_time_skipping,
                .bus_address = arg_bus_address,
                .no_bus = arg_no_bus,
                .activity_dirs = dirs,
                .schedule_dir = arg_schedule_dir,
                .wake_system = arg_wake_system,
                .retention_usec = arg_retention_usec,
                .history_warn_events = arg_history_warn_events,
                .history_max_events = arg_history_max_events,
                .history_max_bytes = arg_history_max_bytes,
                .max_updates_in_flight = (unsigned) arg_max_updates_in_flight,
                .max_updates_per_run = (unsigned) arg_max_updates_per_run,
        };
        memcpy(cfg.run_limits, arg_run_limits, sizeof(cfg.run_limits));
        /* sd-event delivers these through signalfd; they must be blocked first. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);  /* reloads the activity units */
        sigaddset(&mask, SIGCHLD); /* activity processes, through sd-event child sources */
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        r = manager_new(&m, &cfg);
        if (r >= 0 && arg_bulk_load) /* no socket, no loop: write and exit */
                r = bulkload_run(m, arg_bulk_closed, arg_bulk_open);
        else if (r >= 0) {
                fd = activation_fd();
                r = fd < -1 ? fd : manager_listen(m, fd);
                /* Before READY=1: the name is ours when the daemon says it is ready. */
                if (r >= 0)
                        r = api_bus_open(m);
                if (r >= 0)
                        r = manager_run(m);
        }
        m = manager_free(m);
        strv_free(dirs);
        return r;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);

        free(state_dir_buf);
        free(socket_buf);
        free(arg_activity_dirs);
        free(schedule_dir_buf);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
