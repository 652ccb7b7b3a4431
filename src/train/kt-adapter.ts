// The KT-Adapter (DESIGN section 4) in TF.js: parameters as tf.Variables, the training forward with drop and canonical masks, and the inference path.
import type { Tf } from './tfjs-backend.js';
import type { Tensor, Tensor2D, Variable } from '@tensorflow/tfjs';
import { InvalidInputError } from '../core/errors.js';
import { applyMlp, createMlp, mlpVariables, type DecoderInit, type Mlp } from './dense.js';
import { applyHiddenActivation, applyOutputActivation, layerNorm, matMul, variableOf, type OutputActivation } from './tensor-ops.js';
import { createRandom, fillNormal, fillUniform, type UniformRandom } from './seeded-random.js';
import type { TokenBatch, TokenStats } from './token-dataset.js';
import type { TrainableModel } from './trainable-model.js';

/** Additive attention-logit mask of a dropped key: exp(-1e9 - max) is exactly 0 in float32. */
export const droppedKeyLogit = -1e9;

export interface KtAdapterOptions {
  /** C_c: width of the canonical token p_c. */
  canonicalWidth: number;
  /** C_j: widths of the prior tokens, in dataset order (use selectPriors for a subset; [] is the capacity control). */
  priorWidths: readonly number[];
  /** Training-split statistics of the canonical token and of every prior (computeDatasetStats). */
  stats: { canonical: TokenStats; priors: readonly TokenStats[] };
  /** Decoder MLP on h (raw canonical-token space): pre-trained layers (the shipped head after GAP) or a new MLP. */
  decoder: DecoderInit;
  /** Output activation at inference and export. Default 'none'; a pre-trained last-layer softmax sets 'softmax'. */
  outputActivation?: OutputActivation;
  /** D: common token width. Default: C_c with prior projection, else the widest token (zero padding, the paper's form). */
  tokenWidth?: number;
  /** Training only: each standardised prior goes through Dense(C_j -> D) + LayerNorm instead of zero padding, so D can
   * be C_c (a smaller adapter) whatever the priors' widths. The inference path never sees a prior. Default true. */
  priorProjection?: boolean;
  /** 'channel' (default): one gate per canonical channel; 'scalar': the paper's single g. */
  gate?: 'channel' | 'scalar';
  /** The gate's learning rate relative to the others (AdamW moves a parameter by about lr per step, so a zero-init
   * gate at lr 1e-3 reaches only |g| ~ 0.2 in a short run). Default 10. */
  gateLearningRateScale?: number;
  /** Attention heads h; D must be divisible by h. Default: the largest of 8, 4, 2, 1 that divides D. */
  heads?: number;
  /** FFN hidden width = ffnMultiplier * D. Default 2. */
  ffnMultiplier?: number;
  /** Default 'gelu' (exact, erf-based). */
  ffnActivation?: 'gelu' | 'relu';
  /** Learnable positional embedding per token slot (k, p_c, p_j...). Default false (the paper leaves it off). */
  positionalEmbedding?: boolean;
  /** Keep only the rows of k and p_c after attention. Default true. Off: FFN/LN on every row and the decoder gets
   * 2 x the mean of the kept rows, which is Z_0 + Z_1 again when every prior is dropped (so inference is unchanged). */
  canonicalMask?: boolean;
  /** Drop priors at random during training. Default true; false keeps every prior (the "no DM" ablation). */
  dropMask?: boolean;
  /** tau: a prior is dropped for a sample when u < tau, u ~ U(0,1). Default 0.5. 1 drops every prior always
   * (the zero-priors capacity control). */
  dropMaskThreshold?: number;
  /** Default 1e-5. */
  layerNormEpsilon?: number;
  /** 'canonical-std' (default) multiplies the adapter's contribution by the canonical token's training std per channel,
   * so the standardised-space adapter output lands in the raw feature scale the decoder reads; 'none' is the plain formula. */
  residualScale?: 'canonical-std' | 'none';
  /** g at initialisation. Default 0: training starts exactly at the decoder on p_c. */
  initialGate?: number;
  /** Seed of the weight initialisation. Default 0. */
  seed?: number;
}

