// One `kt train` run: data and seeded split, prior tokens, every comparator on the same split and budget, test table, plots, t-SNE and export.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidInputError } from '../core/errors.js';
import { defaultRepositoryPath, resolveModel, type RepositoryEntry } from '../models/repository.js';
import type { FaceSample } from './datasets/types.js';
import { checkRepositories, checkUsableData } from './experiment-checks.js';
import { withDefaults, type ExperimentOptions, type ResolvedExperimentOptions } from './experiment-options.js';
import { checkExportParity, plotTokens } from './experiment-outputs.js';
import { exportKtModel } from './export-model.js';
import { adapterContribution, gateValue } from './kt-adapter.js';
import {
  prepareTask,
  readTaskData,
  splitTaskData,
  splitUnitFor,
  targetsOf,
  taskDefinition,
  SPLIT_FRACTIONS,
  type PreparedTask,
  type TaskDataOptions,
  type TaskDefinition,
  type TaskRows,
  type TaskSplit,
} from './pipeline-tasks.js';
import {
  CAPACITY_CONTROL_ID,
  DEFAULT_VARIANTS,
  buildVariant,
  inferenceCost,
  trainableParameterCount,
  variantPriorIndices,
  variantSpec,
  type TaskModel,
  type VariantSpec,
} from './pipeline-variants.js';
import { writeReport, type ExperimentResults, type VariantResult } from './report.js';
import { loadTf, type Tf } from './tfjs-backend.js';
import { computePriorTokens, tokenSampleOf, type PriorTokenSet } from './token-cache.js';
import { computeDatasetStats, selectPriors, type TokenDataset } from './token-dataset.js';
import { trainModel, evaluateModel, accuracyMetric, meanAbsoluteErrorMetric, type EpochRecord } from './trainer.js';

export { defaultExperimentOptions, type ExperimentOptions } from './experiment-options.js';
export { checkExportParity, type ParityResult } from './experiment-outputs.js';

function datasetFor(
  tokens: PriorTokenSet,
  canonical: string,
  priors: readonly string[],
  rows: readonly number[],
  targets: Float32Array,
  flippedRows: readonly number[] = [],
): TokenDataset {
  const all = [...rows, ...flippedRows];
  const matrix = (name: string) => {
    const m = tokens.models[name]!;
    const values = new Float32Array(all.length * m.width);
    all.forEach((r, i) => values.set(m.tokens.subarray(r * m.width, (r + 1) * m.width), i * m.width));
    return { name, width: m.width, values };
  };
  const dataset = { count: rows.length, canonical: matrix(canonical), priors: priors.map(matrix), targets };
  return flippedRows.length > 0 ? { ...dataset, flipOffset: rows.length } : dataset;
}

/** What the options decide before any data is read. */
interface ExperimentPlan {
  o: ResolvedExperimentOptions;
  log: (line: string) => void;
  started: number;
  task: TaskDefinition;
  canonicalName: string;
  priorNames: string[];
  specs: VariantSpec[];
  repo: string;
  exportRepo: string;
  outDir: string;
  data: string;
  dataOptions: TaskDataOptions;
}

/** The data, its seeded split, the prior tokens and the task bound to the canonical model. */
interface ExperimentData {
  split: TaskSplit;
  tokens: PriorTokenSet;
  tokensMs: number;
  canonicalEntry: RepositoryEntry;
  classNames: readonly string[];
  rows: TaskRows;
  targets: { train: Float32Array; val: Float32Array; test: Float32Array };
  train: TokenDataset;
  val: TokenDataset;
  test: TokenDataset;
  prepared: PreparedTask;
  stats: ReturnType<typeof computeDatasetStats>;
  tokenWidth: number;
}

/** Everything a variant run needs: the plan, the data, TF.js and the results written so far. */
interface ExperimentRun extends ExperimentPlan, ExperimentData {
  tf: Tf;
  results: ExperimentResults;
}

