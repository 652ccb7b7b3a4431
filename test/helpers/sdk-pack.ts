// Packs the lean SDK package (kt-edge-face-sdk) and installs it into a throw-away consumer project, as a user would.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './cli.js';

export const npmFlags = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/** Compiles dist/ if stale, builds build/sdk-package and packs it into `into`; returns the tarball's path. */
export function packSdk(into: string): string {
  const node = (script: string, ...args: string[]): string =>
    execFileSync(process.execPath, [join(repoRoot, script), ...args], { cwd: repoRoot, encoding: 'utf8' });
  node('scripts/build-dist.mjs', '--if-stale');
  node('scripts/build-sdk-package.mjs');
  const packed = execFileSync('npm', ['pack', join(repoRoot, 'build/sdk-package'), '--pack-destination', into, '--json'], {
    cwd: into,
    encoding: 'utf8',
  });
  const [{ filename }] = JSON.parse(packed) as { filename: string }[];
  return join(into, filename);
}

/** A private ESM project at `dir` with the packed SDK (`tarball`) installed. */
export function sdkConsumer(dir: string, tarball: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module' }, null, 2)}\n`);
  execFileSync('npm', ['install', tarball, ...npmFlags], { cwd: dir, stdio: 'pipe' });
}