/** Every option resolved (the decoder is in the params). */
export interface KtAdapterConfig {
  canonicalWidth: number;
  priorWidths: readonly number[];
  tokenWidth: number;
  heads: number;
  ffnMultiplier: number;
  ffnHiddenWidth: number;
  ffnActivation: 'gelu' | 'relu';
  positionalEmbedding: boolean;
  canonicalMask: boolean;
  dropMask: boolean;
  dropMaskThreshold: number;
  layerNormEpsilon: number;
  residualScale: 'canonical-std' | 'none';
  outputActivation: OutputActivation;
  priorProjection: boolean;
  gate: 'channel' | 'scalar';
  gateLearningRateScale: number;
}

export const defaultKtAdapterOptions = {
  ffnMultiplier: 2,
  ffnActivation: 'gelu',
  positionalEmbedding: false,
  canonicalMask: true,
  dropMask: true,
  dropMaskThreshold: 0.5,
  layerNormEpsilon: 1e-5,
  residualScale: 'canonical-std',
  initialGate: 0,
  seed: 0,
  priorProjection: true,
  gate: 'channel',
  gateLearningRateScale: 10,
} as const satisfies Partial<KtAdapterOptions>;

export interface Linear {
  /** [inputs, outputs] */
  kernel: Variable;
  /** [outputs] */
  bias: Variable;
}

/** Training-only map of a standardised prior to width D: LN(z W + b). */
export interface PriorProjection {
  linear: Linear;
  gamma: Variable;
  beta: Variable;
}

/** Standardisation constants on the device (not trainable). */
export interface Standardiser {
  mean: Variable;
  inverseStd: Variable;
}

export interface KtAdapterParams {
  config: KtAdapterConfig;
  /** Training statistics as arrays (the export writes them as constants). */
  stats: { canonical: TokenStats; priors: readonly TokenStats[] };
  standardisers: { canonical: Standardiser; priors: Standardiser[]; canonicalStd: Variable };
  /** k in R^D */
  knowledgeToken: Variable;
  /** [2 + priors, D] or null when off; row 0 is k's slot, row 1 p_c's, row 2 + j prior j's. */
  positionalEmbedding: Variable | null;
  query: Linear;
  key: Linear;
  value: Linear;
  attentionOutput: Linear;
  ffnHidden: Linear;
  ffnOutput: Linear;
  layerNormGamma: Variable;
  layerNormBeta: Variable;
  /** One per prior when priorProjection is on, else empty. */
  priorProjections: PriorProjection[];
  /** g: scalar [] or per canonical channel [C_c]. */
  gate: Variable;
  decoder: Mlp;
}

