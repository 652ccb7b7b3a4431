// The on-disk model repository (Triton-like): <repo>/<name>/<version>/model.onnx + model.json.
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelFormatError, NotFoundError, errorMessage } from '../core/errors.js';
import type { Static } from '@sinclair/typebox';
import { schemaProblems } from '../core/schema.js';
import { manifestTaskProblems, modelManifestSchema, type ModelManifest, type ModelPrecision } from './manifest.js';

/** Default repository: $KT_MODEL_REPOSITORY, else `model-repository/` at the package root (built at install). */
export function defaultRepositoryPath(): string {
  const env = process.env['KT_MODEL_REPOSITORY'];
  if (env) return resolve(env);
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'model-repository');
}

export interface RepositoryEntry {
  manifest: ModelManifest;
  dir: string;
  modelPath: string;
  bytes: number;
}

export function versionDir(repo: string, name: string, version: number): string {
  return join(repo, name, String(version));
}

/**
 * Reads and validates `<dir>/model.json`. A manifest that is not JSON or does not match the schema is a
 * ModelFormatError naming the model (from its folder, since the manifest's own name may be the bad field) and every
 * bad field: `model faceres version 1 (<path>): invalid model.json: "outputs[0].decoding.type" must be one of ...`.
 */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, 'model.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new NotFoundError(`no manifest at ${path}: ${errorMessage(e)}`);
  }
  const model = `model ${basename(dirname(resolve(dir)))} version ${basename(resolve(dir))} (${path})`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${model}: model.json is not valid JSON: ${errorMessage(e)}`, { cause: e });
  }
  const problems = schemaProblems(modelManifestSchema, parsed);
  if (problems.length > 0) throw new ModelFormatError(`${model}: invalid model.json: ${problems.join('; ')}`);
  const { $schema: _schema, ...manifest } = parsed as Static<typeof modelManifestSchema>;
  // One decoding per task: an output whose decoding cannot answer its task is refused on load, not dropped at serving time.
  const taskProblems = manifestTaskProblems(manifest as ModelManifest);
  if (taskProblems.length > 0) throw new ModelFormatError(`${model}: invalid model.json: ${taskProblems.join('; ')}`);
  return manifest as ModelManifest;
}

/**
 * Every model version in the repository; folders that are not versions (temp builds, files) are ignored, and versions
 * whose manifest or model cannot be read or validated are skipped and passed to `onProblem`.
 */
export async function listRepository(
  repo = defaultRepositoryPath(),
  onProblem?: (dir: string, error: unknown) => void,
): Promise<RepositoryEntry[]> {
  let names: string[];
  try {
    names = (await readdir(repo, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  } catch {
    return [];
  }
  const out: RepositoryEntry[] = [];
  for (const name of names.sort()) {
    const versions = (await readdir(join(repo, name), { withFileTypes: true }))
      .filter((d) => d.isDirectory() && /^\d+$/.test(d.name))
      .map((d) => Number(d.name));
    for (const v of versions.sort((a, b) => a - b)) {
      const dir = versionDir(repo, name, v);
      const modelPath = join(dir, 'model.onnx');
      try {
        const [manifest, st] = await Promise.all([readManifest(dir), stat(modelPath)]);
        out.push({ manifest, dir, modelPath, bytes: st.size });
      } catch (e) {
        // A version folder without a valid manifest and model is not servable: skipped; `onProblem` hears why.
        onProblem?.(dir, e);
      }
    }
  }
  return out;
}

/**
 * The version a request that names none gets: the newest one at `precision` (a device profile's choice for this model),
 * else the newest fp32 one, else the newest. Reduced-precision versions never replace fp32 unless asked for.
 */
export function preferredVersion(
  versions: readonly Pick<ModelManifest, 'version' | 'precision'>[],
  precision: ModelPrecision = 'fp32',
): number | undefined {
  const newest = (p?: ModelPrecision): number | undefined => {
    const vs = versions.filter((v) => p === undefined || (v.precision?.type ?? 'fp32') === p).map((v) => v.version);
    return vs.length ? Math.max(...vs) : undefined;
  };
  return newest(precision) ?? newest('fp32') ?? newest();
}

/** The named model at `version`, or its preferred version (newest fp32 unless `precision` asks otherwise). */
export async function resolveModel(
  name: string,
  version?: number,
  repo = defaultRepositoryPath(),
  precision?: ModelPrecision,
): Promise<RepositoryEntry> {
  const problems = new Map<string, unknown>();
  const all = (await listRepository(repo, (dir, e) => problems.set(dir, e))).filter(
    (e) => e.manifest.name === name && (version === undefined || e.manifest.version === version),
  );
  const chosen =
    version ??
    preferredVersion(
      all.map((e) => e.manifest),
      precision,
    );
  const best = all.find((e) => e.manifest.version === chosen);
  // A version that exists but is broken says why, rather than "not found".
  const broken = [...problems]
    .filter(([dir]) => basename(dirname(dir)) === name && (version === undefined || basename(dir) === String(version)))
    .at(-1);
  if (!best && broken) throw broken[1];
  if (!best) throw new NotFoundError(`model ${name}${version !== undefined ? ` version ${version}` : ''} not found in ${repo}`);
  return best;
}

/**
 * Publishes model.onnx + model.json as `finalDir`: written into `tmpDir` first, then renamed into place, so a reader
 * never sees a half-written version and a failure leaves nothing behind but `tmpDir`.
 */
export async function publishVersionDir(tmpDir: string, finalDir: string, bytes: Uint8Array, manifest: ModelManifest): Promise<void> {
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  await writeFile(join(tmpDir, 'model.onnx'), bytes);
  await writeFile(join(tmpDir, 'model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await rm(finalDir, { recursive: true, force: true });
  await mkdir(dirname(finalDir), { recursive: true });
  await rename(tmpDir, finalDir);
}
