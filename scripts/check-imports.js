#!/usr/bin/env node
// Lint for architecture rules tsc cannot see: native adapters in one file each, the layer table, the lean SDK package's
// dependencies, import cycles (type imports included) and no .only.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const walk = (dir) =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : /\.ts$/.test(f) ? [p] : [];
  });
const all = walk(join(root, 'src'));
const isGen = (f) => f.includes(join('src', 'gen') + '/');
const src = all.filter((f) => !isGen(f));
const tests = walk(join(root, 'test'));
const problems = [];

// Every import; `type` marks `import type` / `export type`, which carry no runtime edge but still bind layers and cycles.
const importRe = /^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|await import\(\s*['"]([^'"]+)['"]\s*\)/gm;
const importsOf = (file) =>
  [...readFileSync(file, 'utf8').matchAll(importRe)].map((m) => ({ spec: m[2] ?? m[3], typeOnly: m[1] !== undefined }));
const valueImportsOf = (file) =>
  importsOf(file)
    .filter((i) => !i.typeOnly)
    .map((i) => i.spec);
const resolveLocal = (file, spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts');
const packageOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);

// 1. One adapter per untyped native edge (ONNX Runtime's: sessions on the calling thread and in the inference thread).
const adapters = {
  'onnxruntime-node': ['src/onnx/runtime.ts', 'src/onnx/worker-session.ts'],
  sharp: ['src/core/image.ts'],
  '@tensorflow/tfjs': ['src/train/tfjs-backend.ts'],
};
for (const file of src) {
  const rel = relative(root, file);
  for (const spec of valueImportsOf(file))
    for (const [pkg, owners] of Object.entries(adapters)) {
      if ((spec === pkg || spec.startsWith(`${pkg}-`) || spec.startsWith(`${pkg}/`)) && !owners.includes(rel))
        problems.push(`${rel}: imports ${spec}; only ${owners.join(' or ')} may (import the adapter instead)`);
    }
}

// 2. Layer direction (value and type imports): each layer names the layers it may import; files directly in src/ are the CLI.
const layers = ['core', 'contract', 'events', 'onnx', 'models', 'sdk', 'server', 'train', 'gateway', 'cli', 'gen'];
const mayImport = {
  core: [],
  contract: ['core', 'gen'],
  events: ['core', 'contract'],
  onnx: ['core'],
  models: ['core', 'onnx', 'contract'],
  sdk: ['core', 'contract', 'events', 'gen'],
  server: layers.filter((l) => l !== 'train' && l !== 'cli' && l !== 'gateway'),
  train: ['core', 'onnx', 'models', 'contract'],
  gateway: ['core', 'contract', 'events', 'sdk', 'gen'],
  cli: layers,
  gen: ['gen'],
};
const layerOf = (file) => {
  const parts = relative(join(root, 'src'), file).split('/');
  return parts.length === 1 ? 'cli' : parts[0];
};
for (const file of src) {
  const rel = relative(root, file);
  const from = layerOf(file);
  const allowed = mayImport[from];
  if (!allowed) {
    problems.push(`${rel}: folder src/${from} is not in the layer table of scripts/check-imports.js`);
    continue;
  }
  for (const { spec } of importsOf(file)) {
    if (!spec.startsWith('.')) continue;
    const to = layerOf(resolveLocal(file, spec));
    if (to !== from && !allowed.includes(to))
      problems.push(
        `${rel}: imports ${spec}; src/${from} may import ${allowed.length ? `only ${allowed.map((l) => `src/${l}`).join(', ')}` : 'nothing of ours'}`,
      );
  }
}

// 3. The lean SDK package: src/sdk, src/contract, src/events and everything they reach use only these packages.
const leanRoots = ['sdk', 'contract', 'events'];
const leanPackages = ['@grpc/grpc-js', '@bufbuild/protobuf', '@sinclair/typebox', 'mqtt'];
const packageOnlyFrom = { mqtt: 'events' };
const reached = new Set(all.filter((f) => leanRoots.includes(layerOf(f))));
for (const file of reached)
  for (const { spec } of importsOf(file))
    if (spec.startsWith('.')) {
      const target = resolveLocal(file, spec);
      if (all.includes(target)) reached.add(target);
    }
for (const file of reached) {
  const rel = relative(root, file);
  for (const { spec } of importsOf(file)) {
    if (spec.startsWith('.') || spec.startsWith('node:')) continue;
    const pkg = packageOf(spec);
    if (!leanPackages.includes(pkg))
      problems.push(
        `${rel}: imports ${spec}; the SDK package (src/sdk, src/contract, src/events and what they import) may use only ${leanPackages.join(', ')}`,
      );
    else if (packageOnlyFrom[pkg] && layerOf(file) !== packageOnlyFrom[pkg])
      problems.push(`${rel}: imports ${spec}; only src/${packageOnlyFrom[pkg]} may (the SDK's optional dependency)`);
  }
}

// 4. Import cycles among source files, `import type` edges included (they bind the modules just the same).
const graph = new Map(
  src.map((f) => [
    f,
    importsOf(f)
      .filter((i) => i.spec.startsWith('.'))
      .map((i) => resolveLocal(f, i.spec))
      .filter((p) => src.includes(p)),
  ]),
);
const state = new Map();
const stack = [];
const visit = (f) => {
  state.set(f, 'open');
  stack.push(f);
  for (const d of graph.get(f) ?? []) {
    if (state.get(d) === 'open')
      problems.push(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].map((p) => relative(root, p)).join(' -> ')}`);
    else if (!state.has(d)) visit(d);
  }
  stack.pop();
  state.set(f, 'done');
};
for (const f of src) if (!state.has(f)) visit(f);

// 5. No focused tests.
for (const file of tests)
  if (/\b(?:it|test|describe)\.only\(/.test(readFileSync(file, 'utf8'))) problems.push(`${relative(root, file)}: .only left in a test`);

problems.splice(0, problems.length, ...new Set(problems));
if (problems.length) {
  console.error(`check-imports: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(`check-imports: ${src.length} source files, ${tests.length} test files: ok`);
