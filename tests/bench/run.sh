#!/bin/sh
# tests/bench/run.sh BUILD — `make bench` (after `make all`).
#
# Runs from the repository root.  Compiles tests/bench/bench.c against
# BUILD/libflaghook.a, starts nginx (return 204, keep-alive; and under
# /slow/ 204 after 100 ms, with Debian's echo module) on a free port of
# 127.0.0.1 with its own config and temp files under a mktemp directory,
# and measures, side by side in this one run:
#
#   render_sign_vs_hmac         render+sign / bare mbedTLS HMAC     goal >= 0.70
#   deliver_vs_wrk              async engine / wrk, same conns       goal >= 0.50
#   deliver_vs_curl_multi       async engine / bare libcurl multi, 4 conns   goal >= 0.90
#   deliver_cpu_us_vs_curl_multi  CPU per delivery / per bare request       goal <= 1.6
#   deliver_rtt100_vs_wrk       default client, 1000 endpoints, 100 ms receiver
#                               / wrk -c1000 on it                  goal >= 0.80
#   sync_emit_10_slow_ms        one SYNC emit, 10 endpoints, 100 ms receiver   goal <= 150
#   lib_threads_sync            threads flaghook_client_new starts (SYNC)      goal: 0
#   lib_threads_async           ... (ASYNC, defaults)                           no goal
#   deliver_vs_python_requests  async engine / Flagsmith's sender    goal >= 20
#   emit_p50_us, emit_p99_us    inside flaghook_emit, 4 emitters
#   rss_per_queued_delivery_bytes  100000 queued, endpoint down      goal <= 2 x body_bytes
#   fanout_{1,10,100,1000}_us_per_delivery                          goal: flat (<= 1.25 x fanout_1)
#   emit_sqlite_vs_memory       emits/s, SQLite store / memory store, 8 emitters   no goal
#   emit_pg_vs_memory           emits/s, PostgreSQL store / memory store           no goal
#
# and, to explain deliver_vs_wrk, libcurl alone with the same request and
# connection count (curl_easy_*, curl_multi_*: no libflaghook in the loop).
# RLIMIT_NOFILE is raised (ulimit -n) for the 1000-connection figures.
#
# The store figures need BUILD/libflaghook-sqlite.a and BUILD/libflaghook-pg.a
# (make all builds them), a scratch directory under BUILD (on the disk, not
# tmpfs: fsync is what they measure) and a throwaway PostgreSQL server that
# tests/support/pg.sh starts there and stops at the end, however the run
# ends.  Without a server the PostgreSQL line says "skipped: <reason>".
#
# Figures go to stdout, one per line: "name value unit".  Progress, the
# configuration and the goal summary go to stderr.  See tests/bench/README.md.
#
# Environment (all optional):
#   FLAGHOOK_BENCH_SECONDS   measuring window of each throughput run (3)
#   FLAGHOOK_BENCH_CONNECTIONS        connections on both sides of deliver_vs_wrk (4)
#   FLAGHOOK_BENCH_EXTRA_CONNECTIONS  other counts, one run each, for the record ("1 8")
#   FLAGHOOK_BENCH_STORE_SECONDS  measuring window of each store run (2)
#   FLAGHOOK_BENCH_STORE_ROUNDS   rounds of the store runs; medians are reported (3)
#   FLAGHOOK_BENCH_EMITTERS       emitting threads in the store runs (8)
#   FLAGHOOK_BENCH_RTT_ENDPOINTS  endpoints (and wrk connections) of deliver_rtt100_vs_wrk (1000)
#   FLAGHOOK_BENCH_STRICT=1  exit 1 when a goal is missed (default: 0 when
#                            everything was measured)
#   CC                       the compiler (cc)
#
# SPDX-License-Identifier: MIT

set -u

BUILD=${1:-build}
BENCH_DIR=tests/bench
SECS=${FLAGHOOK_BENCH_SECONDS:-3}
CONNS=${FLAGHOOK_BENCH_CONNECTIONS:-4}
EXTRA_CONNS=${FLAGHOOK_BENCH_EXTRA_CONNECTIONS:-"1 8"}
STRICT=${FLAGHOOK_BENCH_STRICT:-0}
STORE_SECS=${FLAGHOOK_BENCH_STORE_SECONDS:-2}
STORE_ROUNDS=${FLAGHOOK_BENCH_STORE_ROUNDS:-3}
EMITTERS=${FLAGHOOK_BENCH_EMITTERS:-8}
RTT_ENDPOINTS=${FLAGHOOK_BENCH_RTT_ENDPOINTS:-1000}
# A fixed, public key: the benchmark signs like a real endpoint would, and
# wrk and the Python sender must use the same key.  Not a secret.
FLAGHOOK_BENCH_SECRET=flaghook-bench-secret-not-a-real-one
export FLAGHOOK_BENCH_SECRET

