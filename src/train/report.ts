// The results of one `kt train` run (results.json) and their Markdown table and PNG curves, in the paper's table format.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderLineChart, writePng } from './plots.js';
import type { MetricColumn } from './pipeline-tasks.js';
import type { EpochRecord } from './trainer.js';

export interface VariantResult {
  id: string;
  label: string;
  kind: 'pretrained' | 'baseline' | 'ensemble' | 'kt';
  priors: string[];
  ablation: boolean;
  /** Test metrics (the only use of the test split). */
  metrics: Record<string, number>;
  /** Validation metrics of the kept (best) epoch. */
  validation?: Record<string, number>;
  trainableParams: number;
  /** Per image after the encoder(s). */
  inferenceMacs: number;
  inferenceNote: string;
  adapterMacs?: number;
  adapterFlops?: number;
  epochs?: number;
  bestEpoch?: number;
  stoppedEarly?: boolean;
  trainMs?: number;
  gate?: number;
  history?: EpochRecord[];
}

export interface ExperimentResults {
  task: string;
  data: string;
  canonical: string;
  priors: string[];
  seed: number;
  backend: string;
  settings: Record<string, unknown>;
  split: { train: number; val: number; test: number; by: string; stratifiedBy: string; fractions: number[] };
  columns: MetricColumn[];
  /** Validation metric used for early stopping. */
  earlyStopping: string;
  decoderFit?: Record<string, unknown>;
  variants: VariantResult[];
  export?: {
    name: string;
    version: number;
    dir: string;
    parity?: { samples: number; maxAbsDiff: number; outputMaxAbsDiff: number; output: string };
  };
  /** Every exported variant (the KT one is also `export`). */
  exports?: {
    variant: string;
    name: string;
    version: number;
    dir: string;
    parity?: { samples: number; maxAbsDiff: number; outputMaxAbsDiff: number; output: string };
  }[];
  tsne?: { file: string; samples: number; kl: number };
  timings: { tokensMs: number; totalMs: number; startedAt: string; finishedAt?: string };
  command?: string;
}

const fmt = (v: number, digits: number): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const signed = (v: number, digits: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;

function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

function duration(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
}

/** The paper's layout: value (delta vs baseline) per metric; KT rows also show their delta vs the capacity control. */
export function renderMarkdownTable(r: ExperimentResults): string {
  const baseline = r.variants.find((v) => v.id === 'baseline');
  const control = r.variants.find((v) => v.id === 'kt-zero');
  const cell = (v: VariantResult, c: MetricColumn): string => {
    const value = v.metrics[c.key];
    if (value === undefined) return '-';
    const ref = baseline?.metrics[c.key];
    return v.id === 'baseline' || v.kind === 'pretrained' || ref === undefined
      ? fmt(value, c.digits)
      : `${fmt(value, c.digits)} (${signed(value - ref, c.digits)})`;
  };
  const vsControl = (v: VariantResult): string => {
    if (v.kind !== 'kt' || v.id === 'kt-zero' || !control) return '';
    return r.columns.map((c) => `${c.label.split(' ')[0]} ${signed(v.metrics[c.key]! - control.metrics[c.key]!, c.digits)}`).join(', ');
  };
  const order = (v: VariantResult): number =>
    v.kind === 'pretrained' ? 0 : v.id === 'baseline' ? 1 : v.kind === 'kt' ? (v.id === 'kt' ? 2 : v.id === 'kt-zero' ? 3 : 4) : 5;
  const rows = [...r.variants].sort((a, b) => order(a) - order(b));
  const header = [
    'Structure',
    ...r.columns.map((c) => c.label),
    'vs capacity control',
    'Trainable params',
    'Inference MACs (after encoder)',
    'Train time',
  ];
  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map(
      (v) =>
        `| ${v.label} | ${r.columns.map((c) => cell(v, c)).join(' | ')} | ${vsControl(v)} | ${v.trainableParams ? humanCount(v.trainableParams) : '0'} | ${humanCount(v.inferenceMacs)}${v.kind === 'ensemble' ? ` + ${r.priors.length} extra encoders` : ''} | ${duration(v.trainMs)} |`,
    ),
  ];
  return lines.join('\n');
}

