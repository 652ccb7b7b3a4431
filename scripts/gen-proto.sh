#!/usr/bin/env bash
# Regenerates src/gen from proto/ with buf and the local ts-proto plugin (offline); lints the contract first.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=node_modules/.bin/buf
"$buf" lint
# buf.gen.yaml has clean: true, so files of deleted .proto files disappear too.
"$buf" generate
echo "generated: $(find src/gen -name '*.ts' | wc -l) files under src/gen"