log() { echo "bench: $*" >&2; }
# Floating-point arithmetic and comparisons (a comparison prints 1.000 or 0.000).
calc() { awk "BEGIN { printf \"%.3f\", ($1) }"; }
fail() { echo "bench: FAILED — $*" >&2; exit 1; }

[ -f "$BENCH_DIR/bench.c" ] || fail "run from the repository root (tests/bench/bench.c not found)"
for a in libflaghook.a libflaghook-sqlite.a libflaghook-pg.a; do
	[ -f "$BUILD/$a" ] || fail "$BUILD/$a is missing (run: make all)"
done
command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libpq ||
	fail "pkg-config does not know libpq (apt-get install pkg-config libpq-dev, or make deps)"

# ---- what it needs ---------------------------------------------------------
# nginx and wrk from Debian, and a python3 that has requests.  Installed when
# we are root or have password-less sudo; otherwise we say what to install.

find_nginx() {
	for n in "$(command -v nginx 2>/dev/null)" /usr/sbin/nginx /sbin/nginx; do
		[ -n "$n" ] && [ -x "$n" ] && { echo "$n"; return 0; }
	done
	return 1
}
# Debian's libnginx-mod-http-echo (echo_sleep: the 100 ms receiver).
find_echo() {
	for m in /usr/lib/nginx/modules/ngx_http_echo_module.so \
	         $(dpkg -L libnginx-mod-http-echo 2>/dev/null | grep 'ngx_http_echo_module\.so$'); do
		[ -f "$m" ] && { echo "$m"; return 0; }
	done
	return 1
}
find_python() {
	for p in "$(command -v python3 2>/dev/null)" /usr/bin/python3; do
		[ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import requests' 2>/dev/null && { echo "$p"; return 0; }
	done
	return 1
}

missing=""
find_nginx >/dev/null || missing="$missing nginx"
find_echo >/dev/null || missing="$missing libnginx-mod-http-echo"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
find_python >/dev/null || missing="$missing python3-requests"
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ]; then SUDO=""
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
	else
		echo "bench: please install:$missing   (sudo apt-get install$missing)" >&2
		exit 1
	fi
	log "installing$missing"
	# Debian's nginx package starts a system nginx on port 80 when it is
	# installed; a policy-rc.d that says "no" keeps it from doing so.  It is
	# put in place only if there is none, and removed right after.
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null && $SUDO chmod 755 $policy
	fi
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 ||
		{ $SUDO apt-get update -qq >/dev/null 2>&1 &&
		  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; }
	rc=$?
	[ -n "$policy" ] && $SUDO rm -f "$policy"
	[ "$rc" -eq 0 ] || fail "apt-get install$missing failed; install them and run again"
fi
NGINX=$(find_nginx) || fail "nginx is not installed (apt-get install nginx)"
ECHO_MODULE=$(find_echo) || fail "nginx's echo module is not installed (apt-get install libnginx-mod-http-echo)"
command -v wrk >/dev/null 2>&1 || fail "wrk is not installed (apt-get install wrk)"
PYTHON=$(find_python) || fail "no python3 with requests (apt-get install python3-requests)"

# ---- descriptors ----------------------------------------------------------------
# deliver_rtt100_vs_wrk holds 1000 connections open in the bench program
# (or in wrk) and as many in nginx (which sets its own worker_rlimit_nofile
# as root, and inherits ours otherwise).  Raise the soft limit to 16384, or
# as far as the hard limit allows.
NOFILE_WANT=16384
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt "$NOFILE_WANT" ]; then
	ulimit -n "$NOFILE_WANT" 2>/dev/null || ulimit -n "$(ulimit -H -n)" 2>/dev/null
	nofile=$(ulimit -n)
fi
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((2 * RTT_ENDPOINTS + 256)) ]; then
	fail "RLIMIT_NOFILE is $nofile (hard $(ulimit -H -n)): $RTT_ENDPOINTS connections need $((2 * RTT_ENDPOINTS + 256)); raise the hard limit"
fi

# ---- the bench program -------------------------------------------------------
mkdir -p "$BUILD/tests" || fail "cannot create $BUILD/tests"
BENCH=$BUILD/tests/bench
# The stores come first: they stand on libflaghook.a's public API.  The
# SQLite store is compiled here, as the tests' copy is, with its test hooks
# (-DFLAGHOOK_TESTHOOKS): bench reads its commit count with
# flaghook__sqlite_commits, which no installed library (nor
# BUILD/libflaghook-sqlite.a) has.
BENCH_SQLITE_O=$BUILD/tests/bench-sqlite-testhooks.o
${CC:-cc} -std=c99 -D_GNU_SOURCE -O2 -g -DNDEBUG -Iinclude -Isrc -pthread -DFLAGHOOK_TESTHOOKS \
	-c src/stores/storage_sqlite.c -o "$BENCH_SQLITE_O" ||
	fail "could not compile src/stores/storage_sqlite.c with its test hooks"
