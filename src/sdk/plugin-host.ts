// Isolation for one plugin instance: every hook call has a timeout; a throw, a hang or a source's ctx.fail() is logged and
// counted, the instance is stopped and a new one created after a capped backoff with jitter; calls meanwhile are skipped.
import { backoffDelayMs, type BackoffPolicy } from '../core/backoff.js';
import { KtError, errorMessage } from '../core/errors.js';
import { createBasicLogger, type Logger } from '../core/log-types.js';
import type {
  FilterContext,
  FilterInstance,
  FrameVerdict,
  GatewayEvent,
  PluginKind,
  PluginLifecycle,
  PluginResultContext,
  PluginState,
  ResultVerdict,
  SinkInstance,
  SourceContext,
  SourceFrame,
  SourceInstance,
} from './plugin-kinds.js';
import type { AnyPluginFactory, Plugin } from './plugin.js';
import type { AnalysisResult, StreamResult } from './results.js';

/** How a host runs its plugin. Every field is optional; the defaults suit a gateway. */
export interface PluginHostOptions {
  /** Names the instance in logs and counters, e.g. "door/motion". Default: the plugin's name. */
  label?: string;
  log?: Logger;
  /** A hook call that takes longer counts as hung: a failure, and the instance is restarted. Default 10000 ms. */
  callTimeoutMs?: number;
  /** Delay before restart N (0-based, consecutive). Default 500 ms doubling to 30 s, +-20 % jitter. */
  restartBackoff?: BackoffPolicy;
  /** An instance that ran this long without a failure resets the backoff to its first step. Default 30000 ms. */
  stableAfterMs?: number;
  /** Filters only: what a frame or result does while the filter is down ('pass' or 'drop'). Default 'pass'. */
  whileDown?: 'pass' | 'drop';
  /** Called on every state change (camera online/offline for sources). Must not throw. */
  onStateChange?(state: PluginState, reason: string | undefined): void;
}

/** Where a source host sends frames: its camera id and a callback that receives numbered frames. */
export interface SourceTarget {
  cameraId: string;
  emit(frame: SourceFrame): void;
}

/** The host's view of its plugin: state, why, and counters (the host's and the plugin's own). */
export interface PluginHostHealth {
  name: string;
  kind: PluginKind;
  label: string;
  state: PluginState;
  reason?: string;
  /** Instances created after a failure. */
  restarts: number;
  /** Throws, hangs and ctx.fail() calls. */
  failures: number;
  /** Failures that were hangs (a call over callTimeoutMs). */
  timeouts: number;
  /** Hook calls made. */
  calls: number;
  /** Calls not made because the plugin was restarting. */
  skipped: number;
  /** Sources: frames emitted. Filters: frames and results dropped per reason, faces dropped per reason. */
  counters: Record<string, number>;
}

/** What a filter did to a frame. */
export type FrameFilterOutcome = { pass: true; frame: SourceFrame } | { pass: false; reason: string };

/** What a filter did to a result: the (possibly reduced) result, or dropped with a reason. */
export type ResultFilterOutcome = { pass: true; result: AnalysisResult | StreamResult } | { pass: false; reason: string };

const states = new Set<PluginState>(['starting', 'online', 'offline', 'error', 'stopped']);

const defaultBackoff: BackoffPolicy = { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.2 };

class HookTimeoutError extends KtError {
  override readonly name = 'HookTimeoutError';
  constructor(hook: string, ms: number) {
    super('UNAVAILABLE', `${hook} did not finish within ${ms} ms`);
  }
}

