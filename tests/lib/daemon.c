/* The integration-test harness; see daemon.h. Processes are tracked through pidfds, so every wait
 * is a poll() with a deadline, never a sleep loop. Everything a child runs between fork() and
 * execve() is async-signal-safe, because tests may have threads (libdurable's) when they spawn. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2(), mkdtemp() with TMPDIR, struct ucred */
#endif

#include "tests/lib/daemon.h"

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_USEC (30 * TEST_USEC_PER_SEC)
#define NOTIFY_MAX 4096

extern char **environ;

/* Variables a daemon must not inherit from whatever runs the tests: a service manager's
 * notification, activation and journal settings would redirect or confuse it. */
static const char *const env_scrub[] = { "NOTIFY_SOCKET", "DURABLED_SOCKET", "JOURNAL_STREAM",
                                         "LISTEN_PID",    "LISTEN_FDS",      "LISTEN_FDNAMES",
                                         "WATCHDOG_PID",  "WATCHDOG_USEC",   NULL };

static uint64_t now_usec(void) {
        struct timespec ts;

        assert(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
        return (uint64_t) ts.tv_sec * TEST_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* poll() timeout in ms until @deadline, rounded up; 0 once it passed. */
static int remaining_ms(uint64_t deadline) {
        uint64_t now = now_usec();

        if (now >= deadline)
                return 0;
        return (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX);
}

uint64_t test_timeout_usec(void) {
        const char *e = getenv("DURABLED_TEST_TIMEOUT_SEC");
        char *end;
        unsigned long long s;

        if (!e || !*e)
                return DEFAULT_TIMEOUT_USEC;
        errno = 0;
        s = strtoull(e, &end, 10);
        if (errno != 0 || *end || s == 0 || s > UINT32_MAX)
                return DEFAULT_TIMEOUT_USEC;
        return s * TEST_USEC_PER_SEC;
}

static double usec_to_sec(uint64_t usec) {
        return (double) usec / (double) TEST_USEC_PER_SEC;
}

static uint64_t timeout_or_default(uint64_t timeout_usec) {
        return timeout_usec > 0 ? timeout_usec : test_timeout_usec();
}

const char *test_bin_at(const char *env_name, const char *file, int line) {
        const char *p = getenv(env_name);

        if (!p || !*p)
                test_fail(file, line, "$%s is not set; run this test through \"meson test\"",
                          env_name);
        return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int test_rm_rf(const char *path) {
        if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 0;
}

char *test_mkdtemp(void) {
        const char *tmp = getenv("TMPDIR");
        char *dir;

        if (!tmp || !*tmp)
                tmp = "/tmp";
        if (asprintf(&dir, "%s/durabled-test-XXXXXX", tmp) < 0)
                return NULL;
        if (!mkdtemp(dir)) {
                int saved = errno;
                free(dir);
                errno = saved;
                return NULL;
        }
        return dir;
}

static char *path_join(const char *a, const char *b) {
        char *p;

        return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

/* The executable for @name: @name itself when it holds a '/', else the first match in $PATH. */
static char *find_exec(const char *name) {
        const char *path = getenv("PATH");

        if (strchr(name, '/'))
                return strdup(name);
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");
                char *f;

                if (asprintf(&f, "%.*s/%s", (int) n, p, name) < 0)
                        return NULL;
                if (n > 0 && access(f, X_OK) == 0)
                        return f;
                free(f);
                p += n + (p[n] == ':');
        }
        return NULL;
}

static bool env_name_in(const char *entry, const char *const *list) {
        size_t n = strcspn(entry, "=");

        for (; list && *list; list++) {
                size_t m = strcspn(*list, "=");
                if (n == m && strncmp(entry, *list, n) == 0)
                        return true;
        }
        return false;
}

/* environ without the variables in @scrub or @add, followed by @add. The strings are borrowed. */
static char **env_build(const char *const *scrub, const char *const *add) {
        size_t n = 0, k = 0;
        char **env;

        for (char **e = environ; *e; e++)
                n++;
        for (const char *const *a = add; a && *a; a++)
                n++;
        env = calloc(n + 1, sizeof(char *));
        if (!env)
                return NULL;
        for (char **e = environ; *e; e++)
                if (!env_name_in(*e, scrub) && !env_name_in(*e, add))
                        env[k++] = *e;
        for (const char *const *a = add; a && *a; a++)
                env[k++] = (char *) *a;
        return env;
}

/* In the child, between fork() and execve(): only async-signal-safe calls. */
static _noreturn_ void child_exec(const char *path,
                                  const char *const *argv,
                                  char **envp,
                                  const int fds[3],
                                  int cgroup_procs,
                                  pid_t parent,
                                  int errpipe) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t all;
        int r;

        /* Die with the test, whatever kills it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                goto fail;
        for (int sig = 1; sig < _NSIG; sig++)
                (void) sigaction(sig, &sa, NULL);
        /* Into the daemon's own cgroup, before it can start anything. */
        if (cgroup_procs >= 0 && write(cgroup_procs, "0", 1) != 1)
                goto fail;
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        for (int i = 0; i < 3; i++) {
                if (fds[i] < 0)
                        continue;
                if (fds[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(fds[i], i) < 0)
                        goto fail;
        }
        execve(path, (char *const *) argv, envp);
fail:
        r = errno;
        (void) !write(errpipe, &r, sizeof(r));
        _exit(127);
}

static void process_on_fail(void *userdata) {
        TestProcess *p = userdata;

        if (p->pid <= 0)
                return;
        (void) kill(p->pid, SIGKILL);
        (void) waitpid(p->pid, NULL, 0);
        fprintf(stderr, "test: killed %s[%d]\n", p->name ? p->name : "?", (int) p->pid);
        p->pid = 0;
}

static void process_reaped(TestProcess *p, int status) {
        p->exit_status = status;
        p->pid = 0;
        p->pidfd = safe_close(p->pidfd);
        test_fail_hook_remove(&p->hook);
}

/* Forks and execs; @fds are the child's stdin/stdout/stderr (-1: inherit). Returns 0, or -errno
 * when the exec failed (the child is then reaped). */
static int process_spawn_in(TestProcess *p,
                            const char *const *argv,
                            char **envp,
                            const int fds[3],
                            int cgroup_procs) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int rd = -EBADF, wr = -EBADF;
        int pipefd[2], err = 0;
        pid_t parent = getpid(), pid;
        ssize_t n;

        assert(p->pid <= 0);
        assert(argv && argv[0]);
        path = find_exec(argv[0]);
        if (!path)
                return -ENOENT;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        rd = pipefd[0];
        wr = pipefd[1];

        fflush(NULL); /* nothing buffered may reach the child twice */
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(path, argv, envp, fds, cgroup_procs, parent, wr);

        wr = safe_close(wr);
        do
                n = read(rd, &err, sizeof(err));
        while (n < 0 && errno == EINTR);
        if (n > 0) {
                (void) waitpid(pid, NULL, 0);
                return -(err > 0 ? err : EIO);
        }

        free(p->name);
        p->name = strdup(strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]);
        p->pid = pid;
        p->pidfd = pidfd_open(pid, 0);
        if (p->pidfd < 0) {
                int r = -errno;
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                p->pid = 0;
                return r;
        }
        test_fail_hook_add(&p->hook, process_on_fail, p);
        return 0;
}

static int process_spawn(TestProcess *p, const char *const *argv, char **envp, const int fds[3]) {
        return process_spawn_in(p, argv, envp, fds, -1);
}

void test_process_spawn_at(TestProcess *p,
                           const char *const *argv,
                           const char *const *env,
                           const char *file,
                           int line) {
        _cleanup_free_ char **envp = NULL;
        _cleanup_close_ int null_fd = -EBADF;
        int fds[3] = { -1, -1, -1 }, r;
        char buf[128];

        if (p->pid > 0)
                test_fail(file, line, "%s[%d] is still running", p->name, (int) p->pid);
        envp = env_build(NULL, env);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (!envp || null_fd < 0)
                test_fail(file, line, "Failed to prepare spawning %s", argv[0]);
        fds[0] = null_fd;
        r = process_spawn(p, argv, envp, fds);
        if (r < 0)
                test_fail(file, line, "Failed to execute %s: %s", argv[0], test_errno_str(r, buf));
}

int test_process_wait(TestProcess *p, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_or_default(timeout_usec);
        int status;

        assert(p->pid > 0);
        for (;;) {
                struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
                int r = poll(&pfd, 1, remaining_ms(deadline));

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                break;
        }
        while (waitpid(p->pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        process_reaped(p, status);
        return status;
}

int test_process_kill_at(TestProcess *p, int sig, const char *file, int line) {
        char buf[128];
        int r;

        if (p->pid <= 0)
                test_fail(file, line, "Cannot send signal %d to %s: it is not running", sig,
                          p->name ? p->name : "a process that never started");
        if (pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0)
                test_fail(file, line, "Failed to send signal %d to %s[%d]: %s", sig, p->name,
                          (int) p->pid, test_errno_str(-errno, buf));
        r = test_process_wait(p, 0);
        if (r == -ETIMEDOUT)
                test_fail(file, line, "%s[%d] did not exit within %g s of signal %s", p->name,
                          (int) p->pid, usec_to_sec(test_timeout_usec()), sigabbrev_np(sig) ?: "?");
        if (r < 0)
                test_fail(file, line, "Failed to wait for %s[%d]: %s", p->name, (int) p->pid,
                          test_errno_str(r, buf));
        return r;
}

void test_process_free(TestProcess *p) {
        if (p->pid > 0) {
                (void) pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0);
                (void) test_process_wait(p, 0);
        }
        if (p->pid > 0) /* SIGKILL did not end it within the timeout: give up on it. */
                process_reaped(p, -1);
        free(p->name);
        *p = (TestProcess){ .exit_status = -1 };
}

const char *test_exit_status_str(int status, char buf[static 64]) {
        if (status < 0)
                snprintf(buf, 64, "not exited");
        else if (WIFEXITED(status))
                snprintf(buf, 64, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, 64, "killed by signal %s%s", sigabbrev_np(WTERMSIG(status)) ?: "?",
                         WCOREDUMP(status) ? " (core dumped)" : "");
        else
                snprintf(buf, 64, "wait status 0x%x", (unsigned) status);
        return buf;
}

/* ---- durabled ---- */

static void daemon_cgroup_remove(TestDaemon *d);

static void daemon_dir_on_fail(void *userdata) {
        TestDaemon *d = userdata;

        daemon_cgroup_remove(d);
        if (getenv("DURABLED_TEST_KEEP")) {
                fprintf(stderr, "test: kept %s\n", d->dir);
                return;
        }
        (void) test_rm_rf(d->dir);
        fprintf(stderr, "test: removed %s (set DURABLED_TEST_KEEP=1 to keep it)\n", d->dir);
}

/* ---- the daemon's cgroup ---- */

/* The cgroup2 mount point joined with the test's own cgroup path, or NULL. */
static char *own_cgroup(void) {
        char *line = NULL, *mnt = NULL, *own = NULL, *ret = NULL;
        size_t size = 0;
        FILE *f;

        f = fopen("/proc/self/mountinfo", "re");
        while (f && getline(&line, &size, f) > 0) {
                char path[4096];
                const char *sep = strstr(line, " - ");
                if (sep && strncmp(sep, " - cgroup2 ", 11) == 0 &&
                    sscanf(line, "%*s %*s %*s %*s %4095s", path) == 1) {
                        mnt = strdup(path);
                        break;
                }
        }
        if (f)
                fclose(f);
        f = fopen("/proc/self/cgroup", "re");
        while (f && getline(&line, &size, f) > 0)
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = 0;
                        own = strdup(line + 3);
                        break;
                }
        if (f)
                fclose(f);
        if (mnt && own && asprintf(&ret, "%s%s", mnt, streq(own, "/") ? "" : own) < 0)
                ret = NULL;
        free(line);
        free(mnt);
        free(own);
        return ret;
}

int test_cgroup_wait_empty(const char *cgroup, uint64_t timeout_usec) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *path = NULL;
        uint64_t deadline = now_usec() + timeout_or_default(timeout_usec);
        char buf[256];

        if (asprintf(&path, "%s/cgroup.events", cgroup) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                /* The kernel signals every change of cgroup.events with POLLPRI. */
                struct pollfd pfd = { .fd = fd, .events = POLLPRI };
                ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
                if (n < 0)
                        return -errno;
                buf[n] = 0;
                if (strstr(buf, "populated 0"))
                        return 0;
                if (remaining_ms(deadline) == 0)
                        return -ETIMEDOUT;
                if (poll(&pfd, 1, remaining_ms(deadline)) < 0 && errno != EINTR)
                        return -errno;
        }
}

