// Helpers shared by the dataset readers: bounded-concurrency image checks that feed the problems collector.
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkImageFile, type ImageHeader } from './image-check.js';
import type { ProblemCollector } from './problems.js';
import type { ImageCheckLevel } from './types.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.pgm', '.ppm', '.bmp', '.gif', '.webp'];

export function isImageFile(name: string, extensions: readonly string[] = IMAGE_EXTENSIONS): boolean {
  const lower = name.toLowerCase();
  return extensions.some((ext) => lower.endsWith(ext));
}

/** Repository root (three levels above this file) and the shared research data next to it. */
export function defaultDataRoot(): string {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return process.env['KT_DATA_ROOT'] ?? resolve(repoRoot, '..', 'shared', 'data');
}

export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface ImageCandidate {
  imagePath: string;
  /** Where the entry came from, for problem examples: the manifest and line, or the image itself. */
  file: string;
  line?: number;
  /** How the image is named in messages (its path in the manifest). Default: the file name. */
  name?: string;
}

/**
 * Checks each candidate's image; records excluded/warning problems; returns per candidate whether it is usable
 * and its header (when `level` is `header`).
 */
export async function checkImages(
  candidates: readonly ImageCandidate[],
  level: ImageCheckLevel,
  problems: ProblemCollector,
): Promise<{ ok: boolean; header?: ImageHeader }[]> {
  const results = await mapLimit(candidates, 32, async (c) => checkImageFile(c.imagePath, level));
  // Problems are added in candidate order (not completion order), so the first examples are the first lines.
  return results.map((result, i) => {
    const c = candidates[i]!;
    const where = { file: c.file, ...(c.line !== undefined ? { line: c.line } : {}) };
    if (!result.ok) {
      problems.add(result.kind, 'excluded', { ...where, message: `${c.name ?? basename(c.imagePath)}: ${result.message}` });
      return { ok: false };
    }
    if (result.warning)
      problems.add(result.warning.kind, 'warning', { ...where, message: `${c.name ?? basename(c.imagePath)}: ${result.warning.message}` });
    return result.header ? { ok: true, header: result.header } : { ok: true };
  });
}

/** Parses a strictly numeric field ('' and '12abc' are not numbers, unlike Number()). */
export function parseNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

/** Sorts names numerically where both are numbers (s2 < s10, '2' < '10'), else lexically. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
