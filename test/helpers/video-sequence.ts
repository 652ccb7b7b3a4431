// Camera-like video made with ffmpeg from real faces: a collage of face tiles (face-api demo photo crops and UTKFace
// photos from ../shared/data), some walking (overlay), filmed by a virtual camera that pans and zooms over it (zoompan)
// while a bar passes in front of one face (drawbox), encoded as H.264 (real compression artefacts) and decoded back to RGB frames. The
// ground truth per frame comes from the same camera path, evaluated here the way zoompan evaluates it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeImage, encodePng, resizeRgb, type RgbImage } from '../../src/core/image.js';
import { defaultDataRoot } from '../../src/train/datasets/common.js';
import { demoPhoto } from './faces.js';
import { demoFaceImage, pasteImage, type Rect, type SequenceFrame } from './track-sequence.js';

const run = promisify(execFile);

/** One face tile in the collage: top-left corner `at` (collage pixels) at frame 0. */
export interface CollageFace {
  name: string;
  face: RgbImage;
  at: { x: number; y: number };
  /**
   * Whole collage pixels per frame: a walking face, laid over the collage by ffmpeg's overlay at at + n * velocity.
   * Default: still (pasted into the collage).
   */
  velocity?: { x: number; y: number };
  /** Frames [first, last] (inclusive, as ffmpeg's between()) in which a bar covers the tile (still faces only). */
  occluded?: [number, number];
}

const walks = (t: CollageFace): boolean => t.velocity !== undefined && (t.velocity.x !== 0 || t.velocity.y !== 0);

/** Top-left corner of a tile at frame n, in collage pixels. */
export function tileAt(t: CollageFace, n: number): { x: number; y: number } {
  return walks(t) ? { x: t.at.x + t.velocity!.x * n, y: t.at.y + t.velocity!.y * n } : t.at;
}

/**
 * The virtual camera: zoom(n) = zoomBase + zoomSwing * sin(pi f), with f = n / (frames - 1); the window centre moves in
 * a straight line from `from` to `to` (collage pixels) plus a vertical bob of bobPx * sin(2 pi f).
 */
export interface CameraPath {
  frames: number;
  zoomBase: number;
  zoomSwing: number;
  from: { x: number; y: number };
  to: { x: number; y: number };
  bobPx: number;
}

export interface VideoSpec {
  collage: { width: number; height: number };
  faces: readonly CollageFace[];
  camera: CameraPath;
  output: { width: number; height: number; fps: number };
  /** libx264 constant rate factor: higher = more compression artefacts. */
  crf: number;
}

export interface VideoFrame extends SequenceFrame {
  /** Tiles at least partly in view and not occluded, in frame pixels (clipped to the frame): who a detection is. */
  visible: { person: string; region: Rect }[];
  /** The camera window in collage pixels, as zoompan cut it. */
  window: Rect;
}

const num = (v: number): string => `(${v})`;

/** zoompan's z, x and y expressions for the path (`on` is the output frame number). */
export function cameraExpressions(p: CameraPath): { z: string; x: string; y: string } {
  const f = `(on/${p.frames - 1})`;
  return {
    z: `${num(p.zoomBase)}+${num(p.zoomSwing)}*sin(PI*${f})`,
    x: `${num(p.from.x)}+${num(p.to.x - p.from.x)}*${f}-iw/zoom/2`,
    y: `${num(p.from.y)}+${num(p.to.y - p.from.y)}*${f}+${num(p.bobPx)}*sin(2*PI*${f})-ih/zoom/2`,
  };
}

/**
 * The window zoompan cuts at frame n (FFmpeg 5.1 vf_zoompan.c): zoom clipped to [1, 10], size truncated to whole
 * pixels, position clipped into the picture and truncated (RGB input: no chroma alignment).
 */
export function cameraWindow(p: CameraPath, collage: { width: number; height: number }, n: number): Rect {
  const f = n / (p.frames - 1);
  const zoom = Math.min(10, Math.max(1, p.zoomBase + p.zoomSwing * Math.sin(Math.PI * f)));
  const width = Math.trunc(collage.width / zoom);
  const height = Math.trunc(collage.height / zoom);
  const x = p.from.x + (p.to.x - p.from.x) * f - collage.width / zoom / 2;
  const y = p.from.y + (p.to.y - p.from.y) * f + p.bobPx * Math.sin(2 * Math.PI * f) - collage.height / zoom / 2;
  const clip = (v: number, max: number): number => Math.trunc(Math.min(Math.max(v, 0), Math.max(max, 0)));
  return { x: clip(x, collage.width - width), y: clip(y, collage.height - height), width, height };
}

