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

export function computeTokenStats(tokens: TokenMatrix, count: number): TokenStats {
  const { width, values } = tokens;
  if (values.length !== count * width)
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
  const std = new Float32Array(width);
  for (let c = 0; c < width; c++) {
    const s = Math.sqrt(sq[c]! / Math.max(1, count));
    std[c] = s < minStd ? 1 : s;
  }
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

export function gatherTargets(dataset: TokenDataset, indices: ArrayLike<number>): Float32Array {
  return gatherRows(dataset.targets, targetWidth(dataset), indices);
}

export function disposeBatch(batch: TokenBatch): void {
  batch.canonical.dispose();
  for (const p of batch.priors) p.dispose();
}
