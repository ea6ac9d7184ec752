#pragma once
/* The schedule operations of the socket API (doc/protocol.md, "Schedule operations"):
 * CreateSchedule, DescribeSchedule, ListSchedules, PauseSchedule, UnpauseSchedule,
 * TriggerSchedule, BackfillSchedule, DeleteSchedule. api-sock.c decodes and authorises the
 * frame, opens the savepoint of a writing operation and calls these with the request; they
 * answer on the connection, or return a negative errno with the sentence in @err. */

#include <stdint.h>

#include <msgpack.h>

#include "daemon/api-error.h"
#include "daemon/manager.h"

typedef struct ApiCall {
        Manager *m;
        Conn *conn;
        uint64_t id; /* the request's id, echoed in the answer */
        const msgpack_object *map;
        msgpack_zone *zone;
        ApiError *err;
} ApiCall;

int api_create_schedule(const ApiCall *c);
int api_describe_schedule(const ApiCall *c);
int api_list_schedules(const ApiCall *c);
int api_pause_schedule(const ApiCall *c);
int api_unpause_schedule(const ApiCall *c);
int api_trigger_schedule(const ApiCall *c);
int api_backfill_schedule(const ApiCall *c);
int api_delete_schedule(const ApiCall *c);
