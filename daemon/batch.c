/* Batch operations; see batch.h.
 *
 * Starting a batch takes a snapshot: the runs the filter matches become its items (seq 1..total,
 * oldest first), in the same transaction as the batch row and its first deadline. A batch that
 * later matches more runs does not grow; a run that closed meanwhile is an item that fails
 * (not_found, as for any operation on a closed run). Each DEADLINE_BATCH does up to BATCH_SLICE
 * items (fewer with rps: as many as 100 ms allow), each in a savepoint of its own acting as the
 * batch's owner, records each outcome on its item and moves next_seq; the next deadline is due
 * once the rate allows, but never in the same loop pass (due after now), so other work runs
 * between slices. An error of the store (not of an item) undoes the whole slice, which is then
 * done again. */

#include "daemon/batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/clock.h"
#include "daemon/history.h"
#include "proto/error.h"

static const char *const batch_ops[] = {
        "Signal", "Cancel", "Terminate", "Delete", "Reset", "Pause", "Unpause",
};

static bool op_valid(const char *op) {
        for (size_t i = 0; i < ELEMENTSOF(batch_ops); i++)
                if (streq(batch_ops[i], op))
                        return true;
        return false;
}

static int pack_args(const BatchStartRequest *req, Blob *ret) {
        MsgBuf b;
        int r;

        msgbuf_init(&b);
        (void) msgpack_pack_map(&b.pk, 5);
        (void) msg_pack_kv_str(&b.pk, "reason", req->reason ? req->reason : "");
        (void) msg_pack_kv_str(&b.pk, "signal_name", req->signal_name ? req->signal_name : "");
        (void) msg_pack_kv_bin(&b.pk, "input", req->input.ptr, req->input.size);
        (void) msg_pack_kv_str(&b.pk, "to", req->to ? req->to : "last");
        (void) msg_pack_str(&b.pk, "reapply_signals");
        (void) (req->reapply_signals ? msgpack_pack_true(&b.pk) : msgpack_pack_false(&b.pk));
        r = msgbuf_error(&b);
        if (r >= 0) {
                ret->ptr = malloc(b.sb.size);
                if (ret->ptr) {
                        memcpy(ret->ptr, b.sb.data, b.sb.size);
                        ret->size = b.sb.size;
                } else
                        r = -ENOMEM;
        }
        msgbuf_done(&b);
        return r;
}

int batch_start(Manager *m,
                const BatchStartRequest *req,
                const FilterSql *filter,
                char ret_batch_id[static 37],
                uint64_t *ret_total,
                ApiError *e) {
        _cleanup_(batch_row_done) BatchRow b = {}, existing = {};
        char id[37];
        int r;

        if (!op_valid(req->op))
                return api_error_set(e, -EINVAL,
                                     "field \"operation\" takes Signal, Cancel, Terminate, Delete, "
                                     "Reset, Pause or Unpause, not '%s'",
                                     req->op);
        if (streq(req->op, "Signal") && (!req->signal_name || !*req->signal_name))
                return api_error_set(e, -EINVAL, "a Signal batch needs \"signal_name\"");
        if (req->rps < 0 || req->rps > 1e6)
                return api_error_set(e, -EINVAL, "field \"rps\" must be between 0 and 1000000");
        if (req->batch_id)
                snprintf(id, sizeof(id), "%s", req->batch_id);
        else
                history_new_id(id);
        b.batch_id = strdup(id);
        b.op = strdup(req->op);
        b.query = strdup(req->query ? req->query : "");
        if (!b.batch_id || !b.op || !b.query)
                return -ENOMEM;
        r = pack_args(req, &b.args);
        if (r < 0)
                return r;
        b.uid = m->actor_uid;
        b.rps = req->rps;
        b.state = BATCH_RUNNING;
        b.create_time = clock_now();
        b.next_seq = 1;
        r = store_batch_get(m->store, id, &existing);
        if (r >= 0)
                return api_error_set(e, -EEXIST, "batch '%s' exists already", id);
        if (r != -ENOENT)
                return r;
        r = store_batch_snapshot(m->store, id, filter, !req->caller_admin, m->actor_uid,
                                 BATCH_ITEMS_MAX + 1, &b.total);
        if (r < 0)
                return r;
        if (b.total > BATCH_ITEMS_MAX)
                return api_error_set(e, -ENOBUFS, "the filter matches more than %d runs: narrow it",
                                     BATCH_ITEMS_MAX);
        if (b.total == 0) { /* nothing to do: done at once */
                b.state = BATCH_COMPLETED;
                b.close_time = b.create_time;
        }
        r = store_batch_insert(m->store, &b);
        if (r >= 0 && b.state == BATCH_RUNNING)
                r = store_deadline_insert(m->store, b.create_time, DEADLINE_BATCH, "", 0, 0, id);
        if (r < 0)
                return r;
        manager_deadlines_changed(m);
        log_info("Batch %s started: %s on %" PRIu64 " runs (%s)", id, b.op, b.total,
                 b.query[0] ? b.query : "every run");
        memcpy(ret_batch_id, id, 37);
        *ret_total = b.total;
        return 0;
}

