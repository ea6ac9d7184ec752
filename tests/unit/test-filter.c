/* Tests of daemon/filter.c: the list filter language compiled to SQL with bound parameters
 * (values never in the SQL text), its types and operators, and its error messages. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/filter.h"
#include "tests/lib/test.h"

/* Custom attributes of the tests: Amount Int, Price Double, Vip Bool, Due Datetime, Tags
 * KeywordList, Note Text, Customer Keyword. */
static int lookup(const char *name, SaType *ret, void *userdata) {
        static const struct {
                const char *name;
                SaType type;
        } attrs[] = { { "Amount", SA_INT },      { "Price", SA_DOUBLE },      { "Vip", SA_BOOL },
                      { "Due", SA_DATETIME },    { "Tags", SA_KEYWORD_LIST }, { "Note", SA_TEXT },
                      { "Customer", SA_KEYWORD } };

        for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
                if (strcmp(name, attrs[i].name) == 0) {
                        *ret = attrs[i].type;
                        return 0;
                }
        return -ENOENT;
}

static FilterSql compile_ok(const char *q) {
        FilterSql f = {};
        char err[256] = "";
        int r = filter_compile(q, lookup, NULL, &f, err, sizeof(err));

        if (r < 0)
                test_fail(__FILE__, __LINE__, "query %s failed: %s", q, err);
        return f;
}

static void expect_error(const char *q, const char *needle) {
        FilterSql f = {};
        char err[256] = "";

        ASSERT_ERROR(filter_compile(q, lookup, NULL, &f, err, sizeof(err)), -EINVAL);
        if (!strstr(err, needle))
                test_fail(__FILE__, __LINE__, "query %s: message '%s' lacks '%s'", q, err, needle);
        ASSERT_NULL(f.where);
}

TEST(builtins_compile_to_columns_with_bound_values) {
        FilterSql f = compile_ok("WorkflowType = 'Order''s' AND (ExecutionStatus = 'Running' OR "
                                 "StartTime > '2026-11-25T10:00:00Z')");

        /* ExecutionStatus is the stored status, but Paused for a paused run (FILTER_STATUS_SQL). */
        ASSERT_STREQ(f.where, "((workflow_type = ?) AND (((status + 7 * paused) = ?) OR "
                              "(start_time > ?)))");
        ASSERT_EQ(f.n_params, 3u);
        ASSERT_EQ(f.params[0].kind, FILTER_PARAM_TEXT);
        ASSERT_STREQ(f.params[0].s, "Order's");
        ASSERT_EQ(f.params[1].i, 1); /* Running */
        ASSERT_EQ(f.params[2].i, 1795600800LL * 1000000);
        ASSERT_STREQ(f.order_column, "start_time");
        ASSERT_EQ(f.order_desc, 1);
        filter_sql_done(&f);

        f = compile_ok("ExecutionStatus = 'Paused'");
        ASSERT_EQ(f.params[0].i, 8);
        filter_sql_done(&f);

        f = compile_ok("");
        ASSERT_STREQ(f.where, "1");
        ASSERT_EQ(f.n_params, 0u);
        filter_sql_done(&f);

        f = compile_ok("WorkflowId STARTS_WITH 'ab' ORDER BY WorkflowId");
        ASSERT_STREQ(f.where, "((workflow_id >= ? AND workflow_id < ?))");
        ASSERT_STREQ(f.params[0].s, "ab");
        ASSERT_STREQ(f.params[1].s, "ac");
        ASSERT_STREQ(f.order_column, "workflow_id");
        ASSERT_EQ(f.order_desc, 0);
        ASSERT_EQ(f.order_text, 1);
        filter_sql_done(&f);

        f = compile_ok("CloseTime IS NULL OR ExecutionDuration > '1h30m'");
        ASSERT_STREQ(f.where, "((close_time = 0) OR ((close_time != 0 AND (close_time - "
                              "start_time) > ?)))");
        ASSERT_EQ(f.params[0].i, 5400LL * 1000000);
        filter_sql_done(&f);
}

