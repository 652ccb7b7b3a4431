// The 5-point alignment's similarity transform (least squares, Umeyama), its template and the warp.
import { describe, expect, it } from 'vitest';
import {
  DLIB_MEAN_FACE_4,
  alignFace,
  alignmentTemplate,
  applySimilarity,
  fitSimilarity,
  invertSimilarity,
  similarityScale,
  warpSimilarity,
  type Similarity,
} from '../src/models/processing/align.js';
import type { Point } from '../src/models/processing/geometry.js';
import { seededRandom } from '../src/models/eval/bootstrap.js';

const rotation = (deg: number, scale: number, tx: number, ty: number): Similarity => ({
  a: scale * Math.cos((deg * Math.PI) / 180),
  b: scale * Math.sin((deg * Math.PI) / 180),
  tx,
  ty,
});

const sse = (t: Similarity, from: readonly Point[], to: readonly Point[]): number =>
  from.reduce((s, p, i) => {
    const q = applySimilarity(t, p);
    return s + (q.x - to[i]!.x) ** 2 + (q.y - to[i]!.y) ** 2;
  }, 0);

describe('similarity transform', () => {
  const from = [
    { x: 10, y: 20 },
    { x: 60, y: 22 },
    { x: 35, y: 50 },
    { x: 36, y: 80 },
  ];

  it('recovers an exact rotation + scale + translation from 4 points', () => {
    const truth = rotation(30, 1.7, -12.5, 40);
    const fit = fitSimilarity(
      from,
      from.map((p) => applySimilarity(truth, p)),
    );
    expect(fit.a).toBeCloseTo(truth.a, 9);
    expect(fit.b).toBeCloseTo(truth.b, 9);
    expect(fit.tx).toBeCloseTo(truth.tx, 9);
    expect(fit.ty).toBeCloseTo(truth.ty, 9);
    expect(similarityScale(fit)).toBeCloseTo(1.7, 9);
  });

  it('is the least-squares fit under noise: no nearby transform has a smaller error', () => {
    const random = seededRandom(3);
    const truth = rotation(-15, 0.6, 100, 7);
    const to = from.map((p) => {
      const q = applySimilarity(truth, p);
      return { x: q.x + (random() - 0.5) * 4, y: q.y + (random() - 0.5) * 4 };
    });
    const fit = fitSimilarity(from, to);
    const best = sse(fit, from, to);
    expect(best).toBeGreaterThan(0);
    for (const key of ['a', 'b', 'tx', 'ty'] as const)
      for (const d of [-1e-3, 1e-3]) expect(sse({ ...fit, [key]: fit[key] + d }, from, to)).toBeGreaterThan(best);
  });

  it('never mirrors: a reflected point set keeps a residual', () => {
    const mirrored = from.map((p) => ({ x: -p.x, y: p.y }));
    const fit = fitSimilarity(from, mirrored);
    expect(sse(fit, from, mirrored)).toBeGreaterThan(100);
  });

  it('inverts', () => {
    const t = rotation(71, 2.3, 5, -9);
    const back = invertSimilarity(t);
    for (const p of from) {
      const q = applySimilarity(back, applySimilarity(t, p));
      expect(q.x).toBeCloseTo(p.x, 9);
      expect(q.y).toBeCloseTo(p.y, 9);
    }
  });

  it('rejects degenerate input', () => {
    expect(() => fitSimilarity([{ x: 1, y: 1 }], [{ x: 2, y: 2 }])).toThrow(/at least 2/);
    expect(() =>
      fitSimilarity(
        [
          { x: 1, y: 1 },
          { x: 1, y: 1 },
        ],
        [
          { x: 0, y: 0 },
          { x: 3, y: 3 },
        ],
      ),
    ).toThrow(/coincide/);
    expect(() => fitSimilarity(from, from.slice(1))).toThrow(/targets/);
    expect(() =>
      fitSimilarity(
        [
          { x: NaN, y: 0 },
          { x: 1, y: 1 },
        ],
        [
          { x: 0, y: 0 },
          { x: 1, y: 1 },
        ],
      ),
    ).toThrow(/non-finite/);
  });
});

