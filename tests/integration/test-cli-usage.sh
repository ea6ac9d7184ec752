#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# durablectl's command-line contract (durablectl(1), EXIT STATUS): a wrong command line exits 2
# with a "durablectl: ..." line that names the culprit, before any connection is tried; --help
# exits 0; an unreachable daemon exits 1 and says where it looked. No daemon is needed.
#
# Usage: test-cli-usage.sh PATH-TO-DURABLECTL
set -u

ctl=${1:?usage: $0 PATH-TO-DURABLECTL}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every usage check runs against a socket that does not exist: a check that tried to connect
# would exit 1, not 2, and fail.
export DURABLED_SOCKET="$tmp/missing/io.sock"
unset PAGER DURABLECTL_PAGER
failed=0
passed=0

# expect STATUS PATTERN ARGS...: runs durablectl ARGS, checks the exit status and that stderr
# (stdout for status 0) matches the extended regular expression PATTERN.
expect() {
        local want=$1 pattern=$2 got out
        shift 2
        "$ctl" "$@" >"$tmp/stdout" 2>"$tmp/stderr" </dev/null
        got=$?
        if [ "$want" -eq 0 ]; then out="$tmp/stdout"; else out="$tmp/stderr"; fi
        if [ "$got" -ne "$want" ] || ! grep -Eq -- "$pattern" "$out"; then
                echo "FAIL: durablectl $*: exit $got (want $want), output:" >&2
                sed 's/^/    /' "$tmp/stdout" "$tmp/stderr" >&2
                echo "    (want output matching: $pattern)" >&2
                failed=$((failed + 1))
                return
        fi
        if [ "$want" -ne 0 ] && [ "$(wc -l <"$tmp/stderr")" -ne 1 ]; then
                echo "FAIL: durablectl $*: want exactly one error line, got:" >&2
                sed 's/^/    /' "$tmp/stderr" >&2
                failed=$((failed + 1))
                return
        fi
        passed=$((passed + 1))
}

# Unknown verb, unknown option, missing verb.
expect 2 "^durablectl: unknown verb 'frobnicate'" frobnicate
expect 2 "^durablectl: unknown option '--frobnicate' for 'list'" list --frobnicate
expect 2 "^durablectl: unknown option '--frobnicate'" --frobnicate list
expect 2 "^durablectl: unknown option '--reason' for 'start'" \
        start T --id x --task-queue q --reason r
expect 2 "^durablectl: missing verb" --json

# Missing arguments and options.
expect 2 "^durablectl: missing --id ID for 'start'" start OrderWorkflow --task-queue q
expect 2 "^durablectl: missing --task-queue QUEUE for 'execute'" execute OrderWorkflow --id order-1
expect 2 "^durablectl: missing argument TYPE for 'start'" start --id order-1 --task-queue q
expect 2 "^durablectl: missing argument ID for 'describe'" describe
expect 2 "^durablectl: missing argument ID for 'pause'" pause
expect 2 "^durablectl: missing argument ID for 'delete'" delete
expect 2 "^durablectl: missing --reason TEXT for 'reset'" reset order-1 --to first
expect 2 "^durablectl: invalid value 'middle' for --to: expected first or last" \
        reset order-1 --reason r --to middle
expect 2 "^durablectl: invalid value 'Timer' for --reapply-exclude" \
        reset order-1 --reason r --reapply-exclude Timer
expect 2 "^durablectl: .*--event-id" reset order-1 --reason r --event-id x
expect 2 "^durablectl: missing --new-id ID for 'fork'" fork order-1 --step 2
expect 2 "^durablectl: .*--step" fork order-1 --new-id f --step -1
expect 2 "^durablectl: unknown option '--step' for 'redrive'" redrive order-1 --step 2
expect 2 "^durablectl: unknown batch command 'frob'" batch frob
expect 2 "^durablectl: 'activity pause' takes ID ACTIVITY-ID" activity pause order-1
expect 2 "^durablectl: 'activity reset' takes no --token or input" \
        activity reset order-1 1 --token abc
expect 2 "^durablectl: missing --query FILTER for 'batch terminate'" batch terminate --yes
expect 2 "^durablectl: --yes is required when standard input is not a terminal" \
        batch terminate --query "WorkflowType = 'T'"
expect 2 "^durablectl: missing argument NAME for 'batch signal'" batch signal --query '' --yes
expect 2 "^durablectl: missing argument ID for 'batch describe'" batch describe
expect 2 "^durablectl: .*--rps" batch pause --query '' --yes --rps many
expect 2 "^durablectl: options --to and --reapply-exclude are only for 'batch reset'" \
        batch pause --query '' --yes --to first
