/* libdurable's test environment (libdurable(3), "Test environment"), used the way a user's test
 * would use it: a private durabled on a temporary directory, a worker in this process, and the
 * virtual clock, on which a 24 h approval timeout passes at once. Only the public API. */

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/integration/orders-util.h"

typedef struct approval {
        bool decided;
} approval;

static bool approval_decided(dur_wf *wf, void *arg) {
        return ((approval *) arg)->decided;
}

/* Waits up to 24 h for "approve", like examples/orders-worker.c's ApprovalWorkflow. */
static int approval_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        approval *st = dur_wf_state(wf, sizeof(*st));
        uint64_t before = dur_now(wf);
        int r = dur_wait_condition(wf, approval_decided, st, 24 * DUR_HOUR);

        if (r < 0)
                return r;
        return dur_pack(out, "{s:s, s:U}", "outcome", r ? "approved" : "auto_rejected",
                        "waited_usec", dur_now(wf) - before);
}

static int approval_approve(dur_wf *wf, const msgpack_object *args) {
        ((approval *) dur_wf_state(wf, sizeof(approval)))->decided = true;
        return 0;
}

static const dur_workflow_def approval_def = {
        .name = "Approval",
        .run = approval_run,
        .signals = DUR_SIGNALS({ "approve", approval_approve }),
};

static void *worker_main(void *userdata) {
        return (void *) (intptr_t) dur_worker_run(userdata);
}

TEST(time_skipping_env_runs_a_24h_timeout_at_once) {
        dur_test_env *env = NULL;
        dur_worker *w = NULL;
        dur_client *c = NULL;
        dur_outcome o = {};
        pthread_t t;
        void *ret;
        json_t *res;
        char *socket_copy;
        struct stat st;

        ASSERT_OK(dur_test_env_start(&env, &(dur_test_env_opts){ .time_skipping = true }));
        socket_copy = strdup(dur_test_env_socket(env));
        ASSERT_OK(dur_worker_new(&w, &(dur_worker_opts){ .socket_path = dur_test_env_socket(env),
                                                         .task_queue = "approvals" }));
        ASSERT_OK(dur_worker_register_workflow(w, &approval_def));
        ASSERT_EQ(pthread_create(&t, NULL, worker_main, w), 0);

        ASSERT_OK(dur_test_env_connect(env, &c));
        ASSERT_DUR_OK(c, dur_client_start(c, "Approval",
                                          &(dur_start_opts){ .workflow_id = "a-1",
                                                             .task_queue = "approvals" },
                                          NULL, NULL));
        ASSERT_DUR_OK(c, dur_client_result(c, "a-1", NULL, 0, &o));
        res = outcome_result(&o);
        ASSERT_STREQ(json_string_value(json_object_get(res, "outcome")), "auto_rejected");
        ASSERT_TRUE(json_integer_value(json_object_get(res, "waited_usec")) >=
                    (json_int_t) (24 * DUR_HOUR));
        json_decref(res);
        dur_outcome_done(&o);
        dur_client_free(c);

        dur_worker_stop(w);
        ASSERT_EQ(pthread_join(t, &ret), 0);
        ASSERT_EQ((intptr_t) ret, 0);
        dur_worker_free(w);
        ASSERT_OK(dur_test_env_stop(env));
        /* Nothing is left behind. */
        ASSERT_EQ(stat(socket_copy, &st), -1);
        ASSERT_EQ(errno, ENOENT);
        free(socket_copy);
}

TEST(env_reports_a_daemon_that_cannot_start) {
        dur_test_env *env = NULL;

        ASSERT_ERROR(dur_test_env_start(
                             &env, &(dur_test_env_opts){ .durabled = "/nonexistent/durabled" }),
                     -ECHILD);
        ASSERT_NULL(env);
        ASSERT_ERROR(
                dur_test_env_start(
                        &env,
                        &(dur_test_env_opts){
                                .extra_args = (const char *const[]){ "--retention=soon", NULL } }),
                -ECHILD);
}

DEFINE_TEST_MAIN();
