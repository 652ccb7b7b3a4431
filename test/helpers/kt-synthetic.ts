// Synthetic prior-token datasets and shared fixtures for the KT-Adapter tests: the priors carry a clean view of the latent
// signal, the canonical token a weak one.
import type { Tensor2D } from '@tensorflow/tfjs';
import type { KtAdapterOptions, KtAdapterParams } from '../../src/train/kt-adapter.js';
import { createRandom, fillNormal } from '../../src/train/seeded-random.js';
import type { Tf } from '../../src/train/tfjs-backend.js';
import { computeDatasetStats, type TokenDataset } from '../../src/train/token-dataset.js';

export interface SyntheticOptions {
  count: number;
  seed: number;
  canonicalWidth?: number;
  priorWidths?: readonly number[];
  /** Std of the canonical token's noise; larger makes the canonical view weaker. */
  canonicalNoise?: number;
  classes?: number;
}

/** y = sum_k sin-ish f(z_k); p_c = A z (noisy, small scale), prior 0 = B z x 50 (clean, large scale), prior 1 = noise. */
export function syntheticTokens(o: SyntheticOptions): TokenDataset {
  const random = createRandom(o.seed);
  const mixing = createRandom(12345); // the same projections for every split
  const latent = 4;
  const cw = o.canonicalWidth ?? 12;
  const pw = o.priorWidths ?? [16, 8];
  const projections = [cw, ...pw].map((w) => fillNormal(mixing, new Float32Array(latent * w)));
  const z = fillNormal(random, new Float32Array(o.count * latent));
  const noise = (n: number, s: number): Float32Array => fillNormal(random, new Float32Array(n), s);
  const project = (which: number, width: number, scale: number, noiseStd: number, offset: number): Float32Array => {
    const out = noise(o.count * width, noiseStd);
    for (let i = 0; i < o.count; i++)
      for (let c = 0; c < width; c++) {
        let s = 0;
        for (let k = 0; k < latent; k++) s += z[i * latent + k]! * projections[which]![k * width + c]!;
        out[i * width + c] = (out[i * width + c]! + s) * scale + offset;
      }
    return out;
  };
  const canonical = project(0, cw, 0.1, o.canonicalNoise ?? 1.5, 0.2);
  const priors = pw.map((w, j) => (j === 0 ? project(1, w, 50, 0.05, 3) : noise(o.count * w, 1)));
  const targets = new Float32Array(o.count * (o.classes ? 1 : 1));
  for (let i = 0; i < o.count; i++) {
    const value = 2 * z[i * latent]! + z[i * latent + 1]! * z[i * latent + 2]! - Math.abs(z[i * latent + 3]!);
    targets[i] = o.classes ? Math.min(o.classes - 1, Math.max(0, Math.floor(((value + 3) / 6) * o.classes))) : value;
  }
  return {
    count: o.count,
    canonical: { name: 'canonical', width: cw, values: canonical },
    priors: pw.map((w, j) => ({ name: `prior${j}`, width: w, values: priors[j]! })),
    targets,
  };
}

/** The training and validation splits every KT-Adapter test uses, with the training split's statistics. */
export const train = syntheticTokens({ count: 192, seed: 1 });
export const validation = syntheticTokens({ count: 96, seed: 2 });
export const stats = computeDatasetStats(train);

/** A small adapter over the synthetic tokens (widths 12 / 16, 8), with the given options changed. */
export function adapterOptions(overrides: Partial<KtAdapterOptions> = {}): KtAdapterOptions {
  return {
    canonicalWidth: 12,
    priorWidths: [16, 8],
    stats,
    decoder: { hidden: [24], outputs: 3 },
    tokenWidth: 16,
    heads: 4,
    seed: 7,
    ...overrides,
  };
}

/** Gate and k far from their initial values, so that the adapter really changes the output. */
export function perturb(tf: Tf, params: KtAdapterParams, seed = 3): void {
  const random = createRandom(seed);
  // Per-channel gates differ per channel (so that an export mixing up channels fails); a scalar gate is 0.8.
  tf.tidy(() =>
    params.gate.assign(
      tf.tensor(
        fillNormal(random, new Float32Array(params.gate.size), 0.2).map((v) => v + 0.8),
        params.gate.shape,
      ),
    ),
  );
  tf.tidy(() => params.knowledgeToken.assign(tf.tensor1d(fillNormal(random, new Float32Array(params.config.tokenWidth), 1))));
  tf.tidy(() => params.layerNormBeta.assign(tf.tensor1d(fillNormal(random, new Float32Array(params.config.tokenWidth), 0.3))));
}

/** The values of a tensor, which is disposed. */
export function read(t: Tensor2D): Float32Array {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return Float32Array.from(v);
}

export const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
