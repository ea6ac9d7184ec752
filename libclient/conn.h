#pragma once
/* A blocking, framed connection to durabled (internal to libdurable).
 *
 * One thread owns a Conn and is the only one that reads from it; conn_call() sends a request and
 * reads frames until the answer with its id arrives (answers to other ids are dropped, except
 * that of a rider: see conn_set_rider()). Writes are
 * serialised by a mutex, so another thread may call conn_send_only() (used to send ShutdownWorker
 * to wake a parked poll) while the owner is blocked in conn_call(). */

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/cleanup.h"

typedef struct Conn Conn;

/* Resolves @path (NULL: $DURABLED_SOCKET, else $XDG_RUNTIME_DIR/durabled/io.sock for non-root,
 * /run/durabled/io.sock for root) and connects. -ENXIO when no path can be found (non-root
 * without $XDG_RUNTIME_DIR), -ENAMETOOLONG when it does not fit a sockaddr_un, else connect()'s
 * error (-ENOENT, -ECONNREFUSED when the daemon is not running). */
int conn_connect(Conn **ret, const char *path);
/* The path conn_connect() would use, malloc'd. */
int conn_socket_path(const char *path, char **ret);
Conn *conn_free(Conn *c);

/* A request under construction: a frame in @sb whose map header claims @nfields + 2 entries and
 * already holds "op" and "id"; the caller packs exactly @nfields key/value pairs with @pk.
 * The packer writes through the Request, so it must not be moved after request_init(). A failed
 * allocation while packing sets @oom, and conn_call()/conn_send_only() then return -ENOMEM, so
 * callers need not check every msgpack_pack_*() call. */
typedef struct Request {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        size_t frame_start;
        uint64_t id;
        bool oom;
} Request;

void request_init(Request *req, Conn *c, const char *op, size_t nfields);
void request_done(Request *req);

/* Sends @req and waits for its answer. On success *ret (need not be initialised) holds the answer
 * map, a deep copy whose strings are NUL-terminated (object.h); the caller destroys it with
 * msgpack_unpacked_destroy(). An error answer returns the code's negative errno
 * (proto/error.h) and keeps code and message for conn_error_code()/conn_error_message(). A lost
 * connection returns -ECONNRESET. */
int conn_call(Conn *c, Request *req, msgpack_unpacked *ret);
/* Sends @req without waiting for the answer. */
int conn_send_only(Conn *c, Request *req);

/* Pipelining, as a Temporal worker's poller does it: a polling thread hands its next poll to the
 * Conn as a rider before it works on a task, and the call that answers the task
 * (conn_call_riding()) sends that poll in the same write. The daemon reads both at once, parks
 * the poll before the pass commits, and can hand it the next task in that same pass, so a task
 * costs the thread one commit's wait instead of two. The rider is the caller's: it must stay valid
 * until conn_clear_rider(). The answer to a rider that was sent is kept if it arrives while
 * another answer is awaited, and collected with conn_await(). */
void conn_set_rider(Conn *c, Request *rider);
/* Drops a rider that was not sent; returns the id of the one that was (its answer is due), else
 * 0. */
uint64_t conn_clear_rider(Conn *c);
/* conn_call() that also sends the rider, if one is set. */
int conn_call_riding(Conn *c, Request *req, msgpack_unpacked *ret);
/* Waits for the answer to request @id, sent earlier; as conn_call() otherwise. */
int conn_await(Conn *c, uint64_t id, msgpack_unpacked *ret);

/* Code and message of the last error answer (NULL before any; reset by each conn_call()). */
const char *conn_error_code(const Conn *c);
const char *conn_error_message(const Conn *c);

DEFINE_CLEANUP(Conn, conn_free);
