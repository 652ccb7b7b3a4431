// Bench section "kt": per task (age, emotion), inference cost per face of the KT-Adapter (canonical encoder + adapter +
// decoder) against the canonical model as the server ships it and the ensemble (every encoder), plus the adapter alone.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { OutputSpec } from '../src/models/manifest.js';
import { EMOTION_LABELS_FER } from '../src/models/zoo.js';
import { TASKS, type TrainTask } from '../src/train/pipeline-tasks.js';
import { listRepository, resolveModel, type RepositoryEntry } from '../src/models/repository.js';
import { cutAtEncoder } from '../src/models/encoder-cut.js';
import { detectFaces, loadModel, prepareFaceBatch } from '../src/models/runner.js';
import { decodeImage } from '../src/core/image.js';
import { decodeModel, encodeModel } from '../src/onnx/proto.js';
import { createSession, runFloat, type OrtSession } from '../src/onnx/runtime.js';
import { createKtAdapter } from '../src/train/kt-adapter.js';
import { exportKtAdapterOnnx } from '../src/train/export-onnx.js';
import { buildKtModel } from '../src/train/export-model.js';
import { loadTf } from '../src/train/tfjs-backend.js';
import { measureLoop, type Measurement } from './measure.js';
import type { BenchContext, BenchRow, BenchSection } from './sections.js';

/** One bench task: the canonical model the server answers it with (servingDefaultModels) and the task's default priors. */
interface BenchTask {
  task: TrainTask;
  canonical: string;
  priors: readonly string[];
}

const BENCH_TASKS: BenchTask[] = (['age', 'emotion'] as const).map((task) => ({
  task,
  canonical: TASKS[task].defaultCanonical,
  priors: TASKS[task].defaultPriors,
}));

/** Repositories searched for a trained kt-<task> (the project's, then `kt train --export-repo out/kt-repo`'s). */
const KT_REPOSITORIES = [undefined, 'out/kt-repo'];

interface Crops {
  /** Per model name: one [1, ...] input per face, in that model's preprocessing. */
  byModel: Map<string, { data: Float32Array; dims: number[] }[]>;
  count: number;
}

async function faceCrops(ctx: BenchContext, models: RepositoryEntry[]): Promise<Crops> {
  const detector = await loadModel(await resolveModel('blazeface'));
  const byModel = new Map<string, { data: Float32Array; dims: number[] }[]>(models.map((m) => [m.manifest.name, []]));
  let count = 0;
  for (const photo of ctx.photos) {
    const frame = await decodeImage(photo.bytes);
    const faces = await detectFaces(detector, frame);
    for (const face of faces) {
      count++;
      for (const m of models) byModel.get(m.manifest.name)!.push(prepareFaceBatch(m.manifest, frame, [face]).tensor);
    }
  }
  await detector.session.release();
  return { byModel, count };
}

/** A KT model for timing: the newest trained kt-<task> on the canonical encoder, else one built from fresh weights. */
async function ktModel(
  t: BenchTask,
  canonical: RepositoryEntry,
): Promise<{ bytes: Uint8Array; adapterBytes: Uint8Array; adapterMacs: number; adapterFlops: number; source: string }> {
  const found = await Promise.all(KT_REPOSITORIES.map((r) => (existsSync(r ?? '.') ? listRepository(r) : Promise.resolve([]))));
  const trained = found
    .flat()
    .filter((e) => e.manifest.name === `kt-${t.task}` && e.manifest.training?.canonical === canonical.manifest.name)
    .sort((a, b) => b.manifest.version - a.manifest.version)[0];
  const { tf } = await loadTf();
  const C = canonical.manifest.encoder!.width;
  const unit = (w: number) => ({ mean: new Float32Array(w), std: new Float32Array(w).fill(1) });
  // The inference graph depends only on C_c (= D: priors are projected in training only) and the decoder's shape,
  // here the canonical model's own head (agegender: 512 -> 1 years; expression: 256 -> 7 classes).
  const outputs = t.task === 'age' ? 1 : 7;
  const kt = createKtAdapter(tf, {
    canonicalWidth: C,
    priorWidths: [],
    stats: { canonical: unit(C), priors: [] },
    decoder: { outputs },
    outputActivation: t.task === 'age' ? 'none' : 'softmax',
  });
  const adapter = exportKtAdapterOnnx(kt.params);
  let bytes: Uint8Array;
  let source: string;
  if (trained) {
    bytes = await readFile(trained.modelPath);
    source = `${trained.manifest.name} v${trained.manifest.version} (trained)`;
  } else {
    const output: OutputSpec =
      t.task === 'age'
        ? { name: 'age', task: 'age', decoding: { type: 'age-years', scale: 1 } }
        : { name: 'emotion', task: 'emotion', decoding: { type: 'classification', labels: [...EMOTION_LABELS_FER], activation: 'none' } };
    bytes = encodeModel((await buildKtModel(kt.params, { canonical, output })).model);
    source = `built from untrained weights (no kt-${t.task} found; cost depends only on shapes)`;
  }
  kt.dispose();
  return {
    bytes,
    adapterBytes: encodeModel(adapter.model),
    adapterMacs: adapter.cost.adapter.macs,
    adapterFlops: adapter.cost.adapter.flops,
    source,
  };
}

/** [1, ...] tensors stacked into one [n, ...] batch. */
function stack(items: { data: Float32Array; dims: number[] }[]): { data: Float32Array; dims: number[] } {
  const per = items[0]!.data.length;
  const data = new Float32Array(per * items.length);
  items.forEach((t, k) => data.set(t.data, k * per));
  return { data, dims: [items.length, ...items[0]!.dims.slice(1)] };
}

