/* Visibility through the real daemon (SEMANTICS.md b.13, doc/protocol.md "Visibility"): memo and
 * typed search attributes set at start and upserted by workflow code, the list filter of
 * ListWorkflows and CountWorkflows, page tokens, and bad filters and attributes answered with
 * invalid_argument naming the problem. */

#include <errno.h>
#include <string.h>

#include "tests/integration/worker-util.h"

/* call_json() that also drops @request. */
static json_t *call(dur_client *c, json_t *request, int *ret_error) {
        json_t *a = call_json(c, request, ret_error);

        json_decref(request);
        return a;
}

/* StartWorkflow of a run nobody works on, with extra fields from @extra (a JSON object). */
static json_t *
start_raw(dur_client *c, const char *id, const char *type, json_t *extra, int *ret_error) {
        json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "op", "StartWorkflow", "workflow_id", id,
                                "workflow_type", type, "task_queue", "nobody-polls");
        json_t *a;

        if (extra)
                json_object_update(req, extra);
        a = call_json(c, req, ret_error);
        json_decref(req);
        json_decref(extra);
        return a;
}

static void start_sa(dur_client *c, const char *id, const char *type, json_t *sa) {
        int error = 0;
        json_t *a = start_raw(c, id, type, json_pack("{s:o}", "search_attributes", sa), &error);

        ASSERT_NOT_NULL(a);
        json_decref(a);
}

static json_t *sa(const char *type, json_t *value) {
        return json_pack("{s:s, s:o}", "type", type, "value", value);
}

/* The workflow ids ListWorkflows answers for @query, in order, joined by spaces. */
static char *list_ids(dur_client *c, const char *query, json_int_t limit, char **ret_token) {
        json_t *req = json_pack("{s:s, s:s}", "op", "ListWorkflows", "query", query);
        json_t *a, *w;
        char *out = calloc(1, 4096);
        int error = 0;
        size_t i;

        if (limit)
                json_object_set_new(req, "limit", json_integer(limit));
        if (ret_token && *ret_token)
                json_object_set_new(req, "page_token", json_string(*ret_token));
        a = call_json(c, req, &error);
        json_decref(req);
        ASSERT_NOT_NULL(a);
        json_array_foreach(json_object_get(a, "workflows"), i, w) {
                if (i)
                        strcat(out, " ");
                strcat(out, json_string_value(json_object_get(w, "workflow_id")));
        }
        if (ret_token) {
                free(*ret_token);
                w = json_object_get(a, "next_page_token");
                *ret_token = w ? strdup(json_string_value(w)) : NULL;
        }
        json_decref(a);
        return out;
}

static uint64_t count(dur_client *c, const char *query) {
        uint64_t n = 0;

        ASSERT_DUR_OK(c, dur_client_count(c, query, &n));
        return n;
}

/* The error message of a list with @query, which must fail with invalid_argument. */
static char *list_error(dur_client *c, const char *query) {
        json_t *req = json_pack("{s:s, s:s}", "op", "ListWorkflows", "query", query);
        int error = 0;

        ASSERT_NULL(call_json(c, req, &error));
        json_decref(req);
        ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        return strdup(dur_client_error_message(c));
}

static void assert_list(dur_client *c, const char *query, const char *want) {
        char *got = list_ids(c, query, 0, NULL);

        if (!streq(got, want))
                test_fail(__FILE__, __LINE__, "query %s: got '%s', want '%s'", query, got, want);
        free(got);
}

static void setup_orders(dur_client *c) {
        start_sa(c, "o1", "OrderWorkflow",
                 json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "CustomerId",
                           sa("Keyword", json_string("cust-1")), "Amount",
                           sa("Int", json_integer(100)), "Weight", sa("Double", json_real(2.5)),
                           "Express", sa("Bool", json_true()), "Note",
                           sa("Text", json_string("Fragile glass, handle with care")), "Due",
                           sa("Datetime", json_string("2026-01-10T12:00:00Z"))));
        start_sa(c, "o2", "OrderWorkflow",
                 json_pack("{s:o, s:o, s:o, s:o}", "CustomerId",
                           sa("Keyword", json_string("cust-2")), "Amount",
                           sa("Int", json_integer(250)), "Express", sa("Bool", json_false()),
                           "Regions", sa("KeywordList", json_pack("[s,s]", "eu", "us"))));
        start_sa(c, "o3", "OrderWorkflow",
                 json_pack("{s:o, s:o, s:o}", "CustomerId", sa("Keyword", json_string("other")),
                           "Amount", sa("Int", json_integer(-5)), "Regions",
                           sa("KeywordList", json_pack("[s]", "asia"))));
        start_sa(c, "b1", "BackupWorkflow", json_object());
}

