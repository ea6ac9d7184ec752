/* Frame header encoding; see frame.h. */

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "proto/frame.h"

size_t frame_begin(msgpack_sbuffer *sb) {
        static const char zero[FRAME_HEADER_SIZE] = { 0 };
        size_t start = sb->size;

        (void) msgpack_sbuffer_write(sb, zero, sizeof(zero));
        return start;
}

void frame_end(msgpack_sbuffer *sb, size_t start) {
        uint32_t n = (uint32_t) (sb->size - start - FRAME_HEADER_SIZE);
        unsigned char *p = (unsigned char *) sb->data + start;

        p[0] = n >> 24;
        p[1] = n >> 16;
        p[2] = n >> 8;
        p[3] = n;
}

ssize_t frame_peek(const char *buf, size_t len, size_t max, const char **ret_body,
                   size_t *ret_body_len) {
        const unsigned char *p = (const unsigned char *) buf;
        size_t n;

        if (len < FRAME_HEADER_SIZE)
                return 0;
        n = (size_t) p[0] << 24 | (size_t) p[1] << 16 | (size_t) p[2] << 8 | p[3];
        if (n > max)
                return -E2BIG;
        if (len - FRAME_HEADER_SIZE < n)
                return 0;
        *ret_body = buf + FRAME_HEADER_SIZE;
        *ret_body_len = n;
        return (ssize_t) (n + FRAME_HEADER_SIZE);
}
