// The papers' metrics for `kt models eval`: age MAE / CS@5 / bias per band, classification accuracy / macro-F1 /
// recall / confusion, landmark NME normalised by the outer-eye-corner distance.
import type { Point } from '../processing/index.js';

/** Mean absolute error in years over the given items (all when `indices` is absent). */
export function meanAbsoluteError(predicted: readonly number[], truth: readonly number[], indices?: readonly number[]): number {
  const idx = indices ?? predicted.map((_, i) => i);
  if (idx.length === 0) return NaN;
  let sum = 0;
  for (const i of idx) sum += Math.abs(predicted[i]! - truth[i]!);
  return sum / idx.length;
}

/** Cumulative score: percent of items within `years` of the truth (CS@5 with the default). */
export function cumulativeScore(predicted: readonly number[], truth: readonly number[], indices?: readonly number[], years = 5): number {
  const idx = indices ?? predicted.map((_, i) => i);
  if (idx.length === 0) return NaN;
  let within = 0;
  for (const i of idx) if (Math.abs(predicted[i]! - truth[i]!) <= years) within++;
  return (100 * within) / idx.length;
}

export interface AgeBandRow {
  band: string;
  n: number;
  mae: number;
  /** Mean signed error (predicted - true): positive means the model guesses older. */
  bias: number;
}

/** MAE and signed bias per age band (0-9, 10-19, ... 70-79, 80+ by default). */
export function ageBands(
  predicted: readonly number[],
  truth: readonly number[],
  edges: readonly number[] = [10, 20, 30, 40, 50, 60, 70, 80],
): AgeBandRow[] {
  const rows: AgeBandRow[] = [];
  for (let b = 0; b <= edges.length; b++) {
    const lo = b === 0 ? 0 : edges[b - 1]!;
    const hi = b < edges.length ? edges[b]! : Infinity;
    const idx = truth.map((t, i) => (t >= lo && t < hi ? i : -1)).filter((i) => i >= 0);
    if (idx.length === 0) continue;
    const bias = idx.reduce((s, i) => s + predicted[i]! - truth[i]!, 0) / idx.length;
    rows.push({ band: hi === Infinity ? `${lo}+` : `${lo}-${hi - 1}`, n: idx.length, mae: meanAbsoluteError(predicted, truth, idx), bias });
  }
  return rows;
}

export interface ClassificationReport {
  labels: string[];
  /** Percent correct. */
  accuracy: number;
  /** Unweighted mean of per-class F1 over classes present in the truth, in percent. */
  macroF1: number;
  /** Per-class recall in percent (NaN where the class has no items). */
  recall: Record<string, number>;
  /** confusion[t][p]: items of true class labels[t] predicted as labels[p]. */
  confusion: number[][];
}

/** Accuracy, macro-F1, per-class recall and the confusion matrix over the given items (all when absent). */
export function classificationReport(
  predicted: readonly string[],
  truth: readonly string[],
  labels: readonly string[],
  indices?: readonly number[],
): ClassificationReport {
  const idx = indices ?? predicted.map((_, i) => i);
  const at = new Map(labels.map((l, i) => [l, i]));
  const confusion = labels.map(() => labels.map(() => 0));
  let correct = 0;
  for (const i of idx) {
    const t = at.get(truth[i]!);
    const p = at.get(predicted[i]!);
    if (t === undefined) continue;
    if (p !== undefined) confusion[t]![p]!++;
    if (t === p) correct++;
  }
  const recall: Record<string, number> = {};
  const f1s: number[] = [];
  labels.forEach((label, k) => {
    const trueCount = confusion[k]!.reduce((a, b) => a + b, 0) + idx.filter((i) => truth[i] === label && !at.has(predicted[i]!)).length;
    const predCount = confusion.reduce((s, row) => s + row[k]!, 0);
    const tp = confusion[k]![k]!;
    recall[label] = trueCount ? (100 * tp) / trueCount : NaN;
    if (trueCount === 0) return;
    const precision = predCount ? tp / predCount : 0;
    const rec = tp / trueCount;
    f1s.push(precision + rec > 0 ? (2 * precision * rec) / (precision + rec) : 0);
  });
  return {
    labels: [...labels],
    accuracy: idx.length ? (100 * correct) / idx.length : NaN,
    macroF1: f1s.length ? (100 * f1s.reduce((a, b) => a + b, 0)) / f1s.length : NaN,
    recall,
    confusion,
  };
}

/**
 * Normalised mean error of one face in percent: mean point-to-point distance over `points` (all when absent), divided
 * by the distance between the two outer eye corners of the truth (iBUG-68: 36 and 45), x100.
 */
export function faceNme(
  predicted: readonly Point[],
  truth: readonly Point[],
  outerEyes: readonly [number, number],
  points?: readonly number[],
): number {
  const a = truth[outerEyes[0]]!;
  const b = truth[outerEyes[1]]!;
  const norm = Math.hypot(a.x - b.x, a.y - b.y);
  const idx = points ?? truth.map((_, i) => i);
  if (!(norm > 0) || idx.length === 0) return NaN;
  let sum = 0;
  for (const i of idx) sum += Math.hypot(predicted[i]!.x - truth[i]!.x, predicted[i]!.y - truth[i]!.y);
  return (100 * sum) / idx.length / norm;
}