TEST(filter_language_over_builtin_and_custom_attributes) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        int error = 0;

        test_daemon_start(&d, NULL);
        c = client_connect();
        setup_orders(c);
        ASSERT_DUR_OK(c, dur_client_terminate(c, "o3", NULL, "test"));

        /* Newest first by default. */
        assert_list(c, "", "b1 o3 o2 o1");
        assert_list(c, "WorkflowType = 'OrderWorkflow'", "o3 o2 o1");
        assert_list(c, "WorkflowType = 'OrderWorkflow' AND ExecutionStatus = 'Running'", "o2 o1");
        assert_list(c, "ExecutionStatus != 'Running'", "o3");
        assert_list(c, "ExecutionStatus IN ('Terminated', 'Completed')", "o3");
        assert_list(c, "StartTime > '2020-01-01T00:00:00Z' AND WorkflowId = 'o1'", "o1");
        assert_list(c, "StartTime < '2020-01-01T00:00:00Z'", "");
        assert_list(c, "CloseTime IS NULL AND WorkflowType = 'OrderWorkflow'", "o2 o1");
        assert_list(c, "CloseTime IS NOT NULL", "o3");
        assert_list(c, "WorkflowId STARTS_WITH 'o'", "o3 o2 o1");
        assert_list(c, "WorkflowId NOT IN ('o1', 'o2')", "b1 o3");
        assert_list(c, "CustomerId = 'cust-1' OR CustomerId = 'other'", "o3 o1");
        assert_list(c, "CustomerId STARTS_WITH 'cust-'", "o2 o1");
        assert_list(c, "CustomerId != 'cust-1'", "o3 o2"); /* b1 has no CustomerId */
        assert_list(c, "Amount > 99", "o2 o1");
        assert_list(c, "Amount BETWEEN 0 AND 200", "o1");
        assert_list(c, "Amount <= 100 AND (Express = true OR Amount < 0)", "o3 o1");
        assert_list(c, "Express = false", "o2");
        assert_list(c, "Weight >= 2.5", "o1");
        assert_list(c, "Note = 'glass'", "o1");
        assert_list(c, "Note = 'HANDLE glass'", "o1");
        assert_list(c, "Note = 'metal'", "");
        assert_list(c, "Due < '2026-02-01T00:00:00Z'", "o1");
        assert_list(c, "Regions = 'us'", "o2");
        assert_list(c, "Regions IN ('asia', 'eu')", "o3 o2");
        assert_list(c, "Regions != 'us'", "o3");
        assert_list(c, "Regions IS NULL", "b1 o1");
        assert_list(c, "WorkflowType = 'OrderWorkflow' ORDER BY WorkflowId", "o1 o2 o3");
        assert_list(c, "ORDER BY WorkflowId DESC", "o3 o2 o1 b1");
        ASSERT_EQ(count(c, NULL), 4u);
        ASSERT_EQ(count(c, "ExecutionStatus = 'Running'"), 3u);
        ASSERT_EQ(count(c, "Amount > 0 AND CustomerId STARTS_WITH 'cust'"), 2u);
        /* GROUP BY ExecutionStatus (count only, as in Temporal). */
        {
                json_t *a =
                        call(c,
                             json_pack("{s:s, s:s}", "op", "CountWorkflows", "query",
                                       "WorkflowType = 'OrderWorkflow' GROUP BY ExecutionStatus"),
                             &error);
                json_t *g;

                ASSERT_NOT_NULL(a);
                ASSERT_EQ(json_integer_value(json_object_get(a, "count")), 3);
                g = json_object_get(a, "groups");
                ASSERT_EQ(json_array_size(g), 2u);
                ASSERT_STREQ(json_string_value(json_object_get(json_array_get(g, 0), "status")),
                             "Running");
                ASSERT_EQ(json_integer_value(json_object_get(json_array_get(g, 0), "count")), 2);
                ASSERT_STREQ(json_string_value(json_object_get(json_array_get(g, 1), "status")),
                             "Terminated");
                ASSERT_EQ(json_integer_value(json_object_get(json_array_get(g, 1), "count")), 1);
                json_decref(a);
                free(list_error(c, "GROUP BY ExecutionStatus"));
                ASSERT_NOT_NULL(
                        strstr(dur_client_error_message(c), "GROUP BY is for CountWorkflows"));
        }
        dur_client_free(c);
}

