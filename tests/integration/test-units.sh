#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The unit files and man pages are valid: `systemd-analyze verify` accepts every unit, the
# sysusers.d and tmpfiles.d snippets apply to an empty root, every page of man/meson.build has its
# scdoc source and no roff page is left in man/, and groff (or man) renders every page scdoc built
# without a warning. Without systemd-analyze the test is skipped (exit 77), after the other
# checks, whose failures still fail it.
#
# Usage: test-units.sh PATH-TO-DURABLED [SOURCE-DIR [MAN-DIR]]
#   PATH-TO-DURABLED  the built daemon: verify wants ExecStart= to name an existing binary, so
#                     the units are verified as temporary copies whose ExecStart= runs it
#   SOURCE-DIR        the top of the source tree (default: two levels above this script)
#   MAN-DIR           where meson built the pages (the build tree's man/); "" when the build
#                     has -Dman=false, and the built pages are not checked
set -u

durabled=${1:?usage: $0 PATH-TO-DURABLED [SOURCE-DIR]}
srcdir=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
mandir=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$durabled" ]; then
        echo "not executable: $durabled"
        exit 1
fi
durabled=$(cd "$(dirname "$durabled")" && pwd)/$(basename "$durabled")

failed=0
checked=0

fail() {
        echo "FAIL: $*"
        failed=$((failed + 1))
}

# ---- units ----

