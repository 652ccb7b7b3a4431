// Integration tests spawn `bin/kt.js`, which runs the compiled dist/: compile it first when a source is newer.
import { execFileSync } from 'node:child_process';

export default function buildDistIfStale(): void {
  execFileSync(process.execPath, ['scripts/build-dist.mjs', '--if-stale'], { stdio: 'inherit' });
}
