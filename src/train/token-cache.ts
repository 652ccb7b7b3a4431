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
import { batchItem, loadModel, type LoadedModel } from '../models/runner.js';
import { runFloat } from '../onnx/runtime.js';

/** Bump when what is stored changes meaning, so old rows are not reused. */
const CACHE_FORMAT = 1;

export interface TokenSample {
  id: string;
  imagePath: string;
  /** Face box [x, y, w, h] in image pixels; without it the whole image is the face (pre-cropped datasets). */
  box?: readonly [number, number, number, number];
  /** The horizontally mirrored image (training augmentation); cached under its own image key. */
  flip?: boolean;
}

/** The token-cache view of a dataset sample (its id, file and optional face box). */
export function tokenSampleOf(s: TokenSample): TokenSample {
  return { id: s.id, imagePath: s.imagePath, ...(s.box ? { box: s.box } : {}), ...(s.flip ? { flip: true } : {}) };
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
  return createHash('sha256')
    .update(JSON.stringify({ sha: m.sha256, input: m.input, encoder: m.encoder, outputs: m.outputs.map((o) => o.name), CACHE_FORMAT }))
    .digest('hex')
    .slice(0, 24);
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

/** One cached row: the GAP token and the model's own outputs for one image, concatenated in manifest order. */
export interface CachedTokens {
  token: Float32Array;
  outputs: Float32Array;
}

/** The on-disk cache (SQLite): one row per (model key, image key), plus each model's per-sample output sizes. */
export class TokenCacheStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly getSizes: Database.Statement<[string], { sizes: string }>;
  private readonly putSizes: Database.Statement<[string, string]>;
  private readonly getRow: Database.Statement<[string, string], { token: Buffer; outputs: Buffer }>;
  private readonly putRow: Database.Statement<[string, string, Buffer, Buffer]>;

  constructor(cacheDir: string) {
    mkdirSync(cacheDir, { recursive: true });
    this.path = join(cacheDir, 'prior-tokens.sqlite');
    this.db = new Database(this.path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS tokens (model_key TEXT NOT NULL, image_key TEXT NOT NULL, token BLOB NOT NULL, outputs BLOB NOT NULL, PRIMARY KEY (model_key, image_key))',
    );
    // The per-sample size of each output, so that rows read back split their concatenated outputs without guessing.
    this.db.exec('CREATE TABLE IF NOT EXISTS output_sizes (model_key TEXT PRIMARY KEY, sizes TEXT NOT NULL)');
    this.getSizes = this.db.prepare('SELECT sizes FROM output_sizes WHERE model_key = ?');
    this.putSizes = this.db.prepare('INSERT OR REPLACE INTO output_sizes (model_key, sizes) VALUES (?, ?)');
    this.getRow = this.db.prepare('SELECT token, outputs FROM tokens WHERE model_key = ? AND image_key = ?');
    this.putRow = this.db.prepare('INSERT OR REPLACE INTO tokens (model_key, image_key, token, outputs) VALUES (?, ?, ?, ?)');
  }

  /** Per-sample sizes of a model's outputs, known once one row of it was stored. */
  outputSizes(modelKey: string): number[] | undefined {
    const known = this.getSizes.get(modelKey);
    return known ? (JSON.parse(known.sizes) as number[]) : undefined;
  }

  get(modelKey: string, imageKey: string): CachedTokens | undefined {
    const row = this.getRow.get(modelKey, imageKey);
    return row ? { token: f32(row.token), outputs: f32(row.outputs) } : undefined;
  }

  /** Stores the rows of one batch of one model in one transaction, with the model's output sizes. */
  putBatch(modelKey: string, sizes: readonly number[], rows: readonly ({ imageKey: string } & CachedTokens)[]): void {
    this.db.transaction(() => {
      if (rows.length > 0) this.putSizes.run(modelKey, JSON.stringify(sizes));
      for (const r of rows) this.putRow.run(modelKey, r.imageKey, Buffer.from(r.token.buffer), Buffer.from(r.outputs.buffer));
    })();
  }

  close(): void {
    this.db.close();
  }
}

