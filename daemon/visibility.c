/* Visibility: memo and search attributes (visibility.h). A run's attributes are kept twice: as
 * the map DescribeWorkflow answers with (table visibility), and as indexed values (table sattrs),
 * one row per Keyword, Int, Double, Bool or Datetime value, per KeywordList element and per Text
 * token (filter.c explains how conditions use them). */

#include "daemon/visibility.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "daemon/filter.h"
#include "proto/msg.h"

static void blob_done(Blob *b) {
        free(b->ptr);
        *b = (Blob){};
}

static int str_copy(const msgpack_object *o, char *buf, size_t size) {
        if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
            memchr(o->via.str.ptr, 0, o->via.str.size))
                return -EINVAL;
        memcpy(buf, o->via.str.ptr, o->via.str.size);
        buf[o->via.str.size] = 0;
        return 0;
}

static bool name_valid(const char *n) {
        static const char *const builtin[] = { "WorkflowId", "WorkflowType",     "RunId",
                                               "TaskQueue",  "ExecutionStatus",  "StartTime",
                                               "CloseTime",  "ExecutionDuration" };
        if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || *n == '_'))
                return false;
        for (const char *p = n; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                      (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(builtin); i++)
                if (streq(n, builtin[i]))
                        return false;
        return true;
}

typedef struct SaValue {
        char name[256];
        SaType type;
        const msgpack_object *value; /* NULL: remove */
        uint64_t usec;               /* Datetime */
} SaValue;

static int check_string(const msgpack_object *v) {
        return v->type == MSGPACK_OBJECT_STR && v->via.str.size <= SA_VALUE_MAX &&
                               !memchr(v->via.str.ptr, 0, v->via.str.size)
                       ? 0
                       : -EINVAL;
}

/* Checks the value of one attribute against its type. */
static int check_value(SaValue *a) {
        const msgpack_object *v = a->value;
        char t[64];

        switch (a->type) {
        case SA_KEYWORD:
        case SA_TEXT:
                return check_string(v);
        case SA_INT:
                return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                               ? (v->via.u64 <= INT64_MAX ? 0 : -EINVAL)
                       : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? 0
                                                                    : -EINVAL;
        case SA_DOUBLE:
                return v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64 ||
                                       v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                                       v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                               ? 0
                               : -EINVAL;
        case SA_BOOL:
                return v->type == MSGPACK_OBJECT_BOOLEAN ? 0 : -EINVAL;
        case SA_DATETIME:
                if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                        a->usec = v->via.u64;
                        return 0;
                }
                if (str_copy(v, t, sizeof(t)) < 0)
                        return -EINVAL;
                return filter_parse_datetime(t, &a->usec);
        case SA_KEYWORD_LIST:
                if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > SA_KEYS_MAX)
                        return -EINVAL;
                for (uint32_t i = 0; i < v->via.array.size; i++)
                        if (check_string(&v->via.array.ptr[i]) < 0)
                                return -EINVAL;
                return 0;
        default:
                return -EINVAL;
        }
}

/* Decodes entry @kv of a search attribute map into @ret. */
static int parse_entry(Store *s,
                       const msgpack_object_kv *kv,
                       bool upsert,
                       SaValue *ret,
                       char *err,
                       size_t errlen) {
        const msgpack_object *t, *v;
        char tn[32];
        SaType known;
        int r;

        *ret = (SaValue){};
        if (str_copy(&kv->key, ret->name, sizeof(ret->name)) < 0 || !name_valid(ret->name)) {
                snprintf(err, errlen,
                         "search attribute names are letters, digits and '_' (at most 255 bytes, "
                         "not a built-in name such as WorkflowId)");
                return -EINVAL;
        }
        if (upsert && kv->val.type == MSGPACK_OBJECT_NIL)
                return 0; /* remove */
        t = kv->val.type == MSGPACK_OBJECT_MAP ? msg_get(&kv->val, "type") : NULL;
        v = kv->val.type == MSGPACK_OBJECT_MAP ? msg_get(&kv->val, "value") : NULL;
        if (!t || !v || str_copy(t, tn, sizeof(tn)) < 0 ||
            (ret->type = sa_type_from_string(tn)) < 0) {
                snprintf(err, errlen,
                         "search attribute '%s' must be a map {type, value}, type one of Keyword, "
                         "Text, Int, Double, Bool, Datetime, KeywordList",
                         ret->name);
                return -EINVAL;
        }
        ret->value = v;
        if (check_value(ret) < 0) {
                snprintf(err, errlen, "search attribute '%s': the value is not a valid %s%s",
                         ret->name, tn,
                         ret->type == SA_DATETIME ? " (usec since the epoch or RFC 3339)"
                         : ret->type == SA_KEYWORD || ret->type == SA_TEXT
                                 ? " (a string of at most 2048 bytes)"
                                 : "");
                return -EINVAL;
        }
        r = store_sattr_type(s, ret->name, &known);
        if (r >= 0 && known != ret->type) {
                snprintf(err, errlen, "search attribute '%s' is of type %s, not %s", ret->name,
                         sa_type_to_string(known), tn);
                return -EINVAL;
        }
        return r == -ENOENT ? 0 : r;
}

