/* Manager: the loop, the pass/commit cycle, deadlines and result waiters; see manager.h. */

#include "daemon/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "daemon/activity.h"
#include "daemon/api-bus.h"
#include "daemon/api-sock.h"
#include "daemon/batch.h"
#include "daemon/clock.h"
#include "daemon/conn.h"
#include "daemon/flow.h"
#include "daemon/history.h"
#include "daemon/killpoint.h"
#include "daemon/schedule-unit.h"
#include "daemon/schedule.h"
#include "daemon/store-schedule.h"
#include "daemon/retention.h"
#include "daemon/taskq.h"
#include "daemon/verify.h"
#include "daemon/waiter.h"
#include "proto/error.h"
#include "proto/frame.h"

#define DEADLINES_PER_PASS 256
/* WAL checkpoints (DESIGN.md §3): after CHECKPOINT_QUIET_USEC without a commit once the WAL holds
 * CHECKPOINT_SOON_PAGES, and right after the commit that makes it pass CHECKPOINT_NOW_PAGES, so
 * that its growth is bounded under constant load. Pages are 4 KiB. */
#define CHECKPOINT_QUIET_USEC (200 * 1000)
#define CHECKPOINT_SOON_PAGES 1000
#define CHECKPOINT_NOW_PAGES 4000

static int manager_on_post(sd_event_source *s, void *userdata);
static int manager_on_deadline(sd_event_source *s, uint64_t usec, void *userdata);
static int manager_on_kick(sd_event_source *s, void *userdata);
static int manager_on_checkpoint(sd_event_source *s, uint64_t usec, void *userdata);
static int manager_on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata);

gid_t manager_group_gid(const char *group) {
        struct group *g;
        unsigned long v;
        char *end;

        errno = 0;
        v = strtoul(group, &end, 10);
        if (!errno && end != group && !*end && group[0] != '-' && v < (gid_t) -1)
                return (gid_t) v;
        g = getgrnam(group);
        return g ? g->gr_gid : (gid_t) -1;
}

