// Limits a shared network needs: the HTTP/2 receive windows the server announces (several camera streams can share one
// connection; bench/stream-sharing.ts measures the latency effect), and the decoded-pixel budget across concurrent
// frames (a burst of huge images is decoded one after another; every frame is still answered).
import { connect, type ClientHttp2Session } from 'node:http2';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, analyzeRequest, encodedImage, faceAnalysisClient, startTestServer } from './helpers/server-fixture.js';
import { sampleValue, scrape } from './helpers/prometheus.js';
import { Task } from '../src/gen/kt/v1/common.js';
import type { RunningServer } from '../src/server/server.js';

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Opens a plain HTTP/2 connection and reads the windows the server granted it: per call (SETTINGS) and per connection. */
async function announcedWindows(address: string): Promise<{ stream: number; connection: number }> {
  const session: ClientHttp2Session = connect(`http://${address}`);
  try {
    await new Promise<void>((ok, fail) => {
      session.once('remoteSettings', () => ok());
      session.once('error', fail);
    });
    // The server's connection WINDOW_UPDATE follows its SETTINGS; wait for it (bounded), then read the window.
    for (let i = 0; i < 50 && (session.state.remoteWindowSize ?? 0) <= 65_535; i++) await new Promise((r) => setTimeout(r, 20));
    return { stream: session.remoteSettings.initialWindowSize ?? 0, connection: session.state.remoteWindowSize ?? 0 };
  } finally {
    session.close();
  }
}

describe('HTTP/2 receive windows', () => {
  it('announces the configured per-call and per-connection windows (8 MiB / 32 MiB by default)', async () => {
    server = await startTestServer({ tasks: ['emotion'] });
    expect(server.config.http2StreamWindowBytes).toBe(8 * 1048576);
    expect(await announcedWindows(server.address)).toEqual({ stream: 8 * 1048576, connection: 32 * 1048576 });
  });

  it('uses what the config says, down to HTTP/2 default of 65535', async () => {
    server = await startTestServer({ tasks: ['emotion'], http2StreamWindowBytes: 65_535, http2ConnectionWindowBytes: 65_535 });
    expect(await announcedWindows(server.address)).toEqual({ stream: 65_535, connection: 65_535 });
  });
});

describe('decoded-pixel budget', () => {
  it('decodes three concurrent 7000x7000 PNGs one after another and answers every one', async () => {
    // Each frame needs the whole budget: the second and third must wait for the first to be answered.
    server = await startTestServer({
      tasks: ['emotion'],
      maxFramePixels: 49_000_000,
      maxPixelsInFlight: 49_000_000,
      maxConcurrentInferences: 3,
      metricsAddress: '127.0.0.1:0',
    });
    const png = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: '#6b8e23' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(png.length).toBeLessThan(1 << 20);
    const client = faceAnalysisClient(server);
    try {
      const answers = await Promise.all([1, 2, 3].map((n) => analyze(client, analyzeRequest(encodedImage(png), [Task.TASK_EMOTION], n))));
      expect(answers.map((a) => [a.result?.sequence, a.result?.frameWidthPx, a.result?.frameHeightPx])).toEqual([
        [1, 7000, 7000],
        [2, 7000, 7000],
        [3, 7000, 7000],
      ]);
      const metrics = await scrape(server.metricsAddress);
      expect(sampleValue(metrics, 'kt_frame_pixel_budget_waits')).toBeGreaterThanOrEqual(2);
      expect(sampleValue(metrics, 'kt_frame_pixels_in_flight')).toBe(0);
      expect(sampleValue(metrics, 'kt_frame_pixels_waiting')).toBe(0);
    } finally {
      client.close();
    }
  });

  it('rejects a budget smaller than the largest accepted frame', async () => {
    await expect(startTestServer({ maxFramePixels: 10_000_000, maxPixelsInFlight: 5_000_000 })).rejects.toThrow(
      /maxPixelsInFlight \(5000000\) must be 0 or at least maxFramePixels \(10000000\)/,
    );
  });
});
