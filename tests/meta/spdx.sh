#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file of the project carries the SPDX line of its licence (LICENSE, Apache-2.0), so a
# file copied out of the repository still says under which terms. Run by CTest (`spdx_headers`).
set -euo pipefail
top="${1:-$(dirname "$0")/../..}"
cd "$top"
[ -f LICENSE ] && grep -q 'Apache License' LICENSE || { echo "spdx: LICENSE is missing or not Apache-2.0"; exit 1; }
missing=0
while IFS= read -r -d '' f; do
  if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
    echo "spdx: no SPDX-License-Identifier line in $f"
    missing=$((missing + 1))
  fi
done < <(find src tests bench fuzz scripts .ci -path '*/node_modules' -prune -o -type f \
           \( -name '*.c' -o -name '*.h' -o -name '*.mjs' -o -name '*.sh' -o -name '*.lua' \
              -o -name 'CMakeLists.txt' -o -name 'run' \) -print0)
for f in Makefile CMakeLists.txt; do
  head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0' || { echo "spdx: none in $f"; missing=$((missing + 1)); }
done
[ "$missing" = 0 ] || { echo "spdx: $missing file(s) without the licence line"; exit 1; }
echo "spdx: every source file names its licence"
