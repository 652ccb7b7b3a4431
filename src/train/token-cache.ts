// The prior-token cache: each frozen encoder runs once per image (ORT, its own preprocessing), GAP, stored on disk.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidInputError, ModelFormatError, errorMessage } from '../core/errors.js';
import { decodeImage, type RgbImage } from '../core/image.js';
import { createProgress } from '../core/log.js';
import type { ModelManifest } from '../models/manifest.js';
import { cropFace, normalize } from '../models/processing/index.js';
import { resolveModel } from '../models/repository.js';
import { loadModel, type LoadedModel } from '../models/runner.js';
import { runFloat } from '../onnx/runtime.js';

/** Bump when what is stored changes meaning, so old rows are not reused. */
const CACHE_FORMAT = 1;

export interface TokenSample {
  id: string;
  imagePath: string;
  /** Face box [x, y, w, h] in image pixels; without it the whole image is the face (pre-cropped datasets). */
  box?: readonly [number, number, number, number];
}

export interface PriorTokenOptions {
  /** Encoder model names in the repository (the canonical one and the priors). */
  models: readonly string[];
  repo?: string;
  /** Folder of the cache database. Default `.cache/` at the package root, or $KT_CACHE_DIR. */
  cacheDir?: string;
  /** Images per ORT batch. Default 32. */
  batchSize?: number;
  log?: (line: string) => void;
}

export interface ModelTokens {
  name: string;
  version: number;
  width: number;
  /** [n, width] row-major: GAP of the encoder feature map, one row per sample (in request order). */
  tokens: Float32Array;
  /** The model's own outputs per sample ([n, size] each), for the pre-trained comparator. */
  outputs: Record<string, { size: number; data: Float32Array }>;
  manifest: ModelManifest;
}

export interface PriorTokenSet {
  ids: string[];
  models: Record<string, ModelTokens>;
  /** Encoder runs done now vs rows reused from the cache. */
  computed: number;
  reused: number;
}

export function defaultCacheDir(): string {
  return resolve(process.env['KT_CACHE_DIR'] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.cache'));
}

/** What a cached row depends on: the model bytes, its preprocessing, and how crops are cut. */
function modelKey(m: ModelManifest): string {
  return createHash('sha256').update(JSON.stringify({ sha: m.sha256, input: m.input, encoder: m.encoder, outputs: m.outputs.map((o) => o.name), CACHE_FORMAT })).digest('hex').slice(0, 24);
}

function gap(data: Float32Array, dims: readonly number[], item: number): Float32Array {
  const [, c, h, w] = dims as [number, number, number, number];
  const hw = h * w;
  const out = new Float32Array(c);
  const base = item * c * hw;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let k = 0; k < hw; k++) s += data[base + ch * hw + k]!;
    out[ch] = s / hw;
  }
  return out;
}

const f32 = (buf: Buffer): Float32Array => new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));

/**
 * Prior tokens of every sample for every model, computing only what the cache lacks. Images are decoded once per
 * batch and shared by all models. An unreadable image is an error naming the file (datasets report bad files first).
 */
