#!/bin/sh
# Installs into a staging directory with DESTDIR and PREFIX=/usr, checks
# every piece landed, builds both examples against the staged copy through
# pkg-config, runs the demo with them on the staged shared library, and
# uninstalls.
set -eu
build=${1:-build}
stage=$(mktemp -d /tmp/flaghook-stage-XXXXXX)
trap 'rm -rf "$stage"' EXIT
make --no-print-directory install DESTDIR="$stage" PREFIX=/usr BUILD="$build" >/dev/null
for f in usr/include/flaghook.h usr/include/flaghook/client.h usr/include/flaghook/sys/transport.h usr/lib/libflaghook.a usr/lib/libflaghook.so.0.1.0 \
         usr/lib/libflaghook.so.0 usr/lib/libflaghook.so usr/lib/pkgconfig/flaghook.pc \
         usr/bin/flaghook usr/share/man/man1/flaghook.1 usr/share/man/man7/flaghook.7 \
         usr/share/man/man3/flaghook_emit.3 \
         usr/include/flaghook_sqlite.h usr/include/flaghook_pg.h \
         usr/lib/libflaghook-sqlite.a usr/lib/libflaghook-sqlite.so.0.1.0 usr/lib/libflaghook-sqlite.so.0 \
         usr/lib/libflaghook-sqlite.so usr/lib/pkgconfig/flaghook-sqlite.pc \
         usr/lib/libflaghook-pg.a usr/lib/libflaghook-pg.so.0.1.0 usr/lib/libflaghook-pg.so.0 \
         usr/lib/libflaghook-pg.so usr/lib/pkgconfig/flaghook-pg.pc; do
  [ -e "$stage/$f" ] || { echo "install-check: $f missing"; exit 1; }
done
soname=$(objdump -p "$stage/usr/lib/libflaghook.so.0.1.0" | awk '/SONAME/ {print $2}')
[ "$soname" = libflaghook.so.0 ] || { echo "install-check: soname is $soname"; exit 1; }
for s in sqlite pg; do
  soname=$(objdump -p "$stage/usr/lib/libflaghook-$s.so.0.1.0" | awk '/SONAME/ {print $2}')
  [ "$soname" = "libflaghook-$s.so.0" ] || { echo "install-check: libflaghook-$s soname is $soname"; exit 1; }
  # The stores sit on the core's public API: the core's .so must not need them.
  objdump -p "$stage/usr/lib/libflaghook.so.0.1.0" | grep -q "NEEDED.*libflaghook-$s" &&
    { echo "install-check: libflaghook needs libflaghook-$s"; exit 1; }
done
objdump -p "$stage/usr/lib/libflaghook.so.0.1.0" | grep -Eq 'NEEDED.*(sqlite|libpq)' &&
  { echo "install-check: the core links SQLite or libpq"; exit 1; }
mkdir "$stage/examples"
export PKG_CONFIG_PATH="$stage/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage"
[ "$(pkg-config --modversion flaghook)" = 0.1.0 ] || { echo "install-check: pkg-config version"; exit 1; }
${CC:-cc} -std=c99 -Wall -Wextra -Werror examples/flag_server.c -o "$stage/examples/flag_server" \
  $(pkg-config --cflags --libs flaghook)
${CC:-cc} -std=c99 -D_GNU_SOURCE -Wall -Wextra -Werror examples/receiver.c -o "$stage/examples/receiver" \
  $(pkg-config --cflags --libs flaghook libmicrohttpd)
${CC:-cc} -std=c99 -Wall -Wextra -Werror examples/outbox_server.c -o "$stage/examples/outbox_server" \
  $(pkg-config --cflags --libs flaghook-sqlite)
${CC:-cc} -std=c99 -Wall -Wextra -Werror examples/poll_loop.c -o "$stage/examples/poll_loop" \
  $(pkg-config --cflags --libs flaghook)
# The README's example, built the way the README says for a prefix the
# system does not search: pkg-config through PKG_CONFIG_PATH, an rpath.
sh tests/readme-check.sh "$build" >/dev/null
${CC:-cc} -std=c99 -Wall -Wextra -Werror "$build/tests/readme_app.c" -o "$stage/examples/readme_app" \
  $(pkg-config --cflags --libs flaghook) -Wl,-rpath,"$stage/usr/lib"
ldd "$stage/examples/readme_app" | grep -q "$stage/usr/lib/libflaghook.so.0" ||
  { echo "install-check: the README example does not find the staged .so through its rpath"; exit 1; }
# The dynamic build must find the staged shared library, and only it.
ldd_out=$(LD_LIBRARY_PATH="$stage/usr/lib" ldd "$stage/examples/flag_server")
echo "$ldd_out" | grep -q "$stage/usr/lib/libflaghook.so.0" || { echo "install-check: not linked to the staged .so"; exit 1; }
LD_LIBRARY_PATH="$stage/usr/lib" "$stage/usr/bin/flaghook" --version >/dev/null
LD_LIBRARY_PATH="$stage/usr/lib" sh examples/demo.sh "$stage" >"$stage/demo.log" 2>&1 ||
  { cat "$stage/demo.log"; echo "install-check: the demo failed on the installed library"; exit 1; }
make --no-print-directory uninstall DESTDIR="$stage" PREFIX=/usr BUILD="$build" >/dev/null
left=$(find "$stage/usr" -type f -o -type l | wc -l)
[ "$left" -eq 0 ] || { echo "install-check: uninstall left $left files"; exit 1; }
echo "install-check: headers, the core and both store libraries (sonames libflaghook.so.0, libflaghook-sqlite.so.0, libflaghook-pg.so.0), their .pc files, man pages and the command install; the core needs neither SQLite nor libpq; the examples build against them with pkg-config and the demo passes on the installed .so; uninstall removes them"
