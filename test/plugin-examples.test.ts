// The third-party plugin examples (examples/) against the packed kt-edge-face-sdk only: they typecheck (checkJs, strict)
// against the package's .d.ts, and examples/mini-gateway.mjs runs the slideshow source and the CSV sink, loaded from
// paths, against the real server, next to a third-party sink that throws on every third result and is restarted.
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PluginHostHealth } from '../src/sdk/index.js';
import type { RunningServer } from '../src/server/server.js';
import { ktBin, repoRoot } from './helpers/cli.js';
import { demoPhotoPath } from './helpers/faces.js';
import { npmFlags, packSdk, sdkConsumer } from './helpers/sdk-pack.js';
import { startTestServer } from './helpers/server-fixture.js';

const run = promisify(execFile);
const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');

/** A third-party sink that throws on every third result it is handed (counted over all its instances). */
const flakySink = `import { Type, definePlugin } from 'kt-edge-face-sdk';
let calls = 0;
export const flaky = definePlugin({
  kind: 'sink',
  name: 'flaky',
  description: 'throws on every third result',
  schema: Type.Object({}, { additionalProperties: false }),
  create: () => ({
    onResult() {
      calls += 1;
      if (calls % 3 === 0) throw new Error('flaky: call ' + calls);
    },
  }),
});
`;

