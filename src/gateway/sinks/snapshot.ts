// Built-in sink `snapshot`: a JPEG of the best face of a faces event (highest score, then largest), cropped with a margin
// from the frame the result is for, at most one per camera per interval, with retention by count and age. It lives in
// the gateway, not the SDK, because it decodes and encodes images (sharp, through the core's image adapter).
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type TSchema } from '@sinclair/typebox';
import { decodeImage, encodeJpeg, fromRaw, type RgbImage } from '../../core/image.js';
import { definePlugin, type PluginFactory } from '../../sdk/plugin.js';
import type { SourceFrame } from '../../sdk/plugin-kinds.js';
import { resultToFacesEvent, type AnalysisResult, type BoxPx, type FaceResult } from '../../sdk/results.js';

export interface SnapshotSinkOptions {
  /** Folder for the snapshots: `<path>/<camera>/<capture ms>-<sequence>.jpg` (+ `.json`). Default "snapshots". */
  path: string;
  /** At most one snapshot per camera this often, in milliseconds (0: every result with a face). Default 1000. */
  minIntervalMs: number;
  /** Margin around the face box, as a fraction of its size on each side. Default 0.3. */
  margin: number;
  /** JPEG quality 1..100. Default 85. */
  jpegQuality: number;
  /** Snapshots kept per camera (the oldest deleted first; 0: no limit). Default 200. */
  maxFiles: number;
  /** Snapshots older than this are deleted, in milliseconds (0: no limit). Default 604800000 (7 days). */
  maxAgeMs: number;
  /** Also write the faces event of the snapshot's face as `<name>.json`. Default true. */
  sidecar: boolean;
}

/** The face a snapshot shows: highest detector score, then the largest box. */
export function bestFace(faces: readonly FaceResult[]): FaceResult | undefined {
  let best: FaceResult | undefined;
  for (const f of faces) {
    const area = f.box.width * f.box.height;
    if (!best || f.score > best.score || (f.score === best.score && area > best.box.width * best.box.height)) best = f;
  }
  return best;
}

/** The face box grown by `margin` on each side and clipped to the frame, in whole pixels (empty when outside). */
export function cropRect(box: BoxPx, margin: number, width: number, height: number): BoxPx {
  const x0 = Math.max(0, Math.floor(box.x - box.width * margin));
  const y0 = Math.max(0, Math.floor(box.y - box.height * margin));
  const x1 = Math.min(width, Math.ceil(box.x + box.width * (1 + margin)));
  const y1 = Math.min(height, Math.ceil(box.y + box.height * (1 + margin)));
  return { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
}

/** Copies a rectangle out of RGB8 pixels. */
export function cropRgb(image: RgbImage, rect: BoxPx): RgbImage {
  const out = new Uint8Array(rect.width * rect.height * 3);
  for (let row = 0; row < rect.height; row += 1) {
    const from = ((rect.y + row) * image.width + rect.x) * 3;
    out.set(image.data.subarray(from, from + rect.width * 3), row * rect.width * 3);
  }
  return { data: out, width: rect.width, height: rect.height };
}

async function framePixels(frame: SourceFrame): Promise<RgbImage> {
  const image = frame.image;
  if (image instanceof Uint8Array) return decodeImage(image);
  const raw = { data: image.data, width: image.widthPx, height: image.heightPx, format: image.pixelFormat };
  return fromRaw(image.strideBytes ? { ...raw, stride: image.strideBytes } : raw);
}

/** Deletes the oldest snapshots of a camera folder beyond `maxFiles` and those older than `maxAgeMs`; returns how many. */
async function prune(dir: string, maxFiles: number, maxAgeMs: number, nowMs: number): Promise<number> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.jpg'));
  const files = await Promise.all(names.map(async (n) => ({ n, mtimeMs: (await stat(join(dir, n))).mtimeMs })));
  files.sort((a, b) => b.mtimeMs - a.mtimeMs || b.n.localeCompare(a.n)); // newest first
  const doomed = files.filter((f, i) => (maxFiles > 0 && i >= maxFiles) || (maxAgeMs > 0 && nowMs - f.mtimeMs > maxAgeMs));
  for (const f of doomed) {
    await rm(join(dir, f.n), { force: true });
    await rm(join(dir, f.n.replace(/\.jpg$/, '.json')), { force: true });
  }
  return doomed.length;
}

