/* Fuzzes the history linter (proto/history-lint.h), the reader of every stored history: the
 * daemon's VerifyHistory and durablectl verify, the walk of test builds at each clean stop, the
 * crash loop's checker. The input is one msgpack value, an array of events in the store's shape,
 * each an array [event_id, type, time, attrs] (attrs a map, nil or absent), then optionally the
 * run's status as a last unsigned integer. The attributes are passed both decoded and as the
 * bytes the store keeps (history_lint_event_raw(); an empty map for none), and the two linters
 * must agree. Besides "no
 * crash, no leak": a history is either sound or names its first problem, once a problem is found
 * every later event is refused, and the count of checked events grows by one per event. */

#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <string.h>

#include <msgpack.h>

#include "proto/history-lint.h"
#include "proto/msg.h"
#include "tests/lib/fuzz.h"

#define HISTORY_INPUT_MAX 65536

static bool get_uint(const msgpack_object *o, uint64_t *ret) {
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return false;
        *ret = o->via.u64;
        return true;
}

/* One event into both linters; false when the element is not an event (it is skipped). */
static bool lint_one(HistoryLint *decoded, HistoryLint *raw, const msgpack_object *e) {
        const msgpack_object *attrs = NULL;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        uint64_t id, type, time;
        int r1, r2;

        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 3 ||
            !get_uint(&e->via.array.ptr[0], &id) || !get_uint(&e->via.array.ptr[1], &type) ||
            !get_uint(&e->via.array.ptr[2], &time) || type > INT32_MAX)
                return false;
        if (e->via.array.size > 3 && e->via.array.ptr[3].type == MSGPACK_OBJECT_MAP)
                attrs = &e->via.array.ptr[3];

        r1 = history_lint_event(decoded, id, (EventType) type, time, attrs);
        /* The store keeps an empty map for an event without attributes. */
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (attrs)
                assert(msgpack_pack_object(&pk, *attrs) == 0);
        else
                assert(msgpack_pack_map(&pk, 0) == 0);
        r2 = history_lint_event_raw(raw, id, (EventType) type, time, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        assert(r1 == 0 || r1 == -EBADMSG);
        assert(r1 == r2);
        assert((r1 == 0) == (history_lint_problem(decoded) == NULL));
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(history_lint_freep) HistoryLint *decoded = NULL, *raw = NULL;
        const msgpack_object *events;
        msgpack_unpacked u;
        uint64_t status = 0;
        size_t off = 0, n = 0;
        int r;

        if (size > HISTORY_INPUT_MAX || msg_validate((const char *) data, size) < 0)
                return 0;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, (const char *) data, size, &off) != MSGPACK_UNPACK_SUCCESS ||
            u.data.type != MSGPACK_OBJECT_ARRAY) {
                msgpack_unpacked_destroy(&u);
                return 0;
        }
        events = &u.data;
        assert(history_lint_new(&decoded) == 0);
        assert(history_lint_new(&raw) == 0);
        for (uint32_t i = 0; i < events->via.array.size; i++) {
                const msgpack_object *e = &events->via.array.ptr[i];

                if (i + 1 == events->via.array.size && get_uint(e, &status))
                        break;
                if (!lint_one(decoded, raw, e))
                        continue;
                n++;
                if (history_lint_problem(decoded))
                        assert(history_lint_problem_event(decoded) > 0 || n > 0);
        }
        if (!history_lint_problem(decoded))
                assert(history_lint_count(decoded) == n);
        r = history_lint_end(decoded, status <= INT32_MAX ? (WorkflowStatus) status : 0, 0);
        assert(r == 0 || r == -EBADMSG);
        assert((r == 0) == (history_lint_problem(decoded) == NULL));
        msgpack_unpacked_destroy(&u);
        return 0;
}
