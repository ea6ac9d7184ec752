#pragma once
/* Terminal output of durablectl: error lines ("durablectl: <message>"), colour (only on a tty),
 * aligned tables, key-value blocks, time and duration formatting, and JSON documents on stdout.
 * Everything here writes to stdout except the error functions, which write to stderr. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/cleanup.h"

#define ANSI_BOLD "\x1b[1m"
#define ANSI_RED "\x1b[31m"
#define ANSI_GREEN "\x1b[32m"
#define ANSI_YELLOW "\x1b[33m"
#define ANSI_BLUE "\x1b[34m"
#define ANSI_GREY "\x1b[90m"
#define ANSI_NORMAL "\x1b[0m"

/* Buffer sizes of the formatters below, terminating NUL included. */
#define TIME_TEXT_MAX 40
#define DURATION_TEXT_MAX 64

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)

/* Decides once whether stdout gets colour: a tty, $NO_COLOR unset, $TERM not "dumb", and no
 * --json. Call before a pager replaces stdout. */
void output_init(bool json);
bool output_color(void);
/* --no-legend: tables and event listings without their header line. */
void output_set_legend(bool legend);
bool output_legend(void);
/* @color when colour is on, else "". */
const char *ansi(const char *color);
/* The colour of a workflow status ("Completed" green, "Failed" red, ...), or NULL. */
const char *status_color(const char *status);

/* Prints "durablectl: <message>" on stderr and returns -abs(@error) (-EINVAL when @error is 0).
 * "%m" in @fmt is strerror(@error). */
int ctl_error_errno(int error, const char *fmt, ...) _printf_(2, 3);
#define ctl_error(...) ctl_error_errno(EINVAL, __VA_ARGS__)

/* "2025-11-25 07:01:02 CET" in local time, with ".123" milliseconds if @millis; "-" for 0. */
char *format_time_local(uint64_t realtime_usec, bool millis, char buf[static TIME_TEXT_MAX]);
/* ISO 8601 in UTC with microseconds: "2025-11-25T06:01:02.123456Z". */
char *format_time_iso(uint64_t realtime_usec, char buf[static TIME_TEXT_MAX]);
/* "1h30m", "1s500ms", "2d"; "0" for 0. The syntax parse_duration() reads back. */
char *format_duration(uint64_t usec, char buf[static DURATION_TEXT_MAX]);

/* Prints "<key>: <value>" with keys right-aligned to one column (systemctl status style). The
 * value is coloured with @color (may be NULL). An empty @key continues the key above. */
void kv_print(const char *key, const char *color, const char *fmt, ...) _printf_(3, 4);

/* A table of text cells printed with aligned columns and a bold header line. */
typedef struct Table Table;

/* Columns are named by the NULL-terminated list of headers. */
int table_new(Table **ret, const char *header, ...);
Table *table_free(Table *t);
/* Appends the next cell (rows fill left to right); @text is copied, NULL prints as "-". */
int table_add(Table *t, const char *text, const char *color);
/* Takes a malloc'd @text. */
int table_add_take(Table *t, char *text, const char *color);
size_t table_rows(const Table *t);
void table_print(const Table *t);

DEFINE_CLEANUP(Table, table_free);
/* JSON values use jansson's own json_decrefp (json_auto_t). */

/* Prints @j as an indented JSON document and a newline. -ENOMEM, or -EINVAL when @j holds a
 * string that is not UTF-8. */
int json_print(const json_t *j);
/* One-line JSON of @j, cut at @max bytes with "..." (0 = no limit); NULL on OOM. */
char *json_oneline(const json_t *j, size_t max);
