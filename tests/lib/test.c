/* The test runner behind test.h: the registry TEST() fills, the fail path, and main(). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np(), strerrordesc_np() */
#endif

#include "tests/lib/test.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define EXIT_TEST_SKIP 77 /* meson's (and automake's) "skipped" */

static TestCase *tests;
static const TestCase *current;
static bool current_skipped;
static TestFailHook *fail_hooks; /* newest first */

void test_register(TestCase *t) {
        TestCase **i = &tests;

        while (*i && (*i)->line < t->line)
                i = &(*i)->next;
        t->next = *i;
        *i = t;
}

const char *test_current(void) {
        return current ? current->name : NULL;
}

void test_fail_hook_add(TestFailHook *h, void (*func)(void *userdata), void *userdata) {
        assert(h && func);
        *h = (TestFailHook){ .func = func, .userdata = userdata, .next = fail_hooks };
        if (fail_hooks)
                fail_hooks->prev = h;
        fail_hooks = h;
}

void test_fail_hook_remove(TestFailHook *h) {
        if (!h->func)
                return;
        if (h->prev)
                h->prev->next = h->next;
        else
                fail_hooks = h->next;
        if (h->next)
                h->next->prev = h->prev;
        *h = (TestFailHook){};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fprintf(stderr, "%s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n");
        if (current)
                fprintf(stderr, "FAIL: %s\n", current->name);

        /* Each hook removes itself; a hook that fails again re-enters here, hence the loop. */
        while (fail_hooks) {
                TestFailHook *h = fail_hooks;
                void (*func)(void *) = h->func;
                void *userdata = h->userdata;

                test_fail_hook_remove(h);
                func(userdata);
        }
        fflush(NULL);
        /* No exit(): the test's memory is still in use, and LeakSanitizer would bury the real
         * failure under leak reports. */
        _exit(EXIT_FAILURE);
}

void test_mark_skipped(const char *file, int line, const char *fmt, ...) {
        va_list ap;

        printf("SKIP: %s: ", current ? current->name : "?");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf(" (%s:%d)\n", file, line);
        current_skipped = true;
}

const char *test_errno_str(intmax_t r, char buf[static 128]) {
        const char *name = NULL, *desc = NULL;

        if (r < 0 && r > -4096) {
                name = strerrorname_np((int) -r);
                desc = strerrordesc_np((int) -r);
        }
        if (name)
                snprintf(buf, 128, "%jd (%s: %s)", r, name, desc ? desc : "?");
        else
                snprintf(buf, 128, "%jd", r);
        return buf;
}

static bool test_int_negative(TestInt a) {
        return a.is_signed && (intmax_t) a.bits < 0;
}

int test_int_cmp(TestInt a, TestInt b) {
        bool na = test_int_negative(a), nb = test_int_negative(b);

        if (na != nb)
                return na ? -1 : 1;
        if (na)
                return (intmax_t) a.bits < (intmax_t) b.bits
                               ? -1
                               : (intmax_t) a.bits > (intmax_t) b.bits;
        return a.bits < b.bits ? -1 : a.bits > b.bits;
}

const char *test_int_str(TestInt a, char buf[static 32]) {
        if (a.is_signed)
                snprintf(buf, 32, "%jd", (intmax_t) a.bits);
        else
                snprintf(buf, 32, "%ju", a.bits);
        return buf;
}

static TestCase *test_find(const char *name) {
        /* TEST(foo) answers to "foo" and to its function's name "test_foo". */
        for (TestCase *t = tests; t; t = t->next)
                if (streq(t->name, name) ||
                    (strncmp(name, "test_", 5) == 0 && streq(t->name, name + 5)))
                        return t;
        return NULL;
}

/* Runs one test; returns true when it passed, false when it was skipped (failures do not return). */
static bool test_run_one(const TestCase *t) {
        printf("=== %s\n", t->name);
        current = t;
        current_skipped = false;
        t->func();
        current = NULL;
        if (fail_hooks)
                test_fail(__FILE__, __LINE__,
                          "Test \"%s\" returned with harness objects still live: call "
                          "test_daemon_free()/test_process_free() or use _cleanup_",
                          t->name);
        printf("--- %s: %s\n", t->name, current_skipped ? "skipped" : "ok");
        return !current_skipped;
}

int test_main(int argc, char **argv) {
        unsigned n_passed = 0, n_skipped = 0;

        /* Line-buffered, so that our lines and the children's interleave sensibly in the log. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        /* Children are reaped through pidfds and waitpid(); an inherited SIG_IGN would auto-reap. */
        signal(SIGCHLD, SIG_DFL);

        if (argc > 1 && (streq(argv[1], "--list") || streq(argv[1], "-l"))) {
                for (TestCase *t = tests; t; t = t->next)
                        printf("%s\n", t->name);
                return EXIT_SUCCESS;
        }
        if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                printf("%s [--list] [TEST...]\nRuns the named tests, or all of them.\n", argv[0]);
                return EXIT_SUCCESS;
        }
        for (int i = 1; i < argc; i++)
                if (!test_find(argv[i])) {
                        fprintf(stderr, "%s: no test named \"%s\" (see --list)\n", argv[0],
                                argv[i]);
                        return EXIT_FAILURE;
                }

        for (TestCase *t = tests; t; t = t->next) {
                bool selected = argc <= 1;

                for (int i = 1; i < argc && !selected; i++)
                        selected = test_find(argv[i]) == t;
                if (!selected)
                        continue;
                if (test_run_one(t))
                        n_passed++;
                else
                        n_skipped++;
        }

        printf("%u passed, %u skipped\n", n_passed, n_skipped);
        return n_passed == 0 ? EXIT_TEST_SKIP : EXIT_SUCCESS;
}
