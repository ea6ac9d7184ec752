/* Bash and zsh completion of durablectl (shell-completion/bash/durablectl, zsh/_durablectl)
 * against the real daemon: verbs, the options of a verb, statuses, and workflow ids and types as
 * `durablectl list` shows them. Each bash case runs bash with COMP_WORDS/COMP_CWORD set as
 * readline would, calls the completion function and prints COMPREPLY, one word a line. Each zsh
 * case sets words/CURRENT/PREFIX as zle would and runs the completion function with a compadd
 * that prints the matches of the prefix, one a line. */

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

static void complete_zsh(TestRun *r, const char *line) {
        static const char script[] =
                "compadd() { local i=${@[(i)--]}; shift $i; print -l -- ${(M)@:#${PREFIX}*}; }; "
                "_files() { :; }; words=(${(z)1}); [[ $1 == *' ' ]] && words+=(''); "
                "CURRENT=${#words}; PREFIX=$words[CURRENT]; source $0";

        ASSERT_EQ(test_run(r,
                           STRV("zsh", "-f", "-c", script, test_bin("DURABLECTL_ZSH_COMPLETION"),
                                line),
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
        ASSERT_STREQ(r.out, "describe\ndelete\n"); /* in the order of durablectl --help */
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
        complete(&r, "durablectl wa");
        ASSERT_STREQ(r.out, "watch\n"); /* verbs come from durablectl --help */
        test_run_free(&r);
        complete(&r, "durablectl sch");
        ASSERT_STREQ(r.out, "schedule\n");
        test_run_free(&r);
        complete(&r, "durablectl watch ord");
        ASSERT_STREQ(r.out, "order-1\n");
        test_run_free(&r);
        complete(&r, "durablectl --no-legend describe back");
        ASSERT_STREQ(r.out, "backup-1\n");
        test_run_free(&r);
        complete(&r, "durablectl update ");
        ASSERT_STREQ(r.out, "execute\nstart\nresult\n");
        test_run_free(&r);
        complete(&r, "durablectl update start --id order-1 --name x --wait-for-stage a");
        ASSERT_STREQ(r.out, "accepted\n");
        test_run_free(&r);
        complete(&r, "durablectl update execute --update");
        ASSERT_STREQ(r.out, "--update-id\n");
        test_run_free(&r);
        complete(&r, "durablectl --vers");
        ASSERT_STREQ(r.out, "--version\n");
        test_run_free(&r);
        complete(&r, "durablectl task-queue ");
        ASSERT_STREQ(r.out, "config\ndescribe\n");
        test_run_free(&r);
        complete(&r, "durablectl task-queue config q --con");
        ASSERT_STREQ(r.out, "--concurrency\n");
        test_run_free(&r);
        complete(&r, "durablectl task-queue config q --activity-t");
        ASSERT_STREQ(r.out, "--activity-type\n");
        test_run_free(&r);
        /* The value of --key is the user's: the verb's second argument is not asked for. */
        complete(&r, "durablectl task-queue config q --key k --concurrency 2 --ke");
        ASSERT_STREQ(r.out, "--key\n");
        test_run_free(&r);
        complete(&r, "durablectl start OrderWorkflow --prio");
        ASSERT_STREQ(r.out, "--priority-key\n");
        test_run_free(&r);
        complete(&r, "durablectl batch te");
        ASSERT_STREQ(r.out, "terminate\n");
        test_run_free(&r);
        complete(&r, "durablectl activity h");
        ASSERT_STREQ(r.out, "heartbeat\n");
        test_run_free(&r);
        /* A verb whose usage takes a line of its own in --help puts its summary on the next
         * line ("Send update ...", "Set the limits ..."): not a verb. */
        complete(&r, "durablectl Se");
        ASSERT_STREQ(r.out, "");
        test_run_free(&r);

        complete_zsh(&r, "durablectl wa");
        ASSERT_STREQ(r.out, "watch\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl describe ");
        ASSERT_STREQ(r.out, "backup-1\norder-1\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl --no-pager watch ord");
        ASSERT_STREQ(r.out, "order-1\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl signal order-1 ");
        ASSERT_STREQ(r.out, "");
        test_run_free(&r);
        complete_zsh(&r, "durablectl task-queue d");
        ASSERT_STREQ(r.out, "describe\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl start ");
        ASSERT_STREQ(r.out, "Backup\nOrderWorkflow\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl list --status R");
        ASSERT_STREQ(r.out, "Running\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl update s");
        ASSERT_STREQ(r.out, "start\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl update start --wait-for-stage c");
        ASSERT_STREQ(r.out, "completed\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl batch d");
        ASSERT_STREQ(r.out, "delete\ndescribe\n");
        test_run_free(&r);
        complete_zsh(&r, "durablectl history order-1 --fo");
        ASSERT_STREQ(r.out, "--follow\n");
        test_run_free(&r);
}

DEFINE_TEST_MAIN();
