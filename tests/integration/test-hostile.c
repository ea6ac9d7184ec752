/* Hostile clients (DESIGN.md §4, §10): connections that send nothing, send half a frame and
 * stall, flood requests without reading the answers, or disconnect in the middle of a long poll.
 * While each of them misbehaves, another client's requests must still succeed; the flooder must
 * be throttled (the daemon stops reading it rather than buffering answers without bound) and
 * still get every answer once it reads; a poll whose connection closed must not swallow a task.
 * (Malformed frames and msgpack headers claiming 2^32 elements are in test-protocol.) */

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <msgpack.h>

#include "tests/lib/daemon.h"

/* ---- raw frames ---- */

typedef struct Frame {
        msgpack_sbuffer sb;
        msgpack_packer pk;
} Frame;

static void pk_str(msgpack_packer *pk, const char *s) {
        (void) msgpack_pack_str(pk, strlen(s));
        (void) msgpack_pack_str_body(pk, s, strlen(s));
}

/* Starts a request frame: 4 header bytes (filled by frame_end()), then {id, op, ...}. */
static msgpack_packer *frame_begin(Frame *f, uint64_t id, const char *op, size_t nfields) {
        static const char zero[4];

        msgpack_sbuffer_init(&f->sb);
        msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
        (void) msgpack_sbuffer_write(&f->sb, zero, 4);
        (void) msgpack_pack_map(&f->pk, nfields + 2);
        pk_str(&f->pk, "id");
        (void) msgpack_pack_uint64(&f->pk, id);
        pk_str(&f->pk, "op");
        pk_str(&f->pk, op);
        return &f->pk;
}

static void frame_end(Frame *f) {
        size_t n = f->sb.size - 4;
        unsigned char *h = (unsigned char *) f->sb.data;

        h[0] = (unsigned char) (n >> 24);
        h[1] = (unsigned char) (n >> 16);
        h[2] = (unsigned char) (n >> 8);
        h[3] = (unsigned char) n;
}

static void send_all(int fd, const void *p, size_t n) {
        const char *q = p;

        while (n > 0) {
                ssize_t k = send(fd, q, n, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                ASSERT_OK_ERRNO(k);
                q += k;
                n -= (size_t) k;
        }
}

static void recv_all(int fd, void *p, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = recv(fd, (char *) p + done, n - done, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                ASSERT_OK_ERRNO(k);
                ASSERT_GT(k, 0);
                done += (size_t) k;
        }
}

/* Reads one answer; returns its id and whether it is an error (code copied to @code). *@ret_task
 * (when not NULL) tells whether it carries a "task" map (a poll that got work). */
static uint64_t read_answer_task(int fd, bool *ret_error, char code[static 64], bool *ret_task) {
        unsigned char h[4];
        msgpack_unpacked u;
        uint64_t id = 0;
        char *body;
        size_t n;

        recv_all(fd, h, 4);
        n = (size_t) h[0] << 24 | (size_t) h[1] << 16 | (size_t) h[2] << 8 | h[3];
        body = ASSERT_NOT_NULL(malloc(n ? n : 1));
        recv_all(fd, body, n);
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, body, n, NULL), MSGPACK_UNPACK_SUCCESS);
        ASSERT_EQ(u.data.type, MSGPACK_OBJECT_MAP);
        *ret_error = false;
        code[0] = 0;
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
                const msgpack_object *k = &u.data.via.map.ptr[i].key,
                                     *v = &u.data.via.map.ptr[i].val;
                if (k->via.str.size == 2 && memcmp(k->via.str.ptr, "id", 2) == 0)
                        id = v->via.u64;
                if (ret_task && k->via.str.size == 4 && memcmp(k->via.str.ptr, "task", 4) == 0)
                        *ret_task = v->type == MSGPACK_OBJECT_MAP;
                if (k->via.str.size == 5 && memcmp(k->via.str.ptr, "error", 5) == 0) {
                        *ret_error = true;
                        for (uint32_t j = 0; j < v->via.map.size; j++)
                                if (v->via.map.ptr[j].key.via.str.size == 4 &&
                                    memcmp(v->via.map.ptr[j].key.via.str.ptr, "code", 4) == 0)
                                        snprintf(code, 64, "%.*s",
                                                 (int) v->via.map.ptr[j].val.via.str.size,
                                                 v->via.map.ptr[j].val.via.str.ptr);
                }
        }
        msgpack_unpacked_destroy(&u);
        free(body);
        return id;
}

static uint64_t read_answer(int fd, bool *ret_error, char code[static 64]) {
        return read_answer_task(fd, ret_error, code, NULL);
}

static int client_connect(TestDaemon *d) {
        uint64_t t = test_timeout_usec();
        struct timeval tv = { .tv_sec = (time_t) (t / TEST_USEC_PER_SEC) };
        int fd = ASSERT_OK_ERRNO(test_daemon_connect(d));

        ASSERT_OK_ERRNO(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
        ASSERT_OK_ERRNO(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)));
        return fd;
}

static void send_start(int fd, uint64_t id, const char *wf, const char *queue) {
        Frame f;
        msgpack_packer *pk = frame_begin(&f, id, "StartWorkflow", 3);

        pk_str(pk, "workflow_id");
        pk_str(pk, wf);
        pk_str(pk, "workflow_type");
        pk_str(pk, "T");
        pk_str(pk, "task_queue");
        pk_str(pk, queue);
        frame_end(&f);
        send_all(fd, f.sb.data, f.sb.size);
        msgpack_sbuffer_destroy(&f.sb);
}

/* What every test asks while a hostile client misbehaves: a new client starts a workflow and
 * describes it. */
