/* Format-string packing and unpacking of msgpack values, in the spirit of jansson's json_pack()
 * and json_unpack(); the format language is documented in durable.h.
 *
 * Spaces, tabs, newlines, ':' and ',' between items are ignored, so "{s:s, s:i}" reads well.
 * Every call first checks the whole format without touching the arguments (brackets balanced,
 * map keys are "s", no trailing characters), so a format error never leaves half a value in the
 * caller's packer. dur_unpack() then walks the object twice: once checking types, required keys
 * and ranges without writing, once storing, so targets are written only on success
 * (STYLE.md §5). Why a check fails is logged at debug level through dur_log(). */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>

#include "libclient/buf.h"
#include "libclient/logging.h"
#include "proto/msg.h"

typedef enum Mode {
        MODE_PACK,
        MODE_UNPACK,
} Mode;

static const char *skip_separators(const char *p) {
        while (*p && strchr(" \t\n:,", *p))
                p++;
        return p;
}

static int scan_value(const char **p, Mode mode);

/* A map key: "s" or "s#" when packing, "s" or "s?" (optional) when unpacking. */
static int scan_key(const char **p, Mode mode) {
        const char *q = skip_separators(*p);

        if (*q++ != 's')
                return -EINVAL;
        if (*q == (mode == MODE_PACK ? '#' : '?'))
                q++;
        *p = q;
        return 0;
}

/* The items of a map or array, @p just after the opening bracket; counts them (pairs for maps). */
static int scan_items(const char **p, Mode mode, char close, size_t *ret_n) {
        size_t n = 0;

        for (;;) {
                int r;

                *p = skip_separators(*p);
                if (**p == close) {
                        (*p)++;
                        *ret_n = n;
                        return 0;
                }
                if (**p == '\0')
                        return -EINVAL;
                if (close == '}') {
                        r = scan_key(p, mode);
                        if (r < 0)
                                return r;
                }
                r = scan_value(p, mode);
                if (r < 0)
                        return r;
                n++;
        }
}

static int scan_value(const char **p, Mode mode) {
        const char *q = skip_separators(*p);
        size_t n;
        char c = *q++;

        switch (c) {
        case '{':
        case '[':
                *p = q;
                return scan_items(p, mode, c == '{' ? '}' : ']', &n);
        case 's':
                if (*q == '#')
                        q++;
                if (mode == MODE_PACK && *q == '?')
                        q++;
                break;
        case 'o':
                if (mode == MODE_PACK && *q == '?')
                        q++;
                break;
        case 'i':
        case 'I':
        case 'u':
        case 'U':
        case 'b':
        case 'f':
        case 'n':
                break;
        default:
                return -EINVAL;
        }
        *p = q;
        return 0;
}

/* Checks that @fmt is exactly one well-formed value. */
static int format_check(const char *fmt, Mode mode) {
        const char *p = fmt;

        if (!fmt || scan_value(&p, mode) < 0) {
                dur_log(LOG_DEBUG, "Invalid format \"%s\"", fmt ?: "(null)");
                return -EINVAL;
        }
        if (*skip_separators(p) != '\0') {
                dur_log(LOG_DEBUG, "Trailing characters \"%s\" in format \"%s\"", p, fmt);
                return -EINVAL;
        }
        return 0;
}

/* How many items the map or array opened just before @p holds (pairs for a map). The format was
 * checked already, so this cannot fail. */
static size_t count_items(const char *p, Mode mode, char close) {
        size_t n = 0;

        (void) scan_items(&p, mode, close, &n);
        return n;
}

/* ---- Packing ---------------------------------------------------------------------------------- */

typedef struct Packer {
        msgpack_packer *pk;
        va_list ap;
} Packer;

static int pack_value(Packer *k, const char **p);

