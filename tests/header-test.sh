#!/bin/sh
# Every public header compiles alone, first in its translation unit, as C99,
# C11, C++11 and C++17 with -Wall -Wextra -pedantic -Werror: each includes
# what it needs, and nothing in them is C-only or compiler-specific.  Then
# all of them together, in reverse order, and <flaghook.h> used as a flag
# server uses it.
# Usage: header-test.sh BUILD [CC] [CXX]
set -eu
build=${1:-build}
cc=${2:-${CC:-cc}}
cxx=${3:-${CXX:-g++}}
dir="$build/tests/headers"
mkdir -p "$dir"
headers="flaghook.h $(cd include && ls flaghook/*.h flaghook/sys/*.h) flaghook_sqlite.h flaghook_pg.h"
n=0
for h in $headers; do
  base=$(echo "$h" | tr '/.' '__')
  printf '#include <%s>\n#include <%s>\nint header_test_%s;\n' "$h" "$h" "$base" > "$dir/$base.c"
  cp "$dir/$base.c" "$dir/$base.cpp"
  for std in c99 c11; do
    $cc -std=$std -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$dir/$base.c" ||
      { echo "header-test: $h does not compile alone as $std"; exit 1; }
    n=$((n + 1))
  done
  for std in c++11 c++17; do
    $cxx -std=$std -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$dir/$base.cpp" ||
      { echo "header-test: $h does not compile alone as $std"; exit 1; }
    n=$((n + 1))
  done
done
# All together, the sys/ headers first: no order matters.
: > "$dir/all.c"
for h in $(echo $headers | tr ' ' '\n' | sort -r); do echo "#include <$h>" >> "$dir/all.c"; done
cat >> "$dir/all.c" <<'C'
int main(void)
{
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	flaghook_transport t = FLAGHOOK_TRANSPORT_INIT;
	flaghook_storage s = FLAGHOOK_STORAGE_INIT;
	flaghook_event ev = FLAGHOOK_EVENT_INIT;
	o.transport = &t;
	o.storage = &s;
	(void)e;
	(void)ev;
	return flaghook_version() == 0 && o.version == 0;
}
C
cp "$dir/all.c" "$dir/all.cpp"
$cc -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$dir/all.c"
$cxx -std=c++11 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$dir/all.cpp"
echo "header-test: $(echo $headers | wc -w) public headers each compile alone as C99, C11, C++11 and C++17 with -Wall -Wextra -pedantic -Werror ($n compiles), and all together in any order"
