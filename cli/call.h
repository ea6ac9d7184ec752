#pragma once
/* One request to durabled and its answer. A request is a list of Fields (absent values are left
 * out of the map, as doc/protocol.md reads "absent = not set"); the answer is decoded with
 * proto/msg.h and kept in an Answer until answer_done(). ctl_call() is the boundary where a
 * failed request is reported: it prints the daemon's message and code on stderr. */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/cleanup.h"
#include "durable/durable.h"
#include "proto/msg.h"

typedef enum FieldType {
        FIELD_STR,     /* NULL: left out */
        FIELD_BIN_STR, /* a string sent as bytes (a bin: task tokens); NULL: left out */
        FIELD_UINT,    /* 0: left out */
        FIELD_BOOL,    /* always sent */
        FIELD_PAYLOAD, /* JSON value sent as a payload; NULL: left out */
        FIELD_JSON,    /* JSON value sent as the same msgpack value; NULL: left out */
        FIELD_STRV,    /* array of n strings; n = 0: left out */
        FIELD_DOUBLE,  /* 0: left out */
} FieldType;

typedef struct Field {
        const char *key;
        FieldType type;
        const char *str;
        uint64_t uint;
        bool boolean;
        const json_t *json;
        char *const *strv;
        size_t n;
        double dbl;
} Field;

#define FIELD_STR(k, v) ((Field){ .key = (k), .type = FIELD_STR, .str = (v) })
#define FIELD_BIN_STR(k, v) ((Field){ .key = (k), .type = FIELD_BIN_STR, .str = (v) })
#define FIELD_UINT(k, v) ((Field){ .key = (k), .type = FIELD_UINT, .uint = (v) })
/* An unsigned integer sent when @given, 0 included (a 0 that clears a setting). */
#define FIELD_UINT_IF(k, v, given) \
        ((Field){ .key = (k), .type = FIELD_UINT, .uint = (v), .boolean = (given) })
#define FIELD_BOOL(k, v) ((Field){ .key = (k), .type = FIELD_BOOL, .boolean = (v) })
#define FIELD_DOUBLE(k, v) ((Field){ .key = (k), .type = FIELD_DOUBLE, .dbl = (v) })
#define FIELD_PAYLOAD(k, v) ((Field){ .key = (k), .type = FIELD_PAYLOAD, .json = (v) })
#define FIELD_JSON(k, v) ((Field){ .key = (k), .type = FIELD_JSON, .json = (v) })
#define FIELD_STRV(k, v, count) \
        ((Field){ .key = (k), .type = FIELD_STRV, .strv = (v), .n = (count) })

typedef struct Answer {
        dur_buf *buf;
        msgpack_unpacked unpacked;
        const msgpack_object *map; /* the answer's root map */
} Answer;

/* Frees what the answer holds; safe on a zeroed Answer. */
void answer_done(Answer *a);

/* Sends @op with @fields and fills *ret with the answer. On failure prints
 * "durablectl: <message> (<code>)" and returns the negative errno. */
int ctl_call(dur_client *c, const char *op, const Field *fields, size_t n_fields, Answer *ret);
#define CTL_CALL(c, op, ret, ...)                           \
        ctl_call((c), (op), (const Field[]){ __VA_ARGS__ }, \
                 ELEMENTSOF(((const Field[]){ __VA_ARGS__ })), (ret))

/* The same, but a long poll that ran out (deadline_exceeded) returns -ETIMEDOUT quietly. */
int ctl_call_or_timeout(
        dur_client *c, const char *op, const Field *fields, size_t n_fields, Answer *ret);
#define CTL_CALL_OR_TIMEOUT(c, op, ret, ...)                           \
        ctl_call_or_timeout((c), (op), (const Field[]){ __VA_ARGS__ }, \
                            ELEMENTSOF(((const Field[]){ __VA_ARGS__ })), (ret))

/* Reads the fields of @map as @fields says (proto/msg.h), strings copied into the answer's zone.
 * A field of the wrong type is reported as a protocol error. */
int answer_parse(Answer *a, const msgpack_object *map, const MsgField *fields, void *out);