${CC:-cc} -std=c99 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Iinclude -Isrc -Isrc/cmd $(pkg-config --cflags libpq) \
	"$BENCH_DIR/bench.c" src/cmd/sample.c \
	"$BENCH_SQLITE_O" "$BUILD/libflaghook-pg.a" "$BUILD/libflaghook.a" \
	-lsqlite3 $(pkg-config --libs libpq) -lcurl -lcjson -lmbedx509 -lmbedcrypto -pthread -lm -o "$BENCH" ||
	fail "could not compile $BENCH_DIR/bench.c"

# ---- scratch directory, nginx, and cleanup ------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flaghook-bench.XXXXXX") || fail "mktemp failed"
chmod 755 "$TMP" # nginx's worker may run as another user; it needs no files here
NGINX_PID=
STORE_TMP=   # the store runs' scratch directory under BUILD (step 7)
PG_DIR=      # set while a PostgreSQL server of ours may be running
cleanup() {
	if [ -n "$NGINX_PID" ]; then
		kill "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	fi
	if [ -n "$PG_DIR" ]; then
		sh tests/support/pg.sh stop "$PG_DIR" >/dev/null 2>&1 ||
			echo "bench: could not stop the PostgreSQL server in $PG_DIR" >&2
	fi
	[ -n "$STORE_TMP" ] && rm -rf "$STORE_TMP"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

"$BENCH" body "$TMP" >/dev/null || fail "could not render the sample body"
FLAGHOOK_BENCH_BODY=$TMP/body.json
FLAGHOOK_BENCH_SIGNATURE=$TMP/signature
export FLAGHOOK_BENCH_BODY FLAGHOOK_BENCH_SIGNATURE

# Modules a build of nginx may lack (nginx-light): only name the temp
# paths of the ones it has.
temp_paths=""
for m in proxy fastcgi uwsgi scgi; do
	"$NGINX" -V 2>&1 | grep -q -- "--without-http_${m}_module" ||
		temp_paths="$temp_paths ${m}_temp_path $TMP/$m;"
done

start_nginx() {
	PORT=$("$BENCH" freeport) || return 1
	sed -e "s|@PORT@|$PORT|g" -e "s|@DIR@|$TMP|g" -e "s|@TEMP_PATHS@|$temp_paths|" -e "s|@ECHO_MODULE@|$ECHO_MODULE|" \
		"$BENCH_DIR/nginx.conf.in" > "$TMP/nginx.conf" || return 1
	# -e: the error log from the first moment (before the config is read).
	"$NGINX" -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/error.log" >"$TMP/nginx.out" 2>&1 &
	NGINX_PID=$!
	URL=http://127.0.0.1:$PORT/hook
	SLOW=http://127.0.0.1:$PORT/slow
	tries=50
	while [ "$tries" -gt 0 ]; do
		"$BENCH" probe "$URL" && "$BENCH" probe "$SLOW/probe" && return 0
		kill -0 "$NGINX_PID" 2>/dev/null || break
		sleep 0.1
		tries=$((tries - 1))
	done
	kill "$NGINX_PID" 2>/dev/null
	wait "$NGINX_PID" 2>/dev/null
	NGINX_PID=
	return 1
}

started=0
for attempt in 1 2 3; do
	start_nginx && { started=1; break; }
	log "nginx did not come up on port ${PORT:-?} (attempt $attempt): $(cat "$TMP/nginx.out" "$TMP/error.log" 2>/dev/null | tail -n 3)"
done
[ "$started" -eq 1 ] || fail "could not start nginx"
log "receiver: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') on $URL (return 204, keep-alive) and $SLOW/ (204 after 100 ms: echo_sleep), pid $NGINX_PID"
log "descriptors: ulimit -n $(ulimit -n)"
log "machine: $(nproc) CPUs; nginx, wrk, python and the bench program share them"

# Other work on the machine (another container on the same VM, say)
# lowers every figure.  For each step, the CPU time the whole machine spent
# (/proc/stat: user, nice, system, irq, softirq) is compared with what the
# processes we can see spent (/proc/*/stat, children included once reaped);
# the difference is "other" CPU, as a share of the machine over that step.
# Time stolen by the hypervisor is shown apart: on a VM it also grows with
# a latency-bound run's own wake-ups (one connection), so it is no sure
# sign of a neighbour.
ours_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | sed 's/^.*) //' | awk '{ s += $12 + $13 + $14 + $15 } END { print s + 0 }'; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6, $9 }' /proc/stat; }
step_begin() { step_o=$(ours_ticks); step_m=$(machine_ticks); }
step_end() { # NAME
	o=$(ours_ticks); m=$(machine_ticks)
	set -- "$1" $(echo "$step_o $o $step_m $m" | awk '{
		d = ($6 + $7 + $8) - ($3 + $4 + $5); x = ($6 - $3) - ($2 - $1); st = $8 - $5;
		printf "%.0f %.0f", (d > 0 && x > 0 ? 100 * x / d : 0), (d > 0 ? 100 * st / d : 0) }')
	echo "$1 $2 $3" >> "$TMP/other"
	[ "$2" -gt 5 ] && log "WARNING: $2% of the CPUs went to other processes during $1; its figures are low"
	[ "$3" -gt 5 ] && log "note: $3% of the CPU time was stolen by the hypervisor during $1"
	return 0
}
: > "$TMP/other"
if [ -r /proc/stat ]; then
	step_begin; sleep 1; step_end idle-check
	log "other work on the machine before the run: $(awk '{ v = $2 } END { print v }' "$TMP/other")% of the CPUs"
