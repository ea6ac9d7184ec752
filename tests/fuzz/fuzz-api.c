/* Fuzzes the request decoder of every op through the daemon's real dispatch: the input is a stream
 * of request frames (4-byte big-endian length, then a msgpack map, as on the socket) that goes
 * through api_handle_frame() on one connection of a real Manager, with a real store in a
 * temporary directory, and the loop passes that follow it (dispatch, commit, answers, waiters)
 * run as in the daemon. Every answer must be a well-formed frame naming a request id, and the
 * store must keep its invariants (store_check_invariants() in expensive-checks builds, which the
 * fuzz build is not: there, the sanitizers are the oracle).
 *
 * Task tokens and run ids are random, so an input could not name the run it just started: the
 * placeholder RUN_PLACEHOLDER (36 bytes, as long as a run id) in a request is replaced with the
 * run id of the latest answer that carried one (a start, a poll). That lets the corpus hold
 * sessions (start, poll, complete with commands, poll the activity, complete it) that reach the
 * command and activity code, not only the decoders.
 *
 * The first byte picks the caller: even is an administrator (the fuzzer's own uid), odd is uid
 * 65534, which sees only what it started. BackupDatabase writes a file wherever the request
 * says, so an input that names it runs as uid 65534, which may not back up.
 *
 * One Manager per process, on one state directory, is reused by the inputs; it starts afresh
 * (a new directory) every RESET_EVERY inputs so that the database stays small and fast. Process
 * activities and D-Bus are off (no cgroups, no bus). */

#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <msgpack.h>

#include "common/list.h"
#include "common/log.h"
#include "daemon/api-sock.h"
#include "daemon/conn.h"
#include "daemon/manager.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "tests/lib/fuzz.h"

#define RESET_EVERY 500
#define NOBODY 65534
#define RUN_PLACEHOLDER "RRRRRRRR-RRRR-RRRR-RRRR-RRRRRRRRRRRR"

static Manager *manager;
static char last_run_id[37] = RUN_PLACEHOLDER;
static char *state_dir;
static unsigned n_inputs;

/* rm -rf of the state directory: a database and its WAL, the lock; nothing below. */
static void remove_state(void) {
        static const char *const files[] = { "durabled.db", "durabled.db-wal", "durabled.db-shm",
                                             "lock" };
        char path[4096];

        if (!state_dir)
                return;
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", state_dir, files[i]);
                (void) unlink(path);
        }
        (void) rmdir(state_dir);
}

static void stop(void) {
        manager = manager_free(manager);
        remove_state();
        free(state_dir);
        state_dir = NULL;
}

static void start(void) {
        const char *tmp = getenv("TMPDIR");
        char dir[4096];
        ManagerConfig cfg;
        sigset_t mask;

        /* sd-event takes these through signalfd, as in durabled's main(). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        assert(sigprocmask(SIG_BLOCK, &mask, NULL) == 0);
        snprintf(dir, sizeof(dir), "%s/fuzz-api-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert(mkdtemp(dir));
        state_dir = strdup(dir);
        assert(state_dir);
        cfg = (ManagerConfig){
                .state_dir = state_dir,
                .socket_path = "/nonexistent/fuzz-api.sock", /* never bound */
                .durability = STORE_DURABILITY_NORMAL,
                .max_frame_size = FRAME_SIZE_MAX_DEFAULT,
                .max_connections = 16,
                .max_polls_per_connection = 8,
                .max_waiters = 8,
                .no_bus = true,
                .no_process_activities = true,
        };
        assert(manager_new(&manager, &cfg) >= 0);
        assert(manager_start(manager) >= 0);
}

/* Remembers the run id in @map (a "run_id" of 36 bytes), if any. */
static void note_run_id(const msgpack_object *map) {
        const msgpack_object *o = map ? msg_get(map, "run_id") : NULL;

        if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == 36)
                memcpy(last_run_id, o->via.str.ptr, 36);
}

/* Every answer is a frame whose body is a map with an unsigned "id". */
static void deliver(Conn *c, const char *frames, size_t size, void *userdata) {
        size_t off = 0;

        while (off < size) {
                const char *body;
                size_t len;
                ssize_t n = frame_peek(frames + off, size - off, SIZE_MAX, &body, &len);
                msgpack_unpacked u;
                const msgpack_object *id;

                assert(n > 0);
                msgpack_unpacked_init(&u);
                assert(msg_decode(body, len, &u) >= 0);
                assert(u.data.type == MSGPACK_OBJECT_MAP);
                id = msg_get(&u.data, "id");
                assert(id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
                note_run_id(&u.data);
                id = msg_get(&u.data, "task");
                if (id && id->type == MSGPACK_OBJECT_MAP)
                        note_run_id(id);
                msgpack_unpacked_destroy(&u);
                off += (size_t) n;
        }
}

/* Runs loop passes until nothing is pending (no source waits: timers due later stay armed). */
static void run_passes(void) {
        manager_kick(manager);
        for (unsigned i = 0; i < 64; i++) {
                int r = sd_event_run(manager->event, 0);
                assert(r >= 0);
                if (r == 0)
                        return;
        }
}

/* A copy of @body with RUN_PLACEHOLDER replaced by the latest run id (same length). */
static char *substitute(const char *body, size_t len) {
        char *b = malloc(len ? len : 1), *q;

        assert(b);
        memcpy(b, body, len);
        for (q = b; (q = memmem(q, len - (size_t) (q - b), RUN_PLACEHOLDER, 36)); q += 36)
                memcpy(q, last_run_id, 36);
        return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct ucred cred = { .pid = getpid() };
        const char *p = (const char *) data;
        size_t left;
        Conn *c;

        if (size < 1)
                return 0;
        if (!manager) {
                log_set_max_level(LOG_CRIT); /* the daemon's warnings about bad requests */
                start();
                atexit(stop);
        }
        cred.uid = cred.gid = data[0] % 2 == 0 ? geteuid() : NOBODY;
        if (memmem(data, size, "BackupDatabase", 14))
                cred.uid = cred.gid = NOBODY;

        assert(conn_new_sink(&c, manager, &cred, ++manager->next_conn_serial,
                             &(ConnSink){ deliver, NULL, NULL }) >= 0);
        c->admin = manager_is_admin(manager, cred.uid, cred.gid, NULL, 0);
        LIST_PREPEND(conns, manager->conns, c);
        manager->n_conns++;

        /* The frames, handled one at a time as conn.c does; a pass after each, so that a later
         * request sees what an earlier one committed (a start, then a poll, then a completion). */
        for (p++, left = size - 1; left > 0;) {
                const char *body;
                size_t len;
                ssize_t n = frame_peek(p, left, FRAME_SIZE_MAX_DEFAULT, &body, &len);

                _cleanup_free_ char *b = NULL;

                if (n <= 0)
                        break; /* incomplete or oversized: the daemon would wait or close */
                b = substitute(body, len);
                api_handle_frame(manager, c, b, len);
                run_passes();
                p += n;
                left -= (size_t) n;
        }
        /* The connection goes away, as a client that hangs up: its polls and waits with it. */
        conn_close(c);
        run_passes();

        if (++n_inputs % RESET_EVERY == 0) {
                stop();
                start();
        }
        return 0;
}
