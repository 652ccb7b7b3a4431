// `npm run bench`: runs the registered bench sections once and prints frames/s, p50/p99 latency and ratios side by
// side, process RSS before/after, and a PNG bar chart in out/bench/.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/core/log.js';
import { packageInfo } from '../src/models/build.js';
import { writeBarChart } from './chart.js';
import { pipelineSection } from './section-pipeline.js';
import { benchSections, registerBenchSection } from './sections.js';
import { ktAdapterSection } from './section-kt-adapter.js';
import { preprocessSection } from './section-preprocess.js';
import { rssSection } from './section-rss.js';
import { threadsSection } from './section-threads.js';
import type { BenchContext, BenchSectionResult } from './sections.js';

// Sections are registered here, explicitly.
registerBenchSection(pipelineSection);
registerBenchSection(ktAdapterSection);
registerBenchSection(preprocessSection);
registerBenchSection(rssSection);
registerBenchSection(threadsSection);
/** Sections that run only when named in --sections (long). */
const optIn = new Set(['rss']);

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    iterations: { type: 'string', default: '0' },
    warmup: { type: 'string', default: '6' },
    repeat: { type: 'string', default: '1' },
    sections: {
      type: 'string',
      default: benchSections()
        .filter((s) => !optIn.has(s.name))
        .map((s) => s.name)
        .join(','),
    },
    out: { type: 'string', default: 'out/bench' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    `npm run bench -- [--seconds S per mode (10)] [--iterations N max per mode (0: no cap)] [--warmup N (6)] [--repeat R runs of every section, modes interleaved, spread printed (1)] [--sections ${benchSections()
      .map((s) => s.name)
      .join(',')}] [--out DIR]\n` +
      benchSections()
        .map((s) => `  ${s.name}: ${s.description}\n`)
        .join(''),
  );
  process.exit(0);
}