else
	step_begin() { :; }; step_end() { :; }
fi

# ---- helpers --------------------------------------------------------------------
OUT=$TMP/figures
: > "$OUT"
# Runs a command whose stdout is figures and keeps them (keep), or keeps
# and shows them (run).
keep() {
	step_begin
	"$@" > "$TMP/step" || { cat "$TMP/step"; fail "$*"; }
	step_end "$(echo "$*" | awk '{ n = $2; for (i = 1; i < NF; i++) if ($i == "--tag") n = $(i + 1); print n }')"
	cat "$TMP/step" >> "$OUT"
}
run() {
	keep "$@"
	cat "$TMP/step"
}
fig() { printf '%s %s %s\n' "$1" "$2" "$3"; printf '%s %s %s\n' "$1" "$2" "$3" >> "$OUT"; }
get() { awk -v n="$1" '$1 == n { v = $2 } END { if (v == "") exit 1; print v }' "$OUT"; }
# The median of the values given (the mean of the middle two for an even
# count), written as bench.c writes figures: whole from 100 up.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	m = int((NR + 1) / 2); x = NR % 2 ? v[m] : (v[m] + v[m + 1]) / 2
	printf (x >= 100 || x == int(x) ? "%.0f" : "%.3f"), x }'; }

# ---- 1. render_sign_vs_hmac ---------------------------------------------------------
log "render + sign vs HMAC ..."
run "$BENCH" render --seconds 2

# ---- 2. deliver_vs_wrk ----------------------------------------------------------------
# The same connection count C on both sides.  wrk: -c C, one thread (one
# event loop; see README for why not two on this machine), run before and
# after the flaghook runs; the better of the two counts, as flaghook's best
# configuration does.
# flaghook: one endpoint with max_in_flight C (so at most C connections),
# a pool of C or 2C threads, and max_pending 64 or 1024 (how far the
# emitting thread may run ahead); the best of these is deliver_vs_wrk.
wrk_run() { # C [URL] -> requests/s on stdout
	step_begin
	wrk -t 1 -c "$1" -d "${SECS}s" -s "$BENCH_DIR/post.lua" "${2:-$URL}" > "$TMP/wrk.out" 2>&1 ||
		{ cat "$TMP/wrk.out" >&2; fail "wrk failed"; }
	# A script error does not stop wrk: it sends GETs without a body.
	if grep -q -e 'Non-2xx' -e 'Socket errors' -e 'post.lua' "$TMP/wrk.out"; then
		cat "$TMP/wrk.out" >&2; fail "wrk saw errors"
	fi
	step_end "wrk-c$1"
	awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk.out" | grep . || { cat "$TMP/wrk.out" >&2; fail "no rate in wrk's output"; }
}
C=$CONNS
log "wrk: $C connections ..."
wrk_a=$(wrk_run "$C") || exit 1
# The bare libcurl multi loop (deliver_vs_curl_multi's baseline) runs before
# and after the flaghook runs too, and its better run counts.
log "libcurl alone: one multi handle with $C connections ..."
run "$BENCH" curl-multi "$URL" --threads "$C" --warmup 0.5 --seconds "$SECS" --tag "curl_multi_c${C}_before"
best_rate=0; best_t=0; best_p=0
for T in "$C" $((C * 2)); do
	for P in 64 1024; do
		log "deliver: $C connections, $T threads, max_pending $P ..."
		run "$BENCH" deliver "$URL" --threads "$T" --inflight "$C" --pending "$P" \
			--warmup 0.5 --seconds "$SECS" --tag "deliver_c${C}_t${T}_p${P}"
		rate=$(get "deliver_c${C}_t${T}_p${P}_per_s")
		if [ "$(calc "$rate > $best_rate")" = "1.000" ]; then
			best_rate=$rate; best_t=$T; best_p=$P
		fi
	done
