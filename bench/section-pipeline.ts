// Bench section "pipeline": the same frames through (a) raw onnxruntime-node sessions in a plain loop doing the same
// decode and crop work as the serving path, (b0) the in-process FramePipeline on the path before issue 12 (one full
// decode, JS crops), (b1) full decode + native crops, (b) the serving path (JPEG shrink-on-load + native crops), and the
// gRPC stream over loopback with the SDK: (c0) as served before issue 12, (c1) one frame in flight, (c) the served
// default (two in flight, the next frame's decode and detection overlapping): what each layer costs, per stage.
import { resolve } from 'node:path';
import { createLogger } from '../src/core/log.js';
import { resolveModel } from '../src/models/repository.js';
import { detectFaces, detectorSourceSize, loadModel } from '../src/models/runner.js';
import { runFaceModelScaled } from '../src/models/scaled-run.js';
import { cropSource } from '../src/server/frame-path.js';
import { FaceAnalysisClient } from '../src/sdk/index.js';
import { Image } from '../src/gen/kt/v1/common.js';
import { AnalysisOptions, Frame, type FrameResult } from '../src/gen/kt/v1/face_analysis.js';
import { taskToProto } from '../src/sdk/results.js';
import { planAnalysis } from '../src/server/analysis-plan.js';
import { resolveServerConfig } from '../src/server/config.js';
import { loadDeviceProfile } from '../src/server/device-profile.js';
import { registryOptionsOf } from '../src/server/serving-context.js';
import type { ServerConfig } from '../src/server/config.js';
import { openFrameImage, timedDecodes } from '../src/server/frame-image.js';
import { ModelRegistry } from '../src/server/model-registry.js';
import { FramePipeline, referenceFramePath, servingFramePath, type FramePath } from '../src/server/pipeline.js';
import { startServer } from '../src/server/server.js';
import { measureLoop, progressPrinter, StageTotals, summarise } from './measure.js';
import type { Measurement } from './measure.js';
import type { BenchContext, BenchRow, BenchSection } from './sections.js';

const quiet = createLogger('bench', 'warn');

/** The server's config as `kt serve` has it on this box: the default device profile (x86-cpu: int8 models, no spinning). */
export async function servedConfig(tasks: BenchContext['tasks']): Promise<ServerConfig> {
  const profile = await loadDeviceProfile('x86-cpu');
  return resolveServerConfig(profile.config, {
    listenAddress: '127.0.0.1:0',
    mqttEnabled: false,
    galleryPath: ':memory:',
    watchRepository: false,
    repositoryRescanMs: 0,
    tasks: [...tasks],
  });
}

/** Today's path before issue 12 on the same config: fp32 models, ORT's spinning threads, model runs on the event-loop thread. */
const beforeIssue12 = (config: ServerConfig): ServerConfig => ({
  ...config,
  modelPrecision: {},
  ortAllowSpinning: true,
  ortThread: 'main',
});

function row(key: string, note: string, m: Measurement): BenchRow {
  return { ...m, key, note, rssAfterBytes: process.memoryUsage().rss };
}

/**
 * (a) The detector and the task models as plain ORT sessions (loadModel) in a loop: the serving path's decode (shrink-on-load),
 * detection and crops (native, landmarks68's refined second crop included), one batched run per model; no registry,
 * leases, plan or result messages.
 */
async function rawOrt(ctx: BenchContext, config: ServerConfig, stages: StageTotals): Promise<Measurement> {
  const names = [...new Set([config.detectorModel, ...ctx.tasks.map((t) => config.taskModels[t])])];
  const entries = await Promise.all(
    names.map((n) => resolveModel(n, undefined, resolve(config.modelRepository), config.modelPrecision[n])),
  );
  // The server's session options (threads, spinning), so that the modes differ only in what wraps ORT.
  const session = {
    providers: config.executionProviders,
    intraOpThreads: config.intraOpThreads,
    deviceId: config.deviceId,
    allowSpinning: config.ortAllowSpinning,
  };
  const models = await Promise.all(entries.map((e) => loadModel(e, session)));
  const [detector, ...taskModels] = models;
  const overrides = {
    scoreThreshold: config.detectorScoreThreshold,
    iouThreshold: config.detectorIouThreshold,
    maxFaces: config.maxFacesPerFrame,
  };
  try {
    return await measureLoop('(a) raw onnxruntime-node', ctx.measure, async (i) => {
      const t0 = performance.now();
      const image = Image.fromPartial({ source: { $case: 'encoded', value: { data: ctx.photos[i % ctx.photos.length]!.bytes } } });
      const pixels = timedDecodes(await openFrameImage(image, config.maxFramePixels), performance.now() - t0);
      const size = detectorSourceSize(detector!, pixels, overrides);
      const small = await pixels.atLeast(size.width, size.height);
      const t1 = performance.now();
      const faces = (await detectFaces(detector!, small, overrides, pixels)).slice(0, config.maxFacesPerFrame);
      const t2 = performance.now();
      let tasksMs = 0;
      if (faces.length > 0) {
        // The serving path's choice of decode for the crops (frame-path.ts), then one batched run per model.
        const source = await cropSource(
          servingFramePath,
          pixels,
          taskModels.map((model) => ({ model, faces })),
        );
        const t3 = performance.now();
        for (const m of taskModels) await runFaceModelScaled(m, source, faces);
        tasksMs = performance.now() - t3;
      }
      stages.add({ decodeMs: pixels.decodeMs(), detectMs: t2 - t1, tasksMs });
      return faces.length;
    });
  } finally {
    await Promise.all(models.map((m) => m.session.release()));
  }
}

