#pragma once
/* The daemon under test. bench_daemon_start() runs durabled on a fresh mkdtemp() directory
 * (state, socket, notify socket and its log live there) and returns once it sent READY=1;
 * bench_daemon_stop() stops it (SIGTERM, then SIGKILL) and removes the directory. The child gets
 * PR_SET_PDEATHSIG=SIGKILL, so a bench that dies cannot leave it running.
 * daemon_cpu_seconds() and socket_peer_pid() also serve a daemon the bench did not start. */

#include <stdint.h>
#include <sys/types.h>

typedef struct BenchDaemon {
        pid_t pid;
        char *dir;         /* owned; removed by bench_daemon_stop() */
        char *socket_path; /* owned */
        char *log_path;    /* owned: the daemon's stdout and stderr */
} BenchDaemon;

/* @binary: durabled's path; @durability: "full" or "normal". Call before any thread starts (it
 * forks). -ECHILD when the daemon exited before READY=1, -ETIMEDOUT after @timeout_usec. */
int bench_daemon_start(BenchDaemon *d, const char *binary, const char *durability,
                       uint64_t timeout_usec);
/* Returns the daemon's exit status as waitpid() gives it, or -errno; frees everything in @d. */
int bench_daemon_stop(BenchDaemon *d);
/* Stops the daemon (SIGTERM, then SIGKILL) but keeps its directory; its waitpid() status, or 0
 * when it was not running. */
int bench_daemon_halt(BenchDaemon *d);
/* Halts the daemon if it runs and starts it again on the same state directory and socket. */
int bench_daemon_restart(BenchDaemon *d, const char *binary, const char *durability,
                         uint64_t timeout_usec);
/* Runs "@binary --bulk-load=@n_closed,@n_open" on the state directory of the halted daemon @d
 * (its output goes to the log) and waits for it: 0, -EBUSY while the daemon runs, -EIO when
 * the loader failed. Forks: call from the thread that started the daemon. */
int bench_daemon_bulk_load(const BenchDaemon *d, const char *binary, const char *durability,
                           uint64_t n_closed, uint64_t n_open);

/* utime + stime of @pid in seconds, -errno when unreadable. */
double daemon_cpu_seconds(pid_t pid);
/* The pid of the process listening on @socket_path (SO_PEERCRED of a connection), or -errno. */
pid_t socket_peer_pid(const char *socket_path);