expect 2 "^durablectl: unexpected argument 'x' for 'batch list'" batch list x
expect 2 "^durablectl: unknown option '--wait' for 'delete'" delete order-1 --wait
expect 2 "^durablectl: unknown option '--input' for 'unpause'" unpause order-1 --input '{}'
expect 2 "^durablectl: option '--reason' needs an argument" pause order-1 --reason
expect 2 "^durablectl: missing argument NAME for 'signal'" signal order-1
expect 2 "^durablectl: option '--run-id' needs an argument" result order-1 --run-id
expect 2 "^durablectl: option '--wait' takes no argument" result order-1 --wait=yes
expect 2 "^durablectl: unexpected argument 'extra' for 'cancel'" cancel order-1 extra
expect 2 "^durablectl: missing argument ID for 'stack'" stack
expect 2 "^durablectl: unexpected argument 'extra' for 'stack'" stack order-1 extra
expect 2 "^durablectl: unknown option '--input' for 'stack'" stack order-1 --input 1
expect 2 "^durablectl: invalid duration 'soon' for --timeout" stack order-1 --timeout soon
expect 0 "query __stack_trace" --help stack

# Invalid JSON: the message names the argument and says why.
expect 2 "^durablectl: invalid JSON in --input: .*line 1, column" \
        start OrderWorkflow --id order-1 --task-queue q --input '{"order_id": 42'
expect 2 "^durablectl: invalid JSON in the JSON argument of 'signal'" \
        signal order-1 cancel_order '{oops}'
expect 2 "^durablectl: cannot read JSON for --input-file: .*$tmp/none.json" \
        start OrderWorkflow --id order-1 --task-queue q --input-file "$tmp/none.json"
expect 2 "^durablectl: the input is given twice" \
        start OrderWorkflow --id order-1 --task-queue q --input 1 --input 2

# Bad durations, counts and statuses.
expect 2 "^durablectl: invalid duration '5y' for --timeout" result order-1 --wait --timeout 5y
expect 2 "^durablectl: invalid duration 'soon' for --start-delay" \
        start W --id w --task-queue q --start-delay soon
expect 2 "^durablectl: invalid duration '-1s' for --run-timeout" \
        start W --id w --task-queue q --run-timeout -1s
expect 2 "^durablectl: invalid value 'Twice' for --id-reuse-policy" \
        start W --id w --task-queue q --id-reuse-policy Twice
expect 2 "^durablectl: missing argument NAME for 'signal-with-start'" \
        signal-with-start W --id w --task-queue q
expect 2 "^durablectl: invalid JSON in --signal-input" \
        signal-with-start W go --id w --task-queue q --signal-input '{'
expect 2 "^durablectl: invalid duration '' for --task-timeout" \
        start OrderWorkflow --id order-1 --task-queue q --task-timeout ''
expect 2 "^durablectl: invalid duration '-1s' for --timeout" query order-1 get_status --timeout=-1s
expect 2 "^durablectl: invalid duration '1h30' for --timeout" result order-1 --timeout 1h30
expect 2 "^durablectl: invalid value '0' for --limit" list --limit 0
expect 2 "^durablectl: invalid value 'sleeping' for --status" list --status sleeping
expect 2 "^durablectl: unexpected argument 'extra' for 'activity-types'" activity-types extra
expect 2 "^durablectl: unknown option '--id' for 'reload'" reload --id x

# calendar needs no daemon: the normalized form and the next elapses, as systemd-analyze prints
# them; a malformed spec exits 1 with the reason.
export TZ=UTC
expect 0 "^Normalized form: Mon..Fri \*-\*-\* 09:00:00$" calendar --base-time @1767225600 'Mon..Fri 9:00'
expect 0 "^ +Iter. #3: Mon 2026-01-05 09:00:00 UTC$" \
        calendar 'Mon..Fri 9:00' --base-time @1767225600 --iterations 3
expect 0 "^ +Next elapse: Thu 2026-01-01 23:00:00 UTC$" \
        calendar --base-time @1767225600 'daily Europe/Berlin'
expect 0 '"normalized": "\*-\*~01 00:00:00"' --json calendar '*-*~1' --base-time @1767225600
expect 0 "^ +Next elapse: never$" calendar 2003-03-05
expect 1 "^durablectl: invalid calendar spec: hour 24 is out of range 0..23" calendar '*-*-* 24:00'
expect 1 "^durablectl: invalid calendar spec: unknown time zone \"Mars/Olympus\"" \
        calendar 'daily Mars/Olympus'