/* "s", "s#", with an optional "?" that turns a NULL pointer into nil. */
static int pack_string(Packer *k, const char **p) {
        const char *s = va_arg(k->ap, const char *);
        bool with_len = **p == '#';
        int len = with_len ? va_arg(k->ap, int) : 0;
        bool nullable;

        if (with_len)
                (*p)++;
        nullable = **p == '?';
        if (nullable)
                (*p)++;
        if (!s) {
                if (nullable)
                        return msgpack_pack_nil(k->pk);
                dur_log(LOG_DEBUG, "NULL string given for \"s\" (use \"s?\" for nil)");
                return -EINVAL;
        }
        if (with_len && len < 0)
                return -EINVAL;
        return msg_pack_strn(k->pk, s, with_len ? (size_t) len : strlen(s));
}

static int pack_object(Packer *k, const char **p) {
        const msgpack_object *o = va_arg(k->ap, const msgpack_object *);
        bool nullable = **p == '?';

        if (nullable)
                (*p)++;
        if (!o) {
                if (nullable)
                        return msgpack_pack_nil(k->pk);
                dur_log(LOG_DEBUG, "NULL object given for \"o\" (use \"o?\" for nil)");
                return -EINVAL;
        }
        return msgpack_pack_object(k->pk, *o);
}

static int pack_container(Packer *k, const char **p, char open) {
        bool map = open == '{';
        char close = map ? '}' : ']';
        size_t n = count_items(*p, MODE_PACK, close);
        int r;

        r = map ? msgpack_pack_map(k->pk, n) : msgpack_pack_array(k->pk, n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (map)
                        r = pack_value(k, p); /* a key is an "s" or "s#" value */
                if (r >= 0)
                        r = pack_value(k, p);
        }
        if (r < 0)
                return r;
        *p = skip_separators(*p) + 1; /* the closing bracket */
        return 0;
}

static int pack_value(Packer *k, const char **p) {
        char c;

        *p = skip_separators(*p);
        c = *(*p)++;
        switch (c) {
        case '{':
        case '[':
                return pack_container(k, p, c);
        case 's':
                return pack_string(k, p);
        case 'o':
                return pack_object(k, p);
        case 'i':
                return msgpack_pack_int(k->pk, va_arg(k->ap, int));
        case 'I':
                return msgpack_pack_int64(k->pk, va_arg(k->ap, int64_t));
        case 'u':
                return msgpack_pack_unsigned_int(k->pk, va_arg(k->ap, unsigned));
        case 'U':
                return msgpack_pack_uint64(k->pk, va_arg(k->ap, uint64_t));
        case 'b':
                return va_arg(k->ap, int) ? msgpack_pack_true(k->pk) : msgpack_pack_false(k->pk);
        case 'f':
                return msgpack_pack_double(k->pk, va_arg(k->ap, double));
        case 'n':
                return msgpack_pack_nil(k->pk);
        }
        return -EINVAL; /* unreachable after format_check() */
}

DUR_PUBLIC int dur_vpack(msgpack_packer *pk, const char *fmt, va_list ap) {
        Packer k = { .pk = pk };
        const char *p = fmt;
        int r;

        assert_return(pk, -EINVAL);
        r = format_check(fmt, MODE_PACK);
        if (r < 0)
                return r;
        va_copy(k.ap, ap);
        r = pack_value(&k, &p);
        va_end(k.ap);
        if (r == -EINVAL)
                return r;
        return r < 0 ? -ENOMEM : 0; /* msgpack-c reports a failed write as -1 */
}

DUR_PUBLIC int dur_pack(msgpack_packer *pk, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = dur_vpack(pk, fmt, ap);
        va_end(ap);
        return r;
}

DUR_PUBLIC dur_buf *dur_args(const char *fmt, ...) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        dur_buf *b = NULL;
        va_list ap;
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        va_start(ap, fmt);
        r = dur_vpack(&pk, fmt, ap);
        va_end(ap);
        if (r >= 0) {
                b = buf_from_sbuffer(&sb);
                r = b ? 0 : -ENOMEM;
        }
        msgpack_sbuffer_destroy(&sb);
        if (r < 0)
                errno = -r;
        return b;
}

/* ---- Unpacking -------------------------------------------------------------------------------- */

