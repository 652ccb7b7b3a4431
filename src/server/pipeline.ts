// The frame pipeline: decode once (a JPEG at the scales it is needed: shrink-on-load), detect once, then per model one
// batched run over crops of the decoded pixels.
import { InvalidInputError } from '../core/errors.js';
import type { RgbImage } from '../core/image.js';
import type { DecodedOutput, DetectedFace } from '../models/processing/index.js';
import { detectFaces, detectorSourceSize } from '../models/runner.js';
import type { IdentityGallery } from './gallery/store.js';
import { IdentityMatch, ModelRef, type Image } from '../gen/kt/v1/common.js';
import { Face, FrameResult, StageTimings, TaskTiming, type Frame } from '../gen/kt/v1/face_analysis.js';
import { enumOfTask } from '../contract/tasks.js';
import { manifestTaskOf, type AnalysisPlan } from './analysis-plan.js';
import type { ServerConfig, TaskName } from './config.js';
import { decodeFrameImage, decodedFramePixels, openFrameImage, timedDecodes, type FramePixels } from './frame-image.js';
import { cropSource, runOnPath, servingFramePath, type FramePath } from './frame-path.js';
import type { ModelLease, ModelRegistry } from './model-registry.js';
import type { PixelBudget } from './pixel-budget.js';

export { referenceFramePath, servingFramePath, type FramePath } from './frame-path.js';

export interface PipelineDeps {
  config: ServerConfig;
  registry: ModelRegistry;
  /** Absent: TASK_IDENTITY reports every face as unknown. */
  gallery: IdentityGallery | undefined;
  /** Decoded pixels across concurrent frames; absent: no budget. */
  pixelBudget?: PixelBudget;
  /** Hears every model run (the Prometheus metrics); absent: nothing is measured beyond the frame timings. */
  observer?: InferenceObserver;
  /** How frames become model inputs (frame-path.ts). Default servingFramePath (shrink-on-load, one-pass crops) with the config's cropEngine. */
  framePath?: FramePath;
}

/** Told about each model run: how long the frame waited before it started, and how long the run took. */
export interface InferenceObserver {
  modelRun(run: { model: string; version: number; queueMs: number; computeMs: number; ok: boolean }): void;
}

/** Detection limits of one call. */
export interface DetectLimits {
  minScore: number;
  maxFaces: number;
  minFaceSizePx: number;
}

/** An embedding with the model version that produced it (embeddings of different versions are not comparable). */
export interface FaceEmbedding {
  face: DetectedFace;
  vector: Float32Array;
  model: { name: string; version: number };
}

/** What a tracked stream adds to a frame's analysis (FramePipeline.analyzeSelected). */
export interface FrameTracking {
  /** Low-score faces from this score up to the plan's min score are detected too (they only keep tracks alive). */
  lowScore: number;
  /** Faces for a frame the detector skips (their motion predictions), or undefined to run the detector. */
  predict: () => DetectedFace[] | undefined;
  /** Per reported face, the tasks to run now. */
  /** `image` decodes the whole frame on first call (face snapshots need it; most frames do not). */
  select: (faces: DetectedFace[], low: DetectedFace[], image: () => Promise<RgbImage>) => Promise<ReadonlySet<TaskName>[]>;
}

/**
 * The embedding behind each TASK_IDENTITY answer of this process (not on the wire unless TASK_EMBEDDING is asked):
 * the tracker re-attaches faces to lost tracks by appearance with it.
 */
const identityEmbeddings = new WeakMap<Face, Float32Array>();

/** The embedding computed for a face's identity or embedding answer, if any. */
export function embeddingOf(face: Face): Float32Array | undefined {
  if (face.embedding && face.embedding.values.length > 0) return Float32Array.from(face.embedding.values);
  return identityEmbeddings.get(face);
}

const now = (): number => performance.now();

type TimedPixels = FramePixels & { decodeMs(): number };

/** The detector's faces on a frame (reported ones and low-score ones) and its time. */
interface Detection {
  faces: DetectedFace[];
  low: DetectedFace[];
  detectMs: number;
}

/** A frame's first stage (FramePipeline.prepare): its pixels and, when started ahead, its detection. */
export interface PreparedFrame {
  readonly start: number;
  readonly pixels: Promise<TimedPixels>;
  readonly detection: Promise<Detection> | undefined;
  /** The model leases (detector) and refs the frame holds so far. */
  readonly held: { leases: ModelLease[]; models: ModelRef[] };
  /** When the first stage ended (Infinity while it runs). */
  readyAt(): number;
  /** Waits for the first stage to end, then returns what it holds. Idempotent. */
  release(): Promise<void>;
}

