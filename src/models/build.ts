// Builds the model repository from the npm packages that ship face networks: convert, verify in ORT, then publish atomically.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { NotFoundError, errorMessage } from '../core/errors.js';
import { createProgress } from '../core/log.js';
import { encodeModel, type ModelProto } from '../onnx/proto.js';
import { createSession, runFloat } from '../onnx/runtime.js';
import { readTfjsGraphModel } from '../onnx/tfjs-artifacts.js';
import { convertTfjsGraph } from '../onnx/tfjs-to-onnx.js';
import { buildFaceApiAgeGender, buildFaceApiExpression, buildFaceApiLandmark68 } from './faceapi-nets.js';
import { buildFaceApiRecognition } from './faceapi-recognition.js';
import type { EncoderSpec, InputSpec, ModelManifest, OutputSpec } from './manifest.js';
import { defaultRepositoryPath, publishVersionDir, readManifest, versionDir } from './repository.js';
import { zoo, type ZooEntry } from './zoo.js';

const require = createRequire(import.meta.url);

/** Every task model exposes its spatial embedding under this one output name (NCHW). */
export const ENCODER_TENSOR = 'encoder/features';

export interface BuildOptions {
  repo?: string;
  /** Only these zoo names (default: all). */
  only?: string[];
  /** Rebuild even when an up-to-date version exists. */
  force?: boolean;
  log?: (line: string) => void;
  /**
   * Reduced-precision versions to write after the fp32 ones (default none): int8 for every model with a stored
   * calibration (src/models/quantize/calibration), fp16 for the serving default models. A graph rewrite: no images needed.
   */
  precisions?: readonly ('int8' | 'fp16')[];
  /** Package name -> folder, overriding node_modules resolution (packages installed elsewhere; tests). */
  packageDirs?: Record<string, string>;
}

export interface BuildReport {
  built: string[];
  skipped: string[];
  repo: string;
}

