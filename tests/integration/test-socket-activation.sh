#!/bin/sh
# Socket activation (sd_listen_fds): systemd-socket-activate holds the listening socket and starts
# durabled on the first connection; durabled serves on the socket it was given (not --socket),
# answers the connection that woke it, and stops cleanly on SIGTERM.
# $1 durabled, $2 durablectl. Skips (77) without systemd-socket-activate.
set -u
DURABLED=$1
CTL=$2
command -v systemd-socket-activate >/dev/null 2>&1 || { echo "no systemd-socket-activate"; exit 77; }
dir=$(mktemp -d)
pid=
cleanup() {
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
        rm -rf "$dir"
}
trap cleanup EXIT
fail() {
        echo "FAIL: $*"
        exit 1
}

mkfifo "$dir/activator.err"
systemd-socket-activate -l "$dir/io.sock" \
        "$DURABLED" --user --state-dir "$dir/state" --socket "$dir/unused.sock" \
        2>"$dir/activator.err" &
pid=$!
# One reader keeps the FIFO open for the whole test: between two opens a write from the activator
# or durabled would meet no reader and kill it with SIGPIPE.
exec 3<"$dir/activator.err"
# The activator says "Listening on ..." once the socket exists: an event, not a guess.
read -r line <&3 || fail "systemd-socket-activate said nothing"
case "$line" in
*Listening*) ;;
*) fail "unexpected first line from systemd-socket-activate: $line" ;;
esac
# Drain its stderr (and durabled's, which inherits it) so that neither ever blocks on the FIFO.
cat <&3 >"$dir/log" &

export DURABLED_SOCKET="$dir/io.sock"
out=$("$CTL" --json list) || fail "durablectl list through the activated socket: $out"
[ "$out" = "[]" ] || fail "a fresh daemon lists workflows: $out"
"$CTL" start OrderWorkflow --id act-1 --task-queue q >/dev/null || fail "start"
"$CTL" --json describe act-1 | grep -q '"status": "Running"' || fail "describe act-1"
[ -e "$dir/unused.sock" ] && fail "durabled bound --socket although it was given a socket"

kill -TERM "$pid"
wait "$pid"
status=$?
pid=
[ "$status" -eq 0 ] || fail "durabled exited with $status after SIGTERM"
echo ok
