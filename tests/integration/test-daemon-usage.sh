#!/bin/sh
# durabled's command line: bad options are refused with a message that names them, before the
# daemon touches any file; --help and --version work. $1 is the durabled binary.
set -u
DURABLED=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0

# expect_refused "what it must say" ARGS...: exit status 1, the message on stderr, no state dir.
expect_refused() {
        want=$1
        shift
        if "$DURABLED" --user --state-dir "$dir/state" --socket "$dir/io.sock" "$@" \
                >"$dir/out" 2>"$dir/err"; then
                echo "FAIL: durabled $* was accepted"
                fails=$((fails + 1))
                return
        fi
        if ! grep -q -- "$want" "$dir/err"; then
                echo "FAIL: durabled $*: stderr lacks '$want':"
                cat "$dir/err"
                fails=$((fails + 1))
        fi
        if [ -e "$dir/state" ]; then
                echo "FAIL: durabled $* created its state directory"
                fails=$((fails + 1))
                rm -rf "$dir/state"
        fi
}

expect_refused "Invalid --durability=sometimes" --durability=sometimes
expect_refused "Invalid --max-frame-size=12x" --max-frame-size=12x
expect_refused "Invalid --max-frame-size=10" --max-frame-size=10
expect_refused "Invalid --max-frame-size=2048M" --max-frame-size=2048M
expect_refused "Invalid --max-payload-size=2x" --max-payload-size=2x
expect_refused "Invalid --max-payload-size=100" --max-payload-size=100
expect_refused "max-payload-size=8388608 is larger than --max-frame-size=4194304" \
        --max-payload-size=8M
expect_refused "Invalid --log-level=chatty" --log-level=chatty
expect_refused "Invalid --bulk-load=abc" --bulk-load=abc
expect_refused "Invalid --bulk-load=5" --bulk-load=5
expect_refused "Invalid --bulk-load=-1,2" --bulk-load=-1,2
expect_refused "Invalid --bus-address=: expected a D-Bus address" --bus-address=
expect_refused "Invalid --clock-offset=-5" --clock-offset=-5
expect_refused "Invalid --clock-offset=1d" --clock-offset=1d
expect_refused "Invalid --clock-offset=99999999999" --clock-offset=99999999999
expect_refused "Invalid --history-max-events=0" --history-max-events=0
expect_refused "Invalid --history-warn-events=many" --history-warn-events=many
expect_refused "Invalid --history-max-bytes=-5" --history-max-bytes=-5
expect_refused "Invalid --history-max-bytes=50Q" --history-max-bytes=50Q
for opt in max-pending-activities max-pending-children max-signals-per-run max-connections \
        max-polls-per-connection max-waits max-activity-processes; do
        expect_refused "Invalid --$opt=0: expected a count from 1" --$opt=0
        expect_refused "Invalid --$opt=-3" --$opt=-3
        expect_refused "Invalid --$opt=12x" --$opt=12x
        expect_refused "Invalid --$opt=99999999999" --$opt=99999999999
        expect_refused "option '--$opt' requires an argument" --$opt
done
expect_refused "Invalid --admin-group=no-such-group-here: no such group" \
        --admin-group=no-such-group-here
expect_refused "Invalid --admin-group=-5" --admin-group=-5
expect_refused "Invalid --max-updates-in-flight=0" --max-updates-in-flight=0
expect_refused "Invalid --max-updates-in-flight=ten" --max-updates-in-flight=ten
expect_refused "Invalid --max-updates-per-run=-1" --max-updates-per-run=-1
expect_refused "Invalid --max-updates-per-run=99999999999" --max-updates-per-run=99999999999
expect_refused "unrecognized option" --no-such-option
expect_refused "Unexpected argument 'extra'" extra

"$DURABLED" --help >"$dir/out" 2>&1 || { echo "FAIL: --help"; fails=$((fails + 1)); }
grep -q -- "--state-dir" "$dir/out" || { echo "FAIL: --help lacks --state-dir"; fails=$((fails + 1)); }
"$DURABLED" --version | grep -q "^durabled " || { echo "FAIL: --version"; fails=$((fails + 1)); }

# Sizes with a suffix are accepted (options are parsed in order; --version then exits).
for size in 4M 4096K 65536; do
        "$DURABLED" --max-frame-size=$size --version >/dev/null 2>&1 ||
                { echo "FAIL: --max-frame-size=$size refused"; fails=$((fails + 1)); }
done

for limit in --history-max-bytes=50M --history-max-bytes=1G --history-max-events=100 \
        --max-pending-activities=1 --max-signals-per-run=4294967295 --max-connections=1000000 \
        --admin-group=4242 --admin-group=root \
        --max-updates-in-flight=1 --max-updates-per-run=5000 --max-payload-size=1K; do
        "$DURABLED" $limit --version >/dev/null 2>&1 ||
                { echo "FAIL: $limit refused"; fails=$((fails + 1)); }
done

[ "$fails" -eq 0 ] && echo "ok"
exit "$fails"
