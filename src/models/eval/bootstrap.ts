// 95 % intervals by percentile bootstrap over clusters (subjects, source images or single items), and paired differences.
import { createRandom } from '../../core/random.js';
import type { PairedSamples } from './types.js';

/** Seeded uniform [0, 1) generator: the same seed gives the same resamples, so reports are reproducible. */
export const seededRandom = createRandom;

/** Linear-interpolated quantile q (0..1) of ascending values. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export interface BootstrapOptions {
  resamples: number;
  seed: number;
}

/** Item indices grouped by cluster, in first-seen order. */
function groupByCluster(clusters: readonly string[]): number[][] {
  const groups = new Map<string, number[]>();
  clusters.forEach((c, i) => {
    let g = groups.get(c);
    if (!g) groups.set(c, (g = []));
    g.push(i);
  });
  return [...groups.values()];
}

/**
 * Percentile bootstrap 95 % interval of `statistic` (computed from item indices): whole clusters are drawn with
 * replacement, so items of one subject (or image) stay together and the interval is not too narrow.
 */
export function clusterBootstrapCi(
  clusters: readonly string[],
  statistic: (indices: readonly number[]) => number,
  options: BootstrapOptions,
): [number, number] {
  const groups = groupByCluster(clusters);
  if (groups.length < 2 || options.resamples < 1) return [NaN, NaN];
  const random = seededRandom(options.seed);
  const stats: number[] = [];
  for (let b = 0; b < options.resamples; b++) {
    const indices: number[] = [];
    for (let k = 0; k < groups.length; k++) indices.push(...groups[Math.floor(random() * groups.length)]!);
    const s = statistic(indices);
    if (Number.isFinite(s)) stats.push(s);
  }
  stats.sort((a, b) => a - b);
  return [quantile(stats, 0.025), quantile(stats, 0.975)];
}

export function mean(values: readonly number[], indices?: readonly number[]): number {
  if (!indices) return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
  let sum = 0;
  for (const i of indices) sum += values[i]!;
  return indices.length ? sum / indices.length : NaN;
}

/** Mean of per-item values with its cluster-bootstrap 95 % interval. */
export function meanWithCi(
  values: readonly number[],
  clusters: readonly string[],
  options: BootstrapOptions,
): { value: number; ci95: [number, number] } {
  return { value: mean(values), ci95: clusterBootstrapCi(clusters, (idx) => mean(values, idx), options) };
}

export interface PairedDifference {
  metric: string;
  /** Items both models answered. */
  n: number;
  /** mean(a - b) over the common items. */
  difference: number;
  ci95: [number, number];
}

/**
 * Paired difference a - b of a mean metric on the items both answered, with a cluster-bootstrap 95 % interval of the
 * mean per-item difference (clusters from a). Undefined when the metrics differ or fewer than 2 items are shared.
 */
export function pairedDifference(a: PairedSamples, b: PairedSamples, options: BootstrapOptions): PairedDifference | undefined {
  if (a.metric !== b.metric) return undefined;
  const byId = new Map(b.ids.map((id, i) => [id, b.values[i]!]));
  const diffs: number[] = [];
  const clusters: string[] = [];
  a.ids.forEach((id, i) => {
    const other = byId.get(id);
    if (other === undefined) return;
    diffs.push(a.values[i]! - other);
    clusters.push(a.clusters[i]!);
  });
  if (diffs.length < 2) return undefined;
  const { value, ci95 } = meanWithCi(diffs, clusters, options);
  return { metric: a.metric, n: diffs.length, difference: value, ci95 };
}