int manager_new(Manager **ret, const ManagerConfig *cfg) {
        _cleanup_(manager_freep) Manager *m = NULL;
        char path[4096];
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->cfg = *cfg;
        if (m->cfg.history_warn_events == 0)
                m->cfg.history_warn_events = HISTORY_WARN_EVENTS_DEFAULT;
        if (m->cfg.history_max_events == 0)
                m->cfg.history_max_events = HISTORY_MAX_EVENTS_DEFAULT;
        if (m->cfg.history_max_bytes == 0)
                m->cfg.history_max_bytes = HISTORY_MAX_BYTES_DEFAULT;
        for (RunLimit l = 0; l < _RUN_LIMIT_MAX; l++)
                if (m->cfg.run_limits[l] == 0)
                        m->cfg.run_limits[l] = run_limit_default(l);
        if (m->cfg.max_activity_processes == 0)
                m->cfg.max_activity_processes = SUPERVISOR_ATTEMPTS_DEFAULT;
        if (m->cfg.max_updates_in_flight == 0)
                m->cfg.max_updates_in_flight = UPDATES_IN_FLIGHT_DEFAULT;
        if (m->cfg.max_updates_per_run == 0)
                m->cfg.max_updates_per_run = UPDATES_PER_RUN_DEFAULT;
        m->listen_fd = -EBADF;
        m->lock_fd = -EBADF;
        m->daemon_uid = geteuid();
        m->actor_uid = m->daemon_uid;
        /* Serials name the connection that caches a run (RunRow.sticky_conn, kept in the store).
         * A random base makes a serial of an earlier life of the daemon match a new connection
         * only by a 2^-31 chance, and even then the worker, missing the run, fetches the events
         * it lacks: the hint needs no clean-up at start-up. */
        if (getrandom(&m->next_conn_serial, sizeof(m->next_conn_serial), 0) < 0)
                m->next_conn_serial = (uint64_t) getpid() << 40;
        m->next_conn_serial &= UINT64_C(0x7fffffff00000000);
        m->admin_gid = manager_group_gid(cfg->admin_group ? cfg->admin_group : "durabled");

        /* A loop of its own, not sd_event_default(): sd_event_prepare() checks the default
         * loop's thread with a gettid() system call at every iteration. */
        r = sd_event_new(&m->event);
        if (r < 0)
                return r;
        (void) sd_event_set_watchdog(m->event, true);
        r = sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL);
        if (r < 0)
                return r;
        r = sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return r;
        r = sd_event_add_signal(m->event, NULL, SIGHUP, manager_on_reload, m);
        if (r < 0)
                return r;
        r = sd_event_add_post(m->event, &m->post_source, manager_on_post, m);
        if (r < 0)
                return r;
        /* The post source runs last in a pass: after every other source that was pending. */
        (void) sd_event_source_set_priority(m->post_source, SD_EVENT_PRIORITY_IDLE);
        r = sd_event_add_time(m->event, &m->deadline_source, CLOCK_REALTIME, UINT64_MAX, 1000,
                              manager_on_deadline, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->deadline_source, SD_EVENT_OFF);
        r = sd_event_add_time(m->event, &m->checkpoint_source, CLOCK_MONOTONIC, UINT64_MAX, 10000,
                              manager_on_checkpoint, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->checkpoint_source, SD_EVENT_OFF);
        r = sd_event_add_defer(m->event, &m->kick_source, manager_on_kick, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->kick_source, SD_EVENT_OFF);

        if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create state directory %s: %m",
                                       cfg->state_dir);
        /* One daemon (or bulk loader) per state directory: two writers would both believe they
         * own the database (DESIGN.md §3). The lock dies with the process, even on SIGKILL. It is
         * a POSIX record lock, which belongs to the process: a flock() would belong to the open
         * file, which an activity process forked at the moment of a SIGKILL still shares until
         * its exec, and the restarted daemon would find it taken (found by the crash loop). */
        snprintf(path, sizeof(path), "%s/lock", cfg->state_dir);
        m->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (m->lock_fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", path);
        if (fcntl(m->lock_fd, F_SETLK, &(struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET }) <
            0)
                return log_error_errno(errno == EAGAIN || errno == EACCES ? -EBUSY : -errno,
                                       "Another durabled uses the state directory %s",
                                       cfg->state_dir);
        snprintf(path, sizeof(path), "%s/durabled.db", cfg->state_dir);
        r = store_open(&m->store, path, cfg->durability);
        if (r == -EUCLEAN) {
                char why[256];

                store_check_file(path, why, sizeof(why));
                return log_error_errno(r,
                                       "Database %s failed its integrity check (%s); refusing to "
                                       "start (restore a backup, see durablectl backup, or move "
                                       "it away)",
                                       path, why);
        }
        if (r == -EPROTONOSUPPORT)
                return log_error_errno(r, "Database %s was written by a newer durabled", path);
        if (r < 0)
                return log_error_errno(r, "Failed to open database %s: %m", path);
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        Conn *c;

        if (!m)
                return NULL;
        waiter_free_all(m);
        taskq_free_all(m);
        flow_free_all(m);
        supervisor_free(m->supervisor);
        while ((c = m->conns)) {
                LIST_REMOVE(conns, m->conns, c);
                conn_free(c);
        }
        sd_event_source_disable_unref(m->listen_source);
        sd_event_source_disable_unref(m->post_source);
        sd_event_source_disable_unref(m->deadline_source);
        sd_event_source_disable_unref(m->kick_source);
        sd_event_source_disable_unref(m->checkpoint_source);
        api_bus_free(m->bus); /* after the connections: their pending D-Bus calls get answers */
        sd_event_source_disable_unref(m->wake_source);
        sd_event_source_disable_unref(m->retention_source);
        safe_close(m->listen_fd);
        store_free(m->store);
        safe_close(m->lock_fd);
        free(m->closed_runs);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_begin(Manager *m) {
        return store_begin(m->store);
}

void manager_kick(Manager *m) {
        (void) sd_event_source_set_enabled(m->kick_source, SD_EVENT_ONESHOT);
}

static int manager_on_kick(sd_event_source *s, void *userdata) {
        return 0; /* its only job is to make a pass happen, so that the post source runs */
}

void manager_deadlines_changed(Manager *m) {
        m->deadlines_changed = true;
}

/* ---- accepting ---- */

bool manager_is_admin(Manager *m, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups) {
        if (uid == 0 || uid == m->daemon_uid)
                return true;
        if (m->admin_gid == (gid_t) -1)
                return false;
        if (gid == m->admin_gid)
                return true;
        for (size_t i = 0; i < n_groups; i++)
                if (groups[i] == m->admin_gid)
                        return true;
        return false;
}

static bool peer_is_admin(Manager *m, const Conn *c) {
        gid_t groups[256];
        socklen_t len = sizeof(groups);

        if (manager_is_admin(m, c->cred.uid, c->cred.gid, NULL, 0))
                return true;
        if (m->admin_gid == (gid_t) -1)
                return false;
        /* Any error while checking means deny (DESIGN.md §10). */
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        return manager_is_admin(m, c->cred.uid, c->cred.gid, groups, len / sizeof(gid_t));
}

/* Past the connection limit, say why before closing (DESIGN.md §10: resource_exhausted). */
static void refuse_connection(int fd, unsigned limit) {
        char msg[128];
        MsgBuf b;
        size_t start;

        log_warning("Refusing a connection: %u connections is the limit", limit);
        snprintf(msg, sizeof(msg), "too many connections (limit %u)", limit);
        msgbuf_init(&b);
        start = frame_begin(&b.sb);
        (void) msgpack_pack_map(&b.pk, 2);
        (void) msg_pack_kv_uint(&b.pk, "id", 0);
        (void) msg_pack_str(&b.pk, "error");
        (void) msgpack_pack_map(&b.pk, 2);
        (void) msg_pack_kv_str(&b.pk, "code", errno_to_wire_code(-EUSERS));
        (void) msg_pack_kv_str(&b.pk, "message", msg);
        frame_end(&b.sb, start);
        if (msgbuf_error(&b) >= 0)
                (void) send(fd, b.sb.data, b.sb.size, MSG_NOSIGNAL | MSG_DONTWAIT);
        msgbuf_done(&b);
}

static int manager_on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        _cleanup_close_ int cfd = -EBADF;
        Conn *c;
        int r;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                        /* The socket stays readable: stop watching it until a connection
                         * closes, or this callback would spin. */
                        log_warning_errno(errno, "Failed to accept a connection: %m; pausing");
                        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_OFF);
                        m->accept_paused = true;
                } else if (errno != EAGAIN && errno != EINTR)
                        log_warning_errno(errno, "Failed to accept a connection: %m");
                return 0;
        }
        if (m->n_conns >= m->cfg.max_connections) {
                refuse_connection(cfd, m->cfg.max_connections);
                return 0;
        }
        r = conn_new(&c, m, cfd, ++m->next_conn_serial);
        if (r < 0) {
                log_warning_errno(r, "Failed to set up a connection: %m");
                return 0;
        }
        TAKE_FD(cfd);
        c->admin = peer_is_admin(m, c);
        LIST_PREPEND(conns, m->conns, c);
        m->n_conns++;
        return 0;
}

