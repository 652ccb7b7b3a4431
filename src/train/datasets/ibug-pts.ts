// Reader for iBUG 68-point .pts files (300-W style: `version: 1`, `n_points: 68`, `{ x y ... }`) next to their images.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { InvalidInputError } from '../../core/errors.js';
import { checkImages, naturalCompare, parseNumber } from './common.js';
import { keepCheckedLandmarkSamples, landmarkBox } from './landmark-common.js';
import { ProblemCollector } from './problems.js';
import type { CommonReaderOptions, FaceDataset, FaceSample } from './types.js';

export interface IbugPtsOptions extends CommonReaderOptions {
  /** Folder searched (recursively) for `.pts` files; the image is the file with the same stem. */
  root: string;
  /** Expected points per file. Default 68. */
  pointCount?: number;
  /** Image extensions tried, in order. Default .jpg, .png, .jpeg. */
  imageExtensions?: string[];
  /** Points farther than this outside the image are a warning (needs `imageCheck: 'header'`). Default 5 px. */
  outsideTolerancePx?: number;
}

/** Parses a .pts file's text into flat points and the declared count; throws a message string on bad structure. */
export function parsePts(text: string): { declared: number | undefined; points: number[] } {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  let declared: number | undefined;
  const open = lines.indexOf('{');
  const close = lines.lastIndexOf('}');
  if (open < 0 || close < open) throw new InvalidInputError('no { ... } block of points');
  for (const l of lines.slice(0, open)) {
    const m = /^n_points\s*:\s*(\S+)$/.exec(l);
    if (m) {
      declared = parseNumber(m[1]);
      if (declared === undefined) throw new InvalidInputError(`n_points "${m[1]}" is not a number`);
    }
  }
  const points: number[] = [];
  for (const l of lines.slice(open + 1, close)) {
    const parts = l.split(/\s+/);
    const xy = parts.map(parseNumber);
    if (parts.length !== 2 || xy.some((v) => v === undefined)) throw new InvalidInputError(`point line "${l}" is not two numbers`);
    points.push(xy[0]!, xy[1]!);
  }
  return { declared, points };
}

export async function readIbugPts(options: IbugPtsOptions): Promise<FaceDataset> {
  const root = resolve(options.root);
  const expected = options.pointCount ?? 68;
  const imageExtensions = options.imageExtensions ?? ['.jpg', '.png', '.jpeg'];
  const problems = new ProblemCollector(options.maxExamples ?? 5);
  const ptsFiles = (await listRecursive(root)).filter((f) => f.toLowerCase().endsWith('.pts')).sort(naturalCompare);

  const entries: { sample: FaceSample; ptsPath: string }[] = [];
  for (const ptsPath of ptsFiles) {
    problems.check();
    let parsed: ReturnType<typeof parsePts>;
    try {
      parsed = parsePts(await readFile(ptsPath, 'utf8'));
    } catch (e) {
      problems.add('malformed-line', 'excluded', { file: ptsPath, message: e instanceof Error ? e.message : String(e) });
      continue;
    }
    const count = parsed.points.length / 2;
    if (count !== expected || (parsed.declared !== undefined && parsed.declared !== count)) {
      problems.add('wrong-coordinate-count', 'excluded', {
        file: ptsPath,
        message: `${count} points${parsed.declared !== undefined ? ` (n_points says ${parsed.declared})` : ''}, expected ${expected}`,
      });
      continue;
    }
    const stem = ptsPath.slice(0, -'.pts'.length);
    const imagePath = imageExtensions.map((ext) => stem + ext).find((p) => existsSync(p)) ?? stem + imageExtensions[0];
    const id = relative(root, stem).split('\\').join('/');
    entries.push({ sample: { id, imagePath, label: parsed.points, box: landmarkBox(parsed.points) }, ptsPath });
  }

  const checks = await checkImages(
    entries.map((e) => ({ imagePath: e.sample.imagePath, file: e.ptsPath })),
    options.imageCheck ?? 'header',
    problems,
  );
  const tolerance = options.outsideTolerancePx ?? 5;
  const samples = keepCheckedLandmarkSamples(entries, checks, tolerance, problems, (e, outside) => ({
    file: e.ptsPath,
    message: `${outside} points more than ${tolerance} px outside the image`,
  }));
  return {
    name: options.name ?? basename(root),
    source: root,
    taskType: 'landmarks',
    classNames: [],
    ...(expected === 68 ? { landmarkScheme: 'ibug68' as const } : {}),
    pointCount: expected,
    samples,
    problems: problems.report(samples.length),
  };
}

async function listRecursive(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new InvalidInputError(`iBUG dataset folder ${dir} cannot be read`, { cause: e });
  }
  const out: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listRecursive(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}