export const snapshotSink: PluginFactory<SnapshotSinkOptions> = definePlugin<SnapshotSinkOptions>({
  name: 'snapshot',
  kind: 'sink',
  description: 'a JPEG of the best face per faces event, with retention by count and age',
  schema: Type.Object(
    {
      path: Type.String({
        minLength: 1,
        default: 'snapshots',
        description: 'Folder for the snapshots: <path>/<camera>/<capture ms>-<sequence>.jpg (+ .json). Default "snapshots".',
      }),
      minIntervalMs: Type.Integer({
        minimum: 0,
        default: 1000,
        description: 'At most one snapshot per camera this often, in milliseconds (0: every result with a face). Default 1000.',
      }),
      margin: Type.Number({
        minimum: 0,
        maximum: 2,
        default: 0.3,
        description: 'Margin around the face box per side, as a fraction of its size. Default 0.3.',
      }),
      jpegQuality: Type.Integer({ minimum: 1, maximum: 100, default: 85, description: 'JPEG quality 1..100. Default 85.' }),
      maxFiles: Type.Integer({
        minimum: 0,
        default: 200,
        description: 'Snapshots kept per camera, the oldest deleted first (0: no limit). Default 200.',
      }),
      maxAgeMs: Type.Integer({
        minimum: 0,
        default: 7 * 24 * 3600 * 1000,
        description: 'Snapshots older than this are deleted, in milliseconds (0: no limit). Default 604800000 (7 days).',
      }),
      sidecar: Type.Boolean({
        default: true,
        description: 'Also write the faces event of the snapshot face as <name>.json. Default true.',
      }),
    } satisfies Record<keyof SnapshotSinkOptions, TSchema>,
    { additionalProperties: false, title: 'snapshot sink options' },
  ),
  create({ options: o, log }) {
    const lastMs = new Map<string, number>();
    const count = { written: 0, skippedNoFrame: 0, skippedInterval: 0, pruned: 0 };
    const write = async (result: AnalysisResult, camera: string, frame: SourceFrame, face: FaceResult): Promise<void> => {
      const pixels = await framePixels(frame);
      const rect = cropRect(face.box, o.margin, pixels.width, pixels.height);
      if (rect.width === 0 || rect.height === 0) return;
      const dir = join(o.path, camera);
      await mkdir(dir, { recursive: true });
      const name = `${result.captureTimeUnixMs}-${result.sequence}`;
      await writeFile(join(dir, `${name}.jpg`), await encodeJpeg(cropRgb(pixels, rect), o.jpegQuality));
      if (o.sidecar)
        await writeFile(join(dir, `${name}.json`), `${JSON.stringify(resultToFacesEvent({ ...result, faces: [face] }, camera))}\n`);
      count.written += 1;
      count.pruned += await prune(dir, o.maxFiles, o.maxAgeMs, Date.now());
    };
    return {
      async onResult(result, ctx) {
        const face = bestFace(result.faces);
        if (!face) return;
        if (!ctx.frame) {
          // Without the frame there is nothing to crop (the gateway passes it; other callers may not).
          if (count.skippedNoFrame++ === 0) log.warn({ stream: ctx.streamId }, 'snapshot sink: results come without their frame');
          return;
        }
        const now = result.captureTimeUnixMs;
        if (o.minIntervalMs > 0 && now - (lastMs.get(ctx.streamId) ?? -Infinity) < o.minIntervalMs) {
          count.skippedInterval += 1;
          return;
        }
        lastMs.set(ctx.streamId, now);
        await write(result, ctx.streamId, ctx.frame, face);
      },
      stats: () => ({ ...count }),
    };
  },
});
