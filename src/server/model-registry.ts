// Run-time model state: sessions per repository version, warm-up, leases for in-flight requests, hot swap on new versions.
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { KtError, NotFoundError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ModelManifest } from '../models/manifest.js';
import { listRepository, type RepositoryEntry } from '../models/repository.js';
import { loadModel, type LoadedModel } from '../models/runner.js';
import { runFloat, type ExecutionProviderName, type SessionOptions } from '../onnx/runtime.js';

export type ModelStateName = 'UNLOADED' | 'LOADING' | 'LOADED' | 'FAILED';

/** A loaded session with the requests using it; released once retired and unused. */
interface SessionHandle {
  model: LoadedModel;
  version: number;
  refs: number;
  retired: boolean;
  released: boolean;
}

interface VersionSlot {
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

/** A model held for one request; the session stays alive until every lease on it is released. */
export interface ModelLease {
  readonly model: LoadedModel;
  readonly name: string;
  readonly version: number;
  release(): void;
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

export interface ModelRegistryOptions {
  repository: string;
  session: SessionOptions;
  /** Warm-up runs on a zero input before a session serves. */
  warmupRuns: number;
  /** fs.watch the repository. */
  watch: boolean;
  /** Periodic rescan in milliseconds; 0: none. */
  rescanMs: number;
  logger: Logger;
}

export interface ReloadOutcome {
  serving: ModelVersionView[];
  failed: { name: string; version: number }[];
}

export class ModelRegistry {
  private readonly options: ModelRegistryOptions;
  private readonly log: Logger;
  /** name -> version -> slot, from the last scan (slots of versions that vanished stay while loaded). */
  private readonly slots = new Map<string, Map<number, VersionSlot>>();
  /** name -> the version analyses use when a request names no version. */
  private readonly serving = new Map<string, number>();
  /** Names unloaded on purpose: not loaded on demand again until LoadModel/ReloadModel. */
  private readonly unloadedOnPurpose = new Set<string>();
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private rescanning: Promise<void> | undefined;
  private closed = false;

  constructor(options: ModelRegistryOptions) {
    this.options = options;
    this.log = options.logger;
  }

  get repository(): string {
    return this.options.repository;
  }

  /** Reads the repository again; new versions appear as UNLOADED. */
  async scan(): Promise<void> {
    const entries = await listRepository(this.options.repository);
    const seen = new Set<string>();
    for (const entry of entries) {
      const name = basename(dirname(entry.dir));
      const version = Number(basename(entry.dir));
      if (name !== entry.manifest.name) this.log.debug(`${entry.dir}: manifest name "${entry.manifest.name}" differs from its folder; the folder wins`);
      seen.add(`${name}@${version}`);
      let versions = this.slots.get(name);
      if (!versions) this.slots.set(name, (versions = new Map()));
      const slot = versions.get(version);
      if (!slot) {
        versions.set(version, { name, version, entry, state: 'UNLOADED', stateMessage: '', handle: undefined, loading: undefined, failedStamp: undefined });
      } else if (slot.state === 'UNLOADED' || slot.state === 'FAILED') {
        slot.entry = entry;
      }
    }
    // Forget versions that left the repository unless a session still serves from them.
    for (const [name, versions] of this.slots) {
      for (const [version, slot] of versions) {
        if (!seen.has(`${name}@${version}`) && slot.state !== 'LOADED' && slot.state !== 'LOADING') versions.delete(version);
      }
      if (versions.size === 0) this.slots.delete(name);
    }
  }

  /** Every known version, ordered by name then version. */
  list(): ModelVersionView[] {
    return [...this.slots.keys()].sort().flatMap((name) => [...this.slots.get(name)!.values()].sort((a, b) => a.version - b.version).map((s) => this.view(s)));
  }

  /** One version (0: the newest in the repository); NotFoundError when unknown. */
  describe(name: string, version = 0): ModelVersionView {
    return this.view(this.slot(name, version));
  }

  /** Whether the repository has the model (and version, when non-zero). */
  has(name: string, version = 0): boolean {
    const versions = this.slots.get(name);
    return versions !== undefined && versions.size > 0 && (version === 0 || versions.has(version));
  }

  /** The version serving by default, if any. */
  servingVersion(name: string): number | undefined {
    return this.serving.get(name);
  }

  /** The manifest of the version a request would use now (serving, else newest); NotFoundError when unknown. */
  manifestFor(name: string, version = 0): ModelManifest {
    if (version === 0) {
      const serving = this.serving.get(name);
      if (serving !== undefined) return this.slot(name, serving).entry.manifest;
    }
    return this.slot(name, version).entry.manifest;
  }

  /**
   * Loads and warms a version (0: the newest); a loaded version is returned as is. It becomes the serving version
   * when it is newer than the current one. With `swap`, the previous serving version is then retired: requests
   * already holding it finish on it and its session is released after the last one.
   */
  async load(name: string, version = 0, swap = false): Promise<ModelVersionView> {
    const slot = this.slot(name, version);
    this.unloadedOnPurpose.delete(name);
    await this.ensureLoaded(slot);
    const current = this.serving.get(name);
    if (current === undefined || slot.version > current) {
      this.serving.set(name, slot.version);
      if (current !== undefined) {
        this.log.info(`model ${name}: version ${slot.version} now serving (was ${current})`);
        if (swap) this.retire(this.slot(name, current));
      }
    }
    return this.view(slot);
  }

