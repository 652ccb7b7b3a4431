// Device profiles (`devices/<name>.json` or `.yaml`): typed, validated partial overlays of the server config with deployment notes.
import { access } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import { configFileExtensions, readConfigFile } from '../core/config-file.js';
import { InvalidInputError, NotFoundError, isKtError } from '../core/errors.js';
import { problemsMessage, schemaProblems } from '../core/schema.js';
import { serverConfigOverlaySchema, type ServerConfigOverlay } from './config.js';

/** A device profile file, as JSON Schema (emitted as schemas/device-profile.schema.json). */
export const deviceProfileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of this JSON Schema, for editor completion; ignored by the server.' })),
    $comment: Type.Optional(Type.String({ description: 'Free text for maintainers; ignored.' })),
    name: Type.String({ minLength: 1, description: 'Profile name (the file name without its extension).' }),
    description: Type.String({ description: 'One line on the hardware it targets.' }),
    notes: Type.Optional(
      Type.Array(Type.String(), {
        default: [],
        description: 'Deployment notes and known limits, shown by `kt serve --device NAME --help-device` and logged at start.',
      }),
    ),
    config: Type.Optional(serverConfigOverlaySchema),
  },
  { additionalProperties: false, title: 'kt device profile' },
);

export interface DeviceProfile {
  /** Profile name (the file name without its extension). */
  name: string;
  /** One line on the hardware it targets. */
  description: string;
  /** Deployment notes and known limits, shown by `kt serve --device NAME --help-device` and logged at start. */
  notes: string[];
  /** The overlay applied on top of the defaults. */
  config: ServerConfigOverlay;
}

/** `devices/` at the package root. */
export function devicesDirectory(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'devices');
}

/**
 * Validates a parsed profile; every problem is listed with the file named, unknown keys (at the top level or in
 * `config`) with the nearest valid name. Problems inside `config` are reported as the server config reports them.
 */
export function parseDeviceProfile(value: unknown, source: string): DeviceProfile {
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  const { config, ...top } = isObject ? (value as Record<string, unknown>) : { config: undefined };
  const messages: string[] = [];
  const topProblems = schemaProblems(deviceProfileSchema, isObject ? top : value);
  if (topProblems.length > 0) messages.push(problemsMessage(`device profile ${source}`, topProblems));
  const configProblems = schemaProblems(serverConfigOverlaySchema, config ?? {});
  if (configProblems.length > 0) messages.push(problemsMessage(`device profile ${source} "config"`, configProblems));
  if (messages.length > 0) throw new InvalidInputError(messages.join('; '));
  // Valid now; defaults are not applied through the schema, which would fill `config` with every server default.
  const profile = top as Omit<Static<typeof deviceProfileSchema>, 'config'>;
  return {
    name: profile.name,
    description: profile.description,
    notes: profile.notes ?? [],
    config: (config ?? {}) as ServerConfigOverlay,
  };
}

const isProfilePath = (nameOrPath: string): boolean => configFileExtensions.some((ext) => nameOrPath.toLowerCase().endsWith(ext));

/** The file of profile `name` in `directory`: `<name>.json`, else `<name>.yaml`, else `<name>.yml`. */
async function profileFile(name: string, directory: string): Promise<string | undefined> {
  for (const ext of configFileExtensions) {
    const path = join(directory, `${name}${ext}`);
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  return undefined;
}

/** Loads `devices/<name>.json` (or `.yaml`/`.yml`), or a profile file when `nameOrPath` ends in one of those. */
export async function loadDeviceProfile(nameOrPath: string, directory = devicesDirectory()): Promise<DeviceProfile> {
  const isPath = isProfilePath(nameOrPath);
  if (!isPath && !/^[A-Za-z0-9._-]+$/.test(nameOrPath))
    throw new InvalidInputError(`device profile name "${nameOrPath}" may only contain letters, digits, '.', '_' and '-'`);
  const path = isPath ? resolve(nameOrPath) : await profileFile(nameOrPath, directory);
  if (path === undefined)
    throw new NotFoundError(`device profile "${nameOrPath}" not found (no ${nameOrPath}.json or .yaml in ${directory})`);
  let parsed: unknown;
  try {
    parsed = await readConfigFile(path);
  } catch (e) {
    if (isKtError(e) && e.code === 'NOT_FOUND') throw new NotFoundError(`device profile "${nameOrPath}" not found (${path})`, { cause: e });
    throw e;
  }
  return parseDeviceProfile(parsed, path);
}
