/* See core-util.h. */

#include "tests/integration/core-util.h"

#include <stdlib.h>
#include <string.h>

void core_worker_spawn(TestProcess *p) {
        test_process_spawn(p, STRV(test_bin("CORE_WORKER_BIN"), CORE_QUEUE), NULL);
}

int core_start(dur_client *c,
               const char *type,
               const char *workflow_id,
               const char *input,
               dur_start_opts *opts,
               char **ret_run_id) {
        dur_start_opts none = {};
        dur_buf *in = input ? dur_buf_from_json(input) : NULL;
        int r;

        if (input && !in)
                test_fail(__FILE__, __LINE__, "bad JSON input: %s", input);
        if (!opts)
                opts = &none;
        opts->workflow_id = workflow_id;
        opts->task_queue = CORE_QUEUE;
        r = dur_client_start(c, type, opts, in, ret_run_id);
        dur_buf_free(in);
        return r;
}

json_t *core_describe(dur_client *c, const char *workflow_id, const char *run_id) {
        json_t *req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:s*}", "op", "DescribeWorkflow",
                                                "workflow_id", workflow_id, "run_id", run_id));
        json_t *answer;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (!answer)
                test_fail(__FILE__, __LINE__, "DescribeWorkflow '%s' failed: %d (%s)", workflow_id,
                          r, test_str_or_null(dur_client_error_message(c)));
        return answer;
}

const char *core_status(const json_t *describe) {
        return ASSERT_NOT_NULL(json_str(json_object_get(describe, "workflow"), "status"));
}

json_t *core_history(dur_client *c, const char *workflow_id, const char *run_id) {
        json_t *req = ASSERT_NOT_NULL(json_pack("{s:s, s:s, s:s*}", "op", "GetHistory",
                                                "workflow_id", workflow_id, "run_id", run_id));
        json_t *answer, *events;
        int r;

        answer = call_json(c, req, &r);
        json_decref(req);
        if (!answer)
                test_fail(__FILE__, __LINE__, "GetHistory '%s' failed: %d (%s)", workflow_id, r,
                          test_str_or_null(dur_client_error_message(c)));
        events = json_incref(json_object_get(answer, "events"));
        json_decref(answer);
        ASSERT_TRUE(json_is_array(events));
        history_assert_invariants(events);
        return events;
}

json_t *core_result(dur_client *c, const char *workflow_id, const char *run_id, char **ret_run_id) {
        dur_outcome o = {};
        json_t *result;
        int r;

        r = dur_client_result(c, workflow_id, run_id, 0, &o);
        if (r != 0)
                test_fail(__FILE__, __LINE__, "'%s' did not complete: %d (%s %s)", workflow_id, r,
                          test_str_or_null(o.status),
                          o.failure ? test_str_or_null(dur_failure_message(o.failure))
                                    : test_str_or_null(dur_client_error_message(c)));
        result = outcome_result(&o);
        if (ret_run_id)
                *ret_run_id = ASSERT_NOT_NULL(strdup(o.run_id));
        dur_outcome_done(&o);
        return result;
}
