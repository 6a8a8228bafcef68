#!/bin/sh
# The ABI a program built against an earlier libflaghook relies on: the
# built shared libraries are compared (abidiff, from abigail-tools) with the
# baselines kept in abi/, taken from the last release.  An incompatible
# change fails unless the library's soname changed with it: a function or
# variable gone, a parameter added, removed or retyped, a return type
# changed, a struct member moved, retyped or deleted, an enumerator changed.
# What the versioned structs allow passes and is reported: new functions,
# and members added at the end of a struct (its size grows, nothing
# moves).  Only what the public headers declare counts; abi/suppressions.ini
# leaves out the opaque handle's private layout.
#
# Usage: abi-check.sh BUILD          compare
#        abi-check.sh BUILD update   take new baselines (at a release only)
set -eu
build=${1:-build}
mode=${2:-check}
command -v abidiff >/dev/null 2>&1 || { echo "abi-check: abidiff not found (apt-get install abigail-tools)"; exit 1; }
mkdir -p abi
summary=""
fail=0
for lib in libflaghook libflaghook-sqlite libflaghook-pg; do
  so=$(ls "$build/$lib".so.*.*.* 2>/dev/null | head -n 1)
  [ -n "$so" ] || { echo "abi-check: $build/$lib.so.X.Y.Z not built"; exit 1; }
  base="abi/$lib.abi"
  if [ "$mode" = update ]; then
    abidw --no-corpus-path --drop-private-types --headers-dir include --suppressions abi/suppressions.ini \
      --out-file "$base" "$so"
    echo "abi-check: took $base from $so"
    continue
  fi
  [ -f "$base" ] || { echo "abi-check: no baseline $base (abi-check.sh BUILD update, at a release)"; exit 1; }
  if ! readelf -S "$so" | grep -q '\.debug_info'; then
    echo "abi-check: $so has no debug information (build with -g): only its symbols can be compared"
  fi
  set +e
  report=$(abidiff --no-added-syms --suppressions abi/suppressions.ini --headers-dir2 include "$base" "$so" 2>&1)
  rc=$?
  added=$(abidiff --suppressions abi/suppressions.ini --headers-dir2 include "$base" "$so" 2>&1 | sed -n 's/.*Function symbols changes summary: 0 Removed, \([0-9]*\) Added.*/\1/p' | head -n 1)
  set -e
  old_soname=$(sed -n "s/.*soname='\([^']*\)'.*/\1/p" "$base" | head -n 1)
  new_soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
  if [ $((rc & 3)) -ne 0 ]; then
    echo "$report"
    echo "abi-check: abidiff could not compare $base with $so (exit $rc)"
    exit 1
  fi
  # abidiff calls a moved struct member a mere "ABI change" (exit bit 4),
  # as it may be harmless to programs that never see the layout; ours
  # see it, so it is incompatible here.
  harmful=$(echo "$report" | grep -E "offset changed|deletion|was removed|parameter [0-9]+ of type .* was added|\
[1-9][0-9]* Removed|type of .* changed|return type changed|name of .* changed|enumerator .* changed|\
size of symbol changed" || true)
  if [ $((rc & 8)) -ne 0 ] || [ -n "$harmful" ]; then
    echo "$report"
    if [ "$old_soname" != "$new_soname" ]; then
      echo "abi-check: $lib: incompatible with $base, but the soname changed ($old_soname -> $new_soname): allowed"
    else
      echo "abi-check: $lib: INCOMPATIBLE with the baseline $base and the soname is still $new_soname"
      fail=1
    fi
  elif [ $((rc & 4)) -ne 0 ]; then
    echo "$report"
    echo "abi-check: $lib: changed compatibly (see above)"
  fi
  summary="$summary $lib ($new_soname${added:+, $added functions added})"
done
[ "$mode" = update ] && exit 0
[ "$fail" -eq 0 ] || exit 1
echo "abi-check: compatible with the baselines in abi/:$summary"
