/* Terminal output of durablectl; see output.h.
 *
 * Tables keep every cell as an owned string plus an optional colour; the colour is printed
 * around the text after padding has been computed from the text alone, so escape sequences
 * never disturb the alignment. The last column is never padded (no trailing blanks). */

#include "cli/output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEY_WIDTH 15

static bool use_color;
static bool use_legend = true;

void output_set_legend(bool legend) {
        use_legend = legend;
}

bool output_legend(void) {
        return use_legend;
}

void output_init(bool json) {
        const char *term = getenv("TERM");

        use_color = !json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR") &&
                    !(term && streq(term, "dumb"));
}

bool output_color(void) {
        return use_color;
}

const char *ansi(const char *color) {
        return use_color && color ? color : "";
}

const char *status_color(const char *status) {
        static const struct {
                const char *status;
                const char *color;
        } colors[] = {
                { "Running", ANSI_BLUE },        { "Completed", ANSI_GREEN },
                { "Failed", ANSI_RED },          { "TimedOut", ANSI_RED },
                { "Terminated", ANSI_RED },      { "Canceled", ANSI_YELLOW },
                { "ContinuedAsNew", ANSI_GREY }, { "Paused", ANSI_YELLOW },
        };

        for (size_t i = 0; status && i < ELEMENTSOF(colors); i++)
                if (streq(colors[i].status, status))
                        return colors[i].color;
        return NULL;
}

int ctl_error_errno(int error, const char *fmt, ...) {
        va_list ap;

        error = error == 0 ? EINVAL : abs(error);
        errno = error; /* for %m */
        fputs("durablectl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -error;
}

char *format_time_local(uint64_t realtime_usec, bool millis, char buf[static TIME_TEXT_MAX]) {
        time_t sec = (time_t) (realtime_usec / USEC_PER_SEC);
        char date[24], zone[12];
        struct tm tm;

        if (realtime_usec == 0 || !localtime_r(&sec, &tm))
                return strcpy(buf, "-");
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
        strftime(zone, sizeof(zone), "%Z", &tm);
        if (millis)
                snprintf(buf, TIME_TEXT_MAX, "%s.%03u %s", date,
                         (unsigned) (realtime_usec % USEC_PER_SEC / 1000), zone);
        else
                snprintf(buf, TIME_TEXT_MAX, "%s %s", date, zone);
        return buf;
}

char *format_time_iso(uint64_t realtime_usec, char buf[static TIME_TEXT_MAX]) {
        time_t sec = (time_t) (realtime_usec / USEC_PER_SEC);
        char date[24];
        struct tm tm;

        if (!gmtime_r(&sec, &tm))
                return strcpy(buf, "-");
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, TIME_TEXT_MAX, "%s.%06uZ", date, (unsigned) (realtime_usec % USEC_PER_SEC));
        return buf;
}

char *format_duration(uint64_t usec, char buf[static DURATION_TEXT_MAX]) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "d", 24 * 3600 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },
                { "s", USEC_PER_SEC },
                { "ms", 1000 },
                { "us", 1 },
        };
        size_t len = 0;

        if (usec == 0)
                return strcpy(buf, "0");
        for (size_t i = 0; i < ELEMENTSOF(units) && usec > 0; i++) {
                uint64_t n = usec / units[i].usec;

                if (n == 0)
                        continue;
                len += (size_t) snprintf(buf + len, DURATION_TEXT_MAX - len, "%llu%s",
                                         (unsigned long long) n, units[i].suffix);
                usec -= n * units[i].usec;
        }
        return buf;
}

void kv_print(const char *key, const char *color, const char *fmt, ...) {
        va_list ap;

        /* An empty key continues the value of the key above it. */
        printf("%*s%s%s", KEY_WIDTH, key, *key ? ": " : "  ", ansi(color));
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("%s\n", color ? ansi(ANSI_NORMAL) : "");
}

typedef struct Cell {
        char *text;
        const char *color;
} Cell;

struct Table {
        const char **headers;
        size_t n_columns;
        Cell *cells;
        size_t n_cells;
        size_t allocated;
};

int table_new(Table **ret, const char *header, ...) {
        _cleanup_(table_freep) Table *t = NULL;
        va_list ap;
        size_t n = 0;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        va_start(ap, header);
        for (const char *h = header; h; h = va_arg(ap, const char *))
                n++;
        va_end(ap);
        t->headers = calloc(n, sizeof(char *));
        if (!t->headers)
                return -ENOMEM;
        va_start(ap, header);
        for (const char *h = header; h; h = va_arg(ap, const char *))
                t->headers[t->n_columns++] = h;
        va_end(ap);
        *ret = TAKE_PTR(t);
        return 0;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i].text);
        free(t->cells);
        free(t->headers);
        free(t);
        return NULL;
}

int table_add_take(Table *t, char *text, const char *color) {
        if (!text)
                text = strdup("-");
        if (!text)
                return -ENOMEM;
        if (t->n_cells == t->allocated) {
                size_t n = t->allocated ? 2 * t->allocated : 64;
                Cell *c = reallocarray(t->cells, n, sizeof(Cell));

                if (!c) {
                        free(text);
                        return -ENOMEM;
                }
                t->cells = c;
                t->allocated = n;
        }
        t->cells[t->n_cells++] = (Cell){ .text = text, .color = color };
        return 0;
}

int table_add(Table *t, const char *text, const char *color) {
        char *copy = strdup(text ? text : "-");

        if (!copy)
                return -ENOMEM;
        return table_add_take(t, copy, color);
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns;
}

/* Prints one cell, padded to @width unless it ends the line. */
static void print_cell(const char *text, const char *color, size_t width, bool last) {
        printf("%s%s%s", ansi(color), text, color ? ansi(ANSI_NORMAL) : "");
        if (last)
                putchar('\n');
        else
                printf("%*s", (int) (width - strlen(text) + 2), "");
}

void table_print(const Table *t) {
        _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(size_t));

        if (!width)
                return;
        for (size_t c = 0; c < t->n_columns; c++)
                width[c] = strlen(t->headers[c]);
        for (size_t i = 0; i < t->n_cells; i++)
                width[i % t->n_columns] = MAX(width[i % t->n_columns], strlen(t->cells[i].text));
        for (size_t c = 0; use_legend && c < t->n_columns; c++)
                print_cell(t->headers[c], ANSI_BOLD, width[c], c + 1 == t->n_columns);
        for (size_t i = 0; i < t->n_cells; i++)
                print_cell(t->cells[i].text, t->cells[i].color, width[i % t->n_columns],
                           i % t->n_columns + 1 == t->n_columns);
}

int json_print(const json_t *j) {
        _cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);

        if (!s)
                return -EINVAL;
        puts(s);
        return 0;
}

/* Cuts @s at @max bytes, on a UTF-8 character boundary, and appends "...". */
static void truncate_utf8(char *s, size_t max) {
        size_t n = strlen(s);

        if (max == 0 || n <= max || max < 4)
                return;
        n = max - 3;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                n--;
        strcpy(s + n, "...");
}

char *json_oneline(const json_t *j, size_t max) {
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

        if (s)
                truncate_utf8(s, max);
        return s;
}
