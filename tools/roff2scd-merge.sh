#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Carries the edits a branch made to roff man pages into their scdoc sources, during a merge.
#
# Usage (at the top of the tree, after `git merge BRANCH` stopped on man pages):
#     tools/roff2scd-merge.sh BRANCH
#
# The man pages are scdoc sources (man/PAGE.scd) now; a branch that still edits the roff page
# man/PAGE makes the merge stop with "deleted in HEAD and modified in BRANCH". For each such
# page this converts the roff as it was at the merge base and as BRANCH has it, with
# tools/roff2scd.py, and applies the difference between the two conversions to man/PAGE.scd
# (git merge-file), so that edits other branches made to the same page, merged before, are kept.
# A roff page the branch added is converted whole (add it to man/meson.build if the merge did
# not). Each roff page is then removed. What git merge-file could not merge is left with
# conflict markers in man/PAGE.scd, to resolve by hand before `git add`; the script says which.
set -eu
branch=${1:?usage: $0 BRANCH}
top=$(git rev-parse --show-toplevel)
cd "$top"
base=$(git merge-base HEAD "$branch")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
left=0

for f in man/*.[1-8]; do
        [ -e "$f" ] || continue
        page=${f#man/}
        git show "$branch:$f" >"$tmp/theirs" 2>/dev/null || cp "$f" "$tmp/theirs"
        tools/roff2scd.py "$tmp/theirs" >"$tmp/theirs.scd"
        if [ -e "$f.scd" ] && git show "$base:$f" >"$tmp/base" 2>/dev/null; then
                tools/roff2scd.py "$tmp/base" >"$tmp/base.scd"
                if ! git merge-file -L HEAD -L base -L "$branch" "$f.scd" "$tmp/base.scd" \
                        "$tmp/theirs.scd"; then
                        echo "roff2scd-merge: conflicts left in $f.scd" >&2
                        left=$((left + 1))
                fi
        else
                cp "$tmp/theirs.scd" "$f.scd"
        fi
        git rm -q --cached --ignore-unmatch "$f"
        rm -f "$f"
        echo "roff2scd-merge: $page -> $f.scd"
done
[ $left -eq 0 ] || exit 1
git add man/*.scd