export async function runExperiment(options: ExperimentOptions): Promise<ExperimentResults> {
  const plan = planExperiment(options);
  const { log, outDir } = plan;
  await mkdir(outDir, { recursive: true });

  const { tf, backend, skipped } = await loadTf();
  log(`TF.js backend: ${backend}${skipped.length ? ` (skipped: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')})` : ''}`);
  const data = await prepareExperiment(plan);
  const results = initialResults(plan, data, backend);
  const run: ExperimentRun = { ...plan, ...data, tf, results };

  results.variants.push(pretrainedRow(run));
  log(`pre-trained ${plan.canonicalName} on test: ${JSON.stringify(results.variants[0]!.metrics)}`);
  await writeReport(results, outDir);

  for (const spec of plan.specs) {
    const { built, result } = await runVariant(run, spec);
    results.variants.push(result);
    log(`variant ${spec.id} on test: ${JSON.stringify(result.metrics)} (${((result.trainMs ?? 0) / 1000).toFixed(0)} s)`);
    results.timings.totalMs = Date.now() - plan.started;
    await writeReport(results, outDir);
    if (spec.id === 'kt' && built.inner.kind === 'kt-adapter') {
      // Plots right after the main KT variant, so they exist even if the ablations are cut short.
      await plotTokens(built.inner, run.test.canonical.values, run.test.count, plan.o.tsneSamples, plan.o.seed, outDir, results, log);
    }
    if (plan.o.export && exportNameOf(plan.task.name, spec.id, plan.o.exportVariants)) {
      await exportVariant(run, spec, built, result);
      await writeReport(results, outDir);
    }
    built.model.dispose();
  }

  results.timings.totalMs = Date.now() - plan.started;
  results.timings.finishedAt = new Date().toISOString();
  await writeReport(results, outDir);
  return results;
}

/** Options with defaults, the canonical model, the priors and the variants to run (checked). */
function planExperiment(options: ExperimentOptions): ExperimentPlan {
  const started = Date.now();
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const o = withDefaults(options);
  const task = taskDefinition(o.task);
  const canonicalName = o.canonical ?? task.defaultCanonical;
  const priorNames = [...(o.priors ?? task.defaultPriors)];
  if (priorNames.includes(canonicalName)) throw new InvalidInputError(`--priors must not contain the canonical model ${canonicalName}`);
  if (new Set(priorNames).size !== priorNames.length) throw new InvalidInputError('--priors lists a model twice');
  const variantIds = [...(o.variants ?? DEFAULT_VARIANTS)];
  const specs = variantIds.map((id) => variantSpec(id, priorNames));
  if (specs.some((s) => s.kind === 'kt') && !variantIds.includes(CAPACITY_CONTROL_ID))
    specs.push(variantSpec(CAPACITY_CONTROL_ID, priorNames));
  const repo = resolve(o.repo ?? defaultRepositoryPath());
  const exportRepo = o.exportRepo !== undefined ? resolve(o.exportRepo) : repo;
  const outDir = resolve(o.outDir ?? join('out', 'train', task.name));
  const data = o.data ?? task.defaultData;
  const dataOptions: TaskDataOptions = {
    ...(o.dataRoot !== undefined ? { dataRoot: o.dataRoot } : {}),
    ...(o.subjectColumn !== undefined ? { subjectColumn: o.subjectColumn } : {}),
    ...(o.groupColumn !== undefined ? { groupColumn: o.groupColumn } : {}),
  };
  return { o, log, started, task, canonicalName, priorNames, specs, repo, exportRepo, outDir, data, dataOptions };
}

/** Reads and splits the data, computes (or reuses) the prior tokens and binds the task to the canonical model. */
async function prepareExperiment(plan: ExperimentPlan): Promise<ExperimentData> {
  const { o, log, task, canonicalName, priorNames, repo } = plan;
  await checkRepositories({ repo, exportRepo: plan.exportRepo, encoders: [canonicalName, ...priorNames], exportEnabled: o.export, log });
  const dataset = await readTaskData(task, plan.data, plan.dataOptions);
  checkUsableData(dataset, plan.data, plan.dataOptions, log);
  const split = splitTaskData(task, dataset, o.seed, splitUnitFor(task, plan.dataOptions));
  const units =
    split.by === 'sample' ? '' : ` (${split.by}s: train ${split.units.train}, val ${split.units.val}, test ${split.units.test})`;
  log(
    `${dataset.name}: ${dataset.samples.length} samples; split by ${split.by}: train ${split.train.length}, val ${split.val.length}, test ${split.test.length}${units}`,
  );
  const all: FaceSample[] = [...split.train, ...split.val, ...split.test];
  const rows = {
    train: split.train.map((_, i) => i),
    val: split.val.map((_, i) => split.train.length + i),
    test: split.test.map((_, i) => split.train.length + split.val.length + i),
  };

  // Prior tokens: every encoder once per image (and per mirrored training image), cached.
  const flipped = o.flip ? split.train.map((s) => ({ ...tokenSampleOf(s), id: `${s.id}#flip`, flip: true })) : [];
  const flippedRows = flipped.map((_, i) => all.length + i);
  const tokensStarted = Date.now();
  const tokens = await computePriorTokens([...all.map(tokenSampleOf), ...flipped], {
    models: [canonicalName, ...priorNames],
    repo,
    ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
    log,
  });
  const tokensMs = Date.now() - tokensStarted;
  const canonicalEntry = await resolveModel(canonicalName, tokens.models[canonicalName]!.version, repo);
  const targets = { train: targetsOf(split.train), val: targetsOf(split.val), test: targetsOf(split.test) };
  const train = datasetFor(tokens, canonicalName, priorNames, rows.train, targets.train, flippedRows);
  const val = datasetFor(tokens, canonicalName, priorNames, rows.val, targets.val);
  const test = datasetFor(tokens, canonicalName, priorNames, rows.test, targets.test);
  const prepared = await prepareTask(task, tokens.models[canonicalName]!, canonicalEntry.modelPath, rows, dataset.classNames);
  const stats = computeDatasetStats(train);
  // Priors are projected to the canonical width (training only), so D = C_c.
  const tokenWidth = train.canonical.width;
  return {
    split,
    tokens,
    tokensMs,
    canonicalEntry,
    classNames: dataset.classNames,
    rows,
    targets,
    train,
    val,
    test,
    prepared,
    stats,
    tokenWidth,
  };
}

/** The training settings as the report states them. */
function experimentSettings({ o, canonicalName }: ExperimentPlan, { prepared, tokenWidth }: ExperimentData): Record<string, unknown> {
  const regression = prepared.spec.kind === 'regression';
  return {
    epochs: o.epochs,
    ablationEpochs: o.ablationEpochs ?? o.epochs,
    batchSize: o.batchSize,
    learningRate: o.learningRate,
    schedule: `AdamW, linear warm-up ${o.warmupFraction} of steps then cosine to 0`,
    weightDecay: o.weightDecay,
    patience: o.patience,
    dropMaskThreshold: o.dropMaskThreshold,
    tokenWidthD: tokenWidth,
    loss: regression ? `Wing (w=10, eps=2) on ${prepared.expectedValueBins ? 'expected ' : ''}age (years)` : 'softmax cross-entropy',
    decoderStart: regression
      ? `${canonicalName} head after GAP${prepared.expectedValueBins ? ` (softmax over ${prepared.expectedValueBins} bins, expected age sum_i i p_i)` : ' (age in years)'}`
      : `the shipped ${canonicalName} head after GAP (see decoder fit)`,
    ensemble: 'the shipped head on p_c plus an MLP (256 relu) on the standardised priors whose last layer starts at zero',
    kt: `heads 8, FFN 2D GELU, priors projected to D = C_c (Dense + LayerNorm, training only), per-channel gate g = 0 at start with ${10}x the learning rate, residual scaled by the canonical std`,
    distillation: `weight ${o.distillationWeight}: ${regression ? 'L1 on age' : 'KL'} of the inference path (no priors) toward the drop-masked training path (held fixed), every batch`,
    flipAugmentation: o.flip ? 'mirrored training images as a second view (one of the two per step)' : 'off',
    stdFloor: '5 % of the median channel std',
  };
}

/** The results before any variant ran: what was run on which data and split, with which settings. */
function initialResults(plan: ExperimentPlan, data: ExperimentData, backend: string): ExperimentResults {
  const { o, task } = plan;
  const { prepared } = data;
  return {
    task: task.name,
    data: plan.data,
    canonical: plan.canonicalName,
    priors: plan.priorNames,
    seed: o.seed,
    backend,
    settings: experimentSettings(plan, data),
    split: {
      train: data.train.count,
      val: data.val.count,
      test: data.test.count,
      by: data.split.by,
      stratifiedBy: task.name === 'age' ? 'age decade' : 'class',
      fractions: SPLIT_FRACTIONS,
    },
    columns: [...task.columns],
    earlyStopping: prepared.spec.kind === 'regression' ? 'MAE' : 'accuracy',
    ...(prepared.decoderFit ? { decoderFit: prepared.decoderFit } : {}),
    variants: [],
    timings: { tokensMs: data.tokensMs, totalMs: 0, startedAt: new Date(plan.started).toISOString() },
    ...(o.command ? { command: o.command } : {}),
  };
}

/** The shipped model as it is, decoded as the product decodes it. */
function pretrainedRow({ canonicalName, prepared, tokens, rows, targets }: ExperimentRun): VariantResult {
  return {
    id: 'pretrained',
    label: `pre-trained ${canonicalName} (no training; ${prepared.pretrainedDecoding})`,
    kind: 'pretrained',
    priors: [],
    ablation: false,
    metrics: prepared.pretrainedMetrics(tokens.models[canonicalName]!, rows.test, targets.test),
    trainableParams: 0,
    inferenceMacs: prepared.pretrainedHeadMacs,
    inferenceNote: 'shipped head',
  };
}

/** Builds, trains and evaluates one variant on the shared split and budget. The caller disposes `built.model`. */
async function runVariant(run: ExperimentRun, spec: VariantSpec): Promise<{ built: TaskModel; result: VariantResult }> {
  const { o, log, tf, prepared, priorNames, train, val, test, targets } = run;
  const indices = variantPriorIndices(spec, priorNames.length);
  const trainSet = selectPriors(train, indices);
  const valSet = selectPriors(val, indices);
  const testSet = selectPriors(test, indices);
  const built = buildVariant(tf, spec, {
    task: prepared,
    canonicalWidth: train.canonical.width,
    priorWidths: train.priors.map((p) => p.width),
    stats: run.stats,
    tokenWidth: run.tokenWidth,
    seed: o.seed,
    dropMaskThreshold: o.dropMaskThreshold,
  });
  const epochs = spec.ablation ? (o.ablationEpochs ?? o.epochs) : o.epochs;
  log(`variant ${spec.id}: ${spec.label}; priors [${indices.map((i) => priorNames[i]).join(', ')}]; ${epochs} epochs max`);
  const metricName = prepared.spec.kind === 'regression' ? 'MAE' : 'accuracy';
  const diagnostics = ktDiagnostics(tf, built.inner, valSet);
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
    distillationWeight: spec.kind === 'kt' && spec.distill !== false ? o.distillationWeight : 0,
    ...(diagnostics ? { epochDiagnostics: diagnostics.compute } : {}),
    log,
    onEpoch: (e) => log(epochLine(spec.id, metricName, e)),
  });
  diagnostics?.dispose();
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
  return { built, result };
}