function resolveConfig(options: KtAdapterOptions): KtAdapterConfig {
  const { canonicalWidth, priorWidths } = options;
  const priorProjection = options.priorProjection ?? defaultKtAdapterOptions.priorProjection;
  // Projected priors need only D >= C_c; padded ones need D >= every width.
  const widest = priorProjection ? canonicalWidth : Math.max(canonicalWidth, ...priorWidths);
  const tokenWidth = options.tokenWidth ?? widest;
  if (!(canonicalWidth > 0) || priorWidths.some((w) => !(w > 0))) throw new InvalidInputError('token widths must be positive');
  if (tokenWidth < widest) throw new InvalidInputError(`tokenWidth ${tokenWidth} is narrower than the widest token (${widest})`);
  const heads = options.heads ?? [8, 4, 2, 1].find((h) => tokenWidth % h === 0)!;
  if (tokenWidth % heads !== 0) throw new InvalidInputError(`tokenWidth ${tokenWidth} is not divisible by ${heads} heads`);
  if (options.stats.canonical.mean.length !== canonicalWidth)
    throw new InvalidInputError('canonical stats width does not match canonicalWidth');
  if (options.stats.priors.length !== priorWidths.length || options.stats.priors.some((s, j) => s.mean.length !== priorWidths[j]))
    throw new InvalidInputError('prior stats do not match priorWidths');
  const tau = options.dropMaskThreshold ?? defaultKtAdapterOptions.dropMaskThreshold;
  if (!(tau >= 0 && tau <= 1)) throw new InvalidInputError(`dropMaskThreshold must be in [0, 1], got ${tau}`);
  const ffnMultiplier = options.ffnMultiplier ?? defaultKtAdapterOptions.ffnMultiplier;
  return {
    canonicalWidth,
    priorWidths: [...priorWidths],
    tokenWidth,
    heads,
    ffnMultiplier,
    ffnHiddenWidth: Math.max(1, Math.round(ffnMultiplier * tokenWidth)),
    ffnActivation: options.ffnActivation ?? defaultKtAdapterOptions.ffnActivation,
    positionalEmbedding: options.positionalEmbedding ?? defaultKtAdapterOptions.positionalEmbedding,
    canonicalMask: options.canonicalMask ?? defaultKtAdapterOptions.canonicalMask,
    dropMask: options.dropMask ?? defaultKtAdapterOptions.dropMask,
    dropMaskThreshold: tau,
    layerNormEpsilon: options.layerNormEpsilon ?? defaultKtAdapterOptions.layerNormEpsilon,
    residualScale: options.residualScale ?? defaultKtAdapterOptions.residualScale,
    outputActivation: options.outputActivation ?? 'none',
    priorProjection,
    gate: options.gate ?? defaultKtAdapterOptions.gate,
    gateLearningRateScale: options.gateLearningRateScale ?? defaultKtAdapterOptions.gateLearningRateScale,
  };
}

export function createKtAdapterParams(tf: Tf, options: KtAdapterOptions): KtAdapterParams {
  const config = resolveConfig(options);
  const random = createRandom(options.seed ?? defaultKtAdapterOptions.seed);
  const D = config.tokenWidth;
  const F = config.ffnHiddenWidth;
  const linear = (inputs: number, outputs: number): Linear => ({
    kernel: variableOf(
      tf,
      fillUniform(random, new Float32Array(inputs * outputs), Math.sqrt(6 / (inputs + outputs))),
      [inputs, outputs],
      true,
    ),
    bias: variableOf(tf, new Float32Array(outputs), [outputs], true),
  });
  const constant = (values: Float32Array): Variable => variableOf(tf, values, [values.length], false);
  const standardiser = (s: TokenStats): Standardiser => ({ mean: constant(s.mean), inverseStd: constant(s.std.map((v) => 1 / v)) });
  const decoder = createMlp(tf, config.canonicalWidth, options.decoder, random, options.stats.canonical, config.outputActivation);
  config.outputActivation = decoder.outputActivation;
  return {
    config,
    stats: { canonical: options.stats.canonical, priors: [...options.stats.priors] },
    standardisers: {
      canonical: standardiser(options.stats.canonical),
      priors: options.stats.priors.map(standardiser),
      canonicalStd: constant(options.stats.canonical.std),
    },
    // Small, like a ViT class token: k then starts by attending uniformly, pooling the kept tokens.
    knowledgeToken: variableOf(tf, fillNormal(random, new Float32Array(D), 0.02), [D], true),
    positionalEmbedding: config.positionalEmbedding
      ? variableOf(
          tf,
          fillNormal(random, new Float32Array((2 + config.priorWidths.length) * D), 0.02),
          [2 + config.priorWidths.length, D],
          true,
        )
      : null,
    query: linear(D, D),
    key: linear(D, D),
    value: linear(D, D),
    attentionOutput: linear(D, D),
    ffnHidden: linear(D, F),
    ffnOutput: linear(F, D),
    layerNormGamma: variableOf(tf, new Float32Array(D).fill(1), [D], true),
    layerNormBeta: variableOf(tf, new Float32Array(D), [D], true),
    priorProjections: config.priorProjection
      ? config.priorWidths.map((w) => ({
          linear: linear(w, D),
          gamma: variableOf(tf, new Float32Array(D).fill(1), [D], true),
          beta: variableOf(tf, new Float32Array(D), [D], true),
        }))
      : [],
    gate: createGate(tf, config, options.initialGate ?? defaultKtAdapterOptions.initialGate),
    decoder,
  };
}

