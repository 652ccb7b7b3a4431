// One `kt train` run: data and seeded split, prior tokens, every comparator on the same split and budget, test table, plots, t-SNE and export.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Tensor2D } from '@tensorflow/tfjs';
import { InvalidInputError } from '../core/errors.js';
import { createProgress } from '../core/log.js';
import { normalize } from '../models/processing/index.js';
import { defaultRepositoryPath, resolveModel, type RepositoryEntry } from '../models/repository.js';
import { encodeModel } from '../onnx/proto.js';
import { addOutputs } from '../onnx/subgraph.js';
import { createSession, runFloat } from '../onnx/runtime.js';
import type { FaceSample } from './datasets/types.js';
import { exportKtModel, knowledgeTokenRows } from './export-model.js';
import { ktPredictOutput, gateValue, type KtAdapterModel } from './kt-adapter.js';
import { renderScatterPlot, writePng } from './plots.js';
import { prepareTask, readTaskData, splitTaskData, targetsOf, taskDefinition, SPLIT_FRACTIONS, type PreparedTask } from './pipeline-tasks.js';
import { CAPACITY_CONTROL_ID, DEFAULT_VARIANTS, buildVariant, inferenceCost, trainableParameterCount, variantPriorIndices, variantSpec, type TaskModel } from './pipeline-variants.js';
import { writeReport, type ExperimentResults, type VariantResult } from './report.js';
import { loadTf, type Tf } from './tfjs-backend.js';
import { computePriorTokens, cropFor, decodeSample, type PriorTokenSet } from './token-cache.js';
import { computeDatasetStats, selectPriors, type TokenDataset } from './token-dataset.js';
import { trainModel, evaluateModel, accuracyMetric, meanAbsoluteErrorMetric } from './trainer.js';
import { tsne } from './tsne.js';

export interface ExperimentOptions {
  task: string;
  /** Shared dataset name or a path. Default: the task's shared dataset. */
  data?: string;
  /** Root of the shared datasets. Default ../shared/data or $KT_DATA_ROOT. */
  dataRoot?: string;
  canonical?: string;
  priors?: readonly string[];
  /** Variant ids; the capacity control is added whenever a KT variant is asked for. Default: DEFAULT_VARIANTS. */
  variants?: readonly string[];
  /** Maximum epochs. Default 8. */
  epochs?: number;
  /** Maximum epochs of the ablations (no DM, no CM, PE, prior subsets). Default: epochs. */
  ablationEpochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Default 3e-4. */
  learningRate?: number;
  /** Default 3. */
  patience?: number;
  /** Default 0.01. */
  weightDecay?: number;
  /** Default 0.05. */
  warmupFraction?: number;
  /** Drop-mask threshold tau. Default 0.5. */
  dropMaskThreshold?: number;
  /** Seed of the split, initialisation, shuffling and drop masks. Default 1. */
  seed?: number;
  /** Output folder. Default out/train/<task>. */
  outDir?: string;
  /** Model repository (read the encoders, write the export). Default: the project's. */
  repo?: string;
  cacheDir?: string;
  /** Export the KT variant into the repository. Default true. */
  export?: boolean;
  /** Test samples shown in the t-SNE. Default 300. */
  tsneSamples?: number;
  /** Test images run through the exported graph for the parity figure. Default 16. */
  paritySamples?: number;
  log?: (line: string) => void;
  /** The command line, stored in the report. */
  command?: string;
}

export const defaultExperimentOptions = {
  epochs: 8,
  batchSize: 64,
  learningRate: 3e-4,
  patience: 3,
  weightDecay: 0.01,
  warmupFraction: 0.05,
  dropMaskThreshold: 0.5,
  seed: 1,
  tsneSamples: 300,
  paritySamples: 16,
  export: true,
} as const;

function datasetFor(tokens: PriorTokenSet, canonical: string, priors: readonly string[], rows: readonly number[], targets: Float32Array): TokenDataset {
  const matrix = (name: string) => {
    const m = tokens.models[name]!;
    const values = new Float32Array(rows.length * m.width);
    rows.forEach((r, i) => values.set(m.tokens.subarray(r * m.width, (r + 1) * m.width), i * m.width));
    return { name, width: m.width, values };
  };
  return { count: rows.length, canonical: matrix(canonical), priors: priors.map(matrix), targets };
}

