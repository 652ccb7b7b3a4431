#!/usr/bin/env bash
# Fails (exit 1, with a diff) when the committed src/gen differs from what proto/ generates now.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# -o prepends a base directory to buf.gen.yaml's `out`, so the fresh copy lands in $tmp/src/gen.
node_modules/.bin/buf generate -o "$tmp"
if ! diff -ru src/gen "$tmp/src/gen"; then
  echo "check-gen-drift: src/gen is stale; run scripts/gen-proto.sh and commit the result" >&2
  exit 1
fi
echo "check-gen-drift: src/gen is up to date"