/** `work` or a HookTimeoutError after `ms`, whichever comes first (the hung work is abandoned, not cancelled). */
async function withTimeout<T>(work: () => T | Promise<T>, hook: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HookTimeoutError(hook, ms)), ms);
  });
  try {
    return await Promise.race([Promise.resolve().then(work), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type AnyInstance = PluginLifecycle & Partial<SourceInstance & FilterInstance & SinkInstance>;

/**
 * Runs one plugin with isolation. Options are checked in the constructor (PluginOptionError: a config problem); after
 * that nothing a plugin does escapes: `start`, `deliver`, `filterFrame`, `filterResult`, `event` and `stop` never throw.
 * Calls are serialised, so a sink sees results in the order they were handed over.
 */
export class PluginHost {
  readonly name: string;
  readonly kind: PluginKind;
  readonly label: string;
  private readonly log: Logger;
  private readonly callTimeoutMs: number;
  private readonly backoff: BackoffPolicy;
  private readonly stableAfterMs: number;
  private readonly settings: PluginHostOptions;
  private plugin: Plugin<object, PluginKind> | undefined;
  private generation = 0;
  private attempt = 0;
  private startedAt = 0;
  private everStarted = false;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private sourceAbort: AbortController | undefined;
  private target: SourceTarget | undefined;
  private sequence = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private state: PluginState = 'starting';
  private reason: string | undefined;
  private readonly count = { restarts: 0, failures: 0, timeouts: 0, calls: 0, skipped: 0 };
  private readonly counters: Record<string, number> = {};
  /** The last retired instance's own counters (after its onStop), shown while no instance runs. */
  private retiredCounters: Record<string, number> = {};

  constructor(
    private readonly factory: AnyPluginFactory,
    private readonly options: Record<string, unknown> = {},
    settings: PluginHostOptions = {},
  ) {
    factory.resolveOptions(options);
    this.name = factory.pluginName;
    this.kind = factory.kind ?? 'sink';
    this.label = settings.label ?? this.name;
    this.settings = settings;
    this.log = (settings.log ?? createBasicLogger('plugins')).child({ plugin: this.name, label: this.label });
    this.callTimeoutMs = settings.callTimeoutMs ?? 10_000;
    this.backoff = settings.restartBackoff ?? defaultBackoff;
    this.stableAfterMs = settings.stableAfterMs ?? 30_000;
  }

  /** Creates and starts the instance (a source sends numbered frames to `target`). A failure restarts it with backoff. */
  async start(target?: SourceTarget): Promise<void> {
    if (this.kind === 'source' && !target) throw new KtError('INVALID_ARGUMENT', `plugin ${this.label}: a source needs a target`);
    this.target = target;
    this.stopping = false;
    clearTimeout(this.restartTimer);
    // A second start replaces the running instance (stopped first), so nothing it holds is leaked.
    const running = this.plugin;
    this.plugin = undefined;
    this.generation += 1;
    await this.retire(running);
    await this.launch();
  }

  /** Sinks: hands over one result. */
  async deliver(result: AnalysisResult | StreamResult, ctx: PluginResultContext): Promise<void> {
    await this.call('onResult', (i) => i.onResult?.(result, ctx));
  }

  /** Sinks: hands over a gateway event (to those that take events). */
  async event(event: GatewayEvent): Promise<void> {
    // Events are best effort: a sink without onEvent, or one that is restarting, does not get them (not counted as skipped).
    if (!this.plugin || typeof (this.plugin.instance as AnyInstance).onEvent !== 'function') return;
    await this.call('onEvent', (i) => i.onEvent?.(event));
  }

  /** Filters: runs onFrame (a filter without it passes every frame). */
  async filterFrame(frame: SourceFrame, ctx: FilterContext): Promise<FrameFilterOutcome> {
    if (this.plugin && typeof (this.plugin.instance as AnyInstance).onFrame !== 'function') return { pass: true, frame };
    const r = await this.call<FrameVerdict>('onFrame', (i) => i.onFrame?.(frame, ctx), frameVerdictProblem);
    if (!r.ok) return this.settings.whileDown === 'drop' ? this.dropped('frames', `${this.name} down`) : { pass: true, frame };
    const v = r.value;
    if (v === undefined || v === true) return { pass: true, frame };
    if ('drop' in v) return this.dropped('frames', v.drop);
    return { pass: true, frame: v.frame };
  }

  /** Filters: runs onResult (a filter without it keeps every result). */
  async filterResult(result: AnalysisResult | StreamResult, ctx: FilterContext): Promise<ResultFilterOutcome> {
    if (this.plugin && typeof (this.plugin.instance as AnyInstance).onResult !== 'function') return { pass: true, result };
    const r = await this.call<ResultVerdict>('onResult', (i) => i.onResult?.(result, ctx) as ResultVerdict, resultVerdictProblem);
    if (!r.ok) return this.settings.whileDown === 'drop' ? this.dropped('results', `${this.name} down`) : { pass: true, result };
    const v = r.value;
    if (v === undefined) return { pass: true, result };
    if ('drop' in v) return this.dropped('results', v.drop);
    const droppedFaces = result.faces.length - v.faces.length;
    if (droppedFaces > 0) this.bump(`facesDropped.${v.reason}`, droppedFaces);
    return { pass: true, result: { ...result, faces: v.faces } };
  }

  /**
   * The state (the host's; while the instance runs and reports `health()`, the plugin's own, e.g. a sink whose receiver
   * is away is `offline`), why, and the counters.
   */
  health(): PluginHostHealth {
    const own = this.plugin ? this.ownCounters(this.plugin) : this.retiredCounters;
    const reported = this.state === 'online' && this.plugin ? this.reportedHealth(this.plugin) : undefined;
    const state = reported?.state ?? this.state;
    const reason = reported ? reported.reason : this.reason;
    return {
      name: this.name,
      kind: this.kind,
      label: this.label,
      state,
      ...(reason !== undefined ? { reason } : {}),
      ...this.count,
      counters: { ...own, ...this.counters },
    };
  }

  /** Stops the instance (onStop within the call timeout) and any pending restart. Never throws. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.generation += 1;
    await this.tail.catch(() => undefined);
    const plugin = this.plugin;
    this.plugin = undefined;
    await this.retire(plugin);
    this.setState('stopped', undefined);
  }

  // ---------------------------------------------------------------- internals

  /** The plugin's own health() (undefined without one, when it throws, or when it claims `stopped` while running). */
  private reportedHealth(plugin: Plugin<object, PluginKind>): { state: PluginState; reason: string | undefined } | undefined {
    try {
      const h = (plugin.instance as AnyInstance).health?.();
      return h && states.has(h.state) && h.state !== 'stopped' ? { state: h.state, reason: h.reason } : undefined;
    } catch {
      return undefined;
    }
  }

  /** The plugin's stats() and health().counters (empty when they throw). */
  private ownCounters(plugin: Plugin<object, PluginKind>): Record<string, number> {
    const instance = plugin.instance as AnyInstance;
    try {
      return { ...instance.stats?.(), ...instance.health?.().counters };
    } catch (e) {
      this.log.debug({ error: errorMessage(e) }, 'stats() or health() threw');
      return {};
    }
  }

  private bump(counter: string, by = 1): void {
    this.counters[counter] = (this.counters[counter] ?? 0) + by;
  }

  private dropped(what: 'frames' | 'results', reason: string): { pass: false; reason: string } {
    this.bump(`${what}Dropped.${reason}`);
    return { pass: false, reason };
  }

  private setState(state: PluginState, reason: string | undefined): void {
    if (state === this.state && reason === this.reason) return;
    this.state = state;
    this.reason = reason;
    try {
      this.settings.onStateChange?.(state, reason);
    } catch (e) {
      this.log.warn({ error: errorMessage(e) }, 'onStateChange threw');
    }
  }

  /**
   * One serialised hook call with the timeout; `ok: false` when skipped (plugin down) or failed. A value that `check`
   * finds a problem with (a malformed verdict) is a failure of the plugin too.
   */
  private call<T>(
    hook: string,
    fn: (instance: AnyInstance) => T | Promise<T>,
    check?: (value: T) => string | undefined,
  ): Promise<{ ok: true; value: T } | { ok: false }> {
    const run = async (): Promise<{ ok: true; value: T } | { ok: false }> => {
      const plugin = this.plugin;
      if (!plugin || this.stopping) {
        this.count.skipped += 1;
        return { ok: false };
      }
      const generation = this.generation;
      this.count.calls += 1;
      try {
        const value = await withTimeout(() => fn(plugin.instance as AnyInstance), hook, this.callTimeoutMs);
        const problem = check?.(value);
        if (problem !== undefined) throw new KtError('INTERNAL', `${hook} returned ${problem}`);
        return { ok: true, value };
      } catch (e) {
        this.failed(generation, hook, e);
        return { ok: false };
      }
    };
    const next = this.tail.then(run, run);
    this.tail = next;
    return next;
  }

  /** Creates and starts a new instance; a failure schedules the next attempt. */
  private async launch(): Promise<void> {
    const generation = ++this.generation;
    this.setState('starting', this.reason);
    let stateReported = false;
    try {
      const plugin = await withTimeout(() => this.factory(this.options, { log: this.log }), 'create', this.callTimeoutMs);
      if (generation !== this.generation || this.stopping) return void (await this.retire(plugin));
      this.plugin = plugin;
      this.startedAt = Date.now();
      const instance = plugin.instance as AnyInstance;
      if (this.kind === 'source') {
        const ctx = this.sourceContext(generation, () => (stateReported = true));
        await withTimeout(() => instance.onStart?.(ctx), 'onStart', this.callTimeoutMs);
      } else {
        await withTimeout(() => (instance.onStart as (() => unknown) | undefined)?.(), 'onStart', this.callTimeoutMs);
      }
      if (generation !== this.generation) return;
      if (this.everStarted) this.count.restarts += 1;
      this.everStarted = true;
      if (!stateReported) this.setState('online', undefined);
      this.log.debug({ restarts: this.count.restarts }, 'plugin started');
    } catch (e) {
      this.failed(generation, 'start', e);
    }
  }

  /** The context handed to a source instance: frames numbered by the host, state, fail, abort signal. */
  private sourceContext(generation: number, onReport: () => void): SourceContext {
    this.sourceAbort = new AbortController();
    const signal = this.sourceAbort.signal;
    const target = this.target!;
    const current = (): boolean => generation === this.generation && !signal.aborted;
    return {
      cameraId: target.cameraId,
      signal,
      emit: (frame) => {
        if (!current()) return this.bump('framesAfterStop');
        this.sequence += 1;
        this.bump('frames');
        try {
          target.emit({ ...frame, sequence: this.sequence, captureTimeUnixMs: frame.captureTimeUnixMs ?? Date.now() });
        } catch (e) {
          this.bump('emitErrors');
          this.log.warn({ error: errorMessage(e) }, 'the pipeline failed on a frame');
        }
      },
      setState: (state, reason) => {
        if (!current()) return;
        onReport();
        this.setState(state, reason);
      },
      fail: (error) => this.failed(generation, 'source', error),
    };
  }

  /** Counts and logs a failure of instance `generation`, retires it and schedules a restart (once per instance). */
  private failed(generation: number, hook: string, error: unknown): void {
    if (generation !== this.generation || this.stopping) return;
    this.generation += 1;
    this.count.failures += 1;
    if (error instanceof HookTimeoutError) this.count.timeouts += 1;
    if (this.startedAt > 0 && Date.now() - this.startedAt >= this.stableAfterMs) this.attempt = 0;
    const delayMs = backoffDelayMs(this.backoff, this.attempt);
    this.attempt += 1;
    const reason = `${hook}: ${errorMessage(error)}`;
    this.log.warn(
      { hook, error: errorMessage(error), restartInMs: delayMs, failures: this.count.failures },
      'plugin failed; restarting it',
    );
    const plugin = this.plugin;
    this.plugin = undefined;
    this.setState('error', reason);
    void this.retire(plugin);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopping) void this.launch();
    }, delayMs);
  }

  /** Aborts a source's signal and runs onStop within the timeout; problems are logged. */
  private async retire(plugin: Plugin<object, PluginKind> | undefined): Promise<void> {
    if (this.kind === 'source') this.sourceAbort?.abort(new Error('plugin stopping'));
    if (!plugin) return;
    try {
      await withTimeout(() => (plugin.instance as AnyInstance).onStop?.(), 'onStop', this.callTimeoutMs);
    } catch (e) {
      this.log.warn({ error: errorMessage(e) }, 'plugin failed to stop');
    }
    this.retiredCounters = this.ownCounters(plugin);
  }
}