describe('alignment template and warp', () => {
  it("places dlib's mean face with padding 0.25 in a 150 px chip", () => {
    const t = alignmentTemplate(150, 0.25);
    // (0.25 + 0.2254918) / 1.5 * 150 = 47.549
    expect(t[0]!.x).toBeCloseTo(47.549, 2);
    expect(t[0]!.y).toBeCloseTo(46.599, 2);
    expect(t[1]!.x).toBeCloseTo(100.476, 2);
    // Eyes level and symmetric about the nose and mouth.
    expect(t[0]!.y).toBeCloseTo(t[1]!.y, 9);
    expect((t[0]!.x + t[1]!.x) / 2).toBeCloseTo(t[2]!.x, 1);
    expect(t[3]!.y).toBeGreaterThan(t[2]!.y);
    expect(DLIB_MEAN_FACE_4).toHaveLength(4);
  });

  it('the identity transform copies the image; an integer shift moves it', () => {
    const size = 8;
    const data = new Uint8Array(size * size * 3).map((_, i) => (i * 37) % 256);
    const image = { data, width: size, height: size };
    expect(warpSimilarity(image, { a: 1, b: 0, tx: 0, ty: 0 }, size).data).toEqual(data);
    const shifted = warpSimilarity(image, { a: 1, b: 0, tx: 2, ty: 1 }, 4);
    for (let y = 0; y < 4; y++)
      for (let x = 0; x < 4; x++)
        for (let c = 0; c < 3; c++) expect(shifted.data[(y * 4 + x) * 3 + c]).toBe(data[((y + 1) * size + x + 2) * 3 + c]);
    // Outside the frame: black.
    expect(Array.from(warpSimilarity(image, { a: 1, b: 0, tx: -100, ty: 0 }, 2).data)).toEqual(new Array(12).fill(0));
  });

  it('brings keypoints of a rotated, scaled face onto the template', () => {
    // A 400 px frame with four bright 5x5 dots where a face's eyes, nose and mouth are, rotated by 25 degrees.
    const W = 400;
    const frame = { data: new Uint8Array(W * W * 3), width: W, height: W };
    const template = alignmentTemplate(112);
    const toFrame = rotation(25, 1.9, 130, 60);
    const keypoints = template.map((p) => applySimilarity(toFrame, p));
    for (const k of keypoints)
      for (let dy = -2; dy <= 2; dy++)
        for (let dx = -2; dx <= 2; dx++)
          frame.data.fill(
            255,
            ((Math.floor(k.y) + dy) * W + Math.floor(k.x) + dx) * 3,
            ((Math.floor(k.y) + dy) * W + Math.floor(k.x) + dx) * 3 + 3,
          );
    const aligned = alignFace(frame, [...keypoints, { x: 0, y: 0 }, { x: 1, y: 1 }], 112);
    expect(similarityScale(aligned.toFrame)).toBeCloseTo(1.9, 6);
    for (const p of template) {
      const v = aligned.image.data[(Math.floor(p.y) * 112 + Math.floor(p.x)) * 3]!;
      expect(v).toBeGreaterThan(100);
    }
    // Far from every dot the crop is dark.
    expect(aligned.image.data[(5 * 112 + 5) * 3]).toBe(0);
  });

  it('needs the eye, nose and mouth keypoints', () => {
    const frame = { data: new Uint8Array(4 * 4 * 3), width: 4, height: 4 };
    expect(() =>
      alignFace(
        frame,
        [
          { x: 1, y: 1 },
          { x: 2, y: 1 },
        ],
        112,
      ),
    ).toThrow(/keypoints/);
    expect(() => warpSimilarity(frame, { a: 1, b: 0, tx: 0, ty: 0 }, 0)).toThrow(/positive integer/);
  });
});
