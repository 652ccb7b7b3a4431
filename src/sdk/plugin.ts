// The gateway plugin SDK: definePlugin() turns a documented init object into a factory that validates options
// (unknown ones are a typed error), a registry for named factories, and a runner that feeds stream results to plugins.
import { FailedPreconditionError, InvalidInputError, KtError, errorMessage } from '../core/errors.js';
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { schemaIssues, withDefaults } from '../core/schema.js';
import { createBasicLogger, type Logger } from '../core/log-types.js';
import type { AnalysisResult, StreamResult } from './results.js';
import { pluginKinds, type PluginInstanceOfKind, type PluginKind, type PluginResultContext } from './plugin-kinds.js';

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

export type {
  CameraStateEvent,
  EmittedFrame,
  FilterContext,
  FilterInstance,
  FrameVerdict,
  GatewayEvent,
  PluginHealth,
  PluginInstance,
  PluginInstanceOfKind,
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
export { pluginKinds } from './plugin-kinds.js';

/** Handed to `create`: the documented init object. */
export interface PluginInit<O> {
  /** The plugin's name (from its definition). */
  name: string;
  /** The options: the definition's defaults overlaid with the caller's, validated. */
  options: Readonly<O>;
  /** A logger scoped to the plugin. */
  log: Logger;
}

/** The documented init object of `definePlugin`. */
export interface PluginDefinition<O extends object, K extends PluginKind = 'sink'> {
  /** Unique name, e.g. "webhook"; letters, digits and '-'. */
  name: string;
  /** What the plugin is: 'source', 'filter' or 'sink'. Default 'sink' (the plugins of earlier releases). */
  kind?: K;
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
  /** Builds an instance from validated options (called again for each restart after a failure). */
  create(init: PluginInit<O>): PluginInstanceOfKind[K] | Promise<PluginInstanceOfKind[K]>;
}

/** A created plugin: its name, kind, resolved options and instance. */
export interface Plugin<O extends object = object, K extends PluginKind = 'sink'> {
  readonly name: string;
  readonly kind: K;
  readonly options: Readonly<O>;
  readonly instance: PluginInstanceOfKind[K];
}

/** A factory made by definePlugin: call it with options to create a plugin. */
export interface PluginFactory<O extends object = object, K extends PluginKind = 'sink'> {
  (options?: Partial<O>, env?: { log?: Logger }): Promise<Plugin<O, K>>;
  readonly pluginName: string;
  readonly kind: K;
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

/** Checks that `create` returned what the kind needs (a plugin compiled against another SDK copy gets a clear error). */
function checkInstance(name: string, kind: PluginKind, instance: unknown): void {
  const has = (hook: string): boolean => typeof (instance as Record<string, unknown> | undefined)?.[hook] === 'function';
  const ok = kind === 'sink' ? has('onResult') : kind === 'source' ? has('onStart') : has('onFrame') || has('onResult');
  const needs = kind === 'sink' ? 'onResult()' : kind === 'source' ? 'onStart(ctx)' : 'onFrame() or onResult()';
  if (!ok) throw new KtError('INTERNAL', `plugin ${name}: create() must return an object with ${needs} (a ${kind} plugin)`);
}

/**
 * Defines a plugin. The returned factory merges the caller's options over the defaults (the one merge point), checks
 * the result against the schema and rejects unknown options and bad values with PluginOptionError listing every
 * problem (`option` names the first), then calls `create`. `kind` defaults to 'sink'; for another kind name it in
 * the type arguments too: `definePlugin<MyOptions, 'source'>({ kind: 'source', ... })`.
 */
export function definePlugin<O extends object, K extends PluginKind = 'sink'>(definition: PluginDefinition<O, K>): PluginFactory<O, K> {
  if (!pluginNamePattern.test(definition.name))
    throw new InvalidInputError(`plugin name must be lower-case letters, digits and '-', got ${JSON.stringify(definition.name)}`);
  const name = definition.name;
  const kind = (definition.kind ?? 'sink') as K;
  if (!pluginKinds.includes(kind))
    throw new InvalidInputError(`plugin ${name}: kind must be one of ${pluginKinds.join(', ')}, got ${JSON.stringify(kind)}`);
  const { schema, defaults } = optionsOf(definition as unknown as PluginDefinition<object>);

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

  const factory = async (options: Partial<O> = {}, env: { log?: Logger } = {}): Promise<Plugin<O, K>> => {
    const resolved = Object.freeze(resolveOptions(options));
    const instance = await definition.create({
      name,
      options: resolved,
      log: env.log ?? createBasicLogger('plugins').child({ plugin: name }),
    });
    checkInstance(name, kind, instance);
    return { name, kind, options: resolved, instance };
  };
  return Object.assign(factory, {
    pluginName: name,
    kind,
    description: definition.description,
    defaults: defaults as Readonly<O>,
    schema,
    resolveOptions,
  });
}

/** Any factory, whatever its options and kind (what registries and loaders hold). */
export type AnyPluginFactory = PluginFactory<object, PluginKind>;

/** Whether `value` looks like a factory made by definePlugin (of this or another copy of the SDK). */
export function isPluginFactory(value: unknown): value is AnyPluginFactory {
  const f = value as { pluginName?: unknown; resolveOptions?: unknown; kind?: PluginKind };
  return (
    typeof value === 'function' &&
    typeof f.pluginName === 'string' &&
    typeof f.resolveOptions === 'function' &&
    (f.kind === undefined || pluginKinds.includes(f.kind))
  );
}

/**
 * Named plugin factories. A name is unique within its kind (a `snapshot` source and a `snapshot` sink may both exist);
 * built-ins are registered explicitly by the entry point (see registerBuiltinPlugins).
 */
export class PluginRegistry {
  /** `<kind>:<name>` -> factory; aliases map `<kind>:<alias>` -> name. */
  private readonly factories = new Map<string, AnyPluginFactory>();
  private readonly aliases = new Map<string, string>();

  /** Registers a factory under its name and any `aliases` (e.g. `mqtt` for `mqtt-forward`), within its kind. */
  register(factory: AnyPluginFactory, aliases: readonly string[] = []): void {
    const kind = factory.kind ?? 'sink';
    for (const n of [factory.pluginName, ...aliases])
      if (this.factories.has(`${kind}:${n}`) || this.aliases.has(`${kind}:${n}`))
        throw new InvalidInputError(`${kind} plugin ${n} is already registered`);
    this.factories.set(`${kind}:${factory.pluginName}`, factory);
    for (const a of aliases) this.aliases.set(`${kind}:${a}`, factory.pluginName);
  }

  /** Whether `name` (or an alias) is registered, in `kind` or in any kind. */
  has(name: string, kind?: PluginKind): boolean {
    return this.matches(name, kind).length > 0;
  }

  /** The registered names (aliases not included), optionally of one kind. */
  names(kind?: PluginKind): string[] {
    const names = [...this.factories.values()].filter((f) => kind === undefined || (f.kind ?? 'sink') === kind).map((f) => f.pluginName);
    return [...new Set(names)].sort();
  }

  /**
   * The factory of `name` (or an alias) of `kind`. Without `kind` the name must be unique across kinds. A name known
   * only in another kind is an error that says so.
   */
  get(name: string, kind?: PluginKind): AnyPluginFactory {
    const found = this.matches(name, kind);
    if (found.length === 1) return found[0]!;
    if (found.length > 1)
      throw new PluginOptionError(name, '', `"${name}" names plugins of several kinds (${found.map((f) => f.kind).join(', ')}): say which`);
    const other = kind === undefined ? [] : this.matches(name, undefined);
    if (other.length > 0)
      throw new PluginOptionError(
        name,
        '',
        `plugin "${name}" is a ${other.map((f) => f.kind ?? 'sink').join(' and ')} plugin, not a ${kind} plugin`,
      );
    const known = this.names(kind).join(', ') || 'none';
    throw new PluginOptionError(name, '', `no ${kind ? `${kind} ` : ''}plugin named "${name}" (registered: ${known})`);
  }

  /** Creates a plugin by name (e.g. from a gateway config file). */
  create(
    name: string,
    options: Record<string, unknown> = {},
    env: { log?: Logger } = {},
    kind?: PluginKind,
  ): Promise<Plugin<object, PluginKind>> {
    return this.get(name, kind)(options, env);
  }

  private matches(name: string, kind: PluginKind | undefined): AnyPluginFactory[] {
    const kinds = kind === undefined ? pluginKinds : [kind];
    return kinds.flatMap((k) => {
      const f = this.factories.get(`${k}:${this.aliases.get(`${k}:${name}`) ?? name}`);
      return f ? [f] : [];
    });
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
    readonly plugins: readonly Plugin<object, 'sink'>[],
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
