#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The documentation a clone gets is all there: README.md and docs/*.md name no file outside the
# repository (not the team folder beside the checkout, which users do not have), every relative link and every `docs/...` or
# `bench/...` path they name exists, and the README's Documentation section points at docs/.
# Run by CTest (`docs_links`).
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
status=0
fail() { echo "docs-links: $*"; status=1; }

pages=(README.md)
for f in docs/*.md; do [ -e "$f" ] && pages+=("$f"); done
for page in docs/configuration.md docs/tokens.md docs/providers.md docs/gateway.md docs/admin-api.md \
            docs/cli.md docs/architecture.md; do
  [ -f "$page" ] || fail "$page is missing"
done

for page in "${pages[@]}"; do
  dir=$(dirname "$page")
  if grep -n '\.\./sh[a]red\|SPEC\.md\|ARCHITECTURE\.md' "$page"; then
    fail "$page refers to files a clone does not have"
  fi
  # markdown links [text](target): relative ones must exist (anchors dropped)
  while IFS= read -r target; do
    case "$target" in http://* | https://* | mailto:* | '#'*) continue ;; esac
    path=${target%%#*}
    [ -e "$dir/$path" ] || fail "$page links to $target, which does not exist"
  done < <(grep -o '\]([^)]*)' "$page" | sed 's/^](//; s/)$//')
  # repository paths named in backquotes
  while IFS= read -r path; do
    [ -e "$path" ] || fail "$page names $path, which does not exist"
  done < <(grep -oE '`(docs|bench|tests|scripts)/[A-Za-z0-9_./-]+`' "$page" | tr -d '`' | sort -u)
done

section=$(sed -n '/^## Documentation/,/^## /p' README.md)
grep -q '(docs/' <<<"$section" || fail "the README's Documentation section does not point at docs/"

[ "$status" = 0 ] && echo "docs-links: the documentation names only what the repository holds"
exit "$status"
