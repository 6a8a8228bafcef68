#!/bin/sh
# The Node package's tests against a freshly built library:
#
#   sh bindings/node/run-tests.sh BUILD_DIR      (default: $FLAGHOOK_BUILD, else build)
#
# Sets FLAGHOOK_LIBRARY=BUILD_DIR/libflaghook.so.0, installs koffi (npm ci,
# from the committed package-lock.json) when node_modules is missing, runs
# node --test over test/*.test.js (example.js among them, against a
# loopback receiver), and ends with one line "N passed, N failed".  Exits
# non-zero when a test failed or none could run.
#
# FLAGHOOK_VECTORS: the signature vectors (default ../shared/vectors beside
# the repository, else tests/vectors).  FLAGHOOK_TEST_SLOW=3 triples every
# wait, for a loaded machine.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-${FLAGHOOK_BUILD:-build}}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
lib=$build/libflaghook.so.0

fail() {
  echo "node: $*"
  echo "0 passed, 1 failed"
  exit 1
}

command -v node >/dev/null 2>&1 || fail "node is not installed (Debian: apt-get install nodejs npm)"
[ -e "$lib" ] || fail "no $lib: build the library first (make lib)"

# A library built with a sanitizer needs its runtime loaded before node
# starts, which node does not do: those builds are checked by the C tests.
if command -v ldd >/dev/null 2>&1 && ldd "$lib" 2>/dev/null | grep -Eq 'lib(a|t|ub)san'; then
  echo "node: $lib is a sanitizer build; the Node tests run against the plain build"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi

major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || fail "node $(node --version) is too old: the package needs 18 or later"

if [ ! -d "$here/node_modules/koffi" ]; then
  command -v npm >/dev/null 2>&1 || fail "npm is not installed (Debian: apt-get install npm)"
  echo "node: installing koffi (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"
fi

export FLAGHOOK_LIBRARY="$lib"
# A relative path the caller gave (make passes ../shared/vectors) is the
# caller's: it must survive the cd below.
if [ -n "${FLAGHOOK_VECTORS:-}" ]; then
  case $FLAGHOOK_VECTORS in /*) ;; *) FLAGHOOK_VECTORS=$(pwd)/$FLAGHOOK_VECTORS ;; esac
fi
if [ -z "${FLAGHOOK_VECTORS:-}" ]; then
  if [ -d "$repo/../shared/vectors" ]; then FLAGHOOK_VECTORS=$(cd "$repo/../shared/vectors" && pwd)
  else FLAGHOOK_VECTORS=$repo/tests/vectors; fi
fi
export FLAGHOOK_VECTORS

log=$(mktemp) || fail "mktemp failed"
trap 'rm -f "$log"' EXIT
cd "$here" || fail "cannot enter $here"
# spec for people; TAP into the log, whose totals ("# pass N") read the
# same on Node 18 and 20.
node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$log" test/*.test.js
rc=$?
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -n 1)
todo=$(sed -n 's/^# todo \([0-9]*\)$/\1/p' "$log" | tail -n 1)
pass=${pass:-0}; failed=${failed:-0}; todo=${todo:-0}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$pass" -eq 0 ] && [ "$failed" -eq 0 ]; then failed=1; echo "node: no test ran"; fi
[ "$todo" -gt 0 ] && echo "node: $todo test(s) marked todo wait on the C side (see their # TODO lines)"
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
