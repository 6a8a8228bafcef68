#!/bin/sh
# Builds the Debian packages (debian/) from a clean copy of git HEAD plus
# the working tree's debian/ directory, in a temporary directory; installs
# the seven binary packages with apt; builds examples/flag_server.c,
# examples/poll_loop.c and examples/outbox_server.c against the installed
# copy with pkg-config; runs `flaghook --version`, checks `flaghook sign`
# and `flaghook verify` against an HMAC-SHA256 computed by openssl; installs
# the Python and Node packages (pip, npm) and runs the README's examples
# with them on the installed library; lets
# flag_server deliver two signed webhooks to a receiver on loopback that
# verifies each signature, and poll_loop fail cleanly on a host that does
# not resolve; runs lintian on the .changes (errors fail the check); and
# purges the packages again.  Ends with one line, "deb-check: OK ..." or
# "deb-check: FAILED ...", and exits non-zero on failure.
#
# Needs root (or password-less sudo) for apt.  Installs dpkg-dev,
# debhelper, lintian, fakeroot, build-essential, openssl, python3 and the
# Build-Depends of debian/control when they are missing; those stay.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
PKGS="libflaghook0 libflaghook-dev flaghook-tools libflaghook-sqlite0 libflaghook-sqlite-dev libflaghook-pg0 libflaghook-pg-dev"
started=$(date +%s)
tmp=""
installed=0
receiver_pid=""
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" = 0 ]; then SUDO=""
elif sudo -n true 2>/dev/null; then SUDO="sudo -n"
else echo "deb-check: FAILED: needs root or password-less sudo for apt"; exit 1
fi

cleanup() {
  [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null
  if [ "$installed" = 1 ]; then
    # shellcheck disable=SC2086
    $SUDO apt-get purge -y -qq $PKGS >"$tmp/purge.log" 2>&1 || cat "$tmp/purge.log"
  fi
  [ -n "$tmp" ] && rm -rf "$tmp"
}
fail() {
  echo "deb-check: FAILED: $* ($(( $(date +%s) - started )) s)"
  cleanup
  exit 1
}
# show LOG: the last lines of a log, indented
show() { tail -n "${2:-25}" "$1" | sed 's/^/  | /'; }

[ -d "$repo/debian" ] || fail "no debian/ directory in $repo"
git -C "$repo" rev-parse --verify -q HEAD >/dev/null || fail "$repo is not a git checkout with a HEAD"
for p in $PKGS; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    echo "deb-check: FAILED: $p is already installed; purge the libflaghook packages first"
    exit 1
  fi
done
tmp=$(mktemp -d /tmp/flaghook-deb-XXXXXX) || fail "mktemp"
trap 'fail "interrupted"' INT TERM HUP

# ---- tools and Build-Depends ------------------------------------------------
need=""
for p in dpkg-dev debhelper lintian fakeroot build-essential openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
command -v python3 >/dev/null || need="$need python3"
if [ -n "$need" ]; then
  echo "deb-check: installing$need"
  # shellcheck disable=SC2086
  { $SUDO apt-get install -y -qq $need >"$tmp/apt.log" 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $need; } >>"$tmp/apt.log" 2>&1; } ||
    { show "$tmp/apt.log"; fail "apt-get install$need"; }
fi

# ---- a clean copy: git HEAD plus debian/ --------------------------------------
src="$tmp/libflaghook-0.1.0"
mkdir "$src" || fail "mkdir $src"
git -C "$repo" archive HEAD | tar -x -C "$src"
[ -f "$src/Makefile" ] || fail "git archive HEAD | tar -x"
rm -rf "$src/debian" && cp -r "$repo/debian" "$src/debian" || fail "copying debian/"
if ! (cd "$src" && dpkg-checkbuilddeps) >/dev/null 2>&1; then
  (cd "$src" && $SUDO apt-get build-dep -y -qq ./ >"$tmp/builddep.log" 2>&1) ||
    { show "$tmp/builddep.log"; fail "apt-get build-dep"; }
fi

# ---- build --------------------------------------------------------------------
echo "deb-check: dpkg-buildpackage -us -uc -b in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1 ||
  { show "$tmp/build.log" 40; fail "dpkg-buildpackage (log above)"; }
units=$(sed -n 's/^check: \([0-9]*\) passed, 0 failed$/\1/p' "$tmp/build.log" | tail -n 1)
changes=$(ls "$tmp"/libflaghook_*.changes 2>/dev/null | head -n 1)
[ -n "$changes" ] || fail "no .changes file"
debs=""
for p in $PKGS; do
  d=$(ls "$tmp/${p}_"*.deb 2>/dev/null | head -n 1)
  [ -n "$d" ] || fail "package $p was not built"
  debs="$debs $d"
done

# ---- lintian --------------------------------------------------------------------
lintian --fail-on error "$changes" >"$tmp/lintian.log" 2>&1
lrc=$?
grep -v 'running with root privileges' "$tmp/lintian.log" | sed 's/^/  lintian: /'
lerr=$(grep -c '^E: ' "$tmp/lintian.log")
lwarn=$(grep -c '^W: ' "$tmp/lintian.log")
[ "$lrc" -eq 0 ] && [ "$lerr" -eq 0 ] || fail "lintian: $lerr errors (exit $lrc)"