/** What is wrong with a filter's frame verdict, or undefined. */
function frameVerdictProblem(v: FrameVerdict): string | undefined {
  if (v === undefined || v === true) return undefined;
  if (typeof v === 'object' && v !== null) {
    if ('drop' in v && typeof v.drop === 'string') return undefined;
    if ('frame' in v && typeof v.frame === 'object' && v.frame !== null && 'image' in v.frame) return undefined;
  }
  return `an invalid verdict (${describe(v)}): expected nothing, true, { drop: reason } or { frame }`;
}

/** What is wrong with a filter's result verdict, or undefined. */
function resultVerdictProblem(v: ResultVerdict): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'object' && v !== null) {
    if ('drop' in v && typeof v.drop === 'string') return undefined;
    if ('faces' in v && Array.isArray(v.faces) && typeof v.reason === 'string') return undefined;
  }
  return `an invalid verdict (${describe(v)}): expected nothing, { faces, reason } or { drop: reason }`;
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 80) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Runs a frame through filters in order; the first that drops it says why (`by`: its label). Never throws. */
export async function runFrameFilters(
  hosts: readonly PluginHost[],
  frame: SourceFrame,
  ctx: FilterContext,
): Promise<FrameFilterOutcome | { pass: false; reason: string; by: string }> {
  let current = frame;
  for (const host of hosts) {
    const outcome = await host.filterFrame(current, ctx);
    if (!outcome.pass) return { ...outcome, by: host.label };
    current = outcome.frame;
  }
  return { pass: true, frame: current };
}

/** Runs a result through filters in order; undefined when one drops it. Never throws. */
export async function runResultFilters<R extends AnalysisResult | StreamResult>(
  hosts: readonly PluginHost[],
  result: R,
  ctx: FilterContext,
): Promise<R | undefined> {
  let current: R = result;
  for (const host of hosts) {
    const outcome = await host.filterResult(current, ctx);
    if (!outcome.pass) return undefined;
    current = outcome.result as R;
  }
  return current;
}