static void check_serving(TestDaemon *d, const char *wf) {
        _cleanup_close_ int fd = client_connect(d);
        char code[64];
        bool error;
        Frame f;
        msgpack_packer *pk;

        send_start(fd, 1, wf, "q");
        ASSERT_EQ(read_answer(fd, &error, code), 1u);
        ASSERT_FALSE(error);
        pk = frame_begin(&f, 2, "DescribeWorkflow", 1);
        pk_str(pk, "workflow_id");
        pk_str(pk, wf);
        frame_end(&f);
        send_all(fd, f.sb.data, f.sb.size);
        msgpack_sbuffer_destroy(&f.sb);
        ASSERT_EQ(read_answer(fd, &error, code), 2u);
        ASSERT_FALSE(error);
}

TEST(silent_and_stalled_connections) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        int fds[40];

        test_daemon_start(&d, NULL);
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++) {
                fds[i] = client_connect(&d);
                if (i % 2 == 0)
                        continue; /* connects and sends nothing */
                /* Half a frame: a header announcing 100 bytes, then 10 of them, then nothing. */
                send_all(fds[i], "\x00\x00\x00\x64\x82\xa2id\x01\xa2op\xa1", 14);
        }
        check_serving(&d, "while-stalled");
        /* They stay open, unanswered, and do not stop a clean shutdown. */
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++) {
                struct pollfd p = { .fd = fds[i], .events = POLLIN };
                ASSERT_EQ(poll(&p, 1, 0), 0);
        }
        check_serving(&d, "still-serving");
        for (unsigned i = 0; i < ELEMENTSOF(fds); i++)
                safe_close(fds[i]);
}

TEST(flood_without_reading) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_close_ int fd = -EBADF;
        const size_t max_requests = 20000;
        size_t sent = 0, off = 0, answered = 0;
        char code[64];
        bool error;
        Frame f;

        test_daemon_start(&d, NULL);
        /* 200 workflows: each ListWorkflows answer is some 40 KiB. */
        fd = client_connect(&d);
        for (unsigned i = 0; i < 200; i++) {
                char wf[32];
                snprintf(wf, sizeof(wf), "flood-%u", i);
                send_start(fd, i + 1, wf, "q");
        }
        for (unsigned i = 0; i < 200; i++) {
                (void) read_answer(fd, &error, code);
                ASSERT_FALSE(error);
        }

        /* Requests, never reading, until the daemon stops reading them: it must, long before
         * max_requests answers (800 MB) would have piled up in its memory. */
        (void) frame_begin(&f, 1, "ListWorkflows", 0);
        frame_end(&f);
        ASSERT_OK_ERRNO(fcntl(fd, F_SETFL, O_NONBLOCK));
        for (;;) {
                ssize_t k = send(fd, f.sb.data + off, f.sb.size - off, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        /* A full socket buffer is not yet a stall: the daemon may just be busy.
                         * It counts as one when the buffer does not drain for a second. */
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        if (poll(&p, 1, 1000) == 0)
                                break;
                        continue;
                }
                ASSERT_OK_ERRNO(k);
                off += (size_t) k;
                if (off == f.sb.size) {
                        off = 0;
                        sent++;
                        ASSERT_LT(sent, max_requests);
                }
        }
        /* Stalled: the daemon serves everyone else meanwhile. */
        check_serving(&d, "during-flood");
        /* Once the flooder reads, every request it sent is answered. */
        ASSERT_OK_ERRNO(fcntl(fd, F_SETFL, 0));
        if (off > 0) {
                send_all(fd, f.sb.data + off, f.sb.size - off);
                sent++;
        }
        for (; answered < sent; answered++) {
                (void) read_answer(fd, &error, code);
                ASSERT_FALSE(error);
        }
        msgpack_sbuffer_destroy(&f.sb);
        printf("flood: the daemon stopped reading after %zu requests; all answered\n", sent);
        check_serving(&d, "after-flood");
}

TEST(disconnect_mid_poll) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_close_ int worker = -EBADF, client = -EBADF;
        char code[64];
        bool error, task = false;
        Frame f;
        msgpack_packer *pk;

        test_daemon_start(&d, NULL);
        /* Ten polls on queue "hq" whose connections go away without a word. */
        for (unsigned i = 0; i < 10; i++) {
                _cleanup_close_ int fd = client_connect(&d);
                pk = frame_begin(&f, 1, "PollWorkflowTask", 1);
                pk_str(pk, "task_queue");
                pk_str(pk, "hq");
                frame_end(&f);
                send_all(fd, f.sb.data, f.sb.size);
                msgpack_sbuffer_destroy(&f.sb);
        }
        /* A task for "hq" is not handed to any of them: a live poll gets it. */
        client = client_connect(&d);
        send_start(client, 1, "polled", "hq");
        ASSERT_EQ(read_answer(client, &error, code), 1u);
        ASSERT_FALSE(error);
        worker = client_connect(&d);
        pk = frame_begin(&f, 7, "PollWorkflowTask", 2);
        pk_str(pk, "task_queue");
        pk_str(pk, "hq");
        pk_str(pk, "timeout_usec");
        (void) msgpack_pack_uint64(pk, test_timeout_usec());
        frame_end(&f);
        send_all(worker, f.sb.data, f.sb.size);
        msgpack_sbuffer_destroy(&f.sb);
        ASSERT_EQ(read_answer_task(worker, &error, code, &task), 7u);
        ASSERT_FALSE(error);
        ASSERT_TRUE(task);
        check_serving(&d, "after-polls");
}

DEFINE_TEST_MAIN()