export async function computePriorTokens(samples: readonly TokenSample[], options: PriorTokenOptions): Promise<PriorTokenSet> {
  if (options.models.length === 0) throw new InvalidInputError('computePriorTokens: no encoder models given');
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const batchSize = options.batchSize ?? 32;
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  mkdirSync(cacheDir, { recursive: true });
  const db = new Database(join(cacheDir, 'prior-tokens.sqlite'));
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS tokens (model_key TEXT NOT NULL, image_key TEXT NOT NULL, token BLOB NOT NULL, outputs BLOB NOT NULL, PRIMARY KEY (model_key, image_key))');
  // The per-sample size of each output, so that rows read back split their concatenated outputs without guessing.
  db.exec('CREATE TABLE IF NOT EXISTS output_sizes (model_key TEXT PRIMARY KEY, sizes TEXT NOT NULL)');
  const getSizes = db.prepare<[string], { sizes: string }>('SELECT sizes FROM output_sizes WHERE model_key = ?');
  const putSizes = db.prepare('INSERT OR REPLACE INTO output_sizes (model_key, sizes) VALUES (?, ?)');
  const get = db.prepare<[string, string], { token: Buffer; outputs: Buffer }>('SELECT token, outputs FROM tokens WHERE model_key = ? AND image_key = ?');
  const put = db.prepare('INSERT OR REPLACE INTO tokens (model_key, image_key, token, outputs) VALUES (?, ?, ?, ?)');

  const loaded: LoadedModel[] = [];
  try {
    for (const name of options.models) {
      const model = await loadModel(await resolveModel(name, undefined, options.repo));
      if (!model.manifest.encoder) throw new ModelFormatError(`model ${name} has no encoder tensor; it cannot give prior tokens`);
      loaded.push(model);
    }
    // Image keys hash the file bytes (and the box), so renamed or moved files still hit the cache.
    const imageKeys: string[] = [];
    for (const s of samples) {
      const bytes = await readFile(s.imagePath).catch((e: unknown) => {
        throw new InvalidInputError(`cannot read ${s.imagePath}: ${errorMessage(e)}`);
      });
      imageKeys.push(createHash('sha1').update(bytes).update(JSON.stringify(s.box ?? null)).digest('hex'));
    }
    const n = samples.length;
    const result: PriorTokenSet = { ids: samples.map((s) => s.id), models: {}, computed: 0, reused: 0 };
    const missing = new Map<string, number[]>();
    for (const m of loaded) {
      const key = modelKey(m.manifest);
      const width = m.manifest.encoder!.width;
      const known = getSizes.get(key);
      const sizes = known ? (JSON.parse(known.sizes) as number[]) : undefined;
      const entry: ModelTokens = { name: m.manifest.name, version: m.manifest.version, width, tokens: new Float32Array(n * width), outputs: {}, manifest: m.manifest };
      result.models[m.manifest.name] = entry;
      const todo: number[] = [];
      for (let i = 0; i < n; i++) {
        const row = sizes ? get.get(key, imageKeys[i]!) : undefined;
        if (!row || !sizes) {
          todo.push(i);
          continue;
        }
        entry.tokens.set(f32(row.token), i * width);
        storeOutputs(entry, m.manifest, f32(row.outputs), i, n, sizes);
        result.reused++;
      }
      missing.set(m.manifest.name, todo);
    }
    const total = [...missing.values()].reduce((a, t) => a + t.length, 0);
    if (total > 0) {
      const progress = createProgress(`prior tokens (${loaded.map((m) => m.manifest.name).join(', ')})`, total, log);
      const need = [...new Set([...missing.values()].flat())].sort((a, b) => a - b);
      for (let b = 0; b < need.length; b += batchSize) {
        const idx = need.slice(b, b + batchSize);
        const images = await Promise.all(idx.map(async (i) => decodeSample(samples[i]!)));
        for (const m of loaded) {
          const todo = new Set(missing.get(m.manifest.name));
          const mine = idx.map((i, k) => [i, k] as const).filter(([i]) => todo.has(i));
          if (mine.length === 0) continue;
          const crops = mine.map(([i, k]) => cropFor(m.manifest, images[k]!, samples[i]!));
          const tensor = normalize(crops, m.manifest.input);
          const out = await runFloat(m.session, { [m.manifest.input.name]: tensor }, [m.manifest.encoder!.tensor, ...m.manifest.outputs.map((o) => o.name)]);
          const features = out[m.manifest.encoder!.tensor]!;
          const key = modelKey(m.manifest);
          const entry = result.models[m.manifest.name]!;
          const insert = db.transaction(() => {
            mine.forEach(([i], j) => {
              const token = gap(features.data, features.dims, j);
              const outs = m.manifest.outputs.map((o) => {
                const t = out[o.name]!;
                const per = t.data.length / mine.length;
                return t.data.slice(j * per, (j + 1) * per);
              });
              const flat = new Float32Array(outs.reduce((a, o) => a + o.length, 0));
              let off = 0;
              for (const o of outs) {
                flat.set(o, off);
                off += o.length;
              }
              entry.tokens.set(token, i * entry.width);
              const sizes = outs.map((o) => o.length);
              if (j === 0) putSizes.run(key, JSON.stringify(sizes));
              storeOutputs(entry, m.manifest, flat, i, n, sizes);
              put.run(key, imageKeys[i]!, Buffer.from(token.buffer), Buffer.from(flat.buffer));
            });
          });
          insert();
          result.computed += mine.length;
          progress.tick(m.manifest.name, mine.length);
        }
      }
    }
    log(`prior tokens: ${result.computed} computed, ${result.reused} reused from ${join(cacheDir, 'prior-tokens.sqlite')}`);
    return result;
  } finally {
    db.close();
    for (const m of loaded) await m.session.release();
  }
}

function storeOutputs(entry: ModelTokens, manifest: ModelManifest, flat: Float32Array, i: number, n: number, sizes: readonly number[]): void {
  let off = 0;
  manifest.outputs.forEach((o, k) => {
    const size = sizes[k]!;
    const slot = (entry.outputs[o.name] ??= { size, data: new Float32Array(n * size) });
    slot.data.set(flat.subarray(off, off + size), i * size);
    off += size;
  });
}

export async function decodeSample(s: TokenSample): Promise<RgbImage> {
  try {
    return await decodeImage(await readFile(s.imagePath));
  } catch (e) {
    throw new InvalidInputError(`${s.imagePath}: ${errorMessage(e)}`, { cause: e });
  }
}

/** Pre-cropped images are used whole (made square); full scenes are cropped around the box with the model's margin. */
export function cropFor(m: ModelManifest, image: RgbImage, s: TokenSample): RgbImage {
  const box = s.box ? { x: s.box[0], y: s.box[1], width: s.box[2], height: s.box[3] } : { x: 0, y: 0, width: image.width, height: image.height };
  const spec = s.box ? m.input : { ...m.input, cropMargin: 0, cropSquare: true };
  return cropFace(image, box, spec).image;
}
