// Building EvalResult rows: metrics with cluster-bootstrap intervals, paired samples, and known contamination notes.
import { clusterBootstrapCi, meanWithCi } from './bootstrap.js';
import type { EvalDataset } from './datasets.js';
import type { EvalRunner, ServingRun } from './serving.js';
import type { EvalContext, EvalMetric, EvalResult, EvalTask } from './types.js';

/**
 * Where a model was trained on (part of) a dataset, its score there is optimistic: said next to the number.
 * Sources: human's emotion model is oarriaga's mini-Xception trained on FER2013 (our set is its PrivateTest split);
 * face-api's README lists UTKFace among the AgeGenderNet training sets.
 */
export const knownContamination: readonly { model: string; dataset: string; note: string }[] = [
  {
    model: 'emotion',
    dataset: 'emotion-fer2013',
    note: 'emotion was trained on FER2013 (this is its own test split and distribution): optimistic',
  },
  { model: 'agegender', dataset: 'age-utkface', note: 'agegender (face-api AgeGenderNet) was trained on UTKFace among others: optimistic' },
];

export function contaminationNotes(model: string, dataset: string): string[] {
  return knownContamination.filter((c) => c.model === model && dataset.startsWith(c.dataset)).map((c) => c.note);
}

/** Indices of the items a runner answered. */
export function answeredIndices<A>(answers: readonly (A | undefined)[]): number[] {
  return answers.flatMap((a, i) => (a === undefined ? [] : [i]));
}

/** A metric that is the mean of per-item values, with its cluster-bootstrap interval. */
export function meanMetric(
  ctx: EvalContext,
  name: string,
  unit: string,
  higherIsBetter: boolean,
  values: readonly number[],
  clusters: readonly string[],
): EvalMetric {
  const { value, ci95 } = meanWithCi(values, clusters, { resamples: ctx.bootstrap, seed: ctx.seed });
  return { name, value, ci95, unit, higherIsBetter };
}

/** A metric computed from item indices (e.g. macro-F1), with its cluster-bootstrap interval. */
export function statisticMetric(
  ctx: EvalContext,
  name: string,
  unit: string,
  higherIsBetter: boolean,
  clusters: readonly string[],
  statistic: (indices: readonly number[]) => number,
): EvalMetric {
  const all = clusters.map((_, i) => i);
  return {
    name,
    value: statistic(all),
    ci95: clusterBootstrapCi(clusters, statistic, { resamples: ctx.bootstrap, seed: ctx.seed }),
    unit,
    higherIsBetter,
  };
}

/** The common fields of one runner's result; `metrics` primary first, `paired` per answered item. */
export function buildResult<L, A>(
  task: EvalTask,
  dataset: EvalDataset<L>,
  run: ServingRun<L, A>,
  r: number,
  runner: EvalRunner,
  parts: Pick<EvalResult, 'metrics'> & Partial<Pick<EvalResult, 'paired' | 'details'>>,
): EvalResult {
  const answered = answeredIndices(run.answers[r]!);
  const notes = [...contaminationNotes(runner.model.manifest.name, dataset.name)];
  const missed = run.detected.filter((d) => !d).length;
  if (missed) notes.push(`the detector missed ${missed} of ${run.items.length} faces; they are left out of every model's score`);
  return {
    task,
    dataset: dataset.name,
    model: runner.model.manifest.name,
    version: runner.model.manifest.version,
    ...(runner.variant ? { variant: runner.variant } : {}),
    n: answered.length,
    total: run.items.length,
    metrics: parts.metrics,
    ciMethod: dataset.ciMethod,
    msPerFace: run.msPerFace[r]!,
    ...(parts.paired ? { paired: parts.paired } : {}),
    ...(parts.details ? { details: parts.details } : {}),
    notes,
  };
}
