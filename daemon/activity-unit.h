#pragma once
/* Activity units (durabled.activity(5)): *.activity files in systemd unit syntax that declare an
 * activity type the daemon runs itself, as a process in its own cgroup (DESIGN.md §7). This module
 * parses them strictly (every error names file:line, a unit with one error is refused whole) and
 * keeps the loaded set: the units, and the load errors that `durablectl activity-types` shows.
 *
 * Directories are searched in order of precedence; a file name found in an earlier directory masks
 * the same name in a later one (as systemd's /etc masks /usr/lib). The set is replaced as a whole
 * on reload; the manager owns it. */

#include <stdbool.h>
#include <stdint.h>

#include "common/cleanup.h"
#include "common/list.h"
#include "daemon/ratelimit.h"

#define UNIT_LIMIT_UNSET UINT64_MAX

typedef struct ActivityUnit ActivityUnit;
typedef struct UnitError UnitError;
typedef struct UnitSet UnitSet;

struct ActivityUnit {
        char *name; /* Name=, defaults to the file name without ".activity" */
        char *path;
        char *description;
        char **exec_argv; /* ExecStart= words, specifiers still unexpanded */
        char *task_queue; /* NULL: activities of this type on any queue */
        uint64_t start_to_close_usec;
        uint64_t schedule_to_close_usec;
        uint64_t heartbeat_usec;
        uint64_t retry_initial_usec;    /* 0 = Temporal's default */
        double retry_backoff;           /* 0 = default */
        uint64_t retry_max_usec;        /* 0 = default */
        uint64_t retry_max_attempts;    /* UNIT_LIMIT_UNSET = default (unlimited) */
        uint8_t non_retryable_exit[32]; /* bitmap of exit statuses 0..255 */
        unsigned max_concurrent;        /* 0 = no limit of its own */
        unsigned priority;              /* Priority=: 1..5, 0 = the workflow's */
        uint32_t rate_limit;            /* RateLimit= starts per rate_period_usec; 0 = none */
        uint64_t rate_period_usec;
        uint32_t rate_burst; /* RateLimitBurst=, default 1 */
        RateBucket bucket;   /* the starts so far (activity.c); not parsed */
        char *user;
        char *group;
        char *working_directory;
        char **environment;       /* "NAME=value" */
        char **environment_files; /* "-/path" ignores a missing file */
        uint64_t memory_max;      /* bytes; UNIT_LIMIT_UNSET = none */
        uint64_t tasks_max;       /* UNIT_LIMIT_UNSET = none */
        uint64_t cpu_quota_pct;   /* percent of one CPU; 0 = none */
        int kill_signal;
        uint64_t timeout_stop_usec;
        unsigned running; /* attempts running now (activity.c) */
        LIST_FIELDS(ActivityUnit, units);
};

struct UnitError {
        char *file; /* the file name */
        char *path;
        char *message; /* "path:line: what is wrong" */
        LIST_FIELDS(UnitError, errors);
};

struct UnitSet {
        ActivityUnit *units;
        UnitError *errors;
        unsigned n_units, n_errors;
};

/* The default directories for @user_mode, in precedence order, after @extra (NULL-terminated, may
 * be NULL; --activity-dir). Returns a NULL-terminated array to strv_free(). */
int unit_dirs(const char *const *extra, bool user_mode, char ***ret);
char **strv_free(char **v);

/* Parses one file. On a parse error returns -EINVAL and a "path:line: message" in @ret_error
 * (to free()); other errors are negative errno. */
int activity_unit_load(const char *path, ActivityUnit **ret, char **ret_error);
ActivityUnit *activity_unit_free(ActivityUnit *u);
DEFINE_CLEANUP(ActivityUnit, activity_unit_free);

/* Loads every *.activity file of @dirs; bad files become UnitErrors, never a failure. */
int unit_set_load(UnitSet **ret, char *const *dirs);
UnitSet *unit_set_free(UnitSet *s);
DEFINE_CLEANUP(UnitSet, unit_set_free);
/* The unit that runs activities of @type scheduled on @queue, or NULL. */
ActivityUnit *unit_set_find(UnitSet *s, const char *type, const char *queue);
ActivityUnit *unit_set_get(UnitSet *s, const char *name);

/* Expands %w (workflow id), %r (run id), %a (activity id), %A (attempt), %n (unit name), %% in
 * @word. */
int unit_expand(const char *word,
                const char *workflow_id,
                const char *run_id,
                const char *activity_id,
                unsigned attempt,
                const char *unit_name,
                char **ret);
/* Splits a value into words with systemd's quoting ("...", '...', backslash escapes). */
int unit_split_words(const char *value, char ***ret);
/* "30", "1min 30s", "500ms": a time span in usec (plain numbers are seconds). */
int unit_parse_timespan(const char *s, uint64_t *ret);
