/* Running durabled for the benchmark; see daemon.h.
 *
 * Readiness is the daemon's own READY=1 on a NOTIFY_SOCKET we own (as the integration tests do),
 * never a sleep. The state directory is made under $TMPDIR, else /var/tmp, which is disk on
 * most systems: a state directory on tmpfs would make every fsync free and the figures a lie. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/daemon.h"
#include "common/cleanup.h"

#define NOTIFY_MAX 4096
#define STOP_TIMEOUT_USEC (10 * 1000 * 1000)

extern char **environ;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static void rm_rf(const char *dir) {
        (void) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_dir(BenchDaemon *d) {
        const char *tmp = getenv("TMPDIR");
        char *dir;

        if (asprintf(&dir, "%s/durable-bench.XXXXXX", tmp && *tmp ? tmp : "/var/tmp") < 0)
                return -ENOMEM;
        if (!mkdtemp(dir)) {
                free(dir);
                return -errno;
        }
        d->dir = dir;
        if (asprintf(&d->socket_path, "%s/io.sock", dir) < 0 ||
            asprintf(&d->log_path, "%s/durabled.log", dir) < 0)
                return -ENOMEM;
        return 0;
}

static int notify_open(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* environ without NOTIFY_SOCKET, plus @notify_var; the strings are borrowed. */
static char **child_env(char *notify_var) {
        size_t n = 0, k = 0;
        char **env;

        while (environ[n])
                n++;
        env = calloc(n + 2, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
                        env[k++] = environ[i];
        env[k] = notify_var;
        return env;
}

/* In the child: never returns. */
static _noreturn_ void child_exec(const char *binary, char *const argv[], char *const envp[],
                                  int log_fd) {
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
                _exit(127);
        execve(binary, argv, envp);
        _exit(127);
}

static int spawn(BenchDaemon *d, const char *binary, const char *durability, const char *notify) {
        _cleanup_free_ char *notify_var = NULL, *dur_arg = NULL, *state = NULL;
        _cleanup_free_ char **envp = NULL;
        _cleanup_close_ int log_fd = -EBADF;
        pid_t pid;

        if (asprintf(&notify_var, "NOTIFY_SOCKET=%s", notify) < 0 ||
            asprintf(&dur_arg, "--durability=%s", durability) < 0 ||
            asprintf(&state, "%s/state", d->dir) < 0)
                return -ENOMEM;
        char *argv[] = { (char *) binary, "--user", "--state-dir", state, "--socket",
                         d->socket_path, dur_arg, NULL };
        envp = child_env(notify_var);
        if (!envp)
                return -ENOMEM;
        log_fd = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(binary, argv, envp, log_fd);
        d->pid = pid;
        return 0;
}

/* Reads what the notify socket holds; 1 once a datagram said READY=1. */
static int notify_ready(int fd) {
        char buf[NOTIFY_MAX + 1];

        for (;;) {
                ssize_t n = recv(fd, buf, NOTIFY_MAX, MSG_DONTWAIT);

                if (n < 0)
                        return errno == EAGAIN ? 0 : errno == EINTR ? 0 : -errno;
                buf[n] = 0;
                for (char *save, *line = strtok_r(buf, "\n", &save); line;
                     line = strtok_r(NULL, "\n", &save))
                        if (streq(line, "READY=1"))
                                return 1;
        }
}

static int wait_ready(BenchDaemon *d, int fd, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int r = notify_ready(fd), status;

                if (r != 0)
                        return r < 0 ? r : 0;
                if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
                        d->pid = 0;
                        return -ECHILD;
                }
                if (now_usec() >= deadline)
                        return -ETIMEDOUT;
                (void) poll(&pfd, 1, 100); /* short slices: also watch for the child's exit */
        }
}

