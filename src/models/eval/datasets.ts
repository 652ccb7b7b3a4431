// Readers of the shared labelled face sets for `kt models eval`: items with labels and clusters, and the frame the
// serving path sees for each (the photo itself, or a region of a scene around an annotated face).
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { decodeImage, type RgbImage } from '../../core/image.js';
import { InvalidInputError, NotFoundError, errorMessage } from '../../core/errors.js';
import { resampleRegion, type Point, type Rect } from '../processing/index.js';
import { seededRandom } from './bootstrap.js';
import type { CiMethod } from './types.js';

export interface EvalItem<L> {
  /** Stable id shared by every model's run (paired comparisons), e.g. the file path. */
  id: string;
  /** Bootstrap cluster: subject, source image or duplicate group; the id itself when nothing groups items. */
  cluster: string;
  /** Stratum for a limited sample (age decade, class): the sample keeps every stratum. */
  stratum: string;
  label: L;
}

/** What the serving path gets for one item: a frame, and where the labelled face is when the frame has several. */
export interface EvalFrame {
  frame: RgbImage;
  /** The labelled face's box in frame pixels (landmark box); absent: the detector's best face is the one. */
  target?: Rect;
  /** Labelled points moved into frame pixels (landmark sets). */
  points?: Point[];
}

export interface EvalDataset<L> {
  name: string;
  path: string;
  ciMethod: CiMethod;
  items: EvalItem<L>[];
  /** Frames are read lazily, one item at a time. */
  frame(item: EvalItem<L>): Promise<EvalFrame>;
  /** Dataset caveats for the report. */
  notes: string[];
}

export interface AgeGenderLabel {
  file: string;
  age: number;
  gender: 'male' | 'female';
}

export interface EmotionLabel {
  file: string;
  emotion: string;
}

export interface LandmarkLabel {
  image: string;
  /** WFLW-98 points in original image pixels. */
  points: Point[];
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new InvalidInputError(`${what}: no labels at ${path} (${errorMessage(e)})`);
  }
}

async function checkFolder(path: string): Promise<void> {
  try {
    if (!(await stat(path)).isDirectory()) throw new InvalidInputError(`dataset path ${path} is not a folder`);
  } catch (e) {
    if (e instanceof InvalidInputError) throw e;
    throw new NotFoundError(`dataset folder ${path} does not exist`);
  }
}

/** Rows of a headed CSV without quoted fields (the shared sets have none) as objects; missing columns are errors. */
export function parseCsv(text: string, required: readonly string[], where: string): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new InvalidInputError(`${where} is empty`);
  const header = lines[0]!.split(',').map((h) => h.trim());
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length) throw new InvalidInputError(`${where} has no column ${missing.join(', ')} (columns: ${header.join(', ')})`);
  if (lines.length === 1) throw new InvalidInputError(`${where} has a header but no labelled rows`);
  return lines.slice(1).map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(header.map((h, i) => [h, (cells[i] ?? '').trim()]));
  });
}

/**
 * A seeded sample of at most `limit` items that keeps every stratum (round robin over shuffled strata), so that a
 * short run still covers every age decade or class; all items in a seeded order without a limit.
 */
export function sampleItems<L>(items: readonly EvalItem<L>[], limit: number | undefined, seed: number): EvalItem<L>[] {
  const random = seededRandom(seed);
  const shuffled = [...items];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  if (limit === undefined || limit >= shuffled.length) return shuffled;
  const strata = new Map<string, EvalItem<L>[]>();
  for (const item of shuffled) {
    let s = strata.get(item.stratum);
    if (!s) strata.set(item.stratum, (s = []));
    s.push(item);
  }
  const queues = [...strata.values()];
  const out: EvalItem<L>[] = [];
  for (let round = 0; out.length < limit; round++) {
    for (const q of queues) if (round < q.length && out.length < limit) out.push(q[round]!);
  }
  return out;
}

const decodeFile = async (path: string): Promise<RgbImage> => decodeImage(await readFile(path));

/** age-utkface: labels.csv (file, age, gender 0 male / 1 female); loose 200 px crops fed as they are. No subject ids. */
export async function readAgeUtkface(path: string, limit: number | undefined, seed: number): Promise<EvalDataset<AgeGenderLabel>> {
  await checkFolder(path);
  const rows = parseCsv(await readText(join(path, 'labels.csv'), `dataset ${path}`), ['file', 'age', 'gender'], `${path}/labels.csv`);
  const items: EvalItem<AgeGenderLabel>[] = [];
  for (const r of rows) {
    const age = Number(r['age']);
    if (!r['file'] || !Number.isFinite(age) || (r['gender'] !== '0' && r['gender'] !== '1')) continue;
    const gender = r['gender'] === '0' ? 'male' : 'female';
    items.push({
      id: r['file'],
      cluster: r['file'],
      stratum: String(Math.min(8, Math.floor(age / 10))),
      label: { file: r['file'], age, gender },
    });
  }
  if (items.length === 0) throw new InvalidInputError(`${path}/labels.csv has no usable rows (file, age, gender 0/1)`);
  return {
    name: basename(path),
    path,
    ciMethod: 'bootstrap-item',
    items: sampleItems(items, limit, seed),
    frame: async (item) => ({ frame: await decodeFile(join(path, item.label.file)) }),
    notes: ['UTKFace has no subject ids: the bootstrap resamples faces.'],
  };
}