const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(0)} MB`;
const rssBefore = process.memoryUsage().rss;
const photoDir = join(packageInfo('@vladmandic/face-api').dir, 'demo');
const ctx: BenchContext = {
  photos: await Promise.all(
    [1, 2, 3, 4, 5, 6].map(async (n) => ({ name: `sample${n}.jpg`, bytes: await readFile(join(photoDir, `sample${n}.jpg`)) })),
  ),
  measure: { durationMs: Number(values.seconds) * 1000, maxIterations: Number(values.iterations), warmupIterations: Number(values.warmup) },
  tasks: ['age', 'gender', 'emotion', 'landmarks'],
  log: createLogger('bench'),
};
const wanted = values.sections
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const selected = benchSections().filter((s) => wanted.includes(s.name));
const unknown = wanted.filter((w) => !benchSections().some((s) => s.name === w));
if (unknown.length > 0 || selected.length === 0) {
  process.stderr.write(
    `bench: unknown section(s) ${unknown.join(', ') || '(none selected)'}; known: ${benchSections()
      .map((s) => s.name)
      .join(', ')}\n`,
  );
  process.exit(2);
}
process.stderr.write(
  `bench: ${selected.length} section(s), up to ${values.seconds} s${Number(values.iterations) > 0 ? ` or ${values.iterations} frames` : ''} per mode after ${values.warmup} warm-up frames; RSS ${mb(rssBefore)}\n`,
);

const repeat = Math.max(1, Number(values.repeat) || 1);
const results: BenchSectionResult[] = [];
const started = Date.now();
for (let r = 0; r < repeat; r++) {
  for (const [i, section] of selected.entries()) {
    process.stderr.write(`[run ${r + 1}/${repeat}, ${i + 1}/${selected.length}] ${section.name}: ${section.description}\n`);
    const result = await section.run(ctx);
    results.push(repeat > 1 ? { ...result, title: `${result.title} (run ${r + 1}/${repeat})` } : result);
  }
}
const rssAfter = process.memoryUsage().rss;

// ---------------------------------------------------------------- table
const lines: string[] = [];
for (const r of results) {
  lines.push('', r.title, '');
  const head = ['mode', 'frames', 'faces', 'frames/s', 'p50 ms', 'p99 ms', 'mean ms', 'RSS after'];
  const body = r.rows.map((x) => [
    x.label,
    String(x.frames),
    String(x.faces),
    x.framesPerSecond.toFixed(2),
    x.p50Ms.toFixed(1),
    x.p99Ms.toFixed(1),
    x.meanMs.toFixed(1),
    mb(x.rssAfterBytes),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c]!.length)));
  const fmt = (cells: string[]): string =>
    cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  lines.push(fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt), '');
  for (const ratio of r.ratios) {
    const n = r.rows.find((x) => x.key === ratio.numerator);
    const d = r.rows.find((x) => x.key === ratio.denominator);
    if (!n || !d) continue;
    lines.push(
      `${ratio.label.padEnd(32)} throughput x${(n.framesPerSecond / d.framesPerSecond).toFixed(3)}   p50 latency x${(n.p50Ms / d.p50Ms).toFixed(3)}   p99 latency x${(n.p99Ms / d.p99Ms).toFixed(3)}`,
    );
  }
  lines.push('', ...r.rows.map((x) => `  ${x.label}: ${x.note}`));
}
if (repeat > 1) lines.push(...spreadLines(results, repeat));
lines.push(
  '',
  `process RSS: before ${mb(rssBefore)}, after ${mb(rssAfter)} (${rssAfter >= rssBefore ? '+' : ''}${mb(rssAfter - rssBefore)}); ${((Date.now() - started) / 1000).toFixed(0)} s in all`,
);
process.stdout.write(`${lines.join('\n')}\n`);

/** Per section and mode: frames/s median and range over the runs, and the ratios of the medians. */
function spreadLines(all: BenchSectionResult[], runs: number): string[] {
  const out: string[] = [];
  const perSection = all.length / runs;
  for (let s = 0; s < perSection; s++) {
    const same = all.filter((_, i) => i % perSection === s);
    const first = same[0]!;
    const medianOf = (key: string): number => median(same.map((r) => r.rows.find((x) => x.key === key)?.framesPerSecond ?? Number.NaN));
    out.push('', `Spread over ${runs} runs: ${first.title.replace(/ \(run 1\/\d+\)$/, '')}`, '');
    for (const row of first.rows) {
      const fps = same.map((r) => r.rows.find((x) => x.key === row.key)?.framesPerSecond ?? Number.NaN);
      const p50 = median(same.map((r) => r.rows.find((x) => x.key === row.key)?.p50Ms ?? Number.NaN));
      out.push(
        `  ${row.label.padEnd(48)} frames/s median ${medianOf(row.key).toFixed(2)}  range ${Math.min(...fps).toFixed(2)}-${Math.max(...fps).toFixed(2)}  p50 ${p50.toFixed(1)} ms  runs ${fps.map((f) => f.toFixed(2)).join(' ')}`,
      );
    }
    for (const ratio of first.ratios) {
      const each = same.map((r) => {
        const n = r.rows.find((x) => x.key === ratio.numerator)?.framesPerSecond ?? Number.NaN;
        const d = r.rows.find((x) => x.key === ratio.denominator)?.framesPerSecond ?? Number.NaN;
        return n / d;
      });
      out.push(
        `  ${ratio.label.padEnd(32)} throughput x${median(each).toFixed(3)} (median of per-run ratios; range ${Math.min(...each).toFixed(3)}-${Math.max(...each).toFixed(3)})`,
      );
    }
  }
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// ---------------------------------------------------------------- chart
const chartPath = join(values.out, 'bench.png');
await writeBarChart(
  chartPath,
  `kt bench (${new Date().toISOString().slice(0, 10)})`,
  results.flatMap((r) => [
    {
      title: `${r.rows.length} modes: throughput`,
      unit: 'frames/s',
      series: ['frames/s'],
      rows: r.rows.map((x) => ({ label: x.label, values: [x.framesPerSecond] })),
    },
    { title: 'latency', unit: 'ms', series: ['p50', 'p99'], rows: r.rows.map((x) => ({ label: x.label, values: [x.p50Ms, x.p99Ms] })) },
  ]),
);
process.stdout.write(`chart: ${chartPath}\n`);
