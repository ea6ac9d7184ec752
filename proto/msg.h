#pragma once
/* Safe msgpack decoding and small packing helpers.
 *
 * msg_decode() first walks the bytes without allocating: every container must claim no more
 * elements than the bytes left could hold, there must be exactly one value, and nesting is at
 * most MSG_DEPTH_MAX (msg_validate() is the same walk without the bound on nesting). Only then does msgpack-c unpack it, so a hostile header such as "array of
 * 2^32 elements" costs nothing (DESIGN.md §4). msg_parse() reads the fields of a request map
 * from a table and names the offending field in its error. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define MSG_DEPTH_MAX 32

typedef struct MsgBin {
        const char *ptr;
        size_t size;
} MsgBin;

int msg_validate(const char *buf, size_t len);
/* Validates and unpacks one value; the root must be a map. -EBADMSG otherwise. */
int msg_decode(const char *buf, size_t len, msgpack_unpacked *ret);

/* The value of @key in @map; NULL when absent or nil. */
const msgpack_object *msg_get(const msgpack_object *map, const char *key);
bool msg_str_eq(const msgpack_object *o, const char *s);
/* A NUL-terminated copy of the string @o (to free()), or NULL on OOM. Not strndup(): the bytes
 * of a decoded frame need not be followed by anything (strndup() may look one byte further). */
char *msg_strdup(const msgpack_object *o);

typedef enum MsgType {
        MSG_STR,    /* const char * (NUL-terminated copy in the zone; embedded NULs refused) */
        MSG_UINT,   /* uint64_t */
        MSG_BOOL,   /* bool */
        MSG_DOUBLE, /* double (integers accepted) */
        MSG_BIN,    /* MsgBin */
        MSG_MAP,    /* const msgpack_object * */
        MSG_ARRAY,  /* const msgpack_object * */
        MSG_ANY,    /* const msgpack_object * */
} MsgType;

typedef struct MsgField {
        const char *key;
        MsgType type;
        size_t offset;
        bool required;
        size_t max_len; /* MSG_STR, MSG_BIN: longest accepted; 0 = no limit; MSG_PAYLOAD_LIMIT */
} MsgField;

/* max_len of a payload field: the process's payload limit, msg_payload_limit(). */
#define MSG_PAYLOAD_LIMIT SIZE_MAX
#define MSG_PAYLOAD_LIMIT_DEFAULT (2u << 20) /* Temporal's limit.blobSize.error */

/* The largest payload (an input, a result, heartbeat details) a payload field accepts: 2 MiB
 * unless the daemon was told otherwise (durabled --max-payload-size) when it started. */
size_t msg_payload_limit(void);
void msg_set_payload_limit(size_t limit);

/* Fills the struct at @out from @map as @fields says (a table ended by a NULL key). Absent
 * optional fields are left as they were. On error returns -EINVAL (missing, mistyped, a string
 * too long or with a NUL byte) or -ENOBUFS (a bin larger than its max_len) and writes a sentence
 * naming the field into @err. */
int msg_parse(const msgpack_object *map, msgpack_zone *zone, const MsgField *fields, void *out,
              char *err, size_t errlen);

/* A packer over a growable buffer whose failures stick: after one failed write every later write
 * is refused, so a half-written value can never be used. Check msgbuf_error() once at the end. */
typedef struct MsgBuf {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        bool failed;
} MsgBuf;

void msgbuf_init(MsgBuf *b);
void msgbuf_done(MsgBuf *b);
void msgbuf_reset(MsgBuf *b);
int msgbuf_error(const MsgBuf *b); /* -ENOMEM after a failed write, else 0 */

/* Writes @map (bytes of a msgpack map) to @out with one more entry, key @key and uint @value. */
int msg_map_add_uint(MsgBuf *out, const void *map, size_t size, const char *key, uint64_t value);

/* Packing helpers; all return what msgpack_pack_* returns (0 on success). */
int msg_pack_str(msgpack_packer *pk, const char *s);
int msg_pack_strn(msgpack_packer *pk, const char *s, size_t n);
int msg_pack_bin(msgpack_packer *pk, const void *p, size_t n);
int msg_pack_kv_str(msgpack_packer *pk, const char *key, const char *value);
int msg_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t value);
int msg_pack_kv_bool(msgpack_packer *pk, const char *key, bool value);
int msg_pack_kv_bin(msgpack_packer *pk, const char *key, const void *p, size_t n);
/* Appends already-encoded msgpack bytes to the packer's sbuffer. */
int msg_pack_raw(msgpack_packer *pk, const void *p, size_t n);
