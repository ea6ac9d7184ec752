/* Fuzzes the list filter (daemon/filter.h): any text either compiles to an SQL condition with
 * exactly one bound parameter per '?' and balanced parentheses, or fails with -EINVAL and a
 * message that names a position. Custom attributes get a type from the text's length, so that
 * every type's code paths run. */

#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/filter.h"
#include "tests/lib/fuzz.h"

static int lookup(const char *name, SaType *ret, void *userdata) {
        size_t n = strlen(name);

        if (n % 8 == 0)
                return -ENOENT;
        *ret = (SaType) (1 + n % 7);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *q, err[256] = "";
        FilterSql f = {};
        size_t marks = 0;
        long depth = 0;
        int r;

        q = malloc(size + 1); /* not strndup(): the input need not hold a NUL */
        assert(q);
        memcpy(q, data, size);
        q[size] = 0;
        r = filter_compile(q, lookup, NULL, &f, err, sizeof(err));
        if (r < 0) {
                assert(r == -EINVAL || r == -ENOMEM);
                assert(r != -EINVAL || strstr(err, "bad query at position "));
                free(q);
                return 0;
        }
        assert(f.where && f.order_column);
        for (const char *p = f.where; *p; p++) {
                marks += *p == '?';
                depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
                assert(depth >= 0);
                assert(*p != '\'' && *p != '"'); /* no value is pasted into the SQL text */
        }
        assert(depth == 0);
        assert(marks == f.n_params);
        filter_sql_done(&f);
        free(q);
        return 0;
}