function row(key: string, note: string, m: Measurement): BenchRow {
  return { ...m, key, note, rssAfterBytes: process.memoryUsage().rss };
}

async function perFace(label: string, ctx: BenchContext, count: number, run: (i: number) => Promise<void>): Promise<Measurement> {
  return measureLoop(label, ctx.measure, async (i) => {
    await run(i % count);
    return 1;
  });
}

/** Rows of one task: canonical encoder, the model as shipped, the KT graph, the adapter alone, the ensemble. */
async function taskRows(ctx: BenchContext, t: BenchTask): Promise<{ rows: BenchRow[]; faces: number; source: string }> {
  const canonical = await resolveModel(t.canonical);
  const priors = await Promise.all(t.priors.map((p) => resolveModel(p)));
  const crops = await faceCrops(ctx, [canonical, ...priors]);
  const kt = await ktModel(t, canonical);
  const encoderBytes = encodeModel(cutAtEncoder(decodeModel(await readFile(canonical.modelPath)), canonical.manifest).encoder);
  const open = async (m: string | Uint8Array): Promise<OrtSession> => (await createSession(m)).session;
  const [encoder, shipped, ktSession, adapter] = [
    await open(encoderBytes),
    await open(canonical.modelPath),
    await open(kt.bytes),
    await open(kt.adapterBytes),
  ];
  const priorSessions = await Promise.all(priors.map((p) => open(p.modelPath)));
  const input = canonical.manifest.input.name;
  const faces = crops.byModel.get(t.canonical)!;
  const C = canonical.manifest.encoder!.width;
  const pC = { data: new Float32Array(C).fill(0.5), dims: [1, C] };
  const timed = async (key: string, note: string, label: string, run: (i: number) => Promise<unknown>): Promise<BenchRow> =>
    row(`${key}-${t.task}`, note, await perFace(`${t.task}: ${label}`, ctx, crops.count, async (i) => void (await run(i))));
  // The server runs a frame's faces as one batch per model: 4 faces (the demo photos average 3.7).
  const batches = Array.from({ length: crops.count }, (_, i) => stack([0, 1, 2, 3].map((k) => faces[(i + k) % faces.length]!)));
  try {
    return {
      faces: crops.count,
      source: kt.source,
      rows: [
        await timed('enc', `${t.canonical} encoder alone (up to encoder/features)`, 'canonical encoder', (i) =>
          runFloat(encoder, { [input]: faces[i]! }),
        ),
        await timed('base', `${t.canonical} as shipped (the server's ${t.task} model)`, 'canonical as shipped', (i) =>
          runFloat(shipped, { [input]: faces[i]! }),
        ),
        await timed('kt', `kt-${t.task}: encoder + GAP + adapter (folded) + decoder; ${kt.source}`, 'KT-Adapter', (i) =>
          runFloat(ktSession, { [input]: faces[i]! }),
        ),
        await timed('base4', `${t.canonical} as shipped, batch of 4 faces (a frame's faces in one run)`, 'shipped, batch 4', (i) =>
          runFloat(shipped, { [input]: batches[i]! }),
        ),
        await timed('kt4', `kt-${t.task}, batch of 4 faces`, 'KT-Adapter, batch 4', (i) => runFloat(ktSession, { [input]: batches[i]! })),
        await timed(
          'adapter',
          `adapter + decoder alone on p_c (${(kt.adapterMacs / 1e6).toFixed(2)} M MACs, ${(kt.adapterFlops / 1e6).toFixed(2)} M FLOPs after folding)`,
          'adapter alone',
          () => runFloat(adapter, { 'kt/p_c': pC }),
        ),
        await timed('ens', `${[t.canonical, ...t.priors].join(' + ')} (each with its own crop)`, 'ensemble', async (i) => {
          await runFloat(shipped, { [input]: faces[i]! });
          for (const [k, s] of priorSessions.entries())
            await runFloat(s, { [priors[k]!.manifest.input.name]: crops.byModel.get(t.priors[k]!)![i]! });
        }),
      ],
    };
  } finally {
    for (const s of [encoder, shipped, ktSession, adapter, ...priorSessions]) await s.release();
  }
}

export const ktAdapterSection: BenchSection = {
  name: 'kt',
  description: 'KT-Adapter vs the canonical model as shipped vs the ensemble: inference cost per face (batch 1), age and emotion',
  async run(ctx) {
    const rows: BenchRow[] = [];
    for (const t of BENCH_TASKS) {
      const r = await taskRows(ctx, t);
      ctx.log.info({ section: 'kt', task: t.task, faceCrops: r.faces, ktModel: r.source }, 'face crops from the demo photos');
      rows.push(...r.rows);
    }
    return {
      title: `KT-Adapter inference cost per face (batch 1; canonical = the served model: ${BENCH_TASKS.map((t) => `${t.task} ${t.canonical}`).join(', ')}; frames = faces)`,
      rows,
      ratios: BENCH_TASKS.flatMap(({ task }) => [
        { label: `${task}: KT-Adapter vs canonical as shipped (target <= 1.10)`, numerator: `kt-${task}`, denominator: `base-${task}` },
        { label: `${task}: the same at batch 4 (target <= 1.10)`, numerator: `kt4-${task}`, denominator: `base4-${task}` },
        { label: `${task}: ensemble vs KT-Adapter`, numerator: `ens-${task}`, denominator: `kt-${task}` },
        { label: `${task}: adapter alone vs encoder`, numerator: `adapter-${task}`, denominator: `enc-${task}` },
      ]),
    };
  },
};
