/* The D-Bus API (org.durabled1(5), DESIGN.md §9) through a real private dbus-daemon, whose
 * configuration includes the policy the project installs (dbus/org.durabled1.conf), the real
 * durabled on it (--bus-address) and busctl/dbus-send as any caller would use them: every method,
 * property and signal (busctl monitor sees WorkflowStarted, PropertiesChanged, WorkflowClosed and
 * InterfacesRemoved), named errors for wrong signatures and bad JSON, another uid (nobody, via
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

#include "tests/integration/worker-util.h"

#define NOBODY "65534"
#define MANAGER "org.durabled1.Manager"

typedef struct TestBus {
        char *dir;
        char address[512];
        char address_arg[600]; /* --address=... for busctl */
        char bus_arg[600];     /* --bus=... for dbus-send */
        TestProcess proc;
} TestBus;

static TestBus bus;
static TestDaemon daemon_;

/* A private bus with the system bus's default policy (nothing may be owned, method calls only
 * where a policy allows them) plus the project's policy file. */
static void bus_start(TestBus *b) {
        _cleanup_free_ char *conf = NULL, *fifo = NULL;
        const char *policy = test_bin("DBUS_POLICY");
        FILE *f;
        int fd;

        b->dir = test_mkdtemp();
        ASSERT_OK_ERRNO(chmod(b->dir, 0755)); /* nobody connects too */
        ASSERT_OK_ERRNO(asprintf(&conf, "%s/bus.conf", b->dir));
        f = ASSERT_NOT_NULL(fopen(conf, "we"));
        fprintf(f,
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig>\n"
                " <type>system</type>\n"
                " <listen>unix:path=%s/bus.sock</listen>\n"
                " <auth>EXTERNAL</auth>\n"
                " <policy context=\"default\">\n"
                "  <allow user=\"*\"/>\n"
                "  <deny own=\"*\"/>\n"
                "  <deny send_type=\"method_call\"/>\n"
                "  <allow send_type=\"signal\"/>\n"
                "  <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
                "  <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
                "  <allow receive_type=\"method_call\"/>\n"
                "  <allow receive_type=\"method_return\"/>\n"
                "  <allow receive_type=\"error\"/>\n"
                "  <allow receive_type=\"signal\"/>\n"
                "  <allow send_destination=\"org.freedesktop.DBus\"\n"
                "         send_interface=\"org.freedesktop.DBus\"/>\n"
                "  <allow send_destination=\"org.freedesktop.DBus\"\n"
                "         send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
                " </policy>\n"
                " <policy user=\"root\">\n"
                "  <allow send_destination=\"org.freedesktop.DBus\"\n"
                "         send_interface=\"org.freedesktop.DBus.Monitoring\"/>\n"
                " </policy>\n"
                " <include>%s</include>\n"
                "</busconfig>\n",
                b->dir, policy);
        ASSERT_OK_ERRNO(fclose(f));
        ASSERT_OK_ERRNO(asprintf(&fifo, "%s/address.fifo", b->dir));
        ASSERT_OK_ERRNO(mkfifo(fifo, 0600));
        fd = ASSERT_OK_ERRNO(open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC));
        test_process_spawn(&b->proc,
                           STRV("/bin/sh", "-c",
                                "exec dbus-daemon --config-file=\"$0\" --nofork --print-address=1 "
                                ">\"$1\"",
                                conf, fifo),
                           NULL);
        log_wait_for(fd, "unix:path="); /* it listens */
        close(fd);
        snprintf(b->address, sizeof(b->address), "unix:path=%s/bus.sock", b->dir);
        snprintf(b->address_arg, sizeof(b->address_arg), "--address=%s", b->address);
        snprintf(b->bus_arg, sizeof(b->bus_arg), "--bus=%s", b->address);
}

static void bus_free(TestBus *b) {
        test_process_free(&b->proc);
        if (b->dir)
                (void) test_rm_rf(b->dir);
        free(b->dir);
        *b = (TestBus){};
}

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