/** The identity threshold when neither the request, the config nor the model's manifest (`identity.threshold`) sets one. */
export const FALLBACK_IDENTITY_THRESHOLD = 0.6;

export class FramePipeline {
  private readonly deps: PipelineDeps;
  private readonly path: FramePath;

  constructor(deps: PipelineDeps) {
    this.deps = deps;
    this.path = deps.framePath ?? { ...servingFramePath, cropEngine: deps.config.cropEngine };
  }

  /**
   * Decodes a wire image once (INVALID_ARGUMENT for anything malformed). The decode itself waits for its share of the
   * pixel budget; the share is returned when the decode ends (analyze() holds it until the frame is answered).
   */
  async decode(image: Image | undefined): Promise<RgbImage> {
    const pixels = this.deps.pixelBudget?.reservation();
    try {
      return await decodeFrameImage(image, this.deps.config.maxFramePixels, pixels?.reserve);
    } finally {
      pixels?.release();
    }
  }

  /**
   * Analyses one frame: every planned task on every reported face. Model versions are fixed when the frame starts
   * (leases), so a hot swap never changes a model in the middle of a frame; the old session lives until its last frame
   * is done. (Tracked streams call analyzeSelected, the one path both use.)
   */
  analyze(frame: Frame, plan: AnalysisPlan, queueMs = 0, prepared?: PreparedFrame): Promise<FrameResult> {
    return this.analyzeSelected(frame, plan, queueMs, undefined, prepared);
  }

  /** Faces in decoded pixels, best first, with the detection limits applied. */
  async detect(image: RgbImage, limits: DetectLimits): Promise<DetectedFace[]> {
    const detector = await this.deps.registry.acquire(this.deps.config.detectorModel);
    try {
      return await this.detectWith(detector, decodedFramePixels(image), limits);
    } finally {
      detector.release();
    }
  }

  /** Embeddings of the given faces with the identity model (one batched run, 5-point aligned when its manifest asks). */
  async embed(image: RgbImage, faces: readonly DetectedFace[]): Promise<FaceEmbedding[]> {
    if (faces.length === 0) return [];
    const lease = await this.deps.registry.acquire(this.deps.config.taskModels.identity);
    try {
      const source = { image, width: image.width, height: image.height };
      const run = await this.observed(lease, 0, () => runOnPath(this.path, lease.model, source, faces));
      return faces.map((face, i) => {
        const out = run.decoded[i]!.find((d) => d.type === 'embedding');
        if (!out || out.type !== 'embedding') throw new InvalidInputError(`model ${lease.name} has no embedding output`);
        return { face, vector: out.vector, model: { name: lease.name, version: lease.version } };
      });
    } finally {
      lease.release();
    }
  }

  /**
   * The identity threshold for embeddings of `model`: the request's (non-zero), else the config's `identityThreshold`
   * (non-zero), else the threshold calibrated for the model (model.json `identity.threshold`), else 0.6.
   */
  identityThreshold(model: { name: string; version: number }, requested = 0): number {
    if (requested) return requested;
    if (this.deps.config.identityThreshold) return this.deps.config.identityThreshold;
    let calibrated: number | undefined;
    try {
      calibrated = this.deps.registry.manifestFor(model.name, model.version).identity?.threshold;
    } catch {
      calibrated = undefined;
    }
    return calibrated ?? FALLBACK_IDENTITY_THRESHOLD;
  }

  /** Runs `work` on a model and tells the observer how long it took and whether it succeeded. */
  private async observed<T>(lease: ModelLease, queueMs: number, work: () => Promise<T>): Promise<T> {
    const { observer } = this.deps;
    if (!observer) return work();
    const started = now();
    let ok = false;
    try {
      const out = await work();
      ok = true;
      return out;
    } finally {
      observer.modelRun({ model: lease.name, version: lease.version, queueMs, computeMs: now() - started, ok });
    }
  }

