// Evaluation metrics against hand-computed values: NME, landmark MAE@224, age MAE/CS@5, accuracy/macro-F1, identity metrics.
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/core/errors.js';
import {
  OUTER_EYE_CORNERS,
  ageMetrics,
  argmaxRows,
  classificationMetrics,
  confusionMatrix,
  cumulativeScore,
  identityMetrics,
  intraClassVariance,
  landmarkMaePx,
  landmarkNme,
  meanAbsoluteError,
  tarAtFar,
  verificationScores,
} from '../src/train/metrics.js';

/** n points at the origin, with given points placed. */
function face(n: number, placed: Record<number, [number, number]>): number[] {
  const flat = new Array<number>(2 * n).fill(0);
  for (const [i, [x, y]] of Object.entries(placed)) {
    flat[2 * Number(i)] = x;
    flat[2 * Number(i) + 1] = y;
  }
  return flat;
}
const shift = (pts: number[], dx: number, dy: number): number[] => pts.map((v, i) => v + (i % 2 === 0 ? dx : dy));

describe('landmark metrics', () => {
  it('uses 0-based outer eye corners 60/72 (WFLW) and 36/45 (iBUG-68)', () => {
    expect(OUTER_EYE_CORNERS).toEqual({ wflw98: [60, 72], ibug68: [36, 45] });
  });

  it('NME x100 is the mean point error over the outer-eye-corner distance, averaged over faces', () => {
    const gt1 = face(98, { 72: [10, 0] }); // IOD 10
    const gt2 = face(98, { 72: [0, 20] }); // IOD 20
    const r = landmarkNme([shift(gt1, 3, 4), shift(gt2, 0, 1)], [gt1, gt2], 'wflw98');
    expect(r.perSample[0]).toBeCloseTo(50, 10); // every point 5 px off, 5 / 10
    expect(r.perSample[1]).toBeCloseTo(5, 10); // 1 / 20
    expect(r.mean).toBeCloseTo(27.5, 10);
  });

  it('NME on iBUG-68 with one point off', () => {
    const gt = face(68, { 36: [0, 0], 45: [4, 3] }); // IOD 5
    const pred = [...gt];
    pred[2 * 10] = 10; // point 10 moves 10 px
    expect(landmarkNme([pred], [gt], 'ibug68').mean).toBeCloseTo((100 * (10 / 68)) / 5, 10);
    expect(landmarkNme([pred], [gt], [36, 45]).mean).toBeCloseTo(2.9411764705882355, 10);
  });

  it('MAE in pixels at 224 scales each face by 224 / its crop size', () => {
    const gt = face(68, { 45: [1, 0] });
    const r = landmarkMaePx([shift(gt, 3, 4), shift(gt, 0, 2)], [gt, gt], [112, 448]);
    expect(r.perSample).toEqual([10, 1]);
    expect(r.mean).toBe(5.5);
    expect(landmarkMaePx([shift(gt, 3, 4)], [gt], 224).mean).toBe(5);
  });

  it('rejects mismatched shapes and a zero eye distance with typed errors', () => {
    const gt = face(98, { 72: [10, 0] });
    expect(() => landmarkNme([gt.slice(2)], [gt], 'wflw98')).toThrow(InvalidInputError);
    expect(() => landmarkNme([gt], [face(98, {})], 'wflw98')).toThrow(/inter-ocular/);
    expect(() => landmarkNme([], [], 'wflw98')).toThrow(InvalidInputError);
  });
});

describe('age metrics', () => {
  it('MAE and CS@5 (inclusive)', () => {
    const preds = [20, 30, 41, 50];
    const gts = [25, 30, 35, 55.5]; // errors 5, 0, 6, 5.5
    expect(meanAbsoluteError(preds, gts)).toBeCloseTo(4.125, 12);
    expect(cumulativeScore(preds, gts)).toBe(50);
    expect(cumulativeScore(preds, gts, 6)).toBe(100);
    expect(ageMetrics(preds, gts)).toEqual({ mae: 4.125, cs5: 50 });
  });
});

