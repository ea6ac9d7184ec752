/* The list filter language (filter.h): a lexer, a recursive-descent parser that builds an AST,
 * and a code generator that turns the AST into an SQL condition over runs with bound parameters.
 *
 * How each attribute maps to SQL (the indexes are described in store.c):
 *
 *   built-in      a column of runs: WorkflowId workflow_id, WorkflowType workflow_type, RunId
 *                 run_id, TaskQueue task_queue, ExecutionStatus status (names -> numbers),
 *                 StartTime start_time, CloseTime close_time (0 while open = NULL),
 *                 ExecutionDuration close_time - start_time (NULL while open)
 *   custom        run_id IN (SELECT run_id FROM sattrs WHERE name = ? AND <column> <op> ?), the
 *                 column by type (ival: Int, Bool, Datetime; dval: Double; sval: Keyword,
 *                 KeywordList elements, Text tokens), so each condition is one range of the
 *                 index sattrs_<column> (name, value)
 *
 * Semantics follow Temporal's SQL visibility: a comparison with an attribute a run does not have
 * is false (also for != and NOT IN); KeywordList "=" means "contains", "!=" "does not contain";
 * Text supports = and != only and matches when every token of the value is a token of the
 * attribute; IS NULL is true when the run does not have the attribute. */

#include "daemon/filter.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "proto/event.h"

static const char *const sa_type_names[_SA_TYPE_MAX] = {
        [SA_KEYWORD] = "Keyword",
        [SA_TEXT] = "Text",
        [SA_INT] = "Int",
        [SA_DOUBLE] = "Double",
        [SA_BOOL] = "Bool",
        [SA_DATETIME] = "Datetime",
        [SA_KEYWORD_LIST] = "KeywordList",
};

const char *sa_type_to_string(SaType t) {
        return t > 0 && t < _SA_TYPE_MAX ? sa_type_names[t] : NULL;
}

SaType sa_type_from_string(const char *s) {
        for (int t = 1; t < _SA_TYPE_MAX; t++)
                if (s && strcmp(s, sa_type_names[t]) == 0)
                        return (SaType) t;
        return _SA_TYPE_INVALID;
}

/* ---- values ---- */

static int digits(const char **p, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char) **p))
                        return -EINVAL;
                v = v * 10 + (*(*p)++ - '0');
        }
        *ret = v;
        return 0;
}

int filter_parse_datetime(const char *s, uint64_t *ret_usec) {
        struct tm tm = {};
        int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
        uint64_t frac = 0, scale = 1000000;
        const char *p = s;
        time_t t;

        if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
            digits(&p, 2, &d) < 0)
                return -EINVAL;
        if (*p == 'T' || *p == 't' || *p == ' ') {
                p++;
                if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' ||
                    digits(&p, 2, &sec) < 0)
                        return -EINVAL;
                if (*p == '.') {
                        p++;
                        if (!isdigit((unsigned char) *p))
                                return -EINVAL;
                        for (; isdigit((unsigned char) *p); p++)
                                if (scale > 1) {
                                        scale /= 10;
                                        frac += (uint64_t) (*p - '0') * scale;
                                }
                }
                if (*p == 'Z' || *p == 'z')
                        p++;
                else if (*p == '+' || *p == '-') {
                        sign = *p++ == '-' ? -1 : 1;
                        if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0)
                                return -EINVAL;
                } else
                        return -EINVAL;
        }
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
            oh > 23 || om > 59)
                return -EINVAL;
        tm = (struct tm){ .tm_year = y - 1900,
                          .tm_mon = mo - 1,
                          .tm_mday = d,
                          .tm_hour = h,
                          .tm_min = mi,
                          .tm_sec = sec };
        t = timegm(&tm);
        if (tm.tm_mday != d) /* 2026-02-31 */
                return -EINVAL;
        t -= sign * (oh * 3600 + om * 60);
        if (t < 0)
                return -EINVAL;
        *ret_usec = (uint64_t) t * 1000000 + frac;
        return 0;
}

int filter_text_tokens(const char *s,
                       int (*cb)(const char *token, void *userdata),
                       void *userdata) {
        char tok[256];
        size_t n = 0;
        int r;

        for (const char *p = s;; p++) {
                if (*p && isalnum((unsigned char) *p)) {
                        if (n < sizeof(tok) - 1)
                                tok[n++] = (char) tolower((unsigned char) *p);
                        continue;
                }
                if (n > 0) {
                        tok[n] = 0;
                        n = 0;
                        r = cb(tok, userdata);
                        if (r < 0)
                                return r;
                }
                if (!*p)
                        return 0;
        }
}

