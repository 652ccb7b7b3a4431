// Unit tests of the one-pass crop kernel (crop + resize + normalise) against the reference resampler, warp and
// normalize(), on a real photo, and of the native crop + resize.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/core/errors.js';
import { cropResizeRgb, decodeImage, type RgbImage } from '../src/core/image.js';
import { alignmentTemplate, fitSimilarity, warpSimilarity } from '../src/models/processing/align.js';
import { cropsToTensor } from '../src/models/processing/crop-kernel.js';
import { cropRect, normalize, resampleRegion, type NormalizeSpec } from '../src/models/processing/index.js';

const photo = decodeImage(await readFile('node_modules/@vladmandic/face-api/demo/sample1.jpg'));

const specs: Record<string, NormalizeSpec> = {
  'NHWC BGR 0..255': { layout: 'NHWC', colorOrder: 'BGR', scale: 1, mean: [0], std: [1] },
  'NCHW RGB mean/std': { layout: 'NCHW', colorOrder: 'RGB', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  'GRAY -1..1': { layout: 'NHWC', colorOrder: 'GRAY', scale: 1 / 255, mean: [0.5], std: [0.5] },
};

/** Largest difference in grey levels (the kernel skips the reference's rounding to bytes: at most half a level). */
function maxLevels(a: Float32Array, b: Float32Array, spec: NormalizeSpec): number {
  const perLevel = Math.max(...spec.std.map((s) => spec.scale / Math.abs(s)));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / perLevel);
  return worst;
}

describe('cropsToTensor', () => {
  // Shrinking (faces bigger than the input), enlarging, fractional corners, and boxes past the frame's edges.
  const boxes = [
    { x: 300.4, y: 200.7, width: 190.2, height: 210.9 },
    { x: -40.5, y: 1100, width: 250, height: 240 },
    { x: 1850, y: -30, width: 120, height: 100 },
    { x: 900, y: 600, width: 40, height: 44 },
  ];
  for (const [name, spec] of Object.entries(specs)) {
    it(`box crops match resampleRegion + normalize within half a grey level (${name})`, async () => {
      const frame = await photo;
      const crop = { size: 112, cropMargin: 0.2, cropSquare: true };
      const regions = boxes.map((b) => cropRect(b, crop, frame));
      const reference = normalize(
        regions.map((r) => resampleRegion(frame, r, crop.size, crop.size)),
        spec,
      );
      const fused = cropsToTensor(
        frame,
        regions.map((region) => ({ kind: 'region', region })),
        crop.size,
        spec,
      );
      expect(fused.dims).toEqual(reference.dims);
      expect(maxLevels(fused.data, reference.data, spec)).toBeLessThanOrEqual(0.5001);
    });
  }

  it('aligned crops match warpSimilarity + normalize within half a grey level, shrinking and enlarging', async () => {
    const frame = await photo;
    const spec = specs['NHWC BGR 0..255']!;
    const eyesNoseMouth = [
      { x: 350, y: 260 },
      { x: 430, y: 250 },
      { x: 395, y: 310 },
      { x: 390, y: 360 },
    ];
    for (const size of [64, 150, 300]) {
      const toFrame = fitSimilarity(alignmentTemplate(size), eyesNoseMouth);
      const reference = normalize(warpSimilarity(frame, toFrame, size), spec);
      const fused = cropsToTensor(frame, [{ kind: 'similarity', toSource: toFrame }], size, spec);
      expect(maxLevels(fused.data, reference.data, spec)).toBeLessThanOrEqual(0.5001);
    }
  });

  it('pads with black past the frame and rejects bad input with a clear error', () => {
    const white: RgbImage = { data: new Uint8Array(4 * 4 * 3).fill(255), width: 4, height: 4 };
    const spec = specs['NHWC BGR 0..255']!;
    // The left half of the region lies outside the frame.
    const t = cropsToTensor(white, [{ kind: 'region', region: { x: -4, y: 0, width: 8, height: 4 } }], 2, spec);
    expect([...t.data]).toEqual([0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]);
    expect(() => cropsToTensor(white, [], 2, spec)).toThrow(InvalidInputError);
    expect(() => cropsToTensor(white, [{ kind: 'region', region: { x: 0, y: 0, width: 0, height: 4 } }], 2, spec)).toThrow(/positive size/);
    expect(() => cropsToTensor({ ...white, width: 5 }, [{ kind: 'region', region: { x: 0, y: 0, width: 2, height: 2 } }], 2, spec)).toThrow(
      /bytes/,
    );
  });
});

describe('cropResizeRgb', () => {
  it('cuts and resizes like the reference resampler, to within a few grey levels on a real photo', async () => {
    const frame = await photo;
    const rect = { left: 280, top: 160, width: 262, height: 262 };
    const native = await cropResizeRgb(frame, rect, 224, 224);
    const reference = resampleRegion(frame, { x: rect.left, y: rect.top, width: rect.width, height: rect.height }, 224, 224);
    let sum = 0;
    for (let i = 0; i < native.data.length; i++) sum += Math.abs(native.data[i]! - reference.data[i]!);
    // Both are antialiased linear filters (libvips widens its kernel with the shrink; the reference averages taps).
    expect(sum / native.data.length).toBeLessThan(2);
  });

  it('rejects a rectangle outside the image', async () => {
    const frame = await photo;
    await expect(cropResizeRgb(frame, { left: frame.width - 10, top: 0, width: 20, height: 20 }, 8, 8)).rejects.toThrow(/not inside/);
  });
});