TEST(custom_attributes_use_the_typed_side_table) {
        FilterSql f = compile_ok("Amount BETWEEN 1 AND 5 AND Price >= 2 AND Vip = true");

        ASSERT_NOT_NULL(strstr(f.where, "run_id IN (SELECT run_id FROM sattrs WHERE name = ? AND "
                                        "ival BETWEEN ? AND ?)"));
        ASSERT_NOT_NULL(strstr(f.where, "dval >= ?"));
        ASSERT_EQ(f.n_params, 7u);
        ASSERT_EQ(f.params[4].kind, FILTER_PARAM_DOUBLE);
        ASSERT_EQ(f.params[6].i, 1);
        filter_sql_done(&f);

        f = compile_ok("Tags != 'x'");
        ASSERT_NOT_NULL(strstr(f.where, "run_id NOT IN"));
        filter_sql_done(&f);

        /* Text: one condition per token, lowercased. */
        f = compile_ok("Note = 'Fragile, GLASS'");
        ASSERT_EQ(f.n_params, 4u);
        ASSERT_STREQ(f.params[1].s, "fragile");
        ASSERT_STREQ(f.params[3].s, "glass");
        filter_sql_done(&f);

        f = compile_ok("Customer IS NULL");
        ASSERT_STREQ(f.where, "(run_id NOT IN (SELECT run_id FROM sattrs WHERE name = ?))");
        filter_sql_done(&f);
}

TEST(values_never_reach_the_sql_text) {
        FilterSql f = compile_ok("Customer = 'x'' OR 1=1; DROP TABLE runs; --'");

        ASSERT_NULL(strchr(f.where, '\''));
        ASSERT_NULL(strstr(f.where, "DROP"));
        ASSERT_STREQ(f.params[1].s, "x' OR 1=1; DROP TABLE runs; --");
        filter_sql_done(&f);
}

TEST(errors_name_position_and_problem) {
        expect_error("WorkflowId =", "position 13: expected a value");
        expect_error("WorkflowId = 'a", "position 14: string not closed");
        expect_error("Amount = 'ten'", "Amount is of type Int");
        expect_error("Note < 'a'", "operator < is not supported for Note (Text)");
        expect_error("Vip IN (true)", "operator IN is not supported for Vip (Bool)");
        expect_error("Due > 'tomorrow'", "RFC 3339");
        expect_error("Missing = 1", "unknown search attribute 'Missing'");
        expect_error("WorkflowId = 'a' ORDER BY Amount", "cannot ORDER BY 'Amount'");
        expect_error("ORDER BY StartTime, WorkflowId", "ORDER BY takes one attribute");
        expect_error("AND", "expected a search attribute name");
        expect_error("WorkflowId IN ('a' 'b')", "expected ',' or ')'");
        expect_error(
                "((((((((((((((((((((((((((((((((((WorkflowId = 'a'))))))))))))))))))))))))))))))))))",
                "nested deeper than 32");
        expect_error("WorkflowId ! 'a'", "did you mean '!='");
        expect_error("GROUP BY WorkflowType", "GROUP BY takes only ExecutionStatus");
        {
                FilterSql f = compile_ok("Amount > 1 GROUP BY ExecutionStatus");
                ASSERT_EQ(f.group_by_status, 1);
                filter_sql_done(&f);
        }
}

TEST(datetimes_and_tokens) {
        uint64_t t;

        ASSERT_OK(filter_parse_datetime("1970-01-01T00:00:01Z", &t));
        ASSERT_EQ(t, 1000000u);
        ASSERT_OK(filter_parse_datetime("2026-11-25T10:00:00.5+01:00", &t));
        ASSERT_EQ(t, (1795600800ULL - 3600) * 1000000 + 500000);
        ASSERT_OK(filter_parse_datetime("2026-11-25", &t));
        ASSERT_EQ(t, 1795564800ULL * 1000000);
        ASSERT_ERROR(filter_parse_datetime("2026-02-30", &t), -EINVAL);
        ASSERT_ERROR(filter_parse_datetime("2026-11-25T10:00:00", &t), -EINVAL);
        ASSERT_ERROR(filter_parse_datetime("1969-12-31T23:59:59Z", &t), -EINVAL);
        ASSERT_EQ(sa_type_from_string("KeywordList"), SA_KEYWORD_LIST);
        ASSERT_EQ(sa_type_from_string("keyword"), _SA_TYPE_INVALID);
        ASSERT_STREQ(sa_type_to_string(SA_DATETIME), "Datetime");
}

DEFINE_TEST_MAIN();
