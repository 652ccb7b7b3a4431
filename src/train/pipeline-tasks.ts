// Training tasks of `kt train` (age regression, emotion classification): data, splits, decoder start, pre-trained row, metrics.
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidInputError } from '../core/errors.js';
import type { OutputSpec } from '../models/manifest.js';
import { decodeOutput } from '../models/processing/decode.js';
import { cutAtEncoder, type EncoderCut } from '../models/encoder-cut.js';
import { servingDefaultModels } from '../models/zoo.js';
import { readModel } from '../onnx/proto.js';
import {
  FER2013_CLASSES,
  SHARED_DATASETS,
  readClassFolders,
  readCsvManifest,
  readSharedDataset,
  splitDataset,
  type SharedDatasetName,
} from './datasets/index.js';
import type { FaceDataset, FaceSample } from './datasets/types.js';
import type { DecoderInit, PretrainedDense } from './dense.js';
import { ageMetrics, classificationMetrics } from './metrics.js';
import {
  applyLinear,
  argmaxRow,
  centredLogProbabilities,
  denseChainFromHead,
  fitLinearDecoder,
  linearFromConvHead,
  reproduction,
  softmaxRows,
} from './pipeline-decoders.js';
import type { ModelTokens } from './token-cache.js';
import type { TaskSpec } from './trainer.js';

/** What `kt train` can train (a subset of the server's task names). */
export type TrainTask = 'age' | 'emotion';
export const TASK_NAMES: readonly TrainTask[] = ['age', 'emotion'];

/** A test-set metric as the table shows it. */
export interface MetricColumn {
  key: string;
  label: string;
  higherIsBetter: boolean;
  digits: number;
}

export interface TaskDefinition {
  name: TrainTask;
  defaultCanonical: string;
  defaultPriors: readonly string[];
  defaultData: SharedDatasetName;
  columns: readonly MetricColumn[];
  /** Split unit: UTKFace has one image per sample; FER2013 has pixel-identical duplicate groups. */
  splitBy: 'sample' | 'group';
  /** Stratum per sample (age decade, emotion class). */
  stratum(sample: FaceSample): number;
}

export const TASKS: Record<TrainTask, TaskDefinition> = {
  age: {
    name: 'age',
    // The model the server answers age with (README "Model choice"); priors: every other encoder.
    defaultCanonical: servingDefaultModels.age,
    defaultPriors: ['faceres', 'expression', 'landmarks68', 'emotion', 'facemesh', 'agegender'].filter(
      (m) => m !== servingDefaultModels.age,
    ),
    defaultData: 'age-utkface',
    columns: [
      { key: 'mae', label: 'MAE (years)', higherIsBetter: false, digits: 3 },
      { key: 'cs5', label: 'CS@5 (%)', higherIsBetter: true, digits: 2 },
    ],
    splitBy: 'sample',
    stratum: (s) => Math.floor((s.label as number) / 10),
  },
  emotion: {
    name: 'emotion',
    defaultCanonical: servingDefaultModels.emotion,
    defaultPriors: ['emotion', 'faceres', 'agegender', 'landmarks68', 'facemesh', 'expression'].filter(
      (m) => m !== servingDefaultModels.emotion,
    ),
    defaultData: 'emotion-fer2013',
    columns: [
      { key: 'accuracy', label: 'Accuracy (%)', higherIsBetter: true, digits: 2 },
      { key: 'macroF1', label: 'Macro-F1 (%)', higherIsBetter: true, digits: 2 },
    ],
    splitBy: 'group',
    stratum: (s) => s.label as number,
  },
};

export function taskDefinition(name: string): TaskDefinition {
  if (!(TASK_NAMES as readonly string[]).includes(name))
    throw new InvalidInputError(`unknown task "${name}" (known: ${TASK_NAMES.join(', ')})`);
  return TASKS[name as TrainTask];
}