done
log "wrk: $C connections (again) ..."
wrk_b=$(wrk_run "$C") || exit 1
wrk_rate=$(calc "$wrk_a > $wrk_b ? $wrk_a : $wrk_b")
# libcurl alone, same connection count, same request (diagnostics: what
# the transport costs without the library; see README).
log "libcurl alone: $C blocking easy handles, then one multi handle with $C connections (again) ..."
run "$BENCH" curl-easy "$URL" --threads "$C" --warmup 0.5 --seconds "$SECS"
run "$BENCH" curl-multi "$URL" --threads "$C" --warmup 0.5 --seconds "$SECS" --tag "curl_multi_c${C}_after"
# The baseline's best: the higher rate and the lower CPU of its two runs.
cm_a=$(get "curl_multi_c${C}_before_per_s"); cm_b=$(get "curl_multi_c${C}_after_per_s")
cmc_a=$(get "curl_multi_c${C}_before_cpu_us_per_request"); cmc_b=$(get "curl_multi_c${C}_after_cpu_us_per_request")
fig "curl_multi_c${C}_per_s" "$(calc "$cm_a > $cm_b ? $cm_a : $cm_b")" "requests/s"
fig "curl_multi_c${C}_cpu_us_per_request" "$(calc "$cmc_a < $cmc_b ? $cmc_a : $cmc_b")" "us"
fig wrk_before_per_s "$wrk_a" "requests/s"
fig wrk_after_per_s "$wrk_b" "requests/s"
fig deliver_connections "$C" "connections"
fig deliver_best_threads "$best_t" "threads"
fig deliver_best_max_pending "$best_p" "deliveries"
fig deliver_per_s "$best_rate" "deliveries/s"
fig wrk_per_s "$wrk_rate" "requests/s"
fig deliver_vs_wrk "$(calc "$best_rate / $wrk_rate")" "ratio"
# The client with the same 4 connections: one endpoint with max_in_flight C
# (at most C transfers, so at most C connections), against the bare multi
# loop's C transfers in flight.  The CPU is the best configuration's, over
# its measured window, as the baseline's is.
best_cpu=$(get "deliver_c${C}_t${best_t}_p${best_p}_cpu_us_per_delivery")
fig deliver_cpu_us_per_delivery "$best_cpu" "us"
fig deliver_vs_curl_multi "$(calc "$best_rate / $(get "curl_multi_c${C}_per_s")")" "ratio"
fig deliver_cpu_us_vs_curl_multi "$(calc "$best_cpu / $(get "curl_multi_c${C}_cpu_us_per_request")")" "ratio"
fig deliver_vs_curl_easy "$(calc "$best_rate / $(get "curl_easy_c${C}_per_s")")" "ratio"
fig curl_easy_vs_wrk "$(calc "$(get "curl_easy_c${C}_per_s") / $wrk_rate")" "ratio"
fig curl_multi_vs_wrk "$(calc "$(get "curl_multi_c${C}_per_s") / $wrk_rate")" "ratio"

# Other connection counts, for the record (one flaghook configuration
# each: C threads, max_pending 1024).
for X in $EXTRA_CONNS; do
	log "extra: $X connections ..."
	run "$BENCH" deliver "$URL" --threads "$X" --inflight "$X" --pending 1024 \
		--warmup 0.5 --seconds "$SECS" --tag "deliver_c${X}"
	w=$(wrk_run "$X") || exit 1
	fig "wrk_c${X}_per_s" "$w" "requests/s"
	fig "deliver_vs_wrk_c${X}" "$(calc "$(get "deliver_c${X}_per_s") / $w")" "ratio"
done