typedef struct Unpacker {
        va_list ap;
        bool store; /* false: the checking pass, which writes nothing and logs what is wrong */
} Unpacker;

static int unpack_value(Unpacker *u, const msgpack_object *o, const char **p);

static int unpack_mismatch(Unpacker *u, char c, const msgpack_object *o) {
        if (!u->store)
                dur_log(LOG_DEBUG, "Cannot unpack a msgpack value of type %d as \"%c\"",
                        (int) o->type, c);
        return -EINVAL;
}

/* Like msg_get(), but a nil value is returned (a required key may be unpacked with "n"). */
static const msgpack_object *map_find(const msgpack_object *map, const char *key) {
        for (uint32_t i = 0; i < map->via.map.size; i++)
                if (msg_str_eq(&map->via.map.ptr[i].key, key))
                        return &map->via.map.ptr[i].val;
        return NULL;
}

static int unpack_map(Unpacker *u, const msgpack_object *o, const char **p) {
        if (o && o->type != MSGPACK_OBJECT_MAP)
                return unpack_mismatch(u, '{', o);
        for (;;) {
                const msgpack_object *v = NULL;
                const char *key;
                bool optional;
                int r;

                *p = skip_separators(*p);
                if (**p == '}')
                        break;
                (*p)++; /* the key's 's' */
                key = va_arg(u->ap, const char *);
                optional = **p == '?';
                if (optional)
                        (*p)++;
                if (!key)
                        return -EINVAL;
                if (o) {
                        v = map_find(o, key);
                        if (optional && v && v->type == MSGPACK_OBJECT_NIL)
                                v = NULL;
                        if (!v && !optional) {
                                if (!u->store)
                                        dur_log(LOG_DEBUG, "Required key \"%s\" is missing", key);
                                return -EINVAL;
                        }
                }
                /* An absent optional key (or any key inside one) only consumes its arguments. */
                r = unpack_value(u, v, p);
                if (r < 0)
                        return r;
        }
        (*p)++;
        return 0;
}

static int unpack_array(Unpacker *u, const msgpack_object *o, const char **p) {
        if (o && o->type != MSGPACK_OBJECT_ARRAY)
                return unpack_mismatch(u, '[', o);
        for (uint32_t i = 0;; i++) {
                const msgpack_object *v = NULL;
                int r;

                *p = skip_separators(*p);
                if (**p == ']')
                        break;
                if (o) {
                        if (i >= o->via.array.size) {
                                if (!u->store)
                                        dur_log(LOG_DEBUG,
                                                "Array has %" PRIu32
                                                " items, the format wants more",
                                                o->via.array.size);
                                return -EINVAL;
                        }
                        v = &o->via.array.ptr[i];
                }
                r = unpack_value(u, v, p);
                if (r < 0)
                        return r;
        }
        /* Extra array items are ignored, as extra map keys are: newer senders may add some. */
        (*p)++;
        return 0;
}

static int int_in_range(const msgpack_object *o, int64_t min, int64_t max, int64_t *ret) {
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                if (o->via.u64 > (uint64_t) max)
                        return -ERANGE;
                *ret = (int64_t) o->via.u64;
                return 0;
        }
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                if (o->via.i64 < min)
                        return -ERANGE;
                *ret = o->via.i64;
                return 0;
        }
        return -EINVAL;
}

static int uint_in_range(const msgpack_object *o, uint64_t max, uint64_t *ret) {
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                return -ERANGE;
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return -EINVAL;
        if (o->via.u64 > max)
                return -ERANGE;
        *ret = o->via.u64;
        return 0;
}

