/* Who may do what (DESIGN.md §10) through the real daemon in system mode, where the socket is
 * open to every user: another user (nobody) sees only the workflows it started, answers about the
 * others are exactly "not found", and its worker receives only tasks of its own workflows, while
 * tasks of other users' workflows ahead of them in the same queue wait for their own workers.
 * Activity units (durabled.activity(5)) are listed for anyone, reloaded only by administrators,
 * and run only in administrators' runs. A task token works only for its run's owner. */

#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/worker-util.h"

#define NOBODY 65534

static json_t *call(dur_client *c, json_t *request, int *ret_error) {
        json_t *a = call_json(c, request, ret_error);

        json_decref(request);
        return a;
}

static json_t *start_request(const char *id) {
        return json_pack("{s:s, s:s, s:s, s:s}", "op", "StartWorkflow", "workflow_id", id,
                         "workflow_type", "Nobody", "task_queue", "shared");
}

static json_t *poll_request(uint64_t timeout_usec) {
        return json_pack("{s:s, s:s, s:I}", "op", "PollWorkflowTask", "task_queue", "shared",
                         "timeout_usec", (json_int_t) timeout_usec);
}

/* What the other user does; returns 0, or the number of the check that failed. The checks run
 * in a child process that dropped root, so they report by exit code, not with ASSERT. */
static int as_nobody(const char *socket_path) {
        dur_client *c = NULL;
        json_t *a, *task;
        int error = 0;

        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                return 1;
        if (dur_client_connect(&c, socket_path) < 0)
                return 2;
        /* root's workflow does not exist for nobody, whatever the operation. */
        a = call(c, json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "root-wf"),
                 &error);
        if (a || strcmp(dur_client_error_code(c), "not_found") != 0)
                return 3;
        a = call(c,
                 json_pack("{s:s, s:s, s:s}", "op", "SignalWorkflow", "workflow_id", "root-wf",
                           "signal_name", "x"),
                 &error);
        if (a || strcmp(dur_client_error_code(c), "not_found") != 0)
                return 4;
        /* ... nor for updates (sent, or asked for by update id, or with start). */
        a = call(c,
                 json_pack("{s:s, s:s, s:s}", "op", "UpdateWorkflow", "workflow_id", "root-wf",
                           "update_name", "x"),
                 &error);
        if (a || strcmp(dur_client_error_code(c), "not_found") != 0)
                return 13;
        a = call(c,
                 json_pack("{s:s, s:s, s:s}", "op", "PollWorkflowUpdate", "workflow_id",
                           "root-wf", "update_id", "x"),
                 &error);
        if (a || strcmp(dur_client_error_code(c), "not_found") != 0)
                return 14;
        a = call(c,
                 json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "op", "UpdateWithStart",
                           "workflow_id", "root-wf", "workflow_type", "Nobody", "task_queue",
                           "shared", "update_name", "x", "id_conflict_policy", "UseExisting"),
                 &error);
        if (a || strcmp(dur_client_error_code(c), "already_started") != 0)
                return 15;
        a = call(c, json_pack("{s:s}", "op", "ListWorkflows"), &error);
        if (!a || json_array_size(json_object_get(a, "workflows")) != 0)
                return 5;
        json_decref(a);
        /* root's workflow task waits in "shared", but not for nobody's worker. */
        a = call(c, poll_request(300 * 1000), &error);
        if (!a || !json_is_null(json_object_get(a, "task")))
                return 6;
        json_decref(a);
        /* nobody's own workflow, queued behind root's, does reach nobody's worker. */
        a = call(c, start_request("nobody-wf"), &error);
        if (!a)
                return 7;
        json_decref(a);
        a = call(c, poll_request(test_timeout_usec()), &error);
        task = a ? json_object_get(a, "task") : NULL;
        if (!task || strcmp(json_str(task, "workflow_id"), "nobody-wf") != 0)
                return 8;
        json_decref(a);
        /* Activity units: anyone may list them, only administrators reload them. */
        a = call(c, json_pack("{s:s}", "op", "Reload"), &error);
        if (a || strcmp(dur_client_error_code(c), "permission_denied") != 0)
                return 9;
        a = call(c, json_pack("{s:s}", "op", "ListActivityTypes"), &error);
        if (!a || !json_is_array(json_object_get(a, "activity_types")))
                return 10;
        json_decref(a);
        /* A unit runs as the daemon's user: not for the runs of other users. */
        a = call(c,
                 json_pack("{s:s, s:s, s:s}", "op", "StartActivity", "activity_id", "nobody-act",
                           "activity_type", "rootly"),
                 &error);
        if (!a)
                return 11;
        json_decref(a);
        a = call(c,
                 json_pack("{s:s, s:s, s:b}", "op", "GetResult", "workflow_id", "nobody-act",
                           "wait", 1),
                 &error);
        task = a ? json_object_get(a, "workflow") : NULL;
        if (!task || strcmp(json_str(task, "status"), "Failed") != 0 ||
            strcmp(json_str(json_object_get(task, "failure"), "type"), "PermissionDenied") != 0)
                return 12;
        json_decref(a);
        dur_client_free(c);
        return 0;
}

