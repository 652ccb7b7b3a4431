// `kt models eval`: which models answer a task, the evaluation context, the task's evaluator, paired differences
// against the serving default, and storing results into each model's manifest.
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { RgbImage } from '../../core/image.js';
import { InvalidInputError, NotFoundError } from '../../core/errors.js';
import type { FaceTask, ManifestEvaluation, ModelManifest } from '../manifest.js';
import { listRepository, preferredVersion, type RepositoryEntry } from '../repository.js';
import { detectFaces, loadModel, type LoadedModel } from '../runner.js';
import { servingDefaultModels } from '../zoo.js';
import { pairedDifference, type PairedDifference } from './bootstrap.js';
import { evaluateLandmarks, landmarkOutputOf } from './landmarks.js';
import { evaluateAge, evaluateEmotion, evaluateGender } from './tasks.js';
import type { EvalContext, EvalResult, EvalTask, TaskEvaluator } from './types.js';

export const evalTasks: readonly EvalTask[] = ['age', 'gender', 'emotion', 'landmarks', 'identity'];

/** The manifest task a model must answer for each eval task (landmarks: any landmark output that maps to 68 points). */
const answersTask: Record<EvalTask, (m: ModelManifest) => boolean> = {
  age: (m) => m.outputs.some((o) => o.task === 'age'),
  gender: (m) => m.outputs.some((o) => o.task === 'gender'),
  emotion: (m) => m.outputs.some((o) => o.task === 'emotion'),
  landmarks: (m) => landmarkOutputOf(m) !== undefined,
  identity: (m) => m.outputs.some((o) => o.task === ('embedding' satisfies FaceTask)),
};

const evaluators: Record<EvalTask, TaskEvaluator> = {
  age: evaluateAge,
  gender: evaluateGender,
  emotion: evaluateEmotion,
  landmarks: (ctx, models) => evaluateLandmarks(ctx, models),
  identity: async (ctx, models) => (await import('./identity.js')).evaluateIdentity(ctx, models),
};

export interface EvalOptions {
  task: string;
  /** Dataset folder. */
  data: string;
  repo: string;
  /** Default: every model answering the task. */
  models?: string[];
  limit?: number;
  seed?: number;
  bootstrap?: number;
  /** Default: the serving default for the task (models/zoo.ts). */
  baseline?: string;
  detector?: string;
  progress?: (line: string) => void;
}

export interface PairedRow extends PairedDifference {
  /** runner name (model or model:variant) minus baseline. */
  name: string;
  baseline: string;
}

export interface EvalReport {
  task: EvalTask;
  dataset: string;
  baseline: string;
  results: EvalResult[];
  paired: PairedRow[];
  date: string;
}

export function checkTask(task: string): EvalTask {
  if (!(evalTasks as readonly string[]).includes(task))
    throw new InvalidInputError(`unknown task "${task}" for kt models eval (expected one of ${evalTasks.join(', ')})`);
  return task as EvalTask;
}

/** Highest version of each model in the repository. */
/** Per model, the version served by default: the newest fp32 one (int8 / fp16 versions are scored by quantize). */
function latestVersions(entries: readonly RepositoryEntry[]): Map<string, RepositoryEntry> {
  const byName = new Map<string, RepositoryEntry[]>();
  for (const e of entries) byName.set(e.manifest.name, [...(byName.get(e.manifest.name) ?? []), e]);
  const out = new Map<string, RepositoryEntry>();
  for (const [name, list] of byName) {
    const version = preferredVersion(list.map((e) => e.manifest));
    const entry = list.find((e) => e.manifest.version === version);
    if (entry) out.set(name, entry);
  }
  return out;
}

/** The models to score: the named ones (each must exist and answer the task), or every model answering it. */
export function selectModels(
  task: EvalTask,
  entries: Map<string, RepositoryEntry>,
  named: readonly string[] | undefined,
  repo: string,
): string[] {
  const answering = [...entries.values()].filter((e) => answersTask[task](e.manifest)).map((e) => e.manifest.name);
  if (!named || named.length === 0) {
    if (answering.length === 0) throw new NotFoundError(`no model in ${repo} answers task ${task}`);
    return answering;
  }
  for (const name of named) {
    const entry = entries.get(name);
    if (!entry) throw new NotFoundError(`model ${name} not found in ${repo} (models: ${[...entries.keys()].join(', ') || 'none'})`);
    if (!answersTask[task](entry.manifest)) {
      const tasks = [...new Set(entry.manifest.outputs.map((o) => o.task))].join(', ');
      throw new InvalidInputError(
        `model ${name} does not answer task ${task} (its outputs answer: ${tasks}; models that do: ${answering.join(', ') || 'none'})`,
      );
    }
  }
  return [...new Set(named)];
}