/** How `kt train` reads the data beyond the task's defaults. */
export interface TaskDataOptions {
  /** Root of the shared datasets. */
  dataRoot?: string;
  /** CSV column naming the person in each image: the split keeps each person on one side. */
  subjectColumn?: string;
  /** CSV column naming duplicate or same-scene groups: the split keeps each group on one side. */
  groupColumn?: string;
}

/**
 * Reads the data: a shared dataset name (under the data root) or a path. A path for age is a CSV manifest
 * (file, age; file paths absolute or relative to the CSV) or a folder holding labels.csv; for emotion a folder of
 * class folders (FER2013 class names). Subject and group columns apply to a CSV only.
 */
export async function readTaskData(task: TaskDefinition, data: string, options: TaskDataOptions = {}): Promise<FaceDataset> {
  const columnFlags = [options.subjectColumn && '--subject-column', options.groupColumn && '--group-column'].filter(Boolean).join(' and ');
  if ((SHARED_DATASETS as readonly string[]).includes(data)) {
    if (columnFlags)
      throw new InvalidInputError(`${columnFlags} apply to a CSV given as --data PATH; the shared dataset ${data} has its own split rules`);
    return readSharedDataset(data as SharedDatasetName, options.dataRoot);
  }
  const path = resolve(data);
  if (!existsSync(path))
    throw new InvalidInputError(`--data ${data}: neither a shared dataset (${SHARED_DATASETS.join(', ')}) nor an existing path`);
  if (task.name === 'age') {
    const csvPath = statSync(path).isDirectory() ? join(path, 'labels.csv') : path;
    return readCsvManifest({
      csvPath,
      taskType: 'regression',
      labelColumn: 'age',
      integerLabels: true,
      labelRange: [0, 120],
      ...(options.subjectColumn ? { subjectColumn: options.subjectColumn } : {}),
      ...(options.groupColumn ? { groupColumn: options.groupColumn } : {}),
    });
  }
  if (columnFlags)
    throw new InvalidInputError(`${columnFlags} apply to a CSV manifest (age data); ${task.name} data is read from class folders`);
  return readClassFolders({ root: path, classNames: FER2013_CLASSES });
}

/** The unit a split keeps on one side. */
export type SplitUnit = 'sample' | 'subject' | 'group';

/** A named subject column splits by person (merged with groups), a group column by group, else the task's unit. */
export function splitUnitFor(task: TaskDefinition, options: TaskDataOptions = {}): SplitUnit {
  if (options.subjectColumn) return 'subject';
  if (options.groupColumn) return 'group';
  return task.splitBy;
}

export interface TaskSplit {
  train: FaceSample[];
  val: FaceSample[];
  test: FaceSample[];
  by: SplitUnit;
  /** Subjects / groups / samples per side. */
  units: { train: number; val: number; test: number };
}

export const SPLIT_FRACTIONS: [number, number, number] = [0.7, 0.15, 0.15];

export function splitTaskData(task: TaskDefinition, dataset: FaceDataset, seed: number, by: SplitUnit = task.splitBy): TaskSplit {
  const s = splitDataset(dataset.samples, {
    seed,
    fractions: SPLIT_FRACTIONS,
    by,
    stratify: true,
    strataOf: (x) => task.stratum(x as FaceSample),
  });
  if (s.train.length === 0 || s.val.length === 0 || s.test.length === 0)
    throw new InvalidInputError(
      `dataset ${dataset.name} is too small to split (train ${s.train.length}, val ${s.val.length}, test ${s.test.length})`,
    );
  return { train: s.train, val: s.val, test: s.test, by, units: s.units };
}

