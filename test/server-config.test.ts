// `kt serve`: merged config printing, start, and clean stop (the config merging itself is in server-config.unit.test.ts).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { startEmbeddedBroker } from '../src/server/mqtt/embedded-broker.js';
import { ktBin, repoRoot, runKt } from './helpers/cli.js';
import { logLine } from './helpers/log-lines.js';
import { recordTopic } from './helpers/mqtt.js';

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
    const watcher = await recordTopic(broker.url, 'kt/cli-node/status');
    const child = spawn(
      process.execPath,
      [
        ktBin,
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--tasks',
        'emotion',
        '--mqtt-url',
        broker.url,
        '--node-id',
        'cli-node',
        '--gallery',
        join(dir, 'g.db'),
      ],
      { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await vi.waitFor(
      () => {
        if (!logLine(stderr, 'serving') && child.exitCode === null) throw new Error(`kt serve is not serving yet; stderr: ${stderr}`);
      },
      { timeout: 60_000, interval: 100 },
    );
    // stderr is a pipe: one JSON object per line, values in fields.
    expect(logLine(stderr, 'execution providers in order of preference')).toMatchObject({
      level: 'info',
      name: 'serve',
      providers: ['cpu'],
    });
    expect(logLine(stderr, /^MQTT events to the configured broker/)).toMatchObject({
      url: expect.stringMatching(/^mqtt:\/\/127\.0\.0\.1:\d+$/),
      brokerSource: 'configured',
    });
    expect(logLine(stderr, 'health SERVING')).toBeDefined();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await watcher.waitFor((ms) => ms.at(-1)?.payload === 'offline', 'the offline status after SIGTERM', 3000);
    const statuses = watcher.messages.map((m) => m.payload);
    expect(statuses).toContain('online');
    expect(statuses.at(-1)).toBe('offline');
    await watcher.end();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });
});