static int bind_socket(Manager *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        const char *path = m->cfg.socket_path;
        char dir[sizeof(sa.sun_path)];
        char *slash;

        if (strlen(path) >= sizeof(sa.sun_path))
                return log_error_errno(-ENAMETOOLONG, "Socket path %s is too long", path);
        strcpy(sa.sun_path, path);
        strcpy(dir, path);
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return log_error_errno(errno, "Failed to create %s: %m", dir);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create socket: %m");
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return log_error_errno(errno, "Failed to bind %s: %m", path);
        /* DESIGN.md §10: everyone may connect in system mode, each request is authorised. */
        if (chmod(path, m->cfg.user_mode ? 0600 : 0666) < 0)
                return log_error_errno(errno, "Failed to set the mode of %s: %m", path);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Failed to listen on %s: %m", path);
        return TAKE_FD(fd);
}

int manager_listen(Manager *m, int fd) {
        int r;

        if (fd < 0) {
                fd = bind_socket(m);
                if (fd < 0)
                        return fd;
        }
        m->listen_fd = fd;
        r = sd_event_add_io(m->event, &m->listen_source, fd, EPOLLIN, manager_on_accept, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the socket: %m");
        return 0;
}

/* SIGHUP (systemctl reload): the activity units and the *.schedule unit files are read again.
 * The schedules' changes commit with the pass, like any request's; running activity attempts keep
 * the unit they started with. */
static int
manager_on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        int r;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading units...");
        if (m->supervisor) {
                log_info("SIGHUP: reloading activity units");
                (void) supervisor_reload(m);
        }
        r = manager_begin(m);
        if (r >= 0 && m->cfg.schedule_dir)
                r = schedule_units_sync(m, m->cfg.schedule_dir);
        if (r < 0)
                log_error_errno(r, "Failed to reload the schedule units: %m");
        else
                log_info("Reloaded the schedule units of %s",
                         m->cfg.schedule_dir ? m->cfg.schedule_dir : "(none)");
        (void) sd_notify(false, "READY=1\nSTATUS=Processing requests...");
        return 0;
}

