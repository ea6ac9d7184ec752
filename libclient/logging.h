#pragma once
/* libdurable's own diagnostics (internal). libdurable never writes to stderr (STYLE.md §7): every
 * message goes to the sink the application installed with dur_set_log_func(), or nowhere.
 * Levels are syslog's (LOG_ERR ... LOG_DEBUG). */

#include <stdbool.h>
#include <syslog.h>

#include "common/cleanup.h"

/* True when a sink is installed, so callers can skip building expensive messages. */
bool dur_log_enabled(void);
void dur_log(int level, const char *fmt, ...) _printf_(2, 3);
/* Logs with errno set to -@error (so "%m" names it) and returns @error, which must be negative:
 * "return dur_log_errno(LOG_ERR, r, "Failed to poll task queue '%s': %m", q);" */
int dur_log_errno(int level, int error, const char *fmt, ...) _printf_(3, 4);

/* Public entry points check their arguments with this (STYLE.md §8): a caller's mistake is logged
 * at debug level and answered with @ret instead of an abort. */
#define assert_return(expr, ret)                                                                   \
        do {                                                                                       \
                if (__builtin_expect(!(expr), 0)) {                                                \
                        dur_log(LOG_DEBUG, "Assertion '%s' failed at %s:%u, function %s()", #expr, \
                                __FILE__, __LINE__, __func__);                                     \
                        return (ret);                                                              \
                }                                                                                  \
        } while (0)
