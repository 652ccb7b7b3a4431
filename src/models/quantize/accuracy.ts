// The accuracy change of a reduced-precision version against its source on the shared labelled sets, scored through
// the serving path by the `kt models eval` evaluators on the same faces, with paired bootstrap intervals.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NotFoundError } from '../../core/errors.js';
import type { RgbImage } from '../../core/image.js';
import { pairedDifference } from '../eval/bootstrap.js';
import { evaluateLandmarks } from '../eval/landmarks.js';
import { evaluateAge, evaluateEmotion, evaluateGender } from '../eval/tasks.js';
import type { EvalContext, EvalResult, EvalTask } from '../eval/types.js';
import type { ModelManifest, PrecisionAccuracy } from '../manifest.js';
import { detectFaces, type LoadedModel } from '../runner.js';

/** The largest change device profiles accept (issue 12): years of MAE, points of accuracy, TAR@FAR=1 % and NME. */
export const precisionTolerances: Readonly<Record<string, { metric: string; tolerance: number }>> = {
  age: { metric: 'mae', tolerance: 0.3 },
  gender: { metric: 'accuracy', tolerance: 1 },
  emotion: { metric: 'accuracy', tolerance: 1 },
  landmarks: { metric: 'nme', tolerance: 0.3 },
  identity: { metric: 'tar_at_far_1%', tolerance: 0.5 },
};

const datasetOf: Record<EvalTask, string> = {
  age: 'age-utkface',
  gender: 'age-utkface',
  emotion: 'emotion-fer2013',
  landmarks: 'landmarks-wflw',
  identity: 'identity-orl',
};

/** The eval tasks a manifest answers, in a fixed order. */
export function evalTasksOf(manifest: ModelManifest): EvalTask[] {
  const tasks = new Set(manifest.outputs.map((o) => o.task));
  const out: EvalTask[] = [];
  for (const t of ['age', 'gender', 'emotion', 'landmarks'] as const) if (tasks.has(t)) out.push(t);
  if (tasks.has('embedding')) out.push('identity');
  return out;
}

export interface AccuracyOptions {
  /** Shared data root holding the dataset folders. */
  data: string;
  /** At most this many faces per dataset (seeded, stratified); undefined: all. */
  limit?: number;
  seed?: number;
  bootstrap?: number;
  progress?: (line: string) => void;
}

async function evaluate(task: EvalTask, ctx: EvalContext, models: string[], align: ModelManifest['input']['align']): Promise<EvalResult[]> {
  if (task === 'age') return evaluateAge(ctx, models);
  if (task === 'gender') return evaluateGender(ctx, models);
  if (task === 'emotion') return evaluateEmotion(ctx, models);
  if (task === 'landmarks') return evaluateLandmarks(ctx, models);
  const { scoreIdentity } = await import('../eval/identity.js');
  const served = align === '5point' ? 'aligned' : 'unaligned';
  return (await scoreIdentity(ctx, models, [served])).map((s) => s.result);
}

/** One PrecisionAccuracy row: the primary (or tolerance) metric of both results and their paired difference. */
function accuracyRow(task: EvalTask, source: EvalResult, derived: EvalResult, options: AccuracyOptions): PrecisionAccuracy {
  const tol = precisionTolerances[task];
  const metric = tol && derived.metrics.some((m) => m.name === tol.metric) ? tol.metric : derived.metrics[0]!.name;
  const a = source.metrics.find((m) => m.name === metric)!;
  const b = derived.metrics.find((m) => m.name === metric)!;
  const paired =
    source.paired && derived.paired && derived.paired.metric === metric
      ? pairedDifference(derived.paired, source.paired, { resamples: options.bootstrap ?? 1000, seed: options.seed ?? 1 })
      : undefined;
  const change = paired ? paired.difference : b.value - a.value;
  const round = (v: number): number => Math.round(v * 1e4) / 1e4;
  return {
    task,
    dataset: derived.dataset,
    metric,
    unit: b.unit,
    n: derived.n,
    source: round(a.value),
    value: round(b.value),
    change: round(change),
    ...(paired ? { ci95: [round(paired.ci95[0]), round(paired.ci95[1])] as [number, number] } : {}),
    // Only a loss counts against the tolerance: an int8 model that scores better is within it (the CI says whether it is noise).
    ...(tol?.metric === metric
      ? { tolerance: tol.tolerance, withinTolerance: (b.higherIsBetter ? -change : change) <= tol.tolerance }
      : {}),
    date: new Date().toISOString().slice(0, 10),
  };
}

/**
 * Scores `source` and `derived` (two versions of one model) on the dataset of every task the model answers, on the
 * same detected faces, and returns the change per task. Tasks whose dataset folder is missing are skipped with a line.
 */
export async function accuracyChange(
  source: LoadedModel,
  derived: LoadedModel,
  detector: LoadedModel,
  options: AccuracyOptions,
): Promise<PrecisionAccuracy[]> {
  const name = source.manifest.name;
  const derivedName = `${name}@v${derived.manifest.version}`;
  const models = new Map([
    [name, source],
    [derivedName, { ...derived, manifest: { ...derived.manifest, name: derivedName } }],
  ]);
  const rows: PrecisionAccuracy[] = [];
  for (const task of evalTasksOf(source.manifest)) {
    const dataPath = resolve(join(options.data, datasetOf[task]));
    if (!existsSync(dataPath)) {
      options.progress?.(`accuracy: ${task}: no ${dataPath}, skipped`);
      continue;
    }
    const ctx: EvalContext = {
      dataPath,
      dataset: datasetOf[task],
      repo: '',
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      seed: options.seed ?? 1,
      bootstrap: options.bootstrap ?? 1000,
      detect: (frame: RgbImage) => detectFaces(detector, frame).then((faces) => [...faces].sort((a, b) => b.score - a.score)),
      load: (n: string) => {
        const m = models.get(n);
        return m ? Promise.resolve(m) : Promise.reject(new NotFoundError(`model ${n} is not part of this comparison`));
      },
      progress: options.progress ?? (() => {}),
    };
    const results = (await evaluate(task, ctx, [name, derivedName], source.manifest.input.align)).filter((r) => !r.variant);
    const a = results.find((r) => r.model === name);
    const b = results.find((r) => r.model === derivedName);
    if (a && b) rows.push(accuracyRow(task, a, b, options));
  }
  return rows;
}
