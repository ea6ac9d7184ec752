/* Tests of daemon/schedule-unit.c's parser: *.schedule unit files (durabled.schedule(5)) become
 * CreateSchedule maps, and every mistake is refused with its line and what is wrong. */

#include <msgpack.h>

#include "daemon/schedule-unit.h"
#include "tests/lib/test.h"

/* The buffer the unpacked map of the last successful parse() points into. */
static MsgBuf last;

/* Parses @text; on success returns the unpacked map in @u (destroy it), which points into
 * @last until the next parse(). */
static int parse(const char *text, msgpack_unpacked *u, unsigned *line, char *err, size_t errlen) {
        int r;

        msgbuf_done(&last);
        msgbuf_init(&last);
        *line = 0;
        r = schedule_unit_parse(text, &last, line, err, errlen);
        if (r >= 0) {
                msgpack_unpacked_init(u);
                ASSERT_OK(msg_decode(last.sb.data, last.sb.size, u));
        }
        return r;
}

static void assert_refused(const char *text, unsigned want_line, const char *needle) {
        msgpack_unpacked u;
        unsigned line;
        char err[512];

        ASSERT_ERROR(parse(text, &u, &line, err, sizeof(err)), -EINVAL);
        ASSERT_EQ(line, want_line);
        ASSERT_STR_CONTAINS(err, needle);
}

static uint64_t get_uint(const msgpack_object *map, const char *key) {
        const msgpack_object *o = msg_get(map, key);

        ASSERT_NOT_NULL(o);
        ASSERT_EQ(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        return o->via.u64;
}

static bool str_is(const msgpack_object *o, const char *s) {
        return o && o->type == MSGPACK_OBJECT_STR && msg_str_eq(o, s);
}

TEST(a_full_unit) {
        msgpack_unpacked u;
        const msgpack_object *cal, *iv, *map;
        unsigned line;
        char err[512];

        ASSERT_OK(parse("# nightly backup\n"
                        "; another comment\n"
                        "\n"
                        "[Schedule]\n"
                        "OnCalendar = Mon..Fri 03:00 \\\n"
                        "             Europe/Berlin\n"
                        "OnCalendar=\n"
                        "OnCalendar=daily\n"
                        "OnCalendar=weekly\n"
                        "Interval=1h 30min/15min\n"
                        "WorkflowType=Backup\n"
                        "TaskQueue=backups\n"
                        "Input={\"path\": \"/home\"}\n"
                        "RandomizedDelaySec=90\n"
                        "TaskTimeoutSec=20s\n"
                        "CatchupWindowSec=2d\n"
                        "Persistent=no\n"
                        "Overlap=buffer_all\n"
                        "PauseOnFailure=yes\n"
                        "WakeSystem=on\n"
                        "StartTime=2026-01-01 00:00 UTC\n"
                        "EndTime=@4102444800\n",
                        &u, &line, err, sizeof(err)));
        map = &u.data;
        /* The empty OnCalendar= emptied the list. */
        cal = msg_get(map, "calendars");
        ASSERT_EQ(cal->via.array.size, 2u);
        ASSERT_TRUE(str_is(&cal->via.array.ptr[0], "daily"));
        iv = msg_get(map, "intervals");
        ASSERT_EQ(iv->via.array.size, 1u);
        ASSERT_EQ(get_uint(&iv->via.array.ptr[0], "every_usec"), UINT64_C(5400000000));
        ASSERT_EQ(get_uint(&iv->via.array.ptr[0], "offset_usec"), UINT64_C(900000000));
        ASSERT_EQ(get_uint(map, "jitter_usec"), UINT64_C(90000000));
        ASSERT_EQ(get_uint(map, "task_timeout_usec"), UINT64_C(20000000));
        ASSERT_EQ(get_uint(map, "catchup_window_usec"), UINT64_C(172800000000));
        ASSERT_EQ(get_uint(map, "start_time_usec"), UINT64_C(1767225600000000));
        ASSERT_EQ(get_uint(map, "end_time_usec"), UINT64_C(4102444800000000));
        ASSERT_TRUE(str_is(msg_get(map, "catchup"), "none"));
        ASSERT_TRUE(str_is(msg_get(map, "overlap"), "buffer_all"));
        ASSERT_TRUE(str_is(msg_get(map, "workflow_type"), "Backup"));
        ASSERT_EQ(msg_get(map, "input")->type, MSGPACK_OBJECT_BIN);
        ASSERT_TRUE(msg_get(map, "pause_on_failure")->via.boolean);
        ASSERT_TRUE(msg_get(map, "wake_system")->via.boolean);
        msgpack_unpacked_destroy(&u);
        msgbuf_done(&last);
}

TEST(continuation_joins_with_one_blank) {
        msgpack_unpacked u;
        unsigned line;
        char err[512];

        ASSERT_OK(parse("[Schedule]\nOnCalendar=*-*-* 03:00   \\\n    Europe/Berlin\n", &u, &line,
                        err, sizeof(err)));
        ASSERT_TRUE(str_is(&msg_get(&u.data, "calendars")->via.array.ptr[0],
                           "*-*-* 03:00 Europe/Berlin"));
        msgpack_unpacked_destroy(&u);
        msgbuf_done(&last);
}

TEST(mistakes_name_their_line) {
        assert_refused("", 0, "no [Schedule] section");
        assert_refused("[Timer]\nOnCalendar=daily\n", 1, "unknown section [Timer]");
        assert_refused("OnCalendar=daily\n", 1, "outside [Schedule]");
        assert_refused("[Schedule]\nOnCalendar daily\n", 2, "expected Key=Value");
        assert_refused("[Schedule]\n\n# c\nFrobnicate=1\n", 4, "unknown key Frobnicate=");
        assert_refused("[Schedule]\nOnCalendar=*-*-* 25:00\n", 2,
                       "OnCalendar=: hour 25 is out of range 0..23");
        assert_refused("[Schedule]\nInterval=soon\n", 2, "Interval=: expected a time span");
        assert_refused("[Schedule]\nRandomizedDelaySec=5 parsecs\n", 2,
                       "RandomizedDelaySec=: expected a time span");
        assert_refused("[Schedule]\nPersistent=maybe\n", 2, "Persistent=: expected a boolean");
        assert_refused("[Schedule]\nWakeSystem=2\n", 2, "WakeSystem=: expected a boolean");
        assert_refused("[Schedule]\nInput={oops\n", 2, "Input=: invalid JSON");
        assert_refused("[Schedule]\nStartTime=daily\n", 2, "StartTime=: expected @SECONDS");
        /* A continued line counts from where it starts. */
        assert_refused("[Schedule]\nOnCalendar=*-*-* \\\n  99:00\nWorkflowType=X\n", 2, "hour 99");
}

DEFINE_TEST_MAIN();
