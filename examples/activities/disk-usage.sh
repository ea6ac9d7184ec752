#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A shell activity (durabled.activity(5)): reads {"path": "/var"} as JSON on stdin, reports
# progress through $NOTIFY_SOCKET, prints {"path", "size_kb", "used_kb", "use_pct"} on stdout.
# Exit status 2 (NonRetryableExitStatus= in disk-usage.activity) when the path does not exist;
# stderr lands in the journal and, on failure, in the activity's failure details.
set -eu

input=$(cat)
# The input is JSON; a shell takes the one string it needs with sed (jq would do it properly).
path=$(printf '%s' "$input" | sed -n 's/.*"path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
path=${path:-/}
echo "checking $path for workflow $DURABLED_WORKFLOW_ID (attempt $DURABLED_ATTEMPT)" >&2

if [ ! -e "$path" ]; then
        echo "no such path: $path" >&2
        printf '{"error": {"type": "NoSuchPath", "message": "no such path: %s", "non_retryable": true}}\n' "$path"
        exit 2
fi
systemd-notify --status="measuring $path" 2>/dev/null || true
set -- $(df -Pk "$path" | awk 'NR == 2 { print $2, $3, $5 }')
systemd-notify "HEARTBEAT={\"measured\": \"$path\"}" 2>/dev/null || true
printf '{"path": "%s", "size_kb": %s, "used_kb": %s, "use_pct": %s}\n' "$path" "$1" "$2" "${3%\%}"
