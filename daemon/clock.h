#pragma once
/* The daemon's one clock (DESIGN.md §8): every read of wall-clock time goes through here, so that
 * the whole daemon can run on a shifted clock. Times are usec since the epoch (CLOCK_REALTIME). */

#include <stdint.h>

uint64_t clock_now(void);
/* Shifts the daemon's clock forward by @usec (test environments skip time this way). */
void clock_skip(uint64_t usec);
uint64_t clock_offset(void);
