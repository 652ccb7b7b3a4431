// The comparators of one `kt train` run: baseline, ensemble, KT-Adapter and its ablations and capacity control, built on one task.
import type { Tensor2D } from '@tensorflow/tfjs';
import { InvalidInputError } from '../core/errors.js';
import type { Tf } from './tfjs-backend.js';
import { readMlp } from './dense.js';
import { exportBaselineOnnx, exportKtAdapterOnnx } from './export-onnx.js';
import { createBaselineHead, createEnsembleHead, type BaselineHead, type EnsembleHead } from './heads.js';
import { createKtAdapter, type KtAdapterModel, type KtAdapterOptions } from './kt-adapter.js';
import type { PreparedTask } from './pipeline-tasks.js';
import { matMul } from './tensor-ops.js';
import type { TokenBatch, TokenStats } from './token-dataset.js';
import type { TrainableModel } from './trainable-model.js';

export type VariantKind = 'baseline' | 'ensemble' | 'kt';

export interface VariantSpec {
  id: string;
  label: string;
  kind: VariantKind;
  /** KT: how many of the priors (in flag order) it sees; undefined = all. 0 is the capacity control. */
  priorCount?: number;
  /** KT options that differ from the default KT. */
  kt?: Partial<Pick<KtAdapterOptions, 'dropMask' | 'canonicalMask' | 'positionalEmbedding' | 'gate' | 'priorProjection'>>;
  /** false: no self-distillation of the deployment path (the kt-no-distill ablation). */
  distill?: boolean;
  /** Ablations may run with fewer epochs (--ablation-epochs). */
  ablation: boolean;
}

export const CAPACITY_CONTROL_ID = 'kt-zero';

/** Variant ids: baseline, ensemble, kt, kt-no-dm, kt-no-cm, kt-pe, kt-priors<N>, kt-zero (capacity control). */
export function variantSpec(id: string, priorNames: readonly string[]): VariantSpec {
  const P = priorNames.length;
  switch (id) {
    case 'baseline':
      return { id, label: 'baseline (MLP on p_c)', kind: 'baseline', ablation: false };
    case 'ensemble':
      return { id, label: `ensemble (shipped head + MLP on ${P} priors)`, kind: 'ensemble', ablation: false };
    case 'kt':
      return { id, label: `KT-Adapter (${P} priors)`, kind: 'kt', ablation: false };
    case 'kt-no-dm':
      return { id, label: 'KT, no drop mask', kind: 'kt', kt: { dropMask: false }, ablation: true };
    case 'kt-no-cm':
      return { id, label: 'KT, no canonical mask', kind: 'kt', kt: { canonicalMask: false }, ablation: true };
    case 'kt-pe':
      return { id, label: 'KT, with PE', kind: 'kt', kt: { positionalEmbedding: true }, ablation: true };
    case 'kt-no-distill':
      return { id, label: 'KT, no self-distillation', kind: 'kt', distill: false, ablation: true };
    case 'kt-scalar-gate':
      return { id, label: 'KT, one scalar gate', kind: 'kt', kt: { gate: 'scalar' }, ablation: true };
    case CAPACITY_CONTROL_ID:
      return { id, label: 'capacity control (KT, 0 priors)', kind: 'kt', priorCount: 0, ablation: false };
  }
  const m = /^kt-priors(\d+)$/.exec(id);
  if (m) {
    const n = Number(m[1]);
    if (n < 0 || n > P) throw new InvalidInputError(`variant ${id}: there are ${P} priors`);
    return {
      id,
      label: `KT, ${n} prior${n === 1 ? '' : 's'} (${priorNames.slice(0, n).join(', ') || 'none'})`,
      kind: 'kt',
      priorCount: n,
      ablation: n !== 0,
    };
  }
  throw new InvalidInputError(
    `unknown variant "${id}" (baseline, ensemble, kt, kt-no-distill, kt-scalar-gate, kt-no-dm, kt-no-cm, kt-pe, kt-priors<N>, ${CAPACITY_CONTROL_ID})`,
  );
}

export const DEFAULT_VARIANTS = [
  'baseline',
  'ensemble',
  'kt',
  CAPACITY_CONTROL_ID,
  'kt-no-distill',
  'kt-scalar-gate',
  'kt-priors2',
  'kt-no-dm',
  'kt-no-cm',
  'kt-pe',
] as const;

