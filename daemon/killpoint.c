/* See killpoint.h. */

#include "daemon/killpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if DURABLED_FAULT_INJECTION
/* Tells the harness where the kill lands. The kernel keeps what was written when the process
 * dies, so no fsync is needed. */
static void log_kill(const char *name) {
        const char *path = getenv("DURABLED_KILL_LOG");
        char line[128];
        int fd, n;

        if (!path)
                return;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        n = snprintf(line, sizeof(line), "%s\n", name);
        if (n > 0)
                (void) !write(fd, line, (size_t) n);
        (void) close(fd);
}

void killpoint(const char *name) {
        static unsigned long hits;
        const char *spec = getenv("DURABLED_KILL_AT");
        size_t n = strlen(name);

        if (!spec || strncmp(spec, name, n) != 0 || spec[n] != ':')
                return;
        if (++hits == strtoul(spec + n + 1, NULL, 10)) {
                log_kill(name);
                (void) raise(SIGKILL);
        }
}
#endif