/** The task bound to its canonical model: trainer spec, decoder start, and how outputs become metrics. */
export interface PreparedTask {
  definition: TaskDefinition;
  /** What the trainer sees after the task wrapper (age: [N,1] years; emotion: 7 logits). */
  spec: TaskSpec;
  decoder: DecoderInit;
  /** Outputs of the decoder MLP before the task wrapper (age: 100 bins; emotion: 7 classes). */
  decoderOutputs: number;
  /** Age: the decoder's softmax over bins becomes the expected age sum_i i p_i. */
  expectedValueBins?: number;
  classNames: readonly string[];
  /** Test metrics from the wrapped model's predictions ([N,1] years or [N,7] logits). */
  metrics(predictions: Float32Array, targets: Float32Array): Record<string, number>;
  /** The shipped canonical model's own outputs decoded as the product does, per sample. */
  pretrainedMetrics(tokens: ModelTokens, rows: readonly number[], targets: Float32Array): Record<string, number>;
  /** How the pre-trained row decodes the shipped outputs (for its label). */
  pretrainedDecoding: string;
  /** MACs of the shipped head after the encoder (for the pre-trained row). */
  pretrainedHeadMacs: number;
  /** Emotion: how well the linear decoder reproduces the shipped conv head (train/val/test). */
  decoderFit?: Record<string, unknown>;
  /** Outputs of the exported model. */
  exportOutputs: OutputSpec[];
}

export function targetsOf(samples: readonly FaceSample[]): Float32Array {
  return Float32Array.from(samples.map((s) => s.label as number));
}

/** Train / val / test row indices into the token arrays. */
export interface TaskRows {
  train: readonly number[];
  val: readonly number[];
  test: readonly number[];
}

/** What a task binder gets: the canonical model's tokens and outputs, its encoder cut, the split rows. */
interface TaskBindContext {
  task: TaskDefinition;
  canonical: ModelTokens;
  /** "<name>/<version>" of the canonical model, for messages. */
  entryPath: string;
  cut: EncoderCut;
  rows: TaskRows;
  classNames: readonly string[];
}

/**
 * Binds the task to the canonical model. `canonical` holds the tokens and shipped outputs of every sample;
 * `rows` index the train / val / test samples in it; `modelPath` is the canonical model.onnx.
 */
export async function prepareTask(
  task: TaskDefinition,
  canonical: ModelTokens,
  modelPath: string,
  rows: TaskRows,
  classNames: readonly string[],
): Promise<PreparedTask> {
  const manifest = canonical.manifest;
  const entryPath = join(manifest.name, String(manifest.version));
  const cut = cutAtEncoder(await readModel(modelPath), manifest);
  return taskBinders[task.name]({ task, canonical, entryPath, cut, rows, classNames });
}

/** Age: the shipped GAP+dense head starts the decoder; its bins become the expected age. */
function bindAgeTask({ task, canonical, entryPath, cut }: TaskBindContext): PreparedTask {
  const manifest = canonical.manifest;
  const ageOutput = manifest.outputs.find((o) => o.task === 'age');
  const decoding = ageOutput?.decoding.type;
  if (!ageOutput || (decoding !== 'age-bins' && decoding !== 'age-years'))
    throw new InvalidInputError(
      `canonical model ${manifest.name} has no age-bins or age-years output; age training needs one (agegender, faceres)`,
    );
  if (!cut.gapHead)
    throw new InvalidInputError(`canonical model ${manifest.name} (${entryPath}) has no GAP+dense head to start the decoder from`);
  const layers = denseChainFromHead(cut.gapHead, ageOutput.name);
  // age-years heads (agegender) regress years directly; age-bins heads (faceres) give the expected age over bins.
  const bins = decoding === 'age-bins' ? layers[layers.length - 1]!.outputs : undefined;
  if (decoding === 'age-years' && layers[layers.length - 1]!.outputs !== 1)
    throw new InvalidInputError(
      `canonical model ${manifest.name}: age-years head has ${layers[layers.length - 1]!.outputs} outputs, expected 1`,
    );
  const outputName = ageOutput.name;
  const method = ageOutput.decoding.type === 'age-bins' ? (ageOutput.decoding.method ?? 'expectation') : 'years';
  return {
    definition: task,
    spec: { kind: 'regression', outputs: 1, loss: 'wing' },
    decoder: { pretrained: layers },
    decoderOutputs: bins ?? 1,
    ...(bins !== undefined ? { expectedValueBins: bins } : {}),
    classNames: [],
    metrics: (p, t) => ({ ...ageMetrics(Array.from(p), Array.from(t)) }),
    pretrainedMetrics: (tokens, r, t) => {
      const out = tokens.outputs[outputName]!;
      // Decoded as the product decodes it (the manifest's age-bins method).
      const preds = r.map((i) => {
        const d = decodeOutput(ageOutput, out.data.slice(i * out.size, (i + 1) * out.size));
        return d.type === 'age' ? d.years : NaN;
      });
      return { ...ageMetrics(preds, Array.from(t)) };
    },
    pretrainedHeadMacs: layers.reduce((a, l) => a + l.inputs * l.outputs, 0),
    pretrainedDecoding: bins !== undefined ? `age bins decoded by ${method}` : 'age in years as shipped',
    exportOutputs: [{ name: 'age', task: 'age', decoding: { type: 'age-years', scale: 1 } }],
  };
}

