/* Fuzzes common/calendar.h, which parses specs from the socket, unit files and the command line:
 * any input either parses or is refused with a sentence; a spec that parses prints a normalized
 * form that parses again to the same form, and its next elapses strictly increase. */

#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/calendar.h"
#include "tests/lib/fuzz.h"

#define MAX_INPUT 512
#define BASE_USEC UINT64_C(1767225600000000) /* 2026-01-01 00:00:00 UTC */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(calendar_spec_freep) CalendarSpec *spec = NULL, *again = NULL;
        _cleanup_free_ char *text = NULL, *norm = NULL, *norm2 = NULL;
        char err[256] = "";
        uint64_t t = BASE_USEC, next;
        int r;

        if (size > MAX_INPUT)
                return 0;
        text = malloc(size + 1);
        assert(text);
        memcpy(text, data, size);
        text[size] = 0;
        r = calendar_spec_from_string(text, &spec, err, sizeof(err));
        if (r < 0) {
                assert(r == -EINVAL || r == -ERANGE || r == -ENOBUFS);
                assert(err[0] != 0);
                assert(!spec);
                return 0;
        }
        assert(calendar_spec_to_string(spec, &norm) == 0);
        assert(calendar_spec_from_string(norm, &again, err, sizeof(err)) == 0);
        assert(calendar_spec_to_string(again, &norm2) == 0);
        assert(strcmp(norm, norm2) == 0);
        for (int i = 0; i < 3; i++) {
                r = calendar_spec_next(spec, t, &next);
                if (r < 0) {
                        assert(r == -ENOENT || r == -EDEADLK);
                        break;
                }
                assert(next > t);
                t = next;
        }
        return 0;
}
