// `kt train --seeds`: one full run per seed (its own split, initialisation, shuffling and drop masks), then every row's
// mean and 95 % t-interval over seeds, and paired differences (same seed = same split) against the control and baseline.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidInputError } from '../core/errors.js';
import type { ExperimentOptions } from './experiment-options.js';
import type { MetricColumn } from './pipeline-tasks.js';
import type { ExperimentResults } from './report.js';

/** Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom (then the normal 1.96). */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export function tQuantile975(degreesOfFreedom: number): number {
  if (!(degreesOfFreedom >= 1)) throw new InvalidInputError('a t-interval needs at least two values');
  return T975[Math.min(degreesOfFreedom, T975.length) - 1]! * (degreesOfFreedom > 30 ? 1.96 / 2.042 : 1);
}

export interface MeanInterval {
  mean: number;
  /** 95 % t-interval over the values; equal to the mean when there is one value. */
  low: number;
  high: number;
  n: number;
}

/** Mean and 95 % t-interval (mean +- t_{0.975, n-1} s / sqrt(n)). */
export function meanInterval(values: readonly number[]): MeanInterval {
  const n = values.length;
  if (n === 0) throw new InvalidInputError('meanInterval of no values');
  const mean = values.reduce((a, v) => a + v, 0) / n;
  if (n === 1) return { mean, low: mean, high: mean, n };
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const half = (tQuantile975(n - 1) * sd) / Math.sqrt(n);
  return { mean, low: mean - half, high: mean + half, n };
}

/** The interval of per-seed differences a - b (paired: both rows ran on the same seed's split). */
export function pairedInterval(a: readonly number[], b: readonly number[]): MeanInterval {
  if (a.length !== b.length) throw new InvalidInputError(`paired values differ in count (${a.length} vs ${b.length})`);
  return meanInterval(a.map((v, i) => v - b[i]!));
}

export const excludesZero = (i: MeanInterval): boolean => i.n > 1 && (i.low > 0 || i.high < 0);

export interface SeedRow {
  id: string;
  label: string;
  metrics: Record<string, MeanInterval>;
  /** Paired differences per metric against these rows (when present in every seed). */
  versus: Record<string, Record<string, MeanInterval>>;
  /** Validation metric of the inference path and of the priors-present path at the kept epoch (KT with priors). */
  validation?: { deployed: MeanInterval; withPriors?: MeanInterval; withPriorsVsControl?: MeanInterval };
  /** Mean |g| and ||h - p_c|| / ||p_c|| at the last epoch. */
  gate?: MeanInterval;
  contribution?: MeanInterval;
}

export interface SeedSummary {
  task: string;
  seeds: number[];
  columns: MetricColumn[];
  rows: SeedRow[];
  interval: string;
}

const COMPARED = ['kt-zero', 'baseline', 'pretrained'] as const;

/** Per run, the validation metric of a variant's kept epoch (undefined when any run lacks it). */
function bestValidation(runs: readonly ExperimentResults[], id: string): number[] | undefined {
  const values = runs.map((r) => {
    const v = r.variants.find((x) => x.id === id);
    return v?.history?.find((e) => e.epoch === v.bestEpoch)?.validationMetric;
  });
  return values.every((v) => v !== undefined) ? values : undefined;
}

/** Per variant over the seeds' results (a variant missing from any seed is left out). */
export function summariseSeeds(runs: readonly ExperimentResults[]): SeedSummary {
  if (runs.length === 0) throw new InvalidInputError('no runs to summarise');
  const first = runs[0]!;
  const ids = first.variants.map((v) => v.id).filter((id) => runs.every((r) => r.variants.some((v) => v.id === id)));
  const valuesOf = (id: string, key: string): number[] => runs.map((r) => r.variants.find((v) => v.id === id)!.metrics[key]!);
  const controlVal = ids.includes('kt-zero') ? bestValidation(runs, 'kt-zero') : undefined;
  const rows = ids.map((id): SeedRow => {
    const variants = runs.map((r) => r.variants.find((v) => v.id === id)!);
    const metrics = Object.fromEntries(first.columns.map((c) => [c.key, meanInterval(valuesOf(id, c.key))]));
    const versus: SeedRow['versus'] = {};
    for (const other of COMPARED)
      if (other !== id && ids.includes(other))
        versus[other] = Object.fromEntries(first.columns.map((c) => [c.key, pairedInterval(valuesOf(id, c.key), valuesOf(other, c.key))]));
    const row: SeedRow = { id, label: variants[0]!.label, metrics, versus };
    const best = variants.map((v) => v.history?.find((e) => e.epoch === v.bestEpoch));
    if (best.every((e) => e !== undefined)) {
      const withPriors = best.map((e) => e.validationMetricWithPriors);
      const present = withPriors.every((v) => v !== undefined) ? withPriors : undefined;
      row.validation = {
        deployed: meanInterval(best.map((e) => e.validationMetric)),
        ...(present ? { withPriors: meanInterval(present) } : {}),
        // Do the priors help at all? The priors-present pass against the control, on the same seed's validation split.
        ...(present && controlVal ? { withPriorsVsControl: pairedInterval(present, controlVal) } : {}),
      };
      const last = variants.map((v) => v.history![v.history!.length - 1]!.diagnostics);
      if (last.every((d) => d !== undefined)) {
        row.gate = meanInterval(last.map((d) => d['gate']!));
        row.contribution = meanInterval(last.map((d) => d['contribution']!));
      }
    }
    return row;
  });
  return {
    task: first.task,
    seeds: runs.map((r) => r.seed),
    columns: first.columns,
    rows,
    interval: `95 % t-interval over ${runs.length} seeds (mean +- t(0.975, n-1) s / sqrt(n)); differences are paired by seed`,
  };
}

