// Bench section "rss" (opt-in: `npm run bench -- --sections rss --iterations 10000`): the serving pipeline on the demo
// photos for many frames, process RSS sampled every 1,000 frames; issue 12 wants it flat (within 5 %) from frame
// 1,000 on.
import { createLogger } from '../src/core/log.js';
import { AnalysisOptions, Frame } from '../src/gen/kt/v1/face_analysis.js';
import { taskToProto } from '../src/sdk/results.js';
import { planAnalysis } from '../src/server/analysis-plan.js';
import { registryOptionsOf } from '../src/server/serving-context.js';
import { servedConfig } from './section-pipeline.js';
import { ModelRegistry } from '../src/server/model-registry.js';
import { FramePipeline } from '../src/server/pipeline.js';
import { progressPrinter, summarise } from './measure.js';
import type { BenchRow, BenchSection } from './sections.js';

const blockFrames = 1000;
const mb = (bytes: number): string => (bytes / 1048576).toFixed(1);

export const rssSection: BenchSection = {
  name: 'rss',
  description: 'serving pipeline for --iterations frames (default 10,000), RSS every 1,000 frames (opt-in, long)',
  async run(ctx) {
    const frames = ctx.measure.maxIterations > 0 ? ctx.measure.maxIterations : 10_000;
    // As `kt serve` runs here: the default device profile (x86-cpu: int8 models, no spinning).
    const config = await servedConfig(ctx.tasks);
    const registry = new ModelRegistry({ ...registryOptionsOf(config, createLogger('bench', 'warn')), watch: false, rescanMs: 0 });
    await registry.scan();
    const pipeline = new FramePipeline({ config, registry, gallery: undefined });
    const plan = planAnalysis(AnalysisOptions.fromPartial({ tasks: ctx.tasks.map(taskToProto) }), config, registry);
    const rows: BenchRow[] = [];
    const progress = progressPrinter('rss', { ...ctx.measure, durationMs: Number.POSITIVE_INFINITY, maxIterations: frames });
    const started = performance.now();
    try {
      let latencies: number[] = [];
      let faces = 0;
      let blockStart = performance.now();
      for (let i = 0; i < frames; i++) {
        const t0 = performance.now();
        const frame = Frame.fromPartial({
          image: { source: { $case: 'encoded', value: { data: ctx.photos[i % ctx.photos.length]!.bytes } } },
        });
        faces += (await pipeline.analyze(frame, plan)).faces.length;
        latencies.push(performance.now() - t0);
        progress.tick(i + 1, performance.now() - started);
        if ((i + 1) % blockFrames !== 0 && i + 1 !== frames) continue;
        const m = summarise(`frames ${i + 2 - latencies.length}-${i + 1}`, latencies, performance.now() - blockStart, faces);
        const sampled = process.memoryUsage().rss;
        // What the process keeps, not when the garbage of the last frames happens to be collected (decoded frames are
        // ~8 MB each): a full GC first when the bench runs with --expose-gc (npm run bench does).
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        const kept = process.memoryUsage().rss;
        rows.push({
          ...m,
          key: String(i + 1),
          note: gc
            ? `RSS ${mb(kept)} MB after a full GC (${mb(sampled)} MB before it)`
            : `RSS ${mb(sampled)} MB (run with --expose-gc for RSS after a full GC)`,
          rssAfterBytes: kept,
        });
        latencies = [];
        faces = 0;
        blockStart = performance.now();
      }
    } finally {
      await registry.close();
    }
    const rss = rows.map((r) => r.rssAfterBytes);
    const spread = rss.length > 0 ? ((Math.max(...rss) - Math.min(...rss)) / Math.min(...rss)) * 100 : 0;
    return {
      title: `RSS over ${frames} frames of the serving pipeline (tasks ${ctx.tasks.join(', ')}), sampled every ${blockFrames} frames: min ${(Math.min(...rss) / 1048576).toFixed(1)} MB, max ${(Math.max(...rss) / 1048576).toFixed(1)} MB, spread ${spread.toFixed(1)} % (target: within 5 %)`,
      rows,
      ratios: rows.length > 1 ? [{ label: 'last block vs first block', numerator: rows.at(-1)!.key, denominator: rows[0]!.key }] : [],
    };
  },
};
