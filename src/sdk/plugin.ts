// The gateway plugin SDK: definePlugin() turns a documented init object into a factory that validates options
// (unknown ones are a typed error), a registry for named factories, and a runner that feeds stream results to plugins.
import { FailedPreconditionError, InvalidInputError, KtError, errorMessage } from '../core/errors.js';
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { schemaIssues, withDefaults } from '../core/schema.js';
import { createBasicLogger, type Logger } from '../core/log-types.js';
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

// Plugin authors write option schemas with TypeBox's `Type` (re-exported so a plugin needs no extra dependency).
export { Type };
export type { Static, TObject, TSchema };

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
  /** One line saying what the plugin does (for plugin listings and help texts). */
  description: string;
  /**
   * The options as a TypeBox object: one property per option with its `default`, `description` and range; its keys
   * ARE the known options, anything else is rejected (with the nearest name). Emitted as JSON Schema for config files.
   */
  schema?: TObject;
  /** Defaults, for a plugin without `schema` (each option is then only type-checked against its default). */
  defaults?: Readonly<O>;
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
  /** The options' schema (the definition's, or one derived from `defaults`). */
  readonly schema: TObject;
  /** Merges and validates options without creating anything (config checks). Throws PluginOptionError. */
  resolveOptions(options?: Partial<O>): O;
}

const pluginNamePattern = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** For a plugin declared with `defaults` only: each option must have its default's JSON type. */
function schemaOfDefaults(defaults: object): TObject {
  const kindOf = (v: unknown): TSchema => {
    if (typeof v === 'number') return Type.Number();
    if (typeof v === 'string') return Type.String();
    if (typeof v === 'boolean') return Type.Boolean();
    if (Array.isArray(v)) return Type.Array(Type.Unknown());
    if (typeof v === 'object' && v !== null) return Type.Object({});
    return Type.Unknown();
  };
  return Type.Object(Object.fromEntries(Object.entries(defaults).map(([k, v]) => [k, kindOf(v)])), { additionalProperties: false });
}

function optionsOf(definition: PluginDefinition<object>): { schema: TObject; defaults: Readonly<Record<string, unknown>> } {
  if (definition.schema)
    return {
      schema: definition.schema,
      defaults: Object.freeze({ ...(withDefaults(definition.schema, {}) as object), ...definition.defaults }),
    };
  if (definition.defaults)
    return { schema: schemaOfDefaults(definition.defaults), defaults: definition.defaults as Record<string, unknown> };
  throw new InvalidInputError(`plugin ${definition.name}: definePlugin needs a schema or defaults`);
}

/**
 * Defines a plugin. The returned factory merges the caller's options over the defaults (the one merge point), checks
 * the result against the schema and rejects unknown options and bad values with PluginOptionError listing every
 * problem (`option` names the first), then calls `create`.
 */
export function definePlugin<O extends object>(definition: PluginDefinition<O>): PluginFactory<O> {
  if (!pluginNamePattern.test(definition.name))
    throw new InvalidInputError(`plugin name must be lower-case letters, digits and '-', got ${JSON.stringify(definition.name)}`);
  const name = definition.name;
  const { schema, defaults } = optionsOf(definition as PluginDefinition<object>);

  const resolveOptions = (options: Partial<O> = {}): O => {
    if (typeof options !== 'object' || options === null || Array.isArray(options))
      throw new PluginOptionError(name, '', 'options must be an object');
    const merged = { ...defaults } as Record<string, unknown>;
    for (const [key, value] of Object.entries(options)) if (value !== undefined) merged[key] = value;
    const issues = schemaIssues(schema, merged, { noun: 'option' });
    if (issues.length > 0) throw new PluginOptionError(name, issues[0]!.path.split(/[.[]/)[0]!, issues.map((i) => i.message).join('; '));
    const problem = definition.validate?.(merged as O);
    if (problem !== undefined) throw new PluginOptionError(name, '', problem);
    return merged as O;
  };

  const factory = async (options: Partial<O> = {}, env: { log?: Logger } = {}): Promise<Plugin<O>> => {
    const resolved = Object.freeze(resolveOptions(options));
    const instance = await definition.create({
      name,
      options: resolved,
      log: env.log ?? createBasicLogger('plugins').child({ plugin: name }),
    });
    if (typeof instance?.onResult !== 'function')
      throw new KtError('INTERNAL', `plugin ${name}: create() must return an object with onResult()`);
    return { name, options: resolved, instance };
  };
  return Object.assign(factory, {
    pluginName: name,
    description: definition.description,
    defaults: defaults as Readonly<O>,
    schema,
    resolveOptions,
  });
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
    private readonly log: Logger = createBasicLogger('plugins'),
  ) {
    this.stats = plugins.map(() => ({ results: 0, errors: 0, lastError: undefined }));
  }

  async start(): Promise<void> {
    for (const p of this.plugins) await p.instance.onStart?.();
    this.started = true;
  }

  async dispatch(result: AnalysisResult | StreamResult, ctx: PluginResultContext): Promise<void> {
    if (!this.started) throw new FailedPreconditionError('PluginRunner.dispatch before start()');
    for (const [i, p] of this.plugins.entries()) {
      const s = this.stats[i]!;
      s.results += 1;
      try {
        await p.instance.onResult(result, ctx);
      } catch (e) {
        s.errors += 1;
        s.lastError = errorMessage(e);
        this.log.warn({ plugin: p.name, stream: ctx.streamId, sequence: result.sequence, error: s.lastError }, 'plugin failed on a result');
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