/** Runs one evaluation: every selected model on the dataset, then paired differences against the baseline model. */
export async function runEvaluation(options: EvalOptions): Promise<EvalReport> {
  const task = checkTask(options.task);
  const repo = resolve(options.repo);
  const entries = latestVersions(await listRepository(repo));
  const models = selectModels(task, entries, options.models, repo);
  const detectorName = options.detector ?? 'blazeface';
  const detectorEntry = entries.get(detectorName);
  if (!detectorEntry) throw new NotFoundError(`detector ${detectorName} not found in ${repo}: run \`kt models build\``);
  const loaded = new Map<string, Promise<LoadedModel>>();
  const load = (name: string): Promise<LoadedModel> => {
    const entry = entries.get(name);
    if (!entry) return Promise.reject(new NotFoundError(`model ${name} not found in ${repo}`));
    let p = loaded.get(name);
    if (!p) loaded.set(name, (p = loadModel(entry)));
    return p;
  };
  const detector = await load(detectorName);
  const ctx: EvalContext = {
    dataPath: resolve(options.data),
    dataset: basename(resolve(options.data)),
    repo,
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    seed: options.seed ?? 1,
    bootstrap: options.bootstrap ?? 1000,
    detect: (frame: RgbImage) => detectFaces(detector, frame).then((faces) => [...faces].sort((a, b) => b.score - a.score)),
    load,
    progress: options.progress ?? (() => {}),
  };
  const results = await evaluators[task](ctx, models);
  const baseline = options.baseline ?? servingDefaultModels[task];
  return { task, dataset: ctx.dataset, baseline, results, paired: pairedRows(results, baseline, ctx), date: new Date().toISOString() };
}

/** Each result's primary metric minus the baseline's (plain variant), on the faces both answered. */
function pairedRows(results: readonly EvalResult[], baseline: string, ctx: EvalContext): PairedRow[] {
  const base = results.find((r) => r.model === baseline && !r.variant);
  if (!base?.paired) return [];
  const rows: PairedRow[] = [];
  for (const r of results) {
    if (r === base || !r.paired) continue;
    const d = pairedDifference(r.paired, base.paired, { resamples: ctx.bootstrap, seed: ctx.seed });
    if (d) rows.push({ ...d, name: resultName(r), baseline });
  }
  return rows;
}

export const resultName = (r: Pick<EvalResult, 'model' | 'variant'>): string => (r.variant ? `${r.model}:${r.variant}` : r.model);

/** Manifest entries of one result: one per metric. */
export function manifestEntries(result: EvalResult, date: string): ManifestEvaluation[] {
  return result.metrics.map((m) => ({
    task: result.task,
    dataset: result.dataset,
    ...(result.variant ? { variant: result.variant } : {}),
    n: result.n,
    metric: m.name,
    value: round(m.value),
    unit: m.unit,
    ...(m.ci95 && m.ci95.every(Number.isFinite) ? { ci95: [round(m.ci95[0]), round(m.ci95[1])] as [number, number] } : {}),
    ciMethod: result.ciMethod,
    ...(Number.isFinite(result.msPerFace) ? { msPerFace: round(result.msPerFace) } : {}),
    date,
    ...(result.notes?.length ? { note: result.notes.join('; ') } : {}),
  }));
}

const round = (v: number): number => Math.round(v * 1e4) / 1e4;

/**
 * Stores results into each model's model.json (`evaluations`): entries with the same task, dataset, metric and
 * variant are replaced, others kept. Only that field changes; the file is rewritten as formatted JSON.
 */
export async function writeEvaluations(repo: string, report: EvalReport): Promise<string[]> {
  const entries = latestVersions(await listRepository(resolve(repo)));
  const written: string[] = [];
  for (const result of report.results) {
    const entry = entries.get(result.model);
    if (!entry || entry.manifest.version !== result.version) continue;
    const path = join(dirname(entry.modelPath), 'model.json');
    const json = JSON.parse(await readFile(path, 'utf8')) as { evaluations?: ManifestEvaluation[] };
    const fresh = manifestEntries(result, report.date.slice(0, 10));
    const key = (e: ManifestEvaluation): string => [e.task, e.dataset, e.metric, e.variant ?? ''].join('\u0000');
    const replaced = new Set(fresh.map(key));
    json.evaluations = [...(json.evaluations ?? []).filter((e) => !replaced.has(key(e))), ...fresh];
    await writeFile(path, `${JSON.stringify(json, null, 2)}\n`);
    if (!written.includes(path)) written.push(path);
  }
  return written;
}
