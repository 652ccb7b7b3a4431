// Identity evaluation behind `kt models eval --task identity`: verification pairs (CV accuracy, ROC AUC, TAR at FAR),
// gallery identification, per embedding model aligned and not, through the serving path (detect, crop/align, model).
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, NotFoundError, errorMessage } from '../../core/errors.js';
import { decodeImage, type RgbImage } from '../../core/image.js';
import { runFaceModel, type AlignMode } from '../aligned-run.js';
import type { IdentityCalibration } from '../manifest.js';
import type { DetectedFace, Point } from '../processing/index.js';
import { resampleRegion } from '../processing/crop.js';
import { readManifest, resolveModel } from '../repository.js';
import { runTaskModel, type LoadedModel } from '../runner.js';
import { quantile, seededRandom } from './bootstrap.js';
import type { EvalContext, EvalMetric, EvalResult, PairedSamples } from './types.js';

/** FARs reported. */
export const IDENTITY_FARS = [0.001, 0.01] as const;
/**
 * The FAR a calibrated threshold is stored at. 1 %, not 0.1 %: ORL's genuine pairs (one session, even light) are far
 * more alike than a camera's, so a threshold at FAR 0.1 % on ORL rejects many genuine in-the-wild pairs (the outside
 * measurement of faceres at 0.6 did); 1 % per comparison suits a home gallery of tens of people.
 */
export const CALIBRATION_FAR = 0.01;
/** Folds of the cross-validated verification threshold (split by subject). */
const FOLDS = 10;

export interface IdentityImage {
  file: string;
  subject: string;
}