function createGate(tf: Tf, config: KtAdapterConfig, initial: number): Variable {
  return config.gate === 'scalar'
    ? variableOf(tf, Float32Array.of(initial), [], true)
    : variableOf(tf, new Float32Array(config.canonicalWidth).fill(initial), [config.canonicalWidth], true);
}

/** The gate per canonical channel as the decoder input sees it: g (x the canonical std with residualScale 'canonical-std'). */
export function effectiveGate(params: KtAdapterParams): Float32Array {
  const g = Float32Array.from(params.gate.dataSync() as Float32Array);
  const perChannel = g.length === 1 ? new Float32Array(params.config.canonicalWidth).fill(g[0]!) : g;
  return params.config.residualScale === 'canonical-std' ? perChannel.map((v, c) => v * params.stats.canonical.std[c]!) : perChannel;
}

/** The adapter and the decoder: what training updates. */
export function ktAdapterTrainableVariables(params: KtAdapterParams): Variable[] {
  const linears = [params.query, params.key, params.value, params.attentionOutput, params.ffnHidden, params.ffnOutput].flatMap((l) => [
    l.kernel,
    l.bias,
  ]);
  return [
    params.knowledgeToken,
    ...(params.positionalEmbedding ? [params.positionalEmbedding] : []),
    ...linears,
    params.layerNormGamma,
    params.layerNormBeta,
    ...params.priorProjections.flatMap((p) => [p.linear.kernel, p.linear.bias, p.gamma, p.beta]),
    params.gate,
    ...mlpVariables(params.decoder),
  ];
}

export function disposeKtAdapterParams(params: KtAdapterParams): void {
  const s = params.standardisers;
  for (const v of [
    ...ktAdapterTrainableVariables(params),
    s.canonical.mean,
    s.canonical.inverseStd,
    s.canonicalStd,
    ...s.priors.flatMap((p) => [p.mean, p.inverseStd]),
  ])
    v.dispose();
}

/** Per sample and prior: 1 when u_j < tau (dropped). Row-major [count, priors]. */
export function sampleDropMask(random: UniformRandom, count: number, priors: number, dropMaskThreshold: number): Uint8Array {
  const dropped = new Uint8Array(count * priors);
  for (let i = 0; i < dropped.length; i++) dropped[i] = random() < dropMaskThreshold ? 1 : 0;
  return dropped;
}

export interface KtForwardOptions {
  /** Row-major [N, priors], 1 = dropped. Absent: every prior is kept. */
  droppedPriors?: Uint8Array;
}

const standardiseAndPad = (tf: Tf, raw: Tensor2D, s: Standardiser, tokenWidth: number): Tensor2D => {
  const z = tf.mul(tf.sub(raw, s.mean), s.inverseStd) as Tensor2D;
  const width = raw.shape[1];
  return width === tokenWidth
    ? z
    : tf.pad(z, [
        [0, 0],
        [0, tokenWidth - width],
      ]);
};

/** A prior token at width D: standardised, then projected (Dense + LayerNorm) or zero-padded. */
function priorToken(tf: Tf, params: KtAdapterParams, raw: Tensor2D, j: number): Tensor2D {
  const projection = params.priorProjections[j];
  if (!projection) return standardiseAndPad(tf, raw, params.standardisers.priors[j]!, params.config.tokenWidth);
  const s = params.standardisers.priors[j]!;
  const z = tf.mul(tf.sub(raw, s.mean), s.inverseStd);
  const projected = tf.add(matMul(tf, z, projection.linear.kernel), projection.linear.bias);
  return layerNorm(tf, projected, projection.gamma, projection.beta, params.config.layerNormEpsilon) as Tensor2D;
}