/* "1h30m", "10s", "250ms", "5us" (Go's time.ParseDuration units down to us) to usec. */
static int parse_duration(const char *s, int64_t *ret) {
        static const struct {
                const char *unit;
                double usec;
        } units[] = { { "us", 1 },  { "µs", 1 },   { "ms", 1e3 },
                      { "s", 1e6 }, { "m", 60e6 }, { "h", 3600e6 } };
        double total = 0;
        const char *p = s;

        if (!*p)
                return -EINVAL;
        while (*p) {
                char *end;
                double v = strtod(p, &end);
                size_t best = 0, k = ELEMENTSOF(units);

                if (end == p || v < 0 || !isfinite(v))
                        return -EINVAL;
                for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                        size_t len = strlen(units[i].unit);
                        if (strncmp(end, units[i].unit, len) == 0 && len > best) {
                                best = len;
                                k = i;
                        }
                }
                if (k == ELEMENTSOF(units))
                        return -EINVAL;
                total += v * units[k].usec;
                p = end + best;
        }
        if (total > 9.2e18)
                return -EINVAL;
        *ret = (int64_t) total;
        return 0;
}

/* ---- lexer ---- */

typedef enum TokKind {
        T_EOF,
        T_NAME,
        T_STRING,
        T_NUMBER,
        T_LPAREN,
        T_RPAREN,
        T_COMMA,
        T_OP,
} TokKind;

typedef struct Tok {
        TokKind kind;
        size_t pos; /* 0-based offset */
        size_t len; /* of the source text */
        char *text; /* T_NAME, T_STRING (unquoted), T_NUMBER, T_OP; owned */
} Tok;

typedef struct Parser {
        const char *q;
        size_t at;
        Tok tok;
        char *err;
        size_t errlen;
        int depth;
        int terms;
        bool failed;
} Parser;

static int fail(Parser *p, size_t pos, const char *fmt, ...) _printf_(3, 4);
static int fail(Parser *p, size_t pos, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        if (p->failed)
                return -EINVAL;
        p->failed = true;
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        (void) snprintf(p->err, p->errlen, "bad query at position %zu: %s", pos + 1, msg);
        return -EINVAL;
}

static const char *tok_describe(const Parser *p, char *buf, size_t n) {
        const Tok *t = &p->tok;

        if (t->kind == T_EOF)
                return "the end of the query";
        (void) snprintf(buf, n, "'%.*s'", (int) MIN(t->len, (size_t) 40), p->q + t->pos);
        return buf;
}

static int lex_string(Parser *p, Tok *t) {
        char quote = p->q[p->at];
        size_t i = p->at + 1, n = 0;
        char *s;

        s = malloc(strlen(p->q + i) + 1);
        if (!s)
                return -ENOMEM;
        for (;; i++) {
                if (!p->q[i]) {
                        free(s);
                        return fail(p, p->at, "string not closed (missing %c)", quote);
                }
                if (p->q[i] == quote) {
                        if (p->q[i + 1] != quote)
                                break;
                        i++; /* '' is a quote inside the string, as in SQL */
                } else if (p->q[i] == '\\' && p->q[i + 1])
                        i++;
                s[n++] = p->q[i];
        }
        s[n] = 0;
        t->kind = T_STRING;
        t->text = s;
        t->len = i + 1 - p->at;
        return 0;
}

static int lex_span(Parser *p, Tok *t, TokKind kind, size_t len) {
        t->kind = kind;
        t->len = len;
        t->text = strndup(p->q + p->at, len);
        return t->text ? 0 : -ENOMEM;
}

static int lex(Parser *p) {
        const char *q = p->q;
        Tok t = {};
        size_t i;
        int r = 0;

        free(p->tok.text);
        p->tok = (Tok){};
        while (isspace((unsigned char) q[p->at]))
                p->at++;
        t.pos = p->at;
        i = p->at;
        if (!q[i])
                t.kind = T_EOF;
        else if (q[i] == '(' || q[i] == ')' || q[i] == ',') {
                t.kind = q[i] == '(' ? T_LPAREN : q[i] == ')' ? T_RPAREN : T_COMMA;
                t.len = 1;
        } else if (q[i] == '\'' || q[i] == '"')
                r = lex_string(p, &t);
        else if (q[i] == '`') {
                const char *end = strchr(q + i + 1, '`');
                if (!end)
                        return fail(p, i, "name not closed (missing `)");
                t.kind = T_NAME;
                t.len = (size_t) (end - (q + i)) + 1;
                t.text = strndup(q + i + 1, t.len - 2);
                r = t.text ? 0 : -ENOMEM;
        } else if (isalpha((unsigned char) q[i]) || q[i] == '_') {
                while (isalnum((unsigned char) q[i]) || q[i] == '_' || q[i] == '.')
                        i++;
                r = lex_span(p, &t, T_NAME, i - p->at);
        } else if (isdigit((unsigned char) q[i]) ||
                   (q[i] == '-' && isdigit((unsigned char) q[i + 1]))) {
                i++;
                while (isalnum((unsigned char) q[i]) || q[i] == '.' ||
                       ((q[i] == '+' || q[i] == '-') && (q[i - 1] == 'e' || q[i - 1] == 'E')))
                        i++;
                r = lex_span(p, &t, T_NUMBER, i - p->at);
        } else if (strchr("=!<>", q[i])) {
                size_t len = (q[i + 1] == '=' || (q[i] == '<' && q[i + 1] == '>')) ? 2 : 1;
                if (q[i] == '!' && len == 1)
                        return fail(p, i, "unexpected '!' (did you mean '!='?)");
                r = lex_span(p, &t, T_OP, len);
        } else
                return fail(p, i, "unexpected character '%c'",
                            isprint((unsigned char) q[i]) ? q[i] : '?');
        if (r < 0)
                return r;
        p->at = t.pos + t.len;
        p->tok = t;
        return 0;
}

