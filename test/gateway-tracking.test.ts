// Tracking per gateway camera against the real server: a folder camera of real demo photos with `tracking` on streams
// through the SDK, and a sink sees track ids on the faces and the track events on the results; a camera with
// `tracking: false` sees none.
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../src/core/log-types.js';
import { gatewayRegistry } from '../src/gateway/builtins.js';
import { resolveGatewayConfig } from '../src/gateway/config.js';
import { Gateway } from '../src/gateway/gateway.js';
import { Type, definePlugin, type StreamResult } from '../src/sdk/index.js';
import type { RunningServer } from '../src/server/server.js';
import { demoPhotoPath } from './helpers/faces.js';
import { startTestServer } from './helpers/server-fixture.js';

let server: RunningServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer({ tasks: ['age'] });
  dir = await mkdtemp(join(tmpdir(), 'kt-gateway-tracking-'));
  await mkdir(join(dir, 'frames'));
  // The same photo again and again: its people stand still, so each keeps one track.
  for (let i = 1; i <= 6; i++) await copyFile(demoPhotoPath(2), join(dir, 'frames', `00${i}.jpg`));
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A sink that keeps every result per camera. */
function recordingSink(results: Map<string, StreamResult[]>) {
  return definePlugin({
    kind: 'sink',
    name: 'record',
    description: 'keeps every result per camera (test)',
    schema: Type.Object({}, { additionalProperties: false }),
    create: () => ({
      onResult(result, ctx) {
        results.set(ctx.streamId, [...(results.get(ctx.streamId) ?? []), result as StreamResult]);
      },
    }),
  });
}

describe('gateway cameras with tracking', () => {
  it('passes each camera its tracking option; sinks see track ids and track events', async () => {
    const results = new Map<string, StreamResult[]>();
    const registry = gatewayRegistry();
    registry.register(recordingSink(results));
    // 1 frame/s: the server keeps up, so (almost) every frame is analysed; a camera keeps its newest frame otherwise.
    const source = { type: 'folder', path: join(dir, 'frames'), fps: 1 };
    const config = await resolveGatewayConfig(
      {
        server: server.address,
        cameras: [
          { id: 'tracked', source, tasks: ['age'], tracking: { minHits: 2, reuse: true } },
          { id: 'untracked', source, tasks: ['age'], tracking: false },
        ],
        sinks: [{ type: 'record' }],
      },
      'gw.yaml',
      dir,
    );
    const gateway = await Gateway.start(config, { log: silentLogger, registry });
    try {
      await vi.waitFor(
        () => {
          expect(results.get('tracked')?.length).toBeGreaterThanOrEqual(4);
          expect(results.get('untracked')?.length).toBeGreaterThanOrEqual(4);
        },
        { timeout: 60_000, interval: 100 },
      );
    } finally {
      await gateway.stop();
    }
    const tracked = results.get('tracked')!;
    const faces = tracked.flatMap((r) => r.faces);
    expect(faces.length).toBeGreaterThanOrEqual(4 * 3);
    expect(faces.every((f) => (f.trackId ?? 0) > 0 && f.answerAges?.some((a) => a.task === 'age'))).toBe(true);
    // One track per person of the photo: confirmed (new) on the second frame, the same ids on every frame after.
    const firstIds = tracked[0]!.faces.map((f) => f.trackId).sort();
    expect(new Set(faces.map((f) => f.trackId)).size).toBe(firstIds.length);
    const news = tracked.flatMap((r) => r.trackEvents).filter((e) => e.type === 'new');
    expect(news.map((e) => e.trackId).sort()).toEqual(firstIds);
    expect(tracked[1]!.trackEvents.filter((e) => e.type === 'new')).toHaveLength(firstIds.length);

    const untracked = results.get('untracked')!;
    expect(untracked.flatMap((r) => r.faces).every((f) => f.trackId === 0)).toBe(true);
    expect(untracked.flatMap((r) => r.trackEvents)).toEqual([]);
  });
});