/** Rows `r` of a row-major matrix of the given width. */
function gatherRows(data: Float32Array, width: number, r: readonly number[]): Float32Array {
  const o = new Float32Array(r.length * width);
  r.forEach((i, k) => o.set(data.subarray(i * width, (i + 1) * width), k * width));
  return o;
}

/**
 * Emotion: the shipped head is Conv 3x3 -> GAP -> softmax. Start from the tap-summed kernel, then fit it by least
 * squares to the shipped model's logits on the training split (DESIGN: fit the decoder to the pre-trained head).
 */
function bindEmotionTask({ task, canonical, cut, rows, classNames }: TaskBindContext): PreparedTask {
  const manifest = canonical.manifest;
  const out = manifest.outputs.find((o) => o.task === 'emotion');
  if (!out || out.decoding.type !== 'classification')
    throw new InvalidInputError(`canonical model ${manifest.name} has no emotion classification output`);
  const classes = out.decoding.labels.length;
  if (classes !== classNames.length)
    throw new InvalidInputError(`canonical model ${manifest.name} has ${classes} classes, the data ${classNames.length}`);
  if (cut.gapHead) return bindEmotionGapHead({ task, canonical, cut, rows, classNames } as TaskBindContext, out);
  const probs = canonical.outputs[out.name]!;
  const C = canonical.width;
  const tapSum = cut.gapHead ? denseChainFromHead(cut.gapHead, out.name)[0]! : linearFromConvHead(cut.spatialHead);
  const trainX = gatherRows(canonical.tokens, C, rows.train);
  const trainRef = gatherRows(probs.data, classes, rows.train);
  const fitted = fitLinearDecoder(trainX, rows.train.length, C, centredLogProbabilities(trainRef, classes), classes, {
    activation: 'softmax',
  });
  const decoderFit: Record<string, unknown> = {
    method:
      "conv kernel summed over taps + bias, then least squares (ridge 1e-3 on standardised p_c) to the shipped model's centred log-probabilities on the training split",
  };
  for (const [split, r] of Object.entries(rows)) {
    const x = gatherRows(canonical.tokens, C, r);
    const ref = gatherRows(probs.data, classes, r);
    decoderFit[split] = {
      tapSum: reproduction(softmaxRows(applyLinear(tapSum, x, r.length), classes), ref, classes),
      leastSquares: reproduction(softmaxRows(applyLinear(fitted, x, r.length), classes), ref, classes),
    };
  }
  const convMacs = (manifest.encoder?.spatial ?? [1, 1]).reduce((a, b) => a * b, 1) * C * classes * 9;
  return {
    definition: task,
    spec: { kind: 'classification', classes },
    decoder: { pretrained: [fitted] },
    decoderOutputs: classes,
    classNames,
    decoderFit,
    metrics: (p, t) => {
      const m = classificationMetrics(
        Array.from({ length: t.length }, (_, i) => argmaxRow(p, i, classes)),
        Array.from(t),
        classes,
      );
      return { accuracy: m.accuracy, macroF1: m.macroF1 };
    },
    pretrainedMetrics: (tokens, r, t) => {
      const o = tokens.outputs[out.name]!;
      const m = classificationMetrics(
        r.map((i) => argmaxRow(o.data, i, o.size)),
        Array.from(t),
        classes,
      );
      return { accuracy: m.accuracy, macroF1: m.macroF1 };
    },
    pretrainedHeadMacs: convMacs,
    pretrainedDecoding: 'argmax of the shipped softmax',
    exportOutputs: [
      { name: 'emotion', task: 'emotion', decoding: { type: 'classification', labels: [...out.decoding.labels], activation: 'none' } },
    ],
  };
}

