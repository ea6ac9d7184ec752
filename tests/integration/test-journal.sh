#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Structured logs: when stderr is the journal ($JOURNAL_STREAM names it), durabled sends its
# records with the native journal protocol, and a record about a workflow carries WORKFLOW_ID,
# RUN_ID and WORKFLOW_TYPE (and ACTIVITY_ID when it is about an activity), so that
# `journalctl WORKFLOW_ID=...` shows that workflow's story. The level is --log-level=, else
# $DURABLED_LOG_LEVEL, else $SYSTEMD_LOG_LEVEL. The journal is journal-sink.py, bound at the real
# path /run/systemd/journal/socket inside a private mount namespace (a tmpfs over /run), so the host
# is untouched. Skips (77) where a mount namespace cannot be made.
# $1 durabled, $2 durablectl, $3 journal-sink.py, $4 orders-worker.
set -u
if [ "${1:-}" != --inside ]; then
        unshare -m --propagation private true 2>/dev/null || { echo "no mount namespace"; exit 77; }
        exec unshare -m --propagation private "$0" --inside "$@"
fi
shift
DURABLED=$1
CTL=$2
SINK=$3
WORKER=$4
fail() {
        echo "FAIL: $*"
        exit 1
}
mount -t tmpfs tmpfs /run || { echo "cannot mount a tmpfs on /run"; exit 77; }
mkdir -p /run/systemd/journal
dir=$(mktemp -d)
pids=
cg=
# The daemon's cgroup, for process activities, is removed with what the daemon made below it.
trap 'kill -KILL $pids 2>/dev/null
      [ -z "$cg" ] || { echo 1 >"$cg/cgroup.kill"; find "$cg" -depth -type d -exec rmdir {} +; }
      rm -rf "$dir"' EXIT
launch=()

# life NAME DURABLED-ARGS...: one life of the daemon (in the environment the caller gives it,
# state kept from one life to the next) whose journal records go to $dir/NAME.journal, a
# paragraph each, and whose stderr to $dir/NAME.stderr. It runs while the caller's commands do:
# life_start, the commands, life_stop.
life_start() {
        name=$1
        shift
        rm -f /run/systemd/journal/socket "$dir/notify.sock" "$dir/events"
        mkfifo "$dir/events"
        python3 "$SINK" "$dir/notify.sock" "$dir/$name.journal" "$dir/events" &
        sink=$!
        pids="$pids $sink"
        exec 3<"$dir/events" # kept open: the sink writes its events in order
        read -r -t 30 event <&3 && [ "$event" = bound ] || fail "the journal stand-in did not start"
        : >"$dir/$name.stderr"
        NOTIFY_SOCKET=$dir/notify.sock JOURNAL_STREAM=$(stat -c %d:%i "$dir/$name.stderr") \
                ${launch[@]+"${launch[@]}"} "$DURABLED" --user --no-bus --state-dir "$dir/state" \
                --socket "$dir/io.sock" "$@" 2>>"$dir/$name.stderr" &
        daemon=$!
        pids="$pids $daemon"
        read -r -t 30 event <&3 && [ "$event" = ready ] ||
                fail "durabled did not get ready: $(cat "$dir/$name.stderr")"
}
life_stop() {
        kill -TERM "$daemon"
        wait "$daemon" || fail "durabled did not stop cleanly"
        wait "$sink" || fail "the journal stand-in failed"
        exec 3<&-
        echo "--- the records of $name:"
        cat "$dir/$name.journal"
}
ctl() {
        "$CTL" --socket "$dir/io.sock" "$@" >/dev/null || fail "durablectl $*"
}
# record NAME TEXT: the records of life NAME that contain TEXT.
record() {
        awk -v RS= -v want="$2" 'index($0, want) { print; print "" }' "$dir/$1.journal"
}

# SYSTEMD_LOG_LEVEL=debug is honoured: the starts and closes of workflows are debug records.
export SYSTEMD_LOG_LEVEL=debug DURABLED_LOG_LEVEL=
life_start debug
ctl start Order --id order-42 --task-queue q
ctl start Order --id order-43 --task-queue q
ctl terminate order-42
# An order whose activities a worker runs: the record of each activity's end names the activity
# as well as its run.
"$WORKER" --socket "$dir/io.sock" 2>"$dir/worker.stderr" &
worker=$!
pids="$pids $worker"
ctl execute OrderWorkflow --id order-46 --task-queue order-processing --input '{"order_id": "46"}'
kill -TERM "$worker"
wait "$worker"
life_stop