export async function runExperiment(options: ExperimentOptions): Promise<ExperimentResults> {
  const started = Date.now();
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const o = { ...defaultExperimentOptions, ...definedOnly(options), task: options.task };
  const task = taskDefinition(o.task);
  const canonicalName = o.canonical ?? task.defaultCanonical;
  const priorNames = [...(o.priors ?? task.defaultPriors)];
  if (priorNames.includes(canonicalName)) throw new InvalidInputError(`--priors must not contain the canonical model ${canonicalName}`);
  if (new Set(priorNames).size !== priorNames.length) throw new InvalidInputError('--priors lists a model twice');
  const variantIds = [...(o.variants ?? DEFAULT_VARIANTS)];
  const specs = variantIds.map((id) => variantSpec(id, priorNames));
  if (specs.some((s) => s.kind === 'kt') && !variantIds.includes(CAPACITY_CONTROL_ID)) specs.push(variantSpec(CAPACITY_CONTROL_ID, priorNames));
  const repo = resolve(o.repo ?? defaultRepositoryPath());
  const outDir = resolve(o.outDir ?? join('out', 'train', task.name));
  const data = o.data ?? task.defaultData;
  await mkdir(outDir, { recursive: true });

  const { tf, backend, skipped } = await loadTf();
  log(`TF.js backend: ${backend}${skipped.length ? ` (skipped: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')})` : ''}`);

  // Data and the seeded split.
  const dataset = await readTaskData(task, data, o.dataRoot);
  const split = splitTaskData(task, dataset, o.seed);
  log(`${dataset.name}: ${dataset.samples.length} samples; split by ${task.splitBy}: train ${split.train.length}, val ${split.val.length}, test ${split.test.length}`);
  const all: FaceSample[] = [...split.train, ...split.val, ...split.test];
  const rows = {
    train: split.train.map((_, i) => i),
    val: split.val.map((_, i) => split.train.length + i),
    test: split.test.map((_, i) => split.train.length + split.val.length + i),
  };

  // Prior tokens: every encoder once per image, cached.
  const tokensStarted = Date.now();
  const tokens = await computePriorTokens(all.map((s) => ({ id: s.id, imagePath: s.imagePath, ...(s.box ? { box: s.box } : {}) })), {
    models: [canonicalName, ...priorNames],
    repo,
    ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
    log,
  });
  const tokensMs = Date.now() - tokensStarted;
  const canonicalEntry = await resolveModel(canonicalName, tokens.models[canonicalName]!.version, repo);
  const targets = { train: targetsOf(split.train), val: targetsOf(split.val), test: targetsOf(split.test) };
  const train = datasetFor(tokens, canonicalName, priorNames, rows.train, targets.train);
  const val = datasetFor(tokens, canonicalName, priorNames, rows.val, targets.val);
  const test = datasetFor(tokens, canonicalName, priorNames, rows.test, targets.test);
  const prepared = await prepareTask(task, tokens.models[canonicalName]!, canonicalEntry.modelPath, rows, dataset.classNames);
  const stats = computeDatasetStats(train);
  const widths = [train.canonical.width, ...train.priors.map((p) => p.width)];
  const tokenWidth = Math.max(...widths);

  const settings = {
    epochs: o.epochs,
    ablationEpochs: o.ablationEpochs ?? o.epochs,
    batchSize: o.batchSize,
    learningRate: o.learningRate,
    schedule: `AdamW, linear warm-up ${o.warmupFraction} of steps then cosine to 0`,
    weightDecay: o.weightDecay,
    patience: o.patience,
    dropMaskThreshold: o.dropMaskThreshold,
    tokenWidthD: tokenWidth,
    loss: prepared.spec.kind === 'regression' ? 'Wing (w=10, eps=2) on expected age (years)' : 'softmax cross-entropy',
    decoderStart: prepared.spec.kind === 'regression' ? `${canonicalName} head after GAP (dense+relu -> dense -> softmax over ${prepared.expectedValueBins} bins), expected age sum_i i p_i` : `linear decoder fitted to the shipped ${canonicalName} conv head (see decoder fit)`,
    ensemble: 'MLP (1 hidden layer of 256, relu) on every standardised token concatenated, randomly initialised',
    kt: 'heads 8, FFN 2D GELU, gate g = 0 at start, residual scaled by the canonical std; every KT variant uses the same D',
  };
  const results: ExperimentResults = {
    task: task.name,
    data,
    canonical: canonicalName,
    priors: priorNames,
    seed: o.seed,
    backend,
    settings,
    split: { train: train.count, val: val.count, test: test.count, by: task.splitBy, stratifiedBy: task.name === 'age' ? 'age decade' : 'class', fractions: SPLIT_FRACTIONS },
    columns: [...task.columns],
    earlyStopping: prepared.spec.kind === 'regression' ? 'MAE' : 'accuracy',
    ...(prepared.decoderFit ? { decoderFit: prepared.decoderFit } : {}),
    variants: [],
    timings: { tokensMs, totalMs: 0, startedAt: new Date(started).toISOString() },
    ...(o.command ? { command: o.command } : {}),
  };

  // The shipped model as it is, decoded as the product decodes it.
  results.variants.push({
    id: 'pretrained',
    label: `pre-trained ${canonicalName} (no training; ${prepared.pretrainedDecoding})`,
    kind: 'pretrained',
    priors: [],
    ablation: false,
    metrics: prepared.pretrainedMetrics(tokens.models[canonicalName]!, rows.test, targets.test),
    trainableParams: 0,
    inferenceMacs: prepared.pretrainedHeadMacs,
    inferenceNote: 'shipped head',
  });
  log(`pre-trained ${canonicalName} on test: ${JSON.stringify(results.variants[0]!.metrics)}`);
  await writeReport(results, outDir);

  const finishKt = async (built: TaskModel, inner: KtAdapterModel, result: VariantResult): Promise<void> => {
    const testTokens = test.canonical.values;
    await plotTokens(inner, testTokens, test.count, o.tsneSamples, o.seed, outDir, results, log);
    if (o.export) {
      const written = await exportKtModel(repo, inner.params, {
        name: `kt-${task.name}`,
        tasks: [task.name],
        canonical: canonicalEntry,
        output: prepared.exportOutputs[0]!,
        ...(prepared.expectedValueBins !== undefined ? { expectedValueBins: prepared.expectedValueBins } : {}),
        description: `KT-Adapter ${task.name} on ${canonicalName} with priors ${priorNames.join(', ')}, trained by kt train on ${data}`,
        training: {
          canonical: canonicalName,
          priors: priorNames,
          data,
          seed: o.seed,
          metrics: result.metrics,
          adapterFlops: result.adapterFlops ?? 0,
          adapterMacs: result.adapterMacs ?? 0,
          split: results.split,
        },
      });
      log(`exported ${written.manifest.name} version ${written.manifest.version} to ${written.dir}`);
      const parity = await checkExportParity(tf, inner, built, prepared, written.modelPath, canonicalEntry, split.test.slice(0, o.paritySamples), testTokens);
      log(`export parity on ${parity.samples} test images: decoder output max |diff| ${parity.maxAbsDiff.toExponential(2)}, ${parity.output} max |diff| ${parity.outputMaxAbsDiff.toExponential(2)}`);
      results.export = { name: written.manifest.name, version: written.manifest.version, dir: written.dir, parity };
    }
  };

  for (const spec of specs) {
    const indices = variantPriorIndices(spec, priorNames.length);
    const trainSet = selectPriors(train, indices);
    const valSet = selectPriors(val, indices);
    const testSet = selectPriors(test, indices);
    const built = buildVariant(tf, spec, { task: prepared, canonicalWidth: train.canonical.width, priorWidths: train.priors.map((p) => p.width), stats, tokenWidth, seed: o.seed, dropMaskThreshold: o.dropMaskThreshold });
    const epochs = spec.ablation ? (o.ablationEpochs ?? o.epochs) : o.epochs;
    log(`variant ${spec.id}: ${spec.label}; priors [${indices.map((i) => priorNames[i]).join(', ')}]; ${epochs} epochs max`);
    const t0 = Date.now();
    const fit = await trainModel(built.model, trainSet, valSet, {
      task: prepared.spec,
      epochs,
      batchSize: o.batchSize,
      learningRate: o.learningRate,
      weightDecay: o.weightDecay,
      warmupFraction: o.warmupFraction,
      patience: o.patience,
      seed: o.seed,
      metric: prepared.spec.kind === 'regression' ? meanAbsoluteErrorMetric : accuracyMetric,
      log,
      onEpoch: (e) => log(`  ${spec.id} epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, val loss ${e.validationLoss.toFixed(4)}, val ${prepared.spec.kind === 'regression' ? 'MAE' : 'accuracy'} ${e.validationMetric.toFixed(4)} (${(e.elapsedMs / 1000).toFixed(0)} s)`),
    });
    const trainMs = Date.now() - t0;
    const testEval = evaluateModel(built.model, testSet, prepared.spec);
    const valEval = evaluateModel(built.model, valSet, prepared.spec);
    const cost = inferenceCost(built.inner, prepared);
    const result: VariantResult = {
      id: spec.id,
      label: spec.label,
      kind: spec.kind,
      priors: indices.map((i) => priorNames[i]!),
      ablation: spec.ablation,
      metrics: prepared.metrics(testEval.predictions, targets.test),
      validation: prepared.metrics(valEval.predictions, targets.val),
      trainableParams: trainableParameterCount(built.model),
      inferenceMacs: cost.macs,
      inferenceNote: cost.note,
      ...(cost.adapterMacs ? { adapterMacs: cost.adapterMacs, adapterFlops: cost.adapterFlops } : {}),
      epochs: fit.history.length,
      bestEpoch: fit.bestEpoch,
      stoppedEarly: fit.stoppedEarly,
      trainMs,
      ...(built.inner.kind === 'kt-adapter' ? { gate: gateValue(built.inner.params) } : {}),
      history: fit.history,
    };
    results.variants.push(result);
    log(`variant ${spec.id} on test: ${JSON.stringify(result.metrics)} (${(trainMs / 1000).toFixed(0)} s)`);
    results.timings.totalMs = Date.now() - started;
    await writeReport(results, outDir);
    if (spec.id === 'kt' && built.inner.kind === 'kt-adapter') {
      // Plots and export right after the main KT variant, so they exist even if the ablations are cut short.
      await finishKt(built, built.inner, result);
      await writeReport(results, outDir);
    }
    built.model.dispose();
  }

  results.timings.totalMs = Date.now() - started;
  results.timings.finishedAt = new Date().toISOString();
  await writeReport(results, outDir);
  return results;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** t-SNE of the rows of Z (k' and p'_c) for test samples: what the knowledge token carries next to the canonical row. */
async function plotTokens(inner: KtAdapterModel, canonicalTokens: Float32Array, count: number, maxSamples: number, seed: number, outDir: string, results: ExperimentResults, log: (l: string) => void): Promise<void> {
  const n = Math.min(count, maxSamples);
  if (n < 4) return;
  const C = inner.params.config.canonicalWidth;
  const { rows, width } = await knowledgeTokenRows(inner.params, canonicalTokens.slice(0, n * C), n);
  const points: Float32Array[] = [];
  for (let i = 0; i < n; i++) points.push(rows.slice((2 * i) * width, (2 * i + 1) * width));
  for (let i = 0; i < n; i++) points.push(rows.slice((2 * i + 1) * width, (2 * i + 2) * width));
  const progress = createProgress('t-SNE', 1000, log, 5000);
  let last = 0;
  const embedded = tsne(points, { seed, iterations: 1000, onProgress: (it) => { progress.tick(undefined, it - last); last = it; } });
  progress.done(`KL ${embedded.kl.toFixed(3)}`);
  const file = join(outDir, 'tsne-tokens.png');
  await writePng(file, renderScatterPlot({
    title: `${results.task}: t-SNE of k' and p'_c (test)`,
    width: 1100,
    height: 720,
    groups: [
      { name: "k' (knowledge)", points: embedded.embedding.slice(0, n).map((p) => [p[0]!, p[1]!] as const) },
      { name: "p'_c (canonical)", points: embedded.embedding.slice(n).map((p) => [p[0]!, p[1]!] as const) },
    ],
  }));
  results.tsne = { file, samples: n, kl: embedded.kl };
}

export interface ParityResult {
  samples: number;
  /** Decoder output (probabilities) of ORT on images vs TF.js on cached tokens. */
  maxAbsDiff: number;
  /** The task output (age in years / emotion probabilities). */
  outputMaxAbsDiff: number;
  output: string;
}

/**
 * Runs the exported graph with ONNX Runtime on test images (preprocessed as the token cache does) and compares it with
 * the TF.js inference path (ktPredict) on the cached canonical tokens of the same images.
 */
export async function checkExportParity(tf: Tf, inner: KtAdapterModel, wrapped: TaskModel, task: PreparedTask, modelPath: string, canonical: RepositoryEntry, samples: readonly FaceSample[], canonicalTokens: Float32Array): Promise<ParityResult> {
  const m = canonical.manifest;
  const n = samples.length;
  const C = inner.params.config.canonicalWidth;
  const outputName = task.exportOutputs[0]!.name;
  const images = await Promise.all(samples.map(async (s) => cropFor(m, await decodeSample({ id: s.id, imagePath: s.imagePath, ...(s.box ? { box: s.box } : {}) }), { id: s.id, imagePath: s.imagePath, ...(s.box ? { box: s.box } : {}) })));
  const { readModel } = await import('../onnx/proto.js');
  const model = addOutputs(await readModel(modelPath), ['kt/y']);
  const { session } = await createSession(encodeModel(model));
  let ort: Record<string, { data: Float32Array; dims: number[] }>;
  try {
    ort = await runFloat(session, { [m.input.name]: normalize(images, m.input) }, ['kt/y', outputName]);
  } finally {
    await session.release();
  }
  const x = tf.tensor2d(canonicalTokens.slice(0, n * C), [n, C]) as Tensor2D;
  const probs = ktPredictOutput(tf, inner.params, x);
  const taskOut = wrapped.model.predict({ canonical: x, priors: [] });
  const tfProbs = probs.dataSync() as Float32Array;
  let tfOut = taskOut.dataSync() as Float32Array;
  if (task.expectedValueBins === undefined) tfOut = tfProbs;
  x.dispose();
  probs.dispose();
  taskOut.dispose();
  const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((acc, v, i) => Math.max(acc, Math.abs(v - b[i]!)), 0);
  return { samples: n, maxAbsDiff: maxDiff(ort['kt/y']!.data, tfProbs), outputMaxAbsDiff: maxDiff(ort[outputName]!.data, tfOut), output: outputName };
}
