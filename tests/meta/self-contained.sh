#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# (The checkers in tests/meta name that folder to look for it, and are not searched.)
# A clone of the repository builds and tests on its own: no file it builds or runs reads the team's
# `../shared` folder, which a user who clones the repository does not have, and the test vectors the
# unit tests read are in tests/vectors with their licences. Run by CTest (`self_contained`).
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
status=0
refs=$(grep -rlE '\.\./shared|/shared/vectors' --include='*.c' --include='*.h' --include='*.mjs' \
         --include='*.sh' --include='CMakeLists.txt' --include='Makefile' --include='run' \
         --exclude-dir=meta --exclude-dir=node_modules src tests bench fuzz scripts .ci \
         CMakeLists.txt Makefile || true)
if [ -n "$refs" ]; then echo "self-contained: these read ../shared: $refs"; status=1; fi
for d in wycheproof jose-cookbook; do
  [ -f "tests/vectors/$d/LICENSE" ] || { echo "self-contained: tests/vectors/$d/LICENSE is missing"; status=1; }
done
[ -f tests/vectors/README.md ] || { echo "self-contained: tests/vectors/README.md is missing"; status=1; }
[ "$status" = 0 ] && echo "self-contained: nothing outside the repository is read"
exit "$status"
