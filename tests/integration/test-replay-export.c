/* Replay testing (libdurable(3), "Replay testing"): histories of runs of test-worker, exported
 * with `durablectl history ID --json`, replayed in this process without a daemon against the
 * same workflow code, against a compatible change, and against incompatible changes that must be
 * reported with the event where they diverge. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tests/integration/worker-util.h"

/* The code test-worker ran (tests/integration/test-worker.c: SleepWorkflow, UpsertWorkflow). */
static int sleep_v1(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        uint64_t ms = 0, before, after;
        int r;

        if (dur_unpack(in, "{s:U}", "ms", &ms) < 0)
                return dur_fail(wf, "BadInput", true, "SleepWorkflow: {\"ms\": N} expected");
        before = dur_now(wf);
        r = dur_sleep(wf, ms * DUR_MSEC);
        if (r < 0)
                return r;
        after = dur_now(wf);
        return dur_pack(out, "{s:U, s:U, s:U}", "slept_ms", ms, "now_before", before, "now_after",
                        after);
}

/* Compatible: another duration and another result (neither is part of the command's identity,
 * as in Temporal). */
static int sleep_v2_compatible(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        int r = dur_sleep(wf, 5 * DUR_SEC);

        return r < 0 ? r : dur_pack(out, "{s:s}", "version", "2");
}

/* Incompatible: an activity before the timer. */
static int sleep_v3_activity_first(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        static const dur_activity_opts opts = { .start_to_close = 10 * DUR_SEC };
        int r = dur_execute_activity(wf, "echo", dur_args("{s:b}", "new", true), &opts, NULL);

        if (r >= 0)
                r = dur_sleep(wf, 10 * DUR_MSEC);
        return r < 0 ? r : dur_pack(out, "{s:s}", "version", "3");
}

/* Incompatible: a second timer after the recorded steps, before completing. */
static int sleep_v4_step_added(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        int r = dur_sleep(wf, 10 * DUR_MSEC);

        if (r >= 0)
                r = dur_sleep(wf, 10 * DUR_MSEC);
        return r < 0 ? r : dur_pack(out, "{s:s}", "version", "4");
}

static int upsert_v1(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        static const char *const tags[] = { "blue", "green" };
        const dur_search_attr attrs[] = {
                { .name = "Stage", .type = DUR_SA_KEYWORD, .str = "shipped" },
                { .name = "Tags", .type = DUR_SA_KEYWORD_LIST, .list = tags, .list_len = 2 },
                { .name = "Temp", .type = DUR_SA_UNSET },
        };
        int r = dur_upsert_search_attributes(wf, attrs, 3);

        if (r >= 0)
                r = dur_sleep(wf, DUR_MSEC);
        return r < 0 ? r : dur_pack(out, "{s:b}", "upserted", true);
}

/* Upsert dropped: the history's UpsertWorkflowSearchAttributes has no command. */
static int upsert_v2_dropped(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        int r = dur_sleep(wf, DUR_MSEC);

        return r < 0 ? r : dur_pack(out, "{s:b}", "upserted", false);
}

static const dur_workflow_def sleep_defs[] = {
        { .name = "SleepWorkflow", .run = sleep_v1 },
        { .name = "SleepWorkflow", .run = sleep_v2_compatible },
        { .name = "SleepWorkflow", .run = sleep_v3_activity_first },
        { .name = "SleepWorkflow", .run = sleep_v4_step_added },
};

/* Replays @path with @def, which must reproduce it. */
static void replay_ok(const dur_workflow_def *def, const char *path) {
        dur_replay_report rep = {};
        int r = dur_replay_file(def, path, &rep);

        if (r != 0)
                test_fail(__FILE__, __LINE__, "replay of %s failed: %d %s", path, r,
                          rep.message ? rep.message : "(no message)");
        ASSERT_NULL(rep.message);
        ASSERT_EQ(rep.event_id, 0u);
        dur_replay_report_done(&rep);
}

/* Exports the history of the closed run @id to @dir/<id>.json. */
static char *export_closed(TestDaemon *d, const char *id) {
        _cleanup_(test_run_free) TestRun r = {};
        char *path;
        FILE *f;

        ASSERT_EQ(test_run(&r, STRV(test_bin("DURABLECTL_BIN"), "history", id, "--json"), NULL), 0);
        ASSERT_TRUE(asprintf(&path, "%s/%s.json", d->dir, id) > 0);
        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fputs(r.out, f);
        ASSERT_EQ(fclose(f), 0);
        return path;
}

/* Runs @type to completion on test-worker and exports its history to @dir/<id>.json. */
static char *
export_history(TestDaemon *d, dur_client *c, const char *type, const char *id, const char *input) {
        dur_outcome o = {};

        start_json(c, type, id, NULL, input, 0);
        ASSERT_EQ(wait_outcome(c, id, &o), 0);
        dur_outcome_done(&o);
        return export_closed(d, id);
}