/** One epoch's log line: losses, the inference path's validation metric, the priors-present one and the gate. */
function epochLine(id: string, metricName: string, e: EpochRecord): string {
  const withPriors = e.validationMetricWithPriors !== undefined ? ` (with priors ${e.validationMetricWithPriors.toFixed(4)})` : '';
  const d = e.diagnostics
    ? `, |g| ${e.diagnostics['gate']!.toFixed(3)}, ||h-p_c||/||p_c|| ${e.diagnostics['contribution']!.toFixed(4)}`
    : '';
  return `  ${id} epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, val loss ${e.validationLoss.toFixed(4)}, val ${metricName} ${e.validationMetric.toFixed(4)}${withPriors}${d} (${(e.elapsedMs / 1000).toFixed(0)} s)`;
}

/** KT: per epoch the mean |g| and the adapter's contribution ||h - p_c|| / ||p_c|| on the validation split. */
function ktDiagnostics(
  tf: Tf,
  inner: TaskModel['inner'],
  val: TokenDataset,
): { compute: () => Record<string, number>; dispose: () => void } | null {
  if (inner.kind !== 'kt-adapter') return null;
  const canonical = tf.tensor2d(val.canonical.values.subarray(0, val.count * val.canonical.width), [val.count, val.canonical.width]);
  return {
    compute: () => ({ gate: gateValue(inner.params), contribution: adapterContribution(tf, inner.params, canonical) }),
    dispose: () => canonical.dispose(),
  };
}

