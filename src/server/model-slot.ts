// One repository version as the registry holds it: its state, loading and warming its session, and releasing it when unused.
import { stat } from 'node:fs/promises';
import { FailedPreconditionError, KtError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import type { ModelStateName } from '../contract/wire-names.js';
import type { ModelManifest } from '../models/manifest.js';
import type { RepositoryEntry } from '../models/repository.js';
import { loadModel, type LoadedModel } from '../models/runner.js';
import { batchingSession, type BatchingOptions, type BatchRun } from '../onnx/batching.js';
import { runFloat, type ExecutionProviderName, type SessionOptions } from '../onnx/runtime.js';

/** A loaded session with the requests using it; released once retired and unused. */
export interface SessionHandle {
  model: LoadedModel;
  version: number;
  refs: number;
  retired: boolean;
  released: boolean;
}

export interface VersionSlot {
  name: string;
  version: number;
  entry: RepositoryEntry;
  state: ModelStateName;
  stateMessage: string;
  handle: SessionHandle | undefined;
  loading: Promise<SessionHandle> | undefined;
  /** size + mtime of model.onnx when it last failed: a failed version is retried once its file changes. */
  failedStamp: string | undefined;
}

/** What the Models service shows for one version. */
export interface ModelVersionView {
  name: string;
  version: number;
  manifest: ModelManifest;
  bytes: number;
  state: ModelStateName;
  stateMessage: string;
  provider: ExecutionProviderName | '';
  serving: boolean;
}

export function newSlot(name: string, version: number, entry: RepositoryEntry): VersionSlot {
  return { name, version, entry, state: 'unloaded', stateMessage: '', handle: undefined, loading: undefined, failedStamp: undefined };
}

export function slotView(slot: VersionSlot, serving: boolean): ModelVersionView {
  return {
    name: slot.name,
    version: slot.version,
    manifest: slot.entry.manifest,
    bytes: slot.entry.bytes,
    state: slot.state,
    stateMessage: slot.stateMessage,
    provider: slot.state === 'loaded' && slot.handle ? slot.handle.model.provider : '',
    serving,
  };
}

/** Told about every run the dynamic batcher makes of a model. */
export type BatchObserver = (model: string, run: BatchRun) => void;

/** How slots load: session options, warm-up runs, and dynamic batching of task models (absent: none). */
export interface SlotLoadOptions {
  session: SessionOptions;
  warmupRuns: number;
  batching?: BatchingOptions | undefined;
  onBatch?: BatchObserver | undefined;
}

/** Loads and warms the slot's session once (concurrent callers share the load); a failure marks the slot failed. */
export function loadSlot(slot: VersionSlot, options: SlotLoadOptions, log: Logger): Promise<SessionHandle> {
  if (slot.state === 'loaded' && slot.handle && !slot.handle.retired) return Promise.resolve(slot.handle);
  if (slot.loading) return slot.loading;
  slot.state = 'loading';
  slot.stateMessage = '';
  slot.loading = (async () => {
    const started = performance.now();
    try {
      const model = await loadModel(slot.entry, options.session);
      for (const s of model.skippedProviders) {
        log.warn({ model: slot.name, version: slot.version, provider: s.provider, reason: s.reason }, 'execution provider skipped');
      }
      await warmUp(model, options.warmupRuns);
      // The detector runs one frame at a time (fixed batch); task models take any number of face crops.
      if (options.batching && model.manifest.kind !== 'detector') {
        const observe = options.onBatch;
        model.session = batchingSession(model.session, options.batching, observe && ((run) => observe(slot.name, run)));
      }
      const handle: SessionHandle = { model, version: slot.version, refs: 0, retired: false, released: false };
      slot.handle = handle;
      slot.state = 'loaded';
      slot.failedStamp = undefined;
      const warmupMs = Math.round(performance.now() - started);
      log.info({ model: slot.name, version: slot.version, provider: model.provider, warmupMs }, 'model loaded and warmed up');
      return handle;
    } catch (e) {
      slot.state = 'failed';
      slot.stateMessage = errorMessage(e);
      slot.failedStamp = await fileStamp(slot.entry.modelPath);
      if (e instanceof KtError) throw e;
      throw new FailedPreconditionError(`model ${slot.name} version ${slot.version} failed to load: ${errorMessage(e)}`, { cause: e });
    } finally {
      slot.loading = undefined;
    }
  })();
  return slot.loading;
}

/** Releases the session once it is retired and the last lease on it is gone. */
export function releaseIfUnused(handle: SessionHandle, log: Logger): void {
  if (!handle.retired || handle.refs > 0 || handle.released) return;
  handle.released = true;
  const fields = { model: handle.model.manifest.name, version: handle.version };
  handle.model.session.release().then(
    () => log.debug(fields, 'session released'),
    (e: unknown) => log.warn({ ...fields, error: errorMessage(e) }, 'releasing a session failed'),
  );
}

/** Runs a session on zeros of its input shape (batch 1), so the first request does not pay for lazy initialisation. */
async function warmUp(model: LoadedModel, runs: number): Promise<void> {
  const { input, outputs } = model.manifest;
  const channels = input.colorOrder === 'GRAY' ? 1 : 3;
  const dims = input.layout === 'NCHW' ? [1, channels, input.size, input.size] : [1, input.size, input.size, channels];
  const data = new Float32Array(channels * input.size * input.size);
  const names = [...new Set(outputs.map((o) => o.name))];
  for (let i = 0; i < runs; i++) await runFloat(model.session, { [input.name]: { data, dims } }, names);
}

/** size:mtime of a file, undefined when it is gone: tells whether a failed model file was replaced. */
export async function fileStamp(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}
