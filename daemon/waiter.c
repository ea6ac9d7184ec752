/* Result waiters; see waiter.h. */

#include "daemon/waiter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/conn.h"
#include "daemon/history.h"

struct Waiter {
        Manager *manager;
        Conn *conn;
        uint64_t req_id;
        char run_id[37];
        sd_event_source *timer;
        LIST_FIELDS(Waiter, waiters);
};

static Waiter *waiter_free(Waiter *w) {
        if (!w)
                return NULL;
        LIST_REMOVE(waiters, w->manager->waiters, w);
        w->manager->n_waiters--;
        sd_event_source_disable_unref(w->timer);
        free(w);
        return NULL;
}

static int waiter_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Waiter *w = userdata;

        conn_reply_error(w->conn, w->req_id, -ETIMEDOUT, "the workflow did not close in time");
        waiter_free(w);
        return 0;
}

int waiter_add(Manager *m, Conn *c, uint64_t req_id, const char *run_id, uint64_t timeout_usec) {
        Waiter *w;
        int r;

        if (m->n_waiters >= m->cfg.max_waiters)
                return -EUSERS;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->conn = c;
        w->req_id = req_id;
        memcpy(w->run_id, run_id, 37);
        if (timeout_usec) {
                r = sd_event_add_time_relative(m->event, &w->timer, CLOCK_MONOTONIC, timeout_usec,
                                               10 * 1000, waiter_on_timeout, w);
                if (r < 0) {
                        free(w);
                        return r;
                }
        }
        LIST_PREPEND(waiters, m->waiters, w);
        m->n_waiters++;
        return 0;
}

void waiter_note_closed(Manager *m, const char *run_id) {
        if (!m->waiters)
                return; /* nobody waits: nothing to remember */
        if (m->n_closed == m->closed_alloc) {
                size_t n = m->closed_alloc ? 2 * m->closed_alloc : 16;
                char(*p)[37] = reallocarray(m->closed_runs, n, sizeof(*p));
                if (!p)
                        return; /* the waiter's own timeout or a retry will answer it */
                m->closed_runs = p;
                m->closed_alloc = n;
        }
        memcpy(m->closed_runs[m->n_closed++], run_id, 37);
}

void waiter_forget_closed(Manager *m) {
        m->n_closed = 0;
}

static void answer(Waiter *w, const RunRow *run) {
        msgpack_packer *pk;
        size_t start;

        pk = conn_reply_begin(w->conn, w->req_id, 1, &start);
        (void) msg_pack_str(pk, "workflow");
        (void) history_pack_workflow(run, pk);
        conn_reply_end(w->conn, w->req_id, start);
}

void waiter_answer_closed(Manager *m) {
        for (size_t i = 0; i < m->n_closed; i++) {
                RunRow run = {};
                Waiter *w, *n;

                if (store_run_get(m->store, m->closed_runs[i], &run) < 0)
                        continue;
                LIST_FOREACH_SAFE(waiters, w, n, m->waiters)
                        if (streq(w->run_id, run.run_id)) {
                                answer(w, &run);
                                waiter_free(w);
                        }
                run_row_done(&run);
        }
        m->n_closed = 0;
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
        free(m->closed_runs);
        m->closed_runs = NULL;
}
