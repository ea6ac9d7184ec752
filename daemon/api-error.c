/* See api-error.h. */

#include "daemon/api-error.h"

#include <stdio.h>

int api_error_set(ApiError *e, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return error;
}
