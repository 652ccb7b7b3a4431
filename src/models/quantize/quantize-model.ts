// `kt models quantize`: an int8 version of a repository model from its stored (or freshly measured) activation ranges,
// written beside the fp32 version with its precision, speed and accuracy change in the manifest.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FailedPreconditionError, NotFoundError } from '../../core/errors.js';
import { decodeModel, encodeModel } from '../../onnx/proto.js';
import { createSession, runFloat } from '../../onnx/runtime.js';
import type { ModelManifest, ModelPrecision, PrecisionSpec } from '../manifest.js';
import { listRepository, publishVersionDir, versionDir, type RepositoryEntry } from '../repository.js';
import { loadModel } from '../runner.js';
import { servingDefaultModels } from '../zoo.js';
import { accuracyChange } from './accuracy.js';
import { calibrationSet } from './calibrate.js';
import { calibrationPath, readCalibration, writeCalibration, type StoredCalibration } from './calibration-store.js';
import { foldConvConstants } from './fold.js';
import { toFp16 } from './fp16.js';
import { applyQdq, defaultQuantizedOps, planQdq, type QuantizableOp } from './qdq-graph.js';
import { collectRanges, type CalibrationInput, type RangeMethod } from './ranges.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export const precisionOf = (m: ModelManifest): ModelPrecision => m.precision?.type ?? 'fp32';

/** The newest version of `name` at full precision: the one reduced versions are made from. */
export async function fp32Source(repo: string, name: string): Promise<RepositoryEntry> {
  const all = (await listRepository(repo)).filter((e) => e.manifest.name === name);
  if (all.length === 0) {
    const known = [...new Set((await listRepository(repo)).map((e) => e.manifest.name))];
    throw new NotFoundError(`model ${name} not found in ${repo} (models: ${known.join(', ') || 'none'})`);
  }
  const fp32 = all.filter((e) => precisionOf(e.manifest) === 'fp32').sort((a, b) => b.manifest.version - a.manifest.version)[0];
  if (!fp32) throw new NotFoundError(`model ${name} has no fp32 version in ${repo} to quantize`);
  return fp32;
}

/** The int8 graph of the fp32 model bytes from a stored calibration (a pure graph rewrite: deterministic). */
export function int8Graph(sourceBytes: Uint8Array, calibration: StoredCalibration): Uint8Array {
  if (sha256(sourceBytes) !== calibration.sourceSha256)
    throw new FailedPreconditionError(
      `calibration of ${calibration.model} was measured on another fp32 graph (sha256 ${calibration.sourceSha256.slice(0, 12)}...): run \`kt models quantize ${calibration.model} --data DIR\` again`,
    );
  const folded = foldConvConstants(decodeModel(sourceBytes, calibration.model));
  const options = { ops: calibration.ops, ...(calibration.keepFloat ? { keepFloat: calibration.keepFloat } : {}) };
  return encodeModel(applyQdq(folded, planQdq(folded, options), calibration.ranges, options));
}

/** Measures ranges on face crops of the shared data and returns the calibration (not yet stored). */
export async function measureCalibration(
  source: RepositoryEntry,
  detectorEntry: RepositoryEntry,
  options: {
    data: string;
    facesPerDataset?: number;
    rangeMethod?: RangeMethod;
    ops?: QuantizableOp[];
    keepFloat?: string[];
    progress?: (l: string) => void;
  },
): Promise<{ calibration: StoredCalibration; inputs: CalibrationInput[] }> {
  const [model, detector] = await Promise.all([loadModel(source), loadModel(detectorEntry)]);
  try {
    const set = await calibrationSet(model, detector, {
      data: options.data,
      ...(options.facesPerDataset ? { facesPerDataset: options.facesPerDataset } : {}),
      ...(options.progress ? { progress: options.progress } : {}),
    });
    const ops = options.ops ?? [...defaultQuantizedOps];
    const folded = foldConvConstants(decodeModel(await readFile(source.modelPath), source.modelPath));
    const plan = planQdq(folded, { ops, ...(options.keepFloat ? { keepFloat: options.keepFloat } : {}) });
    const method = options.rangeMethod ?? 'percentile';
    const ranges = await collectRanges(folded, source.manifest.input.name, plan.tensors, set.inputs, { method });
    const calibration: StoredCalibration = {
      model: source.manifest.name,
      sourceSha256: source.manifest.sha256,
      rangeMethod: method === 'percentile' ? 'percentile 99.99 %' : 'minmax',
      ops,
      ...(options.keepFloat?.length ? { keepFloat: options.keepFloat } : {}),
      datasets: set.datasets,
      faces: set.faces,
      ranges,
      date: new Date().toISOString().slice(0, 10),
    };
    return { calibration, inputs: set.inputs };
  } finally {
    await Promise.all([model.session.release(), detector.session.release()]);
  }
}

