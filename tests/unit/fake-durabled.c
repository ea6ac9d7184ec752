/* A stand-in for durabled, for the harness's own test (test-harness.c) only. It takes durabled's
 * command line (--user --state-dir DIR --socket PATH) plus --fake-mode=MODE and behaves as asked:
 *   ready    (default) listen on PATH, send READY=1, exit 0 on SIGTERM
 *   unclean  as ready, but exit 1 on SIGTERM
 *   die      send STATUS=failing and exit 3 before READY=1
 *   hang     never send READY=1; exit 0 on SIGTERM
 * Each start appends a line to DIR/starts and writes its arguments and some of its environment
 * to DIR/args and DIR/env, for the test to compare. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/cleanup.h"

static const char *arg_state_dir;
static const char *arg_socket;
static const char *arg_mode = "ready";

static int write_file(const char *dir, const char *name, const char *mode, const char *text) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, mode);
        if (!f)
                return -errno;
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -errno;
}

static int parse_argv(int argc, char **argv, char *args, size_t size) {
        bool user = false;

        for (int i = 1; i < argc; i++) {
                if (strlen(args) + strlen(argv[i]) + 2 < size) {
                        strcat(args, argv[i]);
                        strcat(args, "\n");
                }
                if (streq(argv[i], "--user"))
                        user = true;
                else if (streq(argv[i], "--state-dir") && i + 1 < argc)
                        arg_state_dir = argv[i + 1];
                else if (streq(argv[i], "--socket") && i + 1 < argc)
                        arg_socket = argv[i + 1];
                else if (strncmp(argv[i], "--fake-mode=", 12) == 0)
                        arg_mode = argv[i] + 12;
        }
        return user && arg_state_dir && arg_socket ? 0 : -EINVAL;
}

static int listen_on(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int main(int argc, char **argv) {
        char args[4096] = "", env[4096];
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        sigset_t ss;
        int sig;

        if (parse_argv(argc, argv, args, sizeof(args)) < 0) {
                fprintf(stderr, "fake-durabled: usage: --user --state-dir DIR --socket PATH\n");
                return 2;
        }
        if (stat(arg_state_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "fake-durabled: %s is not a directory\n", arg_state_dir);
                return 2;
        }
        snprintf(env, sizeof(env), "DURABLED_SOCKET=%s\nFAKE_VAR=%s\nJOURNAL_STREAM=%s\n",
                 getenv("DURABLED_SOCKET") ?: "", getenv("FAKE_VAR") ?: "",
                 getenv("JOURNAL_STREAM") ?: "");
        if (write_file(arg_state_dir, "starts", "a", "start\n") < 0 ||
            write_file(arg_state_dir, "args", "w", args) < 0 ||
            write_file(arg_state_dir, "env", "w", env) < 0)
                return 2;

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);

        if (streq(arg_mode, "die")) {
                (void) sd_notify(0, "STATUS=failing");
                return 3;
        }
        if (!streq(arg_mode, "hang")) {
                fd = listen_on(arg_socket);
                if (fd < 0)
                        return 2;
                (void) sd_notify(0, "STATUS=starting");
                (void) sd_notify(0, "READY=1\nSTATUS=ready");
        }
        while (sigwait(&ss, &sig) != 0)
                ;
        (void) unlink(arg_socket);
        return streq(arg_mode, "unclean") ? 1 : 0;
}
