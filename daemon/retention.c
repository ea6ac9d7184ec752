/* The retention sweep (retention.h). */

#include "daemon/retention.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/clock.h"

int retention_next_expiry(Manager *m, uint64_t *ret) {
        uint64_t oldest;
        int r;

        if (m->cfg.retention_usec == 0)
                return -ENOENT;
        r = store_run_oldest_close(m->store, &oldest);
        if (r < 0)
                return r;
        *ret = oldest + m->cfg.retention_usec;
        return 0;
}

static int next_due(Manager *m, uint64_t *ret) {
        int r = retention_next_expiry(m, ret);

        if (r == -ENOENT && m->cfg.retention_usec > 0) {
                *ret = clock_now() + m->cfg.retention_usec;
                return 0;
        }
        return r;
}

static void arm_at(Manager *m, uint64_t due) {
        uint64_t offset = clock_offset();

        /* The clock module may run ahead of the kernel's realtime clock (clock_skip()). */
        (void) sd_event_source_set_time(m->retention_source, due > offset ? due - offset : 1);
        (void) sd_event_source_set_enabled(m->retention_source, SD_EVENT_ONESHOT);
}

void retention_rearm(Manager *m) {
        uint64_t due;
        int r;

        if (!m->retention_source)
                return;
        r = next_due(m, &due);
        if (r < 0) {
                if (r != -ENOENT)
                        log_warning_errno(r, "Failed to find the next expired run: %m");
                (void) sd_event_source_set_enabled(m->retention_source, SD_EVENT_OFF);
                return;
        }
        arm_at(m, due + 1); /* runs expire once closed for longer than the retention */
}

static int retention_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        char ids[RETENTION_BATCH][37];
        uint64_t now = clock_now();
        size_t n = 0;
        int r;

        /* Read first: a sweep that finds nothing opens no transaction, so it adds no commit
         * (the crash tests count the daemon's commits). */
        r = now > m->cfg.retention_usec ? store_runs_expired(m->store, now - m->cfg.retention_usec,
                                                             RETENTION_BATCH, ids, &n)
                                        : 0;
        if (r >= 0 && n > 0)
                r = manager_begin(m);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = store_savepoint(m->store);
                if (r < 0)
                        break;
                r = store_run_delete(m->store, ids[i]);
                if (r < 0) {
                        store_rollback_to(m->store);
                        break;
                }
                (void) store_release(m->store);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to delete runs past their retention: %m");
                arm_at(m, now + 60ULL * 1000000); /* try again in a minute */
                return 0;
        }
        if (n > 0)
                log_debug("Deleted %zu runs closed for longer than the retention", n);
        if (n == RETENTION_BATCH)
                arm_at(m, now); /* more are due: the next batch in a later pass */
        else
                retention_rearm(m);
        return 0;
}

int retention_start(Manager *m) {
        int r;

        if (m->cfg.retention_usec == 0)
                return 0;
        r = sd_event_add_time(m->event, &m->retention_source, CLOCK_REALTIME, 1, 1000000,
                              retention_on_timer, m);
        if (r < 0)
                return r;
        /* After the deadlines: the sweep is the least urgent work of the loop. */
        (void) sd_event_source_set_priority(m->retention_source, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_description(m->retention_source, "retention");
        return sd_event_source_set_enabled(m->retention_source, SD_EVENT_ONESHOT);
}

int retention_parse(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *unit;
                uint64_t usec;
        } units[] = { { "ms", 1000ULL },      { "s", 1000000ULL },     { "m", 60000000ULL },
                      { "h", 3600000000ULL }, { "d", 86400000000ULL }, { "w", 604800000000ULL } };
        unsigned long long v;
        char *end;

        if (strcmp(s, "infinity") == 0) {
                *ret_usec = 0;
                return 0;
        }
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *s == '-')
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcmp(end, units[i].unit) == 0) {
                        if (v == 0 || v > UINT64_MAX / units[i].usec)
                                return -EINVAL;
                        *ret_usec = v * units[i].usec;
                        return 0;
                }
        return -EINVAL;
}
