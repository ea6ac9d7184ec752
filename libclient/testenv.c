/* The test environment (libdurable(3), "Test environment"): a private durabled for one test, on a
 * fresh temporary state directory and socket, optionally on the virtual clock (--time-skipping:
 * while a client waits for a result and nothing runs, the daemon's clock jumps to the next
 * deadline, so a 24 h timer fires at once), as Temporal's WorkflowEnvironment does.
 *
 * The daemon is told to be ready through a notify socket the environment owns (sd_notify's
 * READY=1), never by sleeping. Its stderr goes to the test's stderr. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "durable/durable.h"
#include "libclient/logging.h"

#define READY_TIMEOUT_MS 30000

struct dur_test_env {
        char *dir;
        char *socket_path;
        char *notify_path;
        pid_t pid;
};

/* Removes the files of @dir and then @dir (the daemon's state directory is one level deeper). */
static int rm_dir(const char *dir, unsigned depth) {
        DIR *d = opendir(dir);
        struct dirent *de;
        char *p;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
                        break;
                if (de->d_type == DT_DIR && depth > 0)
                        (void) rm_dir(p, depth - 1);
                else
                        (void) unlink(p);
                free(p);
        }
        closedir(d);
        return rmdir(dir) < 0 ? -errno : 0;
}

static int notify_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, one = 1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Waits for READY=1 on @fd; -ECHILD when the daemon exited first, -ETIMEDOUT. */
static int wait_ready(dur_test_env *e, int fd) {
        for (int waited = 0; waited < READY_TIMEOUT_MS; waited += 100) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char buf[4096];
                ssize_t n;

                if (poll(&p, 1, 100) > 0)
                        while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
                                buf[n] = 0;
                                for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
                                        if (strcmp(l, "READY=1") == 0)
                                                return 0;
                        }
                if (waitpid(e->pid, NULL, WNOHANG) == e->pid) {
                        e->pid = 0;
                        return -ECHILD;
                }
        }
        return -ETIMEDOUT;
}

/* In the child: nothing that allocates (the test may have threads). */
static void child_exec(char **argv, const dur_test_env *e) {
        if (setenv("NOTIFY_SOCKET", e->notify_path, 1) < 0)
                _exit(127);
        (void) unsetenv("DURABLED_SOCKET");
        execvp(argv[0], argv);
        _exit(127);
}

/* The daemon's command line, built before fork(). */
static int build_argv(const char *bin,
                      const dur_test_env *e,
                      const dur_test_env_opts *o,
                      char **argv,
                      size_t max,
                      char **ret_state,
                      char **ret_socket) {
        size_t n = 0;

        if (asprintf(ret_state, "--state-dir=%s/state", e->dir) < 0)
                return -ENOMEM;
        if (asprintf(ret_socket, "--socket=%s", e->socket_path) < 0)
                return -ENOMEM;
        argv[n++] = (char *) bin;
        argv[n++] = (char *) "--user";
        argv[n++] = *ret_state;
        argv[n++] = *ret_socket;
        if (o && o->time_skipping)
                argv[n++] = (char *) "--time-skipping";
        for (size_t i = 0; o && o->extra_args && o->extra_args[i]; i++) {
                if (n >= max - 1)
                        return -E2BIG;
                argv[n++] = (char *) o->extra_args[i];
        }
        argv[n] = NULL;
        return 0;
}

DUR_PUBLIC dur_test_env *dur_test_env_free(dur_test_env *e) {
        if (!e)
                return NULL;
        if (e->pid > 0) {
                (void) kill(e->pid, SIGKILL);
                (void) waitpid(e->pid, NULL, 0);
        }
        if (e->dir)
                (void) rm_dir(e->dir, 1);
        free(e->dir);
        free(e->socket_path);
        free(e->notify_path);
        free(e);
        return NULL;
}

DUR_PUBLIC int dur_test_env_start(dur_test_env **ret, const dur_test_env_opts *opts) {
        const char *bin = opts && opts->durabled ? opts->durabled : getenv("DURABLED_BIN");
        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *templ = NULL, *state_arg = NULL, *socket_arg = NULL;
        char *argv[64];
        dur_test_env *e;
        int fd, r;

        assert_return(ret, -EINVAL);
        if (!bin || !*bin)
                bin = "durabled";
        if (asprintf(&templ, "%s/durabled-env-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
                return -ENOMEM;
        if (!mkdtemp(templ))
                return -errno;
        e = calloc(1, sizeof(*e));
        if (!e) {
                (void) rmdir(templ);
                return -ENOMEM;
        }
        e->dir = TAKE_PTR(templ);
        if (asprintf(&e->socket_path, "%s/io.sock", e->dir) < 0 ||
            asprintf(&e->notify_path, "%s/notify.sock", e->dir) < 0) {
                dur_test_env_free(e);
                return -ENOMEM;
        }
        r = build_argv(bin, e, opts, argv, ELEMENTSOF(argv), &state_arg, &socket_arg);
        fd = r < 0 ? r : notify_socket(e->notify_path);
        if (fd < 0) {
                dur_test_env_free(e);
                return fd;
        }
        e->pid = fork();
        if (e->pid < 0) {
                r = -errno;
                close(fd);
                dur_test_env_free(e);
                return r;
        }
        if (e->pid == 0)
                child_exec(argv, e);
        r = wait_ready(e, fd);
        close(fd);
        if (r < 0) {
                dur_log(LOG_DEBUG, "durabled (%s) did not become ready: %s", bin, strerror(-r));
                dur_test_env_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

DUR_PUBLIC const char *dur_test_env_socket(const dur_test_env *e) {
        return e ? e->socket_path : NULL;
}

DUR_PUBLIC int dur_test_env_connect(dur_test_env *e, dur_client **ret) {
        assert_return(e && ret, -EINVAL);
        return dur_client_connect(ret, e->socket_path);
}

DUR_PUBLIC int dur_test_env_stop(dur_test_env *e) {
        int status, r = 0;

        assert_return(e, -EINVAL);
        if (e->pid > 0) {
                if (kill(e->pid, SIGTERM) < 0)
                        return -errno;
                if (waitpid(e->pid, &status, 0) < 0)
                        return -errno;
                e->pid = 0;
                r = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
        }
        dur_test_env_free(e);
        return r;
}
