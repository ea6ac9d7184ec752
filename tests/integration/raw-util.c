/* Raw protocol connections (raw-util.h). */

#include "tests/integration/raw-util.h"

#include <durable/durable.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static void set_timeout(int fd) {
        uint64_t t = test_timeout_usec();
        struct timeval tv = { .tv_sec = (time_t) (t / TEST_USEC_PER_SEC) };

        ASSERT_OK_ERRNO(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
}

int raw_connect(TestDaemon *d) {
        int fd = ASSERT_OK(test_daemon_connect(d));

        set_timeout(fd);
        return fd;
}

int raw_connect_as(TestDaemon *d, uid_t uid, gid_t gid, gid_t group) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, status;
        pid_t pid;

        ASSERT_LT(strlen(d->socket_path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, d->socket_path);
        fd = ASSERT_OK_ERRNO(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        pid = ASSERT_OK_ERRNO(fork());
        if (pid == 0) {
                bool ok = setgroups(group == (gid_t) -1 ? 0 : 1, &group) >= 0 &&
                          setresgid(gid, gid, gid) >= 0 && setresuid(uid, uid, uid) >= 0 &&
                          connect(fd, (struct sockaddr *) &sa, sizeof(sa)) >= 0;
                _exit(ok ? 0 : 1);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        set_timeout(fd);
        return fd;
}

void raw_send(int fd, const char *json) {
        dur_buf *b = dur_buf_from_json(json);
        unsigned char h[4];

        if (!b)
                test_fail(__FILE__, __LINE__, "bad JSON: %s", json);
        h[0] = b->size >> 24, h[1] = b->size >> 16, h[2] = b->size >> 8, h[3] = b->size;
        ASSERT_EQ(send(fd, h, 4, MSG_NOSIGNAL), 4);
        ASSERT_EQ(send(fd, b->data, b->size, MSG_NOSIGNAL), (ssize_t) b->size);
        dur_buf_free(b);
}

static void recv_exact(int fd, void *p, size_t n) {
        for (size_t done = 0; done < n;) {
                ssize_t k = recv(fd, (char *) p + done, n - done, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                ASSERT_OK_ERRNO(k);
                if (k == 0)
                        test_fail(__FILE__, __LINE__, "the daemon closed the connection");
                done += (size_t) k;
        }
}

json_t *raw_answer(int fd) {
        _cleanup_free_ char *text = NULL;
        unsigned char h[4];
        dur_buf b = {};
        json_t *j;

        recv_exact(fd, h, 4);
        b.size = (size_t) h[0] << 24 | (size_t) h[1] << 16 | (size_t) h[2] << 8 | h[3];
        b.data = ASSERT_NOT_NULL(malloc(b.size ? b.size : 1));
        recv_exact(fd, b.data, b.size);
        text = ASSERT_NOT_NULL(dur_buf_to_json(&b));
        free(b.data);
        j = json_loads(text, 0, NULL);
        if (!j)
                test_fail(__FILE__, __LINE__, "answer is not JSON: %s", text);
        return j;
}

json_t *raw_call(int fd, const char *json) {
        raw_send(fd, json);
        return raw_answer(fd);
}

const char *raw_code(const json_t *answer) {
        const char *c =
                json_string_value(json_object_get(json_object_get(answer, "error"), "code"));

        return c ? c : "ok";
}

void raw_assert_error_at(json_t *answer,
                         uint64_t id,
                         const char *code,
                         const char *needle,
                         const char *file,
                         int line) {
        json_t *e = json_object_get(answer, "error");
        const char *c = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));

        if (json_integer_value(json_object_get(answer, "id")) != (json_int_t) id || !c ||
            !streq(c, code) || !msg || !strstr(msg, needle)) {
                _cleanup_free_ char *text = json_dumps(answer, JSON_COMPACT);
                test_fail(file, line, "expected a %s answer to request %" PRIu64 " with '%s': %s",
                          code, id, needle, text);
        }
}
