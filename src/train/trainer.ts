// The training loop for KT-Adapter and comparator heads: seeded batches and drop masks, AdamW schedule, early stopping, history.
import type { Scalar, Tensor, Tensor2D, Variable } from '@tensorflow/tfjs';
import { InvalidInputError } from '../core/errors.js';
import { createProgress } from '../core/log.js';
import type { Tf } from './tfjs-backend.js';
import {
  distillationKl,
  distillationL1,
  meanAbsoluteError,
  meanSquaredError,
  softmaxCrossEntropy,
  wingLoss,
  type WingLossOptions,
} from './losses.js';
import { createAdamW } from './optimizer.js';
import { createRandom, shuffledIndices } from './seeded-random.js';
import { disposeBatch, gatherBatch, gatherTargets, targetWidth, type TokenBatch, type TokenDataset } from './token-dataset.js';
import type { TrainableModel } from './trainable-model.js';

export type TaskSpec =
  | { kind: 'regression'; outputs: number; /** Default 'wing'. */ loss?: 'wing' | 'mse' | 'mae'; wing?: WingLossOptions }
  | { kind: 'classification'; classes: number };

/** A validation metric on pre-activation predictions [count, outputs] and targets as stored in the dataset. */
export interface ValidationMetric {
  name: string;
  higherIsBetter: boolean;
  compute(predictions: Float32Array, targets: Float32Array, count: number, outputs: number): number;
}

export const meanAbsoluteErrorMetric: ValidationMetric = {
  name: 'mae',
  higherIsBetter: false,
  compute: (p, t) => {
    let s = 0;
    for (let i = 0; i < p.length; i++) s += Math.abs(p[i]! - t[i]!);
    return s / Math.max(1, p.length);
  },
};

export const accuracyMetric: ValidationMetric = {
  name: 'accuracy',
  higherIsBetter: true,
  compute: (p, t, count, outputs) => {
    let correct = 0;
    for (let i = 0; i < count; i++) {
      let best = 0;
      for (let c = 1; c < outputs; c++) if (p[i * outputs + c]! > p[i * outputs + best]!) best = c;
      if (best === t[i]) correct++;
    }
    return count === 0 ? 0 : correct / count;
  },
};

export interface TrainOptions {
  task: TaskSpec;
  /** Maximum epochs. Default 100. */
  epochs?: number;
  /** Default 32. */
  batchSize?: number;
  /** Peak learning rate. Default 1e-3 (the paper's 1e-5 was for large data). */
  learningRate?: number;
  /** Learning rate at the end of the cosine. Default 0. */
  minLearningRate?: number;
  /** Warm-up length as a fraction of the maximum number of steps. Default 0.05 (at least one step). */
  warmupFraction?: number;
  /** AdamW decoupled weight decay (matrices only). Default 0.01. */
  weightDecay?: number;
  /** Epochs without improvement of the validation metric before stopping. Default 10. */
  patience?: number;
  /** Seed of shuffling and drop masks. Default 0. */
  seed?: number;
  /** Validation metric for early stopping; default MAE (regression) or accuracy (classification). */
  metric?: ValidationMetric;
  /** Receives progress lines with ETA. Default: stderr. */
  log?: (line: string) => void;
  /** Called after every epoch. */
  onEpoch?: (record: EpochRecord) => void;
  /** Weight w of self-distillation: a model with predictWithPriors also learns w x D(deployment path, training path),
   * the training path (drop-masked priors) held fixed as teacher; D is KL for classes, L1 for regression. Default 0. */
  distillationWeight?: number;
  /** Extra per-epoch figures (e.g. the adapter's contribution), stored in the epoch record. */
  epochDiagnostics?: () => Record<string, number>;
}

export const defaultTrainOptions = {
  epochs: 100,
  batchSize: 32,
  learningRate: 1e-3,
  minLearningRate: 0,
  warmupFraction: 0.05,
  weightDecay: 0.01,
  patience: 10,
  seed: 0,
  distillationWeight: 0,
} as const;

