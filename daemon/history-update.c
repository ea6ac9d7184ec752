/* Workflow updates (SEMANTICS.md b.7): a request a caller sends to a running workflow, validated
 * by the workflow's code before anything is written, then recorded and handled by it, with a
 * result (or a failure) returned to the caller.
 *
 * Life of an update:
 *
 *   UpdateWorkflow --limits, dedup--> validation (a query task: taskq.c) --rejected--> error,
 *                                                                          no event
 *                                        |accepted
 *                                        v
 *   WorkflowExecutionUpdateAccepted {update_id, update_name, input, identity} (an external
 *   event: the worker's replay spawns the handler on a coroutine of its own)
 *                                        |handler returned
 *                                        v
 *   WorkflowExecutionUpdateCompleted {update_id, accepted_event_id, result | failure}
 *   (the CompleteWorkflowUpdate command of a workflow task)
 *
 * Everything about an update is in the history: its id, its request and its outcome. Nothing is
 * kept in memory but the validations in flight and the callers that wait, so a daemon killed
 * and restarted finds every accepted update again, and a caller that lost its connection asks
 * again by update id (PollWorkflowUpdate). A validation in flight when the daemon dies is lost
 * with its caller's connection: that update was never acknowledged, as in Temporal.
 *
 * Updates of a run are found by reading its history (and the events buffered behind a workflow
 * task in flight); a run holds at most --max-updates-per-run of them. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/history-internal.h"
#include "daemon/taskq.h"
#include "proto/event.h"

void history_uuid(char out[static 37]) {
        run_id_new(out);
}

void update_state_done(UpdateState *u) {
        free(u->result.ptr);
        free(u->failure.ptr);
        *u = (UpdateState){};
}

typedef struct UpdateScan {
        const char *update_id;
        UpdateState *u;
} UpdateScan;

/* Copies attribute @key of @attrs as raw msgpack into @ret. */
static int copy_attr(const msgpack_object *attrs, const char *key, Blob *ret) {
        return blob_from_object(msg_get(attrs, key), ret);
}