  /** Unloads one version or (0) every loaded version of a model; they are not loaded on demand again until asked. */
  unload(name: string, version = 0): ModelVersionView[] {
    const versions = this.slots.get(name);
    if (!versions || (version !== 0 && !versions.has(version))) throw new NotFoundError(`model ${name}${version ? ` version ${version}` : ''} not found in ${this.options.repository}`);
    const targets = version === 0 ? [...versions.values()] : [versions.get(version)!];
    const out: ModelVersionView[] = [];
    for (const slot of targets) {
      if (slot.state !== 'LOADED' && version === 0) continue;
      this.retire(slot);
      out.push(this.view(slot));
    }
    if (version === 0 || this.serving.get(name) === undefined) this.unloadedOnPurpose.add(name);
    return out;
  }

  /**
   * Rescans and swaps in the newest version of `name` (or of every loaded model): load, warm, switch, then retire
   * the old version. A version that fails to load is reported; the previous version keeps serving.
   */
  async reload(name?: string): Promise<ReloadOutcome> {
    await this.scan();
    if (name !== undefined && !this.has(name)) throw new NotFoundError(`model ${name} not found in ${this.options.repository}`);
    const names = name !== undefined ? [name] : [...this.serving.keys()];
    const failed: ReloadOutcome['failed'] = [];
    const serving: ModelVersionView[] = [];
    for (const n of names) {
      const newest = this.newestVersion(n);
      if (newest === undefined) continue;
      try {
        serving.push(await this.load(n, newest, true));
      } catch (e) {
        this.log.warn(`model ${n} version ${newest} failed to load: ${errorMessage(e)}`);
        failed.push({ name: n, version: newest });
        const current = this.serving.get(n);
        if (current !== undefined) serving.push(this.describe(n, current));
      }
    }
    return { serving, failed };
  }

  /**
   * Holds a model for one request: the serving version (version 0) or a given one, loading it on first use unless it
   * was unloaded on purpose (FAILED_PRECONDITION). Release the lease when the request is done.
   */
  async acquire(name: string, version = 0): Promise<ModelLease> {
    let slot: VersionSlot;
    const servingVersion = this.serving.get(name);
    if (version === 0 && servingVersion !== undefined) {
      slot = this.slot(name, servingVersion);
    } else {
      slot = this.slot(name, version);
      if (slot.state !== 'LOADED') {
        if (this.unloadedOnPurpose.has(name)) throw new KtError('FAILED_PRECONDITION', `model ${name}${version ? ` version ${version}` : ''} is unloaded; load it with Models.LoadModel`);
        if (version === 0) await this.load(name, slot.version);
        else await this.ensureLoaded(slot);
      }
    }
    const handle = slot.handle;
    if (!handle || handle.retired) {
      // Swapped out between the lookup and now: take the current one.
      if (slot.state === 'LOADED' || this.serving.has(name)) return this.acquire(name, version);
      throw new KtError('FAILED_PRECONDITION', `model ${name} version ${slot.version} is ${slot.state.toLowerCase()}${slot.stateMessage ? `: ${slot.stateMessage}` : ''}`);
    }
    handle.refs += 1;
    let released = false;
    return {
      model: handle.model,
      name,
      version: handle.version,
      release: () => {
        if (released) return;
        released = true;
        handle.refs -= 1;
        this.maybeRelease(handle);
      },
    };
  }

  /** Watches the repository and rescans it periodically; higher versions of serving models are swapped in. */
  start(): void {
    if (this.options.watch) {
      try {
        this.watcher = watch(this.options.repository, { recursive: true }, () => this.scheduleRescan());
      } catch (e) {
        try {
          this.watcher = watch(this.options.repository, () => this.scheduleRescan());
          this.log.debug(`recursive fs.watch unavailable (${errorMessage(e)}); watching the top level only, the periodic rescan covers the rest`);
        } catch (e2) {
          this.log.warn(`cannot watch ${this.options.repository}: ${errorMessage(e2)}; relying on the periodic rescan`);
        }
      }
      this.watcher?.on('error', (e) => this.log.warn(`repository watch error: ${errorMessage(e)}`));
    }
    if (this.options.rescanMs > 0) {
      this.rescanTimer = setInterval(() => this.scheduleRescan(0), this.options.rescanMs);
      this.rescanTimer.unref();
    }
  }

  /** Stops watching and releases every session (callers must have finished their requests). */
  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.rescanTimer);
    clearTimeout(this.debounceTimer);
    await this.rescanning?.catch(() => undefined);
    for (const versions of this.slots.values()) {
      for (const slot of versions.values()) {
        await slot.loading?.catch(() => undefined);
        if (slot.handle) {
          slot.handle.retired = true;
          slot.handle.refs = 0;
          this.maybeRelease(slot.handle);
        }
      }
    }
  }

