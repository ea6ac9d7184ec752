#pragma once
/* The Unix-socket API (doc/protocol.md): one call per received frame. */

#include <stdbool.h>
#include <stddef.h>

typedef struct Manager Manager;
typedef struct Conn Conn;

void api_handle_frame(Manager *m, Conn *c, const char *body, size_t len);
/* Id conflict policy Queue: starts the oldest queued start of each workflow id whose run closed
 * in this pass (the manager's closed_runs), or of every id that has one (@all: at start-up),
 * when no run of that id runs, each in a savepoint. Negative errno when the store fails. */
int api_run_queued_starts(Manager *m, bool all);