/** One encoder of the run with its cache key and the sample indices it still needs. */
interface EncoderRun {
  model: LoadedModel;
  key: string;
  entry: ModelTokens;
  todo: number[];
}

/**
 * Prior tokens of every sample for every model, computing only what the cache lacks. Images are decoded once per
 * batch and shared by all models. An unreadable image is an error naming the file (datasets report bad files first).
 */
export async function computePriorTokens(samples: readonly TokenSample[], options: PriorTokenOptions): Promise<PriorTokenSet> {
  if (options.models.length === 0) throw new InvalidInputError('computePriorTokens: no encoder models given');
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const store = new TokenCacheStore(options.cacheDir ?? defaultCacheDir());
  const loaded: LoadedModel[] = [];
  try {
    for (const name of options.models) loaded.push(await loadEncoder(name, options.repo));
    const imageKeys = await imageKeysOf(samples);
    const result: PriorTokenSet = { ids: samples.map((s) => s.id), models: {}, computed: 0, reused: 0 };
    const runs = loaded.map((model) => readCachedTokens(store, model, imageKeys, result));
    await computeMissingTokens(store, runs, samples, imageKeys, result, options.batchSize ?? 32, log);
    log(`prior tokens: ${result.computed} computed, ${result.reused} reused from ${store.path}`);
    return result;
  } finally {
    store.close();
    for (const m of loaded) await m.session.release();
  }
}

async function loadEncoder(name: string, repo: string | undefined): Promise<LoadedModel> {
  const model = await loadModel(await resolveModel(name, undefined, repo));
  if (!model.manifest.encoder) throw new ModelFormatError(`model ${name} has no encoder tensor; it cannot give prior tokens`);
  return model;
}

/** Image keys hash the file bytes, the box and the flip, so renamed or moved files still hit the cache. */
async function imageKeysOf(samples: readonly TokenSample[]): Promise<string[]> {
  const imageKeys: string[] = [];
  for (const s of samples) {
    const bytes = await readFile(s.imagePath).catch((e: unknown) => {
      throw new InvalidInputError(`cannot read ${s.imagePath}: ${errorMessage(e)}`);
    });
    imageKeys.push(imageKeyOf(bytes, s));
  }
  return imageKeys;
}

/** An unflipped sample keeps the key it always had, so caches built before flips existed stay valid. */
export function imageKeyOf(bytes: Uint8Array, s: Pick<TokenSample, 'box' | 'flip'>): string {
  const hash = createHash('sha1')
    .update(bytes)
    .update(JSON.stringify(s.box ?? null));
  if (s.flip) hash.update('flip-horizontal');
  return hash.digest('hex');
}

/** The image mirrored left-right (RGB, row-major). */
export function mirrorImage(image: RgbImage): RgbImage {
  const { width, height, data } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * 3;
      const to = (y * width + (width - 1 - x)) * 3;
      out[to] = data[from]!;
      out[to + 1] = data[from + 1]!;
      out[to + 2] = data[from + 2]!;
    }
  return { width, height, data: out };
}

/** Fills a model's entry from the cache and lists the samples it lacks. */
function readCachedTokens(store: TokenCacheStore, model: LoadedModel, imageKeys: readonly string[], result: PriorTokenSet): EncoderRun {
  const m = model.manifest;
  const n = imageKeys.length;
  const key = modelKey(m);
  const width = m.encoder!.width;
  const sizes = store.outputSizes(key);
  const entry: ModelTokens = { name: m.name, version: m.version, width, tokens: new Float32Array(n * width), outputs: {}, manifest: m };
  result.models[m.name] = entry;
  const todo: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = sizes ? store.get(key, imageKeys[i]!) : undefined;
    if (!row || !sizes) {
      todo.push(i);
      continue;
    }
    entry.tokens.set(row.token, i * width);
    storeOutputs(entry, m, row.outputs, i, n, sizes);
    result.reused++;
  }
  return { model, key, entry, todo };
}