/** The installed version of an npm package, or a NotFoundError telling the user how to get it. */
export function packageInfo(pkg: string, override?: string): { dir: string; version: string } {
  if (override) {
    const path = join(override, 'package.json');
    if (!existsSync(path)) throw new NotFoundError(`npm package ${pkg}: no package.json in ${override}`);
    return { dir: override, version: (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version };
  }
  // Not require.resolve(`${pkg}/package.json`): packages with an `exports` map (human does) hide it.
  for (const base of require.resolve.paths(pkg) ?? []) {
    const path = join(base, pkg, 'package.json');
    if (existsSync(path)) return { dir: dirname(path), version: (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version };
  }
  throw new NotFoundError(
    `npm package ${pkg} is not installed (run \`npm install\` in the project root); it ships the face models the repository is built from`,
  );
}

interface Built {
  model: ModelProto;
  input: InputSpec;
  outputs: OutputSpec[];
  encoder?: Omit<EncoderSpec, 'spatial' | 'width'> & Partial<Pick<EncoderSpec, 'spatial' | 'width'>>;
  batchForProbe: number;
}

async function buildEntry(entry: ZooEntry, pkgDir: string): Promise<Built> {
  if (entry.source === 'faceapi-weights') {
    const dir = join(pkgDir, dirname(entry.file));
    if (entry.net === 'recognition') {
      const r = await buildFaceApiRecognition(dir);
      return { model: r.model, input: r.input, outputs: r.outputs, encoder: r.encoder, batchForProbe: 1 };
    }
    const b =
      entry.net === 'landmark68'
        ? await buildFaceApiLandmark68(dir)
        : entry.net === 'expression'
          ? await buildFaceApiExpression(dir)
          : await buildFaceApiAgeGender(dir);
    const input = entry.refineCrop ? { ...b.input, refineCrop: entry.refineCrop } : b.input;
    const labels = entry.emotionLabels;
    const outputs = b.outputs.map((o) =>
      labels && o.task === 'emotion' && o.decoding.type === 'classification' ? { ...o, decoding: { ...o.decoding, labels } } : o,
    );
    return { model: b.model, input, outputs, encoder: b.encoder, batchForProbe: 1 };
  }
  const tf = await readTfjsGraphModel(join(pkgDir, entry.file));
  const conv = convertTfjsGraph(tf, {
    graphName: entry.name,
    outputs: entry.outputs.map((o) => o.tfName),
    ...(entry.encoder ? { extraOutputs: [{ tensor: entry.encoder.tfTensor, as: ENCODER_TENSOR }] } : {}),
    batch: entry.batch,
  });
  const input: InputSpec = { name: conv.inputName, ...entry.input };
  const outputs: OutputSpec[] = entry.outputs.map((o, i) => ({ name: conv.outputNames[i]!, task: o.task, decoding: o.decoding }));
  const encoder = entry.encoder
    ? { tensor: conv.extra[entry.encoder.tfTensor]!.name, layout: entry.encoder.layout, head: entry.encoder.head }
    : undefined;
  return { model: conv.model, input, outputs, ...(encoder ? { encoder } : {}), batchForProbe: 1 };
}

/**
 * Runs the model once on a grey image: proves it loads and runs in onnxruntime-node, and reads the encoder
 * feature map's real width and spatial size instead of trusting a hand-written number.
 */
async function probe(bytes: Uint8Array, b: Built): Promise<EncoderSpec | undefined> {
  const { session } = await createSession(bytes);
  try {
    const s = b.input.size;
    const ch = b.input.colorOrder === 'GRAY' ? 1 : 3;
    const dims = b.input.layout === 'NHWC' ? [b.batchForProbe, s, s, ch] : [b.batchForProbe, ch, s, s];
    const data = new Float32Array(dims.reduce((x, y) => x * y, 1)).fill(0.5);
    const out = await runFloat(session, { [b.input.name]: { data, dims } });
    for (const o of b.outputs) if (!out[o.name]) throw new Error(`output ${o.name} missing from the converted model`);
    for (const [name, t] of Object.entries(out))
      if (t.data.some((v) => !Number.isFinite(v))) throw new Error(`output ${name} is not finite on a grey image`);
    if (!b.encoder) return undefined;
    const f = out[b.encoder.tensor];
    if (!f || f.dims.length !== 4) throw new Error(`encoder tensor ${b.encoder.tensor} is not a rank-4 output`);
    const [, c, h, w] = b.encoder.layout === 'NCHW' ? f.dims : [f.dims[0], f.dims[3], f.dims[1], f.dims[2]];
    return { tensor: b.encoder.tensor, layout: b.encoder.layout, head: b.encoder.head, width: c!, spatial: [h!, w!] };
  } finally {
    await session.release();
  }
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Bump when the converter or builder changes what it writes, so installed repositories rebuild. */
const BUILDER_VERSION = 1;
const buildKeyOf = (entry: ZooEntry, pkgVersion: string): string =>
  createHash('sha256').update(JSON.stringify({ entry, pkgVersion, BUILDER_VERSION })).digest('hex').slice(0, 16);

async function upToDate(dir: string, buildKey: string): Promise<boolean> {
  try {
    const m = await readManifest(dir);
    if (m.source?.buildKey !== buildKey) return false;
    return sha256(await readFile(join(dir, 'model.onnx'))) === m.sha256;
  } catch {
    return false;
  }
}

/**
 * Builds every zoo model into `<repo>/<name>/1/`. Idempotent: an up-to-date version is skipped. Each model is
 * written into a temporary folder, loaded and run in ORT, and only then renamed into place, so a failure leaves
 * nothing half-written.
 */
export async function buildRepository(options: BuildOptions = {}): Promise<BuildReport> {
  const repo = options.repo ?? defaultRepositoryPath();
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const entries = options.only ? zoo.filter((z) => options.only!.includes(z.name)) : zoo;
  if (options.only)
    for (const n of options.only)
      if (!zoo.some((z) => z.name === n)) throw new NotFoundError(`no zoo model named ${n} (known: ${zoo.map((z) => z.name).join(', ')})`);
  await mkdir(repo, { recursive: true });
  const report: BuildReport = { built: [], skipped: [], repo };
  const progress = createProgress('models build', entries.length, log, 0);
  for (const entry of entries) {
    const pkg = packageInfo(entry.package, options.packageDirs?.[entry.package]);
    const finalDir = versionDir(repo, entry.name, 1);
    const buildKey = buildKeyOf(entry, pkg.version);
    if (!options.force && (await upToDate(finalDir, buildKey))) {
      report.skipped.push(entry.name);
      progress.tick(`${entry.name}: up to date`);
      continue;
    }
    const tmpDir = join(repo, `.building-${entry.name}-${process.pid}`);
    await rm(tmpDir, { recursive: true, force: true });
    try {
      const started = Date.now();
      const built = await buildEntry(entry, pkg.dir);
      const bytes = encodeModel(built.model);
      const encoder = await probe(bytes, built);
      const manifest: ModelManifest = {
        name: entry.name,
        version: 1,
        kind: entry.kind,
        tasks: entry.tasks,
        description: entry.description,
        input: built.input,
        outputs: built.outputs,
        ...(encoder ? { encoder } : {}),
        ...(entry.identity ? { identity: entry.identity } : {}),
        source: { package: entry.package, version: pkg.version, file: entry.file, license: entry.license, buildKey },
        sha256: sha256(bytes),
        createdAt: new Date().toISOString(),
      };
      // Evaluations (`kt models eval --write`) stay when the rebuilt graph is byte-identical: they still describe it.
      const previous = await readManifest(finalDir).catch(() => undefined);
      if (previous?.evaluations && previous.sha256 === manifest.sha256) manifest.evaluations = previous.evaluations;
      await publishVersionDir(tmpDir, finalDir, bytes, manifest);
      report.built.push(entry.name);
      progress.tick(`${entry.name}: ${(bytes.byteLength / 1e6).toFixed(1)} MB in ${Date.now() - started} ms`);
    } catch (e) {
      await rm(tmpDir, { recursive: true, force: true });
      throw Object.assign(e instanceof Error ? e : new Error(errorMessage(e)), { message: `building ${entry.name}: ${errorMessage(e)}` });
    }
  }
  if (options.precisions?.length) await buildReducedVersions(repo, entries, options.precisions, report, log);
  return report;
}

/**
 * The int8 versions of models that have a stored calibration and the fp16 versions of the serving defaults. A
 * calibration made on another fp32 graph is skipped with a warning: the fp32 model still serves, and `kt models
 * quantize NAME --data DIR` makes a new one. A version already built identically is left as it is.
 */
async function buildReducedVersions(
  repo: string,
  entries: readonly ZooEntry[],
  precisions: readonly ('int8' | 'fp16')[],
  report: BuildReport,
  log: (l: string) => void,
): Promise<void> {
  const { hasCalibration } = await import('./quantize/calibration-store.js');
  const { writeInt8FromStored, writeFp16, fp16Models } = await import('./quantize/quantize-model.js');
  for (const entry of entries) {
    const jobs: ['int8' | 'fp16', () => Promise<{ entry: { manifest: ModelManifest }; written: boolean }>][] = [];
    if (precisions.includes('int8') && hasCalibration(entry.name)) jobs.push(['int8', () => writeInt8FromStored(repo, entry.name, true)]);
    if (precisions.includes('fp16') && fp16Models.includes(entry.name)) jobs.push(['fp16', () => writeFp16(repo, entry.name, true)]);
    for (const [type, job] of jobs) {
      try {
        const { entry: written, written: changed } = await job();
        (changed ? report.built : report.skipped).push(`${entry.name}@${type}`);
        if (changed) log(`${entry.name}: ${type} version ${written.manifest.version}`);
      } catch (e) {
        log(`${entry.name}: ${type} skipped: ${errorMessage(e)}`);
      }
    }
  }
}
