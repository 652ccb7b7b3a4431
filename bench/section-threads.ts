// Bench section "threads": the serving models' runs for one frame (detector + one batched run per task model, inputs
// prepared once from the demo photos) under ORT thread settings: intra-op threads, inter-op threads, spinning.
import { resolve } from 'node:path';
import { decodeImage } from '../src/core/image.js';
import { resolveModel } from '../src/models/repository.js';
import { detectFaces, fitFrameNative, loadModel, prepareFaceBatch } from '../src/models/runner.js';
import { normalize, type FloatTensor } from '../src/models/processing/index.js';
import { runFloat, type SessionOptions } from '../src/onnx/runtime.js';
import { resolveServerConfig } from '../src/server/config.js';
import { measureLoop } from './measure.js';
import type { BenchRow, BenchSection } from './sections.js';

const variants: { key: string; note: string; options: SessionOptions }[] = [
  { key: 'ort', note: "ORT's defaults (intra-op = physical cores, spinning on)", options: { allowSpinning: true } },
  { key: 'i1', note: 'intraOpThreads 1', options: { intraOpThreads: 1, allowSpinning: true } },
  { key: 'i2', note: 'intraOpThreads 2', options: { intraOpThreads: 2, allowSpinning: true } },
  { key: 'i2ns', note: 'intraOpThreads 2, no spinning', options: { intraOpThreads: 2, allowSpinning: false } },
  { key: 'i0ns', note: 'ORT default threads, no spinning', options: { allowSpinning: false } },
  {
    key: 'i1e2',
    note: 'intraOpThreads 1, interOpThreads 2 (parallel executor)',
    options: { intraOpThreads: 1, interOpThreads: 2, allowSpinning: true },
  },
];

export const threadsSection: BenchSection = {
  name: 'threads',
  description: 'ORT thread settings (intra-op, inter-op, spinning) on the serving models, one frame of runs per step',
  async run(ctx) {
    const config = resolveServerConfig({ mqttEnabled: false, galleryPath: ':memory:', watchRepository: false, repositoryRescanMs: 0 });
    const repo = resolve(config.modelRepository);
    const names = [config.detectorModel, ...new Set(ctx.tasks.map((t) => config.taskModels[t]))];
    const entries = await Promise.all(names.map((n) => resolveModel(n, undefined, repo)));
    // Inputs once, with default sessions: the detector's per photo and each task model's batch of the photo's faces.
    const [detector, ...taskModels] = await Promise.all(entries.map((e) => loadModel(e)));
    const inputs: FloatTensor[][] = [];
    for (const photo of ctx.photos) {
      const frame = await decodeImage(photo.bytes);
      const fitted = await fitFrameNative(frame, detector!.manifest.input.size, 'letterbox');
      const faces = await detectFaces(detector!, frame);
      inputs.push([
        normalize(fitted.image, detector!.manifest.input),
        ...taskModels.map((m) => prepareFaceBatch(m.manifest, frame, faces).tensor),
      ]);
    }
    await Promise.all([detector, ...taskModels].map((m) => m!.session.release()));
    const rows: BenchRow[] = [];
    for (const variant of variants) {
      const models = await Promise.all(entries.map((e) => loadModel(e, variant.options)));
      try {
        const m = await measureLoop(`(${variant.key}) ${variant.note}`, ctx.measure, async (i) => {
          const frame = inputs[i % inputs.length]!;
          for (const [k, model] of models.entries()) await runFloat(model.session, { [model.manifest.input.name]: frame[k]! });
          return frame[1]!.dims[0]!;
        });
        rows.push({ ...m, key: variant.key, note: variant.note, rssAfterBytes: process.memoryUsage().rss });
      } finally {
        await Promise.all(models.map((m) => m.session.release()));
      }
    }
    return {
      title: `ORT thread settings: detector + ${taskModels.map((m) => m.manifest.name).join(', ')} per frame, ${ctx.photos.length} demo photos`,
      rows,
      ratios: variants.slice(1).map((v) => ({ label: `(${v.key})/(ort)`, numerator: v.key, denominator: 'ort' })),
    };
  },
};
