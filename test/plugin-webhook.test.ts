// The webhook sink against a real local HTTP server: 500 three times then 200, and 503 with Retry-After (seconds or an
// HTTP date): every event is accepted exactly once and in order per camera, with one idempotency key per event.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PluginHost, silentLogger, webhookPlugin, type AnalysisResult } from '../src/sdk/index.js';
import { freePort } from './helpers/net.js';

interface Request {
  id: string;
  status: number;
  body: { stream: string; sequence: number; faces: unknown[] };
}

/** A receiver whose answer to each request comes from `answer(n)` (n counts every request from 0). */
async function receiver(answer: (n: number) => { status: number; headers?: Record<string, string> }): Promise<{
  url: string;
  requests: Request[];
  close(): Promise<void>;
}> {
  const requests: Request[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { status, headers } = answer(requests.length);
      requests.push({
        id: String(req.headers['x-kt-event-id']),
        status,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Request['body'],
      });
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/faces`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function result(sequence: number): AnalysisResult {
  return {
    sequence,
    captureTimeUnixMs: 1_700_000_000_000 + sequence,
    frameWidthPx: 640,
    frameHeightPx: 480,
    faces: [{ box: { x: 1, y: 2, width: 60, height: 60 }, score: 0.9, keypoints: [], age: { years: 30 } }],
    timings: { queueMs: 0, decodeMs: 0, detectMs: 0, tasks: {}, totalMs: 0 },
    models: [],
  };
}

/** The accepted (2xx) events per camera, in arrival order. */
function acceptedByCamera(requests: readonly Request[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const r of requests.filter((q) => q.status < 300)) (out[r.body.stream] ??= []).push(r.body.sequence);
  return out;
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe('webhook sink', () => {
  it('answers 500 three times then 200: every event of both cameras accepted exactly once, in order per camera', async () => {
    const rx = await receiver((n) => ({ status: n < 3 ? 500 : 200 }));
    close = rx.close;
    const host = new PluginHost(
      webhookPlugin,
      { url: rx.url, retryBackoffMs: 20, maxRetryBackoffMs: 100, maxRetries: 5 },
      { log: silentLogger },
    );
    await host.start();
    for (let sequence = 1; sequence <= 8; sequence += 1) {
      await host.deliver(result(sequence), { streamId: 'door' });
      await host.deliver(result(sequence), { streamId: 'lobby' });
    }
    await vi.waitFor(() => expect(rx.requests.filter((r) => r.status === 200)).toHaveLength(16), { timeout: 10_000 });
    await host.stop();
    const accepted = rx.requests.filter((r) => r.status === 200).map((r) => r.id);
    console.info(
      `webhook 500x3: ${rx.requests.length} requests, statuses ${rx.requests.map((r) => r.status).join(',')}; ` +
        `counters ${JSON.stringify(host.health().counters)}`,
    );
    expect(rx.requests.slice(0, 3).map((r) => r.status)).toEqual([500, 500, 500]);
    expect(new Set(accepted).size).toBe(accepted.length); // no event accepted twice
    expect(acceptedByCamera(rx.requests)).toEqual({ door: [1, 2, 3, 4, 5, 6, 7, 8], lobby: [1, 2, 3, 4, 5, 6, 7, 8] });
    // Each refused request was the same event again (same idempotency key) until it was accepted.
    const refused = rx.requests.filter((r) => r.status === 500).map((r) => r.id);
    for (const id of refused) expect(accepted).toContain(id);
    expect(host.health().counters).toMatchObject({ delivered: 16, retries: 3, failed: 0, discarded: 0, queued: 0 });
  });

  it('honours Retry-After in seconds and as an HTTP date instead of its own (ten-minute) backoff', async () => {
    const retryAfter = [{ 'retry-after': '1' }, { 'retry-after': new Date(Date.now() + 1000).toUTCString() }];
    const rx = await receiver((n) => (n < 2 ? { status: 503, headers: retryAfter[n]! } : { status: 200 }));
    close = rx.close;
    const tenMinutes = 600_000;
    const host = new PluginHost(
      webhookPlugin,
      { url: rx.url, retryBackoffMs: tenMinutes, maxRetryBackoffMs: tenMinutes, flushTimeoutMs: 10_000 },
      { log: silentLogger },
    );
    await host.start();
    for (let sequence = 1; sequence <= 3; sequence += 1) await host.deliver(result(sequence), { streamId: 'door' });
    // While it waits as told, the sink says why it is offline.
    await vi.waitFor(() => expect(host.health()).toMatchObject({ state: 'offline', reason: `${rx.url}: answered 503` }));
    await vi.waitFor(() => expect(rx.requests.filter((r) => r.status === 200)).toHaveLength(3), { timeout: 15_000 });
    expect(host.health().state).toBe('online');
    await host.stop();
    expect(rx.requests.map((r) => `${r.status} ${r.id}`)).toEqual(['503 door/1', '503 door/1', '200 door/1', '200 door/2', '200 door/3']);
  });

  it('cuts a Retry-After longer than maxRetryAfterMs', async () => {
    const rx = await receiver((n) => (n === 0 ? { status: 429, headers: { 'retry-after': '3600' } } : { status: 200 }));
    close = rx.close;
    const host = new PluginHost(webhookPlugin, { url: rx.url, maxRetryAfterMs: 50 }, { log: silentLogger });
    await host.start();
    await host.deliver(result(1), { streamId: 'door' });
    await vi.waitFor(() => expect(rx.requests.map((r) => r.status)).toEqual([429, 200]), { timeout: 10_000 });
    await host.stop();
  });

  it('reports an unreachable receiver as offline with the reason, and gives up after its retries', async () => {
    const url = `http://127.0.0.1:${await freePort()}/faces`; // nothing listens there
    const host = new PluginHost(webhookPlugin, { url, retryBackoffMs: 5, maxRetryBackoffMs: 10, maxRetries: 2 }, { log: silentLogger });
    await host.start();
    await host.deliver(result(1), { streamId: 'door' });
    await vi.waitFor(() => expect(host.health().counters).toMatchObject({ failed: 1, retries: 2 }), { timeout: 10_000 });
    expect(host.health()).toMatchObject({ state: 'offline', failures: 0 });
    expect(host.health().reason).toMatch(new RegExp(`^${url}: fetch failed: .*ECONNREFUSED`));
    await host.stop();
  });
});