/** Ground truth of frame n: every tile mapped into frame pixels; present = fully inside and not occluded. */
export function groundTruth(spec: VideoSpec, n: number): Omit<VideoFrame, 'image'> {
  const window = cameraWindow(spec.camera, spec.collage, n);
  const sx = spec.output.width / window.width;
  const sy = spec.output.height / window.height;
  const truth: VideoFrame['truth'] = [];
  const visible: VideoFrame['visible'] = [];
  for (const t of spec.faces) {
    if (t.occluded && n >= t.occluded[0] && n <= t.occluded[1]) continue;
    const at = tileAt(t, n);
    const x0 = (at.x - window.x) * sx;
    const y0 = (at.y - window.y) * sy;
    const x1 = (at.x + t.face.width - window.x) * sx;
    const y1 = (at.y + t.face.height - window.y) * sy;
    const region = { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
    if (x0 >= 0 && y0 >= 0 && x1 <= spec.output.width && y1 <= spec.output.height) truth.push({ person: t.name, region });
    const cx0 = Math.max(0, x0);
    const cy0 = Math.max(0, y0);
    const cx1 = Math.min(spec.output.width, x1);
    const cy1 = Math.min(spec.output.height, y1);
    if (cx1 > cx0 && cy1 > cy0) visible.push({ person: t.name, region: { x: cx0, y: cy0, width: cx1 - cx0, height: cy1 - cy0 } });
  }
  return { truth, visible, window };
}

/** The collage: a heavily blurred demo photo as background (no face survives the blur) with the still tiles pasted. */
export async function renderCollage(spec: VideoSpec, backgroundPhoto = 2): Promise<RgbImage> {
  const tiny = await resizeRgb(await demoPhoto(backgroundPhoto), 16, 9);
  const canvas = await resizeRgb(tiny, spec.collage.width, spec.collage.height);
  for (const t of spec.faces) if (!walks(t)) pasteImage(canvas, t.face, t.at);
  return canvas;
}

/**
 * The ffmpeg filter graph over inputs [0] (collage) and [1..] (the walking tiles, in spec order): the walkers laid over
 * the collage at at + n * velocity, bars (between(n,a,b)), then the camera; output [video].
 */
export function videoFilter(spec: VideoSpec): string {
  const walkers = spec.faces.filter(walks);
  const chain = ['[0:v]format=rgb24[s0]'];
  walkers.forEach((t, k) => {
    // The frame number from the timestamp: overlay's own n counts from 1 (FFmpeg 5.1 reads frame_count_out after the take).
    const frame = `round(t*${spec.output.fps})`;
    const x = `${num(t.at.x)}+${num(t.velocity!.x)}*${frame}`;
    const y = `${num(t.at.y)}+${num(t.velocity!.y)}*${frame}`;
    chain.push(`[s${k}][${k + 1}:v]overlay=x='${x}':y='${y}':eval=frame:format=rgb[s${k + 1}]`);
  });
  const bars = spec.faces
    .filter((t) => t.occluded)
    .map((t) => {
      if (walks(t)) throw new Error(`face ${t.name}: only still faces can be hidden by a bar`);
      const [a, b] = t.occluded!;
      const margin = 12;
      const box = `x=${t.at.x - margin}:y=${t.at.y - margin}:w=${t.face.width + 2 * margin}:h=${t.face.height + 2 * margin}`;
      return `drawbox=${box}:color=0x505050:t=fill:enable='between(n,${a},${b})'`;
    });
  const e = cameraExpressions(spec.camera);
  const { width, height, fps } = spec.output;
  const camera = `zoompan=z='${e.z}':x='${e.x}':y='${e.y}':d=1:s=${width}x${height}:fps=${fps}`;
  chain.push(`[s${walkers.length}]${['format=rgb24', ...bars, camera].join(',')}[video]`);
  return chain.join(';');
}

/** Fails with a clear message when ffmpeg (with libx264) is missing. */
export async function checkFfmpeg(): Promise<void> {
  let encoders: string;
  try {
    encoders = (await run('ffmpeg', ['-hide_banner', '-encoders'], { maxBuffer: 4 << 20 })).stdout;
  } catch (e) {
    throw new Error('ffmpeg is needed for the video tests (Debian: apt-get install ffmpeg; .ci/run installs it)', { cause: e });
  }
  if (!/\blibx264\b/.test(encoders)) throw new Error('this ffmpeg has no libx264 encoder');
}

/** Encodes the video (H.264, yuv420p) and decodes it back to RGB frames with their ground truth. */
export async function makeVideo(spec: VideoSpec): Promise<{ frames: VideoFrame[]; videoBytes: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'kt-video-'));
  try {
    const videoPath = join(dir, 'camera.mp4');
    const stills = [await renderCollage(spec), ...spec.faces.filter(walks).map((t) => t.face)];
    const inputs: string[] = [];
    for (const [k, image] of stills.entries()) {
      const path = join(dir, `input${k}.png`);
      await writeFile(path, await encodePng(image));
      inputs.push('-loop', '1', '-framerate', String(spec.output.fps), '-i', path);
    }
    const quiet = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
    await run('ffmpeg', [
      ...quiet,
      ...inputs,
      ...['-filter_complex', videoFilter(spec), '-map', '[video]', '-frames:v', String(spec.camera.frames)],
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-crf', String(spec.crf), '-pix_fmt', 'yuv420p', '-y', videoPath],
    ]);
    const videoBytes = (await readFile(videoPath)).length;
    const { stdout } = await run('ffmpeg', [...quiet, '-i', videoPath, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
      encoding: 'buffer',
      maxBuffer: 1 << 30,
    });
    return { frames: splitFrames(spec, stdout), videoBytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function splitFrames(spec: VideoSpec, raw: Buffer): VideoFrame[] {
  const { width, height } = spec.output;
  const frameBytes = width * height * 3;
  if (raw.length !== frameBytes * spec.camera.frames)
    throw new Error(`ffmpeg decoded ${raw.length / frameBytes} frames of ${width}x${height}, expected ${spec.camera.frames}`);
  return Array.from({ length: spec.camera.frames }, (_, n) => ({
    image: { data: new Uint8Array(raw.subarray(n * frameBytes, (n + 1) * frameBytes)), width, height },
    ...groundTruth(spec, n),
  }));
}

/** Adult UTKFace photos (200x200, loose crops) from ../shared/data, or an empty list when the data is absent. */
export async function utkFaces(count: number, size: number): Promise<{ name: string; face: RgbImage }[]> {
  const root = join(defaultDataRoot(), 'age-utkface');
  if (!existsSync(join(root, 'labels.csv'))) return [];
  const rows = (await readFile(join(root, 'labels.csv'), 'utf8')).trim().split('\n').slice(1);
  const adults = rows.map((r) => r.split(',')).filter(([, age]) => Number(age) >= 25 && Number(age) <= 45);
  // Spread over the list so the people differ (the list is sorted by file name, i.e. by age).
  const picked = Array.from({ length: count }, (_, i) => adults[Math.floor(((i + 0.5) * adults.length) / count)]!);
  return Promise.all(
    picked.map(async ([file]) => ({
      name: `utk:${file!.replace(/^images\//, '').split('_')[0]}y`,
      face: await resizeRgb(await decodeImage(await readFile(join(root, file!))), size, size),
    })),
  );
}

/**
 * The scene of test/tracks-video.test.ts, 60 frames of 640x360 at 10 frames/s: six people on a 1920x1080 collage (tiles
 * of `tileSize` px). The camera pans left to right (zoom 2 -> 2.8 -> 2, a small vertical bob), so A and B leave on the
 * left, D and E enter on the right, C is hidden by a bar in frames 24..27, and W walks up between C and D (16 collage px
 * per frame) against the pan: it enters from the bottom and leaves at the top.
 */
export async function panZoomScene(tileSize = 200): Promise<VideoSpec> {
  const utk = await utkFaces(3, tileSize);
  if (utk.length === 0) console.warn(`panZoomScene: ${join(defaultDataRoot(), 'age-utkface')} is absent; using demo photo faces only`);
  const demo = (photo: number): Promise<{ name: string; face: RgbImage }> =>
    demoFaceImage(photo, 0, tileSize).then((face) => ({ name: `demo${photo}`, face }));
  const utkOr = (k: number, photo: number): Promise<{ name: string; face: RgbImage }> => (utk[k] ? Promise.resolve(utk[k]) : demo(photo));
  const [a, b, c, d, e, w] = await Promise.all([demo(1), utkOr(0, 2), demo(3), utkOr(1, 4), demo(6), utkOr(2, 5)]);
  return {
    collage: { width: 1920, height: 1080 },
    faces: [
      { ...a, at: { x: 60, y: 390 } },
      { ...b, at: { x: 480, y: 500 } },
      { ...c, at: { x: 900, y: 380 }, occluded: [24, 27] },
      { ...d, at: { x: 1320, y: 500 } },
      { ...e, at: { x: 1640, y: 390 } },
      { ...w, name: `${w.name} walking`, at: { x: 1110, y: 1150 }, velocity: { x: 0, y: -16 } },
    ],
    camera: { frames: 60, zoomBase: 2, zoomSwing: 0.8, from: { x: 480, y: 540 }, to: { x: 1440, y: 540 }, bobPx: 30 },
    output: { width: 640, height: 360, fps: 10 },
    crf: 28,
  };
}