# ---- 2b. deliver_rtt100_vs_wrk ---------------------------------------------------------
# A receiver that answers after 100 ms (nginx's echo_sleep under /slow/).
# flaghook: the default ASYNC client (pool of 4, max_transfers 1000,
# max_in_flight 16, allow_private) with RTT_ENDPOINTS endpoints SLOW/ep/i;
# each emit fans out to all of them and the emitter keeps ~2000 deliveries
# pending.  wrk: -c RTT_ENDPOINTS, one thread, on the same location, before
# and after; the better run counts.
log "rtt100: wrk, $RTT_ENDPOINTS connections, 100 ms receiver ..."
rtt_wrk_a=$(wrk_run "$RTT_ENDPOINTS" "$SLOW/wrk") || exit 1
log "rtt100: the default ASYNC client, $RTT_ENDPOINTS endpoints, 100 ms receiver ..."
run "$BENCH" rtt "$SLOW/ep" --endpoints "$RTT_ENDPOINTS" --warmup 1 --seconds "$SECS" --tag deliver_rtt100
# Diagnostic: bare libcurl, one multi handle with RTT_ENDPOINTS transfers
# in flight on the same location (what one thread of libcurl alone moves).
log "rtt100: libcurl alone, one multi handle, $RTT_ENDPOINTS transfers ..."
run "$BENCH" curl-multi "$SLOW/cm" --threads "$RTT_ENDPOINTS" --warmup 1 --seconds "$SECS" --tag curl_multi_rtt100
log "rtt100: wrk, $RTT_ENDPOINTS connections (again) ..."
rtt_wrk_b=$(wrk_run "$RTT_ENDPOINTS" "$SLOW/wrk") || exit 1
rtt_wrk=$(calc "$rtt_wrk_a > $rtt_wrk_b ? $rtt_wrk_a : $rtt_wrk_b")
fig wrk_rtt100_before_per_s "$rtt_wrk_a" "requests/s"
fig wrk_rtt100_after_per_s "$rtt_wrk_b" "requests/s"
fig wrk_rtt100_per_s "$rtt_wrk" "requests/s"
fig deliver_rtt100_vs_wrk "$(calc "$(get deliver_rtt100_per_s) / $rtt_wrk")" "ratio"
fig deliver_rtt100_vs_curl_multi "$(calc "$(get deliver_rtt100_per_s) / $(get curl_multi_rtt100_per_s)")" "ratio"

# ---- 2c. one SYNC emit to 10 slow endpoints; threads the library starts ---------------
log "SYNC emit to 10 endpoints of the 100 ms receiver ..."
run "$BENCH" syncslow "$SLOW/sync" --endpoints 10 --count 21
log "threads the library starts (SYNC and ASYNC defaults) ..."
run "$BENCH" threads "$URL"

# ---- 3. deliver_vs_python_requests -----------------------------------------------------
log "python sender (requests.post per event, one thread) ..."
run "$PYTHON" "$BENCH_DIR/sender.py" "$URL" "$FLAGHOOK_BENCH_BODY" --seconds "$SECS" --warmup 0.5
py_rate=$(get python_requests_per_s)
fig deliver_vs_python_requests "$(calc "$best_rate / $py_rate")" "ratio"

# ---- 4. emit latency, four emitters while deliveries run ------------------------------
# Each emitter runs an open-loop schedule; together they offer half of the
# best delivery rate measured above, so deliveries run all the time and the
# queue does not fill (emit never waits on back-pressure).
per_emitter=$(calc "$best_rate / 2 / 4")
log "emit latency: 4 emitters x $per_emitter/s ..."
run "$BENCH" emitlat "$URL" --emitters 4 --rate "$per_emitter" --threads "$best_t" \
	--inflight "$C" --pending 100000 --seconds "$SECS"

# ---- 5. memory per queued delivery, endpoint down --------------------------------------
log "memory per queued delivery (100000 queued, endpoint down) ..."
run "$BENCH" rss --queued 100000

# ---- 6. fan-out -------------------------------------------------------------------------
log "fan-out to 1, 10, 100, 1000 endpoints ..."
run "$BENCH" fanout "$URL" --counts 1,10,100,1000 --deliveries 10000 --rounds 3 \
	--threads "$best_t" --inflight "$C" --pending 4096

