// Exports a trained KT-Adapter as ONE deployable ONNX graph (canonical encoder -> GAP -> adapter -> decoder -> task output) into the model repository.
import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelFormatError } from '../core/errors.js';
import type { EncoderSpec, FaceTask, ModelManifest, OutputSpec } from '../models/manifest.js';
import { cutAtEncoder } from '../models/encoder-cut.js';
import type { RepositoryEntry } from '../models/repository.js';
import { versionDir } from '../models/repository.js';
import { attr, GraphBuilder } from '../onnx/graph-builder.js';
import { mergeModels } from '../onnx/merge.js';
import { encodeModel, readModel, type ModelProto } from '../onnx/proto.js';
import { addOutputs } from '../onnx/subgraph.js';
import { createSession, runFloat } from '../onnx/runtime.js';
import type { Mlp } from './dense.js';
import { exportBaselineOnnx, exportKtAdapterOnnx, type OnnxExportResult } from './export-onnx.js';
import type { KtAdapterParams } from './kt-adapter.js';

/** What follows the canonical encoder's GAP in an exported model: a KT-Adapter and its decoder, or a head alone. */
export type ExportedHead = KtAdapterParams | { baseline: Mlp };
const isBaseline = (h: ExportedHead): h is { baseline: Mlp } => 'baseline' in h;

export interface KtExportOptions {
  /** Repository name of the exported model, e.g. "kt-age". */
  name: string;
  tasks: FaceTask[];
  /** The canonical model as it is in the repository (its encoder is cut out and its input spec reused). */
  canonical: RepositoryEntry;
  /** Exactly one output: its name is the graph's output name (e.g. "age" in years, "emotion" probabilities). */
  output: OutputSpec;
  /** Age: the decoder's softmax over bins is turned into the expected age with these bin values. */
  expectedValueBins?: number;
  training: NonNullable<ModelManifest['training']>;
  description: string;
}

export interface BuiltKtModel {
  model: ModelProto;
  adapter: OnnxExportResult;
  /** The LayerNorm output [N, 2, D] (rows k', p'_c), for token plots; '' for a head alone. */
  tokenTensor: string;
}

/** Canonical encoder -> GlobalAveragePool + Flatten -> folded adapter + decoder -> task tail, merged into one graph. */
export async function buildKtModel(
  params: ExportedHead,
  options: Pick<KtExportOptions, 'canonical' | 'output' | 'expectedValueBins'>,
): Promise<BuiltKtModel> {
  const manifest = options.canonical.manifest;
  if (!manifest.encoder) throw new ModelFormatError(`canonical model ${manifest.name} declares no encoder tensor`);
  const encoder = cutAtEncoder(await readModel(options.canonical.modelPath), manifest).encoder;

  const pool = new GraphBuilder('gap');
  const features = pool.input('features', ['N', manifest.encoder.width, manifest.encoder.spatial[0], manifest.encoder.spatial[1]]);
  pool.node('Flatten', [pool.op('GlobalAveragePool', [features], {}, 'gap')], ['pooled'], { axis: attr.int(1) }, 'flatten');
  pool.output('pooled', ['N', manifest.encoder.width]);

  const exportOptions = { namePrefix: 'kt/', inputName: 'p_c', outputName: 'y', metadata: { canonical: manifest.name } };
  const adapter = isBaseline(params) ? exportBaselineOnnx(params.baseline, exportOptions) : exportKtAdapterOnnx(params, exportOptions);
  const decoder = isBaseline(params) ? params.baseline : params.decoder;
  const outputs = decoder.layers[decoder.layers.length - 1]!.kernel.shape[1]!;

  const tail = new GraphBuilder('task-output');
  const y = tail.input('y', ['N', outputs]);
  if (options.expectedValueBins !== undefined) {
    const bins = Float32Array.from({ length: options.expectedValueBins }, (_, i) => i);
    tail.node('MatMul', [y, tail.constF('bin_values', bins, [bins.length, 1])], [options.output.name], {}, 'expected_value');
    tail.output(options.output.name, ['N', 1]);
  } else {
    tail.node('Identity', [y], [options.output.name], {}, 'output');
    tail.output(options.output.name, ['N', outputs]);
  }

  const pooled = mergeModels(encoder, pool.build(), { connect: [[manifest.encoder.tensor, 'features']], prefix2: 'kt/gap/' });
  const withAdapter = mergeModels(pooled, adapter.model, { connect: [['kt/gap/pooled', adapter.inputName]], prefix2: '' });
  const model = mergeModels(withAdapter, tail.build(), { connect: [[adapter.outputName, 'y']], prefix2: '' });
  return { model, adapter, tokenTensor: isBaseline(params) ? '' : layerNormTensor(adapter.model) };
}