/* ---- deadlines ---- */

static int manager_on_wake(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_kick(userdata); /* the deadline source, due too, does the work */
        return 0;
}

/* WakeSystem= (systemd.timer(5)): an alarm source for the next deadline that must wake a
 * suspended host: every deadline with --wake-system, else those of schedules that ask for it. An
 * alarm needs CAP_WAKE_ALARM and an RTC (sd-event refuses the clock otherwise); without them the
 * daemon says so once, and deadlines still fire when the host resumes on its own. */
static void rearm_wake(Manager *m) {
        uint64_t due, offset = clock_offset();
        int r;

        if (m->wake_unsupported)
                return;
        r = m->cfg.wake_system ? store_deadline_next(m->store, &due)
                               : store_schedule_wake_next(m->store, &due);
        if (r < 0) {
                if (m->wake_source)
                        (void) sd_event_source_set_enabled(m->wake_source, SD_EVENT_OFF);
                return;
        }
        if (!m->wake_source) {
                r = sd_event_add_time(m->event, &m->wake_source, CLOCK_REALTIME_ALARM, UINT64_MAX,
                                      1000, manager_on_wake, m);
                if (r < 0) {
                        log_warning_errno(r, "Cannot arm a wake-up alarm (it needs "
                                             "CAP_WAKE_ALARM and a real-time clock with an "
                                             "alarm): %m; a suspended host will not wake up "
                                             "for its deadlines");
                        m->wake_unsupported = true;
                        return;
                }
        }
        (void) sd_event_source_set_time(m->wake_source, due > offset ? due - offset : 1);
        (void) sd_event_source_set_enabled(m->wake_source, SD_EVENT_ONESHOT);
}

static void rearm_deadline(Manager *m) {
        uint64_t due, offset = clock_offset();
        int r;

        m->deadlines_changed = false;
        rearm_wake(m);
        r = store_deadline_next(m->store, &due);
        if (r == -ENOENT) {
                (void) sd_event_source_set_enabled(m->deadline_source, SD_EVENT_OFF);
                return;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to read the next deadline: %m");
                return;
        }
        /* The clock module may run ahead of the kernel's realtime clock (clock_skip()). */
        (void) sd_event_source_set_time(m->deadline_source, due > offset ? due - offset : 1);
        (void) sd_event_source_set_enabled(m->deadline_source, SD_EVENT_ONESHOT);
}

