/* The D-Bus API (org.durabled1(5), DESIGN.md §9) through a real private dbus-daemon, whose
 * configuration includes the policy the project installs (dbus/org.durabled1.conf), the real
 * durabled on it (--bus-address) and busctl/dbus-send as any caller would use them: every method,
 * property and signal (busctl monitor sees WorkflowStarted, PropertiesChanged, WorkflowClosed and
 * InterfacesRemoved), standalone activities and activity units (Reload for administrators only),
 * schedules, QueryWorkflows pages and CountWorkflows, updates, named errors for wrong signatures and bad JSON, another uid (nobody, via
 * setpriv) that finds the workflows of others "not found", and the introspection XML in dbus/
 * compared with what the running daemon serves.
 *
 * Readiness is awaited, never slept for: the bus prints its address once it listens, the daemon
 * owns the name before it sends READY=1, and busctl monitor says "Monitoring bus message stream."
 * once it receives. */

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/bus-util.h"
#include "tests/integration/worker-util.h"

#define NOBODY "65534"
#define MANAGER "org.durabled1.Manager"

static TestBus bus;
static TestDaemon daemon_;

static void setup(void) {
        bus_start(&bus);
        test_daemon_start(&daemon_,
                          &(TestDaemonOpts){ .args = STRV("--bus-address", bus.address) });
}

static void teardown(void) {
        test_daemon_stop(&daemon_);
        test_daemon_free(&daemon_);
        bus_free(&bus);
}

/* Runs busctl --address=<bus> ARGS... (as nobody with @nobody); stdout in r->out. */
#define BUSCTL(r, nobody, ...)                                                             \
        test_run(r,                                                                        \
                 (nobody) ? STRV("setpriv", "--reuid=" NOBODY, "--regid=" NOBODY,          \
                                 "--clear-groups", "busctl", bus.address_arg, __VA_ARGS__) \
                          : STRV("busctl", bus.address_arg, __VA_ARGS__),                  \
                 NULL)

/* busctl call on the manager: must succeed; the reply in r->out. */
#define MANAGER_CALL(r, ...)                                                                       \
        ASSERT_EQ(                                                                                 \
                BUSCTL(r, false, "call", "org.durabled1", "/org/durabled1", MANAGER, __VA_ARGS__), \
                0)

/* dbus-send on the manager (its output names the error: "Error org.durabled1.Error.X: ..."). */
#define DBUS_SEND(r, nobody, method, ...)                                                          \
        test_run(r,                                                                                \
                 (nobody)                                                                          \
                         ? STRV("setpriv", "--reuid=" NOBODY, "--regid=" NOBODY, "--clear-groups", \
                                "dbus-send", bus.bus_arg, "--print-reply", "--dest=org.durabled1", \
                                "/org/durabled1", MANAGER "." method, __VA_ARGS__)                 \
                         : STRV("dbus-send", bus.bus_arg, "--print-reply", "--dest=org.durabled1", \
                                "/org/durabled1", MANAGER "." method, __VA_ARGS__),                \
                 NULL)

/* busctl monitor of everything org.durabled1 sends, into a FIFO read with log_wait_for(). */
static int monitor_start(TestProcess *p) {
        _cleanup_free_ char *fifo = NULL;
        int fd;

        ASSERT_OK_ERRNO(asprintf(&fifo, "%s/monitor.fifo", bus.dir));
        (void) unlink(fifo);
        ASSERT_OK_ERRNO(mkfifo(fifo, 0600));
        fd = ASSERT_OK_ERRNO(open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC));
        test_process_spawn(p,
                           STRV("/bin/sh", "-c", "exec busctl \"$0\" monitor >\"$1\" 2>&1",
                                bus.address_arg, fifo),
                           NULL);
        log_wait_for(fd, "Monitoring bus message stream.");
        return fd;
}

/* The run id from StartWorkflow's reply 'so "<run id>" "<path>"'. */
static void reply_run_id(const char *out, char run_id[static 37]) {
        const char *q = strchr(out, '"');

        ASSERT_NOT_NULL(q);
        ASSERT_EQ(sscanf(q + 1, "%36[0-9a-f-]", run_id), 1);
}

