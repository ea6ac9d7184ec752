/* Fuzzes the activity-unit parser (daemon/activity-unit.h, durabled.activity(5)): any file either
 * loads into a unit with a name, an absolute program and sane settings, or is refused with -EINVAL
 * and a message "path:line: ..." or "path: ..." that names the file. The input is written to one
 * file of a temporary directory made once per process (the parser reads files, as the daemon
 * does). User= and Group= resolve names through NSS; the corpus uses only root and nobody. */

#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/activity-unit.h"
#include "tests/lib/fuzz.h"

static char path[4096];

static void cleanup(void) {
        char *slash;

        (void) unlink(path);
        slash = strrchr(path, '/');
        if (slash) {
                *slash = 0;
                (void) rmdir(path);
        }
}

static void setup(void) {
        const char *tmp = getenv("TMPDIR");
        char dir[4000];

        snprintf(dir, sizeof(dir), "%s/fuzz-activity-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/fuzz.activity", dir);
        atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(activity_unit_freep) ActivityUnit *u = NULL;
        _cleanup_free_ char *err = NULL;
        int fd, r;

        if (!path[0])
                setup();
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert(fd >= 0);
        assert(write(fd, data, size) == (ssize_t) size);
        assert(close(fd) == 0);

        r = activity_unit_load(path, &u, &err);
        if (r < 0) {
                assert(r == -EINVAL || r == -ENOMEM);
                assert(r != -EINVAL || (err && strncmp(err, path, strlen(path)) == 0 &&
                                        (err[strlen(path)] == ':')));
                assert(!u);
                return 0;
        }
        assert(u && u->name && u->name[0]);
        assert(u->exec_argv && u->exec_argv[0] && u->exec_argv[0][0] == '/');
        assert(u->max_concurrent <= 100000);
        assert(u->retry_backoff == 0 || u->retry_backoff >= 1.0);
        assert(!u->retry_max_usec || !u->retry_initial_usec ||
               u->retry_max_usec >= u->retry_initial_usec);
        assert(u->kill_signal > 0);
        return 0;
}
