// Evaluation metrics of DESIGN section 4: landmark NME / MAE@224, age MAE / CS@5, accuracy / macro-F1 / confusion, identity variance and TAR@FAR.
import { InvalidInputError } from '../core/errors.js';
import type { LandmarkScheme } from './datasets/types.js';

/** 0-based outer eye corners (lateral canthi) used to normalise NME. */
export const OUTER_EYE_CORNERS: Record<LandmarkScheme, [number, number]> = {
  wflw98: [60, 72],
  ibug68: [36, 45],
};

/** Flat landmarks `[x0, y0, x1, y1, ...]`. */
export type FlatPoints = readonly number[];

function checkSameLength(a: readonly unknown[], b: readonly unknown[], what: string): void {
  if (a.length !== b.length) throw new InvalidInputError(`${what}: ${a.length} predictions for ${b.length} targets`);
  if (a.length === 0) throw new InvalidInputError(`${what}: no samples`);
}

function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return values.length ? s / values.length : NaN;
}

function meanPointDistance(pred: FlatPoints, gt: FlatPoints, index: number): number {
  if (pred.length !== gt.length || gt.length % 2 !== 0) {
    throw new InvalidInputError(`landmarks of sample ${index}: prediction has ${pred.length} values, target ${gt.length}`);
  }
  let s = 0;
  for (let i = 0; i < gt.length; i += 2) s += Math.hypot(pred[i]! - gt[i]!, pred[i + 1]! - gt[i + 1]!);
  return s / (gt.length / 2);
}

export interface PerSampleMetric {
  mean: number;
  perSample: number[];
}

/**
 * Normalised mean error x100: per face, the mean point-to-point distance divided by the ground-truth distance
 * between the outer eye corners; then averaged over faces. Coordinates in any common pixel frame.
 */
export function landmarkNme(
  preds: readonly FlatPoints[],
  gts: readonly FlatPoints[],
  eyes: LandmarkScheme | [number, number],
): PerSampleMetric {
  checkSameLength(preds, gts, 'NME');
  const [l, r] = typeof eyes === 'string' ? OUTER_EYE_CORNERS[eyes] : eyes;
  const perSample = gts.map((gt, i) => {
    const iod = Math.hypot(gt[2 * l]! - gt[2 * r]!, gt[2 * l + 1]! - gt[2 * r + 1]!);
    if (!(iod > 0)) throw new InvalidInputError(`NME: sample ${i} has zero or missing inter-ocular distance (points ${l}, ${r})`);
    return (100 * meanPointDistance(preds[i]!, gt, i)) / iod;
  });
  return { mean: mean(perSample), perSample };
}

/**
 * Mean point-to-point error in pixels of a `targetSize` input (224): each face's error is scaled by
 * `targetSize / cropSize`, where `cropSize` is the side of that face's square crop in the coordinates' frame
 * (one number for all faces, or one per face). Pass cropSize = targetSize when coordinates are already at 224.
 */
export function landmarkMaePx(
  preds: readonly FlatPoints[],
  gts: readonly FlatPoints[],
  cropSize: number | readonly number[],
  targetSize = 224,
): PerSampleMetric {
  checkSameLength(preds, gts, 'landmark MAE');
  const perSample = gts.map((gt, i) => {
    const side = typeof cropSize === 'number' ? cropSize : cropSize[i];
    if (side === undefined || !(side > 0)) throw new InvalidInputError(`landmark MAE: crop size of sample ${i} is ${side}`);
    return (meanPointDistance(preds[i]!, gt, i) * targetSize) / side;
  });
  return { mean: mean(perSample), perSample };
}

/** Mean absolute error (years for age). */
export function meanAbsoluteError(preds: readonly number[], targets: readonly number[]): number {
  checkSameLength(preds, targets, 'MAE');
  return mean(preds.map((p, i) => Math.abs(p - targets[i]!)));
}

/** Cumulative score: % of predictions within `tolerance` (inclusive) of the target; CS@5 by default. */
export function cumulativeScore(preds: readonly number[], targets: readonly number[], tolerance = 5): number {
  checkSameLength(preds, targets, 'CS');
  return (100 * preds.filter((p, i) => Math.abs(p - targets[i]!) <= tolerance).length) / preds.length;
}

export interface AgeMetrics {
  mae: number;
  /** % within 5 years. */
  cs5: number;
}

export function ageMetrics(preds: readonly number[], targets: readonly number[]): AgeMetrics {
  return { mae: meanAbsoluteError(preds, targets), cs5: cumulativeScore(preds, targets, 5) };
}

/** Confusion counts: `matrix[true][predicted]`. */
export function confusionMatrix(preds: readonly number[], targets: readonly number[], numClasses: number): number[][] {
  checkSameLength(preds, targets, 'confusion matrix');
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  preds.forEach((p, i) => {
    const t = targets[i]!;
    if (!isClass(p, numClasses) || !isClass(t, numClasses))
      throw new InvalidInputError(`confusion matrix: class ${isClass(t, numClasses) ? p : t} of sample ${i} outside 0..${numClasses - 1}`);
    m[t]![p]! += 1;
  });
  return m;
}

function isClass(v: number, n: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < n;
}