function checkForwardInputs(
  config: KtAdapterConfig,
  canonical: Tensor2D,
  priors: readonly Tensor2D[],
  droppedPriors: Uint8Array | undefined,
): void {
  const N = canonical.shape[0];
  const P = priors.length;
  if (canonical.shape[1] !== config.canonicalWidth)
    throw new InvalidInputError(`canonical token width ${canonical.shape[1]} != ${config.canonicalWidth}`);
  if (P !== 0 && P !== config.priorWidths.length)
    throw new InvalidInputError(`expected ${config.priorWidths.length} prior tokens, got ${P}`);
  priors.forEach((p, j) => {
    if (p.shape[1] !== config.priorWidths[j] || p.shape[0] !== N)
      throw new InvalidInputError(`prior ${j} has shape [${p.shape.join(',')}], expected [${N},${config.priorWidths[j]}]`);
  });
  if (droppedPriors && droppedPriors.length !== N * P)
    throw new InvalidInputError(`droppedPriors has ${droppedPriors.length} entries, expected ${N}x${P}`);
}

/** Key mask (additive, before softmax) and the kept-row weights [N * S] from the drop mask; null when nothing is dropped. */
function dropMasks(
  tf: Tf,
  droppedPriors: Uint8Array | undefined,
  N: number,
  P: number,
): { keyMask: Tensor | null; keptRows: Float32Array | null } {
  if (!droppedPriors || P === 0 || !droppedPriors.some((d) => d === 1)) return { keyMask: null, keptRows: null };
  const S = 2 + P;
  const additive = new Float32Array(N * S);
  const keptRows = new Float32Array(N * S).fill(1);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < P; j++) {
      if (droppedPriors[i * P + j] === 1) {
        additive[i * S + 2 + j] = droppedKeyLogit;
        keptRows[i * S + 2 + j] = 0;
      }
    }
  }
  return { keyMask: tf.tensor4d(additive, [N, 1, 1, S]), keptRows };
}

/** A = T + MHSA(T) on tokens [N, S, D], with explicit transposes (no transposed matMul). */
function attentionResidual(tf: Tf, params: KtAdapterParams, tokens: Tensor, keyMask: Tensor | null): Tensor {
  const [N, S, D] = tokens.shape as [number, number, number];
  const h = params.config.heads;
  const headWidth = D / h;
  const flat = tf.reshape(tokens, [N * S, D]);
  const project = (l: Linear): Tensor => tf.add(matMul(tf, flat, l.kernel), l.bias);
  const q = tf.transpose(tf.reshape(project(params.query), [N, S, h, headWidth]), [0, 2, 1, 3]); // [N,h,S,dh]
  const kT = tf.transpose(tf.reshape(project(params.key), [N, S, h, headWidth]), [0, 2, 3, 1]); // [N,h,dh,S]
  const v = tf.transpose(tf.reshape(project(params.value), [N, S, h, headWidth]), [0, 2, 1, 3]); // [N,h,S,dh]
  let scores = tf.mul(matMul(tf, q, kT), 1 / Math.sqrt(headWidth)); // [N,h,S,S]
  if (keyMask) scores = tf.add(scores, keyMask);
  const attended = matMul(tf, tf.softmax(scores), v); // [N,h,S,dh]
  const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [N * S, D]);
  const attentionOut = tf.add(matMul(tf, merged, params.attentionOutput.kernel), params.attentionOutput.bias);
  return tf.add(tokens, tf.reshape(attentionOut, [N, S, D]));
}