/** Model-only milliseconds per face, best of `runs`, at batch 1 and 4, for both graphs on the same real inputs. */
export async function measureSpeed(
  sourceBytes: Uint8Array,
  derivedBytes: Uint8Array,
  manifest: ModelManifest,
  sample: CalibrationInput,
  runs = 20,
): Promise<NonNullable<PrecisionSpec['speed']>> {
  const [a, b] = await Promise.all([createSession(sourceBytes), createSession(derivedBytes)]);
  const out: NonNullable<PrecisionSpec['speed']> = [];
  const perItem = sample.data.length / sample.dims[0]!;
  try {
    for (const batch of [1, 4]) {
      const data = new Float32Array(perItem * batch);
      for (let i = 0; i < batch; i++) data.set(sample.data.subarray(0, perItem), i * perItem);
      const feeds = { [manifest.input.name]: { data, dims: [batch, ...sample.dims.slice(1)] } };
      const best = async (s: typeof a.session): Promise<number> => {
        let min = Infinity;
        for (let r = 0; r < runs; r++) {
          const t0 = performance.now();
          await runFloat(s, feeds);
          min = Math.min(min, performance.now() - t0);
        }
        return min / batch;
      };
      const sourceMs = await best(a.session);
      const derivedMs = await best(b.session);
      out.push({ batch, msPerFace: Math.round(derivedMs * 1000) / 1000, sourceMsPerFace: Math.round(sourceMs * 1000) / 1000 });
    }
  } finally {
    await Promise.all([a.session.release(), b.session.release()]);
  }
  return out;
}

/** The version number a derived model gets: the one it had before (same precision, same source), else the next free one. */
async function derivedVersion(repo: string, source: RepositoryEntry, type: ModelPrecision): Promise<number> {
  const all = (await listRepository(repo)).filter((e) => e.manifest.name === source.manifest.name);
  const same = all.find((e) => e.manifest.precision?.type === type && e.manifest.precision.fromVersion === source.manifest.version);
  if (same) return same.manifest.version;
  const dirs = all.map((e) => Number(basename(e.dir)));
  return Math.max(source.manifest.version, ...dirs) + 1;
}

/** Writes a derived version atomically (temporary folder, ORT load check, rename) and returns its manifest. */
export async function writeDerived(
  repo: string,
  source: RepositoryEntry,
  bytes: Uint8Array,
  precision: PrecisionSpec,
): Promise<RepositoryEntry> {
  const version = await derivedVersion(repo, source, precision.type);
  const { session } = await createSession(bytes);
  await session.release();
  const { evaluations: _evaluations, identity: _identity, ...rest } = source.manifest;
  const manifest: ModelManifest = {
    ...rest,
    ...(source.manifest.identity ? { identity: source.manifest.identity } : {}),
    version,
    description: `${source.manifest.description} (${precision.type} from version ${source.manifest.version})`,
    sha256: sha256(bytes),
    createdAt: new Date().toISOString(),
    precision,
  };
  const finalDir = versionDir(repo, source.manifest.name, version);
  const tmpDir = join(repo, `.quantizing-${source.manifest.name}-${process.pid}`);
  await publishVersionDir(tmpDir, finalDir, bytes, manifest);
  return { manifest, dir: finalDir, modelPath: join(finalDir, 'model.onnx'), bytes: bytes.byteLength };
}

export function int8Method(c: StoredCalibration): string {
  const kept = c.keepFloat?.length ? `; kept in float: ${c.keepFloat.join(', ')}` : '';
  return `static QDQ: per-channel symmetric int8 weights, uint8 activations (${c.rangeMethod}); ops ${c.ops.join(', ')}; Conv+Mul/Add folded, ReLU/ReLU6 after quantized ops replaced by the quantizer's range${kept}`;
}

/** The int8 PrecisionSpec of a calibration (with whatever it measured). */
export function int8Spec(source: RepositoryEntry, c: StoredCalibration, calibrationFile: string): PrecisionSpec {
  return {
    type: 'int8',
    fromVersion: source.manifest.version,
    fromSha256: source.manifest.sha256,
    method: int8Method(c),
    calibration: { datasets: c.datasets, faces: c.faces, rangeMethod: c.rangeMethod, file: calibrationFile },
    ...(c.speed ? { speed: c.speed } : {}),
    ...(c.accuracy ? { accuracy: c.accuracy } : {}),
  };
}

/** The version already written with these bytes and this precision spec, if any (a rebuild then leaves it alone). */
async function identicalVersion(repo: string, name: string, bytes: Uint8Array, spec: PrecisionSpec): Promise<RepositoryEntry | undefined> {
  const hash = sha256(bytes);
  return (await listRepository(repo)).find(
    (e) => e.manifest.name === name && e.manifest.sha256 === hash && JSON.stringify(e.manifest.precision) === JSON.stringify(spec),
  );
}