export interface ClassificationMetrics {
  /** % correct. */
  accuracy: number;
  /** % macro-F1 over classes that occur in the targets or predictions (scikit-learn's default label set). */
  macroF1: number;
  perClassF1: number[];
  /** `confusion[true][predicted]`. */
  confusion: number[][];
}

export function classificationMetrics(preds: readonly number[], targets: readonly number[], numClasses: number): ClassificationMetrics {
  const confusion = confusionMatrix(preds, targets, numClasses);
  let correct = 0;
  const perClassF1: number[] = [];
  const present: number[] = [];
  for (let c = 0; c < numClasses; c++) {
    const tp = confusion[c]![c]!;
    correct += tp;
    const support = confusion[c]!.reduce((s, v) => s + v, 0);
    const predicted = confusion.reduce((s, row) => s + row[c]!, 0);
    const f1 = support + predicted === 0 ? 0 : (2 * tp) / (support + predicted);
    perClassF1.push(f1);
    if (support + predicted > 0) present.push(f1);
  }
  return { accuracy: (100 * correct) / preds.length, macroF1: 100 * mean(present), perClassF1, confusion };
}

/** Index of the largest value per row (class scores -> predicted class). */
export function argmaxRows(scores: readonly (readonly number[])[]): number[] {
  return scores.map((row) => row.reduce((best, v, i) => (v > row[best]! ? i : best), 0));
}

export function l2Normalize(v: readonly number[]): number[] {
  const n = Math.sqrt(dot(v, v));
  return n > 0 ? v.map((x) => x / n) : v.map(() => 0);
}

function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Intra-class variance of L2-normalised embeddings: per class, the mean squared distance of its normalised
 * embeddings to their class mean; averaged over classes (each class weighs the same). 0 = every class collapsed to a point.
 */
export function intraClassVariance(embeddings: readonly (readonly number[])[], labels: readonly (number | string)[]): number {
  checkSameLength(embeddings, labels, 'intra-class variance');
  const byClass = new Map<number | string, number[][]>();
  embeddings.forEach((e, i) => {
    const list = byClass.get(labels[i]!) ?? [];
    list.push(l2Normalize(e));
    byClass.set(labels[i]!, list);
  });
  const perClass: number[] = [];
  for (const members of byClass.values()) {
    const dim = members[0]!.length;
    const centre = new Array<number>(dim).fill(0);
    for (const m of members) for (let d = 0; d < dim; d++) centre[d]! += m[d]! / members.length;
    perClass.push(mean(members.map((m) => m.reduce((s, v, d) => s + (v - centre[d]!) ** 2, 0))));
  }
  return mean(perClass);
}

/** Cosine scores of every pair (i < j): genuine when both have the same label, impostor otherwise. */
export function verificationScores(
  embeddings: readonly (readonly number[])[],
  labels: readonly (number | string)[],
): { genuine: number[]; impostor: number[] } {
  checkSameLength(embeddings, labels, 'verification scores');
  const normed = embeddings.map(l2Normalize);
  const genuine: number[] = [];
  const impostor: number[] = [];
  for (let i = 0; i < normed.length; i++) {
    for (let j = i + 1; j < normed.length; j++) (labels[i] === labels[j] ? genuine : impostor).push(dot(normed[i]!, normed[j]!));
  }
  return { genuine, impostor };
}

export interface TarAtFar {
  /** % of genuine pairs accepted. */
  tar: number;
  /** Accept when score > threshold. */
  threshold: number;
  /** % of impostor pairs accepted at that threshold (<= the requested FAR). */
  achievedFar: number;
}

/**
 * True acceptance rate at a false acceptance rate (default 0.1%): the threshold is the lowest that accepts at most
 * `far` of the impostor scores (accept iff score > threshold); with fewer than 1/far impostors that is the highest impostor score.
 */
export function tarAtFar(genuine: readonly number[], impostor: readonly number[], far = 0.001): TarAtFar {
  if (genuine.length === 0 || impostor.length === 0) throw new InvalidInputError('TAR@FAR needs genuine and impostor scores');
  if (!(far >= 0 && far < 1)) throw new InvalidInputError(`FAR must be in [0, 1), got ${far}`);
  const sorted = [...impostor].sort((a, b) => b - a);
  const allowed = Math.floor(far * sorted.length + 1e-9);
  const threshold = sorted[allowed]!;
  const accepted = sorted.filter((s) => s > threshold).length;
  return {
    tar: (100 * genuine.filter((s) => s > threshold).length) / genuine.length,
    threshold,
    achievedFar: (100 * accepted) / sorted.length,
  };
}

export interface IdentityMetrics extends ClassificationMetrics {
  intraClassVariance: number;
  tarAtFar: TarAtFar;
}

/** Identity: classification metrics from predicted ids plus embedding metrics (variance, TAR@FAR=0.1% over all pairs). */
export function identityMetrics(
  preds: readonly number[],
  targets: readonly number[],
  numClasses: number,
  embeddings: readonly (readonly number[])[],
  far = 0.001,
): IdentityMetrics {
  const { genuine, impostor } = verificationScores(embeddings, targets);
  return {
    ...classificationMetrics(preds, targets, numClasses),
    intraClassVariance: intraClassVariance(embeddings, targets),
    tarAtFar: tarAtFar(genuine, impostor, far),
  };
}
