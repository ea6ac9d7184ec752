/* Tests of libclient/coro: switching, nesting, abandoned coroutines, deep stacks, the guard page. */

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libclient/coro.h"
#include "tests/lib/test.h"

typedef struct PingPong {
        int steps;
        int trace[16];
        int n;
} PingPong;

static void ping(void *userdata) {
        PingPong *p = userdata;

        for (int i = 0; i < p->steps; i++) {
                p->trace[p->n++] = i;
                coro_yield();
        }
}

TEST(resume_yield_finish) {
        PingPong p = { .steps = 3 };
        _cleanup_(coro_freep) Coro *c = NULL;

        ASSERT_OK(coro_new(&c, 0, ping, &p));
        ASSERT_NULL(coro_current());
        for (int i = 0; i < 3; i++) {
                ASSERT_EQ(coro_resume(c), 0);
                ASSERT_EQ(p.n, i + 1);
                ASSERT_FALSE(coro_finished(c));
        }
        ASSERT_EQ(coro_resume(c), 1);
        ASSERT_TRUE(coro_finished(c));
        ASSERT_ERROR(coro_resume(c), -EINVAL);
        ASSERT_EQ(p.trace[2], 2);
        ASSERT_NULL(coro_current());
}

typedef struct Nest {
        Coro *inner;
        Coro *seen_inner;
        Coro *seen_outer_after;
        int order[8];
        int n;
} Nest;

static void inner_fn(void *userdata) {
        Nest *x = userdata;

        x->seen_inner = coro_current();
        x->order[x->n++] = 2;
        coro_yield();
        x->order[x->n++] = 4;
}

static void outer_fn(void *userdata) {
        Nest *x = userdata;

        x->order[x->n++] = 1;
        ASSERT_EQ(coro_resume(x->inner), 0);
        x->seen_outer_after = coro_current();
        x->order[x->n++] = 3;
        ASSERT_EQ(coro_resume(x->inner), 1);
        x->order[x->n++] = 5;
}

TEST(nested) {
        _cleanup_(coro_freep) Coro *outer = NULL;
        _cleanup_(coro_freep) Coro *inner = NULL;
        Nest x = {};

        ASSERT_OK(coro_new(&inner, 0, inner_fn, &x));
        ASSERT_OK(coro_new(&outer, 0, outer_fn, &x));
        x.inner = inner;
        ASSERT_EQ(coro_resume(outer), 1);
        ASSERT_PTR_EQ(x.seen_inner, inner);
        ASSERT_PTR_EQ(x.seen_outer_after, outer);
        ASSERT_EQ(x.n, 5);
        for (int i = 0; i < 5; i++)
                ASSERT_EQ(x.order[i], i + 1);
}

static void blocker(void *userdata) {
        char local[1024];

        memset(local, 'x', sizeof(local));
        *(int *) userdata = local[10];
        for (;;)
                coro_yield();
}

TEST(abandon_many) {
        /* Coroutines freed while suspended, with live frames on their stacks, as an evicted run
         * does; the sanitizer build checks that nothing is left poisoned or leaked. */
        for (int round = 0; round < 200; round++) {
                _cleanup_(coro_freep) Coro *c = NULL;
                int v = 0;

                ASSERT_OK(coro_new(&c, 64 * 1024, blocker, &v));
                ASSERT_EQ(coro_resume(c), 0);
                ASSERT_EQ(coro_resume(c), 0);
                ASSERT_EQ(v, 'x');
        }
}

static unsigned recurse(unsigned depth) {
        volatile char pad[512];

        pad[0] = (char) depth;
        return depth == 0 ? (unsigned) pad[0] : recurse(depth - 1) + (unsigned) pad[0];
}

static void deep(void *userdata) {
        /* ~150 KiB of frames: fits the 256 KiB default. */
        *(unsigned *) userdata = recurse(250);
}

TEST(deep_stack) {
        _cleanup_(coro_freep) Coro *c = NULL;
        unsigned v = 1;

        ASSERT_OK(coro_new(&c, 0, deep, &v));
        ASSERT_EQ(coro_resume(c), 1);
        ASSERT_NE(v, 1u);
}

static void overflow(void *userdata) {
        *(unsigned *) userdata = recurse(100000);
}

TEST(guard_page) {
        int status;
        pid_t pid;

        pid = ASSERT_OK_ERRNO(fork());
        if (pid == 0) {
                Coro *c = NULL;
                unsigned v;

                if (coro_new(&c, 16 * 1024, overflow, &v) < 0)
                        _exit(2);
                (void) coro_resume(c);
                _exit(0); /* not reached: the guard page stops the recursion */
        }
        ASSERT_OK_ERRNO(waitpid(pid, &status, 0));
        /* SIGSEGV, or a sanitizer's report and exit(1): never a clean exit. */
        ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 1));
}

DEFINE_TEST_MAIN();
