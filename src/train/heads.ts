// Comparator heads: the baseline MLP on p_c (head tuning) and the ensemble MLP on every standardised prior token.
import type { Tf } from './tfjs-backend.js';
import type { Tensor2D } from '@tensorflow/tfjs';
import { InvalidInputError } from '../core/errors.js';
import { applyMlp, createMlp, mlpVariables, type DecoderInit, type Mlp } from './dense.js';
import { variableOf, type OutputActivation } from './tensor-ops.js';
import { createRandom } from './seeded-random.js';
import type { TokenBatch, TokenStats } from './token-dataset.js';
import type { TrainableModel } from './trainable-model.js';

export interface BaselineHeadOptions {
  canonicalWidth: number;
  /** Canonical training statistics: folded into a randomly drawn first layer (unused with pre-trained layers). */
  canonicalStats: TokenStats;
  /** Pre-trained head layers (the shipped model after GAP) or a new MLP. */
  decoder: DecoderInit;
  /** Default 'none'; a pre-trained last-layer softmax sets 'softmax'. */
  outputActivation?: OutputActivation;
  /** Default 0. */
  seed?: number;
}

export interface BaselineHead extends TrainableModel {
  readonly kind: 'baseline';
  readonly mlp: Mlp;
}

/** y = MLP(p_c): the paper's "baseline" rows. The MLP reads raw p_c, so a pre-trained head drops in unchanged. */
export function createBaselineHead(tf: Tf, options: BaselineHeadOptions): BaselineHead {
  const mlp = createMlp(
    tf,
    options.canonicalWidth,
    options.decoder,
    createRandom(options.seed ?? 0),
    options.canonicalStats,
    options.outputActivation ?? 'none',
  );
  const forward = (batch: TokenBatch): Tensor2D => applyMlp(tf, mlp, batch.canonical);
  return {
    kind: 'baseline',
    tf,
    mlp,
    outputActivation: mlp.outputActivation,
    trainableVariables: () => mlpVariables(mlp),
    forwardTrain: (batch) => forward(batch),
    predict: forward,
    dispose: () => {
      for (const v of mlpVariables(mlp)) v.dispose();
    },
  };
}

export interface EnsembleHeadOptions {
  /** Training statistics of the canonical token and of every prior, in dataset order. */
  stats: { canonical: TokenStats; priors: readonly TokenStats[] };
  /** Default [256]. */
  hidden?: readonly number[];
  outputs: number;
  /** Default 'relu'. */
  hiddenActivation?: 'relu' | 'gelu' | 'tanh';
  /** Default 'none'. */
  outputActivation?: OutputActivation;
  /** Default 0. */
  seed?: number;
  /** The fair form: the shipped head on raw p_c (these layers) plus a prior branch whose last layer starts at zero,
   * so training starts exactly at the shipped model, like the baseline and KT. Without it: one new MLP on every token. */
  head?: { canonicalWidth: number; decoder: DecoderInit };
}

export interface EnsembleHead extends TrainableModel {
  readonly kind: 'ensemble';
  /** The MLP on the standardised tokens (the prior branch when `head` is set). */
  readonly mlp: Mlp;
  /** The shipped head on raw p_c, when the ensemble has one. */
  readonly head: Mlp | null;
}

/**
 * y = MLP(concat of every standardised token), or with `head`: y = head(p_c) + branch(concat of standardised priors),
 * the branch's last layer zero. N encoders at inference, the cost the paper avoids.
 */
export function createEnsembleHead(tf: Tf, options: EnsembleHeadOptions): EnsembleHead {
  const random = createRandom(options.seed ?? 0);
  const head = options.head ? createMlp(tf, options.head.canonicalWidth, options.head.decoder, random) : null;
  const all = head ? [...options.stats.priors] : [options.stats.canonical, ...options.stats.priors];
  if (all.length === 0) throw new InvalidInputError('ensemble needs at least one prior next to the shipped head');
  const width = all.reduce((a, s) => a + s.mean.length, 0);
  const mean = variableOf(tf, concat(all.map((s) => s.mean)), [width], false);
  const inverseStd = variableOf(tf, concat(all.map((s) => s.std.map((v) => 1 / v))), [width], false);
  const mlp = createMlp(
    tf,
    width,
    { hidden: options.hidden ?? [256], outputs: options.outputs, hiddenActivation: options.hiddenActivation ?? 'relu' },
    random,
    undefined,
    head ? head.outputActivation : (options.outputActivation ?? 'none'),
  );
  if (head) {
    const last = mlp.layers[mlp.layers.length - 1]!;
    tf.tidy(() => last.kernel.assign(tf.zerosLike(last.kernel)));
  }
  const forward = (batch: TokenBatch): Tensor2D => {
    if (batch.priors.length !== options.stats.priors.length)
      throw new InvalidInputError(`ensemble expects ${options.stats.priors.length} priors, got ${batch.priors.length}`);
    return tf.tidy(() => {
      const tokens = head ? batch.priors : [batch.canonical, ...batch.priors];
      const branch = applyMlp(tf, mlp, tf.mul(tf.sub(tokens.length === 1 ? tokens[0]! : tf.concat([...tokens], 1), mean), inverseStd));
      return head ? (tf.add(applyMlp(tf, head, batch.canonical), branch) as Tensor2D) : branch;
    });
  };
  return {
    kind: 'ensemble',
    tf,
    mlp,
    head,
    outputActivation: mlp.outputActivation,
    trainableVariables: () => [...(head ? mlpVariables(head) : []), ...mlpVariables(mlp)],
    forwardTrain: (batch) => forward(batch),
    predict: forward,
    dispose: () => {
      for (const v of [...(head ? mlpVariables(head) : []), ...mlpVariables(mlp), mean, inverseStd]) v.dispose();
    },
  };
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
