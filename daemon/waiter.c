/* Waiters; see waiter.h. */

#include "daemon/waiter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/conn.h"
#include "daemon/history.h"
#include "proto/event.h"

typedef enum WaiterKind {
        WAITER_RESULT,  /* GetResult: answered with the workflow once the run closed */
        WAITER_HISTORY, /* GetHistory: answered with the events from from_event_id on */
        WAITER_UPDATE,  /* an update's caller: answered with its outcome once it completed */
} WaiterKind;

struct Waiter {
        Manager *manager;
        WaiterKind kind;
        Conn *conn;
        uint64_t req_id;
        char run_id[37];
        uint64_t from_event_id;
        bool follow_runs; /* WAITER_RESULT: follow the continue-as-new chain */
        uint64_t pass;    /* Manager.pass of the request: failed with it if its commit fails */
        char *update_id;  /* WAITER_UPDATE, owned */
        sd_event_source *timer;
        LIST_FIELDS(Waiter, waiters);
};

static Waiter *waiter_free(Waiter *w) {
        if (!w)
                return NULL;
        LIST_REMOVE(waiters, w->manager->waiters, w);
        w->manager->n_waiters--;
        if (w->kind != WAITER_RESULT)
                w->manager->n_history_waiters--;
        sd_event_source_disable_unref(w->timer);
        free(w->update_id);
        free(w);
        return NULL;
}

static int waiter_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Waiter *w = userdata;

        static const char *const why[] = {
                [WAITER_RESULT] = "the workflow did not close in time",
                [WAITER_HISTORY] = "no new event came in time",
                [WAITER_UPDATE] = "the update did not complete in time (it still runs: ask "
                                  "again with its update id)",
        };

        conn_reply_error(w->conn, w->req_id, -ETIMEDOUT, why[w->kind]);
        waiter_free(w);
        return 0;
}

static int waiter_add(Manager *m, Waiter *proto, uint64_t timeout_usec) {
        Waiter *w;
        int r;

        if (m->n_waiters >= m->cfg.max_waiters)
                return -EUSERS;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = *proto;
        w->manager = m;
        w->pass = m->pass;
        if (timeout_usec) {
                r = sd_event_add_time_relative(m->event, &w->timer, CLOCK_MONOTONIC, timeout_usec,
                                               10 * 1000, waiter_on_timeout, w);
                if (r < 0) {
                        free(w);
                        return r;
                }
        }
        if (proto->update_id) {
                w->update_id = strdup(proto->update_id);
                if (!w->update_id) {
                        sd_event_source_disable_unref(w->timer);
                        free(w);
                        return -ENOMEM;
                }
        }
        LIST_PREPEND(waiters, m->waiters, w);
        m->n_waiters++;
        if (w->kind != WAITER_RESULT)
                m->n_history_waiters++; /* woken by every new event of the run */
        return 0;
}

int waiter_add_result(Manager *m,
                      Conn *c,
                      uint64_t req_id,
                      const char *run_id,
                      uint64_t timeout_usec,
                      bool follow_runs) {
        Waiter w = {
                .kind = WAITER_RESULT, .conn = c, .req_id = req_id, .follow_runs = follow_runs
        };

        memcpy(w.run_id, run_id, 37);
        return waiter_add(m, &w, timeout_usec);
}

int waiter_add_history(Manager *m,
                       Conn *c,
                       uint64_t req_id,
                       const char *run_id,
                       uint64_t from_event_id,
                       uint64_t timeout_usec) {
        Waiter w = {
                .kind = WAITER_HISTORY, .conn = c, .req_id = req_id, .from_event_id = from_event_id
        };

        memcpy(w.run_id, run_id, 37);
        return waiter_add(m, &w, timeout_usec);
}

int waiter_add_update(Manager *m,
                      Conn *c,
                      uint64_t req_id,
                      const char *run_id,
                      const char *update_id,
                      uint64_t timeout_usec) {
        Waiter w = {
                .kind = WAITER_UPDATE, .conn = c, .req_id = req_id, .update_id = (char *) update_id
        };

        memcpy(w.run_id, run_id, 37);
        return waiter_add(m, &w, timeout_usec);
}

/* An update's caller: answered once the update completed, or with an error once the run closed
 * without completing it. */
static bool waiter_answer_update(Manager *m, Waiter *w, const RunRow *run) {
        UpdateState u = {};
        msgpack_packer *pk;
        size_t start;
        char msg[256];

        if (history_update_state(m, run, w->update_id, &u) < 0) {
                conn_reply_error(w->conn, w->req_id, -EIO, "the run's history could not be read");
                return true;
        }
        if (u.completed_id) {
                pk = conn_reply_begin(w->conn, w->req_id, 1, &start);
                (void) msg_pack_str(pk, "update");
                (void) history_pack_update(pk, run->run_id, w->update_id, &u);
                conn_reply_end(w->conn, w->req_id, start);
        } else if (run->status != WORKFLOW_STATUS_RUNNING) {
                (void) snprintf(msg, sizeof(msg),
                                "workflow '%.100s' closed (%s) before update '%.100s' completed",
                                run->workflow_id, workflow_status_to_string(run->status),
                                w->update_id);
                conn_reply_error(w->conn, w->req_id, -ENOENT, msg);
        } else {
                update_state_done(&u);
                return false;
        }
        update_state_done(&u);
        return true;
}

