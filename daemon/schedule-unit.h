#pragma once
/* Schedules declared in *.schedule unit files (durabled.schedule(5)): systemd unit syntax, one
 * [Schedule] section whose keys are those of CreateSchedule. At start-up the daemon makes the
 * schedules of its schedule directory match the files: a new file creates its schedule (owned by
 * the daemon's user), a changed file replaces the definition (the schedule keeps its cursor,
 * counters and recent actions), a removed file deletes the schedule. A file with an error is
 * reported with its line and changes nothing; a schedule of the same name created through the
 * API is left alone. */

#include <stddef.h>

#include "daemon/manager.h"
#include "proto/msg.h"

/* Parses the unit file text @text into a CreateSchedule-style msgpack map in @out. On failure
 * returns -EINVAL, the line at fault in *@ret_line (0: the whole file) and what is wrong with it
 * in @err. */
int schedule_unit_parse(
        const char *text, MsgBuf *out, unsigned *ret_line, char *err, size_t errlen);

/* Makes the schedules declared in @dir (which may be missing: no files) match its files. Runs
 * inside the pass's transaction. */
int schedule_units_sync(Manager *m, const char *dir);
