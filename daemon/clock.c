/* See clock.h. sd-event realtime sources are armed at (deadline - offset), see manager.c. */

#include "daemon/clock.h"

#include <time.h>

static uint64_t offset_usec;

uint64_t clock_now(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000 + offset_usec;
}

void clock_skip(uint64_t usec) {
        offset_usec += usec;
}

uint64_t clock_offset(void) {
        return offset_usec;
}
