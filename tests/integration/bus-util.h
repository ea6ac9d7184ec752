#pragma once
/* A private dbus-daemon for the D-Bus tests (test-dbus.c, test-permission-matrix.c): the system
 * bus's default policy (nothing may be owned, method calls only where a policy allows them) plus
 * the project's policy file ($DBUS_POLICY), listening in a directory every user may reach. */

#include "tests/lib/daemon.h"

typedef struct TestBus {
        char *dir;
        char address[512];
        char address_arg[600]; /* --address=... for busctl */
        char bus_arg[600];     /* --bus=... for dbus-send */
        TestProcess proc;
} TestBus;

/* Starts the bus and waits until it listens (it prints its address). */
void bus_start(TestBus *b);
void bus_free(TestBus *b);
