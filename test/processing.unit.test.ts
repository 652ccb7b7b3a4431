// Unit tests of frame decoding, raw-frame conversion, crops, normalisation and output decoding, on edge cases.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/core/errors.js';
import { decodeImage, encodePng, fromRaw, type RgbImage } from '../src/core/image.js';
import {
  blazefaceAnchors,
  cropFace,
  cropRect,
  decodeAgeBins,
  decodeBlazeface,
  decodeClassification,
  decodeGender,
  decodeOutput,
  fitFrame,
  l2Normalize,
  landmarksToFrame,
  nonMaxSuppression,
  normalize,
  resampleRegion,
  selectBlazefaceHeads,
  softmax,
} from '../src/models/processing/index.js';

const samplePath = 'node_modules/@vladmandic/face-api/demo/sample1.jpg';

function image(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  return { data, width, height };
}

const px = (img: RgbImage, x: number, y: number): number[] => [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];

describe('fromRaw', () => {
  it('passes tightly packed RGB8 through without a copy', () => {
    const data = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const rgb = fromRaw({ data, width: 2, height: 1, format: 'RGB8' });
    expect(rgb.data).toBe(data);
  });

  it('drops row padding given by the stride', () => {
    // 2x2 RGB8 with 2 padding bytes per row.
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 99, 99, 7, 8, 9, 10, 11, 12, 99, 99]);
    const rgb = fromRaw({ data, width: 2, height: 2, format: 'RGB8', stride: 8 });
    expect([...rgb.data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('swaps BGR8, drops RGBA8 alpha and expands GRAY8', () => {
    expect([...fromRaw({ data: new Uint8Array([1, 2, 3]), width: 1, height: 1, format: 'BGR8' }).data]).toEqual([3, 2, 1]);
    expect([...fromRaw({ data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), width: 2, height: 1, format: 'RGBA8' }).data]).toEqual([
      1, 2, 3, 5, 6, 7,
    ]);
    const gray = fromRaw({ data: new Uint8Array([10, 20, 0, 30, 40, 0]), width: 2, height: 2, format: 'GRAY8', stride: 3 });
    expect([...gray.data]).toEqual([10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40]);
  });

  it('rejects a stride shorter than a row', () => {
    expect(() => fromRaw({ data: new Uint8Array(10), width: 2, height: 2, format: 'RGB8', stride: 5 })).toThrow(
      /stride 5 is less than width \* 3 = 6/,
    );
    expect(() => fromRaw({ data: new Uint8Array(12), width: 4, height: 2, format: 'NV12', stride: 3 })).toThrow(InvalidInputError);
  });

  it('rejects a buffer of the wrong length, naming both lengths', () => {
    expect(() => fromRaw({ data: new Uint8Array(11), width: 2, height: 2, format: 'RGB8' })).toThrow(/needs 12 bytes, got 11/);
    expect(() => fromRaw({ data: new Uint8Array(13), width: 2, height: 2, format: 'RGB8' })).toThrow(InvalidInputError);
    expect(() => fromRaw({ data: new Uint8Array(16), width: 2, height: 2, format: 'RGB8', stride: 7 })).toThrow(/needs 14 bytes, got 16/);
    expect(() => fromRaw({ data: new Uint8Array(8), width: 4, height: 2, format: 'NV12' })).toThrow(/needs 12 bytes/);
  });

  it('rejects zero, negative, fractional and huge dimensions', () => {
    for (const [w, h] of [
      [0, 2],
      [2, 0],
      [-1, 2],
      [1.5, 2],
      [Number.NaN, 2],
    ] as const) {
      expect(() => fromRaw({ data: new Uint8Array(0), width: w, height: h, format: 'RGB8' })).toThrow(InvalidInputError);
    }
    expect(() => fromRaw({ data: new Uint8Array(0), width: 100_000, height: 100_000, format: 'GRAY8' })).toThrow(/over the limit/);
    expect(() => fromRaw({ data: new Uint8Array(12), width: 2, height: 2, format: 'RGB8' }, { maxPixels: 3 })).toThrow(
      /over the limit of 3/,
    );
  });

  it('rejects unknown formats and odd NV12 sizes', () => {
    expect(() => fromRaw({ data: new Uint8Array(4), width: 2, height: 2, format: 'YUYV' as 'RGB8' })).toThrow(
      /unsupported raw pixel format "YUYV"/,
    );
    expect(() => fromRaw({ data: new Uint8Array(9 + 3), width: 3, height: 3, format: 'NV12' })).toThrow(/must be even/);
  });

  it('converts NV12 (BT.601 limited range) of a known pattern, with a padded stride', () => {
    // 4x2 frame, stride 6: columns 0..1 share neutral chroma (black, white), columns 2..3 share pure red's chroma.
    const Y = [16, 235, 81, 81, 0, 0];
    const UV = [128, 128, 90, 240, 0, 0];
    const rgb = fromRaw({ data: new Uint8Array([...Y, ...Y, ...UV]), width: 4, height: 2, format: 'NV12', stride: 6 });
    for (const y of [0, 1]) {
      expect(px(rgb, 0, y)).toEqual([0, 0, 0]);
      expect(px(rgb, 1, y)).toEqual([255, 255, 255]);
      for (const x of [2, 3]) {
        const [r, g, b] = px(rgb, x, y);
        expect(r).toBeGreaterThanOrEqual(253);
        expect(g).toBeLessThanOrEqual(2);
        expect(b).toBeLessThanOrEqual(2);
      }
    }
    // Full range: Y is the grey level itself.
    const full = fromRaw({ data: new Uint8Array([0, 128, 0, 128, 128, 128]), width: 2, height: 2, format: 'NV12' }, { yuvRange: 'full' });
    expect(px(full, 1, 0)).toEqual([128, 128, 128]);
    expect(px(full, 0, 1)).toEqual([0, 0, 0]);
  });
});

describe('decodeImage / encodePng', () => {
  it('decodes a JPEG into tightly packed RGB8', async () => {
    const img = await decodeImage(await readFile(samplePath));
    expect([img.width, img.height]).toEqual([1920, 1280]);
    expect(img.data.length).toBe(1920 * 1280 * 3);
  });

  it('round-trips through PNG exactly', async () => {
    const src = image(7, 5, (x, y) => [x * 30, y * 50, (x + y) * 10]);
    const back = await decodeImage(await encodePng(src));
    expect([back.width, back.height]).toEqual([7, 5]);
    expect([...back.data]).toEqual([...src.data]);
  });

  it('rejects empty, unsupported, truncated and corrupt input with InvalidInputError', async () => {
    const jpeg = await readFile(samplePath);
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow(/empty/);
    await expect(decodeImage(Buffer.from('GIF89a not what we take'))).rejects.toThrow(/unsupported image format/);
    await expect(decodeImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).rejects.toThrow(InvalidInputError);
    await expect(decodeImage(jpeg.subarray(0, jpeg.length >> 1))).rejects.toThrow(/truncated JPEG/);
    await expect(decodeImage(jpeg.subarray(0, 300))).rejects.toThrow(InvalidInputError);
    const png = Buffer.from(await encodePng(image(4, 4, () => [1, 2, 3])));
    png.fill(0x55, 40, 60);
    await expect(decodeImage(png)).rejects.toThrow(/corrupt PNG|truncated PNG/);
  });

  it('rejects an image over the pixel limit before decoding it', async () => {
    await expect(decodeImage(await readFile(samplePath), { maxPixels: 1_000_000 })).rejects.toThrow(
      /1920x1280 = 2457600 pixels, over the limit of 1000000/,
    );
  });
});

describe('crop', () => {
  const frame = { width: 100, height: 80 };

  it('makes the box square on its longer side, then adds the margin on each side', () => {
    expect(cropRect({ x: 40, y: 20, width: 20, height: 40 }, { cropMargin: 0.25, cropSquare: true }, frame)).toEqual({
      x: 20,
      y: 10,
      width: 60,
      height: 60,
    });
    expect(cropRect({ x: 40, y: 20, width: 20, height: 40 }, { cropMargin: 0, cropSquare: false }, frame)).toEqual({
      x: 40,
      y: 20,
      width: 20,
      height: 40,
    });
  });

  it('pads past the frame by default and clamps on request', () => {
    const face = { x: -10, y: 60, width: 30, height: 30 };
    expect(cropRect(face, { cropMargin: 0, cropSquare: true }, frame)).toEqual(face);
    expect(cropRect(face, { cropMargin: 0, cropSquare: true }, frame, 'clamp')).toEqual({ x: 0, y: 60, width: 20, height: 20 });
    expect(() => cropRect({ x: 200, y: 200, width: 10, height: 10 }, { cropMargin: 0, cropSquare: true }, frame, 'clamp')).toThrow(
      /outside the 100x80 frame/,
    );
    expect(() => cropRect({ x: 0, y: 0, width: 0, height: 10 }, { cropMargin: 0, cropSquare: true }, frame)).toThrow(InvalidInputError);
  });

  it('resamples the whole image at its own size to itself', () => {
    const src = image(9, 7, (x, y) => [x * 20, y * 30, 200 - x * y]);
    expect([...resampleRegion(src, { x: 0, y: 0, width: 9, height: 7 }, 9, 7).data]).toEqual([...src.data]);
  });

  it('fills outside the frame and averages the footprint when shrinking', () => {
    const white = image(4, 4, () => [255, 255, 255]);
    // The left half of the region lies outside the frame.
    const half = resampleRegion(white, { x: -4, y: 0, width: 8, height: 4 }, 8, 4, { fill: [0, 0, 255] });
    expect(px(half, 0, 0)).toEqual([0, 0, 255]);
    expect(px(half, 7, 3)).toEqual([255, 255, 255]);
    // A one-pixel checkerboard shrunk 4x is mid grey with antialiasing, not an aliased copy of one phase.
    const checker = image(16, 16, (x, y) => ((x + y) % 2 ? [255, 255, 255] : [0, 0, 0]));
    const small = resampleRegion(checker, { x: 0, y: 0, width: 16, height: 16 }, 4, 4);
    for (const v of small.data) expect(Math.abs(v - 128)).toBeLessThanOrEqual(1);
  });

  it('crops a face to the model size and maps crop pixels back to the frame', () => {
    const src = image(100, 80, (x, y) => [x, y, 0]);
    const crop = cropFace(src, { x: 40, y: 20, width: 20, height: 20 }, { size: 10, cropMargin: 0.5, cropSquare: true });
    expect(crop.rect).toEqual({ x: 30, y: 10, width: 40, height: 40 });
    expect([crop.image.width, crop.image.height]).toEqual([10, 10]);
    // Output pixel 0 averages source columns 30..33 (centre 31.5, rounded): red = x.
    expect(px(crop.image, 0, 0)[0]).toBe(32);
    expect(crop.transform).toEqual({ scaleX: 4, scaleY: 4, offsetX: 30, offsetY: 10 });
  });

  it('letterboxes a wide frame into a square with the bars outside the frame', () => {
    const wide = image(200, 100, () => [200, 100, 50]);
    const fitted = fitFrame(wide, 20, 'letterbox');
    expect(fitted.region).toEqual({ x: 0, y: -50, width: 200, height: 200 });
    expect(px(fitted.image, 10, 0)).toEqual([0, 0, 0]);
    expect(px(fitted.image, 10, 10)).toEqual([200, 100, 50]);
    expect(fitFrame(wide, 20, 'stretch').transform).toEqual({ scaleX: 10, scaleY: 5, offsetX: 0, offsetY: 0 });
  });
});

describe('normalize', () => {
  const img = image(2, 1, (x) => (x === 0 ? [10, 20, 30] : [40, 50, 60]));

  it('lays out NHWC and NCHW with (p * scale - mean) / std per channel', () => {
    const spec = { layout: 'NHWC' as const, colorOrder: 'RGB' as const, scale: 1, mean: [10, 20, 30], std: [1, 2, 3] };
    const nhwc = normalize(img, spec);
    expect(nhwc.dims).toEqual([1, 1, 2, 3]);
    expect([...nhwc.data]).toEqual([0, 0, 0, 30, 15, 10]);
    const nchw = normalize(img, { ...spec, layout: 'NCHW' });
    expect(nchw.dims).toEqual([1, 3, 1, 2]);
    expect([...nchw.data]).toEqual([0, 30, 0, 15, 0, 10]);
  });

  it('reorders to BGR and converts to BT.601 grey', () => {
    const bgr = normalize(img, { layout: 'NHWC', colorOrder: 'BGR', scale: 1, mean: [0], std: [1] });
    expect([...bgr.data]).toEqual([30, 20, 10, 60, 50, 40]);
    const gray = normalize(img, { layout: 'NCHW', colorOrder: 'GRAY', scale: 1 / 255, mean: [0.5], std: [0.5] });
    expect(gray.dims).toEqual([1, 1, 1, 2]);
    const luma = 0.299 * 10 + 0.587 * 20 + 0.114 * 30;
    expect(gray.data[0]).toBeCloseTo((luma / 255 - 0.5) / 0.5, 5);
  });

  it('maps 0..255 to -1..1 for the detector and batches equal-size crops', () => {
    const black = image(2, 2, () => [0, 0, 0]);
    const white = image(2, 2, () => [255, 255, 255]);
    const t = normalize([black, white], { layout: 'NHWC', colorOrder: 'RGB', scale: 1 / 127.5, mean: [1], std: [1] });
    expect(t.dims).toEqual([2, 2, 2, 3]);
    expect(t.data[0]).toBeCloseTo(-1, 6);
    expect(t.data[12]).toBeCloseTo(1, 6);
  });

  it('rejects mismatched mean/std, zero std, mixed sizes and a wrong output buffer', () => {
    const base = { layout: 'NHWC' as const, colorOrder: 'RGB' as const, scale: 1 };
    expect(() => normalize(img, { ...base, mean: [0, 0], std: [1] })).toThrow(/mean has 2 values; expected 1 or 3/);
    expect(() => normalize(img, { ...base, mean: [0], std: [0] })).toThrow(/std must be finite and non-zero/);
    expect(() => normalize([img, image(1, 1, () => [0, 0, 0])], { ...base, mean: [0], std: [1] })).toThrow(/differ in size/);
    expect(() => normalize(img, { ...base, mean: [0], std: [1] }, new Float32Array(5))).toThrow(/needs 6/);
  });
});

describe('decode', () => {
  it('softmax sums to one and classification sorts labels', () => {
    const p = softmax([1000, 1001, 999]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const c = decodeClassification([0.1, 2, -1], ['angry', 'happy', 'sad'], 'softmax');
    expect(c.label).toBe('happy');
    expect(c.scores.map((s) => s.label)).toEqual(['happy', 'angry', 'sad']);
    expect(() => decodeClassification([1, 2], ['a'], 'none')).toThrow(/2 values for 1 labels/);
  });

  it('decodes faceres age bins as human does', () => {
    const bins = new Float32Array(100);
    bins[30] = 0.5;
    bins[31] = 0.2;
    bins[29] = 0.1;
    expect(decodeAgeBins(bins)).toBe(32); // 30 + 10 * 0.2
    bins[29] = 0.3;
    expect(decodeAgeBins(bins)).toBe(27); // 30 - 10 * 0.3
    const last = new Float32Array(100);
    last[99] = 1;
    expect(Number.isFinite(decodeAgeBins(last))).toBe(true);
  });

  it('decodes gender with human-style confidence', () => {
    expect(decodeGender(0.9, 'male')).toEqual({ gender: 'male', confidence: expect.closeTo(0.8, 6) as number, probability: 0.9 });
    expect(decodeGender(0.2, 'male').gender).toBe('female');
    expect(decodeGender(0.5, 'male').confidence).toBe(0);
  });

  it('maps landmarks from crop space to frame pixels', () => {
    const transform = { scaleX: 2, scaleY: 2, offsetX: 100, offsetY: 50 };
    const normalized = landmarksToFrame(
      [0, 0, 1, 0.5],
      { type: 'landmarks', scheme: 'ibug68', count: 2, dims: 2, coordinateScale: 1, normalized: true },
      transform,
      64,
    );
    expect(normalized).toEqual([
      { x: 100, y: 50 },
      { x: 228, y: 114 },
    ]);
    const pixels = landmarksToFrame(
      [32, 16, 4],
      { type: 'landmarks', scheme: 'mediapipe468', count: 1, dims: 3, coordinateScale: 1, normalized: false },
      transform,
      64,
    );
    expect(pixels).toEqual([{ x: 164, y: 82, z: 8 }]);
  });

  it('L2-normalises embeddings and refuses a zero vector', () => {
    const e = l2Normalize([3, 4]);
    expect([...e]).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)]);
    expect(() => l2Normalize([0, 0])).toThrow(InvalidInputError);
    const out = decodeOutput({ task: 'embedding', decoding: { type: 'embedding', size: 2, normalize: 'l2' } }, new Float32Array([0, 5]));
    expect(out).toEqual({ type: 'embedding', task: 'embedding', vector: new Float32Array([0, 1]) });
  });
});

