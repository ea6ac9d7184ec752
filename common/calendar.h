#pragma once
/* Calendar events in systemd's OnCalendar= syntax (systemd.time(7)): parsing, the normalized form
 * exactly as `systemd-analyze calendar` prints it, and the next elapse after a given time.
 *
 * A CalendarSpec is immutable once parsed and owned by whoever parsed it. Times are usec since
 * the epoch (CLOCK_REALTIME). Specs in a named time zone are computed with the C library's tz
 * database by switching $TZ around the computation (see calendar.c): call these functions from
 * one thread only (the daemon and durablectl are single-threaded). */

#include <stdint.h>

#include "common/cleanup.h"

typedef struct CalendarSpec CalendarSpec;

/* Parses @s. On failure returns -EINVAL (-ERANGE for a number too large, -ENOBUFS for too many
 * list elements) and writes a sentence naming the problem into @err (may be NULL). */
int calendar_spec_from_string(const char *s, CalendarSpec **ret, char *err, size_t errlen);
CalendarSpec *calendar_spec_free(CalendarSpec *c);
DEFINE_CLEANUP(CalendarSpec, calendar_spec_free);

/* The normalized form, as systemd-analyze prints it ("Mon..Fri *-*-* 09:00:00"); malloc'ed. */
int calendar_spec_to_string(const CalendarSpec *c, char **ret);

/* The first elapse strictly after @after_usec; -ENOENT when the spec never elapses again. */
int calendar_spec_next(const CalendarSpec *c, uint64_t after_usec, uint64_t *ret_next_usec);

/* 1 when the spec is in UTC, 0 when in local time, and its zone name through @ret_zone (NULL for
 * local time and UTC). */
int calendar_spec_zone(const CalendarSpec *c, const char **ret_zone);