/* The arguments of the batch's operation, decoded once per slice. */
typedef struct BatchArgs {
        const char *reason;
        const char *signal_name;
        MsgBin input;
        const char *to;
        bool reapply_signals;
} BatchArgs;

static const MsgField args_fields[] = {
        { "reason", MSG_STR, offsetof(BatchArgs, reason) },
        { "signal_name", MSG_STR, offsetof(BatchArgs, signal_name) },
        { "input", MSG_BIN, offsetof(BatchArgs, input) },
        { "to", MSG_STR, offsetof(BatchArgs, to) },
        { "reapply_signals", MSG_BOOL, offsetof(BatchArgs, reapply_signals) },
        {},
};

/* One item: the operation on its run. An error an operation may answer (the run closed, is
 * paused already, ...) is the item's failure, in @e; others are the store's. */
static int
item_apply(Manager *m, const BatchRow *b, const BatchArgs *a, const BatchItem *it, ApiError *e) {
        const char *reason = a->reason && *a->reason ? a->reason : NULL;
        PauseRequest p = { .reason = reason, .identity = b->batch_id };
        char new_run_id[37];

        if (streq(b->op, "Signal"))
                return history_signal(m, it->run_id, a->signal_name, &a->input, e);
        if (streq(b->op, "Cancel"))
                return history_request_cancel(m, it->run_id, reason, e);
        if (streq(b->op, "Terminate"))
                return history_terminate(m, it->run_id, reason, NULL, e);
        if (streq(b->op, "Delete"))
                return history_delete(m, it->run_id, reason, e);
        if (streq(b->op, "Pause"))
                return history_pause(m, it->run_id, &p, e);
        if (streq(b->op, "Unpause"))
                return history_unpause(m, it->run_id, &p, e);
        return history_branch(m,
                              &(BranchRequest){ .kind = BRANCH_RESET,
                                                .base_run_id = it->run_id,
                                                .to = a->to,
                                                .reapply_signals = a->reapply_signals,
                                                .reason = reason ? reason : b->batch_id },
                              new_run_id, e);
}

/* Errors that say something about the item, not about the daemon's ability to write. */
static bool item_error(int r) {
        return r == -EINVAL || r == -ENOENT || r == -ESTALE || r == -EEXIST || r == -ENOBUFS ||
               r == -EPERM;
}

static int
item_run(Manager *m, const BatchRow *b, const BatchArgs *a, const BatchItem *it, bool *ret_failed) {
        ApiError e = {};
        int r;

        r = store_savepoint(m->store);
        if (r < 0)
                return r;
        r = item_apply(m, b, a, it, &e);
        if (r < 0 && !e.keep_writes)
                store_rollback_to(m->store);
        else
                (void) store_release(m->store);
        if (r < 0 && !item_error(r))
                return r;
        *ret_failed = r < 0;
        return store_batch_item_set(m->store, b->batch_id, it->seq,
                                    r < 0 ? BATCH_ITEM_FAILED : BATCH_ITEM_SUCCEEDED,
                                    r < 0 ? errno_to_wire_code(-r) : NULL,
                                    r < 0 ? (e.message[0] ? e.message : strerror(-r)) : NULL);
}

