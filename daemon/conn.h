#pragma once
/* Conn: one client connection on the Unix socket.
 *
 * Reads frames and hands each to the API dispatcher. Answers are not written at once: they are
 * appended to the connection's held buffer (with their request ids) and released by
 * conn_release_held() after the pass's transaction committed, or turned into "unavailable"
 * errors by conn_fail_held() when it did not (DESIGN.md §3).
 *
 * States:  OPEN --EOF/error/protocol violation--> CLOSING --end of pass--> freed
 * A CLOSING connection reads nothing, its polls, waiters and queries are gone, and its held
 * answers are dropped; it is freed by the manager when the pass ends, never inside a callback
 * that may still touch it (STYLE.md §6). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <systemd/sd-event.h>

#include "common/list.h"
#include "proto/msg.h"

typedef struct Manager Manager;
typedef struct Poll Poll;
typedef struct Waiter Waiter;
typedef struct Conn Conn;

/* A connection without a socket: one D-Bus call (api-bus.c) goes through the same operations as a
 * socket request. Its answers are handed to @deliver once the pass committed (or failed) instead
 * of being written; @free releases @userdata when the connection is freed. */
typedef struct ConnSink {
        void (*deliver)(Conn *c, const char *frames, size_t size, void *userdata);
        void (*free)(void *userdata);
        void *userdata;
} ConnSink;

struct Conn {
        Manager *manager;
        uint64_t serial; /* unique for the daemon's lifetime; names the worker cache (sticky) */
        int fd;
        sd_event_source *io;
        struct ucred cred;
        bool admin;
        bool closing;
        bool polled_workflow_tasks;
        bool shut_down; /* ShutdownWorker: polls are answered with task nil at once */

        char *in;
        size_t in_size, in_alloc;

        MsgBuf held;        /* answer frames waiting for the commit */
        uint64_t *held_ids; /* request id of each held frame, for conn_fail_held() */
        size_t n_held, held_alloc;

        char *out; /* committed answers not yet written */
        size_t out_size, out_off, out_alloc;
        /* Back-pressure: while more than CONN_PENDING_MAX bytes of answers wait for a client
         * that does not read them, its requests are not read either (see conn.c). */
        bool paused;
        sd_event_source *resume; /* processes the frames already read once it drained */

        unsigned n_polls;
        ConnSink sink; /* set for connections made by conn_new_sink() */
        LIST_FIELDS(Conn, conns);
};

/* Answers waiting (held and unwritten) past which a connection's requests are not read. */
#define CONN_PENDING_MAX (8u << 20)

/* Takes @fd on success. */
int conn_new(Conn **ret, Manager *m, int fd, uint64_t serial);
/* A socketless connection for a caller with credentials @cred; answers go to @sink (which it
 * owns from then on, also on failure). */
int conn_new_sink(
        Conn **ret, Manager *m, const struct ucred *cred, uint64_t serial, ConnSink *sink);
Conn *conn_free(Conn *c);
void conn_close(Conn *c); /* -> CLOSING */

/* Starts an answer to request @id with @nfields fields besides "id"; pack them into the returned
 * packer, then call conn_reply_end(). */
msgpack_packer *conn_reply_begin(Conn *c, uint64_t id, size_t nfields, size_t *ret_start);
void conn_reply_end(Conn *c, uint64_t id, size_t start);
void conn_reply_empty(Conn *c, uint64_t id);
/* An error answer; @error is a negative errno (mapped to the wire code). */
void conn_reply_error(Conn *c, uint64_t id, int error, const char *message);

bool conn_has_held(const Conn *c);
void conn_release_held(Conn *c);
void conn_fail_held(Conn *c, int error, bool fsync_failed);
