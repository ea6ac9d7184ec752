#pragma once
/* One string hash for the daemon's tables: 32-bit FNV-1a. Page tokens carry it (api-sock.c), so
 * its values must not change. NULL hashes as "". */

#include <stddef.h>
#include <stdint.h>

static inline uint32_t string_hash(const char *s) {
        uint32_t h = 2166136261u;

        for (; s && *s; s++)
                h = (h ^ (uint8_t) *s) * 16777619u;
        return h;
}