TEST(replay_exported_histories_against_changed_code) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_replay_report rep = {};
        char *sleep_path, *upsert_path, *bad_path;
        dur_client *c;
        FILE *f;

        test_daemon_start(&d, NULL);
        test_worker_spawn(&worker, NULL, NULL);
        c = client_connect();
        sleep_path = export_history(&d, c, "SleepWorkflow", "sleeper", "{\"ms\": 10}");
        upsert_path = export_history(&d, c, "UpsertWorkflow", "upserter", NULL);
        dur_client_free(c);
        /* No daemon from here on: replay runs in this process. */
        test_process_kill(&worker, SIGKILL);
        test_daemon_stop(&d);

        /* The same code and a compatible change replay. */
        replay_ok(&sleep_defs[0], sleep_path);
        replay_ok(&sleep_defs[1], sleep_path);
        replay_ok(&(dur_workflow_def){ .name = "UpsertWorkflow", .run = upsert_v1 }, upsert_path);

        /* An activity where history has the timer: reported at TimerStarted (event 5). */
        ASSERT_EQ(dur_replay_file(&sleep_defs[2], sleep_path, &rep), -EPROTO);
        ASSERT_STREQ(rep.cause, "NonDeterministicError");
        ASSERT_EQ(rep.event_id, 5u);
        ASSERT_NOT_NULL(strstr(rep.message, "history event 5 is TimerStarted"));
        ASSERT_NOT_NULL(strstr(rep.message, "ScheduleActivityTask"));
        ASSERT_NOT_NULL(strstr(rep.message, sleep_path));
        dur_replay_report_done(&rep);

        /* A step added at the end: the completion in history meets a new timer. */
        ASSERT_EQ(dur_replay_file(&sleep_defs[3], sleep_path, &rep), -EPROTO);
        ASSERT_STREQ(rep.cause, "NonDeterministicError");
        ASSERT_NOT_NULL(strstr(rep.message, "WorkflowExecutionCompleted"));
        ASSERT_NOT_NULL(strstr(rep.message, "StartTimer"));
        dur_replay_report_done(&rep);

        /* A removed upsert. */
        ASSERT_EQ(dur_replay_file(
                          &(dur_workflow_def){ .name = "UpsertWorkflow", .run = upsert_v2_dropped },
                          upsert_path, &rep),
                  -EPROTO);
        ASSERT_NOT_NULL(strstr(rep.message, "UpsertWorkflowSearchAttributes"));
        dur_replay_report_done(&rep);

        /* Many files: the first failure is reported. */
        ASSERT_EQ(dur_replay_files(&sleep_defs[0], STRV(sleep_path, sleep_path), 2, &rep), 0);
        dur_replay_report_done(&rep);

        /* Not a history. */
        ASSERT_TRUE(asprintf(&bad_path, "%s/bad.json", d.dir) > 0);
        f = fopen(bad_path, "we");
        ASSERT_NOT_NULL(f);
        fputs("{\"event_id\": 1", f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_EQ(dur_replay_file(&sleep_defs[0], bad_path, &rep), -EBADMSG);
        ASSERT_NOT_NULL(strstr(rep.message, bad_path));
        dur_replay_report_done(&rep);
        f = fopen(bad_path, "we");
        ASSERT_NOT_NULL(f);
        fputs("[{\"event_type\": \"WorkflowExecutionStarted\"}]", f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_EQ(dur_replay_file(&sleep_defs[0], bad_path, &rep), -EBADMSG);
        ASSERT_NOT_NULL(strstr(rep.message, "event_id"));
        dur_replay_report_done(&rep);

        free(sleep_path);
        free(upsert_path);
        free(bad_path);
}

/* The code determinism-worker ran as Patched (tests/integration/determinism-worker.c), in its
 * versions: before the change, the change guarded by dur_patched(), the patch deprecated, and
 * the change made without a guard. */
typedef enum PatchVersion {
        PATCH_OLD,
        PATCH_GUARDED,
        PATCH_DEPRECATED,
        PATCH_UNGUARDED
} PatchVersion;

static bool go_signalled(dur_wf *wf, void *arg) {
        return *(bool *) dur_wf_state(wf, sizeof(bool));
}

static int on_go(dur_wf *wf, const msgpack_object *args) {
        *(bool *) dur_wf_state(wf, sizeof(bool)) = true;
        return 0;
}

static int patch_branch(dur_wf *wf, PatchVersion v) {
        switch (v) {
        case PATCH_OLD:
                return 0;
        case PATCH_GUARDED:
                return dur_patched(wf, "v2");
        case PATCH_DEPRECATED:
                DUR_TRY(dur_deprecate_patch(wf, "v2"));
                return 1;
        default:
                return 1;
        }
}

static int patched_version(dur_wf *wf, PatchVersion v, msgpack_packer *out) {
        static const dur_activity_opts quick = { .start_to_close = 30 * DUR_SEC };
        int first, second, r;

        (void) dur_wf_state(wf, sizeof(bool));
        first = patch_branch(wf, v);
        DUR_TRY(first);
        DUR_TRY(dur_execute_activity(wf, first ? "new_step" : "old_step", NULL, &quick, NULL));
        r = dur_wait_condition(wf, go_signalled, NULL, 0);
        if (r < 0)
                return r;
        second = patch_branch(wf, v);
        DUR_TRY(second);
        return dur_pack(out, "{s:s, s:s}", "first", first ? "new" : "old", "second",
                        second ? "new" : "old");
}

static int patched_old(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return patched_version(wf, PATCH_OLD, out);
}

static int patched_guarded(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return patched_version(wf, PATCH_GUARDED, out);
}

static int patched_deprecated(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return patched_version(wf, PATCH_DEPRECATED, out);
}

static int patched_unguarded(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        return patched_version(wf, PATCH_UNGUARDED, out);
}

#define PATCHED_DEF(fn)       \
        (&(dur_workflow_def){ \
                .name = "Patched", .run = fn, .signals = DUR_SIGNALS({ "go", on_go }) })

/* Runs Patched on determinism-worker with $TEST_PATCH=@version and exports its history. */
static char *export_patched(TestDaemon *d, dur_client *c, const char *version, const char *id) {
        _cleanup_(test_process_free) TestProcess worker = {};
        dur_outcome o = {};
        char env[64];

        (void) snprintf(env, sizeof(env), "TEST_PATCH=%s", version);
        test_process_spawn(&worker, STRV(test_bin("DETERMINISM_WORKER_BIN")), STRV(env));
        start_json(c, "Patched", id, "determinism", NULL, 0);
        ASSERT_DUR_OK(c, dur_client_signal(c, id, NULL, "go", NULL));
        ASSERT_EQ(wait_outcome(c, id, &o), 0);
        dur_outcome_done(&o);
        ASSERT_EQ(test_process_kill(&worker, SIGTERM), 0);
        return export_closed(d, id);
}

/* Versioning (libdurable(3), "Versioning"): a change guarded by dur_patched() replays the
 * histories of the old code and of itself, the deprecated patch those of the patched code; the
 * same change without a guard is reported at the event where the old history diverges. */
TEST(replay_patched_histories) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *old_path = NULL, *new_path = NULL;
        dur_replay_report rep = {};
        json_t *old_events;
        uint64_t scheduled;
        char want[256];
        dur_client *c;

        test_daemon_start(&d, NULL);
        c = client_connect();
        old_path = export_patched(&d, c, "old", "patched-old");
        new_path = export_patched(&d, c, "new", "patched-new");
        dur_client_free(c);
        test_daemon_stop(&d);

        replay_ok(PATCHED_DEF(patched_old), old_path);
        replay_ok(PATCHED_DEF(patched_guarded), old_path);
        replay_ok(PATCHED_DEF(patched_guarded), new_path);
        replay_ok(PATCHED_DEF(patched_deprecated), new_path);

        /* Unguarded: reported at the old history's old_step. */
        old_events = ASSERT_NOT_NULL(json_load_file(old_path, 0, NULL));
        scheduled = ev_id(ASSERT_NOT_NULL(history_scheduled(old_events, "old_step")));
        json_decref(old_events);
        (void) snprintf(want, sizeof(want),
                        "history event %llu is ActivityTaskScheduled(activity_id=1, type=old_step)",
                        (unsigned long long) scheduled);
        ASSERT_EQ(dur_replay_file(PATCHED_DEF(patched_unguarded), old_path, &rep), -EPROTO);
        ASSERT_STREQ(rep.cause, "NonDeterministicError");
        ASSERT_EQ(rep.event_id, scheduled);
        ASSERT_STR_CONTAINS(rep.message, want);
        ASSERT_STR_CONTAINS(rep.message, "ScheduleActivityTask(activity_id=1, type=new_step)");
        ASSERT_STR_CONTAINS(rep.message, old_path);
        dur_replay_report_done(&rep);

        /* The old code on the patched history: the marker has no call. A patch marker may be
         * skipped, the new step may not. */
        ASSERT_EQ(dur_replay_file(PATCHED_DEF(patched_old), new_path, &rep), -EPROTO);
        ASSERT_STR_CONTAINS(rep.message, "type=new_step");
        dur_replay_report_done(&rep);
}

DEFINE_TEST_MAIN();
