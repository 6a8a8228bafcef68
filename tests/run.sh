#!/bin/sh
# Runs each test program, shows its output, and ends with one summary line
# "check: N passed, N failed" counted from cmocka's own totals.
passed=0; failed=0; broken=""
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
