#pragma once
/* Raw protocol connections for the integration tests that need what libdurable does not offer: a
 * request left parked while others follow on the same connection, a connection made with another
 * user's credentials, the answer to a connection the daemon refuses. Frames are built from JSON
 * (dur_buf_from_json()) and answers come back as JSON; reads give up after the harness timeout. */

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "tests/lib/daemon.h"

/* A connection to @d's socket with a receive timeout of test_timeout_usec(). */
int raw_connect(TestDaemon *d);
/* The same, made by a child process with uid @uid, gid @gid and the one supplementary group
 * @group ((gid_t) -1: none), so that the daemon takes those credentials (SO_PEERCRED,
 * SO_PEERGROUPS are taken at connect time) while the test keeps using the connection. */
int raw_connect_as(TestDaemon *d, uid_t uid, gid_t gid, gid_t group);
/* Sends the request @json (a JSON object) as one frame. */
void raw_send(int fd, const char *json);
/* The next answer on @fd as JSON (a new reference); fails the test on EOF or timeout. */
json_t *raw_answer(int fd);
/* Sends @json and returns the answer to it (no other request may be in flight on @fd). */
json_t *raw_call(int fd, const char *json);
/* The error code of @answer, or "ok". */
const char *raw_code(const json_t *answer);

/* Fails unless @answer is the error @code for request @id and its message holds @needle. */
#define ASSERT_ANSWER_ERROR(answer, id, code, needle) \
        raw_assert_error_at(answer, id, code, needle, __FILE__, __LINE__)
void raw_assert_error_at(json_t *answer,
                         uint64_t id,
                         const char *code,
                         const char *needle,
                         const char *file,
                         int line);
