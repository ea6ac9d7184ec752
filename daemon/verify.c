/* See verify.h. */

#include "daemon/verify.h"

#include <errno.h>
#include <stdlib.h>

#include "proto/history-lint.h"

static int lint_one(uint64_t event_id,
                    EventType type,
                    uint64_t time,
                    uint32_t uid,
                    const void *attrs,
                    size_t attrs_size,
                    void *userdata) {
        int r = history_lint_event_raw(userdata, event_id, type, time, attrs, attrs_size);

        /* -EBADMSG: a problem was found; the remaining events need no reading. */
        return r == -EBADMSG ? -ECANCELED : r;
}

static int verify_one(
        Store *s, const RunRow *run, uint64_t *ret_events, verify_problem_cb cb, void *userdata) {
        _cleanup_(history_lint_freep) HistoryLint *l = NULL;
        int r;

        r = history_lint_new(&l);
        if (r < 0)
                return r;
        r = store_events_foreach(s, run->run_id, 1, lint_one, l);
        if (r < 0 && r != -ECANCELED)
                return r;
        if (r >= 0)
                r = history_lint_end(l, run_row_status(run), run->next_event_id);
        if (r == -ENOMEM)
                return r;
        *ret_events += history_lint_count(l);
        if (!history_lint_problem(l))
                return 0;
        r = cb(run, history_lint_problem_event(l), history_lint_problem(l), userdata);
        return r < 0 ? r : 1;
}

int verify_run(Store *s, const RunRow *run, verify_problem_cb cb, void *userdata) {
        uint64_t events = 0;

        return verify_one(s, run, &events, cb, userdata);
}

typedef struct VerifyCtx {
        Store *store;
        verify_problem_cb cb;
        void *userdata;
        VerifyStats *stats;
} VerifyCtx;

static int verify_listed(const RunRow *run, void *userdata) {
        VerifyCtx *c = userdata;
        int r;

        r = verify_one(c->store, run, &c->stats->events, c->cb, c->userdata);
        if (r < 0)
                return r;
        c->stats->runs++;
        c->stats->problems += (uint64_t) r;
        return 0;
}

int verify_runs(
        Store *s, const RunFilter *f, verify_problem_cb cb, void *userdata, VerifyStats *stats) {
        RunFilter all = *f;

        if (!all.limit)
                all.limit = UINT64_MAX; /* LIMIT -1: no limit */
        return store_runs_list(
                s, &all, verify_listed,
                &(VerifyCtx){ .store = s, .cb = cb, .userdata = userdata, .stats = stats });
}