TEST(manager_and_workflow_objects) {
        TestProcess worker = {}, monitor = {};
        TestRun r = {};
        char run_id[37], expect[256];
        int mon;

        setup();
        test_worker_spawn(&worker, NULL, NULL);
        mon = monitor_start(&monitor);

        MANAGER_CALL(&r, "StartWorkflow", "ssss", "sig-1", "SignalWorkflow", TEST_QUEUE, "");
        ASSERT_STR_CONTAINS(r.out, "\"/org/durabled1/workflow/sig_2d1\"");
        reply_run_id(r.out, run_id);
        test_run_free(&r);
        log_wait_for(mon, "Member=WorkflowStarted");
        log_wait_for(mon, "Member=InterfacesAdded");
        log_wait_for(mon, "\"/org/durabled1/workflow/sig_2d1\"");

        /* The workflow's object. */
        ASSERT_EQ(BUSCTL(&r, false, "get-property", "org.durabled1",
                         "/org/durabled1/workflow/sig_2d1", "org.durabled1.Workflow", "Id", "RunId",
                         "Type", "TaskQueue", "Status", "CloseTime"),
                  0);
        snprintf(expect, sizeof(expect),
                 "s \"sig-1\"\ns \"%s\"\ns \"SignalWorkflow\"\ns \"" TEST_QUEUE "\"\n"
                 "s \"Running\"\nt 0\n",
                 run_id);
        ASSERT_STREQ(r.out, expect);
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "tree", "org.durabled1"), 0);
        ASSERT_STR_CONTAINS(r.out, "/org/durabled1/workflow/sig_2d1");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1",
                         "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "\"/org/durabled1/workflow/sig_2d1\"");
        ASSERT_STR_CONTAINS(r.out, run_id);
        test_run_free(&r);

        /* Signals through the manager and the object; queries through both see them. */
        MANAGER_CALL(&r, "SignalWorkflow", "ssss", "sig-1", "", "add", "{\"v\": 1}");
        test_run_free(&r);
        log_wait_for(mon, "Member=PropertiesChanged");
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1/workflow/sig_2d1",
                         "org.durabled1.Workflow", "Signal", "ss", "add", "2"),
                  0);
        test_run_free(&r);
        MANAGER_CALL(&r, "QueryWorkflow", "ssss", "sig-1", run_id, "count", "");
        ASSERT_STREQ(r.out, "s \"2\"\n");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1/workflow/sig_2d1",
                         "org.durabled1.Workflow", "Query", "ss", "count", "null"),
                  0);
        ASSERT_STREQ(r.out, "s \"2\"\n");
        test_run_free(&r);

        /* Manager properties, list, describe, history. */
        ASSERT_EQ(BUSCTL(&r, false, "get-property", "org.durabled1", "/org/durabled1", MANAGER,
                         "Version", "RunningWorkflows", "TaskQueues"),
                  0);
        ASSERT_STREQ(r.out, "s \"" DURABLED_VERSION "\"\nu 1\nas 1 \"" TEST_QUEUE "\"\n");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListWorkflows", "a{sv}", "2", "Status", "s", "Running", "WorkflowType",
                     "s", "SignalWorkflow");
        snprintf(expect, sizeof(expect),
                 "a(ssssstt) 1 \"sig-1\" \"%s\" \"SignalWorkflow\" \"" TEST_QUEUE "\" \"Running\" ",
                 run_id);
        ASSERT_STR_CONTAINS(r.out, expect);
        test_run_free(&r);
        MANAGER_CALL(&r, "ListWorkflows", "a{sv}", "1", "Status", "s", "Completed");
        ASSERT_STREQ(r.out, "a(ssssstt) 0\n");
        test_run_free(&r);
        MANAGER_CALL(&r, "DescribeWorkflow", "ss", "sig-1", "");
        ASSERT_STR_CONTAINS(r.out, "\\\"status\\\":\\\"Running\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"pending_activities\\\":[]");
        test_run_free(&r);
        MANAGER_CALL(&r, "GetHistory", "ss", "sig-1", run_id);
        ASSERT_STR_CONTAINS(r.out, run_id);
        ASSERT_STR_CONTAINS(r.out, "\\\"event_type\\\":\\\"WorkflowExecutionSignaled\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"input\\\":{\\\"v\\\":1}");
        test_run_free(&r);

        /* The run completes: WorkflowClosed with the result, the last PropertiesChanged, and the
         * object goes away. */
        MANAGER_CALL(&r, "SignalWorkflow", "ssss", "sig-1", "", "done", "");
        test_run_free(&r);
        log_wait_for(mon, "Member=WorkflowClosed");
        log_wait_for(mon, "STRING \"Completed\";");
        log_wait_for(mon, "STRING \"{\"signals\":[{\"v\":1},2]}\";");
        log_wait_for(mon, "Member=PropertiesChanged");
        log_wait_for(mon, "Member=InterfacesRemoved");
        ASSERT_NE(BUSCTL(&r, false, "get-property", "org.durabled1",
                         "/org/durabled1/workflow/sig_2d1", "org.durabled1.Workflow", "Status"),
                  0);
        ASSERT_STR_CONTAINS(r.err, "Unknown object");
        test_run_free(&r);

        /* Cancel (a request the workflow sees) and Terminate (the run ends at once), on a run
         * no worker polls for. */
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "idle-1", "Idle", "nobody-polls", "[1, 2]");
        test_run_free(&r);
        MANAGER_CALL(&r, "CancelWorkflow", "sss", "idle-1", "", "changed my mind");
        test_run_free(&r);
        MANAGER_CALL(&r, "GetHistory", "ss", "idle-1", "");
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionCancelRequested");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1/workflow/idle_2d1",
                         "org.durabled1.Workflow", "Terminate", "s", "enough"),
                  0);
        test_run_free(&r);
        log_wait_for(mon, "Member=WorkflowClosed");
        log_wait_for(mon, "STRING \"idle-1\";");
        log_wait_for(mon, "STRING \"Terminated\";");
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "idle-2", "Idle", "nobody-polls", "");
        test_run_free(&r);
        /* The object's Cancel records the request; its properties follow the history:
         * WorkflowExecutionStarted, WorkflowTaskScheduled, WorkflowExecutionCancelRequested. */
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1/workflow/idle_2d2",
                         "org.durabled1.Workflow", "Cancel", "s", "from the object"),
                  0);
        test_run_free(&r);
        MANAGER_CALL(&r, "GetHistory", "ss", "idle-2", "");
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionCancelRequested");
        ASSERT_STR_CONTAINS(r.out, "from the object");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "get-property", "org.durabled1",
                         "/org/durabled1/workflow/idle_2d2", "org.durabled1.Workflow",
                         "HistoryLength", "PendingActivities", "Status"),
                  0);
        ASSERT_STREQ(r.out, "t 3\nu 0\ns \"Running\"\n");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "get-property", "org.durabled1",
                         "/org/durabled1/workflow/idle_2d2", "org.durabled1.Workflow",
                         "StartTime"),
                  0);
        ASSERT_EQ(strncmp(r.out, "t ", 2), 0);
        ASSERT_GT(strtoull(r.out + 2, NULL, 10), 0ULL);
        test_run_free(&r);
        MANAGER_CALL(&r, "TerminateWorkflow", "sss", "idle-2", "", "");
        test_run_free(&r);
        log_wait_for(mon, "STRING \"idle-2\";");
        log_wait_for(mon, "STRING \"Terminated\";");
        MANAGER_CALL(&r, "ListWorkflows", "a{sv}", "1", "Status", "s", "Terminated");
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt) 2 ");
        test_run_free(&r);

        close(mon);
        test_process_free(&monitor);
        test_process_kill(&worker, SIGTERM);
        test_process_free(&worker);
        teardown();
}

/* PauseWorkflow and the Workflow object's Pause/Unpause: Status is Paused (announced by
 * PropertiesChanged), the list filter finds it, a second pause is FailedPrecondition, another
 * user's pause is NotFound, a wrong signature changes nothing. */
