#pragma once
/* Logging for the daemon and the CLI. Levels are syslog's: the maximum is info, or
 * $DURABLED_LOG_LEVEL, else $SYSTEMD_LOG_LEVEL, at log_open(); --log-level overrides them. When
 * stderr is connected to the journal ($JOURNAL_STREAM matches), records go through
 * sd_journal_sendv() with structured fields (WORKFLOW_ID, RUN_ID, WORKFLOW_TYPE, ACTIVITY_ID, so
 * that `journalctl WORKFLOW_ID=order-42` tells one workflow's story); otherwise they are stderr
 * lines with sd-daemon's "<N>" level prefix (or a "prog: " prefix on a terminal).
 * log_*_errno() return the negative error they were given, so "return log_error_errno(r, ...)"
 * logs once at the boundary (STYLE.md §4). */

#include <stdarg.h>
#include <syslog.h>

#include "common/cleanup.h"

void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);
void log_set_program(const char *name);
void log_open(void); /* decides the target once; call after parsing options */

int log_internal(
        int level, int error, const char *file, int line, const char *func, const char *fmt, ...)
        _printf_(6, 7);
/* Adds WORKFLOW_ID= and RUN_ID= journal fields (NULL ones are left out). */
int log_wf_internal(int level, int error, const char *wid, const char *run_id, const char *fmt, ...)
        _printf_(5, 6);

/* The journal fields of a record about one workflow; NULL ones are left out. */
typedef struct LogFields {
        const char *workflow_id;
        const char *run_id;
        const char *workflow_type;
        const char *activity_id;
} LogFields;
int log_fields_internal(int level, int error, const LogFields *f, const char *fmt, ...)
        _printf_(4, 5);
/* A line an activity process wrote to stderr, with WORKFLOW_ID=, RUN_ID=, ACTIVITY_ID= and
 * ATTEMPT= journal fields. */
void log_activity_line(int level,
                       const char *wid,
                       const char *run_id,
                       const char *activity_id,
                       unsigned attempt,
                       const char *msg);

#define log_full_errno(level, error, ...)                                                 \
        ({                                                                                \
                int _l = (level), _e = (error);                                           \
                _l <= log_get_max_level()                                                 \
                        ? log_internal(_l, _e, __FILE__, __LINE__, __func__, __VA_ARGS__) \
                        : -abs(_e);                                                       \
        })
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
#define log_fields(level, f, ...) \
        ((level) <= log_get_max_level() ? log_fields_internal(level, 0, f, __VA_ARGS__) : 0)
#define log_wf(level, wid, run_id, ...) \
        ((level) <= log_get_max_level() ? log_wf_internal(level, 0, wid, run_id, __VA_ARGS__) : 0)