  /** Debounced: a copy into the repository fires many events. */
  private scheduleRescan(delayMs = 300): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      if (this.rescanning) {
        void this.rescanning.then(() => this.scheduleRescan());
        return;
      }
      this.rescanning = this.hotSwap()
        .catch((e: unknown) => this.log.warn(`repository rescan failed: ${errorMessage(e)}`))
        .finally(() => {
          this.rescanning = undefined;
        });
    }, delayMs);
  }

  private async hotSwap(): Promise<void> {
    await this.scan();
    for (const [name, current] of [...this.serving]) {
      if (this.closed) return;
      const newest = this.newestVersion(name);
      if (newest === undefined || newest <= current) continue;
      const slot = this.slot(name, newest);
      if (slot.state === 'FAILED') {
        const stamp = await fileStamp(slot.entry.modelPath);
        if (stamp === slot.failedStamp) continue;
      }
      this.log.info(`model ${name}: version ${newest} appeared in the repository; loading it beside version ${current}`);
      try {
        await this.load(name, newest, true);
      } catch (e) {
        this.log.warn(`model ${name} version ${newest} failed to load; version ${current} keeps serving: ${errorMessage(e)}`);
      }
    }
  }

  private newestVersion(name: string): number | undefined {
    const versions = this.slots.get(name);
    if (!versions || versions.size === 0) return undefined;
    return Math.max(...versions.keys());
  }

  private slot(name: string, version: number): VersionSlot {
    const versions = this.slots.get(name);
    if (!versions || versions.size === 0) throw new NotFoundError(`model "${name}" not found in ${this.options.repository}`);
    const v = version === 0 ? Math.max(...versions.keys()) : version;
    const slot = versions.get(v);
    if (!slot) throw new NotFoundError(`model "${name}" has no version ${version} in ${this.options.repository} (versions: ${[...versions.keys()].sort((a, b) => a - b).join(', ')})`);
    return slot;
  }

  private async ensureLoaded(slot: VersionSlot): Promise<SessionHandle> {
    if (slot.state === 'LOADED' && slot.handle && !slot.handle.retired) return slot.handle;
    if (slot.loading) return slot.loading;
    slot.state = 'LOADING';
    slot.stateMessage = '';
    slot.loading = (async () => {
      const started = performance.now();
      try {
        const model = await loadModel(slot.entry, this.options.session);
        for (const s of model.skippedProviders) this.log.warn(`model ${slot.name} v${slot.version}: execution provider ${s.provider} skipped: ${s.reason}`);
        await warmUp(model, this.options.warmupRuns);
        const handle: SessionHandle = { model, version: slot.version, refs: 0, retired: false, released: false };
        slot.handle = handle;
        slot.state = 'LOADED';
        slot.failedStamp = undefined;
        this.log.info(`model ${slot.name} v${slot.version} loaded on ${model.provider} and warmed up in ${(performance.now() - started).toFixed(0)} ms`);
        return handle;
      } catch (e) {
        slot.state = 'FAILED';
        slot.stateMessage = errorMessage(e);
        slot.failedStamp = await fileStamp(slot.entry.modelPath);
        throw e instanceof KtError ? e : new KtError('FAILED_PRECONDITION', `model ${slot.name} version ${slot.version} failed to load: ${errorMessage(e)}`, { cause: e });
      } finally {
        slot.loading = undefined;
      }
    })();
    return slot.loading;
  }

  /** Takes a version out of service; its session goes once the last lease on it is released. */
  private retire(slot: VersionSlot): void {
    if (slot.handle) {
      slot.handle.retired = true;
      this.maybeRelease(slot.handle);
    }
    slot.handle = undefined;
    if (slot.state === 'LOADED') slot.state = 'UNLOADED';
    if (this.serving.get(slot.name) === slot.version) {
      const versions = this.slots.get(slot.name);
      const next = versions ? Math.max(-1, ...[...versions.values()].filter((s) => s.state === 'LOADED').map((s) => s.version)) : -1;
      if (next >= 0) this.serving.set(slot.name, next);
      else this.serving.delete(slot.name);
    }
  }

  private maybeRelease(handle: SessionHandle): void {
    if (!handle.retired || handle.refs > 0 || handle.released) return;
    handle.released = true;
    handle.model.session.release().then(
      () => this.log.debug(`released session of ${handle.model.manifest.name} v${handle.version}`),
      (e: unknown) => this.log.warn(`releasing a session of ${handle.model.manifest.name} v${handle.version}: ${errorMessage(e)}`),
    );
  }

  private view(slot: VersionSlot): ModelVersionView {
    return {
      name: slot.name,
      version: slot.version,
      manifest: slot.entry.manifest,
      bytes: slot.entry.bytes,
      state: slot.state,
      stateMessage: slot.stateMessage,
      provider: slot.state === 'LOADED' && slot.handle ? slot.handle.model.provider : '',
      serving: this.serving.get(slot.name) === slot.version,
    };
  }
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

async function fileStamp(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}
