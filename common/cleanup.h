#pragma once
/* Scope-bound cleanup: _cleanup_(f) runs f(&var) when var leaves scope; TAKE_PTR/TAKE_FD hand
 * ownership on and leave the variable empty. The only cleanup dialect in the tree (STYLE.md §5). */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Defines <f>p(T **) that calls f(T *) when the pointer is set. */
#define DEFINE_CLEANUP(T, f)             \
        static inline void f##p(T **p) { \
                if (*p)                  \
                        (void) f(*p);    \
        }

#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _tp = (p); \
                (p) = NULL;              \
                _tp;                     \
        })
#define TAKE_FD(fd)             \
        ({                      \
                int _tf = (fd); \
                (fd) = -EBADF;  \
                _tf;            \
        })

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define streq(a, b) (strcmp((a), (b)) == 0)
