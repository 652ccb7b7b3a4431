#!/usr/bin/env node
// Entry point of the `kt` command: runs the compiled CLI in dist/ (built by `npm run build`, which npm install runs).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  // A clone whose install scripts did not run (or `npm install --ignore-scripts`): say how to get the build.
  process.stderr.write(`kt: ${fileURLToPath(cli)} is missing: run \`npm run build\` first (compiles src/ to dist/)\n`);
  process.exit(70);
}
await import(cli.href);