/**
 * emotion-fer2013: labels.csv (file, emotion). The 48 px grey crops are tight (no forehead or chin margin) and too
 * small for the detector's anchors, so each becomes a frame the way a camera would show it: the face scaled 2x in the
 * middle of a 4x-wide grey frame (192 px). Pixel-identical duplicates (pixel_duplicate_groups.csv) share one cluster.
 */
export async function readEmotionFer(path: string, limit: number | undefined, seed: number): Promise<EvalDataset<EmotionLabel>> {
  await checkFolder(path);
  const rows = parseCsv(await readText(join(path, 'labels.csv'), `dataset ${path}`), ['file', 'emotion'], `${path}/labels.csv`);
  const groups = await duplicateGroups(join(path, 'pixel_duplicate_groups.csv'));
  const items = rows
    .filter((r) => r['file'] && r['emotion'])
    .map((r) => ({
      id: r['file']!,
      cluster: groups.get(r['file']!) ?? r['file']!,
      stratum: r['emotion']!,
      label: { file: r['file']!, emotion: r['emotion']! },
    }));
  return {
    name: basename(path),
    path,
    ciMethod: groups.size ? 'bootstrap-duplicate-group' : 'bootstrap-item',
    items: sampleItems(items, limit, seed),
    frame: async (item) => ({ frame: paddedFrame(await decodeFile(join(path, item.label.file)), 2, 192) }),
    notes: ['FER2013 has no subject ids: the bootstrap resamples faces (pixel-identical duplicates together).'],
  };
}

/** group id per file of pixel_duplicate_groups.csv (any header with a group column and a file column); empty if absent. */
async function duplicateGroups(path: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return new Map();
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]?.split(',') ?? [];
  const groupCol = header.findIndex((h) => /group/i.test(h));
  const fileCol = header.findIndex((h) => /file/i.test(h));
  const out = new Map<string, string>();
  if (groupCol < 0 || fileCol < 0) return out;
  for (const line of lines.slice(1)) {
    const cells = line.split(',');
    if (cells[fileCol] && cells[groupCol]) out.set(cells[fileCol]!.trim(), `dup-${cells[groupCol]!.trim()}`);
  }
  return out;
}

/** The image scaled by `scale` in the middle of a `size` x `size` frame filled with mid grey. */
export function paddedFrame(image: RgbImage, scale: number, size: number): RgbImage {
  const w = size / scale;
  const region = { x: (image.width - w) / 2, y: (image.height - w) / 2, width: w, height: w };
  return resampleRegion(image, region, size, size, { fill: [128, 128, 128] });
}

/**
 * landmarks-wflw: annotations_98pt.txt (196 coordinates, 6 flags, image name). Each face's frame is the square region
 * of the scene twice the size of its landmark box (scenes have several faces, many too small for a 256 px detector on
 * the whole 1024 px scene); its points are moved into that region. Faces of one scene share a cluster.
 */
export async function readLandmarksWflw(path: string, limit: number | undefined, seed: number): Promise<EvalDataset<LandmarkLabel>> {
  await checkFolder(path);
  const text = await readText(join(path, 'annotations_98pt.txt'), `dataset ${path}`);
  const items: EvalItem<LandmarkLabel>[] = [];
  text.split(/\r?\n/).forEach((line, k) => {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 197 || line.trim().startsWith('#')) return;
    const coords = cells.slice(0, 196).map(Number);
    if (!coords.every(Number.isFinite)) return;
    const image = cells[cells.length - 1]!;
    const points = Array.from({ length: 98 }, (_, i) => ({ x: coords[2 * i]!, y: coords[2 * i + 1]! }));
    items.push({ id: `${image}#${k}`, cluster: image, stratum: cells[196] === '1' ? 'pose' : 'other', label: { image, points } });
  });
  if (items.length === 0)
    throw new InvalidInputError(`${path}/annotations_98pt.txt has no faces (196 coordinates, 6 flags, image name per line)`);
  return {
    name: basename(path),
    path,
    ciMethod: 'bootstrap-image',
    items: sampleItems(items, limit, seed),
    frame: async (item) => faceRegionFrame(await decodeFile(join(path, 'images', item.label.image)), item.label.points),
    notes: ['Every WFLW face here has a hard attribute (pose, expression, illumination, make-up, occlusion or blur).'],
  };
}

/** Bounding box of points. */
export function pointsBox(points: readonly Point[]): Rect {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}

/** The square scene region twice the landmark box's longer side around its centre, at scene resolution (<= 1024 px). */
function faceRegionFrame(scene: RgbImage, points: readonly Point[]): EvalFrame {
  const box = pointsBox(points);
  const side = 2 * Math.max(box.width, box.height, 8);
  const region = { x: box.x + box.width / 2 - side / 2, y: box.y + box.height / 2 - side / 2, width: side, height: side };
  const out = Math.max(64, Math.min(1024, Math.round(side)));
  const scale = out / side;
  const moved = points.map((p) => ({ x: (p.x - region.x) * scale, y: (p.y - region.y) * scale }));
  return { frame: resampleRegion(scene, region, out, out), target: pointsBox(moved), points: moved };
}
