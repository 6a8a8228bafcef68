#!/bin/sh
# Writes the first fenced code block of language LANG that follows the
# README heading HEADING to OUT, so that tests run the README's own
# examples and they cannot rot.  Fails when there is none.
# Usage: readme-extract.sh HEADING LANG OUT
set -eu
heading=$1 lang=$2 out=$3
mkdir -p "$(dirname "$out")"
awk -v h="$heading" -v l="$lang" '
  $0 == h { s = 1; next }
  s && /^## / && !c { exit }
  s && $0 == "```" l { c = 1; next }
  c && /^```$/ { exit }
  c { print }' README.md > "$out"
[ -s "$out" ] || { echo "readme-extract: no \`\`\`$lang block under '$heading' in README.md"; exit 1; }
