// Exact t-SNE (van der Maaten & Hinton 2008) in plain TS, seeded, for plotting a few hundred token embeddings in 2-D.
import { InvalidInputError } from '../core/errors.js';
import { gaussian, mulberry32 } from './datasets/random.js';

export interface TsneOptions {
  /** Effective neighbour count. Default 30; lowered to (n - 1) / 3 for small inputs. */
  perplexity?: number;
  /** Output dimensions. Default 2. */
  dims?: number;
  /** Gradient steps. Default 1000. */
  iterations?: number;
  /** Default 200. */
  learningRate?: number;
  /** P is multiplied by this for the first `exaggerationIterations` steps to form tight clusters early. Default 12 for 250 steps. */
  earlyExaggeration?: number;
  exaggerationIterations?: number;
  /** Seeds the initial layout; the same seed and input give the same output. Default 1. */
  seed?: number;
  /** Called every 50 steps with the KL divergence (for progress output). */
  onProgress?: (iteration: number, kl: number) => void;
}

export interface TsneResult {
  /** One row of `dims` coordinates per input row. */
  embedding: number[][];
  /** KL(P || Q) at the end. */
  kl: number;
  /** The perplexity actually used. */
  perplexity: number;
}

/** O(n^2) per step: meant for up to a few thousand points. Rows may have any (equal) width. */
export function tsne(data: readonly ArrayLike<number>[], options: TsneOptions = {}): TsneResult {
  const n = data.length;
  if (n < 4) throw new InvalidInputError(`t-SNE needs at least 4 points, got ${n}`);
  const width = data[0]!.length;
  if (data.some((row) => row.length !== width)) throw new InvalidInputError('t-SNE rows differ in width');
  const dims = options.dims ?? 2;
  const iterations = options.iterations ?? 1000;
  const learningRate = options.learningRate ?? 200;
  const exaggeration = options.earlyExaggeration ?? 12;
  const exaggerationIterations = options.exaggerationIterations ?? 250;
  const perplexity = Math.min(options.perplexity ?? 30, (n - 1) / 3);

  const P = jointProbabilities(squaredDistances(data), n, perplexity);

  const normal = gaussian(mulberry32(options.seed ?? 1));
  const Y = new Float64Array(n * dims).map(() => normal() * 1e-4);
  const update = new Float64Array(n * dims);
  const gains = new Float64Array(n * dims).fill(1);
  const grad = new Float64Array(n * dims);
  const num = new Float64Array(n * n);

  let kl = NaN;
  for (let iter = 0; iter < iterations; iter++) {
    const exag = iter < exaggerationIterations ? exaggeration : 1;
    const momentum = iter < exaggerationIterations ? 0.5 : 0.8;
    // Student-t affinities in the embedding.
    let sumQ = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let d2 = 0;
        for (let k = 0; k < dims; k++) {
          const diff = Y[i * dims + k]! - Y[j * dims + k]!;
          d2 += diff * diff;
        }
        const q = 1 / (1 + d2);
        num[i * n + j] = q;
        num[j * n + i] = q;
        sumQ += 2 * q;
      }
    }
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const q = num[i * n + j]!;
        const mult = (exag * P[i * n + j]! - q / sumQ) * q;
        for (let k = 0; k < dims; k++) grad[i * dims + k]! += 4 * mult * (Y[i * dims + k]! - Y[j * dims + k]!);
      }
    }
    for (let t = 0; t < n * dims; t++) {
      gains[t] = Math.sign(grad[t]!) !== Math.sign(update[t]!) ? gains[t]! + 0.2 : Math.max(0.01, gains[t]! * 0.8);
      update[t] = momentum * update[t]! - learningRate * gains[t]! * grad[t]!;
      Y[t]! += update[t]!;
    }
    for (let k = 0; k < dims; k++) {
      let mean = 0;
      for (let i = 0; i < n; i++) mean += Y[i * dims + k]!;
      mean /= n;
      for (let i = 0; i < n; i++) Y[i * dims + k]! -= mean;
    }
    if (iter === iterations - 1 || (options.onProgress && (iter + 1) % 50 === 0)) {
      kl = klDivergence(P, num, sumQ, n);
      options.onProgress?.(iter + 1, kl);
    }
  }
  const embedding = Array.from({ length: n }, (_, i) => Array.from(Y.subarray(i * dims, (i + 1) * dims)));
  return { embedding, kl, perplexity };
}