async function writeUnlessIdentical(
  repo: string,
  source: RepositoryEntry,
  bytes: Uint8Array,
  spec: PrecisionSpec,
  skipIdentical: boolean,
): Promise<{ entry: RepositoryEntry; written: boolean }> {
  const same = skipIdentical ? await identicalVersion(repo, source.manifest.name, bytes, spec) : undefined;
  if (same) return { entry: same, written: false };
  return { entry: await writeDerived(repo, source, bytes, spec), written: true };
}

/** From the stored calibration only: what `kt models build --precision int8` does for every model that has one. */
export async function writeInt8FromStored(
  repo: string,
  name: string,
  skipIdentical = false,
): Promise<{ entry: RepositoryEntry; written: boolean }> {
  const source = await fp32Source(repo, name);
  const calibration = await readCalibration(name);
  const bytes = int8Graph(new Uint8Array(await readFile(source.modelPath)), calibration);
  return writeUnlessIdentical(
    repo,
    source,
    bytes,
    int8Spec(source, calibration, `src/models/quantize/calibration/${basename(calibrationPath(name))}`),
    skipIdentical,
  );
}

/** Models that get an fp16 version for GPU profiles: the serving defaults and the detector. */
export const fp16Models: readonly string[] = [...new Set([...Object.values(servingDefaultModels), 'blazeface'])];

/**
 * The fp16 version of a model (GPU profiles). ORT's CPU provider runs it (slowly: few fp16 kernels), so it is checked
 * here only for loading and for outputs close to fp32 on a grey image; its speed is a GPU matter.
 */
export async function writeFp16(repo: string, name: string, skipIdentical = false): Promise<{ entry: RepositoryEntry; written: boolean }> {
  const source = await fp32Source(repo, name);
  const bytes = encodeModel(toFp16(decodeModel(new Uint8Array(await readFile(source.modelPath)), source.modelPath)));
  const spec: PrecisionSpec = {
    type: 'fp16',
    fromVersion: source.manifest.version,
    fromSha256: source.manifest.sha256,
    method: 'float16 weights and arithmetic, Cast of the float input and outputs at the edges (for the CUDA / TensorRT providers)',
  };
  return writeUnlessIdentical(repo, source, bytes, spec, skipIdentical);
}

export interface QuantizeOptions {
  repo: string;
  name: string;
  /** Shared data root: re-calibrate, measure speed and accuracy, store them. Absent: rewrite from the stored calibration. */
  data?: string;
  /** Faces per dataset for the accuracy change (default: all). */
  limit?: number;
  facesPerDataset?: number;
  rangeMethod?: RangeMethod;
  ops?: QuantizableOp[];
  /** Output tensors of nodes to keep in float. */
  keepFloat?: string[];
  detector?: string;
  progress?: (line: string) => void;
}

/** Calibrates (with data), stores the ranges, writes the int8 version, measures speed and accuracy (with data). */
export async function quantizeModel(options: QuantizeOptions): Promise<RepositoryEntry> {
  const { repo, name } = options;
  const log = options.progress ?? (() => {});
  if (!options.data) return (await writeInt8FromStored(repo, name)).entry;
  const source = await fp32Source(repo, name);
  const detectorEntry = await fp32Source(repo, options.detector ?? 'blazeface');
  const { calibration, inputs } = await measureCalibration(source, detectorEntry, { ...options, data: options.data, progress: log });
  const sourceBytes = new Uint8Array(await readFile(source.modelPath));
  await writeCalibration(calibration);
  const stored = await readCalibration(name);
  const bytes = int8Graph(sourceBytes, stored);
  stored.speed = await measureSpeed(sourceBytes, bytes, source.manifest, inputs[0]!);
  log(`speed: ${stored.speed.map((s) => `batch ${s.batch}: ${s.sourceMsPerFace} -> ${s.msPerFace} ms/face`).join('; ')}`);
  let entry = await writeInt8FromStoredCalibration(repo, source, bytes, stored);
  const [a, b, detector] = await Promise.all([loadModel(source), loadModel(entry), loadModel(detectorEntry)]);
  try {
    stored.accuracy = await accuracyChange(a, b, detector, {
      data: options.data,
      ...(options.limit ? { limit: options.limit } : {}),
      progress: log,
    });
  } finally {
    await Promise.all([a.session.release(), b.session.release(), detector.session.release()]);
  }
  await writeCalibration(stored);
  entry = await writeInt8FromStoredCalibration(repo, source, bytes, stored);
  return entry;
}

function writeInt8FromStoredCalibration(
  repo: string,
  source: RepositoryEntry,
  bytes: Uint8Array,
  c: StoredCalibration,
): Promise<RepositoryEntry> {
  return writeDerived(repo, source, bytes, int8Spec(source, c, `src/models/quantize/calibration/${c.model}.json`));
}
