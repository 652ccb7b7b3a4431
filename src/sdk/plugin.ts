// The gateway plugin SDK: definePlugin() turns a documented init object into a factory that validates options
// (unknown ones are a typed error), a registry for named factories, and a runner that feeds stream results to plugins.
import { InvalidInputError, KtError, errorMessage } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import type { Logger } from '../core/log.js';
import type { AnalysisResult, StreamResult } from './results.js';

/**
 * A plugin option that is unknown, of the wrong type or out of range (code INVALID_ARGUMENT). `plugin` and `option`
 * say which. (It extends KtError, not InvalidInputError, whose `name` is a fixed literal.)
 */
export class PluginOptionError extends KtError {
  override readonly name = 'PluginOptionError';
  readonly plugin: string;
  readonly option: string;
  constructor(plugin: string, option: string, message: string) {
    super('INVALID_ARGUMENT', `plugin ${plugin}: ${message}`);
    this.plugin = plugin;
    this.option = option;
  }
}

export function isPluginOptionError(e: unknown): e is PluginOptionError {
  return e instanceof PluginOptionError;
}

/** Checks one option value; returns what it must be ("an integer >= 0") when it is not, else undefined. */
export type OptionCheck = (value: unknown) => string | undefined;

/** Ready-made checks for `schema`. */
export const optionChecks = {
  int: (min: number, max = Number.MAX_SAFE_INTEGER): OptionCheck => (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `an integer in ${min}..${max}`,
  number: (min: number, max: number): OptionCheck => (v) => (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? undefined : `a number in ${min}..${max}`),
  string: (allowEmpty = true): OptionCheck => (v) => (typeof v === 'string' && (allowEmpty || v.length > 0) ? undefined : allowEmpty ? 'a string' : 'a non-empty string'),
  boolean: (): OptionCheck => (v) => (typeof v === 'boolean' ? undefined : 'true or false'),
  oneOf: (values: readonly unknown[]): OptionCheck => (v) => (values.includes(v) ? undefined : `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`),
  url: (protocols: readonly string[]): OptionCheck => (v) => {
    if (typeof v !== 'string') return `a ${protocols.join(' or ')} URL`;
    try {
      return protocols.includes(new URL(v).protocol.replace(/:$/, '')) ? undefined : `a ${protocols.join(' or ')} URL`;
    } catch {
      return `a ${protocols.join(' or ')} URL`;
    }
  },
  stringRecord: (): OptionCheck => (v) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string') ? undefined : 'an object of string values',
};

/** What a result comes with. */
export interface PluginResultContext {
  /** The stream (camera) the result belongs to; for analyze() results, the name the caller gave. */
  streamId: string;
}

/** Handed to `create`: the documented init object. */
export interface PluginInit<O> {
  /** The plugin's name (from its definition). */
  name: string;
  /** The options: the definition's defaults overlaid with the caller's, validated. */
  options: Readonly<O>;
  /** A logger scoped to the plugin. */
  log: Logger;
}

/** What `create` returns. Hooks may be async; the runner awaits them in order. */
export interface PluginInstance {
  /** Before the first result (connect, open files). A failure here stops the runner from starting. */
  onStart?(): void | Promise<void>;
  /** Each result. A failure is logged and counted, never fatal to the stream. */
  onResult(result: AnalysisResult | StreamResult, ctx: PluginResultContext): void | Promise<void>;
  /** After the last result (flush queues, disconnect). */
  onStop?(): void | Promise<void>;
  /** Counters for logs and tests (delivered, failed, queued...). */
  stats?(): Record<string, number>;
}

/** The documented init object of `definePlugin`. */
export interface PluginDefinition<O extends object> {
  /** Unique name, e.g. "webhook"; letters, digits and '-'. */
  name: string;
  /** One line for `kt gateway --help`. */
  description: string;
  /** Every option with its default: the keys ARE the known options; anything else is rejected. */
  defaults: Readonly<O>;
  /** Per option, a check of the merged value. Options without a check are only type-checked against their default. */
  schema?: { readonly [K in keyof O]?: OptionCheck };
  /** Cross-option rules on the merged options; return a problem or undefined. */
  validate?(options: Readonly<O>): string | undefined;
  /** Builds an instance from validated options. */
  create(init: PluginInit<O>): PluginInstance | Promise<PluginInstance>;
}

/** A created plugin: its name, resolved options and instance. */
export interface Plugin<O extends object = object> {
  readonly name: string;
  readonly options: Readonly<O>;
  readonly instance: PluginInstance;
}

/** A factory made by definePlugin: call it with options to create a plugin. */
export interface PluginFactory<O extends object = object> {
  (options?: Partial<O>, env?: { log?: Logger }): Promise<Plugin<O>>;
  readonly pluginName: string;
  readonly description: string;
  readonly defaults: Readonly<O>;
  /** Merges and validates options without creating anything (config checks). Throws PluginOptionError. */
  resolveOptions(options?: Partial<O>): O;
}

const pluginNamePattern = /^[a-z0-9][a-z0-9-]{0,63}$/;

function sameKind(value: unknown, def: unknown): boolean {
  if (def === undefined || def === null) return true;
  if (Array.isArray(def)) return Array.isArray(value);
  return typeof value === typeof def;
}

/**
 * Defines a plugin. The returned factory merges the caller's options over `defaults` (the one merge point), rejects
 * unknown options and bad values with PluginOptionError, then calls `create`.
 */
export function definePlugin<O extends object>(definition: PluginDefinition<O>): PluginFactory<O> {
  if (!pluginNamePattern.test(definition.name)) throw new InvalidInputError(`plugin name must be lower-case letters, digits and '-', got ${JSON.stringify(definition.name)}`);
  const known = Object.keys(definition.defaults);
  const name = definition.name;

  const resolveOptions = (options: Partial<O> = {}): O => {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new PluginOptionError(name, '', 'options must be an object');
    for (const key of Object.keys(options)) {
      if (!known.includes(key)) throw new PluginOptionError(name, key, `unknown option "${key}" (known: ${known.join(', ')})`);
    }
    const merged = { ...definition.defaults } as O;
    for (const [key, value] of Object.entries(options)) if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
    for (const key of known) {
      const value = (merged as Record<string, unknown>)[key];
      const check = (definition.schema as Record<string, OptionCheck | undefined> | undefined)?.[key];
      const why = check ? check(value) : sameKind(value, (definition.defaults as Record<string, unknown>)[key]) ? undefined : `a ${typeof (definition.defaults as Record<string, unknown>)[key]}`;
      if (why !== undefined) throw new PluginOptionError(name, key, `option "${key}" must be ${why}, got ${JSON.stringify(value)}`);
    }
    const problem = definition.validate?.(merged);
    if (problem !== undefined) throw new PluginOptionError(name, '', problem);
    return merged;
  };

  const factory = async (options: Partial<O> = {}, env: { log?: Logger } = {}): Promise<Plugin<O>> => {
    const resolved = Object.freeze(resolveOptions(options));
    const instance = await definition.create({ name, options: resolved, log: env.log ?? createLogger(`plugin:${name}`) });
    if (typeof instance?.onResult !== 'function') throw new KtError('INTERNAL', `plugin ${name}: create() must return an object with onResult()`);
    return { name, options: resolved, instance };
  };
  return Object.assign(factory, { pluginName: name, description: definition.description, defaults: definition.defaults, resolveOptions });
}

/** Named plugin factories. Built-ins are registered explicitly by the entry point (see registerBuiltinPlugins). */
export class PluginRegistry {
  private readonly factories = new Map<string, PluginFactory<object>>();

  register<O extends object>(factory: PluginFactory<O>): void {
    if (this.factories.has(factory.pluginName)) throw new InvalidInputError(`plugin ${factory.pluginName} is already registered`);
    this.factories.set(factory.pluginName, factory as unknown as PluginFactory<object>);
  }

  names(): string[] {
    return [...this.factories.keys()].sort();
  }

  get(name: string): PluginFactory<object> {
    const f = this.factories.get(name);
    if (!f) throw new PluginOptionError(name, '', `no plugin named "${name}" (registered: ${this.names().join(', ') || 'none'})`);
    return f;
  }

  /** Creates a plugin by name (e.g. from a gateway config file). */
  create(name: string, options: Record<string, unknown> = {}, env: { log?: Logger } = {}): Promise<Plugin<object>> {
    return this.get(name)(options, env);
  }
}

/** Per-plugin counters kept by the runner. */
export interface PluginRunnerStats {
  results: number;
  errors: number;
  lastError: string | undefined;
}

/**
 * Feeds results to plugins in order: every plugin sees every result; a plugin that throws is logged and counted and
 * the others go on. `start` runs onStart of each (failing fast), `stop` runs every onStop (collecting errors).
 */
export class PluginRunner {
  /** Parallel to `plugins` (two plugins may share a name, e.g. two webhooks). */
  private readonly stats: PluginRunnerStats[];
  private started = false;

  constructor(
    readonly plugins: readonly Plugin<object>[],
    private readonly log: Logger = createLogger('plugins'),
  ) {
    this.stats = plugins.map(() => ({ results: 0, errors: 0, lastError: undefined }));
  }

  async start(): Promise<void> {
    for (const p of this.plugins) await p.instance.onStart?.();
    this.started = true;
  }

  async dispatch(result: AnalysisResult | StreamResult, ctx: PluginResultContext): Promise<void> {
    if (!this.started) throw new KtError('FAILED_PRECONDITION', 'PluginRunner.dispatch before start()');
    for (const [i, p] of this.plugins.entries()) {
      const s = this.stats[i]!;
      s.results += 1;
      try {
        await p.instance.onResult(result, ctx);
      } catch (e) {
        s.errors += 1;
        s.lastError = errorMessage(e);
        this.log.warn(`plugin ${p.name}: result ${result.sequence} of ${ctx.streamId}: ${s.lastError}`);
      }
    }
  }

  /** Consumes a stream of results, dispatching each; returns how many were seen. */
  async run(results: AsyncIterable<StreamResult>): Promise<number> {
    let n = 0;
    for await (const r of results) {
      n += 1;
      await this.dispatch(r, { streamId: r.streamId });
    }
    return n;
  }

  async stop(): Promise<void> {
    const problems: string[] = [];
    for (const p of this.plugins) {
      try {
        await p.instance.onStop?.();
      } catch (e) {
        problems.push(`${p.name}: ${errorMessage(e)}`);
      }
    }
    this.started = false;
    if (problems.length > 0) throw new KtError('INTERNAL', `plugins failed to stop: ${problems.join('; ')}`);
  }

  /** The runner's counters per plugin (in order), merged with each plugin's own stats(). */
  snapshot(): ({ name: string } & PluginRunnerStats & Record<string, unknown>)[] {
    return this.plugins.map((p, i) => ({ name: p.name, ...this.stats[i]!, ...(p.instance.stats?.() ?? {}) }));
  }
}