/** labels.csv (file, subject_id) of an identity dataset; with `limit`, a seeded sample of whole subjects. */
export async function readIdentityLabels(path: string, limit?: number, seed = 1): Promise<IdentityImage[]> {
  let text: string;
  try {
    text = await readFile(join(path, 'labels.csv'), 'utf8');
  } catch (e) {
    throw new NotFoundError(`identity dataset ${path}: no labels.csv (file,subject_id) readable: ${errorMessage(e)}`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const fileCol = header.indexOf('file');
  const subjectCol = header.findIndex((h) => h === 'subject_id' || h === 'subject');
  if (fileCol < 0 || subjectCol < 0)
    throw new InvalidInputError(`identity dataset ${path}/labels.csv needs the columns file and subject_id, has ${header.join(', ')}`);
  const images = lines.slice(1).map((l) => {
    const cells = l.split(',');
    return { file: cells[fileCol]!.trim(), subject: cells[subjectCol]!.trim() };
  });
  const subjects = [...new Set(images.map((i) => i.subject))];
  if (subjects.length < 2)
    throw new InvalidInputError(`identity dataset ${path}: needs at least 2 subjects, labels.csv has ${subjects.length}`);
  if (limit === undefined || limit >= images.length) return images;
  const random = seededRandom(seed);
  const order = subjects.map((s) => ({ s, r: random() })).sort((a, b) => a.r - b.r);
  const keep = new Set<string>();
  let count = 0;
  for (const { s } of order) {
    if (count >= limit && keep.size >= 2) break;
    keep.add(s);
    count += images.filter((i) => i.subject === s).length;
  }
  return images.filter((i) => keep.has(i.subject));
}

/**
 * A dataset photo as a camera frame: ORL's 92x112 photos are filled by the face, too tight for the detector's
 * anchors, so the photo sits at its own scale in the middle of a mid-grey frame twice its longer side.
 */
export function identityFrame(photo: RgbImage): RgbImage {
  const side = 2 * Math.max(photo.width, photo.height);
  const region = { x: (photo.width - side) / 2, y: (photo.height - side) / 2, width: side, height: side };
  return resampleRegion(photo, region, side, side, { fill: [128, 128, 128], antialias: false });
}

/** One verification pair of detected faces (indices into the face list). */
interface Pair {
  i: number;
  j: number;
  genuine: boolean;
}

/** Cosine similarity of L2-normalised vectors. */
const dot = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
};

function l2(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const inv = 1 / Math.sqrt(n || 1);
  return Float32Array.from(v, (x) => x * inv);
}

/** Every pair of faces: all genuine pairs and all impostor pairs (the set is small: 400 faces give 79,800 pairs). */
function allPairs(subjects: readonly string[]): Pair[] {
  const pairs: Pair[] = [];
  for (let i = 0; i < subjects.length; i++)
    for (let j = i + 1; j < subjects.length; j++) pairs.push({ i, j, genuine: subjects[i] === subjects[j] });
  return pairs;
}

/** Subject weights of one bootstrap resample (subjects drawn with replacement: weight = times drawn). */
function subjectWeights(count: number, random: () => number): Float64Array {
  const w = new Float64Array(count);
  for (let k = 0; k < count; k++) w[Math.floor(random() * count)]! += 1;
  return w;
}

interface Scored {
  /** Pair scores, descending, with genuine flags and the two subject indices (for weighted resamples). */
  score: Float64Array;
  genuine: Uint8Array;
  sa: Int32Array;
  sb: Int32Array;
}

function sortPairs(pairs: readonly Pair[], scores: readonly number[], subjectIndex: readonly number[]): Scored {
  const order = scores.map((_, k) => k).sort((x, y) => scores[y]! - scores[x]!);
  return {
    score: Float64Array.from(order, (k) => scores[k]!),
    genuine: Uint8Array.from(order, (k) => (pairs[k]!.genuine ? 1 : 0)),
    sa: Int32Array.from(order, (k) => subjectIndex[pairs[k]!.i]!),
    sb: Int32Array.from(order, (k) => subjectIndex[pairs[k]!.j]!),
  };
}

/**
 * ROC AUC and TAR at each FAR of weighted pairs (weight of a genuine pair: its subject's weight; of an impostor pair:
 * the product of its two subjects' weights, as if the drawn subjects were a new dataset). All-ones: the plain figures.
 * The threshold at FAR f is the lowest score that accepts at most f of the impostor weight.
 */
function rocFigures(s: Scored, w: Float64Array | undefined, fars: readonly number[]): { auc: number; tar: number[]; thr: number[] } {
  const n = s.score.length;
  const weight = (k: number): number => (w === undefined ? 1 : s.genuine[k] ? w[s.sa[k]!]! : w[s.sa[k]!]! * w[s.sb[k]!]!);
  let gTotal = 0;
  let iTotal = 0;
  for (let k = 0; k < n; k++) {
    if (s.genuine[k]) gTotal += weight(k);
    else iTotal += weight(k);
  }
  let g = 0;
  let im = 0;
  let aucSum = 0;
  const tar = fars.map(() => NaN);
  const thr = fars.map(() => NaN);
  for (let k = 0; k < n;) {
    // A run of equal scores is accepted or rejected together.
    let gRun = 0;
    let iRun = 0;
    const value = s.score[k]!;
    for (; k < n && s.score[k] === value; k++) {
      if (s.genuine[k]) gRun += weight(k);
      else iRun += weight(k);
    }
    aucSum += iRun * (g + gRun / 2);
    fars.forEach((f, q) => {
      if (Number.isNaN(tar[q]!) && (im + iRun) / iTotal > f) {
        tar[q] = (g / gTotal) * 100;
        thr[q] = value + 1e-6; // this run of scores is rejected, everything above it accepted
      }
    });
    g += gRun;
    im += iRun;
  }
  fars.forEach((_, q) => {
    if (Number.isNaN(tar[q]!)) [tar[q], thr[q]] = [100, s.score[n - 1]!];
  });
  return { auc: gTotal > 0 && iTotal > 0 ? aucSum / (gTotal * iTotal) : NaN, tar, thr };
}

/** The threshold with the best accuracy on balanced pairs (midpoints between sorted scores). */
function bestThreshold(scores: readonly number[], genuine: readonly boolean[]): number {
  const order = scores.map((_, k) => k).sort((a, b) => scores[b]! - scores[a]!);
  const impostors = genuine.filter((g) => !g).length;
  let correct = impostors; // threshold above every score: all rejected
  let best = correct;
  let bestThr = scores[order[0]!]! + 1e-6;
  for (let r = 0; r < order.length; r++) {
    correct += genuine[order[r]!] ? 1 : -1;
    const next = r + 1 < order.length ? scores[order[r + 1]!]! : scores[order[r]!]! - 1e-6;
    if (correct > best) [best, bestThr] = [correct, (scores[order[r]!]! + next) / 2];
  }
  return bestThr;
}

/**
 * Verification accuracy on balanced pairs (all genuine pairs, as many seeded impostor pairs) with a threshold chosen
 * on the other folds: subjects are split in FOLDS folds; a pair belongs to the fold of its first subject and is
 * tested with the threshold fitted on pairs touching none of that fold's subjects. Returns 1/0 per balanced pair.
 */
function crossValidatedAccuracy(
  pairs: readonly Pair[],
  scores: readonly number[],
  subjectIndex: readonly number[],
  subjectCount: number,
  seed: number,
): { correct: number[]; pairIds: number[]; thresholds: number[] } {
  const random = seededRandom(seed);
  const genuineIds = pairs.flatMap((p, k) => (p.genuine ? [k] : []));
  const impostorIds = pairs.flatMap((p, k) => (p.genuine ? [] : [k]));
  for (let k = impostorIds.length - 1; k > 0; k--) {
    const r = Math.floor(random() * (k + 1));
    [impostorIds[k], impostorIds[r]] = [impostorIds[r]!, impostorIds[k]!];
  }
  const pairIds = [...genuineIds, ...impostorIds.slice(0, genuineIds.length)].sort((a, b) => a - b);
  const foldOfSubject = Array.from({ length: subjectCount }, (_, s) => s % FOLDS);
  const folds = (k: number): [number, number] => [foldOfSubject[subjectIndex[pairs[k]!.i]!]!, foldOfSubject[subjectIndex[pairs[k]!.j]!]!];
  const correct = new Array<number>(pairIds.length).fill(0);
  const thresholds: number[] = [];
  for (let f = 0; f < Math.min(FOLDS, subjectCount); f++) {
    const train = pairIds.filter((k) => !folds(k).includes(f));
    const thr = bestThreshold(
      train.map((k) => scores[k]!),
      train.map((k) => pairs[k]!.genuine),
    );
    thresholds.push(thr);
    pairIds.forEach((k, idx) => {
      if (folds(k)[0] === f) correct[idx] = scores[k]! >= thr === pairs[k]!.genuine ? 1 : 0;
    });
  }
  return { correct, pairIds, thresholds };
}

/** Closed-set rank-1 identification: each subject's first face is the gallery, the others are probes. */
function galleryRank1(
  vectors: readonly Float32Array[],
  subjects: readonly string[],
  threshold: number,
): { rank1: number[]; dir: number[]; probeSubject: string[] } {
  const galleryIdx = new Map<string, number>();
  subjects.forEach((s, k) => {
    if (!galleryIdx.has(s)) galleryIdx.set(s, k);
  });
  const gallery = [...galleryIdx.entries()];
  const rank1: number[] = [];
  const dir: number[] = [];
  const probeSubject: string[] = [];
  subjects.forEach((s, k) => {
    if (galleryIdx.get(s) === k) return;
    let best = -Infinity;
    let who = '';
    for (const [gs, gk] of gallery) {
      const sim = dot(vectors[k]!, vectors[gk]!);
      if (sim > best) [best, who] = [sim, gs];
    }
    rank1.push(who === s ? 1 : 0);
    dir.push(who === s && best >= threshold ? 1 : 0);
    probeSubject.push(s);
  });
  return { rank1, dir, probeSubject };
}

const meanOf = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / (v.length || 1);

/** Percentile 95 % interval over subject resamples of a per-resample statistic. */
function subjectBootstrap(
  subjectCount: number,
  ctx: Pick<EvalContext, 'bootstrap' | 'seed'>,
  stat: (w: Float64Array) => number,
): [number, number] {
  const random = seededRandom(ctx.seed + 7);
  const values: number[] = [];
  for (let b = 0; b < ctx.bootstrap; b++) {
    const v = stat(subjectWeights(subjectCount, random));
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  return values.length ? [quantile(values, 0.025), quantile(values, 0.975)] : [NaN, NaN];
}

/** Mean of per-item values weighted by their subject's resample weight. */
const weightedMean = (values: readonly number[], subjectOf: readonly number[], w: Float64Array): number => {
  let s = 0;
  let n = 0;
  values.forEach((v, k) => {
    s += v * w[subjectOf[k]!]!;
    n += w[subjectOf[k]!]!;
  });
  return n > 0 ? s / n : NaN;
};

interface Embedded {
  vectors: Float32Array[];
  msPerFace: number;
}

/** How a variant crops: the box, the detector's keypoints, or landmarks68's refined eye, nose and mouth points. */
export type IdentityVariant = 'unaligned' | 'aligned' | 'aligned-lm68';

const meanPoint = (points: readonly Point[], from: number, to: number): Point => {
  const ps = points.slice(from, to + 1);
  return { x: ps.reduce((s, p) => s + p.x, 0) / ps.length, y: ps.reduce((s, p) => s + p.y, 0) / ps.length };
};

/** The 4 alignment points (BlazeFace order) from 68 iBUG landmarks: eye centres 36-41 / 42-47, nose tip 30, inner lip 60-67. */
async function landmarkKeypoints(landmarks: LoadedModel, frame: RgbImage, face: DetectedFace): Promise<DetectedFace> {
  const out = (await runTaskModel(landmarks, frame, [face])).decoded[0]!.find((d) => d.type === 'landmarks');
  if (out?.type !== 'landmarks' || out.points.length !== 68) return face;
  const p = out.points;
  return { ...face, keypoints: [meanPoint(p, 36, 41), meanPoint(p, 42, 47), p[30]!, meanPoint(p, 60, 67)] };
}

/** Embeds each detected face (batch of 1, timed: [landmarks +] crop or alignment + model + decode). */
async function embedFaces(
  model: LoadedModel,
  frames: readonly RgbImage[],
  faces: readonly DetectedFace[],
  variant: IdentityVariant,
  landmarks?: LoadedModel,
): Promise<Embedded> {
  const vectors: Float32Array[] = [];
  let ms = 0;
  const align: AlignMode = variant === 'unaligned' ? 'none' : '5point';
  for (let k = 0; k < faces.length; k++) {
    const started = performance.now();
    const face = variant === 'aligned-lm68' && landmarks ? await landmarkKeypoints(landmarks, frames[k]!, faces[k]!) : faces[k]!;
    const run = await runFaceModel(model, frames[k]!, [face], align);
    ms += performance.now() - started;
    const out = run.decoded[0]!.find((d) => d.type === 'embedding');
    if (!out || out.type !== 'embedding') throw new InvalidInputError(`model ${model.manifest.name} has no embedding output`);
    vectors.push(l2(out.vector));
  }
  return { vectors, msPerFace: faces.length ? ms / faces.length : NaN };
}

interface DetectedSet {
  frames: RgbImage[];
  faces: DetectedFace[];
  subjects: string[];
  files: string[];
  total: number;
}

async function detectAll(ctx: EvalContext, images: readonly IdentityImage[]): Promise<DetectedSet> {
  const set: DetectedSet = { frames: [], faces: [], subjects: [], files: [], total: images.length };
  for (let k = 0; k < images.length; k++) {
    const img = images[k]!;
    let photo: RgbImage;
    try {
      photo = await decodeImage(await readFile(join(ctx.dataPath, img.file)));
    } catch (e) {
      throw new InvalidInputError(`identity dataset ${ctx.dataPath}: cannot read ${img.file}: ${errorMessage(e)}`);
    }
    const frame = identityFrame(photo);
    const face = (await ctx.detect(frame))[0];
    if (face) {
      set.frames.push(frame);
      set.faces.push(face);
      set.subjects.push(img.subject);
      set.files.push(img.file);
    }
    if ((k + 1) % 100 === 0 || k + 1 === images.length) ctx.progress(`identity: detected ${set.faces.length}/${k + 1} faces`);
  }
  return set;
}

/** Everything measured for one model and alignment. */
export interface IdentityScores {
  result: EvalResult;
  calibration: IdentityCalibration;
}

function metric(name: string, value: number, ci95: [number, number] | undefined, unit = '%'): EvalMetric {
  return { name, value, ...(ci95 ? { ci95 } : {}), unit, higherIsBetter: true };
}

/** The verification and identification figures of one embedding set. */
function scoreEmbeddings(
  ctx: EvalContext,
  set: DetectedSet,
  vectors: readonly Float32Array[],
): {
  metrics: EvalMetric[];
  details: Record<string, unknown>;
  calibration: Omit<IdentityCalibration, 'align' | 'date' | 'dataset'>;
  paired: PairedSamples;
} {
  const subjectNames = [...new Set(set.subjects)];
  const subjectIndex = set.subjects.map((s) => subjectNames.indexOf(s));
  const pairs = allPairs(set.subjects);
  const scores = pairs.map((p) => dot(vectors[p.i]!, vectors[p.j]!));
  const sorted = sortPairs(pairs, scores, subjectIndex);
  const plain = rocFigures(sorted, undefined, IDENTITY_FARS);
  const cv = crossValidatedAccuracy(pairs, scores, subjectIndex, subjectNames.length, ctx.seed);
  const cvSubject = cv.pairIds.map((k) => subjectIndex[pairs[k]!.i]!);
  const accuracy = meanOf(cv.correct) * 100;
  const rocCi = (pick: (r: ReturnType<typeof rocFigures>) => number): [number, number] =>
    subjectBootstrap(subjectNames.length, ctx, (w) => pick(rocFigures(sorted, w, IDENTITY_FARS)));
  const gallery = galleryRank1(vectors, set.subjects, plain.thr[0]!);
  const probeSubject = gallery.probeSubject.map((s) => subjectNames.indexOf(s));
  const metrics = [
    metric(
      'accuracy',
      accuracy,
      subjectBootstrap(subjectNames.length, ctx, (w) => weightedMean(cv.correct, cvSubject, w) * 100),
    ),
    metric(
      'roc_auc',
      plain.auc * 100,
      rocCi((r) => r.auc * 100),
    ),
    metric(
      'tar_at_far_0.1%',
      plain.tar[0]!,
      rocCi((r) => r.tar[0]!),
    ),
    metric(
      'tar_at_far_1%',
      plain.tar[1]!,
      rocCi((r) => r.tar[1]!),
    ),
    metric(
      'rank1',
      meanOf(gallery.rank1) * 100,
      subjectBootstrap(subjectNames.length, ctx, (w) => weightedMean(gallery.rank1, probeSubject, w) * 100),
    ),
    metric(
      'dir_at_far_0.1%',
      meanOf(gallery.dir) * 100,
      subjectBootstrap(subjectNames.length, ctx, (w) => weightedMean(gallery.dir, probeSubject, w) * 100),
    ),
  ];
  const genuineCount = pairs.filter((p) => p.genuine).length;
  return {
    metrics,
    details: {
      pairs: { genuine: genuineCount, impostor: pairs.length - genuineCount, balancedForAccuracy: cv.correct.length },
      thresholdAtFar: Object.fromEntries(IDENTITY_FARS.map((f, q) => [`${f * 100}%`, Number(plain.thr[q]!.toFixed(4))])),
      cvThresholds: cv.thresholds.map((t) => Number(t.toFixed(4))),
      galleryProbes: gallery.rank1.length,
    },
    calibration: {
      threshold: Math.ceil(plain.thr[IDENTITY_FARS.indexOf(CALIBRATION_FAR)]! * 1e4) / 1e4,
      far: CALIBRATION_FAR,
      pairs: pairs.length,
    },
    paired: {
      metric: 'accuracy',
      ids: cv.pairIds.map((k) => `${set.files[pairs[k]!.i]}|${set.files[pairs[k]!.j]}`),
      clusters: cvSubject.map((s) => subjectNames[s]!),
      values: cv.correct.map((c) => c * 100), // percent, so that their mean is the accuracy metric
    },
  };
}

/**
 * Scores each embedding model unaligned (the box crop) and 5-point aligned (and, with `variants`, aligned on
 * landmarks68's points), with the calibrated threshold (at CALIBRATION_FAR on all impostor pairs) of each.
 */
export async function scoreIdentity(
  ctx: EvalContext,
  models: string[],
  variants: readonly IdentityVariant[] = ['unaligned', 'aligned'],
): Promise<IdentityScores[]> {
  const images = await readIdentityLabels(ctx.dataPath, ctx.limit, ctx.seed);
  const set = await detectAll(ctx, images);
  if (new Set(set.subjects).size < 2)
    throw new InvalidInputError(`identity dataset ${ctx.dataPath}: faces of fewer than 2 subjects were detected`);
  const out: IdentityScores[] = [];
  const landmarks = variants.includes('aligned-lm68') ? await ctx.load('landmarks68') : undefined;
  for (const name of models) {
    const model = await ctx.load(name);
    for (const variant of variants) {
      const { vectors, msPerFace } = await embedFaces(model, set.frames, set.faces, variant, landmarks);
      const s = scoreEmbeddings(ctx, set, vectors);
      const align = variant === 'unaligned' ? 'none' : '5point';
      // The way the server runs the model (its manifest's input.align) is the plain row; the other crops are variants.
      const served = align === (model.manifest.input.align ?? 'none');
      ctx.progress(
        `identity: ${name} ${variant}: ${s.metrics.map((m) => `${m.name} ${m.value.toFixed(2)}`).join(', ')}; ${msPerFace.toFixed(1)} ms/face`,
      );
      const date = new Date().toISOString();
      out.push({
        result: {
          task: 'identity',
          dataset: ctx.dataset,
          model: name,
          version: model.manifest.version,
          ...(served ? {} : { variant }),
          n: s.paired.values.length,
          total: set.total,
          metrics: s.metrics,
          ciMethod: 'bootstrap-subject',
          msPerFace,
          paired: s.paired,
          details: {
            ...s.details,
            facesDetected: set.faces.length,
            align,
            calibration: { ...s.calibration, dataset: ctx.dataset, align, date },
          },
          notes: [
            `${set.faces.length}/${set.total} photos had a detected face; verification uses every pair of them (accuracy: all genuine pairs + as many seeded impostor pairs, threshold by ${FOLDS}-fold CV split by subject).`,
            'TAR at FAR and AUC (in %) use all pairs; CIs resample subjects (impostor pairs weighted by both subjects).',
            `${name} without a variant is how the server runs it: ${model.manifest.input.align === '5point' ? '5-point aligned' : 'box crop'}.`,
          ],
        },
        calibration: { ...s.calibration, dataset: ctx.dataset, align, date },
      });
    }
  }
  return out;
}

/**
 * Stores each model's calibrated identity threshold (at CALIBRATION_FAR) in its model.json `identity`, from the result of the
 * variant the model is served with (aligned when its manifest asks for 5-point alignment). The server then uses it
 * when `identityThreshold` is not configured. Returns the lines it wrote, for the report.
 */
export async function writeIdentityCalibrations(repo: string, results: readonly EvalResult[]): Promise<string[]> {
  const lines: string[] = [];
  for (const name of [...new Set(results.map((r) => r.model))]) {
    const entry = await resolveModel(name, undefined, repo);
    const served = entry.manifest.input.align ?? 'none';
    const result = results.find((r) => r.model === name && (r.details?.['align'] ?? 'none') === served);
    const calibration = result?.details?.['calibration'] as IdentityCalibration | undefined;
    if (!calibration) continue;
    const path = join(entry.dir, 'model.json');
    const before = await readFile(path, 'utf8');
    const next = { ...(JSON.parse(before) as Record<string, unknown>), identity: calibration };
    await writeFile(`${path}.tmp`, `${JSON.stringify(next, null, 2)}\n`);
    await rename(`${path}.tmp`, path);
    try {
      await readManifest(entry.dir);
    } catch (e) {
      await writeFile(path, before);
      throw e;
    }
    lines.push(
      `${name}: identity threshold ${calibration.threshold} at FAR ${calibration.far * 100} % (${calibration.dataset}, ${served === '5point' ? 'aligned' : 'unaligned'})`,
    );
  }
  return lines;
}

/** `kt models eval --task identity`: one result per model and alignment (see scoreIdentity). */
export async function evaluateIdentity(ctx: EvalContext, models: string[]): Promise<EvalResult[]> {
  return (await scoreIdentity(ctx, models)).map((s) => s.result);
}