export interface EpochRecord {
  /** 1-based. */
  epoch: number;
  /** Mean training loss (training forward, with drop masks). */
  trainLoss: number;
  /** Loss of the deployment path on the validation split. */
  validationLoss: number;
  validationMetric: number;
  /** KT with priors: the validation metric of the training path with every prior kept. */
  validationMetricWithPriors?: number;
  diagnostics?: Record<string, number>;
  /** Learning rate of the epoch's last step. */
  learningRate: number;
  elapsedMs: number;
}

export interface TrainResult {
  history: EpochRecord[];
  /** The epoch whose weights the model holds now. */
  bestEpoch: number;
  bestValidationMetric: number;
  metricName: string;
  stoppedEarly: boolean;
  steps: number;
}

export interface Evaluation {
  loss: number;
  metric: number;
  /** Pre-activation outputs [count, outputs]. */
  predictions: Float32Array;
}

function lossFunction(tf: Tf, task: TaskSpec): (predictions: Tensor2D, targets: Tensor) => Scalar {
  if (task.kind === 'classification') return (p, t) => softmaxCrossEntropy(tf, p, t);
  switch (task.loss ?? 'wing') {
    case 'wing':
      return (p, t) => wingLoss(tf, p, t, task.wing ?? {});
    case 'mse':
      return (p, t) => meanSquaredError(tf, p, t);
    case 'mae':
      return (p, t) => meanAbsoluteError(tf, p, t);
  }
}

function targetTensor(tf: Tf, task: TaskSpec, values: Float32Array, count: number): Tensor {
  return task.kind === 'classification' ? tf.tensor1d(Int32Array.from(values), 'int32') : tf.tensor2d(values, [count, task.outputs]);
}

function checkDataset(dataset: TokenDataset, task: TaskSpec, split: string): void {
  const width = task.kind === 'classification' ? 1 : task.outputs;
  if (dataset.count > 0 && targetWidth(dataset) !== width)
    throw new InvalidInputError(`${split} split has ${targetWidth(dataset)} target values per sample, task needs ${width}`);
}

/** Runs the deployment path over a split in batches; loss and metric as in training. */
export function evaluateModel(
  model: TrainableModel,
  dataset: TokenDataset,
  task: TaskSpec,
  metric: ValidationMetric = task.kind === 'classification' ? accuracyMetric : meanAbsoluteErrorMetric,
  batchSize = 256,
  path: 'deployed' | 'with-priors' = 'deployed',
): Evaluation {
  const { tf } = model;
  checkDataset(dataset, task, 'evaluation');
  const outputs = task.kind === 'classification' ? task.classes : task.outputs;
  const predictions = new Float32Array(dataset.count * outputs);
  const loss = lossFunction(tf, task);
  let lossSum = 0;
  for (let start = 0; start < dataset.count; start += batchSize) {
    const rows = Int32Array.from({ length: Math.min(batchSize, dataset.count - start) }, (_, i) => start + i);
    const batch = gatherBatch(tf, dataset, rows);
    try {
      lossSum += tf.tidy(() => {
        const out = path === 'with-priors' && model.predictWithPriors ? model.predictWithPriors(batch) : model.predict(batch);
        predictions.set(out.dataSync(), start * outputs);
        return loss(out, targetTensor(tf, task, gatherTargets(dataset, rows), rows.length)).dataSync()[0]! * rows.length;
      });
    } finally {
      disposeBatch(batch);
    }
  }
  return {
    loss: lossSum / Math.max(1, dataset.count),
    metric: metric.compute(predictions, dataset.targets, dataset.count, outputs),
    predictions,
  };
}