TEST(page_tokens_walk_a_list_stable_under_inserts) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        char id[32], *token = NULL, *page;
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        for (int i = 0; i < 5; i++) {
                snprintf(id, sizeof(id), "p%d", i);
                start_sa(c, id, "PageWorkflow", json_object());
        }
        page = list_ids(c, "WorkflowType = 'PageWorkflow'", 2, &token);
        ASSERT_STREQ(page, "p4 p3");
        free(page);
        ASSERT_NOT_NULL(token);
        /* A run started between two pages does not shift the next page. */
        start_sa(c, "p5", "PageWorkflow", json_object());
        page = list_ids(c, "WorkflowType = 'PageWorkflow'", 2, &token);
        ASSERT_STREQ(page, "p2 p1");
        free(page);
        page = list_ids(c, "WorkflowType = 'PageWorkflow'", 2, &token);
        ASSERT_STREQ(page, "p0");
        free(page);
        ASSERT_NULL(token);
        /* A token of another query is refused. */
        token = NULL;
        free(list_ids(c, "ORDER BY WorkflowId", 2, &token));
        ASSERT_NOT_NULL(token);
        {
                json_t *req = json_pack("{s:s, s:s, s:s}", "op", "ListWorkflows", "query",
                                        "WorkflowId = 'p1'", "page_token", token);
                int error = 0;
                ASSERT_NULL(call_json(c, req, &error));
                json_decref(req);
                ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
                ASSERT_NOT_NULL(strstr(dur_client_error_message(c), "page_token"));
        }
        /* ORDER BY WorkflowId walks by name. */
        page = list_ids(c, "ORDER BY WorkflowId", 2, &token);
        ASSERT_STREQ(page, "p2 p3");
        free(page);
        free(token);
        /* The same walk through libdurable's dur_client_list(). */
        {
                char ids[64] = "", *next = NULL;
                unsigned pages = 0;

                do {
                        dur_list_page pg = {};

                        ASSERT_DUR_OK(c, dur_client_list(c, "WorkflowType = 'PageWorkflow'", next,
                                                         4, &pg));
                        free(next);
                        next = pg.next_page_token ? strdup(pg.next_page_token) : NULL;
                        for (size_t i = 0; i < pg.n; i++) {
                                ASSERT_STREQ(pg.items[i].status, "Running");
                                ASSERT_STREQ(pg.items[i].workflow_type, "PageWorkflow");
                                strcat(ids, pg.items[i].workflow_id);
                                strcat(ids, " ");
                        }
                        dur_list_page_done(&pg);
                        pages++;
                } while (next);
                ASSERT_STREQ(ids, "p5 p4 p3 p2 p1 p0 ");
                ASSERT_EQ(pages, 2u);
        }
        dur_client_free(c);
}

TEST(bad_filters_are_invalid_argument_naming_the_problem) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        static const struct {
                const char *query, *needle;
        } cases[] = {
                { "WorkflowType = ", "position 16: expected a value" },
                { "WorkflowType = 'x", "position 16: string not closed" },
                { "(WorkflowId = 'a'", "expected ')'" },
                { "Nope = 'a'", "unknown search attribute 'Nope'" },
                { "workflowtype = 'a'", "unknown search attribute 'workflowtype'" },
                { "StartTime > 'yesterday'", "RFC 3339" },
                { "ExecutionStatus = 'Sleeping'", "ExecutionStatus takes one of" },
                { "ExecutionStatus STARTS_WITH 'R'", "STARTS_WITH is not supported" },
                { "WorkflowId = 'a' AND", "position 21" },
                { "WorkflowId = 'a' ORDER BY Amount", "cannot ORDER BY 'Amount'" },
                { "WorkflowId = 'a' 'b'", "expected AND, OR, ORDER BY, GROUP BY or the end" },
                { "WorkflowId ~ 'a'", "unexpected character '~'" },
        };
        dur_client *c;
        json_t *before, *after;
        int error = 0;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_sa(c, "w", "T", json_object());
        before = call(c, json_pack("{s:s}", "op", "ListWorkflows"), &error);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *m = list_error(c, cases[i].query);
                if (!strstr(m, cases[i].needle))
                        test_fail(__FILE__, __LINE__, "query %s: message '%s' lacks '%s'",
                                  cases[i].query, m, cases[i].needle);
                free(m);
        }
        /* The same for CountWorkflows; nothing changed. */
        {
                uint64_t n = 0;
                ASSERT_EQ(dur_client_count(c, "Amount >", &n), -EINVAL);
                ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        }
        after = call(c, json_pack("{s:s}", "op", "ListWorkflows"), &error);
        ASSERT_TRUE(json_equal(json_object_get(before, "workflows"),
                               json_object_get(after, "workflows")));
        json_decref(before);
        json_decref(after);
        dur_client_free(c);
}

