#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A clone of the repository builds and tests on its own: no file it builds or runs reads the team's
# folder beside the working copy, which a user who clones the repository does not have, and the
# test vectors the unit tests read are in tests/vectors with their licences. Run by CTest
# (`self_contained`). The checkers in tests/meta name that folder to look for it: not searched.
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
status=0
team=shared # the team's folder beside a working copy, named once here
refs=$(grep -rlE "\\.\\./$team|/$team/vectors" --include='*.c' --include='*.h' --include='*.mjs' \
         --include='*.sh' --include='CMakeLists.txt' --include='Makefile' --include='run' \
         --exclude-dir=meta --exclude-dir=node_modules src tests bench fuzz scripts .ci \
         CMakeLists.txt Makefile || true)
if [ -n "$refs" ]; then echo "self-contained: these read the team folder ../$team: $refs"; status=1; fi
for d in wycheproof jose-cookbook; do
  [ -f "tests/vectors/$d/LICENSE" ] || { echo "self-contained: tests/vectors/$d/LICENSE is missing"; status=1; }
done
[ -f tests/vectors/README.md ] || { echo "self-contained: tests/vectors/README.md is missing"; status=1; }
[ "$status" = 0 ] && echo "self-contained: nothing outside the repository is read"
exit "$status"
