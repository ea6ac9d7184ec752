/* Conn: framing, held answers and socket I/O of one client connection; see conn.h.
 *
 * Back-pressure: a client that sends requests and never reads the answers (a flood) would make
 * the daemon buffer answers without bound. Before each frame, when more than CONN_PENDING_MAX
 * bytes of answers wait (held for the commit or not yet written), the connection is paused: its
 * socket is no longer read and its remaining frames stay in the input buffer. When everything
 * was written, a deferred event processes those frames and reading resumes. Other connections
 * are not affected. */

#include "daemon/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/api-sock.h"
#include "daemon/manager.h"
#include "daemon/taskq.h"
#include "daemon/waiter.h"
#include "proto/error.h"
#include "proto/frame.h"

#define READ_CHUNK (64 * 1024)

static int conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

int conn_new(Conn **ret, Manager *m, int fd, uint64_t serial) {
        Conn *c;
        socklen_t len = sizeof(c->cred);
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->serial = serial;
        c->fd = -EBADF;
        msgbuf_init(&c->held);
        /* DESIGN.md §10: credentials from the socket, taken at connect time. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
                r = -errno;
                conn_free(c);
                return r;
        }
        r = sd_event_add_io(m->event, &c->io, fd, EPOLLIN, conn_on_io, c);
        if (r < 0) {
                conn_free(c);
                return r;
        }
        c->fd = fd;
        *ret = c;
        return 0;
}

int conn_new_sink(
        Conn **ret, Manager *m, const struct ucred *cred, uint64_t serial, ConnSink *sink) {
        Conn *c;

        c = calloc(1, sizeof(*c));
        if (!c) {
                if (sink->free)
                        sink->free(sink->userdata);
                return -ENOMEM;
        }
        c->manager = m;
        c->serial = serial;
        c->fd = -EBADF;
        c->cred = *cred;
        c->sink = *sink;
        msgbuf_init(&c->held);
        *ret = c;
        return 0;
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        if (c->sink.free)
                c->sink.free(c->sink.userdata);
        c->io = sd_event_source_disable_unref(c->io);
        c->resume = sd_event_source_disable_unref(c->resume);
        safe_close(c->fd);
        free(c->in);
        free(c->out);
        free(c->held_ids);
        msgbuf_done(&c->held);
        free(c);
        return NULL;
}

void conn_close(Conn *c) {
        if (c->closing)
                return;
        c->closing = true;
        if (c->io)
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        taskq_forget_conn(c->manager, c);
        waiter_forget_conn(c->manager, c);
        manager_conn_closed(c->manager, c);
        manager_kick(c->manager); /* freed at the end of the pass */
}

/* ---- answers ---- */

msgpack_packer *conn_reply_begin(Conn *c, uint64_t id, size_t nfields, size_t *ret_start) {
        *ret_start = frame_begin(&c->held.sb);
        (void) msgpack_pack_map(&c->held.pk, nfields + 1);
        (void) msg_pack_kv_uint(&c->held.pk, "id", id);
        return &c->held.pk;
}

void conn_reply_end(Conn *c, uint64_t id, size_t start) {
        if (c->n_held == c->held_alloc) {
                size_t n = c->held_alloc ? 2 * c->held_alloc : 16;
                uint64_t *p = reallocarray(c->held_ids, n, sizeof(*p));
                if (!p) {
                        c->held.failed = true;
                        return;
                }
                c->held_ids = p;
                c->held_alloc = n;
        }
        frame_end(&c->held.sb, start);
        c->held_ids[c->n_held++] = id;
}

void conn_reply_empty(Conn *c, uint64_t id) {
        size_t start;

        (void) conn_reply_begin(c, id, 0, &start);
        conn_reply_end(c, id, start);
}

static void pack_error(msgpack_packer *pk, int error, const char *message) {
        (void) msg_pack_str(pk, "error");
        (void) msgpack_pack_map(pk, 2);
        (void) msg_pack_kv_str(pk, "code", errno_to_wire_code(error));
        (void) msg_pack_kv_str(pk, "message", message);
}

void conn_reply_error(Conn *c, uint64_t id, int error, const char *message) {
        msgpack_packer *pk;
        size_t start;

        pk = conn_reply_begin(c, id, 1, &start);
        pack_error(pk, error, message);
        conn_reply_end(c, id, start);
}

bool conn_has_held(const Conn *c) {
        return c->n_held > 0 || c->held.failed;
}

static int out_append(Conn *c, const char *p, size_t n) {
        if (c->out_off > 0 && c->out_off == c->out_size)
                c->out_off = c->out_size = 0;
        if (c->out_size + n > c->out_alloc) {
                size_t want = MAX(c->out_alloc * 2, c->out_size + n);
                char *q = realloc(c->out, want);
                if (!q)
                        return -ENOMEM;
                c->out = q;
                c->out_alloc = want;
        }
        memcpy(c->out + c->out_size, p, n);
        c->out_size += n;
        return 0;
}

static size_t conn_pending(const Conn *c) {
        return c->held.sb.size + (c->out_size - c->out_off);
}

static void conn_update_events(Conn *c) {
        uint32_t events = (c->paused ? 0 : EPOLLIN) | (c->out_off < c->out_size ? EPOLLOUT : 0);

        (void) sd_event_source_set_io_events(c->io, events);
}

static void conn_process_frames(Conn *c);

