/* See killpoint.h. */

#include "daemon/killpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if DURABLED_FAULT_INJECTION
void killpoint(const char *name) {
        static unsigned long hits;
        const char *spec = getenv("DURABLED_KILL_AT");
        size_t n = strlen(name);

        if (!spec || strncmp(spec, name, n) != 0 || spec[n] != ':')
                return;
        if (++hits == strtoul(spec + n + 1, NULL, 10))
                (void) raise(SIGKILL);
}
#endif