# ---- install --------------------------------------------------------------------
installed=1
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $debs >"$tmp/install.log" 2>&1 ||
  { show "$tmp/install.log"; fail "apt-get install of the packages"; }
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in /usr/include/flaghook.h /usr/include/flaghook/client.h /usr/include/flaghook/sys/storage.h /usr/include/flaghook_sqlite.h /usr/include/flaghook_pg.h \
         /usr/lib/$ma/libflaghook.so.0 /usr/lib/$ma/libflaghook.so /usr/lib/$ma/libflaghook.a \
         /usr/lib/$ma/libflaghook-sqlite.so.0 /usr/lib/$ma/libflaghook-sqlite.a \
         /usr/lib/$ma/libflaghook-pg.so.0 /usr/lib/$ma/libflaghook-pg.a \
         /usr/lib/$ma/pkgconfig/flaghook.pc /usr/lib/$ma/pkgconfig/flaghook-sqlite.pc \
         /usr/lib/$ma/pkgconfig/flaghook-pg.pc /usr/bin/flaghook \
         /usr/share/man/man1/flaghook.1.gz /usr/share/man/man3/flaghook_emit.3.gz \
         /usr/share/man/man7/flaghook.7.gz; do
  [ -e "$f" ] || fail "$f is not installed"
done
[ "$(pkg-config --variable=libdir flaghook)" = "/usr/lib/$ma" ] ||
  fail "flaghook.pc has libdir $(pkg-config --variable=libdir flaghook), not /usr/lib/$ma"
[ "$(pkg-config --modversion flaghook)" = 0.1.0 ] || fail "pkg-config --modversion flaghook"

# ---- examples against the installed copy -------------------------------------------
ex="$tmp/examples"; mkdir "$ex"
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
for e in flag_server poll_loop; do
  cc -std=c99 -Wall -Wextra -Werror "$src/examples/$e.c" -o "$ex/$e" $(pkg-config --cflags --libs flaghook) \
    >"$tmp/cc.log" 2>&1 || { show "$tmp/cc.log"; fail "building examples/$e.c against the installed copy"; }
done
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror "$src/examples/outbox_server.c" -o "$ex/outbox_server" \
  $(pkg-config --cflags --libs flaghook-sqlite) >"$tmp/cc.log" 2>&1 ||
  { show "$tmp/cc.log"; fail "building examples/outbox_server.c against the installed libflaghook-sqlite"; }
ldd "$ex/flag_server" | grep -q "libflaghook.so.0 => /\(usr/\)\?lib/$ma/libflaghook.so.0" ||
  fail "flag_server is not linked to the installed libflaghook.so.0"

# ---- the command ------------------------------------------------------------------
ver=$(flaghook --version 2>&1) || fail "flaghook --version: $ver"
[ "$ver" = "flaghook 0.1.0" ] || fail "flaghook --version printed '$ver'"
printf '{"data": {"feature": "dark_mode"}, "event_type": "FLAG_UPDATED"}' >"$tmp/body.json"
sig=$(FLAGHOOK_SECRET=deb-check-secret flaghook sign "$tmp/body.json") || fail "flaghook sign"
want=$(openssl dgst -sha256 -hmac deb-check-secret -r "$tmp/body.json" | cut -d' ' -f1)
[ "$sig" = "$want" ] || fail "flaghook sign printed $sig, HMAC-SHA256 is $want"
FLAGHOOK_SECRET=deb-check-secret flaghook verify --signature "$sig" "$tmp/body.json" >/dev/null 2>&1 ||
  fail "flaghook verify rejects its own signature"
FLAGHOOK_SECRET=other flaghook verify --signature "$sig" "$tmp/body.json" >/dev/null 2>&1
[ $? -eq 1 ] || fail "flaghook verify with the wrong secret did not exit 1"

