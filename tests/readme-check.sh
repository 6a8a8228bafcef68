#!/bin/sh
# The README's short example is a complete program: extract it and build it
# against the fresh library with every warning an error, so it cannot rot.
# Usage: readme-check.sh BUILD [CC] [LIBS]
set -eu
build=${1:-build}
cc=${2:-${CC:-cc}}
libs=${3:--lcurl -lcjson -lmbedx509 -lmbedcrypto -pthread}
mkdir -p "$build/tests"
out="$build/tests/readme_app.c"
# The first ```c block after the "## A short example" heading.
awk '/^## A short example/ { s = 1 } s && /^```c$/ { c = 1; next } c && /^```$/ { exit } c { print }' \
  README.md > "$out"
[ -s "$out" ] || { echo "readme-check: no C block under '## A short example' in README.md"; exit 1; }
grep -q 'int main' "$out" || { echo "readme-check: the README example has no main()"; exit 1; }
$cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude "$out" -o "$build/tests/readme_app" \
  "$build/libflaghook.a" $libs
# Run it: a URL whose name never resolves (.invalid, RFC 6761) must fail
# cleanly, saying why; nothing leaves the machine.
set +e
msg=$(FLAGHOOK_SECRET=readme-secret "$build/tests/readme_app" "http://hooks.flaghook.invalid/" 2>&1)
rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "readme-check: the example exited $rc, not 1, with no receiver: $msg"; exit 1; }
case "$msg" in
  *"webhook: "*) ;;
  *) echo "readme-check: the example did not say why it failed: $msg"; exit 1 ;;
esac
if echo "$msg" | grep -q readme-secret; then echo "readme-check: the secret was printed"; exit 1; fi
echo "readme-check: the README example compiles as C99 with -Wall -Wextra -pedantic -Werror, links, and reports a failed delivery"
