#!/bin/sh
# The layering rules of STYLE.md §2, checked on the source tree (argument: its root):
#  1. only daemon/store*.c include <sqlite3.h> (DESIGN.md §13: the store stays replaceable);
#  2. daemon/ and libclient/ never include each other's headers, and the dependency arrows point
#     one way: common <- proto <- daemon | libclient <- cli;
#  3. in daemon/, only clock.c reads the wall clock: clock_gettime(CLOCK_REALTIME...), time(),
#     gettimeofday(), sd_event_now(..., CLOCK_REALTIME...) (DESIGN.md §8: the virtual clock);
#  4. in daemon/, only api-bus.c calls sd_bus_*() (the D-Bus API is one module).
# Comments are blanked out first, so prose may name these calls.
# Prints every violation as "layering: rule: file:line: code"; exits 1 on any.
set -eu
root=${1:-$(dirname "$0")/../..}
cd "$root"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
failed=0

# All code lines of the tree as "file:line: text", with comments and the contents of string and
# character literals removed (but for #include lines), so neither prose nor log messages match.
find common proto daemon libclient cli examples bench -type f \( -name '*.c' -o -name '*.h' \) \
        2>/dev/null | LC_ALL=C sort | xargs -r awk '
        FNR == 1 { incomment = 0 }
        {
                out = ""; quote = ""; keep = $0 ~ /^[ \t]*#[ \t]*include/
                for (i = 1; i <= length($0); i++) {
                        c = substr($0, i, 1); c2 = substr($0, i, 2)
                        if (incomment) {
                                if (c2 == "*/") { incomment = 0; i++ }
                        } else if (quote != "") {
                                if (c == "\\") i++
                                else if (c == quote) { quote = ""; out = out c }
                                else if (keep) out = out c
                        } else if (c2 == "/*") { incomment = 1; i++; out = out " " }
                        else if (c2 == "//") break
                        else { out = out c; if (c == "\"" || c == "\047") quote = c }
                }
                print FILENAME ":" FNR ": " out
        }' >"$tmp"

# check RULE FILES PATTERN [EXEMPT]: code lines in files matching the regex FILES (but not EXEMPT)
# that match PATTERN.
check() {
        hits=$(grep -E "^($2):[0-9]+: " "$tmp" | grep -Ev "^(${4:-^$}):[0-9]+: " |
                grep -E -- "^[^:]*:[0-9]+: .*($3)" || true)
        [ -z "$hits" ] && return 0
        printf '%s\n' "$hits" | while IFS= read -r l; do
                printf 'layering: %s: %s\n' "$1" "$l"
        done
        failed=1
}

any='[^:]*'

check "only daemon/store*.c include <sqlite3.h>" "$any" 'sqlite3\.h[>"]' 'daemon/store[^/]*\.c'
check "common/ depends on libc only" "common/$any" '# *include *[<"](\.\./)*(proto|daemon|libclient|cli|durable)/'
check "proto/ depends on common/ only" "proto/$any" '# *include *[<"](\.\./)*(daemon|libclient|cli|durable)/'
check "daemon/ never includes libclient/" "daemon/$any" '# *include *[<"](\.\./)*(libclient|cli|durable)/'
check "libclient/ never includes daemon/" "libclient/$any" '# *include *[<"](\.\./)*(daemon|cli)/'
check "cli/ and examples/ use libdurable, not the daemon" "(cli|examples)/$any" '# *include *[<"](\.\./)*daemon/'
check "only daemon/clock.c reads the wall clock" "daemon/$any" \
        '(clock_gettime|sd_event_now) *\([^;]*CLOCK_REALTIME|(^|[^A-Za-z0-9_.>])(time|gettimeofday|ftime) *\(' \
        'daemon/clock\.c'
check "only daemon/api-bus.c speaks D-Bus" "daemon/$any" '(^|[^A-Za-z0-9_])sd_bus_' \
        'daemon/api-bus\.c'

if [ "$failed" -ne 0 ]; then
        echo "layering: FAILED (STYLE.md §2)"
        exit 1
fi
echo "layering: ok"
