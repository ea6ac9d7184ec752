/* The permission matrix (DESIGN.md §10, durabled(8) ACCESS CONTROL): every op of the socket API
 * (daemon/api-sock.c's op table) by each of four callers, against a workflow, its task queue, its
 * tasks and a schedule that another user, the owner, made:
 *     owner   uid 1 (daemon), who started the workflow and created the schedule
 *     other   uid 2 (bin): what it did not start does not exist for it (not_found, no existence
 *             oracle), its polls of the owner's queue get nothing, the owner's task tokens are
 *             not_found
 *     member  uid 3 (sys), in the daemon's --admin-group (sys)
 * (users with entries in the user database: dbus-daemon refuses uids without one)
 *     root    uid 0
 * Each cell gets a fresh target, so that one caller's terminate or completion does not change
 * what the next one finds. Connections are made by a child with the caller's credentials and used
 * by the test (raw-util.h). The D-Bus methods (the XML in dbus/) get the same matrix through a
 * private dbus-daemon (bus-util.h), called with dbus-send and busctl under setpriv; there the bus
 * reports no groups, so the member is one more other user. The op list is read from
 * daemon/api-sock.c ($API_SOCK_C), the method lists from the XML: an op or a method without a row
 * fails the test, so a new one must come with its row. Afterwards: every event of a signalled
 * workflow names the uid behind it, and the state directory, the database and the socket have the
 * modes durabled(8) documents. */

#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "tests/integration/bus-util.h"
#include "tests/integration/orders-util.h"
#include "tests/integration/raw-util.h"

/* The administrators' group (--admin-group): sys, the primary group of user sys in the user
 * database, which is where dbus-daemon (1.14) takes the groups it reports from. */
#define ADMIN_GID 3

typedef enum Caller {
        CALLER_OWNER,
        CALLER_OTHER,
        CALLER_MEMBER,
        CALLER_ROOT,
        _CALLER_MAX,
} Caller;

/* On the socket the member's process has another primary group and the administrators' group
 * as its one supplementary group (SO_PEERGROUPS); over D-Bus it runs with its user's groups. */