/* Integers: "i" int, "I" int64_t, "u" unsigned, "U" uint64_t; out of range is -ERANGE. */
static int unpack_integer(Unpacker *u, const msgpack_object *o, char c, void *target) {
        bool is_signed = c == 'i' || c == 'I';
        int64_t s = 0;
        uint64_t v = 0;
        int r;

        if (is_signed)
                r = int_in_range(o, c == 'i' ? INT_MIN : INT64_MIN, c == 'i' ? INT_MAX : INT64_MAX,
                                 &s);
        else
                r = uint_in_range(o, c == 'u' ? UINT_MAX : UINT64_MAX, &v);
        if (r == -ERANGE && !u->store)
                dur_log(LOG_DEBUG, "Integer out of range for \"%c\"", c);
        if (r == -EINVAL)
                return unpack_mismatch(u, c, o);
        if (r < 0 || !u->store)
                return r;
        if (c == 'i')
                *(int *) target = (int) s;
        else if (c == 'I')
                *(int64_t *) target = s;
        else if (c == 'u')
                *(unsigned *) target = (unsigned) v;
        else
                *(uint64_t *) target = v;
        return 0;
}

/* "s" (const char **, refused when the string holds a NUL, since the caller would see a
 * truncated value) and "s#" (const char **, size_t *). */
static int unpack_string(Unpacker *u, const msgpack_object *o, const char **p) {
        const char **target = va_arg(u->ap, const char **);
        bool with_len = **p == '#';
        size_t *len = with_len ? va_arg(u->ap, size_t *) : NULL;

        if (with_len)
                (*p)++;
        if (!o)
                return 0;
        if (!target || (with_len && !len))
                return -EINVAL;
        if (o->type != MSGPACK_OBJECT_STR)
                return unpack_mismatch(u, 's', o);
        if (!with_len && memchr(o->via.str.ptr, 0, o->via.str.size)) {
                if (!u->store)
                        dur_log(LOG_DEBUG, "String holds a NUL byte; use \"s#\"");
                return -EINVAL;
        }
        if (u->store) {
                *target = o->via.str.ptr;
                if (len)
                        *len = o->via.str.size;
        }
        return 0;
}

static int unpack_scalar(Unpacker *u, const msgpack_object *o, char c) {
        void *target = va_arg(u->ap, void *);
        bool ok;

        if (!o)
                return 0;
        if (!target)
                return -EINVAL;
        switch (c) {
        case 'i':
        case 'I':
        case 'u':
        case 'U':
                return unpack_integer(u, o, c, target);
        case 'b':
                ok = o->type == MSGPACK_OBJECT_BOOLEAN;
                if (ok && u->store)
                        *(bool *) target = o->via.boolean;
                break;
        case 'f':
                ok = true;
                if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
                        if (u->store)
                                *(double *) target = o->via.f64;
                } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                        if (u->store)
                                *(double *) target = (double) o->via.u64;
                } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                        if (u->store)
                                *(double *) target = (double) o->via.i64;
                } else
                        ok = false;
                break;
        default: /* 'o' */
                ok = true;
                if (u->store)
                        *(const msgpack_object **) target = o;
                break;
        }
        return ok ? 0 : unpack_mismatch(u, c, o);
}

/* Unpacks @o as the value at *p says; @o NULL means "absent": only the arguments are consumed. */
static int unpack_value(Unpacker *u, const msgpack_object *o, const char **p) {
        char c;

        *p = skip_separators(*p);
        c = *(*p)++;
        switch (c) {
        case '{':
                return unpack_map(u, o, p);
        case '[':
                return unpack_array(u, o, p);
        case 's':
                return unpack_string(u, o, p);
        case 'n':
                return !o || o->type == MSGPACK_OBJECT_NIL ? 0 : unpack_mismatch(u, c, o);
        default:
                return unpack_scalar(u, o, c);
        }
}

static int unpack_pass(const msgpack_object *o, const char *fmt, va_list ap, bool store) {
        Unpacker u = { .store = store };
        const char *p = fmt;
        int r;

        va_copy(u.ap, ap);
        r = unpack_value(&u, o, &p);
        va_end(u.ap);
        return r;
}

DUR_PUBLIC int dur_unpack(const msgpack_object *o, const char *fmt, ...) {
        va_list ap;
        int r;

        assert_return(o, -EINVAL);
        r = format_check(fmt, MODE_UNPACK);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        r = unpack_pass(o, fmt, ap, false);
        if (r >= 0)
                r = unpack_pass(o, fmt, ap, true);
        va_end(ap);
        return r;
}
