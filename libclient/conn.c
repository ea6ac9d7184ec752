/* A blocking connection to durabled's Unix socket; see conn.h and doc/protocol.md.
 *
 * Requests are built straight into a frame (header reserved by frame_begin(), map header, "op",
 * "id", then the caller's fields) and sent in one locked send loop, so frames of two threads never
 * interleave. Input is read into one growing buffer; frame_peek() cuts frames out of it and
 * msg_decode() checks each body before msgpack-c touches it. The answer a caller gets is a deep
 * copy (object_copy()), so it outlives the input buffer and its strings are C strings.
 *
 * Ids start at 1: the daemon answers a frame it could not even read (oversized, not a map) with
 * id 0, and that answer belongs to whoever is waiting. */

#define _GNU_SOURCE 1 /* secure_getenv() */

#include "libclient/conn.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libclient/logging.h"
#include "libclient/object.h"
#include "proto/error.h"
#include "proto/frame.h"
#include "proto/msg.h"

/* Answers may be larger than the requests the daemon accepts (a long history): accept up to 16x
 * the daemon's default request limit before calling the stream broken. */
#define CONN_ANSWER_SIZE_MAX (16 * (size_t) FRAME_SIZE_MAX_DEFAULT)
#define CONN_READ_CHUNK (64 * 1024)

struct Conn {
        int fd;
        pthread_mutex_t write_lock; /* serialises whole frames on @fd */
        uint64_t next_id;           /* atomic: conn_send_only() callers build requests too */

        /* Owned by the reading thread: received bytes are in[in_start, in_end). */
        char *in;
        size_t in_start, in_end, in_alloc;
        bool broken; /* framing lost: every further call fails */

        /* Pipelining (conn_set_rider()): the rider to send with the next conn_call_riding(), the
         * id of the one sent whose answer is due, and that answer if it came early. */
        Request *rider;
        uint64_t rider_id;
        bool stashed;
        msgpack_unpacked stash;

        char *error_code, *error_message;
};

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        pthread_mutex_destroy(&c->write_lock);
        if (c->stashed)
                msgpack_unpacked_destroy(&c->stash);
        free(c->in);
        free(c->error_code);
        free(c->error_message);
        free(c);
        return NULL;
}

