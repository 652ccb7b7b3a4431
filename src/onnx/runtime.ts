// The one adapter over onnxruntime-node: session creation with an ordered execution-provider list and fallback.
import * as ort from 'onnxruntime-node';
import { ModelFormatError, errorMessage } from '../core/errors.js';
import { createThreadSession } from './worker-session.js';

export { ort };
export type OrtTensor = ort.Tensor;
export type OrtSession = ort.InferenceSession;

export type ExecutionProviderName = 'tensorrt' | 'cuda' | 'dml' | 'coreml' | 'cpu';

export interface SessionOptions {
  /** Providers in order of preference; each is tried alone and skipped with a reason if it fails. Default ['cpu']. */
  providers?: readonly ExecutionProviderName[];
  /** Intra-op threads; 0 lets ORT decide. Default 0. */
  intraOpThreads?: number;
  /** GPU device id for cuda/tensorrt. Default 0. */
  deviceId?: number;
  /** Graph optimisation level. Default 'all'. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Inter-op threads (parallel branches of the graph; > 1 switches to the parallel executor); 0 lets ORT decide. Default 0. */
  interOpThreads?: number;
  /**
   * Whether idle intra-op and inter-op threads spin waiting for work (ORT's 'session.intra_op.allow_spinning'; ORT's
   * default is on). Spinning trims the latency of one run on an idle machine but burns the cores that decode, crops,
   * gRPC and other sessions need: `npm run bench -- --sections threads` on a 2-core box shared with other work gave
   * 1.9-2.9x the frames/s of the serving models without spinning (two runs). Default false.
   */
  allowSpinning?: boolean;
  /**
   * Where runs compute: 'main' (the calling thread; onnxruntime-node blocks it for the whole run) or 'worker' (the
   * process's inference thread, worker-session.ts: runs overlap the caller's other work). Default 'main'.
   */
  thread?: 'main' | 'worker';
}

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The provider that initialised. */
  provider: ExecutionProviderName;
  /** Why each earlier provider was skipped. */
  skipped: { provider: ExecutionProviderName; reason: string }[];
}

function providerConfig(p: ExecutionProviderName, deviceId: number): ort.InferenceSession.ExecutionProviderConfig {
  if (p === 'cuda' || p === 'tensorrt' || p === 'dml') return { name: p, deviceId } as ort.InferenceSession.ExecutionProviderConfig;
  return p;
}

/**
 * Creates a session trying providers one at a time, because onnxruntime-node throws on a list such as
 * ['cuda','cpu'] when CUDA is missing instead of falling back. A model that fails on every provider is a
 * ModelFormatError naming each reason.
 */
export async function createSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<CreatedSession> {
  const providers = options.providers && options.providers.length > 0 ? options.providers : (['cpu'] as const);
  const skipped: CreatedSession['skipped'] = [];
  const spinning = options.allowSpinning ? '1' : '0';
  for (const provider of providers) {
    const opts: ort.InferenceSession.SessionOptions = {
      executionProviders: [providerConfig(provider, options.deviceId ?? 0)],
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
      ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
      ...(options.interOpThreads ? { interOpNumThreads: options.interOpThreads } : {}),
      ...(options.interOpThreads && options.interOpThreads > 1 ? { executionMode: 'parallel' as const } : {}),
      extra: { session: { intra_op: { allow_spinning: spinning }, inter_op: { allow_spinning: spinning } } },
    };
    try {
      const session =
        options.thread === 'worker'
          ? await createThreadSession(model, opts)
          : typeof model === 'string'
            ? await ort.InferenceSession.create(model, opts)
            : await ort.InferenceSession.create(model, opts);
      return { session, provider, skipped };
    } catch (e) {
      skipped.push({ provider, reason: errorMessage(e) });
    }
  }
  const where = typeof model === 'string' ? model : `${model.byteLength}-byte model`;
  throw new ModelFormatError(
    `cannot create an ONNX Runtime session for ${where}: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`,
  );
}

export function floatTensor(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

/** Runs a session on named float inputs and returns every output as Float32Array with dims. */
export async function runFloat(
  session: ort.InferenceSession,
  feeds: Record<string, { data: Float32Array; dims: readonly number[] }>,
  outputs?: readonly string[],
): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = floatTensor(v.data, v.dims);
  const res = outputs ? await session.run(ortFeeds, [...outputs]) : await session.run(ortFeeds);
  const out: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const [k, t] of Object.entries(res)) out[k] = { data: t.data as Float32Array, dims: [...t.dims] };
  return out;
}
