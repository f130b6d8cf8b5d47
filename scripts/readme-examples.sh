#!/usr/bin/env bash
# Runs every ```sh block of README.md in order, in one shell, as a new user would paste them; blocks
# right after a `<!-- readme-examples: skip (...) -->` line are left out (the reason is in the line).
# Usage: scripts/readme-examples.sh [README] -- run from a directory holding examples/ (the tour
# writes ./loa-local and ./loa-local.log there). LOA may name the binary (default: the README's).
# Any failing command (curl's --fail-with-body included) stops it with a non-zero status.
set -euo pipefail
readme="${1:-README.md}"
script="$(awk '
  /^<!-- readme-examples: skip/ { skip = 1; next }
  /^```sh[[:space:]]*$/ { if (!skip) inblock = 1; skip = 0; next }
  /^```/ { inblock = 0; skip = 0; next }
  inblock { print; next }
  NF { skip = 0 }
' "$readme")"
if [ -z "$script" ]; then
  echo "no sh blocks found in $readme" >&2
  exit 1
fi
# Each command is echoed as it runs (xtrace), so a failure shows which example it was.
exec bash -euo pipefail -x -c "$script"
