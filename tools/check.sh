#!/bin/sh
# What `make check` runs (STYLE.md §12, DESIGN.md §11), from the source root:
#   1. the format check: clang-format --dry-run --Werror on the tracked .c/.h files (for now it only
#      warns);
#   2. every suite (unit, integration, fuzz-regress) in BUILD, then the sanitizer build BUILD_SAN
#      (ASan+UBSan) compiled and every suite again;
#   3. one summary line, "N passed, N failed[, N skipped]", counting meson's results over both runs,
#      after the names and logs of the failed tests. Exits 1 when anything failed or did not build.
# Usage: tools/check.sh BUILD BUILD_SAN   (both configured; the Makefile does that)
set -u
BUILD=${1:-build}
BUILD_SAN=${2:-build-san}
cd "$(dirname "$0")/.."

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

format_check() {
        if ! command -v clang-format >/dev/null 2>&1 || ! git rev-parse --git-dir >/dev/null 2>&1; then
                echo "check: warning: format check skipped (needs clang-format and a git checkout)"
                return
        fi
        bad=$(git ls-files '*.c' '*.h' | while IFS= read -r f; do
                clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || printf ' %s' "$f"
        done)
        if [ -n "$bad" ]; then
                n=$(printf '%s' "$bad" | wc -w)
                echo "check: warning: $n file(s) differ from clang-format (run 'make format'):$bad"
        else
                echo "check: format ok"
        fi
}

# run_tests DIR LABEL [meson test options]: runs every suite; keeps DIR's testlog.json as LABEL.
run_tests() {
        dir=$1
        label=$2
        shift 2
        echo "check: meson test -C $dir $*"
        rm -f "$dir/meson-logs/testlog.json"
        meson test -C "$dir" --print-errorlogs "$@"
        if [ -f "$dir/meson-logs/testlog.json" ]; then
                cp "$dir/meson-logs/testlog.json" "$results/$label.json"
        else
                echo "$dir: meson test did not run (build failed?)" >"$results/$label.broken"
        fi
        echo "$dir" >"$results/$label.dir"
}

format_check

run_tests "$BUILD" 1-build

if [ ! -f "$BUILD_SAN/build.ninja" ]; then
        echo "$BUILD_SAN is not configured (make check sets it up)" >"$results/2-san.broken"
elif meson compile -C "$BUILD_SAN"; then
        # Sanitizers slow everything down; give the timeouts room.
        run_tests "$BUILD_SAN" 2-san --timeout-multiplier 3
else
        echo "$BUILD_SAN: meson compile failed" >"$results/2-san.broken"
fi

# Tally: OK and EXPECTEDFAIL pass, SKIP skips, anything else (FAIL, TIMEOUT, ERROR, ...) fails; a
# run that could not build counts as one failure.
python3 - "$results" <<'EOF'
import glob, json, os, sys

results = sys.argv[1]
passed = failed = skipped = 0
failures = []
for path in sorted(glob.glob(os.path.join(results, "*.json"))):
    label = os.path.basename(path)[:-5]
    build = open(os.path.join(results, label + ".dir")).read().strip()
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        r = t.get("result", "ERROR")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append("FAILED: %s in %s (%s): log %s/meson-logs/testlog.txt, rerun: "
                            "meson test -C %s --print-errorlogs %s"
                            % (t.get("name"), build, r, build, build, t.get("name")))
for path in sorted(glob.glob(os.path.join(results, "*.broken"))):
    failed += 1
    failures.append("FAILED: " + open(path).read().strip())

print()
for f in failures:
    print(f)
summary = "%d passed, %d failed" % (passed, failed)
if skipped:
    summary += ", %d skipped" % skipped
print(summary)
sys.exit(1 if failed else 0)
EOF
