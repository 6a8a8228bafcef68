#!/bin/sh
# demo.sh BUILD_DIR — a flag server delivering signed webhooks to a receiver.
#
# Run from the repository root after `make all examples` (or just `make demo`).
# Starts examples/receiver on a free port of 127.0.0.1, runs
# examples/flag_server against it and checks that both deliveries
# (FLAG_UPDATED and AUDIT_LOG_CREATED) arrived with a valid
# X-Flagsmith-Signature.  Then the crash: examples/outbox_server stores
# three flag changes in a SQLite outbox while no receiver listens, is killed
# with SIGKILL, and a second run sends all three to a receiver started
# afterwards.  Last, examples/poll_loop drives the library from its own
# poll() loop (TICK mode: no library thread).  Exits 0 on success.
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
OUTBOX=$BUILD/examples/outbox_server
LOOP=$BUILD/examples/poll_loop
WAIT_S=5 # for the port, and for the receiver to finish

fail() {
	echo "demo: FAILED — $*"
	exit 1
}

for bin in "$RECEIVER" "$SERVER" "$OUTBOX" "$LOOP"; do
	[ -x "$bin" ] || fail "$bin is missing (run: make all examples)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flaghook-demo.XXXXXX") || fail "mktemp failed"
RPID=
WPID=
OPID=
cleanup() {
	# Whatever happened, leave no receiver behind.
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null
	[ -n "$OPID" ] && kill -9 "$OPID" 2>/dev/null
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

# ---- a receiver: port 0 picks a free port, written to the port file ----
start_receiver() { # COUNT NAME
	rm -f "$TMP/port"
	FLAGHOOK_SECRET=$SECRET "$RECEIVER" --count "$1" --port 0 --port-file "$TMP/port" \
		>"$TMP/$2.out" 2>&1 &
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
		cat "$TMP/$2.out"
		fail "the receiver did not start listening within ${WAIT_S}s"
	fi
}

# The receiver exits by itself after its count; a watchdog stops it (and
# leaves a mark) if it has not within WAIT_S seconds.
wait_receiver() {
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
}

start_receiver 4 receiver

# ---- the flag server: two events, two deliveries, first synchronously,
# then through the asynchronous engine ----
FLAGHOOK_SECRET=$SECRET "$SERVER" --allow-private "http://127.0.0.1:$PORT/webhook" \
	>"$TMP/server.out" 2>&1
SERVER_RC=$?
echo "---- the same with --async ----" >>"$TMP/server.out"
FLAGHOOK_SECRET=$SECRET "$SERVER" --async --allow-private "http://127.0.0.1:$PORT/webhook" \
	>>"$TMP/server.out" 2>&1
ASYNC_RC=$?
[ "$SERVER_RC" -eq 0 ] && SERVER_RC=$ASYNC_RC

wait_receiver

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

# ---- the crash: three flag changes stored while nobody listens, the
# server killed with SIGKILL, and a second run delivers them ----
DB=$TMP/outbox.db
FLAGHOOK_SECRET=$SECRET "$OUTBOX" --db "$DB" --emit 3 --hold --allow-private "http://127.0.0.1:1/webhook" \
	>"$TMP/outbox1.out" 2>&1 &
OPID=$!
tries=$((WAIT_S * 10))
while [ "$tries" -gt 0 ] && ! grep -qs '^holding' "$TMP/outbox1.out"; do
	kill -0 "$OPID" 2>/dev/null || break
	sleep 0.1 2>/dev/null || sleep 1
	tries=$((tries - 1))
done
grep -qs '^holding' "$TMP/outbox1.out" || { cat "$TMP/outbox1.out"; fail "outbox_server did not store its events"; }
kill -9 "$OPID"
wait "$OPID" 2>/dev/null
OPID=
start_receiver 3 receiver2
FLAGHOOK_SECRET=$SECRET "$OUTBOX" --db "$DB" --allow-private "http://127.0.0.1:$PORT/webhook" >"$TMP/outbox2.out" 2>&1
OUTBOX_RC=$?
wait_receiver

echo "==== outbox_server --emit 3 --hold (no receiver; killed with SIGKILL) ===="
cat "$TMP/outbox1.out"
echo
echo "==== outbox_server again, receiver on 127.0.0.1:$PORT (exit status $OUTBOX_RC) ===="
cat "$TMP/outbox2.out"
echo
echo "==== receiver (exit status $RECEIVER_RC) ===="
cat "$TMP/receiver2.out"
echo

verified=$(grep -c '^received .*, signature verified$' "$TMP/receiver2.out")
resumed=$(grep -c '^delivered event ' "$TMP/outbox2.out")
[ -e "$TMP/timeout" ] && fail "the second receiver had not got 3 deliveries ${WAIT_S}s after outbox_server"
[ "$verified" -eq 3 ] || fail "after the crash the receiver verified $verified signatures, expected 3"
[ "$resumed" -eq 3 ] || fail "outbox_server reported $resumed resumed deliveries, expected 3"
[ "$OUTBOX_RC" -eq 0 ] || fail "outbox_server exited with status $OUTBOX_RC"
[ "$RECEIVER_RC" -eq 0 ] || fail "the second receiver exited with status $RECEIVER_RC"

# ---- the host's own loop: TICK mode, no library thread, one poll() ----
start_receiver 3 receiver3
FLAGHOOK_SECRET=$SECRET "$LOOP" --allow-private --events 3 "http://127.0.0.1:$PORT/webhook" >"$TMP/loop.out" 2>&1
LOOP_RC=$?
wait_receiver

echo "==== poll_loop: the library driven by the host's poll() loop (exit status $LOOP_RC) ===="
cat "$TMP/loop.out"
echo
verified=$(grep -c '^received .*, signature verified$' "$TMP/receiver3.out")
[ -e "$TMP/timeout" ] && fail "the third receiver had not got 3 deliveries ${WAIT_S}s after poll_loop"
[ "$verified" -eq 3 ] || fail "from poll_loop the receiver verified $verified signatures, expected 3"
[ "$LOOP_RC" -eq 0 ] || fail "poll_loop exited with status $LOOP_RC"

echo "demo: OK — 4 deliveries (2 synchronous, 2 asynchronous), then 3 webhooks stored before a SIGKILL"
echo "      delivered by the next run, then 3 sent from a host's poll() loop; every signature verified"