void waiter_note_changed(Manager *m, const char *run_id, bool closed) {
        if (!m->waiters || (!closed && m->n_history_waiters == 0))
                return; /* nobody waits for this: nothing to remember */
        if (m->n_changed > 0 && streq(m->changed_runs[m->n_changed - 1], run_id))
                return; /* the same run again, as most appends of one operation are */
        if (m->n_changed == m->changed_alloc) {
                size_t n = m->changed_alloc ? 2 * m->changed_alloc : 16;
                char(*p)[37] = reallocarray(m->changed_runs, n, sizeof(*p));
                if (!p)
                        return; /* the waiter's own timeout or a retry will answer it */
                m->changed_runs = p;
                m->changed_alloc = n;
        }
        memcpy(m->changed_runs[m->n_changed++], run_id, 37);
}

void waiter_forget_changed(Manager *m) {
        m->n_changed = 0;
}

void waiter_fail_run(Manager *m, const char *run_id, int error, const char *message) {
        Waiter *w, *n;

        LIST_FOREACH_SAFE(waiters, w, n, m->waiters)
                if (streq(w->run_id, run_id)) {
                        conn_reply_error(w->conn, w->req_id, error, message);
                        waiter_free(w);
                }
}

/* The pass's commit failed: its requests fail, the waiting ones too (a StartWorkflow that waits
 * for its result must not wait for a run that was never kept). Each gets a held answer, which
 * conn_fail_held() turns, right after, into the pass's error, as every answer of the pass. */
void waiter_fail_pass(Manager *m) {
        Waiter *w, *n;

        LIST_FOREACH_SAFE(waiters, w, n, m->waiters)
                if (w->pass == m->pass) {
                        conn_reply_empty(w->conn, w->req_id);
                        waiter_free(w);
                }
}

/* Answers @w if its run is where it waited for; returns true when it did. */
static bool waiter_answer(Manager *m, Waiter *w, const RunRow *run) {
        bool closed = run->status != WORKFLOW_STATUS_RUNNING;
        msgpack_packer *pk;
        size_t start, mark = w->conn->held.sb.size;

        if (w->kind == WAITER_RESULT) {
                if (!closed)
                        return false;
                if (w->follow_runs) {
                        char next[37];
                        RunRow n = {};
                        bool done;

                        /* The new run was created in the same pass: wait for it instead. */
                        if (history_continued_run_id(m, run, next) >= 0 &&
                            store_run_get(m->store, next, &n) >= 0) {
                                memcpy(w->run_id, next, 37);
                                done = waiter_answer(m, w, &n);
                                run_row_done(&n);
                                return done;
                        }
                }
                pk = conn_reply_begin(w->conn, w->req_id, 1, &start);
                (void) msg_pack_str(pk, "workflow");
                (void) history_pack_workflow(run, pk);
                conn_reply_end(w->conn, w->req_id, start);
                return true;
        }
        if (w->kind == WAITER_UPDATE)
                return waiter_answer_update(m, w, run);
        if (run->next_event_id <= w->from_event_id && !closed)
                return false;
        pk = conn_reply_begin(w->conn, w->req_id, 2, &start);
        (void) msg_pack_kv_str(pk, "run_id", run->run_id);
        (void) msg_pack_str(pk, "events");
        if (history_pack_events(m, run, w->from_event_id, pk) < 0) {
                w->conn->held.sb.size = mark;
                conn_reply_error(w->conn, w->req_id, -EIO, "the run's history could not be read");
        } else
                conn_reply_end(w->conn, w->req_id, start);
        return true;
}

void waiter_answer_changed(Manager *m) {
        for (size_t i = 0; i < m->n_changed; i++) {
                RunRow run = {};
                Waiter *w, *n;
                int r;

                r = store_run_get(m->store, m->changed_runs[i], &run);
                if (r == -ENOENT) /* deleted (history-delete.c): nothing more will come */
                        waiter_fail_run(m, m->changed_runs[i], -ENOENT,
                                        "the workflow run was deleted");
                if (r < 0)
                        continue;
                LIST_FOREACH_SAFE(waiters, w, n, m->waiters)
                        if (streq(w->run_id, run.run_id) && waiter_answer(m, w, &run))
                                waiter_free(w);
                run_row_done(&run);
        }
        m->n_changed = 0;
}

void waiter_forget_conn(Manager *m, Conn *c) {
        Waiter *w, *n;

        LIST_FOREACH_SAFE(waiters, w, n, m->waiters)
                if (w->conn == c)
                        waiter_free(w);
}

void waiter_free_all(Manager *m) {
        while (m->waiters)
                waiter_free(m->waiters);
        free(m->changed_runs);
        m->changed_runs = NULL;
}