TEST(bad_search_attributes_and_memo_start_nothing) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        dur_client *c;
        int error = 0;

        test_daemon_start(&d, NULL);
        c = client_connect();
        start_sa(c, "first", "T", json_pack("{s:o}", "Amount", sa("Int", json_integer(1))));
        ASSERT_NULL(start_raw(c, "x1", "T",
                              json_pack("{s:{s:o}}", "search_attributes", "Amount",
                                        sa("Keyword", json_string("1"))),
                              &error));
        ASSERT_STREQ(dur_client_error_code(c), "invalid_argument");
        ASSERT_NOT_NULL(
                strstr(dur_client_error_message(c), "'Amount' is of type Int, not Keyword"));
        ASSERT_NULL(start_raw(c, "x2", "T",
                              json_pack("{s:{s:o}}", "search_attributes", "Bad",
                                        sa("Colour", json_string("red"))),
                              &error));
        ASSERT_NOT_NULL(strstr(dur_client_error_message(c), "type one of Keyword"));
        ASSERT_NULL(start_raw(c, "x3", "T",
                              json_pack("{s:{s:o}}", "search_attributes", "WorkflowId",
                                        sa("Keyword", json_string("a"))),
                              &error));
        ASSERT_NOT_NULL(strstr(dur_client_error_message(c), "built-in"));
        ASSERT_NULL(start_raw(c, "x4", "T", json_pack("{s:s}", "memo", "not a map"), &error));
        ASSERT_NOT_NULL(strstr(dur_client_error_message(c), "\"memo\" must be a map"));
        /* The same name twice in one map (msgpack allows it, JSON does not). */
        {
                msgpack_sbuffer sb;
                msgpack_packer pk;
                dur_buf *answer = NULL;

                msgpack_sbuffer_init(&sb);
                msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                msgpack_pack_map(&pk, 5);
                msgpack_pack_str_with_body(&pk, "op", 2);
                msgpack_pack_str_with_body(&pk, "StartWorkflow", 13);
                msgpack_pack_str_with_body(&pk, "workflow_id", 11);
                msgpack_pack_str_with_body(&pk, "x5", 2);
                msgpack_pack_str_with_body(&pk, "workflow_type", 13);
                msgpack_pack_str_with_body(&pk, "T", 1);
                msgpack_pack_str_with_body(&pk, "task_queue", 10);
                msgpack_pack_str_with_body(&pk, "q", 1);
                msgpack_pack_str_with_body(&pk, "search_attributes", 17);
                msgpack_pack_map(&pk, 2);
                for (int i = 0; i < 2; i++) {
                        msgpack_pack_str_with_body(&pk, "Amount", 6);
                        msgpack_pack_map(&pk, 2);
                        msgpack_pack_str_with_body(&pk, "type", 4);
                        msgpack_pack_str_with_body(&pk, "Int", 3);
                        msgpack_pack_str_with_body(&pk, "value", 5);
                        msgpack_pack_int(&pk, i);
                }
                ASSERT_EQ(dur_client_call(c, &(dur_buf){ sb.data, sb.size }, &answer), -EINVAL);
                ASSERT_NOT_NULL(strstr(dur_client_error_message(c), "'Amount' is given twice"));
                msgpack_sbuffer_destroy(&sb);
        }
        ASSERT_EQ(count(c, NULL), 1u);
        dur_client_free(c);
}