/** Z = LN(A + FFN(A)) on the rows the canonical mask keeps (k and p_c), else on every row: [N, rows, D]. */
function ffnNormalised(tf: Tf, params: KtAdapterParams, residual: Tensor): Tensor {
  const { config } = params;
  const [N, S, D] = residual.shape as [number, number, number];
  const rows = config.canonicalMask ? 2 : S;
  const selected = tf.reshape(config.canonicalMask ? tf.slice(residual, [0, 0, 0], [N, 2, D]) : residual, [N * rows, D]);
  const hidden = applyHiddenActivation(
    tf,
    tf.add(matMul(tf, selected, params.ffnHidden.kernel), params.ffnHidden.bias),
    config.ffnActivation,
  );
  const ffnOut = tf.add(matMul(tf, hidden, params.ffnOutput.kernel), params.ffnOutput.bias);
  return tf.reshape(layerNorm(tf, tf.add(selected, ffnOut), params.layerNormGamma, params.layerNormBeta, config.layerNormEpsilon), [
    N,
    rows,
    D,
  ]);
}

/** k' + p'_c, or 2 x the mean of the kept rows without the canonical mask: [N, D]. */
function adapterOutput(tf: Tf, config: KtAdapterConfig, normalised: Tensor, keptRows: Float32Array | null): Tensor {
  if (config.canonicalMask) return tf.sum(normalised, 1);
  const [N, S] = normalised.shape as [number, number, number];
  const kept = keptRows ?? new Float32Array(N * S).fill(1);
  const keptCount = new Float32Array(N);
  for (let i = 0; i < N; i++) for (let s = 0; s < S; s++) keptCount[i] = keptCount[i]! + kept[i * S + s]!;
  return tf.div(tf.mul(tf.sum(tf.mul(normalised, tf.tensor3d(kept, [N, S, 1])), 1), 2), tf.tensor2d(keptCount, [N, 1]));
}

/**
 * h = p_c + g (k' + p'_c)[:C_c], the decoder's input. `priors` empty is the inference path; otherwise the training
 * forward, with dropped priors masked as attention keys. [N, C_c].
 */
function decoderInputOf(
  tf: Tf,
  params: KtAdapterParams,
  canonical: Tensor2D,
  priors: readonly Tensor2D[],
  droppedPriors: Uint8Array | undefined,
): Tensor2D {
  const { config } = params;
  const D = config.tokenWidth;
  const N = canonical.shape[0];
  const S = 2 + priors.length;
  checkForwardInputs(config, canonical, priors, droppedPriors);

  return tf.tidy(() => {
    const tokenList: Tensor2D[] = [
      tf.broadcastTo(tf.reshape(params.knowledgeToken, [1, D]), [N, D]) as Tensor2D,
      standardiseAndPad(tf, canonical, params.standardisers.canonical, D),
      ...priors.map((p, j) => priorToken(tf, params, p, j)),
    ];
    let tokens: Tensor = tf.stack(tokenList, 1); // [N, S, D]
    if (params.positionalEmbedding) tokens = tf.add(tokens, tf.slice(params.positionalEmbedding, [0, 0], [S, D]));
    const { keyMask, keptRows } = dropMasks(tf, droppedPriors, N, priors.length);
    const residual = attentionResidual(tf, params, tokens, keyMask);
    const adapterOut = adapterOutput(tf, config, ffnNormalised(tf, params, residual), keptRows);
    let contribution = config.canonicalWidth === D ? adapterOut : tf.slice(adapterOut, [0, 0], [N, config.canonicalWidth]);
    if (config.residualScale === 'canonical-std') contribution = tf.mul(contribution, params.standardisers.canonicalStd);
    return tf.add(canonical, tf.mul(params.gate, contribution)) as Tensor2D; // h = p_c + g (k'[:C_c] + p'_c[:C_c])
  });
}

/** The adapter and decoder on the given tokens: pre-activation outputs [N, outputs]. */
function forwardTokens(
  tf: Tf,
  params: KtAdapterParams,
  canonical: Tensor2D,
  priors: readonly Tensor2D[],
  droppedPriors: Uint8Array | undefined,
): Tensor2D {
  return tf.tidy(() => applyMlp(tf, params.decoder, decoderInputOf(tf, params, canonical, priors, droppedPriors)));
}

