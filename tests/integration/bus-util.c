/* A private dbus-daemon (bus-util.h). */

#include "tests/integration/bus-util.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/orders-util.h"

/* A private bus with the system bus's default policy (nothing may be owned, method calls only
 * where a policy allows them) plus the project's policy file. */
void bus_start(TestBus *b) {
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

void bus_free(TestBus *b) {
        test_process_free(&b->proc);
        if (b->dir)
                (void) test_rm_rf(b->dir);
        free(b->dir);
        *b = (TestBus){};
}
