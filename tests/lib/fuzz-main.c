/* Replays fuzzer inputs without libFuzzer: every file named on the command line, and every regular
 * file in a directory named there (sorted), goes once through LLVMFuzzerTestOneInput(). A crash is
 * the failure; sanitizers report it. No input at all is a skip (77), so a target without a corpus
 * yet shows up as SKIP instead of passing silently. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "tests/lib/fuzz.h"

#define INPUT_MAX (64u * 1024 * 1024)

/* Reads @path whole; returns 0 or -errno. */
static int read_file(const char *path, uint8_t **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t done = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_size > INPUT_MAX)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1); /* libFuzzer never hands out NULL */
        if (!buf)
                return -ENOMEM;
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = done;
        return 0;
}

static int run_file(const char *path) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = read_file(path, &data, &size);
        if (r < 0) {
                fprintf(stderr, "fuzz-main: cannot read %s: %s\n", path, strerror(-r));
                return r;
        }
        printf("%s (%zu bytes)\n", path, size);
        fflush(stdout); /* name the input before a crash can */
        (void) LLVMFuzzerTestOneInput(data, size);
        return 0;
}

static int run_dir(const char *dir, unsigned *n_inputs) {
        struct dirent **names = NULL;
        int n, r = 0;

        n = scandir(dir, &names, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "fuzz-main: cannot list %s: %s\n", dir, strerror(errno));
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                char *path = NULL;
                struct stat st;

                if (names[i]->d_name[0] != '.' &&
                    asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0)
                        path = NULL;
                if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                        if (run_file(path) < 0)
                                r = -EIO;
                        (*n_inputs)++;
                }
                free(path);
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        unsigned n_inputs = 0;
        int r = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        if (errno == ENOENT)
                                continue; /* no corpus directory yet */
                        fprintf(stderr, "fuzz-main: %s: %s\n", argv[i], strerror(errno));
                        return EXIT_FAILURE;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (run_dir(argv[i], &n_inputs) < 0)
                                r = -EIO;
                } else {
                        if (run_file(argv[i]) < 0)
                                r = -EIO;
                        n_inputs++;
                }
        }
        if (r < 0)
                return EXIT_FAILURE;
        printf("%u inputs\n", n_inputs);
        return n_inputs > 0 ? EXIT_SUCCESS : 77;
}
