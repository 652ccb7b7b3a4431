// Bench section "kt": inference cost per face of the KT-Adapter (canonical encoder + adapter + decoder) against the
// baseline (canonical encoder + head) and the ensemble (every prior encoder + head), plus the adapter alone.
import { readFile } from 'node:fs/promises';
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

/** The priors of the age experiment (`kt train --task age`): the ensemble runs all of them. */
const CANONICAL = 'faceres';
const PRIORS = ['agegender', 'expression', 'landmarks68', 'emotion', 'facemesh'];

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

/** A KT model for timing: the newest trained kt-adapter on the canonical encoder, else one built from fresh weights. */
async function ktModel(
  canonical: RepositoryEntry,
): Promise<{ bytes: Uint8Array; adapterBytes: Uint8Array; adapterMacs: number; adapterFlops: number; source: string }> {
  const trained = (await listRepository())
    .filter((e) => e.manifest.kind === 'kt-adapter' && e.manifest.training?.canonical === canonical.manifest.name)
    .sort((a, b) => b.manifest.version - a.manifest.version)[0];
  const { tf } = await loadTf();
  const C = canonical.manifest.encoder!.width;
  const priorWidths = await Promise.all(PRIORS.map(async (p) => (await resolveModel(p)).manifest.encoder!.width));
  const unit = (w: number) => ({ mean: new Float32Array(w), std: new Float32Array(w).fill(1) });
  // Cost depends only on the shapes: D is the widest prior, the decoder is the canonical head's size.
  const kt = createKtAdapter(tf, {
    canonicalWidth: C,
    priorWidths,
    stats: { canonical: unit(C), priors: priorWidths.map(unit) },
    decoder: { hidden: [256], outputs: 100 },
    outputActivation: 'softmax',
  });
  const adapter = exportKtAdapterOnnx(kt.params);
  let bytes: Uint8Array;
  let source: string;
  if (trained) {
    bytes = await readFile(trained.modelPath);
    source = `${trained.manifest.name} v${trained.manifest.version} (trained)`;
  } else {
    const built = await buildKtModel(kt.params, {
      canonical,
      output: { name: 'age', task: 'age', decoding: { type: 'age-years', scale: 1 } },
      expectedValueBins: 100,
    });
    bytes = encodeModel(built.model);
    source = 'built from untrained weights (no kt-adapter in the repository yet; cost depends only on shapes)';
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

function row(key: string, note: string, m: Measurement): BenchRow {
  return { ...m, key, note, rssAfterBytes: process.memoryUsage().rss };
}

async function perFace(label: string, ctx: BenchContext, count: number, run: (i: number) => Promise<void>): Promise<Measurement> {
  return measureLoop(label, ctx.measure, async (i) => {
    await run(i % count);
    return 1;
  });
}

export const ktAdapterSection: BenchSection = {
  name: 'kt',
  description: 'KT-Adapter vs baseline vs ensemble: inference cost per face (batch 1)',
  async run(ctx) {
    const canonical = await resolveModel(CANONICAL);
    const priors = await Promise.all(PRIORS.map((p) => resolveModel(p)));
    const crops = await faceCrops(ctx, [canonical, ...priors]);
    const kt = await ktModel(canonical);
    const canonicalModel = decodeModel(await readFile(canonical.modelPath));
    const encoderBytes = encodeModel(cutAtEncoder(canonicalModel, canonical.manifest).encoder);
    const open = async (m: string | Uint8Array): Promise<OrtSession> => (await createSession(m)).session;
    const encoder = await open(encoderBytes);
    const baseline = await open(canonical.modelPath);
    const ktSession = await open(kt.bytes);
    const adapter = await open(kt.adapterBytes);
    const priorSessions = await Promise.all(priors.map((p) => open(p.modelPath)));
    const input = canonical.manifest.input.name;
    const canonicalCrops = crops.byModel.get(CANONICAL)!;
    const C = canonical.manifest.encoder!.width;
    const pC = { data: new Float32Array(C).fill(0.5), dims: [1, C] };
    ctx.log.info({ section: 'kt', faceCrops: crops.count, ktModel: kt.source }, 'face crops from the demo photos');
    const rows: BenchRow[] = [];
    try {
      rows.push(
        row(
          'enc',
          `${CANONICAL} encoder alone (up to encoder/features)`,
          await perFace(
            '(e) canonical encoder',
            ctx,
            crops.count,
            async (i) => void (await runFloat(encoder, { [input]: canonicalCrops[i]! })),
          ),
        ),
      );
      rows.push(
        row(
          'base',
          `${CANONICAL} as shipped: encoder + GAP + dense head (= baseline cost)`,
          await perFace('(f) baseline', ctx, crops.count, async (i) => void (await runFloat(baseline, { [input]: canonicalCrops[i]! }))),
        ),
      );
      rows.push(
        row(
          'kt',
          `one graph: encoder + GAP + adapter (folded) + decoder; ${kt.source}`,
          await perFace('(g) KT-Adapter', ctx, crops.count, async (i) => void (await runFloat(ktSession, { [input]: canonicalCrops[i]! }))),
        ),
      );
      rows.push(
        row(
          'adapter',
          `adapter + decoder alone on p_c (${(kt.adapterMacs / 1e6).toFixed(2)} M MACs, ${(kt.adapterFlops / 1e6).toFixed(2)} M FLOPs after folding)`,
          await perFace('(h) adapter alone', ctx, crops.count, async () => void (await runFloat(adapter, { 'kt/p_c': pC }))),
        ),
      );
      rows.push(
        row(
          'ens',
          `${[CANONICAL, ...PRIORS].join(' + ')} (each with its own crop) + MLP`,
          await perFace('(i) ensemble', ctx, crops.count, async (i) => {
            await runFloat(baseline, { [input]: canonicalCrops[i]! });
            for (const [k, s] of priorSessions.entries())
              await runFloat(s, { [priors[k]!.manifest.input.name]: crops.byModel.get(PRIORS[k]!)![i]! });
          }),
        ),
      );
    } finally {
      for (const s of [encoder, baseline, ktSession, adapter, ...priorSessions]) await s.release();
    }
    return {
      title: `KT-Adapter inference cost per face (batch 1; ${CANONICAL} canonical, ${PRIORS.length} priors; frames = faces)`,
      rows,
      ratios: [
        { label: 'KT-Adapter vs baseline', numerator: 'kt', denominator: 'base' },
        { label: 'ensemble vs KT-Adapter', numerator: 'ens', denominator: 'kt' },
        { label: 'adapter alone vs encoder', numerator: 'adapter', denominator: 'enc' },
      ],
    };
  },
};
