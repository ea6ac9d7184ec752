#pragma once
/* ApiError: the sentence a user reads, travelling with the negative errno of a failed request
 * (STYLE.md §4, the sd_bus_error_setf() pattern). */

#include <stdarg.h>
#include <stdbool.h>

#include "common/cleanup.h"

typedef struct ApiError {
        char message[640];
        bool keep_writes; /* the failed request still wrote something that must be kept */
} ApiError;

/* Writes the message and returns @error (negative errno). */
int api_error_set(ApiError *e, int error, const char *fmt, ...) _printf_(3, 4);
