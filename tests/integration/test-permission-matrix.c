/* The permission matrix (DESIGN.md §10, durabled(8) ACCESS CONTROL): every op of the socket API
 * (daemon/api-sock.c's op table) by each of four callers, against a workflow, its task queue, its
 * tasks and a schedule that another user, the owner, made:
 *     owner   uid 4201, who started the workflow and created the schedule
 *     other   uid 4202: what it did not start does not exist for it (not_found, no existence
 *             oracle), its polls of the owner's queue get nothing, the owner's task tokens are
 *             not_found
 *     member  uid 4203 with supplementary group 4242, the daemon's --admin-group
 *     root    uid 0
 * Each cell gets a fresh target, so that one caller's terminate or completion does not change
 * what the next one finds. Connections are made by a child with the caller's credentials and used
 * by the test (raw-util.h). The op list is read from daemon/api-sock.c ($API_SOCK_C): an op without
 * a row fails the test, so a new op must come with its row. Afterwards: every event of a signalled
 * workflow names the uid behind it, and the state directory, the database and the socket have the
 * modes durabled(8) documents. */

#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "tests/integration/orders-util.h"
#include "tests/integration/raw-util.h"

#define ADMIN_GID 4242

typedef enum Caller {
        CALLER_OWNER,
        CALLER_OTHER,
        CALLER_MEMBER,
        CALLER_ROOT,
        _CALLER_MAX,
} Caller;

static const struct {
        const char *name;
        uid_t uid;
        gid_t group;
} callers[_CALLER_MAX] = {
        [CALLER_OWNER] = { "owner", 4201, (gid_t) -1 },
        [CALLER_OTHER] = { "other", 4202, (gid_t) -1 },
        [CALLER_MEMBER] = { "member", 4203, ADMIN_GID },
        [CALLER_ROOT] = { "root", 0, (gid_t) -1 },
};

/* What a row needs besides the owner's running workflow (id = queue = the cell's name). */
typedef enum Setup {
        SETUP_SCHEDULE = 1 << 0,     /* a paused schedule of that name */
        SETUP_TASK = 1 << 1,         /* its workflow task started by the owner: "task_token" */
        SETUP_ACTIVITY = 1 << 2,     /* an activity scheduled (needs nothing else) */
        SETUP_ACTIVITY_TASK = 1 << 3 /* ... and started by the owner: "task_token" */
} Setup;

/* Expectations: "ok", "sees" (ok, and the answer names the target), "blind" (ok, and it does
 * not), or an error code. */
typedef struct Row {
        const char *op;
        /* The request's fields as JSON; %W stands for the target's name (workflow id, task queue,
         * schedule id), %B for a file in a directory everyone may write. */
        const char *fields;
        Setup setup;
        const char *expect[_CALLER_MAX];
} Row;

#define ADMIN_ONLY \
        { "permission_denied", "permission_denied", "ok", "ok" }
#define OWNERS \
        { "ok", "not_found", "ok", "ok" }
#define SEERS \
        { "sees", "not_found", "sees", "sees" }
#define EVERYONE \
        { "ok", "ok", "ok", "ok" }
/* The id of a running workflow is unique: another user's start of it is refused with a message
 * that names neither the run nor its owner. */
#define START_EXISTING \
        { "already_started", "already_started", "already_started", "already_started" }

