#!/bin/sh
# Installs the Debian packages that building, testing and CI need, when they are missing.
# The one place where package names live (DESIGN.md section 1). Safe to run again.
set -eu
# build: gcc clang libclang-rt-14-dev (libFuzzer, sanitizers) make meson ninja-build pkg-config,
#        the four libraries, scdoc (builds the man pages from their man/*.scd sources, unless
#        -Dman=false); tests: systemd (systemd-analyze, systemd-socket-activate, busctl,
#        systemd-notify for the heartbeats of process activities), dbus (dbus-daemon for a private
#        bus, dbus-send), groff-base (man page warnings), python3 (tools/check.sh tallies meson's
#        JSON log; test-dbus compares introspection XML), zsh (test-completion runs the zsh
#        completion of durablectl), valgrind (memcheck of the daemon in crash-loop-valgrind);
#        clang-format for `make format`.
PKGS="gcc clang libclang-rt-14-dev make meson ninja-build pkg-config
libsystemd-dev libsqlite3-dev libmsgpack-dev libjansson-dev scdoc
dbus systemd groff-base python3 zsh valgrind clang-format"
missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages:$missing (run as root to install them)" >&2
        exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