int conn_socket_path(const char *path, char **ret) {
        const char *e;
        char *p;

        if (path && *path)
                p = strdup(path);
        else if ((e = secure_getenv("DURABLED_SOCKET")) && *e)
                p = strdup(e);
        else if (geteuid() == 0)
                p = strdup("/run/durabled/io.sock");
        else {
                e = secure_getenv("XDG_RUNTIME_DIR");
                if (!e || *e != '/')
                        return -ENXIO;
                if (asprintf(&p, "%s/durabled/io.sock", e) < 0)
                        p = NULL;
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* Connects a new socket to @path; a leading '@' names an abstract socket, as in systemd. */
static int socket_connect(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(path);
        socklen_t salen;
        _cleanup_close_ int fd = -EBADF;

        if (n == 0)
                return -EINVAL;
        if (n >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, n);
        salen = offsetof(struct sockaddr_un, sun_path) + n;
        if (path[0] == '@')
                sa.sun_path[0] = '\0';
        else
                salen++; /* the terminating NUL of a path name */

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) &sa, salen) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int conn_connect(Conn **ret, const char *path) {
        _cleanup_(conn_freep) Conn *c = NULL;
        _cleanup_free_ char *p = NULL;
        int r;

        r = conn_socket_path(path, &p);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -EBADF;
        c->write_lock = (pthread_mutex_t) PTHREAD_MUTEX_INITIALIZER;
        r = socket_connect(p, &c->fd);
        if (r < 0)
                return dur_log_errno(LOG_DEBUG, r, "Failed to connect to %s: %m", p);
        *ret = TAKE_PTR(c);
        return 0;
}

/* The packer's write callback: remembers a failed allocation instead of making every caller
 * check every msgpack_pack_*() result. */
static int request_write(void *data, const char *buf, size_t len) {
        Request *req = data;

        if (msgpack_sbuffer_write(&req->sb, buf, len) < 0) {
                req->oom = true;
                return -1;
        }
        return 0;
}

void request_init(Request *req, Conn *c, const char *op, size_t nfields) {
        *req = (Request){ .id = __atomic_add_fetch(&c->next_id, 1, __ATOMIC_RELAXED) };
        msgpack_sbuffer_init(&req->sb);
        msgpack_packer_init(&req->pk, req, request_write);
        req->frame_start = frame_begin(&req->sb);
        if (req->sb.size != req->frame_start + FRAME_HEADER_SIZE)
                req->oom = true;
        (void) msgpack_pack_map(&req->pk, nfields + 2);
        (void) msg_pack_kv_str(&req->pk, "op", op);
        (void) msg_pack_kv_uint(&req->pk, "id", req->id);
}

void request_done(Request *req) {
        msgpack_sbuffer_destroy(&req->sb);
}

static int send_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EPIPE ? -ECONNRESET : -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Closes @req's frame. */
static int request_finish(Request *req) {
        if (req->oom)
                return -ENOMEM;
        /* The header holds 32 bits; the daemon refuses anything near that anyway. */
        if (req->sb.size - req->frame_start - FRAME_HEADER_SIZE > UINT32_MAX)
                return -E2BIG;
        frame_end(&req->sb, req->frame_start);
        return 0;
}

/* Sends @req and, if @rider is not NULL, @rider right after it in the same write. */
static int send_frames(Conn *c, Request *req, Request *rider) {
        int r;

        r = request_finish(req);
        if (r >= 0 && rider)
                r = request_finish(rider);
        if (r >= 0 && rider &&
            msgpack_sbuffer_write(&req->sb, rider->sb.data + rider->frame_start,
                                  rider->sb.size - rider->frame_start) < 0)
                r = -ENOMEM;
        if (r < 0)
                return r;
        pthread_mutex_lock(&c->write_lock);
        r = send_all(c->fd, req->sb.data + req->frame_start, req->sb.size - req->frame_start);
        pthread_mutex_unlock(&c->write_lock);
        return r;
}

int conn_send_only(Conn *c, Request *req) {
        return send_frames(c, req, NULL);
}

void conn_set_rider(Conn *c, Request *rider) {
        c->rider = rider;
}

uint64_t conn_clear_rider(Conn *c) {
        c->rider = NULL;
        return c->rider_id;
}

/* Makes room for at least CONN_READ_CHUNK more bytes, first by dropping consumed ones. */
static int input_reserve(Conn *c) {
        size_t used = c->in_end - c->in_start;
        size_t want;
        char *p;

        if (c->in_start > 0) {
                memmove(c->in, c->in + c->in_start, used);
                c->in_start = 0;
                c->in_end = used;
        }
        if (c->in_alloc - c->in_end >= CONN_READ_CHUNK)
                return 0;
        want = MAX(2 * c->in_alloc, used + CONN_READ_CHUNK);
        p = realloc(c->in, want);
        if (!p)
                return -ENOMEM;
        c->in = p;
        c->in_alloc = want;
        return 0;
}

static int input_fill(Conn *c) {
        ssize_t k;
        int r;

        r = input_reserve(c);
        if (r < 0)
                return r;
        /* Wait in poll(), not in a blocking recv(): a thread asleep in recv() is woken each time
         * the daemon reads one of this socket's requests (the kernel's write-space wake-up,
         * which a poll for POLLIN alone filters out), and each such wake-up is paid for by the
         * daemon's loop thread. See bench/README.md, change 9. */
        for (;;) {
                struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

                k = recv(c->fd, c->in + c->in_end, c->in_alloc - c->in_end, MSG_DONTWAIT);
                if (k >= 0 || (errno != EAGAIN && errno != EINTR))
                        break;
                if (errno == EAGAIN && poll(&pfd, 1, -1) < 0 && errno != EINTR)
                        return -errno;
        }
        if (k < 0)
                return errno == ECONNRESET ? -ECONNRESET : -errno;
        if (k == 0)
                return -ECONNRESET; /* the daemon closed the connection */
        c->in_end += (size_t) k;
        return 0;
}

/* The next whole frame's body; valid until the next read. */
static int read_frame(Conn *c, const char **ret_body, size_t *ret_len) {
        for (;;) {
                ssize_t n;
                int r;

                n = frame_peek(c->in + c->in_start, c->in_end - c->in_start, CONN_ANSWER_SIZE_MAX,
                               ret_body, ret_len);
                if (n < 0) {
                        c->broken = true; /* we cannot skip what we will not buffer */
                        return dur_log_errno(LOG_DEBUG, -EBADMSG,
                                             "durabled sent a frame over %zu bytes",
                                             CONN_ANSWER_SIZE_MAX);
                }
                if (n > 0) {
                        c->in_start += (size_t) n;
                        return 0;
                }
                r = input_fill(c);
                if (r < 0)
                        return r;
        }
}

static int error_set(Conn *c, const msgpack_object *error) {
        const msgpack_object *code = msg_get(error, "code"), *message = msg_get(error, "message");
        char *cd = NULL, *msg = NULL;

        if (code && code->type == MSGPACK_OBJECT_STR)
                cd = strndup(code->via.str.ptr, code->via.str.size);
        if (message && message->type == MSGPACK_OBJECT_STR)
                msg = strndup(message->via.str.ptr, message->via.str.size);
        free(c->error_code);
        free(c->error_message);
        c->error_code = cd;
        c->error_message = msg;
        return cd ? wire_code_to_errno(cd) : -EPROTO;
}

static void error_clear(Conn *c) {
        free(c->error_code);
        free(c->error_message);
        c->error_code = c->error_message = NULL;
}

/* A deep copy of @answer in a zone of its own, which outlives the input buffer. */
static int answer_own(const msgpack_object *answer, msgpack_unpacked *ret) {
        msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        msgpack_object copy;

        if (!zone)
                return -ENOMEM;
        if (object_copy(answer, zone, &copy) < 0) {
                msgpack_zone_free(zone);
                return -ENOMEM;
        }
        *ret = (msgpack_unpacked){ .zone = zone, .data = copy };
        return 0;
}

/* Hands the answer to the caller, or turns an error answer into its errno. */
static int answer_take(Conn *c, const msgpack_object *answer, msgpack_unpacked *ret) {
        const msgpack_object *error = msg_get(answer, "error");

        return error ? error_set(c, error) : answer_own(answer, ret);
}

/* Is @answer the one for request @id? Id 0 is the daemon's answer to an unreadable frame. */
static bool answer_is_for(const msgpack_object *answer, uint64_t id) {
        const msgpack_object *v = msg_get(answer, "id");
        uint64_t got = v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;

        return got == id || (got == 0 && msg_get(answer, "error"));
}

int conn_await(Conn *c, uint64_t id, msgpack_unpacked *ret) {
        int r;

        if (c->broken)
                return -ECONNRESET;
        error_clear(c);
        if (id == c->rider_id) {
                c->rider_id = 0;
                if (c->stashed) {
                        /* Already a copy of its own: handed over as it is, or its error. */
                        const msgpack_object *error = msg_get(&c->stash.data, "error");

                        c->stashed = false;
                        if (!error) {
                                *ret = c->stash;
                                return 0;
                        }
                        r = error_set(c, error);
                        msgpack_unpacked_destroy(&c->stash);
                        return r;
                }
        }
        for (;;) {
                msgpack_unpacked u;
                const char *body;
                size_t len;

                r = read_frame(c, &body, &len);
                if (r < 0)
                        return r;
                msgpack_unpacked_init(&u);
                r = msg_decode(body, len, &u);
                if (r < 0) {
                        msgpack_unpacked_destroy(&u);
                        /* The frame boundary is intact, but this may have been our answer. */
                        return dur_log_errno(LOG_DEBUG, r, "durabled sent an undecodable frame");
                }
                if (answer_is_for(&u.data, id)) {
                        r = answer_take(c, &u.data, ret);
                        msgpack_unpacked_destroy(&u);
                        return r;
                }
                /* The rider's answer, early; anything else answers a request sent with
                 * conn_send_only(), which nobody waits for. */
                r = 0;
                if (c->rider_id != 0 && !c->stashed && answer_is_for(&u.data, c->rider_id)) {
                        r = answer_own(&u.data, &c->stash);
                        c->stashed = r >= 0;
                }
                msgpack_unpacked_destroy(&u);
                if (r < 0)
                        return r;
        }
}

static int call(Conn *c, Request *req, Request *rider, msgpack_unpacked *ret) {
        int r;

        if (c->broken)
                return -ECONNRESET;
        r = send_frames(c, req, rider);
        if (r < 0)
                return r;
        if (rider)
                c->rider_id = rider->id;
        return conn_await(c, req->id, ret);
}

int conn_call(Conn *c, Request *req, msgpack_unpacked *ret) {
        return call(c, req, NULL, ret);
}

int conn_call_riding(Conn *c, Request *req, msgpack_unpacked *ret) {
        Request *rider = TAKE_PTR(c->rider);

        return call(c, req, rider, ret);
}

const char *conn_error_code(const Conn *c) {
        return c->error_code;
}

const char *conn_error_message(const Conn *c) {
        return c->error_message;
}