/** Column k of the data's class order is column order[k] of the model's labels (same names, any order). */
export function classOrder(modelLabels: readonly string[], dataClasses: readonly string[], model: string): number[] {
  return dataClasses.map((c) => {
    const i = modelLabels.indexOf(c);
    if (i < 0) throw new InvalidInputError(`canonical model ${model} has no class "${c}" (its labels: ${modelLabels.join(', ')})`);
    return i;
  });
}

/** The layer with its output columns reordered: output k becomes the old output order[k]. */
function reorderOutputs(layer: PretrainedDense, order: readonly number[]): PretrainedDense {
  const kernel = new Float32Array(layer.kernel.length);
  for (let r = 0; r < layer.inputs; r++)
    order.forEach((from, k) => (kernel[r * layer.outputs + k] = layer.kernel[r * layer.outputs + from]!));
  return { ...layer, kernel, bias: Float32Array.from(order, (from) => layer.bias[from]!) };
}

/** Emotion on a GAP+dense head (expression): the shipped dense layers, columns reordered to the data's classes. */
function bindEmotionGapHead({ task, canonical, cut, classNames }: TaskBindContext, out: OutputSpec): PreparedTask {
  const manifest = canonical.manifest;
  if (out.decoding.type !== 'classification') throw new InvalidInputError(`${manifest.name}: emotion output is not a classification`);
  const order = classOrder(out.decoding.labels, classNames, manifest.name);
  const chain = denseChainFromHead(cut.gapHead!, out.name);
  const layers = [...chain.slice(0, -1), reorderOutputs(chain[chain.length - 1]!, order)];
  const classes = classNames.length;
  const toDataClass = (modelClass: number): number => order.indexOf(modelClass);
  const metricsOf = (predicted: number[], t: Float32Array): Record<string, number> => {
    const m = classificationMetrics(predicted, Array.from(t), classes);
    return { accuracy: m.accuracy, macroF1: m.macroF1 };
  };
  return {
    definition: task,
    spec: { kind: 'classification', classes },
    decoder: { pretrained: layers },
    decoderOutputs: classes,
    classNames,
    decoderFit: { method: `the shipped ${manifest.name} GAP+dense head, classes reordered to ${classNames.join(', ')} (exact)` },
    metrics: (p, t) =>
      metricsOf(
        Array.from({ length: t.length }, (_, i) => argmaxRow(p, i, classes)),
        t,
      ),
    pretrainedMetrics: (tokens, r, t) => {
      const o = tokens.outputs[out.name]!;
      return metricsOf(
        r.map((i) => toDataClass(argmaxRow(o.data, i, o.size))),
        t,
      );
    },
    pretrainedHeadMacs: layers.reduce((a, l) => a + l.inputs * l.outputs, 0),
    pretrainedDecoding: 'argmax of the shipped softmax',
    exportOutputs: [
      { name: 'emotion', task: 'emotion', decoding: { type: 'classification', labels: [...classNames], activation: 'none' } },
    ],
  };
}

/** One binder per trainable task. */
const taskBinders: Record<TrainTask, (cx: TaskBindContext) => PreparedTask> = {
  age: bindAgeTask,
  emotion: bindEmotionTask,
};
