#pragma once
/* Named kill points for crash tests (built only with -Dfault-injection=true; otherwise they cost
 * nothing). With DURABLED_KILL_AT=NAME:N in the environment, the N-th time the daemon passes
 * killpoint("NAME") it sends itself SIGKILL: a real crash at an exact place, without timing.
 * With DURABLED_KILL_LOG=PATH it first appends "NAME\n" to PATH, so that a harness learns where
 * the kill landed (tests/crash/).
 *
 * Inside the pass's write transaction (its writes are not committed):
 *   event-insert    a history event was written (store.c)
 *   run-update      a run's row was rewritten (store.c)
 *   activity-write  an activity's row was inserted or rewritten (store.c)
 *   before-commit   the pass's writes are done, the transaction is not committed
 * Outside a transaction:
 *   after-commit    committed, no answer of the pass has been sent yet
 *   before-spawn    an activity attempt is recorded as started, its process is not forked yet */

#if DURABLED_FAULT_INJECTION
void killpoint(const char *name);
#else
static inline void killpoint(const char *name) {
        (void) name;
}
#endif
