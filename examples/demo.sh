#!/bin/sh
# demo.sh BUILD_DIR — a flag server delivering signed webhooks to a receiver.
#
# Run from the repository root after `make all examples` (or just `make demo`).
# Starts examples/receiver on a free port of 127.0.0.1, runs
# examples/flag_server against it and checks that both deliveries
# (FLAG_UPDATED and AUDIT_LOG_CREATED) arrived with a valid
# X-Flagsmith-Signature.  Exits 0 on success.
#
# The secret is random per run and handed to both programs in
# FLAGHOOK_SECRET, never on a command line (where `ps` would show it), and
# is never printed.
#
# SPDX-License-Identifier: MIT

set -u

BUILD=${1:-build}
RECEIVER=$BUILD/examples/receiver
SERVER=$BUILD/examples/flag_server
WAIT_S=5 # for the port, and for the receiver to finish

fail() {
	echo "demo: FAILED — $*"
	exit 1
}

for bin in "$RECEIVER" "$SERVER"; do
	[ -x "$bin" ] || fail "$bin is missing (run: make all examples)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flaghook-demo.XXXXXX") || fail "mktemp failed"
RPID=
WPID=
cleanup() {
	# Whatever happened, leave no receiver behind.
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null
	if [ -n "$RPID" ]; then
		kill "$RPID" 2>/dev/null
		wait "$RPID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# 128 random bits as hex.
SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
[ ${#SECRET} -eq 32 ] || fail "could not read /dev/urandom"

# ---- the receiver: port 0 picks a free port, written to the port file ----
FLAGHOOK_SECRET=$SECRET "$RECEIVER" --count 4 --port 0 --port-file "$TMP/port" \
	>"$TMP/receiver.out" 2>&1 &
RPID=$!

PORT=
tries=$((WAIT_S * 10))
while [ "$tries" -gt 0 ]; do
	if [ -s "$TMP/port" ]; then
		PORT=$(cat "$TMP/port")
		break
	fi
	kill -0 "$RPID" 2>/dev/null || break
	sleep 0.1 2>/dev/null || sleep 1
	tries=$((tries - 1))
done
if [ -z "$PORT" ]; then
	cat "$TMP/receiver.out"
	fail "the receiver did not start listening within ${WAIT_S}s"
fi

# ---- the flag server: two events, two deliveries, first synchronously,
# then through the asynchronous engine ----
FLAGHOOK_SECRET=$SECRET "$SERVER" "http://127.0.0.1:$PORT/webhook" \
	>"$TMP/server.out" 2>&1
SERVER_RC=$?
echo "---- the same with --async ----" >>"$TMP/server.out"
FLAGHOOK_SECRET=$SECRET "$SERVER" --async "http://127.0.0.1:$PORT/webhook" \
	>>"$TMP/server.out" 2>&1
ASYNC_RC=$?
[ "$SERVER_RC" -eq 0 ] && SERVER_RC=$ASYNC_RC

# ---- the receiver exits by itself after four deliveries; a watchdog
# stops it (and leaves a mark) if it has not within WAIT_S seconds ----
(
	sleep "$WAIT_S"
	: >"$TMP/timeout"
	kill "$RPID"
) >/dev/null 2>&1 &
WPID=$!
wait "$RPID"
RECEIVER_RC=$?
RPID=
kill "$WPID" 2>/dev/null
WPID=

echo "==== flag_server (exit status $SERVER_RC) ===="
cat "$TMP/server.out"
echo
echo "==== receiver on 127.0.0.1:$PORT (exit status $RECEIVER_RC) ===="
cat "$TMP/receiver.out"
echo

verified=$(grep -c '^received .*, signature verified$' "$TMP/receiver.out")
delivered=$(grep -c '^delivered to endpoint ' "$TMP/server.out")

[ -e "$TMP/timeout" ] && fail "the receiver had not finished ${WAIT_S}s after flag_server (expected 4 deliveries)"
[ "$verified" -eq 4 ] || fail "the receiver verified $verified signatures, expected 4"
[ "$delivered" -eq 4 ] || fail "flag_server reported $delivered deliveries, expected 4"
[ "$SERVER_RC" -eq 0 ] || fail "flag_server exited with status $SERVER_RC"
[ "$RECEIVER_RC" -eq 0 ] || fail "the receiver exited with status $RECEIVER_RC"

echo "demo: OK — 4 deliveries (2 synchronous, 2 asynchronous), signatures verified"