# verify_units DIR UNIT...: runs systemd-analyze verify on the units of DIR. Only messages that
# name one of our files count: verify also loads the units they refer to (sockets.target,
# multi-user.target, ...), whose own problems on the build host are not ours.
verify_units() {
        local dir=$1 out rc
        shift
        # --man=no: the pages named by Documentation= are not installed yet.
        out=$(cd "$dir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze "${scope[@]}" --man=no \
                verify "${@/#/$dir/}" 2>&1)
        rc=$?
        if grep -E "($(IFS='|'; echo "$*"))" <<<"$out" | grep -vE '^\s*$' >"$tmp/msgs"; then
                fail "systemd-analyze ${scope[*]} verify $*:"
                sed 's/^/    /' "$tmp/msgs"
        elif [ $rc -ne 0 ]; then
                fail "systemd-analyze ${scope[*]} verify $* exited $rc:"
                sed 's/^/    /' <<<"$out"
        else
                echo "ok: systemd-analyze ${scope[*]} verify $*"
        fi
        checked=$((checked + 1))
}

# copy_unit SRC DST: a copy of SRC whose ExecStart= runs the built daemon.
copy_unit() {
        sed -E "s|^ExecStart=/usr/sbin/durabled( \|$)|ExecStart=$durabled\1|" "$1" >"$2"
        if ! grep -q "^ExecStart=$durabled" "$2" && grep -q '^ExecStart=' "$2"; then
                fail "$1: ExecStart= does not run /usr/sbin/durabled"
        fi
}

if command -v systemd-analyze >/dev/null; then
        mkdir -p "$tmp/system" "$tmp/user"
        copy_unit "$srcdir/units/durabled.service" "$tmp/system/durabled.service"
        cp "$srcdir/units/durabled.socket" "$tmp/system/durabled.socket"
        copy_unit "$srcdir/units/user/durabled.service" "$tmp/user/durabled.service"

        scope=(--system)
        verify_units "$tmp/system" durabled.socket durabled.service
        # The user manager that --user verify sets up wants $XDG_RUNTIME_DIR; outside a
        # session (CI, root) a temporary one does.
        scope=(--user)
        if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
                mkdir -m 0700 "$tmp/xdg"
                export XDG_RUNTIME_DIR=$tmp/xdg
        fi
        verify_units "$tmp/user" durabled.service
        have_verify=1
else
        echo "skip: systemd-analyze not found"
        have_verify=0
fi

# sysusers.d and tmpfiles.d snippets: dry runs against an empty root, when the tools exist.
if command -v systemd-sysusers >/dev/null; then
        mkdir -p "$tmp/root/etc"
        if out=$(systemd-sysusers --root="$tmp/root" --dry-run "$srcdir/units/durabled.sysusers" 2>&1) ||
           out=$(systemd-sysusers --root="$tmp/root" "$srcdir/units/durabled.sysusers" 2>&1); then
                echo "ok: systemd-sysusers durabled.sysusers"
        else
                fail "systemd-sysusers durabled.sysusers:"
                sed 's/^/    /' <<<"$out"
        fi
        checked=$((checked + 1))
fi
if command -v systemd-tmpfiles >/dev/null; then
        mkdir -p "$tmp/root"
        if out=$(systemd-tmpfiles --root="$tmp/root" --create "$srcdir/units/durabled.tmpfiles" 2>&1) &&
           [ -d "$tmp/root/var/lib/durabled" ] && [ -d "$tmp/root/run/durabled" ]; then
                echo "ok: systemd-tmpfiles durabled.tmpfiles"
        else
                fail "systemd-tmpfiles durabled.tmpfiles:"
                sed 's/^/    /' <<<"$out"
        fi
        checked=$((checked + 1))
fi

# ---- man pages ----

# The pages of man/meson.build, each with its scdoc source; every source is in the list, and no
# hand-written roff page is left (a merge that brings one back must convert it with
# tools/roff2scd.py: the roff would be neither built nor installed).
pages=()
while read -r p; do
        pages+=("$p")
        [ -f "$srcdir/man/$p.scd" ] ||
                fail "man/$p.scd (the source of $p in man/meson.build) is missing"
done < <(sed -nE "s/^[[:space:]]*'([^']+\.[1-8])',?[[:space:]]*$/\1/p" "$srcdir/man/meson.build")
if [ ${#pages[@]} -eq 0 ]; then
        fail "no pages found in man/meson.build"
fi
for p in "$srcdir"/man/*.scd; do
        case " ${pages[*]} " in
        *" $(basename "$p" .scd) "*) ;;
        *) fail "$(basename "$p") is not in man_pages of man/meson.build" ;;
        esac
done
for p in "$srcdir"/man/*.[1-8]; do
        [ -e "$p" ] || continue
        fail "man/$(basename "$p") is roff: convert it (tools/roff2scd.py $p >$p.scd) and remove it"
done
checked=$((checked + 1))

# The built pages: groff -k reads their UTF-8 (scdoc writes characters, not roff escapes).
built=()
if [ -z "$mandir" ]; then
        echo "skip: the build has -Dman=false, no pages were built"
else
        for p in "${pages[@]}"; do
                if [ -s "$mandir/$p" ]; then
                        built+=("$mandir/$p")
                else
                        fail "$p was not built in $mandir"
                fi
        done
fi
if [ ${#built[@]} -eq 0 ]; then
        :
elif command -v groff >/dev/null; then
        for p in "${built[@]}"; do
                # -t: tables, should a page use them; -ww: every warning; -z: no output.
                out=$(LC_ALL=C.UTF-8 groff -k -t -man -ww -z "$p" 2>&1)
                if [ $? -ne 0 ] || [ -n "$out" ]; then
                        fail "groff -man -ww $(basename "$p"):"
                        sed 's/^/    /' <<<"$out"
                else
                        echo "ok: groff -man -ww $(basename "$p")"
                fi
                checked=$((checked + 1))
        done
elif command -v man >/dev/null; then
        for p in "${built[@]}"; do
                out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
                if [ $? -ne 0 ] || [ -n "$out" ]; then
                        fail "man --warnings $(basename "$p"):"
                        sed 's/^/    /' <<<"$out"
                else
                        echo "ok: man --warnings $(basename "$p")"
                fi
                checked=$((checked + 1))
        done
else
        echo "skip: neither groff nor man found"
fi

if [ $failed -gt 0 ]; then
        echo "$failed of $checked checks failed"
        exit 1
fi
if [ $have_verify -eq 0 ]; then
        echo "skipped: systemd-analyze is missing, the units were not verified ($checked other checks passed)"
        exit 77
fi
echo "all $checked checks passed"