/* Sorted by op, as the op table. */
static const Row rows[] = {
        { "BackfillSchedule",
          "{\"schedule_id\": \"%W\", \"start_time_usec\": 0, "
          "\"end_time_usec\": 1}",
          SETUP_SCHEDULE, OWNERS },
        { "BackupDatabase", "{\"path\": \"%B\"}", 0, ADMIN_ONLY },
        /* Nobody asked this activity to cancel; the token is checked first, so another user
         * cannot tell a live attempt from a dead one. */
        { "CancelActivityTask",
          "{}",
          SETUP_ACTIVITY | SETUP_ACTIVITY_TASK,
          { "failed_precondition", "not_found", "failed_precondition", "failed_precondition" } },
        { "CancelWorkflow", "{\"workflow_id\": \"%W\"}", 0, OWNERS },
        { "CompleteActivityTask", "{}", SETUP_ACTIVITY | SETUP_ACTIVITY_TASK, OWNERS },
        { "CompleteWorkflowTask", "{\"commands\": []}", SETUP_TASK, OWNERS },
        { "CountWorkflows",
          "{\"query\": \"WorkflowId = '%W'\"}",
          0,
          { "sees", "blind", "sees", "sees" } },
        { "CreateSchedule",
          "{\"schedule_id\": \"%W-new\", \"intervals\": [{\"every_usec\": "
          "3600000000}], \"workflow_type\": \"T\", \"task_queue\": \"%W\", "
          "\"paused\": true}",
          0, EVERYONE },
        { "DeleteSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, OWNERS },
        { "DescribeSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, SEERS },
        { "DescribeWorkflow", "{\"workflow_id\": \"%W\"}", 0, SEERS },
        { "FailActivityTask", "{\"failure\": {\"type\": \"X\", \"message\": \"m\"}}",
          SETUP_ACTIVITY | SETUP_ACTIVITY_TASK, OWNERS },
        { "FailWorkflowTask",
          "{\"cause\": \"X\", \"failure\": {\"type\": \"X\", \"message\": "
          "\"m\"}}",
          SETUP_TASK, OWNERS },
        { "GetHistory", "{\"workflow_id\": \"%W\"}", 0, OWNERS },
        { "GetResult", "{\"workflow_id\": \"%W\", \"wait\": false}", 0, SEERS },
        { "GetStats", "{}", 0, EVERYONE },
        { "HeartbeatActivity", "{}", SETUP_ACTIVITY | SETUP_ACTIVITY_TASK, OWNERS },
        { "ListActivityTypes", "{}", 0, EVERYONE },
        { "ListSchedules", "{}", SETUP_SCHEDULE, { "sees", "blind", "sees", "sees" } },
        { "ListWorkflows",
          "{\"query\": \"WorkflowId = '%W'\"}",
          0,
          { "sees", "blind", "sees", "sees" } },
        { "PauseSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, OWNERS },
        { "PollActivityTask",
          "{\"task_queue\": \"%W\", \"timeout_usec\": 100000}",
          SETUP_ACTIVITY,
          { "sees", "blind", "sees", "sees" } },
        { "PollWorkflowTask",
          "{\"task_queue\": \"%W\", \"timeout_usec\": 100000}",
          0,
          { "sees", "blind", "sees", "sees" } },
        { "QueryWorkflow",
          "{\"workflow_id\": \"%W\", \"query_type\": \"q\", \"timeout_usec\": 1}",
          0,
          { "deadline_exceeded", "not_found", "deadline_exceeded", "deadline_exceeded" } },
        { "Reload", "{}", 0, ADMIN_ONLY },
        { "RespondQueryTask",
          "{\"query_id\": 1}",
          0,
          { "not_found", "not_found", "not_found", "not_found" } },
        { "ShutdownWorker", "{}", 0, EVERYONE },
        { "SignalWithStart",
          "{\"workflow_id\": \"%W\", \"workflow_type\": \"T\", \"task_queue\": "
          "\"%W\", \"signal_name\": \"s\"}",
          0,
          { "ok", "already_started", "ok", "ok" } },
        { "SignalWorkflow", "{\"workflow_id\": \"%W\", \"signal_name\": \"s\"}", 0, OWNERS },
        { "StartActivity",
          "{\"activity_id\": \"%W-act\", \"activity_type\": \"A\", "
          "\"task_queue\": \"%W\", \"start_to_close_usec\": 60000000}",
          0, EVERYONE },
        { "StartWorkflow",
          "{\"workflow_id\": \"%W\", \"workflow_type\": \"T\", \"task_queue\": "
          "\"%W\"}",
          0, START_EXISTING },
        { "TerminateWorkflow", "{\"workflow_id\": \"%W\"}", 0, OWNERS },
        { "TriggerSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, OWNERS },
        { "UnpauseSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, OWNERS },
        { "VerifyHistory", "{\"workflow_ids\": [\"%W\"]}", 0, OWNERS },
};

typedef struct Matrix {
        TestDaemon d;
        char *backups; /* a directory per caller, owned by it, for BackupDatabase */
        int owner;     /* the owner's connection, for the set-ups */
        int fds[_CALLER_MAX];
        uint64_t next_id;
} Matrix;

static void matrix_done(Matrix *x) {
        for (Caller k = 0; k < _CALLER_MAX; k++)
                if (x->fds[k] > 0)
                        (void) close(x->fds[k]);
        test_daemon_free(&x->d);
        if (x->backups)
                (void) test_rm_rf(x->backups);
        free(x->backups);
}

/* @fields with %W and %B replaced, as a request {op, id, ...}: a new reference. */
static json_t *
request(Matrix *x, const char *op, const char *fields, const char *target, Caller caller) {
        char text[2048], path[4096];
        size_t n = 0;
        json_t *j;

        snprintf(path, sizeof(path), "%s/%s/%s.db", x->backups, callers[caller].name, target);
        for (const char *p = fields; *p && n < sizeof(text) - 1; p++) {
                const char *sub = NULL;

                if (p[0] == '%' && p[1] == 'W')
                        sub = target;
                else if (p[0] == '%' && p[1] == 'B')
                        sub = path;
                if (sub) {
                        n += (size_t) snprintf(text + n, sizeof(text) - n, "%s", sub);
                        p++;
                } else
                        text[n++] = *p;
        }
        ASSERT_LT(n, sizeof(text) - 1);
        text[n] = 0;
        j = json_loads(text, 0, NULL);
        if (!j)
                test_fail(__FILE__, __LINE__, "bad JSON in a row: %s", text);
        ASSERT_OK(json_object_set_new(j, "op", json_string(op)));
        ASSERT_OK(json_object_set_new(j, "id", json_integer((json_int_t) ++x->next_id)));
        return j;
}

/* Sends @req (consumed) on @fd, with "task_token" the bin @token when not NULL; the answer. */
static json_t *call_with_token(int fd, json_t *req, const char *token) {
        _cleanup_free_ char *text = ASSERT_NOT_NULL(json_dumps(req, JSON_COMPACT));
        dur_buf *b = ASSERT_NOT_NULL(dur_buf_from_json(text));
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        unsigned char h[4];

        json_decref(req);
        msgpack_unpacked_init(&u);
        ASSERT_EQ(msgpack_unpack_next(&u, b->data, b->size, NULL), MSGPACK_UNPACK_SUCCESS);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ASSERT_OK(msgpack_pack_map(&pk, u.data.via.map.size + (token ? 1 : 0)));
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
                ASSERT_OK(msgpack_pack_object(&pk, u.data.via.map.ptr[i].key));
                ASSERT_OK(msgpack_pack_object(&pk, u.data.via.map.ptr[i].val));
        }
        if (token) {
                ASSERT_OK(msgpack_pack_str_with_body(&pk, "task_token", 10));
                ASSERT_OK(msgpack_pack_bin_with_body(&pk, token, strlen(token)));
        }
        h[0] = sb.size >> 24, h[1] = sb.size >> 16, h[2] = sb.size >> 8, h[3] = sb.size;
        ASSERT_EQ(send(fd, h, 4, MSG_NOSIGNAL), 4);
        ASSERT_EQ(send(fd, sb.data, sb.size, MSG_NOSIGNAL), (ssize_t) sb.size);
        msgpack_sbuffer_destroy(&sb);
        msgpack_unpacked_destroy(&u);
        dur_buf_free(b);
        return raw_answer(fd);
}

static void owner_ok(Matrix *x, json_t *req, const char *token, json_t **ret) {
        json_t *a = call_with_token(x->owner, req, token);

        if (!streq(raw_code(a), "ok")) {
                _cleanup_free_ char *text = json_dumps(a, JSON_COMPACT);
                test_fail(__FILE__, __LINE__, "set-up failed: %s", text);
        }
        if (ret)
                *ret = a;
        else
                json_decref(a);
}

/* The owner's workflow @target (and what @setup asks for); returns the task token to use, if
 * any, in @token. */
static void set_up(Matrix *x, const char *target, Setup setup, char token[static 128]) {
        const char *run_id;
        json_t *a;

        token[0] = 0;
        owner_ok(x,
                 request(x, "StartWorkflow",
                         "{\"workflow_id\": \"%W\", \"workflow_type\": \"T\", \"task_queue\": "
                         "\"%W\"}",
                         target, CALLER_OWNER),
                 NULL, &a);
        run_id = ASSERT_NOT_NULL(json_str(a, "run_id"));
        if (setup & SETUP_SCHEDULE)
                owner_ok(x,
                         request(x, "CreateSchedule",
                                 "{\"schedule_id\": \"%W\", \"intervals\": [{\"every_usec\": "
                                 "3600000000}], \"workflow_type\": \"T\", \"task_queue\": \"%W\", "
                                 "\"paused\": true}",
                                 target, CALLER_OWNER),
                         NULL, NULL);
        if (setup & (SETUP_TASK | SETUP_ACTIVITY)) {
                /* Events 1-3: started, task scheduled, task started. */
                owner_ok(x,
                         request(x, "PollWorkflowTask", "{\"task_queue\": \"%W\"}", target,
                                 CALLER_OWNER),
                         NULL, NULL);
                snprintf(token, 128, "W/%s/3", run_id);
        }
        if (setup & SETUP_ACTIVITY) {
                /* 4 task completed, 5 the activity scheduled. */
                owner_ok(x,
                         request(x, "CompleteWorkflowTask",
                                 "{\"commands\": [{\"command_type\": \"ScheduleActivityTask\", "
                                 "\"attributes\": {\"activity_id\": \"a\", \"activity_type\": "
                                 "\"A\", \"task_queue\": \"%W\", \"start_to_close_usec\": "
                                 "600000000}}]}",
                                 target, CALLER_OWNER),
                         token, NULL);
                token[0] = 0;
        }
        if (setup & SETUP_ACTIVITY_TASK) {
                owner_ok(x,
                         request(x, "PollActivityTask", "{\"task_queue\": \"%W\"}", target,
                                 CALLER_OWNER),
                         NULL, NULL);
                snprintf(token, 128, "A/%s/5/1", run_id);
        }
        json_decref(a);
}

/* Whether @answer shows the target: names it, counts it, or hands out its task. */
static bool sees(const json_t *answer, const char *target) {
        _cleanup_free_ char *text = ASSERT_NOT_NULL(json_dumps(answer, JSON_COMPACT));
        char quoted[300];
        json_t *task = json_object_get(answer, "task");

        snprintf(quoted, sizeof(quoted), "\"%s\"", target);
        return strstr(text, quoted) || json_integer_value(json_object_get(answer, "count")) > 0 ||
               (task && !json_is_null(task));
}

static const char *outcome(const json_t *answer, const char *target) {
        const char *code = raw_code(answer);

        if (!streq(code, "ok"))
                return code;
        return sees(answer, target) ? "sees" : "blind";
}

static bool outcome_matches(const char *got, const char *want) {
        return streq(got, want) ||
               (streq(want, "ok") && (streq(got, "sees") || streq(got, "blind")));
}

static void matrix_start(Matrix *x) {
        ASSERT_OK(getuid() == 0 ? 0 : -EPERM);
        x->backups = ASSERT_NOT_NULL(test_mkdtemp());
        ASSERT_OK_ERRNO(chmod(x->backups, 0755));
        for (Caller k = 0; k < _CALLER_MAX; k++) {
                char dir[4096];

                snprintf(dir, sizeof(dir), "%s/%s", x->backups, callers[k].name);
                ASSERT_OK_ERRNO(mkdir(dir, 0700));
                ASSERT_OK_ERRNO(chown(dir, callers[k].uid, callers[k].uid));
        }
        /* System mode: the socket is 0666 and every request is authorised by its sender. */
        test_daemon_start(&x->d,
                          &(TestDaemonOpts){ .args = STRV("--system", "--admin-group=4242") });
        ASSERT_OK_ERRNO(chmod(x->d.dir, 0755));
        for (Caller k = 0; k < _CALLER_MAX; k++)
                x->fds[k] = raw_connect_as(&x->d, callers[k].uid,
                                           callers[k].uid ? callers[k].uid : 0, callers[k].group);
        x->owner = x->fds[CALLER_OWNER];
}

/* The ops of daemon/api-sock.c's table, in its order: a NULL-terminated array to free (one
 * allocation). */
static char **table_ops(void) {
        const char *path = getenv("API_SOCK_C");
        _cleanup_free_ char *text = NULL;
        const char *p, *end;
        char **ops, *names;
        size_t n = 0, len;
        FILE *f;

        if (!path)
                test_fail(__FILE__, __LINE__,
                          "$API_SOCK_C is not set; run this test through meson");
        f = ASSERT_NOT_NULL(fopen(path, "re"));
        ASSERT_OK_ERRNO(getdelim(&text, &len, 0, f));
        fclose(f);
        p = ASSERT_NOT_NULL(strstr(text, "static const Op ops[] = {"));
        end = ASSERT_NOT_NULL(strstr(p, "};"));
        ops = ASSERT_NOT_NULL(calloc(1, 256 * sizeof(char *) + (size_t) (end - p)));
        names = (char *) (ops + 256);
        for (p = strstr(p, "{ \""); p && p < end; p = strstr(p, "{ \"")) {
                const char *q = strchr(p + 3, '"');

                ASSERT_LT(n, 255u);
                ops[n++] = memcpy(names, p + 3, (size_t) (q - p - 3));
                names += q - p - 3 + 1;
                p = q;
        }
        return ops;
}

/* Every event records the uid behind it: the owner's start, the member's signal, the root's
 * cancel request, the worker's (owner's) task events, the daemon's own (root) otherwise. */
static void assert_uids(Matrix *x) {
        static const struct {
                const char *target;
                const char *type;
                Caller by;
        } cases[] = {
                { "SignalWorkflow-member", "WorkflowExecutionStarted", CALLER_OWNER },
                { "SignalWorkflow-member", "WorkflowExecutionSignaled", CALLER_MEMBER },
                { "SignalWorkflow-owner", "WorkflowExecutionSignaled", CALLER_OWNER },
                { "CancelWorkflow-root", "WorkflowExecutionCancelRequested", CALLER_ROOT },
                { "CompleteWorkflowTask-member", "WorkflowTaskStarted", CALLER_OWNER },
                { "CompleteWorkflowTask-member", "WorkflowTaskCompleted", CALLER_MEMBER },
                { "TerminateWorkflow-member", "WorkflowExecutionTerminated", CALLER_MEMBER },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char req[256];
                json_t *a, *ev;
                size_t j;
                bool found = false;

                snprintf(req, sizeof(req),
                         "{\"op\": \"GetHistory\", \"id\": 1, \"workflow_id\": \"%s\"}",
                         cases[i].target);
                a = raw_call(x->fds[CALLER_ROOT], req);
                json_array_foreach(json_object_get(a, "events"), j,
                                   ev) if (streq(ev_type(ev), cases[i].type)) {
                        ASSERT_EQ(json_integer_value(json_object_get(ev, "uid")),
                                  (json_int_t) callers[cases[i].by].uid);
                        found = true;
                }
                if (!found)
                        test_fail(__FILE__, __LINE__, "%s has no %s", cases[i].target,
                                  cases[i].type);
                json_decref(a);
        }
}

/* durabled(8): the state directory and the database are the daemon's alone; the socket of the
 * system mode is 0666 (every request is authorised by its sender). */
static void assert_modes(Matrix *x) {
        char path[4096];
        struct stat st;

        ASSERT_OK_ERRNO(stat(x->d.state_dir, &st));
        ASSERT_EQ(st.st_mode & 0077, 0u);
        for (size_t i = 0; i < 2; i++) {
                snprintf(path, sizeof(path), "%s/durabled.db%s", x->d.state_dir,
                         i == 0 ? "" : "-wal");
                ASSERT_OK_ERRNO(stat(path, &st));
                ASSERT_EQ(st.st_mode & 0077, 0u);
        }
        ASSERT_OK_ERRNO(stat(x->d.socket_path, &st));
        ASSERT_TRUE(S_ISSOCK(st.st_mode));
        ASSERT_EQ(st.st_mode & 0777, 0666u);
}

TEST(every_op_has_a_row) {
        _cleanup_free_ char **ops = table_ops();
        size_t n = 0;

        for (; ops[n]; n++) {
                bool found = false;

                for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                        found = found || streq(rows[i].op, ops[n]);
                if (!found)
                        test_fail(__FILE__, __LINE__,
                                  "op %s of daemon/api-sock.c has no row in the permission "
                                  "matrix (tests/integration/test-permission-matrix.c)",
                                  ops[n]);
        }
        ASSERT_EQ(n, ELEMENTSOF(rows));
}

TEST(matrix_over_the_socket) {
        _cleanup_(matrix_done) Matrix x = {};
        unsigned failures = 0;

        if (getuid() != 0)
                SKIP("needs root, to connect as other users");
        matrix_start(&x);
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                for (Caller k = 0; k < _CALLER_MAX; k++) {
                        const Row *row = &rows[i];
                        char target[128], token[128];
                        const char *got;
                        json_t *a;

                        snprintf(target, sizeof(target), "%s-%s", row->op, callers[k].name);
                        set_up(&x, target, row->setup, token);
                        a = call_with_token(x.fds[k], request(&x, row->op, row->fields, target, k),
                                            token[0] ? token : NULL);
                        got = outcome(a, target);
                        printf("matrix: %-22s %-7s %-18s (want %s)\n", row->op, callers[k].name,
                               got, row->expect[k]);
                        if (!outcome_matches(got, row->expect[k])) {
                                _cleanup_free_ char *text = json_dumps(a, JSON_COMPACT);
                                printf("matrix: MISMATCH: %s\n", text);
                                failures++;
                        }
                        json_decref(a);
                }
        ASSERT_EQ(failures, 0u);
        assert_uids(&x);
        assert_modes(&x);
}

DEFINE_TEST_MAIN();
