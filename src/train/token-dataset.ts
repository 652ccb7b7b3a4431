// Prior-token datasets as the trainer sees them (row-major Float32Arrays), their statistics, prior subsets and batches.
import type { Tf } from './tfjs-backend.js';
import type { Tensor2D } from '@tensorflow/tfjs';
import { InvalidInputError } from '../core/errors.js';

/** One token per sample from one encoder: `values` is row-major [count, width]. */
export interface TokenMatrix {
  /** Encoder / task name, for reports. */
  name?: string;
  width: number;
  values: Float32Array;
}

/**
 * Pooled prior tokens of a split. `targets` holds [count, outputs] values for regression and one class index per
 * sample for classification.
 */
export interface TokenDataset {
  count: number;
  canonical: TokenMatrix;
  priors: readonly TokenMatrix[];
  targets: Float32Array;
  /** Augmentation: token rows r + flipOffset hold the mirrored image of sample r (targets are shared); the trainer
   * uses one of the two views per step. `count` counts samples, not views. */
  flipOffset?: number;
}

/** Per-channel training statistics; std is floored so that dead channels (constant zero ReLU maps) stay finite. */
export interface TokenStats {
  mean: Float32Array;
  std: Float32Array;
}

/** A batch on the device: raw (not standardised) tokens. */
export interface TokenBatch {
  canonical: Tensor2D;
  priors: readonly Tensor2D[];
}

export const minStd = 1e-6;

/** std is floored at this fraction of the median channel std: a nearly constant channel (std 1e-4 where others have 1)
 * would otherwise turn rounding-level changes into large standardised values. */
export const relativeStdFloor = 0.05;

/** Statistics of the first `count` rows (further rows, such as flipped views, are left out). */
export function computeTokenStats(tokens: TokenMatrix, count: number): TokenStats {
  const { width, values } = tokens;
  if (values.length < count * width || values.length % width !== 0)
    throw new InvalidInputError(`token matrix ${tokens.name ?? ''} has ${values.length} values, expected ${count}x${width}`);
  const mean = new Float64Array(width);
  const sq = new Float64Array(width);
  for (let i = 0; i < count; i++) for (let c = 0; c < width; c++) mean[c] = mean[c]! + values[i * width + c]!;
  for (let c = 0; c < width; c++) mean[c] = mean[c]! / Math.max(1, count);
  for (let i = 0; i < count; i++)
    for (let c = 0; c < width; c++) {
      const d = values[i * width + c]! - mean[c]!;
      sq[c] = sq[c]! + d * d;
    }
  const raw = Float64Array.from({ length: width }, (_, c) => Math.sqrt(sq[c]! / Math.max(1, count)));
  const live = Array.from(raw)
    .filter((s) => s >= minStd)
    .sort((a, b) => a - b);
  const floor = live.length > 0 ? relativeStdFloor * live[Math.floor(live.length / 2)]! : minStd;
  // Dead channels (constant, std ~ 0) get 1 as before: they standardise to 0 whatever the divisor.
  const std = Float32Array.from(raw, (s) => (s < minStd ? 1 : Math.max(s, floor)));
  return { mean: Float32Array.from(mean), std };
}

/** Statistics of the canonical token and every prior, from the training split only. */
export function computeDatasetStats(train: TokenDataset): { canonical: TokenStats; priors: TokenStats[] } {
  return { canonical: computeTokenStats(train.canonical, train.count), priors: train.priors.map((p) => computeTokenStats(p, train.count)) };
}

/** The same dataset with only the priors at `indices` (in that order); `[]` gives the canonical token alone. */
export function selectPriors(dataset: TokenDataset, indices: readonly number[]): TokenDataset {
  for (const i of indices)
    if (!dataset.priors[i]) throw new InvalidInputError(`prior index ${i} out of range (dataset has ${dataset.priors.length})`);
  return { ...dataset, priors: indices.map((i) => dataset.priors[i]!) };
}

export function targetWidth(dataset: TokenDataset): number {
  return dataset.count === 0 ? 0 : dataset.targets.length / dataset.count;
}

function gatherRows(values: Float32Array, width: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) out.set(values.subarray(rows[i]! * width, (rows[i]! + 1) * width), i * width);
  return out;
}

/** Copies the rows `indices` of every token matrix to the device. */
export function gatherBatch(tf: Tf, dataset: TokenDataset, indices: ArrayLike<number>): TokenBatch {
  const n = indices.length;
  return {
    canonical: tf.tensor2d(gatherRows(dataset.canonical.values, dataset.canonical.width, indices), [n, dataset.canonical.width]),
    priors: dataset.priors.map((p) => tf.tensor2d(gatherRows(p.values, p.width, indices), [n, p.width])),
  };
}

/** Targets of token rows `indices`; a flipped view's row (>= flipOffset) has its original sample's target. */
export function gatherTargets(dataset: TokenDataset, indices: ArrayLike<number>): Float32Array {
  const offset = dataset.flipOffset;
  const samples = offset === undefined ? indices : Array.from(indices, (r) => (r >= offset ? r - offset : r));
  return gatherRows(dataset.targets, targetWidth(dataset), samples);
}

export function disposeBatch(batch: TokenBatch): void {
  batch.canonical.dispose();
  for (const p of batch.priors) p.dispose();
}