static int check_sa(Store *s, const msgpack_object *sa, bool upsert, char *err, size_t errlen) {
        SaValue a;
        int r;

        if (sa->type != MSGPACK_OBJECT_MAP) {
                snprintf(err, errlen, "field \"search_attributes\" must be a map");
                return -EINVAL;
        }
        if (sa->via.map.size > SA_KEYS_MAX) {
                snprintf(err, errlen, "more than %d search attributes", SA_KEYS_MAX);
                return -EINVAL;
        }
        for (uint32_t i = 0; i < sa->via.map.size; i++) {
                r = parse_entry(s, &sa->via.map.ptr[i], upsert, &a, err, errlen);
                if (r < 0)
                        return r;
                for (uint32_t k = 0; k < i; k++)
                        if (msgpack_object_equal(sa->via.map.ptr[k].key, sa->via.map.ptr[i].key)) {
                                snprintf(err, errlen, "search attribute '%s' is given twice",
                                         a.name);
                                return -EINVAL;
                        }
        }
        return 0;
}

int visibility_check(Store *s,
                     const msgpack_object *memo,
                     const msgpack_object *sa,
                     bool upsert,
                     char *err,
                     size_t errlen) {
        MsgBuf b;
        int r;

        if (memo) {
                if (memo->type != MSGPACK_OBJECT_MAP) {
                        snprintf(err, errlen, "field \"memo\" must be a map");
                        return -EINVAL;
                }
                for (uint32_t i = 0; i < memo->via.map.size; i++)
                        if (memo->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
                                snprintf(err, errlen, "the keys of \"memo\" must be strings");
                                return -EINVAL;
                        }
                msgbuf_init(&b);
                (void) msgpack_pack_object(&b.pk, *memo);
                r = msgbuf_error(&b) < 0 ? -ENOMEM : b.sb.size > MEMO_MAX ? -E2BIG : 0;
                msgbuf_done(&b);
                if (r == -E2BIG)
                        snprintf(err, errlen, "field \"memo\" is larger than %u bytes", MEMO_MAX);
                if (r < 0)
                        return r == -E2BIG ? -EINVAL : r;
        }
        return sa ? check_sa(s, sa, upsert, err, errlen) : 0;
}

typedef struct TokenIns {
        Store *s;
        const char *run_id, *name;
} TokenIns;

static int insert_token(const char *token, void *userdata) {
        TokenIns *t = userdata;
        FilterParam p = { .kind = FILTER_PARAM_TEXT, .s = (char *) token };
        return store_sattr_insert(t->s, t->run_id, t->name, &p);
}

static int insert_str(Store *s, const char *run_id, const char *name, const msgpack_object *o) {
        _cleanup_free_ char *str = msg_strdup(o);
        FilterParam p = { .kind = FILTER_PARAM_TEXT };

        if (!str)
                return -ENOMEM;
        p.s = str;
        return store_sattr_insert(s, run_id, name, &p);
}

/* Replaces the indexed values of one attribute. */
static int index_values(Store *s, const char *run_id, const SaValue *a) {
        const msgpack_object *v = a->value;
        FilterParam p = { .kind = FILTER_PARAM_INT };
        _cleanup_free_ char *text = NULL;
        int r;

        r = store_sattrs_delete(s, run_id, a->name);
        if (r < 0 || !v)
                return r;
        r = store_sattr_register(s, a->name, a->type);
        if (r < 0)
                return r;
        switch (a->type) {
        case SA_KEYWORD:
                return insert_str(s, run_id, a->name, v);
        case SA_TEXT:
                text = msg_strdup(v);
                if (!text)
                        return -ENOMEM;
                return filter_text_tokens(text, insert_token, &(TokenIns){ s, run_id, a->name });
        case SA_KEYWORD_LIST:
                for (uint32_t i = 0; r >= 0 && i < v->via.array.size; i++)
                        r = insert_str(s, run_id, a->name, &v->via.array.ptr[i]);
                return r;
        case SA_DOUBLE:
                p.kind = FILTER_PARAM_DOUBLE;
                p.d = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER   ? (double) v->via.u64
                      : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double) v->via.i64
                                                                   : v->via.f64;
                break;
        case SA_DATETIME:
                p.i = (int64_t) a->usec;
                break;
        case SA_BOOL:
                p.i = v->via.boolean;
                break;
        default: /* Int */
                p.i = v->via.i64;
                break;
        }
        return store_sattr_insert(s, run_id, a->name, &p);
}

static void pack_entry(msgpack_packer *pk, const SaValue *a) {
        (void) msg_pack_str(pk, a->name);
        (void) msgpack_pack_map(pk, 2);
        (void) msg_pack_kv_str(pk, "type", sa_type_to_string(a->type));
        (void) msg_pack_str(pk, "value");
        if (a->type == SA_DATETIME)
                (void) msgpack_pack_uint64(pk, a->usec);
        else
                (void) msgpack_pack_object(pk, *a->value);
}