# ---- 7. emits per second with a durable store ------------------------------------------
# EMITTERS threads emit back to back on one ASYNC client (one endpoint, the
# same nginx; the pool and max_in_flight of the best deliver configuration;
# max_pending 1000000 and emit_wait_ms 0, so emit never waits for room),
# for STORE_SECS after a 0.5 s warm-up, with each store in turn: memory,
# SQLite (a fresh file, synchronous FULL), SQLite with one emitter,
# PostgreSQL (a fresh schema on a throwaway server on loopback, fsync on),
# PostgreSQL with one emitter.  STORE_ROUNDS rounds, forwards then
# backwards; the ratios are taken within a round (side by side) and each
# figure is the median over the rounds.
STORE_TMP=$(mktemp -d "$BUILD/bench-stores.XXXXXX") || fail "cannot make a scratch directory under $BUILD"
STORE_TMP=$(cd "$STORE_TMP" && pwd) || fail "cannot enter $STORE_TMP"
chmod 755 "$STORE_TMP" # PostgreSQL runs as its own user when we are root
fstype=$(stat -f -c %T "$STORE_TMP" 2>/dev/null || echo unknown)
log "stores: scratch directory $STORE_TMP on $fstype ($(df -P "$STORE_TMP" 2>/dev/null | awk 'NR == 2 { print $1 }'))"
case $fstype in
tmpfs|ramfs) log "WARNING: $STORE_TMP is in memory ($fstype): fsync costs nothing there, so the durable stores' figures are far too good" ;;
esac
store_t0=$(date +%s)
pg_skip=""
PG_DIR=$STORE_TMP/pg
if conninfo=$(sh tests/support/pg.sh start "$PG_DIR" 2>"$STORE_TMP/pg.err"); then
	FLAGHOOK_BENCH_PG=$conninfo # the password stays out of argv
	export FLAGHOOK_BENCH_PG
	log "stores: PostgreSQL $(cat "$PG_DIR/data/PG_VERSION" 2>/dev/null) on 127.0.0.1:$(cat "$PG_DIR/port" 2>/dev/null), data in $PG_DIR (fsync and synchronous_commit on: the defaults)"
else
	pg_skip=$(sed -n 's/^pg\.sh: //p' "$STORE_TMP/pg.err" | tail -n 1)
	pg_skip=${pg_skip:-pg.sh failed without saying why}
	sh tests/support/pg.sh stop "$PG_DIR" >/dev/null 2>&1
	PG_DIR=
	log "stores: no PostgreSQL server: $pg_skip"
fi
store_configs="memory sqlite sqlite_1"
[ -z "$pg_skip" ] && store_configs="$store_configs pg pg_1"
store_configs_rev=$(echo "$store_configs" | awk '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "") }')
r=1
while [ "$r" -le "$STORE_ROUNDS" ]; do
	if [ $((r % 2)) -eq 1 ]; then configs=$store_configs; else configs=$store_configs_rev; fi
	for cfg in $configs; do
		case $cfg in
		*_1) store=${cfg%_1}; n=1 ;;
		*) store=$cfg; n=$EMITTERS ;;
		esac
		log "stores: round $r of $STORE_ROUNDS: $store store, $n emitter(s) ..."
		keep "$BENCH" emitrate "$URL" --store "$store" --db "$STORE_TMP/outbox.db" --emitters "$n" \
			--threads "$best_t" --inflight "$C" --pending 1000000 --warmup 0.5 --seconds "$STORE_SECS" \
			--tag "emitrate_r${r}_${cfg}"
	done
	r=$((r + 1))
done
if [ -n "$PG_DIR" ]; then
	sh tests/support/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || log "WARNING: could not stop the PostgreSQL server in $PG_DIR"
	PG_DIR=
fi
rm -rf "$STORE_TMP"
STORE_TMP=
# Per round: NAME -> the figure of each round; sums over the rounds.
rounds() { r=1; while [ "$r" -le "$STORE_ROUNDS" ]; do get "emitrate_r${r}_$1" || exit 1; r=$((r + 1)); done; }
ratios() { r=1; while [ "$r" -le "$STORE_ROUNDS" ]; do
	calc "$(get "emitrate_r${r}_$1")  / $(get "emitrate_r${r}_$2")"; echo; r=$((r + 1)); done; }
