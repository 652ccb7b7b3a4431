// Reads a JSON or YAML config file (chosen by extension) into a plain value; syntax errors name the line and column.
// Server-side only: the SDK must not import it (it would pull the yaml package into the lean client package).
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { InvalidInputError, NotFoundError, errorMessage } from './errors.js';

/** Extensions read as YAML; every other file is JSON. */
export const yamlExtensions: readonly string[] = ['.yaml', '.yml'];
/** Extensions a config file may have. */
export const configFileExtensions: readonly string[] = ['.json', ...yamlExtensions];

export function isYamlPath(path: string): boolean {
  return yamlExtensions.includes(extname(path).toLowerCase());
}

function lineColumnAt(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: before.at(-1)!.length + 1 };
}

function parseYaml(text: string, path: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false });
  const error = doc.errors[0];
  if (error !== undefined) {
    const at = error.linePos?.[0] ?? lineColumnAt(text, error.pos[0]);
    throw new InvalidInputError(`${path}:${at.line}:${at.col}: invalid YAML: ${error.message.split('\n')[0]}`);
  }
  return doc.toJS() as unknown;
}

/** Whether `text` is valid JSON or only cut short (every error is at its end). */
function jsonPrefixOk(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch (e) {
    const message = errorMessage(e);
    const position = /at position (\d+)/.exec(message);
    return /end of JSON input/.test(message) || (position !== null && Number(position[1]) >= text.length);
  }
}

/** Where JSON.parse failed: its message has a position only sometimes, so find the shortest prefix that is wrong. */
function jsonErrorPosition(text: string): { line: number; col: number } {
  let good = 0;
  let bad = text.length;
  while (bad - good > 1) {
    const mid = (good + bad) >> 1;
    if (jsonPrefixOk(text.slice(0, mid))) good = mid;
    else bad = mid;
  }
  return lineColumnAt(text, bad - 1);
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const message = errorMessage(e)
      .split('\n')[0]!
      .replace(/, "[\s\S]*$/, '');
    const at = jsonErrorPosition(text);
    throw new InvalidInputError(`${path}:${at.line}:${at.col}: invalid JSON: ${message.replace(/ in JSON at position \d+$/, '')}`, {
      cause: e,
    });
  }
}

/** Parses `text` as YAML when `path` ends in .yaml/.yml, else as JSON. */
export function parseConfigText(text: string, path: string): unknown {
  return isYamlPath(path) ? parseYaml(text, path) : parseJson(text, path);
}

/** Reads and parses a config file; a missing file is NotFoundError, bad syntax InvalidInputError with line:column. */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT') throw new NotFoundError(`${path}: no such file`, { cause: e });
    throw new InvalidInputError(`cannot read ${path}: ${errorMessage(e)}`, { cause: e });
  }
  return parseConfigText(text, path);
}
