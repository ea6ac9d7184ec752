/* Fuzzes the schedule-unit parser (daemon/schedule-unit.h, durabled.schedule(5)): any text either
 * becomes one complete msgpack map or is refused with -EINVAL, a message, and the number of a line
 * the text has (0 for the whole file). A map then goes, as at start-up, through the checks of
 * CreateSchedule (schedule_def_parse()); a definition they accept packs to a map that they accept
 * again and that packs to the same bytes, and its next time can be computed. */

#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "daemon/schedule-unit.h"
#include "daemon/schedule.h"
#include "tests/lib/fuzz.h"

/* The definition of @map, checked and packed into @out: 0, or -EINVAL with a message. */
static int normalize(const msgpack_object *map, msgpack_zone *zone, MsgBuf *out, bool next) {
        ScheduleDef d = {};
        ApiError e = {};
        uint64_t t;
        int r;

        r = schedule_def_parse(map, zone, "fuzz", &d, &e);
        if (r < 0) {
                assert(r == -EINVAL || r == -ENOMEM || r == -ENOBUFS || r == -EUSERS);
                assert(r == -ENOMEM || e.message[0]);
                schedule_def_done(&d);
                return r;
        }
        assert(schedule_def_pack(&d, &out->pk) >= 0);
        assert(msgbuf_error(out) >= 0);
        if (next) {
                r = schedule_def_next(&d, UINT64_C(1700000000) * 1000000, &t);
                assert(r >= 0 || r == -ENOENT);
        }
        schedule_def_done(&d);
        return 0;
}

/* The second round of normalize(): what it packed must read back and pack to the same bytes. */
static void check_round_trip(const MsgBuf *first) {
        msgpack_unpacked u;
        MsgBuf again;

        msgbuf_init(&again);
        msgpack_unpacked_init(&u);
        assert(msg_decode(first->sb.data, first->sb.size, &u) >= 0);
        assert(normalize(&u.data, u.zone, &again, false) == 0);
        assert(again.sb.size == first->sb.size);
        assert(memcmp(again.sb.data, first->sb.data, first->sb.size) == 0);
        msgpack_unpacked_destroy(&u);
        msgbuf_done(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text, err[640] = "";
        unsigned line = 0, lines = 1;
        msgpack_unpacked u;
        size_t off = 0;
        MsgBuf out, norm;
        int r;

        if (memchr(data, 0, size))
                return 0; /* the daemon refuses files with a NUL before parsing */
        text = malloc(size + 1);
        assert(text);
        memcpy(text, data, size);
        text[size] = 0;
        for (size_t i = 0; i < size; i++)
                lines += text[i] == '\n';

        msgbuf_init(&out);
        r = schedule_unit_parse(text, &out, &line, err, sizeof(err));
        if (r < 0) {
                assert(r == -EINVAL || r == -ENOMEM);
                assert(r != -EINVAL || (err[0] && line <= lines));
        } else {
                assert(msgbuf_error(&out) >= 0);
                msgpack_unpacked_init(&u);
                assert(msgpack_unpack_next(&u, out.sb.data, out.sb.size, &off) ==
                       MSGPACK_UNPACK_SUCCESS);
                assert(off == out.sb.size);
                assert(u.data.type == MSGPACK_OBJECT_MAP);
                msgbuf_init(&norm);
                if (normalize(&u.data, u.zone, &norm, true) == 0)
                        check_round_trip(&norm);
                msgbuf_done(&norm);
                msgpack_unpacked_destroy(&u);
        }
        msgbuf_done(&out);
        free(text);
        return 0;
}
