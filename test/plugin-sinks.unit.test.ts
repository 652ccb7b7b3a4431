// The sinks' pure parts without sockets: Retry-After parsing, the delivery queue waiting as told, the jsonl sink's
// lines, events and size rotation.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { DeliveryQueue, type DeliveryOutcome } from '../src/sdk/delivery-queue.js';
import { retryAfterMs } from '../src/sdk/plugin-webhook.js';
import { jsonlPlugin, silentLogger, type AnalysisResult } from '../src/sdk/index.js';

function result(sequence: number, faces = 1): AnalysisResult {
  return {
    sequence,
    captureTimeUnixMs: 1_700_000_000_000 + sequence,
    frameWidthPx: 640,
    frameHeightPx: 480,
    faces: Array.from({ length: faces }, (_, i) => ({ box: { x: i * 60, y: 0, width: 50, height: 50 }, score: 0.9, keypoints: [] })),
    timings: { queueMs: 0, decodeMs: 0, detectMs: 0, tasks: {}, totalMs: 0 },
    models: [],
  };
}

describe('Retry-After', () => {
  it('reads delta-seconds and HTTP dates, and ignores what it cannot read', () => {
    const now = Date.parse('Sun, 29 Nov 2026 10:00:00 GMT');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Sun, 29 Nov 2026 10:00:07 GMT', now)).toBe(7000);
    expect(retryAfterMs('Sun, 29 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('-5', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('', now)).toBeUndefined();
  });

  it('makes the delivery queue wait as told instead of its backoff', async () => {
    const delays: number[] = [];
    const timeout = vi.spyOn(globalThis, 'setTimeout');
    const outcomes: DeliveryOutcome[] = [{ retryAfterMs: 40 }, 'retry', 'ok'];
    const queue = new DeliveryQueue<string>({
      maxQueued: 4,
      maxRetries: 5,
      backoff: { initialMs: 3, maxMs: 3, multiplier: 1, jitter: 0 },
      deliver: () => Promise.resolve(outcomes.shift() ?? 'ok'),
    });
    queue.push('a');
    await vi.waitFor(() => expect(queue.counters()).toMatchObject({ delivered: 1, retries: 2 }));
    for (const call of timeout.mock.calls) if (typeof call[1] === 'number') delays.push(call[1]);
    timeout.mockRestore();
    expect(delays).toContain(40);
    expect(delays).toContain(3);
    await queue.stop(0);
  });
});

describe('jsonl sink', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-jsonl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one faces event per line, events too, and rotates by size keeping maxFiles', async () => {
    const path = join(dir, 'sub', 'faces.jsonl');
    const { instance } = await jsonlPlugin({ path, maxBytes: 1200, maxFiles: 2 }, { log: silentLogger });
    await instance.onStart?.();
    await instance.onResult(result(1, 0), { streamId: 'door' }); // no faces: skipped by default
    const writes = [];
    for (let s = 2; s <= 31; s += 1) writes.push(instance.onResult(result(s, 2), { streamId: s % 2 ? 'door' : 'lobby' }));
    writes.push(
      instance.onEvent!({ type: 'camera-state', cameraId: 'lobby', state: 'offline', reason: 'connection refused', timeUnixMs: 5 }),
    );
    await Promise.all(writes);
    await instance.onStop?.();
    await instance.onStop?.(); // idempotent
    const files = readdirSync(join(dir, 'sub')).sort();
    expect(files).toEqual(['faces.jsonl', 'faces.jsonl.1', 'faces.jsonl.2']);
    const lines = (f: string): Record<string, unknown>[] =>
      readFileSync(join(dir, 'sub', f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const kept = [...lines('faces.jsonl.2'), ...lines('faces.jsonl.1'), ...lines('faces.jsonl')];
    for (const f of files) expect(readFileSync(join(dir, 'sub', f)).length).toBeLessThanOrEqual(1200);
    const sequences = kept.filter((l) => l['sequence'] !== undefined).map((l) => l['sequence'] as number);
    // The newest lines survive, in order, with no gap; the oldest went with the deleted rotation.
    expect(sequences.at(-1)).toBe(31);
    expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => 32 - sequences.length + i));
    expect(sequences.length).toBeLessThan(30);
    expect(kept[0]).toMatchObject({ stream: expect.stringMatching(/^(door|lobby)$/) as string });
    expect((kept.find((l) => l['sequence'] === 31)!['faces'] as unknown[]).length).toBe(2);
    expect(kept.at(-1)).toEqual({
      event: 'camera-state',
      cameraId: 'lobby',
      state: 'offline',
      reason: 'connection refused',
      timeUnixMs: 5,
    });
    expect(instance.stats?.()).toMatchObject({ lines: 31, rotations: expect.any(Number) as number });
    expect(existsSync(`${path}.3`)).toBe(false);
  });
});