TEST(pause_and_unpause) {
        _cleanup_(test_process_free) TestProcess monitor = {};
        TestRun r = {};
        int mon;

        setup();
        mon = monitor_start(&monitor);
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "idle-p", "Idle", "nobody-polls", "");
        test_run_free(&r);
        MANAGER_CALL(&r, "PauseWorkflow", "sss", "idle-p", "", "maintenance");
        test_run_free(&r);
        log_wait_for(mon, "STRING \"Paused\";");
        ASSERT_EQ(BUSCTL(&r, false, "get-property", "org.durabled1",
                         "/org/durabled1/workflow/idle_2dp", "org.durabled1.Workflow", "Status"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "s \"Paused\"");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListWorkflows", "a{sv}", "1", "Status", "s", "Paused");
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt) 1 \"idle-p\"");
        test_run_free(&r);
        DBUS_SEND(&r, false, "PauseWorkflow", "string:idle-p", "string:", "string:again");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.FailedPrecondition: ");
        test_run_free(&r);
        DBUS_SEND(&r, true, "UnpauseWorkflow", "string:idle-p", "string:", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "UnpauseWorkflow", "string:idle-p", "uint32:1", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs");
        test_run_free(&r);
        MANAGER_CALL(&r, "QueryWorkflows", "sus", "ExecutionStatus = 'Paused'", "0", "");
        ASSERT_STR_CONTAINS(r.out, "idle-p");
        test_run_free(&r);

        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1/workflow/idle_2dp",
                         "org.durabled1.Workflow", "Unpause", "s", "done"),
                  0);
        test_run_free(&r);
        log_wait_for(mon, "STRING \"Running\";");
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1/workflow/idle_2dp",
                         "org.durabled1.Workflow", "Pause", "s", "again"),
                  0);
        test_run_free(&r);
        /* Reset, redrive and fork reach the daemon and name its refusals (no workflow task
         * completed yet; the run is open). */
        ASSERT_NE(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "ResetWorkflow", "ssstsas", "idle-p", "", "why", "0", "first", "1",
                         "Signal"),
                  0);
        ASSERT_STR_CONTAINS(r.err, "has no workflow task");
        test_run_free(&r);
        DBUS_SEND(&r, false, "RedriveWorkflow", "string:idle-p", "string:", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.FailedPrecondition: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "ForkWorkflow", "string:idle-p", "string:", "string:f", "string:",
                  "uint64:0");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.FailedPrecondition: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "ForkWorkflow", "string:idle-p", "string:", "string:f", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs");
        test_run_free(&r);
        /* A batch unpause by filter, described when done; a bad operation is named. */
        MANAGER_CALL(&r, "StartBatchOperation", "ssssst", "Unpause", "WorkflowId = 'idle-p'", "",
                     "", "", "0");
        ASSERT_STR_CONTAINS(r.out, " 1");
        test_run_free(&r);
        log_wait_for(mon, "STRING \"Running\";");
        DBUS_SEND(&r, false, "StartBatchOperation", "string:Frob", "string:", "string:",
                  "string:", "string:", "uint64:0");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "PauseActivity", "string:idle-p", "string:", "string:1");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "ResetActivity", "string:idle-p", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs");
        test_run_free(&r);
        DBUS_SEND(&r, false, "DescribeBatchOperation", "string:none");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);
        MANAGER_CALL(&r, "GetHistory", "ss", "idle-p", "");
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionUnpaused");
        ASSERT_STR_CONTAINS(r.out, "\\\"reason\\\":\\\"maintenance\\\"");
        test_run_free(&r);

        close(mon);
        test_process_free(&monitor);
        teardown();
}

/* SignalWithStart: the first call starts the run with the signal in its history before the first
 * task; the second signals the same run (Temporal's UseExisting); a bad JSON is a named error. */
TEST(signal_with_start) {
        TestRun r = {};
        char run_id[37], again[37];

        setup();
        MANAGER_CALL(&r, "SignalWithStart", "ssssss", "sws-1", "Idle", "nobody-polls", "{\"n\": 1}",
                     "go", "[1]");
        reply_run_id(r.out, run_id);
        test_run_free(&r);
        MANAGER_CALL(&r, "SignalWithStart", "ssssss", "sws-1", "Idle", "nobody-polls", "", "go",
                     "[2]");
        reply_run_id(r.out, again);
        ASSERT_STREQ(again, run_id);
        test_run_free(&r);
        MANAGER_CALL(&r, "GetHistory", "ss", "sws-1", "");
        ASSERT_STR_CONTAINS(r.out, "WorkflowExecutionSignaled");
        ASSERT_STR_CONTAINS(r.out, "[2]");
        test_run_free(&r);
        ASSERT_NE(DBUS_SEND(&r, false, "SignalWithStart", "string:sws-2", "string:Idle",
                            "string:q", "string:", "string:go", "string:{bad"),
                  0);
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: argument signal_input_json");
        test_run_free(&r);
        ASSERT_NE(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "DescribeWorkflow", "ss", "sws-2", ""),
                  0);
        test_run_free(&r);
        teardown();
}

static size_t count_substr(const char *s, const char *needle) {
        size_t n = 0;

        for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* Updates: Manager.UpdateWorkflow and Workflow.Update answer with the update's outcome once its
 * handler returned; the same update id is applied once; a handler's failure is in the answer, a
 * validator's rejection is the error UpdateRejected; bad arguments are named errors; nothing of
 * the refused calls is recorded. */
TEST(updates) {
        _cleanup_(test_process_free) TestProcess worker = {};
        TestRun r = {};

        setup();
        test_worker_spawn(&worker, NULL, NULL);
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "upd-1", "UpdateWorkflow", TEST_QUEUE, "");
        test_run_free(&r);

        MANAGER_CALL(&r, "UpdateWorkflow", "sssss", "upd-1", "", "add", "u1", "{\"n\": 5}");
        ASSERT_STR_CONTAINS(r.out, "\\\"update_id\\\":\\\"u1\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"stage\\\":\\\"Completed\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"result\\\":{\\\"total\\\":5}");
        test_run_free(&r);
        /* The same update id again: the same outcome, not applied twice. */
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1/workflow/upd_2d1",
                         "org.durabled1.Workflow", "Update", "sss", "add", "u1", "{\"n\": 5}"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "\\\"result\\\":{\\\"total\\\":5}");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1/workflow/upd_2d1",
                         "org.durabled1.Workflow", "Update", "sss", "add", "", "{\"n\": 1}"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "\\\"result\\\":{\\\"total\\\":6}");
        test_run_free(&r);
        MANAGER_CALL(&r, "UpdateWorkflow", "sssss", "upd-1", "", "fail", "", "");
        ASSERT_STR_CONTAINS(r.out, "\\\"type\\\":\\\"UpdateBroke\\\"");
        test_run_free(&r);

        DBUS_SEND(&r, false, "UpdateWorkflow", "string:upd-1", "string:", "string:add",
                  "string:", "string:{\"n\": -1}");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.UpdateRejected: ");
        ASSERT_STR_CONTAINS(r.err, "n must be a number >= 0");
        test_run_free(&r);
        DBUS_SEND(&r, false, "UpdateWorkflow", "string:upd-1", "string:", "string:add",
                  "string:", "string:{bad");
        ASSERT_STR_CONTAINS(r.err,
                            "Error org.durabled1.Error.InvalidArgument: argument input_json");
        test_run_free(&r);
        DBUS_SEND(&r, false, "UpdateWorkflow", "string:upd-1", "string:", "string:",
                  "string:", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: field "
                                   "\"update_name\" must not be empty");
        test_run_free(&r);
        DBUS_SEND(&r, false, "UpdateWorkflow", "string:upd-1", "string:", "string:add",
                  "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "UpdateWorkflow", "string:missing", "string:", "string:add",
                  "string:", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);

        /* Three updates were accepted and completed; the refused ones left nothing. */
        MANAGER_CALL(&r, "QueryWorkflow", "ssss", "upd-1", "", "total", "");
        ASSERT_STREQ(r.out, "s \"6\"\n");
        test_run_free(&r);
        MANAGER_CALL(&r, "GetHistory", "ss", "upd-1", "");
        ASSERT_EQ(count_substr(r.out, "WorkflowExecutionUpdateAccepted"), 3u);
        ASSERT_EQ(count_substr(r.out, "WorkflowExecutionUpdateCompleted"), 3u);
        test_run_free(&r);
        test_process_kill(&worker, SIGTERM);
        teardown();
}

