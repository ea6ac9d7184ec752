#pragma once
/* The libFuzzer entry point every tests/fuzz/fuzz-<target>.c defines. With -Dfuzz=true it links
 * with -fsanitize=fuzzer; otherwise fuzz-main.c replays the corpus through it (suite
 * 'fuzz-regress'). It returns 0 and must not keep state between calls. */

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