  private async detectWith(detector: ModelLease, pixels: FramePixels, limits: DetectLimits, queueMs = 0): Promise<DetectedFace[]> {
    const { config } = this.deps;
    const overrides = {
      scoreThreshold: limits.minScore,
      iouThreshold: config.detectorIouThreshold,
      maxFaces: limits.maxFaces,
      ...(config.detectorInputSize > 0 ? { inputSize: config.detectorInputSize } : {}),
    };
    const size = detectorSourceSize(detector.model, pixels, overrides);
    const image = this.path.shrinkOnLoad ? await pixels.atLeast(size.width, size.height) : await pixels.full();
    const faces = await this.observed(detector, queueMs, () => detectFaces(detector.model, image, overrides, pixels));
    return faces
      .filter((f) => Math.min(f.box.width, f.box.height) >= limits.minFaceSizePx)
      .sort((a, b) => b.score - a.score)
      .slice(0, limits.maxFaces);
  }

  /** Copies one task's decoded output of one face into the wire Face. */
  private fill(face: Face, task: TaskName, decoded: DecodedOutput[], model: ModelRef, plan: AnalysisPlan): void {
    const wanted = manifestTaskOf[task];
    // facemesh answers 'mesh' twice (points and a face score): take the points.
    const out =
      decoded.find((d) => d.task === wanted && (task !== 'mesh' || d.type === 'landmarks')) ?? decoded.find((d) => d.task === wanted);
    if (!out) return;
    switch (task) {
      case 'age':
        if (out.type === 'age') face.age = { years: out.years };
        return;
      case 'gender':
        if (out.type === 'gender')
          face.gender = { label: out.value.gender, confidence: Math.max(out.value.probability, 1 - out.value.probability) };
        return;
      case 'emotion':
        if (out.type === 'classification') {
          const manifest = this.deps.registry.manifestFor(model.name, model.version);
          const decoding = manifest.outputs.find((o) => o.task === 'emotion')?.decoding;
          const order = decoding?.type === 'classification' ? decoding.labels : out.value.scores.map((s) => s.label);
          const byLabel = new Map(out.value.scores.map((s) => [s.label, s.score]));
          face.emotion = {
            label: out.value.label,
            confidence: out.value.score,
            scores: order.map((label) => ({ label, score: byLabel.get(label) ?? 0 })),
          };
        }
        return;
      case 'landmarks':
      case 'mesh':
        if (out.type === 'landmarks') {
          const value = { scheme: out.scheme, points: out.points.map((p) => ({ xPx: p.x, yPx: p.y, zPx: p.z ?? 0 })) };
          if (task === 'landmarks') face.landmarks = value;
          else face.mesh = value;
        }
        return;
      case 'embedding':
        if (out.type === 'embedding') face.embedding = { values: Array.from(out.vector), model };
        return;
      case 'identity':
        if (out.type === 'embedding') {
          face.identity = this.identify(out.vector, model, plan.identityThreshold);
          identityEmbeddings.set(face, out.vector);
        }
        return;
    }
  }

  private identify(vector: Float32Array, model: ModelRef, threshold: number): IdentityMatch {
    const gallery = this.deps.gallery;
    if (!gallery) return IdentityMatch.fromPartial({ known: false });
    // plan.identityThreshold is the request's or the config's; 0: the model's calibrated threshold.
    const result = gallery.identify(vector, this.identityThreshold(model, threshold), { name: model.name, version: String(model.version) });
    if (result.known)
      return IdentityMatch.fromPartial({ known: true, personId: result.personId, name: result.name, similarity: result.similarity });
    return IdentityMatch.fromPartial({ known: false, similarity: result.nearest?.similarity ?? 0 });
  }

  /** Runs the detector on a frame (its lease joins `leases`, its ref `models`). */
  private async detectFrame(
    pixels: FramePixels,
    plan: AnalysisPlan,
    queueMs: number,
    leases: ModelLease[],
    models: ModelRef[],
    lowScore: number | undefined,
  ): Promise<{ faces: DetectedFace[]; low: DetectedFace[] }> {
    const detector = await this.deps.registry.acquire(this.deps.config.detectorModel);
    leases.push(detector);
    models.push(ModelRef.fromPartial({ name: detector.name, version: detector.version }));
    return this.detectReportedAndLow(detector, pixels, plan, queueMs, lowScore);
  }

