// The snapshot sink (src/gateway/sinks/snapshot.ts) without sockets: the best face is cropped with its margin from JPEG and
// raw frames, written as JPEG with a JSON sidecar, one per interval per camera, and old snapshots are pruned by count.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeImage, encodeJpeg, type RgbImage } from '../src/core/image.js';
import { bestFace, cropRect, cropRgb, snapshotSink } from '../src/gateway/sinks/snapshot.js';
import { silentLogger, type AnalysisResult, type FaceResult, type SourceFrame } from '../src/sdk/index.js';

/** 200x100 RGB: red grows with x, green with y. */
function gradient(): RgbImage {
  const width = 200;
  const height = 100;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y += 1)
    for (let x = 0; x < width; x += 1) data.set([Math.round((x * 255) / width), Math.round((y * 255) / height), 128], (y * width + x) * 3);
  return { data, width, height };
}

const face = (x: number, y: number, size: number, score: number): FaceResult => ({
  box: { x, y, width: size, height: size },
  score,
  keypoints: [],
});

function result(sequence: number, faces: FaceResult[], captureTimeUnixMs = 1_700_000_000_000 + sequence * 1000): AnalysisResult {
  return {
    sequence,
    captureTimeUnixMs,
    frameWidthPx: 200,
    frameHeightPx: 100,
    faces,
    timings: { queueMs: 0, decodeMs: 0, detectMs: 0, tasks: {}, totalMs: 0 },
    models: [],
  };
}

describe('snapshot sink', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-snapshot-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('picks the best face and crops it with the margin, clipped to the frame', () => {
    expect(bestFace([face(0, 0, 10, 0.5), face(50, 0, 20, 0.9), face(80, 0, 40, 0.9)])?.box.x).toBe(80);
    expect(bestFace([])).toBeUndefined();
    expect(cropRect({ x: 100, y: 40, width: 20, height: 20 }, 0.5, 200, 100)).toEqual({ x: 90, y: 30, width: 40, height: 40 });
    expect(cropRect({ x: -10, y: 90, width: 20, height: 20 }, 0, 200, 100)).toEqual({ x: 0, y: 90, width: 10, height: 10 });
    const image = gradient();
    const crop = cropRgb(image, { x: 150, y: 50, width: 2, height: 2 });
    expect([...crop.data.subarray(0, 3)]).toEqual([...image.data.subarray((50 * 200 + 150) * 3, (50 * 200 + 150) * 3 + 3)]);
  });

  it('writes a JPEG crop (+ sidecar) per interval per camera from JPEG and raw frames, keeping maxFiles', async () => {
    const image = gradient();
    const jpeg = await encodeJpeg(image, 95);
    const { instance } = await snapshotSink({ path: dir, minIntervalMs: 1500, maxFiles: 2, margin: 0.5 }, { log: silentLogger });
    const jpegFrame = (sequence: number): SourceFrame => ({ image: jpeg, sequence, captureTimeUnixMs: 0 });
    const rawFrame = (sequence: number): SourceFrame => ({
      image: { data: image.data, widthPx: 200, heightPx: 100, pixelFormat: 'RGB8' },
      sequence,
      captureTimeUnixMs: 0,
    });
    const faces = [face(10, 10, 20, 0.6), face(140, 40, 20, 0.95)];
    await instance.onResult(result(1, faces), { streamId: 'door', frame: jpegFrame(1) });
    await instance.onResult(result(2, faces), { streamId: 'door', frame: jpegFrame(2) }); // 1 s later: inside the interval
    await instance.onResult(result(3, faces), { streamId: 'door', frame: rawFrame(3) });
    await instance.onResult(result(5, faces), { streamId: 'door', frame: rawFrame(5) });
    await instance.onResult(result(7, []), { streamId: 'door', frame: rawFrame(7) }); // no face: nothing
    await instance.onResult(result(9, faces), { streamId: 'lobby' }); // no frame: counted, nothing written
    const files = readdirSync(join(dir, 'door')).sort();
    expect(files).toEqual(['1700000003000-3.jpg', '1700000003000-3.json', '1700000005000-5.jpg', '1700000005000-5.json']);
    const written = await decodeImage(readFileSync(join(dir, 'door', '1700000005000-5.jpg')));
    expect([written.width, written.height]).toEqual([40, 40]); // 20 px face + 50 % margin per side
    // The crop shows the face's part of the gradient: red ~ x = 130..170, green ~ y = 30..70.
    const centre = (20 * 40 + 20) * 3;
    expect(Math.abs(written.data[centre]! - Math.round((150 * 255) / 200))).toBeLessThan(12);
    expect(Math.abs(written.data[centre + 1]! - Math.round((50 * 255) / 100))).toBeLessThan(12);
    const sidecar = JSON.parse(readFileSync(join(dir, 'door', '1700000005000-5.json'), 'utf8')) as { stream: string; faces: unknown[] };
    expect(sidecar).toMatchObject({ stream: 'door', sequence: 5, faces: [{ box: { x: 140, y: 40, width: 20, height: 20 }, score: 0.95 }] });
    expect(instance.stats?.()).toEqual({ written: 3, skippedNoFrame: 1, skippedInterval: 1, pruned: 1 });
  });
});