/** The per-stage times of a served frame: decode, detection, and the task models (crops, runs and decoding). */
function addStages(stages: StageTotals, result: FrameResult): void {
  const t = result.timings!;
  const tasksMs = Math.max(0, t.totalMs - t.decodeMs - t.detectMs);
  stages.add({ decodeMs: t.decodeMs, detectMs: t.detectMs, tasksMs });
}

/** (b) The server's FramePipeline with its model registry, no gRPC, on one frame path. */
async function inProcessPipeline(
  ctx: BenchContext,
  config: ServerConfig,
  label: string,
  path: FramePath,
  stages: StageTotals,
): Promise<Measurement> {
  const registry = new ModelRegistry({ ...registryOptionsOf(config, quiet), watch: false, rescanMs: 0 });
  await registry.scan();
  for (const name of new Set([config.detectorModel, ...ctx.tasks.map((t) => config.taskModels[t])])) await registry.load(name);
  const pipeline = new FramePipeline({ config, registry, gallery: undefined, framePath: path });
  const plan = planAnalysis(AnalysisOptions.fromPartial({ tasks: ctx.tasks.map(taskToProto) }), config, registry);
  try {
    return await measureLoop(label, ctx.measure, async (i) => {
      const frame = Frame.fromPartial({
        image: { source: { $case: 'encoded', value: { data: ctx.photos[i % ctx.photos.length]!.bytes } } },
        sequence: i + 1,
      });
      const result = await pipeline.analyze(frame, plan);
      addStages(stages, result);
      return result.faces.length;
    });
  } finally {
    await registry.close();
  }
}

/** (c) A server on 127.0.0.1 in this process and the SDK streaming to it with `maxInFlight` frames outstanding. */
async function grpcStream(
  ctx: BenchContext,
  config: ServerConfig,
  maxInFlight: number,
  stages: StageTotals,
  label: string,
  framePath: FramePath = servingFramePath,
): Promise<Measurement> {
  const server = await startServer(config, { logger: quiet, framePath });
  const client = new FaceAnalysisClient(server.address);
  const { durationMs, maxIterations, warmupIterations } = ctx.measure;
  const writtenAt = new Map<number, number>();
  const latencies: number[] = [];
  let faces = 0;
  let timedStart = 0;
  let stop = false;
  const progress = progressPrinter(label, ctx.measure);
  async function* frames(): AsyncGenerator<{ image: Uint8Array; sequence: number }> {
    for (let i = 0; !stop; i++) {
      yield { image: ctx.photos[i % ctx.photos.length]!.bytes, sequence: i + 1 };
    }
  }
  try {
    const stream = client.stream(frames(), {
      streamId: 'bench',
      tasks: [...ctx.tasks],
      dropPolicy: 'BLOCK',
      maxInFlight,
      onEvent: (e) => {
        if (e.type !== 'write') return;
        const now = performance.now();
        writtenAt.set(e.sequence, now);
        if (e.sequence === warmupIterations + 1) timedStart = now;
      },
    });
    for await (const r of stream) {
      const latency = performance.now() - writtenAt.get(r.sequence)!;
      writtenAt.delete(r.sequence);
      if (r.sequence <= warmupIterations) continue;
      latencies.push(latency);
      faces += r.faces.length;
      if (r.timings)
        stages.add({
          decodeMs: r.timings.decodeMs,
          detectMs: r.timings.detectMs,
          tasksMs: Math.max(0, r.timings.totalMs - r.timings.decodeMs - r.timings.detectMs),
        });
      const elapsed = performance.now() - timedStart;
      progress.tick(latencies.length, elapsed);
      if (elapsed >= durationMs || (maxIterations > 0 && latencies.length >= maxIterations)) {
        stop = true;
        break;
      }
    }
    const m = summarise(label, latencies, performance.now() - timedStart, faces);
    progress.done(m);
    return m;
  } finally {
    client.close();
    await server.close();
  }
}

