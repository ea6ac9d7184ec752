#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# reserve_inventory of examples/orders-worker.c as a shell activity (durabled.activity(5)), used by
# `make demo`: with the unit reserve_inventory.activity in place, the daemon runs this script in a
# cgroup of its own instead of handing the activity to the worker. Same contract as the C
# function: input {"order_id": ...} on stdin, result {"reservation_id": "res-<order id>"} on stdout.
set -eu
order_id=$(sed -n 's/.*"order_id"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
[ -n "$order_id" ] || { echo "input has no order_id" >&2; exit 2; }
echo "reserving stock for order $order_id (workflow $DURABLED_WORKFLOW_ID, attempt $DURABLED_ATTEMPT)" >&2
systemd-notify --status="reserving stock for order $order_id" 2>/dev/null || true
printf '{"reservation_id": "res-%s"}\n' "$order_id"