rec=$(record debug "MESSAGE=Started workflow 'order-42'")
[ -n "$rec" ] || fail "no record of the start of order-42"
for f in WORKFLOW_ID=order-42 WORKFLOW_TYPE=Order PRIORITY=7 SYSLOG_IDENTIFIER=durabled; do
        grep -qx -- "$f" <<<"$rec" || fail "the start record lacks $f"
done
grep -qE '^RUN_ID=[0-9a-f-]{36}$' <<<"$rec" || fail "the start record lacks RUN_ID"
rec=$(record debug "MESSAGE=Workflow 'order-42' (Order) closed: Terminated")
grep -qx WORKFLOW_ID=order-42 <<<"$rec" || fail "no record of the close of order-42"
[ "$(grep -cx WORKFLOW_ID=order-42 "$dir/debug.journal")" = 2 ] ||
        fail "order-42's story is not exactly its start and its close"
grep -qx WORKFLOW_ID=order-43 "$dir/debug.journal" || fail "no record of order-43"
rec=$(record debug "of workflow 'order-46': ActivityTaskCompleted")
[ -n "$rec" ] || fail "no record of the end of an activity of order-46"
for f in WORKFLOW_ID=order-46 WORKFLOW_TYPE=OrderWorkflow; do
        grep -qx -- "$f" <<<"$rec" || fail "the record of the end of an activity lacks $f"
done
grep -qE '^ACTIVITY_ID=.+$' <<<"$rec" ||
        fail "the record of the end of an activity lacks ACTIVITY_ID"
grep -q "running (user mode)" "$dir/debug.journal" ||
        fail "the start-up line did not go to the journal"
grep -q "Started workflow" "$dir/debug.stderr" && fail "records went to stderr too"

# $DURABLED_LOG_LEVEL comes before $SYSTEMD_LOG_LEVEL: no debug records.
export SYSTEMD_LOG_LEVEL=debug DURABLED_LOG_LEVEL=info
life_start info
ctl start Order --id order-44 --task-queue q
life_stop
grep -q "running (user mode)" "$dir/info.journal" || fail "no info records at level info"
grep -qx PRIORITY=7 "$dir/info.journal" && fail "debug records at DURABLED_LOG_LEVEL=info"

# --log-level= comes before both.
export SYSTEMD_LOG_LEVEL=err DURABLED_LOG_LEVEL=err
life_start option --log-level=debug
ctl start Order --id order-45 --task-queue q
life_stop
[ -n "$(record option "MESSAGE=Started workflow 'order-45'")" ] ||
        fail "no debug record with --log-level=debug"

# The records about the processes of a process activity (durabled.activity(5)) name the activity
# too. The daemon needs a cgroup of its own for them: a child of ours on the cgroup2 mount.
# mountinfo: the mount point is field 5, the file system type follows the "-".
mnt=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5
        break } }' \
        /proc/self/mountinfo | head -n 1)
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
if [ -n "$mnt" ] && mkdir "$mnt${own%/}/test-journal-$$" 2>/dev/null; then
        cg=$mnt${own%/}/test-journal-$$
        mkdir "$dir/units"
        printf '[Activity]\nExecStart=/bin/true\nStartToCloseSec=30s\n' >"$dir/units/noop.activity"
        # shellcheck disable=SC2016
        launch=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg")
        export SYSTEMD_LOG_LEVEL=info DURABLED_LOG_LEVEL=
        life_start process --activity-dir "$dir/units"
        ctl activity execute noop --id noop-1
        life_stop
        rec=$(record process "attempt 1 completed")
        [ -n "$rec" ] || fail "no record of the completed attempt of noop-1"
        for f in WORKFLOW_ID=noop-1 WORKFLOW_TYPE=durabled.StandaloneActivity ACTIVITY_ID=noop-1
        do
                grep -qx -- "$f" <<<"$rec" || fail "the record of noop-1's attempt lacks $f"
        done
else
        echo "skip: no cgroup2 mount where a child cgroup can be made: process activities untried"
fi
echo ok