total() { rounds "$1" | awk '{ s += $1 } END { print s + 0 }'; }
fig emit_store_emitters "$EMITTERS" "threads"
fig emit_memory_per_s "$(median $(rounds memory_per_s))" "emits/s"
fig emit_memory_emit_us "$(median $(rounds memory_emit_us))" "us"
fig emit_sqlite_per_s "$(median $(rounds sqlite_per_s))" "emits/s"
fig emit_sqlite_emit_us "$(median $(rounds sqlite_emit_us))" "us"
fig emit_sqlite_delivered_per_s "$(median $(rounds sqlite_delivered_per_s))" "deliveries/s"
fig emit_sqlite_puts "$(total sqlite_puts)" "puts"
fig emit_sqlite_records "$(total sqlite_records)" "records"
fig emit_sqlite_commits "$(total sqlite_commits)" "commits"
fig emit_sqlite_puts_per_commit "$(calc "$(total sqlite_puts) / $(total sqlite_commits)")" "ratio"
fig emit_sqlite_writes_per_commit "$(calc "($(total sqlite_puts) + $(total sqlite_records)) / $(total sqlite_commits)")" "ratio"
fig emit_sqlite_1thread_per_s "$(median $(rounds sqlite_1_per_s))" "emits/s"
fig emit_sqlite_1thread_writes_per_commit "$(calc "($(total sqlite_1_puts) + $(total sqlite_1_records)) / $(total sqlite_1_commits)")" "ratio"
fig emit_sqlite_vs_1thread "$(median $(ratios sqlite_per_s sqlite_1_per_s))" "ratio"
fig emit_sqlite_vs_memory "$(median $(ratios sqlite_per_s memory_per_s))" "ratio"
if [ -z "$pg_skip" ]; then
	fig emit_pg_per_s "$(median $(rounds pg_per_s))" "emits/s"
	fig emit_pg_emit_us "$(median $(rounds pg_emit_us))" "us"
	fig emit_pg_delivered_per_s "$(median $(rounds pg_delivered_per_s))" "deliveries/s"
	fig emit_pg_writes_per_wal_sync "$(calc "$(total pg_run_writes) / $(total pg_run_wal_syncs)")" "ratio"
	fig emit_pg_1thread_per_s "$(median $(rounds pg_1_per_s))" "emits/s"
	fig emit_pg_1thread_writes_per_wal_sync "$(calc "$(total pg_1_run_writes) / $(total pg_1_run_wal_syncs)")" "ratio"
	fig emit_pg_vs_1thread "$(median $(ratios pg_per_s pg_1_per_s))" "ratio"
	fig emit_pg_vs_memory "$(median $(ratios pg_per_s memory_per_s))" "ratio"
else
	fig emit_pg_vs_memory "skipped:" "$pg_skip"
fi
log "stores: $(( $(date +%s) - store_t0 )) s for the store runs"

# ---- goals ------------------------------------------------------------------------------
missed=0
goal() { # name op target value
	if [ "$(calc "$4 $2 $3")" = "1.000" ]; then r=met; else r=MISSED; missed=$((missed + 1)); fi
	printf 'bench: goal %-40s %10s (goal %s %s)  %s\n' "$1" "$4" "$2" "$3" "$r" >&2
}
body=$(get body_bytes)
goal render_sign_vs_hmac '>=' 0.70 "$(get render_sign_vs_hmac)"
goal deliver_vs_wrk '>=' 0.50 "$(get deliver_vs_wrk)"
goal deliver_vs_curl_multi '>=' 0.90 "$(get deliver_vs_curl_multi)"
goal deliver_cpu_us_vs_curl_multi '<=' 1.6 "$(get deliver_cpu_us_vs_curl_multi)"
goal deliver_rtt100_vs_wrk '>=' 0.80 "$(get deliver_rtt100_vs_wrk)"
goal sync_emit_10_slow_ms '<=' 150 "$(get sync_emit_10_slow_ms)"
goal lib_threads_sync '<=' 0 "$(get lib_threads_sync)"
goal deliver_vs_python_requests '>=' 20 "$(get deliver_vs_python_requests)"
goal rss_per_queued_delivery_bytes '<=' "$((2 * body))" "$(get rss_per_queued_delivery_bytes)"
f1=$(get fanout_1_us_per_delivery)
for n in 10 100 1000; do
	# "Flat": within 1.25x of one endpoint's time per delivery.
	goal "fanout_${n}_us_per_delivery" '<=' "$(calc "$f1 * 1.25")" "$(get "fanout_${n}_us_per_delivery")"
done
fig other_cpu_max_percent "$(awk '$2 > m { m = $2 } END { print m + 0 }' "$TMP/other")" "percent"
fig steal_max_percent "$(awk '$3 > m { m = $3 } END { print m + 0 }' "$TMP/other")" "percent"
log "other processes on the machine, per step: $(awk '$2 > 5 { printf "%s %s%%  ", $1, $2; n++ } END { if (!n) printf "never above 5%%" }' "$TMP/other")"
log "emit_p50_us $(get emit_p50_us), emit_p99_us $(get emit_p99_us) (no numeric goal)"
# The store ratios have no goal (issue #4 names none): shown in the same
# table as the goals, never counted as missed.
nogoal() { printf 'bench: goal %-40s %10s (no goal)%s\n' "$1" "$2" "${3:+  $3}" >&2; }
nogoal lib_threads_async "$(get lib_threads_async)" "design: the pool (4) and one I/O thread (timers run on it)"
nogoal emit_sqlite_vs_memory "$(get emit_sqlite_vs_memory)"
if [ -z "$pg_skip" ]; then nogoal emit_pg_vs_memory "$(get emit_pg_vs_memory)"
else nogoal emit_pg_vs_memory skipped "$pg_skip"; fi
log "$missed goal(s) missed"
[ "$STRICT" = 1 ] && [ "$missed" -gt 0 ] && exit 1
exit 0