static int conn_on_resume(sd_event_source *s, void *userdata) {
        Conn *c = userdata;

        c->resume = sd_event_source_disable_unref(c->resume);
        if (!c->closing)
                conn_process_frames(c);
        return 0;
}

/* Everything was written: process what was read meanwhile, and read again. */
static void conn_resume(Conn *c) {
        c->paused = false;
        if (!c->resume && c->in_size > 0 &&
            sd_event_add_defer(c->manager->event, &c->resume, conn_on_resume, c) < 0)
                log_warning("Cannot schedule the frames of connection %llu; they wait for more "
                            "input",
                            (unsigned long long) c->serial);
}

static void conn_flush(Conn *c) {
        while (c->out_off < c->out_size) {
                ssize_t k = send(c->fd, c->out + c->out_off, c->out_size - c->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                conn_update_events(c);
                                return;
                        }
                        log_debug_errno(errno, "Failed to write to connection %llu: %m",
                                        (unsigned long long) c->serial);
                        conn_close(c);
                        return;
                }
                c->out_off += (size_t) k;
        }
        c->out_off = c->out_size = 0;
        if (c->paused && conn_pending(c) == 0)
                conn_resume(c);
        conn_update_events(c);
}

static void held_clear(Conn *c) {
        msgbuf_reset(&c->held);
        c->n_held = 0;
}

void conn_release_held(Conn *c) {
        if (c->closing) {
                held_clear(c);
                return;
        }
        if (c->held.failed) {
                /* An answer could not be built (out of memory): the client cannot know which
                 * of its requests were answered, so it must reconnect and ask again. */
                log_warning("Out of memory building answers for connection %llu; closing it",
                            (unsigned long long) c->serial);
                held_clear(c);
                conn_close(c);
                return;
        }
        if (c->sink.deliver) {
                /* DESIGN.md §3: the pass committed (or its answers became errors). */
                c->sink.deliver(c, c->held.sb.data, c->held.sb.size, c->sink.userdata);
                held_clear(c);
                return;
        }
        if (out_append(c, c->held.sb.data, c->held.sb.size) < 0) {
                held_clear(c);
                conn_close(c);
                return;
        }
        held_clear(c);
        conn_flush(c);
}

void conn_fail_held(Conn *c, int error, bool fsync_failed) {
        size_t n = c->n_held;
        uint64_t *ids = TAKE_PTR(c->held_ids);
        /* A full disk is resource_exhausted (DESIGN.md §10); any other failure unavailable. After
         * a failed fsync the change may be in the WAL, so the outcome is unknown. */
        const char *msg =
                error == -ENOSPC ? "the disk is full: the daemon could not commit this change; "
                                   "nothing of it was kept, try again when there is space"
                : fsync_failed   ? "the daemon could not sync this change to disk and restarts; "
                                   "look up whether it was kept before trying again"
                                 : "the daemon could not commit this change to disk; nothing of "
                                   "it was kept, try again";

        held_clear(c);
        c->held_alloc = 0;
        for (size_t i = 0; i < n; i++)
                conn_reply_error(c, ids[i], error == -ENOSPC ? -ENOSPC : -EIO, msg);
        free(ids);
        conn_release_held(c);
}

/* ---- input ---- */

static int conn_read(Conn *c) {
        size_t max = c->manager->cfg.max_frame_size + FRAME_HEADER_SIZE;

        if (c->in_alloc - c->in_size < READ_CHUNK) {
                size_t want = MAX(c->in_alloc * 2, c->in_size + READ_CHUNK);
                char *p = realloc(c->in, MIN(want, max + READ_CHUNK));
                if (!p)
                        return -ENOMEM;
                c->in = p;
                c->in_alloc = MIN(want, max + READ_CHUNK);
        }
        for (;;) {
                ssize_t k = recv(c->fd, c->in + c->in_size, c->in_alloc - c->in_size, MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return errno == EAGAIN ? 0 : -errno;
                if (k == 0)
                        return -ECONNRESET;
                c->in_size += (size_t) k;
                return 1;
        }
}

static void conn_process_frames(Conn *c) {
        size_t off = 0;

        while (!c->closing) {
                const char *body;
                size_t len;
                ssize_t n;

                if (conn_pending(c) > CONN_PENDING_MAX) {
                        c->paused = true;
                        conn_update_events(c);
                        break;
                }
                n = frame_peek(c->in + off, c->in_size - off, c->manager->cfg.max_frame_size, &body,
                               &len);
                if (n == 0)
                        break;
                if (n < 0) {
                        char msg[128];
                        snprintf(msg, sizeof(msg), "frame larger than the limit of %zu bytes",
                                 c->manager->cfg.max_frame_size);
                        conn_reply_error(c, 0, -EINVAL, msg);
                        conn_release_held(c);
                        conn_close(c);
                        break;
                }
                api_handle_frame(c->manager, c, body, len);
                off += (size_t) n;
        }
        memmove(c->in, c->in + off, c->in_size - off);
        c->in_size -= off;
}

static int conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;
        int r;

        if (revents & EPOLLOUT)
                conn_flush(c);
        if (c->closing || c->paused || !(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        r = conn_read(c);
        if (r < 0) {
                if (r != -ECONNRESET)
                        log_debug_errno(r, "Failed to read from connection %llu: %m",
                                        (unsigned long long) c->serial);
                conn_close(c);
                return 0;
        }
        conn_process_frames(c);
        return 0;
}