export function renderMarkdownReport(r: ExperimentResults): string {
  const s = r.settings;
  const kt = r.variants.find((v) => v.id === 'kt');
  const parts = [
    `# kt train: ${r.task} on ${r.data}`,
    '',
    `Canonical **${r.canonical}**, priors ${r.priors.join(', ')}; seed ${r.seed}; TF.js backend **${r.backend}**.`,
    `Split (seeded, by ${r.split.by}, stratified by ${r.split.stratifiedBy}, ${r.split.fractions.join('/')}): train ${r.split.train}, val ${r.split.val}, test ${r.split.test}. Early stopping on validation ${r.earlyStopping}; the test split is used only for this table.`,
    '',
    renderMarkdownTable(r),
    '',
    `Deltas in parentheses are against the baseline row; "vs capacity control" is the KT row minus the same adapter trained with zero priors (only that gap is what the priors taught). Inference MACs count the head after the encoder(s) per image${kt?.adapterFlops ? `; the folded KT adapter alone: ${humanCount(kt.adapterMacs ?? 0)} MACs, ${humanCount(kt.adapterFlops)} FLOPs` : ''}.`,
    '',
    '## Settings',
    '',
    ...Object.entries(s).map(([k, v]) => `- ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`),
    '',
    '## Per variant',
    '',
    '| variant | priors | epochs run | best epoch | stopped early | gate g | train time |',
    '|---|---|---|---|---|---|---|',
    ...r.variants
      .filter((v) => v.kind !== 'pretrained')
      .map(
        (v) =>
          `| ${v.id} | ${v.priors.join(', ') || '-'} | ${v.epochs ?? '-'} | ${v.bestEpoch ?? '-'} | ${v.stoppedEarly ?? '-'} | ${v.gate !== undefined ? v.gate.toFixed(4) : '-'} | ${duration(v.trainMs)} |`,
      ),
  ];
  if (r.decoderFit) parts.push('', '## Decoder fit to the shipped head', '', '```json', JSON.stringify(r.decoderFit, null, 2), '```');
  if (r.export)
    parts.push(
      '',
      '## Export',
      '',
      `\`${r.export.dir}\` (${r.export.name} version ${r.export.version})${r.export.parity ? `; parity ONNX Runtime vs TF.js on ${r.export.parity.samples} test images: max |diff| of the decoder output ${r.export.parity.maxAbsDiff.toExponential(2)}, of \`${r.export.parity.output}\` ${r.export.parity.outputMaxAbsDiff.toExponential(2)}` : ''}.`,
    );
  if (r.tsne)
    parts.push('', `t-SNE of k' and p'_c (rows of Z) for ${r.tsne.samples} test samples: \`${r.tsne.file}\` (KL ${r.tsne.kl.toFixed(3)}).`);
  parts.push('', `Prior tokens: ${duration(r.timings.tokensMs)}; whole run ${duration(r.timings.totalMs)}.`);
  if (r.command) parts.push('', '```', r.command, '```');
  return `${parts.join('\n')}\n`;
}

/** Loss and metric curves: one PNG per variant (train and validation loss), one with every variant's validation metric. */
export async function renderCurves(r: ExperimentResults, outDir: string): Promise<string[]> {
  const files: string[] = [];
  const trained = r.variants.filter((v) => v.history && v.history.length > 0);
  for (const v of trained) {
    const h = v.history!;
    const file = join(outDir, 'curves', `${v.id}.png`);
    await writePng(
      file,
      renderLineChart({
        title: `${r.task}: ${v.label}`,
        xLabel: 'epoch',
        yLabel: 'loss',
        series: [
          { name: 'train loss', y: h.map((e) => e.trainLoss) },
          { name: 'val loss', y: h.map((e) => e.validationLoss) },
        ],
      }),
    );
    files.push(file);
  }
  if (trained.length > 0) {
    const file = join(outDir, 'curves', 'validation-metric.png');
    await writePng(
      file,
      renderLineChart({
        title: `${r.task}: validation ${r.earlyStopping} per epoch`,
        xLabel: 'epoch',
        yLabel: r.earlyStopping,
        series: trained.map((v) => ({ name: v.id, y: v.history!.map((e) => e.validationMetric) })),
      }),
    );
    files.push(file);
    const lossFile = join(outDir, 'curves', 'validation-loss.png');
    await writePng(
      lossFile,
      renderLineChart({
        title: `${r.task}: validation loss per epoch`,
        xLabel: 'epoch',
        yLabel: 'loss',
        series: trained.map((v) => ({ name: v.id, y: v.history!.map((e) => e.validationLoss) })),
      }),
    );
    files.push(lossFile);
  }
  return files;
}

/** Writes results.json, report.md (and table.md) and the curves into `outDir`. */
export async function writeReport(r: ExperimentResults, outDir: string): Promise<void> {
  await writeFile(join(outDir, 'results.json'), `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(join(outDir, 'table.md'), `${renderMarkdownTable(r)}\n`);
  await writeFile(join(outDir, 'report.md'), renderMarkdownReport(r));
  await renderCurves(r, outDir);
}

export async function readResults(outDir: string): Promise<ExperimentResults> {
  return JSON.parse(await readFile(join(outDir, 'results.json'), 'utf8')) as ExperimentResults;
}
