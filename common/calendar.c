/* Calendar events in systemd's OnCalendar= syntax (systemd.time(7)).
 *
 * Grammar (after an optional trailing " UTC", local zone abbreviation or IANA zone name):
 *
 *     shorthand  = minutely | hourly | daily | weekly | monthly | yearly | annually | quarterly
 *                | semiannually | biannually (and their "semi-"/"bi-" spellings)
 *     spec       = [weekdays " "] [date " "] [time] | "@" epoch-seconds
 *     weekdays   = day ("," | ".." | "-") day ...        (Mon, Monday, ..., Sun; ranges ascend)
 *     date       = [year "-"] month ("-" | "~") day       ("~": days counted from the month's end)
 *     time       = hour ":" minute [":" second]           (missing time: 00:00:00)
 *     field      = "*" | elem ("," elem)*    elem = n [".." m] ["/" repeat]
 *
 * Seconds take fractions (six digits, rounded). Two-digit years mean 19xx (70..99) or 20xx.
 * Normalization sorts each list and drops duplicates, trims a range to a multiple of its
 * repetition and drops a repetition that can never fire, exactly as systemd does, so that the
 * normalized form here is byte for byte what `systemd-analyze calendar` prints (a test compares
 * both on a table of examples).
 *
 * The next elapse is found the way systemd finds it: walk a broken-down time forward field by
 * field (year, month, day, weekday, hour, minute, second), letting mktime()/timegm() normalize
 * it, and reject a candidate whose fields change under normalization (February 30th, or a local
 * time skipped by a DST change, which therefore does not fire; a repeated local time fires once,
 * at the offset mktime() picks). Local time is the process's zone; a spec in a named zone is
 * computed with $TZ switched to that zone and tzset() called before and after, which is correct
 * only in a single-threaded process (systemd forks a child for the same reason). */

#include "common/calendar.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define USEC_PER_SEC 1000000
#define MIN_YEAR 1970
#define MAX_YEAR 2199
#define COMPONENTS_MAX 240
#define MAX_ITERATIONS 1000
/* Like systemd: the last time a timestamp can be formatted (9999-12-30 23:59:59.999999). */
#define USEC_FORMATTABLE_MAX UINT64_C(253402214399999999)
#define WEEKDAYS_ALL 127
#define ZONEINFO_DIR "/usr/share/zoneinfo/"

typedef struct Component {
        int start;
        int stop;   /* -1: no range */
        int repeat; /* 0: no repetition */
} Component;

/* A list of components; empty means "*". */
typedef struct Chain {
        Component *v;
        size_t n;
} Chain;

struct CalendarSpec {
        int weekdays; /* bit 0 = Monday; -1 = every day */
        bool end_of_month;
        bool utc;
        int dst; /* -1, or 0/1 when the local zone's standard/daylight name was given */
        char *timezone;
        Chain year, month, day, hour, minute, usec; /* usec: seconds in microseconds */
};

typedef struct Parser {
        const char *input;
        const char *buf; /* the input without its time zone */
        char *err;
        size_t errlen;
} Parser;