# ---- flag_server delivers two signed webhooks to a verifying receiver ---------------
cat >"$tmp/receiver.py" <<'EOF'
import hashlib, hmac, http.server, os, sys
secret = os.environ["FLAGHOOK_SECRET"].encode()
class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        want = hmac.new(secret, body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(want, self.headers.get("X-Flagsmith-Signature", ""))
        with open(sys.argv[1], "a") as log:
            log.write("%s %s\n" % ("verified" if ok else "BAD-SIGNATURE", body[:60].decode("ascii", "replace")))
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
export FLAGHOOK_SECRET=deb-check-webhook-secret
python3 "$tmp/receiver.py" "$tmp/received.log" >"$tmp/port" 2>"$tmp/receiver.err" &
receiver_pid=$!
i=0; while [ ! -s "$tmp/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
port=$(head -n 1 "$tmp/port")
[ -n "$port" ] || { show "$tmp/receiver.err"; fail "the receiver did not start"; }
timeout 60 "$ex/flag_server" --allow-private "http://127.0.0.1:$port/flagsmith" >"$tmp/fs.log" 2>&1 ||
  { show "$tmp/fs.log"; fail "flag_server (installed libflaghook.so.0) did not deliver to 127.0.0.1:$port"; }
kill "$receiver_pid" 2>/dev/null; wait "$receiver_pid" 2>/dev/null; receiver_pid=""
verified=$(grep -c '^verified ' "$tmp/received.log" 2>/dev/null)
[ "${verified:-0}" -eq 2 ] && ! grep -q '^BAD' "$tmp/received.log" ||
  { show "$tmp/received.log"; fail "the receiver verified ${verified:-0} of 2 webhooks"; }

# ---- the README's Python and Node examples on the installed library ------------------
# pip install ./bindings/python and npm install ./bindings/node, as a user
# would, and the examples as the README has them; the library is found by
# the system's loader (libflaghook0), not FLAGHOOK_LIBRARY.
unset FLAGHOOK_LIBRARY
python3 "$tmp/receiver.py" "$tmp/received2.log" >"$tmp/port2" 2>"$tmp/receiver.err" &
receiver_pid=$!
i=0; while [ ! -s "$tmp/port2" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
port=$(head -n 1 "$tmp/port2")
[ -n "$port" ] || { show "$tmp/receiver.err"; fail "the receiver did not start"; }
python3 -m venv "$tmp/venv" >"$tmp/venv.log" 2>&1 || { show "$tmp/venv.log"; fail "python3 -m venv"; }
"$tmp/venv/bin/pip" install --no-index -q "$src/bindings/python" >"$tmp/pip.log" 2>&1 ||
  { show "$tmp/pip.log"; fail "pip install ./bindings/python"; }
(cd "$src" && sh tests/readme-extract.sh "## Python" python "$tmp/readme_example.py") || fail "no Python example in README"
WEBHOOK_URL="http://127.0.0.1:$port/hook" timeout 60 "$tmp/venv/bin/python" "$tmp/readme_example.py" \
  >"$tmp/py.log" 2>&1 || { show "$tmp/py.log"; fail "the README's Python example on the installed library"; }
grep -q "^delivered 200" "$tmp/py.log" || { show "$tmp/py.log"; fail "the Python example did not deliver"; }
examples="Python"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  mkdir "$tmp/nodeapp" && (cd "$tmp/nodeapp" && npm init -y >/dev/null &&
    npm install --no-audit --no-fund --loglevel=error "$src/bindings/node") >"$tmp/npm.log" 2>&1 ||
    { show "$tmp/npm.log"; fail "npm install ./bindings/node"; }
  (cd "$src" && sh tests/readme-extract.sh "## Node" js "$tmp/nodeapp/example.js") || fail "no Node example in README"
  (cd "$tmp/nodeapp" && WEBHOOK_URL="http://127.0.0.1:$port/hook" timeout 60 node example.js) >"$tmp/node.log" 2>&1 ||
    { show "$tmp/node.log"; fail "the README's Node example on the installed library"; }
  grep -q "outcome: 'delivered'" "$tmp/node.log" || { show "$tmp/node.log"; fail "the Node example did not deliver"; }
  examples="Python and Node"
else
  echo "deb-check: node/npm not installed: the Node example is not run here"
fi
kill "$receiver_pid" 2>/dev/null; wait "$receiver_pid" 2>/dev/null; receiver_pid=""
want=$([ "$examples" = Python ] && echo 1 || echo 2)
verified=$(grep -c '^verified ' "$tmp/received2.log" 2>/dev/null)
[ "${verified:-0}" -eq "$want" ] && ! grep -q '^BAD' "$tmp/received2.log" ||
  { show "$tmp/received2.log"; fail "the receiver verified ${verified:-0} of $want webhooks from the README examples"; }
unset FLAGHOOK_SECRET

# ---- poll_loop against a host that does not resolve --------------------------------
timeout 120 "$ex/poll_loop" --events 1 http://hooks.flaghook.invalid/ >"$tmp/poll.log" 2>&1
prc=$?
[ "$prc" -eq 1 ] && grep -qiE 'not resolve|dns' "$tmp/poll.log" ||
  { show "$tmp/poll.log"; fail "poll_loop on an unresolvable host: exit $prc, no 'does not resolve' message"; }

# ---- purge ----------------------------------------------------------------------------
installed=0
# shellcheck disable=SC2086
$SUDO apt-get purge -y -qq $PKGS >"$tmp/purge.log" 2>&1 || { show "$tmp/purge.log"; fail "apt-get purge"; }
left=""
for p in $PKGS; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.[^n]' && left="$left $p"
done
[ -z "$left" ] || fail "still installed after purge:$left"
[ ! -e /usr/bin/flaghook ] && [ ! -e "/usr/lib/$ma/libflaghook.so.0" ] || fail "files left after purge"

rm -rf "$tmp"
echo "deb-check: OK: 7 packages built from HEAD + debian/ (${units:-?} unit tests passed in the build), lintian $lerr errors $lwarn warnings; installed, 3 examples built with pkg-config, flag_server delivered 2 signed webhooks the receiver verified, the README's $examples examples delivered through pip/npm installs on the installed library, poll_loop reported the unresolvable host, flaghook --version/sign/verify correct; purged ($(( $(date +%s) - started )) s)"