/* CompleteActivity: an activity that completes later (DUR_ASYNC) is completed over D-Bus by
 * workflow id and activity id; a second completion finds no attempt running (NotFound). */
TEST(complete_activity) {
        _cleanup_(test_process_free) TestProcess worker = {};
        _cleanup_free_ char *fifo = NULL;
        _cleanup_close_ int fd = -EBADF;
        dur_outcome o = {};
        dur_client *c;
        json_t *out;
        char input[512], line[256];
        TestRun r = {};

        setup();
        fd = fifo_make(&daemon_, "async.fifo", &fifo);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        (void) snprintf(input, sizeof(input),
                        "{\"activity\": \"async\", \"input\": {\"started_fifo\": \"%s\"}, "
                        "\"start_to_close_ms\": 600000}",
                        fifo);
        start_json(c, "ActivityWorkflow", "bus-async", NULL, input, 0);
        fifo_read_line(fd, line, sizeof(line)); /* "token ...": the attempt runs */
        MANAGER_CALL(&r, "CompleteActivity", "ssss", "bus-async", "", "1", "{\"by\": \"bus\"}");
        test_run_free(&r);
        ASSERT_EQ(wait_outcome(c, "bus-async", &o), 0);
        out = outcome_result(&o);
        ASSERT_STREQ(json_str(json_object_get(out, "result"), "by"), "bus");
        json_decref(out);
        dur_outcome_done(&o);
        ASSERT_NE(DBUS_SEND(&r, false, "CompleteActivity", "string:bus-async", "string:",
                            "string:1", "string:"),
                  0);
        ASSERT_STR_CONTAINS(r.err, "org.durabled1.Error.NotFound");
        test_run_free(&r);
        dur_client_free(c);
        test_process_kill(&worker, SIGTERM);
        teardown();
}

TEST(named_errors_change_nothing) {
        TestRun r = {};

        setup();
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "dup", "T", "q", "");
        test_run_free(&r);

        DBUS_SEND(&r, false, "DescribeWorkflow", "string:missing", "string:");
        ASSERT_STR_CONTAINS(r.err,
                            "Error org.durabled1.Error.NotFound: workflow 'missing' not found");
        test_run_free(&r);
        DBUS_SEND(&r, false, "StartWorkflow", "string:dup", "string:T", "string:q", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.AlreadyStarted: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "StartWorkflow", "string:bad-json", "string:T", "string:q",
                  "string:{\"a\":");
        ASSERT_STR_CONTAINS(r.err,
                            "Error org.durabled1.Error.InvalidArgument: argument input_json is "
                            "not valid JSON");
        test_run_free(&r);
        DBUS_SEND(&r, false, "StartWorkflow", "string:no-type", "string:", "string:q", "string:");
        ASSERT_STR_CONTAINS(r.err,
                            "Error org.durabled1.Error.InvalidArgument: field \"workflow_type\" "
                            "must not be empty");
        test_run_free(&r);
        DBUS_SEND(&r, false, "SignalWorkflow", "string:dup", "string:", "string:s", "string:[1,");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: ");
        test_run_free(&r);
        /* Wrong signatures: sd-bus checks them against the vtable. */
        DBUS_SEND(&r, false, "StartWorkflow", "string:x", "string:T", "string:q");
        ASSERT_STR_CONTAINS(r.err,
                            "Error org.freedesktop.DBus.Error.InvalidArgs: Invalid arguments "
                            "'sss' to call org.durabled1.Manager.StartWorkflow(), expecting "
                            "'ssss'");
        test_run_free(&r);
        DBUS_SEND(&r, false, "CancelWorkflow", "uint32:1", "string:", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs: ");
        test_run_free(&r);
        /* Bad filters name the problem. */
        ASSERT_NE(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "ListWorkflows", "a{sv}", "1", "Limit", "s", "ten"),
                  0);
        ASSERT_STR_CONTAINS(r.err, "filter Limit must be of type 'u', not 's'");
        test_run_free(&r);
        ASSERT_NE(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "ListWorkflows", "a{sv}", "1", "Colour", "s", "red"),
                  0);
        ASSERT_STR_CONTAINS(r.err, "unknown filter 'Colour'");
        test_run_free(&r);
        ASSERT_NE(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "ListWorkflows", "a{sv}", "1", "Status", "s", "Sleeping"),
                  0);
        ASSERT_STR_CONTAINS(r.err, "unknown status 'Sleeping'");
        test_run_free(&r);

        /* Nothing of it was kept: one workflow, one signal-free history of two events. */
        MANAGER_CALL(&r, "ListWorkflows", "a{sv}", "0");
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt) 1 \"dup\" ");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "get-property", "org.durabled1", "/org/durabled1/workflow/dup",
                         "org.durabled1.Workflow", "HistoryLength"),
                  0);
        ASSERT_STREQ(r.out, "t 2\n");
        test_run_free(&r);
        teardown();
}

