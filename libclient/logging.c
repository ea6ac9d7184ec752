/* The log sink of libdurable: one process-wide function set by dur_set_log_func(). Worker threads
 * log concurrently with a possible dur_set_log_func() call, so the pair (function, userdata) is
 * read and written under a mutex and the function is called outside it. A message is formatted
 * only when a sink is installed. */

#define _GNU_SOURCE 1 /* vasprintf() */

#include "libclient/logging.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "durable/durable.h"

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static dur_log_fn sink_fn;
static void *sink_userdata;

DUR_PUBLIC void dur_set_log_func(dur_log_fn fn, void *userdata) {
        pthread_mutex_lock(&sink_lock);
        sink_fn = fn;
        sink_userdata = userdata;
        pthread_mutex_unlock(&sink_lock);
}

static dur_log_fn sink_get(void **ret_userdata) {
        dur_log_fn fn;

        pthread_mutex_lock(&sink_lock);
        fn = sink_fn;
        *ret_userdata = sink_userdata;
        pthread_mutex_unlock(&sink_lock);
        return fn;
}

bool dur_log_enabled(void) {
        void *userdata;

        return sink_get(&userdata) != NULL;
}

_printf_(2, 0) static void log_va(int level, const char *fmt, va_list ap) {
        int saved = errno; /* "%m" must see the caller's errno, not ours */
        void *userdata;
        dur_log_fn fn = sink_get(&userdata);
        _cleanup_free_ char *big = NULL;
        char small[512];
        va_list aq;
        int n;

        if (!fn)
                return;
        va_copy(aq, ap);
        errno = saved;
        n = vsnprintf(small, sizeof(small), fmt, ap);
        if (n >= (int) sizeof(small)) {
                /* A long message is allocated; if that fails, the truncated one is better than
                 * none. */
                errno = saved;
                if (vasprintf(&big, fmt, aq) < 0)
                        big = NULL;
        }
        va_end(aq);
        fn(level, big ?: small, userdata);
        errno = saved;
}

void dur_log(int level, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_va(level, fmt, ap);
        va_end(ap);
}

int dur_log_errno(int level, int error, const char *fmt, ...) {
        va_list ap;

        errno = -error;
        va_start(ap, fmt);
        log_va(level, fmt, ap);
        va_end(ap);
        return error;
}