static const struct {
        const char *name;
        uid_t uid;
        gid_t gid;   /* on the socket */
        gid_t group; /* supplementary, on the socket */
} callers[_CALLER_MAX] = {
        [CALLER_OWNER] = { "owner", 1, 1, (gid_t) -1 },
        [CALLER_OTHER] = { "other", 2, 2, (gid_t) -1 },
        [CALLER_MEMBER] = { "member", 3, 4243, ADMIN_GID },
        [CALLER_ROOT] = { "root", 0, 0, (gid_t) -1 },
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
        /* Operators set task-queue limits (durabled(8)). */
        { "ConfigureTaskQueue", "{\"task_queue\": \"%W\", \"concurrency_limit\": 2}", 0,
          ADMIN_ONLY },
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
        { "DeleteWorkflow", "{\"workflow_id\": \"%W\"}", 0, OWNERS },
        /* No such batch, for anyone. */
        { "DescribeBatchOperation",
          "{\"batch_id\": \"%W\"}",
          0,
          { "not_found", "not_found", "not_found", "not_found" } },
        { "DescribeSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, SEERS },
        /* A queue holds every user's tasks: its counts are for administrators. */
        { "DescribeTaskQueue", "{\"task_queue\": \"%W\"}", 0, ADMIN_ONLY },
        { "DescribeWorkflow", "{\"workflow_id\": \"%W\"}", 0, SEERS },
        { "FailActivityTask", "{\"failure\": {\"type\": \"X\", \"message\": \"m\"}}",
          SETUP_ACTIVITY | SETUP_ACTIVITY_TASK, OWNERS },
        { "FailWorkflowTask",
          "{\"cause\": \"X\", \"failure\": {\"type\": \"X\", \"message\": "
          "\"m\"}}",
          SETUP_TASK, OWNERS },
        /* Fork is for runs of any status, from a completed workflow task: this run has none. */
        { "ForkWorkflow", "{\"workflow_id\": \"%W\", \"new_workflow_id\": \"%W-fork\"}", 0,
          { "failed_precondition", "not_found", "failed_precondition", "failed_precondition" } },
        { "GetHistory", "{\"workflow_id\": \"%W\"}", 0, OWNERS },
        { "GetResult", "{\"workflow_id\": \"%W\", \"wait\": false}", 0, SEERS },
        { "GetStats", "{}", 0, EVERYONE },
        { "HeartbeatActivity", "{}", SETUP_ACTIVITY | SETUP_ACTIVITY_TASK, OWNERS },
        { "ListActivityTypes", "{}", 0, EVERYONE },
        { "ListBatchOperations", "{}", 0, EVERYONE },
        { "ListSchedules", "{}", SETUP_SCHEDULE, { "sees", "blind", "sees", "sees" } },
        { "ListWorkflows",
          "{\"query\": \"WorkflowId = '%W'\"}",
          0,
          { "sees", "blind", "sees", "sees" } },
        { "PauseActivity", "{\"workflow_id\": \"%W\", \"activity_id\": \"a\"}", SETUP_ACTIVITY,
          OWNERS },
        { "PauseSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, OWNERS },
        { "PauseWorkflow", "{\"workflow_id\": \"%W\"}", 0, OWNERS },
        { "PollActivityTask",
          "{\"task_queue\": \"%W\", \"timeout_usec\": 100000}",
          SETUP_ACTIVITY,
          { "sees", "blind", "sees", "sees" } },
        { "PollWorkflowTask",
          "{\"task_queue\": \"%W\", \"timeout_usec\": 100000}",
          0,
          { "sees", "blind", "sees", "sees" } },
        /* No such update: the owner and another user get the same answer. */
        { "PollWorkflowUpdate",
          "{\"workflow_id\": \"%W\", \"update_id\": \"u\", \"wait\": false}",
          0,
          { "not_found", "not_found", "not_found", "not_found" } },
        { "QueryWorkflow",
          "{\"workflow_id\": \"%W\", \"query_type\": \"q\", \"timeout_usec\": 1}",
          0,
          { "deadline_exceeded", "not_found", "deadline_exceeded", "deadline_exceeded" } },
        /* A running run cannot be redriven. */
        { "RedriveWorkflow", "{\"workflow_id\": \"%W\"}", 0,
          { "failed_precondition", "not_found", "failed_precondition", "failed_precondition" } },
        { "Reload", "{}", 0, ADMIN_ONLY },
        { "ResetActivity", "{\"workflow_id\": \"%W\", \"activity_id\": \"a\"}", SETUP_ACTIVITY,
          OWNERS },
        /* Its first workflow task has not run: there is no point to reset to. */
        { "ResetWorkflow", "{\"workflow_id\": \"%W\", \"reason\": \"r\"}", 0,
          { "failed_precondition", "not_found", "failed_precondition", "failed_precondition" } },
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
        /* A batch takes only the caller's own runs (an administrator's, every run). */
        { "StartBatchOperation",
          "{\"operation\": \"Cancel\", \"query\": \"WorkflowId = '%W'\"}",
          0, EVERYONE },
        { "StartWorkflow",
          "{\"workflow_id\": \"%W\", \"workflow_type\": \"T\", \"task_queue\": "
          "\"%W\"}",
          0, START_EXISTING },
        { "TerminateWorkflow", "{\"workflow_id\": \"%W\"}", 0, OWNERS },
        { "TriggerSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, OWNERS },
        /* Not paused. */
        { "UnpauseActivity", "{\"workflow_id\": \"%W\", \"activity_id\": \"a\"}", SETUP_ACTIVITY,
          { "failed_precondition", "not_found", "failed_precondition", "failed_precondition" } },
        { "UnpauseSchedule", "{\"schedule_id\": \"%W\"}", SETUP_SCHEDULE, OWNERS },
        /* No worker validates the update: those who may wait 1 us and time out. */
        { "UnpauseWorkflow", "{\"workflow_id\": \"%W\"}", 0,
          { "failed_precondition", "not_found", "failed_precondition", "failed_precondition" } },
        { "UpdateWithStart",
          "{\"workflow_id\": \"%W\", \"workflow_type\": \"T\", \"task_queue\": \"%W\", "
          "\"id_conflict_policy\": \"UseExisting\", \"update_name\": \"u\", "
          "\"timeout_usec\": 1}",
          0,
          { "deadline_exceeded", "already_started", "deadline_exceeded", "deadline_exceeded" } },
        { "UpdateWorkflow",
          "{\"workflow_id\": \"%W\", \"update_name\": \"u\", \"timeout_usec\": 1}",
          0,
          { "deadline_exceeded", "not_found", "deadline_exceeded", "deadline_exceeded" } },
        { "VerifyHistory", "{\"workflow_ids\": [\"%W\"]}", 0, OWNERS },
};

typedef struct Matrix {
        TestDaemon d;
        char *backups; /* a directory per caller, owned by it, for BackupDatabase */
        /* The owner's connection for the set-ups: one of its own, which no cell's request
         * (ShutdownWorker, say) changes. */
        int owner;
        int fds[_CALLER_MAX];
        char bus_arg[600];
        const char *args[4];
        uint64_t next_id;
} Matrix;

static void matrix_done(Matrix *x) {
        if (x->owner > 0)
                (void) close(x->owner);
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

        if (!code) /* raw_code() never says NULL; gcc's -Wformat-overflow cannot know that */
                return "?";
        if (!streq(code, "ok"))
                return code;
        return sees(answer, target) ? "sees" : "blind";
}

static bool outcome_matches(const char *got, const char *want) {
        return streq(got, want) ||
               (streq(want, "ok") && (streq(got, "sees") || streq(got, "blind")));
}

/* The daemon in system mode (the socket is 0666 and every request is authorised by its sender),
 * on the bus @bus_address (NULL: none), and a connection of each caller. */
static void matrix_start(Matrix *x, const char *bus_address) {
        ASSERT_OK(getuid() == 0 ? 0 : -EPERM);
        x->backups = ASSERT_NOT_NULL(test_mkdtemp());
        ASSERT_OK_ERRNO(chmod(x->backups, 0755));
        for (Caller k = 0; k < _CALLER_MAX; k++) {
                char dir[4096];

                snprintf(dir, sizeof(dir), "%s/%s", x->backups, callers[k].name);
                ASSERT_OK_ERRNO(mkdir(dir, 0700));
                ASSERT_OK_ERRNO(chown(dir, callers[k].uid, callers[k].uid));
        }
        snprintf(x->bus_arg, sizeof(x->bus_arg), "--bus-address=%s",
                 bus_address ? bus_address : "");
        x->args[0] = "--system";
        x->args[1] = "--admin-group=sys";
        x->args[2] = bus_address ? x->bus_arg : "--no-bus";
        test_daemon_start(&x->d, &(TestDaemonOpts){ .args = x->args });
        ASSERT_OK_ERRNO(chmod(x->d.dir, 0755));
        for (Caller k = 0; k < _CALLER_MAX; k++)
                x->fds[k] = raw_connect_as(&x->d, callers[k].uid, callers[k].gid, callers[k].group);
        x->owner = raw_connect_as(&x->d, callers[CALLER_OWNER].uid, callers[CALLER_OWNER].gid,
                                  callers[CALLER_OWNER].group);
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
        matrix_start(&x, NULL);
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
        printf("matrix: %zu ops x %d callers over the socket as expected; uids of events and "
               "file modes checked\n",
               ELEMENTSOF(rows), (int) _CALLER_MAX);
}

/* ---- the same over D-Bus ---- */

/* A method of org.durabled1.Manager on /org/durabled1, or of org.durabled1.Workflow on the
 * target's object; @args are dbus-send's ("string:%W", "uint32:3"), NULL-terminated, or, for
 * methods whose signature dbus-send cannot build (a{sv}), busctl's after the method name.
 * Expectations as above, with the last part of the D-Bus error names instead of wire codes. */
typedef struct BusRow {
        const char *method;
        bool on_workflow;
        bool busctl;
        const char *args[8];
        Setup setup;
        const char *expect[_CALLER_MAX];
} BusRow;

#define BUS_OWNERS \
        { "ok", "NotFound", "ok", "ok" }
#define BUS_SEERS \
        { "sees", "NotFound", "sees", "sees" }
/* Another user's workflow has no object for it: it cannot tell it from one that never was. */
#define BUS_OBJECT \
        { "ok", "UnknownObject", "ok", "ok" }

static const BusRow bus_rows[] = {
        { "BackfillSchedule",
          false,
          false,
          { "string:%W", "uint64:0", "uint64:1", "string:" },
          SETUP_SCHEDULE,
          BUS_OWNERS },
        { "CancelWorkflow", false, false, { "string:%W", "string:", "string:why" }, 0, BUS_OWNERS },
        { "CompleteActivity",
          false,
          false,
          { "string:%W", "string:", "string:a", "string:" },
          SETUP_ACTIVITY | SETUP_ACTIVITY_TASK,
          BUS_OWNERS },
        { "CountWorkflows",
          false,
          false,
          { "string:WorkflowId = '%W'" },
          0,
          { "sees", "blind", "sees", "sees" } },
        { "CreateSchedule",
          false,
          false,
          { "string:%Wnew", "string:{\"intervals\": [{\"every_usec\": 3600000000}], "
                            "\"workflow_type\": \"T\", \"task_queue\": \"q\", \"paused\": true}" },
          0,
          { "ok", "ok", "ok", "ok" } },
        { "DeleteSchedule", false, false, { "string:%W" }, SETUP_SCHEDULE, BUS_OWNERS },
        { "DescribeSchedule",
          false,
          false,
          { "string:%W", "uint32:1" },
          SETUP_SCHEDULE,
          BUS_SEERS },
        { "DescribeWorkflow", false, false, { "string:%W", "string:" }, 0, BUS_SEERS },
        { "GetHistory", false, false, { "string:%W", "string:" }, 0, BUS_OWNERS },
        { "ListActivityTypes", false, false, {}, 0, { "ok", "ok", "ok", "ok" } },
        { "ListSchedules", false, false, {}, SETUP_SCHEDULE, { "sees", "blind", "sees", "sees" } },
        { "ListWorkflows", false, true, { "a{sv}", "0" }, 0, { "sees", "blind", "sees", "sees" } },
        { "PauseSchedule", false, false, { "string:%W", "string:n" }, SETUP_SCHEDULE, BUS_OWNERS },
        /* Queries of those who may would wait 10 s for a worker: only another user's is made. */
        { "QueryWorkflow",
          false,
          false,
          { "string:%W", "string:", "string:q", "string:" },
          0,
          { "-", "NotFound", "-", "-" } },
        { "QueryWorkflows",
          false,
          false,
          { "string:WorkflowId = '%W'", "uint32:10", "string:" },
          0,
          { "sees", "blind", "sees", "sees" } },
        { "Reload", false, false, {}, 0, { "PermissionDenied", "PermissionDenied", "ok", "ok" } },
        { "SignalWithStart",
          false,
          false,
          { "string:%W", "string:T", "string:%W", "string:", "string:s", "string:" },
          0,
          { "ok", "AlreadyStarted", "ok", "ok" } },
        { "SignalWorkflow",
          false,
          false,
          { "string:%W", "string:", "string:s", "string:" },
          0,
          BUS_OWNERS },
        { "StartActivity",
          false,
          false,
          { "string:%Wact", "string:A", "string:%W",
            "string:", "string:{\"start_to_close_usec\": 60000000}" },
          0,
          { "ok", "ok", "ok", "ok" } },
        { "StartWorkflow",
          false,
          false,
          { "string:%W", "string:T", "string:%W", "string:" },
          0,
          { "AlreadyStarted", "AlreadyStarted", "AlreadyStarted", "AlreadyStarted" } },
        { "TerminateWorkflow",
          false,
          false,
          { "string:%W", "string:", "string:why" },
          0,
          BUS_OWNERS },
        { "TriggerSchedule", false, false, { "string:%W", "string:" }, SETUP_SCHEDULE, BUS_OWNERS },
        { "UnpauseSchedule", false, false, { "string:%W", "string:" }, SETUP_SCHEDULE, BUS_OWNERS },
        /* Updates of those who may would wait 10 s for a worker, as queries. */
        { "UpdateWorkflow",
          false,
          false,
          { "string:%W", "string:", "string:u", "string:", "string:" },
          0,
          { "-", "NotFound", "-", "-" } },
        /* The operators' controls (issue 9), as their socket rows: the run is running, has no
         * completed workflow task and its activity "a" is not paused. */
        { "DeleteWorkflow", false, false, { "string:%W", "string:", "string:why" }, 0, BUS_OWNERS },
        { "DescribeBatchOperation",
          false,
          false,
          { "string:%W" },
          0,
          { "NotFound", "NotFound", "NotFound", "NotFound" } },
        { "DescribeTaskQueue",
          false,
          false,
          { "string:%W" },
          0,
          { "PermissionDenied", "PermissionDenied", "ok", "ok" } },
        { "ForkWorkflow",
          false,
          false,
          { "string:%W", "string:", "string:%Wfork", "string:", "uint64:0" },
          0,
          { "FailedPrecondition", "NotFound", "FailedPrecondition", "FailedPrecondition" } },
        { "PauseActivity",
          false,
          false,
          { "string:%W", "string:", "string:a" },
          SETUP_ACTIVITY,
          BUS_OWNERS },
        { "PauseWorkflow", false, false, { "string:%W", "string:", "string:why" }, 0, BUS_OWNERS },
        { "RedriveWorkflow", false, false, { "string:%W", "string:", "string:why" }, 0, { "FailedPrecondition", "NotFound", "FailedPrecondition", "FailedPrecondition" } },
        { "ResetActivity",
          false,
          false,
          { "string:%W", "string:", "string:a" },
          SETUP_ACTIVITY,
          BUS_OWNERS },
        { "ResetWorkflow",
          false,
          false,
          { "string:%W", "string:", "string:why", "uint64:0", "string:", "array:string:Signal" },
          0,
          { "FailedPrecondition", "NotFound", "FailedPrecondition", "FailedPrecondition" } },
        /* A batch takes only the caller's own runs (an administrator's, every run). */
        { "StartBatchOperation",
          false,
          false,
          { "string:Cancel", "string:WorkflowId = '%W'", "string:", "string:", "string:",
            "uint64:0" },
          0,
          { "ok", "ok", "ok", "ok" } },
        { "UnpauseActivity",
          false,
          false,
          { "string:%W", "string:", "string:a" },
          SETUP_ACTIVITY,
          { "FailedPrecondition", "NotFound", "FailedPrecondition", "FailedPrecondition" } },
        { "UnpauseWorkflow", false, false, { "string:%W", "string:", "string:why" }, 0, { "FailedPrecondition", "NotFound", "FailedPrecondition", "FailedPrecondition" } },
        { "Pause", true, false, { "string:why" }, 0, BUS_OBJECT },
        { "Unpause",
          true,
          false,
          { "string:why" },
          0,
          { "FailedPrecondition", "UnknownObject", "FailedPrecondition", "FailedPrecondition" } },
        { "Cancel", true, false, { "string:why" }, 0, BUS_OBJECT },
        { "Query", true, false, { "string:q", "string:" }, 0, { "-", "UnknownObject", "-", "-" } },
        { "Update",
          true,
          false,
          { "string:u", "string:", "string:" },
          0,
          { "-", "UnknownObject", "-", "-" } },
        { "Signal", true, false, { "string:s", "string:" }, 0, BUS_OBJECT },
        { "Terminate", true, false, { "string:why" }, 0, BUS_OBJECT },
};

/* "ok", "sees", "blind" or the last part of the error's name, from dbus-send's (or busctl's)
 * run; a count ("uint64 N" in dbus-send's reply) above 0 sees the target too. */
static const char *bus_outcome(const TestRun *r, const char *target, char name[static 128]) {
        const char *e;

        if (r->exit_code == 0)
                return strstr(r->out, target) ||
                                       (strstr(r->out, "uint64 ") && !strstr(r->out, "uint64 0\n"))
                               ? "sees"
                               : "blind";
        e = strstr(r->err, "Error org.");
        if (!e)
                return "failed"; /* busctl names no error; its rows expect success */
        e += 6;
        snprintf(name, 128, "%.*s", (int) strcspn(e, ": "), e);
        return strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
}

/* Runs @row as @k with dbus-send (or busctl) under setpriv. */
static void
bus_call(const TestBus *b, const BusRow *row, Caller k, const char *target, TestRun *r) {
        char ids[2][64], path[256], method[128], args[8][512];
        const char *argv[32];
        size_t n = 0;

        snprintf(ids[0], sizeof(ids[0]), "--reuid=%u", (unsigned) callers[k].uid);
        snprintf(ids[1], sizeof(ids[1]), "--regid=%u", (unsigned) callers[k].uid);
        argv[n++] = "setpriv";
        argv[n++] = ids[0];
        argv[n++] = ids[1];
        argv[n++] = "--clear-groups";
        snprintf(path, sizeof(path), "/org/durabled1%s%s", row->on_workflow ? "/workflow/" : "",
                 row->on_workflow ? target : "");
        if (row->busctl) {
                argv[n++] = "busctl";
                argv[n++] = b->address_arg;
                argv[n++] = "call";
                argv[n++] = "org.durabled1";
                argv[n++] = path;
                argv[n++] = "org.durabled1.Manager";
                argv[n++] = row->method;
        } else {
                snprintf(method, sizeof(method), "org.durabled1.%s.%s",
                         row->on_workflow ? "Workflow" : "Manager", row->method);
                argv[n++] = "dbus-send";
                argv[n++] = b->bus_arg;
                argv[n++] = "--print-reply";
                argv[n++] = "--dest=org.durabled1";
                argv[n++] = path;
                argv[n++] = method;
        }
        for (size_t i = 0; i < ELEMENTSOF(row->args) && row->args[i]; i++) {
                const char *w = strstr(row->args[i], "%W");

                if (w)
                        snprintf(args[i], sizeof(args[i]), "%.*s%s%s", (int) (w - row->args[i]),
                                 row->args[i], target, w + 2);
                else
                        snprintf(args[i], sizeof(args[i]), "%s", row->args[i]);
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        (void) test_run(r, argv, NULL);
}

/* Every method of the introspection XML in $@env has a row. */
static void assert_bus_rows(const char *env, bool on_workflow) {
        const char *path = getenv(env);
        _cleanup_free_ char *text = NULL;
        size_t len, n = 0;
        FILE *f;

        if (!path)
                test_fail(__FILE__, __LINE__, "$%s is not set; run this test through meson", env);
        f = ASSERT_NOT_NULL(fopen(path, "re"));
        ASSERT_OK_ERRNO(getdelim(&text, &len, 0, f));
        fclose(f);
        for (const char *p = text; (p = strstr(p, "<method name=\"")); p++) {
                const char *name = p + 14;
                size_t l = strcspn(name, "\"");
                bool found = false;

                for (size_t i = 0; i < ELEMENTSOF(bus_rows); i++)
                        found = found || (bus_rows[i].on_workflow == on_workflow &&
                                          strlen(bus_rows[i].method) == l &&
                                          strncmp(bus_rows[i].method, name, l) == 0);
                if (!found)
                        test_fail(__FILE__, __LINE__,
                                  "D-Bus method %.*s (%s) has no row in the permission matrix",
                                  (int) l, name, path);
                n++;
        }
        ASSERT_GT(n, 0u);
}

TEST(every_bus_method_has_a_row) {
        assert_bus_rows("DBUS_MANAGER_XML", false);
        assert_bus_rows("DBUS_WORKFLOW_XML", true);
}

TEST(matrix_over_dbus) {
        _cleanup_(matrix_done) Matrix x = {};
        _cleanup_(bus_free) TestBus b = {};
        unsigned failures = 0;

        if (getuid() != 0)
                SKIP("needs root, to call as other users");
        bus_start(&b);
        matrix_start(&x, b.address);
        for (size_t i = 0; i < ELEMENTSOF(bus_rows); i++)
                for (Caller k = 0; k < _CALLER_MAX; k++) {
                        const BusRow *row = &bus_rows[i];
                        char target[128], token[128], name[128];
                        TestRun r = {};
                        const char *got;

                        /* sd-bus (252) on dbus-daemon (1.14) learns no groups of a sender
                         * without reading /proc, which DESIGN.md §10 rules out: over D-Bus a
                         * member of the administrators' group is any other user. */
                        const char *want = row->expect[k == CALLER_MEMBER ? CALLER_OTHER : k];

                        if (streq(want, "-"))
                                continue;
                        /* Object paths keep letters and digits as they are. */
                        snprintf(target, sizeof(target), "bus%s%s%s", row->on_workflow ? "W" : "",
                                 row->method, callers[k].name);
                        set_up(&x, target, row->setup, token);
                        bus_call(&b, row, k, target, &r);
                        got = bus_outcome(&r, target, name);
                        printf("matrix: D-Bus %-18s %-7s %-18s (want %s)\n", row->method,
                               callers[k].name, got, want);
                        if (!outcome_matches(got, want)) {
                                printf("matrix: MISMATCH: %s%s\n", r.out, r.err);
                                failures++;
                        }
                        test_run_free(&r);
                }
        ASSERT_EQ(failures, 0u);
        printf("matrix: %zu D-Bus methods x %d callers as expected\n", ELEMENTSOF(bus_rows),
               (int) _CALLER_MAX);
}

DEFINE_TEST_MAIN();