TEST(other_user_sees_only_its_own) {
        TestRun r = {};

        setup();
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "root-wf", "T", "q", "");
        test_run_free(&r);

        /* root's workflow does not exist for nobody, whatever the method or object. */
        DBUS_SEND(&r, true, "DescribeWorkflow", "string:root-wf", "string:");
        ASSERT_STR_CONTAINS(r.err,
                            "Error org.durabled1.Error.NotFound: workflow 'root-wf' not found");
        test_run_free(&r);
        DBUS_SEND(&r, true, "SignalWorkflow", "string:root-wf", "string:", "string:x", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);
        DBUS_SEND(&r, true, "TerminateWorkflow", "string:root-wf", "string:", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);
        ASSERT_NE(BUSCTL(&r, true, "call", "org.durabled1", "/org/durabled1/workflow/root_2dwf",
                         "org.durabled1.Workflow", "Terminate", "s", ""),
                  0);
        ASSERT_STR_CONTAINS(r.err, "Unknown object");
        test_run_free(&r);
        ASSERT_NE(BUSCTL(&r, true, "get-property", "org.durabled1",
                         "/org/durabled1/workflow/root_2dwf", "org.durabled1.Workflow", "Status"),
                  0);
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, true, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "ListWorkflows", "a{sv}", "0"),
                  0);
        ASSERT_STREQ(r.out, "a(ssssstt) 0\n");
        test_run_free(&r);

        /* nobody's own workflow: visible to nobody and to root, not the other way round. */
        ASSERT_EQ(BUSCTL(&r, true, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "StartWorkflow", "ssss", "nobody-wf", "T", "q", ""),
                  0);
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, true, "get-property", "org.durabled1", "/org/durabled1", MANAGER,
                         "RunningWorkflows"),
                  0);
        ASSERT_STREQ(r.out, "u 1\n");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, true, "tree", "org.durabled1"), 0);
        ASSERT_STR_CONTAINS(r.out, "/org/durabled1/workflow/nobody_2dwf");
        ASSERT_NULL(strstr(r.out, "root_2dwf"));
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, true, "get-property", "org.durabled1",
                         "/org/durabled1/workflow/nobody_2dwf", "org.durabled1.Workflow", "Status"),
                  0);
        ASSERT_STREQ(r.out, "s \"Running\"\n");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "get-property", "org.durabled1", "/org/durabled1", MANAGER,
                         "RunningWorkflows"),
                  0);
        ASSERT_STREQ(r.out, "u 2\n");
        test_run_free(&r);
        /* The history records who started it (DESIGN.md §10). */
        MANAGER_CALL(&r, "GetHistory", "ss", "nobody-wf", "");
        ASSERT_STR_CONTAINS(r.out, "\\\"uid\\\":" NOBODY ",");
        test_run_free(&r);
        teardown();
}

/* A file @name in directory @dir with @text. */
static void write_unit(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        ASSERT_OK_ERRNO(asprintf(&path, "%s/%s", dir, name));
        f = ASSERT_NOT_NULL(fopen(path, "we"));
        fputs(text, f);
        ASSERT_OK_ERRNO(fclose(f));
}

/* The last quoted string of busctl's output (QueryWorkflows' next_page_token), unescaped
 * enough for a token (no quotes or backslashes in it). */
static char *last_string(const char *out) {
        const char *end = strrchr(out, '"'), *start;

        ASSERT_NOT_NULL(end);
        for (start = end - 1; start > out && *start != '"'; start--)
                ;
        ASSERT_TRUE(*start == '"' && start < end);
        return ASSERT_NOT_NULL(strndup(start + 1, (size_t) (end - start - 1)));
}

/* StartActivity, ListActivityTypes and Reload (administrators only), and their named errors. */
TEST(standalone_activities_and_reload) {
        _cleanup_free_ char *units = NULL, *arg = NULL;
        TestRun r = {};
        char run_id[37];

        units = ASSERT_NOT_NULL(test_mkdtemp());
        write_unit(units, "tidy.activity",
                   "[Activity]\nExecStart=/bin/true\nStartToCloseSec=10s\n");
        ASSERT_OK_ERRNO(asprintf(&arg, "--activity-dir=%s", units));
        bus_start(&bus);
        test_daemon_start(&daemon_,
                          &(TestDaemonOpts){ .args = STRV("--bus-address", bus.address, arg) });

        MANAGER_CALL(&r, "ListActivityTypes", "");
        ASSERT_STR_CONTAINS(r.out, "\\\"name\\\":\\\"tidy\\\"");
        test_run_free(&r);

        /* An activity no worker polls for: it waits, scheduled, as a run of its own. */
        MANAGER_CALL(&r, "StartActivity", "sssss", "act-1", "resize", "nobody-polls",
                     "{\"width\": 640}",
                     "{\"start_to_close_usec\": 5000000, \"request_id\": \"r1\"}");
        ASSERT_STR_CONTAINS(r.out, "\"/org/durabled1/workflow/act_2d1\"");
        reply_run_id(r.out, run_id);
        test_run_free(&r);
        MANAGER_CALL(&r, "DescribeWorkflow", "ss", "act-1", run_id);
        ASSERT_STR_CONTAINS(r.out, "\\\"workflow_type\\\":\\\"durabled.StandaloneActivity\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"activity_type\\\":\\\"resize\\\"");
        test_run_free(&r);
        MANAGER_CALL(&r, "GetHistory", "ss", "act-1", "");
        ASSERT_STR_CONTAINS(r.out, "\\\"event_type\\\":\\\"ActivityTaskScheduled\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"input\\\":{\\\"width\\\":640}");
        ASSERT_STR_CONTAINS(r.out, "\\\"start_to_close_usec\\\":5000000");
        test_run_free(&r);

        /* Bad arguments: named errors, nothing started. */
        DBUS_SEND(&r, false, "StartActivity", "string:act-2", "string:resize",
                  "string:", "string:", "string:{\"start_to_close\": 5}");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: argument "
                                   "options_json: unknown key 'start_to_close' (expected "
                                   "start_to_close_usec, ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "StartActivity", "string:act-2", "string:resize",
                  "string:", "string:", "string:[1]");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: argument "
                                   "options_json is not a valid JSON object");
        test_run_free(&r);
        DBUS_SEND(&r, false, "StartActivity", "string:act-2", "string:resize",
                  "string:", "string:", "string:{\"heartbeat_usec\": -1}");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: field "
                                   "\"heartbeat_usec\" must be ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "StartActivity", "string:act-2", "string:resize",
                  "string:", "string:{", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: argument "
                                   "input_json is not valid JSON");
        test_run_free(&r);
        DBUS_SEND(&r, false, "StartActivity", "string:act-1", "string:resize",
                  "string:", "string:", "string:{\"start_to_close_usec\": 1000000}");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.AlreadyStarted: ");
        test_run_free(&r);
        /* The same request id again: the running run, not a second one. */
        MANAGER_CALL(&r, "StartActivity", "sssss", "act-1", "resize", "nobody-polls", "",
                     "{\"start_to_close_usec\": 5000000, \"request_id\": \"r1\"}");
        ASSERT_STR_CONTAINS(r.out, run_id);
        test_run_free(&r);
        DBUS_SEND(&r, false, "StartActivity", "string:act-2", "string:resize", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs: ");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListWorkflows", "a{sv}", "0");
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt) 1 \"act-1\" ");
        test_run_free(&r);

        /* A new unit appears only with a reload, which nobody may not do. */
        write_unit(units, "sweep.activity", "[Activity]\nExecStart=/bin/true\n");
        test_run(&r,
                 STRV("setpriv", "--reuid=" NOBODY, "--regid=" NOBODY, "--clear-groups",
                      "dbus-send", bus.bus_arg, "--print-reply", "--dest=org.durabled1",
                      "/org/durabled1", MANAGER ".Reload"),
                 NULL);
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.PermissionDenied: ");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, true, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "ListActivityTypes"),
                  0);
        ASSERT_STR_CONTAINS(r.out, "\\\"name\\\":\\\"tidy\\\"");
        ASSERT_NULL(strstr(r.out, "sweep"));
        test_run_free(&r);
        MANAGER_CALL(&r, "Reload", "");
        ASSERT_STR_CONTAINS(r.out, "\\\"name\\\":\\\"sweep\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"name\\\":\\\"tidy\\\"");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListActivityTypes", "");
        ASSERT_STR_CONTAINS(r.out, "\\\"name\\\":\\\"sweep\\\"");
        test_run_free(&r);
        teardown();
        (void) test_rm_rf(units);
}

