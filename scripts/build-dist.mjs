// Compiles src/ to dist/ (JS, .d.ts, source maps) with tsc -p tsconfig.build.json and removes outputs whose source is gone.
// `--if-stale`: only when a source or tsconfig is newer than the last build (tests and postinstall use it).
// In an installed copy of the package (no src/, dist/ shipped prebuilt) there is nothing to compile.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const srcDir = join(root, 'src');
const distDir = join(root, 'dist');
const buildConfig = join(root, 'tsconfig.build.json');
const buildInfo = join(distDir, '.tsbuildinfo');
const outputSuffixes = ['.js', '.js.map', '.d.ts', '.d.ts.map'];

/** Every file under `dir`, recursively (absolute paths). */
function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** True when dist/ is missing or older than some source file or tsconfig. */
function isStale() {
  if (!existsSync(buildInfo)) return true;
  const builtAt = statSync(buildInfo).mtimeMs;
  const inputs = [...walk(srcDir), buildConfig, join(root, 'tsconfig.json'), join(root, 'package.json')];
  return inputs.some((f) => statSync(f).mtimeMs > builtAt);
}

/** dist/x/y.js (and .d.ts, maps) whose src/x/y.ts was deleted or moved would otherwise ship forever. */
function removeOrphans() {
  let removed = 0;
  for (const file of walk(distDir)) {
    const rel = relative(distDir, file);
    const suffix = outputSuffixes.find((s) => rel.endsWith(s));
    if (!suffix) continue;
    const stem = rel.slice(0, -suffix.length);
    if (!existsSync(join(srcDir, `${stem}.ts`))) {
      rmSync(file);
      removed++;
    }
  }
  return removed;
}

function main() {
  if (!existsSync(srcDir) || !existsSync(buildConfig)) {
    process.stdout.write('build-dist: no src/ here (an installed package ships dist/ prebuilt): nothing to compile\n');
    return 0;
  }
  // Silent when up to date: it runs before `npm start` and `npm test`, whose output should stay theirs.
  if (process.argv.includes('--if-stale') && !isStale()) return 0;
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    process.stderr.write(
      'build-dist: typescript is not installed (a devDependency): run `npm install` without --omit=dev, then `npm run build`\n',
    );
    return 1;
  }
  const run = spawnSync(process.execPath, [tsc, '-p', buildConfig], { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) {
    // tsc still emits and records the build; backdating the record makes the next --if-stale run try again.
    if (existsSync(buildInfo)) utimesSync(buildInfo, new Date(0), new Date(0));
    process.stderr.write(`build-dist: tsc failed (exit ${run.status ?? run.signal}); dist/ may be incomplete\n`);
    return 1;
  }
  const removed = removeOrphans();
  // tsc leaves the build info untouched when nothing changed; touching it keeps --if-stale from rebuilding every time.
  const now = new Date();
  utimesSync(buildInfo, now, now);
  process.stdout.write(`build-dist: compiled src/ to dist/${removed ? ` (removed ${removed} outputs of deleted sources)` : ''}\n`);
  return 0;
}

process.exitCode = main();
