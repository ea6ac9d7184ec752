#!/bin/sh
# durabled under valgrind's memcheck, for the test crash-loop-valgrind: the harness starts this
# script as $DURABLED_BIN; valgrind runs the real daemon ($DURABLED_REAL_BIN) in the same process
# (so READY=1 comes from the pid the harness started) and makes it exit 99 on any memory error
# or definite/indirect leak, which fails the harness's clean stop.
exec valgrind --quiet --error-exitcode=99 --leak-check=full \
        --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
        "$DURABLED_REAL_BIN" "$@"
