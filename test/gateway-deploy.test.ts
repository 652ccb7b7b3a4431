// Deployment files (issue 8): the systemd units of `kt serve` and `kt gateway` pass `systemd-analyze verify` with no
// complaint (a deliberately broken copy must get one, so the check can fail), and the environment file is well formed.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/cli.js';

const run = promisify(execFile);
const units = ['kt-serve.service', 'kt-gateway.service'];

/** `systemd-analyze verify` of the given unit files: exit code and everything it printed. */
async function verify(paths: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', ...paths]);
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? 1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('devices/ systemd units and environment file', () => {
  let dir: string;
  const copies: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kt-units-'));
    for (const unit of units) {
      let text = await readFile(join(repoRoot, 'devices', unit), 'utf8');
      // The units name /usr/bin/node (Debian's nodejs, NodeSource); where node lives elsewhere, verify the same unit with it.
      if (!existsSync('/usr/bin/node')) text = text.replaceAll('/usr/bin/node', process.execPath);
      copies[unit] = text;
      await writeFile(join(dir, unit), text);
    }
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('systemd-analyze verify accepts both units without a warning', async () => {
    const res = await verify(units.map((u) => join(dir, u)));
    expect(res.output.split('\n').filter((l) => l.includes('kt-'))).toEqual([]);
    expect(res.code).toBe(0);
  });

  it('a broken copy is reported (the check can fail)', async () => {
    const broken = join(dir, 'kt-broken.service');
    await writeFile(broken, copies['kt-gateway.service']!.replace('Restart=on-failure', 'Restrat=on-failure'));
    const res = await verify([broken]);
    expect(res.output).toMatch(/Unknown key 'Restrat'/);
  });

  it('the units run kt from the package with the environment file; kt.env names a device profile and the gateway config', async () => {
    const serve = copies['kt-serve.service']!;
    const gateway = copies['kt-gateway.service']!;
    expect(serve).toMatch(/^ExecStart=\S+node \/opt\/kt-edge-face\/bin\/kt\.js serve .*--device \$\{KT_DEVICE\}$/m);
    expect(gateway).toMatch(/^ExecStart=\S+node \/opt\/kt-edge-face\/bin\/kt\.js gateway --config \$\{KT_GATEWAY_CONFIG\}$/m);
    for (const text of [serve, gateway]) expect(text).toContain('EnvironmentFile=-/etc/kt/kt.env');
    const env = await readFile(join(repoRoot, 'devices', 'kt.env'), 'utf8');
    const lines = env.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    for (const line of lines) expect(line).toMatch(/^[A-Z][A-Z0-9_]*=\S*$/);
    const values = Object.fromEntries(lines.map((l) => l.split('=') as [string, string]));
    expect(existsSync(join(repoRoot, 'devices', `${values['KT_DEVICE']}.json`))).toBe(true);
    expect(values['KT_GATEWAY_CONFIG']).toMatch(/\.ya?ml$/);
  });
});