describe('blazeface decoding', () => {
  it('lays out 896 anchors: 16x16x2 at stride 16, then 8x8x6 at stride 32', () => {
    const a = blazefaceAnchors(256, [16, 32], [2, 6]);
    expect(a.length / 2).toBe(896);
    expect([a[0], a[1], a[2], a[3]]).toEqual([8, 8, 8, 8]);
    expect([a[2 * 512], a[2 * 512 + 1]]).toEqual([16, 16]);
    expect([a[2 * 895], a[2 * 895 + 1]]).toEqual([240, 240]);
  });

  function heads(): { outputs: Record<string, { data: Float32Array; dims: number[] }>; s16: Float32Array; r16: Float32Array } {
    const s16 = new Float32Array(512).fill(-10);
    const r16 = new Float32Array(512 * 16);
    const outputs = {
      Identity: { data: s16, dims: [1, 512, 1] },
      Identity_1: { data: new Float32Array(384).fill(-10), dims: [1, 384, 1] },
      Identity_2: { data: r16, dims: [1, 512, 16] },
      Identity_3: { data: new Float32Array(384 * 16), dims: [1, 384, 16] },
    };
    return { outputs, s16, r16 };
  }

  it('decodes a box and keypoints from anchor offsets, maps them to the frame and suppresses duplicates', () => {
    const { outputs, s16, r16 } = heads();
    // Anchor 2 * (3 * 16 + 5) sits at (88, 56); its twin anchor predicts nearly the same box with a lower score.
    const row = 2 * (3 * 16 + 5);
    s16[row] = 3;
    r16.set([2, -1, 40, 40, -10, -8], row * 16);
    s16[row + 1] = 1;
    r16.set([3, 0, 40, 40], (row + 1) * 16);
    const transform = { scaleX: 2, scaleY: 2, offsetX: -10, offsetY: 20 };
    const faces = decodeBlazeface(selectBlazefaceHeads(outputs), transform);
    expect(faces).toHaveLength(1);
    const [face] = faces;
    expect(face!.score).toBeCloseTo(1 / (1 + Math.exp(-3)), 6);
    // Centre (90, 55), size 40 in input pixels -> x = (90 - 20) * 2 - 10.
    expect(face!.box).toEqual({ x: 130, y: 90, width: 80, height: 80 });
    expect(face!.keypoints[0]).toEqual({ x: (88 - 10) * 2 - 10, y: (56 - 8) * 2 + 20 });
    expect(face!.keypoints).toHaveLength(6);
  });

  it('finds outputs by shape whatever their names, and names what is missing', () => {
    const { outputs } = heads();
    const renamed = { a: outputs['Identity_3']!, b: outputs['Identity']!, c: outputs['Identity_1']!, d: outputs['Identity_2']! };
    expect(selectBlazefaceHeads(renamed)[0]!.scores).toBe(outputs['Identity']!.data);
    expect(() => selectBlazefaceHeads({ b: outputs['Identity']! })).toThrow(/no output of shape \[1,512,16\]/);
  });

  it('keeps the better of overlapping boxes and distant boxes apart', () => {
    const boxes = [
      { x: 0, y: 0, width: 10, height: 10 },
      { x: 1, y: 1, width: 10, height: 10 },
      { x: 50, y: 50, width: 10, height: 10 },
    ];
    expect(nonMaxSuppression(boxes, [0.6, 0.9, 0.7], 0.3, 0.5, 10)).toEqual([1, 2]);
    expect(nonMaxSuppression(boxes, [0.6, 0.9, 0.7], 0.3, 0.5, 1)).toEqual([1]);
  });
});

describe('faceres age decoding by expectation', () => {
  it('is the probability-weighted mean bin, continuous between bins', async () => {
    const { decodeAgeExpectation, decodeOutput } = await import('../src/models/processing/index.js');
    const bins = new Float32Array(100);
    bins[29] = 0.5;
    bins[41] = 0.5;
    expect(decodeAgeExpectation(bins)).toBe(35);
    const out = decodeOutput({ task: 'age', decoding: { type: 'age-bins', method: 'expectation' } }, bins);
    expect(out).toMatchObject({ type: 'age', years: 35 });
    const human = decodeOutput({ task: 'age', decoding: { type: 'age-bins', method: 'argmax-neighbour' } }, bins);
    expect(human).toMatchObject({ type: 'age' });
    expect((human as { years: number }).years).not.toBe(35);
    expect(() => decodeAgeExpectation(new Float32Array(100))).toThrow(/no probability mass/);
  });
});