static int manager_on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = clock_now();
        int r;

        m->deadlines_changed = true; /* re-armed by the post source */
        r = manager_begin(m);
        if (r < 0)
                return log_error_errno(r, "Failed to begin a transaction: %m"), 0;
        /* Due deadlines fire in deadline order (DESIGN.md §8); each in its own savepoint so
         * that a failure undoes exactly that one. */
        for (unsigned i = 0; i < DEADLINES_PER_PASS; i++) {
                Deadline d = {};

                r = store_savepoint(m->store);
                if (r < 0)
                        break;
                r = store_deadline_pop_due(m->store, now, &d);
                if (r == -ENOENT) {
                        (void) store_release(m->store);
                        return 0;
                }
                m->actor_uid = m->daemon_uid;
                if (r >= 0)
                        r = d.kind == DEADLINE_SCHEDULE ? schedule_on_deadline(m, &d)
                            : d.kind == DEADLINE_BATCH  ? batch_on_deadline(m, &d)
                                                        : history_on_deadline(m, &d);
                if (r < 0) {
                        store_rollback_to(m->store);
                        log_error_errno(r, "Failed to act on a deadline of run %s: %m", d.run_id);
                        deadline_done(&d);
                        break;
                }
                (void) store_release(m->store);
                deadline_done(&d);
        }
        manager_kick(m); /* more may be due: another pass */
        return 0;
}

/* ---- checkpoints ---- */

static void checkpoint(Manager *m) {
        int r;

        if (store_in_transaction(m->store))
                return; /* the next pass's commit brings us back here */
        r = store_checkpoint(m->store);
        if (r >= 0)
                return;
        if (!store_fsync_failed(m->store)) {
                log_warning_errno(r, "Failed to checkpoint the WAL: %m");
                return;
        }
        /* DESIGN.md §3: not even a checkpoint's fsync is retried; the WAL keeps what it held. */
        log_error("fsync failed during a checkpoint; exiting so that the service restarts and "
                  "recovers from the database");
        m->exit_error = -EIO;
        (void) sd_event_exit(m->event, EXIT_FAILURE);
}

static int manager_on_checkpoint(sd_event_source *s, uint64_t usec, void *userdata) {
        checkpoint(userdata);
        return 0;
}

/* After each commit: checkpoint at once past the hard bound, else once the daemon is quiet (the
 * timer is pushed back by every commit). */
static void schedule_checkpoint(Manager *m) {
        unsigned pages = store_wal_pages(m->store);

        if (pages >= CHECKPOINT_NOW_PAGES)
                checkpoint(m);
        else if (pages >= CHECKPOINT_SOON_PAGES) {
                (void) sd_event_source_set_time_relative(m->checkpoint_source,
                                                         CHECKPOINT_QUIET_USEC);
                (void) sd_event_source_set_enabled(m->checkpoint_source, SD_EVENT_ONESHOT);
        }
}

/* ---- the pass ---- */

/* A worker connection that closed leaves its workflow tasks unanswered: time them out now
 * rather than after their full timeout. Activities keep their timeouts: an activity may still be
 * running and complete through another connection. */
void manager_conn_closed(Manager *m, Conn *c) {
        int r;

        if (!c->polled_workflow_tasks)
                return;
        r = manager_begin(m);
        if (r >= 0)
                r = store_expire_workflow_tasks(m->store, clock_now(), c->serial);
        if (r >= 0)
                m->deadlines_changed = true;
        else
                log_warning_errno(r, "Failed to expire the workflow tasks of a closed "
                                     "connection: %m");
}

