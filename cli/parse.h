#pragma once
/* Parsers for durablectl's command-line values: durations, counts and JSON payloads. They print
 * what is wrong with the value, naming the argument (e.g. "--timeout"), and return -EINVAL, so
 * that the caller only maps the failure to exit status 2. */

#include <stdint.h>

#include <jansson.h>

/* "500ms", "10s", "5m", "2h", "1d", "1h30m", "250us", or plain (possibly fractional) seconds
 * ("1.5"). */
int parse_duration(const char *what, const char *text, uint64_t *ret_usec);
/* A decimal integer in [1, @max]. */
int parse_count(const char *what, const char *text, uint64_t max, uint64_t *ret);
/* Any JSON value, e.g. '{"order_id": "42"}', '"text"', '17' or 'null'. */
int parse_json(const char *what, const char *text, json_t **ret);
/* The JSON value in file @path ("-" is standard input). */
int parse_json_file(const char *what, const char *path, json_t **ret);
