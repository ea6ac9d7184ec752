#pragma once
/* The D-Bus API (org.durabled1(5), DESIGN.md §9): the bus name org.durabled1, the manager object
 * /org/durabled1 and one object per open workflow under /org/durabled1/workflow, on the bus the
 * daemon was told to use.
 *
 * Every method call becomes a request of the socket API (api-sock.c) on a socketless connection
 * (conn_new_sink()) carrying the sender's credentials as the bus reports them, so both front ends
 * run the same operations with the same authorisation (DESIGN.md §10). Its answer is held until
 * the pass committed, exactly like a socket answer (DESIGN.md §3), then turned into the method's
 * reply or a named error org.durabled1.Error.<Code>. Signals (WorkflowStarted, WorkflowClosed,
 * PropertiesChanged, InterfacesAdded/Removed) are noted during a pass and sent only after its
 * commit; a rolled-back pass sends none. */

#include <stdbool.h>

typedef struct Manager Manager;
typedef struct ApiBus ApiBus;

/* Connects to cfg.bus_address, else to the session bus (user mode) or the system bus, registers
 * the objects and takes the name. With an explicit address every failure is an error; without
 * one, a missing bus or a name owned by someone else is logged and the daemon runs without
 * D-Bus. cfg.no_bus: does nothing. */
int api_bus_open(Manager *m);
ApiBus *api_bus_free(ApiBus *b);

/* The history engine changed a run in this pass: @started (its first event), @closed. */
void api_bus_note_changed(Manager *m, const char *run_id, bool started, bool closed);
/* After the commit: emits the signals of the runs noted in this pass. */
void api_bus_emit_changed(Manager *m);
/* The pass rolled back: nothing noted happened. */
void api_bus_forget_changed(Manager *m);