static void free_closed_conns(Manager *m) {
        Conn *c, *n;

        LIST_FOREACH_SAFE(conns, c, n, m->conns)
                if (c->closing) {
                        LIST_REMOVE(conns, m->conns, c);
                        m->n_conns--;
                        conn_free(c);
                        if (m->accept_paused) {
                                m->accept_paused = false;
                                (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_ON);
                        }
                }
}

static void fail_pass(Manager *m, int r) {
        Conn *c;

        store_rollback(m->store);
        waiter_forget_changed(m);
        waiter_fail_pass(m);
        api_bus_forget_changed(m);
        schedule_forget(m);
        LIST_FOREACH(conns, c, m->conns)
                if (conn_has_held(c))
                        conn_fail_held(c, r, store_fsync_failed(m->store));
        /* Tasks popped in this pass are back in the store: hand them out again. */
        taskq_mark_all_dirty(m);
        /* A queued start the pass took is back in the store. */
        m->queued_starts = true;
        /* A ConfigureTaskQueue of the pass is undone with its row. */
        if (flow_load(m) < 0)
                log_warning("Failed to read the task queue limits again after the rollback");
        m->deadlines_changed = true;
        if (store_fsync_failed(m->store)) {
                /* DESIGN.md §3: a failed fsync is not retried; restart and recover. */
                log_error("fsync failed: the kernel may have dropped written pages; exiting so "
                          "that the service restarts and recovers from the database");
                m->exit_error = -EIO;
                (void) sd_event_exit(m->event, EXIT_FAILURE);
        }
}

/* Time skipping (--time-skipping, for tests), as Temporal's test server does it: while a client
 * waits for a result and nothing runs or waits in a queue, the clock jumps to the next deadline,
 * so a 24 h timer fires at once and still fires after everything before it. */
static void maybe_skip_time(Manager *m) {
        uint64_t due, now, next;

        if (!m->cfg.time_skipping || m->n_waiters == 0)
                return;
        if (store_is_idle(m->store) <= 0)
                return;
        if (store_deadline_next(m->store, &due) < 0)
                due = UINT64_MAX;
        /* The retention sweep is a deadline too (retention.h). */
        if (retention_next_expiry(m, &next) >= 0 && next + 1 < due)
                due = next + 1;
        now = clock_now();
        if (due == UINT64_MAX || due <= now)
                return;
        log_debug("Time skipping: %llu us ahead", (unsigned long long) (due - now));
        clock_skip(due - now);
        m->deadlines_changed = true;
        retention_rearm(m);
}

static int manager_on_post(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        Conn *c;
        int r;

        /* Before schedule_flush() forgets the runs that closed in this pass. */
        if (m->n_closed_runs > 0)
                (void) api_run_queued_starts(m, false);
        schedule_flush(m);
        r = taskq_dispatch(m);
        if (r >= 0)
                r = supervisor_dispatch(m);
        if (r >= 0 && store_in_transaction(m->store)) {
                killpoint("before-commit");
                r = store_commit(m->store);
                if (r >= 0)
                        killpoint("after-commit");
        }
        if (r < 0) {
                log_error_errno(r, "Failed to commit: %m; answering the pass's requests with "
                                   "errors");
                fail_pass(m, r);
        } else {
                waiter_answer_changed(m);
                api_bus_emit_changed(m); /* D-Bus signals, only for what is committed */
        }
        /* DESIGN.md §3: attempt processes start only after the commit that records them. */
        supervisor_after_commit(m, r >= 0);
        LIST_FOREACH(conns, c, m->conns)
                if (conn_has_held(c))
                        conn_release_held(c);
        maybe_skip_time(m);
        if (r >= 0)
                schedule_checkpoint(m);
        if (m->deadlines_changed)
                rearm_deadline(m);
        free_closed_conns(m);
        /* A connection that broke while answers were written opened a transaction after the
         * commit (manager_conn_closed()): one more pass commits it. */
        if (store_in_transaction(m->store))
                manager_kick(m);
        m->pass++;
        return 0;
}