/** Indices of the priors a variant sees. */
export function variantPriorIndices(spec: VariantSpec, priorCount: number): number[] {
  if (spec.kind === 'baseline') return [];
  const n = spec.kind === 'kt' ? (spec.priorCount ?? priorCount) : priorCount;
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Age: the decoder's logits over bins become the expected age sum_i i softmax(logits)_i, so the Wing loss and the
 * metrics work in years. Emotion: the model as it is (logits; cross-entropy).
 */
export interface TaskModel {
  model: TrainableModel;
  /** The inner model (for export and weight counts). */
  inner: BaselineHead | EnsembleHead | KtAdapterModel;
}

export function wrapForTask(tf: Tf, inner: BaselineHead | EnsembleHead | KtAdapterModel, task: PreparedTask): TaskModel {
  const bins = task.expectedValueBins;
  if (bins === undefined) return { model: inner, inner };
  const binValues = tf.tensor2d(
    Float32Array.from({ length: bins }, (_, i) => i),
    [bins, 1],
  );
  const expected = (logits: Tensor2D): Tensor2D => tf.tidy(() => matMul(tf, tf.softmax(logits), binValues) as Tensor2D);
  const model: TrainableModel = {
    kind: inner.kind,
    tf,
    outputActivation: 'none',
    trainableVariables: () => inner.trainableVariables(),
    forwardTrain: (batch, random) => tf.tidy(() => expected(inner.forwardTrain(batch, random))),
    predict: (batch) => tf.tidy(() => expected(inner.predict(batch))),
    ...(inner.predictWithPriors
      ? { predictWithPriors: (batch: TokenBatch) => tf.tidy(() => expected(inner.predictWithPriors!(batch))) }
      : {}),
    ...(inner.learningRateScale ? { learningRateScale: inner.learningRateScale } : {}),
    dispose: () => {
      inner.dispose();
      binValues.dispose();
    },
  };
  return { model, inner };
}

export interface BuildVariantOptions {
  task: PreparedTask;
  canonicalWidth: number;
  priorWidths: readonly number[];
  stats: { canonical: TokenStats; priors: readonly TokenStats[] };
  /** D for every KT variant (the widest of the canonical token and all priors), so the variants differ only in priors. */
  tokenWidth: number;
  seed: number;
  /** Ensemble hidden width. Default 256. */
  ensembleHidden?: number;
  dropMaskThreshold?: number;
}

export function buildVariant(tf: Tf, spec: VariantSpec, o: BuildVariantOptions): TaskModel {
  const indices = variantPriorIndices(spec, o.priorWidths.length);
  const outputActivation = o.task.definition.name === 'emotion' ? 'softmax' : 'none';
  switch (spec.kind) {
    case 'baseline':
      return wrapForTask(
        tf,
        createBaselineHead(tf, {
          canonicalWidth: o.canonicalWidth,
          canonicalStats: o.stats.canonical,
          decoder: o.task.decoder,
          seed: o.seed,
        }),
        o.task,
      );
    case 'ensemble':
      return wrapForTask(
        tf,
        createEnsembleHead(tf, {
          stats: { canonical: o.stats.canonical, priors: indices.map((i) => o.stats.priors[i]!) },
          hidden: [o.ensembleHidden ?? 256],
          outputs: o.task.decoderOutputs,
          outputActivation,
          seed: o.seed,
          head: { canonicalWidth: o.canonicalWidth, decoder: o.task.decoder },
        }),
        o.task,
      );
    case 'kt':
      return wrapForTask(
        tf,
        createKtAdapter(tf, {
          canonicalWidth: o.canonicalWidth,
          priorWidths: indices.map((i) => o.priorWidths[i]!),
          stats: { canonical: o.stats.canonical, priors: indices.map((i) => o.stats.priors[i]!) },
          decoder: o.task.decoder,
          tokenWidth: o.tokenWidth,
          seed: o.seed,
          ...(o.dropMaskThreshold !== undefined ? { dropMaskThreshold: o.dropMaskThreshold } : {}),
          ...(spec.kt ?? {}),
        }),
        o.task,
      );
  }
}

export function trainableParameterCount(model: TrainableModel): number {
  return model.trainableVariables().reduce((a, v) => a + v.size, 0);
}

/** Per-image MACs after the encoder(s): folded adapter + decoder for KT, the MLP otherwise (+ expected age). */
export function inferenceCost(
  inner: TaskModel['inner'],
  task: PreparedTask,
): { macs: number; adapterMacs: number; adapterFlops: number; note: string } {
  const tail = task.expectedValueBins ?? 0;
  if (inner.kind === 'kt-adapter') {
    const cost = exportKtAdapterOnnx(inner.params).cost;
    return {
      macs: cost.adapter.macs + cost.decoder.macs + tail,
      adapterMacs: cost.adapter.macs,
      adapterFlops: cost.adapter.flops,
      note: 'canonical encoder + folded adapter + decoder',
    };
  }
  if (inner.kind === 'baseline')
    return {
      macs: exportBaselineOnnx(inner.mlp).cost.decoder.macs + tail,
      adapterMacs: 0,
      adapterFlops: 0,
      note: 'canonical encoder + decoder',
    };
  const layers = [...(inner.head ? readMlp(inner.head) : []), ...readMlp(inner.mlp)];
  const macs = layers.reduce((a, l) => a + l.inputs * l.outputs, 0) + tail;
  return { macs, adapterMacs: 0, adapterFlops: 0, note: 'every encoder + shipped head + prior MLP' };
}