/** What one training epoch needs; the optimizer and the random stream carry over from epoch to epoch. */
interface EpochContext {
  model: TrainableModel;
  train: TokenDataset;
  task: TaskSpec;
  batchSize: number;
  batchesPerEpoch: number;
  optimizer: ReturnType<typeof createAdamW>;
  loss: ReturnType<typeof lossFunction>;
  distillation: ((student: Tensor2D, teacher: Tensor2D) => Scalar) | null;
  distillationWeight: number;
  random: ReturnType<typeof createRandom>;
  variables: Variable[];
  progress: ReturnType<typeof createProgress>;
}

/** One pass over the shuffled training split; returns the mean training loss and the last learning rate. */
function trainOneEpoch(cx: EpochContext, epoch: number): { trainLoss: number; learningRate: number } {
  const { model, train, task, batchSize, optimizer, random, variables } = cx;
  const { tf } = model;
  const order = shuffledIndices(random, train.count);
  const flip = train.flipOffset;
  if (flip !== undefined) for (let i = 0; i < order.length; i++) if (random() < 0.5) order[i] = order[i]! + flip;
  let lossSum = 0;
  let learningRate = 0;
  for (let b = 0; b < cx.batchesPerEpoch; b++) {
    const rows = order.subarray(b * batchSize, Math.min(train.count, (b + 1) * batchSize));
    const batch = gatherBatch(tf, train, rows);
    try {
      const stepLoss = tf.tidy(() => {
        const targets = targetTensor(tf, task, gatherTargets(train, rows), rows.length);
        const { value, grads } = tf.variableGrads(() => stepLossOf(cx, batch, targets), variables);
        learningRate = optimizer.applyGradients(grads);
        return value.dataSync()[0]!;
      });
      if (!Number.isFinite(stepLoss))
        throw new InvalidInputError(`training loss became ${stepLoss} at epoch ${epoch}; lower the learning rate`);
      lossSum += stepLoss * rows.length;
    } finally {
      disposeBatch(batch);
    }
    cx.progress.tick(`epoch ${epoch}`);
  }
  return { trainLoss: lossSum / train.count, learningRate };
}

/** Task loss of the training path, plus w x distillation of the deployment path toward it when the model has priors. */
function stepLossOf(cx: EpochContext, batch: TokenBatch, targets: Tensor): Scalar {
  const { model, loss, random, distillation, distillationWeight } = cx;
  const trainOut = model.forwardTrain(batch, random);
  const taskLoss = loss(trainOut, targets);
  if (!distillation || distillationWeight === 0 || !model.predictWithPriors || batch.priors.length === 0) return taskLoss;
  return model.tf.add(taskLoss, model.tf.mul(distillation(model.predict(batch), trainOut), distillationWeight)) as Scalar;
}

/** The optimizer (AdamW, warm-up + cosine over every step), loss, seeded random stream and progress of one run. */
function createEpochContext(
  model: TrainableModel,
  train: TokenDataset,
  o: Required<Omit<TrainOptions, 'metric' | 'log' | 'onEpoch' | 'epochDiagnostics'>> & Pick<TrainOptions, 'log'>,
): EpochContext {
  const { tf } = model;
  const variables = model.trainableVariables();
  const batchesPerEpoch = Math.ceil(train.count / o.batchSize);
  const totalSteps = batchesPerEpoch * o.epochs;
  const optimizer = createAdamW(tf, variables, {
    schedule: {
      peakLearningRate: o.learningRate,
      minLearningRate: o.minLearningRate,
      warmupSteps: Math.max(1, Math.round(o.warmupFraction * totalSteps)),
      totalSteps,
    },
    weightDecay: o.weightDecay,
    ...(model.learningRateScale ? { learningRateScale: (v: Variable) => model.learningRateScale!(v) } : {}),
  });
  const progress = createProgress(`train ${model.kind}`, totalSteps, o.log);
  return {
    model,
    train,
    task: o.task,
    batchSize: o.batchSize,
    batchesPerEpoch,
    optimizer,
    loss: lossFunction(tf, o.task),
    distillation:
      o.task.kind === 'classification'
        ? (student, teacher) => distillationKl(tf, student, teacher)
        : (student, teacher) => distillationL1(tf, student, teacher),
    distillationWeight: o.distillationWeight,
    random: createRandom(o.seed),
    variables,
    progress,
  };
}

