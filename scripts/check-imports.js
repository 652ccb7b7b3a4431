#!/usr/bin/env node
// Lint for architecture rules tsc cannot see: native adapters imported in one file each, layer direction, no cycles, no .only.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const walk = (dir) => readdirSync(dir).flatMap((f) => {
  const p = join(dir, f);
  return statSync(p).isDirectory() ? walk(p) : /\.ts$/.test(f) ? [p] : [];
});
const src = walk(join(root, 'src')).filter((f) => !f.includes(`${join('src', 'gen')}`));
const tests = walk(join(root, 'test'));
const problems = [];

// Value imports only: `import type` and `export type` carry no runtime edge.
const importRe = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|await import\(\s*['"]([^'"]+)['"]\s*\)/gm;
const importsOf = (file) => [...readFileSync(file, 'utf8').matchAll(importRe)].map((m) => m[1] ?? m[2]);

// 1. One adapter file per untyped native edge.
const adapters = { 'onnxruntime-node': 'src/onnx/runtime.ts', sharp: 'src/core/image.ts', '@tensorflow/tfjs': 'src/train/tfjs-backend.ts' };
for (const file of src) {
  const rel = relative(root, file);
  for (const spec of importsOf(file)) for (const [pkg, owner] of Object.entries(adapters)) {
    if ((spec === pkg || spec.startsWith(`${pkg}-`) || spec.startsWith(`${pkg}/`)) && rel !== owner) problems.push(`${rel}: imports ${spec}; only ${owner} may (import the adapter instead)`);
  }
}

// 2. Layer direction: nothing imports the server but the CLI.
for (const file of src) {
  const rel = relative(root, file);
  if (rel.startsWith('src/server/') || rel.startsWith('src/cli')) continue;
  for (const spec of importsOf(file)) if (spec.startsWith('.') && relative(root, resolve(dirname(file), spec)).startsWith('src/server/')) problems.push(`${rel}: imports ${spec}; only src/cli*.ts may import src/server`);
}

// 3. Import cycles among source files.
const graph = new Map(src.map((f) => [f, importsOf(f).filter((s) => s.startsWith('.')).map((s) => resolve(dirname(f), s).replace(/\.js$/, '.ts')).filter((p) => src.includes(p))]));
const state = new Map();
const stack = [];
const visit = (f) => {
  state.set(f, 'open');
  stack.push(f);
  for (const d of graph.get(f) ?? []) {
    if (state.get(d) === 'open') problems.push(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].map((p) => relative(root, p)).join(' -> ')}`);
    else if (!state.has(d)) visit(d);
  }
  stack.pop();
  state.set(f, 'done');
};
for (const f of src) if (!state.has(f)) visit(f);

// 4. No focused tests.
for (const file of tests) if (/\b(?:it|test|describe)\.only\(/.test(readFileSync(file, 'utf8'))) problems.push(`${relative(root, file)}: .only left in a test`);

problems.splice(0, problems.length, ...new Set(problems));
if (problems.length) {
  console.error(`check-imports: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(`check-imports: ${src.length} source files, ${tests.length} test files: ok`);
