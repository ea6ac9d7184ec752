/* Activity unit files; see activity-unit.h and durabled.activity(5).
 *
 * The syntax is systemd's unit syntax, parsed strictly: "[Section]" headers, "Key=value" lines,
 * '#' and ';' comments, a trailing backslash continues a line. Sections: [Unit] (Description=)
 * and [Activity] (every other key). An unknown section or key, a key outside a section, a line
 * without '=' or a bad value refuses the whole unit with "path:line: message". libsystemd does
 * not export its parser, hence this small one. */

#include "daemon/activity-unit.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNIT_FILE_MAX (64 * 1024)
#define UNIT_SUFFIX ".activity"

char **strv_free(char **v) {
        if (v)
                for (char **i = v; *i; i++)
                        free(*i);
        free(v);
        return NULL;
}

static size_t strv_length(char *const *v) {
        size_t n = 0;

        while (v && v[n])
                n++;
        return n;
}

/* Appends @s (taken) to *@v. */
static int strv_push(char ***v, char *s) {
        size_t n = strv_length(*v);
        char **nv;

        if (!s)
                return -ENOMEM;
        nv = realloc(*v, (n + 2) * sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[n] = s;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

int unit_dirs(const char *const *extra, bool user_mode, char ***ret) {
        char **v = NULL, *p;
        const char *e;
        int r = 0;

        for (size_t i = 0; extra && extra[i] && r >= 0; i++)
                r = strv_push(&v, strdup(extra[i]));
        if (r >= 0 && user_mode) {
                if ((e = getenv("XDG_CONFIG_HOME")) && *e)
                        r = asprintf(&p, "%s/durabled/activities", e) < 0 ? -ENOMEM
                                                                          : strv_push(&v, p);
                else if ((e = getenv("HOME")) && *e)
                        r = asprintf(&p, "%s/.config/durabled/activities", e) < 0
                                    ? -ENOMEM
                                    : strv_push(&v, p);
        }
        if (r >= 0)
                r = strv_push(&v, strdup("/etc/durabled/activities"));
        if (r >= 0)
                r = strv_push(&v, strdup("/usr/lib/durabled/activities"));
        if (r < 0) {
                strv_free(v);
                return r;
        }
        *ret = v;
        return 0;
}

/* ---- values ---- */

int unit_split_words(const char *s, char ***ret) {
        char **v = NULL, *w = NULL;
        size_t n = 0, len = strlen(s);
        int r;

        /* Each word is at most as long as the value. */
        for (;;) {
                char quote = 0;

                while (*s == ' ' || *s == '\t')
                        s++;
                if (!*s)
                        break;
                w = malloc(len + 1);
                if (!w)
                        goto oom;
                n = 0;
                for (; *s; s++) {
                        if (!quote && (*s == ' ' || *s == '\t'))
                                break;
                        if (!quote && (*s == '"' || *s == '\'')) {
                                quote = *s;
                                continue;
                        }
                        if (quote && *s == quote) {
                                quote = 0;
                                continue;
                        }
                        if (*s == '\\' && quote != '\'') {
                                s++;
                                switch (*s) {
                                case 'n':
                                        w[n++] = '\n';
                                        continue;
                                case 't':
                                        w[n++] = '\t';
                                        continue;
                                case '\\':
                                case '"':
                                case '\'':
                                case ' ':
                                        w[n++] = *s;
                                        continue;
                                default:
                                        free(w);
                                        strv_free(v);
                                        return -EBADMSG; /* unknown escape or trailing '\' */
                                }
                        }
                        w[n++] = *s;
                }
                if (quote) {
                        free(w);
                        strv_free(v);
                        return -EPROTO; /* unterminated quote */
                }
                w[n] = 0;
                r = strv_push(&v, w);
                w = NULL;
                if (r < 0)
                        goto oom;
        }
        if (!v && !(v = calloc(1, sizeof(char *))))
                goto oom;
        *ret = v;
        return 0;
oom:
        free(w);
        strv_free(v);
        return -ENOMEM;
}

static int parse_u64(const char **s, uint64_t *ret) {
        uint64_t v = 0;

        if (!isdigit((unsigned char) **s))
                return -EINVAL;
        for (; isdigit((unsigned char) **s); (*s)++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (**s - '0');
        }
        *ret = v;
        return 0;
}

int unit_parse_timespan(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "usec", 1 },           { "us", 1 },
                { "msec", 1000 },        { "ms", 1000 },
                { "seconds", 1000000 },  { "second", 1000000 },
                { "sec", 1000000 },      { "s", 1000000 },
                { "minutes", 60000000 }, { "minute", 60000000 },
                { "min", 60000000 },     { "m", 60000000 },
                { "hours", 3600000000 }, { "hour", 3600000000 },
                { "hr", 3600000000 },    { "h", 3600000000 },
                { "days", 86400000000 }, { "day", 86400000000 },
                { "d", 86400000000 },
        };
        uint64_t total = 0, v;
        bool any = false;
        int r;

        for (;;) {
                size_t i;

                while (*s == ' ')
                        s++;
                if (!*s)
                        break;
                r = parse_u64(&s, &v);
                if (r < 0)
                        return r;
                while (*s == ' ')
                        s++;
                for (i = 0; i < ELEMENTSOF(units); i++) {
                        size_t l = strlen(units[i].suffix);
                        if (strncmp(s, units[i].suffix, l) == 0 && !isalpha((unsigned char) s[l]))
                                break;
                }
                if (i == ELEMENTSOF(units) && isalpha((unsigned char) *s))
                        return -EINVAL;
                v = i < ELEMENTSOF(units) ? v * units[i].usec : v * 1000000;
                if (i < ELEMENTSOF(units))
                        s += strlen(units[i].suffix);
                if (v / 1000000 > 100ULL * 365 * 86400 || total + v < total)
                        return -ERANGE;
                total += v;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

static int parse_bytes(const char *s, uint64_t *ret) {
        uint64_t v;
        int shift = 0;

        if (streq(s, "infinity")) {
                *ret = UNIT_LIMIT_UNSET;
                return 0;
        }
        if (parse_u64(&s, &v) < 0)
                return -EINVAL;
        switch (*s) {
        case 'K':
                shift = 10;
                break;
        case 'M':
                shift = 20;
                break;
        case 'G':
                shift = 30;
                break;
        case 'T':
                shift = 40;
                break;
        case 0:
                break;
        default:
                return -EINVAL;
        }
        if (*s && s[1])
                return -EINVAL;
        if (v > (UINT64_MAX >> 1) >> shift)
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v;

        if (parse_u64(&s, &v) < 0 || *s)
                return -EINVAL;
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static int parse_signal(const char *s) {
        static const struct {
                const char *name;
                int sig;
        } sigs[] = {
                { "TERM", SIGTERM }, { "INT", SIGINT },   { "HUP", SIGHUP },   { "QUIT", SIGQUIT },
                { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "ABRT", SIGABRT },
        };
        uint64_t v;

        if (strncmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                if (streq(s, sigs[i].name))
                        return sigs[i].sig;
        if (parse_uint(s, 64, &v) < 0 || v == 0)
                return -EINVAL;
        return (int) v;
}

static bool env_name_valid(const char *s, size_t n) {
        if (n == 0 || isdigit((unsigned char) s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '_')
                        return false;
        return true;
}

static bool specifiers_valid(const char *w) {
        for (const char *p = strchr(w, '%'); p; p = strchr(p + 2, '%'))
                if (!p[1] || !strchr("wraAn%", p[1]))
                        return false;
        return true;
}

int unit_expand(const char *word,
                const char *workflow_id,
                const char *run_id,
                const char *activity_id,
                unsigned attempt,
                const char *unit_name,
                char **ret) {
        char *buf = NULL, num[16];
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        snprintf(num, sizeof(num), "%u", attempt);
        for (const char *p = word; *p; p++) {
                if (*p != '%') {
                        fputc(*p, f);
                        continue;
                }
                p++;
                switch (*p) {
                case 'w':
                        fputs(workflow_id, f);
                        break;
                case 'r':
                        fputs(run_id, f);
                        break;
                case 'a':
                        fputs(activity_id, f);
                        break;
                case 'A':
                        fputs(num, f);
                        break;
                case 'n':
                        fputs(unit_name, f);
                        break;
                default: /* '%': checked at load time */
                        fputc('%', f);
                        if (!*p)
                                p--;
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

/* ---- keys ---- */

typedef struct Parse {
        ActivityUnit *u;
        const char *path;
        unsigned line;
        char *error;
} Parse;

static int parse_error(Parse *p, const char *fmt, ...) _printf_(2, 3);
static int parse_error(Parse *p, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        free(p->error);
        /* Line 0: about the whole file (a key that is missing). */
        if ((p->line ? asprintf(&p->error, "%s:%u: %s", p->path, p->line, msg)
                     : asprintf(&p->error, "%s: %s", p->path, msg)) < 0) {
                p->error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static int set_str(char **field, const char *v) {
        char *s = strdup(v);

        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int key_exec_start(Parse *p, const char *key, const char *v) {
        char **words = NULL;
        int r = unit_split_words(v, &words);

        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return parse_error(p, "%s=: %s", key,
                                   r == -EPROTO ? "unterminated quote" : "bad backslash escape");
        if (!words[0] || words[0][0] != '/') {
                strv_free(words);
                return parse_error(p, "%s=: the program must be an absolute path", key);
        }
        for (char **w = words; *w; w++)
                if (!specifiers_valid(*w)) {
                        r = parse_error(
                                p,
                                "%s=: unknown specifier in '%s' (known: %%w %%r %%a %%A %%n %%%%)",
                                key, *w);
                        strv_free(words);
                        return r;
                }
        strv_free(p->u->exec_argv);
        p->u->exec_argv = words;
        return 0;
}

/* RateLimit=N/PERIOD (PERIOD a time span from 1ms to 1d, as the other *Sec= keys take it) or
 * RateLimit=N (per second); an empty assignment removes the limit. */
static int key_rate_limit(Parse *p, const char *key, const char *v) {
        ActivityUnit *u = p->u;
        const char *slash = strchr(v, '/');
        char n_text[32];
        uint64_t n, period = 1000000;

        if (!*v) {
                u->rate_limit = 0;
                u->rate_period_usec = 0;
                return 0;
        }
        snprintf(n_text, sizeof(n_text), "%.*s", (int) (slash ? (size_t) (slash - v) : strlen(v)),
                 v);
        if (parse_uint(n_text, 1000000, &n) < 0 || n == 0 ||
            (slash && (unit_parse_timespan(slash + 1, &period) < 0 || period < 1000 ||
                       period > 86400ULL * 1000000)))
                return parse_error(p,
                                   "%s=%s: expected N/PERIOD, N from 1 to 1000000 starts per a "
                                   "PERIOD from 1ms to 1d (such as 10/1s or 100/1min)",
                                   key, v);
        u->rate_limit = (uint32_t) n;
        u->rate_period_usec = period;
        return 0;
}

static int key_time(Parse *p, const char *key, const char *v, uint64_t *field) {
        if (unit_parse_timespan(v, field) < 0)
                return parse_error(p, "%s=%s: expected a time span such as 30, 30s, 5min, 1h", key,
                                   v);
        return 0;
}

static int key_retry_backoff(Parse *p, const char *key, const char *v) {
        char *end;
        double d;

        errno = 0;
        d = strtod(v, &end);
        if (errno || end == v || *end || !(d >= 1.0) || d > 1000)
                return parse_error(p, "%s=%s: expected a number from 1.0 to 1000", key, v);
        p->u->retry_backoff = d;
        return 0;
}

static int key_non_retryable(Parse *p, const char *key, const char *v) {
        char **words = NULL;
        uint64_t st;
        int r = unit_split_words(v, &words);

        if (r < 0)
                return r == -ENOMEM ? r : parse_error(p, "%s=: bad quoting", key);
        if (!words[0])
                memset(p->u->non_retryable_exit, 0, sizeof(p->u->non_retryable_exit));
        for (char **w = words; *w; w++) {
                if (parse_uint(*w, 255, &st) < 0 || st == 0) {
                        r = parse_error(p, "%s=: '%s' is not an exit status from 1 to 255", key,
                                        *w);
                        break;
                }
                p->u->non_retryable_exit[st / 8] |= (uint8_t) (1u << (st % 8));
        }
        strv_free(words);
        return r;
}

static int key_user(Parse *p, const char *key, const char *v, char **field) {
        bool is_user = streq(key, "User");
        uint64_t id;
        bool numeric = parse_uint(v, UINT32_MAX - 1, &id) >= 0;

        if (!*v)
                return parse_error(p, "%s= must not be empty", key);
        if (!numeric && (is_user ? !getpwnam(v) : !getgrnam(v)))
                return parse_error(p, "%s=%s: no such %s on this host", key, v,
                                   is_user ? "user" : "group");
        return set_str(field, v);
}

static int key_environment(Parse *p, const char *key, const char *v) {
        char **words = NULL;
        int r = unit_split_words(v, &words);

        if (r < 0)
                return r == -ENOMEM ? r : parse_error(p, "%s=: bad quoting", key);
        if (!words[0]) { /* an empty assignment resets the list, as in systemd */
                p->u->environment = strv_free(p->u->environment);
                strv_free(words);
                return 0;
        }
        for (char **w = words; *w; w++) {
                char *eq = strchr(*w, '=');
                if (!eq || !env_name_valid(*w, (size_t) (eq - *w))) {
                        r = parse_error(p, "%s=: '%s' is not NAME=value", key, *w);
                        break;
                }
                r = strv_push(&p->u->environment, strdup(*w));
                if (r < 0)
                        break;
        }
        strv_free(words);
        return r;
}

static int key_environment_file(Parse *p, const char *key, const char *v) {
        const char *path = v[0] == '-' ? v + 1 : v;

        if (!*v) {
                p->u->environment_files = strv_free(p->u->environment_files);
                return 0;
        }
        if (path[0] != '/')
                return parse_error(p,
                                   "%s=%s: expected an absolute path (a leading '-' allows it "
                                   "to be missing)",
                                   key, v);
        return strv_push(&p->u->environment_files, strdup(v));
}

static int key_limit(Parse *p, const char *key, const char *v) {
        uint64_t n;
        char *end;

        if (streq(key, "MemoryMax")) {
                if (parse_bytes(v, &p->u->memory_max) < 0)
                        return parse_error(p,
                                           "%s=%s: expected bytes with an optional K, M, G or "
                                           "T suffix, or infinity",
                                           key, v);
                return 0;
        }
        if (streq(key, "TasksMax")) {
                if (streq(v, "infinity"))
                        p->u->tasks_max = UNIT_LIMIT_UNSET;
                else if (parse_uint(v, UINT32_MAX, &n) < 0 || n == 0)
                        return parse_error(p, "%s=%s: expected a positive number or infinity", key,
                                           v);
                else
                        p->u->tasks_max = n;
                return 0;
        }
        /* CPUQuota=N% */
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || end == v || !isdigit((unsigned char) v[0]) || strcmp(end, "%") != 0 ||
            n == 0 || n > 100000)
                return parse_error(p, "%s=%s: expected a percentage such as 50%% or 200%%", key, v);
        p->u->cpu_quota_pct = n;
        return 0;
}

static int parse_key(Parse *p, const char *section, const char *key, const char *v) {
        ActivityUnit *u = p->u;
        uint64_t n;
        int s;

        if (streq(key, "Description"))
                return set_str(&u->description, v);
        if (streq(section, "Unit"))
                return parse_error(p, "unknown key '%s' in section [Unit]", key);
        if (streq(key, "Name")) {
                if (!*v || strlen(v) > 255 || strpbrk(v, " \t/"))
                        return parse_error(p,
                                           "Name=%s: expected 1-255 characters without "
                                           "blanks or '/'",
                                           v);
                return set_str(&u->name, v);
        }
        if (streq(key, "ExecStart"))
                return key_exec_start(p, key, v);
        if (streq(key, "TaskQueue")) {
                if (!*v || strlen(v) > 1000)
                        return parse_error(p, "TaskQueue= must be 1-1000 characters");
                return set_str(&u->task_queue, v);
        }
        if (streq(key, "StartToCloseSec"))
                return key_time(p, key, v, &u->start_to_close_usec);
        if (streq(key, "ScheduleToCloseSec"))
                return key_time(p, key, v, &u->schedule_to_close_usec);
        if (streq(key, "HeartbeatSec"))
                return key_time(p, key, v, &u->heartbeat_usec);
        if (streq(key, "RetryInitialSec"))
                return key_time(p, key, v, &u->retry_initial_usec);
        if (streq(key, "RetryMaxSec"))
                return key_time(p, key, v, &u->retry_max_usec);
        if (streq(key, "TimeoutStopSec"))
                return key_time(p, key, v, &u->timeout_stop_usec);
        if (streq(key, "RetryBackoff"))
                return key_retry_backoff(p, key, v);
        if (streq(key, "RetryMaxAttempts")) {
                if (parse_uint(v, UINT32_MAX, &u->retry_max_attempts) < 0)
                        return parse_error(p, "%s=%s: expected a number (0 = unlimited)", key, v);
                return 0;
        }
        if (streq(key, "NonRetryableExitStatus"))
                return key_non_retryable(p, key, v);
        if (streq(key, "MaxConcurrent")) {
                if (parse_uint(v, 100000, &n) < 0 || n == 0)
                        return parse_error(p, "%s=%s: expected a number from 1 to 100000", key, v);
                u->max_concurrent = (unsigned) n;
                return 0;
        }
        if (streq(key, "Priority")) {
                if (parse_uint(v, 5, &n) < 0 || n == 0)
                        return parse_error(p,
                                           "%s=%s: expected a priority key from 1 (first) to 5 "
                                           "(last)",
                                           key, v);
                u->priority = (unsigned) n;
                return 0;
        }
        if (streq(key, "RateLimit"))
                return key_rate_limit(p, key, v);
        if (streq(key, "RateLimitBurst")) {
                if (parse_uint(v, 1000000, &n) < 0 || n == 0)
                        return parse_error(p, "%s=%s: expected a number from 1 to 1000000", key, v);
                u->rate_burst = (unsigned) n;
                return 0;
        }
        if (streq(key, "User"))
                return key_user(p, key, v, &u->user);
        if (streq(key, "Group"))
                return key_user(p, key, v, &u->group);
        if (streq(key, "WorkingDirectory")) {
                if (v[0] != '/')
                        return parse_error(p, "%s=%s: expected an absolute path", key, v);
                return set_str(&u->working_directory, v);
        }
        if (streq(key, "Environment"))
                return key_environment(p, key, v);
        if (streq(key, "EnvironmentFile"))
                return key_environment_file(p, key, v);
        if (streq(key, "MemoryMax") || streq(key, "TasksMax") || streq(key, "CPUQuota"))
                return key_limit(p, key, v);
        if (streq(key, "KillSignal")) {
                s = parse_signal(v);
                if (s < 0)
                        return parse_error(p, "%s=%s: expected a signal name such as SIGTERM", key,
                                           v);
                u->kill_signal = s;
                return 0;
        }
        return parse_error(p, "unknown key '%s' in section [Activity]", key);
}

static char *strip(char *s) {
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
                *--e = 0;
        return s;
}

/* One logical line (continuations joined) at @l. */
static int parse_line(Parse *p, char *l, char *section, size_t section_size) {
        char *eq, *key, *value;

        l = strip(l);
        if (!*l || *l == '#' || *l == ';')
                return 0;
        if (*l == '[') {
                size_t n = strlen(l);
                if (l[n - 1] != ']')
                        return parse_error(p, "section header without ']'");
                l[n - 1] = 0;
                if (!streq(l + 1, "Unit") && !streq(l + 1, "Activity"))
                        return parse_error(p,
                                           "unknown section [%s] (expected [Unit] or "
                                           "[Activity])",
                                           l + 1);
                snprintf(section, section_size, "%s", l + 1);
                return 0;
        }
        if (!section[0])
                return parse_error(p, "assignment outside of a section");
        eq = strchr(l, '=');
        if (!eq)
                return parse_error(p, "expected Key=value, got '%s'", l);
        *eq = 0;
        key = strip(l);
        value = strip(eq + 1);
        if (!*key)
                return parse_error(p, "assignment without a key");
        return parse_key(p, section, key, value);
}

static int read_file(const char *path, char **ret) {
        _cleanup_free_ char *buf = NULL;
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return -errno;
        buf = malloc(UNIT_FILE_MAX + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(buf, 1, UNIT_FILE_MAX + 1, f);
        if (ferror(f)) {
                fclose(f);
                return -EIO;
        }
        fclose(f);
        if (n > UNIT_FILE_MAX)
                return -EFBIG;
        if (memchr(buf, 0, n))
                return -EBADMSG;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int unit_defaults(ActivityUnit *u, const char *path) {
        const char *base = strrchr(path, '/');

        base = base ? base + 1 : path;
        u->path = strdup(path);
        u->name = strndup(base, strlen(base) - strlen(UNIT_SUFFIX));
        u->retry_max_attempts = UNIT_LIMIT_UNSET;
        u->memory_max = UNIT_LIMIT_UNSET;
        u->tasks_max = UNIT_LIMIT_UNSET;
        u->kill_signal = SIGTERM;
        u->timeout_stop_usec = 90ULL * 1000000; /* systemd's DefaultTimeoutStopSec */
        return u->path && u->name ? 0 : -ENOMEM;
}

static int unit_check(Parse *p) {
        ActivityUnit *u = p->u;

        p->line = 0;
        if (!u->exec_argv)
                return parse_error(p, "ExecStart= is missing");
        if (u->retry_initial_usec && u->retry_max_usec && u->retry_max_usec < u->retry_initial_usec)
                return parse_error(p, "RetryMaxSec= is smaller than RetryInitialSec=");
        return 0;
}

int activity_unit_load(const char *path, ActivityUnit **ret, char **ret_error) {
        _cleanup_(activity_unit_freep) ActivityUnit *u = NULL;
        _cleanup_free_ char *buf = NULL;
        char section[16] = "", *line, *next;
        Parse p = { .path = path };
        int r;

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        r = unit_defaults(u, path);
        if (r < 0)
                return r;
        p.u = u;
        r = read_file(path, &buf);
        if (r == -EFBIG || r == -EBADMSG)
                r = parse_error(&p, "%s",
                                r == -EFBIG ? "file larger than 64 KiB" : "NUL byte in file");
        else if (r < 0 && r != -ENOMEM)
                r = parse_error(&p, "cannot read: %s", strerror(-r));
        for (line = buf; r >= 0 && line; line = next) {
                const char *first = line + strspn(line, " \t");
                char *nl = line;
                unsigned extra = 0;

                p.line++;
                /* "...\<newline>" goes on with the next line (not in comments). */
                for (;;) {
                        nl = strchr(nl, '\n');
                        if (!nl || nl == line || nl[-1] != '\\' || *first == '#' || *first == ';')
                                break;
                        /* systemd: the backslash becomes one space. */
                        nl[-1] = ' ';
                        memmove(nl, nl + 1, strlen(nl + 1) + 1);
                        extra++;
                }
                next = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = 0;
                r = parse_line(&p, line, section, sizeof(section));
                p.line += extra;
        }
        if (r >= 0)
                r = unit_check(&p);
        if (r < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(p.error);
                free(p.error);
                return r;
        }
        *ret = TAKE_PTR(u);
        return 0;
}

ActivityUnit *activity_unit_free(ActivityUnit *u) {
        if (!u)
                return NULL;
        free(u->name);
        free(u->path);
        free(u->description);
        strv_free(u->exec_argv);
        free(u->task_queue);
        free(u->user);
        free(u->group);
        free(u->working_directory);
        strv_free(u->environment);
        strv_free(u->environment_files);
        free(u);
        return NULL;
}

/* ---- the set ---- */

static UnitError *unit_error_free(UnitError *e) {
        if (e) {
                free(e->file);
                free(e->path);
                free(e->message);
                free(e);
        }
        return NULL;
}

UnitSet *unit_set_free(UnitSet *s) {
        ActivityUnit *u;
        UnitError *e;

        if (!s)
                return NULL;
        while ((u = s->units)) {
                LIST_REMOVE(units, s->units, u);
                activity_unit_free(u);
        }
        while ((e = s->errors)) {
                LIST_REMOVE(errors, s->errors, e);
                unit_error_free(e);
        }
        free(s);
        return NULL;
}

static bool file_seen(UnitSet *s, const char *file) {
        ActivityUnit *u;
        UnitError *e;

        LIST_FOREACH(units, u, s->units) {
                const char *b = strrchr(u->path, '/');
                if (streq(b ? b + 1 : u->path, file))
                        return true;
        }
        LIST_FOREACH(errors, e, s->errors)
                if (streq(e->file, file))
                        return true;
        return false;
}

static int add_error(UnitSet *s, const char *file, const char *path, char *message) {
        UnitError *e = calloc(1, sizeof(*e));

        if (!e || !(e->file = strdup(file)) || !(e->path = strdup(path))) {
                free(message);
                unit_error_free(e);
                return -ENOMEM;
        }
        e->message = message;
        LIST_APPEND(errors, s->errors, e);
        s->n_errors++;
        return 0;
}

static int load_one(UnitSet *s, const char *dir, const char *file) {
        ActivityUnit *u = NULL, *other;
        char *path, *err = NULL;
        int r;

        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        r = activity_unit_load(path, &u, &err);
        if (r == -ENOMEM) {
                free(path);
                return r;
        }
        if (r >= 0 && (other = unit_set_get(s, u->name))) {
                if (asprintf(&err, "%s: Name=%s is already declared by %s", path, u->name,
                             other->path) < 0)
                        err = NULL;
                u = activity_unit_free(u);
                r = -EEXIST;
        }
        if (r < 0) {
                if (!err && asprintf(&err, "%s: %s", path, strerror(-r)) < 0)
                        err = NULL;
                r = err ? add_error(s, file, path, err) : -ENOMEM;
                free(path);
                return r;
        }
        free(path);
        LIST_APPEND(units, s->units, u);
        s->n_units++;
        return 0;
}

static int filter_unit(const struct dirent *d) {
        size_t n = strlen(d->d_name), l = strlen(UNIT_SUFFIX);

        return d->d_name[0] != '.' && n > l && streq(d->d_name + n - l, UNIT_SUFFIX);
}

int unit_set_load(UnitSet **ret, char *const *dirs) {
        _cleanup_(unit_set_freep) UnitSet *s = NULL;
        int r = 0;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; dirs && dirs[i]; i++) {
                struct dirent **names = NULL;
                int n = scandir(dirs[i], &names, filter_unit, alphasort);

                if (n < 0)
                        continue; /* a missing directory holds no units */
                for (int k = 0; k < n; k++) {
                        if (r >= 0 && !file_seen(s, names[k]->d_name))
                                r = load_one(s, dirs[i], names[k]->d_name);
                        free(names[k]);
                }
                free(names);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

ActivityUnit *unit_set_get(UnitSet *s, const char *name) {
        ActivityUnit *u;

        if (!s)
                return NULL;
        LIST_FOREACH(units, u, s->units)
                if (streq(u->name, name))
                        return u;
        return NULL;
}

ActivityUnit *unit_set_find(UnitSet *s, const char *type, const char *queue) {
        ActivityUnit *u = unit_set_get(s, type);

        if (u && u->task_queue && queue && !streq(u->task_queue, queue))
                return NULL;
        return u;
}
