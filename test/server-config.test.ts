// Server config and device profiles: defaults, overlay precedence, validation of unknown keys; `kt serve` start and clean stop.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { defaultServerConfig, resolveServerConfig, validateConfigOverlay } from '../src/server/config.js';
import { devicesDirectory, loadDeviceProfile, parseDeviceProfile } from '../src/server/device-profile.js';
import { startEmbeddedBroker } from '../src/server/mqtt/embedded-broker.js';
import { ktBin, repoRoot, runKt } from './helpers/cli.js';

describe('ServerConfig', () => {
  it('has documented defaults: 16 MiB messages, LATEST_WINS, every interface', () => {
    expect(defaultServerConfig.maxReceiveMessageBytes).toBe(16 * 1024 * 1024);
    expect(defaultServerConfig.dropPolicy).toBe('LATEST_WINS');
    expect(defaultServerConfig.listenAddress).toBe('0.0.0.0:50051');
  });

  it('merges overlays in order, taskModels per task', () => {
    const c = resolveServerConfig({ maxStreams: 4, taskModels: { age: 'agegender' } }, { maxStreams: 6 });
    expect(c.maxStreams).toBe(6);
    expect(c.taskModels.age).toBe('agegender');
    expect(c.taskModels.emotion).toBe('emotion');
  });

  it('rejects unknown keys and wrong types with a clear error', () => {
    expect(() => validateConfigOverlay({ maxstreams: 3 }, 'my.json')).toThrow(/my.json: unknown key "maxstreams" \(did you mean "maxStreams"\?\)/);
    expect(() => validateConfigOverlay({ executionProviders: ['gpu'] }, 'x')).toThrow(/"executionProviders" must be a non-empty array of/);
    expect(() => validateConfigOverlay({ dropPolicy: 'NEWEST' }, 'x')).toThrow(/"dropPolicy" must be one of/);
    expect(() => resolveServerConfig({ streamQueueDepth: 9, maxStreamQueueDepth: 8 })).toThrow(/streamQueueDepth/);
  });
});

describe('device profiles', () => {
  it('every devices/*.json loads and validates', async () => {
    const files = (await readdir(devicesDirectory())).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(['jetson-orin.json', 'x86-cpu.json', 'x86-cuda.json']);
    for (const f of files) {
      const profile = await loadDeviceProfile(f.replace(/\.json$/, ''));
      expect(resolveServerConfig(profile.config).executionProviders.at(-1)).toBe('cpu');
    }
    const jetson = await loadDeviceProfile('jetson-orin');
    expect(jetson.config.executionProviders).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(jetson.notes.join(' ')).toMatch(/CPU-only/);
    expect(jetson.notes.join(' ')).toMatch(/--build_nodejs --use_cuda --use_tensorrt/);
    expect(jetson.notes.join(' ')).toMatch(/only the device id/);
  });

  it('rejects unknown keys at either level', () => {
    expect(() => parseDeviceProfile({ name: 'x', description: '', gpu: true }, 'x.json')).toThrow(/unknown key\(s\) "gpu"/);
    expect(() => parseDeviceProfile({ name: 'x', description: '', config: { fp16: true } }, 'x.json')).toThrow(/x.json "config": unknown key "fp16"/);
  });
});

describe('kt serve', () => {
  it('prints the merged config: profile < file < flags', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kt-serve-'));
    const file = join(dir, 'serve.json');
    await writeFile(file, JSON.stringify({ maxStreams: 3, intraOpThreads: 1 }));
    const r = await runKt(['serve', '--device', 'jetson-orin', '--config', file, '--threads', '4', '--print-config']);
    expect(r.code, r.stderr).toBe(0);
    const config = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(config).toMatchObject({ executionProviders: ['tensorrt', 'cuda', 'cpu'], maxStreams: 3, intraOpThreads: 4 });
    const bad = await runKt(['serve', '--device', 'no-such-device']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/device profile "no-such-device" not found/);
    await rm(dir, { recursive: true, force: true });
  });

  it('starts, logs providers and broker, and on SIGTERM publishes offline and exits 0', async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    const dir = await mkdtemp(join(tmpdir(), 'kt-serve-'));
    const watcher = await connectAsync(broker.url);
    const statuses: string[] = [];
    watcher.on('message', (_t, p) => statuses.push(p.toString()));
    await watcher.subscribeAsync('kt/cli-node/status');
    const child = spawn(process.execPath, [ktBin, 'serve', '--listen', '127.0.0.1:0', '--tasks', 'emotion', '--mqtt-url', broker.url, '--node-id', 'cli-node', '--gallery', join(dir, 'g.db')], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 60_000;
    while (!/serving on/.test(stderr) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toMatch(/execution providers in order: cpu/);
    expect(stderr).toMatch(/MQTT events to mqtt:\/\/127\.0\.0\.1:\d+ \(configured broker\)/);
    expect(stderr).toMatch(/health SERVING/);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const until = Date.now() + 3000;
    while (statuses.at(-1) !== 'offline' && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(statuses).toContain('online');
    expect(statuses.at(-1)).toBe('offline');
    await watcher.endAsync();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });
});