/** Mean over samples of ||h - p_c|| / ||p_c|| on the inference path: how much the adapter changes the decoder's input. */
export function adapterContribution(tf: Tf, params: KtAdapterParams, canonical: Tensor2D): number {
  return tf.tidy(() => {
    const h = decoderInputOf(tf, params, canonical, [], undefined);
    const ratio = tf.div(tf.norm(tf.sub(h, canonical), 'euclidean', 1), tf.maximum(tf.norm(canonical, 'euclidean', 1), 1e-12));
    return tf.mean(ratio).dataSync()[0]!;
  });
}

/** Training forward over [k, p_c, p_j...] with the given drop mask. Pre-activation outputs [N, outputs]. */
export function ktForwardTrain(tf: Tf, params: KtAdapterParams, batch: TokenBatch, options: KtForwardOptions = {}): Tensor2D {
  if (batch.priors.length !== params.config.priorWidths.length)
    throw new InvalidInputError(`expected ${params.config.priorWidths.length} prior tokens, got ${batch.priors.length}`);
  if (batch.priors.length === 0) return forwardTokens(tf, params, batch.canonical, [], undefined);
  return forwardTokens(tf, params, batch.canonical, batch.priors, options.droppedPriors);
}

/** Inference: tokens [k, p_c] only, no masks. Pre-activation outputs [N, outputs]. */
export function ktPredict(tf: Tf, params: KtAdapterParams, canonical: Tensor2D): Tensor2D {
  return forwardTokens(tf, params, canonical, [], undefined);
}

/** Inference with the output activation applied (what the exported graph returns). */
export function ktPredictOutput(tf: Tf, params: KtAdapterParams, canonical: Tensor2D): Tensor2D {
  return tf.tidy(() => applyOutputActivation(tf, ktPredict(tf, params, canonical), params.config.outputActivation) as Tensor2D);
}

/** The decoder alone on p_c (what the model computes while g = 0). */
export function ktDecoderOnCanonical(tf: Tf, params: KtAdapterParams, canonical: Tensor2D): Tensor2D {
  return applyMlp(tf, params.decoder, canonical);
}

/** g for a scalar gate; the mean |g| over channels for a per-channel gate. */
export function gateValue(params: KtAdapterParams): number {
  const g = params.gate.dataSync() as Float32Array;
  return g.length === 1 ? g[0]! : g.reduce((a, v) => a + Math.abs(v), 0) / g.length;
}

export interface KtAdapterModel extends TrainableModel {
  readonly kind: 'kt-adapter';
  readonly params: KtAdapterParams;
}

/** The KT-Adapter as a TrainableModel: forwardTrain draws the drop mask per sample and prior. */
export function createKtAdapter(tf: Tf, options: KtAdapterOptions): KtAdapterModel {
  const params = createKtAdapterParams(tf, options);
  const { config } = params;
  return {
    kind: 'kt-adapter',
    tf,
    params,
    get outputActivation() {
      return params.config.outputActivation;
    },
    trainableVariables: () => ktAdapterTrainableVariables(params),
    learningRateScale: (v) => (v === params.gate ? config.gateLearningRateScale : 1),
    forwardTrain(batch, random) {
      const N = batch.canonical.shape[0];
      const P = batch.priors.length;
      const droppedPriors = config.dropMask && P > 0 ? sampleDropMask(random, N, P, config.dropMaskThreshold) : undefined;
      return ktForwardTrain(tf, params, batch, droppedPriors ? { droppedPriors } : {});
    },
    predict: (batch) => ktPredict(tf, params, batch.canonical),
    ...(config.priorWidths.length > 0 ? { predictWithPriors: (batch: TokenBatch) => ktForwardTrain(tf, params, batch) } : {}),
    dispose: () => disposeKtAdapterParams(params),
  };
}