  /**
   * The faces to report (the plan's limits) and, when `lowScore` is below the plan's min score, the faces scoring from
   * it up to the min score (twice the face limit is detected so that low boxes do not push reported ones out).
   */
  private async detectReportedAndLow(
    detector: ModelLease,
    pixels: FramePixels,
    plan: AnalysisPlan,
    queueMs: number,
    lowScore: number | undefined,
  ): Promise<{ faces: DetectedFace[]; low: DetectedFace[] }> {
    if (lowScore === undefined || lowScore >= plan.minScore)
      return { faces: await this.detectWith(detector, pixels, plan, queueMs), low: [] };
    const found = await this.detectWith(detector, pixels, { ...plan, minScore: lowScore, maxFaces: plan.maxFaces * 2 }, queueMs);
    return {
      faces: found.filter((f) => f.score >= plan.minScore).slice(0, plan.maxFaces),
      low: found.filter((f) => f.score < plan.minScore),
    };
  }

  /** The planned task models (one lease per model, joined to `leases` and `models`) and the faces each runs on. */
  private async taskRuns(
    plan: AnalysisPlan,
    faces: readonly DetectedFace[],
    selected: readonly ReadonlySet<TaskName>[],
    leases: ModelLease[],
    models: ModelRef[],
  ): Promise<{ tasks: TaskName[]; lease: ModelLease; ref: ModelRef; chosen: number[]; faces: DetectedFace[] }[]> {
    const byModel = new Map<string, TaskName[]>();
    for (const task of plan.tasks) {
      const key = `${plan.models[task]!.name}@${plan.models[task]!.version}`;
      byModel.set(key, [...(byModel.get(key) ?? []), task]);
    }
    const runs = [];
    for (const tasks of byModel.values()) {
      const lease = await this.deps.registry.acquire(plan.models[tasks[0]!]!.name, plan.models[tasks[0]!]!.version);
      leases.push(lease);
      const ref = ModelRef.fromPartial({ name: lease.name, version: lease.version });
      models.push(ref);
      const chosen = faces.flatMap((_, i) => (tasks.some((t) => selected[i]?.has(t)) ? [i] : []));
      runs.push({ tasks, lease, ref, chosen, faces: chosen.map((i) => faces[i]!) });
    }
    return runs;
  }

  /** The detector on a frame, timed without the decodes it triggers. */
  private async timedDetect(
    pixels: TimedPixels,
    plan: AnalysisPlan,
    queueMs: number,
    held: { leases: ModelLease[]; models: ModelRef[] },
    lowScore: number | undefined,
  ): Promise<Detection> {
    const started = now();
    const decodedBefore = pixels.decodeMs();
    const found = await this.detectFrame(pixels, plan, queueMs, held.leases, held.models, lowScore);
    return { ...found, detectMs: now() - started - (pixels.decodeMs() - decodedBefore) };
  }

  /**
   * Starts a frame's first stage now: the image is opened (a JPEG's header read; anything else decoded) and, when
   * `detect` is true, the detector runs. A stream starts its next frame this way while the current one runs its task
   * models (StreamSession), so that decode and detection overlap the previous frame's models on another core;
   * analyzeSelected finishes it. What it holds (pixel budget, detector lease) is returned by analyzeSelected or release().
   */
  prepare(frame: Frame, plan: AnalysisPlan, queueMs: number, ahead: { detect: boolean; lowScore?: number }): PreparedFrame {
    const start = now();
    const reservation = this.deps.pixelBudget?.reservation();
    const held = { leases: [] as ModelLease[], models: [] as ModelRef[] };
    const { maxFramePixels } = this.deps.config;
    const pixels = (async (): Promise<TimedPixels> => {
      const opened = this.path.shrinkOnLoad
        ? await openFrameImage(frame.image, maxFramePixels, reservation?.reserve)
        : decodedFramePixels(await decodeFrameImage(frame.image, maxFramePixels, reservation?.reserve, this.path.referenceDecode));
      return timedDecodes(opened, now() - start);
    })();
    const detection = ahead.detect ? pixels.then((p) => this.timedDetect(p, plan, queueMs, held, ahead.lowScore)) : undefined;
    const settled = Promise.allSettled([pixels, detection]);
    let readyAt = Infinity;
    void settled.then(() => (readyAt = now()));
    let released: Promise<void> | undefined;
    return {
      start,
      pixels,
      detection,
      held,
      readyAt: () => readyAt,
      release: () =>
        (released ??= settled.then(() => {
          // Leases only once the detector's run has ended: a released lease lets a hot swap close its session.
          for (const lease of held.leases) lease.release();
          reservation?.release();
        })),
    };
  }

