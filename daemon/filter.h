#pragma once
/* Filter: the list filter language of ListWorkflows and CountWorkflows, in the style of Temporal's
 * (https://docs.temporal.io/list-filter), compiled to an SQL condition over the runs table with
 * every value bound as a parameter (never pasted into the SQL text). Parsing and compiling are
 * pure: the types of custom search attributes come from a lookup callback (the store's registry).
 *
 *   query   := [expr] [ORDER BY name [ASC|DESC] | GROUP BY ExecutionStatus]
 *   expr    := term {OR term}          term := factor {AND factor}
 *   factor  := '(' expr ')' | name op value | name [NOT] IN '(' value {, value} ')'
 *            | name [NOT] BETWEEN value AND value | name [NOT] STARTS_WITH string
 *            | name IS [NOT] NULL
 *   op      := = | != | <> | < | > | <= | >=
 *   value   := 'string' | "string" | number | true | false
 *
 * Names are case-sensitive (built-ins: WorkflowId, WorkflowType, RunId, TaskQueue,
 * ExecutionStatus, StartTime, CloseTime, ExecutionDuration); keywords are not. */

#include <stddef.h>
#include <stdint.h>

#define FILTER_QUERY_MAX 16384 /* bytes of query text */
#define FILTER_DEPTH_MAX 32    /* nested parentheses */
#define FILTER_TERMS_MAX 256   /* comparisons in one query */
/* ExecutionStatus over the columns of runs: the stored status, but Paused (8) for a running run
 * (1) an operator paused; the expression of the index runs_xstatus (store.c). */
#define FILTER_STATUS_SQL "(status + 7 * paused)"

/* Search attribute types (Temporal's IndexedValueType names). The numbers are stored. */
typedef enum SaType {
        SA_KEYWORD = 1,
        SA_TEXT = 2,
        SA_INT = 3,
        SA_DOUBLE = 4,
        SA_BOOL = 5,
        SA_DATETIME = 6,
        SA_KEYWORD_LIST = 7,
        _SA_TYPE_MAX,
        _SA_TYPE_INVALID = -22,
} SaType;

const char *sa_type_to_string(SaType t); /* "Keyword", ...; NULL when unknown */
SaType sa_type_from_string(const char *s);

/* RFC 3339 ("2026-11-25T10:00:00Z", fraction and offset optional; a date alone is midnight UTC)
 * to usec since the epoch. -EINVAL when malformed or before 1970. */
int filter_parse_datetime(const char *s, uint64_t *ret_usec);
/* Splits Text into the lowercase tokens a Text condition matches (letters and digits; everything
 * else separates). Calls @cb for each; stops at its first negative return. */
int filter_text_tokens(const char *s, int (*cb)(const char *token, void *userdata), void *userdata);

typedef enum FilterParamKind {
        FILTER_PARAM_INT,
        FILTER_PARAM_DOUBLE,
        FILTER_PARAM_TEXT,
} FilterParamKind;

typedef struct FilterParam {
        FilterParamKind kind;
        int64_t i;
        double d;
        char *s; /* owned */
} FilterParam;

/* What filter_compile() makes of a query. */
typedef struct FilterSql {
        char *where; /* a condition over the columns of runs, "1" for an empty query */
        FilterParam *params;
        size_t n_params;
        const char *order_column; /* a runs column (static string) */
        int order_desc;
        int order_text;      /* the order column holds text (page tokens carry its value) */
        int group_by_status; /* GROUP BY ExecutionStatus (CountWorkflows only) */
} FilterSql;

void filter_sql_done(FilterSql *f);

/* Looks up a custom search attribute: 0 and its type, or -ENOENT when it was never set. */
typedef int (*filter_lookup_fn)(const char *name, SaType *ret_type, void *userdata);

/* Compiles @query. On a bad query returns -EINVAL and writes into @err a sentence naming the
 * position (1-based byte offset) and the problem. -ENOMEM when out of memory. */
int filter_compile(const char *query,
                   filter_lookup_fn lookup,
                   void *userdata,
                   FilterSql *ret,
                   char *err,
                   size_t errlen);
