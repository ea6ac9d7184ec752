/* Requests to durabled; see call.h. */

#include "cli/call.h"

#include <errno.h>
#include <string.h>

#include "cli/output.h"
#include "proto/json.h"
#include "proto/msg.h"

void answer_done(Answer *a) {
        if (!a->buf)
                return;
        msgpack_unpacked_destroy(&a->unpacked);
        a->buf = dur_buf_free(a->buf);
        a->map = NULL;
}

static bool field_present(const Field *f) {
        switch (f->type) {
        case FIELD_STR:
        case FIELD_BIN_STR:
                return f->str;
        case FIELD_UINT:
                return f->uint > 0 || f->boolean; /* FIELD_UINT_IF() sends a 0 it was given */
        case FIELD_BOOL:
                return true;
        case FIELD_DOUBLE:
                return f->dbl != 0;
        case FIELD_PAYLOAD:
        case FIELD_JSON:
                return f->json;
        case FIELD_STRV:
                return f->n > 0;
        }
        return false;
}

static int pack_field(msgpack_packer *pk, const Field *f) {
        int r = msg_pack_str(pk, f->key);

        if (r < 0)
                return r;
        switch (f->type) {
        case FIELD_STR:
                return msg_pack_str(pk, f->str);
        case FIELD_BIN_STR:
                return msg_pack_bin(pk, f->str, strlen(f->str));
        case FIELD_UINT:
                return msgpack_pack_uint64(pk, f->uint);
        case FIELD_BOOL:
                return f->boolean ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        case FIELD_DOUBLE:
                return msgpack_pack_double(pk, f->dbl);
        case FIELD_PAYLOAD:
                return json_pack_payload(f->json, pk);
        case FIELD_JSON:
                return json_to_msgpack(f->json, pk);
        case FIELD_STRV:
                r = msgpack_pack_array(pk, f->n);
                for (size_t i = 0; r >= 0 && i < f->n; i++)
                        r = msg_pack_str(pk, f->strv[i]);
                return r;
        }
        return -EINVAL;
}

/* Packs {op, fields...} into @sb; the "id" is added by libdurable. */
static int pack_request(msgpack_sbuffer *sb, const char *op, const Field *fields, size_t n) {
        msgpack_packer pk;
        size_t present = 0;
        int r;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        for (size_t i = 0; i < n; i++)
                present += field_present(&fields[i]);
        r = msgpack_pack_map(&pk, present + 1);
        if (r >= 0)
                r = msg_pack_kv_str(&pk, "op", op);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (field_present(&fields[i]))
                        r = pack_field(&pk, &fields[i]);
        return r < 0 ? -ENOMEM : 0;
}

/* The daemon's own words when it answered with an error, else the local cause. */
static int call_error(dur_client *c, const char *op, int r) {
        const char *code = dur_client_error_code(c), *message = dur_client_error_message(c);

        if (code && *code)
                return ctl_error_errno(r, "%s (%s)", message && *message ? message : op, code);
        return ctl_error_errno(r, "%s failed: %m", op);
}

static int call(dur_client *c,
                const char *op,
                const Field *fields,
                size_t n_fields,
                Answer *ret,
                bool timeout_ok) {
        _cleanup_(msgpack_sbuffer_destroy) msgpack_sbuffer sb = { 0 };
        dur_buf request, *answer = NULL;
        int r;

        r = pack_request(&sb, op, fields, n_fields);
        if (r < 0)
                return ctl_error_errno(r, "Failed to build %s request: %m", op);
        request = (dur_buf){ .data = sb.data, .size = sb.size };
        r = dur_client_call(c, &request, &answer);
        if (r < 0 && timeout_ok && dur_client_error_code(c) &&
            streq(dur_client_error_code(c), "deadline_exceeded"))
                return -ETIMEDOUT;
        if (r < 0)
                return call_error(c, op, r);
        *ret = (Answer){ .buf = answer };
        msgpack_unpacked_init(&ret->unpacked);
        r = msg_decode(answer->data, answer->size, &ret->unpacked);
        if (r < 0) {
                answer_done(ret);
                return ctl_error_errno(EPROTO, "durabled sent a malformed answer to %s", op);
        }
        ret->map = &ret->unpacked.data;
        return 0;
}

int ctl_call(dur_client *c, const char *op, const Field *fields, size_t n_fields, Answer *ret) {
        return call(c, op, fields, n_fields, ret, false);
}

int ctl_call_or_timeout(
        dur_client *c, const char *op, const Field *fields, size_t n_fields, Answer *ret) {
        return call(c, op, fields, n_fields, ret, true);
}

int answer_parse(Answer *a, const msgpack_object *map, const MsgField *fields, void *out) {
        char err[256];
        int r;

        r = msg_parse(map, a->unpacked.zone, fields, out, err, sizeof(err));
        if (r == -ENOMEM)
                return ctl_error_errno(r, "Out of memory");
        if (r < 0)
                return ctl_error_errno(EPROTO, "durabled sent an unexpected answer: %s", err);
        return 0;
}