  /**
   * analyze() for a tracked stream (src/server/tracking). When `tracking.predict` returns faces, the detector does not
   * run on this frame and those (predicted) faces are reported. Before any task model runs, `select` sees the reported
   * faces, the faces scoring from `lowScore` up to the plan's min score (never reported: they only keep tracks alive)
   * and the full frame on demand, and returns per reported face the tasks to run now. A task not selected
   * for a face stays absent on it (the tracker fills it from the track); a model no face needs does not run.
   * `prepared`: the frame's first stage, started earlier (prepare()); the time it then waited for this call counts as
   * queue time, not analysis time.
   */
  async analyzeSelected(
    frame: Frame,
    plan: AnalysisPlan,
    queueMs: number,
    tracking?: FrameTracking,
    prepared?: PreparedFrame,
  ): Promise<FrameResult> {
    const resumedAt = now();
    const first = prepared ?? this.prepare(frame, plan, queueMs, { detect: false });
    const { held } = first;
    try {
      const pixels = await first.pixels;
      const predicted = tracking?.predict();
      let detection: Detection = { faces: predicted ?? [], low: [], detectMs: 0 };
      if (!predicted) detection = await (first.detection ?? this.timedDetect(pixels, plan, queueMs, held, tracking?.lowScore));
      else if (first.detection) {
        // Detected ahead, then predicted after all: the detector's answer is not used, nor reported as a model that ran.
        await first.detection.catch(() => undefined);
        held.models.splice(0, held.models.length, ...held.models.filter((m) => m.name !== this.deps.config.detectorModel));
      }
      const waitedMs = Math.max(0, resumedAt - first.readyAt());
      const { faces, low } = detection;
      const everyTask: ReadonlySet<TaskName> = new Set(plan.tasks);
      const selected = tracking ? await tracking.select(faces, low, () => pixels.full()) : faces.map(() => everyTask);
      const results: Face[] = faces.map((f) =>
        Face.fromPartial({
          box: { xPx: f.box.x, yPx: f.box.y, widthPx: f.box.width, heightPx: f.box.height },
          score: f.score,
          keypoints: f.keypoints.map((p) => ({ xPx: p.x, yPx: p.y, zPx: p.z ?? 0 })),
          boxPredicted: predicted !== undefined,
        }),
      );
      const taskMs = await this.runTasks(plan, pixels, faces, selected, results, held, queueMs);
      return FrameResult.fromPartial({
        sequence: frame.sequence,
        captureTimeUnixMs: frame.captureTimeUnixMs,
        frameWidthPx: pixels.width,
        frameHeightPx: pixels.height,
        faces: results,
        timings: StageTimings.fromPartial({
          queueMs: queueMs + waitedMs,
          decodeMs: pixels.decodeMs(),
          detectMs: detection.detectMs,
          tasks: plan.tasks.map((t) => TaskTiming.fromPartial({ task: enumOfTask[t], durationMs: taskMs.get(t) ?? 0 })),
          totalMs: now() - first.start - waitedMs,
        }),
        models: held.models,
      });
    } finally {
      await first.release();
    }
  }

  /** Every model run the faces need (one batched run per model), filled into `results`; the time per task. */
  private async runTasks(
    plan: AnalysisPlan,
    pixels: FramePixels,
    faces: DetectedFace[],
    selected: readonly ReadonlySet<TaskName>[],
    results: Face[],
    held: { leases: ModelLease[]; models: ModelRef[] },
    queueMs: number,
  ): Promise<Map<TaskName, number>> {
    const taskMs = new Map<TaskName, number>();
    const runs = (await this.taskRuns(plan, faces, selected, held.leases, held.models)).filter((r) => r.chosen.length > 0);
    if (runs.length === 0) return taskMs;
    const source = await cropSource(
      this.path,
      pixels,
      runs.map((r) => ({ model: r.lease.model, faces: r.faces })),
    );
    for (const { tasks, lease, ref, chosen, faces: chosenFaces } of runs) {
      const runStart = now();
      const run = await this.observed(lease, queueMs, () => runOnPath(this.path, lease.model, source, chosenFaces));
      chosen.forEach((faceIndex, k) => {
        for (const task of tasks) if (selected[faceIndex]!.has(task)) this.fill(results[faceIndex]!, task, run.decoded[k]!, ref, plan);
      });
      for (const task of tasks) taskMs.set(task, now() - runStart);
    }
    return taskMs;
  }
}
