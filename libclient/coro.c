/* Coroutines on ucontext with guard-paged mmap'd stacks; see coro.h.
 *
 * Switching: coro_resume() saves the resumer's context in the coroutine (caller_ctx) and swaps
 * to the coroutine's context; coro_yield() swaps back. A coroutine's function returns into
 * coro_entry(), which marks it finished and jumps to caller_ctx for the last time; its context is
 * never resumed again.
 *
 * AddressSanitizer keeps shadow state per stack and cannot see ucontext switches by itself:
 * without help it reports false stack-buffer-overflows, or misses real ones, as soon as a frame
 * lives on a stack it does not know. So every switch is bracketed by
 * __sanitizer_start_switch_fiber() (before, naming the stack we go to) and
 * __sanitizer_finish_switch_fiber() (after, on the new stack, learning the stack we came from).
 * The last switch out of a finished coroutine passes NULL as fake-stack slot, which tells ASan
 * that the fiber is gone and its fake stack (detect_stack_use_after_return) may be freed. */

#include "libclient/coro.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#endif

#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

struct Coro {
        ucontext_t ctx;        /* the coroutine's own context, saved while it is suspended */
        ucontext_t caller_ctx; /* where coro_yield() and the final return go back to */
        void *map;             /* the whole mapping: guard page + stack */
        size_t map_size;
        void *stack; /* lowest usable byte (just above the guard page) */
        size_t stack_size;
        coro_fn fn;
        void *userdata;
        bool finished;
        /* ASan bookkeeping: the resumer's stack (learnt on each switch in) and this coroutine's
         * fake stack, saved while it is switched out. */
        const void *caller_stack;
        size_t caller_stack_size;
        void *fake_stack;
};

static _Thread_local Coro *current;

/* The mapping of a stack of CORO_STACK_SIZE_DEFAULT: the stack and its guard page. */
static size_t default_map_size(void) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        return (CORO_STACK_SIZE_DEFAULT + page - 1) / page * page + page;
}

static void switch_begin(void **fake_stack_save, const void *stack, size_t size) {
#ifdef CORO_ASAN
        __sanitizer_start_switch_fiber(fake_stack_save, stack, size);
#endif
}

static void switch_end(void *fake_stack, const void **ret_old_stack, size_t *ret_old_size) {
#ifdef CORO_ASAN
        __sanitizer_finish_switch_fiber(fake_stack, ret_old_stack, ret_old_size);
#endif
}

Coro *coro_current(void) {
        return current;
}

bool coro_finished(const Coro *c) {
        return c->finished;
}

/* First frame on the coroutine's stack. makecontext() cannot portably pass a pointer, so the
 * coroutine is found through `current`, which coro_resume() set just before switching. */
static void coro_entry(void) {
        Coro *c = current;

        switch_end(NULL, &c->caller_stack, &c->caller_stack_size);
        c->fn(c->userdata);
        c->finished = true;
        switch_begin(NULL, c->caller_stack, c->caller_stack_size);
        (void) setcontext(&c->caller_ctx);
        abort(); /* setcontext() only returns on a corrupt context */
}

/* Freed stacks of the default size, kept for the next coroutine: a worker makes one coroutine per
 * workflow run, and an mmap(), its first page faults and a munmap() (whose TLB flush interrupts
 * every CPU the process runs on) per run were a tenth of a worker's CPU time (bench/README.md,
 * change 13). Shared by all threads: a run's coroutine may end on another thread than the next
 * one starts. */
#define STACK_POOL_MAX 64

static struct {
        pthread_mutex_t lock;
        void *maps[STACK_POOL_MAX];
        size_t n;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *pool_take(size_t map_size) {
        void *map = NULL;

        if (map_size != default_map_size())
                return NULL;
        pthread_mutex_lock(&pool.lock);
        if (pool.n > 0)
                map = pool.maps[--pool.n];
        pthread_mutex_unlock(&pool.lock);
        return map;
}

static bool pool_put(void *map, size_t map_size) {
        bool kept = false;

        if (map_size != default_map_size())
                return false;
        pthread_mutex_lock(&pool.lock);
        if (pool.n < STACK_POOL_MAX) {
                pool.maps[pool.n++] = map;
                kept = true;
        }
        pthread_mutex_unlock(&pool.lock);
        return kept;
}

static int stack_map(Coro *c, size_t stack_size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        c->stack_size = (stack_size + page - 1) / page * page;
        c->map_size = c->stack_size + page;
        c->map = pool_take(c->map_size);
        if (c->map) {
                c->stack = (char *) c->map + page;
                return 0;
        }
        c->map = mmap(NULL, c->map_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (c->map == MAP_FAILED) {
                c->map = NULL;
                return -ENOMEM;
        }
        /* Stacks grow down on every architecture we build for: the guard goes below. */
        if (mprotect(c->map, page, PROT_NONE) < 0)
                return -errno;
        c->stack = (char *) c->map + page;
        return 0;
}

int coro_new(Coro **ret, size_t stack_size, coro_fn fn, void *userdata) {
        _cleanup_(coro_freep) Coro *c = NULL;
        int r;

        assert(ret);
        assert(fn);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = stack_map(c, stack_size > 0 ? stack_size : CORO_STACK_SIZE_DEFAULT);
        if (r < 0)
                return r;
        if (getcontext(&c->ctx) < 0)
                return -errno;
        c->ctx.uc_stack.ss_sp = c->stack;
        c->ctx.uc_stack.ss_size = c->stack_size;
        c->ctx.uc_link = NULL; /* coro_entry() never returns */
        makecontext(&c->ctx, coro_entry, 0);
        c->fn = fn;
        c->userdata = userdata;
        *ret = TAKE_PTR(c);
        return 0;
}

Coro *coro_free(Coro *c) {
        if (!c)
                return NULL;
        assert(c != current);
        if (c->map) {
#ifdef CORO_ASAN
                /* An abandoned coroutine leaves poisoned redzones of its live frames in the
                 * shadow; clear them so that a later mapping at this address starts clean. */
                __asan_unpoison_memory_region(c->stack, c->stack_size);
#endif
                if (!pool_put(c->map, c->map_size))
                        (void) munmap(c->map, c->map_size);
        }
        free(c);
        return NULL;
}

int coro_resume(Coro *c) {
        Coro *prev = current;
        void *fake_stack = NULL;

        assert(c);
        assert(c != current);
        if (c->finished)
                return -EINVAL;

        current = c;
        switch_begin(&fake_stack, c->stack, c->stack_size);
        if (swapcontext(&c->caller_ctx, &c->ctx) < 0) {
                current = prev;
                return -errno;
        }
        switch_end(fake_stack, NULL, NULL);
        current = prev;
        return c->finished ? 1 : 0;
}

void coro_yield(void) {
        Coro *c = current;

        assert(c); /* yielding outside a coroutine is a bug of the caller */
        switch_begin(&c->fake_stack, c->caller_stack, c->caller_stack_size);
        (void) swapcontext(&c->ctx, &c->caller_ctx);
        switch_end(c->fake_stack, &c->caller_stack, &c->caller_stack_size);
}