static int scan_one(uint64_t event_id, EventType type, const void *attrs, size_t size, void *ud) {
        UpdateScan *s = ud;
        UpdateState *u = s->u;
        msgpack_unpacked m;
        bool mine;
        int r = 0;

        if (type != EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED &&
            type != EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
                return 0;
        msgpack_unpacked_init(&m);
        if (msg_decode(attrs, size, &m) < 0) {
                msgpack_unpacked_destroy(&m);
                return -EUCLEAN; /* our own event: the history is damaged */
        }
        mine = s->update_id && msg_str_eq(msg_get(&m.data, "update_id"), s->update_id);
        if (type == EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) {
                u->total++;
                u->in_flight++;
                if (mine) {
                        u->accepted = true;
                        u->accepted_id = event_id;
                }
        } else {
                if (u->in_flight > 0)
                        u->in_flight--;
                if (mine) {
                        u->completed_id = event_id;
                        r = copy_attr(&m.data, "result", &u->result);
                        if (r >= 0)
                                r = copy_attr(&m.data, "failure", &u->failure);
                }
        }
        msgpack_unpacked_destroy(&m);
        return r;
}

static int scan_event(uint64_t event_id,
                      EventType type,
                      uint64_t time,
                      uint32_t uid,
                      const void *attrs,
                      size_t size,
                      void *userdata) {
        return scan_one(event_id, type, attrs, size, userdata);
}

/* A buffered event has no id yet: an update accepted there is accepted, at an id to come. */
static int scan_buffered(EventType type,
                         uint64_t time,
                         uint32_t uid,
                         const void *attrs,
                         size_t size,
                         bool link_started,
                         void *userdata) {
        return scan_one(0, type, attrs, size, userdata);
}

int history_update_state(Manager *m, const RunRow *run, const char *update_id, UpdateState *ret) {
        UpdateState u = {};
        UpdateScan s = { update_id, &u };
        int r;

        r = store_events_foreach(m->store, run->run_id, 1, scan_event, &s);
        if (r >= 0)
                r = store_buffered_foreach(m->store, run->run_id, scan_buffered, &s);
        if (r < 0) {
                update_state_done(&u);
                return r;
        }
        *ret = u;
        return 0;
}

int history_accept_update(Manager *m, const char *run_id, const UpdateRequest *req, ApiError *e) {
        _cleanup_(run_row_done) RunRow run = {};
        _cleanup_(update_state_done) UpdateState u = {};
        msgpack_packer *pk;
        Attrs a;
        int r;

        r = store_run_get(m->store, run_id, &run);
        if (r == -ENOENT)
                return api_error_set(e, -ENOENT, "run %s not found", run_id);
        if (r < 0)
                return r;
        r = history_update_state(m, &run, req->update_id, &u);
        if (r < 0)
                return r;
        if (u.accepted)
                return 0; /* the same update id was validated twice: it is accepted once */
        if (run.status != WORKFLOW_STATUS_RUNNING)
                return api_error_set(
                        e, -ENOENT, "workflow '%s' closed (%s) before update '%s' was accepted",
                        run.workflow_id, workflow_status_to_string(run.status), req->update_id);
        if (run.next_event_id - 1 >= m->cfg.history_max_events)
                return api_error_set(e, -ENOBUFS,
                                     "the history of workflow '%s' reached the limit of %" PRIu64
                                     " events (durabled --history-max-events)",
                                     run.workflow_id, m->cfg.history_max_events);
        pk = attrs_begin(&a, req->identity ? 4 : 3);
        (void) msg_pack_kv_str(pk, "update_id", req->update_id);
        (void) msg_pack_kv_str(pk, "update_name", req->name);
        (void) pack_kv_payload(pk, "input", req->input.ptr, req->input.size);
        if (req->identity)
                (void) msg_pack_kv_str(pk, "identity", req->identity);
        r = append_external(m, &run, EVENT_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, &a, false);
        attrs_done(&a);
        if (r < 0)
                return r;
        log_run(LOG_DEBUG, &run, "Workflow '%s' accepted update '%s' (%s)", run.workflow_id,
                req->update_id, req->name);
        return store_run_update(m->store, &run);
}

typedef struct CompleteUpdateCommand {
        const char *update_id;
        MsgBin result;
        const msgpack_object *failure;
} CompleteUpdateCommand;

static const MsgField complete_update_fields[] = {
        { "update_id", MSG_STR, offsetof(CompleteUpdateCommand, update_id), true, NAME_MAX_LEN },
        { "result", MSG_BIN, offsetof(CompleteUpdateCommand, result), false, PAYLOAD_SIZE_MAX },
        { "failure", MSG_MAP, offsetof(CompleteUpdateCommand, failure) },
        {},
};

int history_apply_complete_update(Manager *m,
                                  RunRow *run,
                                  const msgpack_object *attrs,
                                  uint64_t completed_id,
                                  msgpack_zone *z,
                                  bool dry,
                                  char *err,
                                  size_t errlen) {
        _cleanup_(update_state_done) UpdateState u = {};
        CompleteUpdateCommand c = {};
        msgpack_packer *pk;
        Attrs a;
        int r;

        r = msg_parse(attrs, z, complete_update_fields, &c, err, errlen);
        if (r < 0)
                return r;
        if (c.result.ptr && c.failure) {
                snprintf(err, errlen, "update '%s': give a result or a failure, not both",
                         c.update_id);
                return -EINVAL;
        }
        r = history_update_state(m, run, c.update_id, &u);
        if (r < 0)
                return r;
        if (!u.accepted_id) {
                snprintf(err, errlen, "update '%s' was not accepted in this run", c.update_id);
                return -EINVAL;
        }
        if (u.completed_id) {
                snprintf(err, errlen, "update '%s' was already completed at event %" PRIu64,
                         c.update_id, u.completed_id);
                return -EINVAL;
        }
        if (dry)
                return 0;
        pk = attrs_begin(&a, 4);
        (void) msg_pack_kv_str(pk, "update_id", c.update_id);
        (void) msg_pack_kv_uint(pk, "accepted_event_id", u.accepted_id);
        if (c.failure) {
                (void) msg_pack_str(pk, "failure");
                (void) msgpack_pack_object(pk, *c.failure);
        } else
                (void) pack_kv_payload(pk, "result", c.result.ptr, c.result.size);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_WORKFLOW_EXECUTION_UPDATE_COMPLETED, &a, NULL);
        attrs_done(&a);
        return r;
}

int history_pack_update(msgpack_packer *pk,
                        const char *run_id,
                        const char *update_id,
                        const UpdateState *u) {
        bool completed = u->completed_id != 0;

        (void) msgpack_pack_map(pk, completed ? 4 : 3);
        (void) msg_pack_kv_str(pk, "update_id", update_id);
        (void) msg_pack_kv_str(pk, "run_id", run_id);
        (void) msg_pack_kv_str(pk, "stage", completed ? "Completed" : "Accepted");
        if (!completed)
                return 0;
        if (u->failure.ptr)
                return pack_kv_raw(pk, "failure", &u->failure);
        return pack_kv_raw(pk, "result", &u->result);
}
