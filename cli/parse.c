/* Command-line value parsers; see parse.h. */

#include "cli/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        /* Longest suffixes first: "ms" must win over "m". */
        { "ms", USEC_PER_MSEC },      { "us", 1 },
        { "s", USEC_PER_SEC },        { "m", 60 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC }, { "d", 24 * 3600 * USEC_PER_SEC },
};

/* The unit at @p, its length in *ret_len; 0 when none matches. */
static uint64_t duration_unit(const char *p, size_t *ret_len) {
        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                size_t n = strlen(duration_units[i].suffix);

                if (strncmp(p, duration_units[i].suffix, n) == 0) {
                        *ret_len = n;
                        return duration_units[i].usec;
                }
        }
        return 0;
}

static int duration_error(const char *what, const char *text) {
        return ctl_error("invalid duration '%s' for %s: expected e.g. 500ms, 10s, 5m, 2h, 1d, "
                         "1h30m or plain seconds",
                         text, what);
}

int parse_duration(const char *what, const char *text, uint64_t *ret_usec) {
        double total = 0;
        const char *p = text;

        if (!*p)
                return duration_error(what, text);
        while (*p) {
                char *end;
                double n;
                uint64_t unit;
                size_t len = 0;

                if (*p < '0' || *p > '9')
                        return duration_error(what, text);
                errno = 0;
                n = strtod(p, &end);
                /* strtod() also reads "0x1p3" and "1e3": only digits and a point are ours. */
                if (errno != 0 || end == p || strspn(p, "0123456789.") != (size_t) (end - p))
                        return duration_error(what, text);
                p = end;
                unit = *p ? duration_unit(p, &len) : USEC_PER_SEC;
                if (unit == 0)
                        return duration_error(what, text);
                if (len == 0 && total > 0) /* "1h30": a bare number only stands alone */
                        return duration_error(what, text);
                total += n * (double) unit;
                p += len;
        }
        if (total >= 0x1p63)
                return ctl_error("duration '%s' for %s is too long", text, what);
        *ret_usec = (uint64_t) (total + 0.5);
        return 0;
}

int parse_count(const char *what, const char *text, uint64_t max, uint64_t *ret) {
        unsigned long long n;
        char *end;

        errno = 0;
        if (text[0] < '0' || text[0] > '9')
                return ctl_error("invalid value '%s' for %s: expected a positive integer", text,
                                 what);
        n = strtoull(text, &end, 10);
        if (errno != 0 || *end || n == 0 || n > max)
                return ctl_error("invalid value '%s' for %s: expected an integer from 1 to %llu",
                                 text, what, (unsigned long long) max);
        *ret = n;
        return 0;
}

static int json_error(const char *what, const json_error_t *e) {
        if (e->line < 1) /* not a syntax error: the file could not be read */
                return ctl_error("cannot read JSON for %s: %s", what, e->text);
        return ctl_error("invalid JSON in %s: %s (line %d, column %d)", what, e->text, e->line,
                         e->column);
}

int parse_json(const char *what, const char *text, json_t **ret) {
        json_error_t e;
        json_t *j;

        j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
        if (!j)
                return json_error(what, &e);
        *ret = j;
        return 0;
}

int parse_json_file(const char *what, const char *path, json_t **ret) {
        json_error_t e;
        json_t *j;

        if (streq(path, "-"))
                j = json_loadf(stdin, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
        else
                j = json_load_file(path, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
        if (!j)
                return json_error(what, &e);
        *ret = j;
        return 0;
}