/** The adapter's LayerNorm output: Z, rows k' and p'_c. */
function layerNormTensor(adapter: ModelProto): string {
  const name = adapter.graph?.node?.find((n) => n.opType === 'LayerNormalization')?.output?.[0];
  if (!name) throw new ModelFormatError('adapter export has no LayerNormalization');
  return name;
}

/** The next free version number of `name` in the repository (1 when there is none). */
export async function nextVersion(repo: string, name: string): Promise<number> {
  try {
    const versions = (await readdir(join(repo, name), { withFileTypes: true }))
      .filter((d) => d.isDirectory() && /^\d+$/.test(d.name))
      .map((d) => Number(d.name));
    return versions.length === 0 ? 1 : Math.max(...versions) + 1;
  } catch {
    return 1;
  }
}

export interface WrittenKtModel {
  dir: string;
  modelPath: string;
  manifest: ModelManifest;
  built: BuiltKtModel;
}

/**
 * Writes `<repo>/<name>/<next version>/model.onnx + model.json`: built in a hidden temporary folder, loaded and run
 * once in ORT, then renamed into place, so a watcher never sees a half-written version.
 */
export async function exportKtModel(repo: string, params: ExportedHead, options: KtExportOptions): Promise<WrittenKtModel> {
  const built = await buildKtModel(params, options);
  const bytes = encodeModel(built.model);
  const c = options.canonical.manifest;
  // Smoke run before publishing: the graph loads and gives finite values on a grey image.
  const { session } = await createSession(bytes);
  try {
    const s = c.input.size;
    const ch = c.input.colorOrder === 'GRAY' ? 1 : 3;
    const dims = c.input.layout === 'NHWC' ? [1, s, s, ch] : [1, ch, s, s];
    const out = await runFloat(session, { [c.input.name]: { data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5), dims } }, [
      options.output.name,
    ]);
    if (!out[options.output.name]?.data.every(Number.isFinite))
      throw new ModelFormatError(`exported ${options.name}: output ${options.output.name} is not finite on a grey image`);
  } finally {
    await session.release();
  }
  await mkdir(repo, { recursive: true });
  // Whatever the canonical model's own head, the exported graph reads the map only through GAP.
  const encoder: EncoderSpec | undefined = c.encoder ? { ...c.encoder, head: 'gap-dense' } : undefined;
  for (let attempt = 0; ; attempt++) {
    const version = await nextVersion(repo, options.name);
    const manifest: ModelManifest = {
      name: options.name,
      version,
      kind: isBaseline(params) ? 'baseline' : 'kt-adapter',
      tasks: options.tasks,
      description: options.description,
      input: { ...c.input },
      outputs: [options.output],
      ...(encoder ? { encoder } : {}),
      sha256: createHash('sha256').update(bytes).digest('hex'),
      training: options.training,
      createdAt: new Date().toISOString(),
    };
    const tmp = join(repo, `.building-${options.name}-${process.pid}-${attempt}`);
    const dir = versionDir(repo, options.name, version);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, 'model.onnx'), bytes);
    await writeFile(join(tmp, 'model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await mkdir(join(repo, options.name), { recursive: true });
    try {
      await rename(tmp, dir);
      return { dir, modelPath: join(dir, 'model.onnx'), manifest, built };
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      // Another writer took this version number between the scan and the rename: try the next one.
      if (attempt >= 3) throw e;
    }
  }
}

/** Runs the adapter part of an exported graph on pooled tokens and returns the LayerNorm rows Z [N, 2, D]. */
export async function knowledgeTokenRows(
  params: KtAdapterParams,
  canonicalTokens: Float32Array,
  count: number,
): Promise<{ rows: Float32Array; width: number }> {
  const adapter = exportKtAdapterOnnx(params);
  const ln = layerNormTensor(adapter.model);
  const { session } = await createSession(encodeModel(addOutputs(adapter.model, [ln])));
  try {
    const out = await runFloat(session, { [adapter.inputName]: { data: canonicalTokens, dims: [count, params.config.canonicalWidth] } }, [
      ln,
    ]);
    return { rows: out[ln]!.data, width: params.config.tokenWidth };
  } finally {
    await session.release();
  }
}