static int fail(Parser *p, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(Parser *p, int r, const char *fmt, ...) {
        va_list ap;

        if (p->err && p->errlen > 0) {
                va_start(ap, fmt);
                (void) vsnprintf(p->err, p->errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

static int fail_at(Parser *p, const char *at) {
        if (*at == 0)
                return fail(p, -EINVAL, "unexpected end of \"%s\"", p->input);
        if (*at == ' ' && strchr(at, '/'))
                return fail(p, -EINVAL, "unknown time zone \"%s\" in \"%s\"", at + strspn(at, " "),
                            p->input);
        return fail(p, -EINVAL, "unexpected \"%s\" in \"%s\"", at, p->input);
}

static void chain_done(Chain *c) {
        free(c->v);
        c->v = NULL;
        c->n = 0;
}

static int chain_add(Chain *c, int start, int stop, int repeat) {
        Component *v;

        if (c->n >= COMPONENTS_MAX + 1)
                return -ENOBUFS;
        v = realloc(c->v, (c->n + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        v[c->n++] = (Component){ .start = start, .stop = stop, .repeat = repeat };
        c->v = v;
        return 0;
}

CalendarSpec *calendar_spec_free(CalendarSpec *c) {
        if (!c)
                return NULL;
        chain_done(&c->year);
        chain_done(&c->month);
        chain_done(&c->day);
        chain_done(&c->hour);
        chain_done(&c->minute);
        chain_done(&c->usec);
        free(c->timezone);
        free(c);
        return NULL;
}

/* ---- parsing ---- */

static bool has_prefix_nocase(const char *s, const char *prefix) {
        return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static const char *suffix_nocase(const char *s, const char *suffix) {
        size_t ls = strlen(s), lx = strlen(suffix);

        if (lx > ls || strcasecmp(s + ls - lx, suffix) != 0)
                return NULL;
        return s + ls - lx;
}

/* systemd's rule for a time zone name: [A-Za-z0-9_+-] words separated by single slashes, and a
 * regular file under /usr/share/zoneinfo that starts with the TZif magic. The character set keeps
 * the path inside the zoneinfo directory. */
static bool timezone_valid(const char *name) {
        char path[sizeof(ZONEINFO_DIR) + 256], magic[4];
        bool slash = false;
        int fd;
        ssize_t n;

        if (*name == 0 || name[0] == '/' || strlen(name) >= 256)
                return false;
        if (streq(name, "UTC"))
                return true;
        for (const char *q = name; *q; q++) {
                if (!isalnum((unsigned char) *q) && !strchr("-_+/", *q))
                        return false;
                if (*q == '/' && slash)
                        return false;
                slash = *q == '/';
        }
        if (slash)
                return false;
        snprintf(path, sizeof(path), ZONEINFO_DIR "%s", name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return false;
        n = read(fd, magic, sizeof(magic));
        (void) close(fd);
        return n == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
}

/* A word where a weekday, a shorthand or a number belongs: name the likely mistake. */
static int explain_word(Parser *p, const char *at) {
        const char *space = strrchr(p->buf, ' ');
        size_t n = strcspn(at, " ,.-:~/");

        if (space && strchr(space + 1, '/'))
                return fail(p, -EINVAL, "unknown time zone \"%s\" in \"%s\"", space + 1, p->input);
        return fail(p, -EINVAL,
                    "\"%.*s\" is not a weekday, a shorthand (daily, weekly, ...) or a "
                    "number in \"%s\"",
                    (int) n, at, p->input);
}

static int parse_number(Parser *p, const char **s, bool usec, int *ret) {
        const char *e = *s;
        unsigned long long v = 0;

        if (isalpha((unsigned char) *e))
                return explain_word(p, e);
        if (!isdigit((unsigned char) *e))
                return fail(p, -EINVAL, "expected a number at \"%s\" in \"%s\"", e, p->input);
        for (; isdigit((unsigned char) *e); e++) {
                v = v * 10 + (unsigned) (*e - '0');
                if (v > INT_MAX)
                        return fail(p, -ERANGE, "number too large at \"%s\" in \"%s\"", *s,
                                    p->input);
        }
        if (usec) {
                v *= USEC_PER_SEC;
                /* One "." is a decimal point, ".." a range. Six digits, the seventh rounds. */
                if (e[0] == '.' && e[1] != '.') {
                        unsigned frac = 0, i;

                        e++;
                        if (!isdigit((unsigned char) *e))
                                return fail(p, -EINVAL, "expected digits after \".\" in \"%s\"",
                                            p->input);
                        for (i = 0; i < 6; i++) {
                                frac *= 10;
                                if (isdigit((unsigned char) *e))
                                        frac += (unsigned) (*e++ - '0');
                        }
                        if (*e >= '5' && *e <= '9')
                                frac++;
                        while (isdigit((unsigned char) *e))
                                e++;
                        v += frac;
                }
                if (v > INT_MAX)
                        return fail(p, -ERANGE, "number too large at \"%s\" in \"%s\"", *s,
                                    p->input);
        }
        *s = e;
        *ret = (int) v;
        return 0;
}

/* elem ("," elem)* where elem = n [".." m] ["/" repeat]; "*" leaves the chain empty (any value),
 * except for seconds, where "*" means every full second (0/1). */
static int parse_chain(Parser *p, const char **s, bool usec, Chain *ret) {
        const char *t = *s;
        int r;

        if (*t == '*') {
                *s = t + 1;
                return usec ? chain_add(ret, 0, -1, USEC_PER_SEC) : 0;
        }
        for (;;) {
                int start, stop = -1, repeat = 0;

                r = parse_number(p, &t, usec, &start);
                if (r < 0)
                        return r;
                if (t[0] == '.' && t[1] == '.') {
                        t += 2;
                        r = parse_number(p, &t, usec, &stop);
                        if (r < 0)
                                return r;
                        repeat = usec ? USEC_PER_SEC : 1;
                }
                if (*t == '/') {
                        t++;
                        r = parse_number(p, &t, usec, &repeat);
                        if (r < 0)
                                return r;
                        if (repeat == 0)
                                return fail(p, -ERANGE, "a repetition of 0 in \"%s\"", p->input);
                } else if (usec && stop >= 0 && start + repeat > stop)
                        return fail(p, -EINVAL,
                                    "the range of seconds in \"%s\" is shorter than "
                                    "a second",
                                    p->input);
                if (*t && !strchr(" ,-~:", *t))
                        return fail_at(p, t);
                r = chain_add(ret, start, stop, repeat);
                if (r == -ENOBUFS)
                        return fail(p, r, "more than %d list elements in \"%s\"", COMPONENTS_MAX,
                                    p->input);
                if (r < 0)
                        return r;
                if (*t != ',')
                        break;
                t++;
        }
        *s = t;
        return 0;
}

static int parse_weekdays(Parser *p, const char **s, CalendarSpec *c) {
        static const struct {
                const char *name;
                int nr;
        } days[] = {
                { "Monday", 0 },    { "Mon", 0 }, { "Tuesday", 1 },  { "Tue", 1 },
                { "Wednesday", 2 }, { "Wed", 2 }, { "Thursday", 3 }, { "Thu", 3 },
                { "Friday", 4 },    { "Fri", 4 }, { "Saturday", 5 }, { "Sat", 5 },
                { "Sunday", 6 },    { "Sun", 6 },
        };
        int range_from = -1;
        bool first = true;

        for (;;) {
                size_t i, len = 0;

                for (i = 0; i < ELEMENTSOF(days); i++)
                        if (has_prefix_nocase(*s, days[i].name))
                                break;
                if (i >= ELEMENTSOF(days))
                        return first ? 0 : fail_at(p, *s);
                len = strlen(days[i].name);
                if ((*s)[len] && !strchr("-., ", (*s)[len]))
                        return fail_at(p, *s);
                if (c->weekdays < 0)
                        c->weekdays = 0;
                c->weekdays |= 1 << days[i].nr;
                if (range_from >= 0) {
                        if (range_from > days[i].nr)
                                return fail(p, -EINVAL,
                                            "the weekday range ending at \"%s\" runs "
                                            "backwards in \"%s\"",
                                            *s, p->input);
                        for (int j = range_from + 1; j < days[i].nr; j++)
                                c->weekdays |= 1 << j;
                }
                *s += len;
                if (**s == 0)
                        return 0;
                if (**s == ' ') {
                        *s += strspn(*s, " ");
                        return 0;
                }
                if (**s == '.') {
                        if (range_from >= 0 || (*s)[1] != '.')
                                return fail_at(p, *s);
                        range_from = days[i].nr;
                        *s += 2;
                } else if (**s == '-') { /* an old spelling of ".." */
                        if (range_from >= 0)
                                return fail_at(p, *s);
                        range_from = days[i].nr;
                        *s += 1;
                } else if (**s == ',') {
                        range_from = -1;
                        *s += 1;
                }
                /* A trailing comma is fine, an open range is not. */
                if (**s == 0 || **s == ' ') {
                        *s += strspn(*s, " ");
                        if (range_from >= 0)
                                return fail(p, -EINVAL, "an open weekday range in \"%s\"",
                                            p->input);
                        return 0;
                }
                first = false;
        }
}

static void set_from_time(CalendarSpec *c, time_t t) {
        struct tm tm;

        (void) gmtime_r(&t, &tm);
        (void) chain_add(&c->year, tm.tm_year + 1900, -1, 0);
        (void) chain_add(&c->month, tm.tm_mon + 1, -1, 0);
        (void) chain_add(&c->day, tm.tm_mday, -1, 0);
        (void) chain_add(&c->hour, tm.tm_hour, -1, 0);
        (void) chain_add(&c->minute, tm.tm_min, -1, 0);
        (void) chain_add(&c->usec, tm.tm_sec * USEC_PER_SEC, -1, 0);
        c->utc = true;
}

/* "@seconds": one point in time, in UTC. */
static int parse_epoch(Parser *p, const char **s, CalendarSpec *c) {
        const char *t = *s + 1;
        char *e;
        unsigned long long v;

        errno = 0;
        v = isdigit((unsigned char) *t) ? strtoull(t, &e, 10) : 0;
        if (!isdigit((unsigned char) *t) || errno != 0 || *e != 0 ||
            v > USEC_FORMATTABLE_MAX / USEC_PER_SEC)
                return fail(p, -EINVAL, "\"%s\" is not a number of seconds since the epoch", *s);
        set_from_time(c, (time_t) v);
        *s = e;
        return 1;
}

/* Returns 1 when the spec is complete (an epoch time), 0 when a time may follow. */
static int parse_date(Parser *p, const char **s, CalendarSpec *c) {
        Chain first = {}, second = {}, third = {};
        const char *t = *s;
        int r;

        if (*t == 0)
                return 0;
        if (*t == '@')
                return parse_epoch(p, s, c);
        r = parse_chain(p, &t, false, &first);
        if (r < 0)
                goto finish;
        /* A number followed by ':' (or nothing) was an hour: no date. */
        if (*t == 0 || *t == ':') {
                chain_done(&first);
                return 0;
        }
        if (*t == '~')
                c->end_of_month = true;
        else if (*t != '-') {
                r = fail_at(p, t);
                goto finish;
        }
        t++;
        r = parse_chain(p, &t, false, &second);
        if (r < 0)
                goto finish;
        if (*t == 0 || *t == ' ') { /* month and day */
                *s = t + strspn(t, " ");
                c->month = first;
                c->day = second;
                return 0;
        }
        if (c->end_of_month || (*t != '~' && *t != '-')) {
                r = fail_at(p, t);
                goto finish;
        }
        c->end_of_month = *t == '~';
        t++;
        r = parse_chain(p, &t, false, &third);
        if (r < 0)
                goto finish;
        if (*t != 0 && *t != ' ') {
                r = fail_at(p, t);
                goto finish;
        }
        *s = t + strspn(t, " ");
        c->year = first;
        c->month = second;
        c->day = third;
        return 0;
finish:
        chain_done(&first);
        chain_done(&second);
        chain_done(&third);
        return r;
}

static int parse_time(Parser *p, const char **s, CalendarSpec *c) {
        const char *t = *s;
        int r;

        if (*t == 0) { /* no time: midnight */
                r = chain_add(&c->hour, 0, -1, 0);
                if (r >= 0)
                        r = chain_add(&c->minute, 0, -1, 0);
                return r < 0 ? r : chain_add(&c->usec, 0, -1, 0);
        }
        r = parse_chain(p, &t, false, &c->hour);
        if (r < 0)
                return r;
        if (*t != ':')
                return fail_at(p, t);
        t++;
        r = parse_chain(p, &t, false, &c->minute);
        if (r < 0)
                return r;
        if (*t == 0) { /* hours and minutes: second 0 */
                *s = t;
                return chain_add(&c->usec, 0, -1, 0);
        }
        if (*t != ':')
                return fail_at(p, t);
        t++;
        r = parse_chain(p, &t, true, &c->usec);
        if (r < 0)
                return r;
        if (*t != 0)
                return fail_at(p, t);
        *s = t;
        return 0;
}

static int shorthand(CalendarSpec *c, const char *s) {
        static const char *const names[] = {
                "minutely",    "hourly",       "daily",         "monthly",   "annually",
                "yearly",      "anually",      "weekly",        "quarterly", "biannually",
                "bi-annually", "semiannually", "semi-annually",
        };
        size_t i;
        int r = 0;

        for (i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0)
                        break;
        if (i >= ELEMENTSOF(names))
                return 0;
        /* Everything finer than the period is 0; coarser fields stay "*". */
        r = chain_add(&c->usec, 0, -1, 0);
        if (i >= 1 && r >= 0)
                r = chain_add(&c->minute, 0, -1, 0);
        if (i >= 2 && r >= 0)
                r = chain_add(&c->hour, 0, -1, 0);
        if (i >= 3 && i != 7 && r >= 0)
                r = chain_add(&c->day, 1, -1, 0);
        if (i >= 4 && i <= 6 && r >= 0)
                r = chain_add(&c->month, 1, -1, 0);
        if (i == 7)
                c->weekdays = 1;
        for (int m = 1; i == 8 && m <= 10 && r >= 0; m += 3)
                r = chain_add(&c->month, m, -1, 0);
        for (int m = 1; i >= 9 && m <= 7 && r >= 0; m += 6)
                r = chain_add(&c->month, m, -1, 0);
        return r < 0 ? r : 1;
}

/* Splits a time zone off the end of @s (which it shortens): " UTC", one of the local zone's
 * two names (sets dst), or an IANA zone name. */
static int parse_zone(CalendarSpec *c, char *s) {
        const char *e, *space;

        e = suffix_nocase(s, " UTC");
        if (e) {
                c->utc = true;
                s[e - s] = 0;
                return 0;
        }
        tzset();
        for (int j = 0; j <= 1; j++) {
                if (!tzname[j] || !*tzname[j])
                        continue;
                e = suffix_nocase(s, tzname[j]);
                if (e && e > s && e[-1] == ' ') {
                        c->dst = j;
                        s[e - s - 1] = 0;
                        return 0;
                }
        }
        space = strrchr(s, ' ');
        if (space && timezone_valid(space + 1)) {
                c->timezone = strdup(space + 1);
                if (!c->timezone)
                        return -ENOMEM;
                s[space - s] = 0;
        }
        return 0;
}

/* ---- normalization and validation ---- */

static int component_cmp(const void *a, const void *b) {
        const Component *x = a, *y = b;

        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        if (x->stop != y->stop)
                return x->stop < y->stop ? -1 : 1;
        return x->repeat < y->repeat ? -1 : x->repeat > y->repeat;
}

static void normalize_chain(Chain *c) {
        size_t k = 0;

        for (size_t i = 0; i < c->n; i++) {
                Component *x = &c->v[i];

                /* a range's length becomes a multiple of its repetition */
                if (x->stop > x->start && x->repeat > 0)
                        x->stop -= (x->stop - x->start) % x->repeat;
                /* a repetition that cannot fire once, or an empty range, is a plain value */
                if ((x->stop > x->start && x->start + x->repeat > x->stop) || x->start == x->stop) {
                        x->repeat = 0;
                        x->stop = -1;
                }
        }
        if (c->n <= 1)
                return;
        qsort(c->v, c->n, sizeof(*c->v), component_cmp);
        for (size_t i = 1; i < c->n; i++)
                if (component_cmp(&c->v[k], &c->v[i]) != 0)
                        c->v[++k] = c->v[i];
        c->n = k + 1;
}

static void fix_years(Chain *c) {
        for (size_t i = 0; i < c->n; i++) {
                Component *x = &c->v[i];

                if (x->start >= 0 && x->start < 70)
                        x->start += 2000;
                else if (x->start >= 70 && x->start < 100)
                        x->start += 1900;
                if (x->stop >= 0 && x->stop < 70)
                        x->stop += 2000;
                else if (x->stop >= 70 && x->stop < 100)
                        x->stop += 1900;
        }
}

static int chain_check(Parser *p, const Chain *c, int from, int to, const char *what) {
        int d = streq(what, "second") ? USEC_PER_SEC : 1;

        for (size_t i = 0; i < c->n; i++) {
                const Component *x = &c->v[i];

                if (x->start < from || x->start > to)
                        return fail(p, -EINVAL, "%s %d is out of range %d..%d in \"%s\"", what,
                                    x->start / d, from / d, to / d, p->input);
                if (x->repeat > to - from)
                        return fail(p, -EINVAL,
                                    "the repetition /%d of the %s is too long in "
                                    "\"%s\"",
                                    x->repeat / d, what, p->input);
                if (x->stop >= 0 && (x->stop < from || x->stop > to))
                        return fail(p, -EINVAL, "%s %d is out of range %d..%d in \"%s\"", what,
                                    x->stop / d, from / d, to / d, p->input);
                if (x->stop >= 0 && x->start > x->stop)
                        return fail(p, -EINVAL, "the %s range %d..%d runs backwards in \"%s\"",
                                    what, x->start / d, x->stop / d, p->input);
        }
        return 0;
}

static int spec_check(Parser *p, CalendarSpec *c) {
        int r;

        if (c->timezone && streq(c->timezone, "UTC")) {
                c->utc = true;
                free(c->timezone);
                c->timezone = NULL;
        }
        if (c->weekdays <= 0 || c->weekdays >= WEEKDAYS_ALL)
                c->weekdays = -1;
        if (c->end_of_month && c->day.n == 0)
                c->end_of_month = false;
        fix_years(&c->year);
        normalize_chain(&c->year);
        normalize_chain(&c->month);
        normalize_chain(&c->day);
        normalize_chain(&c->hour);
        normalize_chain(&c->minute);
        normalize_chain(&c->usec);

        r = chain_check(p, &c->year, MIN_YEAR, MAX_YEAR, "year");
        if (r >= 0)
                r = chain_check(p, &c->month, 1, 12, "month");
        if (r >= 0)
                r = chain_check(p, &c->day, 1, 31, "day");
        if (r >= 0)
                r = chain_check(p, &c->hour, 0, 23, "hour");
        if (r >= 0)
                r = chain_check(p, &c->minute, 0, 59, "minute");
        if (r >= 0)
                r = chain_check(p, &c->usec, 0, 60 * USEC_PER_SEC - 1, "second");
        return r;
}

int calendar_spec_from_string(const char *s, CalendarSpec **ret, char *err, size_t errlen) {
        _cleanup_(calendar_spec_freep) CalendarSpec *c = NULL;
        _cleanup_free_ char *buf = NULL;
        Parser p = { .input = s, .err = err, .errlen = errlen };
        const char *t;
        int r;

        if (err && errlen > 0)
                *err = 0;
        c = calloc(1, sizeof(*c));
        buf = strdup(s);
        if (!c || !buf)
                return -ENOMEM;
        c->weekdays = -1;
        c->dst = -1;
        p.buf = buf;
        r = parse_zone(c, buf);
        if (r < 0)
                return r;
        if (*buf == 0)
                return fail(&p, -EINVAL, "empty calendar specification \"%s\"", s);
        r = shorthand(c, buf);
        if (r < 0)
                return r;
        if (r == 0) {
                t = buf;
                r = parse_weekdays(&p, &t, c);
                if (r >= 0)
                        r = parse_date(&p, &t, c);
                if (r == 0)
                        r = parse_time(&p, &t, c);
                if (r < 0)
                        return r;
                if (*t != 0)
                        return fail_at(&p, t);
        }
        r = spec_check(&p, c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- formatting ---- */

static void format_chain(FILE *f, int width, const Chain *c, bool usec) {
        int d = usec ? USEC_PER_SEC : 1;

        if (c->n == 0 || (usec && c->n == 1 && c->v[0].start == 0 && c->v[0].stop < 0 &&
                          c->v[0].repeat == USEC_PER_SEC)) {
                fputc('*', f);
                return;
        }
        for (size_t i = 0; i < c->n; i++) {
                const Component *x = &c->v[i];

                if (i > 0)
                        fputc(',', f);
                fprintf(f, "%0*i", width, x->start / d);
                if (x->start % d > 0)
                        fprintf(f, ".%06i", x->start % d);
                if (x->stop >= 0)
                        fprintf(f, "..%0*i", width, x->stop / d);
                if (x->stop >= 0 && x->stop % d > 0)
                        fprintf(f, ".%06i", x->stop % d);
                if (x->repeat > 0 && !(x->stop > 0 && x->repeat == d))
                        fprintf(f, "/%i", x->repeat / d);
                if (x->repeat % d > 0)
                        fprintf(f, ".%06i", x->repeat % d);
        }
}

static void format_weekdays(FILE *f, int bits) {
        static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
        bool comma = false;
        int l = -1, x;

        for (x = 0; x < 7; x++) {
                if (bits & (1 << x)) {
                        if (l < 0) {
                                if (comma)
                                        fputc(',', f);
                                comma = true;
                                fputs(days[x], f);
                                l = x;
                        }
                } else if (l >= 0) {
                        if (x > l + 1)
                                fprintf(f, "%s%s", x > l + 2 ? ".." : ",", days[x - 1]);
                        l = -1;
                }
        }
        if (l >= 0 && x > l + 1)
                fprintf(f, "%s%s", x > l + 2 ? ".." : ",", days[x - 1]);
}

int calendar_spec_to_string(const CalendarSpec *c, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        if (c->weekdays > 0 && c->weekdays < WEEKDAYS_ALL) {
                format_weekdays(f, c->weekdays);
                fputc(' ', f);
        }
        format_chain(f, 4, &c->year, false);
        fputc('-', f);
        format_chain(f, 2, &c->month, false);
        fputc(c->end_of_month ? '~' : '-', f);
        format_chain(f, 2, &c->day, false);
        fputc(' ', f);
        format_chain(f, 2, &c->hour, false);
        fputc(':', f);
        format_chain(f, 2, &c->minute, false);
        fputc(':', f);
        format_chain(f, 2, &c->usec, true);
        if (c->utc)
                fputs(" UTC", f);
        else if (c->timezone)
                fprintf(f, " %s", c->timezone);
        else if (c->dst == 0 || c->dst == 1) {
                tzset();
                if (tzname[c->dst] && *tzname[c->dst])
                        fprintf(f, " %s", tzname[c->dst]);
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

int calendar_spec_zone(const CalendarSpec *c, const char **ret_zone) {
        if (ret_zone)
                *ret_zone = c->timezone;
        return c->utc;
}

/* ---- next elapse ---- */

static time_t tm_to_time(struct tm *tm, bool utc) {
        return utc ? timegm(tm) : mktime(tm);
}

/* The day @day days before the end of @tm's month (1 = the last day); -1 if there is none. */
static int end_of_month(const struct tm *tm, bool utc, int day) {
        struct tm t = *tm;

        t.tm_mon++;
        t.tm_mday = 1 - day;
        if (tm_to_time(&t, utc) == (time_t) -1 || t.tm_mon != tm->tm_mon)
                return -1;
        return t.tm_mday;
}

/* Moves *val to the earliest value >= *val the chain allows: 1 if it moved, 0 if *val matched,
 * -ENOENT if nothing in the chain is >= *val. */
static int chain_match(const CalendarSpec *spec, const Chain *c, const struct tm *tm, int *val) {
        bool eom = spec->end_of_month && c == &spec->day, found = false;
        int d = 0;

        if (c->n == 0)
                return 0;
        for (size_t i = 0; i < c->n; i++) {
                const Component *x = &c->v[i];
                int start = x->start, stop = x->stop;

                if (eom) {
                        start = end_of_month(tm, spec->utc, x->start);
                        stop = end_of_month(tm, spec->utc, x->stop);
                        if (stop > 0) {
                                int tmp = start;
                                start = stop;
                                stop = tmp;
                        }
                }
                if (start >= *val) {
                        if (!found || start < d)
                                d = start, found = true;
                } else if (x->repeat > 0) {
                        int k = start + x->repeat * ((*val - start + x->repeat - 1) / x->repeat);

                        if ((!found || k < d) && (stop < 0 || k <= stop))
                                d = k, found = true;
                }
        }
        if (!found)
                return -ENOENT;
        if (*val == d)
                return 0;
        *val = d;
        return 1;
}

/* Normalization changed a field: the time did not exist (Feb 30, a DST gap, past MAX_YEAR). */
static bool tm_out_of_bounds(const struct tm *tm, bool utc) {
        struct tm t = *tm;

        if (tm_to_time(&t, utc) == (time_t) -1)
                return true;
        if (tm->tm_year + 1900 > MAX_YEAR)
                return true;
        return t.tm_year != tm->tm_year || t.tm_mon != tm->tm_mon || t.tm_mday != tm->tm_mday ||
               t.tm_hour != tm->tm_hour || t.tm_min != tm->tm_min || t.tm_sec != tm->tm_sec;
}

static bool weekday_matches(int bits, const struct tm *tm, bool utc) {
        struct tm t = *tm;

        if (bits < 0 || bits >= WEEKDAYS_ALL)
                return true;
        if (tm_to_time(&t, utc) == (time_t) -1)
                return false;
        return bits & (1 << (t.tm_wday == 0 ? 6 : t.tm_wday - 1));
}

static void reset_below(struct tm *c, int *usec, int level) {
        /* level: 0 = month and below, 1 = day..., 2 = hour..., 3 = minute..., 4 = second */
        if (level <= 0)
                c->tm_mon = 0;
        if (level <= 1)
                c->tm_mday = 1;
        if (level <= 2)
                c->tm_hour = 0;
        if (level <= 3)
                c->tm_min = 0;
        c->tm_sec = 0;
        *usec = 0;
}

static int find_next(const CalendarSpec *spec, struct tm *tm, int *tm_usec) {
        struct tm c = *tm;
        int usec = *tm_usec, r;

        for (unsigned it = 0; it < MAX_ITERATIONS; it++) {
                (void) tm_to_time(&c, spec->utc);
                c.tm_isdst = spec->dst;

                c.tm_year += 1900;
                r = chain_match(spec, &spec->year, &c, &c.tm_year);
                c.tm_year -= 1900;
                if (r > 0)
                        reset_below(&c, &usec, 0);
                if (r < 0 || tm_out_of_bounds(&c, spec->utc))
                        return -ENOENT;

                c.tm_mon += 1;
                r = chain_match(spec, &spec->month, &c, &c.tm_mon);
                c.tm_mon -= 1;
                if (r > 0)
                        reset_below(&c, &usec, 1);
                if (r < 0 || tm_out_of_bounds(&c, spec->utc)) {
                        c.tm_year++;
                        reset_below(&c, &usec, 0);
                        continue;
                }

                r = chain_match(spec, &spec->day, &c, &c.tm_mday);
                if (r > 0)
                        reset_below(&c, &usec, 2);
                if (r < 0 || tm_out_of_bounds(&c, spec->utc)) {
                        c.tm_mon++;
                        reset_below(&c, &usec, 1);
                        continue;
                }

                if (!weekday_matches(spec->weekdays, &c, spec->utc)) {
                        c.tm_mday++;
                        reset_below(&c, &usec, 2);
                        continue;
                }

                r = chain_match(spec, &spec->hour, &c, &c.tm_hour);
                if (r > 0)
                        reset_below(&c, &usec, 3);
                if (r < 0 || tm_out_of_bounds(&c, spec->utc)) {
                        c.tm_mday++;
                        reset_below(&c, &usec, 2);
                        continue;
                }

                r = chain_match(spec, &spec->minute, &c, &c.tm_min);
                if (r > 0)
                        reset_below(&c, &usec, 4);
                if (r < 0 || tm_out_of_bounds(&c, spec->utc)) {
                        c.tm_hour++;
                        reset_below(&c, &usec, 3);
                        continue;
                }

                c.tm_sec = c.tm_sec * USEC_PER_SEC + usec;
                r = chain_match(spec, &spec->usec, &c, &c.tm_sec);
                usec = c.tm_sec % USEC_PER_SEC;
                c.tm_sec /= USEC_PER_SEC;
                if (r < 0 || tm_out_of_bounds(&c, spec->utc)) {
                        c.tm_min++;
                        reset_below(&c, &usec, 4);
                        continue;
                }
                *tm = c;
                *tm_usec = usec;
                return 0;
        }
        return -EDEADLK; /* systemd's safety valve for specs that never settle */
}

static int next_in_current_zone(const CalendarSpec *spec, uint64_t after, uint64_t *ret) {
        struct tm tm;
        time_t t;
        int usec, r;

        if (after >= USEC_FORMATTABLE_MAX)
                return -ENOENT;
        after++;
        t = (time_t) (after / USEC_PER_SEC);
        if (!(spec->utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)))
                return -EINVAL;
        usec = (int) (after % USEC_PER_SEC);
        r = find_next(spec, &tm, &usec);
        if (r < 0)
                return r;
        t = tm_to_time(&tm, spec->utc);
        if (t < 0)
                return -ENOENT;
        *ret = (uint64_t) t * USEC_PER_SEC + (uint64_t) usec;
        return 0;
}

int calendar_spec_next(const CalendarSpec *spec, uint64_t after_usec, uint64_t *ret_next_usec) {
        _cleanup_free_ char *saved = NULL;
        const char *old;
        uint64_t next = 0;
        int r;

        if (!spec->timezone) {
                r = next_in_current_zone(spec, after_usec, &next);
                if (r >= 0)
                        *ret_next_usec = next;
                return r;
        }
        /* Single-threaded by contract (calendar.h): switch the process's zone around the
         * computation and put the old one back, so localtime() users see no change. */
        old = getenv("TZ");
        if (old) {
                saved = strdup(old);
                if (!saved)
                        return -ENOMEM;
        }
        if (setenv("TZ", spec->timezone, 1) < 0)
                return -errno;
        tzset();
        r = next_in_current_zone(spec, after_usec, &next);
        if (saved)
                (void) setenv("TZ", saved, 1);
        else
                (void) unsetenv("TZ");
        tzset();
        if (r >= 0)
                *ret_next_usec = next;
        return r;
}
