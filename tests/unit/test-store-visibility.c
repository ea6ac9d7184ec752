/* Tests of the visibility part of daemon/store.c: the list filter's SQL runs, and each kind of
 * condition is served by an index (EXPLAIN QUERY PLAN), not by a scan of every run. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/filter.h"
#include "daemon/store.h"
#include "tests/lib/test.h"

static int lookup(const char *name, SaType *ret, void *userdata) {
        return store_sattr_type(userdata, name, ret);
}

/* The plan of @query for an administrator, or for uid 1000 with @only_uid. */
static char *plan(Store *s, const char *query, bool only_uid) {
        FilterSql f = {};
        char err[256] = "", *p = NULL;

        if (filter_compile(query, lookup, s, &f, err, sizeof(err)) < 0)
                test_fail(__FILE__, __LINE__, "query %s: %s", query, err);
        ASSERT_OK(store_runs_query_plan(
                s, &(RunQuery){ .filter = &f, .only_uid = only_uid, .uid = 1000 }, &p));
        filter_sql_done(&f);
        printf("plan of %s:\n%s", query, p);
        return p;
}

static void expect_plan(Store *s, const char *query, const char *needle) {
        char *p = plan(s, query, false);

        if (!strstr(p, needle))
                test_fail(__FILE__, __LINE__, "plan of %s lacks '%s'", query, needle);
        ASSERT_NULL(strstr(p, "SCAN runs\n")); /* a full scan would say exactly this */
        free(p);
}

TEST(filters_use_indexes) {
        char dir[] = "/tmp/test-store-visibility-XXXXXX", path[128];
        Store *s = NULL;

        ASSERT_NOT_NULL(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/db", dir);
        ASSERT_OK(store_open(&s, path, STORE_DURABILITY_NORMAL));
        ASSERT_OK(store_begin(s));
        ASSERT_OK(store_sattr_register(s, "Amount", SA_INT));
        ASSERT_OK(store_sattr_register(s, "Price", SA_DOUBLE));
        ASSERT_OK(store_sattr_register(s, "Customer", SA_KEYWORD));
        ASSERT_OK(store_sattr_register(s, "Tags", SA_KEYWORD_LIST));
        ASSERT_OK(store_commit(s));

        expect_plan(s, "Amount > 10", "sattrs_ival (name=? AND ival>?)");
        expect_plan(s, "Price BETWEEN 1 AND 2", "sattrs_dval (name=? AND dval>? AND dval<?)");
        expect_plan(s, "Customer STARTS_WITH 'c-'", "sattrs_sval (name=? AND sval>? AND sval<?)");
        expect_plan(s, "Tags IN ('a', 'b')", "sattrs_sval (name=? AND sval=?)");
        expect_plan(s, "WorkflowType = 'Order'", "runs_type");
        expect_plan(s, "ExecutionStatus = 'Failed'", "runs_xstatus");
        expect_plan(s, "ExecutionStatus = 'Paused'", "runs_xstatus");
        expect_plan(s, "", "runs_list");
        expect_plan(s, "ORDER BY WorkflowId", "SCAN runs USING INDEX runs_wid");

        store_free(s);
        snprintf(path, sizeof(path), "rm -rf %s", dir);
        ASSERT_EQ(system(path), 0);
}

DEFINE_TEST_MAIN();
