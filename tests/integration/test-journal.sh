#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Structured logs: when stderr is the journal ($JOURNAL_STREAM names it), durabled sends its
# records with the native journal protocol, and a record about a workflow carries WORKFLOW_ID,
# RUN_ID and WORKFLOW_TYPE, so that `journalctl WORKFLOW_ID=...` shows that workflow's story;
# SYSTEMD_LOG_LEVEL=debug is honoured. The journal is journal-sink.py, bound at the real path
# /run/systemd/journal/socket inside a private mount namespace (a tmpfs over /run), so the host
# is untouched. Skips (77) where a mount namespace cannot be made.
# $1 durabled, $2 durablectl, $3 journal-sink.py.
set -u
if [ "${1:-}" != --inside ]; then
        unshare -m --propagation private true 2>/dev/null || { echo "no mount namespace"; exit 77; }
        exec unshare -m --propagation private "$0" --inside "$@"
fi
shift
DURABLED=$1
CTL=$2
SINK=$3
fail() {
        echo "FAIL: $*"
        exit 1
}
mount -t tmpfs tmpfs /run || { echo "cannot mount a tmpfs on /run"; exit 77; }
mkdir -p /run/systemd/journal
dir=$(mktemp -d)
pids=
trap 'kill -KILL $pids 2>/dev/null; rm -rf "$dir"' EXIT

mkfifo "$dir/events"
python3 "$SINK" "$dir/notify.sock" "$dir/journal" "$dir/events" &
sink=$!
pids=$sink
exec 3<"$dir/events" # kept open: the sink writes its events in order
read -r -t 30 event <&3 && [ "$event" = bound ] || fail "the journal stand-in did not start"

: >"$dir/stderr"
NOTIFY_SOCKET=$dir/notify.sock JOURNAL_STREAM=$(stat -c %d:%i "$dir/stderr") \
        SYSTEMD_LOG_LEVEL=debug DURABLED_LOG_LEVEL= \
        "$DURABLED" --user --no-bus --state-dir "$dir/state" --socket "$dir/io.sock" \
        2>>"$dir/stderr" &
daemon=$!
pids="$pids $daemon"
read -r -t 30 event <&3 && [ "$event" = ready ] || fail "durabled did not get ready: $(cat "$dir/stderr")"

"$CTL" --socket "$dir/io.sock" start Order --id order-42 --task-queue q >/dev/null ||
        fail "durablectl start"
"$CTL" --socket "$dir/io.sock" start Order --id order-43 --task-queue q >/dev/null ||
        fail "durablectl start"
"$CTL" --socket "$dir/io.sock" terminate order-42 >/dev/null || fail "durablectl terminate"
kill -TERM "$daemon"
wait "$daemon" || fail "durabled did not stop cleanly"
wait "$sink" || fail "the journal stand-in failed"

echo "--- the records:"
cat "$dir/journal"
# One record (a paragraph) per datagram.
record() {
        awk -v RS= -v want="$1" 'index($0, want) { print; print "" }' "$dir/journal"
}
rec=$(record "MESSAGE=Started workflow 'order-42'")
[ -n "$rec" ] || fail "no record of the start of order-42"
for f in WORKFLOW_ID=order-42 WORKFLOW_TYPE=Order PRIORITY=7 SYSLOG_IDENTIFIER=durabled; do
        grep -qx -- "$f" <<<"$rec" || fail "the start record lacks $f"
done
grep -qE '^RUN_ID=[0-9a-f-]{36}$' <<<"$rec" || fail "the start record lacks RUN_ID"
rec=$(record "MESSAGE=Workflow 'order-42' (Order) closed: Terminated")
grep -qx WORKFLOW_ID=order-42 <<<"$rec" || fail "no record of the close of order-42"
[ "$(grep -cx WORKFLOW_ID=order-42 "$dir/journal")" = 2 ] ||
        fail "order-42's story is not exactly its start and its close"
grep -qx WORKFLOW_ID=order-43 "$dir/journal" || fail "no record of order-43"
grep -q "running (user mode)" "$dir/journal" || fail "the start-up line did not go to the journal"
grep -q "Started workflow" "$dir/stderr" && fail "records went to stderr too"
echo ok
