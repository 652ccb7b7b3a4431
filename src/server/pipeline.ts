// The frame pipeline: decode once, detect once, then per model one batched run over crops of the decoded pixels.
import { InvalidInputError } from '../core/errors.js';
import type { RgbImage } from '../core/image.js';
import type { DecodedOutput, DetectedFace } from '../models/processing/index.js';
import { detectFaces, runTaskModel } from '../models/runner.js';
import type { IdentityGallery } from './gallery/store.js';
import { IdentityMatch, ModelRef, type Image } from '../gen/kt/v1/common.js';
import { Face, FrameResult, StageTimings, TaskTiming, type Frame } from '../gen/kt/v1/face_analysis.js';
import { enumOfTask } from '../contract/tasks.js';
import { manifestTaskOf, type AnalysisPlan } from './analysis-plan.js';
import type { ServerConfig, TaskName } from './config.js';
import { decodeFrameImage } from './frame-image.js';
import type { ModelLease, ModelRegistry } from './model-registry.js';

export interface PipelineDeps {
  config: ServerConfig;
  registry: ModelRegistry;
  /** Absent: TASK_IDENTITY reports every face as unknown. */
  gallery: IdentityGallery | undefined;
  /** Hears every model run (the Prometheus metrics); absent: nothing is measured beyond the frame timings. */
  observer?: InferenceObserver;
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

const now = (): number => performance.now();

export class FramePipeline {
  private readonly deps: PipelineDeps;

  constructor(deps: PipelineDeps) {
    this.deps = deps;
  }

  /** Decodes a wire image once (INVALID_ARGUMENT for anything malformed). */
  decode(image: Image | undefined): Promise<RgbImage> {
    return decodeFrameImage(image, this.deps.config.maxFramePixels);
  }

  /**
   * Analyses one frame. Model versions are fixed when the frame starts (leases), so a hot swap never changes a
   * model in the middle of a frame; the old session lives until its last frame is done.
   */
  async analyze(frame: Frame, plan: AnalysisPlan, queueMs = 0): Promise<FrameResult> {
    const start = now();
    const image = await this.decode(frame.image);
    const decodeMs = now() - start;

    const leases: ModelLease[] = [];
    try {
      const detector = await this.deps.registry.acquire(this.deps.config.detectorModel);
      leases.push(detector);
      const detectStart = now();
      const faces = await this.detectWith(detector, image, plan, queueMs);
      const detectMs = now() - detectStart;

      // One run per distinct model: faceres answers age, gender, embedding and identity together.
      const groups = new Map<string, { lease: ModelLease; tasks: TaskName[] }>();
      for (const task of plan.tasks) {
        const choice = plan.models[task]!;
        const key = `${choice.name}@${choice.version}`;
        let group = groups.get(key);
        if (!group) {
          const lease = await this.deps.registry.acquire(choice.name, choice.version);
          leases.push(lease);
          groups.set(key, (group = { lease, tasks: [] }));
        }
        group.tasks.push(task);
      }

      const results: Face[] = faces.map((f) =>
        Face.fromPartial({
          box: { xPx: f.box.x, yPx: f.box.y, widthPx: f.box.width, heightPx: f.box.height },
          score: f.score,
          keypoints: f.keypoints.map((p) => ({ xPx: p.x, yPx: p.y, zPx: p.z ?? 0 })),
        }),
      );
      const taskMs = new Map<TaskName, number>();
      for (const { lease, tasks } of groups.values()) {
        const runStart = now();
        const run = await this.observed(lease, queueMs, () => runTaskModel(lease.model, image, faces));
        const ref = ModelRef.fromPartial({ name: lease.name, version: lease.version });
        for (let i = 0; i < faces.length; i++) {
          for (const task of tasks) this.fill(results[i]!, task, run.decoded[i]!, ref, plan);
        }
        // A task's time is the run that answered it (crop, model, decode over all faces); tasks sharing a model
        // share one run, so their times are equal and not additive.
        const runMs = now() - runStart;
        for (const task of tasks) taskMs.set(task, runMs);
      }

      return FrameResult.fromPartial({
        sequence: frame.sequence,
        captureTimeUnixMs: frame.captureTimeUnixMs,
        frameWidthPx: image.width,
        frameHeightPx: image.height,
        faces: results,
        timings: StageTimings.fromPartial({
          queueMs,
          decodeMs,
          detectMs,
          tasks: plan.tasks.map((t) => TaskTiming.fromPartial({ task: enumOfTask[t], durationMs: taskMs.get(t) ?? 0 })),
          totalMs: now() - start,
        }),
        models: [
          ModelRef.fromPartial({ name: detector.name, version: detector.version }),
          ...[...groups.values()].map((g) => ModelRef.fromPartial({ name: g.lease.name, version: g.lease.version })),
        ],
      });
    } finally {
      for (const lease of leases) lease.release();
    }
  }

  /** Faces in decoded pixels, best first, with the detection limits applied. */
  async detect(image: RgbImage, limits: DetectLimits): Promise<DetectedFace[]> {
    const detector = await this.deps.registry.acquire(this.deps.config.detectorModel);
    try {
      return await this.detectWith(detector, image, limits);
    } finally {
      detector.release();
    }
  }

  /** Embeddings of the given faces with the identity model (one batched run). */
  async embed(image: RgbImage, faces: readonly DetectedFace[]): Promise<FaceEmbedding[]> {
    if (faces.length === 0) return [];
    const lease = await this.deps.registry.acquire(this.deps.config.taskModels.identity);
    try {
      const run = await this.observed(lease, 0, () => runTaskModel(lease.model, image, faces));
      return faces.map((face, i) => {
        const out = run.decoded[i]!.find((d) => d.type === 'embedding');
        if (!out || out.type !== 'embedding') throw new InvalidInputError(`model ${lease.name} has no embedding output`);
        return { face, vector: out.vector, model: { name: lease.name, version: lease.version } };
      });
    } finally {
      lease.release();
    }
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

  private async detectWith(detector: ModelLease, image: RgbImage, limits: DetectLimits, queueMs = 0): Promise<DetectedFace[]> {
    const { config } = this.deps;
    const faces = await this.observed(detector, queueMs, () =>
      detectFaces(detector.model, image, {
        scoreThreshold: limits.minScore,
        iouThreshold: config.detectorIouThreshold,
        maxFaces: limits.maxFaces,
        ...(config.detectorInputSize > 0 ? { inputSize: config.detectorInputSize } : {}),
      }),
    );
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
        if (out.type === 'embedding') face.identity = this.identify(out.vector, model, plan.identityThreshold);
        return;
    }
  }

  private identify(vector: Float32Array, model: ModelRef, threshold: number): IdentityMatch {
    const gallery = this.deps.gallery;
    if (!gallery) return IdentityMatch.fromPartial({ known: false });
    const result = gallery.identify(vector, threshold, { name: model.name, version: String(model.version) });
    if (result.known)
      return IdentityMatch.fromPartial({ known: true, personId: result.personId, name: result.name, similarity: result.similarity });
    return IdentityMatch.fromPartial({ known: false, similarity: result.nearest?.similarity ?? 0 });
  }
}