#define JAN_1_2026_USEC "1767225600000000"
#define JAN_3_2026_USEC "1767398400000000"

/* The schedule methods: create, list, describe, pause, unpause, trigger, backfill, delete; bad
 * definitions and unknown schedules answered by name; others' schedules do not exist. */
TEST(schedules) {
        TestRun r = {};

        setup();
        MANAGER_CALL(&r, "CreateSchedule", "ss", "nightly",
                     "{\"calendars\": [\"*-*-* 03:00:00 UTC\"], \"workflow_type\": \"Nightly\", "
                     "\"task_queue\": \"nobody-polls\", \"input\": {\"n\": 1}, \"note\": \"hi\"}");
        ASSERT_STREQ(r.out, "");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListSchedules", "");
        ASSERT_STR_CONTAINS(r.out, "a(sssbstt) 1 \"nightly\" \"Nightly\" \"nobody-polls\" false "
                                   "\"hi\" 0 ");
        test_run_free(&r);
        MANAGER_CALL(&r, "DescribeSchedule", "su", "nightly", "3");
        ASSERT_STR_CONTAINS(r.out, "\\\"schedule_id\\\":\\\"nightly\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"input\\\":{\\\"n\\\":1}");
        ASSERT_STR_CONTAINS(r.out, "\\\"next_times_usec\\\":[");
        test_run_free(&r);

        /* Bad definitions and arguments change nothing. */
        DBUS_SEND(&r, false, "CreateSchedule", "string:other", "string:{\"calendars\": [");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: argument "
                                   "definition_json is not a valid JSON object");
        test_run_free(&r);
        DBUS_SEND(&r, false, "CreateSchedule", "string:other",
                  "string:{\"calendar\": [\"daily\"], \"workflow_type\": \"T\", "
                  "\"task_queue\": \"q\"}");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: argument "
                                   "definition_json: unknown key 'calendar' (expected calendars, ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "CreateSchedule", "string:other",
                  "string:{\"calendars\": [\"someday\"], \"workflow_type\": \"T\", "
                  "\"task_queue\": \"q\"}");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: ");
        ASSERT_STR_CONTAINS(r.err, "someday");
        test_run_free(&r);
        DBUS_SEND(&r, false, "CreateSchedule", "string:nightly",
                  "string:{\"calendars\": [\"daily\"], \"workflow_type\": \"T\", "
                  "\"task_queue\": \"q\"}");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.AlreadyStarted: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "PauseSchedule", "string:missing", "string:");
        ASSERT_STR_CONTAINS(r.err,
                            "Error org.durabled1.Error.NotFound: schedule 'missing' not found");
        test_run_free(&r);
        DBUS_SEND(&r, false, "TriggerSchedule", "string:nightly", "string:sometimes");
        ASSERT_STR_CONTAINS(
                r.err,
                "Error org.durabled1.Error.InvalidArgument: unknown overlap policy 'sometimes'");
        test_run_free(&r);
        DBUS_SEND(&r, false, "DescribeSchedule", "string:nightly");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs: ");
        test_run_free(&r);
        /* nobody: root's schedule does not exist. */
        DBUS_SEND(&r, true, "DescribeSchedule", "string:nightly", "uint32:0");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);
        DBUS_SEND(&r, true, "DeleteSchedule", "string:nightly");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, true, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "ListSchedules"),
                  0);
        ASSERT_STREQ(r.out, "a(sssbstt) 0\n");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListSchedules", "");
        ASSERT_STR_CONTAINS(r.out, "a(sssbstt) 1 \"nightly\" \"Nightly\" \"nobody-polls\" false "
                                   "\"hi\" 0 ");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListWorkflows", "a{sv}", "0");
        ASSERT_STREQ(r.out, "a(ssssstt) 0\n");
        test_run_free(&r);

        /* Pause and unpause with notes. */
        MANAGER_CALL(&r, "PauseSchedule", "ss", "nightly", "maintenance");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListSchedules", "");
        ASSERT_STR_CONTAINS(r.out, "\"nobody-polls\" true \"maintenance\" 0 ");
        test_run_free(&r);
        MANAGER_CALL(&r, "UnpauseSchedule", "ss", "nightly", "");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListSchedules", "");
        ASSERT_STR_CONTAINS(r.out, "\"nobody-polls\" false ");
        test_run_free(&r);

        /* A trigger starts one run now; a backfill of two nights starts two more. */
        MANAGER_CALL(&r, "TriggerSchedule", "ss", "nightly", "");
        test_run_free(&r);
        MANAGER_CALL(&r, "BackfillSchedule", "stts", "nightly", JAN_1_2026_USEC, JAN_3_2026_USEC,
                     "allow_all");
        ASSERT_STREQ(r.out, "u 2\n");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListWorkflows", "a{sv}", "1", "WorkflowType", "s", "Nightly");
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt) 3 ");
        ASSERT_STR_CONTAINS(r.out, "\"nightly-2026-01-01T03:00:00Z\"");
        ASSERT_STR_CONTAINS(r.out, "\"nightly-2026-01-02T03:00:00Z\"");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListSchedules", "");
        ASSERT_STR_CONTAINS(r.out, "\"nobody-polls\" false \"\" 3 ");
        test_run_free(&r);

        MANAGER_CALL(&r, "DeleteSchedule", "s", "nightly");
        test_run_free(&r);
        MANAGER_CALL(&r, "ListSchedules", "");
        ASSERT_STREQ(r.out, "a(sssbstt) 0\n");
        test_run_free(&r);
        DBUS_SEND(&r, false, "DeleteSchedule", "string:nightly");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        test_run_free(&r);
        teardown();
}