static bool tok_is_kw(const Tok *t, const char *kw) {
        return t->kind == T_NAME && strcasecmp(t->text, kw) == 0;
}

static int expect_kw(Parser *p, const char *kw) {
        char b[64];

        if (!tok_is_kw(&p->tok, kw))
                return fail(p, p->tok.pos, "expected %s, found %s", kw,
                            tok_describe(p, b, sizeof(b)));
        return lex(p);
}

/* ---- AST ---- */

typedef enum NodeKind {
        N_AND,
        N_OR,
        N_CMP,
} NodeKind;

typedef enum CmpOp {
        OP_EQ,
        OP_NE,
        OP_LT,
        OP_GT,
        OP_LE,
        OP_GE,
        OP_IN,
        OP_NOT_IN,
        OP_BETWEEN,
        OP_NOT_BETWEEN,
        OP_STARTS_WITH,
        OP_NOT_STARTS_WITH,
        OP_IS_NULL,
        OP_IS_NOT_NULL,
        _OP_MAX,
} CmpOp;

static const char *const op_names[_OP_MAX] = {
        [OP_EQ] = "=",
        [OP_NE] = "!=",
        [OP_LT] = "<",
        [OP_GT] = ">",
        [OP_LE] = "<=",
        [OP_GE] = ">=",
        [OP_IN] = "IN",
        [OP_NOT_IN] = "NOT IN",
        [OP_BETWEEN] = "BETWEEN",
        [OP_NOT_BETWEEN] = "NOT BETWEEN",
        [OP_STARTS_WITH] = "STARTS_WITH",
        [OP_NOT_STARTS_WITH] = "NOT STARTS_WITH",
        [OP_IS_NULL] = "IS NULL",
        [OP_IS_NOT_NULL] = "IS NOT NULL",
};

typedef enum LitKind {
        L_STRING,
        L_INT,
        L_DOUBLE,
        L_BOOL,
} LitKind;

typedef struct Lit {
        LitKind kind;
        size_t pos;
        char *s; /* L_STRING; owned */
        int64_t i;
        double d;
} Lit;

#define VALUES_MAX 1000 /* in one IN list */

typedef struct Node {
        NodeKind kind;
        struct Node *l, *r; /* N_AND, N_OR */
        char *name;         /* N_CMP; owned */
        size_t pos;
        CmpOp op;
        Lit *vals;
        size_t n_vals;
} Node;

static Node *node_free(Node *n) {
        if (!n)
                return NULL;
        node_free(n->l);
        node_free(n->r);
        free(n->name);
        for (size_t i = 0; i < n->n_vals; i++)
                free(n->vals[i].s);
        free(n->vals);
        free(n);
        return NULL;
}
DEFINE_CLEANUP(Node, node_free);

static int parse_expr(Parser *p, Node **ret);

static int parse_literal(Parser *p, Lit *ret) {
        Tok *t = &p->tok;
        char b[64], *end;
        Lit l = { .pos = t->pos };

        if (t->kind == T_STRING) {
                l.kind = L_STRING;
                l.s = TAKE_PTR(t->text);
        } else if (tok_is_kw(t, "true") || tok_is_kw(t, "false")) {
                l.kind = L_BOOL;
                l.i = tok_is_kw(t, "true");
        } else if (t->kind == T_NUMBER) {
                errno = 0;
                l.i = strtoll(t->text, &end, 10);
                l.kind = L_INT;
                if (*end || errno) {
                        errno = 0;
                        l.d = strtod(t->text, &end);
                        l.kind = L_DOUBLE;
                        if (*end || errno || !isfinite(l.d))
                                return fail(p, t->pos, "'%s' is not a number", t->text);
                } else
                        l.d = (double) l.i;
        } else
                return fail(p, t->pos,
                            "expected a value ('string', number, true or false), found %s",
                            tok_describe(p, b, sizeof(b)));
        *ret = l;
        return 0;
}

