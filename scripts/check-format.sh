#!/usr/bin/env bash
# Checks that every C++ file is clang-format clean (.clang-format: Google base, 100 columns).
# With --fix, formats them in place.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-19 || true)
if [ -z "$fmt" ]; then
  echo "check-format: clang-format-19 is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  "$fmt" -i "${files[@]}"
else
  "$fmt" --dry-run --Werror "${files[@]}"
fi
