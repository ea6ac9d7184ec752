#!/bin/sh
# make demo: a user-mode durabled on a private state directory, the example worker, one order
# workflow watched through its query, its result and history, and the saga with a declined
# payment to show the compensations. Stops what it started.
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
cleanup() {
        for p in $pids; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -t 1 ]; then
        say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
        say() { printf '\n== %s\n' "$*"; }
fi

say "Starting durabled (user mode, state in $DEMO/state)"
"$DURABLED" --user --state-dir "$DEMO/state" --socket "$DURABLED_SOCKET" 2>"$DEMO/durabled.log" &
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

say "Done. Logs are in $DEMO/"
