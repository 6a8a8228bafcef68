#!/bin/sh
# Checks the manual, from the repository root:
#  1. every function declared FLAGHOOK_EXTERN in the public headers
#     (include/flaghook/*.h, include/flaghook/sys/*.h,
#     include/flaghook_sqlite.h and include/flaghook_pg.h) has a page
#     man/man3/<name>.3 (a .so link counts);
#  2. every page under man/ renders without a single warning, with
#     `man --warnings -M man -l` or, without man, `groff -ww -man -Tutf8`.
# Ends with one summary line "man-check: ..." and exits non-zero on any
# problem.  Without man and groff the rendering is skipped (exit 0 when
# check 1 passes).
# flaghook.h only includes the others.
headers="$(ls include/flaghook/*.h include/flaghook/sys/*.h) include/flaghook_sqlite.h include/flaghook_pg.h"
problems=0

if [ ! -f include/flaghook.h ] || [ ! -d man ]; then
  echo "man-check: run from the repository root (include/flaghook.h and man/ not found)"
  exit 1
fi

# 1. Function names: the identifier before the first "(" of every declaration
# that starts with FLAGHOOK_EXTERN, even when it spans lines.
nfunctions=0
nmissing=0
for header in $headers; do
  if [ ! -f "$header" ]; then
    echo "man-check: $header does not exist"
    problems=$((problems + 1))
    continue
  fi
  functions=$(awk '
    /^[ \t]*FLAGHOOK_EXTERN[ \t]/ { decl = ""; inside = 1 }
    inside { decl = decl " " $0
           if (index(decl, "(")) {
             sub(/\(.*/, "", decl)
             n = split(decl, w, /[^A-Za-z0-9_]+/)
             while (n > 0 && w[n] == "") n--
             if (n > 0) print w[n]
             inside = 0
           } }' "$header")
  found=0
  for f in $functions; do
    found=$((found + 1))
    nfunctions=$((nfunctions + 1))
    if [ ! -f "man/man3/$f.3" ]; then
      nmissing=$((nmissing + 1))
      echo "man-check: $f is declared in $header but man/man3/$f.3 does not exist"
    fi
  done
  if [ "$found" -eq 0 ]; then
    echo "man-check: found no FLAGHOOK_EXTERN functions in $header"
    problems=$((problems + 1))
  fi
done
problems=$((problems + nmissing))
if [ "$nmissing" -eq 0 ]; then
  part1="$nfunctions functions, every one has a page"
else
  part1="$nfunctions functions, $nmissing without a page"
fi

# 2. Rendering.  man is used only when it really renders a page (mandoc's man
# has no --warnings; a minimised system may have a stub).
tmp=$(mktemp -d "${TMPDIR:-/tmp}/man-check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; exit 1' HUP INT TERM
printf '.TH PROBE 3\n.SH NAME\nmancheckprobe \\- probe\n' > "$tmp/probe.3"
export MANWIDTH=80
renderer=""
if command -v man >/dev/null 2>&1 &&
   man --warnings -M man -l "$tmp/probe.3" 2>"$tmp/err" | grep -q mancheckprobe &&
   [ ! -s "$tmp/err" ]; then
  renderer="man"
elif command -v groff >/dev/null 2>&1; then
  renderer="groff"
fi

pages=0
bad=0
if [ -z "$renderer" ]; then
  part2="rendering skipped: neither man nor groff is installed"
else
  for page in man/man*/*; do
    [ -f "$page" ] || continue
    pages=$((pages + 1))
    if [ "$renderer" = man ]; then
      man --warnings -M man -l "$page" >/dev/null 2>"$tmp/err"; rc=$?
    else
      groff -ww -man -Tutf8 -I man "$page" >/dev/null 2>"$tmp/err"; rc=$?
    fi
    if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ]; then
      bad=$((bad + 1))
      echo "man-check: $page (exit $rc):"
      sed 's/^/  /' "$tmp/err"
    fi
  done
  if [ "$pages" -eq 0 ]; then
    echo "man-check: no pages under man/"
    problems=$((problems + 1))
  fi
  problems=$((problems + bad))
  if [ "$bad" -eq 0 ]; then
    part2="$pages pages render cleanly"
  else
    part2="$pages pages, $bad with warnings"
  fi
  [ "$renderer" = groff ] && part2="$part2 (groff)"
fi

echo "man-check: $part1; $part2"
[ "$problems" -eq 0 ]
