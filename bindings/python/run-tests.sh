#!/bin/sh
# The Python package's tests against a freshly built libflaghook.
#
#   bindings/python/run-tests.sh [BUILD_DIR]
#
# BUILD_DIR holds libflaghook.so.0 (default: $FLAGHOOK_BUILD, else the
# repository's build/).  Installs the package into a fresh venv with
# `pip install --no-index` (its own build backend: no network, no
# setuptools), runs the unittest suite in tests/ with FLAGHOOK_LIBRARY set,
# the example against a loopback receiver among them, and ends with one
# line "N passed, N failed".  Exits non-zero on any failure.
#
# PYTHON picks the interpreter (default python3).  FLAGHOOK_VECTORS names
# the test vectors (default: shared/vectors beside the repository, else
# tests/vectors).  FLAGHOOK_PY_NO_VENV=1 runs the tests against the source
# tree instead of an installed copy (no python3-venv needed).
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
start=$(pwd)

fail() {
  echo "run-tests: $*"
  echo "0 passed, 1 failed"
  exit 1
}

build=${1:-${FLAGHOOK_BUILD:-$repo/build}}
case $build in /*) ;; *) build=$start/$build ;; esac
lib=$build/libflaghook.so.0
[ -e "$lib" ] || fail "no $lib: build the library first (make lib)"
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || fail "no $python: apt-get install python3"

# Paths the caller gave relative to where it stood (make passes
# FLAGHOOK_VECTORS=../shared/vectors) must survive the cd below.
if [ -n "${FLAGHOOK_VECTORS:-}" ]; then
  case $FLAGHOOK_VECTORS in /*) ;; *) FLAGHOOK_VECTORS=$start/$FLAGHOOK_VECTORS ;; esac
  export FLAGHOOK_VECTORS
fi
export FLAGHOOK_LIBRARY="$lib"
export PYTHONDONTWRITEBYTECODE=1

# A library built with a sanitizer needs its runtime loaded first; Python
# itself is not instrumented, so leaks at exit are not the library's.
if ldd "$lib" 2>/dev/null | grep -q 'libtsan'; then
  echo "run-tests: $lib is built with ThreadSanitizer, which an uninstrumented python3 cannot load; skipped"
  echo "0 passed, 0 failed"
  exit 0
fi
asan=$(ldd "$lib" 2>/dev/null | awk '/libasan/ {print $3}')
preload=${LD_PRELOAD:-}
asan_options=${ASAN_OPTIONS:-}
if [ -n "$asan" ]; then
  preload="$asan${preload:+:$preload}"
  asan_options="detect_leaks=0${asan_options:+:$asan_options}"
fi

work=$(mktemp -d) || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${FLAGHOOK_PY_NO_VENV:-0}" = 1 ]; then
  py=$python
  export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
  unset FLAGHOOK_EXPECT_INSTALLED
else
  "$python" -m venv "$work/venv" >"$work/venv.log" 2>&1 || {
    cat "$work/venv.log"
    fail "$python -m venv failed: apt-get install python3-venv (or FLAGHOOK_PY_NO_VENV=1)"
  }
  py=$work/venv/bin/python
  "$py" -m pip install --no-index --no-cache-dir --disable-pip-version-check -q "$here" \
      >"$work/pip.log" 2>&1 || {
    cat "$work/pip.log"
    fail "pip install --no-index $here failed"
  }
  export FLAGHOOK_EXPECT_INSTALLED="$work/venv"
fi
echo "run-tests: $("$py" --version 2>&1), flaghook from $("$py" -c 'import flaghook, os; print(os.path.dirname(flaghook.__file__))'), libflaghook $lib"

# From tests/, so that the installed package is imported, not the tree's.
cd "$here/tests" || fail "no $here/tests"
LD_PRELOAD=$preload ASAN_OPTIONS=$asan_options \
  "$py" -m unittest discover -s . -p 'test_*.py' -v >"$work/unittest.log" 2>&1
rc=$?
cat "$work/unittest.log"

ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$work/unittest.log" | tail -n 1)
count() {
  sed -n "s/^\(OK\|FAILED\) (.*$1=\([0-9]*\).*/\2/p" "$work/unittest.log" | tail -n 1
}
failures=$(count failures); errors=$(count errors); skipped=$(count skipped)
xfail=$(count 'expected failures'); xpass=$(count 'unexpected successes')
ran=${ran:-0}; failures=${failures:-0}; errors=${errors:-0}; skipped=${skipped:-0}
xfail=${xfail:-0}; xpass=${xpass:-0}
failed=$((failures + errors + xpass))
passed=$((ran - failed - skipped - xfail))
# A crash or an exit without unittest's summary still fails.
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "run-tests: unittest exited $rc"
  failed=1
fi
[ "$ran" -gt 0 ] || { echo "run-tests: no test ran"; failed=$((failed + 1)); }
[ "$skipped" -gt 0 ] && echo "run-tests: $skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