const modes: { key: string; note: string; run: (ctx: BenchContext, config: ServerConfig, stages: StageTotals) => Promise<Measurement> }[] =
  [
    {
      key: 'a',
      note: "plain ORT sessions of the served models (x86-cpu profile: int8 where it says), the serving path's decode and crops (refined landmark crop included)",
      run: rawOrt,
    },
    {
      key: 'b0',
      note: 'FramePipeline as before issue 12: fp32 models, one colour-managed full decode, JS crops, ORT threads spinning (its default), model runs on the event-loop thread',
      run: (ctx, config, stages) =>
        inProcessPipeline(
          ctx,
          beforeIssue12(config),
          '(b0) pipeline before: fp32 models, full decode, JS crops, ORT spinning',
          referenceFramePath,
          stages,
        ),
    },
    {
      key: 'b1',
      note: 'FramePipeline, served models, one full decode + native crops',
      run: (ctx, config, stages) =>
        inProcessPipeline(ctx, config, '(b1) pipeline, full decode + native crops', { shrinkOnLoad: false, nativeCrops: true }, stages),
    },
    {
      key: 'b',
      note: 'FramePipeline, serving path: served models (x86-cpu profile), JPEG shrink-on-load + native crops',
      run: (ctx, config, stages) => inProcessPipeline(ctx, config, '(b) pipeline, shrink-on-load + native crops', servingFramePath, stages),
    },
    {
      key: 'c0',
      note: "SDK stream -> gRPC loopback -> server as before issue 12: (b0)'s path, one frame of a stream at a time; 2 frames in flight (the SDK's default)",
      run: (ctx, config, s) =>
        grpcStream(
          ctx,
          { ...beforeIssue12(config), streamPipelineDepth: 1 },
          2,
          s,
          '(c0) gRPC stream before: fp32, full decode, JS crops, one frame at a time',
          referenceFramePath,
        ),
    },
    {
      key: 'c1',
      note: 'SDK stream -> gRPC loopback -> server (serving path), 1 frame in flight: nothing for the server to overlap',
      run: (ctx, config, s) => grpcStream(ctx, config, 1, s, '(c1) gRPC stream, 1 in flight'),
    },
    {
      key: 'c',
      note: "SDK stream -> gRPC loopback -> server (serving path), 2 frames in flight (the SDK's default): the next frame's decode and detection overlap the current frame's task models (streamPipelineDepth 2)",
      run: (ctx, config, s) => grpcStream(ctx, config, 2, s, '(c) gRPC stream, served default'),
    },
  ];

export const pipelineSection: BenchSection = {
  name: 'pipeline',
  description: 'raw ONNX Runtime vs the in-process pipeline (before/after issue 12) vs the gRPC stream over loopback',
  async run(ctx) {
    const config = await servedConfig(ctx.tasks);
    const rows: BenchRow[] = [];
    for (const mode of modes) {
      const stages = new StageTotals();
      const m = await mode.run(ctx, config, stages);
      rows.push(row(mode.key, `${mode.note}; per frame ${stages.describe()}`, m));
    }
    return {
      title: `Face pipeline on the ${ctx.photos.length} demo photos, tasks ${ctx.tasks.join(', ')}`,
      rows,
      ratios: [
        { label: '(c)/(a) served vs raw ORT', numerator: 'c', denominator: 'a' },
        { label: '(b)/(a) pipeline vs raw ORT', numerator: 'b', denominator: 'a' },
        { label: '(b)/(b0) serving vs before', numerator: 'b', denominator: 'b0' },
        { label: '(b1)/(b0) native crops alone', numerator: 'b1', denominator: 'b0' },
        { label: '(c)/(c0) served vs served before', numerator: 'c', denominator: 'c0' },
        { label: '(c)/(b0) served vs in-process before', numerator: 'c', denominator: 'b0' },
        { label: '(c)/(c1) overlap of two frames', numerator: 'c', denominator: 'c1' },
        { label: '(c1)/(b) gRPC vs in-process', numerator: 'c1', denominator: 'b' },
      ],
    };
  },
};
