/* The pager; see pager.h.
 *
 * The pager is a child reading a pipe that replaces our stdout. We ignore SIGPIPE while it runs:
 * a user who quits the pager early makes our writes fail (EPIPE), which is harmless, instead of
 * killing durablectl with a misleading exit status. We also ignore SIGINT, so that Ctrl-C in the
 * pager does not leave it behind, orphaned, on the terminal. */

#include "cli/pager.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/output.h"

static pid_t pager_pid;

static const char *pager_command(void) {
        const char *p = getenv("DURABLECTL_PAGER");

        if (!p)
                p = getenv("PAGER");
        if (!p)
                return "less";
        if (!*p || streq(p, "cat"))
                return NULL;
        return p;
}

/* Runs in the child: stdin is the pipe; never returns. */
_noreturn_ static void pager_exec(const char *command) {
        (void) setenv("LESS", "FRSXMK", 0);
        execl("/bin/sh", "sh", "-c", command, (char *) NULL);
        _exit(EXIT_FAILURE);
}

void pager_open(void) {
        const char *command = pager_command();
        int fds[2];
        pid_t pid;

        if (pager_pid > 0 || !command || !isatty(STDOUT_FILENO))
                return;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return; /* without a pager the output is still complete */
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                (void) safe_close(fds[0]);
                (void) safe_close(fds[1]);
                return;
        }
        if (pid == 0) {
                if (dup2(fds[0], STDIN_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                pager_exec(command);
        }
        (void) signal(SIGPIPE, SIG_IGN);
        (void) signal(SIGINT, SIG_IGN); /* Ctrl-C belongs to the pager ("less -K" quits) */
        if (dup2(fds[1], STDOUT_FILENO) < 0)
                (void) ctl_error_errno(errno, "Failed to redirect output to the pager: %m");
        (void) safe_close(fds[0]);
        (void) safe_close(fds[1]);
        pager_pid = pid;
}

void pager_close(void) {
        if (pager_pid <= 0)
                return;
        fflush(stdout);
        (void) close(STDOUT_FILENO); /* EOF for the pager */
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pager_pid = 0;
}
