#pragma once
/* Coroutines: a function running on its own mmap'd stack, switched to and from with ucontext.
 *
 * A Coro is resumed by a scheduler (any code not on a coroutine stack, or another coroutine) and
 * runs until it calls coro_yield() or its function returns; control then goes back to whoever
 * resumed it. Stacks have a PROT_NONE guard page below them, so an overflow faults instead of
 * silently corrupting the neighbouring heap. Every switch is annotated for AddressSanitizer.
 *
 * A Coro is used by one thread at a time. Freeing a coroutine that has not finished just drops
 * its stack: nothing on it is unwound (C has no way to), so code that may be abandoned must keep
 * what it owns somewhere else (the replay engine keeps everything in its Run). */

#include <stdbool.h>
#include <stddef.h>

#include "common/cleanup.h"

#define CORO_STACK_SIZE_DEFAULT ((size_t) 256 * 1024)

typedef struct Coro Coro;
typedef void (*coro_fn)(void *userdata);

/* Creates a suspended coroutine that will run fn(userdata) when first resumed. @stack_size 0
 * means CORO_STACK_SIZE_DEFAULT; it is rounded up to whole pages. */
int coro_new(Coro **ret, size_t stack_size, coro_fn fn, void *userdata);
/* Frees the coroutine; its stack is unmapped, or kept (a few dozen of the default size) for the
 * next coroutine. Must not be called from the coroutine itself. */
Coro *coro_free(Coro *c);

/* Runs @c until it yields or returns. Returns 1 when it has finished, 0 when it yielded,
 * -EINVAL if it had already finished. */
int coro_resume(Coro *c);
/* Called on a coroutine: goes back to the code that resumed it. */
void coro_yield(void);

bool coro_finished(const Coro *c);
/* The coroutine running on this thread, or NULL outside any coroutine. */
Coro *coro_current(void);

DEFINE_CLEANUP(Coro, coro_free);
