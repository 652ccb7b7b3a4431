// The text report of `kt models eval`: one table row per model (metrics with 95 % CI, paired difference vs the
// serving default, ms per face), then the task's detail tables and the caveats.
import type { AgeBandRow } from './metrics.js';
import { resultName, type EvalReport } from './run.js';
import type { EvalMetric, EvalResult } from './types.js';

const num = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : '-');

export function formatMetric(m: EvalMetric): string {
  const ci = m.ci95 && m.ci95.every(Number.isFinite) ? ` [${num(m.ci95[0])}, ${num(m.ci95[1])}]` : '';
  return `${num(m.value)}${ci}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The main table: one row per model (and variant). */
export function resultsTable(report: EvalReport): string {
  const names = report.results[0]?.metrics.map((m) => `${m.name.toUpperCase()}${m.unit ? ` (${m.unit})` : ''}`) ?? [];
  const primary = report.results[0]?.metrics[0];
  const diffHeader = primary ? `Δ${primary.name.toUpperCase()} VS ${report.baseline}` : 'Δ';
  const rows = report.results.map((r) => {
    const paired = report.paired.find((p) => p.name === resultName(r));
    const diff = paired
      ? `${num(paired.difference)} [${num(paired.ci95[0])}, ${num(paired.ci95[1])}]`
      : r.model === report.baseline && !r.variant
        ? '(baseline)'
        : '-';
    return [resultName(r), `${r.n}/${r.total}`, ...r.metrics.map(formatMetric), diff, num(r.msPerFace, 1)];
  });
  return table(['MODEL', 'N', ...names, diffHeader, 'MS/FACE'], rows);
}

function detailLines(r: EvalResult): string[] {
  const out: string[] = [];
  const d = r.details ?? {};
  const bands = d['bands'] as AgeBandRow[] | undefined;
  if (bands)
    out.push(
      `  ${resultName(r)} by age band (MAE / bias years): ${bands.map((b) => `${b.band} ${num(b.mae, 1)}/${b.bias >= 0 ? '+' : ''}${num(b.bias, 1)} (n ${b.n})`).join(', ')}`,
    );
  const recall = d['recall'] as Record<string, number> | undefined;
  if (recall)
    out.push(
      `  ${resultName(r)} recall %: ${Object.entries(recall)
        .map(([k, v]) => `${k} ${num(v, 1)}`)
        .join(', ')}`,
    );
  const confusion = d['confusion'] as { labels: string[]; rows: number[][] } | undefined;
  if (confusion) {
    out.push(`  ${resultName(r)} confusion (rows true, columns predicted: ${confusion.labels.join(' ')}):`);
    confusion.rows.forEach((row, i) => out.push(`    ${confusion.labels[i]!.padEnd(9)} ${row.map((v) => String(v).padStart(5)).join('')}`));
  }
  for (const [k, v] of Object.entries(d))
    if (!['bands', 'recall', 'confusion'].includes(k)) out.push(`  ${resultName(r)} ${k}: ${JSON.stringify(v)}`);
  return out;
}

/** The whole text report. */
export function formatReport(report: EvalReport): string {
  const ci = [...new Set(report.results.map((r) => r.ciMethod))].join(', ');
  const lines = [
    `kt models eval: task ${report.task} on ${report.dataset} (${report.date.slice(0, 10)}); 95 % CI: ${ci}; paired Δ = model - ${report.baseline} on the same faces`,
    '',
    resultsTable(report),
    '',
    ...report.results.flatMap(detailLines),
  ];
  const notes = [
    ...new Set(report.results.flatMap((r) => (r.notes ?? []).map((n) => (n.startsWith('the detector') ? n : `${r.model}: ${n}`)))),
  ];
  if (notes.length) lines.push('', 'Notes:', ...notes.map((n) => `  - ${n}`));
  return `${lines.join('\n')}\n`;
}
