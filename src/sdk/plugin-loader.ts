// Loads third-party plugins named in a config file: a path to a JS module or an installed package's name; every export
// that is a definePlugin factory (of this or another copy of the SDK) is a plugin.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidInputError, errorMessage } from '../core/errors.js';
import { isPluginFactory, type AnyPluginFactory, type PluginRegistry } from './plugin.js';

export interface LoadPluginOptions {
  /** Where relative paths and package names are resolved from (the config file's folder). Default: the working directory. */
  baseDir?: string;
  /** Registers every plugin found here too. */
  registry?: PluginRegistry;
}

const isPathSpec = (spec: string): boolean => spec.startsWith('.') || isAbsolute(spec) || spec.startsWith('file:');

/** The entry file of an ES module package's `exports` / `module` / `main` (the cases require.resolve misses). */
function packageEntry(packageDir: string, subpath: string): string | undefined {
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as Record<string, unknown>;
  const pick = (target: unknown): string | undefined => {
    if (typeof target === 'string') return target;
    if (typeof target !== 'object' || target === null) return undefined;
    const conditions = target as Record<string, unknown>;
    for (const c of ['import', 'node', 'default']) if (c in conditions) return pick(conditions[c]);
    return undefined;
  };
  const exportsField = pkg['exports'];
  if (exportsField !== undefined) {
    const map = typeof exportsField === 'object' && exportsField !== null && Object.keys(exportsField).some((k) => k.startsWith('.'));
    const entry = pick(map ? (exportsField as Record<string, unknown>)[subpath] : subpath === '.' ? exportsField : undefined);
    return entry === undefined ? undefined : join(packageDir, entry);
  }
  if (subpath !== '.') return join(packageDir, subpath);
  const main = pkg['module'] ?? pkg['main'];
  return join(packageDir, typeof main === 'string' ? main : 'index.js');
}

/** The file of package `spec` ("name", "@scope/name", "name/sub") as Node would find it from `baseDir`. */
function resolvePackage(spec: string, baseDir: string): string {
  try {
    return createRequire(join(baseDir, 'plugin-loader.cjs')).resolve(spec);
  } catch {
    // An ESM-only package ("exports" with only an "import" condition): look it up in node_modules ourselves.
  }
  const parts = spec.split('/');
  const nameParts = spec.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameParts).join('/');
  const subpath = parts.length > nameParts ? `./${parts.slice(nameParts).join('/')}` : '.';
  for (let dir = baseDir; ; dir = dirname(dir)) {
    const packageDir = join(dir, 'node_modules', name);
    if (existsSync(join(packageDir, 'package.json'))) {
      const entry = packageEntry(packageDir, subpath);
      if (entry !== undefined && existsSync(entry)) return entry;
      throw new InvalidInputError(`plugin package ${spec}: no entry for ${subpath} in ${join(packageDir, 'package.json')}`);
    }
    if (dirname(dir) === dir) break;
  }
  throw new InvalidInputError(`plugin package ${spec} is not installed (looked in node_modules from ${baseDir} up)`);
}

/**
 * Imports a plugin module and returns its plugin factories (named exports and the default export, which may also be
 * an array of factories). `spec` is a path (relative to `baseDir`, absolute or a file: URL) or a package name.
 * Errors are InvalidInputError naming the spec: not found, failed to load, or no plugin exported.
 */
export async function loadPlugin(spec: string, options: LoadPluginOptions = {}): Promise<AnyPluginFactory[]> {
  if (typeof spec !== 'string' || spec.trim() === '') throw new InvalidInputError('plugin spec must be a path or a package name');
  const baseDir = resolve(options.baseDir ?? process.cwd());
  let url: string;
  if (spec.startsWith('file:')) url = spec;
  else if (isPathSpec(spec)) {
    const file = resolve(baseDir, spec);
    if (!existsSync(file)) throw new InvalidInputError(`plugin ${spec}: no such file ${file}`);
    url = pathToFileURL(file).href;
  } else url = pathToFileURL(resolvePackage(spec, baseDir)).href;

  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    throw new InvalidInputError(`plugin ${spec} failed to load: ${errorMessage(e)}`, { cause: e });
  }
  const candidates = Object.values(mod).flatMap((v) => (Array.isArray(v) ? (v as unknown[]) : [v]));
  const factories = [...new Set(candidates.filter(isPluginFactory))];
  if (factories.length === 0)
    throw new InvalidInputError(`plugin ${spec} exports no plugin (export the factories that definePlugin() returns)`);
  for (const f of factories) options.registry?.register(f);
  return factories;
}
