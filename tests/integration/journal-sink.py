#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# A stand-in for journald and the service manager, for test-journal.sh (inside its own mount
# namespace): receives the native journal protocol on /run/systemd/journal/socket and sd_notify
# datagrams on NOTIFY, appends each journal record to OUT (a blank line after each), and reports
# on the FIFO EVENTS: "bound" once both sockets exist, "ready" at READY=1. At STOPPING=1 it takes
# what records are still queued and exits.
# Usage: journal-sink.py NOTIFY OUT EVENTS
import os
import select
import socket
import sys

notify_path, out_path, events_path = sys.argv[1:4]
journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
journal.bind("/run/systemd/journal/socket")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
events = open(events_path, "w")
out = open(out_path, "wb")


def say(word):
    events.write(word + "\n")
    events.flush()


def drain():
    journal.setblocking(False)
    while True:
        try:
            out.write(journal.recv(65536) + b"\n")
        except BlockingIOError:
            break
    journal.setblocking(True)
    out.flush()


say("bound")
while True:
    ready, _, _ = select.select([journal, notify], [], [])
    if journal in ready:
        drain()
    if notify in ready:
        msg = notify.recv(4096).decode(errors="replace").split("\n")
        if "READY=1" in msg:
            say("ready")
        if "STOPPING=1" in msg:
            drain()
            sys.exit(0)
