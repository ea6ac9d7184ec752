#!/bin/sh
# A stand-in for durabled that signals readiness with systemd-notify(1), for test-harness.c: the
# harness must accept READY=1 sent by a helper process, not only by the daemon itself.
# (--no-block: without it systemd-notify waits for a barrier the harness may have closed.)
set -eu
sleep infinity >/dev/null 2>&1 &
child=$!
trap 'kill "$child" 2>/dev/null; exit 0' TERM
systemd-notify --ready --no-block --status="fake (sh) ready"
wait "$child"