/**
 * Fits the model's trainable variables on `train`, early-stopping on the validation metric of the deployment path,
 * and leaves the model holding the best epoch's weights.
 */
export async function trainModel(
  model: TrainableModel,
  train: TokenDataset,
  validation: TokenDataset,
  options: TrainOptions,
): Promise<TrainResult> {
  const { tf } = model;
  const o = { ...defaultTrainOptions, ...options };
  const { task } = o;
  if (train.count === 0 || validation.count === 0) throw new InvalidInputError('training and validation splits must both be non-empty');
  if (!(o.batchSize >= 1) || !(o.epochs >= 1)) throw new InvalidInputError('batchSize and epochs must be >= 1');
  checkDataset(train, task, 'training');
  checkDataset(validation, task, 'validation');
  const metric = o.metric ?? (task.kind === 'classification' ? accuracyMetric : meanAbsoluteErrorMetric);

  const epochContext = createEpochContext(model, train, o);
  const { variables, optimizer, progress } = epochContext;
  const history: EpochRecord[] = [];
  const best = new BestEpochWeights(tf, variables, metric.higherIsBetter);
  let epochsWithoutImprovement = 0;
  let stoppedEarly = false;
  const start = Date.now();
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const { trainLoss, learningRate } = trainOneEpoch(epochContext, epoch);
      const evaluation = evaluateModel(model, validation, task, metric);
      const withPriors = model.predictWithPriors ? evaluateModel(model, validation, task, metric, 256, 'with-priors').metric : undefined;
      const record: EpochRecord = {
        epoch,
        trainLoss,
        validationLoss: evaluation.loss,
        validationMetric: evaluation.metric,
        ...(withPriors !== undefined ? { validationMetricWithPriors: withPriors } : {}),
        ...(o.epochDiagnostics ? { diagnostics: o.epochDiagnostics() } : {}),
        learningRate,
        elapsedMs: Date.now() - start,
      };
      history.push(record);
      o.onEpoch?.(record);
      if (best.offer(epoch, record.validationMetric)) epochsWithoutImprovement = 0;
      else if (++epochsWithoutImprovement >= o.patience) {
        stoppedEarly = true;
        break;
      }
    }
    progress.done(best.epoch > 0 ? `best epoch ${best.epoch} ${metric.name} ${best.metric.toPrecision(4)}` : '');
    best.restore();
  } finally {
    best.dispose();
    optimizer.dispose();
  }
  return {
    history,
    bestEpoch: best.epoch,
    bestValidationMetric: best.metric,
    metricName: metric.name,
    stoppedEarly,
    steps: optimizer.step,
  };
}

/** The best epoch so far (0 and NaN before the first) and a copy of its weights, to restore when training ends. */
class BestEpochWeights {
  epoch = 0;
  metric = NaN;
  private weights: Map<Variable, Tensor> | undefined;

  constructor(
    private readonly tf: Tf,
    private readonly variables: readonly Variable[],
    private readonly higherIsBetter: boolean,
  ) {}

  /** Keeps a copy of the weights when the epoch's metric beats the best so far; returns whether it did. */
  offer(epoch: number, metric: number): boolean {
    const improved = this.epoch === 0 || (this.higherIsBetter ? metric > this.metric : metric < this.metric);
    if (!improved) return false;
    this.dispose();
    this.weights = new Map(this.variables.map((v) => [v, this.tf.clone(v)]));
    this.epoch = epoch;
    this.metric = metric;
    return true;
  }

  restore(): void {
    if (this.weights) for (const [v, t] of this.weights) v.assign(t);
  }

  dispose(): void {
    if (this.weights) for (const t of this.weights.values()) t.dispose();
    this.weights = undefined;
  }
}
