#!/bin/sh
# Runs each test program, shows its output, and ends with one summary line
# "check: N passed, N failed" counted from cmocka's own totals.
#
# The PostgreSQL tests need a server: unless FLAGHOOK_PG is already set (to
# a conninfo, or to "" to skip them), this starts a throwaway one with
# tests/support/pg.sh in $FLAGHOOK_BUILD/pg, exports its conninfo as
# FLAGHOOK_PG, and stops it when the run ends, however it ends.
passed=0; failed=0; broken=""

if [ -z "${FLAGHOOK_PG+set}" ]; then
  pgdir=${FLAGHOOK_BUILD:-build}/pg
  pgsh=$(dirname "$0")/support/pg.sh
  pgerr=$(mktemp) || exit 1
  if conninfo=$(sh "$pgsh" start "$pgdir" 2>"$pgerr"); then
    rm -f "$pgerr"
    export FLAGHOOK_PG="$conninfo"
    trap 'sh "$pgsh" stop "$pgdir" >/dev/null 2>&1' EXIT
    # dash runs the EXIT trap on a signal only when the signal is trapped.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
  else
    reason=$(sed -n 's/^pg\.sh: //p' "$pgerr" | tail -n 1)
    rm -f "$pgerr"
    echo "run: no PostgreSQL server could be started (${reason:-pg.sh failed without saying why}); PostgreSQL tests will skip"
    # CI must run them: there a server that cannot start is a failure.
    if [ "${FLAGHOOK_REQUIRE_PG:-0}" = 1 ]; then
      echo "run: FLAGHOOK_REQUIRE_PG=1: the PostgreSQL tests must run here"
      echo "check: 0 passed, 1 failed"
      exit 1
    fi
  fi
fi

for t in "$@"; do
  name=$(basename "$t")
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out"
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
  # Programs without cmocka end with a plain "N passed, N failed" line.
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    p=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, [0-9]* failed$/\1/p' | tail -n 1); p=${p:-0}
    f=$(printf '%s\n' "$out" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed$/\1/p' | tail -n 1); f=${f:-0}
  fi
  passed=$((passed + p)); failed=$((failed + f))
  # A crash or a non-zero exit without a cmocka failure count still fails.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); broken="$broken $name(exit $rc)"; fi
done
[ -n "$broken" ] && echo "check: programs that failed outside a test:$broken"
echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