TEST(another_user_sees_and_polls_only_its_own_workflows) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        json_t *a, *list;
        dur_client *c;
        int error = 0, status;
        pid_t pid;

        _cleanup_free_ char *units = NULL, *unit = NULL, *arg = NULL;
        FILE *f;

        if (getuid() != 0)
                SKIP("needs root, to act as another user");
        units = ASSERT_NOT_NULL(test_mkdtemp());
        ASSERT_GE(asprintf(&unit, "%s/rootly.activity", units), 0);
        f = ASSERT_NOT_NULL(fopen(unit, "we"));
        fputs("[Activity]\nExecStart=/bin/echo 1\nStartToCloseSec=10s\n", f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_GE(asprintf(&arg, "--activity-dir=%s", units), 0);
        /* System mode: the socket is 0666 and every request is authorised by its sender. */
        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--system", arg) });
        ASSERT_OK_ERRNO(chmod(d.dir, 0755));
        c = client_connect();
        a = ASSERT_NOT_NULL(call(c, start_request("root-wf"), &error));
        json_decref(a);

        pid = fork();
        ASSERT_OK_ERRNO(pid);
        if (pid == 0)
                _exit(as_nobody(d.socket_path));
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);

        /* root administers: it sees all three (nobody's workflow and standalone activity too),
         * and root's task is still waiting, untouched. */
        a = ASSERT_NOT_NULL(call(c, json_pack("{s:s}", "op", "ListWorkflows"), &error));
        list = json_object_get(a, "workflows");
        ASSERT_EQ(json_array_size(list), 3u);
        json_decref(a);
        a = ASSERT_NOT_NULL(call(c, poll_request(test_timeout_usec()), &error));
        ASSERT_STREQ(json_str(json_object_get(a, "task"), "workflow_id"), "root-wf");
        json_decref(a);
        /* root's standalone activity of the same unit runs. */
        a = ASSERT_NOT_NULL(call(c,
                                 json_pack("{s:s, s:s, s:s}", "op", "StartActivity", "activity_id",
                                           "root-act", "activity_type", "rootly"),
                                 &error));
        json_decref(a);
        a = ASSERT_NOT_NULL(call(c,
                                 json_pack("{s:s, s:s, s:b}", "op", "GetResult", "workflow_id",
                                           "root-act", "wait", 1),
                                 &error));
        ASSERT_STREQ(json_str(json_object_get(a, "workflow"), "status"), "Completed");
        json_decref(a);
        dur_client_free(c);
        test_daemon_free(&d);
        (void) test_rm_rf(units);
}

/* A task token names the run and the attempt, so it can be guessed: another user's use of it, or
 * of the workflow and activity ids, is "not found", exactly as a stale token, and changes
 * nothing; the owner's token still works afterwards. */
/* @op with the task token @token; returns dur_client_call()'s value. */
static int token_op(dur_client *c, const char *op, const char *token, size_t size) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        dur_buf req, *answer = NULL;
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        (void) msgpack_pack_map(&pk, 2);
        (void) msgpack_pack_str_with_body(&pk, "op", 2);
        (void) msgpack_pack_str_with_body(&pk, op, strlen(op));
        (void) msgpack_pack_str_with_body(&pk, "task_token", 10);
        (void) msgpack_pack_bin_with_body(&pk, token, size);
        req = (dur_buf){ .data = sb.data, .size = sb.size };
        r = dur_client_call(c, &req, &answer);
        dur_buf_free(answer);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

static int tokens_as_nobody(const char *socket_path, const char *token, size_t size) {
        dur_client *c = NULL;
        int r;

        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                return 1;
        if (dur_client_connect(&c, socket_path) < 0)
                return 2;
        r = token_op(c, "CompleteActivityTask", token, size);
        if (r >= 0 || strcmp(dur_client_error_code(c), "not_found") != 0)
                return 3;
        r = token_op(c, "HeartbeatActivity", token, size);
        if (r >= 0 || strcmp(dur_client_error_code(c), "not_found") != 0)
                return 4;
        r = dur_client_complete_activity(
                c, &(dur_activity_ref){ .workflow_id = "root-tok", .activity_id = "a1" }, NULL);
        if (r != -ENOENT || strcmp(dur_client_error_code(c), "not_found") != 0)
                return 5;
        dur_client_free(c);
        return 0;
}

TEST(task_tokens_belong_to_the_runs_owner) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *wtok = NULL, *atok = NULL;
        size_t wn, an;
        json_t *events;
        dur_client *c;
        int status;
        pid_t pid;

        if (getuid() != 0)
                SKIP("needs root, to act as another user");
        test_daemon_start(&d, &(TestDaemonOpts){ .args = STRV("--system") });
        ASSERT_OK_ERRNO(chmod(d.dir, 0755));
        c = client_connect();
        start_json(c, "T", "root-tok", "q-tok", NULL, 0);
        raw_poll_workflow_task(c, "q-tok", &wtok, &wn);
        ASSERT_OK(raw_complete_workflow_task(
                c, wtok, wn,
                "[{\"command_type\": \"ScheduleActivityTask\", \"attributes\": "
                "{\"activity_id\": \"a1\", \"activity_type\": \"A\", \"task_queue\": "
                "\"q-tok\", \"start_to_close_usec\": 600000000}}]"));
        raw_poll_activity_task(c, "q-tok", &atok, &an);

        pid = ASSERT_OK_ERRNO(fork());
        if (pid == 0)
                _exit(tokens_as_nobody(d.socket_path, atok, an));
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);

        /* Nothing changed: the owner completes the attempt with the same token. */
        ASSERT_DUR_OK(c, dur_client_complete_activity(
                                 c, &(dur_activity_ref){ .task_token = atok, .task_token_size = an },
                                 NULL));
        events = history_get(c, "root-tok");
        ASSERT_NOT_NULL(history_next(events, "ActivityTaskCompleted", 0, NULL));
        ASSERT_EQ(history_count(events, "ActivityTaskCompleted"), 1u);
        json_decref(events);
        dur_client_free(c);
}

DEFINE_TEST_MAIN();