static int node_add_value(Parser *p, Node *n) {
        Lit *v;
        int r;

        if (n->n_vals >= VALUES_MAX)
                return fail(p, p->tok.pos, "more than %d values in one list", VALUES_MAX);
        v = realloc(n->vals, (n->n_vals + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        n->vals = v;
        r = parse_literal(p, &v[n->n_vals]);
        if (r < 0)
                return r;
        n->n_vals++; /* the node owns it now, whatever the next token is */
        return lex(p);
}

static int parse_in_list(Parser *p, Node *n) {
        char b[64];
        int r;

        if (p->tok.kind != T_LPAREN)
                return fail(p, p->tok.pos, "expected '(' after IN, found %s",
                            tok_describe(p, b, sizeof(b)));
        for (;;) {
                r = lex(p);
                if (r < 0)
                        return r;
                r = node_add_value(p, n);
                if (r < 0)
                        return r;
                if (p->tok.kind == T_RPAREN)
                        return lex(p);
                if (p->tok.kind != T_COMMA)
                        return fail(p, p->tok.pos, "expected ',' or ')' in the IN list, found %s",
                                    tok_describe(p, b, sizeof(b)));
        }
}

static int parse_op(Parser *p, Node *n) {
        static const struct {
                const char *text;
                CmpOp op;
        } ops[] = { { "=", OP_EQ }, { "!=", OP_NE }, { "<>", OP_NE }, { "<", OP_LT },
                    { ">", OP_GT }, { "<=", OP_LE }, { ">=", OP_GE } };
        bool not = false;
        char b[64];
        int r;

        if (p->tok.kind == T_OP) {
                for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                        if (strcmp(p->tok.text, ops[i].text) == 0)
                                n->op = ops[i].op;
                r = lex(p);
                return r < 0 ? r : node_add_value(p, n);
        }
        if (tok_is_kw(&p->tok, "IS")) {
                r = lex(p);
                if (r >= 0 && tok_is_kw(&p->tok, "NOT")) {
                        not = true;
                        r = lex(p);
                }
                if (r >= 0)
                        r = expect_kw(p, "NULL");
                n->op = not ? OP_IS_NOT_NULL : OP_IS_NULL;
                return r;
        }
        if (tok_is_kw(&p->tok, "NOT")) {
                not = true;
                r = lex(p);
                if (r < 0)
                        return r;
        }
        if (tok_is_kw(&p->tok, "IN")) {
                n->op = not ? OP_NOT_IN : OP_IN;
                r = lex(p);
                return r < 0 ? r : parse_in_list(p, n);
        }
        if (tok_is_kw(&p->tok, "STARTS_WITH")) {
                n->op = not ? OP_NOT_STARTS_WITH : OP_STARTS_WITH;
                r = lex(p);
                return r < 0 ? r : node_add_value(p, n);
        }
        if (tok_is_kw(&p->tok, "BETWEEN")) {
                n->op = not ? OP_NOT_BETWEEN : OP_BETWEEN;
                r = lex(p);
                if (r >= 0)
                        r = node_add_value(p, n);
                if (r >= 0)
                        r = expect_kw(p, "AND");
                return r < 0 ? r : node_add_value(p, n);
        }
        return fail(p, p->tok.pos,
                    "expected an operator (=, !=, <, >, <=, >=, IN, BETWEEN, STARTS_WITH, IS) "
                    "after '%s', found %s",
                    n->name, tok_describe(p, b, sizeof(b)));
}

static bool is_reserved(const Tok *t) {
        static const char *const kw[] = { "AND",  "OR",      "NOT",         "IN",    "IS",
                                          "NULL", "BETWEEN", "STARTS_WITH", "ORDER", "GROUP",
                                          "BY",   "ASC",     "DESC" };
        for (size_t i = 0; i < ELEMENTSOF(kw); i++)
                if (tok_is_kw(t, kw[i]))
                        return true;
        return false;
}

static int parse_factor(Parser *p, Node **ret) {
        _cleanup_(node_freep) Node *n = NULL;
        char b[64];
        int r;

        if (p->tok.kind == T_LPAREN) {
                if (++p->depth > FILTER_DEPTH_MAX)
                        return fail(p, p->tok.pos, "parentheses nested deeper than %d",
                                    FILTER_DEPTH_MAX);
                r = lex(p);
                if (r >= 0)
                        r = parse_expr(p, &n);
                if (r < 0)
                        return r;
                if (p->tok.kind != T_RPAREN)
                        return fail(p, p->tok.pos, "expected ')', found %s",
                                    tok_describe(p, b, sizeof(b)));
                p->depth--;
                *ret = TAKE_PTR(n);
                return lex(p);
        }
        if (p->tok.kind != T_NAME || is_reserved(&p->tok))
                return fail(p, p->tok.pos, "expected a search attribute name or '(', found %s",
                            tok_describe(p, b, sizeof(b)));
        if (++p->terms > FILTER_TERMS_MAX)
                return fail(p, p->tok.pos, "more than %d conditions", FILTER_TERMS_MAX);
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->kind = N_CMP;
        n->pos = p->tok.pos;
        n->name = TAKE_PTR(p->tok.text);
        r = lex(p);
        if (r >= 0)
                r = parse_op(p, n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}

static int node_join(NodeKind kind, Node **acc, Node *right) {
        Node *j = calloc(1, sizeof(*j));

        if (!j) {
                node_free(right);
                return -ENOMEM;
        }
        *j = (Node){ .kind = kind, .l = *acc, .r = right };
        *acc = j;
        return 0;
}

static int parse_term(Parser *p, Node **ret) {
        /* right too: a parenthesised factor is handed over before the token after it is read,
         * and that read may fail (fuzz-filter). */
        _cleanup_(node_freep) Node *acc = NULL, *right = NULL;
        int r;

        r = parse_factor(p, &acc);
        while (r >= 0 && tok_is_kw(&p->tok, "AND")) {
                r = lex(p);
                if (r >= 0)
                        r = parse_factor(p, &right);
                if (r >= 0)
                        r = node_join(N_AND, &acc, TAKE_PTR(right));
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(acc);
        return 0;
}

static int parse_expr(Parser *p, Node **ret) {
        /* right too: a parenthesised factor is handed over before the token after it is read,
         * and that read may fail (fuzz-filter). */
        _cleanup_(node_freep) Node *acc = NULL, *right = NULL;
        int r;

        r = parse_term(p, &acc);
        while (r >= 0 && tok_is_kw(&p->tok, "OR")) {
                r = lex(p);
                if (r >= 0)
                        r = parse_term(p, &right);
                if (r >= 0)
                        r = node_join(N_OR, &acc, TAKE_PTR(right));
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(acc);
        return 0;
}

/* ---- code generation ---- */

typedef struct Gen {
        char *sql;
        size_t len, cap;
        FilterParam *params;
        size_t n_params;
        filter_lookup_fn lookup;
        void *userdata;
        Parser *p;
} Gen;

static int emit(Gen *g, const char *s) {
        size_t n = strlen(s);

        if (g->len + n + 1 > g->cap) {
                size_t cap = MAX(g->cap * 2, g->len + n + 256);
                char *b = realloc(g->sql, cap);
                if (!b)
                        return -ENOMEM;
                g->sql = b;
                g->cap = cap;
        }
        memcpy(g->sql + g->len, s, n + 1);
        g->len += n;
        return 0;
}

static int param(Gen *g, FilterParamKind kind, int64_t i, double d, const char *s) {
        FilterParam *ps = realloc(g->params, (g->n_params + 1) * sizeof(*ps));
        char *copy = NULL;

        if (!ps)
                return -ENOMEM;
        g->params = ps;
        if (s && !(copy = strdup(s)))
                return -ENOMEM;
        ps[g->n_params++] = (FilterParam){ .kind = kind, .i = i, .d = d, .s = copy };
        return emit(g, "?");
}

/* An attribute as the code generator sees it. */
typedef enum AttrKind {
        A_COLUMN,   /* a column of runs */
        A_STATUS,   /* ExecutionStatus */
        A_CLOSE,    /* CloseTime: 0 while open */
        A_DURATION, /* ExecutionDuration */
        A_CUSTOM,
} AttrKind;

typedef struct Attr {
        const char *name;
        AttrKind kind;
        SaType type;
        const char *column;
} Attr;

static const Attr builtins[] = {
        { "WorkflowId", A_COLUMN, SA_KEYWORD, "workflow_id" },
        { "WorkflowType", A_COLUMN, SA_KEYWORD, "workflow_type" },
        { "RunId", A_COLUMN, SA_KEYWORD, "run_id" },
        { "TaskQueue", A_COLUMN, SA_KEYWORD, "task_queue" },
        { "ExecutionStatus", A_STATUS, SA_KEYWORD, FILTER_STATUS_SQL },
        { "StartTime", A_COLUMN, SA_DATETIME, "start_time" },
        { "CloseTime", A_CLOSE, SA_DATETIME, "close_time" },
        { "ExecutionDuration", A_DURATION, SA_INT, "(close_time - start_time)" },
};

static const Attr *builtin(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(builtins); i++)
                if (strcmp(builtins[i].name, name) == 0)
                        return &builtins[i];
        return NULL;
}

static bool op_allowed(const Attr *a, CmpOp op) {
        bool order = op <= OP_GE || op == OP_BETWEEN || op == OP_NOT_BETWEEN;

        if (op == OP_IS_NULL || op == OP_IS_NOT_NULL)
                return true;
        if (a->kind == A_STATUS)
                return op == OP_EQ || op == OP_NE || op == OP_IN || op == OP_NOT_IN;
        switch (a->type) {
        case SA_KEYWORD:
                return true;
        case SA_TEXT:
        case SA_BOOL:
                return op == OP_EQ || op == OP_NE;
        case SA_KEYWORD_LIST:
                return op == OP_EQ || op == OP_NE || op == OP_IN || op == OP_NOT_IN;
        default: /* Int, Double, Datetime */
                return order || op == OP_IN || op == OP_NOT_IN;
        }
}

/* Converts @l to the parameter kind of @a and emits it. */
static int emit_value(Gen *g, const Attr *a, const Lit *l) {
        const char *tn = a->kind == A_STATUS ? "ExecutionStatus" : sa_type_to_string(a->type);
        uint64_t usec;
        int64_t dur;

        if (a->kind == A_STATUS) {
                WorkflowStatus s = l->kind == L_STRING ? workflow_status_from_string(l->s)
                                                       : _WORKFLOW_STATUS_INVALID;
                if (s < 0)
                        return fail(g->p, l->pos,
                                    "ExecutionStatus takes one of 'Running', 'Completed', "
                                    "'Failed', 'Canceled', 'Terminated', 'ContinuedAsNew', "
                                    "'TimedOut', 'Paused'");
                return param(g, FILTER_PARAM_INT, s, 0, NULL);
        }
        if (a->kind == A_DURATION) {
                if (l->kind == L_INT && l->i >= 0)
                        return param(g, FILTER_PARAM_INT, l->i / 1000, 0, NULL); /* ns */
                if (l->kind != L_STRING || parse_duration(l->s, &dur) < 0)
                        return fail(g->p, l->pos,
                                    "ExecutionDuration takes a duration such as '90s', '1h30m' "
                                    "or '250ms', or nanoseconds");
                return param(g, FILTER_PARAM_INT, dur, 0, NULL);
        }
        switch (a->type) {
        case SA_KEYWORD:
        case SA_KEYWORD_LIST:
        case SA_TEXT:
                if (l->kind != L_STRING)
                        break;
                return param(g, FILTER_PARAM_TEXT, 0, 0, l->s);
        case SA_INT:
                if (l->kind != L_INT)
                        break;
                return param(g, FILTER_PARAM_INT, l->i, 0, NULL);
        case SA_DOUBLE:
                if (l->kind != L_INT && l->kind != L_DOUBLE)
                        break;
                return param(g, FILTER_PARAM_DOUBLE, 0, l->d, NULL);
        case SA_BOOL:
                if (l->kind != L_BOOL)
                        break;
                return param(g, FILTER_PARAM_INT, l->i, 0, NULL);
        case SA_DATETIME:
                if (l->kind != L_STRING || filter_parse_datetime(l->s, &usec) < 0)
                        return fail(g->p, l->pos,
                                    "%s is a Datetime: the value must be an RFC 3339 time such "
                                    "as '2026-11-25T10:00:00Z'",
                                    a->name);
                return param(g, FILTER_PARAM_INT, (int64_t) usec, 0, NULL);
        default:
                break;
        }
        return fail(g->p, l->pos, "%s is of type %s: the value does not fit it", a->name, tn);
}

static const char *sa_column(SaType t) {
        switch (t) {
        case SA_DOUBLE:
                return "dval";
        case SA_KEYWORD:
        case SA_KEYWORD_LIST:
        case SA_TEXT:
                return "sval";
        default:
                return "ival";
        }
}

/* Emits the prefix range [s, s with its last byte incremented) of STARTS_WITH. */
static int emit_prefix(Gen *g, const char *col, const Lit *l) {
        size_t n = strlen(l->s);
        _cleanup_free_ char *upper = strdup(l->s);
        int r;

        if (!upper)
                return -ENOMEM;
        while (n > 0 && (unsigned char) upper[n - 1] == 0xff)
                n--;
        upper[n] = 0;
        r = emit(g, "(");
        if (r >= 0)
                r = emit(g, col);
        if (r >= 0)
                r = emit(g, " >= ");
        if (r >= 0)
                r = param(g, FILTER_PARAM_TEXT, 0, 0, l->s);
        if (r >= 0 && n > 0) {
                upper[n - 1]++;
                r = emit(g, " AND ");
                if (r >= 0)
                        r = emit(g, col);
                if (r >= 0)
                        r = emit(g, " < ");
                if (r >= 0)
                        r = param(g, FILTER_PARAM_TEXT, 0, 0, upper);
        }
        return r < 0 ? r : emit(g, ")");
}

/* Emits "<col> <op> <values>" for the operators that compare values. */
static int emit_compare(Gen *g, const Attr *a, const char *col, const Node *n) {
        int r;

        switch (n->op) {
        case OP_STARTS_WITH:
        case OP_NOT_STARTS_WITH:
                if (n->vals[0].kind != L_STRING)
                        return fail(g->p, n->vals[0].pos, "STARTS_WITH takes a string");
                r = n->op == OP_NOT_STARTS_WITH ? emit(g, "NOT ") : 0;
                return r < 0 ? r : emit_prefix(g, col, &n->vals[0]);
        case OP_IN:
        case OP_NOT_IN:
                r = emit(g, col);
                if (r >= 0)
                        r = emit(g, n->op == OP_IN ? " IN (" : " NOT IN (");
                for (size_t i = 0; r >= 0 && i < n->n_vals; i++) {
                        r = i ? emit(g, ", ") : 0;
                        if (r >= 0)
                                r = emit_value(g, a, &n->vals[i]);
                }
                return r < 0 ? r : emit(g, ")");
        case OP_BETWEEN:
        case OP_NOT_BETWEEN:
                r = emit(g, col);
                if (r >= 0)
                        r = emit(g, n->op == OP_BETWEEN ? " BETWEEN " : " NOT BETWEEN ");
                if (r >= 0)
                        r = emit_value(g, a, &n->vals[0]);
                if (r >= 0)
                        r = emit(g, " AND ");
                return r < 0 ? r : emit_value(g, a, &n->vals[1]);
        default:
                r = emit(g, col);
                if (r >= 0)
                        r = emit(g, " ");
                if (r >= 0)
                        r = emit(g, op_names[n->op]);
                if (r >= 0)
                        r = emit(g, " ");
                return r < 0 ? r : emit_value(g, a, &n->vals[0]);
        }
}

/* "run_id IN (SELECT run_id FROM sattrs WHERE name = ?" — the caller closes it. */
static int emit_custom_open(Gen *g, const Attr *a, bool in) {
        int r = emit(g, in ? "run_id IN (SELECT run_id FROM sattrs WHERE name = "
                           : "run_id NOT IN (SELECT run_id FROM sattrs WHERE name = ");
        return r < 0 ? r : param(g, FILTER_PARAM_TEXT, 0, 0, a->name);
}

typedef struct TokenGen {
        Gen *g;
        const Attr *a;
        unsigned n;
} TokenGen;

static int emit_text_token(const char *token, void *userdata) {
        TokenGen *t = userdata;
        int r;

        r = emit(t->g, t->n++ ? " AND " : "");
        if (r >= 0)
                r = emit_custom_open(t->g, t->a, true);
        if (r >= 0)
                r = emit(t->g, " AND sval = ");
        if (r >= 0)
                r = param(t->g, FILTER_PARAM_TEXT, 0, 0, token);
        return r < 0 ? r : emit(t->g, ")");
}

/* Text = 'a b': every token is a token of the attribute; != negates that, for runs that have it. */
static int emit_text(Gen *g, const Attr *a, const Node *n) {
        TokenGen t = { g, a, 0 };
        int r;

        if (n->vals[0].kind != L_STRING)
                return fail(g->p, n->vals[0].pos, "%s is of type Text: the value must be a string",
                            a->name);
        if (n->op == OP_NE) {
                r = emit_custom_open(g, a, true);
                if (r >= 0)
                        r = emit(g, ") AND NOT ");
                if (r < 0)
                        return r;
        }
        r = emit(g, "(");
        if (r >= 0)
                r = filter_text_tokens(n->vals[0].s, emit_text_token, &t);
        if (r >= 0 && t.n == 0)
                r = emit(g, "0"); /* no token: matches nothing */
        return r < 0 ? r : emit(g, ")");
}

/* KeywordList: = / IN mean "contains", != / NOT IN "has the attribute, does not contain". */
static int emit_keyword_list(Gen *g, const Attr *a, const Node *n) {
        bool negated = n->op == OP_NE || n->op == OP_NOT_IN;
        Node pos = *n;
        int r = 0;

        pos.op = n->op == OP_NE || n->op == OP_EQ ? OP_EQ : OP_IN;
        if (negated) {
                r = emit_custom_open(g, a, true);
                if (r >= 0)
                        r = emit(g, ") AND ");
        }
        if (r >= 0)
                r = emit_custom_open(g, a, !negated);
        if (r >= 0)
                r = emit(g, " AND ");
        if (r >= 0)
                r = emit_compare(g, a, "sval", &pos);
        return r < 0 ? r : emit(g, ")");
}

static int emit_custom(Gen *g, const Attr *a, const Node *n) {
        int r;

        if (n->op == OP_IS_NULL || n->op == OP_IS_NOT_NULL) {
                r = emit_custom_open(g, a, n->op == OP_IS_NOT_NULL);
                return r < 0 ? r : emit(g, ")");
        }
        if (a->type == SA_TEXT)
                return emit_text(g, a, n);
        if (a->type == SA_KEYWORD_LIST)
                return emit_keyword_list(g, a, n);
        r = emit_custom_open(g, a, true);
        if (r >= 0)
                r = emit(g, " AND ");
        if (r >= 0)
                r = emit_compare(g, a, sa_column(a->type), n);
        return r < 0 ? r : emit(g, ")");
}

static int emit_builtin(Gen *g, const Attr *a, const Node *n) {
        int r;

        if (n->op == OP_IS_NULL || n->op == OP_IS_NOT_NULL) {
                if (a->kind == A_CLOSE || a->kind == A_DURATION)
                        return emit(g, n->op == OP_IS_NULL ? "close_time = 0" : "close_time != 0");
                return emit(g, n->op == OP_IS_NULL ? "0" : "1");
        }
        if (a->kind == A_CLOSE || a->kind == A_DURATION) {
                /* An open run has no CloseTime: every comparison with it is false. */
                r = emit(g, "(close_time != 0 AND ");
                if (r >= 0)
                        r = emit_compare(g, a, a->column, n);
                return r < 0 ? r : emit(g, ")");
        }
        return emit_compare(g, a, a->column, n);
}

static int gen_node(Gen *g, const Node *n) {
        const Attr *b;
        Attr custom;
        int r;

        if (n->kind != N_CMP) {
                r = emit(g, "(");
                if (r >= 0)
                        r = gen_node(g, n->l);
                if (r >= 0)
                        r = emit(g, n->kind == N_AND ? " AND " : " OR ");
                if (r >= 0)
                        r = gen_node(g, n->r);
                return r < 0 ? r : emit(g, ")");
        }
        b = builtin(n->name);
        if (!b) {
                custom = (Attr){ .name = n->name, .kind = A_CUSTOM };
                r = g->lookup ? g->lookup(n->name, &custom.type, g->userdata) : -ENOENT;
                if (r == -ENOENT)
                        return fail(g->p, n->pos,
                                    "unknown search attribute '%s' (names are case-sensitive; "
                                    "a custom attribute exists once a workflow has set it)",
                                    n->name);
                if (r < 0)
                        return r;
                b = &custom;
        }
        if (!op_allowed(b, n->op))
                return fail(g->p, n->pos, "operator %s is not supported for %s (%s)",
                            op_names[n->op], n->name,
                            b->kind == A_STATUS ? "ExecutionStatus" : sa_type_to_string(b->type));
        r = emit(g, "(");
        if (r >= 0)
                r = b->kind == A_CUSTOM ? emit_custom(g, b, n) : emit_builtin(g, b, n);
        return r < 0 ? r : emit(g, ")");
}

static int parse_order_by(Parser *p, FilterSql *f) {
        static const struct {
                const char *name, *column;
                int text;
        } keys[] = {
                { "StartTime", "start_time", 0 },   { "CloseTime", "close_time", 0 },
                { "WorkflowId", "workflow_id", 1 }, { "WorkflowType", "workflow_type", 1 },
                { "TaskQueue", "task_queue", 1 },   { "RunId", "run_id", 1 },
                { "ExecutionStatus", FILTER_STATUS_SQL, 0 },
        };
        char b[64];
        size_t i;
        int r;

        r = expect_kw(p, "BY");
        if (r < 0)
                return r;
        if (p->tok.kind != T_NAME)
                return fail(p, p->tok.pos, "expected a name after ORDER BY, found %s",
                            tok_describe(p, b, sizeof(b)));
        for (i = 0; i < ELEMENTSOF(keys); i++)
                if (strcmp(p->tok.text, keys[i].name) == 0)
                        break;
        if (i == ELEMENTSOF(keys))
                return fail(p, p->tok.pos,
                            "cannot ORDER BY '%s' (StartTime, CloseTime, WorkflowId, WorkflowType, "
                            "TaskQueue, RunId or ExecutionStatus)",
                            p->tok.text);
        f->order_column = keys[i].column;
        f->order_text = keys[i].text;
        f->order_desc = 0;
        r = lex(p);
        if (r >= 0 && (tok_is_kw(&p->tok, "ASC") || tok_is_kw(&p->tok, "DESC"))) {
                f->order_desc = tok_is_kw(&p->tok, "DESC");
                r = lex(p);
        }
        if (r >= 0 && p->tok.kind == T_COMMA)
                return fail(p, p->tok.pos, "ORDER BY takes one attribute");
        return r;
}

/* GROUP BY ExecutionStatus, the one grouping Temporal's count supports. */
static int parse_group_by(Parser *p, FilterSql *f) {
        char b[64];
        int r;

        r = lex(p);
        if (r >= 0)
                r = expect_kw(p, "BY");
        if (r < 0)
                return r;
        if (p->tok.kind != T_NAME || strcmp(p->tok.text, "ExecutionStatus") != 0)
                return fail(p, p->tok.pos, "GROUP BY takes only ExecutionStatus, found %s",
                            tok_describe(p, b, sizeof(b)));
        f->group_by_status = 1;
        return lex(p);
}

void filter_sql_done(FilterSql *f) {
        free(f->where);
        for (size_t i = 0; i < f->n_params; i++)
                free(f->params[i].s);
        free(f->params);
        *f = (FilterSql){};
}

int filter_compile(const char *query,
                   filter_lookup_fn lookup,
                   void *userdata,
                   FilterSql *ret,
                   char *err,
                   size_t errlen) {
        Parser p = { .q = query ? query : "", .err = err, .errlen = errlen };
        _cleanup_(node_freep) Node *root = NULL;
        FilterSql f = { .order_column = "start_time", .order_desc = 1 };
        Gen g = { .lookup = lookup, .userdata = userdata, .p = &p };
        char b[64];
        int r;

        if (strlen(p.q) > FILTER_QUERY_MAX)
                return fail(&p, FILTER_QUERY_MAX, "the query is longer than %d bytes",
                            FILTER_QUERY_MAX);
        r = lex(&p);
        if (r >= 0 && p.tok.kind != T_EOF && !tok_is_kw(&p.tok, "ORDER") &&
            !tok_is_kw(&p.tok, "GROUP"))
                r = parse_expr(&p, &root);
        if (r >= 0 && tok_is_kw(&p.tok, "ORDER")) {
                r = lex(&p);
                if (r >= 0)
                        r = parse_order_by(&p, &f);
        } else if (r >= 0 && tok_is_kw(&p.tok, "GROUP")) {
                r = parse_group_by(&p, &f);
        }
        if (r >= 0 && p.tok.kind != T_EOF)
                r = fail(&p, p.tok.pos, "expected AND, OR, ORDER BY, GROUP BY or the end, found %s",
                         tok_describe(&p, b, sizeof(b)));
        if (r >= 0)
                r = root ? gen_node(&g, root) : emit(&g, "1");
        free(p.tok.text);
        if (r < 0) {
                free(g.sql);
                f = (FilterSql){ .params = g.params, .n_params = g.n_params };
                filter_sql_done(&f);
                return r;
        }
        f.where = g.sql;
        f.params = g.params;
        f.n_params = g.n_params;
        *ret = f;
        return 0;
}