static int cgroup_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_DP)
                (void) rmdir(path); /* cgroup files cannot be unlinked; rmdir takes them along */
        return 0;
}

/* Kills what is left in the daemon's cgroup (its activities) and removes it. */
static void daemon_cgroup_remove(TestDaemon *d) {
        _cleanup_free_ char *kill_path = NULL;
        int fd;

        if (!d->cgroup)
                return;
        if (asprintf(&kill_path, "%s/cgroup.kill", d->cgroup) >= 0 &&
            (fd = open(kill_path, O_WRONLY | O_CLOEXEC)) >= 0) {
                (void) !write(fd, "1", 1);
                close(fd);
        }
        (void) test_cgroup_wait_empty(d->cgroup, 0);
        (void) nftw(d->cgroup, cgroup_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Every daemon runs in a cgroup of its own below the test's, so that its activity cgroups and
 * start-up clean-up never touch another test's (DESIGN.md §7). Best effort: without cgroup v2
 * the daemon runs where the test runs and says why process activities cannot run. */
static void daemon_cgroup_setup(TestDaemon *d) {
        _cleanup_free_ char *own = own_cgroup();
        const char *base = strrchr(d->dir, '/');

        if (!own || asprintf(&d->cgroup, "%s/%s", own, base ? base + 1 : d->dir) < 0) {
                d->cgroup = NULL;
                return;
        }
        if (mkdir(d->cgroup, 0755) < 0) {
                free(d->cgroup);
                d->cgroup = NULL;
        }
}

static int daemon_dir_setup(TestDaemon *d) {
        struct sockaddr_un sa;

        d->dir = test_mkdtemp();
        if (!d->dir)
                return -errno;
        d->state_dir = path_join(d->dir, "state");
        d->socket_path = path_join(d->dir, "io.sock");
        d->notify_path = path_join(d->dir, "notify.sock");
        if (!d->state_dir || !d->socket_path || !d->notify_path)
                return -ENOMEM;
        if (strlen(d->socket_path) >= sizeof(sa.sun_path) ||
            strlen(d->notify_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG; /* $TMPDIR is too long for a socket path */
        if (mkdir(d->state_dir, 0700) < 0)
                return -errno;
        daemon_cgroup_setup(d);
        test_fail_hook_add(&d->dir_hook, daemon_dir_on_fail, d);
        return 0;
}

static int notify_socket_open(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int one = 1;

        (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* Closes any file descriptors a notification carried (FDSTORE=1, systemd-notify's BARRIER=1) and
 * returns the sender's pid. */
static pid_t notify_cmsgs(struct msghdr *mh) {
        pid_t sender = 0;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type == SCM_RIGHTS) {
                        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < n; i++) {
                                int fd;
                                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                safe_close(fd);
                        }
                } else if (c->cmsg_type == SCM_CREDENTIALS &&
                           c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
                        struct ucred uc;
                        memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                        sender = uc.pid;
                }
        }
        return sender;
}

static void notify_parse(TestDaemon *d, char *msg, pid_t sender, bool *ready) {
        printf("test: notification from pid %d (durabled is %d):", (int) sender, (int) d->proc.pid);
        for (char *line = msg, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                printf(" %s", line);
                if (streq(line, "READY=1"))
                        *ready = true;
                else if (strncmp(line, "STATUS=", 7) == 0) {
                        free(d->status);
                        d->status = strdup(line + 7);
                }
        }
        printf("\n");
}

/* Reads every queued notification; sets *ready when one said READY=1. A datagram too big for
 * the notify protocol is ignored. Senders are not filtered by pid: `systemd-notify` sends with
 * its own, and the socket is new for every start, so only this daemon (or its children) knows it. */
static int notify_drain(TestDaemon *d, int fd, bool *ready) {
        for (;;) {
                char buf[NOTIFY_MAX + 1];
                union {
                        struct cmsghdr align;
                        uint8_t buf[CMSG_SPACE(sizeof(struct ucred)) +
                                    CMSG_SPACE(sizeof(int) * 16)];
                } control;
                struct iovec iov = { .iov_base = buf, .iov_len = NOTIFY_MAX };
                struct msghdr mh = { .msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = &control,
                                     .msg_controllen = sizeof(control) };
                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                pid_t sender;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                sender = notify_cmsgs(&mh);
                if (n > NOTIFY_MAX || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
                        continue;
                buf[n] = 0;
                notify_parse(d, buf, sender, ready);
        }
}

/* Waits for READY=1 on @fd: 0, -ECHILD when the daemon exited first (it is reaped), -ETIMEDOUT. */
static int daemon_wait_ready(TestDaemon *d, int fd, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;
        bool ready = false;
        int r;

        for (;;) {
                struct pollfd pfd[2] = {
                        { .fd = fd, .events = POLLIN },
                        { .fd = d->proc.pidfd, .events = POLLIN },
                };

                r = notify_drain(d, fd, &ready);
                if (r < 0)
                        return r;
                if (ready)
                        return 0;
                r = poll(pfd, 2, remaining_ms(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                if (pfd[1].revents & POLLIN) {
                        /* It exited: whatever it said last is queued already. */
                        (void) notify_drain(d, fd, &ready);
                        if (ready)
                                return 0;
                        r = test_process_wait(&d->proc, 0);
                        return r < 0 ? r : -ECHILD;
                }
        }
}

static char **daemon_argv(TestDaemon *d, const char *bin) {
        const char *fixed[] = { bin,          "--user",   "--state-dir",
                                d->state_dir, "--socket", d->socket_path };
        size_t n = ELEMENTSOF(fixed), k = 0;
        char **argv;

        for (const char *const *a = d->opts.args; a && *a; a++)
                n++;
        argv = calloc(n + 1, sizeof(char *));
        if (!argv)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                argv[k++] = (char *) fixed[i];
        for (const char *const *a = d->opts.args; a && *a; a++)
                argv[k++] = (char *) *a;
        return argv;
}

/* The daemon's extra environment: NOTIFY_SOCKET, DURABLED_SOCKET, then opts.env. */
static char **daemon_env(TestDaemon *d, char **ret_notify, char **ret_socket) {
        size_t n = 2, k = 0;
        const char **add;
        char **env;

        if (asprintf(ret_notify, "NOTIFY_SOCKET=%s", d->notify_path) < 0)
                return NULL;
        if (asprintf(ret_socket, "DURABLED_SOCKET=%s", d->socket_path) < 0)
                return NULL;
        for (const char *const *e = d->opts.env; e && *e; e++)
                n++;
        add = calloc(n + 1, sizeof(char *));
        if (!add)
                return NULL;
        add[k++] = *ret_notify;
        add[k++] = *ret_socket;
        for (const char *const *e = d->opts.env; e && *e; e++)
                add[k++] = *e;
        env = env_build(env_scrub, add);
        free(add);
        return env;
}

/* test_daemon_try_start(); set-up errors fail the test naming @file:@line. */
static int daemon_try_start(TestDaemon *d, const TestDaemonOpts *o, const char *file, int line) {
        _cleanup_free_ char **argv = NULL, **envp = NULL;
        _cleanup_free_ char *notify_var = NULL, *socket_var = NULL;
        _cleanup_close_ int notify_fd = -EBADF, null_fd = -EBADF, procs_fd = -EBADF;
        const char *bin = test_bin_at("DURABLED_BIN", file, line);
        int fds[3] = { -1, -1, -1 }, r;
        char buf[128];

        if (d->proc.pid > 0)
                return -EBUSY;
        if (o)
                d->opts = *o;
        if (!d->dir) {
                r = daemon_dir_setup(d);
                if (r < 0)
                        test_fail(file, line, "Failed to set up a test directory: %s",
                                  test_errno_str(r, buf));
        }
        free(d->status);
        d->status = NULL;

        notify_fd = notify_socket_open(d->notify_path);
        if (notify_fd < 0)
                test_fail(file, line, "Failed to create %s: %s", d->notify_path,
                          test_errno_str(notify_fd, buf));
        argv = daemon_argv(d, bin);
        envp = daemon_env(d, &notify_var, &socket_var);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (!argv || !envp || null_fd < 0)
                test_fail(file, line, "Failed to prepare starting %s", bin);
        fds[0] = null_fd;

        printf("test: starting");
        for (char **a = argv; *a; a++)
                printf(" %s", *a);
        printf("\n");
        /* A restart goes into the leaf the daemon moved itself to: once it enabled controllers
         * for its children, its own cgroup may hold no process. */
        if (d->cgroup) {
                char path[4096];

                snprintf(path, sizeof(path), "%s/supervisor/cgroup.procs", d->cgroup);
                procs_fd = open(path, O_WRONLY | O_CLOEXEC);
                snprintf(path, sizeof(path), "%s/cgroup.procs", d->cgroup);
                if (procs_fd < 0)
                        procs_fd = open(path, O_WRONLY | O_CLOEXEC);
        }
        r = process_spawn_in(&d->proc, (const char *const *) argv, envp, fds, procs_fd);
        if (r < 0)
                test_fail(file, line, "Failed to execute %s: %s", bin, test_errno_str(r, buf));

        r = daemon_wait_ready(d, notify_fd, timeout_or_default(d->opts.timeout_usec));
        (void) unlink(d->notify_path);
        if (r == -ETIMEDOUT)
                test_process_free(&d->proc);
        if (r < 0)
                return r;

        d->n_starts++;
        if (setenv("DURABLED_SOCKET", d->socket_path, 1) < 0)
                return -errno;
        return 0;
}

int test_daemon_try_start(TestDaemon *d, const TestDaemonOpts *o) {
        return daemon_try_start(d, o, __FILE__, __LINE__);
}

void test_daemon_start_at(TestDaemon *d, const TestDaemonOpts *o, const char *file, int line) {
        char buf[128], sbuf[64];
        int r;

        r = daemon_try_start(d, o, file, line);
        if (r == -ECHILD)
                test_fail(file, line, "durabled %s before READY=1 (last STATUS=%s)",
                          test_exit_status_str(d->proc.exit_status, sbuf),
                          d->status ? d->status : "none");
        if (r == -ETIMEDOUT)
                test_fail(file, line, "durabled did not send READY=1 within %g s",
                          usec_to_sec(timeout_or_default(d->opts.timeout_usec)));
        if (r < 0)
                test_fail(file, line, "Failed to start durabled: %s", test_errno_str(r, buf));
}

void test_daemon_restart_at(TestDaemon *d, const char *file, int line) {
        if (!d->dir)
                test_fail(file, line, "Cannot restart a daemon that was never started");
        if (d->proc.pid > 0)
                test_daemon_stop_at(d, file, line);
        test_daemon_start_at(d, NULL, file, line);
}

void test_daemon_stop_at(TestDaemon *d, const char *file, int line) {
        char buf[64];
        int status;

        status = test_process_kill_at(&d->proc, SIGTERM, file, line);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                test_fail(file, line, "durabled did not exit cleanly on SIGTERM: %s",
                          test_exit_status_str(status, buf));
}

int test_daemon_wait_exit(TestDaemon *d, uint64_t timeout_usec) {
        if (d->proc.pid <= 0)
                return -ESRCH;
        return test_process_wait(&d->proc, timeout_usec);
}

int test_daemon_connect(TestDaemon *d) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (!d->socket_path)
                return -ENOTCONN;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, d->socket_path, sizeof(sa.sun_path) - 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return TAKE_FD(fd);
}

void test_daemon_free(TestDaemon *d) {
        const char *s;

        if (d->proc.pid > 0)
                test_daemon_stop_at(d, __FILE__, __LINE__);
        test_process_free(&d->proc);
        test_fail_hook_remove(&d->dir_hook);
        daemon_cgroup_remove(d);
        free(d->cgroup);
        if (d->dir && getenv("DURABLED_TEST_KEEP"))
                printf("test: kept %s\n", d->dir);
        else if (d->dir)
                (void) test_rm_rf(d->dir);
        s = getenv("DURABLED_SOCKET");
        if (s && d->socket_path && streq(s, d->socket_path))
                (void) unsetenv("DURABLED_SOCKET");
        free(d->dir);
        free(d->state_dir);
        free(d->socket_path);
        free(d->notify_path);
        free(d->status);
        *d = (TestDaemon){ .proc.exit_status = -1 };
}

/* ---- running a command to completion ---- */

typedef struct Capture {
        int fd;
        char *buf;
        size_t len, size;
} Capture;

/* Reads what is available; returns 1 at EOF, 0 otherwise, -errno on error. */
static int capture_read(Capture *c) {
        for (;;) {
                ssize_t n;

                if (c->size - c->len < 4096) {
                        size_t size = MAX(c->size * 2, (size_t) 8192);
                        char *b = realloc(c->buf, size);
                        if (!b)
                                return -ENOMEM;
                        c->buf = b;
                        c->size = size;
                        c->buf[c->len] = 0;
                }
                n = read(c->fd, c->buf + c->len, c->size - c->len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                if (n == 0)
                        return 1;
                c->len += (size_t) n;
                c->buf[c->len] = 0;
        }
}

/* Feeds @input to the child's stdin (a socket, so that MSG_NOSIGNAL spares us SIGPIPE). */
static int input_write(int *fd, const char **input) {
        ssize_t n = send(*fd, *input, strlen(*input), MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n < 0 && errno != EPIPE)
                return -errno;
        *input += n < 0 ? strlen(*input) : (size_t) n;
        if (!**input)
                *fd = safe_close(*fd); /* EOF for the child */
        return 0;
}

/* Pumps stdin/stdout/stderr until both outputs reach EOF; -ETIMEDOUT past @deadline. */
static int run_pump(Capture cap[2], int *in_fd, const char *input, uint64_t deadline) {
        for (;;) {
                struct pollfd pfd[3] = {
                        { .fd = cap[0].fd, .events = POLLIN },
                        { .fd = cap[1].fd, .events = POLLIN },
                        { .fd = *in_fd, .events = POLLOUT },
                };
                int r;

                if (cap[0].fd < 0 && cap[1].fd < 0)
                        return 0;
                r = poll(pfd, 3, remaining_ms(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                for (int i = 0; i < 2; i++) {
                        if (!pfd[i].revents)
                                continue;
                        r = capture_read(&cap[i]);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                cap[i].fd = safe_close(cap[i].fd);
                }
                if (pfd[2].revents) {
                        r = input_write(in_fd, &input);
                        if (r < 0)
                                return r;
                }
        }
}

static void run_echo(const char *const *argv, const TestRun *r) {
        char buf[64];

        printf("test: $");
        for (const char *const *a = argv; *a; a++)
                printf(" %s", *a);
        printf("  # %s\n", test_exit_status_str(r->status, buf));
        if (r->err && *r->err)
                printf("test: stderr: %s%s", r->err,
                       r->err[strlen(r->err) - 1] == '\n' ? "" : "\n");
}

int test_run_at(
        TestRun *r, const char *const *argv, const TestRunOpts *o, const char *file, int line) {
        _cleanup_(test_process_free) TestProcess p = { .exit_status = -1 };
        _cleanup_free_ char **envp = NULL;
        _cleanup_close_ int in_fd = -EBADF, in_child = -EBADF;
        Capture cap[2] = { { .fd = -EBADF }, { .fd = -EBADF } };
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, ret;
        const TestRunOpts none = {};
        uint64_t deadline;
        char buf[128];

        o = o ? o : &none;
        deadline = now_usec() + timeout_or_default(o->timeout_usec);
        *r = (TestRun){ .status = -1, .exit_code = -1 };
        envp = env_build(NULL, o->env);
        if (!envp || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
                test_fail(file, line, "Failed to prepare running %s", argv[0]);
        if (o->input) {
                int sp[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                        test_fail(file, line, "Failed to prepare running %s", argv[0]);
                in_fd = sp[0];
                in_child = sp[1];
                (void) shutdown(in_fd, SHUT_RD);
        } else
                in_child = open("/dev/null", O_RDONLY | O_CLOEXEC);

        ret = process_spawn(&p, argv, envp, (int[3]){ in_child, out[1], err[1] });
        in_child = safe_close(in_child);
        safe_close(out[1]);
        safe_close(err[1]);
        cap[0].fd = out[0];
        cap[1].fd = err[0];
        if (ret < 0) {
                safe_close(out[0]);
                safe_close(err[0]);
                test_fail(file, line, "Failed to execute %s: %s", argv[0],
                          test_errno_str(ret, buf));
        }
        (void) fcntl(out[0], F_SETFL, O_NONBLOCK);
        (void) fcntl(err[0], F_SETFL, O_NONBLOCK);
        if (in_fd >= 0 && !*o->input)
                in_fd = safe_close(in_fd);

        ret = run_pump(cap, &in_fd, o->input, deadline);
        safe_close(cap[0].fd);
        safe_close(cap[1].fd);
        if (ret >= 0)
                ret = test_process_wait(&p, deadline - MIN(now_usec(), deadline) ?: 1);
        r->out = cap[0].buf ? cap[0].buf : strdup("");
        r->err = cap[1].buf ? cap[1].buf : strdup("");
        if (ret == -ETIMEDOUT)
                test_fail(file, line, "%s did not finish within %g s", argv[0],
                          usec_to_sec(timeout_or_default(o->timeout_usec)));
        if (ret < 0)
                test_fail(file, line, "Failed to run %s: %s", argv[0], test_errno_str(ret, buf));
        r->status = ret;
        r->exit_code = WIFEXITED(ret) ? WEXITSTATUS(ret) : -1;
        run_echo(argv, r);
        return r->exit_code;
}

void test_run_free(TestRun *r) {
        free(r->out);
        free(r->err);
        *r = (TestRun){ .status = -1, .exit_code = -1 };
}
