#!/bin/sh
# libdurable as a user gets it: installed headers, shared library and pkg-config file (and the D-Bus
# files, shell completion, systemd units and snippets, and man pages in their places). Installs
# the build into a temporary DESTDIR, builds examples/orders-worker.c against it with nothing but
# `pkg-config --cflags --libs libdurable`, and runs the result.
# $1 the build directory, $2 the source directory, $3 meson's b_sanitize, $4 the man option
# (true: the man pages of man/meson.build are installed, as roff). Skips (77) without
# pkg-config or a C compiler, and in a sanitizer build (its library needs the sanitizer runtime).
set -u
BUILD=$1
SRC=$2
MAN=${4:-true}
[ "${3:-none}" = none ] || { echo "sanitizer build ($3): the plain build runs this test"; exit 77; }
CC=${CC:-cc}
command -v pkg-config >/dev/null 2>&1 || { echo "no pkg-config"; exit 77; }
command -v "$CC" >/dev/null 2>&1 || { echo "no C compiler"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
        echo "FAIL: $*"
        exit 1
}

meson install -C "$BUILD" --no-rebuild --quiet --destdir "$dir/root" >"$dir/install.log" 2>&1 ||
        { cat "$dir/install.log"; fail "meson install"; }
# The D-Bus contract files and the shell completion, where dbus-daemon, bash-completion and zsh
# look.
for f in share/dbus-1/interfaces/org.durabled1.Manager.xml \
        share/dbus-1/interfaces/org.durabled1.Workflow.xml share/dbus-1/system.d/org.durabled1.conf \
        share/dbus-1/system-services/org.durabled1.service share/dbus-1/services/org.durabled1.service \
        share/bash-completion/completions/durablectl share/zsh/site-functions/_durablectl; do
        find "$dir/root" -path "*/$f" | grep -q . || fail "$f not installed"
done
# The units and snippets, where systemd, systemd-sysusers and systemd-tmpfiles look.
for f in systemd/system/durabled.service systemd/system/durabled.socket \
        systemd/user/durabled.service sysusers.d/durabled.conf tmpfiles.d/durabled.conf; do
        find "$dir/root" -path "*/$f" | grep -q . || fail "$f not installed"
done
# Every man page, built from its scdoc source, in the directory of its section.
if [ "$MAN" = true ]; then
        pages=$(sed -nE "s/^[[:space:]]*'([^']+\.[1-8])',?[[:space:]]*$/\1/p" "$SRC/man/meson.build")
        [ -n "$pages" ] || fail "no pages in man/meson.build"
        for p in $pages; do
                f=$(find "$dir/root" -path "*/share/man/man${p##*.}/$p")
                [ -n "$f" ] || fail "man page $p not installed"
                grep -q '^\.TH ' "$f" || fail "the installed $p is not roff"
        done
else
        find "$dir/root" -path '*/share/man/*' | grep -q . &&
                fail "man pages installed with -Dman=false"
fi
grep -q '^SystemdService=durabled.service$' "$(find "$dir/root" -path '*/system-services/org.durabled1.service')" ||
        fail "the D-Bus activation file does not start durabled.service"
pc=$(find "$dir/root" -name libdurable.pc | head -n 1)
[ -n "$pc" ] || fail "no libdurable.pc installed"
pcdir=$(dirname "$pc")
# The .pc file names the final prefix; point it into the DESTDIR.
prefix=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=prefix libdurable) ||
        fail "pkg-config libdurable"
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --define-variable=prefix="$dir/root$prefix" \
        --cflags --libs libdurable) || fail "pkg-config libdurable"
find "$dir/root" -name durable.h | grep -q "include/durable/durable.h" ||
        fail "durable.h not installed under include/durable/"
# shellcheck disable=SC2086
"$CC" -std=gnu11 -Wall -Werror -o "$dir/orders-worker" "$SRC/examples/orders-worker.c" $flags \
        -lpthread || fail "orders-worker does not build against the installed libdurable"
libdir=$(dirname "$(find "$dir/root" -name 'libdurable.so.0' | head -n 1)")
LD_LIBRARY_PATH="$libdir" "$dir/orders-worker" --help >"$dir/help" 2>&1 ||
        fail "the installed orders-worker does not run: $(cat "$dir/help")"
echo ok
