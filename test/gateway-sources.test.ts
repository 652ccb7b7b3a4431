// The other built-in sources end to end against a real server: `file` (a video; without loop it ends), `http` (a video
// over HTTP through ffmpeg), `snapshot` (a JPEG URL polled; an HTTP 500 is the state offline naming the URL) and the
// motion gate skipping a still video's frames while still letting the first one through.
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../src/core/log-types.js';
import { loadGatewayConfig } from '../src/gateway/config.js';
import { Gateway } from '../src/gateway/gateway.js';
import type { RunningServer } from '../src/server/server.js';
import { demoPhotoPath } from './helpers/faces.js';
import { makePhotoVideo } from './helpers/rtsp.js';
import { startTestServer } from './helpers/server-fixture.js';

/** A short H.264 video of a demo photo: panning (moving) or still. */
const makeVideo = (path: string, moving: boolean, seconds: number): void => makePhotoVideo(demoPhotoPath(1), path, { moving, seconds });

describe('gateway sources: file, http, snapshot; motion gate', () => {
  let server: RunningServer;
  let http: Server;
  let base: string;
  let dir: string;

  beforeAll(async () => {
    server = await startTestServer({ tasks: ['age'] });
    dir = await mkdtemp(join(tmpdir(), 'kt-gateway-sources-'));
    makeVideo(join(dir, 'moving.mp4'), true, 4);
    makeVideo(join(dir, 'still.mp4'), false, 30);
    // What network cameras serve over HTTP is a stream (MPEG-TS, MJPEG), not an MP4 whose index comes last.
    makeVideo(join(dir, 'moving.ts'), true, 4);
    const jpeg = await readFile(demoPhotoPath(3));
    http = createServer((req, res) => {
      if (req.url === '/snapshot.jpg') res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
      else if (req.url === '/moving.ts') {
        res.writeHead(200, { 'content-type': 'video/mp2t' });
        createReadStream(join(dir, 'moving.ts')).pipe(res);
      } else res.writeHead(500).end('broken camera');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => http?.close(resolve));
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs file, http and snapshot cameras; a failing snapshot URL is offline with the URL and status', async () => {
    await writeFile(
      join(dir, 'sources.yaml'),
      `server: ${server.address}
cameras:
  - id: clip
    source: { type: file, path: ./moving.mp4, fps: 5, realtime: false }
    tasks: [age]
  - id: web
    source: { type: http, url: ${base}/moving.ts, fps: 5, transport: nv12 }
    tasks: [age]
  - id: snap
    source: { type: snapshot, url: ${base}/snapshot.jpg, fps: 2 }
    tasks: [age]
  - id: dead
    source: { type: snapshot, url: ${base}/broken.jpg, fps: 2 }
  - id: still
    source: { type: file, path: ./still.mp4, fps: 5, loop: true }
    filters: [{ type: motion, keepAliveMs: 0 }]
    tasks: [age]
`,
    );
    const gateway = await Gateway.start(await loadGatewayConfig(join(dir, 'sources.yaml')), { log: silentLogger });
    try {
      const camera = (id: string) => gateway.status().cameras.find((c) => c.id === id)!;
      await vi.waitFor(
        () => {
          for (const id of ['clip', 'web', 'snap', 'still']) expect(camera(id).counters.resultsWithFaces, id).toBeGreaterThan(0);
          expect(camera('dead').state).toBe('offline');
          expect(camera('still').counters.framesFiltered['motion'] ?? 0).toBeGreaterThan(3);
          // The file without loop is read to its end and then stops: the end of input, not a lost camera.
          expect(camera('clip').reason).toBe('path "' + join(dir, 'moving.mp4') + '": end of input');
        },
        { timeout: 60_000, interval: 200 },
      );
      expect(camera('dead').reason).toBe(`url "${base}/broken.jpg": HTTP 500`);
      expect(camera('snap').state).toBe('online');
      // The still scene: the first frame went to the server, the identical ones after it did not.
      expect(camera('still').counters.framesSent).toBe(1);
      expect(camera('still').filters[0]!.counters['framesSkipped']).toBe(camera('still').counters.framesFiltered['motion']);
    } finally {
      await gateway.stop();
    }
  });
});