expect 2 "^durablectl: invalid value '0' for --iterations" calendar daily --iterations 0
expect 2 "^durablectl: invalid value 'yesterday' for --base-time" calendar daily --base-time yesterday
expect 2 "^durablectl: missing argument SPEC\.\.\. for 'calendar'" calendar
unset TZ

# schedule: the whole command line is checked before connecting.
expect 2 "^durablectl: unknown schedule command 'frob'" schedule frob
expect 2 "^durablectl: missing argument ID for 'schedule describe'" schedule describe
expect 2 "^durablectl: unexpected argument 'x' for 'schedule list'" schedule list x
expect 2 "^durablectl: missing --type TYPE for 'schedule create'" \
        schedule create s --task-queue q --calendar daily
expect 2 "^durablectl: 'schedule create' needs --calendar SPEC or --interval DURATION" \
        schedule create s --type T --task-queue q
expect 2 "^durablectl: invalid value '\*-\*-\* 25:00' for --calendar: hour 25 is out of range" \
        schedule create s --type T --task-queue q --calendar '*-*-* 25:00'
expect 2 "^durablectl: invalid value 'often' for --overlap: expected skip, buffer_one" \
        schedule create s --type T --task-queue q --calendar daily --overlap often
expect 2 "^durablectl: invalid value 'some' for --catchup" \
        schedule create s --type T --task-queue q --calendar daily --catchup some
expect 2 "^durablectl: invalid value '30m/1h' for --interval: the offset must be shorter" \
        schedule create s --type T --task-queue q --interval 30m/1h
expect 2 "^durablectl: invalid value 'soon' for --start-time: expected @SECONDS" \
        schedule create s --type T --task-queue q --calendar daily --start-time soon
expect 2 "^durablectl: invalid value 'daily' for --end-time" \
        schedule create s --type T --task-queue q --calendar daily --end-time daily
expect 2 "^durablectl: option --calendar is only for 'schedule create'" \
        schedule pause s --calendar daily
expect 2 "^durablectl: 'schedule backfill' needs --start-time TIME and --end-time TIME" \
        schedule backfill s --start-time @1767225600
expect 2 "^durablectl: --end-time must be after --start-time" \
        schedule backfill s --start-time @1767225600 --end-time '2025-01-01 00:00 UTC'
expect 2 "^durablectl: --key and --activity-type name two scopes: give at most one" \
        task-queue config q --key k --activity-type t --concurrency 1
expect 2 "^durablectl: invalid fairness key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk' for --key" \
        task-queue config q --key kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk --concurrency 1
expect 2 "^durablectl: invalid fairness key '' for --key" task-queue config q --key '' --concurrency 1
expect 2 "^durablectl: --activity-type must not be empty" task-queue config q --activity-type ''
expect 2 "^durablectl: task-queue describe takes no limits" task-queue describe q --key k
expect 2 "^durablectl: unknown option '--key' for 'start'" start W --id w --task-queue q --key k
expect 0 "--activity-type TYPE" task-queue --help
expect 0 "--catchup-window DURATION" schedule --help
expect 1 "^durablectl: cannot connect to durabled at $tmp/missing/io.sock" \
        schedule create s --type T --task-queue q --calendar '*-*-* 03:00 Europe/Berlin' \
        --interval 1h/15m --overlap buffer_all --catchup all --catchup-window 30d --jitter 5m \
        --start-time '2026-01-01 00:00 UTC' --end-time @1893456000 --pause-on-failure

# Help and version: exit 0, on stdout.
expect 0 "^durablectl \[OPTIONS...\] VERB" --help
expect 0 "^durablectl \[OPTIONS...\] VERB" -h
expect 0 "--task-queue QUEUE" start --help
expect 0 "^durablectl history ID" history -h
expect 0 "--reason TEXT" --help terminate
expect 0 "--reason TEXT" pause --help
expect 0 "^durablectl unpause ID" unpause -h
expect 0 "^durablectl [0-9]+\.[0-9]+" --version

# Valid command lines reach the connection: exit 1, with the path that was tried.
expect 1 "^durablectl: cannot connect to durabled at $tmp/missing/io.sock: No such file" list
expect 1 "^durablectl: cannot connect to durabled at $tmp/other.sock: " \
        --socket "$tmp/other.sock" start OrderWorkflow --id order-1 --task-queue q \
        --input '{"order_id": "1"}' --task-timeout 1m30s
# --user: the socket under $XDG_RUNTIME_DIR (an empty $DURABLED_SOCKET counts as unset).
DURABLED_SOCKET='' XDG_RUNTIME_DIR="$tmp/run" \
        expect 1 "^durablectl: cannot connect to durabled at $tmp/run/durabled/io.sock: " \
        --user describe order-1

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