describe('the example plugins on the packed SDK', () => {
  let work: string;
  let consumer: string;
  let server: RunningServer;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'kt-plugin-examples-'));
    consumer = join(work, 'consumer');
    sdkConsumer(consumer, packSdk(work));
    cpSync(join(repoRoot, 'examples'), join(consumer, 'examples'), { recursive: true });
    server = await startTestServer({ tasks: ['age', 'gender', 'emotion'] });
  }, 600_000);

  afterAll(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('typecheck against the package alone (checkJs, strict)', async () => {
    const typesNode = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> })
      .devDependencies['@types/node'];
    await run('npm', ['install', '--save-dev', `@types/node@${typesNode}`, ...npmFlags], { cwd: consumer });
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022'],
        types: ['node'],
        allowJs: true,
        checkJs: true,
        noEmit: true,
        strict: true,
        exactOptionalPropertyTypes: true,
      },
      include: ['examples/**/*.mjs'],
    };
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: consumer }).catch((e: { stdout?: string }) => {
      throw new Error(`tsc failed on the examples:\n${e.stdout ?? String(e)}`);
    });
  });

  it('run in mini-gateway: faces reach the CSV sink; a sink throwing on every third result is restarted meanwhile', async () => {
    const frames = join(work, 'frames');
    mkdirSync(frames);
    for (const n of [1, 2, 3]) symlinkSync(demoPhotoPath(n), join(frames, `sample${n}.jpg`));
    writeFileSync(join(consumer, 'flaky-sink.mjs'), flakySink);
    const csvPath = join(work, 'faces.csv');
    const config = {
      server: server.address,
      camera: 'door',
      tasks: ['age', 'gender', 'emotion'],
      frames: 9,
      source: { plugin: './examples/plugins/slideshow-source.mjs', options: { folder: frames, fps: 4 } },
      sinks: [
        { plugin: './examples/plugins/csv-sink.mjs', options: { path: csvPath } },
        { plugin: './flaky-sink.mjs', type: 'flaky' },
      ],
    };
    writeFileSync(join(consumer, 'mini-gateway.json'), JSON.stringify(config, null, 2));
    const { stdout } = await run(process.execPath, ['examples/mini-gateway.mjs', 'mini-gateway.json'], {
      cwd: consumer,
      env: { ...process.env, KT_LOG_LEVEL: 'error' },
      timeout: 240_000,
    });
    console.info(`mini-gateway printed:\n${stdout}`);
    const [summaryLine, ...hostLines] = stdout.trim().split('\n');
    const summary = JSON.parse(summaryLine!) as { camera: string; results: number; faces: number };
    const [source, csv, flaky] = hostLines.map((l) => JSON.parse(l) as PluginHostHealth);
    expect(summary).toMatchObject({ camera: 'door', results: 9 });
    expect(summary.faces).toBeGreaterThanOrEqual(9); // each demo photo has at least one face
    expect(source).toMatchObject({ name: 'slideshow', kind: 'source', failures: 0, state: 'stopped' });
    expect(source!.counters['frames']).toBeGreaterThanOrEqual(9);
    // The CSV sink got every face of every result while the flaky sink was failing and restarting.
    expect(csv).toMatchObject({ name: 'csv-faces', failures: 0, skipped: 0, counters: { faces: summary.faces } });
    expect(csv!.calls).toBe(9 + csv!.counters['events']!); // every result, and the camera's state events
    expect(flaky).toMatchObject({ name: 'flaky', kind: 'sink' });
    expect(flaky!.failures).toBeGreaterThanOrEqual(2);
    expect(flaky!.restarts).toBeGreaterThanOrEqual(1);
    expect(flaky!.calls + flaky!.skipped).toBe(9);
    const lines = readFileSync(csvPath, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('camera,sequence,capture_time_ms,x,y,width,height,score,age,gender,emotion,person');
    const faceLines = lines.filter((l) => l.startsWith('door,'));
    expect(faceLines).toHaveLength(summary.faces);
    for (const l of faceLines) expect(l).toMatch(/^door,\d+,\d{13},\d+,\d+,\d+,\d+,0\.\d{3},\d+\.\d,(male|female),\w+,$/);
    expect(lines).toContain('# door online');
  });

  it("load into `kt gateway` from the config's plugins list (another copy of the SDK) and run there", async () => {
    const frames = join(work, 'gateway-frames');
    mkdirSync(frames);
    for (const n of [2, 3]) symlinkSync(demoPhotoPath(n), join(frames, `sample${n}.jpg`));
    const config = {
      server: server.address,
      plugins: ['./examples/plugins/slideshow-source.mjs', './examples/plugins/csv-sink.mjs'],
      cameras: [{ id: 'hall', source: { type: 'slideshow', folder: frames, fps: 4 }, tasks: ['age', 'gender'] }],
      sinks: [{ type: 'csv-faces', path: 'gateway-faces.csv' }], // relative to the config file
    };
    writeFileSync(join(consumer, 'gateway.json'), JSON.stringify(config, null, 2));
    const csvPath = join(consumer, 'gateway-faces.csv');
    const faceLines = (): string[] =>
      existsSync(csvPath)
        ? readFileSync(csvPath, 'utf8')
            .split('\n')
            .filter((l) => l.startsWith('hall,'))
        : [];
    const gateway = spawn(process.execPath, [ktBin, 'gateway', '--config', join(consumer, 'gateway.json')], {
      env: { ...process.env, KT_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    gateway.stdout.on('data', (d: Buffer) => (log += d.toString()));
    gateway.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((resolve) => gateway.on('close', resolve));
    try {
      // The CSV sink flushes on stop; a line per face appears as the stream's results arrive.
      await vi.waitFor(() => expect(faceLines().length).toBeGreaterThanOrEqual(3), { timeout: 90_000, interval: 250 });
    } finally {
      gateway.kill('SIGTERM');
    }
    const code = await exited;
    console.info(`kt gateway with third-party plugins: exit ${code}, ${faceLines().length} face lines; log:\n${log.slice(-1500)}`);
    expect(code).toBe(0);
    expect(log).toMatch(/plugins loaded/);
    for (const l of faceLines()) expect(l).toMatch(/^hall,\d+,\d{13},\d+,\d+,\d+,\d+,0\.\d{3},\d+\.\d,(male|female),,$/);
    expect(readFileSync(csvPath, 'utf8')).toContain('# hall online');
  });
});