/** Runs the encoders over the samples the cache lacks, batch by batch, decoding each image once for all models. */
async function computeMissingTokens(
  store: TokenCacheStore,
  runs: readonly EncoderRun[],
  samples: readonly TokenSample[],
  imageKeys: readonly string[],
  result: PriorTokenSet,
  batchSize: number,
  log: (line: string) => void,
): Promise<void> {
  const total = runs.reduce((a, r) => a + r.todo.length, 0);
  if (total === 0) return;
  const progress = createProgress(`prior tokens (${runs.map((r) => r.model.manifest.name).join(', ')})`, total, log);
  const need = [...new Set(runs.flatMap((r) => r.todo))].sort((a, b) => a - b);
  const todoOf = new Map(runs.map((r) => [r, new Set(r.todo)]));
  for (let b = 0; b < need.length; b += batchSize) {
    const idx = need.slice(b, b + batchSize);
    const images = await Promise.all(idx.map(async (i) => decodeSample(samples[i]!)));
    for (const run of runs) {
      const todo = todoOf.get(run)!;
      const mine = idx.map((i, k) => ({ sample: i, image: images[k]! })).filter(({ sample }) => todo.has(sample));
      if (mine.length === 0) continue;
      await encodeBatch(store, run, mine, samples, imageKeys);
      result.computed += mine.length;
      progress.tick(run.model.manifest.name, mine.length);
    }
  }
}

/** One ORT run of one encoder over a batch: GAP tokens and per-sample outputs into the entry and the cache. */
async function encodeBatch(
  store: TokenCacheStore,
  run: EncoderRun,
  batch: readonly { sample: number; image: RgbImage }[],
  samples: readonly TokenSample[],
  imageKeys: readonly string[],
): Promise<void> {
  const m = run.model.manifest;
  const n = imageKeys.length;
  const crops = batch.map(({ sample, image }) => cropFor(m, image, samples[sample]!));
  const out = await runFloat(run.model.session, { [m.input.name]: normalize(crops, m.input) }, [
    m.encoder!.tensor,
    ...m.outputs.map((o) => o.name),
  ]);
  const features = out[m.encoder!.tensor]!;
  let sizes: number[] = [];
  const rows = batch.map(({ sample }, j) => {
    const token = gap(features.data, features.dims, j);
    const outs = m.outputs.map((o) => batchItem(out[o.name]!.data, batch.length, j));
    sizes = outs.map((o) => o.length);
    const flat = new Float32Array(sizes.reduce((a, size) => a + size, 0));
    let off = 0;
    for (const o of outs) {
      flat.set(o, off);
      off += o.length;
    }
    run.entry.tokens.set(token, sample * run.entry.width);
    storeOutputs(run.entry, m, flat, sample, n, sizes);
    return { imageKey: imageKeys[sample]!, token, outputs: flat };
  });
  store.putBatch(run.key, sizes, rows);
}

function storeOutputs(
  entry: ModelTokens,
  manifest: ModelManifest,
  flat: Float32Array,
  i: number,
  n: number,
  sizes: readonly number[],
): void {
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
    const image = await decodeImage(await readFile(s.imagePath));
    return s.flip ? mirrorImage(image) : image;
  } catch (e) {
    throw new InvalidInputError(`${s.imagePath}: ${errorMessage(e)}`, { cause: e });
  }
}

/** Pre-cropped images are used whole (made square); full scenes are cropped around the box with the model's margin. */
export function cropFor(m: ModelManifest, image: RgbImage, s: TokenSample): RgbImage {
  // A flipped sample's image is already mirrored (decodeSample): mirror its box too.
  const box = s.box
    ? { x: s.flip ? image.width - s.box[0] - s.box[2] : s.box[0], y: s.box[1], width: s.box[2], height: s.box[3] }
    : { x: 0, y: 0, width: image.width, height: image.height };
  const spec = s.box ? m.input : { ...m.input, cropMargin: 0, cropSquare: true };
  return cropFace(image, box, spec).image;
}