const fmtInterval = (i: MeanInterval, digits: number, scale: number): string =>
  i.n > 1
    ? `${(i.mean * scale).toFixed(digits)} [${(i.low * scale).toFixed(digits)}, ${(i.high * scale).toFixed(digits)}]`
    : (i.mean * scale).toFixed(digits);

const signedInterval = (i: MeanInterval, digits: number, scale: number): string => {
  const s = (v: number) => `${v >= 0 ? '+' : ''}${(v * scale).toFixed(digits)}`;
  return i.n > 1 ? `${s(i.mean)} [${s(i.low)}, ${s(i.high)}]${excludesZero(i) ? '' : ' (n.s.)'}` : s(i.mean);
};

/** The summary as Markdown: metric means with CIs, then paired differences vs control and baseline for the first metric. */
export function renderSeedSummary(s: SeedSummary): string {
  const c0 = s.columns[0]!;
  const head = ['Structure', ...s.columns.map((c) => c.label), ...COMPARED.map((o) => `${c0.label} vs ${o}`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of s.rows) {
    const cells = [
      r.label,
      ...s.columns.map((c) => fmtInterval(r.metrics[c.key]!, c.digits, 1)),
      ...COMPARED.map((o) => (r.versus[o] ? signedInterval(r.versus[o][c0.key]!, c0.digits, 1) : '')),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const diag = s.rows.filter((r) => r.validation);
  const validation = [
    '',
    `Validation ${c0.key === 'mae' ? 'MAE' : 'accuracy'} at the kept epoch (inference path / priors-present path), last-epoch mean |g| and ||h - p_c|| / ||p_c||:`,
    '',
    '| Structure | val (inference path) | val (priors present) | priors present - control | mean abs g | contribution |',
    '|---|---|---|---|---|---|',
    ...diag.map((r) => {
      const v = r.validation!;
      const cells = [
        fmtInterval(v.deployed, 4, 1),
        v.withPriors ? fmtInterval(v.withPriors, 4, 1) : '-',
        v.withPriorsVsControl ? signedInterval(v.withPriorsVsControl, 4, 1) : '-',
        r.gate ? fmtInterval(r.gate, 4, 1) : '-',
        r.contribution ? fmtInterval(r.contribution, 4, 1) : '-',
      ];
      return `| ${r.label} | ${cells.join(' | ')} |`;
    }),
  ];
  return [`${s.task}: seeds ${s.seeds.join(', ')}; ${s.interval}; (n.s.) = the interval includes 0.`, '', ...lines, ...validation, ''].join(
    '\n',
  );
}

/** A finished earlier run of this seed with the same task and variants, reused so that seeds can be added later. */
async function finishedRun(dir: string, options: ExperimentOptions): Promise<ExperimentResults | undefined> {
  const path = join(dir, 'results.json');
  if (!existsSync(path)) return undefined;
  const r = JSON.parse(await readFile(path, 'utf8')) as ExperimentResults;
  const ids = r.variants.map((v) => v.id);
  const wanted = options.variants ?? [];
  const same = r.task === options.task && r.timings.finishedAt !== undefined && wanted.every((id) => ids.includes(id));
  return same ? r : undefined;
}

/** Runs every seed in turn (the export, if any, only from the first) and writes summary.json and summary.md into outDir. */
export async function runSeeds(
  options: ExperimentOptions & { seeds: readonly number[] },
  run: (o: ExperimentOptions) => Promise<ExperimentResults>,
): Promise<{ summary: SeedSummary; markdown: string; runs: ExperimentResults[] }> {
  if (options.seeds.length === 0) throw new InvalidInputError('--seeds needs at least one seed');
  const outDir = resolve(options.outDir ?? join('out', 'train', options.task));
  const runs: ExperimentResults[] = [];
  for (const [i, seed] of options.seeds.entries()) {
    const { seeds: _seeds, ...single } = options;
    const seedDir = join(outDir, `seed-${seed}`);
    const done = await finishedRun(seedDir, options);
    // Plots and exports once, from the first seed.
    const firstOnly = i === 0 ? {} : { tsneSamples: 0 };
    runs.push(done ?? (await run({ ...single, ...firstOnly, seed, outDir: seedDir, export: (options.export ?? true) && i === 0 })));
    const summary = summariseSeeds(runs);
    const markdown = renderSeedSummary(summary);
    await writeFile(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    await writeFile(join(outDir, 'summary.md'), markdown);
  }
  const summary = summariseSeeds(runs);
  return { summary, markdown: renderSeedSummary(summary), runs };
}
