#pragma once
/* Frames: a 4-byte big-endian body length, then the body (one msgpack map). Several frames may be
 * built back to back in one sbuffer. */

#include <stddef.h>
#include <sys/types.h>

#include <msgpack.h>

#define FRAME_HEADER_SIZE 4
#define FRAME_SIZE_MAX_DEFAULT (4u * 1024 * 1024)

/* Reserves the header; returns its offset for frame_end(). */
size_t frame_begin(msgpack_sbuffer *sb);
/* Writes the length of everything appended since frame_begin(). */
void frame_end(msgpack_sbuffer *sb, size_t start);

/* Looks at buffered input. Returns 0 while the first frame is incomplete, the size of the first
 * frame (header included) once complete, with *ret_body pointing at its body, or -E2BIG when the
 * announced body is larger than @max. */
ssize_t frame_peek(const char *buf, size_t len, size_t max, const char **ret_body,
                   size_t *ret_body_len);
