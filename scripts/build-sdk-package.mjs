// `npm run build:sdk`: copies the import closure of dist/sdk/{index,plugin}.js (+ .d.ts) into build/sdk-package/ as the lean
// client package kt-edge-face-sdk, with its own package.json (no install scripts), README.md and LICENSE.
// `--list` prints the closure. Fails when the closure reaches a package outside the SDK's allowed runtime set (the
// server's ML stack must not leak in) or loads the optional peer mqtt eagerly.
import { builtinModules } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('..', import.meta.url));
const distDir = join(root, 'dist');
const outDir = join(root, 'build', 'sdk-package');
const entries = ['sdk/index', 'sdk/plugin'];
/** What the SDK may import at run time: the gRPC client, ts-proto's wire runtime, plugin option schemas, MQTT (optional). */
const allowedPackages = ['@grpc/grpc-js', '@bufbuild/protobuf', '@sinclair/typebox', 'mqtt'];
/** Only the mqtt-forward plugin needs mqtt, so it is an optional peer rather than a dependency: imported lazily, absent from .d.ts. */
const optionalPeers = ['mqtt'];
const builtins = new Set(builtinModules);

/** 'x/y.js' of a relative specifier in a .js or .d.ts file of dist/ (a .d.ts refers to its sibling .d.ts by the .js name). */
function resolveRelative(fromFile, specifier) {
  const target = resolve(dirname(fromFile), specifier);
  const stem = target.replace(/\.js$/, '');
  return fromFile.endsWith('.d.ts') ? `${stem}.d.ts` : `${stem}.js`;
}

/** 'name' or '@scope/name' of a bare specifier such as '@bufbuild/protobuf/wire'. */
function packageOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Each import of a .js or .d.ts file: specifier and whether it is a dynamic import(). */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  return ts.preProcessFile(text, true, true).importedFiles.map(({ fileName, pos }) => ({
    specifier: fileName,
    dynamic: /import\s*\(\s*$/.test(text.slice(Math.max(0, pos - 20), pos)),
  }));
}

/** The .js files the entries load eagerly: reached through static imports only (no import() on the way). */
function eagerFiles(startFiles, importsByFile) {
  const eager = new Set();
  const todo = startFiles.filter((f) => f.endsWith('.js'));
  while (todo.length > 0) {
    const file = todo.pop();
    if (eager.has(file) || !importsByFile.has(file)) continue;
    eager.add(file);
    for (const { specifier, dynamic } of importsByFile.get(file))
      if (specifier.startsWith('.') && !dynamic) todo.push(resolveRelative(file, specifier));
  }
  return eager;
}

/**
 * An optional peer must be loaded lazily (a consumer without it must still import the SDK) and must not appear in .d.ts
 * (a consumer without it would get TS2307).
 */
function optionalPeerProblems(startFiles, importsByFile) {
  const eager = eagerFiles(startFiles, importsByFile);
  const problems = [];
  for (const [file, imports] of importsByFile) {
    for (const { specifier, dynamic } of imports) {
      if (!optionalPeers.includes(packageOf(specifier))) continue;
      const where = relative(distDir, file);
      if (file.endsWith('.d.ts')) problems.push(`${where} names the optional peer "${specifier}" in its types (TS2307 without it)`);
      else if (eager.has(file) && !dynamic)
        problems.push(
          `${where} imports the optional peer "${specifier}" on the SDK's eager path: load it (or this module) with await import()`,
        );
    }
  }
  return problems;
}

/** Walks static imports, re-exports, dynamic import() and import("x") types from the entry files. */
function importClosure(startFiles) {
  const importsByFile = new Map();
  const packages = new Map(); // package -> first file that imports it
  const problems = [];
  const todo = [...startFiles];
  while (todo.length > 0) {
    const file = todo.pop();
    if (importsByFile.has(file)) continue;
    if (!existsSync(file)) {
      problems.push(`${relative(root, file)} is imported but missing (run \`npm run build\`)`);
      continue;
    }
    importsByFile.set(file, importsOf(file));
    for (const { specifier } of importsByFile.get(file)) {
      if (specifier.startsWith('.')) todo.push(resolveRelative(file, specifier));
      else if (!specifier.startsWith('node:') && !builtins.has(specifier) && !packages.has(packageOf(specifier)))
        packages.set(packageOf(specifier), relative(distDir, file));
    }
  }
  for (const [pkg, by] of packages) {
    if (!allowedPackages.includes(pkg))
      problems.push(`${by} imports "${pkg}", which is not an SDK dependency (allowed: ${allowedPackages.join(', ')})`);
  }
  problems.push(...optionalPeerProblems(startFiles, importsByFile));
  return { files: [...importsByFile.keys()].sort(), packages: [...packages.keys()].sort(), problems };
}

