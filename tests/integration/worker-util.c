/* See worker-util.h. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf() */
#endif

#include "tests/integration/worker-util.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void test_worker_spawn(TestProcess *p, const char *queue, const char *const *extra_env) {
        test_process_spawn(p,
                           STRV(test_bin("TEST_WORKER_BIN"), "--task-queue", queue ?: TEST_QUEUE),
                           extra_env);
}

void start_json(dur_client *c,
                const char *type,
                const char *workflow_id,
                const char *queue,
                const char *input,
                uint64_t task_timeout) {
        dur_start_opts opts = { .workflow_id = workflow_id,
                                .task_queue = queue ?: TEST_QUEUE,
                                .task_timeout = task_timeout };
        dur_buf *in = input ? dur_buf_from_json(input) : NULL;

        if (input && !in)
                test_fail(__FILE__, __LINE__, "bad JSON input: %s", input);
        ASSERT_DUR_OK(c, dur_client_start(c, type, &opts, in, NULL));
        dur_buf_free(in);
}

int wait_outcome(dur_client *c, const char *workflow_id, dur_outcome *ret) {
        int r = dur_client_result(c, workflow_id, NULL, 0, ret);

        if (r < 0 && r != DUR_FAILED)
                test_fail(__FILE__, __LINE__, "waiting for '%s' failed: %d (%s: %s)", workflow_id,
                          r, test_str_or_null(dur_client_error_code(c)),
                          test_str_or_null(dur_client_error_message(c)));
        return r;
}

char *describe_status(dur_client *c, const char *workflow_id) {
        json_t *req = ASSERT_NOT_NULL(
                json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", workflow_id));
        json_t *answer;
        const char *s;
        char *status;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (!answer)
                test_fail(__FILE__, __LINE__, "DescribeWorkflow '%s' failed: %s", workflow_id,
                          test_str_or_null(dur_client_error_message(c)));
        s = ASSERT_NOT_NULL(json_str(json_object_get(answer, "workflow"), "status"));
        status = ASSERT_NOT_NULL(strdup(s));
        json_decref(answer);
        return status;
}

char *history_types(const json_t *events) {
        char *s = NULL;
        size_t len = 0;
        FILE *f = ASSERT_NOT_NULL(open_memstream(&s, &len));
        size_t i;
        json_t *ev;

        json_array_foreach(events, i, ev)
                fprintf(f, "%s%s", i > 0 ? " " : "", test_str_or_null(ev_type(ev)));
        ASSERT_OK_ERRNO(fclose(f));
        return s;
}

void history_assert_types_at(const json_t *events,
                             const char *const *types,
                             const char *file,
                             int line) {
        _cleanup_free_ char *have = history_types(events), *want = NULL;
        size_t len = 0;
        FILE *f = ASSERT_NOT_NULL(open_memstream(&want, &len));

        for (size_t i = 0; types[i]; i++)
                fprintf(f, "%s%s", i > 0 ? " " : "", types[i]);
        ASSERT_OK_ERRNO(fclose(f));
        if (strcmp(have, want) != 0)
                test_fail(file, line, "history differs:\n  have: %s\n  want: %s", have, want);
}

json_t *ev_attr(const json_t *ev, const char *key) {
        return json_object_get(json_object_get(ev, "attributes"), key);
}

json_t *history_must(const json_t *events, const char *type) {
        json_t *ev = history_next(events, type, 0, NULL);

        if (!ev) {
                _cleanup_free_ char *have = history_types(events);
                test_fail(__FILE__, __LINE__, "no %s in the history: %s", type, have);
        }
        return ev;
}

int fifo_make(TestDaemon *d, const char *name, char **ret_path) {
        char *path = NULL;

        ASSERT_NOT_NULL(d->dir);
        ASSERT_OK_ERRNO(asprintf(&path, "%s/%s", d->dir, name));
        (void) unlink(path);
        ASSERT_OK_ERRNO(mkfifo(path, 0600));
        *ret_path = path;
        return ASSERT_OK_ERRNO(open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC));
}