static bool in_map(const msgpack_object *map, const msgpack_object *key) {
        for (uint32_t i = 0; map && i < map->via.map.size; i++)
                if (msgpack_object_equal(map->via.map.ptr[i].key, *key))
                        return true;
        return false;
}

/* Packs the merge of @old (stored, may be NULL) and @upd into @b; indexes @upd's values. */
static int merge(Store *s,
                 const char *run_id,
                 const msgpack_object *old,
                 const msgpack_object *upd,
                 MsgBuf *b,
                 char *err,
                 size_t errlen) {
        size_t n = 0, k = 0;
        SaValue a;
        int r;

        for (uint32_t i = 0; old && i < old->via.map.size; i++)
                n += !in_map(upd, &old->via.map.ptr[i].key);
        for (uint32_t i = 0; i < upd->via.map.size; i++)
                n += upd->via.map.ptr[i].val.type != MSGPACK_OBJECT_NIL;
        if (n > SA_KEYS_MAX) {
                snprintf(err, errlen, "more than %d search attributes", SA_KEYS_MAX);
                return -EINVAL;
        }
        (void) msgpack_pack_map(&b->pk, n);
        for (uint32_t i = 0; old && i < old->via.map.size; i++)
                if (!in_map(upd, &old->via.map.ptr[i].key)) {
                        (void) msgpack_pack_object(&b->pk, old->via.map.ptr[i].key);
                        (void) msgpack_pack_object(&b->pk, old->via.map.ptr[i].val);
                        k++;
                }
        for (uint32_t i = 0; i < upd->via.map.size; i++) {
                r = parse_entry(s, &upd->via.map.ptr[i], true, &a, err, errlen);
                if (r >= 0)
                        r = index_values(s, run_id, &a);
                if (r < 0)
                        return r;
                if (a.value) {
                        pack_entry(&b->pk, &a);
                        k++;
                }
        }
        assert(k == n);
        if (msgbuf_error(b) < 0)
                return -ENOMEM;
        if (b->sb.size > SA_TOTAL_MAX) {
                snprintf(err, errlen, "the search attributes take more than %d bytes",
                         SA_TOTAL_MAX);
                return -EINVAL;
        }
        return 0;
}

/* Decodes a stored map blob into @u; @ret NULL when the blob is empty. */
static int decode_blob(const Blob *b, msgpack_unpacked *u, const msgpack_object **ret) {
        *ret = NULL;
        if (!b->ptr)
                return 0;
        if (msg_decode(b->ptr, b->size, u) < 0)
                return -EUCLEAN;
        *ret = &u->data;
        return 0;
}

static int update(Store *s,
                  const char *run_id,
                  const msgpack_object *memo,
                  const msgpack_object *sa,
                  char *err,
                  size_t errlen) {
        _cleanup_(blob_done) Blob old_memo = {}, old_sa = {};
        const msgpack_object *old = NULL;
        Blob new_memo = {}, new_sa = {};
        msgpack_unpacked u;
        MsgBuf mb, sb;
        int r;

        r = store_visibility_get(s, run_id, &old_memo, &old_sa);
        if (r < 0)
                return r;
        msgpack_unpacked_init(&u);
        msgbuf_init(&mb);
        msgbuf_init(&sb);
        r = decode_blob(&old_sa, &u, &old);
        if (r >= 0 && sa)
                r = merge(s, run_id, old, sa, &sb, err, errlen);
        if (r >= 0 && memo) {
                (void) msgpack_pack_object(&mb.pk, *memo);
                r = msgbuf_error(&mb);
        }
        if (r >= 0) {
                new_memo = memo ? (Blob){ mb.sb.data, mb.sb.size } : old_memo;
                new_sa = sa ? (Blob){ sb.sb.data, sb.sb.size } : old_sa;
                r = store_visibility_put(s, run_id, &new_memo, &new_sa);
        }
        msgbuf_done(&mb);
        msgbuf_done(&sb);
        msgpack_unpacked_destroy(&u);
        return r;
}

int visibility_set(Store *s,
                   const char *run_id,
                   const msgpack_object *memo,
                   const msgpack_object *sa,
                   char *err,
                   size_t errlen) {
        if (!memo && !sa)
                return 0;
        return update(s, run_id, memo, sa, err, errlen);
}

int visibility_upsert(
        Store *s, const char *run_id, const msgpack_object *sa, char *err, size_t errlen) {
        return update(s, run_id, NULL, sa, err, errlen);
}

int visibility_pack(Store *s, const char *run_id, msgpack_packer *pk, size_t *ret_n) {
        _cleanup_(blob_done) Blob memo = {}, sa = {};
        int r;

        r = store_visibility_get(s, run_id, &memo, &sa);
        if (r < 0)
                return r;
        *ret_n = (memo.ptr ? 1 : 0) + (sa.ptr ? 1 : 0);
        if (!pk)
                return 0;
        if (memo.ptr) {
                (void) msg_pack_str(pk, "memo");
                (void) msg_pack_raw(pk, memo.ptr, memo.size);
        }
        if (sa.ptr) {
                (void) msg_pack_str(pk, "search_attributes");
                (void) msg_pack_raw(pk, sa.ptr, sa.size);
        }
        return 0;
}