/** The repository name a variant is exported under, or null when it is not in `wanted` (control = kt-zero). */
export function exportNameOf(task: string, id: string, wanted: readonly string[]): string | null {
  const asked = wanted.some((w) => w === id || (w === 'control' && id === CAPACITY_CONTROL_ID));
  if (!asked) return null;
  if (id === 'kt') return `kt-${task}`;
  if (id === CAPACITY_CONTROL_ID) return `kt-${task}-control`;
  return `kt-${task}-${id}`;
}

/** Exports a trained KT variant or the baseline into the repository and checks ORT against TF.js on test images. */
async function exportVariant(run: ExperimentRun, spec: VariantSpec, built: TaskModel, result: VariantResult): Promise<void> {
  const { o, log, task, prepared, results, canonicalName, canonicalEntry, test } = run;
  const name = exportNameOf(task.name, spec.id, o.exportVariants)!;
  const inner = built.inner;
  if (inner.kind === 'ensemble') throw new InvalidInputError(`--export ${spec.id}: an ensemble needs every encoder and is not exported`);
  const head = inner.kind === 'kt-adapter' ? inner.params : { baseline: inner.mlp };
  const written = await exportKtModel(run.exportRepo, head, {
    name,
    tasks: [task.name],
    canonical: canonicalEntry,
    output: prepared.exportOutputs[0]!,
    ...(prepared.expectedValueBins !== undefined ? { expectedValueBins: prepared.expectedValueBins } : {}),
    description: `${spec.label} for ${task.name} on ${canonicalName} (priors in training: ${result.priors.join(', ') || 'none'}), trained by kt train on ${run.data}`,
    training: {
      canonical: canonicalName,
      priors: result.priors,
      variant: spec.id,
      data: run.data,
      seed: o.seed,
      metrics: result.metrics,
      adapterFlops: result.adapterFlops ?? 0,
      adapterMacs: result.adapterMacs ?? 0,
      split: results.split,
    },
  });
  log(`exported ${spec.id} as ${written.manifest.name} version ${written.manifest.version} to ${written.dir}`);
  const parity = await checkExportParity(
    run.tf,
    inner,
    built,
    prepared,
    written.modelPath,
    canonicalEntry,
    run.split.test.slice(0, o.paritySamples),
    test.canonical.values,
  );
  log(
    `export parity on ${parity.samples} test images: decoder output max |diff| ${parity.maxAbsDiff.toExponential(2)}, ${parity.output} max |diff| ${parity.outputMaxAbsDiff.toExponential(2)}`,
  );
  const entry = { variant: spec.id, name: written.manifest.name, version: written.manifest.version, dir: written.dir, parity };
  (results.exports ??= []).push(entry);
  if (spec.id === 'kt') results.export = entry;
}