static uint64_t mono_usec(void) {
        struct timespec ts;

        assert(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
        return (uint64_t) ts.tv_sec * TEST_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

void fifo_read_line(int fd, char *buf, size_t size) {
        uint64_t deadline = mono_usec() + test_timeout_usec();
        size_t n = 0;

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                uint64_t now = mono_usec();
                ssize_t k;
                char ch;

                if (now >= deadline)
                        test_fail(__FILE__, __LINE__, "no line came through the FIFO in time");
                if (poll(&pfd, 1, (int) ((deadline - now + 999) / 1000)) < 0 && errno != EINTR)
                        test_fail(__FILE__, __LINE__, "poll() failed: %m");
                /* One byte at a time: a second line stays for the next call. */
                while ((k = read(fd, &ch, 1)) == 1) {
                        if (ch == '\n') {
                                buf[n] = 0;
                                return;
                        }
                        if (n < size - 1)
                                buf[n++] = ch;
                }
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        test_fail(__FILE__, __LINE__, "reading the FIFO failed: %m");
        }
}

/* A dur_buf holding what @sb packed (takes its memory). */
static dur_buf *buf_from_sbuffer(msgpack_sbuffer *sb) {
        dur_buf *b = ASSERT_NOT_NULL(malloc(sizeof(*b)));

        b->size = sb->size;
        b->data = msgpack_sbuffer_release(sb); /* dur_buf_free() free()s it */
        return b;
}

static void pack_str(msgpack_packer *pk, const char *s) {
        ASSERT_OK(msgpack_pack_str(pk, strlen(s)));
        ASSERT_OK(msgpack_pack_str_body(pk, s, strlen(s)));
}

static void raw_poll(dur_client *c, const char *op, const char *queue, char **ret_token,
                     size_t *ret_size) {
        uint64_t deadline = mono_usec() + test_timeout_usec();

        for (;;) {
                dur_buf *req, *answer = NULL;
                const msgpack_object *task, *token;
                msgpack_unpacked u;

                if (mono_usec() >= deadline)
                        test_fail(__FILE__, __LINE__, "no task of %s on '%s' in time", op, queue);
                /* A long poll: the daemon answers when a task comes (or after 5 s with nil). */
                req = ASSERT_NOT_NULL(dur_args("{s:s, s:s, s:s, s:U}", "op", op,
                                               "task_queue", queue, "identity", "raw-worker",
                                               "timeout_usec", (uint64_t) 5 * TEST_USEC_PER_SEC));
                ASSERT_DUR_OK(c, dur_client_call(c, req, &answer));
                dur_buf_free(req);
                msgpack_unpacked_init(&u);
                ASSERT_EQ(msgpack_unpack_next(&u, answer->data, answer->size, NULL),
                          MSGPACK_UNPACK_SUCCESS);
                task = NULL;
                for (uint32_t i = 0; i < u.data.via.map.size; i++)
                        if (u.data.via.map.ptr[i].key.type == MSGPACK_OBJECT_STR &&
                            u.data.via.map.ptr[i].key.via.str.size == 4 &&
                            memcmp(u.data.via.map.ptr[i].key.via.str.ptr, "task", 4) == 0)
                                task = &u.data.via.map.ptr[i].val;
                if (task && task->type == MSGPACK_OBJECT_MAP) {
                        ASSERT_OK(dur_unpack(task, "{s:o}", "task_token", &token));
                        ASSERT_EQ(token->type, MSGPACK_OBJECT_BIN);
                        *ret_size = token->via.bin.size;
                        *ret_token = ASSERT_NOT_NULL(malloc(*ret_size));
                        memcpy(*ret_token, token->via.bin.ptr, *ret_size);
                        msgpack_unpacked_destroy(&u);
                        dur_buf_free(answer);
                        return;
                }
                msgpack_unpacked_destroy(&u);
                dur_buf_free(answer);
        }
}

void raw_poll_workflow_task(dur_client *c, const char *queue, char **ret_token, size_t *ret_size) {
        raw_poll(c, "PollWorkflowTask", queue, ret_token, ret_size);
}

void raw_poll_activity_task(dur_client *c, const char *queue, char **ret_token, size_t *ret_size) {
        raw_poll(c, "PollActivityTask", queue, ret_token, ret_size);
}

int raw_complete_workflow_task(dur_client *c,
                               const char *token,
                               size_t size,
                               const char *commands_json) {
        dur_buf *commands = dur_buf_from_json(commands_json), *req, *answer = NULL;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        int r;

        if (!commands)
                test_fail(__FILE__, __LINE__, "bad JSON: %s", commands_json);
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, commands->data, commands->size, NULL),
                  MSGPACK_UNPACK_SUCCESS);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ASSERT_OK(msgpack_pack_map(&pk, 3));
        pack_str(&pk, "op");
        pack_str(&pk, "CompleteWorkflowTask");
        pack_str(&pk, "task_token");
        ASSERT_OK(msgpack_pack_bin(&pk, size));
        ASSERT_OK(msgpack_pack_bin_body(&pk, token, size));
        pack_str(&pk, "commands");
        ASSERT_OK(msgpack_pack_object(&pk, u.data));
        msgpack_unpacked_destroy(&u);
        dur_buf_free(commands);
        req = buf_from_sbuffer(&sb);
        r = dur_client_call(c, req, &answer);
        dur_buf_free(req);
        dur_buf_free(answer);
        return r;
}

uint64_t query_count(dur_client *c, const char *id) {
        dur_buf *result = NULL;
        uint64_t n = UINT64_MAX;
        msgpack_unpacked u;

        ASSERT_DUR_OK(c, dur_client_query(c, id, NULL, "count", NULL, &result));
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, result->data, result->size, NULL),
                  MSGPACK_UNPACK_SUCCESS);
        ASSERT_OK(dur_unpack(&u.data, "U", &n));
        msgpack_unpacked_destroy(&u);
        dur_buf_free(result);
        return n;
}
