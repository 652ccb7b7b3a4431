// The model registry: version slots per model, the serving version, leases for requests in flight, load/unload and hot swap.
import type { BatchingOptions } from '../onnx/batching.js';
import type { BatchObserver } from './model-slot.js';
import { basename, dirname } from 'node:path';
import { FailedPreconditionError, NotFoundError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';
import type { ModelManifest, ModelPrecision } from '../models/manifest.js';
import { listRepository, preferredVersion } from '../models/repository.js';
import type { LoadedModel } from '../models/runner.js';
import type { SessionOptions } from '../onnx/runtime.js';
import {
  fileStamp,
  loadSlot,
  newSlot,
  releaseIfUnused,
  slotView,
  type ModelVersionView,
  type SessionHandle,
  type VersionSlot,
} from './model-slot.js';
import { RepositoryWatcher } from './repository-watcher.js';
import type { ModelStateName } from '../contract/wire-names.js';

export type { ModelStateName, ModelVersionView };

/** A model held for one request; the session stays alive until every lease on it is released. */
export interface ModelLease {
  readonly model: LoadedModel;
  readonly name: string;
  readonly version: number;
  release(): void;
}

export interface ModelRegistryOptions {
  repository: string;
  session: SessionOptions;
  /** Warm-up runs on a zero input before a session serves. */
  warmupRuns: number;
  /** Dynamic batching of task models across concurrent frames (config batchMaxFaces); absent: none. */
  batching?: BatchingOptions;
  /** Hears every batched run (the metrics). */
  onBatch?: BatchObserver;
  /** fs.watch the repository. */
  watch: boolean;
  /** Periodic rescan in milliseconds; 0: none. */
  rescanMs: number;
  logger: Logger;
  /** Per model, the precision its default version has (config modelPrecision); absent models: fp32. */
  precision?: Readonly<Record<string, ModelPrecision>>;
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
  private watcher: RepositoryWatcher | undefined;
  /** Unservable version folders of the last scan and why, so each is logged once. */
  private reportedProblems = new Map<string, string>();
  private closed = false;

  constructor(options: ModelRegistryOptions) {
    this.options = options;
    this.log = options.logger;
  }

  get repository(): string {
    return this.options.repository;
  }

  /**
   * Reads the repository again; new versions appear as UNLOADED. Returns the loaded versions whose folder is gone
   * (still held here until retireVanished). A version folder that cannot be served (no or a bad model.json, no
   * model.onnx) is logged with the reason.
   */
  async scan(): Promise<{ name: string; version: number }[]> {
    const problems = new Map<string, string>();
    const entries = await listRepository(this.options.repository, (dir, e) => problems.set(dir, errorMessage(e)));
    this.reportProblems(problems);
    const seen = new Set<string>();
    for (const entry of entries) {
      const name = basename(dirname(entry.dir));
      const version = Number(basename(entry.dir));
      if (name !== entry.manifest.name)
        this.log.debug(
          { dir: entry.dir, model: name, manifestName: entry.manifest.name },
          'manifest name differs from its folder; the folder wins',
        );
      seen.add(`${name}@${version}`);
      let versions = this.slots.get(name);
      if (!versions) this.slots.set(name, (versions = new Map()));
      const slot = versions.get(version);
      if (!slot) {
        versions.set(version, newSlot(name, version, entry));
      } else if (slot.state === 'unloaded' || slot.state === 'failed') {
        slot.entry = entry;
      }
    }
    // Forget versions that left the repository; a loaded one is returned so the caller can take it out of service.
    const vanished: { name: string; version: number }[] = [];
    for (const [name, versions] of this.slots) {
      for (const [version, slot] of versions) {
        if (seen.has(`${name}@${version}`)) continue;
        if (slot.state === 'loaded') vanished.push({ name, version });
        else if (slot.state !== 'loading') versions.delete(version);
      }
      if (versions.size === 0) this.slots.delete(name);
    }
    return vanished;
  }

  /**
   * Takes versions deleted from the repository out of service: requests in flight finish on them, then their sessions
   * are released. A model whose serving version went falls back to its newest loaded version, else to the newest in
   * the repository (loaded now); with none left its requests fail with NOT_FOUND.
   */
  private async retireVanished(vanished: { name: string; version: number }[]): Promise<void> {
    for (const { name, version } of vanished) {
      const versions = this.slots.get(name);
      const slot = versions?.get(version);
      if (!versions || !slot) continue;
      const wasServing = this.serving.get(name) === version;
      this.log.warn({ model: name, version, wasServing }, 'model version deleted from the repository; it stops serving');
      this.retire(slot);
      versions.delete(version);
      if (versions.size === 0) this.slots.delete(name);
      const fallback = this.newestVersion(name);
      if (!wasServing || this.serving.has(name) || fallback === undefined || this.unloadedOnPurpose.has(name)) continue;
      try {
        await this.load(name, fallback);
        this.log.info({ model: name, version: fallback, deletedVersion: version }, 'serving the previous version again');
      } catch (e) {
        this.log.warn({ model: name, version: fallback, error: errorMessage(e) }, 'previous version failed to load');
      }
    }
  }

  /** Logs each unservable version folder once, and again only when its reason changes (scans repeat every rescanMs). */
  private reportProblems(problems: Map<string, string>): void {
    for (const [dir, error] of problems) {
      if (this.reportedProblems.get(dir) === error) continue;
      this.log.warn(
        { model: basename(dirname(dir)), version: basename(dir), dir, error },
        'model version folder skipped: it needs a valid model.json and model.onnx',
      );
    }
    this.reportedProblems = problems;
  }

  /** Every known version, ordered by name then version. */
  list(): ModelVersionView[] {
    return [...this.slots.keys()]
      .sort()
      .flatMap((name) => [...this.slots.get(name)!.values()].sort((a, b) => a.version - b.version).map((s) => this.view(s)));
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
        this.log.info({ model: name, version: slot.version, previousVersion: current }, 'new version now serving');
        if (swap) this.retire(this.slot(name, current));
      }
    }
    return this.view(slot);
  }

  /** Unloads one version or (0) every loaded version of a model; they are not loaded on demand again until asked. */
  unload(name: string, version = 0): ModelVersionView[] {
    const versions = this.slots.get(name);
    if (!versions || (version !== 0 && !versions.has(version)))
      throw new NotFoundError(`model ${name}${version ? ` version ${version}` : ''} not found in the model repository`);
    const targets = version === 0 ? [...versions.values()] : [versions.get(version)!];
    const out: ModelVersionView[] = [];
    for (const slot of targets) {
      if (slot.state !== 'loaded' && version === 0) continue;
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
    await this.retireVanished(await this.scan());
    if (name !== undefined && !this.has(name)) throw new NotFoundError(`model ${name} not found in the model repository`);
    const names = name !== undefined ? [name] : [...this.serving.keys()];
    const failed: ReloadOutcome['failed'] = [];
    const serving: ModelVersionView[] = [];
    for (const n of names) {
      const newest = this.newestVersion(n);
      if (newest === undefined) continue;
      try {
        serving.push(await this.load(n, newest, true));
      } catch (e) {
        this.log.warn({ model: n, version: newest, error: errorMessage(e) }, 'model version failed to load');
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
      if (slot.state !== 'loaded') {
        if (this.unloadedOnPurpose.has(name))
          throw new FailedPreconditionError(
            `model ${name}${version ? ` version ${version}` : ''} is unloaded; load it with Models.LoadModel`,
          );
        if (version === 0) await this.load(name, slot.version);
        else await this.ensureLoaded(slot);
      }
    }
    const handle = slot.handle;
    if (!handle || handle.retired) {
      // Swapped out between the lookup and now: take the current one.
      if (slot.state === 'loaded' || this.serving.has(name)) return this.acquire(name, version);
      throw new FailedPreconditionError(
        `model ${name} version ${slot.version} is ${slot.state}${slot.stateMessage ? `: ${slot.stateMessage}` : ''}`,
      );
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
        releaseIfUnused(handle, this.log);
      },
    };
  }

  /** Watches the repository and rescans it periodically; higher versions of serving models are swapped in. */
  start(): void {
    const { repository, watch, rescanMs } = this.options;
    this.watcher = new RepositoryWatcher({ repository, watch, rescanMs, logger: this.log, rescan: () => this.hotSwap() });
    this.watcher.start();
  }

  /** Stops watching and releases every session (callers must have finished their requests). */
  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
    for (const versions of this.slots.values()) {
      for (const slot of versions.values()) {
        await slot.loading?.catch(() => undefined);
        if (slot.handle) {
          slot.handle.retired = true;
          slot.handle.refs = 0;
          releaseIfUnused(slot.handle, this.log);
        }
      }
    }
  }

  /** Loads versions newer than the serving ones beside them, then retires the old; a version that failed is retried once its file changes. */
  private async hotSwap(): Promise<void> {
    await this.retireVanished(await this.scan());
    for (const [name, current] of [...this.serving]) {
      if (this.closed) return;
      const newest = this.newestVersion(name);
      if (newest === undefined || newest <= current) continue;
      const slot = this.slot(name, newest);
      if (slot.state === 'failed') {
        const stamp = await fileStamp(slot.entry.modelPath);
        if (stamp === slot.failedStamp) continue;
      }
      this.log.info(
        { model: name, version: newest, servingVersion: current },
        'new version appeared in the repository; loading it beside the serving one',
      );
      try {
        await this.load(name, newest, true);
      } catch (e) {
        this.log.warn(
          { model: name, version: newest, servingVersion: current, error: errorMessage(e) },
          'new version failed to load; the serving one keeps serving',
        );
      }
    }
  }

  /** The version a request naming none should get: the newest at the configured precision, else the newest fp32. */
  private newestVersion(name: string): number | undefined {
    const versions = this.slots.get(name);
    if (!versions || versions.size === 0) return undefined;
    // The folder names the version (a copied folder may carry another version in its model.json).
    return preferredVersion(
      [...versions.values()].map((s) => ({ ...s.entry.manifest, version: s.version })),
      this.options.precision?.[name],
    );
  }

  private slot(name: string, version: number): VersionSlot {
    const versions = this.slots.get(name);
    if (!versions || versions.size === 0) throw new NotFoundError(`model "${name}" not found in the model repository`);
    const v = version === 0 ? this.newestVersion(name)! : version;
    const slot = versions.get(v);
    if (!slot)
      throw new NotFoundError(
        `model "${name}" has no version ${version} in the model repository (versions: ${[...versions.keys()].sort((a, b) => a - b).join(', ')})`,
      );
    return slot;
  }

  private ensureLoaded(slot: VersionSlot): Promise<SessionHandle> {
    return loadSlot(slot, this.options, this.log);
  }

  /** Takes a version out of service; its session goes once the last lease on it is released. */
  private retire(slot: VersionSlot): void {
    if (slot.handle) {
      slot.handle.retired = true;
      releaseIfUnused(slot.handle, this.log);
    }
    slot.handle = undefined;
    if (slot.state === 'loaded') slot.state = 'unloaded';
    if (this.serving.get(slot.name) === slot.version) {
      const versions = this.slots.get(slot.name);
      const next = versions ? Math.max(-1, ...[...versions.values()].filter((s) => s.state === 'loaded').map((s) => s.version)) : -1;
      if (next >= 0) this.serving.set(slot.name, next);
      else this.serving.delete(slot.name);
    }
  }

  private view(slot: VersionSlot): ModelVersionView {
    return slotView(slot, this.serving.get(slot.name) === slot.version);
  }
}