function squaredDistances(data: readonly ArrayLike<number>[]): Float64Array {
  const n = data.length;
  const width = data[0]!.length;
  const D = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const a = data[i]!;
    for (let j = i + 1; j < n; j++) {
      const b = data[j]!;
      let s = 0;
      for (let k = 0; k < width; k++) {
        const d = a[k]! - b[k]!;
        s += d * d;
      }
      D[i * n + j] = s;
      D[j * n + i] = s;
    }
  }
  return D;
}

/** Per-point Gaussian bandwidths found by bisection so each row's entropy is log(perplexity); then symmetrised and normalised. */
function jointProbabilities(D: Float64Array, n: number, perplexity: number): Float64Array {
  const target = Math.log(perplexity);
  const P = new Float64Array(n * n);
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // Distances are shifted by the nearest neighbour's so exp() does not underflow on wide, unscaled features.
    let minD = Infinity;
    for (let j = 0; j < n; j++) if (j !== i) minD = Math.min(minD, D[i * n + j]!);
    let beta = 1;
    let lo = -Infinity;
    let hi = Infinity;
    // Start beta on the scale of the distances.
    let meanD = 0;
    for (let j = 0; j < n; j++) if (j !== i) meanD += D[i * n + j]! - minD;
    meanD /= n - 1;
    if (meanD > 0) beta = 1 / meanD;
    for (let step = 0; step < 100; step++) {
      let sum = 0;
      let weighted = 0;
      for (let j = 0; j < n; j++) {
        const d = j === i ? 0 : D[i * n + j]! - minD;
        const p = j === i ? 0 : Math.exp(-beta * d);
        row[j] = p;
        sum += p;
        weighted += p * d;
      }
      const entropy = Math.log(sum) + (beta * weighted) / sum;
      const diff = entropy - target;
      if (Math.abs(diff) < 1e-5) break;
      if (diff > 0) {
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
      }
    }
    let sum = 0;
    for (let j = 0; j < n; j++) sum += row[j]!;
    for (let j = 0; j < n; j++) P[i * n + j] = row[j]! / sum;
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const p = Math.max((P[i * n + j]! + P[j * n + i]!) / (2 * n), 1e-12);
      P[i * n + j] = p;
      P[j * n + i] = p;
    }
    P[i * n + i] = 0;
  }
  return P;
}

function klDivergence(P: Float64Array, num: Float64Array, sumQ: number, n: number): number {
  let kl = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const p = P[i * n + j]!;
      const q = Math.max(num[i * n + j]! / sumQ, 1e-12);
      kl += p * Math.log(p / q);
    }
  }
  return kl;
}

/** Fraction of points whose nearest other point (Euclidean) has the same label: a quick check that clusters separate. */
export function nearestNeighbourPurity(points: readonly (readonly number[])[], labels: readonly (number | string)[]): number {
  if (points.length !== labels.length || points.length < 2)
    throw new InvalidInputError('purity needs matching points and labels (at least 2)');
  let same = 0;
  for (let i = 0; i < points.length; i++) {
    let best = -1;
    let bestD = Infinity;
    for (let j = 0; j < points.length; j++) {
      if (j === i) continue;
      let d = 0;
      for (let k = 0; k < points[i]!.length; k++) d += (points[i]![k]! - points[j]![k]!) ** 2;
      if (d < bestD) {
        bestD = d;
        best = j;
      }
    }
    if (labels[best] === labels[i]) same++;
  }
  return same / points.length;
}
