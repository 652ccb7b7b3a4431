#!/usr/bin/env bash
# Fails (exit 1, with a diff) when the committed src/gen differs from what proto/ generates now, or the committed
# schemas/ differ from what the TypeBox definitions emit now.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
stale=0
# -o prepends a base directory to buf.gen.yaml's `out`, so the fresh copy lands in $tmp/src/gen.
node_modules/.bin/buf generate -o "$tmp"
if ! diff -ru src/gen "$tmp/src/gen"; then
  echo "check-gen-drift: src/gen is stale; run scripts/gen-proto.sh and commit the result" >&2
  stale=1
else
  echo "check-gen-drift: src/gen is up to date"
fi
node --import tsx scripts/gen-schemas.ts "$tmp/schemas" >/dev/null
if ! diff -ru schemas "$tmp/schemas"; then
  echo "check-gen-drift: schemas/ is stale; run npm run gen:schemas and commit the result" >&2
  stale=1
else
  echo "check-gen-drift: schemas/ is up to date"
fi
exit "$stale"
