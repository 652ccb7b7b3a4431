// The on-disk model repository (Triton-like): <repo>/<name>/<version>/model.onnx + model.json.
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelFormatError, NotFoundError, errorMessage } from '../core/errors.js';
import type { ModelManifest } from './manifest.js';

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

export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, 'model.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new NotFoundError(`no manifest at ${path}: ${errorMessage(e)}`);
  }
  try {
    const m = JSON.parse(text) as ModelManifest;
    if (!m.name || typeof m.version !== 'number' || !m.input || !Array.isArray(m.outputs)) throw new Error('missing name, version, input or outputs');
    return m;
  } catch (e) {
    throw new ModelFormatError(`invalid manifest ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

/** Every model version in the repository; folders that are not versions (temp builds, files) are ignored. */
export async function listRepository(repo = defaultRepositoryPath()): Promise<RepositoryEntry[]> {
  let names: string[];
  try {
    names = (await readdir(repo, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  } catch {
    return [];
  }
  const out: RepositoryEntry[] = [];
  for (const name of names.sort()) {
    const versions = (await readdir(join(repo, name), { withFileTypes: true })).filter((d) => d.isDirectory() && /^\d+$/.test(d.name)).map((d) => Number(d.name));
    for (const v of versions.sort((a, b) => a - b)) {
      const dir = versionDir(repo, name, v);
      const modelPath = join(dir, 'model.onnx');
      try {
        const [manifest, st] = await Promise.all([readManifest(dir), stat(modelPath)]);
        out.push({ manifest, dir, modelPath, bytes: st.size });
      } catch {
        // A version folder without a readable manifest and model is not servable: skip, `kt doctor` reports it.
      }
    }
  }
  return out;
}

/** The named model at `version`, or its highest version. */
export async function resolveModel(name: string, version?: number, repo = defaultRepositoryPath()): Promise<RepositoryEntry> {
  const all = (await listRepository(repo)).filter((e) => e.manifest.name === name && (version === undefined || e.manifest.version === version));
  const best = all.sort((a, b) => b.manifest.version - a.manifest.version)[0];
  if (!best) throw new NotFoundError(`model ${name}${version !== undefined ? ` version ${version}` : ''} not found in ${repo}`);
  return best;
}
