// `kt gateway` failure modes (issue 8): a bad config, a missing ffmpeg and an unreachable camera each give a clear error
// or camera state naming the camera and the field, and one failing camera never stops another.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../src/core/log-types.js';
import { loadGatewayConfig } from '../src/gateway/config.js';
import { Gateway } from '../src/gateway/gateway.js';
import type { RunningServer } from '../src/server/server.js';
import { runKt } from './helpers/cli.js';
import { demoPhotoPath } from './helpers/faces.js';
import { freePort } from './helpers/net.js';
import { startRtspCamera } from './helpers/rtsp.js';
import { startTestServer } from './helpers/server-fixture.js';

describe('kt gateway errors', () => {
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    server = await startTestServer({ tasks: ['age'] });
    dir = await mkdtemp(join(tmpdir(), 'kt-gateway-errors-'));
    await mkdir(join(dir, 'frames'));
    await copyFile(demoPhotoPath(2), join(dir, 'frames', '001.jpg'));
  });

  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a missing ffmpeg and an unreachable camera are camera states naming the field; the folder camera keeps working', async () => {
    const deadPort = await freePort();
    await writeFile(
      join(dir, 'broken.yaml'),
      `server: ${server.address}
ffmpegPath: /nonexistent/bin/ffmpeg
cameras:
  - id: door
    source: { type: folder, path: ./frames, fps: 2 }
    tasks: [age]
  - id: gate
    source: { type: rtsp, url: rtsp://127.0.0.1:${deadPort}/gate, fps: 5 }
  - id: yard
    source: { type: rtsp, url: rtsp://127.0.0.1:${deadPort}/yard, ffmpegPath: ffmpeg, fps: 5 }
`,
    );
    const gateway = await Gateway.start(await loadGatewayConfig(join(dir, 'broken.yaml')), { log: silentLogger });
    try {
      const camera = (id: string) => gateway.status().cameras.find((c) => c.id === id)!;
      await vi.waitFor(
        () => {
          expect(camera('gate').state).toBe('error');
          expect(camera('yard').state).toBe('offline');
          expect(camera('door').counters.results).toBeGreaterThan(0);
        },
        { timeout: 30_000, interval: 100 },
      );
      expect(camera('gate').reason).toMatch(/ffmpeg not found: option ffmpegPath "\/nonexistent\/bin\/ffmpeg"/);
      expect(camera('yard').reason).toContain(`url "rtsp://127.0.0.1:${deadPort}/yard"`);
      expect(camera('yard').reason).toMatch(/Connection refused/);
      expect(camera('door').state).toBe('online');
      expect(camera('door').counters.resultsWithFaces).toBeGreaterThan(0);
    } finally {
      await gateway.stop();
    }
  });

  it('kt gateway rejects a bad config naming the camera and the field (nearest name for a typo)', async () => {
    await writeFile(
      join(dir, 'bad.yaml'),
      `server: 127.0.0.1:1
cameras:
  - id: door
    source: { type: folder, path: ./frames, fsp: 2 }
  - id: lobby
    source: { type: rtps, url: rtsp://127.0.0.1:8554/lobby }
    tasks: [age, emotions]
sinks:
  - { type: mqtt, url: mqtt://127.0.0.1:1883 }
`,
    );
    const res = await runKt(['gateway', '--config', join(dir, 'bad.yaml')], {}, 60_000);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('camera "lobby" (cameras[1]) field tasks');
    await writeFile(
      join(dir, 'bad2.yaml'),
      `server: 127.0.0.1:1
cameras:
  - id: door
    source: { type: folder, path: ./frames, fsp: 2 }
  - id: lobby
    source: { type: rtps, url: rtsp://127.0.0.1:8554/lobby }
`,
    );
    const res2 = await runKt(['gateway', '--config', join(dir, 'bad2.yaml'), '--check'], {}, 60_000);
    expect(res2.code).toBe(1);
    expect(res2.stderr).toContain('camera "door" (cameras[0]) field source.fsp');
    expect(res2.stderr).toContain('did you mean "fps"?');
    expect(res2.stderr).toContain('camera "lobby" (cameras[1]) field source.type');
    expect(res2.stderr).toContain('did you mean "rtsp"?');

    await writeFile(
      join(dir, 'good.yaml'),
      `server: ${server.address}\ncameras:\n  - id: door\n    source: { type: folder, path: ./frames }\n`,
    );
    const ok = await runKt(['gateway', '--config', join(dir, 'good.yaml'), '--check'], {}, 60_000);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toContain('OK, 1 camera(s) (door: folder)');
    expect(ok.code).toBe(0);
  });

  it('kt doctor --gateway checks ffmpeg, each camera (one frame) and the server', async () => {
    const camera = await startRtspCamera('doctor');
    const deadPort = await freePort();
    try {
      await writeFile(
        join(dir, 'doctor.yaml'),
        `server: ${server.address}
cameras:
  - id: door
    source: { type: folder, path: ./frames }
  - id: lobby
    source: { type: rtsp, url: ${camera.url} }
  - id: gate
    source: { type: rtsp, url: rtsp://127.0.0.1:${deadPort}/gate }
`,
      );
      const res = await runKt(['doctor', '--gateway', join(dir, 'doctor.yaml')], {}, 90_000);
      const line = (name: string) => res.stdout.split('\n').find((l) => l.includes(name)) ?? `no line for ${name} in ${res.stdout}`;
      expect(line('gateway config')).toMatch(/^OK /);
      expect(line('ffmpeg')).toMatch(/^OK .*ffmpeg version/);
      expect(line('camera door (folder)')).toMatch(/^OK .*1 image\(s\)/);
      expect(line('camera lobby (rtsp)')).toMatch(/^OK .*1 frame decoded \(h264/);
      expect(line('camera gate (rtsp)')).toMatch(new RegExp(`^FAIL .*url "rtsp://127.0.0.1:${deadPort}/gate": .*Connection refused`));
      expect(line('server')).toMatch(/^OK .*SERVING/);
      expect(res.code).toBe(1);
    } finally {
      await camera.stop();
    }
  });

  it('passes the token from the config on every call (streams included): a wrong token is the camera state error', async () => {
    const token = 'gateway-test-token-0123456789abcdef';
    const guarded = await startTestServer({ tasks: ['age'] }, { logger: silentLogger, env: { KT_TOKENS: `analyze:${token}` } });
    const configWith = (t: string) =>
      `server: { address: "${guarded.address}", token: ${t} }\ncameras:\n  - id: door\n    source: { type: folder, path: ./frames, fps: 4, loop: true }\n    tasks: [age]\n`;
    try {
      await writeFile(join(dir, 'token-ok.yaml'), configWith(token));
      await writeFile(join(dir, 'token-bad.yaml'), configWith('not-the-right-token-0123456789'));
      const good = await Gateway.start(await loadGatewayConfig(join(dir, 'token-ok.yaml')), { log: silentLogger });
      const bad = await Gateway.start(await loadGatewayConfig(join(dir, 'token-bad.yaml')), { log: silentLogger });
      try {
        await vi.waitFor(
          () => {
            expect(good.status().cameras[0]!.counters.resultsWithFaces).toBeGreaterThan(1);
            expect(bad.status().cameras[0]!.state).toBe('error');
          },
          { timeout: 30_000, interval: 100 },
        );
        expect(good.status().cameras[0]!.state).toBe('online');
        expect(bad.status().cameras[0]!.reason).toMatch(/UNAUTHENTICATED|unauthenticated|token/i);
        expect(bad.status().cameras[0]!.counters.results).toBe(0);
      } finally {
        await good.stop();
        await bad.stop();
      }
    } finally {
      await guarded.close();
    }
  });

  it('loads a third-party source and filter from a path in the config and runs them like built-ins', async () => {
    const sdk = new URL('../dist/sdk/index.js', import.meta.url).href;
    await writeFile(
      join(dir, 'third-party.mjs'),
      `import { definePlugin, Type } from '${sdk}';
import { readFile } from 'node:fs/promises';
export const repeatSource = definePlugin({
  kind: 'source', name: 'repeat-file', description: 'sends one image file over and over',
  schema: Type.Object({ file: Type.String({ default: '', description: 'the image' }), fps: Type.Number({ default: 4, description: 'rate' }) }, { additionalProperties: false }),
  create({ options }) {
    let timer;
    return {
      async onStart(ctx) {
        const image = await readFile(options.file);
        ctx.setState('online');
        timer = setInterval(() => ctx.emit({ image }), 1000 / options.fps);
      },
      onStop() { clearInterval(timer); },
    };
  },
});
export const oddOnly = definePlugin({
  kind: 'filter', name: 'odd-only', description: 'drops frames with an even sequence number',
  defaults: {},
  create: () => ({ onFrame: (frame) => (frame.sequence % 2 === 0 ? { drop: 'even' } : undefined) }),
});
`,
    );
    await writeFile(
      join(dir, 'third-party.yaml'),
      `server: ${server.address}
plugins: [./third-party.mjs]
cameras:
  - id: ext
    source: { type: repeat-file, file: ${demoPhotoPath(1)}, fps: 4 }
    filters: [{ type: odd-only }]
    tasks: [age]
`,
    );
    const gateway = await Gateway.start(await loadGatewayConfig(join(dir, 'third-party.yaml')), { log: silentLogger });
    try {
      const camera = () => gateway.status().cameras[0]!;
      await vi.waitFor(() => expect(camera().counters.resultsWithFaces).toBeGreaterThan(1), { timeout: 30_000, interval: 100 });
      expect(camera().state).toBe('online');
      expect(camera().counters.framesFiltered['even']).toBeGreaterThan(0);
    } finally {
      await gateway.stop();
    }
  });
});
