#!/bin/sh
# What `make check` runs (STYLE.md §12, DESIGN.md §11), from the source root:
#   1. the format check: clang-format --dry-run --Werror on the tracked .c/.h files (for now it only
#      warns);
#   2. every suite (unit, integration, fuzz-regress) in BUILD, then the sanitizer build BUILD_SAN
#      (ASan+UBSan) compiled and every suite again;
#   3. every libFuzzer target (tests/fuzz/) for a short run in BUILD_FUZZ (configured with clang
#      when it is not; skipped without clang or with DURABLED_NO_FUZZ=1), ~90 s in all: STYLE.md §12;
#   4. one summary line, "N passed, N failed[, N skipped]", counting meson's results over both runs
#      and one result per fuzz target, after the names and logs of the failed tests. Exits 1 when
#      anything failed or did not build.
# Usage: tools/check.sh BUILD BUILD_SAN [BUILD_FUZZ]   (the first two configured; the Makefile does
# that; BUILD_FUZZ defaults to build-fuzz)
set -u
BUILD=${1:-build}
BUILD_SAN=${2:-build-san}
BUILD_FUZZ=${3:-build-fuzz}
FUZZ_BUDGET_SEC=90 # all targets together; each gets at most 30 s
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

# fuzz_result NAME RESULT [RERUN]: one line of the fuzz step in meson's testlog.json format.
fuzz_result() {
        python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "result": sys.argv[2],
"rerun": sys.argv[3] if len(sys.argv) > 3 else ""}))' "$@" >>"$results/3-fuzz.json"
        echo "$BUILD_FUZZ" >"$results/3-fuzz.dir"
}

# Builds the <target>-libfuzzer binaries (only those: the fuzz build is clang+ASan+UBSan) and runs
# each on a scratch copy of its corpus, so that new inputs never land in the source tree. A crash,
# leak, timeout or over-allocation fails the target; its input is kept in BUILD_FUZZ/fuzz-artifacts/.
fuzz_check() {
        if [ "${DURABLED_NO_FUZZ:-0}" = 1 ]; then
                echo "check: fuzzing skipped (DURABLED_NO_FUZZ=1)"
                fuzz_result fuzz SKIP
                return
        fi
        if [ ! -f "$BUILD_FUZZ/build.ninja" ]; then
                if ! command -v clang >/dev/null 2>&1; then
                        echo "check: fuzzing skipped (no $BUILD_FUZZ and no clang)"
                        fuzz_result fuzz SKIP
                        return
                fi
                echo "check: setting up $BUILD_FUZZ"
                if ! CC=clang meson setup "$BUILD_FUZZ" -Dfuzz=true -Db_sanitize=address,undefined \
                        -Db_lundef=false >"$results/fuzz-setup.log" 2>&1; then
                        cat "$results/fuzz-setup.log"
                        echo "$BUILD_FUZZ: meson setup failed" >"$results/3-fuzz.broken"
                        return
                fi
        fi
        targets=$(meson introspect --targets "$BUILD_FUZZ" | python3 -c '
import json, os, sys
for t in json.load(sys.stdin):
    if t["name"].endswith("-libfuzzer"):
        print(os.path.relpath(t["filename"][0], sys.argv[1]))' "$BUILD_FUZZ")
        if [ -z "$targets" ]; then
                echo "$BUILD_FUZZ: no libFuzzer targets (configured without -Dfuzz=true?)" \
                        >"$results/3-fuzz.broken"
                return
        fi
        if ! ninja -C "$BUILD_FUZZ" $targets; then
                echo "$BUILD_FUZZ: building the fuzz targets failed" >"$results/3-fuzz.broken"
                return
        fi
        n=$(echo "$targets" | wc -l)
        each=$((FUZZ_BUDGET_SEC / n))
        [ "$each" -gt 30 ] && each=30
        [ "$each" -lt 5 ] && each=5
        mkdir -p "$BUILD_FUZZ/fuzz-artifacts"
        for t in $targets; do
                name=$(basename "$t" -libfuzzer)
                corpus=tests/fuzz/corpus/${name#fuzz-}
                scratch="$results/corpus-$name"
                mkdir -p "$scratch"
                echo "check: $name for $each s"
                # -malloc_limit_mb: no single allocation may approach what a frame could justify.
                # A fixed seed (DURABLED_FUZZ_SEED overrides it) makes a run repeatable; longer
                # explorations: run build-fuzz/tests/*-libfuzzer by hand, as README says.
                if "$BUILD_FUZZ/$t" -seed="${DURABLED_FUZZ_SEED:-1}" \
                        -max_total_time="$each" -max_len=8192 -timeout=10 \
                        -malloc_limit_mb=256 -rss_limit_mb=2048 -print_final_stats=1 \
                        -artifact_prefix="$BUILD_FUZZ/fuzz-artifacts/$name-" \
                        "$scratch" "$corpus" >"$results/$name.log" 2>&1; then
                        tail -n 12 "$results/$name.log" | grep '^stat::' | tr '\n' ' '
                        echo
                        fuzz_result "$name" OK
                else
                        grep -v '^#' "$results/$name.log" | tail -n 40
                        fuzz_result "$name" FAIL "input in $BUILD_FUZZ/fuzz-artifacts/$name-*; \
replay: $BUILD_FUZZ/$t <input>; add it to $corpus/ once fixed"
                fi
        done
}

fuzz_check

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
            if t.get("rerun"):
                failures.append("FAILED: %s in %s (%s): %s" % (t.get("name"), build, r, t["rerun"]))
                continue
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