/* Items this slice may do: BATCH_SLICE, or what the rate allows in 100 ms (at least one). */
static size_t slice_size(const BatchRow *b) {
        double n = b->rps > 0 ? b->rps / 10 : BATCH_SLICE;

        return n < 1 ? 1 : n > BATCH_SLICE ? BATCH_SLICE : (size_t) n;
}

static int batch_slice(Manager *m, BatchRow *b) {
        BatchItem items[BATCH_SLICE];
        uint32_t saved = m->actor_uid;
        char err[256];
        BatchArgs a = {};
        msgpack_unpacked u;
        size_t n = 0;
        uint64_t now;
        int r;

        msgpack_unpacked_init(&u);
        r = msg_decode(b->args.ptr, b->args.size, &u);
        if (r >= 0)
                r = msg_parse(&u.data, u.zone, args_fields, &a, err, sizeof(err));
        if (r >= 0)
                r = store_batch_items(m->store, b->batch_id, b->next_seq, false, slice_size(b),
                                      items, &n);
        m->actor_uid = b->uid; /* the items act as the batch's owner (DESIGN.md §10) */
        for (size_t i = 0; r >= 0 && i < n; i++) {
                bool failed = false;

                r = item_run(m, b, &a, &items[i], &failed);
                if (r >= 0) {
                        b->next_seq = items[i].seq + 1;
                        b->failed += failed;
                }
        }
        m->actor_uid = saved;
        for (size_t i = 0; i < n; i++)
                batch_item_done(&items[i]);
        msgpack_unpacked_destroy(&u);
        if (r < 0)
                return r;
        now = clock_now();
        if (b->next_seq > b->total) {
                b->state = BATCH_COMPLETED;
                b->close_time = now;
                log_info("Batch %s completed: %" PRIu64 " of %" PRIu64 " succeeded", b->batch_id,
                         b->total - b->failed, b->total);
        } else {
                /* The rate: n items took n / rps seconds of it. Never this pass (due > now). */
                uint64_t wait = b->rps > 0 ? (uint64_t) (n * 1e6 / b->rps) : 0;

                r = store_deadline_insert(m->store, now + (wait ? wait : 1), DEADLINE_BATCH, "", 0,
                                          0, b->batch_id);
                if (r < 0)
                        return r;
        }
        manager_deadlines_changed(m);
        return store_batch_update(m->store, b);
}

int batch_on_deadline(Manager *m, const Deadline *d) {
        _cleanup_(batch_row_done) BatchRow b = {};
        int r;

        r = store_batch_get(m->store, d->key ? d->key : "", &b);
        if (r == -ENOENT || (r >= 0 && b.state != BATCH_RUNNING))
                return 0; /* stale */
        if (r < 0)
                return r;
        return batch_slice(m, &b);
}

static const char *const state_names[_BATCH_STATE_MAX] = {
        [BATCH_RUNNING] = "Running",
        [BATCH_COMPLETED] = "Completed",
};

void batch_pack(const BatchRow *b, msgpack_packer *pk) {
        uint64_t done = b->next_seq > 0 ? b->next_seq - 1 : 0;

        (void) msgpack_pack_map(pk, 10 + !!b->close_time);
        (void) msg_pack_kv_str(pk, "batch_id", b->batch_id);
        (void) msg_pack_kv_str(pk, "op", b->op);
        (void) msg_pack_kv_str(pk, "query", b->query);
        (void) msg_pack_kv_str(pk, "state", state_names[b->state]);
        (void) msg_pack_kv_uint(pk, "uid", b->uid);
        (void) msg_pack_str(pk, "rps");
        (void) msgpack_pack_double(pk, b->rps);
        (void) msg_pack_kv_uint(pk, "create_time", b->create_time);
        (void) msg_pack_kv_uint(pk, "total", b->total);
        (void) msg_pack_kv_uint(pk, "succeeded", done - b->failed);
        (void) msg_pack_kv_uint(pk, "failed", b->failed);
        if (b->close_time)
                (void) msg_pack_kv_uint(pk, "close_time", b->close_time);
}