static int count_queue(const char *queue, void *userdata) {
        Manager *m = userdata;
        (void) taskq_get(m, queue, true);
        return 0;
}

#if DURABLED_EXPENSIVE_CHECKS
static int
report_problem(const RunRow *run, uint64_t event_id, const char *problem, void *userdata) {
        log_error("History of workflow '%s' run %s breaks a rule: %s", run->workflow_id,
                  run->run_id, problem);
        return 0;
}

/* Test builds: at a clean stop the histories of the store must pass the linter, so that each
 * integration test that stops its daemon also checks the shape of every history it made. Only
 * the newest 10000 runs: a benchmark's store of a million runs would hold the stop too long. */
static int check_histories(Manager *m) {
        VerifyStats stats = {};
        int r;

        r = verify_runs(m->store, &(RunFilter){ .limit = 10000 }, report_problem, NULL, &stats);
        if (r < 0)
                return log_error_errno(r, "Failed to verify the histories: %m");
        if (stats.problems > 0)
                return log_error_errno(-EUCLEAN, "%llu of %llu histories break a rule",
                                       (unsigned long long) stats.problems,
                                       (unsigned long long) stats.runs);
        return 0;
}
#else
static int check_histories(Manager *m) {
        return 0;
}
#endif

int manager_start(Manager *m) {
        int r;

        m->started_usec = clock_now();
        if (!m->cfg.no_process_activities) {
                r = supervisor_new(m, m->cfg.activity_dirs);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up process activities: %m");
        }
        r = store_begin(m->store);
        if (r >= 0)
                r = supervisor_recover(m);
        /* DESIGN.md §3: workflow tasks in flight when the daemon died went to connections that
         * are gone; they time out now and are scheduled again. */
        if (r >= 0)
                r = store_expire_workflow_tasks(m->store, clock_now(), 0);
        /* Schedules declared in unit files: created, updated or deleted to match the files. */
        if (r >= 0 && m->cfg.schedule_dir)
                r = schedule_units_sync(m, m->cfg.schedule_dir);
        /* Queued starts whose run closed just before a crash, as the pass would have run them. */
        if (r >= 0)
                r = api_run_queued_starts(m, true);
        if (r >= 0)
                r = store_commit(m->store);
        if (r < 0)
                return log_error_errno(r, "Failed to prepare the store: %m");
        r = flow_load(m);
        if (r < 0)
                return log_error_errno(r, "Failed to read the task queue limits: %m");
        store_arm_faults();
        for (int k = 0; k < _TASK_KIND_MAX; k++)
                (void) store_task_queues(m->store, (TaskKind) k, count_queue, m);
        rearm_deadline(m);
        r = retention_start(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the retention sweep: %m");
        return 0;
}

int manager_run(Manager *m) {
        int r;

        r = manager_start(m);
        if (r < 0)
                return r;
        (void) sd_notify(false, "READY=1\nSTATUS=Processing requests...");
        log_info("durabled " DURABLED_VERSION " running (%s mode), socket %s, state %s",
                 m->cfg.user_mode ? "user" : "system", m->cfg.socket_path, m->cfg.state_dir);
        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down...");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        if (m->exit_error < 0)
                return m->exit_error;
        r = check_histories(m);
        if (r < 0)
                return r;
        /* A clean stop: everything acknowledged is committed; fold the WAL into the database. */
        r = store_checkpoint(m->store);
        if (r < 0 && store_fsync_failed(m->store))
                return log_error_errno(r, "fsync failed during the last checkpoint: %m");
        return 0;
}

void manager_run_changed(Manager *m, const char *run_id, bool closed) {
        waiter_note_changed(m, run_id, closed);
        if (closed)
                schedule_note_closed(m, run_id);
        api_bus_note_changed(m, run_id, false, closed);
}

void manager_run_started(Manager *m, const char *run_id) {
        api_bus_note_changed(m, run_id, true, false);
}