describe('classification metrics', () => {
  const targets = [0, 0, 1, 1, 2, 2];
  const preds = [0, 1, 1, 1, 2, 0];

  it('confusion matrix is [true][predicted]', () => {
    expect(confusionMatrix(preds, targets, 3)).toEqual([
      [1, 1, 0],
      [0, 2, 0],
      [1, 0, 1],
    ]);
  });

  it('accuracy and macro-F1 in %', () => {
    const m = classificationMetrics(preds, targets, 3);
    expect(m.accuracy).toBeCloseTo(400 / 6, 10);
    expect(m.perClassF1[0]).toBeCloseTo(0.5, 12); // 2*1 / (2 + 2)
    expect(m.perClassF1[1]).toBeCloseTo(0.8, 12); // 2*2 / (2 + 3)
    expect(m.perClassF1[2]).toBeCloseTo(2 / 3, 12); // 2*1 / (2 + 1)
    expect(m.macroF1).toBeCloseTo((100 * (0.5 + 0.8 + 2 / 3)) / 3, 10);
    // A class that occurs nowhere does not dilute macro-F1.
    expect(classificationMetrics(preds, targets, 5).macroF1).toBeCloseTo(m.macroF1, 12);
  });

  it('argmax of scores and out-of-range classes', () => {
    expect(
      argmaxRows([
        [0.1, 0.7, 0.2],
        [3, -1, 2],
      ]),
    ).toEqual([1, 0]);
    expect(() => confusionMatrix([3], [0], 3)).toThrow(/outside/);
  });
});

describe('identity metrics', () => {
  it('intra-class variance of L2-normalised embeddings, averaged over classes', () => {
    // Class a: [1,0] and [0,1] around (0.5, 0.5): 0.5 each; class b: both normalise to [1,0]: 0.
    expect(
      intraClassVariance(
        [
          [1, 0],
          [0, 1],
          [2, 0],
          [3, 0],
        ],
        ['a', 'a', 'b', 'b'],
      ),
    ).toBeCloseTo(0.25, 12);
  });

  it('genuine and impostor cosine scores over all pairs', () => {
    const { genuine, impostor } = verificationScores(
      [
        [1, 0],
        [1, 1],
        [0, 1],
      ],
      [7, 7, 8],
    );
    expect(genuine).toHaveLength(1);
    expect(genuine[0]).toBeCloseTo(Math.SQRT1_2, 12);
    expect(impostor[0]).toBeCloseTo(0, 12);
    expect(impostor[1]).toBeCloseTo(Math.SQRT1_2, 12);
  });

  it('TAR at FAR = 0.1%: threshold lets at most 0.1% of impostors through', () => {
    const impostor = Array.from({ length: 2000 }, (_, i) => i / 2000);
    const r = tarAtFar([0.999, 0.9986, 0.9985, 0.5], impostor);
    expect(r.threshold).toBe(1997 / 2000);
    expect(r.achievedFar).toBe(0.1); // 2 of 2000
    expect(r.tar).toBe(50);
    // Fewer than 1000 impostors: nothing above the best impostor may pass.
    expect(tarAtFar([0.95, 0.85], [0.1, 0.9, 0.3]).tar).toBe(50);
  });

  it('identityMetrics combines classification and embedding metrics', () => {
    const embeddings = [
      [1, 0.1],
      [1, -0.1],
      [0.1, 1],
      [-0.1, 1],
    ];
    const m = identityMetrics([0, 0, 1, 0], [0, 0, 1, 1], 2, embeddings);
    expect(m.accuracy).toBe(75);
    expect(m.tarAtFar.tar).toBe(100); // genuine cos ~0.98, impostors ~0 or ~0.2
    expect(m.intraClassVariance).toBeGreaterThan(0);
    expect(m.intraClassVariance).toBeLessThan(0.02);
  });
});
