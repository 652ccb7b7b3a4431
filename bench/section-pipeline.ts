// Bench section "pipeline": the same frames through (a) raw onnxruntime-node sessions in a plain loop, (b) the server's
// in-process FramePipeline, (c) the gRPC stream over loopback with the SDK: what each layer costs.
import { resolve } from 'node:path';
import { createLogger } from '../src/core/log.js';
import { decodeImage } from '../src/core/image.js';
import { resolveModel } from '../src/models/repository.js';
import { fitFrameNative, prepareFaceBatch } from '../src/models/runner.js';
import { blazefaceOptionsFromManifest, decodeBlazeface, normalize, selectBlazefaceHeads } from '../src/models/processing/index.js';
import type { OutputDecoding } from '../src/models/manifest.js';
import { ort } from '../src/onnx/runtime.js';
import { FaceAnalysisClient } from '../src/sdk/index.js';
import { AnalysisOptions, Frame } from '../src/gen/kt/v1/face_analysis.js';
import { taskToProto } from '../src/sdk/results.js';
import { planAnalysis } from '../src/server/analysis-plan.js';
import { resolveServerConfig } from '../src/server/config.js';
import type { ServerConfig } from '../src/server/config.js';
import { ModelRegistry } from '../src/server/model-registry.js';
import { FramePipeline } from '../src/server/pipeline.js';
import { startServer } from '../src/server/server.js';
import { measureLoop, progressPrinter, summarise } from './measure.js';
import type { Measurement } from './measure.js';
import type { BenchContext, BenchRow, BenchSection } from './sections.js';

const quiet = createLogger('bench', 'warn');

function serverConfig(ctx: BenchContext): ServerConfig {
  return resolveServerConfig({
    listenAddress: '127.0.0.1:0',
    mqttEnabled: false,
    galleryPath: ':memory:',
    watchRepository: false,
    repositoryRescanMs: 0,
    tasks: [...ctx.tasks],
  });
}

function row(key: string, note: string, m: Measurement): BenchRow {
  return { ...m, key, note, rssAfterBytes: process.memoryUsage().rss };
}

/** (a) The detector and the task models as plain ORT sessions: decode, detect, one batched run per model, no registry. */
async function rawOrt(ctx: BenchContext, config: ServerConfig): Promise<Measurement> {
  const names = [...new Set([config.detectorModel, ...ctx.tasks.map((t) => config.taskModels[t])])];
  const entries = await Promise.all(names.map((n) => resolveModel(n, undefined, resolve(config.modelRepository))));
  const sessionOptions: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' };
  const sessions = await Promise.all(entries.map((e) => ort.InferenceSession.create(e.modelPath, sessionOptions)));
  const [detectorEntry, ...taskEntries] = entries;
  const [detector, ...taskSessions] = sessions;
  const manifest = detectorEntry!.manifest;
  const decoding = manifest.outputs.find((o) => o.decoding.type === 'blazeface')!.decoding as Extract<
    OutputDecoding,
    { type: 'blazeface' }
  >;
  const options = blazefaceOptionsFromManifest(decoding, {
    inputSize: manifest.input.size,
    scoreThreshold: config.detectorScoreThreshold,
    iouThreshold: config.detectorIouThreshold,
    maxFaces: config.maxFacesPerFrame,
  });
  try {
    return await measureLoop('(a) raw onnxruntime-node', ctx.measure, async (i) => {
      const frame = await decodeImage(ctx.photos[i % ctx.photos.length]!.bytes);
      // The same preprocessing as the server (native letterbox resize), so the modes differ only in what wraps ORT.
      const fitted = await fitFrameNative(frame, options.inputSize, options.fit);
      const input = { tensor: normalize(fitted.image, manifest.input), transform: fitted.transform };
      const out = await detector!.run({ [manifest.input.name]: new ort.Tensor('float32', input.tensor.data, [...input.tensor.dims]) });
      const heads = selectBlazefaceHeads(
        Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { data: t.data as Float32Array, dims: t.dims }])),
        options,
      );
      const faces = decodeBlazeface(heads, input.transform, options).slice(0, config.maxFacesPerFrame);
      if (faces.length === 0) return 0;
      for (const [k, session] of taskSessions.entries()) {
        const m = taskEntries[k]!.manifest;
        const { tensor } = prepareFaceBatch(m, frame, faces);
        await session.run({ [m.input.name]: new ort.Tensor('float32', tensor.data, [...tensor.dims]) });
      }
      return faces.length;
    });
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}

/** (b) The server's FramePipeline with its model registry, no gRPC. */
async function inProcessPipeline(ctx: BenchContext, config: ServerConfig): Promise<Measurement> {
  const registry = new ModelRegistry({
    repository: resolve(config.modelRepository),
    session: { providers: config.executionProviders, intraOpThreads: config.intraOpThreads, deviceId: config.deviceId },
    warmupRuns: config.warmupRuns,
    watch: false,
    rescanMs: 0,
    logger: quiet,
  });
  await registry.scan();
  for (const name of new Set([config.detectorModel, ...ctx.tasks.map((t) => config.taskModels[t])])) await registry.load(name);
  const pipeline = new FramePipeline({ config, registry, gallery: undefined });
  const plan = planAnalysis(AnalysisOptions.fromPartial({ tasks: ctx.tasks.map(taskToProto) }), config, registry);
  try {
    return await measureLoop('(b) in-process pipeline', ctx.measure, async (i) => {
      const frame = Frame.fromPartial({
        image: { source: { $case: 'encoded', value: { data: ctx.photos[i % ctx.photos.length]!.bytes } } },
        sequence: i + 1,
      });
      const result = await pipeline.analyze(frame, plan);
      return result.faces.length;
    });
  } finally {
    await registry.close();
  }
}

/** (c) A server on 127.0.0.1 in this process and the SDK streaming to it with `maxInFlight` frames outstanding. */
async function grpcStream(ctx: BenchContext, config: ServerConfig, maxInFlight: number): Promise<Measurement> {
  const label = `(c${maxInFlight === 1 ? '' : String(maxInFlight)}) gRPC stream, ${maxInFlight} in flight`;
  const server = await startServer(config, { logger: quiet });
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

export const pipelineSection: BenchSection = {
  name: 'pipeline',
  description: 'raw ONNX Runtime vs the in-process pipeline vs the gRPC stream over loopback',
  async run(ctx) {
    const config = serverConfig(ctx);
    const rows: BenchRow[] = [];
    rows.push(row('a', 'decode + detector + one batched run per task model, plain ORT sessions', await rawOrt(ctx, config)));
    rows.push(
      row('b', 'server FramePipeline.analyze (registry leases, decoding to results), no gRPC', await inProcessPipeline(ctx, config)),
    );
    rows.push(row('c', 'SDK stream -> gRPC loopback -> server, 1 frame in flight (write to result)', await grpcStream(ctx, config, 1)));
    rows.push(row('c2', 'same with 2 frames in flight (transfer overlaps analysis)', await grpcStream(ctx, config, 2)));
    return {
      title: `Face pipeline on the ${ctx.photos.length} demo photos, tasks ${ctx.tasks.join(', ')}`,
      rows,
      ratios: [
        { label: '(b)/(a) pipeline vs raw ORT', numerator: 'b', denominator: 'a' },
        { label: '(c)/(b) gRPC vs in-process', numerator: 'c', denominator: 'b' },
        { label: '(c2)/(c) 2 vs 1 in flight', numerator: 'c2', denominator: 'c' },
      ],
    };
  },
};
