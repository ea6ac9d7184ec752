#!/bin/sh
# make demo: a user-mode durabled on a private state directory, the example worker, one order
# workflow watched through its query, its result and history, and the saga with a declined
# payment to show the compensations, then one activity of the order workflow as a shell script that
# the daemon supervises in a cgroup of its own (durabled.activity(5)). Stops what it started.
set -eu
BUILD=${1:-build}
DEMO=$(pwd)/.demo
DURABLED=$BUILD/daemon/durabled
WORKER=$BUILD/examples/orders-worker
CTL=$BUILD/cli/durablectl

rm -rf "$DEMO"
mkdir -p "$DEMO"
export DURABLED_SOCKET="$DEMO/io.sock"
pids=""
cgroup=""
cleanup() {
        for p in $pids; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        if [ -n "$cgroup" ]; then
                rmdir "$cgroup"/activities/* "$cgroup"/activities "$cgroup"/supervisor \
                        "$cgroup" 2>/dev/null || true
        fi
}
trap cleanup EXIT INT TERM

if [ -t 1 ]; then
        say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
        say() { printf '\n== %s\n' "$*"; }
fi

# Process activities run in cgroups below the daemon's own (durabled(8), CGROUPS), which must not
# be the root cgroup: as root, the demo gives the daemon a cgroup of its own; otherwise a
# delegated systemd scope does.
mkdir -p "$DEMO/activities"
mount=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit }
        break } }' /proc/self/mountinfo)
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
run_daemon() {
        "$DURABLED" --user --state-dir "$DEMO/state" --socket "$DURABLED_SOCKET" \
                --activity-dir "$DEMO/activities" 2>"$DEMO/durabled.log" &
}
say "Starting durabled (user mode, state in $DEMO/state)"
if [ "$(id -u)" = 0 ] && [ -n "$mount" ] && mkdir -p "$mount${own%/}/durabled-demo" 2>/dev/null; then
        cgroup="$mount${own%/}/durabled-demo"
        (echo 0 >"$cgroup/cgroup.procs" && exec "$DURABLED" --user --state-dir "$DEMO/state" \
                --socket "$DURABLED_SOCKET" --activity-dir "$DEMO/activities" \
                2>"$DEMO/durabled.log") &
elif command -v systemd-run >/dev/null && systemd-run --user --scope --quiet true 2>/dev/null; then
        systemd-run --user --scope --quiet -p Delegate=yes "$DURABLED" --user \
                --state-dir "$DEMO/state" --socket "$DURABLED_SOCKET" \
                --activity-dir "$DEMO/activities" 2>"$DEMO/durabled.log" &
else
        run_daemon
fi
pids="$pids $!"
i=0
until "$CTL" list >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "durabled did not come up; see $DEMO/durabled.log" >&2; exit 1; }
        sleep 0.1
done

say "Starting the example worker on task queue order-processing"
"$WORKER" --socket "$DURABLED_SOCKET" 2>"$DEMO/worker.log" &
pids="$pids $!"

say "durablectl start OrderWorkflow --id order-42"
"$CTL" start OrderWorkflow --id order-42 --task-queue order-processing \
        --input '{"order_id": "42", "amount": 100, "delay_ms": 700}'

say "Asking the running workflow for its status (query get_status)"
for _ in 1 2 3; do
        printf 'status: '
        "$CTL" query order-42 get_status || true
        sleep 0.5
done

say "durablectl result order-42 --wait"
"$CTL" result order-42 --wait

say "durablectl history order-42"
"$CTL" history order-42

say "The saga with a declined card: compensations run in reverse order"
"$CTL" execute OrderSagaWorkflow --id saga-42 --task-queue order-processing \
        --input '{"order_id": "42", "amount": 100, "card": "declined"}' || true
"$CTL" history saga-42

say "A shell activity: reserve_inventory as a process that durabled supervises"
cat >"$DEMO/activities/reserve_inventory.activity" <<UNIT
[Unit]
Description=reserve_inventory of the order workflow, as a shell script

[Activity]
ExecStart=$(pwd)/examples/activities/reserve-inventory.sh
StartToCloseSec=30s
NonRetryableExitStatus=2
UNIT
cat "$DEMO/activities/reserve_inventory.activity"
say "durablectl reload (as SIGHUP does), then durablectl activity-types"
"$CTL" reload >/dev/null
"$CTL" activity-types
say "durablectl execute OrderWorkflow --id order-43: reserve_inventory runs as a process"
"$CTL" execute OrderWorkflow --id order-43 --task-queue order-processing \
        --input '{"order_id": "43", "amount": 30}' || true
"$CTL" history order-43 | grep -E 'ID|reserve_inventory|ActivityTaskStarted|ActivityTaskCompleted' || true
echo "(its stderr, in $DEMO/durabled.log:)"
grep 'reserving stock' "$DEMO/durabled.log" || true

say "Done. Logs are in $DEMO/"