/* QueryWorkflows (the list filter, pages) and CountWorkflows; ListWorkflows is unchanged. */
TEST(query_and_count_workflows) {
        _cleanup_free_ char *token = NULL, *last = NULL;
        TestRun r = {};

        setup();
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "a-1", "A", "nobody-polls", "");
        test_run_free(&r);
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "a-2", "A", "nobody-polls", "");
        test_run_free(&r);
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "b-1", "B", "nobody-polls", "");
        test_run_free(&r);
        MANAGER_CALL(&r, "TerminateWorkflow", "sss", "b-1", "", "");
        test_run_free(&r);

        /* Flow control: the task queue the runs wait in. */
        MANAGER_CALL(&r, "DescribeTaskQueue", "s", "nobody-polls");
        ASSERT_STR_CONTAINS(r.out, "\\\"task_queue\\\":\\\"nobody-polls\\\"");
        ASSERT_STR_CONTAINS(r.out, "\\\"backlog\\\":2"); /* a-1, a-2: b-1 is terminated */
        test_run_free(&r);
        DBUS_SEND(&r, false, "DescribeTaskQueue", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "DescribeTaskQueue", "uint32:3");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs: ");
        test_run_free(&r);

        /* Pages of one, newest first; a full page has a token, the page after the last run none. */
        MANAGER_CALL(&r, "QueryWorkflows", "sus", "WorkflowType = 'A'", "1", "");
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt)s 1 \"a-2\" ");
        token = last_string(r.out);
        ASSERT_TRUE(*token);
        test_run_free(&r);
        MANAGER_CALL(&r, "QueryWorkflows", "sus", "WorkflowType = 'A'", "1", token);
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt)s 1 \"a-1\" ");
        free(token);
        token = last_string(r.out);
        test_run_free(&r);
        ASSERT_TRUE(*token); /* the page is full: the next one may hold more */
        MANAGER_CALL(&r, "QueryWorkflows", "sus", "WorkflowType = 'A'", "1", token);
        ASSERT_STREQ(r.out, "a(ssssstt)s 0 \"\"\n");
        test_run_free(&r);
        MANAGER_CALL(&r, "QueryWorkflows", "sus", "ExecutionStatus = 'Terminated'", "0", "");
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt)s 1 \"b-1\" ");
        last = last_string(r.out);
        ASSERT_STREQ(last, "");
        test_run_free(&r);
        MANAGER_CALL(&r, "QueryWorkflows", "sus", "", "0", "");
        ASSERT_STR_CONTAINS(r.out, "a(ssssstt)s 3 ");
        test_run_free(&r);

        MANAGER_CALL(&r, "CountWorkflows", "s", "WorkflowType = 'A'");
        ASSERT_STREQ(r.out, "ta(st) 2 0\n");
        test_run_free(&r);
        MANAGER_CALL(&r, "CountWorkflows", "s", "GROUP BY ExecutionStatus");
        ASSERT_STR_CONTAINS(r.out, "ta(st) 3 2 ");
        ASSERT_STR_CONTAINS(r.out, "\"Running\" 2");
        ASSERT_STR_CONTAINS(r.out, "\"Terminated\" 1");
        test_run_free(&r);

        /* Bad queries and tokens name the problem. */
        DBUS_SEND(&r, false, "QueryWorkflows", "string:WorkflowType = ", "uint32:0", "string:");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: ");
        ASSERT_STR_CONTAINS(r.err, "position");
        test_run_free(&r);
        DBUS_SEND(&r, false, "QueryWorkflows", "string:WorkflowType = 'B'", "uint32:1",
                  "string:garbage");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "CountWorkflows", "string:Colour = 'red' AND");
        ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.InvalidArgument: ");
        test_run_free(&r);
        DBUS_SEND(&r, false, "CountWorkflows", "uint32:1");
        ASSERT_STR_CONTAINS(r.err, "Error org.freedesktop.DBus.Error.InvalidArgs: ");
        test_run_free(&r);

        /* nobody sees and counts none of root's runs. */
        ASSERT_EQ(BUSCTL(&r, true, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "CountWorkflows", "s", ""),
                  0);
        ASSERT_STREQ(r.out, "ta(st) 0 0\n");
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, true, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "QueryWorkflows", "sus", "", "0", ""),
                  0);
        ASSERT_STREQ(r.out, "a(ssssstt)s 0 \"\"\n");
        test_run_free(&r);
        teardown();
}

/* The XML files of dbus/ are the contract: each interface there is what the running daemon introspects. */
TEST(introspection_matches_contract) {
        TestRun r = {};
        _cleanup_free_ char *manager_xml = NULL, *workflow_xml = NULL;
        const char *dir = test_bin("DBUS_CONTRACT_DIR");
        FILE *f;

        setup();
        MANAGER_CALL(&r, "StartWorkflow", "ssss", "x", "T", "q", "");
        test_run_free(&r);
        ASSERT_OK_ERRNO(asprintf(&manager_xml, "%s/manager.xml", bus.dir));
        ASSERT_OK_ERRNO(asprintf(&workflow_xml, "%s/workflow.xml", bus.dir));
        ASSERT_EQ(BUSCTL(&r, false, "introspect", "--xml-interface", "org.durabled1",
                         "/org/durabled1"),
                  0);
        f = ASSERT_NOT_NULL(fopen(manager_xml, "we"));
        fputs(r.out, f);
        ASSERT_OK_ERRNO(fclose(f));
        test_run_free(&r);
        ASSERT_EQ(BUSCTL(&r, false, "introspect", "--xml-interface", "org.durabled1",
                         "/org/durabled1/workflow/x"),
                  0);
        f = ASSERT_NOT_NULL(fopen(workflow_xml, "we"));
        fputs(r.out, f);
        ASSERT_OK_ERRNO(fclose(f));
        test_run_free(&r);
        {
                _cleanup_free_ char *m = NULL, *w = NULL;

                ASSERT_OK_ERRNO(asprintf(&m, "%s/org.durabled1.Manager.xml", dir));
                ASSERT_OK_ERRNO(asprintf(&w, "%s/org.durabled1.Workflow.xml", dir));
                ASSERT_EQ(test_run(&r,
                                   STRV("python3", test_bin("DBUS_XML_COMPARE"), m, manager_xml,
                                        "org.durabled1.Manager"),
                                   NULL),
                          0);
                test_run_free(&r);
                ASSERT_EQ(test_run(&r,
                                   STRV("python3", test_bin("DBUS_XML_COMPARE"), w, workflow_xml,
                                        "org.durabled1.Workflow"),
                                   NULL),
                          0);
                test_run_free(&r);
        }
        teardown();
}