/** The SDK's package.json: same version, exports with types, runtime dependencies pinned as in the main package. */
function sdkPackageJson(main, packages) {
  const versionOf = (pkg) => main.dependencies?.[pkg] ?? main.optionalDependencies?.[pkg] ?? main.devDependencies?.[pkg];
  const pick = (names) => Object.fromEntries(names.map((n) => [n, versionOf(n)]));
  // A peer is the consumer's own install: accept any compatible version rather than the exact pin.
  const caret = (deps) => Object.fromEntries(Object.entries(deps).map(([n, v]) => [n, /^\d/.test(v) ? `^${v}` : v]));
  const required = packages.filter((p) => !optionalPeers.includes(p));
  const peers = packages.filter((p) => optionalPeers.includes(p));
  const entry = (stem) => ({ types: `./${stem}.d.ts`, default: `./${stem}.js` });
  return {
    name: 'kt-edge-face-sdk',
    version: main.version,
    description:
      'Client and plugin SDK of kt-edge-face: typed gRPC client for the face-analysis server; source, filter and sink plugins with isolation; webhook, MQTT-forward and JSON-lines sinks.',
    license: main.license,
    type: 'module',
    engines: main.engines,
    exports: { '.': entry('sdk/index'), './plugin': entry('sdk/plugin'), './package.json': './package.json' },
    types: './sdk/index.d.ts',
    dependencies: pick(required),
    ...(peers.length > 0
      ? { peerDependencies: caret(pick(peers)), peerDependenciesMeta: Object.fromEntries(peers.map((p) => [p, { optional: true }])) }
      : {}),
  };
}

const readme = (version) => `# kt-edge-face-sdk ${version}

Client and plugin SDK of kt-edge-face: a typed gRPC client for its face-analysis server (\`kt serve\`), streams with
drop policies, the model and gallery APIs, and result plugins (webhook, MQTT forward). Runtime dependencies:
\`@grpc/grpc-js\`, the protobuf wire runtime and TypeBox (plugin option schemas); \`mqtt\` is an optional peer that only
the \`mqtt-forward\` plugin needs (\`npm install mqtt\` to use it).

\`\`\`js
import { readFile } from 'node:fs/promises';
import { FaceAnalysisClient } from 'kt-edge-face-sdk';

const client = new FaceAnalysisClient('127.0.0.1:50051');
await client.waitUntilServing(5000);
const result = await client.analyze(await readFile('photo.jpg'), { tasks: ['age', 'gender', 'emotion'] });
for (const face of result.faces) console.log(face.box, face.age?.years, face.gender?.label, face.emotion?.label);
client.close();
\`\`\`

Plugins for \`kt gateway\` and your own pipelines: \`definePlugin({ kind: 'source' | 'filter' | 'sink', name, schema,
create })\` (options declared with TypeBox's \`Type\`, unknown ones rejected), \`PluginHost\` (runs one plugin with a
timeout per call and restarts it with backoff when it throws or hangs), \`loadPlugin(pathOrPackage)\` and the sinks
\`webhook\`, \`mqtt-forward\` and \`jsonl\`. \`kt-edge-face-sdk/plugin\` has definePlugin, the registry and the types alone.
Types ship with the package (\`.d.ts\`); ESM only, Node.js >= 20.
`;

function main() {
  const startFiles = entries.flatMap((e) => [join(distDir, `${e}.js`), join(distDir, `${e}.d.ts`)]);
  if (!startFiles.every(existsSync)) {
    process.stderr.write('build-sdk-package: dist/sdk is missing: run `npm run build` first\n');
    return 1;
  }
  const { files, packages, problems } = importClosure(startFiles);
  if (process.argv.includes('--list'))
    process.stdout.write(`${files.map((f) => relative(distDir, f)).join('\n')}\npackages: ${packages.join(', ')}\n`);
  if (problems.length > 0) {
    process.stderr.write(
      `build-sdk-package: the SDK's import closure is not self-contained:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
    );
    return 1;
  }
  const main = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  rmSync(outDir, { recursive: true, force: true });
  for (const file of files) {
    const target = join(outDir, relative(distDir, file));
    mkdirSync(dirname(target), { recursive: true });
    if (file.endsWith('.d.ts')) {
      // Declaration maps point into src/, which the package does not ship.
      writeFileSync(target, readFileSync(file, 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\.d\.ts\.map\s*$/, '\n'));
    } else {
      copyFileSync(file, target);
      // JS maps carry their sources inline (inlineSources), so stack traces and debuggers show the TypeScript.
      if (existsSync(`${file}.map`)) copyFileSync(`${file}.map`, `${target}.map`);
    }
  }
  const pkg = sdkPackageJson(main, packages);
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  writeFileSync(join(outDir, 'README.md'), readme(main.version));
  copyFileSync(join(root, 'LICENSE'), join(outDir, 'LICENSE'));
  const jsCount = files.filter((f) => f.endsWith('.js')).length;
  process.stdout.write(
    `build-sdk-package: ${relative(root, outDir)}: ${jsCount} modules (+ .d.ts); dependencies ${JSON.stringify(pkg.dependencies)}` +
      `${pkg.peerDependencies ? `; optional peers ${JSON.stringify(pkg.peerDependencies)}` : ''}\n`,
  );
  return 0;
}

process.exitCode = main();