TEST(memo_and_attributes_shown_by_describe_and_upserted_by_the_workflow) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        static const char *const tags[] = { "red" };
        const dur_search_attr attrs[] = {
                { .name = "Stage", .type = DUR_SA_KEYWORD, .str = "new" },
                { .name = "Temp", .type = DUR_SA_INT, .num = 1 },
                { .name = "Tags", .type = DUR_SA_KEYWORD_LIST, .list = tags, .list_len = 1 },
        };
        dur_buf *memo = ASSERT_NOT_NULL(dur_args("{s:s, s:i}", "owner", "alice", "priority", 2));
        dur_start_opts opts = { .workflow_id = "up",
                                .task_queue = "test-worker",
                                .memo = memo,
                                .search_attributes = attrs,
                                .n_search_attributes = 3 };
        dur_outcome o = {};
        json_t *a, *s, *events;
        dur_client *c;
        int error = 0;

        test_daemon_start(&d, NULL);
        c = client_connect();
        ASSERT_DUR_OK(c, dur_client_start(c, "UpsertWorkflow", &opts, NULL, NULL));
        dur_buf_free(memo);
        ASSERT_EQ(count(c, "Stage = 'new' AND Temp = 1 AND Tags = 'red'"), 1u);

        test_worker_spawn(&worker, "test-worker", NULL);
        ASSERT_EQ(wait_outcome(c, "up", &o), 0);
        dur_outcome_done(&o);

        a = call(c, json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "up"), &error);
        ASSERT_NOT_NULL(a);
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(a, "memo"), "owner")),
                     "alice");
        s = json_object_get(a, "search_attributes");
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(s, "Stage"), "value")),
                     "shipped");
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(s, "Tags"), "type")),
                     "KeywordList");
        ASSERT_EQ(json_array_size(json_object_get(json_object_get(s, "Tags"), "value")), 2u);
        ASSERT_NULL(json_object_get(s, "Temp"));
        json_decref(a);

        /* The filter sees the upserted values, not the old ones. */
        ASSERT_EQ(count(c, "Stage = 'shipped' AND Tags = 'green'"), 1u);
        ASSERT_EQ(count(c, "Stage = 'new'"), 0u);
        ASSERT_EQ(count(c, "Tags = 'red'"), 0u);
        ASSERT_EQ(count(c, "Temp IS NULL"), 1u);

        events = history_get(c, "up");
        history_must(events, "UpsertWorkflowSearchAttributes");
        /* The started event records memo and attributes as given at start (as Temporal's). */
        {
                json_t *started = history_must(events, "WorkflowExecutionStarted");
                ASSERT_STREQ(json_string_value(json_object_get(ev_attr(started, "memo"), "owner")),
                             "alice");
                ASSERT_STREQ(
                        json_string_value(json_object_get(
                                json_object_get(ev_attr(started, "search_attributes"), "Stage"),
                                "value")),
                        "new");
        }
        json_decref(events);
        dur_client_free(c);
}

/* durablectl: start --memo/--search-attribute, describe, list --query with pages, count. */
#define CTL(r, ...)                                                                      \
        ({                                                                               \
                test_run_free(r);                                                        \
                test_run((r), STRV(test_bin("DURABLECTL_BIN"), __VA_ARGS__), &ctl_opts); \
        })
static const TestRunOpts ctl_opts = { .env = STRV("DURABLECTL_PAGER=cat", "NO_COLOR=1") };

