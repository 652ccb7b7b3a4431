// Device profiles (`devices/<name>.json`): typed, validated partial overlays of the server config with deployment notes.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidInputError, NotFoundError, errorMessage } from '../core/errors.js';
import { validateConfigOverlay, type ServerConfigOverlay } from './config.js';

export interface DeviceProfile {
  /** Profile name (the file name without `.json`). */
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

const profileKeys = new Set(['name', 'description', 'notes', 'config', '$comment']);

/** Validates a parsed profile; unknown keys (at the top level or in `config`) are rejected with the file named. */
export function parseDeviceProfile(value: unknown, source: string): DeviceProfile {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError(`device profile ${source}: must be a JSON object`);
  const v = value as Record<string, unknown>;
  const unknown = Object.keys(v).filter((k) => !profileKeys.has(k));
  if (unknown.length > 0) throw new InvalidInputError(`device profile ${source}: unknown key(s) ${unknown.map((k) => `"${k}"`).join(', ')} (allowed: name, description, notes, config)`);
  if (typeof v['name'] !== 'string' || v['name'] === '') throw new InvalidInputError(`device profile ${source}: "name" must be a non-empty string`);
  if (typeof v['description'] !== 'string') throw new InvalidInputError(`device profile ${source}: "description" must be a string`);
  const notes = v['notes'] ?? [];
  if (!Array.isArray(notes) || !notes.every((n) => typeof n === 'string')) throw new InvalidInputError(`device profile ${source}: "notes" must be an array of strings`);
  const config = validateConfigOverlay(v['config'] ?? {}, `device profile ${source} "config"`);
  return { name: v['name'], description: v['description'], notes, config };
}

/** Loads `devices/<name>.json`, or a profile file when `nameOrPath` ends in `.json`. */
export async function loadDeviceProfile(nameOrPath: string, directory = devicesDirectory()): Promise<DeviceProfile> {
  const isPath = nameOrPath.endsWith('.json');
  if (!isPath && !/^[A-Za-z0-9._-]+$/.test(nameOrPath)) throw new InvalidInputError(`device profile name "${nameOrPath}" may only contain letters, digits, '.', '_' and '-'`);
  const path = isPath ? resolve(nameOrPath) : join(directory, `${nameOrPath}.json`);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new NotFoundError(`device profile "${nameOrPath}" not found (${path}: ${errorMessage(e)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new InvalidInputError(`device profile ${path}: invalid JSON: ${errorMessage(e)}`);
  }
  return parseDeviceProfile(parsed, path);
}