/* An explicit bus that cannot be used is an error at start-up; the name has one owner. */
TEST(bus_failures_at_start) {
        TestDaemon other = {};
        TestDaemon bad = {};

        setup();
        ASSERT_EQ(test_daemon_try_start(
                          &other, &(TestDaemonOpts){ .args = STRV("--bus-address", bus.address) }),
                  -ECHILD);
        ASSERT_EQ(WEXITSTATUS(other.proc.exit_status), 1);
        ASSERT_EQ(test_daemon_try_start(
                          &bad, &(TestDaemonOpts){ .args = STRV("--bus-address",
                                                                "unix:path=/nonexistent/bus") }),
                  -ECHILD);
        test_daemon_free(&other);
        test_daemon_free(&bad);
        teardown();
}

/* DESIGN.md §3 over D-Bus: the daemon killed right before the commit of a StartWorkflow never
 * answered it and kept nothing; killed right after, it never answered either, but the run is
 * there after a restart. (Kill points exist with -Dfault-injection=true only.) */
static void start_killed_at(const char *killpoint, bool kept) {
        TestDaemon again = {};
        TestRun r = {};
        int status;

        bus_start(&bus);
        test_daemon_start(&daemon_, &(TestDaemonOpts){ .args = STRV("--bus-address", bus.address),
                                                       .env = STRV(killpoint) });
        ASSERT_NE(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "StartWorkflow", "ssss", "crash-1", "T", "q", ""),
                  0);
        ASSERT_NULL(strstr(r.out, "so "));
        test_run_free(&r);
        status = test_daemon_wait_exit(&daemon_, 0);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        test_daemon_start(&again,
                          &(TestDaemonOpts){ .args = STRV("--bus-address", bus.address,
                                                          "--state-dir", daemon_.state_dir) });
        if (kept) {
                MANAGER_CALL(&r, "DescribeWorkflow", "ss", "crash-1", "");
                ASSERT_STR_CONTAINS(r.out, "\\\"status\\\":\\\"Running\\\"");
        } else {
                DBUS_SEND(&r, false, "DescribeWorkflow", "string:crash-1", "string:");
                ASSERT_STR_CONTAINS(r.err, "Error org.durabled1.Error.NotFound: ");
        }
        test_run_free(&r);
        test_daemon_stop(&again);
        test_daemon_free(&again);
        test_daemon_free(&daemon_);
        bus_free(&bus);
}

TEST(reply_only_after_commit) {
        if (!DURABLED_FAULT_INJECTION)
                SKIP("kill points need -Dfault-injection=true");
        start_killed_at("DURABLED_KILL_AT=before-commit:1", false);
        start_killed_at("DURABLED_KILL_AT=after-commit:1", true);
}

/* The same for a method of the second table: CreateSchedule killed before its commit kept
 * nothing, killed after it kept the schedule; neither was answered. */
static void create_schedule_killed_at(const char *killpoint, bool kept) {
        TestDaemon again = {};
        TestRun r = {};
        int status;

        bus_start(&bus);
        test_daemon_start(&daemon_, &(TestDaemonOpts){ .args = STRV("--bus-address", bus.address),
                                                       .env = STRV(killpoint) });
        ASSERT_NE(BUSCTL(&r, false, "call", "org.durabled1", "/org/durabled1", MANAGER,
                         "CreateSchedule", "ss", "crash-s",
                         "{\"calendars\": [\"daily\"], \"workflow_type\": \"T\", "
                         "\"task_queue\": \"q\"}"),
                  0);
        test_run_free(&r);
        status = test_daemon_wait_exit(&daemon_, 0);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        test_daemon_start(&again,
                          &(TestDaemonOpts){ .args = STRV("--bus-address", bus.address,
                                                          "--state-dir", daemon_.state_dir) });
        MANAGER_CALL(&r, "ListSchedules", "");
        if (kept)
                ASSERT_STR_CONTAINS(r.out, "a(sssbstt) 1 \"crash-s\" ");
        else
                ASSERT_STREQ(r.out, "a(sssbstt) 0\n");
        test_run_free(&r);
        test_daemon_stop(&again);
        test_daemon_free(&again);
        test_daemon_free(&daemon_);
        bus_free(&bus);
}

TEST(schedule_reply_only_after_commit) {
        if (!DURABLED_FAULT_INJECTION)
                SKIP("kill points need -Dfault-injection=true");
        create_schedule_killed_at("DURABLED_KILL_AT=before-commit:1", false);
        create_schedule_killed_at("DURABLED_KILL_AT=after-commit:1", true);
}

/* The bus going away takes the D-Bus API with it, not the daemon: the socket still serves, and
 * the daemon still stops cleanly. */
TEST(bus_gone) {
        json_t *req, *a;
        dur_client *c;
        int error = 0;

        setup();
        test_process_kill(&bus.proc, SIGKILL);
        c = client_connect();
        req = json_pack("{s:s, s:s, s:s, s:s}", "op", "StartWorkflow", "workflow_id", "after-bus",
                        "workflow_type", "T", "task_queue", "q");
        a = call_json(c, req, &error);
        json_decref(req);
        ASSERT_OK(error);
        ASSERT_NOT_NULL(a);
        json_decref(a);
        dur_client_free(c);
        teardown();
}

/* --no-bus wins over --bus-address: the daemon serves its socket and takes no name. */
TEST(no_bus) {
        TestRun r = {};

        bus_start(&bus);
        test_daemon_start(&daemon_, &(TestDaemonOpts){ .args = STRV("--no-bus", "--bus-address",
                                                                    bus.address) });
        ASSERT_EQ(BUSCTL(&r, false, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                         "org.freedesktop.DBus", "NameHasOwner", "s", "org.durabled1"),
                  0);
        ASSERT_STREQ(r.out, "b false\n");
        test_run_free(&r);
        teardown();
}

DEFINE_TEST_MAIN();