TEST(durablectl_memo_search_attributes_list_and_count) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_run_free) TestRun r = {};
        json_t *j, *sa_map;

        test_daemon_start(&d, NULL);
        ASSERT_EQ(CTL(&r, "start", "OrderWorkflow", "--id", "c1", "--task-queue", "q", "--memo",
                      "owner=\"alice\"", "--search-attribute", "CustomerId=Keyword:c-1",
                      "--search-attribute", "Amount=Int:120", "--search-attribute",
                      "Tags=KeywordList:[\"a\",\"b\"]", "--search-attribute",
                      "Due=Datetime:2026-12-01T00:00:00Z"),
                  0);
        ASSERT_EQ(CTL(&r, "start", "OrderWorkflow", "--id", "c2", "--task-queue", "q",
                      "--search-attribute", "Amount=Int:5"),
                  0);
        ASSERT_EQ(CTL(&r, "describe", "c1"), 0);
        ASSERT_NOT_NULL(strstr(r.out, "owner = \"alice\""));
        ASSERT_NOT_NULL(strstr(r.out, "CustomerId = \"c-1\""));
        ASSERT_EQ(CTL(&r, "describe", "c1", "--json"), 0);
        j = json_loads(r.out, 0, NULL);
        ASSERT_NOT_NULL(j);
        sa_map = json_object_get(j, "search_attributes");
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(sa_map, "Amount"), "value")),
                  120);
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(j, "memo"), "owner")),
                     "alice");
        json_decref(j);

        ASSERT_EQ(CTL(&r, "list", "--query", "Amount > 100 AND Tags = 'b'"), 0);
        ASSERT_NOT_NULL(strstr(r.out, "\nc1 "));
        ASSERT_NULL(strstr(r.out, "\nc2 "));
        ASSERT_EQ(CTL(&r, "count", "--query", "Amount >= 5"), 0);
        ASSERT_STREQ(r.out, "2\n");
        ASSERT_EQ(CTL(&r, "count"), 0);
        ASSERT_STREQ(r.out, "2\n");
        ASSERT_EQ(CTL(&r, "count", "--query", "GROUP BY ExecutionStatus"), 0);
        ASSERT_STREQ(r.out, "Running          2\nTotal            2\n");
        /* Pages: the token is printed on stderr and continues the list. */
        ASSERT_EQ(CTL(&r, "list", "--query", "ORDER BY WorkflowId", "--limit", "1"), 0);
        ASSERT_NOT_NULL(strstr(r.out, "\nc1 "));
        {
                char *tok = strstr(r.err, "--page-token "), *end;
                ASSERT_NOT_NULL(tok);
                tok = strdup(tok + strlen("--page-token "));
                end = strchr(tok, '\n');
                if (end)
                        *end = 0;
                ASSERT_EQ(CTL(&r, "list", "--query", "ORDER BY WorkflowId", "--limit", "1",
                              "--page-token", tok),
                          0);
                ASSERT_NOT_NULL(strstr(r.out, "\nc2 "));
                ASSERT_NULL(strstr(r.out, "\nc1 "));
                free(tok);
        }
        /* Bad input: exit status 1 with the daemon's sentence, or 2 for a bad flag. */
        ASSERT_EQ(CTL(&r, "list", "--query", "Amount >"), 1);
        ASSERT_NOT_NULL(strstr(r.err, "bad query at position 9"));
        ASSERT_EQ(CTL(&r, "start", "T", "--id", "x", "--task-queue", "q", "--search-attribute",
                      "A=Colour:red"),
                  2);
        ASSERT_NOT_NULL(strstr(r.err, "invalid type 'Colour'"));
        ASSERT_EQ(CTL(&r, "count"), 0);
        ASSERT_STREQ(r.out, "2\n");
}

/* Retention (durabled --retention): a run closed for longer than the retention is deleted with
 * its history by the background sweep; on the virtual clock (--time-skipping) the sweep's due
 * time is a deadline the clock jumps to, so one day passes in an instant. */
TEST(retention_deletes_closed_runs_on_the_virtual_clock) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_outcome o = {};
        json_t *out;
        dur_client *c;
        int error = 0;

        test_daemon_start(&d,
                          &(TestDaemonOpts){ .args = STRV("--time-skipping", "--retention=1d") });
        c = client_connect();
        start_sa(c, "old", "T", json_pack("{s:o}", "Amount", sa("Int", json_integer(1))));
        ASSERT_DUR_OK(c, dur_client_terminate(c, "old", NULL, "test"));
        ASSERT_EQ(count(c, "WorkflowId = 'old' AND Amount = 1"), 1u);

        /* Two days of sleep: the clock passes the old run's expiry (one day) on the way. */
        start_json(c, "SleepWorkflow", "sleeper", NULL, "{\"ms\": 172800000}", 0);
        test_worker_spawn(&worker, NULL, NULL);
        ASSERT_EQ(wait_outcome(c, "sleeper", &o), 0);
        out = outcome_result(&o);
        ASSERT_TRUE(json_integer_value(json_object_get(out, "now_after")) -
                            json_integer_value(json_object_get(out, "now_before")) >=
                    (json_int_t) 172800000 * 1000);
        json_decref(out);
        dur_outcome_done(&o);

        /* The old run is gone, history and search attributes included; the sleeper stays. */
        ASSERT_NULL(call(c, json_pack("{s:s, s:s}", "op", "DescribeWorkflow", "workflow_id", "old"),
                         &error));
        ASSERT_STREQ(dur_client_error_code(c), "not_found");
        ASSERT_EQ(count(c, NULL), 1u);
        ASSERT_EQ(count(c, "Amount = 1"), 0u);
        ASSERT_EQ(count(c, "WorkflowId = 'sleeper' AND ExecutionStatus = 'Completed'"), 1u);
        dur_client_free(c);
}

TEST(bad_retention_is_refused) {
        _cleanup_(test_run_free) TestRun r = {};

        ASSERT_EQ(test_run(&r, STRV(test_bin("DURABLED_BIN"), "--user", "--retention=soon"), NULL),
                  1);
        ASSERT_NOT_NULL(strstr(r.err, "Invalid --retention=soon"));
}

DEFINE_TEST_MAIN();
