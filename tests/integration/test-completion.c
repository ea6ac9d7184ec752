/* Bash completion of durablectl (shell-completion/bash/durablectl) against the real daemon:
 * verbs, the options of a verb, statuses, and workflow ids and types as `durablectl list` shows
 * them. Each case runs bash with COMP_WORDS/COMP_CWORD set as readline would, calls the
 * completion function and prints COMPREPLY, one word a line. */

#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "tests/lib/daemon.h"

static char path_env[4096];

/* The completions of the command line @line ending in the word being completed (possibly ""). */
static void complete(TestRun *r, const char *line) {
        char script[2048];

        snprintf(
                script, sizeof(script),
                "source \"$0\" && read -r -a COMP_WORDS <<<\"%s\" && "
                "[[ \"%s\" == *' ' ]] && COMP_WORDS+=(\"\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
                "_durablectl && for w in \"${COMPREPLY[@]}\"; do printf '%%s\\n' \"$w\"; done",
                line, line);
        ASSERT_EQ(test_run(r, STRV("bash", "-c", script, test_bin("DURABLECTL_COMPLETION")),
                           &(TestRunOpts){ .env = STRV(path_env) }),
                  0);
}

TEST(completion) {
        _cleanup_(test_daemon_free) TestDaemon d = {};
        _cleanup_free_ char *bin = strdup(test_bin("DURABLECTL_BIN"));
        TestRun r = {};

        ASSERT_NOT_NULL(bin);
        snprintf(path_env, sizeof(path_env), "PATH=%s:%s", dirname(bin), getenv("PATH"));
        test_daemon_start(&d, NULL);
        ASSERT_EQ(test_run(&r,
                           STRV(test_bin("DURABLECTL_BIN"), "start", "OrderWorkflow", "--id",
                                "order-1", "--task-queue", "q"),
                           NULL),
                  0);
        test_run_free(&r);
        ASSERT_EQ(test_run(&r,
                           STRV(test_bin("DURABLECTL_BIN"), "start", "Backup", "--id", "backup-1",
                                "--task-queue", "q"),
                           NULL),
                  0);
        test_run_free(&r);

        complete(&r, "durablectl de");
        ASSERT_STREQ(r.out, "describe\n");
        test_run_free(&r);
        complete(&r, "durablectl describe ");
        ASSERT_STREQ(r.out, "backup-1\norder-1\n");
        test_run_free(&r);
        complete(&r, "durablectl --no-pager signal ord");
        ASSERT_STREQ(r.out, "order-1\n");
        test_run_free(&r);
        complete(&r, "durablectl signal order-1 ");
        ASSERT_STREQ(r.out, ""); /* the signal name is the workflow's business */
        test_run_free(&r);
        complete(&r, "durablectl start ");
        ASSERT_STREQ(r.out, "Backup\nOrderWorkflow\n");
        test_run_free(&r);
        complete(&r, "durablectl list --type O");
        ASSERT_STREQ(r.out, "OrderWorkflow\n");
        test_run_free(&r);
        complete(&r, "durablectl list --status R");
        ASSERT_STREQ(r.out, "Running\n");
        test_run_free(&r);
        complete(&r, "durablectl start OrderWorkflow --task-");
        ASSERT_STREQ(r.out, "--task-queue\n--task-timeout\n");
        test_run_free(&r);
        complete(&r, "durablectl history order-1 --fo");
        ASSERT_STREQ(r.out, "--follow\n");
        test_run_free(&r);
        complete(&r, "durablectl --vers");
        ASSERT_STREQ(r.out, "--version\n");
        test_run_free(&r);
}

DEFINE_TEST_MAIN();