/* Starts the daemon in d->dir (a fresh notify socket each time) and waits for READY=1. */
static int start_in_dir(BenchDaemon *d, const char *binary, const char *durability,
                        uint64_t timeout_usec) {
        _cleanup_free_ char *notify = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (asprintf(&notify, "%s/notify", d->dir) < 0)
                return -ENOMEM;
        (void) unlink(notify); /* left by an earlier start */
        fd = notify_open(notify);
        if (fd < 0)
                return fd;
        r = spawn(d, binary, durability, notify);
        if (r < 0)
                return r;
        return wait_ready(d, fd, timeout_usec);
}

int bench_daemon_start(BenchDaemon *d, const char *binary, const char *durability,
                       uint64_t timeout_usec) {
        int r;

        *d = (BenchDaemon){};
        r = make_dir(d);
        if (r < 0)
                return r;
        return start_in_dir(d, binary, durability, timeout_usec);
}

int bench_daemon_restart(BenchDaemon *d, const char *binary, const char *durability,
                         uint64_t timeout_usec) {
        int r = bench_daemon_halt(d);

        if (r < 0)
                return r;
        return start_in_dir(d, binary, durability, timeout_usec);
}

int bench_daemon_bulk_load(const BenchDaemon *d, const char *binary, const char *durability,
                           uint64_t n_closed, uint64_t n_open) {
        _cleanup_free_ char *load = NULL, *dur_arg = NULL, *state = NULL;
        _cleanup_close_ int log_fd = -EBADF;
        int status;
        pid_t pid;

        if (d->pid > 0)
                return -EBUSY; /* one writer at a time (DESIGN.md §3) */
        if (asprintf(&load, "--bulk-load=%llu,%llu", (unsigned long long) n_closed,
                     (unsigned long long) n_open) < 0 ||
            asprintf(&dur_arg, "--durability=%s", durability) < 0 ||
            asprintf(&state, "%s/state", d->dir) < 0)
                return -ENOMEM;
        char *argv[] = { (char *) binary, "--user", "--state-dir", state, dur_arg, load, NULL };
        log_fd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(binary, argv, environ, log_fd);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* waitpid() with a deadline: the status, or -ETIMEDOUT. */
static int wait_exit(pid_t pid, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;
        int status;

        for (;;) {
                pid_t p = waitpid(pid, &status, WNOHANG);

                if (p == pid)
                        return status;
                if (p < 0 && errno != EINTR)
                        return -errno;
                if (now_usec() >= deadline)
                        return -ETIMEDOUT;
                (void) usleep(10 * 1000);
        }
}

int bench_daemon_halt(BenchDaemon *d) {
        int r = 0;

        if (d->pid > 0) {
                (void) kill(d->pid, SIGTERM);
                r = wait_exit(d->pid, STOP_TIMEOUT_USEC);
                if (r == -ETIMEDOUT) {
                        (void) kill(d->pid, SIGKILL);
                        (void) wait_exit(d->pid, STOP_TIMEOUT_USEC);
                }
                d->pid = 0;
        }
        return r;
}

int bench_daemon_stop(BenchDaemon *d) {
        int r = bench_daemon_halt(d);

        if (d->dir)
                rm_rf(d->dir);
        free(d->dir);
        free(d->socket_path);
        free(d->log_path);
        *d = (BenchDaemon){};
        return r;
}

double daemon_cpu_seconds(pid_t pid) {
        unsigned long long utime, stime;
        char path[64], buf[1024], *p;
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -EIO;
        buf[n] = 0;
        /* The command name may hold spaces and parentheses: fields count from the last ')'.
         * After it come state (field 3) ... utime (14) and stime (15). */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                         &stime) != 2)
                return -EBADMSG;
        return (double) (utime + stime) / (double) sysconf(_SC_CLK_TCK);
}

pid_t socket_peer_pid(const char *socket_path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct ucred cred;
        socklen_t len = sizeof(cred);
        _cleanup_close_ int fd = -EBADF;

        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        return cred.pid;
}
